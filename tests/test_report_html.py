"""The offline HTML report: written, self-contained, every chart present, numbers as the report has them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import write_csv
from focus_lines import focus_line
from unitcost.analysis.dashboard import Dashboard, build_dashboard
from unitcost.config import Config
from unitcost.ingest import ingest_files
from unitcost.report import write_html
from unitcost.report.html import NO_BILL, tenants_for_80_percent, usd
from unitcost.store import open_store

CHART_IDS = [
    "chart-daily-cost-by-feature",
    "chart-daily-cost-by-model",
    "chart-cost-per-outcome",
    "chart-tenant-pareto",
    "chart-tokens-per-request",
]
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")]
UNPRICED_MODEL = ("acme", "mystery-1")
UNPRICED_NOTE = "have no price and are excluded from costs"
OUTCOME_CYCLE = ["success", "success", "failure", "success", "escalated", "abandoned"]


def _build(
    tmp_path: Path,
    *,
    unpriced: bool = False,
    requests: int = 300,
    days: int = 5,
    bill: list[dict[str, object]] | None = None,
    config: Config | None = None,
) -> Dashboard:
    """Write a small usage + outcomes workspace (two requests per trace), optionally a FOCUS bill; its dashboard."""
    start = dt.datetime(2025, 3, 1)
    models = [*MODELS, UNPRICED_MODEL] if unpriced else MODELS
    rows: dict[str, list[object]] = {
        c: []
        for c in (
            "ts",
            "request_id",
            "trace_id",
            "tenant",
            "feature",
            "workflow",
            "release",
            "prompt_version",
            "provider",
            "model",
            "input_tokens",
            "cache_read_tokens",
            "output_tokens",
            "status",
            "attempt",
        )
    }
    for i in range(requests):
        provider, model = models[i % len(models)]
        late = i >= requests // 2
        rows["ts"].append(start + dt.timedelta(minutes=i * days * 24 * 60 // requests))
        rows["request_id"].append(f"req-{i}")
        rows["trace_id"].append(f"trace-{i // 2}")
        rows["tenant"].append(f"tenant-{(i // 2) % 7 if i % 3 else 0}")
        rows["feature"].append("support-bot" if (i // 2) % 2 else "summarize")
        rows["workflow"].append("answer" if i % 2 else "draft")
        rows["release"].append("2025.03.2" if late else "2025.03.1")
        rows["prompt_version"].append("v2" if late else "v1")
        rows["provider"].append(provider)
        rows["model"].append(model)
        rows["input_tokens"].append(1000 + 37 * (i % 50) + (500 if late else 0))
        rows["cache_read_tokens"].append(200 * (i % 3))
        rows["output_tokens"].append(150 + 11 * (i % 20))
        rows["status"].append("error" if i % 13 == 0 else "ok")
        rows["attempt"].append(1)
    usage_path = tmp_path / "usage.parquet"
    pq.write_table(pa.table(rows), usage_path)
    traces = sorted(set(rows["trace_id"]), key=lambda t: int(str(t).split("-")[1]))[: requests // 3]
    outcomes = pa.table(
        {
            "trace_id": traces,
            "ts": [start + dt.timedelta(days=days)] * len(traces),
            "outcome": [OUTCOME_CYCLE[i % len(OUTCOME_CYCLE)] for i in range(len(traces))],
        }
    )
    outcomes_path = tmp_path / "outcomes.parquet"
    pq.write_table(outcomes, outcomes_path)
    store = open_store(tmp_path / "w.duckdb")
    ingest_files(store, "usage", [usage_path])
    ingest_files(store, "outcomes", [outcomes_path])
    if bill:
        (result,) = ingest_files(store, "focus", [write_csv(tmp_path / "bill.csv", bill)])
        assert result.rows_quarantined == 0, result.first_problem
    return build_dashboard(store, config or Config())


@pytest.fixture
def dashboard(tmp_path: Path) -> Dashboard:
    return _build(tmp_path)


@pytest.fixture
def report_html(dashboard: Dashboard, tmp_path: Path) -> str:
    return write_html(dashboard, tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_write_html_writes_the_file_and_returns_its_path(dashboard: Dashboard, tmp_path: Path) -> None:
    path = write_html(dashboard, tmp_path / "nested" / "report.html", title="Acme AI spend")
    assert path == tmp_path / "nested" / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>Acme AI spend</title>" in text


def test_every_chart_is_present_in_order(report_html: str) -> None:
    positions = [report_html.find(f'id="{chart_id}"') for chart_id in CHART_IDS]
    assert all(p > 0 for p in positions), dict(zip(CHART_IDS, positions, strict=True))
    assert positions == sorted(positions)
    assert report_html.count('"displaylogo": false') == len(CHART_IDS)


def test_report_is_offline_with_plotly_inlined_once(report_html: str) -> None:
    assert '<script src="http' not in report_html
    assert "<script src=" not in report_html
    assert report_html.count("plotly.js v") >= 1
    assert len(report_html.encode()) > 1_000_000


def test_headline_total_cost_is_the_reports_total(dashboard: Dashboard, report_html: str) -> None:
    total = dashboard.report.total_cost_usd
    assert total > 0
    shown = re.search(r'id="headline-total-cost">([^<]+)<', report_html)
    assert shown is not None
    assert shown.group(1) == usd(total) == f"${total:,.2f}"


def test_headline_cards_show_requests_and_per_unit_costs(dashboard: Dashboard, report_html: str) -> None:
    r = dashboard.report
    assert f'id="headline-requests">{r.requests:,}<' in report_html
    assert f'id="headline-cost-per-request">{usd(r.cost_per_request_usd, 4)}<' in report_html
    assert f'id="headline-successful-outcomes">{r.successful_outcomes:,}<' in report_html
    assert f'id="headline-cost-per-successful-outcome">{usd(r.cost_per_successful_outcome_usd, 4)}<' in (report_html)
    assert f'id="headline-waste">{usd(r.waste_usd)}<' in report_html


def test_period_defaults_to_the_datas_first_and_last_day(report_html: str) -> None:
    assert "1 Mar 2025 – 5 Mar 2025" in report_html


def test_unpriced_note_is_absent_when_every_model_has_a_price(dashboard: Dashboard, report_html: str) -> None:
    assert dashboard.report.unpriced_requests == 0
    assert UNPRICED_NOTE not in report_html
    assert 'class="card alert"' not in report_html


def test_unpriced_requests_are_flagged_in_red_with_the_note(tmp_path: Path) -> None:
    dashboard = _build(tmp_path, unpriced=True)
    text = write_html(dashboard, tmp_path / "report.html").read_text(encoding="utf-8")
    assert dashboard.report.unpriced_requests > 0
    assert UNPRICED_NOTE in text
    assert "acme/mystery-1" in text
    assert 'class="card alert" id="card-unpriced-requests"' in text
    assert "mystery-1 (no price)" in text


def test_breakdown_tables_list_every_key(dashboard: Dashboard, report_html: str) -> None:
    for dim in ("feature", "tenant", "model", "workflow", "release", "prompt-version"):
        assert f'id="table-{dim}"' in report_html
    for row in dashboard.report.breakdown["feature"]:
        assert f'<td class="key">{row.key}</td><td>{usd(row.cost_usd)}</td>' in report_html
    for model in ("gpt-4o", "gpt-4o-mini", "claude-haiku-4-5"):
        assert f'<td class="key">{model}</td>' in report_html


def test_tenant_caption_says_how_many_tenants_make_80_percent(dashboard: Dashboard, report_html: str) -> None:
    n = tenants_for_80_percent(dashboard.tenant_pareto)
    assert n is not None
    assert f"{n:,} of {dashboard.tenant_pareto.num_rows:,} tenants make 80% of token cost." in report_html


def test_tenants_for_80_percent_reads_the_cumulative_share() -> None:
    table = pa.table({"cumulative_share": [0.6, 0.8, 0.95, 1.0]})
    assert tenants_for_80_percent(table) == 2
    assert tenants_for_80_percent(pa.table({"cumulative_share": pa.array([], pa.float64())})) is None


def test_keys_are_html_escaped(dashboard: Dashboard, tmp_path: Path) -> None:
    rows = dashboard.report.breakdown["feature"]
    hostile = dataclasses.replace(rows[0], key="<script>alert(1)</script>")
    breakdown = {**dashboard.report.breakdown, "feature": [hostile, *rows[1:]]}
    tampered = dataclasses.replace(dashboard, report=dataclasses.replace(dashboard.report, breakdown=breakdown))
    text = write_html(tampered, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in text
    assert html.escape("<script>alert(1)</script>") in text


def test_an_empty_workspace_renders_without_charts_data(tmp_path: Path) -> None:
    dashboard = build_dashboard(open_store(tmp_path / "empty.duckdb"), Config())
    text = write_html(dashboard, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "No data in this period" in text
    assert 'id="headline-total-cost">$0.00<' in text
    for chart_id in CHART_IDS:
        assert f'id="{chart_id}"' in text


# The whole stack -------------------------------------------------------------------------------------------------

STACK_CHART_IDS = ["chart-daily-cost-by-layer", "chart-fully-loaded-per-outcome"]
RATES = Config.model_validate({"currency_rates": {"EUR": 1.1}})


def _bill_line(
    day: int, provider: str, category: str, service: str, description: str, cost: str, **extra: str
) -> dict[str, object]:
    return focus_line(cost=cost, provider=provider, service=service, category=category, description=description,
                      day=day, month="2025-03", **{"Tags": "", **extra})  # fmt: skip


#: OpenAI's invoice ($10), a GPU instance ($50), a vector index tagged support-bot ($20), storage (EUR 10 at 1.1)
BILL = [
    _bill_line(1, "OpenAI", "AI and Machine Learning", "OpenAI API", "gpt-4o tokens", "10"),
    _bill_line(2, "AWS", "Compute", "Amazon Elastic Compute Cloud", "p5.4xlarge On Demand Linux", "50"),
    _bill_line(
        2, "AWS", "Analytics", "Amazon OpenSearch Service", "r6g.large.search", "20", Tags='{"feature": "support-bot"}'
    ),
    _bill_line(3, "AWS", "Storage", "Amazon Simple Storage Service", "S3 Standard", "10", BillingCurrency="EUR"),
]


@pytest.fixture
def stacked(tmp_path: Path) -> Dashboard:
    return _build(tmp_path, bill=BILL, config=RATES)


def test_stack_section_draws_layers_unit_costs_and_fully_loaded_outcomes(stacked: Dashboard, tmp_path: Path) -> None:
    text = write_html(stacked, tmp_path / "stack.html").read_text(encoding="utf-8")
    for chart_id in [*STACK_CHART_IDS, *CHART_IDS]:
        assert f'id="{chart_id}"' in text
    assert text.find('id="chart-daily-cost-by-layer"') < text.find('id="chart-daily-cost-by-feature"')
    assert text.count('"displaylogo": false') == len(CHART_IDS) + len(STACK_CHART_IDS)
    assert text.count("plotly.js v") == 1
    assert 'id="table-layer-unit-costs"' in text and 'id="table-fully-loaded"' in text
    assert 'id="stack-no-bill"' not in text
    assert 'id="headline-token-cost"' in text


def test_daily_cost_by_layer_adds_up_to_the_stack(stacked: Dashboard) -> None:
    view = stacked.stack
    assert view.has_bill and view.stack is not None
    daily = view.daily_by_layer.to_pandas().groupby("key").cost_usd.sum()
    totals = {k: float(v) for k, v in view.stack.layer_totals_usd.items()}
    assert set(daily.index) == set(totals)
    for layer, total in totals.items():
        assert daily[layer] == pytest.approx(total, abs=1e-6), layer
    assert totals["gpu_compute"] == 50.0 and totals["retrieval"] == 20.0 and totals["storage"] == pytest.approx(11.0)
    # OpenAI's invoice replaces its token cost; Anthropic has no bill line, so its telemetry cost stands
    anthropic = next(r.cost_usd for r in stacked.report.breakdown["provider"] if r.key == "anthropic")
    assert totals["model_api"] == pytest.approx(10.0 + anthropic, abs=1e-6)
    assert view.total_usd == pytest.approx(sum(totals.values()))


def test_unit_costs_and_fully_loaded_outcomes_are_computed_in_the_dashboard(stacked: Dashboard) -> None:
    view, report = stacked.stack, stacked.report
    layers = {r.layer: r for r in view.layers}
    tokens = report.input_tokens + report.output_tokens
    assert layers["model_api"].unit == "1K tokens"
    assert layers["model_api"].unit_cost_usd == pytest.approx(layers["model_api"].cost_usd * 1000 / tokens)
    assert layers["storage"].unit_cost_usd == pytest.approx(11.0 * 1000 / report.requests)
    assert layers["gpu_compute"].unit_cost_usd is None  # no GPU-seconds in this usage
    assert "bill: tag" in layers["retrieval"].basis
    assert sum(r.share or 0 for r in view.layers) == pytest.approx(1.0)
    support = next(f for f in view.features if f.feature == "support-bot")
    token_row = next(r for r in report.breakdown["feature"] if r.key == "support-bot")
    assert support.successful_outcomes == token_row.successful_outcomes > 0
    assert support.token_cost_per_successful_outcome_usd == pytest.approx(token_row.cost_per_successful_outcome_usd)
    assert support.fully_loaded_per_successful_outcome_usd == pytest.approx(
        support.stack_cost_usd / support.successful_outcomes
    )
    assert support.stack_cost_usd > support.token_cost_usd + 20  # the tagged vector index at least


def test_without_a_bill_the_stack_section_is_one_line(report_html: str) -> None:
    assert 'id="stack-no-bill"' in report_html
    assert NO_BILL in report_html
    for chart_id in STACK_CHART_IDS:
        assert f'id="{chart_id}"' not in report_html
    assert 'id="table-layer-unit-costs"' not in report_html

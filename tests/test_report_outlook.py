"""Renderers of ``scenarios`` and ``review``: terminal and HTML read the same JSON documents, nulls included."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest
from rich.console import Console

from unitcost.report.html_outlook import (
    outlook_html,
    review_sections_html,
    scenario_figure,
    tornado_figure,
    write_outlook_page,
)
from unitcost.report.outlook import driver_label, money, render_review, render_scenarios

RED = "\x1b[31m"
PLOTLY_MARK = "plotly.js v"
REVIEW_TABLE_IDS = [
    "table-review-unit-costs",
    "table-scaling-risk",
    "table-gpu-stress",
    "table-break-even",
    "table-levers",
]


def _band(p10: float | None, p50: float | None, p90: float | None) -> dict[str, float | None]:
    return {"p10": p10, "p50": p50, "p90": p90}


def _bar(driver: str, low: float, high: float, low_usd: float, high_usd: float, swing: float) -> dict[str, Any]:
    return {
        "driver": driver,
        "low_value": low,
        "high_value": high,
        "low_usd": low_usd,
        "high_usd": high_usd,
        "swing_usd": swing,
    }


@pytest.fixture
def scenarios_doc() -> dict[str, Any]:
    """Trimmed from the demo workspace's ``scenarios --json`` (three layers, two scenarios), tornado shuffled."""
    return {
        "baseline": {
            "window": {"from": "2026-09-30T23:59:56.770665", "to": "2026-10-30T23:59:56.770665"},
            "monthly_cost_usd": 29065.0,
            "layers_usd": {"gpu_compute": 9800.388, "model_api": 5993.867, "people": 13270.75},
            "cost_per_request_usd": 0.03022198,
            "cost_per_successful_outcome_usd": 0.11629188,
        },
        "horizon_months": 3,
        "samples": 5000,
        "capacity_replanned": True,
        "scenarios": [
            {
                "name": "best",
                "monthly_cost_usd": _band(31615.67, 34615.14, 37689.21),
                "layers_usd": {
                    "gpu_compute": _band(10780.2, 13263.82, 15809.21),
                    "model_api": _band(5959.8, 6466.11, 6985.01),
                    "people": _band(13270.75, 13270.75, 13270.75),
                },
                "cost_per_request_usd": _band(0.02923, 0.029483, 0.029716),
                "cost_per_successful_outcome_usd": _band(0.112478, 0.113448, 0.114344),
                "requests": _band(1082239.7, 1174180.2, 1268407.3),
                "successful_outcomes": _band(281252.9, 305146.5, 329634.2),
            },
            {
                "name": "expected",
                "monthly_cost_usd": _band(42183.13, 47684.07, 49213.68),
                "layers_usd": {
                    "gpu_compute": _band(19641.21, 23927.96, 23927.96),
                    "model_api": _band(7565.69, 8893.81, 10335.33),
                    "people": _band(13270.75, 13270.75, 13270.75),
                },
                "cost_per_request_usd": _band(0.026973, 0.030079, 0.031196),
                "cost_per_successful_outcome_usd": _band(0.10379, 0.115741, 0.12004),
                "requests": _band(1367954.8, 1589164.0, 1817184.6),
                "successful_outcomes": _band(355504.7, 412992.6, 472250.7),
            },
        ],
        "tornado": {
            "scenario": "expected",
            "metric": "cost_per_successful_outcome_usd",
            "center_usd": 0.11595255,
            "bars": [
                _bar("new_tenants", 1.55, 5.96, 0.117347, 0.114297, 0.003050),
                _bar("traffic_growth_pct", 9.415, 20.496, 0.118873, 0.104042, 0.014831),
                _bar("input_tokens_pct", -1.44, 11.41, 0.115017, 0.116888, 0.001871),
                _bar("api_price_pct", -14.53, -3.12, 0.114375, 0.117060, 0.002685),
                _bar("routing.0.share", 0.3, 0.7, 0.1161, 0.1155, 0.0006),
                _bar("layer_growth_pct.storage", 0.0, 10.0, 0.11595, 0.11596, 0.00001),
                _bar("cached_share_pts", -5.0, 5.0, 0.1162, 0.1157, 0.0005),
                _bar("retry_rate_pct", 0.0, 4.0, 0.11595, 0.1163, 0.00035),
                _bar("mystery_driver", 0.0, 1.0, 0.11595, 0.11596, 0.000001),
            ],
        },
        "notes": ["GPU pool re-planned with plan.yaml: the layer scales by the plan's cost ratio"],
    }


def _roi(
    feature: str,
    value: float,
    cost_per_outcome: float | None,
    roi: float | None,
    margin: float | None,
    break_even: float | None,
    profitable_2x: bool,
    profitable_10x: bool,
) -> dict[str, Any]:
    scale = {
        "1x": {"monthly_value_usd": 1.0, "monthly_cost_usd": 1.0, "margin": margin, "profitable": roi is not None},
        "2x": {"monthly_value_usd": 2.0, "monthly_cost_usd": 1.0, "margin": margin, "profitable": profitable_2x},
        "10x": {"monthly_value_usd": 10.0, "monthly_cost_usd": 1.0, "margin": margin, "profitable": profitable_10x},
    }
    return {
        "feature": feature,
        "value_per_outcome_usd": value,
        "successful_outcomes": 250000.0,
        "monthly_value_usd": 250000.0 * value,
        "monthly_cost_usd": 25000.0,
        "fixed_cost_usd": 15000.0,
        "variable_cost_per_outcome_usd": 0.04,
        "cost_per_outcome_usd": cost_per_outcome,
        "roi": roi,
        "margin": margin,
        "break_even_outcomes": break_even,
        "break_even_cost_per_outcome_usd": value,
        "at_scale": scale,
    }


@pytest.fixture
def review_doc() -> dict[str, Any]:
    """Trimmed from the demo workspace's ``review --json`` plus ``gpu_cost_curve``, with two use cases' ROI."""
    return {
        "baseline_monthly_cost_usd": 30662.906,
        "unit_costs": [
            {
                "traffic": 1.0,
                "monthly_cost_usd": 30662.906,
                "requests": 1014589.42,
                "cost_per_request_usd": 0.030222,
                "cost_per_successful_outcome_usd": 0.116292,
            },
            {
                "traffic": 2.0,
                "monthly_cost_usd": 50889.64,
                "requests": 2029178.84,
                "cost_per_request_usd": 0.025079,
                "cost_per_successful_outcome_usd": 0.096502,
            },
            {
                "traffic": 10.0,
                "monthly_cost_usd": 155514.84,
                "requests": 10145894.2,
                "cost_per_request_usd": 0.015328,
                "cost_per_successful_outcome_usd": None,
            },
        ],
        "scaling_risk": {
            "layers": [
                {
                    "layer": "people",
                    "driver": "releases, incidents, on-call, evaluations (not traffic)",
                    "monthly_cost_usd": 13270.75,
                    "cost_per_request_usd": 0.01308,
                    "variable_share": 0.0,
                    "share_now": 0.4328,
                    "monthly_cost_at_10x_usd": 13270.75,
                    "share_at_10x": 0.0853,
                },
                {
                    "layer": "gpu_compute",
                    "driver": "GPU-hours of the self-hosted pool",
                    "monthly_cost_usd": 9800.388,
                    "cost_per_request_usd": 0.00966,
                    "variable_share": 0.3484,
                    "share_now": 0.3196,
                    "monthly_cost_at_10x_usd": 79759.87,
                    "share_at_10x": 0.5129,
                },
                {
                    "layer": "model_api",
                    "driver": "tokens x API prices",
                    "monthly_cost_usd": 5993.867,
                    "cost_per_request_usd": 0.00591,
                    "variable_share": 1.0,
                    "share_now": 0.1955,
                    "monthly_cost_at_10x_usd": 59938.67,
                    "share_at_10x": 0.3854,
                },
                {
                    "layer": "storage",
                    "driver": "stored data and requests",
                    "monthly_cost_usd": None,
                    "cost_per_request_usd": None,
                    "variable_share": None,
                    "share_now": None,
                    "monthly_cost_at_10x_usd": None,
                    "share_at_10x": None,
                },
            ],
            "dominates_first": "gpu_compute",
        },
        "gpu_stress": [
            {
                "name": "ramp x2",
                "slo_met": True,
                "first_breach": None,
                "breach_at_s": None,
                "breach_load_multiplier": None,
                "metrics": {"served_share": 1.0},
            },
            {
                "name": "lose 50% GPUs",
                "slo_met": False,
                "first_breach": "ttft_p95_s",
                "breach_at_s": 21385.3,
                "breach_load_multiplier": 1.0,
                "metrics": {"served_share": 0.0475, "ttft_p95_s": None},
            },
        ],
        "marginal_tenant": {
            "tenant_units_per_month": 3795.55625,
            "monthly_cost_usd": 396.77,
            "layers_usd": {"gpu_compute": 326.33, "model_api": 69.23, "people": 0.0, "quality": 0.0},
        },
        "break_even": [
            _roi("support-bot", 6.0, 0.1, 59.0, 0.983, 2521.0, True, True),
            _roi("summarizer", 0.02, None, None, None, None, False, False),
        ],
        "levers": [
            {
                "lever": "reserved capacity",
                "change": "commit 70% of the GPU pool at a 35% discount (1-year)",
                "monthly_savings_usd": 2401.095,
                "savings_pct": 7.8306,
                "quality_effect": "no quality effect",
            },
            {
                "lever": "API to self-hosting",
                "change": "support-bot: claude-sonnet-4-5's calls to the pool",
                "monthly_savings_usd": -5272.917,
                "savings_pct": -17.196,
                "quality_effect": "evaluate first",
            },
        ],
        "notes": ["a note & <something> to escape"],
        "gpu_cost_curve": {
            "loads": [0.5, 1.0, 2.0, 5.0, 10.0],
            "cost_per_hour_usd": [9.5454, 9.5454, 23.3054, None, None],
            "chosen": ["h100 TP2", "h100 TP2", "h100 TP4", "", ""],
            "plan": "support-bot pool",
        },
    }


def _console() -> Console:
    return Console(record=True, width=160)


def _nulled(value: Any) -> Any:
    """Every number of a document replaced by None (names, flags and lists kept)."""
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulled(v) for v in value]
    if isinstance(value, float | int) and not isinstance(value, bool):
        return None
    return value


# ---------------------------------------------------------------------------------------------------- terminal


def test_scenarios_terminal_shows_baseline_bands_layers_and_tornado(scenarios_doc: dict[str, Any]) -> None:
    console = _console()
    render_scenarios(console, scenarios_doc)
    text = console.export_text()
    assert "Baseline month (2026-09-30 → 2026-10-30): $29,065 a month, $0.0302 per request, $0.1163" in text
    row = next(line for line in text.splitlines() if "│ expected" in line)
    assert re.search(r"\$42,183 .*\$47,684 .*\$49,214 .*\$0\.0301 .*\$0\.1038 – \$0\.1200", row)
    layers = [line for line in text.splitlines() if line.startswith(("│ people", "│ gpu_compute", "│ model_api"))]
    assert [line.split()[1] for line in layers] == ["people", "gpu_compute", "model_api"]  # costliest first
    assert re.search(r"│ gpu_compute +│ +\$9,800 │ +\$13,264 │ +\$23,928 │", text)  # baseline column first
    # tornado: the top 8 of 9 drivers, largest swing first, with readable names
    assert "traffic growth %/month" in text and "traffic_growth_pct" not in text
    assert text.index("traffic growth %/month") < text.index("new tenants") < text.index("API prices %")
    assert "route 1: share rerouted" in text and "storage cost growth %" in text
    assert "9.4% → 20.5%" in text and "30% → 70%" in text and "-5.0 pts → +5.0 pts" in text
    assert "mystery_driver" not in text and "1 smaller drivers in --json" in text
    assert "GPU pool re-planned with plan.yaml" in text


def test_review_terminal_sections_in_order(review_doc: dict[str, Any]) -> None:
    console = _console()
    render_review(console, review_doc)
    text = console.export_text(clear=False)
    headings = [
        "Unit costs at 1x / 2x / 10x",
        "Scaling risk",
        "What fails first when GPUs run short",
        "One more tenant",
        "Break-even per use case",
        "Levers, largest saving first",
    ]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)
    assert "gpu_compute dominates first as the system grows: 51.3% of cost at 10x" in text
    assert re.search(r"│ +10x │ +\$155,515 │ +10,145,894 │ +\$0\.0153 │ +— │", text)
    assert "time to first token p95" in text and "5.9 h" in text
    assert "adds $396.77 a month: gpu_compute $326.33, model_api $69.23" in text
    assert "people $0.00" not in text  # layers it adds nothing to are left out
    support = next(line for line in text.splitlines() if "support-bot" in line and "$6.00" in line)
    assert "5900%" in support and "98%" in support and "2,521" in support
    summarizer = next(line for line in text.splitlines() if "│ summarizer" in line)
    assert "never" in summarizer and "—" in summarizer
    assert "reserved capacity" in text and "$2,401" in text
    assert "-$5,273" in text and "-17.2%" in text
    styled = console.export_text(styles=True)
    assert f"{RED}-$5,273" in styled  # a lever that costs more is red
    assert "a note & <something> to escape" in text


def test_review_terminal_without_a_plan_says_so(review_doc: dict[str, Any]) -> None:
    review_doc["gpu_stress"] = None
    review_doc["gpu_cost_curve"] = None
    review_doc["break_even"] = []
    console = _console()
    render_review(console, review_doc)
    text = console.export_text()
    assert "no capacity plan given" in text
    assert "No use case has a value per outcome" in text


def test_terminal_survives_nulls_everywhere(scenarios_doc: dict[str, Any], review_doc: dict[str, Any]) -> None:
    console = _console()
    render_scenarios(console, _nulled(scenarios_doc))
    render_review(console, _nulled(review_doc))
    text = console.export_text()
    assert not re.search(r"\bnan\b|\bNone\b|\binf\b", text, flags=re.I)
    assert "—" in text


# ---------------------------------------------------------------------------------------------------- figures


def test_tornado_figure_has_one_bar_per_driver_largest_swing_on_top(scenarios_doc: dict[str, Any]) -> None:
    fig = tornado_figure(scenarios_doc)
    bars = sorted(scenarios_doc["tornado"]["bars"], key=lambda b: -b["swing_usd"])
    labels = [driver_label(b["driver"]) for b in bars]
    low_line = next(t for t in fig.data if t.name == "driver at its low value (P10)")
    # one segment (centre -> low) per driver, separated by gaps
    segments = [low_line.y[i] for i in range(0, len(low_line.y), 3)]
    assert segments == labels
    assert list(low_line.x[:2]) == [scenarios_doc["tornado"]["center_usd"], bars[0]["low_usd"]]
    # categories are listed bottom to top: the largest swing is the last, so it is drawn on top
    assert list(fig.layout.yaxis.categoryarray) == labels[::-1]
    assert fig.layout.shapes[0].x0 == scenarios_doc["tornado"]["center_usd"]


def test_scenario_figure_stacks_layers_with_a_whisker_per_scenario(scenarios_doc: dict[str, Any]) -> None:
    fig = scenario_figure(scenarios_doc)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert {t.name for t in bars} == {"People", "GPU compute", "Model APIs (tokens)"}
    gpu = next(t for t in bars if t.name == "GPU compute")
    assert list(gpu.x) == ["baseline (measured)", "best", "expected"]
    assert list(gpu.y) == [9800.388, 13263.82, 23927.96]
    assert fig.layout.barmode == "stack"
    whisker = next(t for t in fig.data if t.name == "total: P10 to P90")
    assert list(whisker.y) == [31615.67, 37689.21, None, 42183.13, 49213.68, None]
    assert "P50 $47,684" in " ".join(fig.layout.xaxis.ticktext)


# ---------------------------------------------------------------------------------------------------- HTML


def test_review_html_has_every_table_and_formats(review_doc: dict[str, Any]) -> None:
    page = review_sections_html(review_doc, first_chart=True)
    for table_id in REVIEW_TABLE_IDS:
        assert f'id="{table_id}"' in page
    assert 'id="chart-scaling-risk"' in page and 'id="chart-gpu-cost-curve"' in page
    assert page.count(PLOTLY_MARK) == 1
    assert "GPU compute dominates first as the system grows: 51.3% of cost at 10x" in page
    assert re.search(r'<span style="color:#b91c1c">-\$5,273</span>', page)
    assert "never" in page and "a note &amp; &lt;something&gt; to escape" in page
    assert "<something>" not in page


def test_review_html_without_plotly_and_without_plan(review_doc: dict[str, Any]) -> None:
    review_doc["gpu_stress"] = None
    del review_doc["gpu_cost_curve"]
    page = review_sections_html(review_doc, first_chart=False)
    assert page.count(PLOTLY_MARK) == 0
    assert "no capacity plan given" in page and 'id="table-gpu-stress"' in page
    assert "chart-gpu-cost-curve" not in page


def test_outlook_html_orders_charts_and_includes_plotly_once(
    scenarios_doc: dict[str, Any], review_doc: dict[str, Any]
) -> None:
    forecast = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    page = outlook_html(forecast_fig=forecast, scenarios_doc=scenarios_doc, review_doc=review_doc, first_chart=True)
    assert page.count('<h2 id="outlook">What will it cost?</h2>') == 1
    ids = ['id="chart-forecast"', 'id="chart-scenarios"', 'id="chart-tornado"', '<h2 id="review">']
    positions = [page.index(i) for i in ids]
    assert positions == sorted(positions)
    assert page.count(PLOTLY_MARK) == 1
    assert page.index(PLOTLY_MARK) < page.index('id="chart-forecast"')
    assert "Baseline month (2026-09-30 → 2026-10-30): $29,065" in page
    assert 'id="table-scenarios"' in page
    later = outlook_html(scenarios_doc=scenarios_doc, review_doc=review_doc, first_chart=False)
    assert later.count(PLOTLY_MARK) == 0
    alone = outlook_html(review_doc=review_doc, first_chart=True)  # the review's first chart carries plotly.js
    assert alone.count(PLOTLY_MARK) == 1 and "chart-scenarios" not in alone


def test_html_renders_nulls_as_dashes(scenarios_doc: dict[str, Any], review_doc: dict[str, Any]) -> None:
    page = outlook_html(scenarios_doc=_nulled(scenarios_doc), review_doc=_nulled(review_doc), first_chart=False)
    assert "<td>—</td>" in page
    assert not re.search(r"\bnan\b|\bNone\b|\binf\b", re.sub(r"<script.*?</script>", "", page, flags=re.S), flags=re.I)


def test_write_outlook_page_is_standalone(
    tmp_path: Path, scenarios_doc: dict[str, Any], review_doc: dict[str, Any]
) -> None:
    path = write_outlook_page(
        tmp_path / "out" / "outlook.html",
        "Outlook & review",
        scenarios_doc=scenarios_doc,
        review_doc=copy.deepcopy(review_doc),
    )
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<title>Outlook &amp; review</title>" in text
    assert text.count(PLOTLY_MARK) == 1
    assert not re.search(r"<script[^>]+src=", text)  # nothing fetched from the network
    for table_id in REVIEW_TABLE_IDS:
        assert f'id="{table_id}"' in text


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (47684.07, 0, "$47,684"),
        (-5272.917, 0, "-$5,273"),
        (None, 2, "—"),
        (float("nan"), 2, "—"),
        (-0.001, 0, "$0"),
        (0.00001, 4, "<$0.0001"),
    ],
)
def test_money(value: float | None, digits: int, expected: str) -> None:
    assert money(value, digits) == expected

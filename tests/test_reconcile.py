"""Reconciliation on a bill and usage small enough to check on paper.

Override prices: 1,000 input tokens cost $1 ($2 for gpt-4o); llama-ft-internal has no price. EUR is 1.1 USD.

| provider (bill)              | day 1            | day 2         | day 3         | day 4 | compared      |
|------------------------------|------------------|---------------|---------------|-------|---------------|
| openai gpt-4o-mini (SkuId)   | $2.05 vs $2      | $2.05 vs $2   | $2.05 vs $2   |       | per model     |
| openai gpt-4o (x_UsageType)  | $2 vs $2         | $2 vs $2      | $2 vs $2      |       | per model     |
| anthropic (EUR)              | EUR 9 vs $11     | EUR 9 vs $11  | EUR 9 vs $11  |       | per provider  |
| google (Vertex AI)           | $4 vs $4         | $6 vs $4      | $4 vs $4      | — vs $4 | per provider |
| groq                         | $3.50 vs $1 + 1 unpriced | $2 vs — |             |       | per provider  |
| acme-ai (no bill lines)      | — vs $2          |               |               |       | unbilled      |
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import write_csv
from focus_lines import focus_line
from unitcost.analysis import cost_timeseries
from unitcost.analysis.reconcile import (
    CAUSE_BILL_MISSING,
    CAUSE_CACHE,
    CAUSE_DISCOUNT,
    CAUSE_PARTIAL_TELEMETRY,
    CAUSE_TELEMETRY_MISSING,
    CAUSE_UNPRICED,
    reconcile,
)
from unitcost.config import Config
from unitcost.errors import CurrencyError
from unitcost.workspace import Workspace, open_workspace


def _override(provider: str, model: str, input_per_mtok: float) -> dict[str, Any]:
    return {"provider": provider, "model": model, "input_per_mtok": input_per_mtok, "output_per_mtok": 0}


CONFIG = Config.model_validate(
    {
        "prices": {
            "overrides": [
                _override("openai", "gpt-4o-mini", 1000),
                _override("openai", "gpt-4o", 2000),
                _override("anthropic", "claude-internal", 1000),
                _override("google", "gemini-internal", 1000),
                _override("groq", "m-priced", 1000),
                _override("acme-ai", "m2", 1000),
            ]
        },
        "currency_rates": {"EUR": 1.1},
    }
)

# day, provider, model, input tokens (requests of 1,000 tokens each, but the unpriced one)
USAGE: list[tuple[int, str, str, int]] = [
    *((d, "openai", "gpt-4o-mini", 2000) for d in (1, 2, 3)),
    *((d, "openai", "gpt-4o", 1000) for d in (1, 2, 3)),
    *((d, "anthropic", "claude-internal", 11000) for d in (1, 2, 3)),
    *((d, "google", "gemini-internal", 4000) for d in (1, 2, 3, 4)),
    (1, "groq", "m-priced", 1000),
    (1, "groq", "llama-ft-internal", 5000),
    (1, "acme-ai", "m2", 2000),
]

AI = "AI and Machine Learning"
# day, ProviderName, ServiceName, cost, currency, extra columns
BILL: list[tuple[int, str, str, str, str, dict[str, str]]] = [
    *((d, "OpenAI", "OpenAI API", "2.05", "USD", {"SkuId": "GPT-4o-mini-input-tokens"}) for d in (1, 2, 3)),
    *((d, "OpenAI", "OpenAI API", "2.00", "USD", {"x_UsageType": "gpt-4o input"}) for d in (1, 2, 3)),
    *((d, "Anthropic", "Claude API", "9", "EUR", {}) for d in (1, 2, 3)),
    (1, "Google Cloud", "Vertex AI", "4", "USD", {}),
    (2, "Google Cloud", "Vertex AI", "6", "USD", {}),  # planted: $2 more than the telemetry explains
    (3, "Google Cloud", "Vertex AI", "4", "USD", {}),
    (1, "Groq", "Groq inference", "3.50", "USD", {}),
    (2, "Groq", "Groq inference", "2", "USD", {}),
]


def _line(day: int, provider: str, service: str, cost: str, currency: str, extra: dict[str, str]) -> dict[str, Any]:
    return focus_line(cost=cost, provider=provider, service=service, category=AI, description=f"{service} usage",
                      currency=currency, day=day, **{"SkuId": "", "x_UsageType": "", **extra})  # fmt: skip


def _usage(day: int, provider: str, model: str, tokens: int, n: int, cache_read: int = 0) -> dict[str, Any]:
    return {
        "request_id": f"{provider}-{model}-{day}-{n}",
        "ts": f"2026-10-0{day}T12:00:00Z",
        "provider": provider,
        "model": model,
        "input_tokens": tokens,
        "cache_read_tokens": cache_read,
        "output_tokens": 0,
        "status": "ok",
    }


def _workspace(
    tmp_path: Path,
    config: Config = CONFIG,
    usage: list[dict[str, Any]] | None = None,
    bill: list[dict[str, Any]] | None = None,
) -> Workspace:
    ws = open_workspace(tmp_path / "w.duckdb", config)
    usage = usage if usage is not None else [_usage(*u, n) for n, u in enumerate(USAGE)]
    bill = bill if bill is not None else [_line(*b) for b in BILL]
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", usage)])
    [res] = ws.ingest("focus", [write_csv(tmp_path / "bill.csv", bill)])
    assert res.rows_landed == len(bill), res.first_problem
    return ws


def _tmp(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def _rows(tmp_path: Path, config: Config = CONFIG) -> dict[tuple[int, str, str | None], Any]:
    with _workspace(tmp_path, config) as ws:
        result = reconcile(ws.store, ws.config)
    return {(r.day.day, r.provider, r.model): r for r in result.rows}


def test_reconcile_by_hand(tmp_path: Path) -> None:
    with _workspace(tmp_path) as ws:
        result = reconcile(ws.store, ws.config, threshold_pct=5)
    got = {
        (r.day.day, r.provider, r.model): (r.billed_usd, r.telemetry_usd, r.gap_usd, r.flagged, r.likely_causes)
        for r in result.rows
    }
    assert got == {
        (1, "openai", "gpt-4o-mini"): (2.05, 2.0, 0.05, False, []),
        (2, "openai", "gpt-4o-mini"): (2.05, 2.0, 0.05, False, []),
        (3, "openai", "gpt-4o-mini"): (2.05, 2.0, 0.05, False, []),
        (1, "openai", "gpt-4o"): (2.0, 2.0, 0.0, False, []),
        (2, "openai", "gpt-4o"): (2.0, 2.0, 0.0, False, []),
        (3, "openai", "gpt-4o"): (2.0, 2.0, 0.0, False, []),
        (1, "anthropic", None): (9.9, 11.0, -1.1, True, [CAUSE_DISCOUNT]),
        (2, "anthropic", None): (9.9, 11.0, -1.1, True, [CAUSE_DISCOUNT]),
        (3, "anthropic", None): (9.9, 11.0, -1.1, True, [CAUSE_DISCOUNT]),
        (1, "google", None): (4.0, 4.0, 0.0, False, []),
        (2, "google", None): (6.0, 4.0, 2.0, True, [CAUSE_PARTIAL_TELEMETRY]),
        (3, "google", None): (4.0, 4.0, 0.0, False, []),
        (4, "google", None): (0.0, 4.0, -4.0, True, [CAUSE_BILL_MISSING]),
        (1, "groq", None): (3.5, 1.0, 2.5, True, [CAUSE_UNPRICED]),
        (2, "groq", None): (2.0, 0.0, 2.0, True, [CAUSE_TELEMETRY_MISSING]),
    }
    rows = {(r.day.day, r.provider, r.model): r for r in result.rows}
    assert rows[(1, "openai", "gpt-4o-mini")].gap_pct == pytest.approx(100 * 0.05 / 2.05, abs=1e-4)
    assert rows[(1, "anthropic", None)].gap_pct == pytest.approx(-100 * 1.1 / 9.9, abs=1e-4)
    assert rows[(4, "google", None)].gap_pct == -100.0
    assert rows[(1, "groq", None)].unpriced_requests == 1 and rows[(1, "groq", None)].requests == 2
    assert rows[(2, "groq", None)].requests == 0 and rows[(2, "groq", None)].bill_lines == 1

    totals = {p.provider: p for p in result.providers}
    assert [p.provider for p in result.providers] == ["anthropic", "google", "openai", "groq"]  # biggest bill first
    assert (totals["openai"].per_model, totals["openai"].flagged_rows, totals["openai"].rows) == (True, 0, 6)
    assert totals["openai"].billed_usd == 12.15 and totals["openai"].gap_usd == 0.15
    assert totals["anthropic"].per_model is False and totals["anthropic"].steady_ratio == 0.9
    assert (totals["anthropic"].billed_usd, totals["anthropic"].telemetry_usd) == (29.7, 33.0)
    assert (totals["google"].billed_usd, totals["google"].telemetry_usd, totals["google"].steady_ratio) == (
        14,
        16,
        None,
    )
    assert (totals["groq"].billed_usd, totals["groq"].telemetry_usd, totals["groq"].flagged_rows) == (5.5, 1.0, 2)
    assert (result.billed_usd, result.telemetry_usd, result.gap_usd) == (61.35, 62.0, -0.65)
    assert result.unbilled_providers == {"acme-ai": 2.0}  # self-hosted: no model_api bill lines
    assert len(result.flagged()) == 7


def test_telemetry_side_is_the_report_cost(tmp_path: Path) -> None:
    with _workspace(tmp_path) as ws:
        result = reconcile(ws.store, ws.config)
        series = cost_timeseries(ws.store, ws.config, grain="day", by="provider").to_pylist()
    report = {(r["period"].day, r["key"]): r["cost_usd"] for r in series}
    ours: dict[tuple[int, str], float] = {}
    for r in result.rows:
        ours[(r.day.day, r.provider)] = ours.get((r.day.day, r.provider), 0) + r.telemetry_usd
    ours[(1, "acme-ai")] = result.unbilled_providers["acme-ai"]
    assert {k: v for k, v in ours.items() if v} == pytest.approx({k: v for k, v in report.items() if v})


def test_the_threshold_decides_what_is_flagged(tmp_path: Path) -> None:
    with _workspace(tmp_path) as ws:
        tight = reconcile(ws.store, ws.config, threshold_pct=2)
        loose = reconcile(ws.store, ws.config, threshold_pct=50)
    assert {(r.provider, r.model) for r in tight.flagged() if r.provider == "openai"} == {("openai", "gpt-4o-mini")}
    assert {(r.day.day, r.provider) for r in loose.flagged()} == {(1, "groq"), (2, "groq"), (4, "google")}
    with pytest.raises(ValueError, match="threshold"):
        reconcile(ws.store, ws.config, threshold_pct=-1)


def test_a_configured_discount_closes_the_gap(tmp_path: Path) -> None:
    config = CONFIG.model_copy(deep=True)
    config.prices.discount_pct = {"anthropic": 10}
    rows = _rows(tmp_path, config)
    assert [rows[(d, "anthropic", None)].gap_usd for d in (1, 2, 3)] == [0.0, 0.0, 0.0]
    assert not any(rows[(d, "anthropic", None)].flagged for d in (1, 2, 3))


def test_an_unpriced_model_priced_by_override_is_explained(tmp_path: Path) -> None:
    config = CONFIG.model_copy(deep=True)
    config.prices.overrides.append(config.prices.overrides[0].model_copy(update={"provider": "groq"}))
    config.prices.overrides[-1] = config.prices.overrides[-1].model_copy(
        update={"model": "llama-ft-internal", "input_per_mtok": 500}
    )
    row = _rows(tmp_path, config)[(1, "groq", None)]
    assert (row.billed_usd, row.telemetry_usd, row.flagged, row.unpriced_requests) == (3.5, 3.5, False, 0)


def test_bill_currency_is_converted_and_a_missing_rate_is_an_error(tmp_path: Path) -> None:
    config = CONFIG.model_copy(deep=True)
    config.currency_rates = {"EUR": 1.2}
    assert _rows(_tmp(tmp_path, "a"), config)[(1, "anthropic", None)].billed_usd == pytest.approx(10.8)
    config.currency_rates = {}
    with _workspace(_tmp(tmp_path, "b"), config) as ws, pytest.raises(CurrencyError, match="EUR"):
        reconcile(ws.store, ws.config)


def test_the_period_bounds_both_sides(tmp_path: Path) -> None:
    with _workspace(tmp_path) as ws:
        result = reconcile(ws.store, ws.config, dt.datetime(2026, 10, 2), dt.datetime(2026, 10, 3))
    assert {r.day.day for r in result.rows} == {2}
    assert {p.provider: p.billed_usd for p in result.providers} == {
        "anthropic": 9.9,
        "google": 6.0,
        "openai": 4.05,
        "groq": 2.0,
    }
    assert result.unbilled_providers == {}


def test_cache_discount_not_applied(tmp_path: Path) -> None:
    # gpt-4o-mini has no cache price in config, so cached tokens are priced at the input rate ($1 per 1K tokens);
    # the provider billed them at 10%: 1,000 cached tokens cost $0.10, not $1.
    usage = [_usage(1, "openai", "gpt-4o-mini", 2000, 0, cache_read=1000)]
    bill = [_line(1, "OpenAI", "OpenAI API", "1.10", "USD", {"SkuId": "gpt-4o-mini"})]
    with _workspace(tmp_path, usage=usage, bill=bill) as ws:
        [row] = reconcile(ws.store, ws.config).rows
    assert (row.billed_usd, row.telemetry_usd, row.gap_usd, row.likely_causes) == (1.1, 2.0, -0.9, [CAUSE_CACHE])
    # a gap much larger than the cached tokens at the input rate is something else
    bill = [_line(1, "OpenAI", "OpenAI API", "0.20", "USD", {"SkuId": "gpt-4o-mini"})]
    with _workspace(_tmp(tmp_path, "b"), usage=usage, bill=bill) as ws:
        [row] = reconcile(ws.store, ws.config).rows
    assert row.flagged and row.likely_causes == []


def test_a_ratio_that_is_not_steady_is_not_a_discount(tmp_path: Path) -> None:
    usage = [_usage(d, "anthropic", "claude-internal", 10000, 0) for d in (1, 2, 3)]
    bill = [_line(d, "Anthropic", "Claude API", cost, "USD", {}) for d, cost in ((1, "9"), (2, "8"), (3, "9.8"))]
    with _workspace(tmp_path, usage=usage, bill=bill) as ws:
        result = reconcile(ws.store, ws.config)
    assert result.providers[0].steady_ratio is None
    assert [r.likely_causes for r in result.flagged()] == [[], []]  # days 1 and 2; day 3 is within 5%


def test_the_longest_model_name_wins_and_unnamed_lines_mean_per_provider(tmp_path: Path) -> None:
    usage = [_usage(1, "openai", "gpt-4o-mini", 1000, 0), _usage(1, "openai", "gpt-4o", 1000, 1)]
    bill = [
        _line(1, "OpenAI", "OpenAI API", "1", "USD", {"SkuMeter": "GPT-4O-MINI tokens"}),
        _line(1, "OpenAI", "OpenAI API", "2", "USD", {"SkuId": "gpt-4o"}),
    ]
    with _workspace(tmp_path, usage=usage, bill=bill) as ws:
        assert {r.model: r.billed_usd for r in reconcile(ws.store, ws.config).rows} == {"gpt-4o-mini": 1, "gpt-4o": 2}
        bill.append(_line(2, "OpenAI", "OpenAI API", "0.5", "USD", {"SkuId": "support"}))  # names no model
        ws.ingest("focus", [write_csv(tmp_path / "more.csv", bill)])
        result = reconcile(ws.store, ws.config)
    assert result.providers[0].per_model is False
    assert {(r.day.day, r.model): r.billed_usd for r in result.rows} == {(1, None): 3.0, (2, None): 0.5}


def test_lines_of_other_layers_are_left_out(tmp_path: Path) -> None:
    bill = [
        _line(1, "Acme Cloud", "GPU inference pool", "100", "USD", {}) | {"ServiceCategory": "Compute"},
        _line(1, "OpenAI", "OpenAI API", "2", "USD", {}),
    ]
    usage = [_usage(1, "openai", "gpt-4o-mini", 2000, 0)]
    with _workspace(tmp_path, usage=usage, bill=bill) as ws:
        result = reconcile(ws.store, ws.config)
    assert [(r.provider, r.billed_usd, r.flagged) for r in result.rows] == [("openai", 2.0, False)]


def test_reconcile_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from typer.testing import CliRunner

    from unitcost.cli import app

    with _workspace(tmp_path):
        pass
    (tmp_path / "unitcost.yaml").write_text(yaml.safe_dump(CONFIG.model_dump(by_alias=True, mode="json")))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    db = ["--db", str(tmp_path / "w.duckdb")]
    res = runner.invoke(app, [*db, "reconcile", "--json", "--threshold-pct", "5"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc) == {
        "period",
        "currency",
        "cost_column",
        "threshold_pct",
        "billed_usd",
        "telemetry_usd",
        "gap_usd",
        "gap_pct",
        "providers",
        "rows",
        "unbilled_providers",
    }
    assert doc["billed_usd"] == 61.35 and doc["unbilled_providers"] == [{"provider": "acme-ai", "telemetry_usd": 2.0}]
    flagged = {(r["day"], r["provider"]): r["likely_causes"] for r in doc["rows"] if r["flagged"]}
    assert flagged[("2026-10-02", "google")] == [CAUSE_PARTIAL_TELEMETRY]
    assert set(doc["rows"][0]) >= {"day", "provider", "model", "billed_usd", "telemetry_usd", "gap_usd", "gap_pct"}

    res = runner.invoke(app, [*db, "reconcile", "--from", "2026-10-01", "--to", "2026-10-03"])
    assert res.exit_code == 0, res.output
    assert "anthropic" in res.output and "$29.70" in res.output and "gpt-4o" not in res.output  # openai: no gap
    assert CAUSE_PARTIAL_TELEMETRY in res.output and CAUSE_DISCOUNT in res.output
    assert "2026-10-04" not in res.output and "acme-ai: $2.00 from telemetry" in res.output

    (tmp_path / "unitcost.yaml").write_text(yaml.safe_dump({"currency_rates": {}}))
    res = runner.invoke(app, [*db, "reconcile"])
    assert res.exit_code == 2 and "EUR" in res.output

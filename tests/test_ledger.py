"""The ledger on a dozen requests whose costs were computed by hand.

Rates used (USD per million tokens; genai-prices data, checked against its own
calc_price in test_pricing.py): gpt-4o 2.5 in / 1.25 cache read / 10 out;
gpt-4o-mini 0.15 / 0.075 / 0.6; claude-haiku-4-5 1 / 0.1 read / 1.25 write / 5;
claude-sonnet-4-5 3 / 15 up to 200K input tokens, 6 / 22.5 above; o4-mini 1.1 / 4.4;
mistral-medium-latest 0.4 / 2 until 2026-06-15, 1.5 / 7.5 from 2026-06-16.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_csv
from unitcost.config import Config
from unitcost.ledger import build_ledger
from unitcost.workspace import open_workspace

ROWS = [
    # id, ts, provider, model, input, cache_read, cache_write, output, reasoning, cache_hit
    ("r01", "2026-10-01T09:00:00Z", "openai", "gpt-4o", 1000, 200, 0, 100, 0, False),
    ("r02", "2026-10-01T09:01:00Z", "openai", "gpt-4o-mini", 10000, 0, 0, 500, 0, False),
    ("r03", "2026-10-01T09:02:00Z", "anthropic", "claude-haiku-4-5", 5000, 3000, 1000, 400, 0, False),
    ("r04", "2026-10-01T09:03:00Z", "anthropic", "claude-sonnet-4-5", 250000, 0, 0, 1000, 0, False),
    ("r05", "2026-10-01T09:04:00Z", "anthropic", "claude-sonnet-4-5", 200000, 0, 0, 1000, 0, False),
    ("r06", "2026-10-01T09:05:00Z", "openai", "o4-mini", 2000, 0, 0, 3000, 2500, False),
    ("r07", "2026-10-01T09:06:00Z", "self-hosted", "llama-ft", 4000, 0, 0, 1000, 0, False),
    ("r08", "2026-06-15T23:59:59Z", "mistral", "mistral-medium-latest", 1_000_000, 0, 0, 100_000, 0, False),
    ("r09", "2026-06-16T00:00:00Z", "mistral", "mistral-medium-latest", 1_000_000, 0, 0, 100_000, 0, False),
    ("r10", "2026-10-01T09:07:00Z", "openai", "gpt-4o", 0, 0, 0, 0, 0, True),
    ("r11", "2026-10-01T09:08:00Z", "acme", "mystery-1", 1000, 0, 0, 100, 0, False),
    ("r12", "2026-10-02T00:00:00Z", "openai", "gpt-4o-mini", 10000, 0, 0, 500, 0, False),
]

EXPECTED = {
    "r01": (800 * 2.5 + 200 * 1.25 + 100 * 10) / 1e6,  # cached tokens at the cache-read rate
    "r02": (10000 * 0.15 + 500 * 0.6) / 1e6,  # before the negotiated override starts
    "r03": (1000 * 1 + 3000 * 0.1 + 1000 * 1.25 + 400 * 5) / 1e6,  # read and write at their own rates
    "r04": (250000 * 6 + 1000 * 22.5) / 1e6,  # above 200K input tokens: the whole request at tier rates
    "r05": (200000 * 3 + 1000 * 15) / 1e6,  # exactly 200K: base rates
    "r06": (2000 * 1.1 + 3000 * 4.4) / 1e6,  # reasoning tokens are output tokens
    "r07": (4000 * 0.6 + 1000 * 0.8) / 1e6,  # override for a self-hosted model
    "r08": (1_000_000 * 0.4 + 100_000 * 2) / 1e6,  # the price in force at the request's time
    "r09": (1_000_000 * 1.5 + 100_000 * 7.5) / 1e6,  # ... and after the price change
    "r10": 0.0,  # answered from the response cache: no model call
    "r11": None,  # unknown model: unpriced, never $0
    "r12": (10000 * 0.10 + 500 * 0.40) / 1e6,  # negotiated override from 2026-10-02
}

CONFIG = Config.model_validate(
    {
        "prices": {
            "overrides": [
                {
                    "provider": "self-hosted",
                    "model": "llama-ft",
                    "input_per_mtok": 0.6,
                    "output_per_mtok": 0.8,
                },
                {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "input_per_mtok": 0.10,
                    "output_per_mtok": 0.40,
                    "from": "2026-10-02",
                },
            ]
        }
    }
)


def _usage_file(tmp_path: Path) -> Path:
    cols = (
        "request_id",
        "ts",
        "provider",
        "model",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
    )
    cols += ("output_tokens", "reasoning_tokens", "response_cache_hit")
    rows = [dict(zip(cols, r, strict=True)) | {"status": "ok", "tenant": "t"} for r in ROWS]
    return write_csv(tmp_path / "usage.csv", rows)


def _costs(tmp_path: Path, config: Config) -> dict[str, float | None]:
    with open_workspace(tmp_path / "w.duckdb", config) as ws:
        ws.ingest("usage", [_usage_file(tmp_path)])
        df = build_ledger(ws.store, config).requests.select("request_id", "cost_usd").execute()
    return {rid: (None if c != c else float(c)) for rid, c in zip(df.request_id, df.cost_usd, strict=True)}


def test_hand_computed_costs(tmp_path: Path) -> None:
    got = _costs(tmp_path, CONFIG)
    assert set(got) == set(EXPECTED)
    for rid, expected in EXPECTED.items():
        if expected is None:
            assert got[rid] is None, rid
        else:
            assert got[rid] == pytest.approx(expected, rel=1e-12, abs=1e-15), rid


def test_report_totals_and_unpriced(tmp_path: Path) -> None:
    with open_workspace(tmp_path / "w.duckdb", CONFIG) as ws:
        ws.ingest("usage", [_usage_file(tmp_path)])
        report = ws.report(by=["model"])
    priced_total = sum(v for v in EXPECTED.values() if v is not None)
    assert report.total_cost_usd == pytest.approx(priced_total, rel=1e-12)
    assert report.requests == 12
    assert report.unpriced_requests == 1
    assert [(u.provider, u.model, u.requests, u.input_tokens) for u in report.unpriced] == [
        ("acme", "mystery-1", 1, 1000)
    ]
    # cost per request is over priced requests only, so an unpriced model cannot dilute it
    assert report.cost_per_request_usd == pytest.approx(priced_total / 11, rel=1e-12)
    mystery = next(r for r in report.breakdown["model"] if r.key == "mystery-1")
    assert mystery.cost_usd == 0 and mystery.unpriced_requests == 1


def test_discount_applies_to_its_provider_only(tmp_path: Path) -> None:
    config = CONFIG.model_copy(deep=True)
    config.prices.discount_pct = {"anthropic": 10}
    got = _costs(tmp_path, config)
    assert got["r03"] == pytest.approx(EXPECTED["r03"] * 0.9, rel=1e-12)  # type: ignore[operator]
    assert got["r01"] == pytest.approx(EXPECTED["r01"], rel=1e-12)


def test_costs_follow_a_changed_override(tmp_path: Path) -> None:
    """Costs are computed at report time: a new price applies to stored rows."""
    with open_workspace(tmp_path / "w.duckdb", CONFIG) as ws:
        ws.ingest("usage", [_usage_file(tmp_path)])
    cheaper = CONFIG.model_copy(deep=True)
    cheaper.prices.overrides[0].input_per_mtok = 0.3
    with open_workspace(tmp_path / "w.duckdb", cheaper) as ws:
        df = build_ledger(ws.store, cheaper).requests.filter(lambda t: t.request_id == "r07").execute()
    assert float(df.cost_usd[0]) == pytest.approx((4000 * 0.3 + 1000 * 0.8) / 1e6)

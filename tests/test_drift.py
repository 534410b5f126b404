"""The drift rule on small synthetic workspaces with planted changes, on noise, and on the demo company.

Each workspace holds requests generated with numpy (one segment per feature and day range, each with its own
distribution), written to Parquet and ingested; a planted change is a segment with other parameters.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from unitcost import demo
from unitcost.alerts import drift
from unitcost.alerts.drift import drift_rule
from unitcost.alerts.model import Finding, RuleContext
from unitcost.config import Config
from unitcost.store import rollups
from unitcost.workspace import Workspace, open_workspace

OCT = dt.datetime(2026, 10, 1)


def day(n: int) -> dt.datetime:
    """Midnight of October ``n``."""
    return OCT + dt.timedelta(days=n - 1)


@dataclass(frozen=True)
class Traffic:
    """How one feature's requests look over a range of days [first, last] (October day numbers)."""

    feature: str
    first: int
    last: int
    per_day: int = 400
    input_mean: float = 2000.0
    output_mean: float = 150.0
    cache_hit: float = 0.55  # share of requests that read 90% of their input from the prompt cache
    retry: float = 0.03
    latency_median_ms: float = 800.0
    escalated: float = 0.05


def _requests(t: Traffic, rng: np.random.Generator) -> dict[str, Any]:
    days = t.last - t.first + 1
    n = days * t.per_day
    start_us = int((day(t.first) - dt.datetime(1970, 1, 1)).total_seconds() * 1e6)
    ts = start_us + np.repeat(np.arange(days), t.per_day) * 86_400_000_000 + rng.integers(0, 86_400_000_000, n)
    input_tokens = np.maximum(rng.lognormal(np.log(t.input_mean) - 0.18, 0.6, n), 1).astype(np.int64)
    cached = rng.random(n) < t.cache_hit
    return {
        "ts": ts,
        "feature": np.full(n, t.feature),
        "input_tokens": input_tokens,
        "cache_read_tokens": np.where(cached, (input_tokens * 0.9).astype(np.int64), 0),
        "output_tokens": np.maximum(rng.lognormal(np.log(t.output_mean) - 0.08, 0.4, n), 1).astype(np.int64),
        "attempt": np.where(rng.random(n) < t.retry, 2, 1).astype(np.int32),
        "latency_ms": rng.lognormal(np.log(t.latency_median_ms), 0.5, n),
        "escalated": rng.random(n) < t.escalated,
    }


def build(tmp_path: Path, traffic: list[Traffic], seed: int = 1, config: Config | None = None) -> Workspace:
    """Ingest the traffic (each request its own unit of work, with an outcome) into a new workspace."""
    rng = np.random.default_rng(seed)
    parts = [_requests(t, rng) for t in traffic]
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = cols["ts"].size
    ids = pa.array([f"r{i}" for i in range(n)])
    usage = pa.table(
        {
            "ts": pa.array(cols["ts"], pa.timestamp("us")),
            "request_id": ids,
            "trace_id": ids,
            "provider": pa.array(np.full(n, "openai")),
            "model": pa.array(np.full(n, "gpt-4o-mini")),
            "feature": pa.array(cols["feature"]),
            "tenant": pa.array(np.full(n, "acme")),
            "status": pa.array(np.full(n, "ok")),
            **{c: pa.array(cols[c]) for c in ("attempt", "input_tokens", "cache_read_tokens", "output_tokens")},
            "latency_ms": pa.array(cols["latency_ms"]),
        }
    )
    outcomes = pa.table(
        {
            "trace_id": ids,
            "ts": pa.array(cols["ts"] + 60_000_000, pa.timestamp("us")),
            "outcome": pa.array(np.where(cols["escalated"], "escalated", "success")),
        }
    )
    pq.write_table(usage, tmp_path / "usage.parquet")
    pq.write_table(outcomes, tmp_path / "outcomes.parquet")
    ws = open_workspace(tmp_path / "w.duckdb", config or Config())
    ws.ingest("usage", [tmp_path / "usage.parquet"], strict=True)
    ws.ingest("outcomes", [tmp_path / "outcomes.parquet"], strict=True)
    return ws


def run(ws: Workspace, since: int = 8, at: dt.datetime | None = None) -> list[Finding]:
    """The rule's findings over [Oct ``since``, ``at``) (default Oct 22: the evaluations of Oct 9-22)."""
    return drift_rule(RuleContext(ws.store, ws.config, day(since), at or day(22)))


def keys(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.scope["feature"]) for f in findings]


def steady(feature: str, first: int = 1, last: int = 21, **kw: Any) -> Traffic:
    return Traffic(feature, first, last, **kw)


def test_a_planted_cache_drop_is_found_on_its_day_and_nowhere_else(tmp_path: Path) -> None:
    traffic = [steady("search", 1, 14), steady("search", 15, 21, cache_hit=0.1), steady("chat")]
    with build(tmp_path, traffic) as ws:
        findings = run(ws)
        (f,) = findings
        assert keys(findings) == [("drift:cache_hit_rate", "search")]
        assert f.kind == "drift"
        assert (f.started_at, f.ended_at) == (day(15), None)
        # the episode's reference is the baseline of its first evaluation: Oct 8-14, computed here by hand
        ref = ws.store.sql(
            "SELECT sum(cache_read_tokens) / sum(input_tokens) FROM usage "
            "WHERE feature = 'search' AND ts >= ? AND ts < ?",
            [day(8), day(15)],
        )[0][0]
        last = ws.store.sql(
            "SELECT sum(cache_read_tokens) / sum(input_tokens), count(*) FROM usage "
            "WHERE feature = 'search' AND ts >= ? AND ts < ?",
            [day(21), day(22)],
        )[0]
    assert f.details["baseline"] == pytest.approx(100 * ref, abs=1e-4)
    assert f.details["current"] == pytest.approx(100 * last[0], abs=1e-4)
    assert f.details["change"] == pytest.approx(100 * (last[0] - ref), abs=1e-3)
    assert f.details["change_unit"] == "pts"
    assert f.details["requests"] == {"baseline": 7 * 400, "window": last[1]}
    assert f.details["baseline_window"] == {"from": "2026-10-08T00:00:00", "to": "2026-10-15T00:00:00"}
    assert f.details["window"] == {"from": "2026-10-21T00:00:00", "to": "2026-10-22T00:00:00"}
    assert f.details["flagged_evaluations"] == 7
    assert f.details["p_value"] < 1e-6
    assert f.message.startswith(f"search cache hit rate fell from {100 * ref:.1f}% to {100 * last[0]:.1f}%")
    assert f.message.endswith("(since Oct 15; latest Oct 21 vs baseline Oct 8-14)")
    assert f.impact_usd_per_month is not None and f.impact_usd_per_month > 0  # cached input is cheaper


def test_a_tokens_per_request_creep_is_found(tmp_path: Path) -> None:
    # chat's input grows 5% a day from Oct 12: at some point a day is 15% above the week before it
    creep = [steady("chat", d, d, input_mean=2000 * 1.05 ** max(d - 11, 0)) for d in range(1, 22)]
    with build(tmp_path, [*creep, steady("search")]) as ws:
        findings = run(ws)
    (f,) = findings
    assert keys(findings) == [("drift:input_tokens_per_request", "chat")]
    assert day(12) <= f.started_at <= day(18) and f.ended_at is None
    assert f.details["change"] >= 15 and f.details["change_unit"] == "%"
    assert f.message.startswith("chat input tokens per request rose ")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noise_alone_fires_nothing(tmp_path: Path, seed: int) -> None:
    traffic = [steady("search", 1, 28), steady("chat", 1, 28, per_day=1500), steady("tiny", 1, 28, per_day=250)]
    with build(tmp_path, traffic, seed=seed) as ws:
        assert run(ws, since=1, at=day(29)) == []


def test_an_episode_that_recovers_has_an_end(tmp_path: Path) -> None:
    traffic = [steady("search", 1, 11), steady("search", 12, 14, cache_hit=0.1), steady("search", 15, 21)]
    with build(tmp_path, traffic) as ws:
        (f,) = run(ws)
    assert (f.rule, f.started_at, f.ended_at) == ("drift:cache_hit_rate", day(12), day(16))
    assert not f.active
    assert f.details["window"]["from"] == "2026-10-14T00:00:00"  # the last window that still held
    assert f.details["flagged_evaluations"] == 3


def test_min_requests_is_respected(tmp_path: Path) -> None:
    traffic = [steady("search", 1, 14, per_day=150), steady("search", 15, 21, per_day=150, cache_hit=0.1)]
    with build(tmp_path, traffic) as ws:
        assert run(ws) == []  # 150 requests in the window < 200
        lenient = Config.model_validate({"alerts": {"drift": {"min_requests": 100}}})
        findings = drift_rule(RuleContext(ws.store, lenient, day(8), day(22)))
    assert keys(findings) == [("drift:cache_hit_rate", "search")]


@pytest.mark.parametrize(
    ("metric", "change"),
    [
        ("output_tokens_per_request", {"output_mean": 250.0}),
        ("retry_rate", {"retry": 0.12}),
        ("escalation_rate", {"escalated": 0.2}),
        ("latency_p95_ms", {"latency_median_ms": 1200.0}),
    ],
)
def test_each_metric_fires_on_its_planted_change(tmp_path: Path, metric: str, change: dict[str, Any]) -> None:
    base = steady("chat", 1, 14)
    traffic = [base, replace(base, first=15, last=21, **change), steady("search")]
    with build(tmp_path, traffic) as ws:
        findings = run(ws)
    assert keys(findings) == [(f"drift:{metric}", "chat")]
    assert findings[0].started_at == day(15)
    if metric == "latency_p95_ms":
        # lognormal(sigma 0.5): p95 = median x exp(1.645 x 0.5); the histogram quantile is within ~2%
        assert findings[0].details["baseline"] == pytest.approx(800 * np.exp(1.645 * 0.5), rel=0.06)
        assert findings[0].details["change"] == pytest.approx(50, abs=12)
        assert findings[0].impact_usd_per_month is None
    if metric == "escalation_rate":
        assert findings[0].details["units"]["window"] == findings[0].details["requests"]["window"]


def test_no_outcomes_skips_the_escalation_rate_and_no_latency_skips_p95(tmp_path: Path) -> None:
    base = steady("chat", 1, 14)
    with build(tmp_path, [base, replace(base, first=15, last=21, escalated=0.5, latency_median_ms=3000.0)]) as ws:
        assert sorted(keys(run(ws))) == [("drift:escalation_rate", "chat"), ("drift:latency_p95_ms", "chat")]
        ws.store.raw.execute("DELETE FROM outcomes")
        ws.store.raw.execute("UPDATE usage SET latency_ms = NULL")
        rollups.rebuild(ws.store.raw)  # rows changed behind ingestion's back: its rollups too
        assert run(ws) == []


def test_disabled_rule_and_too_short_a_range_find_nothing(tmp_path: Path) -> None:
    traffic = [steady("search", 1, 14), steady("search", 15, 21, cache_hit=0.1)]
    with build(tmp_path, traffic) as ws:
        off = Config.model_validate({"alerts": {"drift": {"enabled": False}}})
        assert drift_rule(RuleContext(ws.store, off, day(8), day(22))) == []
        assert run(ws, since=22, at=day(22) + dt.timedelta(hours=23)) == []  # no complete window


def test_only_complete_days_are_judged_and_aware_times_stay_aware(tmp_path: Path) -> None:
    traffic = [steady("search", 1, 14), steady("search", 15, 21, cache_hit=0.1)]
    with build(tmp_path, traffic) as ws:
        # at Oct 15 18:00 the drop is in the data but its day is not complete yet
        assert run(ws, at=day(15) + dt.timedelta(hours=18)) == []
        since, at = day(8).replace(tzinfo=dt.UTC), day(16).replace(tzinfo=dt.UTC)
        (f,) = drift_rule(RuleContext(ws.store, ws.config, since, at))
    assert f.started_at == day(15).replace(tzinfo=dt.UTC)


def test_span_text() -> None:
    assert drift._span(day(22), day(23)) == "Oct 22"
    assert drift._span(day(15), day(22)) == "Oct 15-21"
    assert drift._span(dt.datetime(2026, 9, 28), dt.datetime(2026, 10, 5)) == "Sep 28-Oct 4"


def test_histogram_quantile_by_hand() -> None:
    # 100 requests: 50 in bucket 0, 40 in bucket 1, 10 in bucket 2 -> the 95th is half-way through bucket 2
    hist = np.array([[50.0, 40.0, 10.0]])
    position, total = drift._quantile_position(hist, 0.95)
    assert position.tolist() == [2.5] and total.tolist() == [100]
    assert drift._count_below(hist, position).tolist() == [95.0]
    assert drift._count_below(hist, np.array([1.25])).tolist() == [60.0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=30).filter(lambda h: sum(h) > 0), st.floats(0.01, 0.99))
def test_the_quantile_position_leaves_its_share_below(counts: list[int], q: float) -> None:
    hist = np.array([counts], dtype=np.float64)
    position, total = drift._quantile_position(hist, q)
    assert drift._count_below(hist, position)[0] == pytest.approx(q * total[0])


def test_two_proportions_by_hand() -> None:
    # 30/300 against 20/400: pooled 50/700, z = (0.1 - 0.05) / sqrt(p (1 - p) (1/300 + 1/400))
    one = np.array([1.0])
    _, _, p = drift._two_proportions(30 * one, 300 * one, 20 * one, 400 * one, one)
    pooled = 50 / 700
    z = 0.05 / np.sqrt(pooled * (1 - pooled) * (1 / 300 + 1 / 400))
    assert p[0] == pytest.approx(math.erfc(z / math.sqrt(2)))


@pytest.fixture(scope="module")
def demo_findings(tmp_path_factory: pytest.TempPathFactory) -> tuple[demo.DemoData, list[Finding]]:
    data = demo.generate(days=30, requests=200_000, seed=7)
    files = demo.write_parquet(data, tmp_path_factory.mktemp("demo"))
    config = Config.model_validate(yaml.safe_load(data.config_yaml))
    with open_workspace(files.usage.parent / "w.duckdb", config) as ws:
        ws.ingest("usage", [files.usage])
        ws.ingest("outcomes", [files.outcomes])
        return data, drift_rule(RuleContext(ws.store, config, day(1), day(31)))


def test_demo_flags_the_planted_drifts_and_nothing_else(demo_findings: tuple[demo.DemoData, list[Finding]]) -> None:
    data, findings = demo_findings
    events = {e.name: e for e in data.events}
    assert keys(findings) == [
        ("drift:input_tokens_per_request", "support-bot"),
        ("drift:cache_hit_rate", "knowledge-search"),
    ]
    tokens, cache = findings
    assert tokens.started_at == events["prompt-regression"].start and tokens.ended_at is None
    assert cache.started_at == events["cache-drop"].start and cache.ended_at is None
    assert tokens.details["change"] == pytest.approx(33, abs=5)  # the demo's +33% per chat call
    assert cache.details["baseline"] == pytest.approx(50, abs=2) and cache.details["current"] == pytest.approx(
        10, abs=2
    )
    assert tokens.impact_usd_per_month is not None and tokens.impact_usd_per_month > 0
    assert cache.impact_usd_per_month is not None and cache.impact_usd_per_month > 0


def test_the_rollups_and_the_requests_give_the_same_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drift reads its daily sums and latency histogram from the rollups; the requests give the same findings."""
    traffic = [
        steady("search", 1, 14),
        steady("search", 15, 21, cache_hit=0.1, latency_median_ms=2500.0),
        steady("chat", 1, 14),
        steady("chat", 15, 21, retry=0.25, output_mean=300.0),
    ]
    with build(tmp_path, traffic) as ws:
        rolled = run(ws)
        monkeypatch.setattr(rollups, "edges_if_built", lambda store: None)
        raw = run(ws)
    assert len(rolled) >= 4
    assert [(f.rule, f.scope, f.started_at, f.ended_at) for f in rolled] == [
        (f.rule, f.scope, f.started_at, f.ended_at) for f in raw
    ]
    for a, b in zip(rolled, raw, strict=True):
        assert a.details["current"] == pytest.approx(b.details["current"], rel=1e-9)
        assert a.details["baseline"] == pytest.approx(b.details["baseline"], rel=1e-9)
        assert a.impact_usd_per_month == (
            None if b.impact_usd_per_month is None else pytest.approx(b.impact_usd_per_month, rel=1e-9)
        )

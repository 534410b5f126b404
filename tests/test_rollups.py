"""The rollups ingestion keeps (``usage_hourly``, ``usage_latency``): equal to a recompute from the requests after
every batch, and the spend series, drift and version timelines read from them equal those read from the requests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import write_csv
from unitcost.alerts.deployment import _first_seen, _request_stats, _side_requests, _SideSpec
from unitcost.alerts.model import RuleContext
from unitcost.analysis import cost_timeseries
from unitcost.config import Config
from unitcost.ledger.costs import build_ledger
from unitcost.ledger.segments import Segmentation
from unitcost.pricing.tokens import tier_thresholds
from unitcost.store import open_store, rollups
from unitcost.workspace import open_workspace

T0 = dt.datetime(2026, 10, 1)
EDGES = tier_thresholds()


def _stored(con: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rollups with each key's rows summed (a key may be split over several rows, see fold_new_rows)."""
    keys = ["hour", *rollups.DIMENSIONS, "provider", "model", "cache_hit", "band"]
    cols = [r[0] for r in con.execute("DESCRIBE usage_hourly").fetchall()]
    agg = [
        c if c in keys else (f"{'min' if c == 'first_ts' else 'max' if c == 'last_ts' else 'sum'}({c})") for c in cols
    ]
    hourly = con.execute(f"SELECT {', '.join(agg)} FROM usage_hourly GROUP BY ALL ORDER BY ALL").fetchall()
    latency = con.execute(
        "SELECT day, feature, bucket, sum(requests) FROM usage_latency GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    return hourly, latency


def _recomputed(con: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    cols = ", ".join(r[0] for r in con.execute("DESCRIBE usage_hourly").fetchall())
    hourly = con.execute(f"SELECT {cols} FROM ({rollups._hourly_select(EDGES, 'true')}) ORDER BY ALL").fetchall()
    latency = con.execute(
        f"SELECT day, feature, bucket, requests FROM ({rollups._latency_select('true')}) ORDER BY ALL"
    ).fetchall()
    return hourly, latency


_REQUEST = st.tuples(
    st.integers(0, 40),  # request id (repeats are duplicates, skipped)
    st.sampled_from(["t1", "t2", "t3", ""]),  # trace
    st.integers(0, 300),  # minute
    st.sampled_from(["chat", "search", None]),  # feature
    st.sampled_from(["r1", "r2", None]),  # release
    st.sampled_from([0, 500, 150_000, 250_000, 600_000]),  # input tokens: every band edge side
    st.booleans(),  # response cache hit
    st.sampled_from([1, 2, None]),  # attempt
    st.sampled_from([None, 0.5, 120.0, 4000.0]),  # latency
)


def _rows(batch: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [
        {
            "request_id": f"q{rid}",
            "trace_id": trace,
            "ts": (T0 + dt.timedelta(minutes=minute, seconds=rid)).isoformat(),
            "provider": "anthropic" if rid % 2 else "openai",
            "model": "claude-sonnet-4-5" if rid % 2 else "gpt-4.1",  # tiered above 200k input tokens, flat
            "input_tokens": tokens,
            "cache_read_tokens": tokens // 4,
            "output_tokens": 10 + rid,
            "status": "error" if attempt is None and rid % 3 == 0 else "ok",
            "feature": feature or "",
            "release": release or "",
            "response_cache_hit": str(hit).lower(),
            "attempt": "" if attempt is None else attempt,
            "latency_ms": "" if latency is None else latency,
        }
        for rid, trace, minute, feature, release, tokens, hit, attempt, latency in batch
    ]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(  # whole hours with requests on both sides of a price tier, late requests of a trace, a partial hour
    batches=[
        [(1, "t1", 70, "chat", "r1", 250_000, False, 1, 120.0), (2, "t1", 80, "chat", "r2", 500, False, 2, 0.5)],
        [(3, "t1", 75, "search", "r1", 600_000, True, None, 4000.0), (5, "", 130, None, None, 150_000, False, 1, None)],
    ],
    start=30,
    length=200,
)
@given(
    batches=st.lists(st.lists(_REQUEST, min_size=1, max_size=10), min_size=1, max_size=3),
    start=st.integers(0, 300),
    length=st.integers(1, 300),
)
def test_rollups_match_a_recompute_and_the_spend_series_matches_the_requests(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[tuple[Any, ...]]], start: int, length: int
) -> None:
    tmp = tmp_path_factory.mktemp("r")
    ws = open_workspace(tmp / "w.duckdb", Config())
    for i, batch in enumerate(batches):
        ws.ingest("usage", [write_csv(tmp / f"{i}.csv", _rows(batch))])
        assert _stored(ws.store.raw) == _recomputed(ws.store.raw)
    # any range, on or off the hour: whole hours from the rollup + partial hours from the requests == requests
    lo = T0 + dt.timedelta(minutes=start, seconds=17 * (start % 2))
    hi = lo + dt.timedelta(minutes=length)
    for by, grain in (("feature", "hour"), ("release", "day"), (None, "hour")):
        rolled = cost_timeseries(ws.store, ws.config, lo, hi, grain, by, units=False).to_pylist()
        assert rollups.edges_if_built(ws.store) == EDGES
        with patch.object(rollups, "edges_if_built", lambda store: None):  # the requests alone
            raw = cost_timeseries(ws.store, ws.config, lo, hi, grain, by, units=False).to_pylist()
        assert [r["cost_usd"] for r in rolled] == pytest.approx([r["cost_usd"] for r in raw], abs=1e-9)
        assert [{k: v for k, v in r.items() if k != "cost_usd"} for r in rolled] == [
            {k: v for k, v in r.items() if k != "cost_usd"} for r in raw
        ]
    # a deployment side's per-model request moments (rollup + partial hours) == those of the priced requests
    ctx = RuleContext(ws.store, ws.config, lo, hi)
    for spec in (_SideSpec("chat", {"release": "r1"}, lo, hi), _SideSpec("search", {}, lo, hi)):
        got = _request_stats(ctx, spec)
        r = build_ledger(ws.store, ws.config, lo, hi, usage=_side_requests(ctx, spec)).requests
        r = r.filter(r.priced)
        want = r.group_by("model").aggregate(n=r.count(), s=r.cost_usd.sum(), ss=(r.cost_usd * r.cost_usd).sum())
        want_rows = {m["model"]: m for m in want.to_pyarrow().to_pylist()}
        assert sorted(got) == sorted(want_rows)
        for model, m in want_rows.items():
            assert got[model]["n"] == m["n"]
            assert got[model]["s"] == pytest.approx(m["s"], rel=1e-9, abs=1e-12)
            assert got[model]["ss"] == pytest.approx(m["ss"], rel=1e-9, abs=1e-12)
    ws.close()


def test_first_seen_versions_match_the_requests(tmp_path: Path) -> None:
    rows = [
        (0, "t1", 10, "chat", "r1", 10, False, 1, None),
        (1, "t2", 70, "chat", "r2", 10, False, 1, None),
        (2, "t3", 75, "chat", "r1", 10, False, 1, None),
        (3, "t1", 200, "search", "r2", 10, False, 1, None),
    ]
    ws = open_workspace(tmp_path / "w.duckdb", Config())
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", _rows(rows))])
    for lo, hi in [(T0, T0 + dt.timedelta(hours=5)), (T0 + dt.timedelta(minutes=30), T0 + dt.timedelta(minutes=190))]:
        got = sorted(_first_seen(ws.store, lo, hi).to_pyarrow().to_pylist(), key=str)
        u = ws.store.sql(
            """SELECT feature, release, prompt_version, min(ts) FROM usage WHERE ts >= ? AND ts < ?
            AND feature IS NOT NULL GROUP BY ALL""",
            [lo, hi],
        )
        want = [{"feature": f, "release": r, "prompt_version": p, "first": t} for f, r, p, t in u]
        assert got == sorted(want, key=str)
    ws.close()


def test_a_trace_filled_in_by_a_later_otlp_file_refreshes_its_hours(tmp_path: Path) -> None:
    """The OTLP adapter fills the feature of stored calls from a root span that comes later: the rollups follow."""
    from test_otlp import CALL, TRACE, otlp_json, write

    ws = open_workspace(tmp_path / "w.duckdb", Config())
    call = [{"trace": TRACE, "span": "0000000000000002", "parent": "0000000000000001", "start": 1, "attrs": CALL}]
    root = [{"trace": TRACE, "span": "0000000000000001", "attrs": {"feature": "helpdesk"}}]
    ws.ingest("otlp", [write(tmp_path / "first.json", otlp_json(call))])
    assert ws.store.sql("SELECT feature, sum(requests) FROM usage_hourly GROUP BY 1") == [(None, 1)]
    ws.ingest("otlp", [write(tmp_path / "later.json", otlp_json(root))])
    assert ws.store.sql("SELECT feature, sum(requests) FROM usage_hourly GROUP BY 1") == [("helpdesk", 1)]
    assert _stored(ws.store.raw) == _recomputed(ws.store.raw)
    ws.close()


def test_rollups_are_built_when_missing_or_when_the_band_edges_change(tmp_path: Path) -> None:
    rows = [(i, "t1", 30 * i, "chat", "r1", 1000, False, 1, 100.0) for i in range(6)]
    ws = open_workspace(tmp_path / "w.duckdb", Config())
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", _rows(rows))])
    want = _stored(ws.store.raw)
    # a workspace from before the rollups: no tables at all
    ws.store.raw.execute("DROP TABLE usage_hourly; DROP TABLE usage_latency; DROP TABLE usage_rollup_bands")
    ws.close()
    ro = open_store(tmp_path / "w.duckdb", read_only=True)
    assert rollups.edges_if_built(ro) is None  # read-only: the callers read the requests
    ro.close()
    store = open_store(tmp_path / "w.duckdb")
    assert _stored(store.raw) == want and rollups.stored_edges(store.raw) == EDGES
    # rollups written with other columns (an earlier version) are rebuilt when opened
    store.raw.execute("ALTER TABLE usage_hourly DROP COLUMN m_zz; DELETE FROM usage_hourly")
    store.close()
    store = open_store(tmp_path / "w.duckdb")
    assert _stored(store.raw) == want
    # rollups built with other band edges (another genai-prices) are rebuilt when opened
    store.raw.execute("DELETE FROM usage_rollup_bands WHERE edge = 200000; DELETE FROM usage_hourly")
    assert rollups.edges_if_built(store) is None
    store.close()
    store = open_store(tmp_path / "w.duckdb")
    assert _stored(store.raw) == want and rollups.stored_edges(store.raw) == EDGES
    store.close()


def test_covers_and_brackets() -> None:
    midnight, half_past = dt.datetime(2026, 10, 2), dt.datetime(2026, 10, 2, 16, 30)
    assert rollups.covers(Segmentation((midnight,), (200_000,)), EDGES)
    assert not rollups.covers(Segmentation((half_past,), ()), EDGES)  # a time-of-day price: read the requests
    assert not rollups.covers(Segmentation((), (150_000,)), EDGES)  # a threshold that is not a band edge
    # band k holds edges[k-1] < input <= edges[k]; the bracket counts the price thresholds below
    seg = Segmentation((), (128_000, 200_000))
    edges = (32_000, 128_000, 200_000)
    assert [rollups.bracket_of_band(seg, edges, b) for b in range(4)] == [0, 0, 1, 2]
    for tokens in (0, 32_000, 32_001, 128_000, 128_001, 200_000, 200_001):
        band = sum(tokens > e for e in edges)
        assert rollups.bracket_of_band(seg, edges, band) == sum(tokens > e for e in seg.token_edges)


def test_small_batches_into_one_hour_keep_few_rows_per_key(tmp_path: Path) -> None:
    """The OTLP receiver writes a batch per request: rollup rows are appended, then re-grouped past MAX_PARTS."""
    ws = open_workspace(tmp_path / "w.duckdb", Config())
    for b in range(2 * rollups.MAX_PARTS + 3):
        rows = [(100 + b, "", 5 + b % 40, "chat", "r1", 500, False, 1, 100.0)]
        ws.ingest("usage", [write_csv(tmp_path / f"{b}.csv", _rows(rows))])
    parts = ws.store.sql(
        "SELECT max(n), sum(n) FROM (SELECT count(*) AS n FROM usage_hourly GROUP BY hour, provider, model, band)"
    )[0]
    assert parts[0] <= rollups.MAX_PARTS and parts[1] < 2 * rollups.MAX_PARTS + 3  # re-grouped at least once
    assert _stored(ws.store.raw) == _recomputed(ws.store.raw)
    ws.close()


def test_rows_written_behind_ingestion_get_their_derived_data_when_opened(tmp_path: Path) -> None:
    """An older unitcost, or SQL straight into usage, adds rows without links, catalog, mixed units or rollups:
    the next open sees the row count differ from the model catalog's and rebuilds them."""
    ws = open_workspace(tmp_path / "w.duckdb", Config())
    rows = [(i, "t1", 30 * i, "chat", "r1", 1000, False, 1, 100.0) for i in range(4)]
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", _rows(rows))])
    ws.store.raw.execute(
        """INSERT INTO usage (ts, request_id, trace_id, provider, model, feature, input_tokens, unit_id, row_id)
        SELECT ts + INTERVAL 3 HOUR, request_id || 'x', trace_id, provider, model, 'search', input_tokens,
               unit_id, row_id + 100 FROM usage"""
    )
    ws.close()
    store = open_store(tmp_path / "w.duckdb")
    assert _stored(store.raw) == _recomputed(store.raw)
    assert store.sql("SELECT sum(requests) FROM usage_models") == [(8,)]
    assert store.sql("SELECT count(*) FROM usage_mixed_units WHERE dimension = 'feature'") == [(1,)]  # chat, search
    assert store.sql("SELECT count(*) FROM usage WHERE unit_next_ts IS NULL") == [(1,)]  # one unit, one last row
    store.close()

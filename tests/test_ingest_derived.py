"""What ingestion keeps besides the rows: the units-of-work links (``usage.unit_next_ts``), which count a
window's units exactly as the per-query ``GROUP BY unit_id`` does, and the model catalog (``usage_models``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from unittest.mock import patch

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import write_csv
from unitcost.analysis import cost_report, explain
from unitcost.analysis.explain import _cells
from unitcost.analysis.windows import Window
from unitcost.config import Config
from unitcost.store import open_store
from unitcost.store.units import is_last_in
from unitcost.workspace import open_workspace

T0 = dt.datetime(2026, 10, 1)


def _row(rid: str, trace: str | None, minute: int, feature: str | None = None) -> dict[str, object]:
    return {
        "model": "gpt-4o" if minute % 2 else "gpt-4o-mini",
        "request_id": rid,
        "trace_id": trace or "",
        "ts": (T0 + dt.timedelta(minutes=minute)).isoformat(),
        "provider": "openai",
        "input_tokens": 100,
        "output_tokens": 10,
        "status": "ok",
        "feature": feature or f"f{minute % 3}",
    }


def _expected_links(rows: list[tuple[str, str | None, int, int]]) -> dict[str, dt.datetime | None]:
    """By hand: per request, the start of the next request of its unit, ordered by (ts, ingestion order)."""
    by_unit: dict[str, list[tuple[int, int, str]]] = {}
    for rid, trace, minute, order in rows:
        by_unit.setdefault(trace or rid, []).append((minute, order, rid))
    out: dict[str, dt.datetime | None] = {}
    for members in by_unit.values():
        members.sort()
        for i, (_, _, rid) in enumerate(members):
            nxt = members[i + 1][0] if i + 1 < len(members) else None
            out[rid] = None if nxt is None else T0 + dt.timedelta(minutes=nxt)
    return out


def _stored_links(ws) -> dict[str, dt.datetime | None]:  # type: ignore[no-untyped-def]
    return dict(ws.store.sql("SELECT request_id, unit_next_ts FROM usage"))


def test_links_follow_traces_across_files_and_late_arrivals(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "w.duckdb", Config())
    # file 1: trace t1 at minutes 10 and 20, trace t2 at 5, a lone request
    first = [("a", "t1", 10), ("b", "t1", 20), ("c", "t2", 5), ("d", None, 7)]
    # file 2: t1 goes on (30), a late t1 request lands between (15), t2 gets one earlier than it had (1)
    second = [("e", "t1", 30), ("f", "t1", 15), ("g", "t2", 1), ("h", None, 8)]
    ws.ingest("usage", [write_csv(tmp_path / "1.csv", [_row(*r) for r in first])])
    ws.ingest("usage", [write_csv(tmp_path / "2.csv", [_row(*r) for r in second])])
    at = lambda m: T0 + dt.timedelta(minutes=m)  # noqa: E731
    assert _stored_links(ws) == {
        "g": at(5), "c": None,  # t2: g (1) -> c (5)
        "a": at(15), "f": at(20), "b": at(30), "e": None,  # t1: a (10) -> f (15) -> b (20) -> e (30)
        "d": None, "h": None,
    }  # fmt: skip
    ws.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.lists(st.tuples(st.sampled_from(["t1", "t2", "t3", None]), st.integers(0, 120)), min_size=1, max_size=8),
        min_size=1,
        max_size=4,
    ),
    end=st.integers(1, 121),
)
@example(batches=[[("t2", 5), ("t1", 7)], [("t3", 1), ("t2", 9), ("t1", 3)]], end=8)  # t2 mixed across files
def test_links_match_a_recompute_and_count_units_like_the_report(
    tmp_path_factory, batches: list[list[tuple[str | None, int]]], end: int
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("links")
    ws = open_workspace(folder / "w.duckdb", Config())
    seen: list[tuple[str, str | None, int, int]] = []
    for b, batch in enumerate(batches):
        rows = [(f"r{b}-{i}", trace, minute) for i, (trace, minute) in enumerate(batch)]
        # features by position, so requests of a unit that start at the same minute differ in feature; unit t1 is
        # all f0 (the feature filter keeps all of it or none)
        features = ["f0" if r[1] == "t1" else f"f{i % 3}" for i, r in enumerate(rows)]
        ws.ingest("usage", [write_csv(folder / f"{b}.csv", [_row(*r, f) for r, f in zip(rows, features, strict=True)])])
        seen += [(rid, trace, minute, len(seen) + i) for i, (rid, trace, minute) in enumerate(rows)]
        assert _stored_links(ws) == _expected_links(seen)  # after every batch, not only the last
        assert ws.store.sql("SELECT * FROM usage_models ORDER BY model") == ws.store.sql(
            "SELECT provider, model, min(ts), max(ts), count(*) FROM usage GROUP BY ALL ORDER BY model"
        )  # the model catalog too
        assert ws.store.sql("SELECT unit_id FROM usage_mixed_units WHERE dimension = 'feature' ORDER BY 1") == (
            ws.store.sql("SELECT unit_id FROM usage GROUP BY 1 HAVING count(DISTINCT feature) > 1 ORDER BY 1")
        )  # and the units of mixed features
    # the units of [T0, T0 + end) counted from the links equal the report's GROUP BY unit_id, per feature too
    # when no two requests of a unit start at the same minute (on a tie the report may credit either one)
    stop = T0 + dt.timedelta(minutes=end)
    linked = dict(
        ws.store.sql(
            f"SELECT feature, count(*) FILTER (WHERE {is_last_in('?')}) FROM usage WHERE ts >= ? AND ts < ? "
            "GROUP BY feature",
            [stop, T0, stop],
        )
    )
    report = cost_report(ws.store, ws.config, T0, stop, by=["feature"])
    assert sum(linked.values()) == report.units_of_work
    if len({(trace or rid, minute) for rid, trace, minute, _ in seen}) == len(seen):
        assert {r.key: r.units_of_work for r in report.breakdown["feature"]} == linked
    # explain of one feature: links for the units of one feature, a GROUP BY for the mixed ones == GROUP BY for all
    period, base = (
        Window(T0 + dt.timedelta(minutes=end // 2), stop, "p"),
        Window(T0, T0 + dt.timedelta(minutes=end // 2), "b"),
    )
    for feature in ("f0", "f1"):
        cells = _cells(ws.store, ws.config, period, base, ["feature"], set(), {"feature": feature})
        with patch.object(explain, "mixed_units", lambda store, dims: None):
            grouped = _cells(ws.store, ws.config, period, base, ["feature"], set(), {"feature": feature})
        keys = ["window", "feature", "provider", "model", "cache_hit", "pool"]
        pd.testing.assert_frame_equal(
            cells.sort_values(keys).reset_index(drop=True), grouped.sort_values(keys).reset_index(drop=True)
        )
    ws.close()


def test_a_workspace_without_links_or_mixed_units_gets_them_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    ws = open_workspace(path, Config())
    rows = [("a", "t1", 10), ("b", "t1", 20), ("c", None, 5)]
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", [_row(*r) for r in rows])])
    ws.store.raw.execute("ALTER TABLE usage DROP COLUMN unit_next_ts")  # as an older version wrote it
    ws.store.raw.execute("DROP TABLE usage_mixed_units")
    ws.close()
    store = open_store(path)
    assert dict(store.sql("SELECT request_id, unit_next_ts FROM usage")) == {
        "a": T0 + dt.timedelta(minutes=20),
        "b": None,
        "c": None,
    }
    # t1's requests are of features f1 and f2
    assert store.sql("SELECT k.unit_key, m.dimension FROM usage_mixed_units m JOIN unit_keys k USING (unit_id)") == [
        ("t1", "feature")
    ]
    store.close()


def test_the_model_catalog_is_rebuilt_for_an_older_workspace_and_clipped_to_a_range(tmp_path: Path) -> None:
    from unitcost.store.models import models_in

    path = tmp_path / "old.duckdb"
    ws = open_workspace(path, Config())
    rows = [("a", "t1", 10), ("b", "t1", 21), ("c", None, 40)]  # gpt-4o-mini at 10 and 40, gpt-4o at 21
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", [_row(*r) for r in rows])])
    ws.store.raw.execute("DROP TABLE usage_models")  # as an older version wrote it
    ws.close()
    store = open_store(path)
    at = lambda m: T0 + dt.timedelta(minutes=m)  # noqa: E731
    assert store.sql("SELECT model, first_ts, last_ts, requests FROM usage_models ORDER BY model") == [
        ("gpt-4o", at(21), at(21), 1),
        ("gpt-4o-mini", at(10), at(40), 2),
    ]
    # [15, 30): gpt-4o-mini's traffic spans it (a gap inside the range is fine: pricing it changes nothing)
    assert [(m["model"], m["first"], m["last"]) for m in models_in(store, at(15), at(30))] == [
        ("gpt-4o", at(21), at(21)),
        ("gpt-4o-mini", at(15), at(30) - dt.timedelta(microseconds=1)),
    ]
    assert models_in(store, at(41), at(50)) == []
    store.close()

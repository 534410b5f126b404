"""Unit economics on a case computed by hand, and invariants checked with hypothesis.

Every input token costs $0.001 (override: 1000 USD per million), so a request
with N thousand input tokens costs $N.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_csv
from unitcost.config import Config
from unitcost.workspace import open_workspace

CONFIG = Config.model_validate(
    {"prices": {"overrides": [{"provider": "p", "model": "m", "input_per_mtok": 1000, "output_per_mtok": 0}]}}
)

# request, trace, tenant, status, attempt, thousands of input tokens (= cost in $)
REQUESTS = [
    ("r1", "T1", "A", "error", 1, 1),  # failed first attempt of a ticket that succeeded -> retry waste
    ("r2", "T1", "A", "ok", 2, 2),
    ("r3", "T2", "A", "ok", 1, 4),  # ticket escalated to a human -> not a success
    ("r4", "T3", "B", "ok", 1, 8),  # no outcome row, last request ok -> success
    ("r5", "", "B", "error", 1, 16),  # no trace: its own unit, failed
    ("r6", "", "B", "ok", 1, 32),  # no trace: its own unit, succeeded
]
OUTCOMES = [("T1", "success"), ("T2", "escalated")]


def _workspace(tmp_path: Path):  # type: ignore[no-untyped-def]
    usage = [
        {
            "request_id": r,
            "trace_id": t,
            "tenant": ten,
            "status": s,
            "attempt": a,
            "ts": f"2026-10-01T10:00:0{i}Z",
            "provider": "p",
            "model": "m",
            "input_tokens": k * 1000,
            "output_tokens": 10,
        }
        for i, (r, t, ten, s, a, k) in enumerate(REQUESTS)
    ]
    outcomes = [{"trace_id": t, "ts": "2026-10-01T11:00:00Z", "outcome": o} for t, o in OUTCOMES]
    ws = open_workspace(tmp_path / "w.duckdb", CONFIG)
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", usage)])
    ws.ingest("outcomes", [write_csv(tmp_path / "o.csv", outcomes)])
    return ws


def test_cost_per_successful_outcome_by_hand(tmp_path: Path) -> None:
    with _workspace(tmp_path) as ws:
        r = ws.report(by=["tenant"])
    assert r.total_cost_usd == pytest.approx(63)
    assert r.requests == 6
    assert r.units_of_work == 5  # T1, T2, T3, r5, r6
    assert r.successful_outcomes == 3  # T1 (outcome), T3 (inferred), r6 (inferred)
    assert r.cost_per_request_usd == pytest.approx(63 / 6)
    assert r.cost_per_successful_outcome_usd == pytest.approx(63 / 3)
    assert r.waste_failed_units_usd == pytest.approx(4 + 16)  # T2 and r5
    assert r.waste_retries_usd == pytest.approx(1)  # r1
    assert r.waste_usd == pytest.approx(21)
    tenants = {row.key: row for row in r.breakdown["tenant"]}
    assert tenants["A"].cost_usd == pytest.approx(7)
    assert tenants["A"].successful_outcomes == 1
    assert tenants["A"].cost_per_successful_outcome_usd == pytest.approx(7)
    assert tenants["A"].waste_usd == pytest.approx(5)
    assert tenants["B"].cost_usd == pytest.approx(56)
    assert tenants["B"].successful_outcomes == 2
    assert tenants["B"].cost_per_successful_outcome_usd == pytest.approx(28)


def test_period_filter_and_to_date_includes_the_day(tmp_path: Path) -> None:
    with _workspace(tmp_path) as ws:
        assert ws.report("2026-10-01", "2026-10-01").requests == 6
        assert ws.report("2026-10-02").requests == 0
        assert ws.report(None, "2026-10-01T10:00:02Z").requests == 2  # end is exclusive for timestamps


def test_timeseries_sums_to_report(tmp_path: Path) -> None:
    with _workspace(tmp_path) as ws:
        series = ws.timeseries(grain="hour", by="tenant")
        total = ws.report().total_cost_usd
    assert sum(series.column("cost_usd").to_pylist()) == pytest.approx(total)
    assert sorted(set(series.column("key").to_pylist())) == ["A", "B"]


def test_timeseries_without_units_has_the_same_cost_and_no_unit_columns(tmp_path: Path) -> None:
    from unitcost.analysis import cost_timeseries

    with _workspace(tmp_path) as ws:
        full = cost_timeseries(ws.store, ws.config, grain="hour", by="tenant")
        lean = cost_timeseries(ws.store, ws.config, grain="hour", by="tenant", units=False)
    assert lean.column("cost_usd").to_pylist() == full.column("cost_usd").to_pylist()
    assert lean.column("requests").to_pylist() == full.column("requests").to_pylist()
    assert "units_of_work" in full.column_names and "units_of_work" not in lean.column_names
    assert "waste_failed_units_usd" not in lean.column_names


def test_report_without_units_has_the_same_cost(tmp_path: Path) -> None:
    from unitcost.analysis import cost_report

    with _workspace(tmp_path) as ws:
        full = cost_report(ws.store, ws.config, by=["tenant"])
        lean = cost_report(ws.store, ws.config, by=["tenant"], units=False)
    assert lean.total_cost_usd == pytest.approx(full.total_cost_usd) and lean.requests == full.requests
    assert [(r.key, r.cost_usd) for r in lean.breakdown["tenant"]] == [
        (r.key, r.cost_usd) for r in full.breakdown["tenant"]
    ]
    assert full.units_of_work > 0 and lean.units_of_work == 0 and lean.successful_outcomes == 0


usage_rows = st.lists(
    st.tuples(
        st.integers(0, 5),  # trace (0 = none)
        st.sampled_from(["A", "B", "C"]),
        st.sampled_from(["ok", "error"]),
        st.integers(0, 50_000),
        st.integers(0, 5_000),
        st.sampled_from([("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("p", "m"), ("x", "unknown")]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=usage_rows)
def test_breakdowns_add_up_to_the_total(tmp_path_factory: pytest.TempPathFactory, rows: list) -> None:  # type: ignore[type-arg]
    tmp = tmp_path_factory.mktemp("prop")
    usage = [
        {
            "request_id": f"r{i}",
            # a trace always belongs to one tenant, so tenant is a unit-level dimension
            "trace_id": f"T{trace}-{tenant}" if trace else "",
            "tenant": tenant,
            "status": status,
            "ts": "2026-10-01T10:00:00Z",
            "provider": prov,
            "model": model,
            "input_tokens": inp,
            "output_tokens": out,
        }
        for i, (trace, tenant, status, inp, out, (prov, model)) in enumerate(rows)
    ]
    with open_workspace(tmp / "w.duckdb", CONFIG) as ws:
        ws.ingest("usage", [write_csv(tmp / "u.csv", usage)])
        r = ws.report(by=["tenant", "model"])
    for dim in ("tenant", "model"):
        # sums of DECIMAL costs: equal to well under a cent (rounding both to cents would flap at half-cents)
        assert sum(b.cost_usd for b in r.breakdown[dim]) == pytest.approx(r.token_cost_usd, abs=1e-6)
        assert r.total_cost_usd == pytest.approx(r.token_cost_usd, abs=1e-9)  # no bill: fully loaded = tokens
        assert sum(b.requests for b in r.breakdown[dim]) == r.requests
        assert sum(b.unpriced_requests for b in r.breakdown[dim]) == r.unpriced_requests
    assert sum(b.successful_outcomes for b in r.breakdown["tenant"]) == r.successful_outcomes
    assert sum(b.units_of_work for b in r.breakdown["tenant"]) == r.units_of_work
    assert r.unpriced_requests == sum(1 for row in rows if row[5] == ("x", "unknown"))
    assert 0 <= r.waste_usd <= r.total_cost_usd + 1e-9
    assert r.successful_outcomes <= r.units_of_work

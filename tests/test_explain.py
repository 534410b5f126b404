"""`unitcost explain`: exact driver decomposition, hand-checked, property-tested, and on the demo's events."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from unitcost.analysis.decompose import centred_shares, shapley_product
from unitcost.analysis.explain import TOKEN_DRIVERS, explain_change
from unitcost.analysis.windows import Window, parse_window
from unitcost.cli import app
from unitcost.config import Config
from unitcost.errors import PeriodError
from unitcost.workspace import Workspace, open_workspace

BASE = Window(dt.datetime(2026, 10, 12), dt.datetime(2026, 10, 13), "2026-10-12")
PERIOD = Window(dt.datetime(2026, 10, 19), dt.datetime(2026, 10, 20), "2026-10-19")
# gpt-4o-mini (genai-prices): $0.15 / M input, $0.60 / M output
IN_PRICE, OUT_PRICE = 0.15e-6, 0.60e-6


def rows(day: dt.datetime, units: int, input_tokens: int, output_tokens: int, prefix: str, **extra: Any) -> list[dict]:
    return [
        {
            "ts": (day + dt.timedelta(minutes=i)).isoformat(),
            "request_id": f"{prefix}-{i}",
            "trace_id": f"{prefix}-t{i}",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "feature": "bot",
            "tenant": "acme",
            "status": "ok",
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            **extra,
        }
        for i in range(units)
    ]


def load(ws: Workspace, csv_file: Callable[[str, list[dict]], Path], data: list[dict]) -> None:
    ws.ingest("usage", [csv_file("usage.csv", data)])


def by_driver(e: Any) -> dict[str, float]:
    return {d.driver: d.change_usd for d in e.drivers}


def test_volume_alone_is_all_volume(workspace: Workspace, csv_file: Callable) -> None:
    load(workspace, csv_file, rows(BASE.start, 10, 1000, 100, "b") + rows(PERIOD.start, 20, 1000, 100, "p"))
    e = explain_change(workspace.store, workspace.config, PERIOD, BASE)
    per_request = 1000 * IN_PRICE + 100 * OUT_PRICE
    assert e.cost_baseline_usd == pytest.approx(10 * per_request)
    assert e.change_usd == pytest.approx(10 * per_request)
    d = by_driver(e)
    assert d["volume"] == pytest.approx(10 * per_request)
    assert all(abs(v) < 1e-12 for k, v in d.items() if k != "volume")
    assert e.basis == "token"


def test_volume_and_input_tokens_share_their_interaction_equally(workspace: Workspace, csv_file: Callable) -> None:
    # units 10 -> 20 and input tokens per request 1000 -> 2000; output unchanged
    load(workspace, csv_file, rows(BASE.start, 10, 1000, 100, "b") + rows(PERIOD.start, 20, 2000, 100, "p"))
    e = explain_change(workspace.store, workspace.config, PERIOD, BASE)
    i, o = 1000 * IN_PRICE, 100 * OUT_PRICE  # input and output cost of one baseline request
    d = by_driver(e)
    # Shapley on U * t * i: volume = (20-10) * (1+2)/2 * i, tokens = (2-1) * (10+20)/2 * i; output: volume 10 * o
    assert d["volume"] == pytest.approx(15 * i + 10 * o)
    assert d["input_tokens_per_request"] == pytest.approx(15 * i)
    assert e.change_usd == pytest.approx(40 * i + 20 * o - 10 * i - 10 * o)
    assert abs(e.residual_usd) < 1e-12


def test_retries_cache_and_mix_are_separated(workspace: Workspace, csv_file: Callable) -> None:
    base = rows(BASE.start, 10, 1000, 100, "b")
    # same units; each unit now has a failed first attempt (retries), and half the input is a cache read
    period = rows(PERIOD.start, 10, 1000, 100, "p", cache_read_tokens=500)
    period += [
        {**r, "request_id": r["request_id"] + "-retry", "status": "error", "ts": r["ts"][:-2] + "30"}
        for r in rows(PERIOD.start, 10, 1000, 100, "p", cache_read_tokens=500)
    ]
    load(workspace, csv_file, base + period)
    e = explain_change(workspace.store, workspace.config, PERIOD, BASE)
    d = by_driver(e)
    assert d["retries"] > 0 and d["cache"] < 0
    assert d["volume"] == pytest.approx(0, abs=1e-12)
    assert d["mix"] == pytest.approx(0, abs=1e-12)
    assert sum(d.values()) == pytest.approx(e.change_usd, abs=1e-12)
    # contributors of a driver add up to it, per dimension
    for drv in e.drivers:
        for dim in ("tenant", "feature", "model"):
            parts = [c.change_usd for c in drv.top_contributors if c.dimension == dim]
            if parts:
                assert sum(parts) == pytest.approx(drv.change_usd, abs=1e-9)


def test_empty_baseline_is_a_clear_error(workspace: Workspace, csv_file: Callable) -> None:
    load(workspace, csv_file, rows(PERIOD.start, 5, 1000, 100, "p"))
    with pytest.raises(PeriodError, match="baseline 2026-10-12 has no usage rows"):
        explain_change(workspace.store, workspace.config, PERIOD, BASE)
    with pytest.raises(PeriodError, match="overlap"):
        explain_change(workspace.store, workspace.config, PERIOD, PERIOD)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda k: st.tuples(
            st.lists(st.lists(st.floats(0, 50), min_size=k, max_size=k), min_size=1, max_size=8),
            st.lists(st.lists(st.floats(0, 50), min_size=k, max_size=k), min_size=1, max_size=8),
        )
    )
)
def test_shapley_contributions_add_up_exactly(pair: tuple[list[list[float]], list[list[float]]]) -> None:
    a, b = pair
    n = min(len(a), len(b))
    x0, x1 = np.array(a[:n]), np.array(b[:n])
    phi = shapley_product(x0, x1)
    change = x1.prod(axis=1) - x0.prod(axis=1)
    scale = max(1.0, float(np.abs(phi).max()))  # float rounding is relative to the largest partial product
    assert np.allclose(phi.sum(axis=1), change, rtol=0, atol=1e-12 * scale)
    same = x0 == x1  # a factor that does not change contributes nothing
    assert np.allclose(phi[same], 0.0, atol=1e-12 * scale)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(  # the ratios' parts are counts: tokens, requests, units
        st.tuples(st.integers(0, 10**6), st.integers(0, 1000), st.integers(0, 10**6), st.integers(0, 1000)),
        min_size=1,
        max_size=9,
    )
)
def test_centred_shares_add_up_to_one(parts: list[tuple[int, int, int, int]]) -> None:
    n0, d0, n1, d1 = (np.array(c, dtype=np.float64) for c in zip(*parts, strict=True))
    shares = centred_shares(n0, d0, n1, d1)
    assert shares.sum() == pytest.approx(1.0, abs=1e-6)


def test_a_new_release_carries_its_whole_difference() -> None:
    # release A (baseline only, 10 tokens per call) replaced by release B (period only, 14 per call)
    shares = centred_shares(
        np.array([100.0, 0.0]), np.array([10.0, 0.0]), np.array([0.0, 140.0]), np.array([0.0, 10.0])
    )
    assert shares.tolist() == [0.0, 1.0]


usage_rows = st.lists(
    st.tuples(
        st.integers(0, 1),  # window
        st.sampled_from(["bot", "search"]),
        st.sampled_from(["gpt-4o-mini", "gpt-4o"]),
        st.sampled_from(["acme", "globex", None]),
        st.integers(0, 5000),
        st.integers(0, 100),  # cache read % of input
        st.integers(0, 800),
        st.booleans(),  # error
        st.integers(0, 4),  # trace
        st.booleans(),  # response cache hit
    ),
    min_size=2,
    max_size=30,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage_rows)
def test_drivers_add_up_to_the_change_on_any_data(tmp_path_factory: pytest.TempPathFactory, data: list) -> None:
    records = []
    for i, (w, feature, model, tenant, inp, pct, out, err, trace, hit) in enumerate(data):
        day = PERIOD.start if w else BASE.start
        records.append(
            {
                "ts": (day + dt.timedelta(minutes=i)).isoformat(),
                "request_id": f"r{i}",
                "trace_id": f"t{w}-{trace}",
                "provider": "openai",
                "model": model,
                "feature": feature,
                "tenant": tenant,
                "status": "error" if err else "ok",
                "input_tokens": 0 if hit else inp,
                "cache_read_tokens": 0 if hit else inp * pct // 100,
                "output_tokens": 0 if hit else out,
                "response_cache_hit": hit,
            }
        )
    if not any(r[0] == 0 for r in data) or not any(r[0] == 1 for r in data):
        return
    from conftest import write_csv

    folder = tmp_path_factory.mktemp("prop")
    with open_workspace(folder / "w.duckdb", Config()) as ws:
        ws.ingest("usage", [write_csv(folder / "u.csv", records)])
        e = explain_change(ws.store, ws.config, PERIOD, BASE, top=100)
    scale = max(1.0, abs(e.cost_baseline_usd), abs(e.cost_period_usd))
    assert abs(e.residual_usd) <= 1e-9 * scale
    for drv in e.drivers:
        for dim in ("tenant", "feature", "model"):
            parts = [c.change_usd for c in drv.top_contributors if c.dimension == dim]
            # contributors under half a cent are not listed; the rest add up to the driver
            assert sum(parts) == pytest.approx(drv.change_usd, abs=0.005 * 4 + 1e-9 * scale)


def test_windows_parse_shortcuts_and_ranges() -> None:
    ref = dt.datetime(2026, 10, 21, 9, 0)  # a Wednesday
    assert parse_window("this-week", ref).describe() == "2026-10-19..2026-10-20"
    assert parse_window("last-week", ref).describe() == "2026-10-12..2026-10-18"
    p = parse_window("2026-10-12..2026-10-18", ref)
    assert (p.start, p.end) == (dt.datetime(2026, 10, 12), dt.datetime(2026, 10, 19))
    assert parse_window("previous-period", ref, relative_to=p).describe() == "2026-10-05..2026-10-11"
    with pytest.raises(PeriodError, match="expected a date"):
        parse_window("last-fortnight", ref)


@pytest.fixture(scope="module")
def regression_day(demo_workspace: Workspace) -> Any:
    ev = next(e for e in demo_workspace.demo_events if e.name == "prompt-regression")  # type: ignore[attr-defined]
    day = ev.start.date().isoformat()
    return ev, demo_workspace.explain(day, "same-day-last-week", basis="token")


def test_demo_prompt_regression_is_input_tokens_on_support_v14(regression_day: Any) -> None:
    ev, e = regression_day
    ranked = sorted(e.drivers, key=lambda d: -d.change_usd)
    top = ranked[0]
    assert top.driver == "input_tokens_per_request"
    assert top.change_usd > 0.5 * e.change_usd > 0  # most of the day's increase
    mostly = {(c.dimension, c.key) for c in top.mostly}
    assert ("feature", ev.feature) in mostly and ("prompt_version", ev.prompt_version) in mostly
    assert "input tokens per request" in e.summary and ev.prompt_version in e.summary


def test_demo_fully_loaded_explain_adds_up_with_layers(demo_workspace: Workspace, regression_day: Any) -> None:
    ev, _ = regression_day
    e = demo_workspace.explain(ev.start.date().isoformat(), "same-day-last-week")
    assert e.basis == "fully loaded"
    names = {d.driver for d in e.drivers}
    assert set(TOKEN_DRIVERS) <= names and "layer:people" in names and "model_api_billing" in names
    assert abs(e.residual_usd) < 1e-6
    for d in e.drivers:
        if d.driver.startswith("layer:"):  # each layer splits into volume and rate
            assert d.detail["volume_usd"] + d.detail["rate_usd"] == pytest.approx(d.change_usd, abs=1e-9)
    people = next(d for d in e.drivers if d.driver == "layer:people")
    assert people.change_usd > 0  # the incident's hours are on the regression day
    report = demo_workspace.report(ev.start.date().isoformat(), ev.start.date().isoformat())
    assert e.cost_period_usd == pytest.approx(report.total_cost_usd)


def test_cli_explain_json(demo_workspace: Workspace, regression_day: Any) -> None:
    ev, _ = regression_day
    db = demo_workspace.store.path  # type: ignore[attr-defined]
    result = CliRunner().invoke(
        app, ["--db", str(db), "explain", "--period", ev.start.date().isoformat(), "--basis", "token", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc["cost_usd"]) == {"period", "baseline", "change", "change_pct"}
    total = sum(d["change_usd"] for d in doc["drivers"]) + doc["residual_usd"]
    assert total == pytest.approx(doc["cost_usd"]["change"])
    assert {"driver", "change_usd", "share_pct", "top_contributors"} <= set(doc["drivers"][0])
    bad = CliRunner().invoke(app, ["--db", str(db), "explain", "--period", "2026-13-01"])
    assert bad.exit_code == 2 and "expected a date" in bad.output


def test_a_filter_counts_units_among_the_rows_it_keeps(tmp_path: Path) -> None:
    """Each unit is a router call then a bot call: filtered to the router, the unit ends on its router call
    (the stored link points at the bot call, which the filter drops)."""
    from conftest import write_csv

    base = Window(dt.datetime(2026, 10, 12), dt.datetime(2026, 10, 13), "b")
    period = Window(dt.datetime(2026, 10, 13), dt.datetime(2026, 10, 14), "p")

    def units(day: dt.datetime, n: int, prefix: str) -> list[dict[str, Any]]:
        return [
            {"ts": (day + dt.timedelta(minutes=10 * i, seconds=j)).isoformat(), "request_id": f"{prefix}{i}-{j}",
             "trace_id": f"{prefix}{i}", "provider": "openai", "model": "gpt-4o", "feature": feature,
             "status": "ok", "input_tokens": 1000, "output_tokens": 100}
            for i in range(n)
            for j, feature in enumerate(("router", "bot"))
        ]  # fmt: skip

    ws = open_workspace(tmp_path / "w.duckdb", Config())
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", units(base.start, 10, "b") + units(period.start, 20, "p"))])
    e = explain_change(ws.store, ws.config, period, base, where={"feature": "router"})
    assert (e.metrics["baseline"]["units_of_work"], e.metrics["period"]["units_of_work"]) == (10, 20)
    drivers = {d.driver: d.change_usd for d in e.drivers}
    assert drivers["volume"] == pytest.approx(e.change_usd)  # twice the units, same units: all volume
    assert abs(e.residual_usd) < 1e-9
    ws.close()

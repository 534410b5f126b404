"""`unitcost forecast`: sample paths checked against statsforecast, month-end arithmetic by hand, synthetic series
with a known weekly pattern, short-history fallbacks, and the scopes of the demo workspace."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from unitcost.analysis.dashboard import daily_cost_by_layer
from unitcost.analysis.forecast import (
    BACKTEST_MODELS,
    OTHER,
    backtest_costs,
    backtest_series,
    forecast_costs,
    forecast_series,
    linear_trend,
    seasonal_naive,
    simulate_ets,
)
from unitcost.config import LAYERS
from unitcost.errors import InvalidOptionError, PeriodError
from unitcost.report.forecast import fan_chart_figure, render_backtest, render_forecast, write_forecast_html
from unitcost.workspace import Workspace

DAY = dt.timedelta(days=1)


def weekly_series(days: int, noise: float, *, start: dt.date = dt.date(2026, 1, 5), seed: int = 0) -> dict:
    """Weekdays $100, weekends $40, +$1 a day, normal noise: the truth the forecasts should recover."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(days):
        day = start + i * DAY
        out[day] = max((40.0 if day.weekday() >= 5 else 100.0) + i + rng.normal(0, noise), 0.0)
    return out


def truth(day: dt.date, start: dt.date = dt.date(2026, 1, 5)) -> float:
    return (40.0 if day.weekday() >= 5 else 100.0) + (day - start).days


# The sample paths ---------------------------------------------------------------------------------------------


def _fitted(spec: str, damped: bool | None) -> object:
    from statsforecast.models import AutoETS

    y = np.array(list(weekly_series(70, 4).values()))
    return AutoETS(season_length=7, model=spec, damped=damped).fit(y)


@pytest.mark.parametrize(("spec", "damped"), [("AAA", True), ("ANA", None), ("MAM", True), ("MNN", None)])
def test_paths_equal_statsforecast_simulate_given_the_same_draws(spec: str, damped: bool | None) -> None:
    # statsforecast draws each path's errors as rng.normal(0, sigma, h), path after path; feed ours the same
    fitted = _fitted(spec, damped)
    model = fitted.model_  # type: ignore[attr-defined]
    rng = np.random.default_rng(11)
    errors = np.stack([rng.normal(0, math.sqrt(model["sigma2"]), 20) for _ in range(30)])
    state = np.random.get_state()  # their simulate also seeds numpy's global generator
    try:
        theirs = fitted.simulate(h=20, n_paths=30, seed=11)  # type: ignore[attr-defined]
    finally:
        np.random.set_state(state)
    np.testing.assert_allclose(simulate_ets(model, errors), theirs, rtol=1e-12, atol=1e-9)


def test_undamped_trend_is_kept() -> None:
    # statsforecast 2.1's simulate turns the NaN phi of an undamped trend into 0 and loses the trend;
    # our zero-error path must be the model's point forecast, trend included
    fitted = _fitted("AAA", False)
    model = fitted.model_  # type: ignore[attr-defined]
    zero_error = simulate_ets(model, np.zeros((1, 21)))[0]
    np.testing.assert_allclose(zero_error, fitted.predict(21)["mean"], rtol=1e-9)  # type: ignore[attr-defined]
    assert zero_error[14:].mean() > zero_error[:7].mean() + 10  # +$1 a day over two weeks


# Hand-checked arithmetic --------------------------------------------------------------------------------------


def test_flat_ten_dollars_a_day_month_end_by_hand() -> None:
    daily = {dt.date(2026, 10, d): 10.0 for d in range(1, 21)}
    daily[dt.date(2026, 10, 21)] = 5.0  # half of the 21st so far
    f = forecast_series(daily, dt.datetime(2026, 10, 21, 12), months=2)
    me = f.month_end
    assert me.actual_to_date_usd == pytest.approx(205.0)
    # rest of the 21st (half a day) + 22nd..31st (10 days)
    assert me.forecast_usd == pytest.approx(205.0 + 10 * 0.5 + 10 * 10, abs=1e-6)
    assert me.high_95 - me.low_95 < 0.01  # type: ignore[operator]
    assert [(m.month, round(m.forecast_usd, 6)) for m in f.months] == [("2026-11", 300.0), ("2026-12", 310.0)]
    assert f.daily[0].day == dt.date(2026, 10, 21) and f.daily[-1].day == dt.date(2026, 12, 31)


def test_seasonal_naive_and_linear_trend_by_hand() -> None:
    train = np.array([1.0, 2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6, 7, 8])
    point, bounds = seasonal_naive(train, h=9)
    # residuals y_t - y_{t-7} are all 1: sigma 1; h 8 and 9 are a week further: sigma * sqrt(2)
    assert point.tolist() == [2, 3, 4, 5, 6, 7, 8, 2, 3]
    assert bounds is not None
    assert bounds[3, 0] - point[0] == pytest.approx(1.959964, abs=1e-6)
    assert bounds[3, 8] - point[8] == pytest.approx(1.959964 * math.sqrt(2), abs=1e-6)
    point, bounds = linear_trend(np.array([1.0, 3.0, 5.0, 7.0]), h=2)
    assert point.tolist() == pytest.approx([9.0, 11.0])
    assert bounds is not None and np.allclose(bounds, np.array([9.0, 11.0]))  # a perfect line: no spread


# A known weekly pattern ---------------------------------------------------------------------------------------


def test_weekly_pattern_and_trend_are_recovered() -> None:
    daily = weekly_series(56, noise=3)  # 5 Jan .. 1 Mar 2026
    f = forecast_series(daily, dt.datetime(2026, 3, 2))
    assert f.model.startswith("ETS(A,A") and f.model.endswith(",A)")
    two_weeks = f.daily[:14]
    weekdays = [d.forecast_usd for d in two_weeks if d.day.weekday() < 5]
    weekends = [d.forecast_usd for d in two_weeks if d.day.weekday() >= 5]
    assert np.mean(weekdays) - np.mean(weekends) == pytest.approx(60, abs=8)
    for d in two_weeks:
        assert d.forecast_usd == pytest.approx(truth(d.day), rel=0.08)
        assert d.low_95 <= truth(d.day) <= d.high_95  # type: ignore[operator]


def test_backtest_beats_seasonal_naive_on_a_trended_weekly_series() -> None:
    b = backtest_series(weekly_series(120, noise=5), dt.datetime(2026, 5, 5), weeks=6)
    assert len(b.weeks) == 6 and {s.points for s in b.scores.values()} == {42}
    main, naive = b.scores["main"], b.scores["seasonal_naive"]
    # last week repeated lags the trend by $7 a day; the ETS trend does not
    assert main.mape_pct < 0.8 * naive.mape_pct  # type: ignore[operator]
    assert main.wape_pct < naive.wape_pct  # type: ignore[operator]


def test_interval_coverage_on_a_long_noisy_series() -> None:
    b = backtest_series(weekly_series(180, noise=10, seed=1), dt.datetime(2026, 7, 4), weeks=8)
    main = b.scores["main"]
    assert main.points == 56
    assert 60 <= main.coverage_80_pct <= 97  # type: ignore[operator]
    assert main.coverage_95_pct >= 80  # type: ignore[operator]


def _sum_sd(model: dict, h: int) -> float:
    """Standard deviation of the sum of h days of an additive ETS model.

    The forecast error of day i is e_i + sum_j c_j e_(i-j), with c_j = alpha + beta * phi_j + gamma * [j % 7 == 0]
    (the variance table of FPP3 section 8.7), so the sum's error puts 1 + c_1 + ... + c_(h-k) on e_k."""
    components = model["components"]
    alpha, beta, gamma, phi = (0.0 if math.isnan(v) else float(v) for v in model["par"][:4])

    def c(j: int) -> float:
        trend = (
            0.0
            if components[1] == "N"
            else beta * (j if components[3] == "N" else sum(phi**i for i in range(1, j + 1)))
        )
        return alpha + trend + (gamma if components[2] == "A" and j % 7 == 0 else 0.0)

    weights = [1 + sum(c(j) for j in range(1, h - k + 1)) for k in range(1, h + 1)]
    return math.sqrt(model["sigma2"] * sum(w * w for w in weights))


def test_month_interval_is_the_sum_of_correlated_days() -> None:
    from unitcost.analysis.forecast import _fit_ets

    daily = weekly_series(86, noise=10, seed=1)  # 5 January to 31 March; forecast April from midnight
    f = forecast_series(daily, dt.datetime(2026, 4, 1))
    half_widths = np.array([(d.high_95 - d.low_95) / 2 for d in f.daily if d.day.month == 4])  # type: ignore[operator]
    month = (f.month_end.high_95 - f.month_end.low_95) / 2  # type: ignore[operator]
    # the analytic variance of the month's sum under the same model (the paths bootstrap, the formula is normal)
    model = _fit_ets(np.array(list(daily.values())))
    assert f.model == "ETS(A,A,A)" and model["components"] == "AAAN"
    assert month == pytest.approx(1.959964 * _sum_sd(model, 30), rel=0.05)
    # wider than any day, far narrower than adding the days' intervals (which assumes perfectly correlated days),
    # and not narrower than independent days would give: ETS errors are positively correlated across days
    assert len(half_widths) == 30
    assert half_widths.max() < month < 0.5 * half_widths.sum()
    assert month > math.sqrt(float(np.sum(half_widths**2)))


# Short histories ----------------------------------------------------------------------------------------------


def test_two_days_use_the_run_rate_without_interval() -> None:
    daily = {dt.date(2026, 10, 20): 8.0, dt.date(2026, 10, 21): 12.0}
    f = forecast_series(daily, dt.datetime(2026, 10, 22))
    assert f.model == "run_rate" and "no interval" in f.model_reason
    assert f.month_end.forecast_usd == pytest.approx(20.0 + 10.0 * 10)  # 22nd..31st at $10 a day
    assert f.month_end.low_95 is None and f.daily[0].high_80 is None and not f.has_interval
    fig = fan_chart_figure(_as_result(f), "all")
    assert not [t for t in fig.data if "interval" in (t.name or "")]


def test_ten_days_use_the_mean_with_an_interval() -> None:
    daily = {dt.date(2026, 10, d): 10.0 + (d % 3) for d in range(11, 21)}
    f = forecast_series(daily, dt.datetime(2026, 10, 21))
    assert f.model == "mean" and "10 complete days" in f.model_reason
    mean = np.mean(list(daily.values()))  # $11.10
    assert f.month_end.forecast_usd == pytest.approx(f.month_end.actual_to_date_usd + 11 * mean, rel=0.02)
    assert f.month_end.low_95 < f.month_end.forecast_usd < f.month_end.high_95  # type: ignore[operator]


def test_a_key_new_today_is_projected_from_its_partial_day() -> None:
    f = forecast_series({dt.date(2026, 10, 21): 3.0}, dt.datetime(2026, 10, 21, 6))  # $3 in a quarter day
    assert f.model == "run_rate" and f.history == []
    assert f.month_end.forecast_usd == pytest.approx(3.0 + 12.0 * 0.75 + 12.0 * 10)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    costs=st.lists(st.floats(0, 1000, allow_nan=False), min_size=0, max_size=40),
    partial=st.floats(0, 100, allow_nan=False),
    seconds=st.integers(0, 86_399),
    months=st.integers(1, 3),
)
def test_projection_invariants(costs: list[float], partial: float, seconds: int, months: int) -> None:
    at = dt.datetime(2026, 10, 25) + dt.timedelta(seconds=seconds)
    daily = {at.date() - (len(costs) - i) * DAY: c for i, c in enumerate(costs)}
    daily[at.date()] = partial
    f = forecast_series(daily, at, months=months, paths=300)
    in_month = sum(c for d, c in f.history if d.month == 10)
    assert f.month_end.actual_to_date_usd == pytest.approx(in_month + partial)
    assert [m.month for m in f.months] == ["2026-11", "2026-12", "2027-01"][:months]
    horizon_end = [dt.date(2026, 12, 1), dt.date(2027, 1, 1), dt.date(2027, 2, 1)][months - 1]
    assert len(f.daily) == (horizon_end - at.date()).days
    for m in [f.month_end, *f.months]:
        assert m.forecast_usd >= m.actual_to_date_usd - 1e-9
        if m.low_95 is not None:
            bounds = [m.actual_to_date_usd, m.low_95, m.low_80, m.high_80, m.high_95]
            assert bounds == sorted(bounds)


# The demo workspace -------------------------------------------------------------------------------------------


def test_feature_scope_gives_one_series_per_feature(demo_workspace: Workspace) -> None:
    ws = demo_workspace
    features = {r[0] for r in ws.store.sql("SELECT DISTINCT feature FROM usage WHERE feature IS NOT NULL")}
    r = forecast_costs(ws.store, ws.config, scope="feature")
    assert r.basis == "token" and {k.key for k in r.keys} == features and r.other_keys == 0
    costs = [k.month_end.actual_to_date_usd for k in r.keys]
    assert costs == sorted(costs, reverse=True)
    top = forecast_costs(ws.store, ws.config, scope="feature", top=2)
    assert [k.key for k in top.keys] == [*(k.key for k in r.keys[:2]), OTHER] and top.other_keys == 1
    assert top.actual_to_date_usd == pytest.approx(r.actual_to_date_usd, abs=0.005)


def test_all_scope_month_to_date_is_the_daily_series_to_the_cent(demo_workspace: Workspace) -> None:
    ws = demo_workspace
    r = forecast_costs(ws.store, ws.config, scope="all", months=2)
    assert r.basis == "fully loaded" and [k.key for k in r.keys] == ["all"]
    month_start = dt.datetime(r.at.year, r.at.month, 1)
    daily = daily_cost_by_layer(ws.store, ws.config, month_start, r.at)
    expected = sum(daily.column("cost_usd").to_pylist())
    assert r.keys[0].month_end.actual_to_date_usd == pytest.approx(expected, abs=0.005)
    assert r.keys[0].month_end.low_95 >= expected - 0.005  # type: ignore[operator]
    layers = forecast_costs(ws.store, ws.config, scope="layer")
    assert {k.key for k in layers.keys} <= set(LAYERS) and {"gpu_compute", "model_api", "people"} <= {
        k.key for k in layers.keys
    }
    assert layers.actual_to_date_usd == pytest.approx(expected, abs=0.005)


def test_json_contract(demo_workspace: Workspace) -> None:
    ws = demo_workspace
    doc = json.loads(json.dumps(forecast_costs(ws.store, ws.config, scope="tenant", top=3).to_json()))
    assert {"scope", "basis", "at", "month", "paths", "other_keys", "total", "keys", "notes"} <= set(doc)
    key = doc["keys"][0]
    assert {"key", "model", "model_reason", "history", "partial_day", "month_end", "months", "daily"} <= set(key)
    assert {"first_day", "last_day", "days", "total_usd", "daily"} <= set(key["history"])
    interval = {"forecast_usd", "low_80", "high_80", "low_95", "high_95"}
    assert interval | {"month", "actual_to_date_usd", "remaining_usd"} <= set(key["month_end"])
    assert interval | {"month"} <= set(key["months"][0]) and interval | {"day"} <= set(key["daily"][0])
    back = json.loads(json.dumps(backtest_costs(ws.store, ws.config, scope="feature").to_json()))
    assert {"scope", "basis", "at", "weeks", "overall", "keys", "notes"} <= set(back)
    for scores in [back["overall"], back["keys"][0]["models"]]:
        assert set(scores) == set(BACKTEST_MODELS)
        for s in scores.values():
            assert {"mape_pct", "wape_pct", "coverage_80_pct", "coverage_95_pct", "points"} <= set(s)


def test_demo_backtest_scores_the_same_days_for_every_model(demo_workspace: Workspace) -> None:
    b = backtest_costs(demo_workspace.store, demo_workspace.config, scope="layer", weeks=4)
    # 29 complete days: only the last two weeks have 14 days of history before them
    assert {len(k.weeks) for k in b.keys} == {2} and any("not scored" in n for n in b.notes)
    assert len({s.points for s in b.overall.values()}) == 1
    for s in b.overall.values():
        assert 0 <= s.coverage_80_pct <= s.coverage_95_pct <= 100  # type: ignore[operator]


def test_bad_options_and_empty_workspace(demo_workspace: Workspace, workspace: Workspace) -> None:
    with pytest.raises(InvalidOptionError, match="did you mean 'tenant'"):
        forecast_costs(demo_workspace.store, demo_workspace.config, scope="tenat")
    with pytest.raises(InvalidOptionError, match="months"):
        forecast_costs(demo_workspace.store, demo_workspace.config, months=4)
    with pytest.raises(PeriodError, match="no usage"):
        forecast_costs(workspace.store, workspace.config)
    with pytest.raises(PeriodError, match="no cost in the 182 days"):
        backtest_costs(demo_workspace.store, demo_workspace.config, at=dt.datetime(2026, 1, 1))


# Rendering ----------------------------------------------------------------------------------------------------


def _as_result(k: object) -> object:
    from unitcost.analysis.forecast import ForecastResult

    return ForecastResult("all", "token", dt.datetime(2026, 10, 22), 0.0, [k])  # type: ignore[list-item]


def test_renderers(demo_workspace: Workspace, tmp_path: Path) -> None:
    ws = demo_workspace
    r = forecast_costs(ws.store, ws.config, scope="feature")
    console = Console(record=True, width=200)
    render_forecast(console, r)
    render_backtest(console, backtest_costs(ws.store, ws.config, scope="feature"))
    text = console.export_text()
    assert all(k.key in text for k in r.keys) and "month-end" in text and "seasonal naive" in text
    fig = fan_chart_figure(r, "all")  # not a key of this scope: the largest key
    names = {t.name for t in fig.data}
    assert {"actual (complete days)", "80% interval", "95% interval", "forecast (mean)"} <= names
    assert "month-end projection" in names and r.keys[0].key in fig.layout.title.text
    page = write_forecast_html(r, tmp_path / "f.html").read_text()
    assert page.count('class="chart"') == len(r.keys)


def test_a_failed_ets_fit_falls_back_to_the_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    import unitcost.analysis.forecast as forecast

    def fail(y: np.ndarray) -> dict:
        raise Exception("no model able to be fitted")  # what statsforecast raises

    monkeypatch.setattr(forecast, "_fit_ets", fail)
    f = forecast_series(weekly_series(30, noise=3), dt.datetime(2026, 2, 4))
    assert f.model == "mean" and "AutoETS it failed (no model able to be fitted)" in f.model_reason
    assert f.has_interval

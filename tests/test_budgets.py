"""Budgets on workspaces small enough to check on paper.

Every request is gpt-4o-mini with 1M input and 1M output tokens: $0.15 + $0.60 = $0.75 (genai-prices).
October 1st 2026 is a Thursday; at = October 15th 00:00 leaves 17 days (12 weekdays, 5 weekend days).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest

from conftest import write_csv
from unitcost.alerts.budgets import Z_90, budget_rule, budget_status
from unitcost.alerts.model import RuleContext
from unitcost.config import Config
from unitcost.workspace import Workspace, open_workspace

REQUEST_USD = 0.75
AT = dt.datetime(2026, 10, 15)


def _day(d: dt.date, i: int) -> str:
    return (dt.datetime.combine(d, dt.time()) + dt.timedelta(hours=i)).isoformat() + "Z"


def _usage(counts: dict[str, dict[dt.date, int]], hours: tuple[int, ...] = (10, 20, 15)) -> list[dict[str, Any]]:
    """Rows for {tenant: {day: requests}}; the n-th request of a day is at hours[n] (then hourly)."""
    rows = []
    for tenant, per_day in counts.items():
        for day, n in per_day.items():
            for i in range(n):
                hour = hours[i] if i < len(hours) else i
                rows.append(
                    {
                        "request_id": f"{tenant}-{day}-{i}",
                        "ts": _day(day, hour),
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "input_tokens": 1_000_000,
                        "output_tokens": 1_000_000,
                        "status": "ok",
                        "tenant": tenant,
                        "feature": {"acme": "chat", "beta": "search"}.get(tenant, "drafts"),
                    }
                )
    return rows


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _workspace(
    tmp_path: Path, config: Config, rows: list[dict[str, Any]], ops: list[dict[str, Any]] | None = None
) -> Workspace:
    ws = open_workspace(tmp_path / "w.duckdb", config)
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", rows)], strict=True)
    if ops:
        ws.ingest("ops", [write_csv(tmp_path / "ops.csv", ops)], strict=True)
    return ws


def _gamma(day: dt.date) -> int:
    """Weekdays: 4 requests in the first week of October, 6 in the second; weekends: 1."""
    if day.weekday() >= 5:
        return 1
    return 4 if day < dt.date(2026, 10, 8) else 6


BUDGETS = [
    {"name": "total", "amount_usd": 150},
    {"name": "acme", "amount_usd": 50, "scope": {"tenant": "acme"}},
    {"name": "acme-early", "amount_usd": 50, "scope": {"tenant": "acme"}, "warn_at": 0.9},
    {"name": "search", "amount_usd": 10, "scope": {"feature": "search"}},
    {"name": "gamma", "amount_usd": 95, "scope": {"tenant": "gamma"}},
    {"name": "models", "amount_usd": 200, "scope": {"layer": "model_api"}},
    {"name": "daily", "amount_usd": 5, "period": "day"},
]


@pytest.fixture
def three_tenants(tmp_path: Path) -> Workspace:
    """acme 2 requests a day, beta 1 a day (Sep 20 - Oct 20), gamma by :func:`_gamma` (October 1-20)."""
    days = _days(dt.date(2026, 9, 20), dt.date(2026, 10, 20))
    october = [d for d in days if d.month == 10]
    counts = {"acme": dict.fromkeys(days, 2), "beta": dict.fromkeys(days, 1), "gamma": {d: _gamma(d) for d in october}}
    config = Config.model_validate({"budgets": BUDGETS})
    return _workspace(tmp_path, config, _usage(counts))


def test_spent_remaining_and_projection_by_hand(three_tenants: Workspace) -> None:
    with three_tenants as ws:
        status = {s.name: s for s in budget_status(ws.store, ws.config, AT)}
    acme = status["acme"]
    assert (acme.period_start, acme.period_end) == (dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1))
    assert acme.spent_usd == pytest.approx(14 * 2 * REQUEST_USD)  # 21: October 1-14, nothing after `at`
    assert acme.remaining_usd == pytest.approx(50 - 21)
    assert acme.burn_rate_usd_per_day == pytest.approx(1.5)
    assert acme.projected_usd == pytest.approx(21 + 17 * 1.5)  # 46.5
    assert acme.projected_low_usd == pytest.approx(46.5) and acme.projected_high_usd == pytest.approx(46.5)
    assert acme.days_left == pytest.approx(17)
    assert not acme.will_exceed and not acme.exceeded
    assert status["acme-early"].will_exceed  # 46.5 >= 0.9 x 50

    search = status["search"]  # beta is the only tenant on the search feature
    assert search.spent_usd == pytest.approx(10.5)
    assert search.exceeded and search.projected_usd == pytest.approx(10.5 + 17 * 0.75)

    # gamma: weekday means 5 requests (4 then 6), weekend 1; 12 weekdays and 5 weekend days remain
    gamma = status["gamma"]
    gamma_spent = (5 * 4 + 5 * 6 + 4 * 1) * REQUEST_USD  # 40.5
    assert gamma.spent_usd == pytest.approx(gamma_spent)
    assert gamma.burn_rate_usd_per_day == pytest.approx(gamma_spent / 14)
    assert gamma.projected_usd == pytest.approx(gamma_spent + (12 * 5 + 5 * 1) * REQUEST_USD)  # 89.25
    # residuals: +-1 request on each of the 10 weekdays, 0 on weekends; 14 days - 7 weekday means = 7 dof
    half = Z_90 * REQUEST_USD * math.sqrt(10 / 7) * math.sqrt(17)
    assert gamma.projected_low_usd == pytest.approx(89.25 - half)
    assert gamma.projected_high_usd == pytest.approx(89.25 + half)
    assert not gamma.will_exceed  # 89.25 < 95, although the high end is above

    total = status["total"]
    assert total.spent_usd == pytest.approx(21 + 10.5 + gamma_spent)
    assert total.projected_usd == pytest.approx(72 + 17 * 2.25 + (12 * 5 + 5) * REQUEST_USD)  # 159
    assert total.will_exceed and not status["models"].will_exceed  # 159 >= 150, < 200
    assert status["models"].spent_usd == pytest.approx(total.spent_usd)  # no bill: all cost is model_api
    assert status["models"].projected_usd == pytest.approx(total.projected_usd)

    daily = status["daily"]  # October 15th (a Thursday) from 00:00: nothing spent yet
    assert (daily.period_start, daily.period_end) == (AT, AT + dt.timedelta(days=1))
    assert daily.spent_usd == 0
    assert daily.projected_usd == pytest.approx(2.25 + 5 * REQUEST_USD)  # Thursdays: acme + beta + gamma's 4 and 6
    assert daily.will_exceed  # $6 >= $5
    # one whole day to come, with gamma's weekday spread (acme and beta are steady)
    assert daily.projected_high_usd == pytest.approx(6 + Z_90 * REQUEST_USD * math.sqrt(10 / 7))
    assert daily.days_left == pytest.approx(1)


def test_mid_day_counts_the_day_so_far_and_the_rest_of_it(three_tenants: Workspace) -> None:
    at = AT + dt.timedelta(hours=12)  # acme's 10:00 requests are in, its 20:00 requests are not
    with three_tenants as ws:
        [acme] = [s for s in budget_status(ws.store, ws.config, at) if s.name == "acme"]
    assert acme.spent_usd == pytest.approx(21 + REQUEST_USD)
    assert acme.projected_usd == pytest.approx(21.75 + 0.5 * 1.5 + 16 * 1.5)
    assert acme.days_left == pytest.approx(16.5)


def test_findings_fire_only_for_budgets_over_or_heading_over(three_tenants: Workspace) -> None:
    with three_tenants as ws:
        ctx = RuleContext(ws.store, ws.config, AT - dt.timedelta(hours=1), AT)
        findings = {f.rule: f for f in budget_rule(ctx)}
    assert sorted(findings) == ["budget:acme-early", "budget:daily", "budget:search", "budget:total"]
    search = findings["budget:search"]
    assert search.kind == "budget" and search.scope == {"feature": "search"}
    assert (search.started_at, search.ended_at) == (AT, None)
    assert search.impact_usd_per_month == pytest.approx(10.5 + 12.75 - 10)
    assert search.message == (
        "Budget search: $10.50 of $10.00 spent by Oct 15 (exceeded by $0.50); "
        "projected $23.25 ($23.25-23.25) by Oct 31, over by $13.25"
    )
    early = findings["budget:acme-early"]
    assert early.impact_usd_per_month == 0  # 46.5 is under the 50 budget: warned at 90%
    assert early.message.endswith("projected $46.50 ($46.50-46.50) by Oct 31, 93% of the budget (warns at 90%)")
    daily = findings["budget:daily"]
    assert daily.details["state"] == "projected to exceed"
    assert daily.message == (
        "Budget daily: $0.00 of $5.00 spent by 00:00 on Oct 15; projected $6.00 ($4.53-7.47) by the end of the day,"
        " over by $1.00"
    )


def test_fully_loaded_spend_includes_people_time_and_scales_the_projection(tmp_path: Path) -> None:
    days = _days(dt.date(2026, 9, 20), dt.date(2026, 10, 20))
    ops = [{"date": "2026-10-02", "activity": "on-call", "hours": 10, "hourly_rate_usd": 3}]  # $30, shared
    budgets = [{"name": "all", "amount_usd": 100}, {"name": "people", "amount_usd": 60, "scope": {"layer": "people"}}]
    config = Config.model_validate({"budgets": budgets})
    with _workspace(tmp_path, config, _usage({"acme": dict.fromkeys(days, 2)}), ops) as ws:
        status = {s.name: s for s in budget_status(ws.store, config, AT)}
    tokens = 21.0  # 14 days x $1.5
    assert status["all"].spent_usd == pytest.approx(tokens + 30)
    # the history (token cost, $1.5 a day) is scaled by the month's loaded / token ratio
    assert status["all"].projected_usd == pytest.approx(51 + 17 * 1.5 * 51 / tokens)
    assert status["people"].spent_usd == pytest.approx(30)
    assert status["people"].projected_usd == pytest.approx(30 + 17 * 1.5 * 30 / tokens)
    assert status["people"].will_exceed  # 66.4 >= 60


def test_first_day_of_data_projects_the_rate_so_far(tmp_path: Path) -> None:
    config = Config.model_validate({"budgets": [{"name": "all", "amount_usd": 100}]})
    with _workspace(tmp_path, config, _usage({"acme": {dt.date(2026, 10, 15): 2}})) as ws:
        [s] = budget_status(ws.store, config, AT + dt.timedelta(hours=12))  # one request, half a day in
    assert s.spent_usd == pytest.approx(REQUEST_USD)
    assert s.burn_rate_usd_per_day == pytest.approx(REQUEST_USD / 14.5)  # 14.5 days since October 1st
    assert s.projected_usd == pytest.approx(REQUEST_USD + 16.5 * REQUEST_USD / 14.5)
    assert s.projected_low_usd == s.projected_high_usd == s.projected_usd


def test_replay_merges_days_into_episodes(tmp_path: Path) -> None:
    """$1.5 a day from Oct 1 to Nov 10 (10:00 and 20:00), plus one $0.75 request on Oct 20 at 15:00."""
    days = _days(dt.date(2026, 10, 1), dt.date(2026, 11, 10))
    counts = {d: 3 if d == dt.date(2026, 10, 20) else 2 for d in days}
    budgets = [
        # warn_at 10: only spending over the amount alerts (projections stay under $100)
        {"name": "monthly", "amount_usd": 10, "warn_at": 10},
        {"name": "daily", "amount_usd": 2, "period": "day"},
    ]
    config = Config.model_validate({"budgets": budgets})
    at = dt.datetime(2026, 11, 10, 12)
    with _workspace(tmp_path, config, _usage({"acme": counts})) as ws:
        findings = budget_rule(RuleContext(ws.store, config, dt.datetime(2026, 10, 1), at))
        live = {s.name: s for s in budget_status(ws.store, config, at)}
    episodes = [(f.rule, f.started_at, f.ended_at) for f in findings]
    assert episodes == [
        # (d - 1) x $1.5 > $10 from Oct 8 00:00; a new month starts from $0
        ("budget:monthly", dt.datetime(2026, 10, 8), dt.datetime(2026, 11, 1)),
        ("budget:monthly", dt.datetime(2026, 11, 8), None),
        # Oct 20: $2.25 > $2; Nov 10 at 12:00: $0.75 + half of a Tuesday's $1.5 = $1.5, under $2
        ("budget:daily", dt.datetime(2026, 10, 20), dt.datetime(2026, 10, 21)),
    ]
    october = findings[0]
    # described by its last day (Oct 31 00:00): $45.75 spent, one Saturday of $1.5 to come
    assert october.impact_usd_per_month == pytest.approx(45.75 + 1.5 - 10)
    assert october.message.startswith("Budget monthly: $45.75 of $10.00 spent by Oct 31 (exceeded by $35.75)")
    # the open episode is described by the evaluation at `at`, the same as a live one
    assert findings[1].details == {**live["monthly"].to_json(), "state": "exceeded"}
    assert findings[1].details["spent_usd"] == pytest.approx(9 * 1.5 + REQUEST_USD)  # Nov 1-9, Nov 10 10:00
    assert findings[2].impact_usd_per_month == pytest.approx(30 * 0.25)  # a daily overrun, for 30 days
    assert findings[2].message == "Budget daily: $2.25 of $2.00 spent on Oct 20, over by $0.25"


def test_spend_from_the_shared_series_equals_the_cost_report(three_tenants: Workspace) -> None:
    """Token-only periods are summed from the hourly spend series; they match the cost report to the cent,
    and one evaluation of the anomaly and budget rules scans spend once per dimension."""
    from unitcost.alerts.budgets import _period_cost
    from unitcost.alerts.spend import SpendSeries
    from unitcost.alerts.watch import evaluate
    from unitcost.analysis import cost_report

    with three_tenants as ws:
        spend = SpendSeries(ws.store, ws.config, AT + dt.timedelta(hours=7, minutes=30))
        # the earliest start first: later ones are filters of its scans (an earlier one would scan again)
        for start, end in ((dt.datetime(2026, 9, 20), dt.datetime(2026, 10, 9)), (dt.datetime(2026, 10, 1), spend.at)):
            cost = _period_cost(ws.store, ws.config, spend, start, end, ["tenant", "feature"])
            report = cost_report(ws.store, ws.config, start, end, ["tenant", "feature"], units=False)
            assert cost.token_usd == pytest.approx(report.token_cost_usd, abs=0.005)
            assert cost.layers == pytest.approx(report.layers, abs=0.005)
            for dim in ("tenant", "feature"):
                for row in report.breakdown[dim]:
                    assert cost.keys[(dim, str(row.key))][1] == pytest.approx(row.cost_usd, abs=0.005)
        assert spend.scans == 2  # tenant and feature, each scanned once from the earliest start

        scans: list[str] = []
        real = SpendSeries.hourly

        def counting(self: SpendSeries, start: dt.datetime, by: str = "feature") -> Any:
            before = self.scans
            out = real(self, start, by)
            scans.extend([by] * (self.scans - before))
            return out

        SpendSeries.hourly = counting  # type: ignore[method-assign]
        try:
            evaluate(ws.store, ws.config, AT, None, kinds=["anomaly", "budget"])
        finally:
            SpendSeries.hourly = real  # type: ignore[method-assign]
        assert sorted(scans) == ["feature", "tenant"]  # the budgets reuse the anomaly rule's feature scan


def test_the_spend_series_scans_again_for_an_off_hour_start(three_tenants: Workspace) -> None:
    """A kept scan serves later starts on the hour; an off-hour start gets its own scan (its partial hour)."""
    from unitcost.alerts.spend import SpendSeries

    with three_tenants as ws:
        spend = SpendSeries(ws.store, ws.config, AT)
        spend.hourly(dt.datetime(2026, 10, 1))
        on_the_hour = spend.hourly(dt.datetime(2026, 10, 5, 10))
        assert spend.scans == 1 and on_the_hour["period"].min() == dt.datetime(2026, 10, 5, 10)
        off = spend.hourly(dt.datetime(2026, 10, 5, 10, 30))  # acme's request at 10:00 is before it
        fresh = SpendSeries(ws.store, ws.config, AT).hourly(dt.datetime(2026, 10, 5, 10, 30))
        assert spend.scans == 2
        assert off["cost_usd"].sum() == pytest.approx(fresh["cost_usd"].sum())
        assert off["cost_usd"].sum() == pytest.approx(on_the_hour["cost_usd"].sum() - 3 * REQUEST_USD)

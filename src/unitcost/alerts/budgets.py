"""Budgets: spend so far in the period, where it is heading, and the ``budget`` alert rule.

A budget (``budgets:`` in ``unitcost.yaml``) caps the fully loaded cost of a scope (everything, one tenant, one
feature or one layer) per calendar month or per day (UTC). Evaluated at a time ``at``:

* **spent** = the scope's fully loaded cost over [period start, ``at``) (:func:`~unitcost.analysis.cost_report`;
  a layer scope is ``report.layers[layer]``).
* **daily history** = the scope's token cost per day (:func:`~unitcost.analysis.cost_timeseries`) over the
  trailing 14 complete days before ``at``'s day, from the scope's first day with spend in that window, each
  day scaled by the period's fully loaded / token cost ratio of the scope (1 with no bill; a layer scales the
  total token cost by that layer's share; while the period has no spend yet the ratio is 1, and 0 for layers
  other than model_api). A new tenant is thus judged on its own days, not on zeros.
* **expected spend of a day** = the mean of the history days of the same weekday, or the mean of all history
  days when that weekday has none. ``burn_rate_usd_per_day`` is the mean of all history days.
* **projected** = spent + the expected spend of the rest of the period: the rest of today (its expected spend x
  the share of the day still to come) and each later day of the period.
* **interval** (``projected_low_usd``, ``projected_high_usd``): a 90% interval that treats the remaining days as
  independent, each with the standard deviation of the history days around their weekday means (pooled; around
  the overall mean when no weekday has two days): projected +- 1.645 x sd x sqrt(sum of the squared day
  weights). The low end is never under what is already spent.
* With no complete day of history (the first day of data), the rate so far is used: spent / elapsed days
  (at least one hour), with no interval.

A scope alerts when it has spent more than its amount (exceeded) or its projection reaches ``warn_at`` x amount
("projected to exceed"). The daily history, and the spend of a period with token cost alone (no bill, GPU
pools or people time), are sums of the evaluation's hourly spend series (``alerts.spend``), which ``watch``
shares with the anomaly rule: one scan per dimension that budgets are scoped by (feature for all-spend and
layer budgets). A period with other layers takes its spend from one fully loaded cost report per period kind.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd

from unitcost.alerts.model import Finding, RuleContext
from unitcost.alerts.spend import SpendSeries
from unitcost.analysis import cost_report
from unitcost.config import BudgetConfig, Config
from unitcost.periods import naive_utc
from unitcost.store import Store

#: complete days of history behind a projection
HISTORY_DAYS = 14
#: two-sided 90% quantile of the standard normal
Z_90 = 1.6448536269514722
_DAY = dt.timedelta(days=1)
_MIN_ELAPSED_DAYS = 1 / 24


@dataclass(frozen=True)
class BudgetStatus:
    """Where one budget stands at a time: spent, remaining and projected spend of its current period."""

    name: str
    scope: dict[str, str]
    period: str
    period_start: dt.datetime
    period_end: dt.datetime
    at: dt.datetime
    amount_usd: float
    spent_usd: float
    remaining_usd: float
    burn_rate_usd_per_day: float
    projected_usd: float
    projected_low_usd: float
    projected_high_usd: float
    warn_at: float
    will_exceed: bool
    days_left: float

    @property
    def exceeded(self) -> bool:
        """More than the amount is already spent."""
        return self.spent_usd > self.amount_usd

    @property
    def alerting(self) -> bool:
        """Exceeded, or projected to reach ``warn_at`` x amount before the period ends."""
        return self.exceeded or self.will_exceed

    @property
    def overrun_usd(self) -> float:
        """Projected spend over the amount (0 when under)."""
        return max(0.0, self.projected_usd - self.amount_usd)

    def to_json(self) -> dict[str, Any]:
        """Return the status as JSON-ready values (times in ISO 8601)."""
        doc = asdict(self)
        for k in ("period_start", "period_end", "at"):
            doc[k] = doc[k].isoformat()
        doc["exceeded"] = self.exceeded
        return doc


# ------------------------------------------------------------------------------------------------ periods


def _day_start(t: dt.datetime) -> dt.datetime:
    return dt.datetime(t.year, t.month, t.day)


def period_bounds(period: str, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Return the [start, end) of the calendar month or day (UTC) that contains ``at``.

    >>> period_bounds("month", dt.datetime(2026, 12, 24, 15))
    (datetime.datetime(2026, 12, 1, 0, 0), datetime.datetime(2027, 1, 1, 0, 0))
    """
    if period == "day":
        start = _day_start(at)
        return start, start + _DAY
    start = dt.datetime(at.year, at.month, 1)
    end = dt.datetime(at.year + 1, 1, 1) if at.month == 12 else dt.datetime(at.year, at.month + 1, 1)
    return start, end


# ------------------------------------------------------------------------------------------------ history


@dataclass(frozen=True)
class _History:
    """Token cost per day (complete and partial days) per scope: ("all", "") or (dimension, key)."""

    days: dict[tuple[str, str], dict[dt.date, float]]

    def trailing(self, scope: tuple[str, str], day: dt.date) -> list[tuple[dt.date, float]]:
        """The complete days before ``day`` in the history window, from the scope's first day with spend."""
        series = self.days.get(scope, {})
        window = [day - dt.timedelta(days=n) for n in range(HISTORY_DAYS, 0, -1)]
        seen = [d for d in window if series.get(d, 0.0) > 0]
        if not seen:
            return []
        return [(d, series.get(d, 0.0)) for d in window if d >= seen[0]]


def _history_dims(budgets: Iterable[BudgetConfig]) -> list[str | None]:
    """The time series to compute: one per scoped dimension; totals come from any of them."""
    dims = sorted({dim for b in budgets for dim in b.scope if dim in ("tenant", "feature")})
    return list(dims) or [None]


def _history(spend: SpendSeries, budgets: list[BudgetConfig], start: dt.datetime) -> _History:
    """Token cost per day and scope over [start, at) (``start`` on a day), from the hourly spend series."""
    days: dict[tuple[str, str], dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for i, dim in enumerate(_history_dims(budgets)):
        hours = spend.hourly(start, dim or "feature")
        daily = hours.groupby([hours["period"].dt.floor("D"), "key"], dropna=False)["cost_usd"].sum()
        for (period, key), cost in daily.items():
            day = period.date()
            if dim is not None and not pd.isna(key):
                days[(dim, str(key))][day] += float(cost)
            if i == 0:
                days[("all", "")][day] += float(cost)
    return _History({k: dict(v) for k, v in days.items()})


@dataclass(frozen=True)
class _PeriodCost:
    """What a budget reads of a period: fully loaded and token cost, in total, per layer and per scope key."""

    loaded_usd: float
    token_usd: float
    layers: dict[str, float]
    #: (dimension, key) -> (fully loaded, token)
    keys: dict[tuple[str, str], tuple[float, float]]


def _period_cost(
    store: Store, config: Config, spend: SpendSeries, start: dt.datetime, end: dt.datetime, by: list[str]
) -> _PeriodCost:
    """The cost of [start, end): summed from the spend series when the period has token cost alone (no bill,
    GPU pools or people time), else from the fully loaded cost report."""
    from unitcost.analysis.stack import has_stack_inputs  # stack builds on the analysis package

    if not has_stack_inputs(store, config, start, end):  # budget scopes are tenant or feature: both series
        total = float(spend.total(start, end, by[0] if by else "feature").sum())
        keys = {}
        for dim in by:
            for key, cost in spend.total(start, end, dim).items():
                if not pd.isna(key):
                    keys[(dim, str(key))] = (float(cost), float(cost))
        return _PeriodCost(total, total, {"model_api": total}, keys)
    report = cost_report(store, config, start, end, by, units=False)
    keys = {
        (dim, str(row.key)): (
            float(row.fully_loaded_cost_usd if row.fully_loaded_cost_usd is not None else row.cost_usd),
            float(row.cost_usd),
        )
        for dim in by
        for row in report.breakdown.get(dim, [])
        if row.key is not None
    }
    return _PeriodCost(float(report.total_cost_usd), float(report.token_cost_usd), dict(report.layers), keys)


# ------------------------------------------------------------------------------------------------ projection


@dataclass(frozen=True)
class _DailyModel:
    """Expected spend of a day from the history days (USD)."""

    by_weekday: dict[int, float]
    mean: float
    sd: float

    @classmethod
    def fit(cls, values: list[tuple[dt.date, float]]) -> _DailyModel:
        groups: dict[int, list[float]] = defaultdict(list)
        for day, usd in values:
            groups[day.weekday()].append(usd)
        all_usd = [usd for _, usd in values]
        mean = sum(all_usd) / len(all_usd)
        by_weekday = {w: sum(v) / len(v) for w, v in groups.items()}
        dof = len(all_usd) - len(groups)
        if dof >= 1 and any(len(v) > 1 for v in groups.values()):
            squares = sum((x - by_weekday[w]) ** 2 for w, v in groups.items() for x in v)
            sd = math.sqrt(squares / dof)
        elif len(all_usd) > 1:
            sd = math.sqrt(sum((x - mean) ** 2 for x in all_usd) / (len(all_usd) - 1))
        else:
            sd = 0.0
        return cls(by_weekday, mean, sd)

    def expected(self, day: dt.date) -> float:
        return self.by_weekday.get(day.weekday(), self.mean)


def _remaining_days(at: dt.datetime, end: dt.datetime) -> list[tuple[dt.date, float]]:
    """The days from ``at`` to ``end``, each with the share of it still to come."""
    out = []
    day = _day_start(at)
    while day < end:
        lo, hi = max(day, at), min(day + _DAY, end)
        if hi > lo:
            out.append((day.date(), (hi - lo) / _DAY))
        day += _DAY
    return out


@dataclass(frozen=True)
class _Spend:
    """A scope's figures in one report: fully loaded spent, and the token cost its history is scaled from."""

    loaded_usd: float
    token_usd: float
    history: tuple[str, str]
    #: the loaded / token ratio while the period has no spend yet
    default_scale: float = 1.0


def _spend(budget: BudgetConfig, cost: _PeriodCost) -> _Spend:
    if not budget.scope:
        return _Spend(cost.loaded_usd, cost.token_usd, ("all", ""))
    [(dim, key)] = budget.scope.items()
    if dim == "layer":
        return _Spend(cost.layers.get(key, 0.0), cost.token_usd, ("all", ""), float(key == "model_api"))
    loaded, token = cost.keys.get((dim, key), (0.0, 0.0))
    return _Spend(loaded, token, (dim, key))


def _status(
    budget: BudgetConfig,
    spend: _Spend,
    history: _History,
    period_start: dt.datetime,
    period_end: dt.datetime,
    at: dt.datetime,
) -> BudgetStatus:
    spent = spend.loaded_usd
    rest = _remaining_days(at, period_end)
    weights = [w for _, w in rest]
    trailing = history.trailing(spend.history, _day_start(at).date())
    if trailing and (spend.token_usd > 0 or spent == 0):
        scale = spent / spend.token_usd if spend.token_usd > 0 else spend.default_scale
        model = _DailyModel.fit([(d, usd * scale) for d, usd in trailing])
        expected = sum(model.expected(d) * w for d, w in rest)
        rate, sd = model.mean, model.sd
    else:  # no complete day yet, or cost with no token cost to scale (e.g. people time only): the rate so far
        elapsed_days = max((at - period_start) / _DAY, _MIN_ELAPSED_DAYS)
        rate, sd = spent / elapsed_days, 0.0
        expected = rate * sum(weights)
    projected = spent + expected
    half_width = Z_90 * sd * math.sqrt(sum(w * w for w in weights))
    return BudgetStatus(
        name=budget.name,
        scope=dict(budget.scope),
        period=budget.period,
        period_start=period_start,
        period_end=period_end,
        at=at,
        amount_usd=budget.amount_usd,
        spent_usd=spent,
        remaining_usd=budget.amount_usd - spent,
        burn_rate_usd_per_day=rate,
        projected_usd=projected,
        projected_low_usd=max(spent, projected - half_width),
        projected_high_usd=projected + half_width,
        warn_at=budget.warn_at,
        will_exceed=projected >= budget.warn_at * budget.amount_usd,
        days_left=(period_end - at) / _DAY,
    )


# ------------------------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class _Slot:
    """One evaluation of one budget: the episode time it stands for, the evaluation time and the period."""

    budget: BudgetConfig
    starts: dt.datetime
    at: dt.datetime
    period_start: dt.datetime
    period_end: dt.datetime


def _by(slots: Iterable[_Slot]) -> list[str]:
    return sorted({dim for s in slots for dim in s.budget.scope if dim != "layer"})


def _evaluate(
    store: Store, config: Config, spend: SpendSeries, slots: list[_Slot], history: _History
) -> list[BudgetStatus]:
    """The status of each slot; slots that share a period and an evaluation time share one cost report."""
    groups: dict[tuple[dt.datetime, dt.datetime], list[_Slot]] = defaultdict(list)
    for s in slots:
        groups[(s.period_start, s.at)].append(s)
    statuses: dict[int, BudgetStatus] = {}
    for (start, at), members in groups.items():
        cost = _period_cost(store, config, spend, start, at, _by(members))
        for s in members:
            statuses[id(s)] = _status(s.budget, _spend(s.budget, cost), history, s.period_start, s.period_end, s.at)
    return [statuses[id(s)] for s in slots]


def _replayed_spend(
    slot: _Slot, month: _Spend, month_range: tuple[dt.datetime, dt.datetime], history: _History
) -> _Spend:
    """A past slot's spend: its token cost from the daily history, loaded by its month's loaded / token ratio."""
    series = history.days.get(month.history, {})
    day, token = slot.period_start, 0.0
    while day < slot.at:
        token += series.get(day.date(), 0.0)
        day += _DAY
    if month.token_usd > 0:
        loaded = token * month.loaded_usd / month.token_usd
    else:  # cost with no token cost (people time only): pro rata by time
        lo, hi = month_range
        loaded = month.loaded_usd * (slot.at - slot.period_start) / (hi - lo) if hi > lo else 0.0
    return replace(month, loaded_usd=loaded, token_usd=token)


def _replay(
    store: Store, config: Config, spend: SpendSeries, slots: list[_Slot], history: _History, at: dt.datetime
) -> list[BudgetStatus]:
    """The status of each slot of a replay: one cost report per month (and one for the day of ``at``).

    The slots at ``at`` are exact (their own report); earlier ones take their token cost from the daily history
    and scale it by the month's fully loaded / token ratio of their scope (exact when there is no bill, labour
    or pool cost).
    """
    by = _by(slots)
    months: dict[dt.datetime, tuple[_PeriodCost, tuple[dt.datetime, dt.datetime]]] = {}
    for start in sorted({period_bounds("month", s.period_start)[0] for s in slots}):
        end = min(period_bounds("month", start)[1], at)
        months[start] = (_period_cost(store, config, spend, start, end, by), (start, end))
    exact = {id(s): s for s in slots if s.at == at and (s.budget.period == "month" or s.at < s.period_end)}
    days_at = {(s.period_start, s.at) for s in exact.values() if s.budget.period == "day"}
    day_reports = {key: _period_cost(store, config, spend, *key, by) for key in days_at}
    statuses = []
    for s in slots:
        month_start = period_bounds("month", s.period_start)[0]
        report, month_range = months[month_start]
        if id(s) in exact:
            spent = _spend(s.budget, day_reports[(s.period_start, s.at)] if s.budget.period == "day" else report)
        else:
            spent = _replayed_spend(s, _spend(s.budget, report), month_range, history)
        statuses.append(_status(s.budget, spent, history, s.period_start, s.period_end, s.at))
    return statuses


def budget_status(
    store: Store, config: Config, at: dt.datetime, spend: SpendSeries | None = None
) -> list[BudgetStatus]:
    """Return where each configured budget stands at ``at`` (naive UTC, or aware).

    ``spend``: the evaluation's shared spend series (alerts.spend), if any; it must end at ``at``.

    >>> import tempfile, os
    >>> from unitcost.workspace import open_workspace
    >>> cfg = Config.model_validate({"budgets": [{"name": "total", "amount_usd": 100}]})
    >>> with open_workspace(os.path.join(tempfile.mkdtemp(), "w.duckdb"), cfg) as ws:
    ...     [s] = budget_status(ws.store, cfg, dt.datetime(2026, 10, 15))
    >>> s.name, s.spent_usd, s.remaining_usd, s.projected_usd, s.will_exceed
    ('total', 0.0, 100.0, 0.0, False)
    """
    at = naive_utc(at)
    if not config.budgets:
        return []
    spend = spend or SpendSeries(store, config, at)
    slots = [_Slot(b, at, at, *period_bounds(b.period, at)) for b in config.budgets]
    # one spend scan from the earliest day needed serves the history and the periods' spend
    spend.hourly(min(_day_start(at) - HISTORY_DAYS * _DAY, *(s.period_start for s in slots)), "feature")
    history = _history(spend, config.budgets, _day_start(at) - HISTORY_DAYS * _DAY)
    return _evaluate(store, config, spend, slots, history)


# ------------------------------------------------------------------------------------------------ the rule


def _usd(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _usd_range(lo: float, hi: float) -> str:
    return f"{_usd(lo)}-{_usd(hi).lstrip('$')}"


def _date(t: dt.datetime) -> str:
    return f"{t:%b} {t.day}"


def budget_message(s: BudgetStatus) -> str:
    """Return the one-sentence summary of a budget's state.

    >>> s = BudgetStatus("total", {}, "month", dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1),
    ...                  dt.datetime(2026, 10, 24), 50_000, 41_200, 8_800, 1_600, 55_300, 52_100, 58_900, 1.0,
    ...                  True, 8.0)
    >>> budget_message(s)
    'Budget total: $41,200 of $50,000 spent by Oct 24; projected $55,300 ($52,100-58,900) by Oct 31, over by $5,300'
    """
    head = f"Budget {s.name}: {_usd(s.spent_usd)} of {_usd(s.amount_usd)} spent"
    last_day = s.period_end - dt.timedelta(microseconds=1)
    if s.at >= s.period_end:  # a whole period, looked at after its end (a replayed day)
        period = f"on {_date(s.period_start)}" if s.period == "day" else f"in {s.period_start:%B %Y}"
        over = f", over by {_usd(s.spent_usd - s.amount_usd)}" if s.exceeded else ""
        return f"{head} {period}{over}"
    if s.period == "day":
        text, end = f"{head} by {s.at:%H:%M} on {_date(s.at)}", "the end of the day"
    else:
        text, end = f"{head} by {_date(s.at)}", _date(last_day)
    if s.exceeded:
        text += f" (exceeded by {_usd(s.spent_usd - s.amount_usd)})"
    text += f"; projected {_usd(s.projected_usd)} ({_usd_range(s.projected_low_usd, s.projected_high_usd)}) by {end}"
    if s.overrun_usd > 0:
        text += f", over by {_usd(s.overrun_usd)}"
    elif s.will_exceed:
        text += f", {s.projected_usd / s.amount_usd:.0%} of the budget (warns at {s.warn_at:.0%})"
    return text


def _impact(s: BudgetStatus) -> float:
    """Projected overrun per month: a daily budget's overrun counts for 30 days."""
    return s.overrun_usd * (30 if s.period == "day" else 1)


def _finding(s: BudgetStatus, started_at: dt.datetime, ended_at: dt.datetime | None) -> Finding:
    return Finding(
        rule=f"budget:{s.name}",
        kind="budget",
        scope=dict(s.scope),
        started_at=started_at,
        ended_at=ended_at,
        impact_usd_per_month=_impact(s),
        message=budget_message(s),
        details={**s.to_json(), "state": "exceeded" if s.exceeded else "projected to exceed"},
    )


def _replay_slots(budget: BudgetConfig, since: dt.datetime, at: dt.datetime) -> list[_Slot]:
    """Month budgets: each day boundary in [since, at], and ``at``. Day budgets: each day of [since, at)."""
    if budget.period == "day":
        slots, day = [], _day_start(since)
        while day < at:
            slots.append(_Slot(budget, day, min(day + _DAY, at), day, day + _DAY))
            day += _DAY
        return slots
    points, t = [], _day_start(since) + (_DAY if since != _day_start(since) else dt.timedelta())
    while t < at:
        points.append(t)
        t += _DAY
    points.append(at)
    return [_Slot(budget, p, p, *period_bounds("month", p)) for p in points]


def _episodes(slots: list[_Slot], statuses: list[BudgetStatus]) -> list[Finding]:
    """Merge consecutive alerting slots into findings; the last slot's status describes each episode."""
    out: list[Finding] = []
    run: list[int] = []
    for i, s in enumerate(statuses):
        if s.alerting:
            run.append(i)
            continue
        if run:
            out.append(_finding(statuses[run[-1]], slots[run[0]].starts, slots[i].starts))
            run = []
    if run:
        out.append(_finding(statuses[run[-1]], slots[run[0]].starts, None))
    return out


def budget_rule(ctx: RuleContext) -> list[Finding]:
    """Return a ``budget`` finding per budget that is exceeded or projected to exceed.

    With ``ctx.since`` more than a day before ``ctx.at`` (``watch --since``), the budgets are evaluated at each
    day boundary (month budgets) or on each day (day budgets) and consecutive alerting evaluations make one
    episode; otherwise once, at ``ctx.at``.

    >>> import tempfile, os
    >>> from unitcost.workspace import open_workspace
    >>> cfg = Config.model_validate({"budgets": [{"name": "total", "amount_usd": 100}]})
    >>> with open_workspace(os.path.join(tempfile.mkdtemp(), "w.duckdb"), cfg) as ws:
    ...     budget_rule(RuleContext(ws.store, cfg, dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 15)))
    []
    """
    config = ctx.config
    if not config.budgets:
        return []
    at, since = naive_utc(ctx.at), naive_utc(ctx.since)
    if since >= at - _DAY:
        shared = ctx.spend if ctx.spend is not None and ctx.spend.at == at else None
        return [_finding(s, at, None) for s in budget_status(ctx.store, config, at, shared) if s.alerting]
    per_budget = {b.name: _replay_slots(b, since, at) for b in config.budgets}
    all_slots = [s for slots in per_budget.values() for s in slots]
    first = min(min(s.period_start for s in all_slots), _day_start(since) - HISTORY_DAYS * _DAY)
    spend = ctx.spend_series()
    history = _history(spend, config.budgets, first)
    statuses = dict(zip(map(id, all_slots), _replay(ctx.store, config, spend, all_slots, history, at), strict=True))
    findings: list[Finding] = []
    for slots in per_budget.values():
        findings += _episodes(slots, [statuses[id(s)] for s in slots])
    return findings

"""Spend anomalies: hourly and daily token cost outside the range expected from history.

For each complete bucket ``t`` (hour or day) of a series (all spend, and each feature):

* its *slot* is the day class (Monday-Friday pooled, Saturday, Sunday) for days, and (day class, hour of
  day) for hours: the weekly and daily seasonality of business traffic. Days are judged for all spend and
  per feature, hours for all spend (per-feature hours are too noisy to alert on);
* the expected value is the median of the same slot's values over the previous ``history_days`` days, and
  the spread is the median absolute deviation (MAD) of their logs, scaled by 1.4826 to estimate a standard
  deviation: both are robust to the anomalies themselves, which are rare in any slot;
* the bucket is anomalous when ``|log(actual) - log(expected)| > z * max(spread, 2%)`` and the difference is
  at least ``min_impact_usd`` and ``min_impact_pct``. A slot needs 3 earlier values to be judged.

Anomalous buckets of a series in the same direction with at most ``_GAP`` normal buckets between them are
one episode; an ongoing one is active. Each episode's root
cause is ``explain`` of its window against the same window whole weeks earlier (token cost). References: Rousseeuw
& Croux (1993), "Alternatives to the median absolute deviation", JASA 88(424); Hochenbaum, Vallis & Kejariwal
(2017), "Automatic anomaly detection in the cloud via statistical learning" (seasonal median + MAD, the
"S-H-ESD" idea without the ESD step).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

from unitcost.alerts.model import Finding, RuleContext
from unitcost.analysis.explain import DRIVER_WORDS, explain_change
from unitcost.analysis.windows import Window

_MAD_TO_SD = 1.4826
_MIN_SPREAD = 0.02
_MIN_HISTORY = 3
_GAP = 3
#: root causes are computed for at most this many episodes per evaluation (active first, then largest excess)
MAX_ROOT_CAUSES = 8


def _fetch(ctx: RuleContext, start: dt.datetime) -> dict[str, pd.DataFrame]:
    """Cost per (bucket, feature) for each grain, from the shared hourly scan: days are sums of their UTC hours."""
    t = ctx.spend_series().hourly(start, "feature")
    days = t.assign(period=t["period"].dt.floor("D"))
    return {
        "hour": t,
        "day": days.groupby(["period", "key"], as_index=False, dropna=False)["cost_usd"].sum(),
    }


def _series(ctx: RuleContext, grain: str, t: pd.DataFrame) -> pd.DataFrame:
    """Cost per bucket for all spend (key ``None``) and, for days, per feature; complete buckets only."""
    total = t.groupby("period", as_index=False)["cost_usd"].sum().assign(key=None)
    out = pd.concat([total, t], ignore_index=True) if grain == "day" else total
    step = pd.Timedelta(hours=1) if grain == "hour" else pd.Timedelta(days=1)
    return out[out["period"] + step <= pd.Timestamp(ctx.at)]


def _flags(periods: pd.Series, values: np.ndarray, grain: str, ctx: RuleContext) -> list[dict[str, Any]]:
    """The anomalous buckets of one series, with expected value and score."""
    cfg = ctx.config.alerts.anomaly
    step = pd.Timedelta(hours=1) if grain == "hour" else pd.Timedelta(days=1)
    # fill missing buckets with zero cost: a series that stops is information too
    full = pd.date_range(periods.min(), periods.max(), freq=step)
    s = pd.Series(values, index=pd.DatetimeIndex(periods)).reindex(full, fill_value=0.0)
    dow = np.asarray(s.index.dayofweek)
    day_class = np.where(dow < 5, 0, dow)  # Monday-Friday pooled, Saturday, Sunday
    slot = day_class * 100 + (s.index.hour if grain == "hour" else 0)
    logs = np.log(np.maximum(s.to_numpy(), 1e-6))
    history = pd.Timedelta(days=cfg.history_days)
    out = []
    times = s.index
    since = pd.Timestamp(ctx.since)
    for sl in np.unique(slot):
        idx = np.flatnonzero(slot == sl)
        for pos, i in enumerate(idx):
            if times[i] < since:
                continue
            prev = idx[:pos]
            prev = prev[times[prev] >= times[i] - history]
            if len(prev) < _MIN_HISTORY:
                continue
            expected = float(np.median(s.to_numpy()[prev]))
            centre = float(np.median(logs[prev]))
            spread = max(_MAD_TO_SD * float(np.median(np.abs(logs[prev] - centre))), _MIN_SPREAD)
            actual = float(s.iloc[i])
            score = (logs[i] - centre) / spread
            diff = actual - expected
            pct = 100 * diff / expected if expected > 0 else float("inf")
            if abs(score) > cfg.z and abs(diff) >= cfg.min_impact_usd and abs(pct) >= cfg.min_impact_pct:
                out.append({"t": times[i], "actual": actual, "expected": expected, "score": float(score)})
    return sorted(out, key=lambda f: f["t"])


def _episodes(flags: list[dict[str, Any]], step: pd.Timedelta) -> list[list[dict[str, Any]]]:
    episodes: list[list[dict[str, Any]]] = []
    for f in flags:
        if (
            episodes
            and f["t"] - episodes[-1][-1]["t"] <= step * (_GAP + 1)
            and (f["score"] > 0) == (episodes[-1][-1]["score"] > 0)
        ):
            episodes[-1].append(f)
        else:
            episodes.append([f])
    return episodes


def anomaly_rule(ctx: RuleContext) -> list[Finding]:
    """Findings for spend outside its expected range (see the module docstring)."""
    cfg = ctx.config.alerts.anomaly
    if not cfg.enabled:
        return []
    findings: list[Finding] = []
    start = ctx.since - dt.timedelta(days=cfg.history_days)
    fetched = _fetch(ctx, start)
    for grain in cfg.grains:
        step = pd.Timedelta(hours=1) if grain == "hour" else pd.Timedelta(days=1)
        series = _series(ctx, grain, fetched[grain])
        for key, part in series.groupby("key", dropna=False, sort=True):
            if part.empty:
                continue
            feature = None if pd.isna(key) else str(key)
            for ep in _episodes(_flags(part["period"], part["cost_usd"].to_numpy(), grain, ctx), step):
                findings.append(_finding(ep, grain, feature, step, ctx))
    # root causes (one explain each) for the active episodes first, then the largest excess
    ranked = sorted(
        range(len(findings)), key=lambda i: (not findings[i].active, -abs(findings[i].details["impact_usd"]))
    )
    for i in ranked[:MAX_ROOT_CAUSES]:
        findings[i] = _with_root_cause(findings[i], ctx)
    return sorted(findings, key=lambda f: f.started_at)


def _finding(
    ep: list[dict[str, Any]], grain: str, feature: str | None, step: pd.Timedelta, ctx: RuleContext
) -> Finding:
    start = ep[0]["t"].to_pydatetime()
    end = (ep[-1]["t"] + step).to_pydatetime()
    actual = sum(f["actual"] for f in ep)
    expected = sum(f["expected"] for f in ep)
    excess = actual - expected
    active = end >= ctx.at - step.to_pytimedelta() * 1.5  # the newest complete bucket is anomalous
    days = (end - start).total_seconds() / 86400
    where = f"{feature} spend" if feature else "Spend"
    direction = "above" if excess > 0 else "below"
    when = start.strftime("%Y-%m-%d %H:00") if grain == "hour" else start.strftime("%Y-%m-%d")
    message = (
        f"{where} {'from ' + when if len(ep) > 1 else 'on ' + when} ({len(ep)} {grain}{'s' if len(ep) > 1 else ''}): "
        f"${actual:,.2f} vs ${expected:,.2f} expected, ${abs(excess):,.2f} ({abs(100 * excess / expected):.0f}%) "
        f"{direction} the usual range"
        if expected
        else f"{where} on {when}: ${actual:,.2f} with nothing expected"
    )
    return Finding(
        rule=f"anomaly:{grain}",
        kind="anomaly",
        scope={"feature": feature} if feature else {},
        started_at=start,
        ended_at=None if active else end,
        impact_usd_per_month=(excess / days * 30) if active else excess,
        message=message,
        details={
            "grain": grain,
            "buckets": len(ep),
            "actual_usd": actual,
            "expected_usd": expected,
            "impact_usd": excess,
            "impact_pct": 100 * excess / expected if expected else None,
            "max_score": max((f["score"] for f in ep), key=abs),
            "window": {"from": start.isoformat(), "to": end.isoformat()},
        },
    )


def _with_root_cause(f: Finding, ctx: RuleContext) -> Finding:
    """Add the top drivers of the episode vs the same window whole weeks earlier (token cost) to the finding."""
    w = f.details["window"]
    period = Window(dt.datetime.fromisoformat(w["from"]), dt.datetime.fromisoformat(w["to"]), "anomaly")
    # the same window whole weeks earlier (same weekdays and hours), far enough back not to overlap it
    weeks = max(1, math.ceil((period.end - period.start) / dt.timedelta(days=7)))
    shift = dt.timedelta(days=7 * weeks)
    baseline = Window(period.start - shift, period.end - shift, f"{weeks} week{'s' if weeks > 1 else ''} earlier")
    try:
        e = explain_change(ctx.store, ctx.config, period, baseline, basis="token", top=2, where=f.scope or None)
    except ValueError:  # no data that far back: nothing to compare with
        return f
    drivers = sorted(e.drivers, key=lambda d: -abs(d.change_usd))[:3]
    cause: list[dict[str, Any]] = [
        {
            "driver": d.driver,
            "change_usd": d.change_usd,
            "contributors": [{"dimension": c.dimension, "key": c.key, "change_usd": c.change_usd} for c in d.mostly],
        }
        for d in drivers
        if d.change_usd
    ]

    def who(c: dict[str, Any]) -> str:
        names = [f"{x['dimension']} {x['key']}" for x in c["contributors"][:2]]
        return f" ({', '.join(names)})" if names else ""

    def signed(v: float) -> str:
        return f"{'+' if v >= 0 else '-'}${abs(v):,.2f}"

    words = "; ".join(f"{DRIVER_WORDS.get(c['driver'], c['driver'])} {signed(c['change_usd'])}{who(c)}" for c in cause)
    details = {**f.details, "root_cause": cause, "root_cause_baseline": baseline.describe()}
    message = f.message + (f". Against {baseline.label}: {words}" if words else "")
    return Finding(f.rule, f.kind, f.scope, f.started_at, f.ended_at, f.impact_usd_per_month, message, details)

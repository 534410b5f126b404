"""Cost forecasts: month-end projection and the next calendar months, with 80% and 95% prediction intervals.

Method (docs/forecasting.md has the details and references):

* The series are daily costs (UTC days) per key of a scope: ``all`` (fully loaded when the workspace has a
  bill, labour records or GPU pools, else token cost), ``layer`` (fully loaded, by layer) or a usage dimension such as
  ``tenant`` or ``feature`` (token cost). The top ``top`` keys by cost over the last four weeks are kept and
  the rest summed into ``(other)``. A key's series runs from its first day with cost to the last complete
  day, missing days filled with 0.
* The evaluation time ``at`` (default: just after the newest usage row) splits its day: the cost of
  ``[day start, at)`` is actual; the rest of the day is its forecast times the share of the day left.
* The model depends on how many complete days a key has: 14 or more, ``AutoETS`` (statsforecast, additive
  errors, weekly season; AICc chooses the trend, and from 28 days whether there is a season); 3 to 13, the mean
  of the days; fewer than 3, the run rate (no interval).
* Sample paths: the fitted model is simulated forward with bootstrapped residuals; each path is a possible
  future, so a month's total is summed *per path* and its interval read off the paths' totals. Summing daily
  intervals instead would ignore that forecast errors are correlated from one day to the next.
* The backtest refits at the start of each of the last ``weeks`` complete weeks and scores the week that
  follows, against a seasonal naive forecast (last week repeated) and a least-squares linear trend.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from unitcost.config import Config
from unitcost.errors import InvalidOptionError, PeriodError
from unitcost.ledger.costs import after_newest_usage
from unitcost.periods import naive_utc
from unitcost.schema import DIMENSIONS
from unitcost.store import Store

#: scopes besides the usage dimensions (``tenant``, ``feature``, ...)
SCOPES = ("all", "layer")
SEASON_LENGTH = 7
#: fewer complete days than this: the run rate, with no interval
MIN_DAYS_MEAN = 3
#: from this many complete days (two full weeks): AutoETS with a weekly season
MIN_DAYS_ETS = 14
#: from this many complete days (four weeks) AICc also decides whether there is a weekly season at all
MIN_DAYS_SEASON_CHOICE = 28
#: days of history a forecast reads (26 weeks)
HISTORY_DAYS = 182
#: keys are ranked by their cost over this many last complete days
RANK_DAYS = 28
PATHS = 2000
SEED = 7
OTHER = "(other)"
NOT_SET = "(not set)"
#: quantiles of the 80% and 95% central intervals
_QUANTILES = (0.025, 0.10, 0.90, 0.975)
_Z = {80: 1.2815515655446004, 95: 1.959963984540054}
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class DayForecast:
    """One day's forecast cost and its intervals (None when the model gives none)."""

    day: dt.date
    forecast_usd: float
    low_80: float | None
    high_80: float | None
    low_95: float | None
    high_95: float | None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "day": self.day.isoformat()}


@dataclass(frozen=True)
class MonthForecast:
    """A calendar month's projected total: actual to date plus the forecast of its remaining days."""

    month: str
    actual_to_date_usd: float
    forecast_usd: float
    low_80: float | None
    high_80: float | None
    low_95: float | None
    high_95: float | None

    @property
    def remaining_usd(self) -> float:
        return self.forecast_usd - self.actual_to_date_usd

    @property
    def last_day(self) -> dt.date:
        """The month's last day: ``MonthForecast("2026-02", ...).last_day`` is 2026-02-28."""
        return _month_start(dt.date.fromisoformat(f"{self.month}-01"), 1) - _DAY

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "remaining_usd": self.remaining_usd}


@dataclass(frozen=True)
class KeyForecast:
    """The forecast of one key of a scope: its history, month-end projection, next months and daily path."""

    key: str
    model: str
    model_reason: str
    #: complete days, oldest first (from the key's first day with cost)
    history: list[tuple[dt.date, float]]
    partial_day: dt.date
    partial_day_actual_usd: float
    month_end: MonthForecast
    months: list[MonthForecast]
    daily: list[DayForecast]

    @property
    def has_interval(self) -> bool:
        return self.month_end.low_95 is not None

    def to_json(self) -> dict[str, Any]:
        costs = [c for _, c in self.history]
        recent = costs[-RANK_DAYS:]
        return {
            "key": self.key,
            "model": self.model,
            "model_reason": self.model_reason,
            "history": {
                "first_day": self.history[0][0].isoformat() if self.history else None,
                "last_day": self.history[-1][0].isoformat() if self.history else None,
                "days": len(self.history),
                "total_usd": float(sum(costs)),
                "mean_daily_usd_last_28d": float(np.mean(recent)) if recent else None,
                "daily": [{"day": d.isoformat(), "cost_usd": c} for d, c in self.history],
            },
            "partial_day": {"day": self.partial_day.isoformat(), "actual_usd": self.partial_day_actual_usd},
            "month_end": self.month_end.to_json(),
            "months": [m.to_json() for m in self.months],
            "daily": [d.to_json() for d in self.daily],
        }


@dataclass(frozen=True)
class ForecastResult:
    """Forecasts of every key of a scope as of ``at``."""

    scope: str
    #: "fully loaded" (bill, people and token cost) or "token"
    basis: str
    at: dt.datetime
    #: share of ``at``'s day already past (its cost so far is actual)
    day_elapsed: float
    keys: list[KeyForecast]
    #: keys summed into ``(other)``
    other_keys: int = 0
    paths: int = PATHS
    notes: list[str] = field(default_factory=list)

    @property
    def month(self) -> str:
        return f"{self.at:%Y-%m}"

    def key(self, name: str) -> KeyForecast:
        """The forecast of one key; a KeyError names the keys there are."""
        for k in self.keys:
            if k.key == name:
                return k
        raise KeyError(f"no key {name!r} in this forecast (keys: {', '.join(k.key for k in self.keys)})")

    @property
    def actual_to_date_usd(self) -> float:
        return float(sum(k.month_end.actual_to_date_usd for k in self.keys))

    @property
    def month_end_usd(self) -> float:
        """The scope's projected month total: the sum of its keys' (means add up; intervals do not)."""
        return float(sum(k.month_end.forecast_usd for k in self.keys))

    def to_json(self) -> dict[str, Any]:
        """Return the JSON document described in docs/forecasting.md."""
        return {
            "scope": self.scope,
            "basis": self.basis,
            "at": self.at.isoformat(),
            "month": self.month,
            "day_elapsed": self.day_elapsed,
            "paths": self.paths,
            "other_keys": self.other_keys,
            "total": {"actual_to_date_usd": self.actual_to_date_usd, "month_end_usd": self.month_end_usd},
            "keys": [k.to_json() for k in self.keys],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Score:
    """Accuracy of one model over held-out days: errors in percent, interval coverage in percent."""

    points: int
    mape_pct: float | None
    wape_pct: float | None
    coverage_80_pct: float | None
    coverage_95_pct: float | None
    #: mean absolute error of the weekly totals, in percent of the actual totals (what a month-end rests on)
    week_total_error_pct: float | None


@dataclass(frozen=True)
class KeyBacktest:
    """Backtest of one key: the weeks scored, the main model used at each, and each model's score."""

    key: str
    weeks: list[dt.date]
    main_models: list[str]
    scores: dict[str, Score]

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "weeks": [w.isoformat() for w in self.weeks],
            "main_models": self.main_models,
            "models": {name: asdict(s) for name, s in self.scores.items()},
        }


#: the models a backtest compares: the forecast's own and two naive baselines
BACKTEST_MODELS = ("main", "seasonal_naive", "linear_trend")


@dataclass(frozen=True)
class BacktestResult:
    """Rolling-origin backtest of a scope's forecasts: per key and pooled over keys."""

    scope: str
    basis: str
    at: dt.datetime
    weeks: int
    keys: list[KeyBacktest]
    overall: dict[str, Score]
    other_keys: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON document described in docs/forecasting.md."""
        return {
            "scope": self.scope,
            "basis": self.basis,
            "at": self.at.isoformat(),
            "weeks": self.weeks,
            "other_keys": self.other_keys,
            "overall": {name: asdict(s) for name, s in self.overall.items()},
            "keys": [k.to_json() for k in self.keys],
            "notes": list(self.notes),
        }


# Models -----------------------------------------------------------------------------------------------------


@dataclass
class _Fit:
    model: str
    reason: str
    #: (paths, horizon) sample paths; one path and no interval for the run rate
    paths: np.ndarray
    has_interval: bool


def _fit_ets(y: np.ndarray) -> dict[str, Any]:
    """AutoETS (statsforecast) with additive errors and a weekly season; returns the fitted model's dictionary.

    Additive errors because multiplicative ones compound over a month of simulated days into absurd right tails
    (docs/forecasting.md) and cannot fit days of zero cost. AICc picks the trend (none, additive, damped); it
    picks the season (none or additive) only from four weeks on: with fewer, the penalty for seven seasonal
    states rejects even a plain weekly pattern, and the backtests do much better with it forced.
    """
    from statsforecast.models import AutoETS

    with warnings.catch_warnings():
        # With 14 days ets_f also scores candidates with as many parameters as observations: its sigma2
        # divides by n - k - 1 = 0. Those candidates get an infinite criterion and are never chosen.
        warnings.filterwarnings("ignore", "divide by zero encountered in scalar divide", RuntimeWarning)
        spec = "AZZ" if len(y) >= MIN_DAYS_SEASON_CHOICE else "AZA"
        model: dict[str, Any] = AutoETS(season_length=SEASON_LENGTH, model=spec).fit(y).model_
    return model


def ets_name(components: str) -> str:
    """Name an ETS model from statsforecast's components string (error, trend, season, damped).

    >>> ets_name("AAAN"), ets_name("MAMD"), ets_name("ANNN")
    ('ETS(A,A,A)', 'ETS(M,Ad,M)', 'ETS(A,N,N)')
    """
    damped = "d" if components[3] != "N" else ""
    return f"ETS({components[0]},{components[1]}{damped},{components[2]})"


def simulate_ets(model: Mapping[str, Any], errors: np.ndarray) -> np.ndarray:
    """Return sample paths of a fitted ETS model driven by ``errors`` (paths x horizon), vectorised over paths.

    The state equations are those of statsforecast's (and R forecast's) ``etssimulate``, written in error
    correction form so one update serves additive and multiplicative errors. Unlike statsforecast 2.1's
    ``simulate``, an undamped trend keeps ``phi = 1`` (it stores NaN there, which that function turns into 0
    and so drops the trend). Errors of zero give the model's point forecast.
    """
    components = model["components"]
    error, trend, season = components[0], components[1], components[2]
    damped = components[3] != "N"
    alpha, beta, gamma, phi = (float(v) for v in model["par"][:4])
    beta = 0.0 if math.isnan(beta) else beta
    gamma = 0.0 if math.isnan(gamma) else gamma
    phi = phi if damped and not math.isnan(phi) else 1.0
    m = int(model["m"]) if season != "N" else 1
    state = np.asarray(model["states"][-1], dtype=float)
    n_paths, h = errors.shape
    level = np.full(n_paths, state[0])
    slope = np.full(n_paths, state[1] if trend != "N" else 0.0)
    first_season = 1 + (trend != "N")
    seasons = np.tile(state[first_season : first_season + m], (n_paths, 1)) if season != "N" else None
    out = np.empty((n_paths, h))
    for i in range(h):
        if trend == "N":
            damped_slope = np.zeros(n_paths)
            base = level
        elif trend == "A":
            damped_slope = phi * slope
            base = level + damped_slope
        else:
            damped_slope = np.power(np.maximum(slope, 0.0), phi)
            base = level * damped_slope
        if seasons is None:
            fitted = base
        else:
            old = seasons[:, m - 1]
            fitted = base + old if season == "A" else base * old
        y = fitted + errors[:, i] if error == "A" else fitted * (1.0 + errors[:, i])
        out[:, i] = y
        if seasons is None:
            deseasoned = y
        elif season == "A":
            deseasoned = y - old
        else:
            deseasoned = np.divide(y, old, out=np.zeros_like(y), where=np.abs(old) > 1e-10)
        new_level = base + alpha * (deseasoned - base)
        if trend == "A":
            slope = damped_slope + (beta / alpha) * (new_level - level - damped_slope)
        elif trend == "M":
            ratio = np.divide(new_level, level, out=np.ones_like(level), where=np.abs(level) > 1e-10)
            slope = damped_slope + (beta / alpha) * (ratio - damped_slope)
        if seasons is not None:
            target = y - base if season == "A" else np.divide(y, base, out=np.zeros_like(y), where=np.abs(base) > 1e-10)
            new_season = old + gamma * (target - old)
            seasons = np.concatenate([new_season[:, None], seasons[:, : m - 1]], axis=1)
        level = new_level
    return out


def _bootstrap_errors(model: Mapping[str, Any], n_paths: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Residuals drawn with replacement: centred (no drift from a biased fit) and scaled so their mean square is
    the model's sigma2 (its degrees-of-freedom correction: in-sample residuals understate future errors)."""
    residuals = np.asarray(model["residuals"], dtype=float)
    residuals = residuals[np.isfinite(residuals)]
    if residuals.size == 0:
        return np.zeros((n_paths, h))
    residuals = residuals - residuals.mean()
    mean_square = float(np.mean(residuals**2))
    sigma2 = float(model.get("sigma2", mean_square))
    scale = math.sqrt(sigma2 / mean_square) if mean_square > 0 and math.isfinite(sigma2) and sigma2 > 0 else 1.0
    return rng.choice(residuals, size=(n_paths, h)) * scale


def _mean_paths(y: np.ndarray, n_paths: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """The mean model's paths: a bootstrapped mean (its estimation error, constant along a path) plus
    resampled deviations (each day's own noise)."""
    n = len(y)
    levels = y[rng.integers(0, n, size=(n_paths, n))].mean(axis=1)
    deviations = (y - y.mean()) * math.sqrt(n / (n - 1))
    return levels[:, None] + deviations[rng.integers(0, n, size=(n_paths, h))]


def _fit_paths(y: np.ndarray, h: int, run_rate: float, n_paths: int, rng: np.random.Generator) -> _Fit:
    """Choose the model by the number of complete days and return its sample paths (clipped at zero)."""
    n = len(y)
    if n < MIN_DAYS_MEAN:
        why = f"{n} complete day{'s' if n != 1 else ''}: run rate, no interval (an interval needs {MIN_DAYS_MEAN})"
        return _Fit("run_rate", why, np.full((1, h), max(run_rate, 0.0)), False)
    if n >= MIN_DAYS_ETS:
        try:
            model = _fit_ets(y)
            paths = simulate_ets(model, _bootstrap_errors(model, n_paths, h, rng))
            if np.all(np.isfinite(paths)):
                season = "season chosen" if n >= MIN_DAYS_SEASON_CHOICE else "weekly season forced (< 4 weeks)"
                why = f"{n} complete days: AutoETS, additive errors, {season}, trend chosen by AICc"
                return _Fit(ets_name(model["components"]), why, np.maximum(paths, 0.0), True)
            reason = "its simulation diverged"
        except Exception as e:  # statsforecast raises bare Exception, e.g. "no model able to be fitted"
            reason = f"it failed ({e})"
        why = f"{n} complete days, but AutoETS {reason}: mean of the days"
    else:
        why = f"{n} complete days (< {MIN_DAYS_ETS}, too few for a weekly pattern): mean of the days"
    return _Fit("mean", why, np.maximum(_mean_paths(y, n_paths, h, rng), 0.0), True)


# One series ---------------------------------------------------------------------------------------------------


def _day_start(t: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(t.date(), dt.time())


def _month_start(d: dt.date, add: int = 0) -> dt.date:
    months = d.year * 12 + d.month - 1 + add
    return dt.date(months // 12, months % 12 + 1, 1)


def _series(daily: Mapping[dt.date, float], last_day: dt.date) -> tuple[dt.date, np.ndarray]:
    """The complete days up to ``last_day``, from the first day with cost, missing days as 0."""
    days = [d for d, c in daily.items() if d <= last_day and c]
    if not days:
        return last_day + _DAY, np.zeros(0)
    first = min(days)
    y = np.zeros((last_day - first).days + 1)
    for d, c in daily.items():
        if first <= d <= last_day:
            y[(d - first).days] += float(c)
    return first, y


def _month(label: str, actual: float, remaining: np.ndarray, has_interval: bool) -> MonthForecast:
    """A month's total from the actual so far and the per-path sums of its remaining days."""
    if not has_interval:
        return MonthForecast(label, actual, actual + float(remaining.mean()), None, None, None, None)
    low95, low80, high80, high95 = (actual + float(v) for v in np.quantile(remaining, _QUANTILES))
    return MonthForecast(label, actual, actual + float(remaining.mean()), low80, high80, low95, high95)


def forecast_series(
    daily: Mapping[dt.date, float],
    at: dt.datetime,
    *,
    key: str = "all",
    months: int = 1,
    paths: int = PATHS,
    seed: int = SEED,
) -> KeyForecast:
    """Forecast one daily cost series as of ``at``: month-end total, the next ``months`` months, daily path.

    ``daily`` maps UTC days to cost in USD; ``at``'s own day, if present, holds the cost of ``[day start, at)``.

    >>> daily = {dt.date(2026, 10, d): 10.0 for d in range(1, 21)}
    >>> f = forecast_series(daily, dt.datetime(2026, 10, 21))
    >>> f.model, f.month_end.actual_to_date_usd, round(f.month_end.forecast_usd, 6), f.months[0].month
    ('ETS(A,N,N)', 200.0, 310.0, '2026-11')
    """
    if not 1 <= months <= 3:
        raise InvalidOptionError(f"months must be 1, 2 or 3, got {months}")
    at = naive_utc(at)
    today = at.date()
    elapsed = (at - _day_start(at)).total_seconds() / 86400
    first, y = _series(daily, today - _DAY)
    partial = float(daily.get(today, 0.0) or 0.0)
    horizon_end = _month_start(today, months + 1)
    h = (horizon_end - today).days
    run_rate = float(y.mean()) if len(y) else (partial / elapsed if elapsed > 0 else 0.0)
    fit = _fit_paths(y, h, run_rate, paths, np.random.default_rng(seed))
    # today's path value is a whole day; only the part of it after `at` is still to come
    weights = np.ones(h)
    weights[0] = 1.0 - elapsed
    weighted = fit.paths * weights
    month_start = _month_start(today)
    actual = partial + float(sum(y[(max(month_start, first) - first).days :])) if len(y) else partial
    cuts = [(_month_start(today, k) - today).days for k in range(months + 2)]
    month_end = _month(f"{today:%Y-%m}", actual, weighted[:, : cuts[1]].sum(axis=1), fit.has_interval)
    following = [
        _month(f"{_month_start(today, k):%Y-%m}", 0.0, weighted[:, cuts[k] : cuts[k + 1]].sum(axis=1), fit.has_interval)
        for k in range(1, months + 1)
    ]
    means = fit.paths.mean(axis=0)
    q = np.quantile(fit.paths, _QUANTILES, axis=0) if fit.has_interval else None
    days = [
        DayForecast(
            today + i * _DAY,
            float(means[i]),
            *((float(q[1, i]), float(q[2, i]), float(q[0, i]), float(q[3, i])) if q is not None else (None,) * 4),
        )
        for i in range(h)
    ]
    history = [(first + i * _DAY, float(c)) for i, c in enumerate(y)]
    return KeyForecast(key, fit.model, fit.reason, history, today, partial, month_end, following, days)


# Backtest of one series ---------------------------------------------------------------------------------------


@dataclass
class _Scored:
    """Forecasts and actuals of held-out days, for one model (appended week by week)."""

    actual: list[np.ndarray] = field(default_factory=list)
    point: list[np.ndarray] = field(default_factory=list)
    bounds: list[np.ndarray | None] = field(default_factory=list)  # (4, days): low95, low80, high80, high95

    def add(self, actual: np.ndarray, point: np.ndarray, bounds: np.ndarray | None) -> None:
        self.actual.append(actual)
        self.point.append(point)
        self.bounds.append(bounds)

    def extend(self, other: _Scored) -> None:
        self.actual += other.actual
        self.point += other.point
        self.bounds += other.bounds

    def score(self) -> Score:
        if not self.actual:
            return Score(0, None, None, None, None, None)
        a, p = np.concatenate(self.actual), np.concatenate(self.point)
        err = np.abs(p - a)
        pos = a > 0
        mape = float(np.mean(err[pos] / a[pos]) * 100) if pos.any() else None
        wape = float(err.sum() / a.sum() * 100) if a.sum() > 0 else None
        weeks_actual = np.array([w.sum() for w in self.actual])
        weeks_error = np.array([abs(pw.sum() - aw.sum()) for pw, aw in zip(self.point, self.actual, strict=True)])
        week_total = float(weeks_error.sum() / weeks_actual.sum() * 100) if weeks_actual.sum() > 0 else None
        with_bounds = [(aw, b) for aw, b in zip(self.actual, self.bounds, strict=True) if b is not None]
        cover: dict[int, float | None] = {80: None, 95: None}
        if with_bounds:
            aa = np.concatenate([aw for aw, _ in with_bounds])
            bb = np.concatenate([b for _, b in with_bounds], axis=1)
            cover[95] = float(np.mean((aa >= bb[0]) & (aa <= bb[3])) * 100)
            cover[80] = float(np.mean((aa >= bb[1]) & (aa <= bb[2])) * 100)
        return Score(len(a), mape, wape, cover[80], cover[95], week_total)


def _normal_bounds(point: np.ndarray, sd: np.ndarray, z: Mapping[int, float]) -> np.ndarray:
    return np.maximum(np.stack([point - z[95] * sd, point - z[80] * sd, point + z[80] * sd, point + z[95] * sd]), 0)


def seasonal_naive(train: np.ndarray, h: int = SEASON_LENGTH) -> tuple[np.ndarray, np.ndarray | None]:
    """Last week repeated, with the normal interval of Hyndman & Athanasopoulos (FPP3 section 5.5).

    Returns the point forecasts and the bounds (low 95, low 80, high 80, high 95), None with < 2 weeks.

    >>> point, bounds = seasonal_naive(np.array([1.0, 2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6, 7, 8]), h=2)
    >>> point.tolist(), bounds[:, 0].round(2).tolist()
    ([2.0, 3.0], [0.04, 0.72, 3.28, 3.96])
    """
    m = SEASON_LENGTH
    point = np.array([train[len(train) - m + (i % m)] for i in range(h)], dtype=float)
    if len(train) < 2 * m:
        return point, None
    residuals = train[m:] - train[:-m]
    sigma = math.sqrt(float(np.mean(residuals**2)))
    sd = sigma * np.sqrt(np.arange(h) // m + 1)
    return point, _normal_bounds(point, sd, _Z)


def linear_trend(train: np.ndarray, h: int = SEASON_LENGTH) -> tuple[np.ndarray, np.ndarray | None]:
    """A straight line fitted by least squares, with the regression's prediction interval (t quantiles).

    >>> point, bounds = linear_trend(np.array([1.0, 2.0, 3.0, 4.0]), h=2)
    >>> point.round(6).tolist(), bounds[:, 0].round(6).tolist()
    ([5.0, 6.0], [5.0, 5.0, 5.0, 5.0])
    """
    from scipy import stats

    n = len(train)
    t = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(t, train, 1)
    future = np.arange(n, n + h, dtype=float)
    point = np.maximum(intercept + slope * future, 0.0)
    if n < 3:
        return point, None
    residual_sd = math.sqrt(float(np.sum((train - intercept - slope * t) ** 2)) / (n - 2))
    sxx = float(np.sum((t - t.mean()) ** 2))
    sd = residual_sd * np.sqrt(1 + 1 / n + (future - t.mean()) ** 2 / sxx)
    z = {level: float(stats.t.ppf(0.5 + level / 200, n - 2)) for level in (80, 95)}
    return point, _normal_bounds(point, sd, z)


def _backtest_scored(
    daily: Mapping[dt.date, float], at: dt.datetime, weeks: int, paths: int, seed: int
) -> tuple[list[dt.date], list[str], dict[str, _Scored]]:
    today = naive_utc(at).date()
    first, y = _series(daily, today - _DAY)
    scored = {name: _Scored() for name in BACKTEST_MODELS}
    origins: list[dt.date] = []
    used: list[str] = []
    rng = np.random.default_rng(seed)
    for w in range(weeks, 0, -1):
        origin = today - w * SEASON_LENGTH * _DAY
        cut = (origin - first).days
        if cut < MIN_DAYS_ETS:
            continue
        train, actual = y[:cut], y[cut : cut + SEASON_LENGTH]
        fit = _fit_paths(train, SEASON_LENGTH, float(train.mean()), paths, rng)
        bounds = np.quantile(fit.paths, _QUANTILES, axis=0) if fit.has_interval else None
        scored["main"].add(actual, fit.paths.mean(axis=0), bounds)
        scored["seasonal_naive"].add(actual, *seasonal_naive(train))
        scored["linear_trend"].add(actual, *linear_trend(train))
        origins.append(origin)
        used.append(fit.model)
    return origins, used, scored


def backtest_series(
    daily: Mapping[dt.date, float],
    at: dt.datetime,
    *,
    key: str = "all",
    weeks: int = 4,
    paths: int = PATHS,
    seed: int = SEED,
) -> KeyBacktest:
    """Score the forecast of one daily series on each of the last ``weeks`` complete weeks before ``at``'s day.

    At each origin the models are refitted on the days before it and forecast the 7 days from it. An origin
    with fewer than 14 days of history before it is skipped (no weekly model and no seasonal-naive interval).
    """
    if weeks < 1:
        raise InvalidOptionError(f"weeks must be at least 1, got {weeks}")
    origins, used, scored = _backtest_scored(daily, at, weeks, paths, seed)
    return KeyBacktest(key, origins, used, {name: s.score() for name, s in scored.items()})


# Scopes over a workspace --------------------------------------------------------------------------------------


def _check_scope(scope: str) -> None:
    if scope not in SCOPES and scope not in DIMENSIONS:
        import difflib

        choices = (*SCOPES, *DIMENSIONS)
        close = difflib.get_close_matches(scope, choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidOptionError(f"unknown scope {scope!r}{hint} (choose from {', '.join(choices)})")


@dataclass
class _ScopeSeries:
    basis: str
    at: dt.datetime
    series: dict[str, dict[dt.date, float]]
    other_keys: int
    notes: list[str]


def _scope_series(store: Store, config: Config, scope: str, at: dt.datetime | None, top: int) -> _ScopeSeries:
    """Daily cost per key of the scope over the history window, top keys kept and the rest as ``(other)``."""
    from unitcost.analysis.dashboard import daily_cost_by_layer
    from unitcost.analysis.economics import cost_timeseries
    from unitcost.analysis.stack import has_stack_inputs

    _check_scope(scope)
    if top < 0:
        raise InvalidOptionError(f"top must be 0 (all keys) or more, got {top}")
    at = naive_utc(at) if at is not None else after_newest_usage(store, "nothing to forecast")
    today = at.date()
    start = dt.datetime.combine(today - HISTORY_DAYS * _DAY, dt.time())
    notes: list[str] = []
    loaded = scope in SCOPES and has_stack_inputs(store, config, start, at)
    if scope == "layer" or (scope == "all" and loaded):
        table = daily_cost_by_layer(store, config, start, at)
        if scope == "all":
            notes.append("Fully loaded cost: bill lines, people time and token cost of providers with no bill.")
    else:
        table = cost_timeseries(
            store, config, start, at, grain="day", by=None if scope == "all" else scope, units=False
        )
        notes.append("Token cost (tokens x prices); bill lines and people time are not in it.")
    basis = "fully loaded" if loaded else "token"
    per_key: dict[str, dict[dt.date, float]] = {}
    for period, key, cost in zip(
        table.column("period").to_pylist(),
        table.column("key").to_pylist(),
        table.column("cost_usd").to_pylist(),
        strict=True,
    ):
        name = "all" if scope == "all" else (NOT_SET if key is None else str(key))
        days = per_key.setdefault(name, {})
        days[period.date()] = days.get(period.date(), 0.0) + float(cost or 0.0)
    if not per_key:
        raise PeriodError(f"no cost in the {HISTORY_DAYS} days up to {at:%Y-%m-%d %H:%M}: nothing to forecast")
    recent = today - RANK_DAYS * _DAY
    rank = sorted(
        per_key,
        key=lambda k: (-sum(c for d, c in per_key[k].items() if recent <= d < today), -sum(per_key[k].values()), k),
    )
    kept = rank if top == 0 or len(rank) <= top else rank[:top]
    series = {k: per_key[k] for k in kept}
    rest = [k for k in rank if k not in series]
    if rest:
        other: dict[dt.date, float] = {}
        for k in rest:
            for d, c in per_key[k].items():
                other[d] = other.get(d, 0.0) + c
        series[OTHER] = other
        notes.append(f"{len(rest)} smaller keys are summed into {OTHER}.")
    return _ScopeSeries(basis, at, series, len(rest), notes)


def forecast_costs(
    store: Store,
    config: Config,
    *,
    scope: str = "all",
    months: int = 1,
    at: dt.datetime | None = None,
    top: int = 10,
) -> ForecastResult:
    """Forecast the daily cost of each key of ``scope`` to the end of ``at``'s month and ``months`` more months.

    Args:
        scope: ``all``, ``layer`` or a usage dimension (``tenant``, ``feature``, ...).
        months: how many calendar months after the current one to forecast (1 to 3).
        at: evaluation time (naive UTC); default just after the newest usage row.
        top: keys kept (largest cost over the last four weeks first); the rest are summed into ``(other)``.
    """
    if not 1 <= months <= 3:
        raise InvalidOptionError(f"months must be 1, 2 or 3, got {months}")
    scoped = _scope_series(store, config, scope, at, top)
    keys = [forecast_series(daily, scoped.at, key=key, months=months) for key, daily in scoped.series.items()]
    elapsed = (scoped.at - _day_start(scoped.at)).total_seconds() / 86400
    notes = list(scoped.notes)
    if any(k.model == "run_rate" for k in keys):
        notes.append(
            f"Keys with fewer than {MIN_DAYS_MEAN} complete days are projected at their run rate, no interval."
        )
    return ForecastResult(scope, scoped.basis, scoped.at, elapsed, keys, scoped.other_keys, PATHS, notes)


def backtest_costs(
    store: Store,
    config: Config,
    *,
    scope: str = "all",
    weeks: int = 4,
    at: dt.datetime | None = None,
    top: int = 10,
) -> BacktestResult:
    """Backtest the forecasts of ``scope`` on the last ``weeks`` complete weeks before ``at``'s day.

    Scores per key and pooled over keys: MAPE, WAPE, 80%/95% interval coverage and the error of weekly totals
    of the forecast's own model, of a seasonal naive forecast and of a linear trend.
    """
    if weeks < 1:
        raise InvalidOptionError(f"weeks must be at least 1, got {weeks}")
    scoped = _scope_series(store, config, scope, at, top)
    keys: list[KeyBacktest] = []
    pooled = {name: _Scored() for name in BACKTEST_MODELS}
    for key, daily in scoped.series.items():
        origins, used, scored = _backtest_scored(daily, scoped.at, weeks, PATHS, SEED)
        keys.append(KeyBacktest(key, origins, used, {name: s.score() for name, s in scored.items()}))
        for name, s in scored.items():
            pooled[name].extend(s)
    notes = list(scoped.notes)
    skipped = [k.key for k in keys if len(k.weeks) < weeks]
    if skipped:
        notes.append(
            f"Weeks with fewer than {MIN_DAYS_ETS} days of history before them are not scored "
            f"({len(skipped)} key{'s' if len(skipped) != 1 else ''} affected)."
        )
    overall = {name: s.score() for name, s in pooled.items()}
    return BacktestResult(scope, scoped.basis, scoped.at, weeks, keys, overall, scoped.other_keys, notes)


__all__ = [
    "BACKTEST_MODELS",
    "SCOPES",
    "BacktestResult",
    "DayForecast",
    "ForecastResult",
    "KeyBacktest",
    "KeyForecast",
    "MonthForecast",
    "Score",
    "backtest_costs",
    "backtest_series",
    "forecast_costs",
    "forecast_series",
    "linear_trend",
    "seasonal_naive",
    "simulate_ets",
]

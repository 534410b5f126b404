"""The ``drift`` alert rule: a feature's efficiency metrics, the last days against the days before.

Per feature, six metrics are compared between a *window* of ``window_days`` complete UTC days and the
*baseline* of the ``baseline_days`` days just before it (``alerts.drift`` in ``unitcost.yaml``). *Requests* are
model calls: usage rows that are not ``response_cache_hit``.

* ``cache_hit_rate`` = sum(cache_read_tokens) / sum(input_tokens); fires when it falls by >= cache_hit_drop_pts
  percentage points;
* ``input_tokens_per_request``, ``output_tokens_per_request`` = mean tokens per request; fire when they rise by
  >= tokens_per_request_rise_pct %;
* ``retry_rate`` = share of requests that are retries; rises by >= retry_rate_rise_pts points;
* ``escalation_rate`` = share of the units of work with an outcome that were escalated; rises by >=
  escalation_rate_rise_pts points (not evaluated when the range has no outcome at all);
* ``latency_p95_ms`` = 95th percentile of latency_ms; rises by >= latency_p95_rise_pct % (not evaluated for a
  feature without latencies).

A request is a retry when ``attempt > 1``; where ``attempt`` is not recorded, when its status is ``error``. A
unit of work belongs to the feature and day of its last request; its outcome is its ``outcomes`` row (known
before the evaluation time); units without one are left out of the escalation rate.

Besides the threshold a change must be significant (two-sided p < :data:`ALPHA`) and both sides must hold at
least ``min_requests`` requests (and :data:`MIN_OUTCOME_UNITS` units with an outcome for the escalation rate):

* cache hit rate: a z-test on the ratio of sums, its variance by the delta method from per-request moments;
* tokens per request: Welch's t-test from per-request moments (count, sum, sum of squares);
* retry and escalation rates: the pooled two-proportion z-test;
* p95 latency: the pooled two-proportion z-test of the share of requests above the baseline's p95 (5% in the
  baseline by definition).

Requests are not independent (retries of one call, calls of one unit, the weekday mix), so every variance is
multiplied by the baseline's *dispersion*: how much its days differ from each other beyond their sampling
variance (median over days of ((day value - median day value)^2 / day variance) / 0.455, the median of a
chi-square with 1 degree of freedom; at least 1; 1 with fewer than 3 days). The medians keep a shift inside
the baseline from inflating it.

How it runs: over ``[floor(since) - baseline_days, floor(at))``, whole days. The model calls grouped by (feature,
day, price segment): request counts, token moments and token sums, priced per segment (``ledger.segments``),
give the daily figures; per (feature, day, latency bucket), a log-spaced latency histogram
(:data:`LATENCY_BUCKETS_PER_E` buckets per factor e, 2.5% wide), which sums exactly over days, so a window of
several days has its own p95 (interpolated inside the bucket, within ~1%) rather than an average of daily p95s.
Both come from the rollups ingestion keeps (``usage_hourly``, ``usage_latency``: ``store/rollups.py``), a few
rows per hour; where the range's prices do not change on the hour, from one ``GROUP BY`` of the requests. A
second pass counts, per (feature, day), the units with an outcome and the escalated ones, each unit at its last
request in the range (``usage.unit_next_ts``, no ``GROUP BY`` unit). Everything else is numpy on those small arrays.

Evaluations and episodes. The rule evaluates at each UTC midnight ``d`` from ``floor(since) + window_days`` to
``floor(at)``: window ``[d - window_days, d)``, baseline ``[d - window_days - baseline_days, d - window_days)``.
Only complete days are judged (hour-of-day mix would bias a partial day), so the state at ``at`` is the one of
the last midnight. A flagged evaluation opens an episode; while it lasts, each later window is compared with
the baseline of the evaluation that opened it (so a lasting shift keeps firing instead of being absorbed by a
sliding baseline); it ends at the first evaluation whose window no longer differs from that baseline by the
threshold with significance (``ended_at`` = that midnight), and is open (``ended_at`` None) when the last one
still does. An evaluation without enough requests changes nothing. ``started_at`` is the window start of the
first flagged evaluation (with ``window_days`` > 1 it can precede the change by up to ``window_days - 1`` days).
The message and ``details`` describe the last flagged window against that baseline. The walk runs over the
evaluation days, each one vectorized over every feature. A drift that began before ``since`` is seen from
``since`` on, against a baseline that may already hold part of it (its ``started_at`` is then the first window).

Impact (``impact_usd_per_month``), at the window's volume: for the cache and token metrics the change in token
cost per priced request x the window's requests per day x 30; for the retry rate the extra requests (rise in
the rate x requests per day x 30) at the window's cost per request; None for escalation and latency (their cost
is not a token cost). Never below 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
from numpy.typing import NDArray
from scipy import special

from unitcost.alerts.model import Finding, RuleContext
from unitcost.analysis.economics import price_lookup
from unitcost.config import Config, DriftRuleConfig
from unitcost.ledger.costs import usage_in_range
from unitcost.ledger.segments import Segmentation, price_segments, token_sums
from unitcost.periods import naive_utc
from unitcost.schema import TOKEN_COLUMNS
from unitcost.store import Store, rollups
from unitcost.store.units import last_in

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]

METRICS = (
    "cache_hit_rate",
    "input_tokens_per_request",
    "output_tokens_per_request",
    "retry_rate",
    "escalation_rate",
    "latency_p95_ms",
)
#: two-sided significance level of every test
ALPHA = 0.01
#: units with an outcome needed on each side to judge the escalation rate (normal approximation)
MIN_OUTCOME_UNITS = 30
#: latency histogram resolution: buckets per factor e (each bucket is exp(1/40) - 1 = 2.5% wide)
LATENCY_BUCKETS_PER_E = rollups.LATENCY_BUCKETS_PER_E
_DAY = dt.timedelta(days=1)
_CHI2_1_MEDIAN = 0.454936423119572
_SUMS = (
    "requests",
    "input_tokens",
    "input_sq",
    "cache_read",
    "cache_read_sq",
    "input_cache",
    "output_tokens",
    "output_sq",
    "retries",
    "latency_n",
    "cost_usd",
    "priced",
    "outcome_units",
    "escalated",
)


@dataclass
class _Daily:
    """Per (feature, day) sums over ``[lo, lo + days)`` and the latency histogram (feature, day, bucket)."""

    features: list[str]
    lo: dt.datetime
    days: int
    sums: dict[str, Floats]  # each (F, days)
    latency_hist: Floats  # (F, days, K)
    first_bucket: int
    has_outcomes: bool


def _floor_day(t: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(t.date(), dt.time(), t.tzinfo)


def _day_index(lo: dt.datetime, days: Any) -> NDArray[np.int64]:
    """Whole days from ``lo`` to each timestamp of ``days``."""
    delta = np.asarray(days, dtype="datetime64[us]") - np.datetime64(lo, "us")
    return np.asarray(delta // np.timedelta64(1, "D"), dtype=np.int64)


def _pivot(
    features: list[str], lo: dt.datetime, days: int, rows: dict[str, Any], names: tuple[str, ...]
) -> dict[str, Floats]:
    """Place grouped rows (feature, day, value columns) into (F, days) arrays (``features`` sorted)."""
    at = (np.searchsorted(np.asarray(features), rows["feature"]), _day_index(lo, rows["day"]))
    out = {}
    for name in names:
        a = np.zeros((len(features), days))
        np.add.at(a, at, np.nan_to_num(np.asarray(rows[name], dtype=np.float64)))
        out[name] = a
    return out


def _columns(t: ir.Table) -> dict[str, Any]:
    arrow = t.to_pyarrow()
    return {c: arrow.column(c).to_numpy(zero_copy_only=False) for c in arrow.column_names}


def _grouped(u: ir.Table, seg: Segmentation) -> ir.Table:
    """Model calls per (feature, day, latency bucket, price segment): the (feature, day) sums and the histogram
    are sums of these groups, and each group's token sums are priced at its segment's rates (exact: linear)."""
    calls = u.filter(~u.response_cache_hit.fill_null(False) & u.feature.notnull())
    x = calls.input_tokens.fill_null(0).cast("float64")
    y = calls.cache_read_tokens.fill_null(0).cast("float64")
    o = calls.output_tokens.fill_null(0).cast("float64")
    retry = ibis.coalesce(calls.attempt > 1, calls.status == "error", False)
    log_bucket = (ibis.greatest(calls.latency_ms, 1.0).ln() * LATENCY_BUCKETS_PER_E).floor().cast("int64")
    return calls.group_by(
        feature=calls.feature,
        day=calls.ts.truncate("D"),
        bucket=ibis.cases((calls.latency_ms.notnull(), log_bucket), else_=ibis.null("int64")),
        provider=calls.provider,
        model=calls.model,
        **seg.of_requests(calls),
    ).aggregate(
        requests=calls.count(),
        input_sq=(x * x).sum(),
        cache_read_sq=(y * y).sum(),
        input_cache=(x * y).sum(),
        output_sq=(o * o).sum(),
        retries=retry.cast("int64").sum(),
        latency_n=calls.latency_ms.count(),
        **token_sums(calls),
    )


def _rolled_up(store: Store, lo: dt.datetime, hi: dt.datetime, seg: Segmentation, edges: tuple[int, ...]) -> ir.Table:
    """:func:`_grouped` from ``usage_hourly`` (whole days), without latency buckets (``usage_latency`` has them)."""
    h = store.table("usage_hourly")
    h = h.filter((h.hour >= lo) & (h.hour < hi) & ~h.cache_hit & h.feature.notnull())
    return h.group_by(
        feature=h.feature,
        day=h.hour.truncate("D"),
        bucket=ibis.null("int64"),
        provider=h.provider,
        model=h.model,
        **rollups.segment_of(h, seg, edges),
    ).aggregate(
        requests=h.requests.sum(),
        input_sq=h.input_sq.sum(),
        cache_read_sq=h.cache_read_sq.sum(),
        input_cache=h.input_cache.sum(),
        output_sq=h.output_sq.sum(),
        retries=h.retries.sum(),
        latency_n=h.latency_n.sum(),
        **{c: h[c].sum().fill_null(0) for c in TOKEN_COLUMNS},
    )


def _load(store: Store, config: Config, lo: dt.datetime, hi: dt.datetime, at: dt.datetime) -> _Daily:
    """Two engine passes: the daily sums with the latency histogram, then the units with an outcome."""
    _, seg, lookup = price_lookup(config, store, lo, hi)
    edges = rollups.edges_if_built(store)
    latency: dict[str, Any] | None = None
    if edges is not None and rollups.covers(seg, edges):  # whole days: the rollups hold the same sums
        grouped = _rolled_up(store, lo, hi, seg, edges)
        t = store.table("usage_latency")
        latency = _columns(t.filter((t.day >= lo) & (t.day < hi)))
    else:
        grouped = _grouped(usage_in_range(store, lo, hi), seg)
    g, cost = price_segments(grouped, lookup)
    groups = _columns(
        g.select(
            feature=grouped.feature,
            day=grouped.day,
            bucket=grouped.bucket,
            requests=grouped.requests,
            input_tokens=grouped.input_tokens.cast("float64"),
            input_sq=grouped.input_sq,
            cache_read=grouped.cache_read_tokens.cast("float64"),
            cache_read_sq=grouped.cache_read_sq,
            input_cache=grouped.input_cache,
            output_tokens=grouped.output_tokens.cast("float64"),
            output_sq=grouped.output_sq,
            retries=grouped.retries,
            latency_n=grouped.latency_n,
            cost_usd=cost.cast("float64"),
            priced=ibis.cases((g.input_per_mtok.notnull(), grouped.requests), else_=0),
        )
    )
    features = sorted(set(groups["feature"].tolist()))
    days = (hi - lo).days
    sums = _pivot(features, lo, days, groups, _SUMS[:12])

    if latency is None:  # from the groups with a latency bucket
        timed = np.asarray([b is not None and b == b for b in groups["bucket"]], dtype=bool)
        latency = {k: groups[k][timed] for k in ("feature", "day", "bucket", "requests")}
    keep = np.isin(latency["feature"], features)  # a feature with latencies has requests
    buckets = latency["bucket"][keep].astype(np.int64)
    first = int(buckets.min()) if buckets.size else 0
    width = int(buckets.max()) - first + 1 if buckets.size else 1
    latency_hist = np.zeros((len(features), days, width))
    f_idx = np.searchsorted(np.asarray(features), latency["feature"][keep])
    at_day = _day_index(lo, latency["day"][keep])
    np.add.at(latency_hist, (f_idx, at_day, buckets - first), latency["requests"][keep].astype(np.float64))

    units = _outcome_units(store, lo, hi, at)
    units = {k: v[np.isin(units["feature"], features)] for k, v in units.items()}
    sums |= _pivot(features, lo, days, units, ("outcome_units", "escalated"))
    return _Daily(features, lo, days, sums, latency_hist, first, bool(len(units["feature"])))


def _outcome_units(store: Store, lo: dt.datetime, hi: dt.datetime, at: dt.datetime) -> dict[str, Any]:
    """Units of work with an outcome known before ``at``, per (feature, day) of their last request."""
    u = usage_in_range(store, lo, hi)
    last = u.filter(last_in(u, hi) & u.feature.notnull())  # each unit's last request in the range
    keys = store.table("unit_keys")
    o = store.table("outcomes")
    o = o.filter(o.ts < at)
    ko = o.inner_join(keys, o.trace_id == keys.unit_key).select(o_unit_id=keys.unit_id, outcome=o.outcome)
    j = last.inner_join(ko, last.unit_id == ko.o_unit_id)
    return _columns(
        j.group_by(feature=j.feature, day=j.ts.truncate("D")).aggregate(
            outcome_units=j.count(), escalated=(j.outcome == "escalated").cast("int64").sum()
        )
    )


@dataclass
class _Side:
    """One side of a comparison, per feature: sums (F,), latency histogram (F, K) and, for a baseline, its
    days one by one (``daily`` (F, B) and ``daily_hist`` (F, B, K)) for the dispersion estimate."""

    sums: dict[str, Floats]
    hist: Floats
    daily: dict[str, Floats]
    daily_hist: Floats


@dataclass
class _Tests:
    """One metric for each feature: window against baseline, arrays of shape (F,)."""

    current: Floats
    baseline: Floats
    change: Floats  # points for rates, % for the rest
    p_value: Floats
    judged: Bools
    flagged: Bools


class _Series:
    """The daily sums with their running totals: any window or baseline is two look-ups."""

    def __init__(self, data: _Daily, window_days: int, baseline_days: int) -> None:
        self.data = data
        self.w, self.b = window_days, baseline_days
        #: day index (from ``data.lo``) of each evaluation midnight
        self.ends = np.arange(window_days + baseline_days, data.days + 1)
        self.cum = {k: self._cumsum(v) for k, v in data.sums.items()}
        self.cum_hist = self._cumsum(data.latency_hist)
        self.rows = np.arange(len(data.features))

    @staticmethod
    def _cumsum(a: Floats) -> Floats:
        return np.concatenate([np.zeros_like(a[:, :1]), np.cumsum(a, axis=1)], axis=1)

    def _between(self, lo: Any, hi: Any) -> tuple[dict[str, Floats], Floats]:
        sums = {k: c[self.rows, hi] - c[self.rows, lo] for k, c in self.cum.items()}
        return sums, self.cum_hist[self.rows, hi] - self.cum_hist[self.rows, lo]

    def window(self, i: int) -> _Side:
        """The window of evaluation ``i`` for every feature."""
        end = np.full(self.rows.size, self.ends[i])
        sums, hist = self._between(end - self.w, end)
        return _Side(sums, hist, {}, np.empty((self.rows.size, 0, hist.shape[-1])))

    def baseline(self, j: Any) -> _Side:
        """The baseline of evaluation ``j[f]`` for each feature ``f``."""
        end = self.ends[j] - self.w
        sums, hist = self._between(end - self.b, end)
        days = (end - self.b)[:, None] + np.arange(self.b)
        daily = {k: v[self.rows[:, None], days] for k, v in self.data.sums.items()}
        return _Side(sums, hist, daily, self.data.latency_hist[self.rows[:, None], days])


def _normal_p(z: Floats) -> Floats:
    """Two-sided p-value of a standard normal statistic."""
    return np.asarray(2 * special.ndtr(-np.abs(z)), dtype=np.float64)


def _dispersion(value_day: Floats, var_day: Floats) -> Floats:
    """Extra day-to-day variation of the baseline's days (F, B) beyond their sampling variance ``var_day``.

    Robust to a shift inside the baseline: the median over days of ((value - median value)^2 / variance),
    divided by the median of a chi-square with 1 degree of freedom; at least 1, and 1 with fewer than 3 days.
    """
    ok = np.isfinite(value_day) & (var_day > 0) & np.isfinite(var_day)
    enough = ok.sum(axis=1) >= 3
    v = np.where(ok & enough[:, None], value_day, np.nan)
    v[~enough] = 0.0  # rows that are not judged: no all-NaN median
    z2 = (v - np.nanmedian(v, axis=1, keepdims=True)) ** 2 / np.where(ok & enough[:, None], var_day, 1.0)
    phi = np.nanmedian(z2, axis=1) / _CHI2_1_MEDIAN
    return np.where(enough & np.isfinite(phi), np.maximum(phi, 1.0), 1.0)


def _proportion_dispersion(k_day: Floats, n_day: Floats) -> Floats:
    """Dispersion of daily counts ``k_day`` out of ``n_day`` (F, B) around their pooled share."""
    p = k_day.sum(axis=1, keepdims=True) / n_day.sum(axis=1, keepdims=True)
    return _dispersion(k_day / n_day, p * (1 - p) / n_day)


def _two_proportions(k_w: Floats, n_w: Floats, k_b: Floats, n_b: Floats, phi: Floats) -> tuple[Floats, ...]:
    """Shares in window and baseline and the pooled two-proportion z-test's p-value (variance x ``phi``)."""
    p_w, p_b = k_w / n_w, k_b / n_b
    pooled = (k_w + k_b) / (n_w + n_b)
    se = np.sqrt(phi * pooled * (1 - pooled) * (1 / n_w + 1 / n_b))
    return p_w, p_b, _normal_p((p_w - p_b) / se)


def _welch(w: dict[str, Floats], b: _Side, column: str) -> tuple[Floats, ...]:
    """Mean ``column`` per request in window and baseline and Welch's t-test p-value.

    From count, sum and sum of squares; both variances are scaled by the baseline's day-to-day dispersion
    (each day's mean against the pooled within-day variance).
    """
    s, sq = f"{column}_tokens", f"{column}_sq"
    n_w, n_b = w["requests"], b.sums["requests"]
    m_w, m_b = w[s] / n_w, b.sums[s] / n_b
    n_day, s_day = b.daily["requests"], b.daily[s]
    days = (n_day > 0).sum(axis=1)
    within = (b.sums[sq] - np.where(n_day > 0, s_day**2 / n_day, 0).sum(axis=1)) / (n_b - days)
    phi = _dispersion(s_day / n_day, within[:, None] / n_day)
    v_w = phi * np.maximum(w[sq] - w[s] * m_w, 0) / (n_w - 1) / n_w  # variance of the mean
    v_b = phi * np.maximum(b.sums[sq] - b.sums[s] * m_b, 0) / (n_b - 1) / n_b
    t = (m_w - m_b) / np.sqrt(v_w + v_b)
    df = (v_w + v_b) ** 2 / (v_w**2 / (n_w - 1) + v_b**2 / (n_b - 1))
    return m_w, m_b, np.asarray(2 * special.stdtr(df, -np.abs(t)), dtype=np.float64)


def _ratio(s: dict[str, Floats]) -> tuple[Floats, Floats]:
    """cache_read / input (a ratio of sums) and its delta-method variance, from per-request moments."""
    r = s["cache_read"] / s["input_tokens"]
    var = (s["cache_read_sq"] - 2 * r * s["input_cache"] + r * r * s["input_sq"]) / s["input_tokens"] ** 2
    return r, np.maximum(var, 0)


def _cache_hit(w: dict[str, Floats], b: _Side) -> tuple[Floats, ...]:
    """Cache hit rate in window and baseline and the z-test's p-value (variance x the baseline's dispersion)."""
    r_w, v_w = _ratio(w)
    r_b, v_b = _ratio(b.sums)
    phi = _dispersion(*_ratio(b.daily))
    return r_w, r_b, _normal_p((r_w - r_b) / np.sqrt(phi * (v_w + v_b)))


def _quantile_position(hist: Floats, q: float) -> tuple[Floats, Floats]:
    """Continuous bucket position of the ``q`` quantile of each histogram (last axis), and the totals."""
    total = hist.sum(axis=-1)
    cum = np.cumsum(hist, axis=-1)
    b = np.argmax(cum >= (q * total)[..., None], axis=-1)
    in_b = np.take_along_axis(hist, b[..., None], axis=-1)[..., 0]
    before = np.take_along_axis(cum, b[..., None], axis=-1)[..., 0] - in_b
    return b + (q * total - before) / in_b, total


def _count_below(hist: Floats, position: Floats) -> Floats:
    """Requests under a continuous bucket ``position`` in histograms ``hist`` (..., K), log-uniform in a bucket.

    ``position`` has the shape of ``hist`` without its last axis, or one that broadcasts to it.
    """
    pos = np.broadcast_to(np.nan_to_num(position), hist.shape[:-1])[..., None]
    b = np.clip(np.floor(pos).astype(np.int64), 0, hist.shape[-1] - 1)
    in_b = np.take_along_axis(hist, b, axis=-1)
    before = np.take_along_axis(np.cumsum(hist, axis=-1), b, axis=-1) - in_b
    return np.asarray((before + np.clip(pos - b, 0, 1) * in_b)[..., 0], dtype=np.float64)


def _latency(w: _Side, b: _Side, first_bucket: int) -> tuple[Floats, ...]:
    """p95 latency (ms) in window and baseline, and the test of the share of requests above the baseline's p95."""
    pos_w, n_w = _quantile_position(w.hist, 0.95)
    pos_b, n_b = _quantile_position(b.hist, 0.95)
    above_w = n_w - _count_below(w.hist, pos_b)
    above_b = n_b - _count_below(b.hist, pos_b)
    n_day = b.daily_hist.sum(axis=-1)
    phi = _proportion_dispersion(n_day - _count_below(b.daily_hist, pos_b[:, None]), n_day)
    _, _, p = _two_proportions(above_w, n_w, above_b, n_b, phi)
    scale = LATENCY_BUCKETS_PER_E
    return np.exp((first_bucket + pos_w) / scale), np.exp((first_bucket + pos_b) / scale), p


def _compare(metric: str, w_side: _Side, b: _Side, cfg: DriftRuleConfig, first_bucket: int) -> _Tests:
    """Test one metric of each feature's window against its baseline."""
    w = w_side.sums
    enough = (w["requests"] >= cfg.min_requests) & (b.sums["requests"] >= cfg.min_requests)
    if metric == "cache_hit_rate":
        r_w, r_b, p = _cache_hit(w, b)
        cur, base = 100 * r_w, 100 * r_b
        change = cur - base
        fires = change <= -cfg.cache_hit_drop_pts
    elif metric in ("input_tokens_per_request", "output_tokens_per_request"):
        cur, base, p = _welch(w, b, metric.split("_")[0])
        change = 100 * (cur / base - 1)
        fires = change >= cfg.tokens_per_request_rise_pct
    elif metric in ("retry_rate", "escalation_rate"):
        k, n = ("retries", "requests") if metric == "retry_rate" else ("escalated", "outcome_units")
        phi = _proportion_dispersion(b.daily[k], b.daily[n])
        p_w, p_b, p = _two_proportions(w[k], w[n], b.sums[k], b.sums[n], phi)
        cur, base = 100 * p_w, 100 * p_b
        change = cur - base
        if metric == "retry_rate":
            fires = change >= cfg.retry_rate_rise_pts
        else:
            fires = change >= cfg.escalation_rate_rise_pts
            enough &= (w[n] >= MIN_OUTCOME_UNITS) & (b.sums[n] >= MIN_OUTCOME_UNITS)
    elif metric == "latency_p95_ms":
        cur, base, p = _latency(w_side, b, first_bucket)
        change = 100 * (cur / base - 1)
        fires = change >= cfg.latency_p95_rise_pct
        enough &= (w["latency_n"] >= cfg.min_requests) & (b.sums["latency_n"] >= cfg.min_requests)
    else:
        raise ValueError(f"unknown drift metric {metric!r}")
    judged = enough & np.isfinite(p) & np.isfinite(change)
    return _Tests(cur, base, change, p, judged, judged & fires & (p < ALPHA))


@dataclass(frozen=True)
class _Episode:
    """Evaluations (indices) of one episode of one feature, and the test at its last flagged evaluation."""

    feature: int
    first: int
    last: int
    end: int | None
    current: float
    baseline: float
    change: float
    p_value: float
    flagged: int


def _walk(metric: str, series: _Series, cfg: DriftRuleConfig) -> list[_Episode]:
    """Evaluate every midnight in turn, all features at once, and return the episodes.

    A feature without an open episode compares the window with its own baseline; one with an open episode
    compares it with the baseline of the evaluation that opened it. An evaluation that cannot be judged
    neither ends nor extends an episode; an episode ending at ``i`` lets a new one start at ``i + 1`` at the
    earliest.
    """
    n = series.rows.size
    is_open = np.zeros(n, dtype=bool)
    first, last, flagged = (np.zeros(n, dtype=np.int64) for _ in range(3))
    snap = {k: np.zeros(n) for k in ("current", "baseline", "change", "p_value")}
    out: list[_Episode] = []

    def close(f: Any, end: int | None) -> None:
        values = {k: float(v[f]) for k, v in snap.items()}
        out.append(_Episode(int(f), int(first[f]), int(last[f]), end, **values, flagged=int(flagged[f])))

    for i in range(series.ends.size):  # evaluation days (a few dozen), each vectorized over features
        t = _compare(metric, series.window(i), series.baseline(np.where(is_open, first, i)), cfg,
                     series.data.first_bucket)  # fmt: skip
        ending = is_open & t.judged & ~t.flagged
        for f in np.flatnonzero(ending):
            close(f, i)
        starting = ~is_open & ~ending & t.flagged
        is_open = (is_open & ~ending) | starting
        first[starting], flagged[starting] = i, 0
        hit = is_open & t.flagged
        last[hit], flagged[hit] = i, flagged[hit] + 1
        for k in snap:
            snap[k][hit] = getattr(t, k)[hit]
    for f in np.flatnonzero(is_open):
        close(f, None)
    return out


_LABEL = {
    "cache_hit_rate": "cache hit rate",
    "input_tokens_per_request": "input tokens per request",
    "output_tokens_per_request": "output tokens per request",
    "retry_rate": "retry rate",
    "escalation_rate": "escalation rate",
    "latency_p95_ms": "p95 latency",
}


def _span(start: dt.datetime, end: dt.datetime) -> str:
    """Days [start, end) as text: ``Oct 22``, ``Oct 15-21``, ``Sep 28-Oct 4``."""
    last = end - _DAY
    if last.date() <= start.date():
        return f"{start:%b} {start.day}"
    if last.month == start.month:
        return f"{start:%b} {start.day}-{last.day}"
    return f"{start:%b} {start.day}-{last:%b} {last.day}"


def _message(metric: str, feature: str, e: _Episode, spans: str) -> str:
    verb = "fell" if e.change < 0 else "rose"
    label = f"{feature} {_LABEL[metric]}"
    if metric in ("cache_hit_rate", "retry_rate", "escalation_rate"):
        return f"{label} {verb} from {e.baseline:.1f}% to {e.current:.1f}% ({spans})"
    unit = " ms" if metric == "latency_p95_ms" else ""
    return f"{label} {verb} {abs(e.change):.0f}% from {e.baseline:,.0f}{unit} to {e.current:,.0f}{unit} ({spans})"


def _impact(metric: str, w: dict[str, float], b: dict[str, float], window_days: int) -> float | None:
    """Extra token cost per month at the window's volume (module docstring); None when it cannot be priced."""
    if metric in ("escalation_rate", "latency_p95_ms") or not w["priced"] or not b["priced"]:
        return None
    per_request_w, per_request_b = w["cost_usd"] / w["priced"], b["cost_usd"] / b["priced"]
    requests_per_day = w["requests"] / window_days
    if metric == "retry_rate":
        extra = (w["retries"] / w["requests"] - b["retries"] / b["requests"]) * requests_per_day * per_request_w
    else:
        extra = (per_request_w - per_request_b) * requests_per_day
    return round(max(extra * 30, 0.0), 2)


def _finding(metric: str, series: _Series, e: _Episode, tzinfo: dt.tzinfo | None) -> Finding:
    """The finding of one episode."""
    lo, w_days, b_days = series.data.lo, series.w, series.b

    def midnight(day: int) -> dt.datetime:
        return (lo + int(day) * _DAY).replace(tzinfo=tzinfo)

    feature = series.data.features[e.feature]
    last_end, ref_end = int(series.ends[e.last]), int(series.ends[e.first])
    window = (midnight(last_end - w_days), midnight(last_end))
    baseline = (midnight(ref_end - w_days - b_days), midnight(ref_end - w_days))
    w = {k: float(v[e.feature]) for k, v in series.window(e.last).sums.items()}
    b = {k: float(v[e.feature]) for k, v in series.baseline(np.full(series.rows.size, e.first)).sums.items()}
    details: dict[str, Any] = {
        "metric": metric,
        "baseline": round(e.baseline, 4),
        "current": round(e.current, 4),
        "change": round(e.change, 4),
        "change_unit": "pts" if metric.endswith("_rate") else "%",
        "p_value": e.p_value,
        "window": {"from": window[0].isoformat(), "to": window[1].isoformat()},
        "baseline_window": {"from": baseline[0].isoformat(), "to": baseline[1].isoformat()},
        "requests": {"baseline": int(b["requests"]), "window": int(w["requests"])},
        "flagged_evaluations": e.flagged,
    }
    if metric == "escalation_rate":
        details["units"] = {"baseline": int(b["outcome_units"]), "window": int(w["outcome_units"])}
    return Finding(
        rule=f"drift:{metric}",
        kind="drift",
        scope={"feature": feature},
        started_at=(started := midnight(ref_end - w_days)),
        ended_at=None if e.end is None else midnight(int(series.ends[e.end])),
        impact_usd_per_month=_impact(metric, w, b, w_days),
        message=_message(
            metric,
            feature,
            e,
            f"since {_span(started, started + _DAY)}; latest {_span(*window)} vs baseline {_span(*baseline)}",
        ),
        details=details,
    )


def drift_rule(ctx: RuleContext) -> list[Finding]:
    """Return the drift episodes of every feature's metrics, evaluated at each UTC midnight in [since, at].

    >>> import datetime as dt, os, tempfile
    >>> from unitcost.alerts.model import RuleContext
    >>> from unitcost.config import Config
    >>> from unitcost.store import open_store
    >>> store = open_store(os.path.join(tempfile.mkdtemp(), "w.duckdb"))
    >>> drift_rule(RuleContext(store, Config(), dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 31)))
    []
    """
    cfg = ctx.config.alerts.drift
    if not cfg.enabled:
        return []
    since, at = naive_utc(ctx.since), naive_utc(ctx.at)
    lo, hi = _floor_day(since) - cfg.baseline_days * _DAY, _floor_day(at)
    if (hi - lo).days < cfg.window_days + cfg.baseline_days:
        return []
    data = _load(ctx.store, ctx.config, lo, hi, at)
    if not data.features:
        return []
    series = _Series(data, cfg.window_days, cfg.baseline_days)
    tzinfo = dt.UTC if ctx.at.tzinfo is not None else None
    findings: list[Finding] = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for metric in METRICS:
            if metric == "escalation_rate" and not data.has_outcomes:
                continue
            findings.extend(_finding(metric, series, e, tzinfo) for e in _walk(metric, series, cfg))
    return sorted(findings, key=lambda f: (f.started_at, f.rule, f.scope["feature"]))

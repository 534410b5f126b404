"""Requests to plan for: replayed from a trace, drawn from an arrival process, or a closed loop of clients.

:func:`build_requests` turns a plan's ``workload`` into :class:`~unitcost.capacity.types.Requests` (arrays, one
row per request); :func:`workload_stats` summarises them for the analytical screen (rate per window, token
moments and quantiles, arrival variability, classes).

Arrival processes: ``poisson`` (exponential gaps) or ``gamma`` (gamma gaps with coefficient of variation
``burstiness``; 1 is Poisson, larger is burstier). A 24-hour ``profile`` of multipliers makes the rate vary by
hour: a unit-rate process is drawn and mapped through the inverse of the cumulative rate (time rescaling;
Brown et al., "The time-rescaling theorem", Neural Computation 2002), which keeps the gaps' shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from unitcost.capacity.plan import Plan, Tokens, Workload
from unitcost.capacity.types import Requests
from unitcost.errors import ConfigError, IngestError

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MAX_CLOSED_LOOP_ROWS = 5_000_000
STATS_WINDOW_S = 300.0
QUANTILES = (50, 95, 99)


@dataclass(frozen=True)
class Trace:
    """Arrival times (seconds from the first) and token lengths read from a trace."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    source: str


def read_azure_trace(path: Path) -> Trace:
    """The Azure LLM inference trace CSV (TIMESTAMP, ContextTokens, GeneratedTokens), sorted by arrival.

    Rows with fewer than 1 token are errors naming the file and the row (1-based, after the header).
    """
    if not path.exists():
        raise ConfigError(f"trace file {path} does not exist")
    try:
        frame = pd.read_csv(path, usecols=list(AZURE_COLUMNS))
    except ValueError as exc:
        raise IngestError(f"not an Azure LLM inference trace: {exc}", path=str(path)) from exc
    times = pd.to_datetime(frame["TIMESTAMP"], errors="coerce")
    for column, values in (("TIMESTAMP", times), ("ContextTokens", frame["ContextTokens"])):
        bad = np.flatnonzero(pd.isna(values).to_numpy())
        if bad.size:
            raise IngestError("missing or unreadable value", path=str(path), record=int(bad[0]) + 2, field=column)
    for column in ("ContextTokens", "GeneratedTokens"):
        bad = np.flatnonzero(frame[column].to_numpy() < 1)
        if bad.size:
            raise IngestError("token count below 1", path=str(path), record=int(bad[0]) + 2, field=column)
    order = np.argsort(times.to_numpy(), kind="stable")
    stamps = times.to_numpy()[order]
    arrival = (stamps - stamps[0]).astype("timedelta64[ns]").astype(np.int64) / 1e9
    return Trace(
        arrival_s=arrival.astype(np.float64),
        input_tokens=frame["ContextTokens"].to_numpy(np.int64)[order],
        output_tokens=frame["GeneratedTokens"].to_numpy(np.int64)[order],
        source=str(path),
    )


def read_workspace_trace(path: Path, model: str | None, feature: str | None) -> Trace:
    """Model calls from a workspace's ``usage`` table (optionally one model / feature), as a trace."""
    from unitcost.store.duckdb import Store

    if not path.exists():
        raise ConfigError(f"workspace {path} does not exist")
    import duckdb

    try:
        store = Store(str(path), read_only=True)
    except duckdb.ConnectionException:  # this process has it open for writing already: share that configuration
        store = Store(str(path))
    try:
        t = store.table("usage")
        t = t.filter(
            t.input_tokens.notnull()
            & (t.input_tokens >= 1)
            & t.output_tokens.notnull()
            & ~t.response_cache_hit.fill_null(False)  # answered from the application cache: no model call
        )
        if model is not None:
            t = t.filter(t.model == model)
        if feature is not None:
            t = t.filter(t.feature == feature)
        frame = t.select("ts", "input_tokens", "output_tokens").order_by("ts").to_pandas()
    finally:
        store.close()
    if frame.empty:
        raise ConfigError(f"workspace {path}: no model calls match (model={model!r}, feature={feature!r})")
    stamps = pd.to_datetime(frame["ts"]).to_numpy()
    arrival = (stamps - stamps[0]).astype("timedelta64[ns]").astype(np.int64) / 1e9
    return Trace(
        arrival_s=arrival.astype(np.float64),
        input_tokens=frame["input_tokens"].to_numpy(np.int64),
        output_tokens=np.maximum(frame["output_tokens"].to_numpy(np.int64), 1),
        source=str(path),
    )


def draw_tokens(spec: Tokens, n: int, rng: np.random.Generator, trace_values: np.ndarray | None) -> np.ndarray:
    """``n`` token lengths from a distribution spec, clipped to [min, max] and at least 1.

    >>> draw_tokens(Tokens(fixed=7), 3, np.random.default_rng(0), None).tolist()
    [7, 7, 7]
    """
    if spec.fixed is not None:
        values = np.full(n, spec.fixed, dtype=np.float64)
    elif spec.distribution == "trace":
        if trace_values is None:
            raise ConfigError("distribution trace needs a trace workload")
        values = rng.choice(trace_values, size=n).astype(np.float64)
    elif spec.distribution == "lognormal":
        assert spec.mean is not None and spec.sd is not None
        sigma2 = np.log1p((spec.sd / spec.mean) ** 2)
        values = rng.lognormal(np.log(spec.mean) - sigma2 / 2, np.sqrt(sigma2), n)
    elif spec.distribution == "normal":
        assert spec.mean is not None and spec.sd is not None
        values = rng.normal(spec.mean, spec.sd, n)
    else:  # uniform
        assert spec.max is not None
        values = rng.integers(spec.min, spec.max + 1, n).astype(np.float64)
    upper = spec.max if spec.max is not None else np.inf
    return np.clip(np.rint(values), max(spec.min, 1), upper).astype(np.int64)


def arrival_times(
    rate_per_s: float,
    duration_s: float,
    rng: np.random.Generator,
    *,
    burstiness: float = 1.0,
    profile: list[float] | None = None,
) -> np.ndarray:
    """Arrival times in [0, duration_s) of a Poisson (burstiness 1) or gamma renewal process, time-rescaled by
    an hourly ``profile``.

    >>> t = arrival_times(10.0, 1000.0, np.random.default_rng(1))
    >>> 9_500 < t.size < 10_500 and bool(np.all(np.diff(t) >= 0))
    True
    """
    hours = np.asarray(profile if profile is not None else [1.0] * 24, dtype=np.float64)
    # cumulative intensity at each hour boundary over the horizon (the profile repeats every 24 h)
    n_hours = int(np.ceil(duration_s / 3600.0)) + 1
    edges_s = np.arange(n_hours + 1) * 3600.0
    rates = rate_per_s * hours[np.arange(n_hours) % 24]
    cumulative = np.concatenate([[0.0], np.cumsum(rates * 3600.0)])
    total = float(np.interp(duration_s, edges_s, cumulative))
    shape = 1.0 / burstiness**2
    expected = int(total * 1.1) + 100
    gaps = rng.gamma(shape, 1.0 / shape, expected)
    unit_times = np.cumsum(gaps)
    while unit_times[-1] < total:
        more = rng.gamma(shape, 1.0 / shape, expected // 2 + 100)
        unit_times = np.concatenate([unit_times, unit_times[-1] + np.cumsum(more)])
    unit_times = unit_times[unit_times < total]
    if profile is None:
        return unit_times / rate_per_s
    return np.interp(unit_times, cumulative, edges_s)


def _classes(workload: Workload, n: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, ...]]:
    if not workload.classes:
        return np.zeros(n, dtype=np.int64), (0,)
    shares = np.array([c.share for c in workload.classes])
    ids = rng.choice(len(shares), size=n, p=shares / shares.sum()).astype(np.int64)
    return ids, tuple(c.priority for c in workload.classes)


def build_requests(plan: Plan, *, rate_multiplier: float = 1.0) -> Requests:
    """The plan's workload as request arrays; a workload with no request is an error."""
    requests = _build_requests(plan, rate_multiplier=rate_multiplier)
    if requests.count == 0:
        raise ConfigError("the workload holds no request (a rate too low for its duration, or an empty trace)")
    return requests


def _build_requests(plan: Plan, *, rate_multiplier: float = 1.0) -> Requests:
    """The plan's workload as request arrays (seeded, so the same plan gives the same requests).

    ``rate_multiplier`` scales the arrival rate (stress: 2x, 10x): a trace is replayed that much faster, an
    arrival process runs at that multiple, a closed loop gets that many times the clients.
    """
    w = plan.workload
    rng = np.random.default_rng(w.seed)
    trace: Trace | None = None
    if w.trace is not None:
        path = plan.resolve(w.trace.path)
        if w.trace.format == "azure":
            trace = read_azure_trace(path)
        else:
            trace = read_workspace_trace(path, w.trace.model, w.trace.feature)
        arrival = trace.arrival_s / (w.trace.time_scale * rate_multiplier)
        duration = w.duration_s if w.duration_s is not None else float(arrival[-1]) if arrival.size else 0.0
        keep = arrival < duration if w.duration_s is not None else np.ones(arrival.size, dtype=bool)
        arrival = arrival[keep]
        n = int(arrival.size)
        inputs = (
            trace.input_tokens[keep]
            if w.input_tokens is None
            else draw_tokens(w.input_tokens, n, rng, trace.input_tokens)
        )
        outputs = (
            trace.output_tokens[keep]
            if w.output_tokens is None
            else draw_tokens(w.output_tokens, n, rng, trace.output_tokens)
        )
        class_id, priority = _classes(w, n, rng)
        return Requests(arrival, inputs, outputs, class_id, priority, 0, duration)
    assert w.input_tokens is not None and w.output_tokens is not None and w.duration_s is not None
    if w.arrivals is not None:
        a = w.arrivals
        arrival = arrival_times(
            a.rate_per_s * rate_multiplier,
            w.duration_s,
            rng,
            burstiness=a.burstiness if a.process == "gamma" else 1.0,
            profile=a.profile,
        )
        n = int(arrival.size)
        concurrency = 0
    else:
        assert w.concurrency is not None
        concurrency = max(1, round(w.concurrency * rate_multiplier))
        # enough rows for every client to send a request every 50 ms for the whole duration, capped
        n = int(min(MAX_CLOSED_LOOP_ROWS, concurrency * (w.duration_s / 0.05 + 1)))
        arrival = np.zeros(n)
    inputs = draw_tokens(w.input_tokens, n, rng, None)
    outputs = draw_tokens(w.output_tokens, n, rng, None)
    class_id, priority = _classes(w, n, rng)
    return Requests(arrival, inputs, outputs, class_id, priority, concurrency, w.duration_s)


@dataclass(frozen=True)
class WorkloadStats:
    """What the analytical screen needs to know of a workload."""

    window_s: float
    rates_per_s: np.ndarray  # arrival rate per window (open loop)
    window_widths_s: np.ndarray  # each window's length (the last one may be partial)
    input_mean: float
    input_sq_mean: float
    input_sample: np.ndarray  # input lengths at 64 evenly spaced quantiles (for E[ceil(L / budget)])
    input_quantiles: dict[int, float]  # percentile (50, 95, 99) -> tokens
    output_mean: float
    output_cv2: float
    output_quantiles: dict[int, float]
    arrival_cv2: float
    class_shares: np.ndarray
    class_priority: np.ndarray
    concurrency: int
    duration_s: float

    @property
    def mean_rate_per_s(self) -> float:
        """Average arrival rate over the run (windows weighted by their length)."""
        total = float(self.window_widths_s.sum())
        return float((self.rates_per_s * self.window_widths_s).sum()) / total if total > 0 else 0.0

    @property
    def window_requests(self) -> np.ndarray:
        """Requests in each window (the weights of the latency mixture)."""
        return np.asarray(self.rates_per_s * self.window_widths_s)


def workload_stats(requests: Requests, window_s: float = STATS_WINDOW_S) -> WorkloadStats:
    """Rates per window and token moments of the requests.

    ``arrival_cv2`` is the squared coefficient of variation of the gaps within windows (each gap divided by
    its window's mean gap, so a daily profile does not count as burstiness).
    """
    inputs = requests.input_tokens.astype(np.float64)
    outputs = requests.output_tokens.astype(np.float64)
    duration = requests.duration_s or (float(requests.arrival_s[-1]) if requests.count else 0.0)
    duration = max(duration, 1.0)  # a trace of one instant still spans a second
    n_windows = max(1, int(np.ceil(duration / window_s)))
    widths = np.full(n_windows, window_s)
    widths[-1] = max(duration - window_s * (n_windows - 1), 1e-9)
    if requests.concurrency > 0:
        rates = np.zeros(n_windows)
        arrival_cv2 = 1.0
    else:
        window_of = np.minimum((requests.arrival_s // window_s).astype(np.int64), n_windows - 1)
        counts = np.bincount(window_of, minlength=n_windows).astype(np.float64)
        rates = counts / widths
        gaps = np.diff(requests.arrival_s)
        mean_gap = np.where(counts > 0, widths / np.maximum(counts, 1), np.nan)[window_of[1:]]
        normalised = gaps / mean_gap
        arrival_cv2 = float(np.nanvar(normalised) / np.nanmean(normalised) ** 2) if gaps.size > 10 else 1.0
    k = len(requests.class_priority)
    shares = np.bincount(requests.class_id, minlength=k) / max(requests.count, 1)
    return WorkloadStats(
        window_s=window_s,
        rates_per_s=rates,
        window_widths_s=widths,
        input_mean=float(inputs.mean()),
        input_sq_mean=float((inputs**2).mean()),
        input_sample=np.percentile(inputs, np.linspace(0.5, 99.5, 64)),
        input_quantiles={q: float(np.percentile(inputs, q)) for q in QUANTILES},
        output_mean=float(outputs.mean()),
        output_cv2=float(outputs.var() / outputs.mean() ** 2),
        output_quantiles={q: float(np.percentile(outputs, q)) for q in QUANTILES},
        arrival_cv2=arrival_cv2,
        class_shares=shares,
        class_priority=np.asarray(requests.class_priority),
        concurrency=requests.concurrency,
        duration_s=duration,
    )

"""The fast analytical screen: latency, throughput and cost of a configuration without simulating it.

Per window of the workload (5 minutes by default) with arrival rate ``lambda``:

1. *Step time at load* (:func:`replica_load`). Prompts arrive in lumps: a prompt of ``L`` tokens takes
   ``ceil(L / budget)`` steps carrying a prefill chunk, the other steps only decode. With ``k`` prefill-carrying
   steps per second of ``t_p`` and decode steps of ``t_d``, the mean step is ``s = t_d / (1 - k (t_p - t_d))``.
   A request holds its slot for ``m`` steps (prefill steps + output - 1); Little's law ``n = lambda_r m s``
   closes a fixed point, solved by iteration. No fixed point below the slot limit means the replica cannot
   keep up (unstable).
2. *Slots.* A replica has ``c_r = min(max_batch, floor(kv_capacity / (E[input] + E[output])))`` slots; the
   fleet ``c = N * c_r`` servers with service time ``S = m * s``.
3. *Waiting.* Allen-Cunneen on ``c`` servers (:mod:`unitcost.capacity.queueing`), per class with
   non-preemptive priorities; waits are exponential tails, and the quantiles over the run are quantiles of the
   mixture of windows weighted by their requests (TTFT = wait for a slot + wait behind other prompts' prefill,
   M/G/1 + prefill steps at the input quantile; end to end = TTFT + (output quantile - 1) steps at the TPOT
   quantile).
4. *Replicas.* ``fixed``: ``replicas.min``. ``utilization``: per window the fewest replicas whose running
   sequences stay under ``target_utilization`` of the slots; ``queue``: the fewest whose mean queue per
   replica stays under ``target_queue_per_replica``. Scaling lags: a window gets the largest target of the
   windows from ``scale_down_after_s`` ago to ``interval_s + warmup_s`` ago (``warm_start_s`` with a warm
   pool), rounded to whole windows, and every scale-up pays ``warmup_s`` of an extra replica.
5. *Cost*: :mod:`unitcost.capacity.costing` over the provisioned GPUs per window.

Closed loop (``concurrency`` clients): no queue while the clients fit in the slots (each replica runs
``C / N`` sequences); beyond, the slots are full and the rest wait (throughput = slots / S, e2e = C / throughput).

Spot interruptions and availability drops are not in the screen; the simulator verifies the finalists with them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from unitcost.capacity.costing import GpuPrices, fleet_cost_per_hour, unit_costs
from unitcost.capacity.plan import Configuration, Slo
from unitcost.capacity.queueing import erlang_c, mixture_quantile_s, priority_mean_waits_s
from unitcost.capacity.types import EngineSpec
from unitcost.capacity.workload import QUANTILES, WorkloadStats

FIXED_POINT_ITERATIONS = 60
Z = {50: 0.0, 95: 1.645, 99: 2.326}


@dataclass(frozen=True)
class Evaluation:
    """Latency, throughput and cost of one configuration (from the screen or the simulator)."""

    method: str  # analytical | simulated
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]
    slo_met: bool
    feasible: bool = True
    reason: str = ""


def slots_per_replica(engine: EngineSpec, stats: WorkloadStats) -> int:
    """Batch slots of one replica: max_batch, or fewer when the KV cache holds fewer mean-sized sequences."""
    per_sequence = stats.input_mean + stats.output_mean
    return int(min(engine.max_batch, engine.kv_capacity_tokens // max(per_sequence, 1.0)))


@dataclass(frozen=True)
class ReplicaLoad:
    """A replica in steady state at some arrival rate (arrays, one entry per rate)."""

    running: np.ndarray  # n: sequences running (inf where it cannot keep up)
    step_s: np.ndarray  # mean step time (a decoding sequence's mean time per output token)
    decode_step_s: np.ndarray  # a step without prefill
    prefill_step_s: np.ndarray  # a step carrying a prefill chunk
    prefill_steps_per_s: np.ndarray  # k
    steps_per_request: np.ndarray  # m
    prefill_steps_per_request: np.ndarray  # E[ceil(input / chunk budget)]


def _step(engine: EngineSpec, tokens: np.ndarray, attention: np.ndarray, kv: np.ndarray) -> np.ndarray:
    c = engine.step
    compute = c.compute_s_per_token * tokens + c.attention_s_per_context_token * attention
    memory = c.weight_read_s + c.kv_read_s_per_token * kv
    return c.overhead_s + c.comm_latency_s + c.comm_s_per_token * tokens + np.maximum(compute, memory)


def _parts(engine: EngineSpec, stats: WorkloadStats, n: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, ...]:
    """(mean step, decode step, prefill step, prefill steps/s, prefill steps per request) at occupancy n."""
    with np.errstate(invalid="ignore", over="ignore"):
        return _parts_unguarded(engine, stats, n, lam)


def _parts_unguarded(
    engine: EngineSpec, stats: WorkloadStats, n: np.ndarray, lam: np.ndarray
) -> tuple[np.ndarray, ...]:
    budget = np.maximum(engine.max_batched_tokens - n, 1.0)
    sample = stats.input_sample
    ceil_mean = np.ceil(sample[None, :] / budget[:, None]).mean(axis=1)
    chunk = stats.input_mean / ceil_mean
    context = n * (stats.input_mean + stats.output_mean / 2.0)
    chunk_pairs = stats.input_sq_mean / 2.0 / ceil_mean
    decode = _step(engine, n, context, context)
    prefill = _step(engine, n + chunk, context + chunk_pairs, context + stats.input_mean / 2.0)
    k = lam * ceil_mean
    with np.errstate(divide="ignore", invalid="ignore"):
        mixed = decode / (1.0 - k * (prefill - decode))
    # when prefill work arrives faster than one lump a step, every step carries prefill: s = step(n + P s)
    saturated = ~((mixed > 0) & (k * mixed < 1.0))
    if saturated.any():
        tokens_per_s = lam * stats.input_mean
        s_all = prefill.copy()
        for _ in range(30):
            batch = np.minimum(tokens_per_s * s_all, budget)
            s_all = _step(engine, n + batch, context + batch * stats.input_sq_mean / stats.input_mean / 2.0, context)
        mixed = np.where(saturated, np.where(tokens_per_s * s_all <= budget, s_all, np.inf), mixed)
        prefill = np.where(saturated, mixed, prefill)
        k = np.where(saturated, 1.0 / mixed, k)
    return mixed, decode, prefill, k, ceil_mean


def replica_load(engine: EngineSpec, stats: WorkloadStats, rate_per_replica: np.ndarray) -> ReplicaLoad:
    """Each replica's steady state at each arrival rate: running sequences, step times, prefill share.

    Prefill arrives in lumps (one prompt of ``L`` tokens takes ``ceil(L / budget)`` steps that carry a chunk);
    the other steps only decode. With ``k`` prefill-carrying steps per second of duration ``t_p`` and decode
    steps of ``t_d``, the mean step is ``s = t_d / (1 - k (t_p - t_d))`` (a second holds ``k`` prefill steps and
    ``(1 - k t_p) / t_d`` decode steps). A request holds its slot for ``m`` steps (prefill steps + output - 1);
    Little's law ``n = lambda m s`` closes the fixed point. ``running`` is inf where no fixed point lies
    below the slot count (the replica cannot keep up).
    """
    lam = np.asarray(rate_per_replica, dtype=np.float64)
    slots = slots_per_replica(engine, stats)
    n = np.zeros_like(lam)
    parts = _parts(engine, stats, n, lam)
    for _ in range(FIXED_POINT_ITERATIONS):
        parts = _parts(engine, stats, n, lam)
        m = parts[4] + stats.output_mean - 1.0
        new_n = np.where(np.isfinite(parts[0]), lam * m * parts[0], np.inf)
        if np.allclose(new_n, n, rtol=1e-9, atol=1e-9, equal_nan=True):
            n = new_n
            break
        n = np.minimum(new_n, slots * 4.0)  # keep diverging points bounded; they are marked below
    mean, decode, prefill, k, prefill_steps = parts
    unstable = ~np.isfinite(mean) | (n >= slots)
    return ReplicaLoad(
        running=np.where(unstable, np.inf, n),
        step_s=mean,
        decode_step_s=decode,
        prefill_step_s=prefill,
        prefill_steps_per_s=k,
        steps_per_request=prefill_steps + stats.output_mean - 1.0,
        prefill_steps_per_request=prefill_steps,
    )


ScreenCache = dict[Any, Any]  # engine -> load grid; ("latency", engine, replicas) -> latency figures


def load_grid(engine: EngineSpec, stats: WorkloadStats, replicas: int, cache: ScreenCache | None) -> ReplicaLoad:
    """Replica states for every window (rows) and replica count 1..``replicas`` (columns), cached per engine.

    The latency of a configuration depends only on its engine and replica counts, so the thousands of
    configurations that differ in purchase mix or scaling knobs share one grid.
    """
    if cache is not None and engine in cache and cache[engine].running.shape[1] >= replicas:
        cached: ReplicaLoad = cache[engine]
        return cached
    counts = np.arange(1, replicas + 1)
    rates = stats.rates_per_s[:, None] / counts[None, :]
    state = replica_load(engine, stats, rates.ravel())
    shape = rates.shape
    grid = ReplicaLoad(*(np.asarray(getattr(state, f.name)).reshape(shape) for f in dataclasses.fields(ReplicaLoad)))
    if cache is not None:
        cache[engine] = grid
    return grid


def _pick(grid: ReplicaLoad, replicas: np.ndarray) -> ReplicaLoad:
    rows = np.arange(replicas.size)
    return ReplicaLoad(*(getattr(grid, f.name)[rows, replicas - 1] for f in dataclasses.fields(ReplicaLoad)))


def _replicas_needed(config: Configuration, grid: ReplicaLoad, stats: WorkloadStats, slots: int) -> np.ndarray:
    """Target replicas per window under the configuration's policy (before the scaling lag)."""
    rates = stats.rates_per_s
    if config.policy == "fixed":
        return np.full(rates.shape, config.replicas_min, dtype=np.int64)
    counts = np.arange(config.replicas_min, config.replicas_max + 1)
    n = grid.running[:, counts - 1]
    if config.policy == "utilization":
        ok = n <= config.target_utilization * slots
    else:
        service = (grid.steps_per_request * grid.step_s)[:, counts - 1]
        servers = counts[None, :] * slots
        load = rates[:, None] * service
        with np.errstate(divide="ignore", invalid="ignore"):
            queue = erlang_c(servers, load) * load / (servers - load)
        ok = np.isfinite(n) & (queue / counts[None, :] <= config.target_queue_per_replica)
    first_ok = np.where(ok.any(axis=1), ok.argmax(axis=1), len(counts) - 1)
    return counts[first_ok]


def _lagged(
    target: np.ndarray, config: Configuration, stats: WorkloadStats, interval_s: float, warm_start_s: float
) -> tuple[np.ndarray, int]:
    warmup = warm_start_s if config.warm_pool > 0 else config.warmup_s
    lag = round((interval_s + warmup) / stats.window_s) if config.policy != "fixed" else 0
    hold = math.ceil(config.scale_down_after_s / stats.window_s) if config.policy != "fixed" else 0
    if lag == 0 and hold == 0:
        return target, 0
    padded = np.concatenate([np.full(lag + hold, target[0]), target])  # the fleet has been running before
    available = np.array(
        [padded[i : i + hold + 1].max() for i in range(len(target))], dtype=np.int64
    )  # window i sees targets from i - lag - hold .. i - lag
    scale_ups = int(np.maximum(np.diff(np.concatenate([[available[0]], available])), 0).sum())
    return np.maximum(available, config.replicas_min), scale_ups


def screen(
    config: Configuration,
    engine: EngineSpec,
    stats: WorkloadStats,
    prices: GpuPrices,
    slos: dict[str, Slo],
    *,
    interval_s: float = 15.0,
    warm_start_s: float = 30.0,
    cache: ScreenCache | None = None,
) -> Evaluation:
    """Evaluate one configuration analytically (see the module docstring for the method).

    Pass the same ``cache`` (a dict) to every call over one workload to share work between configurations.
    """
    slots = slots_per_replica(engine, stats)
    if slots < 1:
        reason = "the model does not fit" if engine.kv_capacity_tokens <= 0 else "KV cache too small for one request"
        return Evaluation("analytical", {}, {}, False, feasible=False, reason=reason)
    if stats.concurrency > 0:
        return _screen_closed_loop(config, engine, stats, prices, slos, slots)
    grid = load_grid(engine, stats, max(config.replicas_min, config.replicas_max), cache)
    target = _replicas_needed(config, grid, stats, slots)
    replicas, scale_ups = _lagged(target, config, stats, interval_s, warm_start_s)
    key = ("latency", engine, replicas.tobytes())
    if cache is not None and key in cache:
        per_class, slo_met, latency_metrics, n = cache[key]
    else:
        per_class, slo_met, latency_metrics, n = _latency(engine, stats, slos, grid, replicas, slots)
        if cache is not None:
            cache[key] = (per_class, slo_met, latency_metrics, n)
    stable = np.isfinite(n)
    metrics = {key: max(v[key] for v in per_class.values()) for key in next(iter(per_class.values()))}
    metrics.update(latency_metrics)
    provisioned = replicas + config.warm_pool + scale_ups * config.warmup_s / max(stats.duration_s, 1.0)
    busy = np.where(stable, 1.0 - np.exp(-np.where(stable, n, 0.0)), 1.0) * replicas
    requests_per_s = stats.mean_rate_per_s
    output_per_s = requests_per_s * stats.output_mean
    cost_per_hour = fleet_cost_per_hour(
        provisioned * engine.gpus, config.reserved_gpus, config.spot_share, prices, weights=stats.window_widths_s
    )
    widths = stats.window_widths_s  # time weights: the last window may be partial
    metrics.update(
        requests_per_s=requests_per_s,
        output_tokens_per_s=output_per_s,
        gpu_utilization=float((busy * widths).sum() / (provisioned * widths).sum()),
        replicas_avg=float(np.average(replicas, weights=widths)),
        replicas_max_used=float(replicas.max()),
        idle_gpu_hours=float(((provisioned - busy) * widths).sum() * engine.gpus / 3600.0),
        **unit_costs(cost_per_hour, requests_per_s, output_per_s),
    )
    return Evaluation("analytical", metrics, per_class, slo_met, feasible=True)


def _latency(
    engine: EngineSpec, stats: WorkloadStats, slos: dict[str, Slo], grid: ReplicaLoad, replicas: np.ndarray, slots: int
) -> tuple[dict[str, dict[str, float]], bool, dict[str, float], np.ndarray]:
    """Latency quantiles per class, SLO verdict, mean wait and P(wait), and the occupancy per window."""
    rates = stats.rates_per_s
    state = _pick(grid, replicas)
    n, s = state.running, state.step_s
    service = state.steps_per_request * s
    servers = replicas * slots
    prob_wait = erlang_c(servers, rates * service)
    cv_factor = (stats.arrival_cv2 + stats.output_cv2) / 2.0
    weights = stats.window_requests
    per_class: dict[str, dict[str, float]] = {}
    stable = np.isfinite(n)
    waits = np.full((len(rates), len(stats.class_shares)), np.inf)
    for i in np.flatnonzero(stable):
        waits[i] = priority_mean_waits_s(
            float(servers[i]), rates[i] * stats.class_shares, float(service[i]), stats.class_priority, cv_factor
        )
    slo_met = True  # the quantiles decide: overloaded windows count as slower than any SLO
    for k, name in enumerate(slos):
        values: dict[str, float] = {}
        for q in QUANTILES:
            steps_first = np.maximum(
                1.0, np.ceil(stats.input_quantiles[q] / np.maximum(engine.max_batched_tokens - n, 1))
            )
            s_q = _tpot_quantile(state, stats, q)
            behind = _prefill_wait_quantile(state, stats, rates / replicas, q)
            ttft_shift = np.where(stable, steps_first * state.prefill_step_s + s / 2.0 + behind, np.inf)
            e2e_shift = np.where(stable, ttft_shift + (stats.output_quantiles[q] - 1.0) * s_q, np.inf)
            values[f"ttft_p{q}_s"] = mixture_quantile_s(weights, ttft_shift, prob_wait, waits[:, k], q / 100)
            values[f"e2e_p{q}_s"] = mixture_quantile_s(weights, e2e_shift, prob_wait, waits[:, k], q / 100)
            values[f"tpot_p{q}_ms"] = _weighted_quantile(np.where(stable, s_q, np.inf) * 1e3, weights, q / 100)
        per_class[name] = values
        slo_met = slo_met and _meets(values, slos[name])
    mean_wait = (waits * stats.class_shares[None, :]).sum(axis=1)
    extra = {
        "wait_mean_s": float(np.sum(weights * mean_wait) / np.sum(weights)) if stable.all() else math.inf,
        "wait_probability": float(np.sum(weights * prob_wait) / np.sum(weights)),
    }
    return per_class, slo_met, extra, n


def _screen_closed_loop(
    config: Configuration,
    engine: EngineSpec,
    stats: WorkloadStats,
    prices: GpuPrices,
    slos: dict[str, Slo],
    slots: int,
) -> Evaluation:
    clients = stats.concurrency
    if config.policy == "fixed":
        replicas = config.replicas_min
    else:
        target = config.target_utilization if config.policy == "utilization" else 1.0
        replicas = int(
            np.clip(math.ceil(clients / (slots * max(target, 1e-9))), config.replicas_min, config.replicas_max)
        )
    running = min(clients / replicas, float(slots))
    n = np.array([running])
    # a closed loop: each replica completes (and so admits) n / (m s) requests per second
    rate = np.array([running / max(stats.output_mean, 1.0) / engine.step.weight_read_s])
    for _ in range(FIXED_POINT_ITERATIONS):
        mean, _, prefill, _, prefill_steps = _parts(engine, stats, n, rate)
        rate = n / ((prefill_steps + stats.output_mean - 1.0) * mean)
    s = mean
    service = float((prefill_steps[0] + stats.output_mean - 1.0) * mean[0])
    throughput = replicas * running / service
    e2e = clients / throughput
    wait = max(e2e - service, 0.0)
    values: dict[str, float] = {}
    for q in QUANTILES:
        first = max(1.0, math.ceil(stats.input_quantiles[q] / max(engine.max_batched_tokens - running, 1.0)))
        values[f"ttft_p{q}_s"] = wait + first * float(prefill[0])
        values[f"e2e_p{q}_s"] = wait + first * float(prefill[0]) + (stats.output_quantiles[q] - 1.0) * float(s[0])
        values[f"tpot_p{q}_ms"] = float(s[0]) * 1e3
    per_class = {name: dict(values) for name in slos}
    slo_met = all(_meets(values, slo) for slo in slos.values())
    provisioned = replicas + config.warm_pool
    cost_per_hour = fleet_cost_per_hour(
        np.array([provisioned * engine.gpus]), config.reserved_gpus, config.spot_share, prices
    )
    metrics = dict(values)
    metrics.update(
        wait_mean_s=wait,
        wait_probability=1.0 if wait > 0 else 0.0,
        requests_per_s=throughput,
        output_tokens_per_s=throughput * stats.output_mean,
        gpu_utilization=replicas / provisioned,
        replicas_avg=float(replicas),
        replicas_max_used=float(replicas),
        idle_gpu_hours=config.warm_pool * engine.gpus * stats.duration_s / 3600.0,
        **unit_costs(cost_per_hour, throughput, throughput * stats.output_mean),
    )
    return Evaluation("analytical", metrics, per_class, slo_met)


def _prefill_wait_quantile(state: ReplicaLoad, stats: WorkloadStats, rate: np.ndarray, q: int) -> np.ndarray:
    """Time a new prompt waits behind the prompts ahead of it in the prefill budget, at quantile ``q``.

    The steps that carry prefill work as one server fed by prompts: a prompt needs ``S = E[ceil(L / budget)]``
    prefill steps of ``t_p`` each (its second moment from the prompt lengths' ``E[L^2] / E[L]^2``), the server is
    busy ``rho = lambda S`` of the time, and a prompt waits as in M/G/1 (Pollaczek-Khinchine):
    ``W = lambda E[S^2] / (2 (1 - rho))``, of which the exponential tail's quantile is taken (as for the slots).
    """
    service = state.prefill_steps_per_request * state.prefill_step_s
    second = service**2 * stats.input_sq_mean / max(stats.input_mean, 1.0) ** 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rho = rate * service
        mean = rate * second / (2.0 * (1.0 - rho))
        tail = (mean / rho) * np.log(rho / (1.0 - q / 100))
    value = np.where(rho <= 1.0 - q / 100, 0.0, tail)
    return np.where(rho >= 1.0, np.inf, np.where(np.isfinite(value), np.maximum(value, 0.0), np.inf))


def _tpot_quantile(state: ReplicaLoad, stats: WorkloadStats, q: int) -> np.ndarray:
    """A request's time per output token at quantile ``q``: its decode steps, slowed by the prompts prefilled
    alongside them.

    A step carrying prefill costs ``t_p - t_d`` more than a decode-only step, about ``a = (t_p - t_d) / chunk``
    per prompt token. Over a request's life of ``m`` steps (``m`` = median output - 1: short answers vary most)
    the prompt tokens prefilled with it are compound Poisson: mean ``lambda T E[L]``, variance ``lambda T
    E[L^2]`` with ``T = m s`` and ``lambda`` the replica's arrival rate; at quantile q the extra time is
    ``a (mean + z sqrt(variance))`` (normal approximation), spread over its ``m`` steps.
    """
    steps = max(stats.output_quantiles[50] - 1.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        chunk = stats.input_mean / np.maximum(state.prefill_steps_per_request, 1.0)
        per_token = (state.prefill_step_s - state.decode_step_s) / chunk
        rate = state.prefill_steps_per_s / np.maximum(state.prefill_steps_per_request, 1e-12)  # prompts/s
        life = steps * state.step_s
        mean = rate * life * stats.input_mean
        variance = rate * life * stats.input_sq_mean
        extra = per_token * np.maximum(mean + Z[q] * np.sqrt(variance), 0.0)
        tpot = state.decode_step_s + np.minimum(extra / steps, state.prefill_step_s - state.decode_step_s)
    return np.where(np.isfinite(state.running) & np.isfinite(tpot), tpot, np.inf)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    if cumulative[-1] <= 0:
        return float(values.max())
    index = int(np.searchsorted(cumulative, q * cumulative[-1]))
    return float(values[order][min(index, len(values) - 1)])


def _meets(values: dict[str, float], slo: Slo) -> bool:
    return slo.met_by(values)

"""Stress mode (``unitcost plan FILE --stress``): what fails first when traffic ramps or GPUs run short.

Cases, each simulated on the chosen configuration (the best one, or the first when none meets the SLOs):

* ``ramp x2``, ``ramp x10``: the arrival rate grows linearly from 1x at the start to 2x / 10x at the end of the
  run. Open-loop workloads are scaled by superposing time-shifted copies of themselves (cyclic shifts of the
  arrival times, one copy per unit of multiplier, the last one thinned) and then thinning to the ramp, which
  keeps the burstiness and the token lengths of the original; a closed loop gets 2x / 10x the clients.
* ``lose 25% GPUs``, ``lose 50% GPUs``: at a quarter of the run, that share of the GPUs the fleet may use at its
  largest (``replicas.max`` x tensor parallelism) becomes unavailable until the end: the scaler cannot go above
  the whole replicas left, and replicas above them are lost. A fleet of a single replica loses it entirely (one
  lost GPU breaks a tensor-parallel group).

For each case, 95th percentiles are tracked over consecutive windows of arrivals (:data:`WINDOW_S`, longer for
slow workloads so that a window holds about :data:`MIN_WINDOW_REQUESTS` requests on average); the first window
whose p95 breaks an SLO names the SLO that fails first, when, and at what load multiplier. A case can hold its
SLOs over the whole run (``slo_met``) and still name a window that broke one: a transient breach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from unitcost.capacity.plan import Configuration, Slo
from unitcost.capacity.search import Planner, PlanResult, _score, evaluate_simulation, request_latencies
from unitcost.capacity.types import Requests

WINDOW_S = 60.0
MIN_WINDOW_REQUESTS = 200  # a window's p95 needs enough requests: slow workloads get longer windows
RAMPS = (2.0, 10.0)
LOSSES = (0.25, 0.5)
#: the latency array each SLO metric is read from
LATENCY_OF = {"ttft_p95_s": "ttft_s", "tpot_p95_ms": "tpot_ms", "e2e_p95_s": "e2e_s"}


@dataclass(frozen=True)
class StressCase:
    """One stress case's outcome."""

    name: str
    slo_met: bool
    first_breach: str | None  # the SLO field that broke first, e.g. "ttft_p95_s"
    breach_at_s: float | None  # when (arrival time of the first failing window)
    breach_load_multiplier: float | None  # the load then, as a multiple of the plan's
    metrics: dict[str, float]


def ramp_requests(requests: Requests, peak: float, seed: int) -> tuple[Requests, np.ndarray]:
    """The requests with the rate ramping linearly from 1x to ``peak`` x, and the multiplier at each arrival.

    >>> r = Requests(np.arange(1000.0), np.ones(1000, np.int64), np.ones(1000, np.int64), np.zeros(1000, np.int64),
    ...              duration_s=1000.0)
    >>> ramped, load = ramp_requests(r, 2.0, 0)
    >>> 1400 < ramped.count < 1600 and float(load[-1]) > 1.9
    True
    """
    rng = np.random.default_rng(seed)
    duration = requests.duration_s or float(requests.arrival_s[-1]) + 1.0
    copies = math.ceil(peak)
    parts = []
    for k in range(copies):
        shift = 0.0 if k == 0 else rng.uniform(0, duration)
        parts.append(((requests.arrival_s + shift) % duration, np.arange(requests.count)))
    arrival = np.concatenate([p[0] for p in parts])
    rows = np.concatenate([p[1] for p in parts])
    load = 1.0 + (peak - 1.0) * arrival / duration
    keep = rng.uniform(0, 1, arrival.size) < load / copies
    arrival, rows, load = arrival[keep], rows[keep], load[keep]
    order = np.argsort(arrival, kind="stable")
    arrival, rows, load = arrival[order], rows[order], load[order]
    ramped = replace(
        requests,
        arrival_s=arrival,
        input_tokens=requests.input_tokens[rows],
        output_tokens=requests.output_tokens[rows],
        class_id=requests.class_id[rows],
    )
    return ramped, load


def first_breach_over_time(
    arrival_s: np.ndarray, latencies: dict[str, np.ndarray], slo: Slo, window_s: float = WINDOW_S
) -> tuple[str | None, float | None]:
    """The first SLO field whose p95 over a window of arrivals breaks its limit, and the window's start.

    >>> t = np.arange(0.0, 2000.0, 0.1)  # 10 arrivals a second: 60-second windows
    >>> ttft = np.where(t < 1200, 0.1, 5.0)
    >>> first_breach_over_time(t, {"ttft_s": ttft, "tpot_ms": 0 * t, "e2e_s": ttft}, Slo(ttft_p95_s=1.0))
    ('ttft_p95_s', 1200.0)
    """
    if arrival_s.size == 0:
        return None, None
    span = float(arrival_s.max() - arrival_s.min()) or 1.0
    window_s = max(window_s, MIN_WINDOW_REQUESTS * span / arrival_s.size)
    starts = np.arange(0.0, float(arrival_s.max()) + window_s, window_s)
    window_of = np.searchsorted(starts, arrival_s, side="right") - 1
    earliest: tuple[str | None, float | None] = (None, None)
    for field, limit in slo.limits():
        values = latencies[LATENCY_OF[field]]
        for w in range(len(starts)):
            sample = values[window_of == w]
            sample = sample[~np.isnan(sample)]
            if sample.size and float(np.percentile(sample, 95, method="higher")) > limit:
                if earliest[1] is None or starts[w] < earliest[1]:
                    earliest = (field, float(starts[w]))
                break
    return earliest


def run_stress(planner: Planner, result: PlanResult, index: int | None = None) -> list[StressCase]:
    """Simulate the stress cases on configuration ``index`` (default: the best, else the first screened)."""
    assert result.requests is not None and result.stats is not None
    if index is None:
        index = (
            result.best
            if result.best is not None
            else min(range(len(result.configurations)), key=lambda i: _score(result.evaluation(i)))
        )
    config = result.configurations[index]
    if planner.engine(config) is None:  # nothing fits: there is no fleet to stress
        return []
    base = result.requests
    initial = round(result.evaluation(index).metrics.get("replicas_avg", config.replicas_min))
    cases: list[StressCase] = []
    for peak in RAMPS:
        if base.concurrency > 0:
            requests = replace(base, concurrency=round(base.concurrency * peak))
            load = np.full(base.count, peak)
        else:
            requests, load = ramp_requests(base, peak, planner.plan.workload.seed + int(peak))
        cases.append(_case(planner, config, f"ramp x{peak:g}", requests, load, initial, None))
    duration = base.duration_s or float(base.arrival_s[-1])
    gpus = max(config.tensor_parallel, 1)
    for share in LOSSES:
        disruptions = planner.disruptions(config)
        # of the GPUs the fleet may use at its largest, whole replicas only
        cap = math.floor(config.replicas_max * gpus * (1.0 - share)) // gpus
        disruptions = replace(
            disruptions, availability=tuple(sorted((*disruptions.availability, (duration / 4.0, cap))))
        )
        load = np.ones(base.count)
        cases.append(_case(planner, config, f"lose {share:.0%} GPUs", base, load, initial, disruptions))
    return cases


def _case(
    planner: Planner,
    config: Configuration,
    name: str,
    requests: Requests,
    load: np.ndarray,
    initial: int,
    disruptions: object,
) -> StressCase:
    from unitcost.capacity.simulator import simulate

    engine = planner.engine(config)
    assert engine is not None
    sim = simulate(
        requests,
        engine,
        planner.scaling(config, initial),
        disruptions if disruptions is not None else planner.disruptions(config),  # type: ignore[arg-type]
    )
    evaluation = evaluate_simulation(sim, requests, engine, config, planner.prices(config.gpu), planner.slos)
    latencies = request_latencies(sim, requests)
    ttft, e2e, tpot = latencies.ttft_s, latencies.e2e_s, latencies.tpot_ms
    breach: tuple[str | None, float | None] = (None, None)
    for k, slo in enumerate(planner.slos.values()):
        rows = requests.class_id == k
        field, at = first_breach_over_time(
            sim.arrival_s[rows], {"ttft_s": ttft[rows], "tpot_ms": tpot[rows], "e2e_s": e2e[rows]}, slo
        )
        if at is not None and (breach[1] is None or at < breach[1]):
            breach = (field, at)
    multiplier = None
    if breach[1] is not None:
        at_or_after = int(np.searchsorted(np.sort(sim.arrival_s), breach[1]))
        multiplier = float(np.sort(load)[min(at_or_after, load.size - 1)]) if load.size else None
    return StressCase(name, evaluation.slo_met, breach[0], breach[1], multiplier, evaluation.metrics)

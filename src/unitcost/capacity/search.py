"""The search: the cheapest configuration that meets every SLO, and the Pareto front of cost vs latency.

1. Expand the plan into configurations (:func:`unitcost.capacity.plan.configurations`).
2. Screen each analytically (:mod:`unitcost.capacity.screen`), milliseconds each.
3. Simulate the cheapest ``search.finalists`` that the screen says meet the SLOs (and, when none does, the
   ones closest to meeting them), in order of cost, plus up to as many cheaper ones that the screen says miss an
   SLO by at most 25% (:data:`NEAR_MISS`: the screen is approximate); the best is the cheapest whose
   *simulation* meets every SLO. When every finalist fails in simulation, the next ones are simulated, up to
   three rounds.
4. The Pareto front: configurations no other beats on both cost per hour and p95 end-to-end latency.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unitcost.capacity.catalog import gpu_price_per_hour, load_gpu, load_model
from unitcost.capacity.costing import GpuPrices, fleet_cost_per_hour, unit_costs
from unitcost.capacity.perf import Profile, kv_capacity_tokens, load_profile, step_coefficients
from unitcost.capacity.plan import Configuration, Plan, Slo, configurations, gpu_specs_inline
from unitcost.capacity.screen import Evaluation, ScreenCache, _meets, screen
from unitcost.capacity.simulator import simulate
from unitcost.capacity.types import Disruptions, EngineSpec, GpuSpec, ModelSpec, Requests, ScalingSpec
from unitcost.capacity.workload import QUANTILES, WorkloadStats, build_requests, workload_stats
from unitcost.errors import ConfigError

MAX_ROUNDS = 3
#: a configuration the screen says misses an SLO by at most this factor is still simulated when it is cheaper
NEAR_MISS = 1.25


@dataclass
class PlanResult:
    """Every configuration's evaluation, the best one, and the Pareto front."""

    plan: Plan
    model: ModelSpec
    configurations: list[Configuration]
    screened: list[Evaluation]
    simulated: dict[int, Evaluation] = field(default_factory=dict)
    simulations: dict[int, Any] = field(default_factory=dict)  # index -> SimulationResult (for charts)
    best: int | None = None
    pareto: list[int] = field(default_factory=list)
    stats: WorkloadStats | None = None
    requests: Requests | None = None

    def evaluation(self, index: int) -> Evaluation:
        """The simulated evaluation where there is one, else the screen's."""
        return self.simulated.get(index, self.screened[index])


class Planner:
    """Builds engines, prices and SLOs for a plan once, then evaluates configurations."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.model = load_model(plan.model)
        self._inline_gpus = gpu_specs_inline(plan)
        self._gpus: dict[str, GpuSpec] = {}
        self._engines: dict[tuple[Any, ...], EngineSpec | None] = {}
        # per workload (keyed by id, holding the stats so the id cannot be reused): engine -> load grid
        self._screen_cache: dict[int, tuple[WorkloadStats, ScreenCache]] = {}
        self.profiles: dict[tuple[str, str, str, int], Profile] = {}
        for path in plan.profiles:
            profile = load_profile(plan.resolve(path))
            self.profiles[profile.key()] = profile
        classes = plan.workload.classes
        self.slos: dict[str, Slo] = {c.name: plan.slo.merged(c.slo) for c in classes} if classes else {"all": plan.slo}

    def gpu(self, name: str) -> GpuSpec:
        """The GPU spec of a catalog key or an inline GPU."""
        if name not in self._gpus:
            self._gpus[name] = load_gpu(self._inline_gpus.get(name, name))
        return self._gpus[name]

    def prices(self, gpu: str) -> GpuPrices:
        """$/GPU-hour of ``gpu`` by option, the plan's ``prices:`` over the shipped defaults."""
        return GpuPrices(
            *(gpu_price_per_hour(gpu, option, self.plan.prices) for option in ("on_demand", "reserved", "spot"))
        )

    def engine(self, config: Configuration) -> EngineSpec | None:
        """The replica of a configuration; None when the weights do not fit on its GPUs."""
        key = (config.gpu, config.tensor_parallel, config.precision, config.max_batch, config.max_batched_tokens)
        if key not in self._engines:
            gpu = self.gpu(config.gpu)
            profile = self.profiles.get((self.model.name, config.gpu, config.precision, config.tensor_parallel))
            step = (
                profile.step
                if profile
                else step_coefficients(self.model, gpu, config.tensor_parallel, config.precision)
            )
            capacity = kv_capacity_tokens(self.model, gpu, config.tensor_parallel, config.precision)
            self._engines[key] = (
                EngineSpec(step, config.max_batch, capacity, config.max_batched_tokens, config.tensor_parallel)
                if capacity > 0
                else None
            )
        return self._engines[key]

    def screen(self, config: Configuration, stats: WorkloadStats) -> Evaluation:
        """The analytical evaluation of one configuration."""
        engine = self.engine(config)
        if engine is None:
            return Evaluation("analytical", {}, {}, False, feasible=False, reason="the weights do not fit")
        a = self.plan.autoscaling
        cache = self._screen_cache.setdefault(id(stats), (stats, {}))[1]
        return screen(
            config,
            engine,
            stats,
            self.prices(config.gpu),
            self.slos,
            interval_s=a.interval_s,
            warm_start_s=a.warm_start_s,
            cache=cache,
        )

    def scaling(self, config: Configuration, initial: int) -> ScalingSpec:
        """The simulator's scaling spec of a configuration, starting with ``initial`` replicas."""
        a = self.plan.autoscaling
        return ScalingSpec(
            min_replicas=config.replicas_min,
            max_replicas=config.replicas_max,
            initial_replicas=max(config.replicas_min, min(initial, config.replicas_max)),
            policy=config.policy,
            target_utilization=config.target_utilization or 0.7,
            target_queue_per_replica=config.target_queue_per_replica or 1.0,
            interval_s=a.interval_s,
            warmup_s=config.warmup_s,
            scale_down_after_s=config.scale_down_after_s,
            warm_pool=config.warm_pool,
            warm_start_s=a.warm_start_s,
        )

    def disruptions(self, config: Configuration, *, lost_share: float = 0.0, lost_at_s: float = 0.0) -> Disruptions:
        """Spot slots and availability drops for a configuration (the plan's, plus an optional extra loss)."""
        gpus = max(config.tensor_parallel, 1)
        reserved_replicas = math.ceil(config.reserved_gpus / gpus)
        spot = []
        for slot in range(config.replicas_max):
            j = slot - reserved_replicas
            spot.append(j >= 0 and math.floor((j + 1) * config.spot_share) > math.floor(j * config.spot_share))
        drops = [(d.at_s, d.share_lost) for d in self.plan.availability]
        if lost_share > 0:
            drops.append((lost_at_s, lost_share))
        availability = tuple(
            (at, max(0, math.floor(config.replicas_max * (1.0 - share)))) for at, share in sorted(drops)
        )
        return Disruptions(
            spot=tuple(spot),
            spot_interruptions_per_hour=self.plan.purchase.spot_interruptions_per_hour,
            availability=availability,
            seed=self.plan.workload.seed,
        )

    def simulate(
        self,
        config: Configuration,
        requests: Requests,
        stats: WorkloadStats,
        initial_replicas: int,
        disruptions: Disruptions | None = None,
    ) -> tuple[Evaluation, Any]:
        """Simulate one configuration; its evaluation and the raw simulation result."""
        engine = self.engine(config)
        if engine is None:
            return Evaluation("simulated", {}, {}, False, feasible=False, reason="the weights do not fit"), None
        result = simulate(
            requests,
            engine,
            self.scaling(config, initial_replicas),
            disruptions if disruptions is not None else self.disruptions(config),
        )
        return evaluate_simulation(result, requests, engine, config, self.prices(config.gpu), self.slos), result


@dataclass(frozen=True)
class RequestLatencies:
    """Per request of a simulation: TTFT and end to end (inf when never served), TPOT in ms (nan when it has no
    second token or was not served)."""

    ttft_s: np.ndarray
    e2e_s: np.ndarray
    tpot_ms: np.ndarray


def request_latencies(result: Any, requests: Requests) -> RequestLatencies:
    """TTFT, end-to-end and time per output token of every request of a simulation result."""
    served = np.asarray(result.served, dtype=bool)
    ttft = np.where(np.isfinite(result.ttft_s), result.ttft_s, np.inf)
    e2e = np.where(served, result.e2e_s, np.inf)
    outputs = requests.output_tokens.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(served & (outputs > 1), (e2e - ttft) / np.maximum(outputs - 1, 1) * 1e3, np.nan)
    return RequestLatencies(ttft, e2e, tpot)


def evaluate_simulation(
    result: Any,
    requests: Requests,
    engine: EngineSpec,
    config: Configuration,
    prices: GpuPrices,
    slos: dict[str, Slo],
) -> Evaluation:
    """Latency quantiles per class, SLO attainment, throughput and cost from a simulation.

    Only offered requests count: a closed loop leaves the rows its clients never sent with no arrival, and an
    open loop does not offer rows arriving after the window.
    """
    arrival = np.asarray(result.arrival_s, dtype=np.float64)
    offered = np.isfinite(arrival) & (arrival <= max(result.horizon_s, 0.0) + 1e-9)
    served = np.asarray(result.served, dtype=bool)
    latencies = request_latencies(result, requests)
    ttft, e2e, tpot = latencies.ttft_s, latencies.e2e_s, latencies.tpot_ms
    outputs = requests.output_tokens.astype(np.float64)
    per_class: dict[str, dict[str, float]] = {}
    attained = np.ones(requests.count, dtype=bool)
    slo_met = True
    for k, name in enumerate(slos):
        rows = (requests.class_id == k) & offered
        values: dict[str, float] = {}
        for q in QUANTILES:
            values[f"ttft_p{q}_s"] = _quantile(ttft[rows], q)
            values[f"e2e_p{q}_s"] = _quantile(e2e[rows], q)
            t = tpot[rows]
            t = t[np.isfinite(t)]
            values[f"tpot_p{q}_ms"] = float(np.percentile(t, q)) if t.size else 0.0
        slo = slos[name]
        ok = np.ones(int(rows.sum()), dtype=bool)
        if slo.ttft_p95_s is not None:
            ok &= ttft[rows] <= slo.ttft_p95_s
        if slo.e2e_p95_s is not None:
            ok &= e2e[rows] <= slo.e2e_p95_s
        if slo.tpot_p95_ms is not None:
            ok &= ~(tpot[rows] > slo.tpot_p95_ms)
        attained[rows] = ok
        values["slo_attainment"] = float(ok.mean()) if ok.size else 1.0
        per_class[name] = values
        slo_met = slo_met and _meets(values, slo)
    metrics = {key: max(v[key] for v in per_class.values()) for key in per_class[next(iter(per_class))]}
    window = result.horizon_s if result.horizon_s > 0 else max(requests.duration_s, 1.0)
    window = requests.duration_s or window
    done = served & (np.asarray(result.arrival_s) < window)
    requests_per_s = float(done.sum()) / window
    output_per_s = float(outputs[done].sum()) / window
    provisioned = np.asarray(result.provisioned_replicas, dtype=np.float64)
    cost_per_hour = fleet_cost_per_hour(provisioned * engine.gpus, config.reserved_gpus, config.spot_share, prices)
    metrics.update(
        slo_attainment=float(attained[offered].mean()) if offered.any() else 1.0,
        served_share=float(served[offered].mean()) if offered.any() else 1.0,
        requests_per_s=requests_per_s,
        output_tokens_per_s=output_per_s,
        gpu_utilization=result.busy_replica_seconds / result.replica_seconds if result.replica_seconds else 0.0,
        replicas_avg=float(np.mean(result.ready_replicas)) if len(result.ready_replicas) else 0.0,
        replicas_max_used=float(np.max(result.ready_replicas)) if len(result.ready_replicas) else 0.0,
        idle_gpu_hours=(result.replica_seconds - result.busy_replica_seconds) * engine.gpus / 3600.0,
        interruptions=float(result.interruptions),
        restarted_requests=float(result.restarted_requests),
        **unit_costs(cost_per_hour, requests_per_s, output_per_s),
    )
    return Evaluation("simulated", metrics, per_class, slo_met and bool(served[offered].all()))


def _quantile(values: np.ndarray, q: int) -> float:
    if values.size == 0:
        return 0.0
    return float(np.percentile(values, q, method="higher"))


def _slo_ratio(evaluation: Evaluation, slos: dict[str, Slo]) -> float:
    """The worst p95 over its SLO limit across classes and objectives (1 = exactly at the limit)."""
    worst = 0.0
    for name, slo in slos.items():
        values = evaluation.per_class.get(name, evaluation.metrics)
        for metric, limit in slo.limits():
            worst = max(worst, values.get(metric, math.inf) / limit)
    return worst


def _score(evaluation: Evaluation) -> tuple[int, float]:
    """Sort key: SLO met first, then cost; infeasible last."""
    if not evaluation.feasible or not evaluation.metrics:
        return (2, math.inf)
    return (0 if evaluation.slo_met else 1, evaluation.metrics["cost_per_hour_usd"])


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (lower is better), by the first.

    >>> pareto_front([(1, 5), (2, 3), (3, 4), (4, 1)])
    [0, 1, 3]
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best_second = math.inf
    for i in order:
        if points[i][1] < best_second and math.isfinite(points[i][0]) and math.isfinite(points[i][1]):
            front.append(i)
            best_second = points[i][1]
    return front


def run_plan(
    plan: Plan, *, progress: Callable[[str], None] | None = None, planner: Planner | None = None
) -> PlanResult:
    """Screen every configuration, simulate the finalists, and pick the cheapest that meets the SLOs."""
    planner = planner or Planner(plan)
    configs = list(configurations(plan))
    if not configs:
        raise ConfigError("the plan spans no configuration (is replicas.min above replicas.max everywhere?)")
    if len(configs) > plan.search.max_configurations:
        raise ConfigError(
            f"the plan spans {len(configs):,} configurations, more than search.max_configurations "
            f"({plan.search.max_configurations:,}); shorten a list or raise the limit"
        )
    requests = build_requests(plan)
    stats = workload_stats(requests)
    if progress:
        progress(f"screening {len(configs):,} configurations over {requests.count:,} requests")
    screened = [planner.screen(c, stats) for c in configs]
    result = PlanResult(plan, planner.model, configs, screened, stats=stats, requests=requests)
    order = sorted(range(len(configs)), key=lambda i: _score(screened[i]))
    order = [i for i in order if screened[i].feasible]
    finalists = plan.search.finalists
    # the screen is approximate: cheaper configurations it says miss an SLO by a little are simulated too
    first_met = next((i for i in order if screened[i].slo_met), None)
    ceiling = screened[first_met].metrics["cost_per_hour_usd"] if first_met is not None else math.inf
    near = sorted(
        (i for i in order if not screened[i].slo_met and screened[i].metrics["cost_per_hour_usd"] < ceiling
         and _slo_ratio(screened[i], planner.slos) <= NEAR_MISS),
        key=lambda i: screened[i].metrics["cost_per_hour_usd"],
    )[:finalists]  # fmt: skip
    order = near + [i for i in order if i not in set(near)]
    for round_ in range(MAX_ROUNDS):
        size = finalists + len(near) if round_ == 0 else finalists
        start = 0 if round_ == 0 else finalists + len(near) + (round_ - 1) * finalists
        batch = order[start : start + size]
        if not batch:
            break
        for i in batch:
            if progress:
                progress(f"simulating {describe(configs[i])}")
            initial = round(screened[i].metrics.get("replicas_avg", configs[i].replicas_min))
            evaluation, sim = planner.simulate(configs[i], requests, stats, initial)
            result.simulated[i] = evaluation
            result.simulations[i] = sim
        met = [i for i in result.simulated if result.simulated[i].slo_met]
        if met:
            result.best = min(met, key=lambda i: result.simulated[i].metrics["cost_per_hour_usd"])
            break
    points = [
        (e.metrics.get("cost_per_hour_usd", math.inf), e.metrics.get("e2e_p95_s", math.inf))
        for e in (result.evaluation(i) for i in range(len(configs)))
    ]
    result.pareto = pareto_front(points)
    return result


def describe(config: Configuration) -> str:
    """A short human name for a configuration.

    >>> from unitcost.capacity.plan import Configuration
    >>> describe(Configuration("h100-sxm", 2, "fp8", 128, 8192, 1, 4, "utilization", 0.7, 1.0, 300, 600, 1, 2, 0.5))
    'h100-sxm TP2 fp8 batch 128, 1-4 replicas at 70% utilization, warm pool 1, 2 reserved GPUs, 50% spot'
    """
    if config.policy == "fixed":
        scaling = f"{config.replicas_min} replica{'s' if config.replicas_min > 1 else ''}"
    elif config.policy == "utilization":
        scaling = f"{config.replicas_min}-{config.replicas_max} replicas at {config.target_utilization:.0%} utilization"
    else:
        scaling = (
            f"{config.replicas_min}-{config.replicas_max} replicas, queue {config.target_queue_per_replica:g}/replica"
        )
    parts = [f"{config.gpu} TP{config.tensor_parallel} {config.precision} batch {config.max_batch}", scaling]
    if config.warm_pool:
        parts.append(f"warm pool {config.warm_pool}")
    if config.reserved_gpus:
        parts.append(f"{config.reserved_gpus} reserved GPUs")
    if config.spot_share:
        parts.append(f"{config.spot_share:.0%} spot")
    return ", ".join(parts)

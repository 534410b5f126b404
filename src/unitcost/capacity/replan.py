"""Re-planning a self-hosted pool at other loads: the cheapest fleet that meets the SLOs at 0.25x .. 20x.

Scenarios and the architecture review scale a GPU pool's cost with its load through this curve instead of
linearly: at each load multiple the plan's whole search space is screened again (the workload's rate times the
multiple) and the cheapest configuration that meets every SLO gives the cost per hour; the curve is the ratio
to the cost at 1x. Between the points it is interpolated linearly; beyond the last load where some
configuration still meets the SLOs, cost is extrapolated in proportion to load (more of the same fleet).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from unitcost.capacity.plan import Configuration, configurations, load_plan
from unitcost.capacity.search import Planner, describe
from unitcost.capacity.workload import build_requests, workload_stats
from unitcost.errors import ConfigError

LOADS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0)


@dataclass(frozen=True)
class CostCurve:
    """Cheapest SLO-meeting cost per hour of a pool at each load multiple."""

    loads: tuple[float, ...]
    cost_per_hour_usd: tuple[float, ...]  # nan where nothing in the search space meets the SLOs
    chosen: tuple[str, ...]  # the configuration chosen at each load ("" where none)
    plan: str

    @property
    def last_feasible_load(self) -> float:
        """The highest load some configuration of the plan can serve within the SLOs."""
        return max(k for k, c in zip(self.loads, self.cost_per_hour_usd, strict=True) if math.isfinite(c))

    def note(self) -> str | None:
        """A sentence when the curve had to be extrapolated, else None."""
        if all(math.isfinite(c) for c in self.cost_per_hour_usd):
            return None
        return (
            f"the capacity plan {self.plan!r} meets the SLOs up to {self.last_feasible_load:g}x the pool's load; "
            "beyond that its GPU cost is extrapolated in proportion to load (widen the plan: more replicas, a "
            "warm pool, lower utilization targets, more GPU types)"
        )

    @property
    def base_cost_per_hour_usd(self) -> float:
        """The cost at 1x."""
        return self.cost_per_hour_usd[self.loads.index(1.0)]

    def ratio(self, load: np.ndarray) -> np.ndarray:
        """Cost at ``load`` over the cost at 1x (interpolated; proportional beyond the last feasible load).

        >>> c = CostCurve((0.5, 1.0, 2.0), (5.0, 10.0, 15.0), ("a", "b", "c"), "p")
        >>> c.ratio(np.array([0.75, 2.0, 4.0])).tolist()
        [0.75, 1.5, 3.0]
        """
        x = np.array([k for k, c in zip(self.loads, self.cost_per_hour_usd, strict=True) if math.isfinite(c)])
        y = np.array([c for c in self.cost_per_hour_usd if math.isfinite(c)]) / self.base_cost_per_hour_usd
        load = np.asarray(load, dtype=np.float64)
        inside = np.interp(load, x, y)
        beyond = y[-1] * load / x[-1]
        return np.where(load > x[-1], beyond, inside)


def cost_curve(plan_path: str, loads: tuple[float, ...] = LOADS) -> CostCurve:
    """Screen the plan's search space at each load and keep the cheapest configuration meeting the SLOs."""
    plan = load_plan(plan_path)
    planner = Planner(plan)
    configs: list[Configuration] = list(configurations(plan))
    stats = workload_stats(build_requests(plan))
    costs, chosen = [], []
    for k in loads:
        scaled = dataclasses.replace(stats, rates_per_s=stats.rates_per_s * k, concurrency=round(stats.concurrency * k))
        best: tuple[float, str] = (math.inf, "")
        for config in configs:
            e = planner.screen(config, scaled)
            if e.feasible and e.slo_met and e.metrics["cost_per_hour_usd"] < best[0]:
                best = (e.metrics["cost_per_hour_usd"], describe(config))
        costs.append(best[0] if math.isfinite(best[0]) else math.nan)
        chosen.append(best[1])
    curve = CostCurve(tuple(loads), tuple(costs), tuple(chosen), plan.name)
    if not math.isfinite(curve.base_cost_per_hour_usd):
        raise ConfigError(f"{plan_path}: no configuration meets the SLOs at today's load, so there is nothing to scale")
    return curve

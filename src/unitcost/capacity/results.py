"""A plan's outcome as data: the JSON contract of ``unitcost plan --json`` and the series its charts draw."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from unitcost.capacity.screen import Evaluation
from unitcost.capacity.search import Planner, PlanResult, _score, describe
from unitcost.capacity.stress import StressCase
from unitcost.json_safe import json_safe

LOAD_MULTIPLIERS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)


def ranked(result: PlanResult) -> list[int]:
    """Configuration indices, SLO-meeting and cheapest first (simulated evaluations where there are)."""
    return sorted(range(len(result.configurations)), key=lambda i: (_score(result.evaluation(i)), i))


def result_row(result: PlanResult, index: int) -> dict[str, Any]:
    """One configuration's JSON object: its fields, the metrics, SLO verdict, method, per-class figures."""
    evaluation: Evaluation = result.evaluation(index)
    row: dict[str, Any] = {"id": index, "name": describe(result.configurations[index])}
    row.update(result.configurations[index].fields())
    row.update(evaluation.metrics)
    row.update(
        slo_met=evaluation.slo_met,
        feasible=evaluation.feasible,
        method=evaluation.method,
        pareto=index in result.pareto,
    )
    if not evaluation.feasible:
        row["reason"] = evaluation.reason
    if index in result.simulated:
        row["screen"] = {
            k: result.screened[index].metrics.get(k)
            for k in ("ttft_p95_s", "tpot_p95_ms", "e2e_p95_s", "cost_per_hour_usd")
        }
    if len(evaluation.per_class) > 1:
        row["per_class"] = evaluation.per_class
    return row


def stress_json(cases: list[StressCase]) -> list[dict[str, Any]]:
    """The stress cases as JSON objects."""
    return [dataclasses.asdict(c) for c in cases]


def plan_json(result: PlanResult, stress: list[StressCase] | None = None) -> dict[str, Any]:
    """``{"results": [...], "best": {...} | null, ...}``: the contract in docs/json.md."""
    rows = [result_row(result, i) for i in ranked(result)]
    best = result_row(result, result.best) if result.best is not None else None
    document: dict[str, Any] = {
        "plan": result.plan.name,
        "model": result.model.name,
        "requests": result.requests.count if result.requests is not None else 0,
        "configurations": len(result.configurations),
        "simulated": len(result.simulated),
        "results": rows,
        "best": best,
    }
    if stress is not None:
        document["stress"] = stress_json(stress)
    return json_safe(document)


def latency_vs_load(planner: Planner, result: PlanResult, index: int) -> list[dict[str, float]]:
    """The screen's p95 latencies and cost of configuration ``index`` at multiples of the plan's load."""
    assert result.stats is not None
    config = result.configurations[index]
    points = []
    for k in LOAD_MULTIPLIERS:
        stats = dataclasses.replace(
            result.stats,
            rates_per_s=result.stats.rates_per_s * k,
            concurrency=round(result.stats.concurrency * k),
        )
        e = planner.screen(config, stats)
        points.append(
            {
                "load": k,
                **{
                    m: e.metrics.get(m, math.inf)
                    for m in ("ttft_p95_s", "tpot_p95_ms", "e2e_p95_s", "replicas_avg", "cost_per_hour_usd")
                },
            }
        )
    return points


@dataclasses.dataclass
class PlanOutcome:
    """Everything ``unitcost plan`` shows: the JSON document, the load curve and the best run's timeline."""

    document: dict[str, Any]
    load_curve: list[dict[str, float]]
    simulation: Any  # the chosen configuration's SimulationResult, or None
    slo: dict[str, float | None]
    result: PlanResult


def plan_outcome(plan_path: str, *, stress: bool = False, progress: Any = None) -> PlanOutcome:
    """Run a plan file: search, then (``stress``) the stress cases, and the series the charts need."""
    from unitcost.capacity.plan import load_plan
    from unitcost.capacity.search import run_plan
    from unitcost.capacity.stress import run_stress

    plan = load_plan(plan_path)
    planner = Planner(plan)
    result = run_plan(plan, progress=progress, planner=planner)
    feasible = [i for i in ranked(result) if result.evaluation(i).feasible]
    chosen = result.best if result.best is not None else (feasible[0] if feasible else None)
    cases = (run_stress(planner, result, chosen) if chosen is not None else []) if stress else None
    curve = latency_vs_load(planner, result, chosen) if chosen is not None else []
    sim = result.simulations.get(chosen) if chosen is not None else None
    return PlanOutcome(plan_json(result, cases), json_safe(curve), sim, plan.slo.model_dump(), result)

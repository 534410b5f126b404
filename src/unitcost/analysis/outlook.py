"""Wiring for ``unitcost scenarios`` and ``unitcost review``: the workspace, the files, the models together."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from unitcost.analysis.baseline import Baseline, measure_baseline
from unitcost.analysis.review import Review, review
from unitcost.analysis.roi import roi_per_use_case, unknown_use_cases
from unitcost.analysis.scenarios import ScenarioReport, load_scenarios, price_resolver, run_scenarios
from unitcost.config import Config
from unitcost.json_safe import json_safe
from unitcost.store import Store


def _curve(plan: str | Path) -> Any:
    from unitcost.capacity.replan import cost_curve

    return cost_curve(str(plan))


def scenario_report(
    store: Store, config: Config, path: str | Path, *, baseline: Baseline | None = None, curve: Any = None
) -> ScenarioReport:
    """Run a scenario file against the workspace (re-planning the GPU pool when it names a capacity plan).

    ``baseline`` and ``curve`` (a :class:`~unitcost.capacity.replan.CostCurve`) may be passed in when already
    computed for the same workspace and plan.
    """
    spec = load_scenarios(path)
    baseline = baseline or measure_baseline(store, config, window_days=spec.baseline_days)
    notes = []
    if spec.capacity_plan:
        curve = curve or _curve(Path(spec.base_dir) / spec.capacity_plan)
        notes.append(
            f"GPU pool re-planned with {spec.capacity_plan}: at 1x {curve.chosen[curve.loads.index(1.0)]} "
            f"(${curve.base_cost_per_hour_usd:,.2f}/h); the layer scales by the plan's cost ratio"
        )
    else:
        curve = None
    report = run_scenarios(
        baseline, spec, resolve=price_resolver(baseline, config), pool_cost_ratio=curve.ratio if curve else None
    )
    if curve is not None and curve.note():
        notes.append(curve.note())
    report.notes.extend(notes)
    return report


def review_report(
    store: Store,
    config: Config,
    *,
    plan: str | Path | None = None,
    window_days: int = 30,
    baseline: Baseline | None = None,
    curve: Any = None,
) -> tuple[Review, dict[str, Any]]:
    """The architecture review; with ``plan`` (the self-hosted pool's capacity plan) GPUs are re-planned and
    stress-tested. Also returns what the charts need (the GPU cost curve)."""
    baseline = baseline or measure_baseline(store, config, window_days=window_days)
    rois = roi_per_use_case(baseline, config)
    stress = None
    extras: dict[str, Any] = {}
    if plan is not None:
        from unitcost.capacity.plan import load_plan
        from unitcost.capacity.search import Planner, run_plan
        from unitcost.capacity.stress import run_stress

        curve = curve or _curve(plan)
        capacity_plan = load_plan(plan)
        planner = Planner(capacity_plan)
        result = run_plan(capacity_plan, planner=planner)
        stress = [dataclasses.asdict(c) for c in run_stress(planner, result)]
        extras["gpu_cost_curve"] = json_safe(dataclasses.asdict(curve))  # nan (no configuration) -> null
    else:
        curve = None
    r = review(
        baseline,
        rois,
        resolve=price_resolver(baseline, config),
        pool_cost_ratio=curve.ratio if curve else None,
        gpu_stress=stress,
    )
    if curve is not None and curve.note():
        r.notes.append(curve.note())
    if not config.value:
        r.notes.append("no value: section in unitcost.yaml, so no ROI or break-even (docs/review.md)")
    for feature in unknown_use_cases(baseline, config):
        r.notes.append(f"value: feature {feature!r} has no usage in the baseline window (a typo?); no ROI for it")
    return r, extras


def outlook(
    store: Store, config: Config, scenarios: str | Path, plan: str | Path | None
) -> tuple[ScenarioReport, Review, dict[str, Any]]:
    """Scenarios and the review together, measuring the baseline and re-planning the pool once."""
    spec = load_scenarios(scenarios)
    baseline = measure_baseline(store, config, window_days=spec.baseline_days)
    curve = _curve(plan) if plan is not None else None
    same_plan = (
        plan is not None
        and spec.capacity_plan is not None
        and (Path(spec.base_dir) / spec.capacity_plan).resolve() == Path(plan).resolve()
    )
    report = scenario_report(store, config, scenarios, baseline=baseline, curve=curve if same_plan else None)
    result, extras = review_report(store, config, plan=plan, baseline=baseline, curve=curve)
    return report, result, extras

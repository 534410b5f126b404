"""The architecture review (``unitcost review``): the questions to ask before scaling, answered from data.

Sections (each under its own key in ``--json``), all from the measured baseline month
(:mod:`unitcost.analysis.baseline`) through the scenario cost model (:mod:`unitcost.analysis.scenarios`):

* ``unit_costs``: cost per request and per successful outcome at 1x, 2x and 10x traffic;
* ``scaling_risk``: per layer what drives it, its monthly cost, cost per request, variable share (how much of it
  grows with traffic), its share of the total now and at 10x; the layer with the largest share at 10x is the
  one that dominates first;
* ``gpu_stress``: with a capacity plan for the self-hosted pool, the planner's stress cases (what fails first
  when traffic ramps or GPUs are lost);
* ``marginal_tenant``: what one more typical (median) tenant adds per month, layer by layer;
* ``break_even``: ROI and break-even per use case (:mod:`unitcost.analysis.roi`);
* ``levers``: changes ranked by monthly dollars saved, each a deterministic scenario against the baseline,
  with its effect on quality in words: response caching, prompt compression, context caps, tiered routing,
  reserved capacity, moving an API model's traffic to the self-hosted pool.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from unitcost.analysis.baseline import Baseline
from unitcost.analysis.roi import Roi
from unitcost.analysis.scenarios import PriceResolver, Reserved, Route, Scenario, evaluate
from unitcost.json_safe import json_safe

SCALES = (1.0, 2.0, 10.0)

LAYER_DRIVERS = {
    "model_api": "tokens x API prices",
    "gpu_compute": "GPU-hours of the self-hosted pool (re-planned at each load when a plan is given)",
    "storage": "stored data and requests",
    "retrieval": "vector search queries and index size",
    "networking": "egress bytes",
    "orchestration": "workflow runs",
    "observability": "spans and logs ingested",
    "people": "releases, incidents, on-call, evaluations (not traffic)",
    "other": "unclassified bill lines",
    "quality": "escalations' quality cost",
}


@dataclass(frozen=True)
class Lever:
    """One change and what it would save a month."""

    lever: str
    change: str
    monthly_savings_usd: float
    savings_pct: float
    quality_effect: str


@dataclass
class Review:
    """Every section of the review."""

    baseline_monthly_usd: float
    unit_costs: list[dict[str, float]]
    scaling_risk: list[dict[str, Any]]
    dominates_first: str | None
    marginal_tenant: dict[str, Any]
    break_even: list[Roi]
    levers: list[Lever]
    gpu_stress: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``review --json`` document: one key per section (docs/review.md)."""

        return json_safe(
            {
                "baseline_monthly_cost_usd": self.baseline_monthly_usd,
                "unit_costs": self.unit_costs,
                "scaling_risk": {"layers": self.scaling_risk, "dominates_first": self.dominates_first},
                "gpu_stress": self.gpu_stress,
                "marginal_tenant": self.marginal_tenant,
                "break_even": [r.to_json() for r in self.break_even],
                "levers": [asdict(lever) for lever in self.levers],
                "notes": self.notes,
            }
        )


def _point(baseline: Baseline, scenario: Scenario, model: dict[str, Any]) -> Any:
    d = {k: np.array([float(v)]) for k, v in scenario.drivers().items() if not hasattr(v, "sample")}
    return evaluate(baseline, d, scenario, **model)


def _total(out: Any) -> float:
    return float(out.total[0])


def _levers(baseline: Baseline, model: dict[str, Any], resolve: PriceResolver | None) -> list[Lever]:
    base = _total(_point(baseline, Scenario(name="baseline"), model))
    candidates: list[tuple[str, str, Scenario, str]] = [
        ("response caching", "application cache hit rate +10 points", Scenario(name="x", app_cache_hit_pts=10),
         "answers served from cache can be stale; safe for repeated questions, needs invalidation on content "
         "changes"),
        ("prompt compression", "input tokens -20%", Scenario(name="x", prompt_compression_pct=20),
         "compressed prompts can drop instructions or context: run the evaluation set before and after"),
        ("context caps", f"cap each request's input at its feature's 90th percentile "
         f"(-{100 * baseline.cap_savings_share:.1f}% of input tokens)",
         Scenario(name="x", context_tokens_pct=-100 * baseline.cap_savings_share),
         "the longest 10% of requests lose their oldest context: check their answers"),
    ]  # fmt: skip
    api = [(f, m) for f in baseline.features.values() for m in f.models if not m.pool and m.token_cost_usd > 0]
    if api and resolve is not None:
        feature, costly = max(api, key=lambda fm: fm[1].token_cost_usd)

        # the cheapest generative model (output tokens, not embeddings) the same feature already calls, else any
        def generative(models: list[Any]) -> dict[str, float]:
            return {
                m.model: m.token_cost_usd / m.calls for m in models
                if not m.pool and m.calls and m.output_tokens > 0 and m.token_cost_usd > 0 and m.model != costly.model
            }  # fmt: skip

        per_call = generative(feature.models) or generative([m for f in baseline.features.values() for m in f.models])
        if per_call:
            cheap = min(per_call, key=lambda k: per_call[k])
            route = Route(feature=feature.feature, from_model=costly.model, to_model=cheap, share=0.5,
                          escalation_rate=0.2)  # fmt: skip
            candidates.append(
                (
                    "tiered routing",
                    f"{feature.feature}: half of {costly.model}'s calls to {cheap} first, 20% escalated back",
                    Scenario(name="x", routing=[route]),
                    f"{cheap} may answer worse: the 20% escalation assumes a quality gate that catches it; "
                    "escalations add latency",
                )
            )
        pools = [(f, m) for f in baseline.features.values() for m in f.models if m.pool]
        for f, pool_model in pools:
            movable = [m for m in f.models if not m.pool and m.token_cost_usd > 0]
            if movable:
                biggest = max(movable, key=lambda m: m.token_cost_usd)
                route = Route(feature=f.feature, from_model=biggest.model, to_model=pool_model.model, share=1.0)
                candidates.append(
                    (
                        "API to self-hosting",
                        f"{f.feature}: {biggest.model}'s calls to the self-hosted {pool_model.model}",
                        Scenario(name="x", routing=[route]),
                        "the self-hosted model must match its quality on these requests (evaluate first); "
                        "the pool must be sized for the extra load (the plan does it when given)",
                    )
                )
                break
    if baseline.layers.get("gpu_compute", 0) > 0:
        candidates.append(
            ("reserved capacity", "commit 70% of the GPU pool at a 35% discount (1-year)",
             Scenario(name="x", reserved=Reserved(share=0.7, discount_pct=35)),
             "no quality effect; a year's commitment: pays off only if the pool stays at least 70% as busy")
        )  # fmt: skip
    levers = []
    for name, change, scenario, quality in candidates:
        saved = base - _total(_point(baseline, scenario, model))
        levers.append(Lever(name, change, saved, 100 * saved / base if base else 0.0, quality))
    levers.sort(key=lambda lever: -lever.monthly_savings_usd)
    return levers


def review(
    baseline: Baseline,
    rois: list[Roi],
    *,
    resolve: PriceResolver | None = None,
    pool_cost_ratio: Callable[[np.ndarray], np.ndarray] | None = None,
    gpu_stress: list[dict[str, Any]] | None = None,
) -> Review:
    """Build every section of the review from the baseline month (see the module docstring)."""
    model = {"horizon_months": 1, "resolve": resolve, "pool_cost_ratio": pool_cost_ratio}
    outcomes = {k: _point(baseline, Scenario(name=f"{k:g}x", traffic_growth_pct=(k - 1) * 100), model) for k in SCALES}
    unit_costs = [
        {
            "traffic": k,
            "monthly_cost_usd": _total(out),
            "requests": float(out.requests[0]),
            "cost_per_request_usd": float(out.cost_per_request[0]),
            "cost_per_successful_outcome_usd": float(out.cost_per_outcome[0]),
        }
        for k, out in outcomes.items()
    ]
    now, at10 = outcomes[1.0], outcomes[10.0]
    total_now, total_10 = _total(now), _total(at10)
    risk: list[dict[str, Any]] = []
    for layer in sorted(baseline.layers, key=lambda name: -baseline.layers[name]):
        cost = float(now.layers[layer][0])
        risk.append(
            {
                "layer": layer,
                "driver": LAYER_DRIVERS.get(layer, "bill lines"),
                "monthly_cost_usd": cost,
                "cost_per_request_usd": cost / float(now.requests[0]) if now.requests[0] else math.nan,
                "variable_share": baseline.variable_share.get(layer, 0.0),
                "share_now": cost / total_now if total_now else math.nan,
                "monthly_cost_at_10x_usd": float(at10.layers[layer][0]),
                "share_at_10x": float(at10.layers[layer][0]) / total_10 if total_10 else math.nan,
            }
        )
    dominates = max(risk, key=lambda r: r["share_at_10x"])["layer"] if risk else None
    tenant = _point(baseline, Scenario(name="tenant", new_tenants=1), model)
    marginal = {
        "tenant_units_per_month": baseline.median_tenant_units,
        "monthly_cost_usd": _total(tenant) - total_now,
        "layers_usd": {k: float(tenant.layers[k][0] - now.layers[k][0]) for k in now.layers},
    }
    notes = []
    if pool_cost_ratio is None and baseline.layers.get("gpu_compute", 0) > 0:
        notes.append("no capacity plan given: the GPU layer grows with its measured variable share, not re-planned")
    if not baseline.has_bill:
        notes.append("no bill in the workspace: only the token layer is known")
    return Review(
        baseline_monthly_usd=baseline.total_usd,
        unit_costs=unit_costs,
        scaling_risk=risk,
        dominates_first=dominates,
        marginal_tenant=marginal,
        break_even=rois,
        levers=_levers(baseline, model, resolve),
        gpu_stress=gpu_stress,
        notes=notes,
    )

"""Return on investment per use case: value of its successful outcomes against its fully loaded cost.

For a use case (feature) with a ``value:`` entry in ``unitcost.yaml``, over the baseline month
(:mod:`unitcost.analysis.baseline`):

* value ``V = S x w`` with ``S`` successful outcomes and ``w`` the value of one (``per_outcome_usd``, or minutes
  saved x hourly rate / 60);
* cost ``C``: the feature's fully loaded cost (every layer allocated to it), split into a variable part (each
  layer's cost x that layer's variable share) and a fixed part ``F``; ``v`` = variable part / ``S`` is the
  variable cost of one more outcome;
* ``ROI = (V - C) / C``, ``margin = (V - C) / V``;
* break-even volume: ``F / (w - v)`` outcomes a month (none when ``w <= v``: every outcome loses money);
  break-even cost per outcome: ``w`` (the most one outcome may cost);
* at ``k`` times the volume: value ``k V``, cost ``F + k v S``; profitable when value exceeds cost.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from unitcost.analysis.baseline import Baseline
from unitcost.config import Config
from unitcost.json_safe import json_safe

SCALES = (1.0, 2.0, 10.0)


@dataclass(frozen=True)
class Roi:
    """One use case's economics over a month."""

    feature: str
    value_per_outcome_usd: float
    successful_outcomes: float
    monthly_value_usd: float
    monthly_cost_usd: float
    fixed_cost_usd: float
    variable_cost_per_outcome_usd: float | None  # None without a successful outcome (undefined)
    cost_per_outcome_usd: float | None
    roi: float | None  # (V - C) / C
    margin: float | None  # (V - C) / V
    break_even_outcomes: float | None  # per month; None: never (each outcome costs more than it is worth)
    break_even_cost_per_outcome_usd: float
    at_scale: dict[str, dict[str, float | bool]] = field(default_factory=dict)  # "2x" -> value, cost, margin

    def to_json(self) -> dict[str, Any]:
        """A JSON object (non-finite numbers become null)."""
        document: dict[str, Any] = json_safe(asdict(self))
        return document


def roi(feature: str, value_per_outcome: float, baseline: Baseline) -> Roi:
    """The ROI arithmetic of one use case (see the module docstring).

    >>> from unitcost.analysis.baseline import FeatureBaseline
    >>> import datetime as dt
    >>> f = FeatureBaseline("bot", units=1000, successes=800, requests=3000, cache_hits=0,
    ...                     fully_loaded_usd=2000, layers={"model_api": 1200, "people": 800})
    >>> b = Baseline(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 31), {"bot": f}, {"model_api": 1200,
    ...              "people": 800}, {"model_api": 1.0, "people": 0.0}, True, 1, 1000.0, 0.0)
    >>> r = roi("bot", 5.0, b)
    >>> r.monthly_value_usd, r.roi, r.margin, r.variable_cost_per_outcome_usd, r.break_even_outcomes
    (4000.0, 1.0, 0.5, 1.5, 228.57142857142858)
    """
    f = baseline.features.get(feature)
    if f is None:
        successes, cost, variable = 0.0, 0.0, 0.0
    else:
        successes, cost = f.successes, f.fully_loaded_usd
        layers = f.layers or {"model_api": cost}
        variable = sum(v * baseline.variable_share.get(layer, 0.0) for layer, v in layers.items())
        variable = min(variable, cost)
    fixed = cost - variable
    value = successes * value_per_outcome
    v = variable / successes if successes else None
    at_scale: dict[str, dict[str, float | bool]] = {}
    for k in SCALES:
        value_k, cost_k = value * k, fixed + variable * k
        at_scale[f"{k:g}x"] = {
            "monthly_value_usd": value_k,
            "monthly_cost_usd": cost_k,
            "margin": (value_k - cost_k) / value_k if value_k else math.nan,
            "profitable": value_k > cost_k,
        }
    return Roi(
        feature=feature,
        value_per_outcome_usd=value_per_outcome,
        successful_outcomes=successes,
        monthly_value_usd=value,
        monthly_cost_usd=cost,
        fixed_cost_usd=fixed,
        variable_cost_per_outcome_usd=v,
        cost_per_outcome_usd=cost / successes if successes else None,
        roi=(value - cost) / cost if cost else None,
        margin=(value - cost) / value if value else None,
        break_even_outcomes=fixed / (value_per_outcome - v) if v is not None and value_per_outcome > v else None,
        break_even_cost_per_outcome_usd=value_per_outcome,
        at_scale=at_scale,
    )


def roi_per_use_case(baseline: Baseline, config: Config) -> list[Roi]:
    """ROI of every use case that has a value in the configuration and data in the baseline, in the order given
    (:func:`unknown_use_cases` names the others)."""
    return [roi(v.feature, v.value_per_outcome_usd, baseline) for v in config.value if v.feature in baseline.features]


def unknown_use_cases(baseline: Baseline, config: Config) -> list[str]:
    """Features with a ``value:`` entry but no usage in the baseline window (a typo, or no traffic yet)."""
    return [v.feature for v in config.value if v.feature not in baseline.features]

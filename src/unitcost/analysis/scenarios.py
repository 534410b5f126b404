"""Driver-based scenarios with Monte Carlo: what a month will cost under best / expected / stress cases.

A scenario file names cases; each case changes drivers of the measured baseline month
(:mod:`unitcost.analysis.baseline`). Every driver is a point value or a distribution (``triangular``,
``normal``, ``lognormal``, ``uniform``); ``samples`` draws of all drivers (independent, seeded) go through the
cost model below, giving P10 / P50 / P90 of the monthly cost per layer, of cost per request and of cost per
successful outcome. docs/review.md lists the drivers and the model; in short, per feature and model:

* units of work x ``(1 + traffic_growth_pct/100) ^ horizon_months``, plus ``new_tenants`` typical (median) tenants;
* requests per unit x ``(1 + retry_rate_pct/100)``; model calls = requests x (1 - application cache hit rate),
  that rate moved by ``app_cache_hit_pts``;
* input tokens per call x ``(1 + input_tokens_pct/100) (1 + context_tokens_pct/100) (1 - prompt_compression_pct
  /100)``, output tokens per call x ``(1 + output_tokens_pct/100)``; the cached share of input moved by
  ``cached_share_pts``; each re-priced at the baseline's own $ per token of each component, x ``(1 +
  api_price_pct/100)``;
* ``routing``: a share of a feature's calls to one model go to another (tiered routing), of which
  ``escalation_rate`` come back to the first (paying both), each escalation costing ``quality_cost_usd``;
* successes = units x (baseline success rate - ``escalation_rate_pts``/100);
* ``model_api`` = the baseline layer x (token cost / baseline token cost) (so billing differences carry over);
  ``gpu_compute`` = the baseline layer x the capacity planner's cost ratio at the pool's new load (a plan file,
  re-planned: GPUs, warm-up and purchase mix at each load) or, without one, its variable share times the load
  (``1 - v + v k``), x ``(1 + gpu_price_pct/100)`` x ``(1 - reserved.share x reserved.discount_pct/100)``;
  ``people`` plus each activity's share x ``ops_hours_pct[activity]/100``, all x ``(1 + support_burden_pct/100)``;
  every other layer ``1 - v + v k`` with ``k`` the requests
  ratio, x ``(1 + layer_growth_pct[layer]/100)``. Escalation quality costs are reported as ``quality``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from unitcost.analysis.baseline import Baseline, ModelUse
from unitcost.config import Config, load_yaml_file
from unitcost.errors import ConfigError
from unitcost.json_safe import json_safe

PERCENTILES = (10, 50, 90)
NON_LAYER_KEYS = ("quality",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Distribution(_Strict):
    """A driver's uncertainty: triangular (min, mode, max), normal (mean, sd), lognormal (mean, sd of the
    value itself), uniform (min, max)."""

    dist: Literal["triangular", "normal", "lognormal", "uniform"]
    min: float | None = None
    mode: float | None = None
    max: float | None = None
    mean: float | None = None
    sd: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _parameters(self) -> Distribution:
        need = {"triangular": ("min", "mode", "max"), "normal": ("mean", "sd"), "lognormal": ("mean", "sd"),
                "uniform": ("min", "max")}[self.dist]  # fmt: skip
        missing = [p for p in need if getattr(self, p) is None]
        if missing:
            raise ValueError(f"{self.dist} needs {', '.join(need)} (missing {', '.join(missing)})")
        if self.dist == "triangular" and not (self.min <= self.mode <= self.max):  # type: ignore[operator]
            raise ValueError("triangular needs min <= mode <= max")
        if self.dist == "lognormal" and (self.mean or 0) <= 0:
            raise ValueError("lognormal needs a positive mean")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws."""
        if self.dist == "triangular":
            assert self.min is not None and self.mode is not None and self.max is not None
            if self.min == self.max:
                return np.full(n, self.min)
            return rng.triangular(self.min, self.mode, self.max, n)
        if self.dist == "normal":
            assert self.mean is not None and self.sd is not None
            return rng.normal(self.mean, self.sd, n)
        if self.dist == "uniform":
            assert self.min is not None and self.max is not None
            return rng.uniform(self.min, self.max, n)
        assert self.mean is not None and self.sd is not None
        sigma2 = math.log1p((self.sd / self.mean) ** 2)
        return rng.lognormal(math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2), n)

    def quantile(self, q: float, rng: np.random.Generator) -> float:
        """The ``q`` quantile (by sampling: exact enough for a tornado chart)."""
        return float(np.quantile(self.sample(rng, 20_000), q))


Value = float | Distribution


class Route(_Strict):
    """Tiered routing: ``share`` of ``feature``'s calls to ``from_model`` go to ``to_model`` instead."""

    feature: str
    from_model: str
    from_provider: str | None = None  # needed only when the feature calls from_model through several providers
    to_model: str
    to_provider: str | None = None  # needed when the workspace has never called to_model
    share: Value
    escalation_rate: Value = 0.0  # of the rerouted calls, the share sent on to from_model as well
    quality_cost_usd: float = Field(default=0.0, ge=0)  # per escalation


class Reserved(_Strict):
    share: Value  # of the GPU layer committed
    discount_pct: Value


#: scalar drivers: name -> what it changes (docs/review.md has the full table)
SCALAR_DRIVERS = (
    "traffic_growth_pct",
    "new_tenants",
    "input_tokens_pct",
    "context_tokens_pct",
    "output_tokens_pct",
    "prompt_compression_pct",
    "cached_share_pts",
    "app_cache_hit_pts",
    "retry_rate_pct",
    "escalation_rate_pts",
    "api_price_pct",
    "gpu_price_pct",
    "support_burden_pct",
)


class Scenario(_Strict):
    """One named case: the drivers it changes (all default to no change)."""

    name: str
    traffic_growth_pct: Value = 0.0  # per month, compounded over horizon_months
    new_tenants: Value = 0.0
    input_tokens_pct: Value = 0.0
    context_tokens_pct: Value = 0.0
    output_tokens_pct: Value = 0.0
    prompt_compression_pct: Value = 0.0
    cached_share_pts: Value = 0.0
    app_cache_hit_pts: Value = 0.0
    retry_rate_pct: Value = 0.0
    escalation_rate_pts: Value = 0.0
    api_price_pct: Value = 0.0
    gpu_price_pct: Value = 0.0
    support_burden_pct: Value = 0.0
    layer_growth_pct: dict[str, Value] = Field(default_factory=dict)
    #: ops hours per activity (incident, release, on-call, evaluation, prompt-tuning, ...) x (1 + x/100)
    ops_hours_pct: dict[str, Value] = Field(default_factory=dict)
    routing: list[Route] = Field(default_factory=list)
    reserved: Reserved | None = None

    def drivers(self) -> dict[str, Value]:
        """Every driver of the case by a flat name (routes and layers indexed), for sampling and the tornado."""
        out: dict[str, Value] = {name: getattr(self, name) for name in SCALAR_DRIVERS}
        out.update({f"layer_growth_pct.{layer}": v for layer, v in self.layer_growth_pct.items()})
        out.update({f"ops_hours_pct.{activity}": v for activity, v in self.ops_hours_pct.items()})
        for i, route in enumerate(self.routing):
            out[f"routing.{i}.share"] = route.share
            out[f"routing.{i}.escalation_rate"] = route.escalation_rate
        if self.reserved is not None:
            out["reserved.share"] = self.reserved.share
            out["reserved.discount_pct"] = self.reserved.discount_pct
        return out


class ScenarioFile(_Strict):
    """A scenario file: the cases and how to run them."""

    horizon_months: int = Field(default=1, ge=1, le=36)
    samples: int = Field(default=5000, ge=100, le=200_000)
    seed: int = 0
    baseline_days: int = Field(default=30, ge=7, le=365)
    capacity_plan: str | None = None  # a plan file for the self-hosted pool: re-planned at each load
    tornado_scenario: str | None = None  # default: "expected" if there is one, else the first
    scenarios: list[Scenario]
    base_dir: str = Field(default=".", exclude=True)

    @model_validator(mode="after")
    def _names(self) -> ScenarioFile:
        names = [s.name for s in self.scenarios]
        if not names:
            raise ValueError("give at least one scenario")
        if len(set(names)) != len(names):
            raise ValueError("scenario names must be unique")
        if self.tornado_scenario is not None and self.tornado_scenario not in names:
            raise ValueError(f"tornado_scenario {self.tornado_scenario!r} is not one of {', '.join(names)}")
        return self


def load_scenarios(path: str | Path) -> ScenarioFile:
    """Read and validate a scenario file (errors name the file and the key)."""
    return load_yaml_file(path, ScenarioFile, "scenario file")


def draw(value: Value, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` draws of a driver value (a point value repeats)."""
    return value.sample(rng, n) if isinstance(value, Distribution) else np.full(n, float(value))


# ----------------------------------------------------------------------------------------------- the cost model


@dataclass
class Prices:
    """$ per token of each component for a model, as the baseline paid them (or the price table says)."""

    input: float
    cache_read: float
    output: float
    other_per_call: float

    @classmethod
    def of(cls, m: ModelUse) -> Prices:
        uncached = m.input_tokens - m.cache_read_tokens
        p_in = m.cost_input_usd / uncached if uncached > 0 else 0.0
        # no cache reads in the baseline: assume a cached token at half the input price (OpenAI's discount;
        # Anthropic's is 90%): conservative for cached_share_pts savings
        p_cr = m.cost_cache_read_usd / m.cache_read_tokens if m.cache_read_tokens > 0 else p_in * 0.5
        return cls(
            input=p_in,
            cache_read=p_cr,
            output=m.cost_output_usd / m.output_tokens if m.output_tokens > 0 else 0.0,
            other_per_call=m.cost_other_usd / m.calls if m.calls > 0 else 0.0,
        )


PriceResolver = Callable[[str, str | None], tuple[Prices, bool]]  # (model, provider) -> prices, is_pool


@dataclass
class Outcome:
    """Monthly figures of every sample."""

    layers: dict[str, np.ndarray]
    requests: np.ndarray
    successes: np.ndarray
    units: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """Fully loaded cost (quality costs included)."""
        return np.asarray(sum(self.layers.values()))

    @property
    def cost_per_request(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.total / self.requests

    @property
    def cost_per_outcome(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.total / self.successes


def _call_cost(m: ModelUse, p: Prices, in_mult: np.ndarray, out_mult: np.ndarray, cached_pts: np.ndarray) -> np.ndarray:
    """$ per call of model use ``m`` with tokens and cached share moved."""
    per_call_in = m.input_tokens / m.calls * in_mult if m.calls else np.zeros_like(in_mult)
    per_call_out = m.output_tokens / m.calls * out_mult if m.calls else np.zeros_like(out_mult)
    share = np.clip((m.cache_read_tokens / m.input_tokens if m.input_tokens else 0.0) + cached_pts / 100, 0, 1)
    return per_call_in * ((1 - share) * p.input + share * p.cache_read) + per_call_out * p.output + p.other_per_call


def evaluate(
    baseline: Baseline,
    d: dict[str, np.ndarray],
    scenario: Scenario,
    *,
    horizon_months: int = 1,
    resolve: PriceResolver | None = None,
    pool_cost_ratio: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Outcome:
    """The cost model over drawn drivers ``d`` (name -> array of draws; missing ones mean no change)."""
    n = len(next(iter(d.values()))) if d else 1

    def get(name: str) -> np.ndarray:
        return d.get(name, np.zeros(n))

    growth = (1 + get("traffic_growth_pct") / 100) ** horizon_months
    new_units = get("new_tenants") * baseline.median_tenant_units
    base_units = max(baseline.units, 1e-9)
    traffic = growth + new_units / base_units
    in_mult = (1 + get("input_tokens_pct") / 100) * (1 + get("context_tokens_pct") / 100)
    in_mult = in_mult * (1 - get("prompt_compression_pct") / 100)
    out_mult = 1 + get("output_tokens_pct") / 100
    price_mult = 1 + get("api_price_pct") / 100
    token_cost = np.zeros(n)
    quality = np.zeros(n)
    pool_calls = np.zeros(n)
    requests = np.zeros(n)
    successes = np.zeros(n)
    units = np.zeros(n)
    for f in baseline.features.values():
        f_units = f.units * traffic
        f_requests = f.requests * traffic * (1 + get("retry_rate_pct") / 100)
        hit = f.cache_hits / f.requests if f.requests else 0.0
        new_hit = np.clip(hit + get("app_cache_hit_pts") / 100, 0, 1)
        base_calls = f.requests - f.cache_hits
        calls_ratio = f_requests * (1 - new_hit) / base_calls if base_calls > 0 else np.zeros(n)
        rate = f.successes / f.units if f.units else 0.0
        units += f_units
        requests += f_requests
        successes += f_units * np.clip(rate - get("escalation_rate_pts") / 100, 0, 1)
        # by position: the same model may be called through two providers, or on the API and on the pool
        calls = [m.calls * calls_ratio for m in f.models]
        extra: list[tuple[ModelUse, Prices, bool, np.ndarray]] = []
        for i, route in enumerate(scenario.routing):
            if route.feature != f.feature:
                continue
            candidates = [
                j for j, m in enumerate(f.models)
                if m.model == route.from_model and (route.from_provider is None or m.provider == route.from_provider)
            ]  # fmt: skip
            if not candidates:
                raise ConfigError(f"routing: feature {f.feature!r} does not call {route.from_model!r}")
            if len(candidates) > 1:
                raise ConfigError(
                    f"routing: feature {f.feature!r} calls {route.from_model!r} through several providers "
                    f"({', '.join(f.models[j].provider for j in candidates)}); say which with from_provider"
                )
            index = candidates[0]
            source = f.models[index]
            if resolve is None:
                raise ConfigError("routing needs prices for the target model")
            moved = source.calls * calls_ratio * np.clip(get(f"routing.{i}.share"), 0, 1)
            escalated = moved * np.clip(get(f"routing.{i}.escalation_rate"), 0, 1)
            calls[index] = calls[index] - moved + escalated
            target_prices, target_pool = resolve(route.to_model, route.to_provider)
            extra.append((source, target_prices, target_pool, moved))
            quality += escalated * route.quality_cost_usd
        for j, m in enumerate(f.models):
            if m.pool:
                pool_calls += calls[j]
                continue
            token_cost += calls[j] * _call_cost(m, Prices.of(m), in_mult, out_mult, get("cached_share_pts"))
        for source, target_prices, target_pool, moved in extra:
            if target_pool:
                pool_calls += moved
            else:
                token_cost += moved * _call_cost(source, target_prices, in_mult, out_mult, get("cached_share_pts"))
    token_cost = token_cost * price_mult
    base_token = sum(f.token_cost_usd for f in baseline.features.values())
    base_pool = sum(m.calls for f in baseline.features.values() for m in f.models if m.pool)
    request_ratio = requests / max(baseline.requests, 1e-9)
    layers: dict[str, np.ndarray] = {}
    for layer, cost in baseline.layers.items():
        v = baseline.variable_share.get(layer, 0.0)
        growth_pct = get(f"layer_growth_pct.{layer}")
        if layer == "model_api":
            value = cost * (token_cost / base_token) if base_token > 0 else np.full(n, cost)
        elif layer == "gpu_compute":
            load = pool_calls / base_pool if base_pool > 0 else request_ratio
            ratio = pool_cost_ratio(load) if pool_cost_ratio is not None else 1 - v + v * load
            reserved = np.clip(get("reserved.share"), 0, 1) * get("reserved.discount_pct") / 100
            value = cost * ratio * (1 + get("gpu_price_pct") / 100) * (1 - reserved)
        elif layer == "people":
            extra_ops = np.zeros(n)
            for activity in scenario.ops_hours_pct:
                if activity not in baseline.people_by_activity:
                    known = ", ".join(sorted(baseline.people_by_activity)) or "none recorded"
                    raise ConfigError(f"ops_hours_pct: no {activity!r} hours in the baseline (activities: {known})")
                extra_ops += baseline.people_by_activity[activity] * get(f"ops_hours_pct.{activity}") / 100
            new_support = get("new_tenants") * baseline.support_per_tenant_usd  # each new tenant's support time
            value = (cost + extra_ops + new_support) * (1 + get("support_burden_pct") / 100)
        else:
            value = cost * (1 - v + v * request_ratio)
        layers[layer] = value * (1 + growth_pct / 100)
    if "model_api" not in layers and base_token > 0:
        layers["model_api"] = token_cost
    layers["quality"] = quality
    return Outcome(layers, requests, successes, units)


# -------------------------------------------------------------------------------------------- running scenarios


@dataclass(frozen=True)
class Band:
    """P10 / P50 / P90 of a figure."""

    p10: float
    p50: float
    p90: float

    @classmethod
    def of(cls, values: np.ndarray) -> Band:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(math.nan, math.nan, math.nan)
        p10, p50, p90 = np.percentile(finite, PERCENTILES)
        return cls(float(p10), float(p50), float(p90))


@dataclass
class ScenarioResult:
    """One case's distribution of monthly figures."""

    name: str
    total_usd: Band
    layers_usd: dict[str, Band]
    cost_per_request_usd: Band
    cost_per_outcome_usd: Band
    requests: Band
    successes: Band


@dataclass(frozen=True)
class TornadoBar:
    """How far one driver, from its P10 to its P90 (others at their medians), moves cost per outcome."""

    driver: str
    low_value: float
    high_value: float
    low_usd: float  # cost per successful outcome with the driver at low_value
    high_usd: float

    @property
    def swing_usd(self) -> float:
        return abs(self.high_usd - self.low_usd)


@dataclass
class ScenarioReport:
    """Every case, the baseline month and the sensitivity of one case."""

    baseline_total_usd: float
    baseline_layers_usd: dict[str, float]
    baseline_cost_per_request_usd: float
    baseline_cost_per_outcome_usd: float
    horizon_months: int
    samples: int
    results: list[ScenarioResult]
    tornado_scenario: str
    tornado_center_usd: float
    tornado: list[TornadoBar]
    capacity_replanned: bool
    window: tuple[dt.datetime, dt.datetime]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``scenarios --json`` document (docs/review.md)."""

        def band(b: Band) -> dict[str, float | None]:
            return {k: (v if math.isfinite(v) else None) for k, v in (("p10", b.p10), ("p50", b.p50), ("p90", b.p90))}

        return json_safe(
            {
                "baseline": {
                    "window": {"from": self.window[0].isoformat(), "to": self.window[1].isoformat()},
                    "monthly_cost_usd": self.baseline_total_usd,
                    "layers_usd": self.baseline_layers_usd,
                    "cost_per_request_usd": self.baseline_cost_per_request_usd,
                    "cost_per_successful_outcome_usd": self.baseline_cost_per_outcome_usd,
                },
                "horizon_months": self.horizon_months,
                "samples": self.samples,
                "capacity_replanned": self.capacity_replanned,
                "scenarios": [
                    {
                        "name": r.name,
                        "monthly_cost_usd": band(r.total_usd),
                        "layers_usd": {k: band(v) for k, v in r.layers_usd.items()},
                        "cost_per_request_usd": band(r.cost_per_request_usd),
                        "cost_per_successful_outcome_usd": band(r.cost_per_outcome_usd),
                        "requests": band(r.requests),
                        "successful_outcomes": band(r.successes),
                    }
                    for r in self.results
                ],
                "tornado": {
                    "scenario": self.tornado_scenario,
                    "metric": "cost_per_successful_outcome_usd",
                    "center_usd": self.tornado_center_usd,
                    "bars": [
                        {
                            "driver": b.driver,
                            "low_value": b.low_value,
                            "high_value": b.high_value,
                            "low_usd": b.low_usd,
                            "high_usd": b.high_usd,
                            "swing_usd": b.swing_usd,
                        }
                        for b in self.tornado
                    ],
                },
                "notes": self.notes,
            }
        )


def _median_value(value: Value, rng: np.random.Generator) -> float:
    return value.quantile(0.5, rng) if isinstance(value, Distribution) else float(value)


def tornado(
    baseline: Baseline, scenario: Scenario, rng: np.random.Generator, **model: Any
) -> tuple[float, list[TornadoBar]]:
    """Cost per successful outcome at every driver's median, and each driver's swing from P10 to P90.

    A point-valued driver that changes something swings between no change (0) and its value.
    """
    drivers = scenario.drivers()
    center = {k: np.array([_median_value(v, rng)]) for k, v in drivers.items()}
    base = float(evaluate(baseline, center, scenario, **model).cost_per_outcome[0])
    bars = []
    for name, value in drivers.items():
        if isinstance(value, Distribution):
            low, high = value.quantile(0.1, rng), value.quantile(0.9, rng)
        elif float(value) != 0.0:
            low, high = 0.0, float(value)
        else:
            continue
        at = {}
        for edge in (low, high):
            point = dict(center)
            point[name] = np.array([edge])
            at[edge] = float(evaluate(baseline, point, scenario, **model).cost_per_outcome[0])
        bars.append(TornadoBar(name, low, high, at[low], at[high]))
    bars.sort(key=lambda b: -b.swing_usd if math.isfinite(b.swing_usd) else math.inf)
    return base, bars


def run_scenarios(
    baseline: Baseline,
    spec: ScenarioFile,
    *,
    resolve: PriceResolver | None = None,
    pool_cost_ratio: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ScenarioReport:
    """Monte Carlo over every case of ``spec`` and the tornado of its tornado case."""
    model: dict[str, Any] = {
        "horizon_months": spec.horizon_months,
        "resolve": resolve,
        "pool_cost_ratio": pool_cost_ratio,
    }
    results = []
    for i, scenario in enumerate(spec.scenarios):
        rng = np.random.default_rng([spec.seed, i])
        d = {name: draw(value, rng, spec.samples) for name, value in scenario.drivers().items()}
        out = evaluate(baseline, d, scenario, **model)
        results.append(
            ScenarioResult(
                name=scenario.name,
                total_usd=Band.of(out.total),
                layers_usd={k: Band.of(v) for k, v in out.layers.items() if k not in NON_LAYER_KEYS or v.any()},
                cost_per_request_usd=Band.of(out.cost_per_request),
                cost_per_outcome_usd=Band.of(out.cost_per_outcome),
                requests=Band.of(out.requests),
                successes=Band.of(out.successes),
            )
        )
    names = [s.name for s in spec.scenarios]
    chosen = spec.tornado_scenario or ("expected" if "expected" in names else names[0])
    center, bars = tornado(baseline, spec.scenarios[names.index(chosen)], np.random.default_rng(spec.seed), **model)
    requests, successes = baseline.requests, baseline.successes
    return ScenarioReport(
        baseline_total_usd=baseline.total_usd,
        baseline_layers_usd=dict(baseline.layers),
        baseline_cost_per_request_usd=baseline.total_usd / requests if requests else math.nan,
        baseline_cost_per_outcome_usd=baseline.total_usd / successes if successes else math.nan,
        horizon_months=spec.horizon_months,
        samples=spec.samples,
        results=results,
        tornado_scenario=chosen,
        tornado_center_usd=center,
        tornado=bars,
        capacity_replanned=pool_cost_ratio is not None,
        window=(baseline.start, baseline.end),
    )


def price_resolver(baseline: Baseline, config: Config) -> PriceResolver:
    """Prices of a model by name: as the workspace paid them, else from the price table (genai-prices and
    overrides) at the end of the baseline window."""
    from unitcost.pricing.tokens import build_price_table

    def resolve(model: str, provider: str | None) -> tuple[Prices, bool]:
        for f in baseline.features.values():
            for m in f.models:
                if m.model == model and m.calls > 0 and (provider is None or m.provider == provider):
                    return Prices.of(m), m.pool
        if provider is None:
            raise ConfigError(f"routing: the workspace never called {model!r}; give to_provider so it can be priced")
        end = baseline.end
        table = build_price_table([(provider, model)], config, end - dt.timedelta(days=1), end)
        if not table.rows:
            raise ConfigError(f"routing: no price for {provider}/{model} (add one under prices.overrides)")
        r: dict[str, Any] = dict(table.rows[-1])
        per = 1e-6
        return (
            Prices(
                input=float(r["input_per_mtok"]) * per,
                cache_read=float(r.get("cache_read_per_mtok") or r["input_per_mtok"]) * per,
                output=float(r["output_per_mtok"]) * per,
                other_per_call=0.0,
            ),
            False,
        )

    return resolve

"""The plan file (``unitcost plan FILE``): workload, model, deployment, autoscaling, purchase, prices, SLOs.

Validated by pydantic; every problem is a :class:`~unitcost.errors.ConfigError` naming the file and the key.
In ``deployment``, ``autoscaling`` and ``purchase`` any field given as a list is searched: the plan expands to
the cross product of those lists (:func:`configurations`). docs/capacity.md documents every field.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from unitcost.config import load_yaml_file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tokens(_Strict):
    """A token-length distribution: ``fixed``, or ``distribution`` with its parameters, or ``trace``."""

    fixed: int | None = Field(default=None, ge=1)
    distribution: Literal["lognormal", "normal", "uniform", "trace"] | None = None
    mean: float | None = Field(default=None, gt=0)
    sd: float | None = Field(default=None, ge=0)
    min: int = Field(default=1, ge=1)
    max: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Tokens:
        if (self.fixed is None) == (self.distribution is None):
            raise ValueError("give exactly one of fixed: N or distribution: lognormal|normal|uniform|trace")
        if self.distribution in ("lognormal", "normal") and (self.mean is None or self.sd is None):
            raise ValueError(f"distribution {self.distribution} needs mean and sd")
        if self.distribution == "uniform" and self.max is None:
            raise ValueError("distribution uniform needs min and max")
        return self


class TraceSource(_Strict):
    """Replay a trace: the Azure LLM inference CSV format, or the usage table of a unitcost workspace."""

    path: str
    format: Literal["azure", "workspace"] = "azure"
    time_scale: float = Field(default=1.0, gt=0, description="2 replays twice as fast (twice the rate)")
    model: str | None = None  # workspace: only this model's calls
    feature: str | None = None  # workspace: only this feature's calls


class Arrivals(_Strict):
    """An open-loop arrival process."""

    rate_per_s: float = Field(gt=0)
    process: Literal["poisson", "gamma"] = "poisson"
    burstiness: float = Field(default=1.0, gt=0, description="coefficient of variation of inter-arrival times")
    profile: list[float] | None = Field(default=None, description="24 hourly multipliers of rate_per_s")

    @model_validator(mode="after")
    def _profile(self) -> Arrivals:
        if self.profile is not None and (len(self.profile) != 24 or min(self.profile) < 0):
            raise ValueError("profile must be 24 non-negative hourly multipliers")
        return self


class Slo(_Strict):
    """Latency objectives on the 95th percentile; any may be left out."""

    ttft_p95_s: float | None = Field(default=None, gt=0)
    tpot_p95_ms: float | None = Field(default=None, gt=0)
    e2e_p95_s: float | None = Field(default=None, gt=0)

    def merged(self, over: Slo | None) -> Slo:
        """This SLO with the fields ``over`` sets replacing its own."""
        if over is None:
            return self
        return Slo(**{**self.model_dump(), **over.model_dump(exclude_none=True)})

    def limits(self) -> list[tuple[str, float]]:
        """The objectives set, as (metric, limit) in TTFT, TPOT, end-to-end order.

        >>> Slo(ttft_p95_s=2.0, e2e_p95_s=30.0).limits()
        [('ttft_p95_s', 2.0), ('e2e_p95_s', 30.0)]
        """
        return [(name, limit) for name, limit in self.model_dump().items() if limit is not None]

    def met_by(self, values: dict[str, float]) -> bool:
        """True when every objective set is met by ``values`` (metric -> p95); a missing metric fails."""
        return all(values.get(name, math.inf) <= limit for name, limit in self.limits())

    def is_empty(self) -> bool:
        """True when no objective is set."""
        return all(v is None for v in self.model_dump().values())


class RequestClass(_Strict):
    """A class of requests (e.g. interactive chat, batch): its share, priority (higher first) and SLO."""

    name: str
    share: float = Field(gt=0, le=1)
    priority: int = 0
    slo: Slo | None = None


class Workload(_Strict):
    """Exactly one of ``trace``, ``arrivals``, ``concurrency``; token lengths; duration; classes."""

    trace: TraceSource | None = None
    arrivals: Arrivals | None = None
    concurrency: int | None = Field(default=None, ge=1)
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    duration_s: float | None = Field(default=None, gt=0)
    classes: list[RequestClass] = Field(default_factory=list)
    seed: int = 0

    @model_validator(mode="after")
    def _exactly_one(self) -> Workload:
        given = [k for k in ("trace", "arrivals", "concurrency") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of trace, arrivals, concurrency (got {', '.join(given) or 'none'})")
        if self.trace is None:
            for name in ("input_tokens", "output_tokens"):
                tokens = getattr(self, name)
                if tokens is None:
                    raise ValueError(f"{name} is required without a trace")
                if tokens.distribution == "trace":
                    raise ValueError(f"{name}: distribution trace needs a trace workload")
            if self.duration_s is None:
                raise ValueError("duration_s is required without a trace")
        if self.classes:
            total = sum(c.share for c in self.classes)
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"class shares must add up to 1 (they add up to {total:g})")
            names = [c.name for c in self.classes]
            if len(set(names)) != len(names):
                raise ValueError("class names must be unique")
        return self


class Replicas(_Strict):
    """Replica counts (scale to zero is not modelled: at least one replica)."""

    min: int | list[int] = 1
    max: int | list[int] = 1

    @model_validator(mode="after")
    def _positive(self) -> Replicas:
        for name in ("min", "max"):
            values = getattr(self, name)
            if any(v < 1 for v in (values if isinstance(values, list) else [values])):
                raise ValueError(f"replicas.{name} must be at least 1 (scale to zero is not modelled)")
        return self


class Deployment(_Strict):
    gpu: str | dict[str, Any] | list[str | dict[str, Any]]
    tensor_parallel: int | list[int] = 1
    precision: Literal["bf16", "fp8", "int4"] | list[Literal["bf16", "fp8", "int4"]] = "bf16"
    max_batch: int | list[int] = 256
    max_batched_tokens: int | list[int] = 8192
    replicas: Replicas = Field(default_factory=Replicas)


class Autoscaling(_Strict):
    policy: Literal["fixed", "utilization", "queue"] | list[Literal["fixed", "utilization", "queue"]] = "fixed"
    target_utilization: float | list[float] = 0.7
    target_queue_per_replica: float | list[float] = 1.0
    interval_s: float = Field(default=15.0, gt=0)
    warmup_s: float | list[float] = 300.0
    scale_down_after_s: float | list[float] = 600.0
    warm_pool: int | list[int] = 0
    warm_start_s: float = Field(default=30.0, ge=0)


class Purchase(_Strict):
    reserved_gpus: int | list[int] = 0
    spot_share: float | list[float] = 0.0
    spot_interruptions_per_hour: float = Field(default=0.0, ge=0)


class Availability(_Strict):
    """A GPU availability drop for the simulation: from ``at_s`` on, ``share`` of the replicas are lost."""

    at_s: float = Field(ge=0)
    share_lost: float = Field(gt=0, le=1)


class Search(_Strict):
    finalists: int = Field(default=5, ge=1, description="configurations verified by simulation")
    max_configurations: int = Field(default=20000, ge=1)


class Plan(_Strict):
    """A whole plan file."""

    name: str = "plan"
    workload: Workload
    model: str | dict[str, Any]
    deployment: Deployment
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    purchase: Purchase = Field(default_factory=Purchase)
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    slo: Slo = Field(default_factory=Slo)
    profiles: list[str] = Field(default_factory=list)
    availability: list[Availability] = Field(default_factory=list)
    search: Search = Field(default_factory=Search)
    base_dir: str = Field(default=".", exclude=True)

    def resolve(self, path: str) -> Path:
        """A path from the plan file, relative to the file's folder unless absolute."""
        p = Path(path)
        return p if p.is_absolute() else Path(self.base_dir) / p


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file.

    >>> load_plan("/nonexistent/plan.yaml")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    unitcost.errors.ConfigError: plan file /nonexistent/plan.yaml does not exist
    """
    return load_yaml_file(path, Plan, "plan file")


@dataclass(frozen=True)
class Configuration:
    """One point of the search space: every searched field fixed."""

    gpu: str
    tensor_parallel: int
    precision: str
    max_batch: int
    max_batched_tokens: int
    replicas_min: int
    replicas_max: int
    policy: str
    target_utilization: float
    target_queue_per_replica: float
    warmup_s: float
    scale_down_after_s: float
    warm_pool: int
    reserved_gpus: int
    spot_share: float

    def fields(self) -> dict[str, Any]:
        """The configuration as a flat dict (the JSON output's config fields)."""
        return dict(self.__dict__)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _gpu_key(gpu: str | dict[str, Any]) -> str:
    return gpu if isinstance(gpu, str) else str(gpu.get("name", "custom-gpu"))


def configurations(plan: Plan) -> Iterator[Configuration]:
    """Every configuration the plan's lists span (their cross product), skipping impossible ones.

    Skipped: ``replicas.min > replicas.max`` under autoscaling. The fixed policy runs ``replicas.min`` replicas
    and ignores the scaling knobs, so it is kept once whatever they are.
    """
    d, a, p = plan.deployment, plan.autoscaling, plan.purchase
    axes = itertools.product(
        [_gpu_key(g) for g in _as_list(d.gpu)],
        _as_list(d.tensor_parallel),
        _as_list(d.precision),
        _as_list(d.max_batch),
        _as_list(d.max_batched_tokens),
        _as_list(d.replicas.min),
        _as_list(d.replicas.max),
        _as_list(a.policy),
        _as_list(a.target_utilization),
        _as_list(a.target_queue_per_replica),
        _as_list(a.warmup_s),
        _as_list(a.scale_down_after_s),
        _as_list(a.warm_pool),
        _as_list(p.reserved_gpus),
        _as_list(p.spot_share),
    )
    seen: set[Configuration] = set()
    for values in axes:
        config = Configuration(*values)
        if config.policy != "fixed" and config.replicas_min > config.replicas_max:
            continue
        if config.policy == "fixed":
            # the fixed policy runs replicas_min replicas and ignores the scaling knobs
            config = dataclasses.replace(
                config,
                replicas_max=config.replicas_min,
                target_utilization=0.0,
                target_queue_per_replica=0.0,
                scale_down_after_s=0.0,
                warm_pool=0,
            )
        if config in seen:
            continue
        seen.add(config)
        yield config


def gpu_specs_inline(plan: Plan) -> dict[str, dict[str, Any]]:
    """GPUs defined inline in the plan (``gpu: {name: ..., memory_gb: ...}``), by name."""
    return {_gpu_key(g): g for g in _as_list(plan.deployment.gpu) if isinstance(g, dict)}

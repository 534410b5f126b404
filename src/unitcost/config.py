"""Settings declared once, and the ``unitcost.yaml`` file validated by pydantic.

``SETTINGS`` is the single table of global settings: the CLI builds its options
from it and a test checks that each one is documented in the README.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from unitcost.errors import ConfigError

CONFIG_FILE_NAME = "unitcost.yaml"


@dataclass(frozen=True)
class Setting:
    """A global setting: name, default, type, environment variable and help."""

    name: str
    default: str
    type: type
    env: str
    help: str

    def resolve(self, value: str | None = None) -> str:
        """Return the value given, else the environment variable, else the default."""
        if value is not None:
            return value
        return os.environ.get(self.env, self.default)


SETTINGS: tuple[Setting, ...] = (
    Setting("db", "unitcost.duckdb", str, "UNITCOST_DB", "Path of the DuckDB workspace file."),
    Setting(
        "config",
        CONFIG_FILE_NAME,
        str,
        "UNITCOST_CONFIG",
        "Path of the YAML configuration (prices, overrides); optional.",
    ),
)


def setting(name: str) -> Setting:
    """Return the declared setting called ``name``."""
    for s in SETTINGS:
        if s.name == name:
            return s
    raise KeyError(name)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PriceOverride(_Strict):
    """A price for a model genai-prices does not know, or a negotiated one (USD per million tokens)."""

    provider: str
    model: str
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cache_read_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_per_mtok: float | None = Field(default=None, ge=0)
    valid_from: dt.date | None = Field(default=None, alias="from")

    @field_validator("provider", "model")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()


class PricesConfig(_Strict):
    overrides: list[PriceOverride] = Field(default_factory=list)
    discount_pct: dict[str, float] = Field(default_factory=dict)

    @field_validator("discount_pct")
    @classmethod
    def _pct_range(cls, v: dict[str, float]) -> dict[str, float]:
        for provider, pct in v.items():
            if not 0 <= pct < 100:
                raise ValueError(f"discount for {provider!r} must be in [0, 100), got {pct}")
        return v


def _names(*names: str) -> Any:
    return Field(default_factory=lambda: list(names))


class DimensionsConfig(_Strict):
    """Which OpenTelemetry attributes carry each dimension (the ``otlp`` format and ``unitcost serve``).

    Each entry is a list of attribute names tried in order; for each name the span's own
    attributes come first, then its resource's, then the same attribute on any span of the
    same trace (the root span first). docs/formats/otlp.md lists the defaults and why.
    ``outcome`` is read from span attributes only.
    """

    tenant: list[str] = _names("tenant.id", "tenant", "app.tenant.id", "traceloop.association.properties.tenant_id")
    feature: list[str] = _names("feature", "app.feature", "traceloop.association.properties.feature")
    workflow: list[str] = _names("workflow", "app.workflow", "gen_ai.workflow.name", "traceloop.workflow.name")
    user_id: list[str] = _names(
        "enduser.id",
        "user.id",
        "gen_ai.user",
        "gen_ai.request.user",
        "llm.user",
        "traceloop.association.properties.user_id",
    )
    release: list[str] = _names("service.version")
    prompt_version: list[str] = _names("prompt.version", "app.prompt_version", "traceloop.prompt.version")
    environment: list[str] = _names("deployment.environment.name", "deployment.environment", "gen_ai.environment")
    region: list[str] = _names("cloud.region")
    outcome: list[str] = _names("outcome", "app.outcome")

    @field_validator("*")
    @classmethod
    def _attribute_names(cls, v: list[str]) -> list[str]:
        names = [n.strip() for n in v]
        if any(not n for n in names):
            raise ValueError("attribute names must not be empty")
        return names


class PeopleConfig(_Strict):
    """Loaded hourly cost per role, for labour records that give a role but no rate."""

    rates: dict[str, float] = Field(default_factory=dict)

    @field_validator("rates")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        for role, rate in v.items():
            if rate < 0:
                raise ValueError(f"rate for {role!r} cannot be negative")
        return v


LAYERS = (
    "model_api",
    "gpu_compute",
    "storage",
    "retrieval",
    "networking",
    "orchestration",
    "observability",
    "people",
    "other",
)
#: bill columns a layer rule can match (FOCUS names); ``Tags.<key>`` matches one tag
RULE_FIELDS = (
    "ServiceCategory",
    "ServiceSubcategory",
    "ServiceName",
    "ProviderName",
    "SkuId",
    "SkuMeter",
    "ResourceId",
    "ResourceType",
    "ChargeDescription",
)


class LayerRule(_Strict):
    """Bill lines matching every condition go to ``layer``; ``re:`` starts a (case-insensitive) regex."""

    layer: str
    name: str | None = None
    match: dict[str, str]

    @field_validator("layer")
    @classmethod
    def _known_layer(cls, v: str) -> str:
        if v not in LAYERS:
            raise ValueError(f"unknown layer {v!r}; layers: {', '.join(LAYERS)}")
        return v

    @field_validator("match")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("a rule needs at least one condition")
        for key in v:
            if key not in RULE_FIELDS and not key.startswith("Tags."):
                raise ValueError(f"cannot match on {key!r}; use one of {', '.join(RULE_FIELDS)} or Tags.<key>")
        return v


class LayersConfig(_Strict):
    """How bill lines map to cost-stack layers: your rules first, then the shipped defaults."""

    cost_column: Literal["EffectiveCost", "BilledCost"] = "EffectiveCost"
    rules: list[LayerRule] = Field(default_factory=list)
    use_default_rules: bool = True


DRIVERS = (
    "token_cost",
    "tokens",
    "requests",
    "gpu_seconds",
    "retrieval_queries",
    "egress_bytes",
    "successful_outcomes",
    "even",
    "fixed",
)


class AllocationConfig(_Strict):
    """How bill lines reach tenants, features and workflows.

    ``tag_keys``: per dimension, the bill tags that name its key (a tagged line goes there
    directly). ``drivers``: per layer, what untagged (shared) cost is split by.
    """

    tag_keys: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "tenant": ["tenant", "customer", "tenant_id"],
            "feature": ["feature", "app", "application"],
            "workflow": ["workflow"],
        }
    )
    drivers: dict[str, str] = Field(
        default_factory=lambda: {
            "model_api": "token_cost",
            "gpu_compute": "gpu_seconds",
            "storage": "requests",
            "retrieval": "retrieval_queries",
            "networking": "egress_bytes",
            "orchestration": "requests",
            "observability": "requests",
            "people": "requests",
            "other": "requests",
        }
    )

    #: per layer whose driver is ``fixed``: the share of each key, e.g. {storage: {acme: 3, globex: 1}}
    fixed_weights: dict[str, dict[str, float]] = Field(default_factory=dict)

    @field_validator("drivers")
    @classmethod
    def _known(cls, v: dict[str, str]) -> dict[str, str]:
        for layer, driver in v.items():
            if layer not in LAYERS:
                raise ValueError(f"unknown layer {layer!r}; layers: {', '.join(LAYERS)}")
            if driver not in DRIVERS:
                raise ValueError(f"unknown driver {driver!r} for {layer}; drivers: {', '.join(DRIVERS)}")
        return v


class PoolConfig(_Strict):
    """A self-hosted GPU pool: requests with ``serving`` equal to ``name`` run on it.

    Its cost is the bill's ``gpu_compute`` lines tagged with ``bill_tags`` (default
    ``{pool: <name>}``), or ``gpus x hours x hourly_usd_per_gpu`` when the bill has none.
    ``gpus`` also gives the capacity, so the unused part is reported as idle.
    """

    name: str
    #: GPU type, for the reports (e.g. h100-sxm, a100-80gb, l40s)
    gpu: str | None = None
    #: GPUs in the pool, or GPUs per purchase option, e.g. {reserved: 8, on_demand: 4, spot: 2}
    gpus: int | dict[str, int] | None = None
    #: USD per GPU-hour, or per purchase option (same keys as ``gpus``); used when the bill has no pool lines
    hourly_usd_per_gpu: float | dict[str, float] | None = None
    #: with no ``gpus``: capacity = the instance-hours of the pool's usage lines on the bill x this
    gpus_per_instance: int | None = Field(default=None, gt=0)
    bill_tags: dict[str, str] = Field(default_factory=dict)

    def tags(self) -> dict[str, str]:
        return self.bill_tags or {"pool": self.name}

    def gpu_count(self) -> int | None:
        """GPUs in the pool, all purchase options together."""
        if self.gpus is None:
            return None
        return self.gpus if isinstance(self.gpus, int) else sum(self.gpus.values())

    def hourly_cost(self) -> float | None:
        """USD per hour for the whole pool from the config prices, or None without them."""
        if self.gpus is None or self.hourly_usd_per_gpu is None:
            return None
        if isinstance(self.gpus, int):
            if not isinstance(self.hourly_usd_per_gpu, int | float):
                raise ValueError(f"pool {self.name}: one GPU count needs one hourly price")
            return self.gpus * float(self.hourly_usd_per_gpu)
        prices = self.hourly_usd_per_gpu
        if not isinstance(prices, dict) or set(prices) != set(self.gpus):
            raise ValueError(f"pool {self.name}: give an hourly price for each purchase option of gpus")
        return sum(n * prices[o] for o, n in self.gpus.items())

    @model_validator(mode="after")
    def _consistent(self) -> PoolConfig:
        counts = [self.gpus] if isinstance(self.gpus, int) else list((self.gpus or {}).values())
        if any(n <= 0 for n in counts):
            raise ValueError(f"pool {self.name}: GPU counts must be positive")
        self.hourly_cost()  # raises on a mismatch between counts and prices
        return self


BUDGET_SCOPES = ("tenant", "feature", "layer")


class BudgetConfig(_Strict):
    """A spending limit for a scope (everything, or one tenant, feature or layer), per month or per day."""

    name: str
    amount_usd: float = Field(gt=0)
    period: Literal["month", "day"] = "month"
    #: {} for all spend, else one of {tenant: X}, {feature: X}, {layer: X}
    scope: dict[str, str] = Field(default_factory=dict)
    #: warn when the projection reaches this share of the budget (1.0 = the budget itself)
    warn_at: float = Field(default=1.0, gt=0)

    @field_validator("scope")
    @classmethod
    def _one_scope(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > 1 or any(k not in BUDGET_SCOPES for k in v):
            raise ValueError(f"scope is {{}} or one of {', '.join(BUDGET_SCOPES)}: got {v}")
        return v


class WebhookConfig(_Strict):
    """Where alerts are posted (Slack-compatible JSON)."""

    url: str
    timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)


class AnomalyRuleConfig(_Strict):
    """Spend anomalies: cost outside the range expected from history (weekly and daily seasonality)."""

    enabled: bool = True
    grains: list[Literal["hour", "day"]] = Field(default_factory=lambda: ["day", "hour"])  # type: ignore[arg-type]
    #: robust z-score (MAD units, on log cost) beyond which a bucket is anomalous
    z: float = Field(default=4.0, gt=0)
    history_days: int = Field(default=28, ge=7)
    min_impact_usd: float = Field(default=5.0, ge=0)
    min_impact_pct: float = Field(default=10.0, ge=0)


class DriftRuleConfig(_Strict):
    """Drift of a feature's efficiency metrics: the last ``window_days`` against the ``baseline_days`` before."""

    enabled: bool = True
    window_days: int = Field(default=1, ge=1)
    baseline_days: int = Field(default=7, ge=1)
    #: minimum model calls in the window and in the baseline for a metric to be judged
    min_requests: int = Field(default=200, ge=1)
    cache_hit_drop_pts: float = Field(default=10.0, gt=0)
    tokens_per_request_rise_pct: float = Field(default=15.0, gt=0)
    retry_rate_rise_pts: float = Field(default=3.0, gt=0)
    escalation_rate_rise_pts: float = Field(default=5.0, gt=0)
    latency_p95_rise_pct: float = Field(default=25.0, gt=0)


class DeploymentRuleConfig(_Strict):
    """Deployment regressions: cost per request before and after a release or prompt version change."""

    enabled: bool = True
    #: days compared on each side of the change (the after side is cut at the evaluation time)
    window_days: int = Field(default=7, ge=1)
    min_requests: int = Field(default=200, ge=10)
    #: two-sided significance level of the test
    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    #: changes smaller than this (in %) are not reported, however significant
    min_effect_pct: float = Field(default=5.0, ge=0)


class MetricsConfig(_Strict):
    """The Prometheus ``/metrics`` endpoint of ``unitcost serve``."""

    #: at most this many label values per dimension (the rest are summed under "__other__")
    max_label_values: int = Field(default=20, ge=1, le=1000)


class AlertsConfig(_Strict):
    """The ``alerts:`` section: rules, delivery and metrics; every rule has working defaults."""

    anomaly: AnomalyRuleConfig = Field(default_factory=AnomalyRuleConfig)
    drift: DriftRuleConfig = Field(default_factory=DriftRuleConfig)
    deployment: DeploymentRuleConfig = Field(default_factory=DeploymentRuleConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    #: how often ``unitcost serve`` evaluates the rules (seconds; 0 turns it off)
    watch_interval_s: float = Field(default=300.0, ge=0)


class ExplainConfig(_Strict):
    """The ``explain:`` section."""

    #: the segments whose shares make the ``mix`` driver
    mix: list[str] = Field(default_factory=lambda: ["feature", "model"])


class ValueConfig(_Strict):
    """What one successful outcome of a use case (feature) is worth: exactly one way of saying it.

    ``per_outcome_usd`` ($ per resolved ticket, per qualified lead, ...), or ``minutes_saved_per_outcome`` x
    ``hourly_rate_usd`` (the loaded cost of the person whose time it saves).
    """

    feature: str
    per_outcome_usd: float | None = Field(default=None, ge=0)
    minutes_saved_per_outcome: float | None = Field(default=None, ge=0)
    hourly_rate_usd: float | None = Field(default=None, ge=0)
    note: str = ""

    @model_validator(mode="after")
    def _one_way(self) -> ValueConfig:
        minutes = self.minutes_saved_per_outcome is not None or self.hourly_rate_usd is not None
        if (self.per_outcome_usd is not None) == minutes:
            raise ValueError("give per_outcome_usd, or minutes_saved_per_outcome with hourly_rate_usd")
        if minutes and (self.minutes_saved_per_outcome is None or self.hourly_rate_usd is None):
            raise ValueError("minutes_saved_per_outcome needs hourly_rate_usd (and the other way round)")
        return self

    @property
    def value_per_outcome_usd(self) -> float:
        """$ per successful outcome."""
        if self.per_outcome_usd is not None:
            return self.per_outcome_usd
        assert self.minutes_saved_per_outcome is not None and self.hourly_rate_usd is not None
        return self.minutes_saved_per_outcome / 60 * self.hourly_rate_usd


class Config(_Strict):
    """The whole ``unitcost.yaml``."""

    currency: str = "USD"
    prices: PricesConfig = Field(default_factory=PricesConfig)
    dimensions: DimensionsConfig = Field(default_factory=DimensionsConfig)
    people: PeopleConfig = Field(default_factory=PeopleConfig)
    layers: LayersConfig = Field(default_factory=LayersConfig)
    allocation: AllocationConfig = Field(default_factory=AllocationConfig)
    pools: list[PoolConfig] = Field(default_factory=list)
    #: share GPU pools' idle cost over their users (by GPU-seconds) instead of reporting it apart
    share_idle: bool = False
    #: USD per one unit of each other currency on the bill, e.g. {EUR: 1.08}
    currency_rates: dict[str, float] = Field(default_factory=dict)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    #: value per successful outcome of each use case, for ROI and break-even
    value: list[ValueConfig] = Field(default_factory=list)

    @field_validator("currency")
    @classmethod
    def _usd_only(cls, v: str) -> str:
        if v.upper() != "USD":
            raise ValueError("only USD is supported for token prices (genai-prices quotes USD)")
        return "USD"


M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read a YAML file into a pydantic model; every problem is a ConfigError naming the file and the key."""
    try:
        raw: Any = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            ".".join(str(x) for x in err["loc"])
            + (": " if err["loc"] else "")
            + err["msg"].removeprefix("Value error, ")
            for err in e.errors(include_url=False)
        )
        raise ConfigError(f"{path}: {problems}") from e


def load_yaml_file(path: str | os.PathLike[str], model: type[M], what: str) -> M:
    """Read a named YAML file (a plan, a scenario file) into ``model``, remembering its folder in ``base_dir``
    (paths inside the file are relative to it); a missing file is a ConfigError naming ``what`` it is."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{what} {p} does not exist")
    loaded = load_yaml_model(p, model)
    if "base_dir" in type(loaded).model_fields:
        loaded.base_dir = str(p.parent)  # type: ignore[attr-defined]
    return loaded


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Return the configuration read from ``path``, or defaults when no file exists.

    An explicitly named file that is missing is an error; the default
    ``unitcost.yaml`` in the working directory is optional.

    >>> load_config("/nonexistent/none.yaml")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    unitcost.errors.ConfigError: config file /nonexistent/none.yaml does not exist
    """
    explicit = path is not None or setting("config").resolve() != CONFIG_FILE_NAME
    p = Path(setting("config").resolve(None if path is None else str(path)))
    if not p.exists():
        if explicit:
            raise ConfigError(f"config file {p} does not exist")
        return Config()
    return load_yaml_model(p, Config)

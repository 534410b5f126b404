"""The shipped model, GPU and GPU-price catalogs of the capacity planner, and the byte arithmetic built on them.

Three JSON files ship as package data under ``unitcost/capacity/data``:

- ``models.json``: transformer shapes from each model's Hugging Face ``config.json`` (see :func:`load_model`);
- ``gpus.json``: datasheet figures, dense (not 2:4-sparse) peaks (see :func:`load_gpu`);
- ``gpu_prices.json``: $/GPU-hour per purchase option, each with its date and source (see :func:`gpu_price_per_hour`).

Every number carries a ``source``; ``docs/capacity-catalog.md`` lists them. A plan can name a catalog key or give the
same fields inline, and can override any price.

>>> model = load_model("llama-3.1-8b")
>>> model.layers, model.kv_heads, model.head_dim
(32, 8, 128)
>>> kv_bytes_per_token(model)
131072
>>> gpu_price_per_hour("h100-sxm", "on_demand")
6.88
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from unitcost.capacity.types import GpuSpec, ModelSpec
from unitcost.errors import ConfigError, InvalidOptionError

PRICE_OPTIONS: tuple[str, ...] = ("on_demand", "reserved", "spot")
"""Purchase options a GPU price is given for: pay as you go, 1-year commitment, interruptible."""

BYTES_PER_VALUE: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "fp4": 0.5,
}
"""Bytes per stored weight or cache value. 4-bit formats count 0.5 byte and ignore their per-group scales
(about 0.03 byte per weight at group size 64 with FP16 scales): a deliberate simplification, under 7% of the weights."""

_DATA = "data"


# --------------------------------------------------------------------------------------------------- the JSON files
@cache
def _read(filename: str) -> dict[str, Any]:
    text = resources.files("unitcost.capacity").joinpath(_DATA, filename).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _models() -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = _read("models.json")["models"]
    return models


def _gpus() -> dict[str, dict[str, Any]]:
    gpus: dict[str, dict[str, Any]] = _read("gpus.json")["gpus"]
    return gpus


def _prices() -> dict[str, dict[str, Any]]:
    prices: dict[str, dict[str, Any]] = _read("gpu_prices.json")["prices"]
    return prices


def _unknown(kind: str, name: str, known: Iterable[str]) -> InvalidOptionError:
    """An error for an unknown key that suggests the closest known one and lists them all."""
    known = sorted(known)
    wanted = _key(name)
    # A key the name starts (e.g. 'h100' -> 'h100-pcie', 'h100-sxm') beats difflib's nearest spelling ('h200').
    close = [k for k in known if k.startswith(wanted)] or difflib.get_close_matches(wanted, known, n=1, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return InvalidOptionError(f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})")


def _key(name: str) -> str:
    return name.strip().lower()


def _validation_message(what: str, error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(fields)"
        parts.append(f"field {field!r}: {item['msg']}")
    return f"{what}: " + "; ".join(parts)


def model_keys() -> list[str]:
    """Return the catalog's model keys, sorted.

    >>> "llama-3.1-70b" in model_keys()
    True
    """
    return sorted(_models())


def gpu_keys() -> list[str]:
    """Return the catalog's GPU keys, sorted.

    >>> gpu_keys()[:3]
    ['a100-40gb', 'a100-80gb', 'b200']
    """
    return sorted(_gpus())


# --------------------------------------------------------------------------------------------------------- models
class ModelFields(BaseModel):
    """A model's shape as a plan file or the catalog gives it; validated before it becomes a :class:`ModelSpec`."""

    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    display_name: str = ""
    layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    attention_heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    parameters: float = Field(gt=0)
    active_parameters: float | None = Field(default=None, gt=0)
    intermediate_size: int | None = Field(default=None, gt=0)
    vocab_size: int = Field(default=128256, gt=0)
    experts: int | None = Field(default=None, gt=0)
    experts_per_token: int | None = Field(default=None, gt=0)
    attention_bias: bool = False
    tied_embeddings: bool = False
    parameters_published: float | None = Field(default=None, gt=0)
    active_parameters_published: float | None = Field(default=None, gt=0)
    source: str = ""
    verified_via: list[str] = Field(default_factory=list)
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ModelFields:
        if self.attention_heads % self.kv_heads:
            raise ValueError(f"kv_heads ({self.kv_heads}) must divide attention_heads ({self.attention_heads})")
        if self.active_parameters is not None and self.active_parameters > self.parameters:
            raise ValueError("active_parameters cannot exceed parameters")
        if (self.experts is None) != (self.experts_per_token is None):
            raise ValueError("give experts and experts_per_token together (mixture of experts) or neither")
        if self.experts is not None and self.experts_per_token is not None and self.experts_per_token > self.experts:
            raise ValueError("experts_per_token cannot exceed experts")
        return self

    def to_spec(self) -> ModelSpec:
        """Return the :class:`ModelSpec` the performance model uses (``active_parameters`` defaults to all)."""
        active = self.active_parameters if self.active_parameters is not None else self.parameters
        return ModelSpec(
            name=self.name,
            layers=self.layers,
            hidden_size=self.hidden_size,
            attention_heads=self.attention_heads,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
            parameters=float(self.parameters),
            active_parameters=float(active),
            vocab_size=self.vocab_size,
        )


def model_fields(name: str) -> ModelFields:
    """Return every field the catalog holds for model ``name`` (shape, MoE, published counts, source).

    >>> model_fields("mixtral-8x7b").experts_per_token
    2
    """
    key = _key(name)
    try:
        raw = _models()[key]
    except KeyError:
        raise _unknown("model", name, _models()) from None
    return ModelFields.model_validate({**raw, "name": key})


def load_model(name_or_fields: str | Mapping[str, Any] | ModelSpec) -> ModelSpec:
    """Return a :class:`ModelSpec` from a catalog key or from the same fields given inline.

    Inline fields need ``layers``, ``hidden_size``, ``attention_heads``, ``kv_heads``, ``head_dim`` and
    ``parameters``; ``active_parameters`` defaults to ``parameters``. A bad field raises :class:`ConfigError`
    naming it; an unknown key raises :class:`InvalidOptionError` suggesting the closest one.

    >>> load_model("qwen-2.5-7b").kv_heads
    4
    >>> spec = load_model({"name": "tiny", "layers": 2, "hidden_size": 64, "attention_heads": 4,
    ...                    "kv_heads": 2, "head_dim": 16, "parameters": 1e6})
    >>> spec.active_parameters
    1000000.0
    >>> load_model({"layers": 2})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    unitcost.errors.ConfigError: model 'custom': field 'hidden_size': Field required; ...
    """
    if isinstance(name_or_fields, ModelSpec):
        return name_or_fields
    if isinstance(name_or_fields, str):
        return model_fields(name_or_fields).to_spec()
    label = str(name_or_fields.get("name", "custom"))
    try:
        return ModelFields.model_validate(dict(name_or_fields)).to_spec()
    except ValidationError as error:
        raise ConfigError(_validation_message(f"model {label!r}", error)) from None


# ----------------------------------------------------------------------------------------------------------- GPUs
class GpuFields(BaseModel):
    """A GPU's datasheet figures as a plan file or the catalog gives them; validated before they become a GpuSpec.

    ``interconnect_gb_s`` is the vendor's per-GPU figure, which adds both directions (NVLink 4: 900 GB/s, PCIe Gen5
    x16: 128 GB/s); the planner uses one direction, ``interconnect_gb_s_per_direction``, half of it unless given.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    display_name: str = ""
    memory_gb: float = Field(gt=0)
    hbm_bandwidth_tb_s: float = Field(gt=0)
    peak_tflops_dense: dict[str, float]
    interconnect_gb_s: float | None = Field(default=None, gt=0)
    interconnect_gb_s_per_direction: float | None = Field(default=None, gt=0)
    interconnect: str = ""
    architecture: str = ""
    memory_type: str = ""
    datasheet_sparse_tflops: dict[str, float] = Field(default_factory=dict)
    source: str = ""
    datasheet_note: str = ""
    verified_via: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> GpuFields:
        if "bf16" not in self.peak_tflops_dense:
            raise ValueError("peak_tflops_dense needs at least 'bf16' (dense TFLOP/s)")
        bad = sorted(p for p in self.peak_tflops_dense if p not in BYTES_PER_VALUE)
        if bad:
            raise ValueError(f"unknown precision(s) {bad} in peak_tflops_dense (known: {', '.join(BYTES_PER_VALUE)})")
        if any(v <= 0 for v in self.peak_tflops_dense.values()):
            raise ValueError("peak_tflops_dense values must be > 0")
        if self.interconnect_gb_s is None and self.interconnect_gb_s_per_direction is None:
            raise ValueError(
                "give interconnect_gb_s (vendor figure, both directions) or interconnect_gb_s_per_direction"
            )
        return self

    def to_spec(self) -> GpuSpec:
        """Return the :class:`GpuSpec` in bytes, bytes/s and FLOP/s."""
        per_direction = self.interconnect_gb_s_per_direction
        if per_direction is None:
            assert self.interconnect_gb_s is not None  # the validator guarantees one of the two
            per_direction = self.interconnect_gb_s / 2
        return GpuSpec(
            name=self.name,
            memory_bytes=self.memory_gb * 1e9,
            hbm_bandwidth_bytes_s=self.hbm_bandwidth_tb_s * 1e12,
            peak_flops={p: v * 1e12 for p, v in self.peak_tflops_dense.items()},
            interconnect_bytes_s=per_direction * 1e9,
            source=self.source,
        )


def gpu_fields(name: str) -> GpuFields:
    """Return every field the catalog holds for GPU ``name`` (datasheet figures, notes, source).

    >>> gpu_fields("h100-sxm").datasheet_sparse_tflops["fp8"]
    3958.0
    """
    key = _key(name)
    try:
        raw = _gpus()[key]
    except KeyError:
        raise _unknown("GPU", name, _gpus()) from None
    return GpuFields.model_validate({**raw, "name": key})


def load_gpu(name_or_fields: str | Mapping[str, Any] | GpuSpec) -> GpuSpec:
    """Return a :class:`GpuSpec` from a catalog key or from the same fields given inline.

    Inline fields need ``memory_gb`` (decimal GB), ``hbm_bandwidth_tb_s``, ``peak_tflops_dense`` (with ``bf16``)
    and ``interconnect_gb_s`` (or ``interconnect_gb_s_per_direction``).

    >>> gpu = load_gpu("h100-sxm")
    >>> gpu.memory_bytes, gpu.hbm_bandwidth_bytes_s, gpu.interconnect_bytes_s
    (80000000000.0, 3350000000000.0, 450000000000.0)
    >>> gpu.peak_flops["fp8"]
    1979000000000000.0
    >>> load_gpu("h100")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    unitcost.errors.InvalidOptionError: unknown GPU 'h100'; did you mean 'h100-pcie' or 'h100-sxm'? (known: ...)
    """
    if isinstance(name_or_fields, GpuSpec):
        return name_or_fields
    if isinstance(name_or_fields, str):
        return gpu_fields(name_or_fields).to_spec()
    label = str(name_or_fields.get("name", "custom"))
    try:
        return GpuFields.model_validate(dict(name_or_fields)).to_spec()
    except ValidationError as error:
        raise ConfigError(_validation_message(f"GPU {label!r}", error)) from None


# --------------------------------------------------------------------------------------------------------- prices
def price_entry(gpu: str, option: str) -> dict[str, Any]:
    """Return the shipped price entry (``price``, ``as_of``, ``source``, ``derived``, ``note``) for a GPU and option.

    >>> price_entry("l4", "spot")["derived"]
    False
    """
    opt = _check_option(option)
    key = _key(gpu)
    prices = _prices()
    if key not in prices:
        raise _unknown("GPU", gpu, set(prices) | set(_gpus()))
    entry: dict[str, Any] | None = prices[key].get(opt)
    if entry is None:
        raise InvalidOptionError(f"no shipped {opt} price for GPU {key!r}; give one under prices: in the plan file")
    return entry


def _check_option(option: str) -> str:
    opt = _key(option).replace("-", "_")
    if opt not in PRICE_OPTIONS:
        raise _unknown("purchase option", option, PRICE_OPTIONS)
    return opt


def _override_price(gpu: str, value: Any) -> float:
    raw = value.get("price") if isinstance(value, Mapping) else value
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise ConfigError(f"prices: {gpu!r}: a price must be a number >= 0 (USD per GPU-hour), got {raw!r}")
    return float(raw)


def gpu_price_per_hour(gpu: str, option: str, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> float:
    """Return USD per GPU-hour for ``gpu`` bought as ``option`` (``on_demand``, ``reserved`` or ``spot``).

    ``overrides`` is shaped ``{gpu: {option: price}}`` (the plan file's ``prices:``); a price there wins over the
    catalog and may name a GPU the catalog does not price. An unknown option or GPU raises
    :class:`InvalidOptionError`.

    >>> gpu_price_per_hour("a100-80gb", "spot")
    1.164
    >>> gpu_price_per_hour("a100-80gb", "spot", overrides={"a100-80gb": {"spot": 0.9}})
    0.9
    >>> gpu_price_per_hour("a100-80gb", "reservd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    unitcost.errors.InvalidOptionError: unknown purchase option 'reservd'; did you mean 'reserved'? ...
    """
    opt = _check_option(option)
    key = _key(gpu)
    if overrides:
        for name, options in overrides.items():
            if _key(name) != key:
                continue
            if not isinstance(options, Mapping):
                raise ConfigError(f"prices: {name!r} must map purchase options to prices, got {options!r}")
            for option_name, value in options.items():
                if _check_option(str(option_name)) == opt:
                    return _override_price(name, value)
    return float(price_entry(key, opt)["price"])


# ------------------------------------------------------------------------------------------------ bytes and tables
def weight_bytes(model: str | Mapping[str, Any] | ModelSpec, precision: str = "bf16") -> float:
    """Return the bytes the model's weights take at ``precision``: parameters x bytes per parameter.

    bf16/fp16 2, fp8/int8 1, int4/fp4 0.5 (group scales ignored, see :data:`BYTES_PER_VALUE`).

    >>> weight_bytes("llama-3.1-8b")
    16060522496.0
    >>> weight_bytes("llama-3.1-8b", "int4") / 1e9
    4.015130624
    """
    spec = load_model(model)
    return spec.parameters * _bytes_per_value(precision)


def kv_bytes_per_token(model: str | Mapping[str, Any] | ModelSpec, kv_precision: str = "bf16") -> int:
    """Return the KV-cache bytes one token takes: 2 (K and V) x layers x kv_heads x head_dim x bytes per value.

    >>> kv_bytes_per_token("llama-3.1-8b")  # 2 * 32 * 8 * 128 * 2
    131072
    >>> kv_bytes_per_token("llama-3.1-70b", "fp8")  # 2 * 80 * 8 * 128 * 1
    163840
    """
    spec = load_model(model)
    return round(2 * spec.layers * spec.kv_heads * spec.head_dim * _bytes_per_value(kv_precision))


def _bytes_per_value(precision: str) -> float:
    try:
        return BYTES_PER_VALUE[_key(precision)]
    except KeyError:
        raise _unknown("precision", precision, BYTES_PER_VALUE) from None


def catalog_table() -> dict[str, list[dict[str, Any]]]:
    """Return the catalogs as rows for the docs: ``{"models": [...], "gpus": [...], "prices": [...]}``.

    >>> rows = catalog_table()
    >>> rows["models"][0]["key"], rows["gpus"][0]["key"], rows["prices"][0]["option"]
    ('llama-3.1-8b', 'a100-40gb', 'on_demand')
    """
    models: list[dict[str, Any]] = []
    for key in model_keys():
        m = model_fields(key)
        models.append(
            {
                "key": key,
                "layers": m.layers,
                "hidden_size": m.hidden_size,
                "attention_heads": m.attention_heads,
                "kv_heads": m.kv_heads,
                "head_dim": m.head_dim,
                "parameters_b": round(m.parameters / 1e9, 2),
                "active_parameters_b": round((m.active_parameters or m.parameters) / 1e9, 2),
                "kv_bytes_per_token_bf16": kv_bytes_per_token(key),
                "source": m.source,
            }
        )
    models.sort(key=lambda r: (r["key"].split("-")[0], r["parameters_b"], r["key"]))
    gpus: list[dict[str, Any]] = []
    for key in gpu_keys():
        g = gpu_fields(key)
        gpus.append(
            {
                "key": key,
                "memory_gb": g.memory_gb,
                "hbm_bandwidth_tb_s": g.hbm_bandwidth_tb_s,
                "bf16_tflops": g.peak_tflops_dense["bf16"],
                "fp8_tflops": g.peak_tflops_dense.get("fp8"),
                "interconnect": g.interconnect,
                "interconnect_gb_s": g.interconnect_gb_s,
                "source": g.source,
            }
        )
    prices: list[dict[str, Any]] = []
    for key in sorted(_prices()):
        for opt in PRICE_OPTIONS:
            entry = _prices()[key].get(opt)
            if entry is not None:
                prices.append(
                    {
                        "gpu": key,
                        "option": opt,
                        "usd_per_hour": entry["price"],
                        "as_of": entry["as_of"],
                        "derived": bool(entry.get("derived", False)),
                        "source": entry["source"],
                    }
                )
    return {"models": models, "gpus": gpus, "prices": prices}

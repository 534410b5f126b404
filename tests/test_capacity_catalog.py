"""The shipped model, GPU and price catalogs: present, self-consistent, sourced, and loaded with clear errors."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unitcost.capacity.catalog import (
    PRICE_OPTIONS,
    catalog_table,
    gpu_fields,
    gpu_keys,
    gpu_price_per_hour,
    kv_bytes_per_token,
    load_gpu,
    load_model,
    model_fields,
    model_keys,
    price_entry,
    weight_bytes,
)
from unitcost.capacity.types import GpuSpec, ModelSpec
from unitcost.errors import ConfigError, InvalidOptionError, UnitcostError

DOC = Path(__file__).resolve().parents[1] / "docs" / "capacity-catalog.md"

REQUIRED_MODELS = [
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.3-70b",
    "llama-3.1-405b",
    "mistral-7b",
    "mixtral-8x7b",
    "mixtral-8x22b",
    "qwen-2.5-7b",
    "qwen-2.5-14b",
    "qwen-2.5-32b",
    "qwen-2.5-72b",
]
REQUIRED_GPUS = ["h100-sxm", "h100-pcie", "h200", "a100-80gb", "a100-40gb", "l40s", "l4"]

# Models whose head_dim is set apart from hidden_size / attention_heads (e.g. Mistral-Nemo 12B: 5120 hidden,
# 32 heads of 128; Qwen3-32B: 5120 hidden, 64 heads of 128). None of the shipped models is one today; a new
# entry that is must be listed here on purpose.
HEAD_DIM_EXCEPTIONS: set[str] = set()

# Model card / announcement totals, typed in by hand from the sources, to catch a typo in `parameters`.
PUBLISHED_TOTAL = {
    "llama-3.1-8b": 8.0e9,
    "llama-3.1-70b": 70e9,
    "llama-3.3-70b": 70e9,
    "llama-3.1-405b": 405e9,
    "mistral-7b": 7.25e9,
    "mixtral-8x7b": 46.7e9,
    "mixtral-8x22b": 141e9,
    "qwen-2.5-7b": 7.61e9,
    "qwen-2.5-14b": 14.7e9,
    "qwen-2.5-32b": 32.5e9,
    "qwen-2.5-72b": 72.7e9,
}
PUBLISHED_ACTIVE = {"mixtral-8x7b": 12.9e9, "mixtral-8x22b": 39e9}


def _raw(filename: str) -> dict[str, Any]:
    text = resources.files("unitcost.capacity").joinpath("data", filename).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _estimate_parameters(key: str, active: bool = False) -> float:
    """Weights from the shape alone, without norms, biases or router (a few parts per thousand at most)."""
    m = model_fields(key)
    assert m.intermediate_size is not None
    hidden, layers = m.hidden_size, m.layers
    attention = hidden * m.head_dim * (2 * m.attention_heads + 2 * m.kv_heads)  # q, o and k, v projections
    experts = (m.experts_per_token if active else m.experts) or 1
    mlp = 3 * hidden * m.intermediate_size * experts  # gate, up, down per expert
    embeddings = m.vocab_size * hidden * (1 if m.tied_embeddings else 2)
    return embeddings + layers * (attention + mlp)


# ----------------------------------------------------------------------------------------------------- models
def test_required_model_keys_present() -> None:
    assert [k for k in REQUIRED_MODELS if k not in model_keys()] == []


@pytest.mark.parametrize("key", REQUIRED_MODELS)
def test_model_loads_with_source(key: str) -> None:
    spec = load_model(key)
    fields = model_fields(key)
    assert isinstance(spec, ModelSpec) and spec.name == key
    assert fields.source.startswith("https://huggingface.co/") and fields.source.endswith("config.json")
    assert fields.verified_via, "say which stored copies the numbers were checked against"
    assert spec.attention_heads % spec.kv_heads == 0


@pytest.mark.parametrize("key", REQUIRED_MODELS)
def test_hidden_size_is_heads_times_head_dim(key: str) -> None:
    m = load_model(key)
    holds = m.hidden_size == m.attention_heads * m.head_dim
    assert holds != (key in HEAD_DIM_EXCEPTIONS)


@pytest.mark.parametrize("key", REQUIRED_MODELS)
def test_parameter_count_matches_the_shape(key: str) -> None:
    m = load_model(key)
    assert _estimate_parameters(key) == pytest.approx(m.parameters, rel=0.03)
    assert _estimate_parameters(key, active=True) == pytest.approx(m.active_parameters, rel=0.03)
    assert m.parameters == pytest.approx(PUBLISHED_TOTAL[key], rel=0.03)
    assert model_fields(key).parameters_published == pytest.approx(PUBLISHED_TOTAL[key], rel=0.03)


@pytest.mark.parametrize("key", REQUIRED_MODELS)
def test_active_parameters_below_total_only_for_moe(key: str) -> None:
    m, fields = load_model(key), model_fields(key)
    if fields.experts:
        assert fields.experts_per_token is not None and fields.experts_per_token < fields.experts
        assert m.active_parameters < m.parameters
        assert m.active_parameters == pytest.approx(PUBLISHED_ACTIVE[key], rel=0.03)
    else:
        assert m.active_parameters == m.parameters


def test_llama_33_has_the_llama_31_70b_shape() -> None:
    a, b = load_model("llama-3.3-70b"), load_model("llama-3.1-70b")
    assert (a.layers, a.hidden_size, a.kv_heads, a.parameters) == (b.layers, b.hidden_size, b.kv_heads, b.parameters)


def test_unknown_model_suggests_closest_key_and_lists_known() -> None:
    with pytest.raises(InvalidOptionError) as err:
        load_model("llama-3.1-8")
    message = str(err.value)
    assert "did you mean 'llama-3.1-8b'" in message and "qwen-2.5-72b" in message
    assert isinstance(err.value, ValueError) and isinstance(err.value, UnitcostError)


def test_model_keys_are_case_insensitive() -> None:
    assert load_model(" Mixtral-8x7B ").name == "mixtral-8x7b"


def test_inline_model_defaults_active_to_total() -> None:
    spec = load_model(
        {
            "layers": 4,
            "hidden_size": 256,
            "attention_heads": 8,
            "kv_heads": 2,
            "head_dim": 32,
            "parameters": 5e7,
            "vocab_size": 32000,
        }
    )
    assert spec.name == "custom" and spec.active_parameters == 5e7 and spec.vocab_size == 32000


def test_inline_model_may_decouple_head_dim() -> None:
    nemo = load_model(
        {
            "name": "mistral-nemo",
            "layers": 40,
            "hidden_size": 5120,
            "attention_heads": 32,
            "kv_heads": 8,
            "head_dim": 128,
            "parameters": 12.2e9,
        }
    )
    assert nemo.hidden_size != nemo.attention_heads * nemo.head_dim
    assert kv_bytes_per_token(nemo) == 2 * 40 * 8 * 128 * 2


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"layers": 32, "hidden_size": 4096, "attention_heads": 32, "kv_heads": 8, "head_dim": 128}, "parameters"),
        ({"hidden_size": 4096, "attention_heads": 32, "kv_heads": 8, "head_dim": 128, "parameters": 1e9}, "layers"),
        (
            {"layers": 0, "hidden_size": 1, "attention_heads": 1, "kv_heads": 1, "head_dim": 1, "parameters": 1},
            "layers",
        ),
        (
            {"layers": 1, "hidden_size": 1, "attention_heads": 1, "kv_head": 1, "head_dim": 1, "parameters": 1},
            "kv_head",
        ),
    ],
)
def test_inline_model_error_names_the_field(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=f"field '{named}'"):
        load_model({"name": "mine", **fields})


def test_inline_model_rejects_inconsistent_shapes() -> None:
    base = {"layers": 2, "hidden_size": 64, "attention_heads": 8, "kv_heads": 3, "head_dim": 8, "parameters": 1e6}
    with pytest.raises(ConfigError, match="kv_heads"):
        load_model(base)
    with pytest.raises(ConfigError, match="active_parameters"):
        load_model({**base, "kv_heads": 2, "active_parameters": 2e6})
    with pytest.raises(ConfigError, match="experts"):
        load_model({**base, "kv_heads": 2, "experts": 8})


def test_model_spec_passes_through() -> None:
    spec = load_model("mistral-7b")
    assert load_model(spec) is spec


# ------------------------------------------------------------------------------------------------ byte counts
@pytest.mark.parametrize(
    ("key", "precision", "expected"),
    [
        ("llama-3.1-8b", "bf16", 131072),  # 2 * 32 layers * 8 kv heads * 128 * 2 bytes
        ("llama-3.1-8b", "fp8", 65536),
        ("llama-3.1-8b", "int4", 32768),
        ("llama-3.1-70b", "bf16", 327680),  # 2 * 80 * 8 * 128 * 2
        ("llama-3.1-405b", "bf16", 516096),  # 2 * 126 * 8 * 128 * 2
        ("mixtral-8x7b", "bf16", 131072),  # 2 * 32 * 8 * 128 * 2
        ("qwen-2.5-7b", "bf16", 57344),  # 2 * 28 * 4 * 128 * 2
        ("qwen-2.5-72b", "fp16", 327680),  # 2 * 80 * 8 * 128 * 2
    ],
)
def test_kv_bytes_per_token_hand_values(key: str, precision: str, expected: int) -> None:
    assert kv_bytes_per_token(key, precision) == expected


def test_weight_bytes_hand_values() -> None:
    n = 8_030_261_248  # Llama 3.1 8B: 2 * 128256 * 4096 + 32 * (50331648 + 176160768 + 8192) + 4096
    assert load_model("llama-3.1-8b").parameters == n
    assert weight_bytes("llama-3.1-8b") == 2 * n
    assert weight_bytes("llama-3.1-8b", "fp8") == n
    assert weight_bytes("llama-3.1-8b", "int4") == n / 2
    assert weight_bytes("mixtral-8x7b") == 2 * load_model("mixtral-8x7b").parameters  # all experts stay in memory


def test_unknown_precision_suggests() -> None:
    with pytest.raises(InvalidOptionError, match="did you mean 'bf16'"):
        kv_bytes_per_token("llama-3.1-8b", "bf61")


@given(
    layers=st.integers(1, 200),
    kv_heads=st.integers(1, 64),
    head_dim=st.sampled_from([64, 80, 96, 128, 256]),
)
def test_kv_bytes_scale_with_shape_and_precision(layers: int, kv_heads: int, head_dim: int) -> None:
    spec = ModelSpec("p", layers, kv_heads * head_dim, kv_heads, kv_heads, head_dim, 1e9, 1e9)
    bf16 = kv_bytes_per_token(spec)
    assert bf16 == 4 * layers * kv_heads * head_dim
    assert kv_bytes_per_token(spec, "fp8") * 2 == bf16 == kv_bytes_per_token(spec, "fp32") // 2
    doubled = ModelSpec("p", 2 * layers, kv_heads * head_dim, kv_heads, kv_heads, head_dim, 1e9, 1e9)
    assert kv_bytes_per_token(doubled) == 2 * bf16


# ------------------------------------------------------------------------------------------------------- GPUs
def test_required_gpu_keys_present() -> None:
    assert [k for k in REQUIRED_GPUS if k not in gpu_keys()] == []


@pytest.mark.parametrize("key", sorted(_raw("gpus.json")["gpus"]))
def test_gpu_sourced_and_dense(key: str) -> None:
    g = gpu_fields(key)
    assert g.source.startswith("https://") and g.datasheet_note and g.verified_via
    for precision, sparse in g.datasheet_sparse_tflops.items():
        # Half the sparse figure; 1.5% slack for datasheets that state both, rounded (L40S: 362.05 | 733*).
        assert g.peak_tflops_dense[precision] == pytest.approx(sparse / 2, rel=0.015), precision
    # fp8 where the hardware has it, never on Ampere; 4-bit only where native.
    assert ("fp8" in g.peak_tflops_dense) == (g.architecture != "ampere")
    assert "int4" not in g.peak_tflops_dense or g.architecture == "ampere"
    assert "fp4" not in g.peak_tflops_dense or g.architecture == "blackwell"
    assert g.interconnect_gb_s is not None and g.interconnect_gb_s_per_direction == g.interconnect_gb_s / 2


def test_gpu_units() -> None:
    h100 = load_gpu("h100-sxm")
    assert isinstance(h100, GpuSpec) and h100.name == "h100-sxm"
    assert h100.memory_bytes == 80e9
    assert h100.hbm_bandwidth_bytes_s == 3.35e12
    assert h100.peak_flops["bf16"] == 989.5e12 and h100.peak_flops["fp8"] == 1979e12
    assert h100.interconnect_bytes_s == 450e9  # one direction of NVLink's 900 GB/s
    assert load_gpu("l4").interconnect_bytes_s == 32e9  # one direction of PCIe Gen4 x16
    assert load_gpu("h200").peak_flops == h100.peak_flops and load_gpu("h200").memory_bytes == 141e9


def test_unknown_gpu_suggests_closest_keys() -> None:
    with pytest.raises(InvalidOptionError, match="did you mean 'h100-pcie' or 'h100-sxm'"):
        load_gpu("H100")
    with pytest.raises(InvalidOptionError, match="did you mean 'l40s'"):
        load_gpu("l40")


def test_inline_gpu() -> None:
    gpu = load_gpu(
        {
            "name": "mine",
            "memory_gb": 96,
            "hbm_bandwidth_tb_s": 4.0,
            "peak_tflops_dense": {"bf16": 500},
            "interconnect_gb_s": 200,
        }
    )
    assert (gpu.memory_bytes, gpu.peak_flops, gpu.interconnect_bytes_s) == (96e9, {"bf16": 500e12}, 100e9)
    with pytest.raises(ConfigError, match="field 'hbm_bandwidth_tb_s'"):
        load_gpu({"memory_gb": 96, "peak_tflops_dense": {"bf16": 500}, "interconnect_gb_s": 200})
    with pytest.raises(ConfigError, match="interconnect_gb_s"):
        load_gpu({"memory_gb": 96, "hbm_bandwidth_tb_s": 4.0, "peak_tflops_dense": {"bf16": 500}})
    with pytest.raises(ConfigError, match="bf16"):
        load_gpu({"memory_gb": 96, "hbm_bandwidth_tb_s": 4.0, "peak_tflops_dense": {"fp8": 9}, "interconnect_gb_s": 1})


# ----------------------------------------------------------------------------------------------------- prices
def test_price_file_header() -> None:
    raw = _raw("gpu_prices.json")
    assert raw["currency"] == "USD"
    dt.date.fromisoformat(raw["as_of"])


@pytest.mark.parametrize("key", gpu_keys())
def test_every_gpu_priced_for_every_option_with_source(key: str) -> None:
    for option in PRICE_OPTIONS:
        entry = price_entry(key, option)
        assert entry["price"] > 0 and entry["source"]
        dt.date.fromisoformat(entry["as_of"])
        if entry["derived"]:
            assert entry["note"].startswith("Derived:"), (key, option)
    on_demand = gpu_price_per_hour(key, "on_demand")
    assert gpu_price_per_hour(key, "reserved") < on_demand
    assert gpu_price_per_hour(key, "spot") < on_demand


def test_price_hand_values() -> None:
    assert gpu_price_per_hour("h100-sxm", "on_demand") == 6.88  # AWS p5.48xlarge $55.04 / 8
    assert gpu_price_per_hour("a100-40gb", "on_demand") == pytest.approx(21.957642 / 8, abs=1e-4)
    assert gpu_price_per_hour("h100-sxm", "reserved") == pytest.approx(6.88 * 0.6937, abs=1e-4)


def test_price_overrides() -> None:
    overrides = {"H100-SXM": {"spot": 1.5}, "my-gpu": {"on_demand": {"price": 0.7}}}
    assert gpu_price_per_hour("h100-sxm", "spot", overrides) == 1.5
    assert gpu_price_per_hour("h100-sxm", "on_demand", overrides) == 6.88  # not overridden: catalog
    assert gpu_price_per_hour("my-gpu", "on_demand", overrides) == 0.7
    with pytest.raises(ConfigError, match="number"):
        gpu_price_per_hour("h100-sxm", "spot", {"h100-sxm": {"spot": "cheap"}})
    with pytest.raises(InvalidOptionError, match="did you mean 'on_demand'"):
        gpu_price_per_hour("h100-sxm", "spot", {"h100-sxm": {"ondemand": 1.0}})


def test_unknown_option_and_gpu() -> None:
    with pytest.raises(InvalidOptionError, match="did you mean 'spot'"):
        gpu_price_per_hour("l4", "spto")
    with pytest.raises(InvalidOptionError, match=r"did you mean 'h200'.*known: a100-40gb"):
        gpu_price_per_hour("h20", "spot")
    assert gpu_price_per_hour("l4", "on-demand") == gpu_price_per_hour("l4", "on_demand")


# ------------------------------------------------------------------------------------------------------- docs
def test_docs_list_every_catalog_row() -> None:
    doc = DOC.read_text(encoding="utf-8")
    tables = catalog_table()
    assert [r["key"] for r in tables["models"] if f"`{r['key']}`" not in doc] == []
    assert [r["source"] for r in tables["models"] if r["source"] not in doc] == []
    assert [r["key"] for r in tables["gpus"] if f"`{r['key']}`" not in doc] == []
    assert [r["source"] for r in tables["gpus"] if r["source"] not in doc] == []
    missing = [
        (r["gpu"], r["option"])
        for r in tables["prices"]
        if f"| `{r['gpu']}` | {r['option']} | {r['usd_per_hour']:.4f} | {r['as_of']} |" not in doc
    ]
    assert missing == []

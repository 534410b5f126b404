"""The performance model: roofline arithmetic by hand, KV-cache capacity, calibration error, profiles."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from unitcost.capacity.perf import (
    Efficiency,
    kv_capacity_tokens,
    load_profile,
    saturated_throughput,
    step_coefficients,
)
from unitcost.capacity.types import GpuSpec, ModelSpec, StepCoefficients
from unitcost.errors import ConfigError

# A toy model and GPU small enough to compute on paper.
TOY = ModelSpec(
    "toy", layers=2, hidden_size=4, attention_heads=2, kv_heads=1, head_dim=2, parameters=1e9, active_parameters=1e9
)
GPU = GpuSpec(
    "toy-gpu",
    memory_bytes=10e9,
    hbm_bandwidth_bytes_s=1e11,
    peak_flops={"bf16": 1e12, "fp8": 2e12},
    interconnect_bytes_s=1e10,
)
HALF = Efficiency(
    compute=0.5,
    memory=0.5,
    overhead_s=0.001,
    allreduce_latency_s=1e-5,
    gpu_memory_utilization=0.9,
    activation_reserve_bytes=2e9,
)


def test_roofline_coefficients_by_hand() -> None:
    c = step_coefficients(TOY, GPU, 1, "bf16", HALF)
    assert c.compute_s_per_token == pytest.approx(2e9 / (1e12 * 0.5))  # 2 FLOP per parameter: 4 ms
    assert c.weight_read_s == pytest.approx(2e9 / (1e11 * 0.5))  # 2 GB of bf16 weights: 40 ms
    # KV bytes per token: K and V x 2 layers x 1 KV head x head dim 2 x 2 bytes = 16
    assert c.kv_read_s_per_token == pytest.approx(16 / (1e11 * 0.5))
    # attention: 4 x layers x heads x head_dim = 32 FLOP per (query, context) pair
    assert c.attention_s_per_context_token == pytest.approx(32 / (1e12 * 0.5))
    assert c.comm_s_per_token == 0.0 and c.comm_latency_s == 0.0
    # a decode step of 100 sequences with 1,000 context tokens in all: compute 0.4 s beats memory 0.04 s
    assert c.step_s(100, 1000, 1000) == pytest.approx(0.001 + 100 * 4e-3 + 1000 * 6.4e-11)
    # a single sequence: memory bound (weights), 1 ms overhead + 40 ms
    assert c.step_s(1, 10, 10) == pytest.approx(0.001 + 0.04 + 10 * 3.2e-10)


def test_fp8_halves_the_weight_reads_and_uses_fp8_peak() -> None:
    bf16 = step_coefficients(TOY, GPU, 1, "bf16", HALF)
    fp8 = step_coefficients(TOY, GPU, 1, "fp8", HALF)
    assert fp8.weight_read_s == pytest.approx(bf16.weight_read_s / 2)
    assert fp8.compute_s_per_token == pytest.approx(bf16.compute_s_per_token / 2)
    assert fp8.kv_read_s_per_token == pytest.approx(bf16.kv_read_s_per_token / 2)  # fp8 KV cache
    int4 = step_coefficients(TOY, GPU, 1, "int4", HALF)
    assert int4.weight_read_s == pytest.approx(bf16.weight_read_s / 4)
    assert int4.compute_s_per_token == pytest.approx(bf16.compute_s_per_token)  # weight-only: bf16 math


def test_tensor_parallel_splits_work_and_adds_all_reduces() -> None:
    one = step_coefficients(TOY, GPU, 1, "bf16", HALF)
    two = step_coefficients(TOY, GPU, 2, "bf16", HALF)
    assert two.weight_read_s == pytest.approx(one.weight_read_s / 2)
    assert two.compute_s_per_token == pytest.approx(one.compute_s_per_token / 2)
    # two ring all-reduces per layer of hidden x 2 bytes, each moving 2 (tp - 1) / tp of it: 2 x 2 x 8 bytes
    assert two.comm_s_per_token == pytest.approx(2 * 2 * (4 * 2 * 2 * 1 / 2) / 1e10)
    assert two.comm_latency_s == pytest.approx(2 * 2 * 1e-5)


def test_kv_capacity_by_hand() -> None:
    # per GPU 10 GB x 0.9 - 2 GB reserve = 7 GB; minus 2 GB of weights = 5 GB; / 16 bytes per token
    assert kv_capacity_tokens(TOY, GPU, 1, "bf16", HALF) == 312_500_000
    # two GPUs: 14 GB - 2 GB = 12 GB / 16
    assert kv_capacity_tokens(TOY, GPU, 2, "bf16", HALF) == 750_000_000
    big = ModelSpec("big", 2, 4, 2, 1, 2, parameters=4e9, active_parameters=4e9)  # 8 GB of bf16 weights
    assert kv_capacity_tokens(big, GPU, 1, "bf16", HALF) == 0  # does not fit in 7 GB


def test_real_shapes_kv_capacity() -> None:
    from unitcost.capacity.catalog import load_gpu, load_model

    # Llama 3.1 70B bf16 (141 GB of weights) fits neither one nor two 80 GB H100s (2 x 70 GB usable), fits four
    model, gpu = load_model("llama-3.1-70b"), load_gpu("h100-sxm")
    assert kv_capacity_tokens(model, gpu, 1, "bf16") == 0
    assert kv_capacity_tokens(model, gpu, 2, "bf16") == 0
    four = kv_capacity_tokens(model, gpu, 4, "bf16")
    # 4 x (80 GB x 0.9 - 2 GB) - 70.6e9 x 2 bytes, over 327,680 bytes per token (80 layers x 8 KV heads x 128 x 2 x 2)
    expected = (4 * (80e9 * 0.9 - 2e9) - model.parameters * 2) // (2 * 80 * 8 * 128 * 2)
    assert four == expected > 400_000
    # in fp8 (weights and KV cache) it fits two: 70.6 GB of weights, 163,840 bytes per token
    assert kv_capacity_tokens(model, gpu, 2, "fp8") == (2 * 70e9 - model.parameters) // (2 * 80 * 8 * 128 * 1)


def test_saturated_throughput_respects_every_limit() -> None:
    step = StepCoefficients(0.01, 0.0, 0.0, 0.0, 0.0)
    # the KV cache holds 10,000 tokens: 50 sequences of 200
    assert saturated_throughput(step, 10_000, 100, 100, 64, 8192) == (5000.0, 50.0)
    # the step budget: each sequence needs 1 + 1000/100 = 11 tokens a step -> 8192 // 11 = 744
    assert saturated_throughput(step, 10**9, 1000, 100, 4096, 8192)[1] == 744


def test_calibration_error_stays_within_25_percent() -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))
    from calibrate_capacity import predictions

    from unitcost.capacity.perf import DEFAULT_EFFICIENCY

    errors = [predicted / published - 1 for predicted, published in predictions(DEFAULT_EFFICIENCY)]
    assert len(errors) == 6
    assert max(abs(e) for e in errors) < 0.25, errors


def test_profile_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    coefficients = {
        "overhead_s": 0.002,
        "compute_s_per_token": 1e-5,
        "attention_s_per_context_token": 0.0,
        "weight_read_s": 0.003,
        "kv_read_s_per_token": 1e-8,
        "comm_s_per_token": 0.0,
        "comm_latency_s": 0.0,
    }
    path.write_text(
        json.dumps(
            {
                "model": "llama-3.1-8b",
                "gpu": "h100-sxm",
                "precision": "bf16",
                "tensor_parallel": 1,
                "coefficients": coefficients,
            }
        )
    )
    profile = load_profile(path)
    assert profile.key() == ("llama-3.1-8b", "h100-sxm", "bf16", 1)
    assert profile.step.weight_read_s == 0.003
    path.write_text("{}")
    with pytest.raises(ConfigError, match="not a unitcost profile file"):
        load_profile(path)
    with pytest.raises(ConfigError, match="not found"):
        load_profile(tmp_path / "missing.json")


def test_profile_without_torch_or_cuda_is_a_clear_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from unitcost.cli import app

    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is present: the error path does not apply")
    except ImportError:
        pass
    result = CliRunner().invoke(app, ["profile", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--out",
                                      str(tmp_path / "p.json")])  # fmt: skip
    assert result.exit_code == 2
    assert "needs PyTorch with CUDA" in result.output or "needs a CUDA GPU" in result.output
    assert not (tmp_path / "p.json").exists()
    unknown = CliRunner().invoke(app, ["profile", "--model", "llama-3.1-8b", "--gpu", "h100"])
    assert unknown.exit_code == 2 and "h100-sxm" in unknown.output

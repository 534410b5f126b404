"""The performance model: roofline step times and KV-cache capacity of one replica.

One engine step (an iteration of continuous batching) runs every layer once over the tokens in the batch. Its
time is bounded by compute (matrix multiplies and attention over the tokens) or by memory traffic (reading
every weight once, and the KV cache of every running sequence), whichever is larger (the roofline: Williams,
Waterman, Patterson, "Roofline", CACM 2009; applied to LLM inference in Yuan et al., "LLM Inference Unveiled:
Survey and Roofline Model Insights", 2024, and Pope et al., "Efficiently Scaling Transformer Inference",
MLSys 2023):

* compute: ``2 * active_parameters`` FLOP per token (one multiply-add per weight), plus attention
  ``4 * layers * attention_heads * head_dim`` FLOP per (query token, context token) pair, over
  ``tensor_parallel * peak_flops * compute_efficiency``;
* memory: ``weight_bytes + kv_bytes_per_token * context_tokens`` over
  ``tensor_parallel * hbm_bandwidth * memory_efficiency``;
* tensor-parallel communication: two all-reduces per layer of ``hidden_size`` activations (2 bytes each) per
  token, a ring all-reduce moving ``2 (tp - 1) / tp`` of it over each GPU's link, plus a fixed latency per
  all-reduce;
* a fixed per-step overhead (scheduling, sampling, kernel launches).

The efficiency factors and the overhead are calibrated to published H100 measurements
(:data:`CALIBRATION_POINTS`; ``scripts/calibrate_capacity.py`` refits them, docs/capacity.md lists predicted
against published). A measured profile (:class:`Profile`, written by ``unitcost profile``) replaces the
coefficients for its model x GPU x precision x tensor parallelism.

KV capacity: ``gpu_memory_utilization`` of every GPU's memory, less the weights and an activation reserve,
divided by the KV bytes of one token (K and V, every layer, the KV heads of this GPU's shard).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from unitcost.capacity.catalog import kv_bytes_per_token, weight_bytes
from unitcost.capacity.types import GpuSpec, ModelSpec, StepCoefficients
from unitcost.errors import ConfigError

PRECISIONS = ("bf16", "fp8", "int4")
ACTIVATION_BYTES = 2  # activations stay bf16 on the wire


@dataclass(frozen=True)
class Efficiency:
    """How much of the datasheet peak an engine reaches, and its fixed costs per step."""

    compute: float = 0.459  # share of peak dense FLOP/s reached by large GEMMs
    memory: float = 0.625  # share of peak HBM bandwidth reached by weight and KV reads
    overhead_s: float = 0.005  # per step: scheduling, sampling, launches
    allreduce_latency_s: float = 50e-6  # per all-reduce, on top of its bandwidth time
    gpu_memory_utilization: float = 0.90  # share of GPU memory the engine may use (vLLM's default)
    activation_reserve_bytes: float = 2e9  # per GPU, for activations and CUDA graphs


DEFAULT_EFFICIENCY = Efficiency()


@dataclass(frozen=True)
class CalibrationPoint:
    """One published max-load throughput: model, GPUs, precision, input/output lengths, output tokens/s."""

    model: str
    gpu: str
    tensor_parallel: int
    precision: str
    input_tokens: int
    output_tokens: int
    output_tokens_per_s: float
    source: str


_TRTLLM = "TensorRT-LLM performance overview (trtllm-bench, max load), H100 SXM FP8, as quoted in issue 6"
CALIBRATION_POINTS: tuple[CalibrationPoint, ...] = (
    CalibrationPoint("llama-3.1-8b", "h100-sxm", 1, "fp8", 128, 128, 28312, _TRTLLM),
    CalibrationPoint("llama-3.1-8b", "h100-sxm", 1, "fp8", 1000, 1000, 15220, _TRTLLM),
    CalibrationPoint("llama-3.1-8b", "h100-sxm", 1, "fp8", 5000, 500, 3459, _TRTLLM),
    CalibrationPoint("llama-3.3-70b", "h100-sxm", 2, "fp8", 128, 128, 6378, _TRTLLM),
    CalibrationPoint("llama-3.3-70b", "h100-sxm", 2, "fp8", 1000, 1000, 4205, _TRTLLM),
    CalibrationPoint("llama-3.3-70b", "h100-sxm", 2, "fp8", 5000, 500, 898, _TRTLLM),
)
CALIBRATION_MAX_BATCH = 2048  # trtllm-bench's default max_batch_size
CALIBRATION_MAX_BATCHED_TOKENS = 8192  # its default max_num_tokens


def compute_precision(gpu: GpuSpec, precision: str) -> str:
    """The precision matrix multiplies run in: fp8 where the GPU has it natively, else bf16.

    int4 is weight-only (W4A16: weights dequantised to bf16); fp8 on a GPU without fp8 runs weight-only too.

    >>> from unitcost.capacity.catalog import load_gpu
    >>> compute_precision(load_gpu("h100-sxm"), "fp8"), compute_precision(load_gpu("a100-80gb"), "fp8")
    ('fp8', 'bf16')
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp8" and "fp8" in gpu.peak_flops:
        return "fp8"
    return "bf16"


def kv_precision(precision: str) -> str:
    """KV-cache precision: fp8 with fp8 weights (as TensorRT-LLM's FP8 recipes do), else bf16."""
    return "fp8" if precision == "fp8" else "bf16"


def step_coefficients(
    model: ModelSpec,
    gpu: GpuSpec,
    tensor_parallel: int,
    precision: str,
    efficiency: Efficiency = DEFAULT_EFFICIENCY,
) -> StepCoefficients:
    """The roofline coefficients of one replica of ``model`` over ``tensor_parallel`` GPUs of type ``gpu``.

    >>> from unitcost.capacity.catalog import load_gpu, load_model
    >>> c = step_coefficients(load_model("llama-3.1-8b"), load_gpu("h100-sxm"), 1, "bf16", Efficiency(1, 1, 0, 0))
    >>> round(c.weight_read_s * 1e3, 3)  # 16.06 GB of bf16 weights at 3.35 TB/s
    4.794
    """
    tp = tensor_parallel
    peak = gpu.peak_flops[compute_precision(gpu, precision)]
    flops_s = tp * peak * efficiency.compute
    bytes_s = tp * gpu.hbm_bandwidth_bytes_s * efficiency.memory
    attention_flop_per_pair = 4.0 * model.layers * model.attention_heads * model.head_dim
    comm_s_per_token = 0.0
    comm_latency_s = 0.0
    if tp > 1:
        allreduce_bytes = model.hidden_size * ACTIVATION_BYTES * 2.0 * (tp - 1) / tp
        comm_s_per_token = 2 * model.layers * allreduce_bytes / gpu.interconnect_bytes_s
        comm_latency_s = 2 * model.layers * efficiency.allreduce_latency_s
    return StepCoefficients(
        overhead_s=efficiency.overhead_s,
        compute_s_per_token=2.0 * model.active_parameters / flops_s,
        attention_s_per_context_token=attention_flop_per_pair / flops_s,
        weight_read_s=weight_bytes(model, precision) / bytes_s,
        kv_read_s_per_token=kv_bytes_per_token(model, kv_precision(precision)) / bytes_s,
        comm_s_per_token=comm_s_per_token,
        comm_latency_s=comm_latency_s,
    )


def kv_capacity_tokens(
    model: ModelSpec,
    gpu: GpuSpec,
    tensor_parallel: int,
    precision: str,
    efficiency: Efficiency = DEFAULT_EFFICIENCY,
) -> int:
    """KV-cache tokens one replica holds; 0 when the weights do not fit at all.

    >>> from unitcost.capacity.catalog import load_gpu, load_model
    >>> # (80 GB x 0.9 - 2 GB - 16.06 GB of bf16 weights) / 131,072 bytes per token
    >>> kv_capacity_tokens(load_model("llama-3.1-8b"), load_gpu("h100-sxm"), 1, "bf16")
    411525
    """
    usable = tensor_parallel * (
        gpu.memory_bytes * efficiency.gpu_memory_utilization - efficiency.activation_reserve_bytes
    )
    free = usable - weight_bytes(model, precision)
    if free <= 0:
        return 0
    return int(free // kv_bytes_per_token(model, kv_precision(precision)))


def saturated_throughput(
    step: StepCoefficients,
    kv_capacity: int,
    input_tokens: float,
    output_tokens: float,
    max_batch: int,
    max_batched_tokens: int,
) -> tuple[float, float]:
    """(output tokens/s, running sequences) of one replica kept full of identical requests.

    In steady state every step carries ``B`` decoding sequences and, amortised, ``B * input / output`` prefill
    tokens (each sequence's prompt spread over its ``output`` decode steps); ``B`` is the largest batch the
    limits allow: ``max_batch``, the KV cache (``B * (input + output) <= capacity``) and the step's token budget.
    Each step emits ``B`` tokens.

    >>> s = StepCoefficients(0.01, 0.0, 0.0, 0.0, 0.0)  # every step 10 ms
    >>> saturated_throughput(s, 100_000, 100, 100, 64, 8192)  # 64 sequences, 100 steps/s
    (6400.0, 64.0)
    """
    per_seq_tokens = 1.0 + input_tokens / output_tokens
    batch = min(
        float(max_batch),
        math.floor(kv_capacity / (input_tokens + output_tokens)),
        math.floor(max_batched_tokens / per_seq_tokens),
    )
    if batch < 1:
        return 0.0, 0.0
    batch = float(batch)
    tokens = batch * per_seq_tokens
    mean_context = input_tokens + output_tokens / 2.0
    prefill_pairs = batch / output_tokens * input_tokens * input_tokens / 2.0
    attention_pairs = batch * mean_context + prefill_pairs
    kv_read = batch * mean_context
    return batch / step.step_s(tokens, attention_pairs, kv_read), batch


@dataclass(frozen=True)
class Profile:
    """Measured step-time coefficients for one model x GPU x precision x tensor parallelism."""

    model: str
    gpu: str
    precision: str
    tensor_parallel: int
    step: StepCoefficients
    source: str = ""

    def key(self) -> tuple[str, str, str, int]:
        """What the profile applies to."""
        return (self.model, self.gpu, self.precision, self.tensor_parallel)


def load_profile(path: str | Path) -> Profile:
    """A profile file (JSON written by ``unitcost profile``), validated."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        coefficients = data["coefficients"]
        step = StepCoefficients(**{name: float(value) for name, value in coefficients.items()})
        return Profile(
            model=str(data["model"]),
            gpu=str(data["gpu"]),
            precision=str(data["precision"]),
            tensor_parallel=int(data["tensor_parallel"]),
            step=step,
            source=str(data.get("source", path.name)),
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: profile file not found") from exc
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a unitcost profile file ({type(exc).__name__}: {exc})") from exc

"""``unitcost profile``: measure step times of a model shape on a CUDA GPU and write a profile file.

Needs PyTorch with CUDA (``pip install torch``; not a dependency of unitcost). Builds ONE decoder layer of the
model's shape with random bf16 weights (no download), times it with CUDA events, and scales by the number of
layers (plus the LM head for decode steps):

* prefill steps of ``T`` tokens (T = 256 .. 8192, causal attention over themselves): least squares of
  ``time = a + c T + d T^2 / 2`` gives ``compute_s_per_token`` = c and ``attention_s_per_context_token`` = d;
* decode steps of ``B`` sequences with ``C`` context tokens each (B = 1 .. 64, C = 512 .. 8192): least squares
  of ``time = w + k B C`` over the memory-bound points gives ``weight_read_s`` = w and ``kv_read_s_per_token``
  = k.

The engine's per-step overhead (scheduler, sampling, launches) is not in raw kernel timings; the profile keeps
the performance model's default (docs/capacity.md) and says so. Tensor parallelism above 1 is not profiled
(one GPU). The plan file reads the result with ``profiles: [FILE]``.

Not yet run on a GPU: the machine it was written on has none, and no test here can run it (docs/capacity.md,
"Known limits").
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from unitcost.capacity.catalog import model_fields
from unitcost.capacity.perf import DEFAULT_EFFICIENCY
from unitcost.errors import InvalidOptionError

PREFILL_TOKENS = (256, 512, 1024, 2048, 4096, 8192)
DECODE_BATCHES = (1, 4, 16, 64)
DECODE_CONTEXTS = (512, 2048, 8192)


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise InvalidOptionError("unitcost profile needs PyTorch with CUDA: pip install torch") from exc
    if not torch.cuda.is_available():
        raise InvalidOptionError("unitcost profile needs a CUDA GPU; torch.cuda.is_available() is False")
    return torch


def _time_ms(torch: Any, fn: Any, repeat: int = 10) -> float:
    """Median milliseconds of ``fn`` on the GPU (CUDA events, after two warm-up calls)."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def measure(model: str, *, gpu_name: str, device: str = "cuda") -> dict[str, Any]:
    """Time one layer of ``model`` and return the profile document (coefficients and raw points)."""
    torch = _torch()
    f = model_fields(model)
    if f.intermediate_size is None:
        raise InvalidOptionError(f"model {model!r} has no intermediate_size in the catalog; cannot build a layer")
    hidden, heads, kv_heads, head_dim = f.hidden_size, f.attention_heads, f.kv_heads, f.head_dim
    dtype = torch.bfloat16
    w_qkv = torch.randn(hidden, (heads + 2 * kv_heads) * head_dim, device=device, dtype=dtype) * 0.02
    w_o = torch.randn(heads * head_dim, hidden, device=device, dtype=dtype) * 0.02
    w_up = torch.randn(hidden, 2 * f.intermediate_size, device=device, dtype=dtype) * 0.02
    w_down = torch.randn(f.intermediate_size, hidden, device=device, dtype=dtype) * 0.02
    w_head = torch.randn(hidden, f.vocab_size, device=device, dtype=dtype) * 0.02
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def layer(x: Any, k_cache: Any | None, v_cache: Any | None, causal: bool) -> Any:
        qkv = x @ w_qkv
        q, k, v = qkv.split([heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], dim=-1)
        batch = x.shape[0]
        q = q.view(batch, -1, heads, head_dim).transpose(1, 2)
        k = k.view(batch, -1, kv_heads, head_dim).transpose(1, 2)
        v = v.view(batch, -1, kv_heads, head_dim).transpose(1, 2)
        if k_cache is not None:
            k, v = torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2)
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
        attn = sdpa(q, k, v, is_causal=causal).transpose(1, 2).reshape(batch, -1, heads * head_dim)
        h = x + attn @ w_o
        gate, up = (h @ w_up).chunk(2, dim=-1)
        return h + (torch.nn.functional.silu(gate) * up) @ w_down

    prefill = []
    with torch.no_grad():
        for tokens in PREFILL_TOKENS:
            x = torch.randn(1, tokens, hidden, device=device, dtype=dtype)
            ms = _time_ms(torch, lambda x=x: layer(x, None, None, True)) * f.layers
            prefill.append((tokens, ms / 1e3))
        decode = []
        for batch in DECODE_BATCHES:
            for context in DECODE_CONTEXTS:
                x = torch.randn(batch, 1, hidden, device=device, dtype=dtype)
                kc = torch.randn(batch, kv_heads, context, head_dim, device=device, dtype=dtype)
                vc = torch.randn(batch, kv_heads, context, head_dim, device=device, dtype=dtype)
                ms = _time_ms(torch, lambda x=x, kc=kc, vc=vc: layer(x, kc, vc, False)) * f.layers
                ms += _time_ms(torch, lambda x=x: x @ w_head)
                decode.append((batch, context, ms / 1e3))
    t = np.array([p[0] for p in prefill], dtype=float)
    y = np.array([p[1] for p in prefill])
    a, c, d = np.linalg.lstsq(np.column_stack([np.ones_like(t), t, t * t / 2]), y, rcond=None)[0]
    kv = np.array([b * ctx for b, ctx, _ in decode], dtype=float)
    yd = np.array([s for _, _, s in decode])
    w, k = np.linalg.lstsq(np.column_stack([np.ones_like(kv), kv]), yd, rcond=None)[0]
    return {
        "model": model,
        "gpu": gpu_name,
        "precision": "bf16",
        "tensor_parallel": 1,
        "coefficients": {
            "overhead_s": DEFAULT_EFFICIENCY.overhead_s,
            "compute_s_per_token": max(float(c), 0.0),
            "attention_s_per_context_token": max(float(d), 0.0),
            "weight_read_s": max(float(w), 0.0),
            "kv_read_s_per_token": max(float(k), 0.0),
            "comm_s_per_token": 0.0,
            "comm_latency_s": 0.0,
        },
        "measurements": {
            "prefill": [{"tokens": int(n), "seconds": s} for n, s in prefill],
            "decode": [{"batch": b, "context": ctx, "seconds": s} for b, ctx, s in decode],
            "prefill_intercept_s": float(a),
        },
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": "unitcost profile (one bf16 layer with random weights, scaled by the layer count)",
        "note": "overhead_s is the performance model's default, not measured (kernels only)",
    }


def write_profile(document: dict[str, Any], path: Path) -> Path:
    """Write a profile document as JSON and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path

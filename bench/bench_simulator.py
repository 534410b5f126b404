"""Benchmark: the continuous-batching fleet simulator, in requests simulated per second of wall time.

Workloads, each on Llama-3-8B-like step coefficients for one H100 (4 ms overhead, compute at 60% of 989 TFLOP/s,
weights and KV cache read at 80% of 3.35 TB/s), max_batch 128, autoscaled on utilization (70%) with one warm standby:

* ``azure-conv 1x``: the Azure LLM inference trace, conversation service (19,366 requests in one hour), replayed
  as recorded (Patel et al., "Splitwise", ISCA 2024, CC-BY-4.0);
* ``azure-conv 10x``: the same requests compressed 10x in time (10x the rate);
* ``synthetic``: ``--synthetic`` (1M) Poisson arrivals, lognormal input (mean ~1,000) and output (mean ~250)
  tokens, at 60 requests/s (``--rate``).

Prints the compile time of the first call (numba JIT; 0 when cached on disk), then for each workload the best
wall time of ``--repeat`` runs, requests per second, and the ratio against the 200,000 requests/s target.

Run from the repository root: ``python bench/bench_simulator.py`` (or ``--synthetic 200000`` for a quick run).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from timing import best_of
from unitcost.capacity.simulator import simulate
from unitcost.capacity.types import EngineSpec, Requests, ScalingSpec, SimulationResult, StepCoefficients

TARGET_REQUESTS_PER_S = 200_000
TRACE = Path(__file__).resolve().parents[1] / "examples" / "capacity" / "data"  # a copy of ../shared/data
ATTRIBUTION = (
    "Azure LLM inference trace (conv): Patel, Choukse, Zhang, Shah, Goiri, Maleki, Bianchini, "
    '"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024, CC-BY-4.0'
)

# Llama-3-8B-like on one H100 SXM (bf16): 16 GB of weights, 128 KiB of KV cache per token.
STEP = StepCoefficients(
    overhead_s=0.004,
    compute_s_per_token=2 * 8e9 / (989e12 * 0.6),
    attention_s_per_context_token=4 * 32 * 4096 / (989e12 * 0.6),
    weight_read_s=16e9 / (3.35e12 * 0.8),
    kv_read_s_per_token=131072 / (3.35e12 * 0.8),
)
ENGINE = EngineSpec(STEP, max_batch=128, kv_capacity_tokens=450_000, max_batched_tokens=8192)


def scaling(min_replicas: int, max_replicas: int) -> ScalingSpec:
    """Utilization-target autoscaling (70%), evaluated every 15 s, 2 minutes of warm-up, one warm standby."""
    return ScalingSpec(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        policy="utilization",
        target_utilization=0.7,
        interval_s=15.0,
        warmup_s=120.0,
        scale_down_after_s=300.0,
        warm_pool=1,
        warm_start_s=20.0,
    )


def azure_requests(path: Path, speedup: float) -> Requests:
    """The trace's requests, arrival times from its first request divided by ``speedup``."""
    frame = pd.read_csv(path)
    ts = pd.to_datetime(frame["TIMESTAMP"])
    arrival = (ts - ts.iloc[0]).dt.total_seconds().to_numpy() / speedup
    order = np.argsort(arrival, kind="stable")
    n = len(frame)
    return Requests(
        arrival_s=arrival[order],
        input_tokens=frame["ContextTokens"].to_numpy(np.int64)[order],
        output_tokens=frame["GeneratedTokens"].to_numpy(np.int64)[order],
        class_id=np.zeros(n, np.int64),
    )


def synthetic_requests(n: int, rate_per_s: float, seed: int = 7) -> Requests:
    """``n`` Poisson arrivals at ``rate_per_s``, lognormal token counts (means ~1,000 in, ~250 out)."""
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1 / rate_per_s, n))
    inp = np.clip(rng.lognormal(np.log(1000) - 0.5, 1.0, n), 1, 32_000).astype(np.int64)
    out = np.clip(rng.lognormal(np.log(250) - 0.5, 1.0, n), 1, 4_000).astype(np.int64)
    return Requests(arrival, inp, out, np.zeros(n, np.int64))


def report(name: str, requests: Requests, fleet: ScalingSpec, repeat: int) -> None:
    result: list[SimulationResult] = []
    seconds = best_of(lambda: result.append(simulate(requests, ENGINE, fleet)), repeat)
    res = result[-1]
    rate = requests.count / seconds
    served = res.served.mean()
    p50, p99 = np.nanpercentile(res.ttft_s, [50, 99])
    print(
        f"{name:<16} {requests.count:>9,} requests  {seconds:7.3f} s  {rate:>11,.0f} requests/s  "
        f"x{rate / TARGET_REQUESTS_PER_S:.2f} of target   ({res.extra['steps']:,.0f} steps, "
        f"served {served:.1%}, TTFT p50 {p50 * 1e3:.0f} ms p99 {p99 * 1e3:.0f} ms, "
        f"ready replicas {res.ready_replicas.min()}-{res.ready_replicas.max()}, {res.replica_seconds / 3600:.1f} "
        f"replica-h over {res.extra['window_s'] / 3600:.2f} h)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=1_000_000, help="requests in the synthetic workload")
    parser.add_argument("--rate", type=float, default=60.0, help="synthetic arrivals per second")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trace", type=Path, default=TRACE / "AzureLLMInferenceTrace_conv.csv")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    warm = synthetic_requests(1000, 10.0)
    t = time.perf_counter()
    simulate(warm, ENGINE, scaling(1, 2))
    print(f"first call (numba compile or cache load): {time.perf_counter() - t:.2f} s")
    print(f"target: {TARGET_REQUESTS_PER_S:,} requests simulated per second of wall time")
    if args.trace.exists():
        print(ATTRIBUTION)
        report("azure-conv 1x", azure_requests(args.trace, 1.0), scaling(1, 4), args.repeat)
        report("azure-conv 10x", azure_requests(args.trace, 10.0), scaling(3, 8), args.repeat)
    else:
        print(f"(trace not found at {args.trace}: skipping the Azure workloads)")
    report("synthetic", synthetic_requests(args.synthetic, args.rate), scaling(4, 8), args.repeat)


if __name__ == "__main__":
    main()

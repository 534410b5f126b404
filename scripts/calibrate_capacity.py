"""Fit the performance model's efficiency factors to the published H100 throughputs, and print the table.

    .venv/bin/python scripts/calibrate_capacity.py [--fit]

Without ``--fit`` it prints predicted vs published for the shipped defaults (``perf.DEFAULT_EFFICIENCY``), the
table in docs/capacity.md. With ``--fit`` it first minimises the squared log error over
``perf.CALIBRATION_POINTS`` (Nelder-Mead over compute and memory efficiency and all-reduce latency; the per-step
overhead stays at its default, see docs/capacity.md) and prints the fitted values to copy into ``perf.Efficiency``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import numpy as np
from scipy.optimize import minimize

from unitcost.capacity.catalog import load_gpu, load_model
from unitcost.capacity.perf import (
    CALIBRATION_MAX_BATCH,
    CALIBRATION_MAX_BATCHED_TOKENS,
    CALIBRATION_POINTS,
    DEFAULT_EFFICIENCY,
    Efficiency,
    kv_capacity_tokens,
    saturated_throughput,
    step_coefficients,
)


def predictions(efficiency: Efficiency) -> list[tuple[float, float]]:
    """(predicted, published) output tokens/s per calibration point."""
    out = []
    for p in CALIBRATION_POINTS:
        model, gpu = load_model(p.model), load_gpu(p.gpu)
        step = step_coefficients(model, gpu, p.tensor_parallel, p.precision, efficiency)
        capacity = kv_capacity_tokens(model, gpu, p.tensor_parallel, p.precision, efficiency)
        predicted, _ = saturated_throughput(
            step, capacity, p.input_tokens, p.output_tokens, CALIBRATION_MAX_BATCH, CALIBRATION_MAX_BATCHED_TOKENS
        )
        out.append((predicted, p.output_tokens_per_s))
    return out


def fit() -> Efficiency:
    """The efficiency factors that minimise the squared log error over the calibration points."""

    def unpack(x: np.ndarray) -> Efficiency:
        return dataclasses.replace(
            DEFAULT_EFFICIENCY,
            compute=min(1.0, math.exp(x[0])),
            memory=min(1.0, math.exp(x[1])),
            allreduce_latency_s=math.exp(x[2]),
        )

    def loss(x: np.ndarray) -> float:
        return sum(math.log(a / b) ** 2 for a, b in predictions(unpack(x)))

    e = DEFAULT_EFFICIENCY
    x0 = np.log([e.compute, e.memory, e.allreduce_latency_s])
    best = minimize(loss, x0, method="Nelder-Mead", options={"maxiter": 2000, "xatol": 1e-4, "fatol": 1e-8})
    return unpack(best.x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="refit the efficiency factors first")
    efficiency = fit() if parser.parse_args().fit else DEFAULT_EFFICIENCY
    print(
        f"compute {efficiency.compute:.3f}, memory {efficiency.memory:.3f}, "
        f"overhead {efficiency.overhead_s * 1e3:.2f} ms/step, "
        f"all-reduce latency {efficiency.allreduce_latency_s * 1e6:.1f} us"
    )
    print("| model | GPUs | input / output | published tok/s | predicted tok/s | error |")
    print("|---|---|---|---:|---:|---:|")
    errors = []
    for p, (predicted, published) in zip(CALIBRATION_POINTS, predictions(efficiency), strict=True):
        error = predicted / published - 1
        errors.append(abs(error))
        print(
            f"| {p.model} {p.precision} | {p.tensor_parallel}x {p.gpu} | {p.input_tokens} / {p.output_tokens} | "
            f"{published:,.0f} | {predicted:,.0f} | {error:+.1%} |"
        )
    print(f"mean absolute error {np.mean(errors):.1%}, largest {np.max(errors):.1%}")


if __name__ == "__main__":
    main()

"""Benchmark: the capacity planner's analytical screen and search, against simulating every configuration.

The workload is the example plan (examples/capacity/azure-conv.yaml): the Azure LLM inference conversation trace
(19,366 requests in one hour; Patel et al., "Splitwise", ISCA 2024, CC-BY-4.0) on Llama 3.1 70B, 2,304
configurations (GPU type x TP x precision x batch limit x utilization target x warm pool x reserved GPUs x spot
share). Printed, each the best of ``--repeat`` runs in this process:

* the screen alone over every configuration (configurations per second);
* the whole search: screen + simulation of the finalists (the issue's target: 1,000+ configurations in < 10 s);
* the reference: simulating configurations directly, timed on a sample of ``--sample`` feasible ones and
  extrapolated to all of them; the ratio says how much the screen saves.

Run from the repository root: ``python bench/bench_capacity.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from timing import best_of
from unitcost.capacity.plan import configurations, load_plan
from unitcost.capacity.search import Planner, run_plan
from unitcost.capacity.workload import build_requests, workload_stats

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "capacity" / "azure-conv.yaml"
TARGET_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, default=EXAMPLE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=24, help="configurations simulated for the reference")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}"
    )
    print("workload: Azure LLM inference trace (conv), Patel et al., Splitwise, ISCA 2024, CC-BY-4.0")
    plan = load_plan(args.plan)
    configs = list(configurations(plan))
    requests = build_requests(plan)
    stats = workload_stats(requests)

    t = time.perf_counter()
    run_plan(plan)  # warm: numba compile or cache load, catalogs
    print(f"first search (numba compile or cache load included): {time.perf_counter() - t:.2f} s")

    def screen_all() -> None:
        planner = Planner(plan)
        for config in configs:
            planner.screen(config, stats)

    screen_s = best_of(screen_all, args.repeat)
    search_s = best_of(lambda: run_plan(plan), args.repeat)
    planner = Planner(plan)
    feasible = [c for c in configs if planner.engine(c) is not None]
    rng = np.random.default_rng(0)
    sample = [feasible[i] for i in rng.choice(len(feasible), size=min(args.sample, len(feasible)), replace=False)]
    t = time.perf_counter()
    for config in sample:
        planner.simulate(config, requests, stats, config.replicas_min)
    per_simulation = (time.perf_counter() - t) / len(sample)
    brute_s = per_simulation * len(feasible)

    print(f"configurations: {len(configs):,} ({len(feasible):,} fit on their GPUs); requests: {requests.count:,}")
    print(f"screen, every configuration:   {screen_s:6.2f} s  {len(configs) / screen_s:8,.0f} configurations/s")
    print(
        f"search (screen + simulations): {search_s:6.2f} s  target < {TARGET_S:.0f} s: "
        f"{'met' if search_s < TARGET_S else 'NOT met'} ({search_s / TARGET_S:.2f} of the target)"
    )
    print(f"simulation, one configuration: {per_simulation:6.3f} s  (mean of {len(sample)} sampled)")
    print(
        f"simulating every feasible one: {brute_s:6.1f} s  (extrapolated) -> search is {brute_s / search_s:.0f}x faster"
    )


if __name__ == "__main__":
    main()

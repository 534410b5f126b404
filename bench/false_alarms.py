"""False-alarm rate of each alert rule on quiet months (the demo company with no planted incident).

For each seed, generates a 30-day month with ``incidents=False`` (every release changes nothing), loads
usage, outcomes, bill and people time, replays ``watch --since`` day 8 (the first week is history) and
counts the findings of each rule. Every finding on a quiet month is a false alarm.

Run: ``python bench/false_alarms.py [--seeds 3] [--requests 200000]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from unitcost.alerts.watch import watch
from unitcost.config import Config
from unitcost.demo import generate, write_parquet
from unitcost.workspace import open_workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    totals: Counter[str] = Counter()
    evaluated_days = 0
    for seed in range(100, 100 + args.seeds):
        data = generate(days=30, requests=args.requests, seed=seed, incidents=False)
        with tempfile.TemporaryDirectory() as tmp:
            files = write_parquet(data, Path(tmp))
            # the demo's budgets are limits the user chose, not detections: left out of a false-alarm count
            config = Config.model_validate(yaml.safe_load(data.config_yaml)).model_copy(update={"budgets": []})
            with open_workspace(Path(tmp) / "q.duckdb", config) as ws:
                ws.ingest("usage", [files.usage])
                ws.ingest("outcomes", [files.outcomes])
                ws.ingest("focus", [files.bill])
                ws.ingest("ops", [files.ops])
                t = time.perf_counter()
                found = watch(ws.store, ws.config, since=dt.datetime(2026, 10, 8), deliver=False).findings
                took = time.perf_counter() - t
        counts = Counter(f.rule for f in found)
        totals.update(counts)
        evaluated_days += 23
        print(f"seed {seed}: {len(found)} findings in {took:.1f} s: {dict(counts) or 'none'}")
        for f in found:
            print(f"   {f.rule} {f.scope} {f.started_at:%m-%d %H:%M}: {f.message[:150]}")
    print(f"\n{args.seeds} quiet months x 23 evaluated days ({evaluated_days} days):")
    for rule in sorted(totals) or ["(none)"]:
        n = totals.get(rule, 0)
        print(f"  {rule}: {n} false alarms, {n / evaluated_days * 30:.2f} per 30 days")
    if not totals:
        print("  no rule raised anything")


if __name__ == "__main__":
    main()

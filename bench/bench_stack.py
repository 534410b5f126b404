"""Benchmark: allocating a month's bill over 10M usage rows (the cost stack) vs bare aggregations.

Builds the report benchmark's synthetic usage (N rows over October 2026) plus M FOCUS bill lines (GPU
instances tagged with a pool, vector search, storage, networking, monitoring, API invoices; a fifth tagged
with a tenant), then times in the same process:

* ``stack``: ``cost_stack(by="tenant")``: classify every bill line into a layer, convert currencies, allocate
  tagged lines directly and shared cost by each layer's driver, exact to the micro-dollar;
* ``bare``: a bare DuckDB ``SUM ... GROUP BY tenant`` over the usage plus a ``SUM ... GROUP BY ServiceName``
  over the bill lines.

Run: ``python bench/bench_stack.py [--rows 10000000] [--bill-lines 100000]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from decimal import Decimal
from pathlib import Path

from bench_report import build
from timing import best_of
from unitcost.analysis.stack import cost_stack
from unitcost.config import Config
from unitcost.store import open_store

SERVICES = [
    # ServiceName, ServiceCategory, ProviderName, ChargeDescription, tag pool
    ("Amazon Elastic Compute Cloud", "Compute", "AWS", "p5.48xlarge On Demand Linux", "gpu-pool-a"),
    ("Amazon OpenSearch Service", "Analytics", "AWS", "OpenSearch instance hours", None),
    ("Amazon Simple Storage Service", "Storage", "AWS", "Standard storage", None),
    ("AWS Data Transfer", "Networking", "AWS", "Data transfer out", None),
    ("Amazon CloudWatch", "Management and Governance", "AWS", "Logs ingested", None),
    ("OpenAI API", "AI and Machine Learning", "OpenAI", "gpt-4o input tokens", None),
]


def add_bill(path: Path, lines: int) -> None:
    store = open_store(path)
    values = ", ".join(
        f"({i}, '{s[0]}', '{s[1]}', '{s[2]}', '{s[3]}', {repr(s[4]) if s[4] else 'NULL'})"
        for i, s in enumerate(SERVICES)
    )
    store.raw.execute(
        f"""INSERT INTO bill_lines (BilledCost, EffectiveCost, ListCost, ContractedCost, BillingCurrency,
                ChargePeriodStart, ChargePeriodEnd, ServiceName, ServiceCategory, ProviderName, ChargeDescription,
                Tags, row_hash)
            SELECT c, c, c, c, 'USD', ts, ts + INTERVAL 1 HOUR, s.name, s.cat, s.prov, s.descr,
                   CASE WHEN s.pool IS NOT NULL THEN json_object('pool', s.pool)
                        WHEN i % 5 = 0 THEN json_object('tenant', 'tenant-' || (i % 40)) END,
                   md5(i::VARCHAR)
            FROM (SELECT i, TIMESTAMP '2026-10-01' + to_microseconds((i * (2592000000000 // {lines}))::BIGINT) AS ts,
                         ((hash(i) % 100000) / 1000.0)::DECIMAL(38, 10) AS c, i % {len(SERVICES)} AS svc
                  FROM range({lines}) r(i)) b
            JOIN (VALUES {values}) s(k, name, cat, prov, descr, pool) ON s.k = b.svc"""
    )
    store.raw.execute("UPDATE usage SET serving = 'gpu-pool-a', gpu_seconds = (row_id % 7) WHERE row_id % 4 = 0")
    store.raw.execute("CHECKPOINT")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--bill-lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = Config.model_validate({"pools": [{"name": "gpu-pool-a", "gpus": 16}]})
    with tempfile.TemporaryDirectory(dir=os.environ.get("UNITCOST_BENCH_DIR")) as tmp:
        path = Path(tmp) / "bench.duckdb"
        build(path, args.rows)
        add_bill(path, args.bill_lines)
        store = open_store(path)

        def bare() -> None:
            store.raw.execute("SELECT tenant, sum(input_tokens), count(*) FROM usage GROUP BY tenant").fetchall()
            store.raw.execute("SELECT ServiceName, sum(EffectiveCost) FROM bill_lines GROUP BY 1").fetchall()

        t_bare = best_of(bare, args.repeat)
        t_stack = best_of(lambda: cost_stack(store, config, by="tenant"), args.repeat)
        stack = cost_stack(store, config, by="tenant")
        billed = Decimal(store.sql("SELECT sum(EffectiveCost) FROM bill_lines")[0][0])
        store.close()
    allocated = sum((r.cost_usd for r in stack.rows if r.basis != "telemetry"), Decimal(0))
    held = sum(stack.unallocated_usd.values(), Decimal(0)) + sum(stack.idle_usd.values(), Decimal(0))
    print(
        f"\n{args.rows:,} usage rows + {args.bill_lines:,} bill lines  ({platform.machine()}, {os.cpu_count()} cores)"
    )
    print(f"  bare DuckDB SUM ... GROUP BY (usage + bill)   {t_bare:8.3f} s")
    print(f"  unitcost cost stack by tenant                 {t_stack:8.3f} s  {args.rows / t_stack:12,.0f} rows/s")
    print(f"  ratio stack / bare                            {t_stack / t_bare:8.1f} x")
    print(f"  check: bill ${billed:,.2f} = allocated ${allocated:,.2f} + unallocated/idle ${held:,.2f}")
    assert abs(allocated + held - billed) < Decimal("0.01"), "the stack does not add up to the bill, to the cent"


if __name__ == "__main__":
    main()

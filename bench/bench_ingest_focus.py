"""Benchmark: FOCUS ingestion (CSV and Parquet) vs a bare DuckDB read of the same file.

Generates N synthetic FOCUS 1.2 cost and usage lines (every 1.2 column, two currencies, tags, SkuPriceDetails,
a few ``x_`` columns), writes them as CSV and Parquet, then times in the same process: ``unitcost ingest focus``
(read, type every column, validate, quarantine, hash, dedupe, store) into a fresh workspace, a re-ingest of the
same file (every line a duplicate), and a bare ``CREATE TABLE t AS SELECT * FROM read_csv/read_parquet(...)``.

Run: ``python bench/bench_ingest_focus.py [--rows 500000]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from unitcost.ingest.focus import FOCUS_COLUMNS
from unitcost.workspace import open_workspace

SERVICES = [
    ("Amazon Elastic Compute Cloud", "Compute", "Virtual Machines"),
    ("Amazon Bedrock", "AI and Machine Learning", "Generative AI"),
    ("Amazon Simple Storage Service", "Storage", "Object Storage"),
    ("Amazon SageMaker", "AI and Machine Learning", "Machine Learning"),
    ("AWS Data Transfer", "Networking", "Network Connectivity"),
]


def _pick(rng: np.random.Generator, values: list[str], n: int) -> pa.Array:
    return pa.array(np.array(values, dtype=object)[rng.integers(0, len(values), n)], pa.string())


def focus_lines(n: int, seed: int = 7) -> pa.Table:
    """Return ``n`` synthetic FOCUS 1.2 lines (costs as float64, periods as UTC timestamps, JSON as text)."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2025, 6, 1)
    hour = rng.integers(0, 30 * 24, n)
    period_start = pa.array([start + dt.timedelta(hours=int(h)) for h in hour], pa.timestamp("ms", tz="UTC"))
    period_end = pa.array([start + dt.timedelta(hours=int(h) + 1) for h in hour], pa.timestamp("ms", tz="UTC"))
    service = rng.integers(0, len(SERVICES), n)
    qty = np.round(rng.lognormal(1, 1.5, n), 6)
    price = np.round(rng.lognormal(-6, 2, n), 10)
    billed = np.round(qty * price, 10)
    eur = rng.random(n) < 0.15
    tags = [json.dumps({"team": f"team-{i % 17}", "env": "prod" if i % 3 else "dev"}) for i in range(n)]
    cols: dict[str, pa.Array] = {
        "BilledCost": pa.array(billed),
        "EffectiveCost": pa.array(np.round(billed * 0.9, 10)),
        "ListCost": pa.array(billed),
        "ContractedCost": pa.array(billed),
        "ListUnitPrice": pa.array(price),
        "ContractedUnitPrice": pa.array(price),
        "PricingQuantity": pa.array(qty),
        "ConsumedQuantity": pa.array(qty),
        "PricingCurrencyEffectiveCost": pa.array(np.round(billed * 0.9, 10)),
        "PricingCurrencyListUnitPrice": pa.array(price),
        "PricingCurrencyContractedUnitPrice": pa.array(price),
        "BillingPeriodStart": pa.array([start] * n, pa.timestamp("ms", tz="UTC")),
        "BillingPeriodEnd": pa.array([dt.datetime(2025, 7, 1)] * n, pa.timestamp("ms", tz="UTC")),
        "ChargePeriodStart": period_start,
        "ChargePeriodEnd": period_end,
        "BillingCurrency": pa.array(np.where(eur, "EUR", "USD").astype(object), pa.string()),
        "PricingCurrency": pa.array(np.where(eur, "EUR", "USD").astype(object), pa.string()),
        "ServiceName": pa.array([SERVICES[s][0] for s in service], pa.string()),
        "ServiceCategory": pa.array([SERVICES[s][1] for s in service], pa.string()),
        "ServiceSubcategory": pa.array([SERVICES[s][2] for s in service], pa.string()),
        "ResourceId": pa.array([f"arn:aws:ec2:eu-west-1:1234:instance/i-{r:08x}" for r in rng.integers(0, 5000, n)]),
        "SkuPriceDetails": pa.array([json.dumps({"x_tier": int(p * 1000) % 4}) for p in price], pa.string()),
        "Tags": pa.array(tags, pa.string()),
        "x_Operation": _pick(rng, ["RunInstances", "InvokeModel", "GetObject"], n),
        "x_ServiceCode": _pick(rng, ["AmazonEC2", "AmazonBedrock", "AmazonS3"], n),
    }
    constant = {
        "BillingAccountId": "123456789012",
        "BillingAccountName": "acme-payer",
        "BillingAccountType": "Billing Account",
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "InvoiceIssuerName": "AWS",
        "ProviderName": "AWS",
        "PublisherName": "AWS",
        "PricingCategory": "Standard",
        "PricingUnit": "Hours",
        "ConsumedUnit": "Hours",
        "RegionId": "eu-west-1",
        "RegionName": "Europe (Ireland)",
        "AvailabilityZone": "eu-west-1a",
        "SubAccountType": "Account",
    }
    for name, value in constant.items():
        cols[name] = pa.array([value] * n, pa.string())
    cols["ChargeDescription"] = _pick(rng, ["On-demand usage", "Bedrock input tokens", "S3 requests"], n)
    cols["SubAccountId"] = _pick(rng, [f"{i:012d}" for i in range(20)], n)
    cols["SubAccountName"] = _pick(rng, [f"team-{i}" for i in range(20)], n)
    cols["SkuId"] = _pick(rng, [f"SKU{i:05d}" for i in range(200)], n)
    cols["SkuPriceId"] = _pick(rng, [f"SKU{i:05d}.PRICE" for i in range(200)], n)
    cols["SkuMeter"] = _pick(rng, ["BoxUsage", "InputTokens", "Requests-Tier1"], n)
    cols["ResourceName"] = cols["ResourceId"]
    cols["ResourceType"] = _pick(rng, ["Instance", "Model", "Bucket"], n)
    cols["InvoiceId"] = _pick(rng, ["INV-2025-06-001", "INV-2025-06-002"], n)
    v12 = [c.name for c in FOCUS_COLUMNS if c.since <= "1.2"]
    for name in v12:  # 1.2 columns without a value in this shape: all null
        if name not in cols:
            cols[name] = pa.nulls(n, pa.string())
    order = v12 + [c for c in cols if c.startswith("x_")]
    return pa.table({c: cols[c] for c in order})


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn()`` (CPU: every thread of this process; steadier on a shared machine)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def run(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        table = focus_lines(rows)
        parquet, csv = d / "focus.parquet", d / "focus.csv"
        pq.write_table(table, parquet)
        pacsv.write_csv(table, csv)
        print(
            f"{rows:,} FOCUS 1.2 lines, {table.num_columns} columns; CSV {csv.stat().st_size / 1e6:.0f} MB, "
            f"Parquet {parquet.stat().st_size / 1e6:.0f} MB  ({platform.machine()}, {os.cpu_count()} cores)"
        )
        for name, path, reader in (("csv", csv, "read_csv"), ("parquet", parquet, "read_parquet")):
            con = duckdb.connect(str(d / f"bare-{name}.duckdb"))
            bare = timed(lambda: con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{path}')"))  # noqa: B023
            con.close()
            ws = open_workspace(d / f"ws-{name}.duckdb")
            ingest = timed(lambda: ws.ingest("focus", [path]))  # noqa: B023
            again = timed(lambda: ws.ingest("focus", [path]))  # noqa: B023  (every line a duplicate)
            landed = ws.store.sql("SELECT count(*) FROM bill_lines")[0][0]
            ws.close()
            assert landed == rows, landed
            for label, (wall, cpu) in (
                ("bare DuckDB read", bare),
                ("unitcost ingest", ingest),
                ("re-ingest (dupes)", again),
            ):
                print(f"  {name:8s} {label:19s} {wall:7.2f} s  {rows / wall:10,.0f} rows/s  (CPU {cpu:6.2f} s)")
            print(f"  {name:8s} ratio ingest / bare {ingest[0] / bare[0]:7.1f} x  (CPU {ingest[1] / bare[1]:.1f} x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    run(parser.parse_args().rows)


if __name__ == "__main__":
    main()

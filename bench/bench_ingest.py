"""Benchmark: canonical usage ingestion (CSV and Parquet) vs a bare DuckDB read of the same file.

Generates N usage rows with the demo generator, writes them as Parquet and CSV, then times
in the same process: ``unitcost ingest usage`` (read, type, validate every row, quarantine,
dedupe, assign units of work, store) into a fresh workspace, and a bare
``CREATE TABLE t AS SELECT * FROM read_parquet/read_csv(...)`` of the same file, into a database file (the
reference for the ratio) and into memory (the file's decoding alone, nothing written).

Run: ``python bench/bench_ingest.py [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv

from timing import best_of
from unitcost.demo import generate, write_parquet
from unitcost.workspace import open_workspace


def run(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        data = generate(requests=rows, seed=3)
        parquet = write_parquet(data, d).usage
        csv = d / "usage.csv"
        pacsv.write_csv(data.usage, csv)
        n = data.usage.num_rows
        print(f"{n:,} usage rows  ({platform.machine()}, {os.cpu_count()} cores)")
        for name, path, reader in (("parquet", parquet, "read_parquet"), ("csv", csv, "read_csv")):
            con = duckdb.connect(str(d / f"bare-{name}.duckdb"))
            t_bare = best_of(lambda: con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{path}')"), 1)  # noqa: B023
            con.close()
            # the same read into memory: what decoding the file costs without writing a workspace file
            mem = duckdb.connect()
            t_mem = best_of(lambda: mem.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{path}')"), 1)  # noqa: B023
            mem.close()
            ws = open_workspace(d / f"ws-{name}.duckdb")
            t_ingest = best_of(lambda: ws.ingest("usage", [path]), 1)  # noqa: B023
            t_again = best_of(lambda: ws.ingest("usage", [path]), 1)  # noqa: B023  (all duplicates)
            ws.close()
            print(f"  {name:8s} bare read, in memory {t_mem:6.2f} s  {n / t_mem:12,.0f} rows/s  (no file written)")
            print(f"  {name:8s} bare DuckDB read    {t_bare:7.2f} s  {n / t_bare:12,.0f} rows/s")
            print(f"  {name:8s} unitcost ingest     {t_ingest:7.2f} s  {n / t_ingest:12,.0f} rows/s")
            print(f"  {name:8s} re-ingest (dupes)   {t_again:7.2f} s  {n / t_again:12,.0f} rows/s")
            print(f"  {name:8s} ratio ingest / bare {t_ingest / t_bare:7.1f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    run(parser.parse_args().rows)


if __name__ == "__main__":
    main()

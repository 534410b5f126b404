"""Benchmark: ledger + attribution + unit economics vs a bare DuckDB aggregation.

Builds a synthetic usage table of N rows directly in DuckDB (tenants, features,
models, traces of 3 requests, outcomes for a third of the traces), then times in
the same process:

* ``report``: unitcost's full cost report (prices resolved from genai-prices, the
  per-request cost join, units of work and their success, waste, and breakdowns
  by tenant, feature and model);
* ``bare``: hand-written DuckDB SQL over the same columns: one ``SUM ... GROUP BY``
  per breakdown dimension (no prices, no units of work);
* ``bare+units``: the bare SQL plus the ``GROUP BY trace`` a per-outcome figure needs.

Run: ``make bench`` (10M rows) or ``python bench/bench_report.py --rows 100000000``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from timing import best_of
from unitcost.analysis import cost_report
from unitcost.config import Config
from unitcost.ledger import build_ledger
from unitcost.store import open_store, rollups
from unitcost.store.models import rebuild as rebuild_models
from unitcost.store.units import link_all, rebuild_mixed

DIMS = ["tenant", "feature", "model"]


def build(store_path: Path, rows: int) -> None:
    store = open_store(store_path)
    t = time.perf_counter()
    store.raw.execute(
        f"""
        INSERT INTO usage (ts, request_id, trace_id, tenant, feature, provider, model, input_tokens,
                           cache_read_tokens, output_tokens, status, attempt, unit_id, row_id)
        SELECT TIMESTAMP '2026-10-01' + to_microseconds((i * (2592000000000 // {rows}))::BIGINT),
               'r' || i, 't' || (i // 3), 'tenant-' || (hash(i // 3) % 40), 'feature-' || (hash(i // 3) % 3),
               CASE hash(i) % 4 WHEN 0 THEN 'anthropic' ELSE 'openai' END,
               CASE hash(i) % 4 WHEN 0 THEN 'claude-haiku-4-5' WHEN 1 THEN 'gpt-4o' ELSE 'gpt-4o-mini' END,
               (hash(i + 1) % 4000)::BIGINT AS input_tokens, (hash(i + 2) % 1000)::BIGINT // 2,
               (hash(i + 3) % 800)::BIGINT, CASE WHEN hash(i + 4) % 20 = 0 THEN 'error' ELSE 'ok' END, 1,
               i // 3 + 1, i + 1
        FROM range({rows}) r(i)"""
    )
    # the dictionary ingestion maintains: trace id -> dense unit id
    store.raw.execute(f"INSERT INTO unit_keys SELECT 't' || j, j + 1 FROM range(({rows} + 2) // 3) r(j)")
    link_all(store.raw)  # what ingestion keeps besides the rows: links, catalogs, rollups
    rebuild_models(store.raw)
    rollups.rebuild(store.raw)
    rebuild_mixed(store.raw)
    store.raw.execute(
        f"""INSERT INTO outcomes (trace_id, ts, outcome)
            SELECT 't' || j, TIMESTAMP '2026-11-01', CASE WHEN j % 5 = 0 THEN 'escalated' ELSE 'success' END
            FROM range(0, {rows} // 3, 3) r(j)"""
    )
    store.raw.execute("CHECKPOINT")
    store.close()
    print(f"built {rows:,} rows in {time.perf_counter() - t:.1f} s")


def run(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("UNITCOST_BENCH_DIR")) as tmp:
        path = Path(tmp) / "bench.duckdb"
        build(path, rows)
        store = open_store(path)
        con = store.raw

        def bare() -> None:
            for d in DIMS:
                con.execute(
                    f"SELECT {d}, SUM(input_tokens), SUM(cache_read_tokens), SUM(output_tokens), COUNT(*) "
                    f"FROM usage GROUP BY {d}"
                ).fetchall()

        def bare_units() -> None:
            bare()
            con.execute(
                "SELECT count(*), count(*) FILTER (WHERE ok) FROM "
                "(SELECT trace_id, bool_or(status = 'ok') AS ok FROM usage GROUP BY trace_id)"
            ).fetchall()

        def bare_same_figures() -> None:
            # hand-written SQL for the same figures, without prices: unit success, join back, one GROUP BY
            con.execute(
                """WITH units AS (
                     SELECT unit_id, arg_max(status, ts) AS last_status, arg_max(row_id, ts) AS last_request
                     FROM usage GROUP BY unit_id),
                   success AS (
                     SELECT u.unit_id, u.last_request,
                            COALESCE(o.outcome, CASE WHEN u.last_status = 'ok' THEN 'success' END) = 'success' AS ok
                     FROM units u LEFT JOIN unit_keys k ON k.unit_id = u.unit_id
                     LEFT JOIN outcomes o ON o.trace_id = k.unit_key)
                   SELECT tenant, feature, model, s.ok, status = 'error', count(*), sum(input_tokens),
                          sum(cache_read_tokens), sum(output_tokens), sum((r.row_id = s.last_request)::INT)
                   FROM usage r JOIN success s ON r.unit_id = s.unit_id GROUP BY ALL"""
            ).fetchall()

        def report() -> None:
            cost_report(store, Config(), by=DIMS)

        t_bare = best_of(bare, repeat)
        t_units = best_of(bare_units, repeat)
        t_same = best_of(bare_same_figures, repeat)
        t_report = best_of(report, repeat)
        r = cost_report(store, Config(), by=DIMS)
        # the same total from the row-level ledger (a price joined to every request)
        ledger = build_ledger(store, Config())
        row_total = float(ledger.requests.aggregate(c=ledger.requests.cost_usd.sum()).to_pyarrow()["c"][0].as_py())
        store.close()
    print(f"\n{rows:,} usage rows  ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)")
    print(f"  bare DuckDB SUM ... GROUP BY x{len(DIMS)}      {t_bare:8.3f} s  {rows / t_bare:14,.0f} rows/s")
    print(f"  bare + GROUP BY trace (units)      {t_units:8.3f} s  {rows / t_units:14,.0f} rows/s")
    print(f"  bare SQL, same figures, no prices  {t_same:8.3f} s  {rows / t_same:14,.0f} rows/s")
    print(f"  unitcost report (ledger+units)     {t_report:8.3f} s  {rows / t_report:14,.0f} rows/s")
    print(f"  ratio report / bare                {t_report / t_bare:8.1f} x")
    print(f"  ratio report / bare+units          {t_report / t_units:8.1f} x")
    print(f"  ratio report / bare same figures   {t_report / t_same:8.1f} x")
    print(
        f"  check: total ${r.total_cost_usd:,.2f} (row-level ledger ${row_total:,.2f}), "
        f"{r.units_of_work:,} units, {r.successful_outcomes:,} successful"
    )
    assert abs(r.total_cost_usd - row_total) < 0.01, "aggregate and row-level costs disagree"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="rows (repeatable); default 10M")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = parser.parse_args()
    for rows in args.rows or [10_000_000]:
        run(rows, args.repeat)


if __name__ == "__main__":
    main()

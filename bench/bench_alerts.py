"""Benchmark: ``explain`` over two days and ``watch`` over 30 days, each vs a bare DuckDB aggregation.

Builds a synthetic usage table directly in DuckDB (tenants, features, models, workflows, releases and
prompt versions, traces of 3 requests, cache reads), then times in the same process:

* ``explain``: two days of ``--day-rows`` rows each (the period and the same day a week earlier), the full
  token-cost decomposition with contributors by tenant, feature, workflow, model, release and prompt version;
  vs ``bare``: one ``SUM ... GROUP BY day, feature, model`` over the same two days;
* ``watch``: every rule (budgets, anomalies, drift, deployment regressions) over ``--month-rows`` rows spread
  over 30 days, as of the newest data; vs ``bare``: one ``SUM ... GROUP BY hour, feature`` over the month.

Run: ``python bench/bench_alerts.py`` (10M rows a day, 10M in the month) or
``python bench/bench_alerts.py --month-rows 100000000``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

from timing import best_of
from unitcost.alerts.watch import watch
from unitcost.analysis.explain import explain_change
from unitcost.analysis.windows import Window
from unitcost.config import Config
from unitcost.store import open_store, rollups
from unitcost.store.models import rebuild as rebuild_models
from unitcost.store.units import link_all, rebuild_mixed

DAY = 86_400_000_000


def build(path: Path, rows: int, start: str, span_us: int, days: list[int] | None = None) -> None:
    """``rows`` requests over ``span_us`` from ``start`` (or, with ``days``, split evenly over those days)."""
    store = open_store(path)
    t = time.perf_counter()
    if days:
        per = rows // len(days)
        offsets = " + ".join(f"CASE WHEN i // {per} = {k} THEN {d * DAY} ELSE 0 END" for k, d in enumerate(days))
        ts = f"TIMESTAMP '{start}' + to_microseconds(({offsets}) + (i % {per}) * ({DAY} // {per}))"
    else:
        ts = f"TIMESTAMP '{start}' + to_microseconds((i * ({span_us} // {rows}))::BIGINT)"
    late = f"i >= {rows} * 6 // 10"  # a new release of feature-0 from 60% of the range on: +30% input tokens
    store.raw.execute(
        f"""
        INSERT INTO usage (ts, request_id, trace_id, tenant, feature, workflow, provider, model, input_tokens,
                           cache_read_tokens, output_tokens, status, attempt, latency_ms, release, prompt_version,
                           unit_id, row_id)
        SELECT {ts}, 'r' || i, 't' || (i // 3), 'tenant-' || (hash(i // 3) % 40), 'feature-' || (hash(i // 3) % 3),
               'step-' || (i % 3), CASE hash(i) % 4 WHEN 0 THEN 'anthropic' ELSE 'openai' END,
               CASE hash(i) % 4 WHEN 0 THEN 'claude-haiku-4-5' WHEN 1 THEN 'gpt-4o' ELSE 'gpt-4o-mini' END,
               ((hash(i + 1) % 4000) * CASE WHEN {late} AND hash(i // 3) % 3 = 0 THEN 1.3 ELSE 1 END)::BIGINT,
               (hash(i + 2) % 1000)::BIGINT // 2, (hash(i + 3) % 800)::BIGINT,
               CASE WHEN hash(i + 4) % 20 = 0 THEN 'error' ELSE 'ok' END, 1, (hash(i + 5) % 3000)::DOUBLE,
               CASE WHEN {late} THEN 'r2' ELSE 'r1' END, CASE WHEN {late} THEN 'p2' ELSE 'p1' END,
               i // 3 + 1, i + 1
        FROM range({rows}) r(i)"""
    )
    store.raw.execute(f"INSERT INTO unit_keys SELECT 't' || j, j + 1 FROM range(({rows} + 2) // 3) r(j)")
    link_all(store.raw)  # what ingestion keeps besides the rows: links, catalogs, rollups
    rebuild_models(store.raw)
    rollups.rebuild(store.raw)
    rebuild_mixed(store.raw)
    store.raw.execute("CHECKPOINT")
    store.close()
    print(f"built {rows:,} rows in {time.perf_counter() - t:.1f} s")


def bench_explain(day_rows: int, repeat: int, folder: str) -> None:
    path = Path(folder) / "explain.duckdb"
    build(path, 2 * day_rows, "2026-10-12", 0, days=[0, 7])
    store = open_store(path)
    base = Window(dt.datetime(2026, 10, 12), dt.datetime(2026, 10, 13), "baseline")
    period = Window(dt.datetime(2026, 10, 19), dt.datetime(2026, 10, 20), "period")
    ours = best_of(lambda: explain_change(store, Config(), period, base, basis="token"), repeat)
    bare = best_of(
        lambda: store.raw.execute(
            "SELECT date_trunc('day', ts), feature, model, sum(input_tokens), sum(cache_read_tokens), "
            "sum(output_tokens), count(*) FROM usage GROUP BY ALL"
        ).fetchall(),
        repeat,
    )
    print(f"explain, 2 days x {day_rows:,} rows: {ours:.2f} s   bare GROUP BY: {bare:.2f} s   ratio {ours / bare:.1f}x")
    store.close()


def bench_watch(month_rows: int, repeat: int, folder: str) -> None:
    path = Path(folder) / "watch.duckdb"
    build(path, month_rows, "2026-10-01", 30 * DAY)
    store = open_store(path)
    config = Config(budgets=[{"name": "monthly", "amount_usd": 1_000_000.0}])
    ours = best_of(lambda: store.raw.execute("DELETE FROM alerts") and watch(store, config, deliver=False), repeat)
    bare = best_of(
        lambda: store.raw.execute(
            "SELECT date_trunc('hour', ts), feature, sum(input_tokens), sum(output_tokens), count(*) "
            "FROM usage GROUP BY ALL"
        ).fetchall(),
        repeat,
    )
    found = watch(store, config, deliver=False, since=dt.datetime(2026, 10, 8)).findings
    print(f"watch, 30 days, {month_rows:,} rows: {ours:.2f} s   bare GROUP BY: {bare:.2f} s   ratio {ours / bare:.1f}x")
    print(f"  findings replayed since Oct 8: {sorted({f.rule for f in found})}")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day-rows", type=int, default=10_000_000)
    parser.add_argument("--month-rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", choices=["explain", "watch"], default=None)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(dir=os.environ.get("UNITCOST_BENCH_DIR")) as tmp:
        if args.only in (None, "explain"):
            bench_explain(args.day_rows, args.repeat, tmp)
        if args.only in (None, "watch"):
            bench_watch(args.month_rows, args.repeat, tmp)


if __name__ == "__main__":
    main()

"""Rollups kept at ingestion: token sums per hour (``usage_hourly``) and model-call latencies per day
(``usage_latency``).

``watch`` reads the same months of requests several times: the spend series of the anomaly rule and the budgets
(token cost per hour and feature), the drift rule (per feature and day: token moments, retries, a latency
histogram) and the deployment rule (when each release and prompt version of a feature first appeared). Each is
a ``GROUP BY`` over every request of the range, seconds at 100M rows. The rollups answer them from a few rows
per hour:

* ``usage_hourly``: per (hour, feature, release, prompt version, provider, model, response cache hit, input
  band) the request count, first and last ``ts``, token sums, the drift rule's token moments, retries, the
  count of latencies and the second moments of the price components (the deployment rule's variance of the
  cost per request). Cost is linear in tokens inside a price segment, so these sums price exactly whenever
  the segments of the range are unions of (hour, band) cells: every price change of the range on the hour
  (genai-prices changes prices at midnight; time-of-day prices are not) and every tier threshold among the
  band edges (:func:`covers`). Otherwise the callers scan the requests as before.
* ``usage_latency``: per (day, feature, latency bucket), the model calls (not response cache hits) with a
  latency: the drift rule's p95 histogram.

The *band* of a request is how many of the edges (``usage_rollup_bands``: every tier threshold of the
genai-prices data, :func:`unitcost.pricing.tokens.tier_thresholds`) its input tokens exceed; a price bracket
(tiers apply above their threshold) is then a union of bands.

Upkeep: ingestion folds each batch's new rows in (:func:`fold_new_rows`: appended, re-grouped once a key has
more than :data:`MAX_PARTS` rows, so readers always sum the rows of a key). The OTLP adapter, which fills empty
dimensions of stored rows from spans that come later, recomputes the hours of the rows it changed
(:func:`refresh_units`). Usage rows are never deleted. A workspace written before the rollups existed, with
other rollup columns, or whose band edges differ from the installed genai-prices data, gets them rebuilt
when opened (:func:`ensure`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import duckdb
import ibis
import ibis.expr.types as ir

from unitcost.periods import naive_utc
from unitcost.pricing.tokens import tier_thresholds
from unitcost.schema import TOKEN_COLUMNS, USAGE_HOURLY, USAGE_LATENCY

if TYPE_CHECKING:
    from unitcost.ledger.segments import Segmentation
    from unitcost.store.duckdb import Store

#: the dimensions ``usage_hourly`` keeps (the spend series can be split by any of them)
DIMENSIONS = ("feature", "release", "prompt_version")
#: latency histogram resolution: buckets per factor e (each bucket is exp(1/40) - 1 = 2.5% wide)
LATENCY_BUCKETS_PER_E = 40
_HOUR = dt.timedelta(hours=1)
_KEYS = ("hour", *DIMENSIONS, "provider", "model", "cache_hit", "band")
#: the price components of a request (``ledger.segments.COMPONENTS``) by letter: uncached input, cache read,
#: cache write, output that is not reasoning, reasoning; cost = sum of component x rate (+ a per-request fee)
COMPONENT_SQL = {
    "i": "(COALESCE(input_tokens, 0) - COALESCE(cache_read_tokens, 0) - COALESCE(cache_write_tokens, 0))",
    "r": "COALESCE(cache_read_tokens, 0)",
    "w": "COALESCE(cache_write_tokens, 0)",
    "o": "(COALESCE(output_tokens, 0) - COALESCE(reasoning_tokens, 0))",
    "z": "COALESCE(reasoning_tokens, 0)",
}
#: the second moments of the components (``m_ab`` = sum of a x b): with the rates, the sum of squared costs
MOMENTS = tuple(f"m_{a}{b}" for k, a in enumerate(COMPONENT_SQL) for b in list(COMPONENT_SQL)[k:])
_SUMS = (
    "requests",
    *TOKEN_COLUMNS,
    "input_sq",
    "cache_read_sq",
    "input_cache",
    "output_sq",
    "retries",
    "latency_n",
    *MOMENTS,
)


def _band_sql(edges: tuple[int, ...]) -> str:
    tokens = "COALESCE(input_tokens, 0)"
    return " + ".join(f"CAST({tokens} > {e} AS INTEGER)" for e in edges) if edges else "0"


def _hourly_select(edges: tuple[int, ...], where: str) -> str:
    """The ``usage_hourly`` rows of the usage rows ``where`` selects."""
    tokens = {c: f"COALESCE({c}, 0)::DOUBLE" for c in ("input_tokens", "cache_read_tokens", "output_tokens")}
    return f"""SELECT date_trunc('hour', ts) AS hour, {", ".join(DIMENSIONS)}, provider, model,
        COALESCE(response_cache_hit, false) AS cache_hit, {_band_sql(edges)} AS band,
        count(*) AS requests, min(ts) AS first_ts, max(ts) AS last_ts,
        {", ".join(f"CAST(COALESCE(sum({c}), 0) AS BIGINT) AS {c}" for c in TOKEN_COLUMNS)},
        sum({tokens["input_tokens"]} * {tokens["input_tokens"]}) AS input_sq,
        sum({tokens["cache_read_tokens"]} * {tokens["cache_read_tokens"]}) AS cache_read_sq,
        sum({tokens["input_tokens"]} * {tokens["cache_read_tokens"]}) AS input_cache,
        sum({tokens["output_tokens"]} * {tokens["output_tokens"]}) AS output_sq,
        count(*) FILTER (WHERE COALESCE(attempt > 1, status = 'error', false)) AS retries,
        count(latency_ms) AS latency_n,
        {", ".join(f"sum({COMPONENT_SQL[m[2]]}::DOUBLE * {COMPONENT_SQL[m[3]]}::DOUBLE) AS {m}" for m in MOMENTS)}
        FROM usage WHERE {where} GROUP BY ALL"""


def _latency_select(where: str) -> str:
    """The ``usage_latency`` rows of the usage rows ``where`` selects."""
    bucket = f"CAST(floor(ln(greatest(latency_ms, 1.0)) * {LATENCY_BUCKETS_PER_E}) AS INTEGER)"
    return f"""SELECT date_trunc('day', ts) AS day, feature, {bucket} AS bucket, count(*) AS requests
        FROM usage WHERE ({where}) AND latency_ms IS NOT NULL AND feature IS NOT NULL
          AND NOT COALESCE(response_cache_hit, false)
        GROUP BY ALL"""


def stored_edges(con: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
    """The band edges the rollups were built with (empty before they are built)."""
    return tuple(int(r[0]) for r in con.execute("SELECT edge FROM usage_rollup_bands ORDER BY edge").fetchall())


#: a key's rows may be split over this many rows before the hours of a batch are re-grouped (see fold_new_rows)
MAX_PARTS = 16
_LATENCY_KEYS = ("day", "feature", "bucket")


def compact(con: duckdb.DuckDBPyConnection, since: dt.datetime | None = None) -> None:
    """Re-group the rollup rows from the hour ``since`` on (None: all) so that each key has one row."""
    for table, keys, sums, period in (
        ("usage_hourly", _KEYS, _SUMS, "hour"),
        ("usage_latency", _LATENCY_KEYS, ("requests",), "day"),
    ):
        extra = ", min(first_ts) AS first_ts, max(last_ts) AS last_ts" if table == "usage_hourly" else ""
        where = f"WHERE {period} >= date_trunc('{period}', CAST(? AS TIMESTAMP))" if since is not None else ""
        params = [since] if since is not None else []
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _compacted AS SELECT {", ".join(keys)},
            {", ".join(f"sum({c}) AS {c}" for c in sums)}{extra} FROM {table} {where} GROUP BY ALL""",
            params,
        )
        con.execute(f"DELETE FROM {table} {where}", params)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _compacted")
        con.execute("DROP TABLE _compacted")


def fold_new_rows(con: duckdb.DuckDBPyConnection, after_row_id: int) -> None:
    """Fold the usage rows with ``row_id > after_row_id`` (just inserted) into the rollups.

    The batch's groups are appended (every reader sums rows per key); once a key of the hours the batch touched
    has more than :data:`MAX_PARTS` rows, those hours are re-grouped. A small batch (the OTLP receiver writes one
    per request it accepts) thus costs two inserts and a check, not a merge.
    """
    where = f"row_id > {int(after_row_id)}"
    con.execute(f"INSERT INTO usage_hourly BY NAME {_hourly_select(stored_edges(con), where)}")
    con.execute(f"INSERT INTO usage_latency BY NAME {_latency_select(where)}")
    row = con.execute(f"SELECT date_trunc('hour', min(ts)) FROM usage WHERE {where}").fetchone()
    since = row[0] if row else None
    if since is None:
        return
    worst = con.execute(
        f"SELECT max(n) FROM (SELECT count(*) AS n FROM usage_hourly WHERE hour >= ? GROUP BY {', '.join(_KEYS)})",
        [since],
    ).fetchone()
    if worst and worst[0] and worst[0] > MAX_PARTS:
        compact(con, since)


def refresh_units(con: duckdb.DuckDBPyConnection, units_sql: str) -> None:
    """Recompute the hours (and days) holding rows of the units ``units_sql`` selects, after their rows changed."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _touched AS SELECT DISTINCT date_trunc('hour', ts) AS hour
        FROM usage WHERE unit_id IN ({units_sql})"""
    )
    hours = "date_trunc('hour', ts) IN (SELECT hour FROM _touched)"
    con.execute("DELETE FROM usage_hourly WHERE hour IN (SELECT hour FROM _touched)")
    con.execute(f"INSERT INTO usage_hourly BY NAME {_hourly_select(stored_edges(con), hours)}")
    days = "date_trunc('day', ts) IN (SELECT DISTINCT date_trunc('day', hour) FROM _touched)"
    con.execute("DELETE FROM usage_latency WHERE day IN (SELECT DISTINCT date_trunc('day', hour) FROM _touched)")
    con.execute(f"INSERT INTO usage_latency BY NAME {_latency_select(days)}")
    con.execute("DROP TABLE _touched")


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute both rollups from every usage row, with the installed genai-prices' tier thresholds as band
    edges (older workspaces, a genai-prices update, rows loaded without ingestion)."""
    edges = tier_thresholds()
    con.execute("DELETE FROM usage_rollup_bands")
    if edges:
        con.execute(f"INSERT INTO usage_rollup_bands VALUES {', '.join(f'({e})' for e in edges)}")
    con.execute("DELETE FROM usage_hourly")
    con.execute(f"INSERT INTO usage_hourly BY NAME {_hourly_select(edges, 'true')}")
    con.execute("DELETE FROM usage_latency")
    con.execute(f"INSERT INTO usage_latency BY NAME {_latency_select('true')}")


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild the rollups when their band edges are not the installed genai-prices' (a new workspace gets its
    edges here; an older one, or one opened after a genai-prices update, its rollups too), or when they were
    written with other columns (an earlier version of unitcost)."""
    stale = False
    for table in (USAGE_HOURLY, USAGE_LATENCY):
        if [r[0] for r in con.execute(f"DESCRIBE {table.name}").fetchall()] != table.column_names:
            con.execute(f"DROP TABLE {table.name}")
            con.execute(table.ddl())
            stale = True
    if stale or stored_edges(con) != tier_thresholds():
        rebuild(con)


def edges_if_built(store: Store) -> tuple[int, ...] | None:
    """The band edges of a workspace's rollups, or None where they are not built (an older workspace opened
    read-only): then callers read ``usage``."""
    try:
        edges = stored_edges(store.raw)
    except duckdb.CatalogException:
        return None
    return edges if edges == tier_thresholds() else None


def covers(seg: Segmentation, edges: tuple[int, ...], grain: dt.timedelta = _HOUR) -> bool:
    """Whether price segments ``seg`` are unions of rollup cells: every time edge on the ``grain`` (from
    midnight) and every token edge a band edge."""
    on_grain = all((t - dt.datetime.combine(t.date(), dt.time())) % grain == dt.timedelta(0) for t in seg.time_edges)
    return on_grain and set(seg.token_edges) <= set(edges)


def bracket_of_band(seg: Segmentation, edges: tuple[int, ...], band: int) -> int:
    """The price bracket (:meth:`Segmentation.bracket`) of every request in ``band``: a request of band ``k``
    has edges[k-1] < input_tokens <= edges[k], so its bracket counts the token edges below edges[k]."""
    if band >= len(edges):
        return len(seg.token_edges)
    return sum(1 for e in seg.token_edges if e < edges[band])


def bracket_expr(band: ir.IntegerValue, seg: Segmentation, edges: tuple[int, ...]) -> ir.IntegerValue:
    """The price bracket of the rollup rows of ``band`` (:func:`bracket_of_band`, on the engine)."""
    if not seg.token_edges:
        return ibis.literal(0, "int64")
    cases = [(band == b, bracket_of_band(seg, edges, b)) for b in range(len(edges) + 1)]
    return ibis.cases(*cases).cast("int64")


def segment_of(h: ir.Table, seg: Segmentation, edges: tuple[int, ...]) -> dict[str, ir.IntegerValue]:
    """The segment keys (``epoch``, ``bracket``) of ``usage_hourly`` rows ``h``, where :func:`covers` holds: every
    price change is on the hour, so an hour's epoch is its start's."""
    return {"epoch": seg.epoch(h.hour), "bracket": bracket_expr(h.band, seg, edges)}


def split_range(
    store: Store, u: ir.Table, start: dt.datetime | None, end: dt.datetime | None
) -> tuple[ir.Table | None, ir.Table | None]:
    """A range read from the rollup where it can be: the ``usage_hourly`` rows of its whole hours (None when it
    has none) and the requests ``u`` (already restricted to [start, end)) of the partial hours at either end
    (None when there are none)."""
    first, last = whole_hours(start, end)
    if first is not None and last is not None and first >= last:
        return None, u
    h = store.table("usage_hourly")
    partial = []
    if first is not None:
        h = h.filter(h.hour >= first)
        partial.append(u.ts < first)
    if last is not None:
        h = h.filter(h.hour < last)
        partial.append(u.ts >= last)
    return h, u.filter(ibis.or_(*partial)) if partial else None


def whole_hours(start: dt.datetime | None, end: dt.datetime | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The whole UTC hours inside [start, end): (first hour start, end of the last whole hour); None for an open
    bound, naive UTC (an aware bound is converted: hours are UTC hours). Rows in [start, first) and [last, end)
    are the partial hours a caller reads from ``usage``.

    >>> whole_hours(dt.datetime(2026, 10, 1, 4, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))), None)
    (datetime.datetime(2026, 9, 30, 23, 0), None)
    """
    start = naive_utc(start) if start is not None else None
    end = naive_utc(end) if end is not None else None
    first = None
    if start is not None:
        floor = start.replace(minute=0, second=0, microsecond=0)
        first = floor if floor == start else floor + _HOUR
    last = end.replace(minute=0, second=0, microsecond=0) if end is not None else None
    return first, last

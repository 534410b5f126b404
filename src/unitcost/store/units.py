"""Units of work in ``usage``: each request's link to the next request of its unit (``unit_next_ts``).

A report counts the units of work of a window ``[a, b)`` by crediting each unit to its last request inside
the window. Found per query, that is a ``GROUP BY unit_id`` over every row plus a join back to the rows (most
of ``explain``'s time at millions of rows). With the link stored, it is a filter in the same pass as the token
sums: a request is its unit's last in ``[a, b)`` exactly when ``unit_next_ts IS NULL OR unit_next_ts >= b``.

Requests of a unit are ordered by ``ts``, then ``row_id`` (ties go to the later-ingested row). The links are
kept right at ingestion: the new rows get theirs as they are inserted, and the units that already had rows
(a trace that goes on in a later file or OTLP batch, or a request that arrives late) are relinked, the only
existing rows that change. A workspace written by an older version gets the column and its links when it is
opened (:func:`link_all`).

A filter on a dimension (``explain`` of one feature: the anomaly rule's root causes) keeps only some requests, and
a link may point at a request the filter drops. It cannot for a unit whose requests all share one value of the
dimension: the filter keeps all of it or none. ``usage_mixed_units`` lists the units whose requests do not, for
the dimensions in :data:`MIXED_DIMENSIONS` (kept at ingestion, :func:`note_mixed`); a filtered query uses the
links for every other unit and finds the last kept request of the listed ones by a ``GROUP BY``. The list may hold
a unit that is no longer mixed (the OTLP adapter fills empty dimensions later), which costs time, never a figure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir

#: the link of a request: the start of the next request of its unit, in (ts, row_id) order
NEXT_TS = "lead(ts) OVER (PARTITION BY unit_id ORDER BY ts, row_id)"


def is_last_in(end_sql: str) -> str:
    """SQL condition: the row is its unit's last request in a window ending at ``end_sql`` (exclusive)."""
    return f"(unit_next_ts IS NULL OR unit_next_ts >= {end_sql})"


def last_in(u: ir.Table, end: dt.datetime | ir.TimestampValue) -> ir.BooleanValue:
    """The ibis twin of :func:`is_last_in`: the row is its unit's last request in a window ending at ``end``."""
    return u.unit_next_ts.isnull() | (u.unit_next_ts >= (ibis.literal(end) if isinstance(end, dt.datetime) else end))


#: the dimensions whose mixing inside units is tracked (``usage_mixed_units``)
MIXED_DIMENSIONS = ("tenant", "feature")


def note_mixed(con: duckdb.DuckDBPyConnection, rows_sql: str) -> None:
    """Add to ``usage_mixed_units`` the units of the usage rows ``rows_sql`` selects (a WHERE condition holding
    every row of each unit) whose rows do not share one value of a tracked dimension."""
    checks = ", ".join(
        f"(min({d}) IS DISTINCT FROM max({d}) OR (count({d}) > 0 AND count({d}) < count(*))) AS {d}"
        for d in MIXED_DIMENSIONS
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _mixed AS SELECT unit_id, {checks} FROM usage WHERE {rows_sql}
        GROUP BY unit_id HAVING {" OR ".join(MIXED_DIMENSIONS)}"""
    )
    for d in MIXED_DIMENSIONS:
        con.execute(
            f"""INSERT INTO usage_mixed_units SELECT unit_id, '{d}' FROM _mixed m WHERE m.{d}
            AND NOT EXISTS (SELECT 1 FROM usage_mixed_units x WHERE x.unit_id = m.unit_id AND x.dimension = '{d}')"""
        )
    con.execute("DROP TABLE _mixed")


def mixed_units(store: Any, dims: list[str]) -> ir.Table | None:
    """The ``unit_id`` of the units mixed in any of ``dims``; None if a dimension is not tracked."""
    if not set(dims) <= set(MIXED_DIMENSIONS):
        return None
    m = store.table("usage_mixed_units")
    return m.filter(m.dimension.isin(dims)).select("unit_id")


def relink_units(con: duckdb.DuckDBPyConnection, units_sql: str | None = None) -> None:
    """Recompute ``unit_next_ts`` of every row of the units ``units_sql`` selects (a query of ``unit_id``; None:
    every unit); only rows whose link changes are written."""
    where = f"WHERE unit_id IN ({units_sql})" if units_sql is not None else ""
    con.execute(
        f"""UPDATE usage SET unit_next_ts = l.nx
        FROM (SELECT row_id, {NEXT_TS} AS nx FROM usage {where}) l
        WHERE usage.row_id = l.row_id AND usage.unit_next_ts IS DISTINCT FROM l.nx"""
    )


def link_all(con: duckdb.DuckDBPyConnection) -> None:
    """Add ``unit_next_ts`` to a ``usage`` table that lacks it, and (re)compute every link.

    For workspaces written before the column existed, and for rows loaded without ingestion (benchmarks).
    """
    columns = {r[0] for r in con.execute("DESCRIBE usage").fetchall()}
    if "unit_next_ts" not in columns:
        con.execute("ALTER TABLE usage ADD COLUMN unit_next_ts TIMESTAMP")
    relink_units(con)


def rebuild_mixed(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute ``usage_mixed_units`` from every usage row (older workspaces, rows loaded without ingestion)."""
    con.execute("DELETE FROM usage_mixed_units")
    note_mixed(con, "true")

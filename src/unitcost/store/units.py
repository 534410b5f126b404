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
"""

from __future__ import annotations

import datetime as dt

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

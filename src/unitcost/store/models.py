"""The model catalog (``usage_models``): which (provider, model) pairs have usage, and over which time range.

Pricing a range needs the pairs seen in it and their prices. Found per query, that is a ``GROUP BY provider,
model`` over every request of the range, a pass over strings as long as the analysis itself on short windows.
The catalog answers it from a handful of rows: ingestion folds each batch's pairs into it, and a workspace
written before it existed gets it when opened. A pair listed for a range may have no request in a sub-range
(a gap in its traffic): pricing it costs nothing and changes no figure, since prices only ever join requests.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    from unitcost.store.duckdb import Store


def fold_new_rows(con: duckdb.DuckDBPyConnection, after_row_id: int) -> None:
    """Fold the usage rows with ``row_id > after_row_id`` (just inserted) into the catalog."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _new_models AS
        SELECT provider, model, min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS requests
        FROM usage WHERE row_id > {int(after_row_id)} GROUP BY provider, model"""
    )
    con.execute(
        """UPDATE usage_models m SET first_ts = least(m.first_ts, b.first_ts), last_ts = greatest(m.last_ts, b.last_ts),
               requests = m.requests + b.requests
        FROM _new_models b WHERE m.provider = b.provider AND m.model = b.model"""
    )
    con.execute(
        """INSERT INTO usage_models SELECT b.* FROM _new_models b
        WHERE NOT EXISTS (SELECT 1 FROM usage_models m WHERE m.provider = b.provider AND m.model = b.model)"""
    )
    con.execute("DROP TABLE _new_models")


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute the catalog from every usage row (older workspaces, rows loaded without ingestion)."""
    con.execute("DELETE FROM usage_models")
    con.execute(
        """INSERT INTO usage_models
        SELECT provider, model, min(ts), max(ts), count(*) FROM usage GROUP BY provider, model"""
    )


def models_in(store: Store, start: dt.datetime | None, end: dt.datetime | None) -> list[dict[str, Any]]:
    """The pairs with usage overlapping [start, end), each with ``first`` and ``last`` clipped to the range."""
    rows = store.sql(
        """SELECT provider, model, first_ts, last_ts FROM usage_models
        WHERE (CAST(? AS TIMESTAMP) IS NULL OR last_ts >= ?) AND (CAST(? AS TIMESTAMP) IS NULL OR first_ts < ?)
        ORDER BY provider, model""",
        [start, start, end, end],
    )
    out = []
    for provider, model, first, last in rows:
        if start is not None:
            first = max(first, start)
        if end is not None:
            last = min(last, end - dt.timedelta(microseconds=1))
        out.append({"provider": provider, "model": model, "first": first, "last": last})
    return out

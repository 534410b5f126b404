"""The embedded DuckDB store: the one place that talks to the engine directly.

Analytics receive ibis table expressions from :meth:`Store.table`; writes go
through :meth:`Store.transaction`, the single writer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
from ibis.backends.duckdb import Backend

from unitcost.errors import UnitcostError
from unitcost.schema import TABLES
from unitcost.store import rollups
from unitcost.store.models import rebuild as rebuild_models
from unitcost.store.units import link_all, rebuild_mixed


class StoreError(RuntimeError, UnitcostError):
    """The workspace file cannot be opened or written."""


class Store:
    """An open workspace database: ibis for reading, one locked writer for writing."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = str(path)
        try:
            self.ibis: Backend = ibis.duckdb.connect(database=self.path, read_only=read_only)
        except duckdb.IOException as e:
            raise StoreError(f"cannot open workspace {self.path}: {e}") from e
        self.raw: duckdb.DuckDBPyConnection = self.ibis.con
        self.raw.execute("SET TimeZone = 'UTC'")
        self._write_lock = threading.RLock()
        self._in_transaction = False
        if not read_only:
            self.ensure_schema()

    def cursor(self) -> Store:
        """A handle on the same database for another thread: its own DuckDB connection, the same write lock.

        A DuckDB connection must not be used by two threads at once; the server's writer owns this one, so
        readers (``/metrics``, the watcher) each take a cursor.
        """
        other = object.__new__(Store)
        other.path = self.path
        other.raw = self.raw.cursor()
        other.raw.execute("SET TimeZone = 'UTC'")
        other.ibis = ibis.duckdb.from_connection(other.raw)
        other._write_lock = self._write_lock
        other._in_transaction = False
        return other

    def ensure_schema(self) -> None:
        """Create the canonical tables that do not exist yet."""
        with self.transaction() as con:
            existing = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            for table in TABLES:
                con.execute(table.ddl())
            # a workspace written before the units-of-work links or the model catalog existed
            columns = {r[0] for r in con.execute("DESCRIBE usage").fetchall()}
            if "unit_next_ts" not in columns:
                link_all(con)
            if "usage" in existing and "usage_models" not in existing:
                rebuild_models(con)
            if "usage" in existing and "usage_mixed_units" not in existing:
                rebuild_mixed(con)
            # rows that did not come through ingestion (an older unitcost, SQL straight into usage): the model
            # catalog counts every ingested row, so a different count means the derived data is out of date
            counts = con.execute(
                "SELECT (SELECT count(*) FROM usage), (SELECT COALESCE(sum(requests), 0) FROM usage_models)"
            ).fetchone()
            if counts and counts[0] != counts[1]:
                link_all(con)
                rebuild_models(con)
                rebuild_mixed(con)
                rollups.rebuild(con)
            rollups.ensure(con)  # built on first open, rebuilt when genai-prices' tier thresholds change

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield the connection as the single writer, outside any transaction.

        For work on temporary tables before the transaction that writes the workspace (ingestion stages and
        checks a file this way: DuckDB reads a temporary table written in the open transaction about half as fast
        as a committed one). :meth:`transaction` may be entered inside it.
        """
        with self._write_lock:
            yield self.raw

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield the connection inside one transaction; roll back on any error."""
        with self._write_lock:
            if self._in_transaction:  # the lock is reentrant (see writing()); DuckDB transactions do not nest
                raise StoreError("a transaction is already open on this connection; transactions do not nest")
            self.raw.execute("BEGIN TRANSACTION")
            self._in_transaction = True
            try:
                yield self.raw
            except BaseException:
                self.raw.execute("ROLLBACK")
                raise
            else:
                self.raw.execute("COMMIT")
            finally:
                self._in_transaction = False

    def table(self, name: str) -> ibis.Table:
        """Return the ibis expression for a stored table."""
        return self.ibis.table(name)

    def materialize(self, expr: ibis.Table, prefix: str = "_uc_tmp") -> ibis.Table:
        """Compute ``expr`` once into a temporary table and return it (drop it with :meth:`drop`)."""
        import uuid

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self._write_lock:
            return self.ibis.create_table(name, expr, temp=True)

    def drop(self, table: ibis.Table) -> None:
        """Drop a temporary table made by :meth:`materialize`."""
        with self._write_lock:
            name = table.get_name().rsplit(".", 1)[-1]
            self.raw.execute(f'DROP TABLE IF EXISTS temp.main."{name}"')

    def register_arrow(self, name: str, data: pa.Table) -> ibis.Table:
        """Make an in-memory Arrow table visible to queries under ``name``."""
        self.raw.register(name, data)
        return self.ibis.table(name)

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read query and return its rows (for small, engine-specific reads)."""
        return self.raw.execute(query, params or []).fetchall()

    def close(self) -> None:
        self.ibis.disconnect()


def open_store(path: str | Path, *, read_only: bool = False) -> Store:
    """Open (creating if needed) the DuckDB workspace at ``path``."""
    return Store(path, read_only=read_only)

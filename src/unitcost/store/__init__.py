"""Storage engines behind one small interface; DuckDB is the default."""

from __future__ import annotations

from unitcost.store.duckdb import Store, open_store

__all__ = ["Store", "open_store"]

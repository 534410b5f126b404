"""The canonical format: CSV, Parquet or JSONL files whose columns are the schema's."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from unitcost.ingest.base import IngestResult, OnError, ingest_canonical_file
from unitcost.schema import OUTCOMES, USAGE, Table
from unitcost.store import Store

TARGETS: dict[str, Table] = {"usage": USAGE, "outcomes": OUTCOMES}


def ingest_files(
    store: Store,
    target: str,
    paths: Iterable[str | Path],
    *,
    on_error: OnError = OnError.QUARANTINE,
) -> list[IngestResult]:
    """Ingest canonical files into ``usage`` or ``outcomes``; return one result per file."""
    table = TARGETS[target]
    return [ingest_canonical_file(store, Path(p), table, on_error=on_error) for p in paths]

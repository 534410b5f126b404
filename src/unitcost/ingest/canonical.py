"""The canonical formats: CSV, Parquet or JSONL files whose columns are the schema's."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from unitcost.config import Config
from unitcost.ingest.base import Adapter, IngestResult, Mapping, OnError, identity_mapping, ingest_file
from unitcost.ingest.registry import get_adapter, register
from unitcost.schema import OUTCOMES, USAGE
from unitcost.store import Store


@register
class UsageAdapter(Adapter):
    """Model-call records in the canonical ``usage`` schema (docs/schema.md)."""

    name = "usage"
    description = "usage records in the canonical schema (CSV, Parquet, JSONL)"

    def mappings(self, columns: list[str], path: Path) -> list[Mapping]:
        return [identity_mapping(USAGE, columns, path)]


@register
class OutcomesAdapter(Adapter):
    """Unit-of-work outcomes in the canonical ``outcomes`` schema."""

    name = "outcomes"
    description = "outcomes of units of work in the canonical schema (CSV, Parquet, JSONL)"

    def mappings(self, columns: list[str], path: Path) -> list[Mapping]:
        return [identity_mapping(OUTCOMES, columns, path)]


def ingest_files(
    store: Store,
    fmt: str,
    paths: Iterable[str | Path],
    *,
    on_error: OnError = OnError.QUARANTINE,
    config: Config | None = None,
    mapping: Path | None = None,
) -> list[IngestResult]:
    """Ingest files of format ``fmt`` (usage, outcomes, or a source format); results per file and table."""
    adapter = get_adapter(fmt, config=config, mapping=mapping)
    results: list[IngestResult] = []
    for p in paths:
        results.extend(ingest_file(store, Path(p), adapter, on_error=on_error))
    return results

"""The canonical formats: CSV, Parquet or JSONL files whose columns are the schema's."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from unitcost.config import Config
from unitcost.errors import IngestError, InputFileNotFound
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


_PATTERN = frozenset("*?[")


def input_files(adapter: Adapter, paths: Iterable[str | Path]) -> list[Path]:
    """The files to read for ``paths``, in order.

    A file is taken as given (a missing one is reported when it is read). A folder gives the files under it that
    the format reads, by extension, sorted by path, hidden ones skipped. A pattern with ``*``, ``?`` or ``[`` that
    the shell did not expand (it was quoted) gives its matches, sorted. A folder or pattern with nothing to read
    is an error: it is a mistake, not an empty export.
    """
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                f
                for f in path.rglob("*")
                if f.is_file()
                and _reads(adapter, f)
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
            )
            if not found:
                wanted = ", ".join(sorted(adapter.readers))
                raise InputFileNotFound(
                    f"{path}: a folder with no {adapter.name} files in it (looked for {wanted}, .gz too)"
                )
            out.extend(found)
        elif not path.exists() and _PATTERN & set(str(raw)):
            matches = sorted(Path(m) for m in glob.glob(str(raw), recursive=True) if Path(m).is_file())
            if not matches:
                raise InputFileNotFound(f"{raw}: no file matches this pattern")
            out.extend(matches)
        else:
            out.append(path)
    return out


def _reads(adapter: Adapter, path: Path) -> bool:
    try:
        adapter.reader_for(path)
    except IngestError:
        return False
    return True


def ingest_files(
    store: Store,
    fmt: str,
    paths: Iterable[str | Path],
    *,
    on_error: OnError = OnError.QUARANTINE,
    config: Config | None = None,
    mapping: Path | None = None,
) -> list[IngestResult]:
    """Ingest files of format ``fmt`` (usage, outcomes, or a source format); results per file and table.

    ``paths``: files, folders and patterns (:func:`input_files`).
    """
    adapter = get_adapter(fmt, config=config, mapping=mapping)
    results: list[IngestResult] = []
    for p in input_files(adapter, paths):
        results.extend(ingest_file(store, p, adapter, on_error=on_error))
    return results

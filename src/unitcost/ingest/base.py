"""The shared ingestion machinery: read, validate, quarantine, dedupe, store.

Everything runs on the engine, in two phases (docs/formats.md). First, in temporary tables only: a file is
staged (``_stage``: a copy, or a view on a Parquet file) and every row is typed and checked with one SQL
expression per rule (``_checked_N``). Then one transaction per file: good rows are inserted with an anti-join
on the table's key, bad rows go to ``quarantine`` with the record number, field and reason; a file either
lands whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

import duckdb

from unitcost.config import Config
from unitcost.errors import IngestError, InputFileNotFound
from unitcost.schema import INTERNAL_COLUMNS, OUTCOME_VALUES, STATUSES, TOKEN_COLUMNS, Column, Table
from unitcost.store import Store, rollups
from unitcost.store.models import fold_new_rows as fold_new_models
from unitcost.store.units import NEXT_TS, note_mixed, relink_units


class OnError(StrEnum):
    """What to do with a row that fails validation."""

    QUARANTINE = "quarantine"
    FAIL = "fail"


@dataclass(frozen=True)
class IngestResult:
    """Counts for one ingested file and target table.

    ``rows_read = rows_landed + rows_quarantined + duplicates_skipped``; ``rows_ignored``
    counts records the format says are not for this table (e.g. OTLP spans that are not
    model calls), reported but not quarantined.
    """

    source_file: str
    target_table: str
    format: str
    rows_read: int
    rows_landed: int
    rows_quarantined: int
    duplicates_skipped: int
    first_problem: str | None = None
    rows_ignored: int = 0


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def quote_ident(name: str) -> str:
    """Return ``name`` quoted as an SQL identifier.

    >>> quote_ident('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """Return ``value`` as an SQL string literal.

    >>> sql_literal("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


#: source types that hold a canonical type's values exactly, so no conversion (or check) is needed
_NATIVE = {
    "TIMESTAMP": ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "TIMESTAMP WITH TIME ZONE"),
    "BIGINT": ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UINTEGER", "USMALLINT", "UTINYINT"),
    "INTEGER": ("INTEGER", "SMALLINT", "TINYINT", "USMALLINT", "UTINYINT"),
    "DOUBLE": ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT"),
    "BOOLEAN": ("BOOLEAN",),
}


def is_native(sql_type: str, source_type: str | None) -> bool:
    """True when a source column of ``source_type`` converts to ``sql_type`` without loss or failure.

    >>> is_native("BIGINT", "INTEGER"), is_native("BIGINT", "VARCHAR")
    (True, False)
    """
    return source_type is not None and source_type in _NATIVE.get(sql_type, ())


def _text(col: str) -> str:
    """SQL for a staged column as trimmed text, NULL when empty."""
    return f"NULLIF(TRIM(CAST({quote_ident(col)} AS VARCHAR)), '')"


def _typed(col: str, sql_type: str, source_type: str | None = None, text: str | None = None) -> str:
    """SQL that converts a staged column to its canonical type (NULL when it cannot).

    ``text``: a column already holding the value as :func:`_text` (computed once, read by the checks too).
    """
    if is_native(sql_type, source_type):
        return f"CAST({quote_ident(col)} AS {sql_type})"
    c = quote_ident(text) if text else _text(col)
    if sql_type == "TIMESTAMP":
        return f"CAST(TRY_CAST({c} AS TIMESTAMPTZ) AS TIMESTAMP)"
    if sql_type == "BOOLEAN":
        return f"TRY_CAST(LOWER({c}) AS BOOLEAN)"
    if sql_type in ("BIGINT", "INTEGER"):
        # accept 12 and 12.0, refuse 12.5
        return (
            f"CASE WHEN TRY_CAST({c} AS DOUBLE) = FLOOR(TRY_CAST({c} AS DOUBLE)) "
            f"THEN TRY_CAST(TRY_CAST({c} AS DOUBLE) AS {sql_type}) END"
        )
    if sql_type == "JSON":
        # text holding JSON is parsed; a nested value (JSONL object, Parquet struct) is serialised
        if source_type is not None and source_type not in ("VARCHAR", "JSON"):
            return f"to_json({quote_ident(col)})"
        return f"TRY_CAST({c} AS JSON)"  # NULL when the text is not JSON
    if sql_type == "VARCHAR":
        return c
    return f"TRY_CAST({c} AS {sql_type})"


class CanonicalValidator:
    """Builds the typed projection and the row checks for a canonical table.

    A value that can fail to convert (text into a number, a timestamp, JSON) is trimmed once into a text column
    (:meth:`text_select`), which both the typed projection and the checks read.
    """

    def __init__(self, table: Table, present: list[str], source_types: dict[str, str] | None = None) -> None:
        self.table = table
        self.present = set(present)
        self.source_types = source_types or {}

    def can_fail(self, col: Column) -> bool:
        """True when a present column's staged values may not convert (so a check is needed)."""
        return not (col.sql_type == "VARCHAR" or is_native(col.sql_type, self.source_types.get(col.name)))

    def _checked_columns(self) -> list[Column]:
        return [c for c in self.table.columns if c.name not in INTERNAL_COLUMNS and c.name in self.present]

    def text_select(self, source_prefix: str = "") -> list[str]:
        """SQL select items: ``__txt_<column>``, the trimmed text of each column that can fail to convert."""
        return [
            f"{_text(source_prefix + c.name)} AS {quote_ident('__txt_' + c.name)}"
            for c in self._checked_columns()
            if self.can_fail(c)
        ]

    def text_columns(self) -> list[str]:
        """The columns :meth:`text_select` makes."""
        return [quote_ident("__txt_" + c.name) for c in self._checked_columns() if self.can_fail(c)]

    def typed_select(self, source_prefix: str = "") -> str:
        """SQL select list converting each (raw) column to its canonical type (reading :meth:`text_select`'s)."""
        parts = []
        for col in self.table.columns:
            if col.name in INTERNAL_COLUMNS:
                continue
            if col.name in self.present:
                text = "__txt_" + col.name if self.can_fail(col) else None
                expr = _typed(source_prefix + col.name, col.sql_type, self.source_types.get(col.name), text)
                if col.name in ("status", "outcome"):
                    expr = f"LOWER({expr})"
                parts.append(f"{expr} AS {col.name}")
            else:
                parts.append(f"CAST(NULL AS {col.sql_type}) AS {col.name}")
        return ", ".join(parts)

    def checks(self) -> list[tuple[str, str, str]]:
        """Return (field, SQL condition that is TRUE when the row is bad, reason)."""
        out: list[tuple[str, str, str]] = []
        for col in self._checked_columns():
            raw = quote_ident("__txt_" + col.name)
            # text and natively typed values cannot fail to convert: their typed value tells all
            cannot_fail = not self.can_fail(col)
            if col.required:
                missing = f"{col.name} IS NULL" if cannot_fail else f"{raw} IS NULL"
                out.append((col.name, missing, "required value is missing"))
            if not cannot_fail:
                out.append(
                    (col.name, f"{raw} IS NOT NULL AND {col.name} IS NULL", f"not a valid {col.sql_type.lower()}")
                )
        t = ""
        if self.table.name == "usage":
            for tok in TOKEN_COLUMNS:
                out.append((tok, f"{t}{tok} < 0", "token counts cannot be negative"))
            out.append(
                (
                    "cache_read_tokens",
                    f"COALESCE({t}cache_read_tokens, 0) + COALESCE({t}cache_write_tokens, 0) "
                    f"> COALESCE({t}input_tokens, 0)",
                    "cache_read_tokens + cache_write_tokens exceed input_tokens "
                    "(input_tokens must include cached tokens)",
                )
            )
            out.append(
                (
                    "reasoning_tokens",
                    f"COALESCE({t}reasoning_tokens, 0) > COALESCE({t}output_tokens, 0)",
                    "reasoning_tokens exceed output_tokens (output_tokens must include reasoning)",
                )
            )
            allowed = ", ".join(f"'{s}'" for s in STATUSES)
            out.append(("status", f"LOWER({t}status) NOT IN ({allowed})", f"status must be one of {STATUSES}"))
            out.append(("attempt", f"{t}attempt < 1", "attempt starts at 1"))
            for name in ("latency_ms", "ttft_ms", "gpu_seconds", "egress_bytes"):
                out.append((name, f"{t}{name} < 0", "cannot be negative"))
        if self.table.name == "outcomes":
            allowed = ", ".join(f"'{s}'" for s in OUTCOME_VALUES)
            out.append(
                (
                    "outcome",
                    f"LOWER({t}outcome) NOT IN ({allowed})",
                    f"outcome must be one of {OUTCOME_VALUES}",
                )
            )
        return out


#: a mapping expression that only names a staged column: s.name, "name" or s."name"
_COLUMN_REF = re.compile(r'(s\.)?(\w+|"(?:[^"]|"")*")')

#: the row-number column of a Parquet file staged as a view
PARQUET_ROW = "file_row_number"


def drop_temp(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop the temporary table or view ``name`` if there is one."""
    kind = con.execute(
        "SELECT 'VIEW' FROM duckdb_views() WHERE temporary AND view_name = ? "
        "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE temporary AND table_name = ?",
        [name, name],
    ).fetchone()
    if kind:
        con.execute(f"DROP {kind[0]} {quote_ident(name)}")


def _assign_unit_ids(con: duckdb.DuckDBPyConnection, checked: str) -> None:
    """Give every new unit of work among the valid rows of ``checked`` a dense integer id in ``unit_keys``."""
    con.execute(
        f"""INSERT INTO unit_keys
        SELECT unit_key, (SELECT COALESCE(max(unit_id), 0) FROM unit_keys) + row_number() OVER (ORDER BY unit_key)
        FROM (SELECT DISTINCT COALESCE(trace_id, request_id) AS unit_key FROM {checked} WHERE _reason IS NULL) n
        WHERE NOT EXISTS (SELECT 1 FROM unit_keys k WHERE k.unit_key = n.unit_key)"""
    )


@dataclass(frozen=True)
class Mapping:
    """How staged records become rows of one canonical table.

    ``columns`` maps a canonical column to an SQL expression over the staged record
    ``s`` (a column of ``_stage``, quoted, or any expression of them). ``where``
    selects the records meant for this table (others are counted as ignored).
    ``extra`` lists staged columns to keep in the row's ``attributes`` JSON.
    """

    table: Table
    columns: dict[str, str]
    where: str | None = None
    extra: tuple[str, ...] = ()
    #: extra row rules: (field, SQL condition over the typed canonical columns that is TRUE when bad, reason)
    checks: tuple[tuple[str, str, str], ...] = ()


class Adapter:
    """A source format: how to read a file (``stage``) and map its records (``mappings``).

    Subclasses set ``name`` and ``description`` and override :meth:`mappings`;
    formats that DuckDB cannot read directly override :meth:`stage` too.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, config: Config | None = None, mapping: Path | None = None) -> None:
        """``config``: the workspace configuration; ``mapping``: a format-specific mapping file."""
        self.config = config or Config()
        self.mapping_file = mapping

    #: extension -> reader ("csv", "parquet", "jsonl", "json"); ".gz" is looked through.
    readers: ClassVar[dict[str, str]] = {
        ".csv": "csv",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "json",
    }

    def reader_for(self, path: Path) -> str:
        """Return the reader for ``path`` from its extension (``.gz`` looked through)."""
        suffixes = [s.lower() for s in path.suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes = suffixes[:-1]
        reader = self.readers.get(suffixes[-1]) if suffixes else None
        if reader is None:
            raise IngestError(
                f"unknown file extension {''.join(path.suffixes)!r} for format {self.name!r}; "
                f"expected one of {sorted(self.readers)} (optionally .gz)",
                path=str(path),
            )
        return reader

    #: temporary tables the adapter's staging leaves (for its mappings or :meth:`apply`); dropped after each file
    temp_tables: ClassVar[tuple[str, ...]] = ()

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        """Make ``path`` readable as ``_stage`` (file order kept); return its columns (:func:`stage_file`)."""
        return stage_file(self, con, path, in_place=True)

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        """Workspace writes the staged file implies besides its rows; run first in the file's transaction."""

    def mappings(self, columns: list[str], path: Path) -> list[Mapping]:  # pragma: no cover - abstract
        raise NotImplementedError


def stage_file(adapter: Adapter, con: duckdb.DuckDBPyConnection, path: Path, *, in_place: bool) -> list[str]:
    """Make ``path`` readable as ``_stage`` with the adapter's reader (file order kept); return its columns.

    ``in_place``: a Parquet file (typed and self-describing) becomes a view on the file, read once by the checks,
    with the file's row number; adapters that rewrite ``_stage`` pass False. Other readers, and Parquet when not
    in place, are copied into a temporary table.
    """
    reader = adapter.reader_for(path)
    p = sql_literal(str(path))
    src = {
        "csv": f"read_csv({p}, all_varchar = true, header = true)",
        "parquet": f"read_parquet({p})",
        "jsonl": f"read_json({p}, format = 'newline_delimited')",
        "json": f"read_json({p}, format = 'auto')",
    }[reader]
    try:
        drop_temp(con, "_stage")
        view = in_place and reader == "parquet"
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()] if view else []
        if view and columns and PARQUET_ROW not in {c.lower() for c in columns}:
            con.execute(f"CREATE TEMP VIEW _stage AS SELECT * FROM read_parquet({p}, file_row_number = true)")
        else:
            con.execute(f"CREATE TEMP TABLE _stage AS SELECT * FROM {src}")
            columns = _stage_columns(con)
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0]
        raise IngestError(f"cannot be read as {reader} ({adapter.name}): {first}", path=str(path)) from e
    return columns


def identity_mapping(table: Table, columns: list[str], path: Path) -> Mapping:
    """Map staged columns named like the canonical ones; keep the others as attributes."""
    known = {c.name for c in table.input_columns}
    missing = [c.name for c in table.input_columns if c.required and c.name not in columns]
    if missing:
        raise IngestError(f"missing required column(s) {missing}; found {columns}", path=str(path), field=missing[0])
    return Mapping(
        table,
        {c: quote_ident(c) for c in columns if c in known},
        extra=tuple(c for c in columns if c not in known),
    )


def ingest_file(
    store: Store, path: Path, adapter: Adapter, *, on_error: OnError = OnError.QUARANTINE
) -> list[IngestResult]:
    """Read one file with ``adapter`` and store its rows; one result per target table.

    The file is read, typed and checked into temporary tables first (a strict ingest stops there on the first bad
    row); then one transaction writes it: it lands whole (good rows stored, bad rows quarantined) or, on a
    file-level error, not at all.
    """
    if not path.is_file():
        raise InputFileNotFound(f"{path}: no such file")
    checksum = sha256_of(path)
    with store.writing() as con:
        working = ["_stage", "_mapped", *adapter.temp_tables]
        try:
            columns = adapter.stage(con, path)
            checked = []
            for i, mapping in enumerate(adapter.mappings(columns, path)):
                working.append(f"_checked_{i}")
                checked.append(_check(con, path, mapping, on_error, working[-1]))
            with store.transaction():
                adapter.apply(con)
                return [_store(con, path, checksum, adapter.name, c) for c in checked]
        finally:
            for name in working:
                drop_temp(con, name)


@dataclass(frozen=True)
class _Checked:
    """One mapping of a staged file, typed and checked into the temporary table ``name``."""

    name: str
    mapping: Mapping
    record: str  # SQL over the staged row ``s``: its record number
    rows_read: int
    bad: int
    ignored: int
    first_problem: str | None
    repeats: bool  # some key occurs more than once among the good rows


def _stage_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The columns of ``_stage``."""
    return [r[0] for r in con.execute("DESCRIBE _stage").fetchall()]


def _staged_in_place(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``_stage`` is a view on a Parquet file (:func:`stage_file`), not a copy."""
    row = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = '_stage' AND temporary").fetchone()
    return bool(row and row[0])


def _record_number(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """SQL for a staged row's record number (1-based, file order): its row id, or its row in a staged Parquet file."""
    if _staged_in_place(con):
        return f"s.{PARQUET_ROW} + 1"
    if any(c.lower() == "rowid" for c in _stage_columns(con)):
        # the engine's row id would be shadowed by the file's column: record numbers could not be trusted
        why = "a column named 'rowid' is not supported (it is the engine's own row id); rename it"
        raise IngestError(why, path=str(path), field="rowid")
    first = con.execute("SELECT min(rowid) FROM _stage").fetchone()
    return f"s.rowid - {int(first[0]) if first and first[0] is not None else 0} + 1"


def _type_and_check(con: duckdb.DuckDBPyConnection, mapping: Mapping, record: str, name: str) -> None:
    """Write ``name``: each staged record of ``mapping`` typed, with ``_record`` and ``_reason`` (its first problem)."""
    table = mapping.table
    # 1. project the staged records onto canonical names, keeping the record number
    proj = [f"{expr} AS {quote_ident('__raw_' + col)}" for col, expr in mapping.columns.items()]
    if mapping.extra:
        pairs = ", ".join(f"{sql_literal(c)}, s.{quote_ident(c)}" for c in mapping.extra)
        proj.append(f"json_object({pairs}) AS __extra")
    where = f"WHERE {mapping.where}" if mapping.where else ""
    projected = f"SELECT {record} AS _record, {', '.join(proj)} FROM _stage s {where}"
    # a mapping of plain column references is read straight from the stage; computed ones are evaluated once
    plain = all(_COLUMN_REF.fullmatch(expr) for expr in mapping.columns.values())
    if not plain:
        # computed mappings are evaluated once, not once per reference in the typing and the checks
        con.execute(f"CREATE OR REPLACE TEMP TABLE _mapped AS {projected}")
        projected = "SELECT * FROM _mapped"
    source_types = {
        name.removeprefix("__raw_"): str(typ)
        for name, typ, *_ in con.execute(f"DESCRIBE {projected}").fetchall()
        if name.startswith("__raw_")
    }
    validator = CanonicalValidator(table, list(mapping.columns), source_types)
    # 2. type and check every row in one pass; only the typed row and its first problem are kept
    checks = validator.checks() + list(mapping.checks)
    reason_sql = (
        "CASE "
        + " ".join(f"WHEN {cond} THEN {sql_literal(field + ': ' + reason)}" for field, cond, reason in checks)
        + " END"
        if checks
        else "NULL"
    )
    select_cols = [c.name for c in table.input_columns]
    if mapping.extra and "attributes" in select_cols:
        select_cols[select_cols.index("attributes")] = (
            "CAST(json_merge_patch(COALESCE(attributes, '{}'), __extra) AS JSON) AS attributes"
        )
    extra_col = ", __extra" if mapping.extra else ""
    texts = "".join(f", {t}" for t in validator.text_columns())
    trimmed = "".join(", " + t for t in validator.text_select(source_prefix="__raw_"))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name} AS
        SELECT _record, {", ".join(select_cols)}, {reason_sql} AS _reason FROM (
          SELECT _record, {validator.typed_select(source_prefix="__raw_")}{texts}{extra_col} FROM (
            SELECT *{trimmed} FROM ({projected})))"""
    )


def _check(con: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping, on_error: OnError, name: str) -> _Checked:
    """Type and check every staged record of one mapping into ``name``: the typed row and its first problem."""
    table = mapping.table
    record = _record_number(con, path)
    try:
        _type_and_check(con, mapping, record, name)
    except duckdb.Error as e:
        if not record.startswith(f"s.{PARQUET_ROW}"):
            raise
        # a Parquet file is read here, not when staged: its pages can be damaged behind intact metadata
        first = str(e).strip().splitlines()[0]
        raise IngestError(f"cannot be read as parquet: {first}", path=str(path)) from e
    counts = con.execute(f"SELECT count(*), count(*) FILTER (WHERE _reason IS NOT NULL) FROM {name}").fetchone()
    assert counts is not None
    rows_read, bad = int(counts[0]), int(counts[1])
    ignored = 0
    if mapping.where:
        total = con.execute("SELECT count(*) FROM _stage").fetchone()
        ignored = (int(total[0]) if total else 0) - rows_read
    first_problem = None
    if bad:
        rec, reason = con.execute(
            f"SELECT _record, _reason FROM {name} WHERE _reason IS NOT NULL ORDER BY _record LIMIT 1"
        ).fetchone() or (None, None)
        first_problem = f"{path}: record {rec}: {reason}"
        if on_error is OnError.FAIL:
            field, _, why = str(reason).partition(": ")
            raise IngestError(why, path=str(path), record=int(rec), field=field)
    key = table.key
    assert key is not None
    repeats = con.execute(f"SELECT count({key}) - count(DISTINCT {key}) FROM {name} WHERE _reason IS NULL").fetchone()
    return _Checked(name, mapping, record, rows_read, bad, ignored, first_problem, bool(repeats and repeats[0]))


def _store(con: duckdb.DuckDBPyConnection, path: Path, checksum: str, fmt: str, checked: _Checked) -> IngestResult:
    """Insert a checked mapping's good rows (deduplicated), quarantine its bad ones, log it; inside the transaction."""
    table, name = checked.mapping.table, checked.name
    rows_read, bad, ignored = checked.rows_read, checked.bad, checked.ignored
    key = table.key
    assert key is not None
    cols = [c.name for c in table.input_columns]
    # 3. first occurrence of a key within the file wins; keys already stored are skipped
    first_wins = f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _record) = 1" if checked.repeats else ""
    stored = con.execute(f"SELECT EXISTS (SELECT 1 FROM {table.name})").fetchone()
    not_stored = (
        f"AND NOT EXISTS (SELECT 1 FROM {table.name} t WHERE t.{key} = c.{key})" if stored and stored[0] else ""
    )
    good = f"SELECT * FROM {name} c WHERE _reason IS NULL {not_stored} {first_wins}"
    if table.name == "usage":
        old_units = con.execute("SELECT COALESCE(max(unit_id), 0) FROM unit_keys").fetchone()
        _assign_unit_ids(con, name)
        last = con.execute("SELECT COALESCE(max(row_id), 0) FROM usage").fetchone()
        # record numbers are unique within the file, so offsetting them gives unique row ids
        inserted = con.execute(
            f"""INSERT INTO usage ({", ".join(cols)}, unit_id, row_id, unit_next_ts)
            SELECT *, {NEXT_TS} FROM (
              SELECT {", ".join("g." + c for c in cols)}, k.unit_id, {int(last[0]) if last else 0} + g._record AS row_id
              FROM ({good}) g
              JOIN unit_keys k ON k.unit_key = COALESCE(g.trace_id, g.request_id))"""
        ).fetchone()
        after, old_max = int(last[0]) if last else 0, int(old_units[0]) if old_units else 0
        fold_new_models(con, after)
        rollups.fold_new_rows(con, after)
        if old_max:
            # units that already had rows: their links change (the new rows above were linked among themselves)
            continued = f"SELECT DISTINCT unit_id FROM usage WHERE row_id > {after} AND unit_id <= {old_max}"
            relink_units(con, continued)
            note_mixed(con, f"row_id > {after} OR unit_id IN ({continued})")
        else:
            note_mixed(con, f"row_id > {after}")
    else:
        inserted = con.execute(
            f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM ({good})"
        ).fetchone()
    landed = int(inserted[0]) if inserted else 0
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if bad:
        # the row as read, for the quarantined rows only
        # every column by name (a column called ``s`` would shadow the row), the reader's row number left out
        in_place = _staged_in_place(con)
        members = [c for c in _stage_columns(con) if not (in_place and c == PARQUET_ROW)]
        raw = "to_json(struct_pack(" + ", ".join(f"{quote_ident(c)} := s.{quote_ident(c)}" for c in members) + "))"
        con.execute(
            f"""INSERT INTO quarantine SELECT ?, ?, ?, ?, c._record, split_part(c._reason, ': ', 1),
                   substr(c._reason, length(split_part(c._reason, ': ', 1)) + 3),
                   s._raw
                FROM {name} c
                JOIN (SELECT {checked.record} AS _rec, CAST({raw} AS VARCHAR) AS _raw FROM _stage s) s
                  ON s._rec = c._record
                WHERE c._reason IS NOT NULL
                AND c._record NOT IN (SELECT record FROM quarantine WHERE sha256 = ? AND target_table = ?)
                ORDER BY c._record""",
            [now, table.name, str(path), checksum, checksum, table.name],
        )
    duplicates = rows_read - bad - landed
    con.execute(
        "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [now, table.name, fmt, str(path), checksum, rows_read, landed, bad, duplicates, ignored],
    )
    return IngestResult(str(path), table.name, fmt, rows_read, landed, bad, duplicates, checked.first_problem, ignored)

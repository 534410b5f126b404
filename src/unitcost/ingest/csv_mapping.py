"""Any CSV, Parquet or JSONL usage file, read through a small YAML column mapping.

``unitcost ingest csv FILE --mapping map.yaml``; the mapping renames source columns
to canonical ones, sets constants and converts units (docs/formats/csv.md, example
in examples/csv-mapping.yaml)::

    target: usage                      # or outcomes
    rename: {request_id: call_id, ts: created_at, input_tokens: prompt_tokens}
    constants: {provider: openai, environment: production}
    convert:
      latency_ms: {from: latency_s, multiply: 1000}
      ts: {from: created_epoch_ms, unit: ms}

Source columns already named like canonical ones are taken as they are; every
other source column is kept in ``attributes``.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from unitcost.config import load_yaml_model
from unitcost.errors import ConfigError, IngestError
from unitcost.ingest.base import Adapter, Mapping, quote_ident, sql_literal
from unitcost.ingest.registry import register
from unitcost.schema import OUTCOMES, USAGE, Table

TARGETS = {"usage": USAGE, "outcomes": OUTCOMES}
#: epoch unit -> the DuckDB function turning an integer epoch into a timestamp
EPOCH_UNITS = {"s": "to_timestamp", "ms": "epoch_ms", "us": "make_timestamp", "ns": "make_timestamp_ns"}


class Convert(BaseModel):
    """How one canonical column is computed from one source column."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(alias="from", min_length=1)
    multiply: float | None = None
    divide: float | None = None
    unit: Literal["s", "ms", "us", "ns"] | None = None
    format: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Convert:
        if self.divide == 0:
            raise ValueError("divide must not be 0")
        if (self.unit or self.format) and (self.multiply is not None or self.divide is not None):
            raise ValueError("use either unit/format (timestamps) or multiply/divide (numbers), not both")
        if self.unit and self.format:
            raise ValueError("use either unit (epoch numbers) or format (date text), not both")
        return self


class ColumnMapping(BaseModel):
    """The whole mapping file."""

    model_config = ConfigDict(extra="forbid")

    target: Literal["usage", "outcomes"] = "usage"
    rename: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    convert: dict[str, Convert] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _canonical_columns(self) -> ColumnMapping:
        table = TARGETS[self.target]
        known = [c.name for c in table.input_columns]
        seen: dict[str, str] = {}
        for section in ("rename", "constants", "convert"):
            for name in getattr(self, section):
                if name not in known:
                    close = difflib.get_close_matches(name, known, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else f" (columns: {', '.join(known)})"
                    raise ValueError(f"{section}.{name}: not a column of {table.name}{hint}")
                if name in seen:
                    raise ValueError(f"{section}.{name}: already set in {seen[name]}")
                seen[name] = section
        for name, conv in self.convert.items():
            sql_type = table.column(name).sql_type
            if (conv.unit or conv.format) and sql_type != "TIMESTAMP":
                raise ValueError(f"convert.{name}: unit/format apply to timestamps, {name} is {sql_type}")
            if (conv.multiply is not None or conv.divide is not None) and sql_type not in (
                "DOUBLE",
                "BIGINT",
                "INTEGER",
            ):
                raise ValueError(f"convert.{name}: multiply/divide apply to numbers, {name} is {sql_type}")
        return self


def load_mapping(path: Path) -> ColumnMapping:
    """Return the validated mapping in ``path``; errors name the file and the key.

    >>> load_mapping(Path("/nonexistent/map.yaml"))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    unitcost.errors.ConfigError: mapping file /nonexistent/map.yaml does not exist
    """
    if not path.is_file():
        raise ConfigError(f"mapping file {path} does not exist")
    return load_yaml_model(path, ColumnMapping)


def _converted(src: str, conv: Convert) -> str:
    """SQL: the converted value as text; a value that does not convert stays as read, so it is quarantined."""
    number = f"TRY_CAST({src} AS DOUBLE)"
    if conv.unit == "s":
        value = f"to_timestamp({number})"
    elif conv.unit:
        value = f"{EPOCH_UNITS[conv.unit]}(CAST({number} AS BIGINT))"
    elif conv.format:
        value = f"try_strptime(CAST({src} AS VARCHAR), {sql_literal(conv.format)})"
    else:
        value = f"({number} * {(conv.multiply or 1.0) / (conv.divide or 1.0)!r})"
    return f"COALESCE(CAST({value} AS VARCHAR), NULLIF(TRIM(CAST({src} AS VARCHAR)), ''))"


@register
class CsvMappingAdapter(Adapter):
    """A usage (or outcomes) file in any column layout, read through a YAML column mapping."""

    name = "csv"
    description = "any CSV / Parquet / JSONL file with a YAML column mapping (--mapping map.yaml)"

    @functools.cached_property
    def column_mapping(self) -> ColumnMapping:
        """The validated mapping file (read once per adapter)."""
        if self.mapping_file is None:
            raise ConfigError("the csv format needs a column mapping: unitcost ingest csv FILE --mapping map.yaml")
        return load_mapping(Path(self.mapping_file))

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        self.column_mapping  # noqa: B018 - a bad mapping fails before the file is read
        return super().stage(con, path)

    def mappings(self, columns: list[str], path: Path) -> list[Mapping]:
        spec = self.column_mapping
        table: Table = TARGETS[spec.target]
        known = {c.name for c in table.input_columns}
        sources = {**spec.rename, **{k: c.source for k, c in spec.convert.items()}}
        for key, source in sources.items():
            if source not in columns:
                section = "rename" if key in spec.rename else "convert"
                raise IngestError(
                    f"mapping {self.mapping_file}: {section}.{key}: source column {source!r} is not in the file "
                    f"(columns: {', '.join(columns)})",
                    path=str(path),
                    field=key,
                )
        mapped = {c: f"s.{quote_ident(c)}" for c in columns if c in known and c not in sources.values()}
        mapped |= {k: f"s.{quote_ident(src)}" for k, src in spec.rename.items()}
        mapped |= {k: _converted(f"s.{quote_ident(c.source)}", c) for k, c in spec.convert.items()}
        mapped |= {k: sql_literal(str(v).lower() if isinstance(v, bool) else str(v)) for k, v in spec.constants.items()}
        missing = [c.name for c in table.input_columns if c.required and c.name not in mapped]
        if missing:
            raise IngestError(
                f"mapping {self.mapping_file}: required column(s) {missing} are neither in the file nor in the "
                f"mapping (columns: {', '.join(columns)})",
                path=str(path),
                field=missing[0],
            )
        # a source column is used when the mapping reads it; one overridden by a constant stays in attributes
        used = set(sources.values()) | {c for c in columns if mapped.get(c) == f"s.{quote_ident(c)}"}
        return [Mapping(table, mapped, extra=tuple(c for c in columns if c not in used))]

"""FOCUS cost and usage files (FinOps Open Cost and Usage Specification 1.0-1.3) -> ``bill_lines``.

Every FOCUS column lands under its FOCUS name with its FOCUS type (Decimal -> DECIMAL, Date/Time -> TIMESTAMP
in UTC, JSON -> JSON, String -> VARCHAR); custom ``x_`` columns and any other column are kept in ``attributes``.
The column list, types and the version that introduced each column come from the specification
(github.com/FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, ``specification/columns``); docs/formats/focus.md has the
table and the rules.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import duckdb

from unitcost.errors import IngestError
from unitcost.ingest.base import Adapter, Mapping, quote_ident, sql_literal
from unitcost.ingest.registry import register
from unitcost.schema import BILL_LINES
from unitcost.store import Store


@dataclass(frozen=True)
class FocusColumn:
    """One FOCUS Cost and Usage column as the specification declares it."""

    name: str
    focus_type: str  # String, Decimal, Date/Time or JSON
    level: str  # feature level in the latest version that has the column: Mandatory, Recommended or Conditional
    since: str  # first supported version with the column (columns of FOCUS 0.5 and 1.0-preview: 1.0)
    deprecated: str = ""  # version that deprecated the column


#: Column ID, data type, feature level, introduced, deprecated: the "Content constraints" of every column in
#: specification/columns/*.md at the tags v1.0, v1.1, v1.2 and in the ratified 1.3 Cost and Usage columns.
_SPEC = """
AllocatedMethodDetails             JSON      Recommended 1.3
AllocatedMethodId                  String    Conditional 1.3
AllocatedResourceId                String    Conditional 1.3
AllocatedResourceName              String    Conditional 1.3
AllocatedTags                      JSON      Conditional 1.3
AvailabilityZone                   String    Recommended 1.0
BilledCost                         Decimal   Mandatory   1.0
BillingAccountId                   String    Mandatory   1.0
BillingAccountName                 String    Mandatory   1.0
BillingAccountType                 String    Conditional 1.2
BillingCurrency                    String    Mandatory   1.0
BillingPeriodEnd                   Date/Time Mandatory   1.0
BillingPeriodStart                 Date/Time Mandatory   1.0
CapacityReservationId              String    Conditional 1.1
CapacityReservationStatus          String    Conditional 1.1
ChargeCategory                     String    Mandatory   1.0
ChargeClass                        String    Mandatory   1.0
ChargeDescription                  String    Mandatory   1.0
ChargeFrequency                    String    Recommended 1.0
ChargePeriodEnd                    Date/Time Mandatory   1.0
ChargePeriodStart                  Date/Time Mandatory   1.0
CommitmentDiscountCategory         String    Conditional 1.0
CommitmentDiscountId               String    Conditional 1.0
CommitmentDiscountName             String    Conditional 1.0
CommitmentDiscountQuantity         Decimal   Conditional 1.1
CommitmentDiscountStatus           String    Conditional 1.0
CommitmentDiscountType             String    Conditional 1.0
CommitmentDiscountUnit             String    Conditional 1.1
ConsumedQuantity                   Decimal   Conditional 1.0
ConsumedUnit                       String    Conditional 1.0
ContractApplied                    JSON      Conditional 1.3
ContractedCost                     Decimal   Mandatory   1.0
ContractedUnitPrice                Decimal   Conditional 1.0
EffectiveCost                      Decimal   Mandatory   1.0
HostProviderName                   String    Mandatory   1.3
InvoiceId                          String    Recommended 1.2
InvoiceIssuerName                  String    Mandatory   1.0
ListCost                           Decimal   Mandatory   1.0
ListUnitPrice                      Decimal   Conditional 1.0
PricingCategory                    String    Conditional 1.0
PricingCurrency                    String    Conditional 1.2
PricingCurrencyContractedUnitPrice Decimal   Conditional 1.2
PricingCurrencyEffectiveCost       Decimal   Conditional 1.2
PricingCurrencyListUnitPrice       Decimal   Conditional 1.2
PricingQuantity                    Decimal   Mandatory   1.0
PricingUnit                        String    Mandatory   1.0
ProviderName                       String    Mandatory   1.0  1.3
PublisherName                      String    Mandatory   1.0  1.3
RegionId                           String    Conditional 1.0
RegionName                         String    Conditional 1.0
ResourceId                         String    Conditional 1.0
ResourceName                       String    Conditional 1.0
ResourceType                       String    Conditional 1.0
ServiceCategory                    String    Mandatory   1.0
ServiceName                        String    Mandatory   1.0
ServiceProviderName                String    Mandatory   1.3
ServiceSubcategory                 String    Recommended 1.1
SkuId                              String    Conditional 1.0
SkuMeter                           String    Conditional 1.1
SkuPriceDetails                    JSON      Conditional 1.1
SkuPriceId                         String    Conditional 1.0
SubAccountId                       String    Conditional 1.0
SubAccountName                     String    Conditional 1.0
SubAccountType                     String    Conditional 1.2
Tags                               JSON      Conditional 1.0
"""
FOCUS_COLUMNS: tuple[FocusColumn, ...] = tuple(FocusColumn(*line.split()) for line in _SPEC.strip().splitlines())
FOCUS_BY_NAME = {c.name: c for c in FOCUS_COLUMNS}

#: Columns a file must have: Mandatory in every version 1.0-1.3 and not deprecated (ProviderName, deprecated in
#: 1.3, may be replaced by ServiceProviderName).
FILE_REQUIRED = tuple(
    c.name for c in FOCUS_COLUMNS if c.level == "Mandatory" and c.since == "1.0" and c.name != "PublisherName"
)
#: A file that has a successor needs not have the column it replaces.
REPLACED_BY = {"ProviderName": "ServiceProviderName"}
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
JSON_COLUMNS = tuple(c.name for c in FOCUS_COLUMNS if c.focus_type == "JSON")
NULL_STRINGS = ("NULL", "null")
_SEP = "\x1f"  # the unit separator never occurs in billing text, so the hashed text is unambiguous
#: staged column holding each line's row_hash, computed while the file is read (the quarantine's copy of a line
#: as read shows it too)
ROW_HASH = "__row_hash"

#: Extra row rules (field, condition over the typed columns that is TRUE when the line is bad, reason). Required
#: values and types are checked by the base (``Column.required``, "not a valid ...").
CHECKS: tuple[tuple[str, str, str], ...] = (
    ("ChargePeriodEnd", "ChargePeriodEnd < ChargePeriodStart", "ChargePeriodEnd is before ChargePeriodStart"),
    ("BillingPeriodEnd", "BillingPeriodEnd < BillingPeriodStart", "BillingPeriodEnd is before BillingPeriodStart"),
    (
        "BillingCurrency",
        "NOT regexp_full_match(BillingCurrency, '[A-Z]{3}')",
        "not an ISO 4217 currency code (three letters, e.g. USD)",
    ),
    (
        "ChargeCategory",
        f"ChargeCategory NOT IN ({', '.join(sql_literal(v) for v in CHARGE_CATEGORIES)})",
        f"must be one of {', '.join(CHARGE_CATEGORIES)}",
    ),
    *((c, f"json_type({c}) <> 'OBJECT'", "must be a JSON object (FOCUS key-value format)") for c in JSON_COLUMNS),
)


def match_columns(columns: Iterable[str]) -> dict[str, str]:
    """Return FOCUS column -> file column: exact names first, then case-insensitive (and trimmed) variants.

    >>> match_columns(["BilledCost", "billingcurrency", "x_Team"])
    {'BilledCost': 'BilledCost', 'BillingCurrency': 'billingcurrency'}
    """
    columns = list(columns)
    found = {c: c for c in columns if c in FOCUS_BY_NAME}
    taken = set(found.values())
    by_lower = {k.lower(): k for k in FOCUS_BY_NAME}
    for c in columns:
        canonical = by_lower.get(c.strip().lower())
        if canonical and canonical not in found and c not in taken:
            found[canonical] = c
            taken.add(c)
    return found


def detect_version(focus_columns: Iterable[str]) -> str:
    """Return the FOCUS version a file's columns show: the newest version that introduced one of them.

    FOCUS carries ``FocusVersion`` in its metadata, not in the data, so the columns decide; since newer columns
    are mostly optional, this is the lowest version consistent with the file.

    >>> detect_version(["BilledCost", "SkuMeter"]), detect_version(["ServiceProviderName"])
    ('1.1', '1.3')
    """
    return max((FOCUS_BY_NAME[c].since for c in focus_columns if c in FOCUS_BY_NAME), default="1.0")


def content_hash_sql(found: dict[str, str]) -> str:
    """SQL for the MD5 of a staged line's non-null FOCUS values as read (``Name=value``, in column-name order).

    Custom and other columns are left out, and so are null and absent columns: a later FOCUS version that adds
    columns does not change the hash of existing lines.
    """
    parts = [f"{sql_literal(c.name + '=')} || {quote_ident(found[c.name])}" for c in FOCUS_COLUMNS if c.name in found]
    return f"md5(concat_ws({sql_literal(_SEP)}, {', '.join(parts)}))" if parts else "''"


def _number_repeats(con: duckdb.DuckDBPyConnection) -> None:
    """Make the k-th copy (k >= 2) of a line within the file hash as ``md5(hash || '#k')``.

    Two identical lines of one file are two charges and both land; the same lines in a re-ingested or overlapping
    file get the same hashes and are skipped.
    """
    h = quote_ident(ROW_HASH)
    con.execute(
        f"""UPDATE _stage SET {h} = md5(d.h || '#' || d.k) FROM (
              SELECT rowid AS r, {h} AS h, row_number() OVER (PARTITION BY {h} ORDER BY rowid) AS k FROM _stage
              WHERE {h} IN (SELECT {h} FROM _stage GROUP BY 1 HAVING count(*) > 1)) d
            WHERE _stage.rowid = d.r AND d.k > 1"""
    )


_NULLS = ", ".join(sql_literal(v) for v in ("", *NULL_STRINGS))


def _csv_source(path: Path) -> tuple[str, dict[str, str]]:
    """The ``read_csv`` of a FOCUS CSV (comma, double quotes, every field text, the header read here), its columns.

    No dialect sniffing: a line with a missing or extra field is an error naming the line, and a file whose last
    line has no line break is taken as truncated (exports end every line with one).
    """
    gz = path.suffix.lower() == ".gz"
    with (
        gzip.open(path, "rt", encoding="utf-8-sig", newline="") if gz else path.open(encoding="utf-8-sig", newline="")
    ) as f:
        header = next(csv.reader(f), None)
    if not header:
        raise IngestError("empty file: no header line", path=str(path))
    if not gz:
        with path.open("rb") as f:
            f.seek(-1, 2)
            if f.read(1) not in (b"\n", b"\r"):
                raise IngestError(
                    "the last line has no line break: truncated? (a complete file ends with one)", path=str(path)
                )
    names: list[str] = []
    for name in header:  # DuckDB names are case-insensitive: number repeats like DuckDB does (tags, tags_1)
        unique, n = name, 0
        while unique.lower() in {x.lower() for x in names}:
            n += 1
            unique = f"{name}_{n}"
        names.append(unique)
    columns = ", ".join(f"{sql_literal(n)}: 'VARCHAR'" for n in names)
    source = (
        f"read_csv({sql_literal(str(path))}, header = true, auto_detect = false, delim = ',', quote = '\"', "
        f"escape = '\"', strict_mode = true, columns = {{{columns}}}, nullstr = [{_NULLS}])"
    )
    return source, dict.fromkeys(names, "VARCHAR")


def _parquet_source(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, dict[str, str]]:
    """The ``read_parquet`` of a FOCUS Parquet file, its columns.

    FOCUS columns are read as text (nested values as JSON text; text ``NULL`` as SQL NULL), as in a CSV: each value
    is printed once here rather than each time it is typed, checked and hashed. Custom columns keep their types.
    """
    p = sql_literal(str(path))
    types = {str(n): str(t) for n, t, *_ in con.execute(f"DESCRIBE SELECT * FROM read_parquet({p})").fetchall()}
    focus = set(match_columns(types).values())
    select = []
    for name, typ in types.items():
        c = quote_ident(name)
        if typ == "VARCHAR" or name in focus:
            nested = typ.startswith(("MAP(", "STRUCT(", "UNION(")) or typ.endswith("]")
            text = c if typ == "VARCHAR" else f"CAST(to_json({c}) AS VARCHAR)" if nested else f"CAST({c} AS VARCHAR)"
            select.append(f"CASE WHEN {text} IN ({_NULLS}) THEN NULL ELSE {text} END AS {c}")
            types[name] = "VARCHAR"
        else:
            select.append(c)
    return f"(SELECT {', '.join(select)} FROM read_parquet({p}))", types


def _parse_json_text(con: duckdb.DuckDBPyConnection, columns: list[str]) -> None:
    """Make JSON of the custom columns whose every value is a JSON object or array written as text.

    CSV exports write nested custom columns as JSON text (AWS ``x_CostCategories``, ``x_Discounts``) where Parquet
    has maps; parsed, both land in ``attributes`` as the same nested JSON.
    """
    if not columns:
        return
    tests = [
        f"count({c}) > 0 AND bool_and({c} IS NULL OR (left(ltrim({c}), 1) IN ('{{', '[') AND json_valid({c})))"
        for c in map(quote_ident, columns)
    ]
    row = con.execute(f"SELECT {', '.join(tests)} FROM _stage").fetchone() or ()
    for column, is_json in zip(columns, row, strict=True):
        if is_json:
            con.execute(f"ALTER TABLE _stage ALTER COLUMN {quote_ident(column)} SET DATA TYPE JSON")


@register
class FocusAdapter(Adapter):
    """FOCUS 1.0-1.3 cost and usage exports (AWS Data Exports, Azure Cost Management, GCP BigQuery, ...)."""

    name = "focus"
    description = "FOCUS 1.0-1.3 cost and usage files (CSV, gzip CSV, Parquet) -> bill_lines"
    readers: ClassVar[dict[str, str]] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        """Read the file into ``_stage`` (the text ``NULL`` and empty CSV fields become SQL NULL), hashing its lines."""
        reader = self.reader_for(path)
        try:
            source, types = _csv_source(path) if reader == "csv" else _parquet_source(con, path)
            found = match_columns(types)
            content = content_hash_sql(found)
            con.execute("DROP TABLE IF EXISTS _stage")
            con.execute(f"CREATE TEMP TABLE _stage AS SELECT *, {content} AS {quote_ident(ROW_HASH)} FROM {source}")
        except (duckdb.Error, OSError, UnicodeDecodeError, csv.Error) as e:
            lines = str(e).strip().splitlines() or [type(e).__name__]
            why = "; ".join([lines[0], *(x for x in lines if x.startswith("Expected Number of Columns"))])
            raise IngestError(f"cannot be read as {reader} ({self.name}): {why}", path=str(path)) from e
        _number_repeats(con)
        _parse_json_text(con, [c for c, t in types.items() if t == "VARCHAR" and c not in found.values()])
        return list(types)

    def mappings(self, columns: list[str], path: Path) -> list[Mapping]:
        found = match_columns(columns)
        missing = [c for c in FILE_REQUIRED if c not in found and REPLACED_BY.get(c) not in found]
        if missing:
            has = f"it has {len(found)} FOCUS columns" if found else f"no FOCUS column, is it FOCUS? It has {columns}"
            raise IngestError(f"missing mandatory FOCUS column(s) {missing}; {has}", path=str(path), field=missing[0])
        exprs = {c: quote_ident(staged) for c, staged in found.items()}
        exprs["BillingCurrency"] = f"UPPER({exprs['BillingCurrency']})"
        exprs["focus_version"] = sql_literal(detect_version(found))
        exprs["source_file"] = sql_literal(str(path))
        exprs["row_hash"] = quote_ident(ROW_HASH)
        used = set(found.values())
        return [Mapping(BILL_LINES, exprs, extra=tuple(c for c in columns if c not in used), checks=CHECKS)]


@dataclass(frozen=True)
class CurrencyTotals:
    """Stored FOCUS lines of one billing currency, summed exactly (DECIMAL)."""

    currency: str
    lines: int
    billed_cost: Decimal
    effective_cost: Decimal


def bill_totals_by_currency(store: Store) -> list[CurrencyTotals]:
    """Return BilledCost and EffectiveCost summed per BillingCurrency (amounts of two currencies never add up).

    >>> from unitcost.store import open_store
    >>> bill_totals_by_currency(open_store(":memory:"))
    []
    """
    rows = store.sql(
        "SELECT BillingCurrency, count(*), sum(BilledCost), sum(EffectiveCost) FROM bill_lines GROUP BY 1 ORDER BY 1"
    )
    return [CurrencyTotals(cur, int(n), Decimal(billed), Decimal(effective)) for cur, n, billed, effective in rows]

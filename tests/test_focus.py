"""FOCUS cost and usage files: every column typed, versions detected, bad lines quarantined, nothing twice."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import write_csv
from unitcost.errors import IngestError, UnitcostError
from unitcost.ingest.focus import FOCUS_COLUMNS, CurrencyTotals, bill_totals_by_currency, match_columns
from unitcost.schema import BILL_LINES, FOCUS_AMOUNT, FOCUS_UNIT_PRICE
from unitcost.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "focus"
GOOD_FILES = [
    "aws_focus_1_0.csv",
    "aws_focus_1_1.csv.gz",
    "azure_focus_1_2.parquet",
    "gcp_focus_1_3.csv",
    "quirks_nulls_extras.csv",
]


def ingest_fixtures(ws: Workspace, *names: str) -> None:
    for r in ws.ingest("focus", [FIXTURES / n for n in names or GOOD_FILES]):
        assert r.rows_quarantined == 0, r.first_problem


def line(ws: Workspace, file: str, where: str, columns: list[str]) -> dict[str, object]:
    """The one stored line of ``file`` matching ``where``, JSON columns parsed."""
    rows = ws.store.sql(
        f"SELECT {', '.join(columns)} FROM bill_lines WHERE source_file LIKE ? AND {where}", [f"%{file}"]
    )
    assert len(rows) == 1, rows
    json_cols = {c.name for c in BILL_LINES.columns if c.sql_type == "JSON"}
    return {c: json.loads(v) if c in json_cols and v is not None else v for c, v in zip(columns, rows[0], strict=True)}


# (file, which line, expected typed values): one table of examples across the four FOCUS versions
EXPECTED = [
    (
        "aws_focus_1_0.csv",
        "ServiceName = 'Amazon Bedrock' AND ChargeCategory = 'Usage'",
        {
            "BilledCost": Decimal("0.0000123400"),  # written 1.234E-5
            "PricingQuantity": Decimal("0.0493600000"),
            "ListUnitPrice": Decimal("0.0002500000000000"),
            "ConsumedQuantity": Decimal("49.36"),
            "BillingCurrency": "USD",
            "ChargePeriodStart": dt.datetime(2024, 9, 14, 10),
            "ChargePeriodEnd": dt.datetime(2024, 9, 14, 11),
            "BillingPeriodStart": dt.datetime(2024, 9, 1),
            "Tags": {"user:team": "support", "user:feature": "support-bot"},
            "ResourceName": None,  # empty field
            "ServiceProviderName": None,  # a 1.3 column, absent in 1.0
            "focus_version": "1.0",
            "attributes": {
                "x_Operation": "InvokeModelInference",
                "x_ServiceCode": "AmazonBedrock",
                "x_UsageType": "EU-Claude3Haiku-input-tokens",
            },
        },
    ),
    (
        "aws_focus_1_0.csv",
        "CommitmentDiscountStatus = 'Used'",
        {
            "BilledCost": Decimal("0"),
            "EffectiveCost": Decimal("0.1498"),
            "CommitmentDiscountId": "arn:aws:savingsplans::111122223333:savingsplan/sp-0a1b2c3d",
            "PricingCategory": "Committed",
            "attributes": {  # JSON text in a custom CSV column is parsed, as Parquet maps are
                "x_Discounts": {"SavingsPlanDiscount": -0.0642},
                "x_Operation": "RunInstances",
                "x_ServiceCode": "AmazonEC2",
                "x_UsageType": "EU-BoxUsage:m5.xlarge",
            },
        },
    ),
    ("aws_focus_1_0.csv", "ChargeCategory = 'Credit'", {"BilledCost": Decimal("-0.10"), "PricingQuantity": None}),
    (
        "aws_focus_1_1.csv.gz",
        "ServiceName = 'Amazon Bedrock'",
        {"SkuMeter": "EU-Claude3Haiku-input-tokens", "ServiceSubcategory": "Generative AI", "focus_version": "1.1"},
    ),
    (
        "azure_focus_1_2.parquet",
        "ServiceName = 'Azure OpenAI Service'",
        {
            "BilledCost": Decimal("12.5"),
            "BillingCurrency": "EUR",
            "PricingCurrency": "USD",
            "PricingCurrencyEffectiveCost": Decimal("13.586956"),
            "PricingQuantity": Decimal("54347.826087"),  # a Parquet decimal
            "ChargePeriodStart": dt.datetime(2025, 6, 3),  # a Parquet UTC timestamp
            "SkuPriceDetails": {"x_MeterName": "gpt-4o-mini-0718-Inp-regnl"},
            "InvoiceId": "G012345678",
            "focus_version": "1.2",
            "attributes": {
                "x_AccountName": "contoso-eu",
                "x_BilledCostInUsd": 13.586956,
                "x_BillingExchangeRate": 0.92,
                "x_ResourceGroupName": "ai",
                "x_SkuMeterCategory": "Cognitive Services",
            },
        },
    ),
    (
        "azure_focus_1_2.parquet",
        "ServiceName = 'Virtual Machines'",
        {"BilledCost": Decimal("3.1234567891"), "ResourceName": None, "Tags": None},  # ResourceName was "NULL"
    ),
    (
        "gcp_focus_1_3.csv",
        "ServiceName = 'Vertex AI'",
        {
            "BilledCost": Decimal("25"),
            "ListUnitPrice": Decimal("0.0000002"),
            "BillingPeriodStart": dt.datetime(2026, 1, 1),  # written "2026-01-01 00:00:00 UTC"
            "ServiceProviderName": "Google Cloud",
            "HostProviderName": "Google Cloud",
            "ContractApplied": {
                "Elements": [
                    {"ContractID": "C-2026", "ContractCommitmentID": "CC-AI", "ContractCommitmentAppliedCost": 25}
                ]
            },
            "focus_version": "1.3",
        },
    ),
    (
        "gcp_focus_1_3.csv",
        "ServiceName = 'Claude Sonnet'",
        {"ServiceProviderName": "Anthropic", "HostProviderName": "Google Cloud", "Tags": {}},
    ),
    (
        "gcp_focus_1_3.csv",
        "ServiceName = 'Kubernetes Engine'",
        {
            "AllocatedMethodId": "gke-cost-allocation-requests",
            "AllocatedMethodDetails": {"Elements": [{"AllocatedRatio": 0.25, "UsageUnit": "vCPU", "UsageQuantity": 2}]},
            "AllocatedResourceId": "k8s-namespace/support-bot",
            "AllocatedResourceName": "support-bot",
            "AllocatedTags": {"k8s-label/app": "support-bot"},
        },
    ),
    ("gcp_focus_1_3.csv", "ChargeCategory = 'Tax'", {"HostProviderName": None, "PricingUnit": None}),
    (
        "quirks_nulls_extras.csv",
        "BillingCurrency = 'EUR'",
        {
            "BilledCost": Decimal("48"),  # header "billedcost"
            "Tags": {"pool": "inference", "gpu": "h100"},  # header "tags"
            "ChargeClass": None,  # NULL
            "ResourceId": None,  # empty
            "SkuPriceDetails": None,  # null
            "attributes": {"CostCenter": "CC-4711", "Team": "ml-platform", "x_SourceSystem": "kubecost"},
        },
    ),
    (
        "quirks_nulls_extras.csv",
        "BilledCost = 12.5",
        {"BillingCurrency": "USD", "ChargeDescription": None, "attributes": {"CostCenter": "CC-4711"}},  # was "usd"
    ),
]


@pytest.mark.parametrize(("file", "where", "expected"), EXPECTED, ids=[f"{e[0]}:{e[1]}" for e in EXPECTED])
def test_fixture_lines_land_typed(workspace: Workspace, file: str, where: str, expected: dict[str, object]) -> None:
    ingest_fixtures(workspace, file)
    assert line(workspace, file, where, list(expected)) == expected


def test_every_fixture_lands_whole_and_counts_add_up(workspace: Workspace) -> None:
    results = workspace.ingest("focus", [FIXTURES / n for n in GOOD_FILES])
    assert [(Path(r.source_file).name, r.rows_read, r.rows_landed) for r in results] == [
        ("aws_focus_1_0.csv", 5, 5),
        ("aws_focus_1_1.csv.gz", 2, 2),
        ("azure_focus_1_2.parquet", 3, 3),
        ("gcp_focus_1_3.csv", 4, 4),
        ("quirks_nulls_extras.csv", 2, 2),
    ]
    assert workspace.store.sql("SELECT count(*), count(DISTINCT row_hash) FROM bill_lines") == [(16, 16)]


@pytest.mark.parametrize(
    ("file", "version"),
    [
        ("aws_focus_1_0.csv", "1.0"),
        ("aws_focus_1_1.csv.gz", "1.1"),  # SkuMeter, ServiceSubcategory
        ("azure_focus_1_2.parquet", "1.2"),  # InvoiceId, PricingCurrency, ...
        ("gcp_focus_1_3.csv", "1.3"),  # ServiceProviderName, HostProviderName, ...
        ("quirks_nulls_extras.csv", "1.1"),
    ],
)
def test_version_is_detected_from_the_columns(workspace: Workspace, file: str, version: str) -> None:
    ingest_fixtures(workspace, file)
    assert workspace.store.sql("SELECT DISTINCT focus_version FROM bill_lines") == [(version,)]


def test_null_strings_and_empty_fields_are_sql_null(workspace: Workspace) -> None:
    ingest_fixtures(workspace)
    text = [c.name for c in BILL_LINES.columns if c.sql_type == "VARCHAR"]
    placeholders = " OR ".join(f"{c} IN ('NULL', 'null', '')" for c in text)
    assert workspace.store.sql(f"SELECT count(*) FROM bill_lines WHERE {placeholders}") == [(0,)]
    assert workspace.store.sql("SELECT count(*) FROM bill_lines WHERE attributes::VARCHAR LIKE '%null%'") == [(0,)]


def test_custom_and_other_columns_are_kept_in_attributes(workspace: Workspace) -> None:
    ingest_fixtures(workspace, "aws_focus_1_0.csv")
    keys = workspace.store.sql(
        "SELECT DISTINCT unnest(json_keys(attributes)) AS k FROM bill_lines ORDER BY k",
    )
    assert [k for (k,) in keys] == ["x_CostCategories", "x_Discounts", "x_Operation", "x_ServiceCode", "x_UsageType"]
    ec2 = line(workspace, "aws_focus_1_0.csv", "ResourceName = 'rag-indexer-1'", ["attributes"])
    assert ec2["attributes"]["x_CostCategories"] == {"project": "rag"}  # type: ignore[index]


def test_parquet_maps_and_doubles_become_json_and_exact_decimals(workspace: Workspace, tmp_path: Path) -> None:
    # AWS writes FOCUS Parquet with Tags and x_Discounts as maps and costs as doubles
    table = pacsv.read_csv(
        FIXTURES / "aws_focus_1_0.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=True)
    )
    first = table.slice(0, 1)
    first = first.set_column(
        first.schema.get_field_index("Tags"),
        "Tags",
        pa.array([[("user:team", "search")]], pa.map_(pa.string(), pa.string())),
    )
    first = first.set_column(
        first.schema.get_field_index("x_Discounts"),
        "x_Discounts",
        pa.array([[("SavingsPlanDiscount", -0.0642)]], pa.map_(pa.string(), pa.float64())),
    )
    pq.write_table(first, tmp_path / "aws.parquet")
    [result] = workspace.ingest("focus", [tmp_path / "aws.parquet"])
    assert result.rows_landed == 1, result.first_problem
    got = line(workspace, "aws.parquet", "true", ["BilledCost", "ChargePeriodStart", "Tags", "attributes"])
    assert got["BilledCost"] == Decimal("0.214")  # a double, printed shortest then read as a decimal
    assert got["ChargePeriodStart"] == dt.datetime(2024, 9, 14, 10)
    assert got["Tags"] == {"user:team": "search"}
    assert got["attributes"]["x_Discounts"] == {"SavingsPlanDiscount": -0.0642}  # type: ignore[index]


def test_currencies_stay_per_line_and_are_never_summed_together(workspace: Workspace) -> None:
    ingest_fixtures(workspace, "azure_focus_1_2.parquet")
    assert bill_totals_by_currency(workspace.store) == [
        CurrencyTotals("EUR", 2, Decimal("15.6234567891"), Decimal("15.6234567891")),
        CurrencyTotals("USD", 1, Decimal("40"), Decimal("40")),
    ]


def aws_line() -> dict[str, str]:
    """The first line of the AWS fixture, as text."""
    with (FIXTURES / "aws_focus_1_0.csv").open(newline="") as f:
        return next(csv.DictReader(f))


# (line overrides, field, reason fragment): spec rules a line can break
BAD_LINES = [
    ({"ChargePeriodStart": ""}, "ChargePeriodStart", "required value is missing"),
    ({"ChargePeriodStart": "NULL"}, "ChargePeriodStart", "required value is missing"),
    ({"ChargePeriodStart": "yesterday"}, "ChargePeriodStart", "not a valid timestamp"),
    ({"ChargePeriodEnd": "2024-09-14T09:00:00Z"}, "ChargePeriodEnd", "before ChargePeriodStart"),
    ({"BilledCost": "abc"}, "BilledCost", "not a valid decimal"),
    ({"BilledCost": "1,234.00"}, "BilledCost", "not a valid decimal"),
    ({"EffectiveCost": "NULL"}, "EffectiveCost", "required value is missing"),
    ({"BillingCurrency": ""}, "BillingCurrency", "required value is missing"),
    ({"BillingCurrency": "US Dollar"}, "BillingCurrency", "ISO 4217"),
    ({"BillingPeriodEnd": "2024-08-01T00:00:00Z"}, "BillingPeriodEnd", "before BillingPeriodStart"),
    ({"ChargeCategory": "Refund"}, "ChargeCategory", "must be one of Usage, Purchase, Tax, Credit, Adjustment"),
    ({"Tags": "{not json"}, "Tags", "not a valid json"),
    ({"Tags": "[1, 2]"}, "Tags", "must be a JSON object"),
]


def test_bad_lines_are_quarantined_with_record_field_reason(workspace: Workspace, tmp_path: Path) -> None:
    good = aws_line()
    rows = [good] + [{**good, **over} for over, _, _ in BAD_LINES] + [{**good, "BilledCost": "0.5"}]
    path = write_csv(tmp_path / "bad.csv", rows)
    [result] = workspace.ingest("focus", [path])
    assert (result.rows_read, result.rows_landed, result.rows_quarantined) == (len(rows), 2, len(BAD_LINES))
    got = workspace.store.sql("SELECT record, field, reason, source_file, raw FROM quarantine ORDER BY record")
    for (record, field, reason, source, raw), (i, (over, want_field, want_reason)) in zip(
        got, enumerate(BAD_LINES), strict=True
    ):
        assert (record, field, source) == (i + 2, want_field, str(path))
        assert want_reason in reason
        column, value = next(iter(over.items()))
        assert json.loads(raw)[column] == (None if value in ("", "NULL") else value)  # the line as read
    assert result.first_problem is not None and "record 2: ChargePeriodStart" in result.first_problem


def test_strict_fails_on_the_first_bad_line_and_writes_nothing(workspace: Workspace, tmp_path: Path) -> None:
    good = aws_line()
    path = write_csv(tmp_path / "bad.csv", [good, {**good, "BilledCost": "n/a"}])
    with pytest.raises(IngestError) as e:
        workspace.ingest("focus", [path], strict=True)
    assert (e.value.record, e.value.field) == (2, "BilledCost")
    assert workspace.store.sql("SELECT count(*) FROM bill_lines") == [(0,)]


def test_reingest_and_overlapping_exports_do_not_double_count(workspace: Workspace, tmp_path: Path) -> None:
    ingest_fixtures(workspace, "aws_focus_1_0.csv", "azure_focus_1_2.parquet")
    before = bill_totals_by_currency(workspace.store)
    again = workspace.ingest("focus", [FIXTURES / "aws_focus_1_0.csv", FIXTURES / "azure_focus_1_2.parquet"])
    assert [(r.rows_landed, r.duplicates_skipped) for r in again] == [(0, 5), (0, 3)]
    with (FIXTURES / "aws_focus_1_0.csv").open(newline="") as f:
        lines = list(csv.DictReader(f))
    # the next export overlaps the last three lines and brings one new line
    new = {**lines[0], "ChargePeriodStart": "2024-09-14T11:00:00.000Z", "ChargePeriodEnd": "2024-09-14T12:00:00.000Z"}
    [overlap] = workspace.ingest("focus", [write_csv(tmp_path / "next.csv", [*lines[2:], new])])
    assert (overlap.rows_landed, overlap.duplicates_skipped) == (1, 3)
    usd = next(t for t in bill_totals_by_currency(workspace.store) if t.currency == "USD")
    assert usd.billed_cost == next(t for t in before if t.currency == "USD").billed_cost + Decimal("0.214")
    assert workspace.store.sql("SELECT count(*) FROM bill_lines") == [(9,)]


def test_identical_lines_of_one_file_are_two_charges(workspace: Workspace, tmp_path: Path) -> None:
    twice = write_csv(tmp_path / "twice.csv", [aws_line(), aws_line()])
    [first] = workspace.ingest("focus", [twice])
    assert (first.rows_landed, first.duplicates_skipped) == (2, 0)
    [again] = workspace.ingest("focus", [twice])
    [once] = workspace.ingest("focus", [write_csv(tmp_path / "once.csv", [aws_line()])])
    assert (again.rows_landed, once.rows_landed) == (0, 0)
    assert workspace.store.sql("SELECT sum(BilledCost) FROM bill_lines") == [(Decimal("0.428"),)]


def test_a_file_missing_mandatory_columns_is_refused_whole(workspace: Workspace) -> None:
    path = FIXTURES / "missing_mandatory.csv"
    with pytest.raises(IngestError, match=r"missing mandatory FOCUS column\(s\) \['BilledCost', 'BillingCurrency'\]"):
        workspace.ingest("focus", [path])
    assert workspace.store.sql("SELECT (SELECT count(*) FROM bill_lines) + (SELECT count(*) FROM ingest_log)") == [(0,)]


def put(directory: Path, name: str, data: bytes) -> Path:
    (directory / name).write_bytes(data)
    return directory / name


def half_of(name: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda d: write_csv(d / "usage.csv", [{"ts": "2026-01-01", "model": "gpt-4o"}]),
            "no FOCUS column, is it FOCUS",
        ),
        (lambda d: put(d, "bill.jsonl", b"{}\n"), "unknown file extension"),
        (lambda d: put(d, "bill.parquet", b"PAR1 not parquet"), "cannot be read as parquet"),
        (lambda d: put(d, "bill.csv", (FIXTURES / "azure_focus_1_2.parquet").read_bytes()), "cannot be read as csv"),
        (lambda d: put(d, "bill.csv", b""), "empty file"),
        (lambda d: put(d, "bill.csv", half_of("aws_focus_1_0.csv")), "truncated?"),
        (lambda d: put(d, "bill.csv.gz", half_of("aws_focus_1_1.csv.gz")), "cannot be read as csv"),
        (lambda d: put(d, "bill.parquet", half_of("azure_focus_1_2.parquet")), "cannot be read as parquet"),
    ],
    ids=[
        "not-focus",
        "jsonl",
        "not-parquet",
        "parquet-as-csv",
        "empty",
        "truncated-csv",
        "truncated-gz",
        "truncated-pq",
    ],
)
def test_wrong_format_and_truncated_files_give_clear_errors_and_write_nothing(
    workspace: Workspace,
    tmp_path: Path,
    make,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    path = make(tmp_path)
    with pytest.raises(UnitcostError, match=message) as e:
        workspace.ingest("focus", [path])
    assert str(path) in str(e.value)
    assert workspace.store.sql("SELECT (SELECT count(*) FROM bill_lines) + (SELECT count(*) FROM ingest_log)") == [(0,)]


def test_column_names_match_exactly_first_then_case_insensitively() -> None:
    assert match_columns(["billedcost", " Tags ", "x_tags"]) == {"BilledCost": "billedcost", "Tags": " Tags "}
    # an exact name wins; the variant stays a custom column (in attributes)
    assert match_columns(["BilledCost", "BILLEDCOST"]) == {"BilledCost": "BilledCost"}


def test_bill_lines_has_every_focus_column_with_its_sql_type() -> None:
    sql_type = {c.name: c.sql_type for c in BILL_LINES.columns}
    for c in FOCUS_COLUMNS:
        want = {"String": "VARCHAR", "Date/Time": "TIMESTAMP", "JSON": "JSON"}.get(c.focus_type)
        if c.focus_type == "Decimal":
            want = FOCUS_UNIT_PRICE if c.name.endswith("UnitPrice") else FOCUS_AMOUNT
        assert sql_type[c.name] == want, c.name
    focus_in_table = [c for c in sql_type if c[0].isupper()]
    assert focus_in_table == [c.name for c in FOCUS_COLUMNS]
    # the spec's column counts: 43 in 1.0, 50 in 1.1, 57 in 1.2, 65 in 1.3
    assert [sum(c.since <= v for c in FOCUS_COLUMNS) for v in ("1.0", "1.1", "1.2", "1.3")] == [43, 50, 57, 65]


def test_docs_list_every_focus_column() -> None:
    doc = (ROOT / "docs" / "formats" / "focus.md").read_text()
    assert [c.name for c in FOCUS_COLUMNS if f"| `{c.name}` |" not in doc] == []


def test_cli_ingests_focus(tmp_path: Path) -> None:
    from unitcost.cli import app

    db = tmp_path / "w.duckdb"
    result = CliRunner().invoke(app, ["--db", str(db), "ingest", "focus", str(FIXTURES / "gcp_focus_1_3.csv")])
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(app, ["--db", str(db), "ingest", "focus", str(FIXTURES / "missing_mandatory.csv")])
    assert bad.exit_code == 2 and "missing mandatory FOCUS column" in bad.output

"""The csv format: any usage file through a YAML column mapping; mapping errors name the file and the key."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from unitcost.errors import ConfigError, IngestError, UnitcostError
from unitcost.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "fixtures" / "csv"
MAPPING = HERE / "requests.mapping.yaml"

COLUMNS = (
    "request_id, ts, trace_id, tenant, feature, provider, model, environment, region, input_tokens, "
    "cache_read_tokens, output_tokens, latency_ms, status, reported_cost_usd, attributes->>'$.app_version'"
)
T = dt.datetime
EXPECTED = [
    ("c-0001", T(2025, 5, 6, 9, 14, 3, 512000), "t-1001", "acme", "support-bot", "openai", "gpt-4o", "production",
     "eu-west-1", 1830, 1024, 350, 2508.0, "ok", 0.006915, "2025.05.2"),
    ("c-0002", T(2025, 5, 6, 9, 15, 10), "t-1001", "acme", "support-bot", "openai", "gpt-4o-mini", "production",
     "eu-west-1", 600, 0, 100, 1000.0, "ok", 0.00018, "2025.05.2"),
    ("c-0003", T(2025, 5, 6, 9, 16), "t-1002", "globex", "knowledge-search", "openai", "gpt-4o-mini", "production",
     "us-east-1", 0, 0, 0, 30000.0, "error", 0.0, "2025.05.2"),
    ("c-0004", T(2025, 5, 6, 9, 17), None, "initech", "proposal-drafting", "openai", "o3-mini", "production",
     "us-east-1", 2000, 0, 1500, 9000.0, "ok", 0.0088, "2025.05.1"),
]  # fmt: skip


def rows(workspace: Workspace) -> list[tuple[object, ...]]:
    return [tuple(r) for r in workspace.store.sql(f"SELECT {COLUMNS} FROM usage ORDER BY ts")]


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
def test_a_mapped_file_becomes_usage_rows(workspace: Workspace, tmp_path: Path, kind: str) -> None:
    table = pacsv.read_csv(HERE / "requests.csv")  # typed columns: epoch int64, latency double, ...
    path = {"csv": HERE / "requests.csv", "parquet": tmp_path / "requests.parquet", "jsonl": tmp_path / "r.jsonl"}[kind]
    if kind == "parquet":
        pq.write_table(table, path)
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()))
    [result] = workspace.ingest("csv", [path], mapping=MAPPING)
    assert (result.format, result.target_table, result.rows_landed, result.rows_quarantined) == ("csv", "usage", 4, 0)
    assert rows(workspace) == EXPECTED


def test_outcomes_with_a_date_format(workspace: Workspace) -> None:
    [result] = workspace.ingest("csv", [HERE / "tickets.csv"], mapping=HERE / "tickets.mapping.yaml")
    assert (result.target_table, result.rows_landed) == ("outcomes", 2)
    got = workspace.store.sql("SELECT trace_id, ts, use_case, outcome, attributes FROM outcomes ORDER BY trace_id")
    assert [tuple(r) for r in got] == [
        ("t-1001", T(2025, 5, 6, 9, 30), "resolved support ticket", "success", '{"csat":"5"}'),
        ("t-1002", T(2025, 5, 6, 10, 2), "resolved support ticket", "escalated", '{"csat":"2"}'),
    ]


def test_priced_and_reingest_lands_nothing_new(workspace: Workspace) -> None:
    workspace.ingest("csv", [HERE / "requests.csv"], mapping=MAPPING)
    [again] = workspace.ingest("csv", [HERE / "requests.csv"], mapping=MAPPING)
    assert (again.rows_landed, again.duplicates_skipped) == (0, 4)
    report = workspace.report()
    assert report.total_cost_usd > 0 and report.unpriced == [] and report.priced_requests == 4


def test_the_shipped_example_mapping_reads_its_documented_file(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    path = csv_file(
        "llm_calls.csv",
        [
            {"call_id": "a1", "created_ms": 1746522843512, "customer": "acme", "product_area": "support-bot",
             "llm_model": "gpt-4o", "prompt_tokens": 1830, "cached_prompt_tokens": 1024, "completion_tokens": 350,
             "latency_s": 2.5, "status": "ok", "app_version": "2025.05.2"},
        ],
    )  # fmt: skip
    [result] = workspace.ingest("csv", [path], mapping=ROOT / "examples" / "csv-mapping.yaml")
    assert result.rows_landed == 1
    got = workspace.store.sql("SELECT ts, tenant, provider, model, latency_ms, attributes FROM usage")[0]
    assert tuple(got) == (
        T(2025, 5, 6, 9, 14, 3, 512000),
        "acme",
        "openai",
        "gpt-4o",
        2500.0,
        '{"app_version":"2025.05.2"}',
    )


def test_bad_rows_are_quarantined_with_record_field_reason(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    good = {
        "call_id": "c-1", "created_epoch_ms": "1746522843512", "session": "t-1", "customer": "acme",
        "product_area": "bot", "llm_model": "gpt-4o", "prompt_tokens": "10", "cached_prompt_tokens": "0",
        "completion_tokens": "5", "latency_s": "1.5", "status": "ok", "cost": "0.1", "region": "eu",
        "app_version": "v1",
    }  # fmt: skip
    bad = [
        ({"created_epoch_ms": "yesterday"}, "ts", "not a valid timestamp"),
        ({"latency_s": "slow"}, "latency_ms", "not a valid double"),
        ({"completion_tokens": "-1"}, "output_tokens", "cannot be negative"),
        ({"status": "maybe"}, "status", "status must be one of"),
    ]
    records = [good] + [dict(good, call_id=f"bad-{i}", **over) for i, (over, _, _) in enumerate(bad)]
    [result] = workspace.ingest("csv", [csv_file("r.csv", records)], mapping=MAPPING)
    assert (result.rows_landed, result.rows_quarantined) == (1, len(bad))
    got = workspace.store.sql("SELECT record, field, reason, raw FROM quarantine ORDER BY record")
    for (record, field, reason, raw), (i, (_, want_field, want_reason)) in zip(got, enumerate(bad), strict=True):
        assert (record, field) == (i + 2, want_field)
        assert want_reason in reason
        assert json.loads(raw)["call_id"] == f"bad-{i}"


# (mapping file text, error class, message fragments): each names the mapping file
MAPPING_ERRORS = [
    ("rename: {tennant: customer}", ConfigError, ["rename.tennant", "did you mean 'tenant'"]),
    ("renames: {tenant: customer}", ConfigError, ["renames", "Extra inputs are not permitted"]),
    ("target: bills", ConfigError, ["target", "'usage' or 'outcomes'"]),
    ("convert: {latency_ms: {from: latency_s, unit: ms}}", ConfigError, ["convert.latency_ms", "apply to timestamps"]),
    ("convert: {ts: {from: created_epoch_ms, multiply: 2}}", ConfigError, ["convert.ts", "apply to numbers"]),
    (
        "convert: {latency_ms: {from: latency_s, divide: 0}}",
        ConfigError,
        ["convert.latency_ms", "divide must not be 0"],
    ),
    ("convert: {latency_ms: {source: latency_s}}", ConfigError, ["convert.latency_ms.from", "Field required"]),
    (
        "rename: {tenant: customer}\nconstants: {tenant: acme}",
        ConfigError,
        ["constants.tenant", "already set in rename"],
    ),
    ("rename: [tenant]", ConfigError, ["rename", "valid dictionary"]),
    ("rename: {tenant: client}", IngestError, ["rename.tenant", "source column 'client' is not in the file"]),
    ("rename: {request_id: call_id}", IngestError, ["required column(s) ['ts', 'provider', 'model']"]),
    ("rename: {a: [", ConfigError, ["not valid YAML"]),
]


@pytest.mark.parametrize(("text", "error", "fragments"), MAPPING_ERRORS)
def test_mapping_errors_name_the_mapping_file_and_the_key(
    workspace: Workspace, tmp_path: Path, text: str, error: type[Exception], fragments: list[str]
) -> None:
    mapping = tmp_path / "bad-mapping.yaml"
    mapping.write_text(text + "\n")
    with pytest.raises(error) as e:
        workspace.ingest("csv", [HERE / "requests.csv"], mapping=mapping)
    for fragment in [str(mapping), *fragments]:
        assert fragment in str(e.value)
    assert workspace.store.sql("SELECT count(*) FROM ingest_log")[0][0] == 0


def test_a_mapping_is_required(workspace: Workspace) -> None:
    with pytest.raises(ConfigError, match="needs a column mapping: unitcost ingest csv FILE --mapping"):
        workspace.ingest("csv", [HERE / "requests.csv"])


def test_a_file_of_another_shape_is_refused_and_writes_nothing(workspace: Workspace) -> None:
    path = ROOT / "tests" / "fixtures" / "langfuse" / "observations.jsonl"
    with pytest.raises(UnitcostError, match="source column 'call_id' is not in the file") as e:
        workspace.ingest("csv", [path], mapping=MAPPING)
    assert str(path) in str(e.value) and str(MAPPING) in str(e.value)
    assert workspace.store.sql("SELECT (SELECT count(*) FROM usage) + (SELECT count(*) FROM ingest_log)")[0][0] == 0


def test_constants_override_a_source_column_which_stays_in_attributes(workspace: Workspace, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(MAPPING.read_text().replace("environment: production", "environment: production\n  region: eu"))
    workspace.ingest("csv", [HERE / "requests.csv"], mapping=mapping)
    got = workspace.store.sql("SELECT DISTINCT region, attributes->>'$.region' FROM usage ORDER BY 2")
    assert [tuple(r) for r in got] == [("eu", "eu-west-1"), ("eu", "us-east-1")]


def test_epoch_units(workspace: Workspace, tmp_path: Path) -> None:
    for unit, factor in (("s", 1), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        mapping = tmp_path / f"{unit}.yaml"
        mapping.write_text(
            f"rename: {{request_id: id}}\nconstants: {{provider: openai, model: gpt-4o}}\n"
            f"convert: {{ts: {{from: t, unit: {unit}}}}}\n"
        )
        one = tmp_path / f"{unit}.parquet"
        pq.write_table(
            pa.table({"id": [unit], "t": [int(1746522843.5 * factor) if unit != "s" else 1746522843.5]}), one
        )
        workspace.ingest("csv", [one], mapping=mapping)
    got = workspace.store.sql("SELECT DISTINCT ts FROM usage")
    assert [r[0] for r in got] == [T(2025, 5, 6, 9, 14, 3, 500000)]

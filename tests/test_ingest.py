"""Ingestion: bad rows are quarantined with file, record, field and reason; nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from unitcost.errors import IngestError, InputFileNotFound, UnitcostError
from unitcost.workspace import Workspace

GOOD = {
    "ts": "2026-10-01T10:00:00Z",
    "provider": "openai",
    "model": "gpt-4o",
    "input_tokens": 1000,
    "output_tokens": 10,
    "status": "ok",
}


def row(rid: str, **over: object) -> dict[str, object]:
    return {"request_id": rid, **GOOD, **over}


# (row overrides, field, reason fragment): one table of examples
BAD_ROWS = [
    ({"input_tokens": "abc"}, "input_tokens", "not a valid bigint"),
    ({"input_tokens": "12.5"}, "input_tokens", "not a valid bigint"),
    ({"ts": ""}, "ts", "required value is missing"),
    ({"ts": "yesterday"}, "ts", "not a valid timestamp"),
    ({"model": ""}, "model", "required value is missing"),
    ({"cache_read_tokens": 2000}, "cache_read_tokens", "exceed input_tokens"),
    ({"reasoning_tokens": 50}, "reasoning_tokens", "exceed output_tokens"),
    ({"output_tokens": -1}, "output_tokens", "cannot be negative"),
    ({"status": "maybe"}, "status", "status must be one of"),
    ({"attempt": 0}, "attempt", "attempt starts at 1"),
    ({"attributes": "{not json"}, "attributes", "not a valid json"),
]


def test_bad_rows_go_to_quarantine_with_record_field_reason(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    rows = [row("ok-1")] + [row(f"bad-{i}", **over) for i, (over, _, _) in enumerate(BAD_ROWS)] + [row("ok-2")]
    path = csv_file("u.csv", rows)
    [result] = workspace.ingest("usage", [path])
    assert (result.rows_read, result.rows_landed, result.rows_quarantined) == (len(rows), 2, len(BAD_ROWS))
    got = workspace.store.sql("SELECT record, field, reason, source_file, raw FROM quarantine ORDER BY record")
    assert len(got) == len(BAD_ROWS)
    for (record, field, reason, source, raw), (i, (_, want_field, want_reason)) in zip(
        got, enumerate(BAD_ROWS), strict=True
    ):
        assert record == i + 2  # record 1 is ok-1
        assert field == want_field
        assert want_reason in reason
        assert source == str(path)
        assert json.loads(raw)["request_id"] == f"bad-{i}"  # the row as read is kept
    assert result.first_problem is not None and "record 2" in result.first_problem


def test_reingest_and_overlap_do_not_double_count(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    a = csv_file("a.csv", [row("r1"), row("r2"), row("r2"), row("bad", ts="x")])
    b = csv_file("b.csv", [row("r2"), row("r3")])
    [first] = workspace.ingest("usage", [a])
    assert (first.rows_landed, first.duplicates_skipped, first.rows_quarantined) == (2, 1, 1)
    [again] = workspace.ingest("usage", [a])
    assert (again.rows_landed, again.duplicates_skipped) == (0, 3)
    [overlap] = workspace.ingest("usage", [b])
    assert (overlap.rows_landed, overlap.duplicates_skipped) == (1, 1)
    assert workspace.store.sql("SELECT count(*) FROM usage")[0][0] == 3
    assert workspace.quarantine_count() == 1  # the same bad row is not quarantined twice
    assert workspace.store.sql("SELECT count(*) FROM ingest_log")[0][0] == 3


def test_outcomes_dedupe_on_trace_id(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    o = [
        {"trace_id": "t1", "ts": "2026-10-01", "outcome": "success"},
        {"trace_id": "t1", "ts": "2026-10-01", "outcome": "failure"},
        {"trace_id": "t2", "ts": "2026-10-01", "outcome": "resolved"},
    ]
    [res] = workspace.ingest("outcomes", [csv_file("o.csv", o)])
    assert (res.rows_landed, res.duplicates_skipped, res.rows_quarantined) == (1, 1, 1)
    assert workspace.store.sql("SELECT outcome FROM outcomes") == [("success",)]


def test_parquet_and_jsonl(workspace: Workspace, tmp_path: Path) -> None:
    table = pa.table(
        {
            "ts": pa.array(["2026-10-01T10:00:00"] * 2, pa.string()).cast(pa.timestamp("us")),
            "request_id": ["p1", "p2"],
            "provider": ["openai", "openai"],
            "model": ["gpt-4o", "gpt-4o"],
            "input_tokens": pa.array([100, 200], pa.int64()),
            "output_tokens": pa.array([1, 2], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "u.parquet")
    lines = [
        json.dumps(row("j1", attributes={"team": "x"})),
        json.dumps(row("j2", input_tokens="lots")),
    ]
    (tmp_path / "u.jsonl").write_text("\n".join(lines) + "\n")
    res = workspace.ingest("usage", [tmp_path / "u.parquet", tmp_path / "u.jsonl"])
    assert [(r.format, r.rows_landed, r.rows_quarantined) for r in res] == [("usage", 2, 0), ("usage", 1, 1)]
    attrs = workspace.store.sql("SELECT attributes FROM usage WHERE request_id = 'j1'")[0][0]
    assert json.loads(attrs) == {"team": "x"}


def test_gzipped_csv(workspace: Workspace, tmp_path: Path, csv_file) -> None:  # type: ignore[no-untyped-def]
    import gzip

    plain = csv_file("u.csv", [row("g1"), row("g2")])
    (tmp_path / "u.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    [res] = workspace.ingest("usage", [tmp_path / "u.csv.gz"])
    assert res.rows_landed == 2


def test_extra_columns_are_kept_in_attributes(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    workspace.ingest("usage", [csv_file("u.csv", [row("r1", team="search", attributes='{"a": 1}')])])
    attrs = workspace.store.sql("SELECT attributes FROM usage")[0][0]
    assert json.loads(attrs) == {"a": 1, "team": "search"}


def test_strict_fails_on_first_bad_row_and_writes_nothing(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    path = csv_file("u.csv", [row("r1"), row("r2", status="nope"), row("r3", ts="")])
    with pytest.raises(IngestError) as e:
        workspace.ingest("usage", [path], strict=True)
    assert e.value.record == 2 and e.value.field == "status" and str(path) in str(e.value)
    assert workspace.store.sql("SELECT count(*) FROM usage")[0][0] == 0
    assert workspace.quarantine_count() == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("u.csv", "request_id,model\nr1,gpt-4o\n", "missing required column"),
        ("u.parquet", "PAR1 this is not parquet", "cannot be read as parquet"),
        ("u.txt", "whatever", "unknown file extension"),
    ],
)
def test_unreadable_files_give_clear_errors_and_write_nothing(
    workspace: Workspace, tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UnitcostError, match=message) as e:
        workspace.ingest("usage", [path])
    assert str(path) in str(e.value)
    assert workspace.store.sql("SELECT count(*) FROM ingest_log")[0][0] == 0


def test_truncated_parquet_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    table = pa.table({"request_id": ["a"] * 1000, "ts": ["2026-10-01"] * 1000, "model": ["m"] * 1000})
    pq.write_table(table, tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="cannot be read as parquet"):
        workspace.ingest("usage", [tmp_path / "cut.parquet"])


def test_unknown_format_suggests_the_closest(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(UnitcostError, match="did you mean 'usage'"):
        workspace.ingest("usages", [tmp_path / "u.csv"])


def test_missing_file(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InputFileNotFound):
        workspace.ingest("usage", [tmp_path / "nope.csv"])


def test_internal_ids_are_unique_across_files(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    workspace.ingest("usage", [csv_file("a.csv", [row("a1", trace_id="t1"), row("a2", trace_id="t2")])])
    workspace.ingest("usage", [csv_file("b.csv", [row("b1", trace_id="t1"), row("b2")])])
    rows = workspace.store.sql("SELECT request_id, row_id, unit_id FROM usage ORDER BY row_id")
    assert [r[0] for r in rows] == ["a1", "a2", "b1", "b2"]
    assert len({r[1] for r in rows}) == 4
    units = {r[0]: r[2] for r in rows}
    assert units["a1"] == units["b1"]  # same trace, same unit across files
    assert len(set(units.values())) == 3


def _usage_parquet(path: Path, rows: list[dict[str, object]], group: int = 3, **columns: list[object]) -> Path:
    """A canonical usage Parquet file of ``rows`` (typed as a real export would be), ``group`` rows per row group."""
    data = {
        "ts": pa.array([r["ts"] for r in rows], pa.string()).cast(pa.timestamp("us")),
        "request_id": [r["request_id"] for r in rows],
        "provider": [r["provider"] for r in rows],
        "model": [r["model"] or None for r in rows],
        "input_tokens": pa.array([r["input_tokens"] for r in rows], pa.int64()),
        "output_tokens": pa.array([r["output_tokens"] for r in rows], pa.int64()),
        **columns,
    }
    pq.write_table(pa.table(data), path, row_group_size=group)  # several groups: file order must hold across them
    return path


def test_parquet_bad_rows_keep_their_record_number_and_row(workspace: Workspace, tmp_path: Path) -> None:
    # Parquet is read in place (not copied first): the record number is the file's row number
    rows = [row(f"r{i}", ts="2026-10-01T10:00:00") for i in range(10)]
    rows[4]["output_tokens"] = -1
    rows[8]["model"] = ""
    path = _usage_parquet(tmp_path / "u.parquet", rows)
    [res] = workspace.ingest("usage", [path])
    assert (res.rows_read, res.rows_landed, res.rows_quarantined) == (10, 8, 2)
    got = workspace.store.sql("SELECT record, field, raw FROM quarantine ORDER BY record")
    assert [(r, f) for r, f, _ in got] == [(5, "output_tokens"), (9, "model")]
    raw = json.loads(got[0][2])
    assert raw["request_id"] == "r4" and raw["output_tokens"] == -1
    assert "file_row_number" not in raw  # the reader's row number is not part of the row as read
    ids = workspace.store.sql("SELECT request_id FROM usage ORDER BY row_id")
    assert [i for (i,) in ids] == [f"r{i}" for i in range(10) if i not in (4, 8)]


def test_parquet_with_its_own_file_row_number_column(workspace: Workspace, tmp_path: Path) -> None:
    rows = [row(f"r{i}", ts="2026-10-01T10:00:00") for i in range(4)]
    rows[2]["input_tokens"] = -5
    path = _usage_parquet(tmp_path / "u.parquet", rows, file_row_number=[7, 8, 9, 10])
    [res] = workspace.ingest("usage", [path])
    assert (res.rows_landed, res.rows_quarantined) == (3, 1)
    assert workspace.store.sql("SELECT record FROM quarantine") == [(3,)]
    attrs = workspace.store.sql("SELECT attributes FROM usage WHERE request_id = 'r3'")[0][0]
    assert json.loads(attrs) == {"file_row_number": 10}  # a column of the file, kept like any other extra


def _ops_parquet(path: Path, n: int) -> Path:
    """People-time records (the ``ops`` format, whose mapping computes a record hash) as Parquet."""
    days = pa.array(["2026-10-01"] * n).cast(pa.date32())
    table = pa.table(
        {"date": days, "activity": [f"task-{i}" for i in range(n)], "hours": [1.5] * n, "hourly_rate_usd": [100.0] * n}
    )
    pq.write_table(table, path, row_group_size=1000)
    return path


@pytest.mark.parametrize("fmt", ["usage", "ops"])  # a mapping of plain columns, and a computed one
def test_parquet_damaged_behind_its_metadata_is_refused_and_writes_nothing(
    workspace: Workspace, tmp_path: Path, fmt: str
) -> None:
    if fmt == "usage":
        path = _usage_parquet(
            tmp_path / "u.parquet", [row(f"r{i}", ts="2026-10-01T10:00:00") for i in range(3000)], 1000
        )
    else:
        path = _ops_parquet(tmp_path / "ops.parquet", 3000)
    data = bytearray(path.read_bytes())
    for i in range(200, len(data) // 3, 7):  # pages scrambled, footer intact: the schema still reads
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(IngestError, match="cannot be read as parquet") as e:
        workspace.ingest(fmt, [path])
    assert str(path) in str(e.value)
    assert workspace.store.sql("SELECT count(*) FROM ingest_log") == [(0,)]
    assert workspace.store.sql("SELECT (SELECT count(*) FROM usage) + (SELECT count(*) FROM ops_hours)") == [(0,)]


def test_the_quarantined_row_is_the_whole_row_as_read(workspace: Workspace, tmp_path: Path, csv_file) -> None:  # type: ignore[no-untyped-def]
    # a column named like the engine's row alias, and a decimal finer than a double: both kept exactly
    rows = [row("c1", s="x1"), row("c2", s="x2", output_tokens=-1)]
    workspace.ingest("usage", [csv_file("u.csv", rows)])
    prq = [row(f"p{i}", ts="2026-10-01T10:00:00") for i in range(2)]
    prq[1]["output_tokens"] = -1
    exact = pa.array([None, "1234567890123456.1234567890123456789012"]).cast(pa.decimal128(38, 22))
    workspace.ingest("usage", [_usage_parquet(tmp_path / "u.parquet", prq, s=["y1", "y2"], amount=exact)])
    raws = [json.loads(r) for (r,) in workspace.store.sql("SELECT raw FROM quarantine ORDER BY source_file DESC")]
    assert raws[0]["request_id"] == "p1" and raws[0]["s"] == "y2" and "file_row_number" not in raws[0]
    raw_text = workspace.store.sql("SELECT raw FROM quarantine WHERE raw LIKE '%p1%'")[0][0]
    assert "1234567890123456.1234567890123456789012" in raw_text
    assert raws[1]["request_id"] == "c2" and raws[1]["s"] == "x2" and raws[1]["output_tokens"] == "-1"


def test_a_column_named_like_the_readers_row_number_in_any_case(workspace: Workspace, tmp_path: Path) -> None:
    rows = [row(f"r{i}", ts="2026-10-01T10:00:00") for i in range(3)]
    path = _usage_parquet(tmp_path / "u.parquet", rows, File_Row_Number=[1, 2, 3])
    [res] = workspace.ingest("usage", [path])
    assert res.rows_landed == 3
    attrs = workspace.store.sql("SELECT attributes FROM usage WHERE request_id = 'r2'")[0][0]
    assert json.loads(attrs) == {"File_Row_Number": 3}


def test_a_column_named_rowid_is_refused_by_name(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    path = csv_file("u.csv", [row("r1", rowid=7), row("r2", rowid=8, output_tokens=-1)])
    with pytest.raises(IngestError, match="column named 'rowid'") as e:
        workspace.ingest("usage", [path])
    assert e.value.field == "rowid" and str(path) in str(e.value)
    assert workspace.store.sql("SELECT (SELECT count(*) FROM usage) + (SELECT count(*) FROM quarantine)") == [(0,)]


def test_a_failed_ingest_leaves_no_working_tables(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    # files are staged and checked in temporary tables before the transaction that writes them
    bad = csv_file("bad.csv", [row("r1"), row("r2", status="nope")])
    with pytest.raises(IngestError):
        workspace.ingest("usage", [bad], strict=True)
    temp = "SELECT table_name FROM duckdb_tables() WHERE temporary UNION ALL SELECT view_name FROM duckdb_views() "
    temp += "WHERE temporary AND NOT internal"
    assert workspace.store.sql(temp) == []
    [res] = workspace.ingest("usage", [csv_file("good.csv", [row("r1"), row("r3")])])
    assert res.rows_landed == 2
    assert workspace.store.sql(temp) == []


def test_transactions_do_not_nest_and_the_outer_one_survives(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    # the writer lock is reentrant (a file is checked under it, then written in a transaction); a transaction is not
    from unitcost.store.duckdb import StoreError

    path = csv_file("u.csv", [row("r1")])
    with workspace.store.transaction() as con:
        con.execute("CREATE TABLE kept AS SELECT 1 AS x")
        with pytest.raises(StoreError, match="do not nest"):
            workspace.ingest("usage", [path])
    assert workspace.store.sql("SELECT x FROM kept") == [(1,)]  # the outer transaction committed
    assert workspace.store.sql("SELECT count(*) FROM usage") == [(0,)]
    [res] = workspace.ingest("usage", [path])
    assert res.rows_landed == 1


def test_a_folder_gives_the_files_the_format_reads(workspace: Workspace, tmp_path: Path) -> None:
    import gzip

    from conftest import write_csv

    export = tmp_path / "export"
    (export / "2026" / "10").mkdir(parents=True)
    (export / ".partial").mkdir()
    write_csv(export / "b.csv", [row("b1")])
    write_csv(export / "2026" / "10" / "a.csv", [row("a1"), row("a2")])
    (export / "c.csv.gz").write_bytes(gzip.compress(write_csv(tmp_path / "c.csv", [row("c1")]).read_bytes()))
    write_csv(export / ".partial" / "d.csv", [row("d1")])  # hidden: an export still being written
    (export / "README.txt").write_text("not data")
    results = workspace.ingest("usage", [export])
    names = [Path(r.source_file).relative_to(export).as_posix() for r in results]
    assert names == ["2026/10/a.csv", "b.csv", "c.csv.gz"]  # sorted by path, hidden and foreign files left out
    assert workspace.store.sql("SELECT count(*) FROM usage") == [(4,)]


def test_a_quoted_pattern_gives_its_matches(workspace: Workspace, tmp_path: Path, csv_file) -> None:  # type: ignore[no-untyped-def]
    csv_file("u1.csv", [row("p1")])
    csv_file("u2.csv", [row("p2")])
    csv_file("other.csv", [row("p3")])
    results = workspace.ingest("usage", [str(tmp_path / "u*.csv")])
    assert [Path(r.source_file).name for r in results] == ["u1.csv", "u2.csv"]


@pytest.mark.parametrize("kind", ["empty folder", "pattern"])
def test_a_folder_or_pattern_with_nothing_to_read_is_an_error(workspace: Workspace, tmp_path: Path, kind: str) -> None:
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "notes.txt").write_text("x")
    target = tmp_path / "dump" if kind == "empty folder" else tmp_path / "dump" / "*.parquet"
    message = "no usage files in it" if kind == "empty folder" else "no file matches"
    with pytest.raises(InputFileNotFound, match=message) as e:
        workspace.ingest("usage", [target])
    assert str(target) in str(e.value)
    assert workspace.store.sql("SELECT count(*) FROM ingest_log") == [(0,)]


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("fmt", "path"),
    [
        ("otlp", FIXTURES / "otlp" / "current.binpb"),
        ("litellm", FIXTURES / "litellm" / "spend_logs.csv"),
        ("litellm", FIXTURES / "litellm" / "spend_logs_v2.json"),
        ("langfuse", FIXTURES / "langfuse" / "trace.json"),
        ("openai-usage", FIXTURES / "openai-usage" / "completions_page1.json"),
        ("focus", FIXTURES / "focus" / "azure_focus_1_2.parquet"),
        ("focus", FIXTURES / "focus" / "aws_focus_1_0.csv"),
    ],
)
def test_every_format_leaves_no_working_tables(workspace: Workspace, fmt: str, path: Path) -> None:
    results = workspace.ingest(fmt, [path])
    assert sum(r.rows_landed for r in results) > 0
    temp = "SELECT table_name FROM duckdb_tables() WHERE temporary UNION ALL SELECT view_name FROM duckdb_views() "
    assert workspace.store.sql(temp + "WHERE temporary AND NOT internal") == []

"""The command line through Typer's runner: exit codes, messages, the JSON contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_csv
from unitcost.cli import app

runner = CliRunner()

USAGE = [
    {
        "request_id": f"r{i}",
        "trace_id": f"t{i // 2}",
        "ts": f"2026-10-0{1 + i % 3}T10:00:00Z",
        "tenant": "acme" if i % 2 else "globex",
        "feature": "support-bot",
        "provider": "openai",
        "model": "gpt-4o-mini" if i % 3 else "gpt-4o",
        "input_tokens": 1000 + i,
        "output_tokens": 100,
        "status": "ok",
    }
    for i in range(12)
] + [
    {
        "request_id": "bad",
        "ts": "not a time",
        "provider": "openai",
        "model": "gpt-4o",
    }
]

#: The documented JSON contract (docs/json.md): key -> type.
TOP_LEVEL = {
    "period": dict,
    "currency": str,
    "requests": int,
    "units_of_work": int,
    "successful_outcomes": int,
    "total_cost_usd": float,
    "cost_per_request_usd": float,
    "cost_per_successful_outcome_usd": float,
    "unpriced_requests": int,
    "waste_usd": float,
    "breakdown": dict,
}
ROW = {
    "key": str,
    "cost_usd": float,
    "requests": int,
    "successful_outcomes": int,
    "cost_per_successful_outcome_usd": (float, type(None)),  # null for a key credited with no success
}


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # no unitcost.yaml here
    path = str(tmp_path / "w.duckdb")
    res = runner.invoke(app, ["--db", path, "ingest", "usage", str(write_csv(tmp_path / "u.csv", USAGE))])
    assert res.exit_code == 0, res.output
    assert "quarantined" in res.output and "record 13" in res.output
    return path


def test_report_json_contract(db: str) -> None:
    res = runner.invoke(app, ["--db", db, "report", "--json", "--by", "tenant,model", "--from", "2026-10-01"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    for key, typ in TOP_LEVEL.items():
        assert isinstance(doc[key], typ), key
    assert doc["period"] == {"from": "2026-10-01T00:00:00", "to": None}
    assert doc["currency"] == "USD"
    assert doc["requests"] == 12
    assert set(doc["breakdown"]) == {"tenant", "model"}
    for rows in doc["breakdown"].values():
        for r in rows:
            for key, typ in ROW.items():
                assert isinstance(r[key], typ), key
        assert sum(r["cost_usd"] for r in rows) == pytest.approx(doc["total_cost_usd"])


def test_report_terminal(db: str) -> None:
    res = runner.invoke(app, ["--db", db, "report", "--by", "tenant"])
    assert res.exit_code == 0, res.output
    assert "Cost by tenant" in res.output and "acme" in res.output and "cost per successful outcome" in res.output


def test_db_from_environment(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNITCOST_DB", db)
    res = runner.invoke(app, ["report", "--json"])
    assert json.loads(res.stdout)["requests"] == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--by", "tennant"], "did you mean 'tenant'"),
        (["report", "--from", "last tuesday"], "expected a date"),
        (["report", "--from", "2026-10-05", "--to", "2026-10-01"], "must be after"),
        (["ingest", "usage", "missing.csv"], "no such file"),
        (["--config", "nope.yaml", "report"], "does not exist"),
    ],
)
def test_errors_are_one_clear_line(db: str, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["--db", db, *args])
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output


def test_quarantine_command(db: str) -> None:
    res = runner.invoke(app, ["--db", db, "quarantine"])
    assert res.exit_code == 0
    assert "not a valid timestamp" in res.output and "13" in res.output


def test_unpriced_model_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rows = [{**USAGE[0], "provider": "acme", "model": "mystery-1"}]
    path = str(tmp_path / "w.duckdb")
    runner.invoke(app, ["--db", path, "ingest", "usage", str(write_csv(tmp_path / "u.csv", rows))])
    res = runner.invoke(app, ["--db", path, "report"])
    assert "acme/mystery-1" in res.output and "NOT in the costs" in res.output
    doc = json.loads(runner.invoke(app, ["--db", path, "report", "--json"]).stdout)
    assert doc["unpriced_requests"] == 1 and doc["total_cost_usd"] == 0
    assert doc["unpriced"][0]["model"] == "mystery-1"


def test_sources_lists_what_was_ingested(db: str) -> None:
    res = runner.invoke(app, ["--db", db, "sources"])
    assert res.exit_code == 0, res.output
    assert "u.csv" in res.output and "usage" in res.output and "13" in res.output  # 13 records read


def test_formats_lists_the_canonical_formats(db: str) -> None:
    res = runner.invoke(app, ["--db", db, "formats"])
    assert res.exit_code == 0, res.output
    assert "usage" in res.output and "outcomes" in res.output


def test_unknown_format_is_a_clear_error(db: str, tmp_path: Path) -> None:
    res = runner.invoke(app, ["--db", db, "ingest", "otlpp", str(tmp_path / "x.json")])
    assert res.exit_code == 2
    assert "did you mean 'otlp'" in res.output


def test_ingest_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    write_csv(folder / "day1.csv", USAGE[:5])
    write_csv(folder / "day2.csv", USAGE[5:])
    db = str(tmp_path / "w.duckdb")
    res = runner.invoke(app, ["--db", db, "ingest", "usage", str(folder)])
    assert res.exit_code == 0, res.output
    assert "record 8" in res.output  # the bad row of day2.csv
    import duckdb

    with duckdb.connect(db, read_only=True) as con:
        logged = con.execute("SELECT source_file, rows_landed FROM ingest_log ORDER BY source_file").fetchall()
    assert [(Path(f).name, n) for f, n in logged] == [("day1.csv", 5), ("day2.csv", 7)]
    res = runner.invoke(app, ["--db", db, "ingest", "usage", str(tmp_path / "nothing-here")])
    assert res.exit_code == 2 and "no such file" in " ".join(res.output.split())

"""Langfuse observations: golden rows from the UI export and the public API, quarantine, dedupe, pricing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from unitcost.errors import IngestError
from unitcost.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures"
HERE = FIXTURES / "langfuse"

COLUMNS = (
    "request_id, ts, trace_id, tenant, feature, workflow, user_id, environment, release, prompt_version, provider, "
    "model, operation, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, status, "
    "reported_cost_usd"
)
T = dt.datetime
T1, T2, T3 = "a3f1c2d4e5b6978812345678abcdef01", "b7e2d3c4f5a6071823456789bcdef012", "c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4"
# the generations and the embedding of the observations export; its SPAN and EVENT are ignored
EXPECTED = [
    ("1a2b3c4d5e6f7081", T(2025, 5, 6, 9, 14, 3, 512000), T1, "acme", "support-bot", "support-answer", "cust-42",
     "production", None, "support-answer:3", "openai", "gpt-4o", "chat", 1830, 1024, None, 350, 0, "ok", 0.006795),
    ("3c4d5e6f70819203", T(2025, 5, 6, 9, 15, 10), T2, "globex", "knowledge-search", "kb-search", "cust-7",
     "production", None, "2025-05-01", "anthropic", "claude-3-5-sonnet-20241022", "chat", 1500, 800, 200, 220, None,
     "ok", 0.00579),
    ("4d5e6f7081920314", T(2025, 5, 6, 9, 15, 20), T2, "globex", "knowledge-search", "kb-search", "cust-7",
     "production", None, None, "openai", "gpt-4o-mini", "chat", 0, None, None, 0, None, "error", None),
    ("5e6f708192031425", T(2025, 5, 6, 9, 16), T3, "initech", "proposal-drafting", "proposal-draft", None,
     "production", None, None, "openai", "o3-mini", "chat", 2000, None, None, 1500, 1200, "ok", 0.0088),
    ("6f70819203142536", T(2025, 5, 6, 9, 16, 10), T3, "initech", "proposal-drafting", "proposal-draft", None,
     "production", None, None, "openai", "text-embedding-3-small", "embeddings", 64, None, None, 0, None, "ok",
     1.28e-06),
    ("708192031425364a", T(2025, 5, 6, 9, 16, 11), T3, "initech", "proposal-drafting", "draft-section", None, None,
     None, None, "self-hosted", "llama-3.1-70b-support-ft", "chat", 900, None, None, 400, None, "ok", None),
]  # fmt: skip


def rows(workspace: Workspace) -> list[tuple[object, ...]]:
    return [tuple(r) for r in workspace.store.sql(f"SELECT {COLUMNS} FROM usage ORDER BY ts")]


@pytest.mark.parametrize(
    "export", ["observations.csv", "observations.jsonl", "observations.json", "observations.parquet"]
)
def test_observations_export_becomes_usage_rows(workspace: Workspace, tmp_path: Path, export: str) -> None:
    path = HERE / export
    if export == "observations.json":  # the JSON export is the same rows as one array
        lines = (HERE / "observations.jsonl").read_text().splitlines()
        path = tmp_path / export
        path.write_text("[" + ",".join(lines) + "]")
    if export == "observations.parquet":  # the same rows typed as a Parquet copy of the table would hold them
        path = tmp_path / export
        duckdb.sql(f"COPY (SELECT * FROM read_json('{HERE / 'observations.jsonl'}')) TO '{path}' (FORMAT parquet)")
    [result] = workspace.ingest("langfuse", [path])
    assert (result.rows_read, result.rows_landed, result.rows_quarantined, result.rows_ignored) == (6, 6, 0, 2)
    assert rows(workspace) == EXPECTED
    latency, ttft, attrs = workspace.store.sql(
        "SELECT latency_ms, ttft_ms, attributes FROM usage WHERE request_id = '1a2b3c4d5e6f7081'"
    )[0]
    assert (latency, ttft) == (2508.0, 389.0)
    attributes = json.loads(attrs)
    assert attributes["name"] == "openai-chat" and attributes["parentObservationId"] == "9f2a4c6e8b0d1f35"
    assert attributes["costDetails"]["input_cached_tokens"] == 0.00128 and attributes["version"] == "v2"
    assert "input" not in attributes and "output" not in attributes  # prompt and completion bodies are not kept


def test_api_observation_pages_carry_release_and_provided_model_name(workspace: Workspace) -> None:
    [result] = workspace.ingest("langfuse", [HERE / "observations_v2_api.json"])
    assert (result.rows_landed, result.rows_ignored) == (3, 2)
    got = rows(workspace)
    assert [r[0] for r in got] == ["1a2b3c4d5e6f7081", "3c4d5e6f70819203", "4d5e6f7081920314"]
    assert {r[8] for r in got} == {"2025.05.2"}  # release
    assert [r[11] for r in got] == ["gpt-4o", "claude-3-5-sonnet-20241022", "gpt-4o-mini"]  # from providedModelName
    assert got[0][13:19] == (1830, 1024, None, 350, 0, "ok")


def test_full_trace_observations_inherit_the_trace(workspace: Workspace) -> None:
    [result] = workspace.ingest("langfuse", [HERE / "trace.json"])
    assert (result.rows_landed, result.rows_ignored) == (3, 0)
    got = rows(workspace)
    # the trace gives the user and the release; the rest is as in the export
    assert [r[:2] + r[3:9] for r in got] == [(*e[:2], *e[3:6], "u-1", e[7], "2025.05.2") for e in EXPECTED[3:]]
    assert [r[13:] for r in got] == [e[13:] for e in EXPECTED[3:]]


def test_priced_except_the_self_hosted_model(workspace: Workspace) -> None:
    workspace.ingest("langfuse", [HERE / "observations.jsonl"])
    report = workspace.report()
    assert report.total_cost_usd > 0 and report.priced_requests == 5
    assert [(u.provider, u.model) for u in report.unpriced] == [("self-hosted", "llama-3.1-70b-support-ft")]


def test_reingest_lands_nothing_new(workspace: Workspace) -> None:
    workspace.ingest("langfuse", [HERE / "observations.csv"])
    [again] = workspace.ingest("langfuse", [HERE / "observations.jsonl"])
    assert (again.rows_landed, again.duplicates_skipped) == (0, 6)


GOOD = {
    "id": "obs",
    "traceId": "t",
    "type": "GENERATION",
    "startTime": "2025-05-06T09:14:03.512Z",
    "endTime": "2025-05-06T09:14:04.000Z",
    "model": "gpt-4o",
    "usageDetails": {"input": 100, "output": 10, "total": 110},
    "level": "DEFAULT",
}
BAD_ROWS = [
    ({"startTime": "not a time"}, "ts", "not a valid timestamp"),
    ({"model": None}, "model", "required value is missing"),
    ({"usageDetails": {"input": -100, "output": 10}}, "input_tokens", "cannot be negative"),
]


def test_bad_generations_are_quarantined_with_record_field_reason(workspace: Workspace, tmp_path: Path) -> None:
    records = [dict(GOOD, id="ok-1"), dict(GOOD, id="span-1", type="SPAN", model=None)]
    records += [dict(GOOD, id=f"bad-{i}", **over) for i, (over, _, _) in enumerate(BAD_ROWS)]
    path = tmp_path / "obs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    [result] = workspace.ingest("langfuse", [path])
    assert (result.rows_landed, result.rows_quarantined, result.rows_ignored) == (1, len(BAD_ROWS), 1)
    got = workspace.store.sql("SELECT record, field, reason, raw FROM quarantine ORDER BY record")
    for (record, field, reason, raw), (i, (_, want_field, want_reason)) in zip(got, enumerate(BAD_ROWS), strict=True):
        assert (record, field) == (i + 3, want_field)
        assert want_reason in reason
        assert json.loads(raw)["id"] == f"bad-{i}"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (HERE / "traces.jsonl", "traces export holds no model calls"),
        (FIXTURES / "litellm" / "spend_logs.csv", "not Langfuse observations"),
    ],
)
def test_other_files_are_refused_and_write_nothing(workspace: Workspace, path: Path, message: str) -> None:
    with pytest.raises(IngestError, match=message) as e:
        workspace.ingest("langfuse", [path])
    assert str(path) in str(e.value)
    assert workspace.store.sql("SELECT (SELECT count(*) FROM usage) + (SELECT count(*) FROM ingest_log)")[0][0] == 0

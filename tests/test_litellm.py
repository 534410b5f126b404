"""LiteLLM spend logs: golden rows from the table export and the API, quarantine, dedupe, pricing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from unitcost.errors import IngestError
from unitcost.ingest.applog import resolve_model
from unitcost.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures"
HERE = FIXTURES / "litellm"

COLUMNS = (
    "request_id, ts, trace_id, tenant, feature, workflow, user_id, provider, model, operation, input_tokens, "
    "cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, status, response_cache_hit, "
    "reported_cost_usd"
)
T = dt.datetime
# one row per model call in spend_logs.csv / spend_logs_v2.json (the MCP tool call is not one: ignored)
EXPECTED = [
    ("chatcmpl-AZ1a2b3c4d5e6f7g8h9i0", T(2025, 5, 6, 9, 14, 3, 512000), "ticket-1001", "acme-support", "support-bot",
     None, "cust-42", "openai", "gpt-4o", "chat", 1830, 1024, None, 350, 0, "ok", False, 0.006915),
    ("chatcmpl-AZ1a2b3c4d5e6f7g8h9i0_cache_hit1746522900.123", T(2025, 5, 6, 9, 15), "ticket-1002", "acme-support",
     "support-bot", None, "cust-42", "openai", "gpt-4o", "chat", 1830, None, None, 350, None, "ok", True, 0.0),
    ("msg_01XFDUDYJgAACzvnptvVoYEL", T(2025, 5, 6, 9, 15, 10), "3f1d2c4b-9a8e-4f0d-b1c2-7e6d5c4b3a21", "globex",
     "knowledge-search", None, "cust-7", "anthropic", "claude-3-5-sonnet-20241022", "chat", 1500, 800, 200, 220,
     None, "ok", False, 0.007365),
    ("chatcmpl-fail-0001", T(2025, 5, 6, 9, 16), "ticket-1002", "acme-support", "support-bot", None, "cust-42",
     "openai", "gpt-4o-mini", "chat", 0, None, None, 0, None, "error", None, 0.0),
    ("emb-6c1f0d3e", T(2025, 5, 6, 9, 17), "e9d8c7b6-0000-4000-8000-000000000001", "globex", "knowledge-search",
     None, None, "openai", "text-embedding-3-small", "embeddings", 12, None, None, 0, None, "ok", False, 2.4e-07),
    ("chatcmpl-BB77prefix", T(2025, 5, 6, 9, 18), "job-77", None, None, None, None, "openai", "gpt-4o-mini", "chat",
     600, None, None, 100, None, "ok", False, 0.00018),
    ("bedrock-req-0042", T(2025, 5, 6, 9, 19), "proposal-5", "initech-eu", "proposal-drafting", "outline", "u-1",
     "aws", "anthropic.claude-3-haiku-20240307-v1:0", "chat", 1000, None, None, 100, None, "ok", False, 0.000425),
]  # fmt: skip


def _api_shapes(tmp_path: Path) -> dict[str, Path]:
    """The same rows as /spend/logs (a JSON list) and as JSONL, derived from the /spend/logs/v2 page."""
    rows = json.loads((HERE / "spend_logs_v2.json").read_text())["data"]
    (tmp_path / "spend_logs.json").write_text(json.dumps(rows))
    (tmp_path / "spend_logs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # the table exported as Parquet: typed columns (timestamps, numbers), as a database export writes them
    parquet = tmp_path / "spend_logs.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{HERE / 'spend_logs.csv'}')) TO '{parquet}' (FORMAT parquet)")
    return {"list": tmp_path / "spend_logs.json", "jsonl": tmp_path / "spend_logs.jsonl", "parquet": parquet}


@pytest.mark.parametrize("shape", ["table export (csv)", "/spend/logs/v2 page", "list", "jsonl", "parquet"])
def test_spend_logs_become_usage_rows(workspace: Workspace, tmp_path: Path, shape: str) -> None:
    path = {"table export (csv)": HERE / "spend_logs.csv", "/spend/logs/v2 page": HERE / "spend_logs_v2.json"}.get(
        shape
    ) or _api_shapes(tmp_path)[shape]
    [result] = workspace.ingest("litellm", [path])
    assert (result.rows_read, result.rows_landed, result.rows_quarantined, result.rows_ignored) == (7, 7, 0, 1)
    got = workspace.store.sql(f"SELECT {COLUMNS} FROM usage ORDER BY ts")
    assert [tuple(r) for r in got] == EXPECTED
    latency, ttft, attrs = workspace.store.sql(
        "SELECT latency_ms, ttft_ms, attributes FROM usage WHERE request_id = 'chatcmpl-AZ1a2b3c4d5e6f7g8h9i0'"
    )[0]
    assert (latency, ttft) == (2508.0, 389.0)
    attributes = json.loads(attrs)
    assert attributes["user_api_key_alias"] == "support-bot-prod"  # the key alias
    assert attributes["model_group"] == "gpt-4o" and attributes["call_type"] == "acompletion"
    assert attributes["request_tags"] == ["feature:support-bot", "User-Agent: OpenAI/Python 1.54.0"]
    assert not {"messages", "response", "proxy_server_request", "model_map_information"} & set(attributes)


def test_rows_are_priced_and_reported_cost_kept(workspace: Workspace) -> None:
    workspace.ingest("litellm", [HERE / "spend_logs.csv"])
    report = workspace.report()
    assert report.total_cost_usd > 0 and report.unpriced == [] and report.priced_requests == 7
    assert report.response_cache_hits == 1
    assert workspace.store.sql("SELECT round(sum(reported_cost_usd), 9) FROM usage")[0][0] == 0.01488524


def test_reingest_lands_nothing_new(workspace: Workspace) -> None:
    workspace.ingest("litellm", [HERE / "spend_logs.csv"])
    [again] = workspace.ingest("litellm", [HERE / "spend_logs_v2.json"])  # the same calls, read from the API
    assert (again.rows_landed, again.duplicates_skipped) == (0, 7)
    assert workspace.store.sql("SELECT count(*) FROM usage")[0][0] == 7


GOOD = {
    "request_id": "r",
    "call_type": "acompletion",
    "spend": "0.001",
    "total_tokens": "110",
    "prompt_tokens": "100",
    "completion_tokens": "10",
    "startTime": "2025-05-06 09:14:03.512",
    "endTime": "2025-05-06 09:14:04.000",
    "model": "gpt-4o",
    "custom_llm_provider": "openai",
    "metadata": "{}",
    "cache_hit": "False",
    "status": "success",
}
# (overrides, field, reason fragment)
BAD_ROWS = [
    ({"startTime": "yesterday"}, "ts", "not a valid timestamp"),
    ({"completion_tokens": "-5"}, "output_tokens", "cannot be negative"),
    ({"status": "pending"}, "status", "status must be one of"),
    ({"metadata": '{"additional_usage_values": {"cache_read_input_tokens": 500}}'}, "cache_read_tokens", "exceed"),
    ({"model": "", "spend": "0.2"}, "model", "required value is missing"),
]


def test_bad_rows_are_quarantined_with_record_field_reason(workspace: Workspace, csv_file) -> None:  # type: ignore[no-untyped-def]
    rows = [dict(GOOD, request_id="ok-1")]
    rows += [dict(GOOD, request_id=f"bad-{i}", **over) for i, (over, _, _) in enumerate(BAD_ROWS)]
    [result] = workspace.ingest("litellm", [csv_file("spend.csv", rows)])
    assert (result.rows_landed, result.rows_quarantined) == (1, len(BAD_ROWS))
    got = workspace.store.sql("SELECT record, field, reason, raw FROM quarantine ORDER BY record")
    for (record, field, reason, raw), (i, (_, want_field, want_reason)) in zip(got, enumerate(BAD_ROWS), strict=True):
        assert (record, field) == (i + 2, want_field)
        assert want_reason in reason
        assert json.loads(raw)["request_id"] == f"bad-{i}"


def test_a_file_of_another_format_is_refused_and_writes_nothing(workspace: Workspace) -> None:
    path = FIXTURES / "langfuse" / "observations.jsonl"
    with pytest.raises(IngestError, match="not LiteLLM spend logs") as e:
        workspace.ingest("litellm", [path])
    assert str(path) in str(e.value)
    assert workspace.store.sql("SELECT (SELECT count(*) FROM usage) + (SELECT count(*) FROM ingest_log)")[0][0] == 0


@pytest.mark.parametrize(
    ("hint", "model", "expected"),
    [
        ("openai", "gpt-4o", ("openai", "gpt-4o")),
        (None, "openai/gpt-4o-mini", ("openai", "gpt-4o-mini")),
        (None, "claude-3-5-sonnet-20241022", ("anthropic", "claude-3-5-sonnet-20241022")),
        (
            "bedrock",
            "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
            ("aws", "anthropic.claude-3-haiku-20240307-v1:0"),
        ),
        ("vertex_ai", "gemini-1.5-pro", ("google", "gemini-1.5-pro")),
        ("openrouter", "openrouter/anthropic/claude-3.5-sonnet", ("openrouter", "anthropic/claude-3.5-sonnet")),
        ("hosted_vllm", "hosted_vllm/meta-llama/Llama-3.1-8B", ("hosted_vllm", "meta-llama/Llama-3.1-8B")),
        (None, "llama-3.1-70b-support-ft", ("unknown", "llama-3.1-70b-support-ft")),
        (None, "my-org/llama-3.1-70b-support-ft", ("unknown", "my-org/llama-3.1-70b-support-ft")),
    ],
)
def test_provider_comes_from_the_logged_provider_then_the_model_name(
    hint: str | None, model: str, expected: tuple[str, str]
) -> None:
    assert resolve_model(hint, model) == expected

"""OpenAI organization usage API pages: one aggregate row per bucket result, never counted twice."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from unitcost.errors import IngestError
from unitcost.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures"
HERE = FIXTURES / "openai-usage"

COLUMNS = (
    "ts, tenant, user_id, provider, model, operation, input_tokens, cache_read_tokens, cache_write_tokens, "
    "output_tokens, priority, status, CAST(attributes->>'$.num_model_requests' AS INTEGER)"
)
D1, D2, D3 = (dt.datetime(2025, 5, day) for day in (6, 7, 8))
# completions_page1.json then completions_page2.json (whose first bucket repeats page 1's last one)
EXPECTED = [
    (D1, "proj_search", None, "openai", "gpt-4o-mini-2024-07-18", "chat", 90000, 10000, None, 8000, "batch", "ok", 120),
    (D1, "proj_support", None, "openai", "gpt-4o-2024-08-06", "chat", 1200000, 400000, None, 150000, None, "ok", 800),
    (D1, "proj_support", None, "openai", "gpt-4o-mini-2024-07-18", "chat", 300000, 0, None, 40000, None, "ok", 350),
    (D2, "proj_support", None, "openai", "gpt-4o-2024-08-06", "chat", 1000000, 350000, None, 120000, None, "ok", 700),
    (D3, None, None, "openai", "gpt-4o-2024-08-06", "chat", 1000, 0, None, 100, None, "ok", 1),
    (D3, "proj_support", None, "openai", "o3-mini-2025-01-31", "chat", 50000, 0, None, 90000, None, "ok", 40),
]  # fmt: skip


def rows(workspace: Workspace) -> list[tuple[object, ...]]:
    return [
        tuple(r) for r in workspace.store.sql(f"SELECT {COLUMNS} FROM usage ORDER BY ts, tenant NULLS FIRST, model")
    ]


def test_pages_become_one_row_per_bucket_result_and_overlaps_count_once(workspace: Workspace) -> None:
    first, second = workspace.ingest("openai-usage", [HERE / "completions_page1.json", HERE / "completions_page2.json"])
    assert (first.rows_read, first.rows_landed) == (4, 4)
    assert (second.rows_read, second.rows_landed, second.duplicates_skipped) == (3, 2, 1)
    assert rows(workspace) == EXPECTED
    attrs = json.loads(workspace.store.sql("SELECT attributes FROM usage WHERE priority = 'batch'")[0][0])
    assert attrs == {
        "aggregate": True,
        "api_key_id": "key_def456",
        "batch": True,
        "bucket_start_time": 1746489600,
        "bucket_end_time": 1746576000,
        "input_audio_tokens": 0,
        "num_model_requests": 120,
        "output_audio_tokens": 0,
    }


def test_reingest_and_list_of_pages_land_nothing_new(workspace: Workspace, tmp_path: Path) -> None:
    pages = [json.loads((HERE / name).read_text()) for name in ("completions_page1.json", "completions_page2.json")]
    workspace.ingest("openai-usage", [HERE / "completions_page1.json", HERE / "completions_page2.json"])
    both = tmp_path / "pages.json"  # the same responses saved as one list of pages
    both.write_text(json.dumps(pages))
    [again] = workspace.ingest("openai-usage", [both])
    assert (again.rows_read, again.rows_landed, again.duplicates_skipped) == (7, 0, 7)


def test_embeddings_pages_in_jsonl(workspace: Workspace) -> None:
    [result] = workspace.ingest("openai-usage", [HERE / "embeddings_pages.jsonl"])
    assert result.rows_landed == 1
    got = workspace.store.sql("SELECT tenant, model, operation, input_tokens, output_tokens FROM usage")
    assert [tuple(r) for r in got] == [("proj_search", "text-embedding-3-small", "embeddings", 2500000, 0)]


def test_rows_are_priced(workspace: Workspace) -> None:
    workspace.ingest("openai-usage", [HERE / "completions_page1.json", HERE / "embeddings_pages.jsonl"])
    report = workspace.report()
    assert report.total_cost_usd > 0 and report.unpriced == [] and report.priced_requests == 5


def test_results_without_a_model_are_quarantined(workspace: Workspace, tmp_path: Path) -> None:
    # the API reference example: not grouped by model, so the result cannot be priced
    page = {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": 1730419200,
                "end_time": 1730505600,
                "results": [
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": 1000,
                        "output_tokens": 500,
                        "input_cached_tokens": 800,
                        "num_model_requests": 5,
                        "project_id": None,
                        "user_id": None,
                        "api_key_id": None,
                        "model": None,
                        "batch": None,
                    },
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": 100,
                        "output_tokens": 50,
                        "input_cached_tokens": 800,
                        "num_model_requests": 1,
                        "model": "gpt-4o",
                    },
                ],
            }
        ],
        "has_more": True,
        "next_page": "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA=",
    }
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page))
    [result] = workspace.ingest("openai-usage", [path])
    assert (result.rows_landed, result.rows_quarantined) == (0, 2)
    got = workspace.store.sql("SELECT record, field, reason FROM quarantine ORDER BY record")
    assert [(r, f) for r, f, _ in got] == [(1, "model"), (2, "cache_read_tokens")]
    assert "required value is missing" in got[0][2] and "exceed input_tokens" in got[1][2]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (HERE / "costs_page.json", "costs response .* not model calls"),
        (FIXTURES / "litellm" / "spend_logs_v2.json", "not an OpenAI usage API response"),
        (FIXTURES / "litellm" / "spend_logs.csv", "unknown file extension"),
    ],
)
def test_other_files_are_refused_and_write_nothing(workspace: Workspace, path: Path, message: str) -> None:
    with pytest.raises(IngestError, match=message) as e:
        workspace.ingest("openai-usage", [path])
    assert str(path) in str(e.value)
    assert workspace.store.sql("SELECT (SELECT count(*) FROM usage) + (SELECT count(*) FROM ingest_log)")[0][0] == 0

"""The otlp format: OpenTelemetry GenAI spans -> usage and outcomes (golden fixtures, tables of examples)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from unitcost.config import ConfigError, load_config
from unitcost.errors import IngestError
from unitcost.ingest.otlp import PROVIDER_IDS
from unitcost.workspace import Workspace, open_workspace

FIXTURES = Path(__file__).parent / "fixtures" / "otlp"
COLUMNS = (
    "request_id, trace_id, CAST(ts AS VARCHAR), tenant, feature, workflow, user_id, environment, region, release, "
    "prompt_version, provider, model, operation, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, "
    "reasoning_tokens, latency_ms, ttft_ms, status"
)
NAMES = [c.strip().removeprefix("CAST(").removesuffix(" AS VARCHAR)") for c in COLUMNS.split(",")]
N = None

# fmt: off
#: file -> the usage rows it lands (request_id first), in time order; one table of examples per convention family
EXPECTED_USAGE: dict[str, list[tuple[Any, ...]]] = {
    # current GenAI conventions (protobuf): cache read/creation and reasoning tokens, dimensions from the root span
    "current.binpb": [
        ("b7ad6b7169203331", "4bf92f3577b34da6a3ce929d0e0e4736", "2026-10-01 10:00:00.05", "acme", "support-bot", N,
         "u-42", "production", "eu-west-1", "2.3.1", "answer-v7", "openai", "text-embedding-3-small", "embeddings",
         64, N, N, N, N, 40.0, N, "ok"),
        ("53995c3f42cd8ad8", "4bf92f3577b34da6a3ce929d0e0e4736", "2026-10-01 10:00:00.1", "acme", "support-bot", N,
         "u-42", "production", "eu-west-1", "2.3.1", "answer-v7", "openai", "gpt-4o-2024-08-06", "chat",
         1200, 1024, N, 150, N, 1500.0, 420.0, "ok"),
        ("a3ce929d0e0e4736", "4bf92f3577b34da6a3ce929d0e0e4736", "2026-10-01 10:00:01.7", "acme", "support-bot", N,
         "u-42", "production", "eu-west-1", "2.3.1", "answer-v7", "anthropic", "claude-sonnet-4-5-20250929", "chat",
         3100, 2048, 1000, 420, 300, 2100.0, N, "ok"),
        ("1000000000000002", "5b8efff798038103d269b633813fc60c", "2026-10-01 10:00:05.1", "globex", N, N,
         N, "production", "eu-west-1", "2.3.1", N, "openai", "gpt-4o-mini", "chat",
         500, N, N, 80, N, 700.0, N, "error"),
        ("2000000000000001", "0af7651916cd43dd8448eb211c80319c", "2026-10-01 10:00:07", "initech", N, N,
         N, "production", "eu-west-1", "2.3.1", N, "google", "gemini-2.5-flash", "invoke_agent",
         2000, N, N, 600, N, 2500.0, N, "ok"),
    ],
    # OpenLLMetry (gen_ai.system, prompt/completion tokens, total only) and OpenLIT (Anthropic input w/o cache)
    "openllmetry.json": [
        ("4000000000000002", "6e0c63257de34c92bf9efcd03927272e", "2026-10-01 10:00:20.1", "umbrella", N,
         "support_flow", N, N, N, "0.9.0", N, "openai", "gpt-4o-mini-2024-07-18", "chat",
         900, 512, N, 120, N, 1200.0, N, "ok"),
        ("4000000000000003", "6e0c63257de34c92bf9efcd03927272e", "2026-10-01 10:00:21.4", "umbrella", N,
         "support_flow", N, N, N, "0.9.0", N, "anthropic", "claude-3-5-haiku-20241022", "chat",
         200, N, N, 100, N, 900.0, N, "ok"),
        ("5000000000000001", "7a085853722dc6d2e2e9b5a0c4c1f8a1", "2026-10-01 10:00:30", N, N, N,
         N, "staging", N, "0.9.0", N, "anthropic", "claude-sonnet-4-5", "chat",
         3100, 2048, 1000, 400, N, 2000.0, 800.0, "ok"),
        ("6000000000000001", "8b1e2c3d4e5f60718293a4b5c6d7e8f9", "2026-10-01 10:00:40", N, N, N,
         N, N, N, "0.9.0", N, "aws", "anthropic.claude-3-haiku-20240307-v1:0", "chat",
         700, N, N, 60, N, 800.0, N, "ok"),
    ],
    # the Collector's file exporter (JSON lines, gzipped): the root span with the tenant comes on a later line
    "collector.jsonl.gz": [
        ("7000000000000002", "9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f", "2026-10-01 10:00:50.1", "hooli", N, "escalation",
         N, "production", "eu-west-1", "2.3.1", N, "azure", "gpt-4o", "chat",
         400, N, N, 40, N, 800.0, N, "ok"),
    ],
}
#: file -> (usage read, landed, quarantined, ignored), (outcomes landed, ignored)
EXPECTED_COUNTS = {
    "current.binpb": ((7, 5, 2, 3), (1, 9)),
    "openllmetry.json": ((4, 4, 0, 1), (0, 5)),
    "collector.jsonl.gz": ((1, 1, 0, 1), (1, 1)),
}
EXPECTED_OUTCOMES = {
    "current.binpb": [("4bf92f3577b34da6a3ce929d0e0e4736", "2026-10-01 10:00:04", "acme", "support-bot", N, "success")],
    "openllmetry.json": [],
    "collector.jsonl.gz": [("9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f", "2026-10-01 10:00:51", "hooli", N, "escalation",
                            "escalated")],
}
# fmt: on


def usage_rows(ws: Workspace) -> list[tuple[Any, ...]]:
    return ws.store.sql(f"SELECT {COLUMNS} FROM usage ORDER BY ts")


@pytest.mark.parametrize("name", sorted(EXPECTED_USAGE))
def test_fixture_lands_as_canonical_rows(workspace: Workspace, name: str) -> None:
    usage, outcomes = workspace.ingest("otlp", [FIXTURES / name])
    got = usage_rows(workspace)
    assert [dict(zip(NAMES, r, strict=True)) for r in got] == [
        dict(zip(NAMES, r, strict=True)) for r in EXPECTED_USAGE[name]
    ]
    counts = (usage.rows_read, usage.rows_landed, usage.rows_quarantined, usage.rows_ignored)
    assert (counts, (outcomes.rows_landed, outcomes.rows_ignored)) == EXPECTED_COUNTS[name]
    stored = workspace.store.sql(
        "SELECT trace_id, CAST(ts AS VARCHAR), tenant, feature, workflow, outcome FROM outcomes ORDER BY trace_id"
    )
    assert stored == EXPECTED_OUTCOMES[name]


def test_attributes_keep_the_rest_but_never_message_content(workspace: Workspace) -> None:
    workspace.ingest("otlp", [FIXTURES / "current.binpb"])
    [(attrs,)] = workspace.store.sql("SELECT attributes FROM usage WHERE request_id = '53995c3f42cd8ad8'")
    assert json.loads(attrs) == {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.conversation.id": "conv_5j66UpCpwteGg4YSxUnt7lPY",
        "gen_ai.response.id": "chatcmpl-123",
        "gen_ai.response.finish_reasons": ["stop"],
        "server.address": "api.openai.com",
        "server.port": 443,
        "service.name": "support-bot",
        "otel.scope.name": "opentelemetry.instrumentation.openai_v2",
    }  # gen_ai.input.messages is not stored
    workspace.ingest("otlp", [FIXTURES / "openllmetry.json"])
    [(attrs,)] = workspace.store.sql("SELECT attributes FROM usage WHERE request_id = '4000000000000002'")
    assert not [k for k in json.loads(attrs) if k.startswith("gen_ai.prompt")]


def test_bad_spans_are_quarantined_with_record_field_reason(workspace: Workspace) -> None:
    workspace.ingest("otlp", [FIXTURES / "current.binpb"])
    got = workspace.store.sql("SELECT record, field, reason, source_file, raw FROM quarantine ORDER BY record")
    assert [(r[0], r[1]) for r in got] == [(9, "output_tokens"), (10, "cache_read_tokens")]
    assert "cannot be negative" in got[0][2]
    assert "exceed input_tokens" in got[1][2]
    assert got[0][3] == str(FIXTURES / "current.binpb")
    assert json.loads(got[0][4])["span_id"] == "3000000000000001"  # the span as staged is kept


def test_reingest_never_double_counts(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ingest("otlp", [FIXTURES / "current.binpb"])
    again_usage, again_outcomes = workspace.ingest("otlp", [FIXTURES / "current.binpb"])
    assert (again_usage.rows_landed, again_usage.duplicates_skipped) == (0, 5)
    assert again_outcomes.rows_landed == 0
    # the same spans through another file (framed as the Collector writes protobuf) are still the same spans
    data = (FIXTURES / "current.binpb").read_bytes()
    framed = tmp_path / "collector.binpb"
    framed.write_bytes(len(data).to_bytes(4, "big") + data)
    [other, _] = workspace.ingest("otlp", [framed])
    assert (other.rows_read, other.rows_landed, other.duplicates_skipped) == (7, 0, 5)
    assert workspace.store.sql("SELECT count(*) FROM usage")[0][0] == 5
    assert workspace.quarantine_count() == 4  # the same bad spans, once per file


def test_collector_protobuf_frames_are_one_export(workspace: Workspace, tmp_path: Path) -> None:
    """The Collector's file exporter (format: proto) writes each request after its 4-byte big-endian length."""
    data = (FIXTURES / "current.binpb").read_bytes()
    framed = tmp_path / "frames.binpb"
    framed.write_bytes(b"".join(len(part).to_bytes(4, "big") + part for part in (data, data)))
    [usage, _] = workspace.ingest("otlp", [framed])
    assert (usage.rows_read, usage.rows_landed, usage.duplicates_skipped) == (14, 5, 5)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def corrupt_attribute(tmp_path: Path) -> Path:
    from unitcost.ingest.otlp_wire import LeanTraces

    traces = LeanTraces()
    span = traces.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    span.attributes.append(b"\x0a\x05gen_ai")  # a KeyValue cut short
    return write(tmp_path / "corrupt.binpb", traces.SerializeToString())


def truncated(tmp_path: Path) -> Path:
    data = (FIXTURES / "current.binpb").read_bytes()
    return write(tmp_path / "truncated.binpb", data[: len(data) * 2 // 3])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (truncated, "not an OTLP protobuf trace export"),
        (lambda p: write(p / "usage.pb", b"ts,request_id\n2026-10-01,r1\n"), "not an OTLP protobuf trace export"),
        (lambda p: write(p / "other.json", b'{"data": [1, 2]}'), "no resourceSpans"),
        (lambda p: write(p / "broken.json", b'{"resourceSpans": ['), "not valid JSON"),
        (lambda p: write(p / "bad.json.gz", b"not gzip at all"), "not a valid gzip file"),
        (
            lambda p: write(p / "ids.json", b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}'),
            "not a hex-encoded id",
        ),
        (lambda p: write(p / "spans.csv", b"a,b\n"), "unknown file extension"),
        (corrupt_attribute, "record 1: span attribute cannot be decoded"),
    ],
    ids=[
        "truncated",
        "csv-as-pb",
        "json-not-otlp",
        "broken-json",
        "bad-gzip",
        "non-hex-id",
        "wrong-extension",
        "attribute",
    ],
)
def test_unreadable_files_are_clear_errors_and_write_nothing(
    workspace: Workspace, tmp_path: Path, make, message
) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(IngestError) as err:
        workspace.ingest("otlp", [path])
    assert str(path) in str(err.value) and message in str(err.value)
    assert workspace.store.sql("SELECT (SELECT count(*) FROM usage) + (SELECT count(*) FROM ingest_log)")[0][0] == 0


def test_strict_mode_stops_at_the_first_bad_span(workspace: Workspace) -> None:
    with pytest.raises(IngestError, match=r"record 9, field 'output_tokens'"):
        workspace.ingest("otlp", [FIXTURES / "current.binpb"], strict=True)
    assert workspace.store.sql("SELECT count(*) FROM usage")[0][0] == 0


def otlp_json(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> bytes:
    """A small OTLP/JSON export: spans given as (trace, span, parent, start second, attributes)."""

    def attrs(d: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
            for k, v in d.items()
        ]

    t0 = 1_790_848_800_000_000_000
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": attrs(resource or {"service.name": "svc"})},
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": s["trace"],
                                    "spanId": s["span"],
                                    "parentSpanId": s.get("parent", ""),
                                    "name": "span",
                                    "kind": 3,
                                    "startTimeUnixNano": str(t0 + s.get("start", 0) * 10**9),
                                    "endTimeUnixNano": str(t0 + s.get("start", 0) * 10**9 + 10**9),
                                    "attributes": attrs(s["attrs"]),
                                }
                                for s in spans
                            ]
                        }
                    ],
                }
            ]
        }
    ).encode()


TRACE = "11112222333344445555666677778888"
CALL = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10}


def test_dimensions_come_from_the_configured_attributes(tmp_path: Path) -> None:
    (tmp_path / "unitcost.yaml").write_text(
        "dimensions:\n"
        "  tenant: [customer.id, tenant.id]\n"
        "  feature: [product.area, service.name]\n"
        "  user_id: [session.user]\n"
        "  outcome: [ticket.status]\n"
    )
    spans = [
        # the root span names the customer by the first configured name, the call by the second: the first wins
        {"trace": TRACE, "span": "0000000000000001", "attrs": {"customer.id": "c-1", "ticket.status": "success"}},
        {
            "trace": TRACE,
            "span": "0000000000000002",
            "parent": "0000000000000001",
            "start": 1,
            "attrs": {**CALL, "tenant.id": "ignored", "session.user": "u-9"},
        },
        # another trace: no configured tenant anywhere; the feature falls back to the resource's service.name
        {"trace": "9" * 32, "span": "0000000000000003", "attrs": {**CALL, "product.area": "search"}},
        {"trace": "8" * 32, "span": "0000000000000004", "attrs": CALL},
    ]
    path = write(tmp_path / "spans.json", otlp_json(spans, {"service.name": "helpdesk"}))
    with open_workspace(tmp_path / "w.duckdb", load_config(tmp_path / "unitcost.yaml")) as ws:
        ws.ingest("otlp", [path])
        got = ws.store.sql("SELECT request_id, tenant, feature, user_id FROM usage ORDER BY request_id")
        outcomes = ws.store.sql("SELECT trace_id, outcome FROM outcomes")
    assert got == [
        ("0000000000000002", "c-1", "helpdesk", "u-9"),
        ("0000000000000003", None, "search", None),
        ("0000000000000004", None, "helpdesk", None),
    ]
    assert outcomes == [(TRACE, "success")]


def test_dimension_config_is_validated(tmp_path: Path) -> None:
    (tmp_path / "unitcost.yaml").write_text("dimensions:\n  tenant: ['']\n  tennant: [x]\n")
    with pytest.raises(ConfigError, match=r"dimensions\.tenant.*must not be empty.*dimensions\.tennant"):
        load_config(tmp_path / "unitcost.yaml")


def test_root_span_in_a_later_file_fills_the_stored_calls(workspace: Workspace, tmp_path: Path) -> None:
    """Spans are exported as they end: the model call often arrives before the root span with the tenant."""
    call = [{"trace": TRACE, "span": "0000000000000002", "parent": "0000000000000001", "start": 1, "attrs": CALL}]
    root = [{"trace": TRACE, "span": "0000000000000001", "attrs": {"tenant.id": "acme", "outcome": "failure"}}]
    workspace.ingest("otlp", [write(tmp_path / "first.json", otlp_json(call))])
    assert workspace.store.sql("SELECT tenant FROM usage") == [(None,)]
    workspace.ingest("otlp", [write(tmp_path / "later.json", otlp_json(root))])
    assert workspace.store.sql("SELECT tenant FROM usage") == [("acme",)]
    assert workspace.store.sql("SELECT tenant, outcome FROM outcomes") == [("acme", "failure")]


def test_a_later_file_that_fails_leaves_the_stored_calls_as_they_were(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filling stored rows from a later file's spans is part of that file's transaction: no half-ingested file."""
    import unitcost.ingest.base as base

    call = [{"trace": TRACE, "span": "0000000000000002", "parent": "0000000000000001", "start": 1, "attrs": CALL}]
    root = [{"trace": TRACE, "span": "0000000000000001", "attrs": {"tenant.id": "acme", "outcome": "failure"}}]
    workspace.ingest("otlp", [write(tmp_path / "first.json", otlp_json(call))])

    def broken_store(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(base, "_store", broken_store)
    with pytest.raises(OSError, match="disk full"):
        workspace.ingest("otlp", [write(tmp_path / "later.json", otlp_json(root))])
    assert workspace.store.sql("SELECT tenant FROM usage") == [(None,)]  # the fill-in was rolled back with the file
    monkeypatch.undo()
    workspace.ingest("otlp", [tmp_path / "later.json"])
    assert workspace.store.sql("SELECT tenant FROM usage") == [("acme",)]


def test_provider_names_map_to_genai_prices_ids() -> None:
    from genai_prices import data_snapshot

    ids = {p.id for p in data_snapshot.get_snapshot().providers}
    assert sorted(set(PROVIDER_IDS.values()) - ids) == []
    assert {"openai", "anthropic", "cohere", "groq", "deepseek", "perplexity"} <= ids  # passed through as named


def test_report_prices_the_spans(workspace: Workspace) -> None:
    workspace.ingest("otlp", [FIXTURES / "current.binpb"])
    report = workspace.report(by=["tenant"])
    assert (report.requests, report.unpriced_requests) == (5, 0)
    assert report.input_tokens == 64 + 1200 + 3100 + 500 + 2000
    assert report.cache_read_tokens == 1024 + 2048
    assert report.total_cost_usd > 0
    assert {row.key for row in report.breakdown["tenant"]} == {"acme", "globex", "initech"}


def test_json_lines_in_a_json_file_and_gzip(workspace: Workspace, tmp_path: Path) -> None:
    """The Collector writes JSON lines even when the file is called .json."""
    text = gzip.decompress((FIXTURES / "collector.jsonl.gz").read_bytes())
    [usage, outcomes] = workspace.ingest("otlp", [write(tmp_path / "export.json", text)])
    assert (usage.rows_landed, outcomes.rows_landed) == (1, 1)


def test_docs_list_every_mapped_attribute_and_default() -> None:
    from unitcost.config import DimensionsConfig
    from unitcost.ingest.otlp import GEN_AI_ATTRIBUTES

    doc = (Path(__file__).parents[1] / "docs" / "formats" / "otlp.md").read_text()
    names = [n for names in GEN_AI_ATTRIBUTES.values() for n in names]
    names += [n for names in DimensionsConfig().model_dump().values() for n in names]
    assert [n for n in names if f"`{n}`" not in doc] == []
    assert [v for v in PROVIDER_IDS if f"`{v}`" not in doc] == []

"""`unitcost serve`: the OTLP/HTTP receiver, tested for real on 127.0.0.1 with real clients."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from conftest import write_csv
from unitcost.config import Config
from unitcost.server import ServerSettings, create_app
from unitcost.store import Store, open_store
from unitcost.workspace import open_workspace

FIXTURES = Path(__file__).parent / "fixtures" / "otlp"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
T0 = 1_790_848_800_000_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@contextmanager
def receiver(db: Path, **settings: Any) -> Iterator[tuple[str, Store]]:
    """uvicorn in a thread on a free loopback port; the store is readable once the block exits."""
    store = open_store(db)
    port = free_port()
    app = create_app(store, Config(), ServerSettings(**settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the server to start")
        yield f"http://127.0.0.1:{port}", store
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive()


def health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/healthz", timeout=10).json()  # type: ignore[no-any-return]


def request_with(spans: list[tuple[str, str, dict[str, Any]]]) -> ExportTraceServiceRequest:
    """An export of model-call spans: (trace id hex, span id hex, attributes)."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=AnyValue(string_value="svc"))
    ss = rs.scope_spans.add()
    for i, (trace, span_id, attrs) in enumerate(spans):
        s = ss.spans.add(trace_id=bytes.fromhex(trace), span_id=bytes.fromhex(span_id), name="chat", kind=3)
        s.start_time_unix_nano = T0 + i * 1_000_000
        s.end_time_unix_nano = s.start_time_unix_nano + 500_000_000
        for k, v in attrs.items():
            value = AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v)
            s.attributes.append(KeyValue(key=k, value=value))
    return req


CALL = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 100}


def batch(n: int, first: int) -> tuple[bytes, list[str]]:
    """A protobuf body of ``n`` model calls with span ids first..first+n-1."""
    ids = [f"{first + i:016x}" for i in range(n)]
    body = request_with(
        [(f"{(first + i) // 4:032x}", sid, {**CALL, "gen_ai.usage.output_tokens": 7}) for i, sid in enumerate(ids)]
    )
    return body.SerializeToString(), ids


# ---------------------------------------------------------------------------------------- a real OTel SDK client


def test_sdk_exporter_spans_land_with_tokens_model_dimensions_and_cost(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    calls = [
        ("openai", "gpt-4o-2024-08-06", 1200, 1024, 0, 150, 0),
        ("anthropic", "claude-sonnet-4-5-20250929", 3100, 2048, 1000, 420, 300),
    ]
    with receiver(tmp_path / "w.duckdb") as (url, _):
        resource = Resource.create(
            {"service.name": "support-bot", "service.version": "2.3.1", "deployment.environment.name": "production"}
        )
        provider = TracerProvider(resource=resource)
        # one request per span, in the order spans end: the calls reach the server before their root span
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=10)))
        tracer = provider.get_tracer("unitcost.tests")
        with tracer.start_as_current_span("answer ticket", attributes={"tenant.id": "acme"}) as root:
            for prov, model, inp, cached, written, out, reasoning in calls:
                attrs = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": prov,
                    "gen_ai.request.model": model,
                    "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": inp,
                    "gen_ai.usage.cache_read.input_tokens": cached,
                    "gen_ai.usage.cache_creation.input_tokens": written,
                    "gen_ai.usage.output_tokens": out,
                    "gen_ai.usage.reasoning.output_tokens": reasoning,
                    "feature": "support-bot",
                }
                with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attrs):
                    pass
            root.set_attribute("outcome", "success")
        provider.shutdown()
        assert health(url)["requests_accepted"] == 3
    with open_workspace(tmp_path / "w.duckdb", Config()) as ws:
        rows = ws.store.sql(
            "SELECT provider, model, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, "
            "reasoning_tokens, tenant, feature, release, environment FROM usage ORDER BY ts"
        )
        assert rows == [(*c, "acme", "support-bot", "2.3.1", "production") for c in calls]
        assert ws.store.sql("SELECT outcome, tenant FROM outcomes") == [("success", "acme")]
        got = ws.report()
        ts = ws.store.sql("SELECT CAST(ts AS VARCHAR) FROM usage ORDER BY ts")
    # the same calls as canonical usage rows cost the same
    canonical = [
        {"request_id": f"r{i}", "trace_id": "t", "ts": ts[i][0], "provider": p, "model": m, "input_tokens": a,
         "cache_read_tokens": b, "cache_write_tokens": c, "output_tokens": d, "reasoning_tokens": e, "status": "ok"}
        for i, (p, m, a, b, c, d, e) in enumerate(calls)
    ]  # fmt: skip
    with open_workspace(tmp_path / "reference.duckdb", Config()) as ref:
        ref.ingest("usage", [write_csv(tmp_path / "usage.csv", canonical)])
        expected = ref.report()
    assert (got.requests, got.unpriced_requests, got.successful_outcomes) == (2, 0, 1)
    assert got.total_cost_usd == pytest.approx(expected.total_cost_usd, abs=1e-9) and got.total_cost_usd > 0


# ---------------------------------------------------------------------------------------- OTLP/HTTP with httpx


def test_json_gzip_and_protobuf_requests(tmp_path: Path) -> None:
    doc = (FIXTURES / "openllmetry.json").read_bytes()
    with receiver(tmp_path / "w.duckdb") as (url, _), httpx.Client(base_url=url, timeout=10) as client:
        r = client.post("/v1/traces", content=doc, headers=JSON)
        assert (r.status_code, r.headers["content-type"], r.json()) == (200, "application/json", {})
        r = client.post("/v1/traces", content=gzip.compress(doc), headers={**JSON, "Content-Encoding": "gzip"})
        assert (r.status_code, r.json()) == (200, {})  # the same spans again: accepted, stored once
        body, _ = batch(3, 1)
        r = client.post("/v1/traces", content=gzip.compress(body), headers={**PROTOBUF, "Content-Encoding": "gzip"})
        assert (r.status_code, r.headers["content-type"]) == (200, "application/x-protobuf")
        assert not ExportTraceServiceResponse.FromString(r.content).HasField("partial_success")
        r = client.post("/v1/traces", content=b"", headers=PROTOBUF)  # an empty export succeeds
        assert r.status_code == 200
        h = health(url)
    assert (h["usage_rows_written"], h["spans_received"], h["queue_depth"]) == (4 + 3, 13, 0)


def test_partial_success_names_the_rejected_spans(tmp_path: Path) -> None:
    body = (FIXTURES / "current.binpb").read_bytes()
    with receiver(tmp_path / "w.duckdb") as (url, _), httpx.Client(base_url=url, timeout=10) as client:
        r = client.post("/v1/traces", content=body, headers=PROTOBUF)
        assert r.status_code == 200
        partial = ExportTraceServiceResponse.FromString(r.content).partial_success
        assert partial.rejected_spans == 2
        assert "span 9 of the request, output_tokens: token counts cannot be negative" in partial.error_message
        # the same spans from another client, as JSON: again rejected, answered in JSON
        from google.protobuf import json_format

        doc = json_format.MessageToDict(ExportTraceServiceRequest.FromString(body))
        for rs in doc["resourceSpans"]:
            for span in rs["scopeSpans"][0]["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    span[k] = base64.b64decode(span.get(k, "")).hex()
        r = client.post("/v1/traces", json=doc)
        assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedSpans"] == "2"
    with open_workspace(tmp_path / "w.duckdb", Config()) as ws:
        assert ws.store.sql("SELECT count(*) FROM usage")[0][0] == 5


@pytest.mark.parametrize(
    ("headers", "body", "status", "kind"),
    [
        (JSON, b'{"resourceSpans": [', 400, "bad_request"),
        (JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "nothex"}]}]}]}', 400, "bad_request"),
        ({**JSON, "Content-Encoding": "gzip"}, b"not gzip", 400, "bad_request"),
        ({"Content-Type": "text/plain"}, b"hello", 415, "unsupported_media_type"),
        ({**JSON, "Content-Encoding": "br"}, b"{}", 415, "unsupported_media_type"),
    ],
    ids=["truncated-json", "hex-ids", "not-gzip", "not-otlp", "brotli"],
)
def test_errors_have_one_json_shape(
    tmp_path: Path, headers: dict[str, str], body: bytes, status: int, kind: str
) -> None:
    with receiver(tmp_path / "w.duckdb") as (url, _):
        r = httpx.post(f"{url}/v1/traces", content=body, headers=headers, timeout=10)
        assert r.status_code == status and r.headers["content-type"] == "application/json"
        assert set(r.json()) == {"code", "error", "message"} and r.json()["error"] == kind
        r = httpx.get(f"{url}/v1/nothing", timeout=10)
        assert (r.status_code, r.json()["error"]) == (404, "not_found")
        r = httpx.get(f"{url}/v1/traces", timeout=10)
        assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")


def test_a_protobuf_client_gets_a_protobuf_status(tmp_path: Path) -> None:
    from unitcost.ingest.otlp_wire import LeanTraces

    traces = LeanTraces()
    span = traces.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    span.attributes.append(b"\x0a\x05gen_ai")  # well-formed message, but a span attribute cut short
    with receiver(tmp_path / "w.duckdb") as (url, _):
        r = httpx.post(f"{url}/v1/traces", content=b"\xff\xff not protobuf", headers=PROTOBUF, timeout=10)
        bad_attribute = httpx.post(f"{url}/v1/traces", content=traces.SerializeToString(), headers=PROTOBUF, timeout=10)
    assert (r.status_code, r.headers["content-type"]) == (400, "application/x-protobuf")
    assert r.content.startswith(b"\x08\x03\x12") and b"not an OTLP protobuf" in r.content  # google.rpc.Status
    assert bad_attribute.status_code == 400 and b"span attribute cannot be decoded" in bad_attribute.content


def test_body_limit_before_and_after_decompression(tmp_path: Path) -> None:
    limit = 64 << 10
    big, _ = batch(400, 1)
    assert len(big) > limit
    with receiver(tmp_path / "w.duckdb", max_body_bytes=limit) as (url, _), httpx.Client(base_url=url, timeout=10) as c:
        r = c.post("/v1/traces", content=big, headers=PROTOBUF)
        assert (r.status_code, r.headers["content-type"]) == (413, "application/x-protobuf")
        bomb = gzip.compress(b"{" + b" " * (limit * 4) + b"}")
        assert len(bomb) < limit
        r = c.post("/v1/traces", content=bomb, headers={**JSON, "Content-Encoding": "gzip"})
        assert (r.status_code, r.json()["error"]) == (413, "payload_too_large")
        small, _ = batch(10, 1)
        assert c.post("/v1/traces", content=small, headers=PROTOBUF).status_code == 200


def test_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    """The writer is held (a transaction open on the store); two requests fill the queue; the next is refused."""
    with receiver(tmp_path / "w.duckdb", queue_size=2) as (url, store), ThreadPoolExecutor(3) as pool:

        def send(first: int) -> int:
            body, _ = batch(5, first)
            return httpx.post(f"{url}/v1/traces", content=body, headers=PROTOBUF, timeout=30).status_code

        with store.transaction():
            taken = pool.submit(send, 100)
            wait_until(lambda: health(url)["in_flight_requests"] == 1, "the writer to take the first request")
            queued = [pool.submit(send, first) for first in (200, 300)]
            wait_until(lambda: health(url)["queue_depth"] == 2, "two queued requests")
            body, _ = batch(5, 400)
            refused = httpx.post(f"{url}/v1/traces", content=body, headers=PROTOBUF, timeout=10)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert not taken.done()
        assert [f.result(timeout=30) for f in (taken, *queued)] == [200, 200, 200]
        assert health(url)["requests_refused"] == 1
    assert store.sql("SELECT count(*) FROM usage")[0][0] == 15
    store.close()


def test_journal_left_by_a_crash_is_ingested_at_start(tmp_path: Path) -> None:
    journal = tmp_path / "w.duckdb.journal"
    journal.mkdir()
    body, ids = batch(20, 1)
    (journal / "000000000007.binpb").write_bytes(body)
    with receiver(tmp_path / "w.duckdb") as (url, store):
        assert health(url)["journal_replayed"] == 1
    assert sorted(r[0] for r in store.sql("SELECT request_id FROM usage")) == ids
    assert list(journal.glob("*.binpb")) == []
    store.close()


# ---------------------------------------------------------------------------------------- the CLI, as a process


@contextmanager
def cli_server(db: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`unitcost --db DB serve --port PORT` as a child process; stopped with SIGTERM if still running."""
    log = db.with_name(f"serve-{port}.log")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from unitcost.cli import main; main()",
                "--db",
                str(db),
                "serve",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def up() -> bool:
            assert proc.poll() is None, f"unitcost serve exited: {log.read_text()}"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, "unitcost serve to answer /healthz", 60)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def send_concurrently(url: str, bodies: list[tuple[bytes, list[str]]], stop: Callable[[], bool]) -> list[str]:
    """Send bodies from 4 threads until ``stop()``; return the span ids of every acknowledged (200) request."""
    acked: list[str] = []
    lock = threading.Lock()
    pending = list(bodies)

    def worker() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop():
                with lock:
                    if not pending:
                        return
                    body, ids = pending.pop(0)
                try:
                    r = client.post(f"{url}/v1/traces", content=body, headers=PROTOBUF)
                except httpx.TransportError:
                    continue  # the server went away mid-request: not acknowledged
                if r.status_code == 200:
                    with lock:
                        acked.extend(ids)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return acked


def stored_ids(db: Path) -> set[str]:
    with open_workspace(db, Config()) as ws:
        return {r[0] for r in ws.store.sql("SELECT request_id FROM usage")}


def test_kill_9_right_after_a_200_loses_no_acknowledged_span(tmp_path: Path) -> None:
    db, port = tmp_path / "w.duckdb", free_port()
    bodies = [batch(50, 1 + 50 * i) for i in range(40)]
    url = f"http://127.0.0.1:{port}"
    with cli_server(db, port) as proc, ThreadPoolExecutor(1) as pool:
        sending = pool.submit(send_concurrently, url, bodies, lambda: proc.poll() is not None)
        wait_until(lambda: health(url)["requests_accepted"] >= 10 or sending.done(), "10 acknowledgements")
        os.kill(proc.pid, signal.SIGKILL)  # with requests in flight, right after the last acknowledgements
        assert proc.wait(timeout=30) == -signal.SIGKILL
        acked = sending.result(timeout=120)
    assert len(acked) >= 500
    with cli_server(db, port):  # a restart replays whatever was journaled but not committed
        pass
    stored = stored_ids(db)
    print(f"acknowledged {len(acked)} spans, stored {len(stored)} of {50 * len(bodies)} sent")
    assert set(acked) <= stored


def test_sigterm_flushes_everything_accepted(tmp_path: Path) -> None:
    db, port = tmp_path / "w.duckdb", free_port()
    bodies = [batch(100, 1 + 100 * i) for i in range(20)]
    url = f"http://127.0.0.1:{port}"
    with cli_server(db, port) as proc, ThreadPoolExecutor(1) as pool:
        sending = pool.submit(send_concurrently, url, bodies, lambda: proc.poll() is not None)
        wait_until(lambda: health(url)["requests_accepted"] >= 3 or sending.done(), "a few acknowledgements")
        proc.send_signal(signal.SIGTERM)  # while requests are queued and in flight
        assert proc.wait(timeout=60) == 0
        acked = sending.result(timeout=120)
    assert acked and set(acked) <= stored_ids(db)
    assert list((tmp_path / "w.duckdb.journal").glob("*.binpb")) == []


def test_cli_serve_is_documented_in_its_help() -> None:
    from typer.testing import CliRunner

    from unitcost.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "/v1/traces" in result.output and "--queue-size" in result.output


def test_json_error_shape_example() -> None:
    from unitcost.server.errors import error_json

    assert json.loads(error_json(14, "unavailable", "queue full")) == {
        "code": 14,
        "error": "unavailable",
        "message": "queue full",
    }

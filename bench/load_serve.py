"""Load test: `unitcost serve` on 127.0.0.1, fed by a separate process as fast as it can.

Starts the receiver on a fresh workspace, then a sender process (threads with keep-alive
connections) posts OTLP protobuf requests of ``--batch`` GenAI spans, each span id unique,
for ``--seconds`` or until ``--spans`` are acknowledged. A 503 is retried after its
Retry-After. Then the receiver gets SIGTERM (it flushes and exits) and the workspace is
checked: stored spans == acknowledged spans.

    .venv/bin/python bench/load_serve.py [--seconds 20] [--spans 200000] [--batch 500] [--threads 4] [--queue-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

T0 = 1_790_848_800_000_000_000
SPAN_MARK, TRACE_MARK = b"\x5a\xa5\x5a\xa5", b"\xa5\x5a\xa5\x5a" * 3  # placeholders, patched per request


def template(batch: int) -> tuple[bytes, list[int], list[int]]:
    """One request of ``batch`` model-call spans, and where each span id and trace id sit in its bytes."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in (
        ("service.name", "support-bot"),
        ("service.version", "2.3.1"),
        ("deployment.environment.name", "prod"),
    ):
        rs.resource.attributes.append(KeyValue(key=k, value=AnyValue(string_value=v)))
    ss = rs.scope_spans.add()
    models = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]
    for i in range(batch):
        s = ss.spans.add(name="chat", kind=3)
        s.span_id = SPAN_MARK + i.to_bytes(4, "big")
        s.trace_id = TRACE_MARK + i.to_bytes(4, "big")
        s.start_time_unix_nano = T0 + i * 1_000_000
        s.end_time_unix_nano = s.start_time_unix_nano + 700_000_000
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": models[i % 3],
            "gen_ai.usage.input_tokens": 500 + i,
            "gen_ai.usage.output_tokens": 50 + i % 100,
            "gen_ai.usage.cache_read.input_tokens": 256,
            "gen_ai.response.id": f"chatcmpl-{i:08d}",
            "tenant.id": f"tenant-{i % 40}",
            "server.address": "api.openai.com",
        }
        for k, v in attrs.items():
            value = AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v)
            s.attributes.append(KeyValue(key=k, value=value))
    data = req.SerializeToString()
    spans = [data.find(SPAN_MARK + i.to_bytes(4, "big")) for i in range(batch)]
    traces = [data.find(TRACE_MARK + i.to_bytes(4, "big")) for i in range(batch)]
    assert -1 not in spans and -1 not in traces
    return data, spans, traces


def sender(url: str, seconds: float, max_spans: int, batch: int, threads: int) -> dict[str, Any]:
    """Post requests from ``threads`` threads; return counts (runs in its own process)."""
    import httpx
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    data, span_at, trace_at = template(batch)
    lock = threading.Lock()
    state = {"next": 0, "acked": 0, "refused": 0, "errors": 0}
    deadline = time.monotonic() + seconds

    def body(n: int) -> bytes:
        out = bytearray(data)
        for i in range(batch):
            sid = (1 + n * batch + i).to_bytes(8, "big")  # an all-zero span id is invalid
            out[span_at[i] : span_at[i] + 8] = sid
            out[trace_at[i] : trace_at[i] + 16] = b"\x01" * 8 + sid
        return bytes(out)

    def work() -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    if (state["next"]) * batch >= max_spans:
                        return
                    n = state["next"]
                    state["next"] += 1
                payload = body(n)
                while time.monotonic() < deadline:
                    try:
                        r = client.post(url, content=payload, headers={"Content-Type": "application/x-protobuf"})
                    except httpx.TransportError:
                        with lock:
                            state["errors"] += 1
                        break
                    if r.status_code == 503:
                        with lock:
                            state["refused"] += 1
                        time.sleep(float(r.headers.get("retry-after", "1")))
                        continue
                    if r.status_code == 200:
                        rejected = ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans
                        with lock:
                            state["acked"] += batch - rejected
                    else:
                        with lock:
                            state["errors"] += 1
                    break

    started = time.monotonic()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {**state, "seconds": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--queue-size", type=int, default=64, help="the server's --queue-size")
    parser.add_argument("--sender", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender:
        print(json.dumps(sender(args.sender, args.seconds, args.spans, args.batch, args.threads)))
        return

    import httpx

    workdir = Path(tempfile.mkdtemp(prefix="load-serve-"))
    db = workdir / "w.duckdb"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (workdir / "serve.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from unitcost.cli import main; main()",
            "--db",
            str(db),
            "serve",
            "--port",
            str(port),
            "--queue-size",
            str(args.queue_size),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit(f"unitcost serve did not start; see {workdir / 'serve.log'}")
        time.sleep(0.1)
    print(f"unitcost serve on {url}, workspace {db}")
    print(
        f"sender: {args.threads} threads, {args.batch} spans per request, {args.seconds:g} s or {args.spans:,} spans; "
        f"server queue {args.queue_size} requests"
    )
    out = subprocess.run(
        [sys.executable, __file__, "--sender", f"{url}/v1/traces", "--seconds", str(args.seconds),
         "--spans", str(args.spans), "--batch", str(args.batch), "--threads", str(args.threads)],
        capture_output=True, text=True, check=True, timeout=args.seconds + 300,
    )  # fmt: skip
    result = json.loads(out.stdout)
    health = httpx.get(f"{url}/healthz", timeout=10).json()
    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=120)
    log.close()

    from unitcost.workspace import open_workspace

    with open_workspace(db) as ws:
        stored = ws.store.sql("SELECT count(*) FROM usage")[0][0]
    print(f"acknowledged spans     {result['acked']:>10,}   in {result['seconds']:.1f} s")
    print(f"sustained              {result['acked'] / result['seconds']:>10,.0f} spans/s")
    print(f"503 + Retry-After      {result['refused']:>10,}   (retried)")
    print(f"transport/other errors {result['errors']:>10,}")
    print(f"batches written        {health['batches']:>10,}   (requests {health['requests_accepted']:,})")
    print(f"stored spans           {stored:>10,}   stored == acknowledged: {stored == result['acked']}")
    print(f"server exit status     {code:>10}")
    if not os.environ.get("KEEP_WORKSPACE"):
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

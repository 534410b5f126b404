"""Benchmark: `unitcost ingest otlp` parse + store of an OTLP protobuf file, against a bare DuckDB read.

Generates N GenAI spans (default 200,000: traces of one root span with the tenant and the outcome,
and three model calls with 12-14 attributes each, unique response ids) into an OTLP protobuf file,
and the same spans as Parquet (one column per attribute). Times, in the same process:

* unitcost: parse, extract, validate, quarantine, dedupe and insert into a fresh workspace;
* reference: ``CREATE TABLE AS SELECT * FROM read_parquet(...)`` of the equivalent Parquet file.

    .venv/bin/python bench/bench_otlp.py [--spans 200000] [--repeat 3]

Files are cached in bench/out/. Figures are best of ``--repeat``, wall clock and process CPU.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from unitcost.config import Config
from unitcost.ingest.otlp import SpanExtractor
from unitcost.ingest.otlp_wire import read_export
from unitcost.workspace import open_workspace

OUT = Path(__file__).parent / "out"
T0 = 1_790_848_800_000_000_000
MODELS = [("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"), ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
          ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929")]  # fmt: skip


def _kv(key: str, v: Any) -> KeyValue:
    if isinstance(v, int):
        return KeyValue(key=key, value=AnyValue(int_value=v))
    if isinstance(v, float):
        return KeyValue(key=key, value=AnyValue(double_value=v))
    return KeyValue(key=key, value=AnyValue(string_value=v))


def spans(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """N spans as plain dicts: trace_id, span_id, parent, name, kind, start, end, attributes."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    trace = 0
    while len(out) < n:
        trace += 1
        tid, root = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"
        start = T0 + trace * 50_000_000
        root_attrs: dict[str, Any] = {"tenant.id": f"tenant-{rng.randrange(40)}", "feature": "support-bot"}
        if rng.random() < 0.7:
            root_attrs["outcome"] = rng.choice(["success", "success", "failure", "escalated"])
        out.append(dict(trace_id=tid, span_id=root, parent="", name="POST /answer", kind=2, start=start,
                        end=start + 3_000_000_000, attributes=root_attrs))  # fmt: skip
        for call in range(3):
            if len(out) >= n:
                break
            provider, model, response_model = rng.choice(MODELS)
            inp = rng.randrange(200, 8000)
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "gen_ai.response.model": response_model,
                "gen_ai.usage.input_tokens": inp,
                "gen_ai.usage.output_tokens": rng.randrange(20, 800),
                "gen_ai.response.id": f"resp_{rng.getrandbits(64):016x}",
                "gen_ai.conversation.id": f"conv_{trace}",
                "gen_ai.response.finish_reasons": "stop",
                "server.address": "api.openai.com" if provider == "openai" else "api.anthropic.com",
                "server.port": 443,
                "gen_ai.request.temperature": 0.2,
            }
            if rng.random() < 0.5:
                attrs["gen_ai.usage.cache_read.input_tokens"] = inp // 2
            if rng.random() < 0.2:
                attrs["gen_ai.response.time_to_first_chunk"] = round(rng.uniform(0.1, 2.0), 3)
            s = start + (call + 1) * 500_000_000
            end = s + rng.randrange(200, 3000) * 1_000_000
            out.append(dict(trace_id=tid, span_id=f"{rng.getrandbits(64):016x}", parent=root, name=f"chat {model}",
                            kind=3, start=s, end=end, attributes=attrs))  # fmt: skip
    return out


def write_protobuf(data: list[dict[str, Any]], path: Path) -> None:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    resource = {"service.name": "support-bot", "service.version": "2.3.1", "deployment.environment.name": "production"}
    for k, v in {**resource, "telemetry.sdk.name": "opentelemetry"}.items():
        rs.resource.attributes.append(_kv(k, v))
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.openai_v2"
    for d in data:
        s = ss.spans.add(
            trace_id=bytes.fromhex(d["trace_id"]),
            span_id=bytes.fromhex(d["span_id"]),
            parent_span_id=bytes.fromhex(d["parent"]),
            name=d["name"],
            kind=d["kind"],
            start_time_unix_nano=d["start"],
            end_time_unix_nano=d["end"],
        )
        s.attributes.extend(_kv(k, v) for k, v in d["attributes"].items())
    path.write_bytes(req.SerializeToString())


def write_parquet(data: list[dict[str, Any]], path: Path) -> None:
    keys = sorted({k for d in data for k in d["attributes"]})
    cols: dict[str, list[Any]] = {c: [d[c] for d in data] for c in ("trace_id", "span_id", "parent", "name", "kind")}
    cols["start"] = [d["start"] // 1000 for d in data]
    cols["end"] = [d["end"] // 1000 for d in data]
    for k in keys:
        cols[k] = [d["attributes"].get(k) for d in data]
    table = pa.table(cols)
    table = table.set_column(table.schema.get_field_index("start"), "start", table["start"].cast(pa.timestamp("us")))
    table = table.set_column(table.schema.get_field_index("end"), "end", table["end"].cast(pa.timestamp("us")))
    pq.write_table(table, path)


def best(fn: Any, repeat: int) -> tuple[float, float]:
    """Best (wall, cpu) seconds of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    pb, parquet = OUT / f"spans-{args.spans}.binpb", OUT / f"spans-{args.spans}.parquet"
    if not pb.exists() or not parquet.exists():
        print(f"generating {args.spans:,} spans -> {pb.name}, {parquet.name} (cached in bench/out/)")
        data = spans(args.spans)
        write_protobuf(data, pb)
        write_parquet(data, parquet)
    print(f"{args.spans:,} spans, {pb.stat().st_size / 1e6:.1f} MB of OTLP protobuf")

    tmp = Path(tempfile.mkdtemp(prefix="bench-otlp-"))
    counter = iter(range(10**6))

    def unitcost_ingest() -> None:
        with open_workspace(tmp / f"w{next(counter)}.duckdb", Config()) as ws:
            results = ws.ingest("otlp", [pb])
        assert results[0].rows_landed == results[0].rows_read > 0

    def bare_duckdb() -> None:
        con = duckdb.connect(str(tmp / f"ref{next(counter)}.duckdb"))
        con.execute(f"CREATE TABLE spans AS SELECT * FROM read_parquet('{parquet}')")
        con.close()

    extractor = SpanExtractor(Config().dimensions)
    traces = read_export(pb, "protobuf")
    parse = best(lambda: read_export(pb, "protobuf"), args.repeat)
    extract = best(lambda: extractor.table(traces, str(pb)), args.repeat)
    ours = best(unitcost_ingest, args.repeat)
    reference = best(bare_duckdb, args.repeat)
    n = args.spans
    print(f"  parse (protobuf, lean view)      {parse[0]:6.2f} s wall  {n / parse[0]:>10,.0f} spans/s")
    print(f"  extract (spans -> Arrow)         {extract[0]:6.2f} s wall  {n / extract[0]:>10,.0f} spans/s")
    print(
        f"unitcost ingest otlp (parse+store) {ours[0]:6.2f} s wall  {n / ours[0]:>10,.0f} spans/s   "
        f"({ours[1]:.2f} s CPU)"
    )
    print(
        f"bare DuckDB CTAS from Parquet      {reference[0]:6.2f} s wall  {n / reference[0]:>10,.0f} spans/s   "
        f"({reference[1]:.2f} s CPU)"
    )
    print(f"ratio unitcost / bare DuckDB: {ours[0] / reference[0]:.1f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Reading OpenTelemetry trace exports (OTLP) into a lean ``TracesData``: protobuf and OTLP/JSON, gzip too.

Protobuf is one ``TracesData`` / ``ExportTraceServiceRequest`` or the Collector file exporter's length-prefixed
stream; OTLP/JSON is one document or one per line. Both end as the same lean message, a view of
opentelemetry-proto's ``trace.proto`` (built from its descriptor at import, so field numbers cannot drift) in
which attributes, resource, scope and status stay raw bytes: :mod:`unitcost.ingest.otlp` decodes each distinct
raw attribute once.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2

from unitcost.errors import IngestError


def _lean_traces_class() -> type[Message]:
    """``TracesData`` with the same field numbers, but attributes, resource, scope and status left as raw bytes."""
    fdp = descriptor_pb2.FileDescriptorProto()
    trace_pb2.DESCRIPTOR.CopyToProto(fdp)
    old, new = f".{fdp.package}.", ".unitcost.otlp_lean."
    fdp.name, fdp.package = "unitcost/otlp_lean_trace.proto", "unitcost.otlp_lean"
    del fdp.dependency[:]
    fdp.ClearField("options")
    raw = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES

    def lean(messages: Any) -> None:
        for m in messages:
            for f in m.field:
                if f.type_name.startswith(old) and not (m.name == "Span" and f.name in ("events", "links", "status")):
                    f.type_name = new + f.type_name[len(old) :]
                elif f.type_name:  # messages of other files, and span events/links/status: keep the bytes
                    f.type = raw if f.type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE else f.type
                    f.ClearField("type_name")
                    if f.type != raw:  # an enum of another file: its varint, as an int
                        f.type = descriptor_pb2.FieldDescriptorProto.TYPE_INT32
            lean(m.nested_type)

    lean(fdp.message_type)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("unitcost.otlp_lean.TracesData"))


LeanTraces = _lean_traces_class()


def _unframe(data: bytes) -> bytes | None:
    """Join the Collector file exporter's frames (4-byte big-endian length + message); None if not framed."""
    frames, pos, n = [], 0, len(data)
    while pos < n:
        if pos + 4 > n:
            return None
        size = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
        if pos + size > n:
            return None
        frames.append(data[pos : pos + size])
        pos += size
    return b"".join(frames)  # concatenated messages merge: their resource_spans are appended in order


def parse_protobuf(data: bytes, source: str) -> Message:
    """Return the lean ``TracesData`` of an OTLP protobuf export (plain, or length-prefixed frames)."""
    candidates = [data, _unframe(data)] if data[:1] == b"\n" else [_unframe(data), data]
    problem = "truncated or not protobuf"
    for candidate in candidates:
        if candidate is None:
            continue
        try:
            traces = LeanTraces.FromString(candidate)
        except DecodeError as e:
            problem = str(e).replace("unitcost.otlp_lean.", "opentelemetry.proto.trace.v1.") or problem
            continue
        if candidate and not len(traces.resource_spans):
            problem = "no resourceSpans in it"
            continue
        return traces
    raise IngestError(
        f"not an OTLP protobuf trace export (TracesData / ExportTraceServiceRequest): {problem}", path=source
    )


def _hex_ids(doc: Any, source: str) -> None:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64: convert in place."""

    def fix(obj: dict[str, Any], keys: tuple[str, ...]) -> None:
        for k in keys:
            v = obj.get(k)
            if isinstance(v, str) and v:
                try:
                    obj[k] = base64.b64encode(bytes.fromhex(v)).decode()
                except ValueError:
                    raise IngestError(f"{k} {v!r} is not a hex-encoded id (OTLP/JSON)", path=source) from None

    ids = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
    for rs in doc.get("resourceSpans") or doc.get("resource_spans") or ():
        for ss in (rs.get("scopeSpans") or rs.get("scope_spans") or ()) if isinstance(rs, dict) else ():
            for span in (ss.get("spans") or ()) if isinstance(ss, dict) else ():
                if isinstance(span, dict):
                    fix(span, ids)
                    for link in span.get("links") or ():
                        if isinstance(link, dict):
                            fix(link, ids)


def json_to_protobuf(doc: Any, source: str, *, require_spans: bool = True) -> bytes:
    """Return the protobuf bytes of one OTLP/JSON trace export (a parsed JSON document).

    ``require_spans``: refuse a non-empty object without ``resourceSpans`` (a file that is not
    OTLP); an HTTP receiver ignores unknown fields instead, as the OTLP spec says.
    """
    if not isinstance(doc, dict):
        raise IngestError(f"not an OTLP/JSON trace export: expected an object, got {type(doc).__name__}", path=source)
    if require_spans and doc and "resourceSpans" not in doc and "resource_spans" not in doc:
        raise IngestError(f"not an OTLP/JSON trace export: no resourceSpans (keys: {sorted(doc)[:5]})", path=source)
    _hex_ids(doc, source)
    try:
        return json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True).SerializeToString()
    except (json_format.ParseError, ValueError, TypeError) as e:
        raise IngestError(f"not a valid OTLP/JSON trace export: {e}", path=source) from e


def parse_json(data: bytes, source: str, *, lines: bool = False, require_spans: bool = True) -> bytes:
    """Return the protobuf bytes of an OTLP/JSON file: one document, or one per line (Collector file exporter)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IngestError(f"not UTF-8 text (OTLP/JSON): {e}", path=source) from e
    if not lines:
        try:
            return json_to_protobuf(json.loads(text), source, require_spans=require_spans)
        except json.JSONDecodeError as e:
            if not e.msg.startswith("Extra data"):
                raise IngestError(f"not valid JSON: {e}", path=source) from e
    parts = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                raise IngestError(f"line {number}: not valid JSON: {e}", path=source) from e
            parts.append(json_to_protobuf(doc, f"{source} line {number}", require_spans=require_spans))
    return b"".join(parts)


def read_export(path: Path, reader: str) -> Message:
    """Return the lean ``TracesData`` of an OTLP file (``reader``: protobuf, json or jsonl; ``.gz`` looked through)."""
    source = str(path)
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise IngestError(f"not a valid gzip file: {e}", path=source) from e
    if reader != "protobuf":
        data = parse_json(data, source, lines=reader == "jsonl")
    return parse_protobuf(data, source) if data else LeanTraces()


def span_count(traces: Message) -> int:
    """Return the number of spans in a lean ``TracesData``."""
    return sum(len(ss.spans) for rs in traces.resource_spans for ss in rs.scope_spans)

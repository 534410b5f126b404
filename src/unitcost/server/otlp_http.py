"""OTLP/HTTP on the wire: decode a trace export request, encode its response.

Follows the OTLP specification (opentelemetry-proto docs/specification.md, "OTLP/HTTP"):
binary protobuf or JSON by ``Content-Type``, optional ``Content-Encoding: gzip``, a body limit
applied before and after decompression (413), 400 for a body that cannot be decoded, and an
``ExportTraceServiceResponse`` in the request's encoding, with ``partial_success`` when spans
were rejected.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from unitcost.errors import IngestError
from unitcost.ingest.otlp_wire import LeanTraces, json_to_protobuf, span_count
from unitcost.server.errors import JSON, PROTOBUF, BadRequest, PayloadTooLarge, UnsupportedMediaType

#: OTLP/HTTP's recommended default body limit (64 MiB), before and after decompression.
DEFAULT_MAX_BODY_BYTES = 64 << 20


@dataclass(frozen=True)
class TraceExport:
    """A decoded request: the export as OTLP protobuf bytes and parsed, its span count, and how to answer."""

    protobuf: bytes
    traces: Message
    spans: int
    json: bool


def media_type(content_type: str | None) -> str:
    """Return ``application/x-protobuf`` or ``application/json`` for a ``Content-Type`` header.

    >>> media_type("application/json; charset=utf-8")
    'application/json'
    """
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if base == JSON:
        return JSON
    raise UnsupportedMediaType(
        f"Content-Type {content_type!r} is not OTLP: send {PROTOBUF} or {JSON} (OTLP/HTTP, path /v1/traces)"
    )


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip or deflate), refusing output larger than ``limit`` bytes."""
    name = (encoding or "identity").strip().lower()
    if name in ("identity", ""):
        return body
    if name not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; use gzip (or none)")
    out, data = bytearray(), body
    while data:  # gzip allows several members back to back
        d = zlib.decompressobj(16 + zlib.MAX_WBITS if name != "deflate" else zlib.MAX_WBITS)
        try:
            out += d.decompress(data, limit + 1 - len(out))
        except zlib.error as e:
            raise BadRequest(f"body is not valid {name}: {e}") from e
        if len(out) > limit or d.unconsumed_tail:
            raise PayloadTooLarge(f"body exceeds {limit} bytes after decompression")
        if not d.eof:
            raise BadRequest(f"body is truncated {name} data")
        data = d.unused_data
    return bytes(out)


def decode_request(body: bytes, content_type: str | None, content_encoding: str | None, limit: int) -> TraceExport:
    """Return the export carried by an OTLP/HTTP request body (raises BadRequest, 413 or 415 errors)."""
    kind = media_type(content_type)
    data = decompress(body, content_encoding, limit)
    if kind == JSON:
        try:
            doc = json.loads(data) if data.strip() else {}
            data = json_to_protobuf(doc, "request body", require_spans=False)
        except (ValueError, IngestError) as e:  # JSONDecodeError is a ValueError
            raise BadRequest(f"body is not an OTLP/JSON ExportTraceServiceRequest: {e}") from e
    try:
        traces = LeanTraces.FromString(data)
    except DecodeError as e:
        raise BadRequest(f"body is not an OTLP protobuf ExportTraceServiceRequest: {e or 'cannot be parsed'}") from e
    return TraceExport(data, traces, span_count(traces), kind == JSON)


def encode_response(rejected_spans: int, error_message: str, as_json: bool) -> bytes:
    """Return an ``ExportTraceServiceResponse``; ``partial_success`` is set only when there is something to say.

    >>> encode_response(0, "", as_json=True)
    b'{}'
    >>> encode_response(2, "bad", as_json=True)
    b'{"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad"}}'
    """
    response = ExportTraceServiceResponse()
    if rejected_spans or error_message:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected_spans, error_message=error_message)
        )
    if as_json:
        return json.dumps(json_format.MessageToDict(response), separators=(",", ":")).encode()
    return response.SerializeToString()

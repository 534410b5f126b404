"""The receiver's errors and their one shape on the wire.

Every error is one JSON object, ``{"code": <gRPC status code>, "error": <kind>, "message": <text>}``:
a ``google.rpc.Status`` as OTLP/HTTP asks for (``code``, ``message``) plus a stable ``error`` kind.
A client that sent OTLP protobuf gets the same ``Status`` protobuf-encoded, as the OTLP spec requires.
"""

from __future__ import annotations

import json
from typing import ClassVar

from unitcost.errors import UnitcostError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class ServerError(UnitcostError):
    """A request the receiver answers with an error status."""

    status: ClassVar[int] = 500
    grpc_code: ClassVar[int] = 13  # INTERNAL
    kind: ClassVar[str] = "internal"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)} if self.retry_after_s is not None else {}


class BadRequest(ServerError, ValueError):
    """The body cannot be decoded as the OTLP message it claims to be (do not retry)."""

    status, grpc_code, kind = 400, 3, "bad_request"  # INVALID_ARGUMENT


class NotFound(ServerError, LookupError):
    status, grpc_code, kind = 404, 5, "not_found"


class MethodNotAllowed(ServerError):
    status, grpc_code, kind = 405, 12, "method_not_allowed"  # UNIMPLEMENTED


class PayloadTooLarge(ServerError, ValueError):
    """The body exceeds the limit, before or after decompression."""

    status, grpc_code, kind = 413, 8, "payload_too_large"  # RESOURCE_EXHAUSTED


class UnsupportedMediaType(ServerError, ValueError):
    """Neither OTLP protobuf nor OTLP JSON, or an encoding other than gzip or deflate."""

    status, grpc_code, kind = 415, 3, "unsupported_media_type"


class ServiceUnavailable(ServerError):
    """The queue is full or the server is shutting down: retry after ``Retry-After`` seconds."""

    status, grpc_code, kind = 503, 14, "unavailable"  # UNAVAILABLE


def error_json(code: int, kind: str, message: str) -> bytes:
    """Return the one JSON error shape.

    >>> error_json(3, "bad_request", "no")
    b'{"code": 3, "error": "bad_request", "message": "no"}'
    """
    return json.dumps({"code": code, "error": kind, "message": message}).encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def status_protobuf(code: int, message: str) -> bytes:
    """Return a serialized ``google.rpc.Status`` (field 1 code, field 2 message).

    >>> status_protobuf(3, "no")
    b'\\x08\\x03\\x12\\x02no'
    """
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def error_body(error: ServerError, protobuf: bool) -> tuple[bytes, str]:
    """Return the body and media type for ``error``: protobuf Status for protobuf clients, else JSON."""
    if protobuf:
        return status_protobuf(error.grpc_code, error.message), PROTOBUF
    return error_json(error.grpc_code, error.kind, error.message), JSON

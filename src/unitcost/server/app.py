"""The HTTP server: an OTLP/HTTP trace receiver (``POST /v1/traces``), ``GET /healthz`` and ``GET /metrics``.

Routes are thin: they hand the body to :class:`Receiver` and render what it returns. Every
error, from any route, is rendered by one handler in one shape (``unitcost.server.errors``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from unitcost.alerts.metrics import render_metrics
from unitcost.config import Config
from unitcost.errors import IngestError
from unitcost.server.errors import (
    JSON,
    PROTOBUF,
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServerError,
    error_body,
)
from unitcost.server.otlp_http import (
    DEFAULT_MAX_BODY_BYTES,
    TraceExport,
    decode_request,
    encode_response,
    media_type,
)
from unitcost.server.writer import Writer
from unitcost.store import Store

log = logging.getLogger("unitcost.server")


@dataclass(frozen=True)
class ServerSettings:
    """Limits of the receiver (``unitcost serve`` options)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    queue_size: int = 64
    journal: Path | None = None  # default: <workspace>.journal next to the workspace file


class Receiver:
    """Decodes OTLP/HTTP trace exports and has the single writer store them."""

    def __init__(self, store: Store, config: Config, settings: ServerSettings | None = None) -> None:
        self.settings = settings or ServerSettings()
        journal = self.settings.journal or Path(f"{store.path}.journal")
        self.writer = Writer(store, config, journal, queue_size=self.settings.queue_size)

    async def read_body(self, request: Request) -> bytes:
        """Return the request body, refusing one larger than the limit (413) before reading it all."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise BadRequest(f"Content-Length {declared!r} is not a number")
            if int(declared) > limit:
                raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _prepare(
        self, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> tuple[TraceExport, pa.Table | None]:
        """Decode the request and extract its spans (in a request thread, while the writer uses the engine)."""
        export = decode_request(body, content_type, content_encoding, self.settings.max_body_bytes)
        if not export.spans:
            return export, None
        try:
            return export, self.writer.adapter.extractor.table(export.traces, "request body")
        except IngestError as e:
            raise BadRequest(f"spans cannot be decoded: {e.reason}") from e

    async def export(self, body: bytes, content_type: str | None, content_encoding: str | None) -> Response:
        """Store one export; answer once it is committed, with ``partial_success`` for rejected spans."""
        self.writer.check_room()  # refuse early (503) rather than decode what cannot be queued
        export, spans = await run_in_threadpool(self._prepare, body, content_type, content_encoding)
        rejected, message = 0, ""
        if export.spans:
            result = await asyncio.wrap_future(self.writer.submit(export.protobuf, export.spans, spans))
            rejected, message = result.rejected_spans, result.error_message
        return Response(encode_response(rejected, message, export.json), media_type=JSON if export.json else PROTOBUF)


def create_app(store: Store, config: Config, settings: ServerSettings | None = None) -> FastAPI:
    """Return the FastAPI app; its lifespan replays the journal, starts the writer and drains it on shutdown."""
    from unitcost.alerts.watch import Watcher  # alerts import analysis; the receiver alone does not need them

    receiver = Receiver(store, config, settings)
    reader = store.cursor()  # the writer thread owns the store's own connection
    watcher = Watcher(store, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(receiver.writer.start)
        watcher.start()
        log.info(
            "unitcost receiver ready: POST /v1/traces (OTLP/HTTP), GET /healthz, GET /metrics; workspace %s; "
            "alert rules every %ss",
            store.path,
            watcher.interval_s or "(off)",
        )
        try:
            yield
        finally:
            await run_in_threadpool(watcher.stop)
            await run_in_threadpool(receiver.writer.stop)
            log.info("unitcost receiver stopped: %s", receiver.writer.health())

    app = FastAPI(title="unitcost", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.receiver = receiver
    app.state.watcher = watcher

    @app.post("/v1/traces")
    async def export_traces(request: Request) -> Response:
        body = await receiver.read_body(request)
        return await receiver.export(body, request.headers.get("content-type"), request.headers.get("content-encoding"))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {**receiver.writer.health(), "watch": watcher.health()}

    @app.get("/metrics")
    async def metrics() -> Response:
        body = await run_in_threadpool(render_metrics, reader, config)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(ServerError)
    async def server_error(request: Request, error: ServerError) -> Response:
        return _error_response(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        known = {404: NotFound, 405: MethodNotAllowed}.get(error.status_code)
        return _error_response(request, known(str(error.detail)) if known else ServerError(str(error.detail)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error_response(request, ServerError(f"internal error: {type(error).__name__}"))

    return app


def _error_response(request: Request, error: ServerError) -> Response:
    try:
        protobuf = request.url.path == "/v1/traces" and media_type(request.headers.get("content-type")) == PROTOBUF
    except ServerError:
        protobuf = False
    body, kind = error_body(error, protobuf)
    return Response(body, status_code=error.status, media_type=kind, headers=error.headers())


def serve(
    store: Store,
    config: Config,
    *,
    host: str = "127.0.0.1",
    port: int = 4318,
    settings: ServerSettings | None = None,
) -> None:
    """Run the receiver until SIGTERM or SIGINT; everything acknowledged is stored before it returns."""
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    logging_config = copy.deepcopy(LOGGING_CONFIG)
    logging_config["loggers"]["unitcost"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    app = create_app(store, config, settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=logging_config,
            access_log=False,
            timeout_graceful_shutdown=30,
            lifespan="on",
        )
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal into the handler it found;
    # found ours, it returns here instead of dying, so the caller closes (checkpoints) the workspace: exit 0
    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

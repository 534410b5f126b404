"""The single writer: one thread owns the workspace, batches queued exports into transactions.

A request is acknowledged only after the transaction that stores it has committed, so a
``kill -9`` right after a 200 loses nothing. Each batch goes through the same path as
``unitcost ingest otlp``: the batch is written to a journal file (queued exports, concatenated:
protobuf messages concatenate into one) and ingested with :func:`unitcost.ingest.ingest_file`,
so validation, quarantine and de-duplication are the file ingester's. A journal file left
behind by a crash (never acknowledged) is ingested again at the next start; duplicates are
skipped on the span id.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from unitcost.config import Config
from unitcost.errors import IngestError
from unitcost.ingest.base import IngestResult, ingest_file
from unitcost.ingest.otlp import OtlpAdapter
from unitcost.server.errors import BadRequest, ServiceUnavailable
from unitcost.store import Store

log = logging.getLogger("unitcost.server")


@dataclass(frozen=True)
class ExportResult:
    """What happened to one request's spans: how many were rejected (quarantined) and why."""

    rejected_spans: int = 0
    error_message: str = ""


@dataclass
class _Job:
    data: bytes
    spans: int
    table: pa.Table | None = None  # the spans, already extracted by the request thread
    future: Future[ExportResult] = field(default_factory=Future)


class _BatchAdapter(OtlpAdapter):
    """The otlp format, staging the spans the request threads extracted (the journal file holds the same)."""

    spans: pa.Table | None = None

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        spans, self.spans = self.spans, None
        return super().stage(con, path) if spans is None else self.stage_spans(con, spans)


@dataclass
class WriterStats:
    """Counters shown by ``GET /healthz``."""

    requests_accepted: int = 0
    requests_refused: int = 0
    spans_received: int = 0
    spans_rejected: int = 0
    batches: int = 0
    usage_rows_written: int = 0
    outcome_rows_written: int = 0
    journal_replayed: int = 0
    last_error: str | None = None


class Writer:
    """Owns all writes to the store; ``submit`` queues an export and returns a future resolved after commit."""

    def __init__(
        self,
        store: Store,
        config: Config,
        journal: Path,
        *,
        queue_size: int = 64,
        max_queue_bytes: int = 512 << 20,
        max_batch_spans: int = 50_000,
        retry_after_s: int = 1,
    ) -> None:
        self.store, self.adapter, self.journal = store, _BatchAdapter(config), journal
        self.queue_size, self.max_queue_bytes, self.max_batch_spans = queue_size, max_queue_bytes, max_batch_spans
        self.retry_after_s = retry_after_s
        self.stats = WriterStats()
        self._jobs: deque[_Job] = deque()
        self._queued_bytes = 0
        self._in_flight = 0
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="unitcost-writer", daemon=True)
        self._seq = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Ingest journal files left by an earlier run, then start the writer thread."""
        self.journal.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.journal.glob("*.binpb")):
            self._replay(path)
        self._seq = max((int(p.stem) for p in self.journal.glob("*.binpb") if p.stem.isdigit()), default=0)
        self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Refuse new exports, write everything queued, stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    # ---------------------------------------------------------------- the request side

    def check_room(self, size: int = 0) -> None:
        """Raise ServiceUnavailable (with Retry-After) when an export of ``size`` bytes cannot be queued now."""
        with self._cond:
            self._check_room(size)

    def _check_room(self, size: int) -> None:
        if self._closing:
            self.stats.requests_refused += 1
            raise ServiceUnavailable("shutting down; retry shortly", retry_after_s=self.retry_after_s)
        if len(self._jobs) >= self.queue_size or self._queued_bytes + size > self.max_queue_bytes:
            self.stats.requests_refused += 1
            raise ServiceUnavailable(
                f"queue full ({len(self._jobs)} requests waiting); retry after {self.retry_after_s}s",
                retry_after_s=self.retry_after_s,
            )

    def submit(self, data: bytes, spans: int, table: pa.Table | None = None) -> Future[ExportResult]:
        """Queue an export; raise ServiceUnavailable (with Retry-After) rather than accept what may be dropped."""
        with self._cond:
            self._check_room(len(data))
            job = _Job(data, spans, table)
            self._jobs.append(job)
            self._queued_bytes += len(data)
            self._cond.notify()
        return job.future

    def health(self) -> dict[str, Any]:
        """Return the queue depth and counters."""
        with self._cond:
            return {
                "status": "draining" if self._closing else "ok",
                "queue_depth": len(self._jobs),
                "queue_capacity": self.queue_size,
                "queued_bytes": self._queued_bytes,
                "in_flight_requests": self._in_flight,
                **vars(self.stats),
            }

    # ---------------------------------------------------------------- the writer thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if not self._jobs:
                    return  # closing, and everything accepted is written
                batch, spans = [self._jobs.popleft()], 0
                spans = batch[0].spans
                while self._jobs and spans + self._jobs[0].spans <= self.max_batch_spans:
                    job = self._jobs.popleft()
                    batch.append(job)
                    spans += job.spans
                self._queued_bytes -= sum(len(j.data) for j in batch)
                self._in_flight = len(batch)
            try:
                self._write(batch)
            except Exception as e:  # a bug must not leave requests waiting forever, nor stop the writer
                log.exception("the writer failed on a batch of %d request(s)", len(batch))
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(ServiceUnavailable(f"cannot write: {e}", retry_after_s=1))
            finally:
                with self._cond:
                    self._in_flight = 0

    def _write(self, batch: list[_Job]) -> None:
        try:
            results = self._ingest(batch)
        except IngestError as e:
            if len(batch) > 1:  # one request is bad (e.g. a span attribute that cannot be decoded): find it
                for job in batch:
                    self._write([job])
                return
            self.stats.last_error = str(e)
            batch[0].future.set_exception(BadRequest(f"spans cannot be decoded: {e.reason}"))
            return
        except Exception as e:  # the store failed: nothing of this batch is acknowledged, the clients retry
            log.exception("writing a batch of %d request(s) failed", len(batch))
            self.stats.last_error = f"{type(e).__name__}: {e}"
            for job in batch:
                job.future.set_exception(ServiceUnavailable(f"cannot write: {e}", retry_after_s=self.retry_after_s))
            return
        self.stats.batches += 1
        for job, result in zip(batch, results, strict=True):
            self.stats.requests_accepted += 1
            self.stats.spans_received += job.spans
            self.stats.spans_rejected += result.rejected_spans
            job.future.set_result(result)

    def _ingest(self, batch: list[_Job]) -> list[ExportResult]:
        """Journal the batch, ingest it in one transaction, and tell each request what was rejected."""
        self._seq += 1
        path = self.journal / f"{self._seq:012d}.binpb"
        data = b"".join(job.data for job in batch)
        path.write_bytes(data)
        self.adapter.spans = _concat([job.table for job in batch])
        try:
            results = ingest_file(self.store, path, self.adapter)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        finally:
            self.adapter.spans = None
        path.unlink(missing_ok=True)  # committed: the workspace holds it now
        self._count(results)
        if not any(r.rows_quarantined for r in results):
            return [ExportResult() for _ in batch]
        rows = self.store.sql(
            "SELECT record, any_value(field), any_value(reason) FROM quarantine WHERE sha256 = ? "
            "GROUP BY record ORDER BY record",
            [hashlib.sha256(data).hexdigest()],
        )
        out, first = [], 0
        for job in batch:  # the batch's spans are the requests' spans, in order
            last = first + job.spans
            mine = [(rec - first, fld, why) for rec, fld, why in rows if first < rec <= last]
            first = last
            if not mine:
                out.append(ExportResult())
                continue
            span, fld, why = mine[0]
            message = (
                f"{len(mine)} span(s) rejected and kept in quarantine (unitcost quarantine); "
                f"first: span {span} of the request, {fld}: {why}"
            )
            out.append(ExportResult(len(mine), message))
        return out

    def _count(self, results: list[IngestResult]) -> None:
        for r in results:
            if r.target_table == "usage":
                self.stats.usage_rows_written += r.rows_landed
            elif r.target_table == "outcomes":
                self.stats.outcome_rows_written += r.rows_landed

    def _replay(self, path: Path) -> None:
        started = time.perf_counter()
        try:
            results = ingest_file(self.store, path, self.adapter)
        except IngestError as e:  # a torn write: it was never acknowledged, keep it aside for a look
            rejected = self.journal / "rejected"
            rejected.mkdir(exist_ok=True)
            path.rename(rejected / path.name)
            log.warning("journal file %s cannot be read (%s); moved to %s", path.name, e, rejected)
            return
        path.unlink()
        self._count(results)
        self.stats.journal_replayed += 1
        log.info("replayed journal file %s in %.2fs", path.name, time.perf_counter() - started)


def _concat(tables: list[pa.Table | None]) -> pa.Table | None:
    """One table of the batch's spans, or None (then the journal file is read instead)."""
    if any(t is None for t in tables):
        return None
    try:
        table = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
        return pa.Table.from_batches(table.to_batches(max_chunksize=32_768), table.schema)  # few, large chunks
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. a number in one request, text in another
        return None

"""OpenTelemetry traces (OTLP) -> ``usage`` and ``outcomes``, by the GenAI semantic conventions.

Files are read by :mod:`unitcost.ingest.otlp_wire` (OTLP/protobuf and OTLP/JSON, gzip too).
One staged record per span, in file order. Spans that are model calls become ``usage`` rows;
spans that carry an outcome attribute become ``outcomes`` rows; the others are counted as
ignored. docs/formats/otlp.md has the mapping table, with each convention's source and status.

Speed: protobuf is parsed into a lean view of ``trace.proto`` in which attributes stay raw bytes.
Each distinct raw attribute is decoded once (memoised), so a span costs a few dictionary
lookups, and everything else runs on the engine.
"""

from __future__ import annotations

import base64
import gc
import json
import re
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from unitcost.config import Config, DimensionsConfig
from unitcost.errors import IngestError
from unitcost.ingest.base import Adapter, Mapping, sql_literal
from unitcost.ingest.otlp_wire import read_export
from unitcost.ingest.registry import register
from unitcost.schema import OUTCOMES, USAGE
from unitcost.store import rollups

#: Staged field -> span attributes, most preferred first: current GenAI convention, deprecated names, vendors.
GEN_AI_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "provider": ("gen_ai.provider.name", "gen_ai.system"),
    "model": ("gen_ai.response.model", "gen_ai.request.model"),
    "operation": ("gen_ai.operation.name", "llm.request.type"),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.prompt_tokens_details.cached_tokens",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.usage.prompt_tokens_details.cache_creation_tokens",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "llm.usage.reasoning_tokens",
        "gen_ai.usage.completion_tokens_details.reasoning_tokens",
    ),
    "total_tokens": ("gen_ai.usage.total_tokens", "llm.usage.total_tokens"),
    "ttft_s": ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token"),
    "vendor_span_kind": ("traceloop.span.kind",),
}
#: Fields a resource may carry as well as a span (besides the configured dimensions).
RESOURCE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "telemetry_sdk": ("telemetry.sdk.name",),
    "service_name": ("service.name",),
}
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
#: Dimensions resolved span -> resource -> trace (config ``dimensions:``); ``outcome`` is span-only.
TRACE_DIMENSIONS = ("tenant", "feature", "workflow", "user_id", "release", "prompt_version", "environment", "region")
#: Mapped attributes that are kept in ``attributes`` as well (the model asked for, next to the one that answered).
ALSO_IN_ATTRIBUTES = frozenset({"gen_ai.request.model"})
#: Message content is never stored: it is not needed for cost and often holds personal data.
_CONTENT = re.compile(
    r"^(gen_ai\.(input\.messages|output\.messages|system_instructions|tool\.definitions|tool\.call\.(arguments|result)"
    r"|retrieval\.(documents|query\.text)|prompt|completion|content\..*|(prompt|completion)\.\d+\..*)"
    r"|llm\.(prompts|completions)(\..*)?|traceloop\.entity\.(input|output))$"
)
#: OpenTelemetry provider names (current, deprecated and vendor spellings) -> genai-prices provider ids.
PROVIDER_IDS: dict[str, str] = {
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "gcp.gen_ai": "google",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "moonshot_ai": "moonshotai",
    "together_ai": "together",
    "togetherai": "together",
}
#: gen_ai.operation.name values that wrap model calls (their token counts, if any, sum their children).
AGGREGATE_OPERATIONS = ("create_agent", "invoke_workflow", "execute_tool", "plan")
SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_NO_RANK = 63  # "not found" in the 6-bit packed dimension ranks
_BATCH_ROWS = 32_768


def any_value(v: AnyValue) -> Any:
    """Return an OTLP ``AnyValue`` as a Python value (bytes as base64, like OTLP/JSON)."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, which)


_STRING: Callable[[str], str] = json.encoder.encode_basestring
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _json_fragment(key: str, value: Any) -> str:
    """Return ``"key":value`` as JSON text (one member of an object)."""
    try:
        text = _ENCODE(value)
    except ValueError:  # NaN or infinity
        text = _ENCODE(str(value))
    return _ENCODE(key) + ":" + text


# ---------------------------------------------------------------------------------------------------- staging


def _decode_key_value(raw: bytes) -> tuple[str, Any]:
    """Return (key, value) of a serialized ``KeyValue``; the common shapes are read directly, others by protobuf."""
    n = len(raw)
    if n > 3 and raw[0] == 0x0A and raw[1] < 0x80:
        pos = 2 + raw[1]
        if pos + 2 <= n and raw[pos] == 0x12 and raw[pos + 1] < 0x80 and pos + 2 + raw[pos + 1] == n:
            av = raw[pos + 2 :]
            try:
                key = raw[2:pos].decode()
                if not av:
                    return key, None
                tag = av[0]
                if tag == 0x0A and len(av) > 1 and av[1] < 0x80 and len(av) == 2 + av[1]:
                    return key, av[2:].decode()
                if tag == 0x18 and av[-1] < 0x80 and all(b & 0x80 for b in av[1:-1]):  # one varint, nothing after
                    value = shift = 0
                    for byte in av[1:]:
                        value |= (byte & 0x7F) << shift
                        shift += 7
                    return key, value - (1 << 64) if value >= 1 << 63 else value
                if tag == 0x21 and len(av) == 9:
                    return key, struct.unpack("<d", av[1:])[0]
                if tag == 0x10 and len(av) == 2:
                    return key, bool(av[1])
            except UnicodeDecodeError:
                pass  # protobuf gives the precise error
    kv = KeyValue.FromString(raw)
    return kv.key, any_value(kv.value)


def _getter(positions: list[int]) -> Callable[[Any], tuple[Any, ...]]:
    """``itemgetter`` that always returns a tuple."""
    if not positions:
        return lambda _: ()
    if len(positions) == 1:
        (p,) = positions
        return lambda seq: (seq[p],)
    return itemgetter(*positions)


@dataclass(frozen=True)
class _Plan:
    """What to take from a span with a given resource and sequence of attribute keys (computed once per shape)."""

    values: Callable[[list[Any]], tuple[Any, ...]]  # staged field values out of span values + resource values
    fragments: Callable[[list[int]], tuple[int, ...]]  # the entries that go to the attributes JSON
    service: int | None  # the span position of service.name when the span sets it (else it is in ``suffix``)
    suffix: str  # the attributes JSON after the span's own members: resource service.name, scope, "}"
    dim_ranks: int  # packed ranks of the resolved dimensions (6 bits each; 63 = not found)
    fixups: tuple[int, ...]  # positions of sdk, provider, input, output, total, cache read, cache write


class SpanExtractor:
    """Turns lean ``TracesData`` into one Arrow row per span with the fields the mappings need."""

    def __init__(self, dimensions: DimensionsConfig) -> None:
        self.fields: list[tuple[str, tuple[str, ...]]] = [
            *GEN_AI_ATTRIBUTES.items(),
            *RESOURCE_ATTRIBUTES.items(),
            *((d, tuple(getattr(dimensions, d))) for d in TRACE_DIMENSIONS),
            ("outcome", tuple(dimensions.outcome)),
        ]
        self.index = {name: i for i, (name, _) in enumerate(self.fields)}
        self.staged = [i for i, (name, _) in enumerate(self.fields) if name not in RESOURCE_ATTRIBUTES]
        self._input_position = self.staged.index(self.index["input_tokens"])
        span_only = {*GEN_AI_ATTRIBUTES, "outcome"}
        self.span_routes: dict[str, tuple[tuple[int, int], ...]] = {}
        self.resource_routes: dict[str, tuple[tuple[int, int], ...]] = {}
        for i, (name, keys) in enumerate(self.fields):
            for rank, key in enumerate(keys):
                rank = min(rank, _NO_RANK - 1)
                self.span_routes[key] = (*self.span_routes.get(key, ()), (i, rank))
                if name not in span_only:
                    self.resource_routes[key] = (*self.resource_routes.get(key, ()), (i, rank))

    def columns(self) -> list[tuple[str, pa.DataType | None]]:
        """The staged Arrow columns: name and type (None: inferred from the values)."""
        fixed = [
            ("trace_id_b", pa.binary()),
            ("span_id_b", pa.binary()),
            ("parent_span_id_b", pa.binary()),
            ("span_name", pa.string()),
            ("kind", pa.int32()),
            ("start_ns", pa.uint64()),
            ("end_ns", pa.uint64()),
            ("status_code", pa.int32()),
            ("attributes", pa.string()),
            ("dim_ranks", pa.int64()),
        ]
        numbers = {*TOKEN_FIELDS, "total_tokens", "ttft_s"}
        return fixed + [(self.fields[i][0], None if self.fields[i][0] in numbers else pa.string()) for i in self.staged]

    def _resource(self, raw: bytes, source: str) -> tuple[list[Any], list[int]]:
        values: list[Any] = [None] * len(self.fields)
        ranks = [_NO_RANK] * len(self.fields)
        try:
            attributes = Resource.FromString(raw).attributes if raw else ()
        except DecodeError as e:
            raise IngestError(f"a span resource cannot be decoded: {e}", path=source) from e
        for kv in attributes:
            for i, rank in self.resource_routes.get(kv.key, ()):
                if rank < ranks[i]:
                    ranks[i], values[i] = rank, any_value(kv.value)
        return values, ranks

    def _plan(
        self,
        resource: tuple[list[Any], list[int]],
        keys: tuple[int, ...],
        routes: list[Any],
        kept: list[str | None],
        scope_fragment: str | None,
    ) -> _Plan:
        resource_values, resource_ranks = resource
        nf, n, ix = len(self.fields), len(keys), self.index
        best = list(resource_ranks)
        where: list[int | None] = [-1 if r < _NO_RANK else None for r in resource_ranks]
        for pos, kid in enumerate(keys):
            for i, rank in routes[kid]:
                if rank < best[i] or (rank == best[i] and where[i] == -1):
                    best[i], where[i] = rank, pos
        # a span's values are followed by its resource's values and one None
        at = [n + nf if w is None else (n + i if w == -1 else w) for i, w in enumerate(where)]
        packed = 0
        for shift, d in enumerate(TRACE_DIMENSIONS):
            packed |= min(best[ix[d]], _NO_RANK) << (6 * shift)
        sdk = where[ix["telemetry_sdk"]]
        found = {f: where[ix[f]] is not None for f in ("provider", "input_tokens", "output_tokens", "total_tokens")}
        openlit = (sdk is not None and (sdk >= 0 or resource_values[ix["telemetry_sdk"]] == "openlit")) and (
            found["provider"] and found["input_tokens"]
        )
        derive = not found["input_tokens"] and found["total_tokens"] and found["output_tokens"]
        fix: tuple[str, ...] = ("telemetry_sdk", "provider", "input_tokens", "output_tokens", "total_tokens")
        fix += ("cache_read_tokens", "cache_write_tokens")
        fragments = [pos for pos, kid in enumerate(keys) if kept[kid] is not None]
        service = where[ix["service_name"]]
        tail = [_json_fragment("service.name", resource_values[ix["service_name"]])] if service == -1 else []
        tail += [scope_fragment] if scope_fragment else []
        suffix = ("," if fragments and tail else "") + ",".join(tail) + "}"
        return _Plan(
            values=_getter([at[i] for i in self.staged]),
            fragments=_getter(fragments),
            service=service if service is not None and service >= 0 else None,
            suffix=suffix,
            dim_ranks=packed,
            fixups=tuple(at[ix[f]] for f in fix) if openlit or derive else (),
        )

    def table(self, traces: Message, source: str) -> pa.Table:
        """Return one row per span of ``traces``, in order (see :meth:`columns`)."""
        with _no_gc():  # millions of short-lived objects, no cycles: the cyclic GC would only rescan them
            return self._table(traces, source)

    def _table(self, traces: Message, source: str) -> pa.Table:
        memo: dict[bytes, int] = {}  # raw attribute -> entry
        entry_key: list[int] = []
        entry_value: list[Any] = []
        entry_fragment: list[Any] = []  # JSON member text, or None for attributes not kept
        key_ids: dict[str, int] = {}
        key_routes: list[tuple[tuple[int, int], ...]] = []
        key_prefix: list[str | None] = []  # '"key":' for keys kept in the attributes JSON
        plans: dict[tuple[int, int, tuple[int, ...]], _Plan] = {}

        def entry(raw: bytes, record: int) -> int:
            try:
                key, value = _decode_key_value(raw)
            except DecodeError as e:
                raise IngestError(f"span attribute cannot be decoded: {e}", path=source, record=record) from e
            kid = key_ids.get(key)
            if kid is None:
                kid = key_ids[key] = len(key_routes)
                routes = self.span_routes.get(key, ())
                key_routes.append(routes)
                kept = (not routes or key in ALSO_IN_ATTRIBUTES) and not _CONTENT.match(key)
                key_prefix.append(_ENCODE(key) + ":" if kept else None)
            memo[raw] = eid = len(entry_key)
            entry_key.append(kid)
            entry_value.append(value)
            prefix = key_prefix[kid]
            if prefix is None:
                entry_fragment.append(None)
            elif type(value) is str:
                entry_fragment.append(prefix + _STRING(value))
            else:
                entry_fragment.append(_json_fragment(key, value))
            return eid

        memo_get, keys_of, value_of = memo.get, entry_key.__getitem__, entry_value.__getitem__
        fragment_of = entry_fragment.__getitem__
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        seq = scope_no = 0
        for resource_no, rs in enumerate(traces.resource_spans):
            resource = self._resource(rs.resource, source)
            tail = [*resource[0], None]
            for ss in rs.scope_spans:
                scope_no += 1
                scope = InstrumentationScope.FromString(ss.scope).name if ss.scope else ""
                scope_fragment = _json_fragment("otel.scope.name", scope) if scope else None
                for s in ss.spans:
                    seq += 1
                    ids: list[Any] = list(map(memo_get, s.attributes))
                    if None in ids:  # attributes not seen before in this file (unique ids are, every time)
                        raws = s.attributes
                        for i, e in enumerate(ids):
                            if e is None:
                                ids[i] = entry(raws[i], seq)
                    signature = (resource_no, scope_no, tuple(map(keys_of, ids)))
                    plan = plans.get(signature)
                    if plan is None:
                        plan = plans[signature] = self._plan(
                            resource, signature[2], key_routes, key_prefix, scope_fragment
                        )
                    values = list(map(value_of, ids))
                    values += tail
                    staged = plan.values(values)
                    if plan.fixups:
                        staged = self._fix(staged, values, plan.fixups)
                    attributes = "{" + ",".join(map(fragment_of, plan.fragments(ids))) + plan.suffix
                    if plan.service is not None:  # service.name set on the span itself (OpenLIT does)
                        attributes = _with_member(attributes, "service.name", values[plan.service])
                    status = s.status
                    append(
                        (
                            s.trace_id,
                            s.span_id,
                            s.parent_span_id,
                            s.name,
                            s.kind,
                            s.start_time_unix_nano,
                            s.end_time_unix_nano,
                            _status_code(status, source, seq) if status else 0,
                            attributes,
                            plan.dim_ranks,
                            *staged,
                        )
                    )
        columns = self.columns()
        data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
        table = pa.table({name: _array(values, t) for (name, t), values in zip(columns, data, strict=True)})
        # several record batches let the engine scan them in parallel (one chunk is one thread)
        return pa.Table.from_batches(table.to_batches(max_chunksize=_BATCH_ROWS), table.schema)

    def _fix(self, staged: tuple[Any, ...], values: list[Any], at: tuple[int, ...]) -> tuple[Any, ...]:
        """Apply the two value-dependent rules (only spans of the shapes that need them)."""
        sdk, provider, inp, out, total, cache_read, cache_write = (values[p] for p in at)
        fixed = list(staged)
        position = self._input_position
        if sdk == "openlit" and provider == "anthropic" and type(inp) is int:
            # OpenLIT reports Anthropic's input_tokens, which exclude cached tokens; the convention includes them
            fixed[position] = inp + sum(v for v in (cache_read, cache_write) if type(v) is int)
        elif inp is None and type(total) is int and type(out) is int:
            fixed[position] = total - out  # only a total and an output count: the input is the difference
        return tuple(fixed)


def _status_code(raw: bytes, source: str, record: int) -> int:
    try:
        return int(trace_pb2.Status.FromString(raw).code)
    except DecodeError as e:
        raise IngestError(f"span status cannot be decoded: {e}", path=source, record=record) from e


def _with_member(obj: str, key: str, value: Any) -> str:
    """Add ``"key": value`` to a JSON object's text."""
    member = _json_fragment(key, value)
    return "{" + member + "}" if obj == "{}" else obj[:-1] + "," + member + "}"


_gc_lock = threading.Lock()
_gc_pauses = [0, False]  # extractions running, and whether the collector was enabled before the first


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while any thread extracts spans."""
    with _gc_lock:
        if _gc_pauses[0] == 0:
            _gc_pauses[1] = gc.isenabled()
            gc.disable()
        _gc_pauses[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses[1]:
                gc.enable()


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v) if isinstance(v, list | dict) else str(v)


def _array(values: Any, arrow_type: pa.DataType | None) -> pa.Array:
    try:
        return pa.array(values, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed or odd types: as text, checked later
        return pa.array([_text(v) for v in values], pa.string())


# ---------------------------------------------------------------------------------------------------- the format


#: Staged columns mapped only when some span of the file has them (fewer columns, less to check).
OPTIONAL_COLUMNS = ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "ttft_s", *TRACE_DIMENSIONS)
_SHIFT = {d: 6 * i for i, d in enumerate(TRACE_DIMENSIONS)}


def _stage_sql(spans: pa.Table, present: list[str]) -> str:
    """SQL that stages ``_otlp_spans`` (Arrow) as ``_stage``: hex ids, timestamps, canonical spellings."""
    kinds = " ".join(f"WHEN {i} THEN '{k}'" for i, k in enumerate(SPAN_KINDS))
    providers = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in PROVIDER_IDS.items())
    optional = [c for c in present if c != "ttft_s"]
    if "ttft_s" in present:
        if pa.types.is_string(spans.schema.field("ttft_s").type):  # some value is not a number: validation says so
            optional.append(
                "CASE WHEN TRY_CAST(ttft_s AS DOUBLE) IS NULL THEN ttft_s "
                "ELSE CAST(TRY_CAST(ttft_s AS DOUBLE) * 1000 AS VARCHAR) END AS ttft_ms"
            )
        else:
            optional.append("CAST(ttft_s AS DOUBLE) * 1000 AS ttft_ms")

    def ts(col: str) -> str:  # ns since the epoch; 0 means unset
        return f"CASE WHEN {col} BETWEEN 1 AND 9e18 THEN make_timestamp(CAST({col} // 1000 AS BIGINT)) END"

    return f"""CREATE OR REPLACE TEMP TABLE _stage AS SELECT
          NULLIF(NULLIF(lower(hex(trace_id_b)), ''), repeat('0', 32)) AS trace_id,
          NULLIF(NULLIF(lower(hex(span_id_b)), ''), repeat('0', 16)) AS span_id,
          NULLIF(lower(hex(parent_span_id_b)), '') AS parent_span_id,
          span_name, CASE kind {kinds} ELSE CAST(kind AS VARCHAR) END AS span_kind,
          {ts("start_ns")} AS start_time, {ts("end_ns")} AS end_time,
          CASE WHEN start_ns > 0 AND end_ns > 0
            THEN (CAST(end_ns AS HUGEINT) - CAST(start_ns AS HUGEINT)) / 1e6 END AS latency_ms,
          CASE status_code WHEN 2 THEN 'error' ELSE 'ok' END AS status,
          CASE lower(trim(provider)) {providers} ELSE lower(trim(provider)) END AS provider,
          model, operation, input_tokens, output_tokens, total_tokens, vendor_span_kind, outcome, dim_ranks,
          {"".join(c + ", " for c in optional)}attributes
        FROM _otlp_spans"""


def _trace_dimensions(con: duckdb.DuckDBPyConnection, dims: list[str], *, stored_only: bool = False) -> int:
    """Build ``_otlp_traces``: per trace and dimension, the value of the best-ranked name (root span first).

    ``stored_only``: only the traces that already have stored model calls. Returns the number of traces.
    """
    aggregates = []
    for d in dims:
        rank = f"((dim_ranks >> {_SHIFT[d]}) & 63)"
        aggregates.append(
            f"arg_min({d}, ({rank} << 42) | (CAST(parent_span_id IS NOT NULL AS BIGINT) << 41) | _row) "
            f"FILTER (WHERE {d} IS NOT NULL) AS {d}, min({rank}) FILTER (WHERE {d} IS NOT NULL) AS {d}__rank"
        )
    spans = "(SELECT *, rowid AS _row FROM _stage WHERE trace_id IS NOT NULL)"
    if stored_only:  # the small side (this file's traces) is the one to hash
        spans = f"""(SELECT s.* FROM {spans} s SEMI JOIN (SELECT k.unit_key FROM unit_keys k
            JOIN (SELECT DISTINCT trace_id FROM _stage) b ON k.unit_key = b.trace_id) known
            ON known.unit_key = s.trace_id)"""
    row = con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _otlp_traces AS
        SELECT trace_id, {", ".join(aggregates)} FROM {spans} GROUP BY trace_id"""
    ).fetchone()
    return int(row[0]) if row else 0


def _fill_from_trace(con: duckdb.DuckDBPyConnection, dims: list[str]) -> None:
    """Give each staged span the trace's value of a dimension when it has none or only a lower-ranked one."""
    better = {
        d: f"t.{d} IS NOT NULL AND (s.{d} IS NULL OR t.{d}__rank < ((s.dim_ranks >> {_SHIFT[d]}) & 63))" for d in dims
    }
    sets = ", ".join(f"{d} = CASE WHEN {better[d]} THEN CAST(t.{d} AS VARCHAR) ELSE s.{d} END" for d in dims)
    where = " OR ".join(f"({b})" for b in better.values())
    con.execute(f"UPDATE _stage s SET {sets} FROM _otlp_traces t WHERE s.trace_id = t.trace_id AND ({where})")


def _enrich_stored(con: duckdb.DuckDBPyConnection, dims: list[str]) -> None:
    """Fill empty dimensions of stored usage rows from spans of the same trace that arrive later.

    Spans are exported when they end, so a trace's root span (often the one with the tenant)
    may come in a later file or request than its model calls. Stored traces are found through
    ``unit_keys`` (one row per unit of work) and updated by ``unit_id``.
    """
    row = con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _otlp_known AS SELECT k.unit_id, t.* FROM _otlp_traces t
        JOIN unit_keys k ON k.unit_key = t.trace_id WHERE {" OR ".join(f"t.{d} IS NOT NULL" for d in dims)}"""
    ).fetchone()
    if row and row[0]:
        sets = ", ".join(f"{d} = COALESCE(u.{d}, CAST(t.{d} AS VARCHAR))" for d in dims)
        missing = " OR ".join(f"(u.{d} IS NULL AND t.{d} IS NOT NULL)" for d in dims)
        changed = con.execute(
            f"UPDATE usage u SET {sets} FROM _otlp_known t WHERE u.unit_id = t.unit_id AND ({missing})"
        ).fetchone()
        if changed and changed[0]:
            rollups.refresh_units(con, "SELECT unit_id FROM _otlp_known")  # their hours' sums per dimension
    con.execute("DROP TABLE IF EXISTS _otlp_known")


def _dimensions_to_fill(spans: pa.Table, dims: list[str]) -> list[str]:
    """Dimensions some span lacks (or has by a lower-ranked name) while another span of the file has it."""
    ranks = spans.column("dim_ranks").unique().to_pylist()
    out = []
    for d in dims:
        seen = {(r >> _SHIFT[d]) & 63 for r in ranks}
        if len(seen - {_NO_RANK}) > 1 or spans.column(d).null_count:
            out.append(d)
    return out


def _is_model_call() -> str:
    aggregates = ", ".join(sql_literal(o) for o in AGGREGATE_OPERATIONS)
    return (
        "(s.input_tokens IS NOT NULL OR s.output_tokens IS NOT NULL OR s.total_tokens IS NOT NULL) "
        "AND (s.model IS NOT NULL OR s.provider IS NOT NULL OR s.operation IS NOT NULL) "
        f"AND lower(COALESCE(s.operation, '')) NOT IN ({aggregates}) "
        # invoke_agent: a CLIENT span calls a remote agent (its only record); an INTERNAL one wraps local model calls
        "AND NOT (lower(COALESCE(s.operation, '')) = 'invoke_agent' AND s.span_kind <> 'client') "
        "AND lower(COALESCE(s.vendor_span_kind, '')) NOT IN ('workflow', 'task', 'agent', 'tool')"
    )


@register
class OtlpAdapter(Adapter):
    """OpenTelemetry trace exports: model-call spans -> usage, outcome attributes -> outcomes."""

    name = "otlp"
    description = (
        "OpenTelemetry traces: OTLP protobuf (.pb, .binpb, .otlp) or OTLP/JSON (.json, .jsonl), .gz too; "
        "GenAI semantic conventions (docs/formats/otlp.md)"
    )
    readers: ClassVar[dict[str, str]] = {
        ".pb": "protobuf",
        ".binpb": "protobuf",
        ".otlp": "protobuf",
        ".json": "json",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
    }

    temp_tables: ClassVar[tuple[str, ...]] = ("_otlp_traces",)

    def __init__(self, config: Config | None = None, mapping: Path | None = None) -> None:
        super().__init__(config, mapping)
        self.extractor = SpanExtractor(self.config.dimensions)
        self._enrich: list[str] = []  # dimensions to fill in stored rows, found by the last stage()

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        """Parse ``path`` into ``_stage`` (one row per span, file order) and resolve trace-level dimensions."""
        return self.stage_spans(con, self.extractor.table(read_export(path, self.reader_for(path)), str(path)))

    def stage_spans(self, con: duckdb.DuckDBPyConnection, spans: pa.Table) -> list[str]:
        """Stage spans extracted by :class:`SpanExtractor` as ``_stage``; return its columns."""
        present = [c for c in OPTIONAL_COLUMNS if spans.column(c).null_count < spans.num_rows]
        con.register("_otlp_spans", spans)
        try:
            con.execute(_stage_sql(spans, present))
        finally:
            con.unregister("_otlp_spans")
        dims = [d for d in TRACE_DIMENSIONS if d in present]
        fill = _dimensions_to_fill(spans, dims)
        row = con.execute("SELECT EXISTS (SELECT 1 FROM usage)").fetchone()
        stored = bool(row and row[0]) and bool(dims)
        if fill:
            _trace_dimensions(con, dims)
            _fill_from_trace(con, fill)
        # stored rows of this file's traces are filled in by apply(), inside the file's transaction
        self._enrich = dims if stored and (fill or _trace_dimensions(con, dims, stored_only=True)) else []
        return [r[0] for r in con.execute("DESCRIBE _stage").fetchall()]

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        """Fill empty dimensions of stored rows from this file's spans of the same traces (:func:`_enrich_stored`)."""
        dims, self._enrich = self._enrich, []
        if dims:
            _enrich_stored(con, dims)

    def mappings(self, columns: list[str], path: Path) -> list[Mapping]:
        staged = set(columns)
        usage = {
            "ts": "s.start_time",
            "request_id": "s.span_id",
            "trace_id": "s.trace_id",
            **{
                c: f"s.{c}"
                for c in ("provider", "model", "operation", *TOKEN_FIELDS, "latency_ms", "ttft_ms", "status")
            },
            **{d: f"s.{d}" for d in TRACE_DIMENSIONS},
            "attributes": "s.attributes",
        }
        outcomes = {
            "trace_id": "s.trace_id",
            "ts": "COALESCE(s.end_time, s.start_time)",
            **{c: f"s.{c}" for c in ("tenant", "feature", "workflow", "outcome")},
        }
        return [
            Mapping(
                USAGE,
                {k: v for k, v in usage.items() if v[2:] in staged or not v.startswith("s.")},
                where=_is_model_call(),
            ),
            Mapping(
                OUTCOMES,
                {k: v for k, v in outcomes.items() if v[2:] in staged or not v.startswith("s.")},
                where="s.outcome IS NOT NULL",
                extra=("span_id", "span_name"),
            ),
        ]

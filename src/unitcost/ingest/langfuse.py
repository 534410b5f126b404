"""Langfuse observations as usage rows: each generation (or embedding) is one model call.

Reads the UI batch export of the observations table (CSV, JSON, JSONL), the public
API's observation pages (``GET /api/public/observations``, ``/api/public/v2/observations``:
``{"data": [...], "meta": ...}``) and full traces (``GET /api/public/traces/{id}``,
whose nested observations inherit the trace's user, session, tags and release).
Field names follow Langfuse's ``fern/apis/server/definition/commons.yml`` and the
export worker (``observation-stream.ts``); the decisions are in docs/formats/langfuse.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import duckdb

from unitcost.errors import IngestError
from unitcost.ingest.applog import (
    WORKING_TABLES,
    looked_up,
    ms_between,
    normalize,
    register_models,
    stage_records,
    tag_value,
    text_of,
)
from unitcost.ingest.base import Adapter, Mapping, quote_ident
from unitcost.ingest.registry import register
from unitcost.schema import USAGE

#: Trace fields copied onto the observations of a full trace (trace field -> staged column).
TRACE_FIELDS = {
    "name": "traceName",
    "tags": "traceTags",
    "userId": "userId",
    "sessionId": "sessionId",
    "release": "release",
    "metadata": "traceMetadata",
    "timestamp": "traceTimestamp",
}
#: Observation types that are never model calls; other generation-like types count when they name a model.
NOT_MODEL_CALLS = ("SPAN", "EVENT")
#: Objects and lists (JSON text in the CSV export), parsed once when staged.
JSON_COLUMNS: tuple[str, ...] = ("metadata", "traceMetadata", "usageDetails", "costDetails", "usage", "tags")
JSON_COLUMNS += ("traceTags", "providedUsageDetails", "providedCostDetails", "modelParameters")
#: Times (JSON-quoted in the CSV export).
TIME_COLUMNS = ("startTime", "endTime", "completionStartTime", "createdAt", "updatedAt", "traceTimestamp")
#: Prompt and completion bodies: not cost data, never copied into attributes.
CONTENT_COLUMNS = ("input", "output")


def _explode_traces(con: duckdb.DuckDBPyConnection, columns: list[str]) -> list[str]:
    """Full traces (``observations`` as objects) -> one staged record per observation, with trace fields."""
    kind = con.execute("SELECT typeof(observations) FROM _stage LIMIT 1").fetchone()
    if not kind or not str(kind[0]).startswith("STRUCT"):
        return columns
    carried = "".join(f", {quote_ident(f)} AS {quote_ident(c)}" for f, c in TRACE_FIELDS.items() if f in columns)
    con.execute("CREATE OR REPLACE TEMP TABLE _traces AS SELECT * FROM _stage")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _stage AS SELECT unnest(o), * EXCLUDE (o) FROM "
        f"(SELECT unnest(observations) AS o{carried} FROM _traces ORDER BY rowid)"
    )
    con.execute("DROP TABLE _traces")
    return [r[0] for r in con.execute("DESCRIBE _stage").fetchall()]


@register
class LangfuseAdapter(Adapter):
    """Langfuse observations: generations become usage rows; spans and events are ignored."""

    name = "langfuse"
    description = "Langfuse observations and traces (UI export CSV/JSON/JSONL, public API JSON)"

    temp_tables: ClassVar[tuple[str, ...]] = (*WORKING_TABLES, "_traces")

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        columns = stage_records(self, con, path)
        if "observations" in columns:
            columns = _explode_traces(con, columns)
        if "startTime" not in columns and "timestamp" in columns and "id" in columns:
            raise IngestError(
                "a Langfuse traces export holds no model calls (no model, no token usage); export the "
                "observations table instead, or save full traces from GET /api/public/traces/{traceId}",
                path=str(path),
            )
        missing = [c for c in ("id", "type", "startTime") if c not in columns]
        if missing:
            raise IngestError(
                f"not Langfuse observations: missing column(s) {missing}; found {columns[:12]}", path=str(path)
            )
        normalize(con, columns, JSON_COLUMNS, TIME_COLUMNS)
        register_models(con, self._hint(columns), self._model(columns))
        return columns

    @staticmethod
    def _meta(columns: list[str], name: str = "metadata") -> str:
        return f"s.{quote_ident(name)}" if name in columns else "CAST(NULL AS JSON)"  # parsed by stage()

    def _hint(self, columns: list[str]) -> str:
        meta = self._meta(columns)
        keys = ("provider", "ls_provider", 'attributes."gen_ai.provider.name"', 'attributes."gen_ai.system"')
        return "COALESCE(" + ", ".join(f"NULLIF(json_extract_string({meta}, '$.{k}'), '')" for k in keys) + ")"

    @staticmethod
    def _model(columns: list[str]) -> str:
        return f"NULLIF(COALESCE({text_of(columns, 'model')}, {text_of(columns, 'providedModelName')}), '')"

    def mappings(self, columns: list[str], path: Path) -> list[Mapping]:
        def col(name: str) -> str:
            return text_of(columns, name)

        meta, trace_meta = self._meta(columns), self._meta(columns, "traceMetadata")

        def m(key: str) -> str:
            own, trace = (f"NULLIF(json_extract_string({j}, '$.{key}'), '')" for j in (meta, trace_meta))
            return f"COALESCE({own}, {trace})"

        def details(name: str) -> str:
            return f"TRY_CAST(s.{quote_ident(name)} AS MAP(VARCHAR, DOUBLE))" if name in columns else "NULL"

        usage = details("usageDetails")
        cost_total = f"{details('costDetails')}['total']" if "costDetails" in columns else "NULL"

        def tokens(pattern: str) -> str:
            return f"list_sum([e.value for e in map_entries({usage}) if regexp_matches(e.key, '{pattern}')])"

        old = "s.usage" if "usage" in columns else "CAST(NULL AS JSON)"  # the deprecated usage object

        def number(expr: str) -> str:
            return f"TRY_CAST({expr} AS DOUBLE)"

        def old_usage(*keys: str) -> str:
            return ", ".join(number(f"json_extract_string({old}, '$.{k}')") for k in keys)

        tags_json = " ".join(f"s.{quote_ident(c)}," for c in ("tags", "traceTags") if c in columns)
        tags = f"COALESCE({tags_json} NULL)"
        kind, model = f"upper({col('type')})", self._model(columns)
        prompt = f"NULLIF(concat_ws(':', {col('promptName')}, {col('promptVersion')}), '')"
        mapped = {
            "request_id": col("id"),
            "ts": col("startTime"),
            "trace_id": col("traceId"),
            "tenant": f"COALESCE({tag_value(tags, 'tenant')}, {m('tenant')}, {m('tenant_id')})",
            "feature": f"COALESCE({tag_value(tags, 'feature')}, {m('feature')})",
            "workflow": f"COALESCE({tag_value(tags, 'workflow')}, {m('workflow')}, {col('traceName')})",
            "user_id": col("userId"),
            "environment": f"NULLIF({col('environment')}, 'default')",
            "release": col("release"),
            "prompt_version": f"CASE WHEN NULLIF({col('promptName')}, '') IS NOT NULL THEN {prompt} "
            f"ELSE {col('version')} END",
            "provider": looked_up("provider", self._hint(columns), model),
            "model": looked_up("model", self._hint(columns), model),
            "operation": f"CASE {kind} WHEN 'GENERATION' THEN 'chat' WHEN 'EMBEDDING' THEN 'embeddings' "
            f"ELSE lower({kind}) END",
            "input_tokens": f"COALESCE({tokens('input')}, {old_usage('input', 'promptTokens')}, "
            f"{number(col('inputUsage'))})",
            "cache_read_tokens": tokens("cache_read|cached"),
            "cache_write_tokens": tokens("cache_creation|cache_write"),
            "output_tokens": f"COALESCE({tokens('output')}, {old_usage('output', 'completionTokens')}, "
            f"{number(col('outputUsage'))})",
            "reasoning_tokens": tokens("reasoning"),
            "latency_ms": ms_between(col("startTime"), col("endTime")),
            "ttft_ms": ms_between(col("startTime"), col("completionStartTime")),
            "status": f"CASE upper({col('level')}) WHEN 'ERROR' THEN 'error' ELSE 'ok' END",
            "reported_cost_usd": f"COALESCE({cost_total}, {number(col('calculatedTotalCost'))}, "
            f"{old_usage('totalCost')}, NULLIF({number(col('totalCost'))}, 0))",
        }
        consumed = {"id", "startTime", "traceId", "userId", "environment", "release", "model", "providedModelName"}
        consumed |= {"inputUsage", "outputUsage", *CONTENT_COLUMNS}
        where = f"{kind} IN ('GENERATION', 'EMBEDDING') OR ({kind} NOT IN {NOT_MODEL_CALLS} AND {model} IS NOT NULL)"
        extra = tuple(c for c in columns if c not in consumed)
        return [Mapping(USAGE, mapped, where=where, extra=extra)]

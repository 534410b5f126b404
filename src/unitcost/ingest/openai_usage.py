"""OpenAI organization usage API responses as usage rows (one row per bucket result).

Reads saved responses of ``GET /v1/organization/usage/completions`` (and
``/usage/embeddings``): a page ``{"object": "page", "data": [buckets]}``, a list of
pages, JSONL of pages, or bare buckets. Each ``results`` entry of a bucket is an
*aggregate* of ``num_model_requests`` calls, not one call; its ``request_id`` is a
hash of the bucket and the grouping keys, so overlapping pages never count twice.

Responses of ``GET /v1/organization/costs`` are refused: cost line items are not
model calls (see docs/formats/openai-usage.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import duckdb

from unitcost.errors import IngestError
from unitcost.ingest.base import Adapter, Mapping, sql_literal
from unitcost.ingest.registry import register
from unitcost.schema import USAGE

#: Result objects that are token usage, and the operation they stand for.
OPERATIONS = {
    "organization.usage.completions.result": "chat",
    "organization.usage.embeddings.result": "embeddings",
}
#: Result fields that identify one aggregate within a bucket (its grouping keys).
GROUP_KEYS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
#: Result fields mapped to canonical columns (the rest of the result goes to attributes).
MAPPED: tuple[str, ...] = ("object", "project_id", "user_id", "model", "input_tokens", "input_cached_tokens")
MAPPED += ("input_cache_write_tokens", "output_tokens")


@register
class OpenAIUsageAdapter(Adapter):
    """Saved pages of the OpenAI organization usage API (completions, embeddings)."""

    name = "openai-usage"
    description = "OpenAI organization usage API responses (usage/completions pages, JSON or JSONL)"
    readers: ClassVar[dict[str, str]] = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        reader = self.reader_for(path)
        fmt = "newline_delimited" if reader == "jsonl" else "auto"
        docs = f"SELECT json AS doc FROM read_json_objects({sql_literal(str(path))}, format = '{fmt}')"
        buckets = (  # the buckets of pages, and bare buckets
            "SELECT unnest(CAST(doc->'$.data' AS JSON[])) AS bucket FROM docs WHERE doc->>'$.object' = 'page' "
            "UNION ALL SELECT doc FROM docs WHERE doc->>'$.object' = 'bucket'"
        )
        try:
            con.execute("DROP TABLE IF EXISTS _stage")
            con.execute(
                f"CREATE TEMP TABLE _stage AS WITH docs AS ({docs}), buckets AS ({buckets}) SELECT "
                "TRY_CAST(bucket->>'$.start_time' AS BIGINT) AS bucket_start_time, "
                "TRY_CAST(bucket->>'$.end_time' AS BIGINT) AS bucket_end_time, "
                "unnest(CAST(COALESCE(bucket->'$.results', bucket->'$.result') AS JSON[])) AS result FROM buckets"
            )
        except duckdb.Error as e:
            first = str(e).strip().splitlines()[0]
            raise IngestError(f"cannot be read as JSON ({self.name}): {first}", path=str(path)) from e
        kinds = [r[0] for r in con.execute("SELECT DISTINCT result->>'$.object' FROM _stage").fetchall()]
        if not kinds:
            raise IngestError(
                'not an OpenAI usage API response: expected pages {"object": "page", "data": [buckets]} '
                "with bucket results",
                path=str(path),
            )
        if "organization.costs.result" in kinds:
            raise IngestError(
                "this is an OpenAI costs response (organization.costs.result): cost line items are "
                "invoice lines, not model calls, and belong with bill lines (the FOCUS format), not usage; "
                "ingest /v1/organization/usage/completions pages here",
                path=str(path),
            )
        unsupported = sorted(str(k) for k in kinds if k not in OPERATIONS)
        if unsupported:
            raise IngestError(
                f"unsupported usage result type(s) {unsupported}; this format reads token usage: {sorted(OPERATIONS)}",
                path=str(path),
            )
        return [r[0] for r in con.execute("DESCRIBE _stage").fetchall()]

    def mappings(self, columns: list[str], path: Path) -> list[Mapping]:
        def field(name: str) -> str:
            return f"(s.result->>'$.{name}')"

        key = ", ".join(["s.bucket_start_time", "s.bucket_end_time", field("object"), *map(field, GROUP_KEYS)])
        operation = "CASE " + " ".join(f"WHEN {field('object')} = '{k}' THEN '{v}'" for k, v in OPERATIONS.items())
        removed = ", ".join(f'"{k}": null' for k in MAPPED)
        mapped = {
            "request_id": f"'openai-usage:' || md5(CAST(json_array({key}) AS VARCHAR))",
            "ts": "to_timestamp(s.bucket_start_time)",
            "tenant": field("project_id"),
            "user_id": field("user_id"),
            "provider": "'openai'",
            "model": field("model"),
            "operation": operation + " END",
            "input_tokens": field("input_tokens"),
            "cache_read_tokens": field("input_cached_tokens"),
            "cache_write_tokens": field("input_cache_write_tokens"),
            "output_tokens": f"COALESCE({field('output_tokens')}, '0')",
            "status": "'ok'",
            "serving": "'api'",
            "priority": f"CASE WHEN {field('batch')} = 'true' THEN 'batch' END",
            "attributes": f"json_merge_patch(json_merge_patch(s.result, '{{{removed}}}'), json_object("
            "'aggregate', true, 'bucket_start_time', s.bucket_start_time, 'bucket_end_time', s.bucket_end_time))",
        }
        return [Mapping(USAGE, mapped)]

"""LiteLLM proxy spend logs (the ``LiteLLM_SpendLogs`` table) as usage rows.

Reads a CSV export of the table, or the JSON of ``GET /spend/logs`` (a list of rows)
and ``GET /spend/logs/v2`` (pages ``{"data": [...]}``), or JSONL. Field names follow
LiteLLM's ``schema.prisma`` and ``spend_tracking_utils.get_logging_payload``; the
mapping and the decisions are in docs/formats/litellm.md.

The SQL helpers it shares with the Langfuse format live in :mod:`unitcost.ingest.applog`.
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
from unitcost.ingest.base import Adapter, Mapping
from unitcost.ingest.registry import register
from unitcost.schema import USAGE

#: Prompt and response bodies: not cost data, and often personal data; never copied into attributes.
CONTENT_COLUMNS = ("messages", "response", "proxy_server_request")
#: Bulky or duplicate metadata keys left out of attributes.
DROPPED_METADATA = ("model_map_information", "usage_object")


@register
class LiteLLMAdapter(Adapter):
    """LiteLLM proxy ``LiteLLM_SpendLogs`` rows: one row per proxied model call."""

    name = "litellm"
    description = "LiteLLM proxy spend logs (LiteLLM_SpendLogs CSV export, /spend/logs JSON, JSONL)"

    temp_tables: ClassVar[tuple[str, ...]] = WORKING_TABLES

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
        columns = stage_records(self, con, path)
        missing = [c for c in ("request_id", "startTime", "model") if c not in columns]
        if missing:
            raise IngestError(
                f"not LiteLLM spend logs: missing column(s) {missing}; found {columns[:12]}", path=str(path)
            )
        normalize(con, columns, ("metadata", "request_tags"))
        register_models(con, self._hint(columns), text_of(columns, "model"))
        return columns

    @staticmethod
    def _hint(columns: list[str]) -> str:
        return f"NULLIF({text_of(columns, 'custom_llm_provider')}, '')"

    def mappings(self, columns: list[str], path: Path) -> list[Mapping]:
        def col(name: str) -> str:
            return text_of(columns, name)

        meta = "s.metadata" if "metadata" in columns else "CAST(NULL AS JSON)"  # parsed by stage()

        def m(key: str) -> str:
            return f"NULLIF(json_extract_string({meta}, '$.{key}'), '')"

        extra_usage = "additional_usage_values"
        tags = f"COALESCE({'s.request_tags' if 'request_tags' in columns else 'NULL'}, {meta}->'$.tags')"
        plain_tag = f"list_filter(TRY_CAST({tags} AS VARCHAR[]), t -> strpos(t, ':') = 0)[1]"
        hint, raw_model = self._hint(columns), col("model")
        status = f"lower(COALESCE(NULLIF({col('status')}, ''), {m('status')}))"
        call_type = f"lower({col('call_type')})"
        dropped = ", ".join(f'"{k}": null' for k in DROPPED_METADATA)
        mapped = {
            "request_id": col("request_id"),
            "ts": col("startTime"),
            "trace_id": col("session_id"),
            "tenant": f"COALESCE({tag_value(tags, 'tenant')}, {m('user_api_key_team_alias')}, "
            f"NULLIF({col('team_id')}, ''), {m('user_api_key_team_id')})",
            "feature": f"COALESCE({tag_value(tags, 'feature')}, {plain_tag})",
            "workflow": tag_value(tags, "workflow"),
            "user_id": f"COALESCE(NULLIF({col('end_user')}, ''), {m('user_api_key_end_user_id')})",
            "provider": looked_up("provider", hint, raw_model),
            "model": looked_up("model", hint, raw_model),
            "operation": f"CASE WHEN {call_type} LIKE '%embedding%' THEN 'embeddings' "
            f"WHEN {call_type} LIKE '%text_completion%' THEN 'text_completion' "
            f"WHEN regexp_matches({call_type}, 'completion|responses|messages') THEN 'chat' "
            f"WHEN {call_type} LIKE '%rerank%' THEN 'rerank' ELSE NULLIF({call_type}, '') END",
            "input_tokens": col("prompt_tokens"),
            "cache_read_tokens": f"COALESCE({m(extra_usage + '.prompt_tokens_details.cached_tokens')}, "
            f"{m(extra_usage + '.cache_read_input_tokens')})",
            "cache_write_tokens": m(extra_usage + ".cache_creation_input_tokens"),
            "output_tokens": col("completion_tokens"),
            "reasoning_tokens": m(extra_usage + ".completion_tokens_details.reasoning_tokens"),
            "latency_ms": ms_between(col("startTime"), col("endTime")),
            "ttft_ms": ms_between(col("startTime"), col("completionStartTime")),
            "status": f"CASE {status} WHEN 'success' THEN 'ok' WHEN 'failure' THEN 'error' ELSE {status} END",
            "response_cache_hit": f"CASE lower({col('cache_hit')}) WHEN 'true' THEN 'true' "
            f"WHEN 'false' THEN 'false' END",
            "reported_cost_usd": col("spend"),
            "attributes": f"json_merge_patch(COALESCE(json_merge_patch({meta}, '{{{dropped}}}'), '{{}}'), "
            f"json_object('request_tags', {tags}))",
        }
        consumed = {"request_id", "startTime", "session_id", "end_user", "model", "prompt_tokens", "spend"}
        consumed |= {"completion_tokens", "status", "cache_hit", "metadata", "request_tags", *CONTENT_COLUMNS}
        # not model calls: file and batch management, MCP tool calls (no model, no tokens, no spend)
        where = (
            f"NOT (COALESCE({raw_model}, '') = '' AND COALESCE(TRY_CAST({col('total_tokens')} AS DOUBLE), 0) = 0 "
            f"AND COALESCE(TRY_CAST({col('spend')} AS DOUBLE), 0) = 0)"
        )
        extra = tuple(c for c in columns if c not in consumed)
        assert set(mapped) <= set(USAGE.column_names)
        return [Mapping(USAGE, mapped, where=where, extra=extra)]

"""The canonical tables: every column, its type, unit and meaning, declared once.

The DDL, the ingestion validation and docs/schema.md all follow from these
declarations (a test fails when the docs miss a column).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    sql_type: str
    description: str
    required: bool = False
    unit: str = ""


@dataclass(frozen=True)
class Table:
    """A canonical table: its name, columns and the key that makes a row unique."""

    name: str
    columns: tuple[Column, ...]
    key: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def input_columns(self) -> tuple[Column, ...]:
        """The columns an input file can carry (internal columns are computed by unitcost)."""
        return tuple(c for c in self.columns if c.name not in INTERNAL_COLUMNS)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def ddl(self) -> str:
        """Return the CREATE TABLE statement for this table.

        >>> OUTCOMES.ddl().splitlines()[0]
        'CREATE TABLE IF NOT EXISTS outcomes ('
        """
        cols = ",\n".join(f"  {c.name} {c.sql_type}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n{cols}\n)"


USAGE = Table(
    "usage",
    (
        Column("ts", "TIMESTAMP", "Time the model call started, UTC.", required=True),
        Column("request_id", "VARCHAR", "Unique id of the model call; the dedupe key.", required=True),
        Column(
            "trace_id",
            "VARCHAR",
            "The unit of work this call belongs to (a ticket, a workflow run). Empty: the call is "
            "its own unit of work.",
        ),
        Column("tenant", "VARCHAR", "Customer or internal team the call served."),
        Column("feature", "VARCHAR", "Product feature (e.g. support-bot)."),
        Column("workflow", "VARCHAR", "Workflow or step name inside the feature."),
        Column("user_id", "VARCHAR", "End user, if known."),
        Column("environment", "VARCHAR", "Deployment environment (production, staging, ...)."),
        Column("region", "VARCHAR", "Cloud or provider region."),
        Column("release", "VARCHAR", "Application release (version) that made the call."),
        Column("prompt_version", "VARCHAR", "Version of the prompt template used."),
        Column("provider", "VARCHAR", "Model provider as genai-prices names it (openai, anthropic, ...).", True),
        Column("model", "VARCHAR", "Model name as the provider reports it.", required=True),
        Column("operation", "VARCHAR", "chat, embeddings, rerank, ... (gen_ai.operation.name)."),
        Column(
            "input_tokens",
            "BIGINT",
            "ALL input tokens, cached ones included (OpenTelemetry GenAI gen_ai.usage.input_tokens).",
            unit="tokens",
        ),
        Column(
            "cache_read_tokens",
            "BIGINT",
            "Input tokens read from the provider's prompt cache.",
            unit="tokens",
        ),
        Column(
            "cache_write_tokens",
            "BIGINT",
            "Input tokens written to the provider's prompt cache.",
            unit="tokens",
        ),
        Column("output_tokens", "BIGINT", "ALL output tokens, reasoning tokens included.", unit="tokens"),
        Column(
            "reasoning_tokens",
            "BIGINT",
            "Output tokens spent on reasoning (part of output_tokens).",
            unit="tokens",
        ),
        Column("latency_ms", "DOUBLE", "End-to-end latency of the call.", unit="ms"),
        Column("ttft_ms", "DOUBLE", "Time to first token.", unit="ms"),
        Column("status", "VARCHAR", "ok or error."),
        Column("attempt", "INTEGER", "1 for the first try, 2 for the first retry, ..."),
        Column(
            "response_cache_hit",
            "BOOLEAN",
            "Answered from an application response cache: no model call was made, so no token cost.",
        ),
        Column("serving", "VARCHAR", "api, or the name of the self-hosted GPU pool that served the call."),
        Column("priority", "VARCHAR", "Priority or traffic class (interactive, batch, ...)."),
        Column("gpu_seconds", "DOUBLE", "GPU time the call used on a self-hosted pool.", unit="s"),
        Column(
            "reported_cost_usd",
            "DOUBLE",
            "Cost the source itself reported, if any (kept, not trusted).",
            unit="USD",
        ),
        Column("attributes", "JSON", "Anything else, as a JSON object."),
        Column(
            "unit_id",
            "BIGINT",
            "Internal: dense id of the unit of work (trace_id, else request_id), assigned at ingestion "
            "from the unit_keys table so reports group on an integer.",
        ),
    ),
    key="request_id",
)

UNIT_KEYS = Table(
    "unit_keys",
    (
        Column("unit_key", "VARCHAR", "trace_id, or request_id for a request without one."),
        Column("unit_id", "BIGINT", "Dense integer id used by usage.unit_id."),
    ),
    key="unit_key",
)

OUTCOMES = Table(
    "outcomes",
    (
        Column("trace_id", "VARCHAR", "The unit of work (matches usage.trace_id, or usage.request_id).", True),
        Column("ts", "TIMESTAMP", "When the outcome was known, UTC.", required=True),
        Column("tenant", "VARCHAR", "Tenant of the unit of work."),
        Column("feature", "VARCHAR", "Feature of the unit of work."),
        Column("workflow", "VARCHAR", "Workflow of the unit of work."),
        Column("use_case", "VARCHAR", "Business use case (e.g. resolved support ticket)."),
        Column("outcome", "VARCHAR", "success, failure, escalated or abandoned.", required=True),
        Column("value_usd", "DOUBLE", "Business value of the outcome, if known.", unit="USD"),
        Column("attributes", "JSON", "Anything else, as a JSON object (input columns outside the schema land here)."),
    ),
    key="trace_id",
)

QUARANTINE = Table(
    "quarantine",
    (
        Column("quarantined_at", "TIMESTAMP", "When the row was set aside, UTC."),
        Column("target_table", "VARCHAR", "The table the row was meant for (usage, outcomes)."),
        Column("source_file", "VARCHAR", "The file the row came from."),
        Column("sha256", "VARCHAR", "Checksum of that file (a re-ingested file is not quarantined twice)."),
        Column("record", "BIGINT", "1-based record number in the file (for CSV: data row; line = record + 1)."),
        Column("field", "VARCHAR", "The first field that failed validation."),
        Column("reason", "VARCHAR", "Why the row cannot be used."),
        Column("raw", "JSON", "The row as read, every field as text."),
    ),
)

INGEST_LOG = Table(
    "ingest_log",
    (
        Column("ingested_at", "TIMESTAMP", "When the file was ingested, UTC."),
        Column("target_table", "VARCHAR", "The table the rows went to (usage, outcomes, ...)."),
        Column("format", "VARCHAR", "Source format (usage, outcomes, otlp, litellm, ...)."),
        Column("source_file", "VARCHAR", "Path of the file as given."),
        Column("sha256", "VARCHAR", "Checksum of the file's bytes."),
        Column("rows_read", "BIGINT", "Records read from the file."),
        Column("rows_landed", "BIGINT", "Records stored."),
        Column("rows_quarantined", "BIGINT", "Records set aside in quarantine."),
        Column("duplicates_skipped", "BIGINT", "Records whose key was already stored (or repeated in the file)."),
        Column(
            "rows_ignored", "BIGINT", "Records not meant for this table (e.g. OTLP spans that are not model calls)."
        ),
    ),
)

TABLES: tuple[Table, ...] = (USAGE, OUTCOMES, QUARANTINE, INGEST_LOG, UNIT_KEYS)

#: Columns computed by unitcost, never read from input files.
INTERNAL_COLUMNS = ("unit_id",)

STATUSES = ("ok", "error")
OUTCOME_VALUES = ("success", "failure", "escalated", "abandoned")
TOKEN_COLUMNS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)

#: Dimensions a report can be broken down by (all are usage columns).
DIMENSIONS = (
    "tenant",
    "feature",
    "workflow",
    "model",
    "provider",
    "release",
    "prompt_version",
    "user_id",
    "environment",
    "region",
    "operation",
    "serving",
)

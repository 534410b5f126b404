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
            "egress_bytes",
            "BIGINT",
            "Bytes the call sent out (response payload); the egress_bytes driver of networking cost.",
            unit="bytes",
        ),
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
        Column(
            "row_id",
            "BIGINT",
            "Internal: unique integer of the row, increasing with ingestion order (reports find a unit's last "
            "request by it).",
        ),
        Column(
            "unit_next_ts",
            "TIMESTAMP",
            "Internal: start time of the next request of the same unit of work (requests ordered by ts, then "
            "row_id); NULL for the unit's last request. Kept up to date at ingestion, so a window's units of "
            "work are counted in one pass: a request is its unit's last in [a, b) when unit_next_ts is NULL "
            "or >= b.",
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

USAGE_MODELS = Table(
    "usage_models",
    (
        Column("provider", "VARCHAR", "Provider of the usage rows."),
        Column("model", "VARCHAR", "Model of the usage rows."),
        Column("first_ts", "TIMESTAMP", "Time of the pair's earliest usage row, UTC."),
        Column("last_ts", "TIMESTAMP", "Time of the pair's latest usage row, UTC."),
        Column("requests", "BIGINT", "Usage rows of the pair."),
    ),
    key=None,
)

USAGE_MIXED_UNITS = Table(
    "usage_mixed_units",
    (
        Column("unit_id", "BIGINT", "A unit of work whose requests do not all share one value of the dimension."),
        Column("dimension", "VARCHAR", "The dimension (tenant or feature); NULL and a value count as two values."),
    ),
    key=None,
)

_COMPONENT = {
    "i": "uncached input tokens",
    "r": "cache read tokens",
    "w": "cache write tokens",
    "o": "output tokens that are not reasoning",
    "z": "reasoning tokens",
}
_TOKEN_SUM = "Sum of the usage rows' {} (0 where empty)."

USAGE_HOURLY = Table(
    "usage_hourly",
    (
        Column("hour", "TIMESTAMP", "UTC hour the usage rows started in."),
        Column("feature", "VARCHAR", "Feature of the usage rows."),
        Column("release", "VARCHAR", "Release of the usage rows."),
        Column("prompt_version", "VARCHAR", "Prompt version of the usage rows."),
        Column("provider", "VARCHAR", "Provider of the usage rows."),
        Column("model", "VARCHAR", "Model of the usage rows."),
        Column("cache_hit", "BOOLEAN", "response_cache_hit of the usage rows (NULL counted as false)."),
        Column(
            "band",
            "INTEGER",
            "Input-token band of the rows: how many price-tier thresholds (usage_rollup_bands) their "
            "input_tokens exceed, so any price bracket is a union of bands.",
        ),
        Column("requests", "BIGINT", "Usage rows."),
        Column("first_ts", "TIMESTAMP", "Earliest ts of the rows."),
        Column("last_ts", "TIMESTAMP", "Latest ts of the rows."),
        *(
            Column(c, "BIGINT", _TOKEN_SUM.format(c))
            for c in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
        ),
        Column("input_sq", "DOUBLE", "Sum of input_tokens squared."),
        Column("cache_read_sq", "DOUBLE", "Sum of cache_read_tokens squared."),
        Column("input_cache", "DOUBLE", "Sum of input_tokens x cache_read_tokens."),
        Column("output_sq", "DOUBLE", "Sum of output_tokens squared."),
        Column("retries", "BIGINT", "Rows that are retries (attempt > 1; without attempt, status error)."),
        Column("latency_n", "BIGINT", "Rows with a latency_ms."),
        *(
            Column(f"m_{a}{b}", "DOUBLE", f"Sum of {_COMPONENT[a]} x {_COMPONENT[b]} (price components, per row).")
            for k, a in enumerate(_COMPONENT)
            for b in list(_COMPONENT)[k:]
        ),
    ),
    key=None,
)

USAGE_LATENCY = Table(
    "usage_latency",
    (
        Column("day", "TIMESTAMP", "UTC day the model calls started in."),
        Column("feature", "VARCHAR", "Feature of the model calls (rows without one are left out)."),
        Column("bucket", "INTEGER", "floor(40 x ln(max(latency_ms, 1))): log-spaced buckets 2.5% wide."),
        Column("requests", "BIGINT", "Model calls (not response cache hits) with a latency in the bucket."),
    ),
    key=None,
)

USAGE_ROLLUP_BANDS = Table(
    "usage_rollup_bands",
    (Column("edge", "BIGINT", "An input-token threshold the bands of usage_hourly split at."),),
    key=None,
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

#: FOCUS (FinOps Open Cost and Usage Specification) numeric types: costs and quantities keep 10 decimals, unit
#: prices 16 (metered prices per request, token or byte are tiny). docs/formats/focus.md explains the mapping.
FOCUS_AMOUNT = "DECIMAL(38, 10)"
FOCUS_UNIT_PRICE = "DECIMAL(38, 16)"

BILL_LINES = Table(
    "bill_lines",
    (
        # FOCUS 1.0-1.3 Cost and Usage columns, named exactly as the spec names them, in the spec's (alphabetical)
        # order. Amounts are in BillingCurrency (PricingCurrency* columns: in PricingCurrency); never sum across
        # currencies.
        Column("AllocatedMethodDetails", "JSON", "FOCUS 1.3: how a split cost allocation was computed (JSON object)."),
        Column("AllocatedMethodId", "VARCHAR", "FOCUS 1.3: the method of a provider-calculated split cost allocation."),
        Column("AllocatedResourceId", "VARCHAR", "FOCUS 1.3: the object cost is allocated to in a split allocation."),
        Column("AllocatedResourceName", "VARCHAR", "FOCUS 1.3: display name of AllocatedResourceId."),
        Column("AllocatedTags", "JSON", "FOCUS 1.3: tags that apply to the allocated charge (JSON key-value object)."),
        Column("AvailabilityZone", "VARCHAR", "Provider-assigned isolated area within a region."),
        Column(
            "BilledCost",
            FOCUS_AMOUNT,
            "Cost invoiced for the line: all discounts in, no amortization.",
            True,
            "BillingCurrency",
        ),
        Column("BillingAccountId", "VARCHAR", "Invoice-issuer-assigned id of the billing account.", True),
        Column("BillingAccountName", "VARCHAR", "Display name of the billing account."),
        Column("BillingAccountType", "VARCHAR", "FOCUS 1.2: kind of billing account."),
        Column("BillingCurrency", "VARCHAR", "ISO 4217 currency the line is billed in (stored upper-case).", True),
        Column("BillingPeriodEnd", "TIMESTAMP", "Exclusive end of the billing period, UTC.", True),
        Column("BillingPeriodStart", "TIMESTAMP", "Inclusive start of the billing period, UTC.", True),
        Column("CapacityReservationId", "VARCHAR", "FOCUS 1.1: capacity reservation the charge relates to."),
        Column("CapacityReservationStatus", "VARCHAR", "FOCUS 1.1: Used or Unused (capacity reservation)."),
        Column("ChargeCategory", "VARCHAR", "Usage, Purchase, Tax, Credit or Adjustment.", True),
        Column("ChargeClass", "VARCHAR", "Correction when the line corrects a previously invoiced billing period."),
        Column("ChargeDescription", "VARCHAR", "Self-contained summary of the charge's purpose and price."),
        Column("ChargeFrequency", "VARCHAR", "One-Time, Recurring or Usage-Based."),
        Column("ChargePeriodEnd", "TIMESTAMP", "Exclusive end of the period the charge covers, UTC.", True),
        Column("ChargePeriodStart", "TIMESTAMP", "Inclusive start of the period the charge covers, UTC.", True),
        Column("CommitmentDiscountCategory", "VARCHAR", "Spend or Usage (commitment discount)."),
        Column("CommitmentDiscountId", "VARCHAR", "Commitment discount (reservation, savings plan, ...) applied."),
        Column("CommitmentDiscountName", "VARCHAR", "Display name of the commitment discount."),
        Column(
            "CommitmentDiscountQuantity",
            FOCUS_AMOUNT,
            "FOCUS 1.1: commitment purchased or consumed by the line.",
            unit="CommitmentDiscountUnit",
        ),
        Column("CommitmentDiscountStatus", "VARCHAR", "Used or Unused (commitment discount)."),
        Column("CommitmentDiscountType", "VARCHAR", "Provider label for the kind of commitment discount."),
        Column("CommitmentDiscountUnit", "VARCHAR", "FOCUS 1.1: unit of CommitmentDiscountQuantity."),
        Column("ConsumedQuantity", FOCUS_AMOUNT, "Volume of the metered SKU used.", unit="ConsumedUnit"),
        Column("ConsumedUnit", "VARCHAR", "Unit of ConsumedQuantity."),
        Column("ContractApplied", "JSON", "FOCUS 1.3: the contract commitments the charge applies to (JSON object)."),
        Column("ContractedCost", FOCUS_AMOUNT, "ContractedUnitPrice x PricingQuantity.", True, "BillingCurrency"),
        Column(
            "ContractedUnitPrice",
            FOCUS_UNIT_PRICE,
            "Agreed unit price (negotiated discounts in, commitment discounts out).",
            unit="BillingCurrency",
        ),
        Column(
            "EffectiveCost",
            FOCUS_AMOUNT,
            "Amortized cost after all discounts and prepaid purchases.",
            True,
            "BillingCurrency",
        ),
        Column("HostProviderName", "VARCHAR", "FOCUS 1.3: entity whose infrastructure hosts the service."),
        Column("InvoiceId", "VARCHAR", "FOCUS 1.2: invoice the charge is on."),
        Column("InvoiceIssuerName", "VARCHAR", "Entity that issues the invoice."),
        Column("ListCost", FOCUS_AMOUNT, "ListUnitPrice x PricingQuantity.", True, "BillingCurrency"),
        Column("ListUnitPrice", FOCUS_UNIT_PRICE, "Published unit price, no discounts.", unit="BillingCurrency"),
        Column("PricingCategory", "VARCHAR", "Standard, Dynamic, Committed or Other."),
        Column("PricingCurrency", "VARCHAR", "FOCUS 1.2: national or virtual currency the SKU is priced in."),
        Column(
            "PricingCurrencyContractedUnitPrice",
            FOCUS_UNIT_PRICE,
            "FOCUS 1.2: ContractedUnitPrice in PricingCurrency.",
            unit="PricingCurrency",
        ),
        Column(
            "PricingCurrencyEffectiveCost",
            FOCUS_AMOUNT,
            "FOCUS 1.2: EffectiveCost in PricingCurrency.",
            unit="PricingCurrency",
        ),
        Column(
            "PricingCurrencyListUnitPrice",
            FOCUS_UNIT_PRICE,
            "FOCUS 1.2: ListUnitPrice in PricingCurrency.",
            unit="PricingCurrency",
        ),
        Column("PricingQuantity", FOCUS_AMOUNT, "Volume of the SKU priced, in PricingUnit.", unit="PricingUnit"),
        Column("PricingUnit", "VARCHAR", "Unit the SKU is priced in."),
        Column("ProviderName", "VARCHAR", "Entity that made the service available (deprecated in 1.3)."),
        Column("PublisherName", "VARCHAR", "Entity that produced the service (deprecated in 1.3)."),
        Column("RegionId", "VARCHAR", "Provider-assigned id of the region."),
        Column("RegionName", "VARCHAR", "Name of the region."),
        Column("ResourceId", "VARCHAR", "Provider-assigned id of the resource charged."),
        Column("ResourceName", "VARCHAR", "Display name of the resource."),
        Column("ResourceType", "VARCHAR", "Kind of resource (virtual machine, ...)."),
        Column("ServiceCategory", "VARCHAR", "Highest-level classification of the service (Compute, AI and ...)."),
        Column("ServiceName", "VARCHAR", "The offering purchased."),
        Column("ServiceProviderName", "VARCHAR", "FOCUS 1.3: entity that made the service available."),
        Column("ServiceSubcategory", "VARCHAR", "FOCUS 1.1: secondary classification of the service."),
        Column("SkuId", "VARCHAR", "Provider-assigned id of the SKU."),
        Column("SkuMeter", "VARCHAR", "FOCUS 1.1: what the SKU measures."),
        Column("SkuPriceDetails", "JSON", "FOCUS 1.1: properties of the SKU price (JSON key-value object)."),
        Column("SkuPriceId", "VARCHAR", "Provider-assigned id of the SKU price."),
        Column("SubAccountId", "VARCHAR", "Sub account (AWS account, Azure subscription, GCP project)."),
        Column("SubAccountName", "VARCHAR", "Display name of the sub account."),
        Column("SubAccountType", "VARCHAR", "FOCUS 1.2: kind of sub account."),
        Column("Tags", "JSON", "Tags of the resource or charge (JSON key-value object)."),
        # added by unitcost
        Column("attributes", "JSON", "Custom x_ columns and any other non-FOCUS column of the file, by name."),
        Column("focus_version", "VARCHAR", "FOCUS version detected from the file's columns (1.0, 1.1, 1.2 or 1.3)."),
        Column("source_file", "VARCHAR", "The file the line was first read from."),
        Column(
            "row_hash",
            "VARCHAR",
            "MD5 of the line's FOCUS values as written (and, for a repeat within its file, its number); dedupe key.",
        ),
    ),
    key="row_hash",
)

OPS_HOURS = Table(
    "ops_hours",
    (
        Column("date", "DATE", "Day the work was done.", required=True),
        Column(
            "activity",
            "VARCHAR",
            "What the time went to: on-call, incident, release, evaluation, prompt-tuning, ...",
            required=True,
        ),
        Column("hours", "DOUBLE", "Hours spent.", required=True, unit="h"),
        Column(
            "hourly_rate_usd", "DOUBLE", "Loaded hourly cost; when empty, the role's rate from config.", unit="USD/h"
        ),
        Column("role", "VARCHAR", "Role of the person (looked up in people.rates when no hourly rate is given)."),
        Column("person", "VARCHAR", "Who did the work (optional)."),
        Column("feature", "VARCHAR", "Feature the work was for, if any (else shared)."),
        Column("tenant", "VARCHAR", "Tenant the work was for, if any (else shared)."),
        Column("release", "VARCHAR", "Release the work belongs to, if any."),
        Column("attributes", "JSON", "Anything else, as a JSON object."),
        Column("row_hash", "VARCHAR", "Stable hash of the record: re-ingesting the same file never double counts."),
    ),
    key="row_hash",
)

ALERTS = Table(
    "alerts",
    (
        Column("alert_key", "VARCHAR", "Identity of the alert: its rule and scope; one open alert per key."),
        Column("rule", "VARCHAR", "Rule that raised it, e.g. budget:monthly-total, anomaly:day, drift:cache_hit_rate."),
        Column("kind", "VARCHAR", "budget, anomaly, drift or deployment_regression."),
        Column("scope", "JSON", 'The dimension values it concerns, e.g. {"feature": "support-bot"}; {} for all.'),
        Column("status", "VARCHAR", "firing while the condition lasts, then resolved."),
        Column("started_at", "TIMESTAMP", "When the condition began (data time, UTC)."),
        Column("updated_at", "TIMESTAMP", "Data time of the last evaluation that saw it (UTC)."),
        Column("resolved_at", "TIMESTAMP", "Data time of the first evaluation that no longer saw it (UTC)."),
        Column(
            "impact_usd_per_month", "DOUBLE", "Estimated monthly cost impact, where it can be estimated.", unit="USD"
        ),
        Column("message", "VARCHAR", "One plain-language sentence."),
        Column("details", "JSON", "Rule-specific figures (expected, actual, CI, contributions, ...)."),
    ),
    key="alert_key",
)

TABLES: tuple[Table, ...] = (
    USAGE,
    OUTCOMES,
    QUARANTINE,
    INGEST_LOG,
    UNIT_KEYS,
    USAGE_MODELS,
    USAGE_MIXED_UNITS,
    USAGE_HOURLY,
    USAGE_LATENCY,
    USAGE_ROLLUP_BANDS,
    BILL_LINES,
    OPS_HOURS,
    ALERTS,
)

#: Columns computed by unitcost, never read from input files.
INTERNAL_COLUMNS = ("unit_id", "row_id", "unit_next_ts")

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

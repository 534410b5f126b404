"""Which cost-stack layer each bill line belongs to: rules over FOCUS columns, first match wins.

The user's rules (``layers.rules`` in unitcost.yaml) come first, then the shipped defaults
below, which classify common AWS, Azure and GCP services and the AI providers; what no rule
catches is ``other``. ``unitcost layers explain`` shows which rule caught which lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from unitcost.config import Config, LayerRule
from unitcost.ingest.base import quote_ident, sql_literal
from unitcost.store import Store

_AI = r"re:openai|anthropic|bedrock|vertex ai|gemini|cognitive services|azure ai|mistral|cohere|groq|together"
_GPU = r"re:\b(p3|p4d|p4de|p5|p5e|p5en|g4dn|g5|g6|g6e|gr6|trn1|inf2)\.|\b(a2|a3|g2)-|standard_n[cdv]|gpu|nvidia"
_VECTOR = r"re:opensearch|pinecone|ai search|cognitive search|vector|elasticsearch|qdrant|weaviate|kendra|alloydb ai"

#: Shipped defaults, in order (documented in docs/cost-stack.md).
DEFAULT_RULES: tuple[LayerRule, ...] = tuple(
    LayerRule.model_validate(r)
    for r in (
        {
            "name": "ai-providers",
            "layer": "model_api",
            "match": {"ProviderName": _AI, "ServiceCategory": "re:ai|machine"},
        },
        {"name": "ai-services", "layer": "model_api", "match": {"ServiceName": r"re:bedrock|openai|vertex ai|gemini"}},
        {"name": "gpu-services", "layer": "gpu_compute", "match": {"ServiceName": _GPU}},
        {"name": "gpu-instances", "layer": "gpu_compute", "match": {"SkuId": _GPU}},
        {"name": "gpu-charges", "layer": "gpu_compute", "match": {"ChargeDescription": _GPU}},
        {"name": "gpu-resources", "layer": "gpu_compute", "match": {"ResourceType": _GPU}},
        {"name": "gpu-meters", "layer": "gpu_compute", "match": {"SkuMeter": _GPU}},
        {"name": "vector-search", "layer": "retrieval", "match": {"ServiceName": _VECTOR}},
        {
            "name": "observability",
            "layer": "observability",
            "match": {
                "ServiceName": r"re:cloudwatch|monitor|logging|log analytics|application insights|x-ray|datadog"
                r"|cloud trace|managed prometheus|grafana"
            },
        },
        {
            "name": "orchestration",
            "layer": "orchestration",
            "match": {
                "ServiceName": r"re:kubernetes|eks|aks|gke|sqs|sns|step functions|api gateway|service bus"
                r"|pub/sub|cloud run|lambda|functions|event ?bridge|api management"
            },
        },
        {"name": "networking", "layer": "networking", "match": {"ServiceCategory": "Networking"}},
        {
            "name": "data-transfer",
            "layer": "networking",
            "match": {"ChargeDescription": r"re:data transfer|egress|bandwidth|nat gateway|load balanc"},
        },
        {"name": "storage", "layer": "storage", "match": {"ServiceCategory": "Storage"}},
        {"name": "databases", "layer": "storage", "match": {"ServiceCategory": "Databases"}},
    )
)


def rules_in_force(config: Config) -> list[LayerRule]:
    """The user's rules, then (unless turned off) the shipped defaults."""
    return list(config.layers.rules) + (list(DEFAULT_RULES) if config.layers.use_default_rules else [])


def _condition(field: str, pattern: str) -> str:
    if field.startswith("Tags."):
        column = f"json_extract_string(Tags, {sql_literal('$.' + field[5:])})"
    else:
        column = quote_ident(field)
    if pattern.startswith("re:"):
        return f"COALESCE(regexp_matches({column}, {sql_literal('(?i)' + pattern[3:])}), false)"
    return f"COALESCE({column} = {sql_literal(pattern)}, false)"


def rule_label(rule: LayerRule, index: int) -> str:
    return rule.name or f"rule {index + 1}"


def classify_sql(config: Config) -> tuple[str, str]:
    """SQL expressions over a bill line: (its layer, the name of the rule that caught it)."""
    rules = rules_in_force(config)
    if not rules:
        return "'other'", "'(no rule)'"
    whens = [(" AND ".join(_condition(f, p) for f, p in r.match.items()), r, i) for i, r in enumerate(rules)]
    layer = "CASE " + " ".join(f"WHEN {c} THEN {sql_literal(r.layer)}" for c, r, _ in whens) + " ELSE 'other' END"
    name = (
        "CASE "
        + " ".join(f"WHEN {c} THEN {sql_literal(rule_label(r, i))}" for c, r, i in whens)
        + " ELSE '(no rule: other)' END"
    )
    return layer, name


@dataclass(frozen=True)
class RuleHit:
    """What one rule caught: lines and cost per currency."""

    rule: str
    layer: str
    lines: int
    cost: Decimal
    currency: str | None


def explain_layers(store: Store, config: Config) -> list[RuleHit]:
    """Return, per rule that caught lines (and for what fell to ``other``), lines and cost by currency."""
    layer, name = classify_sql(config)
    cost = quote_ident(config.layers.cost_column)
    rows = store.sql(
        f"""SELECT {name} AS rule, {layer} AS layer, count(*) AS lines, sum({cost}) AS cost, BillingCurrency
            FROM bill_lines GROUP BY ALL ORDER BY layer, cost DESC NULLS LAST"""
    )
    return [RuleHit(r[0], r[1], int(r[2]), Decimal(r[3] or 0), r[4]) for r in rows]

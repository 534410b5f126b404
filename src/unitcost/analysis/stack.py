"""The fully loaded cost stack: every dollar of the bill allocated to a key, exactly once.

For one dimension (tenant, feature or workflow) and a period:

1. Bill lines (``bill_lines``, FOCUS) in the period are classified into layers
   (:mod:`unitcost.ledger.layers`) and converted to USD with ``currency_rates``; a
   currency without a rate is an error, never summed blindly.
2. A line tagged with the dimension (``allocation.tag_keys``) goes straight to that key.
3. Untagged (shared) cost of each layer is split by the layer's driver
   (``allocation.drivers``: token_cost, tokens, requests, gpu_seconds,
   successful_outcomes or even) measured from usage in the same period. For
   ``model_api``, each provider's billed amount is split by the price-computed cost of
   that provider's requests: the bill is the source of truth for the total.
4. Providers with no bill lines keep their telemetry-computed token cost (basis
   ``telemetry``), so nothing is counted twice.

All amounts are integer micro-dollars while allocating (largest remainder), so each
layer's parts plus its unallocated remainder equal the layer's total exactly.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ibis

from unitcost.analysis.economics import _check_dimensions, _drop, _Scan, _scan
from unitcost.config import DRIVERS, Config
from unitcost.errors import CurrencyError
from unitcost.ingest.base import quote_ident, sql_literal
from unitcost.ledger.allocation import allocate, from_micros, split_exact, to_micros
from unitcost.ledger.layers import classify_sql
from unitcost.ledger.people import people_costs
from unitcost.store import Store

#: bill provider -> usage provider id (genai-prices ids), by regex over ProviderName / ServiceName
#: drivers that many sources do not record; when a period has none of them, shared cost is split by requests
OPTIONAL_DRIVERS = ("egress_bytes", "retrieval_queries", "gpu_seconds")

BILL_PROVIDER_SQL = """CASE
  WHEN regexp_matches(lower(COALESCE(ServiceName, '')), 'bedrock') THEN 'aws'
  WHEN regexp_matches(lower(COALESCE(ServiceName, '')), 'azure openai|cognitive') THEN 'azure'
  WHEN regexp_matches(lower(COALESCE(ServiceName, '') || ' ' || COALESCE(ProviderName, '')), 'vertex|gemini')
    THEN 'google'
  WHEN regexp_matches(lower(COALESCE(ProviderName, '')), 'openai') THEN 'openai'
  WHEN regexp_matches(lower(COALESCE(ProviderName, '')), 'anthropic') THEN 'anthropic'
  ELSE lower(COALESCE(ProviderName, '')) END"""


@dataclass(frozen=True)
class StackRow:
    """Cost of one layer allocated to one key, and how it got there."""

    layer: str
    key: str | None
    cost_usd: Decimal
    basis: str  # "bill: tag", "bill: <driver>", "telemetry"


@dataclass
class CostStack:
    """The allocated stack for one dimension and period."""

    dimension: str
    rows: list[StackRow] = field(default_factory=list)
    layer_totals_usd: dict[str, Decimal] = field(default_factory=dict)
    unallocated_usd: dict[str, Decimal] = field(default_factory=dict)
    #: per GPU pool: cost of its unused capacity, reported apart unless ``share_idle``
    idle_usd: dict[str, Decimal] = field(default_factory=dict)
    #: model_api basis per provider: "bill" (its invoice lines) or "telemetry" (tokens x prices)
    provider_basis: dict[str, str] = field(default_factory=dict)
    #: per GPU pool: GPU-hours used by requests and GPU-hours available
    pool_hours: dict[str, tuple[float, float | None]] = field(default_factory=dict)

    def by_key(self) -> dict[str | None, dict[str, Decimal]]:
        """Cost per key and layer."""
        out: dict[str | None, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for r in self.rows:
            out[r.key][r.layer] += r.cost_usd
        return {k: dict(v) for k, v in out.items()}

    def layer_basis(self) -> dict[str, list[str]]:
        """For each layer, how its cost got to keys: tags, drivers, telemetry, idle, unallocated."""
        out: dict[str, set[str]] = defaultdict(set)
        for r in self.rows:
            out[r.layer].add(r.basis)
        if self.idle_usd:
            out["gpu_compute"].add("idle")
        for layer in self.unallocated_usd:
            out[layer].add("unallocated")
        return {k: sorted(v) for k, v in sorted(out.items())}

    def total_usd(self) -> Decimal:
        return sum(self.layer_totals_usd.values(), Decimal(0))

    def to_json(self) -> dict[str, Any]:
        """A JSON document: layer totals, unallocated, and per key the cost of each layer."""
        return {
            "dimension": self.dimension,
            "currency": "USD",
            "total_cost_usd": float(self.total_usd()),
            "layers": {k: float(v) for k, v in sorted(self.layer_totals_usd.items())},
            "unallocated_usd": {k: float(v) for k, v in sorted(self.unallocated_usd.items())},
            "idle_usd": {k: float(v) for k, v in sorted(self.idle_usd.items())},
            "model_api_basis": dict(sorted(self.provider_basis.items())),
            "rows": [
                {"layer": r.layer, "key": r.key, "cost_usd": float(r.cost_usd), "basis": r.basis} for r in self.rows
            ],
        }


def _bill(
    store: Store, config: Config, start: dt.datetime | None, end: dt.datetime | None, by: str | None
) -> list[tuple[Any, ...]]:
    layer, _ = classify_sql(config)
    tags = config.allocation.tag_keys.get(by, []) if by else []
    tag = (
        "COALESCE(" + ", ".join(f"json_extract_string(Tags, {sql_literal('$.' + t)})" for t in tags) + ")"
        if tags
        else "NULL"
    )
    cost = quote_ident(config.layers.cost_column)
    pool_whens = [
        " AND ".join(
            f"json_extract_string(Tags, {sql_literal('$.' + k)}) = {sql_literal(v)}" for k, v in p.tags().items()
        )
        for p in config.pools
    ]
    pool = (
        "CASE "
        + " ".join(f"WHEN {w} THEN {sql_literal(p.name)}" for w, p in zip(pool_whens, config.pools, strict=True))
        + " END"
        if config.pools
        else "NULL"
    )
    return store.sql(
        f"""SELECT layer, tag, provider, currency, sum(amount), count(*), pool, sum(instance_hours) FROM (
              SELECT {layer} AS layer, {tag} AS tag, {BILL_PROVIDER_SQL} AS provider, BillingCurrency AS currency,
                     {cost} AS amount, CASE WHEN {layer} = 'gpu_compute' THEN {pool} END AS pool,
                     CASE WHEN ChargeCategory = 'Usage' AND lower(ConsumedUnit) LIKE 'hour%'
                          THEN ConsumedQuantity END AS instance_hours
              FROM bill_lines {_bill_where(start, end)})
            GROUP BY layer, tag, provider, currency, pool"""
    )


def _people(
    store: Store, config: Config, start: dt.datetime | None, end: dt.datetime | None, by: str | None
) -> list[tuple[str | None, Decimal]]:
    """Labour cost per key of ``by`` (None: not for one key); hours without a rate are left out."""
    # labour records are daily: a day counts when the period starts on or before it and ends after its start
    end_day = None if end is None else end.date() + (dt.timedelta(0) if end.time() == dt.time() else dt.timedelta(1))
    rows = people_costs(store, config, start.date() if start else None, end_day)
    column = by if by in ("feature", "tenant") else None
    out: dict[str | None, Decimal] = defaultdict(Decimal)
    for r in rows.to_pylist():
        out[r[column] if column else None] += Decimal(str(r["cost_usd"]))
    return [(k, v) for k, v in out.items() if v]


def usd_micros(amount: Decimal, currency: str, config: Config) -> int:
    if currency == "USD":
        return to_micros(amount)
    rate = config.currency_rates.get(currency)
    if rate is None:
        raise CurrencyError(
            f"bill lines in {currency} but no exchange rate: add `currency_rates: {{{currency}: <USD per "
            f"{currency}>}}` to unitcost.yaml (amounts in different currencies are never added as they are)"
        )
    return to_micros(amount * Decimal(str(rate)))


def cost_stack(
    store: Store,
    config: Config,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    by: str = "tenant",
) -> CostStack:
    """Allocate the bill (and telemetry-only token cost) of [start, end) to the keys of ``by``."""
    _check_dimensions([by])
    scan = _scan(store, config, start, end, [by], stack_drivers=True)
    try:
        return stack_from_scan(store, config, scan, start, end, by)
    finally:
        _drop(store, scan)


def _period_hours(scan: _Scan, start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    lo = start or scan.first_ts
    hi = end or (scan.last_ts + dt.timedelta(microseconds=1) if scan.last_ts else None)
    return (hi - lo).total_seconds() / 3600 if lo is not None and hi is not None else None


def self_hosted_pools(store: Store, config: Config) -> set[str]:
    """The GPU pools (``usage.serving`` values) the bill or the config knows: their requests are paid by the pool."""
    return {p.name for p in config.pools} | {
        r[0]
        for r in store.sql("SELECT DISTINCT json_extract_string(Tags, '$.pool') FROM bill_lines WHERE Tags IS NOT NULL")
        if r[0]
    }


def has_stack_inputs(store: Store, config: Config, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    """True when the period has bill lines or labour records, or GPU pools are configured."""
    if config.pools:
        return True
    bills = store.sql(f"SELECT count(*) FROM (SELECT 1 FROM bill_lines {_bill_where(start, end)} LIMIT 1)")
    ops = store.sql("SELECT count(*) FROM (SELECT 1 FROM ops_hours LIMIT 1)")
    return bool(bills[0][0]) or bool(ops[0][0])


def _bill_where(start: dt.datetime | None, end: dt.datetime | None) -> str:
    where = []
    if start is not None:
        where.append(f"ChargePeriodStart >= TIMESTAMP '{start.isoformat(sep=' ')}'")
    if end is not None:
        where.append(f"ChargePeriodStart < TIMESTAMP '{end.isoformat(sep=' ')}'")
    return "WHERE " + " AND ".join(where) if where else ""


def stack_from_scan(
    store: Store, config: Config, scan: _Scan, start: dt.datetime | None, end: dt.datetime | None, by: str | None
) -> CostStack:
    """The stack for ``by`` from a report scan whose segments carry the column ``by`` (None: totals only)."""
    bill = _bill(store, config, start, end, by)
    seg = scan.segments
    key_expr = seg[by] if by else ibis.null("string")
    usage = (
        seg.group_by(key=key_expr, provider=seg.provider, serving=seg.serving)
        .aggregate(
            token_cost=seg.cost_usd.sum().fill_null(0),
            tokens=(seg.input_tokens + seg.output_tokens).sum(),
            requests=seg.requests.sum(),
            gpu_seconds=seg.gpu_seconds.sum(),
            retrieval_queries=seg.retrieval_queries.sum(),
            egress_bytes=seg.egress_bytes.sum(),
            successful_outcomes=seg.successful_outcomes.sum(),
        )
        .to_pyarrow()
        .to_pylist()
    )
    self_hosted = self_hosted_pools(store, config)
    weights: dict[str, dict[str | None, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    by_provider: dict[str, dict[str | None, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    by_pool: dict[str, dict[str | None, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for u in usage:
        for driver in DRIVERS:
            if driver in ("even", "fixed"):
                continue
            weights[driver][u["key"]] += Decimal(str(u[driver] or 0))
        weights["even"][u["key"]] = Decimal(1)
        if u["serving"] not in self_hosted:  # a pool's requests are paid through the pool (gpu_compute)
            by_provider[u["provider"]][u["key"]] += Decimal(str(u["token_cost"] or 0))
        if u["serving"]:
            by_pool[u["serving"]][u["key"]] += Decimal(str(u["gpu_seconds"] or 0))

    stack = CostStack(by or "all")
    totals: dict[str, int] = defaultdict(int)
    direct: dict[tuple[str, str | None], int] = defaultdict(int)
    shared: dict[str, int] = defaultdict(int)  # group: layer, "model_api|<provider>" or "pool|<name>"
    pool_cost: dict[str, int] = defaultdict(int)
    billed_providers: set[str] = set()
    pool_instance_hours: dict[str, Decimal] = defaultdict(Decimal)
    for layer, tag, provider, currency, amount, _lines, pool, instance_hours in bill:
        micros = usd_micros(Decimal(amount or 0), currency or "USD", config)
        totals[layer] += micros
        if layer == "model_api":
            billed_providers.add(provider)
        if pool is not None:
            pool_cost[pool] += micros
            pool_instance_hours[pool] += Decimal(instance_hours or 0)
        elif tag is not None:
            direct[(layer, tag)] += micros
        else:
            shared[f"model_api|{provider}" if layer == "model_api" else layer] += micros

    # GPU pools: busy capacity goes to the pool's users by GPU-seconds; idle capacity is reported apart
    hours = _period_hours(scan, start, end)
    idle: dict[str, int] = {}
    for p in config.pools:
        pool_micros = pool_cost.get(p.name, 0)
        hourly = p.hourly_cost()
        if not pool_micros and hourly is not None and hours:
            pool_micros = to_micros(Decimal(str(hourly * hours)))
            totals["gpu_compute"] += pool_micros
        used_h = float(sum(by_pool.get(p.name, {}).values())) / 3600
        gpus = p.gpu_count()
        capacity_h: float | None = gpus * hours if gpus and hours else None
        if capacity_h is None and p.gpus_per_instance and pool_instance_hours.get(p.name):
            capacity_h = float(pool_instance_hours[p.name]) * p.gpus_per_instance
        stack.pool_hours[p.name] = (used_h, capacity_h)
        if not pool_micros:
            continue
        busy, spare = pool_micros, 0
        if capacity_h is not None:
            used = min(Decimal(str(used_h)), Decimal(str(capacity_h)))
            parts = split_exact(pool_micros, [used, Decimal(str(capacity_h)) - used])
            busy, spare = (parts[0], parts[1]) if parts else (0, pool_micros)
        if config.share_idle:
            busy, spare = busy + spare, 0
        shared[f"pool|{p.name}"] += busy
        if spare:
            idle[p.name] = spare

    # people: labour records priced by rate or role; those naming a key of `by` go straight to it
    for key, cost in _people(store, config, start, end, by):
        micros = to_micros(cost)
        totals["people"] += micros
        if key is not None:
            direct[("people", key)] += micros
        else:
            shared["people"] += micros

    drivers: list[tuple[str, str | None, Decimal]] = []
    driver_used: dict[str, str] = {}
    for group in shared:
        if group.startswith("model_api|"):
            source = by_provider.get(group.split("|", 1)[1]) or weights["token_cost"]
            driver_used[group] = "token_cost"
        elif group.startswith("pool|"):
            source = by_pool.get(group.split("|", 1)[1], {})
            driver_used[group] = "gpu_seconds"
        elif config.allocation.drivers.get(group, "requests") == "fixed":
            fixed = config.allocation.fixed_weights.get(group, {})
            source = {key: Decimal(str(w)) for key, w in fixed.items()}
            driver_used[group] = "fixed"
        else:
            driver = config.allocation.drivers.get(group, "requests")
            source = weights[driver]
            driver_used[group] = driver
            if not any(source.values()) and driver in OPTIONAL_DRIVERS and any(weights["requests"].values()):
                # the data does not record this driver (e.g. no egress bytes): split by requests, and say so
                source = weights["requests"]
                driver_used[group] = f"requests (no {driver} in the data)"
        drivers += [(group, key, w) for key, w in source.items()]
    result = allocate(shared, drivers)

    rows: dict[tuple[str, str | None, str], int] = defaultdict(int)
    for (layer, key), micros in direct.items():
        rows[(layer, key, "bill: tag")] += micros
    for (group_id, key_id), micros in result.allocated.items():
        kind = str(group_id).split("|", 1)[0]
        layer_name = "gpu_compute" if kind == "pool" else kind
        rows[(layer_name, None if key_id is None else str(key_id), f"bill: {driver_used[str(group_id)]}")] += micros
    unallocated: dict[str, int] = defaultdict(int)
    for group_id, micros in result.unallocated.items():
        kind = str(group_id).split("|", 1)[0]
        unallocated["gpu_compute" if kind == "pool" else kind] += micros
    # providers with no bill lines: their token cost stands, computed from telemetry and prices
    for provider, keys in by_provider.items():
        if provider in billed_providers:
            continue
        for key, cost in keys.items():
            micros = to_micros(cost)
            rows[("model_api", key, "telemetry")] += micros
            totals["model_api"] += micros
    stack.rows = [
        StackRow(layer, key, from_micros(m), basis)
        for (layer, key, basis), m in sorted(rows.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), kv[0][2]))
    ]
    stack.layer_totals_usd = {layer: from_micros(m) for layer, m in totals.items()}
    stack.unallocated_usd = {layer: from_micros(m) for layer, m in unallocated.items() if m}
    stack.idle_usd = {pool: from_micros(m) for pool, m in idle.items()}
    stack.provider_basis = {p: "bill" for p in billed_providers} | {
        p: "telemetry" for p in by_provider if p not in billed_providers
    }
    return stack

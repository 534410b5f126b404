"""Attribution and unit economics: cost per request, per 1K tokens, per successful outcome.

Definitions (docs/methods.md has the worked example):

* A *unit of work* is a ``trace_id``; a request without one is its own unit.
* A unit *succeeded* when its ``outcomes`` row says ``success``; with no outcome
  row, when its last request (latest ``ts``) has ``status = ok``.
* Cost per successful outcome = cost of every request of the units in scope
  (retries, failed, escalated and abandoned units included) / number of units
  that succeeded.
* Waste = cost of the units that did not succeed + cost of the failed requests
  (``status = error``) inside units that did succeed (the attempts that had to be
  retried).
* For a breakdown key, ``units_of_work`` and ``successful_outcomes`` credit each
  unit to the key of its *last* request (the call that produced the outcome), so
  they add up to the totals; for unit-level dimensions such as tenant or feature
  that is simply the unit's key. Costs and waste go to the key of each request.

How it runs (principle: aggregate on the engine, do the math on the aggregates):

1. one ``GROUP BY unit_id`` gives each unit its last status, last keys and, with
   ``outcomes``, its success;
2. one pass joins requests to their unit's success and sums tokens per
   (breakdown keys, provider, model, price epoch, token bracket, success, error);
3. those sums are priced (cost is linear in tokens inside a segment) and rolled
   up per key. No per-request price join, no Python loop over rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from unitcost.config import Config
from unitcost.errors import UnknownDimensionError
from unitcost.ledger.costs import prices_in_range, usage_in_range
from unitcost.ledger.segments import Segmentation, price_segments, segment_prices, segmentation, token_sums
from unitcost.pricing import PriceTable
from unitcost.schema import DIMENSIONS, TOKEN_COLUMNS
from unitcost.store import Store, rollups
from unitcost.store.functions import last_by

GRAINS = ("hour", "day", "week", "month")
#: operations that count as retrieval queries (the ``retrieval_queries`` allocation driver)
RETRIEVAL_OPERATIONS = ("embeddings", "rerank", "retrieval", "search", "vector_search")
_MONEY = "decimal(38, 9)"


@dataclass(frozen=True)
class BreakdownRow:
    """Cost and outcomes of one key of a dimension."""

    key: str | None
    cost_usd: float
    requests: int
    unpriced_requests: int
    units_of_work: int
    successful_outcomes: int
    cost_per_request_usd: float | None
    cost_per_successful_outcome_usd: float | None
    input_tokens: int
    output_tokens: int
    cached_share: float | None
    waste_usd: float
    #: cost of every layer allocated to this key (model_api alone when there is no bill)
    layers: dict[str, float] = field(default_factory=dict)
    fully_loaded_cost_usd: float | None = None
    fully_loaded_cost_per_request_usd: float | None = None
    fully_loaded_cost_per_successful_outcome_usd: float | None = None


@dataclass(frozen=True)
class UnpricedModel:
    """A (provider, model) with requests that no price covers."""

    provider: str | None
    model: str | None
    requests: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class CostReport:
    """The answer to "what does it cost?" for one period."""

    period_from: dt.datetime | None
    period_to: dt.datetime | None
    first_ts: dt.datetime | None
    last_ts: dt.datetime | None
    currency: str
    requests: int
    priced_requests: int
    units_of_work: int
    successful_outcomes: int
    total_cost_usd: float
    cost_per_request_usd: float | None
    cost_per_1k_tokens_usd: float | None
    cost_per_successful_outcome_usd: float | None
    input_tokens: int
    cache_read_tokens: int
    output_tokens: int
    cached_share: float | None
    response_cache_hits: int
    unpriced_requests: int
    unpriced: list[UnpricedModel]
    waste_usd: float
    waste_failed_units_usd: float
    waste_retries_usd: float
    breakdown: dict[str, list[BreakdownRow]] = field(default_factory=dict)
    #: token cost computed from telemetry and prices (``total_cost_usd`` is the fully loaded cost)
    token_cost_usd: float = 0.0
    layers: dict[str, float] = field(default_factory=dict)
    unallocated_usd: float = 0.0
    idle_usd: float = 0.0
    fully_loaded_cost_per_request_usd: float | None = None
    fully_loaded_cost_per_successful_outcome_usd: float | None = None
    #: how each layer's cost reached keys (bill: tag, bill: <driver>, telemetry, idle, unallocated)
    layer_basis: dict[str, list[str]] = field(default_factory=dict)
    #: model_api per provider: "bill" (its invoice lines) or "telemetry" (tokens x prices)
    model_api_basis: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the stable JSON document (docs/json.md)."""

        def ts(v: dt.datetime | None) -> str | None:
            return v.isoformat() if v is not None else None

        doc: dict[str, Any] = {
            "period": {"from": ts(self.period_from), "to": ts(self.period_to)},
            "data": {"first_ts": ts(self.first_ts), "last_ts": ts(self.last_ts)},
            "currency": self.currency,
        }
        skip = {"period_from", "period_to", "first_ts", "last_ts", "currency", "unpriced", "breakdown"}
        doc.update({k: v for k, v in asdict(self).items() if k not in skip})
        doc["unpriced"] = [asdict(u) for u in self.unpriced]
        doc["breakdown"] = {dim: [asdict(r) for r in rows] for dim, rows in self.breakdown.items()}
        return doc


def _check_dimensions(by: list[str]) -> None:
    for d in by:
        if d not in DIMENSIONS:
            import difflib

            close = difflib.get_close_matches(d, DIMENSIONS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownDimensionError(f"unknown dimension {d!r}{hint} (choose from {', '.join(DIMENSIONS)})")


@dataclass
class _Scan:
    """The small table a report is computed from (temporary, dropped after use)."""

    segments: ir.Table  # priced token sums per (dims, provider, model, epoch, bracket, success, error)
    prices: PriceTable
    first_ts: dt.datetime | None
    last_ts: dt.datetime | None


def _period(ts: ir.TimestampValue, grain: str) -> ir.TimestampValue:
    return ts.truncate({"hour": "h", "day": "D", "week": "W", "month": "M"}[grain])


def _model_keys(t: ir.Table, dims: list[str], grain: str | None, ts: ir.TimestampValue) -> dict[str, ir.Value]:
    """The leading group keys of both token groupings (requests and hourly rollups): dims, period, provider,
    model; each grouping adds its own after them, in the same order, so the two can be unioned."""
    keys: dict[str, ir.Value] = {d: t[d] for d in dims}
    if grain:
        keys["period"] = _period(ts, grain)
    return keys | {"provider": t.provider, "model": t.model}


def _units(store: Store, u: ir.Table, keys: tuple[str, ...] = (), **extra: ir.Scalar) -> ir.Table:
    """One row per unit of work (per unit and ``keys``, when given): ``u_id``, ``last_row_id`` (its last
    request), ``success``, ``unit_requests``, the ``keys`` and the ``extra`` aggregates of its requests (e.g.
    its cost)."""
    # one integer aggregate finds the last request and its status: row_id * 2 + (status is ok)
    packed = u.row_id * 2 + (u.status == "ok").cast("int64")
    units = u.group_by(["unit_id", *keys]).aggregate(last=last_by(packed, u.ts), unit_requests=u.count(), **extra)
    j, success = unit_success(store, units)
    return j.select(
        u_id=j.unit_id,
        last_row_id=j.last // 2,
        success=success,
        unit_requests=j.unit_requests,
        **{name: j[name] for name in (*keys, *extra)},
    )


def unit_success(store: Store, units: ir.Table) -> tuple[ir.Table, ir.BooleanValue]:
    """Join units (``unit_id``, ``last`` = row_id * 2 + (last request ok)) to their outcomes; return the join and
    whether each unit succeeded: its outcome is success or, without an outcome, its last request was ok."""
    keys = store.table("unit_keys")
    o = store.table("outcomes")
    ko = o.inner_join(keys, o.trace_id == keys.unit_key).select(o_unit_id=keys.unit_id, outcome=o.outcome)
    j = units.left_join(ko, units.unit_id == ko.o_unit_id)
    last_ok = (j.last % 2) == 1
    outcome = j.outcome.fill_null(ibis.cases((last_ok, "success"), else_="failure"))
    return j, outcome == "success"


def price_lookup(
    config: Config, store: Store, start: dt.datetime | None, end: dt.datetime | None
) -> tuple[PriceTable, Segmentation, ir.Table]:
    """Prices for the (provider, model) pairs with usage in [start, end) (:func:`prices_in_range`): the price
    table, its segmentation and the per-segment rates as an engine table (join it with :func:`price_segments`)."""
    prices, lo, hi = prices_in_range(store, config, start, end)
    seg = segmentation(prices, lo, hi)
    return prices, seg, ibis.memtable(segment_prices(prices, seg, lo))


def _scan(
    store: Store,
    config: Config,
    start: dt.datetime | None,
    end: dt.datetime | None,
    dims: list[str],
    grain: str | None = None,
    stack_drivers: bool = False,
    units: bool = True,
) -> _Scan:
    """Priced token sums per segment; ``stack_drivers`` adds the sums the cost stack splits by.

    A token-only report skips them (and ``serving`` as a key): they cost a pass over strings it does not need.
    ``units=False`` skips units of work (no join of each request to its unit): success, units and outcomes are
    then NULL, for callers that need cost alone (the spend series alert rules read).
    """
    u = usage_in_range(store, start, end)
    prices, seg, lookup = price_lookup(config, store, start, end)
    # token sums alone, split by rolled-up dimensions and priceable per hour: whole hours from usage_hourly
    edges = rollups.edges_if_built(store)
    rolled_up = set(dims) <= set(rollups.DIMENSIONS) and edges is not None and rollups.covers(seg, edges)
    if rolled_up and not units and not stack_drivers:
        assert edges is not None
        grouped = _rollup_grouped(store, u, start, end, dims, grain, seg, edges)
        return _priced(store, grouped, lookup, prices, [*dims, *(["period"] if grain else [])], False)

    # 1. each request with its unit's success, and whether it is the unit's last request
    if units:
        per_unit = _units(store, u)
        r = u.inner_join(per_unit, u.unit_id == per_unit.u_id)
        is_last: ir.BooleanValue = r.row_id == r.last_row_id
        success: ir.BooleanValue = r.success
    else:
        r = u
        is_last = success = ibis.null("boolean")
    # 2. token sums per segment (cost is linear in tokens inside a segment)
    grouped = _grouped(r, dims, grain, seg, stack_drivers, units, is_last, success)
    return _priced(store, grouped, lookup, prices, [*dims, *(["period"] if grain else [])], stack_drivers)


def _grouped(
    r: ir.Table,
    dims: list[str],
    grain: str | None,
    seg: Segmentation,
    stack_drivers: bool,
    units: bool,
    is_last: ir.BooleanValue,
    success: ir.BooleanValue,
) -> ir.Table:
    """Token sums of requests ``r`` per (dims, period, provider, model, serving, price segment, success, error,
    response cache hit)."""
    keys_cols = _model_keys(r, dims, grain, r.ts)
    keys_cols |= {
        **({"serving": r.serving} if stack_drivers else {}),
        **seg.of_requests(r),
        "success": success,
        # errors matter only to waste, which needs units: a constant key costs nothing to group by
        "is_error": (r.status == "error") if units else ibis.literal(False),
        "cache_hit": r.response_cache_hit.fill_null(False),
    }
    return r.group_by(**keys_cols).aggregate(
        requests=r.count(),
        first_ts=r.ts.min(),
        last_ts=r.ts.max(),
        **token_sums(r),
        **(
            {"units_of_work": is_last.sum(), "successful_outcomes": (is_last & success).sum()}
            if units
            else {"units_of_work": ibis.null("int64"), "successful_outcomes": ibis.null("int64")}
        ),
        **(
            {
                "gpu_seconds": r.gpu_seconds.sum().fill_null(0),
                "retrieval_queries": r.operation.isin(RETRIEVAL_OPERATIONS).sum().fill_null(0),
                "egress_bytes": r.egress_bytes.sum().fill_null(0),
            }
            if stack_drivers
            else {}
        ),
    )


def _rollup_grouped(
    store: Store,
    u: ir.Table,
    start: dt.datetime | None,
    end: dt.datetime | None,
    dims: list[str],
    grain: str | None,
    seg: Segmentation,
    edges: tuple[int, ...],
) -> ir.Table:
    """:func:`_grouped` without units or stack drivers, from ``usage_hourly`` for the whole hours of [start, end)
    and from the requests for the partial hours at either end (the sums are the same; see store/rollups.py)."""
    h, edge = rollups.split_range(store, u, start, end)
    if h is None:  # no whole hour: the requests alone
        return _grouped(u, dims, grain, seg, False, False, ibis.null("boolean"), ibis.null("boolean"))
    keys_cols = _model_keys(h, dims, grain, h.hour)
    keys_cols |= {
        **rollups.segment_of(h, seg, edges),
        "success": ibis.null("boolean"),
        "is_error": ibis.literal(False),
        "cache_hit": h.cache_hit,
    }
    rolled = h.group_by(**keys_cols).aggregate(
        requests=h.requests.sum(),
        first_ts=h.first_ts.min(),
        last_ts=h.last_ts.max(),
        **{c: h[c].sum().fill_null(0) for c in TOKEN_COLUMNS},
        units_of_work=ibis.null("int64"),
        successful_outcomes=ibis.null("int64"),
    )
    if edge is None:
        return rolled
    raw = _grouped(edge, dims, grain, seg, False, False, ibis.null("boolean"), ibis.null("boolean"))
    both = rolled.union(raw.select(*rolled.columns).cast(rolled.schema()))
    keys = [c for c in keys_cols]
    return both.group_by(keys).aggregate(
        requests=both.requests.sum(),
        first_ts=both.first_ts.min(),
        last_ts=both.last_ts.max(),
        **{c: both[c].sum() for c in TOKEN_COLUMNS},
        units_of_work=ibis.null("int64"),
        successful_outcomes=ibis.null("int64"),
    )


def _priced(
    store: Store, grouped: ir.Table, lookup: ir.Table, prices: PriceTable, key_cols: list[str], stack_drivers: bool
) -> _Scan:
    """Price token sums per segment into a materialized table of (keys, provider, model, ..., cost_usd)."""
    # 3. price the sums
    g, token_cost = price_segments(grouped, lookup)
    out_cols = list(  # a dimension may itself be a segment key (model, provider)
        dict.fromkeys(
            [
                *key_cols,
                "provider",
                "model",
                *(["serving"] if stack_drivers else []),
                "success",
                "is_error",
                "cache_hit",
            ]
        )
    )
    sums = (
        "requests",
        "input_tokens",
        "cache_read_tokens",
        "output_tokens",
        "units_of_work",
        "successful_outcomes",
        *(("gpu_seconds", "retrieval_queries", "egress_bytes") if stack_drivers else ()),
    )
    segments = g.select(
        *[grouped[c] for c in (*out_cols, *sums, "first_ts", "last_ts")],
        cost_usd=ibis.cases((g.cache_hit, ibis.literal(0.0)), else_=token_cost).cast(_MONEY),
        priced=g.cache_hit | g.input_per_mtok.notnull(),
        price_source=g.price_source,
    )
    table = store.materialize(segments)
    span = table.aggregate(first=table.first_ts.min(), last=table.last_ts.max()).to_pyarrow().to_pylist()[0]
    return _Scan(table, prices, span["first"], span["last"])


def _drop(store: Store, scan: _Scan) -> None:
    store.drop(scan.segments)


def _cost_aggs(t: ir.Table) -> dict[str, ir.Value]:
    unpriced = t.requests.sum(where=~t.priced).fill_null(0)
    return {
        "cost_usd": t.cost_usd.sum().fill_null(0),
        "requests": t.requests.sum().fill_null(0),
        "unpriced_requests": unpriced,
        "input_tokens": t.input_tokens.sum().fill_null(0),
        "cache_read_tokens": t.cache_read_tokens.sum().fill_null(0),
        "output_tokens": t.output_tokens.sum().fill_null(0),
        "waste_failed_units_usd": t.cost_usd.sum(where=~t.success).fill_null(0),
        "waste_retries_usd": t.cost_usd.sum(where=t.success & t.is_error).fill_null(0),
        "response_cache_hits": t.requests.sum(where=t.cache_hit).fill_null(0),
        "units_of_work": t.units_of_work.sum().fill_null(0),
        "successful_outcomes": t.successful_outcomes.sum().fill_null(0),
    }


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def cost_report(
    store: Store,
    config: Config,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    by: list[str] | None = None,
    *,
    units: bool = True,
) -> CostReport:
    """Return the cost report for [start, end), broken down by each dimension in ``by``.

    ``units=False`` skips units of work (their join is most of a report's time) for callers that need cost
    alone, e.g. budgets: units, outcomes and waste are then 0. With a bill, units are computed anyway (the
    allocation may split shared cost by successful outcomes).
    """
    by = list(dict.fromkeys(by or []))
    _check_dimensions(by)
    from unitcost.analysis.stack import has_stack_inputs  # stack builds on this module

    loaded = has_stack_inputs(store, config, start, end)
    scan = _scan(store, config, start, end, by, stack_drivers=loaded, units=units or loaded)
    try:
        seg = scan.segments
        tot = seg.aggregate(**_cost_aggs(seg)).to_pyarrow().to_pylist()[0]
        up = seg.filter(~seg.priced)
        unpriced_rows = (
            up.group_by(["provider", "model"])
            .aggregate(
                requests=up.requests.sum(),
                input_tokens=up.input_tokens.sum(),
                output_tokens=up.output_tokens.sum(),
            )
            .order_by(ibis.desc("requests"))
            .to_pyarrow()
            .to_pylist()
        )
        breakdown: dict[str, list[BreakdownRow]] = {}
        for dim in by:
            rows = (
                seg.group_by(key=seg[dim])
                .aggregate(**_cost_aggs(seg))
                .order_by([ibis.desc("cost_usd"), "key"])
                .to_pyarrow()
                .to_pylist()
            )
            breakdown[dim] = [_row(r) for r in rows]
        token_cost = float(tot["cost_usd"] or 0)
        layers, unallocated, idle, layer_basis, provider_basis = _stack_into(
            store, config, scan, start, end, by, breakdown, token_cost, loaded
        )
    finally:
        _drop(store, scan)
    cost = token_cost
    priced = int(tot["requests"]) - int(tot["unpriced_requests"])
    waste_failed = float(tot["waste_failed_units_usd"] or 0)
    waste_retries = float(tot["waste_retries_usd"] or 0)
    tot["units_of_work"] = tot["units_of_work"] or 0  # NULL without units
    tot["successful_outcomes"] = tot["successful_outcomes"] or 0
    return CostReport(
        period_from=start,
        period_to=end,
        first_ts=scan.first_ts,
        last_ts=scan.last_ts,
        currency=config.currency,
        requests=int(tot["requests"]),
        priced_requests=priced,
        units_of_work=int(tot["units_of_work"]),
        successful_outcomes=int(tot["successful_outcomes"]),
        total_cost_usd=sum(layers.values()),  # layer totals already hold their unallocated and idle parts
        token_cost_usd=cost,
        layers=layers,
        unallocated_usd=unallocated,
        idle_usd=idle,
        layer_basis=layer_basis,
        model_api_basis=provider_basis,
        fully_loaded_cost_per_request_usd=_ratio(sum(layers.values()), priced),
        fully_loaded_cost_per_successful_outcome_usd=_ratio(sum(layers.values()), int(tot["successful_outcomes"])),
        cost_per_request_usd=_ratio(cost, priced),
        cost_per_1k_tokens_usd=_ratio(cost * 1000, int(tot["input_tokens"]) + int(tot["output_tokens"])),
        cost_per_successful_outcome_usd=_ratio(cost, int(tot["successful_outcomes"])),
        input_tokens=int(tot["input_tokens"]),
        cache_read_tokens=int(tot["cache_read_tokens"]),
        output_tokens=int(tot["output_tokens"]),
        cached_share=_ratio(int(tot["cache_read_tokens"]), int(tot["input_tokens"])),
        response_cache_hits=int(tot["response_cache_hits"]),
        unpriced_requests=int(tot["unpriced_requests"]),
        unpriced=[
            UnpricedModel(
                provider=r["provider"],
                model=r["model"],
                requests=int(r["requests"]),
                input_tokens=int(r["input_tokens"] or 0),
                output_tokens=int(r["output_tokens"] or 0),
            )
            for r in unpriced_rows
        ],
        waste_usd=waste_failed + waste_retries,
        waste_failed_units_usd=waste_failed,
        waste_retries_usd=waste_retries,
        breakdown=breakdown,
    )


def _stack_into(
    store: Store,
    config: Config,
    scan: _Scan,
    start: dt.datetime | None,
    end: dt.datetime | None,
    by: list[str],
    breakdown: dict[str, list[BreakdownRow]],
    token_cost: float,
    loaded: bool,
) -> tuple[dict[str, float], float, float, dict[str, list[str]], dict[str, str]]:
    """Fill the breakdown rows' layers; return layer totals, unallocated, idle (USD) and the bases.

    Without bill lines, labour records or GPU pools the stack is the token cost alone.
    """
    from unitcost.analysis.stack import stack_from_scan  # stack builds on this module

    if not loaded:
        for dim, rows in breakdown.items():
            breakdown[dim] = [
                replace(
                    r,
                    layers={"model_api": r.cost_usd},
                    fully_loaded_cost_usd=r.cost_usd,
                    fully_loaded_cost_per_request_usd=r.cost_per_request_usd,
                    fully_loaded_cost_per_successful_outcome_usd=r.cost_per_successful_outcome_usd,
                )
                for r in rows
            ]
        providers = seg_providers(scan)
        return (
            ({"model_api": token_cost} if token_cost else {}),
            0.0,
            0.0,
            ({"model_api": ["telemetry"]} if token_cost else {}),
            {p: "telemetry" for p in providers},
        )
    totals = None
    for dim in by:
        stack = stack_from_scan(store, config, scan, start, end, dim)
        totals = totals or stack
        per_key = stack.by_key()
        rows = []
        for r in breakdown[dim]:
            layers = {k: float(v) for k, v in sorted(per_key.pop(r.key, {}).items())}
            full = sum(layers.values())
            rows.append(
                replace(
                    r,
                    layers=layers,
                    fully_loaded_cost_usd=full,
                    fully_loaded_cost_per_request_usd=_ratio(full, r.requests - r.unpriced_requests),
                    fully_loaded_cost_per_successful_outcome_usd=_ratio(full, r.successful_outcomes),
                )
            )
        for key, by_layer in per_key.items():  # keys with bill or labour cost but no requests in the period
            layers = {k: float(v) for k, v in sorted(by_layer.items())}
            rows.append(_empty_row(key, layers))
        breakdown[dim] = rows
    if totals is None:
        totals = stack_from_scan(store, config, scan, start, end, None)
    return (
        {k: float(v) for k, v in sorted(totals.layer_totals_usd.items())},
        float(sum(totals.unallocated_usd.values())),
        float(sum(totals.idle_usd.values())),
        totals.layer_basis(),
        dict(sorted(totals.provider_basis.items())),
    )


def seg_providers(scan: _Scan) -> list[str]:
    """The providers that appear in a scan's segments."""
    seg = scan.segments
    return sorted(r["provider"] for r in seg.select("provider").distinct().to_pyarrow().to_pylist() if r["provider"])


def _empty_row(key: str | None, layers: dict[str, float]) -> BreakdownRow:
    full = sum(layers.values())
    return BreakdownRow(
        key=key,
        cost_usd=0.0,
        requests=0,
        unpriced_requests=0,
        units_of_work=0,
        successful_outcomes=0,
        cost_per_request_usd=None,
        cost_per_successful_outcome_usd=None,
        input_tokens=0,
        output_tokens=0,
        cached_share=None,
        waste_usd=0.0,
        layers=layers,
        fully_loaded_cost_usd=full,
    )


_COST_FIELDS = (
    "cost_usd",
    "requests",
    "unpriced_requests",
    "input_tokens",
    "cache_read_tokens",
    "output_tokens",
    "waste_failed_units_usd",
    "waste_retries_usd",
    "response_cache_hits",
)


def _row(r: dict[str, Any]) -> BreakdownRow:
    def num(name: str) -> float:
        return float(r[name] or 0)

    cost = num("cost_usd")
    requests = int(num("requests"))
    priced = requests - int(num("unpriced_requests"))
    successes = int(num("successful_outcomes"))
    return BreakdownRow(
        key=r["key"],
        cost_usd=cost,
        requests=requests,
        unpriced_requests=int(num("unpriced_requests")),
        units_of_work=int(num("units_of_work")),
        successful_outcomes=successes,
        cost_per_request_usd=_ratio(cost, priced),
        cost_per_successful_outcome_usd=_ratio(cost, successes),
        input_tokens=int(num("input_tokens")),
        output_tokens=int(num("output_tokens")),
        cached_share=_ratio(num("cache_read_tokens"), num("input_tokens")),
        waste_usd=num("waste_failed_units_usd") + num("waste_retries_usd"),
    )


def cost_timeseries(
    store: Store,
    config: Config,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    grain: str = "day",
    by: str | None = None,
    units: bool = True,
) -> pa.Table:
    """Return cost per period (and per key of ``by``): one row per (period, key).

    Columns: ``period``, ``key``, ``cost_usd``, ``requests``, ``unpriced_requests``, ``input_tokens``,
    ``cache_read_tokens``, ``output_tokens``, ``response_cache_hits`` and, unless ``units=False`` (cost
    alone, about twice as fast), ``waste_failed_units_usd``, ``waste_retries_usd``, ``units_of_work``,
    ``successful_outcomes``. Units are credited to the period and key of their last request.
    """
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}, got {grain!r}")
    dims = [by] if by else []
    _check_dimensions(dims)
    scan = _scan(store, config, start, end, dims, grain, units=units)
    try:
        seg = scan.segments
        key_expr = seg[by].cast("string") if by else ibis.literal("all")
        aggs = _cost_aggs(seg)
        if not units:
            aggs = {k: v for k, v in aggs.items() if k not in _UNIT_COLUMNS}
        joined = seg.group_by(period=seg.period, key=key_expr).aggregate(**aggs)
        out = joined.order_by(["period", "key"]).to_pyarrow()
    finally:
        _drop(store, scan)
    for name in ("cost_usd", "waste_failed_units_usd", "waste_retries_usd"):
        if name in out.column_names:
            out = out.set_column(out.schema.get_field_index(name), name, out[name].cast(pa.float64()))
    return out


#: the columns that need units of work (left out of ``cost_timeseries(units=False)``)
_UNIT_COLUMNS = ("waste_failed_units_usd", "waste_retries_usd", "units_of_work", "successful_outcomes")

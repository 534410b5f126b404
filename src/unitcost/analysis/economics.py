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
* For a breakdown key, ``successful_outcomes`` counts the successful units with
  at least one request under that key (for unit-level dimensions such as tenant
  or feature this partitions the total; a unit that used two models counts for
  both models).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from unitcost.config import Config
from unitcost.errors import UnknownDimensionError
from unitcost.ledger import Ledger, build_ledger
from unitcost.schema import DIMENSIONS
from unitcost.store import Store

GRAINS = ("hour", "day", "week", "month")
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

    def to_json(self) -> dict[str, Any]:
        """Return the stable JSON document (docs/json.md)."""

        def ts(v: dt.datetime | None) -> str | None:
            return v.isoformat() if v is not None else None

        doc: dict[str, Any] = {
            "period": {"from": ts(self.period_from), "to": ts(self.period_to)},
            "currency": self.currency,
        }
        skip = {"period_from", "period_to", "currency", "unpriced", "breakdown"}
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


def units_of_work(store: Store, ledger: Ledger) -> ir.Table:
    """Return one row per unit of work in scope: ``unit_key``, ``success`` (bool), ``outcome``."""
    r = ledger.requests
    units = r.group_by("unit_key").aggregate(last_status=r.status.argmax(r.ts))
    o = store.table("outcomes")
    j = units.left_join(o, units.unit_key == o.trace_id)
    inferred = ibis.cases((j.last_status == "ok", "success"), else_="failure")
    outcome = j.outcome.fill_null(inferred)
    return j.select(unit_key=j.unit_key, outcome=outcome, success=outcome == "success")


def _with_success(store: Store, ledger: Ledger, columns: list[str]) -> ir.Table:
    """The ledger's requests, narrowed to ``columns``, with the success flag of their unit; materialised."""
    r = ledger.requests.view()
    u = store.materialize(units_of_work(store, ledger).select(unit_key_="unit_key", success="success"))
    j = r.inner_join(u, r.unit_key == u.unit_key_)
    keep = sorted(
        {
            "unit_key",
            "success",
            "cost_usd",
            "priced",
            "status",
            "input_tokens",
            "cache_read_tokens",
            "output_tokens",
            "response_cache_hit",
            "provider",
            "model",
            "ts",
            *columns,
        }
    )
    try:
        return store.materialize(j.select(*keep))
    finally:
        store.drop(u)


def _aggregates(t: ir.Table) -> dict[str, ir.Value]:
    cost = t.cost_usd.cast(_MONEY)
    return {
        "cost_usd": cost.sum().fill_null(0),
        "requests": t.count(),
        "unpriced_requests": (~t.priced).sum().fill_null(0),
        "units_of_work": t.unit_key.nunique(),
        "successful_outcomes": t.unit_key.nunique(where=t.success),
        "input_tokens": t.input_tokens.sum().fill_null(0),
        "cache_read_tokens": t.cache_read_tokens.sum().fill_null(0),
        "output_tokens": t.output_tokens.sum().fill_null(0),
        "waste_failed_units_usd": cost.sum(where=~t.success).fill_null(0),
        "waste_retries_usd": cost.sum(where=t.success & (t.status == "error")).fill_null(0),
    }


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def cost_report(
    store: Store,
    config: Config,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    by: list[str] | None = None,
) -> CostReport:
    """Return the cost report for [start, end), broken down by each dimension in ``by``."""
    by = list(by or [])
    _check_dimensions(by)
    ledger = build_ledger(store, config, start, end)
    t = _with_success(store, ledger, by)
    try:
        aggs = _aggregates(t)
        aggs["response_cache_hits"] = t.response_cache_hit.fill_null(False).sum().fill_null(0)
        tot = t.aggregate(**aggs).to_pyarrow().to_pylist()[0]
        up = t.filter(~t.priced)
        unpriced_rows = (
            up.group_by(["provider", "model"])
            .aggregate(
                requests=up.count(),
                input_tokens=up.input_tokens.sum().fill_null(0),
                output_tokens=up.output_tokens.sum().fill_null(0),
            )
            .order_by(ibis.desc("requests"))
            .to_pyarrow()
            .to_pylist()
        )
        breakdown: dict[str, list[BreakdownRow]] = {}
        for dim in by:
            rows = t.group_by(dim).aggregate(**_aggregates(t)).order_by(ibis.desc("cost_usd")).to_pyarrow()
            breakdown[dim] = [_row(dim, r) for r in rows.to_pylist()]
    finally:
        store.drop(t)
    cost = float(tot["cost_usd"])
    priced = int(tot["requests"]) - int(tot["unpriced_requests"])
    waste_failed = float(tot["waste_failed_units_usd"])
    waste_retries = float(tot["waste_retries_usd"])
    return CostReport(
        period_from=start,
        period_to=end,
        currency=config.currency,
        requests=int(tot["requests"]),
        priced_requests=priced,
        units_of_work=int(tot["units_of_work"]),
        successful_outcomes=int(tot["successful_outcomes"]),
        total_cost_usd=cost,
        cost_per_request_usd=_ratio(cost, priced),
        cost_per_1k_tokens_usd=_ratio(cost * 1000, int(tot["input_tokens"]) + int(tot["output_tokens"])),
        cost_per_successful_outcome_usd=_ratio(cost, int(tot["successful_outcomes"])),
        input_tokens=int(tot["input_tokens"]),
        cache_read_tokens=int(tot["cache_read_tokens"]),
        output_tokens=int(tot["output_tokens"]),
        cached_share=_ratio(int(tot["cache_read_tokens"]), int(tot["input_tokens"])),
        response_cache_hits=int(tot["response_cache_hits"]),
        unpriced_requests=int(tot["unpriced_requests"]),
        unpriced=[UnpricedModel(**r) for r in unpriced_rows],
        waste_usd=waste_failed + waste_retries,
        waste_failed_units_usd=waste_failed,
        waste_retries_usd=waste_retries,
        breakdown=breakdown,
    )


def _row(dim: str, r: dict[str, Any]) -> BreakdownRow:
    cost = float(r["cost_usd"])
    priced = int(r["requests"]) - int(r["unpriced_requests"])
    return BreakdownRow(
        key=r[dim],
        cost_usd=cost,
        requests=int(r["requests"]),
        unpriced_requests=int(r["unpriced_requests"]),
        units_of_work=int(r["units_of_work"]),
        successful_outcomes=int(r["successful_outcomes"]),
        cost_per_request_usd=_ratio(cost, priced),
        cost_per_successful_outcome_usd=_ratio(cost, int(r["successful_outcomes"])),
        input_tokens=int(r["input_tokens"]),
        output_tokens=int(r["output_tokens"]),
        cached_share=_ratio(int(r["cache_read_tokens"]), int(r["input_tokens"])),
        waste_usd=float(r["waste_failed_units_usd"]) + float(r["waste_retries_usd"]),
    )


def cost_timeseries(
    store: Store,
    config: Config,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    grain: str = "day",
    by: str | None = None,
) -> pa.Table:
    """Return cost per period (and per key of ``by``): one row per (period, key).

    Columns: ``period``, ``key``, ``cost_usd``, ``requests``, ``units_of_work``,
    ``successful_outcomes``, ``input_tokens``, ``cache_read_tokens``, ``output_tokens``,
    ``unpriced_requests``, ``waste_failed_units_usd``, ``waste_retries_usd``. A unit spanning two periods
    counts in both.
    """
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}, got {grain!r}")
    if by is not None:
        _check_dimensions([by])
    ledger = build_ledger(store, config, start, end)
    t = _with_success(store, ledger, [by] if by else [])
    try:
        unit = {"hour": "h", "day": "D", "week": "W", "month": "M"}[grain]
        keyed = t.mutate(period=t.ts.truncate(unit), key=t[by].cast("string") if by else ibis.literal("all"))
        aggs = _aggregates(keyed)
        out = keyed.group_by(["period", "key"]).aggregate(**aggs).order_by(["period", "key"]).to_pyarrow()
    finally:
        store.drop(t)
    return out.set_column(
        out.schema.get_field_index("cost_usd"), "cost_usd", out["cost_usd"].cast(pa.float64())
    ).set_column(
        out.schema.get_field_index("waste_failed_units_usd"),
        "waste_failed_units_usd",
        out["waste_failed_units_usd"].cast(pa.float64()),
    ).set_column(
        out.schema.get_field_index("waste_retries_usd"),
        "waste_retries_usd",
        out["waste_retries_usd"].cast(pa.float64()),
    )

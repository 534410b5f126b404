"""Per-request cost: the usage table joined with the price table, on the engine.

Costs are computed when a report is asked for, never stored, so a change of
prices, overrides or discounts applies to every later report.

A request is *unpriced* when no price covers its (provider, model) at its time:
its ``cost_usd`` is NULL (never $0), and reports count and name it. A request
answered from the application response cache made no model call: it costs $0
and is priced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from unitcost.config import Config
from unitcost.errors import PeriodError
from unitcost.pricing import PriceTable, build_price_table
from unitcost.store import Store
from unitcost.store.models import models_in


@dataclass
class Ledger:
    """The priced usage expression for a time range, and the prices it used."""

    requests: ir.Table
    prices: PriceTable
    start: dt.datetime | None
    end: dt.datetime | None


def after_newest_usage(store: Store, purpose: str) -> dt.datetime:
    """Just after the newest usage row: the default evaluation time of watch and forecast.

    ``purpose`` ends the error message when there is no usage ("nothing to watch").
    """
    row = store.sql("SELECT max(ts) FROM usage")
    if not row or row[0][0] is None:
        raise PeriodError(f"the workspace has no usage rows yet: {purpose} (ingest some first)")
    newest: dt.datetime = row[0][0]
    return newest + dt.timedelta(microseconds=1)


def usage_in_range(store: Store, start: dt.datetime | None, end: dt.datetime | None) -> ir.Table:
    """The usage table restricted to [start, end) (either bound may be open)."""
    u = store.table("usage")
    if start is not None:
        u = u.filter(u.ts >= start)
    if end is not None:
        u = u.filter(u.ts < end)
    return u


def prices_in_range(
    store: Store, config: Config, start: dt.datetime | None, end: dt.datetime | None
) -> tuple[PriceTable, dt.datetime, dt.datetime]:
    """The prices of every (provider, model) with usage in [start, end), and the span [lo, hi) of that usage.

    The pairs come from the model catalog (``usage_models``, kept at ingestion: ``store/models.py``), not from a
    pass over the requests; a pair with a gap in its traffic inside the range is priced for nothing.
    """
    seen = models_in(store, start, end)
    lo = min((r["first"] for r in seen), default=dt.datetime(2000, 1, 1))
    hi = max((r["last"] for r in seen), default=lo) + dt.timedelta(microseconds=1)
    return build_price_table([(r["provider"], r["model"]) for r in seen], config, lo, hi), lo, hi


def build_ledger(
    store: Store,
    config: Config,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    usage: ir.Table | None = None,
) -> Ledger:
    """Return every request in [start, end) with its ``cost_usd`` (NULL when unpriced) and ``unit_key``.

    Prices are resolved once per distinct (provider, model, price period) of the range
    (:func:`prices_in_range`), then joined on the engine. ``usage``: the requests to price, already filtered
    (default: all of the range).
    """
    u = usage_in_range(store, start, end) if usage is None else usage
    prices, _, _ = prices_in_range(store, config, start, end)
    p = ibis.memtable(prices.to_arrow())

    tokens_in = u.input_tokens.fill_null(0)
    joined = u.left_join(
        p,
        [
            u.provider == p.provider,
            u.model == p.model,
            u.ts >= p.valid_from,
            u.ts < p.valid_to,
            tokens_in > p.input_tokens_above,
            tokens_in <= p.input_tokens_upto,
        ],
    )
    cache_read = joined.cache_read_tokens.fill_null(0)
    cache_write = joined.cache_write_tokens.fill_null(0)
    output = joined.output_tokens.fill_null(0)
    reasoning = joined.reasoning_tokens.fill_null(0)
    token_cost = (
        (joined.input_tokens.fill_null(0) - cache_read - cache_write) * joined.input_per_mtok
        + cache_read * joined.cache_read_per_mtok
        + cache_write * joined.cache_write_per_mtok
        + (output - reasoning) * joined.output_per_mtok
        + reasoning * joined.reasoning_per_mtok
    ) / 1_000_000 + joined.per_request_usd
    cache_hit = joined.response_cache_hit.fill_null(False)
    cost = ibis.cases((cache_hit, ibis.literal(0.0)), else_=token_cost)
    unit_key = ibis.coalesce(joined.trace_id.nullif(""), joined.request_id)
    requests = joined.select(
        *[joined[c] for c in u.columns],
        cost_usd=cost,
        priced=cache_hit | joined.input_per_mtok.notnull(),
        price_source=joined.price_source,
        unit_key=unit_key,
    )
    return Ledger(requests=requests, prices=prices, start=start, end=end)

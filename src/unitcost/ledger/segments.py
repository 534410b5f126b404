"""Price segments for aggregate-first costing.

Cost is linear in tokens while the rates stay the same, so a report can sum tokens
per *segment* on the engine and price the (small) sums afterwards, instead of
joining a price to every request. A segment is (provider, model, epoch, bracket):

* ``epoch``: index of the time interval between consecutive price changes of any
  model in the data (genai-prices start dates, override dates, off-peak hours);
* ``bracket``: index of the input-token interval between consecutive tier
  thresholds of any model (genai-prices cliff tiers).

Both are small CASE expressions; :func:`segment_prices` maps every
(provider, model, epoch, bracket) to the one price row that covers it.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from unitcost.pricing import PriceTable
from unitcost.schema import TOKEN_COLUMNS

RATE_COLUMNS = (
    "input_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "output_per_mtok",
    "reasoning_per_mtok",
    "per_request_usd",
)


@dataclass(frozen=True)
class Segmentation:
    """Where prices can change, in time and in input tokens."""

    time_edges: tuple[dt.datetime, ...]
    token_edges: tuple[int, ...]

    def epoch(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        """Index of the price epoch a timestamp falls in (0 before the first edge)."""
        if not self.time_edges:
            return ibis.literal(0)
        return ibis.cases(*[(ts < edge, i) for i, edge in enumerate(self.time_edges)], else_=len(self.time_edges))

    def of_requests(self, r: ir.Table) -> dict[str, ir.IntegerValue]:
        """The segment keys (``epoch``, ``bracket``) of usage rows ``r``, to group them by."""
        return {"epoch": self.epoch(r.ts), "bracket": self.bracket(r.input_tokens.fill_null(0))}

    def bracket(self, input_tokens: ir.IntegerValue) -> ir.IntegerValue:
        """Index of the input-token bracket (tiers apply when input_tokens > threshold)."""
        if not self.token_edges:
            return ibis.literal(0)
        return ibis.cases(
            *[(input_tokens <= edge, i) for i, edge in enumerate(self.token_edges)],
            else_=len(self.token_edges),
        )


def segmentation(prices: PriceTable, start: dt.datetime, end: dt.datetime) -> Segmentation:
    """The time and token edges of every price row that matter inside [start, end)."""
    times: set[dt.datetime] = set()
    tokens: set[int] = set()
    for r in prices.rows:
        for key in ("valid_from", "valid_to"):
            edge = r[key]
            assert isinstance(edge, dt.datetime)
            if start < edge < end:
                times.add(edge)
        above = r["input_tokens_above"]
        assert isinstance(above, int)
        if above >= 0:
            tokens.add(above)
    return Segmentation(tuple(sorted(times)), tuple(sorted(tokens)))


def segment_prices(prices: PriceTable, seg: Segmentation, start: dt.datetime) -> pa.Table:
    """One row per (provider, model, epoch, bracket) that a price covers, with its rates."""
    epoch_starts = [start, *seg.time_edges]
    bracket_reps = [0, *(t + 1 for t in seg.token_edges)]
    out: dict[str, list[object]] = {
        "provider": [],
        "model": [],
        "epoch": [],
        "bracket": [],
        **{c: [] for c in RATE_COLUMNS},
        "price_source": [],
    }
    by_pair: dict[tuple[str, str], list[dict[str, object]]] = {}
    for r in prices.rows:
        by_pair.setdefault((str(r["provider"]), str(r["model"])), []).append(r)
    for (provider, model), rows in by_pair.items():
        for e, at in enumerate(epoch_starts):
            for b, rep in enumerate(bracket_reps):
                hit = next(
                    (
                        r
                        for r in rows
                        if r["valid_from"] <= at < r["valid_to"]  # type: ignore[operator]
                        and r["input_tokens_above"] < rep <= r["input_tokens_upto"]  # type: ignore[operator]
                    ),
                    None,
                )
                if hit is None:
                    continue
                out["provider"].append(provider)
                out["model"].append(model)
                out["epoch"].append(e)
                out["bracket"].append(b)
                for c in RATE_COLUMNS:
                    out[c].append(hit[c])
                out["price_source"].append(hit["price_source"])
    schema = pa.schema(
        [("provider", pa.string()), ("model", pa.string()), ("epoch", pa.int64()), ("bracket", pa.int64())]
        + [(c, pa.float64()) for c in RATE_COLUMNS]
        + [("price_source", pa.string())]
    )
    return pa.table(out, schema=schema)


def epoch_of(seg: Segmentation, ts: dt.datetime) -> int:
    """Python twin of :meth:`Segmentation.epoch` (for tests and docs).

    >>> epoch_of(Segmentation((dt.datetime(2026, 6, 16),), ()), dt.datetime(2026, 6, 16))
    1
    """
    return bisect.bisect_right(seg.time_edges, ts)


def price_segments(grouped: ir.Table, lookup: ir.Table) -> tuple[ir.Table, ir.FloatingValue]:
    """Join token sums per (provider, model, epoch, bracket) to their rates; return the join and the cost.

    The cost (USD, NULL when unpriced) is genai-prices' formula applied to the sums, which is exact because
    the rates are constant inside a segment (see pricing/tokens.py).
    """
    g = grouped.left_join(
        lookup,
        [
            grouped.provider == lookup.provider,
            grouped.model == lookup.model,
            grouped.epoch == lookup.epoch,
            grouped.bracket == lookup.bracket,
        ],
    )
    parts = cost_components(g)
    cost = (
        parts["input_uncached"] + parts["cache_read"] + parts["cache_write"] + parts["output"] + parts["reasoning"]
    ) / 1_000_000 + parts["fee_usd"]
    return g, cost


#: the price components of a token sum, in the order they are added, and the rate each is priced at
COMPONENTS = ("input_uncached", "cache_read", "cache_write", "output", "reasoning")
COMPONENT_RATES = (
    "input_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "output_per_mtok",
    "reasoning_per_mtok",
)


def token_components(t: ir.Table) -> dict[str, ir.NumericValue]:
    """The tokens of each price component (:data:`COMPONENTS`) of usage rows or of token sums (0 where empty):
    cost = sum of component x rate / 1e6, plus the per-request fee."""
    tok = {c: t[c].fill_null(0) for c in TOKEN_COLUMNS}
    return {
        "input_uncached": tok["input_tokens"] - tok["cache_read_tokens"] - tok["cache_write_tokens"],
        "cache_read": tok["cache_read_tokens"],
        "cache_write": tok["cache_write_tokens"],
        "output": tok["output_tokens"] - tok["reasoning_tokens"],
        "reasoning": tok["reasoning_tokens"],
    }


def cost_components(g: ir.Table) -> dict[str, ir.NumericValue]:
    """Each price component of a priced token sum: token x USD-per-million products (divide by 1e6 for USD),
    and ``fee_usd``, the per-request fees in USD. NULL where the segment is unpriced."""
    tokens = token_components(g)
    return {
        **{c: tokens[c] * g[rate] for c, rate in zip(COMPONENTS, COMPONENT_RATES, strict=True)},
        "fee_usd": g.per_request_usd * g.requests,
    }


def token_sums(r: ir.Table) -> dict[str, ir.NumericValue]:
    """The token sums every priced aggregation needs (0 where a column is empty)."""
    return {c: r[c].sum().fill_null(0) for c in TOKEN_COLUMNS}

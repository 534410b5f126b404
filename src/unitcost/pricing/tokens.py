"""Token prices as a small table the engine joins on: one row per price segment.

A segment is (provider, model, time range, input-token bracket) with one set of
rates. Rates are read from genai-prices' data (historic, tiered, cache read and
write, reasoning) once per distinct (provider, model, price period), never per
request; user overrides from ``unitcost.yaml`` take precedence from their date on,
and provider discounts scale every rate.

Cost of a request in a segment (USD), the formula genai-prices applies::

    ((input - cache_read - cache_write) * input_rate + cache_read * cache_read_rate
     + cache_write * cache_write_rate + (output - reasoning) * output_rate
     + reasoning * reasoning_rate) / 1e6 + per_request
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
from genai_prices import data_snapshot
from genai_prices import types as gp

from unitcost.config import Config, PriceOverride

#: Columns of the price table, in order.
PRICE_COLUMNS = (
    "provider",
    "model",
    "valid_from",
    "valid_to",
    "input_tokens_above",
    "input_tokens_upto",
    "input_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "output_per_mtok",
    "reasoning_per_mtok",
    "per_request_usd",
    "price_source",
    "price_model_id",
)

_FAR_PAST = dt.datetime(1970, 1, 1)
_FAR_FUTURE = dt.datetime(2200, 1, 1)
_NO_LIMIT = 2**62
_TOKEN_KEYS = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok", "output_reasoning_mtok")


@dataclass(frozen=True)
class Rates:
    """USD per million tokens by token type, plus a per-request price."""

    input_per_mtok: float
    cache_read_per_mtok: float
    cache_write_per_mtok: float
    output_per_mtok: float
    reasoning_per_mtok: float
    per_request_usd: float = 0.0

    def scaled(self, factor: float) -> Rates:
        return Rates(
            *(
                v * factor
                for v in (
                    self.input_per_mtok,
                    self.cache_read_per_mtok,
                    self.cache_write_per_mtok,
                    self.output_per_mtok,
                    self.reasoning_per_mtok,
                    self.per_request_usd,
                )
            )
        )


@dataclass
class PriceTable:
    """The resolved prices for the models seen, and the models that have none."""

    rows: list[dict[str, object]] = field(default_factory=list)
    unpriced: list[tuple[str, str]] = field(default_factory=list)

    def to_arrow(self) -> pa.Table:
        schema = pa.schema(
            [
                ("provider", pa.string()),
                ("model", pa.string()),
                ("valid_from", pa.timestamp("us")),
                ("valid_to", pa.timestamp("us")),
                ("input_tokens_above", pa.int64()),
                ("input_tokens_upto", pa.int64()),
                ("input_per_mtok", pa.float64()),
                ("cache_read_per_mtok", pa.float64()),
                ("cache_write_per_mtok", pa.float64()),
                ("output_per_mtok", pa.float64()),
                ("reasoning_per_mtok", pa.float64()),
                ("per_request_usd", pa.float64()),
                ("price_source", pa.string()),
                ("price_model_id", pa.string()),
            ]
        )
        return pa.Table.from_pylist(self.rows, schema=schema)


def _rate_at(price: Decimal | gp.TieredPrices | None, input_tokens: int) -> float | None:
    """The rate that applies to a request with ``input_tokens`` (genai-prices' cliff tiers)."""
    if price is None:
        return None
    if isinstance(price, gp.TieredPrices):
        applicable = price.base
        for tier in reversed(price.tiers):
            if input_tokens > tier.start:
                applicable = tier.price
                break
        return float(applicable)
    return float(price)


def _brackets(mp: gp.ModelPrice) -> list[tuple[int, int]]:
    """Input-token brackets (above, upto] within which every rate of ``mp`` is constant."""
    starts: set[int] = set()
    for key in _TOKEN_KEYS:
        value = getattr(mp, key, None)
        if isinstance(value, gp.TieredPrices):
            starts.update(t.start for t in value.tiers)
    edges = [-1, *sorted(starts), _NO_LIMIT]
    return list(itertools.pairwise(edges))


@functools.cache
def tier_thresholds() -> tuple[int, ...]:
    """Every input-token threshold of genai-prices' tiered prices (the edges any price bracket can have:
    overrides are never tiered)."""
    starts: set[int] = set()
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            prices = [model.prices] if isinstance(model.prices, gp.ModelPrice) else [c.prices for c in model.prices]
            for mp in prices:
                for key in _TOKEN_KEYS:
                    value = getattr(mp, key, None)
                    if isinstance(value, gp.TieredPrices):
                        starts.update(t.start for t in value.tiers)
    return tuple(sorted(starts))


def rates_from_model_price(mp: gp.ModelPrice, input_tokens: int) -> Rates | None:
    """Rates of a genai-prices ModelPrice for a request with ``input_tokens``; None if it has no token price."""
    inp = _rate_at(getattr(mp, "input_mtok", None), input_tokens)
    out = _rate_at(getattr(mp, "output_mtok", None), input_tokens)
    req = getattr(mp, "requests_kcount", None)
    if inp is None and out is None and req is None:
        return None
    inp = inp or 0.0
    out = out or 0.0
    cache_read = _rate_at(getattr(mp, "cache_read_mtok", None), input_tokens)
    cache_write = _rate_at(getattr(mp, "cache_write_mtok", None), input_tokens)
    reasoning = _rate_at(getattr(mp, "output_reasoning_mtok", None), input_tokens)
    return Rates(
        input_per_mtok=inp,
        # An unpriced cache read/write or reasoning token is charged as a plain input/output token.
        cache_read_per_mtok=inp if cache_read is None else cache_read,
        cache_write_per_mtok=inp if cache_write is None else cache_write,
        output_per_mtok=out,
        reasoning_per_mtok=out if reasoning is None else reasoning,
        per_request_usd=float(req) / 1000 if req is not None else 0.0,
    )


def _boundaries(model: gp.ModelInfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Instants in [start, end) where the model's genai-prices price may change."""
    points = {start}
    if not isinstance(model.prices, gp.ModelPrice):
        for cp in model.prices:
            c = cp.constraint
            if isinstance(c, gp.StartDateConstraint):
                points.add(dt.datetime.combine(c.start_date, dt.time()))
            elif isinstance(c, gp.TimeOfDateConstraint):
                day = start.date()
                while dt.datetime.combine(day, dt.time()) < end:
                    for t in (c.start_time, c.end_time):
                        utc = t if t.tzinfo is None else dt.datetime.combine(day, t).astimezone(dt.UTC).timetz()
                        points.add(dt.datetime.combine(day, utc.replace(tzinfo=None)))
                    day += dt.timedelta(days=1)
    return sorted(p for p in points if start <= p < end)


def _genai_segments(
    provider: str, model_ref: str, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime, gp.ModelPrice, str]] | None:
    """Time segments with the genai-prices ModelPrice in force, or None if the model is unknown."""
    snapshot = data_snapshot.get_snapshot()
    try:
        _, info = snapshot.find_provider_model(model_ref, None, provider, None)
    except LookupError:
        return None
    points = _boundaries(info, start, end)
    segments: list[tuple[dt.datetime, dt.datetime, gp.ModelPrice, str]] = []
    for i, p in enumerate(points):
        nxt = points[i + 1] if i + 1 < len(points) else _FAR_FUTURE
        mp = info.get_prices(p.replace(tzinfo=dt.UTC))
        if segments and segments[-1][2] == mp:
            segments[-1] = (segments[-1][0], nxt, mp, info.id)
        else:
            segments.append((p if i else _FAR_PAST, nxt, mp, info.id))
    return segments


def _override_rates(o: PriceOverride) -> Rates:
    return Rates(
        input_per_mtok=o.input_per_mtok,
        cache_read_per_mtok=o.input_per_mtok if o.cache_read_per_mtok is None else o.cache_read_per_mtok,
        cache_write_per_mtok=o.input_per_mtok if o.cache_write_per_mtok is None else o.cache_write_per_mtok,
        output_per_mtok=o.output_per_mtok,
        reasoning_per_mtok=o.output_per_mtok,
    )


def _row(
    provider: str,
    model: str,
    lo: dt.datetime,
    hi: dt.datetime,
    above: int,
    upto: int,
    rates: Rates,
    source: str,
    model_id: str,
) -> dict[str, object]:
    return {
        "provider": provider,
        "model": model,
        "valid_from": lo,
        "valid_to": hi,
        "input_tokens_above": above,
        "input_tokens_upto": upto,
        "input_per_mtok": rates.input_per_mtok,
        "cache_read_per_mtok": rates.cache_read_per_mtok,
        "cache_write_per_mtok": rates.cache_write_per_mtok,
        "output_per_mtok": rates.output_per_mtok,
        "reasoning_per_mtok": rates.reasoning_per_mtok,
        "per_request_usd": rates.per_request_usd,
        "price_source": source,
        "price_model_id": model_id,
    }


def build_price_table(pairs: list[tuple[str, str]], config: Config, start: dt.datetime, end: dt.datetime) -> PriceTable:
    """Resolve prices for each (provider, model) over [start, end).

    Overrides win from their ``from`` date (or always); before it, genai-prices
    applies. A pair with no price at some time in range is listed in ``unpriced``
    (its requests are then reported as unpriced, never costed at $0).

    >>> t = build_price_table([("openai", "gpt-4o-mini")], Config(),
    ...                       dt.datetime(2026, 1, 1), dt.datetime(2026, 2, 1))
    >>> t.rows[0]["input_per_mtok"], t.rows[0]["output_per_mtok"], t.unpriced
    (0.15, 0.6, [])
    """
    table = PriceTable()
    discounts = {k.lower(): v for k, v in config.prices.discount_pct.items()}
    for provider, model in sorted(set(pairs)):
        factor = 1 - discounts.get(provider.lower(), 0.0) / 100
        overrides = sorted(
            (o for o in config.prices.overrides if o.provider == provider and o.model == model),
            key=lambda o: o.valid_from or dt.date.min,
        )
        first_override = (
            dt.datetime.combine(overrides[0].valid_from, dt.time())
            if overrides and overrides[0].valid_from
            else (_FAR_PAST if overrides else _FAR_FUTURE)
        )
        # genai-prices covers the time before the first override
        rows: list[dict[str, object]] = []
        if first_override > _FAR_PAST:
            segments = _genai_segments(provider, model, min(start, first_override), end) or []
            for lo, hi, mp, model_id in segments:
                hi = min(hi, first_override)
                if lo >= hi:
                    continue
                for above, upto in _brackets(mp):
                    rates = rates_from_model_price(mp, above + 1)
                    if rates is None:
                        continue
                    rows.append(
                        _row(
                            provider,
                            model,
                            lo,
                            hi,
                            above,
                            upto,
                            rates.scaled(factor),
                            "genai-prices",
                            model_id,
                        )
                    )
        for i, o in enumerate(overrides):
            lo = dt.datetime.combine(o.valid_from, dt.time()) if o.valid_from else _FAR_PAST
            hi = (
                dt.datetime.combine(overrides[i + 1].valid_from, dt.time())  # type: ignore[arg-type]
                if i + 1 < len(overrides)
                else _FAR_FUTURE
            )
            rows.append(
                _row(
                    provider,
                    model,
                    lo,
                    hi,
                    -1,
                    _NO_LIMIT,
                    _override_rates(o).scaled(factor),
                    "override",
                    model,
                )
            )
        starts = [r["valid_from"] for r in rows if isinstance(r["valid_from"], dt.datetime)]
        if not starts or min(starts) > start:
            table.unpriced.append((provider, model))
        table.rows.extend(rows)
    return table

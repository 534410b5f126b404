"""Reconciliation: does our telemetry explain our bill?

For each provider with ``model_api`` bill lines (FOCUS, :mod:`unitcost.ledger.layers`) in the period, and each
day, the amount billed is compared with the token cost computed from telemetry and prices:

* **billed**: the layer's cost column (``layers.cost_column``) of the provider's ``model_api`` lines, by the day
  their ``ChargePeriodStart`` falls in (UTC), converted to USD with ``currency_rates`` (a currency without a rate
  raises :class:`~unitcost.errors.CurrencyError`). Bill provider names map to usage provider ids as in the cost
  stack (``BILL_PROVIDER_SQL``: Bedrock -> aws, Vertex/Gemini -> google, ...).
* **telemetry**: the price-computed cost of the provider's requests on that day (docs/methods.md).
* **per model** when the bill names it: a line's ``SkuId``, ``SkuMeter``, ``ChargeDescription`` and ``x_`` custom
  columns are searched (case-insensitively) for the names of the provider's usage models; the longest name found
  wins. A provider all of whose lines name a model is compared per (day, model), any other per day only.
* ``gap_usd = billed - telemetry``; ``gap_pct = 100 * gap / |billed|`` (or ``/ telemetry`` when nothing was
  billed: -100%); a row is **flagged** when ``|gap_pct| > threshold_pct``.

Flagged rows carry *likely causes*, simple rules documented in docs/reconcile.md (constants ``CAUSE_*`` below).
Aggregation runs on the engine (daily sums per provider and model on each side); the comparison runs on those
small results, in integer micro-dollars.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from unitcost.analysis.economics import price_lookup
from unitcost.analysis.stack import BILL_PROVIDER_SQL, usd_micros
from unitcost.config import Config
from unitcost.ingest.base import quote_ident, sql_literal
from unitcost.ledger.allocation import from_micros, to_micros
from unitcost.ledger.costs import usage_in_range
from unitcost.ledger.layers import classify_sql
from unitcost.ledger.segments import price_segments
from unitcost.store import Store
from unitcost.store.models import models_in

CAUSE_TELEMETRY_MISSING = "telemetry missing"
CAUSE_UNPRICED = "unpriced model: add a price override"
CAUSE_CACHE = "cached tokens counted twice / cache discount not applied"
CAUSE_DISCOUNT = "discount not configured: prices.discount_pct"
CAUSE_PARTIAL_TELEMETRY = "telemetry missing for part of the traffic"
CAUSE_BILL_MISSING = "bill lines missing (export delay?)"

#: The cache rule: telemetry exceeds the bill by this fraction (low, high) of the cached input tokens priced at the
#: full input rate. 0.5 is a 50% cache discount not applied, 0.9 a 90% one, 1.0 cached tokens counted twice.
CACHE_GAP_BAND = (0.4, 1.25)
#: The discount rule: at least this many days with both sides, every daily billed/telemetry ratio within this
#: distance of their median.
STEADY_MIN_DAYS = 3
STEADY_MAX_SPREAD = 0.02

_MONEY = "decimal(38, 9)"


@dataclass(frozen=True)
class ReconciliationRow:
    """One day of one provider (and model, where the bill names it): billed vs telemetry."""

    day: dt.date
    provider: str
    model: str | None
    billed_usd: float
    telemetry_usd: float
    gap_usd: float  # billed - telemetry
    gap_pct: float  # 100 * gap / |billed| (or / |telemetry| when nothing was billed; 0 when both are 0)
    flagged: bool
    likely_causes: list[str]
    bill_lines: int
    requests: int
    unpriced_requests: int


@dataclass(frozen=True)
class ProviderReconciliation:
    """A provider's totals over the period."""

    provider: str
    per_model: bool  # every bill line of the provider names a usage model
    billed_usd: float
    telemetry_usd: float
    gap_usd: float
    gap_pct: float
    rows: int
    flagged_rows: int
    steady_ratio: float | None  # median billed/telemetry when steady across days (the discount rule)


@dataclass(frozen=True)
class Reconciliation:
    """Token cost from telemetry vs the ``model_api`` lines of the bill, per provider, model and day."""

    period_from: dt.datetime | None
    period_to: dt.datetime | None
    threshold_pct: float
    cost_column: str
    billed_usd: float
    telemetry_usd: float
    gap_usd: float
    gap_pct: float
    providers: list[ProviderReconciliation] = field(default_factory=list)
    rows: list[ReconciliationRow] = field(default_factory=list)
    #: providers with telemetry but no model_api bill lines in the period (self-hosted, billed elsewhere)
    unbilled_providers: dict[str, float] = field(default_factory=dict)

    def flagged(self) -> list[ReconciliationRow]:
        """The rows whose gap is above the threshold."""
        return [r for r in self.rows if r.flagged]

    def to_json(self) -> dict[str, Any]:
        """Return the JSON document (docs/reconcile.md)."""

        def ts(v: dt.datetime | None) -> str | None:
            return v.isoformat() if v is not None else None

        return {
            "period": {"from": ts(self.period_from), "to": ts(self.period_to)},
            "currency": "USD",
            "cost_column": self.cost_column,
            "threshold_pct": self.threshold_pct,
            "billed_usd": self.billed_usd,
            "telemetry_usd": self.telemetry_usd,
            "gap_usd": self.gap_usd,
            "gap_pct": self.gap_pct,
            "providers": [asdict(p) for p in self.providers],
            "rows": [asdict(r) | {"day": r.day.isoformat()} for r in self.rows],
            "unbilled_providers": [{"provider": p, "telemetry_usd": v} for p, v in self.unbilled_providers.items()],
        }


@dataclass
class _Cell:
    """Both sides of one (provider, day, model) in micro-dollars, with what the rules need."""

    billed: int = 0
    bill_lines: int = 0
    telemetry: int = 0
    requests: int = 0
    unpriced_requests: int = 0
    cached_at_input: int = 0  # cached input tokens priced at the full input rate


def _telemetry(
    store: Store, config: Config, start: dt.datetime | None, end: dt.datetime | None
) -> list[dict[str, Any]]:
    """Daily token cost per (provider, model), on the engine: the formula of docs/methods.md over segment sums.

    Also ``requests``, ``unpriced_requests`` and ``cached_at_input_usd`` (cached input tokens at the full input
    rate, for the cache rule).
    """
    u = usage_in_range(store, start, end)
    if not models_in(store, start, end):
        return []
    _, seg, lookup = price_lookup(config, store, start, end)
    grouped = u.group_by(
        day=u.ts.truncate("D"),
        provider=u.provider,
        model=u.model,
        **seg.of_requests(u),
        cache_hit=u.response_cache_hit.fill_null(False),
    ).aggregate(
        requests=u.count(),
        input_tokens=u.input_tokens.sum().fill_null(0),
        cache_read_tokens=u.cache_read_tokens.sum().fill_null(0),
        cache_write_tokens=u.cache_write_tokens.sum().fill_null(0),
        output_tokens=u.output_tokens.sum().fill_null(0),
        reasoning_tokens=u.reasoning_tokens.sum().fill_null(0),
    )
    g, token_cost = price_segments(grouped, lookup)
    zero = ibis.literal(0.0)
    priced: ir.BooleanValue = g.cache_hit | g.input_per_mtok.notnull()
    per = g.select(
        day=grouped.day,
        provider=grouped.provider,
        model=grouped.model,
        requests=grouped.requests,
        priced=priced,
        cost_usd=ibis.cases((g.cache_hit, zero), else_=token_cost).cast(_MONEY),
        cached_at_input_usd=ibis.cases(
            (g.cache_hit, zero), else_=g.cache_read_tokens * g.input_per_mtok / 1_000_000
        ).cast(_MONEY),
    )
    daily = per.group_by(["day", "provider", "model"]).aggregate(
        cost_usd=per.cost_usd.sum(where=per.priced).fill_null(0),
        requests=per.requests.sum(),
        unpriced_requests=per.requests.sum(where=~per.priced).fill_null(0),
        cached_at_input_usd=per.cached_at_input_usd.sum(where=per.priced).fill_null(0),
    )
    return daily.to_pyarrow().to_pylist()


def _bill(
    store: Store,
    config: Config,
    start: dt.datetime | None,
    end: dt.datetime | None,
    models: set[tuple[str, str]],
) -> list[tuple[Any, ...]]:
    """``model_api`` bill lines summed per (day, provider, model named by the line or NULL, currency)."""
    layer, _ = classify_sql(config)
    where = [f"({layer}) = 'model_api'"]
    if start is not None:
        where.append(f"ChargePeriodStart >= TIMESTAMP '{start.isoformat(sep=' ')}'")
    if end is not None:
        where.append(f"ChargePeriodStart < TIMESTAMP '{end.isoformat(sep=' ')}'")
    # the text that may name the model: SKU, meter, description and the values of the x_ custom columns
    custom = (
        "(SELECT string_agg(CASE WHEN json_type(j.value) = 'VARCHAR' THEN j.value ->> '$' ELSE j.value::VARCHAR END,"
        " ' ') FROM json_each(b.attributes) j WHERE starts_with(j.key, 'x_'))"
    )
    values = ", ".join(f"({sql_literal(p)}, {sql_literal(m)})" for p, m in sorted(models))
    if values:
        matched = f"""SELECT l.line, arg_max(m.model, length(m.model)) AS model
            FROM lines l JOIN (VALUES {values}) m(provider, model)
              ON l.provider = m.provider AND contains(l.text, lower(m.model))
            GROUP BY l.line"""
    else:
        matched = "SELECT NULL::BIGINT AS line, NULL::VARCHAR AS model WHERE false"
    cost = quote_ident(config.layers.cost_column)
    return store.sql(
        f"""WITH lines AS (
              SELECT b.rowid AS line, CAST(date_trunc('day', ChargePeriodStart) AS DATE) AS day,
                     {BILL_PROVIDER_SQL} AS provider, BillingCurrency AS currency, {cost} AS amount,
                     lower(concat_ws(' ', SkuId, SkuMeter, ChargeDescription, {custom})) AS text
              FROM bill_lines b WHERE {" AND ".join(where)}),
            matched AS ({matched})
            SELECT day, provider, matched.model, currency, sum(amount), count(*)
            FROM lines LEFT JOIN matched USING (line) GROUP BY ALL"""
    )


def _gap_pct(billed: int, telemetry: int) -> float:
    """100 * (billed - telemetry) / |billed|; against |telemetry| when nothing was billed (-100%); 0 when both are 0.

    >>> _gap_pct(110, 100), _gap_pct(0, 5), _gap_pct(0, 0)
    (9.0909, -100.0, 0.0)
    """
    reference = abs(billed) or abs(telemetry)
    return round(100 * (billed - telemetry) / reference, 4) if reference else 0.0


def _usd(micros: int) -> float:
    return float(from_micros(micros))


def _steady_ratio(days: dict[dt.date, _Cell]) -> float | None:
    """Median billed/telemetry over the days with both sides, when every day is within the spread of it."""
    ratios = [c.billed / c.telemetry for c in days.values() if c.billed > 0 and c.telemetry > 0]
    if len(ratios) < STEADY_MIN_DAYS:
        return None
    median = statistics.median(ratios)
    return round(median, 4) if max(abs(r - median) for r in ratios) <= STEADY_MAX_SPREAD else None


def _causes(
    cell: _Cell,
    day: dt.date,
    series: dict[dt.date, _Cell],
    provider_days: dict[dt.date, _Cell],
    steady: float | None,
    threshold_pct: float,
) -> list[str]:
    """The likely causes of a flagged gap (docs/reconcile.md), in rule order."""
    causes: list[str] = []
    gap = cell.billed - cell.telemetry
    if gap > 0:
        if cell.requests == 0:
            causes.append(CAUSE_TELEMETRY_MISSING)
        if cell.unpriced_requests > 0:
            causes.append(CAUSE_UNPRICED)
    else:
        low, high = CACHE_GAP_BAND
        if cell.cached_at_input > 0 and low * cell.cached_at_input <= -gap <= high * cell.cached_at_input:
            causes.append(CAUSE_CACHE)
        if steady is not None and steady < 1 - threshold_pct / 100:
            causes.append(CAUSE_DISCOUNT)
    if gap > 0 and not causes:
        # over-billed on some days only: another day of the same series has both sides and no such excess
        other_ok = any(
            d != day and c.billed > 0 and c.requests > 0 and _gap_pct(c.billed, c.telemetry) <= threshold_pct
            for d, c in series.items()
        )
        if other_ok:
            causes.append(CAUSE_PARTIAL_TELEMETRY)
    if gap < 0 and provider_days.get(day, _Cell()).bill_lines == 0:
        causes.append(CAUSE_BILL_MISSING)
    return causes


_Cells = dict[str, dict[tuple[dt.date, str | None], _Cell]]


def _cells(
    config: Config, telemetry: list[dict[str, Any]], bill: list[tuple[Any, ...]]
) -> tuple[_Cells, dict[str, bool], dict[str, int]]:
    """Both sides per billed provider and (day, model or None); whether each is per model; the unbilled providers."""
    billed: dict[tuple[str, dt.date, str | None], _Cell] = defaultdict(_Cell)
    for day, provider, model, currency, amount, lines in bill:
        line = billed[(provider, day, model)]
        line.billed += usd_micros(Decimal(amount or 0), currency or "USD", config)
        line.bill_lines += int(lines)
    per_model: dict[str, bool] = {}
    for provider, _, model in billed:
        per_model[provider] = per_model.get(provider, True) and model is not None

    cells: _Cells = {p: defaultdict(_Cell) for p in per_model}
    unbilled: dict[str, int] = defaultdict(int)
    for r in telemetry:
        provider, day = r["provider"], r["day"].date()
        cost = to_micros(Decimal(r["cost_usd"] or 0))
        if provider not in cells:
            unbilled[provider] += cost
            continue
        cell = cells[provider][(day, r["model"] if per_model[provider] else None)]
        cell.telemetry += cost
        cell.requests += int(r["requests"])
        cell.unpriced_requests += int(r["unpriced_requests"])
        cell.cached_at_input += to_micros(Decimal(r["cached_at_input_usd"] or 0))
    for (provider, day, model), line in billed.items():
        cell = cells[provider][(day, model if per_model[provider] else None)]
        cell.billed += line.billed
        cell.bill_lines += line.bill_lines
    return cells, per_model, dict(unbilled)


def reconcile(
    store: Store,
    config: Config,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    threshold_pct: float = 5.0,
) -> Reconciliation:
    """Return the token cost from telemetry vs the ``model_api`` bill lines of [start, end), per provider and day.

    >>> import os, tempfile
    >>> from unitcost.workspace import open_workspace
    >>> with open_workspace(os.path.join(tempfile.mkdtemp(), "w.duckdb")) as ws:
    ...     reconcile(ws.store, ws.config).rows
    []
    """
    if threshold_pct < 0:
        raise ValueError(f"threshold_pct must be >= 0, got {threshold_pct}")
    telemetry = _telemetry(store, config, start, end)
    models = {(r["provider"], r["model"]) for r in telemetry if r["provider"] and r["model"]}
    bill = _bill(store, config, start, end, models)

    cells, per_model, unbilled = _cells(config, telemetry, bill)
    rows: list[ReconciliationRow] = []
    providers: list[ProviderReconciliation] = []
    all_billed = all_telemetry = 0
    for provider in sorted(cells):
        by_day: dict[dt.date, _Cell] = defaultdict(_Cell)  # the provider's daily totals over its models
        series: dict[str | None, dict[dt.date, _Cell]] = defaultdict(dict)
        for (day, model), c in cells[provider].items():
            t = by_day[day]
            t.billed += c.billed
            t.telemetry += c.telemetry
            t.bill_lines += c.bill_lines
            t.requests += c.requests
            series[model][day] = c
        steady = _steady_ratio(by_day)
        own: list[ReconciliationRow] = []
        for (day, model), c in sorted(cells[provider].items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            pct = _gap_pct(c.billed, c.telemetry)
            flagged = abs(pct) > threshold_pct
            causes = _causes(c, day, series[model], by_day, steady, threshold_pct) if flagged else []
            own.append(
                ReconciliationRow(
                    day=day,
                    provider=provider,
                    model=model,
                    billed_usd=_usd(c.billed),
                    telemetry_usd=_usd(c.telemetry),
                    gap_usd=_usd(c.billed - c.telemetry),
                    gap_pct=pct,
                    flagged=flagged,
                    likely_causes=causes,
                    bill_lines=c.bill_lines,
                    requests=c.requests,
                    unpriced_requests=c.unpriced_requests,
                )
            )
        total_billed = sum(c.billed for c in by_day.values())
        total_telemetry = sum(c.telemetry for c in by_day.values())
        all_billed += total_billed
        all_telemetry += total_telemetry
        providers.append(
            ProviderReconciliation(
                provider=provider,
                per_model=per_model[provider],
                billed_usd=_usd(total_billed),
                telemetry_usd=_usd(total_telemetry),
                gap_usd=_usd(total_billed - total_telemetry),
                gap_pct=_gap_pct(total_billed, total_telemetry),
                rows=len(own),
                flagged_rows=sum(r.flagged for r in own),
                steady_ratio=steady,
            )
        )
        rows += own
    rows.sort(key=lambda r: (r.day, r.provider, r.model or ""))
    providers.sort(key=lambda p: (-p.billed_usd, p.provider))
    return Reconciliation(
        period_from=start,
        period_to=end,
        threshold_pct=threshold_pct,
        cost_column=config.layers.cost_column,
        billed_usd=_usd(all_billed),
        telemetry_usd=_usd(all_telemetry),
        gap_usd=_usd(all_billed - all_telemetry),
        gap_pct=_gap_pct(all_billed, all_telemetry),
        providers=providers,
        rows=rows,
        unbilled_providers={p: _usd(v) for p, v in sorted(unbilled.items(), key=lambda kv: -kv[1])},
    )

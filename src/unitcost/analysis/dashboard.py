"""The data behind the HTML report: the cost report plus the series its charts draw.

Every ratio a chart shows is computed here, so the renderer only draws.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from unitcost.alerts.state import list_alerts
from unitcost.analysis.economics import CostReport, cost_report, cost_timeseries
from unitcost.analysis.stack import BILL_PROVIDER_SQL, CostStack, cost_stack
from unitcost.config import LAYERS, Config
from unitcost.errors import CurrencyError
from unitcost.ingest.base import quote_ident
from unitcost.ledger.costs import usage_in_range
from unitcost.ledger.layers import classify_sql
from unitcost.ledger.people import people_costs
from unitcost.store import Store

DASHBOARD_DIMENSIONS = ["tenant", "feature", "workflow", "model", "provider", "release", "prompt_version"]
#: What each layer's unit cost is per: model_api per 1K tokens, gpu_compute per GPU-hour used, the rest per 1K
#: requests.
UNIT_OF_LAYER = {"model_api": "1K tokens", "gpu_compute": "GPU-hour used"}
PER_REQUESTS = "1K requests"


@dataclass(frozen=True)
class LayerUnitCost:
    """One layer of the stack: its cost, share, how it was allocated and its unit cost."""

    layer: str
    cost_usd: float
    share: float | None
    basis: str  # the allocation bases of its rows: "bill: tag", "bill: requests", "telemetry", ...
    unit: str  # "1K tokens", "GPU-hour used" or "1K requests"
    unit_cost_usd: float | None


@dataclass(frozen=True)
class FeatureLoadedCost:
    """A feature's token-only and fully loaded cost per successful outcome."""

    feature: str | None
    token_cost_usd: float
    stack_cost_usd: float
    successful_outcomes: int
    token_cost_per_successful_outcome_usd: float | None
    fully_loaded_per_successful_outcome_usd: float | None
    loaded_to_token_ratio: float | None  # fully loaded cost / token cost


@dataclass(frozen=True)
class StackView:
    """The whole stack for the report's period: daily cost by layer, unit cost per layer, cost per outcome.

    ``has_bill`` is False when no bill line falls in the period; ``note`` says why the stack is not shown
    (e.g. a bill currency without a rate), else None.
    """

    has_bill: bool = False
    note: str | None = None
    stack: CostStack | None = None
    daily_by_layer: pa.Table = field(
        default_factory=lambda: pa.table(
            {
                "period": pa.array([], pa.timestamp("us")),
                "key": pa.array([], pa.string()),
                "cost_usd": pa.array([], pa.float64()),
            }
        )
    )
    layers: list[LayerUnitCost] = field(default_factory=list)
    features: list[FeatureLoadedCost] = field(default_factory=list)
    total_usd: float = 0.0
    token_share: float | None = None  # the report's token cost (telemetry) / the stack's total
    gpu_hours_used: float = 0.0
    unallocated_usd: float = 0.0


@dataclass(frozen=True)
class Dashboard:
    """Everything the HTML report shows, already computed."""

    report: CostReport
    daily_by_feature: pa.Table
    daily_by_model: pa.Table
    daily_by_prompt_version: pa.Table
    tenant_pareto: pa.Table
    notes: list[str] = field(default_factory=list)
    stack: StackView = field(default_factory=StackView)
    #: the alerts firing when the report was made (``unitcost watch`` stores them)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fully_loaded(self) -> bool:
        """True when the report's total holds more than tokens (bill lines, people time, GPU pools)."""
        return abs(self.report.total_cost_usd - self.report.token_cost_usd) >= 0.005


def _safe_div(num: pa.ChunkedArray, den: pa.ChunkedArray) -> pa.ChunkedArray:
    den_f = pc.cast(den, pa.float64())
    return pc.if_else(pc.equal(den_f, 0.0), None, pc.divide(pc.cast(num, pa.float64()), den_f))


def with_unit_ratios(series: pa.Table) -> pa.Table:
    """Add cost per request, per successful outcome, and tokens per request to a time series.

    >>> t = pa.table({"cost_usd": [2.0], "requests": [4], "successful_outcomes": [0],
    ...               "input_tokens": [400], "output_tokens": [100]})
    >>> with_unit_ratios(t).column("cost_per_successful_outcome_usd").to_pylist()
    [None]
    """
    return (
        series.append_column("cost_per_request_usd", _safe_div(series["cost_usd"], series["requests"]))
        .append_column("cost_per_successful_outcome_usd", _safe_div(series["cost_usd"], series["successful_outcomes"]))
        .append_column("input_tokens_per_request", _safe_div(series["input_tokens"], series["requests"]))
        .append_column("output_tokens_per_request", _safe_div(series["output_tokens"], series["requests"]))
    )


def pareto(rows: list[tuple[str | None, float]]) -> pa.Table:
    """Rank keys by cost: ``rank``, ``key``, ``cost_usd``, ``share``, ``cumulative_share``.

    >>> pareto([("a", 1.0), ("b", 3.0)]).column("cumulative_share").to_pylist()
    [0.75, 1.0]
    """
    ordered = sorted(rows, key=lambda r: -r[1])
    total = sum(c for _, c in ordered) or 1.0
    cumulative = 0.0
    out: dict[str, list[object]] = {
        "rank": [],
        "key": [],
        "cost_usd": [],
        "share": [],
        "cumulative_share": [],
    }
    for i, (key, cost) in enumerate(ordered, start=1):
        cumulative += cost
        out["rank"].append(i)
        out["key"].append(key)
        out["cost_usd"].append(cost)
        out["share"].append(cost / total)
        out["cumulative_share"].append(cumulative / total)
    return pa.table(out)


def _period_sql(column: str, start: dt.datetime | None, end: dt.datetime | None) -> str:
    where = [f"{column} >= TIMESTAMP '{start.isoformat(sep=' ')}'"] if start is not None else []
    if end is not None:
        where.append(f"{column} < TIMESTAMP '{end.isoformat(sep=' ')}'")
    return " AND ".join(where) or "true"


def _usd(amount: Decimal | float | None, currency: str | None, config: Config) -> float:
    value = float(amount or 0)
    if currency in (None, "USD"):
        return value
    rate = config.currency_rates.get(str(currency))
    if rate is None:
        raise CurrencyError(f"bill lines in {currency} but no exchange rate: add `currency_rates: {{{currency}: ...}}`")
    return value * rate


def daily_cost_by_layer(
    store: Store, config: Config, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pa.Table:
    """Return cost per day and layer in USD: ``period``, ``key`` (the layer), ``cost_usd``.

    The same sources as :func:`~unitcost.analysis.stack.cost_stack`, by day instead of by key: bill lines
    (by ``ChargePeriodStart``, converted with ``currency_rates``), the telemetry's token cost of providers with
    no ``model_api`` bill lines, and people time. Summed over the days, each layer is the stack's layer total.
    """
    layer, _ = classify_sql(config)
    where = _period_sql("ChargePeriodStart", start, end)
    cost = quote_ident(config.layers.cost_column)
    totals: dict[tuple[dt.datetime, str], float] = defaultdict(float)
    for day, name, currency, amount in store.sql(
        f"""SELECT CAST(date_trunc('day', ChargePeriodStart) AS TIMESTAMP), {layer}, BillingCurrency, sum({cost})
            FROM bill_lines WHERE {where} GROUP BY ALL"""
    ):
        totals[(day, name)] += _usd(amount, currency, config)
    billed = {
        r[0]
        for r in store.sql(
            f"SELECT DISTINCT {BILL_PROVIDER_SQL} FROM bill_lines WHERE {where} AND {layer} = 'model_api'"
        )
    }
    tokens = cost_timeseries(store, config, start, end, "day", "provider").select(["period", "key", "cost_usd"])
    for r in tokens.to_pylist():
        if r["key"] not in billed and r["cost_usd"]:
            totals[(r["period"], "model_api")] += r["cost_usd"]
    end_day = None if end is None else end.date() + (dt.timedelta(0) if end.time() == dt.time() else dt.timedelta(1))
    people = people_costs(store, config, start.date() if start else None, end_day)
    for r in people.select(["date", "cost_usd"]).to_pylist():
        if r["cost_usd"]:
            totals[(dt.datetime.combine(r["date"], dt.time()), "people")] += r["cost_usd"]
    rows = sorted(totals.items(), key=lambda kv: (kv[0][0], LAYERS.index(kv[0][1])))
    return pa.table(
        {
            "period": pa.array([k[0] for k, _ in rows], pa.timestamp("us")),
            "key": pa.array([k[1] for k, _ in rows], pa.string()),
            "cost_usd": pa.array([v for _, v in rows], pa.float64()),
        }
    )


def _ratio(num: float, den: float, scale: float = 1.0) -> float | None:
    return num * scale / den if den else None


def build_stack_view(
    store: Store, config: Config, report: CostReport, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> StackView:
    """Return the stack by feature for the period, its daily cost by layer and the unit costs the report shows."""
    ((lines,),) = store.sql(f"SELECT count(*) FROM bill_lines WHERE {_period_sql('ChargePeriodStart', start, end)}")
    if not lines:
        return StackView()
    try:
        stack = cost_stack(store, config, start, end, by="feature")
        daily = daily_cost_by_layer(store, config, start, end)
    except CurrencyError as e:
        return StackView(has_bill=True, note=f"The stack cannot be shown: {e}")
    usage = usage_in_range(store, start, end)
    gpu_hours = float(usage.gpu_seconds.sum().fill_null(0).to_pyarrow().as_py() or 0) / 3600
    total = float(stack.total_usd())
    tokens = report.input_tokens + report.output_tokens
    bases: dict[str, set[str]] = defaultdict(set)
    for stack_row in stack.rows:
        bases[stack_row.layer].add(stack_row.basis)
    for name in stack.unallocated_usd:
        bases[name].add("unallocated")
    layers = []
    for name in (n for n in LAYERS if n in stack.layer_totals_usd):
        cost = float(stack.layer_totals_usd[name])
        unit = UNIT_OF_LAYER.get(name, PER_REQUESTS)
        if name == "model_api":
            unit_cost = _ratio(cost, tokens, 1000)
        elif name == "gpu_compute":
            unit_cost = _ratio(cost, gpu_hours)
        else:
            unit_cost = _ratio(cost, report.requests, 1000)
        layers.append(LayerUnitCost(name, cost, _ratio(cost, total), ", ".join(sorted(bases[name])), unit, unit_cost))
    per_feature = {k: float(sum(v.values(), Decimal(0))) for k, v in stack.by_key().items()}
    token_rows = {r.key: r for r in report.breakdown.get("feature", [])}
    features = []
    for key in sorted(set(per_feature) | set(token_rows), key=lambda k: -per_feature.get(k, 0.0)):
        row = token_rows.get(key)
        token_cost = row.cost_usd if row else 0.0
        outcomes = row.successful_outcomes if row else 0
        loaded = per_feature.get(key, 0.0)
        features.append(
            FeatureLoadedCost(
                key,
                token_cost,
                loaded,
                outcomes,
                _ratio(token_cost, outcomes),
                _ratio(loaded, outcomes),
                _ratio(loaded, token_cost),
            )
        )
    return StackView(
        has_bill=True,
        stack=stack,
        daily_by_layer=daily,
        layers=layers,
        features=features,
        total_usd=total,
        token_share=_ratio(report.token_cost_usd, total),
        gpu_hours_used=gpu_hours,
        unallocated_usd=float(sum(stack.unallocated_usd.values(), Decimal(0))),
    )


def build_dashboard(
    store: Store, config: Config, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> Dashboard:
    """Return the report, the daily series the HTML report draws and the whole stack (when there is a bill)."""
    report = cost_report(store, config, start, end, by=DASHBOARD_DIMENSIONS)
    by_feature = with_unit_ratios(cost_timeseries(store, config, start, end, "day", "feature"))
    by_model = with_unit_ratios(cost_timeseries(store, config, start, end, "day", "model"))
    by_prompt = with_unit_ratios(cost_timeseries(store, config, start, end, "day", "prompt_version"))
    tenants = pareto([(r.key, r.cost_usd) for r in report.breakdown.get("tenant", [])])
    notes = []
    if report.unpriced_requests:
        names = ", ".join(f"{u.provider}/{u.model} ({u.requests:,} requests)" for u in report.unpriced)
        notes.append(
            f"{report.unpriced_requests:,} requests have no price and are excluded from costs: {names}. "
            "Add a price override in unitcost.yaml (prices.overrides)."
        )
    stack = build_stack_view(store, config, report, start, end)
    alerts = list_alerts(store, "firing")
    return Dashboard(report, by_feature, by_model, by_prompt, tenants, notes, stack, alerts)

"""The data behind the HTML report: the cost report plus the series its charts draw.

Every ratio a chart shows is computed here, so the renderer only draws.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from unitcost.analysis.economics import CostReport, cost_report, cost_timeseries
from unitcost.config import Config
from unitcost.store import Store

DASHBOARD_DIMENSIONS = ["tenant", "feature", "workflow", "model", "provider", "release", "prompt_version"]


@dataclass(frozen=True)
class Dashboard:
    """Everything the HTML report shows, already computed."""

    report: CostReport
    daily_by_feature: pa.Table
    daily_by_model: pa.Table
    daily_by_prompt_version: pa.Table
    tenant_pareto: pa.Table
    notes: list[str] = field(default_factory=list)


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


def build_dashboard(
    store: Store, config: Config, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> Dashboard:
    """Return the report and the daily series the HTML report draws."""
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
    return Dashboard(report, by_feature, by_model, by_prompt, tenants, notes)

"""The measured starting point of scenarios, ROI and the review: what a month looks like today.

Over a window (default the last 30 days of data), per use case (feature) and per model it serves:

* volume: units of work, successful outcomes, requests, application cache hits, model calls;
* the window starts no earlier than the first row: with less history than asked, the days there are are scaled
  to a month (and less than one day is an error);
* tokens: input (of which cached) and output tokens, and their cost split by price component (uncached input,
  cache read, output, the rest: cache write and per-request fees), so a scenario can change tokens per
  request, the cached share or prices and re-price exactly the same way the ledger does;
* whether the model runs on a self-hosted GPU pool (its tokens then cost nothing: the pool's bill does);
* tenants: how many, the median tenant's units of work, and the support time per tenant (the people cost of ops
  hours recorded against a tenant, spread over all tenants).

Per cost-stack layer: the fully loaded cost of the window (the bill allocated, :func:`~unitcost.analysis
.cost_report`; the token cost alone when there is no bill) and its **variable share**: the least-squares slope of
the layer's daily cost on the day's requests, times mean requests over mean cost, clipped to [0, 1] (1: cost
follows traffic; 0: fixed), except ``people``, always 0: people time follows releases and incidents, and the
scenarios' support-burden driver moves it. Everything is scaled to a month of 30.4375 days.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from unitcost.analysis.economics import cost_report, cost_timeseries
from unitcost.analysis.explain import _cells
from unitcost.analysis.stack import self_hosted_pools
from unitcost.analysis.windows import Window
from unitcost.config import Config
from unitcost.errors import PeriodError
from unitcost.store import Store

DAYS_PER_MONTH = 365.25 / 12
DEFAULT_WINDOW_DAYS = 30


@dataclass(frozen=True)
class ModelUse:
    """One model as a feature uses it, per month."""

    provider: str
    model: str
    pool: bool  # served by a self-hosted GPU pool (no token cost)
    calls: float
    input_tokens: float
    cache_read_tokens: float
    output_tokens: float
    cost_input_usd: float  # uncached input
    cost_cache_read_usd: float
    cost_output_usd: float
    cost_other_usd: float  # cache writes and per-request fees

    @property
    def token_cost_usd(self) -> float:
        """All its token cost."""
        return self.cost_input_usd + self.cost_cache_read_usd + self.cost_output_usd + self.cost_other_usd


@dataclass
class FeatureBaseline:
    """A use case's month: volume, outcomes and the models it calls."""

    feature: str
    units: float
    successes: float
    requests: float
    cache_hits: float
    models: list[ModelUse] = field(default_factory=list)
    fully_loaded_usd: float = 0.0
    layers: dict[str, float] = field(default_factory=dict)

    @property
    def token_cost_usd(self) -> float:
        """Token cost of its API calls."""
        return sum(m.token_cost_usd for m in self.models if not m.pool)


@dataclass
class Baseline:
    """The measured month everything else starts from."""

    start: dt.datetime
    end: dt.datetime
    features: dict[str, FeatureBaseline]
    layers: dict[str, float]  # fully loaded cost per layer per month
    variable_share: dict[str, float]  # per layer, in [0, 1]
    has_bill: bool
    tenants: int
    median_tenant_units: float  # per month
    cap_savings_share: float  # share of input tokens above each feature's 90th percentile request
    people_by_activity: dict[str, float] = field(default_factory=dict)  # per month: incident, release, ...
    #: people cost a month recorded against a tenant (ops hours with a tenant), per tenant: support time
    support_per_tenant_usd: float = 0.0

    @property
    def days(self) -> float:
        """Length of the window in days."""
        return (self.end - self.start).total_seconds() / 86400

    @property
    def total_usd(self) -> float:
        """Fully loaded cost of a month."""
        return float(sum(self.layers.values()))

    @property
    def units(self) -> float:
        """Units of work per month."""
        return float(sum(f.units for f in self.features.values()))

    @property
    def successes(self) -> float:
        """Successful outcomes per month."""
        return float(sum(f.successes for f in self.features.values()))

    @property
    def requests(self) -> float:
        """Requests per month (cache hits included)."""
        return float(sum(f.requests for f in self.features.values()))


def _window(store: Store, days: int, at: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """The last ``days`` days before ``at`` (default: just after the newest row), never before the first row."""
    first, newest = store.sql("SELECT min(ts), max(ts) FROM usage")[0]
    if newest is None:
        raise PeriodError("the workspace has no usage yet: ingest some (or run unitcost demo) first")
    end = at if at is not None else newest + dt.timedelta(microseconds=1)
    start = max(end - dt.timedelta(days=days), first)
    if end - start < dt.timedelta(days=1):
        raise PeriodError(f"less than a day of data before {end:%Y-%m-%d %H:%M}: a month cannot be measured yet")
    return start, end


def variable_shares(
    daily_cost: dict[str, dict[dt.datetime, float]], daily_requests: dict[dt.datetime, float]
) -> dict[str, float]:
    """Per layer, the share of its cost that moves with requests: slope x mean(requests) / mean(cost), in [0, 1].

    >>> days = [dt.datetime(2026, 1, d) for d in range(1, 6)]
    >>> req = {d: 100.0 * i for i, d in enumerate(days, 1)}
    >>> cost = {"storage": {d: 10.0 + 0.1 * req[d] for d in days}, "people": {d: 50.0 for d in days}}
    >>> {k: round(v, 3) for k, v in variable_shares(cost, req).items()}
    {'storage': 0.75, 'people': 0.0}
    """
    out = {}
    days = sorted(daily_requests)
    x = np.array([daily_requests[d] for d in days])
    for layer, series in daily_cost.items():
        y = np.array([series.get(d, 0.0) for d in days])
        if len(days) < 3 or x.std() == 0 or y.mean() <= 0:
            out[layer] = 1.0 if layer == "model_api" else 0.0
            continue
        slope = float(np.cov(x, y, bias=True)[0, 1] / x.var())
        out[layer] = float(np.clip(slope * x.mean() / y.mean(), 0.0, 1.0))
    return out


def measure_baseline(
    store: Store, config: Config, *, window_days: int = DEFAULT_WINDOW_DAYS, at: dt.datetime | None = None
) -> Baseline:
    """Measure the baseline month from the last ``window_days`` days of data before ``at`` (default: newest)."""
    start, end = _window(store, window_days, at)
    scale = DAYS_PER_MONTH / ((end - start).total_seconds() / 86400)
    pools = self_hosted_pools(store, config)
    period = Window(start, end, "baseline")
    cells = _cells(store, config, period, Window(start, start, "none"), ["feature"], pools)
    cells = cells[cells["window"] == 1]
    report = cost_report(store, config, start, end, by=["feature"])
    features: dict[str, FeatureBaseline] = {}
    by_feature = {row.key: row for row in report.breakdown.get("feature", [])}
    for key, rows in cells.groupby(cells["feature"].fillna("(not set)"), sort=True):
        row = by_feature.get(None if key == "(not set)" else key)
        models = []
        for (provider, model, pool), g in rows[rows["model_calls"] > 0].groupby(["provider", "model", "pool"]):
            models.append(
                ModelUse(
                    provider=str(provider),
                    model=str(model),
                    pool=bool(pool),
                    calls=float(g["model_calls"].sum()) * scale,
                    input_tokens=float(g["input_tokens"].sum()) * scale,
                    cache_read_tokens=float(g["cache_read_tokens"].sum()) * scale,
                    output_tokens=float(g["output_tokens"].sum()) * scale,
                    cost_input_usd=float(g["cost_input_uncached"].sum()) * scale,
                    cost_cache_read_usd=float(g["cost_cache_read"].sum()) * scale,
                    cost_output_usd=float(g["cost_output"].sum()) * scale,
                    cost_other_usd=float((g["cost_cache_write"] + g["cost_fee"]).sum()) * scale,
                )
            )
        requests = float(rows["requests"].sum()) * scale
        calls = float(rows["model_calls"].sum()) * scale
        features[str(key)] = FeatureBaseline(
            feature=str(key),
            units=float(rows["units"].sum()) * scale,
            successes=float(row.successful_outcomes) * scale if row else 0.0,
            requests=requests,
            cache_hits=requests - calls,
            models=models,
            fully_loaded_usd=float(row.fully_loaded_cost_usd or row.cost_usd) * scale if row else 0.0,
            layers={k: v * scale for k, v in (row.layers if row else {}).items()},
        )
    has_bill = bool(report.layers)
    layers = (
        {k: v * scale for k, v in report.layers.items()}
        if report.layers
        else {"model_api": report.token_cost_usd * scale}
    )
    # whole days only: a partial first or last day would make the shares depend on the hour the data ends
    first_day = dt.datetime.combine(start.date(), dt.time()) + (
        dt.timedelta(days=1) if start.time() != dt.time() else dt.timedelta(0)
    )
    last_day = dt.datetime.combine(end.date(), dt.time())  # exclusive
    daily_requests = {
        r["period"]: float(r["requests"])
        for r in cost_timeseries(store, config, first_day, last_day, "day", None, units=False).to_pylist()
    }
    daily_cost: dict[str, dict[dt.datetime, float]] = defaultdict(dict)
    if has_bill:
        from unitcost.analysis.dashboard import daily_cost_by_layer

        for r in daily_cost_by_layer(store, config, first_day, last_day).to_pylist():
            daily_cost[r["key"]][r["period"]] = float(r["cost_usd"])
    for layer in layers:
        daily_cost.setdefault(layer, {})
    shares = variable_shares(dict(daily_cost), daily_requests) if daily_requests else {k: 1.0 for k in layers}
    if not has_bill:
        shares = {"model_api": 1.0}
    # people time follows releases and incidents, not traffic (weekday rhythms would fake a correlation):
    # scenarios move it with the support-burden driver instead
    shares["people"] = 0.0
    tenants = store.sql(
        "SELECT count(*), median(n) FROM (SELECT tenant, count(DISTINCT unit_id) AS n FROM usage "
        "WHERE ts >= ? AND ts < ? GROUP BY tenant)",
        [start, end],
    )[0]
    cap = store.sql(
        """WITH q AS (SELECT feature, quantile_cont(input_tokens, 0.9) AS p90 FROM usage
                      WHERE ts >= ? AND ts < ? GROUP BY feature)
           SELECT sum(greatest(u.input_tokens - q.p90, 0)) / nullif(sum(u.input_tokens), 0)
           FROM usage u JOIN q ON u.feature IS NOT DISTINCT FROM q.feature WHERE u.ts >= ? AND u.ts < ?""",
        [start, end, start, end],
    )[0][0]
    from unitcost.ledger.people import people_costs

    people: dict[str, float] = defaultdict(float)
    tenant_support = 0.0
    for r in people_costs(store, config, start.date(), end.date()).to_pylist():
        people[str(r["activity"])] += float(r["cost_usd"]) * scale
        if r["tenant"] is not None:
            tenant_support += float(r["cost_usd"]) * scale
    return Baseline(
        start=start,
        end=end,
        features=features,
        layers=layers,
        variable_share={k: shares.get(k, 0.0) for k in layers},
        has_bill=has_bill,
        tenants=int(tenants[0] or 0),
        median_tenant_units=float(tenants[1] or 0.0) * scale,
        cap_savings_share=float(cap or 0.0),
        people_by_activity=dict(people),
        support_per_tenant_usd=tenant_support / max(int(tenants[0] or 0), 1),
    )

"""The Prometheus ``/metrics`` page: month-to-date cost, unit economics, budgets and firing alerts as gauges.

Every figure is month-to-date (UTC calendar month) at ``at``, by default the newest usage timestamp (data time,
so a replayed or late workspace reads the same as a live one). One cost report (by tenant and feature) and one
budget evaluation make a page; the page is cached for ``CACHE_TTL_S`` seconds since Prometheus scrapes often.

Label values are bounded: at most ``alerts.metrics.max_label_values`` per label (the largest cost first), the
rest summed under ``__other__`` (ratios of ``__other__`` are computed from the summed parts). A missing key (no
tenant on the requests) is ``__none__``. Budget names and alert kinds come from the configuration and a fixed
list, so they are not capped. docs/alerts.md lists the metrics.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from unitcost.alerts.budgets import BudgetStatus, budget_status, period_bounds
from unitcost.alerts.model import KINDS
from unitcost.analysis import BreakdownRow, CostReport, cost_report
from unitcost.config import Config
from unitcost.periods import naive_utc
from unitcost.store import Store

#: seconds a rendered page is served again before it is computed anew
CACHE_TTL_S = 30.0
OTHER = "__other__"
NONE = "__none__"


@dataclass
class _Totals:
    """Additive figures of one label value (the ratios are computed from them)."""

    cost_usd: float = 0.0
    successful_outcomes: int = 0
    requests: int = 0
    input_tokens: float = 0.0
    cache_read_tokens: float = 0.0
    output_tokens: float = 0.0

    @classmethod
    def of(cls, row: BreakdownRow) -> _Totals:
        loaded = row.fully_loaded_cost_usd if row.fully_loaded_cost_usd is not None else row.cost_usd
        return cls(
            cost_usd=float(loaded),
            successful_outcomes=row.successful_outcomes,
            requests=row.requests,
            input_tokens=float(row.input_tokens),
            cache_read_tokens=float(row.input_tokens * (row.cached_share or 0.0)),
            output_tokens=float(row.output_tokens),
        )

    def add(self, other: _Totals) -> None:
        self.cost_usd += other.cost_usd
        self.successful_outcomes += other.successful_outcomes
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.output_tokens += other.output_tokens


def cap_labels(values: Iterable[tuple[str, _Totals]], limit: int) -> list[tuple[str, _Totals]]:
    """Keep the ``limit`` largest label values by cost; sum the rest under ``__other__``."""
    ranked = sorted(values, key=lambda kv: (-kv[1].cost_usd, kv[0]))
    if len(ranked) <= limit:
        return ranked
    other = _Totals()
    for _, totals in ranked[limit:]:
        other.add(totals)
    return [*ranked[:limit], (OTHER, other)]


def cap_values(values: dict[str, float], limit: int) -> list[tuple[str, float]]:
    """Keep the ``limit`` largest values; sum the rest under ``__other__``.

    >>> cap_values({"a": 5.0, "b": 1.0, "c": 3.0, "d": 2.0}, 2)
    [('a', 5.0), ('c', 3.0), ('__other__', 3.0)]
    """
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) <= limit:
        return ranked
    return [*ranked[:limit], (OTHER, sum(v for _, v in ranked[limit:]))]


def _by_key(report: CostReport, dim: str, limit: int) -> list[tuple[str, _Totals]]:
    return cap_labels(
        ((NONE if r.key is None else str(r.key), _Totals.of(r)) for r in report.breakdown.get(dim, [])), limit
    )


class _Page(Collector):
    """The gauges of one render (a custom collector for a fresh registry)."""

    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def gauge(self, name: str, doc: str, labels: list[str], samples: Iterable[tuple[list[str], float]]) -> None:
        g = GaugeMetricFamily(name, doc, labels=labels)
        for values, value in samples:
            g.add_metric(values, value)
        self.metrics.append(g)

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def _page(
    report: CostReport, statuses: list[BudgetStatus], firing: dict[str, int], at: dt.datetime, limit: int
) -> _Page:
    page = _Page()
    page.gauge(
        "unitcost_data_timestamp_seconds",
        "Data time the figures are computed at (Unix seconds); month-to-date is the month of this time.",
        [],
        [([], at.replace(tzinfo=dt.UTC).timestamp())],
    )
    page.gauge(
        "unitcost_cost_usd",
        "Fully loaded cost month-to-date by cost-stack layer (USD).",
        ["layer"],
        [([k], v) for k, v in cap_values(report.layers, limit)],
    )
    tenants = _by_key(report, "tenant", limit)
    page.gauge(
        "unitcost_cost_usd_by_tenant",
        "Fully loaded cost month-to-date by tenant (USD).",
        ["tenant"],
        [([k], t.cost_usd) for k, t in tenants],
    )
    features = _by_key(report, "feature", limit)
    page.gauge(
        "unitcost_cost_usd_by_feature",
        "Fully loaded cost month-to-date by feature (USD).",
        ["feature"],
        [([k], t.cost_usd) for k, t in features],
    )
    page.gauge(
        "unitcost_cost_per_successful_outcome_usd",
        "Fully loaded cost month-to-date / successful outcomes, by feature (USD).",
        ["feature"],
        [([k], t.cost_usd / t.successful_outcomes) for k, t in features if t.successful_outcomes],
    )
    page.gauge(
        "unitcost_cache_hit_ratio",
        "Prompt-cache read tokens / input tokens month-to-date, by feature.",
        ["feature"],
        [([k], t.cache_read_tokens / t.input_tokens) for k, t in features if t.input_tokens],
    )
    page.gauge(
        "unitcost_tokens_per_request",
        "Tokens per model call month-to-date, by feature and direction (input, output).",
        ["feature", "direction"],
        [
            ([k, direction], tokens / t.requests)
            for k, t in features
            if t.requests
            for direction, tokens in (("input", t.input_tokens), ("output", t.output_tokens))
        ],
    )
    for name, doc, attr in (
        ("unitcost_budget_amount_usd", "Budget amount for its period (USD).", "amount_usd"),
        (
            "unitcost_budget_spent_usd",
            "Fully loaded spend of the budget's scope in its period so far (USD).",
            "spent_usd",
        ),
        (
            "unitcost_budget_remaining_usd",
            "Budget amount minus spend so far (USD; negative when over).",
            "remaining_usd",
        ),
        (
            "unitcost_budget_projected_usd",
            "Projected spend of the budget's scope by the period end (USD).",
            "projected_usd",
        ),
    ):
        page.gauge(name, doc, ["budget"], [([s.name], float(getattr(s, attr))) for s in statuses])
    page.gauge(
        "unitcost_alerts_firing",
        "Alerts with status firing in the workspace's alerts table, by kind.",
        ["kind"],
        [([kind], float(firing.get(kind, 0))) for kind in sorted({*KINDS, *firing})],
    )
    return page


def _firing(store: Store) -> dict[str, int]:
    rows = store.sql("SELECT kind, count(*) FROM alerts WHERE status = 'firing' GROUP BY kind")
    return {str(kind): int(n) for kind, n in rows if kind is not None}


def metrics_time(store: Store) -> dt.datetime:
    """Return the default evaluation time: just after the newest usage timestamp, else now (naive UTC)."""
    [(newest,)] = store.sql("SELECT max(ts) FROM usage")
    if newest is None:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return newest + dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class _Cached:
    key: tuple[str, dt.datetime | None]
    made: float
    body: bytes


_cache: weakref.WeakKeyDictionary[Store, _Cached] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def render_metrics(store: Store, config: Config, at: dt.datetime | None = None, *, ttl_s: float = CACHE_TTL_S) -> bytes:
    """Return the Prometheus text exposition of the month-to-date gauges (cached ``ttl_s`` seconds).

    >>> import tempfile, os
    >>> from unitcost.workspace import open_workspace
    >>> with open_workspace(os.path.join(tempfile.mkdtemp(), "w.duckdb")) as ws:
    ...     text = render_metrics(ws.store, ws.config, dt.datetime(2026, 10, 15)).decode()
    >>> [line for line in text.splitlines() if line.startswith("unitcost_alerts_firing{")][0]
    'unitcost_alerts_firing{kind="anomaly"} 0.0'
    """
    key = (config.model_dump_json(), at)
    with _lock:  # one render at a time: scrapes share the workspace connection, and the cached page
        cached = _cache.get(store)
        if cached is not None and cached.key == key and time.monotonic() - cached.made < ttl_s:
            return cached.body
        when = naive_utc(metrics_time(store) if at is None else at)
        start = period_bounds("month", when)[0]
        report = cost_report(store, config, start, when, ["tenant", "feature"])
        statuses = budget_status(store, config, when)
        page = _page(report, statuses, _firing(store), when, config.alerts.metrics.max_label_values)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(page)
        body = generate_latest(registry)
        _cache[store] = _Cached(key, time.monotonic(), body)
        return body

"""Token cost per UTC hour, scanned once per evaluation and shared by the rules that read spend.

The anomaly rule reads hourly and daily token cost per feature over its history; budgets read daily token cost
per scope and, with no bill, GPU pools or people time, the spend of their period. All of these are sums of one
series: token cost per (hour, key) over ``[start, at)``, one :func:`~unitcost.analysis.cost_timeseries` scan per
dimension. :class:`SpendSeries` keeps that scan for the evaluation: a later request for a range that starts at or
after the scanned start is a filter of it, an earlier start scans again. Hour buckets at or after a scanned
start are whole, so sums over day-aligned ranges are exact (cost is linear in tokens). By feature, release or
prompt version, the scan reads its whole hours from the ``usage_hourly`` rollup (``store/rollups.py``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from unitcost.analysis import cost_timeseries
from unitcost.config import Config
from unitcost.store import Store


class SpendSeries:
    """Token cost per (hour, key of a dimension) up to ``at``; columns ``period``, ``key``, ``cost_usd``."""

    def __init__(self, store: Store, config: Config, at: dt.datetime) -> None:
        self.store = store
        self.config = config
        self.at = at
        self._scans: dict[str, tuple[dt.datetime, pd.DataFrame]] = {}
        #: how many engine scans were run (for tests)
        self.scans = 0

    def hourly(self, start: dt.datetime, by: str = "feature") -> pd.DataFrame:
        """Cost per (hour, key of ``by``) over [start, at); a start off the hour makes its first bucket partial."""
        kept = self._scans.get(by)
        on_the_hour = start == start.replace(minute=0, second=0, microsecond=0)
        # a kept scan serves a later start on the hour (whole buckets); an off-hour start needs its partial bucket
        if kept is None or kept[0] > start or (kept[0] != start and not on_the_hour):
            t = cost_timeseries(self.store, self.config, start, self.at, "hour", by, units=False).to_pandas()
            kept = (start, t[["period", "key", "cost_usd"]].astype({"cost_usd": "float64"}))
            self._scans[by] = kept
            self.scans += 1
        scanned_from, t = kept
        return t if scanned_from == start else t[t["period"] >= pd.Timestamp(start)]

    def total(self, start: dt.datetime, end: dt.datetime, by: str = "feature") -> pd.Series:
        """Cost per key of ``by`` over [start, end) (``start`` on the hour, ``end`` on the hour or ``at``)."""
        t = self.hourly(start, by)
        t = t[t["period"] < pd.Timestamp(end)]
        return t.groupby("key", dropna=False)["cost_usd"].sum()

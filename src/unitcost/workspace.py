"""The Python API: a workspace is a DuckDB file plus a configuration."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from unitcost.analysis import CostReport, cost_report, cost_timeseries
from unitcost.analysis.dashboard import Dashboard, build_dashboard
from unitcost.analysis.explain import Explanation, explain_change
from unitcost.analysis.windows import parse_window
from unitcost.config import Config, load_config, setting
from unitcost.ingest import IngestResult, OnError, ingest_files
from unitcost.periods import parse_instant, parse_range
from unitcost.store import Store, open_store


class Workspace:
    """An open unitcost workspace: ingest into it, ask it what things cost."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config

    def ingest(
        self, fmt: str, paths: Iterable[str | Path], *, strict: bool = False, mapping: str | Path | None = None
    ) -> list[IngestResult]:
        """Ingest files of format ``fmt`` (``usage``, ``outcomes`` or a source format such as ``otlp``).

        ``mapping``: a format-specific mapping file (the ``csv`` format's column mapping).
        """
        return ingest_files(
            self.store,
            fmt,
            paths,
            on_error=OnError.FAIL if strict else OnError.QUARANTINE,
            config=self.config,
            mapping=Path(mapping) if mapping is not None else None,
        )

    def report(
        self,
        start: str | dt.datetime | None = None,
        end: str | dt.datetime | None = None,
        by: list[str] | None = None,
    ) -> CostReport:
        """Return the cost report for the period (``end`` as a date includes that day)."""
        lo, hi = self._range(start, end)
        return cost_report(self.store, self.config, lo, hi, by)

    def timeseries(
        self,
        start: str | dt.datetime | None = None,
        end: str | dt.datetime | None = None,
        grain: str = "day",
        by: str | None = None,
    ) -> pa.Table:
        """Return cost per period and key (see :func:`unitcost.analysis.cost_timeseries`)."""
        lo, hi = self._range(start, end)
        return cost_timeseries(self.store, self.config, lo, hi, grain, by)

    def dashboard(self, start: str | dt.datetime | None = None, end: str | dt.datetime | None = None) -> Dashboard:
        """Return everything the HTML report shows."""
        lo, hi = self._range(start, end)
        return build_dashboard(self.store, self.config, lo, hi)

    def newest_ts(self) -> dt.datetime | None:
        """Return the time of the newest usage row (the data's "now")."""
        row = self.store.sql("SELECT max(ts) FROM usage")
        return row[0][0] if row and row[0][0] is not None else None

    def reference_time(self, at: str | dt.datetime | None = None) -> dt.datetime:
        """Return ``at`` (a timestamp or date), else the newest usage row's time; windows are anchored on it."""
        if isinstance(at, dt.datetime):
            return at
        if at:
            return parse_instant(at, "--at")[0]
        newest = self.newest_ts()
        if newest is None:
            from unitcost.errors import PeriodError

            raise PeriodError("the workspace has no usage rows yet: ingest some first (unitcost ingest --help)")
        return newest

    def explain(
        self,
        period: str = "yesterday",
        baseline: str = "same-day-last-week",
        by: list[str] | None = None,
        at: str | dt.datetime | None = None,
        basis: str = "auto",
    ) -> Explanation:
        """Explain the cost change from ``baseline`` to ``period`` (dates, ranges or shortcuts; docs/explain.md)."""
        ref = self.reference_time(at)
        p = parse_window(period, ref, what="--period")
        b = parse_window(baseline, ref, relative_to=p, what="--baseline")
        return explain_change(self.store, self.config, p, b, by, basis=basis)

    def quarantine_count(self) -> int:
        """Return how many rows are held in quarantine."""
        row = self.store.sql("SELECT count(*) FROM quarantine")
        return int(row[0][0])

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _range(
        start: str | dt.datetime | None, end: str | dt.datetime | None
    ) -> tuple[dt.datetime | None, dt.datetime | None]:
        lo_s = start if isinstance(start, str) else None
        hi_s = end if isinstance(end, str) else None
        lo, hi = parse_range(lo_s, hi_s)
        if isinstance(start, dt.datetime):
            lo = start
        if isinstance(end, dt.datetime):
            hi = end
        return lo, hi


def open_workspace(db: str | Path | None = None, config: str | Path | Config | None = None) -> Workspace:
    """Open the workspace at ``db`` (default ``./unitcost.duckdb`` or $UNITCOST_DB).

    >>> import tempfile, os
    >>> with open_workspace(os.path.join(tempfile.mkdtemp(), "w.duckdb")) as ws:
    ...     ws.report().requests
    0
    """
    path = setting("db").resolve(None if db is None else str(db))
    cfg = config if isinstance(config, Config) else load_config(config)
    return Workspace(open_store(path), cfg)

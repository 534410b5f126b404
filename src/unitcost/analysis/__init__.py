"""Analyses over the ledger: attribution, unit economics, time series."""

from __future__ import annotations

from unitcost.analysis.economics import (
    GRAINS,
    BreakdownRow,
    CostReport,
    UnpricedModel,
    cost_report,
    cost_timeseries,
)

__all__ = ["GRAINS", "BreakdownRow", "CostReport", "UnpricedModel", "cost_report", "cost_timeseries"]

"""The ledger: the cost of every request, from usage and prices, computed on the engine."""

from __future__ import annotations

from unitcost.ledger.costs import Ledger, build_ledger

__all__ = ["Ledger", "build_ledger"]

"""unitcost: what your AI application really costs, per request and per successful outcome.

>>> import unitcost
>>> callable(unitcost.open)
True
"""

from __future__ import annotations

from unitcost.analysis import BreakdownRow, CostReport, UnpricedModel
from unitcost.config import Config, load_config
from unitcost.errors import UnitcostError
from unitcost.ingest import IngestResult
from unitcost.workspace import Workspace, open_workspace

open = open_workspace

__all__ = [
    "BreakdownRow",
    "Config",
    "CostReport",
    "IngestResult",
    "UnitcostError",
    "UnpricedModel",
    "Workspace",
    "load_config",
    "open",
]
__version__ = "0.1.0"

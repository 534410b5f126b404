"""The demo's planning files: a scenario file and the GPU pool's capacity plan, written next to the workspace.

Both ship as package data (``unitcost/data/scenarios.yaml``, ``unitcost/data/pool-plan.yaml``); the plan's trace
points at the workspace it is written for. Files that already exist are left alone (a user may have edited them).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import yaml

SCENARIOS_NAME = "unitcost-scenarios.yaml"
PLAN_NAME = "unitcost-pool-plan.yaml"


class OutlookFiles(NamedTuple):
    scenarios: Path
    plan: Path


def shipped(name: str) -> str:
    """The text of a shipped example file (``scenarios.yaml`` or ``pool-plan.yaml``)."""
    return resources.files("unitcost").joinpath("data", name).read_text(encoding="utf-8")


def write_outlook_files(folder: Path, workspace: Path) -> OutlookFiles:
    """Write ``unitcost-scenarios.yaml`` and ``unitcost-pool-plan.yaml`` into ``folder`` unless they exist.

    The plan's ``workload.trace.path`` is set to ``workspace`` (relative to ``folder`` when it lies inside it).
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = OutlookFiles(folder / SCENARIOS_NAME, folder / PLAN_NAME)
    if not files.scenarios.exists():
        files.scenarios.write_text(shipped("scenarios.yaml"), encoding="utf-8")
    if not files.plan.exists():
        text = shipped("pool-plan.yaml")
        where = workspace.resolve()
        try:
            path = str(where.relative_to(folder.resolve()))
        except ValueError:
            path = str(where)
        plan = yaml.safe_load(text)
        if plan["workload"]["trace"]["path"] != path:
            text = text.replace("path: unitcost.duckdb,", f"path: {json.dumps(path)},")  # a JSON string is YAML
        files.plan.write_text(text, encoding="utf-8")
    return files

"""Shared fixtures: a fresh workspace and a writer of small canonical files."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from unitcost.config import Config
from unitcost.workspace import Workspace, open_workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = open_workspace(tmp_path / "w.duckdb", Config())
    yield ws
    ws.close()


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows (dicts) to a CSV whose header is the union of their keys, in first-seen order."""
    header: list[str] = []
    for r in rows:
        for k in r:
            if k not in header:
                header.append(k)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return path


@pytest.fixture
def csv_file(tmp_path: Path) -> Callable[[str, list[dict[str, Any]]], Path]:
    def make(name: str, rows: list[dict[str, Any]]) -> Path:
        return write_csv(tmp_path / name, rows)

    return make

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


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The demo company (30 days, 200k requests, with its bill, people time and config), loaded once."""
    import yaml

    from unitcost.demo import generate, write_parquet

    data = generate(days=30, requests=200_000, seed=7)
    folder = tmp_path_factory.mktemp("demo")
    files = write_parquet(data, folder)
    config = Config.model_validate(yaml.safe_load(data.config_yaml))
    ws = open_workspace(folder / "demo.duckdb", config)
    ws.ingest("usage", [files.usage])
    ws.ingest("outcomes", [files.outcomes])
    ws.ingest("focus", [files.bill])
    ws.ingest("ops", [files.ops])
    ws.demo_events = data.events  # type: ignore[attr-defined]
    yield ws
    ws.close()

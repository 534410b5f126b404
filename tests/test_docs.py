"""Every column, setting, command and dimension is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from unitcost.cli import app
from unitcost.config import SETTINGS
from unitcost.schema import DIMENSIONS, TABLES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SCHEMA_DOC = (ROOT / "docs" / "schema.md").read_text()
JSON_DOC = (ROOT / "docs" / "json.md").read_text()


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_every_column_is_in_schema_doc(table) -> None:  # type: ignore[no-untyped-def]
    section = SCHEMA_DOC.split(f"## `{table.name}`", 1)[1].split("\n## ", 1)[0]
    missing = [c.name for c in table.columns if f"| `{c.name}` |" not in section]
    assert missing == []


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_in_readme(setting) -> None:  # type: ignore[no-untyped-def]
    assert f"--{setting.name}" in README and setting.env in README


def _commands() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    names = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        sub = getattr(cmd, "commands", None)
        names += [f"{name} {s}" for s in sub] if sub else [name]
    return names


def test_every_command_is_in_readme() -> None:
    commands = _commands()
    assert len(commands) >= 5
    assert [c for c in commands if f"unitcost {c}" not in README] == []


def test_every_dimension_is_in_readme() -> None:
    assert [d for d in DIMENSIONS if d not in README] == []


def test_json_doc_covers_report_fields(tmp_path: Path) -> None:
    from unitcost.workspace import open_workspace

    with open_workspace(tmp_path / "w.duckdb") as ws:
        doc = ws.report(by=["tenant"]).to_json()
    missing = [k for k in doc if f"`{k}" not in JSON_DOC]
    assert missing == []
    row_keys = {f.name for f in __import__("dataclasses").fields(__import__("unitcost").BreakdownRow)}
    assert [k for k in sorted(row_keys) if f"`{k}`" not in JSON_DOC] == []


def test_readme_config_example_is_valid() -> None:
    import yaml

    from unitcost.config import Config

    block = README.split("## Configuration: `unitcost.yaml`", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    config = Config.model_validate(yaml.safe_load(block))
    assert config.prices.overrides and config.people.rates["sre"] == 120

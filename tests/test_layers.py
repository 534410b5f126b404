"""Bill lines to cost-stack layers: shipped defaults, user rules first, explain."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from unitcost.cli import app
from unitcost.config import Config
from unitcost.errors import ConfigError
from unitcost.ledger.layers import classify_sql, explain_layers
from unitcost.workspace import open_workspace

FIXTURES = Path(__file__).parent / "fixtures" / "focus"
FILES = ["aws_focus_1_0.csv", "azure_focus_1_2.parquet", "gcp_focus_1_3.csv", "quirks_nulls_extras.csv"]

# (ServiceName, expected layer with the shipped defaults)
EXPECTED = [
    ("Amazon Bedrock", "model_api"),
    ("Azure OpenAI Service", "model_api"),
    ("Vertex AI", "model_api"),
    ("Claude Sonnet", "model_api"),  # ProviderName Anthropic, category AI and Machine Learning
    ("Kubernetes Engine", "orchestration"),
    ("Contoso Vector DB", "retrieval"),
    ("GPU inference pool", "gpu_compute"),
    ("Tax", "other"),
    ("Amazon Elastic Compute Cloud", "other"),  # an opaque SKU: no sign of a GPU
]


def _workspace(tmp_path: Path, config: Config):  # type: ignore[no-untyped-def]
    ws = open_workspace(tmp_path / "w.duckdb", config)
    for name in FILES:
        ws.ingest("focus", [FIXTURES / name])
    return ws


def _layers(ws) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    layer, _ = classify_sql(ws.config)
    out: dict[str, set[str]] = {}
    for service, got in ws.store.sql(f"SELECT ServiceName, {layer} FROM bill_lines"):
        out.setdefault(service, set()).add(got)
    return out


def test_default_rules_classify_common_services(tmp_path: Path) -> None:
    with _workspace(tmp_path, Config()) as ws:
        got = _layers(ws)
    for service, layer in EXPECTED:
        assert got[service] == {layer}, service


def test_user_rules_come_first_and_match_tags_and_regex(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "layers": {
                "rules": [
                    {"name": "our-ec2-gpus", "layer": "gpu_compute", "match": {"ServiceName": "re:elastic compute"}},
                    {"name": "tax", "layer": "other", "match": {"ServiceName": "Tax"}},
                    {"name": "vector", "layer": "storage", "match": {"ServiceName": "Contoso Vector DB"}},
                ]
            }
        }
    )
    with _workspace(tmp_path, config) as ws:
        got = _layers(ws)
        hits = explain_layers(ws.store, ws.config)
    assert got["Amazon Elastic Compute Cloud"] == {"gpu_compute"}
    assert got["Contoso Vector DB"] == {"storage"}  # the user's rule wins over the default retrieval rule
    assert {h.rule for h in hits} >= {"our-ec2-gpus", "tax", "vector", "ai-services"}


def test_explain_keeps_currencies_apart_and_accounts_for_every_line(tmp_path: Path) -> None:
    with _workspace(tmp_path, Config()) as ws:
        hits = explain_layers(ws.store, ws.config)
        lines = ws.store.sql("SELECT count(*) FROM bill_lines")[0][0]
        by_currency = dict(ws.store.sql("SELECT BillingCurrency, sum(EffectiveCost) FROM bill_lines GROUP BY 1"))
    assert sum(h.lines for h in hits) == lines
    for currency, total in by_currency.items():
        assert sum(h.cost for h in hits if h.currency == currency) == total  # exact decimals, per currency


def test_explain_command(tmp_path: Path) -> None:
    with _workspace(tmp_path, Config()):
        pass
    res = CliRunner().invoke(app, ["--db", str(tmp_path / "w.duckdb"), "layers", "explain"])
    assert res.exit_code == 0, res.output
    assert "model_api" in res.output and "(no rule: other)" in res.output


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"layer": "gpus", "match": {"ServiceName": "x"}}, "unknown layer 'gpus'"),
        ({"layer": "storage", "match": {"Service": "x"}}, "cannot match on 'Service'"),
        ({"layer": "storage", "match": {}}, "at least one condition"),
    ],
)
def test_bad_rules_are_config_errors(tmp_path: Path, rule: dict, message: str) -> None:  # type: ignore[type-arg]
    import yaml

    from unitcost.config import load_config

    path = tmp_path / "unitcost.yaml"
    path.write_text(yaml.safe_dump({"layers": {"rules": [rule]}}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)

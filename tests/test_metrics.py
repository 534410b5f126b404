"""``GET /metrics``: the real server on 127.0.0.1, scraped over HTTP and parsed with prometheus_client."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from conftest import write_csv
from unitcost.alerts.budgets import budget_status
from unitcost.alerts.metrics import render_metrics
from unitcost.analysis import cost_report
from unitcost.config import Config
from unitcost.server import create_app
from unitcost.workspace import Workspace, open_workspace

OCTOBER = dt.datetime(2026, 10, 1)
NEWEST = dt.datetime(2026, 10, 12, 16)  # t1's 9th call of the day
TENANTS = {"t1": 9, "t2": 7, "t3": 5, "t4": 3, "t5": 1}  # requests a day
FEATURES = ("chat", "search", "drafts")


def _rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Sep 28 - Oct 12: gpt-4o-mini calls of every tenant on each feature in turn; every other trace succeeds."""
    usage, outcomes = [], []
    for day in range(15):
        date = dt.datetime(2026, 9, 28) + dt.timedelta(days=day)
        for tenant, n in TENANTS.items():
            for i in range(n):
                feature = FEATURES[i % 3]
                trace = f"{tenant}-{day}-{i}"
                usage.append(
                    {
                        "request_id": trace,
                        "trace_id": trace,
                        "ts": (date + dt.timedelta(hours=8 + i)).isoformat() + "Z",
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "input_tokens": 1000 * (i + 1) * (3 if feature == "drafts" else 1),
                        "cache_read_tokens": 400 * (i + 1) if feature == "search" else 0,
                        "output_tokens": 200 + 10 * i,
                        "status": "ok",
                        "tenant": tenant,
                        "feature": feature,
                    }
                )
                if i % 2 == 0:
                    outcomes.append({"trace_id": trace, "ts": usage[-1]["ts"], "outcome": "success"})
    return usage, outcomes


def _workspace(tmp_path: Path, config: Config) -> Workspace:
    usage, outcomes = _rows()
    ws = open_workspace(tmp_path / "w.duckdb", config)
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", usage)], strict=True)
    ws.ingest("outcomes", [write_csv(tmp_path / "o.csv", outcomes)], strict=True)
    with ws.store.transaction() as con:
        for key, kind, status in [
            ("budget:a {}", "budget", "firing"),
            ("budget:b {}", "budget", "firing"),
            ("drift:x {}", "drift", "resolved"),
        ]:
            con.execute(
                "INSERT INTO alerts (alert_key, rule, kind, scope, status) VALUES (?, ?, ?, '{}', ?)",
                [key, key.split()[0], kind, status],
            )
    return ws


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(ws: Workspace) -> Iterator[str]:
    """uvicorn in a thread on a free loopback port, serving the workspace."""
    port = _free_port()
    app = create_app(ws.store, ws.config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive()


def scrape(url: str) -> tuple[httpx.Response, dict[str, dict[tuple[tuple[str, str], ...], float]]]:
    """GET /metrics; return the response and {metric: {sorted label items: value}}."""
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200
    metrics: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            metrics.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return response, metrics


def by(metrics: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: v for labels, v in metrics[name].items()}


BUDGETS = [
    {"name": "total", "amount_usd": 0.1},
    {"name": "t1", "amount_usd": 50.0, "scope": {"tenant": "t1"}},
]


def test_metrics_match_the_cost_report(tmp_path: Path) -> None:
    config = Config.model_validate({"budgets": BUDGETS})
    with _workspace(tmp_path, config) as ws:
        # month-to-date of the newest usage timestamp: October 1st to just after Oct 12 16:00 (September is out)
        report = cost_report(ws.store, config, OCTOBER, None, ["tenant", "feature"])
        everything = cost_report(ws.store, config)
        budgets = {s.name: s for s in budget_status(ws.store, config, NEWEST + dt.timedelta(microseconds=1))}
        with serving(ws) as url:
            response, metrics = scrape(url)
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert report.requests == 12 * sum(TENANTS.values()) < everything.requests
    assert metrics["unitcost_data_timestamp_seconds"][()] == pytest.approx(
        NEWEST.replace(tzinfo=dt.UTC).timestamp(), abs=1e-3
    )
    assert by(metrics, "unitcost_cost_usd", "layer") == {"model_api": pytest.approx(report.total_cost_usd)}

    tenants = by(metrics, "unitcost_cost_usd_by_tenant", "tenant")
    assert tenants == {r.key: pytest.approx(r.fully_loaded_cost_usd) for r in report.breakdown["tenant"]}
    assert set(tenants) == set(TENANTS) and tenants["t1"] > tenants["t2"] > tenants["t5"] > 0

    rows = {r.key: r for r in report.breakdown["feature"]}
    assert by(metrics, "unitcost_cost_usd_by_feature", "feature") == {
        k: pytest.approx(r.fully_loaded_cost_usd) for k, r in rows.items()
    }
    assert by(metrics, "unitcost_cost_per_successful_outcome_usd", "feature") == {
        k: pytest.approx(r.fully_loaded_cost_per_successful_outcome_usd) for k, r in rows.items()
    }
    cache = by(metrics, "unitcost_cache_hit_ratio", "feature")
    assert cache == {k: pytest.approx(r.cached_share) for k, r in rows.items()}
    assert cache["search"] == pytest.approx(0.4) and cache["chat"] == 0
    tokens = metrics["unitcost_tokens_per_request"]
    for k, r in rows.items():
        assert tokens[(("direction", "input"), ("feature", k))] == pytest.approx(r.input_tokens / r.requests)
        assert tokens[(("direction", "output"), ("feature", k))] == pytest.approx(r.output_tokens / r.requests)

    for name, field in [("remaining", "remaining_usd"), ("projected", "projected_usd"), ("spent", "spent_usd")]:
        got = by(metrics, f"unitcost_budget_{name}_usd", "budget")
        assert got == {k: pytest.approx(getattr(s, field)) for k, s in budgets.items()}
    assert by(metrics, "unitcost_budget_spent_usd", "budget")["total"] == pytest.approx(report.total_cost_usd)
    assert by(metrics, "unitcost_budget_remaining_usd", "budget")["total"] < 0  # $0.32 spent of $0.10

    firing = by(metrics, "unitcost_alerts_firing", "kind")
    assert firing == {"budget": 2, "anomaly": 0, "drift": 0, "deployment_regression": 0}


def test_label_values_are_capped_with_the_rest_under_other(tmp_path: Path) -> None:
    config = Config.model_validate({"alerts": {"metrics": {"max_label_values": 2}}})
    with _workspace(tmp_path, config) as ws:
        report = cost_report(ws.store, config, OCTOBER, None, ["tenant", "feature"])
        with serving(ws) as url:
            _, metrics = scrape(url)
    tenants = by(metrics, "unitcost_cost_usd_by_tenant", "tenant")
    costs = {r.key: r.fully_loaded_cost_usd for r in report.breakdown["tenant"]}
    assert set(tenants) == {"t1", "t2", "__other__"}  # the two largest
    assert tenants["__other__"] == pytest.approx(costs["t3"] + costs["t4"] + costs["t5"])
    assert sum(tenants.values()) == pytest.approx(report.total_cost_usd)

    features = {r.key: r for r in report.breakdown["feature"]}
    top, rest = sorted(features, key=lambda k: -features[k].fully_loaded_cost_usd)[:2], set(features)
    rest -= set(top)
    assert set(by(metrics, "unitcost_cost_usd_by_feature", "feature")) == {*top, "__other__"}
    [other] = rest
    per_outcome = by(metrics, "unitcost_cost_per_successful_outcome_usd", "feature")
    assert per_outcome["__other__"] == pytest.approx(features[other].fully_loaded_cost_per_successful_outcome_usd)
    assert len(metrics["unitcost_tokens_per_request"]) == 2 * 3


def test_pages_are_cached_for_a_short_time(tmp_path: Path) -> None:
    config = Config()
    with _workspace(tmp_path, config) as ws:
        first = render_metrics(ws.store, config)
        assert render_metrics(ws.store, config) is first  # within the TTL: the same page
        with ws.store.transaction() as con:
            con.execute("UPDATE alerts SET status = 'firing' WHERE kind = 'drift'")
        assert render_metrics(ws.store, config) is first
        fresh = render_metrics(ws.store, config, ttl_s=0)  # expired: computed anew
        assert fresh is not first
        assert render_metrics(ws.store, config, ttl_s=0) is not fresh
    assert b'unitcost_alerts_firing{kind="drift"} 0.0' in first
    assert b'unitcost_alerts_firing{kind="drift"} 1.0' in fresh


def test_example_alerting_rules_use_metrics_the_page_has(tmp_path: Path) -> None:
    path = Path(__file__).resolve().parents[1] / "examples" / "prometheus" / "unitcost-alerts.yml"
    rules = [r for group in yaml.safe_load(path.read_text())["groups"] for r in group["rules"]]
    assert len(rules) >= 4
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] and rule["annotations"]["summary"]
    config = Config.model_validate({"budgets": BUDGETS})
    with _workspace(tmp_path, config) as ws:
        page = render_metrics(ws.store, config).decode()
    exposed = {f.name for f in text_string_to_metric_families(page)}
    used = {name for rule in rules for name in re.findall(r"unitcost_[a-z_]+", rule["expr"])}
    assert used >= {
        "unitcost_budget_projected_usd",
        "unitcost_cache_hit_ratio",
        "unitcost_cost_per_successful_outcome_usd",
        "unitcost_alerts_firing",
    }
    assert used - exposed == set()

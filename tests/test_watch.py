"""`unitcost watch`: the demo's planted events are found, the quiet month stays quiet, alerts fire once."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from typer.testing import CliRunner

from unitcost.alerts import watch as watch_module
from unitcost.alerts.model import Finding, RuleContext
from unitcost.alerts.state import list_alerts
from unitcost.alerts.watch import watch
from unitcost.cli import app
from unitcost.config import Config, WebhookConfig
from unitcost.workspace import Workspace, open_workspace


def event(ws: Workspace, name: str) -> Any:
    return next(e for e in ws.demo_events if e.name == name)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def replay(demo_workspace: Workspace) -> list[Finding]:
    start = dt.datetime(2026, 10, 8)
    return watch(demo_workspace.store, demo_workspace.config, since=start, deliver=False).findings


def test_demo_prompt_regression_is_a_deployment_regression(demo_workspace: Workspace, replay: list[Finding]) -> None:
    ev = event(demo_workspace, "prompt-regression")
    hits = [
        f for f in replay if f.kind == "deployment_regression" and f.scope.get("prompt_version") == ev.prompt_version
    ]
    assert len(hits) == 1
    f = hits[0]
    assert f.scope["feature"] == ev.feature and abs(f.started_at - ev.start) < dt.timedelta(hours=1)
    test = f.details["cost_per_request"]
    assert test["change_pct"] > 15 and test["ci95_low_pct"] > 10 and test["p_value"] < 0.01
    assert f.impact_usd_per_month and f.impact_usd_per_month > 0
    assert "95% CI" in f.message and "/month" in f.message


def test_demo_cache_drop_is_a_drift_alert(demo_workspace: Workspace, replay: list[Finding]) -> None:
    ev = event(demo_workspace, "cache-drop")
    hits = [f for f in replay if f.rule == "drift:cache_hit_rate" and f.scope == {"feature": ev.feature}]
    assert hits and abs(hits[0].started_at - ev.start) <= dt.timedelta(days=1)


def test_demo_no_op_releases_raise_nothing(demo_workspace: Workspace, replay: list[Finding]) -> None:
    no_ops = [e for e in demo_workspace.demo_events if not e.expects_alert]  # type: ignore[attr-defined]
    assert no_ops
    for ev in no_ops:
        assert not [f for f in replay if f.kind == "deployment_regression" and f.scope.get("release") == ev.release]


def test_quiet_month_raises_no_deployment_or_drift_alert(tmp_path: Path) -> None:
    from unitcost.demo import generate, write_parquet

    data = generate(days=30, requests=200_000, seed=11, incidents=False)
    files = write_parquet(data, tmp_path)
    with open_workspace(tmp_path / "q.duckdb", Config.model_validate(yaml.safe_load(data.config_yaml))) as ws:
        ws.ingest("usage", [files.usage])
        ws.ingest("outcomes", [files.outcomes])
        found = watch(ws.store, ws.config, since=dt.datetime(2026, 10, 8), deliver=False).findings
    by_kind = {k: [f.message for f in found if f.kind == k] for k in ("deployment_regression", "drift")}
    assert by_kind == {"deployment_regression": [], "drift": []}


# --- life cycle, with rules we control -------------------------------------------------------------------

T0 = dt.datetime(2026, 10, 20)


def fake(active: bool, impact: float = 10.0) -> Finding:
    return Finding("drift:x", "drift", {"feature": "bot"}, T0, None if active else T0 + dt.timedelta(hours=5),
                   impact, f"x drifted (impact {impact})")  # fmt: skip


class Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        n = int(self.headers["Content-Length"])
        Receiver.bodies.append(json.loads(self.rfile.read(n)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_an_alert_fires_once_updates_and_resolves(
    workspace: Workspace, receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = {"active": True, "impact": 10.0}

    def rule(ctx: RuleContext) -> list[Finding]:
        return [fake(state["active"], state["impact"])]

    monkeypatch.setattr(watch_module, "RULES", {"drift": rule})
    config = Config(alerts={"webhooks": [WebhookConfig(url=receiver, timeout_s=2, retries=0)]})
    first = watch(workspace.store, config, at=T0 + dt.timedelta(hours=1))
    assert [f.rule for f in first.fired] == ["drift:x"] and len(Receiver.bodies) == 1
    assert Receiver.bodies[0]["alerts"][0]["status"] == "firing"

    state["impact"] = 25.0
    second = watch(workspace.store, config, at=T0 + dt.timedelta(hours=2))
    assert second.fired == [] and len(second.updated) == 1 and len(Receiver.bodies) == 1  # no re-firing
    rows = list_alerts(workspace.store)
    assert len(rows) == 1 and rows[0]["status"] == "firing" and rows[0]["impact_usd_per_month"] == 25.0

    state["active"] = False
    third = watch(workspace.store, config, at=T0 + dt.timedelta(hours=6))
    assert len(third.resolved) == 1 and len(Receiver.bodies) == 2
    assert Receiver.bodies[1]["alerts"][0]["status"] == "resolved"
    rows = list_alerts(workspace.store)
    assert rows[0]["status"] == "resolved" and rows[0]["resolved_at"].startswith("2026-10-20T06")
    assert watch(workspace.store, config, at=T0 + dt.timedelta(hours=7)).resolved == []  # resolved once

    state["active"] = True  # the condition comes back: a new alert
    assert len(watch(workspace.store, config, at=T0 + dt.timedelta(hours=8)).fired) == 1
    assert [r["status"] for r in list_alerts(workspace.store)] == ["firing", "resolved"]


def test_a_dead_webhook_does_not_stop_watch(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "RULES", {"drift": lambda ctx: [fake(True)]})
    config = Config(alerts={"webhooks": [WebhookConfig(url="http://127.0.0.1:9/none", timeout_s=0.5, retries=1)]})
    result = watch(workspace.store, config, at=T0 + dt.timedelta(hours=1))
    assert len(result.fired) == 1 and result.delivered and not result.delivered[0].ok
    assert list_alerts(workspace.store)[0]["status"] == "firing"  # stored all the same


def test_cli_watch_replay_json(demo_workspace: Workspace) -> None:
    db = demo_workspace.store.path  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, ["--db", str(db), "watch", "--since", "2026-10-15", "--json", "--no-deliver"])
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert items and {"rule", "kind", "scope", "status", "started_at", "impact_usd_per_month", "message"} <= set(
        items[0]
    )
    assert {i["kind"] for i in items} >= {"deployment_regression", "drift"}
    bad = CliRunner().invoke(app, ["--db", str(db), "watch", "--since", "2027-01-01"])
    assert bad.exit_code == 2 and "must be before" in bad.output


def test_serve_runs_the_rules_and_delivers_while_it_receives(
    workspace: Workspace, receiver: str, csv_file: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import httpx

    from test_metrics import serving

    monkeypatch.setattr(watch_module, "RULES", {"drift": lambda ctx: [fake(True)]})
    row = {"ts": "2026-10-20T09:00:00", "request_id": "r1", "provider": "openai", "model": "gpt-4o-mini",
           "input_tokens": 10, "output_tokens": 5}  # fmt: skip
    workspace.ingest("usage", [csv_file("u.csv", [row])])
    workspace.config = Config(alerts={"watch_interval_s": 0.2, "webhooks": [{"url": receiver, "retries": 0}]})
    with serving(workspace) as url:
        deadline = time.monotonic() + 30
        while not Receiver.bodies:
            assert time.monotonic() < deadline, "the watcher delivered nothing"
            time.sleep(0.05)
        time.sleep(0.5)  # a few more evaluations: the alert stays open and is not delivered again
        health = httpx.get(f"{url}/healthz").json()["watch"]
    assert health["runs"] >= 2 and health["alerts_firing"] == 1 and health["last_error"] is None
    assert len(Receiver.bodies) == 1 and Receiver.bodies[0]["alerts"][0]["status"] == "firing"
    assert [r["status"] for r in list_alerts(workspace.store)] == ["firing"]


def test_the_html_report_lists_the_firing_alerts(
    workspace: Workspace, csv_file: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unitcost.report.html import write_html

    row = {"ts": "2026-10-20T09:00:00", "request_id": "r1", "provider": "openai", "model": "gpt-4o-mini",
           "input_tokens": 10, "output_tokens": 5}  # fmt: skip
    workspace.ingest("usage", [csv_file("u.csv", [row])])
    page = (write_html(workspace.dashboard(), tmp_path / "before.html")).read_text()
    assert "What needs attention" not in page  # nothing fires yet: no section
    monkeypatch.setattr(watch_module, "RULES", {"drift": lambda ctx: [fake(True, 42.0)]})
    watch(workspace.store, workspace.config, deliver=False)
    page = (write_html(workspace.dashboard(), tmp_path / "after.html")).read_text()
    assert 'id="alerts-table"' in page and "x drifted (impact 42.0)" in page and "+$42" in page


def test_cli_watch_at_then_alerts_lists_them(demo_workspace: Workspace, tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "copy.duckdb"  # the life cycle writes: work on a copy of the shared demo workspace
    demo_workspace.store.raw.execute("CHECKPOINT")
    shutil.copy(demo_workspace.store.path, db)  # type: ignore[attr-defined]
    ev = event(demo_workspace, "prompt-regression")
    at = (ev.start + dt.timedelta(days=3)).isoformat()
    run = CliRunner().invoke(app, ["--db", str(db), "watch", "--at", at, "--json", "--no-deliver"])
    assert run.exit_code == 0, run.output
    firing = json.loads(run.output)
    assert any(a["kind"] == "deployment_regression" and a["status"] == "firing" for a in firing)
    listed = CliRunner().invoke(app, ["--db", str(db), "alerts", "--json"])
    rows = json.loads(listed.output)
    assert {r["rule"] for r in rows} == {a["rule"] for a in firing} and all(r["status"] == "firing" for r in rows)
    text = CliRunner().invoke(app, ["--db", str(db), "alerts"])
    assert text.exit_code == 0 and "firing" in text.output


def test_deployment_side_statistics_by_hand(tmp_path: Path) -> None:
    """Sides of version changes: per-model request moments and per-unit cost and success, by hand; sides that
    share requests (the same feature and version over overlapping times) each get all of theirs."""
    from conftest import write_csv
    from unitcost.alerts.deployment import _sides, _SideSpec

    config = Config.model_validate(
        {"prices": {"overrides": [{"provider": "openai", "model": "m", "input_per_mtok": 1.0, "output_per_mtok": 0}]}}
    )
    ws = open_workspace(tmp_path / "w.duckdb", config)
    t0 = dt.datetime(2026, 10, 1, 12)
    # (request, unit, input tokens -> cost in USD per 1M, status, release)
    rows = [("a1", "t1", 1_000_000, "error", "r1"), ("a2", "t1", 2_000_000, "ok", "r1"),  # t1: outcome success
            ("b1", "t2", 3_000_000, "error", "r1"),  # t2: no outcome, last request failed -> failure
            ("c1", "t3", 4_000_000, "ok", "r1"),  # t3: no outcome, last request ok -> success
            ("d1", "t4", 5_000_000, "ok", "r1"),  # t4: outcome escalated
            ("e1", "t5", 7_000_000, "ok", "r2")]  # another version: not on this side  # fmt: skip
    usage = [
        {"request_id": r, "trace_id": t, "ts": (t0 + dt.timedelta(minutes=i)).isoformat(), "provider": "openai",
         "model": "m", "input_tokens": n, "output_tokens": 0, "status": s, "feature": "bot", "release": rel}
        for i, (r, t, n, s, rel) in enumerate(rows)
    ]  # fmt: skip
    ws.ingest("usage", [write_csv(tmp_path / "u.csv", usage)], strict=True)
    outcomes = [{"trace_id": "t1", "ts": "2026-10-01T13:00:00", "outcome": "success"},
                {"trace_id": "t4", "ts": "2026-10-01T13:00:00", "outcome": "escalated"}]  # fmt: skip
    ws.ingest("outcomes", [write_csv(tmp_path / "o.csv", outcomes)], strict=True)
    ctx = RuleContext(ws.store, config, t0, t0 + dt.timedelta(days=1))
    hour = t0 + dt.timedelta(hours=1)
    specs = [
        _SideSpec("bot", {"release": "r1"}, t0, hour),
        _SideSpec("bot", {"release": "r2"}, t0, hour),
        _SideSpec("bot", {"release": "r1"}, t0 + dt.timedelta(minutes=2), hour),  # overlaps the first side
        _SideSpec("other", {"release": "r1"}, t0, hour),  # no requests
    ]
    (per_model, units), r2, late, other = _sides(ctx, specs)
    assert per_model["m"]["n"] == 5
    assert per_model["m"]["s"] == pytest.approx(15.0)
    assert per_model["m"]["ss"] == pytest.approx(1 + 4 + 9 + 16 + 25)
    unit_cost = {"t1": 3.0, "t2": 3.0, "t3": 4.0, "t4": 5.0}
    success = {"t1": 1.0, "t2": 0.0, "t3": 1.0, "t4": 0.0}
    assert units["n"] == 4
    assert units["c"] == pytest.approx(sum(unit_cost.values()))
    assert units["s"] == pytest.approx(2.0)
    assert units["cc"] == pytest.approx(sum(c * c for c in unit_cost.values()))
    assert units["cs"] == pytest.approx(sum(unit_cost[k] * success[k] for k in unit_cost))
    assert r2[0]["m"]["n"] == 1 and r2[0]["m"]["s"] == pytest.approx(7.0) and r2[1]["n"] == 1
    # from minute 2 on: b1, c1, d1 (units t2, t3, t4)
    assert late[0]["m"]["n"] == 3 and late[0]["m"]["s"] == pytest.approx(12.0)
    assert late[1]["n"] == 3 and late[1]["c"] == pytest.approx(12.0) and late[1]["s"] == pytest.approx(1.0)
    assert other == ({}, {"n": 0, "c": 0.0, "s": 0.0, "cc": 0.0, "cs": 0.0})
    ws.close()

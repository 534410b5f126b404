"""``unitcost watch``: evaluate every rule, keep the alerts' life cycle, deliver what changed.

Life cycle (table ``alerts``, one open alert per key = rule + scope):

* a finding that is active at the evaluation time and has no open alert *fires*: a row with status
  ``firing`` is stored and delivered once;
* while it stays active, later evaluations *update* the row (message, impact, ``updated_at``) without
  delivering again: no re-firing on every run;
* an open alert whose finding is no longer active *resolves*: status ``resolved``, ``resolved_at`` set, and
  the resolution is delivered once.

``watch --since DATE`` (replay) changes nothing: it returns every finding whose episode started since then,
that is every alert that would have fired, so rules can be checked against past months.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from unitcost.alerts.anomaly import anomaly_rule
from unitcost.alerts.budgets import budget_rule
from unitcost.alerts.deployment import deployment_rule
from unitcost.alerts.drift import drift_rule
from unitcost.alerts.model import Finding, Rule, RuleContext
from unitcost.config import Config
from unitcost.errors import PeriodError
from unitcost.store import Store

log = logging.getLogger("unitcost.alerts")

RULES: dict[str, Rule] = {
    "budget": budget_rule,
    "anomaly": anomaly_rule,
    "drift": drift_rule,
    "deployment_regression": deployment_rule,
}
#: how far back a plain ``watch`` looks, per rule, for episodes that are still going on (a budget needs only
#: its state now; a deployment regression lasts as long as its version is live)
LOOKBACK = {
    "budget": dt.timedelta(days=1),
    "anomaly": dt.timedelta(days=14),
    "drift": dt.timedelta(days=14),
    "deployment_regression": dt.timedelta(days=31),
}


@dataclass(frozen=True)
class WatchResult:
    """What one evaluation saw and did."""

    at: dt.datetime
    since: dt.datetime
    replay: bool
    findings: list[Finding]
    fired: list[Finding] = field(default_factory=list)
    updated: list[Finding] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[Any] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        """The ``watch --json`` list: one item per finding (replay) or per active / just-resolved alert."""
        if self.replay:
            return [f.to_json() for f in self.findings]
        items = [f.to_json("firing") for f in self.findings if f.active]
        items += [{**r, "status": "resolved"} for r in self.resolved]
        return items


def newest_data(store: Store) -> dt.datetime:
    """The evaluation time by default: just after the newest usage row."""
    row = store.sql("SELECT max(ts) FROM usage")
    if not row or row[0][0] is None:
        raise PeriodError("the workspace has no usage rows yet: nothing to watch (ingest some first)")
    newest: dt.datetime = row[0][0]
    return newest + dt.timedelta(microseconds=1)


def evaluate(
    store: Store, config: Config, at: dt.datetime, since: dt.datetime | None, kinds: list[str] | None = None
) -> list[Finding]:
    """Every rule's findings over [since, at) (``since`` None: each rule's own look-back), sorted by start."""
    findings: list[Finding] = []
    for kind, rule in RULES.items():
        if kinds and kind not in kinds:
            continue
        findings += rule(RuleContext(store, config, since or at - LOOKBACK[kind], at))
    return sorted(findings, key=lambda f: (f.started_at, f.rule))


def watch(
    store: Store,
    config: Config,
    at: dt.datetime | None = None,
    since: dt.datetime | None = None,
    deliver: bool = True,
    kinds: list[str] | None = None,
) -> WatchResult:
    """Evaluate the rules as of ``at`` (default: the newest data) and update the alerts' life cycle.

    With ``since``: a replay, which lists the findings since then and stores nothing.
    """
    at = at or newest_data(store)
    if since is not None:
        if since >= at:
            raise PeriodError(f"--since {since} must be before the evaluation time {at}")
        return WatchResult(at, since, True, evaluate(store, config, at, since, kinds))
    start = at - max(LOOKBACK.values())
    findings = evaluate(store, config, at, None, kinds)
    fired, updated, resolved = _update_state(store, findings, at)
    delivered: list[Any] = []
    if deliver and config.alerts.webhooks and (fired or resolved):
        from unitcost.alerts.delivery import deliver as post

        events = [f.to_json("firing") for f in fired] + [{**r, "status": "resolved"} for r in resolved]
        delivered = list(post(config.alerts.webhooks, events))
    return WatchResult(at, start, False, findings, fired, updated, resolved, delivered)


def _update_state(
    store: Store, findings: list[Finding], at: dt.datetime
) -> tuple[list[Finding], list[Finding], list[dict[str, Any]]]:
    active: dict[str, Finding] = {}
    for f in findings:
        if f.active:
            active.setdefault(f.key, f)  # several episodes of one key: the earliest active one
    fired: list[Finding] = []
    updated: list[Finding] = []
    resolved: list[dict[str, Any]] = []
    with store.transaction() as con:
        open_rows = con.execute(
            "SELECT alert_key, rule, kind, scope, started_at, impact_usd_per_month, message FROM alerts "
            "WHERE status = 'firing'"
        ).fetchall()
        open_keys = {r[0]: r for r in open_rows}
        for key, f in active.items():
            params = [f.impact_usd_per_month, f.message, json.dumps(f.details, default=str), at]
            if key in open_keys:
                con.execute(
                    "UPDATE alerts SET impact_usd_per_month = ?, message = ?, details = ?, updated_at = ? "
                    "WHERE alert_key = ? AND status = 'firing'",
                    [*params, key],
                )
                updated.append(f)
            else:
                con.execute(
                    "INSERT INTO alerts (alert_key, rule, kind, scope, status, started_at, updated_at, resolved_at, "
                    "impact_usd_per_month, message, details) VALUES (?, ?, ?, ?, 'firing', ?, ?, NULL, ?, ?, ?)",
                    [
                        key,
                        f.rule,
                        f.kind,
                        json.dumps(f.scope, sort_keys=True),
                        f.started_at,
                        at,
                        f.impact_usd_per_month,
                        f.message,
                        json.dumps(f.details, default=str),
                    ],
                )
                fired.append(f)
        for key, row in open_keys.items():
            if key in active:
                continue
            con.execute(
                "UPDATE alerts SET status = 'resolved', resolved_at = ?, updated_at = ? "
                "WHERE alert_key = ? AND status = 'firing'",
                [at, at, key],
            )
            resolved.append(
                {
                    "rule": row[1],
                    "kind": row[2],
                    "scope": json.loads(row[3]) if row[3] else {},
                    "started_at": row[4].isoformat() if row[4] else None,
                    "ended_at": at.isoformat(),
                    "impact_usd_per_month": row[5],
                    "message": row[6],
                }
            )
    return fired, updated, resolved


def list_alerts(store: Store, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Stored alerts, newest first (``unitcost alerts``)."""
    where = "WHERE status = ?" if status else ""
    rows = store.sql(
        "SELECT rule, kind, scope, status, started_at, updated_at, resolved_at, impact_usd_per_month, message "
        f"FROM alerts {where} ORDER BY status = 'firing' DESC, started_at DESC LIMIT {int(limit)}",
        [status] if status else [],
    )
    names = ("rule", "kind", "scope", "status", "started_at", "updated_at", "resolved_at", "impact_usd_per_month")
    out = []
    for r in rows:
        item = dict(zip((*names, "message"), r, strict=True))
        item["scope"] = json.loads(item["scope"]) if item["scope"] else {}
        for k in ("started_at", "updated_at", "resolved_at"):
            item[k] = item[k].isoformat() if item[k] else None
        out.append(item)
    return out


class Watcher:
    """Runs :func:`watch` every ``alerts.watch_interval_s`` seconds in a thread (inside ``unitcost serve``).

    It reads and writes through its own cursor on the workspace; an evaluation that fails is logged and the
    next one runs as planned, so alerting can never stop ingestion.
    """

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store.cursor()
        self.config = config
        self.interval_s = config.alerts.watch_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="unitcost-watch", daemon=True)
        self.runs = 0
        self.last_run: dt.datetime | None = None
        self.last_error: str | None = None
        self.firing = 0

    def start(self) -> None:
        if self.interval_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval_s)

    def run_once(self) -> WatchResult | None:
        """One evaluation; returns None when there is no data yet or the evaluation failed."""
        try:
            result = watch(self.store, self.config)
        except PeriodError:  # no usage rows yet
            return None
        except Exception as e:  # a bug or a bad rule must not take the server down: log it, try again later
            self.last_error = f"{type(e).__name__}: {e}"
            log.exception("watch evaluation failed")
            return None
        self.runs += 1
        self.last_run = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.last_error = None
        self.firing = len([f for f in result.findings if f.active])
        if result.fired or result.resolved:
            log.info("watch: %d fired, %d resolved", len(result.fired), len(result.resolved))
        return result

    def health(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval_s,
            "runs": self.runs,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "alerts_firing": self.firing,
            "last_error": self.last_error,
        }

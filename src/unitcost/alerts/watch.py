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
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from unitcost.alerts.anomaly import anomaly_rule
from unitcost.alerts.budgets import budget_rule
from unitcost.alerts.deployment import deployment_rule
from unitcost.alerts.drift import drift_rule
from unitcost.alerts.model import Finding, Rule, RuleContext
from unitcost.alerts.spend import SpendSeries
from unitcost.alerts.state import update_state
from unitcost.config import Config
from unitcost.errors import PeriodError
from unitcost.ledger.costs import after_newest_usage
from unitcost.store import Store

log = logging.getLogger("unitcost.alerts")

#: in this order: the anomaly rule's spend scan starts earliest, so the budgets reuse it (alerts.spend)
RULES: dict[str, Rule] = {
    "anomaly": anomaly_rule,
    "budget": budget_rule,
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
    return after_newest_usage(store, "nothing to watch")


def evaluate(
    store: Store, config: Config, at: dt.datetime, since: dt.datetime | None, kinds: list[str] | None = None
) -> list[Finding]:
    """Every rule's findings over [since, at) (``since`` None: each rule's own look-back), sorted by start."""
    findings: list[Finding] = []
    spend = SpendSeries(store, config, at)  # one spend scan for the anomaly and budget rules
    for kind, rule in RULES.items():
        if kinds and kind not in kinds:
            continue
        findings += rule(RuleContext(store, config, since or at - LOOKBACK[kind], at, spend))
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
    fired, updated, resolved = update_state(store, findings, at)
    delivered: list[Any] = []
    if deliver and config.alerts.webhooks and (fired or resolved):
        from unitcost.alerts.delivery import deliver as post

        events = [f.to_json("firing") for f in fired] + [{**r, "status": "resolved"} for r in resolved]
        delivered = list(post(config.alerts.webhooks, events))
    return WatchResult(at, start, False, findings, fired, updated, resolved, delivered)


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

"""Terminal rendering of ``unitcost watch`` and ``unitcost alerts``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from unitcost.alerts.watch import WatchResult
from unitcost.report.terminal import usd

KIND_LABELS = {"deployment_regression": "regression"}


def _scope(scope: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items()) or "all"


def render_watch(console: Console, result: WatchResult) -> None:
    """The findings (replay) or what this evaluation fired, kept and resolved."""
    if result.replay:
        title = f"Alerts that would have fired from {result.since:%Y-%m-%d %H:%M} to {result.at:%Y-%m-%d %H:%M}"
        rows = [(f.kind, _scope(f.scope), f"{f.started_at:%Y-%m-%d %H:%M}",
                 "active" if f.active else f"ended {f.ended_at:%Y-%m-%d %H:%M}", f.impact_usd_per_month, f.message)
                for f in result.findings]  # fmt: skip
    else:
        title = f"Alerts as of {result.at:%Y-%m-%d %H:%M} (data time)"
        new = {id(f) for f in result.fired}
        rows = [(f.kind, _scope(f.scope), f"{f.started_at:%Y-%m-%d %H:%M}", "FIRED" if id(f) in new else "firing",
                 f.impact_usd_per_month, f.message) for f in (*result.fired, *result.updated)]  # fmt: skip
        rows += [(r["kind"], _scope(r["scope"]), (r["started_at"] or "")[:16].replace("T", " "), "resolved",
                  r["impact_usd_per_month"], r["message"]) for r in result.resolved]  # fmt: skip
    t = Table(title=title, title_justify="left")
    for c in ("kind", "scope", "since", "status", "impact/month"):
        t.add_column(c, no_wrap=c != "scope", justify="right" if c == "impact/month" else "left", max_width=26)
    t.add_column("what", min_width=60)
    for kind, scope, since, status, impact, message in rows:
        label = KIND_LABELS.get(kind, kind)
        t.add_row(label, scope, since, status, usd(impact, 0) if impact is not None else "—", message)
    if rows:
        console.print(t)
    else:
        console.print(f"{title}: nothing to report.")
    for d in result.delivered:
        if not getattr(d, "ok", True):
            console.print(f"[yellow]webhook delivery failed: {d}[/yellow]")


def render_alert_rows(console: Console, rows: list[dict[str, Any]]) -> None:
    """The stored alerts, open ones first."""
    if not rows:
        console.print("No alerts stored yet: run unitcost watch.")
        return
    t = Table(title="Alerts", title_justify="left")
    for c in ("status", "kind", "scope", "started", "resolved", "impact/month", "what"):
        t.add_column(c, justify="right" if c == "impact/month" else "left")
    for r in rows:
        impact = r["impact_usd_per_month"]
        t.add_row(
            r["status"],
            r["kind"],
            _scope(r["scope"]),
            (r["started_at"] or "")[:16].replace("T", " "),
            (r["resolved_at"] or "")[:16].replace("T", " "),
            usd(impact, 0) if impact is not None else "—",
            r["message"],
        )
    console.print(t)

"""The alerts' life cycle in the ``alerts`` table: fire once, update while active, resolve once.

One open (``firing``) row per alert key (rule + scope). See :mod:`unitcost.alerts.watch` for the rules.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from unitcost.alerts.model import Finding
from unitcost.store import Store

__all__ = ["list_alerts", "update_state"]


def update_state(
    store: Store, findings: list[Finding], at: dt.datetime
) -> tuple[list[Finding], list[Finding], list[dict[str, Any]]]:
    """Fire, update and resolve stored alerts from one evaluation's findings; return (fired, updated, resolved)."""
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

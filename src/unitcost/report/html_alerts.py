"""The HTML report's "What needs attention" section: the alerts firing when the report was made."""

from __future__ import annotations

import html
from typing import Any

KIND_WORDS = {
    "deployment_regression": "Release regression",
    "drift": "Drift",
    "anomaly": "Spend anomaly",
    "budget": "Budget",
}


def alerts_html(rows: list[dict[str, Any]]) -> str:
    """A table of firing alerts, largest monthly impact first; empty when nothing fires."""
    if not rows:
        return ""
    ranked = sorted(rows, key=lambda r: -(r["impact_usd_per_month"] or 0.0))
    body = "".join(
        "<tr>"
        f'<td class="key" style="white-space:nowrap">{html.escape(KIND_WORDS.get(r["kind"], r["kind"]))}</td>'
        f'<td class="key">{html.escape(", ".join(f"{k} {v}" for k, v in r["scope"].items()) or "all spend")}</td>'
        f'<td class="key" style="white-space:nowrap">{html.escape((r["started_at"] or "")[:10])}</td>'
        f"<td>{_usd(r['impact_usd_per_month'])}</td>"
        f'<td class="basis">{html.escape(r["message"])}</td>'
        "</tr>"
        for r in ranked
    )
    return f"""<h2 id="alerts">What needs attention</h2>
<p class="caption">Alerts firing as of the newest data ({len(rows)}), from <code>unitcost watch</code>:
budgets, spend anomalies, drift and deployment regressions. Impact is the estimated cost per month if nothing
changes. <code>unitcost explain</code> splits any day's change into its drivers.</p>
<div class="table-block" id="alerts-table"><table>
<thead><tr><th class="key">Kind</th><th class="key">Where</th><th class="key">Since</th><th>Impact / month</th>
<th class="basis">What</th></tr></thead>
<tbody>{body}</tbody>
</table></div>"""


def _usd(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{'+' if value >= 0 else '-'}${abs(value):,.0f}"

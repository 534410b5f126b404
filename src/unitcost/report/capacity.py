"""Terminal rendering of ``unitcost plan``: the best configuration, the ranked table, the stress cases."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from unitcost.report.terminal import usd

SHOWN = 12


def _s(value: Any, unit: str = "s", digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "∞"
    return f"{value:,.{digits}f}{unit}"


def render_plan(console: Console, document: dict[str, Any], shown: int = SHOWN) -> None:
    """Print the plan outcome from its JSON document (so terminal and JSON cannot disagree)."""
    best = document["best"]
    console.print(
        f"[bold]{document['plan']}[/bold]: {document['configurations']:,} configurations of {document['model']} "
        f"screened over {document['requests']:,} requests; {document['simulated']} simulated.",
        highlight=False,
    )
    if best is None:
        console.print("[red]No simulated configuration meets every SLO.[/red] The closest ones are below.")
    else:
        console.print(
            f"[green]Cheapest that meets every SLO:[/green] [bold]{best['name']}[/bold] — "
            f"{usd(best['cost_per_month_usd'], 0)}/month ({usd(best['cost_per_hour_usd'])}/h), "
            f"{usd(best['cost_per_1k_output_tokens_usd'], 4)} per 1K output tokens, "
            f"{usd(best['cost_per_request_usd'], 5)} per request; p95 TTFT {_s(best['ttft_p95_s'])}, "
            f"p95 TPOT {_s(best['tpot_p95_ms'], ' ms', 1)}, p95 end to end {_s(best['e2e_p95_s'])}; "
            f"{best['replicas_avg']:.1f} replicas on average, GPU busy {best['gpu_utilization']:.0%}, "
            f"{best['idle_gpu_hours']:.1f} idle GPU-hours.",
            highlight=False,
        )
    t = Table(title="Configurations, cheapest meeting the SLOs first", title_justify="left")
    for name, justify in (
        ("configuration", "left"),
        ("by", "left"),
        ("TTFT p95", "right"),
        ("TPOT p95", "right"),
        ("e2e p95", "right"),
        ("replicas", "right"),
        ("GPU busy", "right"),
        ("$/hour", "right"),
        ("$/1K out", "right"),
        ("SLO", "center"),
    ):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    rows = [r for r in document["results"] if r["feasible"]]
    for r in rows[:shown]:
        mark = "[green]met[/green]" if r["slo_met"] else "[red]missed[/red]"
        t.add_row(
            ("★ " if best is not None and r["id"] == best["id"] else "") + r["name"],
            "sim" if r["method"] == "simulated" else "screen",
            _s(r.get("ttft_p95_s")),
            _s(r.get("tpot_p95_ms"), " ms", 1),
            _s(r.get("e2e_p95_s")),
            f"{r['replicas_avg']:.1f}",
            f"{r['gpu_utilization']:.0%}",
            usd(r["cost_per_hour_usd"]),
            usd(r["cost_per_1k_output_tokens_usd"], 4),
            mark,
        )
    console.print(t)
    infeasible = len(document["results"]) - len(rows)
    hidden = max(len(rows) - shown, 0)
    notes = []
    if hidden:
        notes.append(f"{hidden:,} more configurations in --json")
    if infeasible:
        notes.append(f"{infeasible:,} do not fit on their GPUs")
    if notes:
        console.print(f"[dim]{'; '.join(notes)}. 'sim': verified by the simulator; 'screen': analytical.[/dim]")
    if document.get("stress"):
        render_stress(console, document["stress"])
    elif "stress" in document:
        console.print("[yellow]No configuration fits on its GPUs: there is no fleet to stress.[/yellow]")


def render_stress(console: Console, cases: list[dict[str, Any]]) -> None:
    """Print what fails first under each stress case."""
    t = Table(title="Stress: what fails first", title_justify="left")
    for name in ("case", "SLOs", "first to break", "when", "at load", "TTFT p95", "e2e p95", "served"):
        t.add_column(name, justify="left" if name in ("case", "first to break") else "right")
    for c in cases:
        m = c["metrics"]
        t.add_row(
            c["name"],
            "[green]held[/green]" if c["slo_met"] else "[red]broken[/red]",
            c["first_breach"] or "—",
            _s(c["breach_at_s"], " s", 0) if c["breach_at_s"] is not None else "—",
            f"{c['breach_load_multiplier']:.1f}x" if c["breach_load_multiplier"] is not None else "—",
            _s(m.get("ttft_p95_s")),
            _s(m.get("e2e_p95_s")),
            f"{m.get('served_share', 1.0):.1%}",
        )
    console.print(t)

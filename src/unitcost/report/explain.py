"""Terminal rendering of ``unitcost explain``: the summary first, then the drivers and their contributors."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from unitcost.analysis.explain import DRIVER_WORDS, Explanation
from unitcost.report.terminal import usd


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + usd(abs(value))


def render_explanation(console: Console, e: Explanation, contributors: int = 3, min_share_pct: float = 0.5) -> None:
    """Print the summary, the driver table (largest first) and the metrics of both windows."""
    console.print(e.summary, highlight=False)
    t = Table(
        title=f"Cost change by driver ({e.basis} cost, {e.baseline.describe()} -> {e.period.describe()})",
        title_justify="left",
    )
    t.add_column("driver", no_wrap=True)
    t.add_column("change", justify="right")
    t.add_column("pts", justify="right")
    t.add_column("top contributors")
    base = e.cost_baseline_usd
    ranked = sorted(e.drivers, key=lambda d: -abs(d.change_usd))
    hidden = 0.0
    for d in ranked:
        if base and abs(100 * d.change_usd / base) < min_share_pct and abs(d.change_usd) < 0.005 * max(abs(base), 1):
            hidden += d.change_usd
            continue
        who = ", ".join(f"{c.dimension} {c.key} {_signed(c.change_usd)}" for c in d.top_contributors[:contributors])
        t.add_row(
            DRIVER_WORDS.get(d.driver, d.driver),
            _signed(d.change_usd),
            f"{100 * d.change_usd / base:+.1f}" if base else "—",
            who,
        )
    if hidden:
        t.add_row("[dim]smaller drivers[/dim]", _signed(hidden), f"{100 * hidden / base:+.1f}" if base else "—", "")
    t.add_row("[bold]total change[/bold]", _signed(e.change_usd), f"{e.change_pct:+.1f}" if e.change_pct else "—", "")
    console.print(t)
    m = Table(title="What moved", title_justify="left")
    m.add_column("metric")
    m.add_column(e.baseline.describe(), justify="right")
    m.add_column(e.period.describe(), justify="right")
    for name in e.metrics["baseline"]:
        a, b = e.metrics["baseline"][name], e.metrics["period"][name]
        m.add_row(name, _fmt(name, a), _fmt(name, b))
    console.print(m)
    if any(e.unpriced_requests.values()):
        console.print(
            f"[yellow]Unpriced requests (excluded from cost): baseline {e.unpriced_requests['baseline']:,}, "
            f"period {e.unpriced_requests['period']:,}; see unitcost report.[/yellow]"
        )
    console.print(f"[dim]Drivers add up to the change; residual {e.residual_usd:+.2e} USD (float rounding).[/dim]")


def _fmt(name: str, v: float | None) -> str:
    if v is None:
        return "—"
    if name.endswith("_usd"):
        return usd(v, 4 if abs(v) < 1 else 2)
    if name in ("cached_share", "response_cache_hit_rate"):
        return f"{100 * v:.1f}%"
    if name in ("units_of_work", "requests"):
        return f"{v:,.0f}"
    return f"{v:,.2f}"

"""Terminal rendering of ``unitcost scenarios`` and ``unitcost review`` from their JSON documents, no computation.

Both renderers take the ``--json`` document (a dict), so the terminal and the JSON cannot disagree. The
formatting helpers here (money, shares, driver names) are shared with :mod:`unitcost.report.html_outlook`;
this module does not import plotly.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from rich.console import Console
from rich.table import Table

TORNADO_SHOWN = 8

#: scenario drivers by their machine name (unitcost.analysis.scenarios.Scenario.drivers) -> words
DRIVER_LABELS = {
    "traffic_growth_pct": "traffic growth %/month",
    "new_tenants": "new tenants",
    "input_tokens_pct": "input tokens %",
    "context_tokens_pct": "context tokens %",
    "output_tokens_pct": "output tokens %",
    "prompt_compression_pct": "prompt compression %",
    "cached_share_pts": "cached share (pts)",
    "app_cache_hit_pts": "response cache hit rate (pts)",
    "retry_rate_pct": "retry rate %",
    "escalation_rate_pts": "escalation rate (pts)",
    "api_price_pct": "API prices %",
    "gpu_price_pct": "GPU prices %",
    "support_burden_pct": "support burden %",
    "reserved.share": "reserved share of the GPU pool",
    "reserved.discount_pct": "reserved discount %",
}
#: SLO fields of a capacity plan -> words
SLO_LABELS = {
    "ttft_p95_s": "time to first token p95",
    "tpot_p95_ms": "time per output token p95",
    "e2e_p95_s": "end-to-end latency p95",
}


def finite(value: Any) -> float | None:
    """The value as a float, or None when it is missing or not finite.

    >>> finite(1), finite(None), finite(float("nan"))
    (1.0, None, None)
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def money(value: Any, digits: int = 2) -> str:
    """Dollars with thousands separators, the sign before the dollar; missing or not finite: an em dash.

    >>> money(1234.5, 0), money(-5272.9, 0), money(0.00001, 4), money(None), money(float("inf"))
    ('$1,234', '-$5,273', '<$0.0001', '—', '—')
    """
    number = finite(value)
    if number is None:
        return "—"
    smallest = 10.0**-digits
    if digits and 0 < number < smallest / 2:
        return f"<${smallest:.{digits}f}"
    text = f"${abs(number):,.{digits}f}"
    return f"-{text}" if number < 0 and text.strip("$0.,") else text


def share(value: Any, digits: int = 1) -> str:
    """A 0-1 share as a percentage.

    >>> share(0.5129), share(None), share(-0.25, 0)
    ('51.3%', '—', '-25%')
    """
    number = finite(value)
    return "—" if number is None else f"{number * 100:.{digits}f}%"


def percent(value: Any, digits: int = 1) -> str:
    """A number that is already in percent.

    >>> percent(7.8306), percent(None)
    ('7.8%', '—')
    """
    number = finite(value)
    return "—" if number is None else f"{number:.{digits}f}%"


def amount(value: Any, digits: int = 0) -> str:
    """A count or volume with thousands separators.

    >>> amount(1014589.42), amount(None)
    ('1,014,589', '—')
    """
    number = finite(value)
    return "—" if number is None else f"{number:,.{digits}f}"


def multiple(value: Any) -> str:
    """A load or traffic multiple.

    >>> multiple(10.0), multiple(1.9073), multiple(None)
    ('10x', '1.9x', '—')
    """
    number = finite(value)
    if number is None:
        return "—"
    return f"{number:g}x" if number == round(number, 2) else f"{number:.1f}x"


def months_ahead(value: Any) -> str:
    """The scenarios' horizon in words.

    >>> months_ahead(3), months_ahead(1), months_ahead(None)
    ('3 months ahead', '1 month ahead', 'ahead')
    """
    number = finite(value)
    if number is None:
        return "ahead"
    return f"{number:g} month{'' if number == 1 else 's'} ahead"


def name_or_dash(value: Any) -> str:
    """A name, or an em dash when it is missing.

    >>> name_or_dash("expected"), name_or_dash(None)
    ('expected', '—')
    """
    return "—" if value is None or value == "" else str(value)


def driver_label(name: str) -> str:
    """A scenario driver's name in words; an unknown name as it is.

    >>> driver_label("routing.0.share"), driver_label("layer_growth_pct.storage"), driver_label("mystery")
    ('route 1: share rerouted', 'storage cost growth %', 'mystery')
    """
    if name in DRIVER_LABELS:
        return DRIVER_LABELS[name]
    parts = name.split(".")
    if len(parts) == 2 and parts[0] == "layer_growth_pct":
        return f"{parts[1].replace('_', ' ')} cost growth %"
    if len(parts) == 3 and parts[0] == "routing" and parts[1].isdigit():
        what = {"share": "share rerouted", "escalation_rate": "escalation rate"}.get(parts[2], parts[2])
        return f"route {int(parts[1]) + 1}: {what}"
    return name


def driver_value(name: str, value: Any) -> str:
    """A driver's value in its unit: percent, points, a 0-1 share or a count.

    >>> driver_value("traffic_growth_pct", 9.415), driver_value("cached_share_pts", 5)
    ('9.4%', '+5.0 pts')
    >>> driver_value("routing.0.share", 0.5), driver_value("new_tenants", 6)
    ('50%', '6.0')
    """
    number = finite(value)
    if number is None:
        return "—"
    if name.endswith("_pts"):
        return f"{number:+.1f} pts"
    if name.endswith("_pct") or name.startswith("layer_growth_pct."):
        return f"{number:.1f}%"
    if name.endswith((".share", ".escalation_rate")):
        return f"{number * 100:.0f}%" if number * 100 == round(number * 100) else f"{number * 100:.1f}%"
    return f"{number:,.1f}"


def slo_label(name: str | None) -> str:
    """An SLO field in words.

    >>> slo_label("ttft_p95_s"), slo_label(None)
    ('time to first token p95', '—')
    """
    return "—" if name is None else SLO_LABELS.get(name, name)


def duration(seconds: Any) -> str:
    """Seconds into a run as seconds, minutes or hours.

    >>> duration(8710.36), duration(95), duration(None)
    ('2.4 h', '1.6 min', '—')
    """
    number = finite(seconds)
    if number is None:
        return "—"
    if number >= 3600:
        return f"{number / 3600:.1f} h"
    if number >= 60:
        return f"{number / 60:.1f} min"
    return f"{number:.0f} s"


def window_text(window: dict[str, Any] | None) -> str:
    """The baseline window as two dates.

    >>> window_text({"from": "2026-09-30T23:59:56", "to": "2026-10-30T23:59:56"})
    '2026-09-30 → 2026-10-30'
    """
    if not window:
        return "—"

    def day(value: Any) -> str:
        try:
            return f"{dt.datetime.fromisoformat(str(value)):%Y-%m-%d}"
        except ValueError:
            return str(value)

    return f"{day(window.get('from'))} → {day(window.get('to'))}"


def band(doc: dict[str, Any] | None, key: str) -> Any:
    """One percentile (``p10``, ``p50``, ``p90``) of a band, None when absent."""
    return (doc or {}).get(key)


def layer_order(baseline_layers: dict[str, Any], scenarios: list[dict[str, Any]]) -> list[str]:
    """Layers costliest first in the baseline, then any layer only a scenario has."""
    ordered = sorted(baseline_layers, key=lambda k: -(finite(baseline_layers[k]) or 0.0))
    for s in scenarios:
        ordered += [k for k in s.get("layers_usd", {}) if k not in ordered]
    return ordered


def tornado_bars(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The tornado's bars, largest swing first (missing swings last)."""
    bars = list((doc.get("tornado") or {}).get("bars") or [])
    return sorted(bars, key=lambda b: (finite(b.get("swing_usd")) is None, -(finite(b.get("swing_usd")) or 0.0)))


def _heading(console: Console, text: str) -> None:
    console.print()
    console.print(f"[bold]{text}[/bold]", highlight=False)


def _notes(console: Console, notes: list[str] | None) -> None:
    for note in notes or []:
        console.print(f"[dim]{note}[/dim]", highlight=False)


def render_scenarios(console: Console, doc: dict[str, Any]) -> None:
    """Print the ``scenarios --json`` document: baseline, P10/P50/P90 per scenario, layers, tornado, notes."""
    base = doc.get("baseline") or {}
    scenarios = doc.get("scenarios") or []
    console.print(
        f"[bold]Baseline month[/bold] ({window_text(base.get('window'))}): {money(base.get('monthly_cost_usd'), 0)} "
        f"a month, {money(base.get('cost_per_request_usd'), 4)} per request, "
        f"{money(base.get('cost_per_successful_outcome_usd'), 4)} per successful outcome.",
        highlight=False,
    )
    replanned = " The GPU pool is re-planned at each load." if doc.get("capacity_replanned") else ""
    console.print(
        f"[dim]Scenarios {months_ahead(doc.get('horizon_months'))}: P10 / P50 / P90 of "
        f"{amount(doc.get('samples'))} simulated months (P10: 1 in 10 comes out cheaper; P90: 1 in 10 costs "
        f"more).{replanned}[/dim]",
        highlight=False,
    )
    t = Table(title="Monthly cost by scenario (USD)", title_justify="left")
    t.add_column("scenario")
    for name in ("P10", "P50", "P90", "$/request P50", "$/successful outcome P10–P90"):
        t.add_column(name, justify="right")
    t.add_row(
        "[dim]baseline (measured)[/dim]",
        "—",
        money(base.get("monthly_cost_usd"), 0),
        "—",
        money(base.get("cost_per_request_usd"), 4),
        money(base.get("cost_per_successful_outcome_usd"), 4),
    )
    for s in scenarios:
        cost, per_outcome = s.get("monthly_cost_usd"), s.get("cost_per_successful_outcome_usd")
        t.add_row(
            s["name"],
            money(band(cost, "p10"), 0),
            f"[bold]{money(band(cost, 'p50'), 0)}[/bold]",
            money(band(cost, "p90"), 0),
            money(band(s.get("cost_per_request_usd"), "p50"), 4),
            f"{money(band(per_outcome, 'p10'), 4)} – {money(band(per_outcome, 'p90'), 4)}",
        )
    console.print(t)
    _layers_table(console, base, scenarios)
    _tornado_table(console, doc)
    _notes(console, doc.get("notes"))


def _layers_table(console: Console, base: dict[str, Any], scenarios: list[dict[str, Any]]) -> None:
    base_layers = base.get("layers_usd") or {}
    t = Table(
        title="Monthly cost by layer, P50 (USD)",
        title_justify="left",
        caption="Each layer's P50 is its own median: they need not add up to the P50 of the total.",
        caption_justify="left",
    )
    t.add_column("layer")
    t.add_column("baseline", justify="right")
    for s in scenarios:
        t.add_column(s["name"], justify="right")
    for layer in layer_order(base_layers, scenarios):
        t.add_row(
            layer,
            money(base_layers.get(layer), 0),
            *(money(band((s.get("layers_usd") or {}).get(layer), "p50"), 0) for s in scenarios),
        )
    t.add_row(
        "[bold]total[/bold] (P50 of the total)",
        f"[bold]{money(base.get('monthly_cost_usd'), 0)}[/bold]",
        *(f"[bold]{money(band(s.get('monthly_cost_usd'), 'p50'), 0)}[/bold]" for s in scenarios),
        end_section=False,
    )
    console.print(t)


def _tornado_table(console: Console, doc: dict[str, Any]) -> None:
    tornado = doc.get("tornado") or {}
    bars = tornado_bars(doc)
    if not bars:
        return
    t = Table(
        title=f"What moves the cost per successful outcome most ({name_or_dash(tornado.get('scenario'))}; "
        f"{money(tornado.get('center_usd'), 4)} with every driver at its median)",
        title_justify="left",
        caption="Each driver moved alone from its P10 (low) to its P90 (high) value, the others held at their "
        "medians; a fixed driver moves from no change to its value.",
        caption_justify="left",
    )
    t.add_column("driver")
    for name in ("low → high", "$/outcome at low", "$/outcome at high", "swing"):
        t.add_column(name, justify="right")
    for b in bars[:TORNADO_SHOWN]:
        name = str(b.get("driver"))
        t.add_row(
            driver_label(name),
            f"{driver_value(name, b.get('low_value'))} → {driver_value(name, b.get('high_value'))}",
            money(b.get("low_usd"), 4),
            money(b.get("high_usd"), 4),
            f"[bold]{money(b.get('swing_usd'), 4)}[/bold]",
        )
    console.print(t)
    if len(bars) > TORNADO_SHOWN:
        console.print(f"[dim]{len(bars) - TORNADO_SHOWN} smaller drivers in --json.[/dim]", highlight=False)


def render_review(console: Console, doc: dict[str, Any]) -> None:
    """Print the ``review --json`` document section by section (see unitcost.analysis.review)."""
    console.print(
        f"[bold]Architecture review[/bold] of the baseline month: {money(doc.get('baseline_monthly_cost_usd'), 0)} "
        "a month, fully loaded.",
        highlight=False,
    )
    _unit_costs(console, doc.get("unit_costs") or [])
    _scaling_risk(console, doc.get("scaling_risk") or {})
    _gpu_stress(console, doc.get("gpu_stress"), doc.get("gpu_cost_curve"))
    _marginal_tenant(console, doc.get("marginal_tenant") or {})
    _break_even(console, doc.get("break_even") or [])
    _levers(console, doc.get("levers") or [])
    if doc.get("notes"):
        console.print()
        _notes(console, doc.get("notes"))


def _unit_costs(console: Console, rows: list[dict[str, Any]]) -> None:
    _heading(console, "Unit costs at 1x / 2x / 10x")
    t = Table()
    for name in ("traffic", "monthly cost", "requests", "$/request", "$/successful outcome"):
        t.add_column(name, justify="right")
    for r in rows:
        t.add_row(
            multiple(r.get("traffic")),
            money(r.get("monthly_cost_usd"), 0),
            amount(r.get("requests")),
            money(r.get("cost_per_request_usd"), 4),
            money(r.get("cost_per_successful_outcome_usd"), 4),
        )
    console.print(t)


def _scaling_risk(console: Console, risk: dict[str, Any]) -> None:
    _heading(console, "Scaling risk")
    layers = risk.get("layers") or []
    first = risk.get("dominates_first")
    t = Table()
    t.add_column("layer")
    t.add_column("driver", max_width=44)
    for name in ("monthly cost", "$/request", "variable share", "share now", "cost at 10x", "share at 10x"):
        t.add_column(name, justify="right")
    for r in layers:
        mark = "bold" if r.get("layer") == first else ""
        t.add_row(
            str(r.get("layer")),
            str(r.get("driver") or "—"),
            money(r.get("monthly_cost_usd"), 0),
            money(r.get("cost_per_request_usd"), 5),
            share(r.get("variable_share"), 0),
            share(r.get("share_now")),
            money(r.get("monthly_cost_at_10x_usd"), 0),
            share(r.get("share_at_10x")),
            style=mark or None,
        )
    console.print(t)
    row = next((r for r in layers if r.get("layer") == first), None)
    if row is not None:
        console.print(
            f"[bold]{first}[/bold] dominates first as the system grows: {share(row.get('share_at_10x'))} of cost at "
            f"10x (now {share(row.get('share_now'))}).",
            highlight=False,
        )
    console.print(
        "[dim]Variable share: the part of a layer's cost that follows traffic (0: fixed, 100%: all of it).[/dim]",
        highlight=False,
    )


def _gpu_stress(console: Console, cases: list[dict[str, Any]] | None, curve: dict[str, Any] | None) -> None:
    _heading(console, "What fails first when GPUs run short")
    if cases is None:
        console.print("no capacity plan given", highlight=False)
    else:
        t = Table()
        t.add_column("case")
        t.add_column("SLOs", justify="center")
        t.add_column("first SLO to break")
        for name in ("after", "at load", "requests served"):
            t.add_column(name, justify="right")
        for c in cases:
            t.add_row(
                str(c.get("name")),
                "[green]held[/green]" if c.get("slo_met") else "[red]broken[/red]",
                slo_label(c.get("first_breach")),
                duration(c.get("breach_at_s")),
                multiple(c.get("breach_load_multiplier")),
                share((c.get("metrics") or {}).get("served_share")),
            )
        console.print(t)
    if curve:
        _gpu_cost_curve(console, curve)


def _gpu_cost_curve(console: Console, curve: dict[str, Any]) -> None:
    t = Table(
        title=f"GPU pool cost as traffic grows, re-planned ({name_or_dash(curve.get('plan'))})", title_justify="left"
    )
    t.add_column("traffic", justify="right")
    t.add_column("$/hour", justify="right")
    t.add_column("cheapest configuration meeting the SLOs")
    chosen = list(curve.get("chosen") or [])
    previous = None
    for i, load in enumerate(curve.get("loads") or []):
        cost = (curve.get("cost_per_hour_usd") or [])[i] if i < len(curve.get("cost_per_hour_usd") or []) else None
        config = chosen[i] if i < len(chosen) else ""
        if finite(cost) is None:
            t.add_row(multiple(load), "—", "[red]no configuration meets the SLOs[/red]")
        else:
            t.add_row(multiple(load), money(cost), "[dim]same[/dim]" if config == previous else config)
        previous = config
    console.print(t)


def _marginal_tenant(console: Console, tenant: dict[str, Any]) -> None:
    _heading(console, "One more tenant")
    layers = tenant.get("layers_usd") or {}
    shown = sorted(((k, v) for k, v in layers.items() if finite(v)), key=lambda kv: -abs(finite(kv[1]) or 0.0))
    parts = ", ".join(f"{k} {money(v)}" for k, v in shown)
    console.print(
        f"One more typical (median) tenant, {amount(tenant.get('tenant_units_per_month'))} units of work a month, "
        f"adds [bold]{money(tenant.get('monthly_cost_usd'))}[/bold] a month" + (f": {parts}." if parts else "."),
        highlight=False,
    )


def _profitable(value: Any) -> str:
    if value is None:
        return "—"
    return "[green]yes[/green]" if value else "[red]no[/red]"


def _break_even(console: Console, rows: list[dict[str, Any]]) -> None:
    _heading(console, "Break-even per use case")
    if not rows:
        console.print("No use case has a value per outcome (a value: section in unitcost.yaml).", highlight=False)
        return
    t = Table()
    t.add_column("use case")
    for name in (
        "value/outcome",
        "cost/outcome",
        "outcomes/month",
        "ROI",
        "margin",
        "break-even outcomes/month",
        "profitable at 2x",
        "at 10x",
    ):
        t.add_column(name, justify="right")
    for r in rows:
        scale = r.get("at_scale") or {}
        roi, margin = finite(r.get("roi")), finite(r.get("margin"))
        t.add_row(
            str(r.get("feature")),
            money(r.get("value_per_outcome_usd"), 2),
            money(r.get("cost_per_outcome_usd"), 4),
            amount(r.get("successful_outcomes")),
            share(roi, 0) if roi is None or roi >= 0 else f"[red]{share(roi, 0)}[/red]",
            share(margin, 0) if margin is None or margin >= 0 else f"[red]{share(margin, 0)}[/red]",
            "[red]never[/red]" if r.get("break_even_outcomes") is None else amount(r.get("break_even_outcomes")),
            _profitable((scale.get("2x") or {}).get("profitable")),
            _profitable((scale.get("10x") or {}).get("profitable")),
        )
    console.print(t)
    console.print(
        "[dim]Break-even: the successful outcomes a month at which value covers the fixed cost plus each outcome's "
        "variable cost; never: each outcome costs more than it is worth.[/dim]",
        highlight=False,
    )


def _levers(console: Console, levers: list[dict[str, Any]]) -> None:
    _heading(console, "Levers, largest saving first")
    if not levers:
        console.print("No lever applies to this workspace.", highlight=False)
        return
    t = Table(
        caption="Saved: the baseline month minus the month with the change; negative (red): the change costs more.",
        caption_justify="left",
    )
    t.add_column("lever", no_wrap=True)
    t.add_column("change", ratio=3)
    t.add_column("$/month saved", justify="right", no_wrap=True)
    t.add_column("% of total", justify="right", no_wrap=True)
    t.add_column("quality effect", ratio=4)
    for lever in levers:
        saved = finite(lever.get("monthly_savings_usd"))
        text = money(saved, 0)
        pct_text = percent(lever.get("savings_pct"))
        if saved is not None and saved < 0:
            text, pct_text = f"[red]{text}[/red]", f"[red]{pct_text}[/red]"
        t.add_row(
            str(lever.get("lever")), str(lever.get("change") or ""), text, pct_text, str(lever.get("quality_effect"))
        )
    console.print(t)

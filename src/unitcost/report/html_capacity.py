"""The capacity plan as one offline HTML page: latency vs load, replicas and queue over time, cost vs p95."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from unitcost.report.html import STYLE
from unitcost.report.html_parts import PALETTE, _chart_section, _layout, usd

AZURE_CREDIT = (
    "Azure LLM inference trace: Patel, Choukse, Zhang, Shah, Goiri, Maleki, Bianchini, “Splitwise: Efficient "
    "generative LLM inference using phase splitting”, ISCA 2024 (CC-BY-4.0)."
)


#: latencies above this are drawn as off the chart (the fleet cannot keep up)
OFF_CHART_S = 3600.0


def _finite(values: list[Any]) -> list[float | None]:
    return [v if v is not None and math.isfinite(v) and v <= OFF_CHART_S else None for v in values]


def latency_vs_load_figure(points: list[dict[str, float]], slo: dict[str, float | None]) -> go.Figure:
    """p95 TTFT and end-to-end latency of the best configuration at multiples of the planned load."""
    fig = go.Figure()
    loads = [p["load"] for p in points]
    for i, (key, label) in enumerate((("ttft_p95_s", "TTFT p95"), ("e2e_p95_s", "end-to-end p95"))):
        fig.add_trace(
            go.Scatter(
                x=loads,
                y=_finite([p[key] for p in points]),
                mode="lines+markers",
                name=label,
                line={"color": PALETTE[i]},
                hovertemplate=f"{label}<br>%{{x}}x load: %{{y:.2f}} s<extra></extra>",
            )
        )
        limit = slo.get(key)
        if limit is not None:
            fig.add_hline(
                y=limit,
                line_dash="dot",
                line_color=PALETTE[i],
                annotation_text=f"SLO {label} {limit:g} s",
                annotation_position="top left",
            )
    _layout(fig, "Latency vs load (best configuration, analytical screen)", "Seconds (log scale)")
    shown = [v for p in points for v in _finite([p["ttft_p95_s"], p["e2e_p95_s"]]) if v]
    limits = [v for v in slo.values() if v]
    low = min([*shown, *limits, 1.0]) / 2
    high = max([*shown, *limits, 1.0]) * 3
    ticks = [m * 10.0**e for e in range(-3, 5) for m in (1, 2, 5) if low <= m * 10.0**e <= high]
    fig.update_yaxes(
        type="log",
        rangemode="normal",
        range=[math.log10(low), math.log10(high)],
        tickvals=ticks,
        ticktext=[f"{t:g}" for t in ticks],
    )
    fig.update_xaxes(title_text="Load (multiple of the planned traffic)", ticksuffix="x")
    return fig


def timeline_figure(sim: Any) -> go.Figure:
    """Replicas (ready, paid) and sequences (running, waiting) over the simulated run."""
    fig = go.Figure()
    minutes = np.asarray(sim.timeline_s) / 60.0
    series = (
        ("provisioned_replicas", "replicas paid for (ready + warming)", "y", "hv"),
        ("ready_replicas", "replicas serving", "y", "hv"),
        ("running", "sequences running", "y2", "linear"),
        ("waiting", "requests waiting", "y2", "linear"),
    )
    for i, (attr, label, axis, shape) in enumerate(series):
        fig.add_trace(
            go.Scatter(
                x=minutes,
                y=np.asarray(getattr(sim, attr)),
                name=label,
                yaxis=axis,
                line={"color": PALETTE[i], "shape": shape, "dash": "dot" if axis == "y2" else "solid"},
                hovertemplate=f"{label}: %{{y:,.0f}}<br>minute %{{x:.1f}}<extra></extra>",
            )
        )
    _layout(fig, "Replicas and queue over time (best configuration, simulated)", "Replicas")
    most = float(np.max(sim.provisioned_replicas)) if len(sim.provisioned_replicas) else 1.0
    fig.update_layout(
        yaxis={"range": [0, most + 1], "dtick": max(1, math.ceil(most / 8))},
        yaxis2={"title": {"text": "Sequences"}, "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(title_text="Minutes from the start")
    return fig


def pareto_figure(rows: list[dict[str, Any]], best_id: int | None) -> go.Figure:
    """Every feasible configuration's cost per hour against its p95 end-to-end latency; the front joined."""
    feasible = [r for r in rows if r["feasible"] and r.get("e2e_p95_s") is not None and r.get("cost_per_hour_usd")]
    fig = go.Figure()
    for met, colour, label in ((True, PALETTE[2], "meets the SLOs"), (False, "#9ca3af", "misses an SLO")):
        pts = [r for r in feasible if r["slo_met"] == met]
        fig.add_trace(
            go.Scatter(
                x=[r["e2e_p95_s"] for r in pts],
                y=[r["cost_per_hour_usd"] for r in pts],
                mode="markers",
                name=label,
                marker={"color": colour, "size": 7, "opacity": 0.7},
                text=[r["name"] for r in pts],
                hovertemplate="%{text}<br>p95 e2e %{x:.2f} s<br>$%{y:,.2f}/h<extra></extra>",
            )
        )
    front = sorted((r for r in feasible if r["pareto"]), key=lambda r: r["e2e_p95_s"])
    fig.add_trace(
        go.Scatter(
            x=[r["e2e_p95_s"] for r in front],
            y=[r["cost_per_hour_usd"] for r in front],
            mode="lines",
            name="Pareto front",
            line={"color": PALETTE[0], "shape": "hv"},
            hoverinfo="skip",
        )
    )
    best = [r for r in feasible if r["id"] == best_id]
    if best:
        fig.add_trace(
            go.Scatter(
                x=[best[0]["e2e_p95_s"]],
                y=[best[0]["cost_per_hour_usd"]],
                mode="markers",
                name="best (cheapest meeting the SLOs)",
                marker={"symbol": "star", "size": 16, "color": PALETTE[1]},
                text=[best[0]["name"]],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    _layout(fig, "Cost vs p95 end-to-end latency (every configuration)", "Cost per hour (USD)")
    fig.update_xaxes(title_text="p95 end-to-end latency (s, log scale)", type="log")
    fig.update_yaxes(tickprefix="$")
    return fig


def _table(rows: list[dict[str, Any]], best_id: int | None, shown: int = 15) -> str:
    head = (
        "<tr><th>configuration</th><th>by</th><th>TTFT p95</th><th>TPOT p95</th><th>e2e p95</th>"
        "<th>replicas</th><th>GPU busy</th><th>$/hour</th><th>$/month</th><th>$/1K out</th><th>SLO</th></tr>"
    )

    def sec(v: Any, unit: str = " s", digits: int = 2) -> str:
        return "∞" if v is None else f"{v:,.{digits}f}{unit}"

    body = []
    for r in [r for r in rows if r["feasible"]][:shown]:
        star = "★ " if r["id"] == best_id else ""
        body.append(
            f"<tr><td class='key'>{star}{html.escape(r['name'])}</td>"
            f"<td>{'simulated' if r['method'] == 'simulated' else 'screen'}</td>"
            f"<td>{sec(r.get('ttft_p95_s'))}</td><td>{sec(r.get('tpot_p95_ms'), ' ms', 1)}</td>"
            f"<td>{sec(r.get('e2e_p95_s'))}</td><td>{r['replicas_avg']:.1f}</td><td>{r['gpu_utilization']:.0%}</td>"
            f"<td>{usd(r['cost_per_hour_usd'])}</td><td>{usd(r['cost_per_month_usd'], 0)}</td>"
            f"<td>{usd(r['cost_per_1k_output_tokens_usd'], 4)}</td><td>{'met' if r['slo_met'] else 'missed'}</td></tr>"
        )
    return f"<table id='table-configurations'>{head}{''.join(body)}</table>"


def _multiple(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}x"


def _stress_table(cases: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td class='key'>{html.escape(c['name'])}</td><td>{'held' if c['slo_met'] else 'broken'}</td>"
        f"<td>{html.escape(c['first_breach'] or '—')}</td>"
        f"<td>{_multiple(c['breach_load_multiplier'])}</td>"
        f"<td>{c['metrics'].get('served_share', 1.0):.1%}</td></tr>"
        for c in cases
    )
    return (
        "<h2 id='stress'>Stress: what fails first</h2><table id='table-stress'><tr><th>case</th><th>SLOs</th>"
        f"<th>first to break</th><th>at load</th><th>served</th></tr>{rows}</table>"
    )


def render_plan_html(
    document: dict[str, Any], load_curve: list[dict[str, float]], sim: Any, slo: dict[str, float | None]
) -> str:
    """The whole capacity page as one self-contained HTML document."""
    best = document["best"]
    best_id = best["id"] if best else None
    if best:
        headline = (
            f"<p class='summary' id='plan-best'><strong>Cheapest configuration that meets every SLO:</strong> "
            f"{html.escape(best['name'])} — {usd(best['cost_per_month_usd'], 0)} a month, "
            f"{usd(best['cost_per_1k_output_tokens_usd'], 4)} per 1K output tokens.</p>"
        )
    else:
        headline = "<p class='summary' id='plan-best'><strong>No simulated configuration meets every SLO.</strong></p>"
    charts = [
        (
            pareto_figure(document["results"], best_id),
            "chart-cost-vs-p95",
            "Each dot is one configuration (simulated where verified, else the analytical screen). The line joins "
            "the ones no other beats on both cost and latency.",
        )
    ]
    if load_curve:
        charts.insert(
            0,
            (
                latency_vs_load_figure(load_curve, slo),
                "chart-latency-vs-load",
                "p95 latencies of the chosen configuration as traffic grows (its autoscaling limits held); "
                "dotted lines are the SLOs. A missing point: the fleet falls behind (in over 5% of the traffic) "
                "at that load, e.g. while new replicas are still warming up after a rise in traffic.",
            ),
        )
    if sim is not None:
        charts.insert(
            1,
            (
                timeline_figure(sim),
                "chart-replicas-over-time",
                "Simulated run of the chosen configuration: replicas paid for and serving (left axis), and "
                "sequences running and waiting (right axis). New replicas serve only after their warm-up.",
            ),
        )
    sections = "".join(_chart_section(fig, div, cap, first=i == 0) for i, (fig, div, cap) in enumerate(charts))
    stress = _stress_table(document["stress"]) if document.get("stress") else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>unitcost plan — {html.escape(document["plan"])}</title><style>{STYLE}</style></head>
<body><div class="container">
<header><h1>Capacity plan: {html.escape(document["plan"])}</h1>
<p class="period">{document["configurations"]:,} configurations of {html.escape(document["model"])} screened over
{document["requests"]:,} requests; {document["simulated"]} verified by simulation.</p></header>
{headline}
{sections}
<h2>Configurations</h2>
<div class="tables">{_table(document["results"], best_id)}</div>
{stress}
<footer><p>Method, formulas and calibration: docs/capacity.md. {html.escape(AZURE_CREDIT)}</p></footer>
</div></body></html>
"""


def write_plan_html(
    path: Path, document: dict[str, Any], load_curve: list[dict[str, float]], sim: Any, slo: dict[str, float | None]
) -> Path:
    """Write the capacity page and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_plan_html(document, load_curve, sim, slo), encoding="utf-8")
    return path

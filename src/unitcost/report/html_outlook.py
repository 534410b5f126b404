"""The outlook in HTML: forecast, scenarios, tornado and the architecture review, from their JSON documents.

``outlook_html`` is one section for a larger page; ``write_outlook_page`` writes it as a standalone offline page
(``unitcost scenarios --html``, ``unitcost review --html``). Every number comes from the documents
(:meth:`~unitcost.analysis.scenarios.ScenarioReport.to_json`, :meth:`~unitcost.analysis.review.Review.to_json`
plus ``gpu_cost_curve``); this module only formats and draws them.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from unitcost.config import LAYERS
from unitcost.report.html import STYLE
from unitcost.report.html_parts import PALETTE, _chart_section, _layout, colour_map
from unitcost.report.html_stack import LAYER_LABELS
from unitcost.report.outlook import (
    amount,
    band,
    driver_label,
    driver_value,
    duration,
    finite,
    layer_order,
    money,
    months_ahead,
    multiple,
    name_or_dash,
    percent,
    share,
    slo_label,
    tornado_bars,
    window_text,
)

TORNADO_SHOWN = 20
TORNADO_ROW_PX = 46
TORNADO_TOP_PX = 80
TORNADO_BOTTOM_PX = 110
TORNADO_LEGEND_PX = 62
RED = "#b91c1c"
GREEN = "#15803d"
WHISKER = "#111827"
LOW_COLOUR = PALETTE[0]
HIGH_COLOUR = PALETTE[1]
BASELINE = "baseline (measured)"


def _layer_label(layer: str) -> str:
    return LAYER_LABELS.get(layer, {"quality": "Quality (escalations)"}.get(layer, layer))


def _layer_colours(layers: list[str]) -> dict[str | None, str]:
    """The layer colours of the report's stack chart (palette in LAYERS order), other layers after."""
    return colour_map([*(k for k in LAYERS if k in layers), *(k for k in layers if k not in LAYERS)])


def _e(value: Any) -> str:
    return html.escape(str(value))


def _red_if_negative(value: Any, text: str) -> str:
    number = finite(value)
    return f'<span style="color:{RED}">{text}</span>' if number is not None and number < 0 else text


# ---------------------------------------------------------------------------------------------------- figures


def scenario_figure(doc: dict[str, Any]) -> go.Figure:
    """Stacked bars of the P50 monthly cost per layer, baseline first, with a P10–P90 whisker of each total."""
    base = doc.get("baseline") or {}
    scenarios = doc.get("scenarios") or []
    base_layers = base.get("layers_usd") or {}
    names = [BASELINE, *(str(s["name"]) for s in scenarios)]
    layers = layer_order(base_layers, scenarios)
    colours = _layer_colours(layers)
    fig = go.Figure()
    for layer in reversed(layers):  # the costliest layer at the bottom of each stack
        values = [finite(base_layers.get(layer))]
        values += [finite(band((s.get("layers_usd") or {}).get(layer), "p50")) for s in scenarios]
        fig.add_trace(
            go.Bar(
                x=names,
                y=values,
                name=_layer_label(layer),
                marker_color=colours[layer],
                hovertemplate="%{x}<br>%{fullData.name}: $%{y:,.0f} a month (P50)<extra></extra>",
            )
        )
    xs: list[str | None] = []
    ys: list[float | None] = []
    for name, s in zip(names[1:], scenarios, strict=True):
        cost = s.get("monthly_cost_usd")
        xs += [name, name, None]
        ys += [finite(band(cost, "p10")), finite(band(cost, "p90")), None]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers",
            name="total: P10 to P90",
            line={"color": WHISKER, "width": 2},
            marker={"symbol": "line-ew-open", "size": 22, "color": WHISKER, "line": {"width": 2}},
            hovertemplate="%{x}<br>total: $%{y:,.0f} a month<extra>P10 / P90</extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=names,
            y=[finite(base.get("monthly_cost_usd"))]
            + [finite(band(s.get("monthly_cost_usd"), "p50")) for s in scenarios],
            mode="markers",
            name="total: P50 (measured for the baseline)",
            marker={"symbol": "circle", "size": 9, "color": "#ffffff", "line": {"color": WHISKER, "width": 2}},
            hovertemplate="%{x}<br>total: $%{y:,.0f} a month<extra>P50</extra>",
        )
    )
    ticks = [f"{BASELINE}<br>{money(base.get('monthly_cost_usd'), 0)}"] + [
        f"{html.escape(str(s['name']))}<br>P50 {money(band(s.get('monthly_cost_usd'), 'p50'), 0)}" for s in scenarios
    ]
    _layout(
        fig,
        f"Monthly cost by scenario, {months_ahead(doc.get('horizon_months'))} "
        "(USD, P50 by layer, P10–P90 of the total)",
        "Cost per month (USD)",
        legend_title="Layer",
        barmode="stack",
        bargap=0.35,
        height=480,
    )
    fig.update_yaxes(tickprefix="$", tickformat=",.0f")
    fig.update_xaxes(type="category", tickvals=names, ticktext=ticks, title_text=None)
    return fig


def tornado_figure(doc: dict[str, Any]) -> go.Figure:
    """Each driver's cost per successful outcome at its low and high value, around the centre; largest swing on top."""
    tornado = doc.get("tornado") or {}
    bars = tornado_bars(doc)[:TORNADO_SHOWN]
    center = finite(tornado.get("center_usd"))
    labels = [driver_label(str(b.get("driver"))) for b in bars]
    fig = go.Figure()
    width = max(10, min(26, TORNADO_ROW_PX // 2))
    for side, key, colour, words in (
        ("low", "low_usd", LOW_COLOUR, "driver at its low value (P10)"),
        ("high", "high_usd", HIGH_COLOUR, "driver at its high value (P90)"),
    ):
        xs: list[float | None] = []
        ys: list[str | None] = []
        for label, b in zip(labels, bars, strict=True):
            xs += [center, finite(b.get(key)), None]
            ys += [label, label, None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name=words,
                line={"color": colour, "width": width},
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[finite(b.get(key)) for b in bars],
                y=labels,
                mode="markers+text",
                showlegend=False,
                marker={"color": colour, "size": 2},
                text=[driver_value(str(b.get("driver")), b.get(f"{side}_value")) for b in bars],
                textposition=[_outside(center, finite(b.get(key))) for b in bars],
                textfont={"size": 12, "color": "#374151"},
                customdata=[money(b.get(key), 4) for b in bars],
                hovertemplate=f"%{{y}} at %{{text}} ({side}):<br>%{{customdata}} per successful outcome<extra></extra>",
            )
        )
    if center is not None:
        fig.add_vline(x=center, line={"color": WHISKER, "width": 1.5})
        fig.add_annotation(
            x=center,
            y=1.0,
            yref="paper",
            yanchor="bottom",
            text=f"every driver at its median: {money(center, 4)}",
            showarrow=False,
            font={"size": 12},
        )
    scenario = name_or_dash(tornado.get("scenario"))
    plot_px = TORNADO_ROW_PX * max(len(bars), 1) + 20
    _layout(
        fig,
        f"What moves the cost per successful outcome most (scenario “{scenario}”)",
        "",
        height=plot_px + TORNADO_TOP_PX + TORNADO_BOTTOM_PX,
        # the legend sits under the axis title: its offset in pixels as a share of the plot's height
        legend={"orientation": "h", "x": 0.0, "y": -TORNADO_LEGEND_PX / plot_px, "yanchor": "top"},
    )
    fig.update_layout(margin={"l": 220, "r": 40, "t": TORNADO_TOP_PX, "b": TORNADO_BOTTOM_PX})
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=list(reversed(labels)),
        rangemode="normal",
        title_text=None,
        showgrid=False,
    )
    fig.update_xaxes(title_text="Cost per successful outcome (USD)", tickprefix="$", tickformat=",.4f")
    return fig


def _outside(center: float | None, value: float | None) -> str:
    """Put a bar's label beyond its end, away from the centre line."""
    if center is None or value is None:
        return "middle right"
    return "middle left" if value < center else "middle right"


def scaling_share_figure(layers: list[dict[str, Any]]) -> go.Figure:
    """Each layer's share of the monthly cost now and at 10x traffic, as two stacked 100% bars."""
    rows = ["now (1x)", "at 10x traffic"]
    names = [str(r.get("layer")) for r in layers]
    colours = _layer_colours(names)
    fig = go.Figure()
    for r, name in zip(layers, names, strict=True):
        values = [finite(r.get("share_now")), finite(r.get("share_at_10x"))]
        fig.add_trace(
            go.Bar(
                x=values,
                y=rows,
                orientation="h",
                name=_layer_label(name),
                marker_color=colours[name],
                text=[share(v, 0) if (v or 0) >= 0.04 else "" for v in values],
                textposition="inside",
                insidetextanchor="middle",
                hovertemplate="%{fullData.name}, %{y}: %{x:.1%} of the monthly cost<extra></extra>",
            )
        )
    _layout(
        fig,
        "Share of the monthly cost by layer: now and at 10x traffic",
        "",
        legend_title="Layer",
        barmode="stack",
        bargap=0.3,
        height=340,
        legend={"traceorder": "normal"},
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title_text="Share of the monthly cost")
    fig.update_yaxes(title_text=None, rangemode="normal", categoryorder="array", categoryarray=rows[::-1])
    return fig


def gpu_cost_curve_figure(curve: dict[str, Any]) -> go.Figure:
    """The self-hosted pool's cost per hour at each traffic multiple, re-planned; shaded where nothing fits."""
    loads = [multiple(v) for v in curve.get("loads") or []]
    costs = [finite(v) for v in curve.get("cost_per_hour_usd") or []]
    chosen = [str(c) for c in curve.get("chosen") or []]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=loads,
            y=costs,
            mode="lines+markers",
            name="cheapest configuration meeting the SLOs",
            line={"color": PALETTE[0]},
            connectgaps=False,
            customdata=chosen,
            hovertemplate="%{x} traffic: $%{y:,.2f}/h<br>%{customdata}<extra></extra>",
        )
    )
    for first, last in _runs_without_cost(costs):
        fig.add_vrect(
            x0=first - 0.5,  # category positions: the band covers the whole slot of each load
            x1=last + 0.5,
            fillcolor="rgba(185, 28, 28, 0.10)",
            line={"width": 0},
            annotation_text="no configuration<br>meets the SLOs",
            annotation_position="top left",
            annotation_font={"color": RED, "size": 12},
        )
    _layout(
        fig,
        f"GPU pool cost per hour as traffic grows, re-planned ({name_or_dash(curve.get('plan'))})",
        "Cost per hour (USD)",
    )
    fig.update_yaxes(tickprefix="$", tickformat=",.2f")
    fig.update_xaxes(
        title_text="Traffic (multiple of the capacity plan's load)",
        type="category",
        categoryorder="array",
        categoryarray=loads,
        range=[-0.5, len(loads) - 0.5],
    )
    fig.update_layout(legend={"orientation": "h", "x": 0.0, "y": 1.0, "yanchor": "bottom"})
    return fig


def _runs_without_cost(costs: list[float | None]) -> list[tuple[int, int]]:
    """The first and last position of each run of consecutive loads that no configuration serves."""
    runs: list[tuple[int, int]] = []
    for i, cost in enumerate(costs):
        if cost is not None:
            continue
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


# ---------------------------------------------------------------------------------------------------- tables


def _table(table_id: str, title: str, head: list[str], rows: list[str], caption: str = "") -> str:
    cells = "".join(
        f'<th class="basis">{h[1:]}</th>' if h.startswith("~") else f"<th>{h}</th>" for h in head
    )  # "~": a text column
    body = "".join(rows) or f'<tr><td class="key" colspan="{len(head)}">No data</td></tr>'
    note = f'<p class="caption table-caption">{caption}</p>' if caption else ""
    return (
        f'<div class="table-block" id="{table_id}"><h3>{title}</h3>'
        f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>{note}</div>"
    )


def _row(*cells: str, key: str, css: str = "") -> str:
    attr = f' class="{css}"' if css else ""
    return f'<tr{attr}><td class="key">{key}</td>' + "".join(cells) + "</tr>"


def _td(text: str, css: str = "") -> str:
    return f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>"


def scenarios_table_html(doc: dict[str, Any]) -> str:
    """P10 / P50 / P90 of each scenario's monthly cost and unit costs, the baseline first."""
    base = doc.get("baseline") or {}
    rows = [
        _row(
            _td("—"),
            _td(f"<strong>{money(base.get('monthly_cost_usd'), 0)}</strong>"),
            _td("—"),
            _td(money(base.get("cost_per_request_usd"), 4)),
            _td(money(base.get("cost_per_successful_outcome_usd"), 4)),
            key=BASELINE,
        )
    ]
    for s in doc.get("scenarios") or []:
        cost, per_outcome = s.get("monthly_cost_usd"), s.get("cost_per_successful_outcome_usd")
        rows.append(
            _row(
                _td(money(band(cost, "p10"), 0)),
                _td(f"<strong>{money(band(cost, 'p50'), 0)}</strong>"),
                _td(money(band(cost, "p90"), 0)),
                _td(money(band(s.get("cost_per_request_usd"), "p50"), 4)),
                _td(f"{money(band(per_outcome, 'p10'), 4)} – {money(band(per_outcome, 'p90'), 4)}"),
                key=_e(s.get("name")),
            )
        )
    return _table(
        "table-scenarios",
        "Monthly cost by scenario",
        ["Scenario", "P10", "P50", "P90", "Cost / request (P50)", "Cost / successful outcome (P10–P90)"],
        rows,
        "P10: one simulated month in ten comes out cheaper; P90: one in ten costs more.",
    )


def _unit_costs_table(rows: list[dict[str, Any]]) -> str:
    body = [
        _row(
            _td(money(r.get("monthly_cost_usd"), 0)),
            _td(amount(r.get("requests"))),
            _td(money(r.get("cost_per_request_usd"), 4)),
            _td(money(r.get("cost_per_successful_outcome_usd"), 4)),
            key=multiple(r.get("traffic")),
        )
        for r in rows
    ]
    return _table(
        "table-review-unit-costs",
        "Unit costs at 1x / 2x / 10x traffic",
        ["Traffic", "Monthly cost", "Requests", "Cost / request", "Cost / successful outcome"],
        body,
        "The baseline month with every feature's traffic multiplied; fixed costs are spread over more requests.",
    )


def _scaling_table(risk: dict[str, Any]) -> str:
    first = risk.get("dominates_first")
    body = [
        _row(
            _td(_e(r.get("driver") or "—"), "basis"),
            _td(money(r.get("monthly_cost_usd"), 0)),
            _td(money(r.get("cost_per_request_usd"), 5)),
            _td(share(r.get("variable_share"), 0)),
            _td(share(r.get("share_now"))),
            _td(money(r.get("monthly_cost_at_10x_usd"), 0)),
            _td(share(r.get("share_at_10x"))),
            key=("<strong>" + _e(_layer_label(str(r.get("layer")))) + "</strong>")
            if r.get("layer") == first
            else _e(_layer_label(str(r.get("layer")))),
        )
        for r in risk.get("layers") or []
    ]
    return _table(
        "table-scaling-risk",
        "Scaling risk by layer",
        [
            "Layer",
            "~What drives it",
            "Monthly cost",
            "Cost / request",
            "Variable share",
            "Share now",
            "Cost at 10x",
            "Share at 10x",
        ],
        body,
        "Variable share: the part of the layer's cost that follows traffic (0%: fixed, 100%: all of it).",
    )


def _dominates_sentence(risk: dict[str, Any]) -> str:
    first = risk.get("dominates_first")
    row = next((r for r in risk.get("layers") or [] if r.get("layer") == first), None)
    if row is None:
        return ""
    return (
        f'<p class="summary" id="review-dominates-first"><strong>{_e(_layer_label(str(first)))} dominates first as '
        f"the system grows: {share(row.get('share_at_10x'))} of cost at 10x</strong> (now "
        f"{share(row.get('share_now'))}).</p>"
    )


def _stress_table(cases: list[dict[str, Any]] | None) -> str:
    if cases is None:
        return (
            '<div class="table-block" id="table-gpu-stress"><h3>What fails first when GPUs run short</h3>'
            '<p class="caption">no capacity plan given: give the self-hosted pool\'s plan file to stress-test it.</p>'
            "</div>"
        )
    body = [
        _row(
            _td(
                f'<span style="color:{GREEN}">held</span>'
                if c.get("slo_met")
                else f'<span style="color:{RED}">broken</span>'
            ),
            _td(_e(slo_label(c.get("first_breach")))),
            _td(duration(c.get("breach_at_s"))),
            _td(multiple(c.get("breach_load_multiplier"))),
            _td(share((c.get("metrics") or {}).get("served_share"))),
            key=_e(c.get("name")),
        )
        for c in cases
    ]
    return _table(
        "table-gpu-stress",
        "What fails first when GPUs run short",
        ["Case", "SLOs", "First SLO to break", "After", "At load", "Requests served"],
        body,
        "Each case replays the capacity plan's traffic on its chosen configuration, ramped up or with GPUs lost. "
        "After: time into the run when the first SLO broke; at load: the traffic then, as a multiple of the plan's.",
    )


def _marginal_table(tenant: dict[str, Any]) -> str:
    layers = tenant.get("layers_usd") or {}
    shown = sorted(((k, v) for k, v in layers.items() if finite(v)), key=lambda kv: -abs(finite(kv[1]) or 0.0))
    body = [_row(_td(money(v)), key=_e(_layer_label(k))) for k, v in shown]
    body.append(_row(_td(money(tenant.get("monthly_cost_usd"))), key="Total", css="total"))
    return _table(
        "table-marginal-tenant",
        f"One more tenant: a typical (median) one, {amount(tenant.get('tenant_units_per_month'))} units of work a "
        "month",
        ["Layer", "Added cost per month"],
        body,
        "Layers it adds nothing to are left out.",
    )


def _yes_no(value: Any) -> str:
    if value is None:
        return "—"
    return f'<span style="color:{GREEN}">yes</span>' if value else f'<span style="color:{RED}">no</span>'


def _break_even_table(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        scale = r.get("at_scale") or {}
        never = r.get("break_even_outcomes") is None
        body.append(
            _row(
                _td(money(r.get("value_per_outcome_usd"))),
                _td(money(r.get("cost_per_outcome_usd"), 4)),
                _td(amount(r.get("successful_outcomes"))),
                _td(_red_if_negative(r.get("roi"), share(r.get("roi"), 0))),
                _td(_red_if_negative(r.get("margin"), share(r.get("margin"), 0))),
                _td(f'<span style="color:{RED}">never</span>' if never else amount(r.get("break_even_outcomes"))),
                _td(_yes_no((scale.get("2x") or {}).get("profitable"))),
                _td(_yes_no((scale.get("10x") or {}).get("profitable"))),
                key=_e(r.get("feature")),
            )
        )
    if not rows:
        body.append(
            '<tr><td class="key" colspan="9">No use case has a value per successful outcome: add a '
            "<code>value:</code> section to unitcost.yaml.</td></tr>"
        )
    return _table(
        "table-break-even",
        "Break-even per use case",
        [
            "Use case",
            "Value / outcome",
            "Cost / outcome",
            "Successful outcomes / month",
            "ROI",
            "Margin",
            "Break-even outcomes / month",
            "Profitable at 2x",
            "Profitable at 10x",
        ],
        body,
        "ROI: (value − cost) / cost; margin: (value − cost) / value, over the baseline month, fully loaded. "
        "Break-even: the successful outcomes a month at which value covers the fixed cost plus each outcome's "
        "variable cost; never: each outcome costs more than it is worth.",
    )


def _levers_table(levers: list[dict[str, Any]]) -> str:
    body = [
        _row(
            _td(_e(lever.get("change") or ""), "basis"),
            _td(_red_if_negative(lever.get("monthly_savings_usd"), money(lever.get("monthly_savings_usd"), 0))),
            _td(_red_if_negative(lever.get("savings_pct"), percent(lever.get("savings_pct")))),
            _td(_e(lever.get("quality_effect") or ""), "basis"),
            key=f'<span style="white-space:nowrap">{_e(lever.get("lever"))}</span>',
        )
        for lever in levers
    ]
    return _table(
        "table-levers",
        "Levers, largest saving first",
        ["Lever", "~Change", "Saved per month", "Share of the total", "~Effect on quality"],
        body,
        "Saved: the baseline month minus the same month with the change alone. A negative saving (red) means the "
        "change costs more than it saves.",
    )


# ---------------------------------------------------------------------------------------------------- sections


class _Charts:
    """Emits chart sections, plotly.js inlined in the first one only when the page needs it."""

    def __init__(self, first: bool) -> None:
        self.first = first

    def __call__(self, fig: go.Figure, div_id: str, caption: str) -> str:
        out = _chart_section(fig, div_id, caption, first=self.first)
        self.first = False
        return out


def _review_html(doc: dict[str, Any], charts: _Charts) -> str:
    risk = doc.get("scaling_risk") or {}
    parts = [
        '<h2 id="review">Architecture review</h2>',
        f'<p class="caption">The measured baseline month, {money(doc.get("baseline_monthly_cost_usd"), 0)} fully '
        "loaded, pushed through the scenario cost model: what one unit costs as traffic grows, which layer takes "
        "over, what breaks first, and which changes save the most.</p>",
        f'<div class="tables stack-tables">{_unit_costs_table(doc.get("unit_costs") or [])}</div>',
        _dominates_sentence(risk),
    ]
    if risk.get("layers"):
        parts.append(
            charts(
                scaling_share_figure(risk["layers"]),
                "chart-scaling-risk",
                "Each bar is the whole monthly cost split by layer: the upper bar today, the lower bar with ten "
                "times the traffic. Layers that do not grow with traffic shrink as a share; the ones that do take "
                "over.",
            )
        )
    parts.append(f'<div class="tables stack-tables">{_scaling_table(risk)}</div>')
    parts.append(f'<div class="tables stack-tables">{_stress_table(doc.get("gpu_stress"))}</div>')
    curve = doc.get("gpu_cost_curve")
    if curve and curve.get("loads"):
        parts.append(
            charts(
                gpu_cost_curve_figure(curve),
                "chart-gpu-cost-curve",
                "The capacity planner re-run at each traffic multiple: the line is the hourly cost of the cheapest "
                "configuration that meets every SLO at that traffic (hover a point for which one). In the red "
                "band no configuration in the plan's search space meets the SLOs: the pool needs a bigger search "
                "space (more replicas, other GPUs) before traffic gets there.",
            )
        )
    parts.append(
        '<div class="tables stack-tables">'
        + _marginal_table(doc.get("marginal_tenant") or {})
        + _break_even_table(doc.get("break_even") or [])
        + _levers_table(doc.get("levers") or [])
        + "</div>"
    )
    notes = "".join(f'<p class="table-caption">{_e(n)}</p>' for n in doc.get("notes") or [])
    if notes:
        parts.append(f'<div class="table-caption" id="review-notes">{notes}</div>')
    return "".join(parts)


def review_sections_html(review_doc: dict[str, Any], *, first_chart: bool) -> str:
    """Return the review's HTML: unit costs, scaling risk (table and chart), GPU stress, one more tenant,
    break-even and levers. ``first_chart``: inline plotly.js in its first chart."""
    return _review_html(review_doc, _Charts(first_chart))


def _scenarios_html(doc: dict[str, Any], charts: _Charts) -> str:
    base = doc.get("baseline") or {}
    tornado = doc.get("tornado") or {}
    replanned = " The GPU pool is re-planned at each load." if doc.get("capacity_replanned") else ""
    parts = [
        f'<p class="caption" id="scenarios-baseline"><strong>Baseline month ({_e(window_text(base.get("window")))}): '
        f"{money(base.get('monthly_cost_usd'), 0)}</strong>, {money(base.get('cost_per_request_usd'), 4)} per "
        f"request, {money(base.get('cost_per_successful_outcome_usd'), 4)} per successful outcome. Scenarios "
        f"{months_ahead(doc.get('horizon_months'))}, each from {amount(doc.get('samples'))} simulated "
        f"months.{replanned}</p>",
        charts(
            scenario_figure(doc),
            "chart-scenarios",
            "Each bar is one month: the measured baseline first, then each scenario's median (P50) month, split "
            "by layer. The black whisker spans P10 to P90 of the scenario's total (eight simulated months in ten "
            "fall inside) and the white dot is the median total; the layers' medians need not add up to it "
            "exactly.",
        ),
        f'<div class="tables stack-tables">{scenarios_table_html(doc)}</div>',
    ]
    if tornado_bars(doc):
        parts.append(
            charts(
                tornado_figure(doc),
                "chart-tornado",
                "The vertical line is the cost per successful outcome of scenario "
                f"“{_e(name_or_dash(tornado.get('scenario')))}” "
                f"with every driver at its median ({money(tornado.get('center_usd'), 4)}). Each row moves one "
                "driver alone, to its low (P10, blue) and its high (P90, red) value, the label at the bar's end; "
                "the longer the bars, the more that driver matters. Largest swing on top.",
            )
        )
    notes = "".join(f'<p class="table-caption">{_e(n)}</p>' for n in doc.get("notes") or [])
    if notes:
        parts.append(f'<div class="table-caption" id="scenarios-notes">{notes}</div>')
    return "".join(parts)


def outlook_html(
    *,
    forecast_fig: go.Figure | None = None,
    scenarios_doc: dict[str, Any] | None = None,
    review_doc: dict[str, Any] | None = None,
    first_chart: bool,
) -> str:
    """Return one "What will it cost?" section: forecast fan chart, scenarios, tornado, then the review.

    ``first_chart``: whether this section's first chart must inline plotly.js (only a page's first chart does).
    A section with no chart at all (a review with no layers and no GPU curve) inlines nothing.
    """
    charts = _Charts(first_chart)
    parts = ['<h2 id="outlook">What will it cost?</h2>']
    if forecast_fig is not None:
        parts.append(
            charts(
                forecast_fig,
                "chart-forecast",
                "The dark line is the daily cost so far; the dashed line is the forecast and the shaded bands hold "
                "80% and 95% of the simulated futures. The diamond marks the last day of the month; the label at "
                "the top gives the projected month-end total.",
            )
        )
    if scenarios_doc is not None:
        parts.append(_scenarios_html(scenarios_doc, charts))
    if review_doc is not None:
        parts.append(_review_html(review_doc, charts))
    if len(parts) == 1:
        parts.append('<p class="caption">No forecast, scenarios or review to show.</p>')
    return '<section class="outlook">' + "".join(parts) + "</section>"


def render_outlook_page(title: str, **sections: Any) -> str:
    """The outlook as one self-contained HTML page (plotly.js inlined once)."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body><div class="container">
<header><h1>{html.escape(title)}</h1></header>
{outlook_html(first_chart=True, **sections)}
<footer><p>Method, drivers and formulas: docs/review.md.</p></footer>
</div></body></html>
"""


def write_outlook_page(
    path: Path | str,
    title: str,
    *,
    forecast_fig: go.Figure | None = None,
    scenarios_doc: dict[str, Any] | None = None,
    review_doc: dict[str, Any] | None = None,
) -> Path:
    """Write the outlook as a standalone offline page and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        render_outlook_page(title, forecast_fig=forecast_fig, scenarios_doc=scenarios_doc, review_doc=review_doc),
        encoding="utf-8",
    )
    return path

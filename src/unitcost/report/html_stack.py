"""The HTML report's whole-stack section: daily cost by layer, unit cost per layer, fully loaded outcomes."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from unitcost.analysis.dashboard import StackView
from unitcost.config import LAYERS
from unitcost.report.html_parts import (
    PALETTE,
    _card,
    _chart_section,
    _empty,
    _label,
    _layout,
    count,
    daily_cost_figure,
    pct,
    usd,
)

NO_BILL = (
    "No bill lines in this period, so the whole stack (GPUs, storage, retrieval, networking, observability, "
    "people) is not shown: load a FOCUS export with <code>unitcost ingest focus FILE</code>."
)
LAYER_LABELS = {
    "model_api": "Model APIs (tokens)",
    "gpu_compute": "GPU compute",
    "storage": "Storage",
    "retrieval": "Retrieval (vector search)",
    "networking": "Networking",
    "orchestration": "Orchestration",
    "observability": "Observability",
    "people": "People",
    "other": "Other",
}


def fully_loaded_figure(view: StackView) -> go.Figure:
    """Grouped bars per feature: token-only and fully loaded cost per successful outcome."""
    fig = go.Figure()
    shown = [f for f in view.features if f.successful_outcomes]
    names = [_label(f.feature) for f in shown]
    for label, values, colour in (
        ("Tokens only", [f.token_cost_per_successful_outcome_usd for f in shown], PALETTE[0]),
        ("Fully loaded (whole stack)", [f.fully_loaded_per_successful_outcome_usd for f in shown], PALETTE[1]),
    ):
        fig.add_trace(
            go.Bar(
                x=names,
                y=values,
                name=label,
                marker_color=colour,
                text=[usd(v, 4) for v in values],
                textposition="outside",
                cliponaxis=False,
                hovertemplate="%{x}<br>%{fullData.name}: $%{y:,.4f} per successful outcome<extra></extra>",
            )
        )
    _layout(
        fig,
        "Cost per successful outcome by feature: tokens only vs fully loaded (USD)",
        "USD per successful outcome",
        legend_title="",
        barmode="group",
        bargap=0.3,
    )
    fig.update_yaxes(tickprefix="$", tickformat=",.2f")
    fig.update_xaxes(title_text="Feature", type="category")
    if not shown:
        _empty(fig)
    return fig


def layer_table_html(view: StackView, caption: str = "") -> str:
    """Return the unit cost of each layer as an HTML table, with ``caption`` (HTML) under it."""
    body = []
    for layer in view.layers:
        unit = (
            f"{usd(layer.unit_cost_usd, 4)} per {html.escape(layer.unit)}" if layer.unit_cost_usd is not None else "—"
        )
        body.append(
            f'<tr><td class="key">{html.escape(LAYER_LABELS.get(layer.layer, layer.layer))}</td>'
            f"<td>{usd(layer.cost_usd)}</td><td>{pct(layer.share)}</td><td>{unit}</td>"
            f'<td class="basis">{html.escape(layer.basis)}</td></tr>'
        )
    body.append(
        f'<tr class="total"><td class="key">Total</td><td>{usd(view.total_usd)}</td><td>{pct(1.0)}</td>'
        "<td></td><td></td></tr>"
    )
    head = "".join(f"<th>{h}</th>" for h in ("Layer", "Cost", "Share of stack", "Unit cost"))
    head += '<th class="basis">How it was allocated</th>'
    return (
        '<div class="table-block" id="table-layer-unit-costs"><h3>Unit cost by layer</h3>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f'<p class="caption table-caption">{caption}</p></div>'
    )


def fully_loaded_table_html(view: StackView) -> str:
    """Return, per feature, token-only and fully loaded cost per successful outcome."""
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Feature",
            "Successful outcomes",
            "Token cost",
            "Fully loaded cost",
            "Token cost / successful outcome",
            "Fully loaded / successful outcome",
            "Fully loaded ÷ token-only",
        )
    )
    body = [
        f'<tr><td class="key">{html.escape(_label(f.feature))}</td><td>{count(f.successful_outcomes)}</td>'
        f"<td>{usd(f.token_cost_usd)}</td><td>{usd(f.stack_cost_usd)}</td>"
        f"<td>{usd(f.token_cost_per_successful_outcome_usd, 4)}</td>"
        f"<td>{usd(f.fully_loaded_per_successful_outcome_usd, 4)}</td>"
        f"<td>{'—' if f.loaded_to_token_ratio is None else f'{f.loaded_to_token_ratio:.1f}×'}</td></tr>"
        for f in view.features
    ]
    return (
        '<div class="table-block" id="table-fully-loaded"><h3>Fully loaded cost per successful outcome by feature</h3>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def stack_html(view: StackView, *, first_chart: bool) -> str:
    """Return the whole-stack section: cards, daily cost by layer, unit cost per layer, cost per outcome."""
    heading = '<h2 id="stack">The whole stack: tokens, GPUs, infrastructure and people</h2>'
    if not view.has_bill or view.stack is None:
        line = html.escape(view.note) if view.note else NO_BILL
        return f'{heading}<p class="caption stack-missing" id="stack-no-bill">{line}</p>'
    intro = (
        f"Fully loaded cost {usd(view.total_usd)}; the token cost the telemetry shows is {pct(view.token_share)} "
        "of it. Every layer is allocated to features: tagged bill lines directly, shared lines by each layer's "
        "driver, token invoices by each provider's token cost."
    )
    unallocated = (
        '<section class="cards">'
        + _card(
            "Unallocated",
            usd(view.unallocated_usd),
            "Cost of layers with nothing to split it by in this period (e.g. no usage); in the total",
            card_id="stack-unallocated",
            alert=True,
        )
        + "</section>"
        if view.unallocated_usd
        else ""
    )
    layers = [layer for layer in LAYERS if layer in {r.layer for r in view.layers}]
    daily = _chart_section(
        daily_cost_figure(
            view.daily_by_layer, list(layers), "Daily cost by layer (USD, stacked)", "Layer", labels=LAYER_LABELS
        ),
        "chart-daily-cost-by-layer",
        "Each bar is one day (UTC) of the whole stack: the bill's lines by layer (GPU instances by the hour, "
        "services by the day), the token cost of providers that sent no bill, and people time on the days it "
        "was logged.",
        first=first_chart,
    )
    loaded = _chart_section(
        fully_loaded_figure(view),
        "chart-fully-loaded-per-outcome",
        "What one successful outcome costs when every layer is counted (right bar of each pair), next to "
        "the tokens alone (left). Fully loaded: the feature's share of the stack (tagged lines, shared lines "
        "split by each layer's driver, people time) / its successful outcomes.",
        first=False,
    )
    caption = (
        "Unit cost: model APIs per 1,000 tokens (input + output), GPU compute per GPU-hour the "
        f"requests used ({view.gpu_hours_used:,.1f} GPU-hours; idle hours are in the cost), every other layer per "
        "1,000 requests. <em>bill: tag</em>: lines tagged with a feature; <em>bill: &lt;driver&gt;</em>: shared "
        "lines split by that driver; <em>telemetry</em>: token cost of providers with no bill lines."
    )
    return (
        f'{heading}<p class="caption">{intro}</p>{unallocated}{daily}'
        f'<div class="tables stack-tables">{layer_table_html(view, caption)}</div>{loaded}'
        f'<div class="tables stack-tables">{fully_loaded_table_html(view)}</div>'
    )

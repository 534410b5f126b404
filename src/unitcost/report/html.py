"""The offline HTML report: headline cards, plotly charts and breakdown tables, no computation.

Every number comes from the :class:`~unitcost.analysis.dashboard.Dashboard`; this module only
formats and draws it. The file embeds plotly.js, so it opens without a network.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
import pyarrow as pa
from plotly.subplots import make_subplots

from unitcost.analysis.dashboard import Dashboard
from unitcost.analysis.economics import BreakdownRow
from unitcost.report.html_alerts import alerts_html
from unitcost.report.html_parts import (
    PALETTE,
    _card,
    _chart_section,
    _date_axis,
    _empty,
    _keys_in_order,
    _label,
    _layout,
    _series_by_key,
    _unpriced_keys,
    colour_map,
    count,
    daily_cost_figure,
    pct,
    period_text,
    usd,
)
from unitcost.report.html_stack import LAYER_LABELS, NO_BILL, stack_html

__all__ = ["LAYER_LABELS", "NO_BILL", "render_html", "tenants_for_80_percent", "usd", "write_html"]

DEFAULT_TITLE = "unitcost — what your AI costs"
TOKENS_CHART_HEIGHT_PX = 560
PARETO_MAX_BARS = 40
TENANT_TABLE_ROWS = 15
WASTE_DEFINITION = (
    "Cost of units of work that did not succeed, plus failed attempts that had to be retried "
    "inside units that did succeed."
)
PRICES_CREDIT = "Token prices: genai-prices (pydantic/genai-prices) + your overrides"


def cost_per_outcome_figure(series: pa.Table, order: list[str | None]) -> go.Figure:
    """Lines of daily cost per successful outcome, one per feature."""
    fig = go.Figure()
    colours = colour_map(order)
    by_key = _series_by_key(series, ["cost_per_successful_outcome_usd"])
    for key in order:
        if key not in by_key:
            continue
        fig.add_trace(
            go.Scatter(
                x=by_key[key]["period"],
                y=by_key[key]["cost_per_successful_outcome_usd"],
                name=_label(key),
                mode="lines+markers",
                line={"color": colours[key], "width": 2.5},
                connectgaps=False,
                hovertemplate="%{fullData.name}<br>%{x}<br>$%{y:,.4f} per successful outcome<extra></extra>",
            )
        )
    _layout(
        fig,
        "Token cost per successful outcome by feature (USD per successful outcome, daily)",
        "USD per successful outcome",
        legend_title="Feature",
    )
    fig.update_yaxes(tickprefix="$", tickformat=",.4~f")
    _date_axis(fig, series)
    if not by_key:
        _empty(fig)
    return fig


def tenants_for_80_percent(tenant_pareto: pa.Table) -> int | None:
    """Return how many of the costliest tenants reach 80% of cost (read off ``cumulative_share``).

    >>> tenants_for_80_percent(pa.table({"cumulative_share": [0.5, 0.79, 0.9, 1.0]}))
    3
    """
    for rank, share in enumerate(tenant_pareto.column("cumulative_share").to_pylist(), start=1):
        if share is not None and share >= 0.8 - 1e-9:
            return rank
    return None


def pareto_figure(tenant_pareto: pa.Table) -> go.Figure:
    """Bars of cost per tenant (costliest first) with the cumulative share on a 0-100% axis."""
    shown = tenant_pareto.slice(0, PARETO_MAX_BARS)
    keys = [_label(k) for k in shown.column("key").to_pylist()] if shown.num_rows else []
    fig = go.Figure()
    if shown.num_rows:
        fig.add_trace(
            go.Bar(
                x=keys,
                y=shown.column("cost_usd").to_pylist(),
                customdata=shown.column("share").to_pylist(),
                name="Cost per tenant",
                marker_color=PALETTE[0],
                hovertemplate="%{x}<br>$%{y:,.2f} (%{customdata:.1%} of cost)<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=keys,
                y=shown.column("cumulative_share").to_pylist(),
                customdata=shown.column("rank").to_pylist(),
                name="Cumulative share of cost",
                mode="lines+markers",
                yaxis="y2",
                line={"color": PALETTE[1], "width": 2.5},
                hovertemplate="Top %{customdata} tenants: %{y:.1%} of cost<extra></extra>",
            )
        )
    title = "Token cost by tenant, costliest first (USD) and cumulative share (%)"
    if tenant_pareto.num_rows > PARETO_MAX_BARS:
        title += f" — top {PARETO_MAX_BARS} of {tenant_pareto.num_rows:,}"
    _layout(
        fig,
        title,
        "Cost (USD)",
        yaxis2={
            "title": {"text": "Cumulative share of cost"},
            "overlaying": "y",
            "side": "right",
            "range": [0, 1.02],
            "tickformat": ".0%",
            "tickvals": [0, 0.2, 0.4, 0.6, 0.8, 1.0],
            "showgrid": False,
        },
        showlegend=True,
        legend={
            "orientation": "h",
            "x": 0.0,
            "y": 1.0,
            "yanchor": "bottom",
            "bgcolor": "rgba(255,255,255,0)",
        },
    )
    fig.update_layout(margin={"r": 80, "t": 90, "b": 110})
    fig.update_layout(yaxis={"tickprefix": "$", "tickformat": ",.2f"})
    fig.update_xaxes(
        title_text="Tenant (sorted by cost)",
        tickangle=-40 if shown.num_rows <= 20 else -70,
        tickfont={"size": 12 if shown.num_rows <= 20 else 11},
        type="category",
    )
    if shown.num_rows:
        fig.add_hline(y=0.8, yref="y2", line={"dash": "dot", "color": "#9ca3af", "width": 1})
    else:
        _empty(fig)
    return fig


def tokens_per_request_figure(series: pa.Table, order: list[str | None]) -> go.Figure:
    """Daily input (top) and output (bottom) tokens per request, one line per prompt version."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.58, 0.42],
        subplot_titles=("Input tokens per request", "Output tokens per request"),
    )
    colours = colour_map(order)
    by_key = _series_by_key(series, ["input_tokens_per_request", "output_tokens_per_request"])
    for key in order:
        if key not in by_key:
            continue
        for row, column, kind, dash in (
            (1, "input_tokens_per_request", "input", "solid"),
            (2, "output_tokens_per_request", "output", "dash"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=by_key[key]["period"],
                    y=by_key[key][column],
                    name=_label(key),
                    legendgroup=_label(key),
                    showlegend=row == 1,
                    mode="lines+markers",
                    line={"color": colours[key], "width": 2.5, "dash": dash},
                    hovertemplate=f"%{{fullData.name}}<br>%{{x}}<br>%{{y:,.0f}} {kind} tokens per request"
                    "<extra></extra>",
                ),
                row=row,
                col=1,
            )
    _layout(
        fig,
        "Tokens per request by prompt version (daily)",
        "Input tokens / request",
        legend_title="Prompt version",
        height=TOKENS_CHART_HEIGHT_PX,
    )
    fig.update_yaxes(tickformat=",.0f", rangemode="tozero", gridcolor="#e6e9ef")
    fig.update_yaxes(title_text="Output tokens / request", row=2, col=1)
    fig.update_annotations(font={"size": 13}, x=0.0, xanchor="left")
    _date_axis(fig, series)
    fig.update_xaxes(title_text=None, row=1, col=1)
    if not by_key:
        _empty(fig)
    return fig


def headline_html(dashboard: Dashboard) -> str:
    """Return the headline cards; with a bill or people time, the total is fully loaded and token figures say so."""
    r = dashboard.report
    loaded = dashboard.fully_loaded
    waste_share = r.waste_usd / r.token_cost_usd if r.token_cost_usd else None
    token_share = r.token_cost_usd / r.total_cost_usd if r.total_cost_usd else None
    unpriced_note = (
        "".join(f"<div>{html.escape(n)}</div>" for n in dashboard.notes)
        if r.unpriced_requests
        else "Every request has a token price."
    )
    token = "Token cost" if loaded else "Cost"
    cards = [
        _card(
            "Total cost",
            usd(r.total_cost_usd),
            f"{html.escape(r.currency)}, fully loaded: bill lines, people time and token cost of providers with no "
            "bill (the whole stack, below)"
            if loaded
            else f"{html.escape(r.currency)}, priced requests only",
            card_id="total-cost",
        ),
    ]
    if loaded:
        cards.append(
            _card(
                "Token cost",
                usd(r.token_cost_usd),
                f"<strong>{pct(token_share)} of the total.</strong> Priced from telemetry, priced requests only",
                card_id="token-cost",
            )
        )
    cards += [
        _card("Requests", count(r.requests), "Model calls in the period", card_id="requests"),
        _card(
            f"{token} per request",
            usd(r.cost_per_request_usd, 4),
            f"{token} / priced requests",
            card_id="cost-per-request",
        ),
        _card(
            "Successful outcomes",
            count(r.successful_outcomes),
            f"of {count(r.units_of_work)} units of work (a trace, or a lone request)",
            card_id="successful-outcomes",
        ),
        _card(
            f"{token} per successful outcome",
            usd(r.cost_per_successful_outcome_usd, 4),
            f"All {token.lower()}, failures and retries included, / successful outcomes",
            card_id="cost-per-successful-outcome",
        ),
    ]
    if loaded:
        cards.append(
            _card(
                "Fully loaded cost per successful outcome",
                usd(r.fully_loaded_cost_per_successful_outcome_usd, 4),
                "Total cost, every layer of the stack, / successful outcomes",
                card_id="fully-loaded-per-outcome",
            )
        )
    cards += [
        _card(
            "Waste",
            usd(r.waste_usd),
            (f"<strong>{pct(waste_share)} of {token.lower()}.</strong> " if waste_share is not None else "")
            + html.escape(WASTE_DEFINITION),
            card_id="waste",
        ),
        _card(
            "Cached share of input tokens",
            pct(r.cached_share),
            "Input tokens read from the provider's prompt cache (billed at a discount)",
            card_id="cached-share",
        ),
        _card(
            "Unpriced requests",
            count(r.unpriced_requests),
            unpriced_note,
            card_id="unpriced-requests",
            alert=r.unpriced_requests > 0,
        ),
    ]
    return '<section class="cards">' + "".join(cards) + "</section>"


BREAKDOWN_TABLES: tuple[tuple[str, str, int | None], ...] = (
    ("feature", "Feature", None),
    ("tenant", "Tenant", TENANT_TABLE_ROWS),
    ("model", "Model", None),
    ("workflow", "Workflow", None),
    ("release", "Release", None),
    ("prompt_version", "Prompt version", None),
)


def breakdown_html(dimension: str, heading: str, rows: Sequence[BreakdownRow], total: float, top: int | None) -> str:
    """Return one breakdown as a plain HTML table."""
    shown = list(rows[:top]) if top else list(rows)
    title = f"Cost by {heading.lower()}"
    if top and len(rows) > top:
        title += f" (top {top} of {len(rows):,})"
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            html.escape(heading),
            "Cost",
            "Share of cost",
            "Requests",
            "Successful outcomes",
            "Cost / request",
            "Cost / successful outcome",
            "Waste",
        )
    )
    body = []
    for row in shown:
        flag = (
            f' <span class="badge" title="requests with no token price">{row.unpriced_requests:,} unpriced</span>'
            if row.unpriced_requests
            else ""
        )
        no_price = row.requests > 0 and row.unpriced_requests == row.requests
        cells = (
            usd(row.cost_usd),
            pct(row.cost_usd / total if total else None),
            count(row.requests),
            count(row.successful_outcomes),
            usd(row.cost_per_request_usd, 4),
            "—" if no_price else usd(row.cost_per_successful_outcome_usd, 4),
            usd(row.waste_usd),
        )
        body.append(
            f'<tr><td class="key">{html.escape(_label(row.key))}{flag}</td>'
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    if not body:
        body.append('<tr><td class="key" colspan="8">No data</td></tr>')
    return (
        f'<div class="table-block" id="table-{dimension.replace("_", "-")}"><h3>{html.escape(title)}</h3>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


STYLE = """
:root { --fg:#111827; --muted:#6b7280; --bg:#f5f6f8; --card:#ffffff; --line:#e5e7eb; --red:#b91c1c; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 15px; line-height: 1.45; }
.container { max-width: 1200px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .period { color: var(--muted); margin: 0 0 20px; }
.cards { display:grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 14px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
.card .label { color:var(--muted); font-size:13px; text-transform:uppercase; letter-spacing:.03em; }
.card .value { font-size:24px; font-weight:650; margin:4px 0; font-variant-numeric: tabular-nums; }
.card .note { color:var(--muted); font-size:13px; }
.card.alert { border-color:#fca5a5; background:#fef2f2; }
.card.alert .value, .card.alert .note { color:var(--red); }
section.chart { background:var(--card); border:1px solid var(--line); border-radius:10px;
  margin-top:22px; padding:10px 14px 14px; }
section.chart p.caption { color:var(--muted); margin:6px 4px 0; font-size:14px; }
h2 { font-size:20px; margin:34px 0 8px; }
.tables { display:grid; grid-template-columns: 1fr; gap: 18px; }
.table-block { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 16px;
  overflow-x:auto; }
.table-block h3 { margin:4px 0 10px; font-size:16px; }
table { border-collapse:collapse; width:100%; font-variant-numeric: tabular-nums; font-size:14px; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th { color:var(--muted); font-weight:600; font-size:13px; white-space:normal; vertical-align:bottom; }
th:first-child, th.key, td.key { text-align:left; }
td.key { white-space:normal; word-break:break-word; }
tbody tr:hover { background:#f9fafb; }
.badge { color:var(--red); background:#fef2f2; border:1px solid #fca5a5; border-radius:6px;
  font-size:11px; padding:0 5px; margin-left:6px; white-space:nowrap; display:inline-block; }
footer { margin-top:36px; color:var(--muted); font-size:13px; border-top:1px solid var(--line);
  padding-top:12px; }
footer .notes { color:var(--red); }
td.basis, th.basis { white-space:normal; text-align:left; padding-left:24px; }
td.basis { color:var(--muted); }
p.table-caption { margin:10px 2px 2px; color:var(--muted); font-size:13px; }
#table-fully-loaded td.key { white-space:nowrap; }
tr.total td { font-weight:650; border-top:2px solid var(--line); }
.stack-tables { margin-top:18px; }
p.stack-missing { background:var(--card); border:1px dashed var(--line); border-radius:10px; padding:12px 16px; }
"""


def render_html(dashboard: Dashboard, *, title: str = DEFAULT_TITLE, extra_html: str = "") -> str:
    """Return the whole report as one self-contained HTML document."""
    report = dashboard.report
    feature_order = _keys_in_order(report.breakdown.get("feature", []), dashboard.daily_by_feature)
    model_order = _keys_in_order(report.breakdown.get("model", []), dashboard.daily_by_model)
    prompt_order = _keys_in_order(report.breakdown.get("prompt_version", []), dashboard.daily_by_prompt_version)
    top_tenants = tenants_for_80_percent(dashboard.tenant_pareto)
    n_tenants = dashboard.tenant_pareto.num_rows
    pareto_caption = (
        (
            f"<strong>{top_tenants:,} of {n_tenants:,} tenants make 80% of token cost.</strong> "
            if top_tenants is not None
            else ""
        )
        + "Bars: each tenant's cost, costliest first (left axis). Line: share of total cost covered by the "
        "tenants up to that bar (right axis); the dotted line marks 80%."
    )
    charts = [
        (
            daily_cost_figure(
                dashboard.daily_by_feature, feature_order, "Daily token cost by feature (USD, stacked)", "Feature"
            ),
            "chart-daily-cost-by-feature",
            "Each bar is one day (UTC); its height is that day's token cost and the colours split it by product "
            "feature. Requests without a token price are not counted.",
        ),
        (
            daily_cost_figure(
                dashboard.daily_by_model,
                model_order,
                "Daily token cost by model (USD, stacked)",
                "Model",
                _unpriced_keys(report.breakdown.get("model", [])),
            ),
            "chart-daily-cost-by-model",
            "The same daily cost, split by the model that served the requests. A model marked "
            "“no price” has no token price yet, so its requests add nothing here.",
        ),
        (
            cost_per_outcome_figure(dashboard.daily_by_feature, feature_order),
            "chart-cost-per-outcome",
            "What one successful outcome (e.g. a resolved ticket) costs each day in tokens: all the feature's "
            "token cost, failures and retries included, divided by its units of work that succeeded. A gap means "
            "no success that day.",
        ),
        (pareto_figure(dashboard.tenant_pareto), "chart-tenant-pareto", pareto_caption),
        (
            tokens_per_request_figure(dashboard.daily_by_prompt_version, prompt_order),
            "chart-tokens-per-request",
            "Average tokens sent to the model (input, top) and generated by it (output, bottom) per "
            "request, by prompt template version. A jump after a prompt change shows up here before it "
            "shows up on the bill.",
        ),
    ]
    stack_charts = dashboard.stack.has_bill and dashboard.stack.stack is not None
    chart_html = stack_html(dashboard.stack, first_chart=True)
    if stack_charts:
        chart_html += '<h2 id="tokens">Token cost in detail</h2>'
    chart_html += "".join(
        _chart_section(fig, div_id, caption, first=i == 0 and not stack_charts)
        for i, (fig, div_id, caption) in enumerate(charts)
    )
    tables = "".join(
        breakdown_html(dim, heading, report.breakdown.get(dim, []), report.token_cost_usd, top)
        for dim, heading, top in BREAKDOWN_TABLES
    )
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in dashboard.notes)
    footer_notes = f'<div class="notes">{notes}</div>' if notes else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<div class="container">
<header>
<h1>{html.escape(title)}</h1>
<p class="period" id="period">{html.escape(period_text(report, dashboard.daily_by_feature))}</p>
</header>
{headline_html(dashboard)}
{alerts_html(dashboard.alerts)}
{chart_html}
{extra_html}
<h2>Breakdowns</h2>
<p class="caption">Cost is token cost, priced from telemetry; share of cost is each row's cost over the
total token cost. Cost per request divides by priced
requests only. Successful outcomes: units of work that succeeded, each credited to the key of its last
request (the call that produced the outcome), so they add up to the total. Waste: {html.escape(WASTE_DEFINITION)}</p>
<div class="tables">{tables}</div>
<footer>
<p>{html.escape(PRICES_CREDIT)}</p>
{footer_notes}
</footer>
</div>
</body>
</html>
"""


def write_html(dashboard: Dashboard, path: Path, *, title: str = DEFAULT_TITLE, extra_html: str = "") -> Path:
    """Write the report as one offline HTML file and return its path (``extra_html``: sections placed before
    the breakdown tables, e.g. the forecast, scenarios and review)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(dashboard, title=title, extra_html=extra_html), encoding="utf-8")
    return path

"""Rendering of ``unitcost forecast``: terminal tables (rich) and a fan chart per key (plotly, offline HTML)."""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go
from rich.console import Console
from rich.table import Table

from unitcost.analysis.forecast import (
    BACKTEST_MODELS,
    BacktestResult,
    ForecastResult,
    KeyForecast,
    MonthForecast,
    Score,
)
from unitcost.report.html import STYLE
from unitcost.report.html_parts import PALETTE, _chart_section, _layout, usd

MODEL_WORDS = {
    "main": "forecast (its own model)",
    "seasonal_naive": "seasonal naive (last week repeated)",
    "linear_trend": "linear trend (least squares)",
}
_BAND_95 = "rgba(99, 110, 250, 0.14)"
_BAND_80 = "rgba(99, 110, 250, 0.30)"


def _range(low: float | None, high: float | None, digits: int = 0) -> str:
    if low is None or high is None:
        return "no interval"
    return f"{usd(low, digits)} – {usd(high, digits)}"


def _money(value: float) -> str:
    return usd(value, 2 if abs(value) < 100 else 0)


def _month_cell(m: MonthForecast) -> str:
    return f"{_money(m.forecast_usd)} [dim]({_range(m.low_95, m.high_95)})[/dim]"


def render_forecast(console: Console, result: ForecastResult) -> None:
    """Print one row per key: actual to date, month-end projection with its 80%/95% intervals, next months."""
    title = (
        f"Cost forecast by {result.scope} ({result.basis} cost, USD) as of {result.at:%Y-%m-%d %H:%M} UTC: "
        f"month-end {result.month} and next months"
    )
    t = Table(title=title, title_justify="left")
    t.add_column(result.scope if result.scope != "all" else "scope")
    t.add_column("model")
    t.add_column("actual to date", justify="right")
    t.add_column(f"month-end {result.month}", justify="right")
    t.add_column("80% interval", justify="right")
    t.add_column("95% interval", justify="right")
    months = result.keys[0].months if result.keys else []
    for m in months:
        t.add_column(f"{m.month} (95%)", justify="right")
    for k in result.keys:
        me = k.month_end
        t.add_row(
            k.key,
            k.model,
            _money(me.actual_to_date_usd),
            f"[bold]{_money(me.forecast_usd)}[/bold]",
            _range(me.low_80, me.high_80),
            _range(me.low_95, me.high_95),
            *(_month_cell(m) for m in k.months),
        )
    if len(result.keys) > 1:
        t.add_row(
            "[bold]total[/bold]",
            "",
            _money(result.actual_to_date_usd),
            f"[bold]{_money(result.month_end_usd)}[/bold]",
            "[dim]per key[/dim]",
            "[dim]per key[/dim]",
            *("" for _ in months),
        )
    console.print(t)
    for k in result.keys:
        if not k.model.startswith("ETS"):
            console.print(f"[dim]{k.key}: {k.model_reason}.[/dim]", highlight=False)
    if any(k.model.startswith("ETS") for k in result.keys):
        console.print(
            "[dim]ETS(error,trend,season): AutoETS with a weekly season, chosen by AICc (A additive, N none, "
            "Ad damped).[/dim]",
            highlight=False,
        )
    for note in result.notes:
        console.print(f"[dim]{note}[/dim]", highlight=False)
    console.print(
        f"[dim]Intervals come from {result.paths:,} simulated futures of each key; a month's interval is read from "
        "the futures' monthly totals (daily intervals do not add up). The rest of today is pro-rated. "
        "Method: docs/forecasting.md.[/dim]",
        highlight=False,
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _score_row(name: str, s: Score) -> list[str]:
    return [
        MODEL_WORDS.get(name, name),
        _pct(s.mape_pct),
        _pct(s.wape_pct),
        _pct(s.week_total_error_pct),
        _pct(s.coverage_80_pct),
        _pct(s.coverage_95_pct),
        f"{s.points:,}",
    ]


def render_backtest(console: Console, result: BacktestResult) -> None:
    """Print the pooled scores of the three models, then each key's errors and coverage."""
    t = Table(
        title=f"Backtest over the last {result.weeks} weeks ({result.scope}, {result.basis} cost): "
        "refit each week, forecast the next 7 days",
        title_justify="left",
    )
    for name, justify in (
        ("model", "left"),
        ("MAPE", "right"),
        ("WAPE", "right"),
        ("weekly total error", "right"),
        ("in 80% interval", "right"),
        ("in 95% interval", "right"),
        ("days", "right"),
    ):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name in BACKTEST_MODELS:
        t.add_row(*_score_row(name, result.overall[name]))
    console.print(t)
    k = Table(title="By key (WAPE; coverage of the forecast's intervals)", title_justify="left")
    k.add_column(result.scope if result.scope != "all" else "scope")
    k.add_column("weeks", justify="right")
    k.add_column("model")
    for name in BACKTEST_MODELS:
        k.add_column(name.replace("_", " "), justify="right")
    k.add_column("80% / 95%", justify="right")
    for kb in result.keys:
        main = kb.scores["main"]
        k.add_row(
            kb.key,
            str(len(kb.weeks)),
            ", ".join(sorted(set(kb.main_models))) or "—",
            *(_pct(kb.scores[name].wape_pct) for name in BACKTEST_MODELS),
            f"{_pct(main.coverage_80_pct)} / {_pct(main.coverage_95_pct)}",
        )
    console.print(k)
    for note in result.notes:
        console.print(f"[dim]{note}[/dim]", highlight=False)
    console.print(
        "[dim]MAPE skips days with no cost; WAPE = sum of absolute errors / sum of actual cost. A well calibrated "
        "forecast has about 80% and 95% of days inside its intervals.[/dim]",
        highlight=False,
    )


def _pick(result: ForecastResult, key: str | None) -> KeyForecast:
    if not result.keys:
        raise KeyError("the forecast has no keys (no cost in its history)")
    if key is None or (key == "all" and result.scope != "all"):
        return result.keys[0]
    return result.key(key)


def fan_chart_figure(result: ForecastResult, key: str | None = "all") -> go.Figure:
    """History, forecast (mean of the paths), shaded 80% and 95% bands and the month-end projection of one key.

    ``key="all"`` on a scope other than ``all`` (or None) shows the largest key.
    """
    k = _pick(result, key)
    fig = go.Figure()
    colour = PALETTE[0]
    fig.add_trace(
        go.Scatter(
            x=[d for d, _ in k.history],
            y=[c for _, c in k.history],
            mode="lines+markers",
            name="actual (complete days)",
            line={"color": "#374151"},
            marker={"size": 4},
            hovertemplate="%{x|%a %d %b}: $%{y:,.2f}<extra>actual</extra>",
        )
    )
    days = [d.day for d in k.daily]
    if k.has_interval:
        for level, fill in ((95, _BAND_95), (80, _BAND_80)):
            low = [getattr(d, f"low_{level}") for d in k.daily]
            high = [getattr(d, f"high_{level}") for d in k.daily]
            fig.add_trace(
                go.Scatter(x=days, y=high, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip")
            )
            fig.add_trace(
                go.Scatter(
                    x=days,
                    y=low,
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor=fill,
                    name=f"{level}% interval",
                    hoverinfo="skip",
                )
            )
    fig.add_trace(
        go.Scatter(
            x=days,
            y=[d.forecast_usd for d in k.daily],
            mode="lines",
            name="forecast (mean)",
            line={"color": colour, "dash": "dash"},
            hovertemplate="%{x|%a %d %b}: $%{y:,.2f}<extra>forecast</extra>",
        )
    )
    me = k.month_end
    last_day = me.last_day
    on_day = next((d.forecast_usd for d in k.daily if d.day == last_day), None)
    if on_day is not None:
        text = f"Month-end {me.month}: {usd(me.forecast_usd, 0)}"
        if me.low_95 is not None:
            text += f" (95%: {_range(me.low_95, me.high_95)})"
        fig.add_trace(
            go.Scatter(
                x=[last_day],
                y=[on_day],
                mode="markers",
                marker={"symbol": "diamond", "size": 12, "color": PALETTE[1]},
                name="month-end projection",
                hovertext=[text],
                hoverinfo="text",
            )
        )
        fig.add_vline(x=last_day.isoformat(), line={"dash": "dot", "color": "#9ca3af"})
        fig.add_annotation(x=last_day.isoformat(), y=1.0, yref="paper", text=text, showarrow=False, xanchor="right")
    name = k.key if result.scope == "all" else f"{result.scope} {k.key}"
    _layout(fig, f"Daily {result.basis} cost of {name}: history and forecast ({k.model})", "Cost per day (USD)")
    fig.update_yaxes(tickprefix="$", tickformat=",.0f")
    fig.update_xaxes(title_text="Day (UTC)", type="date", tickformat="%d %b", hoverformat="%a %d %b %Y")
    return fig


def render_forecast_html(result: ForecastResult) -> str:
    """The forecast as one self-contained HTML page: one fan chart per key."""
    sections = "".join(
        _chart_section(
            fan_chart_figure(result, k.key),
            f"chart-forecast-{i}",
            html.escape(
                f"{k.model_reason}. Month-end {k.month_end.month}: {usd(k.month_end.forecast_usd, 0)}, of which "
                f"{usd(k.month_end.actual_to_date_usd, 0)} is actual; 95% interval "
                f"{_range(k.month_end.low_95, k.month_end.high_95)}."
            ),
            first=i == 0,
        )
        for i, k in enumerate(result.keys)
    )
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in result.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>unitcost forecast — {html.escape(result.scope)}</title><style>{STYLE}</style></head>
<body><div class="container">
<header><h1>Cost forecast by {html.escape(result.scope)}</h1>
<p class="period">{html.escape(result.basis)} cost, as of {result.at:%Y-%m-%d %H:%M} UTC; shaded bands are the 80% and
95% prediction intervals of each day.</p></header>
{sections}
<footer>{notes}<p>Method: docs/forecasting.md.</p></footer>
</div></body></html>
"""


def write_forecast_html(result: ForecastResult, path: Path) -> Path:
    """Write the forecast page and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_forecast_html(result), encoding="utf-8")
    return path

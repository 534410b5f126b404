"""Building blocks of the HTML report: number formats, colours, chart layout, cards and chart sections."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence

import plotly.graph_objects as go
import plotly.io as pio
import pyarrow as pa
from plotly.colors import qualitative

from unitcost.analysis.economics import BreakdownRow, CostReport

PALETTE: tuple[str, ...] = tuple(qualitative.Plotly) + tuple(qualitative.D3)
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
CHART_HEIGHT_PX = 420
DAILY_TICKS_UP_TO = 16
DAY_MS = 86_400_000
NOT_SET = "(not set)"


def usd(value: float | None, digits: int = 2) -> str:
    """Format dollars with thousands separators; None is an em dash.

    >>> usd(1234.5), usd(0.012345, 4), usd(0.00001, 4), usd(0.0), usd(None)
    ('$1,234.50', '$0.0123', '<$0.0001', '$0.00', '—')
    """
    if value is None:
        return "—"
    smallest = 10.0**-digits
    if 0 < value < smallest / 2:
        return f"<${smallest:.{digits}f}"
    return f"${value:,.{digits}f}"


def pct(value: float | None) -> str:
    """Format a 0-1 share as a percentage with one decimal.

    >>> pct(0.4567), pct(0.0001), pct(None)
    ('45.7%', '<0.1%', '—')
    """
    if value is None:
        return "—"
    if 0 < value < 0.0005:
        return "<0.1%"
    return f"{value * 100:.1f}%"


def count(value: int | None) -> str:
    """Format a count with thousands separators.

    >>> count(1234567)
    '1,234,567'
    """
    return "—" if value is None else f"{value:,}"


def _label(key: str | None) -> str:
    return NOT_SET if key is None else str(key)


def _unpriced_keys(rows: Sequence[BreakdownRow]) -> set[str | None]:
    """Keys none of whose requests has a price (their cost shows as zero)."""
    return {r.key for r in rows if r.requests and r.unpriced_requests == r.requests}


def _legend_label(key: str | None, unpriced: set[str | None]) -> str:
    return f"{_label(key)} (no price)" if key in unpriced else _label(key)


def _day(value: dt.datetime | dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


def _moment(value: dt.datetime) -> str:
    if (value.hour, value.minute, value.second) == (0, 0, 0):
        return _day(value)
    return f"{_day(value)} {value:%H:%M} UTC"


def period_text(report: CostReport, daily: pa.Table) -> str:
    """Describe the period: the requested bounds, or the data's first and last day."""
    if report.period_from is not None or report.period_to is not None:
        start = _moment(report.period_from) if report.period_from else "the first record"
        end = f"up to (not including) {_moment(report.period_to)}" if report.period_to else "the last record"
        return f"From {start} {end}"
    days = [d for d in daily.column("period").to_pylist() if d is not None] if daily.num_rows else []
    if not days:
        return "No data in this period"
    first, last = min(days), max(days)
    if first.date() == last.date():
        return f"{_day(first)} (UTC)"
    return f"{_day(first)} – {_day(last)} (UTC, whole days of data)"


def colour_map(keys: Iterable[str | None]) -> dict[str | None, str]:
    """Give each key a colour from the palette, in the order given (largest cost first).

    >>> colour_map(["a", None])[None] == PALETTE[1]
    True
    """
    out: dict[str | None, str] = {}
    for key in keys:
        if key not in out:
            out[key] = PALETTE[len(out) % len(PALETTE)]
    return out


def _keys_in_order(rows: Sequence[BreakdownRow], series: pa.Table) -> list[str | None]:
    """Keys ordered as the breakdown ranks them (by cost), then any others from the series."""
    ordered: list[str | None] = [r.key for r in rows]
    for key in series.column("key").to_pylist() if series.num_rows else []:
        if key not in ordered:
            ordered.append(key)
    return ordered


def _series_by_key(series: pa.Table, columns: Sequence[str]) -> dict[str | None, dict[str, list[object]]]:
    """Split a (period, key, ...) table into per-key column lists, keeping row order."""
    out: dict[str | None, dict[str, list[object]]] = {}
    if not series.num_rows:
        return out
    data = series.select(["period", "key", *columns]).to_pydict()
    for i, key in enumerate(data["key"]):
        bucket = out.setdefault(key, {c: [] for c in ("period", *columns)})
        for c in ("period", *columns):
            bucket[c].append(data[c][i])
    return out


def _layout(fig: go.Figure, title: str, y_title: str, *, legend_title: str = "", **kwargs: object) -> None:
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 17}},
        template="plotly_white",
        height=CHART_HEIGHT_PX,
        margin={"l": 70, "r": 30, "t": 60, "b": 60},
        legend={"title": {"text": legend_title}, "font": {"size": 12}},
        hoverlabel={"namelength": -1},
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13},
        yaxis={"title": {"text": y_title}, "rangemode": "tozero", "gridcolor": "#e6e9ef"},
    )
    fig.update_layout(**kwargs)


def _date_axis(fig: go.Figure, series: pa.Table) -> None:
    days = len(set(series.column("period").to_pylist())) if series.num_rows else 0
    fig.update_xaxes(title_text="Day (UTC)", type="date", tickformat="%d %b", hoverformat="%a %d %b %Y")
    if days <= DAILY_TICKS_UP_TO:
        fig.update_xaxes(dtick=DAY_MS)


def _empty(fig: go.Figure) -> None:
    fig.add_annotation(
        text="No data for this period",
        showarrow=False,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        font={"size": 16, "color": "#6b7280"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)


def daily_cost_figure(
    series: pa.Table,
    order: list[str | None],
    title: str,
    legend_title: str,
    unpriced: set[str | None] | None = None,
    labels: dict[str, str] | None = None,
) -> go.Figure:
    """Stacked bars of daily cost, one colour per key; keys with no price are labelled so.

    ``labels``: a display name for some keys (e.g. layers), used in the legend and hover.
    """
    fig = go.Figure()
    colours = colour_map(order)
    by_key = _series_by_key(series, ["cost_usd"])
    for key in order:
        if key not in by_key:
            continue
        fig.add_trace(
            go.Bar(
                x=by_key[key]["period"],
                y=by_key[key]["cost_usd"],
                name=(labels or {}).get(str(key), _legend_label(key, unpriced or set())),
                marker_color=colours[key],
                hovertemplate="%{fullData.name}<br>%{x}<br>$%{y:,.2f}<extra></extra>",
            )
        )
    _layout(fig, title, "Cost (USD)", legend_title=legend_title, barmode="stack", bargap=0.25)
    fig.update_yaxes(tickprefix="$", tickformat=",.2f")
    _date_axis(fig, series)
    if not by_key:
        _empty(fig)
    return fig


def _card(label: str, value: str, note: str = "", *, card_id: str, alert: bool = False) -> str:
    css = "card alert" if alert else "card"
    note_html = f'<div class="note">{note}</div>' if note else ""
    return (
        f'<div class="{css}" id="card-{card_id}"><div class="label">{html.escape(label)}</div>'
        f'<div class="value" id="headline-{card_id}">{html.escape(value)}</div>{note_html}</div>'
    )


def _chart_section(fig: go.Figure, div_id: str, caption: str, *, first: bool) -> str:
    div = pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=first,
        config=PLOTLY_CONFIG,
        div_id=div_id,
        default_width="100%",
        default_height=f"{fig.layout.height or CHART_HEIGHT_PX}px",
    )
    return f'<section class="chart">{div}<p class="caption">{caption}</p></section>'

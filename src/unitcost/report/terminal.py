"""Terminal rendering with rich: tables and headline figures, no computation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from unitcost.analysis import BreakdownRow, CostReport
from unitcost.analysis.stack import CostStack
from unitcost.config import LAYERS
from unitcost.ingest import IngestResult


def usd(value: float | None, digits: int = 2) -> str:
    """Format dollars: ``usd(1234.5)`` -> ``$1,234.50``; None -> ``—``."""
    if value is None:
        return "—"
    return f"${value:,.{digits}f}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@contextmanager
def ingest_progress(console: Console, files: int, *, enabled: bool = True) -> Iterator[Callable[[Path, int], None]]:
    """A progress bar over files with records/s; silent when disabled or not a terminal."""
    if not enabled or not console.is_terminal:
        yield lambda path, records: None
        return
    start = time.perf_counter()
    total = 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("Ingesting", total=files)

        def advance(path: Path, records: int) -> None:
            nonlocal total
            total += records
            rate = total / max(time.perf_counter() - start, 1e-9)
            bar.update(task, advance=1, description=f"Ingesting {path.name} ({rate:,.0f} records/s)")

        yield advance


def render_ingest(console: Console, results: Sequence[IngestResult]) -> None:
    """Print one line per ingested file and table, and where the problems are."""
    table = Table(title="Ingested", title_justify="left")
    for col in ("file", "format", "table", "read", "landed", "quarantined", "duplicates skipped", "ignored"):
        table.add_column(col, justify="left" if col in ("file", "format", "table") else "right")
    for r in results:
        table.add_row(
            r.source_file,
            r.format,
            r.target_table,
            f"{r.rows_read:,}",
            f"{r.rows_landed:,}",
            f"[red]{r.rows_quarantined:,}[/red]" if r.rows_quarantined else "0",
            f"{r.duplicates_skipped:,}",
            f"{r.rows_ignored:,}",
        )
    console.print(table)
    for r in results:
        if r.first_problem:
            console.print(
                f"[yellow]{r.rows_quarantined:,} row(s) quarantined; first: {r.first_problem}[/yellow]\n"
                "  See them with: unitcost quarantine"
            )


def _headline(report: CostReport) -> Table:
    grid = Table.grid(padding=(0, 3))
    grid.add_column(style="bold")
    grid.add_column(justify="right")
    waste_share = report.waste_usd / report.token_cost_usd if report.token_cost_usd else None
    loaded = _is_loaded(report)
    rows = [
        ("Total cost, fully loaded" if loaded else "Total cost", usd(report.total_cost_usd)),
    ]
    if loaded:
        rows += [
            ("  of which tokens (telemetry)", usd(report.token_cost_usd)),
            ("  by layer", ", ".join(f"{k} {usd(v)}" for k, v in sorted(report.layers.items(), key=lambda kv: -kv[1]))),
        ]
        if report.idle_usd:
            rows.append(("  idle GPU capacity", usd(report.idle_usd)))
        if report.unallocated_usd:
            rows.append(("  unallocated", usd(report.unallocated_usd)))
    rows += [
        ("Requests", f"{report.requests:,}"),
        ("Token cost per request", usd(report.cost_per_request_usd, 5)),
        ("Cost per 1K tokens", usd(report.cost_per_1k_tokens_usd, 5)),
        ("Units of work", f"{report.units_of_work:,}"),
        ("Successful outcomes", f"{report.successful_outcomes:,}"),
        ("Token cost per successful outcome", usd(report.cost_per_successful_outcome_usd, 4)),
    ]
    if loaded:
        rows.append(
            ("Fully loaded cost per successful outcome", usd(report.fully_loaded_cost_per_successful_outcome_usd, 4))
        )
    rows += [
        ("Waste (failed units + retried attempts)", f"{usd(report.waste_usd)} ({pct(waste_share)} of token cost)"),
        ("Cached share of input tokens", pct(report.cached_share)),
        ("Answered from response cache", f"{report.response_cache_hits:,}"),
    ]
    for k, v in rows:
        grid.add_row(k, v)
    return grid


def _is_loaded(report: CostReport) -> bool:
    """True when the report holds more than the token layer (a bill, labour records or GPU pools)."""
    return set(report.layers) - {"model_api"} != set() or abs(report.total_cost_usd - report.token_cost_usd) > 1e-9


def breakdown_table(
    dimension: str, rows: Sequence[BreakdownRow], total: float, top: int | None = None, loaded: bool = False
) -> Table:
    """A rich table of one breakdown, biggest cost first."""
    shown = list(rows)[:top] if top else list(rows)
    title = f"Cost by {dimension}" + (f" (top {len(shown)} of {len(rows)})" if top and len(rows) > top else "")
    t = Table(
        title=title,
        title_justify="left",
        caption="successes: units of work that succeeded, credited to the key of their last request",
        caption_justify="left",
    )
    t.add_column(dimension, no_wrap=True, overflow="ellipsis", max_width=28)
    columns = ["token cost", "share", "requests", "successes", "$/request", "$/success", "waste"]
    if loaded:
        columns += ["fully loaded", "loaded $/success"]
    for col in columns:
        t.add_column(col, justify="right", no_wrap=True)
    for r in shown:
        cells = [
            str(r.key) if r.key is not None else "(none)",
            usd(r.cost_usd),
            pct(r.cost_usd / total if total else None),
            f"{r.requests:,}",
            f"{r.successful_outcomes:,}",
            usd(r.cost_per_request_usd, 5),
            usd(r.cost_per_successful_outcome_usd, 4),
            usd(r.waste_usd),
        ]
        if loaded:
            cells += [usd(r.fully_loaded_cost_usd), usd(r.fully_loaded_cost_per_successful_outcome_usd, 4)]
        t.add_row(*cells)
    return t


def period_text(report: CostReport) -> str:
    """The period in words: the requested bounds, else the data's first and last record."""
    lo = report.period_from or report.first_ts
    if report.period_to is not None:
        hi_text = f"before {report.period_to:%Y-%m-%d %H:%M}"
    elif report.last_ts is not None:
        hi_text = f"{report.last_ts:%Y-%m-%d %H:%M}"
    else:
        hi_text = "…"
    lo_text = f"{lo:%Y-%m-%d %H:%M}" if lo is not None else "no data"
    return f"{lo_text} → {hi_text} UTC"


def render_report(console: Console, report: CostReport, top: int | None = 10) -> None:
    """Print the headline figures, the unpriced warning and every breakdown."""
    console.print(Panel(_headline(report), title=f"What your AI cost: {period_text(report)} ({report.currency})"))
    if report.unpriced_requests:
        lines = "\n".join(
            f"  {u.provider}/{u.model}: {u.requests:,} requests, {u.input_tokens:,} input and "
            f"{u.output_tokens:,} output tokens"
            for u in report.unpriced
        )
        console.print(
            Panel(
                f"{report.unpriced_requests:,} requests have no price and are NOT in the costs above:\n{lines}\n"
                "Add them under prices.overrides in unitcost.yaml.",
                title="Unpriced models",
                style="red",
            )
        )
    for dim, rows in report.breakdown.items():
        console.print(breakdown_table(dim, rows, report.token_cost_usd, top, loaded=_is_loaded(report)))


def render_stack(console: Console, stack: CostStack, top: int | None = 15) -> None:
    """The stack per key: one column per layer, biggest total first; totals and unallocated below."""
    per_key = stack.by_key()
    layers = [layer for layer in LAYERS if layer in stack.layer_totals_usd]
    ranked = sorted(per_key.items(), key=lambda kv: -sum(kv[1].values()))
    shown = ranked[:top] if top else ranked
    t = Table(title=f"Fully loaded cost by {stack.dimension} (USD)", title_justify="left")
    t.add_column(stack.dimension, no_wrap=True)
    for layer in layers:
        t.add_column(layer, justify="right")
    t.add_column("total", justify="right", style="bold")
    for key, by_layer in shown:
        cells = [usd(float(by_layer.get(layer, 0))) for layer in layers]
        t.add_row(str(key) if key is not None else "(untagged)", *cells, usd(float(sum(by_layer.values()))))
    if stack.idle_usd:
        idle = float(sum(stack.idle_usd.values()))
        t.add_row(
            "[yellow]idle GPU capacity[/yellow]",
            *[usd(idle) if layer == "gpu_compute" else "" for layer in layers],
            usd(idle),
        )
    if stack.unallocated_usd:
        t.add_row(
            "[yellow]unallocated[/yellow]",
            *[usd(float(stack.unallocated_usd.get(layer, 0))) for layer in layers],
            usd(float(sum(stack.unallocated_usd.values()))),
        )
    t.add_row(
        "[bold]total[/bold]",
        *[usd(float(stack.layer_totals_usd[layer])) for layer in layers],
        usd(float(stack.total_usd())),
    )
    console.print(t)
    if not stack.layer_totals_usd:
        console.print("Nothing to allocate: no usage or bill lines in the period.")

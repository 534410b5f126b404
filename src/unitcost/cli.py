"""The command line: thin commands that parse, call one library function, render.

Domain errors become a clear message and exit code 2 here, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from unitcost.config import setting
from unitcost.errors import UnitcostError
from unitcost.workspace import Workspace, open_workspace

app = typer.Typer(
    help="unitcost: what your AI application really costs, per request and per successful outcome.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# Piped output gets a readable width instead of rich's 80-column fallback.
layers_app = typer.Typer(help="The cost-stack layers bill lines belong to.", no_args_is_help=True)
app.add_typer(layers_app, name="layers")

console = Console(width=None if Console().is_terminal else 140)
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


class _State:
    db: str | None = None
    config: str | None = None


state = _State()


@app.callback()
def _global(
    db: Annotated[str | None, typer.Option("--db", help=f"{setting('db').help} [env {setting('db').env}]")] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", help=f"{setting('config').help} [env {setting('config').env}]"),
    ] = None,
) -> None:
    """Global options, given before the command: unitcost --db FILE report."""
    state.db = db
    state.config = config


def _workspace() -> Workspace:
    return open_workspace(state.db, state.config)


def handle_errors(fn: F) -> F:
    """Turn unitcost errors into a one-line message and exit status 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UnitcostError as e:
            err_console.print(f"[red]error:[/red] {e}", markup=True, highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _split(by: str | None) -> list[str]:
    return [b.strip() for b in by.split(",") if b.strip()] if by else []


@app.command()
@handle_errors
def ingest(
    fmt: Annotated[
        str, typer.Argument(metavar="FORMAT", help="usage, outcomes, or a source format (see `unitcost formats`).")
    ],
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Files to load (.csv, .parquet, .jsonl, .json; .gz too); a folder loads the files in it the format "
            "reads; a quoted pattern ('exports/*.json') its matches."
        ),
    ],
    strict: Annotated[bool, typer.Option(help="Fail on the first bad row instead of quarantining it.")] = False,
    quiet: Annotated[bool, typer.Option(help="Print nothing on success.")] = False,
    mapping: Annotated[
        Path | None, typer.Option(help="Column mapping YAML (the csv format: renames, constants, unit conversions).")
    ] = None,
) -> None:
    """Load files: bad rows are quarantined with file, record and reason; nothing is counted twice."""
    from unitcost.ingest import get_adapter
    from unitcost.ingest.canonical import input_files
    from unitcost.report.terminal import ingest_progress, render_ingest

    results = []
    with _workspace() as ws:
        paths = input_files(get_adapter(fmt, config=ws.config, mapping=mapping), files)
        with ingest_progress(console, len(paths), enabled=not quiet) as advance:
            for path in paths:
                file_results = ws.ingest(fmt, [path], strict=strict, mapping=mapping)
                advance(path, sum(r.rows_read + r.rows_ignored for r in file_results))
                results.extend(file_results)
    if not quiet:
        render_ingest(console, results)


@app.command()
@handle_errors
def formats() -> None:
    """List the formats `unitcost ingest` reads."""
    from rich.table import Table

    from unitcost.ingest.registry import load_adapters

    adapters = load_adapters()
    t = Table(title="Formats", title_justify="left")
    t.add_column("format")
    t.add_column("what it reads")
    for name in sorted(adapters):
        t.add_row(name, adapters[name].description)
    console.print(t)


@app.command()
@handle_errors
def sources(limit: Annotated[int, typer.Option(help="How many files to show, newest first.")] = 50) -> None:
    """List what was ingested: file, format, checksum and counts."""
    from rich.table import Table

    with _workspace() as ws:
        rows = ws.store.sql(
            "SELECT ingested_at, format, target_table, source_file, sha256, rows_read, rows_landed, "
            "rows_quarantined, duplicates_skipped, rows_ignored FROM ingest_log ORDER BY ingested_at DESC LIMIT ?",
            [limit],
        )
    t = Table(title="Ingested files", title_justify="left")
    numbers = ("read", "landed", "quarantined", "dupes", "ignored")
    for col in ("when (UTC)", "format", "table", "file", "sha256", *numbers):
        t.add_column(col, justify="right" if col in numbers else "left", no_wrap=col != "file")
    for r in rows:
        name = Path(r[3]).name
        t.add_row(f"{r[0]:%Y-%m-%d %H:%M:%S}", r[1], r[2], name, r[4][:12], *(f"{int(v or 0):,}" for v in r[5:]))
    console.print(t)


@layers_app.command("explain")
@handle_errors
def layers_explain() -> None:
    """Which rule put which bill lines in which layer, and what fell to `other`."""
    from rich.table import Table

    from unitcost.ledger.layers import explain_layers

    with _workspace() as ws:
        hits = explain_layers(ws.store, ws.config)
        column = ws.config.layers.cost_column
    t = Table(title=f"Bill lines by layer and rule ({column})", title_justify="left")
    for col in ("layer", "rule", "lines", "cost", "currency"):
        t.add_column(col, justify="right" if col in ("lines", "cost") else "left")
    for h in hits:
        style = "yellow" if h.layer == "other" else None
        t.add_row(h.layer, h.rule, f"{h.lines:,}", f"{h.cost:,.2f}", h.currency or "—", style=style)
    console.print(t)
    if not hits:
        console.print("No bill lines yet: load a FOCUS export with `unitcost ingest focus FILE`.")


@app.command()
@handle_errors
def stack(
    from_: Annotated[str | None, typer.Option("--from", help="Start: date or timestamp, UTC.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End: a date includes that whole day.")] = None,
    by: Annotated[str, typer.Option(help="tenant, feature or workflow (any dimension).")] = "tenant",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    top: Annotated[int, typer.Option(help="Keys to show in the terminal (0 = all).")] = 15,
) -> None:
    """The whole stack: the bill (and unbilled token cost) allocated to each key, layer by layer."""
    from unitcost.analysis.stack import cost_stack
    from unitcost.report.terminal import render_stack

    with _workspace() as ws:
        lo, hi = ws._range(from_, to)
        result = cost_stack(ws.store, ws.config, lo, hi, by)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    else:
        render_stack(console, result, top=top or None)


@app.command()
@handle_errors
def reconcile(
    from_: Annotated[str | None, typer.Option("--from", help="Start: date or timestamp, UTC.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End: a date includes that whole day.")] = None,
    threshold_pct: Annotated[
        float, typer.Option("--threshold-pct", min=0, help="Flag days whose gap is above this % of the bill.")
    ] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (docs/reconcile.md).")] = False,
) -> None:
    """Does our telemetry explain our bill? Token cost vs the model_api bill lines, per provider and day."""
    from rich.table import Table

    from unitcost.analysis.reconcile import reconcile as reconcile_bill
    from unitcost.report.terminal import usd

    with _workspace() as ws:
        lo, hi = ws._range(from_, to)
        result = reconcile_bill(ws.store, ws.config, lo, hi, threshold_pct)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    t = Table(title=f"Bill ({result.cost_column}) vs telemetry, by provider (USD)", title_justify="left")
    for col in ("provider", "billed", "telemetry", "gap", "gap %", "flagged"):
        t.add_column(col, justify="left" if col == "provider" else "right")
    for p in result.providers:
        t.add_row(
            p.provider + ("" if p.per_model else " (per provider)"),
            usd(p.billed_usd),
            usd(p.telemetry_usd),
            usd(p.gap_usd),
            f"{p.gap_pct:+.1f}%",
            f"{p.flagged_rows} of {p.rows}",
            style="yellow" if p.flagged_rows else None,
        )
    if result.providers:
        t.add_row(
            "[bold]total[/bold]",
            usd(result.billed_usd),
            usd(result.telemetry_usd),
            usd(result.gap_usd),
            f"{result.gap_pct:+.1f}%",
            "",
        )
    console.print(t)
    if not result.providers:
        console.print("No model_api bill lines in the period: load a FOCUS export with `unitcost ingest focus FILE`.")
    flagged = result.flagged()
    if flagged:
        f = Table(title=f"Gaps above {result.threshold_pct:g}%", title_justify="left")
        for col in ("day", "provider", "model", "billed", "telemetry", "gap", "gap %", "likely causes"):
            f.add_column(col, justify="right" if col in ("billed", "telemetry", "gap", "gap %") else "left")
        for r in flagged:
            f.add_row(
                r.day.isoformat(),
                r.provider,
                r.model or "—",
                usd(r.billed_usd),
                usd(r.telemetry_usd),
                usd(r.gap_usd),
                f"{r.gap_pct:+.1f}%",
                "; ".join(r.likely_causes) or "—",
            )
        console.print(f)
    elif result.providers:
        console.print(f"Every day is within {result.threshold_pct:g}%: the telemetry explains the bill.")
    for provider, cost in result.unbilled_providers.items():
        console.print(
            f"{provider}: {usd(cost)} from telemetry, no model_api bill lines (self-hosted or billed elsewhere)"
        )


@app.command()
@handle_errors
def report(
    from_: Annotated[str | None, typer.Option("--from", help="Start: date or timestamp, UTC.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End: a date includes that whole day.")] = None,
    by: Annotated[
        str | None, typer.Option(help="Comma-separated dimensions, e.g. tenant,feature,model.")
    ] = "feature,tenant,model",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (docs/json.md).")] = False,
    html: Annotated[Path | None, typer.Option(help="Also write the HTML report to this file.")] = None,
    top: Annotated[int, typer.Option(help="Rows per breakdown in the terminal (0 = all).")] = 10,
) -> None:
    """What did it cost? Per request, per successful outcome, by any dimension."""
    with _workspace() as ws:
        result = ws.report(from_, to, _split(by))
        if as_json:
            sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        else:
            from unitcost.report.terminal import render_report

            render_report(console, result, top=top or None)
        if html is not None:
            from unitcost.report.html import write_html

            write_html(ws.dashboard(from_, to), html)
            if not as_json:
                console.print(f"HTML report written to {html}")


@app.command()
@handle_errors
def explain(
    period: Annotated[
        str, typer.Option(help="Date, range (a..b) or shortcut: yesterday, this-week, month-to-date, ...")
    ] = "yesterday",
    baseline: Annotated[
        str, typer.Option(help="Same forms, plus same-day-last-week, previous-period, previous-month-to-date.")
    ] = "same-day-last-week",
    by: Annotated[
        str | None, typer.Option(help="Dimensions whose keys are named as contributors (comma-separated).")
    ] = None,
    at: Annotated[str | None, typer.Option(help="Reference time for shortcuts (default: the newest data).")] = None,
    basis: Annotated[
        str, typer.Option(help="auto: fully loaded cost when there is a bill; token: token cost alone.")
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (docs/json.md).")] = False,
) -> None:
    """Why did cost change? The change split exactly into drivers, with the keys behind each."""
    with _workspace() as ws:
        result = ws.explain(period, baseline, _split(by) or None, at=at, basis=basis)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    else:
        from unitcost.report.explain import render_explanation

        render_explanation(console, result)


@app.command()
@handle_errors
def watch(
    at: Annotated[str | None, typer.Option(help="Evaluate as of this time (default: the newest data).")] = None,
    since: Annotated[
        str | None, typer.Option(help="Replay: list every alert that would have fired since this date; stores nothing.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of alerts (docs/json.md).")] = False,
    deliver: Annotated[bool, typer.Option(help="Post fired and resolved alerts to the configured webhooks.")] = True,
) -> None:
    """Tell me early: budgets, spend anomalies, drift and deployment regressions, fired once and resolved."""
    from unitcost.alerts.watch import watch as run_watch
    from unitcost.periods import parse_instant

    with _workspace() as ws:
        when = parse_instant(at, "--at")[0] if at else None
        start = parse_instant(since, "--since")[0] if since else None
        result = run_watch(ws.store, ws.config, at=when, since=start, deliver=deliver)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, default=str) + "\n")
        return
    from unitcost.report.alerts import render_watch

    render_watch(console, result)


@app.command()
@handle_errors
def alerts(
    status: Annotated[str | None, typer.Option(help="Only alerts with this status: firing or resolved.")] = None,
    limit: Annotated[int, typer.Option(help="How many to show, open ones first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """The stored alerts and their life cycle (fired, updated, resolved)."""
    from unitcost.alerts.state import list_alerts

    with _workspace() as ws:
        rows = list_alerts(ws.store, status, limit)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    from unitcost.report.alerts import render_alert_rows

    render_alert_rows(console, rows)


@app.command()
@handle_errors
def quarantine(
    limit: Annotated[int, typer.Option(help="How many rows to show.")] = 20,
) -> None:
    """List the rows set aside at ingestion, with file, record, field and reason."""
    from rich.table import Table

    with _workspace() as ws:
        rows = ws.store.sql(
            "SELECT source_file, record, field, reason FROM quarantine ORDER BY quarantined_at, source_file, record "
            "LIMIT ?",
            [limit],
        )
        total = ws.quarantine_count()
    t = Table(title=f"Quarantine: {total:,} row(s)", title_justify="left")
    for col in ("file", "record", "field", "reason"):
        t.add_column(col)
    for r in rows:
        t.add_row(str(r[0]), str(r[1]), str(r[2]), str(r[3]))
    console.print(t)


@app.command()
@handle_errors
def demo(
    days: Annotated[int, typer.Option(min=7, help="Days of history to generate.")] = 30,
    requests: Annotated[int, typer.Option(min=1000, help="Number of model calls to generate.")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same company).")] = 7,
    html: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path("unitcost-report.html"),
) -> None:
    """Generate a realistic AI company, ingest it, price it and report what it costs."""
    import yaml
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from unitcost.alerts.watch import watch as run_watch
    from unitcost.config import Config, load_config
    from unitcost.demo import generate, write_parquet
    from unitcost.report.alerts import render_watch
    from unitcost.report.html import write_html
    from unitcost.report.terminal import render_ingest, render_report, render_stack

    db_path = Path(setting("db").resolve(state.db))
    _prepare_demo_db(db_path)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("Generating the demo company", total=1.0)

        def progress(stage: str, fraction: float) -> None:
            bar.update(task, description=f"Generating: {stage}", completed=fraction)

        data = generate(days=days, requests=requests, seed=seed, progress=progress)
        bar.update(task, completed=1.0, description="Generated")
    config_path = Path(state.config or setting("config").resolve())
    _write_demo_config(config_path, data.config_yaml)
    # an existing unitcost.yaml (e.g. from an older demo) may lack the bill's EUR rate or the ops roles' rates:
    # this run adds the demo's, and says so
    config = load_config(config_path)
    wanted = Config.model_validate(yaml.safe_load(data.config_yaml))
    rates = {c: r for c, r in wanted.currency_rates.items() if c not in config.currency_rates}
    roles = {k: r for k, r in wanted.people.rates.items() if k not in config.people.rates}
    if rates or roles:
        people = config.people.model_copy(update={"rates": {**config.people.rates, **roles}})
        config = config.model_copy(update={"currency_rates": {**config.currency_rates, **rates}, "people": people})
        add = [f"currency_rates: {{{', '.join(f'{c}: {r:g}' for c, r in rates.items())}}}"] if rates else []
        add += [f"people: {{rates: {{{', '.join(f'{k}: {r:g}' for k, r in roles.items())}}}}}"] if roles else []
        console.print(
            f"[yellow]{config_path} has no rate for {', '.join([*rates, *roles])}; this run uses the demo's. "
            f"Add {' and '.join(add)} to it, or later reports will stop at the EUR lines or leave hours "
            "unpriced.[/yellow]",
            markup=True,
            highlight=False,
        )
    with tempfile.TemporaryDirectory() as tmp:
        files = write_parquet(data, Path(tmp))
        with console.status("Ingesting and validating..."), open_workspace(db_path, config) as ws:
            ws.store.raw.execute("CREATE TABLE IF NOT EXISTS _unitcost_demo AS SELECT current_timestamp AS created_at")
            results = [
                *ws.ingest("usage", [files.usage]),
                *ws.ingest("outcomes", [files.outcomes]),
                *ws.ingest("focus", [files.bill]),
                *ws.ingest("ops", [files.ops]),
            ]
    render_ingest(console, [dataclasses.replace(r, source_file=Path(r.source_file).name) for r in results])
    with open_workspace(db_path, config) as ws:
        with console.status("Pricing and attributing..."):
            result = ws.report(by=["feature", "workflow", "tenant", "model", "release", "prompt_version"])
        render_report(console, result, top=10)
        with console.status("Watching: budgets, spend anomalies, drift, deployment regressions..."):
            watched = run_watch(ws.store, ws.config, deliver=False)
        regression = next((ev.start.date() for ev in data.events if ev.name == "prompt-regression"), None)
        why = None
        if regression is not None:
            try:
                why = ws.explain(regression.isoformat(), "same-day-last-week", basis="token")
            except UnitcostError:  # a short demo has no day a week before the regression
                why = None
        with console.status("Forecasting, running the scenarios and the architecture review..."):
            ahead = _demo_outlook(ws, db_path)
        with console.status("Allocating the whole stack and writing the HTML report..."):
            dashboard = ws.dashboard()  # holds cost_stack(ws.store, ws.config, by="feature")
            write_html(dashboard, html, extra_html=ahead.html)
    if dashboard.stack.stack is not None:
        render_stack(console, dashboard.stack.stack)
    else:
        console.print(f"[yellow]{dashboard.stack.note or 'No bill lines: the stack is not shown.'}[/yellow]")
    if why is not None:
        console.print(f"\n[bold]Why did {why.period.describe()} cost more than a week earlier?[/bold]")
        console.print(why.summary, highlight=False)
    console.print()
    render_watch(console, watched)
    console.print()
    for line in ahead.summary:
        console.print(line, highlight=False)
    console.print("\n[bold]Planted events[/bold] (what the analyses above should find):")
    for ev in data.events:
        console.print(f"  • {ev.description}")
    explain_hint = f"unitcost explain --period {regression} --basis token   |   " if regression else ""
    console.print(
        f"\nWorkspace: {db_path}   Config: {config_path}   HTML report: {html}\n"
        f"Next: {explain_hint}unitcost watch   |   unitcost report --by tenant --from 2026-10-20   |   "
        "unitcost stack --by tenant   |   unitcost layers explain\n"
        f"      unitcost forecast --backtest   |   unitcost scenarios {ahead.scenarios}   |   "
        f"unitcost review --plan {ahead.plan}   |   unitcost plan {ahead.plan}"
    )


@dataclasses.dataclass
class _Outlook:
    html: str
    summary: list[str]
    scenarios: str
    plan: str


def _demo_outlook(ws: Workspace, db_path: Path) -> _Outlook:
    """Forecast, scenarios and review of the demo workspace: the HTML section and a few lines of summary."""
    from unitcost.analysis.forecast import forecast_costs
    from unitcost.analysis.outlook import outlook
    from unitcost.demo_files import write_outlook_files
    from unitcost.report.forecast import fan_chart_figure
    from unitcost.report.html_outlook import outlook_html
    from unitcost.report.terminal import usd

    files = write_outlook_files(db_path.parent, db_path)
    forecast = forecast_costs(ws.store, ws.config, scope="all", months=1)
    scen, rev, extras = outlook(ws.store, ws.config, files.scenarios, files.plan)
    scen_doc, rev_doc = scen.to_json(), rev.to_json()
    rev_doc["gpu_cost_curve"] = extras.get("gpu_cost_curve")
    html = outlook_html(
        forecast_fig=fan_chart_figure(forecast), scenarios_doc=scen_doc, review_doc=rev_doc, first_chart=False
    )
    month = forecast.to_json()
    summary = ["[bold]What will it cost?[/bold]"]
    total = month["keys"][0] if month.get("keys") else None
    if total is not None and total.get("month_end"):
        end = total["month_end"]
        low, high = end.get("low_95"), end.get("high_95")
        band = f" (95%: {usd(low, 0)} - {usd(high, 0)})" if low is not None and high is not None else ""
        summary.append(f"  Month-end {end.get('month', '')}: {usd(end.get('forecast_usd'), 0)}{band}.")
    bands = {s["name"]: s["monthly_cost_usd"] for s in scen_doc["scenarios"]}
    summary.append(
        f"  In {scen_doc['horizon_months']} months, a month costs "
        + ", ".join(
            f"{name} {usd(b['p50'], 0)} (P10-P90 {usd(b['p10'], 0)}-{usd(b['p90'], 0)})" for name, b in bands.items()
        )
        + f"; today {usd(scen_doc['baseline']['monthly_cost_usd'], 0)}."
    )
    at10 = rev_doc["unit_costs"][-1]
    now = rev_doc["unit_costs"][0]
    summary.append(
        f"  At 10x traffic a successful outcome costs {usd(at10['cost_per_successful_outcome_usd'], 3)} (today "
        f"{usd(now['cost_per_successful_outcome_usd'], 3)}); {rev_doc['scaling_risk']['dominates_first']} "
        "dominates the bill first."
    )
    if rev_doc["levers"]:
        top = rev_doc["levers"][0]
        summary.append(
            f"  Biggest lever: {top['lever']} ({top['change']}) saves {usd(top['monthly_savings_usd'], 0)}/month."
        )
    return _Outlook(html, summary, str(files.scenarios), str(files.plan))


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (4318 is OTLP/HTTP's).")] = 4318,
    queue_size: Annotated[
        int, typer.Option(min=1, help="Requests waiting for the writer before new ones get 503 + Retry-After.")
    ] = 64,
    max_body_mib: Annotated[
        int, typer.Option(min=1, help="Largest request body in MiB, before and after decompression (413 above).")
    ] = 64,
    journal: Annotated[Path | None, typer.Option(help="Journal folder (default: <workspace>.journal).")] = None,
) -> None:
    """Receive OpenTelemetry traces (OTLP/HTTP POST /v1/traces) and store their model calls as they arrive."""
    from unitcost.server import ServerSettings
    from unitcost.server import serve as run_server

    settings = ServerSettings(max_body_bytes=max_body_mib << 20, queue_size=queue_size, journal=journal)
    with _workspace() as ws:
        run_server(ws.store, ws.config, host=host, port=port, settings=settings)


@app.command()
@handle_errors
def forecast(
    scope: Annotated[
        str, typer.Option(help="all (fully loaded when there is a bill), layer, or a dimension: tenant, feature, ...")
    ] = "all",
    months: Annotated[int, typer.Option(min=1, max=3, help="Calendar months to forecast after this one.")] = 1,
    backtest: Annotated[
        bool, typer.Option("--backtest", help="Also score the forecast on the last 4 weeks against naive baselines.")
    ] = False,
    top: Annotated[
        int, typer.Option(help="Keys forecast one by one; the rest are summed into (other) (0 = all).")
    ] = 10,
    at: Annotated[
        str | None, typer.Option(help="Evaluation time (default: the newest data); its day is partial.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (docs/forecasting.md).")] = False,
    html: Annotated[Path | None, typer.Option(help="Also write the fan charts to this HTML file.")] = None,
) -> None:
    """How much will it cost? Month-end and the next months, with 80% and 95% prediction intervals."""
    from unitcost.analysis.forecast import backtest_costs, forecast_costs
    from unitcost.periods import parse_instant

    with _workspace() as ws:
        when = parse_instant(at, "--at")[0] if at else None
        result = forecast_costs(ws.store, ws.config, scope=scope, months=months, at=when, top=top)
        scores = backtest_costs(ws.store, ws.config, scope=scope, at=when, top=top) if backtest else None
    if as_json:
        doc = result.to_json()
        if scores is not None:
            doc["backtest"] = scores.to_json()
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        from unitcost.report.forecast import render_backtest, render_forecast

        render_forecast(console, result)
        if scores is not None:
            render_backtest(console, scores)
    if html is not None:
        from unitcost.report.forecast import write_forecast_html

        write_forecast_html(result, html)
        if not as_json:
            console.print(f"HTML forecast written to {html}")


@app.command()
@handle_errors
def scenarios(
    file: Annotated[Path, typer.Argument(help="The scenario file (YAML; docs/review.md, examples/scenarios.yaml).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (docs/review.md).")] = False,
    html_path: Annotated[Path | None, typer.Option("--html", help="Also write the charts to this HTML file.")] = None,
) -> None:
    """What will it cost? Best / expected / stress cases by Monte Carlo over measured drivers, and a tornado chart."""
    from unitcost.analysis.outlook import scenario_report

    with _workspace() as ws:
        doc = scenario_report(ws.store, ws.config, file).to_json()
    _emit_outlook("scenarios", doc, as_json, html_path)


def _emit_outlook(kind: str, doc: dict[str, Any], as_json: bool, html_path: Path | None) -> None:
    """Print a scenarios or review document (JSON or tables) and write its HTML page when asked."""
    from unitcost.report import outlook as terminal
    from unitcost.report.html_outlook import write_outlook_page

    if html_path is not None:
        docs = {"scenarios_doc": doc} if kind == "scenarios" else {"review_doc": doc}
        write_outlook_page(html_path, f"unitcost {kind}", **docs)
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        return
    (terminal.render_scenarios if kind == "scenarios" else terminal.render_review)(console, doc)
    if html_path is not None:
        console.print(f"HTML written to {html_path}")


@app.command()
@handle_errors
def review(
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="Capacity plan of the self-hosted GPU pool: re-plan and stress it.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, a key per section.")] = False,
    html_path: Annotated[Path | None, typer.Option("--html", help="Also write the review to this HTML file.")] = None,
) -> None:
    """Architecture review before scaling: unit costs at 2x/10x, scaling risk, GPU stress, break-even, levers."""
    from unitcost.analysis.outlook import review_report

    with _workspace() as ws:
        result, extras = review_report(ws.store, ws.config, plan=plan_file)
    doc = result.to_json()
    doc["gpu_cost_curve"] = extras.get("gpu_cost_curve")
    _emit_outlook("review", doc, as_json, html_path)


@app.command()
@handle_errors
def plan(
    file: Annotated[Path, typer.Argument(help="The plan file (YAML; docs/capacity.md).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (docs/json.md).")] = False,
    html_path: Annotated[Path | None, typer.Option("--html", help="Also write the charts to this HTML file.")] = None,
    stress: Annotated[bool, typer.Option(help="Also run the stress cases: traffic x2 and x10, GPUs lost.")] = False,
) -> None:
    """GPU capacity plan: the cheapest self-hosted configuration that meets the latency SLOs."""
    from unitcost.capacity.results import plan_outcome

    progress = None if as_json else (lambda message: err_console.print(f"[dim]{message}[/dim]"))
    outcome = plan_outcome(str(file), stress=stress, progress=progress)
    if html_path is not None:
        from unitcost.report.html_capacity import write_plan_html

        written = write_plan_html(html_path, outcome.document, outcome.load_curve, outcome.simulation, outcome.slo)
        if not as_json:
            err_console.print(f"Wrote {written}")
    if as_json:
        sys.stdout.write(json.dumps(outcome.document, indent=2) + "\n")
        return
    from unitcost.report.capacity import render_plan

    render_plan(console, outcome.document)


@app.command()
@handle_errors
def profile(
    model: Annotated[str, typer.Option(help="Catalog model key, e.g. llama-3.1-8b.")],
    gpu: Annotated[str, typer.Option(help="Catalog key of the GPU this runs on (names the profile).")],
    out: Annotated[Path, typer.Option(help="Profile file to write (JSON).")] = Path("profile.json"),
) -> None:
    """Measure prefill and decode step times of a model shape on this CUDA GPU (needs PyTorch); write a profile."""
    from unitcost.capacity.catalog import load_gpu
    from unitcost.capacity.profile import measure, write_profile

    load_gpu(gpu)  # an unknown key fails before any GPU work
    written = write_profile(measure(model, gpu_name=gpu), out)
    console.print(f"Wrote {written}; use it with profiles: [{written}] in a plan file.")


def _prepare_demo_db(db_path: Path) -> None:
    """Start the demo from an empty workspace, refusing to delete one that holds real data."""
    if not db_path.exists():
        return
    import duckdb

    con = duckdb.connect(str(db_path))
    try:
        is_demo = bool(
            con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = '_unitcost_demo'"
            ).fetchone()[0]  # type: ignore[index]
        )
        has_rows = bool(
            con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'usage'").fetchone()[0]  # type: ignore[index]
        ) and bool(con.execute("SELECT count(*) FROM usage").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()
    if has_rows and not is_demo:
        raise _DemoRefused(
            f"{db_path} holds data that the demo did not create; run the demo elsewhere: unitcost --db demo.duckdb demo"
        )
    db_path.unlink()
    wal = db_path.with_name(db_path.name + ".wal")
    if wal.exists():
        wal.unlink()


class _DemoRefused(UnitcostError):
    pass


def _write_demo_config(path: Path, text: str) -> None:
    if not path.exists():
        path.write_text(text)
        console.print(f"Wrote {path} (the price of the demo's self-hosted model).")
    elif "llama-3.1-70b-support-ft" not in path.read_text():
        console.print(
            f"[yellow]{path} exists and does not price the demo's self-hosted model: its requests will "
            "show as unpriced.[/yellow]"
        )


def main() -> None:
    """Entry point of the ``unitcost`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

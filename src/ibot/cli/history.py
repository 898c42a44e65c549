"""`ibot history`: download IB's historical bars per contract (paced, resumable), the daily update, and the
gap report. Renders the history service's results; exit 0 (complete), 1 (finished with ranges left to fetch
again: timeouts, pacing, empty answers), 2 (bad input, unreachable IB, or IB refused a request for good:
permission, invalid contract), 130 (stopped by Ctrl-C / SIGTERM after the requests in flight were stored)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ibot.aio import StopSignals, run_stoppable
from ibot.cli.main import (
    CONTEXT_SETTINGS,
    DataDirOpt,
    JsonOpt,
    console,
    err_console,
    forced_stop_exits,
    friendly_errors,
    print_error,
    print_json,
)
from ibot.cli.render import rows_table

if TYPE_CHECKING:
    from ibot.app.history import HistoryJob, HistoryResult, HistoryRun
    from ibot.history.download import DownloadProgress

__all__ = ["history_app"]

history_app: typer.Typer = typer.Typer(
    help="IB historical bars per contract: download (paced, resumable), daily update, gap report.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)

SymbolOpt = Annotated[str, typer.Option("--symbol", "-s", help="Catalog product or stock, e.g. MES, SPY.")]
BarOpt = Annotated[str, typer.Option("--bar", help="IB bar size, e.g. '1 min', '5 mins', '1 day'.")]
WhatOpt = Annotated[str, typer.Option("--what", help="whatToShow: TRADES, MIDPOINT, BID, ASK or BID_ASK.")]
PacingOpt = Annotated[
    float,
    typer.Option(
        "--pacing-scale",
        hidden=True,
        min=1.0,
        help="Simulator only (IB's limits are scale 1): divide every pacing window by K, like "
        "`ibot sim --pacing-scale K`.",
    ),
]
InFlightOpt = Annotated[int, typer.Option("--in-flight", min=1, max=50, help="Requests open at once.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.001, help="Seconds to wait for one request.")]
ConnectOpt = Annotated[
    float, typer.Option("--connect-timeout", min=0.1, help="Seconds to wait for TWS / IB Gateway.")
]
RetriesOpt = Annotated[
    int, typer.Option("--retries", min=0, max=20, help="Tries again after pacing/timeouts.")
]


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2024-01-31", param_hint=option) from None


@history_app.command("download")
@friendly_errors
def download(
    symbol: SymbolOpt = "MES",
    bar: BarOpt = "1 min",
    start: Annotated[str, typer.Option("--from", metavar="DATE", help="First trading day, YYYY-MM-DD.")] = "",
    end: Annotated[
        str | None,
        typer.Option("--to", metavar="DATE", help="Last trading day (default: the server's today)."),
    ] = None,
    what: WhatOpt = "TRADES",
    full: Annotated[
        bool, typer.Option("--full", help="Each month's whole available life, not only its roll window.")
    ] = False,
    overlap: Annotated[
        int, typer.Option("--overlap", min=0, max=60, help="Business days before the previous roll.")
    ] = 10,
    data_dir: DataDirOpt = None,
    in_flight: InFlightOpt = 5,
    timeout: TimeoutOpt = 60.0,
    retries: RetriesOpt = 5,
    connect_timeout: ConnectOpt = 20.0,
    pacing_scale: PacingOpt = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Download a symbol's bars from IB, one Parquet series per contract month (expired ones included).

    Each month is fetched over the window a continuous series needs (from the previous month's roll date minus
    `--overlap` business days to its last trade date), clipped to `--from`..`--to`. Requests are paced within
    IB's limits; every chunk is checkpointed, so a run after an interruption fetches only what is missing and
    a run on complete data sends no request. The bar still forming is never stored."""
    from ibot.app.history import HistoryJob, HistoryRun

    first = _day(start or None, "--from")
    if first is None:
        raise typer.BadParameter("give the first trading day, e.g. --from 2024-01-01", param_hint="--from")
    job = HistoryJob(symbol.upper(), bar, first, _day(end, "--to"), what, full, overlap)
    run = HistoryRun(data_dir, pacing_scale, in_flight, timeout, retries, connect_timeout)
    _run([job], run, as_json)


@history_app.command("update")
@friendly_errors
def update(
    data_dir: DataDirOpt = None,
    connect_timeout: ConnectOpt = 20.0,
    pacing_scale: PacingOpt = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """The daily job: bring every `[history]` symbol and bar size of ibot.toml up to the server's today
    (only what is missing is fetched)."""
    from ibot.app.history import HistoryRun, update_jobs
    from ibot.history.settings import load_history_settings

    settings = load_history_settings()
    jobs = update_jobs(settings)
    run = HistoryRun(
        data_dir, pacing_scale, settings.max_in_flight, settings.request_timeout, settings.max_retries,
        connect_timeout,
    )  # fmt: skip
    _run(jobs, run, as_json)


@history_app.command("gaps")
@friendly_errors
def gaps(
    symbol: SymbolOpt = "MES",
    bar: BarOpt = "1 min",
    what: WhatOpt = "TRADES",
    min_fill: Annotated[
        float, typer.Option("--min-fill", help="A session with fewer than this share of its bars is thin.")
    ] = 0.9,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sessions of each downloaded contract window that hold no bars or fewer than expected."""
    from ibot.app.history import history_gaps

    report = history_gaps(symbol.upper(), bar, what, data_dir, min_fill)
    if as_json:
        print_json({"symbol": symbol.upper(), "bar": bar, "contracts": [c.to_dict() for c in report]})
        return
    if not report:
        console.print(f"no downloaded {bar} series of {symbol.upper()} in the checkpoint")
        return
    for c in report:
        head = f"{c.key}: {c.sessions} complete sessions from {c.first} to {c.last}, {c.bars:,} bars"
        if not c.gaps:
            console.print(f"[green]{head}; no gaps[/]")
            continue
        console.print(f"[yellow]{head}; {len(c.gaps)} sessions lack bars[/]")
        console.print(rows_table(f"{c.key} gaps", [g.to_dict() for g in c.gaps]))


# --- running and rendering ---------------------------------------------------------------------------------


def _run(jobs: list[HistoryJob], run: HistoryRun, as_json: bool) -> None:
    from ibot.app.history import check_job, download_history

    for job in jobs:
        check_job(job)  # one sentence, exit 2, before anything is created or contacted

    async def main() -> HistoryResult:
        _quiet_abandoned_connects()

        def say(signal_name: str) -> None:
            err_console.print(f"{signal_name}: stopping after the requests in flight are stored...")

        with StopSignals(on_first=say) as stop, _progress(not as_json) as show:
            return await download_history(jobs, run, on_progress=show, stop=stop.event)

    with forced_stop_exits():
        result = run_stoppable(main())
    if as_json:
        print_json(result.to_dict())
    else:
        _print_result(result)
    if result.stopped:
        raise typer.Exit(130)
    if result.permanent_failures:
        problems = [p for _, s in result.jobs for p in s.problems]
        print_error(f"IB refused {result.permanent_failures} request(s) for good: {problems[0]}")
        raise typer.Exit(2)
    if not result.complete:
        raise typer.Exit(1)


def _quiet_abandoned_connects() -> None:
    """An unreachable TWS is said in one sentence; the connect attempt the adapter gave up on when its wait
    ended (an OSError nobody retrieves) is not printed as a traceback after it."""
    loop = asyncio.get_running_loop()
    default = loop.get_exception_handler()

    def handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), OSError) and "never retrieved" in context.get("message", ""):
            return
        if default is not None:
            default(lp, context)
        else:
            lp.default_exception_handler(context)

    loop.set_exception_handler(handler)


class _Display:
    """A rich bar of requests done/left, with bars stored and the pacing wait; entered as a context."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "requests · {task.fields[bars]:,} bars stored · pacing wait {task.fields[wait]:.1f} s"
            ),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        self.progress.__enter__()
        self.task = self.progress.add_task("history", total=None, bars=0, wait=0.0)
        return self.show

    def show(self, p: DownloadProgress) -> None:
        total = p.requests_done + p.requests_left
        self.progress.update(
            self.task,
            description=escape(p.contract or "history"),
            completed=p.requests_done,
            total=total or None,
            bars=p.bars_stored,
            wait=p.pacing_wait,
        )

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.__exit__(None, None, None)


def _progress(enabled: bool) -> _Display:
    return _Display(enabled)


def _print_result(result: HistoryResult) -> None:
    d = result.to_dict()
    for job, stats in result.jobs:
        rows = [
            {"contract": c["key"], "window": f"{c.get('first_day', '')} .. {c.get('last_day', '')}",
             "requests": c["chunks"], "bars stored": stats.bars_stored.get(c["key"], 0)}
            for c in stats.contracts
        ]  # fmt: skip
        title = f"{job.symbol} {job.bar} {job.what}"
        if rows:
            console.print(rows_table(title, rows))
        for problem in stats.problems:
            console.print(f"[yellow]note:[/] {escape(problem)}", soft_wrap=True)
    state = "complete" if result.complete else ("stopped" if result.stopped else "incomplete")
    console.print(
        f"{state}: {d['requests_sent']} requests sent ({d['fewest_needed']} needed), "
        f"{sum(d['bars_stored'].values()):,} bars stored, retries {d['retries'] or 'none'}, "
        f"pacing violations {d['violations_seen']}, {d['wall_seconds']:.1f} s, from {result.endpoint} "
        f"(client id {result.client_id})"
    )

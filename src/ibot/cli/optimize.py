"""`ibot optimize`: a parameter search over a strategy's declared parameters (Optuna), its table, JSON, HTML
report and profile file; `--worker` joins a study that exists and runs its trials (any number of workers,
on any machine, share a PostgreSQL storage).

The storage URL may carry a password: it is read from `--storage` or IBOT_OPTIMIZE_STORAGE and shown only
masked; local workers (`--jobs`) receive it in their environment, never on their command line."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ibot.cli.main import (
    DataDirOpt,
    JsonOpt,
    _out_dir_option,
    app,
    console,
    err_console,
    friendly_errors,
    print_json,
)

if TYPE_CHECKING:
    from ibot.app.optimize import OptimizeOutcome, StudyProgress, WorkerOutcome
    from ibot.app.progress import ProgressCallback, ProgressUpdate

__all__ = ["StopFlag", "optimize"]

STORAGE_ENV = "IBOT_OPTIMIZE_STORAGE"
_SEARCH_OPTIONS = (
    "strategy",
    "symbol",
    "bar",
    "param",
    "objective",
    "trials",
    "start",
    "end",
    "holdout",
    "walk_forward",
    "anchored",
    "max_trades_per_day",
    "min_trades",
    "jobs",
    "profile_out",
    "sampler_seed",
    "days",
    "seed",
    "slippage",
    "commission",
    "heartbeat",
    "top",
    "out",
    "report",
)  # a --worker takes these from the study (or has no use for them): giving one is refused, never ignored


class ForcedStop(BaseException):
    """A second SIGINT/SIGTERM: raised wherever the search is, like KeyboardInterrupt (a BaseException, so
    no `except Exception` in Optuna or SQLAlchemy mistakes it for a database error). The running trial stays
    RUNNING in the study; its heartbeat stops, and a later run fails it after the grace period and retries
    it with the same parameters."""


class StopFlag:
    """SIGINT/SIGTERM while a search runs: the first asks it to stop after the running trial (the service
    polls `reason()`), the second raises ForcedStop at once (exit 130)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_first: Callable[[str], None] | None = None) -> None:
        self.on_first = on_first
        self.received: list[str] = []
        self._previous: dict[int, Any] = {}

    def reason(self) -> str:
        return self.received[0] if self.received else ""

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.received.append(name)
        if len(self.received) == 1:
            if self.on_first is not None:
                self.on_first(name)
            return
        raise ForcedStop(f"forced by a second {name}")

    def __enter__(self) -> StopFlag:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@contextmanager
def _progress(
    enabled: bool,
) -> Iterator[tuple[ProgressCallback | None, Callable[[StudyProgress], None] | None]]:
    """Rich bars: one for trials (done of target, best so far, ETA), one per other task (bars, tests)."""
    if not enabled:
        yield None, None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
        TimeRemainingColumn(),
    )
    tasks: dict[str, TaskID] = {}
    bars = Progress(*columns, console=console, transient=True)

    def task(name: str, total: int | None) -> TaskID:
        if not tasks:
            bars.start()  # drawn from the first update on: a refused command prints nothing on stdout
        if name not in tasks:
            tasks[name] = bars.add_task(name, total=total, best="")
        return tasks[name]

    def on_progress(update: ProgressUpdate) -> None:
        if update.message:
            console.print(update.message)
        bars.update(task(update.task, update.total), completed=update.done, total=update.total)

    def on_trial(p: StudyProgress) -> None:
        best = "best -" if p.best is None else f"best {p.best:,.4g}"
        extra = f"  pruned {p.counts.pruned}" if p.counts.pruned else ""
        extra += f"  failed {p.counts.failed}" if p.counts.failed else ""
        bars.update(task(f"trials of {p.study}", p.target), completed=p.finished, total=p.target)
        bars.update(tasks[f"trials of {p.study}"], best=best + extra)

    try:
        yield on_progress, on_trial
    finally:
        if tasks:
            bars.stop()


@contextmanager
def _stopping(quiet: bool) -> Iterator[StopFlag]:
    def say(name: str) -> None:
        err_console.print(
            f"[yellow]{name}:[/] stopping after the running trial (the study keeps every finished trial); "
            "a second one stops at once"
        )

    try:
        with StopFlag(on_first=say) as stop:
            yield stop
    except ForcedStop as exc:
        err_console.print(
            f"[bold red]stopped:[/] {exc}; every finished trial is kept in the study, and the one that was "
            "running is retried when the same command resumes it"
        )
        raise typer.Exit(130) from None


@app.command()
@friendly_errors
def optimize(
    ctx: typer.Context,
    strategy: Annotated[str, typer.Option(help="Strategy name (see `ibot strategies`).")] = "ma_breakout",
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Catalog symbol, e.g. MES.")] = "MES",
    bar: Annotated[str, typer.Option(help="Bar size the strategy sees, e.g. 5min.")] = "5min",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Narrow or fix a parameter: name=low:high, name=a|b, name=value (repeat).",
        ),
    ] = None,
    objective: Annotated[
        list[str] | None,
        typer.Option(
            help="net, sharpe, profit_factor or max_drawdown (minimized); repeat for a Pareto front.",
            show_default="sharpe",
        ),
    ] = None,
    trials: Annotated[int, typer.Option(help="Finished trials the study runs to.")] = 100,
    start: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="First date of bars used (UTC).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", metavar="DATE", help="Last date of bars used (UTC).")
    ] = None,
    holdout: Annotated[
        float | None,
        typer.Option(
            metavar="FRACTION",
            help="Test out of sample on the last FRACTION of the bars.",
            show_default="0.25",
        ),
    ] = None,
    walk_forward: Annotated[
        int | None, typer.Option(metavar="N", help="Walk-forward test in N folds (instead of --holdout).")
    ] = None,
    anchored: Annotated[
        bool, typer.Option("--anchored", help="Walk-forward train periods all start at the first bar.")
    ] = False,
    max_trades_per_day: Annotated[
        int | None, typer.Option(metavar="N", help="Constraint: at most N trades on any trading day.")
    ] = None,
    min_trades: Annotated[
        int | None, typer.Option(metavar="N", help="Constraint: at least N trades in sample.")
    ] = None,
    study: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Study name.", show_default="<strategy>-<symbol>-<bar>"),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            envvar=STORAGE_ENV,
            show_envvar=False,
            help=f"Optuna storage, e.g. postgresql+psycopg://user@host/db (or ${STORAGE_ENV}).",
            show_default="SQLite file in --out",
        ),
    ] = None,
    worker: Annotated[
        bool, typer.Option("--worker", help="Join --study in --storage and run its trials.")
    ] = False,
    jobs: Annotated[int, typer.Option(metavar="N", help="Local worker processes.")] = 1,
    sampler_seed: Annotated[
        int | None, typer.Option(metavar="N", help="Sampler seed (a run in this process only).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Days of synthetic data when the store has none.")] = 60,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the synthetic market when the store has none.")
    ] = 7,
    slippage: Annotated[int, typer.Option(min=0, help="Market-order slippage in ticks.")] = 1,
    commission: Annotated[str | None, typer.Option(help="Commission per contract per side (USD).")] = None,
    heartbeat: Annotated[
        int,
        typer.Option(metavar="SECONDS", help="Trial heartbeat; a silent worker's trial is retried after 3."),
    ] = 5,
    top: Annotated[int, typer.Option(metavar="N", help="Rows in the table.")] = 10,
    data_dir: DataDirOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(metavar="DIR", callback=_out_dir_option, help="Where the study, report and profile go."),
    ] = None,
    profile_out: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH", help="Profile file.", show_default="<out>/profiles/<strategy>-<symbol>.json"
        ),
    ] = None,
    report: Annotated[bool, typer.Option(help="Write the HTML report.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Search a strategy's parameters with Optuna and test the best out of sample.

    Each trial backtests one parameter set on the in-sample bars; `--holdout` (default 0.25) or
    `--walk-forward N` keeps bars for the out-of-sample test that every completed trial gets after the
    search. Prints the best trials with their out-of-sample results, writes an HTML report and a profile
    that `ibot backtest --profile` and `ibot run --profile` read. Ctrl-C stops after the running trial; the
    same command resumes the study."""
    from ibot.app.optimize import OptimizeRequest, WorkerRequest, run_optimize, run_worker
    from ibot.model.errors import ParameterError

    if worker:
        given = [name for name in _SEARCH_OPTIONS if _given(ctx, name)]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ParameterError(f"{flag}: a --worker takes every setting from the study; give only --study")
        if not study or not storage:
            raise ParameterError(f"--worker needs --study NAME and --storage URL (or ${STORAGE_ENV})")
        with _stopping(as_json) as stop:
            with _progress(not as_json) as (on_progress, on_trial):
                done = run_worker(WorkerRequest(study, storage, data_dir), on_progress, on_trial, stop.reason)
            _print_worker(done, as_json)
        return
    request = OptimizeRequest(
        strategy=strategy,
        symbol=symbol,
        bar=bar,
        params=tuple(param or ()),
        objectives=tuple(objective or ("sharpe",)),
        trials=trials,
        start=start,
        end=end,
        holdout=holdout,
        walk_forward=walk_forward,
        anchored=anchored,
        max_trades_per_day=max_trades_per_day,
        min_trades=min_trades,
        study=study,
        storage=storage,
        jobs=jobs,
        seed=sampler_seed,
        days=days,
        synth_seed=seed,
        slippage_ticks=slippage,
        commission=commission,
        heartbeat=heartbeat,
        data_dir=data_dir,
        out_dir=out,
        profile_out=profile_out,
        write_report=report,
        top=top,
    )
    with _stopping(as_json) as stop:
        with _progress(not as_json) as (on_progress, on_trial):
            outcome = run_optimize(request, on_progress, on_trial, stop.reason)
        if as_json:
            print_json(outcome.to_dict())
        else:
            _print_outcome(outcome)


def _given(ctx: typer.Context, name: str) -> bool:
    from typer._click.core import ParameterSource

    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.2f}"
    return str(value)


def _print_outcome(outcome: OptimizeOutcome) -> None:
    s = outcome.settings
    objectives = list(s.objectives)
    kind = "Pareto front" if s.multi else "best trials"
    table = Table(
        title=f"{s.strategy} on {s.symbol} {s.bar}: {kind} of study {escape(outcome.study)}",
        header_style="bold cyan",
    )
    for col in ["rank", "trial", "params"]:
        table.add_column(col, no_wrap=col != "params")
    for name in objectives:
        table.add_column(f"{name} in", justify="right")
        table.add_column(f"{name} out", justify="right")
    for col in ["out rank", "trades", "feasible"]:
        table.add_column(col, justify="right")
    for row in outcome.rows:
        cells = [
            str(row["rank"]),
            str(row["number"]),
            ", ".join(f"{k}={v}" for k, v in row["params"].items()),
        ]
        for name in objectives:
            cells += [_fmt(row["in_sample"][name]), _fmt((row["out_of_sample"] or {}).get(name))]
        cells += [_fmt(row["out_of_sample_rank"]), _fmt(row["trades"]), "yes" if row["feasible"] else "no"]
        table.add_row(*(escape(c) for c in cells))
    console.print(table)
    c = outcome.counts
    infeasible = sum(1 for t in outcome.trials if t["state"] == "COMPLETE" and not t["feasible"])
    pruning = (
        "pruning on (median, per walk-forward fold)"
        if outcome.pruning
        else ("no pruning (several objectives)" if s.multi else "no pruning (one in-sample segment)")
    )
    console.print(
        f"trials: {c.complete} complete, {c.pruned} pruned, {c.failed} failed, {infeasible} infeasible "
        f"(target {s.trials}); {pruning}"
    )
    if outcome.stopped_by:
        console.print(
            f"[yellow]stopped by {outcome.stopped_by}[/] after {c.finished} of {s.trials} trials; the study "
            "keeps them: run the same command to resume (no out-of-sample test, report or profile yet)"
        )
        return
    console.print(_correlation_line(outcome.rank_correlation))
    if outcome.best is None:
        console.print("[bold red]no feasible trial with a defined objective[/]: no profile written")
    else:
        f = outcome.best.get("figures", {})
        console.print(
            f"best trial {outcome.best['number']} over the whole range ({f.get('bars')} bars): net "
            f"{f.get('net_pnl')}, {f.get('trades')} trades, Sharpe {_fmt(f.get('sharpe'))}, max drawdown "
            f"{f.get('max_drawdown')}"
        )
    console.print(f"  study: {escape(outcome.study)} in {escape(outcome.storage)}")
    if outcome.report:
        console.print(f"  report: {outcome.report}")
    if outcome.profile:
        console.print(f"  profile: {outcome.profile}  (ibot backtest --profile {outcome.profile})")


def _correlation_line(rho: float | None) -> str:
    try:
        from ibot.optimize.oos import describe_correlation  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return f"in-sample vs out-of-sample rank correlation (Spearman): {_fmt(rho)}"
    return str(describe_correlation(rho))


def _print_worker(done: WorkerOutcome, as_json: bool) -> None:
    if as_json:
        print_json(done.to_dict())
        return
    c = done.counts
    stop = f"; stopped by {done.stopped_by}" if done.stopped_by else ""
    console.print(
        f"worker: ran {done.ran} trials of study {escape(done.study)}; it has {c.complete} complete, "
        f"{c.pruned} pruned, {c.failed} failed{stop}"
    )


if sys.platform == "win32":  # pragma: no cover - SIGTERM cannot be caught there
    StopFlag.SIGNALS = (signal.SIGINT,)

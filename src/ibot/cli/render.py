"""How the CLI shows the application layer's results to people: rich tables, the P&L line, the final-state
line, a backtest report, progress bars. Only the CLI imports this; services return data and never print."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

if TYPE_CHECKING:
    from ibot.app.backtest import BacktestOutcome
    from ibot.app.progress import ProgressCallback, ProgressUpdate

__all__ = ["print_backtest", "print_final", "print_orders", "progress_bars", "rows_table"]


def rows_table(title: str, rows: Sequence[Mapping[str, Any]], columns: list[str] | None = None) -> Table:
    """A table of plain rows: the columns are the first row's keys (or `columns`), underscores as spaces."""
    columns = columns or (list(rows[0]) if rows else [])
    table = Table(title=title, header_style="bold cyan")
    for col in columns:
        table.add_column(col.replace("_", " "), no_wrap=True)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    return table


def print_orders(summary: Mapping[str, Any], console: Console, title: str = "") -> None:
    """Tables of orders and fills and a P&L line, from an orders summary as plain data
    (`OrdersSummary.to_dict()`, or a live run's summary); the executions kept aside below, if any."""
    prefix = f"{title}: " if title else ""
    if not summary["orders"]:
        console.print(f"{prefix}no orders in the records database")
        return
    console.print(rows_table(f"{prefix}orders ({len(summary['orders'])})", summary["orders"]))
    console.print(rows_table(f"{prefix}fills ({len(summary['fills'])})", summary["fills"]))
    pos = ", ".join(f"{k} {v:+d}" for k, v in summary["positions"].items()) or "flat"
    net = summary["net_pnl"]
    style = "green" if net >= 0 else "red"
    console.print(
        f"P&L: gross {summary['gross_pnl']:.2f}  commissions {summary['commissions']:.2f}  "
        f"[bold {style}]net {net:.2f}[/]  (IB realized {summary['ib_realized']:.2f})  position {pos}"
    )
    conflicts = summary.get("fill_conflicts") or []
    if conflicts:
        console.print(rows_table(f"{prefix}executions kept aside, not merged ({len(conflicts)})", conflicts))
        console.print(
            "[bold red]records integrity:[/] these exec ids were recorded before with other content; "
            "the fills above are the first ones recorded. Compare with IB's execution report."
        )


def print_final(summary: Mapping[str, Any], console: Console) -> None:
    """One line: what ended the run and the state it left (position, open orders, P&L of the trading day)."""
    final = summary.get("final") or {}
    stopped = final.get("stopped_by", "duration")
    why = "the run's duration was reached" if stopped == "duration" else f"stopped by {stopped}"
    if not final.get("traded", True):
        console.print(f"final state ({why} before the session was ready): nothing was sent")
        return
    pos = ", ".join(f"{k} {v:+d}" for k, v in final.get("positions", {}).items()) or "flat"
    open_orders = final.get("open_orders", [])
    realized = final.get("realized_pnl")
    day = final.get("day_pnl")
    pnl = f"realized {realized:+.2f}, day {day:+.2f}" if realized is not None and day is not None else "n/a"
    style = "green" if pos == "flat" and not open_orders else "bold red"
    console.print(
        f"final state ({why}): [{style}]position {pos}, open orders {len(open_orders)}[/], P&L {pnl}"
    )


def print_backtest(outcome: BacktestOutcome, console: Console) -> None:
    """The report's table of metrics, then each file written."""
    from ibot.backtest.report import render_table

    console.print(render_table(outcome.result))
    for name, path in outcome.files.to_dict().items():
        console.print(f"  {name}: {path}")


@contextmanager
def progress_bars(console: Console, *, enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A progress callback for a service, drawn as transient rich bars (one per task; a spinner while the
    total is unknown); a task's `message` is printed once above them. Disabled (`--json`): None."""
    if not enabled:
        yield None
        return
    tasks: dict[str, TaskID] = {}
    bars = Progress(console=console, transient=True)
    started = False  # drawn from the first update on: a command refused before any work prints nothing

    def show(update: ProgressUpdate) -> None:
        nonlocal started
        if not started:
            bars.start()
            started = True
        if update.message:
            console.print(update.message)
        task = tasks.get(update.task)
        if task is None:
            task = tasks[update.task] = bars.add_task(update.task, total=update.total)
        bars.update(task, completed=update.done, total=update.total)

    try:
        yield show
    finally:
        if started:
            bars.stop()

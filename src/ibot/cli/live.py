"""`ibot run` and the live demo as the CLI drives them: build the run's options, log to a file, run the
live service on its own asyncio loop (`asyncio.run` lives here, never in ibot.app), show its start-up and
status lines, and return this run's orders, fills, P&L and final state as plain data for the renderers."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ibot.app.records import orders_summary, records_url
from ibot.app.strategies import make_strategy
from ibot.config import load_settings

if TYPE_CHECKING:
    from datetime import datetime

    from ibot.engine.runner import LiveRunner
    from ibot.engine.session import TradingSession

__all__ = ["log_to_file", "run_live"]


def run_live(
    strategy: str,
    symbol: str,
    params: list[str],
    bar: str,
    db: str | None,
    sim: bool,
    sim_speed: float,
    duration: float | None,
    console: Console,
    *,
    seed: int = 7,
    sim_start: datetime | None = None,
    flatten: bool = True,
    lockstep: bool = False,
    status_every: float = 1.0,
    quiet: bool = False,
    log_file: Path | None = None,
) -> dict[str, Any]:
    """Trade `strategy` live on `symbol` (`ibot.app.live`), printing the start-up line and a status line every
    `status_every` wall seconds; returns a summary of this run's orders read back from the records database.
    SIGINT / SIGTERM stop the run gracefully (cancel, flatten when asked, summary); a second one forces it.
    The run's log goes to `log_file` (default <out_dir>/live/ibot_live.log); the terminal shows the status
    lines and errors only."""
    from ibot.app.live import LiveRunOptions, check_options, describe_final
    from ibot.app.live import run_live as run_live_service
    from ibot.engine.status import render_status
    from ibot.oms.database import open_records

    strat = make_strategy(strategy, params)
    url = records_url(db)
    options = LiveRunOptions(
        strat, symbol.upper(), bar, url, sim, sim_speed, duration, seed, sim_start, flatten, lockstep,
        load_settings().records_sync,
    )  # fmt: skip
    check_options(options)  # a run that cannot start creates no log folder and no records file
    log_to_file(log_file or load_settings().out_dir / "live" / "ibot_live.log")

    def say(text: str) -> None:
        if quiet:
            sys.stderr.write(text + "\n")
        else:
            console.print(text)

    def status(session: TradingSession, runner: LiveRunner) -> None:
        if not quiet:
            console.print(render_status(session, runner))

    result = asyncio.run(run_live_service(options, on_status=status, status_every=status_every, notice=say))
    records = open_records(url)
    try:
        summary = orders_summary(records, only=result.order_ids).to_dict()
    finally:
        records.close()
    summary.update(
        strategy=strat.name,
        params=dict(strat.p),
        symbol=symbol.upper(),
        bar=bar,
        db=url,
        simulated=sim,
        market_seconds=result.market_seconds,
        wall_seconds=result.wall_seconds,
        bars=[tuple(b) for b in result.strategies[0].bars] if result.strategies else [],
        final=describe_final(result),
    )
    for why in result.flatten_failed:
        say(f"warning: {why}")
    return summary


def log_to_file(path: Path) -> None:
    """INFO and up of ibot and ib_async to `path`; the terminal keeps ERROR and up (status lines readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in root.handlers):
        return
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)
    if not any(isinstance(h, logging.StreamHandler) and h is not to_file for h in root.handlers):
        to_terminal = logging.StreamHandler()
        to_terminal.setLevel(logging.ERROR)
        to_terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(to_terminal)
    root.setLevel(logging.INFO)
    logging.getLogger("ib_async").setLevel(logging.INFO)

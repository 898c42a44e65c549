"""The live-trading service: one strategy on one instrument through ib_async, against TWS / IB Gateway or the
built-in simulator, from start to a clean stop. It prints nothing: surfaces (the CLI today) pass callbacks
and render the typed result.

What it promises:
- SIGINT and SIGTERM stop a run gracefully: the strategy's market data stops, its working orders are
  cancelled, the position is flattened when `flatten` says so, the records are flushed and closed, and the
  result says which signal ended the run. A second signal forces the exit (`ForcedStop`); the records stay
  consistent because every order and fill was committed when it happened.
- "This run" is the orders this run created: the result lists their client order ids, whatever else the
  records file holds from earlier runs.
- `lockstep` (with `sim`) replays a seeded synthetic session bar by bar, the market waiting for the strategy,
  so the same seed gives the same orders, fills and P&L on any machine at any load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ibot.aio import StopSignals, unless_stopped
from ibot.model import catalog
from ibot.model.errors import ParameterError
from ibot.model.market import NS_PER_SECOND, Bar

if TYPE_CHECKING:
    from ibot.brokers.ib.config import IBSettings
    from ibot.engine.runner import LiveRunner
    from ibot.engine.session import SessionStatus, TradingSession
    from ibot.oms.records import OrderRecords
    from ibot.sim.server import SimServer
    from ibot.strategy.base import Strategy

__all__ = ["SIM_START", "LiveRunOptions", "LiveRunResult", "check_options", "run_live"]

# Where `--sim` puts the simulated market unless told otherwise: a Wednesday at the RTH open (08:30 Chicago),
# so CME Globex is open and the risk checks' trading-hours rule lets orders through.
SIM_START = datetime(2025, 3, 5, 14, 30, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LiveRunOptions:
    """What to trade, where, and for how long (`duration`: market seconds; None until a signal)."""

    strategy: Strategy
    symbol: str
    bar: str
    records_url: str
    sim: bool = False
    sim_speed: float = 60.0
    duration: float | None = None
    seed: int = 7
    sim_start: datetime | None = None
    flatten: bool = True
    lockstep: bool = False
    records_sync: str | None = None


@dataclass(slots=True)
class LiveRunResult:
    """How a run went: its orders (client ids), bars, market and wall time, what stopped it, the final
    state."""

    records_url: str
    simulated: bool
    start_ns: int = 0
    end_ns: int = 0
    wall_seconds: float = 0.0
    order_ids: set[str] = field(default_factory=set)
    bars: list[Bar] = field(default_factory=list)
    stopped_by: str = ""  # "" (duration reached), "SIGINT", "SIGTERM"
    final: SessionStatus | None = None
    flatten_failed: str = ""  # why the position is not flat after a flattening stop, if it is not

    @property
    def market_seconds(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_SECOND


StatusCallback = Callable[["TradingSession", "LiveRunner"], None]
NoticeCallback = Callable[[str], None]


async def run_live(
    options: LiveRunOptions,
    *,
    on_status: StatusCallback | None = None,
    status_every: float = 1.0,
    notice: NoticeCallback | None = None,
) -> LiveRunResult:
    """Run `options.strategy` live until `duration` market seconds have passed or a signal stops it.

    `on_status(session, runner)` is called every `status_every` wall seconds while trading and once at the
    end; `notice(text)` receives the start-up line and what the stop did."""
    from ibot.oms.database import open_records

    say = notice or (lambda _text: None)
    check_options(options)
    records = open_records(options.records_url, sync=options.records_sync)  # one sentence if it can't
    server: SimServer | None = None
    result = LiveRunResult(options.records_url, options.sim)
    try:
        known = {o.client_order_id for o in records.orders()}
        settings, clock, server = await _venue(options)
        with StopSignals(on_first=lambda name: say(_stopping_text(name, options.flatten))) as stop:
            try:
                await _trade(options, settings, clock, records, stop, result, on_status, status_every, say)
            finally:
                result.order_ids = {o.client_order_id for o in records.orders()} - known
                result.stopped_by = stop.name
                result.end_ns = result.end_ns or clock()
    finally:
        if server is not None:
            await server.stop()
        records.close()
    return result


def check_options(options: LiveRunOptions) -> None:
    """Refuse a run that cannot start (bar size, symbol, IB settings) before anything is created."""
    from ibot.brokers.ib.config import load_ib_settings
    from ibot.data.bars import parse_interval

    if parse_interval(options.bar) % (5 * NS_PER_SECOND):
        raise ParameterError(
            f"--bar {options.bar!r}: live bars are built from IB's 5-second bars; use a multiple of 5 s"
        )
    catalog.resolve(options.symbol, (options.sim_start or SIM_START).date())  # UnknownSymbolError names it
    if not options.sim:
        load_ib_settings()  # ConfigError names the key or variable


def _stopping_text(signal_name: str, flatten: bool) -> str:
    then = "cancelling working orders and flattening" if flatten else "cancelling working orders"
    return f"{signal_name}: stopping ({then}); a second Ctrl-C forces the exit"


async def _venue(options: LiveRunOptions) -> tuple[IBSettings, Callable[[], int], SimServer | None]:
    """IB settings and the market clock: TWS / IB Gateway from the settings, or a simulator started here."""
    from ibot.brokers.ib.config import load_ib_settings
    from ibot.model.clock import MarketTime

    if not options.sim:
        return load_ib_settings(), MarketTime(), None  # market time from IB's data and server time
    server = _simulator(options)
    await server.start()
    market = server.market
    settings = load_ib_settings(
        env={},
        overrides={
            "host": "127.0.0.1",
            "port": server.port,
            "restart_window": {"enabled": False},
            "reconnect_initial_delay": 0.1,
            "reconnect_max_delay": 1.0,
            "watchdog_poll_seconds": 0.1,
            "stale_after_seconds": max(30.0, 30.0 * options.sim_speed / 10),
        },
    )
    return settings, lambda: int(market.now_s * NS_PER_SECOND), server


def _simulator(options: LiveRunOptions) -> SimServer:
    """The in-process simulator: a seeded synthetic market, or (lockstep) its 1-min bars replayed in step."""
    from ibot.sim.pacing import SimLimits
    from ibot.sim.server import SimServer

    start = options.sim_start or SIM_START
    product = catalog.resolve(options.symbol, start.date()).symbol
    if not options.lockstep:
        return SimServer(port=0, symbols=[product], speed=options.sim_speed, seed=options.seed, start=start)
    bars = replay_session(product, start, options.duration, options.seed)
    # TWS's 50 messages per wall second do not apply: in lockstep a market minute passes in a millisecond
    return SimServer(
        port=0,
        symbols=[product],
        replay={product: bars},
        replay_bar_seconds=60,
        lockstep=True,
        start=start,
        limits=SimLimits.off(),
    )


def replay_session(product: str, start: datetime, duration: float | None, seed: int) -> list[Bar]:
    """Seeded synthetic 1-min bars of `product` from `start` for `duration` market seconds (a day if None)."""
    from ibot.data.synth import synth_bars

    inst = catalog.get_instrument(product)
    span = timedelta(seconds=duration or 86_400)
    days = max(2, span.days + 2)
    frame = synth_bars(
        inst, datetime(start.year, start.month, start.day, tzinfo=UTC), days, "1min", seed=seed
    )
    lo = int(start.timestamp()) * NS_PER_SECOND
    hi = lo + int(span.total_seconds()) * NS_PER_SECOND
    bars = [b for b in frame.bars() if lo <= b.ts < hi]
    if not bars:
        raise ParameterError(
            f"--sim-start {start.isoformat()}: the synthetic {product} market has no bars there"
        )
    return bars


async def _trade(
    options: LiveRunOptions,
    settings: IBSettings,
    clock: Callable[[], int],
    records: OrderRecords,
    stop: StopSignals,
    result: LiveRunResult,
    on_status: StatusCallback | None,
    status_every: float,
    say: NoticeCallback,
) -> None:
    from ibot.engine.runner import LiveRunner
    from ibot.engine.session import TradingSession
    from ibot.oms.risk import RiskLimits

    session = TradingSession(settings, records, RiskLimits(), symbols=(options.symbol,), market_clock=clock)
    runner = LiveRunner(session, options.strategy, options.symbol, options.bar, lockstep=options.lockstep)
    venue = "simulator" if options.sim else "TWS / IB Gateway"
    say(f"connecting to {venue}: {settings.describe()}")
    started = time.perf_counter()
    try:
        ready, _ = await unless_stopped(runner.start(), stop.event)
        result.start_ns = clock()
        if ready:
            say(_started_text(options, runner, clock()))
            await _until_done(options, clock, stop, session, runner, on_status, status_every)
            # the trading ends here (the clock may have stepped past the end); the cancels and flatten follow
            result.end_ns = clock() if options.duration is None else min(clock(), _end(result, options))
            result.flatten_failed = await _wind_down(runner, options.flatten)
        result.bars = list(runner.bars)
        result.end_ns = result.end_ns or clock()
        if ready:  # a run stopped while connecting has no state worth showing
            result.final = session.status()
            if on_status is not None:
                on_status(session, runner)
    finally:
        await session.stop()
        result.wall_seconds = round(time.perf_counter() - started, 3)


def _end(result: LiveRunResult, options: LiveRunOptions) -> int:
    return result.start_ns + round((options.duration or 0) * NS_PER_SECOND)


def _started_text(options: LiveRunOptions, runner: LiveRunner, now_ns: int) -> str:
    inst = runner.instrument
    when = datetime.fromtimestamp(now_ns / NS_PER_SECOND, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    mode = ""
    if options.sim:
        mode = " (simulated market, " + (
            f"seed {options.seed} replayed bar by bar in lockstep)" if options.lockstep
            else f"seed {options.seed} at {options.sim_speed:g}x)"
        )  # fmt: skip
    until = f"for {options.duration:g} market seconds" if options.duration else "until Ctrl-C or SIGTERM"
    key = inst.key if inst is not None else options.symbol
    return (
        f"trading {options.strategy.name} on {key} ({options.bar} bars) at market time {when}{mode}, {until}"
    )


async def _until_done(
    options: LiveRunOptions,
    clock: Callable[[], int],
    stop: StopSignals,
    session: TradingSession,
    runner: LiveRunner,
    on_status: StatusCallback | None,
    status_every: float,
) -> None:
    start_ns = clock()
    end_ns = None if options.duration is None else start_ns + round(options.duration * NS_PER_SECOND)
    next_status = 0.0
    while not stop.requested and (end_ns is None or clock() < end_ns):
        now = time.perf_counter()
        if on_status is not None and now >= next_status:
            on_status(session, runner)
            next_status = now + status_every
        await asyncio.sleep(0.02)


async def _wind_down(runner: LiveRunner, flatten: bool) -> str:
    """Stop the strategy, cancel its working orders, flatten (if asked); why the book is not flat, if not."""
    await runner.stop(flatten=flatten)
    if not flatten or runner.instrument is None:
        return ""
    left = runner.session.om.risk.position(runner.instrument)
    if not left:
        return ""
    state = runner.session.state.value
    return f"position {runner.instrument.key} {left:+d} is still open (session {state}): flatten it at IB"


def describe_final(result: LiveRunResult) -> dict[str, Any]:
    """The final state as plain data: positions, open orders, P&L, what stopped the run."""
    final = result.final
    return {
        "stopped_by": result.stopped_by or "duration",
        "traded": final is not None,  # False: stopped before the session was ready, nothing was sent
        "positions": dict(final.positions) if final is not None else {},
        "open_orders": list(final.open_orders) if final is not None else [],
        "realized_pnl": final.realized_pnl if final is not None else None,
        "day_pnl": final.day_pnl if final is not None else None,
        "flatten_failed": result.flatten_failed,
    }

"""The trading node: one process, one asyncio loop, one IB order connection, one OMS, one records database,
hosting any number of strategies (several, on several instruments) and doors (the TradingView webhook now;
the gateway, control API and dashboard next). It prints nothing: surfaces pass callbacks and render results.

What it promises:
- one `TradingSession` (one IB order connection, one `OrderManager`, one `RiskManager`): max position, max
  order size, daily loss and the kill switch are one budget for every strategy and every door, whichever
  of them sent the order;
- one `OrderIntake` (`node.intake`): every order that does not come from a strategy enters through it
  (validate, de-duplicate, the node's risk checks, write-ahead record, send);
- the session qualifies every instrument a strategy trades (and `NodeOptions.symbols`, the doors' ones)
  before anything may act; the strategies and doors start only once it has reconciled with IB;
- SIGINT / SIGTERM (`ibot.aio.StopSignals`) stop it gracefully, in this order: the doors (no new order
  enters), then the strategies (market data stops, working orders cancelled, positions flattened when
  `flatten`), then the session and the records. A second signal forces the exit (`ForcedStop`); every
  order and fill is already committed, each when it happened;
- "this run" is the orders this run created (`NodeResult.order_ids`), whatever the records file held before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ibot.aio import StopSignals, unless_stopped
from ibot.brokers.ib.config import ClientRole
from ibot.model import catalog
from ibot.model.errors import IbotError, ParameterError
from ibot.model.market import NS_PER_SECOND, Bar
from ibot.oms.risk import RiskLimits

if TYPE_CHECKING:
    from ibot.brokers.ib.config import IBSettings
    from ibot.brokers.ib.connection import MarketClock
    from ibot.brokers.ib.factory import IBVenue
    from ibot.engine.runner import LiveRunner
    from ibot.engine.session import SessionStatus, TradingSession
    from ibot.oms.intake import OrderIntake
    from ibot.oms.records import OrderRecords
    from ibot.sim.server import SimServer
    from ibot.strategy.base import Strategy

__all__ = [
    "SIM_START",
    "Component",
    "NodeNotStartedError",
    "NodeOptions",
    "NodeResult",
    "StrategyOutcome",
    "StrategySpec",
    "TradingNode",
    "check_node_options",
    "describe_final",
    "replay_session",
]

log = logging.getLogger("ibot.app")

# Where `--sim` puts the simulated market unless told otherwise: a Wednesday at the RTH open (08:30 Chicago),
# so CME Globex is open and the risk checks' trading-hours rule lets orders through.
SIM_START = datetime(2025, 3, 5, 14, 30, tzinfo=UTC)
REPLAY_MARGIN_S = 3600  # market seconds replayed past a lockstep run's end (its stop's orders fill there)


class NodeNotStartedError(IbotError, RuntimeError):
    """The node's session, intake or records were asked for before `start()` (or after `stop()`)."""


@runtime_checkable
class Component(Protocol):
    """A door or service the node hosts. `start` runs once the session is ready (it may use `node.intake`,
    `node.session`, `node.records`); `stop` is graceful (the node calls it first on SIGINT/SIGTERM, before
    the strategies stop); `status` is one short text for the node's status line."""

    name: str

    async def start(self, node: TradingNode) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """One strategy on one instrument: its name, symbol, bar size and `k=v` parameters. `instance` is a
    strategy already built (a service that built it itself); `strategy` and `params` are then not read."""

    strategy: str
    symbol: str
    bar: str = "5min"
    params: tuple[str, ...] = ()
    instance: Strategy | None = field(default=None, compare=False)

    def build(self) -> Strategy:
        """The strategy object (ParameterError names an unknown strategy or a bad parameter)."""
        if self.instance is not None:
            return self.instance
        from ibot.app.strategies import make_strategy

        return make_strategy(self.strategy, self.params)

    @property
    def name(self) -> str:
        return self.instance.name if self.instance is not None else self.strategy


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """What the node hosts and where it trades. `duration`: market seconds (None: until a signal);
    `symbols`: instruments the doors trade besides the strategies' ones (qualified at start); `risk`: the
    one budget of every strategy and door; `role`: the client-id range of the order connection (the
    TradingView range for a standalone webhook). `warmup_bars`: closed bars filling each strategy's indicators
    before it may act (0: none; a lockstep replay starts cold); `data_dir`: where the stored continuous
    series for the warm-up is read (None: the configured data directory, or none at all with `sim`, whose
    prices are not the stored market's)."""

    strategies: tuple[StrategySpec, ...]
    records_url: str
    sim: bool = False
    sim_speed: float = 60.0
    sim_start: datetime | None = None
    seed: int = 7
    lockstep: bool = False
    duration: float | None = None
    flatten: bool = True
    role: ClientRole = ClientRole.ORDER_MANAGER
    risk: RiskLimits = field(default_factory=RiskLimits)
    symbols: tuple[str, ...] = ()
    records_sync: str | None = None
    intake_window: float = 600.0  # seconds an idempotency key is remembered
    ready_timeout: float = 30.0  # wall seconds for the session to connect and reconcile
    warmup_bars: int = 500
    data_dir: Path | None = None

    @property
    def market_symbols(self) -> tuple[str, ...]:
        """Every symbol the session must qualify: the strategies' ones, then the doors', each once."""
        names = [s.symbol.upper() for s in self.strategies] + [s.upper() for s in self.symbols]
        return tuple(dict.fromkeys(names))


@dataclass(slots=True)
class StrategyOutcome:
    """One strategy's part of a run: what it traded and the bars it saw."""

    name: str
    symbol: str
    instrument: str  # the qualified instrument key ("MESH5"), or the symbol if it never started
    bar: str
    bars: list[Bar] = field(default_factory=list)
    strategy_errors: int = 0


@dataclass(slots=True)
class NodeResult:
    """How a node run went: its orders (client ids), each strategy's bars, market and wall time, what
    stopped it, the final state, and each component's last status."""

    records_url: str
    simulated: bool
    start_ns: int = 0
    end_ns: int = 0
    wall_seconds: float = 0.0
    order_ids: set[str] = field(default_factory=set)
    strategies: list[StrategyOutcome] = field(default_factory=list)
    components: dict[str, str] = field(default_factory=dict)
    stopped_by: str = ""  # "" (duration reached), "SIGINT", "SIGTERM", "stop" (the caller's event)
    final: SessionStatus | None = None
    flatten_failed: tuple[str, ...] = ()  # why a strategy's position is not flat after a flattening stop

    @property
    def market_seconds(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_SECOND

    @property
    def traded(self) -> bool:
        """False: stopped before the session was ready (nothing was sent)."""
        return self.final is not None


def describe_final(result: NodeResult) -> dict[str, Any]:
    """The final state as plain data: positions, open orders, P&L, what stopped the run, what is not flat."""
    final = result.final
    return {
        "stopped_by": result.stopped_by or "duration",
        "traded": result.traded,  # False: stopped before the session was ready, nothing was sent
        "positions": dict(final.positions) if final is not None else {},
        "open_orders": list(final.open_orders) if final is not None else [],
        "realized_pnl": final.realized_pnl if final is not None else None,
        "day_pnl": final.day_pnl if final is not None else None,
        "flatten_failed": "; ".join(result.flatten_failed),
    }


NodeCallback = Callable[["TradingNode"], None]
NoticeCallback = Callable[[str], None]


def check_node_options(options: NodeOptions) -> None:
    """Refuse a node that cannot start (bar sizes, symbols, lockstep, IB settings) before anything is
    created: one sentence naming what was wrong."""
    from ibot.data.bars import parse_interval

    day = (options.sim_start or SIM_START).date()
    for spec in options.strategies:
        if parse_interval(spec.bar) % (5 * NS_PER_SECOND):
            raise ParameterError(
                f"--bar {spec.bar!r}: live bars are built from IB's 5-second bars; use a multiple of 5 s"
            )
        catalog.resolve(spec.symbol, day)  # UnknownSymbolError names it
    for symbol in options.symbols:
        catalog.resolve(symbol, day)
    if options.warmup_bars < 0:
        raise ParameterError(f"warm-up bars must be 0 (none) or more, not {options.warmup_bars}")
    if not options.market_symbols:
        raise ParameterError("the node trades nothing: give a strategy and symbol, or [node] symbols")
    if options.lockstep:
        if not options.sim:
            raise ParameterError("--lockstep needs --sim (the built-in simulator)")
        if not options.strategies:
            raise ParameterError("--lockstep steps the market bar by bar for strategies: give one")
        bars = sorted({spec.bar for spec in options.strategies})
        if len({parse_interval(b) for b in bars}) > 1:
            raise ParameterError(f"--lockstep: every strategy must use one bar size (got {', '.join(bars)})")
    if not options.sim:
        from ibot.brokers.ib.config import load_ib_settings

        settings = load_ib_settings()  # ConfigError names the key or variable
        settings.client_ids.check(options.role, settings.client_id_for(options.role))
    labels = [_label(spec) for spec in options.strategies]
    if len(set(labels)) != len(labels):
        raise ParameterError(f"a strategy is given twice on the same symbol: {', '.join(labels)}")


def _label(spec: StrategySpec) -> str:
    return f"{spec.name}:{spec.symbol.upper()}"


class TradingNode:
    """The node: `await run()` (start, until the duration or a signal, stop), or `await start()` ..
    `await stop()` for a caller that drives it. `add()` components before starting."""

    def __init__(
        self,
        options: NodeOptions,
        *,
        settings: IBSettings | None = None,
        market_clock: MarketClock | None = None,
        venue: IBVenue | None = None,
        notice: NoticeCallback | None = None,
        on_status: NodeCallback | None = None,
        status_every: float = 1.0,
    ) -> None:
        """`settings`/`market_clock`/`venue` point the node at an IB it does not start itself (tests, an
        external simulator); by default it reads the IB settings, or starts a simulator with `options.sim`.
        `notice(text)` receives the start-up line and what a stop does; `on_status(node)` is called every
        `status_every` wall seconds while trading and once at the end."""
        if settings is None and venue is None:
            check_node_options(options)
        self.options = options
        self.components: list[Component] = []
        self.runners: list[LiveRunner] = []
        self.server: SimServer | None = None
        self.result = NodeResult(options.records_url, options.sim)
        self._settings = settings
        self._market_clock = market_clock
        self._venue = venue
        self._say = notice or (lambda _text: None)
        self._on_status = on_status
        self._status_every = status_every
        self._session: TradingSession | None = None
        self._intake: OrderIntake | None = None
        self._records: OrderRecords | None = None
        self._known: set[str] = set()
        self._started: list[Component] = []
        self._wall_start = 0.0
        self._ready = False

    # --- what components use --------------------------------------------------------------------------------
    @property
    def session(self) -> TradingSession:
        """The one trading session: one IB order connection, one OMS, one risk budget."""
        if self._session is None:
            raise NodeNotStartedError("the node's session is not started")
        return self._session

    @property
    def intake(self) -> OrderIntake:
        """The one path for every order that does not come from a strategy."""
        if self._intake is None:
            raise NodeNotStartedError("the node's order intake is not started")
        return self._intake

    @property
    def records(self) -> OrderRecords:
        if self._records is None:
            raise NodeNotStartedError("the node's records database is not open")
        return self._records

    @property
    def clock(self) -> MarketClock:
        """The market's time (ns), as the session reads it."""
        return self.session.market_clock

    @property
    def ready(self) -> bool:
        return self._ready

    def add(self, component: Component) -> None:
        """Host `component` (started after the strategies, stopped before them)."""
        if any(c.name == component.name for c in self.components):
            raise ParameterError(f"the node already hosts a component named {component.name!r}")
        self.components.append(component)

    # --- life cycle -----------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> NodeResult:
        """Start everything, trade until `duration` market seconds have passed, `stop` is set or (when no
        event is given) SIGINT/SIGTERM arrives; then stop doors, strategies and the session, in that order."""
        if stop is not None:
            return await self._run(stop, lambda: "stop" if stop.is_set() else "")
        flattens = self.options.flatten and bool(self.options.strategies)  # a door's positions stay open
        with StopSignals(on_first=lambda name: self._say(_stopping_text(name, flattens))) as sig:
            return await self._run(sig.event, lambda: sig.name)

    async def _run(self, stop: asyncio.Event, stopped_by: Callable[[], str]) -> NodeResult:
        result = self.result
        try:
            ready = await self.start(stop)
            if ready:
                self._say(self.started_text())
                await self._until_done(stop)
                result.end_ns = self._trading_end()
        finally:
            result.stopped_by = stopped_by()
            await self.stop()
        return result

    async def start(self, stop: asyncio.Event | None = None) -> bool:
        """Open the records, start the venue (a simulator with `sim`), the session, the intake, the
        strategies (once the session is ready) and the components. False when `stop` was set first."""
        from ibot.oms.database import open_records

        self._wall_start = time.perf_counter()
        stop = stop or asyncio.Event()
        records = open_records(self.options.records_url, sync=self.options.records_sync)
        self._records = records
        self._known = {o.client_order_id for o in records.orders()}
        self._build_session(await self._ib_settings())
        self._say(f"connecting to {self._venue_name()}: {self.session.settings.describe()}")
        ready, _ = await unless_stopped(self._start_trading(), stop)
        if not ready:
            return False
        self.result.start_ns = self.clock()
        for component in self.components:
            await component.start(self)
            self._started.append(component)
        self._ready = True
        return True

    async def stop(self) -> None:
        """Doors first (no new order enters), then strategies (cancel, flatten when `flatten`), then the
        session, the simulator and the records. Safe to call more than once."""
        result = self.result
        for component in reversed(self._started):
            try:
                await component.stop()
            except Exception:
                log.exception("node: component %s failed to stop", component.name)
            result.components[component.name] = _safe_status(component)
        self._started.clear()
        if self._session is not None:
            if self._ready and not result.end_ns:
                result.end_ns = self.clock()
            result.flatten_failed = await self._wind_down()
            result.strategies = [_outcome(r) for r in self.runners]
            result.end_ns = result.end_ns or self.clock()
            if self._ready:
                result.final = self._session.status()
                if self._on_status is not None:
                    self._on_status(self)
            await self._session.stop()
            self._session = None
        self._ready = False
        self._intake = None
        if self.server is not None:
            await self.server.stop()
            self.server = None
        if self._records is not None:
            result.order_ids = {o.client_order_id for o in self._records.orders()} - self._known
            self._records.close()
            self._records = None
        result.wall_seconds = round(time.perf_counter() - self._wall_start, 3)

    def started_text(self) -> str:
        """The start-up line: what trades on which instrument, at which market time, for how long."""
        o = self.options
        when = datetime.fromtimestamp(self.clock() / NS_PER_SECOND, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        what = ", ".join(
            f"{r.strategy.name} on {r.instrument.key if r.instrument else r.symbol} ({r.bar} bars)"
            for r in self.runners
        )
        doors = ", ".join(c.name for c in self.components)
        if not what:
            what = "orders from " + (doors or "no door") + " on " + ", ".join(o.market_symbols)
        elif doors:
            what += f"; doors: {doors}"
        mode = ""
        if o.sim:
            mode = " (simulated market, " + (
                f"seed {o.seed} replayed bar by bar in lockstep)" if o.lockstep
                else f"seed {o.seed} at {o.sim_speed:g}x)"
            )  # fmt: skip
        until = f"for {o.duration:g} market seconds" if o.duration else "until Ctrl-C or SIGTERM"
        return f"trading {what} at market time {when}{mode}, {until}"

    def status(self) -> dict[str, str]:
        """Each component's status text, by name."""
        return {c.name: _safe_status(c) for c in self.components}

    # --- internals: start -----------------------------------------------------------------------------------
    async def _ib_settings(self) -> IBSettings:
        """IB settings and the market clock: given, TWS / IB Gateway from the settings, or a simulator."""
        from ibot.brokers.ib.config import load_ib_settings
        from ibot.model.clock import MarketTime

        if self._venue is not None:
            return self._venue.connection.settings
        if self._settings is not None:
            return self._settings
        if not self.options.sim:
            self._market_clock = self._market_clock or MarketTime()  # IB's data and server time
            return load_ib_settings()
        server = _simulator(self.options)
        self.server = server
        await server.start()
        market = server.market
        self._market_clock = lambda: int(market.now_s * NS_PER_SECOND)
        return load_ib_settings(
            env={},
            overrides={
                "host": "127.0.0.1",
                "port": server.port,
                "role": self.options.role,  # the standalone webhook connects in the TradingView range
                "restart_window": {"enabled": False},
                "reconnect_initial_delay": 0.1,
                "reconnect_max_delay": 1.0,
                "watchdog_poll_seconds": 0.1,
                "stale_after_seconds": max(30.0, 30.0 * self.options.sim_speed / 10),
            },
        )

    def _warmup_dir(self) -> Path | None:
        """Where the warm-up reads stored continuous series: the given data directory; else the configured
        one for IB (none for the simulator: its prices are not the stored market's)."""
        o = self.options
        if o.data_dir is not None or o.sim or not o.warmup_bars:
            return o.data_dir
        from ibot.app.data import data_root

        try:
            return data_root(None)[0]
        except Exception as exc:  # a settings problem is the data commands' to report; warm up from IB
            log.warning("warm-up: no stored series: the data directory is not known (%s)", exc)
            return None

    def _build_session(self, settings: IBSettings) -> None:
        from ibot.brokers.ib.factory import ib_venue
        from ibot.engine.runner import LiveRunner
        from ibot.engine.session import TradingSession

        o = self.options
        venue = self._venue
        if venue is None:
            if settings.on_client_id_in_use != "retry":  # IB reports orders only to the id that placed them
                settings = settings.model_copy(update={"on_client_id_in_use": "retry"})
            venue = ib_venue(settings, o.role, clock=self._market_clock, connect_timeout=o.ready_timeout)
        session = TradingSession(
            settings,
            self.records,
            o.risk,
            symbols=o.market_symbols,
            venue=venue,
            connect_timeout=o.ready_timeout,
        )
        self._session = session
        self._intake = _make_intake(session, o.intake_window)
        for spec in o.strategies:
            self.runners.append(
                LiveRunner(
                    session,
                    spec.build(),
                    spec.symbol.upper(),
                    spec.bar,
                    lockstep=o.lockstep,
                    ready_timeout=o.ready_timeout,
                    name=_label(spec),
                    until_ns=self._lockstep_end(),
                    warmup_bars=o.warmup_bars,
                    data_dir=self._warmup_dir(),
                )
            )
        if o.lockstep:  # one acknowledgement per bar, once every strategy is done with it
            venue.lockstep.expect(r.name for r in self.runners)

    async def _start_trading(self) -> None:
        session = self.session
        await session.start()
        await session.wait_ready(self.options.ready_timeout)
        # reconciled: an intake order a kill -9 kept from IB is placed again, before any door opens
        await self.intake.replace_unsent()
        for runner in self.runners:
            await runner.start()

    # --- internals: trading and stopping --------------------------------------------------------------------
    async def _until_done(self, stop: asyncio.Event) -> None:
        start_ns = self.result.start_ns
        end_ns = (
            None if self.options.duration is None else start_ns + round(self.options.duration * NS_PER_SECOND)
        )
        next_status = 0.0
        while not stop.is_set() and (end_ns is None or self.clock() < end_ns):
            now = time.perf_counter()
            if self._on_status is not None and now >= next_status:
                self._on_status(self)
                next_status = now + self._status_every
            await asyncio.sleep(0.02)

    def _trading_end(self) -> int:
        """The trading ends here (the clock may have stepped past the end); the cancels and flatten follow."""
        now = self.clock()
        if self.options.duration is None:
            return now
        return min(now, self.result.start_ns + round(self.options.duration * NS_PER_SECOND))

    def _lockstep_end(self) -> int | None:
        """In lockstep the run ends at a fixed market time (the replay's start + duration): the strategies
        see no bar past it, whenever the node notices, so the same seed gives the same run."""
        o = self.options
        if not (o.lockstep and o.duration):
            return None
        return int((o.sim_start or SIM_START).timestamp() * NS_PER_SECOND) + round(o.duration * NS_PER_SECOND)

    async def _wind_down(self) -> tuple[str, ...]:
        """Stop every strategy: data off, working orders cancelled, flattened when asked; what is not flat."""
        left: list[str] = []
        flatten = self.options.flatten
        for runner in self.runners:  # no strategy acts once the stop has begun, while the others wind down
            runner.halt()
        for runner in self.runners:
            try:
                await runner.stop(flatten=flatten)
            except Exception:
                log.exception("node: stopping strategy %s failed", runner.name)
        session = self.session
        if flatten and self._ready:
            for key in dict.fromkeys(r.instrument.key for r in self.runners if r.instrument is not None):
                inst = session.instrument(key)
                position = session.om.risk.position(inst)
                if position:
                    left.append(
                        f"position {key} {position:+d} is still open (session {session.state.value}): "
                        "flatten it at IB"
                    )
        return tuple(left)

    def _venue_name(self) -> str:
        return "simulator" if self.options.sim else "TWS / IB Gateway"


def _make_intake(session: TradingSession, window: float) -> OrderIntake:
    """The node's one order intake (`ibot.oms.intake`)."""
    from ibot.oms.intake import OrderIntake

    return OrderIntake(session, window_seconds=window)


def _outcome(runner: LiveRunner) -> StrategyOutcome:
    inst = runner.instrument
    return StrategyOutcome(
        name=runner.strategy.name,
        symbol=runner.symbol,
        instrument=inst.key if inst is not None else runner.symbol,
        bar=runner.bar,
        bars=list(runner.bars),
        strategy_errors=runner.stats.strategy_errors,
    )


def _safe_status(component: Component) -> str:
    try:
        return component.status()
    except Exception as exc:  # a status line must never fail because of one component
        return f"status unavailable ({type(exc).__name__})"


def _stopping_text(signal_name: str, flatten: bool) -> str:
    then = "cancelling working orders and flattening" if flatten else "cancelling working orders"
    return f"{signal_name}: stopping ({then}); a second Ctrl-C forces the exit"


# --- the simulator ------------------------------------------------------------------------------------------


def _simulator(options: NodeOptions) -> SimServer:
    """The in-process simulator: a seeded synthetic market, or (lockstep) its 1-min bars replayed in step,
    for every product the node trades."""
    from ibot.sim.pacing import SimLimits
    from ibot.sim.server import SimServer

    start = options.sim_start or SIM_START
    products = list(dict.fromkeys(catalog.resolve(s, start.date()).symbol for s in options.market_symbols))
    if not options.lockstep:
        return SimServer(port=0, symbols=products, speed=options.sim_speed, seed=options.seed, start=start)
    replay = {p: replay_session(p, start, options.duration, options.seed) for p in products}
    # TWS's 50 messages per wall second do not apply: in lockstep a market minute passes in a millisecond
    return SimServer(
        port=0,
        symbols=products,
        replay=replay,
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
    # an hour of market past the end: the bars the stop's cancels and flatten are matched against
    hi = lo + int(span.total_seconds() + REPLAY_MARGIN_S) * NS_PER_SECOND
    bars = [b for b in frame.bars() if lo <= b.ts < hi]
    if not bars:
        raise ParameterError(
            f"--sim-start {start.isoformat()}: the synthetic {product} market has no bars there"
        )
    return bars

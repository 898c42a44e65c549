"""The live trading session: one IB order-manager connection, its contracts, the OMS and market data, kept
consistent with IB through every failure of the link. No strategy here: the runtime puts one on top.

What it promises:
- `ready` only after connect -> qualify the instruments -> `OrderManager.connect()` (open orders, executions,
  commissions, positions reconciled with IB), and again after every reconnect / 1101 / 1102 only once
  `OrderManager.resync()` has reconciled what happened while the link was down;
- while not ready (socket dropped, 1100, reconciling) `submit` raises `SessionNotReadyError` and nothing is
  recorded or queued: the caller decides what to do with an order it could not place;
- farm messages (2103-2110, 2157/2158), 10197 (competing live session) and stale feeds are degraded reasons in
  `status()` and `SessionEvent`s, never a silent stop;
- IB reports an order's status only to the client id that placed it, so after error 326 the session waits for
  its own client id (``on_client_id_in_use="retry"``) instead of stepping to another one (``keep_client_id``).
The `Clock` the OMS and the risk checks read is advanced from IB's events (market time), never set back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from ibot.aio import cancel_and_wait
from ibot.brokers.ib.broker import IBBroker
from ibot.brokers.ib.config import ClientRole, IBSettings
from ibot.brokers.ib.connection import (
    ConnectionHealth,
    HealthEvent,
    HealthEventKind,
    IBConnection,
    LinkState,
    MarketClock,
)
from ibot.brokers.ib.contracts import ContractResolver
from ibot.brokers.ib.factory import IBVenue, ib_venue
from ibot.brokers.ib.market_data import MarketDataFeed, Subscription
from ibot.exchange.hours import CME_GLOBEX
from ibot.model import catalog
from ibot.model.clock import Clock
from ibot.model.errors import IbotError, UnknownSymbolError
from ibot.model.instruments import Instrument
from ibot.model.market import Tick
from ibot.model.orders import Fill, OrderRequest, OrderUpdate
from ibot.oms.broker import BrokerError, BrokerEvent
from ibot.oms.manager import ManagedOrder, OrderManager, ReconcileReport
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits, RiskManager

__all__ = [
    "SessionEvent",
    "SessionEventKind",
    "SessionNotReadyError",
    "SessionState",
    "SessionStatus",
    "TradingSession",
]

log = logging.getLogger("ibot.engine")

# IB notices that are not errors (TWS API "Message Codes"): 202 order cancelled (after a cancel), farm OK
# 2104/2106/2107/2108/2158, 2100 account updates unsubscribed, 2119 market data farm connecting.
_NOTICES = frozenset({202, 2100, 2104, 2106, 2107, 2108, 2119, 2158})


class SessionNotReadyError(IbotError, RuntimeError):
    """An order request while the session is not ready (link down, IB connectivity lost, reconciling)."""


class SessionState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"  # connecting, qualifying, first reconciliation
    READY = "ready"  # orders may be sent
    PAUSED = "paused"  # link down or 1100: orders refused until reconnected and reconciled
    RECONCILING = "reconciling"  # link back, catching up with IB before orders are allowed again


class SessionEventKind(StrEnum):
    STATE = "state"  # the session state changed (ready / paused / reconciling / stopped)
    RECONCILED = "reconciled"  # a reconciliation finished (`report` says what differed)
    DEGRADED = "degraded"  # a degraded reason appeared or went away (farm, 10197, stale feed)
    ORDER = "order"  # an order changed state
    FILL = "fill"  # an execution was counted
    ERROR = "error"  # IB or the session reported an error (`status().last_error`)
    KILL = "kill"  # the kill switch ran


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One change the runtime may show; `ts` is market time (ns). Call `TradingSession.status()` for more."""

    kind: SessionEventKind
    ts: int
    message: str = ""
    state: SessionState = SessionState.STOPPED
    report: ReconcileReport | None = None


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """A consistent snapshot of the session for a status line: link, feed, degraded reasons, book, errors."""

    state: SessionState
    connection: LinkState
    client_id: int
    feed: str  # "off", "ok", or why not ("stale MESH5:ticks", "competing session", "farm broken ...")
    degraded: tuple[str, ...]
    positions: dict[str, int]  # non-zero positions by instrument key
    realized_pnl: Decimal  # IB's realized P&L (net of fees) of the trading day's closing fills
    day_pnl: Decimal  # realized + unrealized of the trading day, as the risk checks count it
    open_orders: tuple[str, ...]  # client order ids not final
    last_error: str
    kill_switch: str  # "" unless trading is halted
    ts: int
    reconciliations: int = 0

    @property
    def ready(self) -> bool:
        return self.state is SessionState.READY

    def describe(self) -> str:
        """One line: state, link, feed, positions, P&L, open orders, what is degraded, the last error."""
        pos = " ".join(f"{k}:{v:+d}" for k, v in sorted(self.positions.items())) or "flat"
        parts = [
            f"{self.state.value}",
            f"link {self.connection.value} (client {self.client_id})",
            f"feed {self.feed}",
            f"pos {pos}",
            f"realized {self.realized_pnl}",
            f"day {self.day_pnl}",
            f"open {len(self.open_orders)}",
        ]
        if self.degraded:
            parts.append("degraded: " + ", ".join(self.degraded))
        if self.kill_switch:
            parts.append(f"KILLED: {self.kill_switch}")
        if self.last_error:
            parts.append(f"last error: {self.last_error}")
        return " | ".join(parts)


SessionListener = Callable[[SessionEvent], None]


@dataclass(slots=True)
class _Link:
    """What the session knows of the link beyond the connection's health: has it been reconciled since?"""

    generation: int = 0  # bumped on every drop / 1100 / reconnect / 1101 / 1102
    reconciled_generation: int = -1
    reconciliations: int = 0


class TradingSession:
    """The broker side of live trading for a set of instruments: `await start()` .. `await stop()`.

    `symbols` are catalog symbols or local symbols ("MES" = the front month as of IB's trading day);
    `instruments` are taken as given (qualified with IB on start). `market_clock` is the market's time: by
    default the connection's `MarketTime`, fed by IB's data and server time (an in-process simulator's own
    clock may be passed instead); never this machine's wall clock. `market_data` streams ticks of every
    instrument (prices for the risk checks, watched for staleness) over the same connection.

    The IB pieces (connection = health source, Broker port, feed, contract resolver) come from `venue`
    (`ibot.brokers.ib.factory.IBVenue`); without one the session asks the factory for the venue of `role`
    (the order manager's client-id range by default; the TradingView range for a standalone webhook).
    `stop()` closes the venue it runs on.
    """

    def __init__(
        self,
        settings: IBSettings,
        records: OrderRecords,
        risk: RiskLimits,
        clock: Clock | None = None,
        *,
        symbols: Sequence[str] = (),
        instruments: Sequence[Instrument] = (),
        market_clock: MarketClock | None = None,
        market_data: bool = True,
        keep_client_id: bool = True,
        connect_timeout: float = 30.0,
        resync_retry_seconds: float = 1.0,
        id_prefix: str = "ibot",
        venue: IBVenue | None = None,
        role: ClientRole = ClientRole.ORDER_MANAGER,
    ) -> None:
        if not symbols and not instruments:
            raise ValueError("TradingSession needs at least one symbol or instrument to trade")
        if venue is None:
            if keep_client_id and settings.on_client_id_in_use != "retry":
                settings = settings.model_copy(update={"on_client_id_in_use": "retry"})
            # one clock: the connection's market time (fed by IB's data and server time) unless one is given
            venue = ib_venue(settings, role, clock=market_clock, connect_timeout=connect_timeout)
        else:
            settings = venue.connection.settings
        self.settings = settings
        self.records = records
        self.clock = clock or Clock()
        self.venue = venue
        self.role = venue.connection.role
        self.connection: IBConnection = venue.connection  # the health source
        self.market_clock: MarketClock = venue.connection.clock
        self.connect_timeout = connect_timeout
        self.resync_retry_seconds = resync_retry_seconds
        self._symbols = list(symbols)
        self._wanted = list(instruments)
        self.market_data = market_data
        self.contracts: ContractResolver = venue.contracts
        self.broker: IBBroker = venue.broker
        self.feed: MarketDataFeed = venue.feed
        self._instruments: dict[str, Instrument] = {}  # symbol, local symbol and key -> qualified instrument
        self.instruments: list[Instrument] = []
        self.subscriptions: list[Subscription] = []
        self.om = OrderManager(
            self.broker,
            records,
            RiskManager(risk, self.clock),
            self.clock,
            instruments=self._instrument,
            client_id=self.connection.client_id,
            account=settings.account,
            id_prefix=id_prefix,
        )
        self.broker.set_listener(self)  # events pass through here (clock, last error) on to the OMS
        self.om.add_listener(self._on_order_update, self._on_fill)
        self.connection.add_listener(self._on_health)
        self._state = SessionState.STOPPED
        self._link = _Link()
        self._listeners: list[SessionListener] = []
        self._last_error = ""
        self._degraded: tuple[str, ...] = ()
        self._resync_task: asyncio.Task[None] | None = None
        self._kill_pending: str | None = None
        self._ready_event: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self.last_report: ReconcileReport | None = None

    # --- public surface -------------------------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def ready(self) -> bool:
        """True when orders may be sent: connected, IB connectivity intact, reconciled since the last drop."""
        return self._state is SessionState.READY

    def add_listener(self, listener: SessionListener) -> Callable[[], None]:
        """Call `listener` with every SessionEvent; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def instrument(self, symbol: str) -> Instrument:
        """The qualified instrument traded under `symbol` (catalog symbol, local symbol or key)."""
        found = self._instruments.get(symbol.upper())
        if found is None:
            known = sorted({i.key for i in self.instruments} | {i.symbol for i in self.instruments})
            raise UnknownSymbolError(symbol, known)
        return found

    async def qualify(self, symbol: str | Instrument) -> Instrument:
        """The instrument traded under `symbol`, qualified with IB now if this session did not trade it yet
        (then remembered, and its ticks streamed when `market_data`): a door may trade an instrument no
        strategy trades. UnknownSymbolError / ContractError name what IB or the catalog did not know."""
        name = symbol if isinstance(symbol, str) else symbol.key
        found = self._instruments.get(name.upper())
        if found is not None:
            return found
        self.connection.require_connected(f"qualify {name}")
        if isinstance(symbol, str):
            inst = await self.contracts.qualify(symbol)
        else:
            inst = await self.contracts.qualify_instrument(symbol)
        known = self._instruments.get(inst.key.upper())
        self._remember(inst, name)
        if known is not None:
            return known
        self.instruments.append(inst)
        if self.market_data and self._state is not SessionState.STOPPED:
            self.subscriptions.append(self.feed.stream_ticks(inst, on_tick=self._tick_handler(inst)))
        return inst

    def switch_month(self, product: str, inst: Instrument) -> None:
        """From now on `product` ("MES") means the month `inst` (qualified): a roll moved to it."""
        self._remember(inst, "")
        self._instruments[product.upper()] = inst
        self.om.alias(product.upper(), inst)

    async def start(self) -> ReconcileReport:
        """Connect, qualify the instruments, reconcile with IB, start market data; ready when it returns."""
        if self._state is not SessionState.STOPPED:
            raise SessionNotReadyError(f"start: the session is already {self._state.value}")
        self._ready_event = asyncio.Event()
        self._set_state(SessionState.STARTING, f"connecting ({self.settings.describe()})")
        try:
            await self.connection.start(wait=True, timeout=self.connect_timeout)
            await self._qualify()
            generation = self._link.generation
            report = await self.om.connect()
            self.om.client_id = self.connection.client_id
            if self.market_data:
                self._subscribe()
        except BaseException as exc:
            self._error(f"start failed: {type(exc).__name__}: {exc}")
            await self._shutdown()
            raise
        self._reconciled(report, generation)
        return report

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Return once the session is ready (SessionNotReadyError after `timeout` seconds)."""
        if self._ready_event is None:
            raise SessionNotReadyError("wait_ready: start() the session first")
        try:
            await asyncio.wait_for(self._ready_event.wait(), timeout)
        except TimeoutError:
            raise SessionNotReadyError(
                f"the session is still {self._state.value} after {timeout} s "
                f"({self.connection.health.describe()})"
            ) from None

    async def stop(self) -> None:
        """Stop market data, reconnects and the link; orders at IB keep working (cancel them first if not)."""
        await self._shutdown()
        self._emit(SessionEventKind.STATE, "stopped")

    async def submit(
        self, request: OrderRequest, *, strategy: str = "", flatten: bool = False
    ) -> ManagedOrder:
        """Risk-check, record and send an order; SessionNotReadyError (nothing recorded) unless ready.
        `flatten`: a close-out, checked only for sanity and for reducing the position (RiskManager.check)."""
        self._require_ready(f"submit {request.side} {request.quantity} {request.symbol}")
        self.instrument(request.symbol)  # only what this session trades (UnknownSymbolError otherwise)
        self.clock.advance(self.market_clock())
        return await self.om.submit(request, strategy=strategy, flatten=flatten)

    async def cancel(self, client_order_id: str) -> bool:
        """Cancel one order; False when it is already final."""
        self._require_ready(f"cancel {client_order_id}")
        return await self.om.cancel(client_order_id)

    async def cancel_all(self) -> None:
        """Cancel every working order of the account (IB: global cancel)."""
        self._require_ready("cancel all")
        await self.om.cancel_all()

    async def kill(self, reason: str = "manual kill switch") -> list[ManagedOrder]:
        """Halt trading: cancel everything and flatten at market. While not ready the switch is tripped now
        and the cancel/flatten run as soon as the session has reconciled."""
        self._emit(SessionEventKind.KILL, reason)
        if not self.ready:
            self.om.risk.trip(reason, self.clock.ns)
            self._kill_pending = reason
            log.error("kill switch while %s: cancel and flatten after reconnecting: %s", self._state, reason)
            return []
        return await self.om.kill(reason)

    def status(self) -> SessionStatus:
        """The snapshot a status line shows (reads the day's fills from the records)."""
        health = self.connection.health
        positions = {k: v for k, v in self.om.risk.positions().items() if v}
        ks = self.om.risk.kill_switch
        return SessionStatus(
            state=self._state,
            connection=health.state,
            client_id=health.client_id,
            feed=self._feed_state(health),
            degraded=self._degraded_reasons(health),
            positions=positions,
            realized_pnl=self._realized_today(),
            day_pnl=self.om.risk.day_pnl(),
            open_orders=tuple(m.client_order_id for m in self.om.working_orders()),
            last_error=self._last_error,
            kill_switch=ks.reason if ks is not None else "",
            ts=self.market_clock(),
            reconciliations=self._link.reconciliations,
        )

    # --- BrokerListener: every IB event passes here on its way to the OMS -----------------------------------
    def on_broker_event(self, event: BrokerEvent) -> None:
        self.clock.advance(event.ts)
        if isinstance(event, BrokerError) and event.order_id is None and event.code in _NOTICES:
            return  # a farm-OK notice concerns no order: the adapter logged it (INFO), the OMS has no use
        integrity = len(self.om.integrity_errors)
        try:
            self.om.on_broker_event(event)
        except Exception as exc:  # e.g. the records database refused a write: say so loudly, keep the link
            log.exception("processing %s failed", type(event).__name__)
            self._error(f"processing {type(event).__name__} failed: {type(exc).__name__}: {exc}")
            return
        for text in self.om.integrity_errors[integrity:]:  # an exec id naming two executions: degraded
            self._error(text, logged=True)  # the OMS logged it as an ERROR
        if isinstance(event, BrokerError) and event.code not in _NOTICES:
            where = f" (order id {event.order_id})" if event.order_id is not None else ""
            # the IB adapter has logged the message once already ("IB message ..."): kept, not logged again
            self._error(f"IB error {event.code}{where}: {event.message}", logged=True)

    # --- internals: start -----------------------------------------------------------------------------------
    async def _qualify(self) -> None:
        found: list[Instrument] = []
        for symbol in self._symbols:
            inst = await self.contracts.qualify(symbol)
            self._remember(inst, symbol)
            found.append(inst)
        for wanted in self._wanted:
            inst = await self.contracts.qualify_instrument(wanted)
            self._remember(inst, wanted.symbol if wanted.symbol not in self._instruments else "")
            found.append(inst)
        self.instruments = found

    def _remember(self, inst: Instrument, alias: str) -> None:
        for name in {alias, inst.key, inst.local_symbol, inst.symbol}:
            if name:
                self._instruments.setdefault(name.upper(), inst)

    def _instrument(self, symbol: str) -> Instrument:
        """The OMS's lookup: a traded (qualified) instrument, else the catalog's month (records of an order
        in a month this session does not trade, or loaded before start())."""
        found = self._instruments.get(symbol.upper())
        if found is not None:
            return found
        asof = self.clock.now().date() if self.clock.ns else date.today()
        return catalog.resolve(symbol, asof)

    def _subscribe(self) -> None:
        for inst in self.instruments:
            self.subscriptions.append(self.feed.stream_ticks(inst, on_tick=self._tick_handler(inst)))

    def _tick_handler(self, inst: Instrument) -> Callable[[Tick], None]:
        def on_tick(tick: Tick) -> None:
            self.clock.advance(tick.ts)
            if math.isfinite(tick.last) and tick.last > 0:
                self.om.on_price(inst, tick.last, tick.ts)

        return on_tick

    async def _shutdown(self) -> None:
        self._state = SessionState.STOPPED
        task, self._resync_task = self._resync_task, None
        await cancel_and_wait([task])
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        with contextlib.suppress(Exception):
            self.feed.cancel_all()
        self.subscriptions.clear()
        with contextlib.suppress(Exception):
            await self.om.drain()
        await self.venue.close()  # disconnects, and the factory forgets it: a restart builds a fresh venue
        if self._ready_event is not None:
            self._ready_event.clear()

    # --- internals: the link --------------------------------------------------------------------------------
    def _on_health(self, event: HealthEvent) -> None:
        self.clock.advance(event.ts)
        kind = event.kind
        if self._state is SessionState.STOPPED:
            return
        if kind in (HealthEventKind.DISCONNECTED, HealthEventKind.CONNECTIVITY_LOST):
            self._link.generation += 1
            what = "socket closed" if kind is HealthEventKind.DISCONNECTED else "1100 IB connectivity lost"
            if self._state is not SessionState.STARTING:
                self._set_state(SessionState.PAUSED, f"{what}: orders refused until reconciled")
        elif kind in (
            HealthEventKind.CONNECTED,
            HealthEventKind.RESTORED_DATA_LOST,
            HealthEventKind.RESTORED_DATA_KEPT,
        ):
            self._link.generation += 1
            if self._state is not SessionState.STARTING:  # start() reconciles the first connection itself
                self._set_state(SessionState.RECONCILING, f"{kind.value}: reconciling with IB")
                self._schedule_resync()
        elif kind in (HealthEventKind.CLIENT_ID_IN_USE, HealthEventKind.CONNECT_FAILED):
            self._error(f"{kind.value}: {event.message}")
        self._update_degraded(event)

    def _schedule_resync(self) -> None:
        if self._resync_task is None or self._resync_task.done():
            self._resync_task = asyncio.ensure_future(self._resync_loop())

    async def _resync_loop(self) -> None:
        """Reconcile until a reconciliation finished with no link change during it; then ready."""
        while self._state is not SessionState.STOPPED:
            if self.connection.health.trading_paused or not self.connection.is_connected:
                return  # the next reconnect / 1101 / 1102 schedules another
            generation = self._link.generation
            try:
                report = await self.om.resync()
            except Exception as exc:
                self._error(f"reconcile failed: {type(exc).__name__}: {exc}")
                await asyncio.sleep(self.resync_retry_seconds)
                continue
            if generation != self._link.generation:
                continue  # the link changed while we read IB's state: read it again
            self.om.client_id = self.connection.client_id
            self._reconciled(report, generation)
            return

    def _reconciled(self, report: ReconcileReport, generation: int) -> None:
        self._link.reconciled_generation = generation
        self._link.reconciliations += 1
        self.last_report = report
        summary = _describe_report(report)
        log.info("session reconciled with IB: %s", summary)
        self._emit(SessionEventKind.RECONCILED, summary, report)
        health = self.connection.health
        if health.trading_paused or not self.connection.is_connected:
            self._set_state(SessionState.PAUSED, "link lost during reconciliation")
            return
        if generation != self._link.generation:  # the link changed while start() reconciled: again
            self._set_state(SessionState.RECONCILING, "link changed during reconciliation")
            self._schedule_resync()
            return
        self._set_state(SessionState.READY, "reconciled with IB: orders allowed")
        pending = self._kill_pending or self.om.kill_pending
        if pending:
            self._kill_pending = None
            task = asyncio.ensure_future(self.om.kill(pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _update_degraded(self, event: HealthEvent) -> None:
        reasons = self._degraded_reasons(self.connection.health)
        if reasons != self._degraded:
            self._degraded = reasons
            self._emit(SessionEventKind.DEGRADED, f"{event.kind.value}: " + ("; ".join(reasons) or "healthy"))

    def _degraded_reasons(self, h: ConnectionHealth) -> tuple[str, ...]:
        out: list[str] = []
        if h.state is not LinkState.CONNECTED and self._state is not SessionState.STOPPED:
            out.append(f"link {h.state.value}")
        if not h.ib_connectivity:
            out.append("IB connectivity lost (1100)")
        out += [f"farm broken {farm}" for farm in sorted(h.broken_farms)]
        if h.competing_session:
            out.append("competing live session (10197): no market data")
        out += [f"stale feed {key}" for key in sorted(h.stale_feeds)]
        if self._state is SessionState.RECONCILING:
            out.append("reconciling")
        if self.om.integrity_errors:
            out.append(f"records integrity: {len(self.om.integrity_errors)} execution(s) kept aside")
        return tuple(out)

    def _feed_state(self, h: ConnectionHealth) -> str:
        if not self.market_data:
            return "off"
        if h.state is not LinkState.CONNECTED or not h.ib_connectivity:
            return "down"
        why = [f"farm broken {f}" for f in sorted(h.broken_farms) if f.startswith("market")]
        if h.competing_session:
            why.append("competing session")
        why += [f"stale {k}" for k in sorted(h.stale_feeds)]
        return "; ".join(why) or "ok"

    # --- internals: events ----------------------------------------------------------------------------------
    def _require_ready(self, what: str) -> None:
        if not self.ready:
            h = self.connection.health
            raise SessionNotReadyError(
                f"{what}: refused, the trading session is {self._state.value} ({h.describe()}); "
                "nothing was recorded or sent"
            )

    def _set_state(self, state: SessionState, message: str) -> None:
        if state is self._state:
            return
        self._state = state
        log.info("session %s: %s", state.value, message)
        if self._ready_event is not None:
            if state is SessionState.READY:
                self._ready_event.set()
            else:
                self._ready_event.clear()
        self._emit(SessionEventKind.STATE, message)

    def _error(self, message: str, *, logged: bool = False) -> None:
        self._last_error = message
        if not logged:
            log.warning("session: %s", message)
        self._emit(SessionEventKind.ERROR, message)

    def _on_order_update(self, update: OrderUpdate) -> None:
        self._emit(
            SessionEventKind.ORDER, f"{update.client_order_id} {update.status} {update.message}".strip()
        )

    def _on_fill(self, fill: Fill) -> None:
        self._emit(
            SessionEventKind.FILL,
            f"{fill.client_order_id} {fill.side} {fill.quantity} {fill.symbol} @ {fill.price} "
            f"({fill.exec_id})",
        )

    def _emit(self, kind: SessionEventKind, message: str, report: ReconcileReport | None = None) -> None:
        event = SessionEvent(kind, self.market_clock(), message, self._state, report)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("session listener failed on %s", kind.value)

    def _realized_today(self) -> Decimal:
        now = self.clock.ns or self.market_clock()
        day_start, _ = CME_GLOBEX.nominal_open_close(CME_GLOBEX.session_date(now))
        fills = self.records.executions(since_ts=day_start)
        return sum((f.realized_pnl for f in fills if f.realized_pnl is not None), Decimal(0))


def _describe_report(r: ReconcileReport) -> str:
    """The reconciliation in one line: "clean", or what differed and how it is explained."""
    return r.describe()

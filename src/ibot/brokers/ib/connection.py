"""One supervised ib_async connection per client role, and the health model of the link it keeps alive.

What it promises:
- connect with exponential backoff, and reconnect whenever the socket drops;
- error 326 (client id in use, e.g. the old session still lingers after a fast reconnect): retry the same id
  with backoff, or step to the next id of the role's range (``IBSettings.on_client_id_in_use``);
- 1100 pauses trading, 1101 resumes it and resubscribes all market data (IB dropped it), 1102 resumes it;
  farm messages 2103-2108/2110/2157/2158 and 10197 (competing live session) kept as a degraded-status model;
- a data watchdog that marks a feed stale after N seconds of market time without data during trading hours;
- IB's daily restart window: no reconnect attempts inside it, one reconnect after it ends;
- one clock, the market's: unless a source is given, `clock` is a `MarketTime` fed by the data (5-s bar
  ends and last-trade times from `market_data`, IB's server time asked on every connect and again whenever
  the data has been silent for a while), so the restart window, the watchdog and every event's `ts` read the
  market's time, never this machine's wall clock (a simulator at speed 1200 is read at its own time).
Every change is a `HealthEvent` to listeners; `health` is always a consistent snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from ib_async import IB
from ib_async.ib import StartupFetch, StartupFetchALL, StartupFetchNONE

from ibot.aio import cancel_and_wait
from ibot.brokers.ib.config import ClientRole, IBSettings
from ibot.brokers.ib.messages import install_log_filter
from ibot.exchange.hours import CME_GLOBEX, TradingHours
from ibot.model.clock import MarketTime
from ibot.model.errors import IbotError
from ibot.model.market import NS_PER_SECOND, datetime_to_ns

__all__ = [
    "ClientIdInUseError",
    "ConnectionHealth",
    "FeedWatchdog",
    "HealthEvent",
    "HealthEventKind",
    "IBConnection",
    "IBConnectionError",
    "LinkState",
    "MarketClock",
    "NotConnectedError",
    "classify_message",
]

log = logging.getLogger("ibot.brokers.ib")

MarketClock = Callable[[], int]
"""Market time now, UTC ns (0 = not known yet). Live: a `MarketTime` fed by IB's data and server time (which
is the real time against real IB); an in-process simulator may be read directly instead."""

_TIME_SYNC_AFTER_SILENCE = 2.0  # wall seconds without market data before IB's server time is asked again
_TIME_SYNC_TIMEOUT = 5.0

# IB message codes (TWS API "Message Codes"):
CLIENT_ID_IN_USE = 326
CONNECTIVITY_LOST = 1100
RESTORED_DATA_LOST = 1101
RESTORED_DATA_KEPT = 1102
COMPETING_SESSION = 10197
_FARM_BROKEN = {2103: "market", 2105: "hmds", 2157: "secdef", 2110: "ib-server"}
_FARM_OK = {2104: "market", 2106: "hmds", 2107: "hmds", 2108: "market", 2158: "secdef"}


class IBConnectionError(IbotError, ConnectionError):
    """The adapter could not reach, or lost, TWS / IB Gateway."""


class ClientIdInUseError(IBConnectionError):
    """TWS refused the client id (error 326): another live session holds it."""

    def __init__(self, client_id: int, message: str) -> None:
        super().__init__(f"client id {client_id} is already in use at TWS (error 326): {message}")
        self.client_id = client_id


class NotConnectedError(IBConnectionError):
    """A request needs a live connection and there is none (or trading is paused)."""


class LinkState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RESTART_WINDOW = "restart_window"
    STOPPED = "stopped"


class HealthEventKind(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CONNECT_FAILED = "connect_failed"
    CLIENT_ID_IN_USE = "client_id_in_use"  # 326
    RESTART_WINDOW = "restart_window"  # waiting for IB's daily restart to end
    CONNECTIVITY_LOST = "connectivity_lost"  # 1100: trading paused
    RESTORED_DATA_LOST = "restored_data_lost"  # 1101: trading resumed, market data resubscribed
    RESTORED_DATA_KEPT = "restored_data_kept"  # 1102: trading resumed
    RESUBSCRIBED = "resubscribed"  # market data requested again (after 1101 or a reconnect)
    FARM_BROKEN = "farm_broken"  # 2103 / 2105 / 2157 / 2110
    FARM_OK = "farm_ok"  # 2104 / 2106 / 2107 / 2108 / 2158
    COMPETING_SESSION = "competing_session"  # 10197: market data stops
    FEED_STALE = "feed_stale"
    FEED_FRESH = "feed_fresh"


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """One change of the link's health. `ts` is market time (ns); `subject` names the farm or feed."""

    kind: HealthEventKind
    ts: int
    code: int = 0
    message: str = ""
    client_id: int = 0
    subject: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionHealth:
    """Snapshot of the link. Trading is paused unless connected with IB's connectivity intact."""

    state: LinkState = LinkState.DISCONNECTED
    client_id: int = 0
    ib_connectivity: bool = True  # False between 1100 and 1101/1102
    broken_farms: frozenset[str] = frozenset()
    competing_session: bool = False
    stale_feeds: frozenset[str] = frozenset()

    @property
    def trading_paused(self) -> bool:
        return self.state is not LinkState.CONNECTED or not self.ib_connectivity

    @property
    def degraded(self) -> bool:
        return (
            self.trading_paused or bool(self.broken_farms) or self.competing_session or bool(self.stale_feeds)
        )

    def describe(self) -> str:
        parts = [self.state.value, f"client {self.client_id}"]
        if not self.ib_connectivity:
            parts.append("IB connectivity lost")
        if self.broken_farms:
            parts.append("broken farms " + ",".join(sorted(self.broken_farms)))
        if self.competing_session:
            parts.append("competing live session")
        if self.stale_feeds:
            parts.append("stale " + ",".join(sorted(self.stale_feeds)))
        return "; ".join(parts)


def classify_message(code: int, message: str) -> tuple[HealthEventKind, str] | None:
    """The health event an IB status/error message means, with its subject (farm name), or None.

    Farm messages end with the farm's name after a colon ("...connection is broken:usfarm"); the subject is
    ``family:name`` so that usfarm and ushmds are tracked apart. 2110 (TWS <-> IB servers) has no name.
    """
    if code == CONNECTIVITY_LOST:
        return HealthEventKind.CONNECTIVITY_LOST, ""
    if code == RESTORED_DATA_LOST:
        return HealthEventKind.RESTORED_DATA_LOST, ""
    if code == RESTORED_DATA_KEPT:
        return HealthEventKind.RESTORED_DATA_KEPT, ""
    if code == COMPETING_SESSION:
        return HealthEventKind.COMPETING_SESSION, ""
    family = _FARM_BROKEN.get(code)
    kind = HealthEventKind.FARM_BROKEN
    if family is None:
        family = _FARM_OK.get(code)
        kind = HealthEventKind.FARM_OK
    if family is None:
        return None
    if code == 2110:
        return kind, family
    name = message.rsplit(":", 1)[1].strip() if ":" in message else ""
    return kind, f"{family}:{name}" if name else family


@dataclass(slots=True)
class _Feed:
    hours: TradingHours
    last_ns: int
    stale: bool = False


@dataclass(slots=True)
class FeedWatchdog:
    """Marks a feed stale when no data came for `stale_after_ns` of market time while its session was open.

    Silence is counted from the later of the last data and the session's open (or its reopening after a
    holiday halt), so a feed is not stale just because the market was closed (weekend, daily halt, holiday).
    Pure bookkeeping: the caller supplies the times.
    """

    stale_after_ns: int
    _feeds: dict[str, _Feed] = field(default_factory=dict)

    def watch(self, key: str, now_ns: int, hours: TradingHours = CME_GLOBEX) -> None:
        """Start watching `key` as of `now_ns` (a new subscription counts as fresh)."""
        self._feeds[key] = _Feed(hours, now_ns)

    def unwatch(self, key: str) -> bool:
        """Stop watching; True when the feed was stale (so the caller can clear it)."""
        feed = self._feeds.pop(key, None)
        return feed is not None and feed.stale

    def touch(self, key: str, ts_ns: int) -> bool:
        """Data arrived for `key` at `ts_ns`; True when that turned a stale feed fresh."""
        feed = self._feeds.get(key)
        if feed is None:
            return False
        feed.last_ns = max(feed.last_ns, ts_ns)
        if feed.stale:
            feed.stale = False
            return True
        return False

    def check(self, now_ns: int) -> list[str]:
        """Feeds that became stale as of `now_ns` (each reported once until data arrives again)."""
        newly: list[str] = []
        for key, feed in self._feeds.items():
            opened = None if feed.stale else feed.hours.open_since(now_ns)
            if opened is None:
                continue
            if now_ns - max(feed.last_ns, opened) >= self.stale_after_ns:
                feed.stale = True
                newly.append(key)
        return newly

    @property
    def stale(self) -> frozenset[str]:
        return frozenset(k for k, f in self._feeds.items() if f.stale)

    @property
    def keys(self) -> list[str]:
        return list(self._feeds)


Listener = Callable[[HealthEvent], None]
Resubscriber = Callable[[], Awaitable[None] | None]

_DATA_ROLES = {ClientRole.DATA_REALTIME, ClientRole.DATA_HISTORICAL, ClientRole.ACCOUNT_SUMMARY}


class IBConnection:
    """Keeps one `ib_async.IB` connected for a client role (see module doc); `start()` .. `stop()`."""

    def __init__(
        self,
        settings: IBSettings,
        role: ClientRole | None = None,
        *,
        clock: MarketClock | None = None,
        ib: IB | None = None,
    ) -> None:
        self.settings = settings
        self.role = ClientRole(role or settings.role)
        self.id_range = settings.client_ids.range_for(self.role)
        self.preferred_client_id = settings.client_id_for(self.role)
        # a MarketTime (given, or ours) is fed by this connection's data; another source is only read
        self.market_time: MarketTime | None = None
        if clock is None:
            clock = MarketTime()
        if isinstance(clock, MarketTime):
            self.market_time = clock
        self.clock: MarketClock = clock
        install_log_filter()  # ib_async's own lines in ibot's words, each said once
        self._time_sync: asyncio.Task[bool] | None = None
        self._ib = ib or IB()
        self._health = ConnectionHealth(client_id=self.preferred_client_id)
        self._listeners: list[Listener] = []
        self._resubscribers: list[Resubscriber] = []
        self.watchdog = FeedWatchdog(int(settings.stale_after_seconds * NS_PER_SECOND))
        self.attempts = 0  # connect attempts so far (each one a TCP connect to TWS)
        self._supervisor: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._connected: asyncio.Event | None = None
        self._lost: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ib.errorEvent += self._on_error
        self._ib.disconnectedEvent += self._on_disconnected

    # --- public surface -------------------------------------------------------------------------------------
    @property
    def ib(self) -> IB:
        """The ib_async client (for the adapter's own modules only)."""
        return self._ib

    @property
    def health(self) -> ConnectionHealth:
        return self._health

    @property
    def client_id(self) -> int:
        return self._health.client_id

    @property
    def is_connected(self) -> bool:
        return self._health.state is LinkState.CONNECTED and self._ib.isConnected()

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every HealthEvent; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def on_resubscribe(self, callback: Resubscriber) -> None:
        """`callback` (sync or async) re-requests market data: after 1101 and after every reconnect."""
        self._resubscribers.append(callback)

    async def start(self, wait: bool = True, timeout: float | None = None) -> None:
        """Start the supervisor (connect, reconnect) and the watchdog; with `wait`, return once connected."""
        if self._supervisor is None or self._supervisor.done():
            self._connected = asyncio.Event()
            self._supervisor = asyncio.create_task(self._supervise(), name=f"ibot-ib-{self.role.value}")
            self._watchdog_task = asyncio.create_task(self._watch(), name=f"ibot-ib-watchdog-{self.role}")
        if wait:
            await self.wait_connected(timeout)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return when connected; IBConnectionError after `timeout` seconds."""
        if self._connected is None:
            raise NotConnectedError(f"{self._name()}: start() the connection first")
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            raise IBConnectionError(
                f"{self._name()}: not connected to {self.settings.host}:{self.settings.port} "
                f"after {timeout} s ({self.attempts} attempts)"
            ) from None

    async def stop(self) -> None:
        """Stop reconnecting and disconnect."""
        await cancel_and_wait([self._supervisor, self._watchdog_task, *self._tasks])
        self._supervisor = self._watchdog_task = None
        self._set(state=LinkState.STOPPED)
        self._ib.disconnect()

    def require_trading(self, what: str) -> None:
        """Raise NotConnectedError unless orders may be sent now (connected, no 1100 outstanding)."""
        if self._health.trading_paused:
            raise NotConnectedError(f"{what}: trading is paused ({self._health.describe()})")

    def require_connected(self, what: str) -> None:
        if not self.is_connected:
            raise NotConnectedError(f"{what}: not connected to TWS ({self._health.describe()})")

    # --- market time ----------------------------------------------------------------------------------------
    def observe_market_time(self, ts_ns: int) -> None:
        """Data stamped with market time `ts_ns` arrived (a bar's end, a trade's time, IB's server time)."""
        if self.market_time is not None:
            self.market_time.observe(ts_ns)

    async def sync_market_time(self, timeout: float = _TIME_SYNC_TIMEOUT) -> bool:
        """Ask IB for its server time (reqCurrentTime) and observe it; False when it did not answer."""
        if self.market_time is None or not self._ib.isConnected():
            return False
        try:
            when = await asyncio.wait_for(self._ib.reqCurrentTimeAsync(), timeout)
        except Exception as exc:  # a probe: no answer (timeout, link lost, an error) is said, not raised
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.warning("%s: IB did not tell its time (%s); market time follows the data", self._name(), why)
            return False
        self.market_time.observe(datetime_to_ns(when))
        return True

    def _sync_if_silent(self) -> None:
        """Market closed or quiet: no data moves the clock, so ask IB's server time now and then."""
        mt = self.market_time
        if mt is None or not self.is_connected or mt.silent_for() < _TIME_SYNC_AFTER_SILENCE:
            return
        if self._time_sync is not None and not self._time_sync.done():
            return
        mt.observe(0)  # changes no time, restarts the silence: one request per silence period, not per poll
        self._time_sync = asyncio.ensure_future(self.sync_market_time())
        self._tasks.add(self._time_sync)
        self._time_sync.add_done_callback(self._tasks.discard)

    # --- data watchdog --------------------------------------------------------------------------------------
    def watch_feed(self, key: str, hours: TradingHours = CME_GLOBEX) -> None:
        self.watchdog.watch(key, self.clock(), hours)

    def unwatch_feed(self, key: str) -> None:
        if self.watchdog.unwatch(key):
            self._set(stale_feeds=self.watchdog.stale)

    def feed_data(self, key: str, ts_ns: int | None = None) -> None:
        """A feed received data (at market time `ts_ns`, default now): fresh again if it was stale."""
        fresh = self.watchdog.touch(key, self.clock() if ts_ns is None else ts_ns)
        if fresh or self._health.competing_session:  # data after 10197: the competing session is over
            self._set(stale_feeds=self.watchdog.stale, competing_session=False)
            self._emit(HealthEventKind.FEED_FRESH, subject=key)

    def check_feeds(self) -> list[str]:
        """Run the watchdog now; returns the feeds that just became stale."""
        newly = self.watchdog.check(self.clock())
        if newly:
            self._set(stale_feeds=self.watchdog.stale)
            for key in newly:
                self._emit(HealthEventKind.FEED_STALE, subject=key)
        return newly

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.watchdog_poll_seconds)
            self._sync_if_silent()
            self.check_feeds()

    # --- supervision ----------------------------------------------------------------------------------------
    async def _supervise(self) -> None:
        s = self.settings
        delay = s.reconnect_initial_delay
        connected_before = False
        while True:
            now = self.clock()  # 0 before IB ever said its time: no window is known to be open then
            window_end = s.restart_window.end_if_inside(now) if now else None
            if window_end is not None:
                self._set(state=LinkState.RESTART_WINDOW)
                self._emit(HealthEventKind.RESTART_WINDOW, message=f"waiting until ts={window_end}")
                await self._sleep_until_market(window_end)
                delay = s.reconnect_initial_delay
            self._set(state=LinkState.CONNECTING)
            client_id = self._health.client_id
            try:
                await self._attempt(client_id)
            except ClientIdInUseError as exc:
                self._set(state=LinkState.DISCONNECTED)
                self._emit(HealthEventKind.CLIENT_ID_IN_USE, code=CLIENT_ID_IN_USE, message=str(exc))
                if s.on_client_id_in_use == "next_id" and len(self.id_range) > 1:
                    following = self.id_range.after(client_id)
                    self._set(client_id=following)
                    if following != self.preferred_client_id:
                        continue  # a fresh id needs no wait; back off only once the range has been tried
                delay = await self._backoff(delay)
                continue
            except (OSError, TimeoutError, ConnectionError) as exc:
                self._set(state=LinkState.DISCONNECTED)
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self._emit(HealthEventKind.CONNECT_FAILED, message=why)
                log.warning(
                    "%s: cannot connect to %s:%d (%s); trying again in %.1f s",
                    self._name(),
                    s.host,
                    s.port,
                    why,
                    delay,
                )
                delay = await self._backoff(delay)
                continue
            delay = s.reconnect_initial_delay
            await self.sync_market_time()  # the market's time before anything else is stamped with it
            loop = asyncio.get_running_loop()
            self._lost = loop.create_future()
            self._set(state=LinkState.CONNECTED, ib_connectivity=True, broken_farms=frozenset())
            assert self._connected is not None
            self._connected.set()
            log.info("%s: connected (%s)", self._name(), s.describe(self.role))
            self._emit(HealthEventKind.CONNECTED)
            if connected_before:
                await self._resubscribe("reconnected")
            connected_before = True
            await self._lost
            self._connected.clear()
            self._set(state=LinkState.DISCONNECTED)
            self._emit(HealthEventKind.DISCONNECTED, message="socket closed")
            log.warning("%s: disconnected from TWS; reconnecting", self._name())
            now = self.clock()
            if not now or s.restart_window.end_if_inside(now) is None:
                delay = await self._backoff(delay)

    async def _attempt(self, client_id: int) -> None:
        """One connect with `client_id`; ClientIdInUseError on 326, OSError/TimeoutError otherwise."""
        self.attempts += 1
        ib = self._ib
        loop = asyncio.get_running_loop()
        refused: asyncio.Future[str] = loop.create_future()

        def on_error(req_id: int, code: int, message: str, contract: Any) -> None:
            if code == CLIENT_ID_IN_USE and not refused.done():
                refused.set_result(message)

        def on_api_error(message: str) -> None:
            if not refused.done() and "already in use" in message:
                refused.set_result(message)

        fetch: StartupFetch = StartupFetchNONE if self.role in _DATA_ROLES else StartupFetchALL
        ib.errorEvent += on_error
        ib.client.apiError += on_api_error
        connecting = asyncio.ensure_future(
            ib.connectAsync(
                self.settings.host,
                self.settings.port,
                client_id,
                timeout=self.settings.connect_timeout,
                readonly=self.settings.readonly,
                account=self.settings.account,
                fetchFields=fetch,
            )
        )
        try:
            await asyncio.wait({connecting, refused}, return_when=asyncio.FIRST_COMPLETED)
            if refused.done():
                connecting.cancel()
                with contextlib.suppress(BaseException):
                    await connecting
                ib.disconnect()
                raise ClientIdInUseError(client_id, refused.result())
            connecting.result()
        finally:
            ib.errorEvent -= on_error
            ib.client.apiError -= on_api_error
            if not connecting.done():
                connecting.cancel()

    async def _backoff(self, delay: float) -> float:
        await asyncio.sleep(delay)
        return min(delay * self.settings.reconnect_backoff, self.settings.reconnect_max_delay)

    async def _sleep_until_market(self, end_ns: int) -> None:
        """Wait (polling the market clock) until market time reaches `end_ns`."""
        while self.clock() < end_ns:
            await asyncio.sleep(self.settings.watchdog_poll_seconds)

    async def _resubscribe(self, reason: str) -> None:
        for callback in list(self._resubscribers):
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # one feed's failure must not keep the others unsubscribed
                log.exception("%s: resubscribing market data failed", self._name())
        self._emit(HealthEventKind.RESUBSCRIBED, message=reason)

    # --- ib_async callbacks ---------------------------------------------------------------------------------
    def _on_disconnected(self) -> None:
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        found = classify_message(code, message)
        if found is None:
            return
        kind, subject = found
        h = self._health
        if kind is HealthEventKind.CONNECTIVITY_LOST:
            self._set(ib_connectivity=False)
            log.warning("%s: 1100 connectivity between IB and TWS lost: trading paused", self._name())
        elif kind in (HealthEventKind.RESTORED_DATA_LOST, HealthEventKind.RESTORED_DATA_KEPT):
            self._set(ib_connectivity=True, broken_farms=h.broken_farms - {"ib-server"})
            log.warning("%s: %d connectivity restored: trading resumed", self._name(), code)
        elif kind is HealthEventKind.FARM_BROKEN:
            self._set(broken_farms=h.broken_farms | {subject})
        elif kind is HealthEventKind.FARM_OK:
            self._set(broken_farms=h.broken_farms - {subject, "ib-server"})
        elif kind is HealthEventKind.COMPETING_SESSION:
            self._set(competing_session=True)
        self._emit(kind, code=code, message=message, subject=subject)
        if kind is HealthEventKind.RESTORED_DATA_LOST:
            self._spawn(self._resubscribe("1101: market data lost"))

    # --- internals ------------------------------------------------------------------------------------------
    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set(self, **changes: Any) -> None:
        self._health = replace(self._health, **changes)

    def _emit(self, kind: HealthEventKind, code: int = 0, message: str = "", subject: str = "") -> None:
        event = HealthEvent(kind, self.clock(), code, message, self._health.client_id, subject)
        log.info(
            "ib.health kind=%s role=%s client_id=%d code=%d subject=%s",
            kind.value,
            self.role.value,
            event.client_id,
            code,
            subject or "-",
        )
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("%s: health listener failed on %s", self._name(), kind.value)

    def _name(self) -> str:
        return f"ib[{self.role.value}]"

"""`LiveContext`: the Strategy API's Context over a live `TradingSession` (the OMS) and its market data.

What it promises, as the backtester's context does:
- `submit` is synchronous for the strategy and returns the client order id at once: the risk check and the
  OMS's write-ahead record happen inside the call (the send follows on the event loop when ib_async cannot
  write it at once); a request the risk checks refuse raises `InvalidOrderError` (recorded as Rejected);
- while the session is not ready (link down, 1100, reconciling) an order is refused with one clear log line
  and nothing is recorded or sent; the strategy then gets an OrderUpdate `REJECTED` for the id it was given;
- `position` counts filled orders only (the OMS's book), `bid`/`ask` come from the tick stream (NaN when the
  runtime reads bars only), `last_price` from trades or the last bar close;
- indicators registered with `indicator()` are fed each closed bar before `Strategy.on_bar`, and the runner's
  warm-up bars (`warm`) before the first live one: those reach the indicators only (no clock, no last price,
  no strategy call, so no order);
- the strategy's own orders' fills and state changes are routed to `on_fill` / `on_order_update`;
- `log` records a line stamped with market time (the event time), never the wall clock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from ibot.engine.session import SessionNotReadyError, TradingSession
from ibot.model.clock import Clock
from ibot.model.errors import InvalidOrderError
from ibot.model.instruments import Instrument
from ibot.model.market import Bar, Tick, ns_to_datetime
from ibot.model.orders import Fill, OrderRequest, OrderStatus, OrderUpdate
from ibot.strategy.base import Strategy

__all__ = ["LiveContext", "OrderIntent", "run_eagerly"]

log = logging.getLogger("ibot.engine")

I = TypeVar("I")  # noqa: E741
T = TypeVar("T")
_NAN = math.nan


def run_eagerly(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Run `coro` now, in the caller's frame, up to its first real suspension; the rest (if any) continues as
    a task. Returns a future of its result (already done when it never suspended).

    The OMS's `submit` does its risk check and write-ahead record before its first await, and IBBroker's place
    writes to the socket without suspending once the contract is known: so an order is recorded and sent
    inside the strategy's call, in the order the strategy placed it.
    """
    loop = asyncio.get_running_loop()
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        done: asyncio.Future[T] = loop.create_future()
        done.set_result(stop.value)
        return done
    except BaseException as exc:  # the coroutine failed before suspending: the caller sees it at once
        failed: asyncio.Future[T] = loop.create_future()
        failed.set_exception(exc)
        return failed
    return loop.create_task(_resume(coro, yielded))


async def _resume(coro: Coroutine[Any, Any, T], yielded: Any) -> T:
    """Drive a coroutine that suspended on `yielded` (an asyncio future, or None for a bare yield)."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait([yielded])
        except asyncio.CancelledError:
            if yielded is not None:
                yielded.cancel()
            coro.close()
            raise
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            return stop.value


class OrderIntent:
    """What the strategy asked for, for the status line: `describe()` = "BUY 1 LMT 5001.25 (Open-Long)"."""

    __slots__ = ("request", "ts")

    def __init__(self, request: OrderRequest, ts: int) -> None:
        self.request = request
        self.ts = ts

    def describe(self) -> str:
        r = self.request
        price = r.limit_price if r.limit_price is not None else r.stop_price
        at = f" {price}" if price is not None else ""
        why = f" ({r.reason})" if r.reason else ""
        return f"{r.side} {r.quantity} {r.order_type}{at}{why}"


class LiveContext:
    """The Context a strategy sees live; the runner feeds it bars and ticks, the OMS its orders' events."""

    def __init__(
        self,
        session: TradingSession,
        instrument: Instrument,
        strategy: Strategy,
        *,
        quotes: bool = True,
        run_id: str = "",
        logger: logging.Logger | None = None,
    ) -> None:
        self.session = session
        self.instrument = instrument
        self.clock: Clock = session.clock
        self.strategy = strategy
        self.quotes = quotes
        self.feeds: list[Callable[[Bar], Any]] = []
        self.logs: list[tuple[int, str]] = []
        self.last_signal: OrderIntent | None = None
        self.refused = 0
        self.pending: set[asyncio.Future[Any]] = set()  # sends still running on the loop
        self._log = logger or log
        self._run_id = run_id or uuid.uuid4().hex[:8]
        self._seq = itertools.count(1)
        self._mine: set[str] = set()
        self._last = _NAN
        self._bid = _NAN
        self._ask = _NAN
        session.om.add_listener(self._on_update, self._on_fill)

    # --- Context protocol -----------------------------------------------------------------------------------
    @property
    def position(self) -> int:
        return self.session.om.risk.position(self.instrument)

    @property
    def last_price(self) -> float:
        return self._last

    @property
    def bid(self) -> float:
        return self._bid

    @property
    def ask(self) -> float:
        return self._ask

    def indicator(self, ind: I) -> I:
        feed = getattr(ind, "update_bar", None)
        if feed is None:
            update = getattr(ind, "update", None)
            if update is None:
                raise TypeError(f"indicator {ind!r} has neither update_bar(bar) nor update(x)")
            feed = partial(_feed_close, update)
        self.feeds.append(feed)
        return ind

    def submit(self, request: OrderRequest) -> str:
        cid = request.client_order_id or self._new_id()
        request = replace(request, client_order_id=cid)
        self.last_signal = OrderIntent(request, self.clock.ns)
        session = self.session
        if not session.ready:
            self._refuse(cid, request, f"the trading session is {session.state.value}")
            return cid
        self._mine.add(cid)
        sent = run_eagerly(session.submit(request, strategy=self.strategy.name))
        if sent.done():
            exc = sent.exception()
            if isinstance(exc, InvalidOrderError):  # risk or adapter refusal: recorded, the strategy is told
                self._mine.discard(cid)
                raise exc
            if isinstance(exc, SessionNotReadyError):
                self._mine.discard(cid)
                self._refuse(cid, request, str(exc))
            elif exc is not None:  # sent or not: recorded as unknown, reconciliation decides
                self._log.error("order %s: send failed: %s: %s", cid, type(exc).__name__, exc)
        else:
            self.pending.add(sent)
            sent.add_done_callback(partial(self._sent, cid))
        return cid

    def cancel(self, client_order_id: str) -> None:
        """Cancel one of our orders; an order already final is left alone (a late cancel)."""
        m = self.session.om.order(client_order_id)
        if m is None or m.is_final:
            return
        if not self.session.ready:
            self.log(f"cancel {client_order_id} refused: the trading session is {self.session.state.value}")
            return
        self._track(run_eagerly(self.session.cancel(client_order_id)), f"cancel {client_order_id}")

    def cancel_all(self) -> None:
        """Cancel this strategy's working orders (not the whole account's)."""
        for request in self.open_orders():
            self.cancel(request.client_order_id)

    def open_orders(self) -> list[OrderRequest]:
        return [
            m.request
            for m in self.session.om.working_orders(self.instrument.key)
            if m.client_order_id in self._mine
        ]

    def log(self, message: str) -> None:
        ts = self.clock.ns
        self.logs.append((ts, message))
        when = ns_to_datetime(ts).isoformat() if ts else "-"
        self._log.info("[%s %s] %s", when, self.strategy.name, message)

    # --- fed by the runner ----------------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> None:
        """A closed bar: clock, last price, indicators (the runner calls Strategy.on_bar next)."""
        self.clock.advance(bar.ts)
        if not self.quotes or self._last != self._last:
            self._last = bar.close
        for feed in self.feeds:
            feed(bar)

    def warm(self, bars: Iterable[Bar]) -> None:
        """History (the runner's warm-up): into the indicators only; clock and last price are untouched."""
        feeds = self.feeds
        for bar in bars:
            for feed in feeds:
                feed(bar)

    def on_tick(self, tick: Tick) -> None:
        """A quote or trade: bid / ask / last as the strategy reads them (quotes off: ignored)."""
        if not self.quotes:
            return
        if tick.bid == tick.bid:
            self._bid = tick.bid
        if tick.ask == tick.ask:
            self._ask = tick.ask
        if tick.last == tick.last:
            self._last = tick.last

    def is_mine(self, client_order_id: str) -> bool:
        return client_order_id in self._mine

    # --- OMS callbacks --------------------------------------------------------------------------------------
    def _on_update(self, update: OrderUpdate) -> None:
        if update.client_order_id in self._mine:
            self.strategy.on_order_update(update)

    def _on_fill(self, fill: Fill) -> None:
        if fill.client_order_id in self._mine:
            self.strategy.on_fill(fill)

    # --- internals ------------------------------------------------------------------------------------------
    def _new_id(self) -> str:
        return f"{self.strategy.name}-{self._run_id}-{next(self._seq)}"

    def _refuse(self, cid: str, request: OrderRequest, why: str) -> None:
        """Not ready: nothing recorded or sent; the strategy hears REJECTED on the next loop turn."""
        self.refused += 1
        self.log(
            f"order {cid} ({request.side} {request.quantity} {request.symbol} {request.order_type}) REFUSED: "
            f"{why}; nothing was recorded or sent"
        )
        update = OrderUpdate(
            cid, OrderStatus.REJECTED, 0, request.quantity, 0.0, self.clock.ns, f"refused: {why}"
        )
        asyncio.get_running_loop().call_soon(self.strategy.on_order_update, update)

    def _sent(self, cid: str, fut: asyncio.Future[Any]) -> None:
        self.pending.discard(fut)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            self._log.error("order %s: %s: %s", cid, type(exc).__name__, exc)

    def _track(self, fut: asyncio.Future[Any], what: str) -> None:
        if fut.done():
            exc = fut.exception()
            if exc is not None:
                self._log.error("%s failed: %s: %s", what, type(exc).__name__, exc)
            return
        self.pending.add(fut)
        fut.add_done_callback(partial(self._sent, what))


def _feed_close(update: Callable[[float], Any], bar: Bar) -> None:
    update(bar[4])

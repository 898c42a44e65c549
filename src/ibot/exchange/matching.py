"""THE matching engine: one per instrument, shared by the backtester and the TWS-protocol simulator.

Prices are held as integer ticks. Market data comes in as bars (`on_bar`), quotes (`on_quote`) or trades
(`on_trade`); orders are matched against it under `FillRules` and every state change is reported to an
`ExecutionListener` the way TWS reports it (Submitted, PreSubmitted, Filled, Cancelled, Inactive).

Fill rules, precisely
---------------------
An order that *arrives* while the market is at price p (the bar's open, the point of the bar's path where it
was activated, or the current quote) is **marketable** when it would trade at once: a buy limit L with
p <= L (or L >= ask) fills at p (or the ask), the better price. A **resting** limit fills only when the
market trades *through* it: a buy limit L fills at L once the price goes strictly below L (a touch at L is no
fill: orders queued ahead at L may take all the volume there); `FillRules.limit_fills_on_touch` relaxes this.

Bars. Orders submitted while bar t is handled are first matched against bar t+1 (no look-ahead). A bar is
walked as the path open -> nearer extreme -> farther extreme -> close (if the open is equally far from both,
the extreme farther from the close comes first, so the last leg runs toward the close; if that ties too, the
high comes first). The open is a gap print: every working order meets it as an arrival (market orders fill at
open +/- slippage; stops at or through the open trigger and fill at the open +/- slippage; limits at or
better than the open fill at the open). Along each leg events happen in the order the path meets their
prices: a buy stop S triggers when the path trades at S (fills at S + slippage, or becomes a limit for
STP LMT); a resting sell limit L fills at L once the path goes above L. Bracket children go live where their
parent filled and can fill later on the same path. `FillRules.bar_volume_participation` caps the contracts
filled in one bar to that fraction of its volume (default: no cap); the rest keeps working.

Quotes and trades. With a quote known, market orders and marketable limits fill at once against it: a buy
fills at the ask (+ slippage for market orders), at most `ask_size` contracts per quote update (the size is
shared by all orders on that update; the rest waits for the next quote). Stops trigger on trades only, at or
through the stop (CME's default last-price trigger). A trade at t fills a resting buy limit L at L when
t < L (a sell limit when t > L), at most `size` contracts per trade; with no quote known, market orders fill
at the trade price +/- slippage.

Time in force. DAY orders expire at the end of the trading day given by `day_end` (CME Globex: 17:00
Chicago); an order sent during the day's last bar still gets the next bar's open (it stands for an order
sent just before the close) and then expires. IOC orders are matched once, at the first market event they
see, and the rest is cancelled. GTC orders stay until filled or cancelled.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import os
import secrets
import time as time_module
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from ibot.exchange.fees import FeeModel
from ibot.model.calendar import TRADING_DAY_ROLL, TRADING_DAY_ZONE, trading_day_end
from ibot.model.errors import InvalidOrderError
from ibot.model.instruments import Instrument
from ibot.model.market import Bar
from ibot.model.orders import (
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)

__all__ = [
    "DailySessions",
    "ExecutionListener",
    "FillRules",
    "MatchingEngine",
    "OrderRejected",
    "UnknownOrderError",
    "unique_exec_ids",
]

_MKT, _LMT, _STP, _STP_LMT = 0, 1, 2, 3
_KIND = {OrderType.MKT: _MKT, OrderType.LMT: _LMT, OrderType.STP: _STP, OrderType.STP_LMT: _STP_LMT}
# Enum members as module names: reading `Side.BUY` goes through the enum class (~0.15 us on Python 3.11),
# a module global costs almost nothing, and these are read for every order and fill.
_BUY = Side.BUY
_MKT_TYPE = OrderType.MKT
_IOC = TimeInForce.IOC
_DAY = TimeInForce.DAY
_PENDING_SUBMIT = OrderStatus.PENDING_SUBMIT
_PRE_SUBMITTED = OrderStatus.PRE_SUBMITTED
_SUBMITTED = OrderStatus.SUBMITTED
_FILLED = OrderStatus.FILLED
_UNLIMITED = 1 << 62
_NS_PER_S = 1_000_000_000


class OrderRejected(InvalidOrderError):
    """The engine refused an order (it was reported Inactive); `client_order_id` names it."""

    def __init__(self, client_order_id: str, message: str) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id


class UnknownOrderError(InvalidOrderError, KeyError):
    """Cancel or modify of an order id the engine has no live order for."""

    def __str__(self) -> str:
        return str(self.args[0])


class ExecutionListener(Protocol):
    """Receives what TWS would send: executions and order status changes, in that order for a fill."""

    def on_fill(self, fill: Fill) -> None: ...

    def on_order_update(self, update: OrderUpdate) -> None: ...


@dataclass(frozen=True, slots=True)
class FillRules:
    """How optimistic matching may be. Defaults: trade-through for limits, no slippage, no volume cap."""

    slippage_ticks: int = 0
    limit_fills_on_touch: bool = False
    bar_volume_participation: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.slippage_ticks, bool) or not isinstance(self.slippage_ticks, int):
            raise ValueError(f"FillRules: slippage_ticks {self.slippage_ticks!r} must be a whole number")
        if self.slippage_ticks < 0:
            raise ValueError(f"FillRules: slippage_ticks {self.slippage_ticks} must be >= 0")
        p = self.bar_volume_participation
        if p is not None and not (math.isfinite(p) and 0 < p <= 1):
            raise ValueError(f"FillRules: bar_volume_participation {p!r} must be in (0, 1] or None")


class DailySessions:
    """Trading days that roll at a fixed local time (default: ibot.model.calendar's CME Globex roll, 18:00
    America/New_York = 17:00 America/Chicago, DST-aware), with the day ends precomputed for the hot path.

    `end_of(ts)` is the first roll strictly after `ts`; `day_ids(ts_array)` numbers the trading days.
    """

    def __init__(self, tz: str = TRADING_DAY_ZONE.key, roll: time = TRADING_DAY_ROLL) -> None:
        self._tz = ZoneInfo(tz)
        self._roll = roll
        self._bounds: list[int] = []
        self._first: date | None = None
        self._last: date | None = None

    def _boundary(self, d: date) -> int:
        return trading_day_end(d, self._tz, self._roll)

    def _cover(self, lo_ns: int, hi_ns: int) -> None:
        lo = datetime.fromtimestamp(lo_ns / _NS_PER_S, tz=self._tz).date() - timedelta(days=1)
        hi = datetime.fromtimestamp(hi_ns / _NS_PER_S, tz=self._tz).date() + timedelta(days=2)
        if self._first is not None and self._last is not None and self._first <= lo and hi <= self._last:
            return
        if self._first is not None and self._last is not None:
            lo, hi = min(lo, self._first), max(hi, self._last)
        days = (hi - lo).days + 1
        self._bounds = [self._boundary(lo + timedelta(days=k)) for k in range(days)]
        self._first, self._last = lo, hi

    def end_of(self, ts_ns: int) -> int:
        """Nanosecond time at which the trading day containing `ts_ns` ends."""
        b = self._bounds
        if not b or ts_ns < b[0] or ts_ns >= b[-1]:
            self._cover(ts_ns, ts_ns + 40 * 86_400 * _NS_PER_S)
            b = self._bounds
        return b[bisect.bisect_right(b, ts_ns)]

    def day_ids(self, ts: np.ndarray) -> np.ndarray:
        """A trading-day number for each timestamp (equal numbers = same trading day)."""
        if len(ts) == 0:
            return np.zeros(0, dtype=np.int64)
        self._cover(int(ts.min()), int(ts.max()))
        return np.searchsorted(np.asarray(self._bounds, dtype=np.int64), ts, side="right").astype(np.int64)


# Fast construction of the frozen value types the engine emits for every fill and status change --------------
# A frozen dataclass's __init__ sets each field through object.__setattr__, which makes a Fill or an
# OrderUpdate cost about three times a plain slotted object (the larger part of a backtest's per-order time).
# The engine therefore fills a mutable twin with the same slots and turns it into the frozen type by
# __class__ assignment (allowed because the memory layout is identical). The result is an ordinary instance
# of the frozen type, equal to the one its own __init__ would build. A field added to Fill or OrderUpdate
# must be added to its twin's __init__ (tests/backtest/test_fast_values.py fails until it is).


_new_parts = object.__new__  # _new_parts(_XParts) then slot stores: no __init__ frame (the hottest sites)


class _FillParts:
    __slots__ = Fill.__slots__

    def __init__(
        self,
        client_order_id: str,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        ts: int,
        commission: Decimal,
        exec_id: str,
        reason: str,
    ) -> None:
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.price = price
        self.ts = ts
        self.commission = commission
        self.exec_id = exec_id
        self.reason = reason


class _UpdateParts:
    __slots__ = OrderUpdate.__slots__

    def __init__(
        self,
        client_order_id: str,
        status: OrderStatus,
        filled: int,
        remaining: int,
        avg_fill_price: float,
        ts: int,
        message: str,
    ) -> None:
        self.client_order_id = client_order_id
        self.status = status
        self.filled = filled
        self.remaining = remaining
        self.avg_fill_price = avg_fill_price
        self.ts = ts
        self.message = message


def _new_fill(
    client_order_id: str,
    symbol: str,
    side: Side,
    quantity: int,
    price: float,
    ts: int,
    commission: Decimal,
    exec_id: str,
    reason: str,
) -> Fill:
    """Fill(...) with every field given, built the fast way (see above)."""
    fill: Any = _FillParts(client_order_id, symbol, side, quantity, price, ts, commission, exec_id, reason)
    fill.__class__ = Fill
    return fill


def _new_update(
    client_order_id: str,
    status: OrderStatus,
    filled: int,
    remaining: int,
    avg_fill_price: float,
    ts: int,
    message: str,
) -> OrderUpdate:
    """OrderUpdate(...) with every field given, built the fast way (see above)."""
    update: Any = _UpdateParts(client_order_id, status, filled, remaining, avg_fill_price, ts, message)
    update.__class__ = OrderUpdate
    return update


class _Order:
    """Engine-side state of one order, prices in ticks; `kind` is the working type (a fired STP is MKT)."""

    __slots__ = (
        "children",
        "expires",
        "fill_value",
        "filled",
        "kind",
        "limit",
        "live",
        "oca",
        "oid",
        "parent",
        "qty",
        "req",
        "seen",
        "seq",
        "sign",
        "status",
        "stop",
        "tif",
        "triggered",
    )

    def __init__(self, oid: str, req: OrderRequest, seq: int, limit: int | None, stop: int | None) -> None:
        self.oid = oid
        self.req = req
        self.seq = seq
        self.sign = 1 if req.side is _BUY else -1
        self.qty = req.quantity
        self.filled = 0
        self.fill_value = 0  # sum of ticks x quantity over fills
        self.kind = _KIND[req.order_type]
        self.limit = limit
        self.stop = stop
        self.tif = req.tif
        self.triggered = self.kind not in (_STP, _STP_LMT)
        self.parent = req.parent_id
        self.oca = req.oca_group
        self.children: list[_Order] = []
        self.status = _PENDING_SUBMIT
        self.live = False  # working on the book (not held behind a parent)
        self.seen = False  # has met at least one market event
        self.expires = _UNLIMITED

    @property
    def remaining(self) -> int:
        return self.qty - self.filled


def _market_order(oid: str, req: OrderRequest, seq: int) -> _Order:
    """_Order(oid, req, seq, None, None) for a market order, built without the __init__ frame (a third of
    its cost; most orders of a backtest are market orders). tests/backtest/test_fast_values.py compares it
    with _Order's own, slot by slot."""
    od: Any = _new_parts(_Order)
    od.oid = oid
    od.req = req
    od.seq = seq
    od.sign = 1 if req.side is _BUY else -1
    od.qty = req.quantity
    od.filled = od.fill_value = 0
    od.kind = _MKT
    od.limit = od.stop = None
    od.tif = req.tif
    od.triggered = True
    od.parent = req.parent_id
    od.oca = req.oca_group
    od.children = []
    od.status = _PENDING_SUBMIT
    od.live = od.seen = False
    od.expires = _UNLIMITED
    return od


def _where(req: OrderRequest, oid: str) -> str:
    """How an error message names an order."""
    return f"order {oid} {req.side} {req.quantity} {req.symbol} {req.order_type}"


def unique_exec_ids(key: int) -> tuple[str, int]:
    """An execution-id prefix and sequence start for one engine whose executions must never repeat an id
    across runs and processes, as IB's never do (the records keep an execution by its id): the prefix is 8
    hex digits hashed from the wall clock, the process id, 64 random bits and `key` (the instrument's conId),
    the sequence starts at a random point below 2**28 (so it stays 8 hex digits). Two engines share an id
    only if both 32-bit prefixes and their sequence ranges collide."""
    seed = f"{time_module.time_ns()}-{os.getpid()}-{secrets.randbits(64)}-{key}".encode()
    digest = hashlib.blake2b(seed, digest_size=8).digest()
    return digest[:4].hex(), int.from_bytes(digest[4:], "big") & 0x0FFF_FFFF


class MatchingEngine:
    """Matches one instrument's orders against bars, quotes or trades; see the module doc for the rules."""

    def __init__(
        self,
        instrument: Instrument,
        listener: ExecutionListener | None = None,
        rules: FillRules | None = None,
        fees: FeeModel | None = None,
        day_end: Callable[[int], int] | None = None,
        exec_prefix: str = "0000e0d5",
        exec_start: int = 0,
    ) -> None:
        """`exec_prefix` and `exec_start`: the execution ids are ``{exec_prefix}.{n:08x}.01.01`` for
        n = exec_start + 1, + 2, ... (IB's shape); a venue whose fills are recorded gives each engine its own
        (`unique_exec_ids`), the backtester keeps the fixed default."""
        self.instrument = instrument
        self.listener = listener
        self.rules = rules or FillRules()
        self.fees = fees if fees is not None else FeeModel.zero()
        self.day_end = day_end
        self._tick = instrument.tick_size
        self._tick_f = float(instrument.tick_size)
        self._prices: dict[int, float] = {}  # ticks -> float price, memo of Instrument.from_ticks
        self._commissions: dict[int, Decimal] = {}  # quantity -> fee, memo of FeeModel.commission
        self._slip = self.rules.slippage_ticks
        self._participation = self.rules.bar_volume_participation
        self._touch = self.rules.limit_fills_on_touch
        self._orders: dict[str, _Order] = {}  # live and held orders, by id
        self.working: list[_Order] = []  # on the book, in arrival order; empty -> nothing to match
        self._seq = 0
        self._day_fn = day_end  # the last day_end(t) asked, valid for times in [_day_from, _day_to)
        self._day_from = self._day_to = 0
        self._exec_n = exec_start
        self._ts = 0
        self._exec_prefix = exec_prefix
        self._exec_fmt = exec_prefix.replace("%", "%%") + ".%08x.01.01"  # `fmt % n`: the cheapest formatting
        self._symbol = instrument.symbol
        # Liquidity source now: "bar" (one budget), "quote" (per side), "trade" (its size), None (no data).
        self._mode: str | None = None
        self._budget = _UNLIMITED
        self._bid: int | None = None
        self._ask: int | None = None
        self._bid_left = 0.0
        self._ask_left = 0.0
        self._point: int | None = None  # price on the bar path while a bar is being walked
        self._pending: list[_Order] = []  # sent during a bar walk; they join the book after it

    # Order entry -----------------------------------------------------------------------------------------
    def _ticks_of(self, price: float | None, what: str, where: str | tuple[OrderRequest, str]) -> int | None:
        """`price` in ticks; `where` names the order in an error (a (request, id) pair is formatted only
        then)."""
        if price is None:
            return None
        if not isinstance(price, (int, float)) or not math.isfinite(price):
            raise InvalidOrderError(
                f"{_where(*where) if isinstance(where, tuple) else where}: {what} "
                f"{price!r} is not a finite number"
            )
        if not self.instrument.is_on_grid(price):
            raise InvalidOrderError(
                f"{_where(*where) if isinstance(where, tuple) else where}: {what} {price!r} is not on the "
                f"tick grid of {self._tick} (not re-priced; send a price that is a multiple of {self._tick})"
            )
        return self.instrument.to_ticks(price)

    def _check(self, req: OrderRequest, oid: str) -> tuple[int | None, int | None]:
        # Every order passes here: the error location is only formatted when an order is refused.
        inst = self.instrument
        if req.symbol not in (inst.symbol, inst.local_symbol):
            raise InvalidOrderError(f"{_where(req, oid)}: this engine trades {inst.key}, not {req.symbol!r}")
        q = req.quantity
        if isinstance(q, bool) or not isinstance(q, int) or q <= 0:
            raise InvalidOrderError(f"{_where(req, oid)}: quantity {q!r} must be a whole number > 0")
        if oid in self._orders:
            raise InvalidOrderError(f"{_where(req, oid)}: order id {oid!r} is already in use by a live order")
        if req.parent_id and req.parent_id not in self._orders:
            raise InvalidOrderError(f"{_where(req, oid)}: parent order {req.parent_id!r} is not a live order")
        limit = stop = None
        if req.limit_price is not None:
            limit = self._ticks_of(req.limit_price, "limit price", (req, oid))
        if req.stop_price is not None:
            stop = self._ticks_of(req.stop_price, "stop price", (req, oid))
        return limit, stop

    def validate(self, request: OrderRequest) -> None:
        """Raise InvalidOrderError if `request` would be rejected; report nothing."""
        self._check(request, request.client_order_id or "(new)")

    def submit(self, request: OrderRequest, ts: int) -> str:
        """Accept an order; returns its id (the request's, or one the engine assigns).

        A bad order is reported Inactive to the listener with the reason, then OrderRejected is raised.
        """
        self._seq += 1
        oid = request.client_order_id or f"o{self._seq}"
        quantity = request.quantity
        if (
            request.order_type is _MKT_TYPE
            and type(quantity) is int
            and quantity > 0
            and request.limit_price is None
            and request.stop_price is None
            and not request.parent_id
            and request.symbol == self._symbol
            and oid not in self._orders
        ):
            od = _market_order(oid, request, self._seq)  # it passes _check: no call
        else:
            try:
                limit, stop = self._check(request, oid)
            except InvalidOrderError as exc:
                self._ts = max(self._ts, ts)
                if self.listener is not None:
                    self.listener.on_order_update(
                        OrderUpdate(oid, OrderStatus.INACTIVE, 0, request.quantity, 0.0, ts, str(exc))
                    )
                raise OrderRejected(oid, str(exc)) from None
            od = _Order(oid, request, self._seq, limit, stop)
        if ts > self._ts:  # noqa: PLR1730 - max() is a call, and this runs for every order
            self._ts = ts
        if od.tif is _DAY and self.day_end is not None:
            # day_end(ts) is the end of the trading day holding ts, so it is the same for every time in
            # [ts, day_end(ts)): remembered, as an order is usually not the first of its day.
            if self._day_from <= ts < self._day_to and self._day_fn is self.day_end:
                od.expires = self._day_to
            else:
                od.expires = self._day_to = self.day_end(ts)
                self._day_from = ts
                self._day_fn = self.day_end
        self._orders[oid] = od
        if od.parent:
            parent = self._orders[od.parent]
            parent.children.append(od)
            self._set_status(od, OrderStatus.PRE_SUBMITTED)  # held until the parent fills
            return oid
        if self._point is not None:
            # Sent while a bar is walked (from a fill callback): it works from the next bar (no look-ahead).
            self._set_status(od, _SUBMITTED if od.triggered else _PRE_SUBMITTED)
            self._pending.append(od)
            return oid
        if self._bid is None and self._ask is None:
            # _go_live(od) when no market price is known now (a backtest between bars), inline
            od.live = True
            self.working.append(od)
            od.status = status = _SUBMITTED if od.triggered else _PRE_SUBMITTED
            listener = self.listener
            if listener is not None:
                u: Any = _new_parts(_UpdateParts)  # _new_update(...), inline
                u.client_order_id = oid
                u.status = status
                u.filled = 0
                u.remaining = od.qty
                u.avg_fill_price = 0.0
                u.ts = self._ts
                u.message = ""
                u.__class__ = OrderUpdate
                listener.on_order_update(u)
            return oid
        self._go_live(od)
        return oid

    def _go_live(self, od: _Order) -> None:
        """Put an order on the book and, if the market is known right now, match it on arrival."""
        od.live = True
        self.working.append(od)
        od.status = status = _SUBMITTED if od.triggered else _PRE_SUBMITTED
        listener = self.listener
        if listener is not None:  # _set_status(od, status), inline: an order going live has no fill yet
            listener.on_order_update(_new_update(od.oid, status, 0, od.qty, 0.0, self._ts, ""))
        if self._point is not None:
            self._arrive_at(od, self._point)
        elif self._bid is not None or self._ask is not None:
            od.seen = True
            self._quote_fill(od)
            if od.tif is _IOC and od.live:
                self._cancel(od, "IOC order: unfilled rest cancelled")

    def cancel(self, client_order_id: str, ts: int | None = None) -> None:
        """Cancel a live or held order (and, for a parent, its held children)."""
        od = self._orders.get(client_order_id)
        if od is None:
            raise UnknownOrderError(f"cancel: no live order {client_order_id!r}")
        if ts is not None and ts > self._ts:
            self._ts = ts
        self._cancel(od, "cancelled by request")

    def cancel_all(self, ts: int | None = None) -> None:
        """Cancel every live and held order."""
        if ts is not None and ts > self._ts:
            self._ts = ts
        for od in list(self._orders.values()):
            self._cancel(od, "cancelled by request")

    def modify(
        self,
        client_order_id: str,
        ts: int,
        quantity: int | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> None:
        """Cancel/replace: new total quantity and/or prices for a live order, keeping its id.

        The new quantity must exceed what has already filled. In bar mode the change counts from the next bar.
        """
        od = self._orders.get(client_order_id)
        if od is None:
            raise UnknownOrderError(f"modify: no live order {client_order_id!r}")
        where = f"modify order {client_order_id}"
        if quantity is not None and (
            isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= od.filled
        ):
            raise InvalidOrderError(
                f"{where}: quantity {quantity!r} must be a whole number above the {od.filled} already filled"
            )
        if limit_price is not None and od.req.limit_price is None:
            raise InvalidOrderError(f"{where}: a {od.req.order_type} order takes no limit price")
        if stop_price is not None and od.req.stop_price is None:
            raise InvalidOrderError(f"{where}: a {od.req.order_type} order takes no stop price")
        limit = self._ticks_of(limit_price, "limit price", where)
        stop = self._ticks_of(stop_price, "stop price", where)
        self._ts = max(self._ts, ts)
        changes: dict[str, object] = {}
        if quantity is not None:
            od.qty = quantity
            changes["quantity"] = quantity
        if limit is not None:
            od.limit = limit
            changes["limit_price"] = limit_price
        if stop is not None and not od.triggered:
            od.stop = stop
            changes["stop_price"] = stop_price
        od.req = replace(od.req, **changes)  # type: ignore[arg-type]
        od.seen = False
        self._set_status(od, od.status)
        if od.live and self._point is None and (self._bid is not None or self._ask is not None):
            self._quote_fill(od)

    # Queries ---------------------------------------------------------------------------------------------
    def open_orders(self) -> list[OrderRequest]:
        """Requests of every live or held order (with ids, current quantity and prices), oldest first."""
        out = []
        for o in self._orders.values():
            if o.req.client_order_id != o.oid:
                o.req = replace(o.req, client_order_id=o.oid)  # engine-assigned id, filled in on demand
            out.append(o.req)
        return out

    def is_live(self, client_order_id: str) -> bool:
        return client_order_id in self._orders

    def state(self, client_order_id: str) -> OrderUpdate | None:
        od = self._orders.get(client_order_id)
        return None if od is None else self._update(od, od.status, "")

    # Market data -----------------------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> None:
        """Match working orders against one bar (prices must be on the tick grid)."""
        to = self.instrument.to_ticks
        self.on_bar_ticks(bar.ts, to(bar.open), to(bar.high), to(bar.low), to(bar.close), bar.volume)

    def on_bar_ticks(self, ts: int, o: int, h: int, lo: int, c: int, volume: float = 0.0) -> None:
        """`on_bar` with prices already in ticks: the backtester's fast path."""
        self._ts = ts
        self._bid = self._ask = None
        working = self.working
        if not working:
            return
        part = self._participation
        if part is None and len(working) == 1:
            od = working[0]
            if od.kind == _MKT and od.triggered and od.expires > ts and not od.oca and not od.children:
                self._market_at_open(od, o)  # the usual backtest bar with an order: the same, but shorter
                return
        self._budget = _UNLIMITED if part is None else int(volume * part)
        self._mode = "bar"
        for od in working:
            if od.expires <= ts:  # rare: only then pay for the copy and the cancels
                self._expire_day_orders(ts, at_open=True)
                break
        try:
            self._point = o
            slip = self._slip
            for od in working[:]:
                if od.live:
                    if od.kind == _MKT and od.triggered:  # _arrive_at for a market order, without the call
                        od.seen = True
                        self._fill(od, o + od.sign * slip)
                    else:
                        self._arrive_at(od, o)
            if working:
                for od in working[:]:
                    if od.live:
                        if od.tif is _IOC:
                            self._cancel(od, "IOC order: unfilled rest cancelled")
                        elif od.expires <= ts:
                            self._cancel(od, "DAY order expired at the end of the trading day")
            if working:
                if h - o < o - lo or (h - o == o - lo and abs(h - c) < abs(c - lo)):
                    path = (o, h, lo, c)
                else:
                    path = (o, lo, h, c)
                for k in range(3):
                    a, b = path[k], path[k + 1]
                    if a != b and self.working:
                        self._walk(a, b)
        finally:
            self._point = None
            self._mode = None
            if self._pending:
                self._join_pending()

    def _join_pending(self) -> None:
        """Orders sent during a bar walk join the book after it (those not cancelled meanwhile)."""
        for od in self._pending:
            if od.oid in self._orders:
                od.live = True
                self.working.append(od)
        self._pending.clear()

    def _market_at_open(self, od: _Order, o: int) -> None:
        """on_bar_ticks when the book holds one market order without OCA group or children, unexpired, and no
        volume cap: it fills whole at the open (+ slippage) and the rest of the bar has nothing to match. The
        same fill, statuses and state as the general walk (_fill for a full fill, inline), in fewer steps."""
        self._point = o
        self._mode = "bar"
        try:
            od.seen = True
            price = o + od.sign * self._slip
            qty = od.qty - od.filled
            od.filled += qty
            od.fill_value += qty * price
            self._exec_n += 1
            od.status = _FILLED
            self._orders.pop(od.oid, None)
            od.live = False
            self.working.clear()  # it was the only working order
            listener = self.listener
            if listener is not None:
                px = self._prices.get(price)
                if px is None:
                    px = self._prices[price] = self.instrument.from_ticks(price)
                fee = self._commissions.get(qty)
                if fee is None:
                    fee = self._commissions[qty] = self.fees.commission(qty)
                req = od.req
                f: Any = _new_parts(_FillParts)  # _new_fill(...), inline
                f.client_order_id = od.oid
                f.symbol = req.symbol
                f.side = req.side
                f.quantity = qty
                f.price = px
                f.ts = self._ts
                f.commission = fee
                f.exec_id = self._exec_fmt % self._exec_n
                f.reason = req.reason
                f.__class__ = Fill
                listener.on_fill(f)
                od.status = _FILLED
                if od.filled == qty:  # its only fill: the average price is this fill's price
                    u: Any = _new_parts(_UpdateParts)  # _new_update(...), inline
                    u.client_order_id = od.oid
                    u.status = _FILLED
                    u.filled = qty
                    u.remaining = od.qty - qty
                    u.avg_fill_price = px
                    u.ts = self._ts
                    u.message = ""
                    u.__class__ = OrderUpdate
                else:
                    u = self._update(od, _FILLED, "")
                listener.on_order_update(u)
        finally:
            self._point = None
            self._mode = None
            if self._pending:
                self._join_pending()

    def on_quote(
        self, ts: int, bid: float, ask: float, bid_size: float = math.inf, ask_size: float = math.inf
    ) -> None:
        """New top of book. NaN leaves a side unknown; sizes cap what this update can fill (default: none)."""
        self._ts = max(self._ts, ts)
        to = self.instrument.to_ticks
        self._bid = to(bid) if not math.isnan(bid) else None
        self._ask = to(ask) if not math.isnan(ask) else None
        self._bid_left = bid_size if not math.isnan(bid_size) else 0.0
        self._ask_left = ask_size if not math.isnan(ask_size) else 0.0
        if not self.working:
            return
        self._mode = "quote"
        try:
            self._expire_day_orders(ts, at_open=False)
            for od in list(self.working):
                if od.live:
                    self._match_quote(od)
                    od.seen = True
                    if od.tif is _IOC and od.live:
                        self._cancel(od, "IOC order: unfilled rest cancelled")
        finally:
            self._mode = None

    def on_trade(self, ts: int, price: float, size: float = math.inf) -> None:
        """A trade printed: fire stops at/through it, fill limits it traded through (at most `size` lots)."""
        self._ts = max(self._ts, ts)
        if not self.working:
            return
        t = self.instrument.to_ticks(price)
        self._mode = "trade"
        self._budget = _UNLIMITED if size == math.inf else max(int(size), 0)
        quoted = self._bid is not None or self._ask is not None
        try:
            self._expire_day_orders(ts, at_open=False)
            for od in list(self.working):
                if not od.live:
                    continue
                s = od.sign
                if not od.triggered:
                    if (t - od.stop) * s < 0:  # type: ignore[operator]
                        continue
                    self._trigger(od)  # CME stops: last-price trigger, at or through the stop
                    if quoted:
                        self._quote_fill(od)
                    else:
                        self._arrive_at(od, t)
                elif od.kind == _MKT:
                    if quoted:
                        self._quote_fill(od)
                    else:
                        self._fill(od, t + s * self._slip)
                else:
                    lim: int = od.limit  # type: ignore[assignment]
                    if (lim - t) * s > 0 or (self._touch and t == lim):
                        self._fill(od, lim)
                od.seen = True
                if od.tif is _IOC and od.live:
                    self._cancel(od, "IOC order: unfilled rest cancelled")
        finally:
            self._mode = None

    def _quote_fill(self, od: _Order) -> None:
        """Match against the standing quote from inside another kind of event."""
        saved = self._mode
        self._mode = "quote"
        try:
            self._match_quote(od)
        finally:
            self._mode = saved

    # Matching internals ----------------------------------------------------------------------------------
    def _expire_day_orders(self, ts: int, at_open: bool) -> None:
        """DAY orders past their day's end expire; at a bar open, unseen ones first get that open."""
        for od in list(self.working):
            if od.expires <= ts and (od.seen or not at_open):
                self._cancel(od, "DAY order expired at the end of the trading day")

    def _trigger(self, od: _Order) -> None:
        od.triggered = True
        od.kind = _MKT if od.kind == _STP else _LMT
        self._set_status(od, _SUBMITTED)

    def _arrive_at(self, od: _Order, p: int) -> None:
        """Match an order against a single bar-path price p as an arrival (gap open or activation)."""
        od.seen = True
        s = od.sign
        if not od.triggered:
            if (p - od.stop) * s < 0:  # type: ignore[operator]
                return
            self._trigger(od)
        if od.kind == _MKT:
            self._fill(od, p + s * self._slip)
        elif (od.limit - p) * s >= 0:  # type: ignore[operator]
            self._fill(od, p)

    def _walk(self, a: int, b: int) -> None:
        """Walk the bar path from a to b (a != b), handling events in the order the path meets them."""
        up = 1 if b > a else -1
        cur = a
        touch = self._touch
        while True:
            best: _Order | None = None
            best_lvl = 0
            for od in self.working:
                if not od.live:
                    continue
                s = od.sign
                if not od.triggered:
                    lvl: int = od.stop  # type: ignore[assignment]
                    # buy stop fires going up at S in (cur, b]; sell stop going down at S in [b, cur)
                    if s != up or not (cur < lvl <= b if up > 0 else b <= lvl < cur):
                        continue
                elif od.kind == _LMT and self._budget > 0:
                    lvl = od.limit  # type: ignore[assignment]
                    # a resting sell limit fills going up once the path passes L: L in [cur, b)
                    if s == up:
                        continue
                    if up > 0:
                        if not (cur <= lvl < b or (touch and lvl == b)):
                            continue
                    elif not (b < lvl <= cur or (touch and lvl == b)):
                        continue
                else:
                    continue
                if best is None or (lvl - best_lvl) * up < 0:
                    best, best_lvl = od, lvl
            if best is None:
                return
            cur = best_lvl
            self._point = cur
            if not best.triggered:
                self._trigger(best)
                self._arrive_at(best, cur)
            else:
                self._fill(best, cur)

    def _match_quote(self, od: _Order) -> None:
        """Market / marketable limit orders against the current quote."""
        if not od.triggered:
            return
        if od.sign > 0:
            px = self._ask
            if px is None:
                return
            if od.kind == _MKT:
                self._fill(od, px + self._slip)
            elif od.limit >= px:  # type: ignore[operator]
                self._fill(od, px)
        else:
            px = self._bid
            if px is None:
                return
            if od.kind == _MKT:
                self._fill(od, px - self._slip)
            elif od.limit <= px:  # type: ignore[operator]
                self._fill(od, px)

    def _available(self, sign: int, want: int) -> int:
        mode = self._mode
        if mode == "quote":
            left = self._ask_left if sign > 0 else self._bid_left
            take = want if left >= want else max(int(left), 0)
            if sign > 0:
                self._ask_left = left - take
            else:
                self._bid_left = left - take
            return take
        if mode is None:
            return want
        take = want if self._budget >= want else self._budget
        self._budget -= take
        return take

    def _fill(self, od: _Order, price: int) -> None:
        want = od.qty - od.filled
        if self._mode == "bar" and self._budget >= want:  # the usual case, without the call
            self._budget -= want
            qty = want
        else:
            qty = self._available(od.sign, want)
            if qty <= 0:
                return
        od.filled += qty
        od.fill_value += qty * price
        self._exec_n += 1
        req = od.req
        done = od.filled >= od.qty
        if done:
            od.status = _FILLED
            self._orders.pop(od.oid, None)  # _remove(od), inline
            if od.live:
                od.live = False
                self.working.remove(od)
        listener = self.listener
        if listener is not None:
            px = self._prices.get(price)
            if px is None:
                px = self._prices[price] = self.instrument.from_ticks(price)
            fee = self._commissions.get(qty)
            if fee is None:
                fee = self._commissions[qty] = self.fees.commission(qty)
            listener.on_fill(
                _new_fill(
                    od.oid,
                    req.symbol,
                    req.side,
                    qty,
                    px,
                    self._ts,
                    fee,
                    self._exec_fmt % self._exec_n,
                    req.reason,
                )
            )
            od.status = status = _FILLED if done else _SUBMITTED  # _set_status(od, status), inline
            if od.filled == qty:  # this is its only fill: _update's average price is this fill's price
                update = _new_update(od.oid, status, qty, od.qty - qty, px, self._ts, "")
            else:
                update = self._update(od, status, "")
            listener.on_order_update(update)
        else:
            od.status = _FILLED if done else _SUBMITTED
        if od.oca:
            for other in [o for o in self._orders.values() if o.oca == od.oca and o is not od]:
                self._cancel(other, f"OCA group {od.oca!r}: {od.oid} filled")
        if done and od.children:
            for child in od.children:
                if child.oid in self._orders and not child.live:
                    child.parent = ""
                    self._go_live(child)

    def _remove(self, od: _Order) -> None:
        self._orders.pop(od.oid, None)
        if od.live:
            od.live = False
            self.working.remove(od)

    def _cancel(self, od: _Order, message: str) -> None:
        if od.oid not in self._orders:
            return
        self._remove(od)
        self._set_status(od, OrderStatus.CANCELLED, message)
        for child in od.children:
            if child.oid in self._orders and not child.live:
                self._cancel(child, f"parent {od.oid} cancelled")

    def _update(self, od: _Order, status: OrderStatus, message: str) -> OrderUpdate:
        avg = 0.0
        filled = od.filled
        if filled:
            q, r = divmod(od.fill_value, filled)
            if r:
                avg = od.fill_value / filled * self._tick_f
            else:
                avg = self._prices.get(q) or self.instrument.from_ticks(q)
        return _new_update(od.oid, status, filled, od.qty - filled, avg, self._ts, message)

    def _set_status(self, od: _Order, status: OrderStatus, message: str = "") -> None:
        od.status = status
        listener = self.listener
        if listener is not None:
            if od.filled:
                listener.on_order_update(self._update(od, status, message))
            else:  # _update's result for an order with no fill yet, without the call
                listener.on_order_update(_new_update(od.oid, status, 0, od.qty, 0.0, self._ts, message))

"""Pre-trade risk: every order passes these checks before it is recorded and sent, or is refused with reason.

Limits come from config (`RiskLimits`); time is the data's clock (the trading day and the session check
use event time, never the wall clock). Every refusal is a `RiskLimitExceeded` naming the limit, the value
the order would reach, the allowed value and by how much it is over. A daily loss beyond the limit trips the
kill switch: until it is reset only orders that bring a position toward flat without crossing it pass (working
orders on the same side counted), and the order manager cancels everything and flattens.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from ibot.exchange.hours import CME_GLOBEX, TradingHours, hours_for
from ibot.model.clock import Clock
from ibot.model.errors import InvalidOrderError
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import ns_to_datetime
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.states import to_decimal

__all__ = ["KillSwitch", "RiskLimitExceeded", "RiskLimits", "RiskManager"]

log = logging.getLogger(__name__)

_PCT = Decimal("0.001")


class RiskLimitExceeded(InvalidOrderError):
    """An order refused by a pre-trade check: `limit` names the check, `value` vs `allowed` by how much."""

    def __init__(self, limit: str, value: object, allowed: object, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.allowed = allowed
        self.message = message


class RiskLimits(BaseModel):
    """Pre-trade limits (None disables a limit). Defaults are deliberately small: raise them on purpose."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_position: int | None = Field(
        default=5, ge=0, description="abs contracts per instrument, after the order"
    )
    max_position_by_symbol: dict[str, int] = Field(
        default_factory=dict, description="per-symbol override of max_position (key: symbol or local symbol)"
    )
    max_order_size: int | None = Field(default=5, ge=1, description="contracts in one order")
    max_orders_per_day: int | None = Field(default=200, ge=0, description="orders sent per trading day")
    max_trades_per_day: int | None = Field(default=200, ge=0, description="executions per trading day")
    daily_loss_limit: Decimal | None = Field(
        default=None, gt=0, description="loss (realized + unrealized, in the day) that trips the kill switch"
    )
    price_band_pct: Decimal | None = Field(
        default=Decimal(5),
        gt=0,
        description="max distance of a limit/stop price from the last price, percent",
    )
    price_band_ticks: int | None = Field(
        default=None, ge=1, description="max distance from last price, ticks"
    )
    enforce_trading_hours: bool = Field(default=True, description="refuse orders outside the session")

    def position_limit(self, instrument: Instrument) -> int | None:
        for key in (instrument.local_symbol, instrument.symbol):
            if key and key in self.max_position_by_symbol:
                return self.max_position_by_symbol[key]
        return self.max_position


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """Why and when trading was halted."""

    reason: str
    ts: int


class _Book:
    """One instrument's position and its P&L in the current trading day (exact, in the instrument's currency).

    Day P&L = cash flow of today's executions (less fees) + value of the position now - its value at the day's
    start (marked at the last price known then): realized and unrealized together.
    """

    __slots__ = ("cash", "instrument", "last", "open_value", "position", "unvalued")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.position = 0
        self.last: Decimal | None = None
        self.cash = Decimal(0)
        self.open_value = Decimal(0)
        self.unvalued = 0  # contracts adopted before any price was known: valued at the first one (no P&L)

    def set_last(self, price: Decimal) -> None:
        """A new last price; contracts adopted without a price are valued at it, so they add no P&L."""
        if self.unvalued:
            self.open_value += price * self.unvalued * self.instrument.multiplier
            self.unvalued = 0
        self.last = price

    def value(self) -> Decimal:
        if self.position == 0 or self.last is None:
            return Decimal(0)
        return self.last * self.position * self.instrument.multiplier

    def day_pnl(self) -> Decimal:
        return self.cash + self.value() - self.open_value

    def new_day(self) -> None:
        self.cash = Decimal(0)
        self.open_value = self.value()


class RiskManager:
    """Runs the pre-trade checks and keeps what they need: positions, day counters, day P&L, the kill switch.

    The order manager feeds it executions (`on_fill`), fees (`on_commission`), prices (`mark`) and sent orders
    (`on_order_sent`); `check` raises RiskLimitExceeded or returns None.
    """

    def __init__(
        self,
        limits: RiskLimits | None = None,
        clock: Clock | None = None,
        *,
        hours: Callable[[Instrument], TradingHours | None] = hours_for,
        day_of: Callable[[int], date] = CME_GLOBEX.session_date,
    ) -> None:
        self.limits = limits or RiskLimits()
        self.clock = clock or Clock()
        self._hours = hours
        self._day_of = day_of
        self._day: date | None = None
        self._books: dict[str, _Book] = {}
        self.orders_today = 0
        self.trades_today = 0
        self.kill_switch: KillSwitch | None = None

    # State fed by the order manager ---------------------------------------------------------------------
    def _roll(self, ts: int) -> None:
        day = self._day_of(ts)
        if self._day is None or day > self._day:  # forward only: an older event never rolls the day back
            if self._day is not None:
                log.info("risk: new trading day %s (was %s); day counters and day P&L reset", day, self._day)
            self._day = day
            self.orders_today = 0
            self.trades_today = 0
            for book in self._books.values():
                book.new_day()

    def _book(self, instrument: Instrument) -> _Book:
        book = self._books.get(instrument.key)
        if book is None:
            book = self._books[instrument.key] = _Book(instrument)
        return book

    def position(self, instrument: Instrument | str) -> int:
        key = instrument if isinstance(instrument, str) else instrument.key
        book = self._books.get(key)
        return 0 if book is None else book.position

    def positions(self) -> dict[str, int]:
        """Signed position of every instrument seen, by instrument key (zero positions included)."""
        return {k: b.position for k, b in self._books.items()}

    def instruments(self) -> Iterable[Instrument]:
        return (b.instrument for b in self._books.values())

    def last_price(self, instrument: Instrument | str) -> Decimal | None:
        key = instrument if isinstance(instrument, str) else instrument.key
        book = self._books.get(key)
        return None if book is None else book.last

    def mark(self, instrument: Instrument, price: float | Decimal, ts: int | None = None) -> bool:
        """A new last price; returns True when it tripped the kill switch just now."""
        self._roll(self.clock.ns if ts is None else ts)
        px = to_decimal(price)
        if not px.is_finite() or (px <= 0 and instrument.sec_type is not SecType.FUT):
            return False
        self._book(instrument).set_last(px)
        return self.check_loss(ts)

    def on_order_sent(self, ts: int | None = None) -> None:
        self._roll(self.clock.ns if ts is None else ts)
        self.orders_today += 1

    def on_fill(
        self, instrument: Instrument, side: Side, quantity: int, price: float | Decimal, ts: int | None = None
    ) -> bool:
        """Count an execution and move the position; returns True when it tripped the kill switch just now."""
        self._roll(self.clock.ns if ts is None else ts)
        px = to_decimal(price)
        book = self._book(instrument)
        signed = side.sign * quantity
        book.position += signed
        book.cash -= px * signed * instrument.multiplier
        if book.last is None:
            book.set_last(px)
        self.trades_today += 1
        return self.check_loss(ts)

    def on_commission(self, instrument: Instrument, commission: Decimal, ts: int | None = None) -> bool:
        """A fee is part of the day's loss; returns True when it tripped the kill switch just now."""
        self._roll(self.clock.ns if ts is None else ts)
        self._book(instrument).cash -= commission
        return self.check_loss(ts)

    def set_position(self, instrument: Instrument, position: int) -> None:
        """Adopt a position (reconciliation: the recorded one, or the broker's): it adds no P&L, the day's
        P&L counts on from the last price (or, none known yet, from the first one)."""
        book = self._book(instrument)
        if book.position != position:
            if book.last is None:
                book.unvalued += position - book.position
            else:
                book.open_value += book.last * (position - book.position) * instrument.multiplier
            book.position = position

    def day_pnl(self) -> Decimal:
        """Realized + unrealized P&L of the current trading day, all instruments (one currency assumed)."""
        return sum((b.day_pnl() for b in self._books.values()), Decimal(0))

    # Kill switch ----------------------------------------------------------------------------------------
    def check_loss(self, ts: int | None = None) -> bool:
        """Trip the kill switch when the day's loss exceeds the limit; True only on the trip itself."""
        limit = self.limits.daily_loss_limit
        if limit is None or self.kill_switch is not None:
            return False
        pnl = self.day_pnl()
        if pnl >= -limit:
            return False
        self.trip(f"daily_loss: day P&L {pnl} < allowed -{limit} (over by {-limit - pnl})", ts)
        return True

    def trip(self, reason: str, ts: int | None = None) -> None:
        if self.kill_switch is None:
            self.kill_switch = KillSwitch(reason, self.clock.ns if ts is None else ts)
            log.error("risk: KILL SWITCH tripped: %s", reason)

    def reset_kill_switch(self) -> None:
        """Allow trading again (a person's decision, never automatic)."""
        if self.kill_switch is not None:
            log.warning("risk: kill switch reset (was: %s)", self.kill_switch.reason)
        self.kill_switch = None

    # The checks -----------------------------------------------------------------------------------------
    def check(
        self,
        request: OrderRequest,
        instrument: Instrument,
        *,
        working_same_side: int = 0,
        flatten: bool = False,
        new_order: bool = True,
    ) -> None:
        """Raise RiskLimitExceeded unless `request` may be sent now.

        `working_same_side`: contracts still working in orders on the same instrument and side, which count
        toward the position limit as if filled. `flatten`: an order of the kill switch / a close-out, checked
        only for sanity and for reducing the position (no limit may stop a position from being closed).
        `new_order` False (a modify of a working order) skips the orders-per-day count.
        """
        ts = self.clock.ns
        self._roll(ts)
        where = f"{request.side} {request.quantity} {instrument.key}"
        self._check_sane(request, instrument, where)
        position = self.position(instrument)
        after = position + request.side.sign * request.quantity
        opening = abs(after) > abs(position)
        if flatten:
            if opening or position == 0 or after * position < 0:  # must reduce, never flip
                raise RiskLimitExceeded(
                    "flatten",
                    after,
                    0,
                    f"flatten: {where} makes position {after} from {position}; a close-out must reduce it",
                )
            return
        lim = self.limits
        if lim.enforce_trading_hours:
            hours = self._hours(instrument)
            if hours is not None and not hours.is_open(ts):
                raise RiskLimitExceeded(
                    "trading_hours",
                    ns_to_datetime(ts),
                    hours.name,
                    f"trading_hours: {where} at {ns_to_datetime(ts).isoformat()} is outside the "
                    f"{hours.name} session (next open {ns_to_datetime(hours.next_open(ts)).isoformat()})",
                )
        if self.kill_switch is not None:
            self._check_halted(request, position, working_same_side, where, self.kill_switch.reason)
        if lim.max_order_size is not None and request.quantity > lim.max_order_size:
            raise RiskLimitExceeded(
                "max_order_size",
                request.quantity,
                lim.max_order_size,
                f"max_order_size: {where} has quantity {request.quantity} > allowed {lim.max_order_size} "
                f"(over by {request.quantity - lim.max_order_size})",
            )
        allowed_pos = lim.position_limit(instrument)
        if allowed_pos is not None:
            projected = position + request.side.sign * (request.quantity + working_same_side)
            # Above the limit only by reducing (an adopted position): smaller, on the same side of flat.
            reducing = projected * position >= 0 and abs(projected) < abs(position)
            if abs(projected) > allowed_pos and not reducing:
                working = f" with {working_same_side} working" if working_same_side else ""
                raise RiskLimitExceeded(
                    "max_position",
                    abs(projected),
                    allowed_pos,
                    f"max_position: {where}{working} would make position {abs(projected)} > "
                    f"allowed {allowed_pos} (over by {abs(projected) - allowed_pos})",
                )
        if (
            new_order
            and lim.max_orders_per_day is not None
            and self.orders_today + 1 > lim.max_orders_per_day
        ):
            n = self.orders_today + 1
            raise RiskLimitExceeded(
                "max_orders_per_day",
                n,
                lim.max_orders_per_day,
                f"max_orders_per_day: {where} would be order {n} of trading day {self._day} > allowed "
                f"{lim.max_orders_per_day} (over by {n - lim.max_orders_per_day})",
            )
        if lim.max_trades_per_day is not None and self.trades_today + 1 > lim.max_trades_per_day:
            n = self.trades_today + 1
            raise RiskLimitExceeded(
                "max_trades_per_day",
                n,
                lim.max_trades_per_day,
                f"max_trades_per_day: {where} would make trade {n} of trading day {self._day} > allowed "
                f"{lim.max_trades_per_day} (over by {n - lim.max_trades_per_day})",
            )
        self._check_band(request, instrument, where)

    @staticmethod
    def _check_halted(
        request: OrderRequest, position: int, working_same_side: int, where: str, reason: str
    ) -> None:
        """While the kill switch is tripped, an order may only bring the position toward flat, never past it.

        The order and the contracts already working on its side count together (as if all filled), so two
        SELL 2 on a long 2 cannot cross to short between them; any order on a flat position would open one.
        """
        projected = position + request.side.sign * (request.quantity + working_same_side)
        if request.side.sign * position < 0 and projected * position >= 0:
            return  # against the position, and not past flat
        working = f" with {working_same_side} working" if working_same_side else ""
        if projected * position < 0:
            why, allowed, over = f"would cross flat to {projected}", 0, abs(projected)
        else:
            why, allowed, over = f"would open or add to it ({projected})", position, abs(projected - position)
        raise RiskLimitExceeded(
            "kill_switch",
            projected,
            allowed,
            f"kill_switch: {where}{working} on position {position} {why} (over by {over}) while trading is "
            f"halted ({reason}); only orders that bring the position toward flat without crossing it pass",
        )

    def _check_sane(self, request: OrderRequest, instrument: Instrument, where: str) -> None:
        qty = request.quantity
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise RiskLimitExceeded(
                "quantity", qty, 1, f"quantity: {where} has quantity {qty!r}; it must be a whole number >= 1"
            )
        if request.side not in (Side.BUY, Side.SELL):
            raise RiskLimitExceeded(
                "side", request.side, "BUY/SELL", f"side: {request.side!r} is not BUY or SELL"
            )
        for name, price in (("limit price", request.limit_price), ("stop price", request.stop_price)):
            if price is None:
                continue
            bad = ""
            if not isinstance(price, (int, float)) or isinstance(price, bool) or not math.isfinite(price):
                bad = "is not a finite number"
            elif price <= 0 and instrument.sec_type is not SecType.FUT:
                bad = "must be positive"
            elif not instrument.is_on_grid(price):
                bad = f"is not on the tick grid of {instrument.tick_size}"
            if bad:
                raise RiskLimitExceeded(
                    "price", price, "finite, on the tick grid", f"price: {where} {name} {price!r} {bad}"
                )
        needs = {
            OrderType.LMT: ("limit",),
            OrderType.STP: ("stop",),
            OrderType.STP_LMT: ("limit", "stop"),
            OrderType.MKT: (),
        }[request.order_type]
        for kind in needs:
            if getattr(request, f"{kind}_price") is None:
                raise RiskLimitExceeded(
                    "price",
                    None,
                    f"a {kind} price",
                    f"price: {where} {request.order_type} order has no {kind} price",
                )

    def _check_band(self, request: OrderRequest, instrument: Instrument, where: str) -> None:
        lim = self.limits
        if lim.price_band_pct is None and lim.price_band_ticks is None:
            return
        prices = [("limit", request.limit_price), ("stop", request.stop_price)]
        checked = [(name, p) for name, p in prices if p is not None]
        if not checked:
            return  # a market order trades at the market; nothing to compare
        last = self.last_price(instrument)
        if last is None:
            raise RiskLimitExceeded(
                "price_band",
                None,
                "a last price",
                f"price_band: {where}: no last price known for {instrument.key} to check the "
                f"{checked[0][0]} price {checked[0][1]} against",
            )
        for name, price in checked:
            px = to_decimal(price)
            distance = abs(px - last)
            if lim.price_band_ticks is not None:
                ticks = int(distance / instrument.tick_size)
                if ticks > lim.price_band_ticks:
                    raise RiskLimitExceeded(
                        "price_band",
                        ticks,
                        lim.price_band_ticks,
                        f"price_band: {where} {name} {px} is {ticks} ticks from last {last} > allowed "
                        f"{lim.price_band_ticks} ticks (over by {ticks - lim.price_band_ticks})",
                    )
            if lim.price_band_pct is not None and last != 0:
                pct = distance / abs(last) * 100
                if pct > lim.price_band_pct:
                    shown = pct.quantize(_PCT)
                    raise RiskLimitExceeded(
                        "price_band",
                        pct,
                        lim.price_band_pct,
                        f"price_band: {where} {name} {px} is {shown}% from last {last} > allowed "
                        f"{lim.price_band_pct}% (over by {(pct - lim.price_band_pct).quantize(_PCT)}%)",
                    )

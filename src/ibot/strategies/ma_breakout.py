"""Seed 001's strategy: a 9-SMA cross arms a direction; a breakout (or SMA slope) confirms the entry.

Exact rules, evaluated in ``on_bar`` for each closed bar t (indicators already include bar t; "position" is
``ctx.position``, i.e. filled orders only):

1. Trading day. The day of bar t is the America/New_York date of ``bar.ts`` (the bar's open time) moved
   forward by 6 hours, so the futures session that opens at 18:00 ET counts toward the next date. The per-day
   entry count resets when the day changes. Time is read from the bar only.
2. Entries filled since the previous bar (reported through ``on_fill``) are booked on bar t: the day's entry
   count goes up by one and the "last entry bar" becomes t (in a backtest the fill happened inside bar t).
3. Cross. Up: ``close[t-1] <= sma[t-1] and close[t] > sma[t]``; down: ``close[t-1] >= sma[t-1] and
   close[t] < sma[t]`` (no cross while the SMA is not ready). A cross sets the armed direction to its own
   (replacing whatever was armed) and cancels a working entry order, if any.
4. Flatten. Whenever the position is against the armed direction and no flatten order is working, a MARKET
   order for the whole position is sent with reason ``"flatten"``. (After a cross this is the "flatten at
   once" rule; it also covers an entry that filled while its cancel was in flight on a live venue.)
5. Entry timeout. A working entry placed on bar s is cancelled on bar t when ``t - s >= entry_timeout_bars``;
   the direction stays armed, so rule 6 may place a fresh entry on the same bar.
6. Entry. When a direction is armed, the position is 0, no order of ours is working, and all of
     - filter: ``entry_filter="breakout"``: long ``close[t] > max(high[t-N..t-1])``, short
       ``close[t] < min(low[t-N..t-1])`` with N = ``breakout_bars`` (the previous N bars, bar t excluded; not
       ready before N earlier bars exist); ``entry_filter="slope"``: long ``sma[t] - sma[t-slope_bars] > 0``,
       short ``< 0``;
     - chop guards: entries booked today ``< max_trades_per_day`` and ``t - last_entry_bar >=
       min_bars_between_reversals`` (always true before the first entry),
   hold, a marketable LIMIT order for ``quantity`` is sent: BUY at touch + K ticks (reason ``"Open-Long"``)
   or SELL at touch - K ticks (reason ``"Open-Short"``), K = ``limit_offset_ticks``. The touch is the ask
   for a buy / the bid for a sell when the context knows quotes, else the bar close ``close[t]`` (always so
   in a bar backtest). Bar t's own entry waits while a flatten is unfilled, so a reversal is "flatten on bar
   t, enter from bar t+1 on"; the entry never races the flatten in the book.
7. Any fill of an entry order consumes the armed direction: no new entry until the next cross.

Orders are DAY orders (the OrderRequest default): an entry still working when the trading day ends expires
there like a timed-out one (the direction stays armed; rule 6 may enter again in the next session).

"Previous N candles" excludes bar t, while the runtime updates indicators with bar t before ``on_bar``:
the strategy therefore keeps the highest high / lowest low as they stood after bar t-1 (``_hh_prev`` /
``_ll_prev``) and compares against those. The streaming Highest/Lowest read the close from a bar, so the
strategy registers subclasses that feed them the bar's high and low.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ibot.indicators.streaming import SMA, Highest, Lowest
from ibot.model.calendar import trading_day_bounds
from ibot.model.market import Bar, ns_to_datetime
from ibot.model.orders import Fill, OrderStatus, OrderType, OrderUpdate, Side
from ibot.strategy.base import Strategy
from ibot.strategy.params import Param

_NAN = float("nan")


class HighestHigh(Highest):
    """Highest(period) fed with each bar's high (the runtime calls update_bar)."""

    __slots__ = ()
    source = "high"


class LowestLow(Lowest):
    """Lowest(period) fed with each bar's low."""

    __slots__ = ()
    source = "low"


class MaBreakout(Strategy):
    """SMA cross arms a side, opposite positions are flattened at market, entries are marketable limits."""

    name: ClassVar[str] = "ma_breakout"
    twin: ClassVar[str | None] = "ibot.strategies.twins.ma_breakout:run"
    params: ClassVar[tuple[Param, ...]] = (
        Param("sma_period", 9, 2, 500, help="bars in the simple moving average whose cross arms a side"),
        Param("breakout_bars", 7, 2, 50, help="N: enter when the close breaks the previous N bars' high/low"),
        Param("entry_filter", "breakout", choices=("breakout", "slope"), help="breakout or SMA slope filter"),
        Param(
            "slope_bars",
            3,
            1,
            200,
            help="slope filter: sign of sma[t] - sma[t-slope_bars] must match the side",
        ),
        Param("limit_offset_ticks", 2, 0, 100, help="K: entry limit = close +/- K ticks (marketable)"),
        Param("max_trades_per_day", 12, 1, 10_000, help="entries allowed per futures trading day (18:00 ET)"),
        Param("min_bars_between_reversals", 3, 0, 10_000, help="bars that must pass after an entry fill"),
        Param("quantity", 1, 1, 10_000, help="contracts per entry"),
        Param("entry_timeout_bars", 3, 1, 10_000, help="cancel an unfilled entry after this many bars"),
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.p
        self._sma_period: int = p["sma_period"]
        self._n: int = p["breakout_bars"]
        self._use_slope: bool = p["entry_filter"] == "slope"
        self._slope_bars: int = p["slope_bars"]
        self._k: int = p["limit_offset_ticks"]
        self._max_trades: int = p["max_trades_per_day"]
        self._min_gap: int = p["min_bars_between_reversals"]
        self._qty: int = p["quantity"]
        self._timeout: int = p["entry_timeout_bars"]

    def on_start(self) -> None:
        ctx = self.ctx
        self._sma = ctx.indicator(SMA(self._sma_period))
        self._hh = ctx.indicator(HighestHigh(self._n))
        self._ll = ctx.indicator(LowestLow(self._n))
        self._bar = -1  # index of the bar being processed
        self._prev_close = _NAN
        self._prev_sma = _NAN
        self._hh_prev = _NAN  # max(high) over the N bars before the current one
        self._ll_prev = _NAN
        # ring (slope filter only): sma of bar i at i % slope_bars
        self._sma_hist: list[float] | None = [_NAN] * self._slope_bars if self._use_slope else None
        self._armed = 0  # +1 long, -1 short, 0 none
        self._entry_id: str | None = None
        self._entry_bar = 0
        self._flatten_id: str | None = None
        self._booked_id = ""
        self._entry_filled = False  # an entry filled since the previous bar: booked on the next one
        self._last_entry_bar = -(10**12)
        self._trades_today = 0
        self._day_start = 0
        self._day_end = -1

    def on_bar(self, bar: Bar) -> None:
        t = self._bar + 1
        self._bar = t
        ts = bar[0]
        if ts >= self._day_end or ts < self._day_start:
            self._day_start, self._day_end = trading_day_bounds(ts)
            self._trades_today = 0
        if self._entry_filled:
            self._entry_filled = False
            self._trades_today += 1
            self._last_entry_bar = t
            if self._trades_today == self._max_trades:
                self.ctx.log(self.status_note())

        close = bar[4]
        sma = self._sma.value
        prev_close = self._prev_close
        prev_sma = self._prev_sma
        self._prev_close = close
        self._prev_sma = sma
        if prev_close <= prev_sma and close > sma:
            self._new_signal(1)
        elif prev_close >= prev_sma and close < sma:
            self._new_signal(-1)

        armed = self._armed
        hh_prev = self._hh_prev
        ll_prev = self._ll_prev
        self._hh_prev = self._hh.value
        self._ll_prev = self._ll.value
        sma_hist = self._sma_hist
        if sma_hist is not None:
            ring = t % self._slope_bars
            slope = sma - sma_hist[ring]  # sma_hist[ring] still holds sma[t - slope_bars]
            sma_hist[ring] = sma
        if not armed and self._entry_id is None:
            return  # nothing armed, nothing working: no position can be against a side
        pos = self.ctx.position
        if pos and armed * pos < 0 and self._flatten_id is None:
            self._flatten_id = self.order(
                Side.BUY if pos < 0 else Side.SELL, abs(pos), OrderType.MKT, reason="flatten"
            )

        if self._entry_id is not None and t - self._entry_bar >= self._timeout:
            self.ctx.cancel(self._entry_id)
            self._entry_id = None

        if (
            armed
            and not pos
            and self._entry_id is None
            and self._flatten_id is None
            and self._trades_today < self._max_trades
            and t - self._last_entry_bar >= self._min_gap
        ):
            if sma_hist is not None:
                go = slope > 0 if armed > 0 else slope < 0
            else:
                go = close > hh_prev if armed > 0 else close < ll_prev
            if go:
                self._enter(armed, close, t)

    def status_note(self) -> str:
        """What the live status line shows instead of the last signal: "" while entries are allowed, else
        that the daily trade cap stopped them and until when (market time)."""
        if getattr(self, "_trades_today", 0) < self._max_trades:
            return ""
        until = ns_to_datetime(self._day_end).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"stopped for the day: daily cap of {self._max_trades} entries reached; "
            f"no new entries until {until}"
        )

    def _new_signal(self, direction: int) -> None:
        self._armed = direction
        if self._entry_id is not None:
            self.ctx.cancel(self._entry_id)
            self._entry_id = None

    def _enter(self, direction: int, close: float, t: int) -> None:
        ctx = self.ctx
        inst = ctx.instrument
        touch = ctx.ask if direction > 0 else ctx.bid  # NaN when only bars are known
        if touch != touch:  # noqa: PLR0124 - NaN test without a call
            touch = close
        ticks = inst.to_ticks(touch) + direction * self._k
        side = Side.BUY if direction > 0 else Side.SELL
        reason = "Open-Long" if direction > 0 else "Open-Short"
        self._entry_id = self.order(side, self._qty, OrderType.LMT, inst.from_ticks(ticks), reason=reason)
        self._entry_bar = t

    def on_fill(self, fill: Fill) -> None:
        if fill.client_order_id == self._flatten_id:
            if self.ctx.position == 0:
                self._flatten_id = None
            return
        # An entry fill (or a late fill of an entry whose cancel was in flight): book it, consume the signal.
        if fill.client_order_id != self._booked_id:  # a partly filled order is one entry, booked once
            self._booked_id = fill.client_order_id
            self._entry_filled = True
        self._armed = 0
        if fill.client_order_id == self._entry_id and self.ctx.position == fill.side.sign * self._qty:
            self._entry_id = None

    def on_order_update(self, update: OrderUpdate) -> None:
        if not update.status.is_done or update.status is OrderStatus.FILLED:
            return
        if update.client_order_id == self._flatten_id:
            self._flatten_id = None  # rejected or cancelled: rule 4 sends a new one on the next bar
        elif update.client_order_id == self._entry_id:
            self._entry_id = None


__all__ = ["HighestHigh", "LowestLow", "MaBreakout", "trading_day_bounds"]

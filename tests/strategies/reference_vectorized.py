"""An independent computation of ma_breakout's trades, for tests only.

It shares no code with ibot.strategies / ibot.indicators / ibot.backtest / ibot.exchange: indicators, crosses
and filters are vectorized numpy over the whole series; one small loop runs the position state machine and
the fills under the backtester's documented rules (mirrored here, not imported):

- orders sent in on_bar(t) first meet bar t+1; a cancel sent in on_bar(t) takes effect before bar t+1;
- a market order fills at the open of the next bar, `slippage_ticks` ticks worse (buy higher, sell lower);
- a buy limit L fills at the open of the first later bar whose open <= L, else at L on the first later bar
  whose low < L (the book must trade through the limit); a sell limit mirrors it (open >= L, else high > L);
- fills of bar u are known to the strategy before its on_bar(u);
- orders are DAY orders: the trading day ends at 18:00 New York time (17:00 Chicago). A limit sent on a day's
  last bar still meets the next bar's open (fills there only if marketable at the open) and then expires; one
  that has already met a bar expires before the first bar of a later day;
- a position still open after the last bar is closed at the last close ("end of data").

Prices are handled as whole ticks (integers) so the comparison with the backtester is exact.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

_NS = 1_000_000_000
_HOUR_NS = 3600 * _NS
_DAY_NS = 24 * _HOUR_NS


@dataclass(frozen=True, slots=True)
class RefTrade:
    """One round trip: bars where entry and exit filled, side (+1 long / -1 short), prices in ticks."""

    entry_bar: int
    side: int
    entry_ticks: int
    exit_bar: int | None = None
    exit_ticks: int | None = None


def sma(x: NDArray[np.float64], period: int) -> NDArray[np.float64]:
    """Simple moving average, NaN for the first period-1 values (window sums are exact on a tick grid)."""
    out = np.full(len(x), np.nan)
    if len(x) >= period:
        out[period - 1 :] = sliding_window_view(x, period).sum(axis=1) / period
    return out


def previous_max(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """out[t] = max(x[t-n..t-1]); NaN while fewer than n earlier values exist."""
    out = np.full(len(x), np.nan)
    if len(x) > n:
        out[n:] = sliding_window_view(x, n).max(axis=1)[:-1]
    return out


def previous_min(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    out = np.full(len(x), np.nan)
    if len(x) > n:
        out[n:] = sliding_window_view(x, n).min(axis=1)[:-1]
    return out


def trading_days(ts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Futures trading day per bar: the New York wall-clock date of ts + 6 h (the day opens at 18:00 ET)."""
    ny = ZoneInfo("America/New_York")
    hours = ts // _HOUR_NS
    uniq, inverse = np.unique(hours, return_inverse=True)
    # UTC offsets change only on whole UTC hours, so one lookup per distinct hour is exact.
    offsets = np.array(
        [
            int(datetime.fromtimestamp(int(h) * 3600, UTC).astimezone(ny).utcoffset().total_seconds())  # type: ignore[union-attr]
            for h in uniq
        ],
        dtype=np.int64,
    )
    local_ns = ts + offsets[inverse] * _NS
    return (local_ns + 6 * _HOUR_NS) // _DAY_NS


def reference_trades(
    ts: NDArray[np.int64],
    open_: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    tick_size: float,
    *,
    sma_period: int = 9,
    breakout_bars: int = 7,
    entry_filter: str = "breakout",
    slope_bars: int = 3,
    limit_offset_ticks: int = 2,
    max_trades_per_day: int = 12,
    min_bars_between_reversals: int = 3,
    quantity: int = 1,
    entry_timeout_bars: int = 3,
    slippage_ticks: int = 0,
    close_at_end: bool = True,
    events: Counter[str] | None = None,
) -> list[RefTrade]:
    """The trades ma_breakout must produce on these bars (quantity only scales sizes: not modelled).

    `events`, when given, counts which rules fired (so a test can show its data exercised each of them).
    """
    seen: Counter[str] = Counter() if events is None else events
    del quantity
    n = len(close)
    o_t = np.rint(open_ / tick_size).astype(np.int64)
    h_t = np.rint(high / tick_size).astype(np.int64)
    l_t = np.rint(low / tick_size).astype(np.int64)
    c_t = np.rint(close / tick_size).astype(np.int64)

    avg = sma(close, sma_period)
    prev_close = np.r_[np.nan, close[:-1]]
    prev_avg = np.r_[np.nan, avg[:-1]]
    with np.errstate(invalid="ignore"):
        cross_up = (prev_close <= prev_avg) & (close > avg)
        cross_dn = (prev_close >= prev_avg) & (close < avg)
        if entry_filter == "slope":
            lagged = np.r_[np.full(slope_bars, np.nan), avg[:-slope_bars]]
            slope = avg - lagged
            long_ok = slope > 0
            short_ok = slope < 0
        else:
            long_ok = close > previous_max(high, breakout_bars)
            short_ok = close < previous_min(low, breakout_bars)
    day = trading_days(ts)
    cross = np.where(cross_up, 1, np.where(cross_dn, -1, 0))

    trades: list[RefTrade] = []
    pos = 0  # +1 / -1 / 0 (in units of `quantity`)
    armed = 0
    market: int = 0  # side of a pending market (flatten) order
    entry_side = 0  # side of a working entry limit
    entry_limit = 0
    entry_bar = 0
    booked = False
    last_entry = -(10**12)
    today = None
    trades_today = 0
    for u in range(n):
        # --- matching of bar u against orders sent up to on_bar(u-1)
        if market:
            price = int(o_t[u]) + market * slippage_ticks
            last = trades[-1]
            trades[-1] = RefTrade(last.entry_bar, last.side, last.entry_ticks, u, price)
            pos = 0
            market = 0
        if entry_side:
            side = entry_side
            fill = None
            expired = day[u] != day[entry_bar]  # the DAY order's trading day ended before bar u
            if not expired or u == entry_bar + 1:
                # the open is an arrival price; trading through the limit inside the bar needs a live order
                if (o_t[u] - entry_limit) * side <= 0:
                    fill = int(o_t[u])
                elif not expired and (l_t[u] < entry_limit if side > 0 else h_t[u] > entry_limit):
                    fill = entry_limit
            entry_side = 0 if expired or fill is not None else side
            if expired and fill is None:
                seen["entry expired at day end"] += 1
            if fill is not None:
                seen["entry filled at open" if fill == o_t[u] else "entry filled at limit"] += 1
                trades.append(RefTrade(u, side, fill))
                pos = side
                armed = 0
                booked = True
        # --- on_bar(u)
        if day[u] != today:
            today = day[u]
            trades_today = 0
        if booked:
            booked = False
            trades_today += 1
            last_entry = u
        if cross[u]:
            armed = int(cross[u])
            if entry_side:
                seen["entry cancelled by a cross"] += 1
            entry_side = 0
        if pos and armed * pos < 0 and not market:
            seen["flatten"] += 1
            market = -pos
        if entry_side and u - entry_bar >= entry_timeout_bars:
            seen["entry timed out"] += 1
            entry_side = 0
        if not (
            armed and not pos and not entry_side and not market and (long_ok[u] if armed > 0 else short_ok[u])
        ):
            continue
        if trades_today >= max_trades_per_day:
            seen["blocked by max_trades_per_day"] += 1
        elif u - last_entry < min_bars_between_reversals:
            seen["blocked by min_bars_between_reversals"] += 1
        else:
            entry_side = armed
            entry_limit = int(c_t[u]) + armed * limit_offset_ticks
            entry_bar = u
    if close_at_end and trades and trades[-1].exit_bar is None:
        last = trades[-1]
        trades[-1] = RefTrade(last.entry_bar, last.side, last.entry_ticks, n - 1, int(c_t[-1]))
    return trades

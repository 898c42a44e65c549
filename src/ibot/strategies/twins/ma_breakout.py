"""Compiled twin of ibot.strategies.ma_breakout.MaBreakout (its docstring states the rules).

How the event-driven run unfolds, which the kernel follows bar by bar (one order at most works at a time:
an entry is sent only while flat with no flatten working, a flatten only while a position is held, which an
entry working with full fills never leaves):

Matching at bar t (before the strategy sees it). A DAY order that has met a bar and whose trading day ended
by bar t's time expires first. Otherwise the order meets the open: the flatten (market) fills at
open +/- slippage; the entry (limit L) fills at the open when the open is at or better than L; an entry
that met no bar before and whose day has ended expires right after the open; else the bar path fills a buy
limit at L once the low goes strictly below L (at L too with `limit_fills_on_touch`), a sell limit once the
high goes above L (the path open -> extremes -> close reaches the low and the high from an open above a buy
limit and below a sell limit, so the path order does not matter for one order).

Strategy at bar t: new trading day -> count reset; an entry filled at bar t is booked (count + 1, last entry
bar t; the cap reached logs the status note); a cross arms its side and cancels a working entry; a position
against the armed side is flattened at market; an entry working for `entry_timeout_bars` is cancelled; then
a new entry (limit at close +/- K ticks) when armed, flat, nothing working, under the day's cap, past the
minimum gap and the filter agrees. An entry fill disarms.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit

from ibot.backtest.compiled import TwinRun
from ibot.backtest.report import BacktestResult
from ibot.exchange.matching import FillRules
from ibot.model.calendar import trading_day_bounds
from ibot.model.market import ns_to_datetime
from ibot.strategies.ma_breakout import MaBreakout
from ibot.strategies.twins._kernel_common import (
    R_END,
    R_FLATTEN,
    R_LONG,
    R_SHORT,
    previous_extreme,
    sma_stream,
)
from ibot.strategies.twins.result import BarData, Fills, build_result, event_driven, prepare, supported

__all__ = ["kernel", "run", "simulate"]

_NONE, _ENTRY, _FLATTEN = 0, 1, 2
_EMPTY = np.empty(0)


@njit(cache=True)
def kernel(
    ts: np.ndarray,
    close: np.ndarray,
    sma: np.ndarray,
    hh: np.ndarray,
    ll: np.ndarray,
    open_t: np.ndarray,
    high_t: np.ndarray,
    low_t: np.ndarray,
    close_t: np.ndarray,
    expiry: np.ndarray,
    day: np.ndarray,
    use_slope: bool,
    slope_bars: int,
    offset: int,
    max_trades: int,
    min_gap: int,
    qty: int,
    timeout: int,
    slip: int,
    touch: bool,
    close_at_end: bool,
) -> tuple[
    int,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
]:  # pragma: no cover - compiled
    """The whole MaBreakout run in ticks, given the SMA of the close and the highest high / lowest low of
    the `breakout_bars` bars before each bar (empty with the slope filter, which does not read them).
    Returns (fill count, fill bar, side, quantity, price ticks, reason code, position per bar, cash per
    bar, fills so far per bar, bars where the daily cap was reached)."""
    n = len(close)
    f_bar = np.empty(n + 1, dtype=np.int64)
    f_sign = np.empty(n + 1, dtype=np.int64)
    f_qty = np.empty(n + 1, dtype=np.int64)
    f_px = np.empty(n + 1, dtype=np.int64)
    f_reason = np.empty(n + 1, dtype=np.int64)
    pos_a = np.empty(n, dtype=np.int64)
    cash_a = np.empty(n, dtype=np.int64)
    nfu = np.empty(n, dtype=np.int64)
    cap_bars = np.empty(n, dtype=np.int64)
    ncap = 0
    nf = 0
    pos = 0
    cash = 0
    # The one working order: kind (_NONE / _ENTRY limit / _FLATTEN market), side, quantity, limit, expiry.
    kind = _NONE
    o_sign = 0
    o_qty = 0
    o_lim = 0
    o_exp = 0
    o_seen = False
    o_reason = 0
    entry_bar = 0
    armed = 0
    entry_filled = False
    last_entry = -(10**12)
    trades_today = 0
    cur_day = -1
    prev_c = np.nan
    prev_m = np.nan
    for t in range(n):
        # Matching against bar t.
        if kind != _NONE:
            if o_seen and o_exp <= ts[t]:
                kind = _NONE  # DAY order expired at the end of the trading day
            else:
                o_seen = True
                o = open_t[t]
                px = -1
                done = False
                if kind == _FLATTEN:
                    px = o + o_sign * slip
                    done = True
                elif (o_lim - o) * o_sign >= 0:
                    px = o
                    done = True
                elif o_exp <= ts[t]:
                    kind = _NONE  # met its one open after the day's end: expired
                elif o_sign > 0:
                    lo = low_t[t]
                    if lo < o_lim or (touch and lo == o_lim):
                        px = o_lim
                        done = True
                else:
                    hi = high_t[t]
                    if hi > o_lim or (touch and hi == o_lim):
                        px = o_lim
                        done = True
                if done:
                    f_bar[nf] = t
                    f_sign[nf] = o_sign
                    f_qty[nf] = o_qty
                    f_px[nf] = px
                    f_reason[nf] = o_reason
                    nf += 1
                    pos += o_sign * o_qty
                    cash -= o_sign * o_qty * px
                    if kind == _ENTRY:
                        entry_filled = True
                        armed = 0
                    kind = _NONE
        # The strategy's on_bar(t).
        if day[t] != cur_day:
            cur_day = day[t]
            trades_today = 0
        if entry_filled:
            entry_filled = False
            trades_today += 1
            last_entry = t
            if trades_today == max_trades:
                cap_bars[ncap] = t
                ncap += 1
        c = close[t]
        m = sma[t]
        if prev_c <= prev_m and c > m:
            armed = 1
            if kind == _ENTRY:
                kind = _NONE
        elif prev_c >= prev_m and c < m:
            armed = -1
            if kind == _ENTRY:
                kind = _NONE
        prev_c = c
        prev_m = m
        if armed != 0 or kind == _ENTRY:
            if pos != 0 and armed * pos < 0 and kind != _FLATTEN:
                kind = _FLATTEN
                o_sign = 1 if pos < 0 else -1
                o_qty = abs(pos)
                o_exp = expiry[t]
                o_seen = False
                o_reason = R_FLATTEN
            if kind == _ENTRY and t - entry_bar >= timeout:
                kind = _NONE
            if (
                armed != 0
                and pos == 0
                and kind == _NONE
                and trades_today < max_trades
                and t - last_entry >= min_gap
            ):
                if use_slope:
                    d = m - sma[t - slope_bars] if t >= slope_bars else np.nan
                    go = d > 0 if armed > 0 else d < 0
                else:
                    go = c > hh[t] if armed > 0 else c < ll[t]
                if go:
                    kind = _ENTRY
                    o_sign = armed
                    o_qty = qty
                    o_lim = close_t[t] + armed * offset
                    o_exp = expiry[t]
                    o_seen = False
                    o_reason = R_LONG if armed > 0 else R_SHORT
                    entry_bar = t
        pos_a[t] = pos
        cash_a[t] = cash
        nfu[t] = nf
    if close_at_end and pos != 0 and n > 0:
        p = close_t[n - 1]
        f_bar[nf] = n - 1
        f_sign[nf] = -1 if pos > 0 else 1
        f_qty[nf] = abs(pos)
        f_px[nf] = p
        f_reason[nf] = R_END
        nf += 1
        cash += pos * p
        pos_a[n - 1] = 0
        cash_a[n - 1] = cash
        nfu[n - 1] = nf
    return nf, f_bar, f_sign, f_qty, f_px, f_reason, pos_a, cash_a, nfu, cap_bars[:ncap]


def _cap_note(ts: int, max_trades: int) -> str:
    """MaBreakout.status_note() at the bar the daily cap is reached (its day end from the bar's time)."""
    until = ns_to_datetime(trading_day_bounds(ts)[1]).strftime("%Y-%m-%d %H:%M UTC")
    return f"stopped for the day: daily cap of {max_trades} entries reached; no new entries until {until}"


def simulate(data: BarData, params: Mapping[str, Any], rules: FillRules, close_at_end: bool = True) -> Fills:
    """One compiled run on prepared bars with resolved MaBreakout parameters (the optimizer's trial)."""
    p = params
    use_slope = p["entry_filter"] == "slope"
    n_bars = int(p["breakout_bars"])
    nf, bar, sign, qty, px, reason, pos, cash, nfu, cap_bars = kernel(
        data.ts,
        data.close,
        sma_stream(data.close, int(p["sma_period"])),
        _EMPTY if use_slope else previous_extreme(data.high, n_bars, 1.0),
        _EMPTY if use_slope else previous_extreme(data.low, n_bars, -1.0),
        data.open_t,
        data.high_t,
        data.low_t,
        data.close_t,
        data.expiry,
        data.strategy_day,
        use_slope,
        int(p["slope_bars"]),
        int(p["limit_offset_ticks"]),
        int(p["max_trades_per_day"]),
        int(p["min_bars_between_reversals"]),
        int(p["quantity"]),
        int(p["entry_timeout_bars"]),
        int(rules.slippage_ticks),
        bool(rules.limit_fills_on_touch),
        bool(close_at_end),
    )
    max_trades = int(p["max_trades_per_day"])
    logs = [(int(b), _cap_note(int(data.ts[b]), max_trades)) for b in cap_bars]
    return Fills(nf, bar, sign, qty, px, reason, pos, cash, nfu, logs)


def run(spec: TwinRun) -> BacktestResult:
    """Backtester(...).run() for MaBreakout, computed by the compiled kernel."""
    if not supported(spec, MaBreakout):
        return event_driven(spec)
    started = time.perf_counter()
    data = prepare(spec.instrument, spec.bars, spec.sessions)
    fills = simulate(data, spec.strategy.p, spec.rules, spec.close_at_end)
    return build_result(spec, data, fills, started)

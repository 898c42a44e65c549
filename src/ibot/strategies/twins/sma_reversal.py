"""Compiled twin of ibot.strategies.sma_reversal.SmaReversal (see that module for the rules).

The event-driven run, bar by bar: the market order sent on bar t-1 (if any) fills at bar t's open +/- the
slippage (a market order always fills at the next open; a DAY order gets that open even across the day's
end); then the cross of bar t targets +/-quantity and the difference to the position goes out as one
market order. What is still unsent at the end is dropped; the position is closed at the last close.
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
from ibot.strategies.sma_reversal import SmaReversal
from ibot.strategies.twins._kernel_common import R_END, R_LONG, R_SHORT, sma_stream
from ibot.strategies.twins.result import BarData, Fills, build_result, event_driven, prepare, supported

__all__ = ["kernel", "run", "simulate"]


@njit(cache=True)
def kernel(
    close: np.ndarray,
    sma: np.ndarray,
    open_t: np.ndarray,
    close_t: np.ndarray,
    qty: int,
    slip: int,
    close_at_end: bool,
) -> tuple[
    int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]:  # pragma: no cover - compiled
    """Cross signals of the close over `sma`, market fills, position and cash per bar, in ticks. Returns
    (fill count, fill bar, side, quantity, price ticks, reason code, position per bar, cash per bar, fills
    so far per bar)."""
    n = len(close)
    f_bar = np.empty(n + 1, dtype=np.int64)
    f_sign = np.empty(n + 1, dtype=np.int64)
    f_qty = np.empty(n + 1, dtype=np.int64)
    f_px = np.empty(n + 1, dtype=np.int64)
    f_reason = np.empty(n + 1, dtype=np.int64)
    pos_a = np.empty(n, dtype=np.int64)
    cash_a = np.empty(n, dtype=np.int64)
    nfu = np.empty(n, dtype=np.int64)
    nf = 0
    pos = 0
    cash = 0
    pend = 0  # signed quantity of the market order sent on the previous bar
    pend_reason = 0
    prev_c = np.nan
    prev_m = np.nan
    for t in range(n):
        if pend != 0:
            s = 1 if pend > 0 else -1
            q = pend * s
            p = open_t[t] + s * slip
            f_bar[nf] = t
            f_sign[nf] = s
            f_qty[nf] = q
            f_px[nf] = p
            f_reason[nf] = pend_reason
            nf += 1
            pos += pend
            cash -= pend * p
            pend = 0
        c = close[t]
        m = sma[t]
        if prev_c <= prev_m and c > m:
            pend = qty - pos
            pend_reason = R_LONG
        elif prev_c >= prev_m and c < m:
            pend = -qty - pos
            pend_reason = R_SHORT
        prev_c = c
        prev_m = m
        pos_a[t] = pos
        cash_a[t] = cash
        nfu[t] = nf
    if close_at_end and pos != 0 and n > 0:
        s = -1 if pos > 0 else 1
        p = close_t[n - 1]
        f_bar[nf] = n - 1
        f_sign[nf] = s
        f_qty[nf] = abs(pos)
        f_px[nf] = p
        f_reason[nf] = R_END
        nf += 1
        cash += pos * p
        pos = 0
        pos_a[n - 1] = 0
        cash_a[n - 1] = cash
        nfu[n - 1] = nf
    return nf, f_bar, f_sign, f_qty, f_px, f_reason, pos_a, cash_a, nfu


def simulate(data: BarData, params: Mapping[str, Any], rules: FillRules, close_at_end: bool = True) -> Fills:
    """One compiled run on prepared bars with resolved SmaReversal parameters (the optimizer's trial)."""
    out = kernel(
        data.close,
        sma_stream(data.close, int(params["sma_period"])),
        data.open_t,
        data.close_t,
        int(params["quantity"]),
        int(rules.slippage_ticks),
        bool(close_at_end),
    )
    return Fills(*out, [])


def run(spec: TwinRun) -> BacktestResult:
    """Backtester(...).run() for SmaReversal, computed by the compiled kernel."""
    if not supported(spec, SmaReversal):
        return event_driven(spec)
    started = time.perf_counter()
    data = prepare(spec.instrument, spec.bars, spec.sessions)
    fills = simulate(data, spec.strategy.p, spec.rules, spec.close_at_end)
    return build_result(spec, data, fills, started)

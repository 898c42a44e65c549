"""Compiled pieces shared by the twins: the streaming SMA bit for bit, rolling extremes, round trips.

The twins' kernels take these pieces' arrays as inputs instead of calling them: numba's cache tracks only a
function's own source file, so a kernel calling into this module could keep running stale cached code after
an edit here (and a sweep may reuse an SMA across trials with the same period).

Everything here works on plain numpy arrays inside numba (`@njit(cache=True)`): prices as integer ticks for
fills and money, the bar floats only where the event-driven strategy compares floats (SMA crosses, breakout,
slope), so every comparison gives the same answer as the strategy's own.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ibot.indicators.streaming import RESUM_EVERY

__all__ = [
    "REASONS",
    "R_END",
    "R_FLATTEN",
    "R_LONG",
    "R_SHORT",
    "equity_nb",
    "exact_sum",
    "previous_extreme",
    "round_trips",
    "sma_stream",
]

# Fill reasons (the order's `reason`, copied to Trade.entry_reason / exit_reason), as small integer codes.
R_LONG, R_SHORT, R_FLATTEN, R_END = 0, 1, 2, 3
REASONS = ("Open-Long", "Open-Short", "flatten", "end of data")


@njit(cache=True)
def exact_sum(values: np.ndarray, start: int, stop: int) -> float:  # pragma: no cover - compiled
    """Correctly rounded sum of values[start:stop] (what math.fsum returns): Shewchuk's exact partials, then
    a round-half-even correction of the last partial."""
    partials = np.empty(stop - start + 1)
    m = 0
    for idx in range(start, stop):
        x = values[idx]
        i = 0
        for j in range(m):
            y = partials[j]
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo != 0.0:
                partials[i] = lo
                i += 1
            x = hi
        partials[i] = x
        m = i + 1
    if m == 0:
        return 0.0
    k = m - 1
    hi = partials[k]
    lo = 0.0
    while k > 0:
        x = hi
        k -= 1
        y = partials[k]
        hi = x + y
        yr = hi - x
        lo = y - yr
        if lo != 0.0:
            break
    if k > 0 and ((lo < 0.0 and partials[k - 1] < 0.0) or (lo > 0.0 and partials[k - 1] > 0.0)):
        y = lo * 2.0
        x = hi + y
        yr = x - hi
        if y == yr:
            hi = x
    return hi


@njit(cache=True)
def sma_stream(x: np.ndarray, period: int) -> np.ndarray:  # pragma: no cover - compiled
    """ibot.indicators.streaming.SMA fed x bar by bar, bit for bit: the running sum in its order (add the new
    value, emit total/period, subtract the oldest) and the exact re-summation of the newest period-1 values
    at a ring wrap every ceil(RESUM_EVERY / period) wraps. NaN until `period` values."""
    n = len(x)
    out = np.empty(n)
    ring = np.zeros(period)
    resum_wraps = -(-RESUM_EVERY // period)
    wraps_left = resum_wraps
    j = 0
    s = 0.0
    for i in range(n):
        v = x[i]
        ring[j] = v
        total = s + v
        j += 1
        if j == period:
            j = 0
            w = wraps_left - 1
            if w == 0:
                w = resum_wraps
                s = exact_sum(ring, 1, period)  # fsum((*ring, -ring[0])) is the exact sum of ring[1:]
            else:
                s = total - ring[0]
            wraps_left = w
        else:
            s = total - ring[j]
        out[i] = total / period if i >= period - 1 else math.nan
    return out


@njit(cache=True)
def previous_extreme(x: np.ndarray, period: int, sign: float) -> np.ndarray:  # pragma: no cover - compiled
    """out[t] = max (sign +1) or min (sign -1) of x[t-period..t-1], the `period` bars before t; NaN while
    fewer than `period` bars precede t. A monotonic deque of indices, O(1) amortized."""
    n = len(x)
    out = np.full(n, math.nan)
    dq = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    for i in range(n):
        if i >= period:
            while dq[head] < i - period:
                head += 1
            out[i] = x[dq[head]]
        v = x[i] * sign
        while tail > head and x[dq[tail - 1]] * sign <= v:
            tail -= 1
        dq[tail] = i
        tail += 1
    return out


@njit(cache=True)
def round_trips(
    nf: int, bar: np.ndarray, sign: np.ndarray, qty: np.ndarray, px: np.ndarray, reason: np.ndarray
) -> tuple[np.ndarray, ...]:  # pragma: no cover - compiled
    """The backtester's round-trip bookkeeping (BacktestContext.book) over the fills, in integers.

    Returns per closed trade: entry bar, exit bar, sign, entered qty, entered value (ticks x qty), exited
    qty, exited value, fee units (contracts whose per-contract fee the trade carries: every contract it
    entered plus every contract it exited; a reversal's fill is split between the two trades that way),
    entry reason, exit reason, max |position|; and the count of closed trades."""
    cap = nf
    e_bar = np.empty(cap, dtype=np.int64)
    x_bar = np.empty(cap, dtype=np.int64)
    t_sign = np.empty(cap, dtype=np.int64)
    in_q = np.empty(cap, dtype=np.int64)
    in_v = np.empty(cap, dtype=np.int64)
    out_q = np.empty(cap, dtype=np.int64)
    out_v = np.empty(cap, dtype=np.int64)
    fee_u = np.empty(cap, dtype=np.int64)
    in_r = np.empty(cap, dtype=np.int64)
    out_r = np.empty(cap, dtype=np.int64)
    max_q = np.empty(cap, dtype=np.int64)
    nt = 0
    pos = 0
    o_bar = o_sign = o_inq = o_inv = o_outq = o_outv = o_fee = o_r = o_max = 0
    for k in range(nf):
        q = qty[k]
        s = sign[k]
        p = px[k]
        new = pos + s * q
        if pos == 0:
            o_bar, o_sign, o_inq, o_inv, o_outq, o_outv, o_fee, o_r, o_max = (
                bar[k],
                s,
                q,
                q * p,
                0,
                0,
                q,
                reason[k],
                q,
            )
        elif pos * s > 0:
            o_inq += q
            o_inv += q * p
            o_fee += q
            o_max = max(o_max, abs(new))
        else:
            closing = min(q, abs(pos))
            o_outq += closing
            o_outv += closing * p
            o_fee += closing
            if new == 0 or new * pos < 0:
                e_bar[nt] = o_bar
                x_bar[nt] = bar[k]
                t_sign[nt] = o_sign
                in_q[nt] = o_inq
                in_v[nt] = o_inv
                out_q[nt] = o_outq
                out_v[nt] = o_outv
                fee_u[nt] = o_fee
                in_r[nt] = o_r
                out_r[nt] = reason[k]
                max_q[nt] = o_max
                nt += 1
                if new != 0:
                    rest = q - closing
                    o_bar, o_sign, o_inq, o_inv, o_outq, o_outv, o_fee, o_r, o_max = (
                        bar[k],
                        s,
                        rest,
                        rest * p,
                        0,
                        0,
                        rest,
                        reason[k],
                        rest,
                    )
        pos = new
    return (
        e_bar[:nt],
        x_bar[:nt],
        t_sign[:nt],
        in_q[:nt],
        in_v[:nt],
        out_q[:nt],
        out_v[:nt],
        fee_u[:nt],
        in_r[:nt],
        out_r[:nt],
        max_q[:nt],
    )


@njit(cache=True)
def equity_nb(
    cash: np.ndarray,
    pos: np.ndarray,
    close_t: np.ndarray,
    fills_upto: np.ndarray,
    cum_fees: np.ndarray,
    capital: float,
    tick_value: float,
) -> np.ndarray:  # pragma: no cover - compiled
    """The engine's equity, element by element in its operation order (no fused multiply-add):
    capital + float(cash + position x close ticks) x tick value - fees so far (cum_fees[fills so far])."""
    n = len(cash)
    out = np.empty(n)
    for i in range(n):
        eq = float(cash[i] + pos[i] * close_t[i])
        out[i] = (capital + eq * tick_value) - cum_fees[fills_upto[i]]
    return out

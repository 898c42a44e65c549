"""Vectorized twins of the streaming indicators: float64 arrays in, same-length arrays out, NaN in warm-up.

Warm-up positions and values follow TA-Lib's defaults, as the streaming classes do. highest, lowest, ema
and atr return exactly the streaming numbers: max/min are exact, and the ema and Wilder recursions run the
same float operations in a plain Python loop (~0.1 s per million values; numpy has no recursive filter).
sma and slope sum in another order than the O(1) running sums, so they agree to ~1e-13 of the data's scale.
"""

from __future__ import annotations

from itertools import islice

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from ibot.indicators.streaming import IndicatorInputError, check_period

FloatArray = NDArray[np.float64]


def _series(name: str, x: ArrayLike) -> FloatArray:
    """`x` as a 1-D float64 array, refusing NaN and infinities as the streaming update does."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise IndicatorInputError(f"{name} expects a 1-D array, got shape {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.argmax(bad))
        kind = "NaN" if np.isnan(a[i]) else "non-finite"
        raise IndicatorInputError(f"{name} got a {kind} input at index {i}: {a[i]!r}")
    return a


def _window_reduce(a: FloatArray, n: int, ufunc: np.ufunc, identity: float) -> FloatArray:
    """ufunc-reduce every window a[i:i+n] in O(len(a)), i = 0..len(a)-n (van Herk / Gil-Werman).

    Split into blocks of n; a window is the suffix of one block joined with the prefix of the next. For an
    idempotent ufunc (max, min) a window on a block boundary may use both halves; for add it must use one.
    """
    size = a.size
    count = size - n + 1
    blocks = -(-size // n)
    padded = np.full(blocks * n, identity)
    padded[:size] = a
    grid = padded.reshape(blocks, n)
    prefix = ufunc.accumulate(grid, axis=1).ravel()
    suffix = ufunc.accumulate(grid[:, ::-1], axis=1)[:, ::-1].ravel()
    out: FloatArray = ufunc(suffix[:count], prefix[n - 1 : n - 1 + count])
    if ufunc is np.add:
        out[::n] = suffix[:count:n]
    return out


def sma(x: ArrayLike, period: int) -> FloatArray:
    """Simple moving average (TA-Lib SMA); first value at index period-1."""
    n = check_period("sma", period)
    a = _series("sma", x)
    out = np.full(a.size, np.nan)
    if a.size >= n:
        out[n - 1 :] = _window_reduce(a, n, np.add, 0.0) / n
    return out


def ema(x: ArrayLike, period: int) -> FloatArray:
    """EMA seeded with the SMA of the first `period` values, k = 2/(period+1) (TA-Lib EMA default)."""
    n = check_period("ema", period)
    a = _series("ema", x)
    out = np.full(a.size, np.nan)
    if a.size < n:
        return out
    if n == 1:
        out[:] = a + 0.0  # the streaming seed path: 0.0 + x, divided by 1
        return out
    values = a.tolist()
    total = 0.0
    for v in islice(values, n):
        total += v
    prev = total / n
    k = 2.0 / (n + 1)
    smoothed = [prev]
    append = smoothed.append
    for v in islice(values, n, None):
        prev = (v - prev) * k + prev
        append(prev)
    out[n - 1 :] = smoothed
    return out


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> FloatArray:
    """TA-Lib TRANGE: max(high, prev close) - min(low, prev close); NaN at index 0 (no previous close)."""
    h, lo, c = _hlc("true_range", high, low, close)
    out = np.full(h.size, np.nan)
    if h.size > 1:
        prev_close = c[:-1]
        out[1:] = np.maximum(h[1:], prev_close) - np.minimum(lo[1:], prev_close)
    return out


def _hlc(name: str, high: ArrayLike, low: ArrayLike, close: ArrayLike) -> tuple[FloatArray, ...]:
    arrays = tuple(
        _series(f"{name} {label}", v) for label, v in (("high", high), ("low", low), ("close", close))
    )
    if len({v.size for v in arrays}) != 1:
        sizes = ", ".join(str(v.size) for v in arrays)
        raise IndicatorInputError(f"{name} needs high, low and close of one length, got {sizes}")
    return arrays


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int) -> FloatArray:
    """Wilder ATR (TA-Lib ATR): seed = mean TR of bars 1..period; first value at index period."""
    n = check_period("atr", period)
    tr = true_range(*_hlc("atr", high, low, close))
    out = np.full(tr.size, np.nan)
    if tr.size <= n:
        return out
    values = tr.tolist()
    total = 0.0
    for v in islice(values, 1, n + 1):
        total += v
    prev = total / n
    n_minus_1 = float(n - 1)
    smoothed = [prev]
    append = smoothed.append
    for v in islice(values, n + 1, None):
        prev = (prev * n_minus_1 + v) / n
        append(prev)
    out[n:] = smoothed
    return out


def highest(x: ArrayLike, period: int) -> FloatArray:
    """Rolling maximum of the last `period` values (TA-Lib MAX); first value at index period-1."""
    n = check_period("highest", period)
    a = _series("highest", x)
    out = np.full(a.size, np.nan)
    if a.size >= n:
        out[n - 1 :] = _window_reduce(a, n, np.maximum, -np.inf)
    return out


def lowest(x: ArrayLike, period: int) -> FloatArray:
    """Rolling minimum of the last `period` values (TA-Lib MIN); first value at index period-1."""
    n = check_period("lowest", period)
    a = _series("lowest", x)
    out = np.full(a.size, np.nan)
    if a.size >= n:
        out[n - 1 :] = _window_reduce(a, n, np.minimum, np.inf)
    return out


def slope(x: ArrayLike, period: int) -> FloatArray:
    """Least-squares slope per bar over the last `period` values (TA-Lib LINEARREG_SLOPE); period >= 2."""
    n = check_period("slope", period, minimum=2)
    a = _series("slope", x)
    out = np.full(a.size, np.nan)
    if a.size >= n:
        centred_time = np.arange(n) - (n - 1) / 2.0
        out[n - 1 :] = (sliding_window_view(a, n) @ centred_time) / (n * (n * n - 1) / 12.0)
    return out

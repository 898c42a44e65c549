"""Streaming indicators: one value per new bar, O(1) per update, matching TA-Lib's default semantics.

They sit on the backtester's hot path, so each update is written for CPython speed: `__slots__`, fixed-size
ring buffers allocated once, locals, no numpy. `value` is NaN until `ready`; `period`, `value` and `ready` are
plain attributes to read (never assign them). Every update rejects NaN and infinite input, which would
otherwise poison the running state for good.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Callable, Mapping
from numbers import Integral
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from ibot.model.errors import IbotError, ParameterError

if TYPE_CHECKING:
    from ibot.model.market import Bar

_NAN = math.nan
_F = TypeVar("_F", bound=Callable[..., Any])

# Running sums are recomputed exactly (math.fsum over the ring buffer) once at least this many updates have
# passed, at the next wrap of the ring, so rounding error never accumulates past ~max(period, 64) updates.
RESUM_EVERY = 64

# SMA.batch: prices that are multiples of 1/_GRID are summed exactly in integers below _EXACT_LIMIT.
_GRID = 1024.0
_EXACT_LIMIT = 2**52


class IndicatorInputError(IbotError, ValueError):
    """An indicator was fed a NaN or infinite value (or a malformed array)."""


def check_period(indicator: str, period: object, minimum: int = 1) -> int:
    """`period` as an int; ParameterError naming the indicator when it is not an integer >= minimum."""
    if isinstance(period, bool) or not isinstance(period, Integral) or period < minimum:
        raise ParameterError(f"{indicator} period must be an integer >= {minimum}, got {period!r}")
    return int(period)


def _bad_input(indicator: object, what: str, value: object) -> IndicatorInputError:
    kind = "NaN" if value != value else "non-finite"  # noqa: PLR0124 - NaN is the one value unequal to itself
    return IndicatorInputError(f"{indicator!r} got a {kind} {what}: {value!r}")


class Indicator(Protocol):
    """What the runtime needs from a streaming indicator: feed it bars, read its value once ready."""

    period: int
    value: float
    ready: bool

    def update_bar(self, bar: Bar) -> float: ...

    def reset(self) -> None: ...


def _reads_source(fn: _F) -> _F:
    """Mark an `update_bar` that feeds `update` exactly the bar field named by the class's `source`."""
    fn._reads_source = True  # type: ignore[attr-defined]
    return fn


class _Streaming:
    """What every streaming indicator here shares: `ready`, and `batch`, the backtester's shortcut.

    `batch(columns)` returns, for a whole series at once, exactly the values `update_bar` would return bar by
    bar (bit for bit), and leaves the indicator in the state it would have after the last bar; or None when
    it cannot promise that (then the runtime feeds it bar by bar). `columns` maps "open", "high", "low",
    "close" to float64 arrays. The default runs `update` itself over the column named by `source`: exact by
    construction, without the per-bar dispatch. A subclass that overrides `update_bar` gets None unless it
    also says how to batch.
    """

    __slots__ = ()
    source: ClassVar[str] = "close"  # the bar field a single-input indicator reads
    value: float
    _ready: bool

    @property
    def ready(self) -> bool:
        """True once `value` is a number (NaN during warm-up)."""
        return self.value == self.value

    def batch(self, columns: Mapping[str, NDArray[np.float64]]) -> list[float] | None:
        if not self._batch_safe():
            return None
        update: Callable[[float], float] = getattr(self, "update")  # noqa: B009 - ATR's takes three
        return list(map(update, columns[self.source].tolist()))

    def _replay(self, tail: NDArray[np.float64]) -> None:
        """The state after a batch: a fresh indicator fed the series' last window `tail` (for indicators
        whose state is that window alone)."""
        getattr(self, "reset")()  # noqa: B009 - every subclass has one
        update: Callable[[float], float] = getattr(self, "update")  # noqa: B009
        for v in tail.tolist():
            update(v)

    def _batch_safe(self) -> bool:
        """`update_bar` is one of ours feeding `update` the bar's `source` (a subclass may feed another)."""
        return getattr(type(self).update_bar, "_reads_source", False) is True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that only changes `source` (e.g. Highest of the highs) gets the update_bar reading it.
        if "source" in cls.__dict__ and "update_bar" not in cls.__dict__:
            cls.update_bar = _Streaming.update_bar  # type: ignore[method-assign]

    @_reads_source
    def update_bar(self, bar: Bar) -> float:
        update: Callable[[float], float] = getattr(self, "update")  # noqa: B009
        return update(getattr(bar, self.source))


class SMA(_Streaming):
    """Simple moving average of the last `period` values (TA-Lib SMA: first value after `period` inputs).

    Kept as a running sum in TA-Lib's own order (add the new value, emit, subtract the oldest), so short runs
    are bit-identical to TA-Lib. To stop drift over millions of updates, the sum is recomputed exactly with
    math.fsum from the ring buffer at a ring wrap at least every RESUM_EVERY updates (amortized cost < 1 add).
    """

    __slots__ = ("_count", "_j", "_ready", "_resum_wraps", "_ring", "_sum", "_wraps_left", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period("SMA", period)
        self._resum_wraps = -(-RESUM_EVERY // self.period)
        self.reset()

    def reset(self) -> None:
        self.value = _NAN
        self._ready = False
        self._ring = [0.0] * self.period  # 0.0 placeholders make the warm-up sum a plain sequential sum
        self._j = 0
        self._sum = 0.0  # sum of the newest period-1 values
        self._count = 0
        self._wraps_left = self._resum_wraps

    def update(self, x: float) -> float:
        if x - x != 0.0:
            raise _bad_input(self, "input", x)
        ring = self._ring
        j = self._j
        ring[j] = x
        total = self._sum + x
        n = self.period
        j += 1
        if j == n:
            j = 0
            w = self._wraps_left - 1
            if w == 0:
                w = self._resum_wraps
                self._sum = math.fsum((*ring, -ring[0]))  # exact sum of the newest n-1 values
            else:
                self._sum = total - ring[0]
            self._wraps_left = w
        else:
            self._sum = total - ring[j]
        self._j = j
        if not self._ready:
            c = self._count + 1
            self._count = c
            if c < n:
                return _NAN
            self._ready = True
        v = total / n
        self.value = v
        return v

    def batch(self, columns: Mapping[str, NDArray[np.float64]]) -> list[float] | None:
        """On a binary price grid (multiples of 2**-10, such as 0.25) every running sum above is exact, so the
        streaming value is the exact window sum divided by `period`, rounded once: computed here from an
        integer cumulative sum. Any other series goes through `update` itself."""
        if not self._batch_safe():
            return None
        x = columns[self.source]
        n = self.period
        scaled = x * _GRID
        if self._count or not len(x) or not np.array_equal(scaled, np.rint(scaled)):
            return super().batch(columns)
        units = np.rint(scaled).astype(np.int64)
        if int(np.abs(units).max()) * n >= _EXACT_LIMIT:
            return super().batch(columns)
        sums = np.cumsum(units)
        window = sums[n - 1 :].copy()
        window[1:] -= sums[:-n]
        out = np.full(len(x), _NAN)
        out[n - 1 :] = (window.astype(np.float64) / _GRID) / n
        self._replay(x[-n:])  # the sums are exact: its last window gives the same state
        return out.tolist()

    @_reads_source
    def update_bar(self, bar: Bar) -> float:
        return self.update(bar.close)

    def __repr__(self) -> str:
        return f"SMA({self.period})"


class EMA(_Streaming):
    """Exponential moving average, k = 2/(period+1), seeded with the SMA of the first `period` values.

    This is TA-Lib's default (compatibility "Default") EMA, update `(x - ema) * k + ema` in its order; EMA(1)
    is the input itself, as TA-Lib returns.
    """

    __slots__ = ("_count", "_k", "_ready", "_smoothing", "_sum", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period("EMA", period)
        self._k = 2.0 / (self.period + 1)
        self.reset()

    def reset(self) -> None:
        self.value = _NAN
        self._ready = False
        self._smoothing = False
        self._sum = 0.0
        self._count = 0

    def update(self, x: float) -> float:
        if x - x != 0.0:
            raise _bad_input(self, "input", x)
        if self._smoothing:
            v = self.value
            v = (x - v) * self._k + v
            self.value = v
            return v
        # Warm-up: the seed is the plain sequential mean of the first `period` values, as TA-Lib sums them.
        s = self._sum + x
        c = self._count + 1
        n = self.period
        if c < n:
            self._sum = s
            self._count = c
            return _NAN
        v = s / n
        self.value = v
        self._ready = True
        # With period 1 the seed path stays in use: it returns x exactly, where (x - v) * 1 + v might not.
        self._smoothing = n > 1
        return v

    @_reads_source
    def update_bar(self, bar: Bar) -> float:
        return self.update(bar.close)

    def __repr__(self) -> str:
        return f"EMA({self.period})"


class ATR(_Streaming):
    """Average true range with Wilder's smoothing, as TA-Lib ATR: first value on the (period+1)-th bar.

    The first bar has no previous close, so it gives no true range; the seed is the mean of the next `period`
    true ranges, then atr = (atr * (period - 1) + tr) / period in TA-Lib's order. The true range is
    max(high, prev_close) - min(low, prev_close), which equals TA-Lib's max of the three differences bit for
    bit whenever high >= low (rounding is monotone).
    """

    __slots__ = ("_count", "_n_minus_1", "_prev_close", "_ready", "_sum", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period("ATR", period)
        self._n_minus_1 = float(self.period - 1)
        self.reset()

    def reset(self) -> None:
        self.value = _NAN
        self._ready = False
        self._prev_close = _NAN
        self._sum = 0.0
        self._count = -1  # the first bar only supplies a previous close

    def update(self, high: float, low: float, close: float) -> float:
        if (high + low + close) * 0.0 != 0.0:  # NaN or inf in any of them (or an absurd overflow)
            raise self._reject(high, low, close)
        pc = self._prev_close
        self._prev_close = close
        hi = high if high > pc else pc
        lo = low if low < pc else pc
        tr = hi - lo
        if self._ready:
            v = (self.value * self._n_minus_1 + tr) / self.period
            self.value = v
            return v
        c = self._count + 1
        self._count = c
        if c == 0:
            return _NAN
        s = self._sum + tr
        self._sum = s
        if c < self.period:
            return _NAN
        v = s / self.period
        self.value = v
        self._ready = True
        return v

    def batch(self, columns: Mapping[str, NDArray[np.float64]]) -> list[float] | None:
        if type(self).update_bar is not ATR.update_bar:
            return None
        cols = (columns["high"].tolist(), columns["low"].tolist(), columns["close"].tolist())
        return list(map(self.update, *cols))

    def update_bar(self, bar: Bar) -> float:
        return self.update(bar.high, bar.low, bar.close)

    def _reject(self, high: float, low: float, close: float) -> IndicatorInputError:
        for name, v in (("high", high), ("low", low), ("close", close)):
            if not math.isfinite(v):
                return _bad_input(self, name, v)
        return IndicatorInputError(f"{self!r}: high + low + close overflows: {high!r}, {low!r}, {close!r}")

    def __repr__(self) -> str:
        return f"ATR({self.period})"


class _RollingExtreme(_Streaming):
    """Extreme of the last `period` values, O(1) amortized with a monotonic deque.

    Values are kept multiplied by `_SIGN` (exact in floating point), so one max-deque serves both Highest
    (+1) and Lowest (-1). The deque holds the window's candidates, non-increasing, duplicates kept; the
    value leaving the window is read from a ring buffer and, if it is still a candidate, it is the front.
    """

    __slots__ = ("_count", "_dq", "_j", "_ready", "_ring", "period", "value")
    _SIGN: ClassVar[float] = 1.0

    def __init__(self, period: int) -> None:
        self.period = check_period(type(self).__name__, period)
        self.reset()

    def reset(self) -> None:
        self.value = _NAN
        self._ready = False
        self._ring = [_NAN] * self.period  # NaN placeholders never equal the front, so warm-up needs no test
        self._j = 0
        self._dq: deque[float] = deque()
        self._count = 0

    def update(self, x: float) -> float:
        if x - x != 0.0:
            raise _bad_input(self, "input", x)
        sign = self._SIGN
        s = x * sign
        ring = self._ring
        j = self._j
        old = ring[j]
        ring[j] = s
        j += 1
        if j == self.period:
            j = 0
        self._j = j
        dq = self._dq
        if dq and dq[0] == old:
            dq.popleft()
        while dq and dq[-1] < s:
            dq.pop()
        dq.append(s)
        if not self._ready:
            c = self._count + 1
            self._count = c
            if c < self.period:
                return _NAN
            self._ready = True
        v = dq[0] * sign
        self.value = v
        return v

    def batch(self, columns: Mapping[str, NDArray[np.float64]]) -> list[float] | None:
        """max/min are exact, so the vectorized twin gives the streaming values bit for bit."""
        if not self._batch_safe():
            return None
        from ibot.indicators import vectorized

        x = columns[self.source]
        if self._count or not len(x):
            return super().batch(columns)
        fn = vectorized.highest if self._SIGN > 0 else vectorized.lowest
        out = fn(x, self.period)
        self._replay(x[-self.period :])
        return out.tolist()

    @_reads_source
    def update_bar(self, bar: Bar) -> float:
        return self.update(bar.close)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.period})"


class Highest(_RollingExtreme):
    """Highest of the last `period` values (TA-Lib MAX)."""

    __slots__ = ()
    _SIGN = 1.0


class Lowest(_RollingExtreme):
    """Lowest of the last `period` values (TA-Lib MIN)."""

    __slots__ = ()
    _SIGN = -1.0


class Slope(_Streaming):
    """Least-squares slope per bar of the last `period` values (TA-Lib LINEARREG_SLOPE), O(1) per update.

    Keeps the window sum S and the centred moment C = sum((age - m) * y), m = (period-1)/2, age 0 = newest;
    the slope is -C / Q with Q = sum((age - m)^2). Centring keeps C small, so rounding stays near the data's
    scale; both sums are recomputed exactly (math.fsum) at a ring wrap at least every RESUM_EVERY updates.
    Period must be >= 2: a line through one point has no slope (TA-Lib rejects period 1 too).
    """

    __slots__ = (
        "_count",
        "_j",
        "_m",
        "_m_plus_1",
        "_moment",
        "_q",
        "_ready",
        "_resum_wraps",
        "_ring",
        "_sum",
        "_weights",
        "_wraps_left",
        "period",
        "value",
    )

    def __init__(self, period: int) -> None:
        self.period = n = check_period("Slope", period, minimum=2)
        self._m = (n - 1) / 2.0
        self._m_plus_1 = self._m + 1.0
        self._q = n * (n * n - 1) / 12.0  # sum of (age - m)^2 over a window, exact for any practical n
        # At a wrap the newest value sits in slot n-1, so slot p has age n-1-p and weight age - m = m - p.
        self._weights = [self._m - p for p in range(n)]
        self._resum_wraps = -(-RESUM_EVERY // n)
        self.reset()

    def reset(self) -> None:
        self.value = _NAN
        self._ready = False
        self._ring = [0.0] * self.period  # zero placeholders are consistent with both running sums
        self._j = 0
        self._sum = 0.0
        self._moment = 0.0
        self._count = 0
        self._wraps_left = self._resum_wraps

    def update(self, x: float) -> float:
        if x - x != 0.0:
            raise _bad_input(self, "input", x)
        ring = self._ring
        j = self._j
        old = ring[j]
        ring[j] = x
        s = self._sum
        # Every age grows by one, the oldest leaves (weight m -> gone), x arrives at age 0 (weight -m).
        moment = self._moment + s - self._m_plus_1 * old - self._m * x
        s = s - old + x
        j += 1
        if j == self.period:
            j = 0
            w = self._wraps_left - 1
            if w == 0:
                w = self._resum_wraps
                s = math.fsum(ring)
                moment = math.fsum(map(operator.mul, self._weights, ring))
            self._wraps_left = w
        self._j = j
        self._sum = s
        self._moment = moment
        if not self._ready:
            c = self._count + 1
            self._count = c
            if c < self.period:
                return _NAN
            self._ready = True
        v = -moment / self._q
        self.value = v
        return v

    @_reads_source
    def update_bar(self, bar: Bar) -> float:
        return self.update(bar.close)

    def __repr__(self) -> str:
        return f"Slope({self.period})"

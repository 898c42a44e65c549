"""OHLCV bars from ticks or smaller bars, streaming (`BarAggregator`) and vectorized (`resample_bars`).

Rules both paths share, so that live, replay and stored-data resampling agree bar for bar:

- A bar's `ts` is its OPEN time in UTC ns; the bar covers [ts, ts + interval).
- Intraday bars (1 s .. 12 h; the interval must divide 24 h) are aligned to the UTC epoch, which puts them on
  the clock in every zone with whole-hour offsets (a 5-min bar covers [09:30:00, 09:35:00) ET).
- Daily bars ("1d") are aligned to the trading session, not to UTC midnight: the bar of trading day D covers
  that day's session [open, close) (CME Globex: D-1 18:00 ET to D 17:00 ET) and is stamped with the open.
  Events outside the session window (the daily halt, a stock's extended hours) are counted and left out.
- No trading, no bar: nothing is invented across a gap (an idle minute, the daily halt, a weekend); the first
  bar after a gap starts at its own aligned boundary.
- An input bar (1 s / 5 s real-time bars) is assigned by its open time to the output bar that contains it.
- Volume sums run in input order from the first value, so streaming and vectorized sums are bit-identical.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, NoReturn

import numpy as np
import numpy.typing as npt

from ibot.exchange.hours import CME_GLOBEX, TradingHours
from ibot.model.errors import BarDataError, ParameterError
from ibot.model.market import NS_PER_SECOND, Bar, Tick, ns_to_datetime

NS_PER_DAY = 86_400 * NS_PER_SECOND
_INF = math.inf
_MIN_FINITE = -sys.float_info.max

LatePolicy = Literal["raise", "drop"]
PriceSource = Literal["trade", "mid"]

_UNITS: dict[str, int] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("m", "min", "mins", "minute", "minutes"), 60),
    (("h", "hr", "hrs", "hour", "hours"), 3600),
    (("d", "day", "days"), 86_400),
):
    for _name in _names:
        _UNITS[_name] = _seconds
_INTERVAL_RE = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")


def parse_interval(interval: timedelta | str) -> int:
    """Bar interval in ns from a timedelta or a string such as "15s", "5min", "5 mins", "1h", "1d".

    Accepted: whole seconds from 1 s to 1 day that divide 24 h (every IB bar size qualifies); "1d" means the
    session-aligned daily bar. Raises ParameterError naming the bad value.
    """
    if isinstance(interval, timedelta):
        total_us = (interval.days * 86_400 + interval.seconds) * 1_000_000 + interval.microseconds
        if total_us % 1_000_000:
            raise ParameterError(f"bar interval {interval} is not a whole number of seconds")
        seconds = total_us // 1_000_000
        shown = str(interval)
    elif isinstance(interval, str):
        match = _INTERVAL_RE.match(interval.lower())
        if match is None or match.group(2) not in _UNITS:
            raise ParameterError(
                f"bar interval {interval!r} is not understood; use a number and a unit such as "
                "'15s', '1min', '5min', '1h' or '1d'"
            )
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        shown = repr(interval)
    else:
        raise ParameterError(f"bar interval {interval!r} must be a string like '5min' or a timedelta")
    if seconds <= 0 or seconds > 86_400:
        raise ParameterError(f"bar interval {shown} must be between 1 second and 1 day")
    if 86_400 % seconds:
        raise ParameterError(f"bar interval {shown} must divide 24 hours evenly (e.g. 5min, 15min, 1h, 4h)")
    return seconds * NS_PER_SECOND


def bar_size_name(interval: timedelta | str | int) -> str:
    """Canonical short name of an interval ("15s", "5min", "1h", "1d"), used for store file names.

    An int is taken as nanoseconds.
    """
    ns = interval if isinstance(interval, int) else parse_interval(interval)
    seconds = ns // NS_PER_SECOND
    if seconds == 86_400:
        return "1d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{seconds}s"


TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"  # the one way the CLI shows a time: always UTC, always labelled


def format_time(ts: int) -> str:
    """A time (ns UTC) as ibot's CLI shows it everywhere: `2025-03-05 14:30:00 UTC`."""
    return ns_to_datetime(ts).strftime(TIME_FORMAT)


def _when(ts: int) -> str:
    """A timestamp for messages: ISO UTC time and the raw ns."""
    try:
        return f"{ns_to_datetime(ts).isoformat()} (ts={ts})"
    except (OverflowError, OSError, ValueError):
        return f"ts={ts}"


# Batches ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class BarFrame:
    """Bars as columns: `ts` int64 ns UTC (bar open), OHLCV float64. Iterates as `Bar` tuples."""

    ts: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", np.asarray(self.ts, dtype=np.int64))
        for name in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        n = len(self.ts)
        for name in ("open", "high", "low", "close", "volume"):
            column = getattr(self, name)
            if column.ndim != 1 or len(column) != n:
                raise BarDataError(f"bar column {name!r} has shape {column.shape}, expected ({n},) like ts")

    @classmethod
    def from_arrays(
        cls,
        ts: npt.ArrayLike,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
    ) -> BarFrame:
        """Columns from any array-likes, converted to int64 / float64 (the constructor does the same at run
        time; this signature just says so to the type checker)."""
        return cls(
            np.asarray(ts, dtype=np.int64),
            np.asarray(open, dtype=np.float64),
            np.asarray(high, dtype=np.float64),
            np.asarray(low, dtype=np.float64),
            np.asarray(close, dtype=np.float64),
            np.asarray(volume, dtype=np.float64),
        )

    @classmethod
    def empty(cls) -> BarFrame:
        f = np.empty(0, dtype=np.float64)
        return cls(np.empty(0, dtype=np.int64), f, f.copy(), f.copy(), f.copy(), f.copy())

    @classmethod
    def from_bars(cls, bars: Iterable[Bar]) -> BarFrame:
        """Columns from Bar tuples (or any 6-tuples ts, open, high, low, close, volume)."""
        rows = list(bars)
        if not rows:
            return cls.empty()
        try:
            ts, o, h, lo, c, v = zip(*rows, strict=True)
            return cls(
                np.array(ts, dtype=np.int64),
                np.array(o, dtype=np.float64),
                np.array(h, dtype=np.float64),
                np.array(lo, dtype=np.float64),
                np.array(c, dtype=np.float64),
                np.array(v, dtype=np.float64),
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise BarDataError(f"bars are not (ts, open, high, low, close, volume) numbers: {exc}") from exc

    def __len__(self) -> int:
        return len(self.ts)

    def __iter__(self) -> Iterator[Bar]:
        cols = (self.ts, self.open, self.high, self.low, self.close, self.volume)
        return map(Bar._make, zip(*(col.tolist() for col in cols), strict=True))

    def __getitem__(self, key: slice) -> BarFrame:
        return BarFrame(
            self.ts[key], self.open[key], self.high[key], self.low[key], self.close[key], self.volume[key]
        )

    def bars(self) -> list[Bar]:
        return list(self)

    def between(self, start_ns: int | None = None, end_ns: int | None = None) -> BarFrame:
        """Rows with start_ns <= ts < end_ns (ts must be sorted)."""
        lo = 0 if start_ns is None else int(np.searchsorted(self.ts, start_ns, side="left"))
        hi = len(self) if end_ns is None else int(np.searchsorted(self.ts, end_ns, side="left"))
        return self[lo:hi]

    def equals(self, other: BarFrame) -> bool:
        """Same rows, exactly (NaN equal to NaN)."""
        return len(self) == len(other) and all(
            np.array_equal(getattr(self, n), getattr(other, n), equal_nan=n != "ts")
            for n in ("ts", "open", "high", "low", "close", "volume")
        )

    def __repr__(self) -> str:
        if not len(self):
            return "BarFrame(0 rows)"
        return f"BarFrame({len(self)} rows, {_when(int(self.ts[0]))} .. {_when(int(self.ts[-1]))})"


def as_frame(bars: BarFrame | Iterable[Bar]) -> BarFrame:
    return bars if isinstance(bars, BarFrame) else BarFrame.from_bars(bars)


class InvalidBarsError(BarDataError):
    """A batch of bars that failed validation; `problems` lists every violation found (row, ts, what)."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


def bar_problems(bars: BarFrame | Sequence[Bar], limit: int = 1000) -> list[str]:
    """Every violation in a batch as "row i (time): what", up to `limit`; empty when the batch is sound."""
    frame = as_frame(bars)
    n = len(frame)
    if n == 0:
        return ["no bars (the batch is empty)"]
    ts = frame.ts
    found: list[tuple[int, str]] = []

    def add(mask: npt.NDArray[np.bool_], what: Callable[[int], str]) -> None:
        for i in np.flatnonzero(mask)[:limit].tolist():
            found.append((i, what(i)))

    step = np.diff(ts)
    add(np.r_[False, step == 0], lambda i: f"duplicate ts, same as row {i - 1}")
    add(np.r_[False, step < 0], lambda i: f"ts goes back in time from row {i - 1} ({_when(int(ts[i - 1]))})")
    finite = np.ones(n, dtype=bool)
    for name in ("open", "high", "low", "close", "volume"):
        col = getattr(frame, name)
        bad = ~np.isfinite(col)
        finite &= ~bad
        for i in np.flatnonzero(bad)[:limit].tolist():
            found.append((i, f"{name} is {float(col[i])}"))
    o, h, lo, c = frame.open, frame.high, frame.low, frame.close
    with np.errstate(invalid="ignore"):
        add(finite & (h < np.maximum(o, c)), lambda i: f"high {h[i]} < max(open {o[i]}, close {c[i]})")
        add(finite & (lo > np.minimum(o, c)), lambda i: f"low {lo[i]} > min(open {o[i]}, close {c[i]})")
        add(finite & (frame.volume < 0), lambda i: f"volume {frame.volume[i]} is negative")
    found.sort(key=lambda item: item[0])
    return [f"row {i} ({_when(int(ts[i]))}): {what}" for i, what in found[:limit]]


def validate_bars(bars: BarFrame | Sequence[Bar], what: str = "bars") -> BarFrame:
    """Check a batch: not empty, ts strictly increasing, no NaN/inf, high >= max(open, close),
    low <= min(open, close), volume >= 0. Returns it as a BarFrame or raises InvalidBarsError listing all."""
    frame = as_frame(bars)
    problems = bar_problems(frame)
    if problems:
        shown = "; ".join(problems[:10])
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise InvalidBarsError(f"{what}: {len(problems)} problem(s): {shown}{more}", problems)
    return frame


# Vectorized resampling --------------------------------------------------------------------------------------
def resample_bars(
    bars: BarFrame | Sequence[Bar],
    interval: timedelta | str,
    hours: TradingHours = CME_GLOBEX,
) -> BarFrame:
    """Aggregate sorted bars into `interval` bars with the same rules (and results) as BarAggregator.add_bar.

    `hours` matters only for "1d" (session-aligned days; rows outside the session window are left out).
    """
    frame = as_frame(bars)
    step = parse_interval(interval)
    if len(frame) == 0:
        return BarFrame.empty()
    ts = frame.ts
    back = np.flatnonzero(np.diff(ts) <= 0)
    if len(back):
        i = int(back[0]) + 1
        raise BarDataError(
            f"resample_bars needs strictly increasing ts: row {i} {_when(int(ts[i]))} "
            f"is not after row {i - 1} {_when(int(ts[i - 1]))}"
        )
    if step == NS_PER_DAY:
        opens, closes = hours.nominal_windows(ts)
        inside = (ts >= opens) & (ts < closes)
        if not inside.all():
            frame = BarFrame(
                ts[inside],
                frame.open[inside],
                frame.high[inside],
                frame.low[inside],
                frame.close[inside],
                frame.volume[inside],
            )
            if len(frame) == 0:
                return BarFrame.empty()
        key = opens[inside]
    else:
        key = ts - ts % step
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)]
    group = np.repeat(np.arange(len(starts)), ends - starts)
    return BarFrame(
        key[starts],
        frame.open[starts],
        np.maximum.reduceat(frame.high, starts),
        np.minimum.reduceat(frame.low, starts),
        frame.close[ends - 1],
        # bincount adds each group's weights in input order from 0.0, as the streaming sum does.
        np.bincount(group, weights=frame.volume, minlength=len(starts)).astype(np.float64),
    )


# Streaming aggregation --------------------------------------------------------------------------------------
class BarAggregator:
    """Builds `interval` bars from trades, mid quotes or smaller bars, one event at a time.

    Time comes only from the data: a bar is emitted when the first event of a later interval arrives, when
    an input bar that ends the interval arrives (with `input_bar_size`), or when `on_time(now_ns)` /
    `flush(now_ns)` is called at or after the bar's end. Each completed bar goes to `on_bar` (or, without a
    callback, is appended to `emitted`). One input call can complete at most two bars (the open one and, with
    `input_bar_size`, the event's own); they are delivered in time order.

    Late data: an event older than the open bar (or, with no open bar, than the end of the last emitted bar),
    and an input bar whose ts is not after the previous input bar's (exact duplicates of 1 s / 5 s bars
    included), raises BarDataError with `late_policy="raise"`; with "drop" it is counted in `late_dropped` /
    `duplicates_dropped` and ignored. Ticks out of order *within* the open bar are accepted: open and close
    follow the earliest and latest ts. Prices must be finite and >= 0 (unless `allow_negative_prices`, for
    products such as crude that have traded below zero), sizes finite and >= 0.
    """

    __slots__ = (
        "_allow_negative",
        "_ask",
        "_bid",
        "_c",
        "_closes_at",
        "_daily",
        "_end",
        "_first_ts",
        "_floor",
        "_h",
        "_input_ns",
        "_l",
        "_last_input_bar_ts",
        "_last_ts",
        "_lo_price",
        "_o",
        "_open",
        "_start",
        "_v",
        "duplicates_dropped",
        "emitted",
        "hours",
        "interval_ns",
        "late_dropped",
        "late_policy",
        "name",
        "on_bar",
        "outside_session",
        "price_source",
    )

    def __init__(
        self,
        interval: timedelta | str = "5min",
        on_bar: Callable[[Bar], None] | None = None,
        *,
        late_policy: LatePolicy = "raise",
        price_source: PriceSource = "trade",
        input_bar_size: timedelta | str | None = None,
        hours: TradingHours = CME_GLOBEX,
        allow_negative_prices: bool = False,
        name: str = "",
    ) -> None:
        if late_policy not in ("raise", "drop"):
            raise ParameterError(f"late_policy {late_policy!r} must be 'raise' or 'drop'")
        if price_source not in ("trade", "mid"):
            raise ParameterError(f"price_source {price_source!r} must be 'trade' or 'mid'")
        self.interval_ns = parse_interval(interval)
        self._input_ns = 0 if input_bar_size is None else parse_interval(input_bar_size)
        if self._input_ns and (self._input_ns > self.interval_ns or self.interval_ns % self._input_ns):
            raise ParameterError(
                f"input bar size {bar_size_name(self._input_ns)} must divide the bar interval "
                f"{bar_size_name(self.interval_ns)}"
            )
        self.on_bar = on_bar
        self.emitted: list[Bar] = []  # completed bars, kept here only when there is no on_bar callback
        self.late_policy: LatePolicy = late_policy
        self.price_source: PriceSource = price_source
        self.hours = hours
        self.name = name
        self._daily = self.interval_ns == NS_PER_DAY
        self._allow_negative = allow_negative_prices
        self._lo_price = _MIN_FINITE if allow_negative_prices else 0.0
        self.late_dropped = 0
        self.duplicates_dropped = 0
        self.outside_session = 0
        self._open = False
        # The open bar: [start, end) in which events are grouped (a daily bar: the session's [open, close)),
        # `closes_at` = that end, kept after emission as the floor for late events; OHLCV; the ts of its first
        # and latest event.
        self._start = 0
        self._end = -1  # makes the fast path in add_trade fail while no bar is open
        self._closes_at = 0
        self._o = self._h = self._l = self._c = self._v = 0.0
        self._first_ts = self._last_ts = 0
        self._floor = -(2**63)  # events older than this are late
        self._last_input_bar_ts = -(2**63)
        self._bid = self._ask = math.nan

    # Inputs -------------------------------------------------------------------------------------------------
    def add_trade(self, ts: int, price: float, size: float = 0.0) -> None:
        """One trade at `ts` (UTC ns)."""
        if not (self._lo_price <= price < _INF):
            self._bad_value("price", price, ts)
        if not (0.0 <= size < _INF):
            self._bad_value("size", size, ts)
        if self._start <= ts < self._end:  # fast path: the event falls in the open bar
            if price > self._h:
                self._h = price
            elif price < self._l:
                self._l = price
            if ts >= self._last_ts:
                self._c = price
                self._last_ts = ts
            elif ts < self._first_ts:
                self._o = price
                self._first_ts = ts
            self._v += size
            return
        self._new_bar(ts, price, price, price, price, size)

    def add_tick(self, tick: Tick) -> None:
        """A Tick: its trade (`last`, `last_size`) or, with price_source="mid", the bid/ask midpoint.

        A quote-only tick is no trade and is ignored for trade bars; mid bars have zero volume and start once
        both a bid and an ask are known.
        """
        if self.price_source == "trade":
            if tick.last == tick.last:  # not NaN: this tick carries a trade
                self.add_trade(tick.ts, tick.last, tick.last_size)
            return
        changed = False
        if tick.bid == tick.bid:
            if not (self._lo_price <= tick.bid < _INF):
                self._bad_value("bid", tick.bid, tick.ts)
            self._bid = tick.bid
            changed = True
        if tick.ask == tick.ask:
            if not (self._lo_price <= tick.ask < _INF):
                self._bad_value("ask", tick.ask, tick.ts)
            self._ask = tick.ask
            changed = True
        if changed and self._bid == self._bid and self._ask == self._ask:
            self.add_trade(tick.ts, (self._bid + self._ask) * 0.5, 0.0)

    def add_bar(self, bar: Bar) -> None:
        """A smaller bar (e.g. IB's 5 s real-time bar), assigned to the output bar containing its open time.

        With `input_bar_size` set, the output bar is emitted as soon as the input bar that ends it arrives.
        """
        problem = bar.problem()
        if problem is not None:
            raise BarDataError(f"{self._label()}input bar at {_when(bar.ts)}: {problem}")
        if bar.low < self._lo_price:
            self._bad_value("low", bar.low, bar.ts)
        ts = bar.ts
        if ts <= self._last_input_bar_ts:
            if ts == self._last_input_bar_ts:
                self._late(ts, "duplicate", "an input bar with the same ts was already added")
            else:
                previous = _when(self._last_input_bar_ts)
                self._late(ts, "late", f"it is older than the previous input bar {previous}")
            return
        if self._start <= ts < self._end:
            self._last_input_bar_ts = ts
            self._h = max(self._h, bar.high)
            self._l = min(self._l, bar.low)
            self._c = bar.close
            self._last_ts = ts
            self._v += bar.volume
        elif self._new_bar(ts, bar.open, bar.high, bar.low, bar.close, bar.volume):
            self._last_input_bar_ts = ts
        if self._input_ns and self._open and ts + self._input_ns >= self._closes_at:
            self._emit()

    # Time ---------------------------------------------------------------------------------------------------
    def on_time(self, now_ns: int) -> None:
        """A clock/timer event: emit the open bar if `now_ns` is at or past its end (no tick needed)."""
        if self._open and now_ns >= self._closes_at:
            self._emit()

    def flush(self, now_ns: int | None = None) -> None:
        """Like on_time(now_ns); without a time, emit the open bar as it is (end of data; may be partial)."""
        if now_ns is not None:
            self.on_time(now_ns)
        elif self._open:
            self._emit()

    @property
    def current(self) -> Bar | None:
        """The bar being built (partial), or None."""
        if not self._open:
            return None
        return Bar(self._start, self._o, self._h, self._l, self._c, self._v)

    # Internals ----------------------------------------------------------------------------------------------
    def _new_bar(self, ts: int, o: float, h: float, low: float, c: float, v: float) -> bool:
        """Slow path: the event is outside the open bar (or none is open). Emits the open bar and starts the
        event's own bar; False when the event was late (and dropped)."""
        if ts < self._floor or (self._open and ts < self._start):
            self._late(ts, "late", self._late_reason())
            return False
        if self._open:
            self._emit()
        if self._daily:
            start, closes = self.hours.nominal_open_close(self.hours.session_date(ts))
            if not (start <= ts < closes):
                self.outside_session += 1  # the daily halt or extended hours: not part of a daily bar
                return True
            self._start, self._end, self._closes_at = start, closes, closes
        else:
            self._start = ts - ts % self.interval_ns
            self._end = self._closes_at = self._start + self.interval_ns
        self._open = True
        self._o, self._h, self._l, self._c, self._v = o, h, low, c, v
        self._first_ts = self._last_ts = ts
        return True

    def _emit(self) -> None:
        bar = Bar(self._start, self._o, self._h, self._l, self._c, self._v)
        self._open = False
        self._floor = self._closes_at
        self._end = -1
        if self.on_bar is None:
            self.emitted.append(bar)
        else:
            self.on_bar(bar)

    def _late_reason(self) -> str:
        if self._open:
            return (
                f"it is older than the open {bar_size_name(self.interval_ns)} bar "
                f"[{_when(self._start)}, {_when(self._end)})"
            )
        return f"the {bar_size_name(self.interval_ns)} bar ending {_when(self._floor)} was already emitted"

    def _late(self, ts: int, kind: str, reason: str) -> None:
        if self.late_policy == "drop":
            if kind == "duplicate":
                self.duplicates_dropped += 1
            else:
                self.late_dropped += 1
            return
        raise BarDataError(f"{self._label()}{kind} event at {_when(ts)} rejected: {reason}")

    def _bad_value(self, field: str, value: float, ts: int) -> NoReturn:
        allowed = "finite" if self._allow_negative and field != "size" else "finite and >= 0"
        raise BarDataError(f"{self._label()}{field} {value!r} at {_when(ts)} must be {allowed}")

    def _label(self) -> str:
        return f"{self.name}: " if self.name else ""

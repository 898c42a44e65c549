"""Market data value types: ticks and bars. Time is integer nanoseconds since the epoch, UTC."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import NamedTuple

NS_PER_SECOND = 1_000_000_000


def ns_to_datetime(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / NS_PER_SECOND, tz=UTC)


def datetime_to_ns(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no time zone")
    return int(dt.timestamp()) * NS_PER_SECOND + dt.microsecond * 1000


class Bar(NamedTuple):
    """One OHLCV bar. `ts` is the bar's open time (ns, UTC); the bar covers [ts, ts + interval).

    A NamedTuple rather than a dataclass: immutable, compact, and cheap to build by the million in backtests.
    """

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0

    @property
    def time(self) -> datetime:
        return ns_to_datetime(self.ts)

    def problem(self) -> str | None:
        """Why this bar is malformed, or None when it is sound."""
        for name in ("open", "high", "low", "close", "volume"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                return f"{name} is {v!r}"
        if self.high < self.low:
            return f"high {self.high} < low {self.low}"
        if not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            return f"open/close outside [low, high] = [{self.low}, {self.high}]"
        if self.volume < 0:
            return f"volume {self.volume} is negative"
        return None


class Tick(NamedTuple):
    """A top-of-book update and/or trade. Fields that did not change are NaN (bid/ask/last) or 0 (sizes)."""

    ts: int
    bid: float = math.nan
    ask: float = math.nan
    last: float = math.nan
    bid_size: float = 0.0
    ask_size: float = 0.0
    last_size: float = 0.0

    @property
    def time(self) -> datetime:
        return ns_to_datetime(self.ts)

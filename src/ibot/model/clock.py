"""The one source of time for strategy, bar, risk, status and records: market time, advanced by the data.

`Clock` is set from the timestamps of the events being processed (replay, backtest, live). `MarketTime` is
the live market's "now" as the data says it is: the latest market timestamp seen (the end of a 5-s real-time
bar, a last-trade time, the server's own time from IB's current-time answer), carried forward between two
observations at real-time rate. Against real IB that is the real time; against a simulator running at any
speed it is the simulator's time, never the wall clock of this machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from ibot.model.market import ns_to_datetime

__all__ = ["Clock", "MarketTime"]


class Clock:
    """Time as the data says it is. Replay, backtest and live all set it from event timestamps."""

    __slots__ = ("ns",)

    def __init__(self, start_ns: int = 0) -> None:
        self.ns = start_ns

    def advance(self, ts_ns: int) -> None:
        """Move forward to `ts_ns`; time never goes backwards (an older event leaves the clock as is)."""
        self.ns = max(self.ns, ts_ns)

    def now(self) -> datetime:
        return ns_to_datetime(self.ns)


class MarketTime:
    """Market time now (UTC ns), fed by market timestamps through `observe`; call it to read it.

    What it promises:
    - it never goes backwards: an observation older than the current reading changes nothing;
    - between observations it moves on at real-time rate (one market second per elapsed second of the
      monotonic clock), never faster: data from a simulator running faster than real time pulls it forward
      with every observation, and a simulator waiting for its client (lockstep) is never overtaken by more
      than the wall time it waited;
    - before the first observation it reads 0 (`synced` is False): "no market time yet" is said as such,
      never replaced by this machine's wall clock.
    `monotonic` (ns) is injectable for tests.
    """

    __slots__ = ("_anchor_mono", "_anchor_ns", "_monotonic", "last_observed_mono", "observations")

    def __init__(self, monotonic: Callable[[], int] = time.monotonic_ns) -> None:
        self._monotonic = monotonic
        self._anchor_ns = 0  # market time at the anchor
        self._anchor_mono = 0  # monotonic time at the anchor
        self.last_observed_mono = 0  # monotonic time of the last observation (newer or not)
        self.observations = 0

    @property
    def synced(self) -> bool:
        """True once any market timestamp has been observed."""
        return self._anchor_ns > 0

    def __call__(self) -> int:
        if not self._anchor_ns:
            return 0
        return self._anchor_ns + max(self._monotonic() - self._anchor_mono, 0)

    def observe(self, ts_ns: int) -> bool:
        """The data says the market's time is at least `ts_ns`; True when that moved the reading forward."""
        mono = self._monotonic()
        self.last_observed_mono = mono
        self.observations += 1
        if ts_ns <= 0 or ts_ns <= self():
            return False
        self._anchor_ns = ts_ns
        self._anchor_mono = mono
        return True

    def silent_for(self) -> float:
        """Seconds (monotonic) since the last observation; infinite before the first."""
        if not self.observations:
            return float("inf")
        return (self._monotonic() - self.last_observed_mono) / 1e9

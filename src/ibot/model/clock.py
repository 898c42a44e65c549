"""The one source of time for strategy, bar and risk logic: advanced by the events being processed."""

from __future__ import annotations

from datetime import datetime

from ibot.model.market import ns_to_datetime


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

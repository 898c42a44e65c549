"""Realism limits of a TWS session: the 50 messages/second cap and the historical-data pacing rules.

IB's rules (TWS API documentation, "Historical Data Limitations" and "Message Rate"): a pacing violation (162)
happens on an identical historical request within 15 seconds, six or more requests for the same contract,
exchange and tick type within two seconds, or more than 60 requests within ten minutes; more than 50
simultaneously open historical requests are refused (322); more than 50 messages a second from one client
gives error 100. Times here are wall-clock seconds (loop time): pacing is about how fast a client talks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimLimits:
    """Which realism limits are on; all on by default. `SimLimits.off()` switches every one off."""

    max_messages_per_second: int = 50
    historical_pacing: bool = True
    identical_request_seconds: float = 15.0
    same_contract_requests: int = 6
    same_contract_seconds: float = 2.0
    requests_per_window: int = 60
    window_seconds: float = 600.0
    max_open_historical: int = 50

    @classmethod
    def off(cls) -> SimLimits:
        return cls(max_messages_per_second=0, historical_pacing=False, max_open_historical=0)


class MessageRate:
    """Sliding one-second count of one client's messages."""

    __slots__ = ("_limit", "_times")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Count a message at `now`; False when it is over the limit (the message is then refused)."""
        if self._limit <= 0:
            return True
        times = self._times
        while times and now - times[0] >= 1.0:
            times.popleft()
        if len(times) >= self._limit:
            return False
        times.append(now)
        return True


class HistoricalPacing:
    """IB's historical-data pacing, across every client of the server (IB counts per session/user)."""

    def __init__(self, limits: SimLimits) -> None:
        self.limits = limits
        self._all: deque[float] = deque()
        self._by_contract: dict[Hashable, deque[float]] = {}
        self._identical: dict[Hashable, float] = {}

    def check(self, request: Hashable, contract: Hashable, now: float) -> str | None:
        """Record a request at `now`; the reason of a pacing violation, or None when it may run."""
        lim = self.limits
        if not lim.historical_pacing:
            return None
        window = self._all
        while window and now - window[0] >= lim.window_seconds:
            window.popleft()
        recent = self._by_contract.setdefault(contract, deque())
        while recent and now - recent[0] >= lim.same_contract_seconds:
            recent.popleft()
        last = self._identical.get(request)
        if last is not None and now - last < lim.identical_request_seconds:
            return "Historical data request pacing violation: identical request within 15 seconds"
        if len(recent) + 1 >= lim.same_contract_requests:
            return (
                "Historical data request pacing violation: 6 or more requests for one contract in 2 seconds"
            )
        if len(window) >= lim.requests_per_window:
            return "Historical data request pacing violation: more than 60 requests in 10 minutes"
        window.append(now)
        recent.append(now)
        self._identical[request] = now
        return None

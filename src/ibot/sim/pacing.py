"""Realism limits of a TWS session: the 50 messages/second cap and the historical-data pacing rules.

IB's rules (TWS API documentation, "Historical Data Limitations" and "Message Rate"): a pacing violation (162)
happens on an identical historical request within 15 seconds, six or more requests for the same contract,
exchange and tick type within two seconds, or more than 60 requests within any ten minutes, a BID_ASK request
counting twice; more than 50 simultaneously open historical requests are refused (322); more than 50 messages
a second from one client gives error 100. Times here are wall-clock seconds (loop time): pacing is about how
fast a client talks. `SimLimits.pacing_scale` divides every pacing window (15 s, 2 s, 10 min) so that tests
and benchmarks can run IB's rules faster; IB's own limits are scale 1.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, replace

log = logging.getLogger("ibot.sim")

PACING_TEXT = "Historical data request pacing violation"
BID_ASK_WEIGHT = 2  # IB: "when BID_ASK historical data is requested, each request is counted twice"


class PacingScaleError(ValueError):
    """A pacing scale that is not a positive, finite number."""


@dataclass(frozen=True, slots=True)
class SimLimits:
    """Which realism limits are on; all on by default. `SimLimits.off()` switches every one off.

    `pacing_scale` (> 0) divides every historical pacing window: 2.0 makes the 15 s identical-request rule
    7.5 s, the 2 s rule 1 s and the ten minutes five; the counts (6, 60, 50 open) stay IB's."""

    max_messages_per_second: int = 50
    historical_pacing: bool = True
    identical_request_seconds: float = 15.0
    same_contract_requests: int = 6
    same_contract_seconds: float = 2.0
    requests_per_window: int = 60
    window_seconds: float = 600.0
    max_open_historical: int = 50
    pacing_scale: float = 1.0
    step_sizes: bool = True  # IB's longest duration per bar size ("Time length exceed max." past it)

    def __post_init__(self) -> None:
        scale = self.pacing_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < float("inf"):
            raise PacingScaleError(f"pacing scale must be a number above 0 (1 = IB's limits), got {scale!r}")

    @classmethod
    def off(cls) -> SimLimits:
        return cls(
            max_messages_per_second=0, historical_pacing=False, max_open_historical=0, step_sizes=False
        )

    def scaled(self, pacing_scale: float) -> SimLimits:
        """The same limits with another pacing scale."""
        return replace(self, pacing_scale=pacing_scale)


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
    """IB's historical-data pacing, across every client of the server (IB counts per session/user).

    A request that violates a rule is refused and not counted (it never ran); `violations` counts them and
    each is logged at WARNING. `weight` is 2 for BID_ASK: such a request takes two places in the 2-second and
    ten-minute counts."""

    def __init__(self, limits: SimLimits) -> None:
        self.limits = limits
        self.violations = 0
        self.accepted = 0
        self._all: deque[tuple[float, int]] = deque()
        self._all_count = 0
        self._by_contract: dict[Hashable, deque[tuple[float, int]]] = {}
        self._identical: dict[Hashable, float] = {}

    def check(self, request: Hashable, contract: Hashable, now: float, weight: int = 1) -> str | None:
        """Record a request at `now`; which rule it violates, or None when it may run (the client then
        answers 162 with IB's text, `PACING_TEXT`, which names no rule).

        `request` identifies identical requests (every parameter), `contract` the contract, exchange and tick
        type of the 2-second rule."""
        lim = self.limits
        if not lim.historical_pacing:
            return None
        scale = lim.pacing_scale
        window = self._all
        while window and now - window[0][0] >= lim.window_seconds / scale:
            self._all_count -= window.popleft()[1]
        recent = self._by_contract.setdefault(contract, deque())
        while recent and now - recent[0][0] >= lim.same_contract_seconds / scale:
            recent.popleft()
        reason = None
        last = self._identical.get(request)
        if last is not None and now - last < lim.identical_request_seconds / scale:
            reason = f"identical request within {lim.identical_request_seconds / scale:g} seconds"
        elif sum(w for _, w in recent) + weight >= lim.same_contract_requests:
            reason = (
                f"{lim.same_contract_requests} or more requests for one contract, exchange and tick type "
                f"within {lim.same_contract_seconds / scale:g} seconds"
            )
        elif self._all_count + weight > lim.requests_per_window:
            reason = (
                f"more than {lim.requests_per_window} requests within {lim.window_seconds / scale:g} seconds"
            )
        if reason is not None:
            self.violations += 1
            log.warning("historical pacing violation #%d: %s (%r)", self.violations, reason, request)
            return reason
        window.append((now, weight))
        self._all_count += weight
        recent.append((now, weight))
        self._identical[request] = now
        self.accepted += 1
        return None

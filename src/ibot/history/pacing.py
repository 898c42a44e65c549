"""A scheduler that keeps historical-data requests inside IB's pacing rules, so that no request is refused.

IB's "Historical Data Limitations" (TWS API): a pacing violation (error 162) is an identical request within
15 seconds, six or more requests for the same contract, exchange and tick type within two seconds, or more
than 60 requests in any ten-minute period; a BID_ASK request counts twice; at most 50 requests may be open at
once. IB states these hard limits for bars of 30 s or less and keeps a soft throttle above that, so every bar
size is paced here.

The rules are sliding windows over the send times of earlier requests. `PacingScheduler.earliest` says when a
request may go (pure bookkeeping over an injected monotonic clock, so the property tests drive it with a fake
one); `acquire` waits for that moment and for a free in-flight slot, then records the send. `scale` divides
every window (simulator only: `ibot sim --pacing-scale K` scales the simulator's windows the same way; IB's
limits are scale 1). A small safety margin widens each window for the network's jitter, and a request is
counted from when it was answered (`release(key)`), not only from when it was admitted: between admission and
the server's pacing check lie the client's own work (a checkpoint fsync, other answers being parsed) and the
server's queue, which on a loaded machine took up to 2 s and broke the ten-minute rule at pacing scale 60. The
server checks a request before it answers it, so a window counted from the answer is never shorter there.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from ibot.model.errors import ParameterError

__all__ = ["IB_PACING", "PacingRules", "PacingScheduler", "RequestKey"]


@dataclass(frozen=True, slots=True)
class PacingRules:
    """IB's historical-data limits (scale 1), what the scheduler keeps below them, and the margin it keeps."""

    requests_per_window: int = 60  # "more than 60 requests within any ten minute period" is a violation
    window_seconds: float = 600.0
    identical_seconds: float = 15.0  # "identical historical data requests within 15 seconds"
    same_contract_max: int = 5  # "six or more requests for the same contract, exchange and tick type"
    same_contract_seconds: float = 2.0  # "... within two seconds"
    max_in_flight: int = 5  # IB allows 50 open requests; far fewer are kept open
    scale: float = 1.0  # > 1 shrinks every window (simulator only)
    safety_fraction: float = 0.02  # each window widened by 2 % ...
    # ... plus 250 ms of wall time, not scaled: network and scheduling jitter (50 ms was seen too little on a
    # loaded 2-core machine: a request delayed in flight arrived too close to the next one)
    safety_seconds: float = 0.25

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ParameterError(f"pacing scale must be a positive number, got {self.scale!r}")
        if self.max_in_flight < 1 or self.max_in_flight > 50:
            raise ParameterError(f"requests in flight must be 1..50 (IB's limit), got {self.max_in_flight}")
        if self.requests_per_window < 2 or self.same_contract_max < 2:
            raise ParameterError(
                "pacing limits must allow at least two requests (a BID_ASK one counts twice)"
            )

    def _span(self, seconds: float) -> float:
        return seconds / self.scale * (1 + self.safety_fraction) + self.safety_seconds

    @property
    def window(self) -> float:
        """The ten-minute window as the scheduler keeps it (scaled, with the margin), seconds."""
        return self._span(self.window_seconds)

    @property
    def identical(self) -> float:
        return self._span(self.identical_seconds)

    @property
    def same_contract(self) -> float:
        return self._span(self.same_contract_seconds)

    @property
    def requests_per_second(self) -> float:
        """The sustained rate these rules allow (the ten-minute window binds in the long run)."""
        return self.requests_per_window / self.window


IB_PACING = PacingRules()


@dataclass(frozen=True, slots=True)
class RequestKey:
    """What pacing knows of a request: its identity (every parameter, for the 15 s rule), its contract key
    (contract, exchange, tick type: the 2 s rule) and its weight (a BID_ASK request counts twice)."""

    identity: Hashable
    contract: Hashable
    weight: int = 1

    @classmethod
    def of(cls, con_id: int, exchange: str, what: str, *params: Hashable) -> RequestKey:
        """The key of a request for contract `con_id` on `exchange` of tick type `what` with `params` (end,
        duration, bar size, ...); identity and contract are strings, so they can be kept across runs."""
        what = what.upper()
        contract = f"{con_id}|{exchange}|{what}"
        identity = "|".join([contract, *(str(p) for p in params)])
        return cls(identity, contract, 2 if what == "BID_ASK" else 1)


Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class PacingScheduler:
    """Admits historical requests so that none breaks IB's pacing rules (see the module doc)."""

    rules: PacingRules = IB_PACING
    clock: Callable[[], float] = time.monotonic
    sleep: Sleep = asyncio.sleep
    sent: int = 0  # requests admitted
    weight_sent: int = 0
    waited: float = 0.0  # seconds spent waiting for pacing
    waiting_until: float = 0.0  # clock time the request being admitted waits for (0: none)
    _window: deque[tuple[float, int]] = field(default_factory=deque)
    _by_contract: dict[Hashable, deque[tuple[float, int]]] = field(default_factory=dict)
    _identical: dict[Hashable, float] = field(default_factory=dict)
    _in_flight: int = 0
    _admitted: dict[RequestKey, list[float]] = field(default_factory=dict)  # admission times of open requests
    _slot_freed: asyncio.Event | None = None
    on_sent: Callable[[RequestKey], None] | None = None  # e.g. keep the send for the next run (checkpoint)
    on_wait: Callable[[float], None] | None = None  # a request starts waiting this many seconds for pacing
    on_answered: Callable[[RequestKey], None] | None = None  # release(key): it counts from now (checkpoint)

    # --- pure bookkeeping ----------------------------------------------------------------------------------
    def earliest(self, key: RequestKey, now: float) -> float:
        """The first time >= `now` at which `key` may be sent without breaking a rule."""
        r = self.rules
        when = now
        last = self._identical.get(key.identity)
        if last is not None:
            when = max(when, last + r.identical)
        when = max(when, _fits(self._window, key.weight, r.requests_per_window, r.window, when))
        recent = self._by_contract.get(key.contract)
        if recent:
            when = max(when, _fits(recent, key.weight, r.same_contract_max, r.same_contract, when))
        return when

    def record(self, key: RequestKey, at: float) -> None:
        """`key` was sent at `at` (not before any earlier record)."""
        self.remember(key, at)
        self.sent += 1
        self.weight_sent += key.weight

    def remember(self, key: RequestKey, at: float) -> None:
        """Count a request sent at `at` by someone else (an earlier run: IB paces the session, not the
        process) without counting it as sent here. Times must come in order."""
        r = self.rules
        self._window.append((at, key.weight))
        self._by_contract.setdefault(key.contract, deque()).append((at, key.weight))
        self._identical[key.identity] = max(at, self._identical.get(key.identity, at))
        self._forget(at - max(r.window, r.identical, r.same_contract))

    def _restamp(self, key: RequestKey, was: float, now: float) -> None:
        """Move `key`'s request sent at `was` to `now` (> was) in the windows that still hold it."""
        if now <= was:
            return
        contract = self._by_contract.setdefault(key.contract, deque())
        for times in (self._window, contract):
            with contextlib.suppress(ValueError):  # already forgotten: older than every window
                times.remove((was, key.weight))
            times.insert(bisect.bisect_right([t for t, _ in times], now), (now, key.weight))
        self._identical[key.identity] = max(now, self._identical.get(key.identity, now))

    def _forget(self, before: float) -> None:
        while self._window and self._window[0][0] <= before:
            self._window.popleft()
        for contract in list(self._by_contract):
            times = self._by_contract[contract]
            while times and times[0][0] <= before:
                times.popleft()
            if not times:
                del self._by_contract[contract]
        if len(self._identical) > 4 * self.rules.requests_per_window:
            self._identical = {k: t for k, t in self._identical.items() if t > before}

    # --- admission -----------------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def acquire(self, key: RequestKey) -> None:
        """Wait for a free in-flight slot and for the moment `key` may go; record it as sent now."""
        if self._slot_freed is None:
            self._slot_freed = asyncio.Event()
        while self._in_flight >= self.rules.max_in_flight:
            self._slot_freed.clear()
            await self._slot_freed.wait()
        self._in_flight += 1  # held while waiting for pacing, so no other request overtakes its slot
        try:
            while True:
                now = self.clock()
                when = self.earliest(key, now)
                if when <= now:
                    break
                self.waiting_until = when
                if self.on_wait is not None:
                    self.on_wait(when - now)
                await self.sleep(when - now)
                self.waited += max(0.0, self.clock() - now)
            self.waiting_until = 0.0
            self.record(key, now)
            self._admitted.setdefault(key, []).append(now)
            if self.on_sent is not None:
                self.on_sent(key)
        except BaseException:
            self.waiting_until = 0.0
            self.release()
            raise

    def release(self, key: RequestKey | None = None) -> None:
        """The request admitted by `acquire` has been answered (or given up). With its `key`, the request
        is counted from now in every window (the server checked it before now; see the module doc)."""
        if key is not None:
            times = self._admitted.get(key)
            if times:
                self._restamp(key, times.pop(0), self.clock())
                if not times:
                    del self._admitted[key]
                if self.on_answered is not None:
                    self.on_answered(key)
        self._in_flight = max(0, self._in_flight - 1)
        if self._slot_freed is not None:
            self._slot_freed.set()

    def wait_left(self) -> float:
        """Seconds the request being admitted still waits for pacing (0 when none waits)."""
        return max(0.0, self.waiting_until - self.clock()) if self.waiting_until else 0.0


def _fits(times: deque[tuple[float, int]], weight: int, limit: int, span: float, when: float) -> float:
    """The first time >= `when` at which the requests in (t - span, t] weigh at most `limit - weight`."""
    total = sum(w for t, w in times if t > when - span)
    if total + weight <= limit:
        return when
    # drop the oldest requests still inside the window until the new one fits; it may go once the last
    # dropped one has left the window (at its time + span)
    excess = total + weight - limit
    for t, w in times:
        if t <= when - span:
            continue
        excess -= w
        if excess <= 0:
            return t + span
    return when + span  # unreachable while limits >= 2 >= any weight

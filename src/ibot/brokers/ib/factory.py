"""The IB venue factory: what a live trading session receives instead of building IB pieces itself.

`ib_venue(settings, role)` builds, from the IB settings and the client role, the four pieces a session runs
on, all over one ib_async connection: the connection (the health source: `ConnectionHealth`, listeners,
the market clock), the OMS's Broker port (`IBBroker`), the market-data feed and the contract resolver.

What it promises:
- one venue per (host, port, client id) while it is open: a second call for the same address and id returns
  the same venue (nautilus_trader's `adapters/interactive_brokers/factories.py` caches its clients the same
  way), so two parts of one process never open two connections that would fight over one client id (326);
  `await venue.close()` disconnects it and forgets it, and the next call builds a fresh one;
- nothing outside this package touches ib_async: the simulator's lockstep acknowledgement
  (`lockstep_ack`), lifting ib_async's request throttle for a lockstep replay (`unthrottle`) and resolving
  an order contract ahead of the first order (`prepare`) are venue methods.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from ibot.brokers.ib.broker import IBBroker
from ibot.brokers.ib.config import ClientRole, IBSettings
from ibot.brokers.ib.connection import IBConnection, MarketClock
from ibot.brokers.ib.contracts import ContractResolver
from ibot.brokers.ib.market_data import MarketDataFeed
from ibot.model.instruments import Instrument

__all__ = ["IBVenue", "LockstepGate", "VenueKey", "cached_venues", "ib_venue"]

log = logging.getLogger("ibot.brokers.ib")

VenueKey = tuple[str, int, int]
"""(host, port, client id): what one venue is cached under."""

_LOCKSTEP_VERSION = 1


@dataclass(slots=True)
class LockstepGate:
    """Several strategies on one connection, one lockstep acknowledgement: the simulator keeps one
    acknowledged bar end per client, so the venue sends the bar end every expected participant has finished
    with (the lowest of theirs), and nothing before each of them has declared itself. With no participant
    expected, every acknowledgement is sent as it comes (one strategy per connection)."""

    expected: set[str] = field(default_factory=set)
    acked: dict[str, int] = field(default_factory=dict)
    sent: int = -1

    def expect(self, participants: Iterable[str]) -> None:
        self.expected = set(participants)
        self.acked = {k: v for k, v in self.acked.items() if k in self.expected}
        self.sent = -1

    def leave(self, participant: str) -> int | None:
        """`participant` stops acknowledging (its runner stopped): the bar end the others allow now."""
        self.expected.discard(participant)
        self.acked.pop(participant, None)
        return self._due()

    def ack(self, participant: str, bar_end_s: int) -> int | None:
        """Record `participant`'s acknowledgement; the bar end to send now, or None (wait for the others)."""
        if not self.expected:
            return bar_end_s
        if participant not in self.expected:
            log.warning("lockstep: acknowledgement from %r, which is not expected; ignored", participant)
            return None
        self.acked[participant] = max(self.acked.get(participant, -1), bar_end_s)
        return self._due()

    def _due(self) -> int | None:
        if not self.expected or set(self.acked) < self.expected:
            return None
        low = min(self.acked[p] for p in self.expected)
        if low <= self.sent and self.sent >= 0:
            return None
        self.sent = low
        return low


@dataclass(frozen=True, slots=True)
class IBVenue:
    """One IB connection and what runs on it: health source, Broker port, market data, contracts."""

    connection: IBConnection  # the health source (ConnectionHealth, listeners) and the market clock
    broker: IBBroker  # the OMS's Broker port
    feed: MarketDataFeed
    contracts: ContractResolver
    key: VenueKey = ("", 0, 0)
    lockstep: LockstepGate = field(default_factory=LockstepGate, compare=False)

    @property
    def client_id(self) -> int:
        return self.connection.client_id

    @property
    def clock(self) -> MarketClock:
        """The market's time as this venue reads it (IB's data and server time, or a simulator's clock)."""
        return self.connection.clock

    def describe(self) -> str:
        return self.connection.settings.describe(self.connection.role)

    async def prepare(self, instrument: Instrument) -> None:
        """Resolve `instrument`'s order contract now, so the first order is recorded and written to the socket
        without a contract round trip on the order path. A failure here is not fatal: the order path
        resolves it again (and says why if it still cannot)."""
        try:
            await self.broker.prepare(instrument)
        except Exception as exc:  # e.g. the link dropped: the first order pays the round trip instead
            log.info("venue: order contract of %s not resolved ahead: %s", instrument.key, exc)

    def unthrottle(self) -> None:
        """Lift ib_async's own request throttle: in a lockstep replay the simulator's clock waits on us."""
        self.connection.ib.client.MaxRequests = 0

    def lockstep_ack(self, bar_end_s: int, interval_s: int, participant: str = "") -> None:
        """Tell the simulator (`SimServer(lockstep=True)`) that every bar up to `bar_end_s` (UTC seconds) has
        been handled, bars being `interval_s` long; `bar_end_s=0` declares the interval and starts the
        stepping. With participants expected (`lockstep.expect`), sent once all of them are this far."""
        due = self.lockstep.ack(participant, bar_end_s)
        if due is not None:
            self._send_ack(due, interval_s)

    def lockstep_leave(self, participant: str, interval_s: int) -> None:
        """`participant` is done (its runner stopped): the others no longer wait for it."""
        due = self.lockstep.leave(participant)
        if due is not None:
            self._send_ack(due, interval_s)

    def _send_ack(self, bar_end_s: int, interval_s: int) -> None:
        from ibot.sim.client import LOCKSTEP_ACK

        ib = self.connection.ib
        if ib.isConnected():
            ib.client.send(LOCKSTEP_ACK, _LOCKSTEP_VERSION, bar_end_s, interval_s)

    async def close(self) -> None:
        """Disconnect (no more reconnects) and forget this venue: the next `ib_venue` builds a new one."""
        if _VENUES.get(self.key) is self:
            del _VENUES[self.key]
        with contextlib.suppress(Exception):
            self.feed.cancel_all()
        await self.connection.stop()


_VENUES: dict[VenueKey, IBVenue] = {}


def venue_key(settings: IBSettings, role: ClientRole) -> VenueKey:
    """What a venue of `role` on `settings` is cached under: host, port and the client id it connects with."""
    return (settings.host, settings.port, settings.client_id_for(role))


def ib_venue(
    settings: IBSettings,
    role: ClientRole = ClientRole.ORDER_MANAGER,
    *,
    clock: MarketClock | None = None,
    connect_timeout: float = 30.0,
) -> IBVenue:
    """The venue for `role` on `settings`: the open one with the same host, port and client id, or a new one.

    `clock` is the market's time (default: a `MarketTime` fed by IB's data and server time; an in-process
    simulator's own clock may be given). A cached venue keeps the clock it was built with. The client id is
    checked against the role's range (ClientIdOutOfRangeError names it)."""
    role = ClientRole(role)
    settings.client_ids.check(role, settings.client_id_for(role))
    key = venue_key(settings, role)
    found = _VENUES.get(key)
    if found is not None:
        return found
    connection = IBConnection(settings, role, clock=clock)
    contracts = ContractResolver(connection)
    venue = IBVenue(
        connection=connection,
        broker=IBBroker(connection, contracts, settings.account, connect_timeout),
        feed=MarketDataFeed(connection, contracts),
        contracts=contracts,
        key=key,
    )
    _VENUES[key] = venue
    return venue


def cached_venues() -> dict[VenueKey, IBVenue]:
    """The open venues by (host, port, client id) (a copy: for status and tests)."""
    return dict(_VENUES)

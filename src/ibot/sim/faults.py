"""Scriptable faults of the session and market-data side, as a real gateway produces them.

Tests drive them through `SimServer.faults`: drop a socket, lose and restore connectivity (1100, then 1101
with subscriptions lost or 1102 with them kept), farm status messages (2103..2106, 2110), a competing live
session (10197: data stops) and a restart window (everyone disconnected, connections refused for a while,
optionally with nextValidId rolled back). Order faults: reject the next order with a code, make an order go
Inactive, a cancel that arrives too late (PendingCancel then Filled), commission reports held back, and an
order filled on demand (e.g. while its client is disconnected). Historical-data faults: requests never
answered, no data, missing permissions, a 165 message (`history_*`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibot.sim.server import SimServer

log = logging.getLogger("ibot.sim")

FARM_MESSAGES = {
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2110: "Connectivity between Trader Workstation and server is broken. It will be restored automatically.",
    2158: "Sec-def data farm connection is OK:secdefil",
}
LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")
RESTORED_DATA_LOST = (1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
RESTORED_DATA_KEPT = (
    1102,
    "Connectivity between IB and Trader Workstation has been restored - data maintained.",
)
COMPETING = (10197, "No market data during competing live session")


@dataclass(slots=True)
class FaultState:
    """What is currently broken; the clients read it before streaming."""

    connectivity_lost: bool = False
    market_farm_broken: bool = False
    competing: set[int] = field(default_factory=set)  # client ids whose data stops (empty set + flag = all)
    competing_all: bool = False
    refuse_until_s: float | None = None  # market-clock second until which connections are refused

    def data_flowing(self, client_id: int | None) -> bool:
        if self.connectivity_lost or self.market_farm_broken or self.competing_all:
            return False
        return client_id not in self.competing


@dataclass(slots=True)
class OrderFaults:
    """Scripted order-side faults the broker consults; each `take_*` consumes one armed fault."""

    reject_next: list[tuple[int, str]] = field(default_factory=list)  # (code, text) for the next new orders
    inactive_next: int = 0  # how many of the next new orders go Inactive
    late_cancels: int = 0  # how many of the next cancels arrive too late (the order fills)
    hold_commissions: bool = False

    def take_reject(self) -> tuple[int, str] | None:
        return self.reject_next.pop(0) if self.reject_next else None

    def take_inactive(self) -> bool:
        if self.inactive_next > 0:
            self.inactive_next -= 1
            return True
        return False

    def take_late_cancel(self) -> bool:
        if self.late_cancels > 0:
            self.late_cancels -= 1
            return True
        return False

    def commissions_held(self) -> bool:
        return self.hold_commissions


@dataclass(slots=True)
class HistoryFaults:
    """Scripted outcomes of the next historical-data requests (reqHistoricalData), checked after validation
    and pacing, in this order: missing permissions, never answered, no data, a 165 message before the bars."""

    unanswered: int = 0  # the next N requests are never answered (the client's timeout decides)
    no_data: int = 0  # the next N get 162 "HMDS query returned no data"
    query_messages: list[str] = field(default_factory=list)  # 165 texts sent before the next answers
    no_permission: set[str] = field(default_factory=set)  # product symbols without market data permissions
    no_permission_all: bool = False

    def permission_missing(self, symbol: str) -> bool:
        return self.no_permission_all or symbol.upper() in self.no_permission

    def take_unanswered(self) -> bool:
        if self.unanswered > 0:
            self.unanswered -= 1
            return True
        return False

    def take_no_data(self) -> bool:
        if self.no_data > 0:
            self.no_data -= 1
            return True
        return False

    def take_query_message(self) -> str | None:
        return self.query_messages.pop(0) if self.query_messages else None


_REJECT_TEXT = {
    201: "Order rejected - reason:scripted rejection",
    202: "Order Canceled - reason:",
    110: "The price does not conform to the minimum price variation for this contract.",
    200: "No security definition has been found for the request",
}


class Faults:
    """The fault API of one server (`server.faults`)."""

    def __init__(self, server: SimServer) -> None:
        self._server = server
        self.state = FaultState()
        self.orders = OrderFaults()
        self.history = HistoryFaults()
        self._release: asyncio.TimerHandle | None = None

    def _broadcast(self, code: int, text: str) -> None:
        for client in self._server.live_clients():
            client.error(-1, code, text)

    def drop(self, client_id: int | None = None) -> int:
        """Abort the socket of one client (or of all), as a network failure would; returns how many."""
        victims = [s for s in self._server.live_clients() if client_id is None or s.client_id == client_id]
        for s in victims:
            log.info("fault: dropping the socket of %s", s.name)
            s.close(abort=True)
        return len(victims)

    def connectivity_lost(self) -> None:
        """1100 to every client; streaming stops until `connectivity_restored`."""
        log.info("fault: connectivity lost (1100)")
        self.state.connectivity_lost = True
        self._broadcast(*LOST)

    def connectivity_restored(self, data_kept: bool) -> None:
        """1102 (subscriptions kept, streaming resumes) or 1101 (every subscription dropped: resubscribe)."""
        self.state.connectivity_lost = False
        if data_kept:
            log.info("fault: connectivity restored, data maintained (1102)")
            self._broadcast(*RESTORED_DATA_KEPT)
            return
        log.info("fault: connectivity restored, data lost (1101)")
        for client in self._server.live_clients():
            client.drop_market_data()
        self._broadcast(*RESTORED_DATA_LOST)

    def farm(self, code: int) -> None:
        """A farm status message (2103/2104/2105/2106/2110/2158); 2103 stops streaming until 2104."""
        if code not in FARM_MESSAGES:
            raise ValueError(f"farm code {code} is not one of {sorted(FARM_MESSAGES)}")
        if code == 2103:
            self.state.market_farm_broken = True
        elif code == 2104:
            self.state.market_farm_broken = False
        log.info("fault: farm message %d", code)
        self._broadcast(code, FARM_MESSAGES[code])

    def competing_session(self, client_id: int | None = None, on: bool = True) -> None:
        """10197 on each live market-data request of the client(s): their data stops until switched off."""
        if not on:
            self.state.competing_all = False
            self.state.competing.discard(client_id) if client_id is not None else self.state.competing.clear()
            return
        if client_id is None:
            self.state.competing_all = True
        else:
            self.state.competing.add(client_id)
        for client in self._server.live_clients():
            if client_id is None or client.client_id == client_id:
                for req_id in client.market_data_ids():
                    client.error(req_id, *COMPETING)

    def restart(self, seconds: float, next_valid_id: int | None = None) -> None:
        """The daily restart: disconnect everyone, refuse connections for `seconds` of the market clock.

        Orders keep working on the server. `next_valid_id` rolls nextValidId back (a gateway that forgot how
        far ids went): a client that reuses one of its old ids then gets error 103.
        """
        log.info("fault: restart window of %.0f s (market clock)", seconds)
        if next_valid_id is not None:
            self._server.broker.roll_back_ids(next_valid_id)
        self.state.refuse_until_s = self._server.market.now_s + seconds
        self._server.stop_listening()
        for s in self._server.live_clients():
            s.close()

    def refusing(self) -> bool:
        until = self.state.refuse_until_s
        if until is None:
            return False
        if self._server.market.now_s >= until:
            self.state.refuse_until_s = None
            return False
        return True

    # --- historical data -----------------------------------------------------------------------------------
    def history_unanswered(self, count: int = 1) -> None:
        """The next `count` reqHistoricalData are never answered (ib_async then times out and returns [])."""
        log.info("fault: the next %d historical request(s) are never answered", count)
        self.history.unanswered += count

    def history_no_data(self, count: int = 1) -> None:
        """The next `count` reqHistoricalData get 162 "...HMDS query returned no data: ..." and no bars."""
        log.info("fault: the next %d historical request(s) return no data", count)
        self.history.no_data += count

    def history_query_message(self, text: str = "no items retrieved", count: int = 1) -> None:
        """The next `count` reqHistoricalData get 165 "Historical Market Data Service query message:`text`"
        (informational) before their bars."""
        self.history.query_messages.extend([text] * count)

    def history_permissions(self, symbol: str | None = None, granted: bool = False) -> None:
        """Take away (or give back, `granted`) the market data permissions of one product's history, or of
        every product (`symbol` None): its requests get 162 "...No market data permissions for CME FUT"."""
        h = self.history
        if symbol is None:
            h.no_permission_all = not granted
            if granted:
                h.no_permission.clear()
        elif granted:
            h.no_permission.discard(symbol.upper())
        else:
            h.no_permission.add(symbol.upper())
        log.info(
            "fault: historical data permissions of %s %s",
            symbol or "every product",
            "on" if granted else "off",
        )

    # --- orders ---------------------------------------------------------------------------------------------
    def reject_next_order(self, code: int = 201, text: str = "") -> None:
        """The next new order gets error `code`: 201 rejects it (Inactive), 202 accepts then cancels it,
        any other code refuses it outright (the order never exists)."""
        self.orders.reject_next.append((code, text or _REJECT_TEXT.get(code, f"scripted error {code}")))

    def inactivate_next_order(self) -> None:
        """The next new order is acknowledged as Inactive (held by IB and never worked)."""
        self.orders.inactive_next += 1

    def inactivate_order(self, client_id: int, order_id: int) -> None:
        """A working order goes Inactive now (IB's risk system deactivated it)."""
        self._server.broker.make_inactive(client_id, order_id)

    def late_cancel_next(self) -> None:
        """The next cancel arrives too late: PendingCancel, then the order fills in full (status Filled)."""
        self.orders.late_cancels += 1

    def delay_commissions(self, seconds: float | None = None) -> None:
        """Hold commission reports back (after their executions) for `seconds` of wall time, or until
        `release_commissions()` when None."""
        self.orders.hold_commissions = True
        if self._release is not None:
            self._release.cancel()
            self._release = None
        if seconds is not None:
            self._release = asyncio.get_running_loop().call_later(seconds, self.release_commissions)

    def release_commissions(self) -> None:
        """Send the held commission reports now and stop holding new ones."""
        self.orders.hold_commissions = False
        self._release = None
        self._server.broker.release_commissions()

    def refuse_combos(self, on: bool = True) -> None:
        """Combo (BAG) orders are rejected (201, Inactive) while on; outright orders are not affected."""
        self._server.broker.refuse_combos(on)

    def fill_order(self, client_id: int, order_id: int) -> None:
        """The market reaches a working order now: it fills in full (its client may be disconnected)."""
        self._server.broker.fill_now(client_id, order_id)

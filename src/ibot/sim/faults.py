"""Scriptable faults of the session and market-data side, as a real gateway produces them.

Tests drive them through `SimServer.faults`: drop a socket, lose and restore connectivity (1100, then 1101
with subscriptions lost or 1102 with them kept), farm status messages (2103..2106, 2110), a competing live
session (10197: data stops) and a restart window (everyone disconnected, connections refused for a while).
"""

from __future__ import annotations

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
    """What is currently broken; the sessions read it before streaming."""

    connectivity_lost: bool = False
    market_farm_broken: bool = False
    competing: set[int] = field(default_factory=set)  # client ids whose data stops (empty set + flag = all)
    competing_all: bool = False
    refuse_until_s: float | None = None  # market-clock second until which connections are refused

    def data_flowing(self, client_id: int | None) -> bool:
        if self.connectivity_lost or self.market_farm_broken or self.competing_all:
            return False
        return client_id not in self.competing


class Faults:
    """The fault API of one server (`server.faults`)."""

    def __init__(self, server: SimServer) -> None:
        self._server = server
        self.state = FaultState()

    def _broadcast(self, code: int, text: str) -> None:
        for session in self._server.live_sessions():
            session.error(-1, code, text)

    def drop(self, client_id: int | None = None) -> int:
        """Abort the socket of one client (or of all), as a network failure would; returns how many."""
        victims = [s for s in self._server.live_sessions() if client_id is None or s.client_id == client_id]
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
        for session in self._server.live_sessions():
            session.drop_market_data()
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
        for session in self._server.live_sessions():
            if client_id is None or session.client_id == client_id:
                for req_id in session.market_data_ids():
                    session.error(req_id, *COMPETING)

    def restart(self, seconds: float) -> None:
        """The daily restart: disconnect everyone, refuse connections for `seconds` of the market clock."""
        log.info("fault: restart window of %.0f s (market clock)", seconds)
        self.state.refuse_until_s = self._server.market.now_s + seconds
        self._server.stop_listening()
        for s in self._server.live_sessions():
            s.close()

    def refusing(self) -> bool:
        until = self.state.refuse_until_s
        if until is None:
            return False
        if self._server.market.now_s >= until:
            self.state.refuse_until_s = None
            return False
        return True

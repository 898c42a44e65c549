"""Shared helpers of the IB adapter tests: a started TWS simulator per test, fast settings, event waiters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from ibot.brokers.ib.config import ClientRole, IBSettings
from ibot.brokers.ib.connection import HealthEvent, HealthEventKind, IBConnection
from ibot.model.market import NS_PER_SECOND
from ibot.sim.server import SimServer

# A Wednesday at 09:00 Chicago: Globex and the stock market are open.
START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
WAIT = 5.0


def run(test: Callable[[SimServer], Awaitable[None]], **kwargs: Any) -> None:
    """Run `test` against a started simulator on a free port, stopping it afterwards."""

    async def main() -> None:
        opts: dict[str, Any] = {"port": 0, "symbols": ["MES", "MNQ", "SPY"], "speed": 600.0, "start": START}
        opts.update(kwargs)
        server = SimServer(**opts)
        await server.start()
        try:
            await asyncio.wait_for(test(server), 20)
        finally:
            await server.stop()

    asyncio.run(main())


def settings(server: SimServer, **overrides: Any) -> IBSettings:
    """Settings for the simulator: quick backoff, quick polling, no restart window unless asked."""
    values: dict[str, Any] = {
        "port": server.port,
        "connect_timeout": WAIT,
        "reconnect_initial_delay": 0.05,
        "reconnect_max_delay": 0.2,
        "watchdog_poll_seconds": 0.02,
        "stale_after_seconds": 600.0,  # market seconds: one wall second at speed 600
        "restart_window": {"enabled": False},
    }
    values.update(overrides)
    return IBSettings.model_validate(values)


def sim_clock(server: SimServer) -> Callable[[], int]:
    """The simulator's market clock, as the live adapter would read IB's."""
    return lambda: int(server.market.now_s * NS_PER_SECOND)


class Recorder:
    """Collects a connection's health events and lets a test await the next one of a kind."""

    def __init__(self, connection: IBConnection) -> None:
        self.events: list[HealthEvent] = []
        self._changed = asyncio.Event()
        connection.add_listener(self._add)

    def _add(self, event: HealthEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def kinds(self) -> list[HealthEventKind]:
        return [e.kind for e in self.events]

    async def wait(self, kind: HealthEventKind, after: int = 0, timeout: float = WAIT) -> HealthEvent:
        """The first event of `kind` at index >= `after`, waiting for it if needed."""

        async def first() -> HealthEvent:
            while True:
                for event in self.events[after:]:
                    if event.kind is kind:
                        return event
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)


async def connected(
    server: SimServer, role: ClientRole = ClientRole.DATA_REALTIME, **overrides: Any
) -> tuple[IBConnection, Recorder]:
    connection = IBConnection(settings(server, **overrides), role, clock=sim_clock(server))
    recorder = Recorder(connection)
    await connection.start(timeout=WAIT)
    return connection, recorder

"""Shared helpers of the simulator's client tests: a started server per test and ib_async waiters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from ib_async import IB, Future

from ibot.sim.server import SimServer

# A Wednesday at 09:00 Chicago: Globex and the stock market are open.
START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
WAIT = 5.0


def run(test: Callable[[SimServer], Awaitable[None]], **kwargs: Any) -> None:
    """Run `test` against a started server on a free port, stopping it afterwards."""

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


async def connect(server: SimServer, client_id: int = 1) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", server.port, client_id, timeout=WAIT)
    return ib


def error_waiter(ib: IB, code: int) -> asyncio.Future[tuple[int, int, str]]:
    """A future resolved by the first error event with `code` (reqId, code, message)."""
    fut: asyncio.Future[tuple[int, int, str]] = asyncio.get_running_loop().create_future()

    def on_error(req_id: int, error_code: int, text: str, contract: Any) -> None:
        if error_code == code and not fut.done():
            fut.set_result((req_id, error_code, text))

    ib.errorEvent += on_error
    return fut


async def qualified_mes(ib: IB) -> Future:
    [c] = await ib.qualifyContractsAsync(Future("MES", "202506", "CME"))
    assert c is not None
    return c

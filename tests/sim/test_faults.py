"""Each scripted fault of the simulator, observed the way ib_async reports it."""

from __future__ import annotations

import asyncio
from datetime import time

import pytest
from ib_async import IB
from sim_helpers import WAIT, connect, error_waiter, qualified_mes, run

from ibot.sim.server import SimServer


def disconnected(ib: IB) -> asyncio.Future[None]:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ib.disconnectedEvent += lambda: fut.done() or fut.set_result(None)
    return fut


async def next_update(ticker: object) -> None:
    await asyncio.wait_for(ticker.updateEvent, WAIT)  # type: ignore[attr-defined]


def test_dropped_socket_fires_disconnected_event() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server, 3)
        gone = disconnected(ib)
        assert server.faults.drop(3) == 1
        await asyncio.wait_for(gone, WAIT)
        assert not ib.isConnected()

    run(body)


def test_1100_then_1101_drops_subscriptions() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        ticker = ib.reqMktData(await qualified_mes(ib))
        await next_update(ticker)
        lost, restored = error_waiter(ib, 1100), error_waiter(ib, 1101)
        server.faults.connectivity_lost()
        await asyncio.wait_for(lost, WAIT)
        server.faults.connectivity_restored(data_kept=False)
        await asyncio.wait_for(restored, WAIT)
        [client] = server.live_clients()
        assert client.subs == {}  # nothing streams until the client subscribes again
        ib.disconnect()

    run(body)


def test_1102_keeps_subscriptions_streaming() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        ticker = ib.reqMktData(await qualified_mes(ib))
        await next_update(ticker)
        kept = error_waiter(ib, 1102)
        server.faults.connectivity_lost()
        server.faults.connectivity_restored(data_kept=True)
        await asyncio.wait_for(kept, WAIT)
        await next_update(ticker)
        ib.disconnect()

    run(body)


@pytest.mark.parametrize("code", [2103, 2104, 2105, 2106, 2110])
def test_farm_messages_reach_the_client(code: int) -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        seen = error_waiter(ib, code)
        server.faults.farm(code)
        req_id, _, _ = await asyncio.wait_for(seen, WAIT)
        assert req_id == -1
        ib.disconnect()

    run(body)


def test_competing_session_sends_10197_for_the_ticker_and_stops_data() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server, 4)
        ticker = ib.reqMktData(await qualified_mes(ib))
        await next_update(ticker)
        competing = error_waiter(ib, 10197)
        server.faults.competing_session(4)
        req_id, _, _ = await asyncio.wait_for(competing, WAIT)
        [client] = server.live_clients()
        assert req_id in client.market_data_ids()
        assert not server.data_flowing(client)
        ib.disconnect()

    run(body)


def test_restart_window_disconnects_and_refuses_then_accepts_again() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        gone = disconnected(ib)
        server.faults.restart(seconds=600)  # one wall second at speed 600
        await asyncio.wait_for(gone, WAIT)
        with pytest.raises(ConnectionRefusedError):
            await IB().connectAsync("127.0.0.1", server.port, 2, timeout=WAIT)
        while server.faults.refusing():
            await asyncio.sleep(0.05)
        for _ in range(40):  # the pump reopens the port on its next step
            try:
                again = await connect(server, 2)
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.05)
        assert again.isConnected()
        again.disconnect()

    run(body)


def test_daily_restart_on_the_market_clock_disconnects_clients() -> None:
    # START is 10:00 New York; at speed 600 the 10:05 restart comes after half a wall second.
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        gone = disconnected(ib)
        await asyncio.wait_for(gone, WAIT)
        assert server.faults.refusing()

    run(body, daily_restart=time(10, 5), restart_seconds=3600)

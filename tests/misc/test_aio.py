"""cancel_and_wait ends a task even when it swallows a cancellation (as Python 3.11's wait_for can), and the
lockstep simulator stops even when an acknowledgement races its stop (the CI hang this guards against)."""

from __future__ import annotations

import asyncio

from ibot.aio import cancel_and_wait
from ibot.data.synth import synth_bars
from ibot.model import catalog
from ibot.sim.server import SimServer


def test_a_task_that_swallows_the_first_cancel_is_still_stopped() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed >= 3:
                    raise

    async def main() -> float:
        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await cancel_and_wait([task, None], retry=0.01)
        assert task.cancelled()
        return loop.time() - start

    took = asyncio.run(asyncio.wait_for(main(), 5))
    assert swallowed == 3
    assert took < 2


def test_lockstep_simulator_stops_when_an_ack_races_the_stop() -> None:
    from datetime import UTC, datetime

    mes = catalog.get_instrument("MES")
    bars = synth_bars(mes, datetime(2025, 3, 4, tzinfo=UTC), 1, "1min", seed=1).bars()[:50]

    async def main() -> None:
        server = SimServer(port=0, symbols=["MES"], replay={"MES": bars}, lockstep=True)
        await server.start()
        await asyncio.sleep(0.2)  # the pump polls for a lockstep client meanwhile
        # an acknowledgement racing the stop: 3.11's wait_for returns the ack and swallows the cancel
        server.lockstep_acknowledged()
        await asyncio.sleep(0)
        await server.stop()

    for _ in range(20):
        asyncio.run(asyncio.wait_for(main(), 5))

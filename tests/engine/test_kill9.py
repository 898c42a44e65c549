"""kill -9 of the trading process with an order in flight, then a restart: the TWS simulator runs here, the
trader (tests/engine/trader_proc.py) in a subprocess on a SQLite records file, then on a PostgreSQL schema.
The restarted process reconciles; the records match the simulator's orders and executions one to one, the
in-flight order is never sent twice and the positions agree."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import SPEED, START, WAIT, check_consistent, sim_orders, sim_positions

from ibot.model.market import NS_PER_SECOND
from ibot.model.orders import OrderStatus
from ibot.oms.records import OrderRecords
from ibot.sim.server import SimServer

TRADER = Path(__file__).with_name("trader_proc.py")
ORDERS = 4
IN_FLIGHT = "loop-2"


async def spawn(server: SimServer, db: str, *extra: str) -> asyncio.subprocess.Process:
    clock_ns = int(server.market.now_s * NS_PER_SECOND)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(TRADER),
        *("--port", str(server.port), "--db", db, "--clock-ns", str(clock_ns), "--speed", str(SPEED)),
        *("--orders", str(ORDERS), *extra),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def line_starting(proc: asyncio.subprocess.Process, prefix: str, timeout: float = 15.0) -> str:
    """The first stdout line of `proc` starting with `prefix` (the trader's own markers)."""
    assert proc.stdout is not None

    async def read() -> str:
        while True:
            raw = await proc.stdout.readline()  # type: ignore[union-attr]
            if not raw:
                err = await proc.stderr.read() if proc.stderr is not None else b""
                raise AssertionError(f"trader exited before {prefix!r}: {err.decode()[-3000:]}")
            text = raw.decode().strip()
            if text.startswith(prefix):
                return text

    return await asyncio.wait_for(read(), timeout)


def recorded_positions(records: OrderRecords) -> dict[str, int]:
    """Positions from the recorded fills alone (what a restarted process can rebuild them from)."""
    out: dict[str, int] = {}
    for f in records.executions():
        out[f.symbol] = out.get(f.symbol, 0) + f.side.sign * f.quantity
    return {k: v for k, v in out.items() if v}


@pytest.mark.parametrize("moment", ["before_send", "after_send"])
def test_kill9_with_an_order_in_flight_then_restart_sends_nothing_twice(db_url: str, moment: str) -> None:
    db = db_url  # a SQLite file, then a schema on the PostgreSQL server

    async def main() -> None:
        server = SimServer(port=0, symbols=["MES"], speed=SPEED, start=START)
        await server.start()
        try:
            trader = await spawn(server, db, "--hang", moment, "--hang-at", IN_FLIGHT.split("-")[1])
            marker = await line_starting(trader, "INFLIGHT" if moment == "before_send" else "SENT")
            assert marker.endswith(IN_FLIGHT)
            os.kill(trader.pid, signal.SIGKILL)
            assert await asyncio.wait_for(trader.wait(), WAIT) == -signal.SIGKILL
            records = OrderRecords(db)
            rec = records.get_order(IN_FLIGHT)
            assert rec is not None and rec.status is OrderStatus.PENDING_SUBMIT  # the write-ahead record
            refs = {o.view.order_ref for o in sim_orders(server)}
            assert (IN_FLIGHT in refs) is (moment == "after_send")

            restarted = await spawn(server, db)
            ready = json.loads((await line_starting(restarted, "READY")).split(" ", 1)[1])
            finished = json.loads((await line_starting(restarted, "FINISHED")).split(" ", 1)[1])
            assert await asyncio.wait_for(restarted.wait(), WAIT) == 0

            rec = records.get_order(IN_FLIGHT)
            assert rec is not None
            if moment == "before_send":  # never reached IB: closed, and not sent again by the same loop
                assert rec.status is OrderStatus.INACTIVE and IN_FLIGHT in ready["closed_orders"]
            else:  # it reached IB and filled while nobody listened: adopted once on restart
                assert rec.status is OrderStatus.FILLED and len(ready["adopted_fills"]) == 1
            refs_after = [o.view.order_ref for o in sim_orders(server)]
            assert sorted(refs_after) == sorted(
                f"loop-{i}" for i in range(ORDERS) if f"loop-{i}" != IN_FLIGHT or moment == "after_send"
            )
            check_consistent(server, records)
            assert finished["positions"] == sim_positions(server) == recorded_positions(records)
            assert sum(Decimal(e.commission) for e in server.broker.executions) == sum(
                (f.commission or Decimal(0)) for f in records.executions()
            )
            records.close()
        finally:
            await server.stop()

    asyncio.run(main())

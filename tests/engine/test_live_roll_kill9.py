"""kill -9 in the middle of a roll, then a restart on the same records and the same, still running simulator:
the roll is finished from where it was cut and nothing is doubled.

The trading process (a script written by the test, run with this interpreter) holds MESH5 and rolls it into
MESM5; it stops itself (SIGSTOP) at the chosen point and the test kills it with SIGKILL:
- ``between_legs``: two outright legs (combos off), the old month's close filled, the new month's open never
  sent: the restart sends the open once, never the close again;
- ``after_combo``: the calendar-spread combo written to the socket, its fill not yet seen: the combo fills at
  the simulator while the process is dead; the restart adopts the legs' executions and sends nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import sim_clock, sim_positions, sim_settings

from ibot.engine.runner import LiveRunner
from ibot.engine.session import TradingSession
from ibot.model import catalog
from ibot.model.market import NS_PER_SECOND
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.oms.rolls import RollBook, RollState
from ibot.sim.server import SimServer
from ibot.strategy.base import Strategy

ROLL_DAY = datetime(2025, 3, 17, 13, 40, tzinfo=UTC)  # 08:40 Chicago on MES's roll date
SPEED = 30.0
QTY = 2

CHILD = r"""
import asyncio, os, signal, sys, time
from ibot.brokers.ib.config import IBSettings
from ibot.engine.roll import RollExecutor
from ibot.engine.session import TradingSession
from ibot.model import catalog
from ibot.model.orders import OrderRequest, OrderStatus, Side
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits

port, db, clock_ns, speed, hang, qty = sys.argv[1:7]
t0 = time.monotonic()

def freeze(marker):
    print(marker, flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)

class CutRoll(RollExecutor):
    async def _outright(self, roll, request, what, quantity, *, flatten):
        m = await super()._outright(roll, request, what, quantity, flatten=flatten)
        if what == "close" and hang == "between_legs":
            freeze(f"CLOSED {m.status}")
        return m

async def main():
    settings = IBSettings(port=int(port), connect_timeout=5.0, reconnect_initial_delay=0.05,
                          reconnect_max_delay=0.2, restart_window={"enabled": False})
    records = OrderRecords(f"sqlite:///{db}")
    records.migrate()
    clock = lambda: int(clock_ns) + int((time.monotonic() - t0) * float(speed) * 1e9)
    limits = RiskLimits(max_position=10, max_order_size=10, price_band_pct=None)
    march = (catalog.contract("MES", 2025, 3),)
    session = TradingSession(
        settings, records, limits, instruments=march, market_clock=clock, market_data=False
    )
    await session.start()
    entry = OrderRequest("MESH5", Side.BUY, int(qty), client_order_id="entry")
    m = await session.submit(entry, strategy="holder")
    while m.status is not OrderStatus.FILLED:
        await asyncio.sleep(0.01)
    if hang == "after_combo":
        place = session.om.broker.place_combo
        async def place_and_freeze(combo):
            ids = await place(combo)
            await asyncio.sleep(0)  # the combo is on the socket
            freeze(f"COMBO {combo.ref}")
            return ids
        session.om.broker.place_combo = place_and_freeze
    new = await session.qualify(catalog.contract("MES", 2025, 6))
    roller = CutRoll(session, strategy="holder", combo=hang != "between_legs")
    await roller.roll(session.instrument("MESH5"), new)
    print("NOT CUT", flush=True)

asyncio.run(main())
"""


class Watcher(Strategy):
    name = "holder"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []

    def on_bar(self, bar: object) -> None:
        self.seen.append((self.ctx.instrument.key, self.ctx.position))


async def _run_child(tmp_path: Path, sim: SimServer, db: Path, hang: str) -> str:
    script = tmp_path / "roller.py"
    script.write_text(CHILD)
    env = dict(os.environ)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(sim.port),
        str(db),
        str(int(sim.market.now_s * NS_PER_SECOND)),
        str(SPEED),
        hang,
        str(QTY),
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return line


@pytest.mark.parametrize("hang", ["between_legs", "after_combo"])
def test_kill9_in_the_middle_of_a_roll_then_restart_finishes_it_with_nothing_doubled(
    tmp_path: Path, hang: str
) -> None:
    async def body() -> None:
        sim = SimServer(port=0, symbols=["MES"], speed=SPEED, start=ROLL_DAY)
        await sim.start()
        db = tmp_path / "orders.sqlite"
        try:
            marker = await _run_child(tmp_path, sim, db, hang)
            if hang == "between_legs":
                assert marker == "CLOSED Filled"
                assert sim_positions(sim) == {}  # cut between the legs: flat, the open never sent
            else:
                assert marker.startswith("COMBO roll-mes-")
            records = OrderRecords(f"sqlite:///{db}")
            [cut] = RollBook(records).unfinished()
            session = TradingSession(
                sim_settings(sim),
                records,
                RiskLimits(max_position=10, max_order_size=10, price_band_pct=None),
                instruments=(catalog.contract("MES", 2025, 3),),
                market_clock=sim_clock(sim),
            )
            strategy = Watcher()
            runner = LiveRunner(session, strategy, "MES", "1min", quotes=False)
            try:
                await runner.start()  # finishes the cut roll before the strategy starts
                assert runner.rolls == [cut.roll_id]
                await asyncio.wait_for(runner.run_for(3 * 60), 30)
                await runner.stop(cancel=False)
            finally:
                await session.stop()
            assert sim_positions(sim) == {"MESM5": QTY}
            assert strategy.seen and all(s == ("MESM5", QTY) for s in strategy.seen)
            [roll] = RollBook(records).all()
            assert roll.state is RollState.DONE
            # nothing doubled at the simulator: one entry, and the roll's orders once each
            refs = sorted(
                o.view.order_ref for o in sim.broker.completed_orders() + sim.broker.open_orders(None)
            )
            if hang == "between_legs":
                assert refs == sorted(["entry", f"{roll.roll_id}.close", f"{roll.roll_id}.open"])
            else:
                assert refs == sorted(["entry", f"{roll.roll_id}.bag"])
                legs = [r for r in records.orders() if r.client_order_id.startswith(f"{roll.roll_id}.bag.")]
                assert sorted(str(r.status) for r in legs) == ["Filled", "Filled"]
            assert {k: v for k, v in records.positions().items() if v} == {"MESM5": QTY}
            records.close()
        finally:
            await sim.stop()

    asyncio.run(body())

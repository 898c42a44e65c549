"""A live run that crosses MES's roll time (2025-03-17 09:00 Chicago) through the unmodified ib_async client
on the simulator: the runner rolls the strategy's position and its stop with ONE combo (two legs, old month
closed first, when the simulator refuses combos), never holds both months at once, records the roll as one
decision, and the strategy then trades June. And the start-up chain reconciliation: a restart that finds
last quarter's month held rolls it before trading; a month the strategy does not expect pauses it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import sim_clock, sim_positions, sim_settings

from ibot.engine.runner import LiveRunner
from ibot.engine.session import TradingSession
from ibot.model import catalog
from ibot.model.market import Bar
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.oms.rolls import RollBook, RollState
from ibot.sim.server import SimServer
from ibot.strategy.base import Strategy

BEFORE_ROLL = datetime(2025, 3, 17, 13, 50, tzinfo=UTC)  # 08:50 Chicago on MES's roll date
AFTER_ROLL = datetime(2025, 3, 18, 14, 30, tzinfo=UTC)  # the next day: MESH5 is past its roll time
SPEED = 300.0
H5 = catalog.contract("MES", 2025, 3)


class Holder(Strategy):
    """Buys one contract on its first bar with a stop far below; then only watches (which month, position)."""

    name = "holder"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.seen: list[tuple[str, int, int]] = []  # (month traded, position, working orders) per bar
        self.entered = False

    def on_bar(self, bar: Bar) -> None:
        ctx = self.ctx
        self.seen.append((ctx.instrument.key, ctx.position, len(ctx.open_orders())))
        if not self.entered:
            self.entered = True
            self.order(Side.BUY, 1, reason="entry")
            stop = ctx.instrument.round_to_tick(bar.close - 40)
            self.order(Side.SELL, 1, OrderType.STP, stop_price=stop, reason="protective stop")


def limits() -> RiskLimits:
    return RiskLimits(max_position=5, max_order_size=5, price_band_pct=None)


@asynccontextmanager
async def simulator(start: datetime) -> AsyncIterator[SimServer]:
    sim = SimServer(port=0, symbols=["MES"], speed=SPEED, start=start)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def session_on(sim: SimServer, records: OrderRecords, **kwargs: Any) -> TradingSession:
    return TradingSession(sim_settings(sim), records, limits(), market_clock=sim_clock(sim), **kwargs)


async def sample(sim: SimServer, into: list[dict[str, int]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        into.append(sim_positions(sim))
        await asyncio.sleep(0)


@pytest.mark.parametrize("combos", ["accepted", "refused"])
def test_a_run_across_the_roll_time_rolls_the_position_and_the_stop_then_trades_june(
    sqlite_url: str, combos: str
) -> None:
    async def body() -> None:
        async with simulator(BEFORE_ROLL) as sim:
            if combos == "refused":
                sim.broker.refuse_combos()
            records = OrderRecords(sqlite_url)
            records.migrate()
            session = session_on(sim, records, instruments=(H5,))
            strategy = Holder()
            runner = LiveRunner(session, strategy, "MESH5", "1min", quotes=False)
            exposure: list[dict[str, int]] = []
            done = asyncio.Event()
            try:
                await runner.start()
                watcher = asyncio.create_task(sample(sim, exposure, done))
                await asyncio.wait_for(runner.run_for(20 * 60), 30)
                done.set()
                await watcher
                await runner.stop(cancel=False)
            finally:
                await session.stop()
            assert len(runner.rolls) == 1 and sim_positions(sim) == {"MESM5": 1}
            # never both months, never more than the one contract: no double exposure at any moment
            assert not any(p.get("MESH5") and p.get("MESM5") for p in exposure), exposure
            assert all(sum(map(abs, p.values())) <= 1 for p in exposure)
            # the strategy traded March, then June with its position and its (moved) stop
            months = [m for m, _, _ in strategy.seen]
            assert months[0] == "MESH5" and months[-1] == "MESM5"
            assert strategy.seen[-1] == ("MESM5", 1, 1)
            # the roll: one decision in the records, its orders named after it
            [roll] = RollBook(records).all()
            assert roll.roll_id == runner.rolls[0] and roll.state is RollState.DONE
            assert (roll.from_key, roll.to_key, roll.quantity, len(roll.moved)) == ("MESH5", "MESM5", 1, 1)
            ours = {
                r.client_order_id: r for r in records.orders() if r.client_order_id.startswith(roll.roll_id)
            }
            if combos == "accepted":
                assert sorted(str(r.status) for r in ours.values()) == ["Filled", "Filled", "PreSubmitted"]
                assert not any(o.order_ref.endswith((".close", ".open")) for o in _refs(sim))
            else:
                filled = sorted(k.rsplit(".", 1)[1] for k, r in ours.items() if str(r.status) == "Filled")
                assert filled == ["close", "open"]
            stop = ours[f"{roll.roll_id}.re0"]
            assert (stop.local_symbol, str(stop.side), stop.order_type) == ("MESM5", "SELL", "STP")
            records.close()

    asyncio.run(body())


class _Ref:
    def __init__(self, order_ref: str) -> None:
        self.order_ref = order_ref


def _refs(sim: SimServer) -> list[_Ref]:
    orders = sim.broker.open_orders(None) + sim.broker.completed_orders()
    return [_Ref(o.view.order_ref) for o in orders]


async def _hold_march(sim: SimServer, records: OrderRecords, qty: int) -> None:
    """An earlier run that bought `qty` MESH5 and stopped (the position stays at IB and in the records)."""
    session = session_on(sim, records, instruments=(H5,))
    await session.start()
    m = await session.submit(
        OrderRequest("MESH5", Side.BUY, qty, client_order_id="old-entry"), strategy="holder"
    )
    loop = asyncio.get_running_loop()
    end = loop.time() + 5
    while m.filled < qty:
        assert loop.time() < end, "the entry did not fill"
        await asyncio.sleep(0.01)
    await session.stop()


def test_a_restart_that_finds_last_quarters_month_held_rolls_it_before_trading(sqlite_url: str) -> None:
    async def body() -> None:
        async with simulator(AFTER_ROLL) as sim:
            records = OrderRecords(sqlite_url)
            records.migrate()
            await _hold_march(sim, records, 2)
            assert sim_positions(sim) == {"MESH5": 2}
            session = session_on(sim, records, symbols=("MES",))  # the front month now: June
            strategy = Holder()
            strategy.entered = True  # it only watches
            runner = LiveRunner(session, strategy, "MES", "1min", quotes=False)
            try:
                await runner.start()  # rolls before the strategy starts
                assert sim_positions(sim) == {"MESM5": 2} and len(runner.rolls) == 1
                await asyncio.wait_for(runner.run_for(3 * 60), 30)
                await runner.stop(cancel=False)
            finally:
                await session.stop()
            assert strategy.seen and all(s == ("MESM5", 2, 0) for s in strategy.seen), strategy.seen
            [roll] = RollBook(records).all()
            assert (roll.from_key, roll.to_key, roll.state) == ("MESH5", "MESM5", RollState.DONE)
            records.close()

    asyncio.run(body())


def test_a_month_the_strategy_does_not_expect_pauses_it_unless_adopted(sqlite_url: str) -> None:
    async def body() -> None:
        async with simulator(AFTER_ROLL) as sim:
            records = OrderRecords(sqlite_url)
            records.migrate()
            session = session_on(sim, records, instruments=(catalog.contract("MES", 2025, 9),))
            await session.start()
            m = await session.submit(OrderRequest("MESU5", Side.BUY, 1, client_order_id="u5"), strategy="x")
            while m.filled < 1:
                await asyncio.sleep(0.01)
            await session.stop()
            for adopt in (False, True):
                session = session_on(sim, records, symbols=("MES",))
                strategy = Holder()
                strategy.entered = True
                runner = LiveRunner(session, strategy, "MES", "1min", quotes=False, adopt_held_month=adopt)
                try:
                    await runner.start()
                    await asyncio.wait_for(runner.run_for(3 * 60), 30)
                    await runner.stop(cancel=False)
                finally:
                    await session.stop()
                assert sim_positions(sim) == {"MESU5": 1} and not runner.rolls  # never rolled backwards
                if adopt:
                    assert strategy.seen and {s[0] for s in strategy.seen} == {"MESU5"}
                else:
                    assert strategy.seen == [] and runner.stats.bars_skipped > 0
                    assert any("unexpected month MESU5" in r for r in runner.stats.paused_reasons)
            records.close()

    asyncio.run(body())


def test_a_roll_on_a_closed_market_waits_paused_and_finishes_when_the_market_opens(sqlite_url: str) -> None:
    """Restarted in the daily break (16:00-17:00 Chicago) holding MESH5 past its roll time: the combo is
    accepted but held until the open; the roll step times out, the strategy stays paused, and the roll is
    finished on the first bars after the open (the combo sent once)."""

    async def body() -> None:
        async with simulator(datetime(2025, 3, 18, 20, 59, tzinfo=UTC)) as sim:  # 15:59 Chicago
            records = OrderRecords(sqlite_url)
            records.migrate()
            await _hold_march(sim, records, 1)
            while sim.market.closed_until(H5, int(sim.market.now_s)) is None:
                await asyncio.sleep(0.01)
            session = session_on(sim, records, symbols=("MES",))
            strategy = Holder()
            strategy.entered = True
            runner = LiveRunner(session, strategy, "MES", "1min", quotes=False, roll_timeout=0.5)
            try:
                await runner.start()
                assert sim_positions(sim) == {"MESH5": 1} and not runner.rolls
                assert any("unfinished" in r for r in runner.stats.paused_reasons)
                assert runner.instrument is not None and runner.instrument.key == "MESM5"
                opens = sim.market.closed_until(H5, int(sim.market.now_s))
                assert opens is not None
                while sim.market.now_s < opens + 5 * 60:
                    await asyncio.sleep(0.05)
                await asyncio.wait_for(runner.run_for(60), 30)
                await runner.stop(cancel=False)
            finally:
                await session.stop()
            assert sim_positions(sim) == {"MESM5": 1} and len(runner.rolls) == 1
            assert not runner.stats.paused_reasons
            assert strategy.seen and strategy.seen[-1] == ("MESM5", 1, 0)
            combos = [o for o in sim.broker.completed_orders() + sim.broker.open_orders(None) if o.is_combo]
            assert len(combos) == 1 and combos[0].status == "Filled"
            records.close()

    asyncio.run(body())

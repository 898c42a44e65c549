"""A full simulated live session: ma_breakout through `LiveRunner` and the real ib_async client against the
TWS simulator over loopback, records on a SQLite file and on the PostgreSQL server.

The strategy must trade, and afterwards the records must match the simulator one to one (every execution
once, with its exec id, side, quantity, price and final commission; every order's status and filled
quantity) and our positions must equal the simulated account's (`conftest.check_consistent`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from conftest import START, WAIT, Rig, sim_clock, sim_positions, sim_settings

from ibot.engine.context import LiveContext
from ibot.engine.runner import LiveRunner
from ibot.engine.session import SessionState, TradingSession
from ibot.engine.status import status_line
from ibot.model.orders import OrderRequest, OrderStatus, OrderUpdate, Side
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.sim.server import SimServer
from ibot.strategies.ma_breakout import MaBreakout
from ibot.strategy.base import Strategy

SPEED = 1200.0  # market seconds per wall second: a 1-min bar every 50 ms
PARAMS: dict[str, Any] = {"sma_period": 3, "breakout_bars": 2, "min_bars_between_reversals": 1}


def limits() -> RiskLimits:
    return RiskLimits(max_position=5, max_order_size=5, max_orders_per_day=None, max_trades_per_day=None)


@asynccontextmanager
async def session_on_sim(
    url: str, *, keep_records: bool = False, settings: dict[str, Any] | None = None, **server: Any
) -> AsyncIterator[tuple[SimServer, OrderRecords, TradingSession]]:
    """A started simulator (MES, SPEED, START; `server` overrides), migrated records at `url` and a trading
    session on them, not started (`settings` override `sim_settings`). On exit the session and the simulator
    stop and, unless `keep_records`, the records close."""
    sim = SimServer(port=0, symbols=["MES"], speed=SPEED, start=START, **server)
    await sim.start()
    records = OrderRecords(url)
    records.migrate()
    session = TradingSession(
        sim_settings(sim, **(settings or {})),
        records,
        limits(),
        symbols=("MES",),
        market_clock=sim_clock(sim),
    )
    try:
        yield sim, records, session
    finally:
        await session.stop()
        await sim.stop()
        if not keep_records:
            records.close()


async def trade_session(url: str, market_seconds: float) -> tuple[Rig, LiveRunner]:
    async with session_on_sim(url, keep_records=True, seed=11) as (server, records, session):
        rig = Rig(server, records, session)
        runner = LiveRunner(session, MaBreakout(**PARAMS), "MES", "1min")
        await runner.start()
        await asyncio.wait_for(runner.run_for(market_seconds), 20)
        await runner.stop(flatten=True)
        await rig.consistent()
    return rig, runner


def test_ma_breakout_trades_live_and_records_match_the_simulator_one_to_one(db_url: str) -> None:
    rig, runner = asyncio.run(trade_session(db_url, market_seconds=45 * 60))
    try:
        orders = rig.records.orders()
        fills = rig.records.executions()
        assert orders and fills, "the strategy placed no order in 45 simulated minutes"
        assert runner.stats.bars >= 40 and runner.stats.strategy_errors == 0
        assert {o.strategy for o in orders} == {"ma_breakout"}
        assert sorted(f.exec_id for f in fills) == sorted(e.exec_id for e in rig.server.broker.executions)
        assert sim_positions(rig.server) == {}  # flattened at the end, at IB too
        assert "ma_breakout" in status_line(rig.session, runner)
    finally:
        rig.records.close()


class OneOrderOnFirstBar(Strategy):
    """Buys one contract on its first bar; remembers what it was told about the order."""

    name = "one_order"

    def on_start(self) -> None:
        self.updates: list[OrderUpdate] = []
        self.sent: list[str] = []

    def on_bar(self, bar: Any) -> None:
        if not self.sent:
            self.sent.append(self.order(Side.BUY, 1))

    def on_order_update(self, update: OrderUpdate) -> None:
        self.updates.append(update)


def test_orders_while_the_session_is_not_ready_are_refused_with_a_log_line_and_nothing_recorded(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with session_on_sim(sqlite_url) as (_server, records, session):
            strategy = OneOrderOnFirstBar()
            await session.start()
            ctx = LiveContext(session, session.instrument("MES"), strategy)
            strategy.start(ctx)
            session._state = SessionState.PAUSED  # as after a drop: the runner's context must refuse
            cid = ctx.submit(OrderRequest("MES", Side.BUY, 1))
            await asyncio.sleep(0.05)
            assert records.get_order(cid) is None and records.orders() == []
            assert [(u.client_order_id, u.status) for u in strategy.updates] == [(cid, OrderStatus.REJECTED)]
            session._state = SessionState.READY
            sent = ctx.submit(OrderRequest("MES", Side.BUY, 1))
            rec = records.get_order(sent)  # write-ahead: recorded inside the strategy's call
            assert rec is not None and rec.strategy == "one_order"
            await asyncio.wait_for(_filled(session, sent), WAIT)
            assert ctx.position == 1

    with caplog.at_level(logging.INFO, logger="ibot.engine"):
        asyncio.run(main())
    assert any("REFUSED: the trading session is paused" in r.getMessage() for r in caplog.records)


async def _filled(session: TradingSession, cid: str) -> None:
    while True:
        m = session.om.order(cid)
        if m is not None and m.status is OrderStatus.FILLED:
            return
        await asyncio.sleep(0.01)


def test_a_stale_feed_during_trading_hours_pauses_the_strategy_until_data_returns(sqlite_url: str) -> None:
    async def main() -> None:
        async with session_on_sim(sqlite_url, settings={"stale_after_seconds": 120.0}, seed=11) as (
            server,
            records,
            session,
        ):
            runner = LiveRunner(session, MaBreakout(**PARAMS), "MES", "1min")
            await runner.start()
            rig = Rig(server, records, session)
            await rig.until(lambda: runner.stats.bars >= 2, "two bars traded")
            server.faults.competing_session(session.connection.client_id)  # 10197: IB stops our data
            await rig.until(lambda: bool(runner.stats.paused_reasons), "the strategy paused on a stale feed")
            assert "STRATEGY PAUSED: stale feed" in status_line(session, runner)
            traded = runner.stats.bars
            server.faults.competing_session(session.connection.client_id, on=False)
            await rig.until(lambda: not runner.stats.paused_reasons, "the strategy resumed")
            await rig.until(lambda: runner.stats.bars > traded, "a bar traded after the data came back")
            await runner.stop(flatten=True)

    asyncio.run(main())


def test_while_a_runner_trades_the_survivors_of_a_collection_leave_the_full_collections_reach(
    sqlite_url: str,
) -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: tracked by the collector

    def in_old_generation(nodes: list[Node]) -> int:
        old = {id(o) for o in gc.get_objects(generation=2)}
        return sum(id(n) in old for n in nodes)

    async def main() -> None:
        async with session_on_sim(sqlite_url, seed=11) as (_server, _records, session):
            runner = LiveRunner(session, MaBreakout(**PARAMS), "MES", "1min")
            await runner.start()
            kept = [Node() for _ in range(500)]  # what a session keeps: orders, trades, fills
            frozen = gc.get_freeze_count()
            gc.collect(1)
            assert gc.get_freeze_count() >= frozen + len(kept)
            gc.collect(1)  # survived again: a full collection would scan them, were they not frozen
            assert in_old_generation(kept) == 0
            await runner.stop()
            after = [Node() for _ in range(500)]
            gc.collect(1)
            gc.collect(1)
            assert in_old_generation(after) == len(after)  # stopped: the collector works as before

    asyncio.run(main())


def test_the_last_bar_of_a_trading_day_reclaims_the_frozen_garbage_once() -> None:
    import weakref

    from ibot.engine import runner as runner_mod
    from ibot.model.calendar import trading_day_bounds
    from ibot.model.market import NS_PER_SECOND

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    runner = LiveRunner.__new__(LiveRunner)  # only the day bookkeeping is exercised
    runner._day_end = 0
    runner._freezing = True
    minute = 60 * NS_PER_SECOND
    _, day_end = trading_day_bounds(int(START.timestamp()) * NS_PER_SECOND)
    sweeps: list[int] = []
    real_sweep = runner_mod._SURVIVORS.sweep

    def counting_sweep() -> int:
        sweeps.append(1)
        return real_sweep()

    gc.collect()
    gc.freeze()
    try:
        garbage = Cycle()
        ref = weakref.ref(garbage)
        gc.collect()
        gc.freeze()  # the cycle is frozen: no ordinary collection can free it now
        del garbage
        gc.collect()
        assert ref() is not None
        runner_mod._SURVIVORS.sweep = counting_sweep  # type: ignore[method-assign]
        for end in (day_end - 2 * minute, day_end - minute):
            runner._day_over(end)
        assert sweeps == [] and ref() is not None  # the day is not over yet
        runner._day_over(day_end)  # the bar that closes at the daily break
        assert sweeps == [1] and ref() is None  # swept: the frozen cycle is gone
        runner._day_over(day_end + 61 * minute)  # the next day's first bar: nothing more
        assert sweeps == [1]
    finally:
        runner_mod._SURVIVORS.sweep = real_sweep  # type: ignore[method-assign]
        gc.unfreeze()

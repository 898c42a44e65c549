"""Rolling a live position (issue 15) through the unmodified ib_async client on the simulator: ONE
calendar-spread combo, or two outright orders (old month closed first) when the simulator refuses combos;
working orders of the old month cancelled and placed again on the new one; the records show the roll as one
decision (a `rolls` row, every order's client id starting with the roll id)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from conftest import WAIT, sim_clock, sim_positions, sim_settings

from ibot.engine.roll import RollExecutor, RollSchedule
from ibot.engine.session import TradingSession
from ibot.model import catalog
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.oms.rolls import RollBook, RollState, combo_leg_id, combo_ref
from ibot.sim.server import SimServer

# Monday 2025-03-17, MES's roll date (4 business days before the third Friday), 08:40 Chicago: Globex open.
ROLL_DAY = datetime(2025, 3, 17, 13, 40, tzinfo=UTC)
SPEED = 60.0


def limits() -> RiskLimits:
    return RiskLimits(max_position=10, max_order_size=10, price_band_pct=None)


@asynccontextmanager
async def rig(url: str, **server: Any) -> AsyncIterator[tuple[SimServer, OrderRecords, TradingSession]]:
    sim = SimServer(port=0, symbols=["MES"], speed=SPEED, start=server.pop("start", ROLL_DAY), **server)
    await sim.start()
    records = OrderRecords(url)
    records.migrate()
    session = TradingSession(
        sim_settings(sim),
        records,
        limits(),
        instruments=(catalog.contract("MES", 2025, 3),),
        market_clock=sim_clock(sim),
    )
    try:
        await session.start()
        yield sim, records, session
    finally:
        await session.stop()
        await sim.stop()
        records.close()


async def filled(session: TradingSession, cid: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + WAIT
    while (m := session.om.order(cid)) is None or m.status is not OrderStatus.FILLED:
        assert loop.time() < end, f"order {cid} not filled"
        await asyncio.sleep(0.01)


async def hold(session: TradingSession, qty: int) -> None:
    """Open a position of `qty` (signed) in MESH5 and a protective stop far away."""
    old = session.instrument("MESH5")
    side = Side.BUY if qty > 0 else Side.SELL
    await session.submit(OrderRequest(old.key, side, abs(qty), client_order_id="entry"), strategy="t")
    await filled(session, "entry")
    assert session.om.risk.position(old) == qty


async def stop_far(session: TradingSession, sim: SimServer, qty: int) -> float:
    old = session.instrument("MESH5")
    q = sim.market.quote(old, int(sim.market.now_s))
    assert q is not None
    price = old.round_to_tick(q.bid - 50 if qty > 0 else q.ask + 50)
    side = Side.SELL if qty > 0 else Side.BUY
    stop = OrderRequest(old.key, side, abs(qty), OrderType.STP, stop_price=price, client_order_id="stop")
    m = await session.submit(stop, strategy="t")
    loop = asyncio.get_running_loop()
    end = loop.time() + WAIT
    while m.status not in (OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED):
        assert loop.time() < end
        await asyncio.sleep(0.01)
    return price


def test_the_schedule_rolls_mes_on_its_roll_date_at_nine_chicago_into_june() -> None:
    h5 = catalog.contract("MES", 2025, 3)
    schedule = RollSchedule()
    assert schedule.next_month(h5).key == "MESM5"
    assert schedule.roll_ns(h5) == int(datetime(2025, 3, 17, 14, 0, tzinfo=UTC).timestamp()) * 10**9
    assert not schedule.due(h5, schedule.roll_ns(h5) - 1) and schedule.due(h5, schedule.roll_ns(h5))


def test_a_long_position_rolls_with_one_combo_and_its_stop_moves_to_the_new_month(sqlite_url: str) -> None:
    async def body() -> None:
        async with rig(sqlite_url) as (sim, records, session):
            await hold(session, 2)
            stop_price = await stop_far(session, sim, 2)
            old, new = session.instrument("MESH5"), catalog.contract("MES", 2025, 6)
            roll = await RollExecutor(session, strategy="t").roll(old, await session.qualify(new))
            assert roll.state is RollState.DONE and roll.spread is not None
            assert sim_positions(sim) == {"MESM5": 2}
            assert session.om.risk.position("MESM5") == 2 and session.om.risk.position("MESH5") == 0
            # one combo at the simulator: a BAG with both legs; no outright roll orders
            combos = [o for o in sim.broker.completed_orders() if o.is_combo]
            assert len(combos) == 1 and combos[0].status == "Filled"
            assert {leg.inst.key for leg in combos[0].legs} == {"MESH5", "MESM5"}
            # the records: one roll decision; its orders' ids start with the roll id, legs share one IB id
            [rec] = RollBook(records).all()
            assert (rec.roll_id, rec.state, rec.quantity) == (roll.roll_id, RollState.DONE, 2)
            mine = [r for r in records.orders() if r.client_order_id.startswith(roll.roll_id)]
            legs = [r for r in mine if ".bag." in r.client_order_id]
            assert len(legs) == 2 and len({r.ib_order_id for r in legs}) == 1
            assert {(r.local_symbol, str(r.side), str(r.status)) for r in legs} == {
                ("MESH5", "SELL", "Filled"),
                ("MESM5", "BUY", "Filled"),
            }
            # the old stop was cancelled and placed again on June, shifted by the spread
            assert session.om.order("stop").status is OrderStatus.CANCELLED  # type: ignore[union-attr]
            moved = session.om.order(roll.cid("re0"))
            assert moved is not None and moved.instrument.key == "MESM5"
            want = new.round_to_tick(float(Decimal(repr(stop_price)) + roll.spread))
            assert moved.request.stop_price == want and moved.request.side is Side.SELL
            # the product now means June
            assert session.instrument("MES").key == "MESM5"

    asyncio.run(body())


def test_a_refused_combo_falls_back_to_two_legs_closing_the_old_month_first(sqlite_url: str) -> None:
    async def body() -> None:
        async with rig(sqlite_url) as (sim, records, session):
            await hold(session, -3)
            sim.broker.refuse_combos()
            exposure: list[dict[str, int]] = []
            watching = True

            async def watch() -> None:  # the simulator's positions, sampled while the roll runs
                while watching:
                    exposure.append(sim_positions(sim))
                    await asyncio.sleep(0)

            watcher = asyncio.create_task(watch())
            old, new = session.instrument("MESH5"), await session.qualify(catalog.contract("MES", 2025, 6))
            roll = await RollExecutor(session, strategy="t").roll(old, new)
            watching = False
            await watcher
            assert roll.state is RollState.DONE and sim_positions(sim) == {"MESM5": -3}
            # never both months at once: the close came first (flat in between), then the open
            assert exposure and not any(p.get("MESH5") and p.get("MESM5") for p in exposure), exposure
            combo = [r for r in records.orders() if ".bag." in r.client_order_id]
            assert {str(r.status) for r in combo} == {"Inactive"}
            close, open_ = session.om.order(roll.cid("close")), session.om.order(roll.cid("open"))
            assert close is not None and open_ is not None
            assert (close.request.side, close.instrument.key, close.status) == (
                Side.BUY,
                "MESH5",
                OrderStatus.FILLED,
            )
            assert (open_.request.side, open_.instrument.key, open_.status) == (
                Side.SELL,
                "MESM5",
                OrderStatus.FILLED,
            )
            # the open leg was recorded (and sent) only after the close had filled
            closed_at = max(f.ts for f in records.fills(close.client_order_id))
            opened = records.get_order(open_.client_order_id)
            assert opened is not None and opened.created_ts >= closed_at
            [rec] = RollBook(records).all()
            assert rec.state is RollState.DONE and rec.spread == roll.spread

    asyncio.run(body())


def test_the_live_roll_of_mcl_and_mgc_comes_a_business_day_before_ibs_restrictions() -> None:
    schedule = RollSchedule()
    mcl = catalog.contract("MCL", 2025, 4)  # last trade 2025-03-19: IB reduce-only from 2025-03-12
    mgc = catalog.contract("MGC", 2025, 4)  # first notice 2025-03-31
    assert catalog.roll_date(mcl) == datetime(2025, 3, 12).date()  # the catalog's: the window's first day
    assert datetime.fromtimestamp(schedule.roll_ns(mcl) / 1e9, UTC).date() == datetime(2025, 3, 11).date()
    assert schedule.next_month(mcl).key == "MCLK5"
    assert catalog.roll_date(mgc) == datetime(2025, 3, 26).date()
    assert datetime.fromtimestamp(schedule.roll_ns(mgc) / 1e9, UTC).date() == datetime(2025, 3, 25).date()
    assert schedule.next_month(mgc).key == "MGCM5"
    # configurable per product, or one rule for all
    later = RollSchedule(rules=(("MCL", catalog.RollRule(5)),))
    assert datetime.fromtimestamp(later.roll_ns(mcl) / 1e9, UTC).date() == datetime(2025, 3, 12).date()


def test_a_working_combo_is_found_again_by_a_restarted_session_as_its_legs(sqlite_url: str) -> None:
    """reqAllOpenOrders returns the BAG order; the IB adapter maps it to the two leg orders of the records:
    the reconciliation finds nothing unknown and closes nothing; a cancel ends both legs."""

    async def body() -> None:
        sim = SimServer(port=0, symbols=["MES"], speed=SPEED, start=ROLL_DAY)
        await sim.start()
        records = OrderRecords(sqlite_url)
        records.migrate()
        months = (catalog.contract("MES", 2025, 3), catalog.contract("MES", 2025, 6))

        def new_session() -> TradingSession:
            return TradingSession(
                sim_settings(sim), records, limits(), instruments=months, market_clock=sim_clock(sim)
            )

        try:
            session = new_session()
            await session.start()
            old, new = session.instrument("MESH5"), session.instrument("MESM5")
            ref = combo_ref("roll-test")
            legs = [
                OrderRequest(old.key, Side.SELL, 1, client_order_id=combo_leg_id(ref, old.con_id)),
                OrderRequest(new.key, Side.BUY, 1, client_order_id=combo_leg_id(ref, new.con_id)),
            ]
            placed = await session.om.submit_combo(
                ref, legs, 1, order_type=OrderType.LMT, limit_price=Decimal("-400")
            )
            loop = asyncio.get_running_loop()
            end = loop.time() + WAIT
            while any(m.status is not OrderStatus.SUBMITTED for m in placed):
                assert loop.time() < end, [m.status for m in placed]
                await asyncio.sleep(0.01)
            await session.stop()
            session = new_session()
            report = await session.start()
            assert not report.unknown_open_orders and not report.closed_orders, report.describe()
            again = [session.om.order(r.client_order_id) for r in legs]
            assert all(m is not None and m.status is OrderStatus.SUBMITTED for m in again)
            await session.cancel(legs[0].client_order_id)
            end = loop.time() + WAIT
            while any(m is None or m.status is not OrderStatus.CANCELLED for m in again):
                assert loop.time() < end
                await asyncio.sleep(0.01)
            assert sim_positions(sim) == {}
            await session.stop()
        finally:
            await sim.stop()
            records.close()

    asyncio.run(body())


def test_one_cancels_all_exits_stay_one_group_on_the_new_month(sqlite_url: str) -> None:
    async def body() -> None:
        async with rig(sqlite_url) as (sim, _records, session):
            await hold(session, 1)
            old = session.instrument("MESH5")
            q = sim.market.quote(old, int(sim.market.now_s))
            assert q is not None
            exits = [
                OrderRequest(
                    old.key,
                    Side.SELL,
                    1,
                    OrderType.STP,
                    stop_price=old.round_to_tick(q.bid - 40),
                    client_order_id="sl",
                    oca_group="exit-1",
                ),
                OrderRequest(
                    old.key,
                    Side.SELL,
                    1,
                    OrderType.LMT,
                    limit_price=old.round_to_tick(q.ask + 40),
                    client_order_id="tp",
                    oca_group="exit-1",
                ),
            ]
            for request in exits:
                await session.submit(request, strategy="t")
            new = await session.qualify(catalog.contract("MES", 2025, 6))
            roll = await RollExecutor(session, strategy="t").roll(old, new)
            sl, tp = session.om.order(roll.cid("re0")), session.om.order(roll.cid("re1"))
            assert sl is not None and tp is not None
            assert sl.request.oca_group == tp.request.oca_group == f"{roll.roll_id}.oca.exit-1"
            loop = asyncio.get_running_loop()
            end = loop.time() + WAIT
            while tp.status is not OrderStatus.SUBMITTED:
                assert loop.time() < end
                await asyncio.sleep(0.01)
            assert tp.order_id is not None
            sim.broker.fill_now(session.connection.client_id, tp.order_id)  # the take profit fills
            end = loop.time() + WAIT
            while sl.status is not OrderStatus.CANCELLED:  # ... and the stop goes with it
                assert loop.time() < end, sl.status
                await asyncio.sleep(0.01)
            assert sim_positions(sim) == {}

    asyncio.run(body())


def test_two_runners_rolling_at_once_roll_the_position_once(sqlite_url: str) -> None:
    """Two strategies of one node on MES reach the roll time on the same bar: the first rolls the account's
    position, the second finds the old month flat (nothing doubled)."""

    async def body() -> None:
        async with rig(sqlite_url) as (sim, records, session):
            await hold(session, 2)
            old, new = session.instrument("MESH5"), await session.qualify(catalog.contract("MES", 2025, 6))
            a, b = await asyncio.gather(
                RollExecutor(session, strategy="a").roll(old, new, orders=[]),
                RollExecutor(session, strategy="b").roll(old, new, orders=[]),
            )
            assert sorted([a.quantity, b.quantity]) == [0, 2]
            assert a.state is RollState.DONE and b.state is RollState.DONE
            assert sim_positions(sim) == {"MESM5": 2}
            assert len([o for o in sim.broker.completed_orders() if o.is_combo]) == 1
            assert len(RollBook(records).all()) == 2

    asyncio.run(body())

"""The order manager's money paths that ran without an assertion that would notice a wrong order (issue 13,
finding 11): the kill switch flattening a short or a 1-lot, a trip carried by a fill's commission, reconciling
while an order still works at the broker, an order filled completely while disconnected, a bracket through the
manager, NaN and infinite ticks, a stop price, and a tripped switch that must not let a position reverse.

All through the paper broker (the real matching engine) and the real records (SQLite file and PostgreSQL).
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from oms_helpers import MES, SECOND, T0, run
from test_manager import FEE, Rig, lmt, mkt, quote, rig

from ibot.model.catalog import contract
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimitExceeded

S = OrderStatus


def flatten_orders(r: Rig) -> list[str]:
    return [m.client_order_id for m in r.om.orders() if m.strategy == "kill_switch"]


# The kill switch flattens whatever is held ------------------------------------------------------------------
@pytest.mark.parametrize(("entry", "quantity"), [(Side.SELL, 1), (Side.BUY, 1), (Side.SELL, 3)])
def test_kill_switch_flattens_a_short_or_a_one_lot_with_one_market_order_the_other_way(
    records: OrderRecords, entry: Side, quantity: int
) -> None:
    async def main() -> None:
        r = rig(records, daily_loss_limit=Decimal(40))
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(mkt(entry, quantity, cid="entry"))
        quote(r, 5000.0, 5000.0)  # bid = ask: the entry fills at 5000 either way
        assert r.om.risk.position(MES) == entry.sign * quantity
        against = 5000.0 - entry.sign * 10  # 10 points against the position: 50 per contract lost
        quote(r, against, against)  # the market moves (at the broker), then the price reaches risk
        assert r.om.on_price(MES, against) is True
        await r.om.drain()
        (cid,) = flatten_orders(r)
        flat = r.om.order(cid)
        assert flat is not None
        exit_side = Side.SELL if entry is Side.BUY else Side.BUY
        assert (flat.request.side, flat.request.quantity, flat.request.order_type) == (
            exit_side,
            quantity,
            OrderType.MKT,
        )
        assert flat.request.reason.startswith("kill switch flatten: daily_loss")
        assert (flat.status, flat.filled) == (S.FILLED, quantity)
        assert r.om.risk.position(MES) == 0
        (f,) = records.fills(cid)
        assert (f.side, f.quantity, f.price) == (exit_side, quantity, Decimal(str(against)))
        # 2 x quantity x 0.62 fees and 50 x quantity lost: exactly
        assert r.om.risk.day_pnl() == -(50 + 2 * FEE) * quantity
        with pytest.raises(RiskLimitExceeded) as info:  # flat and halted: nothing opens again
            await r.om.submit(mkt(entry, 1))
        assert info.value.limit == "kill_switch"

    run(main())


def test_a_tripped_kill_switch_refuses_an_order_that_would_reverse_the_position(
    records: OrderRecords,
) -> None:
    """Issue 13, finding 12, through the manager: long 2 and halted, SELL 3 is refused (and recorded so), and
    a second SELL 2 while the first still works would cross with it."""

    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(mkt(Side.BUY, 2))
        quote(r, 5000.0, 5000.0)
        r.om.risk.trip("test: halted by hand")
        for qty in (3, 4):
            with pytest.raises(RiskLimitExceeded, match="would cross flat") as info:
                await r.om.submit(lmt(Side.SELL, 5010.0, qty, cid=f"cross{qty}"))
            assert info.value.limit == "kill_switch"
            saved = records.get_order(f"cross{qty}")
            assert saved is not None and saved.status is S.REJECTED
        first = await r.om.submit(lmt(Side.SELL, 5010.0, 2, cid="exit1"))
        assert first.status is S.SUBMITTED
        with pytest.raises(RiskLimitExceeded, match="with 2 working") as info:
            await r.om.submit(lmt(Side.SELL, 5010.0, 2, cid="exit2"))
        assert info.value.limit == "kill_switch"
        assert [o.client_order_id for o in r.broker.placed][-1] == "exit1"
        r.broker.on_trade(MES, r.clock.ns + SECOND, 5010.25)
        assert r.om.risk.position(MES) == 0

    run(main())


def test_a_commission_arriving_with_an_adopted_fill_trips_the_kill_switch(records: OrderRecords) -> None:
    """The fill alone loses nothing (bought at the last price); its 0.62 fee, carried on the execution that
    reconciliation adopts, is what takes the day past the 0.50 limit: the switch trips and the 1-lot is
    flattened."""

    async def main() -> None:
        r = rig(records, daily_loss_limit=Decimal("0.50"))
        await r.om.connect()
        r.om.on_price(MES, 4999.0)
        order = await r.om.submit(lmt(Side.BUY, 4999.0, cid="buy"))
        r.broker.drop_connection()
        r.broker.on_trade(MES, T0 + 10 * SECOND, 4998.75)  # fills at 4999 while nobody hears
        assert r.om.risk.kill_switch is None
        report = await r.om.connect()
        assert len(report.adopted_fills) == 1
        assert (order.status, order.filled) == (S.FILLED, 1)
        (f,) = records.fills("buy")
        assert (f.price, f.commission) == (Decimal(4999), FEE)
        assert r.om.risk.day_pnl() == -FEE
        assert r.om.risk.kill_switch is not None
        assert "over by 0.12" in r.om.risk.kill_switch.reason
        await r.om.drain()
        (cid,) = flatten_orders(r)
        flat = r.om.order(cid)
        assert flat is not None
        assert (flat.request.side, flat.request.quantity) == (Side.SELL, 1)

    run(main())


# Reconciliation ---------------------------------------------------------------------------------------------
def test_reconcile_keeps_an_order_still_working_at_the_broker_and_adopts_its_partial_fill(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        resting = await r.om.submit(lmt(Side.BUY, 4990.0, 1, cid="rest"))
        partial = await r.om.submit(lmt(Side.BUY, 4995.0, 3, cid="part"))
        r.broker.drop_connection()
        r.broker.on_trade(MES, T0 + 10 * SECOND, 4994.75, 1)  # one of three fills while disconnected
        report = await r.om.connect()
        assert report.closed_orders == []
        assert report.unknown_open_orders == []
        assert report.position_differences == {}
        assert len(report.adopted_fills) == 1
        assert (resting.status, resting.filled, resting.remaining) == (S.SUBMITTED, 0, 1)
        assert (partial.status, partial.filled, partial.remaining) == (S.SUBMITTED, 1, 2)
        assert {m.client_order_id for m in r.om.working_orders()} == {"rest", "part"}
        saved = records.get_order("part")
        assert saved is not None
        assert (saved.status, saved.filled, saved.remaining) == (S.SUBMITTED, 1, 2)
        assert r.om.risk.position(MES) == 1
        again = await r.om.resync()
        assert again.clean
        r.broker.on_trade(MES, T0 + 20 * SECOND, 4989.75)  # both still work: both fill now
        assert (resting.status, partial.status, partial.filled) == (S.FILLED, S.FILLED, 3)
        assert r.om.risk.position(MES) == 4

    run(main())


def test_an_order_filled_completely_while_disconnected_ends_filled_with_every_execution(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        order = await r.om.submit(lmt(Side.SELL, 5001.0, 2, cid="gone"))
        r.broker.drop_connection()
        r.broker.on_trade(MES, T0 + 10 * SECOND, 5001.25, 1)
        r.broker.on_trade(MES, T0 + 11 * SECOND, 5001.5, 1)
        assert (order.status, order.filled) == (S.SUBMITTED, 0)
        report = await r.om.connect()
        assert len(report.adopted_fills) == 2
        assert report.closed_orders == []
        assert report.position_differences == {}
        assert (order.status, order.filled, order.remaining, order.avg_fill_price) == (
            S.FILLED,
            2,
            0,
            Decimal(5001),
        )
        fills = records.fills("gone")
        assert [(f.side, f.quantity, f.price) for f in fills] == [(Side.SELL, 1, Decimal(5001))] * 2
        saved = records.get_order("gone")
        assert saved is not None
        assert (saved.status, saved.filled, saved.remaining, saved.avg_fill_price) == (
            S.FILLED,
            2,
            0,
            Decimal(5001),
        )
        assert r.om.risk.position(MES) == -2
        assert [f.quantity for f in r.strategy.fills] == [1, 1]
        assert r.om.working_orders() == []

    run(main())


# Brackets ---------------------------------------------------------------------------------------------------
def test_a_brackets_parent_and_child_go_through_the_manager_linked_and_both_fill(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        parent = await r.om.submit(lmt(Side.BUY, 4999.0, 2, cid="parent"))
        stop = OrderRequest("MES", Side.SELL, 2, OrderType.STP, stop_price=4990.0, client_order_id="stop")
        child = await r.om.submit(replace_parent(stop, "parent"))
        sent_parent, sent_child = r.broker.placed[-2:]
        assert sent_child.parent_order_id == parent.order_id == sent_parent.order_id
        assert sent_parent.parent_order_id is None
        saved = records.get_order("stop")
        assert saved is not None
        assert (saved.parent_client_order_id, saved.stop_price, saved.side) == (
            "parent",
            Decimal(4990),
            Side.SELL,
        )
        assert (child.status, child.filled) == (S.PRE_SUBMITTED, 0)  # held at the broker behind the parent
        r.broker.on_trade(MES, T0 + 5 * SECOND, 4998.75)
        assert (parent.status, parent.filled) == (S.FILLED, 2)
        assert (child.status, child.filled) == (S.PRE_SUBMITTED, 0)  # a stop waits for its trigger
        assert r.om.risk.position(MES) == 2
        r.broker.on_trade(MES, T0 + 6 * SECOND, 4989.75)  # through the stop
        assert (child.status, child.filled) == (S.FILLED, 2)
        assert r.om.risk.position(MES) == 0
        assert [f.side for f in records.fills("stop")] == [Side.SELL]

    run(main())


def replace_parent(request: OrderRequest, parent: str) -> OrderRequest:
    from dataclasses import replace

    return replace(request, parent_id=parent)


# Prices that must never count -------------------------------------------------------------------------------
@pytest.mark.parametrize("tick", [math.nan, math.inf, -math.inf])
def test_a_nan_or_infinite_tick_moves_neither_the_last_price_nor_the_days_pnl(
    records: OrderRecords, tick: float
) -> None:
    async def main() -> None:
        r = rig(records, daily_loss_limit=Decimal(1))
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(mkt(Side.BUY, 1))
        quote(r, 5000.0, 5000.0)
        pnl = r.om.risk.day_pnl()
        assert pnl == -FEE
        assert r.om.on_price(MES, tick) is False
        assert r.om.risk.last_price(MES) == Decimal(5000)
        assert r.om.risk.day_pnl() == pnl
        assert r.om.risk.kill_switch is None
        await r.om.submit(lmt(Side.BUY, 5010.0))  # the price band still measures from 5000: 0.2 % away

    run(main())


def test_a_stop_price_is_checked_against_the_band_and_the_refusal_recorded(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records, price_band_pct=Decimal(1))
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        far = OrderRequest("MES", Side.SELL, 1, OrderType.STP, stop_price=4949.75, client_order_id="far")
        with pytest.raises(RiskLimitExceeded, match=r"stop 4949\.75 is 1\.005% from last 5000") as info:
            await r.om.submit(far)
        assert info.value.limit == "price_band"
        saved = records.get_order("far")
        assert saved is not None and saved.status is S.REJECTED
        near = OrderRequest("MES", Side.SELL, 1, OrderType.STP, stop_price=4950.0, client_order_id="near")
        assert (await r.om.submit(near)).status is S.PRE_SUBMITTED  # a stop rests untriggered
        assert [o.client_order_id for o in r.broker.placed] == ["near"]

    run(main())


def test_the_kill_switch_flattens_past_every_limit_and_skips_flat_instruments(records: OrderRecords) -> None:
    """The day's order cap is used up and another instrument is flat: the kill still flattens MES, as a
    close-out that no limit may stop, and records who asked and why (the reason cut to 200 characters)."""

    async def main() -> None:
        r = rig(records, max_orders_per_day=1)
        await r.om.connect()
        r.om.risk.set_position(contract("M2K", 2024, 12), 0)  # a flat instrument, sorted before MESZ4
        r.om.on_price(MES, 5000.0)
        await r.om.submit(mkt(Side.BUY, 2, cid="entry"))
        quote(r, 5000.0, 5000.0)
        with pytest.raises(RiskLimitExceeded, match="max_orders_per_day"):
            await r.om.submit(mkt(Side.SELL, 1))
        reason = "manual halt " + "x" * 300
        flat = await r.om.kill(reason)
        assert r.om.kill_pending is None
        ks = r.om.risk.kill_switch
        assert ks is not None and (ks.reason, ks.ts) == (reason, r.clock.ns)
        assert [(m.request.symbol, m.request.side, m.request.quantity) for m in flat] == [
            ("MESZ4", Side.SELL, 2)
        ]
        assert flat[0].request.reason == f"kill switch flatten: {reason}"[:200]
        assert flat[0].strategy == "kill_switch"
        assert (flat[0].status, flat[0].filled) == (S.FILLED, 2)
        assert r.om.risk.position(MES) == 0

    run(main())

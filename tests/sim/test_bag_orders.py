"""Combo (BAG) calendar-spread orders on the simulator, through the unmodified ib_async client: the combo
fills as a whole, one execution per leg (its own conId, price and execId, under the combo's order id), the
combo's average price is the spread price on the spread tick; refused combos (201) and bad combos."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from ib_async import IB, ComboLeg, Contract, ExecutionFilter, Future, LimitOrder, MarketOrder
from sim_helpers import WAIT, connect, error_waiter, run

from ibot.sim.server import SimServer


async def months(ib: IB) -> tuple[Future, Future]:
    """MESH5 (the front month on 2025-03-05) and MESM5."""
    front, deferred = await ib.qualifyContractsAsync(
        Future("MES", "202503", "CME"), Future("MES", "202506", "CME")
    )
    assert front is not None and deferred is not None
    return front, deferred


def calendar(sell: Future, buy: Future, exchange: str = "CME") -> Contract:
    """Bought: sell `sell`, buy `buy` (a roll of a long position from `sell` to `buy`)."""
    return Contract(
        secType="BAG",
        symbol="MES",
        exchange=exchange,
        currency="USD",
        comboLegs=[
            ComboLeg(conId=buy.conId, ratio=1, action="BUY", exchange="CME"),
            ComboLeg(conId=sell.conId, ratio=1, action="SELL", exchange="CME"),
        ],
    )


async def done(trade: Any) -> None:
    while not trade.isDone() and trade.orderStatus.status != "Inactive":
        await asyncio.wait_for(trade.statusEvent, WAIT)


def positions(server: SimServer) -> dict[str, int]:
    return {inst.key: qty for inst, qty, _ in server.positions() if qty}


def test_a_calendar_spread_fills_whole_with_one_execution_per_leg() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        front, deferred = await months(ib)
        opened = ib.placeOrder(front, MarketOrder("BUY", 2))
        await done(opened)
        assert positions(server) == {"MESH5": 2}
        trade = ib.placeOrder(calendar(front, deferred), MarketOrder("BUY", 2))
        await done(trade)
        while len(trade.fills) < 2:
            await asyncio.wait_for(trade.fillEvent, WAIT)
        assert trade.orderStatus.status == "Filled" and trade.orderStatus.filled == 2
        by_con = {f.contract.conId: f.execution for f in trade.fills}
        assert set(by_con) == {front.conId, deferred.conId}
        sold, bought = by_con[front.conId], by_con[deferred.conId]
        assert (sold.side, sold.shares, bought.side, bought.shares) == ("SLD", 2, "BOT", 2)
        assert sold.orderId == bought.orderId == trade.order.orderId
        assert sold.permId == bought.permId == trade.orderStatus.permId != 0
        assert sold.execId != bought.execId
        spread = Decimal(repr(bought.price)) - Decimal(repr(sold.price))
        assert Decimal(repr(trade.orderStatus.avgFillPrice)) == spread
        assert spread % Decimal("0.05") == 0
        # the legs' prices are the legs' own quotes on their tick grid
        assert Decimal(repr(sold.price)) % Decimal("0.25") == 0
        assert positions(server) == {"MESM5": 2}
        # a commission report for each leg's execution
        await asyncio.sleep(0.1)
        assert all(f.commissionReport.commission > 0 for f in trade.fills)
        # reqExecutions: the legs again, each with its own contract, under the combo's order id
        fills = await ib.reqExecutionsAsync(ExecutionFilter(clientId=1))
        legs = [f for f in fills if f.execution.orderId == trade.order.orderId]
        assert sorted(f.contract.localSymbol for f in legs) == ["MESH5", "MESM5"]
        ib.disconnect()

    run(body)


def test_a_sold_combo_reverses_every_leg() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        front, deferred = await months(ib)
        trade = ib.placeOrder(calendar(front, deferred), MarketOrder("SELL", 1))
        await done(trade)
        assert trade.orderStatus.status == "Filled"
        assert positions(server) == {"MESH5": 1, "MESM5": -1}
        ib.disconnect()

    run(body)


def test_a_limit_combo_rests_off_the_market_on_the_spread_tick_and_cancels() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        front, deferred = await months(ib)
        off_grid = error_waiter(ib, 110)
        bad = ib.placeOrder(calendar(front, deferred), LimitOrder("BUY", 1, -400.03))
        assert (await asyncio.wait_for(off_grid, WAIT))[0] == bad.order.orderId
        trade = ib.placeOrder(calendar(front, deferred), LimitOrder("BUY", 1, -400.05))
        while trade.orderStatus.status != "Submitted":
            await asyncio.wait_for(trade.statusEvent, WAIT)
        await asyncio.sleep(0.2)  # market seconds pass: a spread of -400 is never reached
        assert trade.orderStatus.status == "Submitted" and not trade.fills
        ib.cancelOrder(trade.order)
        await done(trade)
        assert trade.orderStatus.status == "Cancelled" and positions(server) == {}
        ib.disconnect()

    run(body)


def test_refused_combos_end_inactive_with_201_while_outright_orders_fill() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        front, deferred = await months(ib)
        server.broker.refuse_combos()
        rejected = error_waiter(ib, 201)
        trade = ib.placeOrder(calendar(front, deferred), MarketOrder("BUY", 1))
        req_id, _, text = await asyncio.wait_for(rejected, WAIT)
        await done(trade)
        assert req_id == trade.order.orderId and text.startswith("Order rejected - reason:")
        assert trade.orderStatus.status == "Inactive" and trade.fills == []
        outright = ib.placeOrder(deferred, MarketOrder("BUY", 1))
        await done(outright)
        assert outright.orderStatus.status == "Filled" and positions(server) == {"MESM5": 1}
        ib.disconnect()

    run(body)


def test_a_combo_routed_smart_or_mixing_products_has_no_security_definition() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        front, deferred = await months(ib)
        [mnq] = await ib.qualifyContractsAsync(Future("MNQ", "202503", "CME"))
        for contract in (calendar(front, deferred, exchange="SMART"), calendar(front, mnq)):
            refused = error_waiter(ib, 200)
            trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
            assert (await asyncio.wait_for(refused, WAIT))[0] == trade.order.orderId
        assert positions(server) == {}
        ib.disconnect()

    run(body)


def test_the_refuse_combos_fault_is_scriptable_for_ibot_sim() -> None:
    from ibot.sim.script import parse_fault

    async def body(server: SimServer) -> None:
        parse_fault("0:refuse_combos").apply(server.faults)
        assert server.broker.combos_refused
        parse_fault("5:accept_combos").apply(server.faults)
        assert not server.broker.combos_refused

    run(body)

"""Each scripted order fault of the simulator, observed the way ib_async reports it."""

from __future__ import annotations

import asyncio
from typing import Any

from ib_async import IB, LimitOrder, MarketOrder
from sim_helpers import WAIT, connect, error_waiter, qualified_mes, run

from ibot.sim.server import SimServer


async def settled(trade: Any) -> None:
    while not trade.isDone() and trade.orderStatus.status != "Inactive":
        await asyncio.wait_for(trade.statusEvent, WAIT)


async def working(trade: Any) -> None:
    while trade.orderStatus.status not in ("Submitted", "PreSubmitted"):
        await asyncio.wait_for(trade.statusEvent, WAIT)


def far_bid(server: SimServer, ticks_below: float = 25.0) -> float:
    from ibot.model import catalog

    q = server.market.quote(catalog.contract("MES", 2025, 6), int(server.market.now_s))
    assert q is not None
    return q.bid - ticks_below


def test_next_order_rejected_201_ends_inactive() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        server.faults.reject_next_order(201)
        rejected = error_waiter(ib, 201)
        trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
        req_id, _, text = await asyncio.wait_for(rejected, WAIT)
        await settled(trade)
        assert req_id == trade.order.orderId and text.startswith("Order rejected - reason:")
        assert trade.orderStatus.status == "Inactive" and trade.fills == []
        ib.disconnect()

    run(body)


def test_next_order_cancelled_202_and_other_codes() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        server.faults.reject_next_order(202)
        trade = ib.placeOrder(contract, LimitOrder("BUY", 1, far_bid(server)))
        await settled(trade)
        assert trade.orderStatus.status == "Cancelled"
        assert [e.status for e in trade.log][-2:] == ["PendingCancel", "Cancelled"]
        server.faults.reject_next_order(200)
        refused = error_waiter(ib, 200)
        other = ib.placeOrder(contract, MarketOrder("BUY", 1))
        assert (await asyncio.wait_for(refused, WAIT))[0] == other.order.orderId
        assert other.orderStatus.status == "Cancelled" and server.broker.order(1, other.order.orderId) is None
        ib.disconnect()

    run(body)


def test_working_order_goes_inactive() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        trade = ib.placeOrder(contract, LimitOrder("BUY", 1, far_bid(server)))
        await working(trade)
        server.faults.inactivate_order(1, trade.order.orderId)
        await settled(trade)
        assert trade.orderStatus.status == "Inactive"
        server.faults.inactivate_next_order()
        nxt = ib.placeOrder(contract, MarketOrder("BUY", 1))
        await settled(nxt)
        assert nxt.orderStatus.status == "Inactive" and nxt.fills == []
        assert await ib.reqOpenOrdersAsync() == []
        ib.disconnect()

    run(body)


def test_cancel_that_arrives_too_late_goes_pending_cancel_then_filled() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        price = far_bid(server)
        trade = ib.placeOrder(contract, LimitOrder("BUY", 1, price))
        await working(trade)
        server.faults.late_cancel_next()
        ib.cancelOrder(trade.order)
        await settled(trade)
        assert trade.orderStatus.status == "Filled"
        statuses = [e.status for e in trade.log]
        assert statuses.index("PendingCancel") < statuses.index("Filled")
        assert [f.execution.price for f in trade.fills] == [price]
        assert [p.position for p in ib.positions()] == [1]
        ib.disconnect()

    run(body)


def test_commission_report_delayed_then_released() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        reports: list[Any] = []
        ib.commissionReportEvent += lambda t, f, r: reports.append(r)
        server.faults.delay_commissions()  # until released
        trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
        await settled(trade)
        await asyncio.sleep(0.2)
        assert trade.orderStatus.status == "Filled" and len(trade.fills) == 1
        assert reports == [] and trade.fills[0].commissionReport.commission == 0.0  # not known yet
        server.faults.release_commissions()
        await asyncio.wait_for(ib.commissionReportEvent, WAIT)
        assert trade.fills[0].commissionReport.commission == 0.62
        server.faults.delay_commissions(0.3)  # by wall seconds
        second = ib.placeOrder(contract, MarketOrder("SELL", 1))
        await settled(second)
        assert second.fills[0].commissionReport.commission == 0.0
        await asyncio.wait_for(ib.commissionReportEvent, WAIT)
        assert second.fills[0].commissionReport.commission == 0.62
        assert second.fills[0].commissionReport.realizedPNL != 0.0
        ib.disconnect()

    run(body)


def test_restart_rolls_next_valid_id_back_and_a_reused_id_is_103() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server, 5)
        contract = await qualified_mes(ib)
        trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
        await settled(trade)
        used = trade.order.orderId
        server.faults.restart(1.0, next_valid_id=used)
        await asyncio.sleep(0.3)  # one market second passes at speed 600 in ~2 ms
        ib2 = IB()
        await ib2.connectAsync("127.0.0.1", server.port, 5, timeout=WAIT)
        assert server.next_order_id == used  # what NEXT_VALID_ID announced: the gateway forgot its ids
        ib2.client._reqIdSeq = used  # a client taking it at face value (ib_async spent a few on its sync)
        duplicate = error_waiter(ib2, 103)
        again = ib2.placeOrder(contract, MarketOrder("SELL", 1))
        assert again.order.orderId == used
        req_id, _, text = await asyncio.wait_for(duplicate, WAIT)
        assert (req_id, text) == (used, "Duplicate order id")
        assert [p.position for p in ib2.positions()] == [1]  # nothing was sold
        ib2.disconnect()

    run(body)

"""The Broker port through ib_async against the simulator's order path: place, fill, cancel, brackets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

from ib_sim_helpers import WAIT, run, settings, sim_clock

from ibot.brokers.ib.broker import IBBroker
from ibot.brokers.ib.config import ClientRole
from ibot.brokers.ib.connection import IBConnection
from ibot.model import catalog
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.broker import (
    Broker,
    BrokerCommission,
    BrokerError,
    BrokerEvent,
    BrokerExecution,
    BrokerOrder,
    BrokerStatus,
)
from ibot.sim.server import SimServer

MESH5 = catalog.contract("MES", 2025, 3)


class Listener:
    """Collects broker events; a test awaits the first one matching a predicate."""

    def __init__(self) -> None:
        self.events: list[BrokerEvent] = []
        self._more = asyncio.Event()

    def on_broker_event(self, event: BrokerEvent) -> None:
        self.events.append(event)
        self._more.set()

    async def first(self, match: Callable[[BrokerEvent], bool], timeout: float = WAIT) -> BrokerEvent:
        async def wait() -> BrokerEvent:
            while True:
                for e in self.events:
                    if match(e):
                        return e
                self._more.clear()
                await self._more.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def status(self, order_id: int, *statuses: OrderStatus) -> BrokerStatus:
        e = await self.first(
            lambda e: isinstance(e, BrokerStatus) and e.order_id == order_id and e.status in statuses
        )
        assert isinstance(e, BrokerStatus)
        return e


async def started(server: SimServer) -> tuple[IBBroker, Listener, int]:
    connection = IBConnection(settings(server), ClientRole.ORDER_MANAGER, clock=sim_clock(server))
    broker = IBBroker(connection)
    listener = Listener()
    broker.set_listener(listener)
    next_id = await broker.connect()
    return broker, listener, next_id


def order(
    oid: int, side: Side, qty: int = 1, kind: OrderType = OrderType.MKT, **prices: float
) -> BrokerOrder:
    ref = f"t-{oid}"
    request = OrderRequest("MES", side, qty, kind, client_order_id=ref, **prices)  # type: ignore[arg-type]
    return BrokerOrder(request, MESH5, oid, ref)


def test_market_order_fills_with_execution_commission_and_position() -> None:
    async def body(server: SimServer) -> None:
        broker, events, next_id = await started(server)
        assert isinstance(broker, Broker) and next_id > 0
        ids = await broker.place(order(next_id, Side.BUY, 2))
        assert ids.order_id == next_id
        filled = await events.status(next_id, OrderStatus.FILLED)
        assert (filled.filled, filled.remaining, filled.client_order_id) == (2, 0, f"t-{next_id}")
        assert filled.perm_id and filled.avg_fill_price is not None
        execution = await events.first(lambda e: isinstance(e, BrokerExecution))
        assert isinstance(execution, BrokerExecution)
        assert (execution.symbol, execution.side, execution.client_order_id) == (
            "MESH5",
            Side.BUY,
            f"t-{next_id}",
        )
        assert MESH5.is_on_grid(float(execution.price))
        fee = await events.first(lambda e: isinstance(e, BrokerCommission) and e.exec_id == execution.exec_id)
        assert isinstance(fee, BrokerCommission) and fee.commission is not None and fee.commission > 0
        [position] = [p for p in await broker.positions() if p.key == "MESH5"]
        assert position.quantity == 2
        assert position.avg_cost is not None and abs(position.avg_cost - execution.price) < Decimal(1)
        replay = await broker.executions()
        assert [e.exec_id for e in replay if e.order_id == next_id] != []
        summary = {v.tag: v.value for v in await broker.account_summary()}
        assert "NetLiquidation" in summary
        await broker.disconnect()

    run(body)


def test_limit_order_rests_then_cancel_ends_cancelled() -> None:
    async def body(server: SimServer) -> None:
        broker, events, oid = await started(server)
        price = await broker.marketable_limit(MESH5, Side.BUY, offset_ticks=0)
        far = MESH5.round_to_tick(price - 100)
        await broker.place(order(oid, Side.BUY, 1, OrderType.LMT, limit_price=far))
        # the new order is in ib_async's books as IB.placeOrder would have put it: its events update it
        [trade] = [t for t in broker.connection.ib.trades() if t.order.orderId == oid]
        assert (trade.order.orderRef, trade.order.clientId) == (f"t-{oid}", broker.connection.client_id)
        assert [e.status for e in trade.log] == ["PendingSubmit"]
        await events.status(oid, OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED)
        [working] = [o for o in await broker.open_orders() if o.order_id == oid]
        assert (working.client_order_id, working.quantity, working.side) == (f"t-{oid}", 1, Side.BUY)
        await broker.modify(order(oid, Side.BUY, 2, OrderType.LMT, limit_price=far - 1))
        assert [e.message for e in trade.log].count("Modify") == 1  # ib_async found the trade: a modify
        await broker.cancel(oid)
        await events.status(oid, OrderStatus.CANCELLED)
        assert trade.orderStatus.status == "Cancelled" and trade.isDone()
        error = await events.first(lambda e: isinstance(e, BrokerError) and e.order_id == oid)
        assert isinstance(error, BrokerError) and error.code == 202
        assert [o for o in await broker.open_orders() if o.order_id == oid] == []
        await broker.disconnect()

    run(body)


def test_cancel_all_cancels_every_working_order() -> None:
    async def body(server: SimServer) -> None:
        broker, events, oid = await started(server)
        bid = await broker.marketable_limit(MESH5, Side.SELL, offset_ticks=0)
        await broker.place(order(oid, Side.BUY, 1, OrderType.LMT, limit_price=MESH5.round_to_tick(bid - 50)))
        await broker.place(
            order(oid + 1, Side.SELL, 1, OrderType.STP, stop_price=MESH5.round_to_tick(bid - 60))
        )
        await events.status(oid + 1, OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED)
        await broker.cancel_all()
        await events.status(oid, OrderStatus.CANCELLED)
        await events.status(oid + 1, OrderStatus.CANCELLED)
        await broker.disconnect()

    run(body)


def test_marketable_limit_fills_and_bracket_children_work_after_the_entry() -> None:
    async def body(server: SimServer) -> None:
        broker, events, oid = await started(server)
        ask = await broker.marketable_limit(MESH5, Side.BUY, offset_ticks=2)
        entry = order(oid, Side.BUY, 1, OrderType.LMT, limit_price=ask)
        stop = order(oid + 1, Side.SELL, 1, OrderType.STP, stop_price=MESH5.round_to_tick(ask - 40))
        profit = order(oid + 2, Side.SELL, 1, OrderType.LMT, limit_price=MESH5.round_to_tick(ask + 40))
        ids = await broker.place_bracket(entry, stop, profit)
        assert [i.order_id for i in ids] == [oid, oid + 1, oid + 2]
        await events.status(oid, OrderStatus.FILLED)
        await events.status(oid + 1, OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED)
        await events.status(oid + 2, OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED)
        working = {o.order_id for o in await broker.open_orders()}
        assert {oid + 1, oid + 2} <= working
        await broker.cancel(oid + 1)  # cancelling one child by hand leaves the other working (IB)
        await events.status(oid + 1, OrderStatus.CANCELLED)
        assert oid + 2 in {o.order_id for o in await broker.open_orders()}
        await broker.disconnect()

    run(body)


def test_stock_market_order_fills() -> None:
    async def body(server: SimServer) -> None:
        broker, events, oid = await started(server)
        spy = catalog.get_instrument("SPY")
        request = OrderRequest("SPY", Side.BUY, 10, client_order_id="spy-1")
        await broker.place(BrokerOrder(request, spy, oid, "spy-1"))
        filled = await events.status(oid, OrderStatus.FILLED)
        assert filled.filled == 10
        await broker.disconnect()

    run(body)

"""A third, older client: ib_insync 0.9.86 offers v157..176, so it gets server version 176 and its layouts
(OPEN_ORDER / COMPLETED_ORDER with faProfile, EXECUTION_DATA without pendingPriceRevision)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ib_insync import IB, ExecutionFilter, Future, LimitOrder, MarketOrder
from sim_helpers import START, WAIT

from ibot.sim.server import SimServer


def run(test: Any, **kwargs: Any) -> None:
    async def main() -> None:
        server = SimServer(port=0, symbols=["MES"], speed=600.0, start=START, **kwargs)
        await server.start()
        try:
            await asyncio.wait_for(test(server), 20)
        finally:
            await server.stop()

    asyncio.run(main())


async def connect(server: SimServer, client_id: int = 3) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", server.port, client_id, timeout=WAIT)
    return ib


def test_ib_insync_negotiates_176_and_trades_with_commission_and_positions() -> None:
    async def scenario(server: SimServer) -> None:
        ib = await connect(server)
        assert ib.client.serverVersion() == 176
        assert ib.managedAccounts() == ["DU123456"]
        [mes] = await ib.qualifyContractsAsync(Future("MES", "202506", "CME"))
        assert mes.localSymbol == "MESM5" and mes.conId > 0

        ticker = ib.reqMktData(mes)
        for _ in range(100):
            if ticker.bid == ticker.bid and ticker.ask == ticker.ask and ticker.bid > 0:
                break
            await asyncio.sleep(0.05)
        assert ticker.ask - ticker.bid == pytest.approx(0.25)

        trade = ib.placeOrder(mes, MarketOrder("BUY", 2))
        for _ in range(100):
            reported = trade.fills and trade.fills[-1].commissionReport.execId
            if trade.orderStatus.status == "Filled" and reported:
                break
            await asyncio.sleep(0.05)
        assert trade.orderStatus.status == "Filled"
        assert trade.orderStatus.filled == 2 and trade.orderStatus.remaining == 0
        assert trade.order.permId > 0 and trade.order.clientId == 3
        fill = trade.fills[-1]
        assert fill.execution.side == "BOT" and fill.execution.shares == 2
        assert fill.commissionReport.commission == pytest.approx(1.24)  # 2 x 0.62 USD

        resting = ib.placeOrder(mes, LimitOrder("BUY", 1, ticker.bid - 25))
        for _ in range(100):
            if resting.orderStatus.status == "Submitted":
                break
            await asyncio.sleep(0.05)
        assert resting.orderStatus.status == "Submitted"
        open_trades = await ib.reqAllOpenOrdersAsync()
        assert [t.order.orderId for t in open_trades] == [resting.order.orderId]
        ib.cancelOrder(resting.order)
        for _ in range(100):
            if resting.orderStatus.status == "Cancelled":
                break
            await asyncio.sleep(0.05)
        assert resting.orderStatus.status == "Cancelled"

        positions = await ib.reqPositionsAsync()
        assert [(p.contract.localSymbol, p.position) for p in positions] == [("MESM5", 2)]
        fills = await ib.reqExecutionsAsync(ExecutionFilter(clientId=3))
        assert [f.execution.execId for f in fills] == [fill.execution.execId]
        completed = await ib.reqCompletedOrdersAsync(apiOnly=True)
        assert {t.orderStatus.status for t in completed} == {"Filled", "Cancelled"}
        ib.disconnect()

    run(scenario)

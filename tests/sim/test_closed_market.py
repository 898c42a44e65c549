"""The simulator on a closed market, as the unmodified ib_async client sees it (issue 13, finding 6).

Saturday 2025-03-01: CME Globex reopens on Sunday 2025-03-02 at 17:00 US/Central (23:00 UTC). TWS answers a
closed futures market with the last session's prices and no quote (bid/ask -1, size 0), frozen
quotes for market data type 2, no 5-second bars, and an order parked PreSubmitted after warning 399 until
the open (see `ibot.sim.closed` for the sources); the simulator logs, per subscription, until when.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from ib_async import IB, Future, MarketOrder, Stock
from sim_helpers import WAIT, connect, error_waiter, run

from ibot.model import catalog
from ibot.sim.server import SimServer

SATURDAY = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OPEN = datetime(2025, 3, 2, 23, 0, tzinfo=UTC)  # Sunday 17:00 US/Central
FRIDAY_CLOSE = datetime(2025, 2, 28, 22, 0, tzinfo=UTC)  # Friday 16:00 US/Central
MES_H5 = catalog.contract("MES", 2025, 3)


async def mes(ib: IB) -> Future:
    [c] = await ib.qualifyContractsAsync(Future("MES", "202503", "CME"))
    assert c is not None
    return c


def test_closed_market_ticks_are_the_last_session_with_no_quote(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ibot.sim")

    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await mes(ib)
        ticker = ib.reqMktData(contract)
        await asyncio.sleep(1.0)
        last = server.market.quote(MES_H5, int(FRIDAY_CLOSE.timestamp()) - 1)
        assert last is not None
        assert (ticker.bid, ticker.ask) == (-1, -1) and not ticker.hasBidAsk()  # TWS: -1, no quote
        assert ticker.last == last.last and ticker.close == last.last  # the last session's last price
        assert ticker.high == last.high and ticker.low == last.low and ticker.volume == last.volume
        assert ticker.marketPrice() == last.last  # what a strategy reads: not nan
        ib.disconnect()

    run(body, symbols=["MES"], speed=60.0, start=SATURDAY)
    closed = [r.getMessage() for r in caplog.records if "market closed until" in r.getMessage()]
    assert any("reqMktData MESH5" in m and "2025-03-02 17:00:00 US/Central" in m for m in closed), closed


def test_frozen_data_on_a_closed_market_gives_the_last_quote_then_live_at_the_open() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await mes(ib)
        ib.reqMarketDataType(2)
        ticker = ib.reqMktData(contract)
        await asyncio.sleep(0.5)
        last = server.market.quote(MES_H5, int(FRIDAY_CLOSE.timestamp()) - 1)
        assert last is not None
        assert ticker.marketDataType == 2
        assert (ticker.bid, ticker.ask) == (last.bid, last.ask)
        server.market.speed = 50_000.0  # on to Sunday's open
        await _until(lambda: ticker.marketDataType == 1, 15)
        assert server.market.now_s >= OPEN.timestamp()
        ib.disconnect()

    run(body, symbols=["MES"], speed=60.0, start=SATURDAY)


def test_no_five_second_bars_while_closed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ibot.sim")

    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await mes(ib)
        bars = ib.reqRealTimeBars(contract, 5, "TRADES", False)
        await asyncio.sleep(1.0)  # 60 market seconds: 12 bars when open
        assert len(bars) == 0
        server.market.speed = 50_000.0
        await _until(lambda: len(bars) > 0, 15)
        assert bars[0].time >= OPEN  # the first bar is the session's
        ib.disconnect()

    run(body, symbols=["MES"], speed=60.0, start=SATURDAY)
    assert any(
        "reqRealTimeBars MESH5" in r.getMessage()
        and "market closed until 2025-03-02 17:00:00 US/Central" in r.getMessage()
        for r in caplog.records
    )


def test_market_order_waits_presubmitted_with_399_then_fills_at_the_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ibot.sim")

    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await mes(ib)
        warned = error_waiter(ib, 399)
        trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
        order_id, _, text = await asyncio.wait_for(warned, WAIT)
        assert order_id == trade.order.orderId
        assert text == (
            "Order Message:\nBUY 1 MESH5 CME\n"
            "Warning: your order will not be placed at the exchange until 2025-03-02 17:00:00 US/Central"
        )
        await _until(lambda: trade.orderStatus.status == "PreSubmitted", WAIT)
        await asyncio.sleep(0.5)  # 30 market seconds of a closed market: nothing fills
        assert trade.orderStatus.status == "PreSubmitted" and not trade.fills
        assert [t.orderStatus.status for t in ib.openTrades()] == ["PreSubmitted"]
        server.market.speed = 50_000.0
        await _until(lambda: trade.orderStatus.status == "Filled", 15)
        [fill] = trade.fills
        assert OPEN <= fill.execution.time < datetime(2025, 3, 3, 1, 0, tzinfo=UTC)
        assert server.broker.positions()[0][1] == 1
        ib.disconnect()

    run(body, symbols=["MES"], speed=60.0, start=SATURDAY)
    text = [r.getMessage() for r in caplog.records]
    assert any("held PreSubmitted until 2025-03-02 17:00:00 US/Central" in m for m in text)
    assert any("market open; order working" in m for m in text)


def test_a_parked_order_can_be_cancelled_before_the_open() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await mes(ib)
        trade = ib.placeOrder(contract, MarketOrder("SELL", 2))
        await _until(lambda: trade.orderStatus.status == "PreSubmitted", WAIT)
        ib.cancelOrder(trade.order)
        await _until(lambda: trade.orderStatus.status == "Cancelled", WAIT)
        server.market.speed = 50_000.0
        await _until(lambda: server.market.now_s > OPEN.timestamp() + 600, 15)
        assert not trade.fills and server.broker.positions() == []
        ib.disconnect()

    run(body, symbols=["MES"], speed=60.0, start=SATURDAY)


def test_contract_details_of_any_catalog_product_whatever_the_listed_symbols() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        assert aapl is not None and aapl.conId == catalog.get_instrument("AAPL").con_id
        [mgc] = await ib.qualifyContractsAsync(
            Future("MGC", exchange="COMEX", lastTradeDateOrContractMonth="202504")
        )
        assert mgc is not None and mgc.localSymbol == "MGCJ5"
        ib.disconnect()

    run(body, symbols=["MES"], speed=60.0, start=SATURDAY)


async def _until(check: object, timeout: float) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)

"""CONTFUT: the front month's details, a spliced history with an empty end date only, no live data."""

from __future__ import annotations

import asyncio
from datetime import date

from ib_async import IB, ContFuture, Future, MarketOrder, Ticker
from sim_helpers import WAIT, connect, error_waiter, run

from ibot.model import catalog
from ibot.sim.pacing import SimLimits
from ibot.sim.server import SimServer

NO_PACING = SimLimits(historical_pacing=False)


def ticker_id(ib: IB, ticker: Ticker) -> int:
    return next(r for r, t in ib.wrapper.reqId2Ticker.items() if t is ticker)


def test_qualifying_a_contfut_gives_the_front_months_conid_and_fields() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        front = catalog.front_month("MES", date(2025, 3, 5))
        assert front.local_symbol == "MESH5"
        [details] = await ib.reqContractDetailsAsync(ContFuture("MES", "CME"))
        c = details.contract
        assert c.secType == "CONTFUT" and c.conId == front.con_id
        assert c.localSymbol == "MESH5" and c.lastTradeDateOrContractMonth == "20250321"
        assert c.multiplier == "5" and details.contractMonth == "202503"
        [gold] = await ib.qualifyContractsAsync(ContFuture("MGC", "COMEX"))
        assert gold.conId == catalog.front_month("MGC", date(2025, 3, 5)).con_id
        ib.disconnect()

    run(body)


def test_contfut_history_is_each_sessions_front_month_spliced() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [cont] = await ib.qualifyContractsAsync(ContFuture("MES", "CME"))
        spliced = await ib.reqHistoricalDataAsync(cont, "", "3 M", "1 day", "TRADES", False, 2)
        [dec] = await ib.qualifyContractsAsync(Future("MES", "202412", "CME", includeExpired=True))
        dec.includeExpired = True
        [march] = await ib.qualifyContractsAsync(Future("MES", "202503", "CME"))
        old = {
            b.date: b
            for b in await ib.reqHistoricalDataAsync(
                dec, "20241220-16:00:00", "1 M", "1 day", "TRADES", False, 2
            )
        }
        new = {
            b.date: b for b in await ib.reqHistoricalDataAsync(march, "", "3 M", "1 day", "TRADES", False, 2)
        }
        by_date = {b.date: b for b in spliced}
        # MESZ4 rolls on Monday 2024-12-16 (4 business days before the third Friday): front until the 13th
        for day, source in (
            (date(2024, 12, 12), old),
            (date(2024, 12, 13), old),
            (date(2024, 12, 16), new),
            (date(2025, 2, 3), new),
        ):
            got, want = by_date[day], source[day]
            assert (got.open, got.high, got.low, got.close, got.volume) == (
                want.open,
                want.high,
                want.low,
                want.close,
                want.volume,
            ), day
        # the two months differ on the same day: a back-adjusted series has a real roll gap
        assert old[date(2024, 12, 13)].close != new[date(2024, 12, 13)].close
        assert spliced[-1].date == date(2025, 3, 5)  # today's session, still open, is included
        ib.disconnect()

    run(body, limits=NO_PACING)


def test_contfut_with_an_end_date_gets_10339_and_live_data_is_refused() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [cont] = await ib.qualifyContractsAsync(ContFuture("MES", "CME"))
        refused = error_waiter(ib, 10339)
        bars = await ib.reqHistoricalDataAsync(
            cont, "20250301 12:00:00 US/Central", "1 D", "1 hour", "TRADES", False, 2
        )
        assert len(bars) == 0
        _, _, text = await asyncio.wait_for(refused, WAIT)
        assert text == "Setting end date/time for continuous future security type is not allowed"
        live = error_waiter(ib, 321)
        ticker = ib.reqMktData(cont)
        req_id, _, text = await asyncio.wait_for(live, WAIT)
        assert req_id == ticker_id(ib, ticker) and "CONTFUT is for historical data only" in text
        await asyncio.sleep(0.3)
        assert ticker.last != ticker.last  # nan: no quote came
        no_order = error_waiter(ib, 200)
        trade = ib.placeOrder(cont, MarketOrder("BUY", 1))
        order_id, _, _ = await asyncio.wait_for(no_order, WAIT)
        assert order_id == trade.order.orderId and server.broker.order_count() == 0
        ib.disconnect()

    run(body, limits=NO_PACING)

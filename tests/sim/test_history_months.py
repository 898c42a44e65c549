"""Each futures month's own history, listed and expired months, through the unmodified ib_async client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ib_async import IB, Future
from sim_helpers import WAIT, connect, error_waiter, run

from ibot.model import catalog
from ibot.sim.pacing import SimLimits
from ibot.sim.server import SimServer

NO_PACING = SimLimits(historical_pacing=False)


async def qualified(ib: IB, symbol: str, month: str, expired: bool = False) -> Future:
    [c] = await ib.qualifyContractsAsync(Future(symbol, month, "CME" if symbol != "MGC" else "COMEX"))
    if expired:
        assert c is None
        [c] = await ib.qualifyContractsAsync(
            Future(symbol, month, "CME" if symbol != "MGC" else "COMEX", includeExpired=True)
        )
    assert c is not None
    c.includeExpired = expired  # qualifying copies the details' contract over it, includeExpired False
    return c


def test_months_of_one_product_have_their_own_deterministic_history() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        june, sept = await qualified(ib, "MES", "202506"), await qualified(ib, "MES", "202509")
        end = "20250305-14:00:00"
        a = await ib.reqHistoricalDataAsync(june, end, "3600 S", "1 min", "TRADES", False, 2)
        b = await ib.reqHistoricalDataAsync(sept, end, "3600 S", "1 min", "TRADES", False, 2)
        again = await ib.reqHistoricalDataAsync(june, end, "3600 S", "1 min", "TRADES", False, 2)
        assert len(a) == len(b) == 60
        assert [x.date for x in a] == [x.date for x in b]
        gaps = {round((y.close - x.close) / 0.25) for x, y in zip(a, b, strict=True)}
        assert min(gaps) > 0  # September carries more to expiry: dearer at every minute
        assert [(x.date, x.open, x.high, x.low, x.close, x.volume) for x in again] == [
            (x.date, x.open, x.high, x.low, x.close, x.volume) for x in a
        ]
        ib.disconnect()

    run(body, limits=NO_PACING)


def test_another_server_with_the_same_seed_serves_the_same_bars() -> None:
    got: list[list[tuple[float, float, float]]] = []

    async def body(server: SimServer) -> None:
        ib = await connect(server)
        sept = await qualified(ib, "MES", "202509")
        bars = await ib.reqHistoricalDataAsync(
            sept, "20250304-20:00:00", "1 D", "5 mins", "MIDPOINT", False, 2
        )
        got.append([(b.open, b.close, b.high) for b in bars])
        ib.disconnect()

    run(body)
    run(body)
    assert got[0] and got[0] == got[1]


def test_a_month_has_no_bars_after_its_last_trade_and_none_before_its_listing() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        dec = await qualified(ib, "MES", "202412", expired=True)
        last = catalog.contract("MES", 2024, 12)
        assert dec.conId == last.con_id and dec.lastTradeDateOrContractMonth == "20241220"
        # MESZ4 stops at 08:30 CT on 2024-12-20: its last minute bar starts 08:29
        bars = await ib.reqHistoricalDataAsync(
            dec, "20241220 12:00:00 US/Central", "14400 S", "1 min", "TRADES", False, 2
        )
        assert bars and bars[-1].date == datetime(2024, 12, 20, 14, 29, tzinfo=UTC)
        after = error_waiter(ib, 162)
        assert not (
            await ib.reqHistoricalDataAsync(
                dec, "20241223 12:00:00 US/Central", "3600 S", "1 min", "TRADES", False, 2
            )
        )
        _, _, text = await asyncio.wait_for(after, WAIT)
        assert (
            text
            == "Historical Market Data Service error message:HMDS query returned no data: MESZ4@CME Trades"
        )
        head = await ib.reqHeadTimeStampAsync(await qualified(ib, "MES", "202603"), "TRADES", False, 2)
        before = error_waiter(ib, 162)
        march = await qualified(ib, "MES", "202603")
        assert not (
            await ib.reqHistoricalDataAsync(march, "20250110-15:00:00", "3600 S", "1 min", "TRADES", False, 2)
        )
        assert "HMDS query returned no data: MESH6@CME" in (await asyncio.wait_for(before, WAIT))[2]
        # listed 380 days before its 2026-03-20 expiry: trade date 2025-03-05, whose session opens 17:00 CT
        assert head == datetime(2025, 3, 4, 23, tzinfo=UTC)
        ib.disconnect()

    run(body, limits=NO_PACING)


def test_expired_months_need_include_expired_and_unlisted_months_and_globex_get_200() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        for contract in (
            Future("MES", "202412", "CME"),  # expired on 2024-12-20
            Future("MES", "202703", "CME"),  # the ninth month: not listed yet on 2025-03-05
            Future("MES", "202506", "GLOBEX"),  # IB renamed the exchange to CME
        ):
            refused = error_waiter(ib, 200)
            assert await ib.reqContractDetailsAsync(contract) == []
            _, _, text = await asyncio.wait_for(refused, WAIT)
            assert text == "No security definition has been found for the request"
        live = [
            d.contract.localSymbol for d in await ib.reqContractDetailsAsync(Future("MES", exchange="CME"))
        ]
        every = await ib.reqContractDetailsAsync(Future("MES", exchange="CME", includeExpired=True))
        assert live == ["MESH5", "MESM5", "MESU5", "MESZ5", "MESH6", "MESM6", "MESU6", "MESZ6"]
        assert [d.contract.localSymbol for d in every][-8:] == live
        # IB keeps expired months about two years; the simulator 913 days: from MESU2 (2022-09-16) on
        assert [d.contract.localSymbol for d in every][:2] == ["MESU2", "MESZ2"]
        # history of an expired month by conId also needs includeExpired
        dec = catalog.contract("MES", 2024, 12)
        refused = error_waiter(ib, 200)
        assert not (
            await ib.reqHistoricalDataAsync(
                Future(conId=dec.con_id, exchange="CME"),
                "20241210-15:00:00",
                "3600 S",
                "1 min",
                "TRADES",
                False,
                2,
            )
        )
        await asyncio.wait_for(refused, WAIT)
        bars = await ib.reqHistoricalDataAsync(
            Future(conId=dec.con_id, exchange="CME", includeExpired=True),
            "20241210-15:00:00",
            "3600 S",
            "1 min",
            "TRADES",
            False,
            2,
        )
        assert len(bars) == 60
        ib.disconnect()

    run(body, limits=NO_PACING)


def test_a_simulator_at_mid_2026_serves_mes_and_mgc_months_back_to_january_2024() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        for symbol, exchange, first in (("MES", "CME", "MESH4"), ("MGC", "COMEX", "MGCG4")):
            details = await ib.reqContractDetailsAsync(Future(symbol, exchange=exchange, includeExpired=True))
            months = [d.contract for d in details]
            assert months[0].localSymbol == first, [m.localSymbol for m in months]
            months[0].includeExpired = True  # the details' contract does not carry it
            bars = await ib.reqHistoricalDataAsync(
                months[0], "20240110-15:00:00", "1 D", "1 min", "TRADES", False, 2
            )
            assert len(bars) == 960 and bars[0].date == datetime(2024, 1, 9, 23, tzinfo=UTC)  # 17:00 CT on
            assert bars[-1].date < datetime(2024, 1, 10, 15, tzinfo=UTC)
        ib.disconnect()

    run(body, start=datetime(2026, 6, 30, 15, tzinfo=UTC), limits=NO_PACING)

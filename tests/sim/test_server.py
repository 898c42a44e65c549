"""Conformance of the TWS simulator with the real ib_async client over loopback TCP."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from ib_async import IB, Future, Stock
from sim_helpers import START, WAIT, connect, error_waiter, qualified_mes, run

from ibot.model import catalog
from ibot.sim.pacing import SimLimits
from ibot.sim.server import SimServer


def test_connect_syncs_and_reports_account_and_farms() -> None:
    async def body(server: SimServer) -> None:
        ib = IB()
        farms: list[int] = []
        ib.errorEvent += lambda r, code, t, c: farms.append(code)
        await ib.connectAsync("127.0.0.1", server.port, 7, timeout=WAIT)
        assert ib.client.serverVersion() == 178
        assert ib.managedAccounts() == ["DU123456"]
        assert ib.positions() == []
        assert any(v.tag == "NetLiquidation" for v in ib.accountValues())
        await asyncio.sleep(0.1)
        assert farms[:3] == [2104, 2106, 2158]
        ib.disconnect()

    run(body)


def test_current_time_is_the_market_clock() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        t = await asyncio.wait_for(ib.reqCurrentTimeAsync(), WAIT)
        assert abs(t.timestamp() - server.market.now_s) < 60
        assert t >= START
        ib.disconnect()

    run(body)


def test_qualify_future_by_month_local_symbol_and_con_id() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        expected = catalog.contract("MES", 2025, 6)
        by_month = await qualified_mes(ib)
        [by_local] = await ib.qualifyContractsAsync(Future(localSymbol="MESM5", exchange="CME"))
        [by_con_id] = await ib.qualifyContractsAsync(Future(conId=expected.con_id))
        for c in (by_month, by_local, by_con_id):
            assert c.conId == expected.con_id
            assert c.localSymbol == "MESM5"
            assert c.multiplier == "5"
        assert by_month.lastTradeDateOrContractMonth == f"{expected.expiry:%Y%m%d}"
        [stock] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        assert stock.conId == catalog.get_instrument("SPY").con_id
        ib.disconnect()

    run(body)


def test_future_without_month_lists_every_month_and_unknown_is_error_200() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        details = await ib.reqContractDetailsAsync(Future("MES", exchange="CME"))
        months = [d.contract.localSymbol for d in details]
        assert len(months) > 1 and "MESM5" in months
        unknown = error_waiter(ib, 200)
        assert await ib.reqContractDetailsAsync(Stock("NOPE", "SMART", "USD")) == []
        assert (await asyncio.wait_for(unknown, WAIT))[1] == 200
        ambiguous = error_waiter(ib, 200)
        ib.client.reqMktData(ib.client.getReqId(), Future("MES", exchange="CME"), "", False, False, [])
        _, _, text = await asyncio.wait_for(ambiguous, WAIT)
        assert "ambiguous" in text
        ib.disconnect()

    run(body)


def test_market_data_ticks_arrive_on_the_tick_grid() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        ticker = ib.reqMktData(contract)
        updates = 0
        async for _ in ticker.updateEvent:
            updates += 1
            if updates >= 3 and ticker.bid == ticker.bid and ticker.ask == ticker.ask:
                break
        tick = 0.25
        for price in (ticker.bid, ticker.ask, ticker.last, ticker.high, ticker.low, ticker.close):
            assert price / tick == round(price / tick)
        assert ticker.ask - ticker.bid == tick
        assert ticker.volume > 0
        ib.cancelMktData(contract)
        ib.disconnect()

    run(body)


def test_tick_by_tick_last_and_bid_ask_arrive() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        [mnq] = await ib.qualifyContractsAsync(Future("MNQ", "202506", "CME"))
        last = ib.reqTickByTickData(contract, "AllLast")
        quotes = ib.reqTickByTickData(mnq, "BidAsk")  # one ticker per contract in ib_async
        while not (last.tickByTicks and quotes.tickByTicks):
            await asyncio.wait_for(ib.pendingTickersEvent, WAIT)
        assert last.tickByTicks[-1].price % 0.25 == 0
        assert quotes.tickByTicks[-1].askPrice > quotes.tickByTicks[-1].bidPrice
        ib.disconnect()

    run(body)


def test_real_time_bars_arrive_in_utc_five_seconds_apart() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        bars = ib.reqRealTimeBars(contract, 5, "TRADES", False)
        while len(bars) < 3:
            await asyncio.wait_for(bars.updateEvent, WAIT)
        assert all(b.time.utcoffset().total_seconds() == 0 for b in bars)
        assert (bars[1].time - bars[0].time).total_seconds() == 5
        assert all(b.low <= b.open_ <= b.high and b.low <= b.close <= b.high for b in bars)
        ib.cancelRealTimeBars(bars)
        ib.disconnect()

    run(body)


def test_historical_bars_format_date_1_is_exchange_time_and_2_is_epoch() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        local = await ib.reqHistoricalDataAsync(contract, "", "3600 S", "5 mins", "TRADES", False, 1)
        epoch = await ib.reqHistoricalDataAsync(contract, "", "3600 S", "5 mins", "MIDPOINT", False, 2)
        daily = await ib.reqHistoricalDataAsync(contract, "", "5 D", "1 day", "TRADES", True, 1)
        assert len(local) == 12 or len(local) == 13
        assert str(local[0].date.tzinfo) == "US/Central"
        assert epoch[0].date.tzinfo is not None and epoch[0].date.utcoffset().total_seconds() == 0
        assert local[0].date == epoch[0].date  # the same instant, two spellings
        assert (local[1].date - local[0].date).total_seconds() == 300
        assert len(daily) == 5 and not hasattr(daily[0].date, "hour")
        assert all(b.volume > 0 and b.open % 0.25 == 0 for b in local)
        ib.disconnect()

    run(body)


def test_historical_keep_up_to_date_sends_updates() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        bars = await ib.reqHistoricalDataAsync(contract, "", "600 S", "1 min", "TRADES", False, 1, True)
        first_count = len(bars)
        while len(bars) <= first_count:
            await asyncio.wait_for(bars.updateEvent, WAIT)
        assert bars[-1].date > bars[first_count - 1].date
        cancelled = error_waiter(ib, 162)
        ib.cancelHistoricalData(bars)
        _, _, text = await asyncio.wait_for(cancelled, WAIT)
        assert "cancelled" in text
        ib.disconnect()

    run(body)


def test_market_depth_rows_have_sides_and_grid_prices() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        ticker = ib.reqMktDepth(contract, numRows=5)
        while not (len(ticker.domBids) == 5 and len(ticker.domAsks) == 5):
            await asyncio.wait_for(ticker.updateEvent, WAIT)
        assert ticker.domBids[0].price < ticker.domAsks[0].price
        assert [b.price for b in ticker.domBids] == sorted((b.price for b in ticker.domBids), reverse=True)
        assert all(level.price % 0.25 == 0 and level.size > 0 for level in ticker.domBids + ticker.domAsks)
        ib.cancelMktDepth(contract)
        ib.disconnect()

    run(body)


def test_head_timestamp_is_before_now() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        head = await ib.reqHeadTimeStampAsync(contract, "TRADES", False, 1)
        assert head.timestamp() < START.timestamp()
        ib.disconnect()

    run(body)


def test_duplicate_client_id_gets_326_and_is_closed() -> None:
    async def body(server: SimServer) -> None:
        first = await connect(server, 5)
        second = IB()
        refused = error_waiter(second, 326)
        attempt = asyncio.ensure_future(second.connectAsync("127.0.0.1", server.port, 5, timeout=WAIT))
        req_id, _, _ = await asyncio.wait_for(refused, WAIT)
        assert req_id == -1
        with pytest.raises((ConnectionError, TimeoutError, asyncio.CancelledError)):
            attempt.cancel()
            await attempt
        assert not second.isConnected()
        assert first.isConnected()
        first.disconnect()

    run(body)


# --- version negotiation with a raw socket ------------------------------------------------------------------


def handshake(port: int, offer: bytes) -> list[str] | None:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(b"API\0" + struct.pack(">I", len(offer)) + offer)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = s.recv(4096)
            if not chunk:
                return None
            data += chunk
        size = struct.unpack(">I", data[:4])[0]
        return data[4 : 4 + size].decode().split("\0")[:-1]


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        (b"v157..176", "176"),  # ib_insync 0.9.86
        (b"v142..163", "163"),  # ib_insync 0.9.70
        (b"v100..176", "176"),  # nautilus-ibapi 10.19
        (b"v100..226", "178"),
        (b"v157..178 +PACEAPI", "178"),
        (b"v100..150", None),
    ],
)
def test_version_negotiation(offer: bytes, expected: str | None) -> None:
    async def body(server: SimServer) -> None:
        reply = await asyncio.to_thread(handshake, server.port, offer)
        if expected is None:
            assert reply is None
        else:
            assert reply is not None and reply[0] == expected
            assert len(reply[1].split()) == 3  # "YYYYMMDD HH:MM:SS tz"

    run(body)


def test_a_client_from_before_v100_is_refused_at_once() -> None:
    """IbPy (PyPI `ib-api`) opens with its bare client version, "62\\0", three bytes, then waits for the
    server's: the simulator must close at once rather than wait for a fourth byte of "API\\0"."""

    def legacy_connect(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
            s.sendall(b"62\0")
            return s.recv(4096)

    async def body(server: SimServer) -> None:
        assert await asyncio.to_thread(legacy_connect, server.port) == b""

    run(body)


# --- realism limits -----------------------------------------------------------------------------------------


def test_identical_historical_request_within_15_seconds_is_a_pacing_violation() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        await ib.reqHistoricalDataAsync(
            contract, "20250305 08:00:00 US/Central", "1800 S", "1 min", "TRADES", False
        )
        paced = error_waiter(ib, 162)
        again = await ib.reqHistoricalDataAsync(
            contract, "20250305 08:00:00 US/Central", "1800 S", "1 min", "TRADES", False
        )
        _, _, text = await asyncio.wait_for(paced, WAIT)
        assert len(again) == 0
        assert "pacing violation" in text, text
        ib.disconnect()

    run(body)


def test_six_requests_for_one_contract_in_two_seconds_are_paced_and_limits_switch_off() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        codes: list[int] = []
        ib.errorEvent += lambda r, code, t, c: codes.append(code)
        for minutes in range(6):
            end = f"20250305 07:{minutes:02d}:00 US/Central"
            await ib.reqHistoricalDataAsync(contract, end, "60 S", "1 min", "TRADES", False)
        assert codes.count(162) == (1 if server.limits.historical_pacing else 0)
        ib.disconnect()

    run(body)
    run(body, limits=SimLimits.off())


def test_more_than_50_messages_a_second_get_error_100() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        ib.client.MaxRequests = 0  # switch off ib_async's own throttle
        over = error_waiter(ib, 100)
        for _ in range(60):
            ib.client.reqCurrentTime()
        _, _, text = await asyncio.wait_for(over, WAIT)
        assert "Max rate" in text
        ib.disconnect()

    run(body)


def test_a_client_leaving_mid_stream_stops_its_session_without_send_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Max speed, every MES and MNQ month subscribed (what bench/sim.py does), then the client disconnects
    while the simulator is writing: its session ends and asyncio never warns of sends on a dead socket."""

    async def body(server: SimServer) -> None:
        ib = await connect(server)
        ib.client.MaxRequests = 0
        contracts = []
        for symbol in ("MES", "MNQ"):
            details = await ib.reqContractDetailsAsync(Future(symbol))
            contracts += [d.contract for d in details if d.contract is not None]
        tickers = [ib.reqMktData(c) for c in contracts]
        while not all(t.volume == t.volume and t.volume > 0 for t in tickers):  # NaN until the first tick
            await asyncio.sleep(0.05)
        ib.disconnect()
        for _ in range(200):  # the session notices the closed socket, then the pump runs on
            await asyncio.sleep(0.01)
            if not server.live_clients():
                break
        assert server.live_clients() == []
        await asyncio.sleep(0.3)

    run(body, speed=None, limits=SimLimits.off())
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []

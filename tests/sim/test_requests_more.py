# ruff: noqa: N803  (EWrapper callbacks keep IB's names)
"""Historical ticks, positions per account/model, and every request the simulator does not serve answered
rather than left pending: through ib_async and IB's own client."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from ib_async import IB, Future, ScannerSubscription
from ibapi.contract import Contract
from ibapi_helpers import RecordingApp, market_order, mes_june, threaded_server
from sim_helpers import WAIT, connect, qualified_mes, run

from ibot.exchange.hours import listed_hours_for
from ibot.model import catalog
from ibot.sim.client import LOCKSTEP_ACK, SimClient
from ibot.sim.messages import Incoming
from ibot.sim.pacing import SimLimits
from ibot.sim.requests import REQUESTS, UNSERVED_CODE
from ibot.sim.server import SimServer

MES = catalog.get_instrument("MES")


def _utc(ts: datetime) -> str:
    return f"{ts.astimezone(UTC):%Y%m%d-%H:%M:%S}"


def _in_session(second: int, rth: bool = False) -> bool:
    return bool(listed_hours_for(MES).mask(second, second + 1, rth)[0])


def _epoch(d: date) -> float:
    assert isinstance(d, datetime)  # formatDate=2: epoch seconds, read as a datetime
    return d.timestamp()


def _on_grid(price: float, tick: float = float(MES.tick_size)) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-9


# --- reqHistoricalTicks through ib_async -------------------------------------------------------------------


def test_historical_ticks_of_each_kind_agree_with_one_second_bars() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await qualified_mes(ib)
        await asyncio.sleep(0.3)  # let the clock run a little past the bars' end
        end = datetime.fromtimestamp(int(server.market.now_s) - 5, UTC)
        half = float(MES.tick_size) / 2
        for what in ("TRADES", "BID_ASK", "MIDPOINT"):
            ticks = await asyncio.wait_for(
                ib.reqHistoricalTicksAsync(c, "", _utc(end), 100, what, False), WAIT
            )
            assert len(ticks) == 100, what
            seconds = [int(t.time.timestamp()) for t in ticks]
            assert seconds == sorted(seconds) and len(set(seconds)) == 100, what
            assert seconds[-1] <= end.timestamp() and all(_in_session(s) for s in seconds), what
            span = f"{end.timestamp() - seconds[0] + 1:.0f} S"
            upto = _utc(end + timedelta(seconds=1))
            bars = await asyncio.wait_for(
                ib.reqHistoricalDataAsync(c, upto, span, "1 secs", what, False, 2), WAIT
            )
            by_second = {int(_epoch(b.date)): b for b in bars}
            for s, t in zip(seconds, ticks, strict=True):
                bar = by_second[s]
                if what == "TRADES":
                    assert _on_grid(t.price) and t.price == bar.open == bar.close and t.size == bar.volume > 0
                    assert t.exchange == "CME" and t.specialConditions == ""
                elif what == "BID_ASK":
                    assert _on_grid(t.priceBid) and (t.priceBid, t.priceAsk) == (bar.open, bar.close)
                    assert t.priceAsk - t.priceBid == pytest.approx(float(MES.tick_size))
                    assert t.sizeBid > 0 and t.sizeAsk > 0 and not t.tickAttribBidAsk.bidPastLow
                else:
                    assert _on_grid(t.price - half) and t.price == bar.open == bar.close and t.size == 0
            if what == "MIDPOINT":  # a midpoint tick only where it changed
                prices = [t.price for t in ticks]
                gaps = [b - a for a, b in itertools.pairwise(seconds)]
                assert any(g > 1 for g in gaps)
                assert all(p != q for p, q, g in zip(prices, prices[1:], gaps, strict=False) if g == 1)
        ib.disconnect()

    run(body)


def test_historical_ticks_from_a_start_read_forward_within_one_session() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await qualified_mes(ib)
        # Friday 2025-02-28, 15:58 CT: two minutes before Globex's daily close; the next session is Sunday's.
        start = datetime(2025, 2, 28, 21, 58, tzinfo=UTC)
        ticks = await asyncio.wait_for(
            ib.reqHistoricalTicksAsync(c, _utc(start), "", 1000, "TRADES", False), WAIT
        )
        seconds = [int(t.time.timestamp()) for t in ticks]
        close = datetime(2025, 2, 28, 22, 0, tzinfo=UTC).timestamp()
        assert 0 < len(seconds) < 120 and seconds[0] >= start.timestamp() and seconds[-1] < close
        # regular hours only: a start after the regular close reads the next regular session (Monday's)
        ticks = await asyncio.wait_for(
            ib.reqHistoricalTicksAsync(c, _utc(start), "", 10, "BID_ASK", True), WAIT
        )
        monday_open = datetime(2025, 3, 3, 14, 30, tzinfo=UTC).timestamp()
        assert [int(t.time.timestamp()) for t in ticks] == list(
            range(int(monday_open), int(monday_open) + 10)
        )
        ib.disconnect()

    run(body)


def test_historical_ticks_ending_in_a_holiday_halt_stop_at_the_halt() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await qualified_mes(ib)
        # Presidents' Day 2025-02-17: CME equity futures halt at 12:00 CT; 14:00 CT is inside the halt.
        end = datetime(2025, 2, 17, 20, 0, tzinfo=UTC)
        halt = datetime(2025, 2, 17, 18, 0, tzinfo=UTC).timestamp()
        assert not _in_session(int(end.timestamp())) and _in_session(int(halt) - 1)
        ticks = await asyncio.wait_for(
            ib.reqHistoricalTicksAsync(c, "", _utc(end), 50, "MIDPOINT", False), WAIT
        )
        seconds = [int(t.time.timestamp()) for t in ticks]
        assert len(seconds) == 50 and all(_in_session(s) for s in seconds)
        assert halt - 600 < seconds[-1] < halt
        ib.disconnect()

    run(body)


def test_historical_ticks_of_an_unknown_contract_get_200_and_end() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        bad = Future("MES", "209912", "CME")
        ticks = await asyncio.wait_for(
            ib.reqHistoricalTicksAsync(bad, "", "20250305-14:00:00", 10, "TRADES", False), WAIT
        )
        assert ticks == []
        ib.disconnect()

    run(body)


# --- IB's own client ----------------------------------------------------------------------------------------


class _App(RecordingApp):
    def historicalTicksLast(self, reqId: int, ticks: Any, done: bool) -> None:
        self._add("historicalTicksLast", reqId, list(ticks), done)

    def historicalTicksBidAsk(self, reqId: int, ticks: Any, done: bool) -> None:
        self._add("historicalTicksBidAsk", reqId, list(ticks), done)

    def historicalTicks(self, reqId: int, ticks: Any, done: bool) -> None:
        self._add("historicalTicks", reqId, list(ticks), done)

    def positionMulti(
        self, reqId: int, account: str, modelCode: str, contract: Contract, pos: Decimal, avgCost: float
    ) -> None:
        self._add("positionMulti", reqId, account, modelCode, contract.conId, pos, avgCost)

    def positionMultiEnd(self, reqId: int) -> None:
        self._add("positionMultiEnd", reqId)

    def newsProviders(self, newsProviders: Any) -> None:
        self._add("newsProviders", list(newsProviders))

    def softDollarTiers(self, reqId: int, tiers: Any) -> None:
        self._add("softDollarTiers", reqId, list(tiers))

    def smartComponents(self, reqId: int, smartComponentMap: Any) -> None:
        self._add("smartComponents", reqId, list(smartComponentMap))


@pytest.fixture
def server() -> Iterator[SimServer]:
    with threaded_server(["MES"]) as s:
        yield s


@pytest.fixture
def app(server: SimServer) -> Iterator[_App]:
    a = _App()
    a.connect("127.0.0.1", server.port, 1)
    threading.Thread(target=a.run, daemon=True).start()
    a.wait_for("nextValidId")
    yield a
    a.disconnect()


def test_ibapi_reads_historical_ticks_of_every_kind_with_done(app: _App) -> None:
    end = "20250305-14:30:00"
    app.reqHistoricalTicks(11, mes_june(), "", end, 20, "TRADES", 0, True, [])
    app.reqHistoricalTicks(12, mes_june(), "", end, 20, "BID_ASK", 0, True, [])
    app.reqHistoricalTicks(13, mes_june(), "", end, 20, "MIDPOINT", 0, True, [])
    [(_, req_id, last, done)] = app.wait_for("historicalTicksLast")
    assert req_id == 11 and done is True and len(last) == 20
    assert all(t.time <= 1741185000 and t.size > 0 and t.exchange == "CME" for t in last)
    assert not last[0].tickAttribLast.pastLimit and not last[0].tickAttribLast.unreported
    [(_, req_id, quotes, done)] = app.wait_for("historicalTicksBidAsk")
    assert req_id == 12 and done is True and len(quotes) == 20
    assert all(q.priceAsk > q.priceBid and q.sizeBid > 0 for q in quotes)
    [(_, req_id, mids, done)] = app.wait_for("historicalTicks")
    assert req_id == 13 and done is True and len(mids) == 20


@pytest.mark.parametrize(
    ("start", "end", "count", "what", "field"),
    [
        ("20250305-14:00:00", "20250305-14:30:00", 10, "TRADES", "startDateTime"),
        ("", "", 10, "TRADES", "startDateTime"),
        ("", "20250305-14:30:00", 1001, "TRADES", "numberOfTicks"),
        ("", "20250305-14:30:00", 10, "BID", "whatToShow"),
    ],
)
def test_a_bad_historical_ticks_request_gets_321(
    app: _App, start: str, end: str, count: int, what: str, field: str
) -> None:
    app.reqHistoricalTicks(21, mes_june(), start, end, count, what, 0, True, [])
    [e] = [e for e in app.wait_until("error", lambda e: e[1] == 21) if e[1] == 21]
    assert e[2] == 321 and f"-'{field}' : cause - " in e[3]
    assert not app.of("historicalTicksLast")


def test_positions_multi_carry_the_positions_and_stream_until_cancelled(server: SimServer, app: _App) -> None:
    app.reqPositionsMulti(31, "", "")
    app.wait_for("positionMultiEnd")
    assert not app.of("positionMulti")  # no position yet
    app.placeOrder(app.of("nextValidId")[0][1], mes_june(), market_order("BUY", 2))
    app.wait_for("execDetails")
    [(_, req_id, account, model, con_id, pos, avg_cost)] = app.wait_for("positionMulti")
    assert (req_id, account, model, pos) == (31, server.account, "", Decimal(2))
    app.reqPositions()
    [(_, p_con_id, p_pos, p_avg)] = app.wait_for("position")
    assert (con_id, pos, avg_cost) == (p_con_id, p_pos, p_avg)
    app.reqPositionsMulti(32, server.account, "")
    app.reqPositionsMulti(33, "DU0000000", "")  # another account: no positions
    app.reqPositionsMulti(34, "", "MODEL1")  # a model: the account's positions are in no model
    app.wait_until("positionMultiEnd", lambda e: e[1] == 34)
    assert [e[1] for e in app.of("positionMulti")] == [31, 32]
    app.cancelPositionsMulti(31)
    app.placeOrder(app.of("nextValidId")[0][1] + 1, mes_june(), market_order("SELL", 2))
    app.wait_until("position", lambda e: e[2] == 0)  # reqPositions' update: the fill is booked
    app.wait_until("positionMulti", lambda e: e[1] == 32 and e[5] == 0)
    assert not [e for e in app.of("positionMulti") if e[1] == 31 and e[5] == 0]


def test_ibapi_unserved_requests_get_an_error_on_their_id_and_empty_lists_answer(app: _App) -> None:
    c = mes_june()
    app.reqFundamentalData(41, c, "ReportSnapshot", [])
    app.reqHistogramData(42, c, False, "3 days")
    app.calculateImpliedVolatility(43, c, 1.0, 5000.0, [])
    app.exerciseOptions(44, c, 1, 1, "", 0, "", "", False)
    app.queryDisplayGroups(45)
    app.reqWshMetaData(46)
    app.reqNewsArticle(47, "BRFG", "1", [])
    app.reqSoftDollarTiers(48)
    app.reqSmartComponents(49, "a6")
    app.reqNewsProviders()
    app.reqNewsBulletins(True)  # no request id: an error on -1
    ids = [41, 42, 43, 44, 45, 46, 47]
    errors = app.wait_until("error", lambda e: e[1] == -1 and "reqNewsBulletins" in e[3])
    unserved = {e[1]: e for e in errors if e[2] == UNSERVED_CODE}
    assert set(ids) <= set(unserved)
    assert "the simulator does not serve reqFundamentalData" in unserved[41][3]
    assert app.wait_for("softDollarTiers") == [("softDollarTiers", 48, [])]
    assert app.wait_for("smartComponents") == [("smartComponents", 49, [])]
    assert app.wait_for("newsProviders") == [("newsProviders", [])]


# --- ib_async's pending calls end -----------------------------------------------------------------------


def test_ib_async_calls_to_unserved_requests_return_promptly() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await qualified_mes(ib)
        errors: list[tuple[int, int]] = []
        ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code))
        assert not await asyncio.wait_for(ib.reqFundamentalDataAsync(c, "ReportSnapshot"), WAIT)
        sub = ScannerSubscription(instrument="STK", locationCode="STK.US.MAJOR", scanCode="TOP_PERC_GAIN")
        assert list(await asyncio.wait_for(ib.reqScannerDataAsync(sub), WAIT)) == []
        assert await asyncio.wait_for(ib.reqNewsProvidersAsync(), WAIT) == []
        assert await asyncio.wait_for(ib.reqSmartComponentsAsync("a6"), WAIT) == []
        xml = await asyncio.wait_for(ib.reqScannerParametersAsync(), WAIT)
        assert "<ScanParameterResponse" in xml
        assert sum(code == UNSERVED_CODE for _, code in errors) >= 2
        ib.disconnect()

    run(body)


def test_ib_async_histogram_request_errors_instead_of_hanging() -> None:
    async def body(server: SimServer) -> None:
        ib: IB = await connect(server)
        c = await qualified_mes(ib)
        assert not await asyncio.wait_for(ib.reqHistogramDataAsync(c, False, "1 week"), WAIT)
        ib.disconnect()

    run(body)


# --- the protocol table ------------------------------------------------------------------------------------


def test_every_request_id_is_in_the_table_and_every_handler_serves_one_of_them() -> None:
    assert {int(m) for m in Incoming} == set(REQUESTS)
    client = SimClient(SimpleNamespace(limits=SimLimits()), None, None, 0)  # type: ignore[arg-type]
    assert set(client.handlers) - {LOCKSTEP_ACK} <= set(REQUESTS)
    assert all(s.req_id_at is None or s.req_id_at >= 1 for s in REQUESTS.values())
    assert REQUESTS[Incoming.REPLACE_FA].req_id_at == 4  # [19, version, faDataType, xml, reqId]
    assert REQUESTS[Incoming.REQ_FUNDAMENTAL_DATA].req_id_at == 2  # [52, version, reqId, ...]
    assert REQUESTS[Incoming.REQ_HISTORICAL_TICKS].req_id_at == 1  # [96, reqId, ...]
    assert REQUESTS[Incoming.REQ_MARKET_RULE].req_id_at is None  # a market rule id, not a request id
    assert not REQUESTS[Incoming.REQ_WSH_META_DATA].exists(160)
    assert REQUESTS[Incoming.REQ_WSH_META_DATA].exists(161)

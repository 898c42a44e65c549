"""What a history downloader must tell apart, through ib_async: timeouts, no data, missing permissions, 165,
366, and invalid parameters (321, and 162 "Time length exceed max." past IB's step sizes)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ib_async import IB, Future
from sim_helpers import connect, run

from ibot.model.errors import ParameterError
from ibot.sim.history import STEP_SIZES, max_duration_seconds
from ibot.sim.pacing import SimLimits
from ibot.sim.script import parse_fault
from ibot.sim.server import SimServer

NO_PACING = SimLimits(historical_pacing=False)
END = "20250305-14:00:00"  # a Wednesday morning in Chicago: Globex open


async def month(ib: IB, symbol: str = "MES", exchange: str = "CME", ym: str = "202506") -> Future:
    [c] = await ib.qualifyContractsAsync(Future(symbol, ym, exchange))
    return c


def errors_of(ib: IB) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
    return seen


async def hour(ib: IB, c: Future, end: str = END, **kw: Any) -> Any:
    return await ib.reqHistoricalDataAsync(c, end, "3600 S", "1 min", "TRADES", False, 2, **kw)


def test_an_unanswered_request_times_out_empty_and_its_cancel_is_acknowledged() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await month(ib)
        seen = errors_of(ib)
        server.faults.history_unanswered()
        assert len(await hour(ib, c, timeout=0.5)) == 0  # ib_async's empty list on a timeout
        await asyncio.sleep(0.1)
        [(req_id, code, text)] = seen  # ib_async cancelled it on its timeout
        assert (
            code == 162
            and text
            == f"Historical Market Data Service error message:API historical data query cancelled: {req_id}"
        )
        assert len(await hour(ib, c)) == 60  # the fault was for one request
        ib.disconnect()

    run(body, limits=NO_PACING)


def test_no_data_for_a_weekend_for_a_forced_fault_and_data_otherwise() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await month(ib)
        seen = errors_of(ib)
        assert len(await hour(ib, c, end="20250301-18:00:00")) == 0  # Saturday noon in Chicago
        server.faults.history_no_data()
        assert len(await hour(ib, c)) == 0
        assert len(await hour(ib, c, end="20250305-13:00:00")) == 60
        no_data = "Historical Market Data Service error message:HMDS query returned no data: MESM5@CME Trades"
        assert [(code, text) for _, code, text in seen] == [(162, no_data), (162, no_data)]
        ib.disconnect()

    run(body, limits=NO_PACING)


def test_missing_permissions_refuse_one_product_until_given_back() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        mes, gold = await month(ib), await month(ib, "MGC", "COMEX", "202506")
        seen = errors_of(ib)
        server.faults.history_permissions("MES")
        assert len(await hour(ib, mes)) == 0
        assert len(await hour(ib, gold)) == 60
        assert [(code, text) for _, code, text in seen] == [
            (162, "Historical Market Data Service error message:No market data permissions for CME FUT")
        ]
        server.faults.history_permissions(None)
        assert len(await hour(ib, gold, end="20250305-13:00:00")) == 0
        assert seen[-1][2].endswith("No market data permissions for COMEX FUT")
        server.faults.history_permissions(None, granted=True)
        assert len(await hour(ib, mes, end="20250305-12:00:00")) == 60
        ib.disconnect()

    run(body, limits=NO_PACING)


def test_a_165_query_message_comes_before_the_bars() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await month(ib)
        seen = errors_of(ib)
        server.faults.history_query_message("HMDS query is queued")
        assert len(await hour(ib, c)) == 60
        assert [(code, text) for _, code, text in seen] == [
            (165, "Historical Market Data Service query message:HMDS query is queued")
        ]
        ib.disconnect()

    run(body, limits=NO_PACING)


def test_cancelling_an_unknown_or_answered_request_gets_366() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await month(ib)
        seen = errors_of(ib)
        await hour(ib, c)
        ib.client.cancelHistoricalData(4242)
        while not seen:
            await asyncio.sleep(0.01)
        assert seen == [(4242, 366, "No historical data query found for ticker id:4242")]
        ib.disconnect()

    run(body, limits=NO_PACING)


@pytest.mark.parametrize(
    ("bar", "duration", "code", "text"),
    [
        ("7 mins", "3600 S", 321, "Historical data bar size setting is invalid"),
        ("1 sec", "60 S", 321, "Historical data bar size setting is invalid"),
        ("1 min", "3600 X", 321, "duration"),
        ("1 min", "0 D", 321, "duration"),
        ("1 min", "2 D", 162, "Historical Market Data Service error message:Time length exceed max."),
        ("1 min", "86401 S", 162, "Time length exceed max."),
        ("1 secs", "1801 S", 162, "Time length exceed max."),
        ("5 mins", "2 W", 162, "Time length exceed max."),
        ("1 hour", "2 M", 162, "Time length exceed max."),
    ],
)
def test_invalid_parameters_are_refused_and_nothing_is_served(
    bar: str, duration: str, code: int, text: str
) -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await month(ib)
        seen = errors_of(ib)
        # ib_async leaves a request that got 321 (a warning to it) waiting: bound it
        bars = await ib.reqHistoricalDataAsync(c, END, duration, bar, "TRADES", False, 2, timeout=0.5)
        assert len(bars) == 0
        assert [c for _, c, _ in seen][:1] == [code] and text in seen[0][2], seen
        ib.disconnect()

    run(body, limits=NO_PACING)


@pytest.mark.parametrize(
    ("bar", "duration"),
    [
        ("1 secs", "1800 S"),
        ("1 min", "1 D"),
        ("2 mins", "2 D"),
        ("5 mins", "1 W"),
        ("1 hour", "1 M"),
        ("1 day", "2 Y"),
    ],
)
def test_the_longest_duration_of_each_bar_size_is_served(bar: str, duration: str) -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await month(ib, ym="202509")
        seen = errors_of(ib)
        bars = await ib.reqHistoricalDataAsync(c, END, duration, bar, "MIDPOINT", False, 2)
        assert len(bars) > 0 and not seen
        ib.disconnect()

    run(body, limits=NO_PACING)


def test_the_step_size_table_gives_ibs_longest_durations() -> None:
    assert max_duration_seconds(1) == 1800
    assert max_duration_seconds(5) == 3600
    assert max_duration_seconds(30) == 28_800
    assert max_duration_seconds(60) == 86_400
    assert max_duration_seconds(120) == 2 * 86_400
    assert max_duration_seconds(1200) == 7 * 86_400
    assert max_duration_seconds(3600) == 30 * 86_400
    assert max_duration_seconds(86_400) is None
    assert len(STEP_SIZES) == 11


def test_history_faults_can_be_scripted_for_ibot_sim() -> None:
    async def body(server: SimServer) -> None:
        for spec in ("0:hist_timeout:3", "0:hist_no_data", "0:hist_165:2", "0:hist_no_permission:mgc"):
            parse_fault(spec).apply(server.faults)
        h = server.faults.history
        assert (h.unanswered, h.no_data, len(h.query_messages)) == (3, 1, 2)
        assert h.permission_missing("MGC") and not h.permission_missing("MES")
        parse_fault("0:hist_permission:MGC").apply(server.faults)
        assert not h.permission_missing("MGC")
        for bad in ("0:hist_timeout:0", "0:hist_no_data:x", "0:hist_165:1:2"):
            with pytest.raises(ParameterError):
                parse_fault(bad)

    run(body)

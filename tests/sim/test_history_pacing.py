"""IB's historical pacing rules, each at its limit and just below, with explicit times and through ib_async.

`SimLimits.pacing_scale` divides every window, so the wire tests run IB's rules faster; the counts are IB's.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB, Future
from sim_helpers import connect, run

from ibot.sim.history import PACING_VIOLATION
from ibot.sim.launch import limits_for
from ibot.sim.pacing import HistoricalPacing, PacingScaleError, SimLimits
from ibot.sim.server import SimServer

IBOT = str(Path(sys.executable).parent / "ibot")

# --- the rules on explicit times ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_identical_request_is_a_violation_until_15_seconds_over_the_scale(scale: float) -> None:
    p = HistoricalPacing(SimLimits(pacing_scale=scale))
    assert p.check("req", "MES", 0.0) is None
    assert p.check("req", "MES", 14.99 / scale) is not None
    assert p.check("req", "MES", 15.0 / scale) is None
    assert p.violations == 1 and p.accepted == 2


def test_the_sixth_request_for_one_contract_within_two_seconds_is_the_violation() -> None:
    p = HistoricalPacing(SimLimits(pacing_scale=4.0))  # 2 s -> 0.5 s
    assert [p.check(f"r{i}", "MES", i * 0.09) for i in range(5)] == [None] * 5
    assert p.check("r5", "MES", 0.45) is not None  # the sixth within 0.5 s
    assert p.check("other", "MNQ", 0.46) is None  # another contract is counted apart
    assert p.check("r6", "MES", 0.51) is None  # the first has left the window: five in it again


def test_bid_ask_counts_twice_in_both_windows() -> None:
    p = HistoricalPacing(SimLimits())
    assert p.check("a", ("MES", "BID_ASK"), 0.0, weight=2) is None
    assert p.check("b", ("MES", "BID_ASK"), 0.1, weight=2) is None
    assert p.check("c", ("MES", "BID_ASK"), 0.2, weight=2) is not None  # 2 + 2 + 2 = 6 within 2 s
    assert p.check("d", ("MES", "BID_ASK"), 0.3) is None  # a single one still fits: 5
    q = HistoricalPacing(SimLimits())
    assert all(q.check(f"r{i}", f"c{i}", i * 5.0, weight=2) is None for i in range(30))  # 60 places
    assert q.check("r30", "c30", 150.0) is not None  # the 61st place within ten minutes


def test_more_than_60_requests_in_any_ten_minutes_violate_and_the_window_slides() -> None:
    p = HistoricalPacing(SimLimits(pacing_scale=2.0))  # 10 min -> 300 s
    assert all(p.check(f"r{i}", f"c{i}", i * 4.0) is None for i in range(60))
    assert p.check("r60", "c60", 299.0) is not None  # the 61st within 300 s of the first
    assert p.check("r61", "c61", 300.0) is None  # the first has left the window
    assert p.violations == 1


def test_pacing_scale_must_be_positive() -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(PacingScaleError):
            SimLimits(pacing_scale=bad)


# --- through ib_async ---------------------------------------------------------------------------------------


async def june(ib: IB) -> Future:
    [c] = await ib.qualifyContractsAsync(Future("MES", "202506", "CME"))
    return c


def codes_of(ib: IB) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
    return seen


async def minute_bars(ib: IB, c: Future, minute: int, what: str = "TRADES") -> Any:
    """One request for the 1-min bars of one hour, distinct per `minute` (no two are identical)."""
    end = f"20250305-{12 + minute // 60:02d}:{minute % 60:02d}:00"
    return await ib.reqHistoricalDataAsync(c, end, "3600 S", "1 min", what, False, 2)


def test_six_requests_for_one_contract_and_tick_type_within_two_seconds_the_sixth_refused() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await june(ib)
        seen = codes_of(ib)
        five = await asyncio.gather(*(minute_bars(ib, c, m) for m in range(5)))
        assert all(len(b) == 60 for b in five) and not seen and server.pacing_violations == 0
        sixth = await minute_bars(ib, c, 5)
        assert len(sixth) == 0
        assert [(code, text) for _, code, text in seen] == [(162, PACING_VIOLATION)]
        assert (
            PACING_VIOLATION
            == "Historical Market Data Service error message:Historical data request pacing violation"
        )
        assert len(await minute_bars(ib, c, 6, "MIDPOINT")) == 60  # another tick type is counted apart
        assert server.pacing_violations == 1
        ib.disconnect()

    run(body, speed=1.0)


def test_bid_ask_requests_count_twice_on_the_wire() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await june(ib)
        seen = codes_of(ib)
        two = await asyncio.gather(*(minute_bars(ib, c, m, "BID_ASK") for m in range(2)))
        assert all(len(b) == 60 for b in two) and not seen
        assert len(await minute_bars(ib, c, 2, "BID_ASK")) == 0  # 2 + 2 + 2 = 6 places within 2 s
        assert [code for _, code, _ in seen] == [162]
        ib.disconnect()

    run(body, speed=1.0)


def test_an_identical_request_is_refused_until_the_scaled_15_seconds_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ibot.sim")

    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await june(ib)
        seen = codes_of(ib)
        assert len(await minute_bars(ib, c, 0)) == 60
        assert len(await minute_bars(ib, c, 0)) == 0
        await asyncio.sleep(15.0 / 20 + 0.1)
        assert len(await minute_bars(ib, c, 0)) == 60
        assert [code for _, code, _ in seen] == [162]
        assert server.pacing_violations == 1
        ib.disconnect()

    run(body, speed=1.0, limits=SimLimits(pacing_scale=20.0))
    warnings = [r for r in caplog.records if r.name == "ibot.sim" and "pacing violation" in r.getMessage()]
    assert len(warnings) == 1 and "identical request" in warnings[0].getMessage()


def test_the_61st_request_within_ten_minutes_is_refused() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        months = [await june(ib), *(await ib.qualifyContractsAsync(Future("MES", "202509", "CME")))]
        seen = codes_of(ib)
        whats = ("TRADES", "MIDPOINT", "BID", "ASK")
        for i in range(60):  # 8 contract/tick-type pairs in turn: never 6 of one within the scaled 2 s
            bars = await minute_bars(ib, months[i % 2], i, whats[(i // 2) % 4])
            assert len(bars) == 60, (i, seen)
        assert not seen and server.pacing_violations == 0
        assert len(await minute_bars(ib, months[0], 61, "TRADES")) == 0
        assert [(code, text) for _, code, text in seen] == [(162, PACING_VIOLATION)]
        assert server.pacing_violations == 1
        ib.disconnect()

    # 10 minutes -> 20 s, 2 s -> 67 ms, 15 s -> 0.5 s; no message-rate limit (60 requests in a second)
    run(body, speed=1.0, limits=SimLimits(pacing_scale=30.0, max_messages_per_second=0))


def test_more_than_50_open_requests_are_refused_with_322() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        c = await june(ib)
        seen = codes_of(ib)
        server.faults.history_unanswered(60)
        for i in range(51):
            ib.client.reqHistoricalData(
                1000 + i, c, "", f"{60 + i} S", "1 min", "TRADES", False, 2, False, []
            )
        while not seen:
            await asyncio.sleep(0.01)
        assert seen == [
            (
                1050,
                322,
                "Error processing request.-'Maximum number of open historical requests (50) exceeded'",
            )
        ]
        ib.client.cancelHistoricalData(1000)  # one closes: room for one more
        await asyncio.sleep(0.05)
        ib.client.reqHistoricalData(2000, c, "", "30 S", "1 min", "TRADES", False, 2, False, [])
        await asyncio.sleep(0.1)
        assert [code for _, code, _ in seen] == [322, 162]  # the cancel's 162; nothing for 2000
        ib.disconnect()

    run(body, limits=SimLimits(historical_pacing=False, max_messages_per_second=0))


# --- ibot sim --pacing-scale ----------------------------------------------------------------------------


def test_the_pacing_scale_option_reaches_the_limits_and_a_bad_one_is_one_sentence_and_exit_2() -> None:
    assert limits_for(False, 4.0) == SimLimits(pacing_scale=4.0)
    assert limits_for(True, 4.0) == SimLimits.off()
    for bad in ("0", "-2", "nan"):
        done = subprocess.run(
            [IBOT, "sim", "--port", "0", "--pacing-scale", bad],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "--pacing-scale" in done.stderr and "above 0" in done.stderr and "Traceback" not in done.stderr

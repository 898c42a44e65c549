"""One clock: risk (trading hours, day counters), strategy, status and records read the market's time, fed by
the data, never this machine's wall clock (issue 13, finding 4).

The finding, as it was met: `ibot sim --speed 1200` in one process and `ibot run` against it in another; the
risk check's trading day flipped 48 times in two days (wall and market time mixed), and on a Saturday every
order was refused as outside the CME Globex session although the simulated market stood on a Tuesday.
The simulated market here stands in March 2025, so whatever day the tests run on, the wall clock is never
inside it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import WAIT, roomy_limits, sim_settings

from ibot.engine.session import TradingSession
from ibot.engine.status import status_line
from ibot.model.clock import MarketTime
from ibot.model.market import NS_PER_SECOND
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskManager
from ibot.sim.server import SimServer

IBOT = str(Path(sys.executable).with_name("ibot"))
# Tuesday 2025-03-04 12:00 CST: CME Globex open; its trading day rolls at 17:00 CT (23:00 UTC) each day.
START = "2025-03-04T18:00"
SPEED = "3600"  # a trading day in 24 s: two day boundaries in about 30 s of wall time
ROLL = re.compile(r"risk: new trading day (\d{4}-\d\d-\d\d) \(was (\d{4}-\d\d-\d\d)\)")
NS_PER_HOUR = 3600 * NS_PER_SECOND


# --- the clock itself -------------------------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.ns = 1_000 * NS_PER_SECOND

    def __call__(self) -> int:
        return self.ns


def test_market_time_reads_the_data_moves_at_real_time_rate_and_never_goes_back() -> None:
    mono = FakeMonotonic()
    clock = MarketTime(mono)
    assert clock() == 0 and not clock.synced  # no market time yet: said as such, not the wall clock
    t0 = int(datetime(2025, 3, 4, 21, 30, tzinfo=UTC).timestamp()) * NS_PER_SECOND
    assert clock.observe(t0)
    assert clock() == t0 and clock.synced
    mono.ns += 2 * NS_PER_SECOND  # two real seconds without data: two market seconds, no more
    assert clock() == t0 + 2 * NS_PER_SECOND
    assert not clock.observe(t0 + NS_PER_SECOND)  # older data (a whole-second trade time) changes nothing
    assert clock() == t0 + 2 * NS_PER_SECOND
    assert clock.observe(t0 + 1200 * NS_PER_SECOND)  # a simulator at 1200x: the data pulls it forward
    assert clock() == t0 + 1200 * NS_PER_SECOND
    assert clock.silent_for() == 0.0


def test_the_risk_trading_day_only_moves_forward(caplog: pytest.LogCaptureFixture) -> None:
    risk = RiskManager()
    day1 = int(datetime(2025, 3, 4, 20, 0, tzinfo=UTC).timestamp()) * NS_PER_SECOND  # 14:00 CT: Mar 4
    day2 = day1 + 4 * NS_PER_HOUR  # 18:00 CT: the trading day of Mar 5
    with caplog.at_level(logging.INFO, logger="ibot.oms.risk"):
        risk.on_order_sent(day1)
        risk.on_order_sent(day2)
        risk.on_order_sent(day1 + NS_PER_SECOND)  # a late event stamped in the old day
        risk.on_order_sent(day2 + NS_PER_SECOND)
    rolls = ROLL.findall(caplog.text)
    assert rolls == [("2025-03-05", "2025-03-04")]
    assert risk.orders_today == 3  # the day's counter was not reset by the late event


# --- in process: the session's own clock against a simulator far from the wall clock ---------------------


def test_the_session_clock_is_the_markets_and_rolls_the_day_once(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    asyncio.run(_session_clock(sqlite_url, caplog))


async def _session_clock(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """`TradingSession` without a clock source reads IB's data and server time: against a simulator at
    3600x standing in March 2025 it tells the simulator's time, accepts an order in the open market whatever
    day the wall clock says, and rolls the trading day exactly once at 17:00 CT."""
    start = datetime(2025, 3, 4, 21, 59, tzinfo=UTC)  # 15:59 CT: a minute before the daily halt
    sim = SimServer(port=0, symbols=["MES"], speed=3600.0, start=start)
    await sim.start()
    records = OrderRecords(sqlite_url)
    records.migrate()
    session = TradingSession(sim_settings(sim), records, roomy_limits(), symbols=("MES",))
    try:
        with caplog.at_level(logging.INFO):
            await session.start()
            sim_now = int(sim.market.now_s * NS_PER_SECOND)
            assert abs(session.market_clock() - sim_now) < 600 * NS_PER_SECOND  # 1/6 wall s at 3600x
            assert abs(session.market_clock() - time.time_ns()) > 100 * 24 * NS_PER_HOUR
            assert status_line(session).startswith("market 2025-03-04 ")
            m = await session.submit(OrderRequest("MES", Side.BUY, 1, OrderType.MKT))
            await _until(lambda: m.is_final)
            assert m.status is OrderStatus.FILLED  # the market is open at market time, whatever the wall
            roll_at = datetime(2025, 3, 4, 23, 10, tzinfo=UTC).timestamp()  # 17:10 CT: the new day's data
            await _until(lambda: sim.market.now_s >= roll_at, timeout=10)
            await _until(lambda: bool(ROLL.findall(caplog.text)))
            await asyncio.sleep(0.5)  # half an hour of market time more: no second roll
            assert ROLL.findall(caplog.text) == [("2025-03-05", "2025-03-04")]
            farm_ok = [r for r in caplog.records if "farm connection is OK" in r.getMessage()]
            assert farm_ok and all(r.levelno == logging.INFO for r in farm_ok)  # finding 7: not WARNING
            assert session.om.risk._day == date(2025, 3, 5)
            assert abs(session.market_clock() - int(sim.market.now_s * NS_PER_SECOND)) < NS_PER_HOUR
    finally:
        await session.stop()
        await sim.stop()
        records.close()


async def _until(done: object, timeout: float = WAIT) -> None:
    assert callable(done)
    end = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.01)


# --- as the finding was met: `ibot sim` and `ibot run` in their own processes ------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(path: Path, pattern: str, timeout: float) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        if re.search(pattern, text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not in {path} after {timeout} s:\n{text[-3000:]}")


@pytest.mark.parametrize(
    ("speed", "start", "boundaries"),
    [
        (SPEED, START, 2),
        # the finding's own speed: from 14:00 CT over the 17:00 CT roll, in about ten seconds
        ("1200", "2025-03-04T20:00", 1),
    ],
    ids=["3600x-two-days", "1200x-one-roll"],
)
def test_ibot_run_against_ibot_sim_at_high_speed_rolls_each_trading_day_once(
    tmp_path: Path, speed: str, start: str, boundaries: int
) -> None:
    """`ibot sim --speed 3600 --start <Tuesday 12:00 CT>` and `ibot run` against it over two trading-day
    boundaries: the run's log has exactly one "new trading day" per trading day (each day once, in order,
    from the day the run started in), orders were sent and none inside the session was refused by the
    trading-hours rule (the wall clock is in another year), and every status line shows the market's time,
    labelled."""
    port = _free_port()
    env = dict(os.environ, IBOT_OUT_DIR=str(tmp_path / "out"), IBOT_DATA_DIR=str(tmp_path / "data"))
    env.update(TWS_API_PORT=str(port), TWS_API_ADDR="127.0.0.1")
    sim_out = tmp_path / "sim.out"
    log = tmp_path / "out" / "live" / "ibot_live.log"
    sim_cmd = [IBOT, "sim", "--port", str(port), "--speed", speed, "--start", start, "-s", "MES"]
    run_cmd = [IBOT, "run", "--symbol", "MES", "--db", f"sqlite:///{tmp_path / 'run.sqlite'}"]
    with sim_out.open("w") as sim_file:
        sim = subprocess.Popen(sim_cmd, stdout=sim_file, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    run: subprocess.Popen[bytes] | None = None
    try:
        _wait_for(sim_out, "listening", 15)
        run = subprocess.Popen(
            run_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
        text = _wait_for(log, r"(.|\n)*".join(["new trading day"] * boundaries), 55)
        time.sleep(3600 / float(speed))  # an hour of market time more: a spurious roll would show now
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=30)
        text = log.read_text(encoding="utf-8")
    finally:
        for proc in (run, sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    shown = out.decode(errors="replace")
    started = re.search(r"at market time (\d{4}-\d\d-\d\d) (\d\d):", shown)
    assert started is not None, shown[-2000:]
    first_day = date.fromisoformat(started[1]) + timedelta(days=int(started[2]) >= 23)  # 17:00 CT rolls
    rolls = ROLL.findall(text)
    assert len(rolls) >= boundaries, rolls
    expected = [
        (str(first_day + timedelta(days=i + 1)), str(first_day + timedelta(days=i)))
        for i in range(len(rolls))
    ]
    assert rolls == expected, rolls  # Mar 4-7 are weekdays: one trading day per calendar day
    # the trading-hours rule reads the market's clock: it may refuse an order sent after the session's last
    # bar closed (the daily break, 16:00-17:00 CT = 22:00-23:00 UTC in March), never one inside the session
    refused = re.findall(r"trading_hours: .*? at (\S+) is outside", text)
    inside = [t for t in refused if not 22 <= datetime.fromisoformat(t).astimezone(UTC).hour < 23]
    assert not inside, [line for line in text.splitlines() if "trading_hours" in line][:3]
    if boundaries > 1:  # over two trading days the strategy trades: orders passed the trading-hours rule
        assert len(re.findall(r"ib\.order id=\d+", text)) >= 2, "the strategy sent no orders to check"
    status = [line for line in shown.splitlines() if "| READY |" in line]
    assert status and all(line.startswith("market 2025-03-0") for line in status), status[:3]

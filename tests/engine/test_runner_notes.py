"""What the live status line says about the strategy and its data (issue 13, findings 6 and 8):
- a strategy stopped by its daily trade cap says so, instead of repeating its last signal for hours;
- a contract month that does not trade at the market's date is named in a WARNING and in the status line
  instead of waiting forever on 0 bars.

ma_breakout through `LiveRunner` and the real ib_async client against the TWS simulator over loopback.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from conftest import START, sim_clock, sim_settings

from ibot.engine.runner import LiveRunner
from ibot.engine.session import TradingSession
from ibot.engine.status import status_line
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.sim.server import SimServer
from ibot.strategies.ma_breakout import MaBreakout

SPEED = 1200.0
CAPPED: dict[str, Any] = {
    "sma_period": 3,
    "breakout_bars": 2,
    "min_bars_between_reversals": 1,
    "max_trades_per_day": 1,
}


async def _runner(url: str, symbol: str, bar: str, params: dict[str, Any]) -> tuple[Any, ...]:
    sim = SimServer(port=0, symbols=["MES"], speed=SPEED, start=START, seed=11)
    await sim.start()
    records = OrderRecords(url)
    records.migrate()
    limits = RiskLimits(max_orders_per_day=None, max_trades_per_day=None)
    session = TradingSession(
        sim_settings(sim), records, limits, symbols=(symbol,), market_clock=sim_clock(sim)
    )
    runner = LiveRunner(session, MaBreakout(**params), symbol, bar)
    await runner.start()
    return sim, records, session, runner


async def _close(sim: SimServer, records: OrderRecords, session: TradingSession, runner: LiveRunner) -> None:
    await runner.stop(flatten=True)
    await session.stop()
    await sim.stop()
    records.close()


async def _until(check: Any, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


def test_a_strategy_stopped_by_its_daily_cap_says_so_in_the_status_line(sqlite_url: str) -> None:
    async def main() -> None:
        sim, records, session, runner = await _runner(sqlite_url, "MES", "1min", CAPPED)
        try:
            assert "stopped for the day" not in status_line(session, runner)
            await _until(lambda: "stopped for the day" in status_line(session, runner), 25)
            line = status_line(session, runner)
            assert "daily cap of 1 entries reached; no new entries until 2025-03-05 23:00 UTC" in line
            assert "last signal" not in line  # not the signal of hours ago
            assert runner.strategy._trades_today == 1  # type: ignore[attr-defined]
        finally:
            await _close(sim, records, session, runner)

    asyncio.run(main())


def test_a_month_that_does_not_trade_yet_is_named_instead_of_waiting_on_zero_bars(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        sim, records, session, runner = await _runner(sqlite_url, "MESZ6", "5min", {})
        try:
            await _until(lambda: bool(runner.stats.no_data), 10)  # 3 bars of 5 min: under a wall second
            await asyncio.sleep(0.5)
            assert runner.stats.bars == 0
            why = runner.stats.no_data
            assert why.startswith("no bars for MESZ6 in ")
            assert "MESZ6 may not trade yet on 2025-03-05: the front month is MESH5" in why
            assert why in status_line(session, runner)
        finally:
            await _close(sim, records, session, runner)

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "no bars for" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # said once, not on every poll


def test_the_front_month_gives_bars_and_no_such_warning(sqlite_url: str) -> None:
    async def main() -> None:
        sim, records, session, runner = await _runner(sqlite_url, "MES", "5min", {})
        try:
            await _until(lambda: runner.stats.bars + runner.stats.bars_skipped >= 4, 15)
            assert runner.stats.no_data == ""
            assert runner.stats.data_ns > 0
        finally:
            await _close(sim, records, session, runner)

    asyncio.run(main())

"""How bars are dated: daily bars by the session's trade date (even with formatDate=2), intraday bars by
their start in UTC epoch seconds with formatDate=2; the bar holding the clock is served as it stands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from ib_async import Future
from sim_helpers import connect, run

from ibot.sim.pacing import SimLimits
from ibot.sim.server import SimServer

NO_PACING = SimLimits(historical_pacing=False)


def test_daily_bars_are_dated_by_the_session_that_closes_that_day_even_with_format_date_2() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [c] = await ib.qualifyContractsAsync(Future("MES", "202506", "CME"))
        daily = await ib.reqHistoricalDataAsync(c, "", "5 D", "1 day", "TRADES", False, 2)
        assert [b.date for b in daily] == [
            date(2025, 2, 27),
            date(2025, 2, 28),
            date(2025, 3, 3),  # Monday: the session that opened Sunday 17:00 CT
            date(2025, 3, 4),
            date(2025, 3, 5),  # today's, still open
        ]
        # Tuesday's bar is the session from Monday 17:00 CT (23:00 UTC) to Tuesday 16:00 CT (22:00 UTC)
        minutes = await ib.reqHistoricalDataAsync(c, "20250304-22:00:00", "1 D", "1 min", "TRADES", False, 2)
        assert minutes[0].date == datetime(2025, 3, 3, 23, tzinfo=UTC)
        assert minutes[-1].date == datetime(2025, 3, 4, 21, 59, tzinfo=UTC)
        tuesday = daily[3]
        assert tuesday.open == minutes[0].open and tuesday.close == minutes[-1].close
        assert tuesday.high == max(b.high for b in minutes) and tuesday.low == min(b.low for b in minutes)
        assert tuesday.volume == sum(b.volume for b in minutes)
        ib.disconnect()

    run(body, limits=NO_PACING)


def test_intraday_bars_with_format_date_2_are_utc_epochs_of_their_start() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [c] = await ib.qualifyContractsAsync(Future("MES", "202506", "CME"))
        raw: list[str] = []
        ib.client.decoder.handlers[17] = _recording(ib.client.decoder.handlers[17], raw)
        bars = await ib.reqHistoricalDataAsync(c, "20250305-14:00:00", "1800 S", "5 mins", "TRADES", False, 2)
        assert [b.date for b in bars] == [datetime(2025, 3, 5, 13, 30 + 5 * i, tzinfo=UTC) for i in range(6)]
        assert str(int(datetime(2025, 3, 5, 13, 30, tzinfo=UTC).timestamp())) in raw
        ib.disconnect()

    run(body, limits=NO_PACING)


def _recording(handler: Callable[[list[str]], Any], raw: list[str]) -> Callable[[list[str]], Any]:
    """The decoder's handler of a message, keeping the raw fields it decodes."""

    def record(fields: list[str]) -> Any:
        raw.extend(fields)
        return handler(fields)

    return record


def test_the_bar_holding_the_clock_is_served_as_it_stands_and_changes_later() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [c] = await ib.qualifyContractsAsync(Future("MES", "202506", "CME"))
        first = await ib.reqHistoricalDataAsync(c, "", "3600 S", "1 hour", "TRADES", False, 2)
        await asyncio.sleep(1.0)  # 600 market seconds at speed 600
        second = await ib.reqHistoricalDataAsync(c, "", "3600 S", "1 hour", "TRADES", False, 2)
        now = server.market.now_s
        assert first[-1].date == second[-1].date and first[-1].date.timestamp() <= now
        assert second[-1].volume > first[-1].volume  # the hour goes on: more trades in it
        ib.disconnect()

    run(body, start=datetime(2025, 3, 5, 15, 10, tzinfo=UTC), limits=NO_PACING)

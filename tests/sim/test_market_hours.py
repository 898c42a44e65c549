"""The simulator's market hours follow the exchanges' holiday schedules (`ibot.model.exchange_hours`): per
product group, CME's abbreviated holiday sessions belong to the next trade date, closed days have no session,
early closes end the session and its regular hours; NYSE holidays (the 2025-01-09 day of mourning included)
and 13:00 ET early closes (extended hours to 17:00 ET). Contract details write them as IB does."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ib_async import Future, Stock
from sim_helpers import connect, run

from ibot.exchange.hours import (
    CME_GLOBEX_CRYPTO,
    CME_GLOBEX_ENERGY,
    CME_GLOBEX_EQUITY_INDEX,
    CME_GLOBEX_METALS,
    US_EQUITY_EXTENDED,
    TradingHours,
    hours_for,
    listed_hours_for,
)
from ibot.model import catalog
from ibot.model.exchange_hours import HoursGroup
from ibot.model.market import NS_PER_SECOND
from ibot.sim.market import SimMarket, SyntheticSource
from ibot.sim.pacing import SimLimits
from ibot.sim.server import SimServer

CT = ZoneInfo("US/Central")
ET = ZoneInfo("US/Eastern")
MES_Z5 = catalog.contract("MES", 2025, 12)
MES_H6 = catalog.contract("MES", 2026, 3)
SPY = catalog.get_instrument("SPY")


def ct(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=CT).timestamp())


def et(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=ET).timestamp())


def market_at(second: int, seed: int = 5) -> SimMarket:
    return SimMarket(SyntheticSource(seed), second * NS_PER_SECOND, speed=None)


# --- contract details through ib_async ------------------------------------------------------------------

# MES (US/Central): Thanksgiving 2025 (Thursday) halts at 12:00 CT and its session belongs to Friday, which
# closes early at 12:15 CT; Christmas Eve 2025 closes at 12:15 CT, Christmas Day has no session (Globex
# reopens 17:00 CT for Friday); MLK 2026 halts at 12:00 CT for Tuesday. A day a session opens on is not
# CLOSED in tradingHours; liquidHours has no regular hours on a holiday (abbreviated or not).
MES_HOURS = [
    (
        datetime(2025, 11, 26, 15, 0, tzinfo=UTC),  # Wednesday before Thanksgiving, 09:00 CT
        "202512",
        "20251125:1700-20251126:1600;20251126:1700-20251127:1200;20251127:1700-20251128:1215;"
        "20251129:CLOSED;20251130:1700-20251201:1600",
        "20251126:0830-20251126:1500;20251127:CLOSED;20251128:0830-20251128:1215;20251129:CLOSED;"
        "20251130:CLOSED;20251201:0830-20251201:1500",
    ),
    (
        datetime(2025, 12, 22, 15, 0, tzinfo=UTC),  # Monday of Christmas week
        "202603",
        "20251221:1700-20251222:1600;20251222:1700-20251223:1600;20251223:1700-20251224:1215;"
        "20251225:1700-20251226:1600",
        "20251222:0830-20251222:1500;20251223:0830-20251223:1500;20251224:0830-20251224:1215;"
        "20251225:CLOSED;20251226:0830-20251226:1500",
    ),
    (
        datetime(2026, 1, 16, 15, 0, tzinfo=UTC),  # Friday before MLK
        "202603",
        "20260115:1700-20260116:1600;20260117:CLOSED;20260118:1700-20260119:1200;"
        "20260119:1700-20260120:1600;20260120:1700-20260121:1600",
        "20260116:0830-20260116:1500;20260117:CLOSED;20260118:CLOSED;20260119:CLOSED;"
        "20260120:0830-20260120:1500;20260121:0830-20260121:1500",
    ),
]


@pytest.mark.parametrize(("start", "month", "trading", "liquid"), MES_HOURS)
def test_mes_contract_details_hours_follow_cme_holidays(
    start: datetime, month: str, trading: str, liquid: str
) -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [details] = await ib.reqContractDetailsAsync(Future("MES", month, "CME"))
        assert details.timeZoneId == "US/Central"
        assert details.tradingHours == trading
        assert details.liquidHours == liquid
        ib.disconnect()

    run(body, start=start, speed=1.0)


def test_ib_async_reads_the_two_segments_of_the_trade_date_after_mlk() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [details] = await ib.reqContractDetailsAsync(Future("MES", "202603", "CME"))
        sessions = [(s.start, s.end) for s in details.tradingSessions()]
        assert (datetime(2026, 1, 18, 17, tzinfo=CT), datetime(2026, 1, 19, 12, tzinfo=CT)) in sessions
        assert (datetime(2026, 1, 19, 17, tzinfo=CT), datetime(2026, 1, 20, 16, tzinfo=CT)) in sessions
        liquid = [(s.start, s.end) for s in details.liquidSessions()]
        assert not any(a.date() == date(2026, 1, 19) for a, _ in liquid)  # no regular hours on MLK
        ib.disconnect()

    run(body, start=datetime(2026, 1, 16, 15, 0, tzinfo=UTC), speed=1.0)


# SPY (US/Eastern): NYSE closed for the day of mourning 2025-01-09; July 3 2025 closes at 13:00 ET, extended
# hours at 17:00 ET (IB lists a US stock's early-close day as 0400-1700 with liquid hours 0930-1300).
SPY_HOURS = [
    (
        datetime(2025, 1, 7, 15, 0, tzinfo=UTC),
        "20250107:0400-20250107:2000;20250108:0400-20250108:2000;20250109:CLOSED;"
        "20250110:0400-20250110:2000;20250111:CLOSED",
        "20250107:0930-20250107:1600;20250108:0930-20250108:1600;20250109:CLOSED;"
        "20250110:0930-20250110:1600;20250111:CLOSED",
    ),
    (
        datetime(2025, 7, 1, 15, 0, tzinfo=UTC),
        "20250701:0400-20250701:2000;20250702:0400-20250702:2000;20250703:0400-20250703:1700;"
        "20250704:CLOSED;20250705:CLOSED",
        "20250701:0930-20250701:1600;20250702:0930-20250702:1600;20250703:0930-20250703:1300;"
        "20250704:CLOSED;20250705:CLOSED",
    ),
]


@pytest.mark.parametrize(("start", "trading", "liquid"), SPY_HOURS)
def test_stock_contract_details_hours_follow_nyse_holidays_and_early_closes(
    start: datetime, trading: str, liquid: str
) -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [details] = await ib.reqContractDetailsAsync(Stock("SPY", "SMART", "USD"))
        assert details.timeZoneId == "US/Eastern"
        assert details.tradingHours == trading
        assert details.liquidHours == liquid
        ib.disconnect()

    run(body, start=start, speed=1.0)


# --- no market in a holiday halt ------------------------------------------------------------------------


def test_real_time_bars_and_trades_stop_at_the_mlk_halt() -> None:
    halt = ct(2026, 1, 19, 12)

    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [contract] = await ib.qualifyContractsAsync(Future("MES", "202603", "CME"))
        bars = ib.reqRealTimeBars(contract, 5, "TRADES", False)
        ib.reqTickByTickData(contract, "AllLast")
        trades: list[Any] = []  # ib_async empties a ticker's tickByTicks after each update: collect them
        ib.pendingTickersEvent += lambda tickers: trades.extend(tb for t in tickers for tb in t.tickByTicks)
        while server.market.now_s < halt + 5:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # what the clock passed before the halt has been streamed
        before = len(trades)  # ib_async stamps these with the wall clock: count them instead
        while server.market.now_s < halt + 60:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert len(bars) >= 3 and before >= 1
        assert len(trades) == before  # no trade in the halt
        assert max(b.time for b in bars) == datetime.fromtimestamp(halt - 5, UTC)  # the last bar before it
        ib.disconnect()

    run(body, start=datetime.fromtimestamp(halt - 120, UTC), speed=120.0)


def test_quotes_stop_in_each_group_s_holiday_halt_and_resume_for_the_next_trade_date() -> None:
    # MLK 2026: equity index halts 12:00 CT, energy and metals 13:30 CT; all reopen 17:00 CT for Tuesday.
    for symbol, halt in (
        ("MES", ct(2026, 1, 19, 12)),
        ("MCL", ct(2026, 1, 19, 13, 30)),
        ("MGC", ct(2026, 1, 19, 13, 30)),
    ):
        inst = catalog.front_month(symbol, date(2026, 1, 19))
        m = market_at(ct(2026, 1, 19, 9))
        quotes = m.quote_ticks(inst, halt - 5, halt + 5)
        assert [q is None for q in quotes] == [False] * 5 + [True] * 6, symbol
        assert m.quote(inst, ct(2026, 1, 19, 16, 59, 59)) is None
        assert m.quote(inst, ct(2026, 1, 19, 17)) is not None
    mbt = catalog.front_month("MBT", date(2026, 1, 19))  # crypto: its regular 16:00 CT halt
    m = market_at(ct(2026, 1, 19, 9))
    assert m.quote(mbt, ct(2026, 1, 19, 15, 59, 59)) is not None and m.quote(mbt, ct(2026, 1, 19, 16)) is None


def test_the_trade_date_after_mlk_folds_both_segments_and_nothing_of_the_halt() -> None:
    m = market_at(ct(2026, 1, 19, 16, 59))
    inst = MES_H6
    opened, resumed = ct(2026, 1, 18, 17), ct(2026, 1, 19, 17)
    halt = ct(2026, 1, 19, 12)
    now = resumed + 30
    streamed = m.quote_ticks(inst, resumed - 2, now)  # the clock crossing the reopening
    assert streamed[0] is None and streamed[1] is None
    q = streamed[-1]
    assert q is not None
    p1, v1 = m.source.seconds(inst, opened, halt)
    p2, v2 = m.source.seconds(inst, resumed, now + 1)
    assert q.volume == int(v1.sum()) + int(v2.sum())
    assert q.open == int(p1[0])  # the trade date opened Sunday 17:00 CT
    assert q.high == max(int(p1.max()), int(p2.max())) and q.low == min(int(p1.min()), int(p2.min()))
    friday_close = int(m.source.seconds(inst, ct(2026, 1, 16, 16) - 1, ct(2026, 1, 16, 16))[0][0])
    assert q.close == friday_close
    assert m.quote_ticks(inst, now, now) == [q]  # asked again in the same step: the kept quote
    fresh = market_at(now)  # a market that folds the trade date from its open at once: the same quote
    assert fresh.quote_ticks(inst, now, now) == [q]


def test_historical_bars_across_mlk_have_nothing_in_the_halt_and_one_daily_bar_for_tuesday() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        [contract] = await ib.qualifyContractsAsync(Future("MES", "202603", "CME"))
        minutes = await ib.reqHistoricalDataAsync(contract, "", "3 D", "1 min", "TRADES", False, 2)
        daily = await ib.reqHistoricalDataAsync(contract, "", "3 D", "1 day", "TRADES", False, 1)
        daily_rth = await ib.reqHistoricalDataAsync(contract, "", "3 D", "1 day", "TRADES", True, 1)
        stamps = [int(b.date.timestamp()) for b in minutes]
        assert not [s for s in stamps if ct(2026, 1, 19, 12) <= s < ct(2026, 1, 19, 17)]
        assert ct(2026, 1, 19, 11, 59) in stamps and ct(2026, 1, 19, 17) in stamps
        assert ct(2026, 1, 18, 17) in stamps and ct(2026, 1, 16, 16) not in stamps
        assert [b.date for b in daily] == [date(2026, 1, 16), date(2026, 1, 20), date(2026, 1, 21)]
        assert [b.date for b in daily_rth] == [date(2026, 1, 16), date(2026, 1, 20), date(2026, 1, 21)]
        # Tuesday's daily bar is its whole trade date: Sunday 17:00 CT to Tuesday 16:00 CT, halt excluded.
        tuesday = [
            b for s, b in zip(stamps, minutes, strict=True) if ct(2026, 1, 18, 17) <= s < ct(2026, 1, 20, 16)
        ]
        day = daily[1]
        assert day.open == tuesday[0].open and day.close == tuesday[-1].close
        assert day.high == max(b.high for b in tuesday) and day.low == min(b.low for b in tuesday)
        assert day.volume == sum(b.volume for b in tuesday)
        # Its regular hours are Tuesday's own 08:30-15:00 CT: nothing of the holiday morning.
        rth = [
            b
            for s, b in zip(stamps, minutes, strict=True)
            if ct(2026, 1, 20, 8, 30) <= s < ct(2026, 1, 20, 15)
        ]
        assert daily_rth[1].open == rth[0].open and daily_rth[1].close == rth[-1].close
        assert daily_rth[1].volume == sum(b.volume for b in rth)
        ib.disconnect()

    # three days of 1-min bars in one request: past IB's step-size limit (1 D), switched off here
    run(body, start=datetime(2026, 1, 21, 15, 0, tzinfo=UTC), speed=1.0, limits=SimLimits(step_sizes=False))


# --- early closes -------------------------------------------------------------------------------------------


def test_mes_closes_at_12_15_ct_the_day_after_thanksgiving_and_its_regular_hours_with_it() -> None:
    m = market_at(ct(2025, 11, 28, 14))
    close = ct(2025, 11, 28, 12, 15)
    assert [q is None for q in m.quote_ticks(MES_Z5, close - 2, close + 1)] == [False, False, True, True]
    assert m.quote(MES_Z5, ct(2025, 11, 28, 15, 30)) is None
    minutes = m.bars(MES_Z5, ct(2025, 11, 28, 8), ct(2025, 11, 28, 14), 60, "TRADES", False)
    assert minutes[-1].ts == close - 60
    rth_days = m.bars(MES_Z5, ct(2025, 11, 24, 0), ct(2025, 11, 28, 14), 86_400, "TRADES", True, "D")
    assert [b.trade_date for b in rth_days] == [date(2025, 11, d) for d in (24, 25, 26, 28)]
    friday = rth_days[-1]
    rth_minutes = [b for b in minutes if b.ts >= ct(2025, 11, 28, 8, 30)]
    assert friday.ts == ct(2025, 11, 28, 8, 30) and friday.close == rth_minutes[-1].close
    assert friday.volume == sum(b.volume for b in rth_minutes)


def test_mes_on_the_2025_day_of_mourning_trades_until_08_30_ct_without_regular_hours() -> None:
    m = market_at(ct(2025, 1, 10, 10))
    assert m.quote(MES_Z5, ct(2025, 1, 9, 8, 29, 59)) is not None
    assert m.quote(MES_Z5, ct(2025, 1, 9, 8, 30)) is None
    assert m.quote(MES_Z5, ct(2025, 1, 9, 17)) is not None  # Friday's session opens as usual
    days = m.bars(MES_Z5, ct(2025, 1, 8, 0), ct(2025, 1, 10, 10), 86_400, "TRADES", False, "D")
    rth = m.bars(MES_Z5, ct(2025, 1, 8, 0), ct(2025, 1, 10, 10), 86_400, "TRADES", True, "D")
    assert [b.trade_date for b in days] == [date(2025, 1, 8), date(2025, 1, 9), date(2025, 1, 10)]
    assert [b.trade_date for b in rth] == [date(2025, 1, 8), date(2025, 1, 10)]


def test_stock_early_close_ends_regular_hours_at_13_and_extended_hours_at_17_et() -> None:
    m = market_at(et(2025, 7, 7, 12))
    assert m.quote(SPY, et(2025, 7, 3, 16, 59, 59)) is not None
    assert m.quote(SPY, et(2025, 7, 3, 17)) is None
    assert m.quote(SPY, et(2025, 7, 4, 10)) is None  # Independence Day
    assert m.quote(SPY, et(2025, 1, 9, 10)) is None  # day of mourning
    full = m.bars(SPY, et(2025, 7, 3, 0), et(2025, 7, 4, 0), 3600, "TRADES", False)
    rth = m.bars(SPY, et(2025, 7, 3, 0), et(2025, 7, 4, 0), 60, "TRADES", True)
    assert full[0].ts == et(2025, 7, 3, 4) and full[-1].ts == et(2025, 7, 3, 16)
    assert rth[0].ts == et(2025, 7, 3, 9, 30) and rth[-1].ts == et(2025, 7, 3, 12, 59)
    days = m.bars(SPY, et(2025, 7, 1, 0), et(2025, 7, 7, 12), 86_400, "TRADES", True, "D")
    assert [b.trade_date for b in days] == [date(2025, 7, d) for d in (1, 2, 3, 7)]


# --- head timestamp -----------------------------------------------------------------------------------------


def test_head_timestamp_on_a_holiday_is_the_next_trade_date_s_first_open() -> None:
    m = market_at(ct(2025, 3, 5, 9))
    listed_on_mlk = replace(MES_H6, expiry=date(2025, 1, 20) + timedelta(days=380))
    assert m.head_second(listed_on_mlk) == ct(2025, 1, 19, 17)  # MLK's abbreviated session trades for Tuesday
    listed_on_new_year = replace(MES_H6, expiry=date(2025, 1, 1) + timedelta(days=380))
    assert m.head_second(listed_on_new_year) == ct(2025, 1, 1, 17)  # closed: Globex reopens that evening


# --- one schedule -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "hours"),
    [
        ("MES", CME_GLOBEX_EQUITY_INDEX),
        ("MNQ", CME_GLOBEX_EQUITY_INDEX),
        ("M2K", CME_GLOBEX_EQUITY_INDEX),
        ("MYM", CME_GLOBEX_EQUITY_INDEX),
        ("MCL", CME_GLOBEX_ENERGY),
        ("MGC", CME_GLOBEX_METALS),
        ("MBT", CME_GLOBEX_CRYPTO),
        ("SPY", US_EQUITY_EXTENDED),
        ("AAPL", US_EQUITY_EXTENDED),
    ],
)
def test_each_instrument_keeps_its_product_group_s_hours(symbol: str, hours: TradingHours) -> None:
    inst = catalog.get_instrument(symbol)
    assert listed_hours_for(inst) is hours
    assert hours.group is (hours_for(inst).group or HoursGroup.NYSE)


@pytest.mark.parametrize(
    ("symbol", "rth"), [("MES", False), ("MCL", False), ("MGC", False), ("MBT", False), ("SPY", True)]
)
def test_listed_hours_are_the_trading_day_s_hours_2020_to_2030(symbol: str, rth: bool) -> None:
    """The listed Globex hours and a stock's listed regular hours, segment for segment as the trading day's
    hours (`hours_for`) have them."""
    inst = catalog.get_instrument(symbol)
    hours, day_hours = listed_hours_for(inst), hours_for(inst)
    day = date(2020, 1, 1)
    while day <= date(2030, 12, 31):
        expected = tuple((a // NS_PER_SECOND, b // NS_PER_SECOND) for a, b in day_hours.session_segments(day))
        assert hours.segments(day, rth) == expected, day
        day += timedelta(days=1)


def test_the_session_mask_over_years_agrees_with_the_segments() -> None:
    hours = CME_GLOBEX_EQUITY_INDEX
    start, end = ct(2024, 11, 1, 0), ct(2026, 2, 1, 0)
    mask = hours.mask(start, end, False)
    expected = 0
    for day, _, _ in hours.windows(start, end, False):
        expected += sum(max(min(b, end) - max(a, start), 0) for a, b in hours.segments(day, False))
    assert int(mask.sum()) == expected
    halt = ct(2025, 11, 27, 12)
    assert mask[halt - 1 - start] and not mask[halt - start : ct(2025, 11, 27, 17) - start].any()
    assert mask[ct(2025, 11, 27, 17) - start]

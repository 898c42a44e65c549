"""Trading sessions on exchange holidays: CME Globex holiday halts, early closes and trade dates per product
group, NYSE holidays and early closes, checked against the exchanges' published 2024-2026 schedules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ibot.data.bars import resample_bars
from ibot.data.synth import synth_bars
from ibot.exchange.hours import (
    CME_GLOBEX,
    CME_GLOBEX_CRYPTO,
    CME_GLOBEX_ENERGY,
    CME_GLOBEX_EQUITY_INDEX,
    CME_GLOBEX_METALS,
    US_EQUITY_RTH,
    NoSessionError,
    TradingHours,
    hours_for,
)
from ibot.model import Bar, datetime_to_ns
from ibot.model.calendar import business_days
from ibot.model.catalog import contract, get_instrument
from ibot.model.exchange_hours import DayKind, HoursGroup, futures_hours_group, special_days

ET = ZoneInfo("America/New_York")
CLOSED, ABBREVIATED, EARLY = DayKind.CLOSED, DayKind.ABBREVIATED, DayKind.EARLY_CLOSE


def et(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    return datetime_to_ns(datetime(y, mo, d, h, mi, tzinfo=ET))


def utc(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    return datetime_to_ns(datetime(y, mo, d, h, mi, tzinfo=UTC))


def schedule(group: HoursGroup, year: int) -> dict[date, tuple[DayKind, time | None]]:
    return {d: (s.kind, s.close) for d, s in special_days(group, year).items()}


# --- published schedules, per year (times ET = CME's CT + 1 h) ----------------------------------------------

# CME Group equity index (ES/NQ/RTY/YM and micros) on Globex: holiday halt 12:00 CT, early close 12:15 CT.
CME_EQUITY_2024 = {
    date(2024, 1, 1): (CLOSED, None),  # New Year's Day
    date(2024, 1, 15): (ABBREVIATED, time(13)),  # MLK: halt 12:00 CT, trades for Tue 01-16
    date(2024, 2, 19): (ABBREVIATED, time(13)),  # Presidents' Day
    date(2024, 3, 29): (CLOSED, None),  # Good Friday (jobs report on 04-05)
    date(2024, 5, 27): (ABBREVIATED, time(13)),  # Memorial Day
    date(2024, 6, 19): (ABBREVIATED, time(13)),  # Juneteenth
    date(2024, 7, 3): (EARLY, time(13, 15)),  # DTN: "Equities Early close at 12:15 p.m." CT
    date(2024, 7, 4): (ABBREVIATED, time(13)),  # DTN: "Interest Rate, Equities Noon trading halt" CT
    date(2024, 9, 2): (ABBREVIATED, time(13)),  # Labor Day
    date(2024, 11, 28): (ABBREVIATED, time(13)),  # Thanksgiving: "Trading halted at 12:00 PM CT"
    date(2024, 11, 29): (EARLY, time(13, 15)),  # day after Thanksgiving, 12:15 CT
    date(2024, 12, 24): (EARLY, time(13, 15)),  # Christmas Eve, 12:15 CT
    date(2024, 12, 25): (CLOSED, None),  # Christmas Day
}
CME_EQUITY_2025 = {
    date(2025, 1, 1): (CLOSED, None),
    date(2025, 1, 9): (EARLY, time(9, 30)),  # Carter day of mourning: "open until 8:30 a.m. CT"
    date(2025, 1, 20): (ABBREVIATED, time(13)),  # ForexLive: "12:00pm Trading Halt 5:00pm Trading Resumes"
    date(2025, 2, 17): (ABBREVIATED, time(13)),
    date(2025, 4, 18): (CLOSED, None),  # Good Friday
    date(2025, 5, 26): (ABBREVIATED, time(13)),
    date(2025, 6, 19): (ABBREVIATED, time(13)),
    date(2025, 7, 3): (EARLY, time(13, 15)),
    date(2025, 7, 4): (ABBREVIATED, time(13)),
    date(2025, 9, 1): (ABBREVIATED, time(13)),
    date(2025, 11, 27): (ABBREVIATED, time(13)),
    date(2025, 11, 28): (EARLY, time(13, 15)),
    date(2025, 12, 24): (EARLY, time(13, 15)),
    date(2025, 12, 25): (CLOSED, None),
}
CME_EQUITY_2026 = {
    date(2026, 1, 1): (CLOSED, None),
    date(2026, 1, 19): (ABBREVIATED, time(13)),  # EdgeClear 2026: "Equities ... Trading Halt @ 12:00 CT"
    date(2026, 2, 16): (ABBREVIATED, time(13)),
    date(2026, 4, 3): (ABBREVIATED, time(9, 15)),  # Good Friday with the jobs report: to 8:15 CT, for 04-06
    date(2026, 5, 25): (ABBREVIATED, time(13)),
    date(2026, 6, 19): (ABBREVIATED, time(13)),
    date(2026, 7, 3): (ABBREVIATED, time(13)),  # Independence Day observed (July 4 is a Saturday)
    date(2026, 9, 7): (ABBREVIATED, time(13)),
    date(2026, 11, 26): (ABBREVIATED, time(13)),
    date(2026, 11, 27): (EARLY, time(13, 15)),
    date(2026, 12, 24): (EARLY, time(13, 15)),
    date(2026, 12, 25): (CLOSED, None),
}


def _energy(equity: dict[date, tuple[DayKind, time | None]]) -> dict[date, tuple[DayKind, time | None]]:
    """NYMEX/COMEX on Globex, from the equity figures: holiday halt 13:30 CT (Thanksgiving Day 12:00 CT, as
    every group), early close 12:45 CT, no July 3 early close, no Good Friday session and normal hours on the
    Carter day of mourning."""
    out: dict[date, tuple[DayKind, time | None]] = {}
    for d, (kind, close) in equity.items():
        if d in (date(2025, 1, 9),) or (kind is EARLY and d.month == 7):
            continue
        if d == date(2026, 4, 3):
            out[d] = (CLOSED, None)
        elif kind is ABBREVIATED and not (d.month == 11 and d.weekday() == 3):
            out[d] = (ABBREVIATED, time(14, 30))
        elif kind is EARLY:
            out[d] = (EARLY, time(13, 45))
        else:
            out[d] = (kind, close)
    return out


@pytest.mark.parametrize(
    ("year", "published"), [(2024, CME_EQUITY_2024), (2025, CME_EQUITY_2025), (2026, CME_EQUITY_2026)]
)
def test_cme_equity_index_schedule_matches_the_published_year(
    year: int, published: dict[date, tuple[DayKind, time | None]]
) -> None:
    assert schedule(HoursGroup.CME_EQUITY_INDEX, year) == published


@pytest.mark.parametrize(
    ("year", "equity"), [(2024, CME_EQUITY_2024), (2025, CME_EQUITY_2025), (2026, CME_EQUITY_2026)]
)
def test_cme_energy_and_metals_schedule_matches_the_published_year(
    year: int, equity: dict[date, tuple[DayKind, time | None]]
) -> None:
    published = _energy(equity)
    assert schedule(HoursGroup.CME_ENERGY, year) == published
    assert schedule(HoursGroup.CME_METALS, year) == published
    # DTN, July 4th 2024: "Energy, Metals: 1:30 p.m. trading halt" CT; EdgeClear, MLK 2026: 13:30 CT.
    holiday = {2024: date(2024, 7, 4), 2025: date(2025, 2, 17), 2026: date(2026, 1, 19)}[year]
    assert published[holiday] == (ABBREVIATED, time(14, 30))


def test_cme_crypto_trades_its_whole_holiday_session_for_the_next_trade_date() -> None:
    # DTN July 4th 2024 and EdgeClear MLK 2026: "FX, Cryptocurrency 4:00 p.m. trading halt" CT, then the
    # 5:00 p.m. CT open: the regular hours, but the holiday session belongs to the next trade date.
    crypto = schedule(HoursGroup.CME_CRYPTO, 2026)
    assert crypto[date(2026, 1, 19)] == (ABBREVIATED, time(17))
    assert crypto[date(2026, 4, 3)] == (CLOSED, None)
    assert crypto[date(2026, 11, 27)] == (EARLY, time(13, 45))
    # ForexLive, CME's Thanksgiving 2024 hours: cryptocurrency "Trading halted at 12:00 PM CT" on the day.
    assert schedule(HoursGroup.CME_CRYPTO, 2024)[date(2024, 11, 28)] == (ABBREVIATED, time(13))
    assert date(2025, 1, 9) not in schedule(HoursGroup.CME_CRYPTO, 2025)  # normal hours on the mourning day
    assert CME_GLOBEX_CRYPTO.session_segments(date(2026, 1, 20)) == (
        (et(2026, 1, 18, 18), et(2026, 1, 19, 17)),
        (et(2026, 1, 19, 18), et(2026, 1, 20, 17)),
    )


# NYSE Group 2025-2027 calendar (press release 2024-11-08) and the 2024 calendar; early closes at 1:00 p.m.
NYSE_PUBLISHED = {
    2024: (
        [(1, 1), (1, 15), (2, 19), (3, 29), (5, 27), (6, 19), (7, 4), (9, 2), (11, 28), (12, 25)],
        [(7, 3), (11, 29), (12, 24)],
    ),
    2025: (
        [(1, 1), (1, 9), (1, 20), (2, 17), (4, 18), (5, 26), (6, 19), (7, 4), (9, 1), (11, 27), (12, 25)],
        [(7, 3), (11, 28), (12, 24)],
    ),
    2026: (
        [(1, 1), (1, 19), (2, 16), (4, 3), (5, 25), (6, 19), (7, 3), (9, 7), (11, 26), (12, 25)],
        [(11, 27), (12, 24)],
    ),
    2027: (  # Juneteenth observed Friday 06-18, Independence Day Monday 07-05, Christmas Friday 12-24
        [(1, 1), (1, 18), (2, 15), (3, 26), (5, 31), (6, 18), (7, 5), (9, 6), (11, 25), (12, 24)],
        [(11, 26)],
    ),
}


@pytest.mark.parametrize("year", sorted(NYSE_PUBLISHED))
def test_nyse_holidays_and_early_closes_match_the_published_year(year: int) -> None:
    closed, early = NYSE_PUBLISHED[year]
    expected: dict[date, tuple[DayKind, time | None]] = {date(year, m, d): (CLOSED, None) for m, d in closed}
    expected |= {date(year, m, d): (EARLY, time(13)) for m, d in early}
    assert schedule(HoursGroup.NYSE, year) == expected


def test_nyse_new_years_day_on_a_saturday_is_not_observed_on_the_friday_before() -> None:
    assert US_EQUITY_RTH.is_trading_day(date(2021, 12, 31))
    assert not US_EQUITY_RTH.is_trading_day(date(2023, 1, 2))  # Sunday 2023-01-01, observed Monday


# --- is_open around halts and early closes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("session", "when", "is_open"),
    [
        # MLK 2024 (Monday): Globex opened Sunday 18:00 ET, equity halts 13:00 ET, energy/metals 14:30 ET.
        (CME_GLOBEX, et(2024, 1, 14, 18, 0), True),
        (CME_GLOBEX, et(2024, 1, 15, 12, 59), True),
        (CME_GLOBEX, et(2024, 1, 15, 13, 0), False),
        (CME_GLOBEX, et(2024, 1, 15, 17, 59), False),
        (CME_GLOBEX, et(2024, 1, 15, 18, 0), True),
        (CME_GLOBEX_ENERGY, et(2024, 1, 15, 14, 29), True),
        (CME_GLOBEX_ENERGY, et(2024, 1, 15, 14, 30), False),
        (CME_GLOBEX_METALS, et(2024, 1, 15, 14, 29), True),
        (CME_GLOBEX_CRYPTO, et(2024, 1, 15, 16, 59), True),
        (CME_GLOBEX_CRYPTO, et(2024, 1, 15, 17, 0), False),
        # Day after Thanksgiving 2024: equity closes 13:15 ET, energy 13:45 ET, reopening Sunday 18:00 ET.
        (CME_GLOBEX, et(2024, 11, 29, 13, 14), True),
        (CME_GLOBEX, et(2024, 11, 29, 13, 15), False),
        (CME_GLOBEX_ENERGY, et(2024, 11, 29, 13, 44), True),
        (CME_GLOBEX_ENERGY, et(2024, 11, 29, 13, 45), False),
        (CME_GLOBEX, et(2024, 11, 29, 18, 0), False),
        # Christmas 2024 (Wednesday): Christmas Eve 13:15 ET close, no session Dec 24 evening or Dec 25.
        (CME_GLOBEX, et(2024, 12, 24, 13, 14), True),
        (CME_GLOBEX, et(2024, 12, 24, 13, 15), False),
        (CME_GLOBEX, et(2024, 12, 24, 18, 30), False),
        (CME_GLOBEX, et(2024, 12, 25, 10, 0), False),
        (CME_GLOBEX, et(2024, 12, 25, 18, 0), True),
        (CME_GLOBEX_METALS, et(2024, 12, 24, 13, 44), True),
        (CME_GLOBEX_METALS, et(2024, 12, 24, 13, 45), False),
        # New Year's Day 2025 (Wednesday): no Dec 31 evening session, reopening Jan 1 18:00 ET.
        (CME_GLOBEX, et(2024, 12, 31, 16, 59), True),
        (CME_GLOBEX, et(2024, 12, 31, 18, 30), False),
        (CME_GLOBEX, et(2025, 1, 1, 18, 0), True),
        # Good Friday 2024: closed from Thursday's 17:00 ET close to Sunday 18:00 ET.
        (CME_GLOBEX, et(2024, 3, 28, 18, 30), False),
        (CME_GLOBEX, et(2024, 3, 29, 10, 0), False),
        (CME_GLOBEX, et(2024, 3, 31, 18, 0), True),
        # Good Friday 2026 with the jobs report: equity index trades until 09:15 ET, energy does not trade.
        (CME_GLOBEX, et(2026, 4, 3, 9, 14), True),
        (CME_GLOBEX, et(2026, 4, 3, 9, 15), False),
        (CME_GLOBEX_ENERGY, et(2026, 4, 3, 9, 0), False),
        # 2025-01-09 day of mourning: equity index closes 09:30 ET, energy trades its regular hours.
        (CME_GLOBEX, et(2025, 1, 9, 9, 29), True),
        (CME_GLOBEX, et(2025, 1, 9, 9, 30), False),
        (CME_GLOBEX, et(2025, 1, 9, 18, 0), True),
        (CME_GLOBEX_ENERGY, et(2025, 1, 9, 16, 59), True),
        # NYSE: holidays closed, early closes at 13:00 ET.
        (US_EQUITY_RTH, et(2024, 11, 28, 10, 0), False),
        (US_EQUITY_RTH, et(2024, 11, 29, 12, 59), True),
        (US_EQUITY_RTH, et(2024, 11, 29, 13, 0), False),
        (US_EQUITY_RTH, et(2025, 7, 3, 12, 59), True),
        (US_EQUITY_RTH, et(2025, 7, 3, 13, 0), False),
        (US_EQUITY_RTH, et(2025, 1, 9, 10, 0), False),
        (US_EQUITY_RTH, et(2026, 4, 3, 10, 0), False),
        (US_EQUITY_RTH, et(2026, 7, 2, 15, 59), True),  # no early close before an observed Friday holiday
    ],
)
def test_is_open_around_holiday_halts_and_early_closes(
    session: TradingHours, when: int, is_open: bool
) -> None:
    assert session.is_open(when) is is_open


# --- trade dates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "trade_date"),
    [
        (et(2024, 1, 14, 19, 0), date(2024, 1, 16)),  # Sunday evening before MLK: Tuesday's trade date
        (et(2024, 1, 15, 10, 0), date(2024, 1, 16)),  # in MLK's abbreviated session
        (et(2024, 1, 15, 14, 0), date(2024, 1, 16)),  # after the halt
        (et(2024, 1, 15, 18, 5), date(2024, 1, 16)),
        (et(2024, 6, 19, 12, 0), date(2024, 6, 20)),  # Juneteenth (Wednesday) -> Thursday
        (et(2024, 7, 4, 12, 0), date(2024, 7, 5)),
        (et(2024, 11, 28, 12, 0), date(2024, 11, 29)),  # Thanksgiving -> Friday
        (et(2026, 4, 3, 8, 45), date(2026, 4, 6)),  # Good Friday 2026 jobs-report session -> Monday
        (et(2024, 12, 25, 18, 30), date(2024, 12, 26)),
        (et(2025, 1, 9, 9, 0), date(2025, 1, 9)),  # an early close is still a trading day
    ],
)
def test_a_trade_in_an_abbreviated_holiday_session_belongs_to_the_next_trading_day(
    when: int, trade_date: date
) -> None:
    assert CME_GLOBEX.session_date(when) == trade_date


def test_the_trading_day_after_a_holiday_opens_before_the_holiday_with_a_gap() -> None:
    tuesday = date(2024, 1, 16)
    assert CME_GLOBEX.session_open_close(tuesday) == (et(2024, 1, 14, 18), et(2024, 1, 16, 17))
    assert CME_GLOBEX.session_segments(tuesday) == (
        (et(2024, 1, 14, 18), et(2024, 1, 15, 13)),
        (et(2024, 1, 15, 18), et(2024, 1, 16, 17)),
    )
    monday = date(2026, 4, 6)  # Good Friday 2026: Thursday evening to 09:15 ET Friday, then Sunday evening
    assert CME_GLOBEX.session_segments(monday) == (
        (et(2026, 4, 2, 18), et(2026, 4, 3, 9, 15)),
        (et(2026, 4, 5, 18), et(2026, 4, 6, 17)),
    )
    assert [d for d, _, _ in CME_GLOBEX.sessions(date(2024, 1, 12), date(2024, 1, 17))] == [
        date(2024, 1, 12),
        date(2024, 1, 16),
        date(2024, 1, 17),
    ]


def test_no_session_on_christmas_and_new_years_day() -> None:
    with pytest.raises(NoSessionError, match=r"no session on 2024-12-25 \(a holiday: Christmas Day\)"):
        CME_GLOBEX.session_open_close(date(2024, 12, 25))
    with pytest.raises(NoSessionError, match=r"2024-01-15 \(Martin Luther King Jr\. Day: its session"):
        CME_GLOBEX.session_open_close(date(2024, 1, 15))
    assert CME_GLOBEX.session_segments(date(2024, 12, 25)) == ()
    assert CME_GLOBEX.trading_days(date(2024, 12, 23), 5) == [
        date(2024, 12, 23),
        date(2024, 12, 24),
        date(2024, 12, 26),
        date(2024, 12, 27),
        date(2024, 12, 30),
    ]
    assert CME_GLOBEX.session_open_close(date(2024, 12, 26)) == (et(2024, 12, 25, 18), et(2024, 12, 26, 17))
    assert CME_GLOBEX.session_open_close(date(2025, 1, 2)) == (et(2025, 1, 1, 18), et(2025, 1, 2, 17))


def test_next_open_skips_the_holiday_halt_and_closed_days() -> None:
    assert CME_GLOBEX.next_open(et(2024, 1, 15, 14, 0)) == et(2024, 1, 15, 18)  # MLK halt -> 18:00
    assert CME_GLOBEX.next_open(et(2024, 12, 24, 14, 0)) == et(2024, 12, 25, 18)  # Christmas Eve close
    assert CME_GLOBEX.next_open(et(2024, 3, 28, 17, 30)) == et(2024, 3, 31, 18)  # Good Friday weekend
    assert US_EQUITY_RTH.next_open(et(2024, 11, 27, 16, 30)) == et(2024, 11, 29, 9, 30)


def test_open_since_is_the_start_of_the_trading_stretch() -> None:
    assert CME_GLOBEX.open_since(et(2024, 1, 15, 10)) == et(2024, 1, 14, 18)  # MLK morning
    assert CME_GLOBEX.open_since(et(2024, 1, 15, 14)) is None  # holiday halt
    assert CME_GLOBEX.open_since(et(2024, 1, 15, 19)) == et(2024, 1, 15, 18)  # reopened for Tuesday
    assert US_EQUITY_RTH.open_since(et(2024, 11, 29, 13, 30)) is None  # after the 13:00 early close


def test_holiday_hours_follow_daylight_saving_time() -> None:
    # Presidents' Day 2024 (EST): energy halts 14:30 EST = 19:30 UTC; Memorial Day 2024 (EDT): 18:30 UTC.
    assert CME_GLOBEX_ENERGY.session_segments(date(2024, 2, 20))[0] == (
        utc(2024, 2, 18, 23),
        utc(2024, 2, 19, 19, 30),
    )
    assert CME_GLOBEX_ENERGY.session_segments(date(2024, 5, 28))[0] == (
        utc(2024, 5, 26, 22),
        utc(2024, 5, 27, 18, 30),
    )
    # Day after Thanksgiving 2024 (after the November DST change): its session opened Wednesday 18:00 EST
    # (Thanksgiving's abbreviated session belongs to it) and closes 13:15 EST = 18:15 UTC.
    assert CME_GLOBEX.session_open_close(date(2024, 11, 29)) == (
        utc(2024, 11, 27, 23),
        utc(2024, 11, 29, 18, 15),
    )
    # NYSE July 3 2024 (EDT): 09:30-13:00 EDT = 13:30-17:00 UTC.
    assert US_EQUITY_RTH.session_open_close(date(2024, 7, 3)) == (
        utc(2024, 7, 3, 13, 30),
        utc(2024, 7, 3, 17),
    )
    # The Monday after the March 2025 DST change (no holiday): opens Sunday 18:00 EDT = 22:00 UTC.
    assert CME_GLOBEX.session_open_close(date(2025, 3, 10)) == (utc(2025, 3, 9, 22), utc(2025, 3, 10, 21))


# --- whole-decade consistency -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "session", [CME_GLOBEX_EQUITY_INDEX, CME_GLOBEX_ENERGY, CME_GLOBEX_METALS, CME_GLOBEX_CRYPTO]
)
def test_globex_trading_days_are_cme_business_days_2020_to_2030(session: TradingHours) -> None:
    start, end = date(2020, 1, 1), date(2030, 12, 31)
    assert [d for d, _, _ in session.sessions(start, end)] == business_days(start, end, "CME")


def test_nyse_trading_days_are_cme_business_days_but_the_2025_day_of_mourning() -> None:
    start, end = date(2020, 1, 1), date(2030, 12, 31)
    expected = [d for d in business_days(start, end, "CME") if d != date(2025, 1, 9)]
    assert [d for d, _, _ in US_EQUITY_RTH.sessions(start, end)] == expected


@pytest.mark.parametrize("session", [CME_GLOBEX, CME_GLOBEX_ENERGY, CME_GLOBEX_CRYPTO, US_EQUITY_RTH])
def test_every_session_segment_2020_to_2030_is_ordered_and_shorter_than_the_regular_day(
    session: TradingHours,
) -> None:
    regular = timedelta(hours=23 if session.overnight else 6.5)
    for day, opened, closed in session.sessions(date(2020, 1, 1), date(2030, 12, 31)):
        segments = session.session_segments(day)
        assert (segments[0][0], segments[-1][1]) == (opened, closed)
        for (a, b), (c, _) in pairwise(segments):
            assert a < b < c
        for a, b in segments:  # a DST change can add an hour to a regular day
            assert 0 < b - a <= (regular + timedelta(hours=1)).total_seconds() * 1e9
        assert session.session_date(closed - 1) == day
        assert session.is_open(closed - 1) and not session.is_open(closed)


@pytest.mark.parametrize("session", [CME_GLOBEX, CME_GLOBEX_ENERGY, US_EQUITY_RTH])
def test_vectorized_windows_agree_with_the_scalar_rule_across_holidays(session: TradingHours) -> None:
    rng = np.random.default_rng(7)
    ts = np.sort(
        np.r_[
            rng.integers(et(2023, 12, 15, 0), et(2025, 1, 15, 0), 3000),
            rng.integers(et(2026, 3, 30, 0), et(2026, 4, 8, 0), 500),
        ]
    )
    opens, closes = session.nominal_windows(ts)
    expected = [session.nominal_open_close(session.session_date(int(t))) for t in ts.tolist()]
    assert list(zip(opens.tolist(), closes.tolist(), strict=True)) == expected


def test_daily_bars_fold_the_abbreviated_holiday_session_into_the_next_trading_day() -> None:
    bars = [
        Bar(et(2024, 1, 12, 10), 1.0, 1.0, 1.0, 1.0, 1.0),  # Friday
        Bar(et(2024, 1, 14, 19), 2.0, 2.0, 2.0, 2.0, 1.0),  # Sunday evening (Tuesday's trade date)
        Bar(et(2024, 1, 15, 10), 3.0, 3.0, 3.0, 3.0, 1.0),  # MLK morning
        Bar(et(2024, 1, 16, 10), 4.0, 4.0, 4.0, 4.0, 1.0),  # Tuesday
    ]
    daily = resample_bars(bars, "1d", CME_GLOBEX)
    assert daily.ts.tolist() == [et(2024, 1, 11, 18), et(2024, 1, 14, 18)]
    assert daily.open.tolist() == [1.0, 2.0]
    assert daily.close.tolist() == [1.0, 4.0]
    assert daily.volume.tolist() == [1.0, 3.0]


# --- the session of each instrument -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "session"),
    [
        ("MES", CME_GLOBEX_EQUITY_INDEX),
        ("MNQ", CME_GLOBEX_EQUITY_INDEX),
        ("M2K", CME_GLOBEX_EQUITY_INDEX),
        ("MYM", CME_GLOBEX_EQUITY_INDEX),
        ("MCL", CME_GLOBEX_ENERGY),
        ("MGC", CME_GLOBEX_METALS),
        ("MBT", CME_GLOBEX_CRYPTO),
        ("SPY", US_EQUITY_RTH),
        ("AAPL", US_EQUITY_RTH),
    ],
)
def test_hours_for_picks_the_product_group_of_each_catalog_instrument(
    symbol: str, session: TradingHours
) -> None:
    assert hours_for(get_instrument(symbol)) is session


def test_hours_for_a_futures_month_is_its_product_s() -> None:
    assert hours_for(contract("MCL", 2025, 3)) is CME_GLOBEX_ENERGY
    assert hours_for(contract("MES", 2025, 3)) is CME_GLOBEX
    assert futures_hours_group("nymex", "CL") is HoursGroup.CME_ENERGY


def test_holiday_hours_need_the_eastern_time_zone() -> None:
    with pytest.raises(ValueError, match="US Eastern"):
        TradingHours("x", time(17), time(16), tz_name="America/Chicago", group=HoursGroup.CME_ENERGY)


def test_synthetic_bars_keep_the_holiday_schedule() -> None:
    mes = get_instrument("MES")
    bars = synth_bars(mes, date(2024, 1, 12), 2, "5min", seed=3)  # Friday, then Tuesday after MLK
    ts = bars.ts
    assert int(ts[0]) == et(2024, 1, 11, 18)
    assert not ((ts >= et(2024, 1, 12, 17)) & (ts < et(2024, 1, 14, 18))).any()  # weekend
    assert ((ts >= et(2024, 1, 14, 18)) & (ts < et(2024, 1, 15, 13))).any()  # MLK abbreviated session
    assert not ((ts >= et(2024, 1, 15, 13)) & (ts < et(2024, 1, 15, 18))).any()  # holiday halt
    assert int(ts[-1]) == et(2024, 1, 16, 16, 55)
    assert all(CME_GLOBEX.is_open(int(t)) for t in ts.tolist())
    xmas = synth_bars(mes, date(2024, 12, 24), 2, "15min", seed=3).ts
    assert int(xmas.max()) == et(2024, 12, 26, 16, 45)
    assert not ((xmas >= et(2024, 12, 24, 13, 15)) & (xmas < et(2024, 12, 25, 18))).any()

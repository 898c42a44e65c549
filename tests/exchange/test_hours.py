"""Trading hours: CME Globex and US stock hours, trading days, daylight-saving changes, holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ibot.exchange.hours import CME_GLOBEX, US_EQUITY_RTH, NoSessionError, TradingHours, hours_for
from ibot.model import Instrument, SecType, datetime_to_ns

ET = ZoneInfo("America/New_York")


def et(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    return datetime_to_ns(datetime(y, mo, d, h, mi, tzinfo=ET))


def utc(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    return datetime_to_ns(datetime(y, mo, d, h, mi, tzinfo=UTC))


@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        (et(2024, 3, 5, 12, 0), True),  # Tuesday midday
        (et(2024, 3, 5, 16, 59), True),
        (et(2024, 3, 5, 17, 0), False),  # daily halt 17:00-18:00 ET
        (et(2024, 3, 5, 17, 59), False),
        (et(2024, 3, 5, 18, 0), True),  # Wednesday's session opens
        (et(2024, 3, 8, 16, 59), True),  # Friday before the close
        (et(2024, 3, 8, 17, 0), False),  # Friday close
        (et(2024, 3, 8, 18, 30), False),  # no Friday evening session
        (et(2024, 3, 9, 12, 0), False),  # Saturday
        (et(2024, 3, 10, 17, 59), False),  # Sunday before the open
        (et(2024, 3, 10, 18, 0), True),  # Sunday open (Monday's session)
    ],
)
def test_globex_is_open_sunday_to_friday_with_the_daily_halt(when: int, is_open: bool) -> None:
    assert CME_GLOBEX.is_open(when) is is_open


def test_after_the_evening_open_a_timestamp_belongs_to_the_next_trading_day() -> None:
    assert CME_GLOBEX.session_date(et(2024, 3, 5, 18, 5)) == date(2024, 3, 6)
    assert CME_GLOBEX.session_date(et(2024, 3, 5, 16, 0)) == date(2024, 3, 5)
    assert CME_GLOBEX.session_date(et(2024, 3, 10, 19, 0)) == date(2024, 3, 11)  # Sunday evening -> Monday
    # 00:30 UTC Wednesday is 20:30 ET Tuesday: Wednesday's session, not UTC's Wednesday by accident
    assert CME_GLOBEX.session_date(utc(2024, 3, 6, 0, 30)) == date(2024, 3, 6)
    assert CME_GLOBEX.session_date(utc(2024, 3, 5, 21, 30)) == date(2024, 3, 5)  # 16:30 ET (EST)


def test_session_open_close_follows_daylight_saving_time() -> None:
    # Monday 2024-03-11: opened Sunday 18:00 EDT (DST began that morning) = 22:00 UTC; closes 17:00 EDT.
    assert CME_GLOBEX.session_open_close(date(2024, 3, 11)) == (utc(2024, 3, 10, 22), utc(2024, 3, 11, 21))
    # Friday 2024-03-08 was still EST: opened Thursday 23:00 UTC, closed 22:00 UTC.
    assert CME_GLOBEX.session_open_close(date(2024, 3, 8)) == (utc(2024, 3, 7, 23), utc(2024, 3, 8, 22))


def test_a_weekend_day_has_no_session() -> None:
    with pytest.raises(NoSessionError, match=r"CME Globex: no session on 2024-03-09 \(a Saturday\)"):
        CME_GLOBEX.session_open_close(date(2024, 3, 9))


def test_holidays_close_the_session() -> None:
    good_friday = date(2024, 3, 29)
    with_holiday = TradingHours(
        "Globex with holidays", open_time=time(18), close_time=time(17), holidays=frozenset({good_friday})
    )
    clock_only = TradingHours("Globex without holidays", open_time=time(18), close_time=time(17))
    assert not with_holiday.is_open(et(2024, 3, 29, 10, 0))
    assert clock_only.is_open(et(2024, 3, 29, 10, 0))
    assert not CME_GLOBEX.is_open(et(2024, 3, 29, 10, 0))  # Good Friday is on CME's published schedule
    with pytest.raises(NoSessionError, match="2024-03-29 \\(a holiday\\)"):
        with_holiday.session_open_close(good_friday)
    assert with_holiday.trading_days(date(2024, 3, 28), 2) == [date(2024, 3, 28), date(2024, 4, 1)]


def test_stock_regular_hours_are_0930_to_1600_on_the_same_day() -> None:
    assert not US_EQUITY_RTH.overnight
    assert US_EQUITY_RTH.session_open_close(date(2024, 3, 5)) == (et(2024, 3, 5, 9, 30), et(2024, 3, 5, 16))
    assert US_EQUITY_RTH.is_open(et(2024, 3, 5, 9, 30))
    assert not US_EQUITY_RTH.is_open(et(2024, 3, 5, 16, 0))
    assert not US_EQUITY_RTH.is_open(et(2024, 3, 5, 9, 29))
    assert US_EQUITY_RTH.session_date(et(2024, 3, 5, 19, 0)) == date(2024, 3, 5)


def test_sessions_and_next_open_walk_the_calendar() -> None:
    listed = list(CME_GLOBEX.sessions(date(2024, 3, 7), date(2024, 3, 12)))
    assert [d for d, _, _ in listed] == [
        date(2024, 3, 7),
        date(2024, 3, 8),
        date(2024, 3, 11),
        date(2024, 3, 12),
    ]
    assert CME_GLOBEX.next_open(et(2024, 3, 8, 17, 30)) == et(2024, 3, 10, 18)  # Friday evening -> Sunday
    assert CME_GLOBEX.next_open(et(2024, 3, 5, 18, 0)) == et(2024, 3, 5, 18, 0)


def test_vectorized_windows_agree_with_the_scalar_rule() -> None:
    rng = np.random.default_rng(1)
    ts = np.sort(rng.integers(et(2024, 3, 1, 0), et(2024, 3, 20, 0), 500))
    for session in (CME_GLOBEX, US_EQUITY_RTH):
        opens, closes = session.nominal_windows(ts)
        expected = [session.nominal_open_close(session.session_date(int(t))) for t in ts.tolist()]
        assert list(zip(opens.tolist(), closes.tolist(), strict=True)) == expected


def test_default_session_by_security_type() -> None:
    mes = Instrument("MES", SecType.FUT, "CME", "USD", Decimal(5), Decimal("0.25"))
    spy = Instrument("SPY", SecType.STK, "SMART", "USD", Decimal(1), Decimal("0.01"))
    assert hours_for(mes) is CME_GLOBEX
    assert hours_for(spy) is US_EQUITY_RTH

"""Exchange holiday calendars: CME Group US holidays and England-and-Wales bank holidays, by rule."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from ibot.model.calendar import (
    UnknownCalendarError,
    add_business_days,
    business_day_on_or_after,
    business_day_on_or_before,
    business_days,
    easter_sunday,
    holiday_name,
    holidays,
    is_business_day,
    is_holiday,
    next_business_day,
    nth_last_business_day,
    previous_business_day,
    trading_day_bounds,
    trading_day_end,
    trading_day_of,
)

# CME Group holiday calendar 2025 (full-day holidays with no settlement). The Jan 9 2025 national day of
# mourning closed NYSE, but CME futures traded (equity index halted early), so it is not a CME holiday.
CME_2025 = [
    date(2025, 1, 1),
    date(2025, 1, 20),
    date(2025, 2, 17),
    date(2025, 4, 18),
    date(2025, 5, 26),
    date(2025, 6, 19),
    date(2025, 7, 4),
    date(2025, 9, 1),
    date(2025, 11, 27),
    date(2025, 12, 25),
]

# gov.uk bank holidays, England and Wales, 2026.
UK_2026 = [
    date(2026, 1, 1),
    date(2026, 4, 3),
    date(2026, 4, 6),
    date(2026, 5, 4),
    date(2026, 5, 25),
    date(2026, 8, 31),
    date(2026, 12, 25),
    date(2026, 12, 28),  # Boxing Day falls on a Saturday: substitute Monday
]


def test_cme_holidays_of_2025_match_the_published_list() -> None:
    assert list(holidays(2025, "CME")) == CME_2025


def test_uk_bank_holidays_of_2026_match_gov_uk() -> None:
    assert list(holidays(2026, "UK")) == UK_2026


@pytest.mark.parametrize("good_friday", [date(2024, 3, 29), date(2025, 4, 18), date(2026, 4, 3)])
def test_good_friday_is_a_holiday_in_both_calendars(good_friday: date) -> None:
    for calendar in ("CME", "UK"):
        assert not is_business_day(good_friday, calendar)
        assert holiday_name(good_friday, calendar) == "Good Friday"


def test_easter_sunday_known_dates() -> None:
    assert easter_sunday(2024) == date(2024, 3, 31)
    assert easter_sunday(2025) == date(2025, 4, 20)
    assert easter_sunday(2026) == date(2026, 4, 5)
    assert easter_sunday(2038) == date(2038, 4, 25)


def test_juneteenth_is_a_cme_holiday_from_2022_with_weekend_observance() -> None:
    assert is_holiday(date(2024, 6, 19))  # Wednesday
    assert is_holiday(date(2025, 6, 19))  # Thursday
    assert holiday_name(date(2026, 6, 19)) == "Juneteenth"  # Friday: the June 2026 equity expiry moves
    assert holiday_name(date(2022, 6, 20)) == "Juneteenth (observed)"  # Sunday -> Monday
    assert holiday_name(date(2027, 6, 18)) == "Juneteenth (observed)"  # Saturday -> Friday
    assert is_business_day(date(2021, 6, 18))  # not yet an exchange holiday in 2021


def test_new_years_day_on_a_saturday_is_not_observed_on_the_friday_before() -> None:
    # 2022-01-01 was a Saturday: CME and NYSE traded and settled on Friday 2021-12-31.
    assert is_business_day(date(2021, 12, 31))
    assert date(2021, 12, 31) not in holidays(2021)
    assert date(2022, 1, 1) not in holidays(2022)


def test_new_years_day_on_a_sunday_moves_to_monday() -> None:
    assert holiday_name(date(2023, 1, 2)) == "New Year's Day (observed)"


def test_other_saturday_holidays_are_observed_on_friday() -> None:
    assert holiday_name(date(2021, 12, 24)) == "Christmas Day (observed)"
    assert holiday_name(date(2026, 7, 3)) == "Independence Day (observed)"
    assert is_business_day(date(2026, 7, 6))


def test_cme_regular_monday_and_thursday_holidays() -> None:
    assert holiday_name(date(2024, 1, 15)) == "Martin Luther King Jr. Day"
    assert holiday_name(date(2024, 2, 19)) == "Presidents' Day"
    assert holiday_name(date(2024, 5, 27)) == "Memorial Day"
    assert holiday_name(date(2024, 9, 2)) == "Labor Day"
    assert holiday_name(date(2024, 11, 28)) == "Thanksgiving Day"
    assert is_business_day(date(2024, 11, 29))  # the day after Thanksgiving trades (early close)
    assert is_business_day(date(2024, 12, 24))  # Christmas Eve trades (early close)


def test_uk_christmas_substitutes() -> None:
    # 2021: Christmas and Boxing Day both on the weekend -> Monday 27 and Tuesday 28.
    assert holiday_name(date(2021, 12, 27), "UK") == "Christmas Day (substitute)"
    assert holiday_name(date(2021, 12, 28), "UK") == "Boxing Day (substitute)"
    # 2022: Christmas on Sunday -> Boxing Day Monday 26, Christmas substitute Tuesday 27.
    assert holiday_name(date(2022, 12, 26), "UK") == "Boxing Day"
    assert holiday_name(date(2022, 12, 27), "UK") == "Christmas Day (substitute)"


def test_uk_one_off_and_moved_bank_holidays() -> None:
    assert holiday_name(date(2022, 6, 2), "UK") == "Spring bank holiday"
    assert holiday_name(date(2022, 6, 3), "UK") == "Platinum Jubilee of Elizabeth II"
    assert holiday_name(date(2022, 9, 19), "UK") == "State Funeral of Queen Elizabeth II"
    assert holiday_name(date(2023, 5, 8), "UK") == "Coronation of King Charles III"
    assert holiday_name(date(2020, 5, 8), "UK") == "Early May bank holiday"  # moved to VE Day
    assert is_business_day(date(2020, 5, 4), "UK")
    assert is_business_day(date(2022, 5, 30), "UK")  # the spring holiday moved to June 2


def test_joined_calendar_needs_a_business_day_in_every_part() -> None:
    boxing_day = date(2025, 12, 26)
    assert is_business_day(boxing_day, "CME")
    assert not is_business_day(boxing_day, "CME+UK")
    assert holiday_name(date(2025, 12, 25), "CME+UK") == "Christmas Day"  # one name, not repeated
    assert holiday_name(date(2022, 12, 26), "CME+UK") == "Christmas Day (observed) / Boxing Day"
    assert date(2025, 1, 20) in holidays(2025, "cme+uk")  # MLK Day from the US side


def test_calendar_aliases_are_case_insensitive() -> None:
    for name in ("nymex", "COMEX", "cbot", "Globex"):
        assert holidays(2025, name) == holidays(2025, "CME")
    assert holidays(2026, "london") == holidays(2026, "UK")


def test_unknown_calendar_is_a_clear_error() -> None:
    with pytest.raises(UnknownCalendarError, match=r"'NYSEX'.*known calendars: .*CME.*UK"):
        is_business_day(date(2025, 1, 2), "NYSEX")


def test_year_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="1900"):
        holidays(1900)


def test_weekends_are_not_business_days_nor_holidays() -> None:
    saturday = date(2025, 3, 1)
    assert not is_business_day(saturday)
    assert holiday_name(saturday) is None


def test_stepping_over_weekends_and_holidays() -> None:
    assert next_business_day(date(2024, 3, 28)) == date(2024, 4, 1)  # over Good Friday and the weekend
    assert previous_business_day(date(2024, 1, 16)) == date(2024, 1, 12)  # over MLK Day
    assert previous_business_day(date(2025, 6, 20)) == date(2025, 6, 18)  # over Juneteenth
    assert business_day_on_or_before(date(2026, 6, 19)) == date(2026, 6, 18)
    assert business_day_on_or_before(date(2026, 6, 18)) == date(2026, 6, 18)
    assert business_day_on_or_after(date(2026, 7, 3)) == date(2026, 7, 6)


def test_add_business_days_counts_both_ways() -> None:
    assert add_business_days(date(2024, 3, 27), 2) == date(2024, 4, 1)
    assert add_business_days(date(2024, 11, 25), -3) == date(2024, 11, 20)
    assert add_business_days(date(2024, 5, 25), -4) == date(2024, 5, 21)  # from a Saturday
    assert add_business_days(date(2024, 5, 25), 0) == date(2024, 5, 25)


def test_nth_last_business_day_of_a_month() -> None:
    assert nth_last_business_day(2024, 12, 1) == date(2024, 12, 31)
    assert nth_last_business_day(2024, 12, 3) == date(2024, 12, 27)
    assert nth_last_business_day(2026, 5, 1) == date(2026, 5, 29)
    with pytest.raises(ValueError, match="n must be 1 or more"):
        nth_last_business_day(2024, 12, 0)


def test_business_days_lists_the_open_days_of_a_week_with_a_holiday() -> None:
    assert business_days(date(2026, 6, 15), date(2026, 6, 21)) == [
        date(2026, 6, 15),
        date(2026, 6, 16),
        date(2026, 6, 17),
        date(2026, 6, 18),
    ]


# --- trading days (CME Globex roll: 18:00 New York = 17:00 Chicago) ---------------------------------------


def _ns(local: datetime) -> int:
    return int(local.timestamp()) * 1_000_000_000


@pytest.mark.parametrize("day", [date(2025, 3, 7), date(2025, 3, 9), date(2025, 3, 10), date(2025, 11, 2)])
def test_trading_day_ends_at_18_et_which_is_17_chicago_across_dst(day: date) -> None:
    # 2025-03-09 and 2025-11-02 are the DST switch days; both zones switch together.
    end = trading_day_end(day)
    assert end == _ns(datetime.combine(day, time(18), tzinfo=ZoneInfo("America/New_York")))
    assert end == _ns(datetime.combine(day, time(17), tzinfo=ZoneInfo("America/Chicago")))


def test_a_timestamp_from_18_et_belongs_to_the_next_trading_day() -> None:
    ny = ZoneInfo("America/New_York")
    just_before = _ns(datetime(2025, 3, 9, 17, 59, 59, tzinfo=ny))
    at_roll = _ns(datetime(2025, 3, 9, 18, 0, tzinfo=ny))
    assert trading_day_of(just_before) == date(2025, 3, 9)
    assert trading_day_of(at_roll) == date(2025, 3, 10)
    start, end = trading_day_bounds(at_roll)
    assert (start, end) == (at_roll, trading_day_end(date(2025, 3, 10)))
    # the Sunday of the spring-forward switch: that trading day is 23 hours long
    assert trading_day_bounds(just_before)[1] - trading_day_bounds(just_before)[0] == 23 * 3600 * 10**9

"""Exchange holiday calendars computed by rule: business days for expiry and roll arithmetic.

Two calendars are built in: ``CME`` (also named ``CBOT``, ``NYMEX``, ``COMEX``, ``GLOBEX``: CME Group's US
holidays, the days with no settlement) and ``UK`` (England and Wales bank holidays, which CME's bitcoin
futures respect). Names joined with ``+`` (``"CME+UK"``) give a day that must be a business day
in all of them.

Only the regular, rule-based holidays plus the announced one-off UK bank holidays are known. One-off US
closures (national days of mourning, storms) are not: CME kept its futures markets open on most of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

from ibot.model.errors import IbotError

__all__ = [
    "CALENDAR_NAMES",
    "UnknownCalendarError",
    "add_business_days",
    "business_day_on_or_after",
    "business_day_on_or_before",
    "business_days",
    "easter_sunday",
    "holiday_name",
    "holidays",
    "is_business_day",
    "is_holiday",
    "next_business_day",
    "nth_last_business_day",
    "previous_business_day",
]

MIN_YEAR = 1971  # UK bank holidays took their modern form in 1971; older years are not modelled
MAX_YEAR = 2199

_MON, _TUE, _WED, _THU, _FRI, _SAT, _SUN = range(7)

# Every accepted calendar name and the base calendar it stands for.
_ALIASES: dict[str, str] = {
    "CME": "CME",
    "CBOT": "CME",
    "NYMEX": "CME",
    "COMEX": "CME",
    "GLOBEX": "CME",
    "US": "CME",
    "UK": "UK",
    "LONDON": "UK",
}
CALENDAR_NAMES: tuple[str, ...] = tuple(sorted(_ALIASES))


class UnknownCalendarError(IbotError, ValueError):
    """A calendar name that is not built in."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown holiday calendar {name!r}; known calendars: {', '.join(CALENDAR_NAMES)} "
            "(join several with '+', e.g. 'CME+UK')"
        )
        self.name = name


# --- date rules -----------------------------------------------------------------------------------


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian computus)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) `weekday` of the month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _us_observed(d: date) -> date:
    """Federal rule as CME and NYSE apply it: Saturday -> the Friday before, Sunday -> the Monday after."""
    if d.weekday() == _SAT:
        return d - timedelta(days=1)
    if d.weekday() == _SUN:
        return d + timedelta(days=1)
    return d


def _cme_holidays(year: int) -> dict[date, str]:
    """CME Group US holidays (no settlement) of `year`."""
    out: dict[date, str] = {}
    # New Year's Day: on a Sunday it moves to Monday; on a Saturday it is NOT moved to the Friday before
    # (that Friday closes the previous year: NYSE Rule 7.2, and CME traded and settled on 2021-12-31).
    new_year = date(year, 1, 1)
    if new_year.weekday() == _SUN:
        out[new_year + timedelta(days=1)] = "New Year's Day (observed)"
    elif new_year.weekday() != _SAT:
        out[new_year] = "New Year's Day"
    if year >= 1998:  # exchanges have closed for Martin Luther King Jr. Day since 1998
        out[_nth_weekday(year, 1, _MON, 3)] = "Martin Luther King Jr. Day"
    out[_nth_weekday(year, 2, _MON, 3)] = "Presidents' Day"
    # Good Friday is not a federal holiday but CME does not settle on it (some years have a short morning
    # session in equity and rate futures when the jobs report falls on it; it is still not a business day).
    out[easter_sunday(year) - timedelta(days=2)] = "Good Friday"
    out[_last_weekday(year, 5, _MON)] = "Memorial Day"
    if year >= 2022:  # Juneteenth: federal holiday from 2021, first observed by CME and NYSE in 2022
        j = date(year, 6, 19)
        out[_us_observed(j)] = "Juneteenth" if _us_observed(j) == j else "Juneteenth (observed)"
    july4 = date(year, 7, 4)
    out[_us_observed(july4)] = (
        "Independence Day" if _us_observed(july4) == july4 else "Independence Day (observed)"
    )
    out[_nth_weekday(year, 9, _MON, 1)] = "Labor Day"
    out[_nth_weekday(year, 11, _THU, 4)] = "Thanksgiving Day"
    xmas = date(year, 12, 25)
    out[_us_observed(xmas)] = "Christmas Day" if _us_observed(xmas) == xmas else "Christmas Day (observed)"
    return out


# One-off bank holidays in England and Wales, and the years where a regular one was moved.
_UK_SPECIAL: dict[date, str] = {
    date(1977, 6, 7): "Silver Jubilee of Elizabeth II",
    date(1981, 7, 29): "Wedding of Prince Charles and Lady Diana",
    date(1999, 12, 31): "Millennium Celebrations",
    date(2002, 6, 3): "Golden Jubilee of Elizabeth II",
    date(2011, 4, 29): "Wedding of Prince William and Catherine Middleton",
    date(2012, 6, 5): "Diamond Jubilee of Elizabeth II",
    date(2022, 6, 3): "Platinum Jubilee of Elizabeth II",
    date(2022, 9, 19): "State Funeral of Queen Elizabeth II",
    date(2023, 5, 8): "Coronation of King Charles III",
}
_UK_EARLY_MAY_MOVED = {1995: date(1995, 5, 8), 2020: date(2020, 5, 8)}  # VE Day anniversaries
_UK_SPRING_MOVED = {
    1977: date(1977, 6, 6),
    2002: date(2002, 6, 4),
    2012: date(2012, 6, 4),
    2022: date(2022, 6, 2),
}


def _uk_holidays(year: int) -> dict[date, str]:
    """England and Wales bank holidays of `year` (Banking and Financial Dealings Act 1971, proclamations)."""
    out: dict[date, str] = {}
    new_year = date(year, 1, 1)
    if new_year.weekday() >= _SAT:  # substitute day: the following Monday
        out[new_year + timedelta(days=7 - new_year.weekday())] = "New Year's Day (substitute)"
    else:
        out[new_year] = "New Year's Day"
    easter = easter_sunday(year)
    out[easter - timedelta(days=2)] = "Good Friday"
    out[easter + timedelta(days=1)] = "Easter Monday"
    if year >= 1978:
        out[_UK_EARLY_MAY_MOVED.get(year, _nth_weekday(year, 5, _MON, 1))] = "Early May bank holiday"
    out[_UK_SPRING_MOVED.get(year, _last_weekday(year, 5, _MON))] = "Spring bank holiday"
    out[_last_weekday(year, 8, _MON)] = "Summer bank holiday"
    # Christmas and Boxing Day: a day falling on a weekend is replaced by the next free weekday.
    xmas, boxing = date(year, 12, 25), date(year, 12, 26)
    if xmas.weekday() == _FRI:  # Boxing Day on Saturday -> Monday 28th
        out[xmas] = "Christmas Day"
        out[date(year, 12, 28)] = "Boxing Day (substitute)"
    elif xmas.weekday() == _SAT:  # Monday 27th and Tuesday 28th
        out[date(year, 12, 27)] = "Christmas Day (substitute)"
        out[date(year, 12, 28)] = "Boxing Day (substitute)"
    elif xmas.weekday() == _SUN:  # Boxing Day Monday 26th, Christmas substitute Tuesday 27th
        out[boxing] = "Boxing Day"
        out[date(year, 12, 27)] = "Christmas Day (substitute)"
    else:
        out[xmas] = "Christmas Day"
        out[boxing] = "Boxing Day"
    for d, name in _UK_SPECIAL.items():
        if d.year == year:
            out[d] = name
    return out


_BUILDERS = {"CME": _cme_holidays, "UK": _uk_holidays}


# --- calendar lookup ------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _base_names(calendar: str) -> tuple[str, ...]:
    names: list[str] = []
    for part in calendar.split("+"):
        base = _ALIASES.get(part.strip().upper())
        if base is None:
            raise UnknownCalendarError(calendar)
        if base not in names:
            names.append(base)
    return tuple(names)


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"holiday calendars cover {MIN_YEAR}..{MAX_YEAR}, got year {year}")


@lru_cache(maxsize=1024)
def _year_holidays(base: str, year: int) -> Mapping[date, str]:
    _check_year(year)
    return MappingProxyType(dict(sorted(_BUILDERS[base](year).items())))


def _join(names: str | None, name: str) -> str:
    """Names of one day in several calendars, each once: "Good Friday", "Christmas Day / Boxing Day"."""
    if names is None:
        return name
    return names if name in names.split(" / ") else f"{names} / {name}"


def holidays(year: int, calendar: str = "CME") -> dict[date, str]:
    """Holidays of `year` in `calendar`, in date order, each with its display name (weekday holidays only)."""
    out: dict[date, str] = {}
    for base in _base_names(calendar):
        for d, name in _year_holidays(base, year).items():
            out[d] = _join(out.get(d), name)
    return {d: n for d, n in sorted(out.items()) if d.weekday() < _SAT}


def holiday_name(d: date, calendar: str = "CME") -> str | None:
    """The display name of the holiday on `d`, or None when `d` is not a holiday (weekends are not)."""
    name: str | None = None
    for base in _base_names(calendar):
        found = _year_holidays(base, d.year).get(d)
        if found is not None:
            name = _join(name, found)
    return name


def is_holiday(d: date, calendar: str = "CME") -> bool:
    return any(d in _year_holidays(base, d.year) for base in _base_names(calendar))


def is_business_day(d: date, calendar: str = "CME") -> bool:
    """True on a weekday that is not a holiday of `calendar` (of any part of a '+' joined calendar)."""
    return d.weekday() < _SAT and not is_holiday(d, calendar)


def next_business_day(d: date, calendar: str = "CME") -> date:
    """The first business day strictly after `d`."""
    d += timedelta(days=1)
    while not is_business_day(d, calendar):
        d += timedelta(days=1)
    return d


def previous_business_day(d: date, calendar: str = "CME") -> date:
    """The last business day strictly before `d`."""
    d -= timedelta(days=1)
    while not is_business_day(d, calendar):
        d -= timedelta(days=1)
    return d


def business_day_on_or_before(d: date, calendar: str = "CME") -> date:
    return d if is_business_day(d, calendar) else previous_business_day(d, calendar)


def business_day_on_or_after(d: date, calendar: str = "CME") -> date:
    return d if is_business_day(d, calendar) else next_business_day(d, calendar)


def add_business_days(d: date, n: int, calendar: str = "CME") -> date:
    """The n-th business day after `d` (before it when n < 0); `d` itself need not be a business day.

    n == 0 returns `d` unchanged. "3 business days before the 25th" is ``add_business_days(the_25th, -3)``.
    """
    step = next_business_day if n > 0 else previous_business_day
    for _ in range(abs(n)):
        d = step(d, calendar)
    return d


def nth_last_business_day(year: int, month: int, n: int, calendar: str = "CME") -> date:
    """The n-th last business day of the month (n=1: the last one; COMEX gold ends on the 3rd last)."""
    if n < 1:
        raise ValueError(f"n must be 1 or more, got {n}")
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return add_business_days(first_of_next, -n, calendar)


def business_days(start: date, end: date, calendar: str = "CME") -> list[date]:
    """Business days from `start` to `end`, both included."""
    out: list[date] = []
    d = start
    while d <= end:
        if is_business_day(d, calendar):
            out.append(d)
        d += timedelta(days=1)
    return out


# --- trading days ----------------------------------------------------------------------------------------

# CME Globex trading days roll at 17:00 America/Chicago, which is always 18:00 America/New_York (both zones
# change to and from daylight time on the same dates): a timestamp from 18:00 ET on belongs to the next day.
TRADING_DAY_ZONE = ZoneInfo("America/New_York")
TRADING_DAY_ROLL = time(18, 0)
_NS = 1_000_000_000


def trading_day_end(day: date, zone: ZoneInfo = TRADING_DAY_ZONE, roll: time = TRADING_DAY_ROLL) -> int:
    """Nanoseconds UTC at which the trading day named `day` ends: `roll` local time on `day` (DST-aware)."""
    return int(datetime.combine(day, roll, tzinfo=zone).timestamp()) * _NS


def trading_day_of(ts_ns: int, zone: ZoneInfo = TRADING_DAY_ZONE, roll: time = TRADING_DAY_ROLL) -> date:
    """The trading day a timestamp belongs to (from `roll` on, the next calendar day's)."""
    local = datetime.fromtimestamp(ts_ns // _NS, zone)
    return local.date() + timedelta(days=1) if local.time() >= roll else local.date()


def trading_day_bounds(ts_ns: int) -> tuple[int, int]:
    """[start, end) in ns UTC of the trading day holding `ts_ns` (18:00 ET the evening before to 18:00 ET)."""
    day = trading_day_of(ts_ns)
    return trading_day_end(day - timedelta(days=1)), trading_day_end(day)

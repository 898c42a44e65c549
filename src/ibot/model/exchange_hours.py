"""Exchange holiday schedules by rule: which days a product group does not trade, halts early or closes early.

A schedule is a list of *special days* per product group; every other weekday trades its regular hours. Three
kinds of special day:

- ``CLOSED``: no trading at all. On CME Globex the session that would have closed that day does not run and
  Globex reopens at its usual evening time on the holiday for the next trading day (New Year's Day, Good
  Friday, Christmas Day).
- ``ABBREVIATED``: Globex opens the evening before as usual and halts early on the holiday; there is no
  trading day dated on the holiday: what trades in the abbreviated session belongs to the *next* trading day
  (CME's trade-date rule), whose session therefore starts the evening before the holiday and has a gap in it.
- ``EARLY_CLOSE``: a trading day whose session ends early (day after Thanksgiving, Christmas Eve, ...).

Times are US Eastern (``America/New_York``) wall-clock times. CME publishes its schedules in Central time;
CT and ET change to and from daylight time on the same dates, so ET = CT + 1 hour on every day.

Sources (checked for 2024-2026; the rules reproduce them, the exceptions are listed with their source):

- CME Group holiday calendar and trading-hours notices, as relayed by data vendors: DTN IQFeed "Presidents'
  Day 2023" and "July 4th 2024 Holiday Exchange Schedule" (Equity and Interest Rate halt at noon CT, Energy
  and Metals 1:30 p.m. CT, FX and Cryptocurrency 4:00 p.m. CT, all resume 5:00 p.m. CT for the next trade
  date; July 3, 2024: Equities early close 12:15 p.m. CT, the other groups regular), EdgeClear "2026 CME
  Globex Trading Schedule" (MLK 2026: Equities halt 12:00 CT, Energy and Metals 13:30 CT, Crypto 16:00 CT,
  trade day Tuesday January 20), ForexLive "CME adjusted trading hours ... Thanksgiving 2024" (equity halt
  12:00 CT on Thanksgiving Day); day after Thanksgiving and Christmas Eve early closes: equity 12:15 CT, NYMEX
  and COMEX 12:45 CT (1:45 p.m. ET), e.g. RanSquawk's 2013-12-24 schedule, FXCG's 2018 Thanksgiving table.
- NYSE Group, "2025, 2026 and 2027 Holiday and Early Closings Calendar" (2024-11-08) and the NYSE closure for
  the National Day of Mourning for President Carter on 2025-01-09 (announced 2024-12-30).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from ibot.model.calendar import holidays

__all__ = [
    "DayKind",
    "HoursGroup",
    "SpecialDay",
    "futures_hours_group",
    "special_day",
    "special_days",
]

_MON, _TUE, _WED, _THU, _FRI, _SAT, _SUN = range(7)


class DayKind(StrEnum):
    CLOSED = "closed"
    ABBREVIATED = "abbreviated"  # early halt; the session's trades belong to the next trading day
    EARLY_CLOSE = "early_close"  # a trading day that closes early


class HoursGroup(StrEnum):
    """A product group with its own holiday hours."""

    CME_EQUITY_INDEX = "cme_equity_index"  # MES, MNQ, M2K (CME), MYM (CBOT)
    CME_ENERGY = "cme_energy"  # NYMEX: MCL
    CME_METALS = "cme_metals"  # COMEX: MGC
    CME_CRYPTO = "cme_crypto"  # CME: MBT
    NYSE = "nyse"  # US listed stocks, regular trading hours


@dataclass(frozen=True, slots=True)
class SpecialDay:
    """A day off the regular schedule; `close` is the ET halt or close time (None when CLOSED)."""

    day: date
    kind: DayKind
    close: time | None
    name: str


# Per group: (halt on an abbreviated holiday, early close after Thanksgiving, early close on Christmas Eve,
# early close on July 3 or None), ET. The 2022 change: CME moved energy, metals and crypto holiday halts
# from 12:00 CT to 13:30 CT (energy, metals) and 16:00 CT (crypto) from 2022 on.
_CME_RULES: dict[HoursGroup, tuple[time, time, time, time | None]] = {
    # Equity index: halt 12:00 CT; day after Thanksgiving, Christmas Eve, July 3: close 12:15 CT.
    HoursGroup.CME_EQUITY_INDEX: (time(13, 0), time(13, 15), time(13, 15), time(13, 15)),
    # Energy and metals: halt 13:30 CT; day after Thanksgiving and Christmas Eve 12:45 CT; July 3 regular.
    HoursGroup.CME_ENERGY: (time(14, 30), time(13, 45), time(13, 45), None),
    HoursGroup.CME_METALS: (time(14, 30), time(13, 45), time(13, 45), None),
    # Crypto: the holiday session runs to the usual 16:00 CT halt (and belongs to the next trade date); day
    # after Thanksgiving 12:45 CT, Christmas Eve 12:15 CT; July 3 regular.
    HoursGroup.CME_CRYPTO: (time(17, 0), time(13, 45), time(13, 15), None),
}
_CME_RULES_BEFORE_2022: dict[HoursGroup, tuple[time, time, time, time | None]] = {
    HoursGroup.CME_EQUITY_INDEX: _CME_RULES[HoursGroup.CME_EQUITY_INDEX],
    HoursGroup.CME_ENERGY: (time(13, 0), time(13, 45), time(13, 45), None),
    HoursGroup.CME_METALS: (time(13, 0), time(13, 45), time(13, 45), None),
    HoursGroup.CME_CRYPTO: (time(13, 0), time(13, 15), time(13, 15), time(13, 15)),
}

# Days the exchange published off its rules, per group (None as the time: closed all day).
_EXCEPTIONS: dict[HoursGroup, dict[date, tuple[DayKind, time | None, str]]] = {
    HoursGroup.CME_EQUITY_INDEX: {
        # Good Friday with the monthly jobs report (8:30 a.m. ET): equity index futures trade the Thursday
        # evening session until 8:15 a.m. CT (9:15 a.m. ET) for the next trade date; energy, metals closed.
        # 2021-04-02 and 2023-04-07: MarketWatch reports "Futures trading will close at 9:15 a.m. Eastern";
        # 2026-04-03: the jobs report again falls on Good Friday and CME follows the same schedule.
        date(2021, 4, 2): (DayKind.ABBREVIATED, time(9, 15), "Good Friday (jobs report)"),
        date(2023, 4, 7): (DayKind.ABBREVIATED, time(9, 15), "Good Friday (jobs report)"),
        date(2026, 4, 3): (DayKind.ABBREVIATED, time(9, 15), "Good Friday (jobs report)"),
        # National Day of Mourning for President Carter: CME Group press release 2024-12-30, "U.S. equity
        # markets will be open until 8:30 a.m. CT on January 9" (energy, metals, crypto: normal hours).
        date(2025, 1, 9): (DayKind.EARLY_CLOSE, time(9, 30), "National Day of Mourning (President Carter)"),
    },
    HoursGroup.NYSE: {
        # NYSE Group closed its markets for the National Day of Mourning (announced 2024-12-30).
        date(2025, 1, 9): (DayKind.CLOSED, None, "National Day of Mourning (President Carter)"),
    },
}

# CME holidays with no Globex trading; the others are abbreviated sessions.
_CME_CLOSED_NAMES = ("New Year's Day", "Good Friday", "Christmas Day")
# Thanksgiving Day halts every CME Globex group at 12:00 CT (13:00 ET), energy, metals and crypto included:
# ForexLive, "CME adjusted trading hours for various products during Thanksgiving holiday 2024" (equity,
# cryptocurrency, interest rate, NYMEX & COMEX products: "Trading halted at 12:00 PM CT").
_THANKSGIVING_HALT = time(13, 0)


def _day_after_thanksgiving(year: int) -> date:
    first = date(year, 11, 1)
    thanksgiving = first + timedelta(days=(_THU - first.weekday()) % 7 + 21)
    return thanksgiving + timedelta(days=1)


def _early_closes(year: int, official: Mapping[date, str]) -> list[tuple[date, str]]:
    """The early-close days common to CME and NYSE: July 3 when Independence Day is on Tuesday..Friday (so
    July 3 is a weekday before it), the day after Thanksgiving, and Christmas Eve when a business day."""
    out: list[tuple[date, str]] = []
    july3 = date(year, 7, 3)
    if july3.weekday() <= _THU:
        out.append((july3, "Independence Day eve"))
    out.append((_day_after_thanksgiving(year), "Day after Thanksgiving"))
    eve = date(year, 12, 24)
    if eve.weekday() < _SAT and eve not in official:
        out.append((eve, "Christmas Eve"))
    return out


def _cme_days(group: HoursGroup, year: int) -> dict[date, SpecialDay]:
    halt, after_thanksgiving, christmas_eve, july3 = (_CME_RULES if year >= 2022 else _CME_RULES_BEFORE_2022)[
        group
    ]
    official = holidays(year, "CME")
    out: dict[date, SpecialDay] = {}
    for d, name in official.items():
        if name.startswith(_CME_CLOSED_NAMES):
            out[d] = SpecialDay(d, DayKind.CLOSED, None, name)
        elif name == "Thanksgiving Day":
            out[d] = SpecialDay(d, DayKind.ABBREVIATED, min(halt, _THANKSGIVING_HALT), name)
        else:
            out[d] = SpecialDay(d, DayKind.ABBREVIATED, halt, name)
    closes = {
        "Independence Day eve": july3,
        "Day after Thanksgiving": after_thanksgiving,
        "Christmas Eve": christmas_eve,
    }
    for d, name in _early_closes(year, official):
        close = closes[name]
        if close is not None:
            out[d] = SpecialDay(d, DayKind.EARLY_CLOSE, close, name)
    return out


def _nyse_days(year: int) -> dict[date, SpecialDay]:
    # NYSE Rule 7.2 holidays are CME's US holiday list (New Year's Day on a Saturday is not moved to the
    # Friday before; Juneteenth from 2022). Early closes are at 1:00 p.m. ET.
    official = holidays(year, "CME")
    out = {d: SpecialDay(d, DayKind.CLOSED, None, name) for d, name in official.items()}
    for d, name in _early_closes(year, official):
        out[d] = SpecialDay(d, DayKind.EARLY_CLOSE, time(13, 0), name)
    return out


@lru_cache(maxsize=512)
def special_days(group: HoursGroup, year: int) -> Mapping[date, SpecialDay]:
    """The special days of `group` in `year`, in date order (weekdays only: weekends never trade)."""
    group = HoursGroup(group)
    days = _nyse_days(year) if group is HoursGroup.NYSE else _cme_days(group, year)
    for d, (kind, close, name) in _EXCEPTIONS.get(group, {}).items():
        if d.year == year:
            days[d] = SpecialDay(d, kind, close, name)
    return MappingProxyType(dict(sorted(days.items())))


def special_day(group: HoursGroup, d: date) -> SpecialDay | None:
    """The special day `d` of `group`, or None when `d` trades its regular hours (or is a weekend)."""
    return special_days(group, d.year).get(d)


# CME Group crypto futures (bitcoin, ether and their micro contracts) keep crypto hours.
_CRYPTO_SYMBOLS = frozenset({"BTC", "MBT", "ETH", "MET", "BFF", "MIB", "MEI", "BRR", "ETHUSDRR"})


def futures_hours_group(exchange: str, symbol: str) -> HoursGroup:
    """The holiday-hours group of a CME Group future by its listing exchange and product symbol: NYMEX
    energy, COMEX metals, CME crypto, and equity index for the rest (CME and CBOT equity index products)."""
    venue = exchange.strip().upper()
    if venue == "NYMEX":
        return HoursGroup.CME_ENERGY
    if venue == "COMEX":
        return HoursGroup.CME_METALS
    if symbol.strip().upper() in _CRYPTO_SYMBOLS:
        return HoursGroup.CME_CRYPTO
    return HoursGroup.CME_EQUITY_INDEX

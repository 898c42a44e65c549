"""Trading-session hours: when a product trades, and which trading day a timestamp belongs to.

All times are exchange-local wall-clock times (America/New_York for the sessions defined here) turned into
UTC nanoseconds with zoneinfo, so daylight-saving changes are handled by the time-zone database.

Holidays follow the exchange's published schedule by rule (`ibot.model.exchange_hours`): a session with an
`hours` group knows which days are closed, which close early and which (CME's abbreviated holiday sessions)
trade for the next trading day.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from ibot.model.errors import IbotError
from ibot.model.exchange_hours import DayKind, HoursGroup, SpecialDay, futures_hours_group, special_day
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import NS_PER_SECOND

_ONE_DAY = timedelta(days=1)
_ET = "America/New_York"
_MAX_RUN = 14  # no run of non-trading days is longer (weekend + holidays); bounds every calendar walk


class NoSessionError(IbotError, ValueError):
    """A date on which the product does not trade (weekend or listed holiday)."""


@dataclass(frozen=True, slots=True)
class _Day:
    """What a calendar day is for a session: a trading day with its segments, an abbreviated holiday whose
    one segment belongs to `trade_date`, or a day without trading."""

    trading: bool
    segments: tuple[tuple[int, int], ...]  # trading day: every [open, close) it trades, in time order
    trade_date: date  # the trading day the day's own trades belong to (itself unless abbreviated)
    special: SpecialDay | None


@dataclass(frozen=True, slots=True)
class TradingSession:
    """Regular trading hours of a product class, in exchange-local time, with its holiday schedule.

    When `open_time` is not before `close_time` the session is *overnight*: the session of trading day D opens
    at `open_time` on the calendar day before D and closes at `close_time` on D (CME Globex: Monday's session
    opens Sunday 18:00 ET). `trading_weekdays` are the weekdays (Mon=0) of trading days; `holidays` are
    extra days without a session. `hours` names the exchange holiday schedule (`HoursGroup`; its times are
    US Eastern, so it needs tz_name America/New_York): closed days, early closes, and abbreviated holiday
    sessions, whose trades belong to the next trading day (that day's session then opens the evening before
    the holiday and has a gap from the holiday halt to the next open).
    """

    name: str
    open_time: time
    close_time: time
    tz_name: str = _ET
    trading_weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    holidays: frozenset[date] = frozenset()
    hours: HoursGroup | None = None
    _tz: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.hours is not None and self.tz_name != _ET:
            raise ValueError(f"{self.name}: holiday hours are US Eastern times; tz_name must be {_ET}")
        object.__setattr__(self, "_tz", ZoneInfo(self.tz_name))

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def overnight(self) -> bool:
        """True when a session opens on the calendar day before its trading day (futures on Globex)."""
        return self.open_time >= self.close_time

    # Calendar -----------------------------------------------------------------------------------------------
    def special_day(self, day: date) -> SpecialDay | None:
        """The holiday-schedule entry of `day` (closed, abbreviated or early close), None on a regular day."""
        if day in self.holidays:
            return SpecialDay(day, DayKind.CLOSED, None, "holiday")
        if self.hours is None:
            return None
        return special_day(self.hours, day)

    def is_trading_day(self, day: date) -> bool:
        return _day(self, day).trading

    def session_date(self, ts_ns: int) -> date:
        """The trading day `ts_ns` belongs to: for an overnight session, at or after the open time it is
        already the next calendar day's session (CME: a trade at 18:05 ET Tuesday belongs to Wednesday), and
        a time on an abbreviated holiday belongs to the next trading day (CME's trade-date rule: a trade at
        10:00 ET on Martin Luther King Jr. Day belongs to Tuesday).

        Otherwise a pure wall-clock rule: a timestamp outside any session (a weekend, a closed holiday) still
        maps to a date by it.
        """
        return _day(self, self._wall_date(ts_ns)).trade_date

    def _wall_date(self, ts_ns: int) -> date:
        local = datetime.fromtimestamp(ts_ns // NS_PER_SECOND, tz=self._tz)
        day = local.date()
        if self.overnight and local.time() >= self.open_time:
            day += _ONE_DAY
        return day

    def _clock(self, day: date, close: time) -> tuple[int, int]:
        """The clock-rule [open, close) of calendar day `day`'s slot, closing at `close`."""
        open_day = day - _ONE_DAY if self.overnight else day
        opened = datetime.combine(open_day, self.open_time, tzinfo=self._tz)
        closed = datetime.combine(day, close, tzinfo=self._tz)
        return int(opened.timestamp()) * NS_PER_SECOND, int(closed.timestamp()) * NS_PER_SECOND

    def nominal_open_close(self, day: date) -> tuple[int, int]:
        """(open, close) in UTC ns of trading day `day` as scheduled (early closes, and the earlier open of a
        day that takes an abbreviated holiday session); for a day that does not trade, what it would have by
        the clock rule."""
        info = _day(self, day)
        if info.trading:
            return info.segments[0][0], info.segments[-1][1]
        return self._clock(day, self.close_time)

    def session_open_close(self, day: date) -> tuple[int, int]:
        """(open, close) in UTC ns of trading day `day`'s session; NoSessionError if it does not trade."""
        info = _day(self, day)
        if not info.trading:
            special = info.special
            if day.weekday() not in self.trading_weekdays:
                why = f"a {day.strftime('%A')}"
            elif special is None or special.name == "holiday":
                why = "a holiday"
            elif special.kind is DayKind.ABBREVIATED:
                why = f"{special.name}: its session trades for {info.trade_date.isoformat()}"
            else:
                why = f"a holiday: {special.name}"
            raise NoSessionError(f"{self.name}: no session on {day.isoformat()} ({why})")
        return info.segments[0][0], info.segments[-1][1]

    def session_segments(self, day: date) -> tuple[tuple[int, int], ...]:
        """Every [open, close) in UTC ns that trades for trading day `day`, in time order: one on a regular
        day, more when an abbreviated holiday session belongs to it; empty when `day` does not trade."""
        return _day(self, day).segments

    def is_open(self, ts_ns: int) -> bool:
        """True while the market is in session at `ts_ns` (False in the daily halt, weekends, holidays and
        after a holiday halt or early close)."""
        return self.open_since(ts_ns) is not None

    def open_since(self, ts_ns: int) -> int | None:
        """When the trading that is going on at `ts_ns` began (UTC ns): the session's open, or the reopening
        after a holiday halt on a day with an abbreviated holiday session; None when closed at `ts_ns`."""
        for opened, closed in _day(self, self.session_date(ts_ns)).segments:
            if opened <= ts_ns < closed:
                return opened
        return None

    def trading_days(self, start: date, count: int) -> list[date]:
        """The first `count` trading days on or after `start`."""
        days: list[date] = []
        day = start
        while len(days) < count:
            if self.is_trading_day(day):
                days.append(day)
            day += _ONE_DAY
        return days

    def sessions(self, start: date, end: date) -> Iterator[tuple[date, int, int]]:
        """(trading day, open ns, close ns) for every trading day in [start, end]."""
        day = start
        while day <= end:
            info = _day(self, day)
            if info.trading:
                yield day, info.segments[0][0], info.segments[-1][1]
            day += _ONE_DAY

    def next_open(self, ts_ns: int) -> int:
        """The first time (UTC ns) at or after `ts_ns` at which trading starts: a session's open, or the
        reopening after a holiday halt."""
        day = self.session_date(ts_ns)
        for _ in range(370):  # a year of holidays cannot hide every session
            for opened, _closed in _day(self, day).segments:
                if opened >= ts_ns:
                    return opened
            day += _ONE_DAY
        raise NoSessionError(f"{self.name}: no session within a year after ts={ts_ns}")

    def nominal_windows(
        self, ts_ns: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Vectorized `nominal_open_close(session_date(t))` for each t: (open ns, close ns) arrays.

        Per calendar year the day boundaries and each day's (open, close) are computed once and cached; rows
        are assigned with a binary search, so it costs O(rows log days) once the years are built.
        """
        if len(ts_ns) == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty.copy()
        first = self._wall_date(int(ts_ns.min())).year
        last = self._wall_date(int(ts_ns.max())).year
        tables = [_year_table(self, year) for year in range(first, last + 1)]
        rolls = np.concatenate([t[0] for t in tables])
        opens = np.concatenate([t[1] for t in tables])
        closes = np.concatenate([t[2] for t in tables])
        idx = np.searchsorted(rolls, ts_ns, side="right") - 1
        return opens[idx], closes[idx]


@lru_cache(maxsize=16_384)
def _day(session: TradingSession, day: date) -> _Day:
    """The schedule of calendar day `day` (cached: scalar lookups hit it once per day)."""
    if not _slot_trades(session, day):
        special = session.special_day(day)
        if special is not None and special.kind is DayKind.ABBREVIATED and _weekday(session, day):
            return _Day(False, (), _next_trading(session, day), special)
        return _Day(False, (), day, special)
    special = session.special_day(day)
    segments = [session._clock(day, special.close if special and special.close else session.close_time)]
    back = day - _ONE_DAY
    for _ in range(_MAX_RUN):  # abbreviated holiday sessions just before `day` trade for it
        if _slot_trades(session, back):
            break
        before = session.special_day(back)
        if before is not None and before.kind is DayKind.ABBREVIATED and _weekday(session, back):
            assert before.close is not None
            segments.insert(0, session._clock(back, before.close))
        back -= _ONE_DAY
    return _Day(True, tuple(segments), day, special)


def _weekday(session: TradingSession, day: date) -> bool:
    return day.weekday() in session.trading_weekdays and day not in session.holidays


def _slot_trades(session: TradingSession, day: date) -> bool:
    """True when `day` is a trading day: a trading weekday that is neither closed nor abbreviated."""
    if not _weekday(session, day):
        return False
    special = session.special_day(day)
    return special is None or special.kind is DayKind.EARLY_CLOSE


def _next_trading(session: TradingSession, day: date) -> date:
    nxt = day + _ONE_DAY
    for _ in range(_MAX_RUN):
        if _slot_trades(session, nxt):
            return nxt
        nxt += _ONE_DAY
    raise NoSessionError(f"{session.name}: no trading day within {_MAX_RUN} days after {day.isoformat()}")


@lru_cache(maxsize=256)
def _year_table(
    session: TradingSession, year: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For every calendar day D of `year`: when D's wall-clock session date starts (the evening before at the
    open time for an overnight session, local midnight otherwise), and the (open, close) of the trading day
    D's timestamps belong to, as `nominal_open_close(session_date(t))` gives them."""
    start = date(year, 1, 1)
    n = (date(year + 1, 1, 1) - start).days
    rolls = np.empty(n, dtype=np.int64)
    opens = np.empty(n, dtype=np.int64)
    closes = np.empty(n, dtype=np.int64)
    for i in range(n):
        day = start + timedelta(days=i)
        if session.overnight:
            roll = datetime.combine(day - _ONE_DAY, session.open_time, tzinfo=session.tz)
        else:
            roll = datetime.combine(day, time(0), tzinfo=session.tz)
        rolls[i] = int(roll.timestamp()) * NS_PER_SECOND
        opens[i], closes[i] = session.nominal_open_close(_day(session, day).trade_date)
    for array in (rolls, opens, closes):
        array.flags.writeable = False
    return rolls, opens, closes


# CME Globex, Sunday-Friday 18:00-17:00 ET with a daily 60-minute trading halt 17:00-18:00 ET (CME Group
# trading hours; the 16:15-16:30 ET equity halt ended in 2021), one session per holiday-hours group.
CME_GLOBEX_EQUITY_INDEX = TradingSession(
    "CME Globex", open_time=time(18, 0), close_time=time(17, 0), hours=HoursGroup.CME_EQUITY_INDEX
)
CME_GLOBEX_ENERGY = TradingSession(
    "CME Globex energy", open_time=time(18, 0), close_time=time(17, 0), hours=HoursGroup.CME_ENERGY
)
CME_GLOBEX_METALS = TradingSession(
    "CME Globex metals", open_time=time(18, 0), close_time=time(17, 0), hours=HoursGroup.CME_METALS
)
CME_GLOBEX_CRYPTO = TradingSession(
    "CME Globex crypto", open_time=time(18, 0), close_time=time(17, 0), hours=HoursGroup.CME_CRYPTO
)
# The default Globex session (most catalog futures are equity index products).
CME_GLOBEX = CME_GLOBEX_EQUITY_INDEX

# US listed stocks, regular trading hours 09:30-16:00 ET (NYSE/Nasdaq core session), NYSE holidays and early
# closes.
US_EQUITY_RTH = TradingSession(
    "US equities RTH", open_time=time(9, 30), close_time=time(16, 0), hours=HoursGroup.NYSE
)

_GLOBEX_BY_GROUP = {
    HoursGroup.CME_EQUITY_INDEX: CME_GLOBEX_EQUITY_INDEX,
    HoursGroup.CME_ENERGY: CME_GLOBEX_ENERGY,
    HoursGroup.CME_METALS: CME_GLOBEX_METALS,
    HoursGroup.CME_CRYPTO: CME_GLOBEX_CRYPTO,
}


def session_for(instrument: Instrument) -> TradingSession:
    """The default session of an instrument: regular trading hours for stocks; for futures (the catalog is
    CME Group products) Globex hours with the holiday schedule of the product's group, by its listing
    exchange and symbol (NYMEX energy, COMEX metals, CME crypto, CME/CBOT equity index)."""
    if instrument.sec_type is SecType.STK:
        return US_EQUITY_RTH
    symbol = instrument.trading_class or instrument.symbol
    return _GLOBEX_BY_GROUP[futures_hours_group(instrument.exchange, symbol)]

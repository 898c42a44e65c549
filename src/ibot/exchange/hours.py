"""Trading hours: when a product trades, which trading day a timestamp belongs to, and how IB lists the hours.

One class, `TradingHours`, for every layer: the data layer (bars, synthetic data), the risk checks, the live
runner, the backtester and the IB adapter ask it for a trading day's session (its open, its close, the
segments that trade for it); the simulator asks it for full and regular hours as epoch-second segments, masks
and IB's tradingHours / liquidHours texts. Both views are computed by one rule (`_segments`), so they cannot
disagree.

Times are exchange-local wall-clock times turned into UTC with zoneinfo, so daylight-saving changes are
handled by the time-zone database. Holidays follow the exchange's published schedule by rule
(`ibot.model.exchange_hours`): hours with a holiday `group` know which days are closed, which close early and
which (CME's abbreviated holiday sessions) trade for the next trading day.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from ibot.model.errors import IbotError
from ibot.model.exchange_hours import DayKind, HoursGroup, SpecialDay, futures_hours_group, special_day
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import NS_PER_SECOND

DAY = 86_400
_ONE_DAY = timedelta(days=1)
_ET = "America/New_York"  # the holiday schedules' (ibot.model.exchange_hours) time zone
_ET_ZONE = ZoneInfo(_ET)
_MAX_RUN = 14  # no run of non-trading days is longer (weekend + holidays); bounds every calendar walk
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Segments = tuple[tuple[int, int], ...]


class NoSessionError(IbotError, ValueError):
    """A date on which the product has no trading session (weekend or listed holiday)."""


@dataclass(frozen=True, slots=True)
class _Day:
    """What a calendar day is: a trading day with its segments (UTC ns), an abbreviated holiday whose one
    segment belongs to `trade_date`, or a day without trading."""

    trading: bool
    segments: tuple[tuple[int, int], ...]  # trading day: every [open, close) it trades, in time order
    trade_date: date  # the trading day the day's own trades belong to (itself unless abbreviated)
    special: SpecialDay | None


@dataclass(frozen=True, slots=True)
class TradingHours:
    """The trading hours of a product class, in exchange-local time, with its holiday schedule.

    When `open_time` is not before `close_time` the hours are *overnight*: the session of trading day D opens
    at `open_time` on the calendar day before D and closes at `close_time` on D (CME Globex: Monday's session
    opens Sunday 18:00 ET). `trading_weekdays` are the weekdays (Mon=0) of trading days; `holidays` are
    extra days without a session. `group` names the exchange holiday schedule (`HoursGroup`; its times are
    US Eastern, so it needs tz_name America/New_York): a CLOSED day has no session; an ABBREVIATED holiday
    halts early and its trades belong to the next trading day, whose session then has two segments (the
    holiday's, opened the evening before it, and its own) and no regular hours on the holiday; an EARLY_CLOSE
    day ends its session and its regular hours at the early close, except that extended hours run on for
    `early_close_extended` after it (US stocks: regular 09:30-13:00 ET and extended hours to 17:00 ET, as IB
    lists them).

    `rth_open` / `rth_close` are the regular trading hours inside the session (CME Globex: 08:30-15:00 CT);
    without them the whole session is regular. `listing_tz_name` is the zone IB lists the hours in (contract
    details' timeZoneId and its tradingHours text; US/Central for Globex), `tz_name` when not given.

    Two views of the same rule: trading-day methods in UTC nanoseconds (`session_date`, `session_open_close`,
    `is_open`, `nominal_windows`, ...) and the simulator's epoch-second methods with a full / regular hours
    flag (`segments`, `window`, `windows`, `mask`, `state_at`, `describe`, ...).
    """

    name: str
    open_time: time
    close_time: time
    tz_name: str = _ET
    trading_weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    holidays: frozenset[date] = frozenset()
    group: HoursGroup | None = None
    rth_open: time | None = None
    rth_close: time | None = None
    early_close_extended: timedelta = timedelta(0)
    listing_tz_name: str | None = None
    _tz: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)
    _listing_tz: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.group is not None and self.tz_name != _ET:
            raise ValueError(f"{self.name}: holiday hours are US Eastern times; tz_name must be {_ET}")
        if (self.rth_open is None) != (self.rth_close is None):
            raise ValueError(f"{self.name}: regular hours need both rth_open and rth_close")
        object.__setattr__(self, "_tz", ZoneInfo(self.tz_name))
        object.__setattr__(self, "_listing_tz", ZoneInfo(self.listing_tz_name or self.tz_name))

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def listing_tz(self) -> ZoneInfo:
        """The zone IB lists these hours in (contract details, tradingHours text, historical bar dates)."""
        return self._listing_tz

    @property
    def listing_tz_label(self) -> str:
        """The name of `listing_tz` as IB writes it (contract details' timeZoneId)."""
        return self.listing_tz_name or self.tz_name

    @property
    def overnight(self) -> bool:
        """True when a session opens on the calendar day before its trading day (futures on Globex)."""
        return self.open_time >= self.close_time

    # Calendar -----------------------------------------------------------------------------------------------
    def special_day(self, day: date) -> SpecialDay | None:
        """The holiday-schedule entry of `day` (closed, abbreviated or early close), None on a regular day."""
        if day in self.holidays:
            return SpecialDay(day, DayKind.CLOSED, None, "holiday")
        if self.group is None:
            return None
        return special_day(self.group, day)

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
        """The clock-rule [open, close) in UTC ns of calendar day `day`'s slot, closing at `close`."""
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
        tables = [_nominal_year(self, year) for year in range(first, last + 1)]
        rolls = np.concatenate([t[0] for t in tables])
        opens = np.concatenate([t[1] for t in tables])
        closes = np.concatenate([t[2] for t in tables])
        idx = np.searchsorted(rolls, ts_ns, side="right") - 1
        return opens[idx], closes[idx]

    # Full and regular hours, in epoch seconds (the simulator's view) ----------------------------------------
    def is_trade_date(self, d: date) -> bool:
        """A day whose own session trades: a trading weekday neither closed nor an abbreviated holiday."""
        return bool(_segments(self, d, False))

    def segments(self, d: date, rth: bool) -> Segments:
        """Epoch seconds [open, close) of every stretch that trades for trade date `d` (full or regular
        hours), in time order; empty when `d` has none (not a trade date, or no regular hours that day)."""
        return _segments(self, d, rth)

    def window(self, d: date, rth: bool) -> tuple[int, int]:
        """Epoch seconds (first open, last close) of trade date `d` (full or regular hours)."""
        segs = _segments(self, d, rth)
        if not segs:
            raise NoSessionError(f"{self.name}: no {'regular ' if rth else ''}session on {d.isoformat()}")
        return segs[0][0], segs[-1][1]

    def windows(self, start_s: int, end_s: int, rth: bool) -> list[tuple[date, int, int]]:
        """(trade date, first open, last close) of each trade date whose hours overlap [start_s, end_s), in
        time order (a trade date with two segments counts from its first open, gap included)."""
        table = _table(self, start_s, end_s, rth)
        lo = int(np.searchsorted(table.day_closes, start_s, side="right"))
        hi = int(np.searchsorted(table.day_opens, end_s, side="left"))
        return [
            (date.fromordinal(day), a, b)
            for day, a, b in zip(
                table.days[lo:hi].tolist(),
                table.day_opens[lo:hi].tolist(),
                table.day_closes[lo:hi].tolist(),
                strict=True,
            )
        ]

    def state_at(self, second: int) -> tuple[bool, int]:
        """(True, close of the segment trading at `second`) or (False, the next segment's open) in full hours:
        when a subscription or an order meets a closed market, the simulator says until when (a weekend, a
        holiday, the daily halt, an abbreviated holiday's halt). Epoch seconds; a segment is [open, close)."""
        table = _table(self, second, second + (_MAX_RUN + 1) * DAY, False)
        i = int(np.searchsorted(table.closes, second, side="right"))  # the first segment closing after it
        if i >= len(table.opens):  # beyond the table (it covers _MAX_RUN days ahead): never in practice
            return False, second + (_MAX_RUN + 1) * DAY
        a, b = int(table.opens[i]), int(table.closes[i])
        return (True, b) if a <= second else (False, a)

    def last_close(self, second: int) -> int | None:
        """The close of the latest segment that ended at or before `second` (within `_MAX_RUN` days)."""
        table = _table(self, second - (_MAX_RUN + 1) * DAY, second + 1, False)
        i = int(np.searchsorted(table.closes, second, side="right")) - 1
        return int(table.closes[i]) if i >= 0 else None

    def mask(self, start_s: int, end_s: int, rth: bool) -> BoolArray:
        """One bool per second of [start_s, end_s): inside a session segment (out of holiday halts, after
        early closes and between sessions it is False). A binary search over the cached segment table, then
        one slice per segment."""
        m = np.zeros(max(end_s - start_s, 0), dtype=np.bool_)
        if end_s <= start_s:
            return m
        table = _table(self, start_s, end_s, rth)
        lo = int(np.searchsorted(table.closes, start_s, side="right"))
        hi = int(np.searchsorted(table.opens, end_s, side="left"))
        for a, b in zip(table.opens[lo:hi].tolist(), table.closes[lo:hi].tolist(), strict=True):
            m[max(a, start_s) - start_s : min(b, end_s) - start_s] = True
        return m

    def describe(self, start: date, days: int, rth: bool) -> str:
        """IB's tradingHours (rth False) / liquidHours (rth True) text for the calendar days from `start`:
        ``20251126:1700-20251127:1200;20251127:1700-20251128:1215;20251129:CLOSED;...``.

        Each segment is written ``YYYYMMDD:HHMM-YYYYMMDD:HHMM`` in the listing time zone, dated by its open; a
        trade date with two segments (an abbreviated holiday session before its own) writes two. The trade
        dates listed are those of the days, and any later one whose full session opens on one of them
        (Monday's Globex session opens on Sunday); the same trade dates are listed in both texts. A day with
        nothing listed on it is ``YYYYMMDD:CLOSED``: in tradingHours a day that is not a trade date and that
        no segment opens on (a Saturday, Good Friday; not Christmas Day, on whose evening Globex reopens), in
        liquidHours any day without regular hours (weekends, holidays, an abbreviated holiday, a trade date
        closing before its regular open). IB's own texts key segments the same way, e.g. a stock's
        ``20241128:CLOSED;20241129:0400-20241129:1700`` and a Globex ``20240720:CLOSED;20240721:1700-...``.
        """
        tz = self.listing_tz
        days_listed = [start + timedelta(days=i) for i in range(days)]
        first, last = days_listed[0], days_listed[-1]
        trade_dates: list[date] = []
        d = first
        while d <= last + timedelta(days=_MAX_RUN):
            segs = _segments(self, d, False)
            if segs and (d <= last or datetime.fromtimestamp(segs[0][0], tz).date() <= last):
                trade_dates.append(d)
            d += _ONE_DAY
        entries: list[tuple[date, int, str]] = []
        for d in trade_dates:
            segs = _segments(self, d, rth)
            if rth and not segs and first <= d <= last:
                entries.append((d, 0, f"{d:%Y%m%d}:CLOSED"))
            for a, b in segs:
                sa, sb = datetime.fromtimestamp(a, tz), datetime.fromtimestamp(b, tz)
                entries.append((sa.date(), a, f"{sa:%Y%m%d:%H%M}-{sb:%Y%m%d:%H%M}"))
        opened_on = {e[0] for e in entries}
        listed = set(trade_dates)
        for d in days_listed:
            if d not in listed and d not in opened_on:
                entries.append((d, 0, f"{d:%Y%m%d}:CLOSED"))
        entries.sort(key=lambda e: (e[0], e[1]))
        return ";".join(e[2] for e in entries)


# --- the rule: segments of a trade date ---------------------------------------------------------------------


def _at(d: date, t: time, tz: ZoneInfo) -> int:
    return int(datetime.combine(d, t, tz).timestamp())


@lru_cache(maxsize=65_536)
def _segments(hours: TradingHours, d: date, rth: bool) -> Segments:
    """Epoch seconds [open, close) of every stretch that trades for trade date `d` (full hours, or regular
    hours when `rth` and the hours have them), from the clock rule and `hours`' special days."""
    if not _trades(hours, d):
        return ()
    tz = hours.tz
    special = hours.special_day(d)
    early = special.close if special is not None and special.close is not None else None
    if rth and hours.rth_open is not None and hours.rth_close is not None:
        a, b = _at(d, hours.rth_open, tz), _at(d, hours.rth_close, tz)
        if early is not None:
            b = min(b, _at(d, early, _ET_ZONE))
        return ((a, b),) if a < b else ()
    close = _at(d, hours.close_time, tz)
    if early is not None:
        close = min(close, _at(d, early, _ET_ZONE) + int(hours.early_close_extended.total_seconds()))
    segs = [(_open(hours, d), close)]
    back = d - _ONE_DAY
    for _ in range(_MAX_RUN):  # the abbreviated holiday sessions just before `d` trade for it
        if _trades(hours, back):
            break
        before = hours.special_day(back)
        if _weekday(hours, back) and before is not None and before.kind is DayKind.ABBREVIATED:
            assert before.close is not None
            segs.insert(0, (_open(hours, back), _at(back, before.close, _ET_ZONE)))
        back -= _ONE_DAY
    return tuple(segs)


def _open(hours: TradingHours, d: date) -> int:
    """When the session of calendar day `d` opens by the clock (the evening before, for Globex)."""
    return _at(d - _ONE_DAY if hours.overnight else d, hours.open_time, hours.tz)


def _weekday(hours: TradingHours, day: date) -> bool:
    return day.weekday() in hours.trading_weekdays and day not in hours.holidays


def _trades(hours: TradingHours, day: date) -> bool:
    """True when `day` is a trade date: a trading weekday that is neither closed nor abbreviated."""
    if not _weekday(hours, day):
        return False
    special = hours.special_day(day)
    return special is None or special.kind is DayKind.EARLY_CLOSE


def _next_trading(hours: TradingHours, day: date) -> date:
    nxt = day + _ONE_DAY
    for _ in range(_MAX_RUN):
        if _trades(hours, nxt):
            return nxt
        nxt += _ONE_DAY
    raise NoSessionError(f"{hours.name}: no trading day within {_MAX_RUN} days after {day.isoformat()}")


@lru_cache(maxsize=16_384)
def _day(hours: TradingHours, day: date) -> _Day:
    """The schedule of calendar day `day` in UTC ns (cached: scalar lookups hit it once per day)."""
    special = hours.special_day(day)
    segs = _segments(hours, day, False)
    if segs:
        return _Day(True, tuple((a * NS_PER_SECOND, b * NS_PER_SECOND) for a, b in segs), day, special)
    if special is not None and special.kind is DayKind.ABBREVIATED and _weekday(hours, day):
        return _Day(False, (), _next_trading(hours, day), special)
    return _Day(False, (), day, special)


@lru_cache(maxsize=256)
def _nominal_year(hours: TradingHours, year: int) -> tuple[IntArray, IntArray, IntArray]:
    """For every calendar day D of `year`: when D's wall-clock session date starts (the evening before at the
    open time for an overnight session, local midnight otherwise), and the (open, close) in UTC ns of the
    trading day D's timestamps belong to, as `nominal_open_close(session_date(t))` gives them."""
    start = date(year, 1, 1)
    n = (date(year + 1, 1, 1) - start).days
    rolls = np.empty(n, dtype=np.int64)
    opens = np.empty(n, dtype=np.int64)
    closes = np.empty(n, dtype=np.int64)
    for i in range(n):
        day = start + timedelta(days=i)
        if hours.overnight:
            roll = datetime.combine(day - _ONE_DAY, hours.open_time, tzinfo=hours.tz)
        else:
            roll = datetime.combine(day, time(0), tzinfo=hours.tz)
        rolls[i] = int(roll.timestamp()) * NS_PER_SECOND
        opens[i], closes[i] = hours.nominal_open_close(_day(hours, day).trade_date)
    for array in (rolls, opens, closes):
        array.flags.writeable = False
    return rolls, opens, closes


class _SegmentTable(NamedTuple):
    """Every segment (opens, closes) and every trade date's span (days as ordinals, day_opens, day_closes)
    of a run of years, in time order, as epoch-second arrays."""

    opens: IntArray
    closes: IntArray
    days: IntArray
    day_opens: IntArray
    day_closes: IntArray


@lru_cache(maxsize=1024)
def _year_table(hours: TradingHours, year: int, rth: bool) -> _SegmentTable:
    """The segments of the trade dates of `year` (a trade date's first segment may open the year before)."""
    opens: list[int] = []
    closes: list[int] = []
    days: list[int] = []
    day_opens: list[int] = []
    day_closes: list[int] = []
    d, end = date(year, 1, 1), date(year + 1, 1, 1)
    while d < end:
        segs = _segments(hours, d, rth)
        if segs:
            opens.extend(a for a, _ in segs)
            closes.extend(b for _, b in segs)
            days.append(d.toordinal())
            day_opens.append(segs[0][0])
            day_closes.append(segs[-1][1])
        d += _ONE_DAY
    arrays = [np.array(x, dtype=np.int64) for x in (opens, closes, days, day_opens, day_closes)]
    for a in arrays:
        a.flags.writeable = False
    return _SegmentTable(*arrays)


@lru_cache(maxsize=256)
def _years_table(hours: TradingHours, first: int, last: int, rth: bool) -> _SegmentTable:
    if first == last:
        return _year_table(hours, first, rth)
    tables = [_year_table(hours, y, rth) for y in range(first, last + 1)]
    arrays = [np.concatenate([t[i] for t in tables]) for i in range(5)]
    for a in arrays:
        a.flags.writeable = False
    return _SegmentTable(*arrays)


def _table(hours: TradingHours, start_s: int, end_s: int, rth: bool) -> _SegmentTable:
    """The segment table covering every trade date that can overlap [start_s, end_s): trade dates are on or
    after the (local) day of any second of their session, and open at most `_MAX_RUN` days before."""
    first = (datetime.fromtimestamp(start_s, UTC) - _ONE_DAY).year
    last = (datetime.fromtimestamp(max(end_s, start_s), UTC) + timedelta(days=_MAX_RUN + 1)).year
    return _years_table(hours, first, last, rth)


# --- the hours ibot knows -----------------------------------------------------------------------------------


def _globex(name: str, group: HoursGroup) -> TradingHours:
    """CME Globex, Sunday-Friday 18:00-17:00 ET with a daily 60-minute trading halt 17:00-18:00 ET (CME Group
    trading hours; the 16:15-16:30 ET equity halt ended in 2021), regular hours 08:30-15:00 CT, listed by IB
    in US/Central (17:00-16:00 CT), with `group`'s holiday schedule."""
    return TradingHours(
        name, open_time=time(18, 0), close_time=time(17, 0), group=group,
        rth_open=time(9, 30), rth_close=time(16, 0), listing_tz_name="US/Central",
    )  # fmt: skip


CME_GLOBEX_EQUITY_INDEX = _globex("CME Globex", HoursGroup.CME_EQUITY_INDEX)
CME_GLOBEX_ENERGY = _globex("CME Globex energy", HoursGroup.CME_ENERGY)
CME_GLOBEX_METALS = _globex("CME Globex metals", HoursGroup.CME_METALS)
CME_GLOBEX_CRYPTO = _globex("CME Globex crypto", HoursGroup.CME_CRYPTO)
# The default Globex hours (most catalog futures are equity index products).
CME_GLOBEX = CME_GLOBEX_EQUITY_INDEX

# US listed stocks, regular trading hours 09:30-16:00 ET (NYSE/Nasdaq core session), NYSE holidays and early
# closes: the trading day of the data layer, the risk checks and the runner.
US_EQUITY_RTH = TradingHours(
    "US equities RTH", open_time=time(9, 30), close_time=time(16, 0), group=HoursGroup.NYSE
)
# The same stocks as IB lists them: extended hours 04:00-20:00 ET around regular hours 09:30-16:00 ET; on an
# early close regular hours end at 13:00 ET and extended hours run on to 17:00 ET.
US_EQUITY_EXTENDED = TradingHours(
    "US equities extended hours", open_time=time(4, 0), close_time=time(20, 0), group=HoursGroup.NYSE,
    rth_open=time(9, 30), rth_close=time(16, 0), early_close_extended=timedelta(hours=4),
    listing_tz_name="US/Eastern",
)  # fmt: skip

_GLOBEX_BY_GROUP = {
    hours.group: hours
    for hours in (CME_GLOBEX_EQUITY_INDEX, CME_GLOBEX_ENERGY, CME_GLOBEX_METALS, CME_GLOBEX_CRYPTO)
}


def hours_for(instrument: Instrument) -> TradingHours:
    """The trading hours of an instrument's trading day: regular trading hours for stocks; for futures (the
    catalog is CME Group products) Globex hours with the holiday schedule of the product's group, by its
    listing exchange and symbol (NYMEX energy, COMEX metals, CME crypto, CME/CBOT equity index)."""
    if instrument.sec_type is SecType.STK:
        return US_EQUITY_RTH
    return _globex_hours(instrument.exchange, instrument.trading_class or instrument.symbol)


def listed_hours_for(instrument: Instrument) -> TradingHours:
    """The hours IB lists for an instrument (contract details' tradingHours / liquidHours, what the simulator
    serves): a stock's extended hours around its regular hours; for futures the same as `hours_for`."""
    if instrument.sec_type is SecType.STK:
        return US_EQUITY_EXTENDED
    return _globex_hours(instrument.exchange, instrument.trading_class or instrument.symbol)


@lru_cache(maxsize=256)
def _globex_hours(exchange: str, symbol: str) -> TradingHours:
    return _GLOBEX_BY_GROUP[futures_hours_group(exchange, symbol)]

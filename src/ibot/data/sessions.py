"""Trading-session hours: when a product trades, and which trading day a timestamp belongs to.

All times are exchange-local wall-clock times (America/New_York for the sessions defined here) turned into
UTC nanoseconds with zoneinfo, so daylight-saving changes are handled by the time-zone database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from ibot.model.errors import IbotError
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import NS_PER_SECOND

_ONE_DAY = timedelta(days=1)


class NoSessionError(IbotError, ValueError):
    """A date on which the product does not trade (weekend or listed holiday)."""


@dataclass(frozen=True, slots=True)
class TradingSession:
    """Regular trading hours of a product class, in exchange-local time.

    When `open_time` is not before `close_time` the session is *overnight*: the session of trading day D opens
    at `open_time` on the calendar day before D and closes at `close_time` on D (CME Globex: Monday's session
    opens Sunday 18:00 ET). `trading_weekdays` are the weekdays (Mon=0) of trading days; `holidays` are
    trading days without a session. Early closes on holidays are not modelled.
    """

    name: str
    open_time: time
    close_time: time
    tz_name: str = "America/New_York"
    trading_weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    holidays: frozenset[date] = frozenset()
    _tz: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tz", ZoneInfo(self.tz_name))

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def overnight(self) -> bool:
        """True when a session opens on the calendar day before its trading day (futures on Globex)."""
        return self.open_time >= self.close_time

    # Calendar -----------------------------------------------------------------------------------------------
    def is_trading_day(self, day: date) -> bool:
        return day.weekday() in self.trading_weekdays and day not in self.holidays

    def session_date(self, ts_ns: int) -> date:
        """The trading day `ts_ns` belongs to: for an overnight session, at or after the open time it is
        already the next calendar day's session (CME: a trade at 18:05 ET Tuesday belongs to Wednesday).

        Pure wall-clock rule: a timestamp outside any session (a weekend) still maps to a date by it.
        """
        local = datetime.fromtimestamp(ts_ns // NS_PER_SECOND, tz=self._tz)
        day = local.date()
        if self.overnight and local.time() >= self.open_time:
            day += _ONE_DAY
        return day

    def nominal_open_close(self, day: date) -> tuple[int, int]:
        """(open, close) in UTC ns that trading day `day` would have by the clock rule, trading day or not."""
        open_day = day - _ONE_DAY if self.overnight else day
        opened = datetime.combine(open_day, self.open_time, tzinfo=self._tz)
        closed = datetime.combine(day, self.close_time, tzinfo=self._tz)
        return int(opened.timestamp()) * NS_PER_SECOND, int(closed.timestamp()) * NS_PER_SECOND

    def session_open_close(self, day: date) -> tuple[int, int]:
        """(open, close) in UTC ns of trading day `day`'s session; NoSessionError if it does not trade."""
        if not self.is_trading_day(day):
            why = "a holiday" if day in self.holidays else f"a {day.strftime('%A')}"
            raise NoSessionError(f"{self.name}: no session on {day.isoformat()} ({why})")
        return self.nominal_open_close(day)

    def is_open(self, ts_ns: int) -> bool:
        """True while the market is in session at `ts_ns` (False in the daily halt, weekends and holidays)."""
        day = self.session_date(ts_ns)
        if not self.is_trading_day(day):
            return False
        opened, closed = self.nominal_open_close(day)
        return opened <= ts_ns < closed

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
            if self.is_trading_day(day):
                opened, closed = self.nominal_open_close(day)
                yield day, opened, closed
            day += _ONE_DAY

    def next_open(self, ts_ns: int) -> int:
        """The open (UTC ns) of the first session that opens at or after `ts_ns`."""
        day = self.session_date(ts_ns)
        for _ in range(370):  # a year of holidays cannot hide every session
            if self.is_trading_day(day):
                opened, _closed = self.nominal_open_close(day)
                if opened >= ts_ns:
                    return opened
            day += _ONE_DAY
        raise NoSessionError(f"{self.name}: no session within a year after ts={ts_ns}")

    def nominal_windows(
        self, ts_ns: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Vectorized `nominal_open_close(session_date(t))` for each t: (open ns, close ns) arrays.

        Builds the clock-rule windows of every calendar day in range once (a Python loop over days, not rows)
        and assigns rows with a binary search, so it costs O(days + rows log days).
        """
        if len(ts_ns) == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty.copy()
        first = self.session_date(int(ts_ns.min())) - _ONE_DAY
        last = self.session_date(int(ts_ns.max())) + _ONE_DAY
        n_days = (last - first).days + 1
        opens = np.empty(n_days, dtype=np.int64)
        closes = np.empty(n_days, dtype=np.int64)
        for i in range(n_days):
            opens[i], closes[i] = self.nominal_open_close(first + timedelta(days=i))
        if not self.overnight:
            # A day session's date rolls over at local midnight, not at the open.
            rolls = np.array(
                [
                    int(datetime.combine(first + timedelta(days=i), time(0), tzinfo=self._tz).timestamp())
                    * NS_PER_SECOND
                    for i in range(n_days)
                ],
                dtype=np.int64,
            )
        else:
            rolls = opens
        idx = np.searchsorted(rolls, ts_ns, side="right") - 1
        return opens[idx], closes[idx]


# CME Globex, equity index / energy / metals futures: Sunday-Friday 18:00-17:00 ET with a daily 60-minute
# trading halt 17:00-18:00 ET (CME Group trading hours; the 16:15-16:30 ET equity halt ended in 2021).
CME_GLOBEX = TradingSession("CME Globex", open_time=time(18, 0), close_time=time(17, 0))

# US listed stocks, regular trading hours 09:30-16:00 ET (NYSE/Nasdaq core session); holidays not listed.
US_EQUITY_RTH = TradingSession("US equities RTH", open_time=time(9, 30), close_time=time(16, 0))


def session_for(instrument: Instrument) -> TradingSession:
    """The default session of an instrument: Globex hours for futures (the catalog is CME Group products),
    regular trading hours for stocks."""
    if instrument.sec_type is SecType.STK:
        return US_EQUITY_RTH
    return CME_GLOBEX

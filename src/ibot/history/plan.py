"""What to download: the contracts a range needs, each contract's window, and the requests that cover it.

- Contracts: every listed month of a futures product whose window meets [--from, --to], expired ones included;
  a stock is its own single "contract". A month's window is what a continuous series needs of it: from the
  previous listed month's roll date minus `overlap_days` exchange business days, to its own last trade date
  (the catalog's rules here; the IB adapter's lastTradeDateOrContractMonth replaces the end once connected).
  `full`: the month's whole life instead (from IB's first data, else 400 days before its last trade date).
- Units: the trading sessions of the window (IB's listed hours: useRTH=0), or for second bars pieces of a
  session as long as IB's largest duration for the bar size.
- Chunks: runs of adjacent units not yet done, grouped so one request of IB's largest valid duration covers
  them (IB "Historical Data Limitations", step sizes: 1 min bars up to 1 D, 2 mins up to 2 D, 3-20 mins up to
  1 W, 30 mins-8 hours up to 1 M, 1 day up to 1 Y; second bars 1800 S / 3600 S / 14400 S / 28800 S).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

from ibot.data.bars import NS_PER_DAY, bar_size_name, parse_interval
from ibot.exchange.hours import TradingHours, hours_for, listed_hours_for
from ibot.model import catalog
from ibot.model.calendar import add_business_days
from ibot.model.errors import ParameterError
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import NS_PER_SECOND

__all__ = [
    "WHAT_TO_SHOW",
    "BarSpec",
    "Chunk",
    "ContractWindow",
    "Unit",
    "bar_spec",
    "chunks",
    "contract_windows",
    "series_name",
    "units",
]

WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK")
FULL_LIFE_DAYS = 400  # a catalog month's life when IB cannot tell its first data (MES lists ~5 quarters)

# IB's bar sizes (barSizeSetting), by seconds.
_IB_BAR_SIZES: dict[int, str] = {
    1: "1 secs", 5: "5 secs", 10: "10 secs", 15: "15 secs", 30: "30 secs", 60: "1 min", 120: "2 mins",
    180: "3 mins", 300: "5 mins", 600: "10 mins", 900: "15 mins", 1200: "20 mins", 1800: "30 mins",
    3600: "1 hour", 7200: "2 hours", 10800: "3 hours", 14400: "4 hours", 28800: "8 hours", 86400: "1 day",
}  # fmt: skip

# IB's step sizes: (duration unit, how it is planned, span limit in seconds, smallest bar, largest bar).
# "S": pieces of a session; "D": up to N sessions (and N x 24 h); "W"/"M"/"Y": sessions spanning at most that
# many days (a month is planned as 28 days, a year as 365, so IB's reading of "1 M" / "1 Y" always covers it).
_STEPS: tuple[tuple[str, str, int, int, int], ...] = (
    ("1800 S", "S", 1800, 1, 1800),
    ("3600 S", "S", 3600, 5, 3600),
    ("14400 S", "S", 14400, 10, 10800),
    ("28800 S", "S", 28800, 30, 28800),
    ("1 D", "D", 86400, 60, 86400),
    ("2 D", "D", 2 * 86400, 120, 86400),
    ("1 W", "W", 7 * 86400, 180, 86400),
    ("1 M", "M", 28 * 86400, 1800, 86400),
    ("1 Y", "Y", 365 * 86400, 86400, 86400),
)


@dataclass(frozen=True, slots=True)
class BarSpec:
    """A bar size as IB and the store name it: IB's "1 min", the store's "1min", the interval, the tick type
    (`what`) and IB's largest duration for the bar size."""

    ib_bar: str
    interval_ns: int
    what: str
    duration: str  # IB's largest duration for the bar size ("1 D")
    mode: str  # "S", "D", "W", "M" or "Y"
    span_s: int  # how much one request covers at most (seconds)
    sessions: int  # "D": sessions per request

    @property
    def store_name(self) -> str:
        """The store's bar-size name: "1min"."""
        return bar_size_name(self.interval_ns)

    def store_key(self, key: str) -> str:
        """The store's series name of contract `key`: the key itself for TRADES, ``MESH5.MIDPOINT`` for the
        other tick types (the store names files by key and bar size; the tick type goes with the key)."""
        return key if self.what == "TRADES" else f"{key}.{self.what}"

    @property
    def daily(self) -> bool:
        return self.interval_ns == NS_PER_DAY


def bar_spec(bar: str, what: str = "TRADES") -> BarSpec:
    """The bar size `bar` ("1 min", "1min", "5 mins", "1 day") with `what`; ParameterError names a size IB
    does not serve or an unknown whatToShow."""
    interval = parse_interval(bar)
    seconds = interval // NS_PER_SECOND
    ib_bar = _IB_BAR_SIZES.get(seconds)
    if ib_bar is None:
        legal = ", ".join(_IB_BAR_SIZES.values())
        raise ParameterError(f"--bar {bar!r} is not a bar size IB serves; use one of {legal}")
    what_up = what.strip().upper()
    if what_up not in WHAT_TO_SHOW:
        raise ParameterError(f"--what {what!r} is not one of {', '.join(WHAT_TO_SHOW)}")
    duration, mode, span, sessions = "", "", 0, 0
    for text, kind, limit, smallest, largest in _STEPS:
        if smallest <= seconds <= largest:
            duration, mode, span = text, kind, limit
            sessions = int(text.split()[0]) if kind == "D" else 0
    return BarSpec(ib_bar, interval, what_up, duration, mode, span, sessions)


def series_name(key: str, spec: BarSpec) -> str:
    """The checkpoint's name of one stored series: ``MESH5/1min`` (``MESH5.MIDPOINT/1min``)."""
    return f"{spec.store_key(key)}/{spec.store_name}"


@dataclass(frozen=True, slots=True)
class ContractWindow:
    """One contract to download and the trading days [first_day, last_day] it is needed for."""

    instrument: Instrument
    first_day: date
    last_day: date
    last_trade: date | None  # the catalog's (futures); replaced by IB's once connected
    until: date = date.max  # the end of the range asked for (--to): a later last trade date stops here

    @property
    def key(self) -> str:
        return self.instrument.key

    def clipped(self, start: date, end: date) -> ContractWindow | None:
        a, b = max(self.first_day, start), min(self.last_day, end)
        return replace(self, first_day=a, last_day=b, until=end) if a <= b else None


def _listed(symbol: str, year: int, month: int, step: int) -> Iterator[tuple[int, int]]:
    """Listed (year, month) of a product from `year`/`month` on, forwards (step 1) or backwards (-1)."""
    spec = catalog.future_spec(symbol)
    while catalog.MIN_YEAR <= year <= catalog.MAX_YEAR:
        if spec.lists(month):
            yield year, month
        month += step
        if month == 13:
            year, month = year + 1, 1
        elif month == 0:
            year, month = year - 1, 12


def contract_windows(
    symbol: str, start: date, end: date, *, overlap_days: int = 10, full: bool = False
) -> list[ContractWindow]:
    """The contracts [start, end] needs (see the module doc), each with its window clipped to the range."""
    product = catalog.get_instrument(symbol)
    if product.sec_type is SecType.STK:
        return [ContractWindow(product, start, end, None, end)]
    name = product.symbol
    out: list[ContractWindow] = []
    first_year = max(catalog.MIN_YEAR, start.year - 2)
    months = _listed(name, first_year, 1, 1)
    previous = next(months)
    for year, month in months:
        last_trade = catalog.last_trade_date(name, year, month)
        if full:
            begin = last_trade - timedelta(days=FULL_LIFE_DAYS)
        else:
            prior = catalog.contract(name, *previous)
            begin = add_business_days(catalog.roll_date(prior), -overlap_days, "CME")
        previous = (year, month)
        if begin > end:
            break
        window = ContractWindow(catalog.contract(name, year, month), begin, last_trade, last_trade)
        clipped = window.clipped(start, end)
        if clipped is not None:
            out.append(clipped)
    return out


@dataclass(frozen=True, slots=True)
class Unit:
    """The smallest piece of a window a request covers: a trading session, or a piece of one."""

    start_ns: int
    end_ns: int
    day: date


def session_hours(instrument: Instrument) -> TradingHours:
    """The hours requests follow: IB's listed hours (useRTH=0: a stock's extended hours too)."""
    return listed_hours_for(instrument)


def units(window: ContractWindow, spec: BarSpec, until_ns: int | None = None) -> list[Unit]:
    """The units of `window`, without those that open at or after `until_ns` (the server's now)."""
    hours = session_hours(window.instrument)
    out: list[Unit] = []
    for day, opened, closed in hours.sessions(window.first_day, window.last_day):
        if until_ns is not None and opened >= until_ns:
            break
        if spec.mode != "S":
            out.append(Unit(opened, closed, day))
            continue
        step = spec.span_s * NS_PER_SECOND
        for a in range(opened, closed, step):
            if until_ns is not None and a >= until_ns:
                break
            out.append(Unit(a, min(a + step, closed), day))
    return out


@dataclass(frozen=True, slots=True)
class Chunk:
    """One request's worth of units: [start_ns, end_ns) with IB's duration for it. `end_ns` after the server's
    now means the range is still open: it is requested up to now and not marked done."""

    start_ns: int
    end_ns: int
    duration: str
    units: int

    def is_open(self, now_ns: int) -> bool:
        return self.end_ns > now_ns


def chunks(all_units: list[Unit], spec: BarSpec, done: Callable[[int, int], bool]) -> list[Chunk]:
    """Group the units that are not `done(start, end)` into as few requests as IB's duration allows; only
    adjacent units share a request (a done unit between two missing ones is never fetched again)."""
    out: list[Chunk] = []
    run: list[Unit] = []

    def flush() -> None:
        if run:
            out.append(_chunk(run, spec))
            run.clear()

    for u in all_units:
        if done(u.start_ns, u.end_ns):
            flush()
            continue
        if run and not _fits(run, u, spec):
            flush()
        run.append(u)
    flush()
    return out


def _fits(run: list[Unit], u: Unit, spec: BarSpec) -> bool:
    if spec.mode == "S":
        return False  # a piece is already as long as IB's duration allows
    span = (u.end_ns - run[0].start_ns) // NS_PER_SECOND
    if spec.mode == "D":
        return len(run) < spec.sessions and span <= spec.span_s
    return span <= spec.span_s


def _chunk(run: list[Unit], spec: BarSpec) -> Chunk:
    start, end = run[0].start_ns, run[-1].end_ns
    if spec.mode == "S":
        duration = f"{(end - start) // NS_PER_SECOND} S"
    elif spec.mode == "D":
        duration = f"{len(run)} D"
    else:
        duration = spec.duration
    return Chunk(start, end, duration, len(run))


def bar_end(ts: int, spec: BarSpec, instrument: Instrument) -> int:
    """When the bar opening at `ts` ends: ts + interval, or a daily bar's session close."""
    if spec.daily:
        hours = hours_for(instrument)
        return hours.nominal_open_close(hours.session_date(ts))[1]
    return ts + spec.interval_ns

"""The simulated market behind the TWS simulator: one clock, one price path per product, bars and quotes.

What it promises: every price is a whole number of ticks of the instrument; the same (seed, symbol, second)
always gives the same price, so live ticks, real-time bars and historical bars of any size agree; the clock is
shared by every subscription of every client. Prices come either from a seeded synthetic path (a
mean-reverting daily anchor with a one-second random walk bridged between anchors) or from stored bars.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from ibot.exchange.hours import TradingHours, listed_hours_for
from ibot.model.clock import Clock
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import NS_PER_SECOND, Bar
from ibot.sim import listing
from ibot.sim.contracts import ContractBook, ContractQuery  # they lived here: re-exported (__all__)

DAY = 86_400
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Rough price levels the synthetic path wanders around (it mean-reverts to these, within about +-20%).
_BASE_PRICE = {
    "MES": 5000.0, "MNQ": 18000.0, "MYM": 40000.0, "M2K": 2000.0, "MGC": 2000.0, "MCL": 70.0, "MBT": 60000.0,
    "SPY": 500.0, "QQQ": 450.0, "IWM": 200.0, "AAPL": 200.0, "MSFT": 400.0,
}  # fmt: skip
# Yearly carry of each futures product over its spot path (fraction of the price per year to expiry): index
# futures trade at a premium (rates above dividends), gold in contango, crude in backwardation. Every month's
# price is the product's path plus its basis, rate x level x time to expiry, so months differ at one time and
# converge at expiry, and a back-adjusted series has real roll gaps.
_CARRY = {"MES": 0.015, "MNQ": 0.012, "MYM": 0.010, "M2K": 0.005, "MGC": 0.045, "MCL": -0.03, "MBT": 0.08}
_CARRY_SPREAD = 0.15  # each month's own carry is the product's times 1 +- up to this (seeded)
_YEAR_S = 365 * 86_400
_EPOCH_DAY = date(2000, 1, 1).toordinal()
_ANCHOR_DAYS = 40_000  # anchors from 2000 to past 2100


class MarketError(ValueError):
    """A market-data request the simulated market cannot serve; the message says why."""


# --- price sources ------------------------------------------------------------------------------------------


class PriceSource(Protocol):
    """One-second price path (in ticks) and volume per product symbol."""

    def seconds(self, inst: Instrument, start_s: int, end_s: int) -> tuple[IntArray, IntArray]: ...

    def session_mask(self, inst: Instrument, start_s: int, end_s: int, rth: bool) -> BoolArray: ...

    def first_second(self, inst: Instrument) -> int | None: ...


def _stable_hash(*parts: object) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


class SyntheticSource:
    """Seeded synthetic prices: daily anchors (mean-reverting log price) bridged by a 1-second random walk."""

    def __init__(self, seed: int = 0, cache_days: int = 64) -> None:
        self.seed = seed
        self._carry: dict[str, float] = {}
        self._anchors: dict[str, IntArray] = {}
        self._days: OrderedDict[tuple[str, int], tuple[IntArray, IntArray]] = OrderedDict()
        self._cache_days = cache_days

    def _anchor_ticks(self, inst: Instrument) -> IntArray:
        key = inst.symbol
        found = self._anchors.get(key)
        if found is None:
            rng = np.random.default_rng([self.seed, _stable_hash("anchor", key)])
            theta, sigma = 0.01, 0.012  # stationary log-price spread ~ sigma / sqrt(2 theta) ~ 8.5%
            shocks = rng.normal(0.0, sigma, _ANCHOR_DAYS)
            x = np.empty(_ANCHOR_DAYS)
            level = 0.0
            for i in range(_ANCHOR_DAYS):  # ~40k steps once per symbol
                level = level * (1.0 - theta) + shocks[i]
                x[i] = level
            base = _BASE_PRICE.get(key, 100.0)
            found = np.maximum(np.rint(base * np.exp(x) / float(inst.tick_size)), 1).astype(np.int64)
            self._anchors[key] = found
        return found

    def _day(self, inst: Instrument, day: int) -> tuple[IntArray, IntArray]:
        key = (inst.symbol, day)
        hit = self._days.get(key)
        if hit is not None:
            self._days.move_to_end(key)
            return hit
        anchors = self._anchor_ticks(inst)
        i = min(max(day - (_EPOCH_DAY - date(1970, 1, 1).toordinal()), 0), _ANCHOR_DAYS - 2)
        a0, a1 = int(anchors[i]), int(anchors[i + 1])
        rng = np.random.default_rng([self.seed, _stable_hash("day", inst.symbol), day])
        steps = rng.choice(np.array([-1, 0, 1], dtype=np.int64), size=DAY, p=[0.1, 0.8, 0.1])
        walk = np.cumsum(steps) - steps[0]
        # Brownian bridge: bend the walk so that the day ends at the next day's anchor.
        t = np.arange(DAY, dtype=np.float64) / DAY
        prices = np.rint(a0 + walk - t * (walk[-1] - (a1 - a0))).astype(np.int64)
        prices = np.maximum(prices, 1)
        volume = rng.poisson(0.6, DAY).astype(np.int64) * (1 + np.abs(steps))
        self._days[key] = (prices, volume)
        if len(self._days) > self._cache_days:
            self._days.popitem(last=False)
        return prices, volume

    def seconds(self, inst: Instrument, start_s: int, end_s: int) -> tuple[IntArray, IntArray]:
        if end_s <= start_s:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        prices, volumes = [], []
        for day in range(start_s // DAY, (end_s - 1) // DAY + 1):
            p, v = self._day(inst, day)
            a = max(start_s - day * DAY, 0)
            b = min(end_s - day * DAY, DAY)
            prices.append(p[a:b])
            volumes.append(v[a:b])
        path = np.concatenate(prices)
        if inst.sec_type is SecType.FUT and inst.expiry is not None:
            path = np.maximum(path + self.basis(inst, start_s, end_s), 1)
        return path, np.concatenate(volumes)

    def carry(self, inst: Instrument) -> float:
        """A futures month's yearly carry: its product's (`_CARRY`) with a seeded deviation of its own."""
        found = self._carry.get(inst.key)
        if found is None:
            rng = np.random.default_rng([self.seed, _stable_hash("carry", inst.key)])
            found = _CARRY.get(inst.symbol, 0.0) * float(rng.uniform(1 - _CARRY_SPREAD, 1 + _CARRY_SPREAD))
            self._carry[inst.key] = found
        return found

    def basis(self, inst: Instrument, start_s: int, end_s: int) -> IntArray:
        """The month's premium over the product's path, in whole ticks, per second of [start_s, end_s):
        carry x the product's price level x years to expiry; 0 from the expiry date on."""
        assert inst.expiry is not None
        expiry_s = (inst.expiry.toordinal() - date(1970, 1, 1).toordinal()) * DAY
        level = _BASE_PRICE.get(inst.symbol, 100.0) / float(inst.tick_size)
        years = np.maximum(expiry_s - np.arange(start_s, end_s, dtype=np.float64), 0.0) / _YEAR_S
        return np.rint(level * self.carry(inst) * years).astype(np.int64)

    def session_mask(self, inst: Instrument, start_s: int, end_s: int, rth: bool) -> BoolArray:
        return listed_hours_for(inst).mask(start_s, end_s, rth)

    def first_second(self, inst: Instrument) -> int | None:
        return None


class ReplaySource:
    """Stored bars replayed second by second: open -> high/low -> close inside each bar, volume spread evenly.

    Bars are keyed by product symbol (a futures month's bars are its product's); seconds not covered by a bar
    are outside the session.
    """

    def __init__(self, bars: Mapping[str, Sequence[Bar]], bar_seconds: int) -> None:
        if bar_seconds <= 0:
            raise MarketError(f"replay: bar_seconds must be positive, got {bar_seconds}")
        self.bar_seconds = bar_seconds
        self._bars = {k.upper(): sorted(v, key=lambda b: b.ts) for k, v in bars.items()}
        self._starts = {
            k: np.array([b.ts // NS_PER_SECOND for b in v], np.int64) for k, v in self._bars.items()
        }

    def _series(self, inst: Instrument) -> tuple[list[Bar], IntArray]:
        try:
            return self._bars[inst.symbol], self._starts[inst.symbol]
        except KeyError:
            raise MarketError(f"replay: no stored bars for {inst.symbol}") from None

    def seconds(self, inst: Instrument, start_s: int, end_s: int) -> tuple[IntArray, IntArray]:
        bars, starts = self._series(inst)
        n = max(end_s - start_s, 0)
        prices = np.zeros(n, np.int64)
        volume = np.zeros(n, np.int64)
        if not bars or n == 0:
            return prices, volume
        secs = np.arange(start_s, end_s, dtype=np.int64)
        idx = np.clip(np.searchsorted(starts, secs, side="right") - 1, 0, len(bars) - 1)
        span = self.bar_seconds
        for j in np.unique(idx):
            bar = bars[int(j)]
            sel = idx == j
            offset = secs[sel] - starts[j]
            inside = (offset >= 0) & (offset < span)
            path = self._bar_path(inst, bar)
            k = np.clip(offset, 0, span - 1)
            p = path[k]
            # before this bar starts (a gap) the last close holds; after it, the close
            p = np.where(offset < 0, path[0], p)
            p = np.where(offset >= span, path[-1], p)
            prices[sel] = p
            per = int(bar.volume) // span
            rest = int(bar.volume) - per * span
            vol = np.where(inside, per, 0) + np.where(inside & (offset == span - 1), rest, 0)
            volume[sel] = vol
        return prices, volume

    def _bar_path(self, inst: Instrument, bar: Bar) -> IntArray:
        """open -> nearer extreme -> farther extreme -> close, the path `MatchingEngine.on_bar` walks (same
        tie rule), with every knot on a whole second so the bar's seconds (and any 5-s bars built from them)
        reproduce its open, high, low and close exactly."""
        span = self.bar_seconds
        o, h, lo, c = (inst.to_ticks(x) for x in (bar.open, bar.high, bar.low, bar.close))
        if h - o < o - lo or (h - o == o - lo and abs(h - c) < abs(c - lo)):
            first, second = h, lo
        else:
            first, second = lo, h
        if span < 4:  # too short for four knots: the extremes still appear
            path = [o, first, second, c][-span:] if span > 1 else [c]
            return np.array(path, dtype=np.int64)
        xs = np.array([0, span // 3, (2 * span) // 3, span - 1], dtype=np.float64)
        knots = np.array([o, first, second, c], dtype=np.float64)
        return np.rint(np.interp(np.arange(span), xs, knots)).astype(np.int64)

    def bars_ending(self, inst: Instrument, after_s: int, upto_s: int) -> list[Bar]:
        """The stored bars of `inst` whose end (start + bar_seconds) is in (after_s, upto_s], oldest first."""
        bars, starts = self._series(inst)
        if not bars or upto_s <= after_s:
            return []
        ends = starts + self.bar_seconds
        lo = int(np.searchsorted(ends, after_s, side="right"))
        hi = int(np.searchsorted(ends, upto_s, side="right"))
        return bars[lo:hi]

    def session_mask(self, inst: Instrument, start_s: int, end_s: int, rth: bool) -> BoolArray:
        _, starts = self._series(inst)
        secs = np.arange(start_s, end_s, dtype=np.int64)
        idx = np.searchsorted(starts, secs, side="right") - 1
        ok = idx >= 0
        off = secs - starts[np.clip(idx, 0, None)]
        m = ok & (off < self.bar_seconds)
        if rth:
            m &= listed_hours_for(inst).mask(start_s, end_s, True)
        return m

    def first_second(self, inst: Instrument) -> int | None:
        _, starts = self._series(inst)
        return int(starts[0]) if len(starts) else None


# --- what the market answers --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BarRow:
    """A bar as served: `ts` is its start in epoch seconds; prices on the grid; `wap` volume-weighted."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    wap: float
    count: int
    trade_date: date | None = None  # for daily and longer bars


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book and the session's statistics at one second; prices on the grid."""

    second: int
    bid: float
    ask: float
    last: float
    bid_size: int
    ask_size: int
    last_size: int
    volume: int  # session volume so far
    high: float
    low: float
    open: float
    close: float  # previous session's close
    traded: bool  # a trade printed in this second


class QuoteTicks(NamedTuple):
    """A `Quote` in whole ticks of its instrument (the streaming path works on these): the spread is one
    tick, so ask = bid + 1, and the last trade prints at the bid."""

    second: int
    bid: int
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    high: int
    low: int
    open: int
    close: int
    traded: bool

    def prices(self, inst: Instrument) -> Quote:
        ft = inst.from_ticks
        return Quote(
            second=self.second,
            bid=ft(self.bid),
            ask=ft(self.bid + 1),
            last=ft(self.bid),
            bid_size=self.bid_size,
            ask_size=self.ask_size,
            last_size=self.last_size,
            volume=self.volume,
            high=ft(self.high),
            low=ft(self.low),
            open=ft(self.open),
            close=ft(self.close),
            traded=self.traded,
        )


_RECENT = 64  # seconds of quotes a tape keeps for the other subscribers of the same clock step


class _Tape:
    """One instrument's current trade date, folded up to `next_s` (exclusive): running high, low and volume
    over its seconds in session (a holiday halt between two segments of one trade date folds nothing), and
    the quotes of its latest seconds."""

    __slots__ = (
        "close",
        "high",
        "low",
        "mask",
        "next_s",
        "open",
        "open_s",
        "recent",
        "recent_first",
        "volume",
    )

    def __init__(self, open_s: int, open_ticks: int, close_ticks: int, mask: BoolArray) -> None:
        self.open_s = open_s
        self.open = open_ticks
        self.close = close_ticks  # the previous session's close (its own open when there is none)
        self.mask = mask  # in session, per second from open_s
        self.next_s = open_s
        self.high = self.low = open_ticks
        self.volume = 0
        self.recent_first = open_s
        self.recent: list[QuoteTicks | None] = []

    def run(
        self, source: PriceSource, inst: Instrument, first: int, last: int, out: list[QuoteTicks | None]
    ) -> None:
        """Fold the seconds up to `first`, then append the quotes of [first, last] (all in this session)."""
        if first > self.next_s:
            p, v = source.seconds(inst, self.next_s, first)
            inside = self.mask[self.next_s - self.open_s : first - self.open_s]
            if not inside.all():  # a holiday halt (or a replay gap) trades nothing
                p, v = p[inside], v[inside]
            if len(p):
                self.high = max(self.high, int(p.max()))
                self.low = min(self.low, int(p.min()))
                self.volume += int(v.sum())
            self.recent_first, self.recent = first, []
        prices, volumes = source.seconds(inst, first, last + 1)
        mask = self.mask[first - self.open_s : last + 1 - self.open_s].tolist()
        high, low, volume, o, c = self.high, self.low, self.volume, self.open, self.close
        symbol = inst.symbol
        crc32 = zlib.crc32
        made: list[QuoteTicks | None] = []
        for sec, p, v, inside in zip(
            range(first, last + 1), prices.tolist(), volumes.tolist(), mask, strict=True
        ):
            if not inside:
                made.append(None)
                continue
            high = max(high, p)
            low = min(low, p)
            volume += v
            h = crc32(f"{symbol}|{sec}".encode())  # = _stable_hash(symbol, sec): sizes are per second
            made.append(
                QuoteTicks(sec, p, 1 + h % 37, 1 + (h >> 8) % 37, max(v, 1), volume, high, low, o, c, v > 0)
            )
        self.high, self.low, self.volume, self.next_s = high, low, volume, last + 1
        out.extend(made)
        recent = self.recent
        recent.extend(made)
        if len(recent) > _RECENT:
            del recent[: len(recent) - _RECENT]
        self.recent_first = self.next_s - len(recent)


WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK")
TICK_KINDS = ("TRADES", "BID_ASK", "MIDPOINT")  # reqHistoricalTicks' whatToShow
_TICK_SESSIONS = 14  # sessions a historical-ticks request looks through for one that has ticks


def book_sizes(symbol: str, second: int) -> tuple[int, int]:
    """Bid and ask size at `second`: the ones the streaming quotes carry (`_Tape.run` inlines this)."""
    h = zlib.crc32(f"{symbol}|{second}".encode())
    return 1 + h % 37, 1 + (h >> 8) % 37


class HistoricalTickRow(NamedTuple):
    """One historical tick (reqHistoricalTicks), from the same one-second path as quotes and bars: the bid is
    the second's price, the ask one tick above, a trade prints at the bid with the second's volume;
    `ask_past_high` when the ask is above the session's high so far (the bid never falls below its low)."""

    second: int
    bid: float
    ask: float
    mid: float
    size: int
    bid_size: int
    ask_size: int
    ask_past_high: bool


class SimMarket:
    """The shared market: a clock (advanced by the server) and every data query the clients make."""

    def __init__(self, source: PriceSource, start_ns: int, speed: float | None = 60.0) -> None:
        if speed is not None and speed <= 0:
            raise MarketError(f"speed must be positive (or None for as fast as clients read), got {speed}")
        self.source = source
        self.clock = Clock(start_ns)
        self.speed = speed
        self._prev_closes: dict[tuple[str, date], int | None] = {}  # (month or symbol, trade date) -> ticks
        self._tapes: dict[Instrument, _Tape] = {}
        self._windows: dict[TradingHours, tuple[date | None, int, int]] = {}

    # --- time --------------------------------------------------------------------------------------------
    @property
    def now_s(self) -> float:
        return self.clock.ns / NS_PER_SECOND

    def advance(self, sim_seconds: float) -> tuple[int, int]:
        """Move the clock forward; returns the whole seconds (old, new) it passed."""
        old = int(self.now_s)
        self.clock.advance(self.clock.ns + round(sim_seconds * NS_PER_SECOND))
        return old, int(self.now_s)

    def asof(self) -> date:
        return datetime.fromtimestamp(self.now_s, UTC).date()

    # --- quotes ------------------------------------------------------------------------------------------
    def is_open(self, inst: Instrument, second: int) -> bool:
        return bool(self.source.session_mask(inst, second, second + 1, False)[0])

    def closed_until(self, inst: Instrument, second: int) -> int | None:
        """None while the exchange's hours trade `inst` at `second`; else the second it opens again."""
        is_open, boundary = listed_hours_for(inst).state_at(second)
        return None if is_open else boundary

    def last_session_quote(self, inst: Instrument, second: int) -> QuoteTicks | None:
        """The quote of the last second of the latest segment that closed at or before `second`: what a
        closed market shows (last price, that session's high, low, open and volume), or None without data."""
        close_s = listed_hours_for(inst).last_close(second)
        if close_s is None:
            return None
        return self.quote_ticks(inst, close_s - 1, close_s - 1)[0]

    def quote(self, inst: Instrument, second: int) -> Quote | None:
        """Top of book at `second`, or None outside the session (no market)."""
        t = self.quote_ticks(inst, second, second)[0]
        return None if t is None else t.prices(inst)

    def quotes(self, inst: Instrument, first: int, last: int) -> list[Quote | None]:
        """`quote(inst, s)` for every second s in [first, last]."""
        return [None if t is None else t.prices(inst) for t in self.quote_ticks(inst, first, last)]

    def quote_ticks(self, inst: Instrument, first: int, last: int) -> list[QuoteTicks | None]:
        """The quote of every second in [first, last] in whole ticks, None where there is no market: the
        streaming fast path. Each instrument's session so far is folded once (high, low, volume) and moved
        forward with the clock, and the latest seconds are kept, so every subscriber of an instrument in one
        clock step shares one computation; a second before those is computed afresh from the session open."""
        hours = listed_hours_for(inst)
        out: list[QuoteTicks | None] = []
        s = first
        while s <= last:
            d, start, end = self._session_at(hours, s)
            if d is None:  # no session until `end`
                upto = min(last + 1, end)
                out.extend([None] * (upto - s))
                s = upto
                continue
            tape = self._tapes.get(inst)
            if tape is None or tape.open_s < start:  # the clock moved into a new session
                tape = self._tapes[inst] = self._new_tape(inst, d, start, end, hours)
            elif tape.open_s > start:  # a second of an earlier session: computed aside, the tape kept
                tape = self._new_tape(inst, d, start, end, hours)
            stop = min(last, end - 1)
            if tape.recent_first <= s < tape.next_s:  # already computed in this step (or the last one)
                upto = min(stop, tape.next_s - 1)
                out.extend(tape.recent[s - tape.recent_first : upto - tape.recent_first + 1])
                s = upto + 1
                continue
            if s < tape.recent_first:  # earlier in the session than the tape keeps: fold it afresh
                tape = self._new_tape(inst, d, start, end, hours)
            tape.run(self.source, inst, s, stop, out)
            s = stop + 1
        return out

    def _session_at(self, hours: TradingHours, second: int) -> tuple[date | None, int, int]:
        """(trade date, first open, last close) of the trade date whose hours span `second` (a holiday halt
        between its segments included: the tape's session mask gives those seconds no quote), or (None,
        second, next open) between trade dates; the latest answer per trading-hours class is kept (the clock
        asks about the same session thousands of times)."""
        known = self._windows.get(hours)
        if known is not None and known[1] <= second < known[2]:
            return known
        found: tuple[date | None, int, int] = (None, second, second + 8 * DAY)
        for d, a, b in hours.windows(second, second + 8 * DAY, False):
            if a <= second < b:
                found = (d, a, b)
                break
            if a > second:
                found = (None, second, a)
                break
        self._windows[hours] = found
        return found

    def _new_tape(self, inst: Instrument, d: date, open_s: int, close_s: int, hours: TradingHours) -> _Tape:
        key = (inst.key, d)
        if key not in self._prev_closes:
            self._prev_closes[key] = self._previous_close(inst, d, hours)
        prev = self._prev_closes[key]
        first = int(self.source.seconds(inst, open_s, open_s + 1)[0][0])
        mask = self.source.session_mask(inst, open_s, close_s, False)
        return _Tape(open_s, first, prev if prev is not None else first, mask)

    def _previous_close(self, inst: Instrument, d: date, hours: TradingHours) -> int | None:
        for back in range(1, 10):
            prev = d - timedelta(days=back)
            if hours.is_trade_date(prev):
                _, close_s = hours.window(prev, False)
                prices, _ = self.source.seconds(inst, close_s - 1, close_s)
                return int(prices[-1])
        return None

    def trades(self, inst: Instrument, start_s: int, end_s: int) -> list[tuple[int, float, int]]:
        """(second, price, size) of each printed trade in [start_s, end_s), in session only."""
        if end_s <= start_s:
            return []
        prices, volume = self.source.seconds(inst, start_s, end_s)
        mask = self.source.session_mask(inst, start_s, end_s, False) & (volume > 0)
        return [
            (start_s + int(i), inst.from_ticks(int(prices[i])), int(volume[i])) for i in np.flatnonzero(mask)
        ]

    def depth(self, inst: Instrument, second: int, rows: int) -> list[tuple[int, int, float, int]]:
        """(side, position, price, size) rows of the book: side 1 = bid, 0 = ask (IB's numbering)."""
        q = self.quote(inst, second)
        if q is None:
            return []
        bid_t, ask_t = inst.to_ticks(q.bid), inst.to_ticks(q.ask)
        out = []
        for side, top, sign in ((1, bid_t, -1), (0, ask_t, 1)):
            for pos in range(rows):
                size = 1 + _stable_hash(inst.symbol, second, side, pos) % 60
                out.append((side, pos, inst.from_ticks(top + sign * pos), size))
        return out

    def historical_ticks(
        self,
        inst: Instrument,
        what: str,
        anchor_s: int,
        forward: bool,
        count: int,
        rth: bool,
        ignore_size: bool,
    ) -> list[HistoricalTickRow]:
        """reqHistoricalTicks: up to `count` ticks from `anchor_s` on (forward) or up to it (inclusive), in
        time order, from one session only (IB: "data will not be returned from multiple trading sessions in a
        single request"): the one holding the anchor, else the next (previous) that has ticks. TRADES: each
        second that printed; BID_ASK: each second the quote changed (its price only, with `ignore_size`);
        MIDPOINT: each second the midpoint changed; a session's first second is always a quote tick. Only
        seconds in session (a holiday halt has none) and not after the clock."""
        if what not in TICK_KINDS:
            raise MarketError(f"whatToShow {what!r} is not served; use one of {', '.join(TICK_KINDS)}")
        hours = listed_hours_for(inst)
        now = self.data_end(inst) - 1
        head = self.head_second(inst)
        if forward:
            wins = hours.windows(anchor_s, anchor_s + _TICK_SESSIONS * DAY, rth)
        else:
            wins = hours.windows(anchor_s - _TICK_SESSIONS * DAY, anchor_s + 1, rth)[::-1]
        for _, a, b in wins[:_TICK_SESSIONS]:
            a, b = max(a, head), min(b, now + 1)
            if b <= a or (forward and anchor_s >= b) or (not forward and anchor_s < a):
                if forward and a > now:
                    break
                continue
            rows = self._session_ticks(inst, what, a, b, anchor_s, forward, count, rth, ignore_size)
            if rows:
                return rows
        return []

    def _session_ticks(
        self,
        inst: Instrument,
        what: str,
        a: int,
        b: int,
        anchor_s: int,
        forward: bool,
        count: int,
        rth: bool,
        ignore_size: bool,
    ) -> list[HistoricalTickRow]:
        prices, volume = self.source.seconds(inst, a, b)
        inside = np.flatnonzero(self.source.session_mask(inst, a, b, rth))
        if not len(inside):
            return []
        p, vol, secs = prices[inside], volume[inside], inside + a
        if what == "TRADES":
            ticks = vol > 0
        else:
            ticks = np.ones(len(p), dtype=np.bool_)
            ticks[1:] = p[1:] != p[:-1]
        high = np.maximum.accumulate(p)
        if forward:
            order = range(int(np.searchsorted(secs, anchor_s, side="left")), len(p))
        else:
            order = range(int(np.searchsorted(secs, anchor_s, side="right")) - 1, -1, -1)
        sizes_wanted = what != "MIDPOINT"
        sized = what == "BID_ASK" and not ignore_size  # a size change is a quote tick too
        symbol = inst.symbol
        picked: list[int] = []
        for k in order:
            if not ticks[k] and not (
                sized and k and book_sizes(symbol, int(secs[k])) != book_sizes(symbol, int(secs[k - 1]))
            ):
                continue
            picked.append(k)
            if len(picked) >= count:
                break
        picked.sort()
        half = float(inst.tick_size) / 2
        ft = inst.from_ticks
        out = []
        for k in picked:
            second, ticks_k = int(secs[k]), int(p[k])
            bid_size, ask_size = book_sizes(symbol, second) if sizes_wanted else (0, 0)
            out.append(
                HistoricalTickRow(
                    second=second,
                    bid=ft(ticks_k),
                    ask=ft(ticks_k + 1),
                    mid=ft(ticks_k) + half,
                    size=int(vol[k]) if what == "TRADES" else 0,
                    bid_size=bid_size,
                    ask_size=ask_size,
                    ask_past_high=ticks_k + 1 > int(high[k]),
                )
            )
        return out

    # --- bars --------------------------------------------------------------------------------------------
    def head_second(self, inst: Instrument) -> int:
        """First second with data: a futures month's listing (`ibot.sim.listing`), else the source's."""
        first = self.source.first_second(inst)
        if first is not None:
            return first
        listed = listing.first_second(inst)
        if listed is not None:
            return listed
        d = date(2004, 1, 2)
        hours = listed_hours_for(inst)
        while not hours.is_trade_date(d):
            d += timedelta(days=1)
        return hours.window(d, False)[0]

    def data_end(self, inst: Instrument) -> int:
        """One past the last second with data: the clock's second, or a month's last trade if earlier."""
        end = int(self.now_s) + 1
        last = listing.last_trade_second(inst)
        return end if last is None else min(end, last)

    def bars(
        self,
        inst: Instrument,
        start_s: int,
        end_s: int,
        bar_s: int,
        what: str,
        rth: bool,
        calendar_unit: str = "",
    ) -> list[BarRow]:
        """Bars of `bar_s` seconds (or calendar units "D"/"W"/"M") covering [start_s, end_s), in session."""
        if what not in WHAT_TO_SHOW:
            raise MarketError(f"whatToShow {what!r} is not served; use one of {', '.join(WHAT_TO_SHOW)}")
        start_s = max(start_s, self.head_second(inst))
        end_s = min(end_s, self.data_end(inst))
        if end_s <= start_s:
            return []
        hours = listed_hours_for(inst)
        if calendar_unit:
            groups: list[tuple[int, int, int, date | None]] = []
            for d, a, b in hours.windows(start_s, end_s, rth):
                key = {
                    "D": d.toordinal(),
                    "W": d.isocalendar()[1] + 100 * d.isocalendar()[0],
                    "M": d.month + 100 * d.year,
                }[calendar_unit]
                a, b = max(a, start_s), min(b, end_s)
                if groups and groups[-1][0] == key:
                    k, ga, _, gd = groups[-1]
                    groups[-1] = (k, ga, b, gd)
                else:
                    groups.append((key, a, b, d))
            spans: list[tuple[int, int, date | None]] = [(a, b, d) for _, a, b, d in groups]
        else:
            return self._intraday_bars(inst, start_s, end_s, bar_s, what, rth)
        out: list[BarRow] = []
        for a, b, day in spans:
            a2, b2 = max(a, start_s), min(b, end_s)
            if b2 <= a2:
                continue
            row = self._bar(inst, a2, b2, what, rth)
            if row is not None:
                ts = a if day is None else hours.window(day, rth)[0]
                out.append(BarRow(ts, row[0], row[1], row[2], row[3], row[4], row[5], row[6], day))
        return out

    def _intraday_bars(
        self, inst: Instrument, start_s: int, end_s: int, bar_s: int, what: str, rth: bool
    ) -> list[BarRow]:
        """Bars of `bar_s` seconds aligned on the epoch, over [start_s, end_s): every bar at once from one
        array of the range's seconds (the same figures as `_bar` bar by bar: first, extremes and last price
        in session, volume, volume-weighted price and seconds that traded)."""
        first = start_s - start_s % bar_s
        n = -(-(end_s - first) // bar_s)
        stop = first + n * bar_s
        prices, volume = self.source.seconds(inst, first, stop)
        mask = self.source.session_mask(inst, first, stop, rth)
        mask[: start_s - first] = False
        mask[end_s - first :] = False
        p, v, m = prices.reshape(n, bar_s), volume.reshape(n, bar_s), mask.reshape(n, bar_s)
        keep = np.flatnonzero(m.any(axis=1))
        if not len(keep):
            return []
        p, v, m = p[keep], v[keep], m[keep]
        rows = np.arange(len(keep))
        opens = p[rows, m.argmax(axis=1)]
        closes = p[rows, bar_s - 1 - m[:, ::-1].argmax(axis=1)]
        highs = np.where(m, p, np.iinfo(np.int64).min).max(axis=1)
        lows = np.where(m, p, np.iinfo(np.int64).max).min(axis=1)
        vm = np.where(m, v, 0)
        totals = vm.sum(axis=1)
        weighted = (p * vm).sum(axis=1)
        counts = (vm > 0).sum(axis=1)
        ft, tick = inst.from_ticks, float(inst.tick_size)
        half = tick / 2
        out: list[BarRow] = []
        for j, k in enumerate(keep.tolist()):
            ts = first + k * bar_s
            o, h, lo, c = int(opens[j]), int(highs[j]), int(lows[j]), int(closes[j])
            if what == "BID_ASK":
                out.append(BarRow(ts, ft(o), ft(h + 1), ft(lo), ft(c + 1), 0, 0.0, 0))
                continue
            if what == "MIDPOINT":
                out.append(BarRow(ts, ft(o) + half, ft(h) + half, ft(lo) + half, ft(c) + half, 0, 0.0, 0))
                continue
            shift = 1 if what == "ASK" else 0
            total = int(totals[j])
            wap = (int(weighted[j]) + shift * total) / total * tick if total else ft(c + shift)
            trades = what == "TRADES"
            out.append(
                BarRow(
                    ts,
                    ft(o + shift),
                    ft(h + shift),
                    ft(lo + shift),
                    ft(c + shift),
                    total if trades else 0,
                    round(wap, 6),
                    int(counts[j]) if trades else 0,
                )
            )
        return out

    def _bar(
        self, inst: Instrument, a: int, b: int, what: str, rth: bool
    ) -> tuple[float, float, float, float, int, float, int] | None:
        mask = self.source.session_mask(inst, a, b, rth)
        if not mask.any():
            return None
        prices, volume = self.source.seconds(inst, a, b)
        p, v = prices[mask], volume[mask]
        if what in ("TRADES", "BID"):
            lo, hi = int(p.min()), int(p.max())
        elif what == "ASK":
            p = p + 1
            lo, hi = int(p.min()), int(p.max())
        elif what == "BID_ASK":  # IB: open/close time-averaged bid/ask; we take first bid and last ask
            lo, hi = int(p.min()), int(p.max()) + 1
            return (
                inst.from_ticks(int(p[0])),
                inst.from_ticks(hi),
                inst.from_ticks(lo),
                inst.from_ticks(int(p[-1]) + 1),
                0,
                0.0,
                0,
            )
        else:  # MIDPOINT: half a tick above the bid (spread is one tick)
            half = float(inst.tick_size) / 2
            return (
                inst.from_ticks(int(p[0])) + half,
                inst.from_ticks(int(p.max())) + half,
                inst.from_ticks(int(p.min())) + half,
                inst.from_ticks(int(p[-1])) + half,
                0,
                0.0,
                0,
            )
        total = int(v.sum())
        # volume-weighted average price; a bar without trades takes its close
        wap = float((p * v).sum()) / total * float(inst.tick_size) if total else inst.from_ticks(int(p[-1]))
        return (
            inst.from_ticks(int(p[0])),
            inst.from_ticks(hi),
            inst.from_ticks(lo),
            inst.from_ticks(int(p[-1])),
            total if what == "TRADES" else 0,
            round(wap, 6),
            int((v > 0).sum()) if what == "TRADES" else 0,
        )


__all__ = [
    "TICK_KINDS",
    "WHAT_TO_SHOW",
    "BarRow",
    "ContractBook",
    "ContractQuery",
    "HistoricalTickRow",
    "MarketError",
    "PriceSource",
    "Quote",
    "QuoteTicks",
    "ReplaySource",
    "SimMarket",
    "SyntheticSource",
    "book_sizes",
]

"""A seeded synthetic market: bars and trade ticks on an instrument's tick grid, in real session hours.

The price model works in log space per bar and is fully vectorized:

- two regimes alternate (episode lengths drawn at random): *trending* (a random walk with a drift whose sign
  and size are drawn per episode) and *choppy* (a small random walk plus a fast mean-reverting AR(1) part,
  so prices range around a level with the same bar-to-bar volatility);
- volatility clusters: the log of volatility is a slow AR(1) (half-life about a session);
- intraday profile: volume (and, by its square root, volatility) is U-shaped over the US cash session
  09:30-16:00 ET, with a quiet overnight and a small burst at the 18:00 ET Globex open;
- bars exist only while the session is open (CME Globex: Sunday-Friday 18:00-17:00 ET, no bars in the daily
  17:00-18:00 ET halt or on weekends; the exchange's holidays, holiday halts and early closes are kept).

Prices are integer ticks internally; OHLC are consistent by construction (low <= open, close <= high) and on
the grid exactly as `Instrument.from_ticks` would give them. Same arguments and seed, same output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from ibot.data.bars import NS_PER_DAY, BarFrame, parse_interval
from ibot.exchange.hours import TradingHours, hours_for
from ibot.model.errors import ParameterError
from ibot.model.instruments import Instrument
from ibot.model.market import NS_PER_SECOND, Tick, datetime_to_ns

# Rough levels of the mid-2020s; a sensible place to start, not data.
DEFAULT_START_PRICE: dict[str, float] = {
    "ES": 5000.0, "MES": 5000.0, "NQ": 18000.0, "MNQ": 18000.0, "YM": 39000.0, "MYM": 39000.0,
    "RTY": 2000.0, "M2K": 2000.0, "CL": 70.0, "MCL": 70.0, "GC": 2000.0, "MGC": 2000.0,
    "BTC": 60000.0, "MBT": 60000.0, "SI": 25.0, "SIL": 25.0, "NG": 3.0, "ZN": 110.0,
    "SPY": 500.0, "QQQ": 440.0, "IWM": 200.0, "AAPL": 190.0, "MSFT": 420.0,
}  # fmt: skip
DEFAULT_ANNUAL_VOL: dict[str, float] = {
    "ES": 0.16, "MES": 0.16, "NQ": 0.22, "MNQ": 0.22, "YM": 0.15, "MYM": 0.15, "RTY": 0.22, "M2K": 0.22,
    "CL": 0.35, "MCL": 0.35, "GC": 0.15, "MGC": 0.15, "BTC": 0.60, "MBT": 0.60, "NG": 0.60, "ZN": 0.06,
    "SPY": 0.16, "QQQ": 0.22, "IWM": 0.22, "AAPL": 0.28, "MSFT": 0.25,
}  # fmt: skip
DEFAULT_VOLUME_PER_MINUTE: dict[str, float] = {
    "ES": 1500.0, "MES": 800.0, "NQ": 600.0, "MNQ": 600.0, "YM": 100.0, "MYM": 150.0, "RTY": 150.0,
    "M2K": 100.0, "CL": 1500.0, "MCL": 300.0, "GC": 400.0, "MGC": 150.0, "BTC": 10.0, "MBT": 30.0,
    "SPY": 150_000.0, "QQQ": 100_000.0, "IWM": 60_000.0, "AAPL": 120_000.0, "MSFT": 60_000.0,
}  # fmt: skip
_FALLBACK_START_PRICE = 100.0
_FALLBACK_ANNUAL_VOL = 0.25
_FALLBACK_VOLUME = 100.0

TRENDING, CHOPPY = 1, 0
_TICKS_PER_BAR = 6  # open, high, low, two inner trades, close
_MINUTE_NS = 60 * NS_PER_SECOND


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticMarket:
    """Synthetic bars with the hidden state that made them: `regime` per bar (TRENDING=1 / CHOPPY=0)."""

    bars: BarFrame
    regime: npt.NDArray[np.int8]
    bar_size_ns: int


def synth_bars(
    instrument: Instrument,
    start: date | datetime,
    days: int,
    bar_size: timedelta | str = "1min",
    seed: int = 0,
    *,
    start_price: float | None = None,
    annual_vol: float | None = None,
    volume_per_minute: float | None = None,
    hours: TradingHours | None = None,
) -> BarFrame:
    """`days` trading sessions of synthetic bars from `start`; see `synth_market` for the arguments."""
    return synth_market(
        instrument,
        start,
        days,
        bar_size,
        seed,
        start_price=start_price,
        annual_vol=annual_vol,
        volume_per_minute=volume_per_minute,
        hours=hours,
    ).bars


def synth_market(
    instrument: Instrument,
    start: date | datetime,
    days: int,
    bar_size: timedelta | str = "1min",
    seed: int = 0,
    *,
    start_price: float | None = None,
    annual_vol: float | None = None,
    volume_per_minute: float | None = None,
    hours: TradingHours | None = None,
) -> SyntheticMarket:
    """Synthetic bars for the first `days` trading sessions whose trading day is on or after `start`.

    `start` as a date starts with that trading day's whole session; as an aware datetime, with the session it
    falls in and no bar before it. `bar_size` is intraday (1 s .. 12 h; bars lie on the epoch-aligned grid
    inside each session). Defaults per symbol: start price, annual volatility and mean volume per minute
    (unknown symbols: 100.0, 25 %, 100). `hours` default to the instrument's (Globex for futures).
    """
    step = parse_interval(bar_size)
    if step >= NS_PER_DAY:
        raise ParameterError(f"synthetic bar size {bar_size!r} must be intraday; resample 1min bars to '1d'")
    if days < 1:
        raise ParameterError(f"days {days} must be at least 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed {seed!r} must be an integer >= 0")
    hours = hours or hours_for(instrument)
    symbol = instrument.symbol.upper()
    price0 = DEFAULT_START_PRICE.get(symbol, _FALLBACK_START_PRICE) if start_price is None else start_price
    vol = DEFAULT_ANNUAL_VOL.get(symbol, _FALLBACK_ANNUAL_VOL) if annual_vol is None else annual_vol
    per_minute = (
        DEFAULT_VOLUME_PER_MINUTE.get(symbol, _FALLBACK_VOLUME)
        if volume_per_minute is None
        else volume_per_minute
    )
    if not (math.isfinite(price0) and price0 > 0):
        raise ParameterError(f"{instrument.key}: start price {price0!r} must be a positive number")
    if not (math.isfinite(vol) and 0 < vol < 5):
        raise ParameterError(f"{instrument.key}: annual volatility {vol!r} must be in (0, 5)")
    if not (math.isfinite(per_minute) and per_minute > 0):
        raise ParameterError(f"{instrument.key}: volume per minute {per_minute!r} must be positive")

    ts, session_start, tod_s, session_len_ns = _bar_times(hours, start, days, step)
    n = len(ts)
    rng_regime, rng_vol, rng_ret, rng_ohlc, rng_volume = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )

    # Scale: bar volatility from annual volatility over 252 sessions of this session length.
    bars_per_year = 252 * session_len_ns / step
    sigma_bar = vol / math.sqrt(bars_per_year)
    # Volume intensity by time of day, scaled to average 1 over a whole session.
    open_s = hours.open_time.hour * 3600 + hours.open_time.minute * 60 + hours.open_time.second
    one_session = (open_s + np.arange(0, session_len_ns, step) / NS_PER_SECOND) % 86_400.0
    activity = _intraday_activity(tod_s) / _intraday_activity(one_session).mean()
    vol_shape = np.sqrt(activity)

    regime, drift = _regimes(rng_regime, n, step)

    # Volatility clustering: log-vol is the sum of a fast AR(1) (half-life 4 h) and a slow one (half-life five
    # sessions), so calm and busy stretches last from hours to weeks.
    h = np.zeros(n)
    h_var = 0.0
    for half_life_h, sd in ((4.0, 0.2), (5 * 23.0, 0.35)):
        phi = 0.5 ** (step / (half_life_h * 3600 * NS_PER_SECOND))
        shocks = rng_vol.standard_normal(n) * (sd * math.sqrt(1 - phi**2))
        h += _ar1(shocks, phi, rng_vol.normal(0, sd))
        h_var += sd**2
    sigma = sigma_bar * vol_shape * np.exp(h - h_var / 2)

    # Log price = random walk (with drift while trending) + mean-reverting part (fed only while choppy).
    trending = regime == TRENDING
    walk_scale = np.where(trending, 1.0, 0.3)
    revert_scale = np.where(trending, 0.0, 0.95)
    phi_c = 0.5 ** (step / (20 * _MINUTE_NS))  # chop reverts with a ~20-minute half-life
    e_walk = rng_ret.standard_normal(n)
    e_revert = rng_ret.standard_normal(n)
    log_price = np.cumsum(drift * sigma_bar + sigma * walk_scale * e_walk)
    log_price += _ar1(sigma * revert_scale * e_revert, phi_c)

    p0_ticks = instrument.to_ticks(price0)
    if p0_ticks < 1:
        raise ParameterError(
            f"{instrument.key}: start price {price0} is below one tick {instrument.tick_size}"
        )
    close = np.maximum(np.rint(p0_ticks * np.exp(log_price)), 1).astype(np.int64)

    # Open: the previous close, give or take a tick; a new session opens with a gap of a few bars' moves.
    prev_close = np.r_[p0_ticks, close[:-1]]
    jitter = rng_ohlc.choice(np.array([-1, 0, 0, 0, 0, 1]), size=n)
    gap = np.rint(rng_ohlc.standard_normal(n) * 3.0 * sigma * prev_close).astype(np.int64)
    open_ = np.maximum(prev_close + np.where(session_start, gap, jitter), 1)
    wick_scale = 0.6 * sigma * close
    up = np.floor(np.abs(rng_ohlc.standard_normal(n)) * wick_scale).astype(np.int64)
    down = np.floor(np.abs(rng_ohlc.standard_normal(n)) * wick_scale).astype(np.int64)
    high = np.maximum(open_, close) + up
    low = np.maximum(np.minimum(open_, close) - down, 1)

    step_minutes = step / _MINUTE_NS
    # Busy (volatile) stretches trade more; exp(0.8 h - 0.32 var) has mean 1: E[exp(a h)] = exp(a^2 var / 2).
    mean_volume = per_minute * step_minutes * activity * np.exp(0.8 * h - 0.32 * h_var)
    volume = np.maximum(np.rint(mean_volume * rng_volume.lognormal(-0.06, 0.35, n)), 1)

    to_price = _tick_converter(instrument)
    frame = BarFrame(ts, to_price(open_), to_price(high), to_price(low), to_price(close), volume)
    return SyntheticMarket(bars=frame, regime=regime, bar_size_ns=step)


def synth_ticks(
    instrument: Instrument,
    start: date | datetime,
    days: int,
    bar_size: timedelta | str = "1min",
    seed: int = 0,
    *,
    start_price: float | None = None,
    annual_vol: float | None = None,
    volume_per_minute: float | None = None,
    hours: TradingHours | None = None,
) -> Iterator[Tick]:
    """Trade ticks (with a one-tick-wide quote around each trade) that aggregate exactly to `synth_bars`
    of the same arguments: per bar the open first, the close last, high, low and two inner trades between,
    at random times inside the bar; the bar's volume split over them."""
    market = synth_market(
        instrument,
        start,
        days,
        bar_size,
        seed,
        start_price=start_price,
        annual_vol=annual_vol,
        volume_per_minute=volume_per_minute,
        hours=hours,
    )
    bars = market.bars
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(6)[5])
    tick = float(instrument.tick_size)
    to_price = _tick_converter(instrument)
    chunk = 20_000
    for lo in range(0, len(bars), chunk):
        part = bars[lo : lo + chunk]
        m = len(part)
        k = _TICKS_PER_BAR
        o_t = np.rint(part.open / tick).astype(np.int64)
        h_t = np.rint(part.high / tick).astype(np.int64)
        l_t = np.rint(part.low / tick).astype(np.int64)
        c_t = np.rint(part.close / tick).astype(np.int64)
        inner = l_t[:, None] + np.floor(rng.random((m, 2)) * (h_t - l_t + 1)[:, None]).astype(np.int64)
        middle = np.column_stack([h_t, l_t, inner])
        middle = np.take_along_axis(middle, np.argsort(rng.random((m, 4)), axis=1), axis=1)
        prices = np.column_stack([o_t, middle, c_t])
        offsets = np.sort(rng.integers(0, market.bar_size_ns, (m, k)), axis=1)
        times = part.ts[:, None] + offsets
        vol = part.volume.astype(np.int64)
        sizes = np.repeat((vol // k)[:, None], k, axis=1)
        sizes[:, -1] += vol - (vol // k) * k
        buyer = rng.random((m, k)) < 0.5  # a buy lifts the ask: ask = trade, bid one tick lower
        bid_t = np.where(buyer, prices - 1, prices)
        ask_t = bid_t + 1
        quote_sizes = rng.integers(1, 60, (m, k, 2))
        columns = (
            times.ravel().tolist(),
            to_price(bid_t.ravel()).tolist(),
            to_price(ask_t.ravel()).tolist(),
            to_price(prices.ravel()).tolist(),
            quote_sizes[:, :, 0].ravel().astype(np.float64).tolist(),
            quote_sizes[:, :, 1].ravel().astype(np.float64).tolist(),
            sizes.ravel().astype(np.float64).tolist(),
        )
        yield from map(Tick._make, zip(*columns, strict=True))


# Internals --------------------------------------------------------------------------------------------------
def _bar_times(
    hours: TradingHours, start: date | datetime, days: int, step: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.float64], int]:
    """Bar open times inside `days` sessions, whether each opens a session, its local time of day (s), and
    the length of a session in ns."""
    if isinstance(start, datetime):
        start_ns = datetime_to_ns(start)
        first_day = hours.session_date(start_ns)
    else:
        start_ns = None
        first_day = start
    stamps: list[npt.NDArray[np.int64]] = []
    anchors: list[npt.NDArray[np.int64]] = []
    local_open_s = hours.open_time.hour * 3600 + hours.open_time.minute * 60 + hours.open_time.second
    # Volatility scales with the length of a regular session (the clock rule), not a holiday-shortened one.
    local_close_s = hours.close_time.hour * 3600 + hours.close_time.minute * 60 + hours.close_time.second
    session_len = (local_close_s - local_open_s + (86_400 if hours.overnight else 0)) * NS_PER_SECOND
    for day in hours.trading_days(first_day, days):
        day_stamps: list[npt.NDArray[np.int64]] = []
        for opened, closed in hours.session_segments(day):  # more than one around a holiday halt
            first = -(-opened // step) * step
            if start_ns is not None and first < start_ns:
                first = -(-start_ns // step) * step
            seg = np.arange(first, closed, step, dtype=np.int64)
            day_stamps.append(seg)
            # Each segment opens at the session's local open time: the anchor of its time of day.
            anchors.append(np.full(len(seg), opened, dtype=np.int64))
        stamps.append(np.concatenate(day_stamps))
    ts = np.concatenate(stamps) if stamps else np.empty(0, dtype=np.int64)
    counts = np.array([len(s) for s in stamps])
    starts_idx = np.r_[0, np.cumsum(counts)[:-1]]
    session_start = np.zeros(len(ts), dtype=bool)
    session_start[starts_idx[counts > 0]] = True
    # Local time of day = open time + time since the segment opened (DST-proof: each segment is anchored).
    opens = np.concatenate(anchors) if anchors else np.empty(0, dtype=np.int64)
    tod = (local_open_s + (ts - opens) / NS_PER_SECOND) % 86_400.0
    return ts, session_start, tod, session_len


def _intraday_activity(tod_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Relative trading activity by local time of day: a U over the US cash session, quiet overnight."""
    rth_open, rth_close = 9.5 * 3600, 16.0 * 3600
    u = (tod_s - rth_open) / (rth_close - rth_open)
    in_rth = (u >= 0) & (u < 1)
    since_globex_open = (tod_s - 18 * 3600) % 86_400.0
    overnight = 0.25 + 0.3 * np.exp(-since_globex_open / 1800.0)
    return np.where(in_rth, 1.0 + 3.0 * (2.0 * u - 1.0) ** 2, overnight)


def _regimes(
    rng: np.random.Generator, n: int, step: int
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]:
    """Per bar: regime (TRENDING / CHOPPY) and drift in units of the bar volatility.

    Episodes last a geometric number of bars with means of about 6 h (trend) and 8 h (chop) of trading;
    each trend gets a random direction and strength.
    """
    mean_trend = max(10.0, 6 * 3600 * NS_PER_SECOND / step)
    mean_chop = max(10.0, 8 * 3600 * NS_PER_SECOND / step)
    lengths: list[int] = []
    states: list[int] = []
    state = int(rng.integers(0, 2))
    total = 0
    while total < n:
        mean = mean_trend if state == TRENDING else mean_chop
        length = int(rng.geometric(1.0 / mean)) + 5
        lengths.append(length)
        states.append(state)
        total += length
        state = 1 - state
    state_arr = np.array(states, dtype=np.int8)
    strength = rng.uniform(0.03, 0.08, len(states)) * rng.choice(np.array([-1.0, 1.0]), len(states))
    episode_drift = np.where(state_arr == TRENDING, strength, 0.0)
    counts = np.array(lengths)
    return np.repeat(state_arr, counts)[:n], np.repeat(episode_drift, counts)[:n]


def _ar1(x: npt.NDArray[np.float64], phi: float, y0: float = 0.0) -> npt.NDArray[np.float64]:
    """y[t] = phi * y[t-1] + x[t] with y[-1] = y0, vectorized in blocks (exact up to rounding)."""
    n = len(x)
    if n == 0 or phi == 0.0:
        return x.astype(np.float64, copy=True)
    if not 0.0 < phi < 1.0:
        raise ValueError(f"AR(1) coefficient {phi} must be in (0, 1)")
    # Block length keeps phi**-block below 1e6, so the in-block rescaling loses at most ~6 digits of 16.
    block = int(max(1, min(4096, math.log(1e6) / -math.log(phi))))
    n_blocks = -(-n // block)
    padded = np.zeros(n_blocks * block)
    padded[:n] = x
    j = np.arange(block)
    within = np.cumsum(padded.reshape(n_blocks, block) * phi ** (-j), axis=1) * phi**j
    carry_in = np.empty(n_blocks)
    carry = y0
    decay = phi**block
    last = within[:, -1].tolist()
    for b in range(n_blocks):
        carry_in[b] = carry
        carry = decay * carry + last[b]
    return (within + carry_in[:, None] * phi ** (j + 1)).ravel()[:n]


def _tick_converter(instrument: Instrument) -> _TicksToPrice:
    return _TicksToPrice(Fraction(instrument.tick_size))


class _TicksToPrice:
    """Integer ticks to the float prices `Instrument.from_ticks` gives: tick = p/q, price = ticks * p / q
    with one rounding (the division), hence the float nearest the exact grid value."""

    __slots__ = ("_den", "_num")

    def __init__(self, tick: Fraction) -> None:
        self._num = float(tick.numerator)
        self._den = float(tick.denominator)

    def __call__(self, ticks: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        scaled = ticks.astype(np.float64) * self._num  # exact while |ticks * p| < 2**53
        return scaled / self._den if self._den != 1.0 else scaled

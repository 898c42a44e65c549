"""ma_breakout run by the real backtester, checked trade for trade against an independent computation."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest
import talib
from reference_vectorized import previous_max, previous_min, reference_trades, sma, trading_days

from ibot.backtest.engine import Backtester
from ibot.data.bars import BarFrame
from ibot.data.synth import synth_market
from ibot.model.catalog import get_instrument
from ibot.model.errors import ParameterError
from ibot.model.market import datetime_to_ns
from ibot.strategies import STRATEGIES, MaBreakout, get_strategy
from ibot.strategies.ma_breakout import trading_day_bounds

NY = ZoneInfo("America/New_York")
MES = get_instrument("MES")
TICK = float(MES.tick_size)
FIVE_MIN = 300 * 1_000_000_000

# (entry bar, side +1/-1, entry price in ticks, exit bar, exit price in ticks)
TradeRow = tuple[int, int, int, int | None, int | None]


def backtest_rows(bars: BarFrame, slippage_ticks: int = 0, **params: Any) -> tuple[list[TradeRow], list[Any]]:
    """The backtester's round trips as rows keyed by bar index, plus the raw Trade objects."""
    result = Backtester(MES, MaBreakout(**params), bars, slippage_ticks=slippage_ticks).run()
    rows: list[TradeRow] = []
    for t in result.trades:
        entry = int(np.searchsorted(bars.ts, t.entry_ts))
        exit_ = int(np.searchsorted(bars.ts, t.exit_ts))
        assert bars.ts[entry] == t.entry_ts and bars.ts[exit_] == t.exit_ts, "fill time is not a bar time"
        assert t.quantity == params.get("quantity", 1)
        rows.append(
            (
                entry,
                1 if t.side == "LONG" else -1,
                MES.to_ticks(t.entry_price),
                exit_,
                MES.to_ticks(t.exit_price),
            )
        )
        assert MES.is_on_grid(t.entry_price) and MES.is_on_grid(t.exit_price)
    return rows, result.trades


def reference_rows(
    bars: BarFrame, slippage_ticks: int = 0, events: Counter[str] | None = None, **params: Any
) -> list[TradeRow]:
    trades = reference_trades(
        bars.ts, bars.open, bars.high, bars.low, bars.close, TICK,
        slippage_ticks=slippage_ticks, events=events, **params,
    )  # fmt: skip
    return [(r.entry_bar, r.side, r.entry_ticks, r.exit_bar, r.exit_ticks) for r in trades]


def bars_from_closes(closes: list[float], times: list[datetime]) -> BarFrame:
    """Bars whose open is the previous close and whose range just spans open and close."""
    c = np.asarray(closes, dtype=np.float64)
    o = np.r_[c[0], c[:-1]]
    ts = np.asarray([datetime_to_ns(t) for t in times], dtype=np.int64)
    return BarFrame(ts, o, np.maximum(o, c), np.minimum(o, c), c, np.full(len(c), 100.0))


def five_minute_times(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(minutes=5 * k) for k in range(count)]


def ticks(price: float) -> int:
    return MES.to_ticks(price)


# --- the registry and the parameters ----------------------------------------------------------------------


def test_registry_finds_both_strategies_by_name() -> None:
    assert get_strategy("ma_breakout") is MaBreakout
    assert set(STRATEGIES) >= {"ma_breakout", "sma_reversal"}
    assert get_strategy("sma_reversal").name == "sma_reversal"


def test_unknown_strategy_name_lists_the_known_ones() -> None:
    with pytest.raises(ParameterError, match=r"'nope'.*ma_breakout.*sma_reversal"):
        get_strategy("nope")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"breakout_candles": 7}, "breakout_candles"),
        ({"breakout_bars": 0}, "breakout_bars"),
        ({"breakout_bars": 51}, "breakout_bars"),
        ({"limit_offset_ticks": -1}, "limit_offset_ticks"),
        ({"sma_period": "nine"}, "sma_period"),
        ({"sma_period": 9.5}, "sma_period"),
        ({"entry_filter": "macd"}, "entry_filter"),
        ({"max_trades_per_day": 0}, "max_trades_per_day"),
        ({"entry_timeout_bars": 0}, "entry_timeout_bars"),
        ({"quantity": 0}, "quantity"),
    ],
)
def test_bad_parameter_is_rejected_naming_it(params: dict[str, Any], named: str) -> None:
    with pytest.raises(ParameterError, match=named):
        MaBreakout(**params)


def test_parameters_from_the_command_line_are_parsed_to_their_types() -> None:
    s = MaBreakout(breakout_bars="5", entry_filter="slope", limit_offset_ticks="0")
    assert (s.p["breakout_bars"], s.p["entry_filter"], s.p["limit_offset_ticks"]) == (5, "slope", 0)
    assert s.p["sma_period"] == 9 and s.p["quantity"] == 1


# --- the trading day ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("day", [date(2024, 3, 8), date(2024, 3, 11), date(2024, 7, 3), date(2024, 11, 4)])
def test_trading_day_rolls_at_18_new_york_time_in_winter_and_summer(day: date) -> None:
    roll = datetime(day.year, day.month, day.day, 18, tzinfo=NY)
    before = datetime_to_ns(roll - timedelta(seconds=1))
    at = datetime_to_ns(roll)
    prev_roll = datetime_to_ns(datetime.combine(day - timedelta(days=1), roll.timetz()))
    assert trading_day_bounds(before) == (prev_roll, at)
    assert trading_day_bounds(at)[0] == at
    # the reference's own (vectorized) day numbering agrees on where the day changes
    d = trading_days(np.asarray([before, at], dtype=np.int64))
    assert d[1] == d[0] + 1


# --- the independent computation checks itself against TA-Lib -------------------------------------------


def test_reference_indicators_match_talib() -> None:
    bars = synth_market(MES, date(2024, 5, 6), 2, "5m", seed=11).bars
    np.testing.assert_allclose(
        sma(bars.close, 9), talib.SMA(bars.close, 9), rtol=0, atol=1e-9, equal_nan=True
    )
    hh = talib.MAX(bars.high, 7)
    ll = talib.MIN(bars.low, 7)
    np.testing.assert_array_equal(previous_max(bars.high, 7)[1:], hh[:-1])
    np.testing.assert_array_equal(previous_min(bars.low, 7)[1:], ll[:-1])


# --- hand-made series ---------------------------------------------------------------------------------------

# A 9:30 ET start on a winter Tuesday: everything below stays inside one trading day unless a test says so.
OPEN_0930 = datetime(2024, 3, 5, 9, 30, tzinfo=NY)


def cross_then_breakout_bars(bar6: tuple[float, float, float, float]) -> BarFrame:
    """Flat at 100, a cross up and breakout on bar 5, `bar6` as given, then a fall crossing down on bar 8."""
    rows = [(100.0, 100.25, 99.75, 100.0)] * 5
    rows += [(100.0, 100.5, 100.0, 100.5), bar6, (101.0, 101.25, 100.75, 101.0)]
    rows += [(101.0, 101.0, 99.5, 99.75), (99.75, 100.0, 99.5, 99.75)]
    rows += [(99.75, 100.0, 99.5, 99.75)] * 3
    return ohlc_bars(rows, five_minute_times(OPEN_0930, len(rows)))


def ohlc_bars(rows: list[tuple[float, float, float, float]], times: list[datetime]) -> BarFrame:
    o, h, lo, c = (np.asarray(col) for col in zip(*rows, strict=True))
    ts = np.asarray([datetime_to_ns(t) for t in times], dtype=np.int64)
    return BarFrame(ts, o, h, lo, c, np.full(len(rows), 10.0))


SMALL: dict[str, Any] = {
    "sma_period": 3,
    "breakout_bars": 2,
    "limit_offset_ticks": 2,
    "min_bars_between_reversals": 0,
}


def test_cross_up_and_breakout_enter_long_and_opposite_cross_flattens() -> None:
    # Bar 5: close 100.5 crosses SMA(3) = 100.17 from below (bar 4: close 100 <= SMA 100) and breaks the
    # previous two highs (100.25): BUY LMT 100.5 + 2 ticks = 101.0. Bar 6 opens at 100.75 <= 101.0: filled at
    # the open. Bar 8 closes 99.75 below SMA 100.58 (bar 7: 101 >= 100.83): flatten at market, filled at bar
    # 9's open 99.75. Afterwards the short side never breaks the previous lows (99.5): nothing else happens.
    bars = cross_then_breakout_bars((100.75, 101.25, 100.5, 101.0))
    expected = [(6, 1, ticks(100.75), 9, ticks(99.75))]
    rows, trades = backtest_rows(bars, **SMALL)
    assert rows == expected
    assert (trades[0].entry_reason, trades[0].exit_reason) == ("Open-Long", "flatten")
    assert reference_rows(bars, **SMALL) == expected


def test_entry_limit_is_k_ticks_through_the_close_and_fills_at_the_limit() -> None:
    # Bar 6 opens above the 101.0 limit (101.5) and trades down through it (low 100.75): filled at 101.0.
    bars = cross_then_breakout_bars((101.5, 101.75, 100.75, 101.25))
    expected = [(6, 1, ticks(101.0), 9, ticks(99.75))]
    assert backtest_rows(bars, **SMALL)[0] == expected
    assert reference_rows(bars, **SMALL) == expected
    # With K = 0 the limit is the close itself (100.5): bar 6 never trades below it, the 1-bar timeout cancels
    # it on bar 6, which still breaks out: BUY LMT 101.25 (its close), filled at bar 7's open 101.0.
    k0: dict[str, Any] = {**SMALL, "limit_offset_ticks": 0, "entry_timeout_bars": 1}
    expected = [(7, 1, ticks(101.0), 9, ticks(99.75))]
    assert backtest_rows(bars, **k0)[0] == expected
    assert reference_rows(bars, **k0) == expected


def test_breakout_compares_with_the_previous_candles_only() -> None:
    # Same cross, but bar 4's high is 100.5 = bar 5's close: close must be strictly above the previous highs,
    # so bar 5 does not enter (were bar 5's own high included, no close could ever break out).
    bars = cross_then_breakout_bars((100.75, 101.25, 100.5, 101.0))
    high = bars.high.copy()
    high[4] = 100.5
    bars = BarFrame(bars.ts, bars.open, high, bars.low, bars.close, bars.volume)
    rows, _ = backtest_rows(bars, **SMALL, entry_timeout_bars=1)
    # Bar 6 (close 101 > max(100.5, 100.5)) enters instead: BUY LMT 101.5, filled at bar 7's open 101.0.
    assert rows == [(7, 1, ticks(101.0), 9, ticks(99.75))]
    assert reference_rows(bars, **SMALL, entry_timeout_bars=1) == rows


# A triangle wave: 100, 101, 102, 103, 102, 101, 100, 99, 100, ... (open = previous close). With SMA(2) and
# N = 2 it crosses down on bars 4 + 8m and up on bars 8m (m >= 1); the breakout confirms one bar after each
# cross, the marketable limit fills at the next open, and the next cross flattens:
#   short filled on bar 6 @101 -> flattened bar 9 @100; long bar 10 @101 -> bar 13 @102; short bar 14 @101 ...
WAVE = [100.0, 101.0, 102.0, 103.0, 102.0, 101.0, 100.0, 99.0]
WAVE_PARAMS: dict[str, Any] = {
    "sma_period": 2,
    "breakout_bars": 2,
    "limit_offset_ticks": 2,
    "min_bars_between_reversals": 3,
}


def wave_trade(m: int) -> TradeRow:
    short = m % 2 == 0
    return (6 + 4 * m, -1 if short else 1, ticks(101.0), 9 + 4 * m, ticks(100.0 if short else 102.0))


def test_wave_trades_every_reversal_when_no_guard_binds() -> None:
    bars = bars_from_closes(WAVE * 5, five_minute_times(OPEN_0930, 40))
    # Entries on bars 6, 10, ..., 38; the last short (bar 38) is closed at the end of data (bar 39, close 99).
    expected = [wave_trade(m) for m in range(8)] + [(38, -1, ticks(101.0), 39, ticks(99.0))]
    rows, trades = backtest_rows(bars, **WAVE_PARAMS)
    assert rows == expected
    assert [t.entry_reason for t in trades[:2]] == ["Open-Short", "Open-Long"]
    assert trades[-1].exit_reason == "end of data"
    assert reference_rows(bars, **WAVE_PARAMS) == expected


def test_max_trades_per_day_blocks_entries_until_the_next_trading_day() -> None:
    # Bars 0-19 end at 16:55 ET; bar 20 opens the next trading day at 18:00 ET. Two entries a day are allowed:
    # bars 6 and 10 on day one; the crosses of bars 12 and 16 enter nothing; the count resets on bar 20, whose
    # cross down leads to the short of bar 22 and the long of bar 26.
    times = five_minute_times(datetime(2024, 3, 5, 15, 20, tzinfo=NY), 20)
    times += five_minute_times(datetime(2024, 3, 5, 18, 0, tzinfo=NY), 20)
    bars = bars_from_closes(WAVE * 5, times)
    params: dict[str, Any] = {**WAVE_PARAMS, "max_trades_per_day": 2}
    shifted = [(a + 16, s, p, (b or 0) + 16, q) for a, s, p, b, q in (wave_trade(0), wave_trade(1))]
    expected = [wave_trade(0), wave_trade(1), *shifted]
    assert backtest_rows(bars, **params)[0] == expected
    assert reference_rows(bars, **params) == expected
    # the same bars with the default cap trade every reversal of both days
    assert len(backtest_rows(bars, **WAVE_PARAMS)[0]) == 9


def test_min_bars_between_reversals_delays_the_next_entry() -> None:
    bars = bars_from_closes(WAVE * 3, five_minute_times(OPEN_0930, 24))
    params: dict[str, Any] = {**WAVE_PARAMS, "min_bars_between_reversals": 4}
    # The short fills on bar 6. The long breakout of bar 9 is only 3 bars later: blocked. Bar 10 (4 bars)
    # still breaks out (102 > 101): BUY LMT 102.5, filled at bar 11's open 102, flattened on bar 13 at 102.
    # The short breakouts of bars 13 and 14 come 2 and 3 bars after that entry: blocked; bar 15 (close 99 <
    # 100) enters, filled at bar 16's open 99; bar 16 crosses up, flattened at bar 17's open 100.
    expected = [
        wave_trade(0),
        (11, 1, ticks(102.0), 13, ticks(102.0)),
        (16, -1, ticks(99.0), 17, ticks(100.0)),
    ]
    rows, _ = backtest_rows(bars, **params)
    assert rows[:3] == expected
    assert reference_rows(bars, **params)[:3] == expected
    assert backtest_rows(bars, **WAVE_PARAMS)[0][:2] == [wave_trade(0), wave_trade(1)]


def test_unfilled_entry_times_out_and_the_armed_side_enters_again() -> None:
    # Bar 5 arms and places BUY LMT 101.0; bars 6 and 7 open above it and never trade below it, so with a
    # 2-bar timeout it is cancelled on bar 7, where the breakout still holds: a new BUY LMT 102.5 + 2 ticks =
    # 103.0, filled at bar 8's open 102.75. Bar 9 crosses down (close 100 < SMA 101.75): out at bar 10's open.
    rows = [(100.0, 100.25, 99.75, 100.0)] * 5
    rows += [(100.0, 100.5, 100.0, 100.5), (101.5, 102.0, 101.25, 102.0), (102.0, 102.5, 101.5, 102.5)]
    rows += [(102.75, 103.0, 102.5, 102.75), (102.0, 102.0, 100.0, 100.0), (100.0, 100.0, 100.0, 100.0)]
    bars = ohlc_bars(rows, five_minute_times(OPEN_0930, len(rows)))
    params: dict[str, Any] = {**SMALL, "entry_timeout_bars": 2}
    expected = [(8, 1, ticks(102.75), 10, ticks(100.0))]
    assert backtest_rows(bars, **params)[0] == expected
    assert reference_rows(bars, **params) == expected


def test_cross_cancels_a_working_entry() -> None:
    # K = 0: bar 5 places BUY LMT 100.5. Bars 6-7 gap up and stay above it; bar 7 closes 102 below SMA(3)
    # 102.17 (bar 6: 104 >= 101.5): a cross down, which cancels the long entry and arms the short side. Bar 8
    # trades down through 100.5 (the cancelled order would have filled there) and closes 100.25 below the
    # previous lows (102): SELL LMT 100.25, filled at bar 9's open 100.25, held to the end of data.
    rows = [(100.0, 100.25, 99.75, 100.0)] * 5
    rows += [(100.0, 100.5, 100.0, 100.5), (102.0, 104.0, 102.0, 104.0), (104.0, 104.0, 102.0, 102.0)]
    rows += [(102.0, 102.0, 100.0, 100.25), (100.25, 100.5, 100.0, 100.25), (100.25, 100.5, 100.0, 100.25)]
    bars = ohlc_bars(rows, five_minute_times(OPEN_0930, len(rows)))
    params: dict[str, Any] = {**SMALL, "limit_offset_ticks": 0, "entry_timeout_bars": 5}
    expected = [(9, -1, ticks(100.25), 10, ticks(100.25))]
    rows_bt, trades = backtest_rows(bars, **params)
    assert rows_bt == expected
    assert (trades[0].entry_reason, trades[0].exit_reason) == ("Open-Short", "end of data")
    assert reference_rows(bars, **params) == expected


def test_entry_sent_on_the_last_bar_of_the_day_meets_only_the_next_open() -> None:
    # The bar-6 limit fill of the test above, but bar 5 is the day's last bar (16:55 ET) and bar 6 opens the
    # next trading day (18:00 ET). The DAY order meets bar 6's open (101.5, above the 101.0 limit) and then
    # expires; bar 6 still breaks out, so a new BUY LMT 101.75 fills at bar 7's open 101.0.
    row6 = (101.5, 101.75, 100.75, 101.25)
    same_day = cross_then_breakout_bars(row6)
    assert backtest_rows(same_day, **SMALL)[0] == [(6, 1, ticks(101.0), 9, ticks(99.75))]
    times = five_minute_times(datetime(2024, 3, 5, 16, 30, tzinfo=NY), 6)
    times += five_minute_times(datetime(2024, 3, 5, 18, 0, tzinfo=NY), len(same_day.ts) - 6)
    ts = np.asarray([datetime_to_ns(t) for t in times], dtype=np.int64)
    bars = BarFrame(ts, same_day.open, same_day.high, same_day.low, same_day.close, same_day.volume)
    expected = [(7, 1, ticks(101.0), 9, ticks(99.75))]
    assert backtest_rows(bars, **SMALL)[0] == expected
    assert reference_rows(bars, **SMALL) == expected


# --- synthetic markets: backtester == independent computation, trade for trade ------------------------------

PARAM_SETS: list[dict[str, Any]] = [
    {},
    {"entry_filter": "slope"},
    {"entry_filter": "slope", "slope_bars": 1, "sma_period": 5, "limit_offset_ticks": 0,
     "entry_timeout_bars": 1},
    {"breakout_bars": 3, "limit_offset_ticks": 0, "min_bars_between_reversals": 0, "entry_timeout_bars": 1,
     "max_trades_per_day": 1000},
    {"breakout_bars": 10, "limit_offset_ticks": 4, "min_bars_between_reversals": 12, "entry_timeout_bars": 6,
     "max_trades_per_day": 5, "sma_period": 20},
    {"breakout_bars": 5, "max_trades_per_day": 1000, "entry_timeout_bars": 40, "quantity": 3},
]  # fmt: skip
# (seed, bar size, trading days, jumps): `jumps` shifts whole bars by random gaps of 3-12 ticks, so that
# marketable limits are sometimes left behind and entries time out, expire or are cancelled by a cross.
MARKETS = [(1, "5m", 15, False), (2, "5m", 15, True), (3, "1m", 4, True), (4, "5m", 15, True)]


def market(seed: int, bar_size: str, days: int, jumps: bool) -> tuple[BarFrame, npt.NDArray[np.int8]]:
    """Synthetic bars (several thousand) and their hidden regime per bar (1 trending, 0 choppy)."""
    m = synth_market(MES, date(2024, 3, 4), days, bar_size, seed=seed)
    b = m.bars
    if not jumps:
        return b, m.regime
    rng = np.random.default_rng(seed)
    n = len(b.ts)
    gaps = np.where(rng.random(n) < 0.2, rng.integers(3, 13, n) * rng.choice([-1, 1], n), 0)
    shift = np.cumsum(gaps) * TICK
    return BarFrame(b.ts, b.open + shift, b.high + shift, b.low + shift, b.close + shift, b.volume), m.regime


@pytest.mark.parametrize(("seed", "bar_size", "days", "jumps"), MARKETS)
@pytest.mark.parametrize(
    "params", PARAM_SETS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "default"
)
def test_backtest_matches_the_independent_computation(
    seed: int, bar_size: str, days: int, jumps: bool, params: dict[str, Any]
) -> None:
    bars, _ = market(seed, bar_size, days, jumps)
    assert len(bars.ts) >= 4000
    slippage = seed % 2
    rows, trades = backtest_rows(bars, slippage_ticks=slippage, **params)
    expected = reference_rows(bars, slippage_ticks=slippage, **params)
    assert len(rows) > 10
    for k, (got, want) in enumerate(zip(rows, expected, strict=False)):
        assert got == want, f"trade {k} differs: backtest {got} != reference {want}"
    assert len(rows) == len(expected)
    assert {t.entry_reason for t in trades} <= {"Open-Long", "Open-Short"}
    assert {t.exit_reason for t in trades} <= {"flatten", "end of data"}


def test_synthetic_markets_exercise_every_rule() -> None:
    """The comparison above is only as good as its data: both regimes occur and every rule fires somewhere."""
    events: Counter[str] = Counter()
    regimes: set[int] = set()
    for seed, bar_size, days, jumps in MARKETS:
        bars, regime = market(seed, bar_size, days, jumps)
        regimes |= set(np.unique(regime).tolist())
        for params in PARAM_SETS:
            reference_rows(bars, events=events, **params)
    assert regimes == {0, 1}
    for rule in (
        "entry filled at open",
        "entry filled at limit",
        "entry cancelled by a cross",
        "entry timed out",
        "entry expired at day end",
        "flatten",
        "blocked by max_trades_per_day",
        "blocked by min_bars_between_reversals",
    ):
        assert events[rule] > 0, f"no synthetic run exercised: {rule} ({dict(events)})"

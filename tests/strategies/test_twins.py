"""The compiled twins equal the event-driven Backtester: trade for trade, fill for fill, bar for bar."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibot.backtest.compiled import TwinRun, load_twin, run_backtest
from ibot.backtest.engine import Backtester
from ibot.backtest.report import BacktestResult
from ibot.data.bars import BarFrame
from ibot.data.synth import synth_bars
from ibot.exchange.fees import IB_MICRO_FUTURES, FeeModel
from ibot.exchange.matching import DailySessions, FillRules
from ibot.indicators.streaming import SMA
from ibot.model.catalog import get_instrument
from ibot.model.errors import BarDataError
from ibot.model.market import datetime_to_ns
from ibot.model.orders import OrderUpdate
from ibot.strategies.ma_breakout import MaBreakout
from ibot.strategies.sma_reversal import SmaReversal
from ibot.strategies.twins import ma_breakout as ma_twin
from ibot.strategies.twins import sma_reversal as sma_twin
from ibot.strategies.twins._kernel_common import exact_sum, previous_extreme, sma_stream
from ibot.strategies.twins.result import prepare, summarize

CUSTOM_FEES = FeeModel(Decimal("0.85"), Decimal("0.75"), Decimal("0.02"))  # e.g. MGC on IBKR's plans


@cache
def bars(symbol: str, bar_size: str, seed: int, days: int = 6) -> BarFrame:
    return synth_bars(get_instrument(symbol), date(2025, 3, 3), days, bar_size, seed)


def engine_run(
    strategy: Any,
    symbol: str,
    frame: BarFrame,
    fees: FeeModel = IB_MICRO_FUTURES,
    rules: FillRules | None = None,
    sessions: DailySessions | None = None,
    close_at_end: bool = True,
) -> BacktestResult:
    return Backtester(
        get_instrument(symbol),
        strategy,
        frame,
        fees=fees,
        rules=rules or FillRules(),
        sessions=sessions or DailySessions(),
        close_at_end=close_at_end,
    ).run()


def twin_run(
    strategy: Any,
    symbol: str,
    frame: BarFrame,
    fees: FeeModel = IB_MICRO_FUTURES,
    rules: FillRules | None = None,
    sessions: DailySessions | None = None,
    close_at_end: bool = True,
) -> BacktestResult:
    twin = load_twin(type(strategy))
    assert twin is not None
    spec = TwinRun(
        strategy,
        get_instrument(symbol),
        frame,
        fees,
        rules or FillRules(),
        sessions or DailySessions(),
        Decimal(25_000),
        close_at_end,
    )
    return twin(spec)


def assert_same(got: BacktestResult, want: BacktestResult) -> None:
    """Everything a BacktestResult holds except the wall time."""
    assert got.fills == want.fills
    assert len(got.trades) == len(want.trades)
    for g, w in zip(got.trades, want.trades, strict=True):
        assert g == w, (g, w)
        assert g.row() == w.row()  # money as text too: 1.24 is not 1.240
    assert np.array_equal(got.ts, want.ts)
    assert np.array_equal(got.close, want.close)
    assert got.position.dtype == want.position.dtype and np.array_equal(got.position, want.position)
    assert got.equity.dtype == want.equity.dtype and np.array_equal(got.equity, want.equity)
    assert np.array_equal(got.day_ids, want.day_ids)
    assert got.logs == want.logs
    assert (got.strategy, got.params, got.initial_capital) == (
        want.strategy,
        want.params,
        want.initial_capital,
    )
    assert got.metrics == want.metrics
    assert got.to_dict() | {"elapsed_s": 0, "bars_per_second": 0} == want.to_dict() | {
        "elapsed_s": 0,
        "bars_per_second": 0,
    }


def check(cls: type, params: dict[str, Any], symbol: str, frame: BarFrame, **kw: Any) -> BacktestResult:
    want = engine_run(cls(**params), symbol, frame, **kw)
    got = twin_run(cls(**params), symbol, frame, **kw)
    assert_same(got, want)
    return want


# Fixed cases ----------------------------------------------------------------------------------------------

DATA = [("MES", "1min", 1), ("MES", "5min", 2), ("MGC", "1min", 3), ("MCL", "5min", 4), ("MCL", "1min", 5)]


@pytest.mark.parametrize(("symbol", "bar_size", "seed"), DATA)
@pytest.mark.parametrize("slip", [0, 1, 2])
@pytest.mark.parametrize("params", [{}, {"sma_period": 3, "quantity": 2}, {"sma_period": 40, "quantity": 7}])
def test_sma_reversal_equals_the_engine(
    symbol: str, bar_size: str, seed: int, slip: int, params: dict[str, Any]
) -> None:
    want = check(
        SmaReversal, params, symbol, bars(symbol, bar_size, seed), rules=FillRules(slippage_ticks=slip)
    )
    assert len(want.trades) > 20
    assert want.trades[-1].exit_reason == "end of data"  # always in the market: the end closes it


BREAKOUT_CASES: list[dict[str, Any]] = [
    {},
    {"entry_filter": "slope", "slope_bars": 1},
    {"entry_filter": "slope", "slope_bars": 12, "sma_period": 20, "max_trades_per_day": 10_000},
    {"max_trades_per_day": 1, "min_bars_between_reversals": 0, "limit_offset_ticks": 0},
    {"max_trades_per_day": 3, "entry_timeout_bars": 1, "quantity": 4},
    {"sma_period": 30, "breakout_bars": 20, "entry_timeout_bars": 2, "max_trades_per_day": 10_000},
    {"sma_period": 5, "breakout_bars": 2, "entry_timeout_bars": 4, "min_bars_between_reversals": 40},
    {"limit_offset_ticks": 0, "entry_timeout_bars": 5, "max_trades_per_day": 10_000, "sma_period": 14},
    {"limit_offset_ticks": 25, "entry_timeout_bars": 3, "max_trades_per_day": 10_000, "quantity": 2},
]


@pytest.mark.parametrize(("symbol", "bar_size", "seed"), DATA)
@pytest.mark.parametrize("params", BREAKOUT_CASES)
def test_ma_breakout_equals_the_engine(symbol: str, bar_size: str, seed: int, params: dict[str, Any]) -> None:
    frame = bars(symbol, bar_size, seed)
    for slip, touch in ((0, False), (1, True), (2, False)):
        fees = CUSTOM_FEES if slip == 1 else IB_MICRO_FUTURES
        want = check(
            MaBreakout, params, symbol, frame, fees=fees, rules=FillRules(slip, limit_fills_on_touch=touch)
        )
        assert want.trades


def test_the_daily_cap_binds_and_is_logged() -> None:
    want = check(MaBreakout, {"max_trades_per_day": 2}, "MES", bars("MES", "1min", 1))
    assert want.logs and all("daily cap of 2 entries" in msg for _, msg in want.logs)
    days = want.day_ids[np.searchsorted(want.ts, [t.entry_ts for t in want.trades])]
    assert np.bincount(days).max() == 2


class _CountingBreakout(MaBreakout):
    """MaBreakout that counts its order updates and its entries expired at the day's end."""

    name: ClassVar[str] = "ma_breakout"
    expired = 0
    updates = 0

    def on_order_update(self, update: OrderUpdate) -> None:
        type(self).updates += 1
        if "expired" in update.message:
            type(self).expired += 1
        super().on_order_update(update)


@pytest.mark.parametrize(
    "sessions",
    [DailySessions(), DailySessions("America/Chicago", time(15, 0)), DailySessions("UTC", time(0, 0))],
)
def test_day_orders_expire_as_in_the_engine(sessions: DailySessions) -> None:
    """Entries that cannot fill soon (no offset, no timeout to speak of) meet the day's end: they expire at
    the trading day given by the run's sessions, on 1-min and 5-min bars, as the engine expires them."""
    params = {"limit_offset_ticks": 0, "entry_timeout_bars": 10_000, "max_trades_per_day": 10_000}
    _CountingBreakout.expired = 0
    for symbol, bar_size, seed in DATA:
        frame = bars(symbol, bar_size, seed)
        want = engine_run(_CountingBreakout(**params), symbol, frame, sessions=sessions)
        got = twin_run(MaBreakout(**params), symbol, frame, sessions=sessions)
        assert_same(got, want)
    assert _CountingBreakout.expired > 0


def _session_edge_bars(ohlc: list[tuple[float, float, float, float]], before_close: int) -> BarFrame:
    """MES 1-min bars: the first `before_close` end at 16:59 New York (the trading day's last minute), the
    rest start at 18:00, the next trading day's first instant (exactly when DAY orders expire)."""
    ny = ZoneInfo("America/New_York")
    last = datetime(2025, 3, 4, 16, 59, tzinfo=ny)
    times = [last - timedelta(minutes=before_close - 1 - k) for k in range(before_close)]
    times += [datetime(2025, 3, 4, 18, k, tzinfo=ny) for k in range(len(ohlc) - before_close)]
    cols = np.array(ohlc, dtype=np.float64).T
    ts = np.array([datetime_to_ns(t) for t in times], dtype=np.int64)
    return BarFrame(ts, cols[0], cols[1], cols[2], cols[3], np.full(len(ohlc), 100.0))


EDGE = {
    "sma_period": 2,
    "breakout_bars": 2,
    "limit_offset_ticks": 0,
    "entry_timeout_bars": 10_000,
    "max_trades_per_day": 10_000,
    "min_bars_between_reversals": 0,
}
# Falling closes (no cross), then bar 4 closes at 103.5 above the SMA and the two previous highs: a buy
# limit at 103.5. Bars 5-6 hold above it; bar 7, the next trading day's first, opens at 103 (marketable).
RISE = [(104, 104, 104, 104), (104, 104, 103, 103), (103, 103, 102, 102), (102, 102, 100, 100)]
RISE += [(100, 103.5, 100, 103.5)]
HOLD = [(104, 105, 103.75, 104.5), (104.5, 105.5, 104, 105)]
GAP = [(103, 103.5, 102.5, 103)]


def test_a_working_entry_expires_before_the_next_days_open() -> None:
    """An entry that met bars of its day expires at the roll, before the next day's open could fill it."""
    frame = _session_edge_bars(RISE + HOLD + GAP, before_close=7)
    want = check(MaBreakout, EDGE, "MES", frame)
    assert want.fills == 0


def test_an_entry_sent_on_the_days_last_bar_gets_the_next_open() -> None:
    """Sent during the day's last bar, it still meets the next bar's open (then would expire)."""
    frame = _session_edge_bars(RISE + GAP, before_close=5)
    want = check(MaBreakout, EDGE, "MES", frame)
    assert want.fills == 2 and want.trades[0].entry_ts == frame.ts[5] and want.trades[0].entry_price == 103.0
    # An open above the limit does not fill it; the order expires right there, though the bar trades below.
    frame = _session_edge_bars([*RISE, (104, 104.5, 103, 103.25)], before_close=5)
    assert check(MaBreakout, EDGE, "MES", frame).fills == 0


@pytest.mark.parametrize("cls", [SmaReversal, MaBreakout])
def test_an_open_position_at_the_end(cls: type) -> None:
    """Data ending in a position: closed at the last close ('end of data'), or left open and not a trade."""
    frame = bars("MES", "1min", 1)
    params = {"max_trades_per_day": 10_000} if cls is MaBreakout else {}
    full = engine_run(cls(**params), "MES", frame, close_at_end=False)
    n = int(np.flatnonzero(full.position[100:])[0]) + 101  # the first cut after bar 100 ending in a position
    cut = BarFrame(*(getattr(frame, c)[:n] for c in ("ts", "open", "high", "low", "close", "volume")))
    closed = check(cls, params, "MES", cut)
    assert closed.trades[-1].exit_reason == "end of data" and closed.position[-1] == 0
    kept = check(cls, params, "MES", cut, close_at_end=False)
    assert kept.position[-1] != 0 and len(kept.trades) == len(closed.trades) - 1


# Random draws over every declared range ---------------------------------------------------------------------


def _param(cls: type, name: str) -> Any:
    return cls.describe_params()[name]


def _drawn(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    """A value anywhere in each parameter's declared range, with small values drawn often."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for p in cls.params:
        if p.choices:
            fields[p.name] = st.sampled_from(p.choices)
        else:
            lo, hi = int(p.low), int(p.high)
            fields[p.name] = st.one_of(st.integers(lo, min(hi, lo + 12)), st.integers(lo, hi))
    return st.fixed_dictionaries(fields)


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DRAW_DATA = st.sampled_from([("MES", "1min", 11, 3), ("MGC", "5min", 12, 8), ("MCL", "1min", 13, 3)])


@SETTINGS
@given(params=_drawn(MaBreakout), data=DRAW_DATA, slip=st.integers(0, 3), touch=st.booleans())
def test_ma_breakout_random_params(params: dict[str, Any], data: Any, slip: int, touch: bool) -> None:
    symbol, bar_size, seed, days = data
    check(MaBreakout, params, symbol, bars(symbol, bar_size, seed, days), rules=FillRules(slip, touch))


@SETTINGS
@given(params=_drawn(SmaReversal), data=DRAW_DATA, slip=st.integers(0, 3))
def test_sma_reversal_random_params(params: dict[str, Any], data: Any, slip: int) -> None:
    symbol, bar_size, seed, days = data
    check(SmaReversal, params, symbol, bars(symbol, bar_size, seed, days), rules=FillRules(slip))


# The fast path and the pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(("module", "cls"), [(sma_twin, SmaReversal), (ma_twin, MaBreakout)])
def test_the_fast_summary_matches_the_full_result(module: Any, cls: type) -> None:
    frame = bars("MGC", "1min", 3)
    inst = get_instrument("MGC")
    want = engine_run(cls(sma_period=12), "MGC", frame, fees=CUSTOM_FEES, rules=FillRules(1))
    data = prepare(inst, frame)
    s = summarize(
        data, module.simulate(data, cls(sma_period=12).p, FillRules(1)), CUSTOM_FEES, Decimal(25_000)
    )
    assert s.net_pnl == want.metrics.net_pnl and s.trades == want.metrics.trades > 0
    assert np.array_equal(s.equity, want.equity)
    days, starts = np.unique(want.day_ids, return_index=True)
    exit_days = np.searchsorted(want.ts[starts], [t.exit_ts for t in want.trades], side="right") - 1
    assert len(s.trades_per_day) == len(days) == want.metrics.trading_days
    assert np.array_equal(s.trades_per_day, np.bincount(exit_days, minlength=len(days)))


def test_run_backtest_takes_the_twin_and_falls_back_where_it_must() -> None:
    inst = get_instrument("MES")
    frame = bars("MES", "1min", 1)
    assert load_twin(SmaReversal) is sma_twin.run and load_twin(MaBreakout) is ma_twin.run
    got = run_backtest(MaBreakout(), inst, frame, slippage_ticks=1)
    assert_same(got, Backtester(inst, MaBreakout(), frame, slippage_ticks=1).run())
    # A bar-volume cap splits fills, which the twins do not model: the event-driven engine runs instead.
    capped = FillRules(bar_volume_participation=0.01)
    got = run_backtest(SmaReversal(quantity=5), inst, frame, rules=capped)
    assert_same(got, Backtester(inst, SmaReversal(quantity=5), frame, rules=capped).run())
    # A subclass inherits the twin's name but may change the logic: it runs event-driven (its hook runs).
    _CountingBreakout.updates = 0
    got = run_backtest(_CountingBreakout(), inst, frame)
    assert _CountingBreakout.updates > 0
    assert_same(got, Backtester(inst, MaBreakout(), frame).run())


def test_bad_bars_are_refused_as_the_engine_refuses_them() -> None:
    frame = bars("MES", "1min", 1)
    cols = {c: np.array(getattr(frame, c)) for c in ("ts", "open", "high", "low", "close", "volume")}
    cols["close"][5] += 0.1  # off the 0.25 grid
    with pytest.raises(BarDataError) as engine_error:
        engine_run(SmaReversal(), "MES", cols)  # type: ignore[arg-type]
    with pytest.raises(BarDataError) as twin_error:
        twin_run(SmaReversal(), "MES", cols)  # type: ignore[arg-type]
    assert str(twin_error.value) == str(engine_error.value)


@SETTINGS
@given(
    st.lists(
        st.floats(-1e12, 1e12, allow_nan=False) | st.sampled_from([1e16, -1e16, 0.1, 0.2, -0.3]), max_size=60
    )
)
def test_exact_sum_is_fsum(values: list[float]) -> None:
    arr = np.array(values, dtype=np.float64)
    assert exact_sum(arr, 0, len(arr)) == math.fsum(values)


def test_sma_and_previous_extremes_match_the_streaming_indicators() -> None:
    frame = bars("MCL", "1min", 5)  # 0.01 grid: the running sum rounds, the exact re-sums matter
    for period in (2, 3, 9, 64, 65, 200):
        ind = SMA(period)
        want = np.array([ind.update(x) for x in frame.close.tolist()])
        assert np.array_equal(sma_stream(frame.close, period), want, equal_nan=True)
    for period in (1, 2, 7, 50):
        got = previous_extreme(frame.high, period, 1.0)
        got_low = previous_extreme(frame.low, period, -1.0)
        for t in (0, period - 1, period, period + 1, 500, len(frame.high) - 1):
            if t < period:
                assert math.isnan(got[t]) and math.isnan(got_low[t])
            else:
                assert got[t] == frame.high[t - period : t].max()
                assert got_low[t] == frame.low[t - period : t].min()

"""Streaming == vectorized == TA-Lib, on tick-grid random walks, trends, chop, constants and raw floats.

Tolerances:
- streaming vs vectorized: EMA, ATR, Highest, Lowest exactly equal (same float operations); SMA and Slope
  sum in another order, so rtol 1e-12 with atol 1e-12 x the series' largest magnitude (a slope or mean near
  zero has no meaningful relative error).
- vs TA-Lib: same NaN positions, values within rtol 1e-9 and atol 1e-9 (TA-Lib's bundled library picks a
  CPU-specific build at run time; on FMA machines its ATR differs from the plain formula by a few ulps).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from ibot.indicators import ATR, EMA, SMA, Highest, Lowest, Slope, atr, ema, highest, lowest, slope, sma
from ibot.model.market import Bar

Array = NDArray[np.float64]
TICK = 0.25  # CME MES/ES tick size in index points
BARS = 5_000
PERIODS = (1, 2, 5, 9, 14, 50)


def _ohlc(close: Array, rng: np.random.Generator) -> tuple[Array, Array, Array]:
    """High/low a few ticks around the close, so every bar is sound (low <= close <= high)."""
    high = close + rng.integers(0, 9, close.size) * TICK
    low = close - rng.integers(0, 9, close.size) * TICK
    return high, low, close


def _on_grid(x: Array) -> Array:
    return np.round(x / TICK) * TICK


def _series() -> dict[str, tuple[Array, Array, Array]]:
    rng = np.random.default_rng(20240611)
    steps = rng.integers(-4, 5, BARS) * TICK
    walk = 5000.0 + np.cumsum(steps)
    trend = _on_grid(4000.0 + 0.8 * np.arange(BARS) + rng.normal(0.0, 1.5, BARS))
    chop = _on_grid(4500.0 + 6.0 * np.sin(np.arange(BARS) * 0.9) + rng.normal(0.0, 2.0, BARS))
    constant = np.full(BARS, 4321.75)
    # Off the grid: sums round, so this is the case that exercises the SMA/Slope tolerances.
    floats = 100.0 + np.cumsum(rng.normal(0.0, 0.37, BARS)) + rng.random(BARS) * 1e-3
    out = {}
    for name, close in (("walk", walk), ("trend", trend), ("chop", chop), ("constant", constant)):
        out[name] = _ohlc(close, rng)
    out["floats"] = (floats + rng.random(BARS), floats - rng.random(BARS), floats)
    return out


SERIES = _series()

# name, streaming class, vectorized twin, TA-Lib function (None: not defined for period 1), exact twin?
CloseIndicator = type[SMA | EMA | Highest | Lowest | Slope]
CLOSE_INDICATORS: list[
    tuple[str, CloseIndicator, Callable[[Array, int], Array], Callable[..., Array], bool]
] = [
    ("sma", SMA, sma, talib.SMA, False),
    ("ema", EMA, ema, talib.EMA, True),
    ("highest", Highest, highest, talib.MAX, True),
    ("lowest", Lowest, lowest, talib.MIN, True),
    ("slope", Slope, slope, talib.LINEARREG_SLOPE, False),
]


def _bars(high: Array, low: Array, close: Array) -> list[Bar]:
    return [
        Bar(i * 60_000_000_000, c, h, lo, c, 1.0)
        for i, (h, lo, c) in enumerate(zip(high.tolist(), low.tolist(), close.tolist(), strict=True))
    ]


def _assert_twins(streamed: Array, vectorized: Array, exact: bool, scale: float) -> None:
    np.testing.assert_array_equal(np.isnan(streamed), np.isnan(vectorized))
    if exact:
        np.testing.assert_array_equal(streamed, vectorized)
    else:
        np.testing.assert_allclose(streamed, vectorized, rtol=1e-12, atol=1e-12 * scale)


def _assert_matches_talib(ours: Array, theirs: Array) -> None:
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg="warm-up NaN positions differ")
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


# Slope(1) is left out: a slope needs two points, so period 1 is rejected (see test_streaming).
_CLOSE_CASES = [
    pytest.param(*row, period, id=f"{row[0]}-{period}")
    for row in CLOSE_INDICATORS
    for period in PERIODS
    if not (row[1] is Slope and period == 1)
]


@pytest.mark.parametrize("series", sorted(SERIES))
@pytest.mark.parametrize(("name", "cls", "twin", "ta_func", "exact", "period"), _CLOSE_CASES)
def test_close_indicator_streaming_equals_vectorized_equals_talib(
    name: str,
    cls: CloseIndicator,
    twin: Callable[[Array, int], Array],
    ta_func: Callable[..., Array],
    exact: bool,
    period: int,
    series: str,
) -> None:
    high, low, close = SERIES[series]
    ind = cls(period)
    streamed = np.array([ind.update(v) for v in close.tolist()])
    by_bar = cls(period)
    streamed_bars = np.array([by_bar.update_bar(b) for b in _bars(high, low, close)])
    vectorized = twin(close, period)

    np.testing.assert_array_equal(streamed_bars, streamed)  # update_bar feeds the close
    _assert_twins(streamed, vectorized, exact, float(np.abs(close).max()))
    if period == 1 and name in ("highest", "lowest"):
        reference = close  # TA-Lib rejects MAX/MIN(1); the max of one value is that value
    else:
        reference = ta_func(close, timeperiod=period)
    _assert_matches_talib(streamed, reference)
    assert ind.ready and ind.value == streamed[-1]


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("series", sorted(SERIES))
def test_atr_streaming_equals_vectorized_equals_talib(series: str, period: int) -> None:
    high, low, close = SERIES[series]
    ind = ATR(period)
    streamed = np.array(
        [ind.update(h, lo, c) for h, lo, c in zip(high.tolist(), low.tolist(), close.tolist(), strict=True)]
    )
    by_bar = ATR(period)
    streamed_bars = np.array([by_bar.update_bar(b) for b in _bars(high, low, close)])

    np.testing.assert_array_equal(streamed_bars, streamed)
    _assert_twins(streamed, atr(high, low, close, period), exact=True, scale=1.0)
    _assert_matches_talib(streamed, talib.ATR(high, low, close, timeperiod=period))
    assert int(np.isnan(streamed).sum()) == period  # first value on bar index `period`


def test_constant_prices_give_flat_indicators() -> None:
    close = SERIES["constant"][2]
    level = float(close[0])
    assert np.all(sma(close, 9)[8:] == level)
    assert np.all(ema(close, 9)[8:] == level)
    assert np.all(slope(close, 9)[8:] == 0.0)
    ind = ATR(5)
    for _ in range(10):
        ind.update(level, level, level)
    assert ind.value == 0.0


def test_sma_and_slope_do_not_drift_over_a_million_updates() -> None:
    """Half a million values near 1e6 then half a million near 1: a plain running sum would keep the big
    values' rounding errors (~5e-8 here) and be visibly wrong on the small ones; the periodic exact re-sum
    must not."""
    rng = np.random.default_rng(7)
    half = 500_000
    x = np.concatenate(
        [1e6 + np.cumsum(rng.normal(0.0, 1.0, half)) + rng.random(half), 1.0 + rng.random(half)]
    )
    small = slice(half + 100, None)
    for cls, twin, period in ((SMA, sma, 3), (Slope, slope, 2)):
        ind = cls(period)
        update = ind.update
        streamed = np.array([update(v) for v in x.tolist()])
        expected = twin(x, period)
        np.testing.assert_array_equal(np.isnan(streamed), np.isnan(expected))
        np.testing.assert_allclose(streamed, expected, rtol=1e-12, atol=1e-12 * 2e6, err_msg=repr(ind))
        # On the small values the tolerance is set by their own scale (~1), not by the 1e6 past.
        np.testing.assert_allclose(
            streamed[small], expected[small], rtol=1e-12, atol=1e-11, err_msg=repr(ind)
        )


# Property: streaming == vectorized on arbitrary small series (grid values give the deques many ties).
_values = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    st.integers(min_value=-40, max_value=40).map(lambda k: 100.0 + k * TICK),
)


@settings(max_examples=150, deadline=None)
@given(xs=st.lists(_values, min_size=0, max_size=60), period=st.integers(min_value=1, max_value=12))
def test_streaming_equals_vectorized_on_random_series(xs: list[float], period: int) -> None:
    x = np.array(xs, dtype=np.float64)
    scale = max(1.0, float(np.abs(x).max())) if x.size else 1.0
    for _name, cls, twin, _ta, exact in CLOSE_INDICATORS:
        if cls is Slope and period == 1:
            continue
        ind = cls(period)
        streamed = np.array([ind.update(v) for v in xs], dtype=np.float64)
        vectorized = twin(x, period)
        assert vectorized.shape == x.shape
        _assert_twins(streamed, vectorized, exact, scale)


@settings(max_examples=100, deadline=None)
@given(
    bars=st.lists(
        st.tuples(
            st.integers(min_value=-200, max_value=200),
            st.integers(min_value=0, max_value=12),
            st.integers(min_value=0, max_value=12),
        ),
        max_size=60,
    ),
    period=st.integers(min_value=1, max_value=12),
)
def test_atr_streaming_equals_vectorized_on_random_bars(
    bars: list[tuple[int, int, int]], period: int
) -> None:
    close = np.array([4000.0 + c * TICK for c, _, _ in bars])
    high = close + np.array([u * TICK for _, u, _ in bars])
    low = close - np.array([d * TICK for _, _, d in bars])
    ind = ATR(period)
    streamed = np.array(
        [ind.update(h, lo, c) for h, lo, c in zip(high.tolist(), low.tolist(), close.tolist(), strict=True)],
        dtype=np.float64,
    )
    np.testing.assert_array_equal(streamed, atr(high, low, close, period))

"""`batch`, the backtester's shortcut: the whole series at once, bit for bit what `update_bar` returns bar by
bar, leaving the same state behind; None where that cannot be promised (the runtime then feeds bar by bar)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from ibot.backtest.engine import Backtester
from ibot.indicators import ATR, EMA, SMA, Highest, Lowest, Slope
from ibot.model.catalog import get_instrument
from ibot.model.market import Bar
from ibot.strategies.ma_breakout import HighestHigh, LowestLow, MaBreakout

Array = NDArray[np.float64]


def _columns(close: Array, rng: np.random.Generator, tick: float) -> dict[str, Array]:
    high = close + rng.integers(0, 6, close.size) * tick
    low = close - rng.integers(0, 6, close.size) * tick
    return {"open": close.copy(), "high": high, "low": low, "close": close}


def _series() -> dict[str, dict[str, Array]]:
    rng = np.random.default_rng(7)
    n = 4_000
    quarter = 5000.0 + np.cumsum(rng.integers(-4, 5, n)) * 0.25  # MES grid: binary, exact sums
    cents = np.round(70.0 + np.cumsum(rng.integers(-4, 5, n)) * 0.01, 2)  # MCL grid: sums round
    floats = 100.0 + np.cumsum(rng.normal(0.0, 0.37, n))
    flat = np.full(n, 4321.75)
    return {
        "quarter": _columns(quarter, rng, 0.25),
        "cents": _columns(cents, rng, 0.01),
        "floats": _columns(floats, rng, 0.01),
        "flat": _columns(flat, rng, 0.25),
    }


SERIES = _series()
MAKERS = [
    ("sma", SMA),
    ("ema", EMA),
    ("atr", ATR),
    ("highest", Highest),
    ("lowest", Lowest),
    ("highest-high", HighestHigh),
    ("lowest-low", LowestLow),
    ("slope", lambda p: Slope(max(p, 2))),
]


def _bars(cols: dict[str, Array]) -> list[Bar]:
    rows = zip(*(cols[k].tolist() for k in ("open", "high", "low", "close")), strict=True)
    return [Bar(i, o, h, lo, c, 1.0) for i, (o, h, lo, c) in enumerate(rows)]


@pytest.mark.parametrize("series", sorted(SERIES))
@pytest.mark.parametrize(("name", "make"), MAKERS, ids=[m[0] for m in MAKERS])
@pytest.mark.parametrize("period", [1, 2, 9, 64, 200])
def test_batch_is_bit_identical_to_bar_by_bar_and_leaves_the_same_state(
    series: str, name: str, make: object, period: int
) -> None:
    cols = SERIES[series]
    streamed, batched = make(period), make(period)  # type: ignore[operator]
    expected = [streamed.update_bar(b) for b in _bars(cols)]
    got = batched.batch(cols)
    assert got is not None
    np.testing.assert_array_equal(np.array(got), np.array(expected))  # NaN positions and every bit
    assert np.array(got).tobytes() == np.array(expected).tobytes()  # the same bits, NaN payloads included
    # the state left behind: the next values agree too
    more = _bars(_columns(cols["close"][:50][::-1].copy(), np.random.default_rng(1), 0.25))
    assert [batched.update_bar(b) for b in more] == [streamed.update_bar(b) for b in more]
    assert batched.ready is streamed.ready


def test_a_subclass_feeding_something_else_is_not_batched() -> None:
    class MidHighest(Highest):
        __slots__ = ()

        def update_bar(self, bar: Bar) -> float:
            return self.update((bar.high + bar.low) / 2)

    assert MidHighest(5).batch(SERIES["quarter"]) is None
    assert HighestHigh(5).batch(SERIES["quarter"]) is not None  # only `source` changed: batched on highs


def test_ready_follows_the_value() -> None:
    sma = SMA(3)
    assert not sma.ready
    sma.update(1.0)
    sma.update(2.0)
    assert not sma.ready
    sma.update(3.0)
    assert sma.ready and sma.value == 2.0


def test_backtest_trades_the_same_with_and_without_batched_indicators(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ibot.data.synth import synth_bars

    inst = get_instrument("MES")
    bars = synth_bars(inst, np.datetime64("2025-03-03").astype(object), 5, "1min", seed=11)
    fast = Backtester(inst, MaBreakout(), bars).run()
    for cls in (SMA, Highest, Lowest):
        monkeypatch.setattr(cls, "batch", lambda self, columns: None)
    slow = Backtester(inst, MaBreakout(), bars).run()
    assert len(fast.trades) > 10
    assert fast.trades == slow.trades
    assert fast.metrics == slow.metrics
    np.testing.assert_array_equal(fast.equity, slow.equity)

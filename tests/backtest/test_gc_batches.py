"""Backtester.run raises the cyclic collector's generation-0 threshold for its bar loop and restores it, and
keeps its per-bar Python lists short (the collector traverses them) without changing any result."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from typing import ClassVar

import pytest

from ibot.backtest import Backtester, engine
from ibot.data.synth import synth_bars
from ibot.model.catalog import get_instrument
from ibot.model.market import Bar
from ibot.model.orders import Side
from ibot.strategy.base import Strategy

MES = get_instrument("MES")


class SeesThreshold(Strategy):
    name: ClassVar[str] = "sees_threshold"

    def on_start(self) -> None:
        self.seen: set[tuple[int, ...]] = set()

    def on_bar(self, bar: Bar) -> None:
        self.seen.add(gc.get_threshold())


class Fails(Strategy):
    name: ClassVar[str] = "fails"

    def on_bar(self, bar: Bar) -> None:
        raise RuntimeError("strategy bug")


@pytest.fixture
def default_threshold() -> Iterator[tuple[int, ...]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def bars() -> object:
    return synth_bars(MES, dt.date(2024, 3, 4), 1, "1min", 1)


def test_threshold_is_raised_during_the_loop_and_restored_after(default_threshold: tuple[int, ...]) -> None:
    strat = SeesThreshold()
    Backtester(MES, strat, bars()).run()
    assert strat.seen == {(10_000, 10, 10)}
    assert gc.get_threshold() == default_threshold


def test_threshold_is_restored_when_the_strategy_fails(default_threshold: tuple[int, ...]) -> None:
    with pytest.raises(RuntimeError, match="strategy bug"):
        Backtester(MES, Fails(), bars()).run()
    assert gc.get_threshold() == default_threshold


def test_a_higher_threshold_is_left_alone(default_threshold: tuple[int, ...]) -> None:
    gc.set_threshold(50_000, 5, 5)
    strat = SeesThreshold()
    Backtester(MES, strat, bars()).run()
    assert strat.seen == {(50_000, 5, 5)}
    assert gc.get_threshold() == (50_000, 5, 5)


class SeesRows(Strategy):
    """Records, per bar, the bar, a batched indicator's value and a bar-fed one's (both from the close)."""

    name: ClassVar[str] = "sees_rows"

    def on_start(self) -> None:
        from ibot.indicators.streaming import SMA

        self.batched = self.ctx.indicator(SMA(3))
        self.rows: list[tuple[Bar, float]] = []

    def on_bar(self, bar: Bar) -> None:
        self.rows.append((bar, self.batched.value))
        if len(self.rows) % 5 == 0:
            self.order(Side.BUY if self.ctx.position <= 0 else Side.SELL, 1)


@pytest.mark.parametrize("list_bars", [1, 7, 64])
def test_short_column_lists_change_nothing(list_bars: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar loop turns the columns into Python lists a few thousand bars at a time (engine._LIST_BARS, kept
    short for the cyclic collector); any length, down to one bar, gives the same bars, values and fills."""
    runs = []
    for size in (engine._LIST_BARS, list_bars):
        monkeypatch.setattr(engine, "_LIST_BARS", size)
        strategy = SeesRows()
        result = Backtester(MES, strategy, bars()).run()
        # repr: NaN (the SMA before its third bar) is not equal to itself
        runs.append((repr(strategy.rows), result.fills, list(result.equity), [t.net for t in result.trades]))
    assert runs[0][1] > 50
    assert runs[1] == runs[0]

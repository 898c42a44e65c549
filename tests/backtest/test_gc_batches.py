"""Backtester.run raises the cyclic collector's generation-0 threshold for its bar loop and restores it."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from typing import ClassVar

import pytest

from ibot.backtest import Backtester
from ibot.data.synth import synth_bars
from ibot.model.catalog import get_instrument
from ibot.model.market import Bar
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

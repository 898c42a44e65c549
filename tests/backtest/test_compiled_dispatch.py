"""ibot.backtest.compiled: a strategy without a twin runs on the event-driven engine; a bad declaration is a
clear error."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import pytest

from ibot.backtest import Backtester
from ibot.backtest.compiled import load_twin, run_backtest
from ibot.data.synth import synth_bars
from ibot.model.catalog import get_instrument
from ibot.model.errors import ParameterError
from ibot.strategies.sma_reversal import SmaReversal


class _NoTwin(SmaReversal):
    name: ClassVar[str] = "no_twin"
    twin: ClassVar[str | None] = None


class _BadTwin(SmaReversal):
    name: ClassVar[str] = "bad_twin"
    twin: ClassVar[str | None] = "ibot.no_such_module:run"


def test_without_a_twin_the_event_driven_engine_runs() -> None:
    inst = get_instrument("MES")
    bars = synth_bars(inst, date(2025, 1, 6), 3, "1min", 11)
    got = run_backtest(_NoTwin(sma_period=5), inst, bars, slippage_ticks=1)
    want = Backtester(inst, _NoTwin(sma_period=5), bars, slippage_ticks=1).run()
    assert got.fills == want.fills > 0
    assert [t.row() for t in got.trades] == [t.row() for t in want.trades]
    assert got.metrics.net_pnl == want.metrics.net_pnl


def test_a_twin_that_cannot_be_imported_is_named() -> None:
    with pytest.raises(ParameterError, match=r"bad_twin: twin 'ibot.no_such_module:run'"):
        load_twin(_BadTwin)
    assert load_twin(_NoTwin) is None

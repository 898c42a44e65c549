"""sma_reversal: the benchmarks' plain SMA cross reversal, always on the side of the last cross."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ibot.backtest.engine import Backtester
from ibot.data.bars import BarFrame
from ibot.model.catalog import get_instrument
from ibot.model.errors import ParameterError
from ibot.model.market import datetime_to_ns
from ibot.strategies import SmaReversal

MES = get_instrument("MES")
NY = ZoneInfo("America/New_York")
WAVE = [100.0, 101.0, 102.0, 103.0, 102.0, 101.0, 100.0, 99.0]


def wave_bars(cycles: int) -> BarFrame:
    c = np.asarray(WAVE * cycles)
    o = np.r_[c[0], c[:-1]]
    start = datetime(2024, 3, 5, 9, 30, tzinfo=NY)
    ts = np.asarray([datetime_to_ns(start + timedelta(minutes=5 * k)) for k in range(len(c))], dtype=np.int64)
    return BarFrame(ts, o, np.maximum(o, c), np.minimum(o, c), c, np.full(len(c), 10.0))


def test_each_cross_reverses_with_one_market_order() -> None:
    # SMA(2) on the wave 100..103..99: crosses down on bars 4, 12, ... and up on bars 8, 16, ...; each market
    # order fills at the next bar's open (the cross bar's close). Short from bar 5 @102, reversed on bar 9
    # @100 (one BUY of 2), long until bar 13 @102, short again, and so on; the last one closes at the end.
    bars = wave_bars(3)
    result = Backtester(MES, SmaReversal(sma_period=2), bars).run()
    idx = [
        (int(np.searchsorted(bars.ts, t.entry_ts)), t.side, t.entry_price, t.exit_price)
        for t in result.trades
    ]
    assert idx == [
        (5, "SHORT", 102.0, 100.0),
        (9, "LONG", 100.0, 102.0),
        (13, "SHORT", 102.0, 100.0),
        (17, "LONG", 100.0, 102.0),
        (21, "SHORT", 102.0, 99.0),  # closed at the last close (bar 23) by the end of data
    ]
    assert result.fills == 6  # 1 + 4 reversals (2 lots each, one order) + the end-of-data close


def test_quantity_sets_the_position_size() -> None:
    result = Backtester(MES, SmaReversal(sma_period=2, quantity=3), wave_bars(2)).run()
    assert {t.quantity for t in result.trades} == {3}


def test_bad_period_is_rejected_naming_it() -> None:
    with pytest.raises(ParameterError, match="sma_period"):
        SmaReversal(sma_period=1)

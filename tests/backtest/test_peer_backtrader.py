"""A peer on the same data: the plain 9-SMA reversal makes the same executions in ibot's backtester and in
backtrader (market orders filled at the next bar's open, no slippage), bar for bar, price for price."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import backtrader as bt

from ibot.backtest.engine import Backtester
from ibot.data.synth import synth_bars
from ibot.exchange.fees import FeeModel
from ibot.model.catalog import get_instrument
from ibot.strategies.sma_reversal import SmaReversal

MES = get_instrument("MES")


def bars() -> Any:
    return synth_bars(MES, datetime(2025, 3, 3, tzinfo=UTC), 6, "1min", seed=11)


def ibot_executions(frame: Any) -> list[tuple[int, int, float]]:
    """(bar index, signed quantity, price) of every fill."""
    strategy = SmaReversal(sma_period=9)
    fills: list[tuple[int, int, float]] = []
    on_fill = strategy.on_fill

    def record(fill: Any) -> None:
        fills.append((fill.ts, fill.signed_quantity, fill.price))
        on_fill(fill)

    strategy.on_fill = record  # type: ignore[method-assign]
    Backtester(MES, strategy, frame, fees=FeeModel.zero(), close_at_end=False).run()
    index = {int(t): i for i, t in enumerate(frame.ts)}
    return [(index[ts], qty, price) for ts, qty, price in fills]


def backtrader_executions(frame: Any) -> list[tuple[int, int, float]]:
    """The same reversal written for backtrader, fed the same bars; executions from notify_order."""
    columns = (frame.open, frame.high, frame.low, frame.close)
    rows = list(zip(*(c.tolist() for c in columns), strict=True))
    days = (frame.ts / 86_400e9 + 719_163.0).tolist()  # backtrader's date numbers

    class Feed(bt.feed.DataBase):  # type: ignore[misc]
        def start(self) -> None:
            super().start()
            self.i = 0

        def _load(self) -> bool:
            if self.i >= len(rows):
                return False
            o, h, lo, c = rows[self.i]
            ln = self.lines
            ln.datetime[0], ln.open[0], ln.high[0], ln.low[0], ln.close[0] = days[self.i], o, h, lo, c
            ln.volume[0], ln.openinterest[0] = 1.0, 0.0
            self.i += 1
            return True

    class Reversal(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.sma = bt.indicators.SMA(self.data.close, period=9)
            self.fills: list[tuple[int, int, float]] = []

        def next(self) -> None:
            c0, c1, s0, s1 = self.data.close[0], self.data.close[-1], self.sma[0], self.sma[-1]
            target = 1 if (c1 <= s1 and c0 > s0) else -1 if (c1 >= s1 and c0 < s0) else 0
            delta = target - self.position.size if target else 0
            if delta > 0:
                self.buy(size=delta)
            elif delta < 0:
                self.sell(size=-delta)

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                self.fills.append((len(self.data) - 1, int(order.executed.size), order.executed.price))

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(Feed())
    cerebro.addstrategy(Reversal)
    cerebro.broker.setcash(1e12)  # no margin refusals: compare the signal and fill logic only
    return list(cerebro.run()[0].fills)


def test_sma_reversal_executions_equal_backtraders_on_the_same_bars() -> None:
    frame = bars()
    assert len(frame) > 5_000
    ours = ibot_executions(frame)
    theirs = backtrader_executions(frame)
    assert len(ours) > 500
    assert ours == theirs

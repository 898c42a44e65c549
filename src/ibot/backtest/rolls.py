"""Backtesting across futures rolls: a strategy runs on a spread-adjusted continuous series, and at each roll
its position is rolled as a trader would roll it, at each month's own price, with fees.

Why this is exact: with a spread adjustment a bar's price is raw + offset, one integer number of ticks per
month, so inside a month a price change on the series is the same number of ticks as on the month itself.
The engine runs on the series; a trade never spans a roll, because at each roll bar (the last bar of the old
month; see ibot.data.rolls) `RollBook` books two fills at the bar's close:
- close the position in the old month at the roll's from_price (series price from_price + offset_old),
- open the same quantity in the new month at its to_price (series price to_price + offset_new),
each with the FeeModel's fee per contract, reason "roll". The two series prices are equal by construction,
so the equity curve does not jump, and every trade's P&L in series ticks equals its P&L in its month's raw
ticks: the run's P&L is the sum of the per-month P&L. Working orders carry over at their series price (for
a stop that is the old month's stop shifted by the roll gap, as a trader re-places it on the new month).

The strategy is not told of the roll fills (its position does not change); the report lists each roll
(`BacktestResult.rolls`) and shows every trade in its own month at raw prices (`Trade.contract`).

backward-ratio is refused: multiplied prices move by a month-dependent factor, so P&L on them is not raw
P&L. `none` works (the roll fills are then at two different series prices, which is the raw roll) but the
strategy's indicators see the roll gaps as price moves.
"""

from __future__ import annotations

import bisect
import dataclasses
from decimal import Decimal

import numpy as np

from ibot.backtest.engine import BacktestContext
from ibot.backtest.report import BacktestResult, RolledPosition
from ibot.data.continuous import Adjust, ContinuousSeries
from ibot.data.rolls import Roll
from ibot.exchange.fees import FeeModel
from ibot.model.errors import ParameterError
from ibot.model.instruments import Instrument
from ibot.model.orders import Fill, Side

__all__ = ["RollBook"]


class RollBook:
    """The roll hook of one continuous-series backtest (ibot.backtest.engine.RollHook), and the step that
    puts the rolls and each trade's month into the result (`finish`)."""

    def __init__(self, series: ContinuousSeries, instrument: Instrument, fees: FeeModel) -> None:
        if series.adjust is Adjust.BACKWARD_RATIO:
            raise ParameterError(
                "--adjust backward-ratio cannot be backtested: ratio-adjusted prices are off the tick grid "
                "and P&L on them is not the months' P&L; use backward-spread (default) or forward-spread"
            )
        self.instrument = instrument
        self.fees = fees
        self.series = series
        ts = series.bars.ts
        self._rolls: dict[int, tuple[int, Roll]] = {}
        rows: list[int] = []
        for k, roll in enumerate(series.rolls):
            row = int(np.searchsorted(ts, roll.ts))
            # a roll on the series' very last bar is not traded: the run ends there in the old month
            if row < len(ts) - 1 and ts[row] == roll.ts:
                rows.append(row)
                self._rolls[row] = (k, roll)
        self.rows = rows
        first = series.contracts[series.contract_ids[0]] if len(series) else ""
        first_offset = instrument.to_ticks(float(series.adjustment[0])) if len(series) else 0
        # (month, offset in ticks) of each segment the engine meets, in order
        self.segments: list[tuple[str, int]] = [(first, first_offset)]
        self.marks: list[int] = []  # trades closed before each roll's new month opened
        self.done: list[RolledPosition] = []

    def __call__(self, ctx: BacktestContext, row: int) -> None:
        """Roll the position at the close of the roll bar `row` (see the module doc)."""
        _, roll = self._rolls[row]
        inst = self.instrument
        old_offset = self.segments[-1][1]
        from_t, to_t = inst.to_ticks(roll.from_price), inst.to_ticks(roll.to_price)
        new_offset = 0 if self.series.adjust is Adjust.NONE else old_offset + from_t - to_t
        q = ctx.position
        fees = Decimal(0)
        if q:
            fee = self.fees.commission(abs(q))
            fees = fee + fee
            close_side, open_side = (Side.SELL, Side.BUY) if q > 0 else (Side.BUY, Side.SELL)
            at = inst.from_ticks(from_t + old_offset)
            ctx.book(Fill("roll", roll.from_contract, close_side, abs(q), at, roll.ts, fee, "roll", "roll"))
            self.marks.append(len(ctx.closed))
            at = inst.from_ticks(to_t + new_offset)
            ctx.book(Fill("roll", roll.to_contract, open_side, abs(q), at, roll.ts, fee, "roll", "roll"))
        else:
            self.marks.append(len(ctx.closed))
        self.segments.append((roll.to_contract, new_offset))
        self.done.append(
            RolledPosition(
                roll.ts, roll.from_contract, roll.to_contract, roll.from_price, roll.to_price, q, fees
            )
        )

    def finish(self, result: BacktestResult) -> BacktestResult:
        """The result with its rolls, each trade in its month at raw prices, and the bar of each roll with
        a position marked in the new month (a no-op with spread adjustment, where both prices agree)."""
        inst = self.instrument
        trades = []
        for i, t in enumerate(result.trades):
            month, offset = self.segments[bisect.bisect_right(self.marks, i)]
            shift = inst.from_ticks(offset)
            trades.append(
                dataclasses.replace(
                    t,
                    entry_price=_raw(inst, t.entry_price, offset),
                    exit_price=_raw(inst, t.exit_price, offset),
                    contract=month,
                    adjustment=shift,
                )
            )
        result.trades = trades
        tick_value = float(inst.tick_value)
        for rolled, row in zip(self.done, self.rows, strict=True):
            if rolled.quantity and self.series.adjust is Adjust.NONE:
                gap = inst.to_ticks(rolled.to_price) - inst.to_ticks(rolled.from_price)
                result.equity[row] += rolled.quantity * gap * tick_value
        result.rolls = list(self.done)
        result.continuous = {
            "symbol": self.series.symbol,
            "bar": self.series.bar,
            "adjust": self.series.adjust.value,
            "contracts": list(dict.fromkeys(self.series.contract.tolist())),
            "note": self.series.note,
        }
        result._metrics = None
        return result


def _raw(inst: Instrument, price: float, offset: int) -> float:
    """A series price back in its month's raw price: exact on the grid, float for an average off it."""
    if inst.is_on_grid(price):
        return inst.from_ticks(inst.to_ticks(price) - offset)
    return price - float(inst.from_ticks(offset))

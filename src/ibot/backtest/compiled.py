"""One entry point for a backtest that may run on a strategy's compiled twin.

A strategy declares its twin as `twin = "package.module:function"` (see Strategy.twin). The function takes a
`TwinRun` and returns the BacktestResult the event-driven Backtester would return for the same strategy,
parameters, bars, fees and fill rules: the same trades (times, sides, prices, fees, P&L), fills, positions
and equity. Sweeps (the optimizer) call `run_backtest`, which uses the twin when there is one and the
event-driven engine otherwise; a strategy without a twin runs unchanged.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ibot.backtest.engine import Backtester
from ibot.backtest.report import BacktestResult
from ibot.exchange.fees import IB_MICRO_FUTURES, FeeModel
from ibot.exchange.matching import DailySessions, FillRules
from ibot.model.errors import ParameterError
from ibot.model.instruments import Instrument
from ibot.strategy.base import Strategy

__all__ = ["TwinFunction", "TwinRun", "load_twin", "run_backtest"]


@dataclass(frozen=True, slots=True)
class TwinRun:
    """Everything a twin needs, as the Backtester would be given it. `bars` is what Backtester accepts (a
    BarFrame or (ts, open, high, low, close, volume) columns); `strategy.p` holds the resolved parameters."""

    strategy: Strategy
    instrument: Instrument
    bars: Any
    fees: FeeModel
    rules: FillRules
    sessions: DailySessions
    initial_capital: Decimal
    close_at_end: bool = True


TwinFunction = Callable[[TwinRun], BacktestResult]


def load_twin(cls: type[Strategy]) -> TwinFunction | None:
    """The twin function `cls` declares, imported; None when it declares none. A declaration that does not
    name an importable function is a ParameterError naming the strategy and the declaration."""
    target = cls.twin
    if not target:
        return None
    module_name, sep, attr = target.partition(":")
    try:
        if not sep:
            raise ValueError(target)
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ParameterError(
            f"strategy {cls.name}: twin {target!r} is not an importable 'module:function' ({exc})"
        ) from None
    if not callable(fn):
        raise ParameterError(f"strategy {cls.name}: twin {target!r} is not a function")
    return fn


def run_backtest(
    strategy: Strategy,
    instrument: Instrument,
    bars: Any,
    *,
    fees: FeeModel | None = None,
    slippage_ticks: int = 0,
    rules: FillRules | None = None,
    initial_capital: Decimal | int | str = Decimal(25_000),
    sessions: DailySessions | None = None,
    close_at_end: bool = True,
    compiled: bool = True,
) -> BacktestResult:
    """Backtest `strategy` on `bars`: its compiled twin when it has one and `compiled`, else the event-driven
    Backtester. Both give the same result; the twin is only faster."""
    fees = fees if fees is not None else IB_MICRO_FUTURES
    rules = rules if rules is not None else FillRules(slippage_ticks=slippage_ticks)
    sessions = sessions or DailySessions()
    twin = load_twin(type(strategy)) if compiled else None
    if twin is None:
        return Backtester(
            instrument,
            strategy,
            bars,
            fees=fees,
            rules=rules,
            initial_capital=initial_capital,
            sessions=sessions,
            close_at_end=close_at_end,
        ).run()
    return twin(
        TwinRun(strategy, instrument, bars, fees, rules, sessions, Decimal(initial_capital), close_at_end)
    )

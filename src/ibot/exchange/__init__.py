"""ibot.exchange: the one matching engine (backtest and simulator alike), the fee model and trading hours."""

from ibot.exchange.fees import IB_MICRO_FUTURES, FeeModel
from ibot.exchange.hours import CME_GLOBEX, US_EQUITY_RTH, NoSessionError, TradingHours, hours_for
from ibot.exchange.matching import (
    DailySessions,
    ExecutionListener,
    FillRules,
    MatchingEngine,
    OrderRejected,
    UnknownOrderError,
)

__all__ = [
    "CME_GLOBEX",
    "IB_MICRO_FUTURES",
    "US_EQUITY_RTH",
    "DailySessions",
    "ExecutionListener",
    "FeeModel",
    "FillRules",
    "MatchingEngine",
    "NoSessionError",
    "OrderRejected",
    "TradingHours",
    "UnknownOrderError",
    "hours_for",
]

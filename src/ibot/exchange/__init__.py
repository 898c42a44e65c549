"""ibot.exchange: the one matching engine (backtest and simulator alike) and the fee model."""

from ibot.exchange.fees import IB_MICRO_FUTURES, FeeModel
from ibot.exchange.matching import (
    DailySessions,
    ExecutionListener,
    FillRules,
    MatchingEngine,
    OrderRejected,
    UnknownOrderError,
)

__all__ = [
    "IB_MICRO_FUTURES",
    "DailySessions",
    "ExecutionListener",
    "FeeModel",
    "FillRules",
    "MatchingEngine",
    "OrderRejected",
    "UnknownOrderError",
]

"""ibot.backtest: the event-driven backtester, its result/report and charts."""

from ibot.backtest.engine import BacktestContext, Backtester
from ibot.backtest.report import BacktestResult, Metrics, Trade, compute_metrics, render_table

__all__ = [
    "BacktestContext",
    "BacktestResult",
    "Backtester",
    "Metrics",
    "Trade",
    "compute_metrics",
    "render_table",
]

"""Indicators: O(1) streaming classes for the bar loop, and numpy twins giving the same numbers, as TA-Lib."""

from ibot.indicators.streaming import (
    ATR,
    EMA,
    SMA,
    Highest,
    Indicator,
    IndicatorInputError,
    Lowest,
    Slope,
)
from ibot.indicators.vectorized import atr, ema, highest, lowest, slope, sma, true_range

__all__ = [
    "ATR",
    "EMA",
    "SMA",
    "Highest",
    "Indicator",
    "IndicatorInputError",
    "Lowest",
    "Slope",
    "atr",
    "ema",
    "highest",
    "lowest",
    "slope",
    "sma",
    "true_range",
]

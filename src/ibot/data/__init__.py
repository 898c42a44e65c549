"""Market data services: bars from ticks, trading sessions, the Parquet bar store, a synthetic market."""

from ibot.data.bars import (
    BarAggregator,
    BarFrame,
    InvalidBarsError,
    bar_problems,
    bar_size_name,
    parse_interval,
    resample_bars,
    validate_bars,
)
from ibot.data.sessions import CME_GLOBEX, US_EQUITY_RTH, NoSessionError, TradingSession, session_for
from ibot.data.store import BarStore, MissingBarsError, StoreEntry
from ibot.data.synth import SyntheticMarket, synth_bars, synth_market, synth_ticks

__all__ = [
    "CME_GLOBEX",
    "US_EQUITY_RTH",
    "BarAggregator",
    "BarFrame",
    "BarStore",
    "InvalidBarsError",
    "MissingBarsError",
    "NoSessionError",
    "StoreEntry",
    "SyntheticMarket",
    "TradingSession",
    "bar_problems",
    "bar_size_name",
    "parse_interval",
    "resample_bars",
    "session_for",
    "synth_bars",
    "synth_market",
    "synth_ticks",
    "validate_bars",
]

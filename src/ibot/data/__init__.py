"""Market data services: bars from ticks, the Parquet bar store, a synthetic market."""

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
from ibot.data.store import BarStore, MissingBarsError, StoreEntry
from ibot.data.synth import SyntheticMarket, synth_bars, synth_market, synth_ticks

__all__ = [
    "BarAggregator",
    "BarFrame",
    "BarStore",
    "InvalidBarsError",
    "MissingBarsError",
    "StoreEntry",
    "SyntheticMarket",
    "bar_problems",
    "bar_size_name",
    "parse_interval",
    "resample_bars",
    "synth_bars",
    "synth_market",
    "synth_ticks",
    "validate_bars",
]

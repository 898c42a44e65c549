"""Bad input to a backtest is refused before anything runs, with a message naming what and where."""

from __future__ import annotations

import numpy as np
import pytest

from ibot.backtest.engine import Backtester
from ibot.model import BarDataError, ParameterError, UnknownSymbolError
from ibot.model.catalog import get_instrument
from ibot.strategies import get_strategy

MES = get_instrument("MES")
T0 = 1_736_200_800_000_000_000  # 2025-01-06 22:00:00 UTC, a Globex session


def columns(n: int = 6) -> dict[str, np.ndarray]:
    close = 5000.0 + 0.25 * np.arange(n)
    return {
        "ts": T0 + np.arange(n, dtype=np.int64) * 60_000_000_000,
        "open": close.copy(),
        "high": close + 0.5,
        "low": close - 0.5,
        "close": close,
        "volume": np.full(n, 10.0),
    }


def run(cols: dict[str, np.ndarray], **params: object) -> None:
    Backtester(MES, get_strategy("ma_breakout")(**params), cols).run()


def test_nan_price_names_the_field_row_and_time() -> None:
    cols = columns()
    cols["high"][4] = np.nan
    with pytest.raises(BarDataError, match=r"high is not a finite number at row 4 \(2025-01-06T22:04:00"):
        run(cols)


def test_unsorted_bars_name_the_first_row_out_of_order() -> None:
    cols = columns()
    cols["ts"][[2, 3]] = cols["ts"][[3, 2]]
    with pytest.raises(BarDataError, match=r"time goes backwards .* at row 3 \(2025-01-06T22:02:00"):
        run(cols)


def test_duplicate_bars_name_the_repeated_row() -> None:
    cols = columns()
    cols["ts"][5] = cols["ts"][4]
    with pytest.raises(BarDataError, match=r"duplicate timestamp .* at row 5 \(2025-01-06T22:04:00"):
        run(cols)


def test_empty_series_is_refused() -> None:
    cols = {k: v[:0] for k, v in columns().items()}
    with pytest.raises(BarDataError, match="no bars to backtest for MES"):
        run(cols)


def test_off_grid_price_names_the_tick_size() -> None:
    cols = columns()
    cols["close"][1] = 5000.3
    with pytest.raises(BarDataError, match=r"close is off the tick grid of 0\.25 at row 1"):
        run(cols)


def test_unknown_symbol_lists_what_is_known() -> None:
    with pytest.raises(UnknownSymbolError, match=r"unknown symbol 'ESX'.*MES"):
        get_instrument("ESX")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"breakout_bars": 0}, "breakout_bars"),
        ({"limit_offset_ticks": -1}, "limit_offset_ticks"),
        ({"sma_period": "nine"}, "sma_period"),
        ({"entry_filter": "moon"}, "entry_filter"),
        ({"warp": 9}, "warp"),
    ],
)
def test_bad_parameters_name_the_parameter(params: dict[str, object], named: str) -> None:
    with pytest.raises(ParameterError, match=named):
        run(columns(), **params)

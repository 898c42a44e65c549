"""Streaming indicators: period checks, NaN/inf refusal, warm-up, reset; and the vectorized input checks."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from ibot.indicators import (
    ATR,
    EMA,
    SMA,
    Highest,
    IndicatorInputError,
    Lowest,
    Slope,
    atr,
    ema,
    highest,
    lowest,
    slope,
    sma,
)
from ibot.model.errors import ParameterError

CLOSE_CLASSES: list[type[SMA | EMA | Highest | Lowest | Slope]] = [SMA, EMA, Highest, Lowest, Slope]
ALL_CLASSES: list[type[SMA | EMA | Highest | Lowest | Slope | ATR]] = [*CLOSE_CLASSES, ATR]
TWINS: list[Callable[[np.ndarray, int], np.ndarray]] = [sma, ema, highest, lowest, slope]

PRICES = [4500.0, 4501.25, 4499.5, 4502.0, 4503.75, 4500.25, 4498.0, 4504.5, 4505.0, 4501.0, 4500.75, 4507.0]


def _feed(ind: SMA | EMA | Highest | Lowest | Slope | ATR, price: float) -> float:
    if isinstance(ind, ATR):
        return ind.update(price + 1.0, price - 1.0, price)
    return ind.update(price)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [0, -1, 2.5, "14", True, None])
def test_bad_period_is_refused_naming_the_indicator_and_value(cls: type, bad: object) -> None:
    with pytest.raises(ParameterError) as err:
        cls(bad)
    assert cls.__name__ in str(err.value)
    assert repr(bad) in str(err.value)


@pytest.mark.parametrize("twin", [*TWINS], ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_vectorized_bad_period_is_refused_naming_the_function(
    twin: Callable[..., np.ndarray], bad: object
) -> None:
    with pytest.raises(ParameterError, match=twin.__name__):
        twin(np.arange(10.0), bad)


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_vectorized_atr_bad_period_is_refused(bad: object) -> None:
    with pytest.raises(ParameterError, match=rf"atr period must be an integer >= 1, got {bad!r}"):
        atr(np.ones(5), np.ones(5), np.ones(5), bad)  # type: ignore[arg-type]


def test_slope_needs_two_points() -> None:
    with pytest.raises(ParameterError, match=r"Slope period must be an integer >= 2, got 1"):
        Slope(1)
    with pytest.raises(ParameterError, match="slope"):
        slope(np.arange(5.0), 1)


def test_numpy_integer_period_is_accepted() -> None:
    assert SMA(np.int64(5)).period == 5  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", CLOSE_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_is_refused_naming_the_indicator(cls: type, bad: float) -> None:
    ind = cls(3)
    with pytest.raises(IndicatorInputError) as err:
        ind.update(bad)
    assert isinstance(err.value, ValueError)
    assert f"{cls.__name__}(3)" in str(err.value)
    assert repr(bad) in str(err.value)


@pytest.mark.parametrize("field", ["high", "low", "close"])
def test_atr_non_finite_input_names_the_field(field: str) -> None:
    values = {"high": 4501.0, "low": 4499.0, "close": 4500.0, field: math.nan}
    with pytest.raises(IndicatorInputError, match=rf"ATR\(14\) got a NaN {field}: nan"):
        ATR(14).update(**values)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_refused_input_leaves_the_state_untouched(cls: type) -> None:
    fed, clean = cls(4), cls(4)
    got, expected = [], []
    for i, price in enumerate(PRICES):
        if i in (2, 6):  # one rejection during warm-up, one after
            with pytest.raises(IndicatorInputError):
                _feed(fed, math.nan)
        got.append(_feed(fed, price))
        expected.append(_feed(clean, price))
    np.testing.assert_array_equal(got, expected)
    assert fed.ready and fed.value == clean.value


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("period", [2, 5])
def test_value_is_nan_until_ready_then_ready_on_the_talib_bar(cls: type, period: int) -> None:
    ind = cls(period)
    assert not ind.ready and math.isnan(ind.value) and ind.period == period
    first_value_at = period if cls is ATR else period - 1  # TA-Lib's lookback
    for i, price in enumerate(PRICES):
        out = _feed(ind, price)
        assert ind.ready is (i >= first_value_at)
        assert math.isnan(out) is (i < first_value_at)
        if ind.ready:
            assert out == ind.value


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_reset_forgets_everything(cls: type) -> None:
    ind = cls(3)
    first = [_feed(ind, p) for p in PRICES]
    ind.reset()
    assert not ind.ready and math.isnan(ind.value)
    second = [_feed(ind, p) for p in PRICES]
    np.testing.assert_array_equal(first, second)


def test_highest_and_lowest_follow_ties_and_expiry() -> None:
    hi, lo = Highest(3), Lowest(3)
    xs = [5.0, 5.0, 3.0, 5.0, 1.0, 1.0, 2.0, 9.0, 9.0, 0.0]
    got = [(hi.update(x), lo.update(x)) for x in xs]
    expected = [(max(xs[i - 2 : i + 1]), min(xs[i - 2 : i + 1])) for i in range(2, len(xs))]
    assert got[2:] == expected


def test_slope_of_a_straight_line_is_its_step() -> None:
    ind = Slope(5)
    values = [ind.update(100.0 + 0.25 * i) for i in range(20)]
    assert values[4:] == [0.25] * 16


def test_ema_and_sma_of_period_one_are_the_input_exactly() -> None:
    e, s = EMA(1), SMA(1)
    for x in [1.0, 1e-20, 3.0, 0.1 + 0.2, -7.5]:
        assert e.update(x) == x
        assert s.update(x) == x


@pytest.mark.parametrize("twin", TWINS, ids=lambda f: f.__name__)
def test_vectorized_refuses_nan_naming_function_and_index(twin: Callable[..., np.ndarray]) -> None:
    x = np.array([1.0, 2.0, np.nan, 4.0])
    with pytest.raises(IndicatorInputError, match=rf"{twin.__name__} got a NaN input at index 2"):
        twin(x, 2)


@pytest.mark.parametrize("twin", TWINS, ids=lambda f: f.__name__)
def test_vectorized_short_input_is_all_nan_of_the_same_length(twin: Callable[..., np.ndarray]) -> None:
    for size in (0, 1, 4):
        out = twin(np.arange(float(size)), 5)
        assert out.shape == (size,) and np.isnan(out).all()


def test_vectorized_refuses_two_dimensional_input() -> None:
    with pytest.raises(IndicatorInputError, match=r"sma expects a 1-D array, got shape \(2, 2\)"):
        sma(np.ones((2, 2)), 2)


def test_atr_refuses_mismatched_lengths_and_nan_field() -> None:
    with pytest.raises(IndicatorInputError, match="atr needs high, low and close of one length, got 3, 3, 2"):
        atr(np.ones(3), np.ones(3), np.ones(2), 2)
    with pytest.raises(IndicatorInputError, match="atr low got a NaN input at index 1"):
        atr(np.ones(3), np.array([1.0, np.nan, 1.0]), np.ones(3), 2)
    assert np.isnan(atr(np.ones(3), np.ones(3), np.ones(3), 3)).all()  # needs period+1 bars

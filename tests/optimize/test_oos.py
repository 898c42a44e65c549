"""ibot.optimize.oos: train/test windows on trading-day edges over real synthetic bars, Spearman's rank
correlation against hand-computed values, and the in-sample vs out-of-sample side-by-side ranks."""

from __future__ import annotations

import itertools
import math
import random
import re
from datetime import date

import numpy as np
import numpy.typing as npt
import pytest

from ibot.data.bars import format_time
from ibot.data.synth import synth_bars
from ibot.model.calendar import trading_day_bounds, trading_day_of
from ibot.model.catalog import get_instrument
from ibot.model.errors import ParameterError
from ibot.optimize.oos import (
    TrialScore,
    Window,
    describe_correlation,
    holdout_windows,
    side_by_side,
    spearman,
    walk_forward_windows,
)

MES = get_instrument("MES")


@pytest.fixture(scope="module")
def ts() -> npt.NDArray[np.int64]:
    """Four weeks of MES 1-minute bars: 21 trading days (two of them short: 2025-01-09 and MLK day)."""
    return synth_bars(MES, date(2025, 1, 6), 20, "1min", seed=3).ts


def _days(ts: npt.NDArray[np.int64]) -> list[date]:
    return [trading_day_of(int(t)) for t in ts]


def _in(ts: npt.NDArray[np.int64], start: int, end: int) -> npt.NDArray[np.int64]:
    return ts[(ts >= start) & (ts < end)]


def _assert_day_edge(ns: int) -> None:
    assert trading_day_bounds(ns)[0] == ns, f"{format_time(ns)} is not the start of a trading day"


# --- holdout -----------------------------------------------------------------------------------------------


def test_holdout_covers_every_bar_once_split_at_a_trading_day_start(ts: npt.NDArray[np.int64]) -> None:
    (w,) = holdout_windows(ts, 0.25)
    assert w.train_start_ns <= ts[0] and ts[-1] < w.test_end_ns
    assert w.train_end_ns == w.test_start_ns
    train, test = _in(ts, w.train_start_ns, w.train_end_ns), _in(ts, w.test_start_ns, w.test_end_ns)
    assert len(train) + len(test) == len(ts) and len(train) > 0 and len(test) > 0
    for edge in (w.train_start_ns, w.test_start_ns):
        _assert_day_edge(edge)
    assert w.test_end_ns == trading_day_bounds(int(ts[-1]))[1]
    assert not set(_days(train)) & set(_days(test)), "a trading day is split between train and test"


def test_holdout_splits_at_the_day_start_nearest_to_the_requested_bar_count(
    ts: npt.NDArray[np.int64],
) -> None:
    days = _days(ts)
    starts = [0] + [k for k in range(1, len(ts)) if days[k] != days[k - 1]]
    for fraction in (0.1, 0.25, 0.5, 0.8):
        (w,) = holdout_windows(ts, fraction)
        target = len(ts) * (1 - fraction)
        nearest = min(starts[1:], key=lambda r: (abs(r - target), r))
        assert int(np.searchsorted(ts, w.test_start_ns)) == nearest, fraction
        assert w.test_start_ns == trading_day_bounds(int(ts[nearest]))[0]
        test_bars = len(_in(ts, w.test_start_ns, w.test_end_ns))
        assert abs(test_bars / len(ts) - fraction) < 1 / 20, "off by more than a trading day's share"


def test_window_dict_and_slices(ts: npt.NDArray[np.int64]) -> None:
    (w,) = holdout_windows(ts, 0.3)
    d = w.to_dict()
    assert list(d) == ["train_start", "train_end", "test_start", "test_end"]
    for key, ns in zip(d, (w.train_start_ns, w.train_end_ns, w.test_start_ns, w.test_end_ns), strict=True):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", d[key]) and d[key] == format_time(ns)
    # trading days start at 18:00 New York time: 23:00 UTC in January
    assert d["test_start"].endswith("23:00:00 UTC")
    tr, te = w.train_slice(ts), w.test_slice(ts)
    assert (tr.start, tr.stop, te.start, te.stop) == (0, te.start, tr.stop, len(ts))
    assert ts[tr.stop - 1] < w.train_end_ns <= ts[te.start]


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.2, 1.5, float("nan"), True, "0.2"])
def test_holdout_refuses_a_fraction_outside_0_1(ts: npt.NDArray[np.int64], fraction: object) -> None:
    with pytest.raises(ParameterError, match=r"^--holdout: the test fraction .* between 0 and 1"):
        holdout_windows(ts, fraction)  # type: ignore[arg-type]


def test_holdout_needs_two_trading_days() -> None:
    one_day = synth_bars(MES, date(2025, 1, 6), 1, "1min", seed=3).ts
    with pytest.raises(ParameterError, match=r"--holdout needs bars from at least 2 trading days.* span 1 "):
        holdout_windows(one_day, 0.5)
    with pytest.raises(ParameterError, match=r"--holdout: there are no bars"):
        holdout_windows(np.zeros(0, dtype=np.int64), 0.5)


def test_holdout_names_a_fraction_too_small_or_too_large_for_whole_days() -> None:
    three = synth_bars(MES, date(2025, 1, 6), 3, "1min", seed=3).ts
    with pytest.raises(
        ParameterError, match=r"--holdout 0.1 leaves no whole trading day to test on.*3 trading"
    ):
        holdout_windows(three, 0.1)
    with pytest.raises(ParameterError, match=r"--holdout 0.9 leaves no whole trading day to train on"):
        holdout_windows(three, 0.9)
    (w,) = holdout_windows(three, 0.3)
    assert len(set(_days(_in(three, w.test_start_ns, w.test_end_ns)))) == 1


def test_holdout_refuses_unsorted_times(ts: npt.NDArray[np.int64]) -> None:
    with pytest.raises(ParameterError, match="strictly increasing"):
        holdout_windows(ts[::-1].copy(), 0.2)


# --- walk forward ------------------------------------------------------------------------------------------


def _check_folds(ts: npt.NDArray[np.int64], windows: list[Window], folds: int) -> None:
    assert len(windows) == folds
    for a, b in itertools.pairwise(windows):
        assert a.test_end_ns == b.test_start_ns, "test windows must follow each other without gap or overlap"
    assert windows[-1].test_end_ns > ts[-1]
    for w in windows:
        assert w.train_start_ns < w.train_end_ns == w.test_start_ns < w.test_end_ns
        for edge in (w.train_start_ns, w.test_start_ns, w.test_end_ns):
            assert trading_day_bounds(edge - 1)[1] == edge, "edges are trading-day starts"
        train, test = _in(ts, w.train_start_ns, w.train_end_ns), _in(ts, w.test_start_ns, w.test_end_ns)
        assert len(train) > 0 and len(test) > 0
        assert not set(_days(train)) & set(_days(test))


def test_rolling_walk_forward_keeps_a_fixed_train_length(ts: npt.NDArray[np.int64]) -> None:
    windows = walk_forward_windows(ts, 4, anchored=False, test_fraction=0.4)
    _check_folds(ts, windows, 4)
    assert windows[0].train_start_ns <= ts[0]
    train_days = [len(set(_days(_in(ts, w.train_start_ns, w.train_end_ns)))) for w in windows]
    # the test part starts at the day start nearest to 60 % of the 28290 bars: after 13 trading days
    assert len(set(train_days)) == 1 and train_days[0] == 13, train_days
    assert windows[1].train_start_ns > windows[0].train_start_ns, "the rolling train window moves forward"
    test_bars = sum(len(_in(ts, w.test_start_ns, w.test_end_ns)) for w in windows)
    assert abs(test_bars / len(ts) - 0.4) < 1 / 20
    test_days = [len(set(_days(_in(ts, w.test_start_ns, w.test_end_ns)))) for w in windows]
    assert test_days == [2, 2, 2, 2]


def test_anchored_walk_forward_trains_from_the_first_bar(ts: npt.NDArray[np.int64]) -> None:
    anchored = walk_forward_windows(ts, 4, anchored=True, test_fraction=0.4)
    rolling = walk_forward_windows(ts, 4, anchored=False, test_fraction=0.4)
    _check_folds(ts, anchored, 4)
    assert {w.train_start_ns for w in anchored} == {trading_day_bounds(int(ts[0]))[0]}
    assert [(w.test_start_ns, w.test_end_ns) for w in anchored] == [
        (w.test_start_ns, w.test_end_ns) for w in rolling
    ]
    assert anchored[0] == rolling[0]
    sizes = [len(_in(ts, w.train_start_ns, w.train_end_ns)) for w in anchored]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_one_fold_is_the_holdout_split(ts: npt.NDArray[np.int64]) -> None:
    for anchored in (False, True):
        assert walk_forward_windows(ts, 1, anchored, test_fraction=0.3) == holdout_windows(ts, 0.3)


def test_uneven_folds_still_cover_every_test_day(ts: npt.NDArray[np.int64]) -> None:
    windows = walk_forward_windows(ts, 3, anchored=False, test_fraction=0.35)
    _check_folds(ts, windows, 3)
    covered = sum(len(_in(ts, w.test_start_ns, w.test_end_ns)) for w in windows)
    assert covered == len(ts) - int(np.searchsorted(ts, windows[0].test_start_ns))


@pytest.mark.parametrize("folds", [0, -2, 1.5, True, "3"])
def test_walk_forward_refuses_a_bad_fold_count(ts: npt.NDArray[np.int64], folds: object) -> None:
    with pytest.raises(
        ParameterError, match=r"^--walk-forward .*number of folds must be an integer of at least 1"
    ):
        walk_forward_windows(ts, folds, anchored=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("fraction", [0, 1, 2.0, -0.5])
def test_walk_forward_refuses_a_bad_test_fraction(ts: npt.NDArray[np.int64], fraction: float) -> None:
    with pytest.raises(ParameterError, match=r"^--walk-forward: the test fraction"):
        walk_forward_windows(ts, 2, anchored=False, test_fraction=fraction)


def test_walk_forward_names_too_few_trading_days(ts: npt.NDArray[np.int64]) -> None:
    with pytest.raises(
        ParameterError, match=r"--walk-forward 5: the last 20% of the bars span 4 trading day"
    ):
        walk_forward_windows(ts, 5, anchored=True)
    with pytest.raises(
        ParameterError, match=r"--walk-forward 21 needs bars from at least 22 trading days.* 21$"
    ):
        walk_forward_windows(ts, 21, anchored=False)
    walk_forward_windows(ts, 4, anchored=True)  # 4 folds of one day each fit


# --- Spearman ----------------------------------------------------------------------------------------------


def test_spearman_hand_computed_values() -> None:
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6*2/(4*15)
    assert spearman([10, 20, 30], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1.5, 9.0, 3.0], [100, 900, 101]) == pytest.approx(1.0)
    # ties: y ranks (1, 2, 3.5, 5, 3.5); covariance of ranks 8 / sqrt(10 * 9.5)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    # ties on both sides: x ranks (1.5, 1.5, 3, 4), y ranks (1, 2.5, 2.5, 4), both with mean 2.5:
    # dx = (-1, -1, .5, 1.5), dy = (-1.5, 0, 0, 1.5); sum dx*dy = 3.75, sum dx^2 = sum dy^2 = 4.5
    assert spearman([7, 7, 8, 9], [1, 2, 2, 3]) == pytest.approx(3.75 / 4.5)


def test_spearman_without_ties_matches_the_textbook_formula() -> None:
    rng = random.Random(7)
    for n in (3, 5, 12, 40):
        xs = rng.sample(range(1000), n)
        ys = rng.sample(range(1000), n)
        rank_x = {v: k + 1 for k, v in enumerate(sorted(xs))}
        rank_y = {v: k + 1 for k, v in enumerate(sorted(ys))}
        d2 = sum((rank_x[x] - rank_y[y]) ** 2 for x, y in zip(xs, ys, strict=True))
        assert spearman(xs, ys) == pytest.approx(1 - 6 * d2 / (n * (n * n - 1)))


def test_spearman_drops_missing_pairs_and_refuses_too_little() -> None:
    xs = [1.0, None, 2.0, float("nan"), 3.0, 4.0]
    ys = [1.0, 5.0, 3.0, 2.0, None, 2.0]
    # kept pairs: (1,1), (2,3), (4,2)
    assert spearman(xs, ys) == pytest.approx(spearman([1, 2, 4], [1, 3, 2]))
    assert spearman([1, 2, 4], [1, 3, 2]) == pytest.approx(0.5)
    assert spearman([1, 2], [2, 1]) is None
    assert spearman([1, 2, None], [2, 1, 3]) is None
    assert spearman([1, 2, 3], [5, 5, 5]) is None
    assert spearman([4, 4, 4, 4], [1, 2, 3, 4]) is None
    with pytest.raises(ValueError, match="paired"):
        spearman([1, 2, 3], [1, 2])


def test_describe_correlation_reads_the_strength() -> None:
    assert describe_correlation(0.85) == "Spearman +0.85: in-sample rank predicts out-of-sample rank strongly"
    assert "moderately" in describe_correlation(0.5)
    assert "weakly" in describe_correlation(0.2)
    assert "does not predict" in describe_correlation(0.0)
    assert "inversely" in describe_correlation(-0.6)
    assert describe_correlation(None).startswith("no rank correlation: fewer than 3 trials")


# --- side by side ------------------------------------------------------------------------------------------

ROWS = [
    TrialScore(0, {"p": 1}, 10.0, 1.0),
    TrialScore(1, {"p": 2}, 30.0, -2.0),
    TrialScore(2, {"p": 3}, 20.0, 5.0),
    TrialScore(3, {"p": 4}, 30.0, None),
    TrialScore(4, {"p": 5}, -5.0, 5.0),
]


def test_side_by_side_ranks_when_maximizing() -> None:
    got = side_by_side(ROWS, 3)
    assert [(r["number"], r["in_sample_rank"], r["out_of_sample_rank"]) for r in got] == [
        (1, 1, 4),  # tied best in sample (30), worst of the four tested out of sample
        (3, 1, None),  # tied with trial 1; never tested out of sample
        (2, 3, 1),  # OOS 5.0 ties trial 4 for the best
    ]
    assert got[0] == {
        "number": 1,
        "params": {"p": 2},
        "in_sample": 30.0,
        "in_sample_rank": 1,
        "out_of_sample": -2.0,
        "out_of_sample_rank": 4,
    }


def test_side_by_side_ranks_when_minimizing_and_top_beyond_the_trials() -> None:
    got = side_by_side(ROWS, 10, maximize=False)
    assert [(r["number"], r["in_sample_rank"], r["out_of_sample_rank"]) for r in got] == [
        (4, 1, 3),
        (0, 2, 2),
        (2, 3, 3),
        (1, 4, 1),
        (3, 4, None),
    ]


def test_side_by_side_puts_a_trial_without_in_sample_value_last_and_refuses_a_bad_top() -> None:
    rows = [TrialScore(0, {}, float("nan"), 3.0), TrialScore(1, {}, 1.0, 2.0)]
    got = side_by_side(rows, 2)
    assert [(r["number"], r["in_sample"], r["in_sample_rank"]) for r in got] == [(1, 1.0, 1), (0, None, None)]
    for bad in (0, -1, True):
        with pytest.raises(ParameterError, match=r"top .* at least 1"):
            side_by_side(ROWS, bad)

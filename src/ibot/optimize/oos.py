"""Out-of-sample checks for a parameter search: train/test windows on trading-day edges, and how well the
in-sample ranking of the trials predicts their out-of-sample ranking.

A window is four times in ns UTC, half-open: a bar belongs to the train part when train_start_ns <= ts <
train_end_ns (its open time, as everywhere in ibot). Every edge is the start of a trading day (18:00 ET, the
CME Globex roll; see ibot.model.calendar), so no trading day is ever split between train and test. Splits are
by bar count: `--holdout 0.2` tests on the trading days that hold about the last 20 % of the bars.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ibot.data.bars import format_time
from ibot.exchange.matching import DailySessions
from ibot.model.calendar import trading_day_bounds
from ibot.model.errors import ParameterError

__all__ = [
    "TrialScore",
    "Window",
    "describe_correlation",
    "holdout_windows",
    "side_by_side",
    "spearman",
    "walk_forward_windows",
]


@dataclass(frozen=True, slots=True)
class Window:
    """One train period followed by its test period, [start, end) in ns UTC, edges on trading-day starts."""

    train_start_ns: int
    train_end_ns: int
    test_start_ns: int
    test_end_ns: int

    def to_dict(self) -> dict[str, str]:
        """The four edges as the CLI shows times (`2025-03-05 23:00:00 UTC`)."""
        return {
            "train_start": format_time(self.train_start_ns),
            "train_end": format_time(self.train_end_ns),
            "test_start": format_time(self.test_start_ns),
            "test_end": format_time(self.test_end_ns),
        }

    def train_slice(self, ts: npt.NDArray[np.int64]) -> slice:
        """Rows of sorted `ts` in the train period."""
        return _rows(ts, self.train_start_ns, self.train_end_ns)

    def test_slice(self, ts: npt.NDArray[np.int64]) -> slice:
        """Rows of sorted `ts` in the test period."""
        return _rows(ts, self.test_start_ns, self.test_end_ns)


def _rows(ts: npt.NDArray[np.int64], start_ns: int, end_ns: int) -> slice:
    lo = int(np.searchsorted(ts, start_ns, side="left"))
    hi = int(np.searchsorted(ts, end_ns, side="left"))
    return slice(lo, hi)


# --- windows -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Days:
    """The trading days of a bar series: where each starts (row and ns) and where the last one ends."""

    first_row: npt.NDArray[np.int64]  # row of each day's first bar, plus len(ts) at the end
    start_ns: list[int]  # ns at which each trading day starts
    end_ns: int  # ns at which the last trading day ends

    @property
    def count(self) -> int:
        return len(self.start_ns)

    @property
    def bars(self) -> int:
        return int(self.first_row[-1])

    def boundary_near(self, row: float) -> int:
        """Index k (0..count) of the day start whose row is nearest to `row` (the earlier one on a tie)."""
        return int(np.argmin(np.abs(self.first_row - row)))

    def edge(self, k: int) -> int:
        """ns of day start k; k == count is the end of the last day."""
        return self.start_ns[k] if k < self.count else self.end_ns


def _trading_days(ts: npt.NDArray[np.int64], option: str) -> _Days:
    ts = np.asarray(ts, dtype=np.int64)
    if ts.ndim != 1 or len(ts) == 0:
        raise ParameterError(f"{option}: there are no bars to split into train and test periods")
    if len(ts) > 1 and bool(np.any(np.diff(ts) <= 0)):
        raise ParameterError(f"{option}: bar times must be strictly increasing to split them into periods")
    ids = DailySessions().day_ids(ts)
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1]))).astype(np.int64)
    return _Days(
        first_row=np.concatenate((starts, [len(ts)])).astype(np.int64),
        start_ns=[trading_day_bounds(int(ts[r]))[0] for r in starts],
        end_ns=trading_day_bounds(int(ts[-1]))[1],
    )


def _check_fraction(value: float, option: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise ParameterError(f"{option}: {what} {value!r} must be a fraction between 0 and 1 (exclusive)")
    return float(value)


def holdout_windows(ts: npt.NDArray[np.int64], fraction: float) -> list[Window]:
    """One window: train on the head of the bars, test on the trading days holding the last `fraction` of
    them (the split goes to the trading-day start nearest to that bar count)."""
    fraction = _check_fraction(fraction, "--holdout", "the test fraction")
    days = _trading_days(ts, "--holdout")
    if days.count < 2:
        raise ParameterError(
            f"--holdout needs bars from at least 2 trading days to keep one for testing; these span "
            f"{days.count} ({days.bars} bars)"
        )
    k = days.boundary_near(days.bars * (1.0 - fraction))
    if k in (0, days.count):
        side = "train" if k == 0 else "test"
        raise ParameterError(
            f"--holdout {fraction:g} leaves no whole trading day to {side} on: the {days.bars} bars span "
            f"{days.count} trading days, about {days.bars // days.count} bars each"
        )
    return [Window(days.edge(0), days.edge(k), days.edge(k), days.edge(days.count))]


def walk_forward_windows(
    ts: npt.NDArray[np.int64], folds: int, anchored: bool, test_fraction: float = 0.2
) -> list[Window]:
    """`folds` back-to-back test periods over the trading days holding the last `test_fraction` of the bars,
    each after its train period: anchored, from the first bar; rolling, the same number of trading days as
    the first fold's (all the days before the first test), right before the test."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise ParameterError(
            f"--walk-forward {folds!r}: the number of folds must be an integer of at least 1"
        )
    test_fraction = _check_fraction(test_fraction, "--walk-forward", "the test fraction")
    days = _trading_days(ts, "--walk-forward")
    if days.count < folds + 1:
        raise ParameterError(
            f"--walk-forward {folds} needs bars from at least {folds + 1} trading days (one to train on, one "
            f"per fold to test); these span {days.count}"
        )
    first = days.boundary_near(days.bars * (1.0 - test_fraction))
    first = min(max(first, 1), days.count)
    if days.count - first < folds:
        raise ParameterError(
            f"--walk-forward {folds}: the last {test_fraction:.0%} of the bars span {days.count - first} "
            f"trading day(s), fewer than one per fold; use fewer folds, a larger test fraction or more data"
        )
    cuts = [first]
    test_rows = days.bars - int(days.first_row[first])
    for f in range(1, folds):
        # the day start nearest to an equal share of the test bars, keeping >= 1 day per remaining fold
        want = days.boundary_near(int(days.first_row[first]) + test_rows * f / folds)
        cuts.append(min(max(want, cuts[-1] + 1), days.count - (folds - f)))
    cuts.append(days.count)
    windows = []
    for f in range(folds):
        train_from = 0 if anchored else max(0, cuts[f] - first)
        windows.append(
            Window(days.edge(train_from), days.edge(cuts[f]), days.edge(cuts[f]), days.edge(cuts[f + 1]))
        )
    return windows


# --- ranking -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrialScore:
    """One trial's objective value in sample (the search) and out of sample (None: not tested or failed)."""

    number: int
    params: dict[str, Any]
    in_sample: float
    out_of_sample: float | None


def _number(x: float | None) -> float | None:
    """`x` as a float, or None when it cannot be ranked (None or NaN)."""
    if x is None:
        return None
    value = float(x)
    return None if math.isnan(value) else value


def _average_ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ranks 1..n, ascending, ties sharing the average of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    n = len(values)
    while start < n:
        end = start
        while end + 1 < n and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(xs: Sequence[float | None], ys: Sequence[float | None]) -> float | None:
    """Spearman's rank correlation of paired values (ties get average ranks). Pairs with a None or NaN side
    are left out; None when fewer than 3 pairs remain or one side is constant (no ranking to compare)."""
    if len(xs) != len(ys):
        raise ValueError(f"spearman needs paired values: {len(xs)} x values but {len(ys)} y values")
    both = [(_number(x), _number(y)) for x, y in zip(xs, ys, strict=True)]
    pairs = [(x, y) for x, y in both if x is not None and y is not None]
    if len(pairs) < 3:
        return None
    rx = _average_ranks(np.array([p[0] for p in pairs], dtype=np.float64))
    ry = _average_ranks(np.array([p[1] for p in pairs], dtype=np.float64))
    dx = rx - rx.mean()
    dy = ry - ry.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    if denom == 0.0:
        return None
    return max(-1.0, min(1.0, float(dx @ dy) / denom))


def describe_correlation(rho: float | None) -> str:
    """One line saying what a rank correlation between in-sample and out-of-sample results means."""
    if rho is None:
        return (
            "no rank correlation: fewer than 3 trials have both an in-sample and an out-of-sample value, "
            "or one side is the same for all of them"
        )
    if rho >= 0.7:
        strength = "in-sample rank predicts out-of-sample rank strongly"
    elif rho >= 0.4:
        strength = "in-sample rank predicts out-of-sample rank moderately"
    elif rho >= 0.1:
        strength = "in-sample rank predicts out-of-sample rank weakly"
    elif rho > -0.1:
        strength = "in-sample rank does not predict out-of-sample rank (the search may be fitting noise)"
    else:
        strength = (
            "in-sample rank predicts out-of-sample rank inversely: the best in-sample trials tend to do "
            "worse out of sample (overfitting)"
        )
    return f"Spearman {rho:+.2f}: {strength}"


def _competition_ranks(values: Sequence[float | None], maximize: bool) -> list[int | None]:
    """Rank 1 = best; equal values share the best rank among them (1, 2, 2, 4); None/NaN get None."""
    numbers = [_number(v) for v in values]
    present = np.sort(np.array([x for x in numbers if x is not None], dtype=np.float64))
    out: list[int | None] = []
    for x in numbers:
        if x is None:
            out.append(None)
            continue
        # how many values are strictly better than x
        if maximize:
            better = len(present) - int(np.searchsorted(present, x, side="right"))
        else:
            better = int(np.searchsorted(present, x, side="left"))
        out.append(better + 1)
    return out


def side_by_side(rows: Sequence[TrialScore], top: int, maximize: bool = True) -> list[dict[str, Any]]:
    """The best `top` trials by in-sample value, best first, each with its in-sample rank and its
    out-of-sample value and rank among all trials (rank 1 = best; ties share a rank; None: no value)."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ParameterError(f"top {top!r}: the number of trials to compare must be an integer of at least 1")
    is_rank = _competition_ranks([r.in_sample for r in rows], maximize)
    oos_rank = _competition_ranks([r.out_of_sample for r in rows], maximize)
    # trials without an in-sample value sort last; equal ranks keep trial-number order
    order = sorted(
        range(len(rows)),
        key=lambda i: (is_rank[i] is None, is_rank[i] or 0, rows[i].number),
    )
    return [
        {
            "number": rows[i].number,
            "params": dict(rows[i].params),
            "in_sample": _number(rows[i].in_sample),
            "in_sample_rank": is_rank[i],
            "out_of_sample": _number(rows[i].out_of_sample),
            "out_of_sample_rank": oos_rank[i],
        }
        for i in order[:top]
    ]

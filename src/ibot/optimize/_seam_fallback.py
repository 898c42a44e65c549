"""Stand-ins for ibot.optimize.oos and ibot.optimize.report (written by another branch) with their agreed
names and signatures, used only while those modules are absent. Delete this file once they are merged."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ibot.model.errors import ParameterError

if TYPE_CHECKING:
    import optuna

    from ibot.backtest.report import BacktestResult


@dataclass(frozen=True, slots=True)
class Window:
    train_start_ns: int
    train_end_ns: int
    test_start_ns: int
    test_end_ns: int


@dataclass(frozen=True, slots=True)
class TrialScore:
    number: int
    params: dict[str, Any]
    in_sample: float
    out_of_sample: float | None


def _edges(ts: npt.NDArray[np.int64], rows: Sequence[int]) -> list[int]:
    n = len(ts)
    return [int(ts[r]) if r < n else int(ts[-1]) + 1 for r in rows]


def holdout_windows(ts: npt.NDArray[np.int64], fraction: float) -> list[Window]:
    n = len(ts)
    cut = round(n * (1.0 - fraction))
    if not 0.0 < fraction < 1.0 or cut < 1 or cut >= n:
        raise ParameterError(f"--holdout {fraction}: leaves nothing to train or test on ({n} bars)")
    a, b, c = _edges(ts, [0, cut, n])
    return [Window(a, b, b, c)]


def walk_forward_windows(
    ts: npt.NDArray[np.int64], folds: int, anchored: bool, test_fraction: float = 0.2
) -> list[Window]:
    n = len(ts)
    t = int(n * test_fraction / folds)
    first = n - folds * t
    if folds < 1 or t < 1 or first < 1:
        raise ParameterError(f"--walk-forward {folds}: too few bars ({n}) for that many folds")
    out = []
    for f in range(folds):
        test_from = first + f * t
        train_from = 0 if anchored else f * t
        a, b, c = _edges(ts, [train_from, test_from, test_from + t if f < folds - 1 else n])
        out.append(Window(a, b, b, c))
    return out


def _ranks(values: Sequence[float]) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    order = np.argsort(arr, kind="mergesort")
    ranks = np.empty(len(arr))
    i = 0
    while i < len(arr):
        j = i
        while j + 1 < len(arr) and arr[order[j + 1]] == arr[order[i]]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(xs: Sequence[float | None], ys: Sequence[float | None]) -> float | None:
    pairs = [
        (float(x), float(y))
        for x, y in zip(xs, ys, strict=True)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
    ]
    if len(pairs) < 3:
        return None
    rx, ry = _ranks([p[0] for p in pairs]), _ranks([p[1] for p in pairs])
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return None if denom == 0 else float(dx @ dy) / denom


def side_by_side(rows: Sequence[TrialScore], top: int, maximize: bool = True) -> list[dict[str, Any]]:
    sign = 1.0 if maximize else -1.0
    order = sorted(rows, key=lambda r: (math.isnan(r.in_sample), -sign * r.in_sample, r.number))
    outs = [r.out_of_sample for r in rows if r.out_of_sample is not None]

    def oos_rank(x: float | None) -> int | None:
        return None if x is None else 1 + sum(1 for o in outs if sign * o > sign * x)

    return [
        {
            "number": r.number,
            "params": dict(r.params),
            "in_sample": r.in_sample,
            "in_sample_rank": k + 1,
            "out_of_sample": r.out_of_sample,
            "out_of_sample_rank": oos_rank(r.out_of_sample),
        }
        for k, r in enumerate(order[:top])
    ]


def write_report(
    path: Path,
    study: optuna.Study,
    best_result: BacktestResult,
    oos_rows: list[dict[str, Any]],
    rank_correlation: float | None,
    title: str,
) -> Path:
    rows = "".join(
        f"<tr><td>{r['number']}</td><td>{html.escape(str(r['params']))}</td><td>{r['in_sample']}</td>"
        f"<td>{r['out_of_sample']}</td></tr>"
        for r in oos_rows
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"<html><head><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{len(study.trials)} trials; rank correlation {rank_correlation}</p>"
        f"<p>best: net {best_result.metrics.net_pnl}</p><table>{rows}</table></body></html>"
    )
    return path

"""What a parameter search optimizes, and the limits a trial must keep to count (constraints).

A trial's in-sample run is one backtest per segment (each walk-forward fold's train period, or the holdout's
in-sample part); the segments' figures combine as: net P&L summed, Sharpe and profit factor averaged over
the segments where they are defined, max drawdown the largest. A value that is undefined on every segment
(no trade: no Sharpe; no losing trade: no profit factor) scores the worst possible (-inf when maximized), so
the search moves away from it and the table shows it as "-".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ibot.backtest.report import BacktestResult, Metrics
from ibot.model.errors import ParameterError

__all__ = [
    "OBJECTIVES",
    "Constraints",
    "Objective",
    "SegmentFigures",
    "busiest_day_trades",
    "combine",
    "parse_objectives",
]


@dataclass(frozen=True, slots=True)
class Objective:
    """One figure to optimize: its name on the command line, Optuna's direction, and how to show it."""

    name: str
    direction: str  # "maximize" | "minimize"
    label: str

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def worst(self) -> float:
        return -math.inf if self.maximize else math.inf


OBJECTIVES: dict[str, Objective] = {
    "net": Objective("net", "maximize", "net P&L"),
    "sharpe": Objective("sharpe", "maximize", "Sharpe"),
    "profit_factor": Objective("profit_factor", "maximize", "profit factor"),
    "max_drawdown": Objective("max_drawdown", "minimize", "max drawdown"),
}


def parse_objectives(names: Sequence[str]) -> tuple[Objective, ...]:
    """`--objective` values in order (each once); an unknown one names the known ones."""
    out: list[Objective] = []
    for name in names or ["sharpe"]:
        key = name.strip().lower().replace("-", "_")
        if key not in OBJECTIVES:
            raise ParameterError(f"--objective {name!r} is not one of {', '.join(OBJECTIVES)}")
        if OBJECTIVES[key] in out:
            raise ParameterError(f"--objective {key} is given twice")
        out.append(OBJECTIVES[key])
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Constraints:
    """Limits of a feasible trial (None: no limit): at most `max_trades_per_day` round trips entered on the
    in-sample period's busiest trading day, at least `min_trades` round trips in sample."""

    max_trades_per_day: int | None = None
    min_trades: int | None = None

    def __post_init__(self) -> None:
        if self.max_trades_per_day is not None and self.max_trades_per_day < 1:
            raise ParameterError(f"--max-trades-per-day {self.max_trades_per_day} must be at least 1")
        if self.min_trades is not None and self.min_trades < 0:
            raise ParameterError(f"--min-trades {self.min_trades} must be at least 0")

    @property
    def any(self) -> bool:
        return self.max_trades_per_day is not None or self.min_trades is not None

    def values(self, trades: int, busiest_day: int) -> dict[str, float]:
        """Optuna's constraint values (<= 0: kept) by name."""
        out: dict[str, float] = {}
        if self.max_trades_per_day is not None:
            out["max_trades_per_day"] = float(busiest_day - self.max_trades_per_day)
        if self.min_trades is not None:
            out["min_trades"] = float(self.min_trades - trades)
        return out


@dataclass(frozen=True, slots=True)
class SegmentFigures:
    """What one segment's backtest contributes to a trial: its metrics and its busiest day's trade count."""

    metrics: Metrics
    busiest_day: int

    @classmethod
    def of(cls, result: BacktestResult) -> SegmentFigures:
        return cls(result.metrics, busiest_day_trades(result))


def busiest_day_trades(result: BacktestResult) -> int:
    """Round trips entered on the run's busiest trading day (the engine's trading days, 18:00 ET rolls)."""
    if not result.trades or not len(result.ts):
        return 0
    entries = np.fromiter((t.entry_ts for t in result.trades), dtype=np.int64, count=len(result.trades))
    rows = np.clip(np.searchsorted(result.ts, entries, side="right") - 1, 0, len(result.ts) - 1)
    _, counts = np.unique(result.day_ids[rows], return_counts=True)
    return int(counts.max())


def _value(objective: Objective, m: Metrics) -> float | None:
    if objective.name == "net":
        return float(m.net_pnl)
    if objective.name == "sharpe":
        return m.sharpe
    if objective.name == "profit_factor":
        return m.profit_factor
    return float(m.max_drawdown)


def combine(objective: Objective, segments: Sequence[SegmentFigures]) -> float | None:
    """The objective over `segments` as the module doc says; None when it is undefined on every one."""
    values = [v for v in (_value(objective, s.metrics) for s in segments) if v is not None]
    if not values:
        return None
    if objective.name == "net":
        return float(sum(values))
    if objective.name == "max_drawdown":
        return float(max(values))
    return float(sum(values) / len(values))

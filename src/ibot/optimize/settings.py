"""A study's settings, stored in the study itself (Optuna user attrs) when it is created, so that a worker on
any machine needs only the study's name and storage: the strategy, symbol, bar size and date range, the
objectives, the search space, the out-of-sample split, the constraints, the fees, how a synthetic market is
made when the store is empty, and a digest of the bars the study was made on (a worker whose bars differ is
refused rather than mixing two markets in one study)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ibot.data.bars import BarFrame
from ibot.model.errors import ParameterError
from ibot.optimize.objectives import Constraints, Objective, parse_objectives
from ibot.optimize.space import SearchSpace

__all__ = ["ATTR", "BarsIdentity", "StudySettings"]

ATTR = "ibot"  # the user attr holding the settings
SCHEMA = 1


@dataclass(frozen=True, slots=True)
class BarsIdentity:
    """Which bars a study searches: count, first and last open time (ns UTC), and a digest of every value."""

    count: int
    first_ts: int
    last_ts: int
    digest: str

    @classmethod
    def of(cls, frame: BarFrame) -> BarsIdentity:
        h = hashlib.sha256()
        for column in (frame.ts, frame.open, frame.high, frame.low, frame.close, frame.volume):
            h.update(np.ascontiguousarray(column).tobytes())
        first = int(frame.ts[0]) if len(frame) else 0
        last = int(frame.ts[-1]) if len(frame) else 0
        return cls(len(frame), first, last, h.hexdigest()[:32])

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "digest": self.digest,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BarsIdentity:
        return cls(int(data["count"]), int(data["first_ts"]), int(data["last_ts"]), str(data["digest"]))


@dataclass(frozen=True, slots=True)
class StudySettings:
    """Everything that defines a study's trials. `trials`: COMPLETE (or pruned) trials the study runs to;
    `holdout` / `walk_forward` (+ `anchored`): the out-of-sample split; `days`/`seed`: the synthetic market
    made when the bar store is empty."""

    strategy: str
    symbol: str
    bar: str
    space: SearchSpace
    objectives: tuple[str, ...] = ("sharpe",)
    trials: int = 100
    start: str | None = None  # first date, UTC, inclusive
    end: str | None = None  # last date, UTC, inclusive
    holdout: float | None = 0.25
    walk_forward: int | None = None
    anchored: bool = False
    constraints: Constraints = field(default_factory=Constraints)
    slippage_ticks: int = 1
    commission: str | None = None
    days: int = 60
    seed: int = 7
    heartbeat: int = 5
    bars: BarsIdentity | None = None

    @property
    def objective_list(self) -> tuple[Objective, ...]:
        return parse_objectives(self.objectives)

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def to_attrs(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "bar": self.bar,
            "space": self.space.to_dict(),
            "objectives": list(self.objectives),
            "trials": self.trials,
            "start": self.start,
            "end": self.end,
            "holdout": self.holdout,
            "walk_forward": self.walk_forward,
            "anchored": self.anchored,
            "max_trades_per_day": self.constraints.max_trades_per_day,
            "min_trades": self.constraints.min_trades,
            "slippage_ticks": self.slippage_ticks,
            "commission": self.commission,
            "days": self.days,
            "seed": self.seed,
            "heartbeat": self.heartbeat,
            "bars": self.bars.to_dict() if self.bars else None,
        }

    @classmethod
    def from_attrs(cls, data: Mapping[str, Any], study: str) -> StudySettings:
        if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
            raise ParameterError(f"study {study!r} was not made by `ibot optimize` (or by another version)")
        return cls(
            strategy=str(data["strategy"]),
            symbol=str(data["symbol"]),
            bar=str(data["bar"]),
            space=SearchSpace.from_dict(data["space"]),
            objectives=tuple(data["objectives"]),
            trials=int(data["trials"]),
            start=data.get("start"),
            end=data.get("end"),
            holdout=data.get("holdout"),
            walk_forward=data.get("walk_forward"),
            anchored=bool(data.get("anchored")),
            constraints=Constraints(data.get("max_trades_per_day"), data.get("min_trades")),
            slippage_ticks=int(data["slippage_ticks"]),
            commission=data.get("commission"),
            days=int(data["days"]),
            seed=int(data["seed"]),
            heartbeat=int(data["heartbeat"]),
            bars=BarsIdentity.from_dict(data["bars"]) if data.get("bars") else None,
        )

    def differences(self, other: StudySettings) -> list[str]:
        """The settings (other than the trial count and heartbeat) in which `other` differs from this."""
        mine = replace(self, trials=0, heartbeat=0).to_attrs()
        theirs = replace(other, trials=0, heartbeat=0).to_attrs()
        return [k for k in mine if mine[k] != theirs[k]]

"""The strategies ibot knows: build one from its name and `k=v` parameters, list their declared parameters.
Unknown names and bad parameters are refused with one sentence naming them (ParameterError)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ibot.strategies import STRATEGIES, get_strategy
from ibot.strategy.base import Strategy
from ibot.strategy.params import parse_assignments

__all__ = ["StrategyParam", "make_strategy", "strategy_params"]


@dataclass(frozen=True, slots=True)
class StrategyParam:
    """One declared parameter of one strategy: its default and the values it accepts."""

    strategy: str
    param: str
    default: Any
    range: str  # "low .. high", or the choices joined by "|"
    help: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "param": self.param,
            "default": self.default,
            "range": self.range,
            "help": self.help,
        }


def make_strategy(name: str, params: Sequence[str] = ()) -> Strategy:
    """A fresh instance of strategy `name` with `params` ("breakout_bars=7") applied and checked."""
    cls = get_strategy(name)
    return cls(**parse_assignments(params, owner=name))


def strategy_params() -> list[StrategyParam]:
    """Every known strategy's declared parameters, in declaration order."""
    return [
        StrategyParam(
            strategy=name,
            param=p.name,
            default=p.default,
            range=("|".join(map(str, p.choices)) if p.choices else f"{p.low} .. {p.high}"),
            help=p.help,
        )
        for name, cls in STRATEGIES.items()
        for p in cls.params
    ]

"""The strategies that ship with ibot, by name: the CLI, backtester and optimizer look them up here."""

from __future__ import annotations

from ibot.model.errors import ParameterError
from ibot.strategies.ma_breakout import MaBreakout
from ibot.strategies.sma_reversal import SmaReversal
from ibot.strategy.base import Strategy

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (MaBreakout, SmaReversal)}


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered as `name`; an unknown name is a ParameterError listing the known ones."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ParameterError(
            f"unknown strategy {name!r}; known strategies: {', '.join(sorted(STRATEGIES))}"
        ) from None


__all__ = ["STRATEGIES", "MaBreakout", "SmaReversal", "get_strategy"]

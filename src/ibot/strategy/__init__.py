"""Strategy API: the base class, its context and declared parameters."""

from ibot.strategy.base import Context, Strategy
from ibot.strategy.params import Param, parse_assignments, resolve_params

__all__ = ["Context", "Param", "Strategy", "parse_assignments", "resolve_params"]

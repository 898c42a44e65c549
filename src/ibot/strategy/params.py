"""Strategy parameters, declared where they are used: the CLI, backtester and optimizer read one list."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ibot.model.errors import ParameterError


@dataclass(frozen=True, slots=True)
class Param:
    """A tunable parameter: name, type, default and the closed range [low, high] (or the allowed choices)."""

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    help: str = ""

    def parse(self, raw: Any, owner: str = "strategy") -> Any:
        """Convert `raw` (often a CLI string) to this parameter's type and check its range."""
        kind = type(self.default)
        try:
            if kind is bool and isinstance(raw, str):
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(raw)
                value: Any = raw.lower() in ("1", "true", "yes", "on")
            elif kind is int and isinstance(raw, str):
                value = int(raw)
            elif kind is int and isinstance(raw, float):
                if not raw.is_integer():
                    raise ValueError(raw)
                value = int(raw)
            else:
                value = kind(raw)
        except (TypeError, ValueError):
            raise ParameterError(
                f"{owner}: parameter {self.name}={raw!r} is not a valid {kind.__name__}"
            ) from None
        if isinstance(value, float) and math.isnan(value):
            raise ParameterError(f"{owner}: parameter {self.name} is NaN")
        if self.choices and value not in self.choices:
            raise ParameterError(
                f"{owner}: parameter {self.name}={value!r} is not one of {', '.join(map(str, self.choices))}"
            )
        if self.low is not None and value < self.low:
            raise ParameterError(f"{owner}: parameter {self.name}={value!r} is below its minimum {self.low}")
        if self.high is not None and value > self.high:
            raise ParameterError(f"{owner}: parameter {self.name}={value!r} is above its maximum {self.high}")
        return value


def resolve_params(declared: Sequence[Param], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Defaults overlaid with `given`, every value parsed and range-checked; unknown names are an error."""
    by_name = {p.name: p for p in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise ParameterError(
            f"{owner}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(by_name))}"
        )
    values = {p.name: p.default for p in declared}
    for name, raw in given.items():
        values[name] = by_name[name].parse(raw, owner)
    return values


def parse_assignments(pairs: Sequence[str], owner: str = "strategy") -> dict[str, str]:
    """`["k=v", ...]` from the command line into a dict; malformed pairs are an error naming the pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"{owner}: parameter {pair!r} must look like name=value")
        out[name.strip()] = value.strip()
    return out

"""The search space of a parameter search: the strategy's declared parameters (ibot.strategy.params.Param),
each narrowed or fixed from the command line.

- `--param name=low:high` narrows a numeric range (inside the declared one; low == high fixes it);
- `--param name=a|b|c` narrows to those choices (declared choices, or values inside a numeric range);
- `--param name=value` fixes one value.

When some `--param` gives a range or choices, those parameters are the search space and every other one
keeps its default (or its fixed `--param` value): the search looks where it was told to. When none does,
every declared parameter is searched over its whole declared range or choices (a bool over True/False);
one that declares neither keeps its default, and so does `quantity` (it sizes positions: searching it only
scales P&L and drawdown together). A positive range spanning 100x or more is sampled on a log scale.

A name the strategy does not declare, a value outside the declared range or choices, low > high, a range for a
parameter that takes choices, and a name given twice are ParameterErrors naming the `--param` they came from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ibot.model.errors import ParameterError
from ibot.strategy.params import Param

if TYPE_CHECKING:
    import optuna

__all__ = ["SIZING_PARAMS", "Dimension", "SearchSpace", "build_space"]

SIZING_PARAMS = frozenset({"quantity"})  # held at their default unless `--param` names them
LOG_SCALE_RATIO = 100.0  # a positive range spanning 100x or more is sampled on a log scale


@dataclass(frozen=True, slots=True)
class Dimension:
    """One parameter of the search: `kind` "int"/"float" (a range [low, high], `log`: sampled on a log scale),
    "choice" (one of `choices`) or "fixed" (always `value`)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None
    log: bool = False

    @property
    def searched(self) -> bool:
        return self.kind != "fixed"

    def suggest(self, trial: optuna.Trial) -> Any:
        """This parameter's value for `trial` (Optuna records it as the trial's param)."""
        if self.kind == "int":
            assert self.low is not None and self.high is not None
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        if self.kind == "float":
            assert self.low is not None and self.high is not None
            return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        return self.value

    def describe(self) -> str:
        """`2 .. 50 (log)`, `breakout|slope` or `= 1`."""
        if self.kind in ("int", "float"):
            return f"{_num(self.low)} .. {_num(self.high)}{' (log)' if self.log else ''}"
        if self.kind == "choice":
            return "|".join(map(str, self.choices))
        return f"= {self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "choices": list(self.choices),
            "value": self.value,
            "log": self.log,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Dimension:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            low=data.get("low"),
            high=data.get("high"),
            choices=tuple(data.get("choices") or ()),
            value=data.get("value"),
            log=bool(data.get("log", False)),
        )


def _num(x: float | None) -> str:
    return "-" if x is None else (str(int(x)) if float(x).is_integer() else f"{x:g}")


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """Every declared parameter of `strategy`, searched or fixed, in declaration order."""

    strategy: str
    dimensions: tuple[Dimension, ...]

    @property
    def searched(self) -> list[str]:
        return [d.name for d in self.dimensions if d.searched]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The full parameter set of `trial`: searched ones suggested by Optuna, fixed ones as given."""
        return {d.name: d.suggest(trial) for d in self.dimensions}

    def complete(self, searched: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's full parameter set from its searched params (Optuna stores only those)."""
        return {d.name: searched.get(d.name, d.value) for d in self.dimensions}

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "dimensions": [d.to_dict() for d in self.dimensions]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        return cls(str(data["strategy"]), tuple(Dimension.from_dict(d) for d in data["dimensions"]))


def build_space(strategy: str, declared: Sequence[Param], specs: Sequence[str] = ()) -> SearchSpace:
    """The search space of `strategy` from its declared parameters and the `--param` specs."""
    by_name = {p.name: p for p in declared}
    given: dict[str, str] = {}
    for spec in specs:
        name, sep, raw = spec.partition("=")
        name = name.strip()
        if not sep or not name or not raw.strip():
            raise ParameterError(f"--param {spec!r} must look like name=low:high, name=a|b or name=value")
        if name not in by_name:
            raise ParameterError(
                f"--param {spec}: {strategy} declares no parameter {name!r}; it declares {', '.join(by_name)}"
            )
        if name in given:
            raise ParameterError(f"--param {spec}: {name} is already given as {name}={given[name]}")
        given[name] = raw.strip()
    narrowed = {name: _narrowed(strategy, by_name[name], raw) for name, raw in given.items()}
    chosen = any(d.searched for d in narrowed.values())
    dims = tuple(
        narrowed[p.name]
        if p.name in narrowed
        else (Dimension(p.name, "fixed", value=p.default) if chosen else _declared(p))
        for p in declared
    )
    if not any(d.searched for d in dims):
        raise ParameterError(
            f"{strategy}: nothing to search, every parameter is fixed; give a range: --param name=low:high"
        )
    return SearchSpace(strategy, dims)


def _declared(p: Param) -> Dimension:
    """The whole declared range or choices of `p` (its default when it declares neither, or sizes)."""
    if p.name in SIZING_PARAMS:
        return Dimension(p.name, "fixed", value=p.default)
    if p.choices:
        return Dimension(p.name, "choice", choices=tuple(p.choices))
    if isinstance(p.default, bool):
        return Dimension(p.name, "choice", choices=(False, True))
    if isinstance(p.default, (int, float)) and p.low is not None and p.high is not None:
        return _range(p, p.low, p.high)
    return Dimension(p.name, "fixed", value=p.default)


def _range(p: Param, low: float, high: float) -> Dimension:
    kind = "int" if isinstance(p.default, int) else "float"
    if low == high:
        return Dimension(p.name, "fixed", value=int(low) if kind == "int" else float(low))
    log = low > 0 and high / low >= LOG_SCALE_RATIO
    return Dimension(p.name, kind, low=low, high=high, log=log)


def _narrowed(strategy: str, p: Param, raw: str) -> Dimension:
    spec = f"{p.name}={raw}"

    def parse(text: str) -> Any:
        try:
            return p.parse(text.strip(), owner=strategy)
        except ParameterError as exc:
            raise ParameterError(f"--param {spec}: {exc}") from None

    numeric = isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
    if "|" in raw:
        values = list(dict.fromkeys(parse(v) for v in raw.split("|")))
        if len(values) == 1:
            return Dimension(p.name, "fixed", value=values[0])
        return Dimension(p.name, "choice", choices=tuple(values))
    if ":" in raw and numeric and not p.choices:
        low_text, _, high_text = raw.partition(":")
        low, high = parse(low_text), parse(high_text)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ParameterError(f"--param {spec}: a range needs finite bounds")
        if low > high:
            raise ParameterError(f"--param {spec}: the low end {low} is above the high end {high}")
        return _range(p, low, high)
    if ":" in raw:
        takes = "|".join(map(str, p.choices)) if p.choices else f"a {type(p.default).__name__}"
        raise ParameterError(f"--param {spec}: {p.name} takes {takes}, not a range low:high")
    return Dimension(p.name, "fixed", value=parse(raw))

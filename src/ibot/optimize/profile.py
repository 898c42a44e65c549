"""A profile: the parameters a search found best, as a JSON file that `ibot backtest --profile` and `ibot run
--profile` read. It names the strategy, symbol and bar size, the parameters, the study it came from, the bar
range and fees of that study, and the figures of a backtest of those parameters over the whole range (what
`ibot backtest --profile` reproduces, exactly, on the same bars)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibot.model.errors import ParameterError

__all__ = ["PROFILE_KIND", "Profile", "read_profile"]

PROFILE_KIND = "ibot-profile"


@dataclass(frozen=True, slots=True)
class Profile:
    """Best parameters of a study and where they came from; `first_ts`/`last_ts`: the first and last bar of
    the study's range (ns UTC); `figures`: the whole-range backtest's metrics (money as exact strings)."""

    strategy: str
    symbol: str
    bar: str
    params: dict[str, Any]
    study: str = ""
    storage: str = ""  # masked
    trial: int | None = None
    first_ts: int | None = None
    last_ts: int | None = None
    slippage_ticks: int = 1
    commission: str | None = None
    objectives: dict[str, float | None] = field(default_factory=dict)
    out_of_sample: dict[str, float | None] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    def assignments(self) -> tuple[str, ...]:
        """The parameters as `k=v` (what `--param` takes; a later `--param` overrides one)."""
        return tuple(f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in self.params.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": PROFILE_KIND,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "bar": self.bar,
            "params": dict(self.params),
            "study": self.study,
            "storage": self.storage,
            "trial": self.trial,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "slippage_ticks": self.slippage_ticks,
            "commission": self.commission,
            "objectives": dict(self.objectives),
            "out_of_sample": dict(self.out_of_sample),
            "figures": dict(self.figures),
        }

    def write(self, path: Path) -> Path:
        """Write as JSON (to a temporary name, then renamed: a reader never sees half a profile)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        os.replace(tmp, path)
        return path


def read_profile(path: Path) -> Profile:
    """The profile at `path`; a missing, unreadable or malformed file is a ParameterError naming it."""
    where = f"--profile {path}"
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ParameterError(f"{where} does not exist") from None
    except IsADirectoryError:
        raise ParameterError(f"{where} is a directory, not a profile file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParameterError(f"{where} cannot be read as a profile: {exc}") from None
    if not isinstance(data, Mapping) or data.get("kind") != PROFILE_KIND:
        raise ParameterError(f"{where} is not an ibot profile (written by `ibot optimize`)")
    try:
        params = data["params"]
        if not isinstance(params, Mapping):
            raise TypeError("params")
        return Profile(
            strategy=str(data["strategy"]),
            symbol=str(data["symbol"]),
            bar=str(data["bar"]),
            params=dict(params),
            study=str(data.get("study") or ""),
            storage=str(data.get("storage") or ""),
            trial=data.get("trial"),
            first_ts=_int_or_none(data.get("first_ts")),
            last_ts=_int_or_none(data.get("last_ts")),
            slippage_ticks=int(data.get("slippage_ticks", 1)),
            commission=data.get("commission"),
            objectives=dict(data.get("objectives") or {}),
            out_of_sample=dict(data.get("out_of_sample") or {}),
            figures=dict(data.get("figures") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ParameterError(f"{where} is missing or has a malformed field: {exc}") from None


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)

"""The `[history]` table of ibot.toml: what `ibot history update` (the daily job) keeps downloaded.

```toml
[history]
symbols = ["MES", "MNQ"]   # catalog products or stocks
bars = ["1 min"]           # IB bar sizes
what = "TRADES"
start = "2024-01-01"       # the first trading day to keep (default: lookback_days before today)
lookback_days = 30
overlap_days = 10          # business days before the previous month's roll date
```
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ibot.config import ConfigError

__all__ = ["HistorySettings", "load_history_settings"]


class HistorySettings(BaseModel):
    """What the daily history job downloads and how it paces itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbols: tuple[str, ...] = Field(default=("MES",), min_length=1, description="products or stocks to keep")
    bars: tuple[str, ...] = Field(default=("1 min",), min_length=1, description="IB bar sizes to keep")
    what: str = Field(default="TRADES", description="whatToShow: TRADES, MIDPOINT, BID, ASK or BID_ASK")
    start: date | None = Field(default=None, description="first trading day to keep (default: lookback)")
    lookback_days: int = Field(default=30, ge=1, le=3650, description="days back when `start` is not set")
    overlap_days: int = Field(default=10, ge=0, le=60, description="business days before the prior roll")
    request_timeout: float = Field(default=60.0, gt=0, description="seconds to wait for one request")
    max_retries: int = Field(default=5, ge=0, le=20, description="tries again after pacing / timeouts")
    max_in_flight: int = Field(default=5, ge=1, le=50, description="open requests at once (IB allows 50)")

    @field_validator("symbols", mode="after")
    @classmethod
    def _upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(s.strip().upper() for s in value if s.strip())


def load_history_settings(path: Path | None = None) -> HistorySettings:
    """The `[history]` table of `path` (default ./ibot.toml when present); defaults when there is none.
    ConfigError names the key ("ibot.toml [history].bars: ...")."""
    raw: dict[str, object] = {}
    path = path or (Path("ibot.toml") if Path("ibot.toml").exists() else None)
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text()).get("history", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    try:
        return HistorySettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        source = f"{path} " if path is not None else ""
        raise ConfigError(f"{source}[history].{where}: {first['msg']}") from None

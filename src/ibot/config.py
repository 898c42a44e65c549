"""Settings for one ibot installation: a pydantic model read from ibot.toml and IBOT_* variables."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ibot.model.errors import IbotError
from ibot.oms.risk import RiskLimits


class ConfigError(IbotError, ValueError):
    """A configuration file or variable that fails validation; the message names the key."""


class Settings(BaseModel):
    """Where data lives and the defaults every command starts from."""

    data_dir: Path = Field(default=Path("data"), description="root of the Parquet bar store")
    out_dir: Path = Field(default=Path("out"), description="where reports, trade lists and charts go")
    records_sync: Literal["normal", "full"] = Field(
        default="normal",
        description="durability of the SQLite order records: normal (safe against a crash of the process) or "
        "full (an fsync per commit: safe against power loss too); see ibot.oms.records.records_sync",
    )


def load_settings(path: Path | None = None) -> Settings:
    """Read `path` (default ./ibot.toml when present, its [ibot] table), then IBOT_DATA_DIR / IBOT_OUT_DIR /
    IBOT_RECORDS_SYNC."""
    raw: dict[str, object] = {}
    path = path or (Path("ibot.toml") if Path("ibot.toml").exists() else None)
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text()).get("ibot", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    for key in Settings.model_fields:
        env = os.environ.get(f"IBOT_{key.upper()}")
        if env:
            raw[key] = env
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"config key {where!r}: {first['msg']}") from None


class NodeStrategy(BaseModel):
    """One strategy the node runs: `{ strategy = "ma_breakout", symbol = "MES", bar = "5min",
    params = ["breakout_bars=7"] }` (params may also be a table: `{ breakout_bars = 7 }`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: str = Field(min_length=1)
    symbol: str = Field(min_length=1)
    bar: str = "5min"
    params: tuple[str, ...] = ()

    @field_validator("params", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return tuple(f"{k}={v}" for k, v in value.items())
        return value


class NodeSettings(BaseModel):
    """The `[node]` table of ibot.toml: what `ibot run` hosts (command-line flags override it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategies: tuple[NodeStrategy, ...] = Field(
        default=(), description="the strategies the node runs, each on its instrument"
    )
    symbols: tuple[str, ...] = Field(
        default=(), description="instruments the doors (webhook, ...) trade besides the strategies' ones"
    )
    flatten: bool = Field(default=True, description="close the strategies' positions when the node stops")
    webhook: bool = Field(default=False, description="host the TradingView webhook door")
    risk: RiskLimits = Field(
        default_factory=RiskLimits, description="the node's one risk budget, for every strategy and door"
    )


def load_node_settings(path: Path | None = None) -> NodeSettings:
    """The `[node]` table of `path` (default ./ibot.toml when present); defaults when there is none.
    ConfigError names the key ("[node].risk.max_position: ...")."""
    raw: dict[str, object] = {}
    path = path or (Path("ibot.toml") if Path("ibot.toml").exists() else None)
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text()).get("node", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    try:
        return NodeSettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        source = f"{path} " if path is not None else ""
        raise ConfigError(f"{source}[node].{where}: {first['msg']}") from None


class PathError(IbotError, ValueError):
    """A directory option that names a file, a missing directory, or a place that cannot be written."""


def ensure_directory(path: Path, what: str) -> Path:
    """`path` as a writable directory, created (with its parents) if missing; `what` names it in errors
    (e.g. "--out"). Refuses a file where a directory is needed, and a place the OS will not create."""
    check_directory_target(path, what)
    if path.exists():
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError(f"{what} {path} cannot be created: {exc.strerror or exc}") from None
    return path


def check_directory_target(path: Path, what: str) -> None:
    """Refuse, without creating anything, a `path` that cannot become a writable directory: a file, a file
    among its parents, or a parent the user cannot write to."""
    if path.exists():
        if not path.is_dir():
            raise PathError(f"{what} {path} is a file, not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise PathError(f"{what} {path} is not writable")
        return
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PathError(f"{what} {path} cannot be created: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PathError(f"{what} {path} cannot be created: {ancestor} is not writable")


def existing_directory(path: Path, what: str) -> Path:
    """`path` if it is an existing directory (a reading command creates nothing); else one sentence."""
    if not path.exists():
        raise PathError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise PathError(f"{what} {path} is a file, not a directory")
    return path

"""Settings for one ibot installation: a pydantic model read from ibot.toml and IBOT_* variables."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from ibot.model.errors import IbotError


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

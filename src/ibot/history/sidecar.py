"""The contract facts beside a contract's stored bars: `<root>/bars/<KEY>/contract.json`.

The continuous-series builder reads them (con id, local symbol, IB's last trade date, exchange, multiplier),
and a later download reads IB's last trade date from them without asking IB again. Written atomically (temp
file, fsync, rename, fsync of the directory)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from ibot.data.store import atomic_write

__all__ = ["read_sidecar", "sidecar_last_trade", "sidecar_path", "write_sidecar"]

SIDECAR = "contract.json"


def sidecar_path(root: Path, key: str) -> Path:
    return root / "bars" / key / SIDECAR


def write_sidecar(root: Path, key: str, facts: dict[str, Any]) -> Path:
    target = sidecar_path(root, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (json.dumps(facts, indent=2, sort_keys=True) + "\n").encode()
    atomic_write(target, lambda handle: handle.write(text))
    return target


def read_sidecar(root: Path, key: str) -> dict[str, Any] | None:
    """The stored facts of `key`, or None when there are none (or the file is not readable JSON)."""
    try:
        data = json.loads(sidecar_path(root, key).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def sidecar_last_trade(root: Path, key: str) -> date | None:
    """IB's last trade date of `key` as stored beside its bars, if known."""
    facts = read_sidecar(root, key) or {}
    text = facts.get("lastTradeDate")
    try:
        return date.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None

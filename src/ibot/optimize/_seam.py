"""The modules of the "report" branch (ibot.optimize.oos, ibot.optimize.report), or their stand-ins in
_seam_fallback while that branch is not merged. Once it is: import `oos` and `report` directly and delete this
module and _seam_fallback."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["oos", "write_report"]


def _load(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"ibot.optimize.{name}")
    except ModuleNotFoundError:
        return importlib.import_module("ibot.optimize._seam_fallback")


oos: Any = _load("oos")
write_report: Any = _load("report").write_report

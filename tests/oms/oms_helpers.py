"""Shared values for the OMS tests: instruments, times, and a way to run a coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from ibot.model.catalog import contract
from ibot.model.instruments import Instrument
from ibot.model.market import datetime_to_ns

T = TypeVar("T")

# MES / MNQ December 2024 (MESZ4, MNQZ4); T0 is a Tuesday morning, well inside the CME Globex session.
MES = contract("MES", 2024, 12)
MNQ = contract("MNQ", 2024, 12)
T0 = datetime_to_ns(datetime(2024, 11, 5, 15, 0, tzinfo=UTC))
SECOND = 1_000_000_000
MINUTE = 60 * SECOND


def instruments(symbol: str) -> Instrument:
    """The instrument lookup the tests use: MES/MESZ4 and MNQ/MNQZ4, December 2024."""
    for inst in (MES, MNQ):
        if symbol in (inst.symbol, inst.local_symbol):
            return inst
    raise KeyError(symbol)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)

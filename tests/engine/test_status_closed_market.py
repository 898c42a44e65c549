"""The status line says when the strategy's market is closed, and until when (issue 13, finding 6): on a
Saturday "0 bars" must not read as a broken feed."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from ibot.engine.status import market_closed_note
from ibot.model import catalog
from ibot.model.market import datetime_to_ns


def _runner(symbol: str, day: datetime) -> Any:
    return SimpleNamespace(instrument=catalog.resolve(symbol, day.date()))


def test_a_closed_market_is_named_with_its_next_open() -> None:
    saturday = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)
    note = market_closed_note(_runner("MES", saturday), datetime_to_ns(saturday))
    assert note == "market closed until 2025-03-02 23:00:00 UTC"  # Sunday 17:00 CT
    halt = datetime(2025, 3, 5, 22, 30, tzinfo=UTC)  # 16:30 CT, the daily halt
    assert market_closed_note(_runner("MES", halt), datetime_to_ns(halt)) == (
        "market closed until 2025-03-05 23:00:00 UTC"
    )
    stock = datetime(2025, 3, 5, 22, 30, tzinfo=UTC)  # 17:30 ET: after the NYSE close
    assert market_closed_note(_runner("AAPL", stock), datetime_to_ns(stock)) == (
        "market closed until 2025-03-06 14:30:00 UTC"
    )


def test_an_open_market_or_an_unknown_time_says_nothing() -> None:
    wednesday = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
    assert market_closed_note(_runner("MES", wednesday), datetime_to_ns(wednesday)) == ""
    assert market_closed_note(_runner("MES", wednesday), 0) == ""
    no_instrument: Any = SimpleNamespace(instrument=None)
    assert market_closed_note(no_instrument, datetime_to_ns(wednesday)) == ""

"""Fixtures of the history tests: the TWS simulator on a free port with IB's pacing rules scaled down (every
window divided by SCALE, as `ibot sim --pacing-scale` does), the reqHistoricalData lines it logs, and a
download through the real service and ib_async."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from ibot.app.history import HistoryJob, HistoryResult, HistoryRun, download_history
from ibot.data.store import BarStore
from ibot.sim.background import serve_in_thread
from ibot.sim.pacing import SimLimits
from ibot.sim.server import SimServer

# A Wednesday, 09:00:30 Chicago: MESH5 is the front month; MESZ4 expired on 2024-12-20.
START = datetime(2025, 3, 5, 15, 0, 30, tzinfo=UTC)
SCALE = 100.0
# Two contracts across the December 2024 roll: MESZ4 (expired at the simulator's time) and MESH5.
FROM, TO = date(2024, 12, 9), date(2024, 12, 27)


def scaled_limits(scale: float = SCALE) -> SimLimits:
    return SimLimits(
        identical_request_seconds=15.0 / scale,
        same_contract_seconds=2.0 / scale,
        window_seconds=600.0 / scale,
    )


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "reqHistoricalData" in text:
            self.lines.append(text)


@dataclass
class Sim:
    server: SimServer
    log: _Lines
    data: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def requests(self) -> int:
        """reqHistoricalData requests the simulator received so far."""
        return len(self.log.lines)

    def store(self, data: Path | None = None) -> BarStore:
        return BarStore(data or self.data)

    def download(self, data: Path | None = None, scale: float = SCALE, **job: Any) -> HistoryResult:
        job.setdefault("symbol", "MES")
        job.setdefault("start", FROM)
        job.setdefault("end", TO)
        run_opts = {k: job.pop(k) for k in ("request_timeout", "max_retries", "max_in_flight") if k in job}
        run = HistoryRun(data or self.data, pacing_scale=scale, connect_timeout=10.0, **run_opts)
        return asyncio.run(download_history([HistoryJob(**job)], run, ib_overrides={"port": self.port}))


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    """The simulator (speed 1: its clock moves with the wall clock) with pacing scaled down by SCALE."""
    yield from _serve(tmp_path, scaled_limits())


@pytest.fixture
def strict_sim(tmp_path: Path) -> Iterator[Sim]:
    """The simulator keeping IB's own two-second rule (scale 1) for one contract, the other windows scaled
    by SCALE: a client pacing at SCALE sends a 6th request for one contract within 2 s."""
    limits = SimLimits(identical_request_seconds=15.0 / SCALE, same_contract_seconds=2.0, window_seconds=6.0)
    yield from _serve(tmp_path, limits)


def _serve(tmp_path: Path, limits: SimLimits) -> Iterator[Sim]:
    server = SimServer(port=0, symbols=["MES"], speed=1.0, start=START, limits=limits)
    handler = _Lines()
    logger = logging.getLogger("ibot.sim")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        with serve_in_thread(server):
            yield Sim(server, handler, tmp_path / "data")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

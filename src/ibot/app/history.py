"""History service: `ibot history download / update / gaps` for every surface.

`download_history` checks the job before anything is created or contacted (symbol, dates, bar size, data
directory), connects to TWS / IB Gateway with the historical-data client id (seed 000's plan: 21) through the
IB adapter, plans the contracts the range needs from IB's server time, and runs the paced, resumable download
(`ibot.history.download`). `update_history` is the daily job over the `[history]` table of ibot.toml.
`history_gaps` reads the store and the checkpoint only. Coroutines and plain functions; nothing is printed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ibot.app.data import bar_store
from ibot.history.checkpoint import Checkpoint
from ibot.history.download import Downloader, DownloadOptions, DownloadProgress, DownloadStats
from ibot.history.gaps import ContractGaps, gap_report
from ibot.history.pacing import PacingRules, PacingScheduler, RequestKey
from ibot.history.plan import BarSpec, bar_spec, contract_windows, session_hours
from ibot.history.settings import HistorySettings, load_history_settings
from ibot.model import catalog
from ibot.model.errors import IbotError, ParameterError

__all__ = [
    "HistoryConnectError",
    "HistoryJob",
    "HistoryResult",
    "HistoryRun",
    "check_job",
    "download_history",
    "history_gaps",
    "update_jobs",
]

log = logging.getLogger("ibot.history")


class HistoryConnectError(IbotError, ConnectionError):
    """TWS / IB Gateway could not be reached for historical data."""


@dataclass(frozen=True, slots=True)
class HistoryJob:
    """One symbol at one bar size over [start, end] (trading days; end None = the server's today)."""

    symbol: str
    bar: str = "1 min"
    start: date | None = None
    end: date | None = None
    what: str = "TRADES"
    full: bool = False
    overlap_days: int = 10

    def spec(self) -> BarSpec:
        return bar_spec(self.bar, self.what)


@dataclass(frozen=True, slots=True)
class HistoryRun:
    """How the jobs run: pacing (scale > 1 only against the simulator), timeouts, where to store."""

    data_dir: Path | None = None
    pacing_scale: float = 1.0
    max_in_flight: int = 5
    request_timeout: float = 60.0
    max_retries: int = 5
    connect_timeout: float = 20.0


@dataclass(slots=True)
class HistoryResult:
    """Each job's statistics, and the address it used."""

    endpoint: str
    client_id: int
    jobs: list[tuple[HistoryJob, DownloadStats]] = field(default_factory=list)
    stopped: bool = False

    @property
    def complete(self) -> bool:
        return not self.stopped and all(s.complete for _, s in self.jobs)

    @property
    def permanent_failures(self) -> int:
        return sum(s.permanent_failures for _, s in self.jobs)

    def total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for _, s in self.jobs)

    def to_dict(self) -> dict[str, Any]:
        retries: dict[str, int] = {}
        for _, s in self.jobs:
            for k, n in s.retries.items():
                retries[k] = retries.get(k, 0) + n
        return {
            "endpoint": self.endpoint,
            "client_id": self.client_id,
            "requests_sent": self.total("requests_sent"),
            "fewest_needed": self.total("fewest_needed"),
            "retries": retries,
            "violations_seen": self.total("violations_seen"),
            "bars_stored": {k: v for _, s in self.jobs for k, v in s.bars_stored.items()},
            "wall_seconds": round(sum(s.wall_seconds for _, s in self.jobs), 3),
            "complete": self.complete,
            "stopped": self.stopped,
            "jobs": [{"symbol": j.symbol, "bar": j.bar, "what": j.what} | s.to_dict() for j, s in self.jobs],
        }


def check_job(job: HistoryJob) -> BarSpec:
    """Refuse a job that cannot run, in one sentence, before anything is created or contacted."""
    catalog.get_instrument(job.symbol)  # UnknownSymbolError names the known ones
    spec = job.spec()
    if job.start is None:
        raise ParameterError("--from is required: the first trading day to download, e.g. 2024-01-01")
    if job.end is not None and job.end < job.start:
        raise ParameterError(
            f"--to {job.end.isoformat()} is before --from {job.start.isoformat()}: the range is empty"
        )
    for what, day in (("--from", job.start), ("--to", job.end)):
        if day is not None and not catalog.MIN_YEAR <= day.year <= catalog.MAX_YEAR:
            raise ParameterError(
                f"{what} {day.isoformat()} is outside the years the catalog covers "
                f"({catalog.MIN_YEAR}..{catalog.MAX_YEAR})"
            )
    if job.overlap_days < 0:
        raise ParameterError(f"--overlap {job.overlap_days} must be 0 or more business days")
    return spec


def update_jobs(settings: HistorySettings | None = None, today: date | None = None) -> list[HistoryJob]:
    """The daily job's downloads: every configured symbol at every configured bar size, from `start` (or
    `lookback_days` before today) to the server's today."""
    s = settings or load_history_settings()
    first = s.start or ((today or date.today()) - timedelta(days=s.lookback_days))
    return [
        HistoryJob(symbol, bar, first, None, s.what, overlap_days=s.overlap_days)
        for symbol in s.symbols
        for bar in s.bars
    ]


async def download_history(
    jobs: list[HistoryJob],
    run: HistoryRun,
    *,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    stop: asyncio.Event | None = None,
    ib_overrides: dict[str, Any] | None = None,
) -> HistoryResult:
    """Run `jobs` over one historical-data connection (see the module doc); `stop` ends them gracefully."""
    from ibot.brokers.ib.config import ClientRole, load_ib_settings
    from ibot.brokers.ib.connection import IBConnectionError
    from ibot.brokers.ib.factory import ib_venue
    from ibot.brokers.ib.historical import IBHistorySource

    specs = [check_job(j) for j in jobs]
    rules = PacingRules(scale=run.pacing_scale, max_in_flight=run.max_in_flight)
    settings = load_ib_settings(overrides=ib_overrides)  # a bad [ib] table is refused before anything is made
    store = bar_store(run.data_dir, create=True)
    role = ClientRole.DATA_HISTORICAL
    venue = ib_venue(settings, role)
    result = HistoryResult(f"{settings.host}:{settings.port}", settings.client_id_for(role))
    stop = stop or asyncio.Event()
    try:
        try:
            await venue.connection.start(wait=True, timeout=run.connect_timeout)
        except IBConnectionError:
            raise HistoryConnectError(
                f"cannot reach TWS / IB Gateway at {settings.host}:{settings.port} for historical data "
                f"(client id {result.client_id}) within {run.connect_timeout:g} s "
                f"({venue.connection.attempts} attempts): is it running with the API socket on that port? "
                "Set [ib] host and port in ibot.toml or TWS_API_ADDR / TWS_API_PORT"
            ) from None
        source = IBHistorySource(venue.connection)
        scheduler = PacingScheduler(rules)
        with Checkpoint.in_data_dir(store.root) as checkpoint:
            _pace_across_runs(scheduler, checkpoint)
            for job, spec in zip(jobs, specs, strict=True):
                if stop.is_set():
                    result.stopped = True
                    break
                options = DownloadOptions(spec, run.request_timeout, run.max_retries, full=job.full)
                downloader = Downloader(
                    source, store, checkpoint, scheduler, options, on_progress=on_progress, stop=stop
                )
                now = await source.server_time()
                product = catalog.get_instrument(job.symbol)
                today = session_hours(product).session_date(now)
                assert job.start is not None
                end = min(job.end or today, today)
                windows = (
                    contract_windows(job.symbol, job.start, end, overlap_days=job.overlap_days, full=job.full)
                    if job.start <= end
                    else []
                )
                sent_before = scheduler.sent
                stats = await downloader.run(windows)
                stats.requests_sent = scheduler.sent - sent_before
                result.jobs.append((job, stats))
                result.stopped = result.stopped or stats.stopped
    finally:
        await venue.close()
    return result


def _pace_across_runs(scheduler: PacingScheduler, checkpoint: Checkpoint) -> None:
    """IB paces the session, not the process: count the requests earlier runs sent within the pacing windows
    (kept in the checkpoint with their wall time: of the answer once there is one), and keep this run's for
    the next one."""
    wall, mono = time.time(), scheduler.clock()
    rules = scheduler.rules
    span = max(rules.window, rules.identical, rules.same_contract)
    for at, identity, contract, weight in checkpoint.sent_since(wall - span):
        scheduler.remember(RequestKey(identity, contract, weight), mono - (wall - at))

    rows: dict[RequestKey, list[int]] = {}

    def keep(key: RequestKey) -> None:
        row = checkpoint.note_sent(time.time(), str(key.identity), str(key.contract), key.weight)
        rows.setdefault(key, []).append(row)

    def answered(key: RequestKey) -> None:
        if rows.get(key):
            checkpoint.note_answered(rows[key].pop(0), time.time())

    scheduler.on_sent = keep
    scheduler.on_answered = answered


def history_gaps(
    symbol: str, bar: str = "1 min", what: str = "TRADES", data_dir: Path | None = None, min_fill: float = 0.9
) -> list[ContractGaps]:
    """The gap report of `symbol` at `bar` from the store and the checkpoint (nothing is created)."""
    catalog.get_instrument(symbol)
    spec = bar_spec(bar, what)
    if not 0 < min_fill <= 1:
        raise ParameterError(f"--min-fill {min_fill} must be in (0, 1]")
    store = bar_store(data_dir, create=False)
    path = store.root / "history" / "progress.sqlite"
    if not path.exists():
        raise ParameterError(f"no history has been downloaded into {store.root} yet (no {path})")
    with Checkpoint(path) as checkpoint:
        return gap_report(store, checkpoint, symbol, spec, min_fill)

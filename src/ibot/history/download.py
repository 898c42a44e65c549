"""The download itself: plan each contract's missing chunks, send them paced, store the bars, checkpoint.

For every contract window (see `ibot.history.plan`): the units already done in the checkpoint are skipped, so
a run on complete data sends no historical request and a run after a kill fetches only what is missing.
Each chunk is one paced request (`PacingScheduler`); its bars are filtered to the chunk, the still-open bar
(one whose end is after the server's time when the request was sent) is dropped, the rest are merged into the
contract's Parquet series and only then is the chunk marked done (never a chunk still open at the server).
Failures are classified (`ibot.history.classify`): pacing, timeouts and a dropped link are tried again with
exponential backoff (bounded); permission and invalid-request failures are reported, not retried; IB's "no
data" marks the chunk done without bars. A stop request (Ctrl-C, SIGTERM) lets the requests in flight finish
and store, and sends no new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ibot.aio import unless_stopped
from ibot.data.bars import BarFrame
from ibot.data.store import BarStore
from ibot.history.checkpoint import Checkpoint
from ibot.history.classify import Failure, FailureClass, is_retried
from ibot.history.pacing import PacingScheduler, RequestKey
from ibot.history.plan import (
    BarSpec,
    Chunk,
    ContractWindow,
    bar_end,
    chunks,
    series_name,
    session_hours,
    units,
)
from ibot.history.sidecar import sidecar_last_trade, write_sidecar
from ibot.history.source import BarRequest, ContractInfo, HistorySource
from ibot.model.instruments import SecType
from ibot.model.market import Bar

__all__ = ["DownloadOptions", "DownloadProgress", "DownloadStats", "Downloader", "cross_check"]

log = logging.getLogger("ibot.history")


@dataclass(frozen=True, slots=True)
class DownloadOptions:
    """How one download runs; `backoff_seconds` is divided by the pacing scale like every pacing window."""

    spec: BarSpec
    request_timeout: float = 60.0
    max_retries: int = 5
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 120.0
    full: bool = False


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """Where a download is: requests answered and left, bars stored, the pacing wait now (seconds)."""

    contract: str
    requests_done: int
    requests_left: int
    bars_stored: int
    pacing_wait: float
    message: str = ""


@dataclass(slots=True)
class DownloadStats:
    """What a download did (its `--json` summary)."""

    requests_sent: int = 0
    fewest_needed: int = 0
    chunks_done: int = 0
    chunks_left: int = 0
    chunks_open: int = 0  # ranges reaching the server's now: their finished bars stored, not marked done
    no_data: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    bars_stored: dict[str, int] = field(default_factory=dict)
    contracts: list[dict[str, Any]] = field(default_factory=list)
    violations_seen: int = 0
    pacing_wait_seconds: float = 0.0
    wall_seconds: float = 0.0
    stopped: bool = False

    @property
    def permanent_failures(self) -> int:
        return sum(
            n for k, n in self.failures.items() if k in (FailureClass.PERMISSION, FailureClass.INVALID)
        )

    @property
    def complete(self) -> bool:
        return self.chunks_left == 0 and not self.failures and not self.stopped

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests_sent": self.requests_sent,
            "fewest_needed": self.fewest_needed,
            "chunks_done": self.chunks_done,
            "chunks_left": self.chunks_left,
            "chunks_open": self.chunks_open,
            "no_data": self.no_data,
            "retries": dict(self.retries),
            "failures": dict(self.failures),
            "problems": list(self.problems),
            "bars_stored": dict(self.bars_stored),
            "contracts": list(self.contracts),
            "violations_seen": self.violations_seen,
            "pacing_wait_seconds": round(self.pacing_wait_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "stopped": self.stopped,
            "complete": self.complete,
        }


@dataclass(slots=True)
class _Job:
    contract: ContractInfo
    series: str
    chunk: Chunk


@dataclass(slots=True)
class _Pending:
    """A chunk's bars waiting for the series' next write; `done`: mark the chunk done once written."""

    job: _Job
    bars: list[Bar]
    done: bool
    stored: bool = False


class Downloader:
    """Downloads contract windows from a `HistorySource` into a `BarStore`, resumable (a `Checkpoint`)."""

    def __init__(
        self,
        source: HistorySource,
        store: BarStore,
        checkpoint: Checkpoint,
        scheduler: PacingScheduler,
        options: DownloadOptions,
        *,
        on_progress: Callable[[DownloadProgress], None] | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.checkpoint = checkpoint
        self.scheduler = scheduler
        self.options = options
        self.on_progress = on_progress
        self.stop = stop or asyncio.Event()
        self.stats = DownloadStats()
        self._now = 0  # the latest server time seen, UTC ns
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, list[_Pending]] = {}
        self._left = 0
        self._done = 0
        self._series = ""
        scheduler.on_wait = lambda seconds: self._report(self._series, f"pacing: waiting {seconds:.1f} s")

    @property
    def spec(self) -> BarSpec:
        return self.options.spec

    async def run(self, windows: list[ContractWindow]) -> DownloadStats:
        began = time.monotonic()
        try:
            self._now = await self.source.server_time()
            jobs: list[_Job] = []
            for window in windows:
                if self.stop.is_set():
                    self.stats.stopped = True
                    break
                jobs += await self._plan(window)
            self.stats.fewest_needed = len(jobs)
            self._left = len(jobs)
            self._report(jobs[0].contract.instrument.key if jobs else "", "")
            queue: asyncio.Queue[_Job] = asyncio.Queue()
            for job in jobs:
                queue.put_nowait(job)
            workers = [
                asyncio.ensure_future(self._worker(queue)) for _ in range(min(len(jobs), self._in_flight()))
            ]
            if workers:
                await asyncio.gather(*workers)
            self.stats.chunks_left = len(jobs) - self.stats.chunks_done - self.stats.chunks_open
        finally:
            self.stats.requests_sent = self.scheduler.sent
            self.stats.pacing_wait_seconds = self.scheduler.waited
            self.stats.wall_seconds = time.monotonic() - began
            self.stats.stopped = self.stats.stopped or self.stop.is_set()
        return self.stats

    def _in_flight(self) -> int:
        return self.scheduler.rules.max_in_flight

    # --- planning ------------------------------------------------------------------------------------------
    async def _plan(self, window: ContractWindow) -> list[_Job]:
        """The missing chunks of one contract; IB is asked for the contract only when some are missing."""
        key = window.key
        series = series_name(key, self.spec)
        known_last = sidecar_last_trade(self.store.root, key)
        if known_last is not None and window.instrument.sec_type is SecType.FUT:
            window = _ending(window, known_last)
        pending = self._chunks(window, series)
        entry: dict[str, Any] = {"key": key, "series": series, "chunks": len(pending)}
        if not pending:
            self.stats.contracts.append(entry | self._window_dict(window))
            return []
        try:
            info = await self.source.contract(window.instrument)
        except LookupError as exc:  # unknown at IB (e.g. expired more than ~2 years ago): the others go on
            self.stats.failures[FailureClass.INVALID.value] += 1
            self.stats.problems.append(f"{key}: {exc}")
            self.stats.contracts.append(entry | self._window_dict(window) | {"chunks": 0, "error": str(exc)})
            log.warning("%s: %s", key, exc)
            return []
        disagreement = cross_check(window, info)
        if disagreement:
            self.stats.problems.append(disagreement)
        write_sidecar(self.store.root, key, info.to_dict())
        if info.last_trade_date is not None:
            window = _ending(window, info.last_trade_date)
        if self.options.full:
            window = await self._from_head(window, info)
        pending = self._chunks(window, series)
        entry.update(chunks=len(pending), con_id=info.instrument.con_id, **self._window_dict(window))
        self.stats.contracts.append(entry)
        return [_Job(info, series, c) for c in pending]

    def _chunks(self, window: ContractWindow, series: str) -> list[Chunk]:
        found = units(window, self.spec, until_ns=self._now)
        if found:
            self.checkpoint.note_window(series, found[0].start_ns, found[-1].end_ns, self._now)
        return chunks(found, self.spec, lambda a, b: self.checkpoint.covers(series, a, b))

    async def _from_head(self, window: ContractWindow, info: ContractInfo) -> ContractWindow:
        """`--full`: start the window at IB's first data for the contract, when IB says it."""
        i = info.instrument
        key = RequestKey.of(i.con_id, i.exchange, self.spec.what, "head")
        await self.scheduler.acquire(key)
        try:
            head = await self.source.head_time(info, self.spec.what)
        finally:
            self.scheduler.release(key)
        if head is None:
            return window
        first = session_hours(window.instrument).session_date(head)
        return replace(window, first_day=max(window.first_day, first))

    @staticmethod
    def _window_dict(window: ContractWindow) -> dict[str, Any]:
        return {"first_day": window.first_day.isoformat(), "last_day": window.last_day.isoformat()}

    # --- requests ------------------------------------------------------------------------------------------
    async def _worker(self, queue: asyncio.Queue[_Job]) -> None:
        while not self.stop.is_set():
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await self._fetch(job)

    async def _fetch(self, job: _Job) -> None:
        """One chunk: request it (again, after a retryable failure), store its bars, checkpoint it."""
        o = self.options
        chunk = job.chunk
        attempt = 0
        while True:
            failure: Failure | None = None
            if chunk.end_ns > self._now:  # a range reaching now: the server's time decides the open bar
                try:
                    self._now = max(self._now, await self.source.server_time())
                except (ConnectionError, TimeoutError) as exc:
                    failure = Failure(FailureClass.DISCONNECTED, 0, f"no server time: {exc}")
            if failure is None:
                failure = await self._request(job)
                if failure is None:
                    return self._finish(job)
            if failure.kind is FailureClass.NO_DATA:
                return self._finish(job)
            if is_retried(failure.kind) and attempt < o.max_retries and not self.stop.is_set():
                attempt += 1
                self.stats.retries[failure.kind.value] += 1
                await self._back_off(job, failure, attempt)
                continue
            if failure.kind is FailureClass.STOPPED:
                return None
            self.stats.failures[failure.kind.value] += 1
            what = f"{job.series} {_span(chunk)}"
            self.stats.problems.append(f"{what}: {failure.describe()}")
            log.warning("%s: %s", what, failure.describe())
            return self._finish(job)

    async def _back_off(self, job: _Job, failure: Failure, attempt: int) -> None:
        """Wait before trying `job` again: exponential, scaled like the pacing windows; after a dropped link,
        until the adapter has reconnected (at most the request timeout) too."""
        o = self.options
        delay = (
            min(o.backoff_max_seconds, o.backoff_seconds * 2 ** (attempt - 1)) / self.scheduler.rules.scale
        )
        log.info(
            "%s %s: %s; trying again in %.2f s", job.series, job.chunk.duration, failure.describe(), delay
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), delay)
        if failure.kind is FailureClass.DISCONNECTED and not self.stop.is_set():
            await unless_stopped(self.source.ready(o.request_timeout), self.stop)

    async def _request(self, job: _Job) -> Failure | None:
        """Send the chunk's request once: None when its bars are stored, else why not (STOPPED: a stop came
        while it waited for pacing, so it was never sent)."""
        info, chunk = job.contract, job.chunk
        asked_at = self._now
        end = None if chunk.is_open(asked_at) else chunk.end_ns
        request = BarRequest(info, end, chunk.duration, self.spec.ib_bar, self.spec.what)
        key = RequestKey.of(
            info.instrument.con_id, info.instrument.exchange, self.spec.what,
            end, chunk.duration, self.spec.ib_bar, "rth0",
        )  # fmt: skip
        self._series = job.series
        self._report(job.series, "")
        admitted, _ = await unless_stopped(self.scheduler.acquire(key), self.stop)
        if not admitted:  # not in flight, so not sent
            return Failure(FailureClass.STOPPED, 0, "stopped before it was sent")
        try:
            answer = await self.source.bars(request, self.options.request_timeout)
        finally:
            self.scheduler.release(key)
        failure = answer.failure
        if failure is None and not answer.bars:
            failure = Failure(FailureClass.EMPTY, 0, "IB answered without bars and without 'no data'")
        if failure is None:
            await self._store(job, answer.bars, asked_at)
            return None
        if failure.kind is FailureClass.PACING and failure.code == 162:
            self.stats.violations_seen += 1
        if failure.kind is FailureClass.NO_DATA and not chunk.is_open(asked_at):
            self.checkpoint.mark_done(job.series, chunk.start_ns, chunk.end_ns, "no_data", 0)
            self.stats.no_data += 1
            self.stats.chunks_done += 1
        return failure

    async def _store(self, job: _Job, bars: list[Bar], asked_at: int) -> None:
        chunk, inst = job.chunk, job.contract.instrument
        ends = [bar_end(b.ts, self.spec, inst) for b in bars]
        kept = [b for b, e in zip(bars, ends, strict=True) if b.ts < chunk.end_ns and e > chunk.start_ns]
        final = [b for b in kept if bar_end(b.ts, self.spec, inst) <= asked_at]  # never the open bar
        final.sort(key=lambda b: b.ts)
        unique = [b for i, b in enumerate(final) if i == 0 or b.ts != final[i - 1].ts]
        done = not chunk.is_open(asked_at)
        entry = _Pending(job, unique, done)
        target = self.spec.store_key(inst.key)
        pending = self._pending.setdefault(target, [])
        pending.append(entry)
        lock = self._locks.setdefault(target, asyncio.Lock())
        async with lock:  # group commit: one write (and fsync) for every chunk answered meanwhile
            if entry.stored:
                return
            batch, pending[:] = list(pending), []
            rows = sorted({b.ts: b for e in batch for b in e.bars}.values())
            if rows:
                frame = BarFrame.from_bars(rows)
                await asyncio.to_thread(self.store.write, target, self.spec.store_name, frame)
            marks = [
                (e.job.series, e.job.chunk.start_ns, e.job.chunk.end_ns, len(e.bars)) for e in batch if e.done
            ]
            self.checkpoint.mark_done_many(marks, "bars")  # only after the bars are on disk
            for e in batch:
                e.stored = True
                key = e.job.contract.instrument.key
                self.stats.bars_stored[key] = self.stats.bars_stored.get(key, 0) + len(e.bars)
                if e.done:
                    self.stats.chunks_done += 1
                else:
                    self.stats.chunks_open += 1

    def _finish(self, job: _Job) -> None:
        self._left -= 1
        self._done += 1
        self._report(job.series, "")

    def _report(self, contract: str, message: str) -> None:
        if self.on_progress is None:
            return
        self.on_progress(
            DownloadProgress(
                contract=contract,
                requests_done=self._done,
                requests_left=self._left,
                bars_stored=sum(self.stats.bars_stored.values()),
                pacing_wait=self.scheduler.wait_left(),
                message=message,
            )
        )


def cross_check(window: ContractWindow, info: ContractInfo) -> str | None:
    """IB's last trade date against the catalog's: a disagreement is logged (WARNING, both dates) and
    returned as a sentence; IB's date is the one the window ends on."""
    ours, ib = window.last_trade, info.last_trade_date
    if ours is None or ib is None or ours == ib:
        return None
    text = (
        f"{window.key}: IB's last trade date {ib.isoformat()} differs from the catalog's {ours.isoformat()}; "
        "IB's is used"
    )
    log.warning("%s", text)
    return text


def _ending(window: ContractWindow, last_trade: date) -> ContractWindow:
    """`window` ending on the contract's last trade date (IB's), never past the range it was clipped to."""
    return replace(window, last_trade=last_trade, last_day=min(window.until, last_trade))


def _span(chunk: Chunk) -> str:
    from ibot.data.bars import format_time

    return f"{format_time(chunk.start_ns)} .. {format_time(chunk.end_ns)}"

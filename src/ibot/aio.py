"""Small asyncio helpers shared by the simulator and the adapters (no imports of ours)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["ForcedStop", "StopSignals", "cancel_and_wait", "run_stoppable", "unless_stopped"]

# SIGINT/SIGTERM that arrived after a long-running command began but before its StopSignals was installed
# (while it opened its records, say): `run_stoppable` keeps them here and StopSignals acts on them at once.
_EARLY_SIGNALS: list[signal.Signals] = []

T = TypeVar("T")

log = logging.getLogger("ibot")


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any] | None], *, retry: float = 0.1) -> None:
    """Cancel `tasks` and wait until every one has ended.

    Python 3.11's `asyncio.wait_for` can swallow a cancellation that arrives just as the awaited thing
    completes (gh-86296), so a task stopped with one `cancel()` may go on running. The cancel is repeated
    every `retry` seconds until each task is done. A task that ended with an error is logged, not raised.
    """
    every = [t for t in tasks if t is not None]
    pending = every
    while pending:
        for t in pending:
            t.cancel()
        await asyncio.wait(pending, timeout=retry)
        pending = [t for t in pending if not t.done()]
    for t in every:
        if not t.cancelled() and t.exception() is not None:
            log.error("task %r failed", t, exc_info=t.exception())


class ForcedStop(Exception):
    """A second SIGINT/SIGTERM arrived while a graceful stop was running: the command ends at once."""


class StopSignals:
    """SIGINT and SIGTERM ask a long-running command to stop gracefully; a second one forces the exit.

    Use inside the command's coroutine: ``with StopSignals() as stop: ...`` then poll ``stop.requested`` or
    await ``stop.event``. The first signal sets the event and calls ``on_first`` (e.g. to say "stopping...");
    the second cancels the task that entered the block, which then raises `ForcedStop` from `__exit__`
    instead of CancelledError. Supervisors (supervisord, systemd) send SIGTERM; a terminal sends SIGINT.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_first: Callable[[str], None] | None = None) -> None:
        self.on_first = on_first
        self.received: list[str] = []
        self.event = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None
        self._installed: list[signal.Signals] = []
        self._forced = False

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @property
    def name(self) -> str:
        """The first signal's name ("SIGINT"), or "" when none came."""
        return self.received[0] if self.received else ""

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in self.SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / not Unix
                continue
            self._installed.append(sig)
        early, _EARLY_SIGNALS[:] = list(_EARLY_SIGNALS), []
        for sig in early:
            self._on_signal(sig)
        return self

    def _on_signal(self, sig: signal.Signals) -> None:
        self.received.append(sig.name)
        if not self.event.is_set():
            self.event.set()
            if self.on_first is not None:
                self.on_first(sig.name)
            return
        self._forced = True
        if self._task is not None and not self._task.done():
            self._task.cancel(f"forced by a second {sig.name}")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()
        if self._forced and (kind is None or issubclass(kind, asyncio.CancelledError)):
            if self._task is not None:
                self._task.uncancel()
            raise ForcedStop(f"forced by a second {self.received[-1]}")


def run_stoppable(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` for a long-running command whose coroutine stops on `StopSignals`: a SIGINT or
    SIGTERM that comes before StopSignals is installed is kept and acted on then (a graceful stop), instead
    of asyncio's default (cancel the task wherever it is) or Python's (KeyboardInterrupt)."""

    def keep(signum: int, _frame: object) -> None:
        _EARLY_SIGNALS.append(signal.Signals(signum))

    previous = {sig: signal.signal(sig, keep) for sig in StopSignals.SIGNALS}
    try:
        return asyncio.run(main)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _EARLY_SIGNALS.clear()


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> tuple[bool, T | None]:
    """Await `work` unless `stop` is set first (then `work` is cancelled): (finished, its result). If the
    caller is cancelled meanwhile, `work` is cancelled too (never left running on its own)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        await cancel_and_wait([task])
        raise
    finally:
        await cancel_and_wait([waiter])
    if task.done():
        return True, task.result()
    await cancel_and_wait([task])
    return False, None

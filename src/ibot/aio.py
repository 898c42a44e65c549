"""Small asyncio helpers shared by the simulator and the adapters (no imports of ours)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]

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

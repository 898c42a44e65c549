"""The simulator on a background thread, for blocking clients (IB's own `ibapi`, scripts, notebooks)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ibot.sim.server import SimServer

__all__ = ["serve_in_thread"]


@contextmanager
def serve_in_thread(server: SimServer, timeout: float = 10.0) -> Iterator[SimServer]:
    """Start `server` on its own event loop in a daemon thread, yield it (its `port` is bound), and stop it
    and close the loop on exit; `timeout` bounds the stop (seconds)."""
    loop = asyncio.new_event_loop()
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, name="ibot-sim", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()

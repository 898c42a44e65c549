"""`ibot sim` from a shell: its options checked before anything binds, its start-up line, and its stop.

What it promises:
- Bad input (an unknown symbol, a speed that is not positive, a port outside 0..65535, a start that is not an
  ISO 8601 date-time, an address it cannot listen on, a port in use) is one `SimOptionError` sentence naming
  the option and what was wrong; the CLI prints it and exits 2.
- The start-up line says the address, the market time and whether each listed market is open or closed and
  until when (`SimServer.market_status`).
- SIGINT and SIGTERM stop it gracefully: every client's connection is closed, then one final line (market
  time, clients served, orders and fills) and exit status 0. A second signal while it stops exits at once
  (status 130).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from ibot.model import catalog
from ibot.model.errors import IbotError
from ibot.model.market import Bar
from ibot.sim.pacing import SimLimits
from ibot.sim.script import ScheduledFault, schedule
from ibot.sim.server import SimServer

log = logging.getLogger("ibot.sim")

_FIRST_START = datetime(2000, 1, 1, tzinfo=UTC)  # the synthetic market's price anchors begin here
_LAST_START = datetime(2100, 1, 1, tzinfo=UTC)
FORCED_EXIT = 130


class SimOptionError(IbotError, ValueError):
    """An `ibot sim` option the simulator cannot run with; the message names the option."""


def parse_symbols(values: Sequence[str]) -> list[str]:
    """`--symbols MES,MNQ` and `-s MES -s MNQ` (or both): catalog symbols, upper case, in order, once each."""
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().upper()
            if name and name not in names:
                names.append(name)
    if not names:
        raise SimOptionError("--symbols: no symbol given; name catalog symbols, e.g. --symbols MES,MNQ")
    known = catalog.symbols()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SimOptionError(
            f"--symbols: unknown symbol{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"the catalog has {', '.join(known)}"
        )
    return names


def parse_start(text: str) -> datetime:
    """`--start`: an ISO 8601 date or date-time, with or without a zone (none = UTC), from 2000 to 2099."""
    try:
        start = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SimOptionError(
            f"--start {text!r} is not an ISO 8601 date-time; write e.g. 2026-12-07T14:30 (UTC) or "
            "2026-12-07T08:30-06:00"
        ) from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if not _FIRST_START <= start < _LAST_START:
        raise SimOptionError(f"--start {text!r} is outside the simulated years 2000 to 2099")
    return start


def check_numbers(port: int, speed: float) -> None:
    """`--port` in 0..65535 (0: any free port); `--speed` above 0."""
    if not 0 <= port <= 65535:
        raise SimOptionError(f"--port {port} is not a TCP port; use 1 to 65535 (or 0 for any free port)")
    if not speed > 0:
        raise SimOptionError(
            f"--speed {speed:g} must be above 0 (1 = real time, 60 = a market minute a second); "
            "--max-speed runs as fast as the clients read"
        )


def limits_for(no_limits: bool, pacing_scale: float) -> SimLimits:
    """`--no-limits` and `--pacing-scale K` (K > 0: every historical pacing window divided by K)."""
    if not (isinstance(pacing_scale, (int, float)) and 0 < pacing_scale < float("inf")):
        raise SimOptionError(
            f"--pacing-scale {pacing_scale:g} must be a number above 0 "
            "(1 = IB's limits, 10 = ten times faster)"
        )
    return SimLimits.off() if no_limits else SimLimits(pacing_scale=float(pacing_scale))


def build(
    host: str,
    port: int,
    symbols: Sequence[str],
    speed: float | None,
    seed: int,
    limits: SimLimits | None,
    start: datetime | None,
    replay: Mapping[str, Sequence[Bar]] | None,
) -> SimServer:
    """A server from checked options (`parse_symbols`, `parse_start`, `check_numbers` first)."""
    return SimServer(
        host=host,
        port=port,
        symbols=symbols,
        speed=speed,
        seed=seed,
        limits=limits,
        start=start,
        replay=replay,
    )


def serve(
    server: SimServer, script: Sequence[ScheduledFault] = (), say: Callable[[str], None] | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully and `say` the final line (default: stdout)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    summary = asyncio.run(_serve(server, script))
    (say or _print)(f"ibot sim stopped: {summary}")


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _serve(server: SimServer, script: Sequence[ScheduledFault]) -> str:
    try:
        await server.start()
    except OSError as exc:  # a port in use, an address not on this machine, a name that does not resolve
        reason = str(exc.strerror or exc).rsplit("): ", 1)[-1]  # asyncio prefixes the address it tried
        raise SimOptionError(
            f"--host {server.host} --port {server.port}: cannot listen there ({reason.rstrip('.')})"
        ) from None
    schedule(server.faults, script)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(name: str) -> None:
        received.append(name)
        if len(received) > 1:  # the user insists: no more waiting on clients
            sys.stderr.write(f"ibot sim: {name} again; exiting now\n")
            sys.stderr.flush()
            os._exit(FORCED_EXIT)
        log.info("%s: stopping (closing every client's connection; %s again to force)", name, name)
        stop.set()

    handled = (signal.SIGINT, signal.SIGTERM)
    for sig in handled:
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        await stop.wait()
    finally:
        try:
            await server.stop()
        finally:
            for sig in handled:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
    return server.summary()

"""What every smoke script shares: the simulator on a background event loop and the PASS/FAIL tally.

The scripts run in a client's own venv with this checkout's src/ on PYTHONPATH (see run.sh).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from ibot.sim import versions
from ibot.sim.background import serve_in_thread
from ibot.sim.server import SimServer

START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)  # a Wednesday, 09:00 in Chicago: Globex is open
WAIT = 10.0


def expected_server_version(client_max: int) -> int:
    """What the simulator must answer a client offering ..client_max: the highest version both speak."""
    return min(client_max, versions.MAX_CLIENT_VERSION)


def new_server() -> SimServer:
    return SimServer(port=0, symbols=["MES"], speed=600.0, start=START)


@contextmanager
def threaded_server() -> Iterator[SimServer]:
    """A started simulator whose event loop runs in a daemon thread (for blocking clients)."""
    with serve_in_thread(new_server(), WAIT) as server:
        yield server


class Checks:
    """Runs named checks, printing PASS / FAIL (with the reason) for each, then a RESULT line for run.sh."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.server_version: Any = "-"

    def ok(self, name: str) -> None:
        self.passed += 1
        print(f"PASS {name}", flush=True)

    def fail(self, name: str, why: str) -> None:
        self.failed += 1
        print(f"FAIL {name}: {why}", flush=True)

    def expect(self, name: str, cond: bool, why: Any = "") -> bool:
        if cond:
            self.ok(name)
        else:
            self.fail(name, str(why))
        return cond

    def run(self, name: str, check: Callable[[], Any]) -> None:
        """A check that raises on failure (AssertionError's message says what was wrong)."""
        try:
            check()
        except Exception as e:
            self.fail(name, f"{type(e).__name__}: {e}".strip())
            if not isinstance(e, AssertionError):
                traceback.print_exc()
        else:
            self.ok(name)

    def result(self) -> None:
        print(f"RESULT {self.server_version} {self.passed} {self.failed}", flush=True)

    def main(self, checks: Callable[[Checks], None]) -> None:
        """Run a script's `checks(self)`, a crash counted as one failed check, then print the RESULT line."""
        try:
            checks(self)
        except Exception as e:
            self.fail("session", f"{type(e).__name__}: {e}")
        self.result()

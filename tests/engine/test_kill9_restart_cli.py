"""kill -9 of `ibot run` trading against a separate `ibot sim` process, then a restart against the same,
still running simulator (issue 13, finding 3), as a user meets it: both `ibot` commands in subprocesses.

The restart compares the position ALL recorded fills add up to with the simulator's: they agree, so nothing
is logged as an error (before: "position MESH5 is 0 here but 1 at the broker; adopting the broker's" while the
records held +1), and after the restarted run the records' position equals the one the simulator holds
(asked with an ib_async client of the tests' client-id range)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ib_async import IB

from ibot.oms.records import OrderRecords

IBOT = Path(sys.executable).with_name("ibot")
# A Wednesday at the RTH open; 600 market seconds per wall second: sma_reversal on 1-min bars trades within
# seconds and, being a reversal strategy, holds a position from its first fill on.
SIM = ("--symbols", "MES", "--speed", "600", "--start", "2025-03-05T14:30")
STRATEGY = ("--strategy", "sma_reversal", "--bar", "1min", "--symbol", "MES")
TEST_CLIENT_ID = 9013


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, ok: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[int]:
    """`ibot sim` in its own process on a free port; stopped with SIGTERM (exit 0) after the test."""
    port = free_port()
    proc = subprocess.Popen(
        [str(IBOT), "sim", "--port", str(port), *SIM],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("the simulator to listen", lambda: listening(port) or proc.poll() is not None, 15)
        assert proc.poll() is None, f"ibot sim exited: {proc.stderr.read() if proc.stderr else ''}"
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def sim_positions(port: int) -> dict[str, int]:
    """The positions the simulator holds, asked as any IB API client asks."""
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=TEST_CLIENT_ID, timeout=10)
    try:
        return {p.contract.localSymbol: int(p.position) for p in ib.reqPositions() if p.position}
    finally:
        ib.disconnect()


def recorded_positions(db: str) -> dict[str, int]:
    records = OrderRecords(db)
    try:
        return {k: q for k, q in records.positions().items() if q}
    finally:
        records.close()


def recorded_fills(db: str) -> int:
    records = OrderRecords(db)
    try:
        return len(records.executions())
    except Exception:  # not migrated yet
        return 0
    finally:
        records.close()


def test_kill9_then_restart_against_the_same_simulator_agrees_without_an_error(
    tmp_path: Path, simulator: int
) -> None:
    db = f"sqlite:///{tmp_path / 'orders.sqlite'}"
    env = {**os.environ, "TWS_API_ADDR": "127.0.0.1", "TWS_API_PORT": str(simulator)}
    trader = subprocess.Popen(
        [str(IBOT), "run", *STRATEGY, "--db", db],  # until a signal
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for("two recorded fills", lambda: recorded_fills(db) >= 2 or trader.poll() is not None, 25)
        assert trader.poll() is None, f"ibot run exited {trader.returncode} before trading"
    finally:
        trader.send_signal(signal.SIGKILL)
        trader.wait(10)
    assert trader.returncode == -signal.SIGKILL
    held = recorded_positions(db)
    assert held, "a reversal strategy holds a position after its first fill"
    log = tmp_path / "out" / "live" / "ibot_live.log"
    before = log.read_text().count("\n")

    restart = subprocess.run(
        [str(IBOT), "run", *STRATEGY, "--db", db, "--duration", "600", "--no-flatten"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert restart.returncode == 0, restart.stderr[-3000:]
    assert "ERROR" not in restart.stderr and "Traceback" not in restart.stderr, restart.stderr[-3000:]
    lines = log.read_text().splitlines()[before:]
    errors = [line for line in lines if " ERROR " in line]
    assert errors == []
    reconciled = [line for line in lines if "session reconciled with IB" in line]
    assert reconciled and "position" not in reconciled[0], reconciled
    # the recorded position (the killed run's fills, any fill it missed adopted now) agrees with the broker's
    assert any("agrees with the broker" in line for line in lines), lines[:40]
    assert not any("at the broker" in line for line in lines)
    # the records (every fill of both runs) and the simulator hold the same position
    assert recorded_positions(db) == sim_positions(simulator)

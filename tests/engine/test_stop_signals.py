"""SIGINT and SIGTERM stop `ibot run` gracefully (issue 13, finding 2), met as a user meets them: `ibot sim`
in its own process, `ibot run` against it in another, a signal once the run holds a position. The run must
cancel, flatten, print its final state and exit 0, and the simulator (asked by a separate ib_async client)
must hold no position afterwards. A second signal forces the exit (130) and the records stay consistent."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ib_async import IB

IBOT = str(Path(sys.executable).with_name("ibot"))
SIM_START = "2025-03-05T14:30:00+00:00"  # a Wednesday at the RTH open: CME Globex trades


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, f"ibot sim exited early: {proc.communicate()[1][-2000:]}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"ibot sim did not listen on {port}")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`ibot sim` in its own process: a seeded MES market from a Wednesday open at 600x."""
    port = _free_port()
    log = (tmp_path / "sim.log").open("w")
    proc = subprocess.Popen(
        [IBOT, "sim", "--port", str(port), "--symbols", "MES", "--speed", "600", "--start", SIM_START],
        stdout=log,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        _wait_port(port, proc)
        yield port, proc
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _start_run(port: int, tmp_path: Path, db: str) -> subprocess.Popen[str]:
    env = dict(os.environ, TWS_API_ADDR="127.0.0.1", TWS_API_PORT=str(port), TWS_API_CLIENTID="1000")
    env["COLUMNS"] = "200"
    return subprocess.Popen(
        [IBOT, "run", "--strategy", "sma_reversal", "--param", "sma_period=2", "--symbol", "MES",
         "--bar", "5s", "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=env,
    )  # fmt: skip


def _wait_for_position(proc: subprocess.Popen[str], timeout: float = 60.0) -> list[str]:
    """Read the run's status lines until one shows a position."""
    assert proc.stdout is not None
    seen: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if re.search(r"pos MES\w* [+-]\d", line):
            return seen
    raise AssertionError("the run never held a position:\n" + "".join(seen[-30:]))


def _positions_at_sim(port: int) -> dict[str, float]:
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=9042, timeout=15)
    try:
        return {p.contract.localSymbol: p.position for p in ib.reqPositions() if p.position}
    finally:
        ib.disconnect()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_flat_with_its_final_state_and_exit_0(
    sig: signal.Signals, sim: tuple[int, subprocess.Popen[str]], tmp_path: Path
) -> None:
    sim_port = sim[0]
    db = f"sqlite:///{tmp_path / 'records.sqlite'}"
    proc = _start_run(sim_port, tmp_path, db)
    try:
        _wait_for_position(proc)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out
    assert f"{sig.name}: stopping" in out
    final = [line for line in out.splitlines() if line.startswith("final state")]
    assert final, out[-3000:]
    assert f"stopped by {sig.name}" in final[-1]
    assert "position flat, open orders 0" in final[-1], final[-1]
    assert _positions_at_sim(sim_port) == {}, "the simulator still holds a position"
    # the records agree: every order final, the fills sum to flat
    orders = subprocess.run(
        [IBOT, "orders", "--db", db, "--json"], capture_output=True, text=True, check=True
    )
    assert '"positions": {}' in orders.stdout


def test_a_second_sigint_forces_the_exit_and_the_records_stay_consistent(
    sim: tuple[int, subprocess.Popen[str]], tmp_path: Path
) -> None:
    """The broker hangs (the simulator process is stopped with SIGSTOP) while the run holds a position: the
    graceful stop waits on cancels and the flatten; a second SIGINT ends it at once, exit 130."""
    port, sim_proc = sim
    db = f"sqlite:///{tmp_path / 'records.sqlite'}"
    proc = _start_run(port, tmp_path, db)
    assert proc.stdout is not None
    try:
        _wait_for_position(proc)
        sim_proc.send_signal(signal.SIGSTOP)
        proc.send_signal(signal.SIGINT)
        seen = []
        for line in proc.stdout:  # the first signal is acknowledged before the second is sent
            seen.append(line)
            if "SIGINT: stopping" in line:
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        out = "".join(seen) + out
    finally:
        sim_proc.send_signal(signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-3000:]
    assert "Traceback" not in out
    assert "forced by a second SIGINT" in out
    listing = subprocess.run(
        [IBOT, "orders", "--db", db, "--json"], capture_output=True, text=True, check=False
    )
    assert listing.returncode == 0, listing.stderr
    # every order's filled quantity is backed by its fill rows: nothing half-written on the way out
    import json

    summary = json.loads(listing.stdout)
    assert summary["orders"], "the run placed orders before the signal"
    for order in summary["orders"]:
        filled = sum(f["qty"] for f in summary["fills"] if f["client_order_id"] == order["client_order_id"])
        assert filled == order["filled"], order


def test_sigint_on_a_lockstep_run_flattens_against_the_next_replayed_bar(tmp_path: Path) -> None:
    """In lockstep the simulator's clock waits for the strategy's acknowledgements: the stop keeps
    acknowledging bars until its cancels and flatten are matched, so the run ends flat, not stuck."""
    db = f"sqlite:///{tmp_path / 'records.sqlite'}"
    proc = subprocess.Popen(
        [IBOT, "run", "--sim", "--lockstep", "--strategy", "sma_reversal", "--param", "sma_period=2",
         "--bar", "1min", "--duration", "604800", "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, COLUMNS="200"),
    )  # fmt: skip
    try:
        _wait_for_position(proc)  # sma_reversal(2) holds a position from its first cross on
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    final = [line for line in out.splitlines() if line.startswith("final state")]
    assert final and "stopped by SIGINT" in final[-1], out[-3000:]
    assert "position flat, open orders 0" in final[-1], final[-1]

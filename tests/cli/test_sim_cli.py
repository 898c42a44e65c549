"""`ibot sim` run as a user runs it: a subprocess, bad input, --start, SIGINT and SIGTERM (issue 13,
findings 2, 5, 6 and 10).

Bad input is one sentence naming the option, exit status 2, no traceback. `--start` moves the market clock
(read back by an ib_async client). Both signals close the clients' connections, print one final line with
the market time, the clients served and the orders and fills, and exit 0.
"""

from __future__ import annotations

import asyncio
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ib_async import IB, Future, MarketOrder

IBOT = str(Path(sys.executable).parent / "ibot")
WAIT = 20.0
MONDAY = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)  # 08:30 US/Central: Globex open


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IBOT, "sim", *args], check=False, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--symbols", "XYZ"], "--symbols"),
        (["-s", "MES", "-s", "NOPE"], "--symbols"),
        (["--speed", "0"], "--speed"),
        (["--speed", "-5"], "--speed"),
        (["--port", "99999"], "--port 99999"),
        (["--host", "10.255.255.1"], "--host 10.255.255.1"),
        (["--host", "no-such-host.invalid"], "--host no-such-host.invalid"),
        (["--start", "nonsense"], "--start 'nonsense'"),
        (["--start", "2026-13-45T25:00"], "--start"),
        (["--start", "1900-01-01"], "--start"),
        (["--fault", "x:drop"], "fault"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(args: list[str], names: str) -> None:
    done = run_sim("--port", str(free_port()), *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert names in lines[0]


def test_a_busy_port_is_one_sentence_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_sim("--port", str(port))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert f"--port {port}" in line and "address already in use" in line.lower()


class SimProcess:
    """A running `ibot sim`: its stderr lines as they come, its start-up line and its port."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [IBOT, "sim", "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stderr is not None
        threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True).start()
        self.startup = self.wait_for("TWS simulator listening on")
        found = re.search(r"listening on [\d.]+:(\d+)", self.startup)
        assert found is not None
        self.port = int(found.group(1))

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = WAIT) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} from ibot sim") from None
            if text in line:
                return line

    def stop(self, sig: signal.Signals) -> tuple[int, str]:
        self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=WAIT)
        return self.proc.returncode, out


@contextmanager
def sim_process(*args: str) -> Iterator[SimProcess]:
    sim = SimProcess(*args)
    try:
        yield sim
    finally:
        if sim.proc.poll() is None:
            sim.proc.kill()
            sim.proc.wait()


def test_start_moves_the_market_clock_read_by_an_ib_async_client() -> None:
    with sim_process("--start", "2026-12-07T14:30", "--speed", "1") as sim:
        assert "market time 2026-12-07 14:30:00 UTC (Mon): MES, MNQ open until 2026-12-07 22:00:00 UTC" in (
            sim.startup
        )

        async def client() -> tuple[datetime, datetime]:
            ib = IB()
            await ib.connectAsync("127.0.0.1", sim.port, 9101, timeout=WAIT)
            now = await ib.reqCurrentTimeAsync()
            [mes] = await ib.qualifyContractsAsync(Future("MES", "202612", "CME"))
            bars = await ib.reqHistoricalDataAsync(mes, "", "300 S", "1 min", "TRADES", False, formatDate=2)
            ib.disconnect()
            return now, bars[-1].date

        now, last_bar = asyncio.run(client())
        assert MONDAY <= now < datetime(2026, 12, 7, 14, 31, tzinfo=UTC)
        assert datetime(2026, 12, 7, 14, 25, tzinfo=UTC) <= last_bar <= now
        sim.stop(signal.SIGTERM)


def test_start_with_a_zone_and_a_saturday_says_closed_until_the_open() -> None:
    with sim_process("--start", "2026-12-05T06:00-06:00", "-s", "MES", "-s", "MGC,SPY") as sim:
        assert "market time 2026-12-05 12:00:00 UTC (Sat)" in sim.startup
        assert "symbols MES,MGC,SPY" in sim.startup
        assert "MES, MGC closed until 2026-12-06 23:00:00 UTC; SPY closed until 2026-12-07 09:00:00 UTC" in (
            sim.startup
        )
        sim.stop(signal.SIGINT)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_it_gracefully_with_a_final_line(sig: signal.Signals) -> None:
    with sim_process("--start", "2026-12-07T14:30", "--speed", "1") as sim:
        ib = IB()

        async def trade() -> None:
            await ib.connectAsync("127.0.0.1", sim.port, 9102, timeout=WAIT)
            [mes] = await ib.qualifyContractsAsync(Future("MES", "202612", "CME"))
            t = ib.placeOrder(mes, MarketOrder("BUY", 1))
            while not t.isDone():
                await asyncio.sleep(0.02)
            assert t.orderStatus.status == "Filled"

        async def main() -> tuple[int, str, bool]:
            await trade()
            code, out = await asyncio.to_thread(sim.stop, sig)
            await asyncio.sleep(0.2)
            return code, out, ib.isConnected()

        code, out, connected = asyncio.run(main())
    assert code == 0
    assert not connected  # the simulator closed the client's connection
    lines = out.strip().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"ibot sim stopped: market time 2026-12-07 14:3\d:\d\d UTC \(Mon\); 1 client served; 1 order, 1 fill",
        lines[0],
    ), lines[0]

"""`ibot run` across MES's roll time against a separate `ibot sim` process, as a user meets it: the reversal
strategy holds a position in MESH5 when 09:00 Chicago on 2025-03-17 comes; the run rolls it (one combo, or
two legs when the simulator is started with ``--fault 0:refuse_combos``) and ends holding June only; the
records show one finished roll and agree with the simulator's positions."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from test_kill9_restart_cli import IBOT, free_port, listening, recorded_positions, sim_positions, wait_for

from ibot.oms.records import OrderRecords
from ibot.oms.rolls import RollBook, RollState

# 07:30 Chicago on MES's roll date, 600 market seconds per wall second: the roll comes 9 s into the run
SIM = ("--symbols", "MES", "--speed", "600", "--start", "2025-03-17T12:30")
RUN = (
    "--strategy",
    "sma_reversal",
    "--bar",
    "1min",
    "--symbol",
    "MESH5",
    "--duration",
    "5400",
    "--no-flatten",
)


@pytest.mark.parametrize("combos", ["accepted", "refused"])
def test_ibot_run_across_the_roll_time_ends_holding_june_only(tmp_path: Path, combos: str) -> None:
    port = free_port()
    faults = ("--fault", "0:refuse_combos") if combos == "refused" else ()
    sim = subprocess.Popen(
        [str(IBOT), "sim", "--port", str(port), *SIM, *faults],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("the simulator to listen", lambda: listening(port) or sim.poll() is not None, 15)
        assert sim.poll() is None, f"ibot sim exited: {sim.stderr.read() if sim.stderr else ''}"
        db = f"sqlite:///{tmp_path / 'orders.sqlite'}"
        env = {**os.environ, "TWS_API_ADDR": "127.0.0.1", "TWS_API_PORT": str(port)}
        run = subprocess.run(
            [str(IBOT), "run", *RUN, "--db", db],
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Traceback" not in run.stderr
        held = sim_positions(port)
        assert list(held) == ["MESM5"] and abs(held["MESM5"]) == 1, held
        assert recorded_positions(db) == held
        records = OrderRecords(db)
        try:
            [roll] = RollBook(records).all()
            assert (roll.from_key, roll.to_key, roll.state) == ("MESH5", "MESM5", RollState.DONE)
            assert abs(roll.quantity) == 1
            ours = sorted(
                r.client_order_id.removeprefix(roll.roll_id)
                for r in records.orders()
                if r.client_order_id.startswith(roll.roll_id) and str(r.status) == "Filled"
            )
        finally:
            records.close()
        if combos == "accepted":
            assert [cid.split(".")[1] for cid in ours] == ["bag", "bag"]
        else:
            assert ours == [".close", ".open"]
        log = (tmp_path / "out" / "live" / "ibot_live.log").read_text()
        assert "reached its roll time: rolling to MESM5" in log
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait(5)

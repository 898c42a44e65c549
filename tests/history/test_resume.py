"""Killed at random points (SIGKILL, three times) and run again, `ibot history download` ends with exactly
the bars of an uninterrupted download, bar for bar, and the same checkpoint; SIGTERM stops it after the
requests in flight are stored (exit 130), and the next run completes it. The CLI runs in a subprocess against
the
simulator in this process."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from ibot.app.history import history_gaps
from ibot.data.store import BarStore
from ibot.history.checkpoint import Checkpoint

from .conftest import SCALE, TO, Sim

IBOT = Path(sys.executable).with_name("ibot")
KEYS = ("MESZ4", "MESH5")
FROM = date(2024, 12, 16)  # the roll week: MESZ4 to its last trade date, MESH5 from then: 14 requests


def _cli(sim: Sim, data: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TWS_API_ADDR": "127.0.0.1", "TWS_API_PORT": str(sim.port)}
    args = [
        str(IBOT), "history", "download", "--symbol", "MES", "--bar", "1 min",
        "--from", FROM.isoformat(), "--to", TO.isoformat(), "--data-dir", str(data),
        "--pacing-scale", str(SCALE), "--connect-timeout", "10", *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        args, env=env, cwd=data.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_requests(sim: Sim, before: int, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while sim.requests <= before and proc.poll() is None:
        if time.monotonic() > deadline:
            pytest.fail("the download sent no historical request")
        time.sleep(0.02)


def _done(data: Path) -> set[tuple[str, int, int]]:
    if not (data / "history" / "progress.sqlite").exists():
        return set()
    with Checkpoint.in_data_dir(data) as cp:
        return {(s, r.start_ns, r.end_ns) for s in ("MESZ4/1min", "MESH5/1min") for r in cp.done(s)}


def _same_bars(a: Path, b: Path) -> None:
    for key in KEYS:
        x, y = BarStore(a).read(key, "1min"), BarStore(b).read(key, "1min")
        assert len(x) == len(y), key
        for column in ("ts", "open", "high", "low", "close", "volume"):
            assert np.array_equal(getattr(x, column), getattr(y, column)), (key, column)


def test_three_kills_at_random_points_then_a_run_equals_an_uninterrupted_download(
    sim: Sim, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    whole = sim.download(reference, start=FROM).to_dict()
    assert whole["complete"]
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    resumed = tmp_path / "resumed"
    progress = []
    for _ in range(3):
        before = sim.requests
        proc = _cli(sim, resumed)
        _wait_for_requests(sim, before, proc)
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        progress.append(len(_done(resumed)))
    assert progress[0] < whole["fewest_needed"], f"the first kill came after the end (seed {seed})"
    final = _cli(sim, resumed, "--json")
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    summary = json.loads(out)
    assert summary["complete"] and summary["violations_seen"] == 0
    assert summary["requests_sent"] == summary["fewest_needed"] == whole["fewest_needed"] - progress[-1]
    _same_bars(reference, resumed)
    assert _done(resumed) == _done(reference)
    for key in KEYS:
        ours = json.loads((resumed / "bars" / key / "contract.json").read_text())
        assert ours == json.loads((reference / "bars" / key / "contract.json").read_text())


def test_sigterm_stops_after_the_requests_in_flight_and_the_next_run_completes(
    sim: Sim, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    before = sim.requests
    proc = _cli(sim, data, "--json")
    _wait_for_requests(sim, before, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["stopped"] and not summary["complete"]
    stored = summary["bars_stored"]
    assert sum(stored.values()) == sum(
        len(BarStore(data).read(k, "1min")) for k in stored
    )  # in flight: stored
    assert history_gaps("MES", data_dir=data)  # what was stored is reported on
    again = _cli(sim, data, "--json")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert json.loads(out)["requests_sent"] == json.loads(out)["fewest_needed"] > 0

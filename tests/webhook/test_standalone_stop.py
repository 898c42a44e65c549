"""`ibot webhook --sim` stopped by SIGTERM, as supervisord stops it: the door flattens nothing (only a
strategy's positions are flattened), so its stop notice does not claim a flatten, and its last lines say
what it leaves open (the `final state` line of `ibot run`), exit status 0. A real process over loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from webhook_helpers import SECRET

IBOT = str(Path(sys.executable).with_name("ibot"))


def test_sigterm_on_the_standalone_door_says_what_it_leaves_open(tmp_path: Path) -> None:
    env = {**os.environ, "IBOT_WEBHOOK_SECRET": SECRET, "COLUMNS": "200"}
    db = f"sqlite:///{tmp_path / 'orders.sqlite'}"
    proc = subprocess.Popen(
        [IBOT, "webhook", "--sim", "--port", "0", "--db", db],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"ibot webhook exited early with {proc.poll()}"
            found = re.search(r"(http://127\.0\.0\.1:\d+/webhook/tradingview)", line)
            url = found.group(1) if found else None
        assert url is not None
        body = {"secret": SECRET, "ticker": "MES1!", "order": "MKT", "action": "buy", "quantity": 1}
        assert httpx.post(url, json=body, timeout=5).json()["status"] == "accepted"
        time.sleep(3)  # the worker places it; the simulator fills it
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, out
    assert "SIGTERM: stopping (cancelling working orders);" in out
    assert "flattening" not in out
    assert "webhook stopped (SIGTERM): alerts 1 accepted; 1 orders" in out
    assert re.search(r"final state \(stopped by SIGTERM\): position MESH5 \+1, open orders 0", out), out

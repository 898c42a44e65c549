"""`ibot demo --webhook` as a user runs it: a subprocess, a node on the simulator, alerts over real HTTP. Each
alert's answer and fate is shown; the bad ones place nothing, the risk budget refuses the one past the limit
(recorded, never sent), and a wrong secret is not kept in the records."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

IBOT = str(Path(sys.executable).with_name("ibot"))


def test_the_webhook_demo_shows_what_each_alert_became(tmp_path: Path) -> None:
    env = dict(os.environ, COLUMNS="200")
    env.pop("IBOT_WEBHOOK_SECRET", None)
    done = subprocess.run(
        [IBOT, "demo", "--webhook", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in out + done.stderr
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    expect = {
        "buy 1 MES1! MKT": ("200", "accepted", "Filled 1/1"),
        "the same id again": ("200", "duplicate", "Filled 1/1"),
        "buy 5: past max position 2": ("200", "rejected", "Rejected 0/5"),
        "sell 1 (lower case)": ("200", "accepted", "Filled 1/1"),
        "seed 000 sample (bad JSON)": ("400", "rejected", "none"),
        "LMT without a price": ("422", "rejected", "none"),
        "wrong secret": ("401", "unauthorized", "none"),
    }
    assert set(rows) == set(expect), out[-3000:]
    for alert, words in expect.items():
        cells = [c.strip() for c in rows[alert].split("│")]
        assert cells[2] == words[0] and cells[3] == words[1] and cells[5] == words[2], rows[alert]
    assert "max_position" in rows["buy 5: past max position 2"]
    db = sqlite3.connect(tmp_path / "out" / "demo_webhook.sqlite")
    try:
        sent = db.execute("SELECT count(*) FROM orders WHERE ib_order_id IS NOT NULL").fetchone()[0]
        bodies = " ".join(r[0] for r in db.execute("SELECT body FROM alerts"))
    finally:
        db.close()
    assert sent == 2, "only the two accepted alerts reached the simulator"
    assert "not-the-secret" not in bodies  # a wrong secret is redacted too

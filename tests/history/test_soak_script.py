"""scripts/history_soak.py keeps working: a reduced run (one month of MES, one SIGKILL, pacing scale 100)
through the real CLI and the simulator passes every check and prints its summary. (The full run, two years of
MES and MGC, takes about ten minutes: see docs/history.md, Figures.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "history_soak.py"


def test_reduced_soak_passes_every_check(tmp_path: Path) -> None:
    options = ["--months", "1", "--symbols", "MES", "--kills", "1", "--scale", "100", "--seed", "3"]
    argv = [sys.executable, str(SCRIPT), *options, "--work", str(tmp_path / "soak")]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=240, env=dict(os.environ), check=False
    )
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    summary = out[out.index("history soak: MES 1-min") :]
    checks = re.findall(r"^(PASS|FAIL)  (.*)$", summary, re.MULTILINE)
    assert len(checks) >= 14 and all(kind == "PASS" for kind, _ in checks), summary
    names = " | ".join(name for _, name in checks)
    for wanted in ("B (1 kills, resumed) equals A bar for bar", "a second run sends no request",
                   "MES backtest lists every roll", "net P&L = sum of per-contract P&L"):  # fmt: skip
        assert wanted in names
    assert re.search(r"B: kills\s+MES at", summary), summary  # the kill happened
    assert re.search(r"(\d+) of \1 checks passed", summary)

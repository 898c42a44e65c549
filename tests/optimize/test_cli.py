"""`ibot optimize` as a user runs it: a subprocess writing the table, report and profile; `ibot backtest
--profile` reproducing the best trial's figures; --json; Ctrl-C; one sentence and exit 2 for bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ibot.cli.main import app

IBOT = [sys.executable, "-c", "from ibot.cli.main import main; main()"]
SEARCH = ["--param", "breakout_bars=3:12", "--param", "sma_period=5:40", "--sampler-seed", "2"]
runner = CliRunner()


def ibot(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*IBOT, *args], check=False, capture_output=True, text=True, timeout=timeout, env=_env()
    )


def _env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("IBOT_OPTIMIZE_STORAGE", None)
    return env


def test_a_small_study_prints_its_table_writes_report_and_profile_and_the_profile_reproduces_it(
    market: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = ibot("optimize", "--trials", "6", *SEARCH, "--data-dir", str(market), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "best trials of study ma_breakout-MES-5min" in done.stdout
    assert "trials: 6 complete, 0 pruned, 0 failed, 0 infeasible (target 6)" in done.stdout
    report = out / "ma_breakout-MES-5min.html"
    profile_path = out / "profiles" / "ma_breakout-MES.json"
    assert f"report: {report}" in done.stdout and report.stat().st_size > 1000
    assert f"profile: {profile_path}" in done.stdout
    profile = json.loads(profile_path.read_text())
    assert profile["strategy"] == "ma_breakout" and profile["symbol"] == "MES" and profile["bar"] == "5min"

    again = runner.invoke(  # the same command, --json: the study has its 6 trials, none is added
        app, ["optimize", "--trials", "6", *SEARCH, "--data-dir", str(market), "--out", str(out), "--json"]
    )
    assert again.exit_code == 0, again.stderr
    payload = json.loads(again.stdout)
    assert payload["complete"] == 6 and len(payload["trials"]) == 6
    assert payload["best"]["number"] == profile["trial"] == payload["rows"][0]["number"]
    assert payload["best"]["params"]["breakout_bars"] == profile["params"]["breakout_bars"]
    assert payload["space"]["breakout_bars"] == "3 .. 12" and payload["space"]["quantity"] == "= 1"

    backtest = runner.invoke(
        app,
        ["backtest", "--profile", str(profile_path), "--data-dir", str(market), "--out", str(tmp_path / "bt"),
         "--no-chart", "--json"],
    )  # fmt: skip
    assert backtest.exit_code == 0, backtest.stderr
    metrics = json.loads(backtest.stdout)["metrics"]
    for key in ("net_pnl", "trades", "sharpe", "max_drawdown", "fees", "win_rate"):
        assert metrics[key] == profile["figures"][key], key


def _complete(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()
    except sqlite3.OperationalError:  # tables not made yet
        return 0
    return int(row[0])


def _wait_for(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_ctrl_c_stops_after_the_running_trial_and_a_second_signal_exits_130(
    market: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    db = out / "ma_breakout-MES-5min.db"
    args = ["optimize", "--trials", "100000", *SEARCH, "--data-dir", str(market), "--out", str(out)]
    proc = subprocess.Popen(
        [*IBOT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        _wait_for(lambda: _complete(db) >= 2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "SIGINT: stopping after the running trial" in stderr
    assert "stopped by SIGINT after" in stdout and "run the same command to resume" in stdout
    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM trials GROUP BY state").fetchall())
    assert set(states) == {"COMPLETE"} and states["COMPLETE"] >= 2  # the running trial finished

    proc = subprocess.Popen(
        [*IBOT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        before = _complete(db)
        _wait_for(lambda: _complete(db) > before)
        proc.send_signal(signal.SIGINT)  # two at once: a second SIGINT would merge with the first (one
        proc.send_signal(signal.SIGTERM)  # pending signal per kind), a SIGTERM is a second stop request
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "forced by a second SIGTERM" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--trials", "0"], "--trials 0 must be at least 1"),
        (["--strategy", "nope"], "nope"),
        (
            ["--param", "breakout_bars=9:3"],
            "--param breakout_bars=9:3: the low end 9 is above the high end 3",
        ),
        (["--param", "zzz=1:3"], "declares no parameter 'zzz'"),
        (["--objective", "profit"], "--objective 'profit' is not one of"),
        (
            ["--storage", "postgresql://u:hunter2@127.0.0.1:1/x"],
            "postgresql://u:***@127.0.0.1:1/x: cannot open",
        ),
        (["--storage", "nonsense"], "is not a database URL"),
        (["--worker"], "--worker needs --study NAME and --storage URL"),
        (
            ["--worker", "--study", "s", "--no-report"],
            "--report: a --worker takes every setting from the study",
        ),
        (
            ["--worker", "--study", "s", "--trials", "5"],
            "--trials: a --worker takes every setting from the study",
        ),
        (["--holdout", "1.5"], "--holdout 1.5 must be a fraction"),
        (["--jobs", "0"], "--jobs 0 must be at least 1"),
        (["--from", "yesterday"], "--from 'yesterday' is not a date"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(
    market: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    out = [] if "--worker" in args else ["--out", str(tmp_path / "o")]
    result = runner.invoke(app, ["optimize", "--data-dir", str(market), *out, *args])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_a_worker_for_a_study_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = runner.invoke(app, ["optimize", "--worker", "--study", "ghost", "--storage", url])
    assert result.exit_code == 2
    assert "--study ghost: no such study in" in " ".join(result.stderr.split())


def test_an_unwritable_out_dir_is_refused(market: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["optimize", "--data-dir", str(market), "--out", str(blocker / "sub")])
    text = " ".join("".join(c for c in result.stderr if c not in "│╭╮╰╯─").split())  # Click's box (CliRunner)
    assert result.exit_code == 2 and "is a file, not a directory" in text
    assert not (blocker / "sub").exists()


def test_backtest_and_run_read_a_profile_and_refuse_a_conflicting_flag(market: Path, tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    data = {
        "kind": "ibot-profile", "strategy": "ma_breakout", "symbol": "MES", "bar": "5min",
        "params": {"breakout_bars": 1, "sma_period": 12},
    }  # fmt: skip
    profile.write_text(json.dumps(data))
    for command in (["backtest", "--data-dir", str(market), "--out", str(tmp_path / "bt")], ["run", "--sim"]):
        bad = runner.invoke(app, [*command, "--profile", str(profile)])
        assert bad.exit_code == 2  # the profile's breakout_bars=1 is applied, and refused
        assert "breakout_bars=1 is below its minimum 2" in " ".join(bad.stderr.split())
        clash = runner.invoke(app, [*command, "--profile", str(profile), "--strategy", "sma_reversal"])
        assert clash.exit_code == 2 and "the profile" in clash.stderr and "--strategy" in clash.stderr
    fixed = runner.invoke(
        app,
        ["backtest", "--data-dir", str(market), "--out", str(tmp_path / "bt"), "--no-chart", "--json",
         "--profile", str(profile), "--param", "breakout_bars=4"],
    )  # fmt: skip
    assert fixed.exit_code == 0, fixed.stderr
    assert json.loads(fixed.stdout)["params"]["breakout_bars"] == 4  # --param overrides the profile
    assert json.loads(fixed.stdout)["params"]["sma_period"] == 12
    missing = runner.invoke(app, ["backtest", "--profile", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr

"""Workers sharing one study in PostgreSQL: every trial run by exactly one worker, and a worker killed with
SIGKILL mid-trial loses nothing (its trial fails after the heartbeat's grace period and is run again, with
the same parameters, by the worker that is left)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from ibot.app.optimize import STORAGE_ENV, OptimizeRequest, run_optimize

pytestmark = pytest.mark.postgres

IBOT = [sys.executable, "-c", "from ibot.cli.main import main; main()"]
WIDE = ("sma_period=2:300", "breakout_bars=2:50", "limit_offset_ticks=0:30")  # repeats are improbable
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _env(storage: str) -> dict[str, str]:
    return {**os.environ, STORAGE_ENV: storage}


def _study(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def _runs_once_unless_retried(trials: list[optuna.trial.FrozenTrial]) -> None:
    retried = {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}
    ran = [
        t
        for t in trials
        if t.state in FINISHED and "failed_trial" not in t.system_attrs and "same_as" not in t.user_attrs
    ]  # a retry runs its failed trial's set again; a `same_as` trial reused figures without running
    keys = Counter(tuple(sorted(t.params.items())) for t in ran)
    assert max(keys.values()) == 1, "a parameter set ran twice"
    assert all(trials[n].state is TrialState.FAIL for n in retried)


def test_local_jobs_share_one_study_and_run_each_trial_once(
    market: Path, tmp_path: Path, pg_storage: str
) -> None:
    secret = "hunter2-Secret"
    with_password = pg_storage.replace("postgres@", f"postgres:{secret}@")  # the server trusts, ignores it
    done = subprocess.run(
        [*IBOT, "optimize", "--study", "shared", "--trials", "24", "--jobs", "2", "--objective", "net",
         *[f"--param={p}" for p in WIDE], "--data-dir", str(market), "--out", str(tmp_path), "--json"],
        check=False, capture_output=True, text=True, timeout=180, env=_env(with_password),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["storage"] == pg_storage.replace("postgres@", "postgres:***@")
    written = [
        p.read_text() for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".log", ".html")
    ]
    assert len(written) >= 4  # profile, report, two worker logs
    assert all(secret not in text for text in [done.stdout, done.stderr, *written])
    trials = _study(pg_storage, "shared").get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert 24 <= len(finished) <= 25  # two workers may both start the 24th trial
    assert [t.number for t in trials] == list(range(len(trials)))
    workers = Counter(t.user_attrs["worker"] for t in finished)
    assert len(workers) == 2, f"both local workers ran trials: {workers}"
    assert all(w.split(":")[1] != str(os.getpid()) for w in workers)  # workers, not the coordinator
    _runs_once_unless_retried(trials)
    assert payload["best"] is not None and Path(payload["profile"]).exists()


def _running_trial(storage: str, name: str) -> int | None:
    """The number of a RUNNING trial of study `name` whose heartbeat has begun and whose parameters are all
    drawn, i.e. a trial in its backtests (one SQL query; the victim is frozen meanwhile). A trial killed
    before its first heartbeat: see test_storage (fail_silent_trials)."""
    import psycopg

    dsn = storage.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT t.number FROM trials t JOIN studies s ON s.study_id = t.study_id "
            "JOIN trial_heartbeats h ON h.trial_id = t.trial_id "  # its heartbeat has begun
            "WHERE s.study_name = %s AND t.state = 'RUNNING' "
            "AND (SELECT count(*) FROM trial_params p WHERE p.trial_id = t.trial_id) = 3 "  # backtesting now
            "ORDER BY t.number LIMIT 1",
            (name,),
        ).fetchone()
    return None if row is None else int(row[0])


def test_a_worker_killed_mid_trial_loses_no_trial(market: Path, tmp_path: Path, pg_storage: str) -> None:
    name = "killed"
    request = OptimizeRequest(
        study=name, storage=pg_storage, trials=12, params=WIDE, objectives=("net",), heartbeat=1,
        data_dir=market, out_dir=tmp_path,
    )  # fmt: skip
    created = run_optimize(request, stop=lambda: "created only")  # the study and its settings, no trial
    assert created.counts.finished == 0
    command = [*IBOT, "optimize", "--worker", "--study", name, "--data-dir", str(market), "--json"]
    victim = subprocess.Popen(command, env=_env(pg_storage), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        killed = None
        deadline = time.monotonic() + 90
        while killed is None:  # the only worker: a RUNNING trial is the victim's, and frozen mid-trial
            assert time.monotonic() < deadline, "the victim never ran a trial"
            assert victim.poll() is None, victim.stderr.read() if victim.stderr else ""
            victim.send_signal(signal.SIGSTOP)
            killed = _running_trial(pg_storage, name)
            if killed is None:
                victim.send_signal(signal.SIGCONT)
                time.sleep(0.02)
        victim.kill()
        victim.wait(timeout=10)
        survivor = subprocess.run(
            command, env=_env(pg_storage), check=False, capture_output=True, text=True, timeout=120
        )
    finally:
        if victim.poll() is None:
            victim.kill()
    assert survivor.returncode == 0, survivor.stderr
    trials = _study(pg_storage, name).get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 12
    victim_trial = trials[killed]
    assert victim_trial.state is TrialState.FAIL  # the killed worker's trial, failed as stale ...
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state in FINISHED  # ... and run again once, to the end
    assert retries[0].params == victim_trial.params
    assert retries[0].user_attrs["worker"] != f"{socket.gethostname()}:{victim.pid}"  # run by the survivor
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    _runs_once_unless_retried(trials)
    assert json.loads(survivor.stdout)["ran"] >= 1

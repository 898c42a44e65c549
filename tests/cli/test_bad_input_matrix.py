"""Bad input to `ibot`, run as a user runs it (the installed console script, in a subprocess): every case
exits 2 with exactly one line on stderr that names the option or path at fault, never a traceback, and
creates nothing. (`ibot sim ...` cases live in test_sim_cli.py.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

IBOT = Path(sys.executable).with_name("ibot")
PG = "postgresql+psycopg://postgres@127.0.0.1"


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released: connecting to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ibot(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[int, str, str]:
    """Run the console script in `cwd` (a scratch directory: the default data/ and out/ land there)."""
    command = [str(IBOT)] if IBOT.exists() else [sys.executable, "-m", "ibot.cli.main"]
    proc = subprocess.run(
        [*command, *args],
        cwd=cwd,
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "80", **(env or {})},
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A working directory with a plain file `afile` where directories are expected."""
    (tmp_path / "afile").write_text("not a directory\n")
    yield tmp_path


# (case id, argv with {tmp} for the scratch dir, text the one line must contain)
CASES: list[tuple[str, list[str], str]] = [
    # records database URLs
    (
        "orders-db-path",
        ["orders", "--db", "out/demo/demo_orders.sqlite"],
        "sqlite:///out/demo/demo_orders.sqlite",
    ),
    ("orders-db-scheme", ["orders", "--db", "foo://bar"], "--db foo://bar"),
    ("orders-db-new-file", ["orders", "--db", "sqlite:///{tmp}/new/x.sqlite"], "/new/x.sqlite"),
    ("orders-db-directory", ["orders", "--db", "sqlite:///{tmp}"], "is a directory"),
    ("orders-db-not-sqlite", ["orders", "--db", "sqlite:///{tmp}/afile"], "afile"),
    ("orders-default-missing", ["orders"], "data/ibot_orders.sqlite"),
    ("run-db-path", ["run", "--sim", "--duration", "60", "--db", "x.sqlite"], "sqlite:///x.sqlite"),
    ("run-db-scheme", ["run", "--sim", "--duration", "60", "--db", "foo://bar"], "--db foo://bar"),
    (
        "run-db-under-file",
        ["run", "--sim", "--duration", "60", "--db", "sqlite:///{tmp}/afile/x.sqlite"],
        "afile",
    ),
    # directories
    ("backtest-out-under-file", ["backtest", "--days", "2", "--out", "{tmp}/afile/x"], "--out"),
    (
        "backtest-out-proc",
        ["backtest", "--days", "2", "--data-dir", "{tmp}/d", "--out", "/proc/x"],
        "/proc/x",
    ),
    ("demo-out-under-file", ["demo", "--out", "{tmp}/afile/x"], "--out"),
    ("data-list-dir-is-file", ["data", "list", "--data-dir", "{tmp}/afile"], "--data-dir"),
    ("data-list-dir-missing", ["data", "list", "--data-dir", "{tmp}/typo"], "--data-dir"),
    ("data-synth-dir-is-file", ["data", "synth", "--data-dir", "{tmp}/afile"], "--data-dir"),
    ("backtest-dir-is-file", ["backtest", "--data-dir", "{tmp}/afile"], "--data-dir"),
    # dates and numbers
    ("contracts-asof-1900", ["contracts", "--asof", "1900-01-01"], "--asof"),
    ("contracts-asof-bad", ["contracts", "--asof", "2026-02-30"], "--asof"),
    ("contracts-months-0", ["contracts", "--months", "0"], "--months"),
    ("contracts-no-symbol", ["contracts", "-s", ",,"], "--symbol"),
    ("contracts-unknown", ["contracts", "-s", "MES,NOPE"], "NOPE"),
    ("synth-start-1970", ["data", "synth", "--start", "1970-01-01", "--data-dir", "{tmp}/d"], "--start"),
    ("synth-start-2199", ["data", "synth", "--start", "2199-12-01", "--data-dir", "{tmp}/d"], "--start"),
    ("synth-start-bad", ["data", "synth", "--start", "2025-13-01", "--data-dir", "{tmp}/d"], "--start"),
    ("synth-days-0", ["data", "synth", "--days", "0", "--data-dir", "{tmp}/d"], "--days"),
    ("synth-seed-negative", ["data", "synth", "--seed", "-1", "--data-dir", "{tmp}/d"], "--seed"),
    ("synth-bar-daily", ["data", "synth", "--bar", "1d", "--data-dir", "{tmp}/d"], "'1d'"),
    ("synth-bar-odd", ["data", "synth", "--bar", "7s", "--data-dir", "{tmp}/d"], "'7s'"),
    ("synth-unknown-symbol", ["data", "synth", "-s", "XYZ", "--data-dir", "{tmp}/d"], "XYZ"),
    ("backtest-seed-negative", ["backtest", "--seed", "-1"], "--seed"),
    ("backtest-slippage-negative", ["backtest", "--slippage", "-1"], "--slippage"),
    ("backtest-commission-nan", ["backtest", "--commission", "nan", "--data-dir", "{tmp}/d"], "--commission"),
    (
        "backtest-commission-text",
        ["backtest", "--commission", "abc", "--data-dir", "{tmp}/d"],
        "--commission",
    ),
    ("backtest-unknown-strategy", ["backtest", "--strategy", "nope", "--data-dir", "{tmp}/d"], "nope"),
    ("backtest-unknown-param", ["backtest", "-p", "nope=1", "--data-dir", "{tmp}/d"], "nope"),
    (
        "backtest-param-range",
        ["backtest", "-p", "breakout_bars=99999", "--data-dir", "{tmp}/d"],
        "breakout_bars",
    ),
    ("backtest-param-shape", ["backtest", "-p", "breakout_bars", "--data-dir", "{tmp}/d"], "breakout_bars"),
    ("backtest-bar-unit", ["backtest", "--bar", "5x", "--data-dir", "{tmp}/d"], "'5x'"),
    ("backtest-unknown-symbol", ["backtest", "-s", "XYZ", "--data-dir", "{tmp}/d"], "XYZ"),
    ("run-seed-negative", ["run", "--sim", "--seed", "-1", "--duration", "60"], "--seed"),
    ("run-speed-zero", ["run", "--sim", "--sim-speed", "0"], "--sim-speed"),
    ("run-duration-zero", ["run", "--sim", "--duration", "0"], "--duration"),
    ("run-unknown-strategy", ["run", "--sim", "--strategy", "nope"], "nope"),
    ("run-bar-not-5s", ["run", "--sim", "--bar", "7s", "--duration", "60"], "7s"),
    # the command line itself
    ("unknown-option", ["orders", "--bogus"], "--bogus"),
    ("unknown-command", ["nope"], "nope"),
    ("missing-value", ["contracts", "--asof"], "--asof"),
]


@pytest.mark.parametrize(("argv", "names"), [pytest.param(a, n, id=i) for i, a, n in CASES])
def test_bad_input_is_one_line_naming_it_and_exit_2(scratch: Path, argv: list[str], names: str) -> None:
    args = [a.replace("{tmp}", str(scratch)) for a in argv]
    before = sorted(p.name for p in scratch.iterdir())
    code, _, err = ibot(*args, cwd=scratch)
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert names.replace("{tmp}", str(scratch)) in lines[0], lines[0]
    created = sorted(p.name for p in scratch.iterdir())
    if args[0] == "run":  # a run's log (out/live/ibot_live.log) may record the refused start
        created = [name for name in created if name != "out"]
    assert created == before  # nothing created (no data/, out/, .sqlite)


def test_a_file_where_the_sqlite_records_should_go_names_it_when_a_run_starts(scratch: Path) -> None:
    # `run` creates its records: /proc refuses a new file, which the driver reports on connect
    code, _, err = ibot("run", "--sim", "--duration", "60", "--db", "sqlite:////proc/x.sqlite", cwd=scratch)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "/proc/x.sqlite" in err


@pytest.mark.parametrize(
    "command",
    [["orders"], ["run", "--sim", "--duration", "60"]],
    ids=["orders", "run"],
)
def test_a_missing_postgresql_database_is_named(scratch: Path, command: list[str]) -> None:
    code, _, err = ibot(*command, "--db", f"{PG}/ibot_no_such_db", cwd=scratch)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert 'database "ibot_no_such_db" does not exist' in err


def test_a_refused_postgresql_port_is_named_and_no_password_shown(scratch: Path) -> None:
    port = _closed_port()
    code, _, err = ibot("orders", "--db", f"postgresql+psycopg://u:s3cret@127.0.0.1:{port}/x", cwd=scratch)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert f"port {port}" in err and "refused" in err.lower()
    assert "s3cret" not in err


def test_run_against_a_refused_port_is_one_line(scratch: Path) -> None:
    port = _closed_port()
    code, _, err = ibot(
        "run",
        "--duration",
        "60",
        "--db",
        f"sqlite:///{scratch}/r.sqlite",
        cwd=scratch,
        env={"TWS_API_PORT": str(port), "TWS_API_ADDR": "127.0.0.1"},
        timeout=180,
    )
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert f"127.0.0.1:{port}" in err

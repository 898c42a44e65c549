"""Two `ibot run --sim` runs into ONE records database (issue 13, finding 1), run as a user runs them: the
`ibot` command in a subprocess, each run with its own in-process simulator, on a SQLite file and then on a
throwaway PostgreSQL database (created on 127.0.0.1:5432 for the test, dropped after it).

Every execution a run got is recorded (no order Filled without its fill rows), the second run's fills are not
dropped as "already seen" (each simulator's execution ids are its own), nothing is kept aside as conflicting,
and the realized P&L the records hold is IB's: the sum of the commission reports' realizedPNL equals the P&L
the fills add up to, run by run and over both runs (the second run's reports never overwrite the first's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ibot.oms.records import OrderRecords

IBOT = Path(sys.executable).with_name("ibot")
# sma_reversal on 1-min bars at 600x: a cross every few simulated minutes, so fills surely happen within
# 30 market minutes (3 s of wall time); the run flattens at the end, so each run's P&L is all realized.
RUN = ("--sim", "--strategy", "sma_reversal", "--bar", "1min", "--duration", "1800", "--sim-speed", "600")
TIMEOUT = 60


def ibot(cwd: Path, *args: str) -> dict[str, Any]:
    """Run `ibot ... --json` as a user would; its JSON output (a traceback or a non-zero exit fails)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [str(IBOT), *args, "--json"],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, f"ibot {' '.join(args)} exited {done.returncode}: {done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def fills_match_orders(run: dict[str, Any]) -> None:
    """Every contract a run's orders executed has its fill rows; every fill row is of one of its orders."""
    by_order: dict[str, int] = {}
    for f in run["fills"]:
        by_order[f["client_order_id"]] = by_order.get(f["client_order_id"], 0) + f["qty"]
    for o in run["orders"]:
        assert by_order.get(o["client_order_id"], 0) == o["filled"], f"order {o} has fills {by_order}"
        if o["status"] == "Filled":
            assert o["filled"] == o["qty"] and by_order[o["client_order_id"]] == o["qty"]
    assert set(by_order) <= {o["client_order_id"] for o in run["orders"]}


def pnl(run: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(the P&L the fills add up to, net of fees; IB's realized P&L: the commission reports' realizedPNL)."""
    return Decimal(str(run["net_pnl"])), Decimal(str(run["ib_realized"]))


def two_runs_into_one_records(cwd: Path, db: str) -> None:
    first = ibot(cwd, "run", *RUN, "--db", db)
    second = ibot(cwd, "run", *RUN, "--db", db)
    everything = ibot(cwd, "orders", "--db", db)
    for run in (first, second):
        assert run["fills"], "the run traded nothing: the test proves nothing"
        assert run["final"]["positions"] == {} and run["positions"] == {}  # flattened at the end
        fills_match_orders(run)
        net, ib_realized = pnl(run)
        assert net == ib_realized, f"records' P&L {net} is not IB's realized {ib_realized}"
    first_ids = {f["exec_id"] for f in first["fills"]}
    second_ids = {f["exec_id"] for f in second["fills"]}
    assert not first_ids & second_ids, "two simulators gave the same execution ids"
    # fills recorded == fills executed, over both runs; no order of either run Filled without its fills
    assert len(everything["orders"]) == len(first["orders"]) + len(second["orders"])
    assert {f["exec_id"] for f in everything["fills"]} == first_ids | second_ids
    assert len(everything["fills"]) == len(first["fills"]) + len(second["fills"])
    fills_match_orders(everything)
    # the first run's realized P&L is still its own (its commission reports only)
    before = {f["exec_id"]: f["realized_pnl"] for f in first["fills"]}
    after = {f["exec_id"]: f["realized_pnl"] for f in everything["fills"] if f["exec_id"] in first_ids}
    assert after == before
    net, ib_realized = pnl(everything)
    assert net == ib_realized == pnl(first)[1] + pnl(second)[1]
    # the second run's status line counts the day's realized P&L of both runs (same simulated day)
    assert Decimal(str(second["final"]["realized_pnl"])) == ib_realized
    records = OrderRecords(db)
    try:
        assert records.fill_conflicts() == []
    finally:
        records.close()


def test_two_sim_runs_into_one_sqlite_file_record_every_fill(tmp_path: Path) -> None:
    two_runs_into_one_records(tmp_path, f"sqlite:///{tmp_path / 'orders.sqlite'}")


@pytest.fixture
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL database created for this test on 127.0.0.1:5432 (user postgres), dropped after it."""
    import psycopg

    name = f"ibot_two_runs_{uuid.uuid4().hex[:10]}"
    server = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres", "autocommit": True}
    try:
        admin = psycopg.connect(**server)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable at 127.0.0.1:5432 ({exc})", pytrace=False)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(**server) as admin:  # type: ignore[arg-type]
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_two_sim_runs_into_one_postgres_database_record_every_fill(
    tmp_path: Path, throwaway_postgres: str
) -> None:
    two_runs_into_one_records(tmp_path, throwaway_postgres)

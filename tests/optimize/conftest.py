"""Fixtures for the parameter-search tests: one small synthetic MES market shared by every test (a read-only
bar store), and throwaway PostgreSQL databases named optimize_<random> (an unreachable server FAILS the
test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ibot.app.data import synth_to_store

MARKET_DAYS = 12  # trading sessions of 1-min bars: ~3,300 5-min bars, trials of a few ms each


@pytest.fixture(scope="session")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bar store holding 12 sessions of seeded synthetic MES 1-min bars (the tests only read it)."""
    data_dir = tmp_path_factory.mktemp("market")
    synth_to_store("MES", MARKET_DAYS, seed=11, data_dir=data_dir)
    return data_dir


def _admin(dbname: str = "postgres") -> Any:
    import psycopg

    try:
        return psycopg.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname=dbname, connect_timeout=3, autocommit=True
        )
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable at 127.0.0.1:5432 ({exc})", pytrace=False)


@pytest.fixture
def pg_storage() -> Iterator[str]:
    """A fresh database optimize_<random> as an Optuna storage URL; dropped afterwards."""
    name = f"optimize_{uuid.uuid4().hex[:10]}"
    conn = _admin()
    conn.execute(f'CREATE DATABASE "{name}"'.encode())
    conn.close()
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        conn = _admin()
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        conn.close()

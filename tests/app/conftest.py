"""Fixtures for the application-layer tests: records databases on a SQLite file and on the PostgreSQL server
(a fresh schema per test; an unreachable server FAILS the test, it is never skipped)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG = "postgres@127.0.0.1:5432"


def _admin(sql: str) -> None:
    import psycopg

    try:
        conn = psycopg.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3,
            autocommit=True,
        )  # fmt: skip
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable at 127.0.0.1:5432 ({exc})", pytrace=False)
    with conn:
        conn.execute(sql.encode())


@pytest.fixture
def postgres_url() -> Iterator[str]:
    schema = f"app_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE SCHEMA "{schema}"')
    yield f"postgresql+psycopg://{PG}/postgres?options=-csearch_path%3D{schema}"
    _admin(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A records database URL that does not exist yet: a SQLite file in tmp_path, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))

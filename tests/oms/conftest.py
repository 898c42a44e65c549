"""Fixtures for the OMS tests: real records databases, a SQLite file and the PostgreSQL server.

PostgreSQL: one database per test run (created here, dropped at the end) and one schema per test inside it, so
every test starts from an empty database. If the server is not reachable the PostgreSQL tests FAIL: they are
never skipped silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ibot.oms.records import OrderRecords

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_UNREACHABLE = f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT} — start it (make services)"


def _admin_connect(dbname: str = "test") -> object:
    import psycopg

    try:
        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, user="postgres", dbname=dbname, connect_timeout=3, autocommit=True
        )
    except psycopg.OperationalError as exc:
        pytest.fail(f"{PG_UNREACHABLE} ({exc})", pytrace=False)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database for this test run; yields its name and drops it afterwards."""
    name = f"ibot_oms_test_{uuid.uuid4().hex[:10]}"
    conn = _admin_connect()
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()  # type: ignore[attr-defined]
    try:
        yield name
    finally:
        conn = _admin_connect()
        with conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()  # type: ignore[attr-defined]


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """An empty schema of the run's database, as a psycopg URL whose search_path points at it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = _admin_connect(postgres_database)
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(f'CREATE SCHEMA "{schema}"')
    conn.close()  # type: ignore[attr-defined]
    yield (
        f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{postgres_database}"
        f"?options=-csearch_path%3D{schema}"
    )
    conn = _admin_connect(postgres_database)
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
    conn.close()  # type: ignore[attr-defined]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'orders.sqlite'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The records database URL: a SQLite file in tmp_path, then a schema on the PostgreSQL server."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def records(db_url: str) -> Iterator[OrderRecords]:
    """A migrated, empty records database (SQLite file and PostgreSQL)."""
    rec = OrderRecords(db_url)
    rec.migrate()
    yield rec
    rec.close()


@pytest.fixture
def sqlite_records(sqlite_url: str) -> Iterator[OrderRecords]:
    rec = OrderRecords(sqlite_url)
    rec.migrate()
    yield rec
    rec.close()

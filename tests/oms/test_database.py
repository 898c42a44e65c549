"""The records database opener (`ibot.oms.database`): URLs checked before anything connects, a reading open
creates nothing, a recording open creates and migrates, every refusal is one RecordsDatabaseError sentence.
Real SQLite files and the real PostgreSQL server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ibot.model.errors import IbotError
from ibot.oms.database import RecordsDatabaseError, open_records, records_url


def test_a_new_sqlite_file_is_created_and_migrated_then_reopened_for_reading(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/orders.sqlite"
    assert records_url(url, create=True) == url
    assert not (tmp_path / "sub").exists()  # checking a URL touches nothing
    records = open_records(url)
    try:
        assert records.schema_revision() is not None
        assert records.orders() == []
    finally:
        records.close()
    reader = open_records(url, create=False)
    try:
        assert reader.schema_revision() is not None
    finally:
        reader.close()


def test_a_reading_open_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new/orders.sqlite"
    for call in (lambda: records_url(url, create=False), lambda: open_records(url, create=False)):
        with pytest.raises(RecordsDatabaseError, match=r"no records database at .*new/orders\.sqlite"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_the_default_url_is_the_data_directorys_file_and_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBOT_DATA_DIR", str(tmp_path / "data"))
    assert records_url(None, create=True) == f"sqlite:///{tmp_path / 'data' / 'ibot_orders.sqlite'}"
    assert not (tmp_path / "data").exists()
    with pytest.raises(RecordsDatabaseError, match=r"ibot_orders\.sqlite"):
        records_url(None, create=False)


@pytest.mark.parametrize(
    ("db", "says"),
    [
        ("out/demo/demo_orders.sqlite", "use sqlite:///out/demo/demo_orders.sqlite"),
        ("orders", "is not a database URL"),
        ("foo://bar", "unknown database scheme 'foo'"),
        ("mysql://u@h/db", "unknown database scheme 'mysql'"),
        ("postgresql+psycopg://postgres@127.0.0.1", "names no database"),
    ],
)
def test_a_url_that_is_not_a_known_database_is_refused_by_name(db: str, says: str) -> None:
    with pytest.raises(RecordsDatabaseError, match=f"--db .*{says}") as info:
        records_url(db, create=True)
    assert isinstance(info.value, IbotError)


def test_a_place_where_no_file_can_be_made_is_refused_before_connecting(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(RecordsDatabaseError, match="afile is not a directory"):
        open_records(f"sqlite:///{afile}/orders.sqlite")
    with pytest.raises(RecordsDatabaseError, match="is a directory, not a SQLite file"):
        open_records(f"sqlite:///{tmp_path}")
    for create in (True, False):
        with pytest.raises(RecordsDatabaseError, match="afile is a file but not a SQLite database"):
            open_records(f"sqlite:///{afile}", create=create)
    assert afile.read_text() == "x"  # untouched


@pytest.mark.skipif(os.geteuid() != 0, reason="/proc refuses new files to root; others are refused earlier")
def test_the_drivers_refusal_becomes_one_sentence() -> None:
    with pytest.raises(
        RecordsDatabaseError, match=r"/proc/x\.sqlite cannot be opened: unable to open database"
    ):
        open_records("sqlite:////proc/x.sqlite")


@pytest.mark.postgres
def test_postgresql_opens_migrates_and_names_a_missing_database(postgres_url: str) -> None:
    records = open_records(postgres_url)
    try:
        assert records.schema_revision() is not None
    finally:
        records.close()
    missing = "postgresql+psycopg://postgres:hunter2@127.0.0.1:5432/ibot_no_such_database"
    with pytest.raises(RecordsDatabaseError) as info:
        open_records(missing)
    message = str(info.value)
    assert 'database "ibot_no_such_database" does not exist' in message
    assert "hunter2" not in message and "\n" not in message


@pytest.mark.postgres
def test_a_postgresql_database_without_ibot_records_is_not_read_as_empty(postgres_url: str) -> None:
    with pytest.raises(RecordsDatabaseError, match="holds no ibot order records"):
        open_records(postgres_url, create=False)

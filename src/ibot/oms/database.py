"""Where the order records live: the URL a user gives (`--db`) checked before anything connects, and an opener
that turns a driver's or the OS's refusal into one sentence naming the database and what was wrong.

`records_url` validates without side effects (a listing must not create a directory or a database);
`open_records` connects, creates the SQLite file only when asked to (`create=True`, the runs that record),
and brings the schema to the packaged Alembic head. Both raise `RecordsDatabaseError` (an IbotError: the CLI
prints it as one line, exit 2). Passwords in a URL are never shown.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ibot.oms.records import OrderRecords, RecordsError, default_url

# Back ends and drivers the records are built and tested for (SQLAlchemy's bare `postgresql` is psycopg 3).
KNOWN_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class RecordsDatabaseError(RecordsError):
    """A records database that cannot be named, reached, created or read; the message says which and why."""


def shown(url: str) -> str:
    """`url` for a message: the password masked (nothing secret in output)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def records_url(db: str | None, *, create: bool) -> str:
    """The records database URL: `db` (the `--db` option) checked, else the SQLite file in the data directory.

    Refuses a path given where a URL is expected, an unknown scheme, and a SQLite file that cannot be created
    there (`create`) or does not exist (not `create`: a reading command creates nothing). Touches nothing."""
    if db is None or not db.strip():
        from ibot.config import load_settings

        url = default_url(load_settings().data_dir)
    else:
        url = _checked_scheme(db.strip())
    _check_sqlite_file(url, create=create)
    return url


def open_records(url: str, *, sync: str | None = None, create: bool = True) -> OrderRecords:
    """The records at `url`, connected and migrated to the packaged schema head.

    `create`: make the SQLite file (and its directory) when missing; otherwise a missing file, or a database
    that holds no ibot records, is an error and nothing is created. Every refusal (missing database, refused
    connection, unwritable path, a file that is not a database) is a RecordsDatabaseError in one sentence."""
    _checked_scheme(url)
    _check_sqlite_file(url, create=create)
    try:
        records = OrderRecords(url, sync=sync)
    except (OSError, SQLAlchemyError) as exc:
        raise RecordsDatabaseError(
            f"records database {shown(url)} cannot be opened: {_reason(exc)}"
        ) from None
    try:
        if not create and records.schema_revision() is None:
            raise RecordsDatabaseError(
                f"records database {shown(url)} holds no ibot order records (no schema); nothing to read"
            )
        records.migrate()
    except RecordsDatabaseError:
        records.close()
        raise
    except (OSError, SQLAlchemyError) as exc:
        records.close()
        raise RecordsDatabaseError(
            f"records database {shown(url)} cannot be opened: {_reason(exc)}"
        ) from None
    except Exception as exc:
        records.close()
        if type(exc).__module__.startswith("alembic"):  # e.g. a schema revision newer than this ibot knows
            raise RecordsDatabaseError(
                f"records database {shown(url)} has a schema this ibot cannot migrate: {_reason(exc)}"
            ) from None
        raise
    except BaseException:
        records.close()
        raise
    return records


def _checked_scheme(db: str) -> str:
    """`db` if it is a parseable URL of a known back end; a path or an unknown scheme is refused by name."""
    match = _SCHEME_RE.match(db)
    if match is None:
        if db.endswith((".sqlite", ".sqlite3", ".db")) or "/" in db or os.sep in db:
            raise RecordsDatabaseError(
                f"--db {db!r} is a file path, not a database URL; use sqlite:///{db} "
                f"(or postgresql+psycopg://user@host/dbname)"
            )
        raise RecordsDatabaseError(
            f"--db {db!r} is not a database URL; use sqlite:///path/to/file.sqlite "
            f"or postgresql+psycopg://user@host/dbname"
        )
    scheme = match.group(1).lower()
    if scheme not in KNOWN_SCHEMES:
        raise RecordsDatabaseError(
            f"--db {shown(db)}: unknown database scheme {scheme!r}; use one of {', '.join(KNOWN_SCHEMES)}"
        )
    try:
        parsed = make_url(db)
    except (ArgumentError, ValueError) as exc:
        raise RecordsDatabaseError(f"--db {db!r} is not a valid database URL: {exc}") from None
    if parsed.get_backend_name() == "postgresql" and not parsed.database:
        raise RecordsDatabaseError(f"--db {shown(db)} names no database; add it: .../dbname")
    return db


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database or another back end."""
    parsed: URL = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or "mode=memory" in url or database.startswith("file:"):
        return None
    return Path(database)


def _check_sqlite_file(url: str, *, create: bool) -> None:
    """Refuse, before anything is created, a SQLite file that is missing (reading) or cannot be made here."""
    path = _sqlite_file(url)
    if path is None:
        return
    if path.is_dir():
        raise RecordsDatabaseError(f"records database {path} is a directory, not a SQLite file")
    if path.is_file() and not _is_sqlite(path):  # never let SQLite write its pages over someone's file
        raise RecordsDatabaseError(f"records database {path} is a file but not a SQLite database")
    if not create:
        if not path.exists():
            raise RecordsDatabaseError(
                f"no records database at {path}: nothing has been recorded there "
                "(a run creates it; --db names another)"
            )
        return
    if path.exists():
        return
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RecordsDatabaseError(
            f"records database {path} cannot be created: {ancestor} is not a directory"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RecordsDatabaseError(f"records database {path} cannot be created: {ancestor} is not writable")


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _is_sqlite(path: Path) -> bool:
    """An empty file (SQLite makes it a database) or one that starts with SQLite's header string."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError:
        return True  # unreadable: let the driver say why, in its words
    return head in (b"", _SQLITE_MAGIC)


def _reason(exc: BaseException) -> str:
    """The driver's or OS's own words, on one line, without SQLAlchemy's wrapping and background link."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    text = text.split("(Background on this error", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("[")]
    joined = "; ".join(lines)
    joined = re.sub(r"\bFATAL:\s+", "", joined)
    joined = re.sub(r"^connection failed:\s*", "", joined)
    return joined.rstrip(".") or type(exc).__name__

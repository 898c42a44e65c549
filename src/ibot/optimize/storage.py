"""Where a study lives: Optuna's RDB storage on a SQLite file (the default) or a PostgreSQL database that any
number of workers on any machine share.

Every worker runs with a heartbeat: a worker that dies (SIGKILL, a lost machine) leaves its trial RUNNING
until the grace period passes; the next worker to look fails it and queues it again with the same
parameters (Optuna's RetryHeartbeatStaleTrialCallback, once), so no trial is lost. A storage URL is never
shown with its password: `mask_url` is the only form any message, repr or log line uses.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ibot.model.errors import IbotError, ParameterError

if TYPE_CHECKING:
    import optuna
    from optuna.storages import RDBStorage

__all__ = [
    "DEFAULT_HEARTBEAT",
    "StorageError",
    "StorageUrl",
    "fail_silent_trials",
    "mask_url",
    "open_storage",
    "sqlite_url",
    "storage_errors",
]

DEFAULT_HEARTBEAT = 5  # seconds between a running trial's heartbeats; stale after 3 missed ones
_SCHEMES = ("sqlite", "postgresql")
_USERINFO = re.compile(r"(?P<head>^[A-Za-z][A-Za-z0-9+.\-]*://[^:/@]*:)(?P<password>[^@]*)(?P<tail>@)")


def mask_url(url: str) -> str:
    """`url` with its password replaced by `***` (also when SQLAlchemy cannot parse it)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return _USERINFO.sub(r"\g<head>***\g<tail>", url)


@dataclass(frozen=True, slots=True)
class StorageUrl:
    """A storage URL whose repr and str never show the password; `.secret` is the URL itself."""

    secret: str

    def __str__(self) -> str:
        return mask_url(self.secret)

    def __repr__(self) -> str:
        return f"StorageUrl({mask_url(self.secret)!r})"

    @property
    def is_sqlite(self) -> bool:
        return self.secret.startswith("sqlite")


def sqlite_url(path: Path) -> StorageUrl:
    return StorageUrl(f"sqlite:///{path.resolve()}")


def _normalized(url: str) -> str:
    """`url` checked as a database URL ibot supports; `postgresql://` means the installed psycopg 3 driver."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ParameterError(
            f"--storage {mask_url(url)!r} is not a database URL (e.g. sqlite:///out/optimize/study.db or "
            "postgresql+psycopg://user@host/db)"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in _SCHEMES:
        raise ParameterError(
            f"--storage {mask_url(url)}: {backend!r} is not a supported database (sqlite or postgresql)"
        )
    if backend == "postgresql" and parsed.drivername != "postgresql+psycopg":
        if parsed.drivername not in ("postgresql", "postgres"):
            raise ParameterError(
                f"--storage {mask_url(url)}: driver {parsed.drivername!r} is not installed; use "
                "postgresql+psycopg://"
            )
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def open_storage(url: StorageUrl, heartbeat: int = DEFAULT_HEARTBEAT) -> RDBStorage:
    """Optuna's RDB storage at `url` with a heartbeat of `heartbeat` seconds (stale after 3x) and the
    retry-once callback. An unreachable database or a bad URL is a ParameterError naming the masked URL."""
    import optuna
    from optuna.exceptions import ExperimentalWarning
    from sqlalchemy.exc import SQLAlchemyError

    if heartbeat < 1:
        raise ParameterError(f"--heartbeat {heartbeat} must be at least 1 second")
    target = _normalized(url.secret)
    connect_args: dict[str, object] = {"timeout": 60} if url.is_sqlite else {"connect_timeout": 5}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
            storage = optuna.storages.RDBStorage(
                target,
                engine_kwargs={"connect_args": connect_args, "pool_pre_ping": True},
                heartbeat_interval=heartbeat,
                grace_period=3 * heartbeat,
                heartbeat_stale_trial_callback=retry,
            )
    except (SQLAlchemyError, OSError) as exc:
        raise ParameterError(f"--storage {url}: cannot open the database: {_reason(exc, url)}") from None
    if url.is_sqlite:
        _write_ahead_log(storage)
    return storage


def _write_ahead_log(storage: RDBStorage) -> None:
    """SQLite in WAL mode with normal sync: a commit per trial step costs microseconds instead of an fsync,
    readers never block the writer (local workers share the file); a killed process loses no committed trial
    (a power cut may lose the last few)."""
    from sqlalchemy import event

    def pragmas(connection: object, _record: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened before the listener get the pragmas on reconnect


class StorageError(IbotError):
    """The study's database failed while the search ran (a lost connection, a full disk)."""


@contextmanager
def storage_errors(url: StorageUrl) -> Iterator[None]:
    """Turn a database failure inside the block into one StorageError sentence naming the masked URL."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, StorageInternalError) as exc:
        cause = exc.__cause__ if isinstance(exc, StorageInternalError) and exc.__cause__ else exc
        raise StorageError(f"--storage {url}: the database failed: {_reason(cause, url)}") from None


def _reason(exc: BaseException, url: StorageUrl) -> str:
    """The driver's message on one line, without SQLAlchemy's background link, the password masked."""
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split()).split(" (Background")[0]
    password = _password(url.secret)
    return reason.replace(password, "***") if password else reason


def _password(url: str) -> str | None:
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
        return None if password is None else str(password)
    except Exception:
        match = _USERINFO.match(url)
        return match.group("password") if match else None


SILENT_MARGIN = 60  # seconds beyond the grace period: clocks of two machines may disagree by that much


def fail_silent_trials(study: optuna.Study) -> None:
    """Fail (and retry once, like a stale one) every RUNNING trial that never recorded a heartbeat and
    started more than the grace period plus a margin ago.

    Optuna finds a dead worker's trial through its last heartbeat; a worker killed between taking a trial
    and its first heartbeat (a few milliseconds) leaves a RUNNING trial with none, which Optuna never fails,
    and every other worker would wait for it forever. Its start time (the taking worker's clock) is all there
    is to judge it by, hence the margin."""
    from datetime import datetime, timedelta

    import optuna
    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models  # the heartbeat table has no public reader
    from optuna.trial import TrialState

    storage = getattr(study._storage, "_backend", study._storage)
    if not isinstance(storage, RDBStorage) or storage.heartbeat_interval is None:
        return
    grace = storage.grace_period or 2 * storage.heartbeat_interval
    cutoff = datetime.now() - timedelta(seconds=grace + SILENT_MARGIN)
    session = storage.scoped_session()
    try:
        silent = [
            t.trial_id
            for t in session.query(models.TrialModel)
            .filter(models.TrialModel.study_id == study._study_id)
            .filter(models.TrialModel.state == TrialState.RUNNING)
            .all()
            if not t.heartbeats and t.datetime_start is not None and t.datetime_start < cutoff
        ]
    finally:
        session.close()
    retry = storage.get_heartbeat_stale_trial_callback()
    for trial_id in silent:
        try:
            failed = study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:  # another worker got there first
            continue
        if failed and retry is not None:
            retry(study, study._storage.get_trial(trial_id))

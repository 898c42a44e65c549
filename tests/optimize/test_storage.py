"""Storage URLs: checked before anything runs, never shown with their password."""

from __future__ import annotations

from pathlib import Path

import pytest

from ibot.model.errors import ParameterError
from ibot.optimize.storage import StorageUrl, mask_url, open_storage

SECRET = "s3cr3t-Pa55"


def test_every_form_of_the_url_hides_the_password() -> None:
    url = StorageUrl(f"postgresql+psycopg://trader:{SECRET}@db.example:5432/optuna")
    assert SECRET not in str(url) and SECRET not in repr(url) and SECRET not in f"{url}"
    assert str(url) == "postgresql+psycopg://trader:***@db.example:5432/optuna"
    assert mask_url(f"weird+thing://u:{SECRET}@h/x?y").count(SECRET) == 0
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("not a url", ["is not a database URL"]),
        ("mysql://u@h/db", ["'mysql' is not a supported database"]),
        ("postgresql+asyncpg://u@h/db", ["driver 'postgresql+asyncpg' is not installed"]),
    ],
)
def test_a_bad_url_is_one_sentence(url: str, words: list[str]) -> None:
    with pytest.raises(ParameterError) as err:
        open_storage(StorageUrl(url))
    for w in words:
        assert w in str(err.value)


def test_an_unreachable_database_is_one_sentence_with_the_password_masked() -> None:
    url = StorageUrl(f"postgresql://trader:{SECRET}@127.0.0.1:1/optuna")  # nothing listens on port 1
    with pytest.raises(ParameterError) as err:
        open_storage(url)
    message = str(err.value)
    assert message.startswith(
        "--storage postgresql://trader:***@127.0.0.1:1/optuna: cannot open the database"
    )
    assert SECRET not in message and "\n" not in message


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna
    from optuna.trial import TrialState
    from sqlalchemy import text

    from ibot.optimize import storage as storage_module

    storage = open_storage(StorageUrl(f"sqlite:///{tmp_path / 's.db'}"), heartbeat=1)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()  # RUNNING, as a worker killed right after taking it leaves it: no heartbeat
    trial.suggest_int("x", 0, 100)
    storage_module.fail_silent_trials(study)
    assert study.get_trials()[0].state is TrialState.RUNNING  # too young to judge
    with storage.engine.begin() as conn:  # it started long ago
        conn.execute(text("UPDATE trials SET datetime_start = '2020-01-01 00:00:00'"))
    monkeypatch.setattr(storage_module, "SILENT_MARGIN", 0)
    storage_module.fail_silent_trials(study)
    first, retry = study.get_trials()
    assert first.state is TrialState.FAIL
    assert retry.state is TrialState.WAITING and retry.params == first.params
    assert retry.system_attrs["failed_trial"] == first.number


def test_a_database_failure_during_the_search_is_one_sentence_with_the_password_masked() -> None:
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import OperationalError

    from ibot.optimize.storage import StorageError, storage_errors

    url = StorageUrl(f"postgresql+psycopg://trader:{SECRET}@db.example/optuna")
    lost = OperationalError("SELECT 1", {}, Exception(f"server closed the connection (password {SECRET})"))
    for failure in (lost, StorageInternalError("commit failed")):
        with pytest.raises(StorageError) as err, storage_errors(url):
            try:
                raise lost
            except OperationalError as exc:
                if failure is lost:
                    raise
                raise failure from exc  # Optuna wraps the driver's error
        message = str(err.value)
        assert message.startswith(
            "--storage postgresql+psycopg://trader:***@db.example/optuna: the database failed"
        )
        assert "server closed the connection" in message and SECRET not in message

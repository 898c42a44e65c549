"""ibot.toml's [ibot] table and IBOT_* variables: the records' durability level included."""

from __future__ import annotations

from pathlib import Path

import pytest

from ibot.config import ConfigError, load_settings
from ibot.oms.records import OrderRecords


def test_records_sync_defaults_to_normal_and_is_read_from_the_file_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IBOT_RECORDS_SYNC", raising=False)
    cfg = tmp_path / "ibot.toml"
    cfg.write_text("[ibot]\nout_dir = 'elsewhere'\n")
    assert load_settings(cfg).records_sync == "normal"
    cfg.write_text("[ibot]\nrecords_sync = 'full'\n")
    assert load_settings(cfg).records_sync == "full"
    monkeypatch.setenv("IBOT_RECORDS_SYNC", "normal")
    assert load_settings(cfg).records_sync == "normal"  # the environment wins


def test_a_bad_records_sync_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IBOT_RECORDS_SYNC", raising=False)
    cfg = tmp_path / "ibot.toml"
    cfg.write_text("[ibot]\nrecords_sync = 'sometimes'\n")
    with pytest.raises(ConfigError, match="records_sync"):
        load_settings(cfg)


@pytest.mark.parametrize(("level", "pragma"), [("normal", 1), ("full", 2)])
def test_the_setting_reaches_sqlite(tmp_path: Path, level: str, pragma: int) -> None:
    records = OrderRecords(f"sqlite:///{tmp_path / 'o.sqlite'}", sync=level)
    try:
        records.migrate()
        with records.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == pragma
    finally:
        records.close()

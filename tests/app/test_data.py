"""ibot.app.data called directly: typed results, progress through the caller's callback, nothing printed,
bad input refused before anything is created."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ibot.app.data import StoredSeries, SynthResult, list_store, load_replay, synth_to_store
from ibot.app.progress import ProgressUpdate
from ibot.data.store import BarStore, MissingBarsError, OverlapError
from ibot.model.errors import IbotError


def test_synth_returns_what_it_wrote_reports_progress_and_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[ProgressUpdate] = []
    written = synth_to_store("mcl", 2, "1min", date(2025, 1, 6), 7, tmp_path, on_progress=seen.append)
    assert isinstance(written, SynthResult)
    stored = BarStore(tmp_path).read("MCL", "1min")
    assert (written.symbol, written.bar, written.sessions) == ("MCL", "1min", 2)
    assert written.generated == written.added == written.rows == len(stored) > 1000
    assert written.replaced == 0 and written.path == BarStore(tmp_path).path("MCL", "1min")
    assert written.first == "2025-01-06 00:00:00 UTC" and written.last.endswith(" UTC")
    assert [(u.task, u.done, u.total) for u in seen] == [
        ("synthesizing MCL", 0, None), ("synthesizing MCL", 1, 1)
    ]  # fmt: skip
    assert seen[-1].finished
    assert capsys.readouterr() == ("", "")
    assert list(written.to_dict()) == [
        "symbol", "bar", "sessions", "first", "last", "generated", "added", "replaced", "rows", "path"
    ]  # fmt: skip


def test_synth_over_stored_bars_is_refused_without_replace_and_counted_with_it(tmp_path: Path) -> None:
    first = synth_to_store("MES", 3, data_dir=tmp_path)
    with pytest.raises(OverlapError, match="--replace"):
        synth_to_store("MES", 3, start=date(2025, 1, 7), seed=8, data_dir=tmp_path)
    assert len(BarStore(tmp_path).read("MES", "1min")) == first.rows  # nothing written
    again = synth_to_store("MES", 3, start=date(2025, 1, 7), seed=8, data_dir=tmp_path, replace=True)
    assert again.replaced > 0 and again.rows == first.rows + again.added


@pytest.mark.parametrize(
    ("symbol", "start", "match"),
    [("NOPE", date(2025, 1, 6), "NOPE"), ("MES", date(2199, 12, 20), "--start 2199-12-20")],
)
def test_bad_synth_arguments_create_nothing(tmp_path: Path, symbol: str, start: date, match: str) -> None:
    target = tmp_path / "store"
    with pytest.raises(IbotError, match=match):
        synth_to_store(symbol, 2, start=start, data_dir=target)
    assert not target.exists()


def test_list_store_returns_typed_series_and_marks_a_damaged_file(tmp_path: Path) -> None:
    synth_to_store("MES", 2, data_dir=tmp_path)
    synth_to_store("MNQ", 2, data_dir=tmp_path)
    damaged = BarStore(tmp_path).path("MNQ", "1min")
    with damaged.open("r+b") as handle:
        handle.seek(damaged.stat().st_size // 2)
        handle.write(bytes(range(16)))
    series = {s.symbol: s for s in list_store(tmp_path)}
    assert all(isinstance(s, StoredSeries) for s in series.values())
    assert series["MES"].status == "verified" and not series["MES"].damaged
    assert series["MNQ"].damaged and str(damaged) in (series["MNQ"].problem or "")
    footers = {s.symbol: s.status for s in list_store(tmp_path, verify=False)}
    assert footers["MES"] == "not verified"


def test_list_store_refuses_a_missing_directory_and_creates_it_not(tmp_path: Path) -> None:
    with pytest.raises(IbotError, match="--data-dir"):
        list_store(tmp_path / "typo")
    assert list(tmp_path.iterdir()) == []


def test_load_replay_gives_the_stored_bars_and_names_a_missing_symbol(tmp_path: Path) -> None:
    written = synth_to_store("MES", 1, data_dir=tmp_path)
    bars = load_replay(["mes"], tmp_path)
    assert list(bars) == ["MES"] and len(bars["MES"]) == written.rows
    with pytest.raises(MissingBarsError, match="MCL"):
        load_replay(["MES", "MCL"], tmp_path)

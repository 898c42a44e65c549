"""The Parquet bar store: round trip, merge (newer write wins), atomic replace, validation, listing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ibot.data import store as store_module
from ibot.data.bars import BarFrame, InvalidBarsError
from ibot.data.store import BarStore, MissingBarsError, OverlapError
from ibot.model import Bar, BarDataError, ParameterError, datetime_to_ns

MIN = 60_000_000_000
T0 = datetime_to_ns(datetime(2024, 3, 5, 14, 30, tzinfo=UTC))


def make_bars(first: int, count: int, close_offset: float = 0.0) -> list[Bar]:
    return [
        Bar(T0 + i * MIN, 100.0 + i, 101.0 + i + close_offset, 99.0 + i, 100.5 + i + close_offset, float(i))
        for i in range(first, first + count)
    ]


def test_written_bars_read_back_identical_with_the_documented_columns(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    bars = make_bars(0, 50)
    assert store.write("MES", "1min", bars) == 50
    frame = store.read("MES", "1 min")
    assert frame.bars() == bars
    assert frame.ts.dtype == np.int64 and frame.close.dtype == np.float64
    path = tmp_path / "bars" / "MES" / "1min.parquet"
    schema = pq.read_schema(path)
    assert schema.names == ["ts", "open", "high", "low", "close", "volume"]
    assert [str(t) for t in schema.types] == ["int64"] + ["double"] * 5


def test_a_bar_frame_is_accepted_as_input(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    frame = BarFrame.from_bars(make_bars(0, 5))
    store.write("MCL", "5min", frame)
    assert store.read("MCL", "5min").equals(frame)


def test_appending_overlapping_bars_keeps_ts_sorted_unique_and_the_newer_write_wins(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 10))
    assert store.write("MES", "1min", make_bars(5, 10, close_offset=0.25)) == 15
    stored = store.read("MES", "1min").bars()
    assert stored == make_bars(0, 5) + make_bars(5, 10, close_offset=0.25)


def test_writing_older_bars_later_still_leaves_the_file_sorted(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(20, 5))
    store.write("MES", "1min", make_bars(0, 5))
    store.write("MES", "1min", make_bars(10, 5))
    ts = store.read("MES", "1min").ts
    assert ts.tolist() == sorted(ts.tolist())
    assert len(ts) == 15


def test_read_returns_the_half_open_range_asked_for(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 100))
    start = datetime(2024, 3, 5, 14, 40, tzinfo=UTC)
    part = store.read("MES", "1min", start=start, end=T0 + 20 * MIN)
    assert part.bars() == make_bars(10, 10)
    assert len(store.read("MES", "1min", start=T0 + 1000 * MIN)) == 0


def test_bad_bars_are_rejected_and_nothing_is_written(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 3))
    bad = make_bars(3, 3)
    bad[1] = bad[1]._replace(close=math.nan)
    with pytest.raises(InvalidBarsError, match=r"bars for MES 1min: 1 problem\(s\): row 1 .*close is nan"):
        store.write("MES", "1min", bad)
    assert store.read("MES", "1min").bars() == make_bars(0, 3)
    with pytest.raises(InvalidBarsError, match="empty"):
        store.write("MGC", "1min", [])
    assert not (tmp_path / "bars" / "MGC" / "1min.parquet").exists()


def test_a_crash_while_writing_leaves_the_old_file_whole_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 10))
    folder = tmp_path / "bars" / "MES"
    before = (folder / "1min.parquet").read_bytes()

    def write_half_then_fail(table: object, where: object, **kwargs: object) -> None:
        # Fault injection on the real file system: half the bytes reach the temp file, then the disk fails.
        assert hasattr(where, "write")
        where.write(before[: len(before) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(store_module.pq, "write_table", write_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        store.write("MES", "1min", make_bars(10, 10))
    monkeypatch.undo()
    assert (folder / "1min.parquet").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["1min.parquet"]
    assert store.read("MES", "1min").bars() == make_bars(0, 10)


def test_a_temp_file_left_by_a_killed_writer_is_ignored(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 10))
    (tmp_path / "bars" / "MES" / ".1min.parquet.abc123.tmp").write_bytes(b"PAR1 half a file")
    assert [(e.symbol, e.bar_size) for e in store.list()] == [("MES", "1min")]
    assert len(store.read("MES", "1min")) == 10


def test_list_reports_each_series_with_rows_time_range_and_size(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    assert store.list() == []
    store.write("MES", "1min", make_bars(0, 30))
    store.write("MES", "5min", make_bars(0, 6))
    store.write("MCLZ6", "1min", make_bars(3, 4))
    entries = store.list()
    assert [(e.symbol, e.bar_size, e.rows, e.first_ts, e.last_ts) for e in entries] == [
        ("MCLZ6", "1min", 4, T0 + 3 * MIN, T0 + 6 * MIN),
        ("MES", "1min", 30, T0, T0 + 29 * MIN),
        ("MES", "5min", 6, T0, T0 + 5 * MIN),
    ]
    assert all(e.file_bytes == e.path.stat().st_size > 0 for e in entries)


def test_reading_a_missing_series_names_it_and_what_is_stored(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 3))
    with pytest.raises(MissingBarsError, match=r"no 5min bars stored for MES .*stored bar sizes: 1min"):
        store.read("MES", "5 mins")
    with pytest.raises(MissingBarsError, match="no 1min bars stored for MNQ"):
        store.read("MNQ", "1min")


@pytest.mark.parametrize("symbol", ["../etc", "a/b", "", ".hidden"])
def test_a_symbol_that_is_not_a_safe_file_name_is_refused(tmp_path: Path, symbol: str) -> None:
    with pytest.raises(ParameterError, match="cannot name a store file"):
        BarStore(tmp_path).write(symbol, "1min", make_bars(0, 1))


def test_a_large_series_round_trips_through_several_row_groups(tmp_path: Path) -> None:
    n = 600_000
    rng = np.random.default_rng(0)
    close = 5000 + np.cumsum(rng.integers(-2, 3, n)) * 0.25
    frame = BarFrame.from_arrays(
        T0 + np.arange(n, dtype=np.int64) * MIN, close, close + 0.5, close - 0.5, close, np.ones(n)
    )
    store = BarStore(tmp_path)
    store.write("MES", "1min", frame)
    back = store.read("MES", "1min")
    assert back.equals(frame)
    middle = store.read("MES", "1min", start=T0 + 300_000 * MIN, end=T0 + 300_010 * MIN)
    assert middle.equals(frame[300_000:300_010])
    assert pq.ParquetFile(store.path("MES", "1min")).metadata.num_row_groups > 1


def test_a_file_that_is_not_parquet_is_reported_by_path(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    path = store.path("MES", "1min")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(BarDataError, match=r"1min\.parquet is damaged or not a bar file"):
        store.read("MES", "1min")
    [entry] = store.list()
    assert entry.path == path and entry.rows == 0
    assert entry.problem is not None and "Parquet" in entry.problem


def _damage_middle(path: Path) -> None:
    """Overwrite 16 bytes in the middle of `path` (the data pages; the footer stays readable)."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 2)
        handle.write(bytes(range(16)))


def test_one_unreadable_file_is_named_and_the_other_series_still_list_and_read(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 50))
    store.write("MNQ", "1min", make_bars(0, 40))
    store.path("MES", "1min").write_bytes(b"PAR1 truncated")
    entries = {e.symbol: e for e in store.list()}
    assert entries["MES"].problem is not None and entries["MES"].rows == 0
    assert entries["MNQ"].problem is None and entries["MNQ"].rows == 40
    assert len(store.read("MNQ", "1min")) == 40
    with pytest.raises(BarDataError, match=r"bars/MES/1min\.parquet"):
        store.read("MES", "1min")


def test_a_file_damaged_in_the_middle_fails_verification_and_reading_by_name(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", BarFrame.from_bars(make_bars(0, 20_000)))
    path = store.path("MES", "1min")
    _damage_middle(path)
    [quick] = store.list(verify=False)
    assert quick.problem is None and quick.rows == 20_000  # the footer alone cannot tell
    [checked] = store.list(verify=True)
    assert checked.problem is not None
    with pytest.raises(BarDataError, match=r"1min\.parquet is damaged"):
        store.read("MES", "1min")


def test_verification_passes_a_whole_file(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 500))
    [entry] = store.list(verify=True)
    assert entry.problem is None


def test_write_range_refuses_stored_bars_inside_the_range_and_writes_nothing(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 10))
    before = store.path("MES", "1min").read_bytes()
    with pytest.raises(OverlapError, match=r"already holds 5 MES 1min bars from 2024-03-05 14:35:00 UTC to "
                       r"2024-03-05 14:39:00 UTC.*--replace"):  # fmt: skip
        store.write_range("MES", "1min", make_bars(5, 10), replace=False)
    assert store.path("MES", "1min").read_bytes() == before


def test_write_range_with_replace_counts_replaced_and_added_and_drops_the_old_bars_of_the_range(
    tmp_path: Path,
) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 10))
    # the new series covers minutes 4..12 but has no bar at minute 6: the old minute-6 bar must not survive
    new = [b for b in make_bars(4, 9, close_offset=0.25) if b.ts != T0 + 6 * MIN]
    report = store.write_range("MES", "1min", new, replace=True)
    assert (report.replaced, report.added, report.rows) == (6, 2, 12)
    back = store.read("MES", "1min")
    assert T0 + 6 * MIN not in back.ts.tolist()
    assert back.close.tolist()[4] == new[0].close
    assert len(back) == 12


def test_write_range_after_the_stored_bars_adds_them_all(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.write("MES", "1min", make_bars(0, 10))
    report = store.write_range("MES", "1min", make_bars(10, 5), replace=False)
    assert (report.replaced, report.added, report.rows) == (0, 5, 15)

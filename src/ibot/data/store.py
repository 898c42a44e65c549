"""Parquet bar store: one file per instrument key and bar size, `<root>/bars/<SYMBOL>/<bar_size>.parquet`.

Columns: `ts` int64 (bar open, ns UTC), `open`, `high`, `low`, `close`, `volume` float64; rows sorted by ts,
unique ts. Writes validate first (bad bars never reach disk), merge with what is stored (on equal ts the
newer write wins), and replace the file atomically (temp file + fsync + rename), so a crash leaves either the
old file or the new one, never half a file (a killed writer may leave a hidden `.<name>.*.tmp` beside it,
which reads and `list()` ignore). One writer per file is assumed (the process that collects bars).

Every data page carries a CRC32 checksum, verified on every read, so a file damaged in the middle fails to
read (naming the file) instead of yielding wrong prices. `list()` never fails on one bad file: the entry
carries its `problem`, and the other series are listed; `list(verify=True)` reads every file fully to find
damage the footer does not show. `write_range` refuses to overwrite stored bars unless told to.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ibot.data.bars import BarFrame, bar_size_name, format_time, validate_bars
from ibot.model.errors import BarDataError, IbotError, ParameterError
from ibot.model.market import Bar, datetime_to_ns

_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
SCHEMA = pa.schema(
    [pa.field("ts", pa.int64(), nullable=False, metadata={"unit": "ns", "tz": "UTC", "meaning": "bar open"})]
    + [pa.field(name, pa.float64(), nullable=False) for name in _COLUMNS[1:]]
)
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")
_SUFFIX = ".parquet"
_ROW_GROUP = 256 * 1024  # row-group statistics let a ranged read skip the rest


class MissingBarsError(IbotError, LookupError):
    """No stored bars for a symbol and bar size."""


class OverlapError(IbotError, ValueError):
    """A write that would replace stored bars without being asked to."""


@dataclass(frozen=True, slots=True)
class WriteReport:
    """What a write did: bars added, stored bars replaced (same range, older data), rows in the file after."""

    added: int
    replaced: int
    rows: int


@dataclass(frozen=True, slots=True)
class StoreEntry:
    """One stored series, as `BarStore.list()` reports it (read from file metadata only)."""

    symbol: str
    bar_size: str
    rows: int
    first_ts: int | None
    last_ts: int | None
    file_bytes: int
    path: Path
    problem: str | None = None  # why the file is unreadable (None: readable; verified with list(verify=True))


class BarStore:
    """Bars on disk under `root`, read back as numpy columns."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, symbol: str, bar_size: str) -> Path:
        """The file of `symbol` (an instrument key such as MES or MESZ6) at `bar_size` ("5 mins" -> 5min)."""
        if not _SYMBOL_RE.match(symbol) or ".." in symbol:
            raise ParameterError(
                f"symbol {symbol!r} cannot name a store file (letters, digits, '.', '_', '-', space)"
            )
        return self.root / "bars" / symbol / f"{bar_size_name(bar_size)}{_SUFFIX}"

    # Write --------------------------------------------------------------------------------------------------
    def write(self, symbol: str, bar_size: str, bars: BarFrame | Sequence[Bar]) -> int:
        """Validate `bars` and merge them into the stored series; on equal ts the new row replaces the old.

        Returns the number of rows stored afterwards. Raises InvalidBarsError (nothing written) on bad bars.
        """
        target = self.path(symbol, bar_size)
        new = validate_bars(bars, what=f"bars for {symbol} {bar_size_name(bar_size)}")
        merged = new
        if target.exists():
            old = self._read_file(target)
            merged = _merge(old, new)
        self._write_atomic(target, merged)
        return len(merged)

    def write_range(
        self, symbol: str, bar_size: str, bars: BarFrame | Sequence[Bar], *, replace: bool
    ) -> WriteReport:
        """Store `bars` as the whole content of their time range [first ts, last ts].

        Stored bars inside that range are the overlap: without `replace` they make this an OverlapError naming
        the stored range and the file (nothing written); with `replace` they are removed and `bars` take their
        place (no mix of two series inside one range). Raises InvalidBarsError on bad bars."""
        target = self.path(symbol, bar_size)
        new = validate_bars(bars, what=f"bars for {symbol} {bar_size_name(bar_size)}")
        old = self._read_file(target) if target.exists() else BarFrame.empty()
        inside = (old.ts >= new.ts[0]) & (old.ts <= new.ts[-1])
        replaced = int(inside.sum())
        if replaced and not replace:
            first, last = old.ts[inside][0], old.ts[inside][-1]
            raise OverlapError(
                f"{target} already holds {replaced:,} {symbol} {bar_size_name(bar_size)} bars from "
                f"{format_time(int(first))} to {format_time(int(last))} inside the range to write; "
                "pass --replace to replace them"
            )
        kept = BarFrame(*(getattr(old, n)[~inside] for n in _COLUMNS))
        merged = _merge(kept, new)
        self._write_atomic(target, merged)
        return WriteReport(added=len(new) - replaced, replaced=replaced, rows=len(merged))

    @staticmethod
    def _write_atomic(target: Path, frame: BarFrame) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_arrays(
            [pa.array(getattr(frame, name)) for name in _COLUMNS],
            schema=SCHEMA,
        )
        atomic_write(
            target,
            lambda handle: pq.write_table(
                table, handle, row_group_size=_ROW_GROUP, compression="zstd", write_page_checksum=True
            ),
        )

    # Read ---------------------------------------------------------------------------------------------------
    def read(
        self,
        symbol: str,
        bar_size: str,
        start: datetime | int | None = None,
        end: datetime | int | None = None,
    ) -> BarFrame:
        """Stored bars with start <= ts < end (ns or aware datetimes; None = unbounded), sorted by ts.

        Raises MissingBarsError if nothing is stored for `symbol` at `bar_size`.
        """
        target = self.path(symbol, bar_size)
        if not target.exists():
            have = sorted(p.stem for p in target.parent.glob(f"*{_SUFFIX}")) if target.parent.exists() else []
            hint = f"; stored bar sizes: {', '.join(have)}" if have else ""
            size = bar_size_name(bar_size)
            raise MissingBarsError(f"no {size} bars stored for {symbol} in {self.root}{hint}")
        return self._read_file(target, _as_ns(start), _as_ns(end))

    @staticmethod
    def _read_file(path: Path, start: int | None = None, end: int | None = None) -> BarFrame:
        filters: list[tuple[str, str, int]] = []
        if start is not None:
            filters.append(("ts", ">=", start))
        if end is not None:
            filters.append(("ts", "<", end))
        try:
            table = pq.read_table(
                path, columns=list(_COLUMNS), filters=filters or None, page_checksum_verification=True
            )
        except (pa.ArrowInvalid, KeyError, OSError) as exc:
            raise BarDataError(f"{path} is damaged or not a bar file ({', '.join(_COLUMNS)}): {exc}") from exc
        columns = [table.column(name).to_numpy() for name in _COLUMNS]
        return BarFrame(*columns)

    # Catalogue ----------------------------------------------------------------------------------------------
    def list(self, verify: bool = False) -> list[StoreEntry]:
        """Every stored series with its row count, first/last ts and file size, sorted by symbol, bar size.

        Reads footers only, unless `verify`: then every file is read fully (page checksums, bar rules). A file
        that fails is listed with its `problem` (rows 0 if even its footer is unreadable); never raises for
        one bad file."""
        base = self.root / "bars"
        entries: list[StoreEntry] = []
        if not base.exists():
            return entries
        for path in sorted(base.glob(f"*/*{_SUFFIX}")):
            try:
                meta = pq.ParquetFile(path).metadata
            except (pa.ArrowInvalid, OSError) as exc:
                entries.append(
                    StoreEntry(path.parent.name, path.stem, 0, None, None, _size(path), path, _why(exc))
                )
                continue
            first_ts = last_ts = None
            if meta.num_rows:
                ts_col = meta.schema.names.index("ts")
                first_stats = meta.row_group(0).column(ts_col).statistics
                last_stats = meta.row_group(meta.num_row_groups - 1).column(ts_col).statistics
                first_ts = int(first_stats.min) if first_stats is not None else None
                last_ts = int(last_stats.max) if last_stats is not None else None
            entries.append(
                StoreEntry(
                    symbol=path.parent.name,
                    bar_size=path.stem,
                    rows=meta.num_rows,
                    first_ts=first_ts,
                    last_ts=last_ts,
                    file_bytes=_size(path),
                    path=path,
                    problem=self.verify_file(path) if verify else None,
                )
            )
        return entries

    def verify_file(self, path: Path) -> str | None:
        """Why `path` is not a good bar file (damaged page, wrong columns, broken bar rules), else None."""
        try:
            frame = self._read_file(path)
            if len(frame):
                validate_bars(frame, what=str(path))
        except (BarDataError, pa.ArrowInvalid, OSError) as exc:
            return _why(exc)
        return None


def _merge(old: BarFrame, new: BarFrame) -> BarFrame:
    """Union of two sorted, unique-ts frames; on equal ts the row of `new` is kept."""
    if len(old) == 0:
        return new
    if new.ts[0] > old.ts[-1]:  # the common case: appending later bars
        return BarFrame(*(np.concatenate([getattr(old, n), getattr(new, n)]) for n in _COLUMNS))
    ts = np.concatenate([old.ts, new.ts])
    order = np.argsort(ts, kind="stable")  # stable: for equal ts the old row comes first, then the new one
    ts_sorted = ts[order]
    keep_last = np.r_[ts_sorted[1:] != ts_sorted[:-1], True]
    rows = order[keep_last]
    return BarFrame(*(np.concatenate([getattr(old, n), getattr(new, n)])[rows] for n in _COLUMNS))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _why(exc: BaseException) -> str:
    """An exception as one short line for a listing."""
    text = " ".join(str(exc).split())
    return text[:200] + ("..." if len(text) > 200 else "")


def _as_ns(value: datetime | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return datetime_to_ns(value)


def atomic_write(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Replace `target` with what `write(handle)` writes, or leave it as it was: a temporary file beside it,
    flushed and fsynced, renamed over it, and the rename made durable. A killed writer may leave a hidden
    `.<name>.*.tmp` beside the target (readers ignore it); an exception removes it."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

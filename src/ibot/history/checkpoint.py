"""Download progress that survives a kill: which ranges of which stored series are done.

One SQLite file, `<data dir>/history/progress.sqlite`, with `synchronous=FULL` (every commit is on disk before
it returns). The downloader marks a range done only after its bars are in the bar store (which fsyncs its
file and directory), so a process killed at any point either has the range's bars and its mark, or has the
bars without the mark (the range is fetched again and merged: same bars), never a mark without the bars.

Per series it also keeps the window the downloads asked for and the server time of the last download, so the
gap report knows which sessions should hold bars.
"""

from __future__ import annotations

import bisect
import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Checkpoint", "DoneRange", "SeriesWindow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS done (
    series TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    outcome TEXT NOT NULL, bars INTEGER NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (series, start_ns, end_ns));
CREATE TABLE IF NOT EXISTS sent (
    at REAL NOT NULL, identity TEXT NOT NULL, contract TEXT NOT NULL, weight INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS windows (
    series TEXT PRIMARY KEY, first_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL, asof_ns INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class DoneRange:
    start_ns: int
    end_ns: int
    outcome: str  # "bars" (stored) or "no_data" (IB said the range has none)
    bars: int


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    """The span downloads of one series asked for, and the server time of the latest (sessions after it could
    not be complete)."""

    first_ns: int
    last_ns: int
    asof_ns: int


class Checkpoint:
    """The progress file of one data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._cache: dict[str, tuple[list[int], list[int]]] = {}

    @classmethod
    def in_data_dir(cls, root: Path) -> Checkpoint:
        return cls(root / "history" / "progress.sqlite")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- done ranges ---------------------------------------------------------------------------------------
    def mark_done(self, series: str, start_ns: int, end_ns: int, outcome: str, bars: int) -> None:
        """Record [start_ns, end_ns) of `series` as done (durably, before returning)."""
        at = datetime.now(UTC).isoformat(timespec="seconds")
        self._db.execute(
            "INSERT OR REPLACE INTO done VALUES (?, ?, ?, ?, ?, ?)",
            (series, start_ns, end_ns, outcome, bars, at),
        )
        self._cache.pop(series, None)

    def mark_done_many(self, ranges: list[tuple[str, int, int, int]], outcome: str) -> None:
        """Record several (series, start_ns, end_ns, bars) as done in one durable transaction."""
        if not ranges:
            return
        at = datetime.now(UTC).isoformat(timespec="seconds")
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO done VALUES (?, ?, ?, ?, ?, ?)",
                [(s, a, b, outcome, n, at) for s, a, b, n in ranges],
            )
        for s, *_ in ranges:
            self._cache.pop(s, None)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def done(self, series: str) -> list[DoneRange]:
        rows = self._db.execute(
            "SELECT start_ns, end_ns, outcome, bars FROM done WHERE series = ? ORDER BY start_ns", (series,)
        ).fetchall()
        return [DoneRange(*row) for row in rows]

    def covers(self, series: str, start_ns: int, end_ns: int) -> bool:
        """True when [start_ns, end_ns) lies inside the union of the series' done ranges."""
        starts, ends = self._merged(series)
        i = bisect.bisect_right(starts, start_ns) - 1
        return i >= 0 and ends[i] >= end_ns

    def _merged(self, series: str) -> tuple[list[int], list[int]]:
        found = self._cache.get(series)
        if found is None:
            starts: list[int] = []
            ends: list[int] = []
            for r in self.done(series):
                if ends and r.start_ns <= ends[-1]:
                    ends[-1] = max(ends[-1], r.end_ns)
                else:
                    starts.append(r.start_ns)
                    ends.append(r.end_ns)
            found = self._cache[series] = (starts, ends)
        return found

    # --- requests sent (pacing across runs) -----------------------------------------------------------------
    def note_sent(self, at: float, identity: str, contract: str, weight: int) -> int:
        """A historical request went out at wall time `at` (IB paces the session: the next run counts it);
        returns its row for `note_answered`."""
        cur = self._db.execute("INSERT INTO sent VALUES (?, ?, ?, ?)", (at, identity, contract, weight))
        return int(cur.lastrowid or 0)

    def note_answered(self, row: int, at: float) -> None:
        """The request of `row` was answered at wall time `at`: the next run counts it from then (IB checked
        it at some time before its answer; see ibot.history.pacing)."""
        self._db.execute("UPDATE sent SET at = max(at, ?) WHERE rowid = ?", (at, row))

    def sent_since(self, since: float) -> list[tuple[float, str, str, int]]:
        """Requests sent at wall time `since` or later, oldest first; older ones are forgotten."""
        self._db.execute("DELETE FROM sent WHERE at < ?", (since,))
        rows = self._db.execute(
            "SELECT at, identity, contract, weight FROM sent WHERE at >= ? ORDER BY at", (since,)
        ).fetchall()
        return [(float(a), str(i), str(c), int(w)) for a, i, c, w in rows]

    # --- windows -------------------------------------------------------------------------------------------
    def note_window(self, series: str, first_ns: int, last_ns: int, asof_ns: int) -> None:
        """Widen the series' recorded window to include [first_ns, last_ns); remember the server time."""
        self._db.execute(
            "INSERT INTO windows VALUES (?, ?, ?, ?) ON CONFLICT(series) DO UPDATE SET "
            "first_ns = min(first_ns, excluded.first_ns), last_ns = max(last_ns, excluded.last_ns), "
            "asof_ns = max(asof_ns, excluded.asof_ns)",
            (series, first_ns, last_ns, asof_ns),
        )

    def window(self, series: str) -> SeriesWindow | None:
        row = self._db.execute(
            "SELECT first_ns, last_ns, asof_ns FROM windows WHERE series = ?", (series,)
        ).fetchone()
        return SeriesWindow(*row) if row else None

    def series(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT series FROM windows ORDER BY series").fetchall()]

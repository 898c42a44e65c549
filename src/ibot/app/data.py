"""Data services: seeded synthetic bars into the Parquet store, what the store holds, and the stored 1-min
bars the simulator replays. Plain synchronous functions (file work only); they print nothing and return
typed results whose `to_dict()` is the `--json` payload."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ibot.app.progress import ProgressCallback, ProgressUpdate, report
from ibot.config import ensure_directory, existing_directory, load_settings
from ibot.data.bars import bar_size_name, format_time
from ibot.data.store import BarStore, StoreEntry
from ibot.data.synth import synth_bars
from ibot.model import catalog
from ibot.model.errors import ParameterError
from ibot.model.market import Bar

__all__ = [
    "SOURCE_BAR",
    "StoredSeries",
    "SynthResult",
    "bar_store",
    "data_root",
    "list_store",
    "load_replay",
    "synth_to_store",
]

SOURCE_BAR = "1min"  # what synthetic markets and replays are made of; backtests build larger bars from it
DEFAULT_SYNTH_START = date(2025, 1, 6)


@dataclass(frozen=True, slots=True)
class SynthResult:
    """What `synth_to_store` wrote: the generated range and how the file changed (added, replaced, rows)."""

    symbol: str
    bar: str
    sessions: int
    first: str  # UTC, the CLI's one time format
    last: str
    generated: int
    added: int
    replaced: int
    rows: int  # bars in the file afterwards
    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "bar": self.bar,
            "sessions": self.sessions,
            "first": self.first,
            "last": self.last,
            "generated": self.generated,
            "added": self.added,
            "replaced": self.replaced,
            "rows": self.rows,
            "path": str(self.path),
        }


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """One stored series: `status` is "verified", "not verified" (footers only) or "damaged" (`problem`
    says why and names the file)."""

    symbol: str
    bar_size: str
    rows: int
    first: str | None
    last: str | None
    status: str
    problem: str | None
    file_bytes: int
    path: Path

    @property
    def damaged(self) -> bool:
        return self.problem is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "bar_size": self.bar_size,
            "rows": self.rows,
            "first": self.first,
            "last": self.last,
            "status": self.status,
            "problem": self.problem,
            "file_bytes": self.file_bytes,
            "path": str(self.path),
        }


def data_root(data_dir: Path | None) -> tuple[Path, str]:
    """The data directory and how to name it in an error (the option, or where the default comes from)."""
    if data_dir is not None:
        return data_dir, "--data-dir"
    return load_settings().data_dir, "data directory (IBOT_DATA_DIR, ibot.toml)"


def bar_store(data_dir: Path | None, *, create: bool) -> BarStore:
    """The bar store at `data_dir` (the `--data-dir` option) or the configured data directory.

    `create` (a command that writes): the directory is made if missing; otherwise (a command that reads) a
    missing `--data-dir` is an error, and nothing is created. A file where a directory belongs is an error."""
    root, what = data_root(data_dir)
    if create:
        ensure_directory(root, what)
    elif data_dir is not None or root.exists():
        existing_directory(root, what)
    return BarStore(root)


def _check_synth_years(start: date, days: int) -> None:
    """Synthetic sessions follow the exchanges' holiday calendars; refuse a range they do not cover."""
    from ibot.model.calendar import MAX_YEAR, MIN_YEAR

    # `days` trading sessions span at most ~7/5 as many calendar days, plus the holidays between them.
    end = start.toordinal() + days * 7 // 5 + 21
    if start.year < MIN_YEAR or end > date(MAX_YEAR, 12, 31).toordinal():
        raise ParameterError(
            f"--start {start.isoformat()} with --days {days}: synthetic sessions follow the exchange "
            f"calendars, which cover {MIN_YEAR}-01-01..{MAX_YEAR}-12-31"
        )


def synth_to_store(
    symbol: str,
    days: int,
    bar: str = SOURCE_BAR,
    start: date = DEFAULT_SYNTH_START,
    seed: int = 7,
    data_dir: Path | None = None,
    *,
    replace: bool = False,
    on_progress: ProgressCallback | None = None,
) -> SynthResult:
    """Generate `days` trading sessions of seeded synthetic bars for `symbol` from `start` into the store.

    Stored bars inside the generated range are never overwritten silently: without `replace` that is an
    OverlapError naming the stored range; with it they are replaced, and the result counts them. Bad
    arguments (symbol, bar size, years outside the calendars) are refused before anything is created."""
    inst = catalog.get_instrument(symbol)
    _check_synth_years(start, days)
    task = f"synthesizing {inst.symbol}"
    report(on_progress, ProgressUpdate(task))
    frame = synth_bars(inst, datetime(start.year, start.month, start.day, tzinfo=UTC), days, bar, seed=seed)
    store = bar_store(data_dir, create=True)  # after the arguments proved good: bad input creates nothing
    written = store.write_range(inst.symbol, bar, frame, replace=replace)
    report(on_progress, ProgressUpdate(task, 1, 1))
    return SynthResult(
        symbol=inst.symbol,
        bar=bar_size_name(bar),
        sessions=days,
        first=format_time(int(frame.ts[0])),
        last=format_time(int(frame.ts[-1])),
        generated=len(frame),
        added=written.added,
        replaced=written.replaced,
        rows=written.rows,
        path=store.path(inst.symbol, bar),
    )


def list_store(data_dir: Path | None = None, *, verify: bool = True) -> list[StoredSeries]:
    """One entry per stored series; with `verify` every file is read fully and a damaged one is marked (its
    `problem` says why). A missing `--data-dir` is an error; nothing is created."""
    return [_series(e, verify) for e in bar_store(data_dir, create=False).list(verify=verify)]


def _series(e: StoreEntry, verify: bool) -> StoredSeries:
    return StoredSeries(
        symbol=e.symbol,
        bar_size=e.bar_size,
        rows=e.rows,
        first=format_time(e.first_ts) if e.first_ts is not None else None,
        last=format_time(e.last_ts) if e.last_ts is not None else None,
        status="damaged" if e.problem else ("verified" if verify else "not verified"),
        problem=e.problem,
        file_bytes=e.file_bytes,
        path=e.path,
    )


def load_replay(symbols: list[str], data_dir: Path | None = None) -> dict[str, list[Bar]]:
    """The stored 1-min bars of each symbol for the simulator to replay (MissingBarsError names a gap)."""
    store = bar_store(data_dir, create=False)
    out: dict[str, list[Bar]] = {}
    for name in symbols:
        inst = catalog.get_instrument(name)
        out[inst.symbol] = store.read(inst.symbol, SOURCE_BAR).bars()
    return out

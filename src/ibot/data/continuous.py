"""Continuous futures series: the months of a product spliced at their rolls, adjusted, with every roll kept.

A series is built from per-contract bars (the Parquet store's `MESH4`-style keys) along the chain of listed
months; where one month hands over to the next is ibot.data.rolls' rule (the first bar, on or after the roll
day, where both months have a price). Each bar keeps the month it came from (`contract`) and what was done to
its prices (`adjustment`), and the roll records are stored with it, so the series can be audited and rebuilt.

Adjustments (gap of a roll = to_price - from_price, both months' closes at the roll bar):
- backward-spread (Panama): the last segment is raw; each earlier one is shifted by the sum of the gaps of
  all later rolls. `adjustment` = that shift in price units (adjusted = raw + adjustment).
- forward-spread: the first segment is raw; each later one is shifted by minus the sum of the earlier gaps.
- backward-ratio: the last segment is raw; each earlier one is multiplied by the product of the later rolls'
  to_price / from_price. `adjustment` = that factor (adjusted = raw x adjustment). These prices are floats
  off the tick grid (a ratio of two grid prices is not a tick multiple): good for signals, not for P&L.
- none: the months spliced as they traded; `adjustment` is 0.

Spread adjustments are exact: prices are shifted in integer ticks and converted once. A series grows
incrementally (`extend_series`): bars after the last stored one are appended, and a new roll re-adjusts the
stored rows with one vectorized shift (or factor), equal to a full rebuild bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from ibot.data.bars import BarFrame, bar_size_name, format_time
from ibot.data.rolls import (
    ContractBars,
    MissingContractError,
    Roll,
    find_roll,
    roll_day,
    trading_day_start,
)
from ibot.data.store import atomic_write
from ibot.model import catalog
from ibot.model.catalog import RollAnchor, RollRule
from ibot.model.errors import BarDataError, IbotError, ParameterError
from ibot.model.instruments import Instrument

__all__ = [
    "Adjust",
    "ContinuousError",
    "ContinuousSeries",
    "ContinuousStore",
    "build_series",
    "current_month",
    "extend_series",
    "parse_adjust",
    "rule_from_dict",
    "rule_to_dict",
]

_META_KEY = b"ibot.continuous"
_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


class ContinuousError(IbotError, ValueError):
    """A stored series that cannot be extended as asked (another roll rule)."""


class Adjust(StrEnum):
    BACKWARD_SPREAD = "backward-spread"
    BACKWARD_RATIO = "backward-ratio"
    FORWARD_SPREAD = "forward-spread"
    NONE = "none"

    @property
    def is_spread(self) -> bool:
        return self in (Adjust.BACKWARD_SPREAD, Adjust.FORWARD_SPREAD)


def parse_adjust(text: str | Adjust, option: str = "--adjust") -> Adjust:
    """The adjustment named `text`; ParameterError listing the choices otherwise."""
    try:
        return Adjust(str(text).strip().lower())
    except ValueError:
        choices = ", ".join(a.value for a in Adjust)
        raise ParameterError(f"{option} {text!r} is not an adjustment; choose one of {choices}") from None


@dataclass(frozen=True, slots=True, eq=False)
class ContinuousSeries:
    """Adjusted bars of a product with, per bar, its month (`contract_ids` into `contracts`) and its
    `adjustment`; the rolls in time order; `note` says why the series ends before the stored data does."""

    symbol: str
    bar: str
    adjust: Adjust
    bars: BarFrame
    contract_ids: npt.NDArray[np.int32]
    contracts: tuple[str, ...]
    adjustment: npt.NDArray[np.float64]
    rolls: tuple[Roll, ...]
    last_trade: dict[str, str] = field(default_factory=dict)  # month -> last trade date and its source
    note: str | None = None

    def __len__(self) -> int:
        return len(self.bars)

    @property
    def contract(self) -> npt.NDArray[np.str_]:
        """The month of each bar, as strings."""
        return np.asarray(self.contracts, dtype=np.str_)[self.contract_ids]

    def segments(self) -> list[tuple[str, int, int]]:
        """(month, first row, row after the last) of each run of bars from one month, in order."""
        ids = self.contract_ids
        if not len(ids):
            return []
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], len(ids)]
        return [(self.contracts[ids[s]], int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


# --- building ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Piece:
    contract: str
    bars: BarFrame


def _stitch(
    chain: Sequence[ContractBars],
    start: int | None,
    end: int | None,
    rule: RollRule | None,
    need_through_end: bool,
) -> tuple[list[_Piece], list[Roll], str | None]:
    """Cut the chain into one piece per month and find the rolls between them (ibot.data.rolls' rule)."""
    pieces: list[_Piece] = []
    rolls: list[Roll] = []
    lo = start if start is not None else np.iinfo(np.int64).min
    note = None
    for k, month in enumerate(chain):
        roll = None
        if k + 1 < len(chain):
            found = find_roll(month, chain[k + 1], lo, rule)
            roll = found.roll
            stop = roll.ts + 1 if roll is not None else found.pending_from
            if roll is None:
                note = (
                    f"the roll {month.key} -> {chain[k + 1].key} is not in the data yet: the series stops "
                    f"before {format_time(found.pending_from)}"
                )
        else:
            day = roll_day(month, rule)
            stop = trading_day_start(day)
            last = month.bars.ts[-1] if len(month.bars) else None
            if end is not None and stop < end and need_through_end:
                raise MissingContractError(
                    f"the month after {month.key} is needed from {day.isoformat()} ({month.key}'s roll day) "
                    f"to reach {format_time(end)}, and its bars are not stored"
                )
            if last is not None and last >= stop and (end is None or end > stop):
                note = (
                    f"{month.key} rolls on {day.isoformat()} and the month after it is not stored: the "
                    f"series stops before {format_time(stop)}"
                )
        if end is not None and stop > end:
            stop, roll, note = end, None, None
        pieces.append(_Piece(month.key, month.bars.between(lo, stop)))
        if roll is None:
            break
        rolls.append(roll)
        lo = roll.ts + 1
    return pieces, rolls, note


def _gap_ticks(roll: Roll, inst: Instrument) -> int:
    return inst.to_ticks(roll.to_price) - inst.to_ticks(roll.from_price)


def _piece_adjustments(
    adjust: Adjust, rolls: Sequence[Roll], inst: Instrument, base: float
) -> list[float | int]:
    """Per piece (one more than `rolls`): a shift in ticks (spread, none) or a factor (ratio).

    `base` is the adjustment of the first piece before these rolls (forward-spread continues from it)."""
    n = len(rolls) + 1
    if adjust is Adjust.NONE:
        return [0] * n
    if adjust is Adjust.BACKWARD_SPREAD:
        gaps = [_gap_ticks(r, inst) for r in rolls]
        return [sum(gaps[k:]) for k in range(n)]
    if adjust is Adjust.FORWARD_SPREAD:
        gaps = [_gap_ticks(r, inst) for r in rolls]
        return [int(base) - sum(gaps[:k]) for k in range(n)]
    # backward-ratio: each roll multiplies every earlier piece's factor, in time order (the order an
    # incremental update applies them, so both give the same floats)
    factors = [1.0] * n
    for j, r in enumerate(rolls):
        ratio = r.to_price / r.from_price
        for k in range(j + 1):
            factors[k] *= ratio
    return factors


def _assemble(
    pieces: Sequence[_Piece], adjs: Sequence[float | int], adjust: Adjust, inst: Instrument
) -> tuple[BarFrame, list[tuple[str, int]], npt.NDArray[np.float64]]:
    """Adjusted bars of the pieces, the month of each row (one run per piece), the adjustment of each row."""
    to_price = _TickPrices(inst)
    cols: dict[str, list[npt.NDArray[Any]]] = {n: [] for n in _COLUMNS}
    months: list[tuple[str, int]] = []
    adjustment: list[npt.NDArray[np.float64]] = []
    for piece, adj in zip(pieces, adjs, strict=True):
        b = piece.bars
        cols["ts"].append(b.ts)
        cols["volume"].append(b.volume)
        for name in ("open", "high", "low", "close"):
            raw = getattr(b, name)
            if adjust is Adjust.BACKWARD_RATIO:
                cols[name].append(to_price(to_price.ticks(raw)) * float(adj))
            else:
                cols[name].append(to_price(to_price.ticks(raw) + int(adj)))
        months.append((piece.contract, len(b)))
        value = float(adj) if adjust is Adjust.BACKWARD_RATIO else inst.from_ticks(int(adj))
        adjustment.append(np.full(len(b), value))
    frame = BarFrame.from_arrays(*(np.concatenate(cols[n]) if cols[n] else np.empty(0) for n in _COLUMNS))
    return frame, months, np.concatenate(adjustment) if adjustment else np.empty(0)


def build_series(
    symbol: str,
    bar: str,
    adjust: Adjust,
    chain: Sequence[ContractBars],
    start: int | None = None,
    end: int | None = None,
    rule: RollRule | None = None,
    need_through_end: bool = False,
) -> ContinuousSeries:
    """The series of `chain` (consecutive listed months, oldest first) over [start, end), built in full."""
    if not chain:
        raise MissingContractError(f"{symbol}: no months to build a {bar_size_name(bar)} series from")
    inst = catalog.get_instrument(symbol)
    pieces, rolls, note = _stitch(chain, start, end, rule, need_through_end)
    adjs = _piece_adjustments(adjust, rolls, inst, 0)
    frame, months, adjustment = _assemble(pieces, adjs, adjust, inst)
    keys, ids = _encode((), np.empty(0, dtype=np.int32), months)
    return ContinuousSeries(
        inst.symbol, bar_size_name(bar), adjust, frame, ids, keys, adjustment, tuple(rolls),
        _last_trades(chain), note,
    )  # fmt: skip


def extend_series(
    series: ContinuousSeries, chain: Sequence[ContractBars], rule: RollRule | None = None
) -> ContinuousSeries:
    """`series` grown by the bars of `chain` after its last bar (`chain` starts with the series' last month).

    The stored rows are never rebuilt from raw bars: a new roll shifts them (spread) or scales them (ratio)
    by its gap, in one vectorized step per roll; the result equals `build_series` over the whole chain."""
    if not len(series):
        return build_series(series.symbol, series.bar, series.adjust, chain, rule=rule)
    inst = catalog.get_instrument(series.symbol)
    month, base_adj = current_month(series, inst)
    if not chain or chain[0].key != month:
        raise ParameterError(f"extending a series whose current month is {month} needs {month} first")
    adjust = series.adjust
    pieces, rolls, note = _stitch(chain, int(series.bars.ts[-1]) + 1, None, rule, False)
    adjs = _piece_adjustments(adjust, rolls, inst, base_adj)
    if adjust is Adjust.FORWARD_SPREAD or adjust is Adjust.NONE:
        old_bars, old_adj = series.bars, series.adjustment
    else:
        old_bars, old_adj = _readjust(series, rolls, inst)
    new_bars, months, new_adj = _assemble(pieces, adjs, adjust, inst)
    frame = BarFrame(*(np.concatenate([getattr(old_bars, n), getattr(new_bars, n)]) for n in _COLUMNS))
    keys, ids = _encode(series.contracts, series.contract_ids, months)
    last_trade = {**series.last_trade, **_last_trades(chain)}
    return ContinuousSeries(
        series.symbol, series.bar, adjust, frame, ids, keys, np.concatenate([old_adj, new_adj]),
        (*series.rolls, *rolls), last_trade, note,
    )  # fmt: skip


def current_month(series: ContinuousSeries, inst: Instrument) -> tuple[str, float | int]:
    """The month the series continues in, and that month's adjustment (ticks; a factor for ratio): the last
    bar's month, or the new month when the last bar is a roll bar (the series rolled at its close)."""
    last = series.contracts[series.contract_ids[-1]]
    adjust = series.adjust
    if adjust is Adjust.BACKWARD_RATIO:
        base: float | int = 1.0
    elif adjust is Adjust.FORWARD_SPREAD:
        base = inst.to_ticks(float(series.adjustment[-1]))
    else:
        base = 0
    if series.rolls and series.rolls[-1].ts == int(series.bars.ts[-1]):
        roll = series.rolls[-1]
        if adjust is Adjust.FORWARD_SPREAD:
            base = int(base) - _gap_ticks(roll, inst)
        return roll.to_contract, base
    return last, base


def _readjust(
    series: ContinuousSeries, rolls: Sequence[Roll], inst: Instrument
) -> tuple[BarFrame, npt.NDArray[np.float64]]:
    """The stored rows after new rolls in a backward mode: every row shifted by the sum of the new gaps
    (exact, in ticks), or its factor multiplied by each new ratio in turn and its raw prices scaled anew."""
    b = series.bars
    if not rolls:
        return b, series.adjustment
    to_price = _TickPrices(inst)
    if series.adjust is Adjust.BACKWARD_SPREAD:
        shift = sum(_gap_ticks(r, inst) for r in rolls)
        o, h, lo, c = (
            to_price(to_price.ticks(getattr(b, n)) + shift) for n in ("open", "high", "low", "close")
        )
        adjustment = to_price(to_price.ticks(series.adjustment) + shift)
        return BarFrame(b.ts, o, h, lo, c, b.volume), adjustment
    factor = series.adjustment.copy()
    raw = [to_price.ticks(getattr(b, n) / factor) for n in ("open", "high", "low", "close")]
    for r in rolls:
        factor *= r.to_price / r.from_price
    o, h, lo, c = (to_price(t) * factor for t in raw)
    return BarFrame(b.ts, o, h, lo, c, b.volume), factor


def _encode(
    keys: Sequence[str], ids: npt.NDArray[np.int32], runs: Sequence[tuple[str, int]]
) -> tuple[tuple[str, ...], npt.NDArray[np.int32]]:
    """Month ids of `ids` (into `keys`) followed by runs of (month, rows), with the keys they need."""
    out = list(keys)
    parts = [ids]
    for month, n in runs:
        if month not in out:
            out.append(month)
        parts.append(np.full(n, out.index(month), dtype=np.int32))
    return tuple(out), np.concatenate(parts).astype(np.int32)


def _last_trades(chain: Sequence[ContractBars]) -> dict[str, str]:
    return {c.key: f"{c.last_trade.isoformat()} ({c.source})" for c in chain}


class _TickPrices:
    """Prices <-> integer ticks of one instrument, vectorized; a price from ticks is the float nearest the
    exact grid value (tick = p/q: ticks x p / q, one rounding), as Instrument.from_ticks gives it."""

    def __init__(self, inst: Instrument) -> None:
        tick = Fraction(inst.tick_size)
        self._num, self._den = float(tick.numerator), float(tick.denominator)
        self._tick = float(inst.tick_size)

    def ticks(self, prices: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        return np.rint(np.asarray(prices, dtype=np.float64) / self._tick).astype(np.int64)

    def __call__(self, ticks: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        scaled = np.asarray(ticks).astype(np.float64) * self._num
        return scaled / self._den if self._den != 1.0 else scaled


def rule_to_dict(rule: RollRule | None, symbol: str) -> dict[str, Any]:
    rule = rule or catalog.default_roll_rule(symbol)
    return {"business_days_before": rule.business_days_before_expiry, "anchor": rule.anchor.value}


def rule_from_dict(data: dict[str, Any]) -> RollRule:
    return RollRule(int(data["business_days_before"]), RollAnchor(data["anchor"]))


# --- the stored series ----------------------------------------------------------------------------------


class ContinuousStore:
    """Series on disk: `<root>/continuous/<SYMBOL>/<bar>/<adjust>/series.parquet` (ts, OHLCV, contract,
    adjustment; the roll records, roll rule and last trade dates in the file's metadata, so one atomic
    rename keeps them together) and `rolls.json` beside it (the same rolls, for people and tools)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def folder(self, symbol: str, bar: str, adjust: Adjust) -> Path:
        return self.root / "continuous" / symbol.upper() / bar_size_name(bar) / adjust.value

    def read(self, symbol: str, bar: str, adjust: Adjust) -> tuple[ContinuousSeries, dict[str, Any]] | None:
        """The stored series and its roll rule (as a dict), or None when none is stored."""
        path = self.folder(symbol, bar, adjust) / "series.parquet"
        if not path.exists():
            return None
        try:
            table = pq.read_table(path, page_checksum_verification=True)
            meta = json.loads(table.schema.metadata[_META_KEY])
        except (pa.ArrowInvalid, OSError, KeyError, ValueError, TypeError) as exc:
            raise BarDataError(f"{path} is damaged or not a continuous series: {exc}") from None
        frame = BarFrame(*(table.column(n).to_numpy() for n in _COLUMNS))
        months = table.column("contract").unify_dictionaries().combine_chunks()
        keys = tuple(months.dictionary.to_pylist())
        ids = months.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        series = ContinuousSeries(
            meta["symbol"], meta["bar"], Adjust(meta["adjust"]), frame, ids, keys,
            table.column("adjustment").to_numpy(), tuple(Roll.from_dict(r) for r in meta["rolls"]),
            dict(meta["last_trade"]), meta.get("note"),
        )  # fmt: skip
        return series, meta["rule"]

    def write(self, series: ContinuousSeries, rule: dict[str, Any]) -> Path:
        folder = self.folder(series.symbol, series.bar, series.adjust)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "symbol": series.symbol,
            "bar": series.bar,
            "adjust": series.adjust.value,
            "rule": rule,
            "rolls": [r.to_dict() for r in series.rolls],
            "last_trade": series.last_trade,
            "note": series.note,
        }
        b = series.bars
        contract = pa.DictionaryArray.from_arrays(
            pa.array(series.contract_ids, pa.int32()), pa.array(list(series.contracts), pa.string())
        )
        table = pa.table(
            {
                "ts": pa.array(b.ts, pa.int64()),
                **{n: pa.array(getattr(b, n), pa.float64()) for n in _COLUMNS[1:]},
                "contract": contract,
                "adjustment": pa.array(series.adjustment, pa.float64()),
            }
        ).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
        target = folder / "series.parquet"
        atomic_write(
            target, lambda fh: pq.write_table(table, fh, compression="zstd", write_page_checksum=True)
        )
        rolls_text = json.dumps({"rule": rule, "rolls": meta["rolls"]}, indent=2).encode()
        atomic_write(folder / "rolls.json", lambda fh: fh.write(rolls_text))
        return target

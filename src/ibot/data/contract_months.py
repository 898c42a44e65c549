"""Per-contract bars from the store, as the chain of months a continuous series is built from.

A month is stored under its IB local symbol (`<root>/bars/MESH4/<bar>.parquet`), with IB's contract details
beside it in `contract.json` ({conId, localSymbol, symbol, lastTradeDate YYYY-MM-DD, exchange, multiplier}).
A key names its year by one digit: the sidecar's last trade date places it, else the file's first bar (the
first year ending in that digit whose month had not expired then). Without a sidecar the catalog's last
trade date is used. The chain is every listed month from the first to the last needed: a month without
usable bars is a MissingContractError naming it and its neighbours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ibot.data.bars import BarFrame, bar_size_name, format_time, parse_interval, resample_bars
from ibot.data.rolls import ContractBars, MissingContractError
from ibot.data.store import BarStore
from ibot.model import catalog
from ibot.model.catalog import MONTH_CODES, RollRule
from ibot.model.errors import BarDataError
from ibot.model.instruments import Instrument

__all__ = ["load_chain", "next_month"]


def _month_key_re(symbol: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(symbol)}([{MONTH_CODES}])(\d)$")


def _sidecar(store: BarStore, key: str) -> dict[str, Any] | None:
    path = store.root / "bars" / key / "contract.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        # `ibot history download` writes YYYY-MM-DD; IB's own form YYYYMMDD is read too
        data["lastTradeDate"] = date.fromisoformat(str(data["lastTradeDate"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BarDataError(
            f"{path}: not a contract sidecar with a lastTradeDate (YYYY-MM-DD or YYYYMMDD) ({exc})"
        ) from None
    return data


def _read_bars(store: BarStore, key: str, bar: str, start: int | None, end: int | None) -> BarFrame | None:
    """`key`'s bars at `bar`, read at that size or built from the largest stored size dividing it; None
    when nothing usable is stored."""
    folder = store.root / "bars" / key
    stored = sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []
    want = parse_interval(bar)
    usable = [s for s in stored if want % parse_interval(s) == 0]
    if not usable:
        return None
    size = max(usable, key=parse_interval)
    frame = store.read(key, size, start, end)
    return frame if size == bar_size_name(bar) else resample_bars(frame, bar)


def _contract_of(symbol: str, code: str, digit: int, anchor: date) -> Instrument:
    """The month of a one-digit-year key: the first year ending in `digit` whose month has not expired on
    `anchor` (the first bar's day, or IB's last trade date)."""
    month = MONTH_CODES.index(code) + 1
    year = anchor.year - 1 - (anchor.year - 1 - digit) % 10
    while catalog.last_trade_date(symbol, year, month) < anchor:
        year += 10
    return catalog.contract(symbol, year, month)


def _month_bars(
    store: BarStore, inst: Instrument, bar: str, start: int | None, end: int | None
) -> ContractBars | None:
    frame = _read_bars(store, inst.key, bar, start, end)
    if frame is None:
        return None
    side = _sidecar(store, inst.key)
    assert inst.expiry is not None
    if side is None:
        return ContractBars(inst, inst.expiry, "catalog", frame)
    last_trade: date = side["lastTradeDate"]
    if abs((last_trade - inst.expiry).days) > 40:
        raise BarDataError(
            f"{store.root / 'bars' / inst.key / 'contract.json'}: last trade date {last_trade.isoformat()} "
            f"is not {inst.key} {inst.contract_month} (the catalog says {inst.expiry.isoformat()})"
        )
    return ContractBars(inst, last_trade, "sidecar", frame)


def _stored_months(store: BarStore, symbol: str, bar: str) -> list[Instrument]:
    """The stored months of `symbol` with bars usable at `bar`, oldest first (a key's year from its sidecar's
    last trade date, else from its first bar)."""
    pattern = _month_key_re(symbol)
    base = store.root / "bars"
    want = parse_interval(bar)
    found: list[Instrument] = []
    for folder in sorted(base.iterdir()) if base.is_dir() else []:
        m = pattern.match(folder.name)
        if not m or not folder.is_dir():
            continue
        usable = [p for p in folder.glob("*.parquet") if want % parse_interval(p.stem) == 0]
        if not usable:
            continue
        side = _sidecar(store, folder.name)
        if side is not None:
            last_trade: date = side["lastTradeDate"]
            anchor = date(last_trade.year - 1, 1, 1)
        else:
            first = _first_ts(usable[0])
            if first is None:
                continue
            anchor = date.fromisoformat(format_time(first)[:10])
        found.append(_contract_of(symbol, m.group(1), int(m.group(2)), anchor))
    return sorted(found, key=lambda i: i.contract_month)


def _first_ts(path: Path) -> int | None:
    """The first bar time of a store file, from its footer (no data read)."""
    try:
        meta = pq.ParquetFile(path).metadata
    except (pa.ArrowInvalid, OSError) as exc:
        raise BarDataError(f"{path} is damaged or not a bar file: {exc}") from None
    if not meta.num_rows:
        return None
    stats = meta.row_group(0).column(meta.schema.names.index("ts")).statistics
    return int(stats.min) if stats is not None else None


def next_month(inst: Instrument) -> Instrument:
    spec = catalog.future_spec(inst.symbol)
    year, month = int(inst.contract_month[:4]), int(inst.contract_month[4:])
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        if spec.lists(month):
            return catalog.contract(inst.symbol, year, month)


def load_chain(
    store: BarStore,
    symbol: str,
    bar: str,
    *,
    first: date | None = None,
    last: date | None = None,
    from_month: str | None = None,
    start: int | None = None,
    end: int | None = None,
    rule: RollRule | None = None,
) -> list[ContractBars]:
    """The consecutive listed months a series needs, with their stored bars (ts in [start, end)).

    With `first`/`last` (days): the front months of those days per the roll rule and every month between;
    otherwise every stored month of `symbol` (from `from_month` on). A month missing in between (or, with
    days, any month needed) is a MissingContractError naming it."""
    product = catalog.future_spec(symbol).instrument.symbol
    size = bar_size_name(bar)
    if first is not None and last is not None:
        months = [catalog.front_month(product, first, rule)]
        final = catalog.front_month(product, last, rule)
        while months[-1].contract_month < final.contract_month:
            months.append(next_month(months[-1]))
    else:
        months = _stored_months(store, product, size)
        if from_month is not None:
            months = [m for m in months if m.contract_month >= _month_of(store, from_month, months)]
        if not months:
            raise MissingContractError(
                f"no per-contract {size} bars of {product} are stored in {store.root / 'bars'} "
                f"(keys like {catalog.contract(product, 2024, _first_listed(product)).key})"
            )
        filled = [months[0]]
        for m in months[1:]:
            while filled[-1].contract_month < m.contract_month:
                filled.append(next_month(filled[-1]))
        months = filled
    chain: list[ContractBars] = []
    for k, inst in enumerate(months):
        got = _month_bars(store, inst, size, start, end)
        if got is None:
            where = _between(months, k)
            raise MissingContractError(
                f"{inst.key} ({inst.contract_month}) has no {size} bars in {store.root / 'bars'}: the "
                f"{product} series needs it{where}"
            )
        chain.append(got)
    return chain


def _month_of(store: BarStore, key: str, months: Sequence[Instrument]) -> str:
    for m in months:
        if m.key == key:
            return m.contract_month
    raise MissingContractError(f"{key} has no bars in {store.root / 'bars'}")


def _first_listed(symbol: str) -> int:
    return MONTH_CODES.index(catalog.future_spec(symbol).cycle[0]) + 1


def _between(months: Sequence[Instrument], k: int) -> str:
    before = f" after {months[k - 1].key}" if k > 0 else ""
    after = f" and before {months[k + 1].key}" if k + 1 < len(months) else ""
    if k > 0:
        prev = months[k - 1]
        day = catalog.roll_date(prev)
        return f"{before}{after} (from {prev.key}'s roll day {day.isoformat()})"
    return f"{before}{after}"

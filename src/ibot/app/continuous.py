"""The continuous-futures service: build or extend a product's stored continuous series from its per-contract
bars, and the series a backtest across rolls runs on. Synchronous file work; prints nothing; typed results
whose `to_dict()` is the `--json` payload."""

from __future__ import annotations

import calendar as _calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ibot.app.data import bar_store
from ibot.app.progress import ProgressCallback, ProgressUpdate, report
from ibot.data.bars import bar_size_name, format_time
from ibot.data.continuous import (
    Adjust,
    ContinuousError,
    ContinuousSeries,
    ContinuousStore,
    build_series,
    current_month,
    extend_series,
    parse_adjust,
    rule_to_dict,
)
from ibot.data.contract_months import load_chain
from ibot.model import catalog
from ibot.model.catalog import RollRule
from ibot.model.errors import ParameterError

__all__ = [
    "ContinuousOutcome",
    "ContinuousRequest",
    "MonthRange",
    "build_continuous",
    "parse_month_range",
    "series_for_backtest",
]


@dataclass(frozen=True, slots=True)
class ContinuousRequest:
    """Which series to build: `rebuild` starts from the raw months instead of extending the stored one;
    `rule` overrides the product's roll rule (ibot.model.catalog.default_roll_rule)."""

    symbol: str = "MES"
    bar: str = "1min"
    adjust: str = "backward-spread"
    data_dir: Path | None = None
    rebuild: bool = False
    rule: RollRule | None = None


@dataclass(frozen=True, slots=True)
class ContinuousOutcome:
    """What was done (`built`, `extended` or `unchanged`), the series and where it is stored."""

    action: str
    added: int
    series: ContinuousSeries
    path: Path
    rule: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        s = self.series
        return {
            "symbol": s.symbol,
            "bar": s.bar,
            "adjust": s.adjust.value,
            "action": self.action,
            "rows": len(s),
            "added": self.added,
            "first": format_time(int(s.bars.ts[0])) if len(s) else None,
            "last": format_time(int(s.bars.ts[-1])) if len(s) else None,
            "contracts": list(dict.fromkeys(s.contract.tolist())),
            "last_trade_dates": dict(s.last_trade),
            "roll_rule": self.rule,
            "rolls": [r.to_dict() for r in s.rolls],
            "note": s.note,
            "path": str(self.path),
        }


def build_continuous(
    request: ContinuousRequest, on_progress: ProgressCallback | None = None
) -> ContinuousOutcome:
    """Build `request.symbol`'s continuous series from its stored months, or extend the stored one with the
    bars stored since (a new roll re-adjusts the stored rows without reading their months again)."""
    adjust = parse_adjust(request.adjust)
    symbol = catalog.future_spec(request.symbol).instrument.symbol
    bar = bar_size_name(request.bar)
    store = bar_store(request.data_dir, create=False)
    cstore = ContinuousStore(store.root)
    rule = rule_to_dict(request.rule, symbol)
    task = f"continuous {symbol} {bar} {adjust.value}"
    report(on_progress, ProgressUpdate(task, 0, None))
    stored = None if request.rebuild else cstore.read(symbol, bar, adjust)
    if stored is not None and stored[1] != rule:
        raise ContinuousError(
            f"the stored {symbol} {bar} {adjust.value} series was built with roll rule {stored[1]}, not "
            f"{rule}; pass --rebuild to build it again"
        )
    if stored is None or not len(stored[0]):
        chain = load_chain(store, symbol, bar, rule=request.rule)
        series = build_series(symbol, bar, adjust, chain, rule=request.rule)
        action, added = "built", len(series)
    else:
        old = stored[0]
        last_month, _ = current_month(old, catalog.get_instrument(symbol))
        chain = load_chain(
            store, symbol, bar, from_month=last_month, start=int(old.bars.ts[-1]) + 1, rule=request.rule
        )
        series = extend_series(old, chain, request.rule)
        added = len(series) - len(old)
        action = "extended" if added or len(series.rolls) > len(old.rolls) else "unchanged"
    path = cstore.folder(symbol, bar, adjust) / "series.parquet"
    if action != "unchanged":
        path = cstore.write(series, rule)
    report(on_progress, ProgressUpdate(task, 1, 1))
    return ContinuousOutcome(action, added, series, path, rule)


# --- backtests across rolls -------------------------------------------------------------------------------

_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


@dataclass(frozen=True, slots=True)
class MonthRange:
    """[first day, last day] from `--from`/`--to` (months like 2024-01 or days like 2024-01-15), and the
    same as ns: a month runs from its first day to its last."""

    first: date
    last: date

    @property
    def start_ns(self) -> int:
        return (
            int(datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC).timestamp()) * 10**9
        )

    @property
    def end_ns(self) -> int:
        after = date.fromordinal(self.last.toordinal() + 1)
        return int(datetime(after.year, after.month, after.day, tzinfo=UTC).timestamp()) * 10**9


def _period(text: str, option: str, last: bool) -> date:
    """The first (or, with `last`, the last) day of `text`: a month like 2024-01 or a day like 2024-01-15."""
    m = _PERIOD_RE.match(text.strip())
    try:
        if not m:
            raise ValueError(text)
        year, month = int(m.group(1)), int(m.group(2))
        if m.group(3) is not None:
            day = date(year, month, int(m.group(3)))
        else:
            day = date(year, month, _calendar.monthrange(year, month)[1] if last else 1)
    except ValueError:
        raise ParameterError(
            f"{option} {text!r} is not a month like 2024-01 or a day like 2024-01-15"
        ) from None
    if not catalog.MIN_YEAR <= day.year <= catalog.MAX_YEAR - 1:
        raise ParameterError(
            f"{option} {text!r} is outside the years the contract catalog covers "
            f"({catalog.MIN_YEAR}..{catalog.MAX_YEAR - 1})"
        )
    return day


def parse_month_range(start: str | None, end: str | None, *, need_both: bool = True) -> MonthRange:
    """`--from`/`--to` as a MonthRange; --continuous needs both (else an open end is the catalog's edge),
    and --from may not be after --to."""
    if need_both and (start is None or end is None):
        missing = "--from" if start is None else "--to"
        raise ParameterError(f"--continuous needs {missing} (a month like 2024-01)")
    first = _period(start, "--from", last=False) if start is not None else date(catalog.MIN_YEAR, 1, 1)
    final = _period(end, "--to", last=True) if end is not None else date(catalog.MAX_YEAR - 1, 12, 31)
    if first > final:
        raise ParameterError(f"--from {start} is after --to {end}")
    return MonthRange(first, final)


def series_for_backtest(
    symbol: str,
    bar: str,
    adjust: str,
    months: MonthRange,
    data_dir: Path | None,
    rule: RollRule | None = None,
) -> ContinuousSeries:
    """The continuous series over `months`, built in memory from the stored months at `bar` (each month's
    bars built up from its stored size first, so rolls fall on `bar` boundaries). Every month the range needs
    must be stored (MissingContractError naming it); backward-ratio is refused by the backtest."""
    mode = parse_adjust(adjust)
    if mode is Adjust.BACKWARD_RATIO:
        raise ParameterError(
            "--adjust backward-ratio cannot be backtested: ratio-adjusted prices are off the tick grid and "
            "P&L on them is not the months' P&L; use backward-spread (default) or forward-spread"
        )
    product = catalog.future_spec(symbol).instrument.symbol
    store = bar_store(data_dir, create=False)
    chain = load_chain(
        store, product, bar, first=months.first, last=months.last, start=months.start_ns,
        end=months.end_ns, rule=rule,
    )  # fmt: skip
    series = build_series(
        product, bar, mode, chain, months.start_ns, months.end_ns, rule, need_through_end=True
    )
    if not len(series):
        raise ParameterError(
            f"no {product} bars between {months.first.isoformat()} and {months.last.isoformat()} in the "
            f"stored months {', '.join(c.key for c in chain)}"
        )
    return series

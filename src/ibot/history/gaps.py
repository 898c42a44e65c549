"""Which sessions of a downloaded window lack bars: the gap report.

For every series of a product the checkpoint knows (one per contract month, or the stock), the sessions of the
window the downloads asked for, up to the server time of the latest download, are counted against the stored
bars: a session with no bar is "missing", one with fewer than `min_fill` of the bars its hours hold is "thin"
(real markets have idle minutes: TRADES bars only exist for minutes with trades). The exchange hours are
ibot's own (`ibot.exchange.hours`), with holidays and early closes; a month's last trading day ends early
(MES at 09:30 ET), so a thin last day is labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from ibot.data.bars import format_time
from ibot.data.store import BarStore, MissingBarsError
from ibot.exchange.hours import TradingHours
from ibot.history.checkpoint import Checkpoint
from ibot.history.plan import BarSpec, series_name, session_hours
from ibot.history.sidecar import sidecar_last_trade
from ibot.model import catalog
from ibot.model.instruments import Instrument, SecType

__all__ = ["ContractGaps", "SessionGap", "gap_report"]


@dataclass(frozen=True, slots=True)
class SessionGap:
    day: date
    bars: int
    expected: int
    kind: str  # "missing" or "thin"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "bars": self.bars, "expected": self.expected, "kind": self.kind,
                "note": self.note}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ContractGaps:
    """One contract's downloaded window and the sessions in it that lack bars."""

    key: str
    series: str
    first: str
    last: str
    sessions: int
    bars: int
    gaps: list[SessionGap] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "series": self.series,
            "first": self.first,
            "last": self.last,
            "sessions": self.sessions,
            "bars": self.bars,
            "gaps": [g.to_dict() for g in self.gaps],
        }


def _keys(checkpoint: Checkpoint, symbol: str, spec: BarSpec) -> list[str]:
    product = catalog.get_instrument(symbol)
    suffix = f"/{spec.store_name}"
    out = []
    for series in checkpoint.series():
        if not series.endswith(suffix):
            continue
        key = series[: -len(suffix)]
        if spec.what != "TRADES":
            if not key.endswith(f".{spec.what}"):
                continue
            key = key[: -len(spec.what) - 1]
        elif "." in key:
            continue
        if product.sec_type is SecType.STK:
            if key == product.symbol:
                out.append(key)
        elif (
            key.startswith(product.symbol)
            and len(key) == len(product.symbol) + 2
            and key[-2] in catalog.MONTH_CODES
            and key[-1].isdigit()
        ):
            out.append(key)
    return out


def gap_report(
    store: BarStore, checkpoint: Checkpoint, symbol: str, spec: BarSpec, min_fill: float = 0.9
) -> list[ContractGaps]:
    """Per contract of `symbol` downloaded at `spec`: sessions without bars, or with fewer than `min_fill` of
    the bars their hours hold, inside the downloaded window up to the latest download's server time."""
    product = catalog.get_instrument(symbol)
    hours = session_hours(product)
    out: list[ContractGaps] = []
    for key in _keys(checkpoint, symbol, spec):
        series = series_name(key, spec)
        window = checkpoint.window(series)
        if window is None:
            continue
        try:
            ts = store.read(spec.store_key(key), spec.store_name).ts
        except MissingBarsError:
            ts = np.empty(0, dtype=np.int64)
        last_trade = sidecar_last_trade(store.root, key)
        last_trade_ns = _last_trade_ns(product, last_trade, hours)
        first_day = hours.session_date(window.first_ns)
        last_day = hours.session_date(window.last_ns - 1)
        gaps: list[SessionGap] = []
        sessions = 0
        interval = spec.interval_ns
        for day, opened, closed in hours.sessions(first_day, last_day):
            if closed > window.asof_ns:
                break  # still open (or later) at the latest download: not complete yet
            sessions += 1
            count = int(np.searchsorted(ts, closed, "left") - np.searchsorted(ts, opened, "left"))
            if spec.daily:
                expected = 1
            else:
                ends = last_trade_ns if last_trade == day else closed  # the last day ends at the last trade
                segments = ((a, min(b, ends)) for a, b in hours.session_segments(day))
                expected = sum(max(0, b - a) // interval for a, b in segments)
            note = "last trading day (ends early)" if last_trade == day else ""
            if count == 0:
                gaps.append(SessionGap(day, 0, expected, "missing", note))
            elif count < expected * min_fill:
                gaps.append(SessionGap(day, count, expected, "thin", note))
        out.append(
            ContractGaps(
                key,
                series,
                format_time(window.first_ns),
                format_time(window.last_ns),
                sessions,
                len(ts),
                gaps,
            )
        )
    return out


def _last_trade_ns(product: Instrument, last_trade: date | None, hours: TradingHours) -> int:
    """The instant a futures month stops trading on `last_trade` (its listing time zone); 0 without one."""
    if last_trade is None or product.sec_type is not SecType.FUT:
        return 0
    at = datetime.combine(last_trade, catalog.last_trade_time(product), hours.listing_tz)
    return int(at.timestamp()) * 1_000_000_000

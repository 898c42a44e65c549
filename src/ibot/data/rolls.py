"""Where a continuous futures series switches months: the roll day of each month, the bar it rolls at, and
the record it leaves.

Rule (the one every function here follows):
- A month's **roll day** is the product's RollRule applied to the month (ibot.model.catalog.roll_date); when
  IB's last trade date (the `contract.json` sidecar) differs from the catalog's, a rule anchored on the last
  trade date counts from IB's date, and no roll day is ever after the last trade date.
- The **roll bar** is the first bar time, in the trading day of the roll day or later (CME's trading day
  starts at 18:00 ET the evening before), at which BOTH months have a bar. The search ends with the old
  month's last trade day: no common bar by then is a NoCommonPriceError naming both months and the days
  searched, never a silent gap.
- The old month's bar at the roll bar is the last bar of its segment; the new month's bars follow. The roll
  record keeps the roll bar's time and both months' closes at it: `from_price` (old) and `to_price` (new).
  These two prices are where a position is rolled, and the gap `to_price - from_price` is what adjusts the
  earlier (backward) or later (forward) segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from ibot.data.bars import BarFrame, format_time
from ibot.model import catalog
from ibot.model.calendar import add_business_days, business_day_on_or_before, trading_day_end
from ibot.model.catalog import RollAnchor, RollRule
from ibot.model.errors import IbotError
from ibot.model.instruments import Instrument

__all__ = [
    "ContractBars",
    "MissingContractError",
    "NoCommonPriceError",
    "Roll",
    "RollSearch",
    "find_roll",
    "roll_day",
]


class MissingContractError(IbotError, LookupError):
    """A month the series needs has no stored bars."""


class NoCommonPriceError(IbotError, ValueError):
    """Two months never have a bar at the same time between the roll day and the old month's last trade."""


@dataclass(frozen=True, slots=True, eq=False)
class ContractBars:
    """One month's bars and the dates that place it: `last_trade` from IB's sidecar (`source` "sidecar") or
    the catalog's rule (`source` "catalog")."""

    instrument: Instrument
    last_trade: date
    source: str
    bars: BarFrame

    @property
    def key(self) -> str:
        return self.instrument.key


@dataclass(frozen=True, slots=True)
class Roll:
    """One switch of the series from `from_contract` to `to_contract` at the close of the bar at `ts`:
    both months' closes there (raw prices), and the roll day the rule gave."""

    ts: int
    from_contract: str
    to_contract: str
    from_price: float
    to_price: float
    roll_day: date

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": format_time(self.ts),
            "ts": self.ts,
            "from_contract": self.from_contract,
            "to_contract": self.to_contract,
            "from_price": self.from_price,
            "to_price": self.to_price,
            "roll_day": self.roll_day.isoformat(),
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Roll:
        return cls(
            int(row["ts"]),
            str(row["from_contract"]),
            str(row["to_contract"]),
            float(row["from_price"]),
            float(row["to_price"]),
            date.fromisoformat(str(row["roll_day"])),
        )


def roll_day(contract: ContractBars, rule: RollRule | None = None) -> date:
    """The day to roll out of `contract` (see the module doc): the catalog's roll date, recounted from IB's
    last trade date when the sidecar gives a different one."""
    fut = contract.instrument
    day = catalog.roll_date(fut, rule)
    if contract.last_trade == fut.expiry:
        return day
    rule = rule or catalog.default_roll_rule(fut.symbol)
    if rule.anchor is RollAnchor.LAST_TRADE:
        day = add_business_days(contract.last_trade, -rule.business_days_before_expiry, "CME")
    return business_day_on_or_before(min(day, contract.last_trade), "CME")


def trading_day_start(day: date) -> int:
    """Nanoseconds UTC at which the trading day `day` starts (18:00 ET the evening before)."""
    return trading_day_end(day - timedelta(days=1))


@dataclass(frozen=True, slots=True)
class RollSearch:
    """The answer of `find_roll`: the roll (found), or the first time it could still happen (`pending_from`:
    the data does not reach far enough yet to find or rule out a common bar)."""

    roll: Roll | None
    pending_from: int


def find_roll(
    old: ContractBars, new: ContractBars, not_before: int, rule: RollRule | None = None
) -> RollSearch:
    """The roll from `old` to `new`: the first bar time >= max(start of the roll day, `not_before`) where both
    have a bar, searched until the end of `old`'s last trade day.

    When neither month's bars reach the end of that window, a common bar may still come: the answer is
    pending (no roll yet). When one of them covers the window and no common bar exists, NoCommonPriceError."""
    day = roll_day(old, rule)
    lo = max(trading_day_start(day), not_before)
    hi = trading_day_end(old.last_trade)
    a, b = old.bars.ts, new.bars.ts
    ia0, ia1 = np.searchsorted(a, [lo, hi], side="left")
    ib0, ib1 = np.searchsorted(b, [lo, hi], side="left")
    common = np.intersect1d(a[ia0:ia1], b[ib0:ib1], assume_unique=True)
    if len(common):
        ts = int(common[0])
        i, j = int(np.searchsorted(a, ts)), int(np.searchsorted(b, ts))
        roll = Roll(ts, old.key, new.key, float(old.bars.close[i]), float(new.bars.close[j]), day)
        return RollSearch(roll, lo)
    covered = (len(a) and a[-1] >= hi) or (len(b) and b[-1] >= hi)
    if not covered:
        return RollSearch(None, lo)
    have_old, have_new = ia1 - ia0, ib1 - ib0
    raise NoCommonPriceError(
        f"no common price to roll {old.key} -> {new.key}: from the roll day {day.isoformat()} "
        f"(search from {format_time(lo)}) to the end of {old.key}'s last trade day "
        f"{old.last_trade.isoformat()}, {old.key} has {have_old} bars and {new.key} has {have_new}, "
        "but never at the same time"
    )

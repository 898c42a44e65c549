"""When a futures month is listed and trades in the simulator, and how long IB keeps it once expired.

IB lists (contract details answer for) the next `LISTED_MONTHS` months of a product; a month beyond them is
not listed yet (error 200). A listed month has bars from `LISTED_DAYS` before its last trade date (before
that it is listed without trades: "HMDS query returned no data"), which gives the trading depth of the
catalog's products: about five quarters of the equity index micros, six months of the gold cycle. Its last
bar ends at its last trading time (`last_trade_second`): IB serves nothing after it. An expired month is
served only with includeExpired, and only while IB keeps it: "about two years" (IB_NOTES, History and
rolls); the simulator keeps `EXPIRED_RETENTION_DAYS` by default so that a market clock at mid-2026 still
serves every month back to January 2024.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ibot.exchange.hours import listed_hours_for
from ibot.model.catalog import last_trade_time
from ibot.model.instruments import Instrument, SecType

LISTED_MONTHS = 8
LISTED_DAYS = 380
EXPIRED_RETENTION_DAYS = 913  # two and a half years


def last_trade_second(inst: Instrument) -> int | None:
    """Epoch second at which a futures month stops trading; None for a stock or a product."""
    if inst.sec_type is not SecType.FUT or inst.expiry is None:
        return None
    tz = listed_hours_for(inst).listing_tz
    return int(datetime.combine(inst.expiry, last_trade_time(inst), tz).timestamp())


def first_trade_date(inst: Instrument) -> date | None:
    """The first trade date of a futures month (its listing); None for a stock or a product."""
    if inst.sec_type is not SecType.FUT or inst.expiry is None:
        return None
    hours = listed_hours_for(inst)
    d = inst.expiry - timedelta(days=LISTED_DAYS)
    while not hours.is_trade_date(d):
        d += timedelta(days=1)
    return d


def first_second(inst: Instrument) -> int | None:
    """Epoch second of a month's first bar: the open of its first trade date's session."""
    d = first_trade_date(inst)
    return None if d is None else listed_hours_for(inst).window(d, False)[0]


__all__ = [
    "EXPIRED_RETENTION_DAYS",
    "LISTED_DAYS",
    "LISTED_MONTHS",
    "first_second",
    "first_trade_date",
    "last_trade_second",
    "last_trade_time",
]

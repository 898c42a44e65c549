"""TradingView's tickers as ibot's instruments, through the catalog and its roll calendar.

TradingView names a future by a continuous contract (``MES1!`` the front month, ``MES2!`` the next), by a
month with a four-digit year (``MESZ2026``) or, as IB does, with one or two digits (``MESZ6``); any of them
may carry an exchange prefix (``CME_MINI:MES1!``, ``NASDAQ:AAPL``). ``1!`` is the month ibot's roll rule names
at the market's date (`catalog.front_month`), not TradingView's own roll, so the webhook trades the month
the strategies trade. A ticker the catalog does not know, or a month that has stopped trading, is refused
naming it.
"""

from __future__ import annotations

import re
from datetime import date

from ibot.model import catalog
from ibot.model.errors import IbotError
from ibot.model.instruments import Instrument, SecType

__all__ = ["UnknownTickerError", "instrument_for_ticker"]

_PREFIX = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
_CONTINUOUS = re.compile(r"(?P<root>[A-Z0-9]+?)(?P<n>[1-9])!")
_FOUR_DIGIT_YEAR = re.compile(r"(?P<root>[A-Z0-9]+?)(?P<month>[FGHJKMNQUVXZ])(?P<year>20\d\d)")


class UnknownTickerError(IbotError, ValueError):
    """A TradingView ticker that names no catalog instrument (or no month that still trades)."""

    field = "ticker"


def _future(root: str) -> bool:
    return root in catalog.symbols(SecType.FUT)


def _continuous(root: str, n: int, asof: date, ticker: str) -> Instrument:
    """``ROOTn!``: the n-th month counted from the one ibot's roll rule trades at `asof`."""
    front = catalog.front_month(root, asof)
    months = catalog.contract_months(root, asof, 12)
    later = [m for m in months if m.contract_month >= front.contract_month]
    if n > len(later):
        raise UnknownTickerError(f"ticker {ticker!r}: no month {n} of {root} in the catalog after {asof}")
    return later[n - 1]


def instrument_for_ticker(ticker: str, asof: date) -> Instrument:
    """The instrument a TradingView ticker names at the market's date `asof`; UnknownTickerError otherwise."""
    text = ticker.strip().upper()
    shown = ticker.strip()[:40]
    if ":" in text:
        prefix, text = text.split(":", 1)
        if not _PREFIX.fullmatch(prefix):
            raise UnknownTickerError(f"ticker {shown!r}: {prefix!r} is not an exchange prefix")
    if not text:
        raise UnknownTickerError("ticker is empty")
    try:
        found = _lookup(text, asof, shown)
    except UnknownTickerError:
        raise
    except (IbotError, ValueError):
        found = None
    if found is None:
        raise UnknownTickerError(f"unknown ticker {shown!r}: not a catalog instrument ({_known()})")
    if found.sec_type is SecType.FUT and found.expiry and found.expiry < asof:
        raise UnknownTickerError(
            f"ticker {shown!r}: {found.local_symbol} stopped trading on {found.expiry.isoformat()}"
        )
    return found


def _lookup(text: str, asof: date, shown: str) -> Instrument | None:
    match = _CONTINUOUS.fullmatch(text)
    if match is not None:
        root = match["root"]
        return _continuous(root, int(match["n"]), asof, shown) if _future(root) else None
    match = _FOUR_DIGIT_YEAR.fullmatch(text)
    if match is not None and _future(match["root"]):
        month = catalog.MONTH_CODES.index(match["month"]) + 1
        return catalog.contract(match["root"], int(match["year"]), month)
    return catalog.resolve(text, asof)


def _known() -> str:
    return (
        "futures "
        + ", ".join(catalog.symbols(SecType.FUT))
        + "; stocks "
        + ", ".join(catalog.symbols(SecType.STK))
    )

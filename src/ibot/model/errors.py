"""Typed errors raised where bad input enters; each message names what was wrong and where."""

from __future__ import annotations


class IbotError(Exception):
    """Base of every error ibot raises on purpose."""


class UnknownSymbolError(IbotError, KeyError):
    """A symbol that is not in the catalog."""

    def __init__(self, symbol: str, known: list[str] | None = None) -> None:
        hint = f"; known symbols: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"unknown symbol {symbol!r}{hint}")
        self.symbol = symbol

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class InvalidOrderError(IbotError, ValueError):
    """An order request that must not be sent (bad quantity, price, type...)."""


class InvalidPriceError(IbotError, ValueError):
    """A price that is NaN, infinite, non-positive where it must be positive, or off the tick grid."""


class BarDataError(IbotError, ValueError):
    """Bars that are malformed: NaN, high < low, unsorted, duplicated, empty."""


class ParameterError(IbotError, ValueError):
    """A strategy or command parameter that is unknown or out of range."""

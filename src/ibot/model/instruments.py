"""Instruments: what is traded, where, and the tick grid its prices live on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from ibot.model.errors import InvalidPriceError


class SecType(StrEnum):
    FUT = "FUT"
    STK = "STK"
    CONTFUT = "CONTFUT"


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable contract. Prices are multiples of `tick_size`; one tick is worth `tick_value` in `currency`.

    For a futures month `expiry` is the last trade date and `local_symbol` the exchange's code (``MESZ6``);
    for the product itself (as in the catalog) both are empty.
    """

    symbol: str
    sec_type: SecType
    exchange: str
    currency: str
    multiplier: Decimal
    tick_size: Decimal
    description: str = ""
    local_symbol: str = ""
    expiry: date | None = None
    contract_month: str = ""  # YYYYMM for a futures month
    trading_class: str = ""
    primary_exchange: str = ""
    con_id: int = 0
    initial_margin: Decimal = Decimal(0)
    _tick: float = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.tick_size <= 0:
            raise ValueError(f"{self.symbol}: tick size must be positive, got {self.tick_size}")
        if self.multiplier <= 0:
            raise ValueError(f"{self.symbol}: multiplier must be positive, got {self.multiplier}")
        object.__setattr__(self, "_tick", float(self.tick_size))

    @property
    def tick_value(self) -> Decimal:
        """Currency value of one tick for one contract (tick size x multiplier)."""
        return self.tick_size * self.multiplier

    @property
    def key(self) -> str:
        """The name used for stores and logs: local symbol for a month, symbol otherwise."""
        return self.local_symbol or self.symbol

    def to_ticks(self, price: float) -> int:
        """Nearest whole number of ticks for `price` (raises on NaN/inf)."""
        if not math.isfinite(price):
            raise InvalidPriceError(f"{self.key}: price {price!r} is not a finite number")
        return round(price / self._tick)

    def from_ticks(self, ticks: int) -> float:
        """The price of a whole number of ticks, as the float nearest the exact grid value."""
        return float(Decimal(ticks) * self.tick_size)

    def round_to_tick(self, price: float) -> float:
        """Snap a price to the nearest point of the tick grid."""
        return self.from_ticks(self.to_ticks(price))

    def floor_to_tick(self, price: float) -> float:
        """Largest grid price <= `price` (for a sell limit that must not be more aggressive than asked)."""
        return self.from_ticks(math.floor(price / self._tick + 1e-9))

    def ceil_to_tick(self, price: float) -> float:
        """Smallest grid price >= `price`."""
        return self.from_ticks(math.ceil(price / self._tick - 1e-9))

    def is_on_grid(self, price: float) -> bool:
        if not math.isfinite(price):
            return False
        return abs(price / self._tick - round(price / self._tick)) < 1e-6

    def check_price(self, price: float, what: str = "price") -> float:
        """Validate a price entering the system: finite, positive, on the tick grid; returns it snapped."""
        if not isinstance(price, (int, float)) or not math.isfinite(price):
            raise InvalidPriceError(f"{self.key}: {what} {price!r} is not a finite number")
        if price <= 0 and self.sec_type is not SecType.FUT:
            raise InvalidPriceError(f"{self.key}: {what} {price!r} must be positive")
        if not self.is_on_grid(price):
            raise InvalidPriceError(
                f"{self.key}: {what} {price!r} is not on the tick grid of {self.tick_size}"
            )
        return self.round_to_tick(price)

    def pnl(self, ticks: int, quantity: int) -> Decimal:
        """Exact currency P&L of `ticks` per contract over `quantity` contracts."""
        return Decimal(ticks) * self.tick_value * quantity

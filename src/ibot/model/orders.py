"""Orders as the strategy and the OMS see them, their states, and fills."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ibot.model.errors import InvalidOrderError


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    # The module names _BUY/_SELL (set below the class): reading Side.BUY through the enum class is slow,
    # and `sign` is read for every fill.
    @property
    def sign(self) -> int:
        return 1 if self is _BUY else -1

    @property
    def opposite(self) -> Side:
        return _SELL if self is _BUY else _BUY


_BUY = Side.BUY
_SELL = Side.SELL


class OrderType(StrEnum):
    MKT = "MKT"
    LMT = "LMT"
    STP = "STP"
    STP_LMT = "STP LMT"


class TimeInForce(StrEnum):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"


class OrderStatus(StrEnum):
    """IB's order states (as TWS spells them) plus our own pre-send state."""

    CREATED = "Created"  # recorded, not yet sent
    PENDING_SUBMIT = "PendingSubmit"
    PRE_SUBMITTED = "PreSubmitted"
    SUBMITTED = "Submitted"
    PENDING_CANCEL = "PendingCancel"
    CANCELLED = "Cancelled"
    API_CANCELLED = "ApiCancelled"
    FILLED = "Filled"
    INACTIVE = "Inactive"
    REJECTED = "Rejected"

    @property
    def is_done(self) -> bool:
        return self in _DONE


_DONE = frozenset(
    {
        OrderStatus.CANCELLED,
        OrderStatus.API_CANCELLED,
        OrderStatus.FILLED,
        OrderStatus.INACTIVE,
        OrderStatus.REJECTED,
    }
)


_MKT = OrderType.MKT
_NEEDS_LIMIT = (OrderType.LMT, OrderType.STP_LMT)
_NEEDS_STOP = (OrderType.STP, OrderType.STP_LMT)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a strategy (or a webhook, or a person) asks for. Validated on construction."""

    symbol: str
    side: Side
    quantity: int
    order_type: OrderType = OrderType.MKT
    limit_price: float | None = None
    stop_price: float | None = None
    tif: TimeInForce = TimeInForce.DAY
    client_order_id: str = ""
    reason: str = ""
    parent_id: str = ""
    oca_group: str = ""

    def __post_init__(self) -> None:
        # Runs for every order a strategy sends (hot in backtests): the common case is checked with plain
        # comparisons and the error text is built only when something is wrong.
        quantity = self.quantity
        if type(quantity) is not int or quantity <= 0:
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise InvalidOrderError(f"{self._where()}: quantity {quantity!r} must be a whole number")
            if quantity <= 0:
                raise InvalidOrderError(f"{self._where()}: quantity {quantity} must be positive")
        order_type = self.order_type
        limit_price = self.limit_price
        stop_price = self.stop_price
        if order_type is _MKT and limit_price is None and stop_price is None:
            return
        needs_limit = order_type in _NEEDS_LIMIT
        needs_stop = order_type in _NEEDS_STOP
        for name, value, needed in (
            ("limit price", limit_price, needs_limit),
            ("stop price", stop_price, needs_stop),
        ):
            if needed and value is None:
                raise InvalidOrderError(f"{self._where()}: {order_type} order needs a {name}")
            if not needed and value is not None:
                raise InvalidOrderError(f"{self._where()}: {order_type} order takes no {name}")
            if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise InvalidOrderError(f"{self._where()}: {name} {value!r} is not a finite number")

    def _where(self) -> str:
        return f"order {self.client_order_id or '(new)'} {self.side} {self.symbol}"

    @property
    def signed_quantity(self) -> int:
        side = self.side
        if side is _SELL:  # read for every fill: the two members first, without the `sign` property
            return -self.quantity
        return self.quantity if side is _BUY else side.sign * self.quantity


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. `price` is on the tick grid; `commission` is the total fee for this fill."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: int
    price: float
    ts: int
    commission: Decimal = Decimal(0)
    exec_id: str = ""
    reason: str = ""

    @property
    def signed_quantity(self) -> int:
        side = self.side
        if side is _SELL:  # read for every fill: the two members first, without the `sign` property
            return -self.quantity
        return self.quantity if side is _BUY else side.sign * self.quantity


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A change of an order's state, as the strategy hears of it."""

    client_order_id: str
    status: OrderStatus
    filled: int
    remaining: int
    avg_fill_price: float
    ts: int
    message: str = ""

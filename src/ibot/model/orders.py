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

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


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
        where = f"order {self.client_order_id or '(new)'} {self.side} {self.symbol}"
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise InvalidOrderError(f"{where}: quantity {self.quantity!r} must be a whole number")
        if self.quantity <= 0:
            raise InvalidOrderError(f"{where}: quantity {self.quantity} must be positive")
        needs_limit = self.order_type in (OrderType.LMT, OrderType.STP_LMT)
        needs_stop = self.order_type in (OrderType.STP, OrderType.STP_LMT)
        for name, value, needed in (
            ("limit price", self.limit_price, needs_limit),
            ("stop price", self.stop_price, needs_stop),
        ):
            if needed and value is None:
                raise InvalidOrderError(f"{where}: {self.order_type} order needs a {name}")
            if not needed and value is not None:
                raise InvalidOrderError(f"{where}: {self.order_type} order takes no {name}")
            if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise InvalidOrderError(f"{where}: {name} {value!r} is not a finite number")

    @property
    def signed_quantity(self) -> int:
        return self.side.sign * self.quantity


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
        return self.side.sign * self.quantity


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

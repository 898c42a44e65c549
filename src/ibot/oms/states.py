"""The one order state machine: every order, live or paper, moves through the states IB really reports.

Created (recorded, not sent) -> PendingSubmit -> PreSubmitted / Submitted -> Filled, with PendingCancel on the
way to Cancelled (or to Filled when the cancel came too late), Inactive (refused by IB or the exchange),
ApiCancelled, and Rejected (refused by our own risk check, never sent). Status messages that are not in
the `TRANSITIONS` table (a stale Submitted after Filled, a repeated echo) are ignored and logged: they never
move a final order. Filled quantity is derived from executions, each counted once by its exec id, so a
status message can never make `filled` or `remaining` wrong; `remaining = quantity - filled`, never negative.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from ibot.model.errors import InvalidOrderError
from ibot.model.orders import OrderStatus

__all__ = [
    "FINAL",
    "TRANSITIONS",
    "WORKING",
    "Applied",
    "ExecutionRecord",
    "OrderState",
    "is_legal",
    "to_decimal",
]

log = logging.getLogger(__name__)

S = OrderStatus

FINAL: frozenset[OrderStatus] = frozenset({S.FILLED, S.CANCELLED, S.API_CANCELLED, S.INACTIVE, S.REJECTED})
"""States no status message can leave (only executions can still complete a cancelled order, see below)."""

WORKING: frozenset[OrderStatus] = frozenset(
    {S.PENDING_SUBMIT, S.PRE_SUBMITTED, S.SUBMITTED, S.PENDING_CANCEL}
)
"""States in which the order may still trade at the broker (Created is not sent yet)."""

_ENDS = frozenset({S.CANCELLED, S.API_CANCELLED, S.FILLED, S.INACTIVE})

# Legal status changes reported by the broker (or made by the OMS). A status not listed for the current one is
# out of order or stale and is ignored. Notes:
# - PendingSubmit/PreSubmitted/Submitted may jump straight to Filled (a marketable order fills before the
#   acknowledgement is seen).
# - PendingCancel may go back to PreSubmitted/Submitted: IB refused the cancel (error 161, order not
#   cancellable) and the order works on; and it may end Filled: the cancel came after the fill
#   (ib_insync #491).
# - Submitted -> PreSubmitted is NOT allowed: seen only as a stale echo from before the order went live.
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(
    {
        S.CREATED: frozenset({S.PENDING_SUBMIT, S.PRE_SUBMITTED, S.SUBMITTED, S.PENDING_CANCEL, S.REJECTED})
        | _ENDS,
        S.PENDING_SUBMIT: frozenset({S.PRE_SUBMITTED, S.SUBMITTED, S.PENDING_CANCEL}) | _ENDS,
        S.PRE_SUBMITTED: frozenset({S.SUBMITTED, S.PENDING_CANCEL}) | _ENDS,
        S.SUBMITTED: frozenset({S.PENDING_CANCEL}) | _ENDS,
        S.PENDING_CANCEL: frozenset({S.PRE_SUBMITTED, S.SUBMITTED}) | _ENDS,
        S.FILLED: frozenset(),
        S.CANCELLED: frozenset(),
        S.API_CANCELLED: frozenset(),
        S.INACTIVE: frozenset(),
        S.REJECTED: frozenset(),
    }
)

# Executions are facts: a cancelled (or inactive) order whose executions add up to its full quantity did fill
# (the cancel lost the race and its Cancelled was reported before the late execution arrived).
_FILL_COMPLETES = frozenset(WORKING | {S.CREATED, S.CANCELLED, S.API_CANCELLED, S.INACTIVE})


def is_legal(current: OrderStatus, new: OrderStatus) -> bool:
    """True when a status message `new` may move an order that is in `current`."""
    return new in TRANSITIONS[current]


class Applied(StrEnum):
    """What an event did to an order: changed it, or was ignored (and why)."""

    CHANGED = "changed"
    ECHO = "echo"  # the same status again: nothing to do
    ILLEGAL = "illegal"  # out of order or stale: ignored and logged
    DUPLICATE = "duplicate"  # an execution already counted (same exec id)


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One execution of an order, as counted by the state machine (price exact)."""

    exec_id: str
    quantity: int
    price: Decimal
    ts: int


def to_decimal(price: float | Decimal) -> Decimal:
    """The exact decimal a price stands for: a float's shortest repr (5000.25, not its binary expansion)."""
    if isinstance(price, Decimal):
        return price
    return Decimal(repr(float(price)))


_AVG_PLACES = Decimal("1e-10")


class OrderState:
    """The state of one order: status, executions by exec id, and the quantities derived from them."""

    __slots__ = (
        "_executions",
        "_notional",
        "client_order_id",
        "filled",
        "message",
        "quantity",
        "status",
        "ts",
    )

    def __init__(
        self,
        client_order_id: str,
        quantity: int,
        status: OrderStatus = OrderStatus.CREATED,
        ts: int = 0,
    ) -> None:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise InvalidOrderError(
                f"order {client_order_id}: quantity {quantity!r} must be a whole number > 0"
            )
        self.client_order_id = client_order_id
        self.quantity = quantity
        self.status = status
        self.ts = ts
        self.message = ""
        self.filled = 0
        self._notional = Decimal(0)
        self._executions: dict[str, ExecutionRecord] = {}

    # Derived quantities ---------------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        """Contracts still to fill: quantity - filled, never below zero (an overfill is flagged instead)."""
        return max(self.quantity - self.filled, 0)

    @property
    def overfilled(self) -> bool:
        return self.filled > self.quantity

    @property
    def avg_fill_price(self) -> Decimal | None:
        """Weighted average execution price (exact notional / filled, to 1e-10); None before a fill."""
        if self.filled == 0:
            return None
        return (self._notional / self.filled).quantize(_AVG_PLACES).normalize()

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def is_working(self) -> bool:
        return self.status in WORKING

    @property
    def executions(self) -> tuple[ExecutionRecord, ...]:
        return tuple(self._executions.values())

    def has_execution(self, exec_id: str) -> bool:
        return exec_id in self._executions

    # Events ---------------------------------------------------------------------------------------------
    def apply_status(self, status: OrderStatus, ts: int = 0, message: str = "") -> Applied:
        """Move to `status` if the table allows it; an echo or illegal change leaves the order untouched."""
        status = OrderStatus(status)
        if status is self.status:
            return Applied.ECHO
        if not is_legal(self.status, status):
            log.warning(
                "order %s: ignored status %s in state %s (out of order or stale) %s",
                self.client_order_id,
                status,
                self.status,
                message,
            )
            return Applied.ILLEGAL
        if status is OrderStatus.FILLED and self.filled < self.quantity:
            # IB's Filled status may overtake the last execDetails; the executions will follow.
            log.info(
                "order %s: Filled reported with %d of %d executions seen",
                self.client_order_id,
                self.filled,
                self.quantity,
            )
        self.status = status
        self.ts = max(self.ts, ts)
        if message:
            self.message = message
        return Applied.CHANGED

    def apply_fill(self, exec_id: str, quantity: int, price: float | Decimal, ts: int = 0) -> Applied:
        """Count an execution once per exec id; completing the quantity moves a non-filled order to Filled."""
        if not exec_id:
            raise InvalidOrderError(f"order {self.client_order_id}: an execution needs an exec id")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise InvalidOrderError(
                f"order {self.client_order_id}: execution {exec_id} quantity {quantity!r} "
                "must be a whole number > 0"
            )
        px = to_decimal(price)
        if not px.is_finite():
            raise InvalidOrderError(
                f"order {self.client_order_id}: execution {exec_id} price {price!r} is not finite"
            )
        if exec_id in self._executions:
            return Applied.DUPLICATE
        if self.status is OrderStatus.REJECTED:
            log.error(
                "order %s: execution %s for an order never sent; counted anyway",
                self.client_order_id,
                exec_id,
            )
        self._executions[exec_id] = ExecutionRecord(exec_id, quantity, px, ts)
        self.filled += quantity
        self._notional += px * quantity
        self.ts = max(self.ts, ts)
        if self.overfilled:
            log.error(
                "order %s: overfilled, %d executed of %d ordered (exec %s)",
                self.client_order_id,
                self.filled,
                self.quantity,
                exec_id,
            )
        if self.filled >= self.quantity and self.status in _FILL_COMPLETES:
            self.status = OrderStatus.FILLED
        return Applied.CHANGED

    def set_quantity(self, quantity: int) -> None:
        """A modify changed the order's total quantity: it must stay above what has already filled."""
        if self.is_final:
            raise InvalidOrderError(f"order {self.client_order_id}: cannot modify a {self.status} order")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= self.filled:
            raise InvalidOrderError(
                f"order {self.client_order_id}: new quantity {quantity!r} must be a whole number above the "
                f"{self.filled} already filled"
            )
        self.quantity = quantity

    def __repr__(self) -> str:
        return (
            f"OrderState({self.client_order_id!r}, {self.status}, filled={self.filled}/{self.quantity}, "
            f"avg={self.avg_fill_price})"
        )

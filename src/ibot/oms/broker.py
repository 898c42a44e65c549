"""The Broker port: what the order manager needs from a venue, and the events a venue reports back.

Venue-neutral on purpose: only ibot's model types cross it (ib_async's Contract/Trade/Order stay inside the IB
adapter). Adapters: IB through ib_async (live), `ibot.oms.paper.PaperBroker` (in-process matching engine).
Orders are addressed by the broker's numeric order id, which the order manager allocates (never reused); the
client order id travels with the order (IB: ``orderRef``) so a reconnect can match orders back.

Events reach the manager through `BrokerListener.on_broker_event`, on the event loop's thread, in the order
the venue sent them (IB: execDetails before the orderStatus it caused, commissionReport after its execution).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from ibot.model.instruments import Instrument
from ibot.model.orders import OrderRequest, OrderStatus, Side

__all__ = [
    "AccountValue",
    "Broker",
    "BrokerCommission",
    "BrokerError",
    "BrokerEvent",
    "BrokerExecution",
    "BrokerIds",
    "BrokerListener",
    "BrokerOpenOrder",
    "BrokerOrder",
    "BrokerPosition",
    "BrokerStatus",
    "ConnectionEvent",
    "ConnectionState",
]


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """An order to place (or, with the same `order_id`, to modify): the request, its contract and its ids."""

    request: OrderRequest
    instrument: Instrument
    order_id: int
    client_order_id: str
    account: str = ""
    parent_order_id: int | None = None


@dataclass(frozen=True, slots=True)
class BrokerIds:
    """The ids the broker knows an order by: `order_id` per client session, `perm_id` across sessions."""

    order_id: int
    perm_id: int | None = None


@dataclass(frozen=True, slots=True)
class BrokerOpenOrder:
    """An order the broker still has working (from a snapshot after a (re)connect)."""

    order_id: int
    client_order_id: str  # "" when the broker has none (an order placed elsewhere)
    perm_id: int | None
    symbol: str
    side: Side
    quantity: int
    status: OrderStatus
    filled: int = 0
    remaining: int = 0
    client_id: int | None = None
    account: str = ""


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """The broker's position in one instrument (key: local symbol for a futures month, symbol otherwise)."""

    key: str
    quantity: int
    avg_cost: Decimal | None = None
    account: str = ""


@dataclass(frozen=True, slots=True)
class AccountValue:
    """One account summary line (NetLiquidation, AvailableFunds, ...), exact."""

    tag: str
    value: Decimal
    currency: str
    account: str = ""


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """An order status report (IB orderStatus); filled / remaining / avg_fill_price are the broker's view."""

    order_id: int
    status: OrderStatus
    ts: int
    filled: int = 0
    remaining: int = 0
    avg_fill_price: Decimal | None = None
    perm_id: int | None = None
    client_order_id: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class BrokerExecution:
    """One execution (IB execDetails); `commission` when the venue already knows it (else later)."""

    exec_id: str
    order_id: int
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    ts: int
    client_order_id: str = ""
    perm_id: int | None = None
    account: str = ""
    commission: Decimal | None = None
    currency: str = ""


@dataclass(frozen=True, slots=True)
class BrokerCommission:
    """A commission report for one execution (IB commissionReport); None amounts are unset."""

    exec_id: str
    commission: Decimal | None
    currency: str
    ts: int
    realized_pnl: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BrokerError:
    """An error or notice (IB error(reqId, code, msg)); `order_id` None (IB: -1) for session-wide notices."""

    order_id: int | None
    code: int
    message: str
    ts: int


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    DATA_LOST = "data_lost"  # IB 1101: connection back, subscriptions lost
    RESTORED = "restored"  # IB 1102: connection back, data kept


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """The session's connection changed; `next_order_id` is the broker's next valid id when it sent one."""

    state: ConnectionState
    ts: int
    message: str = ""
    next_order_id: int | None = None


BrokerEvent = BrokerStatus | BrokerExecution | BrokerCommission | BrokerError | ConnectionEvent


class BrokerListener(Protocol):
    """Receives every event the broker reports (the order manager implements it)."""

    def on_broker_event(self, event: BrokerEvent) -> None: ...


@runtime_checkable
class Broker(Protocol):
    """What the order manager needs from a venue. All calls are coroutines; events go to the listener."""

    def set_listener(self, listener: BrokerListener | None) -> None:
        """Where events go from now on (one listener)."""
        ...

    async def connect(self) -> int:
        """Open the session and finish the start-up sync; returns the broker's next valid order id."""
        ...

    async def disconnect(self) -> None: ...

    @property
    def is_connected(self) -> bool: ...

    async def place(self, order: BrokerOrder) -> BrokerIds:
        """Send a new order; returns its ids. Raises InvalidOrderError when refused before it left."""
        ...

    async def modify(self, order: BrokerOrder) -> None:
        """Change a working order in place (same `order_id`): quantity and/or prices."""
        ...

    async def cancel(self, order_id: int) -> None: ...

    async def cancel_all(self) -> None:
        """Cancel every working order of the account (IB: reqGlobalCancel)."""
        ...

    async def open_orders(self) -> Sequence[BrokerOpenOrder]: ...

    async def executions(self, since_ns: int | None = None) -> Sequence[BrokerExecution]:
        """Executions of the day at or after `since_ns` (IB: reqExecutions), with commissions if known."""
        ...

    async def positions(self) -> Sequence[BrokerPosition]: ...

    async def account_summary(self) -> Sequence[AccountValue]: ...

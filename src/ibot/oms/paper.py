"""An in-process paper broker: the Broker port on top of the one matching engine (ibot.exchange.matching).

It behaves the way the OMS must expect IB to: statuses and executions come as events (an execution first,
its commission in a separate report after it), a refused order comes back Inactive with an error, a reused
order id is refused with error 103, and while the connection is down events are lost but the engine keeps
trading and `executions()` still returns every fill of the session, as reqExecutions does after a reconnect.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from ibot.exchange.fees import FeeModel
from ibot.exchange.matching import FillRules, MatchingEngine, OrderRejected, UnknownOrderError
from ibot.model.clock import Clock
from ibot.model.errors import IbotError
from ibot.model.instruments import Instrument
from ibot.model.market import Bar
from ibot.model.orders import Fill, OrderStatus, OrderUpdate
from ibot.oms.broker import (
    AccountValue,
    BrokerCommission,
    BrokerError,
    BrokerEvent,
    BrokerExecution,
    BrokerIds,
    BrokerListener,
    BrokerOpenOrder,
    BrokerOrder,
    BrokerPosition,
    BrokerStatus,
    ConnectionEvent,
    ConnectionState,
)
from ibot.oms.states import to_decimal

__all__ = ["BrokerNotConnectedError", "PaperBroker"]

log = logging.getLogger(__name__)

# IB error codes the paper broker reproduces (IB TWS API "Message Codes").
ERR_DUPLICATE_ORDER_ID = 103
ERR_ORDER_REJECTED = 201
ERR_ORDER_CANCELLED = 202
ERR_CANCEL_NOT_FOUND = 10147


class BrokerNotConnectedError(IbotError, ConnectionError):
    """A request sent while the broker session is down."""


@dataclass(slots=True)
class _PaperOrder:
    order_id: int
    client_order_id: str
    perm_id: int
    instrument: Instrument
    account: str


class _EngineListener:
    """Turns one engine's reports into the broker's events."""

    __slots__ = ("broker", "instrument")

    def __init__(self, broker: PaperBroker, instrument: Instrument) -> None:
        self.broker = broker
        self.instrument = instrument

    def on_fill(self, fill: Fill) -> None:
        self.broker._on_engine_fill(self.instrument, fill)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.broker._on_engine_update(update)


class PaperBroker:
    """Implements `ibot.oms.broker.Broker` in process; market data goes in via on_bar/on_quote/on_trade."""

    def __init__(
        self,
        clock: Clock,
        *,
        rules: FillRules | None = None,
        fees: FeeModel | None = None,
        next_order_id: int = 1,
        account: str = "DU0000001",
        starting_cash: Decimal = Decimal(100_000),
        early_zero_commission: bool = False,
    ) -> None:
        self.clock = clock
        self.rules = rules or FillRules()
        self.fees = fees if fees is not None else FeeModel()
        self.next_valid_id = next_order_id
        self.account = account
        self.starting_cash = starting_cash
        self.early_zero_commission = early_zero_commission  # send an empty (0) report before the real one
        self._listener: BrokerListener | None = None
        self._connected = False
        self._engines: dict[str, MatchingEngine] = {}
        self._orders: dict[int, _PaperOrder] = {}
        self._by_cid: dict[str, int] = {}
        self._used_ids: set[int] = set()
        self._executions: list[BrokerExecution] = []
        self._positions: dict[str, int] = {}
        self._cash = starting_cash
        self._perm = 900_000_000
        self.placed: list[
            BrokerOrder
        ] = []  # every order that reached the venue, in order (for tests and audit)
        self.events_lost = 0

    # Session --------------------------------------------------------------------------------------------
    def set_listener(self, listener: BrokerListener | None) -> None:
        self._listener = listener

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def connect(self) -> int:
        self._connected = True
        self._emit(ConnectionEvent(ConnectionState.CONNECTED, self.clock.ns, "paper", self.next_valid_id))
        return self.next_valid_id

    async def disconnect(self) -> None:
        self.drop_connection("disconnect requested")

    def drop_connection(self, message: str = "connection lost") -> None:
        """Simulate a lost session: orders keep working, events from now on are lost until `connect()`."""
        if self._connected:
            self._emit(ConnectionEvent(ConnectionState.DISCONNECTED, self.clock.ns, message))
        self._connected = False

    def restart_gateway(self, next_valid_id: int) -> None:
        """Simulate a gateway restart that rolls nextValidId back (Lean IB brokerage #242): ids stay used."""
        self.drop_connection("gateway restart")
        self.next_valid_id = next_valid_id

    def _emit(self, event: BrokerEvent) -> None:
        if not self._connected or self._listener is None:
            self.events_lost += 1
            return
        self._listener.on_broker_event(event)

    def _require_connection(self, what: str) -> None:
        if not self._connected:
            raise BrokerNotConnectedError(f"paper broker: {what} while not connected")

    # Orders ---------------------------------------------------------------------------------------------
    def _engine(self, instrument: Instrument) -> MatchingEngine:
        eng = self._engines.get(instrument.key)
        if eng is None:
            prefix = f"0000{len(self._engines) + 1:04x}"
            eng = MatchingEngine(
                instrument, _EngineListener(self, instrument), self.rules, self.fees, None, prefix
            )
            self._engines[instrument.key] = eng
        return eng

    async def place(self, order: BrokerOrder) -> BrokerIds:
        self._require_connection(f"place order {order.order_id}")
        ts = self.clock.ns
        if order.order_id in self._used_ids:
            self._emit(BrokerError(order.order_id, ERR_DUPLICATE_ORDER_ID, "Duplicate order id", ts))
            return BrokerIds(order.order_id)
        self._used_ids.add(order.order_id)
        self.next_valid_id = max(self.next_valid_id, order.order_id + 1)
        self._perm += 1
        po = _PaperOrder(order.order_id, order.client_order_id, self._perm, order.instrument, order.account)
        self._orders[order.order_id] = po
        self._by_cid[order.client_order_id] = order.order_id
        self.placed.append(order)
        request = replace(order.request, client_order_id=order.client_order_id)
        try:
            self._engine(order.instrument).submit(request, ts)
        except OrderRejected as exc:
            self._emit(BrokerError(order.order_id, ERR_ORDER_REJECTED, f"Order rejected - reason:{exc}", ts))
        return BrokerIds(order.order_id, po.perm_id)

    async def modify(self, order: BrokerOrder) -> None:
        self._require_connection(f"modify order {order.order_id}")
        po = self._orders.get(order.order_id)
        eng = self._engines.get(order.instrument.key)
        if po is None or eng is None or not eng.is_live(po.client_order_id):
            self._emit(
                BrokerError(order.order_id, ERR_CANCEL_NOT_FOUND, "order to modify not found", self.clock.ns)
            )
            return
        req = order.request
        eng.modify(po.client_order_id, self.clock.ns, req.quantity, req.limit_price, req.stop_price)

    async def cancel(self, order_id: int) -> None:
        self._require_connection(f"cancel order {order_id}")
        po = self._orders.get(order_id)
        eng = None if po is None else self._engines.get(po.instrument.key)
        try:
            if po is None or eng is None:
                raise UnknownOrderError(f"cancel: no order {order_id}")
            eng.cancel(po.client_order_id, self.clock.ns)
        except UnknownOrderError:
            self._emit(
                BrokerError(
                    order_id,
                    ERR_CANCEL_NOT_FOUND,
                    f"OrderId {order_id} that needs to be cancelled is not found.",
                    self.clock.ns,
                )
            )
            return
        self._emit(BrokerError(order_id, ERR_ORDER_CANCELLED, "Order Canceled - reason:", self.clock.ns))

    async def cancel_all(self) -> None:
        self._require_connection("cancel all")
        for eng in self._engines.values():
            eng.cancel_all(self.clock.ns)

    # Snapshots ------------------------------------------------------------------------------------------
    async def open_orders(self) -> Sequence[BrokerOpenOrder]:
        self._require_connection("open orders")
        out: list[BrokerOpenOrder] = []
        for eng in self._engines.values():
            for req in eng.open_orders():
                oid = self._by_cid[req.client_order_id]
                po = self._orders[oid]
                st = eng.state(req.client_order_id)
                assert st is not None
                out.append(
                    BrokerOpenOrder(
                        oid,
                        po.client_order_id,
                        po.perm_id,
                        po.instrument.key,
                        req.side,
                        req.quantity,
                        st.status,
                        st.filled,
                        st.remaining,
                        None,
                        po.account,
                    )
                )
        return out

    async def executions(self, since_ns: int | None = None) -> Sequence[BrokerExecution]:
        self._require_connection("executions")
        return [e for e in self._executions if since_ns is None or e.ts >= since_ns]

    async def positions(self) -> Sequence[BrokerPosition]:
        self._require_connection("positions")
        return [BrokerPosition(k, q, None, self.account) for k, q in self._positions.items() if q != 0]

    async def account_summary(self) -> Sequence[AccountValue]:
        self._require_connection("account summary")
        return [AccountValue("TotalCashValue", self._cash, "USD", self.account)]

    # Market data ----------------------------------------------------------------------------------------
    def on_bar(self, instrument: Instrument, bar: Bar) -> None:
        self.clock.advance(bar.ts)
        self._engine(instrument).on_bar(bar)

    def on_quote(self, instrument: Instrument, ts: int, bid: float, ask: float) -> None:
        self.clock.advance(ts)
        self._engine(instrument).on_quote(ts, bid, ask)

    def on_trade(self, instrument: Instrument, ts: int, price: float, size: float = math.inf) -> None:
        self.clock.advance(ts)
        self._engine(instrument).on_trade(ts, price, size)

    # Engine reports -------------------------------------------------------------------------------------
    def _on_engine_fill(self, instrument: Instrument, fill: Fill) -> None:
        oid = self._by_cid[fill.client_order_id]
        po = self._orders[oid]
        price = to_decimal(fill.price)
        execution = BrokerExecution(
            fill.exec_id,
            oid,
            instrument.key,
            fill.side,
            fill.quantity,
            price,
            fill.ts,
            po.client_order_id,
            po.perm_id,
            po.account,
            fill.commission,
            instrument.currency,
        )
        self._executions.append(execution)
        self._positions[instrument.key] = self._positions.get(instrument.key, 0) + fill.signed_quantity
        self._cash -= price * fill.signed_quantity * instrument.multiplier + fill.commission
        # IB sends execDetails without the fee, then a commissionReport for it.
        self._emit(replace(execution, commission=None))
        if self.early_zero_commission:
            self._emit(BrokerCommission(fill.exec_id, Decimal(0), instrument.currency, fill.ts))
        self._emit(BrokerCommission(fill.exec_id, fill.commission, instrument.currency, fill.ts))

    def _on_engine_update(self, update: OrderUpdate) -> None:
        oid = self._by_cid.get(update.client_order_id)
        if oid is None:
            log.error("paper broker: update for unknown order %s", update.client_order_id)
            return
        po = self._orders[oid]
        avg = to_decimal(update.avg_fill_price) if update.filled else None
        self._emit(
            BrokerStatus(
                oid,
                OrderStatus(update.status),
                update.ts,
                update.filled,
                update.remaining,
                avg,
                po.perm_id,
                po.client_order_id,
                update.message,
            )
        )

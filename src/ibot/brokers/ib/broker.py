"""`IBBroker`: the OMS's Broker port over an order-manager connection to TWS / IB Gateway (ib_async).

Orders carry the OMS's numeric order id (IB's orderId) and its client order id (IB's orderRef, echoed in open
orders and executions). FUT and STK; MKT, LMT, STP, STP LMT; marketable limits (priced from a quote snapshot);
brackets (parent + stop loss + take profit, transmitted together); modify; cancel one; cancel all
(reqGlobalCancel). ib_async's statuses, executions, commission reports and errors become the port's events.

Request ids and order ids: ib_async draws both from one counter, and it matches an error's id against its
orders before its requests, so an error on a data request could cancel a live order in its books. After every
(re)connect the request counter is moved `REQUEST_ID_OFFSET` above the next valid order id, keeping the two
apart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ib_async import ComboLeg, Contract, ExecutionFilter, Order, Trade
from ib_async.objects import CommissionReport
from ib_async.objects import Fill as IBFill

from ibot.brokers.ib.connection import HealthEvent, HealthEventKind, IBConnection
from ibot.brokers.ib.contracts import ContractResolver
from ibot.brokers.ib.parsing import (
    commission_of,
    is_unset,
    marketable_limit_price,
    order_for,
    order_status,
    position_from_ib,
    side_of_execution,
)
from ibot.model.errors import InvalidOrderError
from ibot.model.instruments import Instrument
from ibot.model.market import datetime_to_ns
from ibot.model.orders import OrderStatus, OrderType, Side
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
from ibot.oms.rolls import BrokerCombo, combo_leg_id, leg_of_combo

__all__ = ["REQUEST_ID_OFFSET", "IBBroker"]

log = logging.getLogger("ibot.brokers.ib")

REQUEST_ID_OFFSET = 1_000_000_000  # request ids live this far above order ids (int32 leaves room for both)
ERR_ORDER_CANCELLED = 202  # IB: "Order Canceled - reason:"


class IBBroker:
    """The Broker port through ib_async. Build it on an IBConnection of role ORDER_MANAGER."""

    def __init__(
        self,
        connection: IBConnection,
        contracts: ContractResolver | None = None,
        account: str = "",
        connect_timeout: float = 30.0,
    ) -> None:
        self.connection = connection
        self.contracts = contracts or ContractResolver(connection)
        self.account = account or connection.settings.account
        self.connect_timeout = connect_timeout
        self._listener: BrokerListener | None = None
        self._statuses: dict[int, OrderStatus] = {}
        self._refs: dict[int, str] = {}  # order id -> client order id
        self._next_order_id = 0
        self._by_key: dict[str, Instrument] = {}  # instrument key -> IB-qualified instrument
        ib = connection.ib
        ib.orderStatusEvent += self._on_status
        ib.execDetailsEvent += self._on_execution
        ib.commissionReportEvent += self._on_commission
        ib.errorEvent += self._on_error
        connection.add_listener(self._on_health)

    # --- session --------------------------------------------------------------------------------------------
    def set_listener(self, listener: BrokerListener | None) -> None:
        self._listener = listener

    async def connect(self) -> int:
        """Connect (with the connection's backoff) and return IB's next valid order id."""
        await self.connection.start(wait=True, timeout=self.connect_timeout)
        if not self._next_order_id:
            self._separate_request_ids()
        return self._next_order_id

    async def disconnect(self) -> None:
        await self.connection.stop()

    @property
    def is_connected(self) -> bool:
        return self.connection.is_connected

    # --- orders ---------------------------------------------------------------------------------------------
    async def place(self, order: BrokerOrder) -> BrokerIds:
        """Send one order (a bracket child when `parent_order_id` is set); IB confirms through events."""
        contract, instrument = await self._prepare(order, "place")
        self._send(contract, self._ib_order(order, instrument))
        return BrokerIds(order.order_id)

    async def place_bracket(
        self, entry: BrokerOrder, stop_loss: BrokerOrder, take_profit: BrokerOrder
    ) -> list[BrokerIds]:
        """Entry + stop loss + take profit as one IB bracket: nothing works until the last child is sent
        (transmit flags), and the children are one-cancels-all once the entry fills."""
        contract, instrument = await self._prepare(entry, "place bracket")
        exit_side = entry.request.side.opposite
        for child, what in ((stop_loss, "stop loss"), (take_profit, "take profit")):
            if child.request.side is not exit_side or child.request.quantity != entry.request.quantity:
                raise InvalidOrderError(
                    f"bracket {entry.client_order_id}: {what} must {exit_side} {entry.request.quantity}, "
                    f"got {child.request.side} {child.request.quantity}"
                )
            if child.instrument.key != entry.instrument.key:
                raise InvalidOrderError(
                    f"bracket {entry.client_order_id}: {what} is for {child.instrument.key}"
                )
        if stop_loss.request.order_type not in (OrderType.STP, OrderType.STP_LMT):
            raise InvalidOrderError(f"bracket {entry.client_order_id}: the stop loss must be a STP order")
        if take_profit.request.order_type is not OrderType.LMT:
            raise InvalidOrderError(f"bracket {entry.client_order_id}: the take profit must be a LMT order")
        orders = [
            self._ib_order(entry, instrument, transmit=False),
            self._ib_order(stop_loss, instrument, transmit=False, parent_id=entry.order_id),
            self._ib_order(take_profit, instrument, transmit=True, parent_id=entry.order_id),
        ]
        for ib_order in orders:
            self._send(contract, ib_order)
        return [BrokerIds(o.order_id) for o in (entry, stop_loss, take_profit)]

    async def place_combo(self, combo: BrokerCombo) -> BrokerIds:
        """Send a calendar-spread combo: a BAG contract whose legs are the qualified months (by conId, ratio
        and action of each leg request), exchange-directed (the legs' exchange, CME for the micros), bought;
        orderRef `combo.ref` (each leg's client order id is `combo_leg_id(ref, conId)`)."""
        self.connection.require_trading(f"place combo {combo.ref}")
        legs: list[ComboLeg] = []
        first: Instrument | None = None
        for request, instrument in combo.legs:
            contract, qualified = await self._contract(instrument)
            first = first or qualified
            ratio, rest = divmod(request.quantity, combo.quantity)
            if rest or ratio < 1:
                raise InvalidOrderError(
                    f"combo {combo.ref}: leg {request.quantity} is not a multiple of {combo.quantity}"
                )
            legs.append(
                ComboLeg(
                    conId=contract.conId, ratio=ratio, action=str(request.side), exchange=qualified.exchange
                )
            )
        if first is None:
            raise InvalidOrderError(f"combo {combo.ref}: no legs")
        bag = Contract(
            secType="BAG",
            symbol=first.symbol,
            exchange=first.exchange,
            currency=first.currency,
            comboLegs=legs,
        )
        ib_order = Order(
            orderId=combo.order_id,
            action="BUY",
            totalQuantity=combo.quantity,
            orderType=str(combo.order_type),
            tif="DAY",
            account=combo.account or self.account,
            orderRef=combo.ref,
        )
        if combo.limit_price is not None:
            ib_order.lmtPrice = float(combo.limit_price)
        self._send(bag, ib_order)
        return BrokerIds(combo.order_id)

    async def modify(self, order: BrokerOrder) -> None:
        """Change quantity and/or prices of a working order (same order id; IB: placeOrder again)."""
        if order.order_id not in self._refs and self._trade(order.order_id) is None:
            raise InvalidOrderError(f"modify {order.client_order_id}: order id {order.order_id} is not known")
        contract, instrument = await self._prepare(order, "modify")
        trade = self._trade(order.order_id)
        ib_order = self._ib_order(order, instrument)
        if trade is not None:
            ib_order.parentId = trade.order.parentId
            ib_order.permId = trade.order.permId
        self._send(contract, ib_order)

    async def cancel(self, order_id: int) -> None:
        self.connection.require_connected(f"cancel order {order_id}")
        trade = self._trade(order_id)
        self.connection.ib.cancelOrder(trade.order if trade is not None else Order(orderId=order_id))

    async def cancel_all(self) -> None:
        """Cancel every working order of the account, from any client (IB: reqGlobalCancel)."""
        self.connection.require_connected("cancel all orders")
        self.connection.ib.reqGlobalCancel()

    async def marketable_limit(
        self, instrument: Instrument, side: Side, offset_ticks: int = 2, timeout: float = 5.0
    ) -> float:
        """A limit price `offset_ticks` through the current quote (from an IB snapshot)."""
        self.connection.require_connected(f"quote {instrument.key}")
        contract, qualified = await self._contract(instrument)
        [ticker] = await asyncio.wait_for(self.connection.ib.reqTickersAsync(contract), timeout)
        return marketable_limit_price(qualified, side, float(ticker.bid), float(ticker.ask), offset_ticks)

    # --- snapshots ------------------------------------------------------------------------------------------
    async def open_orders(self) -> Sequence[BrokerOpenOrder]:
        self.connection.require_connected("open orders")
        trades: list[Trade] = await asyncio.wait_for(self.connection.ib.reqAllOpenOrdersAsync(), 30)
        out: list[BrokerOpenOrder] = []
        for t in trades:
            status = order_status(t.orderStatus.status, self._statuses.get(t.order.orderId))
            if status.is_done:
                continue
            total = _whole(t.order.totalQuantity)
            filled = _whole(t.orderStatus.filled)
            for cid, symbol, side, ratio in self._legs(t):
                out.append(
                    BrokerOpenOrder(
                        order_id=t.order.orderId,
                        client_order_id=cid,
                        perm_id=t.order.permId or None,
                        symbol=symbol,
                        side=side,
                        quantity=total * ratio,
                        status=status,
                        filled=filled * ratio,
                        remaining=max(total - filled, 0) * ratio,
                        client_id=t.order.clientId,
                        account=t.order.account,
                    )
                )
        return out

    def _legs(self, trade: Trade) -> list[tuple[str, str, Side, int]]:
        """(client order id, symbol, side, ratio) of each order of ours behind an IB order: the order itself,
        or each leg of a combo (ibot.oms.rolls names the legs' client order ids)."""
        c, o = trade.contract, trade.order
        if c.secType != "BAG" or not c.comboLegs:
            return [(o.orderRef, _key(c), Side(o.action), 1)]
        by_con = {q.con_id: q.key for q in self._by_key.values()}
        out = []
        for leg in c.comboLegs:
            side = Side(leg.action) if o.action == "BUY" else Side(leg.action).opposite
            out.append((combo_leg_id(o.orderRef, leg.conId), by_con.get(leg.conId, ""), side, leg.ratio or 1))
        return out

    async def executions(self, since_ns: int | None = None) -> Sequence[BrokerExecution]:
        """Today's executions (IB keeps the session's day), with commissions when already reported."""
        self.connection.require_connected("executions")
        fills: list[IBFill] = await asyncio.wait_for(
            self.connection.ib.reqExecutionsAsync(ExecutionFilter()), 30
        )
        out = [
            self._execution(f) for f in fills if f.contract.secType != "BAG"
        ]  # a combo's own: its legs count
        if since_ns is not None:
            out = [e for e in out if e.ts >= since_ns]
        return sorted(out, key=lambda e: (e.ts, e.exec_id))

    async def positions(self) -> Sequence[BrokerPosition]:
        """IB's positions; `avg_cost` is the average price per unit (IB's avgCost over the multiplier)."""
        self.connection.require_connected("positions")
        raw = await asyncio.wait_for(self.connection.ib.reqPositionsAsync(), 30)
        out: list[BrokerPosition] = []
        for p in raw:
            account, _, quantity, avg = position_from_ib(p)
            cost = None if is_unset(avg) else Decimal(repr(avg))
            out.append(BrokerPosition(_key(p.contract), quantity, cost, account))
        return out

    async def account_summary(self) -> Sequence[AccountValue]:
        self.connection.require_connected("account summary")
        values = await asyncio.wait_for(self.connection.ib.accountSummaryAsync(self.account), 30)
        out: list[AccountValue] = []
        for v in values:
            try:
                amount = Decimal(v.value)
            except ArithmeticError:
                continue  # text values (AccountType ...)
            if amount.is_finite():
                out.append(AccountValue(v.tag, amount, v.currency, v.account))
        return out

    # --- internals: sending ---------------------------------------------------------------------------------
    async def _prepare(self, order: BrokerOrder, what: str) -> tuple[Contract, Instrument]:
        self.connection.require_trading(f"{what} {order.client_order_id} ({order.instrument.key})")
        return await self._contract(order.instrument)

    async def prepare(self, instrument: Instrument) -> Instrument:
        """Qualify and cache `instrument`'s order contract now (the venue calls it ahead of the first order,
        so the order path has no contract round trip); returns the qualified instrument."""
        return (await self._contract(instrument))[1]

    async def _contract(self, instrument: Instrument) -> tuple[Contract, Instrument]:
        qualified = self._by_key.get(instrument.key)
        if qualified is None:
            qualified = await self.contracts.qualify_instrument(instrument)
            self._by_key[instrument.key] = qualified
        return self.contracts.contract(qualified), qualified

    def _ib_order(
        self, order: BrokerOrder, instrument: Instrument, transmit: bool = True, parent_id: int | None = None
    ) -> Order:
        parent = parent_id if parent_id is not None else order.parent_order_id or 0
        ib_order = order_for(
            order.request,
            instrument,
            account=order.account or self.account,
            transmit=transmit,
            parent_id=parent,
        )
        ib_order.orderId = order.order_id
        ib_order.orderRef = order.client_order_id or order.request.client_order_id
        return ib_order

    def _send(self, contract: Contract, ib_order: Order) -> None:
        ib = self.connection.ib
        ib.client.updateReqId(
            ib_order.orderId + REQUEST_ID_OFFSET
        )  # requests clear of order ids (module doc)
        self._refs[ib_order.orderId] = ib_order.orderRef
        self._statuses.setdefault(ib_order.orderId, OrderStatus.CREATED)
        ib.placeOrder(contract, ib_order)
        log.info(
            "ib.order id=%d ref=%s %s %s %s %s",
            ib_order.orderId,
            ib_order.orderRef,
            ib_order.action,
            ib_order.totalQuantity,
            _key(contract),
            ib_order.orderType,
        )

    def _trade(self, order_id: int) -> Trade | None:
        for trade in self.connection.ib.trades():
            if trade.order.orderId == order_id and trade.order.clientId in (0, self.connection.client_id):
                return trade
        return None

    def _separate_request_ids(self) -> None:
        client = self.connection.ib.client
        self._next_order_id = client.getReqId()
        client.updateReqId(self._next_order_id + REQUEST_ID_OFFSET)

    # --- internals: events ----------------------------------------------------------------------------------
    def _emit(self, event: BrokerEvent) -> None:
        if self._listener is not None:
            self._listener.on_broker_event(event)

    def _on_status(self, trade: Trade) -> None:
        order_id = trade.order.orderId
        previous = self._statuses.get(order_id)
        status = order_status(trade.orderStatus.status, previous)
        guessed = _cancelled_by_ib_async(trade)
        if guessed and guessed != ERR_ORDER_CANCELLED:
            # ib_async's own guess, not IB's report: it marks a trade Cancelled on any order error. IB answers
            # 201 with Inactive, and a working order survives 103/10147/10148/161; only a new order IB never
            # acknowledged is refused for good (Inactive), and 202 does mean Cancelled.
            if previous not in (None, OrderStatus.CREATED, OrderStatus.PENDING_SUBMIT):
                log.info("ib.order id=%d: error %d leaves it %s", order_id, guessed, previous)
                return
            status = OrderStatus.INACTIVE
        self._statuses[order_id] = status
        s = trade.orderStatus
        avg = None if is_unset(s.avgFillPrice) or not s.avgFillPrice else Decimal(repr(float(s.avgFillPrice)))
        message = ""
        if trade.log and trade.log[-1].errorCode:
            message = f"{trade.log[-1].errorCode}: {trade.log[-1].message}"
        total = _whole(trade.order.totalQuantity)
        filled = _whole(s.filled)
        remaining = _whole(s.remaining) if s.status != "PendingSubmit" else total - filled
        if (
            trade.contract.secType == "BAG"
        ):  # a combo: each leg is an order of ours (its price: the leg's fills)
            avg = None
        for cid, _, _, ratio in self._legs(trade):
            self._emit(
                BrokerStatus(
                    order_id=order_id,
                    status=status,
                    ts=self.connection.clock(),
                    filled=filled * ratio,
                    remaining=max(remaining, 0) * ratio,
                    avg_fill_price=avg,
                    perm_id=(s.permId or trade.order.permId) or None,
                    client_order_id=cid or self._refs.get(order_id, ""),
                    message=message,
                )
            )

    def _on_execution(self, trade: Trade, fill: IBFill) -> None:
        if fill.contract.secType == "BAG":
            return  # a combo's own execution (IB may send one): its legs' executions are what we count
        self._emit(self._execution(fill, trade))

    def _on_commission(self, trade: Trade, fill: IBFill, report: CommissionReport) -> None:
        pnl = None if is_unset(report.realizedPNL) else Decimal(repr(float(report.realizedPNL)))
        self._emit(
            BrokerCommission(
                exec_id=report.execId or fill.execution.execId,
                commission=commission_of(report),
                currency=report.currency,
                ts=self.connection.clock(),
                realized_pnl=pnl,
            )
        )

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        if req_id == -1:
            if code in (1100, 1101, 1102):
                return  # reported as ConnectionEvents
            self._emit(BrokerError(None, code, message, self.connection.clock()))
        elif req_id in self._refs:
            self._emit(BrokerError(req_id, code, message, self.connection.clock()))

    def _on_health(self, event: HealthEvent) -> None:
        kind = event.kind
        if kind is HealthEventKind.CONNECTED:
            self._separate_request_ids()
            self._emit(ConnectionEvent(ConnectionState.CONNECTED, event.ts, "", self._next_order_id))
        elif kind is HealthEventKind.DISCONNECTED:
            self._emit(ConnectionEvent(ConnectionState.DISCONNECTED, event.ts, event.message))
        elif kind is HealthEventKind.CONNECTIVITY_LOST:
            self._emit(ConnectionEvent(ConnectionState.DISCONNECTED, event.ts, f"1100: {event.message}"))
        elif kind is HealthEventKind.RESTORED_DATA_LOST:
            self._emit(ConnectionEvent(ConnectionState.DATA_LOST, event.ts, f"1101: {event.message}"))
        elif kind is HealthEventKind.RESTORED_DATA_KEPT:
            self._emit(ConnectionEvent(ConnectionState.RESTORED, event.ts, f"1102: {event.message}"))

    def _execution(self, fill: IBFill, trade: Trade | None = None) -> BrokerExecution:
        e = fill.execution
        when = e.time if e.time.tzinfo is not None else e.time.replace(tzinfo=UTC)
        if when <= datetime(1971, 1, 1, tzinfo=UTC):
            when = fill.time if fill.time.tzinfo is not None else fill.time.replace(tzinfo=UTC)
        ref = (
            e.orderRef or (trade.order.orderRef if trade is not None else "") or self._refs.get(e.orderId, "")
        )
        return BrokerExecution(
            exec_id=e.execId,
            order_id=e.orderId,
            symbol=_key(fill.contract),
            side=side_of_execution(e),
            quantity=_whole(e.shares),
            price=Decimal(repr(float(e.price))),
            ts=datetime_to_ns(when),
            client_order_id=leg_of_combo(ref, fill.contract.conId),
            perm_id=e.permId or None,
            account=e.acctNumber,
            commission=commission_of(fill.commissionReport),
            currency=fill.commissionReport.currency if fill.commissionReport else "",
        )


def _key(contract: Contract | None) -> str:
    """The instrument key positions and fills are kept under: local symbol for a future, symbol otherwise."""
    if contract is None:
        return ""
    if contract.secType == "FUT" and contract.localSymbol:
        return contract.localSymbol
    return contract.symbol


def _cancelled_by_ib_async(trade: Trade) -> int:
    """The error code when ib_async itself marked `trade` Cancelled after an order error, else 0."""
    last = trade.log[-1] if trade.log else None
    if trade.orderStatus.status == "Cancelled" and last is not None and last.status == "Cancelled":
        return int(last.errorCode or 0)
    return 0


def _whole(value: float | Decimal) -> int:
    v = float(value)
    return 0 if is_unset(v) else round(v)

"""The order manager, the one owner of orders: risk check -> write-ahead record -> broker; events -> records.

What it promises:
- A client order id names one order forever: submitting it again returns the existing order, never resends
  (ids known to this process are found in memory; one recorded by an earlier process is caught by the records'
  unique constraint when the write-ahead record is refused).
- Nothing reaches the broker that was not first recorded (committed, durable) with the broker order id it will
  carry: the id reservation, the order and its PendingSubmit event are ONE transaction before the send.
- Broker order ids are never reused: the highest id ever used is persisted and the next one is
  max(broker's next valid id, last used + 1), since IB's nextValidId can go backwards after a gateway restart.
- Every status change and execution goes through the state machine (`ibot.oms.states`), is written to the
  records, then reaches the strategy callbacks (OrderUpdate, Fill).
- `reconcile` after a (re)connect adopts executions missed while disconnected (each exec id once), closes
  orders the broker no longer has, and reports every difference, positions included.
- The kill switch (daily loss limit, or `kill()`) cancels everything and flattens with market orders.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from ibot.model.catalog import resolve
from ibot.model.clock import Clock
from ibot.model.errors import InvalidOrderError
from ibot.model.instruments import Instrument
from ibot.model.orders import Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from ibot.oms.broker import (
    Broker,
    BrokerCommission,
    BrokerError,
    BrokerEvent,
    BrokerExecution,
    BrokerOpenOrder,
    BrokerOrder,
    BrokerPosition,
    BrokerStatus,
    ConnectionEvent,
    ConnectionState,
)
from ibot.oms.records import (
    DuplicateOrderError,
    OrderChange,
    OrderRecord,
    OrderRecords,
    RecordsError,
    broker_amount,
)
from ibot.oms.risk import RiskLimitExceeded, RiskManager
from ibot.oms.states import Applied, OrderState

__all__ = ["ManagedOrder", "OrderManager", "ReconcileReport", "UnknownOrderError"]

log = logging.getLogger(__name__)

# IB error codes that end an order (IB TWS API "Message Codes"): 103 duplicate order id, 201 order rejected,
# 202 order cancelled (normally after a Cancelled status; handled in case the status never came).
ERR_DUPLICATE_ORDER_ID = 103
ERR_ORDER_REJECTED = 201
ERR_ORDER_CANCELLED = 202


class UnknownOrderError(InvalidOrderError, KeyError):
    """A client order id the order manager has no record of."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(slots=True)
class ManagedOrder:
    """One order as the manager holds it: the request, its contract, its broker ids and its state."""

    request: OrderRequest
    instrument: Instrument
    state: OrderState
    order_id: int | None = None
    perm_id: int | None = None
    strategy: str = ""

    @property
    def client_order_id(self) -> str:
        return self.state.client_order_id

    @property
    def status(self) -> OrderStatus:
        return self.state.status

    @property
    def filled(self) -> int:
        return self.state.filled

    @property
    def remaining(self) -> int:
        return self.state.remaining

    @property
    def avg_fill_price(self) -> Decimal | None:
        return self.state.avg_fill_price

    @property
    def is_final(self) -> bool:
        return self.state.is_final


@dataclass(slots=True)
class ReconcileReport:
    """What reconciliation found and did; `clean` when the broker and our records agreed."""

    adopted_fills: list[str] = field(default_factory=list)  # exec ids applied now, missed before
    closed_orders: list[str] = field(default_factory=list)  # client ids the broker no longer had
    status_changes: list[tuple[str, OrderStatus]] = field(default_factory=list)
    unknown_executions: list[str] = field(default_factory=list)  # exec ids of orders we never placed
    unknown_open_orders: list[int] = field(default_factory=list)  # broker order ids we never placed
    position_differences: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (ours, broker's)

    @property
    def clean(self) -> bool:
        return not (
            self.adopted_fills
            or self.closed_orders
            or self.status_changes
            or self.unknown_executions
            or self.unknown_open_orders
            or self.position_differences
        )


UpdateCallback = Callable[[OrderUpdate], None]
FillCallback = Callable[[Fill], None]


class OrderManager:
    """Owns every order of one client session; implements `BrokerListener` for its broker."""

    def __init__(
        self,
        broker: Broker,
        records: OrderRecords,
        risk: RiskManager,
        clock: Clock,
        *,
        instruments: Callable[[str], Instrument] | None = None,
        client_id: int | None = None,
        account: str = "",
        id_prefix: str = "ibot",
    ) -> None:
        self.broker = broker
        self.records = records
        self.risk = risk
        self.clock = clock
        self.client_id = client_id
        self.account = account
        self.id_prefix = id_prefix
        self._resolve = instruments or self._catalog_instrument
        self._instruments: dict[str, Instrument] = {}
        self._orders: dict[str, ManagedOrder] = {}
        self._working: dict[str, ManagedOrder] = {}  # not final (final ones are dropped when next scanned)
        self._by_order_id: dict[int, str] = {}
        self._by_perm_id: dict[int, str] = {}
        self._in_flight: set[str] = set()
        self._unannounced: dict[str, tuple[int, str]] = {}  # PendingSubmit recorded, callbacks not yet called
        self._pending_commissions: dict[str, BrokerCommission] = {}
        self._on_update: list[UpdateCallback] = []
        self._on_fill: list[FillCallback] = []
        self._tasks: set[asyncio.Task[object]] = set()
        self.broker_next_id = 0
        self.connected = False
        self.kill_pending: str | None = None
        broker.set_listener(self)
        for rec in records.open_orders():
            self._load(rec)

    # Wiring ---------------------------------------------------------------------------------------------
    def add_listener(
        self, on_update: UpdateCallback | None = None, on_fill: FillCallback | None = None
    ) -> None:
        """Strategy callbacks: every order state change, every execution."""
        if on_update is not None:
            self._on_update.append(on_update)
        if on_fill is not None:
            self._on_fill.append(on_fill)

    def _catalog_instrument(self, symbol: str) -> Instrument:
        return resolve(symbol, self.clock.now().date() if self.clock.ns else date.today())

    def instrument(self, symbol: str) -> Instrument:
        inst = self._instruments.get(symbol)
        if inst is None:
            inst = self._resolve(symbol)
            self._instruments[symbol] = inst
            self._instruments[inst.key] = inst
        return inst

    def order(self, client_order_id: str) -> ManagedOrder | None:
        """The order with this client id, from memory or the records."""
        m = self._orders.get(client_order_id)
        if m is None:
            rec = self.records.get_order(client_order_id)
            if rec is not None:
                m = self._load(rec)
        return m

    def orders(self) -> list[ManagedOrder]:
        return list(self._orders.values())

    def working_orders(self, key: str | None = None) -> list[ManagedOrder]:
        """Orders not final (Created included: recorded, maybe sent), optionally for one instrument key."""
        out: list[ManagedOrder] = []
        done: list[str] = []
        for cid, m in self._working.items():  # O(working orders), not O(every order of the session)
            if m.is_final:
                done.append(cid)  # a final order never works again (states.FINAL)
            elif key is None or m.instrument.key == key:
                out.append(m)
        for cid in done:
            del self._working[cid]
        return out

    def _load(self, rec: OrderRecord) -> ManagedOrder:
        """Rebuild an order from its record and executions (after a restart, or for a late event)."""
        inst = self.instrument(rec.key)
        request = OrderRequest(
            rec.symbol,
            rec.side,
            rec.quantity,
            OrderType(rec.order_type),
            float(rec.limit_price) if rec.limit_price is not None else None,
            float(rec.stop_price) if rec.stop_price is not None else None,
            TimeInForce(rec.tif),
            rec.client_order_id,
            rec.reason,
            rec.parent_client_order_id,
            rec.oca_group,
        )
        state = OrderState(rec.client_order_id, rec.quantity, OrderStatus.CREATED, rec.created_ts)
        for f in self.records.fills(rec.client_order_id):
            state.apply_fill(f.exec_id, f.quantity, f.price, f.ts)
        state.status = rec.status  # as recorded, whatever the fills say
        state.message = rec.last_message
        m = ManagedOrder(request, inst, state, rec.ib_order_id, rec.perm_id, rec.strategy)
        self._register(m)
        return m

    def _register(self, m: ManagedOrder) -> None:
        self._orders[m.client_order_id] = m
        if not m.is_final:
            self._working[m.client_order_id] = m
        if m.order_id is not None:
            self._by_order_id[m.order_id] = m.client_order_id
        if m.perm_id:
            self._by_perm_id[m.perm_id] = m.client_order_id

    def _find(
        self, order_id: int | None, perm_id: int | None = None, client_order_id: str = ""
    ) -> ManagedOrder | None:
        if client_order_id:
            m = self.order(client_order_id)
            if m is not None:
                return m
        if perm_id and perm_id in self._by_perm_id:
            return self._orders[self._by_perm_id[perm_id]]
        if order_id is not None and order_id in self._by_order_id:
            return self._orders[self._by_order_id[order_id]]
        rec = self.records.find_order(ib_order_id=order_id, perm_id=perm_id, client_id=self.client_id)
        return None if rec is None else self._load(rec)

    # Session --------------------------------------------------------------------------------------------
    async def connect(self) -> ReconcileReport:
        """Connect the broker and reconcile with what it has (orders, executions, positions)."""
        self.broker_next_id = await self.broker.connect()
        self.connected = True
        return await self.resync()

    async def resync(self) -> ReconcileReport:
        """Fetch the broker's open orders, the day's executions and positions, then reconcile."""
        open_orders = await self.broker.open_orders()
        executions = await self.broker.executions(None)
        positions = await self.broker.positions()
        return self.reconcile(open_orders, executions, positions)

    # Orders ---------------------------------------------------------------------------------------------
    async def submit(
        self, request: OrderRequest, *, strategy: str = "", flatten: bool = False
    ) -> ManagedOrder:
        """Check, record (write-ahead) and send an order; a client order id already known is never sent again.

        Raises RiskLimitExceeded (the refusal is recorded as a Rejected order) or the broker's error.
        """
        cid = request.client_order_id
        if cid:
            existing = self._orders.get(cid)  # memory only: an id of an earlier process is caught below
            if existing is not None:
                log.info("order %s already exists (%s): not sent again", cid, existing.status)
                return existing
        ts = self.clock.ns
        instrument = self.instrument(request.symbol)
        working = sum(
            m.remaining for m in self.working_orders(instrument.key) if m.request.side is request.side
        )
        try:
            self.risk.check(request, instrument, working_same_side=working, flatten=flatten)
        except RiskLimitExceeded as exc:
            rejected = cid or f"{self.id_prefix}-rej-{uuid.uuid4().hex[:12]}"
            try:
                self.records.record_new(
                    request,
                    ts=ts,
                    instrument=instrument,
                    client_order_id=rejected,
                    client_id=self.client_id,
                    account=self.account,
                    strategy=strategy,
                    status=OrderStatus.REJECTED,
                    message=str(exc),
                    source="risk",
                )
            except DuplicateOrderError:
                if not cid:
                    raise
                return self._recorded_before(cid)
            state = OrderState(rejected, request.quantity, OrderStatus.REJECTED, ts)
            state.message = str(exc)
            m = ManagedOrder(
                replace(request, client_order_id=rejected), instrument, state, None, None, strategy
            )
            self._register(m)
            log.warning("order %s rejected by risk: %s", rejected, exc)
            self._notify(m, ts, str(exc))
            raise
        # Write-ahead, ONE durable transaction (see OrderRecords.record_submission): the broker order id, the
        # order and its PendingSubmit event are committed before anything is sent, so a crash or kill -9 after
        # the send (a power loss too, with records_sync "full") can never lose this order. Nothing may send
        # before it returns.
        sent_message = "sent to broker"
        try:
            ahead = self.records.record_submission(
                request,
                ts=ts,
                instrument=instrument,
                broker_next_id=self.broker_next_id,
                client_order_id=cid or self._default_client_order_id,
                client_id=self.client_id,
                account=self.account,
                strategy=strategy,
                message=sent_message,
            )
        except DuplicateOrderError:
            if not cid:  # an id we made up collided with a recorded one: not a resubmission, a real error
                raise
            return self._recorded_before(cid)
        order_id, cid = ahead.order_id, ahead.client_order_id
        self.broker_next_id = order_id + 1
        if request.client_order_id != cid:
            request = replace(request, client_order_id=cid)
        m = ManagedOrder(
            request, instrument, OrderState(cid, request.quantity, OrderStatus.CREATED, ts), order_id
        )
        m.strategy = strategy
        self._register(m)
        self.risk.on_order_sent(ts)
        parent = self._orders.get(request.parent_id) if request.parent_id else None
        self._in_flight.add(cid)
        # PendingSubmit is already recorded (the write-ahead transaction): the state now, the callbacks once
        # the order is on its way (the send comes first on the tick-to-order path). A broker that reports on
        # the order inside place() (the paper broker): callbacks still hear PendingSubmit first (_announce).
        if m.state.apply_status(OrderStatus.PENDING_SUBMIT, ts, sent_message) is Applied.CHANGED:
            self._unannounced[cid] = (ts, sent_message)
        try:
            ids = await self.broker.place(
                BrokerOrder(
                    request,
                    instrument,
                    order_id,
                    cid,
                    self.account,
                    parent.order_id if parent is not None else None,
                )
            )
        except InvalidOrderError as exc:
            self._announce(m)
            self._set_status(m, OrderStatus.INACTIVE, ts, f"refused by the broker adapter: {exc}", "oms")
            raise
        except Exception as exc:
            self._announce(m)
            # It may or may not have reached the broker: reconciliation after reconnect decides.
            self._record_message(m, ts, f"send failed ({type(exc).__name__}: {exc}); state unknown", "oms")
            raise
        finally:
            self._in_flight.discard(cid)
        self._announce(m)
        if ids.perm_id and m.perm_id != ids.perm_id:
            m.perm_id = ids.perm_id
            self._by_perm_id[ids.perm_id] = cid
            self._record_message(m, ts, f"placed: order id {ids.order_id}, perm id {ids.perm_id}", "broker")
        return m

    def _default_client_order_id(self, order_id: int) -> str:
        return f"{self.id_prefix}-{self.client_id or 0}-{order_id}"

    def _recorded_before(self, cid: str) -> ManagedOrder:
        """A client order id the records already hold (an earlier process used it): that order, not resent."""
        rec = self.records.get_order(cid)
        if rec is None:
            raise RecordsError(f"order {cid!r} was refused as a duplicate but is not in the records")
        m = self._load(rec)
        log.info("order %s was recorded by an earlier process (%s): not sent again", cid, m.status)
        return m

    async def cancel(self, client_order_id: str) -> bool:
        """Ask the broker to cancel; False when the order is already final."""
        m = self.order(client_order_id)
        if m is None:
            raise UnknownOrderError(f"cancel: no order {client_order_id!r}")
        if m.is_final:
            return False
        ts = self.clock.ns
        if m.order_id is None:
            self._set_status(m, OrderStatus.CANCELLED, ts, "cancelled before it was sent", "oms")
            return True
        self._set_status(m, OrderStatus.PENDING_CANCEL, ts, "cancel requested", "oms")
        await self.broker.cancel(m.order_id)
        return True

    async def cancel_all(self) -> None:
        """Cancel every working order at the broker (all of the account's, like IB's global cancel)."""
        ts = self.clock.ns
        for m in self.working_orders():
            if m.client_order_id not in self._in_flight:
                self._set_status(m, OrderStatus.PENDING_CANCEL, ts, "cancel all requested", "oms")
        await self.broker.cancel_all()

    async def modify(
        self,
        client_order_id: str,
        *,
        quantity: int | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> ManagedOrder:
        """Change a working order's total quantity and/or prices (same broker order id), risk-checked."""
        m = self.order(client_order_id)
        if m is None:
            raise UnknownOrderError(f"modify: no order {client_order_id!r}")
        if m.is_final or m.order_id is None:
            raise InvalidOrderError(f"modify order {client_order_id}: it is {m.status}")
        changes: dict[str, object] = {}
        if quantity is not None:
            changes["quantity"] = quantity
        if limit_price is not None:
            changes["limit_price"] = limit_price
        if stop_price is not None:
            changes["stop_price"] = stop_price
        new_request = replace(m.request, **changes)  # type: ignore[arg-type]
        new_total = new_request.quantity
        if new_total <= m.filled:
            raise InvalidOrderError(
                f"modify order {client_order_id}: quantity {new_total} must exceed "
                f"the {m.filled} already filled"
            )
        others = sum(
            o.remaining
            for o in self.working_orders(m.instrument.key)
            if o.request.side is m.request.side and o is not m
        )
        self.risk.check(
            replace(new_request, quantity=new_total - m.filled),
            m.instrument,
            working_same_side=others,
            new_order=False,
        )
        m.state.set_quantity(new_total)
        m.request = new_request
        s = m.state
        self.records.record_event(
            m.client_order_id,
            status=s.status,
            filled=s.filled,
            remaining=s.remaining,
            avg_fill_price=s.avg_fill_price,
            ts=self.clock.ns,
            message=f"modify requested: {changes}",
            source="oms",
            quantity=new_total,
            limit_price=new_request.limit_price,
            stop_price=new_request.stop_price,
        )
        await self.broker.modify(
            BrokerOrder(new_request, m.instrument, m.order_id, m.client_order_id, self.account)
        )
        return m

    # Broker events --------------------------------------------------------------------------------------
    def on_broker_event(self, event: BrokerEvent) -> None:
        """Everything the broker reports comes in here (called on the event loop)."""
        if isinstance(event, BrokerExecution):
            if not self._apply_execution(event, "broker") and not self._known_execution(event.exec_id):
                log.error("execution %s for unknown order id %s: not adopted", event.exec_id, event.order_id)
        elif isinstance(event, BrokerStatus):
            self._on_status(event)
        elif isinstance(event, BrokerCommission):
            self._apply_commission(event)
        elif isinstance(event, BrokerError):
            self._on_error(event)
        elif isinstance(event, ConnectionEvent):
            self._on_connection(event)

    def _on_status(self, event: BrokerStatus) -> None:
        m = self._find(event.order_id, event.perm_id, event.client_order_id)
        if m is None:
            log.warning("status %s for unknown order id %s ignored", event.status, event.order_id)
            return
        new_perm_id = bool(event.perm_id) and m.perm_id != event.perm_id
        if new_perm_id and event.perm_id:
            m.perm_id = event.perm_id
            self._by_perm_id[event.perm_id] = m.client_order_id
        if event.filled > m.filled:
            log.info(
                "order %s: broker reports %d filled, %d executions seen so far",
                m.client_order_id,
                event.filled,
                m.filled,
            )
        if not self._set_status(m, event.status, event.ts, event.message, "broker") and new_perm_id:
            self._persist(m, event.ts, f"perm id {m.perm_id}", "broker")  # the cross-session id, kept

    def _on_error(self, event: BrokerError) -> None:
        m = self._find(event.order_id) if event.order_id is not None and event.order_id >= 0 else None
        text = f"error {event.code}: {event.message}"
        if m is None:
            log.warning("broker %s (order id %s)", text, event.order_id)
            return
        if event.code in (ERR_DUPLICATE_ORDER_ID, ERR_ORDER_REJECTED):
            if event.code == ERR_DUPLICATE_ORDER_ID:
                log.error(
                    "order %s: broker says order id %s was already used", m.client_order_id, event.order_id
                )
            if self._set_status(m, OrderStatus.INACTIVE, event.ts, text, "broker"):
                return
        elif event.code == ERR_ORDER_CANCELLED and self._set_status(
            m, OrderStatus.CANCELLED, event.ts, text, "broker"
        ):
            return
        self._record_message(m, event.ts, text, "broker")

    def _on_connection(self, event: ConnectionEvent) -> None:
        if event.next_order_id is not None:
            if event.next_order_id < self.broker_next_id:
                log.warning(
                    "broker's next valid id went back from %d to %d; ids stay above %d",
                    self.broker_next_id,
                    event.next_order_id,
                    self.records.last_order_id(),
                )
            self.broker_next_id = event.next_order_id
        self.connected = event.state is not ConnectionState.DISCONNECTED
        log.info("broker connection %s %s", event.state, event.message)

    def _known_execution(self, exec_id: str) -> bool:
        return any(m.state.has_execution(exec_id) for m in self._orders.values()) or (
            self.records.fill(exec_id) is not None
        )

    def _apply_execution(self, ex: BrokerExecution, source: str) -> bool:
        """Count an execution once (by exec id): state, records, risk, callbacks; False if unknown/seen."""
        m = self._find(ex.order_id, ex.perm_id, ex.client_order_id)
        if m is None:
            return False
        if m.state.apply_fill(ex.exec_id, ex.quantity, ex.price, ex.ts) is Applied.DUPLICATE:
            return False
        if ex.perm_id and m.perm_id != ex.perm_id:  # e.g. filled while we were away: recorded just below
            m.perm_id = ex.perm_id
            self._by_perm_id[ex.perm_id] = m.client_order_id
        commission = broker_amount(ex.commission)
        message = f"execution {ex.exec_id}: {ex.side} {ex.quantity} @ {ex.price}"
        recorded = self.records.record_fill(
            m.client_order_id,
            exec_id=ex.exec_id,
            ts=ex.ts,
            side=ex.side,
            quantity=ex.quantity,
            price=ex.price,
            symbol=m.instrument.key,
            currency=ex.currency or m.instrument.currency,
            account=ex.account,
            ib_order_id=m.order_id,
            commission=commission,
            change=self._change(m, ex.ts, message, source),  # the fill and the order's state: one commit
        )
        if not recorded:  # the exec id was recorded already (nothing written): the order's state still is
            self._persist(m, ex.ts, message, source)
        tripped = self.risk.on_fill(m.instrument, ex.side, ex.quantity, ex.price, ex.ts)
        if commission:
            tripped |= self.risk.on_commission(m.instrument, commission, ex.ts)
        if self._unannounced:
            self._announce(m)
        fill = Fill(
            m.client_order_id,
            m.request.symbol,
            ex.side,
            ex.quantity,
            float(ex.price),
            ex.ts,
            commission or Decimal(0),  # the records hold the final fee once the broker reports it
            ex.exec_id,
            m.request.reason,
        )
        for cb in self._on_fill:
            cb(fill)
        self._notify(m, ex.ts, "")
        pending = self._pending_commissions.pop(ex.exec_id, None)
        if pending is not None:
            self._apply_commission(pending)
        if tripped:
            self._schedule_kill()
        return True

    def _apply_commission(self, report: BrokerCommission) -> None:
        changed = self.records.commission_change(
            report.exec_id, report.commission, currency=report.currency, realized_pnl=report.realized_pnl
        )
        if changed is None:
            self._pending_commissions[report.exec_id] = report  # the execution has not arrived yet
            return
        before, after = changed
        delta = (after.commission or Decimal(0)) - (before or Decimal(0))
        if delta:
            inst = self.instrument(after.symbol)
            if self.risk.on_commission(inst, delta, report.ts):
                self._schedule_kill()

    # State, records, callbacks ----------------------------------------------------------------------------
    def _set_status(self, m: ManagedOrder, status: OrderStatus, ts: int, message: str, source: str) -> bool:
        result = m.state.apply_status(status, ts, message)
        if result is not Applied.CHANGED:
            return False
        self._persist(m, ts, message, source)
        self._notify(m, ts, message)
        return True

    def _persist(self, m: ManagedOrder, ts: int, message: str, source: str) -> None:
        self.records.write_change(m.client_order_id, self._change(m, ts, message, source))

    @staticmethod
    def _change(m: ManagedOrder, ts: int, message: str, source: str) -> OrderChange:
        s = m.state
        return OrderChange(
            s.status,
            s.filled,
            s.remaining,
            s.avg_fill_price,
            ts,
            message,
            source,
            quantity=s.quantity,
            ib_order_id=m.order_id,
            perm_id=m.perm_id,
        )

    def _record_message(self, m: ManagedOrder, ts: int, message: str, source: str) -> None:
        m.state.message = message
        self._persist(m, ts, message, source)

    def _announce(self, m: ManagedOrder) -> None:
        """The callbacks of an order's PendingSubmit, deferred until after the send, if not called yet."""
        pending = self._unannounced.pop(m.client_order_id, None) if self._unannounced else None
        if pending is not None and self._on_update:
            ts, message = pending
            update = OrderUpdate(
                m.client_order_id, OrderStatus.PENDING_SUBMIT, 0, m.state.quantity, 0.0, ts, message
            )
            for cb in self._on_update:
                cb(update)

    def _notify(self, m: ManagedOrder, ts: int, message: str) -> None:
        if self._unannounced:
            self._announce(m)
        if not self._on_update:
            return
        avg = m.state.avg_fill_price
        update = OrderUpdate(
            m.client_order_id,
            m.status,
            m.filled,
            m.remaining,
            float(avg) if avg is not None else 0.0,
            ts,
            message,
        )
        for cb in self._on_update:
            cb(update)

    # Reconciliation ---------------------------------------------------------------------------------------
    def reconcile(
        self,
        open_orders: Iterable[BrokerOpenOrder],
        executions: Iterable[BrokerExecution],
        positions: Iterable[BrokerPosition],
    ) -> ReconcileReport:
        """Make our records agree with the broker's after a (re)connect; returns what differed.

        1. executions we have not counted (missed while disconnected) are applied, each exec id once;
        2. the broker's open orders update the status of ours; open orders we never placed are reported;
        3. our working orders the broker no longer has are closed (Filled if their executions say so);
        4. the broker's positions are adopted as the truth and any difference is reported.
        """
        report = ReconcileReport()
        for ex in sorted(executions, key=lambda e: e.ts):
            if self._known_execution(ex.exec_id):
                if ex.commission is not None:
                    self._apply_commission(BrokerCommission(ex.exec_id, ex.commission, ex.currency, ex.ts))
                continue
            if self._apply_execution(ex, "reconcile"):
                report.adopted_fills.append(ex.exec_id)
                log.warning("reconcile: adopted execution %s missed while disconnected", ex.exec_id)
            else:
                report.unknown_executions.append(ex.exec_id)
                log.error("reconcile: execution %s of order id %s is not ours", ex.exec_id, ex.order_id)
        ts = self.clock.ns
        seen: set[str] = set()
        for oo in open_orders:
            m = self._find(oo.order_id, oo.perm_id, oo.client_order_id)
            if m is None:
                report.unknown_open_orders.append(oo.order_id)
                log.error(
                    "reconcile: broker has order id %s (%s) that we never placed", oo.order_id, oo.symbol
                )
                continue
            seen.add(m.client_order_id)
            new_perm_id = bool(oo.perm_id) and not m.perm_id
            if new_perm_id and oo.perm_id:
                m.perm_id = oo.perm_id
                self._by_perm_id[oo.perm_id] = m.client_order_id
            if oo.status is not m.status and self._set_status(
                m, oo.status, ts, "reconcile: status at the broker", "reconcile"
            ):
                report.status_changes.append((m.client_order_id, oo.status))
            elif new_perm_id:
                self._persist(m, ts, f"reconcile: perm id {m.perm_id}", "reconcile")
        for m in self.working_orders():
            cid = m.client_order_id
            if cid in seen or cid in self._in_flight:
                continue
            never_acknowledged = m.status in (OrderStatus.CREATED, OrderStatus.PENDING_SUBMIT)
            status = OrderStatus.INACTIVE if never_acknowledged else OrderStatus.CANCELLED
            if m.filled >= m.state.quantity:
                status = OrderStatus.FILLED
            self._set_status(m, status, ts, "reconcile: the broker no longer has this order", "reconcile")
            report.closed_orders.append(cid)
            log.warning("reconcile: closed %s as %s (not at the broker)", cid, status)
        theirs = {p.key: p.quantity for p in positions}
        ours = self.risk.positions()
        for key in sorted(set(theirs) | set(ours)):
            mine, broker = ours.get(key, 0), theirs.get(key, 0)
            if mine != broker:
                report.position_differences[key] = (mine, broker)
                log.error(
                    "reconcile: position %s is %d here but %d at the broker; adopting the broker's",
                    key,
                    mine,
                    broker,
                )
                self.risk.set_position(self.instrument(key), broker)
        return report

    # Kill switch ------------------------------------------------------------------------------------------
    def on_price(self, instrument: Instrument | str, price: float | Decimal, ts: int | None = None) -> bool:
        """A new last price for risk (P&L, price band); returns True when it tripped the kill switch."""
        inst = instrument if isinstance(instrument, Instrument) else self.instrument(instrument)
        self._instruments.setdefault(inst.key, inst)
        tripped = self.risk.mark(inst, price, ts)
        if tripped:
            self._schedule_kill()
        return tripped

    def _schedule_kill(self) -> None:
        reason = self.risk.kill_switch.reason if self.risk.kill_switch is not None else "kill switch"
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.kill_pending = reason
            log.error("kill switch tripped outside the event loop; call kill() now: %s", reason)
            return
        task: asyncio.Task[object] = loop.create_task(self.kill(reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for work the manager started on its own (a kill switch run)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def kill(self, reason: str = "manual kill switch") -> list[ManagedOrder]:
        """Halt: trip the kill switch, cancel every working order, flatten each position at market."""
        self.kill_pending = None
        self.risk.trip(reason, self.clock.ns)
        log.error("KILL SWITCH: %s: cancelling all orders and flattening", reason)
        try:
            await self.cancel_all()
        except Exception:
            log.exception("kill switch: cancel all failed; flattening anyway")
        flattening: list[ManagedOrder] = []
        for key, position in sorted(self.risk.positions().items()):
            if position == 0:
                continue
            inst = self.instrument(key)
            request = OrderRequest(
                inst.key,
                Side.SELL if position > 0 else Side.BUY,
                abs(position),
                OrderType.MKT,
                reason=f"kill switch flatten: {reason}"[:200],
            )
            try:
                flattening.append(await self.submit(request, strategy="kill_switch", flatten=True))
            except Exception:
                log.exception("kill switch: flatten of %s %d failed", key, position)
        return flattening

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
- An execution is counted once by its exec id. The same exec id again with the same content (order, side,
  quantity, price, time) is a redelivery (IB re-sends executions after a reconnect): nothing happens. With
  other content it is an integrity error: logged as an error, listed in `integrity_errors` (the session shows
  it as degraded), kept aside in the records' `fill_conflicts`, never counted or merged; its commission report
  goes to that row too. A commission report changes only the fill of its own execution.
- `reconcile` after a (re)connect adopts executions missed while disconnected (each exec id once), closes
  orders the broker no longer has, compares the position ALL recorded fills add up to (every run) with the
  broker's, names what explains a difference (IB's executions we could not count) or says that nothing does,
  says when the broker has no memory of the recorded orders (a fresh simulator), and reports every difference.
- The kill switch (daily loss limit, or `kill()`) cancels everything and flattens with market orders.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

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
    FillConflictError,
    OrderChange,
    OrderRecord,
    OrderRecords,
    RecordsError,
    broker_amount,
    execution_time,
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
    conflicting_executions: list[str] = field(default_factory=list)  # exec ids kept aside (integrity errors)
    # key -> what explains a position difference (IB's executions we could not count), or that nothing does
    position_explanations: dict[str, str] = field(default_factory=dict)
    # key -> the position every recorded fill adds up to (all runs), where it or the broker's is not zero
    recorded_positions: dict[str, int] = field(default_factory=dict)
    # why the broker looks like one with no memory of the recorded orders (a fresh simulator), or ""
    fresh_broker: str = ""

    @property
    def clean(self) -> bool:
        """Nothing differed (a note that the broker has no memory of flat, finished orders is not a
        difference)."""
        return not (
            self.adopted_fills
            or self.closed_orders
            or self.status_changes
            or self.unknown_executions
            or self.unknown_open_orders
            or self.position_differences
            or self.conflicting_executions
        )

    def describe(self) -> str:
        """One line: "clean", or every difference and how it is explained, and the fresh-broker note."""
        parts: list[str] = []
        if self.adopted_fills:
            parts.append(f"adopted fills {','.join(self.adopted_fills)}")
        if self.closed_orders:
            parts.append(f"closed {','.join(self.closed_orders)}")
        if self.status_changes:
            parts.append("status " + ",".join(f"{c}={s}" for c, s in self.status_changes))
        if self.unknown_executions:
            parts.append(f"unknown executions {','.join(self.unknown_executions)}")
        if self.conflicting_executions:
            parts.append(f"conflicting executions kept aside {','.join(self.conflicting_executions)}")
        if self.unknown_open_orders:
            parts.append(f"unknown open orders {','.join(map(str, self.unknown_open_orders))}")
        for key, (ours, broker) in self.position_differences.items():
            why = self.position_explanations.get(key, "")
            parts.append(f"position {key} recorded {ours:+d} IB {broker:+d}" + (f" ({why})" if why else ""))
        if self.fresh_broker:
            parts.append(self.fresh_broker)
        if self.clean:
            parts.insert(0, "clean")
        return "; ".join(parts)


UpdateCallback = Callable[[OrderUpdate], None]
# What became of one execution the broker reported (`OrderManager._apply_execution`).
ExecutionOutcome = Literal["counted", "duplicate", "conflict", "unknown"]
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
        self._conflicted: set[str] = set()  # exec ids kept aside this session (integrity errors)
        self.integrity_errors: list[str] = []  # one line per integrity error, for the session's status
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
            if self.clock.ns:  # a month resolved against the machine's date (no market time yet) is not kept:
                # "MESH5" read from the records before the market's date is known may name the wrong decade
                self._instruments[symbol] = inst
                self._instruments[inst.key] = inst
        return inst

    def _recorded_instrument(self, rec: OrderRecord) -> Instrument:
        """The month a recorded order traded: known, or resolved at the market date; before that date is
        known, at the date the order was created (its local symbol names a month of that decade)."""
        if rec.key in self._instruments or self.clock.ns or not rec.created_ts:
            return self.instrument(rec.key)
        return resolve(rec.key, datetime.fromtimestamp(rec.created_ts / 1e9, UTC).date())

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
        inst = self._recorded_instrument(rec)
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
        m = ManagedOrder(request, inst, self._recorded_state(rec), rec.ib_order_id, rec.perm_id, rec.strategy)
        self._register(m)
        return m

    def _recorded_state(self, rec: OrderRecord) -> OrderState:
        """An order's state as the records hold it: its recorded executions and status."""
        state = OrderState(rec.client_order_id, rec.quantity, OrderStatus.CREATED, rec.created_ts)
        for f in self.records.fills(rec.client_order_id):
            state.apply_fill(f.exec_id, f.quantity, f.price, f.ts)
        state.status = rec.status  # as recorded, whatever the fills say
        state.message = rec.last_message
        return state

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

    async def submit_combo(
        self,
        ref: str,
        legs: Sequence[OrderRequest],
        quantity: int,
        *,
        strategy: str = "",
        order_type: OrderType = OrderType.MKT,
        limit_price: Decimal | None = None,
    ) -> list[ManagedOrder]:
        """Record (write-ahead, ONE transaction) and send a combo: one broker order (orderRef `ref`) recorded
        as one order per leg, every leg carrying the combo's broker order id (ibot.oms.rolls names the legs'
        ids). Legs whose ids are recorded already (an earlier process sent the combo) are returned, not sent
        again. The broker must have `place_combo` (IB); a roll is position-neutral, so only the kill switch
        refuses it (RiskLimitExceeded), not the size checks."""
        from ibot.oms.rolls import BrokerCombo  # the roll module uses this one: imported when needed

        known = [self.order(r.client_order_id) for r in legs]
        if any(m is not None for m in known):
            return [m for m in known if m is not None]
        place = getattr(self.broker, "place_combo", None)
        if place is None:
            raise InvalidOrderError(f"combo {ref}: the broker cannot send combo orders")
        ks = self.risk.kill_switch
        if ks is not None:
            raise RiskLimitExceeded(
                "kill_switch", ks.reason, "", f"combo {ref}: trading is halted ({ks.reason})"
            )
        ts = self.clock.ns
        pairs = [(r, self.instrument(r.symbol)) for r in legs]
        order_id = self.records.record_combo_submission(
            pairs,
            ts=ts,
            broker_next_id=self.broker_next_id,
            client_id=self.client_id,
            account=self.account,
            strategy=strategy,
        )
        self.broker_next_id = order_id + 1
        out: list[ManagedOrder] = []
        for request, instrument in pairs:
            cid = request.client_order_id
            m = ManagedOrder(
                request, instrument, OrderState(cid, request.quantity, OrderStatus.CREATED, ts), order_id
            )
            m.strategy = strategy
            self._register(m)
            m.state.apply_status(OrderStatus.PENDING_SUBMIT, ts, "sent to broker (combo)")
            out.append(m)
        self.risk.on_order_sent(ts)
        combo = BrokerCombo(ref, order_id, quantity, tuple(pairs), order_type, limit_price, self.account)
        try:
            await place(combo)
        except InvalidOrderError as exc:
            for m in out:
                self._set_status(m, OrderStatus.INACTIVE, ts, f"refused by the broker adapter: {exc}", "oms")
            raise
        except Exception as exc:
            for m in out:
                self._record_message(
                    m, ts, f"send failed ({type(exc).__name__}: {exc}); state unknown", "oms"
                )
            raise
        return out

    def alias(self, symbol: str, instrument: Instrument) -> None:
        """Resolve `symbol` (a product, "MES") to `instrument` from now on: the month a roll moved to."""
        self._instruments[symbol] = instrument
        self._instruments[instrument.key] = instrument

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
            if self._on_execution(event, "broker") == "unknown":
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
        if m is None:  # the IB adapter logged the message once already, at its level
            log.debug("broker %s (order id %s): no order of ours", text, event.order_id)
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

    def _on_execution(self, ex: BrokerExecution, source: str) -> ExecutionOutcome:
        """Count an execution (`_apply_execution`), or say why not: "unknown" when it is of no order of ours
        and its exec id is recorded by none (the caller reports it)."""
        m = self._find(ex.order_id, ex.perm_id, ex.client_order_id)
        if m is not None:
            return self._apply_execution(ex, source, m)
        if ex.exec_id in self._conflicted:
            return "conflict"  # kept aside already: reported once
        recorded = self.records.fill(ex.exec_id)
        if recorded is None:
            return "unknown"
        order = f"order id {ex.order_id}" + (f" ({ex.client_order_id})" if ex.client_order_id else "")
        self._integrity_error(
            ex, None, [f"order {recorded.client_order_id} recorded, unknown {order} now"], source
        )
        return "conflict"

    def _apply_execution(
        self, ex: BrokerExecution, source: str, m: ManagedOrder | None = None
    ) -> ExecutionOutcome:
        """Count an execution once by exec id: state, records, risk, callbacks ("counted").

        "duplicate": counted before with the same content (a redelivery), nothing happens; "conflict": its
        exec id was counted or recorded with other content (an integrity error: kept aside, never counted);
        "unknown": no order of ours (`m` None and none found)."""
        m = m or self._find(ex.order_id, ex.perm_id, ex.client_order_id)
        if m is None:
            return "unknown"
        if ex.exec_id in self._conflicted:
            return "conflict"  # kept aside already: reported once
        seen = self._counted_differences(m, ex)
        if seen is not None:
            if not seen:
                return "duplicate"
            self._integrity_error(ex, m, seen, source)
            return "conflict"
        m.state.apply_fill(ex.exec_id, ex.quantity, ex.price, ex.ts)
        if ex.perm_id and m.perm_id != ex.perm_id:  # e.g. filled while we were away: recorded just below
            m.perm_id = ex.perm_id
            self._by_perm_id[ex.perm_id] = m.client_order_id
        commission = broker_amount(ex.commission)
        message = f"execution {ex.exec_id}: {ex.side} {ex.quantity} @ {ex.price}"
        try:
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
                source=source,
            )
        except FillConflictError as exc:  # recorded (another run, another order) with other content
            rec = self.records.get_order(m.client_order_id)
            if rec is not None:
                m.state = self._recorded_state(rec)  # not counted: the order as the records hold it
            self._integrity_error(ex, m, exc.differences, source, kept_aside=True)
            return "conflict"
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
        return "counted"

    @staticmethod
    def _counted_differences(m: ManagedOrder, ex: BrokerExecution) -> list[str] | None:
        """None when `m` has not counted this exec id; else what differs from the execution it counted
        (empty: the same execution again)."""
        if not m.state.has_execution(ex.exec_id):
            return None
        counted = next(e for e in m.state.executions if e.exec_id == ex.exec_id)
        out: list[str] = []
        if ex.side is not m.request.side:
            out.append(f"side {m.request.side} counted, {ex.side} now")
        if ex.quantity != counted.quantity:
            out.append(f"quantity {counted.quantity} counted, {ex.quantity} now")
        if Decimal(ex.price) != counted.price:
            out.append(f"price {counted.price} counted, {ex.price} now")
        if ex.ts != counted.ts:
            out.append(f"time {execution_time(counted.ts)} counted, {execution_time(ex.ts)} now")
        return out

    def _integrity_error(
        self,
        ex: BrokerExecution,
        m: ManagedOrder | None,
        differences: Sequence[str],
        source: str,
        *,
        kept_aside: bool = False,
    ) -> None:
        """An exec id that names two different executions: keep the new one aside (never counted), say so as
        an error, and list it in `integrity_errors`; its commission report will go to the same row."""
        self._conflicted.add(ex.exec_id)
        cid = m.client_order_id if m is not None else ex.client_order_id
        symbol = m.instrument.key if m is not None else ex.symbol
        if not kept_aside:
            self.records.record_fill_conflict(
                cid,
                exec_id=ex.exec_id,
                ts=ex.ts,
                side=ex.side,
                quantity=ex.quantity,
                price=ex.price,
                symbol=symbol,
                differences=differences,
                currency=ex.currency,
                account=ex.account,
                ib_order_id=ex.order_id,
                commission=ex.commission,
                source=source,
            )
        text = (
            f"records integrity: execution {ex.exec_id} ({ex.side} {ex.quantity} {symbol} @ {ex.price}, "
            f"order {cid or ex.order_id}) conflicts with the one recorded under that id "
            f"({'; '.join(differences)}): kept aside in fill_conflicts, not counted"
        )
        log.error(text)
        self.integrity_errors.append(text)
        pending = self._pending_commissions.pop(ex.exec_id, None)
        if pending is not None:
            self._apply_commission(pending)

    def _apply_commission(self, report: BrokerCommission) -> None:
        """A commission report changes the fill of its own execution only: one kept aside (an exec id that
        named another execution) gets it on its `fill_conflicts` row; one not seen yet waits for it."""
        if report.exec_id in self._conflicted:
            self.records.conflict_commission(
                report.exec_id, report.commission, currency=report.currency, realized_pnl=report.realized_pnl
            )
            log.error(
                "commission report of execution %s (kept aside) attached to its fill_conflicts row, not to "
                "the fill recorded under that id",
                report.exec_id,
            )
            return
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

        1. executions we have not counted (missed while disconnected) are applied, each exec id once; one
           whose id names another recorded execution is kept aside (an integrity error);
        2. the broker's open orders update the status of ours; open orders we never placed are reported;
        3. our working orders the broker no longer has are closed (Filled if their executions say so);
        4. a broker that reports nothing at all while the records hold orders sent to one is said to have no
           memory of them (`ReconcileReport.fresh_broker`);
        5. the position every recorded fill adds up to (all runs) is compared with the broker's: agreement is
           no error; a difference is reported with what explains it (`_compare_positions`), and the broker's
           position is adopted for the risk checks without adding to the day's P&L.
        """
        report = ReconcileReport()
        executions = sorted(executions, key=lambda e: e.ts)
        open_orders = list(open_orders)
        positions = list(positions)
        for ex in executions:
            outcome = self._on_execution(ex, "reconcile")
            if outcome == "counted":
                report.adopted_fills.append(ex.exec_id)
                log.warning("reconcile: adopted execution %s missed while disconnected", ex.exec_id)
            elif outcome == "duplicate":
                if ex.commission is not None:  # its own execution, content checked: its fee may be news
                    self._apply_commission(BrokerCommission(ex.exec_id, ex.commission, ex.currency, ex.ts))
            elif outcome == "conflict":
                report.conflicting_executions.append(ex.exec_id)
            else:
                report.unknown_executions.append(ex.exec_id)
                log.error("reconcile: execution %s of order id %s is not ours", ex.exec_id, ex.order_id)
        self._reconcile_orders(open_orders, report)
        recorded = self.records.positions()
        self._check_fresh_broker(open_orders, executions, positions, recorded, report)
        self._compare_positions(positions, executions, recorded, report)
        return report

    def _reconcile_orders(self, open_orders: Sequence[BrokerOpenOrder], report: ReconcileReport) -> None:
        """Steps 2 and 3 of `reconcile`: statuses from the broker's open orders; ours it lacks closed."""
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

    def _compare_positions(
        self,
        positions: Sequence[BrokerPosition],
        executions: Sequence[BrokerExecution],
        recorded: dict[str, int],
        report: ReconcileReport,
    ) -> None:
        """Step 5 of `reconcile`. The risk checks start from the recorded position (a restarted process knows
        nothing else); where the broker holds another, the difference is an error naming IB's executions
        that explain it (ones we could not count: not ours, or kept aside) or saying that none does, and the
        broker's position is adopted (no P&L: `RiskManager.set_position`)."""
        theirs = {p.key: p.quantity for p in positions}
        held = {k for k, v in self.risk.positions().items() if v}  # e.g. moved by executions adopted just now
        for key in sorted(set(theirs) | set(recorded) | held):
            ours, broker = recorded.get(key, 0), theirs.get(key, 0)
            if ours == 0 and broker == 0:
                self._adopt_position(key, 0, "recorded")  # flat by every recorded fill and at the broker
                continue
            report.recorded_positions[key] = ours
            self._adopt_position(key, ours, "recorded")
            if ours == broker:
                log.info(
                    "reconcile: position %s %+d agrees with the broker (from the recorded fills)", key, ours
                )
                continue
            why = self._explain_difference(key, broker - ours, executions, bool(report.fresh_broker))
            report.position_differences[key] = (ours, broker)
            report.position_explanations[key] = why
            log.error(
                "reconcile: position %s is %+d by the recorded fills (all runs) but %+d at the broker: %s; "
                "adopting the broker's",
                key,
                ours,
                broker,
                why,
            )
            self._adopt_position(key, broker, "the broker's")

    def _adopt_position(self, key: str, quantity: int, whose: str) -> None:
        """Set the risk checks' position of `key` (nothing when it already is `quantity`)."""
        if self.risk.position(key) == quantity:
            return
        try:
            inst = self.instrument(key)
        except Exception as exc:  # an instrument the catalog no longer knows: compared, never traded here
            log.warning(
                "reconcile: position %s %+d (%s) not given to the risk checks: %s", key, quantity, whose, exc
            )
            return
        self.risk.set_position(inst, quantity)

    def _explain_difference(
        self, key: str, missing: int, executions: Sequence[BrokerExecution], fresh_broker: bool
    ) -> str:
        """What accounts for `missing` contracts (broker's - recorded) of `key`: IB's executions of today that
        are not in the recorded position (orders we never placed, or kept aside as conflicting), or, plainly,
        that nothing IB reported does, and why that can be."""
        uncounted = [
            e
            for e in executions
            if e.symbol == key and (e.exec_id in self._conflicted or not self._known_execution(e.exec_id))
        ]
        net = sum(e.side.sign * e.quantity for e in uncounted)
        named = ", ".join(f"{e.exec_id} {e.side} {e.quantity} @ {e.price}" for e in uncounted)
        if uncounted and net == missing:
            return f"explained by IB's executions not in the records: {named}"
        if fresh_broker:
            why = "the broker has no memory of the recorded orders (a fresh simulator, or another account)"
        else:
            why = (
                "IB reports the current day's executions only (fills of earlier days, or trades outside ibot)"
            )
        text = f"no execution IB reported explains {missing - net:+d}: {why}"
        return (
            f"IB's executions not in the records ({named}) explain {net:+d}; " if uncounted else ""
        ) + text

    def _check_fresh_broker(
        self,
        open_orders: Sequence[BrokerOpenOrder],
        executions: Sequence[BrokerExecution],
        positions: Sequence[BrokerPosition],
        recorded: dict[str, int],
        report: ReconcileReport,
    ) -> None:
        """Step 4 of `reconcile`: the broker reports no order, no execution and no position while the records
        hold orders sent to a broker: it has no memory of them (a fresh simulator, another account, or IB on a
        new day with nothing open). A warning when the records hold a position there, else a note."""
        if open_orders or executions or any(p.quantity for p in positions):
            return
        sent = self.records.sent_orders()
        if not sent:
            return
        held = {k: q for k, q in recorded.items() if q}
        text = (
            "the broker has no memory of earlier orders: it reports no order, execution or position, while "
            f"the records hold {sent} orders sent to a broker (a fresh simulator, another account, or a new "
            "trading day with nothing open)"
        )
        if held:
            shown = ", ".join(f"{k} {q:+d}" for k, q in sorted(held.items()))
            text += f"; the recorded positions ({shown}) are not at this broker"
        report.fresh_broker = text
        (log.warning if held else log.info)("reconcile: %s", text)

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

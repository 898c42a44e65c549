"""The simulated broker account behind the TWS simulator: orders, executions, positions, cash and P&L.

One `SimBroker` per server; the account lives on the server, not on a connection, so orders keep working
and filling while their client is away. What it promises:

- Orders are keyed by (clientId, orderId) and get a unique non-zero permId. Placing an id that the client
  already used is a modify when that order is live for the same contract and side; otherwise error 103.
- Matching is THE engine (`ibot.exchange.matching.MatchingEngine`), one per instrument, fed the market's
  per-second quotes (bid/ask with their sizes, so big orders fill partially) and trades (stops trigger on
  trades, as on CME). Brackets: orders with transmit=False wait until an order of their group transmits;
  children are held until the parent fills and share an OCA group named after the parent's permId.
- Status sequences follow a real gateway's (IB Gateway 10.40 captures): OPEN_ORDER + ORDER_STATUS on
  acknowledgement (PreSubmitted / Submitted), EXECUTION_DATA (reqId -1), ORDER_STATUS Filled and
  COMMISSION_REPORT on a fill; a cancel goes PendingCancel -> Cancelled, then error 202.
- Money is exact: positions are FIFO lots in ticks, P&L is ticks x tick value, commissions from the fee model
  (see `sim/account.py` for the conventions and identities).

Nothing here touches a socket: every change goes to a `BrokerEvents` sink (the server routes it to sessions).
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibot.exchange.fees import IB_MICRO_FUTURES, FeeModel
from ibot.exchange.matching import (
    DailySessions,
    FillRules,
    MatchingEngine,
    OrderRejected,
    UnknownOrderError,
    unique_exec_ids,
)
from ibot.model.errors import InvalidOrderError
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import NS_PER_SECOND
from ibot.model.orders import Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from ibot.sim.account import AccountSnapshot, PositionSnapshot, initial_margin, maintenance_margin, money
from ibot.sim.closed import ORDER_MESSAGE, order_held_text, until_text
from ibot.sim.combos import (
    REFUSED_TEXT,
    ComboError,
    ComboLeg,
    check_legs,
    combo_price,
    leg_sides,
    spread_tick,
)
from ibot.sim.faults import OrderFaults
from ibot.sim.layouts_orders import (
    ORDER_VIEWS,
    CommissionReportView,
    ContractView,
    ExecutionFilter,
    ExecutionView,
    OpenOrderView,
    OrderStateView,
    OrderStatusView,
    OrderView,
    PlaceOrder,
    ib_execution_time,
)
from ibot.sim.market import ContractBook, ContractQuery, Quote, SimMarket

__all__ = [
    "BrokerEvents",
    "Execution",
    "PositionBook",
    "SimBroker",
    "SimOrder",
    "commission_view",
    "execution_view",
    "open_order_view",
    "status_view",
]

log = logging.getLogger("ibot.sim")

FIRST_PERM_ID = 1_000_000_001
# IB's permIds are unique per account for good, and the records look orders up by permId: a fresh simulator
# must not hand out an earlier one's ids: each starts at a random point of a 2**30 range (int32 on the wire).
PERM_ID_SPREAD = 1 << 30
CANCELLED_TEXT = "Order Canceled - reason:"
REJECTED_TEXT = "Order rejected - reason:"
DUPLICATE_ID = (103, "Duplicate order id")
OFF_TICK = (110, "The price does not conform to the minimum price variation for this contract.")
NO_CONTRACT = (200, "No security definition has been found for the request")
BAD_TYPE = (387, "Unsupported order type for this exchange and security type.")
ZERO_SIZE = (434, "The order size cannot be zero.")
DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
_TYPES = {"MKT": OrderType.MKT, "LMT": OrderType.LMT, "STP": OrderType.STP, "STP LMT": OrderType.STP_LMT}
_TIFS = {"": TimeInForce.DAY, "DAY": TimeInForce.DAY, "GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC}
_OCA_REDUCE_NO_BLOCK = 3  # the ocaType IB gives a bracket's children
_OCA_CANCEL_WITH_BLOCK = 1  # cancelling one member cancels the rest (as the oca_group capture shows)


class BrokerEvents(Protocol):
    """Where the broker reports what TWS would send; the server routes each to the owning client's session."""

    def order_status(self, order: SimOrder, with_open_order: bool) -> None: ...

    def order_error(self, client_id: int, order_id: int, code: int, text: str) -> None: ...

    def execution(self, execution: Execution) -> None: ...

    def commission(self, execution: Execution) -> None: ...

    def account_changed(self) -> None: ...

    def what_if(self, client_id: int, view: OpenOrderView) -> None: ...


class _Reject(Exception):
    """An order refused before it exists: answered with an IB error code for its order id."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


@dataclass(slots=True, eq=False)
class SimOrder:
    """One order in the registry, as the broker tracks it (the client's view plus state)."""

    client_id: int
    order_id: int
    perm_id: int
    inst: Instrument
    contract: ContractView
    view: OrderView
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: float | None
    stop_price: float | None
    tif: TimeInForce
    placed_ns: int
    parent: SimOrder | None = None
    oca_group: str = ""
    oca_type: int = 0
    transmit: bool = True
    transmitted: bool = False
    status: str = "PendingSubmit"
    filled: int = 0
    fill_ticks: int = 0  # sum of price ticks x quantity over fills
    last_fill_price: float = 0.0
    why_held: str = ""
    completed_ns: int = 0
    completed_status: str = ""
    announce: bool = True  # the next status change carries OPEN_ORDER (acknowledgement or modify)
    legs: tuple[
        ComboLeg, ...
    ] = ()  # a combo (BAG): its resolved legs (`ibot.sim.combos`); never in an engine

    @property
    def is_combo(self) -> bool:
        return bool(self.legs)

    @property
    def engine_id(self) -> str:
        return str(self.perm_id)

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def is_done(self) -> bool:
        return self.status in DONE

    @property
    def parent_id(self) -> int:
        return self.parent.order_id if self.parent is not None else 0

    @property
    def parent_perm_id(self) -> int:
        return self.parent.perm_id if self.parent is not None else 0

    @property
    def avg_fill_price(self) -> float:
        if not self.filled:
            return 0.0
        if self.legs:  # a combo fills whole, once: its spread price
            return self.last_fill_price
        q, r = divmod(self.fill_ticks, self.filled)
        if r:
            return self.fill_ticks / self.filled * float(self.inst.tick_size)
        return self.inst.from_ticks(q)


@dataclass(slots=True, eq=False)
class Execution:
    """One fill as the account booked it; `realized_pnl` is None for a fill that only opened contracts."""

    exec_id: str
    order: SimOrder
    side: Side
    quantity: int
    price: float
    ts_ns: int
    cum_qty: int
    avg_price: float
    commission: Decimal
    realized_pnl: Decimal | None
    leg: Instrument | None = None  # a combo's leg execution: the leg's contract (the order's is the BAG)

    @property
    def instrument(self) -> Instrument:
        return self.leg if self.leg is not None else self.order.inst


@dataclass(slots=True)
class _Lot:
    quantity: int  # signed: > 0 long
    ticks: int
    fee: Decimal  # opening commission per contract


@dataclass(slots=True)
class PositionBook:
    """One instrument's position as FIFO lots; realized P&L is exact (ticks x tick value, Decimal)."""

    inst: Instrument
    lots: deque[_Lot] = field(default_factory=deque)
    quantity: int = 0
    realized: Decimal = Decimal(0)

    def apply(self, signed_qty: int, ticks: int, fee_per_contract: Decimal) -> Decimal | None:
        """Book a fill; returns its realized P&L (net of both legs' commissions), None when it only opened."""
        tick_value = self.inst.tick_value
        left = abs(signed_qty)
        sign = 1 if signed_qty > 0 else -1
        closed = 0
        pnl = Decimal(0)
        while left and self.lots and (self.lots[0].quantity > 0) != (sign > 0):
            lot = self.lots[0]
            take = min(left, abs(lot.quantity))
            lot_sign = 1 if lot.quantity > 0 else -1
            pnl += (ticks - lot.ticks) * lot_sign * take * tick_value - lot.fee * take
            lot.quantity -= lot_sign * take
            if lot.quantity == 0:
                self.lots.popleft()
            left -= take
            closed += take
        if left:
            self.lots.append(_Lot(sign * left, ticks, fee_per_contract))
        self.quantity += signed_qty
        if not closed:
            return None
        pnl -= fee_per_contract * closed
        self.realized += pnl
        return pnl

    def cost(self) -> Decimal:
        """Sum over open contracts of price x multiplier + opening commission (signed like the position)."""
        tv = self.inst.tick_value
        return sum((lot.quantity * (lot.ticks * tv + lot.fee) for lot in self.lots), Decimal(0))

    def unrealized(self, mark_ticks: int) -> Decimal:
        tv = self.inst.tick_value
        return sum(
            (lot.quantity * (mark_ticks - lot.ticks) * tv - abs(lot.quantity) * lot.fee for lot in self.lots),
            Decimal(0),
        )


class _EngineListener:
    """Routes one engine's reports back to the broker."""

    __slots__ = ("_broker",)

    def __init__(self, broker: SimBroker) -> None:
        self._broker = broker

    def on_fill(self, fill: Fill) -> None:
        self._broker._on_fill(fill)

    def on_order_update(self, update: OrderUpdate) -> None:
        self._broker._on_update(update)


class SimBroker:
    """The simulated account: order registry, one matching engine per instrument, positions and money."""

    def __init__(
        self,
        market: SimMarket,
        book: ContractBook,
        events: BrokerEvents,
        account: str = "DU123456",
        cash: Decimal = Decimal(1_000_000),
        fees: FeeModel = IB_MICRO_FUTURES,
        rules: FillRules | None = None,
        faults: OrderFaults | None = None,
        thin_liquidity: bool = True,
        match_bars: bool = False,
    ) -> None:
        """`thin_liquidity`: quotes carry their sizes (big orders fill over several seconds); False = a deep
        book where each quote fills any size (the throughput benchmark's setting). `match_bars` (replay of
        stored bars only): orders are matched against each replayed bar as a whole when it ends
        (`MatchingEngine.on_bar`, the backtester's bar-path rules) instead of against per-second quotes, and
        are stamped with the open time of the last completed bar, as the backtester stamps them."""
        self.market = market
        self.book = book
        self.events = events
        self.account = account
        self.currency = "USD"
        self.starting_cash = cash
        self.fees = fees
        self.rules = rules or FillRules()
        self.faults = faults or OrderFaults()
        self.thin_liquidity = thin_liquidity
        self.match_bars = match_bars
        self.next_valid_id = 1
        self._perm = self._first_perm()
        self._orders: dict[tuple[int, int], SimOrder] = {}
        self._by_perm: dict[int, SimOrder] = {}
        self._held: list[SimOrder] = []  # transmit=False orders waiting for their group's transmit
        self._parked: list[
            SimOrder
        ] = []  # transmitted while their market was closed: PreSubmitted till it opens
        self._live: dict[int, SimOrder] = {}  # permId -> transmitted order not yet done
        self._quote_cache: dict[int, tuple[int, Quote | None]] = {}  # con_id -> (second, quote)
        self.executions: list[Execution] = []
        self._engines: dict[int, MatchingEngine] = {}
        self._quoted_second: dict[int, int] = {}
        self._positions: dict[int, PositionBook] = {}
        self._marks: dict[int, int] = {}  # con_id -> last fill price in ticks (fallback mark)
        self._pending_commissions: list[Execution] = []
        self._held_commissions: list[Execution] = []
        self._resolved: dict[tuple[object, ...], Instrument] = {}
        self._contract_views: dict[int, tuple[Instrument, ContractView]] = {}
        self._sessions = DailySessions()
        self._daily_realized: dict[int, Decimal] = {}  # con_id -> realized since the trading day began
        self._day_end_ns = 0
        self.commissions_paid = Decimal(0)
        self._combos: list[SimOrder] = []  # working combo orders, matched each second (`_match_combos`)
        self._combo_execs: tuple[str, int] | None = None
        self.combos_refused = False  # fault: every combo is rejected (201, Inactive); `refuse_combos()`

    # --- ids --------------------------------------------------------------------------------------------
    @staticmethod
    def _first_perm() -> int:
        """Where this simulator's permIds start: random per instance, room for 2**20 orders above."""
        return FIRST_PERM_ID + secrets.randbelow(PERM_ID_SPREAD - (1 << 20))

    def _next_perm(self) -> int:
        self._perm += 1
        return self._perm - 1

    # --- queries ------------------------------------------------------------------------------------------
    def order(self, client_id: int, order_id: int) -> SimOrder | None:
        return self._orders.get((client_id, order_id))

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        """Live orders (transmitted, not done) of one client, or of all clients when None."""
        return [o for o in self._live.values() if client_id is None or o.client_id == client_id]

    def order_count(self) -> int:
        """Every order placed (of every client), whatever became of it."""
        return len(self._orders)

    def completed_orders(self) -> list[SimOrder]:
        done = [o for o in self._orders.values() if o.is_done]
        return sorted(done, key=lambda o: o.completed_ns)

    def select_executions(self, f: ExecutionFilter) -> list[Execution]:
        """Fills matching REQ_EXECUTIONS' filter ("" / 0 = any field); all clients' fills for clientId 0."""
        since = _filter_time(f.time)
        side = {"BUY": Side.BUY, "BOT": Side.BUY, "SELL": Side.SELL, "SLD": Side.SELL}.get(f.side.upper())
        out = []
        for e in self.executions:
            o = e.order
            inst = e.instrument
            if f.client_id and o.client_id != f.client_id:
                continue
            if f.acct_code and f.acct_code != self.account:
                continue
            if since is not None and e.ts_ns < since:
                continue
            if f.symbol and f.symbol.upper() not in (inst.symbol, inst.local_symbol):
                continue
            if f.sec_type and f.sec_type.upper() != inst.sec_type.value:
                continue
            if f.exchange and f.exchange.upper() not in (inst.exchange, "SMART"):
                continue
            if side is not None and e.side is not side:
                continue
            out.append(e)
        return out

    def positions(self) -> list[tuple[Instrument, int, float]]:
        """(instrument, signed quantity, IB average cost per contract) of every non-flat position."""
        return [(p.inst, p.quantity, float(_avg_cost(p))) for p in self._positions.values() if p.quantity]

    def positions_all(self) -> list[tuple[Instrument, int, float]]:
        """`positions()` including instruments traded back to flat (a position update of 0)."""
        return [(p.inst, p.quantity, float(_avg_cost(p))) for p in self._positions.values()]

    def has_positions(self) -> bool:
        return any(p.quantity for p in self._positions.values())

    # --- the account ---------------------------------------------------------------------------------------
    def mark_ticks(self, inst: Instrument) -> int | None:
        """The instrument's price now (last trade of the current second), else its last fill price."""
        q = self.quote(inst, int(self.market.now_s))
        if q is not None:
            return inst.to_ticks(q.last)
        return self._marks.get(inst.con_id)

    def quote(self, inst: Instrument, second: int) -> Quote | None:
        """The market's quote, computed once per instrument and second."""
        hit = self._quote_cache.get(inst.con_id)
        if hit is not None and hit[0] == second:
            return hit[1]
        q = self.market.quote(inst, second)
        self._quote_cache[inst.con_id] = (second, q)
        return q

    def snapshot(self) -> AccountSnapshot:
        """Every account figure at the market's current time (see sim/account.py for the identities)."""
        self._roll_day(self.market.clock.ns)
        daily_by_con = self._daily_realized
        positions = []
        realized = unrealized = init = maint = Decimal(0)
        for book in self._positions.values():
            inst = book.inst
            realized += book.realized
            mark_t = self.mark_ticks(inst) if book.quantity else self._marks.get(inst.con_id)
            mark = Decimal(mark_t) * inst.tick_size if mark_t is not None else Decimal(0)
            unreal = book.unrealized(mark_t) if book.quantity and mark_t is not None else Decimal(0)
            unrealized += unreal
            init += initial_margin(inst, book.quantity, mark)
            maint += maintenance_margin(inst, book.quantity, mark)
            positions.append(
                PositionSnapshot(
                    inst=inst,
                    quantity=book.quantity,
                    avg_cost=_avg_cost(book),
                    mark=mark,
                    market_value=book.quantity * mark * inst.multiplier,
                    unrealized=unreal,
                    realized=book.realized,
                    daily_realized=daily_by_con.get(inst.con_id, Decimal(0)),
                )
            )
        return AccountSnapshot(
            account=self.account,
            currency=self.currency,
            starting_cash=self.starting_cash,
            realized=realized,
            daily_realized=sum(daily_by_con.values(), Decimal(0)),
            unrealized=unrealized,
            init_margin=init,
            maint_margin=maint,
            positions=tuple(positions),
            commissions=self.commissions_paid,
        )

    def _roll_day(self, ts_ns: int) -> None:
        """A new trading day (CME Globex: from 17:00 Chicago) starts its daily realized P&L at zero."""
        if ts_ns >= self._day_end_ns:
            self._daily_realized.clear()
            self._day_end_ns = self._sessions.end_of(ts_ns)

    # --- placing ----------------------------------------------------------------------------------------
    def place(self, client_id: int, msg: PlaceOrder) -> None:
        """PLACE_ORDER: a new order, or a modify when the id names a live order of this client."""
        if msg.order.what_if:
            self._what_if(client_id, msg)
            return
        key = (client_id, msg.order_id)
        existing = self._orders.get(key)
        if existing is not None:
            if existing.is_combo or msg.contract.sec_type.strip().upper() == "BAG":
                self.events.order_error(client_id, msg.order_id, 105, "Combo orders cannot be modified")
                return
            self._modify(existing, msg)
            return
        forced = self.faults.take_reject()
        try:
            order = self._new_combo(client_id, msg) if _is_bag(msg) else self._new_order(client_id, msg)
        except _Reject as r:
            log.info("client %d order %d refused: %s %s", client_id, msg.order_id, r.code, r.text)
            self.events.order_error(client_id, msg.order_id, r.code, r.text)
            return
        self._orders[key] = order
        self._by_perm[order.perm_id] = order
        self.next_valid_id = max(self.next_valid_id, msg.order_id + 1)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "client %d order %d (perm %d): %s %d %s %s%s",
                client_id,
                order.order_id,
                order.perm_id,
                order.side,
                order.quantity,
                order.inst.key,
                order.order_type,
                "" if order.transmit else " (not transmitted)",
            )
        if order.is_combo and forced is None and self.combos_refused:
            forced = (201, REFUSED_TEXT)
        if forced is not None:
            self._forced_reject(order, *forced)
            return
        if self.faults.take_inactive():
            order.transmitted = True
            self._make_inactive(order, "")
            return
        if not order.transmit:
            self._held.append(order)
            return
        self._transmit(order)

    def _what_if(self, client_id: int, msg: PlaceOrder) -> None:
        """A what-if order (IB's margin preview): checked like any order, then answered with one OPEN_ORDER
        whose state carries the initial / maintenance margin and equity with loan before, their change and
        after, and the commission a fill would cost. It is never kept, never worked, never filled."""
        try:
            order = self._new_order(client_id, msg)
        except _Reject as r:
            self.events.order_error(client_id, msg.order_id, r.code, r.text)
            return
        self.next_valid_id = max(self.next_valid_id, msg.order_id + 1)
        inst = order.inst
        snap = self.snapshot()
        mark_t = self.mark_ticks(inst)
        mark = Decimal(mark_t) * inst.tick_size if mark_t is not None else Decimal(0)
        pos = self._positions.get(inst.con_id)
        held = pos.quantity if pos is not None else 0
        after = held + order.side.sign * order.quantity
        init_change = initial_margin(inst, after, mark) - initial_margin(inst, held, mark)
        maint_change = maintenance_margin(inst, after, mark) - maintenance_margin(inst, held, mark)
        fee = self.fees.commission(order.quantity)
        equity = snap.net_liquidation
        state = OrderStateView(
            status="PreSubmitted",
            init_margin_before=float(snap.init_margin),
            maint_margin_before=float(snap.maint_margin),
            equity_with_loan_before=float(equity),
            init_margin_change=float(init_change),
            maint_margin_change=float(maint_change),
            equity_with_loan_change=float(-fee),
            init_margin_after=float(snap.init_margin + init_change),
            maint_margin_after=float(snap.maint_margin + maint_change),
            equity_with_loan_after=float(equity - fee),
            commission=fee,
            min_commission=fee,
            max_commission=fee,
            commission_currency=self.currency,
        )
        log.info("client %d what-if order %d: initial margin change %s", client_id, msg.order_id, init_change)
        self.events.what_if(client_id, OpenOrderView(order.contract, order_view(order, self.account), state))

    def _new_order(self, client_id: int, msg: PlaceOrder) -> SimOrder:
        o = msg.order
        inst = self._resolve(msg.contract)
        action = o.action.upper()
        if action not in ("BUY", "SELL"):
            raise _Reject(321, f"Error validating request.-'action': invalid action {o.action!r}")
        qty_dec = o.total_quantity if o.total_quantity is not None else Decimal(0)
        if qty_dec == 0:
            raise _Reject(*ZERO_SIZE)
        if qty_dec < 0 or qty_dec != qty_dec.to_integral_value():
            raise _Reject(201, f"{REJECTED_TEXT}The order size {qty_dec} must be a positive whole number.")
        kind = _TYPES.get(o.order_type.upper())
        if kind is None:
            raise _Reject(*BAD_TYPE)
        tif = _TIFS.get(o.tif.upper())
        if tif is None:
            raise _Reject(201, f"{REJECTED_TEXT}Time in force {o.tif!r} is not supported.")
        limit, stop = self._prices(inst, kind, o.lmt_price, o.aux_price)
        parent: SimOrder | None = None
        if o.parent_id:
            parent = self._orders.get((client_id, o.parent_id))
            if parent is None or parent.is_done or parent.status == "PendingCancel":
                raise _Reject(201, f"{REJECTED_TEXT}Parent order {o.parent_id} is not an active order.")
            if parent.inst.con_id != inst.con_id:
                raise _Reject(201, f"{REJECTED_TEXT}A bracket child must trade its parent's contract.")
        perm = self._next_perm()
        oca, oca_type = o.oca_group, o.oca_type
        if parent is not None and not oca:
            oca, oca_type = str(parent.perm_id), _OCA_REDUCE_NO_BLOCK
        return SimOrder(
            client_id=client_id,
            order_id=msg.order_id,
            perm_id=perm,
            inst=inst,
            contract=self._contract_view(inst),
            view=o,
            side=Side(action),
            quantity=int(qty_dec),
            order_type=kind,
            limit_price=limit,
            stop_price=stop,
            tif=tif,
            placed_ns=self.market.clock.ns,
            parent=parent,
            oca_group=oca,
            oca_type=oca_type,
            transmit=o.transmit,
        )

    # --- combos (BAG): see ibot.sim.combos ---------------------------------------------------------------
    def refuse_combos(self, on: bool = True) -> None:
        """Fault: every combo order is rejected (201, Inactive) while on; outright orders are not affected."""
        self.combos_refused = on

    def _new_combo(self, client_id: int, msg: PlaceOrder) -> SimOrder:
        """A BAG order: its legs resolved by conId and checked (`combos.check_legs`), MKT or LMT on the
        product's spread tick."""
        o, c = msg.order, msg.contract
        legs: list[ComboLeg] = []
        for view in c.combo_legs:
            found = self.book.match(
                ContractQuery(con_id=view.con_id, include_expired=True), self.market.asof()
            )
            action = view.action.strip().upper()
            if len(found) != 1 or action not in ("BUY", "SELL") or view.ratio < 1:
                raise _Reject(
                    200, f"{NO_CONTRACT[1]} (combo leg conId {view.con_id} {view.action} x{view.ratio})"
                )
            legs.append(ComboLeg(found[0], Side(action), view.ratio))
        try:
            check_legs(legs, c.exchange)
        except ComboError as exc:
            raise _Reject(exc.code, exc.text) from None
        action = o.action.upper()
        qty_dec = o.total_quantity if o.total_quantity is not None else Decimal(0)
        if action not in ("BUY", "SELL"):
            raise _Reject(321, f"Error validating request.-'action': invalid action {o.action!r}")
        if qty_dec <= 0 or qty_dec != qty_dec.to_integral_value():
            raise _Reject(*ZERO_SIZE) if qty_dec == 0 else _Reject(201, f"{REJECTED_TEXT}bad size {qty_dec}")
        kind = _TYPES.get(o.order_type.upper())
        if kind not in (OrderType.MKT, OrderType.LMT):
            raise _Reject(*BAD_TYPE)
        tif = _TIFS.get(o.tif.upper())
        if tif is None:
            raise _Reject(201, f"{REJECTED_TEXT}Time in force {o.tif!r} is not supported.")
        limit: float | None = None
        if kind is OrderType.LMT:
            if o.lmt_price is None or not math.isfinite(o.lmt_price):
                raise _Reject(463, "You must enter a valid price.")
            if Decimal(repr(o.lmt_price)) % spread_tick(legs[0].inst):
                raise _Reject(*OFF_TICK)
            limit = o.lmt_price
        return SimOrder(
            client_id=client_id,
            order_id=msg.order_id,
            perm_id=self._next_perm(),
            inst=legs[0].inst,
            contract=c,
            view=o,
            side=Side(action),
            quantity=int(qty_dec),
            order_type=kind,
            limit_price=limit,
            stop_price=None,
            tif=tif,
            placed_ns=self.market.clock.ns,
            transmit=o.transmit,
            legs=tuple(legs),
        )

    def _submit_combo(self, order: SimOrder) -> None:
        """Acknowledge a combo (PreSubmitted while a leg's market is closed, else Submitted); it fills whole
        on the first second its spread is marketable (now, for a MKT combo in an open market)."""
        second = int(self.market.now_s)
        closed = any(self.market.closed_until(leg.inst, second) is not None for leg in order.legs)
        order.transmitted = True
        order.status = "PreSubmitted" if closed else "Submitted"
        self._live[order.perm_id] = order
        self._combos.append(order)
        self.events.order_status(order, True)
        order.announce = False
        self._match_combos(second)

    def _match_combos(self, second: int) -> None:
        for order in list(self._combos):
            if order.is_done or order.status == "PendingCancel":
                self._combos.remove(order)
                continue
            sides = leg_sides(order.legs, order.side)
            prices: list[Decimal] = []
            for leg, side in zip(order.legs, sides, strict=True):
                q = self.quote(leg.inst, second)
                if q is None:
                    break
                prices.append(Decimal(repr(q.ask if side is Side.BUY else q.bid)))
            else:
                spread = combo_price(order.legs, prices)
                limit = order.limit_price
                if limit is not None:
                    through = Decimal(repr(limit)) - spread
                    if (through if order.side is Side.BUY else -through) < 0:
                        continue
                if order.status == "PreSubmitted":  # the market opened: working
                    order.status = "Submitted"
                    self.events.order_status(order, False)
                self._combos.remove(order)
                self._fill_combo(order, sides, prices, spread)

    def _fill_combo(self, order: SimOrder, sides: list[Side], prices: list[Decimal], spread: Decimal) -> None:
        """Every leg's execution (its own contract, price, execId), then the combo's Filled status (average
        price: the spread price), then a commission report per leg."""
        if self._combo_execs is None:
            self._combo_execs = unique_exec_ids(order.perm_id)
        prefix, n = self._combo_execs
        ts = self.market.clock.ns
        order.filled = order.quantity
        order.last_fill_price = float(spread)
        for leg, side, price in zip(order.legs, sides, prices, strict=True):
            qty = order.quantity * leg.ratio
            n += 1
            fill = Fill(
                str(order.perm_id),
                leg.inst.local_symbol,
                side,
                qty,
                float(price),
                ts,
                self.fees.commission(qty),
                f"{prefix}.{n:08x}.01.01",
            )
            self._book(order, leg.inst, fill, leg=True)
        self._combo_execs = (prefix, n)
        log.info(
            "client %d combo %d (perm %d): %s %d filled at spread %s (%s)",
            order.client_id,
            order.order_id,
            order.perm_id,
            order.side,
            order.quantity,
            spread,
            ", ".join(
                f"{s} {leg.inst.key} @ {p}" for leg, s, p in zip(order.legs, sides, prices, strict=True)
            ),
        )
        self._finish(order, "Filled")
        self.events.order_status(order, False)
        pending, self._pending_commissions = self._pending_commissions, []
        if self.faults.commissions_held():
            self._held_commissions += pending
        else:
            for e in pending:
                self.events.commission(e)
        self.events.account_changed()

    def _contract_view(self, inst: Instrument) -> ContractView:
        """The contract as OPEN_ORDER and EXECUTION_DATA echo it: one (immutable) view per instrument."""
        hit = self._contract_views.get(inst.con_id)
        if hit is None or hit[0] is not inst:
            hit = self._contract_views[inst.con_id] = (inst, _contract_view(inst))
        return hit[1]

    def _resolve(self, c: ContractView) -> Instrument:
        key = (
            c.con_id,
            c.symbol,
            c.sec_type,
            c.last_trade_date_or_contract_month,
            c.exchange,
            c.currency,
            c.local_symbol,
            c.trading_class,
            c.multiplier,
            self.market.asof(),
        )
        found = self._resolved.get(key)
        if found is not None:
            return found
        q = ContractQuery(
            con_id=c.con_id,
            symbol=c.symbol.strip(),
            sec_type=c.sec_type.strip(),
            last_trade=c.last_trade_date_or_contract_month.strip(),
            multiplier=c.multiplier.strip(),
            exchange=c.exchange.strip(),
            primary_exchange=c.primary_exchange.strip(),
            currency=c.currency.strip(),
            local_symbol=c.local_symbol.strip(),
            trading_class=c.trading_class.strip(),
            include_expired=bool(c.con_id),
        )
        matches = self.book.match(q, self.market.asof())
        if not matches:
            raise _Reject(*NO_CONTRACT)
        if len(matches) > 1:
            what = c.symbol or q.describe()
            raise _Reject(200, f"The contract description specified for {what} is ambiguous.")
        inst = matches[0]
        if inst.sec_type is SecType.CONTFUT:
            raise _Reject(200, "CONTFUT is for historical data only: no orders")
        self._resolved[key] = inst
        return inst

    def _prices(
        self, inst: Instrument, kind: OrderType, lmt: float | None, aux: float | None
    ) -> tuple[float | None, float | None]:
        """(limit, stop) for the order type; off-grid prices are error 110, missing ones 463 / 403."""
        limit = stop = None
        if kind in (OrderType.LMT, OrderType.STP_LMT):
            if lmt is None or not math.isfinite(lmt):
                raise _Reject(463, "You must enter a valid price.")
            if not inst.is_on_grid(lmt):
                raise _Reject(*OFF_TICK)
            limit = inst.round_to_tick(lmt)
        if kind in (OrderType.STP, OrderType.STP_LMT):
            if aux is None or not math.isfinite(aux):
                raise _Reject(403, "Invalid Stop Price")
            if not inst.is_on_grid(aux):
                raise _Reject(*OFF_TICK)
            stop = inst.round_to_tick(aux)
        return limit, stop

    def _transmit(self, order: SimOrder) -> None:
        """Send an order and the untransmitted members of its bracket (parent first) to the engine."""
        root = order.parent if order.parent is not None and not order.parent.transmitted else order
        group = [root] + [h for h in self._held if h.parent is root and h is not root]
        if order is not root and order not in group:
            group.append(order)
        for member in group:
            if member in self._held:
                self._held.remove(member)
        for member in group:
            if member.is_done:
                continue
            if member.parent is not None and member.parent.is_done and member.parent.status != "Filled":
                member.transmitted = True
                self._finish(member, "Cancelled")
                self._cancelled(member, f"parent {member.parent.order_id} is not active")
                continue
            self._submit(member)

    def _submit(self, order: SimOrder) -> None:
        if order.is_combo:
            self._submit_combo(order)
            return
        if order.parent is None:
            shortfall = self._margin_shortfall(order)
            if shortfall is not None:
                order.transmitted = True
                self._make_inactive(order, shortfall)
                return
        if not self.match_bars:
            opens = self.market.closed_until(order.inst, int(self.market.now_s))
            if opens is not None or (order.parent is not None and order.parent in self._parked):
                self._park(order, opens)
                return
        self._to_engine(order)

    def _park(self, order: SimOrder, opens: int | None) -> None:
        """The market is closed: accept the order and hold it PreSubmitted until the open, with TWS's
        warning 399 first (see `ibot.sim.closed`). A bracket child parks with its parent."""
        order.transmitted = True
        order.status = "PreSubmitted"
        self._live[order.perm_id] = order
        self._parked.append(order)
        if opens is not None:
            text = order_held_text(order.side.value, order.quantity, order.inst, opens)
            log.info(
                "client %d order %d: %s market closed; held PreSubmitted until %s",
                order.client_id,
                order.order_id,
                order.inst.key,
                until_text(order.inst, opens),
            )
            self.events.order_error(order.client_id, order.order_id, ORDER_MESSAGE, text)
        self.events.order_status(order, True)
        order.announce = False

    def _release_parked(self, second: int) -> None:
        """Orders parked on a closed market go to the engine once it opens (in the order they came)."""
        for order in list(self._parked):
            if order.is_done or order.status == "PendingCancel":
                self._parked.remove(order)
            elif self.market.closed_until(order.inst, second) is None:
                self._parked.remove(order)
                log.info(
                    "client %d order %d: %s market open; order working",
                    order.client_id,
                    order.order_id,
                    order.inst.key,
                )
                self._to_engine(order)

    def _to_engine(self, order: SimOrder) -> None:
        engine = self._engine(order.inst)
        self._refresh_quote(engine, order.inst)
        ts = self._order_ts(order.inst)
        parent_engine_id = ""
        if order.parent is not None and engine.is_live(order.parent.engine_id):
            parent_engine_id = order.parent.engine_id
        req = OrderRequest(
            symbol=order.inst.local_symbol or order.inst.symbol,
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            tif=order.tif,
            client_order_id=order.engine_id,
            parent_id=parent_engine_id,
            oca_group=order.oca_group,
        )
        order.transmitted = True
        order.announce = True
        self._live[order.perm_id] = order
        with contextlib.suppress(OrderRejected):  # reported Inactive through the listener (with error 201)
            engine.submit(req, ts)

    def _order_ts(self, inst: Instrument) -> int:
        """When an order reaches the engine: now, or in bar mode the open of the last completed bar."""
        now = self.market.clock.ns
        ending = getattr(self.market.source, "bars_ending", None)
        if not self.match_bars or ending is None:
            return now
        try:
            done = ending(inst, -1, now // NS_PER_SECOND)
        except ValueError:
            return now
        return done[-1].ts if done else now

    def _margin_shortfall(self, order: SimOrder) -> str | None:
        """IB's pre-trade margin check: the reason text of a 201 when initial margin would exceed equity."""
        inst = order.inst
        working = [o for o in self.open_orders() if o.inst.con_id == inst.con_id and o.parent is None]
        pos = self._positions.get(inst.con_id)
        held = pos.quantity if pos is not None else 0
        buys = sum(o.remaining for o in working if o.side is Side.BUY)
        sells = sum(o.remaining for o in working if o.side is Side.SELL)
        if order.side is Side.BUY:
            buys += order.quantity
        else:
            sells += order.quantity
        worst = max(abs(held + buys), abs(held - sells))
        if worst <= abs(held):
            return None  # reduces or keeps the exposure: always allowed
        snap = self.snapshot()
        mark_t = self.mark_ticks(inst)
        mark = Decimal(mark_t) * inst.tick_size if mark_t is not None else Decimal(0)
        other = snap.init_margin - initial_margin(inst, held, mark)
        need = other + initial_margin(inst, worst, mark)
        equity = snap.net_liquidation
        if need <= equity:
            return None
        return (
            "YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY WITH LOAN "
            f"VALUE [{money(equity)} USD] MUST EXCEED THE INITIAL MARGIN [{money(need)} USD]"
        )

    def _engine(self, inst: Instrument) -> MatchingEngine:
        engine = self._engines.get(inst.con_id)
        if engine is None:
            # Execution ids unique across simulator runs and processes, as IB's are: records shared by runs
            # keep an execution by its id (the same id twice is a redelivery, or an integrity error).
            exec_prefix, exec_start = unique_exec_ids(inst.con_id)
            engine = MatchingEngine(
                inst,
                _EngineListener(self),
                self.rules,
                self.fees,
                day_end=self._sessions.end_of if inst.sec_type is SecType.FUT else None,
                exec_prefix=exec_prefix,
                exec_start=exec_start,
            )
            self._engines[inst.con_id] = engine
        return engine

    def _refresh_quote(self, engine: MatchingEngine, inst: Instrument) -> None:
        """Give the engine the top of book of the current second (once per second: sizes are shared).
        Not in bar mode: there the engine sees whole bars only."""
        if self.match_bars:
            return
        second = int(self.market.now_s)
        if self._quoted_second.get(inst.con_id) == second:
            return
        self._quoted_second[inst.con_id] = second
        self._feed_second(engine, inst, second)

    def _feed_second(self, engine: MatchingEngine, inst: Instrument, second: int) -> None:
        q = self.quote(inst, second)
        ts = second * NS_PER_SECOND
        if q is None:  # market closed: nothing fills until it opens
            engine.on_quote(ts, math.nan, math.nan)
            return
        if q.traded and engine.working:
            engine.on_trade(ts, q.last, q.last_size)
        if self.thin_liquidity:
            engine.on_quote(ts, q.bid, q.ask, q.bid_size, q.ask_size)
        else:
            engine.on_quote(ts, q.bid, q.ask)

    def on_clock(self, old_s: int, new_s: int) -> None:
        """The market moved from second old_s to new_s: feed every engine that has working orders."""
        if new_s <= old_s:
            return
        if self.match_bars:
            self._match_replayed_bars(old_s, new_s)
            return
        self._feed_working(old_s, new_s)
        if self._combos:
            self._match_combos(new_s)
        if self._parked:  # after the feed: they meet the market from the second the clock is at
            self._release_parked(new_s)

    def _feed_working(self, old_s: int, new_s: int) -> None:
        for con_id, engine in self._engines.items():
            if not engine.working:
                continue
            inst = engine.instrument
            first = max(old_s + 1, new_s - 3600)  # a clock jump of hours: the last hour is enough
            for second in range(first, new_s + 1):
                self._quoted_second[con_id] = second
                self._feed_second(engine, inst, second)
                if not engine.working:
                    break

    def _match_replayed_bars(self, old_s: int, new_s: int) -> None:
        """Bar mode: every replayed bar that ended in (old_s, new_s] meets the working orders as one bar."""
        ending = getattr(self.market.source, "bars_ending", None)
        if ending is None:
            return
        for engine in list(self._engines.values()):
            try:
                bars = ending(engine.instrument, old_s, new_s)
            except ValueError:  # no stored bars for this product: nothing trades
                continue
            for bar in bars:
                engine.on_bar(bar)

    # --- modify / cancel ------------------------------------------------------------------------------
    def _modify(self, order: SimOrder, msg: PlaceOrder) -> None:
        o = msg.order
        cid, oid = order.client_id, order.order_id
        try:
            inst = self._resolve(msg.contract)
        except _Reject as r:
            self.events.order_error(cid, oid, r.code, r.text)
            return
        if order.is_done or inst.con_id != order.inst.con_id or o.action.upper() != order.side.value:
            log.info("client %d order %d: id reused for a different order: 103", cid, oid)
            self.events.order_error(cid, oid, *DUPLICATE_ID)
            return
        kind = _TYPES.get(o.order_type.upper())
        if kind is not order.order_type:
            self.events.order_error(cid, oid, 105, "Order being modified does not match original order")
            return
        try:
            limit, stop = self._prices(inst, kind, o.lmt_price, o.aux_price)
        except _Reject as r:
            self.events.order_error(cid, oid, r.code, r.text)
            return
        qty_dec = o.total_quantity if o.total_quantity is not None else Decimal(order.quantity)
        qty = int(qty_dec)
        if qty_dec != qty or qty <= order.filled:
            self.events.order_error(
                cid,
                oid,
                105,
                f"Order being modified does not match original order: quantity {qty_dec} must be above "
                f"the {order.filled} already filled",
            )
            return
        order.view = o
        order.quantity, order.limit_price, order.stop_price = qty, limit, stop
        order.announce = True
        if order in self._parked:  # still waiting for the open: the new terms are what will work
            self.events.order_status(order, True)
            order.announce = False
            return
        if not order.transmitted:
            if o.transmit:
                order.transmit = True
                self._transmit(order)
            return
        engine = self._engine(inst)
        self._refresh_quote(engine, inst)
        try:
            engine.modify(order.engine_id, self.market.clock.ns, qty, limit, stop)
        except UnknownOrderError:
            self.events.order_error(cid, oid, *DUPLICATE_ID)
        except InvalidOrderError as e:
            self.events.order_error(cid, oid, 105, f"Order being modified does not match original order: {e}")

    def cancel(self, client_id: int, order_id: int) -> None:
        """CANCEL_ORDER: PendingCancel, then Cancelled + 202 (errors 10147 / 10148 as a gateway answers)."""
        order = self._orders.get((client_id, order_id))
        if order is None:
            self.events.order_error(
                client_id, order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found."
            )
            return
        if order.is_done or order.status == "PendingCancel":
            self.events.order_error(
                client_id,
                order_id,
                10148,
                f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {order.status}.",
            )
            return
        self._cancel(order)
        if order.oca_group and order.oca_type == _OCA_CANCEL_WITH_BLOCK:
            for other in list(self._orders.values()):
                if (
                    other is not order
                    and other.oca_group == order.oca_group
                    and other.client_id == client_id
                    and not other.is_done
                    and other.status != "PendingCancel"
                ):
                    self._cancel(other)

    def global_cancel(self) -> None:
        """REQ_GLOBAL_CANCEL: every live or held order of every client."""
        for order in list(self._orders.values()):
            if not order.is_done and order.status != "PendingCancel" and order.parent is None:
                self._cancel(order)
        for order in list(self._orders.values()):
            if not order.is_done and order.status != "PendingCancel":
                self._cancel(order)

    def _cancel(self, order: SimOrder) -> None:
        if not order.transmitted:
            if order in self._held:
                self._held.remove(order)
            order.transmitted = True
            self._finish(order, "Cancelled")
            self._cancelled(order, "")
            return
        order.status = "PendingCancel"
        self.events.order_status(order, True)
        if order.is_combo:  # the simulator's combo book: cancelled at once
            if order in self._combos:
                self._combos.remove(order)
            self._finish(order, "Cancelled")
            self._cancelled(order, "")
            return
        if order in self._parked:  # never reached the exchange: cancelled at once
            self._parked.remove(order)
            self._finish(order, "Cancelled")
            self._cancelled(order, "")
            return
        engine = self._engine(order.inst)
        if self.faults.take_late_cancel():
            log.info("fault: cancel of order %d arrives too late; it fills", order.order_id)
            self._force_fill(engine, order)
            if not order.is_done:
                engine.cancel(order.engine_id, self.market.clock.ns)
            return
        try:
            engine.cancel(order.engine_id, self.market.clock.ns)
        except UnknownOrderError:  # already gone in the engine (done between the two): report as cancelled
            if not order.is_done:
                self._finish(order, "Cancelled")
                self._cancelled(order, "")

    # --- fault hooks ------------------------------------------------------------------------------------
    def fill_now(self, client_id: int, order_id: int) -> None:
        """Fault: the market reaches this order now and fills all of it (at its limit, or the quote)."""
        order = self._orders.get((client_id, order_id))
        if order is None or order.is_done or not order.transmitted:
            raise KeyError(f"fill_now: client {client_id} has no working order {order_id}")
        self._force_fill(self._engine(order.inst), order)

    def _force_fill(self, engine: MatchingEngine, order: SimOrder) -> None:
        """Make the order marketable inside the one engine: a deep quote through its price, at its price."""
        inst = order.inst
        ts = self.market.clock.ns
        if not engine.is_live(order.engine_id):
            return
        q = self.quote(inst, int(self.market.now_s))
        ref = order.limit_price if order.limit_price is not None else order.stop_price
        if ref is None:
            ref = q.last if q is not None else inst.from_ticks(self._marks.get(inst.con_id, 1))
        t = inst.to_ticks(ref)
        if order.stop_price is not None:  # the stop trades first
            engine.on_trade(ts, inst.from_ticks(inst.to_ticks(order.stop_price)), math.inf)
        if engine.is_live(order.engine_id):
            # a quote whose far side is the order's own price: it is marketable and fills there in full
            bid, ask = (
                (inst.from_ticks(t - 1), inst.from_ticks(t))
                if order.side is Side.BUY
                else (
                    inst.from_ticks(t),
                    inst.from_ticks(t + 1),
                )
            )
            engine.on_quote(ts, bid, ask)
        self._quoted_second.pop(inst.con_id, None)  # the real quote comes back on the next feed

    def make_inactive(self, client_id: int, order_id: int, reason: str = "") -> None:
        """Fault: IB deactivates a working order (Inactive); it is taken off the engine."""
        order = self._orders.get((client_id, order_id))
        if order is None or order.is_done:
            raise KeyError(f"make_inactive: client {client_id} has no live order {order_id}")
        self._make_inactive(order, reason)

    def _make_inactive(self, order: SimOrder, reason: str) -> None:
        engine = self._engines.get(order.inst.con_id)
        self._finish(order, "Inactive")  # before the engine cancel so its report is ignored
        if engine is not None and engine.is_live(order.engine_id):
            engine.cancel(order.engine_id, self.market.clock.ns)
        if reason:
            self.events.order_error(order.client_id, order.order_id, 201, REJECTED_TEXT + reason)
        order.announce = True
        self.events.order_status(order, True)

    def _forced_reject(self, order: SimOrder, code: int, text: str) -> None:
        if code == 202:  # accepted, then cancelled by the system
            self._transmit(order)
            if not order.is_done:
                self._cancel(order)
            return
        if code == 201:
            order.transmitted = True
            self._make_inactive(order, text.removeprefix(REJECTED_TEXT) or "scripted rejection")
            return
        del self._orders[(order.client_id, order.order_id)]
        del self._by_perm[order.perm_id]
        self.events.order_error(order.client_id, order.order_id, code, text or f"scripted error {code}")

    def release_commissions(self) -> None:
        """Send every commission report held back by the delay fault, in fill order."""
        held, self._held_commissions = self._held_commissions, []
        for e in held:
            self.events.commission(e)

    # --- engine reports ---------------------------------------------------------------------------------
    def _on_fill(self, fill: Fill) -> None:
        order = self._by_perm.get(int(fill.client_order_id))
        if order is None:
            return
        order.filled += fill.quantity
        order.fill_ticks += order.inst.to_ticks(fill.price) * fill.quantity
        order.last_fill_price = fill.price
        self._book(order, order.inst, fill, leg=False)

    def _book(self, order: SimOrder, inst: Instrument, fill: Fill, *, leg: bool) -> None:
        """Book one execution of `order` in `inst` (a combo's leg when `leg`): position, P&L, the report."""
        ticks = inst.to_ticks(fill.price)
        book = self._positions.get(inst.con_id)
        if book is None:
            book = self._positions[inst.con_id] = PositionBook(inst)
        realized = book.apply(fill.side.sign * fill.quantity, ticks, self.fees.per_contract)
        if realized is not None:
            self._roll_day(fill.ts)
            self._daily_realized[inst.con_id] = self._daily_realized.get(inst.con_id, Decimal(0)) + realized
        self._marks[inst.con_id] = ticks
        self.commissions_paid += fill.commission
        e = Execution(
            exec_id=fill.exec_id,
            order=order,
            side=fill.side,
            quantity=fill.quantity,
            price=fill.price,
            ts_ns=fill.ts,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            commission=fill.commission,
            realized_pnl=realized,
            leg=inst if leg else None,
        )
        self.executions.append(e)
        self.events.execution(e)
        self._pending_commissions.append(e)

    def _on_update(self, update: OrderUpdate) -> None:
        order = self._by_perm.get(int(update.client_order_id))
        if order is None or order.is_done:
            return
        status = update.status
        if status is OrderStatus.CANCELLED:
            self._finish(order, "Cancelled")
            self._cancelled(order, "" if update.message == "cancelled by request" else update.message)
        elif status is OrderStatus.FILLED:
            self._finish(order, "Filled")
            order.why_held = ""
            self.events.order_status(order, False)
        elif status is OrderStatus.INACTIVE:
            order.transmitted = True
            self._finish(order, "Inactive")
            self.events.order_error(order.client_id, order.order_id, 201, REJECTED_TEXT + update.message)
            self.events.order_status(order, True)
        else:
            if order.status == "PendingCancel":
                new = "PendingCancel"  # a partial fill while the cancel is on its way keeps the state
            else:
                new = "PreSubmitted" if status is OrderStatus.PRE_SUBMITTED else "Submitted"
            parent = order.parent
            held_child = new == "PreSubmitted" and parent is not None and parent.status != "Filled"
            order.why_held = ""
            if held_child:  # IB: "child" while a bracket child waits for its parent, "+trigger" for stops
                order.why_held = "child,trigger" if order.stop_price is not None else "child"
            announce = order.announce or new != order.status
            order.status = new
            order.announce = False
            self.events.order_status(order, announce)
        if self._pending_commissions:
            pending, self._pending_commissions = self._pending_commissions, []
            if self.faults.commissions_held():
                self._held_commissions += pending
            else:
                for e in pending:
                    self.events.commission(e)
            self.events.account_changed()

    def _finish(self, order: SimOrder, status: str) -> None:
        self._live.pop(order.perm_id, None)
        order.status = status
        order.completed_ns = self.market.clock.ns
        order.completed_status = status
        order.announce = False

    def _cancelled(self, order: SimOrder, reason: str) -> None:
        self.events.order_status(order, False)
        self.events.order_error(order.client_id, order.order_id, 202, CANCELLED_TEXT + reason)

    # --- restart ----------------------------------------------------------------------------------------
    def roll_back_ids(self, next_valid_id: int) -> None:
        """A gateway restart that forgets how far order ids went: nextValidId starts lower again."""
        if next_valid_id < 1:
            raise ValueError(f"next valid id must be >= 1, got {next_valid_id}")
        self.next_valid_id = next_valid_id


# --- views the session encodes ---------------------------------------------------------------------------


def _is_bag(msg: PlaceOrder) -> bool:
    return msg.contract.sec_type.strip().upper() == "BAG"


def _plain(d: Decimal) -> str:
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _contract_view(inst: Instrument) -> ContractView:
    fut = inst.sec_type is SecType.FUT
    return ContractView(
        con_id=inst.con_id,
        symbol=inst.symbol,
        sec_type=inst.sec_type.value,
        last_trade_date_or_contract_month=f"{inst.expiry:%Y%m%d}" if fut and inst.expiry else "",
        strike=None,
        multiplier=_plain(inst.multiplier) if fut else "",
        exchange=inst.exchange,
        currency=inst.currency,
        local_symbol=inst.local_symbol or inst.symbol,
        trading_class=inst.trading_class or inst.symbol,
    )


def _avg_cost(book: PositionBook) -> Decimal:
    if not book.quantity:
        return Decimal(0)
    return (book.cost() / book.quantity).quantize(Decimal("0.000001"))


def order_view(order: SimOrder, account: str) -> OrderView:
    """The OrderView OPEN_ORDER / COMPLETED_ORDER carry for this order (the client's, with our ids)."""
    view: OrderView = ORDER_VIEWS.replace(
        order.view,
        {
            "order_id": order.order_id,
            "client_id": order.client_id,
            "perm_id": order.perm_id,
            "action": order.side.value,
            "total_quantity": Decimal(order.quantity),
            "order_type": order.order_type.value,
            "lmt_price": order.limit_price,
            "aux_price": order.stop_price,
            "tif": order.tif.value,
            "oca_group": order.oca_group,
            "oca_type": order.oca_type or 3,
            "account": account,
            "parent_id": order.parent_id,
            "transmit": True,
            "clearing_intent": "IB",
            "filled_quantity": Decimal(order.filled),
            "parent_perm_id": order.parent_perm_id,
            "dont_use_auto_price_for_hedge": True,
        },
    )
    return view


def open_order_view(order: SimOrder, account: str, completed: bool = False) -> OpenOrderView:
    """OPEN_ORDER's (or, `completed`, COMPLETED_ORDER's) description of an order."""
    state = OrderStateView(status=order.status)
    if completed:
        state = OrderStateView(
            status=order.status,
            completed_time=ib_completed_time(order.completed_ns),
            completed_status=order.completed_status,
        )
    return OpenOrderView(order.contract, order_view(order, account), state)


def status_view(order: SimOrder) -> OrderStatusView:
    return OrderStatusView(
        order_id=order.order_id,
        status=order.status,
        filled=Decimal(order.filled),
        remaining=Decimal(order.remaining),
        avg_fill_price=order.avg_fill_price,
        perm_id=order.perm_id,
        parent_id=order.parent_id,
        last_fill_price=order.last_fill_price,
        client_id=order.client_id,
        why_held=order.why_held,
    )


def execution_view(e: Execution, account: str) -> ExecutionView:
    o = e.order
    return ExecutionView(
        contract=_contract_view(e.leg) if e.leg is not None else o.contract,
        order_id=o.order_id,
        exec_id=e.exec_id,
        time=ib_execution_time(e.ts_ns),
        acct_number=account,
        exchange=e.instrument.exchange,
        side="BOT" if e.side is Side.BUY else "SLD",
        shares=Decimal(e.quantity),
        price=e.price,
        perm_id=o.perm_id,
        client_id=o.client_id,
        cum_qty=Decimal(e.cum_qty),
        avg_price=e.avg_price,
        order_ref=o.view.order_ref,
        model_code=o.view.model_code,
        last_liquidity=2,  # removed liquidity: the simulator's fills take the quote
    )


def commission_view(e: Execution, currency: str = "USD") -> CommissionReportView:
    return CommissionReportView(e.exec_id, e.commission, currency, e.realized_pnl)


def ib_completed_time(ts_ns: int) -> str:
    """COMPLETED_ORDER's completedTime as TWS writes it: "yyyymmdd-hh:mm:ss" in UTC."""
    return f"{datetime.fromtimestamp(ts_ns // NS_PER_SECOND, UTC):%Y%m%d-%H:%M:%S}"


def _filter_time(text: str) -> int | None:
    """REQ_EXECUTIONS' time: "yyyymmdd-hh:mm:ss" (UTC) or "yyyymmdd hh:mm:ss [zone]" (UTC when no zone)."""
    s = text.strip()
    if not s:
        return None
    try:
        if "-" in s and " " not in s:
            dt = datetime.strptime(s, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        else:
            parts = s.split()
            zone = ZoneInfo(parts[2]) if len(parts) > 2 else UTC
            dt = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S").replace(tzinfo=zone)
    except (ValueError, IndexError, ZoneInfoNotFoundError):
        return None
    return int(dt.timestamp()) * NS_PER_SECOND

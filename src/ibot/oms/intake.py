"""One order intake: the one path by which every order that does not come from a strategy enters the node.

Webhook, CLI, gateway and REPL hand in an `OrderTicket` as they received it (every field a string or a
number). `OrderIntake.validate` turns it into a typed, resolved `ValidTicket` or raises `IntakeRejected`
naming the field in one sentence (sync, no broker I/O: a door answers with it). `OrderIntake.submit` then:

1. checks the session is ready (else REJECTED naming it; the key is not claimed, a retry may place it);
2. qualifies the instrument with the session (a door may trade what no strategy trades);
3. claims the idempotency key in the records DB (`intake_keys`, atomic on the primary key, window in market
   time, across restarts): held within the window -> DUPLICATE, nothing placed;
4. turns a target position into the trade that reaches it (the OMS's position plus working orders): already
   there -> NOTHING_TO_DO;
5. sends it through `TradingSession.submit` -> `OrderManager.submit`: the node's risk checks (the one
   `RiskManager` strategies use too: one budget), the write-ahead record, then the send.

What it promises: it never places an order that was not asked for, and never one twice. The client order id
is derived from the source and the key (or given), so a key's order has one id forever: a ticket replayed
after the window, or retried after a crash between the claim and the write-ahead, reaches the OMS under the
same id, and the OMS never sends a client order id it has recorded (DUPLICATE). A claim a crash left
unfinished is resumed under its id; an order a kill kept from IB is placed again once after the restart
(`replace_unsent`). Bad input and risk refusals are verdicts, never exceptions.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING

from ibot.model import catalog
from ibot.model.errors import IbotError, InvalidOrderError
from ibot.model.instruments import Instrument
from ibot.model.market import ns_to_datetime
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from ibot.oms.risk import RiskLimitExceeded

if TYPE_CHECKING:
    from ibot.engine.session import TradingSession
    from ibot.oms.records import OrderRecord

__all__ = [
    "MAX_CONTRACTS",
    "IntakeRejected",
    "IntakeResult",
    "IntakeVerdict",
    "OrderIntake",
    "OrderTicket",
    "ValidTicket",
    "derive_client_order_id",
]

log = logging.getLogger(__name__)

NS_PER_SECOND = 1_000_000_000
MAX_CONTRACTS = 1_000_000  # a quantity or target beyond this is a typo, whatever the risk limits say
_MAX_KEY = 255
_MAX_SOURCE = 32
_MAX_CID = 64
_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")
_TYPES = {"MKT": OrderType.MKT, "LMT": OrderType.LMT, "STP": OrderType.STP, "STP LMT": OrderType.STP_LMT}


class IntakeVerdict(StrEnum):
    ACCEPTED = "accepted"  # recorded write-ahead and sent
    DUPLICATE = "duplicate"  # idempotency key seen within the window (or its order recorded): nothing placed
    REJECTED = "rejected"  # validation, the session or risk refused it: nothing placed (field/limit named)
    NOTHING_TO_DO = "nothing_to_do"  # a target position already held


@dataclass(frozen=True, slots=True)
class OrderTicket:
    """An order as a door received it: every field may be a string or a number (see `OrderIntake.validate`).

    `target_position` instead of `quantity`: trade to reach this signed position (seed 001, "flatten and go
    long"). `client_order_id`: optional; else derived from source + key. `stop_price`: STP / STP LMT only."""

    source: str  # "webhook", "cli", "gateway", "repl"
    symbol: str  # catalog symbol "MES" (the roll calendar's month at the market's date), "MESZ6", "AAPL"
    side: str  # "BUY"/"SELL", any case
    quantity: object = None
    order_type: str = "MKT"
    price: object = None
    reason: str = ""
    idempotency_key: str = ""
    target_position: object = None
    client_order_id: str = ""
    stop_price: object = None


@dataclass(frozen=True, slots=True)
class ValidTicket:
    """A ticket `validate` accepted: typed, the instrument resolved, prices exact and on the tick grid."""

    instrument: Instrument
    side: Side
    quantity: int | None
    order_type: OrderType
    limit_price: Decimal | None
    reason: str
    idempotency_key: str
    target_position: int | None
    client_order_id: str
    source: str
    stop_price: Decimal | None = None


class IntakeRejected(IbotError, ValueError):
    """A ticket refused: `field` names what was wrong ("quantity", "price", "symbol"...) or the risk limit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    @property
    def limit(self) -> str:
        return self.field


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What a ticket became. `reason`: one sentence naming the field or the risk limit (and by how much)."""

    verdict: IntakeVerdict
    client_order_id: str | None
    reason: str = ""
    field: str = ""


def derive_client_order_id(source: str, key: str) -> str:
    """The client order id of a ticket without one: the same for the same source and key, in every process."""
    digest = hashlib.sha256(f"{source}\x00{key}".encode()).hexdigest()[:24]
    return f"{source[:16]}-{digest}"


# --- validation of single fields ---------------------------------------------------------------------------


def _text(field: str, value: object, *, required: bool, limit: int) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise IntakeRejected(field, f"{field} must be text, got {type(value).__name__} {value!r}")
    text = value.strip()
    if required and not text:
        raise IntakeRejected(field, f"{field} is required and was empty")
    if len(text) > limit:
        raise IntakeRejected(field, f"{field} is {len(text)} characters long; at most {limit} are allowed")
    return text


def _number(field: str, value: object) -> Decimal:
    """A finite number from an int, a float, a Decimal or numeric text; bool and everything else refused."""
    if isinstance(value, bool):
        raise IntakeRejected(field, f"{field} must be a number, got the boolean {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise IntakeRejected(field, f"{field} {value!r} is not a finite number")
        return Decimal(repr(value))
    if isinstance(value, int | Decimal):
        d = Decimal(value)
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise IntakeRejected(field, f"{field} {value!r} is not a number") from None
    else:
        raise IntakeRejected(field, f"{field} must be a number, got {type(value).__name__} {value!r}")
    if not d.is_finite():
        raise IntakeRejected(field, f"{field} {value!r} is not a finite number")
    return d


def _whole(field: str, value: object, *, signed: bool) -> int:
    """A whole number of contracts: 2, 2.0, "2" (and "-1" when `signed`); fractions, text, bool refused."""
    if isinstance(value, str) and not _WHOLE.fullmatch(value.strip()):
        raise IntakeRejected(field, f"{field} {value!r} is not a whole number of contracts")
    d = _number(field, value)
    if d != d.to_integral_value():
        raise IntakeRejected(field, f"{field} {value!r} is not a whole number of contracts")
    n = int(d)
    if not signed and n <= 0:
        raise IntakeRejected(field, f"{field} {value!r} must be a positive whole number of contracts")
    if abs(n) > MAX_CONTRACTS:
        raise IntakeRejected(field, f"{field} {value!r} is more than {MAX_CONTRACTS} contracts")
    return n


def snap_price(field: str, value: object, instrument: Instrument, *, down: bool) -> Decimal:
    """A finite positive price on the instrument's tick grid, exactly: rounded down (`down`) or up to it."""
    d = _number(field, value)
    if d <= 0:
        raise IntakeRejected(field, f"{field} {value!r} must be positive")
    tick = instrument.tick_size
    ticks = (d / tick).to_integral_value(ROUND_FLOOR if down else ROUND_CEILING)
    snapped = ticks * tick
    if snapped <= 0:
        raise IntakeRejected(field, f"{field} {value!r} is below one tick ({tick}) of {instrument.key}")
    return snapped.normalize() if snapped != snapped.to_integral_value() else snapped.quantize(Decimal(1))


# --- the intake ------------------------------------------------------------------------------------------


class OrderIntake:
    """Validate, de-duplicate, risk-check, record and send the orders of every door that is not a strategy.

    `session` is the node's one TradingSession (one IB order connection, one OMS, one risk budget);
    `window_seconds` (market time) is how long an idempotency key answers DUPLICATE by itself."""

    def __init__(self, session: TradingSession, *, window_seconds: float = 600.0) -> None:
        if not math.isfinite(window_seconds) or window_seconds < 0:
            raise ValueError(f"window_seconds must be a finite number >= 0, got {window_seconds!r}")
        self.session = session
        self.window_ns = int(window_seconds * NS_PER_SECOND)
        self._busy: set[str] = set()  # keys being placed by this process now

    # --- validation ----------------------------------------------------------------------------------------
    def _asof(self) -> date:
        """The market clock's date (the roll calendar's month of "MES"); before any market time is known,
        today's date, as the OMS resolves records."""
        ns = self.session.market_clock() or self.session.clock.ns
        return ns_to_datetime(ns).date() if ns > 0 else date.today()

    def _instrument(self, value: object) -> Instrument:
        text = _text("symbol", value, required=True, limit=32)
        try:
            inst = catalog.resolve(text, self._asof())
        except IbotError as exc:
            raise IntakeRejected("symbol", f"symbol {text!r} does not resolve: {exc}") from None
        try:
            return self.session.instrument(inst.key)  # the one the session qualified (IB's con id)
        except IbotError:
            return inst

    def validate(self, ticket: OrderTicket) -> ValidTicket:
        """The typed, resolved ticket, or IntakeRejected naming the first bad field in one sentence."""
        source = _text("source", ticket.source, required=True, limit=_MAX_SOURCE)
        key = _text("idempotency_key", ticket.idempotency_key, required=True, limit=_MAX_KEY)
        cid = _text("client_order_id", ticket.client_order_id, required=False, limit=_MAX_CID)
        instrument = self._instrument(ticket.symbol)
        side_text = _text("side", ticket.side, required=True, limit=8).upper()
        if side_text not in ("BUY", "SELL"):
            raise IntakeRejected("side", f"side {ticket.side!r} is not BUY or SELL")
        side = Side(side_text)
        type_text = " ".join(_text("order_type", ticket.order_type, required=True, limit=8).upper().split())
        order_type = _TYPES.get(type_text.replace("_", " "))
        if order_type is None:
            raise IntakeRejected(
                "order_type", f"order_type {ticket.order_type!r} is not one of {', '.join(_TYPES)}"
            )
        quantity = target = None
        if ticket.quantity is not None and ticket.target_position is not None:
            raise IntakeRejected(
                "target_position", "target_position and quantity were both given; give one of them"
            )
        if ticket.target_position is not None:
            target = _whole("target_position", ticket.target_position, signed=True)
        elif ticket.quantity is None or ticket.quantity == "":
            raise IntakeRejected("quantity", "quantity is required (or a target_position instead)")
        else:
            quantity = _whole("quantity", ticket.quantity, signed=False)
        limit, stop = self._prices(ticket, instrument, side, order_type)
        reason = ticket.reason if isinstance(ticket.reason, str) else str(ticket.reason)
        return ValidTicket(
            instrument,
            side,
            quantity,
            order_type,
            limit,
            reason.strip()[:200],
            key,
            target,
            cid or derive_client_order_id(source, key),
            source,
            stop,
        )

    @staticmethod
    def _prices(
        ticket: OrderTicket, instrument: Instrument, side: Side, order_type: OrderType
    ) -> tuple[Decimal | None, Decimal | None]:
        """(limit, stop). A limit is snapped never more aggressive than asked (BUY down, SELL up); a stop
        never to trigger earlier than asked (BUY up, SELL down). A market order's price, if any, must be a
        number and is then ignored; a stop price is refused where the order type takes none."""
        buy = side is Side.BUY
        limit = stop = None
        if order_type in (OrderType.LMT, OrderType.STP_LMT):
            if ticket.price is None or ticket.price == "":
                raise IntakeRejected("price", f"price is required for a {order_type} order")
            limit = snap_price("price", ticket.price, instrument, down=buy)
        elif ticket.price is not None and ticket.price != "":
            snap_price("price", ticket.price, instrument, down=buy)  # checked, then ignored
        if order_type in (OrderType.STP, OrderType.STP_LMT):
            if ticket.stop_price is None or ticket.stop_price == "":
                raise IntakeRejected("stop_price", f"stop_price is required for a {order_type} order")
            stop = snap_price("stop_price", ticket.stop_price, instrument, down=not buy)
        elif ticket.stop_price is not None and ticket.stop_price != "":
            raise IntakeRejected(
                "stop_price", f"stop_price is only for STP and STP LMT orders, not {order_type}"
            )
        return limit, stop

    # --- submission ----------------------------------------------------------------------------------------
    async def submit(self, ticket: OrderTicket | ValidTicket) -> IntakeResult:
        """Validate, claim the key, reach the target, risk-check, record write-ahead and send: the verdict.

        Never raises for bad input, a duplicate, an unready session or a risk refusal (each is a verdict
        naming the field or limit); a failure of the records database itself propagates (the key is released
        when nothing was recorded)."""
        try:
            valid = ticket if isinstance(ticket, ValidTicket) else self.validate(ticket)
        except IntakeRejected as exc:
            return self._verdict(IntakeVerdict.REJECTED, None, exc.message, exc.field)
        session = self.session
        if not session.ready:
            return self._not_ready(valid.client_order_id, f"the trading session is {session.state.value}")
        try:
            instrument = await session.qualify(valid.instrument)
        except IbotError as exc:
            if not session.ready:
                return self._not_ready(valid.client_order_id, str(exc))
            return self._verdict(
                IntakeVerdict.REJECTED, None, f"symbol {valid.instrument.key}: {exc}", "symbol"
            )
        # From the claim to the OMS's write-ahead nothing awaits (TradingSession.submit runs synchronously up
        # to the send), so within this process the two are one step; across a crash, the claim is resumed.
        key = valid.idempotency_key
        records = session.records
        cid = valid.client_order_id
        ts = session.market_clock() or session.clock.ns
        held = records.claim_intake_key(key, valid.source, cid, ts, self.window_ns)
        if held is not None:
            claim = records.intake_key(key)
            if claim is not None and not claim.verdict and key not in self._busy:
                held = self._never_sent_replacement(held)  # recorded, then a crash before the send
            if claim is None or claim.verdict or key in self._busy or records.order_status(held) is not None:
                when = ns_to_datetime(claim.claimed_ts).strftime("%Y-%m-%d %H:%M:%S UTC") if claim else "?"
                return self._verdict(
                    IntakeVerdict.DUPLICATE,
                    held,
                    f"idempotency_key {key!r} was already used at {when} (order {held}); nothing was placed",
                    "idempotency_key",
                )
            log.warning("intake: key %r was claimed but never placed (a crash?): placing it as %s", key, held)
            cid = held
        elif (status := records.order_status(cid)) is not None:  # the status alone: no record built
            records.finish_intake_key(key, IntakeVerdict.DUPLICATE)
            return self._verdict(
                IntakeVerdict.DUPLICATE,
                cid,
                f"client_order_id {cid} is already recorded ({status}); an order is never sent twice",
                "client_order_id",
            )
        self._busy.add(key)
        try:
            result = await self._place(valid, instrument, cid)
        finally:
            self._busy.discard(key)
        if result.verdict is not IntakeVerdict.REJECTED or result.field != "session":
            records.finish_intake_key(key, result.verdict)
        return result

    async def replace_unsent(self) -> list[str]:
        """Once after a restart's reconciliation (the session ready, before the doors take tickets): place
        again every order of an intake claim within the window that never reached the broker.

        A kill -9 after the send can lose it (the process wrote the order to its socket, the kernel discarded
        it), after the claim was finished and its alert acknowledged: the reconciliation found the order at no
        broker and closed it Inactive (`_never_reached_broker`). Such an order is placed once more under the
        name `_never_sent_replacement` derives (`<cid>-r1`, then `-r2`...), through the session (risk checks,
        write-ahead); a name already recorded means an earlier restart placed it, so one order per key across
        restarts. Only claims of the intake (never a strategy's orders), accepted or left unfinished; a claim
        with no order recorded is resumed when its ticket comes again. The client order ids placed."""
        session = self.session
        if not session.ready:
            return []
        records = session.records
        now = session.market_clock() or session.clock.ns
        if now <= 0:  # no market time yet: the window cannot be told, and an order is never placed late
            log.warning("intake: market time unknown after the reconciliation: no lost order is placed again")
            return []
        placed: list[str] = []
        for claim in records.intake_keys(now - self.window_ns):
            if claim.verdict not in ("", IntakeVerdict.ACCEPTED) or claim.key in self._busy:
                continue
            rec = records.get_order(claim.client_order_id)
            if rec is None or not _never_reached_broker(rec):
                continue
            cid = self._never_sent_replacement(claim.client_order_id, quiet=True)
            if records.order_status(cid) is not None:
                continue  # placed again by an earlier restart (and recorded): never a second time
            log.warning(
                "intake: the order %s of claim %r (%s) never reached the broker (closed by the restart's "
                "reconciliation): placing it again as %s",
                claim.client_order_id,
                claim.key,
                claim.source,
                cid,
            )
            self._busy.add(claim.key)
            try:
                result = await self._place_again(rec, cid, claim.source)
            finally:
                self._busy.discard(claim.key)
            if result is None:  # the session dropped: the next restart's reconciliation comes back to it
                break
            if not claim.verdict:
                records.finish_intake_key(claim.key, result.verdict)
            if result.verdict is IntakeVerdict.ACCEPTED:
                placed.append(cid)
        return placed

    async def _place_again(self, rec: OrderRecord, cid: str, source: str) -> IntakeResult | None:
        """Send the recorded order `rec` once more as `cid` (risk checks, write-ahead, send); None when the
        session was not ready (nothing recorded)."""
        from ibot.engine.session import SessionNotReadyError  # the runtime layer sits above this one

        try:
            instrument = await self.session.qualify(self._instrument(rec.key))
            order = OrderRequest(
                instrument.key,
                rec.side,
                rec.quantity,
                OrderType(rec.order_type),
                float(rec.limit_price) if rec.limit_price is not None else None,
                float(rec.stop_price) if rec.stop_price is not None else None,
                TimeInForce(rec.tif),
                client_order_id=cid,
                reason=f"{rec.client_order_id} never reached the broker: {rec.reason}"[:200],
            )
            m = await self.session.submit(order, strategy=rec.strategy or source)
        except SessionNotReadyError as exc:
            log.warning("intake: %s not placed yet: %s", cid, exc)
            return None
        except RiskLimitExceeded as exc:
            return self._verdict(IntakeVerdict.REJECTED, cid, exc.message, exc.limit)
        except (IbotError, ValueError) as exc:  # the instrument or the order refused (recorded, if at all)
            return self._verdict(IntakeVerdict.REJECTED, cid, f"order {cid}: {exc}", "order")
        except Exception as exc:  # recorded write-ahead, the send failed: the reconciliation decides
            log.exception("intake: placing %s again failed", cid)
            verdict = IntakeVerdict.REJECTED if self.session.records.order_status(cid) is None else None
            why = f"order {cid}: {type(exc).__name__}: {exc}"
            return self._verdict(verdict or IntakeVerdict.ACCEPTED, cid, why, "order")
        return self._verdict(IntakeVerdict.ACCEPTED, m.client_order_id, f"sent again: {order.reason}")

    def _never_sent_replacement(self, cid: str, *, quiet: bool = False) -> str:
        """The client order id to place an unfinished claim under. Normally `cid` itself. But when the crash
        came after the write-ahead and before the send, the restart's reconciliation found the order at no
        broker (no open order, no execution, never acknowledged: no perm id) and closed it Inactive; that
        order never reached IB, so the claim is placed once more under `cid-r1` (then `-r2`...), a name the
        next restart derives the same way: still one order per key."""
        records = self.session.records
        candidate = cid
        for attempt in range(1, 10):
            rec = records.get_order(candidate)
            if rec is None or not _never_reached_broker(rec):
                return candidate
            log.log(
                logging.DEBUG if quiet else logging.WARNING,
                "intake: order %s was recorded but never reached the broker (closed by the restart's "
                "reconciliation): placing the claim again as %s-r%d",
                candidate,
                cid,
                attempt,
            )
            candidate = f"{cid}-r{attempt}"
        return candidate

    def _order(self, valid: ValidTicket, instrument: Instrument, cid: str) -> OrderRequest | IntakeResult:
        """The order to send: the ticket's quantity, or the trade from the OMS's position and working orders
        to the target position (NOTHING_TO_DO when held; REJECTED when on the other side of the ticket)."""
        quantity = valid.quantity
        note = ""
        if valid.target_position is not None:
            target = valid.target_position
            om = self.session.om
            position = om.risk.position(instrument)
            working = sum(m.request.side.sign * m.remaining for m in om.working_orders(instrument.key))
            delta = target - position - working
            have = f"position {position:+d}" + (f" with {working:+d} working" if working else "")
            if delta == 0:
                why = (
                    f"target_position {target:+d} of {instrument.key} is already held ({have}): nothing to do"
                )
                return self._verdict(IntakeVerdict.NOTHING_TO_DO, None, why, "target_position")
            side = Side.BUY if delta > 0 else Side.SELL
            if side is not valid.side:
                return self._verdict(
                    IntakeVerdict.REJECTED,
                    cid,
                    f"target_position {target:+d} of {instrument.key} from {have} needs {side} {abs(delta)}, "
                    f"but the ticket's side is {valid.side}; nothing was placed",
                    "target_position",
                )
            quantity = abs(delta)
            note = f" (target {target:+d} from {have})"
        assert quantity is not None  # validate() gives a quantity or a target
        return OrderRequest(
            instrument.key,
            valid.side,
            quantity,
            valid.order_type,
            float(valid.limit_price) if valid.limit_price is not None else None,
            float(valid.stop_price) if valid.stop_price is not None else None,
            client_order_id=cid,
            reason=(valid.reason or f"{valid.source} order") + note,
        )

    async def _place(self, valid: ValidTicket, instrument: Instrument, cid: str) -> IntakeResult:
        """Send through the session's OMS (risk check, write-ahead, send) and name what it became."""
        from ibot.engine.session import SessionNotReadyError  # the runtime layer sits above this one

        order = self._order(valid, instrument, cid)
        if isinstance(order, IntakeResult):
            return order
        records = self.session.records
        try:
            m = await self.session.submit(order, strategy=valid.source)
        except SessionNotReadyError as exc:
            records.release_intake_key(valid.idempotency_key)
            return self._not_ready(cid, str(exc))
        except RiskLimitExceeded as exc:
            return self._verdict(IntakeVerdict.REJECTED, cid, exc.message, exc.limit)
        except InvalidOrderError as exc:  # the broker adapter refused it: recorded (Inactive), never sent
            return self._verdict(IntakeVerdict.REJECTED, cid, f"order {cid}: {exc}", "order")
        except Exception as exc:
            if records.order_status(cid) is None:  # nothing recorded, nothing sent: a retry may place it
                records.release_intake_key(valid.idempotency_key)
                if isinstance(exc, IbotError):
                    return self._verdict(IntakeVerdict.REJECTED, None, str(exc), "symbol")
                raise
            # Recorded write-ahead; the send failed: it may or may not be at IB, the reconciliation decides.
            why = f"order {cid} was recorded, but its send failed ({type(exc).__name__}: {exc}); the "
            return self._verdict(
                IntakeVerdict.ACCEPTED, cid, why + "reconciliation with IB decides its state"
            )
        what = f"{order.side} {order.quantity} {instrument.key} {order.order_type}"
        if order.limit_price is not None:
            what += f" limit {valid.limit_price}"
        if order.stop_price is not None:
            what += f" stop {valid.stop_price}"
        return self._verdict(IntakeVerdict.ACCEPTED, m.client_order_id, f"sent {what}: {order.reason}")

    def _not_ready(self, cid: str | None, detail: str) -> IntakeResult:
        return self._verdict(
            IntakeVerdict.REJECTED,
            cid,
            f"session not ready: {detail}; nothing was placed (a retry may place it)",
            "session",
        )

    @staticmethod
    def _verdict(verdict: IntakeVerdict, cid: str | None, reason: str, field: str = "") -> IntakeResult:
        level = (
            logging.INFO
            if verdict in (IntakeVerdict.ACCEPTED, IntakeVerdict.NOTHING_TO_DO)
            else logging.WARNING
        )
        log.log(level, "intake %s%s: %s", verdict.value, f" {cid}" if cid else "", reason)
        return IntakeResult(verdict, cid, reason, field)


def _never_reached_broker(rec: OrderRecord) -> bool:
    """A recorded order the reconciliation closed because no broker ever acknowledged it: Inactive, nothing
    filled, no perm id, closed as "not at the broker" (never an order IB rejected or cancelled)."""
    return (
        rec.status is OrderStatus.INACTIVE
        and rec.filled == 0
        and not rec.perm_id
        and "the broker no longer has this order" in rec.last_message
    )

"""Rolling a live futures position from one month to the next: ONE decision, recorded before its first order,
finished after a crash.

When (`RollSchedule`): on the product's roll date (`catalog.roll_date` with the product's rule, or the rule
given: index micros some business days before the last trade date, MGC before IB's close-out period, MCL
before its 5-day reduce-only window) at a time of day in the exchange's zone (09:00 Chicago by default: the
regular session is open and the spread liquid).

How (`RollExecutor.roll`, then `finish` which is also what a restart runs):
1. the roll is written to the records (`rolls` table, state planned) with the position to roll and the
   working orders of the old month (stops, limits) that will move; those orders are cancelled;
2. combo: ONE calendar-spread order (BAG, exchange-directed) for the whole position: sell the old month and
   buy the new one for a long (the reverse for a short). IB guarantees exchange-listed spreads: no leg fills
   alone, so there is never double exposure and never a moment flat;
3. fallback, when the combo is refused (e.g. 201) or the broker cannot send combos: two outright MKT orders,
   the old month closed FIRST and the new month opened only once the close has filled. The legging window is
   one round trip with the position flat in between: never double exposure (both at once would risk a moment
   of twice the position if the open fills first), at the price of being out of the market for that moment;
4. the moved orders are placed again on the new month, their prices shifted by the roll's spread (new
   month's fill price - old month's) and put on the new month's tick grid; orders that were one-cancels-all
   (a bracket's stop loss and take profit) are one OCA group again;
5. done: the product now means the new month for the session and the OMS (`TradingSession.switch_month`).

Every order of the roll is an ordinary write-ahead OMS order whose client order id is made from the roll id
(`ibot.oms.rolls`), so the records show the roll as one decision and a restart never sends a step twice:
`finish` looks at each step's recorded orders and only sends what was never recorded; a combo or leg that
was recorded but never reached IB is closed by the reconciliation and the roll goes on from there.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from ibot.engine.session import TradingSession
from ibot.model import catalog
from ibot.model.catalog import RollAnchor, RollRule
from ibot.model.errors import IbotError, InvalidOrderError
from ibot.model.instruments import Instrument
from ibot.model.market import NS_PER_SECOND
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.manager import ManagedOrder
from ibot.oms.rolls import MovedOrder, RollBook, RollRecord, RollState, combo_leg_id, combo_ref, new_roll_id

__all__ = ["LIVE_ROLL_RULES", "RollError", "RollExecutor", "RollSchedule"]

log = logging.getLogger("ibot.engine")


# One roll at a time per session: two runners of one product (a node) reaching the roll time together must not
# both roll the account's position; the second reads the position once the first has finished (then zero).
_LOCKS: weakref.WeakKeyDictionary[TradingSession, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock(session: TradingSession) -> asyncio.Lock:
    lock = _LOCKS.get(session)
    if lock is None:
        lock = _LOCKS[session] = asyncio.Lock()
    return lock


class RollError(IbotError, RuntimeError):
    """A roll that could not be completed (the roll record says how far it got)."""


# Where the catalog's rule (the one history stitching uses) puts the roll ON the first day of an IB
# restriction, the live roll goes one business day earlier, so its orders trade before IB's window opens:
LIVE_ROLL_RULES: dict[str, RollRule] = {
    # IB: only margin-reducing trades in the expiring oil month from 5 business days before expiry
    "MCL": RollRule(6, RollAnchor.LAST_TRADE),
    # IB's close-out begins 2 business days before the First Position Date, itself the business day before
    # first notice: 3 business days before first notice is its first day
    "MGC": RollRule(4, RollAnchor.FIRST_NOTICE),
}


@dataclass(frozen=True, slots=True)
class RollSchedule:
    """When a month rolls: `rule` (else `rules` by product, else `LIVE_ROLL_RULES`, else the product's catalog
    rule: index micros on the Monday of expiry week) picks the day, `at` the time of day in `zone` (the
    exchange's)."""

    rule: RollRule | None = None
    at: time = time(9, 0)
    zone: str = "America/Chicago"
    rules: tuple[tuple[str, RollRule], ...] = ()

    def rule_for(self, symbol: str) -> RollRule | None:
        if self.rule is not None:
            return self.rule
        mine = dict(self.rules)
        key = symbol.upper()
        return mine.get(key) or LIVE_ROLL_RULES.get(key)

    def roll_ns(self, month: Instrument) -> int:
        """When a position in `month` rolls (ns); the runner asks after every closed bar: computed once."""
        return _roll_ns(self, month)

    def next_month(self, month: Instrument) -> Instrument:
        """The month a position in `month` rolls into (the front month on the roll date, by the same rule)."""
        rule = self.rule_for(month.symbol)
        return catalog.front_month(month.symbol, catalog.roll_date(month, rule), rule)

    def due(self, month: Instrument, now_ns: int) -> bool:
        return now_ns >= self.roll_ns(month)


@lru_cache(maxsize=64)
def _roll_ns(schedule: RollSchedule, month: Instrument) -> int:
    day = catalog.roll_date(month, schedule.rule_for(month.symbol))
    when = datetime.combine(day, schedule.at, tzinfo=ZoneInfo(schedule.zone))
    return int(when.timestamp()) * NS_PER_SECOND


class RollExecutor:
    """Rolls positions through a ready `TradingSession` (see the module doc)."""

    def __init__(
        self,
        session: TradingSession,
        *,
        strategy: str = "",
        combo: bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.session = session
        self.strategy = strategy
        self.combo = combo
        self.timeout = timeout
        self.book = RollBook(session.records)

    # --- public ---------------------------------------------------------------------------------------------
    async def roll(
        self, old: Instrument, new: Instrument, *, orders: list[ManagedOrder] | None = None
    ) -> RollRecord:
        """Roll the position held in `old` (and `orders`, working orders on `old`: all of them when None)
        into `new`; returns the finished roll record (RollError when it could not finish). Rolls of one
        session run one at a time, each reading the position when its turn comes."""
        async with _lock(self.session):
            return await self._roll(old, new, orders)

    async def _roll(self, old: Instrument, new: Instrument, orders: list[ManagedOrder] | None) -> RollRecord:
        om = self.session.om
        position = om.risk.position(old)
        working = orders if orders is not None else om.working_orders(old.key)
        moved = [MovedOrder.of(m.request, m.remaining) for m in working if not m.is_final]
        ts = self.session.market_clock() or self.session.clock.ns
        roll = RollRecord(
            roll_id=new_roll_id(old.symbol, ts),
            strategy=self.strategy,
            product=old.symbol.upper(),
            from_key=old.key,
            to_key=new.key,
            quantity=position,
            state=RollState.PLANNED,
            moved=moved,
            created_ts=ts,
            updated_ts=ts,
        )
        self.book.create(roll)  # the decision, durable before its first step
        log.info(
            "roll %s: %+d %s -> %s, %d working order(s) to move",
            roll.roll_id,
            position,
            old.key,
            new.key,
            len(moved),
        )
        return await self.finish(roll)

    async def resume(self, product: str | None = None) -> list[RollRecord]:
        """Finish every roll a previous process left unfinished (after the session reconciled with IB)."""
        done = []
        async with _lock(self.session):
            for roll in self.book.unfinished(product):
                log.warning("roll %s was cut at %s: finishing it", roll.roll_id, roll.state)
                done.append(await self.finish(roll))
        return done

    async def finish(self, roll: RollRecord) -> RollRecord:
        """Drive `roll` from its recorded state to done: each step sends only what was never recorded."""
        old = await self._qualified(roll.from_key)
        new = await self._qualified(roll.to_key)
        if roll.state is RollState.PLANNED:
            await self._cancel_moved(roll)
            state = RollState.COMBO if roll.quantity and self.combo else RollState.LEGS
            self._step(roll, state if roll.quantity else RollState.MOVING, "working orders cancelled")
        if roll.state is RollState.COMBO:
            await self._combo(roll, old, new)
        if roll.state is RollState.LEGS:
            await self._legs(roll, old, new)
        if roll.state is RollState.MOVING:
            await self._move(roll, new)
            self._step(roll, RollState.DONE, f"rolled {roll.quantity:+d} {old.key} -> {new.key}")
        if roll.state is RollState.DONE:
            self.session.switch_month(roll.product, new)
            log.info(
                "roll %s done: %s now trades %s (spread %s)", roll.roll_id, roll.product, new.key, roll.spread
            )
        return roll

    # --- steps ----------------------------------------------------------------------------------------------
    async def _cancel_moved(self, roll: RollRecord) -> None:
        om = self.session.om
        for mo in roll.moved:
            m = om.order(mo.client_order_id)
            if m is not None and not m.is_final:
                await self.session.cancel(mo.client_order_id)
        for mo in roll.moved:
            m = om.order(mo.client_order_id)
            if m is not None:
                await self._final(m)

    async def _combo(self, roll: RollRecord, old: Instrument, new: Instrument) -> None:
        ref = combo_ref(roll.roll_id)
        close, open_ = self._leg_requests(roll, old, new)
        close = OrderRequest(
            old.key,
            close.side,
            close.quantity,
            client_order_id=combo_leg_id(ref, old.con_id),
            reason=close.reason,
        )
        open_ = OrderRequest(
            new.key,
            open_.side,
            open_.quantity,
            client_order_id=combo_leg_id(ref, new.con_id),
            reason=open_.reason,
        )
        try:
            legs = await self.session.om.submit_combo(
                ref, [close, open_], abs(roll.quantity), strategy=roll.strategy
            )
        except InvalidOrderError as exc:
            self._step(roll, RollState.LEGS, f"combo not sent ({exc}): two outright orders")
            return
        for m in legs:
            await self._final(m)
        filled = [m for m in legs if m.filled]
        if len(filled) == len(legs) and all(m.status is OrderStatus.FILLED for m in legs):
            roll.spread = _spread(legs[0], legs[1])
            self._step(roll, RollState.MOVING, f"combo filled, spread {roll.spread}")
        elif not filled:
            why = legs[0].state.message or str(legs[0].status)
            self._step(roll, RollState.LEGS, f"combo {legs[0].status} ({why}): two outright orders")
        else:  # a guaranteed spread never fills one leg alone; if it ever does, the legs step levels it
            self._step(roll, RollState.LEGS, "combo filled in part: the rest as outright orders")

    async def _legs(self, roll: RollRecord, old: Instrument, new: Instrument) -> None:
        om = self.session.om
        close, open_ = self._leg_requests(roll, old, new)
        # what the combo may have done already counts (a part fill): the legs trade only what is left
        ref = combo_ref(roll.roll_id)
        done_close = _filled(om.order(combo_leg_id(ref, old.con_id)))
        done_open = _filled(om.order(combo_leg_id(ref, new.con_id)))
        c = await self._outright(roll, close, "close", close.quantity - done_close, flatten=True)
        if c is not None and c.status is not OrderStatus.FILLED:
            self._step(
                roll, RollState.FAILED, f"close leg {c.client_order_id} ended {c.status}: {c.state.message}"
            )
            raise RollError(f"roll {roll.roll_id}: the close of {old.key} ended {c.status}")
        o = await self._outright(roll, open_, "open", open_.quantity - done_open, flatten=False)
        if o is not None and o.status is not OrderStatus.FILLED:
            self._step(
                roll, RollState.FAILED, f"open leg {o.client_order_id} ended {o.status}: {o.state.message}"
            )
            raise RollError(f"roll {roll.roll_id}: the open of {new.key} ended {o.status} (position flat)")
        if c is not None and o is not None:
            roll.spread = _spread(c, o)
        self._step(roll, RollState.MOVING, "legs filled: old month closed first, then the new one opened")

    async def _outright(
        self, roll: RollRecord, request: OrderRequest, what: str, quantity: int, *, flatten: bool
    ) -> ManagedOrder | None:
        """One leg as an ordinary order (id `<roll>.<what>`): sent unless recorded already; waited on."""
        cid = roll.cid(what)
        m = self.session.om.order(cid)
        if m is None:
            if quantity <= 0:
                return None
            leg = OrderRequest(
                request.symbol, request.side, quantity, client_order_id=cid, reason=request.reason
            )
            m = await self.session.submit(leg, strategy=roll.strategy, flatten=flatten)
        await self._final(m)
        return m

    async def _move(self, roll: RollRecord, new: Instrument) -> None:
        om = self.session.om
        shift = roll.spread or Decimal(0)
        for i, mo in enumerate(roll.moved):
            original = om.order(mo.client_order_id)
            if original is not None and original.status is not OrderStatus.CANCELLED:
                continue  # it filled (or failed) before the cancel: nothing to move
            cid = roll.cid(f"re{i}")
            if om.order(cid) is not None:
                continue
            request = OrderRequest(
                new.key,
                mo.side,
                mo.quantity,
                mo.order_type,
                _shifted(new, mo.limit_price, shift),
                _shifted(new, mo.stop_price, shift),
                mo.tif,
                client_order_id=cid,
                reason=f"{mo.reason} (moved by roll from {mo.client_order_id})".strip(),
                # a bracket's exits stay one-cancels-all on the new month (their parent is filled and gone)
                oca_group=f"{roll.roll_id}.oca.{mo.oca}"[:64] if mo.oca else "",
            )
            await self.session.submit(request, strategy=roll.strategy)

    # --- helpers --------------------------------------------------------------------------------------------
    def _leg_requests(
        self, roll: RollRecord, old: Instrument, new: Instrument
    ) -> tuple[OrderRequest, OrderRequest]:
        qty = abs(roll.quantity)
        long = roll.quantity > 0
        why = f"roll {roll.roll_id}"
        close = OrderRequest(old.key, Side.SELL if long else Side.BUY, qty, OrderType.MKT, reason=why)
        open_ = OrderRequest(new.key, Side.BUY if long else Side.SELL, qty, OrderType.MKT, reason=why)
        return close, open_

    async def _qualified(self, key: str) -> Instrument:
        """The IB-qualified month `key` (known to the session, or qualified now), its order contract ready."""
        try:
            inst = self.session.instrument(key)
        except IbotError:
            now = self.session.market_clock() or self.session.clock.ns
            inst = await self.session.qualify(
                catalog.resolve(key, datetime.fromtimestamp(now / 1e9, UTC).date())
            )
        await self.session.venue.prepare(inst)
        return inst

    async def _final(self, m: ManagedOrder) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.timeout
        while not m.is_final:
            if loop.time() > end:
                raise RollError(f"order {m.client_order_id} still {m.status} after {self.timeout} s")
            await asyncio.sleep(0.01)

    def _step(self, roll: RollRecord, state: RollState, message: str) -> None:
        ts = self.session.market_clock() or self.session.clock.ns
        self.book.update(roll, state, ts, message)
        log.info("roll %s: %s (%s)", roll.roll_id, state, message)


def _filled(m: ManagedOrder | None) -> int:
    return m.filled if m is not None else 0


def _spread(close: ManagedOrder, open_: ManagedOrder) -> Decimal | None:
    """New month's average fill price - old month's."""
    a, b = close.avg_fill_price, open_.avg_fill_price
    return None if a is None or b is None else b - a


def _shifted(inst: Instrument, price: float | None, shift: Decimal) -> float | None:
    if price is None:
        return None
    return inst.round_to_tick(float(Decimal(repr(price)) + shift))

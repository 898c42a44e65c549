"""The order manager through the paper broker: real matching engine, real records (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from oms_helpers import MES, SECOND, T0, instruments, run
from sqlalchemy import event, text

from ibot.exchange.fees import FeeModel
from ibot.model.clock import Clock
from ibot.model.orders import Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side
from ibot.oms.broker import BrokerIds, BrokerOrder, BrokerStatus
from ibot.oms.manager import OrderManager
from ibot.oms.paper import PaperBroker
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimitExceeded, RiskLimits, RiskManager

S = OrderStatus
FEE = Decimal("0.62")  # IBKR tiered, CME micro equity: 0.25 + 0.35 + 0.02 per contract per side


@dataclass
class Strategy:
    """Collects what the manager tells the strategy."""

    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    def statuses(self, cid: str) -> list[OrderStatus]:
        return [u.status for u in self.updates if u.client_order_id == cid]


@dataclass
class Rig:
    om: OrderManager
    broker: PaperBroker
    clock: Clock
    strategy: Strategy
    records: OrderRecords


def limits(**kw: Any) -> RiskLimits:
    base: dict[str, Any] = {"max_position": 10, "max_order_size": 10, "price_band_pct": Decimal(5)}
    base.update(kw)
    return RiskLimits(**base)


def rig(
    records: OrderRecords, broker: PaperBroker | None = None, clock: Clock | None = None, **kw: Any
) -> Rig:
    clock = clock or (broker.clock if broker is not None else Clock(T0))
    broker = broker or PaperBroker(clock, fees=FeeModel())
    om = OrderManager(
        broker, records, RiskManager(limits(**kw), clock), clock, instruments=instruments, client_id=1000
    )
    strategy = Strategy()
    om.add_listener(strategy.updates.append, strategy.fills.append)
    return Rig(om, broker, clock, strategy, records)


def quote(r: Rig, bid: float, ask: float, dt: int = SECOND) -> None:
    r.broker.on_quote(MES, r.clock.ns + dt, bid, ask)


def mkt(side: Side, qty: int = 1, cid: str = "") -> OrderRequest:
    return OrderRequest("MES", side, qty, client_order_id=cid)


def lmt(side: Side, price: float, qty: int = 1, cid: str = "") -> OrderRequest:
    return OrderRequest("MES", side, qty, OrderType.LMT, limit_price=price, client_order_id=cid)


# The happy path --------------------------------------------------------------------------------------------
def test_market_order_is_recorded_sent_filled_and_reported(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        order = await r.om.submit(mkt(Side.BUY, 2, cid="s1"), strategy="demo")
        assert order.status is S.SUBMITTED
        quote(r, 4999.75, 5000.0)
        assert (order.status, order.filled, order.remaining, order.avg_fill_price) == (
            S.FILLED,
            2,
            0,
            Decimal(5000),
        )
        history = [e.status for e in records.events("s1")]
        assert history[:3] == [S.CREATED, S.PENDING_SUBMIT, S.SUBMITTED]
        assert history[-1] is S.FILLED
        saved = records.get_order("s1")
        assert saved is not None
        assert (saved.status, saved.filled, saved.strategy, saved.ib_order_id) == (S.FILLED, 2, "demo", 1)
        (f,) = records.fills("s1")
        assert (f.quantity, f.price, f.commission, f.commission_final) == (2, Decimal(5000), 2 * FEE, True)
        assert r.strategy.statuses("s1")[-1] is S.FILLED
        assert [(x.quantity, x.price) for x in r.strategy.fills] == [(2, 5000.0)]
        assert r.om.risk.position(MES) == 2

    run(main())


class InspectingBroker(PaperBroker):
    """A paper broker that looks in the records database at the moment an order reaches it."""

    seen: list[Any]

    async def place(self, order: BrokerOrder) -> BrokerIds:
        self.seen.append(self.records.get_order(order.client_order_id))
        return await super().place(order)


def test_write_ahead_row_exists_before_the_order_is_sent(records: OrderRecords) -> None:
    async def main() -> None:
        broker = InspectingBroker(Clock(T0), fees=FeeModel())
        broker.records = OrderRecords(records.url)  # type: ignore[attr-defined]  # its own connection
        broker.seen = []
        try:
            r = rig(records, broker)
            await r.om.connect()
            r.om.on_price(MES, 5000.0)
            await r.om.submit(lmt(Side.BUY, 4990.0, cid="w1"))
        finally:
            broker.records.close()  # type: ignore[attr-defined]
        (row,) = broker.seen
        assert row is not None
        assert row.status in (S.CREATED, S.PENDING_SUBMIT)
        assert row.ib_order_id == broker.placed[0].order_id
        assert row.limit_price == Decimal(4990)

    run(main())


# Idempotency and order ids ---------------------------------------------------------------------------------
def test_same_client_order_id_is_never_sent_twice_even_after_a_restart(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        first = await r.om.submit(lmt(Side.BUY, 4990.0, cid="dup"))
        second = await r.om.submit(lmt(Side.BUY, 4990.0, cid="dup"))
        assert second is first
        assert len(r.broker.placed) == 1
        # a restarted process with the same records database
        r2 = rig(records, r.broker)
        again = await r2.om.submit(lmt(Side.BUY, 4990.0, cid="dup"))
        assert again.client_order_id == "dup"
        assert again.order_id == first.order_id
        assert len(r.broker.placed) == 1
        assert len(records.orders()) == 1

    run(main())


def test_order_id_is_never_reused_when_the_brokers_next_id_goes_backwards(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        for k in range(3):
            await r.om.submit(lmt(Side.BUY, 4990.0, cid=f"o{k}"))
        assert [o.order_id for o in r.broker.placed] == [1, 2, 3]
        r.broker.restart_gateway(next_valid_id=1)  # nextValidId rolled back
        await r.om.connect()
        after = await r.om.submit(lmt(Side.BUY, 4990.0, cid="o3"))
        assert after.order_id == 4
        # and a restarted process, told "next id 1" by the broker, still goes on from the records
        r2 = rig(records, r.broker)
        await r2.om.connect()
        r2.om.on_price(MES, 5000.0)
        later = await r2.om.submit(lmt(Side.BUY, 4990.0, cid="o4"))
        assert later.order_id == 5
        ids = [o.order_id for o in r.broker.placed]
        assert len(ids) == len(set(ids)) == 5
        assert all(m.status is not S.INACTIVE for m in r2.om.orders())  # no 103 duplicate-id rejection

    run(main())


def test_a_reused_order_id_is_refused_by_the_broker_and_the_order_ends_inactive(
    records: OrderRecords,
) -> None:
    """What the manager prevents: the paper broker answers a reused id with IB's error 103."""

    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(lmt(Side.BUY, 4990.0, cid="a"))
        # Wipe the memory of used ids (what a manager without persisted ids would have after a restart) and
        # let the broker's next id go back to 1.
        with records.engine.begin() as conn:
            conn.execute(text("UPDATE oms_counters SET value = 0"))
            conn.execute(text("UPDATE orders SET ib_order_id = NULL"))
        r.om.broker_next_id = 1
        reused = await r.om.submit(lmt(Side.BUY, 4990.0, cid="b"))
        assert reused.order_id == 1
        assert reused.status is S.INACTIVE
        events = records.events("b")
        assert "error 103" in events[-1].message

    run(main())


# Risk ------------------------------------------------------------------------------------------------------
def test_risk_rejection_is_recorded_and_never_sent(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records, max_order_size=1)
        await r.om.connect()
        with pytest.raises(RiskLimitExceeded) as info:
            await r.om.submit(mkt(Side.BUY, 2, cid="big"))
        assert info.value.limit == "max_order_size"
        assert r.broker.placed == []
        saved = records.get_order("big")
        assert saved is not None
        assert saved.status is S.REJECTED
        assert "max_order_size" in saved.last_message
        assert r.strategy.statuses("big") == [S.REJECTED]

    run(main())


def test_working_orders_count_toward_the_position_limit(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records, max_position=2)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(lmt(Side.BUY, 4990.0))
        await r.om.submit(lmt(Side.BUY, 4989.0))
        with pytest.raises(RiskLimitExceeded, match=r"would make position 3 > allowed 2 \(over by 1\)"):
            await r.om.submit(lmt(Side.BUY, 4988.0))
        await r.om.submit(lmt(Side.SELL, 5010.0))  # the other side is not added

    run(main())


def test_kill_switch_cancels_everything_and_flattens(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records, daily_loss_limit=Decimal(50))
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(mkt(Side.BUY, 2, cid="entry"))
        quote(r, 4999.75, 5000.0)
        target = await r.om.submit(lmt(Side.SELL, 5100.0, 2, cid="target"))
        assert target.status is S.SUBMITTED
        # 2 x 5.25 points x USD 5 = 52.50 + 1.24 fees > 50: trips
        assert r.om.on_price(MES, 4994.75) is True
        await r.om.drain()
        assert target.status is S.CANCELLED
        flat = [m for m in r.om.orders() if m.strategy == "kill_switch"]
        assert len(flat) == 1
        assert (flat[0].request.side, flat[0].request.quantity, flat[0].request.order_type) == (
            Side.SELL,
            2,
            OrderType.MKT,
        )
        quote(r, 4994.5, 4994.75)
        assert flat[0].status is S.FILLED
        assert r.om.risk.position(MES) == 0
        with pytest.raises(RiskLimitExceeded) as info:
            await r.om.submit(mkt(Side.BUY, 1))
        assert info.value.limit == "kill_switch"

    run(main())


# Events ----------------------------------------------------------------------------------------------------
def test_stale_status_after_filled_changes_nothing(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        order = await r.om.submit(mkt(Side.BUY, 1, cid="f"))
        quote(r, 4999.75, 5000.0)
        n_events = len(records.events("f"))
        assert order.order_id is not None
        r.om.on_broker_event(BrokerStatus(order.order_id, S.SUBMITTED, r.clock.ns, 0, 1))
        r.om.on_broker_event(BrokerStatus(order.order_id, S.FILLED, r.clock.ns, 1, 0))
        assert order.status is S.FILLED
        assert len(records.events("f")) == n_events

    run(main())


def test_early_zero_commission_is_replaced_by_the_real_one(records: OrderRecords) -> None:
    async def main() -> None:
        clock = Clock(T0)
        r = rig(records, PaperBroker(clock, fees=FeeModel(), early_zero_commission=True))
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(mkt(Side.BUY, 1, cid="fee"))
        quote(r, 4999.75, 5000.0)
        (f,) = records.fills("fee")
        assert (f.commission, f.commission_final) == (FEE, True)
        assert r.om.risk.day_pnl() == -FEE  # bought at 5000, marked 5000: only the fee, counted once

    run(main())


def test_cancel_ends_cancelled_with_the_history_recorded(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        order = await r.om.submit(lmt(Side.BUY, 4990.0, cid="c"))
        assert await r.om.cancel("c") is True
        assert order.status is S.CANCELLED
        assert await r.om.cancel("c") is False
        statuses = [e.status for e in records.events("c")]
        assert statuses[:4] == [S.CREATED, S.PENDING_SUBMIT, S.SUBMITTED, S.PENDING_CANCEL]
        assert S.CANCELLED in statuses
        assert "error 202" in records.events("c")[-1].message

    run(main())


def test_modify_changes_the_working_order_at_the_broker_and_in_the_records(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records, max_position=3)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        order = await r.om.submit(lmt(Side.BUY, 4990.0, 1, cid="m"))
        with pytest.raises(RiskLimitExceeded, match="max_position"):
            await r.om.modify("m", quantity=4)
        await r.om.modify("m", quantity=2, limit_price=4995.0)
        saved = records.get_order("m")
        assert saved is not None
        assert (saved.quantity, saved.remaining, saved.limit_price) == (2, 2, Decimal(4995))
        r.broker.on_trade(MES, T0 + 5 * SECOND, 4994.75)  # through the new limit, not the old one
        assert (order.status, order.filled, order.avg_fill_price) == (S.FILLED, 2, Decimal(4995))

    run(main())


# Reconciliation --------------------------------------------------------------------------------------------
def test_reconcile_adopts_a_fill_made_while_disconnected_exactly_once(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        order = await r.om.submit(lmt(Side.BUY, 4999.0, cid="rest"))
        r.broker.drop_connection()
        r.broker.on_trade(MES, T0 + 10 * SECOND, 4998.75)  # trades through the limit: fills, nobody hears
        assert r.broker.events_lost > 0
        assert order.status is S.SUBMITTED
        assert records.fills("rest") == []
        report = await r.om.connect()
        (execution,) = await r.broker.executions()
        assert report.adopted_fills == [execution.exec_id]
        assert report.position_differences == {}
        assert (order.status, order.filled) == (S.FILLED, 1)
        (f,) = records.fills("rest")
        assert (f.exec_id, f.price, f.commission) == (execution.exec_id, Decimal(4999), FEE)
        assert [x.exec_id for x in r.strategy.fills] == [execution.exec_id]
        assert r.om.risk.position(MES) == 1
        again = await r.om.resync()
        assert again.clean
        assert len(records.fills("rest")) == 1
        assert len(r.strategy.fills) == 1

    run(main())


def test_reconcile_closes_orders_the_broker_no_longer_has_and_adopts_its_positions(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(lmt(Side.BUY, 4990.0, cid="gone"))
        # The process restarts; the gateway restarted too and has no orders, but holds a position of 3.
        fresh = PaperBroker(r.clock, fees=FeeModel(), next_order_id=1)
        fresh._positions[MES.key] = 3
        r2 = rig(records, fresh)
        assert [m.client_order_id for m in r2.om.working_orders()] == ["gone"]  # loaded from the records
        report = await r2.om.connect()
        assert report.closed_orders == ["gone"]
        saved = records.get_order("gone")
        assert saved is not None
        assert saved.status is S.CANCELLED
        assert "no longer has" in saved.last_message
        assert report.position_differences == {"MESZ4": (0, 3)}
        assert r2.om.risk.position(MES) == 3

    run(main())


def test_reconcile_flags_an_open_order_we_never_placed(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        foreign = OrderRequest("MES", Side.BUY, 1, OrderType.LMT, limit_price=4900.0)
        await r.broker.place(BrokerOrder(foreign, MES, 777, "placed-in-tws"))
        report = await r.om.resync()
        assert report.unknown_open_orders == [777]
        assert r.om.order("placed-in-tws") is None

    run(main())


def test_a_restarted_manager_applies_a_late_fill_to_an_order_from_the_records(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(lmt(Side.BUY, 4999.0, cid="late"))
        r2 = rig(records, r.broker)  # new process, same broker session (listener moves to r2)
        r.broker.on_trade(MES, T0 + 5 * SECOND, 4998.5)
        order = r2.om.order("late")
        assert order is not None
        assert (order.status, order.filled) == (S.FILLED, 1)
        assert len(records.fills("late")) == 1

    run(main())


# The write-ahead path -----------------------------------------------------------------------------------
class CountingBroker(PaperBroker):
    """A paper broker that notes, when an order reaches it, how many commits and queries had been made."""

    commits: list[str]
    statements: list[str]
    at_place: list[tuple[int, list[str]]]

    async def place(self, order: BrokerOrder) -> BrokerIds:
        self.at_place.append((len(self.commits), list(self.statements)))
        return await super().place(order)


def test_an_order_is_sent_after_one_commit_and_no_lookup_of_its_client_order_id(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        broker = CountingBroker(Clock(T0), fees=FeeModel())
        broker.commits, broker.statements, broker.at_place = [], [], []
        r = rig(records, broker)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        if records.engine.dialect.name == "sqlite":  # the write-ahead runs on its own DBAPI connection there

            def statement(sql: str) -> None:
                broker.statements.append(sql.split(maxsplit=1)[0].upper())
                if sql == "COMMIT":
                    broker.commits.append("commit")

            event.listen(
                records.engine.pool, "checkout", lambda dbapi, *_: dbapi.set_trace_callback(statement)
            )
        else:
            event.listen(records.engine, "commit", lambda _conn: broker.commits.append("commit"))
            event.listen(
                records.engine,
                "before_cursor_execute",
                lambda _c, _cur, statement, *_: broker.statements.append(statement.split()[0].upper()),
            )
        order = await r.om.submit(lmt(Side.BUY, 4990.0, cid="fresh"))
        ((n_commits, statements),) = broker.at_place
        assert n_commits == 1  # id reservation, order row, its Created and PendingSubmit events: one commit
        assert "SELECT" not in statements  # a fresh id is not looked up (the unique constraint guards it)
        saved = records.get_order("fresh")
        assert saved is not None
        assert (saved.ib_order_id, order.order_id) == (1, 1)
        assert [e.status for e in records.events("fresh")][:2] == [S.CREATED, S.PENDING_SUBMIT]
        assert r.strategy.statuses("fresh")[:2] == [S.PENDING_SUBMIT, S.SUBMITTED]

    run(main())


def test_a_client_order_id_an_earlier_process_finished_is_never_sent_again(records: OrderRecords) -> None:
    """A filled order is not loaded at start (only open ones are): the records' unique id catches it."""

    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        first = await r.om.submit(mkt(Side.BUY, 2, cid="done"))
        quote(r, 4999.75, 5000.0)
        assert first.status is S.FILLED
        last_id = records.last_order_id()
        n_events = len(records.events("done"))

        r2 = rig(records, r.broker)  # a restarted process
        await r2.om.connect()
        r2.om.on_price(MES, 5000.0)
        assert r2.om.working_orders() == []
        again = await r2.om.submit(mkt(Side.BUY, 2, cid="done"))
        assert (again.client_order_id, again.status, again.filled, again.order_id) == (
            "done",
            S.FILLED,
            2,
            first.order_id,
        )
        assert len(r.broker.placed) == 1
        assert records.last_order_id() == last_id  # no broker order id used up
        assert len(records.events("done")) == n_events

        r3 = rig(records, r.broker, max_order_size=1)  # one whose risk limits would refuse it now
        await r3.om.connect()
        refused_now = await r3.om.submit(mkt(Side.BUY, 2, cid="done"))
        assert (refused_now.status, refused_now.filled) == (S.FILLED, 2)  # the recorded order, untouched
        saved = records.get_order("done")
        assert saved is not None
        assert saved.status is S.FILLED
        assert len(r.broker.placed) == 1

    run(main())


def test_working_orders_leave_the_working_list_when_they_end(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        resting = await r.om.submit(lmt(Side.BUY, 4990.0, cid="rest"))
        filled = await r.om.submit(mkt(Side.BUY, 1, cid="go"))
        assert [m.client_order_id for m in r.om.working_orders("MESZ4")] == ["rest", "go"]
        quote(r, 4999.75, 5000.0)
        assert filled.status is S.FILLED
        assert r.om.working_orders() == [resting]
        await r.om.cancel("rest")
        assert r.om.working_orders() == []
        assert [m.client_order_id for m in r.om.orders()] == ["rest", "go"]

    run(main())

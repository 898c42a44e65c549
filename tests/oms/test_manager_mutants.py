"""The order manager's execution, commission, duplicate-id and kill-switch paths, pinned where a surviving
mutant showed that no test would notice a wrong fill, fee, position or order (issue 13, finding 11).

Real paper broker (matching engine), real records (SQLite file and PostgreSQL). Executions that IB may send in
forms the paper broker never produces (one id only, an exec id of another order) are built by hand and go in
through the manager's public doors: `on_broker_event` and `reconcile`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from decimal import Decimal

import pytest
from oms_helpers import MES, MNQ, SECOND, T0, run
from test_manager import FEE, Rig, lmt, mkt, quote, rig

from ibot.model.clock import Clock
from ibot.model.errors import InvalidOrderError
from ibot.model.orders import Fill, OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.broker import (
    BrokerCommission,
    BrokerEvent,
    BrokerExecution,
    BrokerIds,
    BrokerOpenOrder,
    BrokerOrder,
    BrokerPosition,
    BrokerStatus,
)
from ibot.oms.paper import PaperBroker
from ibot.oms.records import OrderRecords, execution_time
from ibot.oms.risk import RiskLimitExceeded

S = OrderStatus
DAY = 24 * 3600 * SECOND
MANAGER = "ibot.oms.manager"


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == MANAGER and r.levelno == level]


async def working_buy(r: Rig, quantity: int = 3, cid: str = "w") -> tuple[int, int]:
    """A BUY limit far below the market, working at the paper broker; its (order id, perm id)."""
    await r.om.connect()
    r.om.on_price(MES, 5000.0)
    m = await r.om.submit(lmt(Side.BUY, 4900.0, quantity, cid=cid))
    assert m.status is S.SUBMITTED and m.order_id is not None and m.perm_id
    return m.order_id, m.perm_id


def execution(exec_id: str, order_id: int, **kw: object) -> BrokerExecution:
    base: dict[str, object] = {"quantity": 1, "price": Decimal(4900), "ts": T0 + SECOND}
    base.update(kw)
    return BrokerExecution(exec_id, order_id, "MESZ4", Side.BUY, **base)  # type: ignore[arg-type]


# An execution found by any one of its ids -------------------------------------------------------------------
@pytest.mark.parametrize("by", ["order id", "perm id", "client order id"])
def test_an_execution_carrying_only_one_of_its_ids_is_counted_on_its_order(
    records: OrderRecords, by: str
) -> None:
    """IB's execDetails may name the order by its order id (this session), its perm id (another session) or
    the client order id (orderRef) alone; each one finds the order, and the fill counts exactly once."""

    async def main() -> None:
        r = rig(records)
        order_id, perm_id = await working_buy(r)
        ex = {
            "order id": execution("e1", order_id),
            "perm id": execution("e1", 0, perm_id=perm_id),
            "client order id": execution("e1", 0, client_order_id="w"),
        }[by]
        r.om.on_broker_event(ex)
        m = r.om.order("w")
        assert m is not None and (m.status, m.filled, m.remaining) == (S.SUBMITTED, 1, 2)
        (f,) = records.fills("w")
        assert (f.exec_id, f.quantity, f.price) == ("e1", 1, Decimal(4900))
        assert r.om.risk.position(MES) == 1
        assert [x.client_order_id for x in r.strategy.fills] == ["w"]

    run(main())


class PermIdLaterBroker(PaperBroker):
    """A venue that names no perm id when it takes an order (IB's placeOrder returns none; it comes later)."""

    async def place(self, order: BrokerOrder) -> BrokerIds:
        return BrokerIds((await super().place(order)).order_id)

    def _emit(self, event: BrokerEvent) -> None:
        super()._emit(replace(event, perm_id=None) if isinstance(event, BrokerStatus) else event)


def test_the_perm_id_an_execution_brings_is_kept_and_finds_the_next_one(records: OrderRecords) -> None:
    async def main() -> None:
        clock = Clock(T0)
        r = rig(records, broker=PermIdLaterBroker(clock))
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        m = await r.om.submit(lmt(Side.BUY, 4900.0, 3, cid="w"))
        assert m.perm_id is None and m.order_id is not None
        r.om.on_broker_event(execution("e1", m.order_id, perm_id=424242))
        assert m.perm_id == 424242
        saved = records.get_order("w")
        assert saved is not None and saved.perm_id == 424242
        r.om.on_broker_event(execution("e2", m.order_id))  # no perm id on this one: the known one stays
        assert m.perm_id == 424242
        r.om.on_broker_event(execution("e3", 0, perm_id=424242))  # another session's order id
        assert (m.filled, [f.exec_id for f in records.fills("w")]) == (3, ["e1", "e2", "e3"])
        assert r.om.risk.position(MES) == 3

    run(main())


def test_an_execution_of_no_order_of_ours_is_said_not_adopted(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        r = rig(records)
        await working_buy(r)
        with caplog.at_level(logging.ERROR, logger=MANAGER):
            r.om.on_broker_event(execution("alien", 77))
        assert messages(caplog, logging.ERROR) == ["execution alien for unknown order id 77: not adopted"]
        assert records.fill("alien") is None and records.fill_conflicts() == []
        assert r.om.risk.position(MES) == 0
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger=MANAGER):
            report = r.om.reconcile([], [execution("alien", 77)], [])
        assert (report.unknown_executions, report.conflicting_executions) == (["alien"], [])
        assert "reconcile: execution alien of order id 77 is not ours" in messages(caplog, logging.ERROR)

    run(main())


# An exec id that names two executions -----------------------------------------------------------------------
@pytest.mark.parametrize("cid", ["", "zz"])
def test_an_exec_id_recorded_for_another_order_is_kept_aside_when_its_order_is_unknown(
    records: OrderRecords, caplog: pytest.LogCaptureFixture, cid: str
) -> None:
    """A restarted process hears an execution of an order it does not know whose exec id the records hold
    for order `w`: an integrity error naming both orders, kept aside with what the broker said, never
    counted; reported as conflicting by every reconcile, kept aside once."""

    async def main() -> None:
        r = rig(records)
        order_id, _ = await working_buy(r)
        r.om.on_broker_event(execution("e1", order_id))
        second = rig(records, clock=Clock(T0 + 60 * SECOND))
        await second.om.connect()
        before = second.om.risk.position(MES)
        foreign = execution(
            "e1", 77, client_order_id=cid, price=Decimal("4901.25"), account="DU7", commission=Decimal("1.5")
        )
        with caplog.at_level(logging.ERROR, logger=MANAGER):
            report = second.om.reconcile([], [foreign], [])
        assert (report.conflicting_executions, report.unknown_executions) == (["e1"], [])
        unknown = "order id 77" + (f" ({cid})" if cid else "")
        (error,) = second.om.integrity_errors
        assert error == (
            f"records integrity: execution e1 (BUY 1 MESZ4 @ 4901.25, order {cid or 77}) conflicts with the "
            f"one recorded under that id (order w recorded, unknown {unknown} now): kept aside in "
            "fill_conflicts, not counted"
        )
        assert error in messages(caplog, logging.ERROR)
        (kept,) = records.fill_conflicts()
        assert (kept.exec_id, kept.client_order_id, kept.symbol, kept.price, kept.quantity) == (
            "e1",
            cid,
            "MESZ4",
            Decimal("4901.25"),
            1,
        )
        assert (kept.ib_order_id, kept.account, kept.commission, kept.source) == (
            77,
            "DU7",
            Decimal("1.5"),
            "reconcile",
        )
        again = second.om.reconcile([], [foreign], [])
        assert again.conflicting_executions == ["e1"] and len(records.fill_conflicts()) == 1
        assert second.om.risk.position(MES) == before
        recorded = records.fill("e1")
        assert recorded is not None and (recorded.client_order_id, recorded.price) == ("w", Decimal(4900))

    run(main())


def test_an_exec_id_counted_in_memory_with_other_content_is_kept_aside_under_its_order(
    records: OrderRecords,
) -> None:
    """Found by its order id alone (no client order id on it), the conflicting execution is kept aside under
    the order it names (client order id and instrument of ours), field by field; reconcile says conflict."""

    async def main() -> None:
        r = rig(records)
        order_id, _ = await working_buy(r)
        r.om.on_broker_event(execution("e1", order_id))
        bad = execution("e1", order_id, quantity=2, account="DU9", commission=Decimal("1.24"), currency="USD")
        report = r.om.reconcile([], [bad], [BrokerPosition("MESZ4", 1)])
        assert (report.conflicting_executions, report.unknown_executions) == (["e1"], [])
        (kept,) = records.fill_conflicts()
        assert (kept.client_order_id, kept.symbol, kept.ib_order_id, kept.account) == (
            "w",
            "MESZ4",
            order_id,
            "DU9",
        )
        assert (kept.quantity, kept.price, kept.commission, kept.currency, kept.realized_pnl) == (
            2,
            Decimal(4900),
            Decimal("1.24"),
            "USD",
            None,
        )
        assert kept.differences == "quantity 1 counted, 2 now" and kept.source == "reconcile"
        m = r.om.order("w")
        assert m is not None and m.filled == 1 and r.om.risk.position(MES) == 1

    run(main())


# Commission reports ---------------------------------------------------------------------------------------
def test_a_commission_report_before_its_execution_is_applied_when_the_execution_arrives(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        r = rig(records)
        order_id, _ = await working_buy(r)
        r.om.on_broker_event(BrokerCommission("e1", FEE, "USD", T0 + SECOND, Decimal("-2.5")))
        assert records.fill("e1") is None
        r.om.on_broker_event(execution("e1", order_id))
        f = records.fill("e1")
        assert f is not None
        assert (f.commission, f.commission_final, f.realized_pnl) == (FEE, True, Decimal("-2.5"))
        assert r.om.risk.day_pnl() == Decimal(100) * 5 - FEE  # bought at 4900, marked at 5000

    run(main())


def test_a_commission_report_counts_on_the_trading_day_of_its_own_time(records: OrderRecords) -> None:
    """A fee reported at next day's market time rolls the risk day first: it is that day's loss, and the
    previous day's loss does not carry into it."""

    async def main() -> None:
        r = rig(records)
        order_id, _ = await working_buy(r)
        r.om.on_broker_event(execution("e1", order_id, price=Decimal(5000)))
        r.om.on_price(MES, 4990.0)
        assert r.om.risk.day_pnl() == -50
        r.om.on_broker_event(BrokerCommission("e1", FEE, "USD", T0 + DAY))
        assert r.om.risk.day_pnl() == -FEE
        assert r.om.risk.orders_today == 0

    run(main())


def test_a_commission_report_sets_the_currency_of_a_fill_recorded_without_one(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        await working_buy(r)
        records.record_fill(
            "w", exec_id="e1", ts=T0, side=Side.BUY, quantity=1, price=Decimal(4900), symbol="MESZ4"
        )
        r.om.on_broker_event(BrokerCommission("e1", FEE, "USD", T0 + SECOND))
        f = records.fill("e1")
        assert f is not None and (f.commission, f.currency) == (FEE, "USD")

    run(main())


def test_a_commission_report_of_an_execution_kept_aside_goes_to_its_conflict_row_and_says_so(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        r = rig(records)
        order_id, _ = await working_buy(r)
        r.om.on_broker_event(execution("e1", order_id))
        r.om.on_broker_event(execution("e1", order_id, price=Decimal(4899)))  # kept aside, no currency
        pnl = r.om.risk.day_pnl()
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger=MANAGER):
            r.om.on_broker_event(BrokerCommission("e1", FEE, "USD", T0 + SECOND, Decimal(3)))
        assert messages(caplog, logging.ERROR) == [
            "commission report of execution e1 (kept aside) attached to its fill_conflicts row, not to the "
            "fill recorded under that id"
        ]
        (kept,) = records.fill_conflicts()
        assert (kept.commission, kept.currency, kept.realized_pnl) == (FEE, "USD", Decimal(3))
        f = records.fill("e1")
        assert f is not None and (f.commission, f.realized_pnl) == (None, None)
        assert r.om.risk.day_pnl() == pnl

    run(main())


# A client order id an earlier process used ---------------------------------------------------------------
async def filled_by_an_earlier_process(records: OrderRecords) -> None:
    first = rig(records)
    await first.om.connect()
    first.om.on_price(MES, 5000.0)
    await first.om.submit(mkt(Side.BUY, 1, cid="dup"))
    quote(first, 5000.0, 5000.0)
    await first.broker.disconnect()


@pytest.mark.parametrize("halted", [False, True])
def test_a_client_order_id_recorded_by_an_earlier_process_is_that_order_never_sent_again(
    records: OrderRecords, caplog: pytest.LogCaptureFixture, halted: bool
) -> None:
    """The order is final, so a restarted manager does not hold it in memory: submitting its id again
    returns the recorded order as the records hold it (Filled, 1 filled) and sends nothing, also when the
    risk checks would refuse it (the refusal must not overwrite the record)."""

    async def main() -> None:
        await filled_by_an_earlier_process(records)
        second = rig(records, clock=Clock(T0 + 60 * SECOND))
        await second.om.connect()
        assert [m.client_order_id for m in second.om.orders()] == []
        if halted:
            second.om.risk.trip("test: halted")
        with caplog.at_level(logging.INFO, logger=MANAGER):
            m = await second.om.submit(mkt(Side.BUY, 1, cid="dup"))
        assert (m.client_order_id, m.status, m.filled, m.remaining) == ("dup", S.FILLED, 1, 0)
        assert [f.quantity for f in records.fills("dup")] == [1]
        assert second.om.order("dup") is m and [x.client_order_id for x in second.om.orders()] == ["dup"]
        assert second.broker.placed == []
        saved = records.get_order("dup")
        assert saved is not None and (saved.status, saved.filled) == (S.FILLED, 1)
        assert "order dup was recorded by an earlier process (Filled): not sent again" in messages(
            caplog, logging.INFO
        )

    run(main())


# The kill switch ------------------------------------------------------------------------------------------
class FailingBroker(PaperBroker):
    """A paper broker whose global cancel fails, and which refuses the orders named in `refuse`."""

    refuse: tuple[str, ...] = ()

    async def cancel_all(self) -> None:
        raise ConnectionError("socket closed")

    async def place(self, order: BrokerOrder) -> BrokerIds:
        if order.request.symbol in self.refuse:
            raise RuntimeError(f"no route for {order.request.symbol}")
        return await super().place(order)


def test_a_kill_without_a_reason_trips_and_flattens_as_a_manual_kill(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(mkt(Side.BUY, 1))
        quote(r, 5000.0, 5000.0)
        with caplog.at_level(logging.ERROR, logger=MANAGER):
            (flat,) = await r.om.kill()
        ks = r.om.risk.kill_switch
        assert ks is not None and (ks.reason, ks.ts) == ("manual kill switch", r.clock.ns)
        assert flat.request.reason == "kill switch flatten: manual kill switch"
        assert (flat.request.side, flat.request.quantity, flat.status) == (Side.SELL, 1, S.FILLED)
        assert messages(caplog, logging.ERROR)[0] == (
            "KILL SWITCH: manual kill switch: cancelling all orders and flattening"
        )

    run(main())


def test_a_kill_whose_cancel_fails_still_flattens_and_one_failed_flatten_does_not_stop_the_next(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        clock = Clock(T0)
        broker = FailingBroker(clock)
        r = rig(records, broker=broker)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        await r.om.submit(mkt(Side.BUY, 2, cid="entry"))
        quote(r, 5000.0, 5000.0)
        working = await r.om.submit(lmt(Side.BUY, 4900.0, 1, cid="bid"))
        broker.refuse = ("MESZ4",)
        with caplog.at_level(logging.ERROR, logger=MANAGER):
            flat = await r.om.kill("test: halt")
        assert flat == [] and r.om.risk.position(MES) == 2  # the flatten failed: still long, and said so
        assert working.status is S.PENDING_CANCEL
        errors = messages(caplog, logging.ERROR)
        assert errors[:3] == [
            "KILL SWITCH: test: halt: cancelling all orders and flattening",
            "kill switch: cancel all failed; flattening anyway",
            "kill switch: flatten of MESZ4 2 failed",
        ]
        broker.refuse = ()
        with pytest.raises(RiskLimitExceeded):
            await r.om.submit(mkt(Side.BUY, 1))

    run(main())


def test_a_broker_position_in_an_instrument_no_longer_known_is_compared_and_said_not_given_to_risk(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        with caplog.at_level(logging.WARNING, logger=MANAGER):
            report = r.om.reconcile([], [], [BrokerPosition("XYZZ9", 1)])
        assert report.position_differences == {"XYZZ9": (0, 1)}
        (said,) = [m for m in messages(caplog, logging.ERROR) if "XYZZ9" in m]
        assert said.startswith(
            "reconcile: position XYZZ9 is +0 by the recorded fills (all runs) but +1 at the broker"
        )
        assert said.endswith("; adopting the broker's")
        assert "reconcile: position XYZZ9 +1 (the broker's) not given to the risk checks: 'XYZZ9'" in (
            messages(caplog, logging.WARNING)
        )
        assert r.om.risk.positions() == {}

    run(main())


# What one execution does: strategy, records, risk ---------------------------------------------------------
def test_an_execution_reaches_the_strategy_the_records_and_the_events_field_by_field(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    """One execution without a fee or currency (live), one with both (adopted by reconcile): the strategy's
    Fill, the recorded fill and the order's event say exactly what the broker reported, and who said it."""

    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        request = OrderRequest(
            "MES", Side.BUY, 3, OrderType.LMT, limit_price=4900.0, client_order_id="w", reason="dip buy"
        )
        m = await r.om.submit(request)
        assert m.order_id is not None
        r.om.on_broker_event(execution("e1", m.order_id, account="DU7"))
        last = r.strategy.updates[-1]
        assert (last.client_order_id, last.filled, last.ts, last.message) == ("w", 1, T0 + SECOND, "")
        second = execution("e2", m.order_id, ts=T0 + 2 * SECOND, price=Decimal("4899.75"), commission=FEE)
        with caplog.at_level(logging.WARNING, logger=MANAGER):
            report = r.om.reconcile(await r.broker.open_orders(), [second], [BrokerPosition("MESZ4", 2)])
        assert report.adopted_fills == ["e2"]
        assert "reconcile: adopted execution e2 missed while disconnected" in messages(
            caplog, logging.WARNING
        )
        assert r.strategy.fills == [
            Fill("w", "MES", Side.BUY, 1, 4900.0, T0 + SECOND, Decimal(0), "e1", "dip buy"),
            Fill("w", "MES", Side.BUY, 1, 4899.75, T0 + 2 * SECOND, FEE, "e2", "dip buy"),
        ]
        f1, f2 = records.fills("w")
        assert (f1.ib_order_id, f1.currency, f1.account, f1.commission) == (m.order_id, "USD", "DU7", None)
        assert (f2.ib_order_id, f2.price, f2.commission, f2.commission_final) == (
            m.order_id,
            Decimal("4899.75"),
            FEE,
            True,
        )
        fill_events = [e for e in records.events("w") if e.message.startswith("execution")]
        assert [(e.message, e.source, e.ts, e.filled) for e in fill_events] == [
            ("execution e1: BUY 1 @ 4900", "broker", T0 + SECOND, 1),
            ("execution e2: BUY 1 @ 4899.75", "reconcile", T0 + 2 * SECOND, 2),
        ]
        assert r.om.risk.position(MES) == 2 and r.om.risk.day_pnl() == Decimal(500) + Decimal("501.25") - FEE

    run(main())


def test_an_execution_recorded_by_another_process_updates_this_ones_order_state(
    records: OrderRecords,
) -> None:
    """The fill is in the records already (same content: nothing written), but the order this process holds
    had not counted it: its new state (filled 1 of 3) is still recorded, with the execution as the event."""

    async def main() -> None:
        r = rig(records)
        order_id, _ = await working_buy(r)
        recorded = records.record_fill(
            "w",
            exec_id="e1",
            ts=T0 + SECOND,
            side=Side.BUY,
            quantity=1,
            price=Decimal(4900),
            symbol="MESZ4",
            currency="USD",
            ib_order_id=order_id,
        )
        assert recorded
        r.om.on_broker_event(execution("e1", order_id))
        saved = records.get_order("w")
        assert saved is not None and (saved.filled, saved.remaining, saved.status) == (1, 2, S.SUBMITTED)
        event = records.events("w")[-1]
        assert (event.message, event.source, event.ts, event.filled) == (
            "execution e1: BUY 1 @ 4900",
            "broker",
            T0 + SECOND,
            1,
        )
        assert len(records.fills("w")) == 1 and r.om.risk.position(MES) == 1

    run(main())


@pytest.mark.parametrize("what", ["the fill", "its commission"])
def test_an_execution_that_trips_the_kill_switch_flattens_at_the_executions_time(
    records: OrderRecords, what: str
) -> None:
    """An execution reported with its fee: the loss of the fill (bought 10 points over the last price) or only
    its fee (bought at the last price, 0.50 allowed) trips the switch, stamped with the execution's time, and
    the position is flattened."""

    async def main() -> None:
        limit = Decimal(40) if what == "the fill" else Decimal("0.50")
        r = rig(records, daily_loss_limit=limit)
        order_id, _ = await working_buy(r, quantity=1)
        price = Decimal(5010) if what == "the fill" else Decimal(5000)
        r.om.on_broker_event(execution("e1", order_id, price=price, ts=T0 + 5 * SECOND, commission=FEE))
        ks = r.om.risk.kill_switch
        assert ks is not None and ks.ts == T0 + 5 * SECOND and ks.reason.startswith("daily_loss")
        await r.om.drain()
        flat = [m for m in r.om.orders() if m.strategy == "kill_switch"]
        assert [(m.request.side, m.request.quantity) for m in flat] == [(Side.SELL, 1)]

    run(main())


def test_a_fill_on_the_next_trading_day_counts_on_that_day(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records)
        order_id, _ = await working_buy(r)
        r.om.on_broker_event(execution("e1", order_id))
        assert r.om.risk.trades_today == 1
        r.om.on_broker_event(execution("e2", order_id, ts=T0 + DAY))
        assert (r.om.risk.trades_today, r.om.risk.orders_today) == (1, 0)

    run(main())


def test_an_exec_id_recorded_for_another_of_our_orders_is_kept_aside_under_the_order_it_names(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        r = rig(records)
        first, _ = await working_buy(r, cid="w1")
        second = await r.om.submit(lmt(Side.BUY, 4900.0, 1, cid="w2"))
        assert second.order_id is not None
        r.om.on_broker_event(execution("e1", first))
        foreign = execution("e1", second.order_id)
        report = r.om.reconcile(await r.broker.open_orders(), [foreign], [BrokerPosition("MESZ4", 1)])
        assert (report.conflicting_executions, report.unknown_executions) == (["e1"], [])
        (error,) = r.om.integrity_errors
        assert "(BUY 1 MESZ4 @ 4900, order w2) conflicts" in error and "order w1 recorded, w2 now" in error
        (kept,) = records.fill_conflicts()
        assert (kept.client_order_id, kept.source) == ("w2", "reconcile")
        assert second.filled == 0 and r.om.risk.position(MES) == 1

    run(main())


@pytest.mark.parametrize("what", ["side", "time"])
def test_a_redelivery_with_another_side_or_time_is_an_integrity_error_saying_so(
    records: OrderRecords, what: str
) -> None:
    async def main() -> None:
        r = rig(records)
        order_id, _ = await working_buy(r)
        r.om.on_broker_event(execution("e1", order_id))
        if what == "side":
            bad = replace(execution("e1", order_id), side=Side.SELL)
            said = "side BUY counted, SELL now"
        else:
            bad = execution("e1", order_id, ts=T0 + 3 * SECOND)
            said = f"time {execution_time(T0 + SECOND)} counted, {execution_time(T0 + 3 * SECOND)} now"
        r.om.on_broker_event(bad)
        (error,) = r.om.integrity_errors
        assert f"({said})" in error
        (kept,) = records.fill_conflicts()
        assert kept.differences == said
        assert r.om.risk.position(MES) == 1

    run(main())


class ExecutionsOnlyBroker(PaperBroker):
    """A venue whose execution reports come before (here: instead of) its order status reports, as IB's
    execDetails may precede orderStatus."""

    def _emit(self, event: BrokerEvent) -> None:
        if not isinstance(event, BrokerStatus):
            super()._emit(event)


@pytest.mark.parametrize("venue", ["status first", "execution first"])
def test_an_order_filled_inside_the_send_is_announced_before_its_fill(
    records: OrderRecords, venue: str
) -> None:
    """A market order against a standing quote fills while the broker takes it: the strategy still hears
    PendingSubmit first, then the fill, whichever report the venue sends first."""

    async def main() -> None:
        broker = PaperBroker(Clock(T0)) if venue == "status first" else ExecutionsOnlyBroker(Clock(T0))
        r = rig(records, broker=broker)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        quote(r, 4999.75, 5000.0)
        m = await r.om.submit(mkt(Side.BUY, 1, cid="now"))
        assert m.filled == 1 and r.om.risk.position(MES) == 1
        statuses = r.strategy.statuses("now")
        assert statuses[0] is S.PENDING_SUBMIT and statuses[-1] is S.FILLED and m.status is S.FILLED
        assert [f.client_order_id for f in r.strategy.fills] == ["now"]

    run(main())


# Submit: a refusal, a repeat, the working orders that count -----------------------------------------------
def test_an_order_refused_by_risk_is_recorded_held_and_reported_field_by_field(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        r = rig(records, max_order_size=2)
        r.om.account = "DU5"
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        with caplog.at_level(logging.WARNING, logger=MANAGER), pytest.raises(RiskLimitExceeded) as info:
            await r.om.submit(mkt(Side.BUY, 5), strategy="s1")
        why = str(info.value)
        (m,) = r.om.orders()
        cid = m.client_order_id
        assert re.fullmatch(r"ibot-rej-[0-9a-f]{12}", cid)
        assert (m.request.client_order_id, m.request.quantity, m.instrument, m.strategy) == (
            cid,
            5,
            MES,
            "s1",
        )
        assert (m.status, m.state.ts, m.state.message, m.order_id, m.perm_id) == (
            S.REJECTED,
            T0,
            why,
            None,
            None,
        )
        saved = records.get_order(cid)
        assert saved is not None
        assert (saved.status, saved.local_symbol, saved.client_id, saved.account, saved.strategy) == (
            S.REJECTED,
            "MESZ4",
            1000,
            "DU5",
            "s1",
        )
        assert saved.last_message == why and saved.ib_order_id is None
        assert [(e.status, e.source, e.message) for e in records.events(cid)] == [(S.REJECTED, "risk", why)]
        last = r.strategy.updates[-1]
        assert (last.client_order_id, last.status, last.ts, last.message) == (cid, S.REJECTED, T0, why)
        assert f"order {cid} rejected by risk: {why}" in messages(caplog, logging.WARNING)
        assert r.broker.placed == []

    run(main())


def test_an_order_sent_is_recorded_with_its_strategy_and_the_send_and_a_repeat_is_the_same_order(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        r = rig(records)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        m = await r.om.submit(lmt(Side.BUY, 4900.0, cid="a"))
        saved = records.get_order("a")
        assert saved is not None and saved.strategy == ""
        events = records.events("a")
        assert (events[1].status, events[1].message) == (S.PENDING_SUBMIT, "sent to broker")
        assert [(u.status, u.message) for u in r.strategy.updates[:1]] == [
            (S.PENDING_SUBMIT, "sent to broker")
        ]
        with caplog.at_level(logging.INFO, logger=MANAGER):
            again = await r.om.submit(lmt(Side.BUY, 4900.0, cid="a"))
        assert again is m and len(r.broker.placed) == 1
        assert "order a already exists (Submitted): not sent again" in messages(caplog, logging.INFO)

    run(main())


def test_working_orders_of_another_instrument_do_not_count_against_this_ones_position_limit(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        r = rig(records, max_position=3)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        r.om.on_price(MNQ, 20000.0)
        other = await r.om.submit(OrderRequest("MNQ", Side.BUY, 3, OrderType.LMT, limit_price=19900.0))
        assert other.status is S.SUBMITTED
        m = await r.om.submit(lmt(Side.BUY, 4900.0, 3))
        assert m.status is S.SUBMITTED
        with pytest.raises(RiskLimitExceeded, match="max_position"):
            await r.om.submit(lmt(Side.BUY, 4900.0, 1))

    run(main())


def test_an_order_sent_under_a_made_up_id_carries_it_everywhere_and_moves_the_next_id(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        r = rig(records)
        r.om.account = "DU5"
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        m = await r.om.submit(lmt(Side.BUY, 4900.0))
        assert m.order_id is not None
        assert (m.client_order_id, m.request.client_order_id) == (f"ibot-1000-{m.order_id}",) * 2
        assert r.broker.placed[-1].client_order_id == m.client_order_id
        assert r.om.broker_next_id == m.order_id + 1
        saved = records.get_order(m.client_order_id)
        assert saved is not None and (saved.client_id, saved.account, saved.ib_order_id) == (
            1000,
            "DU5",
            m.order_id,
        )

    run(main())


class SlowBroker(PaperBroker):
    """A venue that takes a while to accept an order (the send is in flight meanwhile)."""

    refusal: Exception | None = None

    async def place(self, order: BrokerOrder) -> BrokerIds:
        await asyncio.sleep(0.01)
        if self.refusal is not None:
            raise self.refusal
        return await super().place(order)


def test_reconciling_while_a_send_is_in_flight_does_not_close_that_order(records: OrderRecords) -> None:
    async def main() -> None:
        r = rig(records, broker=SlowBroker(Clock(T0)))
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        sending = asyncio.ensure_future(r.om.submit(lmt(Side.BUY, 4900.0, cid="a")))
        await asyncio.sleep(0)  # recorded, now waiting for the venue
        report = r.om.reconcile([], [], [])
        assert report.closed_orders == []
        m = await sending
        assert m.status is S.SUBMITTED and r.om.working_orders() == [m]
        assert r.om.reconcile([], [], []).closed_orders == ["a"]  # sent: no longer in flight

    run(main())


@pytest.mark.parametrize("refusal", ["adapter", "send"])
def test_an_order_the_adapter_refuses_is_inactive_and_one_whose_send_fails_says_its_state_is_unknown(
    records: OrderRecords, refusal: str
) -> None:
    async def main() -> None:
        broker = SlowBroker(Clock(T0))
        if refusal == "adapter":
            broker.refusal = InvalidOrderError("MES: no such exchange")
        else:
            broker.refusal = ConnectionError("socket closed")
        r = rig(records, broker=broker)
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        with pytest.raises(type(broker.refusal)):
            await r.om.submit(lmt(Side.BUY, 4900.0, cid="a"))
        m = r.om.order("a")
        assert m is not None
        saved = records.get_order("a")
        assert saved is not None
        last = records.events("a")[-1]
        if refusal == "adapter":
            said = "refused by the broker adapter: MES: no such exchange"
            assert (m.status, saved.status) == (S.INACTIVE, S.INACTIVE)
            assert (last.status, last.message, last.source, last.ts) == (S.INACTIVE, said, "oms", T0)
            assert r.strategy.statuses("a") == [S.PENDING_SUBMIT, S.INACTIVE]
            assert r.strategy.updates[-1].message == said
        else:
            said = "send failed (ConnectionError: socket closed); state unknown"
            assert (m.status, saved.status) == (S.PENDING_SUBMIT, S.PENDING_SUBMIT)
            assert (last.message, last.source, last.ts) == (said, "oms", T0)
            assert (m.state.message, saved.last_message) == (said, said)
            assert r.strategy.statuses("a") == [S.PENDING_SUBMIT]
        assert r.om.working_orders() == ([] if refusal == "adapter" else [m])

    run(main())


class NoPermInStatusBroker(PaperBroker):
    """A venue that names the perm id when it takes an order but not in its status reports."""

    def _emit(self, event: BrokerEvent) -> None:
        super()._emit(replace(event, perm_id=None) if isinstance(event, BrokerStatus) else event)


def test_the_perm_id_the_venue_gives_on_placing_is_kept_recorded_and_finds_executions(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        r = rig(records, broker=NoPermInStatusBroker(Clock(T0)))
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        m = await r.om.submit(lmt(Side.BUY, 4900.0, 2, cid="a"))
        assert m.order_id is not None and m.perm_id
        placed = f"placed: order id {m.order_id}, perm id {m.perm_id}"
        saved = records.get_order("a")
        assert saved is not None and (saved.perm_id, saved.last_message) == (m.perm_id, placed)
        event = records.events("a")[-1]
        assert (event.message, event.source, event.ts) == (placed, "broker", T0)
        assert m.state.message == placed
        r.om.on_broker_event(execution("e1", 0, perm_id=m.perm_id))  # another session's order id
        assert m.filled == 1 and r.om.risk.position(MES) == 1

    run(main())


# Reconcile: the broker's open orders, ours it lacks, fees it reports, what it remembers ---------------------
def open_order(order_id: int, status: OrderStatus, **kw: object) -> BrokerOpenOrder:
    base: dict[str, object] = {"client_order_id": "", "perm_id": None, "symbol": "MESZ4", "side": Side.BUY}
    base.update(kw)
    return BrokerOpenOrder(order_id, quantity=3, status=status, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize("by", ["order id", "perm id", "client order id"])
def test_the_brokers_status_of_an_open_order_found_by_any_one_id_is_adopted_and_recorded(
    records: OrderRecords, caplog: pytest.LogCaptureFixture, by: str
) -> None:
    """An order the broker does not know comes first (reported, and the next one still looked at); ours,
    named by one id only, takes the broker's status: recorded, reported, not closed."""

    async def main() -> None:
        r = rig(records)
        order_id, perm_id = await working_buy(r, cid="a")
        ours = {
            "order id": open_order(order_id, S.PENDING_CANCEL),
            "perm id": open_order(0, S.PENDING_CANCEL, perm_id=perm_id),
            "client order id": open_order(0, S.PENDING_CANCEL, client_order_id="a"),
        }[by]
        r.clock.ns = T0 + 7 * SECOND
        with caplog.at_level(logging.WARNING, logger=MANAGER):
            report = r.om.reconcile([open_order(999, S.SUBMITTED, symbol="MNQZ4"), ours], [], [])
        assert report.unknown_open_orders == [999]
        assert "reconcile: broker has order id 999 (MNQZ4) that we never placed" in messages(
            caplog, logging.ERROR
        )
        assert (report.status_changes, report.closed_orders) == ([("a", S.PENDING_CANCEL)], [])
        m = r.om.order("a")
        assert m is not None and m.status is S.PENDING_CANCEL
        event = records.events("a")[-1]
        assert (event.status, event.message, event.source, event.ts) == (
            S.PENDING_CANCEL,
            "reconcile: status at the broker",
            "reconcile",
            T0 + 7 * SECOND,
        )

    run(main())


def test_a_perm_id_first_heard_from_the_brokers_open_orders_is_kept_and_recorded(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        clock = Clock(T0)
        r = rig(records, broker=PermIdLaterBroker(clock))
        await r.om.connect()
        r.om.on_price(MES, 5000.0)
        m = await r.om.submit(lmt(Side.BUY, 4900.0, 3, cid="a"))
        assert m.perm_id is None and m.order_id is not None
        clock.ns = T0 + 3 * SECOND
        report = r.om.reconcile([open_order(m.order_id, S.SUBMITTED, perm_id=4242)], [], [])
        assert report.status_changes == [] and m.perm_id == 4242
        event = records.events("a")[-1]
        assert (event.message, event.source, event.ts) == (
            "reconcile: perm id 4242",
            "reconcile",
            T0 + 3 * SECOND,
        )
        saved = records.get_order("a")
        assert saved is not None and saved.perm_id == 4242
        r.om.on_broker_event(execution("e1", 0, perm_id=4242))
        assert m.filled == 1
        again = r.om.reconcile([open_order(m.order_id, S.SUBMITTED, perm_id=4242)], [], [])
        assert again.status_changes == [] and records.events("a")[-1].message != "reconcile: perm id 4242"

    run(main())


def test_our_orders_the_broker_no_longer_has_are_closed_by_what_they_became(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    """Still at the broker: kept. Gone after being acknowledged: Cancelled. Gone with every execution seen:
    Filled. Recorded and never acknowledged (a crash right after the write-ahead): Inactive."""

    async def main() -> None:
        r = rig(records)
        kept, _ = await working_buy(r, cid="kept")
        await r.om.submit(lmt(Side.BUY, 4900.0, 1, cid="gone"))
        full = await r.om.submit(lmt(Side.BUY, 4900.0, 1, cid="full"))
        assert full.order_id is not None
        records.record_fill(  # recorded, its order's row still Submitted (a record whose status lags)
            "full", exec_id="e1", ts=T0, side=Side.BUY, quantity=1, price=Decimal(4900), symbol="MESZ4"
        )
        r.om.on_broker_event(execution("e2", kept))
        records.record_submission(
            lmt(Side.BUY, 4900.0, 1, cid="never"),
            ts=T0,
            instrument=MES,
            broker_next_id=50,
            client_order_id="never",
            client_id=1000,
        )
        later = rig(records, broker=r.broker, clock=r.clock)  # a restart: loads the open orders
        r.clock.ns = T0 + 9 * SECOND
        with caplog.at_level(logging.WARNING, logger=MANAGER):
            at_broker = [o for o in await r.broker.open_orders() if o.client_order_id == "kept"]
            report = later.om.reconcile(at_broker, [], [BrokerPosition("MESZ4", 2)])
        closed = {cid: later.om.order(cid) for cid in ("gone", "full", "never")}
        assert {cid: m.status for cid, m in closed.items() if m is not None} == {
            "gone": S.CANCELLED,
            "full": S.FILLED,
            "never": S.INACTIVE,
        }
        assert sorted(report.closed_orders) == ["full", "gone", "never"]
        k = later.om.order("kept")
        assert k is not None and k.status is S.SUBMITTED
        event = records.events("gone")[-1]
        assert (event.status, event.message, event.source, event.ts) == (
            S.CANCELLED,
            "reconcile: the broker no longer has this order",
            "reconcile",
            T0 + 9 * SECOND,
        )
        assert "reconcile: closed gone as Cancelled (not at the broker)" in messages(caplog, logging.WARNING)

    run(main())


def test_a_fee_the_broker_reports_with_an_execution_already_counted_is_applied_at_its_time(
    records: OrderRecords,
) -> None:
    async def main() -> None:
        r = rig(records, daily_loss_limit=Decimal("0.50"))
        order_id, _ = await working_buy(r, quantity=1)
        ex = execution("e1", order_id, price=Decimal(5000), ts=T0 + 4 * SECOND)
        r.om.on_broker_event(ex)  # counted, its fee not reported yet
        assert r.om.risk.kill_switch is None
        report = r.om.reconcile(
            [], [replace(ex, commission=FEE, currency="USD")], [BrokerPosition("MESZ4", 1)]
        )
        assert report.adopted_fills == [] and report.conflicting_executions == []
        f = records.fill("e1")
        assert f is not None and (f.commission, f.commission_final) == (FEE, True)
        assert r.om.risk.day_pnl() == -FEE
        ks = r.om.risk.kill_switch
        assert ks is not None and ks.ts == T0 + 4 * SECOND

    run(main())


@pytest.mark.parametrize("reported", ["an open order", "an execution"])
def test_a_broker_that_reports_an_open_order_or_an_execution_is_not_said_to_have_no_memory(
    records: OrderRecords, reported: str
) -> None:
    async def main() -> None:
        r = rig(records)
        order_id, _ = await working_buy(r, quantity=1)
        if reported == "an open order":
            report = r.om.reconcile([open_order(order_id, S.SUBMITTED)], [], [])
        else:
            report = r.om.reconcile([], [execution("e1", order_id)], [])
        assert not report.fresh_broker

    run(main())


@pytest.mark.parametrize("first", ["flat", "agreeing"])
def test_an_instrument_sorted_first_that_is_flat_or_agrees_does_not_hide_a_difference_in_the_next(
    records: OrderRecords, first: str
) -> None:
    async def main() -> None:
        r = rig(records)
        order_id, _ = await working_buy(r, quantity=2)
        r.om.on_broker_event(execution("e1", order_id))
        if first == "flat":
            r.om.on_broker_event(replace(execution("e2", order_id), side=Side.SELL))  # MESZ4 nets to 0
        held = 0 if first == "flat" else 1
        positions = [BrokerPosition("MNQZ4", 1)] + ([BrokerPosition("MESZ4", 1)] if held else [])
        report = r.om.reconcile([open_order(order_id, S.SUBMITTED)], [], positions)
        assert report.position_differences == {"MNQZ4": (0, 1)}
        assert report.recorded_positions == ({"MNQZ4": 0} if first == "flat" else {"MESZ4": 1, "MNQZ4": 0})
        assert (r.om.risk.position("MNQZ4"), r.om.risk.position(MES)) == (1, held)

    run(main())

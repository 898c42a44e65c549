"""The order manager's execution, commission, duplicate-id and kill-switch paths, pinned where a surviving
mutant showed that no test would notice a wrong fill, fee, position or order (issue 13, finding 11).

Real paper broker (matching engine), real records (SQLite file and PostgreSQL). Executions that IB may send in
forms the paper broker never produces (one id only, an exec id of another order) are built by hand and go in
through the manager's public doors: `on_broker_event` and `reconcile`.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from oms_helpers import MES, SECOND, T0, run
from test_manager import FEE, Rig, lmt, mkt, quote, rig

from ibot.model.clock import Clock
from ibot.model.orders import OrderStatus, Side
from ibot.oms.broker import BrokerCommission, BrokerExecution, BrokerIds, BrokerOrder, BrokerPosition
from ibot.oms.paper import PaperBroker
from ibot.oms.records import OrderRecords
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
        report = r.om.reconcile([], [execution("alien", 77)], [])
        assert (report.unknown_executions, report.conflicting_executions) == (["alien"], [])

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
        assert "reconcile: position XYZZ9 +1 (the broker's) not given to the risk checks: 'XYZZ9'" in (
            messages(caplog, logging.WARNING)
        )
        assert r.om.risk.positions() == {}

    run(main())

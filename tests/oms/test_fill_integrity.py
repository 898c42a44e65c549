"""No fill is ever dropped silently (issue 13, finding 1), on a SQLite file and on PostgreSQL.

An exec id names one execution: the same content again is a redelivery (nothing happens), other content is an
integrity error (kept aside in `fill_conflicts`, logged, listed for the session, never counted or merged), and
a commission report changes only its own execution's fill. The order manager runs against the paper broker,
whose fresh instances start their execution ids again at 1: the collision two `--sim` runs met."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from oms_helpers import MES, SECOND, T0, instruments, run

from ibot.exchange.fees import FeeModel
from ibot.model.clock import Clock
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.broker import BrokerCommission, BrokerExecution
from ibot.oms.manager import OrderManager
from ibot.oms.paper import PaperBroker
from ibot.oms.records import FillConflictError, OrderChange, OrderRecords
from ibot.oms.risk import RiskLimits, RiskManager

S = OrderStatus


def order(records: OrderRecords, cid: str, qty: int = 2) -> None:
    request = OrderRequest("MES", Side.BUY, qty, OrderType.LMT, limit_price=5000.25, client_order_id=cid)
    records.record_new(request, ts=T0, instrument=MES)


def fill(records: OrderRecords, exec_id: str, cid: str = "c1", **kw: object) -> bool:
    values: dict[str, object] = {"ts": T0, "side": Side.BUY, "quantity": 1, "price": Decimal("5000.25")}
    values.update(kw)
    return records.record_fill(cid, exec_id=exec_id, symbol="MESZ4", currency="USD", **values)  # type: ignore[arg-type]


# The records ----------------------------------------------------------------------------------------------
def test_a_redelivered_execution_is_a_no_op(records: OrderRecords) -> None:
    order(records, "c1")
    assert fill(records, "e1") is True
    change = OrderChange(S.FILLED, 2, 0, None, T0 + SECOND, "would be wrong", "broker")
    assert fill(records, "e1", change=change) is False  # the same execution: nothing written
    assert [f.exec_id for f in records.fills("c1")] == ["e1"]
    assert [e.status for e in records.events("c1")] == [S.CREATED]
    assert records.fill_conflicts() == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"cid": "c2"}, "order c1 recorded, c2 now"),
        ({"side": Side.SELL}, "side BUY recorded, SELL now"),
        ({"quantity": 2}, "quantity 1 recorded, 2 now"),
        ({"price": Decimal("5001")}, "price 5000.25 recorded, 5001 now"),
        (
            {"ts": T0 + SECOND},
            "time 2024-11-05 15:00:00.000000 UTC recorded, 2024-11-05 15:00:01.000000 UTC now",
        ),
    ],
)
def test_an_exec_id_with_other_content_is_kept_aside_never_merged(
    records: OrderRecords, change: dict[str, Any], named: str
) -> None:
    order(records, "c1")
    order(records, "c2")
    assert fill(records, "e1", commission=Decimal("0.62"), realized_pnl=Decimal("3.5"))
    state = OrderChange(S.FILLED, 2, 0, Decimal(5001), T0 + SECOND, "not written", "broker")
    with pytest.raises(FillConflictError, match=named) as raised:
        fill(records, "e1", change=state, **change)
    assert raised.value.exec_id == "e1" and named in raised.value.differences
    (kept,) = records.fill_conflicts()
    assert (kept.exec_id, kept.differences, kept.source) == ("e1", named, "broker")
    assert kept.client_order_id == str(change.get("cid", "c1"))
    recorded = records.fill("e1")  # the first one, untouched
    assert recorded is not None
    assert (recorded.client_order_id, recorded.side, recorded.quantity, recorded.price, recorded.ts) == (
        "c1",
        Side.BUY,
        1,
        Decimal("5000.25"),
        T0,
    )
    assert (recorded.commission, recorded.realized_pnl) == (Decimal("0.62"), Decimal("3.5"))
    for cid in ("c1", "c2"):  # the order's change was not written with it
        assert [e.status for e in records.events(cid)] == [S.CREATED]
    # its commission report goes to the row kept aside, not to the recorded fill
    assert records.conflict_commission("e1", Decimal("1.24"), realized_pnl=Decimal("-9"), currency="USD")
    (kept,) = records.fill_conflicts("e1")
    assert (kept.commission, kept.realized_pnl) == (Decimal("1.24"), Decimal(-9))
    recorded = records.fill("e1")
    assert recorded is not None and (recorded.commission, recorded.realized_pnl) == (
        Decimal("0.62"),
        Decimal("3.5"),
    )
    assert records.conflict_commission("nope", Decimal(1)) is False


def test_positions_add_up_every_recorded_fill(records: OrderRecords) -> None:
    assert records.positions() == {}
    order(records, "c1", qty=3)
    order(records, "c2", qty=3)
    fill(records, "e1", quantity=3)
    fill(records, "e2", cid="c2", side=Side.SELL, quantity=1)
    fill(records, "e3", cid="c2", side=Side.SELL, quantity=2, ts=T0 + SECOND)
    assert records.positions() == {"MESZ4": 0}  # flat, still listed: it was traded
    fill(records, "e4", cid="c2", side=Side.SELL, quantity=1, ts=T0 + 2 * SECOND)
    assert records.positions() == {"MESZ4": -1}
    assert records.sent_orders() == 0  # none carries a broker order id


def test_migration_0002_keeps_the_records_of_0001(db_url: str) -> None:
    rec = OrderRecords(db_url)
    try:
        rec.migrate("0001")
        order(rec, "c1")
        fill(rec, "e1")
        rec.migrate("0002")
        assert rec.schema_revision() == "0002"
        assert [f.exec_id for f in rec.executions()] == ["e1"]
        assert rec.fill_conflicts() == []
        with pytest.raises(FillConflictError):
            fill(rec, "e1", quantity=2)
        assert len(rec.fill_conflicts()) == 1
        rec.migrate()  # and on to the head: the fills and the conflict stay
        assert [f.exec_id for f in rec.executions()] == ["e1"] and len(rec.fill_conflicts()) == 1
    finally:
        rec.close()


# The order manager ----------------------------------------------------------------------------------------
def manager(records: OrderRecords, clock: Clock) -> OrderManager:
    broker = PaperBroker(clock, fees=FeeModel(), next_order_id=1)
    limits = RiskLimits(max_position=10, max_order_size=10, price_band_pct=Decimal(5))
    return OrderManager(
        broker, records, RiskManager(limits, clock), clock, instruments=instruments, client_id=1000
    )


async def buy_and_fill(om: OrderManager, cid: str, price: float) -> BrokerExecution:
    """A market buy filled by the paper broker; the execution it reported."""
    om.on_price(MES, price)
    await om.submit(OrderRequest("MES", Side.BUY, 1, client_order_id=cid))
    broker = om.broker
    assert isinstance(broker, PaperBroker)
    broker.on_quote(MES, om.clock.ns + SECOND, price - 0.25, price)
    (execution,) = [e for e in await broker.executions() if e.client_order_id == cid]
    return execution


def test_the_same_execution_again_changes_nothing(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        om = manager(records, Clock(T0))
        fills: list[object] = []
        om.add_listener(on_fill=fills.append)
        await om.connect()
        ex = await buy_and_fill(om, "a", 5000.0)
        assert len(fills) == 1
        with caplog.at_level(logging.WARNING):
            om.on_broker_event(ex)  # IB re-sends executions after a reconnect
            report = await om.resync()
        assert len(fills) == 1 and om.risk.position(MES) == 1
        assert report.clean and om.integrity_errors == []
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert len(records.fills("a")) == 1 and records.fill_conflicts() == []

    run(main())


def test_a_second_run_whose_exec_ids_repeat_keeps_them_aside_with_an_error(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes, each with a fresh paper broker whose exec ids start again at 1 (as every in-process
    simulator's did): the second one's execution is kept aside, said as an error, never merged, and its
    commission report does not touch the first run's fill."""

    async def main() -> None:
        clock = Clock(T0)
        first = manager(records, clock)
        await first.connect()
        ex1 = await buy_and_fill(first, "run1", 5000.0)
        first.on_broker_event(BrokerCommission(ex1.exec_id, Decimal("0.62"), "USD", clock.ns, Decimal("7.5")))
        await first.broker.disconnect()
        second = manager(records, clock)
        await second.connect()
        fills: list[object] = []
        second.add_listener(on_fill=fills.append)
        with caplog.at_level(logging.ERROR):
            ex2 = await buy_and_fill(second, "run2", 5010.0)
            second.on_broker_event(
                BrokerCommission(ex2.exec_id, Decimal("0.62"), "USD", clock.ns, Decimal("-3"))
            )
        assert ex2.exec_id == ex1.exec_id  # the collision
        assert fills == [] and second.risk.position(MES) == 0  # never counted
        (error,) = second.integrity_errors
        assert f"execution {ex2.exec_id}" in error and "order run1 recorded, run2 now" in error
        assert any(
            "records integrity" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
        )
        (kept,) = records.fill_conflicts()
        assert (kept.client_order_id, kept.price, kept.commission, kept.realized_pnl) == (
            "run2",
            Decimal(5010),
            Decimal("0.62"),
            Decimal(-3),
        )
        recorded = records.fill(ex1.exec_id)
        assert recorded is not None
        assert (recorded.client_order_id, recorded.realized_pnl) == ("run1", Decimal("7.5"))  # untouched
        assert records.fills("run2") == []
        state = second.order("run2")
        assert state is not None and state.filled == 0  # the order as the records hold it
        # a reconnect re-sends it: reported once, not kept aside again
        again = await second.resync()
        assert again.conflicting_executions == [ex2.exec_id] and not again.clean
        assert len(records.fill_conflicts()) == 1 and len(second.integrity_errors) == 1

    run(main())


def test_an_exec_id_counted_in_memory_with_other_content_is_an_integrity_error(records: OrderRecords) -> None:
    async def main() -> None:
        om = manager(records, Clock(T0))
        await om.connect()
        ex = await buy_and_fill(om, "a", 5000.0)
        bad = BrokerExecution(
            ex.exec_id, ex.order_id, ex.symbol, ex.side, ex.quantity, Decimal(4000), ex.ts, "a"
        )
        om.on_broker_event(bad)
        (error,) = om.integrity_errors
        assert "price 5000.0 counted, 4000 now" in error
        assert om.risk.position(MES) == 1 and len(records.fills("a")) == 1
        (kept,) = records.fill_conflicts()
        assert (kept.exec_id, kept.price) == (ex.exec_id, Decimal(4000))

    run(main())

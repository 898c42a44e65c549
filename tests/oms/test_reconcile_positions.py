"""A restart's reconciliation trusts its own records (issue 13, finding 3), on a SQLite file and PostgreSQL.

The position ALL recorded fills add up to is what is compared with the broker's: agreement is no error; a
difference names the executions that explain it or says that none does; a broker that remembers none of the
recorded orders (a fresh simulator) is said to be one; adopting a position adds nothing to the day's P&L."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from oms_helpers import MES, SECOND, T0, instruments, run

from ibot.exchange.fees import FeeModel
from ibot.model.clock import Clock
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.broker import BrokerOrder
from ibot.oms.manager import OrderManager
from ibot.oms.paper import PaperBroker
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits, RiskManager

MULTIPLIER = MES.multiplier


def manager(records: OrderRecords, broker: PaperBroker) -> OrderManager:
    limits = RiskLimits(max_position=10, max_order_size=10, price_band_pct=Decimal(5))
    return OrderManager(
        broker,
        records,
        RiskManager(limits, broker.clock),
        broker.clock,
        instruments=instruments,
        client_id=1000,
    )


async def bought(records: OrderRecords, broker: PaperBroker, quantity: int = 1) -> OrderManager:
    """A first process: connect, buy `quantity` at market (filled at 5000), leave the position open."""
    om = manager(records, broker)
    await om.connect()
    om.on_price(MES, 5000.0)
    await om.submit(OrderRequest("MES", Side.BUY, quantity, client_order_id="first"))
    broker.on_quote(MES, broker.clock.ns + SECOND, 4999.75, 5000.0)
    assert records.positions() == {MES.key: quantity}
    return om


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_restart_whose_records_agree_with_the_broker_is_clean_and_says_no_error(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        broker = PaperBroker(Clock(T0), fees=FeeModel())
        await bought(records, broker, 2)
        restarted = manager(records, broker)  # a new process: its risk checks start knowing nothing
        assert restarted.risk.position(MES) == 0
        with caplog.at_level(logging.INFO):
            report = await restarted.connect()
        assert errors(caplog) == []
        assert report.clean and report.describe() == "clean"
        assert report.recorded_positions == {MES.key: 2} and report.position_differences == {}
        assert report.fresh_broker == ""
        assert restarted.risk.position(MES) == 2  # from the records
        assert any("MESZ4 +2 agrees with the broker" in r.getMessage() for r in caplog.records)
        restarted.on_price(MES, 5000.0)
        assert restarted.risk.day_pnl() == 0  # the recorded position adds no P&L at the restart
        restarted.on_price(MES, 5001.0)
        assert restarted.risk.day_pnl() == 2 * MULTIPLIER  # the move since, and only that

    run(main())


def test_a_fresh_broker_is_said_to_have_no_memory_and_the_difference_to_be_unexplained(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        await bought(records, PaperBroker(Clock(T0), fees=FeeModel()))
        fresh = PaperBroker(Clock(T0 + 60 * SECOND), fees=FeeModel())  # a new simulator: knows nothing
        restarted = manager(records, fresh)
        with caplog.at_level(logging.INFO):
            report = await restarted.connect()
        assert "the broker has no memory of earlier orders" in report.fresh_broker
        assert "records hold 1 orders sent to a broker" in report.fresh_broker
        assert "the recorded positions (MESZ4 +1) are not at this broker" in report.fresh_broker
        assert report.position_differences == {MES.key: (1, 0)}
        why = report.position_explanations[MES.key]
        assert why == (
            "no execution IB reported explains -1: the broker has no memory of the recorded orders "
            "(a fresh simulator, or another account)"
        )
        described = report.describe()
        assert "position MESZ4 recorded +1 IB +0 (no execution IB reported explains -1" in described
        assert "no memory of earlier orders" in described
        logged = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
        assert "no memory of earlier orders" in logged and "no execution IB reported explains" in logged
        assert restarted.risk.position(MES) == 0  # the broker's, for the risk checks
        restarted.on_price(MES, 5100.0)
        assert restarted.risk.day_pnl() == 0  # the adoption moved no money

    run(main())


def test_a_fresh_broker_with_flat_records_is_a_note_not_a_difference(records: OrderRecords) -> None:
    async def main() -> None:
        broker = PaperBroker(Clock(T0), fees=FeeModel())
        om = await bought(records, broker)
        await om.submit(OrderRequest("MES", Side.SELL, 1, client_order_id="close"))
        broker.on_quote(MES, broker.clock.ns + SECOND, 5000.0, 5000.25)
        assert records.positions() == {MES.key: 0}
        report = await manager(records, PaperBroker(Clock(T0 + 60 * SECOND), fees=FeeModel())).connect()
        assert report.clean and report.position_differences == {}
        assert report.describe().startswith("clean; the broker has no memory of earlier orders")
        assert "recorded positions" not in report.fresh_broker

    run(main())


def test_a_difference_names_the_executions_that_explain_it(records: OrderRecords) -> None:
    async def main() -> None:
        broker = PaperBroker(Clock(T0), fees=FeeModel())
        await bought(records, broker)
        # while ibot is away, someone buys 2 more in TWS: an order ibot never placed
        foreign = OrderRequest("MES", Side.BUY, 2, OrderType.MKT)
        await broker.place(BrokerOrder(foreign, MES, 777, "placed-in-tws"))
        broker.on_quote(MES, broker.clock.ns + SECOND, 5001.0, 5001.25)
        (theirs,) = [e for e in await broker.executions() if e.client_order_id == "placed-in-tws"]
        restarted = manager(records, broker)
        report = await restarted.connect()
        assert report.unknown_executions == [theirs.exec_id]
        assert report.position_differences == {MES.key: (1, 3)}
        why = report.position_explanations[MES.key]
        named = f"{theirs.exec_id} BUY 2 @ {theirs.price}"
        assert why == f"explained by IB's executions not in the records: {named}"
        assert report.fresh_broker == ""
        assert restarted.risk.position(MES) == 3
        restarted.on_price(MES, 5001.25)
        assert restarted.risk.day_pnl() == 0  # the adopted contracts are valued at the first price

    run(main())


def test_adopting_a_position_sets_its_basis_so_it_adds_no_pnl() -> None:
    clock = Clock(T0)
    risk = RiskManager(RiskLimits(), clock)
    risk.set_position(MES, 1)  # no price known yet: valued at the first one
    risk.mark(MES, Decimal("5440.50"))
    assert risk.day_pnl() == 0  # not +27202.50 (the 1-lot's whole value)
    risk.mark(MES, Decimal("5441.50"))
    assert risk.day_pnl() == MULTIPLIER
    risk.set_position(MES, -2)  # price known: adopted at it
    assert risk.day_pnl() == MULTIPLIER
    risk.mark(MES, Decimal("5440.50"))
    assert risk.day_pnl() == 3 * MULTIPLIER  # 1 point: +5 on the 1-lot before, +10 on the short 2 after
    fresh = RiskManager(RiskLimits(), clock)
    fresh.set_position(MES, 2)
    assert fresh.on_fill(MES, Side.SELL, 1, Decimal(5000)) is False  # a fill gives the first price
    assert fresh.day_pnl() == 0

"""The records' commission and listing bookkeeping, pinned where a surviving mutant showed that no test would
notice a lost realized P&L, a fill listed out of time order, or a kept-aside execution missing a field (issue
13, finding 11). SQLite file and PostgreSQL."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from oms_helpers import T0
from test_records_bookkeeping import fill, new_order

from ibot.model.orders import Side
from ibot.oms.records import OrderRecords


def test_a_commission_report_without_a_realized_pnl_keeps_the_one_reported_before(
    records: OrderRecords,
) -> None:
    """IB sends realized P&L as "unset" on most reports: that must not erase one already reported."""
    new_order(records)
    fill(records, "e1")
    records.record_commission("e1", Decimal("0.62"), realized_pnl=Decimal("7.5"))
    changed = records.commission_change("e1", Decimal("0.62"), realized_pnl=None)
    assert changed is not None and changed[1].realized_pnl == Decimal("7.5")
    f = records.fill("e1")
    assert f is not None and (f.commission, f.commission_final, f.realized_pnl) == (
        Decimal("0.62"),
        True,
        Decimal("7.5"),
    )


def test_a_corrected_commission_is_logged_with_its_execution(
    records: OrderRecords, caplog: pytest.LogCaptureFixture
) -> None:
    new_order(records)
    fill(records, "e1", commission=Decimal("0.62"))
    with caplog.at_level(logging.WARNING, logger="ibot.oms.records"):
        records.commission_change("e1", Decimal("0.70"))
    assert [r.getMessage() for r in caplog.records if r.name == "ibot.oms.records"] == [
        "fill e1: commission corrected from 0.62 to 0.70"
    ]


def test_fills_waiting_for_a_commission_come_in_execution_time_order(records: OrderRecords) -> None:
    new_order(records)
    fill(records, "late", ts=T0 + 30)
    fill(records, "early", ts=T0 + 10)
    fill(records, "paid", ts=T0 + 20, commission=Decimal("0.62"))
    assert [f.exec_id for f in records.fills_missing_commission()] == ["early", "late"]


def test_executions_at_the_same_time_keep_the_order_they_were_recorded_in(records: OrderRecords) -> None:
    """Two executions with one timestamp (one order filled against two resting orders): listed in the order
    recorded, also after the first one's row was updated by a provisional (zero) commission report, which on
    PostgreSQL moves the row within its table."""
    new_order(records)
    for exec_id in ("a", "b", "c"):
        fill(records, exec_id, ts=T0 + 10)
    records.record_commission("a", 0)  # provisional: still waiting for the real one
    records.record_commission("b", 0)
    expected = ["a", "b", "c"]
    assert [f.exec_id for f in records.fills("o1")] == expected
    assert [f.exec_id for f in records.executions()] == expected
    assert [f.exec_id for f in records.fills_missing_commission()] == expected


def test_an_execution_kept_aside_without_optional_fields_keeps_them_empty(records: OrderRecords) -> None:
    """`record_fill_conflict` with only what an execution must carry: currency, account and commission empty,
    source "broker"."""
    new_order(records)
    fill(records, "e1")
    records.record_fill_conflict(
        "o1",
        exec_id="e1",
        ts=T0 + 5,
        side=Side.SELL,
        quantity=2,
        price=Decimal("5001.75"),
        symbol="MESZ4",
        differences=["side BUY counted, SELL now"],
    )
    (kept,) = records.fill_conflicts()
    assert (kept.client_order_id, kept.side, kept.quantity, kept.price, kept.ts) == (
        "o1",
        Side.SELL,
        2,
        Decimal("5001.75"),
        T0 + 5,
    )
    assert (kept.currency, kept.account, kept.commission, kept.ib_order_id, kept.source) == (
        "",
        "",
        None,
        None,
        "broker",
    )
    assert kept.differences == "side BUY counted, SELL now"


def test_a_fill_recorded_without_optional_fields_keeps_them_empty(records: OrderRecords) -> None:
    new_order(records)
    assert records.record_fill(
        "o1", exec_id="e1", ts=T0, side=Side.BUY, quantity=1, price=5000.25, symbol="MESZ4"
    )
    f = records.fill("e1")
    assert f is not None
    assert (f.currency, f.account, f.ib_order_id, f.commission, f.commission_final, f.realized_pnl) == (
        "",
        "",
        None,
        None,
        False,
        None,
    )

"""The records' fill, commission and position bookkeeping, field by field (issue 13, finding 11): a mutant
that writes a wrong quantity, price, side, fee or order state fails one of these (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from oms_helpers import MES, MNQ, T0

from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.records import OrderChange, OrderRecords, RecordsError, broker_amount

S = OrderStatus


def new_order(records: OrderRecords, cid: str = "o1", quantity: int = 3, symbol: str = "MES") -> None:
    inst = MES if symbol == "MES" else MNQ
    request = OrderRequest(
        symbol, Side.BUY, quantity, OrderType.LMT, limit_price=5000.25, client_order_id=cid
    )
    records.record_new(request, ts=T0, instrument=inst, client_id=1000, account="DU1", strategy="t")


def fill(records: OrderRecords, exec_id: str, **kw: object) -> bool:
    values: dict[str, object] = {
        "ts": T0 + 1,
        "side": Side.BUY,
        "quantity": 1,
        "price": 5000.25,
        "symbol": "MESZ4",
        "currency": "USD",
        "account": "DU1",
        "ib_order_id": 7,
    }
    values.update(kw)
    cid = str(values.pop("cid", "o1"))
    return records.record_fill(cid, exec_id=exec_id, **values)  # type: ignore[arg-type]


# broker amounts and prices ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        ("abc", None),
        (1.7976931348623157e308, None),  # IB's Double.MAX: "unset"
        (Decimal("1e308"), None),
        (Decimal("0.62"), Decimal("0.62")),
        (0.62, Decimal("0.62")),
        ("1.24", Decimal("1.24")),
        (0, Decimal(0)),
        (-2.5, Decimal("-2.5")),
    ],
)
def test_broker_amounts_are_exact_or_unset(value: object, expected: Decimal | None) -> None:
    assert broker_amount(value) == expected  # type: ignore[arg-type]


def test_a_non_finite_price_is_never_recorded(records: OrderRecords) -> None:
    new_order(records)
    for bad in (math.nan, math.inf):
        with pytest.raises(RecordsError, match="non-finite price"):
            fill(records, "e1", price=bad)
    assert records.fills("o1") == []


# record_fill ------------------------------------------------------------------------------------------------
def test_a_fill_is_recorded_field_by_field_with_its_order_state_in_one_go(records: OrderRecords) -> None:
    new_order(records)
    change = OrderChange(S.SUBMITTED, 2, 1, Decimal("5000.375"), T0 + 2, "execution e1", "broker", quantity=3)
    assert fill(records, "e1", quantity=2, price=5000.375, commission=Decimal("1.24"), change=change) is True
    (f,) = records.fills("o1")
    assert (f.exec_id, f.client_order_id, f.ib_order_id, f.account, f.symbol) == (
        "e1",
        "o1",
        7,
        "DU1",
        "MESZ4",
    )
    assert (f.side, f.quantity, f.price, f.ts) == (Side.BUY, 2, Decimal("5000.375"), T0 + 1)
    assert (f.commission, f.commission_final, f.realized_pnl, f.currency) == (
        Decimal("1.24"),
        True,
        None,
        "USD",
    )
    saved = records.get_order("o1")
    assert saved is not None
    assert (saved.status, saved.filled, saved.remaining, saved.avg_fill_price) == (
        S.SUBMITTED,
        2,
        1,
        Decimal("5000.375"),
    )
    assert saved.last_message == "execution e1"
    assert saved.quantity == 3
    history = records.events("o1")
    assert (history[-1].status, history[-1].filled, history[-1].remaining) == (S.SUBMITTED, 2, 1)


def test_a_fill_without_a_commission_waits_for_one(records: OrderRecords) -> None:
    new_order(records)
    fill(records, "e1", side=Side.SELL, realized_pnl=Decimal("12.5"))
    (f,) = records.fills("o1")
    assert (f.side, f.commission, f.commission_final, f.realized_pnl) == (
        Side.SELL,
        None,
        False,
        Decimal("12.5"),
    )
    assert [x.exec_id for x in records.fills_missing_commission()] == ["e1"]


def test_a_redelivered_execution_is_recorded_once(records: OrderRecords) -> None:
    new_order(records)
    assert fill(records, "e1") is True
    n_events = len(records.events("o1"))
    again = OrderChange(S.FILLED, 3, 0, Decimal(1), T0 + 9, "again", "broker")
    assert fill(records, "e1", change=again) is False  # same content: a no-op, the change not written
    assert len(records.fills("o1")) == 1
    assert len(records.events("o1")) == n_events
    saved = records.get_order("o1")
    assert saved is not None and saved.status is not S.FILLED


def test_fills_and_executions_come_oldest_first_and_since_is_inclusive(records: OrderRecords) -> None:
    new_order(records)
    new_order(records, "o2")
    fill(records, "late", ts=T0 + 30)
    fill(records, "early", ts=T0 + 10)
    fill(records, "other", cid="o2", ts=T0 + 20)
    assert [f.exec_id for f in records.fills("o1")] == ["early", "late"]
    assert [f.exec_id for f in records.executions()] == ["early", "other", "late"]
    assert [f.exec_id for f in records.executions(T0 + 20)] == ["other", "late"]
    assert records.executions(T0 + 31) == []
    assert records.fill("other") is not None and records.fill("none") is None


# commissions ------------------------------------------------------------------------------------------------
def test_a_commission_report_fills_in_corrects_and_never_unsets(records: OrderRecords) -> None:
    new_order(records)
    fill(records, "e1")
    assert records.commission_change("nope", Decimal(1)) is None
    changed = records.commission_change("e1", 0.0)  # an early empty report: provisional
    assert changed is not None
    before, after = changed
    assert (before, after.commission, after.commission_final) == (None, Decimal(0), False)
    changed = records.commission_change("e1", Decimal("0.62"), currency="USD", realized_pnl=Decimal("-3.1"))
    assert changed is not None
    before, after = changed
    assert (before, after.commission, after.commission_final) == (Decimal(0), Decimal("0.62"), True)
    assert after.realized_pnl == Decimal("-3.1")
    changed = records.commission_change("e1", None)  # unset: nothing changes
    assert changed is not None
    assert (changed[0], changed[1].commission, changed[1].commission_final) == (
        Decimal("0.62"),
        Decimal("0.62"),
        True,
    )
    changed = records.commission_change("e1", 0)  # a zero after a real one: the real one stays
    assert changed is not None and changed[1].commission == Decimal("0.62")
    changed = records.commission_change("e1", Decimal("0.65"), currency="EUR")  # a correction
    assert changed is not None
    assert (changed[0], changed[1].commission, changed[1].currency) == (
        Decimal("0.62"),
        Decimal("0.65"),
        "EUR",
    )
    assert records.fills_missing_commission() == []
    rec = records.record_commission("e1", Decimal("0.65"))
    assert rec is not None and rec.commission == Decimal("0.65")


# positions from the recorded fills --------------------------------------------------------------------------
def test_the_recorded_position_is_the_signed_sum_of_every_fill(records: OrderRecords) -> None:
    new_order(records)
    new_order(records, "n1", symbol="MNQ")
    assert records.positions() == {}
    fill(records, "b1", quantity=3)
    fill(records, "s1", side=Side.SELL, quantity=1, ts=T0 + 2)
    fill(records, "n", cid="n1", symbol="MNQZ4", side=Side.SELL, quantity=2)
    assert records.positions() == {"MESZ4": 2, "MNQZ4": -2}
    fill(records, "s2", side=Side.SELL, quantity=2, ts=T0 + 3)
    assert records.positions() == {"MESZ4": 0, "MNQZ4": -2}  # netted to zero: still listed

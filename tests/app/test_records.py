"""ibot.app.records called directly: typed summaries of real records databases (SQLite and PostgreSQL), exact
P&L, one run's orders only, executions kept aside; nothing printed, nothing created by a read."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from ibot.app.records import ConflictLine, FillLine, OrderLine, OrdersSummary, list_orders, orders_summary
from ibot.model import catalog
from ibot.model.errors import IbotError
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.records import FillConflictError, OrderRecords

T0 = 1_741_185_000 * 1_000_000_000  # 2025-03-05 14:30:00 UTC
S = 1_000_000_000
FEE = Decimal("0.62")


def _fill_records(url: str) -> None:
    """c1 buys 2 MES at 5000.25 (two fills), c2 sells 1 at 5002.50, c3 works unfilled; e2 is re-sent with
    another price (kept aside as a conflict)."""
    mes = catalog.resolve("MES", date(2025, 3, 5))
    records = OrderRecords(url)
    records.migrate()
    try:
        for cid, side, qty, price in (("c1", Side.BUY, 2, "5000.25"), ("c2", Side.SELL, 1, "5002.50"),
                                      ("c3", Side.BUY, 1, "4990.00")):  # fmt: skip
            request = OrderRequest(mes.key, side, qty, OrderType.LMT, limit_price=float(price))
            records.record_new(request, ts=T0, instrument=mes, client_order_id=cid, strategy="s")
        fill = partial(records.record_fill, symbol=mes.key, currency="USD", quantity=1)
        fill("c1", exec_id="e1", ts=T0 + 1 * S, side=Side.BUY, price=Decimal("5000.25"), commission=FEE)
        fill("c1", exec_id="e2", ts=T0 + 2 * S, side=Side.BUY, price=Decimal("5000.25"), commission=FEE)
        fill("c2", exec_id="e3", ts=T0 + 3 * S, side=Side.SELL, price=Decimal("5002.50"), commission=FEE,
             realized_pnl=Decimal("10.01"))  # fmt: skip
        with pytest.raises(FillConflictError):
            fill("c1", exec_id="e2", ts=T0 + 2 * S, side=Side.BUY, price=Decimal("5001.00"))
    finally:
        records.close()


def test_list_orders_is_a_typed_exact_summary_with_the_conflicts_and_prints_nothing(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill_records(db_url)
    summary = list_orders(db_url)
    assert isinstance(summary, OrdersSummary)
    assert [o.client_order_id for o in summary.orders] == ["c1", "c2", "c3"]
    assert all(isinstance(o, OrderLine) for o in summary.orders)
    assert summary.orders[0].created == "2025-03-05 14:30:00 UTC"
    first = summary.orders[0]
    assert (first.side, first.qty, first.type, first.price, first.symbol) == (
        "BUY", 2, "LMT", Decimal("5000.25"), "MESH5"
    )  # fmt: skip
    assert [(f.exec_id, f.price) for f in summary.fills] == [
        ("e1", Decimal("5000.25")), ("e2", Decimal("5000.25")), ("e3", Decimal("5002.50"))
    ]  # fmt: skip
    assert all(isinstance(f, FillLine) for f in summary.fills)
    # bought 2 at 5000.25, sold 1 at 5002.50: the open 1 marked at the last fill (5002.50), x5 multiplier
    assert summary.positions == {"MESH5": 1}
    assert summary.gross_pnl == Decimal("22.50")  # (5002.50 - 5000.25) x 2 x 5, all exact
    assert summary.commissions == Decimal("1.86")
    assert summary.net_pnl == Decimal("20.64")
    assert summary.ib_realized == Decimal("10.01")
    (kept,) = summary.fill_conflicts or ()
    assert isinstance(kept, ConflictLine)
    assert (kept.exec_id, kept.price) == ("e2", Decimal("5001.00"))
    assert "price" in kept.differences
    assert capsys.readouterr() == ("", "")


def test_orders_summary_of_one_run_keeps_only_its_orders_and_their_fills(db_url: str) -> None:
    _fill_records(db_url)
    records = OrderRecords(db_url)
    try:
        summary = orders_summary(records, only={"c2", "c3"})
    finally:
        records.close()
    assert [o.client_order_id for o in summary.orders] == ["c2", "c3"]
    assert [f.exec_id for f in summary.fills] == ["e3"]
    assert summary.positions == {"MESH5": -1}
    assert summary.fill_conflicts is None  # a run's summary did not ask for them
    assert "fill_conflicts" not in summary.to_dict()


def test_to_dict_keeps_the_json_payload_keys() -> None:
    summary = OrdersSummary((), (), {}, Decimal(0), Decimal(0), Decimal(0), Decimal(0), ())
    assert list(summary.to_dict()) == [
        "orders", "fills", "positions", "gross_pnl", "commissions", "net_pnl", "ib_realized", "fill_conflicts"
    ]  # fmt: skip


def test_a_missing_records_file_is_one_sentence_and_nothing_is_created(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "records.sqlite"
    with pytest.raises(IbotError, match=r"records\.sqlite"):
        list_orders(f"sqlite:///{target}")
    assert list(tmp_path.iterdir()) == []

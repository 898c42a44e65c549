"""`ibot orders` shows the executions the records kept aside (issue 13, finding 1): an exec id recorded before
with other content is an integrity error a user must see, in the table and in --json, never merged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ibot.model import catalog
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.records import FillConflictError, OrderRecords

IBOT = str(Path(sys.executable).with_name("ibot"))
T0 = 1_741_185_000 * 1_000_000_000  # 2025-03-05 14:30 UTC


def _records_with_a_conflict(path: Path) -> str:
    url = f"sqlite:///{path}"
    records = OrderRecords(url)
    records.migrate()
    mes = catalog.resolve("MES", date(2025, 3, 5))
    request = OrderRequest(mes.key, Side.BUY, 1, OrderType.MKT, client_order_id="c1")
    records.record_new(request, ts=T0, instrument=mes)
    common = {"exec_id": "e1", "symbol": mes.key, "currency": "USD", "side": Side.BUY, "quantity": 1}
    records.record_fill("c1", ts=T0, price=Decimal("5000.25"), **common)  # type: ignore[arg-type]
    with pytest.raises(FillConflictError):
        records.record_fill("c1", ts=T0, price=Decimal("5003.50"), **common)  # type: ignore[arg-type]
    records.close()
    return url


def test_orders_lists_the_executions_kept_aside(tmp_path: Path) -> None:
    url = _records_with_a_conflict(tmp_path / "r.sqlite")
    listing = subprocess.run(
        [IBOT, "orders", "--db", url, "--json"], capture_output=True, text=True, check=True
    )
    summary = json.loads(listing.stdout)
    assert [f["price"] for f in summary["fills"]] == ["5000.25"]  # the first one counts, nothing merged
    (kept,) = summary["fill_conflicts"]
    assert (kept["exec_id"], kept["price"]) == ("e1", "5003.5")
    assert "price 5000.25 recorded, 5003.50 now" in kept["differences"]
    env = {**os.environ, "COLUMNS": "220"}
    table = subprocess.run([IBOT, "orders", "--db", url], capture_output=True, text=True, check=True, env=env)
    assert "executions kept aside, not merged (1)" in table.stdout
    assert "records integrity" in table.stdout

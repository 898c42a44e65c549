"""The `--json` payloads are a contract with scripts: the move of the commands onto the application layer
(ibot.app) keeps every key, in order, and money exact as strings. Keys recorded from the commands before the
move; in-process through Typer's runner, on real files."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ibot.cli.main import app
from ibot.model import catalog
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.records import OrderRecords

runner = CliRunner()

SYNTH_KEYS = ["symbol", "bar", "sessions", "first", "last", "generated", "added", "replaced", "rows", "path"]
LIST_KEYS = ["symbol", "bar_size", "rows", "first", "last", "status", "problem", "file_bytes", "path"]
STRATEGY_KEYS = ["strategy", "param", "default", "range", "help"]
BACKTEST_KEYS = [
    "instrument", "strategy", "params", "bars", "start", "end", "initial_capital", "final_equity", "fills",
    "elapsed_s", "bars_per_second", "metrics", "files",
]  # fmt: skip
ORDERS_KEYS = ["orders", "fills", "positions", "gross_pnl", "commissions", "net_pnl", "ib_realized",
               "fill_conflicts"]  # fmt: skip
ORDER_KEYS = ["created", "client_order_id", "ib_id", "strategy", "symbol", "side", "qty", "type", "price",
              "reason", "status", "filled", "avg_price"]  # fmt: skip
FILL_KEYS = ["time", "exec_id", "client_order_id", "symbol", "side", "qty", "price", "commission",
             "realized_pnl"]  # fmt: skip


def _json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_data_and_strategies_payload_keys(tmp_path: Path) -> None:
    assert list(_json("data", "synth", "--days", "1", "--data-dir", str(tmp_path))) == SYNTH_KEYS
    (row,) = _json("data", "list", "--data-dir", str(tmp_path))
    assert list(row) == LIST_KEYS
    assert all(list(r) == STRATEGY_KEYS for r in _json("strategies"))


def test_backtest_payload_keys(tmp_path: Path) -> None:
    report = _json("backtest", "--days", "2", "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "o"))
    assert list(report) == BACKTEST_KEYS
    assert list(report["files"]) == ["trades_csv", "trades_parquet", "chart_html", "chart_png"]
    assert isinstance(report["initial_capital"], str) and Decimal(report["final_equity"]).is_finite()
    where = ("--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "o"))
    report = _json("backtest", "--days", "2", *where, "--no-chart")
    assert list(report["files"]) == ["trades_csv", "trades_parquet"]


def test_orders_payload_keys_and_exact_money(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    records = OrderRecords(url)
    records.migrate()
    mes = catalog.resolve("MES", date(2025, 3, 5))
    t0 = 1_741_185_000 * 1_000_000_000
    try:
        request = OrderRequest(mes.key, Side.BUY, 1, OrderType.LMT, limit_price=5000.25)
        records.record_new(request, ts=t0, instrument=mes, client_order_id="c1")
        records.record_fill("c1", exec_id="e1", ts=t0, side=Side.BUY, quantity=1, price=Decimal("5000.25"),
                            symbol=mes.key, commission=Decimal("0.62"))  # fmt: skip
    finally:
        records.close()
    summary = _json("orders", "--db", url)
    assert list(summary) == ORDERS_KEYS
    assert list(summary["orders"][0]) == ORDER_KEYS and list(summary["fills"][0]) == FILL_KEYS
    assert summary["fills"][0]["price"] == "5000.25" and summary["commissions"] == "0.62"
    assert summary["net_pnl"] == "-0.62" and summary["positions"] == {mes.key: 1}
    assert summary["fill_conflicts"] == []

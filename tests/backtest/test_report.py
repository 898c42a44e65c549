"""Report metrics on a hand-made trade list and equity curve; trade files; charts written."""

from __future__ import annotations

import csv
import json
import math
import statistics
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ibot.backtest.chart import decimate, write_html, write_png
from ibot.backtest.report import BacktestResult, Trade, compute_metrics, render_table
from ibot.model.instruments import Instrument, SecType

MES = Instrument("MES", SecType.FUT, "CME", "USD", Decimal(5), Decimal("0.25"))
T0 = 1_709_650_800_000_000_000
MIN = 60_000_000_000
CAP = Decimal(25_000)


def trade(k: int, side: str, entry: float, exit_: float, fees: str) -> Trade:
    """One contract of MES: gross = ticks x 1.25."""
    ticks = (exit_ - entry) / 0.25 * (1 if side == "LONG" else -1)
    g, f = Decimal(int(ticks)) * Decimal("1.25"), Decimal(fees)
    return Trade(T0 + k * MIN, T0 + (k + 1) * MIN, side, 1, entry, exit_, ticks, g, f, g - f)


TRADES = [
    trade(0, "LONG", 100.0, 102.25, "1.25"),  # +9 ticks = 11.25 gross, net 10.00
    trade(1, "SHORT", 101.0, 101.5, "1.50"),  # -2 ticks = -2.50 gross, net -4.00
    trade(2, "LONG", 100.0, 101.5, "1.50"),  # +6 ticks = 7.50 gross, net 6.00
]
EQUITY = np.array([25010.0, 25006.0, 25012.0, 25000.0])
POSITION = np.array([1, 0, 1, 0], dtype=np.int64)
DAYS = np.array([0, 1, 1, 2], dtype=np.int64)


def test_metrics_from_a_hand_made_trade_list() -> None:
    m = compute_metrics(TRADES, EQUITY, POSITION, DAYS, CAP)
    assert m.net_pnl == Decimal("12.00")  # 10 - 4 + 6
    assert m.gross_pnl == Decimal("16.25")  # 11.25 - 2.50 + 7.50
    assert m.fees == Decimal("4.25")  # 1.25 + 1.50 + 1.50
    assert m.trades == 3
    assert m.win_rate == pytest.approx(2 / 3)
    assert m.profit_factor == pytest.approx(16 / 4)  # (10 + 6) / |-4|
    assert m.avg_trade == Decimal("4")  # 12 / 3
    # Equity with the starting capital in front: 25000, 25010, 25006, 25012, 25000. The deepest fall is from
    # the peak 25012 to 25000 = 12.00, i.e. 12 / 25012 of the peak.
    assert m.max_drawdown == Decimal("12.00")
    assert m.max_drawdown_pct == pytest.approx(12 / 25012 * 100)
    # End-of-day equity: day 0 -> 25010, day 1 -> 25012, day 2 -> 25000; returns over 25000, 25010, 25012.
    rets = [25010 / 25000 - 1, 25012 / 25010 - 1, 25000 / 25012 - 1]
    assert m.sharpe == pytest.approx(statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(252))
    assert m.trading_days == 3
    assert m.trades_per_day == pytest.approx(1.0)
    assert m.exposure_pct == pytest.approx(50.0)


def test_undefined_ratios_are_none_not_infinite() -> None:
    only_win = [TRADES[0]]
    m = compute_metrics(only_win, EQUITY[:1], POSITION[:1], DAYS[:1], CAP)
    assert m.profit_factor is None  # no losing trade
    assert m.sharpe is None  # a single day
    empty = compute_metrics([], EQUITY, POSITION, DAYS, CAP)
    assert (empty.win_rate, empty.avg_trade, empty.net_pnl) == (None, None, Decimal(0))


def result() -> BacktestResult:
    n = 600
    ts = T0 + np.arange(n, dtype=np.int64) * MIN
    close = 100.0 + np.round(np.sin(np.arange(n) / 30.0) * 8) * 0.25
    equity = 25_000.0 + np.cumsum(np.where(np.arange(n) % 7 == 0, -1.0, 0.5))
    return BacktestResult(
        instrument=MES,
        strategy="demo",
        params={"sma_period": 9},
        ts=ts,
        close=close,
        position=(np.arange(n) % 3 == 0).astype(np.int64),
        equity=equity,
        day_ids=np.zeros(n, dtype=np.int64),
        trades=TRADES,
        initial_capital=CAP,
    )


def test_trade_list_round_trips_through_csv_and_parquet(tmp_path: Path) -> None:
    r = result()
    csv_path = r.write_trades_csv(tmp_path / "trades.csv")
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [row["net"] for row in rows] == ["10.00", "-4.00", "6.00"]
    assert rows[1]["side"] == "SHORT"
    table = pq.read_table(r.write_trades_parquet(tmp_path / "trades.parquet"))
    assert table.column("net").to_pylist() == [Decimal("10.00"), Decimal("-4.00"), Decimal("6.00")]
    assert table.column("entry_time").type.tz == "UTC"


def test_to_dict_is_json_ready_with_exact_money() -> None:
    d = json.loads(json.dumps(result().to_dict()))
    assert d["metrics"]["net_pnl"] == "12.00"
    assert d["bars"] == 600
    assert d["strategy"] == "demo"


def test_rich_table_lists_the_metrics() -> None:
    from rich.console import Console

    console = Console(record=True, width=100)
    console.print(render_table(result()))
    text = console.export_text()
    assert "net P&L" in text and "12.00 USD" in text and "66.7%" in text


def test_charts_are_written_as_png_and_offline_html(tmp_path: Path) -> None:
    r = result()
    png = write_png(r, tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = write_html(r, tmp_path / "chart.html")
    text = html.read_text()
    assert len(text) > 1_000_000  # plotly.js is inline
    assert 'src="https://cdn.plot.ly' not in text


def test_decimation_keeps_extremes_and_bounds_the_points() -> None:
    values = np.zeros(1_000_000)
    values[123_457] = 5.0
    values[876_543] = -7.0
    idx = decimate(values, max_points=1000)
    assert len(idx) <= 1002
    assert 123_457 in idx and 876_543 in idx
    assert np.all(np.diff(idx) > 0)

"""Backtests across rolls: any strategy on a continuous MES series over two years of synthetic per-contract
data; every roll shows in the report with its fills and fees, and the run's P&L equals the per-month P&L
computed here from the fills at raw prices."""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from ibot.app.backtest import BacktestRequest, run_backtest
from ibot.app.continuous import parse_month_range, series_for_backtest
from ibot.backtest.engine import Backtester
from ibot.backtest.report import render_table
from ibot.backtest.rolls import RollBook
from ibot.data.bars import BarFrame
from ibot.data.continuous import Adjust, ContinuousSeries
from ibot.exchange.fees import IB_MICRO_FUTURES
from ibot.model import catalog
from ibot.model.errors import ParameterError
from ibot.model.market import Bar
from ibot.model.orders import Fill, OrderRequest, OrderType, Side, TimeInForce
from ibot.strategies.sma_reversal import SmaReversal
from ibot.strategy.base import Strategy

sys.path.insert(
    0, str(Path(__file__).parents[1] / "data")
)  # the per-contract fixture lives with the data tests
from continuous_fixtures import write_months

BAR = "30min"
MES = catalog.get_instrument("MES")


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, BarFrame]]:
    root = tmp_path_factory.mktemp("mes")
    return root, write_months(root, "MES", date(2024, 1, 2), date(2025, 12, 31), bar=BAR, seed=11)


class RecordingReversal(SmaReversal):
    """sma_reversal that keeps every fill it is told of (series prices) and the bars it saw."""

    def on_start(self) -> None:
        super().on_start()
        self.fills: list[Fill] = []

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        super().on_fill(fill)


def _series(root: Path, adjust: str) -> ContinuousSeries:
    return series_for_backtest("MES", BAR, adjust, parse_month_range("2024-01", "2025-12"), root)


def _month_and_offset(series: ContinuousSeries, ts: int) -> tuple[str, float]:
    """Independently of the engine: the month a bar at `ts` belongs to (rolls happen at their bar's close)
    and its adjustment, from the roll records alone."""
    later = [r for r in series.rolls if r.ts >= ts]
    month = later[0].from_contract if later else series.rolls[-1].to_contract
    if series.adjust is Adjust.BACKWARD_SPREAD:
        return month, sum(r.to_price - r.from_price for r in later)
    if series.adjust is Adjust.FORWARD_SPREAD:
        return month, -sum(r.to_price - r.from_price for r in series.rolls if r.ts < ts)
    return month, 0.0


@pytest.mark.parametrize("adjust", ["backward-spread", "forward-spread", "none"])
def test_pnl_equals_the_sum_of_per_month_pnl_at_raw_prices(months, adjust: str) -> None:
    root, frames = months
    series = _series(root, adjust)
    assert len(series.rolls) == 8  # H4->M4 ... Z5->H6
    strategy = RecordingReversal(sma_period=30)
    book = RollBook(series, MES, IB_MICRO_FUTURES)
    result = Backtester(MES, strategy, series.bars, fees=IB_MICRO_FUTURES, roll_hook=book).run()
    book.finish(result)

    gross: dict[str, Decimal] = defaultdict(Decimal)
    fees = Decimal(0)
    position = 0
    mult = MES.multiplier
    per_side = IB_MICRO_FUTURES.per_contract
    rolls = iter(result.rolls)
    next_roll = next(rolls, None)
    for f in strategy.fills:
        while next_roll is not None and next_roll.ts < f.ts:  # the roll happened at an earlier bar's close
            assert next_roll.quantity == position
            next_roll = next(rolls, None)
        month, offset = _month_and_offset(series, f.ts)
        raw = f.price - offset
        bar = frames[month]
        k = int(np.searchsorted(bar.ts, f.ts))
        assert bar.ts[k] == f.ts and bar.low[k] <= raw <= bar.high[k]  # a real price of that month's bar
        gross[month] -= Decimal(str(raw)) * f.signed_quantity * mult
        fees += per_side * f.quantity
        position += f.signed_quantity
    for r in result.rolls:  # each roll: close the old month at its price, open the new one at its own
        assert r.fees == per_side * abs(r.quantity) * 2
        assert r.from_price == frames[r.from_contract].close[frames[r.from_contract].ts == r.ts][0]
        assert r.to_price == frames[r.to_contract].close[frames[r.to_contract].ts == r.ts][0]
        gross[r.from_contract] += Decimal(str(r.from_price)) * r.quantity * mult
        gross[r.to_contract] -= Decimal(str(r.to_price)) * r.quantity * mult
        fees += r.fees
    assert any(r.quantity for r in result.rolls)
    last_ts = int(series.bars.ts[-1])
    last_month, _ = _month_and_offset(series, last_ts)
    if position:  # the run ends by closing at the last bar's close in the last month
        close = frames[last_month].close[frames[last_month].ts == last_ts][0]
        gross[last_month] += Decimal(str(close)) * position * mult
        fees += per_side * abs(position)
    m = result.metrics
    assert m.gross_pnl == sum(gross.values())
    assert m.fees == fees
    assert m.net_pnl == sum(gross.values()) - fees
    by_month: dict[str, Decimal] = defaultdict(Decimal)
    for t in result.trades:
        by_month[t.contract] += t.gross
    assert {k: v for k, v in by_month.items() if v} == {k: v for k, v in gross.items() if v}
    rolled_out = [t for t in result.trades if t.exit_reason == "roll"]
    assert len(rolled_out) == sum(1 for r in result.rolls if r.quantity)
    # the equity curve ends where the trades do
    assert Decimal(str(result.equity[-1])).quantize(Decimal("0.01")) == (
        result.initial_capital + m.net_pnl
    ).quantize(Decimal("0.01"))


class StopKeeper(Strategy):
    """Goes long once and leaves a GTC protective stop far below; records the stop's state at each bar."""

    name = "stop_keeper"

    def on_start(self) -> None:
        self.seen: list[tuple[int, int]] = []  # (ts, open orders)

    def on_bar(self, bar: Bar) -> None:
        if not self.seen:
            self.order(Side.BUY, 2, OrderType.MKT, reason="enter")
            stop = OrderRequest(
                "MES", Side.SELL, 2, OrderType.STP, stop_price=bar.close - 2000, tif=TimeInForce.GTC
            )
            self.ctx.submit(stop)
        self.seen.append((bar.ts, len(self.ctx.open_orders())))


def test_a_position_is_rolled_at_every_roll_and_working_orders_carry_over(months) -> None:
    root, _ = months
    series = _series(root, "backward-spread")
    strategy = StopKeeper()
    book = RollBook(series, MES, IB_MICRO_FUTURES)
    result = Backtester(MES, strategy, series.bars, fees=IB_MICRO_FUTURES, roll_hook=book).run()
    book.finish(result)
    assert [r.quantity for r in result.rolls] == [2] * len(series.rolls)
    assert [(r.from_contract, r.to_contract) for r in result.rolls] == [
        (r.from_contract, r.to_contract) for r in series.rolls
    ]
    assert all(n == 1 for _, n in strategy.seen[1:])  # the stop works on, across every roll
    assert result.fills == 1 + 2 * len(series.rolls) + 1  # entry, two per roll, the end-of-data close
    trades = result.trades
    assert [t.contract for t in trades] == [series.rolls[0].from_contract] + [
        r.to_contract for r in series.rolls
    ]
    for t, r in zip(trades, series.rolls, strict=False):
        assert t.exit_reason == "roll" and t.exit_price == r.from_price  # raw price of the old month
    for t, r in zip(trades[1:], series.rolls, strict=True):
        assert t.entry_reason == "roll" and t.entry_price == r.to_price


def test_backtest_service_reports_every_roll_in_json_and_table(months, tmp_path: Path) -> None:
    root, _ = months
    request = BacktestRequest(
        symbol="MES", bar=BAR, strategy="sma_reversal", params=("sma_period=40",), slippage_ticks=0,
        data_dir=root, out_dir=tmp_path / "out", chart=False, continuous=True, start="2024-01",
        end="2025-12",
    )  # fmt: skip
    outcome = run_backtest(request)
    payload: dict[str, Any] = outcome.to_dict()
    assert payload["continuous"]["adjust"] == "backward-spread"
    assert len(payload["rolls"]) == 8
    first = payload["rolls"][0]
    assert (first["from_contract"], first["to_contract"]) == ("MESH4", "MESM4")
    assert first["fees"] == str(IB_MICRO_FUTURES.per_contract * 2 * abs(first["quantity"]))
    console = Console(record=True, width=200)
    console.print(render_table(outcome.result))
    text = console.export_text()
    assert "MESH4 -> MESM4" in text and "MESZ5 -> MESH6" in text
    header = outcome.files.trades_csv.read_text().splitlines()[0]
    assert header.endswith("contract,adjustment")


def test_backward_ratio_is_refused_for_backtests(months) -> None:
    root, _ = months
    with pytest.raises(ParameterError, match="backward-ratio cannot be backtested"):
        _series(root, "backward-ratio")

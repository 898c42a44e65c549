"""The backtester on a hand-made 8-bar series, every fill, fee and P&L worked out by hand below."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import numpy as np
import pytest

from ibot.backtest import Backtester
from ibot.exchange import FeeModel
from ibot.model.errors import BarDataError
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import Bar
from ibot.model.orders import Fill, OrderStatus, OrderType, OrderUpdate, Side
from ibot.strategy.base import Strategy

# MES: tick 0.25 index points x multiplier 5 = USD 1.25 per tick per contract.
MES = Instrument("MES", SecType.FUT, "CME", "USD", Decimal(5), Decimal("0.25"))
T0 = 1_709_650_800_000_000_000  # 2024-03-05 15:00 UTC (09:00 Chicago), mid trading day
MIN = 60_000_000_000

#        open    high    low     close
OHLC = [
    (100.00, 100.50, 99.75, 100.25),  # 0
    (100.25, 100.75, 100.00, 100.50),  # 1  strategy: BUY 2 MKT
    (
        100.75,
        101.25,
        100.50,
        101.00,
    ),  # 2  buy fills at open 100.75 + 1 tick slippage = 101.00; SELL 2 LMT 102.00
    (101.00, 102.00, 100.75, 101.75),  # 3  high only touches 102.00: no fill (trade-through rule)
    (
        101.75,
        102.50,
        101.50,
        102.25,
    ),  # 4  high 102.50 trades through 102.00: sold at 102.00; SELL 1 STP 101.25
    (102.25, 102.50, 101.50, 101.75),  # 5  low 101.50 above the stop: nothing
    (
        101.50,
        101.75,
        100.75,
        101.00,
    ),  # 6  path 101.50 -> 101.75 -> 100.75: stop at 101.25, fill 101.25 - 1 tick
    (101.00, 101.25, 100.25, 100.50),  # 7  last bar: the short is closed at the close 100.50 ("end of data")
]


def series() -> list[Bar]:
    return [Bar(T0 + k * MIN, o, h, lo, c, 100.0) for k, (o, h, lo, c) in enumerate(OHLC)]


class SeenCloses:
    """A stand-in streaming indicator: remembers every bar close it was fed."""

    def __init__(self) -> None:
        self.closes: list[float] = []

    def update_bar(self, bar: Bar) -> float:
        self.closes.append(bar.close)
        return bar.close


class Script(Strategy):
    """Long 2 at market after bar 1, take profit with a limit, then a short on a sell stop."""

    name: ClassVar[str] = "script"

    def on_start(self) -> None:
        self.seen = self.ctx.indicator(SeenCloses())
        self.k = -1
        self.events: list[tuple[str, int, object]] = []
        self.positions_at_fill: list[int] = []
        self.statuses: list[tuple[str, OrderStatus]] = []
        self.indicator_current: list[bool] = []

    def on_bar(self, bar: Bar) -> None:
        self.k += 1
        k = self.k
        ctx = self.ctx
        self.indicator_current.append(self.seen.closes[-1] == bar.close and ctx.clock.ns == bar.ts)
        if k == 1:
            self.order(Side.BUY, 2, reason="go long")
        elif k == 2:
            assert ctx.position == 2
            self.order(Side.SELL, 2, OrderType.LMT, limit_price=102.0, reason="take profit")
        elif k == 4:
            assert ctx.position == 0
            self.order(Side.SELL, 1, OrderType.STP, stop_price=101.25, reason="breakdown")
            ctx.log("short stop placed")

    def on_fill(self, fill: Fill) -> None:
        self.positions_at_fill.append(self.ctx.position)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.statuses.append((update.client_order_id, update.status))


def run() -> tuple[Script, object]:
    strat = Script()
    result = Backtester(MES, strat, series(), fees=FeeModel(), slippage_ticks=1).run()
    return strat, result


def test_fills_fees_and_pnl_match_the_hand_computation() -> None:
    strat, r = run()
    trades = r.trades  # type: ignore[attr-defined]
    assert len(trades) == 2
    long, short = trades
    # Trade 1: long 2 @ 101.00 -> 102.00 = 4 ticks x 2 contracts x 1.25 = 10.00 gross;
    # fees 0.62 x 2 contracts x 2 sides = 2.48; net 7.52.
    assert (long.side, long.quantity, long.entry_price, long.exit_price) == ("LONG", 2, 101.0, 102.0)
    assert long.ticks == 4
    assert long.gross == Decimal("10.00")
    assert long.fees == Decimal("2.48")
    assert long.net == Decimal("7.52")
    assert (long.entry_ts, long.exit_ts) == (T0 + 2 * MIN, T0 + 4 * MIN)
    assert (long.entry_reason, long.exit_reason) == ("go long", "take profit")
    # Trade 2: short 1 @ 101.00 (stop 101.25 - 1 tick slippage) -> 100.50 (close of the last bar)
    # = 2 ticks x 1.25 = 2.50 gross; fees 0.62 x 2 sides = 1.24; net 1.26.
    assert (short.side, short.entry_price, short.exit_price) == ("SHORT", 101.0, 100.5)
    assert short.gross == Decimal("2.50")
    assert short.net == Decimal("1.26")
    assert short.exit_reason == "end of data"
    m = r.metrics  # type: ignore[attr-defined]
    assert m.net_pnl == Decimal("8.78")  # 7.52 + 1.26
    assert m.gross_pnl == Decimal("12.50")
    assert m.fees == Decimal("3.72")
    # The strategy saw its position already updated in on_fill: +2, then 0, then -1.
    assert strat.positions_at_fill == [2, 0, -1]


def test_equity_is_marked_at_each_close_with_fees_paid() -> None:
    _, r = run()
    eq = r.equity  # type: ignore[attr-defined]
    # bar 2: long 2 at 101.00, close 101.00 -> 0 unrealized; buy fees 1.24 -> 24998.76
    # bar 3: close 101.75 -> +3 ticks x 2 x 1.25 = 7.50 -> 25006.26
    # bar 4: sold at 102.00 -> +10.00 gross, 2.48 fees -> 25007.52
    # bar 6: short 1 at 101.00, close 101.00, fee 0.62 -> 25006.90
    # bar 7: closed at 100.50 -> 25007.52 + 1.26 = 25008.78
    expected = [25000.0, 25000.0, 24998.76, 25006.26, 25007.52, 25007.52, 25006.90, 25008.78]
    assert eq.tolist() == pytest.approx(expected, abs=1e-9)
    assert r.position.tolist() == [0, 0, 2, 2, 0, 0, -1, 0]  # type: ignore[attr-defined]
    assert r.metrics.exposure_pct == pytest.approx(3 / 8 * 100)  # type: ignore[attr-defined]


def test_strategy_sees_indicators_and_clock_already_at_the_current_bar() -> None:
    strat, r = run()
    assert all(strat.indicator_current) and len(strat.indicator_current) == 8
    assert r.logs == [(T0 + 4 * MIN, "short stop placed")]  # type: ignore[attr-defined]


def test_order_statuses_reach_the_strategy_as_tws_sends_them() -> None:
    strat, _ = run()
    by_order: dict[str, list[OrderStatus]] = {}
    for oid, status in strat.statuses:
        by_order.setdefault(oid, []).append(status)
    assert list(by_order.values()) == [
        [OrderStatus.SUBMITTED, OrderStatus.FILLED],
        [OrderStatus.SUBMITTED, OrderStatus.FILLED],
        [OrderStatus.PRE_SUBMITTED, OrderStatus.SUBMITTED, OrderStatus.FILLED],
    ]


def test_arrays_and_bar_lists_give_the_same_result() -> None:
    bars = series()
    cols = tuple(np.array([b[i] for b in bars]) for i in range(6))
    a = Backtester(MES, Script(), bars, slippage_ticks=1).run()
    b = Backtester(MES, Script(), cols, slippage_ticks=1).run()
    assert [t.net for t in a.trades] == [t.net for t in b.trades]
    assert a.equity.tolist() == b.equity.tolist()


def test_off_grid_and_unsorted_bars_are_refused_before_running() -> None:
    bad = series()
    bad[3] = bad[3]._replace(close=101.8)
    with pytest.raises(BarDataError, match=r"close is off the tick grid of 0\.25 at row 3"):
        Backtester(MES, Script(), bad)
    swapped = series()
    swapped[2], swapped[3] = swapped[3], swapped[2]
    with pytest.raises(BarDataError, match="time goes backwards"):
        Backtester(MES, Script(), swapped)


def test_progress_bar_option_does_not_change_the_result() -> None:
    quiet = Backtester(MES, Script(), series(), slippage_ticks=1).run()
    shown = Backtester(MES, Script(), series(), slippage_ticks=1).run(progress=True)
    assert [t.net for t in shown.trades] == [t.net for t in quiet.trades]

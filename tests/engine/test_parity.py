"""Parity: the live runtime trading against the simulator replaying a bar series makes the same trades as the
backtester on that series, fill for fill (bar, side, price, quantity).

How it is made exact (no residual difference is expected, and none is tolerated):
- the simulator replays the stored 1-min bars; its 5-s real-time bars follow each bar's path with the knots
  on whole seconds, so the runner's BarAggregator rebuilds every bar's OHLC exactly;
- `SimServer(lockstep=True)`: the simulator's matching engine meets the working orders with each replayed bar
  as a whole when it ends (`MatchingEngine.on_bar`, the backtester's path rules), before the 5-s bar that
  closes it, so fills reach the strategy before that bar's on_bar, as in the backtester; orders are stamped
  with the open of the bar they were sent in (DAY expiry as in the backtester);
- the market clock stops after every bar until the runner acknowledges it (after the bar's orders), so the
  result does not depend on machine speed;
- the runner reads bars only (`quotes=False`), as the backtester does: the strategy prices its entries from
  the bar close in both runs.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from conftest import WAIT, sim_clock, sim_settings

from ibot.backtest.engine import Backtester
from ibot.data.synth import synth_bars
from ibot.engine.runner import LiveRunner
from ibot.engine.session import TradingSession
from ibot.model import catalog
from ibot.model.market import Bar
from ibot.model.orders import Fill
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.sim.server import SimServer
from ibot.strategies.ma_breakout import MaBreakout

PARAMS: dict[str, Any] = {"sma_period": 5, "breakout_bars": 3, "min_bars_between_reversals": 1}
FillRow = tuple[int, str, float, int, str]


class RecordingMaBreakout(MaBreakout):
    """ma_breakout that keeps every fill it hears of: (bar ts, side, price, quantity, reason)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.fills: list[FillRow] = []

    def on_fill(self, fill: Fill) -> None:
        self.fills.append((fill.ts, str(fill.side), fill.price, fill.quantity, fill.reason))
        super().on_fill(fill)


def replay_bars(n: int = 240) -> list[Bar]:
    """`n` contiguous 1-min MES bars of a seeded synthetic session (a Tuesday morning, Globex open)."""
    frame = synth_bars(catalog.get_instrument("MES"), datetime(2025, 3, 4, tzinfo=UTC), 2, "1min", seed=3)
    return frame.bars()[600 : 600 + n]


def backtest_fills(bars: list[Bar]) -> tuple[list[FillRow], list[Any]]:
    strategy = RecordingMaBreakout(**PARAMS)
    result = Backtester(catalog.get_instrument("MES"), strategy, bars, close_at_end=False).run()
    return strategy.fills, result.trades


async def live_fills(bars: list[Bar], url: str) -> tuple[list[FillRow], list[Bar], SimServer]:
    server = SimServer(port=0, symbols=["MES"], replay={"MES": bars}, replay_bar_seconds=60, lockstep=True)
    await server.start()
    records = OrderRecords(url)
    records.migrate()
    session = TradingSession(
        sim_settings(server),
        records,
        RiskLimits(max_position=20, max_order_size=5, price_band_pct=None),
        symbols=("MES",),
        market_clock=sim_clock(server),
        market_data=False,
        connect_timeout=WAIT,
    )
    strategy = RecordingMaBreakout(**PARAMS)
    runner = LiveRunner(session, strategy, "MES", "1min", quotes=False, lockstep=True)
    try:
        await runner.start()
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while len(runner.bars) < len(bars):
            assert loop.time() < end, f"only {len(runner.bars)} of {len(bars)} bars arrived"
            await asyncio.sleep(0.01)
        await runner.stop(cancel=False)
        return strategy.fills, runner.bars, server
    finally:
        await session.stop()
        await server.stop()
        records.close()


def test_live_run_against_the_replaying_simulator_trades_exactly_as_the_backtest(sqlite_url: str) -> None:
    bars = replay_bars()
    expected, trades = backtest_fills(bars)
    assert len(trades) >= 3, "the series should make the strategy trade several times"
    got, live_bars, server = asyncio.run(live_fills(bars, sqlite_url))
    assert [tuple(b) for b in live_bars] == [tuple(b) for b in bars], "5-s bars did not rebuild the series"
    assert got == expected
    # and the simulator's account executed exactly those fills
    at_sim = [(e.ts_ns, str(e.side), e.price, e.quantity) for e in server.broker.executions]
    assert at_sim == [f[:4] for f in expected]

"""Warm-up (issue 15) through the unmodified ib_async client on the simulator: a live strategy's SMA(20) is
ready at its first on_bar, its value that of the warm-up bars followed by the live bars and nothing else;
the warm-up bars are the stored continuous series of the traded month (when there is one) then IB's
completed bars after it, gapless; a series ending in another month is not used (WARNING); IB answering
nothing is a WARNING, never fatal; and no warm-up bar reaches on_bar, so no order comes from it."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import sim_clock, sim_orders, sim_settings

from ibot.app.live import LiveRunOptions, check_options
from ibot.data.bars import BarFrame
from ibot.data.continuous import Adjust, ContinuousSeries, ContinuousStore, rule_to_dict
from ibot.data.rolls import Roll
from ibot.engine.runner import LiveRunner
from ibot.engine.session import TradingSession
from ibot.indicators.streaming import SMA
from ibot.model import catalog
from ibot.model.errors import ParameterError
from ibot.model.market import NS_PER_SECOND, Bar
from ibot.model.orders import Side
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.sim.server import SimServer
from ibot.strategy.base import Strategy

START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)  # a Wednesday, 09:00 Chicago: MESH5 is the front month
SPEED = 300.0
MINUTE = 60 * NS_PER_SECOND
STORED_END = int(datetime(2025, 3, 5, 14, 55, tzinfo=UTC).timestamp()) * NS_PER_SECOND  # last stored bar


class Watcher(Strategy):
    """SMA(20) on closes; every on_bar records what it saw and places one order (buy, then sell, in turn):
    the orders at the simulator count the on_bar calls."""

    name = "watcher"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.calls: list[tuple[Bar, float]] = []

    def on_start(self) -> None:
        self.sma = self.ctx.indicator(SMA(20))

    def on_bar(self, bar: Bar) -> None:
        self.calls.append((bar, self.sma.value))
        self.order(Side.BUY if len(self.calls) % 2 else Side.SELL, 1, reason="count")


def _ns(minutes_before_end: int) -> int:
    return STORED_END - minutes_before_end * MINUTE


def write_series(root: Path, last_month: str) -> ContinuousSeries:
    """A backward-spread 1-min MES series of 90 bars ending at STORED_END, prices near 3000 (far from the
    simulator's): with `last_month` MESH5, 30 December bars of MESZ4 (shifted by the roll's 8-point gap) then
    60 of MESH5; else all in MESZ4 (never rolled to the traded month)."""
    old_ts = int(datetime(2024, 12, 12, 15, 0, tzinfo=UTC).timestamp()) * NS_PER_SECOND
    ts = np.r_[old_ts + np.arange(30) * MINUTE, _ns(59) + np.arange(60) * MINUTE].astype(np.int64)
    close = 3000.0 + 0.25 * np.arange(90)
    frame = BarFrame(ts, close - 0.25, close + 0.5, close - 0.5, close, np.full(90, 10.0))
    if last_month == "MESH5":
        ids = np.r_[np.zeros(30), np.ones(60)].astype(np.int32)
        adjustment = np.r_[np.full(30, 8.0), np.zeros(60)]
        rolls: tuple[Roll, ...] = (Roll(int(ts[29]), "MESZ4", "MESH5", 2990.0, 2998.0, date(2024, 12, 12)),)
        contracts: tuple[str, ...] = ("MESZ4", "MESH5")
    else:  # the whole series in December's month, never rolled
        ids, adjustment, rolls, contracts = np.zeros(90, dtype=np.int32), np.zeros(90), (), ("MESZ4",)
    series = ContinuousSeries("MES", "1min", Adjust.BACKWARD_SPREAD, frame, ids, contracts, adjustment, rolls)
    ContinuousStore(root).write(series, rule_to_dict(None, "MES"))
    return series


async def _run(
    tmp_path: Path, data_dir: Path | None, warmup_bars: int, no_history: bool = False
) -> tuple[LiveRunner, Watcher, list[Any]]:
    sim = SimServer(port=0, symbols=["MES"], speed=SPEED, start=START)
    await sim.start()
    records = OrderRecords(f"sqlite:///{tmp_path / 'orders.sqlite'}")
    records.migrate()
    limits = RiskLimits(max_position=5, max_order_size=5, price_band_pct=None)
    session = TradingSession(
        sim_settings(sim), records, limits, symbols=("MES",), market_clock=sim_clock(sim)
    )
    strategy = Watcher()
    runner = LiveRunner(
        session, strategy, "MES", "1min", quotes=False, warmup_bars=warmup_bars, data_dir=data_dir
    )
    try:
        if no_history:
            sim.faults.history_no_data(5)
        await runner.start()
        if not runner.bars:  # no live bar yet: the warm-up left the last price and the clock alone
            assert math.isnan(runner.last_price)
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while len(strategy.calls) < 3:
            assert loop.time() < end, "no live bars reached the strategy"
            await asyncio.sleep(0.02)
        await runner.stop(cancel=True)
        await asyncio.sleep(0.2)
        orders = sim_orders(sim)
    finally:
        await session.stop()
        await sim.stop()
        records.close()
    return runner, strategy, orders


def _check_sma_and_orders(runner: LiveRunner, strategy: Watcher, orders: list[Any]) -> None:
    """The SMA at the first on_bar is that of the warm-up bars then the live bars so far, nothing else; the
    first live bar follows the last warm-up bar without a gap; only on_bar calls placed orders."""
    warm = runner.warmup
    assert warm is not None and warm.bars
    first, sma = strategy.calls[0]
    live = runner.bars[: runner.bars.index(first) + 1]
    assert live[0].ts == warm.bars[-1].ts + MINUTE, "a gap (or an overlap) between warm-up and live bars"
    reference = SMA(20)
    for bar in (*warm.bars, *live):
        reference.update(bar.close)
    assert not math.isnan(sma) and sma == reference.value
    assert len(orders) == len(strategy.calls) >= 3  # one per on_bar: the warm-up bars placed none
    assert all(bar.ts > warm.bars[-1].ts for bar, _ in strategy.calls)


def test_without_a_stored_series_the_sma_is_warm_from_ibs_bars(tmp_path: Path) -> None:
    runner, strategy, orders = asyncio.run(_run(tmp_path, None, 500))
    warm = runner.warmup
    assert warm is not None and (warm.month, len(warm.bars), warm.from_store, warm.from_ib) == (
        "MESH5",
        500,
        0,
        500,
    )
    ts = [b.ts for b in warm.bars]
    assert ts == sorted(set(ts)) and all(t % MINUTE == 0 for t in ts)
    _check_sma_and_orders(runner, strategy, orders)


def test_a_stored_series_of_the_traded_month_comes_first_then_ibs_bars(tmp_path: Path) -> None:
    series = write_series(tmp_path, "MESH5")
    runner, strategy, orders = asyncio.run(_run(tmp_path, tmp_path, 40))
    warm = runner.warmup
    assert warm is not None and len(warm.bars) == 40 and 0 < warm.from_ib < 20, warm.describe()
    stored = series.bars.bars()
    assert warm.from_store == 40 - warm.from_ib
    assert list(warm.bars[: warm.from_store]) == stored[-warm.from_store :]
    assert warm.bars[warm.from_store].ts == STORED_END + MINUTE  # IB's bars follow, gapless
    assert all(b.close < 3100 for b in warm.bars[: warm.from_store])  # the stored prices (near 3000)...
    assert all(b.close > 4000 for b in warm.bars[warm.from_store :])  # ...then the simulator's own
    _check_sma_and_orders(runner, strategy, orders)


def test_a_stored_series_ending_in_another_month_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_series(tmp_path, "MESZ4")
    with caplog.at_level(logging.WARNING, logger="ibot.engine"):
        runner, strategy, orders = asyncio.run(_run(tmp_path, tmp_path, 60))
    warm = runner.warmup
    assert warm is not None and (warm.from_store, warm.from_ib) == (0, 60)
    said = [
        r.getMessage() for r in caplog.records if "stored MES 1min series ends in MESZ4" in r.getMessage()
    ]
    assert len(said) == 1 and "not used" in said[0] and "MESH5" in said[0], said
    _check_sma_and_orders(runner, strategy, orders)


def test_ib_answering_nothing_is_a_warning_and_the_strategy_warms_on_live_bars(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ibot.engine"):
        runner, strategy, orders = asyncio.run(_run(tmp_path, None, 500, no_history=True))
    warm = runner.warmup
    assert warm is not None and not warm.bars
    assert any("warm-up: no 1min bars of MESH5 from IB" in r.getMessage() for r in caplog.records)
    assert all(math.isnan(sma) for _, sma in strategy.calls[:3])  # cold, as before warm-up existed
    assert len(orders) == len(strategy.calls)


def test_the_run_options_carry_the_warm_up_and_refuse_a_negative_count(tmp_path: Path) -> None:
    options = LiveRunOptions(
        Watcher(), "MES", "1min", "sqlite://", sim=True, warmup_bars=0, data_dir=tmp_path
    )
    node = options.node_options()
    assert (node.warmup_bars, node.data_dir) == (0, tmp_path)
    check_options(options)
    with pytest.raises(ParameterError, match=r"warm-up bars must be 0 \(none\) or more, not -1"):
        check_options(replace(options, warmup_bars=-1))


class Quiet(Strategy):
    """SMA(20), no orders: records the month of each bar and the SMA's readiness."""

    name = "quiet"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.seen: list[tuple[str, bool]] = []

    def on_start(self) -> None:
        self.sma = self.ctx.indicator(SMA(20))

    def on_bar(self, bar: Bar) -> None:
        self.seen.append((self.ctx.instrument.key, self.sma.ready))


def test_after_a_live_roll_a_warning_says_the_indicators_hold_the_old_months_prices(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> Quiet:
        sim = SimServer(port=0, symbols=["MES"], speed=SPEED, start=datetime(2025, 3, 17, 13, 50, tzinfo=UTC))
        await sim.start()
        records = OrderRecords(f"sqlite:///{tmp_path / 'orders.sqlite'}")
        records.migrate()
        limits = RiskLimits(max_position=5, max_order_size=5, price_band_pct=None)
        h5 = catalog.contract("MES", 2025, 3)
        session = TradingSession(
            sim_settings(sim), records, limits, instruments=(h5,), market_clock=sim_clock(sim)
        )
        strategy = Quiet()
        runner = LiveRunner(session, strategy, "MESH5", "1min", quotes=False, warmup_bars=100)
        try:
            await runner.start()
            await asyncio.wait_for(runner.run_for(20 * 60), 30)
            await runner.stop()
        finally:
            await session.stop()
            await sim.stop()
            records.close()
        return strategy

    with caplog.at_level(logging.INFO, logger="ibot.engine"):
        strategy = asyncio.run(body())
    months = [m for m, _ in strategy.seen]
    assert months[0] == "MESH5" and months[-1] == "MESM5", months
    assert all(ready for _, ready in strategy.seen)  # warm from the first bar, and not reset by the roll
    said = [r for r in caplog.records if "hold MESH5's prices for their window" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING and "MESM5" in said[0].getMessage()

"""Tick-to-order latency of the live path: the simulator writes a tick (timestamp at send) -> ib_async
decodes it -> MarketDataFeed -> LiveRunner -> Strategy.on_tick -> LiveContext.submit -> risk check,
write-ahead record (SQLite file), IBBroker -> ib_async writes PLACE_ORDER -> the simulator reads it
(timestamp at receipt).

Both ends run in ONE process on ONE asyncio loop over loopback TCP (the simulator's server and the real
ib_async client), so the figure includes the loop's scheduling between the two ends but no cross-process
wake- up. The clock is `time.perf_counter_ns`. The strategy fires on every Nth tick (the driver changes
the trade price only on every Nth tick; the strategy trades when the price changes), alternating
BUY/SELL 1 MES at market, so position stays within one contract and every order fills. Risk limits
relaxed; ib_async's own throttle (45 requests/s, IB's 50 msg/s rule) and the simulator's message-rate
limit are switched off: this measures the software path, not IB's pacing. One signal is in flight at a
time (no queueing in the figure).

    .venv/bin/python bench/live_latency.py [--signals 3000] [--every 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ibot.brokers.ib.config import IBSettings
from ibot.engine.runner import LiveRunner
from ibot.engine.session import TradingSession
from ibot.model.market import NS_PER_SECOND, Tick
from ibot.model.orders import OrderType, Side
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.sim import layouts as L  # noqa: N812
from ibot.sim.messages import TickType
from ibot.sim.pacing import SimLimits
from ibot.sim.server import SimServer
from ibot.sim.session import MarketDataSub
from ibot.strategy.base import Strategy

START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)  # Wednesday 09:00 Chicago: Globex open
TARGET_P99_MS = 2.0


class TickSignal(Strategy):
    """Trades 1 contract at market whenever the last price changes (the driver changes it every Nth tick)."""

    name = "tick_signal"

    def on_start(self) -> None:
        self.submit_ns: list[int] = []  # time inside ctx.submit: risk check, write-ahead record, send
        self._last = float("nan")
        self._side = Side.BUY

    def on_tick(self, tick: Tick) -> None:
        last = tick.last
        if last != last:  # noqa: PLR0124 - a quote-only tick
            return
        if self._last == self._last and last != self._last:
            t0 = time.perf_counter_ns()
            self.order(self._side, 1, OrderType.MKT, reason="tick signal")
            self.submit_ns.append(time.perf_counter_ns() - t0)
            self._side = self._side.opposite
        self._last = last


async def measure(signals: int, every: int, warmup: int, db_dir: str | None) -> tuple[list[int], list[int]]:
    """(tick-to-order latencies, time inside the strategy's submit call), ns, warm-up excluded."""
    server = SimServer(
        port=0, symbols=["MES"], speed=1e-6, start=START, limits=SimLimits.off(), thin_liquidity=False
    )
    await server.start()
    received: list[int] = []
    arrived = asyncio.Event()
    place = server.broker.place

    def timed_place(client_id: int, msg: Any) -> None:
        received.append(time.perf_counter_ns())  # receipt: the PLACE_ORDER was just read and decoded
        arrived.set()
        place(client_id, msg)

    server.broker.place = timed_place  # type: ignore[method-assign]
    tmp = Path(tempfile.mkdtemp(prefix="ibot_latency_", dir=db_dir))
    records = OrderRecords(f"sqlite:///{tmp / 'orders.sqlite'}")
    records.migrate()
    settings = IBSettings.model_validate(
        {"port": server.port, "restart_window": {"enabled": False}, "stale_after_seconds": 3600.0}
    )
    limits = RiskLimits(
        max_position=10,
        max_order_size=10,
        max_orders_per_day=None,
        max_trades_per_day=None,
        price_band_pct=None,
    )
    session = TradingSession(
        settings,
        records,
        limits,
        symbols=("MES",),
        market_clock=lambda: int(server.market.now_s * NS_PER_SECOND),
    )
    strategy = TickSignal()
    runner = LiveRunner(session, strategy, "MES", "1min")
    sent: list[int] = []
    try:
        await runner.start()
        session.connection.ib.client.MaxRequests = 0
        sim_session = server.session_of(session.connection.client_id)
        assert sim_session is not None, "the client is not connected to the simulator"
        sub = next(s for s in sim_session.subs.values() if isinstance(s, MarketDataSub))
        inst = sub.inst
        quote = server.market.quote(inst, int(server.market.now_s))
        assert quote is not None, "market closed in the simulator"
        base = inst.to_ticks(quote.last)
        level = 0
        for i in range(signals + warmup):
            for _ in range(every - 1):  # filler ticks at the current price: no signal
                sim_session.send(L.TICK_PRICE, reqId=sub.req_id, tickType=int(TickType.LAST),
                                 price=inst.from_ticks(base + level), size=1, attrMask=0)  # fmt: skip
            await sim_session.writer.drain()
            await asyncio.sleep(0)
            level = 1 - level
            arrived.clear()
            n = len(received)
            t0 = time.perf_counter_ns()
            sim_session.send(L.TICK_PRICE, reqId=sub.req_id, tickType=int(TickType.LAST),
                             price=inst.from_ticks(base + level), size=1, attrMask=0)  # fmt: skip
            await asyncio.wait_for(arrived.wait(), 5)
            if i >= warmup:
                sent.append(t0)
                assert len(received) == n + 1, f"signal {i}: {len(received) - n} orders arrived"
            # let the fill, its status and commission reach the client before the next signal
            while any(not m.is_final for m in session.om.orders()[-1:]):
                await asyncio.sleep(0.0002)
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.2)
        latencies = [r - s for s, r in zip(sent, received[warmup:], strict=True)]
        fills = len(server.broker.executions)
        assert fills == signals + warmup, f"{fills} fills for {signals + warmup} orders"
        return latencies, strategy.submit_ns[warmup:]
    finally:
        await runner.stop(cancel=False)
        await session.stop()
        await server.stop()
        records.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=3000, help="orders to time")
    parser.add_argument("--every", type=int, default=5, help="a signal every Nth tick")
    parser.add_argument("--warmup", type=int, default=100, help="signals before timing starts")
    parser.add_argument(
        "--db-dir",
        default=None,
        help="directory of the SQLite records file (default: the system temp dir; /dev/shm = no disk sync)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    started = time.perf_counter()
    raw, inside = asyncio.run(measure(args.signals, args.every, args.warmup, args.db_dir))
    lat = sorted(raw)
    inside.sort()
    elapsed = time.perf_counter() - started

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6

    p50, p99, worst = pct(0.50), pct(0.99), lat[-1] / 1e6
    where = args.db_dir or tempfile.gettempdir()
    print(
        f"tick-to-order latency, {len(lat)} signals (every {args.every}th tick; one process, one loop, "
        f"loopback TCP, SQLite write-ahead records in {where}): p50 {p50:.3f} ms  p99 {p99:.3f} ms  "
        f"max {worst:.3f} ms  mean {statistics.fmean(lat) / 1e6:.3f} ms  ({elapsed:.1f} s)"
    )
    print(
        f"  of which inside LiveContext.submit (risk check + write-ahead record + send): "
        f"p50 {inside[len(inside) // 2] / 1e6:.3f} ms  p99 {inside[int(0.99 * len(inside))] / 1e6:.3f} ms"
    )
    ok = p99 < TARGET_P99_MS
    print(f"p99 < {TARGET_P99_MS} ms target: {'YES' if ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

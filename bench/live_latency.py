"""Tick-to-order latency of the live path: the simulator writes a tick (timestamp at send) -> ib_async
decodes it -> MarketDataFeed -> LiveRunner -> Strategy.on_tick -> LiveContext.submit -> risk check,
write-ahead record (SQLite file), IBBroker -> ib_async writes PLACE_ORDER -> the simulator reads it
(timestamp when its socket read returns those bytes, before the simulator decodes them).

Both ends run in ONE process on ONE asyncio loop over loopback TCP (the simulator's server and the real
ib_async client), so the figure includes the loop's scheduling between the two ends but no cross-process
wake- up. The clock is `time.perf_counter_ns`. The strategy fires on every Nth tick (the driver changes
the trade price only on every Nth tick; the strategy trades when the price changes), alternating
BUY/SELL 1 MES at market, so position stays within one contract and every order fills. Risk limits
relaxed; ib_async's own throttle (45 requests/s, IB's 50 msg/s rule) and the simulator's message-rate
limit are switched off: this measures the software path, not IB's pacing. One signal is in flight at a
time (no queueing in the figure).

The records database is what the product uses: a SQLite file in WAL mode at the product's default durability
(`records_sync = "normal"`: each commit is in the WAL, safe against a crash of the trading process, not
flushed to disk; the WAL is checkpointed by a thread of its own, never inside a commit). `--records-sync full`
measures the stronger setting (the WAL fsynced at every commit: safe against power loss too), so the one
write-ahead commit per order waits for a disk flush. `--db-dir /dev/shm` (tmpfs, where an fsync does nothing)
shows the software path alone. Garbage-collector pauses during the timed signals are reported (they stall the
loop, so they land on the path when they coincide with a signal). The figure is split into its parts: the
tick reaching the strategy, the strategy's submit call, and the order bytes reaching the simulator.

    .venv/bin/python bench/live_latency.py [--signals 3000] [--every 5] [--db-dir DIR]
                                           [--records-sync full|normal]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import shutil
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
from ibot.oms.records import DEFAULT_RECORDS_SYNC, OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.sim import layouts as L  # noqa: N812
from ibot.sim.client import MarketDataSub
from ibot.sim.messages import TickType
from ibot.sim.pacing import SimLimits
from ibot.sim.server import SimServer
from ibot.strategy.base import Strategy

START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)  # Wednesday 09:00 Chicago: Globex open
TARGET_P99_MS = 2.0


class TickSignal(Strategy):
    """Trades 1 contract at market whenever the last price changes (the driver changes it every Nth tick)."""

    name = "tick_signal"

    def on_start(self) -> None:
        self.submit_ns: list[int] = []  # time inside ctx.submit: risk check, write-ahead record, send
        self.entered: list[int] = []  # perf_counter_ns when on_tick saw a signal's tick (before submit)
        self.returned: list[int] = []  # perf_counter_ns when the strategy's submit call returned
        self.last_order = ""
        self._last = float("nan")
        self._side = Side.BUY

    def on_tick(self, tick: Tick) -> None:
        last = tick.last
        if last != last:  # noqa: PLR0124 - a quote-only tick
            return
        if self._last == self._last and last != self._last:
            t0 = time.perf_counter_ns()
            self.last_order = self.order(self._side, 1, OrderType.MKT, reason="tick signal")
            t1 = time.perf_counter_ns()
            self.submit_ns.append(t1 - t0)
            self.entered.append(t0)
            self.returned.append(t1)
            self._side = self._side.opposite
        self._last = last


class GcPauses:
    """Collector pauses (ns, by generation) while `timing` is on: they stall the one loop, ticks included."""

    def __init__(self) -> None:
        self.timing = False
        self.pauses: list[tuple[int, int]] = []
        self._start = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter_ns()
        elif self.timing:
            self.pauses.append((info["generation"], time.perf_counter_ns() - self._start))


async def measure(
    signals: int, every: int, warmup: int, db_dir: str | None, sync: str, gc_pauses: GcPauses
) -> tuple[list[int], dict[str, list[int]]]:
    """(tick-to-order latencies, its parts by name), ns, warm-up excluded."""
    server = SimServer(
        port=0, symbols=["MES"], speed=1e-6, start=START, limits=SimLimits.off(), thin_liquidity=False
    )
    await server.start()
    received: list[int] = []
    arrived = asyncio.Event()
    place = server.broker.place

    def timed_place(client_id: int, msg: Any) -> None:
        # receipt: when the simulator's socket read returned the PLACE_ORDER bytes (before its own decoding)
        session = server.client_of(client_id)
        received.append(session.read_ns if session is not None else time.perf_counter_ns())
        arrived.set()
        place(client_id, msg)

    server.broker.place = timed_place  # type: ignore[method-assign]
    tmp = Path(tempfile.mkdtemp(prefix="ibot_latency_", dir=db_dir))
    records = OrderRecords(f"sqlite:///{tmp / 'orders.sqlite'}", sync=sync)
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
        session.venue.unthrottle()
        sim_client = server.client_of(session.connection.client_id)
        assert sim_client is not None, "the client is not connected to the simulator"
        sub = next(s for s in sim_client.subs.values() if isinstance(s, MarketDataSub))
        inst = sub.inst
        quote = server.market.quote(inst, int(server.market.now_s))
        assert quote is not None, "market closed in the simulator"
        base = inst.to_ticks(quote.last)
        level = 0
        for i in range(signals + warmup):
            for _ in range(every - 1):  # filler ticks at the current price: no signal
                sim_client.send(L.TICK_PRICE, reqId=sub.req_id, tickType=int(TickType.LAST),
                                 price=inst.from_ticks(base + level), size=1, attrMask=0)  # fmt: skip
            await sim_client.writer.drain()
            await asyncio.sleep(0)
            level = 1 - level
            arrived.clear()
            n = len(received)
            t0 = time.perf_counter_ns()
            sim_client.send(L.TICK_PRICE, reqId=sub.req_id, tickType=int(TickType.LAST),
                             price=inst.from_ticks(base + level), size=1, attrMask=0)  # fmt: skip
            await asyncio.wait_for(arrived.wait(), 5)
            if i >= warmup:
                gc_pauses.timing = True
                sent.append(t0)
                assert len(received) == n + 1, f"signal {i}: {len(received) - n} orders arrived"
            # One signal in flight at a time: let the fill, its status and its commission report reach the
            # client and be recorded (each a durable commit) before the next signal, so a signal never
            # queues behind the previous order's bookkeeping.
            last = session.om.order(strategy.last_order)
            while last is not None and not last.is_final:
                await asyncio.sleep(0.0002)
            while records.fills_missing_commission():
                await asyncio.sleep(0.0002)
            await asyncio.sleep(0.001)
        gc_pauses.timing = False
        await asyncio.sleep(0.2)
        latencies = [r - s for s, r in zip(sent, received[warmup:], strict=True)]
        fills = len(server.broker.executions)
        assert fills == signals + warmup, f"{fills} fills for {signals + warmup} orders"
        inbound = [e - s for s, e in zip(sent, strategy.entered[warmup:], strict=True)]
        after = [r - e for e, r in zip(strategy.returned[warmup:], received[warmup:], strict=True)]
        return latencies, {
            "tick -> strategy (simulator send, ib_async decode, feed, runner)": inbound,
            "inside LiveContext.submit (risk check + write-ahead record + send)": strategy.submit_ns[warmup:],
            "submit returned -> simulator read": after,
        }
    finally:
        await runner.stop(cancel=False)
        await session.stop()
        await server.stop()
        records.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=3000, help="orders to time")
    parser.add_argument("--every", type=int, default=5, help="a signal every Nth tick")
    parser.add_argument("--warmup", type=int, default=100, help="signals before timing starts")
    parser.add_argument(
        "--records-sync",
        choices=["full", "normal"],
        default=DEFAULT_RECORDS_SYNC,
        help=f"the records' durability setting (default: the product's, {DEFAULT_RECORDS_SYNC!r}): normal = "
        "safe against a crash of the trading process; full = fsync per commit, safe against power loss too",
    )
    parser.add_argument(
        "--db-dir",
        default=None,
        help="directory of the SQLite records file (default: the system temp dir; /dev/shm = no disk sync)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    started = time.perf_counter()
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    try:
        raw, parts = asyncio.run(
            measure(args.signals, args.every, args.warmup, args.db_dir, args.records_sync, gc_pauses)
        )
    finally:
        gc.callbacks.remove(gc_pauses)
    lat = sorted(raw)
    elapsed = time.perf_counter() - started

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6

    p50, p99, worst = pct(0.50), pct(0.99), lat[-1] / 1e6
    where = args.db_dir or tempfile.gettempdir()
    if where.startswith("/dev/shm"):
        sync = f"records_sync={args.records_sync} on tmpfs: no disk flush at all (the software path alone)"
    elif args.records_sync == "full":
        sync = "records_sync=full: fsync per commit (safe against power loss)"
    else:
        sync = "records_sync=normal: no fsync per commit (safe against a process crash, not power loss)"
    print(
        f"tick-to-order latency, {len(lat)} signals (every {args.every}th tick; one process, one loop, "
        f"loopback TCP, SQLite WAL write-ahead records in {where}, {sync}): p50 {p50:.3f} ms  "
        f"p99 {p99:.3f} ms  max {worst:.3f} ms  mean {statistics.fmean(lat) / 1e6:.3f} ms  ({elapsed:.1f} s)"
    )
    for what, part in parts.items():
        part.sort()
        print(
            f"  of which {what}: p50 {part[len(part) // 2] / 1e6:.3f} ms  "
            f"p99 {part[int(0.99 * len(part))] / 1e6:.3f} ms"
        )
    for generation in (0, 1, 2):
        ms = sorted(ns / 1e6 for g, ns in gc_pauses.pauses if g == generation)
        if ms:
            print(f"  gc gen{generation} pauses during the run: {len(ms)}, max {ms[-1]:.3f} ms")
    ok = p99 < TARGET_P99_MS
    print(f"p99 < {TARGET_P99_MS} ms target: {'YES' if ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

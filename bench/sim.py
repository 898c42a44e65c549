"""TWS simulator benchmark: `.venv/bin/python bench/sim.py [--seconds S] [--orders N]`.

Measures, over loopback, with the simulator in its own process (so the client's CPU share can be read):
  (a) ticks per second streamed to ONE ib_async client: top-of-book subscriptions on every listed month of
      the catalog futures, the simulator's clock running as fast as the client reads (speed=None), ticks
      counted on the client as ib_async's Ticker.ticks entries delivered through pendingTickersEvent;
  (b) order round trips per second: 1-lot market orders (buy, sell, buy...) kept `--window` in flight,
      place -> ORDER_STATUS Filled seen by the client, the simulator's book deep (thin_liquidity off).
The simulator's message-rate limit is off (SimLimits.off()) and ib_async's request throttle is off
(`ib.client.MaxRequests = 0`). For each, the client's CPU share = process_time / wall time of the client, and
the simulator's the same from /proc (Linux): the side near 100% is the one that limits the figure. (b) also
prints each side's CPU per round trip and the rate that alone would allow with a core to itself: on a shared
machine the wall-clock figure moves with the load, the CPU per round trip much less.
`--profile-server FILE` runs the simulator under cProfile. (a) also says how far the market clock ran
(a stream that ran into a closed market would count nothing). Targets: >= 50,000 ticks/s and >= 2,000 round
trips/s. Nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

TARGET_TICKS_PER_S = 50_000
TARGET_ROUND_TRIPS_PER_S = 2_000
START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)  # a Wednesday, 09:00 Chicago: Globex open


def serve(speed: float | None, thin: bool, profile: str | None = None) -> None:
    """Child process: run the simulator, print its port, serve until killed (SIGTERM ends it cleanly, so
    `profile`, a cProfile output file, gets written)."""
    import cProfile
    import signal

    from ibot.sim.pacing import SimLimits
    from ibot.sim.server import SimServer

    async def main() -> None:
        server = SimServer(
            port=0,
            speed=speed,
            start=START,
            limits=SimLimits.off(),
            thin_liquidity=thin,
        )
        await server.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print(server.port, flush=True)
        await stop.wait()
        clock = datetime.fromtimestamp(server.market.now_s, UTC)
        print(f"{clock:%a %Y-%m-%d %H:%M:%S} UTC", flush=True)  # where the market clock stopped
        await server.stop()

    if not profile:
        asyncio.run(main())
        return
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(main())
    profiler.disable()
    profiler.dump_stats(profile)


def start_server(
    speed: float | None, thin: bool = True, profile: str | None = None
) -> tuple[subprocess.Popen[str], int]:
    args = [sys.executable, __file__, "--serve", "--speed", "max" if speed is None else str(speed)]
    if not thin:
        args.append("--deep")
    if profile:
        args += ["--profile-server", profile]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip():
        proc.kill()
        raise RuntimeError("the simulator process did not start")
    return proc, int(line)


def stop_server(proc: subprocess.Popen[str]) -> str:
    """SIGTERM (the simulator stops its sessions and writes its profile), SIGKILL if it hangs; returns the
    simulator's last word: the market time its clock stopped at."""
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.strip() or "?"


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` so far; NaN where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


async def bench_ticks(port: int, seconds: float, pid: int) -> tuple[float, float, float, int]:
    from ib_async import IB, Future

    ib = IB()
    ib.client.MaxRequests = 0  # ib_async's own request throttle off
    await ib.connectAsync("127.0.0.1", port, 11, timeout=10)
    contracts = []
    for symbol in ("MES", "MNQ", "MYM", "M2K", "MGC", "MCL", "MBT"):
        details = await ib.reqContractDetailsAsync(Future(symbol))
        contracts += [d.contract for d in details if d.contract is not None]
    for c in contracts:
        ib.reqMktData(c, "", False, False)
    count = 0

    def on_pending(tickers: object) -> None:
        nonlocal count
        for t in tickers:  # type: ignore[attr-defined]
            count += len(t.ticks)

    ib.pendingTickersEvent += on_pending
    await asyncio.sleep(0.5)  # warm up: first snapshots of every subscription
    count = 0
    wall0, cpu0, sim0 = time.perf_counter(), time.process_time(), process_cpu(pid)
    await asyncio.sleep(seconds)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    sim = process_cpu(pid) - sim0
    n = count
    ib.disconnect()
    return n / wall, cpu / wall, sim / wall, len(contracts)


async def bench_orders(port: int, n: int, window: int, pid: int) -> tuple[float, float, float, float]:
    from ib_async import IB, Future, MarketOrder

    ib = IB()
    ib.client.MaxRequests = 0
    await ib.connectAsync("127.0.0.1", port, 12, timeout=10)
    [contract] = await ib.qualifyContractsAsync(Future("MES", "202506", "CME"))
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    filled = 0
    sent = 0
    started: dict[int, float] = {}
    latencies: list[float] = []

    def place() -> None:
        nonlocal sent
        trade = ib.placeOrder(contract, MarketOrder("BUY" if sent % 2 == 0 else "SELL", 1))
        started[trade.order.orderId] = time.perf_counter()
        sent += 1

    def on_status(trade: object) -> None:
        nonlocal filled
        if trade.orderStatus.status == "Filled":  # type: ignore[attr-defined]
            t0 = started.pop(trade.order.orderId, None)  # type: ignore[attr-defined]
            if t0 is None:
                return
            latencies.append(time.perf_counter() - t0)
            filled += 1
            if filled >= n:
                done.set()
            elif sent < n:
                place()

    ib.orderStatusEvent += on_status
    wall0, cpu0, sim0 = time.perf_counter(), time.process_time(), process_cpu(pid)
    for _ in range(min(window, n)):
        place()
    await asyncio.wait_for(done.wait(), timeout=max(60.0, n / 100))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    sim = process_cpu(pid) - sim0
    del loop
    latencies.sort()
    ib.disconnect()
    return n / wall, cpu / wall, sim / wall, latencies[len(latencies) // 2] * 1000


def verdict(value: float, target: float) -> str:
    return "meets" if value >= target else "MISSES"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="tick streaming measurement (wall s)")
    p.add_argument("--orders", type=int, default=5_000, help="order round trips to time")
    p.add_argument("--window", type=int, default=16, help="orders in flight at once")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--speed", default="max", help=argparse.SUPPRESS)
    p.add_argument("--deep", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--profile-server",
        metavar="FILE",
        help="cProfile the simulator: (a) into FILE, (b) into FILE.orders (read: python -m pstats FILE)",
    )
    p.add_argument("--skip-orders", action="store_true", help="run (a) only")
    args = p.parse_args()
    if args.serve:
        serve(
            None if args.speed == "max" else float(args.speed),
            thin=not args.deep,
            profile=args.profile_server,
        )
        return

    proc, port = start_server(None, profile=args.profile_server)
    try:
        tps, tcpu, tsim, subs = asyncio.run(bench_ticks(port, args.seconds, proc.pid))
    finally:
        clock = stop_server(proc)
    print(
        f"(a) ticks streamed to one ib_async client: {tps:,.0f} ticks/s over {subs} subscriptions "
        f"(CPU of wall: client {tcpu:.0%}, simulator {tsim:.0%}) -> {verdict(tps, TARGET_TICKS_PER_S)} "
        f"the target {TARGET_TICKS_PER_S:,}/s\n"
        f"    market clock from {START:%a %Y-%m-%d %H:%M:%S} UTC to {clock}"
    )
    if args.skip_orders:
        return

    profile = args.profile_server and args.profile_server + ".orders"
    proc, port = start_server(60.0, thin=False, profile=profile)
    try:
        rps, ocpu, osim, median_ms = asyncio.run(bench_orders(port, args.orders, args.window, proc.pid))
    finally:
        stop_server(proc)
    print(
        f"(b) order round trips (place -> Filled seen by the client): {rps:,.0f}/s with {args.window} in "
        f"flight, median latency {median_ms:.2f} ms (CPU of wall: client {ocpu:.0%}, simulator "
        f"{osim:.0%}) -> {verdict(rps, TARGET_ROUND_TRIPS_PER_S)} the target {TARGET_ROUND_TRIPS_PER_S:,}/s\n"
        f"    CPU per round trip: client {ocpu / rps * 1000:.2f} ms, simulator {osim / rps * 1000:.2f} ms "
        f"(each side's bound with a core to itself: {rps / ocpu:,.0f}/s and {rps / osim:,.0f}/s)"
    )


if __name__ == "__main__":
    main()

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
import multiprocessing as mp
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

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


@dataclass(frozen=True)
class ClientRun:
    """What one client process measured: wall-clock start and end of its orders, its CPU seconds over them,
    and its round-trip latencies (s)."""

    start: float
    end: float
    cpu: float
    latencies: list[float]


def orders_client(port: int, client_id: int, n: int, window: int, go: Any, results: Any) -> None:
    """Child process: one unmodified ib_async client (default connect, so it also gets the positions and
    account updates every ib_async session asks for) places `n` 1-lot market orders (buy, sell, buy...),
    `window` in flight, the next one from the Filled status of one before; waits on the barrier `go` before
    the first; puts a ClientRun on the queue `results`."""
    from ib_async import IB, Future, MarketOrder

    async def run() -> ClientRun:
        ib = IB()
        ib.client.MaxRequests = 0  # ib_async's own request throttle off
        await ib.connectAsync("127.0.0.1", port, client_id, timeout=10)
        [contract] = await ib.qualifyContractsAsync(Future("MES", "202506", "CME"))
        done = asyncio.Event()
        filled = sent = 0
        started: dict[int, float] = {}
        latencies: list[float] = []

        def place() -> None:
            nonlocal sent
            trade = ib.placeOrder(contract, MarketOrder("BUY" if sent % 2 == 0 else "SELL", 1))
            started[trade.order.orderId] = time.perf_counter()
            sent += 1

        def on_status(trade: Any) -> None:
            nonlocal filled
            if trade.orderStatus.status != "Filled":
                return
            t0 = started.pop(trade.order.orderId, None)
            if t0 is None:
                return
            latencies.append(time.perf_counter() - t0)
            filled += 1
            if filled >= n:
                done.set()
            elif sent < n:
                place()

        ib.orderStatusEvent += on_status
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(min(window, n)):
            place()
        await asyncio.wait_for(done.wait(), timeout=max(60.0, n / 100))
        run = ClientRun(wall0, time.perf_counter(), time.process_time() - cpu0, latencies)
        ib.disconnect()
        return run

    results.put(asyncio.run(run()))


@dataclass(frozen=True)
class OrdersResult:
    rate: float  # round trips per second, all clients together
    client_cpu: list[float]  # each client's CPU share of the wall time
    sim_cpu: float  # the simulator's CPU share of the wall time
    median_ms: float

    def per_round_trip_ms(self) -> tuple[float, float]:
        """(all clients', simulator's) CPU per round trip, ms."""
        return sum(self.client_cpu) / self.rate * 1000, self.sim_cpu / self.rate * 1000


def bench_orders(port: int, n: int, window: int, clients: int, pid: int) -> OrdersResult:
    """(b) with `clients` ib_async client processes, each `n` orders: round trips per second from the first
    order sent to the last Filled seen, over all clients (one clock: perf_counter is system-wide)."""
    ctx = mp.get_context("spawn")
    go, results = ctx.Barrier(clients + 1), ctx.Queue()
    procs = [
        ctx.Process(target=orders_client, args=(port, 12 + i, n, window, go, results)) for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    try:
        go.wait(timeout=60)
        sim0 = process_cpu(pid)
        runs: list[ClientRun] = [results.get(timeout=max(120.0, n / 50)) for _ in procs]
        sim = process_cpu(pid) - sim0
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    wall = max(r.end for r in runs) - min(r.start for r in runs)
    latencies = sorted(x for r in runs for x in r.latencies)
    return OrdersResult(
        rate=clients * n / wall,
        client_cpu=[r.cpu / (r.end - r.start) for r in runs],
        sim_cpu=sim / wall,
        median_ms=latencies[len(latencies) // 2] * 1000,
    )


def bench_orders_ibapi(port: int, n: int, window: int, pid: int) -> tuple[float, float, float]:
    """(b) again with IB's own Python client (ibapi): its reader thread decodes into a queue, its `run` loop
    calls the wrapper, and the next order is placed from the Filled callback, as in the ib_async run."""
    import threading
    from decimal import Decimal

    from ibapi.client import EClient
    from ibapi.contract import Contract
    from ibapi.order import Order
    from ibapi.wrapper import EWrapper

    contract = Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = "MES", "FUT", "CME", "USD"
    contract.lastTradeDateOrContractMonth = "202506"

    class App(EWrapper, EClient):  # type: ignore[misc]
        def __init__(self) -> None:
            EClient.__init__(self, self)
            self.next_id = 0
            self.sent = self.filled = 0
            self.ready, self.done = threading.Event(), threading.Event()
            self.lock = threading.Lock()
            self.seen: set[int] = set()
            self.errors: list[str] = []

        def nextValidId(self, orderId: int) -> None:  # noqa: N802, N803 (IB's names)
            self.next_id = orderId
            self.ready.set()

        def error(self, reqId: int, *rest: object) -> None:  # noqa: N803
            self.errors.append(" ".join(map(str, rest)))

        def place(self) -> None:
            with self.lock:
                order = Order()
                order.action, order.orderType = ("BUY" if self.sent % 2 == 0 else "SELL"), "MKT"
                order.totalQuantity = Decimal(1)
                self.placeOrder(self.next_id, contract, order)
                self.next_id += 1
                self.sent += 1

        def orderStatus(self, orderId: int, status: str, *rest: object) -> None:  # noqa: N802, N803
            if status != "Filled" or orderId in self.seen:
                return
            self.seen.add(orderId)
            self.filled += 1
            if self.filled >= n:
                self.done.set()
            elif self.sent < n:
                self.place()

    app = App()
    app.connect("127.0.0.1", port, 13)
    reader = threading.Thread(target=app.run, daemon=True)
    reader.start()
    if not app.ready.wait(10):
        raise RuntimeError(f"ibapi: no nextValidId within 10 s (errors: {app.errors})")
    wall0, cpu0, sim0 = time.perf_counter(), time.process_time(), process_cpu(pid)
    for _ in range(min(window, n)):
        app.place()
    finished = app.done.wait(max(60.0, n / 100))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    sim = process_cpu(pid) - sim0
    app.disconnect()
    reader.join(10)
    if not finished:
        raise RuntimeError(f"ibapi: {app.filled} of {n} orders filled (errors: {app.errors[:3]})")
    return n / wall, cpu / wall, sim / wall


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
    p.add_argument(
        "--clients",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[1, 2],
        help="ib_async client processes of each (b) run, comma-separated (default 1,2)",
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

    print(
        f"(b) order round trips, place -> Filled seen by the client; 1-lot market orders, {args.window} in "
        f"flight per client, the simulator's book deep; target {TARGET_ROUND_TRIPS_PER_S:,}/s"
    )
    profile = args.profile_server and args.profile_server + ".orders"
    for clients in args.clients:
        proc, port = start_server(60.0, thin=False, profile=profile if clients == args.clients[-1] else None)
        try:
            run = bench_orders(port, args.orders, args.window, clients, proc.pid)
        finally:
            stop_server(proc)
        client_ms, sim_ms = run.per_round_trip_ms()
        shares = " + ".join(f"{c:.0%}" for c in run.client_cpu)
        print(
            f"    ib_async {version('ib_async')} x {clients} client{'s' if clients > 1 else ''}: "
            f"{run.rate:,.0f}/s -> {verdict(run.rate, TARGET_ROUND_TRIPS_PER_S)}; median latency "
            f"{run.median_ms:.2f} ms; CPU of wall: client{'s' if clients > 1 else ''} {shares}, simulator "
            f"{run.sim_cpu:.0%}\n"
            f"      CPU per round trip: client {client_ms:.2f} ms, simulator {sim_ms:.2f} ms "
            f"(bound with a core each: one client {1000 / client_ms:,.0f}/s, "
            f"the simulator {1000 / sim_ms:,.0f}/s)"
        )
    proc, port = start_server(60.0, thin=False)
    try:
        irps, icpu, isim = bench_orders_ibapi(port, args.orders, args.window, proc.pid)
    finally:
        stop_server(proc)
    print(
        f"    IB's own Python client, ibapi {version('nautilus-ibapi')} x 1 client: {irps:,.0f}/s -> "
        f"{verdict(irps, TARGET_ROUND_TRIPS_PER_S)}; CPU of wall: client {icpu:.0%}, simulator {isim:.0%}\n"
        f"      CPU per round trip: client {icpu / irps * 1000:.2f} ms, "
        f"simulator {isim / irps * 1000:.2f} ms (bound with a core each: the client {irps / icpu:,.0f}/s, "
        f"the simulator {irps / isim:,.0f}/s)"
    )


if __name__ == "__main__":
    main()

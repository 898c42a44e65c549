"""TradingView webhook throughput and latency: alerts/s sustained, ack latency, alert-to-order latency.

Three processes on one machine, over loopback:
- this one runs the TWS simulator (`ibot.sim.server.SimServer` at 60 market seconds a second, TWS's 50 msg/s
  limit off, an account large enough that no margin check refuses an order) and notes the wall time
  (`time.time_ns`) at which each order's PLACE_ORDER reaches the simulated broker, by its orderRef (the client
  order id the door gave the alert);
- the node: a `TradingNode` with only the webhook door (`WebhookDoor`, as `ibot webhook` builds it), trading
  on that simulator through ib_async, its records a SQLite file at the product's default durability;
  ib_async's own throttle (45 requests/s, IB's 50 msg/s rule) is lifted: this measures the software path,
  not IB's pacing (against a real TWS, 200 orders/s is not allowed);
- the load generator: posts alerts open loop at `--rate` per second, `--warmup` seconds untimed then
  `--seconds` timed; alert i is due at start + i/rate and its latencies count from then (a slow answer that
  keeps every connection busy is charged to the alerts it delays), MKT 1 MES alternating BUY/SELL, each with
  its own `id`, over `--connections` keep-alive connections of raw HTTP/1.1 (light, so the generator is not
  the bottleneck).

Figures: alerts acknowledged per second over the timed run; ack latency p50/p99/max (due -> 200 answer);
alert-to-order latency p50/p99/max (due -> the order at the simulator; same machine clock); lost (acked
"accepted" with no order at the simulator after the drain, warm-up included), placed twice, filled; the
node's CPU time per alert. Target: p99 ack < 25 ms at 200 alerts/s with none lost. The node's risk limits are
raised for the run (max order size 1, position 100,000, orders and trades per day 10^7): the limits are not
what is measured.

    .venv/bin/python bench/webhook.py [--rate 200] [--seconds 60] [--warmup 2] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

SECRET = "bench-webhook-secret-7c1e"
START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)  # a Wednesday, 09:00 Chicago: CME Globex is open


# --- the node process ---------------------------------------------------------------------------------------


async def node_main(ib_port: int, db: str) -> None:
    """A node with only the webhook door on an external simulator; prints `READY <http port>`, runs until
    SIGINT/SIGTERM, then prints the door's alert counts as one JSON line."""
    from ibot.app.node import NodeOptions, TradingNode
    from ibot.brokers.ib.config import ClientRole, load_ib_settings
    from ibot.model.clock import MarketTime
    from ibot.oms.risk import RiskLimits
    from ibot.webhook import WebhookDoor, WebhookSettings

    big = 10_000_000
    risk = RiskLimits(
        max_position=100_000,
        max_order_size=1,
        max_orders_per_day=big,
        max_trades_per_day=big,
        price_band_pct=None,
    )
    options = NodeOptions(
        strategies=(), records_url=db, role=ClientRole.TRADINGVIEW, risk=risk, symbols=("MES",)
    )
    settings = load_ib_settings(
        env={},
        overrides={
            "port": ib_port,
            "role": ClientRole.TRADINGVIEW,
            "restart_window": {"enabled": False},
            "stale_after_seconds": 3600.0,
        },
    )
    door = WebhookDoor(WebhookSettings.model_validate({"secret": SECRET, "port": 0}))

    def notice(text: str) -> None:
        if text.startswith("trading"):  # the start-up line: the session is ready and the door listens
            node.session.venue.unthrottle()
            print(f"READY {door.port}", flush=True)

    node = TradingNode(options, settings=settings, market_clock=MarketTime(), notice=notice)
    node.add(door)
    await node.run()
    print(json.dumps(door.summary()), flush=True)


# --- the load generator process -----------------------------------------------------------------------------


def alert_body(run: str, i: int) -> bytes:
    body = {
        "secret": SECRET,
        "ticker": "MES1!",
        "contract": "FUT",
        "exchange": "CME_MINI",
        "order": "MKT",
        "action": "BUY" if i % 2 == 0 else "SELL",
        "quantity": 1,
        "reason": "bench",
        "id": f"bench-{run}-{i}",
        "timenow": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return json.dumps(body).encode()


async def post_once(
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], host: str, path: str, body: bytes
) -> tuple[int, dict[str, Any]]:
    """One HTTP/1.1 POST on a kept-alive connection: the status and the JSON answer."""
    reader, writer = conn
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the node closed the connection")
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    answer = json.loads(await reader.readexactly(length)) if length else {}
    return int(status_line.split()[1]), answer


async def generate(
    url: str, rate: float, seconds: float, connections: int, out: Path, warmup: float = 0.0
) -> None:
    """Post `rate` alerts a second for `seconds`, open loop: alert i is due at start + i/rate and its latency
    counts from then, so an answer that keeps every connection busy delays (and is charged for) the next
    sends. `connections` keep-alive connections, raw HTTP/1.1 (a light client: the generator must not be the
    bottleneck). One JSON line per alert into `out`."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    run = os.urandom(4).hex()
    first_timed = int(rate * warmup)
    total = first_timed + int(rate * seconds)
    rows: list[dict[str, Any]] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    start_mono = loop.time() + 0.2
    start_wall_ns = time.time_ns() + 200_000_000

    async def worker() -> None:
        conn = await asyncio.open_connection(host, port)
        while True:
            i = await queue.get()
            due = start_mono + i / rate
            row: dict[str, Any] = {"i": i, "sent_ns": start_wall_ns + round(i / rate * 1e9)}
            row["warmup"] = i < first_timed
            try:
                for attempt in (1, 2):
                    try:
                        status, answer = await post_once(conn, host, path, alert_body(run, i))
                        break
                    except (ConnectionError, asyncio.IncompleteReadError):
                        if attempt == 2:
                            raise
                        conn[1].close()
                        conn = await asyncio.open_connection(host, port)
                row.update(status=status, verdict=answer.get("status", ""), cid=answer.get("client_order_id"))
            except Exception as exc:  # an unanswered alert is a figure, not a crash of the generator
                row.update(status=0, error=f"{type(exc).__name__}: {exc}")
            row["ack_ms"] = (loop.time() - due) * 1000
            rows.append(row)
            queue.task_done()

    workers = [asyncio.ensure_future(worker()) for _ in range(connections)]
    for i in range(total):
        delay = start_mono + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(i)
    await queue.join()
    for w in workers:
        w.cancel()
    out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


# --- the driver (this process: the simulator) ---------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn(log: Path, *args: str) -> subprocess.Popen[str]:
    """A process of this script in another role; its stderr (the log) goes to `log`, never to a pipe no one
    reads (a full pipe would stall the process)."""
    with log.open("w") as err:
        return subprocess.Popen(
            [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=err, text=True
        )


async def wait_line(proc: subprocess.Popen[str], prefix: str, timeout: float, log: Path) -> str:
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), end - loop.time())
        if line.startswith(prefix):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    raise SystemExit(f"bench: the node did not start within {timeout:g} s (its log: {log})")


async def drive(args: argparse.Namespace) -> int:
    from ibot.sim.pacing import SimLimits
    from ibot.sim.server import SimServer

    # 60 market seconds a second: the simulated market fills market orders as its clock steps, so at real
    # time 200 orders would pile up within each second and fill in one burst; a large account, so that no
    # margin check refuses an order the bench sends
    server = SimServer(
        port=0, symbols=["MES"], speed=60.0, start=START, limits=SimLimits.off(), cash=Decimal(10**10)
    )
    await server.start()
    arrivals: dict[str, int] = {}
    placed: Counter[str] = Counter()
    broker = server.broker
    place = broker.place

    def noting_place(client_id: int, msg: Any) -> None:
        ref = msg.order.order_ref
        arrivals.setdefault(ref, time.time_ns())
        placed[ref] += 1
        place(client_id, msg)

    broker.place = noting_place  # type: ignore[method-assign]
    work = Path(tempfile.mkdtemp(prefix="ibot-bench-webhook-"))
    db = f"sqlite:///{work / 'records.sqlite'}"
    node = spawn(work / "node.log", "--role", "node", "--ib-port", str(server.port), "--db", db)
    try:
        ready = await wait_line(node, "READY", 60.0, work / "node.log")
        url = f"http://127.0.0.1:{ready.split()[1]}/webhook/tradingview"
        print(
            f"bench: node ready (pid {node.pid}, {url}); posting {args.rate:g} alerts/s "
            f"for {args.warmup:g} + {args.seconds:g} s over {args.connections} connections",
            flush=True,
        )
        out = work / "alerts.jsonl"
        gen_args = ["--role", "generate", "--url", url, "--out", str(out)]
        gen_args += ["--rate", str(args.rate), "--seconds", str(args.seconds), "--warmup", str(args.warmup)]
        cpu0 = cpu_seconds(node.pid)
        gen = spawn(work / "generator.log", *gen_args, "--connections", str(args.connections))
        try:
            while gen.poll() is None:
                await asyncio.sleep(0.1)
        finally:
            if gen.poll() is None:  # interrupted: the generator goes with us
                gen.terminate()
                gen.wait(10)
        if gen.returncode != 0:
            raise SystemExit(f"bench: the load generator failed (its log: {work / 'generator.log'})")
        every = [json.loads(line) for line in out.read_text().splitlines() if line]
        every_acked = [r for r in every if r["status"] == 200 and r.get("verdict") == "accepted"]
        rows = [r for r in every if not r["warmup"]]
        acked = [r for r in rows if r["status"] == 200 and r.get("verdict") == "accepted"]
        end = time.monotonic() + args.drain
        while time.monotonic() < end and any(r["cid"] not in arrivals for r in every_acked):
            await asyncio.sleep(0.1)
        print(
            f"warm-up:            {len(every) - len(rows)} alerts in {args.warmup:g} s, not timed", flush=True
        )
        report(args, rows, acked, arrivals, placed, every_acked)
        filled = sum(1 for o in broker.completed_orders() if o.status == "Filled")
        print(f"filled at the sim:  {filled} of {broker.order_count()} orders", flush=True)
        cpu = cpu_seconds(node.pid) - cpu0
        print(
            f"node CPU:           {cpu:.1f} s, {cpu / max(len(every), 1) * 1000:.2f} ms per alert "
            "(warm-up included)",
            flush=True,
        )
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGINT)
            try:
                node.wait(30)
            except subprocess.TimeoutExpired:
                node.kill()
        await server.stop()
    return 0


def report(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    acked: list[dict[str, Any]],
    arrivals: dict[str, int],
    placed: Counter[str],
    every_acked: list[dict[str, Any]],
) -> None:
    """The figures of the timed alerts; lost and placed twice over every alert (warm-up included)."""
    statuses = Counter(r["status"] for r in rows)
    span_s = (max(r["sent_ns"] for r in rows) - min(r["sent_ns"] for r in rows)) / 1e9 if rows else 0.0
    acks = [r["ack_ms"] for r in rows if r["status"] == 200]
    to_order = [(arrivals[r["cid"]] - r["sent_ns"]) / 1e6 for r in acked if r["cid"] in arrivals]
    lost = [r["cid"] for r in every_acked if r["cid"] not in arrivals]
    twice = [ref for ref, n in placed.items() if n > 1]
    print(f"alerts sent:        {len(rows)} in {span_s:.1f} s ({len(rows) / max(span_s, 1e-9):.1f}/s)")
    print(f"answers:            {dict(sorted(statuses.items()))} (0 = no answer)")
    print(f"acked accepted:     {len(acked)} ({len(acked) / max(span_s, 1e-9):.1f} alerts/s sustained)")
    print(
        f"ack latency:        p50 {pct(acks, 50):.2f} ms  p99 {pct(acks, 99):.2f} ms  "
        f"max {max(acks, default=float('nan')):.2f} ms"
    )
    print(
        f"alert-to-order:     p50 {pct(to_order, 50):.2f} ms  p99 {pct(to_order, 99):.2f} ms  "
        f"max {max(to_order, default=float('nan')):.2f} ms  (send -> PLACE_ORDER at the simulator)"
    )
    print(
        f"orders at the sim:  {len(placed)}; lost (acked, no order): {len(lost)}; placed twice: {len(twice)}"
    )
    target = pct(acks, 99) < 25.0 and not lost and not twice and len(acked) == len(rows)
    print(
        f"target (p99 ack < 25 ms at {args.rate:g}/s, none lost): {'met' if target else 'MISSED'}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0, help="alerts per second (default 200)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to post (default 60)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (default 16)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds posted at the rate first, not timed (default 2)"
    )
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the last orders")
    parser.add_argument(
        "--role", choices=["drive", "node", "generate"], default="drive", help=argparse.SUPPRESS
    )
    parser.add_argument("--ib-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--db", default="", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rate <= 0 or args.seconds <= 0 or args.connections < 1:
        parser.error("--rate, --seconds and --connections must be positive")
    if args.role == "node":
        asyncio.run(node_main(args.ib_port, args.db))
        return 0
    if args.role == "generate":
        asyncio.run(
            generate(args.url, args.rate, args.seconds, args.connections, Path(args.out), args.warmup)
        )
        return 0
    try:
        return asyncio.run(drive(args))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

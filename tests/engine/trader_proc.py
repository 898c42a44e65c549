"""A small trading process for the kill -9 test: a `TradingSession` on a SQLite records file placing a loop
of market orders with fixed client order ids (``loop-0``, ``loop-1``, ...), so that a restarted process runs
the very same loop and must not send again an order it already recorded.

With ``--hang before_send`` it stops itself (SIGSTOP) right after order ``--hang-at`` is recorded
(write-ahead, PendingSubmit committed) and before it is sent, printing ``INFLIGHT <cid>``; with ``--hang
after_send`` right after it was written to the socket, printing ``SENT <cid>``: the test then kills it with
SIGKILL. Every line on stdout is one event: ``READY <json>``, ``DONE <cid> <status>``, ``FINISHED <json>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

from ibot.brokers.ib.config import IBSettings
from ibot.engine.session import TradingSession
from ibot.model.orders import OrderRequest, OrderUpdate, Side
from ibot.oms.broker import BrokerIds, BrokerOrder
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits


def say(*parts: object) -> None:
    print(*parts, flush=True)


def freeze(marker: str) -> None:
    """Tell the test where we are, then stop dead (the test sends SIGKILL)."""
    say(marker)
    os.kill(os.getpid(), signal.SIGSTOP)


async def main(args: argparse.Namespace) -> int:
    t0 = time.monotonic()

    def market_clock() -> int:  # the simulator's clock: where it was at launch, moving at its speed
        return args.clock_ns + int((time.monotonic() - t0) * args.speed * 1_000_000_000)

    settings = IBSettings(
        port=args.port,
        connect_timeout=5.0,
        reconnect_initial_delay=0.05,
        reconnect_max_delay=0.2,
        restart_window={"enabled": False},  # type: ignore[arg-type]
    )
    records = OrderRecords(args.db if "://" in args.db else f"sqlite:///{args.db}")
    records.migrate()
    limits = RiskLimits(max_position=20, max_order_size=5, price_band_pct=None)
    session = TradingSession(
        settings, records, limits, symbols=("MES",), market_clock=market_clock, market_data=False
    )
    final: dict[str, asyncio.Event] = {}
    hang_cid = f"loop-{args.hang_at}"

    def on_update(u: OrderUpdate) -> None:
        if u.status.is_done and u.client_order_id in final:
            final[u.client_order_id].set()

    session.om.add_listener(on_update)
    if args.hang == "before_send":
        place = session.om.broker.place

        async def place_in_flight(order: BrokerOrder) -> BrokerIds:
            # the order manager calls the broker once the write-ahead record is committed: stop right there
            if order.client_order_id == hang_cid:
                freeze(f"INFLIGHT {order.client_order_id}")
            return await place(order)

        session.om.broker.place = place_in_flight  # type: ignore[method-assign]
    report = await session.start()
    say("READY", json.dumps(_report(report)))
    for i in range(args.orders):
        cid = f"loop-{i}"
        final[cid] = asyncio.Event()
        m = await session.submit(
            OrderRequest("MES", Side.BUY if i % 2 == 0 else Side.SELL, 1, client_order_id=cid)
        )
        if args.hang == "after_send" and cid == hang_cid:
            freeze(f"SENT {cid}")
        if not m.is_final:
            await asyncio.wait_for(final[cid].wait(), 10)
        say("DONE", cid, m.status)
    positions = {k: v for k, v in session.om.risk.positions().items() if v}
    say("FINISHED", json.dumps({"positions": positions, "status": session.status().describe()}))
    await session.stop()
    records.close()
    return 0


def _report(report: Any) -> dict[str, Any]:
    return {
        "adopted_fills": report.adopted_fills,
        "closed_orders": report.closed_orders,
        "position_differences": {k: list(v) for k, v in report.position_differences.items()},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True, help="SQLite records file")
    parser.add_argument("--clock-ns", type=int, required=True, help="the simulator's market time at launch")
    parser.add_argument("--speed", type=float, required=True, help="simulated seconds per second")
    parser.add_argument("--orders", type=int, default=4)
    parser.add_argument("--hang", choices=["before_send", "after_send"], default=None)
    parser.add_argument("--hang-at", type=int, default=-1)
    sys.exit(asyncio.run(main(parser.parse_args())))

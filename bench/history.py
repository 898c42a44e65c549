"""History download benchmark: `.venv/bin/python bench/history.py [--scale K] [--from DATE --to DATE]`.

Runs `ibot history download`'s engine (the real Downloader, IB adapter and ib_async) against the TWS simulator
in this process, with IB's pacing rules scaled down by K in both (the simulator's windows and the scheduler's:
`--pacing-scale K`), and prints:
  (a) requests sent and the fewest needed, wall time, bars stored per second of wall time;
  (b) the sustained request rate once the ten-minute window binds (the time 60 requests take after the first
      60), against the scheduler's limit at scale K and converted to scale 1 (IB's 60 per 600 s);
  (c) what that means at IB's real limits: 1-min bars per second and per hour at scale 1;
  (d) the continuous-series build rate: per-contract bars read and built into a backward-spread series per s.
Pacing violations seen must be 0. Nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ibot.brokers.ib.config import ClientRole, IBSettings
from ibot.brokers.ib.connection import IBConnection
from ibot.brokers.ib.historical import IBHistorySource
from ibot.data.continuous import Adjust, build_series
from ibot.data.contract_months import load_chain
from ibot.data.store import BarStore
from ibot.history.checkpoint import Checkpoint
from ibot.history.download import Downloader, DownloadOptions
from ibot.history.pacing import PacingRules, PacingScheduler, RequestKey
from ibot.history.plan import bar_spec, contract_windows
from ibot.sim.background import serve_in_thread
from ibot.sim.pacing import SimLimits
from ibot.sim.server import SimServer

IB_WINDOW_S, IB_PER_WINDOW = 600.0, 60


def continuous_build_rate(store: BarStore, keys: list[str]) -> float | None:
    """Bars/s of building the continuous series (backward-spread, in memory) from the per-contract 1-min bars
    just downloaded (`keys` in `store`): reading the months (`load_chain`) and stitching, adjusting and
    assembling them (`build_series`), counted in per-contract bars read. Best of three; None without keys."""
    products = sorted({key[:-2] for key in keys})
    if not products:
        return None
    best = float("inf")
    bars = 0
    for _ in range(3):
        began = time.perf_counter()
        bars = 0
        for product in products:
            chain = load_chain(store, product, "1min")
            bars += sum(len(c.bars) for c in chain)
            build_series(product, "1min", Adjust.BACKWARD_SPREAD, chain)
        best = min(best, time.perf_counter() - began)
    return bars / best


async def download(port: int, data: Path, scale: float, first: date, last: date) -> dict[str, Any]:
    connection = IBConnection(IBSettings(port=port), ClientRole.DATA_HISTORICAL)
    await connection.start(wait=True, timeout=10)
    sends: list[float] = []
    try:
        source = IBHistorySource(connection)
        scheduler = PacingScheduler(PacingRules(scale=scale))

        def sent(_: RequestKey) -> None:
            sends.append(time.monotonic())

        scheduler.on_sent = sent
        spec = bar_spec("1 min")
        with Checkpoint.in_data_dir(data) as checkpoint:
            downloader = Downloader(source, BarStore(data), checkpoint, scheduler, DownloadOptions(spec))
            began = time.monotonic()
            stats = await downloader.run(contract_windows("MES", first, last))
            wall = time.monotonic() - began
    finally:
        await connection.stop()
    return {"stats": stats, "wall": wall, "sends": sends, "rules": scheduler.rules}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=20.0, help="pacing scale K (simulator and scheduler)")
    parser.add_argument("--from", dest="first", default="2024-06-03", help="first trading day")
    parser.add_argument("--to", dest="last", default="2024-11-29", help="last trading day")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    k = args.scale
    limits = SimLimits(
        identical_request_seconds=15.0 / k, same_contract_seconds=2.0 / k, window_seconds=IB_WINDOW_S / k
    )
    server = SimServer(port=0, symbols=["MES"], speed=1.0, start=datetime(2025, 3, 5, 15, 0, tzinfo=UTC),
                       limits=limits)  # fmt: skip
    first, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(server):
        out = asyncio.run(download(server.port, Path(tmp), k, first, last))
        stats, wall, sends, rules = out["stats"], out["wall"], out["sends"], out["rules"]
        report(stats, wall, sends, rules, k, first, last)
        rate = continuous_build_rate(BarStore(tmp), sorted(stats.bars_stored))
        shown = "not measured (no contract stored)" if rate is None else f"{rate:,.0f}"
        print(f"(d) continuous build, bars/s: {shown}")


def report(
    stats: Any, wall: float, sends: list[float], rules: PacingRules, k: float, a: date, b: date
) -> None:
    bars = sum(stats.bars_stored.values())
    print(f"MES 1-min bars {a}..{b}, pacing scale {k:g} (simulator and scheduler)")
    print(
        f"(a) {stats.requests_sent} requests ({stats.fewest_needed} needed), {bars:,} bars in {wall:.1f} s "
        f"= {bars / wall:,.0f} bars/s; contracts {sorted(stats.bars_stored)}; "
        f"pacing violations seen {stats.violations_seen}; pacing waits (summed over workers) "
        f"{stats.pacing_wait_seconds:.1f} s"
    )
    limit = rules.requests_per_second
    ib_limit = IB_PER_WINDOW / (IB_WINDOW_S / k)
    if len(sends) > 2 * IB_PER_WINDOW:
        n = IB_PER_WINDOW
        spans = [sends[i + n] - sends[i] for i in range(n, len(sends) - n)]
        per_60 = sum(spans) / len(spans)
        print(
            f"(b) once the window binds: 60 requests per {per_60:.2f} s = {n / per_60:.2f} req/s "
            f"(scheduler limit {limit:.2f} req/s at scale {k:g}; IB's {ib_limit:.2f}); at scale 1: "
            f"60 per {per_60 * k:.0f} s = {IB_WINDOW_S / (per_60 * k):.1%} of IB's 60 per 600 s"
        )
    else:
        print(
            f"(b) {len(sends)} requests: too few for the window to bind (> 120 needed); "
            f"limit {limit:.2f} req/s"
        )
    one = PacingRules()
    per_request = bars / max(1, stats.fewest_needed)
    rps = one.requests_per_second
    print(
        f"(c) at IB's limits (scale 1): {rps * 3600:.1f} requests/h "
        f"({rps / (IB_PER_WINDOW / IB_WINDOW_S):.1%} of 60 per 10 min) x {per_request:,.0f} bars/request "
        f"= {rps * per_request:,.0f} bars/s, "
        f"{rps * per_request * 3600:,.0f} bars/h"
    )


if __name__ == "__main__":
    main()

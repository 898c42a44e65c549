"""Backtest benchmark: `.venv/bin/python bench/backtest.py [--bars N] [--bt-bars M]`.

Measures, in one run on this machine:
  (a) bars/s of the reference strategy MaBreakout, bars already in memory (engine only);
  (b) the same with load: bars written to a Parquet BarStore in a temp dir, read back, then run;
  (c) peak memory (ru_maxrss) of a fresh subprocess that builds the bars and runs (a);
  (d) the plain 9-SMA reversal (close crosses SMA9 -> reverse at market) in ibot and in backtrader on the same
      slice (default 100,000 bars), with backtrader's feed construction timed separately; ibot runs --runs
      times (best and median shown).
Targets: >= 300,000 bars/s for (a), >= 400,000 bars/s for (d) in ibot (about one fill every five bars: it
measures the order and fill path) and peak memory < 1 GB. Nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from ibot.backtest import Backtester
from ibot.exchange import IB_MICRO_FUTURES
from ibot.model.catalog import get_instrument
from ibot.model.instruments import Instrument

TARGET_BARS_PER_S = 300_000
TARGET_SMA_BARS_PER_S = 400_000  # (d): the order/fill path (issue 16)
TARGET_PEAK_MB = 1024
BARS_PER_GLOBEX_DAY = 23 * 60


def make_bars(inst: Instrument, n: int, seed: int = 7) -> tuple[Any, str]:
    """n one-minute bars: ibot.data.synth when present, else a seeded random walk on the tick grid."""
    try:
        from ibot.data.synth import synth_bars

        days = n // BARS_PER_GLOBEX_DAY + 2
        frame = synth_bars(inst, dt.date(2022, 1, 3), days, "1min", seed)
        if len(frame.ts) >= n:
            from ibot.data.bars import BarFrame

            cols = [getattr(frame, c)[:n] for c in ("ts", "open", "high", "low", "close", "volume")]
            return BarFrame(*cols), "ibot.data.synth_bars"
    except ImportError:
        pass
    rng = np.random.default_rng(seed)
    steps = rng.integers(-2, 3, size=(n, 3))
    c = 20_000 + np.cumsum(steps[:, 0])
    o = np.concatenate(([c[0]], c[:-1]))
    h = np.maximum(o, c) + np.abs(steps[:, 1])
    lo = np.minimum(o, c) - np.abs(steps[:, 2])
    tick = float(inst.tick_size)
    ts = 1_641_168_000_000_000_000 + np.arange(n, dtype=np.int64) * 60_000_000_000
    cols = {"ts": ts, "open": o * tick, "high": h * tick, "low": lo * tick, "close": c * tick}
    cols["volume"] = np.full(n, 100.0)
    return cols, "seeded random walk (ibot.data.synth not available)"


def reference_strategy() -> tuple[Any, str]:
    try:
        from ibot.strategies.ma_breakout import MaBreakout

        return MaBreakout(), "MaBreakout (reference)"
    except ImportError:
        from ibot.strategies.sma_reversal import SmaReversal

        return SmaReversal(), "SmaReversal (FALLBACK: MaBreakout not found)"


def sma_reversal() -> Any:
    from ibot.strategies.sma_reversal import SmaReversal

    return SmaReversal(sma_period=9, quantity=1)


def slice_bars(bars: Any, n: int) -> dict[str, np.ndarray]:
    names = ("ts", "open", "high", "low", "close", "volume")
    get = (lambda c: bars[c]) if isinstance(bars, dict) else (lambda c: getattr(bars, c))
    return {c: np.asarray(get(c))[:n] for c in names}


def run_backtrader(bars: dict[str, np.ndarray], inst: Instrument) -> dict[str, float]:
    """The same 9-SMA reversal in backtrader, fed by a DataBase subclass over Python lists."""
    import backtrader as bt

    t0 = time.perf_counter()
    # backtrader's date number: days since 0001-01-01, plus one (bt.date2num(1970-01-01) == 719163.0)
    cols = {
        "dt": (bars["ts"] / 86_400e9 + 719_163.0).tolist(),
        "open": bars["open"].tolist(),
        "high": bars["high"].tolist(),
        "low": bars["low"].tolist(),
        "close": bars["close"].tolist(),
        "volume": bars["volume"].tolist(),
    }

    class ListFeed(bt.feed.DataBase):  # type: ignore[misc]
        def start(self) -> None:
            super().start()
            self._i = 0

        def _load(self) -> bool:
            i = self._i
            if i >= len(cols["dt"]):
                return False
            ln = self.lines
            ln.datetime[0] = cols["dt"][i]
            ln.open[0] = cols["open"][i]
            ln.high[0] = cols["high"][i]
            ln.low[0] = cols["low"][i]
            ln.close[0] = cols["close"][i]
            ln.volume[0] = cols["volume"][i]
            ln.openinterest[0] = 0.0
            self._i = i + 1
            return True

    class Reversal(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.sma = bt.indicators.SMA(self.data.close, period=9)
            self.orders = 0

        def next(self) -> None:
            c0, c1 = self.data.close[0], self.data.close[-1]
            s0, s1 = self.sma[0], self.sma[-1]
            target = 0
            if c1 <= s1 and c0 > s0:
                target = 1
            elif c1 >= s1 and c0 < s0:
                target = -1
            if target:
                delta = target - self.position.size
                if delta:
                    self.orders += 1
                    if delta > 0:
                        self.buy(size=delta)
                    else:
                        self.sell(size=-delta)

    feed = ListFeed()
    t_feed = time.perf_counter() - t0
    # backtrader's own pass over the feed (preload + an empty strategy), which the real run repeats
    empty = bt.Cerebro(stdstats=False)
    empty.adddata(ListFeed())
    empty.addstrategy(bt.Strategy)
    t2 = time.perf_counter()
    empty.run()
    t_preload = time.perf_counter() - t2
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(feed)
    cerebro.addstrategy(Reversal)
    cerebro.broker.setcash(1e12)  # no margin refusals: both engines execute every order (same fills)
    cerebro.broker.setcommission(
        commission=float(IB_MICRO_FUTURES.per_contract), margin=2_000.0, mult=float(inst.multiplier)
    )
    t1 = time.perf_counter()
    strat = cerebro.run()[0]
    t_run = time.perf_counter() - t1
    n = len(cols["dt"])
    return {
        "feed_s": t_feed,
        "preload_s": t_preload,
        "run_s": t_run,
        "bars_per_s": n / t_run,
        "orders": strat.orders,
    }


def child_memory(n: int) -> None:
    """Subprocess body for (c): build the bars, run the reference strategy, print peak RSS in MB."""
    inst = get_instrument("MES")
    bars, _ = make_bars(inst, n)
    strat, _ = reference_strategy()
    Backtester(inst, strat, bars).run()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000, help="1-min bars for (a)-(c)")
    ap.add_argument("--bt-bars", type=int, default=100_000, help="bars for the backtrader comparison (d)")
    ap.add_argument("--runs", type=int, default=3, help="ibot runs of (d) (best and median are shown)")
    ap.add_argument("--child-mem", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.runs < 1:
        ap.error(f"--runs {args.runs}: give at least 1 run")
    if args.child_mem:
        child_memory(args.bars)
        return

    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    inst = get_instrument("MES")
    t = time.perf_counter()
    bars, source = make_bars(inst, args.bars)
    gen_s = time.perf_counter() - t
    n = len(slice_bars(bars, args.bars)["ts"])
    console.print(f"{n:,} x 1-min {inst.key} bars from {source} in {gen_s:.2f} s")
    rows: list[tuple[str, str, str]] = []

    # (a) engine only ------------------------------------------------------------------------------------
    strat, label = reference_strategy()
    gc.collect()
    t = time.perf_counter()
    bt_ref = Backtester(inst, strat, bars)
    setup_s = time.perf_counter() - t
    res = bt_ref.run()
    a_bps = res.bars_per_second
    ok = "ok" if a_bps >= TARGET_BARS_PER_S else "MISSED"
    rows.append(
        (
            f"(a) {label}, bars in memory",
            f"{a_bps:,.0f} bars/s  ({res.elapsed_s:.2f} s)",
            f">= {TARGET_BARS_PER_S:,} bars/s: {ok}",
        )
    )
    rows.append(("    validation + setup before run", f"{setup_s:.2f} s", ""))
    m = res.metrics
    rows.append(("    its result", f"{m.trades:,} trades, {res.fills:,} fills, net {m.net_pnl:,.2f} USD", ""))
    del bt_ref, res
    gc.collect()

    # (b) with load --------------------------------------------------------------------------------------
    from ibot.data.bars import BarFrame
    from ibot.data.store import BarStore

    cols = slice_bars(bars, n)
    with tempfile.TemporaryDirectory(prefix="ibot-bench-") as tmp:
        store = BarStore(Path(tmp))
        t = time.perf_counter()
        store.write(inst.key, "1 min", BarFrame(*cols.values()))
        write_s = time.perf_counter() - t
        t = time.perf_counter()
        frame = store.read(inst.key, "1 min")
        read_s = time.perf_counter() - t
        strat, _ = reference_strategy()
        res = Backtester(inst, strat, frame).run()
        total_b = time.perf_counter() - t
    rows.append(
        (
            "(b) read Parquet BarStore + validate + run",
            f"{n / total_b:,.0f} bars/s  ({total_b:.2f} s)",
            f"read {read_s:.2f} s (write {write_s:.2f} s, untimed)",
        )
    )
    del res, frame
    gc.collect()

    # (c) peak memory ------------------------------------------------------------------------------------
    out = subprocess.run(
        [sys.executable, __file__, "--child-mem", "--bars", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    peak_mb = float(out.stdout.strip().splitlines()[-1])
    rows.append(
        (
            "(c) peak memory, fresh process (bars + run)",
            f"{peak_mb:,.0f} MB",
            f"< {TARGET_PEAK_MB:,} MB: {'ok' if peak_mb < TARGET_PEAK_MB else 'MISSED'}",
        )
    )

    # (d) 9-SMA reversal: ibot vs backtrader on the same slice ---------------------------------------------
    k = min(args.bt_bars, n)
    part = slice_bars(bars, k)
    # ibot's run is short (a fraction of a second), so on a shared machine one run can catch a busy moment:
    # it runs `--runs` times; the target is checked on the best run, the ratio uses the median one.
    runs_i = sorted(
        (Backtester(inst, sma_reversal(), part).run() for _ in range(args.runs)), key=lambda r: r.elapsed_s
    )
    res_i = runs_i[len(runs_i) // 2]
    res_full = min(
        (Backtester(inst, sma_reversal(), bars).run() for _ in range(args.runs)), key=lambda r: r.elapsed_s
    )

    def d_note(res: Any) -> str:
        ok = "ok" if res.bars_per_second >= TARGET_SMA_BARS_PER_S else "MISSED"
        return f"{res.fills:,} fills; >= {TARGET_SMA_BARS_PER_S:,} bars/s: {ok}"

    rows.append(
        (
            f"(d) SmaReversal(9) ibot, {n:,} bars",
            f"best of {args.runs}: {res_full.bars_per_second:,.0f} bars/s  ({res_full.elapsed_s:.2f} s)",
            d_note(res_full),
        )
    )
    rows.append(
        (
            f"(d) SmaReversal(9) ibot, {k:,} bars",
            f"best of {args.runs}: {runs_i[0].bars_per_second:,.0f} bars/s  ({runs_i[0].elapsed_s:.2f} s)",
            d_note(runs_i[0]),
        )
    )
    rows.append(
        (
            "",
            f"median: {res_i.bars_per_second:,.0f} bars/s  ({res_i.elapsed_s:.2f} s)",
            "",
        )
    )
    try:
        btr = run_backtrader(part, inst)
        rows.append(
            (
                f"(d) same in backtrader, {k:,} bars",
                f"{btr['bars_per_s']:,.0f} bars/s",
                f"{int(btr['orders']):,} orders; feed: lists built in {btr['feed_s']:.3f} s (not in run), "
                f"feed load + empty strategy alone {btr['preload_s']:.2f} s",
            )
        )
        rows.append(
            ("(d) ibot (median run) / backtrader", f"{res_i.bars_per_second / btr['bars_per_s']:.1f} x", "")
        )
    except ImportError:
        rows.append(("(d) backtrader", "not installed", ""))

    table = Table(
        title=f"ibot backtest benchmark (Python {sys.version.split()[0]}, fees "
        f"{IB_MICRO_FUTURES.per_contract} USD/contract/side, capital {Decimal(25_000):,})"
    )
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_column("target / note")
    for r in rows:
        table.add_row(*r)
    console.print(table)


if __name__ == "__main__":
    main()

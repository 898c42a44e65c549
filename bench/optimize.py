"""Sweep-path benchmark: `.venv/bin/python bench/optimize.py [--bars N] [--repeat R] [--no-engine]
[--trials T]`.

Measures, in one run on this machine (printed figures; nothing asserted):
  (a) the plain 9-SMA reversal, compiled twin (ibot.strategies.twins.sma_reversal) against vectorbt on the
      same bars, bars/s and the ratio (target: the twin >= 4x vectorbt). What each side computes, per trial:
        twin     - SMA(9) of the close (the streaming SMA, bit for bit), the cross signals, market fills at
                   the next bar's open, position and cash per bar, then `summarize`: round trips, exact net
                   P&L (Decimal), trades per trading day and the equity curve (float fees per fill, as the
                   engine marks it). Bars are prepared once (validation, ticks, trading days), as a study
                   does.
        vectorbt - vbt.MA.run(close, 9) (its compiled SMA), the same crosses with numpy, shifted one bar so an
                   order fills at the next bar's open (price=open), Portfolio.from_signals with size 1
                   contract (prices in dollars: points x multiplier), long and short entries, reversal on an
                   opposite entry (upon_opposite_entry="reverse": one order closes and opens, as ibot's 2-lot
                   order), fees as a fraction of each order's value equal to USD 0.62 per contract, no
                   slippage, then total_profit(). vectorbt leaves the last position open (marked at the last
                   close); ibot closes it there, paying one more fee - the two P&Ls printed differ by that.
      Both are warmed up (numba JIT) on a small slice first; each is then timed `--repeat` times: best and
      median are printed. The full twin run (validation + Trade objects + BacktestResult) and, unless
      --no-engine, the event-driven Backtester are timed once for scale.
  (b) the reference strategy MaBreakout (defaults) through its twin: per-trial path and full run, bars/s.
  (c) trials/s of a study (`ibot optimize`'s service) at 1 and 2 local jobs; see `bench_study` below.
Bars: ~1M one-minute bars from ibot.data.synth (as bench/backtest.py makes them); --bars for fewer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from ibot.backtest.compiled import TwinRun
from ibot.backtest.engine import Backtester
from ibot.data.bars import BarFrame
from ibot.data.synth import synth_bars
from ibot.exchange.fees import IB_MICRO_FUTURES
from ibot.exchange.matching import DailySessions, FillRules
from ibot.model.catalog import get_instrument
from ibot.model.instruments import Instrument
from ibot.strategies.ma_breakout import MaBreakout
from ibot.strategies.sma_reversal import SmaReversal
from ibot.strategies.twins import ma_breakout as ma_twin
from ibot.strategies.twins import sma_reversal as sma_twin
from ibot.strategies.twins.result import BarData, prepare, summarize

BARS_PER_GLOBEX_DAY = 23 * 60
CAPITAL = Decimal(25_000)


def make_bars(inst: Instrument, n: int, seed: int = 7) -> BarFrame:
    """n one-minute bars from ibot.data.synth."""
    days = n // BARS_PER_GLOBEX_DAY + 2
    frame = synth_bars(inst, dt.date(2022, 1, 3), days, "1min", seed)
    return BarFrame(*(getattr(frame, c)[:n] for c in ("ts", "open", "high", "low", "close", "volume")))


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(best, median) seconds over `repeat` calls, and the last call's value."""
    times = []
    out: Any = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), out


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>14,.0f} bars/s"


# (a) ----------------------------------------------------------------------------------------------------


def twin_trial(data: BarData, strategy: Any, module: Any) -> Any:
    """One sweep trial on prepared bars: the compiled kernel, then the objective's inputs (no Trades)."""
    fills = module.simulate(data, strategy.p, FillRules())
    return summarize(data, fills, IB_MICRO_FUTURES, CAPITAL)


def vectorbt_trial(frame: BarFrame, inst: Instrument, period: int) -> float:
    """The same 9-SMA reversal in vectorbt, from the close to the total profit (see the module doc)."""
    import vectorbt as vbt

    mult = float(inst.multiplier)
    close = frame.close
    sma = vbt.MA.run(close, period).ma.to_numpy()
    prev_c = np.concatenate(([np.nan], close[:-1]))
    prev_m = np.concatenate(([np.nan], sma[:-1]))
    up = (prev_c <= prev_m) & (close > sma)
    down = ~up & (prev_c >= prev_m) & (close < sma)
    # A signal at bar t's close is an order at bar t+1's open.
    long_in = np.concatenate(([False], up[:-1]))
    short_in = np.concatenate(([False], down[:-1]))
    price = frame.open * mult
    pf = vbt.Portfolio.from_signals(
        close=close * mult,
        entries=long_in,
        short_entries=short_in,
        price=price,
        size=1.0,
        size_type="amount",
        upon_opposite_entry="reverse",
        fees=float(IB_MICRO_FUTURES.per_contract) / price,
        init_cash=1e12,
    )
    return float(pf.total_profit())


def bench_sma(frame: BarFrame, inst: Instrument, repeat: int, engine: bool) -> None:
    n = len(frame.ts)
    strategy = SmaReversal(sma_period=9, quantity=1)
    warm = make_bars(inst, 5_000, seed=3)
    wdata = prepare(inst, warm)
    twin_trial(wdata, strategy, sma_twin)
    vectorbt_trial(warm, inst, 9)

    data = prepare(inst, frame)
    t_best, t_med, summary = timed(lambda: twin_trial(data, strategy, sma_twin), repeat)
    v_best, v_med, v_profit = timed(lambda: vectorbt_trial(frame, inst, 9), repeat)
    print(f"(a) plain SMA(9) reversal, {n:,} bars of {inst.symbol} 1-min (best / median of {repeat})")
    print(f"    ibot twin, per trial  {rate(n, t_best)}  / {rate(n, t_med)}")
    print(f"    vectorbt from_signals {rate(n, v_best)}  / {rate(n, v_med)}")
    print(
        f"    ratio twin / vectorbt  {v_best / t_best:>6.1f}x best, {v_med / t_med:.1f}x median "
        "(target >= 4x)"
    )
    print(
        f"    P&L: ibot net {summary.net_pnl} USD over {summary.trades:,} trades (closed at the end); "
        f"vectorbt total profit {v_profit:,.2f} USD (last position left open)"
    )
    spec = TwinRun(strategy, inst, frame, IB_MICRO_FUTURES, FillRules(), DailySessions(), CAPITAL)
    full_best, _, _ = timed(lambda: sma_twin.run(spec), 1)
    print(f"    ibot twin, full run   {rate(n, full_best)}  (validation + Trade objects + BacktestResult)")
    if engine:
        t0 = time.perf_counter()
        Backtester(inst, SmaReversal(sma_period=9, quantity=1), frame).run()
        print(f"    event-driven engine   {rate(n, time.perf_counter() - t0)}  (same result, for scale)")


# (b) ----------------------------------------------------------------------------------------------------


def bench_breakout(frame: BarFrame, inst: Instrument, repeat: int, engine: bool) -> None:
    n = len(frame.ts)
    strategy = MaBreakout()
    twin_trial(prepare(inst, make_bars(inst, 5_000, seed=3)), strategy, ma_twin)
    data = prepare(inst, frame)
    best, med, summary = timed(lambda: twin_trial(data, strategy, ma_twin), repeat)
    print(f"(b) reference strategy MaBreakout (defaults), {n:,} bars (best / median of {repeat})")
    print(f"    ibot twin, per trial  {rate(n, best)}  / {rate(n, med)}   ({summary.trades:,} trades)")
    spec = TwinRun(strategy, inst, frame, IB_MICRO_FUTURES, FillRules(), DailySessions(), CAPITAL)
    full_best, _, _ = timed(lambda: ma_twin.run(spec), 1)
    print(f"    ibot twin, full run   {rate(n, full_best)}  (validation + Trade objects + BacktestResult)")
    if engine:
        t0 = time.perf_counter()
        Backtester(inst, MaBreakout(), frame).run()
        print(f"    event-driven engine   {rate(n, time.perf_counter() - t0)}  (same result, for scale)")


# (c) ----------------------------------------------------------------------------------------------------


def bench_study(frame: BarFrame, inst: Instrument, trials: int) -> None:
    """(c) trials/s of a study at 1 and 2 local jobs: `run_optimize` (the service behind `ibot optimize`) of
    MaBreakout on the same bars (5-min bars built from them), a fresh SQLite study each, with the default
    held-out tail (every trial is also tested out of sample) and no HTML report. The wall time counts
    everything a user waits for: loading the bars, the worker processes' start (jobs=2 runs two
    `ibot optimize --worker` processes), the trials and the out-of-sample runs."""
    from ibot.app.optimize import OptimizeRequest, run_optimize
    from ibot.data.store import BarStore

    with tempfile.TemporaryDirectory(prefix="ibot-bench-opt-") as tmp:
        root = Path(tmp)
        BarStore(root / "data").write(inst.symbol, "1min", frame)
        rates: dict[int, float] = {}
        steady: dict[int, float] = {}
        for jobs in (1, 2):
            request = OptimizeRequest(
                strategy="ma_breakout", symbol=inst.symbol, bar="5min", trials=trials, jobs=jobs,
                objectives=("sharpe",), study=f"bench-{jobs}", data_dir=root / "data",
                out_dir=root / f"out{jobs}", write_report=False, seed=1,
            )  # fmt: skip
            started = time.perf_counter()
            outcome = run_optimize(request)
            wall = time.perf_counter() - started
            done = outcome.counts.finished
            rates[jobs] = done / wall
            steady[jobs] = done / _trial_span(outcome.storage, outcome.study)
            print(
                f"(c) study, {jobs} job(s): {done} trials in {wall:.1f} s = {rates[jobs]:.2f} trials/s; "
                f"{steady[jobs]:.2f} trials/s from the first trial's start to the last one's end"
            )
        print(
            f"(c) 2 jobs / 1 job: {rates[2] / rates[1]:.2f}x overall, {steady[2] / steady[1]:.2f}x while "
            f"trials run ({len(frame):,} 1-min bars as 5-min bars, MaBreakout via its compiled twin)"
        )


def _trial_span(storage: str, study: str) -> float:
    """Seconds from the first trial's start to the last trial's end, read from the study's storage."""
    import optuna

    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    return max((max(ends) - min(starts)).total_seconds(), 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000, help="1-min bars (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=5, help="timed repetitions per path (best and median)")
    ap.add_argument("--no-engine", action="store_true", help="skip the event-driven runs printed for scale")
    ap.add_argument("--trials", type=int, default=40, help="trials per study in (c) (default 40)")
    args = ap.parse_args()
    inst = get_instrument("MES")
    frame = make_bars(inst, args.bars)
    bench_sma(frame, inst, args.repeat, not args.no_engine)
    bench_breakout(frame, inst, args.repeat, not args.no_engine)
    bench_study(frame, inst, args.trials)


if __name__ == "__main__":
    main()

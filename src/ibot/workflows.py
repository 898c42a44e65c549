"""Application services behind the CLI: each takes plain arguments, does one job, returns plain data."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from ibot.config import load_settings
from ibot.data.bars import bar_size_name, resample_bars
from ibot.data.store import BarStore
from ibot.data.synth import synth_bars
from ibot.model import catalog
from ibot.model.errors import ParameterError
from ibot.model.market import ns_to_datetime
from ibot.strategies import get_strategy
from ibot.strategy.params import parse_assignments

SOURCE_BAR = "1min"


def _store(data_dir: Path | None) -> BarStore:
    return BarStore(data_dir or load_settings().data_dir)


def synth_to_store(
    symbol: str, days: int, bar: str, start: date, seed: int, data_dir: Path | None, progress: bool = False
) -> dict[str, Any]:
    """Generate `days` sessions of seeded synthetic bars for `symbol` and append them to the store."""
    inst = catalog.get_instrument(symbol)
    store = _store(data_dir)
    with Progress(transient=True, disable=not progress) as bar_progress:
        task = bar_progress.add_task(f"synthesizing {inst.symbol}", total=None)
        frame = synth_bars(
            inst, datetime(start.year, start.month, start.day, tzinfo=UTC), days, bar, seed=seed
        )
        rows = store.write(inst.symbol, bar, frame)
        bar_progress.update(task, completed=1, total=1)
    return {
        "symbol": inst.symbol,
        "bar": bar_size_name(bar),
        "generated": len(frame),
        "rows": rows,
        "path": str(store.path(inst.symbol, bar)),
    }


def list_store(data_dir: Path | None) -> list[dict[str, Any]]:
    """One row per stored series."""
    rows = []
    for e in _store(data_dir).list():
        d = asdict(e)
        d["first"] = ns_to_datetime(e.first_ts).isoformat() if e.first_ts is not None else None
        d["last"] = ns_to_datetime(e.last_ts).isoformat() if e.last_ts is not None else None
        d.pop("first_ts", None)
        d.pop("last_ts", None)
        d["path"] = str(e.path)
        rows.append(d)
    return rows


def _commission(text: str | None) -> Any:
    from ibot.exchange.fees import IB_MICRO_FUTURES, FeeModel

    if text is None:
        return IB_MICRO_FUTURES
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ParameterError(f"--commission {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ParameterError(f"--commission {text!r} must be a finite amount >= 0")
    return FeeModel(broker=value, exchange=Decimal(0), regulatory=Decimal(0))


def run_backtest(
    symbol: str,
    bar: str,
    strategy: str,
    params: list[str],
    days: int,
    seed: int,
    slippage_ticks: int,
    commission: str | None,
    data_dir: Path | None,
    out_dir: Path | None,
    chart: bool,
    progress: bool,
    console: Console,
) -> dict[str, Any]:
    """Backtest `strategy` on `symbol`: stored 1-min bars resampled to `bar` (synthesized first if none)."""
    from ibot.backtest.chart import write_html, write_png
    from ibot.backtest.engine import Backtester
    from ibot.backtest.report import render_table

    inst = catalog.get_instrument(symbol)
    strategy_cls = get_strategy(strategy)
    strat = strategy_cls(**parse_assignments(params, owner=strategy))
    interval = bar_size_name(bar)
    fees = _commission(commission)
    store = _store(data_dir)
    entries = {(e.symbol, e.bar_size) for e in store.list()}
    if (inst.symbol, SOURCE_BAR) not in entries:
        if progress:
            console.print(
                f"no stored bars for {inst.symbol}: generating {days} sessions of synthetic 1-min bars"
            )
        synth_to_store(inst.symbol, days, SOURCE_BAR, date(2025, 1, 6), seed, store.root, progress)
    frame = store.read(inst.symbol, SOURCE_BAR)
    if interval != SOURCE_BAR:
        frame = resample_bars(frame, interval)
    result = Backtester(inst, strat, frame, fees=fees, slippage_ticks=slippage_ticks).run(progress=progress)
    out = out_dir or load_settings().out_dir / "backtest"
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{inst.symbol}_{interval}_{strategy}"
    files = {
        "trades_csv": str(result.write_trades_csv(out / f"{stem}_trades.csv")),
        "trades_parquet": str(result.write_trades_parquet(out / f"{stem}_trades.parquet")),
    }
    if chart:
        files["chart_html"] = str(write_html(result, out / f"{stem}.html"))
        files["chart_png"] = str(write_png(result, out / f"{stem}.png"))
    if progress:
        console.print(render_table(result))
        for name, path in files.items():
            console.print(f"  {name}: {path}")
    summary = result.to_dict()
    summary["files"] = files
    return summary

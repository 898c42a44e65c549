"""The backtest service: a strategy on stored bars (a seeded synthetic market generated first when the store
has none), its report, trades and chart files. Synchronous (CPU and file work), prints nothing; the result is
typed and its `to_dict()` is the `--json` payload."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ibot.app.data import SOURCE_BAR, SynthResult, bar_store, data_root, synth_to_store
from ibot.app.progress import ProgressCallback, ProgressUpdate, report
from ibot.app.strategies import make_strategy
from ibot.config import check_directory_target, ensure_directory, load_settings
from ibot.data.bars import bar_size_name, format_time, parse_interval, resample_bars
from ibot.data.store import BarStore
from ibot.model import catalog
from ibot.model.errors import ParameterError

if TYPE_CHECKING:
    from ibot.backtest.report import BacktestResult, Metrics, Trade
    from ibot.backtest.rolls import RollBook
    from ibot.data.bars import BarFrame
    from ibot.exchange.fees import FeeModel

__all__ = ["BacktestFiles", "BacktestOutcome", "BacktestRequest", "load_bars", "run_backtest", "with_profile"]


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """What to backtest and where: `days`/`seed` shape the synthetic market made when nothing is stored;
    `commission` (USD per contract per side, text as typed) replaces IB's micro-futures fees."""

    symbol: str = "MES"
    bar: str = "5min"
    strategy: str = "ma_breakout"
    params: tuple[str, ...] = ()
    days: int = 60
    seed: int = 7
    slippage_ticks: int = 1
    commission: str | None = None
    data_dir: Path | None = None
    out_dir: Path | None = None
    chart: bool = True
    continuous: bool = False  # run on the continuous series of the stored months (ibot.backtest.rolls)
    start: str | None = None  # --from YYYY-MM (continuous only)
    end: str | None = None  # --to YYYY-MM (continuous only)
    adjust: str = "backward-spread"
    profile: Path | None = (
        None  # an `ibot optimize` profile: its strategy, params, range and fees; `params` win
    )
    start_ns: int | None = None  # only bars with start_ns <= ts < end_ns (None: no bound)
    end_ns: int | None = None


@dataclass(frozen=True, slots=True)
class BacktestFiles:
    """The files a backtest wrote (charts only when asked for)."""

    trades_csv: Path
    trades_parquet: Path
    chart_html: Path | None = None
    chart_png: Path | None = None

    def to_dict(self) -> dict[str, str]:
        named = {
            "trades_csv": self.trades_csv,
            "trades_parquet": self.trades_parquet,
            "chart_html": self.chart_html,
            "chart_png": self.chart_png,
        }
        return {k: str(v) for k, v in named.items() if v is not None}


@dataclass(frozen=True, slots=True)
class BacktestOutcome:
    """A finished backtest: the engine's result (report numbers, trades, equity), the files written, the
    first and last bar in the CLI's one time format, and the synthetic data made for it (if any)."""

    result: BacktestResult
    files: BacktestFiles
    start: str | None
    end: str | None
    synthesized: SynthResult | None = None

    @property
    def metrics(self) -> Metrics:
        return self.result.metrics

    @property
    def trades(self) -> list[Trade]:
        return self.result.trades

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (money as exact strings), with `files`: the `--json` payload."""
        summary = self.result.to_dict()
        if self.start is not None:  # the CLI's one time format (the report's own dict keeps ISO)
            summary["start"], summary["end"] = self.start, self.end
        summary["files"] = self.files.to_dict()
        return summary


def run_backtest(request: BacktestRequest, on_progress: ProgressCallback | None = None) -> BacktestOutcome:
    """Backtest `request.strategy` on `request.symbol`: stored bars built up to `request.bar` (synthesized
    first if none are stored). Every argument is checked before anything is created; a bar finer than (or
    not a multiple of) the stored bars is refused, never built from coarser ones."""
    from ibot.backtest.chart import write_html, write_png
    from ibot.backtest.engine import Backtester

    if request.profile is not None:
        request = with_profile(request)
    inst = catalog.get_instrument(request.symbol)
    strat = make_strategy(request.strategy, request.params)
    interval = bar_size_name(request.bar)
    fees = _commission(request.commission)
    out = request.out_dir or load_settings().out_dir / "backtest"
    out_what = "--out" if request.out_dir else "output directory"
    check_directory_target(*data_root(request.data_dir))  # every refusal before anything is created
    check_directory_target(out, out_what)
    hook = _roll_book(request, inst.symbol, interval, fees)  # None unless --continuous
    synthesized = None
    dates = None  # without --continuous, --from/--to bound the stored bars' dates
    if hook is None and (request.start is not None or request.end is not None):
        from ibot.app.continuous import parse_month_range

        dates = parse_month_range(request.start, request.end, need_both=False)
    if hook is not None:
        if request.start_ns is not None or request.end_ns is not None:
            raise ParameterError(
                "a profile's date range applies to stored bars; a --continuous backtest takes --from/--to"
            )
        ensure_directory(out, out_what)
        frame = hook.series.bars
    else:
        frame, synthesized = load_bars(
            inst.symbol, interval, request.data_dir, request.days, request.seed, on_progress,
            before_create=lambda: ensure_directory(out, out_what),
        )  # fmt: skip
        if dates is not None:
            frame = frame.between(dates.start_ns, dates.end_ns)
        if request.start_ns is not None or request.end_ns is not None:
            frame = frame.between(request.start_ns, request.end_ns)
    task = f"backtest {strat.name}"
    report(on_progress, ProgressUpdate(task, 0, len(frame)))
    backtester = Backtester(
        inst, strat, frame, fees=fees, slippage_ticks=request.slippage_ticks, roll_hook=hook
    )
    result = backtester.run(on_progress=lambda done, n: report(on_progress, ProgressUpdate(task, done, n)))
    if hook is not None:
        hook.finish(result)  # the rolls, and each trade in its month at raw prices
    stem = f"{inst.symbol}_{interval}_{request.strategy}" + ("_continuous" if hook is not None else "")
    files = BacktestFiles(
        trades_csv=result.write_trades_csv(out / f"{stem}_trades.csv"),
        trades_parquet=result.write_trades_parquet(out / f"{stem}_trades.parquet"),
        chart_html=write_html(result, out / f"{stem}.html") if request.chart else None,
        chart_png=write_png(result, out / f"{stem}.png") if request.chart else None,
    )
    if not len(frame):
        return BacktestOutcome(result, files, None, None, synthesized)
    first, last = format_time(int(frame.ts[0])), format_time(int(frame.ts[-1]))
    return BacktestOutcome(result, files, first, last, synthesized)


def _roll_book(request: BacktestRequest, symbol: str, interval: str, fees: FeeModel) -> RollBook | None:
    """With --continuous: the hook that rolls the position, over the continuous series of --from..--to
    (built from the stored months); None otherwise (then --from/--to bound the stored bars' dates)."""
    if not request.continuous:
        return None
    from ibot.app.continuous import parse_month_range, series_for_backtest
    from ibot.backtest.rolls import RollBook

    months = parse_month_range(request.start, request.end)
    series = series_for_backtest(symbol, interval, request.adjust, months, request.data_dir)
    return RollBook(series, catalog.get_instrument(symbol), fees)


def load_bars(
    symbol: str,
    interval: str,
    data_dir: Path | None,
    days: int,
    seed: int,
    on_progress: ProgressCallback | None = None,
    *,
    before_create: Callable[[], object] | None = None,
) -> tuple[BarFrame, SynthResult | None]:
    """`symbol`'s stored bars built up to `interval` (a catalog symbol, a normalized bar size), with the
    synthetic market (`days` sessions, `seed`) generated into the store first when it holds none. Every
    refusal comes before anything is created; `before_create` runs just before the first thing is."""
    check_directory_target(*data_root(data_dir))
    source = _source_bar(BarStore(data_root(data_dir)[0]), symbol, interval)
    if source is None and parse_interval(interval) % parse_interval(SOURCE_BAR):
        raise ParameterError(
            f"--bar {interval}: {symbol} has no bars stored, and the synthetic market is made of "
            f"{SOURCE_BAR} bars; a bar is only built from smaller bars that divide it; use a multiple of "
            f"{SOURCE_BAR}"
        )
    if before_create is not None:
        before_create()
    store = bar_store(data_dir, create=True)
    synthesized = None
    if source is None:
        report(on_progress, ProgressUpdate(
            f"synthesizing {symbol}",
            message=f"no stored bars for {symbol}: generating {days} sessions of synthetic 1-min bars",
        ))  # fmt: skip
        synthesized = synth_to_store(
            symbol, days, SOURCE_BAR, seed=seed, data_dir=store.root, on_progress=on_progress
        )
        source = SOURCE_BAR
    frame = store.read(symbol, source)
    if interval != source:
        frame = resample_bars(frame, interval)
    return frame, synthesized


def with_profile(request: BacktestRequest) -> BacktestRequest:
    """`request` with its profile applied: the profile's strategy, symbol, bar size, bar range, slippage and
    commission, and its parameters followed by the request's (a `--param` overrides the profile's)."""
    from dataclasses import replace

    from ibot.optimize.profile import read_profile

    assert request.profile is not None
    profile = read_profile(request.profile)
    return replace(
        request,
        strategy=profile.strategy,
        symbol=profile.symbol,
        bar=profile.bar,
        params=profile.assignments() + tuple(request.params),
        slippage_ticks=profile.slippage_ticks,
        commission=profile.commission,
        start_ns=profile.first_ts,
        end_ns=None if profile.last_ts is None else profile.last_ts + 1,
        profile=None,
    )


def _commission(text: str | None) -> FeeModel:
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


def _source_bar(store: BarStore, symbol: str, interval: str) -> str | None:
    """The stored bar size to build `interval` bars from: 1min when stored, else the largest stored size that
    divides `interval` (bars are only ever built up from smaller ones); None when nothing is stored.

    Refuses (ParameterError) when bars are stored but none can make `interval`: a finer bar, or one that is
    not a multiple of the stored size, is never passed off as what was asked for."""
    folder = store.path(symbol, SOURCE_BAR).parent
    stored = sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []
    if not stored:
        return None
    if SOURCE_BAR in stored and parse_interval(interval) % parse_interval(SOURCE_BAR) == 0:
        return SOURCE_BAR
    want = parse_interval(interval)
    usable = [size for size in stored if want % parse_interval(size) == 0]
    if not usable:
        raise ParameterError(
            f"--bar {interval}: {symbol} has only {', '.join(stored)} bars stored in {store.root}, and a bar "
            "is only built from smaller bars that divide it; use a multiple of the stored size"
        )
    return max(usable, key=parse_interval)

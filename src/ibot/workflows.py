"""Application services behind the CLI: each takes plain arguments, does one job, returns plain data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from ibot.config import check_directory_target, ensure_directory, existing_directory, load_settings
from ibot.data.bars import TIME_FORMAT, bar_size_name, format_time, parse_interval, resample_bars
from ibot.data.store import BarStore
from ibot.data.synth import synth_bars
from ibot.model import catalog
from ibot.model.errors import ParameterError
from ibot.model.market import Bar, ns_to_datetime
from ibot.strategies import get_strategy
from ibot.strategy.params import parse_assignments

SOURCE_BAR = "1min"


def _store(data_dir: Path | None, *, create: bool) -> BarStore:
    """The bar store at `data_dir` (the `--data-dir` option) or the configured data directory.

    `create` (a command that writes): the directory is made if missing; otherwise (a command that reads) a
    missing `--data-dir` is an error, and nothing is created. A file where a directory belongs is an error."""
    root, what = _data_root(data_dir)
    if create:
        ensure_directory(root, what)
    elif data_dir is not None or root.exists():
        existing_directory(root, what)
    return BarStore(root)


def _data_root(data_dir: Path | None) -> tuple[Path, str]:
    """The data directory and how to name it in an error (the option, or where the default comes from)."""
    if data_dir is not None:
        return data_dir, "--data-dir"
    return load_settings().data_dir, "data directory (IBOT_DATA_DIR, ibot.toml)"


def _check_synth_years(start: date, days: int) -> None:
    """Synthetic sessions follow the exchanges' holiday calendars; refuse a range they do not cover."""
    from ibot.model.calendar import MAX_YEAR, MIN_YEAR

    # `days` trading sessions span at most ~7/5 as many calendar days, plus the holidays between them.
    end = start.toordinal() + days * 7 // 5 + 21
    if start.year < MIN_YEAR or end > date(MAX_YEAR, 12, 31).toordinal():
        raise ParameterError(
            f"--start {start.isoformat()} with --days {days}: synthetic sessions follow the exchange "
            f"calendars, which cover {MIN_YEAR}-01-01..{MAX_YEAR}-12-31"
        )


def synth_to_store(
    symbol: str,
    days: int,
    bar: str,
    start: date,
    seed: int,
    data_dir: Path | None,
    progress: bool = False,
    replace: bool = False,
) -> dict[str, Any]:
    """Generate `days` trading sessions of seeded synthetic bars for `symbol` from `start` into the store.

    Stored bars inside the generated range are never overwritten silently: without `replace` that is an
    OverlapError naming the stored range; with it they are replaced, and the summary counts them."""
    inst = catalog.get_instrument(symbol)
    _check_synth_years(start, days)
    with Progress(transient=True, disable=not progress) as bar_progress:
        task = bar_progress.add_task(f"synthesizing {inst.symbol}", total=None)
        frame = synth_bars(
            inst, datetime(start.year, start.month, start.day, tzinfo=UTC), days, bar, seed=seed
        )
        store = _store(data_dir, create=True)  # after the arguments proved good: bad input creates nothing
        report = store.write_range(inst.symbol, bar, frame, replace=replace)
        bar_progress.update(task, completed=1, total=1)
    return {
        "symbol": inst.symbol,
        "bar": bar_size_name(bar),
        "sessions": days,
        "first": format_time(int(frame.ts[0])),
        "last": format_time(int(frame.ts[-1])),
        "generated": len(frame),
        "added": report.added,
        "replaced": report.replaced,
        "rows": report.rows,
        "path": str(store.path(inst.symbol, bar)),
    }


def list_store(data_dir: Path | None, verify: bool = True) -> list[dict[str, Any]]:
    """One row per stored series; with `verify` every file is read fully and a damaged one is marked (its
    `status` says why). A missing `--data-dir` is an error; nothing is created."""
    return [
        {
            "symbol": e.symbol,
            "bar_size": e.bar_size,
            "rows": e.rows,
            "first": format_time(e.first_ts) if e.first_ts is not None else None,
            "last": format_time(e.last_ts) if e.last_ts is not None else None,
            "status": "damaged" if e.problem else ("verified" if verify else "not verified"),
            "problem": e.problem,
            "file_bytes": e.file_bytes,
            "path": str(e.path),
        }
        for e in _store(data_dir, create=False).list(verify=verify)
    ]


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
    out = out_dir or load_settings().out_dir / "backtest"
    out_what = "--out" if out_dir else "output directory"
    check_directory_target(*_data_root(data_dir))  # both refused before anything is created
    ensure_directory(out, out_what)
    store = _store(data_dir, create=True)
    source = _source_bar(store, inst.symbol, interval)
    if source is None:
        if progress:
            console.print(
                f"no stored bars for {inst.symbol}: generating {days} sessions of synthetic 1-min bars"
            )
        synth_to_store(inst.symbol, days, SOURCE_BAR, date(2025, 1, 6), seed, store.root, progress)
        source = SOURCE_BAR
    frame = store.read(inst.symbol, source)
    if interval != source:
        frame = resample_bars(frame, interval)
    result = Backtester(inst, strat, frame, fees=fees, slippage_ticks=slippage_ticks).run(progress=progress)
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
    if len(frame):  # the CLI's one time format (the report's own dict keeps ISO for other callers)
        summary["start"], summary["end"] = format_time(int(frame.ts[0])), format_time(int(frame.ts[-1]))
    summary["files"] = files
    return summary


# --- live trading -------------------------------------------------------------------------------------------


def records_url(db: str | None, create: bool = True) -> str:
    """The records database: `db` checked (a URL of a known back end), else the SQLite file in the data
    directory. `create=False` (a reading command): a missing SQLite file is an error. Creates nothing."""
    from ibot.oms.database import records_url as checked_url

    return checked_url(db, create=create)


def run_live(
    strategy: str,
    symbol: str,
    params: list[str],
    bar: str,
    db: str | None,
    sim: bool,
    sim_speed: float,
    duration: float | None,
    console: Console,
    *,
    seed: int = 7,
    sim_start: datetime | None = None,
    flatten: bool = True,
    lockstep: bool = False,
    status_every: float = 1.0,
    quiet: bool = False,
    log_file: Path | None = None,
) -> dict[str, Any]:
    """Trade `strategy` live on `symbol` (`ibot.app.live`), printing the start-up line and a status line every
    `status_every` wall seconds; returns a summary of this run's orders read back from the records database.
    SIGINT / SIGTERM stop the run gracefully (cancel, flatten when asked, summary); a second one forces it.
    The run's log goes to `log_file` (default <out_dir>/live/ibot_live.log); the terminal shows the status
    lines and errors only."""
    import asyncio

    from ibot.app.live import LiveRunOptions, check_options, describe_final
    from ibot.app.live import run_live as run_live_service
    from ibot.engine.status import render_status

    cls = get_strategy(strategy)
    strat = cls(**parse_assignments(params, owner=strategy))
    url = records_url(db)
    options = LiveRunOptions(
        strat, symbol.upper(), bar, url, sim, sim_speed, duration, seed, sim_start, flatten, lockstep,
        load_settings().records_sync,
    )  # fmt: skip
    check_options(options)  # a run that cannot start creates no log folder and no records file
    _log_to_file(log_file or load_settings().out_dir / "live" / "ibot_live.log")

    def say(text: str) -> None:
        (console.print if not quiet else _stderr)(text)

    def status(session: Any, runner: Any) -> None:
        if not quiet:
            console.print(render_status(session, runner))

    result = asyncio.run(run_live_service(options, on_status=status, status_every=status_every, notice=say))
    records = _open_records(url)
    try:
        summary = orders_summary(records, only=result.order_ids)
    finally:
        records.close()
    summary.update(
        strategy=strat.name,
        params=dict(strat.p),
        symbol=symbol.upper(),
        bar=bar,
        db=url,
        simulated=sim,
        market_seconds=result.market_seconds,
        wall_seconds=result.wall_seconds,
        bars=[tuple(b) for b in result.bars],
        final=describe_final(result),
    )
    if result.flatten_failed:
        say(f"warning: {result.flatten_failed}")
    return summary


def _stderr(text: str) -> None:
    import sys

    sys.stderr.write(text + "\n")


def _open_records(url: str) -> Any:
    from ibot.oms.database import open_records

    return open_records(url)


def _log_to_file(path: Path) -> None:
    """INFO and up of ibot and ib_async to `path`; the terminal keeps ERROR and up (status lines readable)."""
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in root.handlers):
        return
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)
    if not any(isinstance(h, logging.StreamHandler) and h is not to_file for h in root.handlers):
        to_terminal = logging.StreamHandler()
        to_terminal.setLevel(logging.ERROR)
        to_terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(to_terminal)
    root.setLevel(logging.INFO)
    logging.getLogger("ib_async").setLevel(logging.INFO)


def orders_summary(records: Any, only: set[str] | None = None) -> dict[str, Any]:
    """Orders, fills and P&L as the records database holds them (`only`: just these client order ids).

    P&L is exact: cash flows of the fills (price x quantity x multiplier) minus commissions, plus any open
    position marked at its last fill price; `ib_realized` is the sum IB's commission reports gave."""
    from ibot.model.instruments import Instrument

    orders = [o for o in records.orders() if only is None or o.client_order_id in only]
    ids = {o.client_order_id for o in orders}
    fills = [f for f in records.executions() if only is None or f.client_order_id in ids]
    fills.sort(key=lambda f: (f.ts, f.exec_id))
    cache: dict[str, Instrument] = {}
    cash = Decimal(0)
    fees = Decimal(0)
    ib_realized = Decimal(0)
    position: dict[str, int] = {}
    last: dict[str, Decimal] = {}
    for f in fills:
        inst = cache.get(f.symbol)
        if inst is None:
            inst = cache[f.symbol] = catalog.resolve(f.symbol, ns_to_datetime(f.ts).date())
        sign = f.side.sign
        cash -= sign * f.quantity * f.price * inst.multiplier
        fees += f.commission or Decimal(0)
        ib_realized += f.realized_pnl or Decimal(0)
        position[f.symbol] = position.get(f.symbol, 0) + sign * f.quantity
        last[f.symbol] = f.price
    marked = sum((q * last[k] * cache[k].multiplier for k, q in position.items() if q), Decimal(0))
    return {
        "orders": [_order_row(o) for o in orders],
        "fills": [_fill_row(f) for f in fills],
        "positions": {k: q for k, q in position.items() if q},
        "gross_pnl": cash + marked,
        "commissions": fees,
        "net_pnl": cash + marked - fees,
        "ib_realized": ib_realized,
    }


def _order_row(o: Any) -> dict[str, Any]:
    price = o.limit_price if o.limit_price is not None else o.stop_price
    return {
        "created": format_time(o.created_ts) if o.created_ts else "",
        "client_order_id": o.client_order_id,
        "ib_id": o.ib_order_id,
        "strategy": o.strategy,
        "symbol": o.key,
        "side": str(o.side),
        "qty": o.quantity,
        "type": o.order_type,
        "price": price,
        "reason": o.reason,
        "status": str(o.status),
        "filled": o.filled,
        "avg_price": o.avg_fill_price,
    }


def _parse_time(text: str) -> datetime:
    """A time as `_order_row` / `_fill_row` show it (`format_time`), back to an aware datetime."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def _fill_row(f: Any) -> dict[str, Any]:
    return {
        "time": format_time(f.ts),
        "exec_id": f.exec_id,
        "client_order_id": f.client_order_id,
        "symbol": f.symbol,
        "side": str(f.side),
        "qty": f.quantity,
        "price": f.price,
        "commission": f.commission,
        "realized_pnl": f.realized_pnl,
    }


def list_orders(db: str | None) -> dict[str, Any]:
    """Every order record and fill of the records database, with the P&L they add up to."""
    from ibot.oms.database import open_records

    records = open_records(records_url(db, create=False), create=False)
    try:
        summary = orders_summary(records)
        summary["fill_conflicts"] = [_conflict_row(c) for c in records.fill_conflicts()]
        return summary
    finally:
        records.close()


def _conflict_row(c: Any) -> dict[str, Any]:
    """An execution kept aside: its exec id was recorded before with other content (never merged)."""
    return {
        "time": format_time(c.ts),
        "exec_id": c.exec_id,
        "client_order_id": c.client_order_id,
        "symbol": c.symbol,
        "side": str(c.side),
        "qty": c.quantity,
        "price": c.price,
        "differences": c.differences,
    }


def print_orders(summary: dict[str, Any], console: Console, title: str = "") -> None:
    """Rich tables of orders and fills and a P&L line, from `orders_summary`."""
    from rich.table import Table

    def table(name: str, rows: list[dict[str, Any]]) -> Table:
        t = Table(title=name, header_style="bold cyan")
        cols = list(rows[0]) if rows else []
        for c in cols:
            t.add_column(c.replace("_", " "), no_wrap=True)
        for r in rows:
            t.add_row(*("" if r[c] is None else str(r[c]) for c in cols))
        return t

    prefix = f"{title}: " if title else ""
    if not summary["orders"]:
        console.print(f"{prefix}no orders in the records database")
        return
    console.print(table(f"{prefix}orders ({len(summary['orders'])})", summary["orders"]))
    console.print(table(f"{prefix}fills ({len(summary['fills'])})", summary["fills"]))
    pos = ", ".join(f"{k} {v:+d}" for k, v in summary["positions"].items()) or "flat"
    net = summary["net_pnl"]
    style = "green" if net >= 0 else "red"
    console.print(
        f"P&L: gross {summary['gross_pnl']:.2f}  commissions {summary['commissions']:.2f}  "
        f"[bold {style}]net {net:.2f}[/]  (IB realized {summary['ib_realized']:.2f})  position {pos}"
    )
    conflicts = summary.get("fill_conflicts") or []
    if conflicts:
        console.print(table(f"{prefix}executions kept aside, not merged ({len(conflicts)})", conflicts))
        console.print(
            "[bold red]records integrity:[/] these exec ids were recorded before with other content; "
            "the fills above are the first ones recorded. Compare with IB's execution report."
        )


def print_final(summary: dict[str, Any], console: Console) -> None:
    """One line: what ended the run and the state it left (position, open orders, P&L of the trading day)."""
    final = summary.get("final") or {}
    stopped = final.get("stopped_by", "duration")
    why = "the run's duration was reached" if stopped == "duration" else f"stopped by {stopped}"
    if not final.get("traded", True):
        console.print(f"final state ({why} before the session was ready): nothing was sent")
        return
    pos = ", ".join(f"{k} {v:+d}" for k, v in final.get("positions", {}).items()) or "flat"
    open_orders = final.get("open_orders", [])
    realized = final.get("realized_pnl")
    day = final.get("day_pnl")
    pnl = f"realized {realized:+.2f}, day {day:+.2f}" if realized is not None and day is not None else "n/a"
    style = "green" if pos == "flat" and not open_orders else "bold red"
    console.print(
        f"final state ({why}): [{style}]position {pos}, open orders {len(open_orders)}[/], P&L {pnl}"
    )


def write_live_chart(summary: dict[str, Any], path: Path) -> Path:
    """PNG: the live session's bar closes with the fills marked, above its P&L (cash + position x close)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = summary["bars"]
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_p, ax_e) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=[3, 1.4])
    times = [ns_to_datetime(b[0]) for b in bars]
    closes = [b[4] for b in bars]
    ax_p.plot(times, closes, lw=1.0, color="#333333", label=f"{summary['symbol']} {summary['bar']} close")
    fills = summary["fills"]
    mult = float(catalog.get_instrument(summary["symbol"]).multiplier) if bars else 1.0
    for side, color, marker in (("BUY", "#1a9850", "^"), ("SELL", "#d73027", "v")):
        pts = [(_parse_time(f["time"]), float(f["price"]))
               for f in fills if f["side"] == side]  # fmt: skip
        if pts:
            ax_p.scatter(*zip(*pts, strict=True), color=color, marker=marker, s=40, zorder=3, label=side)
    ax_p.legend(loc="upper left", fontsize=8)
    venue = "the built-in simulator" if summary["simulated"] else "IB"
    ax_p.set_title(f"live {summary['strategy']} against {venue}: fills from the records database")
    # equity per bar: fills up to the bar's end (times are whole seconds), marked at the close
    equity = []
    k = 0
    cash = 0.0
    pos = 0
    fees = 0.0
    ordered = sorted(fills, key=lambda f: f["time"])
    step = (bars[1][0] - bars[0][0]) if len(bars) > 1 else 0
    for b in bars:
        end = ns_to_datetime(b[0] + step)
        while k < len(ordered) and _parse_time(ordered[k]["time"]) < end:
            f = ordered[k]
            sign = 1 if f["side"] == "BUY" else -1
            cash -= sign * f["qty"] * float(f["price"]) * mult
            fees += float(f["commission"] or 0)
            pos += sign * f["qty"]
            k += 1
        equity.append(cash + pos * b[4] * mult - fees)
    ax_e.plot(times, equity, lw=1.0, color="#4575b4")
    ax_e.axhline(0, color="#999999", lw=0.6)
    ax_e.set_ylabel("P&L (USD)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_replay(symbols: list[str], data_dir: Path | None) -> dict[str, list[Bar]]:
    """The stored 1-min bars of each symbol for the simulator to replay (MissingBarsError names a gap)."""
    store = _store(data_dir, create=False)
    out: dict[str, list[Bar]] = {}
    for name in symbols:
        inst = catalog.get_instrument(name)
        out[inst.symbol] = store.read(inst.symbol, SOURCE_BAR).bars()
    return out

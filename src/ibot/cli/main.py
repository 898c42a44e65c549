"""The `ibot` command: rich output for people, --json for programs, one clear sentence for every error."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import NoArgsIsHelpError  # Typer 0.29 vendors Click as typer._click

from ibot.cli.render import print_backtest, print_orders, progress_bars, rows_table
from ibot.model.errors import IbotError

# -h and --help everywhere (Click passes a context's settings down to every subcommand).
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


class IbotApp(typer.Typer):
    """The `ibot` command as a program: a usage error (unknown option, bad value) is one line on stderr and
    exit 2, like every other error, instead of Click's boxed usage text. Tests that drive `app` through
    Typer's CliRunner go through Click directly and are unaffected."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("standalone_mode", False)
        try:
            code = super().__call__(*args, **kwargs)
        except NoArgsIsHelpError as exc:
            typer.echo(exc.format_message(), err=True)
            sys.exit(2)
        except typer.TyperException as exc:
            print_error(_usage_sentence(exc))
            sys.exit(exc.exit_code)
        except typer.Abort:
            print_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _usage_sentence(exc: typer.TyperException) -> str:
    """Click's message on one line, with the command it concerns and where to find its help."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        return f"{ctx.command_path}: {message} (see `{ctx.command_path} -h`)"
    return message


def _no_type_tag(self: Any, ctx: Any) -> str | None:
    """Help shows an option's metavar when it declares one (`--db URL`), never a `<bool>`/`<int>` type tag."""
    return self.metavar


# Typer renders every option's Python type as a tag (`--json <bool>`); ibot's help says it in words instead.
typer.core.TyperOption.display_type_rich = _no_type_tag  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _no_type_tag  # type: ignore[method-assign]

app = IbotApp(
    name="ibot",
    help="Futures-first automated trading for Interactive Brokers: data, backtests, simulator, live.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
    rich_markup_mode="markdown",  # a docstring's wrapped lines form one paragraph in --help
)
data_app = typer.Typer(
    help="The Parquet bar store: generate, list, continuous series.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(data_app, name="data")

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def print_error(sentence: str) -> None:
    """One line on stderr: `error: <sentence>` (never wrapped, never read as Rich markup)."""
    err_console.print(f"[bold red]error:[/] {escape(' '.join(sentence.split()))}")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            shown = version("ibot")
        except PackageNotFoundError:  # pragma: no cover - a source tree without install metadata
            shown = "unknown (not installed)"
        typer.echo(f"ibot {shown}")
        raise typer.Exit(0)


@app.callback()
def _main_options(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the ibot version and exit."),
    ] = False,
) -> None:
    """Futures-first automated trading for Interactive Brokers: data, backtests, simulator, live."""


F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def _out_dir_option(value: Path | None) -> Path | None:
    """Refuse at parse time an output directory that cannot be made (a file on its path, no write access)."""
    from ibot.config import PathError, check_directory_target

    if value is not None:
        try:
            check_directory_target(value, "")
        except PathError as exc:
            raise typer.BadParameter(str(exc).strip()) from None
    return value


DataDirOpt = Annotated[Path | None, typer.Option(metavar="DIR", help="Data directory (default from config).")]
DbOpt = Annotated[
    str | None,
    typer.Option(metavar="URL", help="Records database URL (default: SQLite file in the data directory)."),
]


ProfileOpt = Annotated[
    Path | None,
    typer.Option(
        metavar="PATH",
        help="Use an `ibot optimize` profile: strategy, params (--param overrides one), symbol, bar, range.",
    ),
]


def refuse_with_profile(ctx: typer.Context, profile: Path | None, names: tuple[str, ...]) -> None:
    """A `--profile` sets these options: giving one too on the command line is refused, naming it."""
    from typer._click.core import ParameterSource

    if profile is None:
        return
    for name in names:
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            raise typer.BadParameter(
                f"the profile {profile} sets it; drop --{name} or the profile", param_hint=f"--{name}"
            )


def friendly_errors(func: F) -> F:
    """Turn ibot's typed errors into one red sentence and exit code 2, instead of a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except IbotError as exc:
            print_error(str(exc))
            raise typer.Exit(2) from None
        except OSError as exc:  # a path the OS refused that no check above foresaw: still one sentence
            where = f" ({exc.filename})" if exc.filename else ""
            print_error(f"{exc.strerror or exc}{where}")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def forced_stop_exits() -> Iterator[None]:
    """A second SIGINT/SIGTERM during a graceful stop: say what may be left, exit 130 (no traceback)."""
    from ibot.aio import ForcedStop

    try:
        yield
    except ForcedStop as exc:
        err_console.print(
            f"[bold red]stopped:[/] {exc}; orders may still be working at the broker and the position may "
            "not be flat. Every order and fill received so far is in the records (`ibot orders`)."
        )
        raise typer.Exit(130) from None


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


# --- contracts -------------------------------------------------------------------------------------------


@app.command()
@friendly_errors
def contracts(
    asof: Annotated[
        str | None, typer.Option(metavar="DATE", help="As-of date YYYY-MM-DD (default: today).")
    ] = None,
    months: Annotated[int, typer.Option(min=1, max=24, help="Contracts per product.")] = 3,
    symbol: Annotated[
        list[str] | None,
        typer.Option(
            "--symbol", "-s", metavar="SYMBOLS", help="Only these products: -s MES,MNQ or -s MES -s MNQ."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Each product's next contracts: local symbol, last trade date and roll date, as of a date."""
    from ibot.model.catalog import MAX_YEAR, MIN_YEAR, contracts_table

    day = _parse_date(asof, "--asof") if asof else date.today()
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise typer.BadParameter(
            f"{day.isoformat()} is outside the years the contract catalog covers ({MIN_YEAR}..{MAX_YEAR})",
            param_hint="--asof",
        )
    wanted = split_symbols(symbol)
    if symbol and not wanted:
        raise typer.BadParameter(f"{','.join(symbol)!r} names no symbol", param_hint="--symbol")
    rows = contracts_table(day, months, wanted or None)
    if as_json:
        print_json({"asof": day.isoformat(), "contracts": rows})
        return
    cols = [
        "symbol",
        "local_symbol",
        "contract_month",
        "last_trade_date",
        "roll_date",
        "days_to_expiry",
        "is_front",
    ]
    console.print(rows_table(f"Futures contracts as of {day.isoformat()}", rows, cols))


def split_symbols(values: list[str] | None) -> list[str]:
    """Symbols from a repeatable option, each value comma-separated too: `-s MES,MNQ -s MCL` -> 3 symbols
    (upper case, blanks dropped, first occurrence kept)."""
    names = [part.strip().upper() for value in values or [] for part in value.split(",")]
    return list(dict.fromkeys(name for name in names if name))


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2026-11-22", param_hint=option) from None


# --- data --------------------------------------------------------------------------------------------------


@data_app.command("synth")
@friendly_errors
def data_synth(
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Catalog symbol, e.g. MES.")] = "MES",
    days: Annotated[
        int,
        typer.Option(
            min=1,
            max=20000,
            help="Trading sessions to generate (weekends and exchange holidays have none).",
        ),
    ] = 30,
    bar: Annotated[str, typer.Option(help="Bar size, e.g. 1min, 5min.")] = "1min",
    start: Annotated[
        str, typer.Option(metavar="DATE", help="First trading day YYYY-MM-DD (a later one if it has none).")
    ] = "2025-01-06",
    seed: Annotated[int, typer.Option(min=0, help="Random seed: same seed, same market.")] = 7,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace stored bars inside the generated range (refused otherwise)."),
    ] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a seeded synthetic market and add it to the bar store. Stored bars inside the generated
    range are refused unless `--replace` (then the count replaced is reported)."""
    from ibot.app.data import synth_to_store

    first_day = _parse_date(start, "--start")
    with progress_bars(console, enabled=not as_json) as on_progress:
        written = synth_to_store(
            symbol, days, bar, first_day, seed, data_dir, replace=replace, on_progress=on_progress
        )
    if as_json:
        print_json(written.to_dict())
    else:
        console.print(
            f"[green]wrote[/] {written.generated:,} {written.bar} bars of {written.symbol}, "
            f"{written.sessions} trading sessions from {written.first} to {written.last} "
            f"({written.added:,} added, {written.replaced:,} replaced); "
            f"the file holds {written.rows:,} bars: {written.path}"
        )


@data_app.command("list")
@friendly_errors
def data_list(
    data_dir: DataDirOpt = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Read every file fully (checksums, bar rules) and mark a damaged one; "
            "--no-verify reads file footers only.",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """What the bar store holds: symbol, bar size, rows, first and last bar, and whether each file reads."""
    from ibot.app.data import list_store

    series = list_store(data_dir, verify=verify)
    rows = [s.to_dict() for s in series]
    if as_json:
        print_json(rows)
    elif not rows:
        console.print("the bar store is empty: try `ibot data synth --symbol MES`")
    else:
        console.print(rows_table("Bar store", rows, [c for c in rows[0] if c != "problem"]))
        for s in series:
            if s.problem:
                console.print(f"[bold red]damaged:[/] {escape(s.problem)}", soft_wrap=True)


# --- backtest --------------------------------------------------------------------------------------------


@app.command()
@friendly_errors
def backtest(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Catalog symbol, e.g. MES.")] = "MES",
    bar: Annotated[str, typer.Option(help="Bar size the strategy sees, e.g. 5min.")] = "5min",
    strategy: Annotated[str, typer.Option(help="Strategy name (see `ibot strategies`).")] = "ma_breakout",
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Strategy parameter k=v.")] = None,
    days: Annotated[int, typer.Option(min=1, help="Days of synthetic data when the store has none.")] = 60,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the synthetic market when the store has none.")
    ] = 7,
    slippage: Annotated[int, typer.Option(min=0, help="Market-order slippage in ticks.")] = 1,
    commission: Annotated[str | None, typer.Option(help="Commission per contract per side (USD).")] = None,
    data_dir: DataDirOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(metavar="DIR", callback=_out_dir_option, help="Where to write trades and charts."),
    ] = None,
    chart: Annotated[bool, typer.Option(help="Write the equity + price chart (HTML and PNG).")] = True,
    continuous: Annotated[
        bool, typer.Option("--continuous", help="Run on the continuous series of the stored months, rolling.")
    ] = False,
    start: Annotated[
        str | None,
        typer.Option("--from", metavar="DATE", help="First month (2024-01) or day (2024-01-15) of the bars."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", metavar="DATE", help="Last month (2026-06) or day (2026-06-30) of the bars."),
    ] = None,
    adjust: Annotated[
        str,
        typer.Option(metavar="MODE", help="With --continuous: backward-spread or forward-spread (or none)."),
    ] = "backward-spread",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Backtest a strategy on stored bars (or a seeded synthetic market) and print the report. With
    `--continuous --from 2024-01 --to 2026-06`: on the product's continuous series, rolling the position."""
    from ibot.app.backtest import BacktestRequest, run_backtest

    refuse_with_profile(ctx, profile, ("strategy", "symbol", "bar", "slippage", "commission"))
    request = BacktestRequest(
        symbol=symbol,
        bar=bar,
        strategy=strategy,
        params=tuple(param or ()),
        days=days,
        seed=seed,
        slippage_ticks=slippage,
        commission=commission,
        data_dir=data_dir,
        out_dir=out,
        chart=chart,
        continuous=continuous,
        start=start,
        end=end,
        adjust=adjust,
        profile=profile,
    )
    with progress_bars(console, enabled=not as_json) as on_progress:
        outcome = run_backtest(request, on_progress)
    if as_json:
        print_json(outcome.to_dict())
    else:
        print_backtest(outcome, console)


@app.command()
@friendly_errors
def strategies(as_json: JsonOpt = False) -> None:
    """The strategies ibot knows and their parameters (name, default, range)."""
    from ibot.app.strategies import strategy_params

    rows = [p.to_dict() for p in strategy_params()]
    if as_json:
        print_json(rows)
    else:
        console.print(rows_table("Strategies", rows))


# --- simulator ---------------------------------------------------------------------------------------------


@app.command()
@friendly_errors
def sim(
    port: Annotated[int, typer.Option(help="TCP port (TWS paper default 7497; 0 = any free port).")] = 7497,
    host: Annotated[str, typer.Option(help="Address to bind; loopback by default.")] = "127.0.0.1",
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--symbols",
            "-s",
            help="Catalog symbols the start-up line lists: MES,MNQ or -s MES -s MNQ. "
            "Every catalog contract is served either way.",
            show_default="MES,MNQ",
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Market clock speed: 1 = real time, 60 = a minute a second.")
    ] = 1.0,
    max_speed: Annotated[
        bool, typer.Option("--max-speed", help="Advance the market as fast as the clients read.")
    ] = False,
    start: Annotated[
        str | None,
        typer.Option(
            help="Market time to start at, ISO 8601: 2026-12-07T14:30 (no zone = UTC) or "
            "2026-12-07T08:30-06:00.",
            show_default="now",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 0,
    replay: Annotated[
        bool,
        typer.Option("--replay", help="Replay the bar store's 1-min bars, not a synthetic market."),
    ] = False,
    data_dir: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Bar store for --replay (default from config).")
    ] = None,
    no_limits: Annotated[
        bool, typer.Option("--no-limits", help="Switch off the 50 msg/s limit and historical pacing.")
    ] = False,
    pacing_scale: Annotated[
        float,
        typer.Option(
            "--pacing-scale",
            metavar="K",
            help="Divide every historical pacing window (15 s, 2 s, 10 min) by K, for tests and benchmarks; "
            "IB's limits are scale 1.",
        ),
    ] = 1.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault", help="Scripted fault AT:KIND[:ARG], e.g. 30:drop, 60:lost, 65:restored:lost."
        ),
    ] = None,
) -> None:
    """Run the TWS-protocol simulator: an offline IB that any IB API client can connect to.

    The start-up line gives the market time and whether each market is open or closed (and until when);
    Ctrl-C or SIGTERM closes every client's connection and prints a final line (exit 0); a second Ctrl-C
    exits at once."""
    from ibot.sim.launch import build, check_numbers, limits_for, parse_start, parse_symbols, serve
    from ibot.sim.script import parse_fault

    names = parse_symbols(symbols or ["MES,MNQ"])
    check_numbers(port, speed)
    limits = limits_for(no_limits, pacing_scale)
    start_at = parse_start(start) if start is not None else None
    script = [parse_fault(spec) for spec in fault or []]  # refuse a bad script before binding the port
    bars = None
    if replay:
        from ibot.app.data import load_replay

        bars = load_replay(names, data_dir)
    server = build(
        host=host,
        port=port,
        symbols=names,
        speed=None if max_speed else speed,
        seed=seed,
        limits=limits,
        start=start_at,
        replay=bars,
    )
    serve(server, script)


# --- live ------------------------------------------------------------------------------------------------


@app.command()
@friendly_errors
def run(
    ctx: typer.Context,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="Strategy name (see `ibot strategies`); repeat for several, paired in order with --symbol.",
            show_default="[node] strategies, else ma_breakout",
        ),
    ] = None,
    symbol: Annotated[
        list[str] | None,
        typer.Option(
            "--symbol",
            "-s",
            help="Catalog or local symbol, e.g. MES; repeat (one per strategy), or once for every strategy.",
            show_default="MES",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Strategy parameter k=v (name.k=v: for that strategy only)."),
    ] = None,
    bar: Annotated[
        str | None,
        typer.Option(help="Bar size the strategies see (a multiple of 5s).", show_default="5min"),
    ] = None,
    db: DbOpt = None,
    sim: Annotated[
        bool, typer.Option("--sim", help="Trade against the TWS simulator started in this process.")
    ] = False,
    sim_speed: Annotated[
        float, typer.Option(min=0.1, help="Simulator clock speed: market seconds per wall second.")
    ] = 60.0,
    duration: Annotated[
        float | None, typer.Option(min=1, help="Seconds of market time to trade (default: until Ctrl-C).")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the simulator's synthetic market.")] = 7,
    flatten: Annotated[
        bool | None,
        typer.Option(
            "--flatten/--no-flatten",
            help="Close the strategies' positions when the node stops.",
            show_default="[node] flatten, else yes",
        ),
    ] = None,
    lockstep: Annotated[
        bool,
        typer.Option(
            "--lockstep",
            help="With --sim: replay the seeded market bar by bar, waiting for the strategies (repeatable).",
        ),
    ] = False,
    webhook: Annotated[
        bool,
        typer.Option(
            "--webhook",
            help="Host the TradingView webhook door (`webhook` table of ibot.toml, IBOT_WEBHOOK_SECRET).",
        ),
    ] = False,
    webhook_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port of the webhook door.", show_default="[webhook] port"),
    ] = None,
    warmup_bars: Annotated[
        int,
        typer.Option(
            min=0,
            metavar="N",
            help="Closed bars that fill each strategy's indicators before it may act: the stored continuous "
            "series, then IB's bars of the traded month (0: none; --lockstep starts cold).",
        ),
    ] = 500,
    data_dir: DataDirOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the trading node: strategies and doors over one IB order connection and one risk budget.

    Strategies (several, on several instruments) and doors (`--webhook`) share one IB order connection, one
    order manager and one risk budget (`node` table of ibot.toml; flags win).
    TWS / IB Gateway from settings and TWS_API_ADDR/PORT/CLIENTID, or `--sim` for the offline simulator.
    Prints a status line while it runs, then the run's orders and fills from the records database."""
    from ibot.cli.node import NodeFlags, run_node
    from ibot.cli.render import print_final, print_orders

    if lockstep and not sim:
        raise typer.BadParameter("--lockstep needs --sim (the built-in simulator)", param_hint="--lockstep")
    if data_dir is not None and not data_dir.is_dir():
        raise typer.BadParameter(f"{data_dir} is not a directory", param_hint="--data-dir")
    if profile is not None:  # its strategy and parameters; --symbol and --bar may name another contract/size
        from ibot.optimize.profile import read_profile

        refuse_with_profile(ctx, profile, ("strategy",))
        chosen = read_profile(profile)
        strategy, symbol, bar = [chosen.strategy], symbol or [chosen.symbol], bar or chosen.bar
        param = [*chosen.assignments(), *(param or [])]
    flags = NodeFlags(
        strategies=tuple(strategy or ()),
        symbols=tuple(symbol or ()),
        params=tuple(param or ()),
        bar=bar,
        db=db,
        sim=sim,
        sim_speed=sim_speed,
        duration=duration,
        seed=seed,
        flatten=flatten,
        lockstep=lockstep,
        webhook=webhook,
        webhook_port=webhook_port,
        warmup_bars=warmup_bars,
        data_dir=data_dir,
    )
    with forced_stop_exits():
        summary, _ = run_node(flags, console, quiet=as_json)
    if as_json:
        print_json(summary)
    else:
        print_orders(summary, console, title=f"this run ({summary['db']})")
        print_final(summary, console)


@app.command()
@friendly_errors
def orders(
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every order record and fill in the records database, and the P&L they add up to."""
    from ibot.app.records import list_orders

    summary = list_orders(db).to_dict()
    if as_json:
        print_json(summary)
    else:
        print_orders(summary, console)


# --- demo --------------------------------------------------------------------------------------------------

DEMO_SIM_SPEED = 1800.0  # market seconds per wall second: 6 h 30 of market in about 13 s
DEMO_SESSION_SECONDS = 6.5 * 3600  # the RTH session, 08:30-15:00 Chicago


@app.command()
@friendly_errors
def demo(
    out: Annotated[
        Path,
        typer.Option(
            metavar="DIR", callback=_out_dir_option, help="Where to write the report, trades and charts."
        ),
    ] = Path("out/demo"),
    backtest: Annotated[
        bool, typer.Option("--backtest", help="The earlier demo: a 90-day backtest instead of a live run.")
    ] = False,
    webhook: Annotated[
        bool,
        typer.Option(
            "--webhook",
            help="Post TradingView alerts (one bad) to a node on the simulator; show each result.",
        ),
    ] = False,
) -> None:
    """Run the main job on embedded defaults, no IB account needed.

    ma_breakout trades live through ib_async against the TWS simulator (a seeded MES session replayed bar
    by bar in lockstep, so the same seed gives the same numbers), then the orders, fills and P&L read back
    from the records database, and a chart. `--backtest`: the 90-day backtest demo. `--webhook`: alerts
    over HTTP to the node's TradingView door."""
    if backtest:
        _demo_backtest(out)
        return
    if webhook:
        from ibot.cli.demo_webhook import run_webhook_demo

        console.rule("[bold]ibot demo: TradingView alerts over HTTP to a node trading on the TWS simulator")
        with forced_stop_exits():
            run_webhook_demo(out, console)
        return
    from ibot.backtest.chart import write_live_chart
    from ibot.cli.node import NodeFlags, run_node
    from ibot.cli.render import print_final
    from ibot.config import NodeSettings

    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "demo_orders.sqlite"
    db_path.unlink(missing_ok=True)  # a fresh records database per demo run
    console.rule(
        "[bold]ibot demo: ma_breakout live through ib_async against the TWS simulator (MES, 1-min bars)"
    )
    flags = NodeFlags(
        strategies=("ma_breakout",),
        symbols=("MES",),
        bar="1min",
        db=f"sqlite:///{db_path}",
        sim=True,
        sim_speed=DEMO_SIM_SPEED,
        duration=DEMO_SESSION_SECONDS,
        seed=7,
        lockstep=True,
    )
    with forced_stop_exits():  # embedded defaults: the [node] table of an ibot.toml does not apply
        summary, result = run_node(flags, console, settings=NodeSettings(), log_file=out / "demo_live.log")
    console.rule("[bold]read back from the records database")
    print_orders(summary, console, title=str(db_path))
    print_final(summary, console)
    bars = [tuple(b) for b in result.strategies[0].bars] if result.strategies else []
    chart_data = {**summary, "strategy": "ma_breakout", "symbol": "MES", "bar": "1min", "bars": bars}
    chart = write_live_chart(chart_data, out / "demo_live.png")
    console.print(
        f"  {len(bars)} bars, {summary['market_seconds'] / 3600:.1f} h of market in "
        f"{summary['wall_seconds']:.1f} s; records: {db_path}; chart: {chart}; log: {out / 'demo_live.log'}"
    )


def _demo_backtest(out: Path) -> None:
    """`ibot demo --backtest`: 90 sessions of seeded synthetic MES, ma_breakout on 5-min bars, report."""
    from ibot.app.backtest import BacktestRequest, run_backtest

    console.rule("[bold]ibot demo: ma_breakout on a synthetic MES market (5-min bars)")
    request = BacktestRequest(days=90, seed=7, data_dir=out / "data", out_dir=out)
    with progress_bars(console) as on_progress:
        outcome = run_backtest(request, on_progress)
    print_backtest(outcome, console)


import ibot.cli.continuous  # noqa: E402  registers `ibot data continuous` on `data_app`
import ibot.cli.optimize  # noqa: E402  registers `ibot optimize` on `app`
import ibot.cli.webhook  # noqa: E402, F401  registers `ibot webhook` on `app`
from ibot.cli.history import history_app  # noqa: E402

app.add_typer(history_app, name="history")


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

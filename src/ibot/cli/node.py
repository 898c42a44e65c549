"""`ibot run` and the live `ibot demo` as the CLI drives the trading node: pair the repeated `--strategy` /
`--symbol` flags, merge them over the `[node]` table of ibot.toml, add the doors asked for (`--webhook`),
refuse a node that cannot start before anything is created, run it on its own asyncio loop (`asyncio.run`
lives here, never in ibot.app), show its start-up and status lines, and return this run's orders, fills, P&L
and final state as plain data for the renderers."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ibot.aio import run_stoppable
from ibot.model.errors import ParameterError

if TYPE_CHECKING:
    from ibot.app.node import NodeOptions, NodeResult, StrategySpec, TradingNode
    from ibot.config import NodeSettings
    from ibot.engine.runner import LiveRunner
    from ibot.webhook import WebhookDoor

__all__ = ["NodeFlags", "node_options", "pair_strategies", "run_node", "webhook_door"]

DEFAULT_STRATEGY = "ma_breakout"
DEFAULT_SYMBOL = "MES"


@dataclass(frozen=True, slots=True)
class NodeFlags:
    """The command line of `ibot run` as given: None where a flag was not given (the settings decide)."""

    strategies: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    bar: str | None = None
    db: str | None = None
    sim: bool = False
    sim_speed: float = 60.0
    sim_start: datetime | None = None
    duration: float | None = None
    seed: int = 7
    flatten: bool | None = None
    lockstep: bool = False
    webhook: bool = False
    webhook_port: int | None = None
    warmup_bars: int = 500
    data_dir: Path | None = None  # the stored continuous series for the warm-up (None: the settings')


def pair_strategies(strategies: Sequence[str], symbols: Sequence[str]) -> list[tuple[str, str]]:
    """`--strategy` and `--symbol` paired in order; one symbol given once trades every strategy, one
    strategy given once trades every symbol. Anything else is refused naming both counts."""
    names = list(strategies) or [DEFAULT_STRATEGY]
    places = [s.upper() for s in symbols] or [DEFAULT_SYMBOL]
    if len(places) == 1:
        return [(name, places[0]) for name in names]
    if len(names) == 1:
        return [(names[0], place) for place in places]
    if len(names) != len(places):
        raise ParameterError(
            f"--strategy is given {len(names)} times and --symbol {len(places)} times: give one --symbol for "
            "every strategy, one per strategy (paired in order), or one --strategy for every symbol"
        )
    return list(zip(names, places, strict=True))


def _params_for(name: str, params: Sequence[str], several: bool) -> tuple[str, ...]:
    """`-p k=v` for strategy `name`: `-p name.k=v` is for that strategy only; a plain `-p k=v` is for
    every strategy that declares `k` (for the only strategy, whatever it declares: it names a bad one)."""
    from ibot.strategies import get_strategy

    declared = {p.name for p in get_strategy(name).params}
    out: list[str] = []
    for item in params:
        key, _, _ = item.partition("=")
        scope, dot, _ = key.partition(".")
        if dot:
            if scope == name:
                out.append(item[len(scope) + 1 :])
            continue
        if not several or key in declared:
            out.append(item)
    return tuple(out)


def node_options(
    flags: NodeFlags, settings: NodeSettings, records_url: str, *, records_sync: str | None = None
) -> NodeOptions:
    """The node to run: the command line's strategies (or the `[node]` table's, or ma_breakout on MES),
    its venue and stop flags, the settings' risk budget and door symbols; `records_sync`: the records'
    durability (`[ibot] records_sync`; None: $IBOT_RECORDS_SYNC or the default)."""
    from ibot.app.node import NodeOptions, StrategySpec

    specs: list[StrategySpec] = []
    if flags.strategies or flags.symbols or not settings.strategies:
        pairs = pair_strategies(flags.strategies, flags.symbols)
        several = len({name for name, _ in pairs}) > 1
        bar = flags.bar or "5min"
        for name, symbol in pairs:
            specs.append(StrategySpec(name, symbol, bar, _params_for(name, flags.params, several)))
    else:
        for entry in settings.strategies:
            extra = _params_for(entry.strategy, flags.params, len(settings.strategies) > 1)
            specs.append(
                StrategySpec(
                    entry.strategy, entry.symbol.upper(), flags.bar or entry.bar, entry.params + extra
                )
            )
    for spec in specs:
        spec.build()  # an unknown strategy or a bad parameter is refused now, naming it
    return NodeOptions(
        strategies=tuple(specs),
        records_url=records_url,
        sim=flags.sim,
        sim_speed=flags.sim_speed,
        sim_start=flags.sim_start,
        seed=flags.seed,
        lockstep=flags.lockstep,
        duration=flags.duration,
        flatten=settings.flatten if flags.flatten is None else flags.flatten,
        risk=settings.risk,
        symbols=tuple(s.upper() for s in settings.symbols),
        records_sync=records_sync,
        warmup_bars=flags.warmup_bars,
        data_dir=flags.data_dir,
    )


def webhook_door(overrides: Mapping[str, Any]) -> WebhookDoor:
    """The TradingView door from `[webhook]` / IBOT_WEBHOOK_SECRET with the command line's `overrides` (None:
    not given), for `ibot run --webhook` and `ibot webhook`. Its secret (missing: where to set it) and its
    address (a busy port, a host not of this machine) are refused in one sentence before anything starts."""
    try:
        from ibot.webhook import WebhookDoor, load_webhook_settings
        from ibot.webhook.app import _listen
    except ImportError:
        raise ParameterError("the webhook door is not available in this installation") from None
    settings = load_webhook_settings(overrides=overrides)  # ConfigError names the key, never the secret
    door = WebhookDoor(settings)  # refuses a missing secret, naming where to set it
    _listen(settings.host, settings.port).close()  # before IB is contacted
    return door


def run_node(
    flags: NodeFlags,
    console: Console,
    *,
    settings: NodeSettings | None = None,
    quiet: bool = False,
    log_file: Path | None = None,
) -> tuple[dict[str, Any], NodeResult]:
    """Run the node from `flags` over the `[node]` settings (`settings`, default ibot.toml's; the demo passes
    the defaults) until the duration or a signal. Returns this run's orders, fills, P&L, each strategy's bar
    count and the final state as plain data, and the node's result (each strategy's bars). Nothing is created
    (log folder, records file) for a node that cannot start."""
    from ibot.app.node import TradingNode, check_node_options, describe_final
    from ibot.app.records import orders_summary, records_url
    from ibot.cli.live import log_to_file
    from ibot.config import load_node_settings, load_settings
    from ibot.oms.database import open_records

    settings = settings or load_node_settings()  # ConfigError names the key
    ibot_settings = load_settings()
    url = records_url(flags.db)
    options = node_options(flags, settings, url, records_sync=ibot_settings.records_sync)
    check_node_options(options)
    doors = [webhook_door({"port": flags.webhook_port})] if flags.webhook or settings.webhook else []
    log_to_file(log_file or ibot_settings.out_dir / "live" / "ibot_live.log")

    def say(text: str) -> None:
        if quiet:
            sys.stderr.write(text + "\n")
        else:
            console.print(text, highlight=False)

    node = TradingNode(
        options, notice=say, on_status=None if quiet else _status_printer(console), status_every=1.0
    )
    for door in doors:
        node.add(door)
    result = run_stoppable(node.run())
    records = open_records(url)
    try:
        summary = orders_summary(records, only=result.order_ids).to_dict()
    finally:
        records.close()
    summary.update(
        strategies=[
            {
                "strategy": s.name,
                "symbol": s.symbol,
                "instrument": s.instrument,
                "bar": s.bar,
                "bars": len(s.bars),
            }
            for s in result.strategies
        ],
        doors=dict(result.components),
        db=url,
        simulated=options.sim,
        market_seconds=result.market_seconds,
        wall_seconds=result.wall_seconds,
        final=describe_final(result),
    )
    for why in result.flatten_failed:
        say(f"warning: {why}")
    return summary, result


def _status_printer(console: Console) -> Any:
    """A status line per strategy (one line when there is one), then each door's."""
    from ibot.engine.status import render_status

    def show(node: TradingNode) -> None:
        runners: list[LiveRunner | None] = list(node.runners) or [None]
        for runner in runners:
            console.print(render_status(node.session, runner))
        for name, text in node.status().items():
            console.print(f"  {name}: {text}", highlight=False)

    return show

"""`ibot webhook`: a node with only the TradingView door, standalone.

The order connection takes a client id in the TradingView range (8000-8999) of the client-id plan and the IB
address from the usual settings (`[ib]` of ibot.toml, TWS_API_ADDR, TWS_API_PORT); `--sim` trades against the
built-in simulator instead. The secret comes from IBOT_WEBHOOK_SECRET or `[webhook] secret`, never from the
command line (it would show in the process list and the shell's history).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ibot.aio import run_stoppable
from ibot.cli.main import DbOpt, JsonOpt, app, console, forced_stop_exits, friendly_errors, print_json

if TYPE_CHECKING:
    from ibot.app.node import TradingNode
    from ibot.webhook import WebhookDoor

__all__ = ["webhook"]


@app.command()
@friendly_errors
def webhook(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 8000,
    host: Annotated[
        str, typer.Option(help="Address to listen on; put a TLS proxy in front for TradingView.")
    ] = ("127.0.0.1"),
    db: DbOpt = None,
    allow: Annotated[
        str | None,
        typer.Option(
            metavar="LIST",
            help="Sources allowed to post: 'tradingview' (its four published addresses), IPs, networks.",
        ),
    ] = None,
    symbol: Annotated[
        list[str] | None,
        typer.Option(
            "--symbol",
            "-s",
            help=(
                "Instrument to qualify before the first alert (repeat; default: the node's symbols, else "
                "MES). Alerts may trade any catalog instrument; one not listed is qualified on first use."
            ),
        ),
    ] = None,
    sim: Annotated[
        bool, typer.Option("--sim", help="Trade against the simulator started in this process.")
    ] = False,
    sim_speed: Annotated[
        float, typer.Option(min=0.1, help="Simulator speed: market seconds per second.")
    ] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Receive TradingView alerts and trade them through the node's order intake.

    POST /webhook/tradingview; each alert goes through validation, idempotency, the node's risk limits and
    the write-ahead records. Runs until Ctrl-C or SIGTERM."""
    from ibot.app.node import NodeOptions, TradingNode, check_node_options, describe_final
    from ibot.app.records import records_url
    from ibot.brokers.ib.config import ClientRole, load_ib_settings
    from ibot.cli.live import log_to_file
    from ibot.cli.node import webhook_door
    from ibot.cli.render import print_final
    from ibot.config import load_node_settings, load_settings
    from ibot.model import catalog

    door = webhook_door({"host": host, "port": port, "allow": allow})  # secret and address, before IB
    node_settings = load_node_settings()
    symbols = tuple(s.upper() for s in (symbol or node_settings.symbols or ("MES",)))
    for name in symbols:
        catalog.resolve(name, date.today())  # UnknownSymbolError names it
    options = NodeOptions(
        strategies=(),
        records_url=records_url(db),
        sim=sim,
        sim_speed=sim_speed,
        role=ClientRole.TRADINGVIEW,
        risk=node_settings.risk,
        symbols=symbols,
    )
    ib = None
    if sim:
        check_node_options(options)
    else:
        ib = load_ib_settings(overrides={"role": ClientRole.TRADINGVIEW})  # 8000-8999 unless TWS_API_CLIENTID
    log_to_file(load_settings().out_dir / "webhook" / "ibot_webhook.log")
    node = TradingNode(
        options, settings=ib, notice=_say(as_json), on_status=_status(door, as_json), status_every=5
    )
    node.add(door)
    with forced_stop_exits():
        result = run_stoppable(node.run())
    summary = door.summary()
    final = describe_final(result)  # the door flattens nothing: what it leaves open is said
    if as_json:
        print_json(
            {
                "stopped_by": result.stopped_by,
                "alerts": summary,
                "orders": sorted(result.order_ids),
                "final": final,
            }
        )
        return
    shown = ", ".join(f"{n} {verdict}" for verdict, n in sorted(summary.items())) or "none"
    console.print(
        f"webhook stopped ({result.stopped_by or 'done'}): alerts {shown}; {len(result.order_ids)} orders"
    )
    print_final({"final": final}, console)


def _say(quiet: bool) -> Callable[[str], None]:
    def say(text: str) -> None:
        if not quiet:
            console.print(text, highlight=False)

    return say


def _status(door: WebhookDoor, quiet: bool) -> Callable[[TradingNode], None]:
    def show(node: TradingNode) -> None:
        if quiet or not node.ready:
            return
        when = datetime.fromtimestamp(node.clock() / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        console.print(f"market {when} UTC | {door.url} | {door.status()}", highlight=False)

    return show

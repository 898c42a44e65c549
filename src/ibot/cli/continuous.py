"""`ibot data continuous`: build or extend a product's continuous futures series from its stored months."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ibot.cli.main import DataDirOpt, JsonOpt, console, data_app, friendly_errors, print_json
from ibot.cli.render import progress_bars, rows_table

__all__ = ["data_continuous"]


@data_app.command("continuous")
@friendly_errors
def data_continuous(
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Futures product, e.g. MES.")] = "MES",
    bar: Annotated[
        str, typer.Option(help="Bar size of the stored months to build from, e.g. 1min.")
    ] = "1min",
    adjust: Annotated[
        str,
        typer.Option(
            metavar="MODE",
            help="backward-spread (Panama: last month raw), backward-ratio (floats, off the tick grid), "
            "forward-spread (first month raw) or none (spliced as traded).",
        ),
    ] = "backward-spread",
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild", help="Build from the stored months instead of extending the stored series."
        ),
    ] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Splice the stored months of a product (keys like MESH4) into one series at the roll rule's roll bars,
    adjust it, and store it with its roll records; a stored series is extended with the bars stored since."""
    from ibot.app.continuous import ContinuousRequest, build_continuous

    request = ContinuousRequest(symbol=symbol, bar=bar, adjust=adjust, data_dir=data_dir, rebuild=rebuild)
    with progress_bars(console, enabled=not as_json) as on_progress:
        outcome = build_continuous(request, on_progress)
    payload = outcome.to_dict()
    if as_json:
        print_json(payload)
        return
    rows = [
        {"time": r["time"], "from": r["from_contract"], "to": r["to_contract"], "from_price": r["from_price"],
         "to_price": r["to_price"], "roll_day": r["roll_day"]}
        for r in payload["rolls"]
    ]  # fmt: skip
    if rows:
        console.print(rows_table(f"Rolls of {payload['symbol']} ({payload['adjust']})", rows))
    console.print(
        f"[green]{payload['action']}[/] {payload['symbol']} {payload['bar']} {payload['adjust']}: "
        f"{payload['rows']:,} bars ({payload['added']:,} added) from {payload['first']} to "
        f"{payload['last']}, "
        f"{len(payload['rolls'])} rolls over {', '.join(payload['contracts'])}: {Path(payload['path'])}"
    )
    if payload["note"]:
        console.print(f"[yellow]note:[/] {payload['note']}", soft_wrap=True)

"""`ibot demo --webhook`: a node trading on the built-in simulator with the TradingView door, a few alerts
posted to it over real HTTP (one accepted, its retry, one the node's risk budget refuses, and bad ones), and
what each became: the HTTP answer, the verdict and reason the alert store recorded, and the order it made.

No IB account, no settings: the secret is made up for this run (never printed), the door listens on a free
loopback port, the records go to a fresh SQLite file in the output directory."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from ibot.app.node import TradingNode

__all__ = ["run_webhook_demo"]

DEMO_ALERT_WAIT = 10.0  # wall seconds for the posted alerts to be processed and their orders to settle


@dataclass(frozen=True, slots=True)
class _Post:
    what: str
    body: bytes


def _alert(secret: str, **fields: Any) -> bytes:
    base: dict[str, Any] = {
        "secret": secret,
        "ticker": "MES1!",
        "contract": "FUT",
        "exchange": "CME_MINI",
        "order": "MKT",
        "action": "BUY",
        "quantity": "1",
        "reason": "demo",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def _posts(secret: str) -> list[_Post]:
    seed_000 = (  # seed 000's own sample: a comma is missing after "LMT"
        '{"ticker": "MES1!", "contract": "FUT", "exchange": "CME_MINI", "order": "LMT" '
        '"action": "BUY", "price": "5000", "quantity": "1", "reason": "Open-Long"}'
    )
    return [
        _Post("buy 1 MES1! MKT", _alert(secret, id="demo-1", reason="Open-Long")),
        _Post("the same id again", _alert(secret, id="demo-1", reason="Open-Long")),
        _Post("buy 5: past max position 2", _alert(secret, id="demo-2", quantity="5")),
        _Post("sell 1 (lower case)", _alert(secret, id="demo-3", action="sell")),
        _Post("seed 000 sample (bad JSON)", seed_000.encode()),
        _Post("LMT without a price", _alert(secret, id="demo-4", order="LMT")),
        _Post("wrong secret", _alert("not-the-secret", id="demo-5")),
    ]


def run_webhook_demo(out: Path, console: Console) -> list[dict[str, Any]]:
    """Run the demo; one row per posted alert (also printed as a table)."""
    from ibot.app.node import NodeOptions, TradingNode
    from ibot.cli.live import log_to_file
    from ibot.cli.render import rows_table
    from ibot.oms.risk import RiskLimits
    from ibot.webhook import WebhookDoor, WebhookSettings

    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "demo_webhook.sqlite"
    db_path.unlink(missing_ok=True)
    log_to_file(out / "demo_webhook.log")
    secret = secrets.token_urlsafe(24)
    door = WebhookDoor(WebhookSettings(secret=secret, port=0))  # type: ignore[arg-type]
    options = NodeOptions(
        strategies=(),
        records_url=f"sqlite:///{db_path}",
        sim=True,
        sim_speed=60.0,
        symbols=("MES",),
        risk=RiskLimits(max_position=2, max_order_size=5),
    )
    node = TradingNode(options, notice=lambda text: console.print(text, highlight=False))
    node.add(door)
    rows = asyncio.run(_drive(node, door, _posts(secret)))
    console.print(rows_table(f"what each alert became ({db_path})", rows))
    console.print(
        f"  orders recorded by this run: {len(node.result.order_ids)} (one refused by the risk budget, never "
        f"sent); log: {out / 'demo_webhook.log'}",
        highlight=False,
    )
    return rows


async def _drive(node: TradingNode, door: Any, posts: list[_Post]) -> list[dict[str, Any]]:
    """Ctrl-C / SIGTERM stop the demo gracefully (the node stops as `ibot run` does); twice forces it."""
    from ibot.aio import StopSignals

    with StopSignals() as signals:
        return await _post_all(node, door, posts, signals.event)


async def _post_all(
    node: TradingNode, door: Any, posts: list[_Post], stop: asyncio.Event
) -> list[dict[str, Any]]:
    import httpx

    task = asyncio.create_task(node.run(stop))
    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while not node.ready and not task.done() and loop.time() < end:
        await asyncio.sleep(0.05)
    if task.done():
        await task  # it could not start: its error, in one sentence
    answers: list[tuple[str, int, dict[str, Any]]] = []
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            for post in posts:
                if stop.is_set():
                    break
                reply = await client.post(door.url, content=post.body, headers={"content-type": "text/plain"})
                answers.append((post.what, reply.status_code, _json(reply.text)))
                await asyncio.sleep(0.3)  # the market moves on between alerts
        await _settled(node, door)
        return [_row(node, door, what, status, body) for what, status, body in answers]
    finally:
        stop.set()
        await task


async def _settled(node: TradingNode, door: Any) -> None:
    """Until no alert is pending and no order works (or DEMO_ALERT_WAIT seconds)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEMO_ALERT_WAIT
    while loop.time() < end:
        pending = door.store.counts().get("pending", 0) if door.store is not None else 0
        if not pending and not node.session.om.working_orders():
            return
        await asyncio.sleep(0.05)


def _json(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"error": text[:120]}
    return parsed if isinstance(parsed, dict) else {"error": str(parsed)[:120]}


def _row(node: TradingNode, door: Any, what: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    alert = door.store.get(body["alert_id"]) if door.store is not None and "alert_id" in body else None
    cid = (alert.client_order_id if alert is not None else "") or body.get("client_order_id") or ""
    order = node.records.get_order(cid) if cid else None
    verdict = alert.verdict.value if alert is not None else body.get("status", "")
    reason = alert.reason if alert is not None else body.get("error", "")
    return {
        "alert": what,
        "http": status,
        "verdict": verdict,
        "reason": " ".join(str(reason).split())[:80],
        "order": f"{order.status} {order.filled}/{order.quantity}" if order is not None else "none",
    }

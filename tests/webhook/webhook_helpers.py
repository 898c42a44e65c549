"""A node with only the webhook door, on the simulator, and an HTTP client: the rig of the webhook tests.

Everything is real: uvicorn on loopback, httpx as the client, the node's intake and TradingSession, the
unmodified ib_async client, and `ibot.sim.server.SimServer`; the records are a SQLite file (or a PostgreSQL
schema). `door_rig` starts them and stops them in the order the node stops them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ibot.app.node import NodeOptions, TradingNode
from ibot.brokers.ib.config import ClientRole, IBSettings
from ibot.model.market import NS_PER_SECOND
from ibot.oms.risk import RiskLimits
from ibot.sim.orders import SimOrder
from ibot.sim.server import SimServer
from ibot.webhook import WebhookDoor, WebhookSettings
from ibot.webhook.alerts import AlertRecord, AlertStore

SECRET = "tv-test-secret-3f9a1c"
START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)  # a Wednesday, 09:00 Chicago: CME Globex is open
WAIT = 10.0

# Seed 000's sample, verbatim: the line after "exchange" lacks its comma.
SEED_000_SAMPLE = """{
  "ticker": "{{ticker}}",
  "contract": "FUT",
  "exchange": "{{exchange}}"
  "order": "LMT",
  "action": "BUY",
  "price": "90",
  "quantity": "1",
  "reason": "Open-Long"
}"""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert(**fields: Any) -> dict[str, Any]:
    """Seed 000's alert, made valid: a market BUY of 1 MES1! with the secret and {{timenow}}."""
    body: dict[str, Any] = {
        "secret": SECRET,
        "ticker": "MES1!",
        "contract": "FUT",
        "exchange": "CME_MINI",
        "order": "MKT",
        "action": "BUY",
        "price": "5000",
        "quantity": "1",
        "reason": "Open-Long",
        "timenow": now_iso(),
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


def sim_settings(server: SimServer) -> IBSettings:
    return IBSettings.model_validate(
        {
            "port": server.port,
            "connect_timeout": WAIT,
            "reconnect_initial_delay": 0.05,
            "reconnect_max_delay": 0.2,
            "watchdog_poll_seconds": 0.05,
            "stale_after_seconds": 3600.0,
            "restart_window": {"enabled": False},
        }
    )


def sim_orders(server: SimServer) -> list[SimOrder]:
    """Every order the simulated account has seen (working and completed)."""
    return server.broker.open_orders(None) + server.broker.completed_orders()


@dataclass
class DoorRig:
    server: SimServer
    node: TradingNode
    door: WebhookDoor
    client: httpx.AsyncClient

    @property
    def store(self) -> AlertStore:
        assert self.door.store is not None
        return self.door.store

    async def post(self, body: dict[str, Any] | str | bytes, **kwargs: Any) -> httpx.Response:
        if isinstance(body, dict):
            return await self.client.post(self.door.url, json=body, **kwargs)
        return await self.client.post(self.door.url, content=body, **kwargs)

    def sim_orders(self) -> list[SimOrder]:
        return sim_orders(self.server)

    def alerts(self) -> list[AlertRecord]:
        return self.store.alerts()

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not condition():
            if loop.time() > end:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.02)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'orders.sqlite'}"


@asynccontextmanager
async def sim_server(speed: float = 60.0) -> AsyncIterator[SimServer]:
    server = SimServer(port=0, symbols=["MES", "MNQ"], speed=speed, start=START)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def door_rig(
    url: str, server: SimServer, *, risk: RiskLimits | None = None, **door: Any
) -> AsyncIterator[DoorRig]:
    """A node (order connection in the TradingView client-id range, MES for the doors) hosting one door."""
    options = NodeOptions(
        strategies=(),
        records_url=url,
        symbols=("MES",),
        role=ClientRole.TRADINGVIEW,
        risk=risk or RiskLimits(max_position=20, max_order_size=5, price_band_pct=None),
        ready_timeout=WAIT,
    )
    market = server.market
    node = TradingNode(
        options, settings=sim_settings(server), market_clock=lambda: int(market.now_s * NS_PER_SECOND)
    )
    settings = WebhookSettings.model_validate({"secret": SECRET, "port": 0, **door})
    webhook = WebhookDoor(settings)
    node.add(webhook)
    assert await node.start(), "the node did not start"
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            yield DoorRig(server, node, webhook, client)
    finally:
        await node.stop()


def answer(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert isinstance(body, dict)
    return body


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body)

"""Fixtures of the trading-session tests: records databases (SQLite file, PostgreSQL schema), a started TWS
simulator with a `TradingSession` on it, and the end-of-test check that the simulator and our records agree.

PostgreSQL (as in tests/oms): one database per run and one schema per test; if the server is not reachable the
PostgreSQL tests FAIL, never skip.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ibot.brokers.ib.config import IBSettings
from ibot.engine.session import SessionEvent, TradingSession
from ibot.model.instruments import Instrument
from ibot.model.market import NS_PER_SECOND
from ibot.model.orders import OrderStatus, OrderUpdate, Side
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.sim.orders import SimOrder
from ibot.sim.server import SimServer

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_UNREACHABLE = f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT} — start it (make services)"

# A Wednesday at 09:00 Chicago: CME Globex is open.
START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
SPEED = 600.0  # market seconds per wall second
WAIT = 5.0
CLIENT_ID = 1000  # the order manager's first id in the client-id plan

ACKNOWLEDGED = frozenset(
    {OrderStatus.PRE_SUBMITTED, OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL, OrderStatus.FILLED}
)


# --- databases ----------------------------------------------------------------------------------------------


def _admin_connect(dbname: str = "test") -> Any:
    import psycopg

    try:
        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, user="postgres", dbname=dbname, connect_timeout=3, autocommit=True
        )
    except psycopg.OperationalError as exc:
        pytest.fail(f"{PG_UNREACHABLE} ({exc})", pytrace=False)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database for this test run; dropped afterwards."""
    name = f"ibot_engine_test_{uuid.uuid4().hex[:10]}"
    conn = _admin_connect()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    try:
        yield name
    finally:
        conn = _admin_connect()
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """An empty schema of the run's database, as a psycopg URL whose search_path points at it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = _admin_connect(postgres_database)
    with conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
    conn.close()
    yield (
        f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{postgres_database}"
        f"?options=-csearch_path%3D{schema}"
    )
    conn = _admin_connect(postgres_database)
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
    conn.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'orders.sqlite'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The records database URL: a SQLite file, then a schema on the PostgreSQL server."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


# --- the simulator and the session --------------------------------------------------------------------------


def sim_settings(server: SimServer, **overrides: Any) -> IBSettings:
    """Settings for the simulator: quick backoff and polling, no restart window."""
    values: dict[str, Any] = {
        "port": server.port,
        "connect_timeout": WAIT,
        "reconnect_initial_delay": 0.05,
        "reconnect_max_delay": 0.2,
        "watchdog_poll_seconds": 0.05,
        "stale_after_seconds": 3600.0,  # market seconds: six wall seconds at SPEED
        "restart_window": {"enabled": False},
    }
    values.update(overrides)
    return IBSettings.model_validate(values)


def sim_clock(server: SimServer) -> Callable[[], int]:
    """The simulator's market clock, as the live session reads IB's."""
    return lambda: int(server.market.now_s * NS_PER_SECOND)


def roomy_limits() -> RiskLimits:
    """Roomy limits; no price band (most tests run without market data, so no last price is known)."""
    return RiskLimits(max_position=20, max_order_size=5, price_band_pct=None)


@dataclass
class Rig:
    """A started simulator, records and session, with what the session reported along the way."""

    server: SimServer
    records: OrderRecords
    session: TradingSession
    events: list[SessionEvent] = field(default_factory=list)
    updates: list[OrderUpdate] = field(default_factory=list)
    _more: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.session.add_listener(self._on_event)
        self.session.om.add_listener(self.updates.append)

    def _on_event(self, event: SessionEvent) -> None:
        self.events.append(event)
        self._more.set()

    @property
    def instrument(self) -> Instrument:
        return self.session.instruments[0]

    async def event(
        self, match: Callable[[SessionEvent], bool], after: int = 0, timeout: float = WAIT
    ) -> SessionEvent:
        """The first session event at index >= `after` that matches, waiting for it."""

        async def first() -> SessionEvent:
            while True:
                for e in self.events[after:]:
                    if match(e):
                        return e
                self._more.clear()
                await self._more.wait()

        return await asyncio.wait_for(first(), timeout)

    async def order_status(self, cid: str, *statuses: OrderStatus, timeout: float = WAIT) -> None:
        """Wait until our order `cid` is in one of `statuses`."""

        def reached(_: SessionEvent) -> bool:
            m = self.session.om.order(cid)
            return m is not None and m.status in statuses

        await self.event(reached, timeout=timeout)

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Poll a condition on the simulator's side (it has no events to await); fail naming `what`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not condition():
            if loop.time() > end:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.01)

    def sim_order(self, cid: str) -> SimOrder:
        m = self.session.om.order(cid)
        assert m is not None and m.order_id is not None, f"no order {cid} sent"
        found = self.server.broker.order(self.session.connection.client_id, m.order_id)
        assert found is not None, f"the simulator has no order {cid} (id {m.order_id})"
        return found

    def resting_price(self, side: Side, ticks_away: int = 100) -> float:
        """A limit price `ticks_away` ticks behind the market: the order rests until a fault fills it."""
        inst = self.instrument
        q = self.server.market.quote(inst, int(self.server.market.now_s))
        assert q is not None, "market closed in the simulator"
        offset = ticks_away * float(inst.tick_size)
        return inst.round_to_tick(q.bid - offset if side is Side.BUY else q.ask + offset)

    async def consistent(self, timeout: float = WAIT) -> None:
        """Wait until the simulator and our records agree (every report delivered), or fail with the last
        difference found: see `check_consistent`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            try:
                check_consistent(self.server, self.records, self.session, self.updates)
                return
            except AssertionError:
                if loop.time() > end:
                    raise
            await asyncio.sleep(0.02)


def sim_orders(server: SimServer) -> list[SimOrder]:
    """Every order the simulated account has seen (working and completed)."""
    return server.broker.open_orders(None) + server.broker.completed_orders()


def sim_positions(server: SimServer) -> dict[str, int]:
    """Non-zero positions of the simulated account by instrument key, read from the account itself."""
    return {inst.key: qty for inst, qty, _ in server.positions() if qty}


def _squeeze(statuses: list[OrderStatus]) -> list[OrderStatus]:
    out: list[OrderStatus] = []
    for s in statuses:
        if not out or out[-1] is not s:
            out.append(s)
    return out


def check_consistent(
    server: SimServer,
    records: OrderRecords,
    session: TradingSession | None = None,
    updates: list[OrderUpdate] | None = None,
) -> None:
    """Assert the three promises after a fault.

    1. No duplicate order: every order at the simulator has exactly one record (by orderRef, same order id and
       perm id) and no order id was used twice; a record with no order at the simulator never reached it
       (never acknowledged, closed Inactive, nothing filled).
    2. No lost record: every execution at the simulator is recorded once with its side, quantity, price and
       final commission (and nothing else is); each record's status and filled quantity are the simulator's;
       every state change the OMS reported is in the order's recorded history, in order.
    3. Positions: ours (the OMS's risk book) equal the simulated account's.
    """
    recs = [r for r in records.orders() if r.ib_order_id is not None]
    by_cid = {r.client_order_id: r for r in recs}
    ids = [(r.client_id, r.ib_order_id) for r in recs]
    assert len(ids) == len(set(ids)), f"an order id was used twice: {sorted(ids)}"  # type: ignore[type-var]
    orders = sim_orders(server)
    refs = [o.view.order_ref for o in orders]
    assert len(refs) == len(set(refs)), f"the simulator holds an order twice: {sorted(refs)}"
    for o in orders:
        ref = o.view.order_ref
        rec = by_cid.get(ref)
        assert rec is not None, f"simulator order {o.order_id} ({ref!r}) has no record"
        assert (rec.client_id, rec.ib_order_id) == (o.client_id, o.order_id), f"{ref}: ids differ"
        assert rec.perm_id == o.perm_id, f"{ref}: perm id {rec.perm_id} recorded, {o.perm_id} at IB"
        assert (rec.side, rec.quantity) == (o.side, o.quantity), f"{ref}: order differs"
        assert str(rec.status) == o.status, f"{ref}: recorded {rec.status}, simulator says {o.status}"
        assert rec.filled == o.filled, f"{ref}: recorded {rec.filled} filled, simulator {o.filled}"
    at_sim = {o.view.order_ref for o in orders}
    for rec in recs:
        if rec.client_order_id in at_sim:
            continue
        history = {e.status for e in records.events(rec.client_order_id)}
        assert rec.status is OrderStatus.INACTIVE and rec.filled == 0, (
            f"{rec.client_order_id} is not at the simulator but recorded {rec.status}, {rec.filled} filled"
        )
        assert not history & ACKNOWLEDGED, f"{rec.client_order_id} was acknowledged yet IB never had it"
    executions = {e.exec_id: e for e in server.broker.executions}
    fills = {f.exec_id: f for f in records.executions()}
    assert set(fills) == set(executions), (
        f"executions at the simulator {sorted(executions)} vs recorded {sorted(fills)}"
    )
    for exec_id, e in executions.items():
        f = fills[exec_id]
        assert f.client_order_id == e.order.view.order_ref, f"{exec_id}: recorded on {f.client_order_id}"
        assert (f.side, f.quantity) == (e.side, e.quantity), f"{exec_id}: side/quantity differ"
        assert f.price == Decimal(repr(e.price)), f"{exec_id}: price {f.price} vs {e.price}"
        assert f.commission == e.commission and f.commission_final, (
            f"{exec_id}: commission {f.commission} (final {f.commission_final}), IB charged {e.commission}"
        )
    for rec in records.orders():
        history = [e.status for e in records.events(rec.client_order_id)]
        assert history[-1] is rec.status, (
            f"{rec.client_order_id}: history ends {history[-1]}, row {rec.status}"
        )
    if updates is not None:
        for cid in {u.client_order_id for u in updates}:
            told = _squeeze([u.status for u in updates if u.client_order_id == cid])
            written = _squeeze([e.status for e in records.events(cid)])
            assert written[-len(told) :] == told, f"{cid}: reported {told}, recorded {written}"
    if session is not None:
        ours = {k: v for k, v in session.om.risk.positions().items() if v}
        assert ours == sim_positions(server), f"positions: ours {ours}, IB's {sim_positions(server)}"
        assert session.status().positions == ours


SessionBody = Callable[[Rig], Awaitable[None]]


def session_runner(url: str) -> Callable[..., None]:
    """`run(body, **options)`: a simulator, migrated records at `url` and a started session on them;
    `body(rig)` runs, then the session, records and simulator are stopped.

    Options: `symbols` (default MES), `market_data` (default off), `settings` overrides, `sim` options."""

    def run(
        body: SessionBody,
        *,
        symbols: tuple[str, ...] = ("MES",),
        market_data: bool = False,
        settings: dict[str, Any] | None = None,
        sim: dict[str, Any] | None = None,
    ) -> None:
        async def main() -> None:
            opts: dict[str, Any] = {"port": 0, "symbols": ["MES", "MNQ"], "speed": SPEED, "start": START}
            opts.update(sim or {})
            server = SimServer(**opts)
            await server.start()
            records = OrderRecords(url)
            records.migrate()
            session = TradingSession(
                sim_settings(server, **(settings or {})),
                records,
                roomy_limits(),
                symbols=symbols,
                market_clock=sim_clock(server),
                market_data=market_data,
                connect_timeout=WAIT,
            )
            rig = Rig(server, records, session)
            try:
                await session.start()
                await asyncio.wait_for(body(rig), 30)
            finally:
                await session.stop()
                await server.stop()
                records.close()

        asyncio.run(main())

    return run


@pytest.fixture
def run_session(db_url: str) -> Callable[..., None]:
    """A session runner on SQLite, then on PostgreSQL."""
    return session_runner(db_url)


@pytest.fixture
def run_session_sqlite(sqlite_url: str) -> Callable[..., None]:
    """A session runner on a SQLite file only."""
    return session_runner(sqlite_url)

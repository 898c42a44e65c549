"""`SimServer`: an asyncio TCP server speaking the TWS API socket protocol, for unmodified IB API clients.

One market clock drives every subscription of every client; it advances `speed` market seconds per wall
second (or, with speed=None, as fast as the clients read: 5 market seconds a step, the next step once every
client's socket has taken the last one; while no client streams anything, one step per 50 ms of wall time).
Faults are scripted through `server.faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time as _time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from ibot.aio import cancel_and_wait
from ibot.exchange.fees import IB_MICRO_FUTURES, FeeModel
from ibot.model.instruments import Instrument
from ibot.model.market import NS_PER_SECOND, Bar
from ibot.sim import account as acct
from ibot.sim.client import SimClient
from ibot.sim.closed import status_summary, utc_time
from ibot.sim.contracts import ContractBook
from ibot.sim.faults import FARM_MESSAGES, Faults
from ibot.sim.layouts_orders import OpenOrderView
from ibot.sim.market import PriceSource, ReplaySource, SimMarket, SyntheticSource
from ibot.sim.orders import Execution, SimBroker, SimOrder
from ibot.sim.pacing import HistoricalPacing, SimLimits
from ibot.sim.script import ScheduledFault, parse_fault, schedule

log = logging.getLogger("ibot.sim")

_PUMP_SECONDS = 0.05  # wall time between clock steps (IB itself batches top-of-book about every 250 ms)
_MAX_SPEED_STEP = 5.0  # market seconds per step when running as fast as clients read


class SimServer:
    """The TWS simulator. `await start()`, read `port`, connect clients, `await stop()`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        symbols: Sequence[str] | None = None,
        speed: float | None = 60.0,
        seed: int = 0,
        limits: SimLimits | None = None,
        start: datetime | None = None,
        replay: Mapping[str, Sequence[Bar]] | None = None,
        replay_bar_seconds: int = 60,
        account: str = "DU123456",
        cash: Decimal = Decimal(1_000_000),
        daily_restart: time | None = None,
        restart_seconds: float = 300.0,
        fees: FeeModel = IB_MICRO_FUTURES,
        thin_liquidity: bool = True,
        lockstep: bool = False,
        lockstep_timeout: float = 10.0,
    ) -> None:
        """`daily_restart` (US/Eastern, on the market clock) schedules IB's nightly restart: every client is
        disconnected and connections are refused for `restart_seconds` of market time. `fees` prices every
        execution; `thin_liquidity` False gives a deep book (each quote fills any size).

        `lockstep` (with `replay` only) makes a run independent of machine speed: orders are matched against
        each replayed bar as a whole when it ends (the backtester's rules, `SimBroker.match_bars`), and the
        market clock holds until a client declares itself with a LOCKSTEP_ACK, then stops after every bar
        boundary it named until it acknowledges that bar (or `lockstep_timeout` wall seconds pass, logged)."""
        if lockstep and replay is None:
            raise ValueError("SimServer: lockstep needs replay bars (a synthetic market has no bars to step)")
        self.host = host
        self._port = port
        self.limits = limits or SimLimits()
        self.book = ContractBook(symbols)
        source: PriceSource
        if replay is not None:
            source = ReplaySource(replay, replay_bar_seconds)
            first = min((b.ts for bars in replay.values() for b in bars), default=None)
            start_ns = first if start is None and first is not None else _start_ns(start)
        else:
            source = SyntheticSource(seed)
            start_ns = _start_ns(start)
        self.market = SimMarket(source, start_ns, speed)
        self.pacing = HistoricalPacing(self.limits)
        self.faults = Faults(self)
        self.account = account
        self.cash = cash
        self.broker = SimBroker(
            self.market,
            self.book,
            self,
            account=account,
            cash=cash,
            fees=fees,
            faults=self.faults.orders,
            thin_liquidity=thin_liquidity,
            match_bars=lockstep,
        )
        self.lockstep = lockstep
        self.lockstep_timeout = lockstep_timeout
        self._acked = asyncio.Event()
        self._account_dirty = True
        self._changed_positions: set[int] = set()
        self.daily_restart = daily_restart
        self.restart_seconds = restart_seconds
        self._connections: set[SimClient] = set()
        self._clients: dict[int, SimClient] = {}
        self._server: asyncio.Server | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._running = False
        self._conn_no = 0
        self.clients_served = 0  # connections that got through START_API
        self._tasks: set[asyncio.Task[object]] = set()

    # --- life cycle -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self._port)
        self._port = self.port  # keep the bound port: a restart window listens again on the same one
        self._running = True
        self._pump_task = asyncio.create_task(self._pump(), name="ibot-sim-clock")
        log.info(
            "TWS simulator listening on %s:%d (speed %s, symbols %s); %s",
            self.host,
            self.port,
            self.market.speed or "max",
            ",".join(self.book.symbols),
            self.market_status(),
        )

    def market_status(self) -> str:
        """``market time 2026-12-05 14:03:23 UTC (Sat): MES, MNQ closed until 2026-12-06 23:00:00 UTC``."""
        now = int(self.market.now_s)
        return f"market time {utc_time(now)}: {status_summary(self.book.products(), now)}"

    def summary(self) -> str:
        """One line for the end of a run: the market time, the clients served, the orders and fills."""
        orders = self.broker.order_count()
        return (
            f"market time {utc_time(int(self.market.now_s))}; {self.clients_served} client"
            f"{'' if self.clients_served == 1 else 's'} served; {orders} order{'' if orders == 1 else 's'}, "
            f"{len(self.broker.executions)} fill{'' if len(self.broker.executions) == 1 else 's'}"
        )

    async def stop(self) -> None:
        self._running = False
        task, self._pump_task = self._pump_task, None
        await cancel_and_wait([task])  # the pump also checks `_running`: a swallowed cancel cannot keep it
        for s in list(self._connections):
            s.close()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._tasks:  # let each client finish its read loop on the closed socket
            await asyncio.wait(list(self._tasks), timeout=2)
        log.info("TWS simulator stopped")

    async def serve_forever(self, fault_script: Sequence[ScheduledFault] = ()) -> None:
        await self.start()
        schedule(self.faults, fault_script)
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def run(self, fault_script: Sequence[ScheduledFault] = ()) -> None:
        """Blocking entry point for ``ibot sim``: serve until interrupted, firing the scripted faults."""
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self.serve_forever(fault_script))

    def stop_listening(self) -> None:
        """Close the listening socket (connections are refused) until the restart window ends."""
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _listen_again(self) -> None:
        if self._server is None and not self.faults.refusing():
            self._server = await asyncio.start_server(self._accept, self.host, self._port)
            log.info("restart window over: listening again on %s:%d", self.host, self._port)

    @property
    def pacing_violations(self) -> int:
        """Historical requests refused for pacing (162) since the start, across every client."""
        return self.pacing.violations

    # --- clients --------------------------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conn_no += 1
        if self.faults.refusing():
            log.info("connection #%d refused: restart window", self._conn_no)
            writer.close()
            return
        client = SimClient(self, reader, writer, self._conn_no)
        self._connections.add(client)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await client.run()
        finally:
            if task is not None:
                self._tasks.discard(task)

    def claim(self, client_id: int, client: SimClient) -> bool:
        """Register a client id; False when another live client holds it (TWS error 326)."""
        holder = self._clients.get(client_id)
        if holder is not None and not holder.closed:
            return False
        self._clients[client_id] = client
        self.clients_served += 1
        return True

    def forget(self, client: SimClient) -> None:
        self._connections.discard(client)
        if client.client_id is not None and self._clients.get(client.client_id) is client:
            del self._clients[client.client_id]

    def live_clients(self) -> list[SimClient]:
        return [s for s in self._connections if s.started and not s.closed]

    def data_flowing(self, client: SimClient) -> bool:
        return self.faults.state.data_flowing(client.client_id)

    def farm_status(self) -> list[tuple[int, str]]:
        """The farm messages a gateway sends right after START_API (id -1)."""
        market = 2103 if self.faults.state.market_farm_broken else 2104
        return [(market, FARM_MESSAGES[market]), (2106, FARM_MESSAGES[2106]), (2158, FARM_MESSAGES[2158])]

    # --- the account (owned by the broker; it outlives every connection) ------------------------------------
    @property
    def next_order_id(self) -> int:
        """What NEXT_VALID_ID announces: one above every order id seen (unless a restart rolled it back)."""
        return self.broker.next_valid_id

    def positions(self) -> list[tuple[Instrument, int, float]]:
        return self.broker.positions()

    def account_values(self) -> list[tuple[str, str, str]]:
        return acct.account_values(self.broker.snapshot())

    def client_of(self, client_id: int) -> SimClient | None:
        """The connected client of a client id, or None while that client is away."""
        s = self._clients.get(client_id)
        return s if s is not None and s.started and not s.closed else None

    # --- BrokerEvents: what the broker reports goes to the order's own client -------------------------------
    def order_status(self, order: SimOrder, with_open_order: bool) -> None:
        s = self.client_of(order.client_id)
        if s is not None:
            s.send_order(order, with_open_order)

    def order_error(self, client_id: int, order_id: int, code: int, text: str) -> None:
        s = self.client_of(client_id)
        if s is not None:
            s.error(order_id, code, text)

    def execution(self, execution: Execution) -> None:
        self._changed_positions.add(execution.instrument.con_id)
        s = self.client_of(execution.order.client_id)
        if s is not None:
            s.send_execution(-1, execution)

    def commission(self, execution: Execution) -> None:
        s = self.client_of(execution.order.client_id)
        if s is not None:
            s.send_commission(execution)

    def what_if(self, client_id: int, view: OpenOrderView) -> None:
        s = self.client_of(client_id)
        if s is not None:
            s.send_what_if(view)

    def account_changed(self) -> None:
        """After fills: position updates to reqPositions subscribers now; account values on the next step."""
        self._account_dirty = True
        if not self._changed_positions:
            return
        changed, self._changed_positions = self._changed_positions, set()
        rows = [p for p in self.broker.positions_all() if p[0].con_id in changed]
        for s in self.live_clients():
            if s.positions_subscribed:
                for inst, qty, avg_cost in rows:
                    s.send_position(inst, qty, avg_cost)
            for req_id in sorted(s.positions_multi):
                for inst, qty, avg_cost in rows:
                    s.send_position_multi(req_id, inst, qty, avg_cost)

    def _push_account(self, new_second: bool) -> None:
        """Account values and portfolio (reqAccountUpdates) as TWS sends them: at once after a fill changed a
        position, else every `ACCOUNT_UPDATE_INTERVAL_S` market seconds; P&L (reqPnL, reqPnLSingle) on every
        market second while a position is open (its value moves) and after fills. One snapshot for all."""
        changed = self._account_dirty
        if not (changed or new_second):
            return
        self._account_dirty = False
        now = int(self.market.now_s)
        pnl_moves = changed or self.broker.has_positions()
        listeners = [
            s
            for s in self.live_clients()
            if s.account_due(now, changed) or (pnl_moves and s.pnl_subs and s.wants_account())
        ]
        if not listeners:
            return
        snap = self.broker.snapshot()
        for s in listeners:
            s.on_account(snap, changed, pnl_moves)

    # --- the clock ------------------------------------------------------------------------------------------
    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while self._running:
            if self.lockstep:
                step = await self._lockstep_step()
            elif self.market.speed is None:
                if any(s.streaming() for s in self._connections):
                    await self._drain()
                    await asyncio.sleep(0)
                else:  # no reader to pace the clock by: do not spin a core through days of market time
                    await asyncio.sleep(_PUMP_SECONDS)
                step = _MAX_SPEED_STEP
            else:
                await asyncio.sleep(_PUMP_SECONDS)
                now = loop.time()
                step = (now - last) * self.market.speed
                last = now
            old, new = self.market.advance(step)
            self._check_daily_restart(old, new)
            if self.faults.state.refuse_until_s is not None:
                await self._listen_again()
            batched = [s for s in list(self._connections) if s.begin_batch()]  # one write per client and step
            try:
                self._step(old, new)
            finally:
                for s in batched:
                    s.end_batch()

    def _step(self, old: int, new: int) -> None:
        """One clock step: fills of working orders, account pushes, then every client's streams."""
        try:
            self.broker.on_clock(old, new)
            self._push_account(new != old)
        except Exception:  # the market must keep moving for the other clients
            log.exception("order matching / account update failed")
        wall = asyncio.get_running_loop().time()
        for s in list(self._connections):
            try:
                s.on_clock(old, new, wall)
            except Exception:  # one client's broken stream must not stop the market for the others
                log.exception("%s: streaming failed; closing it", s.name)
                s.close(abort=True)
            if s.lockstep_interval and s.last_bar_end == new and new % s.lockstep_interval == 0:
                s.awaiting_s = new if s.acked_s < new else 0

    # --- lockstep -------------------------------------------------------------------------------------------
    def lockstep_acknowledged(self) -> None:
        """A client acknowledged a bar (called by its client connection)."""
        self._acked.set()

    def _lockstep_clients(self) -> list[SimClient]:
        return [s for s in self.live_clients() if s.lockstep_interval]

    async def _lockstep_step(self) -> float:
        """Market seconds to the next step: wait for a lockstep client, then for every acknowledgement the
        clock waits on; then up to the next bar boundary a client named (at most a minute at a time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lockstep_timeout
        clients: list[SimClient] = []
        while self._running:
            await self._drain()
            await asyncio.sleep(0)  # let the clients read what the last step sent
            clients = self._lockstep_clients()
            waiting = [s for s in clients if s.awaiting_s]
            if clients and not waiting:
                break
            self._acked.clear()
            left = deadline - loop.time()
            if clients and left <= 0:
                for s in waiting:
                    log.warning(
                        "lockstep: %s did not acknowledge bar end %d; moving on", s.name, s.awaiting_s
                    )
                    s.awaiting_s = 0
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), max(left, 0.001) if clients else 0.05)
            if not clients:
                deadline = loop.time() + self.lockstep_timeout
        now = int(self.market.now_s)
        target = now + 60
        for s in clients:
            k = s.lockstep_interval
            target = min(target, (now // k + 1) * k)
        return float(target - now) + (int(self.market.now_s) - self.market.now_s)

    def _check_daily_restart(self, old: int, new: int) -> None:
        if self.daily_restart is None or new <= old:
            return
        eastern = ZoneInfo("US/Eastern")
        day = datetime.fromtimestamp(new, eastern).date()
        at = int(datetime.combine(day, self.daily_restart, eastern).timestamp())
        if old < at <= new:
            self.faults.restart(self.restart_seconds)

    async def _drain(self) -> None:
        for s in list(self._connections):
            if not s.closed and not s.writer.transport.is_closing():
                with contextlib.suppress(ConnectionError):
                    await s.writer.drain()


def _start_ns(start: datetime | None) -> int:
    if start is None:
        return int(_time.time()) * NS_PER_SECOND
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return int(start.timestamp()) * NS_PER_SECOND


def run(
    host: str = "127.0.0.1",
    port: int = 7497,
    symbols: Sequence[str] | None = None,
    speed: float | None = 60.0,
    seed: int = 0,
    limits: SimLimits | None = None,
    faults: Sequence[str] = (),
    replay: Mapping[str, Sequence[Bar]] | None = None,
    replay_bar_seconds: int = 60,
) -> None:
    """Blocking entry point of ``ibot sim``: serve with a log line per request until Ctrl-C.

    `faults` are `AT:KIND[:ARG]` specs (see ibot.sim.script), checked before the server starts. `replay`
    serves stored bars instead of the synthetic market.
    """
    script = [parse_fault(spec) for spec in faults]
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = SimServer(
        host=host,
        port=port,
        symbols=symbols,
        speed=speed,
        seed=seed,
        limits=limits,
        replay=replay,
        replay_bar_seconds=replay_bar_seconds,
    )
    server.run(script)

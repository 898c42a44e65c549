"""`LiveRunner`: one strategy trading one instrument live: IB's 5-s real-time bars (and ticks) ->
BarAggregator (bar size) -> indicators -> Strategy.on_bar -> order intents -> the session's OMS -> IB.

What it promises:
- the strategy never acts before the session is ready: `start()` starts (or joins) the `TradingSession`,
  waits until it has reconciled with IB, and only then calls `Strategy.start` and subscribes market data;
- while the session is not ready (link down, 1100, reconciling) or one of the runner's feeds is stale during
  trading hours (the connection's data watchdog), closed bars still feed the indicators but `on_bar` /
  `on_tick` are not called: the strategy is paused, with one log line when it pauses and one when it resumes;
- a closed bar is the aggregation of IB's 5-s bars (`BarAggregator(input_bar_size="5s")`, emitted as soon as
  the 5-s bar that ends it arrives), so a live bar equals the stored bar of the same interval;
- `lockstep=True` (the simulator only, `SimServer(lockstep=True)`): after each bar the runner tells the
  simulator it has finished with it (`IBVenue.lockstep_ack`, sent after the bar's orders), so the market
  waits for the strategy and a run does not depend on machine speed;
- warm-up (`ibot.engine.warmup`, `warmup_bars`): after `Strategy.start` registered its indicators and before
  the first live bar reaches `on_bar`, the indicators are fed the last `warmup_bars` closed bars (the stored
  continuous series of the traded month, then IB's completed bars up to now); bars closing while that runs
  are held and handed on after it (those IB already gave are dropped). Indicators only: no strategy call, no
  order, the market clock untouched. Off in lockstep (a replay starts cold, as the backtest it equals). After
  a live roll the indicators keep the old month's prices for their window (a WARNING says so);
- a contract that gives no bars is said, never waited on in silence: when no 5-s bar came for
  `_NO_DATA_BARS` bar intervals of open market time (market clock), or the contract has expired at the
  market's date, one WARNING names it (expired, or not the front month at that date) and the status line
  shows it (`RunnerStats.no_data`) until bars arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ibot.aio import cancel_and_wait
from ibot.brokers.ib.connection import HealthEvent, HealthEventKind
from ibot.brokers.ib.market_data import Subscription
from ibot.data.bars import BarAggregator, parse_interval
from ibot.engine.context import LiveContext
from ibot.engine.roll import RollExecutor, RollSchedule
from ibot.engine.session import SessionEvent, SessionEventKind, SessionState, TradingSession
from ibot.engine.warmup import Warmup, warm_up
from ibot.exchange.hours import hours_for
from ibot.model import catalog
from ibot.model.calendar import trading_day_bounds
from ibot.model.errors import IbotError
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import NS_PER_SECOND, Bar, Tick, ns_to_datetime
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.strategy.base import Strategy

__all__ = ["LiveRunner", "RunnerStats"]

log = logging.getLogger("ibot.engine")

_REAL_TIME_BAR = "5s"
_NO_DATA_BARS = 3  # bar intervals of open market time without a 5-s bar before the runner says so
_NO_DATA_MIN_NS = 60 * NS_PER_SECOND
_DATA_POLL_SECONDS = 0.25


@dataclass(slots=True)
class RunnerStats:
    """What the runner has seen; the status line shows it."""

    bars: int = 0  # closed bars handed to the strategy
    bars_skipped: int = 0  # closed bars while paused (indicators fed, on_bar not called)
    ticks: int = 0
    last_bar: Bar | None = None
    last_bar_end_ns: int = 0
    strategy_errors: int = 0
    paused_reasons: set[str] = field(default_factory=set)
    data_ns: int = 0  # market time of the last 5-s bar's end (0: none yet)
    no_data: str = ""  # why no bars come ("no bars for MESZ6 ..."), "" while they do


class _SurvivorFreeze:
    """While a runner trades: after every generation-1 collection, move its survivors (the orders, trades and
    fills the session keeps) out of the collector's reach with gc.freeze(), which costs nothing. A full
    collection then has almost nothing to scan: without this it scanned everything created since the start
    (~0.1 s per pass, landing on an order now and then). The price: a cycle that becomes garbage after it has
    outlived two collections is not reclaimed by the collector on its own; measured over 2,000 orders through
    the simulator, a few hundred objects. So once a trading day, when its last bar has closed (the market's
    daily break follows), `sweep()` unfreezes everything, runs one full collection and freezes again: a
    weeks-long session keeps at most a day of such garbage. On while any runner is started and not stopped."""

    def __init__(self) -> None:
        self.runners = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 1:
            gc.freeze()

    def hold(self) -> None:
        self.runners += 1
        if self.runners == 1:
            gc.callbacks.append(self)

    def release(self) -> None:
        self.runners = max(self.runners - 1, 0)
        if self.runners == 0 and self in gc.callbacks:
            gc.callbacks.remove(self)

    @staticmethod
    def sweep() -> int:
        """Reclaim the frozen garbage now (one full collection); returns the objects it freed."""
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        return freed


_SURVIVORS = _SurvivorFreeze()


class LiveRunner:
    """Run `strategy` on `symbol` through a started-or-not `TradingSession`: `await start()`, then
    `await run_for(market_seconds)` or `await run_until(stop_event)`, then `await stop()`."""

    def __init__(
        self,
        session: TradingSession,
        strategy: Strategy,
        symbol: str,
        bar: str = "5min",
        *,
        quotes: bool = True,
        lockstep: bool = False,
        ready_timeout: float = 30.0,
        on_bar: Callable[[Bar], None] | None = None,
        name: str = "",
        until_ns: int | None = None,
        roll: RollSchedule | None = None,
        combo_rolls: bool = True,
        adopt_held_month: bool = False,
        roll_timeout: float = 30.0,
        warmup_bars: int = 500,
        data_dir: Path | None = None,
    ) -> None:
        """`until_ns`: the market time the run ends; a bar ending after it still feeds the indicators (and
        is acknowledged in lockstep) but is not handed to the strategy, so where the run stops does not
        depend on how soon its owner notices the clock has passed the end.

        Futures rolls (`ibot.engine.roll`): at the month's roll time (`roll`, the product's catalog rule at
        09:00 Chicago by default) the position and the strategy's working orders move to the next month
        (ONE combo; two legs when `combo_rolls` is False or the combo is refused) and the runner trades the
        new month. On start an unfinished roll is finished, a month held past its roll time is rolled first,
        and a month the strategy does not expect pauses it (`adopt_held_month`: trade that month instead).
        A roll step not final after `roll_timeout` seconds (e.g. a market order on a closed market) leaves the
        strategy paused; the roll is finished on the next bars (its orders keep working at IB).

        `warmup_bars`: how many closed bars fill the strategy's indicators before it may act (0: none);
        `data_dir`: where the stored continuous series is read from (None: IB's bars only)."""
        self.session = session
        self.roll_schedule = roll or RollSchedule()
        self.combo_rolls = combo_rolls
        self.adopt_held_month = adopt_held_month
        self.rolls: list[str] = []  # roll ids this runner ran or finished
        self.roll_timeout = roll_timeout
        self._roll_task: asyncio.Task[None] | None = None
        self._roll_failed = ""  # the pause reason while a roll is unfinished
        self.until_ns = until_ns
        self._stopping = False
        self.name = name or f"{strategy.name}:{symbol}"  # its name at the venue's lockstep gate and in logs
        self.strategy = strategy
        self.symbol = symbol
        self.bar = bar
        self.interval_ns = parse_interval(bar)
        self.quotes = quotes
        self.lockstep = lockstep
        self.ready_timeout = ready_timeout
        self.stats = RunnerStats()
        self.bars: list[Bar] = []  # every closed bar, for charts and reports
        self.ctx: LiveContext | None = None
        self.instrument: Instrument | None = None
        self._on_bar_hook = on_bar
        self._aggregator: BarAggregator | None = None
        self._subs: list[Subscription] = []
        self._chained: tuple[Subscription, Callable[[Tick], None] | None] | None = None
        self._remove_listener: Callable[[], None] | None = None
        self._started_ns = 0
        self._ack_tasks: set[asyncio.Task[None]] = set()
        self._freezing = False
        self._day_end = 0  # end (ns) of the trading day of the bars being traded
        self._data_watch: asyncio.Task[None] | None = None
        self.warmup_bars = warmup_bars
        self.data_dir = data_dir
        self.warmup: Warmup | None = None  # what the indicators were filled with at start
        self._held: list[Bar] | None = None  # closed bars held while the warm-up runs

    # --- life cycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the session if needed, wait until it is ready, then wire the strategy and its market data."""
        session = self.session
        if session.state is SessionState.STOPPED:
            await session.start()
        await session.wait_ready(self.ready_timeout)
        inst = await self._chain(session.instrument(self.symbol))
        self.instrument = inst
        await self._warm_contract(inst)
        ctx = LiveContext(session, inst, self.strategy, quotes=self.quotes)
        self.ctx = ctx
        self._remove_listener = session.add_listener(self._on_session_event)
        session.connection.add_listener(self._on_health)
        self.strategy.start(ctx)
        if self.lockstep:
            session.venue.unthrottle()  # the simulator's clock waits on us: no request throttle
        self._aggregator = BarAggregator(
            self.bar,
            on_bar=self._on_closed_bar,
            late_policy="drop",
            input_bar_size=_REAL_TIME_BAR,
            name=f"{inst.key} {self.bar}",
        )
        self._subs.append(session.feed.stream_bars(inst, self._aggregator, on_bar=self._on_5s_bar))
        if self.quotes:
            self._subscribe_ticks(inst)
        await self._warm_up(ctx, inst)
        self._started_ns = session.market_clock()
        self._check_data(self._started_ns)
        self._data_watch = asyncio.create_task(self._watch_data(), name=f"ibot-runner-data-{inst.key}")
        # Everything built so far lives for the whole session: move it out of the collector's reach, so a
        # full collection later scans only new objects (it paused the loop for ~0.1 s per pass otherwise).
        gc.collect()
        gc.freeze()
        _SURVIVORS.hold()
        self._freezing = True
        if self.lockstep:
            self._ack(0)  # declare the bar interval: the simulator's clock starts stepping
        log.info(
            "runner: %s on %s, %s bars from IB 5-s bars%s; session %s",
            self.strategy.name,
            inst.key,
            self.bar,
            " and ticks" if self.quotes else "",
            session.status().describe(),
        )

    async def run_for(self, market_seconds: float, poll: float = 0.02) -> None:
        """Trade until the market clock has moved `market_seconds` past the start (IB's time; the simulator's
        clock in a simulation)."""
        end = self._started_ns + round(market_seconds * NS_PER_SECOND)
        while self.session.market_clock() < end:
            await asyncio.sleep(poll)

    async def run_until(self, stop: asyncio.Event) -> None:
        await stop.wait()

    def halt(self) -> None:
        """Call the strategy no more (its owner is stopping; `stop()` follows)."""
        self._stopping = True

    async def stop(self, *, flatten: bool = False, cancel: bool = True, timeout: float = 5.0) -> None:
        """Unsubscribe; optionally cancel our working orders and flatten the position (a market order, sent
        once every order of ours is final), waiting up to `timeout` seconds for IB to confirm each step. The
        session itself is left running (its owner stops it)."""
        self._stopping = True  # the strategy is called no more
        if self._freezing:
            self._freezing = False
            _SURVIVORS.release()
        task, self._data_watch = self._data_watch, None
        await cancel_and_wait([task])
        rolling, self._roll_task = self._roll_task, None
        if (
            rolling is not None
        ):  # a roll is finished, never cut short by a stop (a crash is finished on restart)
            await asyncio.wait([rolling], timeout=timeout * 6)
        if self.lockstep:
            # the simulator's clock waits on our acknowledgements: keep the bars (and acks) flowing while the
            # cancels and the flatten are matched, then unsubscribe
            try:
                await self._wind_down(flatten=flatten, cancel=cancel, timeout=timeout)
            finally:
                await self._unsubscribe(timeout)
            return
        await self._unsubscribe(timeout)
        await self._wind_down(flatten=flatten, cancel=cancel, timeout=timeout)

    async def _unsubscribe(self, timeout: float) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                self.session.feed.cancel(sub)
        self._subs.clear()
        if self._chained is not None:
            sub, previous = self._chained
            sub.on_tick = previous
            self._chained = None
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        if self._ack_tasks:  # acknowledgements waiting on sends: a send that never ends must not hang stop()
            await asyncio.wait(list(self._ack_tasks), timeout=timeout)
            await cancel_and_wait(list(self._ack_tasks))
        if self.lockstep:  # the other strategies of a lockstep node no longer wait for this one
            self.session.venue.lockstep_leave(self.name, self.interval_ns // NS_PER_SECOND)

    async def _wind_down(self, *, flatten: bool, cancel: bool, timeout: float) -> None:
        """Cancel our working orders and flatten (each step waiting up to `timeout` seconds for IB)."""
        ctx = self.ctx
        if ctx is None or not self.session.ready:
            return
        if ctx.pending:
            await asyncio.wait(list(ctx.pending), timeout=timeout)
        if cancel or flatten:
            for request in ctx.open_orders():
                with contextlib.suppress(Exception):
                    await self.session.cancel(request.client_order_id)
            # an order may fill while its cancel travels: read the position only once all of ours are final
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout
            while ctx.open_orders() and loop.time() < end:
                await asyncio.sleep(0.01)
        if flatten:
            await self._flatten(timeout)

    # --- market data ----------------------------------------------------------------------------------------
    def _subscribe_ticks(self, inst: Instrument) -> None:
        """Ticks for bid/ask/last: the session's own tick stream when it has one (IB would hand both requests
        the same ticker), else a stream of our own."""
        for sub in self.session.subscriptions:
            if sub.kind == "ticks" and sub.instrument.key == inst.key and sub.active:
                previous = sub.on_tick

                def both(tick: Tick, previous: Callable[[Tick], None] | None = previous) -> None:
                    if previous is not None:
                        previous(tick)
                    self._on_tick(tick)

                sub.on_tick = both
                self._chained = (sub, previous)
                return
        self._subs.append(self.session.feed.stream_ticks(inst, on_tick=self._on_tick))

    def _on_tick(self, tick: Tick) -> None:
        ctx = self.ctx
        if ctx is None:
            return
        self.stats.ticks += 1
        ctx.on_tick(tick)
        if self._can_act():
            self._guard("on_tick", self.strategy.on_tick, tick)

    def _on_closed_bar(self, bar: Bar) -> None:
        ctx = self.ctx
        if ctx is None:
            return
        if self._held is not None:  # the warm-up is running: this bar follows its bars
            self._held.append(bar)
            return
        if self.until_ns is None or bar.ts + self.interval_ns <= self.until_ns:
            self.bars.append(bar)  # the run's bars (a lockstep stop's acknowledged bars are past its end)
        stats = self.stats
        stats.last_bar = bar
        stats.last_bar_end_ns = bar.ts + self.interval_ns
        ctx.on_bar(bar)  # indicators first, as in the backtester
        if self._can_act(bar.ts + self.interval_ns):
            stats.bars += 1
            self._guard("on_bar", self.strategy.on_bar, bar)
        else:
            stats.bars_skipped += 1
            ctx.log(f"bar {bar.time.isoformat()} not traded: paused ({self._pause_reason()})")
        if self._on_bar_hook is not None:
            self._on_bar_hook(bar)
        if self.lockstep:
            self._ack((bar.ts + self.interval_ns) // NS_PER_SECOND)
        self._day_over(bar.ts + self.interval_ns)
        self._roll_if_due(bar.ts + self.interval_ns)

    def _day_over(self, bar_end: int) -> None:
        """After the trading day's last bar (the daily break follows): reclaim the day's frozen garbage."""
        if not self._day_end:
            self._day_end = trading_day_bounds(bar_end - 1)[1]
        if bar_end < self._day_end:
            return
        if self._freezing:
            freed = _SURVIVORS.sweep()
            log.info("runner: trading day over; one full garbage collection freed %d objects", freed)
        self._day_end = trading_day_bounds(bar_end)[1]

    def _guard(self, hook: str, fn: Callable[[Any], None], arg: Any) -> None:
        """A strategy error is logged and counted; the runner (and the OMS) keep going."""
        try:
            fn(arg)
        except IbotError as exc:  # e.g. an order the risk checks refused: said in one line, no traceback
            self.stats.strategy_errors += 1
            log.error("strategy %s: %s refused: %s", self.strategy.name, hook, exc)
        except Exception:
            self.stats.strategy_errors += 1
            log.exception("strategy %s failed in %s", self.strategy.name, hook)

    # --- missing data ---------------------------------------------------------------------------------------
    def _on_5s_bar(self, bar: Bar) -> None:
        self.stats.data_ns = bar.ts + 5 * NS_PER_SECOND
        if self.stats.no_data:
            log.info("runner: bars of %s arrive again (%s)", self.symbol, ns_to_datetime(bar.ts).isoformat())
            self.stats.no_data = ""

    async def _watch_data(self) -> None:
        while True:
            await asyncio.sleep(_DATA_POLL_SECONDS)
            self._check_data(self.session.market_clock())

    def _check_data(self, now: int) -> None:
        """Say (once, WARNING, and in the status line) why a contract gives no bars: expired at the market's
        date, or no 5-s bar for `_NO_DATA_BARS` bar intervals while its market was open."""
        inst = self.instrument
        if inst is None or not now or self.stats.no_data:
            return
        today = ns_to_datetime(now).date()
        if inst.expiry is not None and inst.expiry < today:
            self._no_data(f"{inst.key} expired on {inst.expiry} (market date {today}): no bars will come")
            return
        opened = hours_for(inst).open_since(now)
        if opened is None:
            return
        since = max(self.stats.data_ns, opened, self._started_ns)
        quiet = now - since
        if quiet < max(_NO_DATA_BARS * self.interval_ns, _NO_DATA_MIN_NS):
            return
        minutes = quiet / (60 * NS_PER_SECOND)
        at = ns_to_datetime(since).strftime("%Y-%m-%d %H:%M UTC")
        self._no_data(
            f"no bars for {inst.key} in {minutes:.0f} min of open market (since {at}){_hint(inst, today)}"
        )

    def _no_data(self, why: str) -> None:
        self.stats.no_data = why
        log.warning("runner: %s", why)

    # --- pausing --------------------------------------------------------------------------------------------
    def _can_act(self, bar_end_ns: int = 0) -> bool:
        if self._roll_task is not None and not self._roll_task.done():
            return False  # rolling: the strategy waits for the new month
        if self._stopping or (self.until_ns is not None and bar_end_ns > self.until_ns):
            return False
        return self.session.ready and not self.stats.paused_reasons

    def _pause_reason(self) -> str:
        if self._roll_task is not None and not self._roll_task.done():
            return "rolling to the next month"
        if self._stopping:
            return "the run is stopping"
        if self.until_ns is not None and self.stats.last_bar_end_ns > self.until_ns:
            return "past the run's end"
        if not self.session.ready:
            return f"session {self.session.state.value}"
        return ", ".join(sorted(self.stats.paused_reasons))

    def _on_health(self, event: HealthEvent) -> None:
        keys = {sub.key for sub in self._subs}
        if self._chained is not None:
            keys.add(self._chained[0].key)
        if event.subject not in keys:
            return
        reason = f"stale feed {event.subject}"
        if event.kind is HealthEventKind.FEED_STALE and reason not in self.stats.paused_reasons:
            self.stats.paused_reasons.add(reason)
            log.warning("runner: strategy %s PAUSED: %s during trading hours", self.strategy.name, reason)
        elif event.kind is HealthEventKind.FEED_FRESH and reason in self.stats.paused_reasons:
            self.stats.paused_reasons.discard(reason)
            log.warning("runner: strategy %s resumed: %s has data again", self.strategy.name, event.subject)

    def _on_session_event(self, event: SessionEvent) -> None:
        if event.kind is SessionEventKind.STATE:
            if event.state is SessionState.READY:
                log.info("runner: strategy %s may act again (%s)", self.strategy.name, event.message)
            else:
                log.warning(
                    "runner: strategy %s paused: session %s (%s)",
                    self.strategy.name,
                    event.state.value,
                    event.message,
                )

    # --- lockstep -------------------------------------------------------------------------------------------
    def _ack(self, bar_end_s: int) -> None:
        """Tell the simulator we are done with the bar ending at `bar_end_s`: after any send still running."""
        ctx = self.ctx
        pending = list(ctx.pending) if ctx is not None else []
        if pending:
            task = asyncio.ensure_future(self._ack_after(pending, bar_end_s))
            self._ack_tasks.add(task)
            task.add_done_callback(self._ack_tasks.discard)
            return
        self._send_ack(bar_end_s)

    async def _ack_after(self, pending: list[asyncio.Future[Any]], bar_end_s: int) -> None:
        await asyncio.wait(pending)
        self._send_ack(bar_end_s)

    def _send_ack(self, bar_end_s: int) -> None:
        self.session.venue.lockstep_ack(bar_end_s, self.interval_ns // NS_PER_SECOND, self.name)

    # --- futures rolls --------------------------------------------------------------------------------------
    def _executor(self) -> RollExecutor:
        return RollExecutor(
            self.session, strategy=self.strategy.name, combo=self.combo_rolls, timeout=self.roll_timeout
        )

    def _roll_failure(self, what: str, exc: Exception) -> None:
        why = f"{what} unfinished: {type(exc).__name__}: {exc}"
        self.stats.paused_reasons.discard(self._roll_failed)
        self._roll_failed = why
        self.stats.paused_reasons.add(why)
        log.error("runner: %s; the strategy stays paused until it is finished", why)

    async def _chain(self, expected: Instrument) -> Instrument:
        """Start-up chain reconciliation (seed 003 on_start) before the strategy starts: finish a roll a
        previous process left unfinished; move past the month whose roll time has come; roll a position held
        in a month past its roll time into the expected one; a month held that the strategy does not expect
        is reported and pauses the strategy (or, `adopt_held_month`, is traded instead)."""
        if expected.sec_type is not SecType.FUT:
            return expected
        session, product = self.session, expected.symbol.upper()
        executor = self._executor()
        try:
            for roll in await executor.resume(product):
                self.rolls.append(roll.roll_id)
                expected = session.instrument(product)
        except Exception as exc:
            self._roll_failure(f"roll of {product}", exc)
        now = session.market_clock()
        while self.roll_schedule.due(expected, now):
            expected = await session.qualify(self.roll_schedule.next_month(expected))
            session.switch_month(product, expected)
        held = {k: q for k, q in session.om.risk.positions().items() if q and k != expected.key}
        for key, qty in sorted(held.items()):
            month = session.om.instrument(key)
            if month.symbol.upper() != product or month.sec_type is not SecType.FUT:
                continue
            if self.roll_schedule.due(month, now):
                log.warning(
                    "runner: %+d %s held past its roll time: rolling it to %s first", qty, key, expected.key
                )
                try:
                    roll = await executor.roll(await session.qualify(month), expected)
                except Exception as exc:
                    self._roll_failure(f"roll of {key}", exc)
                    continue
                self.rolls.append(roll.roll_id)
                session.switch_month(product, expected)
            elif month.expiry is not None and expected.expiry is not None and month.expiry < expected.expiry:
                # the catalog moved on for the whole roll day; by the schedule this month rolls later today
                log.info("runner: %+d %s held, rolls at its roll time: trading it until then", qty, key)
                expected = await session.qualify(month)
                session.switch_month(product, expected)
            elif self.adopt_held_month:
                log.warning(
                    "runner: %+d %s held, %s expected: adopting %s (adopt_held_month)",
                    qty,
                    key,
                    expected.key,
                    key,
                )
                expected = await session.qualify(month)
                session.switch_month(product, expected)
            else:
                why = f"unexpected month {key} held ({qty:+d}); the strategy trades {expected.key}"
                log.error("runner: %s: the strategy waits (set adopt_held_month to trade %s)", why, key)
                self.stats.paused_reasons.add(why)
        return expected

    def _roll_if_due(self, bar_end_ns: int) -> None:
        inst = self.instrument
        if (
            inst is None
            or inst.sec_type is not SecType.FUT
            or self._stopping
            or (self._roll_task is not None and not self._roll_task.done())
            or not self.session.ready
        ):
            return
        if self._roll_failed:
            self._roll_task = asyncio.ensure_future(self._retry_roll(inst))
        elif self.roll_schedule.due(inst, bar_end_ns):
            self._roll_task = asyncio.ensure_future(self._roll(inst))

    async def _retry_roll(self, inst: Instrument) -> None:
        """Finish the unfinished roll(s) of the product (their orders kept working at IB meanwhile)."""
        ctx = self.ctx
        assert ctx is not None
        product = inst.symbol.upper()
        try:
            finished = await self._executor().resume(product)
        except Exception as exc:
            log.warning(
                "runner: the roll of %s is still unfinished: %s: %s", product, type(exc).__name__, exc
            )
            return
        self.stats.paused_reasons.discard(self._roll_failed)
        self._roll_failed = ""
        for roll in finished:
            self.rolls.append(roll.roll_id)
            for i in range(len(roll.moved)):
                ctx._mine.add(roll.cid(f"re{i}"))
        new = self.session.instrument(product)
        if new.key != inst.key:
            await self._switch_month(new)
        log.warning("runner: the roll of %s is finished: the strategy trades %s", product, new.key)

    async def _roll(self, old: Instrument) -> None:
        """Roll the strategy's position and working orders to the next month, then trade that month."""
        ctx = self.ctx
        assert ctx is not None
        session = self.session
        try:
            new = await session.qualify(self.roll_schedule.next_month(old))
            mine = [m for m in session.om.working_orders(old.key) if ctx.is_mine(m.client_order_id)]
            log.info("runner: %s reached its roll time: rolling to %s", old.key, new.key)
            roll = await self._executor().roll(old, new, orders=mine)
        except Exception as exc:
            self._roll_failure(f"roll of {old.key}", exc)
            return
        self.rolls.append(roll.roll_id)
        for i in range(len(roll.moved)):  # the moved orders are the strategy's: it hears of them
            ctx._mine.add(roll.cid(f"re{i}"))
        await self._switch_month(new)

    async def _switch_month(self, new: Instrument) -> None:
        """Market data and the strategy's context move to `new`. The indicators are not refilled: they hold
        the old month's prices for their window (a WARNING says so; the strategy is not restarted)."""
        ctx = self.ctx
        assert ctx is not None
        old = self.instrument.key if self.instrument is not None else "the old month"
        for sub in self._subs:
            with contextlib.suppress(Exception):
                self.session.feed.cancel(sub)
        self._subs.clear()
        if self._chained is not None:
            sub, previous = self._chained
            sub.on_tick = previous
            self._chained = None
        await self._warm_contract(new)
        self.instrument = new
        ctx.instrument = new
        self._aggregator = BarAggregator(
            self.bar,
            on_bar=self._on_closed_bar,
            late_policy="drop",
            input_bar_size=_REAL_TIME_BAR,
            name=f"{new.key} {self.bar}",
        )
        self._subs.append(self.session.feed.stream_bars(new, self._aggregator, on_bar=self._on_5s_bar))
        if self.quotes:
            self._subscribe_ticks(new)
        self.stats.no_data = ""
        log.info("runner: %s now trades %s", self.strategy.name, new.key)
        if ctx.feeds:
            log.warning(
                "runner: the indicators of %s hold %s's prices for their window; they see %s's from now on",
                self.strategy.name,
                old,
                new.key,
            )

    # --- internals ------------------------------------------------------------------------------------------
    async def _warm_up(self, ctx: LiveContext, inst: Instrument) -> None:
        """Fill the indicators the strategy registered with the last `warmup_bars` closed bars; the live bars
        closing meanwhile are held, then handed on (those the warm-up already holds are dropped)."""
        if self.warmup_bars <= 0 or not ctx.feeds:
            return
        if self.lockstep:
            log.info("runner: lockstep replay: %s's indicators start cold, as in a backtest", inst.key)
            return
        self._held = []
        try:
            warm = await warm_up(self.session, inst, self.bar, self.warmup_bars, self.data_dir)
        except Exception as exc:  # never fatal: the strategy warms on live bars, as without a warm-up
            log.warning("runner: warm-up of %s failed: %s: %s", inst.key, type(exc).__name__, exc)
            warm = Warmup(inst.key, (), 0, 0)
        finally:
            held, self._held = self._held or [], None
        self.warmup = warm
        try:
            ctx.warm(warm.bars)
        except Exception as exc:  # an indicator refusing a history bar: it warms on live bars instead
            log.warning("runner: warm-up of %s stopped: %s: %s", inst.key, type(exc).__name__, exc)
        last = warm.bars[-1].ts if warm.bars else -(2**63)
        for bar in held:
            if bar.ts > last:
                self._on_closed_bar(bar)

    async def _warm_contract(self, inst: Instrument) -> None:
        """Have the broker adapter resolve the order contract now, so that the first order is recorded and
        written to the socket inside the strategy's call (no contract round trip on the order path)."""
        await self.session.venue.prepare(inst)

    async def _flatten(self, timeout: float) -> None:
        inst = self.instrument
        if inst is None:
            return
        position = self.session.om.risk.position(inst)
        if not position:
            return
        request = OrderRequest(
            inst.key,
            Side.SELL if position > 0 else Side.BUY,
            abs(position),
            OrderType.MKT,
            reason="end of run: flatten",
        )
        try:
            # a close-out: no day cap or trading-hours rule may keep a stopping run's position open
            m = await self.session.submit(request, strategy=self.strategy.name, flatten=True)
        except Exception as exc:
            log.error("runner: flatten %+d %s failed: %s", position, inst.key, exc)
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not m.is_final and loop.time() < end:
            await asyncio.sleep(0.01)
        if m.status is not OrderStatus.FILLED:
            log.error("runner: flatten order %s is %s after %.1f s", m.client_order_id, m.status, timeout)

    @property
    def last_price(self) -> float:
        return self.ctx.last_price if self.ctx is not None else math.nan


def _hint(inst: Instrument, today: date) -> str:
    """Why a futures month may not trade at `today`: it is not the front month then."""
    if inst.sec_type is not SecType.FUT:
        return ""
    try:
        front = catalog.front_month(inst.symbol, today)
    except Exception:  # not a catalog product: no hint, the warning stands on its own
        return ""
    if front.local_symbol == inst.local_symbol:
        return ""
    return f"; {inst.local_symbol} may not trade yet on {today}: the front month is {front.local_symbol}"

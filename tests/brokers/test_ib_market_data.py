"""Live ticks and 5-second bars into BarAggregators, historical bars into the BarStore, and the feed's
survival of 1101, dropped sockets and competing sessions, against the TWS simulator."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

from ib_sim_helpers import START, WAIT, connected, run

from ibot.brokers.ib.config import ClientRole
from ibot.brokers.ib.connection import HealthEventKind
from ibot.brokers.ib.contracts import ContractResolver
from ibot.brokers.ib.market_data import HistoricalBars, MarketDataFeed, Subscription
from ibot.data.bars import BarAggregator
from ibot.data.store import BarStore
from ibot.exchange.hours import CME_GLOBEX
from ibot.model.market import NS_PER_SECOND, Bar, Tick, datetime_to_ns
from ibot.sim.server import SimServer

K = HealthEventKind
MINUTE = 60 * NS_PER_SECOND


class Counter:
    """Counts deliveries and lets a test await the next `n` of them."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self._more = asyncio.Event()

    def __call__(self, item: object) -> None:
        self.items.append(item)
        self._more.set()

    async def at_least(self, n: int, timeout: float = WAIT) -> None:
        async def wait() -> None:
            while len(self.items) < n:
                self._more.clear()
                await self._more.wait()

        await asyncio.wait_for(wait(), timeout)


def on_grid(price: float, tick: float = 0.25) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-9


def test_ticks_become_one_minute_bars_in_market_time() -> None:
    async def body(server: SimServer) -> None:
        connection, _ = await connected(server)
        resolver = ContractResolver(connection)
        mes = await resolver.qualify("MES")
        bars = Counter()
        ticks = Counter()
        aggregator = BarAggregator("1min", on_bar=bars, late_policy="drop", name=mes.key)
        feed = MarketDataFeed(connection, resolver)
        feed.stream_ticks(mes, aggregator, on_tick=ticks)
        await bars.at_least(3)
        got: list[Bar] = bars.items  # type: ignore[assignment]
        assert all(b.ts % MINUTE == 0 for b in got)
        assert all(b.ts >= datetime_to_ns(START) - MINUTE for b in got)  # market clock, not the wall clock
        assert [b.ts for b in got] == sorted({b.ts for b in got})
        assert all(on_grid(p) for b in got for p in (b.open, b.high, b.low, b.close))
        assert sum(b.volume for b in got) > 0
        trades = [t for t in ticks.items if isinstance(t, Tick) and t.last == t.last]
        quotes = [t for t in ticks.items if isinstance(t, Tick) and t.bid == t.bid]
        assert trades and quotes
        feed.cancel_all()
        assert feed.subscriptions == [] and connection.watchdog.keys == []
        await connection.stop()

    run(body)


def test_five_second_bars_sum_into_one_minute_bars() -> None:
    async def body(server: SimServer) -> None:
        connection, _ = await connected(server)
        resolver = ContractResolver(connection)
        mes = await resolver.qualify("MES")
        small = Counter()
        minutes = Counter()
        aggregator = BarAggregator("1min", on_bar=minutes, input_bar_size="5s")
        feed = MarketDataFeed(connection, resolver)
        feed.stream_bars(mes, aggregator, on_bar=small)
        await minutes.at_least(2)
        fives: list[Bar] = small.items  # type: ignore[assignment]
        assert all(b.ts % (5 * NS_PER_SECOND) == 0 for b in fives)
        for minute in minutes.items[1:]:  # the first minute may have started before the subscription
            assert isinstance(minute, Bar)
            inside = [b for b in fives if minute.ts <= b.ts < minute.ts + MINUTE]
            assert len(inside) == 12
            assert minute.volume == sum(b.volume for b in inside)
            assert (minute.open, minute.close) == (inside[0].open, inside[-1].close)
            assert minute.high == max(b.high for b in inside) and minute.low == min(b.low for b in inside)
        await connection.stop()

    run(body)


def test_historical_bars_are_stored_complete_and_in_utc(tmp_path: Path) -> None:
    async def body(server: SimServer) -> None:
        connection, _ = await connected(server, ClientRole.DATA_HISTORICAL)
        resolver = ContractResolver(connection)
        mes = await resolver.qualify("MES")
        history = HistoricalBars(connection, resolver)
        store = BarStore(tmp_path)
        rows = await history.backfill(store, mes, "3600 S", "5 mins")
        stored = store.read("MESH5", "5min")
        assert rows == len(stored) >= 11
        now = connection.clock()
        assert all(int(t) % (5 * MINUTE) == 0 and int(t) + 5 * MINUTE <= now for t in stored.ts)
        assert now - int(stored.ts[-1]) < 10 * MINUTE
        daily = await history.fetch(mes, "5 D", "1 day", use_rth=False)
        # Each day is stamped with its session's open; the day in progress (5 March) is not complete.
        days = [CME_GLOBEX.session_date(int(t)) for t in daily.ts]
        assert days[-1] == date(2025, 3, 4)
        assert days == CME_GLOBEX.trading_days(days[0], len(days))
        assert [int(t) for t in daily.ts] == [CME_GLOBEX.nominal_open_close(d)[0] for d in days]
        assert rows == store.write("MESH5", "5 mins", stored)  # a second write of the same bars adds nothing
        await connection.stop()

    run(body)


async def _streaming(server: SimServer) -> tuple[MarketDataFeed, Subscription, Counter]:
    connection, _ = await connected(server, stale_after_seconds=240.0)
    resolver = ContractResolver(connection)
    mes = await resolver.qualify("MES")
    feed = MarketDataFeed(connection, resolver)
    ticks = Counter()
    sub = feed.stream_ticks(mes, on_tick=ticks)
    await ticks.at_least(1)
    return feed, sub, ticks


def test_1101_resubscribes_and_ticks_resume() -> None:
    async def body(server: SimServer) -> None:
        feed, sub, ticks = await _streaming(server)
        connection = feed.connection
        [client] = server.live_clients()
        server.faults.connectivity_lost()
        server.faults.connectivity_restored(data_kept=False)
        assert client.subs == {}  # IB dropped the subscription
        await _health(feed, K.RESUBSCRIBED)
        before = len(ticks.items)
        await ticks.at_least(before + 1)
        assert sub.resubscribed == 1 and len(client.market_data_ids()) == 1
        await connection.stop()

    run(body)


def test_ticks_resume_after_a_dropped_socket_reconnects() -> None:
    async def body(server: SimServer) -> None:
        feed, sub, ticks = await _streaming(server)
        server.faults.drop()
        await _health(feed, K.RESUBSCRIBED)
        before = len(ticks.items)
        await ticks.at_least(before + 1)
        assert sub.resubscribed == 1
        [client] = server.live_clients()
        assert len(client.market_data_ids()) == 1
        await feed.connection.stop()

    run(body)


def test_watchdog_marks_the_feed_stale_while_data_stops_and_fresh_when_it_returns() -> None:
    async def body(server: SimServer) -> None:
        feed, sub, _ = await _streaming(server)
        connection = feed.connection
        server.faults.connectivity_lost()  # streaming stops
        stale = await _health(feed, K.FEED_STALE)
        assert stale.subject == sub.key == "MESH5:ticks"
        assert sub.key in connection.health.stale_feeds and connection.health.degraded
        server.faults.connectivity_restored(data_kept=True)
        fresh = await _health(feed, K.FEED_FRESH)
        assert fresh.subject == sub.key and fresh.ts - stale.ts > 0
        assert not connection.health.degraded
        await connection.stop()

    run(body)


def test_competing_session_10197_degrades_until_data_flows_again() -> None:
    async def body(server: SimServer) -> None:
        feed, _, _ = await _streaming(server)
        connection = feed.connection
        server.faults.competing_session(connection.client_id)
        event = await _health(feed, K.COMPETING_SESSION)
        assert event.code == 10197 and connection.health.competing_session
        await _health(feed, K.FEED_STALE)
        server.faults.competing_session(connection.client_id, on=False)
        await _health(feed, K.FEED_FRESH)
        assert not connection.health.competing_session and not connection.health.degraded
        await connection.stop()

    run(body)


async def _health(feed: MarketDataFeed, kind: HealthEventKind) -> object:
    """The next health event of `kind` on the feed's connection."""
    loop = asyncio.get_running_loop()
    found: asyncio.Future[object] = loop.create_future()

    def listen(event: object) -> None:
        if getattr(event, "kind", None) is kind and not found.done():
            found.set_result(event)

    remove = feed.connection.add_listener(listen)  # type: ignore[arg-type]
    try:
        return await asyncio.wait_for(found, WAIT)
    finally:
        remove()

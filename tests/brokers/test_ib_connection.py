"""The supervised IB connection against the TWS simulator: client ids, reconnects, 326, 1100-1102, farms,
the restart window; and the pure pieces (message classification, feed watchdog) on their own."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from ib_async import IB
from ib_sim_helpers import START, WAIT, Recorder, connected, run, settings, sim_clock

from ibot.brokers.ib.config import ClientRole, load_ib_settings
from ibot.brokers.ib.connection import (
    FeedWatchdog,
    HealthEventKind,
    IBConnection,
    LinkState,
    NotConnectedError,
    classify_message,
)
from ibot.exchange.hours import CME_GLOBEX
from ibot.model.market import NS_PER_SECOND, datetime_to_ns
from ibot.sim.server import SimServer

K = HealthEventKind


def client_ids(server: SimServer) -> set[int | None]:
    return {s.client_id for s in server.live_clients()}


# --- connecting ---------------------------------------------------------------------------------------------


def test_each_role_connects_with_its_client_id_from_the_plan() -> None:
    async def body(server: SimServer) -> None:
        realtime, _ = await connected(server, ClientRole.DATA_REALTIME)
        historical, _ = await connected(server, ClientRole.DATA_HISTORICAL)
        orders, _ = await connected(server, ClientRole.ORDER_MANAGER)
        assert (realtime.client_id, historical.client_id, orders.client_id) == (20, 21, 1000)
        assert client_ids(server) == {20, 21, 1000}
        assert realtime.health.state is LinkState.CONNECTED and not realtime.health.degraded
        for c in (realtime, historical, orders):
            await c.stop()
        assert orders.health.state is LinkState.STOPPED

    run(body)


def test_seed_004_environment_variables_choose_host_port_and_client_id(tmp_path: Path) -> None:
    async def body(server: SimServer) -> None:
        env = {"TWS_API_ADDR": "127.0.0.1", "TWS_API_PORT": str(server.port), "TWS_API_CLIENTID": "1234"}
        s = load_ib_settings(
            tmp_path / "absent.toml", env=env, overrides={"restart_window": {"enabled": False}}
        )
        connection = IBConnection(s, clock=sim_clock(server))
        await connection.start(timeout=WAIT)
        assert connection.role is ClientRole.ORDER_MANAGER
        assert client_ids(server) == {1234}
        await connection.stop()

    (tmp_path / "absent.toml").write_text("")
    run(body)


def test_connect_keeps_retrying_with_backoff_until_tws_listens() -> None:
    async def body(server: SimServer) -> None:
        server.stop_listening()
        connection = IBConnection(settings(server), ClientRole.DATA_REALTIME, clock=sim_clock(server))
        events = Recorder(connection)
        await connection.start(wait=False)
        await events.wait(K.CONNECT_FAILED)
        await events.wait(K.CONNECT_FAILED, after=events.kinds().index(K.CONNECT_FAILED) + 1)
        await server._listen_again()
        await connection.wait_connected(WAIT)
        assert connection.attempts >= 3
        await connection.stop()

    run(body)


# --- reconnecting -------------------------------------------------------------------------------------------


def test_reconnects_after_the_socket_drops() -> None:
    async def body(server: SimServer) -> None:
        connection, events = await connected(server)
        assert server.faults.drop(20) == 1
        await events.wait(K.DISCONNECTED)
        n = len(events.events)
        await events.wait(K.CONNECTED, after=n)
        assert connection.is_connected and connection.client_id == 20
        assert client_ids(server) == {20}
        await connection.stop()

    run(body)


def test_326_on_reconnect_steps_to_the_next_id_of_the_role() -> None:
    async def body(server: SimServer) -> None:
        connection, events = await connected(
            server,
            ClientRole.ORDER_MANAGER,
            on_client_id_in_use="next_id",
            reconnect_initial_delay=0.5,
            reconnect_max_delay=0.5,
        )
        assert connection.client_id == 1000
        server.faults.drop(1000)
        await events.wait(K.DISCONNECTED)
        lingering = IB()  # the old session's id is taken again before the reconnect comes
        await lingering.connectAsync("127.0.0.1", server.port, 1000, timeout=WAIT)
        n = len(events.events)
        refused = await events.wait(K.CLIENT_ID_IN_USE, after=n)
        assert refused.client_id == 1000 and refused.code == 326
        await events.wait(K.CONNECTED, after=n)
        assert connection.client_id == 1001
        assert client_ids(server) == {1000, 1001}
        lingering.disconnect()
        await connection.stop()

    run(body)


def test_326_with_retry_policy_waits_for_the_old_session_and_keeps_the_id() -> None:
    async def body(server: SimServer) -> None:
        holder = IB()
        await holder.connectAsync("127.0.0.1", server.port, 20, timeout=WAIT)
        connection = IBConnection(
            settings(server, on_client_id_in_use="retry"), ClientRole.DATA_REALTIME, clock=sim_clock(server)
        )
        events = Recorder(connection)
        await connection.start(wait=False)
        await events.wait(K.CLIENT_ID_IN_USE)
        assert not connection.is_connected
        holder.disconnect()
        await connection.wait_connected(WAIT)
        assert connection.client_id == 20 and connection.attempts >= 2
        await connection.stop()

    run(body)


# --- IB connectivity messages -----------------------------------------------------------------------------


def test_1100_pauses_trading_and_1102_resumes_it_without_resubscribing() -> None:
    async def body(server: SimServer) -> None:
        connection, events = await connected(server, ClientRole.ORDER_MANAGER)
        connection.require_trading("test order")
        server.faults.connectivity_lost()
        await events.wait(K.CONNECTIVITY_LOST)
        assert connection.health.trading_paused and connection.health.degraded
        with pytest.raises(NotConnectedError, match="trading is paused"):
            connection.require_trading("test order")
        server.faults.connectivity_restored(data_kept=True)
        await events.wait(K.RESTORED_DATA_KEPT)
        assert not connection.health.trading_paused
        connection.require_trading("test order")
        assert K.RESUBSCRIBED not in events.kinds()
        await connection.stop()

    run(body)


def test_1101_resumes_trading_and_asks_every_feed_to_resubscribe() -> None:
    async def body(server: SimServer) -> None:
        connection, events = await connected(server)
        calls: list[str] = []
        connection.on_resubscribe(lambda: calls.append("sync"))

        async def resubscribe_async() -> None:
            calls.append("async")

        connection.on_resubscribe(resubscribe_async)
        server.faults.connectivity_lost()
        await events.wait(K.CONNECTIVITY_LOST)
        server.faults.connectivity_restored(data_kept=False)
        await events.wait(K.RESUBSCRIBED)
        assert calls == ["sync", "async"]
        assert not connection.health.trading_paused
        await connection.stop()

    run(body)


@pytest.mark.parametrize(
    ("broken", "ok", "farm"), [(2103, 2104, "market:usfarm"), (2105, 2106, "hmds:ushmds")]
)
def test_farm_messages_mark_the_link_degraded_until_the_farm_is_back(broken: int, ok: int, farm: str) -> None:
    async def body(server: SimServer) -> None:
        connection, events = await connected(server)
        server.faults.farm(broken)
        event = await events.wait(K.FARM_BROKEN)
        assert (event.code, event.subject) == (broken, farm)
        assert connection.health.degraded and farm in connection.health.broken_farms
        assert not connection.health.trading_paused
        n = len(events.events)
        server.faults.farm(ok)
        await events.wait(K.FARM_OK, after=n)
        assert not connection.health.degraded
        await connection.stop()

    run(body)


def test_2110_marks_the_ib_server_link_broken_until_connectivity_is_restored() -> None:
    async def body(server: SimServer) -> None:
        connection, events = await connected(server)
        server.faults.farm(2110)
        await events.wait(K.FARM_BROKEN)
        assert "ib-server" in connection.health.broken_farms
        server.faults.connectivity_restored(data_kept=True)
        await events.wait(K.RESTORED_DATA_KEPT)
        assert not connection.health.degraded
        await connection.stop()

    run(body)


# --- IB's daily restart -------------------------------------------------------------------------------------


def test_restart_window_is_waited_out_without_a_reconnect_storm() -> None:
    # START is 10:00 New York; the simulator restarts at 10:05 and refuses connections for 10 market minutes
    # (one wall second at speed 600); the adapter is told the same window.
    window_end = datetime_to_ns(datetime(2025, 3, 5, 15, 15, tzinfo=UTC))

    async def body(server: SimServer) -> None:
        connection, events = await connected(
            server,
            restart_window={"enabled": True, "start": "10:05", "minutes": 10, "tz": "America/New_York"},
        )
        attempts_before = connection.attempts
        await events.wait(K.DISCONNECTED)
        waiting = await events.wait(K.RESTART_WINDOW)
        assert waiting.ts < window_end
        back = await events.wait(K.CONNECTED, after=events.kinds().index(K.RESTART_WINDOW))
        assert back.ts >= window_end
        failed = [e for e in events.events if e.kind is K.CONNECT_FAILED]
        assert all(e.ts >= window_end for e in failed)  # nothing was tried inside the window
        assert connection.attempts - attempts_before == 1 + len(failed)
        assert len(failed) <= 2
        await connection.stop()

    run(body, daily_restart=time(10, 5), restart_seconds=600)


# --- pure pieces --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (1100, "Connectivity between IB and Trader Workstation has been lost.", (K.CONNECTIVITY_LOST, "")),
        (1101, "restored - data lost.", (K.RESTORED_DATA_LOST, "")),
        (1102, "restored - data maintained.", (K.RESTORED_DATA_KEPT, "")),
        (2103, "Market data farm connection is broken:usfarm.nj", (K.FARM_BROKEN, "market:usfarm.nj")),
        (2104, "Market data farm connection is OK:usfarm", (K.FARM_OK, "market:usfarm")),
        (2105, "HMDS data farm connection is broken:euhmds", (K.FARM_BROKEN, "hmds:euhmds")),
        (2106, "HMDS data farm connection is OK:ushmds", (K.FARM_OK, "hmds:ushmds")),
        (2157, "Sec-def data farm connection is broken:secdefil", (K.FARM_BROKEN, "secdef:secdefil")),
        (2110, "Connectivity between Trader Workstation and server is broken.", (K.FARM_BROKEN, "ib-server")),
        (10197, "No market data during competing live session", (K.COMPETING_SESSION, "")),
        (202, "Order Canceled - reason:", None),
    ],
)
def test_ib_messages_are_classified(code: int, message: str, expected: tuple[K, str] | None) -> None:
    assert classify_message(code, message) == expected


def _ns(hour: int, minute: int, second: int = 0, day: int = 5) -> int:
    return datetime_to_ns(datetime(2025, 3, day, hour, minute, second, tzinfo=UTC))


def test_watchdog_marks_a_silent_feed_stale_once_and_fresh_when_data_returns() -> None:
    dog = FeedWatchdog(30 * NS_PER_SECOND)
    dog.watch("MESH5:ticks", _ns(15, 0), CME_GLOBEX)
    assert dog.check(_ns(15, 0, 29)) == []
    assert dog.check(_ns(15, 0, 30)) == ["MESH5:ticks"]
    assert dog.check(_ns(15, 5)) == []  # reported once
    assert dog.stale == {"MESH5:ticks"}
    assert dog.touch("MESH5:ticks", _ns(15, 5, 1)) is True
    assert dog.stale == frozenset()
    assert dog.touch("MESH5:ticks", _ns(15, 5, 2)) is False


def test_watchdog_does_not_count_market_closed_time() -> None:
    dog = FeedWatchdog(60 * NS_PER_SECOND)
    # Friday 8 March 2025 16:59 ET = 21:59 UTC: last data a minute before the weekly close.
    dog.watch("MESH5:bars5s", datetime_to_ns(datetime(2025, 3, 7, 21, 59, tzinfo=UTC)), CME_GLOBEX)
    saturday = datetime_to_ns(datetime(2025, 3, 8, 15, 0, tzinfo=UTC))
    assert dog.check(saturday) == []  # closed: silence is expected
    sunday_open = datetime_to_ns(datetime(2025, 3, 9, 22, 0, tzinfo=UTC))  # 18:00 EDT
    assert dog.check(sunday_open + 59 * NS_PER_SECOND) == []  # counted from the open, not from Friday
    assert dog.check(sunday_open + 60 * NS_PER_SECOND) == ["MESH5:bars5s"]


def test_watchdog_counts_from_the_reopening_after_a_holiday_halt() -> None:
    dog = FeedWatchdog(60 * NS_PER_SECOND)
    # Presidents' Day 2025 (Monday 17 February): equity index halts 13:00 ET (18:00 UTC), reopens 18:00 ET for
    # Tuesday, whose session began Sunday evening: silence counts from the reopening, not from Sunday.
    dog.watch("MESH5:bars5s", datetime_to_ns(datetime(2025, 2, 17, 17, 59, tzinfo=UTC)), CME_GLOBEX)
    assert dog.check(datetime_to_ns(datetime(2025, 2, 17, 20, 0, tzinfo=UTC))) == []  # halted
    reopen = datetime_to_ns(datetime(2025, 2, 17, 23, 0, tzinfo=UTC))  # 18:00 EST
    assert dog.check(reopen + 59 * NS_PER_SECOND) == []
    assert dog.check(reopen + 60 * NS_PER_SECOND) == ["MESH5:bars5s"]


def test_watchdog_forgets_unwatched_feeds() -> None:
    dog = FeedWatchdog(NS_PER_SECOND)
    dog.watch("A", _ns(15, 0))
    dog.check(_ns(15, 1))
    assert dog.unwatch("A") is True
    assert dog.keys == [] and dog.stale == frozenset()
    assert dog.touch("A", _ns(15, 2)) is False


def test_start_time_is_a_weekday_session() -> None:
    assert CME_GLOBEX.is_open(datetime_to_ns(START))

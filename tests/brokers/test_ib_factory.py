"""The injected venue (`ibot.brokers.ib.factory`): one venue per host, port and client id while it is open,
and a trading session that runs on the venue it is given (its broker, feed, contracts and health source),
against the unmodified ib_async client and the TWS simulator over loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ib_sim_helpers import WAIT, run, settings, sim_clock

from ibot.brokers.ib.config import ClientRole, IBSettings
from ibot.brokers.ib.factory import LockstepGate, cached_venues, ib_venue
from ibot.engine.session import TradingSession
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.sim.server import SimServer


def _limits() -> RiskLimits:
    return RiskLimits(max_position=5, max_order_size=5, price_band_pct=None)


def test_one_venue_per_host_port_and_client_id_while_open() -> None:
    async def main() -> None:
        base = IBSettings(host="127.0.0.1", port=7497)
        first = ib_venue(base)
        assert ib_venue(base) is first  # same address, same role: the same connection
        assert first.key == ("127.0.0.1", 7497, 1000)
        # an explicit id of the same role is another client at TWS: another venue
        other_id = ib_venue(base.model_copy(update={"client_id": 1001}))
        assert other_id is not first and other_id.key == ("127.0.0.1", 7497, 1001)
        other_port = ib_venue(base.model_copy(update={"port": 7496}))
        assert other_port is not first and other_port.key == ("127.0.0.1", 7496, 1000)
        tradingview = ib_venue(base, ClientRole.TRADINGVIEW)  # the webhook's range: 8000-8999
        assert tradingview.key == ("127.0.0.1", 7497, 8000)
        assert tradingview.connection.role is ClientRole.TRADINGVIEW
        assert set(cached_venues()) >= {first.key, other_id.key, other_port.key, tradingview.key}
        for venue in (first, other_id, other_port, tradingview):
            await venue.close()
        assert not set(cached_venues()) & {first.key, other_id.key, other_port.key, tradingview.key}
        again = ib_venue(base)  # a closed venue is forgotten: the next call builds a fresh one
        assert again is not first
        await again.close()

    asyncio.run(main())


def test_the_session_trades_through_the_venue_it_is_given(tmp_path: Path) -> None:
    records = OrderRecords(f"sqlite:///{tmp_path / 'orders.sqlite'}")
    records.migrate()

    async def body(server: SimServer) -> None:
        venue = ib_venue(settings(server), clock=sim_clock(server))
        session = TradingSession(
            venue.connection.settings, records, _limits(), symbols=("MES",), venue=venue, market_data=False
        )
        assert session.broker is venue.broker and session.feed is venue.feed
        assert session.contracts is venue.contracts and session.connection is venue.connection
        assert session.market_clock is venue.clock
        await session.start()
        try:
            m = await session.submit(OrderRequest(session.instruments[0].key, Side.BUY, 1, OrderType.MKT))
            assert m.order_id is not None
            loop = asyncio.get_running_loop()
            end = loop.time() + WAIT
            while server.broker.order(venue.client_id, m.order_id) is None and loop.time() < end:
                await asyncio.sleep(0.01)
            at_sim = server.broker.order(venue.client_id, m.order_id)
            assert at_sim is not None, "the order did not reach the simulator through the venue's broker"
            assert at_sim.client_id == 1000 and at_sim.view.order_ref == m.client_order_id
        finally:
            await session.stop()
        assert venue.key not in cached_venues(), "a stopped session's venue is still cached"

    try:
        run(body)
    finally:
        records.close()


def test_a_session_without_a_venue_builds_one_through_the_factory_for_its_role(tmp_path: Path) -> None:
    """The standalone webhook's session: the TradingView client-id range, seen at the simulator."""
    records = OrderRecords(f"sqlite:///{tmp_path / 'orders.sqlite'}")
    records.migrate()

    async def body(server: SimServer) -> None:
        session = TradingSession(
            settings(server),
            records,
            _limits(),
            symbols=("MES",),
            market_clock=sim_clock(server),
            market_data=False,
            role=ClientRole.TRADINGVIEW,
        )
        key = ("127.0.0.1", server.port, 8000)
        assert cached_venues()[key] is session.venue  # built by the factory, cached while open
        await session.start()
        try:
            assert session.connection.client_id == 8000
            m = await session.submit(OrderRequest(session.instruments[0].key, Side.SELL, 1, OrderType.MKT))
            loop = asyncio.get_running_loop()
            end = loop.time() + WAIT
            assert m.order_id is not None
            while server.broker.order(8000, m.order_id) is None and loop.time() < end:
                await asyncio.sleep(0.01)
            assert server.broker.order(8000, m.order_id) is not None, "no order of client 8000 at the sim"
            assert all(o.client_id == 8000 for o in server.broker.open_orders(None))
        finally:
            await session.stop()
        assert key not in cached_venues()

    try:
        run(body)
    finally:
        records.close()


def test_the_lockstep_gate_acknowledges_the_bar_every_strategy_has_finished() -> None:
    gate = LockstepGate()
    assert gate.ack("a", 0) == 0  # nobody expected: every acknowledgement goes through
    gate.expect(["a", "b"])
    assert gate.ack("a", 0) is None  # b has not declared itself: the market must not start
    assert gate.ack("b", 0) == 0
    assert gate.ack("b", 60) is None  # a is still on the bar ending at 0
    assert gate.ack("a", 60) == 60
    assert gate.ack("a", 60) is None  # said once
    assert gate.ack("a", 120) is None
    assert gate.leave("b") == 120  # b stopped: a alone decides
    assert gate.ack("c", 180) is None  # not expected: ignored

"""IB's informational messages are not failures; ib_async's lines are said once, in ibot's words (issue 13,
finding 7: a normal cancel printed `ERROR ib_async.wrapper: Error 202, reqId 7: Order Canceled`, farm-OK
messages logged as WARNING).

The real ib_async client against the simulator over loopback; what is asserted is what reaches the log.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from ib_sim_helpers import WAIT, run, settings, sim_clock

from ibot.brokers.ib.broker import IBBroker
from ibot.brokers.ib.config import ClientRole, IBSettings
from ibot.brokers.ib.connection import IBConnection
from ibot.brokers.ib.messages import install_log_filter, message_level
from ibot.model import catalog
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.broker import BrokerError, BrokerEvent, BrokerOrder, BrokerStatus
from ibot.sim.server import SimServer

MESH5 = catalog.contract("MES", 2025, 3)


def _ib_async(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("ib_async")]


def test_informational_codes_are_info_warnings_warning_and_errors_error() -> None:
    for code in (202, 2104, 2106, 2107, 2108, 2158, 2100, 2119):
        assert message_level(code) == logging.INFO, code
    for code in (2103, 2105, 2110, 2157, 1100, 1101, 10197, 2137, 399, 10147):
        assert message_level(code) == logging.WARNING, code
    for code in (100, 103, 200, 201, 162, 354, 502):
        assert message_level(code) == logging.ERROR, code


def test_a_normal_cancel_and_the_farm_messages_log_as_info_once(caplog: pytest.LogCaptureFixture) -> None:
    events: list[BrokerEvent] = []

    class Listener:
        def on_broker_event(self, event: BrokerEvent) -> None:
            events.append(event)

    async def until(match: object) -> None:
        assert callable(match)
        for _ in range(int(WAIT / 0.01)):
            if any(match(e) for e in events):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"no such event in {events[-5:]}")

    async def body(server: SimServer) -> None:
        connection = IBConnection(settings(server), ClientRole.ORDER_MANAGER, clock=sim_clock(server))
        broker = IBBroker(connection)
        broker.set_listener(Listener())
        oid = await broker.connect()
        price = await broker.marketable_limit(MESH5, Side.BUY, offset_ticks=0)
        request = OrderRequest(
            "MES", Side.BUY, 1, OrderType.LMT, client_order_id="t-1", limit_price=price - 100
        )
        await broker.place(BrokerOrder(request, MESH5, oid, "t-1"))
        await until(lambda e: isinstance(e, BrokerStatus) and e.status is OrderStatus.SUBMITTED)
        await broker.cancel(oid)
        await until(lambda e: isinstance(e, BrokerError) and e.code == 202)
        await asyncio.sleep(0.1)
        await broker.disconnect()

    with caplog.at_level(logging.INFO):
        run(body)
    lines = _ib_async(caplog)
    loud = [f"{r.levelname} {r.getMessage()}" for r in lines if r.levelno >= logging.WARNING]
    assert loud == []  # a cancel as asked and farm-OK messages are not failures
    cancelled = [r for r in lines if "Order Canceled" in r.getMessage()]
    assert len(cancelled) == 1, [r.getMessage() for r in cancelled]  # once, not again with the whole Trade
    assert cancelled[0].levelno == logging.INFO
    assert cancelled[0].getMessage().startswith("IB message 202 (id ")
    farm = [r for r in lines if r.getMessage().startswith(("IB message 2104", "IB message 2158"))]
    assert farm and all(r.levelno == logging.INFO for r in farm)


def test_a_refused_port_is_said_by_ibot_once_per_attempt_not_twice_by_ib_async(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    values = {
        "port": port,
        "reconnect_initial_delay": 0.05,
        "reconnect_max_delay": 0.05,
        "connect_timeout": 1,
    }
    connection = IBConnection(IBSettings.model_validate(values), ClientRole.ORDER_MANAGER)

    async def main() -> None:
        await connection.start(wait=False)
        for _ in range(200):
            if connection.attempts >= 3:
                break
            await asyncio.sleep(0.01)
        await connection.stop()

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    assert connection.attempts >= 3
    ours = [r for r in caplog.records if "cannot connect to 127.0.0.1" in r.getMessage()]
    assert ours and all(r.levelno == logging.WARNING and r.name == "ibot.brokers.ib" for r in ours)
    assert [r.getMessage() for r in _ib_async(caplog) if r.levelno >= logging.WARNING] == []


def test_ib_async_own_errors_are_said_once_in_ibot_words(caplog: pytest.LogCaptureFixture) -> None:
    install_log_filter()
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            logging.getLogger("ib_async.ib").error("cancelMktData: No reqId found for contract MESH5-test")
    said = [r for r in caplog.records if "No reqId found for contract MESH5-test" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in said] == [
        (logging.ERROR, "ib_async: cancelMktData: No reqId found for contract MESH5-test")
    ]

# ruff: noqa: N803  (EWrapper callbacks keep IB's parameter names)
"""The session against IB's official Python client (ibapi, which offers v100..226), run in its own thread."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.wrapper import EWrapper

from ibot.model import catalog
from ibot.sim.server import SimServer
from ibot.sim.session import HandshakeError, negotiate

START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
WAIT = 5.0


class App(EWrapper, EClient):
    """Records callbacks; `wait_for(name)` blocks until one arrived."""

    def __init__(self) -> None:
        EClient.__init__(self, self)
        self.events: list[tuple[Any, ...]] = []
        self._cond = threading.Condition()

    def _add(self, *event: Any) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, name: str, count: int = 1) -> list[tuple[Any, ...]]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.of(name)) >= count, WAIT)
        assert ok, f"no {name} within {WAIT} s; got {[e[0] for e in self.events]}"
        return self.of(name)

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == name]

    def nextValidId(self, orderId: int) -> None:
        self._add("nextValidId", orderId)

    def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str, advanced: str = "") -> None:
        self._add("error", reqId, errorCode, errorString)

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:
        self._add("contractDetails", reqId, contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:
        self._add("contractDetailsEnd", reqId)

    def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:
        self._add("tickPrice", reqId, tickType, price)

    def historicalData(self, reqId: int, bar: Any) -> None:
        self._add("historicalData", reqId, bar)

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:
        self._add("historicalDataEnd", reqId)

    def connectionClosed(self) -> None:
        self._add("connectionClosed")


@pytest.fixture
def server() -> Iterator[SimServer]:
    loop = asyncio.new_event_loop()
    srv = SimServer(port=0, symbols=["MES", "SPY"], speed=600.0, start=START)
    loop.run_until_complete(srv.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield srv
    asyncio.run_coroutine_threadsafe(srv.stop(), loop).result(WAIT)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(WAIT)
    loop.close()


def connected(server: SimServer, client_id: int = 1) -> App:
    app = App()
    app.connect("127.0.0.1", server.port, client_id)
    threading.Thread(target=app.run, daemon=True).start()
    return app


def mes_june() -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = "MES", "FUT", "CME", "USD"
    c.lastTradeDateOrContractMonth = "202506"
    return c


def test_ibapi_connects_at_178_and_gets_next_valid_id_and_farms(server: SimServer) -> None:
    app = connected(server)
    app.wait_for("nextValidId")
    assert app.serverVersion() == 178
    codes = [e[2] for e in app.wait_for("error", 3)]
    assert codes[:3] == [2104, 2106, 2158]
    app.disconnect()


def test_ibapi_contract_details(server: SimServer) -> None:
    app = connected(server)
    app.wait_for("nextValidId")
    app.reqContractDetails(11, mes_june())
    app.wait_for("contractDetailsEnd")
    [(_, req_id, cd)] = app.of("contractDetails")
    expected = catalog.contract("MES", 2025, 6)
    assert req_id == 11
    assert cd.contract.conId == expected.con_id
    assert cd.contract.localSymbol == "MESM5"
    assert cd.minTick == 0.25 and cd.contract.multiplier == "5"
    assert cd.minSize == Decimal(1)
    app.disconnect()


def test_ibapi_ticks_arrive(server: SimServer) -> None:
    app = connected(server)
    app.wait_for("nextValidId")
    app.reqMktData(21, mes_june(), "", False, False, [])
    ticks = app.wait_for("tickPrice", 7)  # last, high, low, close, open, bid, ask
    assert {t[2] for t in ticks} >= {1, 2, 4}
    assert all(t[3] % 0.25 == 0 for t in ticks)
    app.disconnect()


def test_ibapi_historical_bars_format_date_2(server: SimServer) -> None:
    app = connected(server)
    app.wait_for("nextValidId")
    app.reqHistoricalData(31, mes_june(), "", "1800 S", "1 min", "TRADES", 0, 2, False, [])
    app.wait_for("historicalDataEnd")
    bars = [e[2] for e in app.of("historicalData")]
    assert len(bars) in (30, 31)
    times = [int(b.date) for b in bars]
    assert all(b - a == 60 for a, b in itertools.pairwise(times))
    assert times[-1] <= server.market.now_s
    app.disconnect()


def test_ibapi_duplicate_client_id_gets_326(server: SimServer) -> None:
    first = connected(server, 9)
    first.wait_for("nextValidId")
    second = connected(server, 9)
    [(_, req_id, code, _)] = [e for e in second.wait_for("error") if e[2] == 326]
    assert (req_id, code) == (-1, 326)
    second.wait_for("connectionClosed")
    first.disconnect()


@pytest.mark.parametrize(
    ("offer", "expected"),
    [("v157..176", 176), ("v100..226", 178), ("v178", 178), ("v160..170 +PACEAPI", 170)],
)
def test_negotiate_answers_min_of_both_maxima(offer: str, expected: int) -> None:
    assert negotiate(offer) == expected


@pytest.mark.parametrize("offer", ["v100..150", "v179..200", "hello"])
def test_negotiate_refuses_ranges_it_cannot_meet(offer: str) -> None:
    with pytest.raises(HandshakeError):
        negotiate(offer)

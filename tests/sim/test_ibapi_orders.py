# ruff: noqa: N803  (EWrapper callbacks keep IB's names)
"""The order path against IB's official Python client (ibapi 10.46, EClient/EWrapper in its own thread)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.wrapper import EWrapper
from sim_helpers import START

from ibot.model import catalog
from ibot.sim.server import SimServer

WAIT = 5.0


class App(EWrapper, EClient):
    """Records callbacks; `wait_for(name)` blocks until enough arrived."""

    def __init__(self) -> None:
        EClient.__init__(self, self)
        self.events: list[tuple[Any, ...]] = []
        self._cond = threading.Condition()

    def _add(self, *event: Any) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == name]

    def wait_until(self, name: str, test: Any = None) -> list[tuple[Any, ...]]:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(test is None or test(e) for e in self.of(name)), WAIT)
        assert ok, f"no {name} within {WAIT} s; got {[e[0] for e in self.events]}"
        return self.of(name)

    def nextValidId(self, orderId: int) -> None:
        self._add("nextValidId", orderId)

    def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str, advanced: str = "") -> None:
        self._add("error", reqId, errorCode, errorString)

    def openOrder(self, orderId: int, contract: Contract, order: Order, orderState: Any) -> None:
        self._add("openOrder", orderId, order.permId, orderState.status)

    def orderStatus(
        self,
        orderId: int,
        status: str,
        filled: Decimal,
        remaining: Decimal,
        avgFillPrice: float,
        permId: int,
        parentId: int,
        lastFillPrice: float,
        clientId: int,
        whyHeld: str,
        mktCapPrice: float,
    ) -> None:
        self._add("orderStatus", orderId, status, filled, remaining, avgFillPrice, permId, clientId)

    def execDetails(self, reqId: int, contract: Contract, execution: Any) -> None:
        self._add(
            "execDetails", reqId, execution.orderId, execution.execId, execution.shares, execution.price
        )

    def commissionAndFeesReport(self, commissionAndFeesReport: Any) -> None:
        r = commissionAndFeesReport
        self._add("commission", r.execId, r.commissionAndFees, r.currency)

    def position(self, account: str, contract: Contract, position: Decimal, avgCost: float) -> None:
        self._add("position", contract.conId, position, avgCost)

    def positionEnd(self) -> None:
        self._add("positionEnd")


@pytest.fixture
def server() -> Iterator[SimServer]:
    loop = asyncio.new_event_loop()
    srv = SimServer(port=0, symbols=["MES"], speed=600.0, start=START)
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
    app.wait_until("nextValidId")
    return app


def mes_june() -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = "MES", "FUT", "CME", "USD"
    c.lastTradeDateOrContractMonth = "202506"
    return c


def market_order(action: str, qty: int) -> Order:
    o = Order()
    o.action, o.orderType, o.totalQuantity = action, "MKT", Decimal(qty)
    return o


def test_ibapi_market_order_fills_with_execution_commission_and_position(server: SimServer) -> None:
    app = connected(server, 3)
    order_id = app.of("nextValidId")[0][1]
    app.placeOrder(order_id, mes_june(), market_order("BUY", 2))
    statuses = app.wait_until("orderStatus", lambda e: e[2] == "Filled")
    filled = next(e for e in statuses if e[2] == "Filled")
    assert filled[1] == order_id and filled[3] == Decimal(2) and filled[4] == Decimal(0)
    assert filled[6] > 0 and filled[7] == 3  # permId, clientId
    [execution] = app.wait_until("execDetails")
    assert execution[1] == -1 and execution[2] == order_id and execution[4] == Decimal(2)
    [report] = app.wait_until("commission")
    assert report[1] == execution[3] and report[2] == pytest.approx(1.24) and report[3] == "USD"
    assert next(e[3] for e in app.of("openOrder")) == "Submitted"
    app.reqPositions()
    app.wait_until("positionEnd")
    [pos] = app.of("position")
    assert pos[1] == catalog.contract("MES", 2025, 6).con_id and pos[2] == Decimal(2)
    # IB's avgCost for futures: price x multiplier plus the opening commission per contract
    assert pos[3] == pytest.approx(execution[5] * 5 + 0.62)
    app.disconnect()

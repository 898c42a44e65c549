# ruff: noqa: N803  (EWrapper callbacks keep IB's parameter names)
"""Shared helpers of the tests against IB's official Python client (ibapi): a recording client run in its own
thread and a simulator served from a background event loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.wrapper import EWrapper
from sim_helpers import START, WAIT

from ibot.sim.background import serve_in_thread
from ibot.sim.server import SimServer

Event = tuple[Any, ...]


class RecordingApp(EWrapper, EClient):
    """Records each callback as (callback name, *payload), in arrival order; the payload is the callback's
    arguments the tests read, in IB's order. `wait_for`/`wait_until` block up to WAIT s and fail naming what
    did arrive."""

    def __init__(self) -> None:
        EClient.__init__(self, self)
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def _add(self, *event: Any) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, name: str) -> list[Event]:
        """Every event named `name` so far."""
        with self._cond:
            return [e for e in self.events if e[0] == name]

    def wait_for(self, name: str, count: int = 1) -> list[Event]:
        """Every event named `name`, once at least `count` arrived."""
        return self._wait(name, lambda events: len(events) >= count)

    def wait_until(self, name: str, test: Callable[[Event], bool] | None = None) -> list[Event]:
        """Every event named `name`, once one of them passes `test` (any one, if no test)."""
        return self._wait(name, lambda events: any(test is None or test(e) for e in events))

    def _wait(self, name: str, done: Callable[[list[Event]], bool]) -> list[Event]:
        with self._cond:
            ok = self._cond.wait_for(lambda: done(self.of(name)), WAIT)
            assert ok, f"no {name} within {WAIT} s; got {[e[0] for e in self.events]}"
            return self.of(name)

    # --- session and errors

    def nextValidId(self, orderId: int) -> None:
        self._add("nextValidId", orderId)

    def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str, advanced: str = "") -> None:
        self._add("error", reqId, errorCode, errorString)

    def connectionClosed(self) -> None:
        self._add("connectionClosed")

    # --- reference data

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:
        self._add("contractDetails", reqId, contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:
        self._add("contractDetailsEnd", reqId)

    def symbolSamples(self, reqId: int, contractDescriptions: Any) -> None:
        self._add("symbolSamples", reqId, contractDescriptions)

    def marketRule(self, marketRuleId: int, priceIncrements: Any) -> None:
        self._add("marketRule", marketRuleId, priceIncrements)

    def familyCodes(self, familyCodes: Any) -> None:
        self._add("familyCodes", familyCodes)

    def userInfo(self, reqId: int, whiteBrandingId: str) -> None:
        self._add("userInfo", reqId, whiteBrandingId)

    # --- market data

    def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:
        self._add("tickPrice", reqId, tickType, price)

    def historicalData(self, reqId: int, bar: Any) -> None:
        self._add("historicalData", reqId, bar)

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:
        self._add("historicalDataEnd", reqId)

    # --- orders, executions and positions

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
        e = execution
        self._add("execDetails", reqId, e.orderId, e.execId, e.shares, e.price)

    def commissionAndFeesReport(self, commissionAndFeesReport: Any) -> None:
        r = commissionAndFeesReport
        self._add("commissionAndFeesReport", r.execId, r.commissionAndFees, r.currency)

    def position(self, account: str, contract: Contract, position: Decimal, avgCost: float) -> None:
        self._add("position", contract.conId, position, avgCost)

    def positionEnd(self) -> None:
        self._add("positionEnd")


@contextmanager
def threaded_server(symbols: list[str]) -> Iterator[SimServer]:
    """A started simulator (free port, START, 600x) whose event loop runs in a daemon thread, so a blocking
    client can talk to it from the test's thread; stopped and its loop closed on exit."""
    with serve_in_thread(SimServer(port=0, symbols=symbols, speed=600.0, start=START), WAIT) as server:
        yield server


def connected(server: SimServer, client_id: int = 1, *, await_id: bool = True) -> RecordingApp:
    """A RecordingApp connected to `server` with its reader in a daemon thread; with `await_id`, returned once
    the session is up (nextValidId arrived)."""
    app = RecordingApp()
    app.connect("127.0.0.1", server.port, client_id)
    threading.Thread(target=app.run, daemon=True).start()
    if await_id:
        app.wait_for("nextValidId")
    return app


def mes_june() -> Contract:
    """MES June 2025 as a client describes it (no conId)."""
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = "MES", "FUT", "CME", "USD"
    c.lastTradeDateOrContractMonth = "202506"
    return c


def market_order(action: str, qty: int) -> Order:
    o = Order()
    o.action, o.orderType, o.totalQuantity = action, "MKT", Decimal(qty)
    return o

"""Smoke test of IB's own Python client (module `ibapi`, any nautilus-ibapi release) against ibot.sim.

The simulator runs on a background event loop, the client's reader in its own thread. Besides each check's
values, every message the client decodes is checked for fields its decoder left unread, and the decoder's
logged errors count as failures: a field misplaced for the negotiated version shows up there.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from _common import WAIT, Checks, expected_server_version, threaded_server
from ibapi import server_versions
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.decoder import Decoder
from ibapi.order import Order
from ibapi.wrapper import EWrapper

CLIENT_ID = 7
ERROR_HAS_TIME = "errorTime" in inspect.signature(EWrapper.error).parameters
CALLBACKS = (  # recorded as they are: (name, *args)
    "contractDetails",
    "contractDetailsEnd",
    "tickPrice",
    "tickSize",
    "historicalData",
    "historicalDataEnd",
    "openOrder",
    "openOrderEnd",
    "orderStatus",
    "execDetails",
    "execDetailsEnd",
    "commissionReport",
    "commissionAndFeesReport",
    "position",
    "positionEnd",
    "completedOrder",
    "completedOrdersEnd",
    "updateAccountValue",
    "updatePortfolio",
    "accountDownloadEnd",
    "accountSummary",
    "accountSummaryEnd",
    "nextValidId",
    "connectionClosed",
)

# --- leftover fields: wrap each decoder function so that what it did not read is recorded -------------------
LEFTOVERS: list[str] = []


def _watch(name: str, process: Callable[..., Any]) -> Callable[..., Any]:
    def watched(decoder: Any, fields: Any) -> Any:
        out = process(decoder, fields)
        if hasattr(fields, "__next__"):
            rest = list(fields)
            if rest:
                LEFTOVERS.append(f"{name}: {len(rest)} unread field(s) {rest[:6]}")
        return out

    watched.watched = True  # type: ignore[attr-defined]
    return watched


def watch_decoders(decoder: Decoder) -> None:
    for info in decoder.msgId2handleInfo.values():
        meth = getattr(info, "processMeth", None)
        if meth is not None and not getattr(meth, "watched", False):  # the table is the class's: once
            info.processMeth = _watch(info.processMeth.__name__, info.processMeth)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage()[:300])


DECODER_ERRORS = _Errors()
logging.getLogger("ibapi").addHandler(DECODER_ERRORS)


class App(EWrapper, EClient):
    """Records each callback (name, *args) in arrival order; `wait` blocks until a test passes."""

    def __init__(self) -> None:
        EClient.__init__(self, self)
        self.events: list[tuple[Any, ...]] = []
        self.cond = threading.Condition()

    def add(self, *event: Any) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def of(self, name: str) -> list[tuple[Any, ...]]:
        with self.cond:
            return [e[1:] for e in self.events if e[0] == name]

    def wait(self, name: str, test: Callable[[tuple[Any, ...]], bool] = lambda e: True) -> tuple[Any, ...]:
        """The first `name` event passing `test`, waiting up to WAIT s for it."""
        with self.cond:
            found: list[tuple[Any, ...]] = []

            def seen() -> bool:
                found[:] = [e for e in self.of(name) if test(e)]
                return bool(found)

            if not self.cond.wait_for(seen, WAIT):
                names = sorted({e[0] for e in self.events})
                raise AssertionError(f"no matching {name} within {WAIT} s (got {names})")
            return found[0]

    def error(self, *args: Any) -> None:  # (reqId, [errorTime,] code, text[, advancedOrderRejectJson])
        req_id, code, text = (args[0], args[2], args[3]) if ERROR_HAS_TIME else args[:3]
        self.add("error", req_id, code, text)

    def wait_more(self, name: str, before: int) -> None:
        """Until more than `before` `name` events arrived."""
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.of(name)) > before, WAIT), f"no new {name}"


for _name in CALLBACKS:
    setattr(App, _name, lambda self, *args, _n=_name: self.add(_n, *args))


def connect(port: int, client_id: int = CLIENT_ID) -> App:
    app = App()
    app.connect("127.0.0.1", port, client_id)
    if app.decoder is not None:  # handshake done: the reader thread has not decoded anything yet
        watch_decoders(app.decoder)
    threading.Thread(target=app.run, daemon=True).start()
    return app


def mes(symbol: str = "MES") -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = symbol, "FUT", "CME", "USD"
    c.lastTradeDateOrContractMonth = "202506"
    return c


def order(action: str, qty: int, kind: str = "MKT", price: float | None = None) -> Order:
    o = Order()
    o.action, o.orderType, o.totalQuantity = action, kind, Decimal(qty)
    if price is not None:
        o.lmtPrice = price
    for attr in ("eTradeOnly", "firmQuoteOnly"):  # ibapi < 10.2x sends them: TWS rejects True
        if hasattr(o, attr):
            setattr(o, attr, False)
    return o


def cancel(app: App, order_id: int) -> None:
    params = list(inspect.signature(app.cancelOrder).parameters)
    if len(params) > 1 and params[1] == "orderCancel":
        from ibapi.order_cancel import OrderCancel

        app.cancelOrder(order_id, OrderCancel())
    else:
        app.cancelOrder(order_id, "")


def main(c: Checks) -> None:
    with threaded_server() as server:
        app = connect(server.port)
        app.wait("nextValidId")
        c.server_version = app.serverVersion()
        want = expected_server_version(server_versions.MAX_CLIENT_VER)
        c.expect("connect: negotiated version", c.server_version == want, f"{c.server_version} != {want}")
        next_id = app.of("nextValidId")[0][0]

        def details() -> None:
            app.reqContractDetails(1, mes())
            app.wait("contractDetailsEnd", lambda e: e[0] == 1)
            [(_, cd)] = app.of("contractDetails")
            k = cd.contract
            got = (k.localSymbol, k.exchange, k.currency, str(k.multiplier), cd.minTick, cd.timeZoneId)
            assert got == ("MESM5", "CME", "USD", "5", 0.25, "US/Central"), got
            assert k.conId > 0 and cd.longName and cd.realExpirationDate == "20250620", vars(cd)
            assert cd.marketRuleIds and cd.tradingHours, vars(cd)
            if hasattr(cd, "minSize") and c.server_version >= 164:
                assert cd.minSize == 1 and cd.sizeIncrement == 1, (cd.minSize, cd.sizeIncrement)

        c.run("contract details MES", details)

        def unknown() -> None:
            app.reqContractDetails(2, mes("NOPE"))
            app.wait("error", lambda e: e[0] == 2 and e[1] == 200)

        c.run("contract details unknown symbol -> 200", unknown)
        contract = mes()
        contract.conId = 0

        def ticks() -> None:
            app.reqMktData(3, contract, "", False, False, [])
            bid = app.wait("tickPrice", lambda e: e[0] == 3 and e[1] == 1 and e[2] > 0)[2]
            ask = app.wait("tickPrice", lambda e: e[0] == 3 and e[1] == 2 and e[2] > 0)[2]
            app.wait("tickSize", lambda e: e[0] == 3 and e[1] in (0, 3) and e[2] > 0)
            assert 0 < ask - bid <= 1.0, (bid, ask)

        c.run("market data ticks", ticks)

        for fmt, req in ((1, 4), (2, 5)):

            def bars(fmt: int = fmt, req: int = req) -> None:
                app.reqHistoricalData(req, contract, "", "3600 S", "1 min", "TRADES", 0, fmt, False, [])
                app.wait("historicalDataEnd", lambda e: e[0] == req)
                got = [b for r, b in app.of("historicalData") if r == req]
                assert len(got) >= 55, f"{len(got)} bars"
                d = got[-1].date
                assert d.isdigit() if fmt == 2 else d.startswith("20250305 "), d
                assert got[-1].high >= got[-1].low > 0, got[-1]

            c.run(f"historical bars formatDate={fmt}", bars)

        mkt_id = next_id

        def filled() -> None:
            app.placeOrder(mkt_id, contract, order("BUY", 2))
            app.wait("orderStatus", lambda e: e[0] == mkt_id and e[1] == "Filled")
            _, k, ex = app.wait("execDetails", lambda e: e[2].orderId == mkt_id)
            assert (ex.side, float(ex.shares), k.localSymbol) == ("BOT", 2.0, "MESM5"), vars(ex)
            assert ex.clientId == CLIENT_ID and ex.permId > 0, vars(ex)
            name = (
                "commissionAndFeesReport"
                if hasattr(EWrapper, "commissionAndFeesReport")
                else "commissionReport"
            )
            (report,) = app.wait(name, lambda e: e[0].execId == ex.execId)
            fee = getattr(report, "commissionAndFees", getattr(report, "commission", None))
            assert math.isclose(fee, 1.24) and report.currency == "USD", vars(report)
            _, k, o, _ = app.wait("openOrder", lambda e: e[0] == mkt_id)
            assert (o.action, o.orderType, float(o.totalQuantity), o.clientId) == (
                "BUY",
                "MKT",
                2.0,
                CLIENT_ID,
            ), o
            assert o.permId > 0 and k.localSymbol == "MESM5", vars(o)

        c.run("MKT order filled, execDetails + commission", filled)
        bid = app.wait("tickPrice", lambda e: e[0] == 3 and e[1] == 1)[2]
        lmt_id = next_id + 1

        def lmt_cycle() -> None:
            app.placeOrder(lmt_id, contract, order("BUY", 1, "LMT", bid - 25))
            app.wait("orderStatus", lambda e: e[0] == lmt_id and e[1] == "Submitted")
            app.placeOrder(lmt_id, contract, order("BUY", 1, "LMT", bid - 20))
            app.wait("openOrder", lambda e: e[0] == lmt_id and math.isclose(e[2].lmtPrice, bid - 20))
            cancel(app, lmt_id)
            app.wait("orderStatus", lambda e: e[0] == lmt_id and e[1] == "Cancelled")

        c.run("LMT placed, modified, cancelled", lmt_cycle)

        def positions() -> None:
            app.reqPositions()
            app.wait("positionEnd")
            got = [(k.localSymbol, float(q)) for _, k, q, _ in app.of("position")]
            assert got == [("MESM5", 2.0)], got

        c.run("positions", positions)
        rest_id = next_id + 2

        def open_orders() -> None:
            app.placeOrder(rest_id, contract, order("SELL", 1, "LMT", bid + 25))
            app.wait("orderStatus", lambda e: e[0] == rest_id and e[1] == "Submitted")
            before = len(app.of("openOrderEnd"))
            app.reqOpenOrders()
            app.wait_more("openOrderEnd", before)
            last = app.of("openOrder")[-1]
            assert last[0] == rest_id and last[2].orderType == "LMT" and last[3].status == "Submitted", last

        c.run("open orders", open_orders)

        def completed() -> None:
            app.reqCompletedOrders(True)
            app.wait("completedOrdersEnd")
            got = sorted(
                (st.status, o.orderType, float(o.totalQuantity)) for _, o, st in app.of("completedOrder")
            )
            assert got == [("Cancelled", "LMT", 1.0), ("Filled", "MKT", 2.0)], got
            k = app.of("completedOrder")[0][0]
            assert k.localSymbol == "MESM5", vars(k)

        c.run("completed orders", completed)

        def executions() -> None:
            from ibapi.execution import ExecutionFilter

            app.reqExecutions(6, ExecutionFilter())
            app.wait("execDetailsEnd", lambda e: e[0] == 6)
            got = [(float(ex.shares), ex.side) for r, _, ex in app.of("execDetails") if r == 6]
            assert got == [(2.0, "BOT")], got

        c.run("executions", executions)

        def account() -> None:
            app.reqAccountUpdates(True, "DU123456")
            app.wait("accountDownloadEnd")
            keys = {e[0] for e in app.of("updateAccountValue")}
            assert {"NetLiquidation", "TotalCashValue"} <= keys, keys
            assert [e[0].localSymbol for e in app.of("updatePortfolio")] == ["MESM5"], app.of(
                "updatePortfolio"
            )
            app.reqAccountSummary(7, "All", "NetLiquidation,TotalCashValue")
            app.wait("accountSummaryEnd", lambda e: e[0] == 7)
            tags = {e[2] for e in app.of("accountSummary") if e[0] == 7}
            assert tags == {"NetLiquidation", "TotalCashValue"}, tags

        c.run("account values / summary", account)

        def what_if() -> None:  # holding 2 long: selling 2 frees both contracts' margin
            probe = order("SELL", 2)
            probe.whatIf = True
            app.placeOrder(next_id + 3, contract, probe)
            _, _, o, st = app.wait("openOrder", lambda e: e[0] == next_id + 3)
            assert o.whatIf and float(st.initMarginChange) == -3000 and float(st.initMarginAfter) == 0, vars(
                st
            )
            time.sleep(0.2)
            assert not [e for e in app.of("orderStatus") if e[0] == next_id + 3], "what-if order was placed"

        c.run("what-if order: margins, not placed", what_if)

        def duplicate() -> None:
            other = connect(server.port)
            try:
                other.wait("error", lambda e: e[1] == 326)
            finally:
                other.disconnect()

        c.run("duplicate client id -> 326", duplicate)
        cancel(app, rest_id)
        time.sleep(0.3)
        app.disconnect()
    c.expect("every field read by the decoders", not LEFTOVERS, "; ".join(LEFTOVERS[:5]))
    c.expect("no decoder errors logged", not DECODER_ERRORS.records, "; ".join(DECODER_ERRORS.records[:3]))


if __name__ == "__main__":
    Checks().main(main)

"""Smoke test of an ib_insync-family client (ib_insync or ib_async, named by argv[1]) against ibot.sim.

Server and client share one asyncio loop. Prints PASS/FAIL per check and a closing RESULT line.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from _common import WAIT, Checks, expected_server_version, new_server

lib = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "ib_async")
IB, Future, LimitOrder, MarketOrder = lib.IB, lib.Future, lib.LimitOrder, lib.MarketOrder
CLIENT_ID = 7
DECODER_ERRORS: list[str] = []  # what the library's decoder logged: a message it could not read


class _Errors(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        DECODER_ERRORS.append(record.getMessage()[:300])


logging.getLogger(f"{lib.__name__}.Decoder").addHandler(_Errors(logging.ERROR))


async def until(test: Callable[[], Any], what: str, timeout: float = WAIT) -> None:
    for _ in range(int(timeout / 0.05)):
        if test():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def errors_of(ib: Any) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *rest: seen.append((req_id, code, text))
    return seen


async def main(c: Checks) -> None:
    server = new_server()
    await server.start()
    try:
        await scenario(c, server)
    finally:
        await server.stop()


async def scenario(c: Checks, server: Any) -> None:
    async def check(name: str, body: Callable[[], Awaitable[Any]]) -> None:
        try:
            await asyncio.wait_for(body(), 3 * WAIT)
        except Exception as e:
            c.fail(name, f"{type(e).__name__}: {e}")
        else:
            c.ok(name)

    ib = IB()
    errors = errors_of(ib)
    await ib.connectAsync("127.0.0.1", server.port, CLIENT_ID, timeout=WAIT)
    c.server_version = ib.client.serverVersion()
    want = expected_server_version(ib.client.MaxClientVersion)
    c.expect("connect: negotiated version", c.server_version == want, f"{c.server_version} != {want}")
    c.expect("connect: managed accounts", ib.managedAccounts() == ["DU123456"], ib.managedAccounts())

    mes: Any = None

    async def details() -> None:
        nonlocal mes
        [cd] = await ib.reqContractDetailsAsync(Future("MES", "202506", "CME"))
        k = cd.contract
        got = (k.localSymbol, k.exchange, k.currency, k.multiplier, cd.minTick, cd.timeZoneId)
        assert got == ("MESM5", "CME", "USD", "5", 0.25, "US/Central"), got
        assert k.conId > 0 and cd.longName and cd.realExpirationDate == "20250620", cd
        assert cd.marketRuleIds and cd.tradingHours, cd
        mes = k

    await check("contract details MES", details)

    async def unknown() -> None:
        got = await ib.reqContractDetailsAsync(Future("NOPE", "202506", "CME"))
        assert got == [], got
        await until(lambda: any(code == 200 for _, code, _ in errors), "error 200")

    await check("contract details unknown symbol -> 200", unknown)
    if mes is None:
        return

    ticker = ib.reqMktData(mes)

    async def ticks() -> None:
        await until(lambda: ticker.bid > 0 and ticker.ask > 0 and ticker.bidSize > 0, "bid/ask ticks")
        assert math.isclose(ticker.ask - ticker.bid, 0.25), (ticker.bid, ticker.ask)

    await check("market data ticks", ticks)

    for fmt in (1, 2):

        async def bars(fmt: int = fmt) -> None:
            got = await ib.reqHistoricalDataAsync(mes, "", "3600 S", "1 min", "TRADES", False, fmt)
            assert len(got) >= 55, f"{len(got)} bars"
            d = got[-1].date
            assert isinstance(d, datetime) and (fmt == 1 or d.tzinfo is not None), d
            assert got[-1].high >= got[-1].low > 0, got[-1]

        await check(f"historical bars formatDate={fmt}", bars)

    market = ib.placeOrder(mes, MarketOrder("BUY", 2))

    async def filled() -> None:
        await until(lambda: market.orderStatus.status == "Filled", "Filled")
        await until(lambda: market.fills and market.fills[-1].commissionReport.execId, "commission report")
        fill = market.fills[-1]
        assert (fill.execution.side, fill.execution.shares) == ("BOT", 2), fill.execution
        assert math.isclose(fill.commissionReport.commission, 1.24), fill.commissionReport
        assert fill.contract.localSymbol == "MESM5", fill.contract
        o = market.order
        assert o.permId > 0 and o.clientId == CLIENT_ID and o.totalQuantity == 2, o

    await check("MKT order filled, execDetails + commission", filled)

    limit = ib.placeOrder(mes, LimitOrder("BUY", 1, ticker.bid - 25))

    async def lmt_cycle() -> None:
        await until(lambda: limit.orderStatus.status == "Submitted", "Submitted")
        want = limit.order.lmtPrice = ticker.bid - 20
        ib.placeOrder(mes, limit.order)
        limit.order.lmtPrice = 0.0  # each OPEN_ORDER copies the decoded price back into the trade's order
        await until(lambda: math.isclose(limit.order.lmtPrice, want), "OPEN_ORDER with the modified price")
        opened = [getattr(t, "order", t) for t in await ib.reqAllOpenOrdersAsync()]
        assert [o.orderId for o in opened] == [limit.order.orderId], opened
        ib.cancelOrder(limit.order)
        await until(lambda: limit.orderStatus.status == "Cancelled", "Cancelled")

    await check("LMT placed, modified, cancelled", lmt_cycle)

    async def positions() -> None:
        got = await ib.reqPositionsAsync()
        assert [(p.contract.localSymbol, p.position) for p in got] == [("MESM5", 2)], got

    await check("positions", positions)

    resting = ib.placeOrder(mes, LimitOrder("SELL", 1, ticker.ask + 25))

    async def open_orders() -> None:
        await until(lambda: resting.orderStatus.status == "Submitted", "Submitted")
        got = [getattr(t, "order", t) for t in await ib.reqOpenOrdersAsync()]  # ib_insync < 0.9.86: Orders
        assert [(o.orderId, o.orderType, o.action) for o in got] == [
            (resting.order.orderId, "LMT", "SELL")
        ], got
        assert [t.contract.localSymbol for t in ib.openTrades()] == ["MESM5"], ib.openTrades()

    await check("open orders", open_orders)

    async def completed() -> None:
        got = await ib.reqCompletedOrdersAsync(apiOnly=True)
        statuses = sorted(t.orderStatus.status for t in got)
        assert statuses == ["Cancelled", "Filled"], statuses
        done = next(t for t in got if t.orderStatus.status == "Filled")
        assert done.contract.localSymbol == "MESM5" and done.order.totalQuantity == 2, done
        assert done.order.orderType == "MKT" and done.order.action == "BUY", done.order

    await check("completed orders", completed)

    async def executions() -> None:
        got = await ib.reqExecutionsAsync()  # (the answer's Fill objects are new: no commission report)
        assert [(f.execution.side, f.execution.shares) for f in got] == [("BOT", 2)], got
        assert got[0].execution.execId == market.fills[-1].execution.execId, got

    await check("executions", executions)

    async def account() -> None:
        await until(ib.accountValues, "account values")
        tags = {v.tag for v in ib.accountValues()}
        assert {"NetLiquidation", "TotalCashValue"} <= tags, tags
        await until(ib.portfolio, "portfolio")
        assert [p.contract.localSymbol for p in ib.portfolio()] == ["MESM5"], ib.portfolio()
        summary = await ib.accountSummaryAsync()
        assert {"NetLiquidation", "TotalCashValue"} <= {v.tag for v in summary}, summary

    await check("account values / summary", account)

    async def what_if() -> None:  # holding 2 long: selling 2 frees both contracts' margin
        state = await ib.whatIfOrderAsync(mes, MarketOrder("SELL", 2))
        got = (float(state.initMarginChange), float(state.initMarginAfter), state.commission)
        assert got == (-3000.0, 0.0, 1.24), state
        await asyncio.sleep(0.2)
        assert [p.position for p in ib.positions()] == [2], ib.positions()

    await check("what-if order: margins, not placed", what_if)

    async def duplicate() -> None:
        other = IB()
        seen = errors_of(other)
        try:
            await other.connectAsync("127.0.0.1", server.port, CLIENT_ID, timeout=WAIT)
        except Exception:
            pass
        finally:
            other.disconnect()
        assert any(code == 326 for _, code, _ in seen + errors), seen

    await check("duplicate client id -> 326", duplicate)
    ib.cancelOrder(resting.order)
    ib.disconnect()
    c.expect("no decoder errors logged", not DECODER_ERRORS, "; ".join(DECODER_ERRORS[:3]))


if __name__ == "__main__":
    Checks().main(lambda checks: asyncio.run(main(checks)))

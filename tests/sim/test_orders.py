"""The simulator's order path: the broker on its own, then the real ib_async client over loopback."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from broker_helpers import MES, advance, make_broker, mes_contract, place, quote_now
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Order, StopOrder
from sim_helpers import WAIT, connect, error_waiter, qualified_mes, run

from ibot.sim.orders import PositionBook
from ibot.sim.server import SimServer

# --- FIFO position book (exact money) ------------------------------------------------------------------


def test_position_book_realizes_fifo_lots_net_of_both_commissions() -> None:
    book = PositionBook(MES)  # tick 0.25, tick value 1.25
    fee = Decimal("0.62")
    assert book.apply(2, 20_000, fee) is None  # opens 2 @ 5000.00
    assert book.apply(1, 20_004, fee) is None  # opens 1 @ 5001.00
    # sells 3 @ 5002.00: lot 1 gains 8 ticks x 2, lot 2 gains 4 ticks x 1 -> 20 ticks = 25.00 gross,
    # minus 3 opening and 3 closing commissions (6 x 0.62 = 3.72)
    assert book.apply(-3, 20_008, fee) == Decimal("21.28")
    assert book.quantity == 0 and not book.lots
    # flip: short 1 @ 5000.00 then buy 2 @ 4999.00 closes the short (+4 ticks) and opens a long
    assert book.apply(-1, 20_000, fee) is None
    assert book.apply(2, 19_996, fee) == Decimal("5.00") - Decimal("1.24")
    assert book.quantity == 1
    assert book.unrealized(20_000) == Decimal("5.00") - fee


# --- the broker without sockets ------------------------------------------------------------------------


def test_limit_order_acknowledged_then_cancel_goes_pending_cancel_cancelled_202() -> None:
    broker, rec = make_broker()
    bid, _ = quote_now(broker)
    place(broker, 1, "BUY", 1, "LMT", lmt_price=bid - 10)
    place(broker, 2, "BUY", 1, "LMT", lmt_price=bid - 10)
    broker.cancel(1, 1)
    assert rec.kinds(1) == [
        ("open", 1, "Submitted"),
        ("status", 1, "Submitted"),
        ("open", 1, "PendingCancel"),
        ("status", 1, "PendingCancel"),
        ("status", 1, "Cancelled"),
        ("error", 1, 202),
    ]
    one, two = broker.order(1, 1), broker.order(1, 2)
    assert one is not None and two is not None
    assert one.perm_id != two.perm_id and one.perm_id > 0


def test_cancel_unknown_is_10147_and_cancel_of_cancelled_is_10148() -> None:
    broker, rec = make_broker()
    broker.cancel(1, 77)
    place(broker, 3, "BUY", 1, "LMT", lmt_price=quote_now(broker)[0] - 5)
    broker.cancel(1, 3)
    broker.cancel(1, 3)
    assert [e[2:] for e in rec.events if e[0] == "error" and e[2] != 202] == [
        (10147, "OrderId 77 that needs to be cancelled is not found."),
        (10148, "OrderId 3 that needs to be cancelled cannot be cancelled, state: Cancelled."),
    ]


def test_same_id_is_a_modify_and_a_different_order_under_it_is_103() -> None:
    broker, rec = make_broker()
    bid, _ = quote_now(broker)
    place(broker, 5, "BUY", 1, "LMT", lmt_price=bid - 10)
    place(broker, 5, "BUY", 2, "LMT", lmt_price=bid - 12)
    order = broker.order(1, 5)
    assert order is not None and (order.quantity, order.limit_price) == (2, bid - 12)
    assert rec.kinds(5)[-2:] == [("open", 5, "Submitted"), ("status", 5, "Submitted")]
    place(broker, 5, "SELL", 1, "LMT", lmt_price=bid + 10)
    assert rec.errors() == [103]
    # another client may use the same order id: keyed by (clientId, orderId), with its own permId
    place(broker, 5, "BUY", 1, "LMT", client_id=2, lmt_price=bid - 10)
    other = broker.order(2, 5)
    assert other is not None and other.perm_id != order.perm_id


def test_refusals_name_ibs_codes() -> None:
    broker, rec = make_broker()
    bid, _ = quote_now(broker)
    place(broker, 1, "BUY", 1, "LMT", lmt_price=bid + 0.1)  # MES ticks are 0.25
    place(broker, 2, "BUY", 1, contract=mes_contract(symbol="NOPE"))
    place(broker, 3, "BUY", 0)
    place(broker, 4, "BUY", -2)
    place(broker, 5, "BUY", 1, "TRAIL")
    place(broker, 6, "BUY", 1, "STP")  # no stop price
    assert rec.errors() == [110, 200, 434, 201, 387, 403]
    assert broker.open_orders() == []


def test_margin_above_equity_is_201_and_inactive() -> None:
    broker, rec = make_broker(cash=Decimal(2_000))  # MES initial margin 1500 per contract
    place(broker, 1, "BUY", 1)
    place(broker, 2, "BUY", 2)  # 1 held + 2 = 3 x 1500 = 4500 > 2000 of equity
    assert rec.kinds(2)[0] == ("error", 2, 201)
    assert "INITIAL MARGIN [4500.00 USD]" in rec.events[[e[:2] for e in rec.events].index(("error", 2))][3]
    assert rec.kinds(2)[1:] == [("open", 2, "Inactive"), ("status", 2, "Inactive")]
    assert broker.positions()[0][1] == 1


def test_what_if_answers_margins_and_commission_and_never_trades() -> None:
    broker, rec = make_broker()
    place(broker, 1, "BUY", 1)  # held: 1 long, initial margin 1500
    advance(broker, 2)
    place(broker, 2, "SELL", 3, what_if=True)  # would go 2 short: initial margin 1500 -> 3000
    [(kind, order_id, state)] = [e for e in rec.events if e[1] == 2]
    assert (kind, order_id, state.status) == ("what_if", 2, "PreSubmitted")
    assert (state.init_margin_before, state.init_margin_change, state.init_margin_after) == (1500, 1500, 3000)
    assert state.maint_margin_after == 2 * state.maint_margin_before
    assert state.commission == Decimal("1.86") and state.commission_currency == "USD"
    assert state.equity_with_loan_after == state.equity_with_loan_before - 1.86
    advance(broker, 30)
    assert broker.order(1, 2) is None and broker.open_orders() == []
    assert [q for _, q, _ in broker.positions()] == [1] and broker.next_valid_id == 3
    place(broker, 3, "HOLD", 1, what_if=True)
    assert rec.errors()[-1] == 321


def test_market_order_bigger_than_the_quote_fills_partially_over_seconds() -> None:
    broker, rec = make_broker(cash=Decimal(10_000_000))
    place(broker, 1, "BUY", 300)
    advance(broker, 30)
    fills = [e for e in rec.events if e[0] == "exec"]
    assert len(fills) > 1 and sum(f[2] for f in fills) <= 300
    statuses = [e for e in rec.events if e[0] == "status"]
    assert any(s[2] == "Submitted" and 0 < s[3] < 300 for s in statuses)  # partially filled, still working
    order = broker.order(1, 1)
    assert order is not None and order.filled == sum(f[2] for f in fills)
    assert order.filled + order.remaining == 300


def test_bracket_waits_for_transmit_then_children_activate_and_one_cancels_the_other() -> None:
    broker, rec = make_broker()
    bid, ask = quote_now(broker)
    place(broker, 1, "BUY", 1, "LMT", lmt_price=ask + 1, transmit=False)
    place(broker, 2, "SELL", 1, "LMT", lmt_price=ask + 50, parent_id=1, transmit=False)
    assert rec.events == []  # nothing is sent before the group transmits
    place(broker, 3, "SELL", 1, "STP", aux_price=bid - 50, parent_id=1)
    parent, take, stop = broker.order(1, 1), broker.order(1, 2), broker.order(1, 3)
    assert parent is not None and take is not None and stop is not None
    assert parent.status == "Filled"  # marketable on arrival
    assert (take.status, stop.status) == ("Submitted", "PreSubmitted")  # the stop waits for its trigger
    assert take.oca_group == stop.oca_group == str(parent.perm_id)
    broker.fill_now(1, 2)
    assert take.status == "Filled" and stop.status == "Cancelled"
    assert broker.positions() == [] or broker.positions()[0][1] == 0


def test_bracket_children_are_held_with_why_held_child_until_the_parent_fills() -> None:
    broker, rec = make_broker()
    bid, _ = quote_now(broker)
    place(broker, 1, "BUY", 1, "LMT", lmt_price=bid - 20, transmit=False)
    place(broker, 2, "SELL", 1, "STP", aux_price=bid - 40, parent_id=1)
    stop = broker.order(1, 2)
    assert stop is not None and (stop.status, stop.why_held) == ("PreSubmitted", "child,trigger")
    broker.cancel(1, 1)  # cancelling the parent cancels the held child
    assert stop.status == "Cancelled"
    assert ("error", 2, 202) in rec.kinds(2)


def test_user_oca_group_cancel_cancels_its_siblings() -> None:
    broker, _rec = make_broker()
    bid, _ = quote_now(broker)
    place(broker, 6, "BUY", 1, "LMT", lmt_price=bid - 10, oca_group="g1", oca_type=1)
    place(broker, 7, "BUY", 1, "LMT", lmt_price=bid - 11, oca_group="g1", oca_type=1)
    broker.cancel(1, 6)
    assert [o.status for o in (broker.order(1, 6), broker.order(1, 7)) if o] == ["Cancelled", "Cancelled"]


def test_resting_limit_fills_when_the_market_trades_through_it() -> None:
    broker, _rec = make_broker()
    bid, _ = quote_now(broker)
    place(broker, 1, "BUY", 1, "LMT", lmt_price=bid - 1.0)
    for _ in range(200):
        advance(broker, 30)
        if broker.order(1, 1).status == "Filled":  # type: ignore[union-attr]
            break
    order = broker.order(1, 1)
    assert order is not None and order.status == "Filled"
    assert order.avg_fill_price <= bid - 1.0  # never worse than the limit


# --- ib_async over loopback ----------------------------------------------------------------------------


async def done(trade: object) -> None:
    while not trade.isDone():  # type: ignore[attr-defined]
        await asyncio.wait_for(trade.statusEvent, WAIT)  # type: ignore[attr-defined]


def test_ib_async_market_order_fills_with_commission_report() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        trade = ib.placeOrder(contract, MarketOrder("BUY", 2))
        reports = []
        ib.commissionReportEvent += lambda t, f, r: reports.append(r)
        await done(trade)
        while not reports:
            await asyncio.wait_for(ib.commissionReportEvent, WAIT)
        assert trade.orderStatus.status == "Filled"
        assert trade.orderStatus.filled == 2 and trade.orderStatus.remaining == 0
        assert sum(f.execution.shares for f in trade.fills) == 2
        assert trade.fills[0].commissionReport.commission == 2 * 0.62  # IBKR tiered MES, per side
        assert trade.order.permId > 0 and trade.fills[0].execution.permId == trade.order.permId
        assert [e.status for e in trade.log][:2] == ["PendingSubmit", "Submitted"]
        ib.disconnect()

    run(body)


def test_ib_async_what_if_order_gets_its_margins_and_is_not_placed() -> None:
    """ib_async (and ib_insync) wait for the what-if OPEN_ORDER whose initMarginChange is set."""

    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        state = await asyncio.wait_for(ib.whatIfOrderAsync(contract, MarketOrder("BUY", 2)), WAIT)
        assert float(state.initMarginChange) == 3000 and float(state.initMarginAfter) == 3000
        assert state.commission == 1.24 and state.commissionCurrency == "USD"
        await asyncio.sleep(0.2)
        assert ib.openTrades() == [] and server.broker.open_orders() == [] and server.positions() == []
        ib.disconnect()

    run(body)


def test_ib_async_place_modify_cancel_and_global_cancel() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        bid = server.market.quote(await_inst(server, contract.conId), int(server.market.now_s)).bid  # type: ignore[union-attr]
        trade = ib.placeOrder(contract, LimitOrder("BUY", 1, bid - 25))
        while trade.orderStatus.status != "Submitted":
            await asyncio.wait_for(trade.statusEvent, WAIT)
        trade.order.lmtPrice = bid - 30
        ib.placeOrder(contract, trade.order)
        while trade.log[-1].message != "Modified":
            await asyncio.wait_for(trade.statusEvent, WAIT)
        assert server.broker.order(1, trade.order.orderId).limit_price == bid - 30  # type: ignore[union-attr]
        cancelled = error_waiter(ib, 202)
        ib.cancelOrder(trade.order)
        await done(trade)
        assert trade.orderStatus.status == "Cancelled"
        assert "PendingCancel" in [e.status for e in trade.log]
        assert (await asyncio.wait_for(cancelled, WAIT))[0] == trade.order.orderId
        a = ib.placeOrder(contract, LimitOrder("BUY", 1, bid - 25))
        b = ib.placeOrder(contract, StopOrder("BUY", 1, bid + 50))
        while not (a.orderStatus.status == "Submitted" and b.orderStatus.status == "PreSubmitted"):
            await asyncio.wait_for(ib.orderStatusEvent, WAIT)
        assert len(await ib.reqAllOpenOrdersAsync()) == 2
        ib.reqGlobalCancel()
        await done(a)
        await done(b)
        assert a.orderStatus.status == b.orderStatus.status == "Cancelled"
        ib.disconnect()

    run(body)


def await_inst(server: SimServer, con_id: int):  # type: ignore[no-untyped-def]
    from ibot.sim.market import ContractQuery

    [inst] = server.book.match(ContractQuery(con_id=con_id, include_expired=True), server.market.asof())
    return inst


def test_ib_async_bracket_parent_fills_children_work_as_one_oca_group() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        q = server.market.quote(await_inst(server, contract.conId), int(server.market.now_s))
        assert q is not None
        parent, take, stop = ib.bracketOrder("BUY", 1, q.ask + 1, q.ask + 100, q.bid - 100)
        trades = [ib.placeOrder(contract, o) for o in (parent, take, stop)]
        await done(trades[0])
        while not (trades[1].orderStatus.status == "Submitted" and trades[2].orderStatus.status):
            await asyncio.wait_for(ib.orderStatusEvent, WAIT)
        assert trades[0].orderStatus.status == "Filled"
        assert trades[2].orderStatus.status == "PreSubmitted"  # the stop waits for its trigger price
        assert trades[1].orderStatus.parentId == parent.orderId
        assert {t.order.orderId for t in await ib.reqOpenOrdersAsync()} == {take.orderId, stop.orderId}
        # a second client sees the children's OCA group: the parent's permId (as a real gateway names it)
        other = await connect(server, 2)
        groups = {t.order.orderId: t.order.ocaGroup for t in await other.reqAllOpenOrdersAsync()}
        assert groups[take.orderId] == groups[stop.orderId] == str(trades[0].order.permId)
        other.disconnect()
        server.faults.fill_order(1, take.orderId)
        await done(trades[1])
        await done(trades[2])
        assert (trades[1].orderStatus.status, trades[2].orderStatus.status) == ("Filled", "Cancelled")
        ib.disconnect()

    run(body)


def test_reqexecutions_after_reconnect_delivers_a_fill_made_while_disconnected() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server, 4)
        contract = await qualified_mes(ib)
        bid = server.market.quote(await_inst(server, contract.conId), int(server.market.now_s)).bid  # type: ignore[union-attr]
        trade = ib.placeOrder(contract, LimitOrder("BUY", 1, bid - 25))
        while trade.orderStatus.status != "Submitted":
            await asyncio.wait_for(trade.statusEvent, WAIT)
        order_id = trade.order.orderId
        ib.disconnect()
        await asyncio.sleep(0.1)
        server.faults.fill_order(4, order_id)  # the order keeps working at the server and fills now
        ib2 = IB()
        await ib2.connectAsync("127.0.0.1", server.port, 4, timeout=WAIT)  # syncs executions on connect
        fills = [f for f in ib2.fills() if f.execution.orderId == order_id]
        assert len(fills) == 1 and fills[0].execution.price == bid - 25
        assert fills[0].commissionReport.commission == 0.62
        filtered = await ib2.reqExecutionsAsync(ExecutionFilter(clientId=4, symbol="MES"))
        assert [f.execution.execId for f in filtered] == [fills[0].execution.execId]
        assert await ib2.reqExecutionsAsync(ExecutionFilter(clientId=99)) == []
        completed = await ib2.reqCompletedOrdersAsync(False)
        assert [t.orderStatus.status for t in completed if t.order.permId == trade.order.permId] == ["Filled"]
        ib2.disconnect()

    run(body)


def test_ib_async_order_on_unknown_contract_is_cancelled_with_200() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        contract.conId, contract.localSymbol, contract.lastTradeDateOrContractMonth = 0, "", "203001"
        refused = error_waiter(ib, 200)
        trade = ib.placeOrder(contract, Order(action="BUY", totalQuantity=1, orderType="MKT"))
        assert (await asyncio.wait_for(refused, WAIT))[0] == trade.order.orderId
        assert trade.orderStatus.status == "Cancelled"
        ib.disconnect()

    run(body)

"""The simulated account: positions, cash, commissions and P&L add up, the same in every message family."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from broker_helpers import MES, make_broker, place
from ib_async import MarketOrder
from sim_helpers import WAIT, connect, qualified_mes, run

from ibot.sim.account import account_values, summary_values
from ibot.sim.server import SimServer


def test_snapshot_identities_hold_after_a_round_trip_and_an_open_position() -> None:
    broker, rec = make_broker()
    place(broker, 1, "BUY", 3)
    place(broker, 2, "SELL", 2)
    place(broker, 3, "SELL", 4)  # closes the last long and opens a 3-lot short
    snap = broker.snapshot()
    reports = [e[3] for e in rec.events if e[0] == "commission" and e[3] is not None]
    assert snap.realized == sum(reports, Decimal(0))
    assert snap.cash == Decimal(100_000) + snap.realized
    assert snap.net_liquidation == snap.cash + snap.unrealized
    assert snap.init_margin == 3 * MES.initial_margin
    assert snap.available_funds == snap.net_liquidation - snap.init_margin
    [pos] = snap.positions
    assert pos.quantity == -3
    # realized by hand: every fill was at the quote of one second, buy at the ask, sell at the bid
    buys = [e for e in rec.events if e[0] == "exec" and e[1] == 1]
    sells = [e for e in rec.events if e[0] == "exec" and e[1] in (2, 3)]
    ask, bid = buys[0][3], sells[0][3]
    gross = (Decimal(str(bid)) - Decimal(str(ask))) * 3 * MES.multiplier
    assert snap.realized == gross - Decimal("0.62") * 6  # 3 opening + 3 closing commissions
    assert snap.commissions == Decimal("0.62") * 9


def test_account_values_and_summary_agree_to_the_cent() -> None:
    broker, _ = make_broker()
    place(broker, 1, "BUY", 2)
    snap = broker.snapshot()
    values = {(k, c): v for k, v, c in account_values(snap)}
    summary = {(k, c): v for k, v, c in summary_values(snap, ["All", "$LEDGER:ALL"])}
    for key in ("NetLiquidation", "TotalCashValue", "InitMarginReq", "AvailableFunds", "ExcessLiquidity"):
        assert values[(key, "USD")] == summary[(key, "USD")]
    for key in ("RealizedPnL", "UnrealizedPnL", "CashBalance"):
        assert values[(key, "USD")] == summary[(key, "USD")] == summary[(key, "BASE")]
    assert Decimal(values[("NetLiquidation", "USD")]) == Decimal(values[("TotalCashValue", "USD")]) + Decimal(
        values[("UnrealizedPnL", "USD")]
    )
    only = summary_values(snap, ["NetLiquidation"])
    assert [row[0] for row in only] == ["NetLiquidation"]


def test_ib_async_positions_account_values_summary_and_pnl_add_up() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        for action, qty in (("BUY", 3), ("SELL", 1)):
            trade = ib.placeOrder(contract, MarketOrder(action, qty))
            while not trade.isDone():
                await asyncio.wait_for(trade.statusEvent, WAIT)
        await asyncio.sleep(0.3)  # the account push follows on the next clock step
        [pos] = ib.positions()
        assert pos.contract.conId == contract.conId and pos.position == 2
        reports = [f.commissionReport for f in ib.fills()]
        assert len(reports) == 2 and all(r.commission > 0 for r in reports)
        server.market.speed = 1e-9  # freeze the clock so every figure below is read at one mark
        await asyncio.sleep(0.2)
        # without a position change TWS updates account values every 3 minutes: download them at this mark
        await ib.reqAccountUpdatesAsync("DU123456")
        values = {(v.tag, v.currency): v.value for v in ib.accountValues()}
        summary = {(v.tag, v.currency): v.value for v in await ib.accountSummaryAsync()}
        cash, unreal = Decimal(values[("TotalCashValue", "USD")]), Decimal(values[("UnrealizedPnL", "USD")])
        realized = Decimal(values[("RealizedPnL", "USD")])
        assert Decimal(values[("NetLiquidation", "USD")]) == cash + unreal
        assert cash == Decimal(1_000_000) + realized
        assert realized == sum((Decimal(str(r.realizedPNL)) for r in reports), Decimal(0))
        assert values[("InitMarginReq", "USD")] == "3000.00"
        for key in ("NetLiquidation", "TotalCashValue", "RealizedPnL", "UnrealizedPnL"):
            assert summary[(key, "USD")] == values[(key, "USD")]
        pnl = ib.reqPnL("DU123456")
        single = ib.reqPnLSingle("DU123456", "", contract.conId)
        await asyncio.sleep(0.3)
        assert Decimal(str(pnl.realizedPnL)) == realized and Decimal(str(pnl.unrealizedPnL)) == unreal
        assert Decimal(str(pnl.dailyPnL)) == realized + unreal
        assert single.position == 2 and Decimal(str(single.unrealizedPnL)) == unreal
        [item] = ib.portfolio()
        assert item.position == 2 and Decimal(str(item.unrealizedPNL)) == unreal
        ib.disconnect()

    run(body)


def test_account_updates_follow_position_changes_else_every_three_market_minutes() -> None:
    async def body(server: SimServer) -> None:
        ib = await connect(server)
        contract = await qualified_mes(ib)
        client = server.client_of(1)
        assert client is not None
        trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
        while not trade.isDone():
            await asyncio.wait_for(trade.statusEvent, WAIT)
        server.market.speed = 1e-9  # the test moves the clock itself from here on
        await asyncio.sleep(0.2)  # the update the fill triggers goes out on the next clock step
        sent = client._account_sent_s
        assert sent == int(server.market.now_s)
        seen: list[object] = []
        ib.accountValueEvent += seen.append
        server.market.advance(60)  # a minute with a position open and no fill: nothing
        server._push_account(True)
        await asyncio.sleep(0.2)
        assert client._account_sent_s == sent and not seen
        server.market.advance(125)  # three minutes since the last update: the periodic one
        server._push_account(True)
        assert client._account_sent_s == int(server.market.now_s) >= sent + 180
        ib.disconnect()

    run(body)

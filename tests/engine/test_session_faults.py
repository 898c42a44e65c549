"""The live trading session against the TWS simulator (real ib_async, real records databases), one test per IB
failure. Each ends with `rig.consistent()`: no duplicate order at IB, no lost record, positions equal IB's."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import CLIENT_ID, WAIT, Rig, sim_positions
from ib_async import IB

from ibot.engine.session import SessionEvent, SessionEventKind, SessionNotReadyError, SessionState
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.risk import RiskLimitExceeded

S = OrderStatus
Runner = Callable[..., None]


def mkt(side: Side, qty: int = 1, cid: str = "") -> OrderRequest:
    return OrderRequest("MES", side, qty, client_order_id=cid)


def lmt(rig: Rig, side: Side, qty: int = 1, cid: str = "") -> OrderRequest:
    """A limit order far behind the market: it works until a fault fills it."""
    return OrderRequest(
        "MES", side, qty, OrderType.LMT, limit_price=rig.resting_price(side), client_order_id=cid
    )


def state_is(*states: SessionState) -> Callable[[SessionEvent], bool]:
    return lambda e: e.kind is SessionEventKind.STATE and e.state in states


async def working(rig: Rig, request: OrderRequest) -> str:
    m = await rig.session.submit(request)
    await rig.order_status(m.client_order_id, S.SUBMITTED, S.PRE_SUBMITTED)
    return m.client_order_id


async def refused_while_paused(rig: Rig) -> None:
    """A new order while paused is refused with a clear error and leaves no record."""
    before = len(rig.records.orders())
    with pytest.raises(SessionNotReadyError, match=r"refused, the trading session is (paused|reconciling)"):
        await rig.session.submit(mkt(Side.BUY, cid="while-paused"))
    assert len(rig.records.orders()) == before and rig.records.get_order("while-paused") is None


# --- the lifecycle ------------------------------------------------------------------------------------------


def test_start_reconciles_before_ready_then_orders_fill_and_the_kill_switch_flattens(
    run_session: Runner,
) -> None:
    async def body(rig: Rig) -> None:
        s = rig.session
        assert s.ready and s.status().connection.value == "connected"
        kinds = [(e.kind, e.state) for e in rig.events]
        assert kinds.index((SessionEventKind.RECONCILED, SessionState.STARTING)) < kinds.index(
            (SessionEventKind.STATE, SessionState.READY)
        )
        bought = await s.submit(mkt(Side.BUY, 2))
        await rig.order_status(bought.client_order_id, S.FILLED)
        resting = await working(rig, lmt(rig, Side.SELL, 1))
        await rig.consistent()
        assert s.status().positions == {rig.instrument.key: 2}
        assert resting in s.status().open_orders
        flatten = await s.kill("test: halt")
        [closing] = flatten
        await rig.order_status(closing.client_order_id, S.FILLED)
        await rig.order_status(resting, S.CANCELLED)
        await rig.consistent()
        assert sim_positions(rig.server) == {} and s.status().kill_switch == "test: halt"
        with pytest.raises(RiskLimitExceeded, match="kill_switch"):
            await s.submit(mkt(Side.BUY))

    run_session(body)


# --- socket drop --------------------------------------------------------------------------------------------


def test_socket_drop_mid_order_pauses_reconciles_and_never_resends(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        resting = await working(rig, lmt(rig, Side.BUY, 1, "resting"))

        def drop_before_send(e: SessionEvent) -> None:  # the record is written, the order not yet sent
            if e.kind is SessionEventKind.ORDER and e.message.startswith("lost PendingSubmit"):
                server.faults.drop(CLIENT_ID)

        s.add_listener(drop_before_send)
        n = len(rig.events)
        lost = await s.submit(mkt(Side.BUY, 1, "lost"))  # written into a socket the gateway just closed
        await rig.event(state_is(SessionState.PAUSED), after=n)
        await refused_while_paused(rig)
        await rig.event(state_is(SessionState.READY), after=n)
        m = s.om.order(lost.client_order_id)
        assert m is not None and m.status is S.INACTIVE and "no longer has" in m.state.message
        assert rig.records.get_order("lost") is not None  # the write-ahead record survived
        assert [o.view.order_ref for o in server.broker.open_orders(None)] == [resting]
        server.faults.fill_order(CLIENT_ID, rig.sim_order(resting).order_id)
        await rig.order_status(resting, S.FILLED)
        await rig.consistent()

    run_session(body, settings={"reconnect_initial_delay": 0.3, "reconnect_max_delay": 0.3})


# --- 1100 / 1101 / 1102 -------------------------------------------------------------------------------------


def test_1100_pauses_and_1102_resumes_only_after_reconciling(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        resting = await working(rig, lmt(rig, Side.SELL, 2, "resting"))
        n = len(rig.events)
        server.faults.connectivity_lost()
        await rig.event(state_is(SessionState.PAUSED), after=n)
        assert "IB connectivity lost (1100)" in s.status().degraded
        await refused_while_paused(rig)
        server.faults.fill_order(CLIENT_ID, rig.sim_order(resting).order_id)  # IB fills it meanwhile
        await rig.order_status(resting, S.FILLED)
        server.faults.connectivity_restored(data_kept=True)
        await rig.event(state_is(SessionState.READY), after=n)
        kinds = [(e.kind, e.state) for e in rig.events[n:]]
        assert kinds.index((SessionEventKind.STATE, SessionState.RECONCILING)) < kinds.index(
            (SessionEventKind.RECONCILED, SessionState.RECONCILING)
        )
        assert s.connection.health.state.value == "connected" and s.status().degraded == ()
        await rig.consistent()
        assert sim_positions(server) == {rig.instrument.key: -2}

    run_session(body)


def test_1101_resubscribes_market_data_and_reconciles(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        [sub] = s.subscriptions
        await rig.until(lambda: sub.received > 0, "the first ticks")
        assert s.status().feed == "ok"
        n = len(rig.events)
        server.faults.connectivity_lost()
        await rig.event(state_is(SessionState.PAUSED), after=n)
        assert s.status().feed == "down"
        server.faults.connectivity_restored(data_kept=False)
        await rig.event(state_is(SessionState.READY), after=n)
        await rig.until(lambda: sub.resubscribed == 1, "the resubscription after 1101")
        received = sub.received
        await rig.until(lambda: sub.received > received, "ticks after the resubscription")
        bought = await s.submit(mkt(Side.BUY))
        await rig.order_status(bought.client_order_id, S.FILLED)
        await rig.consistent()

    run_session(body, market_data=True)


# --- degraded, not paused: farms and 10197 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "ok", "reason"),
    [(2103, 2104, "farm broken market:usfarm"), (2105, 2106, "farm broken hmds:ushmds")],
)
def test_farm_messages_are_degraded_status_while_trading_goes_on(
    run_session: Runner, broken: int, ok: int, reason: str
) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        n = len(rig.events)
        server.faults.farm(broken)
        event = await rig.event(lambda e: e.kind is SessionEventKind.DEGRADED, after=n)
        assert reason in event.message and reason in s.status().degraded
        assert s.ready  # a farm is not the order route: orders still go
        bought = await s.submit(mkt(Side.BUY))
        await rig.order_status(bought.client_order_id, S.FILLED)
        n = len(rig.events)
        server.faults.farm(ok)
        await rig.event(lambda e: e.kind is SessionEventKind.DEGRADED and "healthy" in e.message, after=n)
        assert s.status().degraded == () and s.status().feed == "ok"
        await rig.consistent()

    run_session(body, market_data=True)


def test_competing_session_10197_is_degraded_until_market_data_flows_again(
    run_session: Runner,
) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        [sub] = s.subscriptions
        await rig.until(lambda: sub.received > 0, "the first ticks")
        n = len(rig.events)
        server.faults.competing_session(CLIENT_ID)
        event = await rig.event(lambda e: e.kind is SessionEventKind.DEGRADED, after=n)
        assert "competing live session (10197)" in event.message
        assert s.status().feed == "competing session" and s.ready
        resting = await working(rig, lmt(rig, Side.BUY, 1))
        n = len(rig.events)
        server.faults.competing_session(CLIENT_ID, on=False)
        await rig.event(lambda e: e.kind is SessionEventKind.DEGRADED and "healthy" in e.message, after=n)
        assert s.status().feed == "ok"
        assert await s.cancel(resting)
        await rig.order_status(resting, S.CANCELLED)
        await rig.consistent()

    run_session(body, market_data=True)


# --- order faults -------------------------------------------------------------------------------------------


def test_rejected_order_201_ends_inactive_with_the_error_recorded(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        server.faults.reject_next_order(201)
        m = await s.submit(mkt(Side.BUY, 1, "rejected"))
        await rig.order_status("rejected", S.INACTIVE)
        assert "IB error 201" in s.status().last_error
        assert any("201" in e.message for e in rig.records.events("rejected"))
        assert m.filled == 0 and s.ready
        bought = await s.submit(mkt(Side.BUY, 1, "next"))  # the session trades on
        await rig.order_status(bought.client_order_id, S.FILLED)
        await rig.consistent()

    run_session(body)


def test_order_made_inactive_by_ib_is_final_and_recorded(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        resting = await working(rig, lmt(rig, Side.BUY, 1))
        server.faults.inactivate_order(CLIENT_ID, rig.sim_order(resting).order_id)
        await rig.order_status(resting, S.INACTIVE)
        server.faults.inactivate_next_order()
        held = await s.submit(mkt(Side.SELL, 1))
        await rig.order_status(held.client_order_id, S.INACTIVE)
        assert s.status().open_orders == () and s.status().positions == {}
        await rig.consistent()

    run_session(body)


def test_cancel_that_arrives_too_late_ends_filled_with_the_position(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        resting = await working(rig, lmt(rig, Side.BUY, 2))
        server.faults.late_cancel_next()
        assert await s.cancel(resting)
        await rig.order_status(resting, S.FILLED)
        history = [e.status for e in rig.records.events(resting)]
        assert history.index(S.PENDING_CANCEL) < history.index(S.FILLED)
        await rig.consistent()
        assert s.status().positions == {rig.instrument.key: 2}

    run_session(body)


def test_late_commission_is_recorded_final_when_the_report_comes(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        server.faults.delay_commissions()
        bought = await s.submit(mkt(Side.BUY, 1))
        await rig.order_status(bought.client_order_id, S.FILLED)
        [fill] = rig.records.fills(bought.client_order_id)
        assert fill.commission is None and not fill.commission_final  # never a made-up zero
        assert [f.exec_id for f in rig.records.fills_missing_commission()] == [fill.exec_id]
        server.faults.release_commissions()
        await rig.consistent()  # waits for the report: commission equal to IB's and final
        assert rig.records.fills_missing_commission() == []

    run_session(body)


# --- reconnects ---------------------------------------------------------------------------------------------


def test_fills_while_disconnected_are_adopted_exactly_once(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        resting = await working(rig, lmt(rig, Side.BUY, 2, "resting"))
        n = len(rig.events)
        server.faults.restart(60.0)  # everyone disconnected, connections refused for a market minute
        server.faults.fill_order(CLIENT_ID, rig.sim_order(resting).order_id)  # nobody hears of it
        await rig.event(state_is(SessionState.PAUSED), after=n)
        reconciled = await rig.event(lambda e: e.kind is SessionEventKind.RECONCILED, after=n)
        await rig.event(state_is(SessionState.READY), after=n)
        assert reconciled.report is not None
        [execution] = [e.exec_id for e in server.broker.executions]
        assert reconciled.report.adopted_fills == [execution]
        m = s.om.order(resting)
        assert m is not None and m.status is S.FILLED and m.filled == 2
        n = len(rig.events)
        server.faults.connectivity_lost()  # another outage: the same execution comes again
        server.faults.connectivity_restored(data_kept=True)
        again = await rig.event(lambda e: e.kind is SessionEventKind.RECONCILED, after=n)
        assert again.report is not None and again.report.adopted_fills == []
        assert len(rig.records.fills(resting)) == 1
        await rig.consistent()

    run_session(body)


def test_next_valid_id_rolled_back_by_a_restart_never_reuses_an_order_id(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        for side in (Side.BUY, Side.SELL, Side.BUY, Side.SELL, Side.BUY):
            m = await s.submit(mkt(side, 1))
            await rig.order_status(m.client_order_id, S.FILLED)
        highest = max(r.ib_order_id or 0 for r in rig.records.orders())
        n = len(rig.events)
        server.faults.restart(60.0, next_valid_id=1)  # the gateway forgot how far ids went
        await rig.event(state_is(SessionState.READY), after=n)
        assert s.om.broker_next_id <= highest  # IB (and ib_async) now hand out ids we already used
        after = [await s.submit(mkt(Side.SELL, 1)) for _ in range(2)]
        for m in after:
            await rig.order_status(m.client_order_id, S.FILLED)
            assert m.order_id is not None and m.order_id > highest
        ib_errors = [e.message for e in rig.events if e.kind is SessionEventKind.ERROR]
        assert not [m for m in ib_errors if m.startswith("IB error 103")], ib_errors  # no duplicate order id
        await rig.consistent()

    run_session(body)


def test_326_on_reconnect_waits_for_its_own_client_id_then_reconciles(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        resting = await working(rig, lmt(rig, Side.SELL, 1, "resting"))
        n = len(rig.events)
        server.faults.drop(CLIENT_ID)
        await rig.event(state_is(SessionState.PAUSED), after=n)
        lingering = IB()  # the old session's id is taken before the reconnect comes
        await lingering.connectAsync("127.0.0.1", server.port, CLIENT_ID, timeout=WAIT)
        server.faults.fill_order(CLIENT_ID, rig.sim_order(resting).order_id)
        await rig.event(lambda e: e.kind is SessionEventKind.ERROR and "326" in e.message, after=n)
        assert not s.ready
        lingering.disconnect()
        await rig.event(state_is(SessionState.READY), after=n)
        assert s.connection.client_id == CLIENT_ID  # its orders report to this id only
        m = s.om.order(resting)
        assert m is not None and m.status is S.FILLED
        await rig.consistent()

    run_session(body, settings={"reconnect_initial_delay": 0.3, "reconnect_max_delay": 0.3})


def test_kill_switch_while_paused_cancels_and_flattens_once_reconciled(run_session: Runner) -> None:
    async def body(rig: Rig) -> None:
        s, server = rig.session, rig.server
        bought = await s.submit(mkt(Side.BUY, 2))
        await rig.order_status(bought.client_order_id, S.FILLED)
        resting = await working(rig, lmt(rig, Side.BUY, 1))
        n = len(rig.events)
        server.faults.connectivity_lost()
        await rig.event(state_is(SessionState.PAUSED), after=n)
        assert await s.kill("test: halt while paused") == []
        assert s.status().kill_switch
        server.faults.connectivity_restored(data_kept=True)
        await rig.order_status(resting, S.CANCELLED)
        await rig.until(lambda: sim_positions(server) == {}, "the flattening fill")
        await rig.consistent()

    run_session(body)

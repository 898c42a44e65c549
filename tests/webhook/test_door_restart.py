"""Ack first, exactly once: what a crash leaves committed is processed once on restart, across processes'
lifetimes of the node (same records file, same simulated account)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from webhook_helpers import WAIT, alert, answer, door_rig, sim_server, sqlite_url

from ibot.model.market import NS_PER_SECOND
from ibot.model.orders import OrderRequest, OrderStatus, Side
from ibot.oms.intake import IntakeVerdict, OrderTicket
from ibot.oms.records import AlertRow
from ibot.webhook.alerts import AlertState, AlertStore, AlertVerdict
from ibot.webhook.handler import ticket_fields


def test_an_alert_committed_before_a_crash_is_placed_once_on_restart(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)

    async def main() -> None:
        async with sim_server() as server:
            async with door_rig(url, server) as rig:
                ok = await rig.post(alert(id="before-the-crash"))
                cid = answer(ok)["client_order_id"]
                await rig.until(lambda: bool(rig.node.records.fills(cid)), "the first order's fill")
                await rig.until(lambda: not rig.store.pending(), "the alert processed")
                # a crash between the send and the alert's "done": the row is pending again
                with rig.node.records.engine.begin() as conn:
                    conn.execute(update(AlertRow).values(state=str(AlertState.PENDING)))
                # a crash right after the commit, before the worker ran: a second alert only committed
                store = AlertStore(rig.node.records, market=rig.node.clock)
                ticket = ticket_fields(OrderTicket("webhook", "MESH5", "BUY", 2, idempotency_key="tv-crash"))
                second, _ = store.admit(
                    source="127.0.0.1", body="{}", key="tv-crash", ticket=ticket, window=timedelta(minutes=10)
                )
            assert len(rig.sim_orders()) == 1
            async with door_rig(url, server) as rig:
                await rig.until(lambda: not rig.store.pending(), "the restart's worker to finish")
                first, later = rig.alerts()
                assert first.verdict is AlertVerdict.ACCEPTED and "before a restart" in first.reason
                assert later.id == second and later.verdict is AlertVerdict.ACCEPTED, later.reason
                await rig.until(lambda: len(rig.sim_orders()) == 2, "the committed alert's order")
                await asyncio.sleep(0.3)
                refs = sorted(o.view.order_ref for o in rig.sim_orders())
                assert refs == sorted([cid, later.client_order_id])  # each once, none twice
                # TradingView's retry of the first alert after the restart: a duplicate, nothing placed
                again = await rig.post(alert(id="before-the-crash"))
                assert answer(again)["status"] == "duplicate"
                await asyncio.sleep(0.3)
                assert len(rig.sim_orders()) == 2

    asyncio.run(asyncio.wait_for(main(), 6 * WAIT))


def test_an_acknowledged_alert_whose_send_a_kill_lost_is_placed_once_on_restart(tmp_path: Path) -> None:
    """kill -9 after the order's write-ahead, its send and the alert's "accepted", before the bytes reached
    IB (the kernel discards a killed process's unsent data): the restart's reconciliation closes the order
    Inactive and the node places it once more, as `<cid>-r1`, before the door opens; a later restart places
    nothing."""
    url = sqlite_url(tmp_path)

    async def main() -> None:
        async with sim_server() as server:
            async with door_rig(url, server) as rig:
                records = rig.node.records
                store = AlertStore(records, market=rig.node.clock)
                ticket = ticket_fields(OrderTicket("webhook", "MESH5", "BUY", 2, idempotency_key="tv-lost"))
                alert_id, _ = store.admit(
                    source="127.0.0.1", body="{}", key="tv-lost", ticket=ticket, window=timedelta(minutes=10)
                )
                (pending,) = store.pending()
                cid = pending.client_order_id
                # what the worker and the intake committed before the kill (nothing awaited: no worker ran)
                ts = rig.node.session.market_clock()
                assert records.claim_intake_key("tv-lost", "webhook", cid, ts, 600 * NS_PER_SECOND) is None
                mes = rig.node.session.instrument("MES")
                order = OrderRequest(mes.key, Side.BUY, 2, client_order_id=cid, reason="Open-Long")
                records.record_new(order, ts=ts, instrument=mes, strategy="webhook")
                records.finish_intake_key("tv-lost", IntakeVerdict.ACCEPTED)
                store.finish(alert_id, AlertVerdict.ACCEPTED, "sent", client_order_id=cid)
            assert rig.sim_orders() == []
            for _ in range(2):  # the restart places it once; the next one places nothing
                async with door_rig(url, server) as rig:
                    await rig.until(lambda: bool(rig.sim_orders()), "the lost order placed again")
                    await asyncio.sleep(0.3)
                    assert [(o.view.order_ref, o.quantity) for o in rig.sim_orders()] == [(f"{cid}-r1", 2)]
                    (done,) = rig.alerts()
                    assert done.verdict is AlertVerdict.ACCEPTED and done.client_order_id == cid
                    lost = rig.node.records.get_order(cid)
                    assert lost is not None and lost.status is OrderStatus.INACTIVE

    asyncio.run(asyncio.wait_for(main(), 6 * WAIT))

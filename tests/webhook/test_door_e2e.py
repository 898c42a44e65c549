"""End to end: real HTTP (uvicorn on loopback, httpx) -> the webhook door -> the node's order intake ->
TradingSession -> the unmodified ib_async client -> the simulator. What is checked is what the simulated
account saw (`server.broker`), beside the records."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from webhook_helpers import SECRET, WAIT, alert, answer, door_rig, sim_server, sqlite_url

from ibot.model.orders import OrderStatus
from ibot.webhook.alerts import AlertRecord, AlertState, AlertVerdict


def _state(row: AlertRecord | None) -> AlertState | None:
    return None if row is None else row.state


def test_an_accepted_alert_becomes_exactly_one_order_and_its_fill_is_in_the_records(tmp_path: Path) -> None:
    async def main() -> None:
        async with sim_server() as server, door_rig(sqlite_url(tmp_path), server) as rig:
            body = alert()
            started = time.perf_counter()
            response = await rig.post(body)
            ack = time.perf_counter() - started
            assert response.status_code == 200, response.text
            got = answer(response)
            assert got["status"] == "accepted"
            cid = got["client_order_id"]
            assert ack < 1.0, f"the ack took {ack:.3f} s"
            records = rig.node.records
            await rig.until(lambda: bool(records.fills(cid)), f"a recorded fill of {cid}")
            await rig.until(
                lambda: _state(rig.store.get(got["alert_id"])) is AlertState.DONE, "the alert done"
            )
            # exactly one order at the simulator, ours, filled; its fill recorded as the simulator made it
            at_sim = rig.sim_orders()
            assert [o.view.order_ref for o in at_sim] == [cid]
            assert at_sim[0].status == "Filled" and at_sim[0].quantity == 1
            fills = records.fills(cid)
            executions = [e for e in rig.server.broker.executions if e.order.view.order_ref == cid]
            assert [f.exec_id for f in fills] == [e.exec_id for e in executions]
            order = records.get_order(cid)
            assert order is not None and order.status is OrderStatus.FILLED
            row = rig.store.get(got["alert_id"])
            assert row is not None
            assert (row.verdict, row.http_status, row.client_order_id) == (AlertVerdict.ACCEPTED, 200, cid)
            assert row.source_address == "127.0.0.1" and row.received_ts > 0
            assert SECRET not in row.body and '"secret": "[redacted]"' in row.body
            # TradingView's retry of the same alert: 200 "duplicate", nothing placed
            again = await rig.post(body)
            assert again.status_code == 200 and answer(again)["status"] == "duplicate"
            assert answer(again)["client_order_id"] == cid
            await asyncio.sleep(0.3)
            assert len(rig.sim_orders()) == 1
            assert len(records.orders()) == 1

    asyncio.run(asyncio.wait_for(main(), 4 * WAIT))

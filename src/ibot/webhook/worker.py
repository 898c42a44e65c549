"""The door's worker: takes committed alerts, oldest first, through the node's order intake.

It runs beside the HTTP server on the node's loop, so an answer never waits for IB. It starts with what a
crash left pending. An alert is placed at most once: its client order id was fixed when it was committed, an
order already recorded under that id means it was placed before the restart, and the intake's key and the
OMS refuse a second one. While the trading session is not ready the alert waits (and the intake's key is not
consumed); one older than the idempotency window when its turn comes is EXPIRED, never placed late.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from ibot.engine.session import TradingSession
from ibot.oms.intake import IntakeVerdict, OrderIntake, OrderTicket
from ibot.webhook.alerts import AlertRecord, AlertStore, AlertVerdict

__all__ = ["AlertWorker"]

log = logging.getLogger("ibot.webhook")

_VERDICTS = {
    IntakeVerdict.ACCEPTED: AlertVerdict.ACCEPTED,
    IntakeVerdict.DUPLICATE: AlertVerdict.DUPLICATE,
    IntakeVerdict.REJECTED: AlertVerdict.REJECTED,
    IntakeVerdict.NOTHING_TO_DO: AlertVerdict.NOTHING_TO_DO,
}


class AlertWorker:
    """`run()` until cancelled: wake on `wake()`, submit every pending alert, record what it became."""

    def __init__(
        self,
        store: AlertStore,
        intake: OrderIntake,
        session: TradingSession,
        *,
        window: timedelta,
        ready_poll: float = 0.5,
    ) -> None:
        self.store = store
        self.intake = intake
        self.session = session
        self.window = window
        self.ready_poll = ready_poll
        self._wake = asyncio.Event()
        self._wake.set()  # the first pass takes what a crash left pending
        self.processed = 0
        # alerts up to this id were committed before this worker started (by an earlier process, perhaps
        # one that crashed after placing their order): only those may already have an order recorded
        self._inherited_up_to: int | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending = self.store.pending()
            if self._inherited_up_to is None:
                self._inherited_up_to = pending[-1].id if pending else 0
            for alert in pending:
                await self._until_ready()
                await self.process(alert)
                # An intake submit need not suspend (contract cached, the send is a buffered write): without
                # this a backlog of alerts would run back to back and hold every answer of the door.
                await asyncio.sleep(0)

    async def _until_ready(self) -> None:
        """Wait for the session to be ready (orders refused until then: the alert stays pending)."""
        while not self.session.ready:
            await asyncio.sleep(self.ready_poll)

    async def process(self, alert: AlertRecord) -> None:
        """Submit one pending alert and record its verdict (it stays pending only if the session dropped)."""
        cid = alert.client_order_id
        records = self.session.records
        inherited = self._inherited_up_to is None or alert.id <= self._inherited_up_to
        if inherited and records.get_order(cid) is not None:
            self.store.finish(alert.id, AlertVerdict.ACCEPTED, f"order {cid} was recorded before a restart")
            self.processed += 1
            return
        age = datetime.now(UTC) - alert.received_at
        if age > self.window:
            reason = (
                f"not placed within the {self.window.total_seconds():g} s window "
                f"({age.total_seconds():.0f} s after it was received): nothing placed"
            )
            self.store.finish(alert.id, AlertVerdict.EXPIRED, reason)
            log.warning("alert %d expired: %s", alert.id, reason)
            self.processed += 1
            return
        ticket = OrderTicket(client_order_id=cid, **alert.ticket)
        try:
            result = await self.intake.submit(ticket)
        except Exception as exc:  # the records database failed: say so, never leave it half-told
            log.exception("alert %d: the intake failed", alert.id)
            placed = records.get_order(cid) is not None
            verdict = AlertVerdict.ACCEPTED if placed else AlertVerdict.REJECTED
            self.store.finish(alert.id, verdict, f"the intake failed: {type(exc).__name__}: {exc}")
            self.processed += 1
            return
        if result.verdict is IntakeVerdict.REJECTED and result.field == "session":
            log.warning("alert %d waits: %s", alert.id, result.reason)
            self._wake.set()  # stays pending: the next pass (after the session is ready) places it
            await asyncio.sleep(self.ready_poll)
            return
        verdict = _VERDICTS[result.verdict]
        if verdict is AlertVerdict.DUPLICATE and result.client_order_id == cid:
            verdict = AlertVerdict.ACCEPTED  # our own order, placed before a restart
        self.store.finish(alert.id, verdict, result.reason, result.field, result.client_order_id or "")
        self.processed += 1
        log.info("alert %d %s: %s", alert.id, verdict.value, result.reason)

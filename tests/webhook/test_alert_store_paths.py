"""The alert store's ack-path writes on the records' driver connection (a SQLite file) and on Core (in-memory
SQLite, as PostgreSQL): the same answers, the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ibot.oms.records import OrderRecords
from ibot.webhook.alerts import AlertStore, AlertVerdict, client_order_id

NOW = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def _run(url: str) -> tuple[list[Any], list[tuple[Any, ...]]]:
    records = OrderRecords(url)
    records.migrate()
    clock = [NOW]
    store = AlertStore(records, market=lambda: 7, wall=lambda: clock[0])
    try:
        ticket = {"source": "webhook", "symbol": "MES", "side": "BUY", "quantity": 1}
        answers: list[Any] = []
        for key, step in (("a", 0), ("b", 1), ("a", 2), ("a", 11 * 60)):  # a, b, a again, a after the window
            clock[0] = NOW + timedelta(seconds=step)
            alert_id, first = store.admit(source="1.2.3.4", body="{}", key=key, ticket=ticket, window=WINDOW)
            answers.append((alert_id, None if first is None else (first.id, first.client_order_id)))
        store.finish(1, AlertVerdict.ACCEPTED, "sent", client_order_id=client_order_id(1, "a"))
        store.finish(2, AlertVerdict.REJECTED, "risk", "max_position")
        rows = [
            (a.id, a.received_at, a.idempotency_key, a.verdict, a.state, a.client_order_id, a.reason, a.field)
            for a in store.alerts()
        ]
        return answers, rows
    finally:
        records.close()


def test_admit_and_finish_are_the_same_on_the_driver_connection_and_on_core(tmp_path: Path) -> None:
    driver = _run(f"sqlite:///{tmp_path / 'alerts.sqlite'}")
    core = _run("sqlite://")
    assert driver == core
    answers, rows = driver
    assert answers == [(1, None), (2, None), (3, (1, "tv1-a")), (4, None)]
    assert [r[3] for r in rows] == ["accepted", "rejected", "duplicate", "queued"]
    assert [r[5] for r in rows] == ["tv1-a", "tv2-b", "tv1-a", "tv4-a"]
    assert rows[1][7] == "max_position" and rows[0][1] == NOW

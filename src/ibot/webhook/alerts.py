"""The durable alert store: every request to the webhook, committed to the records database before it is
answered, and the queue the door's worker takes alerts from.

What it promises:
- `admit` commits an acceptable alert as "pending" with its idempotency key and the client order id it
  makes, in one transaction that first looks for the same key within the window (a duplicate is committed
  too, as "duplicate", and makes nothing);
- `record` commits a refused request (bad secret, bad JSON, a field, a source address) as "done";
- `pending` lists, oldest first, what the worker has not finished: after a crash that is what the restart
  processes; `finish` says what the intake made of it;
- no body holds the secret: `redact_secret` runs before anything is written.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import CursorResult, Row, Table, bindparam, func, insert, select, update

from ibot.oms.records import AlertRow, OrderRecords

__all__ = [
    "REDACTED",
    "AlertRecord",
    "AlertState",
    "AlertStore",
    "AlertVerdict",
    "client_order_id",
    "redact_secret",
]

REDACTED = "[redacted]"
_ALERTS: Table = AlertRow.__table__  # type: ignore[assignment]
# "secret": "..." (or a bare value) in a body that is not valid JSON: the value is replaced all the same.
_SECRET_FIELD = re.compile(r'("secret"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\s]*)', re.IGNORECASE)


class AlertVerdict(StrEnum):
    """What became of an alert: the door's answer, then the intake's."""

    QUEUED = "queued"  # acknowledged (200), waiting for the intake
    ACCEPTED = "accepted"  # the intake recorded and sent its order
    DUPLICATE = "duplicate"  # its key was seen within the window: nothing placed
    REJECTED = "rejected"  # bad input, or the intake / risk refused it: nothing placed
    NOTHING_TO_DO = "nothing_to_do"  # its target position was already held
    EXPIRED = "expired"  # not placed within the window (the node was down or never ready)
    UNAUTHORIZED = "unauthorized"  # secret absent or wrong (401)
    FORBIDDEN = "forbidden"  # source address not allowed (403)


class AlertState(StrEnum):
    PENDING = "pending"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as the store holds it."""

    id: int
    received_at: datetime
    received_ts: int
    source_address: str
    body: str
    ticket: dict[str, Any]
    idempotency_key: str
    http_status: int
    verdict: AlertVerdict
    field: str
    reason: str
    client_order_id: str
    state: AlertState
    processed_at: datetime | None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _record(row: Row[Any]) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        received_at=_aware(row.received_at),
        received_ts=row.received_ts,
        source_address=row.source_address,
        body=row.body,
        ticket=json.loads(row.ticket) if row.ticket else {},
        idempotency_key=row.idempotency_key,
        http_status=row.http_status,
        verdict=AlertVerdict(row.verdict),
        field=row.field,
        reason=row.reason,
        client_order_id=row.client_order_id,
        state=AlertState(row.state),
        processed_at=None if row.processed_at is None else _aware(row.processed_at),
    )


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None, "an insert of one alert returns its id"
    return int(key[0])


def client_order_id(alert_id: int, key: str) -> str:
    """The client order id of an accepted alert: ``tv<alert id>-<12 hex of its key>``."""
    return f"tv{alert_id}-{key.removeprefix('tv-')[:12]}"


def redact_secret(body: str, secret: str) -> str:
    """`body` with the value of every "secret" field and every occurrence of `secret` itself replaced.

    A body that parses as a JSON object is written back as JSON with its secret replaced (escapes such as
    ``"\\u0073ecret"`` cannot hide it); any other text has the field's value replaced by pattern."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        if any(key.lower() == "secret" for key in parsed):
            body = json.dumps(
                {k: (REDACTED if k.lower() == "secret" else v) for k, v in parsed.items()}, ensure_ascii=False
            )
            # a lone surrogate (sent as a \udXXX escape) cannot be stored as UTF-8: keep it as that escape
            body = body.encode("utf-8", "backslashreplace").decode("utf-8")
    else:
        body = _SECRET_FIELD.sub(lambda m: f'{m.group(1)}"{REDACTED}"', body)
    if secret:
        body = body.replace(secret, REDACTED)
    return body


# The statements of the ack's path, built once: each execution reuses the compiled form (no construction, no
# cache-key walk of a fresh statement on every alert).
_INSERT = insert(_ALERTS)
_FIRST_WITH_KEY = (
    select(_ALERTS)
    .where(_ALERTS.c.idempotency_key == bindparam("key"), _ALERTS.c.http_status == 200)
    .where(_ALERTS.c.verdict != str(AlertVerdict.DUPLICATE))
    .order_by(_ALERTS.c.id.desc())
    .limit(1)
)
_SET_CID = (
    update(_ALERTS).where(_ALERTS.c.id == bindparam("alert_id")).values(client_order_id=bindparam("cid"))
)

_FINISH = (
    update(_ALERTS)
    .where(_ALERTS.c.id == bindparam("alert_id"))
    .values(
        verdict=bindparam("v_verdict"),
        reason=bindparam("v_reason"),
        field=bindparam("v_field"),
        state=bindparam("v_state"),
        processed_at=bindparam("v_processed_at"),
    )
)
_FINISH_WITH_CID = _FINISH.values(client_order_id=bindparam("v_cid"))
# The duplicate check on the driver connection: only what `admit` decides with (the record is read after).
_FIRST_WITH_KEY_BRIEF = (
    select(_ALERTS.c.id, _ALERTS.c.received_at, _ALERTS.c.client_order_id)
    .where(_ALERTS.c.idempotency_key == bindparam("key"), _ALERTS.c.http_status == 200)
    .where(_ALERTS.c.verdict != str(AlertVerdict.DUPLICATE))
    .order_by(_ALERTS.c.id.desc())
    .limit(1)
)
_INSERT_COLUMNS = [c.key for c in _ALERTS.c if c.key != "id"]


class _Prepared:
    """The ack path's statements compiled once for the records' driver connection (a SQLite file): the same
    SQL as the Core statements above, without Core's per-execution cost."""

    def __init__(self, records: OrderRecords) -> None:
        def prepare(stmt: Any, column_keys: list[str] | None = None) -> Any:
            prepared = records.prepared(stmt, column_keys)
            assert prepared is not None, "prepared only where the records have a driver connection"
            return prepared

        self.insert = prepare(_INSERT, _INSERT_COLUMNS)
        self.first = prepare(_FIRST_WITH_KEY_BRIEF)
        self.set_cid = prepare(_SET_CID)
        self.finish = prepare(_FINISH)
        self.finish_with_cid = prepare(_FINISH_WITH_CID)
        dialect = records.engine.dialect
        stamp = _ALERTS.c.received_at.type.dialect_impl(dialect).result_processor(dialect, None)
        self.received_at: Callable[[Any], Any] = stamp if stamp is not None else (lambda v: v)


class AlertStore:
    """The `alerts` table of the records database. Every method commits before it returns.

    `wall` is the wall clock (receive times, the idempotency window: TradingView retries and replays in real
    time); `market` is the market's clock (ns), recorded beside it as every record is."""

    def __init__(
        self,
        records: OrderRecords,
        *,
        market: Callable[[], int],
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.records = records
        self.market = market
        self.wall = wall
        self._driver: _Prepared | None = None
        self._driver_known = False  # whether the records have a driver connection has been asked

    def _prepared(self) -> _Prepared | None:
        """The driver connection's statements (built on first use), or None on the Core path (PostgreSQL,
        in-memory SQLite)."""
        if not self._driver_known:
            if self.records.prepared(_SET_CID) is not None:
                self._driver = _Prepared(self.records)
            self._driver_known = True
        return self._driver

    def _values(self, source: str, body: str, http_status: int, verdict: AlertVerdict) -> dict[str, Any]:
        return {
            "received_at": self.wall(),
            "received_ts": self.market(),
            "source_address": source[:64],
            "body": body,
            "ticket": "",
            "idempotency_key": "",
            "http_status": http_status,
            "verdict": str(verdict),
            "field": "",
            "reason": "",
            "client_order_id": "",
            "state": str(AlertState.DONE),
            "processed_at": None,
        }

    def record(
        self,
        *,
        source: str,
        body: str,
        http_status: int,
        verdict: AlertVerdict,
        reason: str,
        field: str = "",
        key: str = "",
    ) -> int:
        """Commit a request the door refused (nothing will be placed); returns the alert's id."""
        values = self._values(source, body, http_status, verdict)
        values.update(
            reason=reason, field=field[:64], idempotency_key=key, processed_at=values["received_at"]
        )
        with self.records.engine.begin() as conn:
            return _inserted_id(conn.execute(_INSERT, values))

    def admit(
        self,
        *,
        source: str,
        body: str,
        key: str,
        ticket: dict[str, Any],
        window: timedelta,
    ) -> tuple[int, AlertRecord | None]:
        """Commit an acceptable alert: "pending" for the worker, or "duplicate" of the alert returned with it
        when the same key was admitted within `window` (then nothing is queued).

        A pending alert's client order id is made here, in the same transaction, from its id and its key
        (`client_order_id`): fixed before any attempt to place it, so a restart places it under the same id,
        and unique even when the same key comes back after the window."""
        values = self._values(source, body, 200, AlertVerdict.QUEUED)
        values.update(idempotency_key=key, state=str(AlertState.PENDING), ticket=json.dumps(ticket))
        since = values["received_at"] - window
        sql = self._prepared()
        if sql is not None:
            return self._admit_on_driver(sql, values, key, window)
        with self.records.engine.begin() as conn:
            rows = conn.execute(_FIRST_WITH_KEY, {"key": key}).all()
            first = _record(rows[0]) if rows else None
            if first is not None and first.received_at >= since:
                self._duplicate(values, first.id, first.client_order_id, window)
            else:
                first = None
            alert_id = _inserted_id(conn.execute(_INSERT, values))
            if first is None:
                conn.execute(_SET_CID, {"alert_id": alert_id, "cid": client_order_id(alert_id, key)})
        return alert_id, first

    def _duplicate(self, values: dict[str, Any], first_id: int, first_cid: str, window: timedelta) -> None:
        values.update(
            verdict=str(AlertVerdict.DUPLICATE),
            state=str(AlertState.DONE),
            client_order_id=first_cid,
            reason=f"same key as alert {first_id} within {window.total_seconds():g} s: nothing placed",
            processed_at=values["received_at"],
        )

    def _admit_on_driver(
        self, sql: _Prepared, values: dict[str, Any], key: str, window: timedelta
    ) -> tuple[int, AlertRecord | None]:
        """`admit`'s transaction on the driver connection: the same statements, the same rows."""
        since = values["received_at"] - window
        first_id: int | None = None
        with self.records.driver_transaction() as tx:
            rows = tx.execute(sql.first.sql, sql.first.params({"key": key})).fetchall()
            if rows and _aware(sql.received_at(rows[0][1])) >= since:
                first_id = int(rows[0][0])
                self._duplicate(values, first_id, str(rows[0][2]), window)
            alert_id = int(tx.execute(sql.insert.sql, sql.insert.params(values)).lastrowid)
            if first_id is None:
                cid = client_order_id(alert_id, key)
                tx.execute(sql.set_cid.sql, sql.set_cid.params({"alert_id": alert_id, "cid": cid}))
        return alert_id, (None if first_id is None else self.get(first_id))

    def finish(
        self,
        alert_id: int,
        verdict: AlertVerdict,
        reason: str = "",
        field: str = "",
        client_order_id: str = "",
    ) -> None:
        """Say what the intake made of a pending alert; it will not be processed again."""
        values: dict[str, Any] = {
            "alert_id": alert_id,
            "v_verdict": str(verdict),
            "v_reason": reason,
            "v_field": field[:64],
            "v_state": str(AlertState.DONE),
            "v_processed_at": self.wall(),
        }
        statement = _FINISH
        if client_order_id:
            statement, values["v_cid"] = _FINISH_WITH_CID, client_order_id
        sql = self._prepared()
        if sql is not None:
            prepared = sql.finish_with_cid if client_order_id else sql.finish
            with self.records.driver_transaction() as tx:
                tx.execute(prepared.sql, prepared.params(values))
            return
        with self.records.engine.begin() as conn:
            conn.execute(statement, values)

    def pending(self) -> list[AlertRecord]:
        """Alerts acknowledged and not yet processed, oldest first."""
        q = select(_ALERTS).where(_ALERTS.c.state == str(AlertState.PENDING)).order_by(_ALERTS.c.id)
        with self.records.engine.connect() as conn:
            return [_record(r) for r in conn.execute(q)]

    def get(self, alert_id: int) -> AlertRecord | None:
        with self.records.engine.connect() as conn:
            row = conn.execute(select(_ALERTS).where(_ALERTS.c.id == alert_id)).first()
        return None if row is None else _record(row)

    def alerts(self, limit: int | None = None) -> list[AlertRecord]:
        """Every alert, oldest first (the newest `limit` when given)."""
        q = select(_ALERTS).order_by(_ALERTS.c.id.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.records.engine.connect() as conn:
            rows = [_record(r) for r in conn.execute(q)]
        return rows[::-1]

    def counts(self) -> Counter[str]:
        """How many alerts of each verdict, plus "pending"."""
        out: Counter[str] = Counter()
        q = select(_ALERTS.c.verdict, _ALERTS.c.state, func.count()).group_by(
            _ALERTS.c.verdict, _ALERTS.c.state
        )
        with self.records.engine.connect() as conn:
            for verdict, state, n in conn.execute(q):
                out[verdict] += n
                if state == str(AlertState.PENDING):
                    out["pending"] += n
        return out

"""The order records database on a SQLite file and on PostgreSQL: schema, write-ahead, history, fees."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from oms_helpers import MES, MNQ, SECOND, T0
from sqlalchemy import event, inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError

from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from ibot.oms import records as records_module
from ibot.oms.records import (
    Base,
    DuplicateOrderError,
    FillConflictError,
    OrderChange,
    OrderRecords,
    RecordsError,
    WriteAhead,
    default_url,
)

S = OrderStatus


def limit_buy(cid: str, qty: int = 2, price: float = 5000.25) -> OrderRequest:
    return OrderRequest(
        "MES", Side.BUY, qty, OrderType.LMT, limit_price=price, client_order_id=cid, reason="test"
    )


def _head(rec: OrderRecords) -> str:
    """The newest packaged migration (0003 intake_keys; later issues add more)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(rec.alembic_config()).get_current_head()
    assert head is not None
    return head


def test_migration_creates_the_schema_on_an_empty_database(db_url: str) -> None:
    rec = OrderRecords(db_url)
    try:
        assert rec.schema_revision() is None
        assert not {"orders", "order_events", "fills"} & set(inspect(rec.engine).get_table_names())
        rec.migrate()
        assert rec.schema_revision() == _head(rec)
        assert int(_head(rec)) >= 3  # 0003: intake_keys
        tables = {"orders", "order_events", "fills", "fill_conflicts", "oms_counters", "intake_keys"}
        tables.add("alembic_version")
        assert tables <= set(inspect(rec.engine).get_table_names())
        rec.migrate()  # upgrading again is a no-op
        assert rec.schema_revision() == _head(rec)
        # the migration builds exactly what the models describe
        with rec.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
    finally:
        rec.close()


def test_write_ahead_record_is_committed_and_visible_to_another_connection(records: OrderRecords) -> None:
    saved = records.record_new(limit_buy("c1"), ts=T0, instrument=MES, ib_order_id=17, client_id=1000)
    assert saved.status is S.CREATED
    other = OrderRecords(records.url)  # a separate engine: sees only what was committed
    try:
        row = other.get_order("c1")
    finally:
        other.close()
    assert row is not None
    assert (row.status, row.ib_order_id, row.client_id, row.quantity, row.remaining) == (
        S.CREATED,
        17,
        1000,
        2,
        2,
    )
    assert (row.symbol, row.local_symbol, row.sec_type, row.exchange, row.currency) == (
        "MES",
        "MESZ4",
        "FUT",
        "CME",
        "USD",
    )
    assert row.limit_price == Decimal("5000.25")
    assert row.created_ts == T0
    assert row.created_at.tzinfo is not None
    assert [e.status for e in records.events("c1")] == [S.CREATED]


def test_a_client_order_id_is_recorded_once(records: OrderRecords) -> None:
    records.record_new(limit_buy("c1"), ts=T0, instrument=MES)
    with pytest.raises(DuplicateOrderError, match="'c1' is already recorded"):
        records.record_new(limit_buy("c1", qty=5), ts=T0, instrument=MES)
    order = records.get_order("c1")
    assert order is not None
    assert order.quantity == 2


def test_event_history_is_complete_and_ordered(records: OrderRecords) -> None:
    records.record_new(limit_buy("c1"), ts=T0, instrument=MES, ib_order_id=5)
    steps = [
        (S.PENDING_SUBMIT, 0, 2, None, "sent"),
        (S.SUBMITTED, 0, 2, None, ""),
        (S.SUBMITTED, 1, 1, Decimal("5000.25"), "fill 1"),
        (S.FILLED, 2, 0, Decimal("5000.375"), "fill 2"),
    ]
    for k, (status, filled, remaining, avg, msg) in enumerate(steps, start=1):
        records.record_event(
            "c1",
            status=status,
            filled=filled,
            remaining=remaining,
            avg_fill_price=avg,
            ts=T0 + k * SECOND,
            message=msg,
            perm_id=99 if k == 2 else None,
        )
    events = records.events("c1")
    assert [(e.status, e.filled, e.remaining, e.avg_fill_price) for e in events] == [
        (S.CREATED, 0, 2, None),
        *[(st, f, r, a) for st, f, r, a, _ in steps],
    ]
    assert [e.ts for e in events] == [T0 + k * SECOND for k in range(5)]
    order = records.get_order("c1")
    assert order is not None
    assert (order.status, order.filled, order.remaining, order.avg_fill_price) == (
        S.FILLED,
        2,
        0,
        Decimal("5000.375"),
    )
    assert (order.perm_id, order.last_message, order.updated_ts) == (99, "fill 2", T0 + 4 * SECOND)


def test_event_for_an_unknown_order_is_refused(records: OrderRecords) -> None:
    with pytest.raises(RecordsError, match="no order 'nope'"):
        records.record_event("nope", status=S.SUBMITTED, filled=0, remaining=1, avg_fill_price=None, ts=T0)


def fill(records: OrderRecords, exec_id: str, cid: str = "c1", price: float = 5000.25, **kw: object) -> bool:
    return records.record_fill(
        cid,
        exec_id=exec_id,
        ts=T0,
        side=Side.BUY,
        quantity=1,
        price=price,
        symbol="MESZ4",
        currency="USD",
        **kw,  # type: ignore[arg-type]
    )


def test_fills_are_unique_by_exec_id_and_exact(records: OrderRecords) -> None:
    records.record_new(limit_buy("c1"), ts=T0, instrument=MES)
    assert fill(records, "e1", price=5000.25) is True
    assert fill(records, "e1", price=5000.25) is False
    assert fill(records, "e2", price=1234.5678901234) is True
    fills = records.fills("c1")
    assert [f.exec_id for f in fills] == ["e1", "e2"]
    assert fills[0].price == Decimal("5000.25")
    assert fills[1].price == Decimal("1234.5678901234")


def test_a_late_commission_updates_its_fill_and_a_fill_is_never_final_with_a_placeholder(
    records: OrderRecords,
) -> None:
    records.record_new(limit_buy("c1"), ts=T0, instrument=MES)
    fill(records, "e1")
    f = records.fill("e1")
    assert f is not None
    assert (f.commission, f.commission_final) == (None, False)
    assert [x.exec_id for x in records.fills_missing_commission()] == ["e1"]
    # IB's unset double and an empty value change nothing
    assert records.record_commission("e1", 1.7976931348623157e308) is not None
    assert records.record_commission("e1", None) is not None
    f = records.fill("e1")
    assert f is not None
    assert (f.commission, f.commission_final) == (None, False)
    # an early empty (zero) report is provisional ...
    records.record_commission("e1", Decimal(0))
    f = records.fill("e1")
    assert f is not None
    assert (f.commission, f.commission_final) == (Decimal(0), False)
    # ... the real one replaces it and is final
    updated = records.record_commission("e1", Decimal("0.62"), realized_pnl=Decimal("-12.5"))
    assert updated is not None
    assert (updated.commission, updated.commission_final, updated.realized_pnl) == (
        Decimal("0.62"),
        True,
        Decimal("-12.5"),
    )
    # a zero arriving after the real fee does not erase it
    records.record_commission("e1", 0.0)
    f = records.fill("e1")
    assert f is not None
    assert (f.commission, f.commission_final) == (Decimal("0.62"), True)
    assert records.fills_missing_commission() == []
    # a corrected fee: the commission before and the fill after, in one call (what the OMS counts)
    changed = records.commission_change("e1", Decimal("0.85"))
    assert changed is not None
    before, after = changed
    assert (before, after.commission, after.commission_final) == (Decimal("0.62"), Decimal("0.85"), True)
    assert records.commission_change("nope", Decimal(1)) is None


def test_commission_for_an_unrecorded_execution_returns_none(records: OrderRecords) -> None:
    assert records.record_commission("unknown", Decimal("0.62")) is None


def test_queries_by_status_day_symbol_and_open_orders(records: OrderRecords) -> None:
    next_day = T0 + 86_400 * SECOND
    records.record_new(limit_buy("a"), ts=T0, instrument=MES)
    records.record_new(limit_buy("b"), ts=next_day, instrument=MES)
    records.record_new(OrderRequest("MNQ", Side.SELL, 1, client_order_id="c"), ts=T0, instrument=MNQ)
    for cid, status in (("a", S.FILLED), ("b", S.SUBMITTED), ("c", S.CANCELLED)):
        records.record_event(cid, status=status, filled=0, remaining=1, avg_fill_price=None, ts=T0)
    ids = lambda rows: [r.client_order_id for r in rows]  # noqa: E731
    assert ids(records.orders(status=S.FILLED)) == ["a"]
    assert ids(records.orders(status=[S.FILLED, S.CANCELLED])) == ["a", "c"]
    assert ids(records.orders(day=datetime(2024, 11, 5, tzinfo=UTC).date())) == ["a", "c"]
    assert ids(records.orders(symbol="MNQ")) == ["c"]
    assert ids(records.orders(symbol="MESZ4")) == ["a", "b"]
    assert ids(records.open_orders()) == ["b"]


def test_executions_since_for_reconciliation(records: OrderRecords) -> None:
    records.record_new(limit_buy("c1", qty=3), ts=T0, instrument=MES)
    for k in range(3):
        records.record_fill(
            "c1", exec_id=f"e{k}", ts=T0 + k * SECOND, side=Side.BUY, quantity=1, price=5000.0, symbol="MESZ4"
        )
    assert [f.exec_id for f in records.executions()] == ["e0", "e1", "e2"]
    assert [f.exec_id for f in records.executions(since_ts=T0 + SECOND)] == ["e1", "e2"]


def test_order_ids_are_never_handed_out_twice_even_when_the_broker_goes_back(records: OrderRecords) -> None:
    assert records.reserve_order_id(10) == 10
    assert records.reserve_order_id(10) == 11
    assert records.reserve_order_id(3) == 12  # the broker's next id went back after a restart
    assert records.reserve_order_id(50) == 50
    again = OrderRecords(records.url)  # a restarted process
    try:
        assert again.last_order_id() == 50
        assert again.reserve_order_id(1) == 51
    finally:
        again.close()


def _pragmas(records: OrderRecords) -> list[Any]:
    with records.engine.connect() as conn:
        return [
            conn.execute(text(f"PRAGMA {p}")).scalar()
            for p in ("journal_mode", "synchronous", "foreign_keys", "wal_autocheckpoint")
        ]


def test_sqlite_is_wal_with_synchronous_normal_by_default_and_no_checkpoint_inside_a_commit(
    sqlite_records: OrderRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(records_module.RECORDS_SYNC_ENV, raising=False)
    assert sqlite_records.sync == records_module.DEFAULT_RECORDS_SYNC == "normal"
    # WAL, NORMAL (1), foreign keys on, automatic checkpoint off (the records' own thread checkpoints)
    assert _pragmas(sqlite_records) == ["wal", 1, 1, 0]


def test_records_sync_full_fsyncs_every_commit_and_is_a_setting(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = OrderRecords(sqlite_url, sync="full")
    try:
        assert full.sync == "full"
        # FULL; SQLite's automatic checkpoint in the writes after the send (never in the write-ahead's commit)
        assert _pragmas(full) == ["wal", 2, 1, 1000]
    finally:
        full.close()
    monkeypatch.setenv(records_module.RECORDS_SYNC_ENV, "FULL")
    from_env = OrderRecords(sqlite_url)
    try:
        assert from_env.sync == "full"
        assert _pragmas(from_env)[1] == 2
    finally:
        from_env.close()
    with pytest.raises(RecordsError, match=r"records_sync is 'fsync'; it must be 'full' or 'normal'"):
        OrderRecords(sqlite_url, sync="fsync")
    monkeypatch.setenv(records_module.RECORDS_SYNC_ENV, "off")
    with pytest.raises(RecordsError, match=r"\$IBOT_RECORDS_SYNC is 'off'"):
        OrderRecords(sqlite_url)


def test_the_records_thread_checkpoints_the_wal_into_the_database_file(
    sqlite_url: str, tmp_path: Path
) -> None:
    rec = OrderRecords(sqlite_url)
    rec.migrate()
    try:
        for i in range(20):
            rec.record_submission(
                limit_buy(f"c{i}"), ts=T0, instrument=MES, broker_next_id=1, client_order_id=f"c{i}"
            )
        db = tmp_path / "orders.sqlite"

        def in_database_file() -> int:
            # immutable=1: the database file alone, the WAL ignored: rows are there once checkpointed
            uri = f"file:{db}?immutable=1"
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
                try:
                    return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
                except sqlite3.OperationalError:  # the table itself is still only in the WAL
                    return 0

        deadline = time.monotonic() + 10
        while in_database_file() < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert in_database_file() == 20
    finally:
        rec.close()


def test_default_database_is_a_sqlite_file_under_the_data_dir(tmp_path: Path) -> None:
    rec = OrderRecords(data_dir=tmp_path / "data")
    try:
        assert rec.url == default_url(tmp_path / "data")
        rec.migrate()
        assert (tmp_path / "data" / "ibot_orders.sqlite").exists()
    finally:
        rec.close()


# The write-ahead transaction of an order about to be sent --------------------------------------------------
def commits(records: OrderRecords) -> list[int]:
    """A list that grows by one on every COMMIT the records make from now on. On SQLite every COMMIT any
    connection of its engine runs, including the write-ahead's own DBAPI connection (no engine events)."""
    seen: list[int] = []
    if records.engine.dialect.name != "sqlite":
        event.listen(records.engine, "commit", lambda _conn: seen.append(1))
        return seen

    def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_trace_callback(lambda sql: seen.append(1) if sql == "COMMIT" else None)

    event.listen(records.engine.pool, "checkout", trace)
    return seen


def test_write_ahead_reserves_the_id_and_records_the_order_and_its_events_in_one_commit(
    records: OrderRecords,
) -> None:
    records.reserve_order_id(40)
    seen = commits(records)
    ahead = records.record_submission(
        limit_buy("w1"), ts=T0, instrument=MES, broker_next_id=7, client_order_id="w1", client_id=1000
    )
    assert len(seen) == 1
    assert ahead == WriteAhead(41, "w1")  # above the highest id ever used, not the broker's 7
    other = OrderRecords(records.url)  # committed: another connection sees it all
    try:
        row = other.get_order("w1")
        assert row is not None
        assert (row.status, row.ib_order_id, row.client_id, row.remaining, row.last_message) == (
            S.PENDING_SUBMIT,
            41,
            1000,
            2,
            "sent to broker",
        )
        assert (row.local_symbol, row.limit_price, row.created_ts) == ("MESZ4", Decimal("5000.25"), T0)
        assert [(e.status, e.source) for e in other.events("w1")] == [
            (S.CREATED, "oms"),
            (S.PENDING_SUBMIT, "oms"),
        ]
        assert other.last_order_id() == 41
    finally:
        other.close()


def test_write_ahead_makes_the_client_order_id_from_the_reserved_broker_id(records: OrderRecords) -> None:
    ahead = records.record_submission(
        OrderRequest("MES", Side.SELL, 1),
        ts=T0,
        instrument=MES,
        broker_next_id=12,
        client_order_id=lambda order_id: f"ibot-7-{order_id}",
    )
    assert ahead == WriteAhead(12, "ibot-7-12")
    row = records.get_order("ibot-7-12")
    assert row is not None
    assert (row.ib_order_id, row.side, row.status) == (12, Side.SELL, S.PENDING_SUBMIT)


def test_write_ahead_of_a_recorded_client_order_id_writes_nothing_and_uses_no_order_id(
    records: OrderRecords,
) -> None:
    records.record_submission(
        limit_buy("dup"), ts=T0, instrument=MES, broker_next_id=5, client_order_id="dup"
    )
    with pytest.raises(DuplicateOrderError, match="'dup' is already recorded"):
        records.record_submission(
            limit_buy("dup", qty=9), ts=T0 + SECOND, instrument=MES, broker_next_id=5, client_order_id="dup"
        )
    assert records.last_order_id() == 5  # the reservation rolled back with the refused order
    order = records.get_order("dup")
    assert order is not None
    assert (order.quantity, order.ib_order_id) == (2, 5)
    assert len(records.events("dup")) == 2
    assert records.reserve_order_id(1) == 6


def test_a_failure_inside_the_write_ahead_transaction_leaves_nothing_behind(
    sqlite_records: OrderRecords,
) -> None:
    with sqlite_records.engine.begin() as conn:  # the last statement of the transaction fails
        conn.execute(
            text(
                "CREATE TRIGGER refuse_pending BEFORE INSERT ON order_events "
                "WHEN NEW.status = 'PendingSubmit' BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
            )
        )
    with pytest.raises(RecordsError, match=r"'w1'.*disk says no"):
        sqlite_records.record_submission(
            limit_buy("w1"), ts=T0, instrument=MES, broker_next_id=3, client_order_id="w1"
        )
    assert sqlite_records.get_order("w1") is None
    assert sqlite_records.events("w1") == []
    assert sqlite_records.last_order_id() == 0  # no id reserved


def test_a_fill_and_the_order_state_it_makes_are_recorded_together_and_only_once(
    records: OrderRecords,
) -> None:
    records.record_new(limit_buy("c1"), ts=T0, instrument=MES, ib_order_id=5)
    change = OrderChange(
        S.SUBMITTED, 1, 1, Decimal("5000.25"), T0 + SECOND, "execution e1", "broker", perm_id=77
    )
    seen = commits(records)
    assert fill(records, "e1", change=change) is True
    assert len(seen) == 1
    order = records.get_order("c1")
    assert order is not None
    assert (order.status, order.filled, order.remaining, order.perm_id, order.updated_ts) == (
        S.SUBMITTED,
        1,
        1,
        77,
        T0 + SECOND,
    )
    assert [(e.status, e.filled) for e in records.events("c1")] == [(S.CREATED, 0), (S.SUBMITTED, 1)]
    assert fill(records, "e1", change=change) is False  # seen: neither the fill nor the event
    assert len(records.fills("c1")) == 1
    assert len(records.events("c1")) == 2


def test_an_older_event_never_moves_the_orders_update_time_back(records: OrderRecords) -> None:
    records.record_new(limit_buy("c1"), ts=T0, instrument=MES)
    later, earlier = T0 + 5 * SECOND, T0 + 2 * SECOND
    records.record_event("c1", status=S.SUBMITTED, filled=0, remaining=2, avg_fill_price=None, ts=later)
    saved = records.record_event(
        "c1", status=S.PENDING_CANCEL, filled=0, remaining=2, avg_fill_price=None, ts=earlier
    )
    assert (saved.status, saved.updated_ts) == (S.PENDING_CANCEL, later)
    assert [e.ts for e in records.events("c1")] == [T0, later, earlier]


# The SQLite write-ahead on the driver's connection: the same rows as the Core path ----------------------
WALL = datetime(2024, 11, 5, 15, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The record time stamped on rows: the last element of the returned list (the test appends)."""
    now = [WALL]
    monkeypatch.setattr(records_module, "_wall_now", lambda: now[-1])
    return now


@contextmanager
def two_databases(tmp_path: Path, *, migrated: bool = True) -> Iterator[tuple[OrderRecords, OrderRecords]]:
    """(Core path, driver path) records on two SQLite files with the same schema."""
    pair = (
        OrderRecords(f"sqlite:///{tmp_path / 'core.sqlite'}"),
        OrderRecords(f"sqlite:///{tmp_path / 'raw.sqlite'}"),
    )
    pair[0]._driver_write_ahead = False
    for rec in pair:
        if migrated:
            rec.migrate()
        else:  # a database made without the migration: no counter row
            Base.metadata.create_all(rec.engine)
    try:
        yield pair
    finally:
        for rec in pair:
            rec.close()


def every_row(url: str) -> dict[str, list[tuple[tuple[str, Any], ...]]]:
    """Every column of every row of the tables the write-ahead writes, with each value's storage type."""
    conn = sqlite3.connect(url.split("///", 1)[1])
    try:
        return {
            table: [
                tuple((type(v).__name__, v) for v in row)
                for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")
            ]
            for table in ("orders", "order_events", "oms_counters", "fills", "fill_conflicts")
        }
    finally:
        conn.close()


SUBMISSIONS: list[tuple[OrderRequest, dict[str, Any]]] = [
    (limit_buy("a1"), {"broker_next_id": 7, "client_order_id": "a1", "client_id": 1000, "account": "DU1"}),
    (
        OrderRequest(
            "MNQ",
            Side.SELL,
            3,
            OrderType.STP_LMT,
            limit_price=20100.5,
            stop_price=20101.25,
            tif=TimeInForce.GTC,
            reason="stop é" * 50,  # cut to 200 characters
            parent_id="a1",
            oca_group="oca-1",
        ),
        {"broker_next_id": 3, "client_order_id": lambda order_id: f"ibot-9-{order_id}", "strategy": "orb"},
    ),
    (
        OrderRequest("MES", Side.BUY, 1),
        {"broker_next_id": 50, "client_order_id": "m1", "message": "", "source": "manual"},
    ),
    (
        OrderRequest("MES", Side.SELL, 2, OrderType.LMT, limit_price=0.1 + 0.2),
        {"broker_next_id": 1, "client_order_id": "f1", "client_id": 0},
    ),
]


@pytest.mark.parametrize("migrated", [True, False], ids=["migrated", "no-counter-row"])
def test_the_driver_write_ahead_writes_exactly_the_rows_the_core_path_writes(
    tmp_path: Path, wall_clock: list[datetime], migrated: bool
) -> None:
    with two_databases(tmp_path, migrated=migrated) as (core, raw):
        for i, (request, kwargs) in enumerate(SUBMISSIONS):
            wall_clock.append(WALL + i * timedelta(seconds=1, microseconds=7))
            instrument = MNQ if request.symbol == "MNQ" else MES
            written = [
                rec.record_submission(request, ts=T0 + i * SECOND, instrument=instrument, **kwargs)
                for rec in (core, raw)
            ]
            assert written[0] == written[1]
            for rec in (core, raw):  # a refused duplicate: the same error, nothing written on either path
                with pytest.raises(DuplicateOrderError, match=f"{written[0].client_order_id!r}"):
                    rec.record_submission(
                        request,
                        ts=T0,
                        instrument=instrument,
                        **(kwargs | {"client_order_id": written[0].client_order_id}),
                    )
        assert core._driver is None and raw._driver is not None  # each went the way it was meant to
        core_rows, raw_rows = every_row(core.url), every_row(raw.url)
        assert [len(core_rows[t]) for t in ("orders", "order_events", "oms_counters")] == [4, 8, 1]
        assert raw_rows == core_rows


CHANGES: list[tuple[str, OrderChange]] = [
    ("a1", OrderChange(S.SUBMITTED, 0, 2, None, T0 + 2 * SECOND, "", "broker", quantity=2, ib_order_id=7)),
    ("a1", OrderChange(S.SUBMITTED, 0, 3, None, T0 + 3 * SECOND, "modify", "oms", 3, limit_price=5000.5)),
    ("a1", OrderChange(S.SUBMITTED, 1, 2, Decimal("5000.5"), T0 + 4 * SECOND, "", "broker", perm_id=99)),
    ("a1", OrderChange(S.FILLED, 3, 0, Decimal("5000.25"), T0 + SECOND, "é" * 30, "broker")),  # older ts
    ("m1", OrderChange(S.CANCELLED, 0, 1, None, T0 + 5 * SECOND, "error 202: Order Canceled", "broker")),
    ("m1", OrderChange(S.CANCELLED, 0, 1, None, T0 + 6 * SECOND, "", "reconcile", stop_price=4999.75)),
]


def test_a_change_written_on_the_driver_connection_writes_exactly_the_rows_the_core_path_writes(
    tmp_path: Path, wall_clock: list[datetime]
) -> None:
    with two_databases(tmp_path) as (core, raw):
        for i, (request, kwargs) in enumerate(SUBMISSIONS):
            if kwargs["client_order_id"] in ("a1", "m1"):
                instrument = MNQ if request.symbol == "MNQ" else MES
                for rec in (core, raw):
                    rec.record_submission(request, ts=T0 + i * SECOND, instrument=instrument, **kwargs)
        for i, (cid, change) in enumerate(CHANGES):
            wall_clock.append(WALL + (i + 1) * timedelta(seconds=3, microseconds=11))
            for rec in (core, raw):
                rec.write_change(cid, change)
        for rec in (core, raw):  # an order never recorded: refused, nothing written on either path
            with pytest.raises(RecordsError, match=r"no order 'nope' is recorded \(recording Filled\)"):
                rec.write_change("nope", CHANGES[3][1])
        assert core._driver is None and raw._driver is not None
        core_rows, raw_rows = every_row(core.url), every_row(raw.url)
        assert [len(core_rows[t]) for t in ("orders", "order_events")] == [2, 4 + len(CHANGES)]
        assert raw_rows == core_rows
        got = raw.get_order("a1")
        assert got is not None
        assert (got.status, got.quantity, got.limit_price, got.perm_id, got.updated_ts) == (
            S.FILLED,
            3,
            Decimal("5000.5"),
            99,
            T0 + 4 * SECOND,  # an older event never moves it back
        )


FILLS: list[dict[str, Any]] = [
    {"exec_id": "e1", "side": Side.BUY, "quantity": 1, "price": 5000.25, "commission": None},
    {"exec_id": "e2", "side": Side.BUY, "quantity": 2, "price": Decimal("5000.5"), "commission": 1.24},
    {
        "exec_id": "e3",
        "side": Side.BUY,
        "quantity": 1,
        "price": 0.1 + 0.2,
        "commission": 0.0,
        "account": "DU1",
    },
]


def test_a_fill_written_on_the_driver_connection_writes_exactly_the_rows_the_core_path_writes(
    tmp_path: Path, wall_clock: list[datetime]
) -> None:
    with two_databases(tmp_path) as (core, raw):
        request, kwargs = SUBMISSIONS[0]
        for rec in (core, raw):
            rec.record_submission(request, ts=T0, instrument=MES, **kwargs)
        filled = 0
        for i, fill in enumerate(FILLS):
            wall_clock.append(WALL + (i + 1) * timedelta(seconds=2, microseconds=13))
            filled += fill["quantity"]
            status = S.FILLED if filled >= 4 else S.SUBMITTED
            change = OrderChange(status, filled, 4 - filled, None, T0 + i * SECOND, f"exec {i}", "broker")
            for rec in (core, raw):
                assert rec.record_fill("a1", ts=T0 + i * SECOND, symbol="MESH5", change=change, **fill)
                # the same execution again: nothing written, on either path
                assert not rec.record_fill("a1", ts=T0 + i * SECOND, symbol="MESH5", change=change, **fill)
                # the same exec id with another time: kept aside, the same row on either path
                with pytest.raises(FillConflictError, match="time"):
                    rec.record_fill("a1", ts=T0 - SECOND, symbol="MESH5", change=change, **fill)
        unknown = OrderChange(S.FILLED, 1, 0, None, T0, "", "broker")
        for rec in (core, raw):  # a fill of an order never recorded: the same error, nothing written
            with pytest.raises(IntegrityError, match="FOREIGN KEY"):
                rec.record_fill(
                    "nope", exec_id="e9", ts=T0, side=Side.BUY, quantity=1, price=1.0, symbol="MESH5",
                    change=unknown,
                )  # fmt: skip
        assert core._driver is None and raw._driver is not None
        core_rows, raw_rows = every_row(core.url), every_row(raw.url)
        tables = ("orders", "order_events", "fills", "fill_conflicts")
        assert [len(core_rows[t]) for t in tables] == [1, 2 + len(FILLS), 3, 3]
        assert raw_rows == core_rows
        assert [(f.exec_id, f.commission, f.commission_final) for f in raw.executions()] == [
            ("e1", None, False),
            ("e2", Decimal("1.24"), True),
            ("e3", Decimal("0"), False),  # a zero is provisional
        ]


def test_the_driver_write_ahead_runs_with_the_engines_durability_pragmas(
    sqlite_records: OrderRecords,
) -> None:
    sqlite_records.record_submission(
        limit_buy("p1"), ts=T0, instrument=MES, broker_next_id=1, client_order_id="p1"
    )
    driver = sqlite_records._driver
    assert driver is not None
    pragmas = [
        driver.connection.execute(f"PRAGMA {p}").fetchone()[0]
        for p in ("journal_mode", "synchronous", "foreign_keys", "wal_autocheckpoint")
    ]
    # WAL, NORMAL (the default), foreign keys on: as every Core connection; never a checkpoint in its commit
    assert pragmas == ["wal", 1, 1, 0]


def test_on_a_sqlite_file_the_write_ahead_and_every_other_write_share_one_driver_connection(
    sqlite_records: OrderRecords,
) -> None:
    sqlite_records.record_submission(
        limit_buy("one"), ts=T0, instrument=MES, broker_next_id=1, client_order_id="one"
    )
    sqlite_records.record_event(
        "one", status=S.SUBMITTED, filled=0, remaining=2, avg_fill_price=None, ts=T0 + SECOND
    )
    driver = sqlite_records._driver
    assert driver is not None
    with sqlite_records.engine.connect() as conn:
        assert conn.connection.driver_connection is driver.connection  # one page cache, kept warm
    got = sqlite_records.get_order("one")
    assert got is not None and got.status is S.SUBMITTED
    assert [e.status for e in sqlite_records.events("one")] == [S.CREATED, S.PENDING_SUBMIT, S.SUBMITTED]


def test_after_a_refused_write_ahead_the_driver_connection_takes_the_next_order(
    sqlite_records: OrderRecords,
) -> None:
    sqlite_records.record_submission(
        limit_buy("d1"), ts=T0, instrument=MES, broker_next_id=5, client_order_id="d1"
    )
    before = every_row(sqlite_records.url)
    with pytest.raises(DuplicateOrderError):
        sqlite_records.record_submission(
            limit_buy("d1", qty=3), ts=T0, instrument=MES, broker_next_id=9, client_order_id="d1"
        )
    with pytest.raises(RecordsError, match="has no id"):
        sqlite_records.record_submission(
            limit_buy(""), ts=T0, instrument=MES, broker_next_id=9, client_order_id=lambda _id: ""
        )
    assert every_row(sqlite_records.url) == before  # nothing written, no id used up
    ahead = sqlite_records.record_submission(
        limit_buy("d2"), ts=T0, instrument=MES, broker_next_id=1, client_order_id="d2"
    )
    assert ahead == WriteAhead(6, "d2")


@pytest.mark.parametrize("path", ["core", "driver"])
def test_a_database_error_inside_the_write_ahead_is_sqlalchemys_error_on_both_paths_and_leaves_nothing(
    sqlite_records: OrderRecords, path: str
) -> None:
    sqlite_records._driver_write_ahead = path == "driver"
    with (
        sqlite_records.engine.begin() as conn
    ):  # the order insert fails at run time: its trigger's table is gone
        conn.execute(text("CREATE TABLE audit (cid TEXT)"))
        conn.execute(
            text(
                "CREATE TRIGGER audit_order AFTER INSERT ON orders "
                "BEGIN INSERT INTO audit VALUES (NEW.client_order_id); END"
            )
        )
        conn.execute(text("DROP TABLE audit"))
    before = every_row(sqlite_records.url)
    with pytest.raises(OperationalError, match="no such table"):
        sqlite_records.record_submission(
            limit_buy("e1"), ts=T0, instrument=MES, broker_next_id=3, client_order_id="e1"
        )
    assert every_row(sqlite_records.url) == before
    with sqlite_records.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_order"))
    ahead = sqlite_records.record_submission(
        limit_buy("e1"), ts=T0, instrument=MES, broker_next_id=3, client_order_id="e1"
    )
    assert ahead == WriteAhead(3, "e1")
    assert (sqlite_records._driver is not None) is (path == "driver")

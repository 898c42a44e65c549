"""The order records database: every order (written before it is sent), every state change, every execution.

SQLAlchemy 2 typed models and one repository, `OrderRecords`. SQLite by default (a file under the data dir,
WAL journal; `records_sync`: "normal" by default, a committed row survives any crash of the process, "full"
also a power cut); PostgreSQL by URL (psycopg 3 driver). Every write method commits before it returns.
Writes go through SQLAlchemy Core (one statement per row, no ORM unit of work), and the write-ahead record of
an order about to be sent is ONE transaction (`record_submission`): the tick-to-order path pays for one
durable commit. On a SQLite file everything runs on ONE driver connection (its page cache stays valid), and
that transaction runs on it directly, with the Core statements compiled once and the column types' bind
processors applied: the same rows for a fraction of Core's per-statement cost. Checkpoints never run inside a
commit of the write-ahead (`_Checkpointer`). Money and prices are exact decimals (NUMERIC on PostgreSQL, text
on SQLite, whose NUMERIC affinity would round through a float). The schema is created and upgraded by the
Alembic migrations packaged in `ibot/oms/migrations` (`OrderRecords.migrate()`).

Commissions (pysystemtrade PR #1661): IB reports an execution first and its commission later, sometimes after
an early empty report. A fill's commission stays NULL until a real report arrives; a zero report is kept as a
provisional value (`commission_final` false) that a later real report replaces; only a real (non-zero) report
makes it final. `fills_missing_commission()` lists the fills still waiting.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    Row,
    String,
    Table,
    Text,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection, StaticPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from ibot.model.errors import IbotError
from ibot.model.instruments import Instrument
from ibot.model.market import ns_to_datetime
from ibot.model.orders import OrderRequest, OrderStatus, Side
from ibot.oms.states import FINAL

__all__ = [
    "DEFAULT_DB_NAME",
    "DEFAULT_RECORDS_SYNC",
    "RECORDS_SYNC_ENV",
    "Base",
    "DuplicateOrderError",
    "ExactDecimal",
    "FillConflictError",
    "FillConflictRecord",
    "FillConflictRow",
    "FillRecord",
    "FillRow",
    "IntakeKeyRecord",
    "IntakeKeyRow",
    "OrderChange",
    "OrderEventRecord",
    "OrderEventRow",
    "OrderRecord",
    "OrderRecords",
    "OrderRow",
    "RecordsError",
    "RecordsSync",
    "WriteAhead",
    "broker_amount",
    "default_url",
    "execution_time",
    "fill_differences",
    "records_sync",
]

log = logging.getLogger(__name__)

DEFAULT_DB_NAME = "ibot_orders.sqlite"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ORDER_ID_COUNTER = "last_order_id"
# IB's "unset" double (Double.MAX_VALUE): a commission or realized P&L that is not known yet.
_IB_UNSET = 1e300


class RecordsError(IbotError, RuntimeError):
    """The records database refused an operation; the message names the order or execution."""


class DuplicateOrderError(RecordsError):
    """An order with this client order id is already recorded."""


class FillConflictError(RecordsError):
    """An execution whose exec id is already recorded with different content (order, side, price, quantity or
    time): an integrity error. The new execution was kept aside in `fill_conflicts`, never merged."""

    def __init__(self, exec_id: str, differences: Sequence[str]) -> None:
        self.exec_id = exec_id
        self.differences = tuple(differences)
        super().__init__(
            f"execution {exec_id} is already recorded with different content ({'; '.join(differences)}): "
            "the new one is kept aside in fill_conflicts, not merged"
        )


# --- column types ---------------------------------------------------------------------------------------


def _clean(d: Decimal) -> Decimal:
    """5000.2500000000 -> 5000.25, 5000.00 -> 5000: the same value whatever the backend's scale."""
    if d == d.to_integral_value():
        return d.quantize(Decimal(1))
    return d.normalize()


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored exactly: NUMERIC(precision, scale) where the database has it, text on SQLite."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 24, scale: int = 10) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        if not d.is_finite():
            raise RecordsError(f"refusing to store the non-finite amount {value!r}")
        return str(d) if dialect.name == "sqlite" else d

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return _clean(Decimal(str(value)))


class Greatest(FunctionElement[int]):
    """The largest of its integer arguments: GREATEST on PostgreSQL, the scalar MAX(a, b, ...) on SQLite."""

    type = BigInteger()
    name = "greatest"
    inherit_cache = True


@compiles(Greatest)
def _greatest(element: Greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


@compiles(Greatest, "sqlite")
def _greatest_sqlite(element: Greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


# --- models ---------------------------------------------------------------------------------------------

_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class OrderRow(Base):
    """One order: what was asked, the broker's ids, and its current state (events keep the history)."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    ib_order_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    perm_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    client_id: Mapped[int | None] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(32), default="")
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    local_symbol: Mapped[str] = mapped_column(String(32), default="")
    sec_type: Mapped[str] = mapped_column(String(8), default="")
    exchange: Mapped[str] = mapped_column(String(16), default="")
    currency: Mapped[str] = mapped_column(String(8), default="")
    con_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    order_type: Mapped[str] = mapped_column(String(8))
    limit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    stop_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    tif: Mapped[str] = mapped_column(String(4))
    reason: Mapped[str] = mapped_column(String(200), default="")
    strategy: Mapped[str] = mapped_column(String(64), default="")
    parent_client_order_id: Mapped[str] = mapped_column(String(64), default="")
    oca_group: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    filled: Mapped[int] = mapped_column(Integer, default=0)
    remaining: Mapped[int] = mapped_column(Integer)
    avg_fill_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    created_ts: Mapped[int] = mapped_column(BigInteger, index=True)  # event time, ns UTC (the data's clock)
    updated_ts: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # record time (wall clock)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_message: Mapped[str] = mapped_column(Text, default="")


class OrderEventRow(Base):
    """One change of an order (status, fill, error, reconciliation), in the order it was recorded."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(ForeignKey("orders.client_order_id"), index=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    filled: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    avg_fill_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    message: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16))


class FillRow(Base):
    """One execution, unique by the broker's exec id; commission NULL until the broker reports it."""

    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exec_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_order_id: Mapped[str] = mapped_column(ForeignKey("orders.client_order_id"), index=True)
    ib_order_id: Mapped[int | None] = mapped_column(BigInteger)
    account: Mapped[str] = mapped_column(String(32), default="")
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(ExactDecimal())
    ts: Mapped[int] = mapped_column(BigInteger, index=True)  # execution time, ns UTC
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    commission: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    commission_final: Mapped[bool] = mapped_column(Boolean, default=False)
    realized_pnl: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    currency: Mapped[str] = mapped_column(String(8), default="")


class FillConflictRow(Base):
    """An execution whose exec id was already recorded with different content: kept aside for inspection,
    never merged into `fills` (migration 0002). `differences` says what differed from the recorded fill."""

    __tablename__ = "fill_conflicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exec_id: Mapped[str] = mapped_column(String(64), index=True)
    client_order_id: Mapped[str] = mapped_column(String(64), default="")  # the order it was reported for
    ib_order_id: Mapped[int | None] = mapped_column(BigInteger)
    account: Mapped[str] = mapped_column(String(32), default="")
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(ExactDecimal())
    ts: Mapped[int] = mapped_column(BigInteger)  # execution time, ns UTC
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    commission: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    realized_pnl: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    currency: Mapped[str] = mapped_column(String(8), default="")
    differences: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16), default="broker")


class CounterRow(Base):
    """Named counters that must survive restarts (the highest broker order id ever used)."""

    __tablename__ = "oms_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class IntakeKeyRow(Base):
    """An idempotency key of the order intake (ibot.oms.intake), claimed once per window (migration 0003).

    `claimed_ts` is market time (ns) of the claim; `verdict` stays "" while the ticket is being placed and
    then says what it became (accepted, rejected, nothing_to_do, duplicate): a claim left "" by a crash is
    resumed under the same client order id, which the OMS never sends twice."""

    __tablename__ = "intake_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    client_order_id: Mapped[str] = mapped_column(String(64))
    claimed_ts: Mapped[int] = mapped_column(BigInteger)  # market time, ns UTC
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # record time (wall clock)
    verdict: Mapped[str] = mapped_column(String(16), default="")


class AlertRow(Base):
    """One request to the TradingView webhook, accepted or not (migration 0004; ibot.webhook.alerts uses it).

    Committed before the webhook answers; `state` "pending" until the intake has processed it, then "done".
    `body` never holds the secret (redacted before it is written)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # wall clock
    received_ts: Mapped[int] = mapped_column(BigInteger)  # market time, ns UTC
    source_address: Mapped[str] = mapped_column(String(64), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    ticket: Mapped[str] = mapped_column(Text, default="")  # the typed order (JSON) the worker submits
    idempotency_key: Mapped[str] = mapped_column(String(64), default="", index=True)
    http_status: Mapped[int] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(16), index=True)
    field: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    client_order_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    state: Mapped[str] = mapped_column(String(8), index=True)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RollRow(Base):
    """One position roll, the decision its orders share (migration 0005; ibot.oms.rolls uses it).

    Written before the roll's first order; its orders' client ids start with `roll_id` (ibot.oms.rolls
    names them), so a roll cut by a crash is found and finished after the restart. `state` moves
    planned -> combo -> (legs ->) moving -> done, or failed; `moved` holds the working orders of the old
    month to place again on the new one (JSON)."""

    __tablename__ = "rolls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    roll_id: Mapped[str] = mapped_column(String(40), unique=True)
    strategy: Mapped[str] = mapped_column(String(64), default="")
    product: Mapped[str] = mapped_column(String(16))
    from_key: Mapped[str] = mapped_column(String(32))
    to_key: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)  # the signed position rolled
    state: Mapped[str] = mapped_column(String(12), index=True)
    moved: Mapped[str] = mapped_column(Text, default="[]")
    spread: Mapped[Decimal | None] = mapped_column(ExactDecimal())  # new month's price - old month's
    created_ts: Mapped[int] = mapped_column(BigInteger)  # market time, ns UTC
    updated_ts: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message: Mapped[str] = mapped_column(Text, default="")


_ORDERS: Table = Base.metadata.tables["orders"]
_EVENTS: Table = Base.metadata.tables["order_events"]
_FILLS: Table = Base.metadata.tables["fills"]
_COUNTERS: Table = Base.metadata.tables["oms_counters"]
_CONFLICTS: Table = Base.metadata.tables["fill_conflicts"]
_INTAKE_KEYS: Table = Base.metadata.tables["intake_keys"]


# --- plain records handed out by the repository ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRecord:
    client_order_id: str
    ib_order_id: int | None
    perm_id: int | None
    client_id: int | None
    account: str
    symbol: str
    local_symbol: str
    sec_type: str
    exchange: str
    currency: str
    con_id: int | None
    side: Side
    quantity: int
    order_type: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: str
    reason: str
    strategy: str
    parent_client_order_id: str
    oca_group: str
    status: OrderStatus
    filled: int
    remaining: int
    avg_fill_price: Decimal | None
    created_ts: int
    updated_ts: int
    created_at: datetime
    updated_at: datetime
    last_message: str

    @property
    def key(self) -> str:
        """The instrument key positions are kept under: local symbol for a futures month, symbol otherwise."""
        return self.local_symbol or self.symbol


@dataclass(frozen=True, slots=True)
class OrderEventRecord:
    client_order_id: str
    ts: int
    recorded_at: datetime
    status: OrderStatus
    filled: int
    remaining: int
    avg_fill_price: Decimal | None
    message: str
    source: str


@dataclass(frozen=True, slots=True)
class FillRecord:
    exec_id: str
    client_order_id: str
    ib_order_id: int | None
    account: str
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    ts: int
    commission: Decimal | None
    commission_final: bool
    realized_pnl: Decimal | None
    currency: str


@dataclass(frozen=True, slots=True)
class FillConflictRecord:
    """An execution kept aside because its exec id was recorded with different content (`differences`)."""

    exec_id: str
    client_order_id: str
    ib_order_id: int | None
    account: str
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    ts: int
    recorded_at: datetime
    commission: Decimal | None
    realized_pnl: Decimal | None
    currency: str
    differences: str
    source: str


@dataclass(frozen=True, slots=True)
class OrderChange:
    """One change of an order to record: its state after the change and what made it (`OrderRecords`).

    `quantity`, `ib_order_id`, `perm_id`, `limit_price`, `stop_price`: None leaves them as they are."""

    status: OrderStatus
    filled: int
    remaining: int
    avg_fill_price: Decimal | None
    ts: int
    message: str = ""
    source: str = "broker"
    quantity: int | None = None
    ib_order_id: int | None = None
    perm_id: int | None = None
    limit_price: float | Decimal | None = None
    stop_price: float | Decimal | None = None


@dataclass(frozen=True, slots=True)
class WriteAhead:
    """What the write-ahead transaction of `record_submission` committed: the ids the order will carry."""

    order_id: int
    client_order_id: str


@dataclass(frozen=True, slots=True)
class IntakeKeyRecord:
    """A claimed idempotency key of the order intake: who claimed it, for which client order id, when (market
    ns and wall), and what the ticket became ("" while it is being placed, or after a crash during that)."""

    key: str
    source: str
    client_order_id: str
    claimed_ts: int
    claimed_at: datetime
    verdict: str


def _order_record(r: OrderRow | Row[Any]) -> OrderRecord:
    return OrderRecord(
        r.client_order_id,
        r.ib_order_id,
        r.perm_id,
        r.client_id,
        r.account,
        r.symbol,
        r.local_symbol,
        r.sec_type,
        r.exchange,
        r.currency,
        r.con_id,
        Side(r.action),
        r.quantity,
        r.order_type,
        r.limit_price,
        r.stop_price,
        r.tif,
        r.reason,
        r.strategy,
        r.parent_client_order_id,
        r.oca_group,
        OrderStatus(r.status),
        r.filled,
        r.remaining,
        r.avg_fill_price,
        r.created_ts,
        r.updated_ts,
        _aware(r.created_at),
        _aware(r.updated_at),
        r.last_message,
    )


def _intake_key_record(row: Row[Any]) -> IntakeKeyRecord:
    return IntakeKeyRecord(
        row.key, row.source, row.client_order_id, row.claimed_ts, _aware(row.claimed_at), row.verdict
    )


def _event_record(r: OrderEventRow) -> OrderEventRecord:
    return OrderEventRecord(
        r.client_order_id,
        r.ts,
        _aware(r.recorded_at),
        OrderStatus(r.status),
        r.filled,
        r.remaining,
        r.avg_fill_price,
        r.message,
        r.source,
    )


def _fill_record(r: FillRow | Row[Any]) -> FillRecord:
    return FillRecord(
        r.exec_id,
        r.client_order_id,
        r.ib_order_id,
        r.account,
        r.symbol,
        Side(r.side),
        r.quantity,
        r.price,
        r.ts,
        r.commission,
        r.commission_final,
        r.realized_pnl,
        r.currency,
    )


def _conflict_record(r: FillConflictRow) -> FillConflictRecord:
    return FillConflictRecord(
        r.exec_id,
        r.client_order_id,
        r.ib_order_id,
        r.account,
        r.symbol,
        Side(r.side),
        r.quantity,
        r.price,
        r.ts,
        _aware(r.recorded_at),
        r.commission,
        r.realized_pnl,
        r.currency,
        r.differences,
        r.source,
    )


def fill_differences(recorded: Sequence[Any], values: Mapping[str, Any]) -> list[str]:
    """What differs between a recorded fill, `recorded` = (client_order_id, side, quantity, price, ts) as the
    database returns them, and a new execution's `values` (the columns `record_fill` writes): empty when the
    new one is a redelivery of the same execution (IB re-sends executions after a reconnect)."""
    cid, side, quantity, price, ts = recorded
    out: list[str] = []
    if cid != values["client_order_id"]:
        out.append(f"order {cid} recorded, {values['client_order_id']} now")
    if str(side) != values["side"]:
        out.append(f"side {side} recorded, {values['side']} now")
    if int(quantity) != values["quantity"]:
        out.append(f"quantity {quantity} recorded, {values['quantity']} now")
    if Decimal(str(price)) != values["price"]:
        out.append(f"price {_clean(Decimal(str(price)))} recorded, {values['price']} now")
    if int(ts) != values["ts"]:
        out.append(f"time {execution_time(int(ts))} recorded, {execution_time(values['ts'])} now")
    return out


def execution_time(ns: int) -> str:
    """An execution time as the differences name it: UTC to the microsecond."""
    return ns_to_datetime(ns).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _wall_now() -> datetime:
    """Record time: when the row was written (I/O metadata; event time comes from the data's clock)."""
    return datetime.now(UTC)


def broker_amount(value: float | Decimal | str | None) -> Decimal | None:
    """An amount as a broker reports it, or None when unset: None, "", NaN, infinity, IB's Double.MAX."""
    if value is None or value == "":
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    if not d.is_finite() or abs(d) >= Decimal(_IB_UNSET):
        return None
    return d


def _price(value: float | Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if not math.isfinite(value):
        raise RecordsError(f"refusing to record the non-finite price {value!r}")
    return Decimal(repr(float(value)))


def default_url(data_dir: Path | str = Path("data")) -> str:
    """The SQLite file the records live in by default: <data_dir>/ibot_orders.sqlite."""
    return f"sqlite:///{Path(data_dir) / DEFAULT_DB_NAME}"


RecordsSync = Literal["full", "normal"]
RECORDS_SYNC_ENV = "IBOT_RECORDS_SYNC"
DEFAULT_RECORDS_SYNC: RecordsSync = "normal"
_SYNC_PRAGMA = {"full": "FULL", "normal": "NORMAL"}


def records_sync(value: str | None = None) -> RecordsSync:
    """The durability level of a SQLite records file: `value`, else $IBOT_RECORDS_SYNC, else the default.

    "normal" (default): WAL with synchronous=NORMAL. A commit is in the WAL file (the OS page cache) before
    it returns: it survives any crash of the trading process (kill -9, an exception, OOM kill); only an OS
    crash or power loss can lose the last commits (never corrupt the file). "full": synchronous=FULL, the WAL
    is fsynced at every commit: a commit also survives an OS crash or power loss, at one disk flush per write.
    """
    raw = value if value is not None else os.environ.get(RECORDS_SYNC_ENV, "")
    mode = raw.strip().lower() or DEFAULT_RECORDS_SYNC
    if mode not in _SYNC_PRAGMA:
        where = "records_sync" if value is not None else f"${RECORDS_SYNC_ENV}"
        raise RecordsError(f"{where} is {raw!r}; it must be 'full' or 'normal'")
    return mode  # type: ignore[return-value]


def _sqlite_pragmas(sync: RecordsSync, *, checkpointer: bool) -> Callable[[Any, Any], None]:
    """The connect-time pragmas of every connection to a SQLite records file; with `checkpointer` no commit
    checkpoints: `_Checkpointer` does it off the loop."""
    level = _SYNC_PRAGMA[sync]
    autocheckpoint = 0 if checkpointer else 1000

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL: readers never block the writer; synchronous: see `records_sync`; foreign keys: SQLite ignores
        # them unless asked.
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={level}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
        cur.close()

    return pragmas


# --- Core statements and row values (the write path: no ORM unit of work) -------------------------------

_INSERT_ORDER = insert(_ORDERS)
_INSERT_EVENT = insert(_EVENTS)
_INSERT_FILL = insert(_FILLS)
# What identifies an execution's content (`fill_differences`): a redelivery must match it exactly.
_FILL_CONTENT = select(
    _FILLS.c.client_order_id, _FILLS.c.side, _FILLS.c.quantity, _FILLS.c.price, _FILLS.c.ts
).where(_FILLS.c.exec_id == bindparam("p_exec_id", type_=String()))
_INSERT_CONFLICT = insert(_CONFLICTS)
_USED_ORDER_IDS = select(func.coalesce(func.max(_ORDERS.c.ib_order_id), 0))
# The next broker order id in one statement: max(broker's next id, max(counter, highest recorded id) + 1).
_RESERVE = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == ORDER_ID_COUNTER)
    .values(
        value=Greatest(
            bindparam("broker_next_id", type_=BigInteger()),
            Greatest(_COUNTERS.c.value, _USED_ORDER_IDS.scalar_subquery()) + 1,
        )
    )
    .returning(_COUNTERS.c.value)
)


# One change of an order as ONE statement whatever the change carries (None keeps a column as it is), for the
# driver connection: `_write_change` builds the same UPDATE from the fields present.
_CHANGE = (
    update(_ORDERS)
    .where(_ORDERS.c.client_order_id == bindparam("p_cid", type_=String()))
    .values(
        status=bindparam("p_status", type_=String()),
        filled=bindparam("p_filled", type_=Integer()),
        remaining=bindparam("p_remaining", type_=Integer()),
        avg_fill_price=bindparam("p_avg_fill_price", type_=ExactDecimal()),
        updated_ts=Greatest(_ORDERS.c.updated_ts, bindparam("p_ts", type_=BigInteger())),
        updated_at=bindparam("p_now", type_=DateTime(timezone=True)),
        last_message=func.coalesce(bindparam("p_message", type_=Text()), _ORDERS.c.last_message),
        quantity=func.coalesce(bindparam("p_quantity", type_=Integer()), _ORDERS.c.quantity),
        ib_order_id=func.coalesce(bindparam("p_ib_order_id", type_=BigInteger()), _ORDERS.c.ib_order_id),
        perm_id=func.coalesce(bindparam("p_perm_id", type_=BigInteger()), _ORDERS.c.perm_id),
        limit_price=func.coalesce(bindparam("p_limit_price", type_=ExactDecimal()), _ORDERS.c.limit_price),
        stop_price=func.coalesce(bindparam("p_stop_price", type_=ExactDecimal()), _ORDERS.c.stop_price),
    )
)


def _conflict_values(fill: Mapping[str, Any], differences: Sequence[str], source: str) -> dict[str, Any]:
    """The `fill_conflicts` row of a new execution (`fill`: the columns `record_fill` writes)."""
    keep = {k: v for k, v in fill.items() if k != "commission_final"}
    keep["differences"] = "; ".join(differences)
    keep["source"] = source[:16]
    return keep


def _upsert(dialect: str) -> Callable[[Table], Any]:
    """The INSERT with ON CONFLICT of the records' backend (SQLite or PostgreSQL)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _create_counter(conn: Connection, broker_next_id: int) -> int:
    """A database made without the migration's counter row: create it with the first id."""
    order_id = max(broker_next_id, int(conn.execute(_USED_ORDER_IDS).scalar_one()) + 1)
    conn.execute(insert(_COUNTERS).values(name=ORDER_ID_COUNTER, value=order_id))
    return order_id


def _order_values(
    request: OrderRequest,
    cid: str,
    *,
    ts: int,
    now: datetime,
    instrument: Instrument | None,
    ib_order_id: int | None,
    client_id: int | None,
    account: str,
    strategy: str,
    status: OrderStatus,
    remaining: int,
    message: str,
) -> dict[str, Any]:
    return {
        "client_order_id": cid,
        "ib_order_id": ib_order_id,
        "perm_id": None,
        "client_id": client_id,
        "account": account,
        "symbol": instrument.symbol if instrument is not None else request.symbol,
        "local_symbol": instrument.local_symbol if instrument is not None else "",
        "sec_type": str(instrument.sec_type) if instrument is not None else "",
        "exchange": instrument.exchange if instrument is not None else "",
        "currency": instrument.currency if instrument is not None else "",
        "con_id": (instrument.con_id or None) if instrument is not None else None,
        "action": str(request.side),
        "quantity": request.quantity,
        "order_type": str(request.order_type),
        "limit_price": _price(request.limit_price),
        "stop_price": _price(request.stop_price),
        "tif": str(request.tif),
        "reason": request.reason[:200],
        "strategy": strategy,
        "parent_client_order_id": request.parent_id,
        "oca_group": request.oca_group,
        "status": str(status),
        "filled": 0,
        "remaining": remaining,
        "avg_fill_price": None,
        "created_ts": ts,
        "updated_ts": ts,
        "created_at": now,
        "updated_at": now,
        "last_message": message,
    }


def _event_values(
    cid: str,
    ts: int,
    now: datetime,
    status: OrderStatus,
    filled: int,
    remaining: int,
    avg_fill_price: Decimal | None,
    message: str,
    source: str,
) -> dict[str, Any]:
    return {
        "client_order_id": cid,
        "ts": ts,
        "recorded_at": now,
        "status": str(status),
        "filled": filled,
        "remaining": remaining,
        "avg_fill_price": avg_fill_price,
        "message": message,
        "source": source,
    }


def _change_event(cid: str, change: OrderChange, now: datetime) -> dict[str, Any]:
    """The history row of `change` to order `cid`."""
    return _event_values(
        cid,
        change.ts,
        now,
        change.status,
        change.filled,
        change.remaining,
        change.avg_fill_price,
        change.message,
        change.source,
    )


def _write_change(conn: Connection, cid: str, change: OrderChange, now: datetime) -> Row[Any]:
    """The order row updated to `change` and one row of history, inside the caller's transaction."""
    values: dict[str, Any] = {
        "status": str(change.status),
        "filled": change.filled,
        "remaining": change.remaining,
        "avg_fill_price": change.avg_fill_price,
        "updated_ts": Greatest(_ORDERS.c.updated_ts, change.ts),
        "updated_at": now,
    }
    if change.message:
        values["last_message"] = change.message
    if change.quantity is not None:
        values["quantity"] = change.quantity
    if change.ib_order_id is not None:
        values["ib_order_id"] = change.ib_order_id
    if change.perm_id is not None:
        values["perm_id"] = change.perm_id
    if change.limit_price is not None:
        values["limit_price"] = _price(change.limit_price)
    if change.stop_price is not None:
        values["stop_price"] = _price(change.stop_price)
    stmt = update(_ORDERS).where(_ORDERS.c.client_order_id == cid).values(values).returning(*_ORDERS.c)
    row = conn.execute(stmt).one_or_none()
    if row is None:
        raise RecordsError(f"record_event: no order {cid!r} is recorded (recording {change.status})")
    conn.execute(
        _INSERT_EVENT,
        _change_event(cid, change, now),
    )
    return row


# --- the order intake's statements (built once; prepared on the driver connection of a SQLite file) ------

_INTAKE_CLAIM_COLUMNS = ("key", "source", "client_order_id", "claimed_ts", "claimed_at", "verdict")
_INTAKE_HELD = select(_INTAKE_KEYS.c.client_order_id).where(
    _INTAKE_KEYS.c.key == bindparam("key", type_=String())
)
_INTAKE_FINISH = (
    update(_INTAKE_KEYS)
    .where(_INTAKE_KEYS.c.key == bindparam("b_key", type_=String()))
    .values(verdict=bindparam("b_verdict", type_=String()))
)
_ORDER_STATUS = select(_ORDERS.c.status).where(_ORDERS.c.client_order_id == bindparam("cid", type_=String()))
_INTAKE_CLAIMS: dict[str, Any] = {}


def _claim_statement(dialect: str) -> Any:
    """The claim of an intake key for `dialect` (built once): ONE INSERT ... ON CONFLICT DO UPDATE that takes
    over only a claim `window_ns` or more older than the new one, RETURNING the key when it claimed it."""
    stmt = _INTAKE_CLAIMS.get(dialect)
    if stmt is None:
        insert_ = _upsert(dialect)(_INTAKE_KEYS)
        fresh = insert_.excluded
        stmt = insert_.on_conflict_do_update(
            index_elements=[_INTAKE_KEYS.c.key],
            set_={c: getattr(fresh, c) for c in _INTAKE_CLAIM_COLUMNS if c != "key"},
            where=_INTAKE_KEYS.c.claimed_ts <= fresh.claimed_ts - bindparam("window_ns", type_=BigInteger()),
        ).returning(_INTAKE_KEYS.c.key)
        _INTAKE_CLAIMS[dialect] = stmt
    return stmt


class _IntakeStatements:
    """The intake's statements compiled once for the driver connection (`OrderRecords._intake_driver`)."""

    __slots__ = ("claim", "finish", "held", "order_status")

    def __init__(self, dialect: Dialect) -> None:
        self.claim = _Prepared(_claim_statement(dialect.name), dialect, _INTAKE_CLAIM_COLUMNS)
        self.held = _Prepared(_INTAKE_HELD, dialect)
        self.finish = _Prepared(_INTAKE_FINISH, dialect)
        self.order_status = _Prepared(_ORDER_STATUS, dialect)


# --- the SQLite write-ahead on the driver's connection (the tick-to-order path) --------------------------


class _LastValue:
    """A bind processor that remembers its last input (by identity) and output: the write-ahead's rows share
    one record time, formatted once instead of once per column."""

    __slots__ = ("_in", "_out", "_process")

    def __init__(self, process: Callable[[Any], Any]) -> None:
        self._process = process
        self._in: Any = None
        self._out: Any = None

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        if value is not self._in:
            self._out = self._process(value)
            self._in = value
        return self._out


class _Prepared:
    """A Core statement compiled ONCE for the engine's dialect: its SQL, and how a dict of values becomes the
    driver's positional parameters (each bind's type processor, as Core applies it on every execute).

    `shared`: processors by type class, for types whose processor is worth sharing across statements
    (`_LastValue`: datetimes)."""

    __slots__ = ("_slots", "sql")

    def __init__(
        self,
        stmt: ClauseElement,
        dialect: Dialect,
        column_keys: Sequence[str] | None = None,
        shared: dict[type, Callable[[Any], Any]] | None = None,
    ) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        if not isinstance(compiled, SQLCompiler):
            raise RecordsError(f"cannot prepare {stmt}: not a SQL statement")
        if compiled.positiontup is None or compiled.literal_execute_params or compiled.post_compile_params:
            raise RecordsError(f"cannot prepare {compiled.string!r}: not a plain positional statement")
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            raise RecordsError(f"cannot prepare {compiled.string!r}: it needs Python-side column defaults")
        self.sql: str = compiled.string
        slots: list[tuple[str | None, Any, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            impl = bind.type.dialect_impl(dialect)
            process: Callable[[Any], Any] | None = impl.bind_processor(dialect)
            if process is not None and shared is not None and type(bind.type) in shared:
                process = shared[type(bind.type)]
            if bind.value is not None and bind.callable is None and not bind.required:  # the statement's own
                value = bind.effective_value
                slots.append((None, process(value) if process is not None else value, None))
            else:
                slots.append((name, None, process))
        self._slots = tuple(slots)

    def params(self, values: Mapping[str, Any]) -> list[Any]:
        """The driver parameters for `values` (KeyError when a bound column has no value: never a default)."""
        out: list[Any] = []
        append = out.append
        for name, constant, process in self._slots:
            if name is None:
                append(constant)
            elif process is None:
                append(values[name])
            else:
                append(process(values[name]))
        return out


def _insert_columns(table: Table) -> list[str]:
    """Every column of `table` but its autoincrement key, in the table's order."""
    return [c.key for c in table.c if c is not table.autoincrement_column]


class _SqliteWriteAhead:
    """`record_submission`'s transaction on one DBAPI connection of the records' engine, kept for the
    records' lifetime: the same SQL as the Core statements, a fraction of the per-statement cost.

    The connection comes from the engine's pool, so the engine's connect-time pragmas (WAL, the synchronous
    level, foreign keys, busy timeout) apply to it exactly as to every Core connection; it never runs an
    automatic checkpoint (wal_autocheckpoint=0 on this connection)."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        stamp = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
        shared: dict[type, Callable[[Any], Any]] = {DateTime: _LastValue(stamp)} if stamp is not None else {}
        self.reserve = _Prepared(_RESERVE, dialect)
        self.insert_order = _Prepared(_INSERT_ORDER, dialect, _insert_columns(_ORDERS), shared)
        self.insert_event = _Prepared(_INSERT_EVENT, dialect, _insert_columns(_EVENTS), shared)
        self.change = _Prepared(_CHANGE, dialect, shared=shared)
        self.insert_fill = _Prepared(_INSERT_FILL, dialect, _insert_columns(_FILLS), shared)
        self.fill_content = _Prepared(_FILL_CONTENT, dialect)
        self.insert_conflict = _Prepared(_INSERT_CONFLICT, dialect, _insert_columns(_CONFLICTS), shared)
        self.dbapi: Any = dialect.loaded_dbapi
        self.lock = threading.Lock()  # one transaction at a time on the one connection
        self._proxy: PoolProxiedConnection = engine.raw_connection()
        self.connection: Any = self._proxy.driver_connection
        if self.connection is None:
            raise RecordsError(f"the records database {engine.url!r} gave no driver connection")
        self.cursor: Any = self.connection.cursor()
        self.cursor.execute("PRAGMA wal_autocheckpoint=0")  # never a checkpoint inside the write-ahead

    @contextmanager
    def transaction(self) -> Iterator[_DriverTransaction]:
        """One transaction on the connection: committed when the block ends, rolled back on any error.
        Database errors are raised as SQLAlchemy wraps the driver's (a DBAPIError subclass naming the
        statement), as on the Core path."""
        dbapi, conn = self.dbapi, self.connection
        with self.lock:
            if conn.in_transaction:  # never expected: a failed rollback of an earlier call
                conn.rollback()
            tx = _DriverTransaction(self.cursor)
            try:
                self.cursor.execute("BEGIN")
                yield tx
                tx.sql, tx.params = "COMMIT", ()
                conn.commit()
            except dbapi.Error as exc:
                conn.rollback()
                raise DBAPIError.instance(tx.sql, tx.params, exc, dbapi.Error) from exc
            except BaseException:
                conn.rollback()
                raise

    def close(self) -> None:
        with self.lock:
            self.cursor.close()
            self._proxy.close()


class _DriverTransaction:
    """The statements of one transaction on the driver connection (`_SqliteWriteAhead.transaction`),
    remembering the one running so that a database error names it, as SQLAlchemy's do."""

    __slots__ = ("cursor", "params", "sql")

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.sql: str = "BEGIN"
        self.params: Any = ()

    def execute(self, sql: str, params: Any) -> Any:
        self.sql, self.params = sql, params
        return self.cursor.execute(sql, params)

    def executemany(self, sql: str, params: list[Any]) -> None:
        self.sql, self.params = sql, params
        self.cursor.executemany(sql, params)

    def change(self, driver: _SqliteWriteAhead, cid: str, change: OrderChange, now: datetime) -> None:
        """`_write_change` as two prepared statements: the order row updated, one row of history.
        RecordsError (the transaction is rolled back) when no such order is recorded."""
        values = {
            "p_cid": cid,
            "p_status": str(change.status),
            "p_filled": change.filled,
            "p_remaining": change.remaining,
            "p_avg_fill_price": change.avg_fill_price,
            "p_ts": change.ts,
            "p_now": now,
            "p_message": change.message or None,
            "p_quantity": change.quantity,
            "p_ib_order_id": change.ib_order_id,
            "p_perm_id": change.perm_id,
            "p_limit_price": _price(change.limit_price),
            "p_stop_price": _price(change.stop_price),
        }
        if self.execute(driver.change.sql, driver.change.params(values)).rowcount == 0:
            raise RecordsError(f"record_event: no order {cid!r} is recorded (recording {change.status})")
        self.execute(driver.insert_event.sql, driver.insert_event.params(_change_event(cid, change, now)))


class _Checkpointer:
    """Copies the WAL into a SQLite records file ("normal" sync) from a thread of its own, so that no commit
    of the trading loop ever runs a checkpoint (SQLite's automatic one runs inside the commit that crosses
    1000 WAL pages and flushes the database file: a pause of ~10 ms on the loop). Every connection has
    wal_autocheckpoint=0; this thread runs PRAGMA wal_checkpoint(PASSIVE) every `period` seconds, which never
    blocks a writer (the driver releases the GIL while SQLite works). Durability does not depend on it: a
    commit is in the WAL, which SQLite replays after any crash."""

    def __init__(self, engine: Engine, period: float = 0.5) -> None:
        self._engine = engine
        self._period = period
        self._stop = threading.Event()
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="ibot-records-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        dialect = self._engine.dialect
        try:  # a driver connection of its own (the records' one is the loop's)
            args, kwargs = dialect.create_connect_args(self._engine.url)
            conn = dialect.loaded_dbapi.connect(*args, **kwargs)
        except Exception as exc:  # the file is unusable: every write will say so on the loop
            log.warning("records: no checkpoint connection: %s", exc)
            return
        try:
            while not self._stop.wait(self._period):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except Exception as exc:  # busy or gone: the next period tries again
                    log.debug("records: checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# --- the repository -------------------------------------------------------------------------------------


class OrderRecords:
    """The orders, their events and executions, in one database; every write commits before returning."""

    def __init__(
        self,
        url: str | None = None,
        *,
        data_dir: Path | str | None = None,
        echo: bool = False,
        sync: str | None = None,
    ) -> None:
        self.url = url or default_url(data_dir if data_dir is not None else Path("data"))
        # SQLite's durability level (`records_sync`: "normal" by default, "full"); PostgreSQL commits are
        # flushed by the server's own settings (synchronous_commit).
        self.sync: RecordsSync = records_sync(sync)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.url.startswith("sqlite"):
            db_path = self.url.split("///", 1)[1] if "///" in self.url else ""
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_pre_ping"] = True
        parsed = make_url(self.url)
        database = parsed.database or ""
        sqlite_file = (
            parsed.get_backend_name() == "sqlite"
            and database not in ("", ":memory:")
            and "mode=memory" not in self.url
        )
        if sqlite_file:
            # ONE driver connection for everything the records do on the loop (the write-ahead, the writes
            # after the send, the queries): its page cache stays valid from one transaction to the next (a
            # write on another connection would make it read the pages again). The records are used from the
            # event loop's thread; every method ends its transaction before it returns.
            kwargs["poolclass"] = StaticPool
        self.engine: Engine = create_engine(self.url, **kwargs)
        # Checkpoints (copying the WAL into the database file) never run inside the write-ahead's commit. With
        # "normal" a thread of the records does them (`_Checkpointer`); with "full" every commit flushes the
        # disk already and a checkpoint's flushes alongside would slow the write-ahead's: SQLite's automatic
        # checkpoint runs in the commits of the writes after the send (record_change, record_fill...).
        threaded = sqlite_file and self.sync == "normal"
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas(self.sync, checkpointer=threaded))
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        # The write-ahead of an order about to be sent runs on a DBAPI connection of this engine (same SQL,
        # same pragmas, one COMMIT) for a SQLite file; PostgreSQL and in-memory SQLite take the Core path.
        # Private switch: tests force the Core path to compare what the two write.
        self._driver_write_ahead = sqlite_file
        self._driver: _SqliteWriteAhead | None = None
        self._intake_sql: _IntakeStatements | None = None  # the intake's statements on that connection
        self._driver_init = threading.Lock()
        self._checkpointer = _Checkpointer(self.engine) if threaded else None

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        with self._driver_init:
            if self._driver is not None:
                self._driver.close()
                self._driver = None
        self.engine.dispose()

    # Schema ---------------------------------------------------------------------------------------------
    def alembic_config(self) -> Any:
        """An Alembic Config for this database, built in code (no alembic.ini needed)."""
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def migrate(self, revision: str = "head") -> None:
        """Create or upgrade the schema to `revision` with the packaged Alembic migrations."""
        from alembic import command

        cfg = self.alembic_config()
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None for an empty database)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    # Writes ---------------------------------------------------------------------------------------------
    def record_submission(
        self,
        request: OrderRequest,
        *,
        ts: int,
        instrument: Instrument,
        broker_next_id: int,
        client_order_id: str | Callable[[int], str],
        client_id: int | None = None,
        account: str = "",
        strategy: str = "",
        message: str = "sent to broker",
        source: str = "oms",
    ) -> WriteAhead:
        """Write-ahead of an order about to be sent, ONE transaction: reserve its broker order id (as
        `reserve_order_id` does), record the order as PendingSubmit and its first events (Created,
        PendingSubmit).

        `client_order_id` is the id, or makes one from the reserved broker order id. A client order id already
        recorded raises DuplicateOrderError: nothing is written and no broker order id is used up.
        """
        # Durability: the caller sends the order only after this returns, and it returns only after COMMIT,
        # which on SQLite returns once the transaction is in the WAL file (records_sync "normal": in the OS
        # page cache, safe from any crash of this process; "full": fsynced, safe from power loss too), on
        # PostgreSQL once the server has committed it. So a crash or kill -9 (and with "full" or PostgreSQL a
        # power loss) never loses an order that reached the broker: it is in the records with the broker order
        # id it carries, for reconciliation to find. An order recorded here but never sent is closed
        # (Inactive) by the reconciliation after the restart, never sent again.
        now = _wall_now()
        cid = client_order_id if isinstance(client_order_id, str) else ""
        remaining = request.quantity

        def rows(order_id: int) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
            """The client order id, the order row and its two events, once the broker order id is known."""
            the_cid = cid or (client_order_id(order_id) if callable(client_order_id) else "")
            if not the_cid:
                what = f"{request.side} {request.quantity} {request.symbol}"
                raise RecordsError(f"record_submission: order {what} has no id")
            order = _order_values(
                request,
                the_cid,
                ts=ts,
                now=now,
                instrument=instrument,
                ib_order_id=order_id,
                client_id=client_id,
                account=account,
                strategy=strategy,
                status=OrderStatus.PENDING_SUBMIT,
                remaining=remaining,
                message=message,
            )
            created = _event_values(the_cid, ts, now, OrderStatus.CREATED, 0, remaining, None, "", source)
            pending = _event_values(
                the_cid, ts, now, OrderStatus.PENDING_SUBMIT, 0, remaining, None, message, source
            )
            return the_cid, order, [created, pending]

        driver = self._driver_connection()
        if driver is not None:
            ahead = self._write_ahead_on_driver(driver, broker_next_id, cid, rows)
            if ahead is not None:
                return ahead
            # No counter row (a database made without the migration): the Core path below creates it.
        try:
            with self.engine.begin() as conn:
                order_id = conn.execute(_RESERVE, {"broker_next_id": broker_next_id}).scalar_one_or_none()
                if order_id is None:
                    order_id = _create_counter(conn, broker_next_id)
                cid, order, events = rows(int(order_id))
                conn.execute(_INSERT_ORDER, order)
                conn.execute(_INSERT_EVENT, events)
        except IntegrityError as exc:
            raise self._refused(cid, exc.orig) from None
        return WriteAhead(int(order_id), cid)

    def record_combo_submission(
        self,
        legs: Sequence[tuple[OrderRequest, Instrument]],
        *,
        ts: int,
        broker_next_id: int,
        client_id: int | None = None,
        account: str = "",
        strategy: str = "",
        message: str = "sent to broker (combo)",
        source: str = "oms",
    ) -> int:
        """Write-ahead of a combo (BAG) about to be sent, ONE transaction: reserve ONE broker order id and
        record every leg as its own order (the leg's client order id is its request's) carrying that id, as
        PendingSubmit with its first events. Returns the broker order id. A leg id already recorded raises
        DuplicateOrderError: nothing is written."""
        now = _wall_now()
        cids = [request.client_order_id for request, _ in legs]
        if not all(cids) or len(set(cids)) != len(cids):
            raise RecordsError(
                f"record_combo_submission: every leg needs its own client order id, got {cids}"
            )
        try:
            with self.engine.begin() as conn:
                order_id = conn.execute(_RESERVE, {"broker_next_id": broker_next_id}).scalar_one_or_none()
                if order_id is None:
                    order_id = _create_counter(conn, broker_next_id)
                for request, instrument in legs:
                    cid, qty = request.client_order_id, request.quantity
                    values = _order_values(
                        request,
                        cid,
                        ts=ts,
                        now=now,
                        instrument=instrument,
                        ib_order_id=int(order_id),
                        client_id=client_id,
                        account=account,
                        strategy=strategy,
                        status=OrderStatus.PENDING_SUBMIT,
                        remaining=qty,
                        message=message,
                    )
                    conn.execute(_INSERT_ORDER, values)
                    conn.execute(
                        _INSERT_EVENT,
                        [
                            _event_values(cid, ts, now, OrderStatus.CREATED, 0, qty, None, "", source),
                            _event_values(
                                cid, ts, now, OrderStatus.PENDING_SUBMIT, 0, qty, None, message, source
                            ),
                        ],
                    )
        except IntegrityError as exc:
            raise self._refused(cids[0], exc.orig) from None
        return int(order_id)

    def _driver_connection(self) -> _SqliteWriteAhead | None:
        """The write-ahead's own DBAPI connection (opened on first use), or None on the Core path."""
        if self._driver is None and self._driver_write_ahead:
            with self._driver_init:
                if self._driver is None:
                    self._driver = _SqliteWriteAhead(self.engine)
        return self._driver

    def _write_ahead_on_driver(
        self,
        driver: _SqliteWriteAhead,
        broker_next_id: int,
        cid: str,
        rows: Callable[[int], tuple[str, dict[str, Any], list[dict[str, Any]]]],
    ) -> WriteAhead | None:
        """`record_submission`'s transaction on the driver's connection; None (nothing written) when there is
        no counter row. Errors are those of the Core path: a refused id raises DuplicateOrderError (or
        RecordsError), other database errors SQLAlchemy's wrapping of the driver's."""
        try:
            with driver.transaction() as tx:
                reserve = driver.reserve.params({"broker_next_id": broker_next_id})
                reserved = tx.execute(driver.reserve.sql, reserve).fetchall()
                if not reserved:  # no counter row: nothing was written
                    return None
                order_id = int(reserved[0][0])
                cid, order, events = rows(order_id)
                tx.execute(driver.insert_order.sql, driver.insert_order.params(order))
                tx.executemany(driver.insert_event.sql, [driver.insert_event.params(e) for e in events])
        except IntegrityError as exc:
            raise self._refused(cid, exc.orig) from None
        return WriteAhead(order_id, cid)

    def record_new(
        self,
        request: OrderRequest,
        *,
        ts: int,
        instrument: Instrument | None = None,
        client_order_id: str | None = None,
        ib_order_id: int | None = None,
        client_id: int | None = None,
        account: str = "",
        strategy: str = "",
        status: OrderStatus = OrderStatus.CREATED,
        message: str = "",
        source: str = "oms",
    ) -> OrderRecord:
        """Record an order and its first event (committed on return); duplicate ids are refused.

        The OMS writes an order it is about to send with `record_submission`, one not sent (a risk refusal)
        with this."""
        cid = client_order_id or request.client_order_id
        if not cid:
            raise RecordsError(
                f"record_new: order {request.side} {request.quantity} {request.symbol} has no id"
            )
        now = _wall_now()
        remaining = request.quantity if status is not OrderStatus.REJECTED else 0
        values = _order_values(
            request,
            cid,
            ts=ts,
            now=now,
            instrument=instrument,
            ib_order_id=ib_order_id,
            client_id=client_id,
            account=account,
            strategy=strategy,
            status=status,
            remaining=remaining,
            message=message,
        )
        try:
            with self.engine.begin() as conn:
                row = conn.execute(_INSERT_ORDER.returning(*_ORDERS.c), values).one()
                conn.execute(
                    _INSERT_EVENT, _event_values(cid, ts, now, status, 0, remaining, None, message, source)
                )
        except IntegrityError as exc:
            raise self._refused(cid, exc.orig) from None
        return _order_record(row)

    def _refused(self, cid: str, reason: object) -> RecordsError:
        """Why the database refused an order (`reason`: the driver's integrity error): its client order id is
        taken, or (rarely) something else."""
        if cid and self.get_order(cid) is not None:
            return DuplicateOrderError(f"order {cid!r} is already recorded")
        return RecordsError(f"order {cid!r}: the records database refused it: {reason}")

    def record_event(
        self,
        client_order_id: str,
        *,
        status: OrderStatus,
        filled: int,
        remaining: int,
        avg_fill_price: Decimal | None,
        ts: int,
        message: str = "",
        source: str = "broker",
        quantity: int | None = None,
        ib_order_id: int | None = None,
        perm_id: int | None = None,
        limit_price: float | Decimal | None = None,
        stop_price: float | Decimal | None = None,
    ) -> OrderRecord:
        """Record a change of an order: its current state on the order row and one row of history.

        `quantity`, `limit_price`, `stop_price` record a modify; None leaves them as they are."""
        change = OrderChange(
            status,
            filled,
            remaining,
            avg_fill_price,
            ts,
            message,
            source,
            quantity,
            ib_order_id,
            perm_id,
            limit_price,
            stop_price,
        )
        return self.record_change(client_order_id, change)

    def record_change(self, client_order_id: str, change: OrderChange) -> OrderRecord:
        """`record_event` with the change as one value: the order row and one row of history, one commit."""
        now = _wall_now()
        with self.engine.begin() as conn:
            row = _write_change(conn, client_order_id, change, now)
        return _order_record(row)

    def write_change(self, client_order_id: str, change: OrderChange) -> None:
        """`record_change` without reading the order back (what the order manager records after the send):
        on a SQLite file two prepared statements on the driver connection, a fraction of Core's cost on the
        loop. RecordsError when no such order is recorded (nothing written)."""
        now = _wall_now()
        driver = self._driver_connection()
        if driver is None:
            with self.engine.begin() as conn:
                _write_change(conn, client_order_id, change, now)
            return
        with driver.transaction() as tx:
            tx.change(driver, client_order_id, change, now)

    def record_fill(
        self,
        client_order_id: str,
        *,
        exec_id: str,
        ts: int,
        side: Side,
        quantity: int,
        price: float | Decimal,
        symbol: str,
        currency: str = "",
        account: str = "",
        ib_order_id: int | None = None,
        commission: float | Decimal | None = None,
        realized_pnl: float | Decimal | None = None,
        change: OrderChange | None = None,
        source: str = "broker",
    ) -> bool:
        """Record an execution once by its exec id; True when recorded now.

        An exec id already recorded with the same content (order, side, quantity, price, time) is a redelivery
        (IB re-sends executions after a reconnect): False, nothing written. Recorded with different content,
        it is an integrity error: the new execution is kept aside in `fill_conflicts` (committed; `change` is
        not written, the recorded fill is untouched) and FillConflictError says what differed.

        `change`, the order's state after this execution, is recorded in the same transaction (one commit)."""
        px = _price(price)
        assert px is not None
        now = _wall_now()
        fee, final = _commission_update(None, False, broker_amount(commission), exec_id)
        values = {
            "exec_id": exec_id,
            "client_order_id": client_order_id,
            "ib_order_id": ib_order_id,
            "account": account,
            "symbol": symbol,
            "side": str(side),
            "quantity": quantity,
            "price": px,
            "ts": ts,
            "recorded_at": now,
            "commission": fee,
            "commission_final": final,
            "realized_pnl": broker_amount(realized_pnl),
            "currency": currency,
        }
        differences: list[str] = []
        driver = self._driver_connection()
        if driver is not None:  # on a SQLite file: prepared statements on the driver connection (the loop)
            with driver.transaction() as tx:
                params = driver.fill_content.params({"p_exec_id": exec_id})
                found = tx.execute(driver.fill_content.sql, params).fetchone()
                if found is not None:
                    differences = fill_differences(found, values)
                    if not differences:
                        return False
                    aside = _conflict_values(values, differences, source)
                    tx.execute(driver.insert_conflict.sql, driver.insert_conflict.params(aside))
                else:
                    tx.execute(driver.insert_fill.sql, driver.insert_fill.params(values))
                    if change is not None:
                        tx.change(driver, client_order_id, change, now)
        else:
            with self.engine.begin() as conn:
                found = conn.execute(_FILL_CONTENT, {"p_exec_id": exec_id}).first()
                if found is not None:
                    differences = fill_differences(found, values)
                    if not differences:
                        return False
                    conn.execute(_INSERT_CONFLICT, _conflict_values(values, differences, source))
                else:
                    conn.execute(_INSERT_FILL, values)
                    if change is not None:
                        _write_change(conn, client_order_id, change, now)
        if differences:
            raise FillConflictError(exec_id, differences)
        return True

    def record_fill_conflict(
        self,
        client_order_id: str,
        *,
        exec_id: str,
        ts: int,
        side: Side,
        quantity: int,
        price: float | Decimal,
        symbol: str,
        differences: Sequence[str],
        currency: str = "",
        account: str = "",
        ib_order_id: int | None = None,
        commission: float | Decimal | None = None,
        source: str = "broker",
    ) -> None:
        """Keep an execution aside in `fill_conflicts` (what the order manager does when it finds the conflict
        before the records do: the exec id counted on an order in memory with other content)."""
        px = _price(price)
        assert px is not None
        values = {
            "exec_id": exec_id,
            "client_order_id": client_order_id,
            "ib_order_id": ib_order_id,
            "account": account,
            "symbol": symbol,
            "side": str(side),
            "quantity": quantity,
            "price": px,
            "ts": ts,
            "recorded_at": _wall_now(),
            "commission": broker_amount(commission),
            "realized_pnl": None,
            "currency": currency,
        }
        with self.engine.begin() as conn:
            conn.execute(_INSERT_CONFLICT, _conflict_values(values, differences, source))

    def conflict_commission(
        self,
        exec_id: str,
        commission: float | Decimal | None,
        *,
        currency: str | None = None,
        realized_pnl: float | Decimal | None = None,
    ) -> bool:
        """A commission report of an execution kept aside: attached to its newest `fill_conflicts` row (never
        to the recorded fill with that exec id, which belongs to another execution). False when none."""
        values: dict[str, Any] = {}
        if (amount := broker_amount(commission)) is not None:
            values["commission"] = amount
        if (pnl := broker_amount(realized_pnl)) is not None:
            values["realized_pnl"] = pnl
        if currency:
            values["currency"] = currency
        with self.engine.begin() as conn:
            newest = conn.execute(
                select(func.max(_CONFLICTS.c.id)).where(_CONFLICTS.c.exec_id == exec_id)
            ).scalar_one_or_none()
            if newest is None:
                return False
            if values:
                conn.execute(update(_CONFLICTS).where(_CONFLICTS.c.id == newest).values(values))
        return True

    def record_commission(
        self,
        exec_id: str,
        commission: float | Decimal | None,
        *,
        currency: str | None = None,
        realized_pnl: float | Decimal | None = None,
    ) -> FillRecord | None:
        """Attach a (possibly late) commission report to its execution; None when the exec id is not recorded.

        An unset amount changes nothing; a zero is provisional; a real amount is final and replaces a zero.
        A report that changes nothing writes nothing.
        """
        changed = self.commission_change(exec_id, commission, currency=currency, realized_pnl=realized_pnl)
        return None if changed is None else changed[1]

    def commission_change(
        self,
        exec_id: str,
        commission: float | Decimal | None,
        *,
        currency: str | None = None,
        realized_pnl: float | Decimal | None = None,
    ) -> tuple[Decimal | None, FillRecord] | None:
        """`record_commission`, also returning the fill's commission before the report (one transaction: what
        the order manager needs to count the difference, without reading the fill first)."""
        amount = broker_amount(commission)
        pnl = broker_amount(realized_pnl)
        with self.engine.begin() as conn:
            row = conn.execute(select(_FILLS).where(_FILLS.c.exec_id == exec_id)).one_or_none()
            if row is None:
                return None
            before = row.commission
            values: dict[str, Any] = {}
            fee, final = _commission_update(row.commission, row.commission_final, amount, exec_id)
            if fee != row.commission or final != row.commission_final:
                values["commission"] = fee
                values["commission_final"] = final
            if pnl is not None and pnl != row.realized_pnl:
                values["realized_pnl"] = pnl
            if currency and currency != row.currency:
                values["currency"] = currency
            if values:
                stmt = update(_FILLS).where(_FILLS.c.id == row.id).values(values).returning(*_FILLS.c)
                row = conn.execute(stmt).one()
        return before, _fill_record(row)

    def reserve_order_id(self, broker_next_id: int) -> int:
        """The broker order id to use now: max(broker's next valid id, highest id ever used + 1), persisted.

        IB's nextValidId can go backwards after a gateway restart (error 103, duplicate order id), so the
        highest id ever used is kept here and an id is never handed out twice. One UPDATE of the counter row
        computes and stores it (the row lock serializes processes sharing the database).
        """
        with self.engine.begin() as conn:
            order_id = conn.execute(_RESERVE, {"broker_next_id": broker_next_id}).scalar_one_or_none()
            if order_id is None:
                order_id = _create_counter(conn, broker_next_id)
        return int(order_id)

    def last_order_id(self) -> int:
        """The highest broker order id ever reserved or recorded (0 when none)."""
        with self._session() as s:
            counter = s.scalars(select(CounterRow.value).where(CounterRow.name == ORDER_ID_COUNTER)).first()
            used = s.scalar(select(func.max(OrderRow.ib_order_id)))
        return max(counter or 0, used or 0)

    # Idempotency keys of the order intake ----------------------------------------------------------------
    def _intake_driver(self) -> tuple[_SqliteWriteAhead, _IntakeStatements] | None:
        """The driver connection and the intake's statements prepared for it, or None on the Core path."""
        driver = self._driver_connection()
        if driver is None:
            return None
        if self._intake_sql is None:
            self._intake_sql = _IntakeStatements(self.engine.dialect)
        return driver, self._intake_sql

    def claim_intake_key(
        self, key: str, source: str, client_order_id: str, ts_ns: int, window_ns: int
    ) -> str | None:
        """Claim `key` for `client_order_id` at market time `ts_ns`: None when this call claimed it (a new
        key, or one whose claim is `window_ns` or more older than `ts_ns`), else the client order id of the
        claim that holds it within the window.

        Atomic on SQLite and PostgreSQL: ONE INSERT ... ON CONFLICT DO UPDATE (taking over only an expired
        claim) on the primary key, never a read then a write, so of two concurrent claims (threads,
        processes) exactly one wins. A claim time after `ts_ns` (the market clock of a new simulator run)
        holds the key. The statements are built once (prepared on the driver connection of a SQLite file)."""
        values = {
            "key": key,
            "source": source[:32],
            "client_order_id": client_order_id,
            "claimed_ts": ts_ns,
            "claimed_at": _wall_now(),
            "verdict": "",
            "window_ns": window_ns,
        }
        on_driver = self._intake_driver()
        if on_driver is not None:
            driver, sql = on_driver
            claim, held = sql.claim.params(values), sql.held.params(values)
            with driver.transaction() as tx:
                for _ in range(3):  # a claim released between the two statements: claim again
                    if tx.execute(sql.claim.sql, claim).fetchall():
                        return None
                    rows = tx.execute(sql.held.sql, held).fetchall()
                    if rows:
                        return str(rows[0][0])
        else:
            with self.engine.begin() as conn:
                for _ in range(3):
                    if conn.execute(_claim_statement(conn.dialect.name), values).first() is not None:
                        return None
                    held_cid = conn.execute(_INTAKE_HELD, values).scalar_one_or_none()
                    if held_cid is not None:
                        return str(held_cid)
        raise RecordsError(f"intake key {key!r} could not be claimed: it was released three times meanwhile")

    def finish_intake_key(self, key: str, verdict: str) -> None:
        """Say what the ticket of a claimed key became (what the intake decided); the claim stays."""
        values = {"b_key": key, "b_verdict": verdict[:16]}
        on_driver = self._intake_driver()
        if on_driver is not None:
            driver, sql = on_driver
            with driver.transaction() as tx:
                tx.execute(sql.finish.sql, sql.finish.params(values))
            return
        with self.engine.begin() as conn:
            conn.execute(_INTAKE_FINISH, values)

    def release_intake_key(self, key: str) -> None:
        """Forget a claim whose ticket placed nothing (the session was not ready): a retry may claim it."""
        with self.engine.begin() as conn:
            conn.execute(delete(_INTAKE_KEYS).where(_INTAKE_KEYS.c.key == key))

    def intake_key(self, key: str) -> IntakeKeyRecord | None:
        """The claim of `key`, expired or not; None when it was never claimed (or released)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_INTAKE_KEYS).where(_INTAKE_KEYS.c.key == key)).one_or_none()
        return None if row is None else _intake_key_record(row)

    def intake_keys(self, since_ts: int) -> list[IntakeKeyRecord]:
        """The claims made after market time `since_ts` (ns), oldest first (the intake's restart looks at the
        claims still within its window)."""
        q = select(_INTAKE_KEYS).where(_INTAKE_KEYS.c.claimed_ts > since_ts)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(_INTAKE_KEYS.c.claimed_ts, _INTAKE_KEYS.c.key)).all()
        return [_intake_key_record(row) for row in rows]

    def prepared(self, stmt: ClauseElement, column_keys: Sequence[str] | None = None) -> _Prepared | None:
        """`stmt` compiled once for the driver connection of a SQLite file, to run in `driver_transaction`
        (the door's alert writes use it as the intake's do); None on the Core path (PostgreSQL, in-memory)."""
        if self._driver_connection() is None:
            return None
        return _Prepared(stmt, self.engine.dialect, column_keys)

    @contextmanager
    def driver_transaction(self) -> Iterator[_DriverTransaction]:
        """One transaction on the driver connection (committed when the block ends, rolled back on any
        error); RecordsError on the Core path (`prepared` gave None there)."""
        driver = self._driver_connection()
        if driver is None:
            raise RecordsError(f"the records database {self.url!r} has no driver connection")
        with driver.transaction() as tx:
            yield tx

    def order_status(self, client_order_id: str) -> str | None:
        """The recorded status of the order `client_order_id` ("Filled", "Rejected"...), or None when no order
        has that id: `get_order`'s answer to "is it recorded?" without building the record (the intake asks
        it of every ticket)."""
        values = {"cid": client_order_id}
        on_driver = self._intake_driver()
        if on_driver is not None:
            driver, sql = on_driver
            with driver.transaction() as tx:
                rows = tx.execute(sql.order_status.sql, sql.order_status.params(values)).fetchall()
            return str(rows[0][0]) if rows else None
        with self.engine.connect() as conn:
            status = conn.execute(_ORDER_STATUS, values).scalar_one_or_none()
        return None if status is None else str(status)

    # Queries --------------------------------------------------------------------------------------------
    def get_order(self, client_order_id: str) -> OrderRecord | None:
        with self._session() as s:
            row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == client_order_id)).one_or_none()
            return None if row is None else _order_record(row)

    def find_order(
        self, *, ib_order_id: int | None = None, perm_id: int | None = None, client_id: int | None = None
    ) -> OrderRecord | None:
        """The order with this permanent id, else the newest with this broker order id (of `client_id`: IB's
        order ids are per client session)."""
        with self._session() as s:
            if perm_id:
                row = s.scalars(select(OrderRow).where(OrderRow.perm_id == perm_id)).first()
                if row is not None:
                    return _order_record(row)
            if ib_order_id is not None:
                q = select(OrderRow).where(OrderRow.ib_order_id == ib_order_id)
                if client_id is not None:
                    q = q.where(OrderRow.client_id == client_id)
                row = s.scalars(q.order_by(OrderRow.id.desc())).first()
                if row is not None:
                    return _order_record(row)
        return None

    def orders(
        self,
        *,
        status: OrderStatus | Iterable[OrderStatus] | None = None,
        day: date | None = None,
        symbol: str | None = None,
    ) -> list[OrderRecord]:
        """Orders, oldest first, by status(es), creation day (UTC, event time) and symbol or local symbol."""
        q = select(OrderRow).order_by(OrderRow.id)
        if status is not None:
            wanted = [str(status)] if isinstance(status, OrderStatus) else [str(x) for x in status]
            q = q.where(OrderRow.status.in_(wanted))
        if day is not None:
            start = int(datetime.combine(day, time(0), tzinfo=UTC).timestamp()) * 1_000_000_000
            end = start + int(timedelta(days=1).total_seconds()) * 1_000_000_000
            q = q.where(OrderRow.created_ts >= start, OrderRow.created_ts < end)
        if symbol is not None:
            q = q.where((OrderRow.symbol == symbol) | (OrderRow.local_symbol == symbol))
        with self._session() as s:
            return [_order_record(r) for r in s.scalars(q)]

    def open_orders(self) -> list[OrderRecord]:
        """Orders not in a final state (Created, PendingSubmit, PreSubmitted, Submitted, PendingCancel)."""
        return self.orders(status=[st for st in OrderStatus if st not in FINAL])

    def events(self, client_order_id: str) -> list[OrderEventRecord]:
        """The complete history of one order, in recording order."""
        q = (
            select(OrderEventRow)
            .where(OrderEventRow.client_order_id == client_order_id)
            .order_by(OrderEventRow.id)
        )
        with self._session() as s:
            return [_event_record(r) for r in s.scalars(q)]

    def fills(self, client_order_id: str) -> list[FillRecord]:
        """Executions of one order, in execution time order."""
        q = select(FillRow).where(FillRow.client_order_id == client_order_id).order_by(FillRow.ts, FillRow.id)
        with self._session() as s:
            return [_fill_record(r) for r in s.scalars(q)]

    def fill(self, exec_id: str) -> FillRecord | None:
        with self._session() as s:
            row = s.scalars(select(FillRow).where(FillRow.exec_id == exec_id)).one_or_none()
            return None if row is None else _fill_record(row)

    def executions(self, since_ts: int | None = None) -> list[FillRecord]:
        """Every recorded execution (at or after `since_ts`), oldest first: what reconciliation compares."""
        q = select(FillRow).order_by(FillRow.ts, FillRow.id)
        if since_ts is not None:
            q = q.where(FillRow.ts >= since_ts)
        with self._session() as s:
            return [_fill_record(r) for r in s.scalars(q)]

    def fills_missing_commission(self) -> list[FillRecord]:
        """Executions whose commission is not final yet (none reported, or only a provisional zero)."""
        q = select(FillRow).where(FillRow.commission_final.is_(False)).order_by(FillRow.ts, FillRow.id)
        with self._session() as s:
            return [_fill_record(r) for r in s.scalars(q)]

    def fill_conflicts(self, exec_id: str | None = None) -> list[FillConflictRecord]:
        """Executions kept aside (integrity errors: an exec id recorded with other content), oldest first."""
        q = select(FillConflictRow).order_by(FillConflictRow.id)
        if exec_id is not None:
            q = q.where(FillConflictRow.exec_id == exec_id)
        with self._session() as s:
            return [_conflict_record(r) for r in s.scalars(q)]

    def positions(self) -> dict[str, int]:
        """The position every recorded fill adds up to, across all runs, by instrument key (the fills'
        symbol); instruments whose fills net to zero included: what a restart compares with the broker's."""
        signed = func.sum(case((FillRow.side == str(Side.BUY), FillRow.quantity), else_=-FillRow.quantity))
        q = select(FillRow.symbol, signed).group_by(FillRow.symbol).order_by(FillRow.symbol)
        with self._session() as s:
            return {symbol: int(total or 0) for symbol, total in s.execute(q)}

    def sent_orders(self) -> int:
        """How many recorded orders carry a broker order id (were sent, or about to be, to a broker)."""
        with self._session() as s:
            return int(s.scalar(select(func.count()).where(OrderRow.ib_order_id.is_not(None))) or 0)


def _commission_update(
    commission: Decimal | None, final: bool, amount: Decimal | None, exec_id: str
) -> tuple[Decimal | None, bool]:
    """A fill's (commission, final) after a report of `amount`: unset keeps waiting (never a placeholder), a
    zero is provisional (an early empty report; a real one may follow), a real amount is final."""
    if amount is None:
        return commission, final
    if amount == 0:
        return (Decimal(0) if commission is None else commission), final
    if final and commission != amount:
        log.warning("fill %s: commission corrected from %s to %s", exec_id, commission, amount)
    return amount, True

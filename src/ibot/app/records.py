"""Record queries: the orders, fills and P&L a records database holds (all of it, or one run's orders), and
the executions kept aside as conflicts. Plain synchronous functions (database reads only); they print
nothing and return typed results whose `to_dict()` is the `--json` payload.

P&L is exact (Decimal): the cash flows of the fills (price x quantity x multiplier) minus commissions, plus
any open position marked at its last fill price; `ib_realized` is what IB's commission reports said."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ibot.data.bars import format_time
from ibot.model import catalog
from ibot.model.market import ns_to_datetime

if TYPE_CHECKING:
    from ibot.model.instruments import Instrument
    from ibot.oms.records import FillConflictRecord, FillRecord, OrderRecord, OrderRecords

__all__ = [
    "ConflictLine",
    "FillLine",
    "OrderLine",
    "OrdersSummary",
    "list_orders",
    "orders_summary",
    "records_url",
]


@dataclass(frozen=True, slots=True)
class _Line:
    """A row of the records as people read it; `to_dict()` is its `--json` object and its table row."""

    def to_dict(self) -> dict[str, Any]:
        """Keyed by field name, in field order (the `--json` keys and the table columns)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class OrderLine(_Line):
    """One order record as people read it: times in UTC, the instrument key, limit (or stop) price."""

    created: str
    client_order_id: str
    ib_id: int | None
    strategy: str
    symbol: str
    side: str
    qty: int
    type: str
    price: Decimal | None
    reason: str
    status: str
    filled: int
    avg_price: Decimal | None

    @classmethod
    def of(cls, o: OrderRecord) -> OrderLine:
        return cls(
            created=format_time(o.created_ts) if o.created_ts else "",
            client_order_id=o.client_order_id,
            ib_id=o.ib_order_id,
            strategy=o.strategy,
            symbol=o.key,
            side=str(o.side),
            qty=o.quantity,
            type=o.order_type,
            price=o.limit_price if o.limit_price is not None else o.stop_price,
            reason=o.reason,
            status=str(o.status),
            filled=o.filled,
            avg_price=o.avg_fill_price,
        )


@dataclass(frozen=True, slots=True)
class _ExecutionLine(_Line):
    """The columns a recorded fill and an execution kept aside share, first and in this order."""

    time: str
    exec_id: str
    client_order_id: str
    symbol: str
    side: str
    qty: int
    price: Decimal


def _execution(r: FillRecord | FillConflictRecord) -> tuple[str, str, str, str, str, int, Decimal]:
    """An execution's shared columns (`_ExecutionLine`'s fields, in order): UTC time, ids, what, at what."""
    return format_time(r.ts), r.exec_id, r.client_order_id, r.symbol, str(r.side), r.quantity, r.price


@dataclass(frozen=True, slots=True)
class FillLine(_ExecutionLine):
    """One recorded execution: UTC time, exec id, the order it belongs to, price, commission."""

    commission: Decimal | None
    realized_pnl: Decimal | None

    @classmethod
    def of(cls, f: FillRecord) -> FillLine:
        return cls(*_execution(f), commission=f.commission, realized_pnl=f.realized_pnl)


@dataclass(frozen=True, slots=True)
class ConflictLine(_ExecutionLine):
    """An execution kept aside: its exec id was recorded before with other content (never merged)."""

    differences: str

    @classmethod
    def of(cls, c: FillConflictRecord) -> ConflictLine:
        return cls(*_execution(c), differences=c.differences)


@dataclass(frozen=True, slots=True)
class OrdersSummary:
    """Orders (oldest first), fills (by time), open positions, exact P&L; `fill_conflicts` is None when the
    query did not ask for them (a run's own summary), else the executions kept aside."""

    orders: tuple[OrderLine, ...]
    fills: tuple[FillLine, ...]
    positions: dict[str, int]
    gross_pnl: Decimal
    commissions: Decimal
    net_pnl: Decimal
    ib_realized: Decimal
    fill_conflicts: tuple[ConflictLine, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "orders": [o.to_dict() for o in self.orders],
            "fills": [f.to_dict() for f in self.fills],
            "positions": dict(self.positions),
            "gross_pnl": self.gross_pnl,
            "commissions": self.commissions,
            "net_pnl": self.net_pnl,
            "ib_realized": self.ib_realized,
        }
        if self.fill_conflicts is not None:
            out["fill_conflicts"] = [c.to_dict() for c in self.fill_conflicts]
        return out


def records_url(db: str | None, create: bool = True) -> str:
    """The records database: `db` checked (a URL of a known back end), else the SQLite file in the data
    directory. `create=False` (a reading command): a missing SQLite file is an error. Creates nothing."""
    from ibot.oms.database import records_url as checked_url

    return checked_url(db, create=create)


def orders_summary(records: OrderRecords, only: Iterable[str] | None = None) -> OrdersSummary:
    """Orders, fills and P&L as `records` holds them (`only`: just these client order ids and their fills)."""
    wanted = None if only is None else set(only)
    orders = [o for o in records.orders() if wanted is None or o.client_order_id in wanted]
    ids = {o.client_order_id for o in orders}
    fills = [f for f in records.executions() if wanted is None or f.client_order_id in ids]
    fills.sort(key=lambda f: (f.ts, f.exec_id))
    cache: dict[str, Instrument] = {}
    cash = Decimal(0)
    fees = Decimal(0)
    ib_realized = Decimal(0)
    position: dict[str, int] = {}
    last: dict[str, Decimal] = {}
    for f in fills:
        inst = cache.get(f.symbol)
        if inst is None:
            inst = cache[f.symbol] = catalog.resolve(f.symbol, ns_to_datetime(f.ts).date())
        sign = f.side.sign
        cash -= sign * f.quantity * f.price * inst.multiplier
        fees += f.commission or Decimal(0)
        ib_realized += f.realized_pnl or Decimal(0)
        position[f.symbol] = position.get(f.symbol, 0) + sign * f.quantity
        last[f.symbol] = f.price
    marked = sum((q * last[k] * cache[k].multiplier for k, q in position.items() if q), Decimal(0))
    return OrdersSummary(
        orders=tuple(OrderLine.of(o) for o in orders),
        fills=tuple(FillLine.of(f) for f in fills),
        positions={k: q for k, q in position.items() if q},
        gross_pnl=cash + marked,
        commissions=fees,
        net_pnl=cash + marked - fees,
        ib_realized=ib_realized,
    )


def list_orders(db: str | None = None) -> OrdersSummary:
    """Every order record and fill of the records database, the P&L they add up to, and the executions
    kept aside. Reads only: a missing SQLite file or database is an error, and nothing is created."""
    from dataclasses import replace

    from ibot.oms.database import open_records

    records = open_records(records_url(db, create=False), create=False)
    try:
        summary = orders_summary(records)
        return replace(summary, fill_conflicts=tuple(ConflictLine.of(c) for c in records.fill_conflicts()))
    finally:
        records.close()

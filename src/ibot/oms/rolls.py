"""Roll bookkeeping: the roll decision (`rolls` table, migration 0005) and the client order ids of its orders.

A roll is ONE decision: a row written before its first order, and every order of the roll carries a client
order id made from the roll id, so the records show which orders belong to which roll and a restart finds
them again (the OMS never sends a client order id twice):

- the calendar-spread combo: one IB order (orderRef `<roll>.bag`) recorded as one order per leg,
  `<roll>.bag.<conId>`, all with the combo's IB order id (`OrderRecords.record_combo_submission`);
- the fallback legs: `<roll>.close` (the old month) and `<roll>.open` (the new month);
- working orders of the old month placed again on the new one: `<roll>.re<n>`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update

from ibot.model.instruments import Instrument
from ibot.model.orders import OrderRequest, OrderType, Side, TimeInForce
from ibot.oms.records import Base, OrderRecords, _wall_now

__all__ = [
    "COMBO_SUFFIX",
    "BrokerCombo",
    "MovedOrder",
    "RollBook",
    "RollRecord",
    "RollState",
    "combo_leg_id",
    "combo_ref",
    "leg_of_combo",
    "new_roll_id",
]

COMBO_SUFFIX = ".bag"
_ROLLS = Base.metadata.tables["rolls"]


def new_roll_id(product: str, ts: int) -> str:
    return f"roll-{product.lower()}-{ts // 1_000_000_000:x}-{uuid.uuid4().hex[:6]}"


def combo_ref(roll_id: str) -> str:
    """The orderRef of a roll's combo order at IB."""
    return roll_id + COMBO_SUFFIX


def combo_leg_id(ref: str, con_id: int) -> str:
    """The client order id of one leg of the combo whose orderRef is `ref`."""
    return f"{ref}.{con_id}"


def leg_of_combo(ref: str, con_id: int) -> str:
    """The leg's client order id when `ref` is a combo's orderRef, else `ref` unchanged."""
    return combo_leg_id(ref, con_id) if ref.endswith(COMBO_SUFFIX) and con_id else ref


@dataclass(frozen=True, slots=True)
class BrokerCombo:
    """A combo order for a broker that can send one (IBBroker.place_combo): `legs` are (leg request, its
    instrument); bought, each leg trades its own side; one IB order id for all."""

    ref: str
    order_id: int
    quantity: int
    legs: tuple[tuple[OrderRequest, Instrument], ...]
    order_type: OrderType = OrderType.MKT
    limit_price: Decimal | None = None
    account: str = ""


class RollState(StrEnum):
    PLANNED = "planned"  # recorded; working orders of the old month being cancelled
    COMBO = "combo"  # the calendar-spread combo is (being) sent
    LEGS = "legs"  # the combo was refused: two outright orders, the old month closed first
    MOVING = "moving"  # position rolled; working orders being placed on the new month
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class MovedOrder:
    """A working order of the old month, cancelled by the roll and placed again on the new month."""

    client_order_id: str
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: float | None
    stop_price: float | None
    tif: TimeInForce
    reason: str = ""
    oca: str = ""  # its one-cancels-all group (a bracket's exits: named after their parent), "" if none

    @classmethod
    def of(cls, request: OrderRequest, remaining: int) -> MovedOrder:
        return cls(
            request.client_order_id,
            request.side,
            remaining,
            request.order_type,
            request.limit_price,
            request.stop_price,
            request.tif,
            request.reason,
            request.oca_group or request.parent_id,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "cid": self.client_order_id,
            "side": str(self.side),
            "qty": self.quantity,
            "type": str(self.order_type),
            "limit": self.limit_price,
            "stop": self.stop_price,
            "tif": str(self.tif),
            "reason": self.reason,
            "oca": self.oca,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MovedOrder:
        return cls(
            d["cid"],
            Side(d["side"]),
            int(d["qty"]),
            OrderType(d["type"]),
            d["limit"],
            d["stop"],
            TimeInForce(d["tif"]),
            d.get("reason", ""),
            d.get("oca", ""),
        )


@dataclass(slots=True)
class RollRecord:
    roll_id: str
    strategy: str
    product: str
    from_key: str
    to_key: str
    quantity: int
    state: RollState
    moved: list[MovedOrder] = field(default_factory=list)
    spread: Decimal | None = None
    created_ts: int = 0
    updated_ts: int = 0
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.state in (RollState.DONE, RollState.FAILED)

    def cid(self, what: str) -> str:
        """The client order id of one of the roll's outright orders ("close", "open", "re0", ...)."""
        return f"{self.roll_id}.{what}"


class RollBook:
    """The `rolls` table of an `OrderRecords` database (every write commits before it returns)."""

    def __init__(self, records: OrderRecords) -> None:
        self.records = records

    def create(self, roll: RollRecord) -> RollRecord:
        now = _wall_now()
        with self.records.engine.begin() as conn:
            conn.execute(
                insert(_ROLLS),
                {
                    "roll_id": roll.roll_id,
                    "strategy": roll.strategy,
                    "product": roll.product,
                    "from_key": roll.from_key,
                    "to_key": roll.to_key,
                    "quantity": roll.quantity,
                    "state": str(roll.state),
                    "moved": json.dumps([m.as_json() for m in roll.moved]),
                    "spread": roll.spread,
                    "created_ts": roll.created_ts,
                    "updated_ts": roll.created_ts,
                    "created_at": now,
                    "updated_at": now,
                    "message": roll.message,
                },
            )
        return roll

    def update(self, roll: RollRecord, state: RollState, ts: int, message: str = "") -> None:
        roll.state = state
        roll.updated_ts = ts
        roll.message = message
        with self.records.engine.begin() as conn:
            conn.execute(
                update(_ROLLS)
                .where(_ROLLS.c.roll_id == roll.roll_id)
                .values(
                    state=str(state),
                    spread=roll.spread,
                    updated_ts=ts,
                    updated_at=_wall_now(),
                    message=message,
                )
            )

    def get(self, roll_id: str) -> RollRecord | None:
        with self.records.engine.connect() as conn:
            row = conn.execute(select(_ROLLS).where(_ROLLS.c.roll_id == roll_id)).first()
        return None if row is None else _record(row)

    def all(self) -> list[RollRecord]:
        with self.records.engine.connect() as conn:
            rows = conn.execute(select(_ROLLS).order_by(_ROLLS.c.id)).all()
        return [_record(r) for r in rows]

    def unfinished(self, product: str | None = None) -> list[RollRecord]:
        return [r for r in self.all() if not r.finished and (product is None or r.product == product.upper())]


def _record(row: Any) -> RollRecord:
    return RollRecord(
        roll_id=row.roll_id,
        strategy=row.strategy,
        product=row.product,
        from_key=row.from_key,
        to_key=row.to_key,
        quantity=row.quantity,
        state=RollState(row.state),
        moved=[MovedOrder.from_json(d) for d in json.loads(row.moved or "[]")],
        spread=row.spread,
        created_ts=row.created_ts,
        updated_ts=row.updated_ts,
        message=row.message,
    )

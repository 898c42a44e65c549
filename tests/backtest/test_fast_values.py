"""The matching engine's fast constructors for Fill and OrderUpdate build exactly what the dataclasses do."""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal
from typing import Any

import pytest

from ibot.exchange.matching import _new_fill, _new_update
from ibot.model.orders import Fill, OrderStatus, OrderUpdate, Side

# One sample value per field name; a field added to Fill or OrderUpdate has none and fails the test until the
# engine's twin (and this table) learn it.
SAMPLES: dict[str, Any] = {
    "client_order_id": "o7",
    "symbol": "MES",
    "side": Side.SELL,
    "quantity": 3,
    "price": 5012.25,
    "ts": 1_709_650_800_000_000_000,
    "commission": Decimal("1.86"),
    "exec_id": "0000e0d5.00000007.01.01",
    "reason": "Open-Short",
    "status": OrderStatus.FILLED,
    "filled": 3,
    "remaining": 0,
    "avg_fill_price": 5012.25,
    "message": "done",
}


@pytest.mark.parametrize(("cls", "fast"), [(Fill, _new_fill), (OrderUpdate, _new_update)])
def test_fast_constructor_builds_the_same_frozen_value(cls: Any, fast: Any) -> None:
    args = [SAMPLES[f.name] for f in dataclasses.fields(cls)]
    want = cls(*args)
    got = fast(*args)
    assert type(got) is cls
    assert got == want and hash(got) == hash(want) and repr(got) == repr(want)
    assert dataclasses.astuple(got) == tuple(args)
    assert pickle.loads(pickle.dumps(got)) == want
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.ts = 0

"""The fast constructors of the order path (the matching engine's Fill and OrderUpdate, Strategy.order's
OrderRequest) build exactly what the dataclasses do."""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal
from typing import Any

import pytest

from ibot.exchange.matching import _new_fill, _new_update
from ibot.model.errors import InvalidOrderError
from ibot.model.orders import Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side
from ibot.strategy.base import _new_request

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


def test_strategy_order_request_equals_the_dataclass_one() -> None:
    args = ("MES", Side.BUY, 2, OrderType.LMT, 5012.25, None, "Open-Long")
    want = OrderRequest(*args[:6], reason=args[6])
    got = _new_request(*args)
    assert type(got) is OrderRequest and got == want and repr(got) == repr(want)
    assert dataclasses.astuple(got) == dataclasses.astuple(want)
    # every field, defaults included, is set on the fast one (a field added to OrderRequest fails here)
    assert [getattr(got, f.name) for f in dataclasses.fields(OrderRequest)] == list(dataclasses.astuple(want))


@pytest.mark.parametrize(
    "args",
    [
        ("MES", Side.BUY, 0, OrderType.MKT, None, None, ""),
        ("MES", Side.SELL, True, OrderType.MKT, None, None, ""),
        ("MES", Side.BUY, 1, OrderType.LMT, None, None, ""),
        ("MES", Side.BUY, 1, OrderType.MKT, 5000.0, None, ""),
        ("MES", Side.BUY, 1, OrderType.STP, None, float("nan"), ""),
    ],
)
def test_strategy_order_request_refuses_what_the_dataclass_refuses(args: tuple[Any, ...]) -> None:
    with pytest.raises(InvalidOrderError) as want:
        OrderRequest(*args[:6], reason=args[6])
    with pytest.raises(InvalidOrderError) as got:
        _new_request(*args)
    assert str(got.value) == str(want.value)

"""The fast constructors of the order path (the matching engine's Fill, OrderUpdate and market-order state,
Strategy.order's OrderRequest) build exactly what the general ones do, and the engine's one-step bar for a
lone market order tells the strategy exactly what the general bar walk does."""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from ibot.backtest import Backtester
from ibot.exchange.matching import FillRules, _market_order, _new_fill, _new_update, _Order
from ibot.model.catalog import get_instrument
from ibot.model.errors import InvalidOrderError
from ibot.model.orders import Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from ibot.strategies.sma_reversal import SmaReversal
from ibot.strategy.base import Strategy, _new_request

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


class _Capture:
    """A Context stand-in that keeps what Strategy.order submits (no engine needed to compare requests)."""

    def __init__(self) -> None:
        self.instrument = get_instrument("MES")
        self.sent: list[OrderRequest] = []

    def submit(self, request: OrderRequest) -> str:
        self.sent.append(request)
        return "id"


@pytest.mark.parametrize(("side", "qty", "reason"), [(Side.BUY, 1, "Open-Long"), (Side.SELL, 7, "")])
def test_strategy_market_order_equals_the_dataclass_one(side: Side, qty: int, reason: str) -> None:
    strategy = Strategy()
    strategy.ctx = _Capture()  # type: ignore[assignment]
    assert strategy.order(side, qty, reason=reason) == "id"
    (got,) = strategy.ctx.sent  # type: ignore[attr-defined]
    want = OrderRequest("MES", side, qty, OrderType.MKT, reason=reason)
    assert type(got) is OrderRequest and got == want and repr(got) == repr(want)
    assert [getattr(got, f.name) for f in dataclasses.fields(OrderRequest)] == list(dataclasses.astuple(want))
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.quantity = 2  # type: ignore[misc]


@pytest.mark.parametrize("qty", [0, -2, True, 1.0, "1"])
def test_strategy_market_order_refuses_what_the_dataclass_refuses(qty: Any) -> None:
    strategy = Strategy()
    strategy.ctx = _Capture()  # type: ignore[assignment]
    with pytest.raises(InvalidOrderError) as want:
        OrderRequest("MES", Side.BUY, qty, OrderType.MKT)
    with pytest.raises(InvalidOrderError) as got:
        strategy.order(Side.BUY, qty)
    assert str(got.value) == str(want.value)
    assert strategy.ctx.sent == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "request_",
    [
        OrderRequest("MES", Side.BUY, 2, reason="Open-Long"),
        OrderRequest("MES", Side.SELL, 1, tif=TimeInForce.GTC, client_order_id="x1", oca_group="g"),
        OrderRequest("MES", Side.SELL, 5, tif=TimeInForce.IOC, parent_id="p"),
    ],
)
def test_market_order_state_equals_the_general_constructor(request_: OrderRequest) -> None:
    fast = _market_order("o3", request_, 3)
    slow = _Order("o3", request_, 3, None, None)
    assert type(fast) is _Order
    for name in _Order.__slots__:
        assert getattr(fast, name) == getattr(slow, name), name
    assert fast.children is not slow.children  # each order has its own list


class _Record(SmaReversal):
    """SmaReversal that keeps every fill and status update it hears."""

    def on_start(self) -> None:
        self.heard: list[Any] = []
        super().on_start()

    def on_fill(self, fill: Fill) -> None:
        self.heard.append(fill)
        super().on_fill(fill)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.heard.append(update)
        super().on_order_update(update)


def test_market_order_fast_bar_path_equals_the_general_walk() -> None:
    """A bar whose one working order is a market order takes MatchingEngine._market_at_open; a volume cap
    that never binds (participation 1 of a bar volume far above the order) sends the same bars through the
    general walk. Both must tell the strategy exactly the same things."""
    inst = get_instrument("MES")
    n = 3000
    rng = np.random.default_rng(5)
    c = 20_000 + np.cumsum(rng.integers(-3, 4, n))
    o = np.concatenate(([c[0]], c[:-1]))
    h = np.maximum(o, c) + rng.integers(0, 3, n)
    lo = np.minimum(o, c) - rng.integers(0, 3, n)
    tick = float(inst.tick_size)
    bars = {
        "ts": 1_709_650_800_000_000_000 + np.arange(n, dtype=np.int64) * 60_000_000_000,
        "open": o * tick,
        "high": h * tick,
        "low": lo * tick,
        "close": c * tick,
        "volume": np.full(n, 1_000.0),
    }
    heard = []
    for rules in (FillRules(slippage_ticks=1), FillRules(slippage_ticks=1, bar_volume_participation=1.0)):
        strategy = _Record()
        result = Backtester(inst, strategy, bars, rules=rules).run()
        heard.append(strategy.heard)
        assert result.fills > n // 10
    assert heard[0] == heard[1]
    assert [type(x) for x in heard[0]] == [type(x) for x in heard[1]]

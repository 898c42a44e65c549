"""The Strategy API: bars/ticks in, order intents out, through a Context. No I/O, no wall clock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from ibot.model.clock import Clock
from ibot.model.instruments import Instrument
from ibot.model.market import Bar, Tick
from ibot.model.orders import Fill, OrderRequest, OrderType, OrderUpdate, Side, TimeInForce
from ibot.strategy.params import Param, resolve_params

I = TypeVar("I")  # noqa: E741


class Context(Protocol):
    """What a strategy may read and do. Implemented by the backtester and by the live runtime alike."""

    instrument: Instrument
    clock: Clock

    @property
    def position(self) -> int:
        """Signed contracts held now (filled orders only)."""
        ...

    @property
    def last_price(self) -> float:
        """Last trade price (or last bar close) seen."""
        ...

    @property
    def bid(self) -> float:
        """Best bid, or NaN when only bars are known."""
        ...

    @property
    def ask(self) -> float:
        """Best ask, or NaN when only bars are known."""
        ...

    def indicator(self, ind: I) -> I:
        """Register a streaming indicator; the runtime feeds it every bar before on_bar. Returns it."""
        ...

    def submit(self, request: OrderRequest) -> str:
        """Send an order; returns its client order id. Raises InvalidOrderError on a bad request."""
        ...

    def cancel(self, client_order_id: str) -> None: ...

    def cancel_all(self) -> None: ...

    def open_orders(self) -> list[OrderRequest]: ...

    def log(self, message: str) -> None:
        """Record a line in the run's log with the event time."""
        ...


class _RequestParts:
    """OrderRequest's fields on a mutable twin with the same slots. A frozen dataclass's __init__ sets each
    field through object.__setattr__ (about 3x the cost of a plain object), and a backtest builds one request
    per order, so `_new_request` fills this twin and turns it into an OrderRequest by __class__ assignment
    (same memory layout), then validates it as OrderRequest's own __init__ does. The result is an ordinary
    OrderRequest, equal to OrderRequest(...) (tests/backtest/test_fast_values.py)."""

    __slots__ = OrderRequest.__slots__

    def __init__(
        self,
        symbol: str,
        side: Side,
        quantity: int,
        order_type: OrderType,
        limit_price: float | None,
        stop_price: float | None,
        reason: str,
    ) -> None:
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.order_type = order_type
        self.limit_price = limit_price
        self.stop_price = stop_price
        self.tif = _DAY  # OrderRequest's defaults from here on
        self.client_order_id = ""
        self.reason = reason
        self.parent_id = ""
        self.oca_group = ""


_DAY = TimeInForce.DAY
_MKT = OrderType.MKT
_new_parts = object.__new__


def _new_request(
    symbol: str,
    side: Side,
    quantity: int,
    order_type: OrderType,
    limit_price: float | None,
    stop_price: float | None,
    reason: str,
) -> OrderRequest:
    """OrderRequest(symbol, side, quantity, order_type, limit_price, stop_price, reason=reason), validated."""
    request: Any = _RequestParts(symbol, side, quantity, order_type, limit_price, stop_price, reason)
    request.__class__ = OrderRequest
    request.__post_init__()
    return request


class Strategy:
    """Base class for strategies. Subclasses declare `name` and `params` and override the hooks they need."""

    name: ClassVar[str] = "strategy"
    params: ClassVar[tuple[Param, ...]] = ()
    # A compiled (or vectorized) twin of this strategy's signal and fill logic for parameter sweeps, named as
    # "package.module:function" and imported only when a sweep asks for it (see ibot.backtest.compiled). It
    # must equal the event-driven backtester trade for trade; None: sweeps run the event-driven engine.
    twin: ClassVar[str | None] = None

    def __init__(self, **params: Any) -> None:
        self.p: dict[str, Any] = resolve_params(self.params, params, owner=self.name)
        self.ctx: Context  # set by start()

    def start(self, ctx: Context) -> None:
        """Called once by the runtime before any data; wires the context then calls on_start."""
        self.ctx = ctx
        self.on_start()

    # Hooks ---------------------------------------------------------------------------------------------
    def on_start(self) -> None:
        """Create indicators here with `self.ctx.indicator(...)`."""

    def on_bar(self, bar: Bar) -> None:
        """A bar closed (indicators already include it)."""

    def on_tick(self, tick: Tick) -> None:
        """A quote or trade arrived."""

    def on_fill(self, fill: Fill) -> None:
        """One of this strategy's orders (partly) filled; ctx.position already includes it."""

    def on_order_update(self, update: OrderUpdate) -> None:
        """One of this strategy's orders changed state."""

    # Helpers ---------------------------------------------------------------------------------------------
    def order(
        self,
        side: Side,
        quantity: int,
        order_type: OrderType = OrderType.MKT,
        limit_price: float | None = None,
        stop_price: float | None = None,
        reason: str = "",
    ) -> str:
        """Shorthand for ctx.submit with this strategy's instrument."""
        ctx = self.ctx
        symbol = ctx.instrument.symbol
        if order_type is not _MKT or limit_price is not None or stop_price is not None:
            request = _new_request(symbol, side, quantity, order_type, limit_price, stop_price, reason)
            return ctx.submit(request)
        # A market order (most orders of a backtest): _new_request inline, without the __init__ frame, and
        # __post_init__ is called only if the quantity is not a positive int (its only check for this case).
        fast: Any = _new_parts(_RequestParts)
        fast.symbol = symbol
        fast.side = side
        fast.quantity = quantity
        fast.order_type = _MKT
        fast.limit_price = fast.stop_price = None
        fast.tif = _DAY
        fast.client_order_id = fast.parent_id = fast.oca_group = ""
        fast.reason = reason
        fast.__class__ = OrderRequest
        if type(quantity) is not int or quantity <= 0:
            fast.__post_init__()
        return ctx.submit(fast)

    @classmethod
    def describe_params(cls) -> Mapping[str, Param]:
        return {p.name: p for p in cls.params}

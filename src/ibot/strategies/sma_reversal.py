"""The plain 9-SMA reversal used by the benchmarks: always in the market on the side of the last cross.

On each closed bar t: cross up (``close[t-1] <= sma[t-1] and close[t] > sma[t]``) targets +quantity, cross
down (``close[t-1] >= sma[t-1] and close[t] < sma[t]``) targets -quantity; the difference between the target
and the position plus orders already sent goes out as ONE market order (a reversal is one order of 2 x
quantity). No filter, no guards.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ibot.indicators.streaming import SMA
from ibot.model.market import Bar
from ibot.model.orders import Fill, OrderStatus, OrderType, OrderUpdate, Side
from ibot.strategy.base import Strategy
from ibot.strategy.params import Param

_NAN = float("nan")


class SmaReversal(Strategy):
    """Close crosses SMA(period): reverse to the cross's side with a market order."""

    name: ClassVar[str] = "sma_reversal"
    twin: ClassVar[str | None] = "ibot.strategies.twins.sma_reversal:run"
    params: ClassVar[tuple[Param, ...]] = (
        Param("sma_period", 9, 2, 500, help="bars in the simple moving average"),
        Param("quantity", 1, 1, 10_000, help="contracts held after a cross"),
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._period: int = self.p["sma_period"]
        self._qty: int = self.p["quantity"]

    def on_start(self) -> None:
        self._sma = self.ctx.indicator(SMA(self._period))
        self._prev_close = _NAN
        self._prev_sma = _NAN
        self._working: dict[str, int] = {}  # client order id -> signed quantity not yet filled

    def on_bar(self, bar: Bar) -> None:
        close = bar.close
        sma = self._sma.value
        if self._prev_close <= self._prev_sma and close > sma:
            self._target(self._qty, "Open-Long")
        elif self._prev_close >= self._prev_sma and close < sma:
            self._target(-self._qty, "Open-Short")
        self._prev_close = close
        self._prev_sma = sma

    def _target(self, target: int, reason: str) -> None:
        delta = target - self.ctx.position - sum(self._working.values())
        if delta:
            side = Side.BUY if delta > 0 else Side.SELL
            oid = self.order(side, abs(delta), OrderType.MKT, reason=reason)
            self._working[oid] = delta

    def on_fill(self, fill: Fill) -> None:
        left = self._working.get(fill.client_order_id)
        if left is not None:
            left -= fill.signed_quantity
            if left:
                self._working[fill.client_order_id] = left
            else:
                del self._working[fill.client_order_id]

    def on_order_update(self, update: OrderUpdate) -> None:
        if update.status.is_done and update.status is not OrderStatus.FILLED:
            self._working.pop(update.client_order_id, None)


__all__ = ["SmaReversal"]

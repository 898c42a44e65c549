"""Golden regression: the event-driven backtester's fills, P&L and strategy callbacks, pinned exactly.

Each configuration below (strategy and parameters, synthetic series, fee model, fill rules) was run once with
the engine as it stood before the order-path speed work (issue 16) and its results were saved in
tests/backtest/data/engine_golden.json: the first trade rows and a hash of all of them, the fill count,
net/gross/fees, hashes of the per-bar equity and position arrays and a hash of every on_fill /
on_order_update the strategy received (in order, with all fields). A change that alters any fill, fee,
status update or P&L fails here.

Regenerate (only for an intended change of behaviour): ``PYTHONPATH=src python tests/backtest/
test_engine_golden.py --write``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from ibot.backtest import Backtester
from ibot.data.synth import synth_bars
from ibot.exchange import FeeModel
from ibot.exchange.matching import FillRules
from ibot.model.catalog import get_instrument
from ibot.model.market import Bar
from ibot.model.orders import Fill, OrderRequest, OrderType, OrderUpdate, Side, TimeInForce
from ibot.strategies.ma_breakout import MaBreakout
from ibot.strategies.sma_reversal import SmaReversal
from ibot.strategy.base import Strategy

DATA = Path(__file__).parent / "data" / "engine_golden.json"
_HEAD = 25  # trade rows kept in full per configuration (all of them are hashed)
CUSTOM_FEES = FeeModel(Decimal("0.85"), Decimal("0.75"), Decimal("0.02"))


class OrderMix(Strategy):
    """A deterministic mix of every order kind the matching engine knows, to pin its less common paths:
    limits off the market, stops and stop-limits, brackets (parent + held children), OCA pairs, IOC, GTC,
    cancels of working orders. Driven only by the bar index and the position."""

    name: ClassVar[str] = "order_mix"

    def on_start(self) -> None:
        self._t = -1
        self._n = 0

    def _id(self) -> str:
        self._n += 1
        return f"m{self._n}"

    def _send(self, side: Side, qty: int, kind: OrderType = OrderType.MKT, **kw: Any) -> str:
        req = OrderRequest(
            self.ctx.instrument.symbol, side, qty, kind, client_order_id=kw.pop("oid", "") or self._id(), **kw
        )
        return self.ctx.submit(req)

    def on_bar(self, bar: Bar) -> None:
        self._t += 1
        t = self._t
        inst = self.ctx.instrument
        c = inst.to_ticks(bar[4])
        px = inst.from_ticks
        pos = self.ctx.position
        step = t % 40
        if step == 0 and pos:
            self._send(Side.SELL if pos > 0 else Side.BUY, abs(pos), reason="flat")
        elif step == 3:
            self._send(Side.BUY, 2, OrderType.LMT, limit_price=px(c - 3), reason="dip")
        elif step == 6:
            self._send(Side.SELL, 1, OrderType.STP, stop_price=px(c - 4), tif=TimeInForce.GTC, reason="stop")
        elif step == 9:
            self._send(
                Side.BUY, 1, OrderType.STP_LMT, stop_price=px(c + 2), limit_price=px(c + 3), reason="stp-lmt"
            )
        elif step == 12:
            parent = self._send(Side.SELL, 2, OrderType.LMT, limit_price=px(c + 1), reason="bracket")
            self._send(
                Side.BUY, 2, OrderType.LMT, limit_price=px(c - 6), parent_id=parent, oca_group=f"oca{t}"
            )
            self._send(
                Side.BUY, 2, OrderType.STP, stop_price=px(c + 8), parent_id=parent, oca_group=f"oca{t}"
            )
        elif step == 20:
            self._send(Side.BUY, 1, OrderType.LMT, limit_price=px(c - 1), tif=TimeInForce.IOC, reason="ioc")
            self._send(Side.SELL, 3, reason="mkt3")
        elif step == 25:
            for req in self.ctx.open_orders():
                if req.order_type is OrderType.LMT and not req.parent_id:
                    self.ctx.cancel(req.client_order_id)
                    break
        elif step == 33:
            self.ctx.cancel_all()


class Recording:
    """Mixin: every fill and order update the strategy hears, in order, as text."""

    events: list[str]

    def on_start(self) -> None:
        self.events = []
        super().on_start()  # type: ignore[misc]

    def on_fill(self, fill: Fill) -> None:
        self.events.append(f"F {fill!r}")
        super().on_fill(fill)  # type: ignore[misc]

    def on_order_update(self, update: OrderUpdate) -> None:
        self.events.append(f"U {update!r}")
        super().on_order_update(update)  # type: ignore[misc]


class RecSma(Recording, SmaReversal):
    pass


class RecBreakout(Recording, MaBreakout):
    pass


class RecMix(Recording, OrderMix):
    pass


STRATEGIES = {"sma_reversal": RecSma, "ma_breakout": RecBreakout, "order_mix": RecMix}

# name -> (strategy, params, symbol, seed, days, fees, rules)
CONFIGS: dict[str, tuple[str, dict[str, Any], str, int, int, str, dict[str, Any]]] = {
    "sma9-MES-s1": ("sma_reversal", {}, "MES", 1, 3, "ib", {}),
    "sma9-MES-s2-slip1": ("sma_reversal", {}, "MES", 2, 3, "ib", {"slippage_ticks": 1}),
    "sma21-q3-MGC-s3-custom": ("sma_reversal", {"sma_period": 21, "quantity": 3}, "MGC", 3, 3, "custom", {}),
    "sma5-MCL-s1-slip1-custom": (
        "sma_reversal",
        {"sma_period": 5},
        "MCL",
        1,
        3,
        "custom",
        {"slippage_ticks": 1},
    ),
    "brk-MES-s1": ("ma_breakout", {}, "MES", 1, 4, "ib", {}),
    "brk-MES-s2-slip1": ("ma_breakout", {}, "MES", 2, 4, "ib", {"slippage_ticks": 1}),
    "brk-slope-MGC-s3-custom": (
        "ma_breakout",
        {"entry_filter": "slope", "slope_bars": 4, "quantity": 2, "limit_offset_ticks": 0},
        "MGC",
        3,
        4,
        "custom",
        {},
    ),
    "brk-slope-MCL-s2-slip1": (
        "ma_breakout",
        {"entry_filter": "slope", "sma_period": 15, "max_trades_per_day": 4, "entry_timeout_bars": 1},
        "MCL",
        2,
        4,
        "ib",
        {"slippage_ticks": 1},
    ),
    "brk-MES-s3-touch-part": (
        "ma_breakout",
        {"quantity": 4, "limit_offset_ticks": 1},
        "MES",
        3,
        3,
        "ib",
        {"limit_fills_on_touch": True, "bar_volume_participation": 0.01},
    ),
    "mix-MES-s1": ("order_mix", {}, "MES", 1, 3, "ib", {}),
    "mix-MGC-s2-slip1-custom": ("order_mix", {}, "MGC", 2, 3, "custom", {"slippage_ticks": 1}),
    "mix-MCL-s3-touch-part": (
        "order_mix",
        {},
        "MCL",
        3,
        3,
        "zero",
        {"limit_fills_on_touch": True, "bar_volume_participation": 0.002},
    ),
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_config(name: str) -> dict[str, Any]:
    """Run one configuration and return what the golden file keeps for it."""
    strategy, params, symbol, seed, days, fees, rules = CONFIGS[name]
    inst = get_instrument(symbol)
    bars = synth_bars(inst, dt.date(2024, 3, 4), days, "1min", seed)
    fee_model = {"ib": None, "custom": CUSTOM_FEES, "zero": FeeModel.zero()}[fees]
    strat = STRATEGIES[strategy](**params)
    res = Backtester(inst, strat, bars, fees=fee_model, rules=FillRules(**rules)).run()
    m = res.metrics
    rows = [t.row() for t in res.trades]
    return {
        "bars": res.bars,
        "fills": res.fills,
        "trades": len(rows),
        "trades_head": rows[:_HEAD],
        "trades_sha256": _sha(json.dumps(rows, sort_keys=True).encode()),
        "net": str(m.net_pnl),
        "gross": str(m.gross_pnl),
        "fees": str(m.fees),
        "equity_sha256": _sha(np.ascontiguousarray(res.equity, dtype="<f8").tobytes()),
        "position_sha256": _sha(np.ascontiguousarray(res.position, dtype="<i8").tobytes()),
        "events": len(strat.events),
        "events_sha256": _sha("\n".join(strat.events).encode()),
        "logs": [list(x) for x in res.logs],
    }


def _golden() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DATA.read_text())
    return result


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_engine_reproduces_the_golden_run(name: str) -> None:
    want = _golden()[name]
    got = run_config(name)
    assert got["fills"] > 0 and got["trades"]  # every configuration trades
    assert got["trades_head"] == want["trades_head"]
    assert got == want


def test_golden_file_covers_every_configuration() -> None:
    assert sorted(_golden()) == sorted(CONFIGS)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: test_engine_golden.py --write  (rewrites the golden file from the current engine)")
    DATA.parent.mkdir(exist_ok=True)
    out = {name: run_config(name) for name in sorted(CONFIGS)}
    DATA.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    for name, v in out.items():
        print(f"{name}: {v['fills']} fills, {v['trades']} trades, {v['events']} events, net {v['net']}")

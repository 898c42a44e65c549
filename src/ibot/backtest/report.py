"""What a backtest produced: the trade list, the per-bar equity curve, and the metrics computed from them.

Metric definitions (all from closed round-trip trades and the per-bar equity curve):
- net P&L = gross P&L - fees, exact Decimal, summed over trades; gross from integer ticks x tick value.
- a trade is a round trip from flat to flat (a reversal closes one trade and opens the next).
- win rate = trades with net > 0 / trades; profit factor = sum of winning nets / |sum of losing nets|
  (None when there is no losing trade).
- max drawdown = largest fall of equity (initial capital + P&L marked at each bar's close, fees included)
  from its running peak, in currency and as % of that peak.
- Sharpe = mean / standard deviation (ddof=1) of daily returns x sqrt(252), where a daily return is the change
  of end-of-trading-day equity over the previous end-of-day equity (the first over the initial capital);
  no risk-free rate. None with fewer than 2 days or zero deviation.
- trades per day = trades / trading days in the data; exposure = % of bars ending with a position.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ibot.model.instruments import Instrument
from ibot.model.market import ns_to_datetime

__all__ = ["BacktestResult", "Metrics", "RolledPosition", "Trade", "compute_metrics", "render_table"]

_CENT = Decimal("0.01")
TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip. Prices are average fill prices; `ticks` is gross ticks per contract.

    On a continuous series (ibot.backtest.rolls) a trade lies in one month, `contract`; its prices are that
    month's raw prices, and the series' (adjusted) price was raw + `adjustment`."""

    entry_ts: int
    exit_ts: int
    side: str  # "LONG" or "SHORT"
    quantity: int
    entry_price: float
    exit_price: float
    ticks: float
    gross: Decimal
    fees: Decimal
    net: Decimal
    entry_reason: str = ""
    exit_reason: str = ""
    contract: str = ""
    adjustment: float = 0.0

    def row(self) -> dict[str, Any]:
        extra = {"contract": self.contract, "adjustment": self.adjustment} if self.contract else {}
        return {
            "entry_time": ns_to_datetime(self.entry_ts).isoformat(),
            "exit_time": ns_to_datetime(self.exit_ts).isoformat(),
            "side": self.side,
            "quantity": self.quantity,
            "entry_price": self.entry_price,
            "exit_price": self.exit_price,
            "ticks": self.ticks,
            "gross": str(self.gross),
            "fees": str(self.fees),
            "net": str(self.net),
            "entry_reason": self.entry_reason,
            "exit_reason": self.exit_reason,
            **extra,
        }


@dataclass(frozen=True, slots=True)
class RolledPosition:
    """A roll of a continuous-series backtest: at the close of the bar at `ts` the position `quantity`
    (signed; 0 when flat: nothing traded) was closed in `from_contract` at `from_price` and opened in
    `to_contract` at `to_price` (raw prices of each month), for `fees` (both sides)."""

    ts: int
    from_contract: str
    to_contract: str
    from_price: float
    to_price: float
    quantity: int
    fees: Decimal

    def row(self) -> dict[str, Any]:
        return {
            "time": ns_to_datetime(self.ts).isoformat(),
            "from_contract": self.from_contract,
            "to_contract": self.to_contract,
            "from_price": self.from_price,
            "to_price": self.to_price,
            "quantity": self.quantity,
            "fees": str(self.fees),
        }


@dataclass(frozen=True, slots=True)
class Metrics:
    """Summary numbers of a run; money is exact Decimal, ratios are floats (None when undefined)."""

    net_pnl: Decimal
    gross_pnl: Decimal
    fees: Decimal
    trades: int
    win_rate: float | None
    profit_factor: float | None
    max_drawdown: Decimal
    max_drawdown_pct: float
    sharpe: float | None
    trades_per_day: float
    exposure_pct: float
    avg_trade: Decimal | None
    trading_days: int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            out[name] = str(v) if isinstance(v, Decimal) else v
        return out


def _money(x: float) -> Decimal:
    return Decimal(repr(float(x))).quantize(_CENT)


def compute_metrics(
    trades: Sequence[Trade],
    equity: npt.NDArray[np.float64],
    position: npt.NDArray[np.int64],
    day_ids: npt.NDArray[np.int64],
    initial_capital: Decimal,
) -> Metrics:
    """Metrics as defined in the module doc, from trades and per-bar equity/position/trading-day arrays."""
    net = sum((t.net for t in trades), Decimal(0))
    gross = sum((t.gross for t in trades), Decimal(0))
    fees = sum((t.fees for t in trades), Decimal(0))
    n = len(trades)
    wins = [t.net for t in trades if t.net > 0]
    losses = [t.net for t in trades if t.net < 0]
    win_rate = len(wins) / n if n else None
    loss_sum = -sum(losses, Decimal(0))
    profit_factor = float(sum(wins, Decimal(0)) / loss_sum) if loss_sum > 0 else None

    cap = float(initial_capital)
    eq = np.concatenate(([cap], np.asarray(equity, dtype=np.float64)))
    peak = np.maximum.accumulate(eq)
    dd = peak - eq
    k = int(np.argmax(dd)) if len(dd) else 0
    max_dd = float(dd[k]) if len(dd) else 0.0
    max_dd_pct = float(np.max(np.where(peak > 0, dd / np.where(peak > 0, peak, 1.0), 0.0)) * 100.0)

    days = 0
    sharpe: float | None = None
    if len(day_ids):
        last_of_day = np.flatnonzero(np.diff(day_ids) != 0)
        ends = np.concatenate((last_of_day, [len(day_ids) - 1]))
        days = len(ends)
        eod = np.concatenate(([cap], np.asarray(equity, dtype=np.float64)[ends]))
        with np.errstate(divide="ignore", invalid="ignore"):
            rets = eod[1:] / eod[:-1] - 1.0
        rets = rets[np.isfinite(rets)]
        if len(rets) >= 2:
            sd = float(np.std(rets, ddof=1))
            if sd > 0 and math.isfinite(sd):
                sharpe = float(np.mean(rets)) / sd * math.sqrt(TRADING_DAYS_PER_YEAR)
    exposure = float(np.count_nonzero(position) / len(position) * 100.0) if len(position) else 0.0
    return Metrics(
        net_pnl=net,
        gross_pnl=gross,
        fees=fees,
        trades=n,
        win_rate=win_rate,
        profit_factor=profit_factor,
        max_drawdown=_money(max_dd),
        max_drawdown_pct=max_dd_pct,
        sharpe=sharpe,
        trades_per_day=n / days if days else 0.0,
        exposure_pct=exposure,
        avg_trade=(net / n).quantize(Decimal("0.0001")) if n else None,
        trading_days=days,
    )


@dataclass
class BacktestResult:
    """Everything a run produced. Per-bar arrays align with `ts`; equity is in the instrument's currency."""

    instrument: Instrument
    strategy: str
    params: dict[str, Any]
    ts: npt.NDArray[np.int64]
    close: npt.NDArray[np.float64]
    position: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    day_ids: npt.NDArray[np.int64]
    trades: list[Trade]
    initial_capital: Decimal
    fills: int = 0
    elapsed_s: float = 0.0
    logs: list[tuple[int, str]] = field(default_factory=list)
    rolls: list[RolledPosition] = field(default_factory=list)
    continuous: dict[str, Any] | None = None  # the series a continuous backtest ran on (symbol, adjust)
    _metrics: Metrics | None = field(default=None, repr=False)

    @property
    def bars(self) -> int:
        return len(self.ts)

    @property
    def bars_per_second(self) -> float:
        return self.bars / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def metrics(self) -> Metrics:
        if self._metrics is None:
            self._metrics = compute_metrics(
                self.trades, self.equity, self.position, self.day_ids, self.initial_capital
            )
        return self._metrics

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready summary (money as strings, exact) for `--json`."""
        return {
            "instrument": self.instrument.key,
            "strategy": self.strategy,
            "params": dict(self.params),
            "bars": self.bars,
            "start": ns_to_datetime(int(self.ts[0])).isoformat() if self.bars else None,
            "end": ns_to_datetime(int(self.ts[-1])).isoformat() if self.bars else None,
            "initial_capital": str(self.initial_capital),
            "final_equity": str(_money(float(self.equity[-1]))) if self.bars else str(self.initial_capital),
            "fills": self.fills,
            "elapsed_s": round(self.elapsed_s, 6),
            "bars_per_second": round(self.bars_per_second, 1),
            "metrics": self.metrics.to_dict(),
            **self._continuous_dict(),
        }

    def _continuous_dict(self) -> dict[str, Any]:
        if self.continuous is None:
            return {}
        return {"continuous": dict(self.continuous), "rolls": [r.row() for r in self.rolls]}

    def write_trades_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            columns = _TRADE_COLUMNS + (["contract", "adjustment"] if self.continuous is not None else [])
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for t in self.trades:
                writer.writerow(t.row())
        return path

    def write_trades_parquet(self, path: str | Path) -> Path:
        """Trade list as Parquet: times as UTC timestamps, money as exact decimal(18, 4)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        money = pa.decimal128(18, 4)
        tr = self.trades
        months = (
            {"contract": pa.array([t.contract for t in tr], pa.string())}
            if self.continuous is not None
            else {}
        )
        table = pa.table(
            {
                **months,
                "entry_time": pa.array([t.entry_ts for t in tr], pa.timestamp("ns", tz="UTC")),
                "exit_time": pa.array([t.exit_ts for t in tr], pa.timestamp("ns", tz="UTC")),
                "side": pa.array([t.side for t in tr], pa.string()),
                "quantity": pa.array([t.quantity for t in tr], pa.int64()),
                "entry_price": pa.array([t.entry_price for t in tr], pa.float64()),
                "exit_price": pa.array([t.exit_price for t in tr], pa.float64()),
                "ticks": pa.array([t.ticks for t in tr], pa.float64()),
                "gross": pa.array([t.gross for t in tr], money),
                "fees": pa.array([t.fees for t in tr], money),
                "net": pa.array([t.net for t in tr], money),
                "entry_reason": pa.array([t.entry_reason for t in tr], pa.string()),
                "exit_reason": pa.array([t.exit_reason for t in tr], pa.string()),
            }
        )
        pq.write_table(table, path)
        return path


_TRADE_COLUMNS = [
    "entry_time",
    "exit_time",
    "side",
    "quantity",
    "entry_price",
    "exit_price",
    "ticks",
    "gross",
    "fees",
    "net",
    "entry_reason",
    "exit_reason",
]


def _fmt(v: object, pct: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v * 100:.1f}%" if pct else f"{v:,.2f}"
    if isinstance(v, Decimal):
        return f"{v:,.2f}"
    return str(v)


def render_table(result: BacktestResult) -> Any:
    """A rich Table of the run's metrics (print it with rich's Console); on a continuous series, with a
    second table of the rolls below it."""
    from rich.table import Table

    m = result.metrics
    cur = result.instrument.currency
    table = Table(title=f"Backtest {result.strategy} on {result.instrument.key} ({result.bars:,} bars)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("net P&L", f"{_fmt(m.net_pnl)} {cur}"),
        ("gross P&L", f"{_fmt(m.gross_pnl)} {cur}"),
        ("fees", f"{_fmt(m.fees)} {cur}"),
        ("trades", str(m.trades)),
        ("win rate", _fmt(m.win_rate, pct=True)),
        ("profit factor", _fmt(m.profit_factor)),
        ("avg trade", f"{_fmt(m.avg_trade)} {cur}"),
        ("max drawdown", f"{_fmt(m.max_drawdown)} {cur} ({m.max_drawdown_pct:.2f}%)"),
        ("Sharpe (daily, x sqrt 252)", _fmt(m.sharpe)),
        ("trades per day", f"{m.trades_per_day:.2f}"),
        ("exposure", f"{m.exposure_pct:.1f}%"),
        ("trading days", str(m.trading_days)),
        ("speed", f"{result.bars_per_second:,.0f} bars/s"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    if result.continuous is None:
        return table
    from rich.console import Group

    return Group(table, render_rolls(result))


def render_rolls(result: BacktestResult) -> Any:
    """A rich Table of a continuous backtest's rolls: time, months, both prices, quantity rolled, fees."""
    from rich.table import Table

    cur = result.instrument.currency
    adjust = (result.continuous or {}).get("adjust", "")
    table = Table(title=f"Rolls ({len(result.rolls)}; series {adjust}; prices raw per month)")
    for name in ("time (UTC)", "from -> to", "from price", "to price", "quantity", f"fees {cur}"):
        table.add_column(name, justify="left" if name.startswith(("time", "from ->")) else "right")
    for r in result.rolls:
        table.add_row(
            ns_to_datetime(r.ts).strftime("%Y-%m-%d %H:%M"),
            f"{r.from_contract} -> {r.to_contract}",
            f"{r.from_price:,}",
            f"{r.to_price:,}",
            f"{r.quantity:+d}" if r.quantity else "0 (flat)",
            _fmt(r.fees),
        )
    return table

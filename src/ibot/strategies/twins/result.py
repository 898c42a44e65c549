"""From bars to kernel inputs, and from kernel fills to the Backtester's BacktestResult (or a fast summary).

`prepare` validates the bars exactly as the Backtester does (the same errors) and precomputes what every
trial on them shares: prices in ticks, the trading day of each bar and the time its DAY orders expire.
`build_result` turns a kernel's fills into the BacktestResult the event-driven engine returns: positions and
cash per bar come from the kernel, equity is rebuilt with the engine's own formula (float fees summed in fill
order), round trips use the engine's bookkeeping (compiled) and only the Trade objects are made in Python.
`summarize` skips the Trade objects: exact net P&L, trade count, trades per trading day and the equity curve.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ibot.backtest.compiled import TwinRun
from ibot.backtest.engine import Backtester
from ibot.backtest.report import BacktestResult, Trade
from ibot.exchange.fees import FeeModel
from ibot.exchange.matching import DailySessions
from ibot.model.instruments import Instrument
from ibot.strategies.twins._kernel_common import REASONS, equity_nb, round_trips
from ibot.strategy.base import Strategy

__all__ = ["BarData", "Fills", "Summary", "build_result", "event_driven", "prepare", "summarize", "supported"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BarData:
    """Validated bars in the shapes the kernels read; build once with `prepare`, reuse for every trial."""

    instrument: Instrument
    ts: I64
    close: F64  # the bar floats, for the comparisons the strategies make in floats
    high: F64
    low: F64
    open_t: I64  # prices in ticks, for fills and money
    high_t: I64
    low_t: I64
    close_t: I64
    day_ids: I64  # trading day of each bar under the run's DailySessions (metrics, DAY expiry)
    day_index: I64  # the same days numbered 0, 1, ... in the order they occur (days without bars skipped)
    expiry: I64  # when a DAY order sent during the bar expires: sessions.end_of(ts)
    strategy_day: I64  # the strategies' own trading day (18:00 America/New_York roll, trading_day_bounds)


class Fills(NamedTuple):
    """What a kernel returns: `n` fills (bar index, side +1/-1, quantity, price in ticks, reason code)
    and, per bar, the position and cash (ticks) after that bar's fills and the number of fills so far. Logs
    are (bar index, message) pairs."""

    n: int
    bar: I64
    sign: I64
    qty: I64
    px: I64
    reason: I64
    position: I64
    cash: I64
    fills_upto: I64
    logs: list[tuple[int, str]]


class Summary(NamedTuple):
    """The objective's inputs without Trade objects. `trades_per_day[d]` counts the round trips that closed
    on trading day d (d indexes the days present in the bars, in order)."""

    net_pnl: Decimal
    trades: int
    trades_per_day: I64
    equity: F64


def prepare(instrument: Instrument, bars: Any, sessions: DailySessions | None = None) -> BarData:
    """Validate `bars` as the Backtester does (the same BarDataError messages); precompute kernel inputs."""
    bt = Backtester(instrument, Strategy(), bars)  # validation only: nothing runs
    cols = bt._cols
    o_t, h_t, l_t, c_t = bt._ticks
    ts = cols.ts
    sessions = sessions or DailySessions()
    day_ids = sessions.day_ids(ts)
    return BarData(
        instrument=instrument,
        ts=ts,
        close=cols.close,
        high=cols.high,
        low=cols.low,
        open_t=o_t,
        high_t=h_t,
        low_t=l_t,
        close_t=c_t,
        day_ids=day_ids,
        day_index=np.cumsum(np.concatenate(([0], np.diff(day_ids) != 0)), dtype=np.int64),
        expiry=_per_day(ts, day_ids, sessions.end_of),
        strategy_day=DailySessions().day_ids(ts),
    )


def _per_day(ts: I64, day_ids: I64, end_of: Callable[[int], int]) -> I64:
    """end_of(ts[i]) for every bar, asked once per trading day (end_of is constant within a day id)."""
    starts = np.flatnonzero(np.concatenate(([True], np.diff(day_ids) != 0)))
    ends = np.array([end_of(int(ts[k])) for k in starts], dtype=np.int64)
    return np.repeat(ends, np.diff(np.append(starts, len(ts))))


def supported(spec: TwinRun, strategy_type: type[Strategy]) -> bool:
    """Whether a twin reproduces this run: the strategy is exactly the twin's class (a subclass may change
    its logic), the fee model is the plain per-contract FeeModel, and no bar-volume cap splits fills."""
    return (
        type(spec.strategy) is strategy_type
        and type(spec.fees) is FeeModel
        and spec.rules.bar_volume_participation is None
    )


def event_driven(spec: TwinRun) -> BacktestResult:
    """The run on the event-driven Backtester (for what a twin does not reproduce)."""
    return Backtester(
        spec.instrument,
        spec.strategy,
        spec.bars,
        fees=spec.fees,
        rules=spec.rules,
        initial_capital=spec.initial_capital,
        sessions=spec.sessions,
        close_at_end=spec.close_at_end,
    ).run()


def _fee_floats(fills: Fills, fees: FeeModel) -> F64:
    """float(commission(qty)) per fill, as the engine adds them; one Decimal per distinct quantity."""
    qty = fills.qty[: fills.n]
    if not len(qty):
        return np.zeros(0)
    top = int(qty.max())
    if top > 4 * len(qty) + 64:  # few fills of big quantities: a sort beats a table that large
        uniq, inv = np.unique(qty, return_inverse=True)
        return np.array([float(fees.commission(int(q))) for q in uniq])[inv]
    table = np.zeros(top + 1)
    for q in np.flatnonzero(np.bincount(qty, minlength=top + 1)).tolist():
        table[q] = float(fees.commission(q))
    return table[qty]


def equity_curve(data: BarData, fills: Fills, fees: FeeModel, initial_capital: Decimal) -> F64:
    """Equity marked at each bar's close, the engine's formula: capital + (cash + position x close) ticks x
    tick value - fees so far (float fees summed in fill order)."""
    cum = np.concatenate(([0.0], np.cumsum(_fee_floats(fills, fees))))
    tick_value = float(data.instrument.tick_value)
    return equity_nb(
        fills.cash, fills.position, data.close_t, fills.fills_upto, cum, float(initial_capital), tick_value
    )


def _trips(fills: Fills) -> tuple[I64, ...]:
    n = fills.n
    return round_trips(n, fills.bar[:n], fills.sign[:n], fills.qty[:n], fills.px[:n], fills.reason[:n])


def summarize(data: BarData, fills: Fills, fees: FeeModel, initial_capital: Decimal) -> Summary:
    """Net P&L (exact: tick value x gross ticks - per-contract fee x contracts, over closed round trips),
    the number of round trips, round trips per trading day (by exit bar) and the equity curve."""
    _, x_bar, sign, _, in_v, _, out_v, fee_u, *_ = _trips(fills)
    gross_ticks = int(np.sum(sign * (out_v - in_v)))
    net = Decimal(gross_ticks) * data.instrument.tick_value - fees.per_contract * int(np.sum(fee_u))
    days = data.day_index
    per_day = np.bincount(days[x_bar], minlength=int(days[-1]) + 1)
    return Summary(
        net, len(x_bar), per_day.astype(np.int64), equity_curve(data, fills, fees, initial_capital)
    )


def _avg_prices(inst: Instrument, value: I64, qty: I64) -> list[float]:
    """The engine's average fill price per trade: the grid price when value / qty is whole ticks, else
    value / qty x tick (the same float operations, on int64 values far below 2**53)."""
    whole, rest = np.divmod(value, qty)
    out = value / qty * float(inst.tick_size)
    exact = rest == 0
    uniq, inv = np.unique(whole[exact], return_inverse=True)
    out[exact] = np.array([inst.from_ticks(int(t)) for t in uniq.tolist()], dtype=np.float64)[inv]
    return out.tolist()


def build_result(spec: TwinRun, data: BarData, fills: Fills, started: float) -> BacktestResult:
    """The BacktestResult the event-driven Backtester returns for the same run."""
    inst = data.instrument
    ts = data.ts.tolist()
    trips = _trips(fills)
    entry_px = _avg_prices(inst, trips[4], trips[3])
    exit_px = _avg_prices(inst, trips[6], trips[5])
    gross_ticks = trips[2] * (trips[6] - trips[4])
    ticks = (gross_ticks / trips[3]).tolist()
    e_bar, x_bar, sign, fee_u, in_r, out_r, max_q = (trips[k].tolist() for k in (0, 1, 2, 7, 8, 9, 10))
    gross_l = gross_ticks.tolist()
    per_contract = spec.fees.per_contract
    # Money repeats (a trade's gross ticks and fee contracts take few values): one Decimal per distinct value.
    money: dict[tuple[int, int], tuple[Decimal, Decimal, Decimal]] = {}
    trades = []
    for k in range(len(e_bar)):
        gross_tc = gross_l[k]
        key = (gross_tc, fee_u[k])
        m = money.get(key)
        if m is None:
            gross = inst.pnl(gross_tc, 1)
            fee = per_contract * fee_u[k]
            m = money[key] = (gross, fee, gross - fee)
        trades.append(
            Trade(
                ts[e_bar[k]],
                ts[x_bar[k]],
                "LONG" if sign[k] > 0 else "SHORT",
                max_q[k],
                entry_px[k],
                exit_px[k],
                ticks[k],
                *m,
                REASONS[in_r[k]],
                REASONS[out_r[k]],
            )
        )
    return BacktestResult(
        instrument=inst,
        strategy=spec.strategy.name,
        params=dict(spec.strategy.p),
        ts=data.ts,
        close=data.close,
        position=fills.position,
        equity=equity_curve(data, fills, spec.fees, spec.initial_capital),
        day_ids=data.day_ids,
        trades=trades,
        initial_capital=spec.initial_capital,
        fills=fills.n,
        elapsed_s=time.perf_counter() - started,
        logs=[(ts[b], msg) for b, msg in fills.logs],
    )

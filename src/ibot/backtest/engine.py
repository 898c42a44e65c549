"""The event-driven backtester: any Strategy, bar by bar, through the one matching engine.

Per bar t, in this order: the clock moves to the bar's time; working orders are matched against bar t
(orders sent during bar t-1 or earlier; see ibot.exchange.matching for the fill rules); fills reach the
strategy's on_fill / on_order_update; the registered indicators are fed bar t; then Strategy.on_bar(bar t)
runs and whatever it submits first meets bar t+1. Positions and cash are kept in integer ticks and turned into
exact Decimal money only at the end. Equity is marked at each bar's close.

The loop is built for speed (1M bars in a few seconds): bars are built from Python lists (not numpy scalars),
a few thousand bars at a time (the cyclic collector traverses every young list item on its passes), the
matching engine is skipped while no order works, and position/cash are recorded only when a fill changes
them; the per-bar arrays are rebuilt with numpy at the end. The order path is kept lean too (bench/backtest.py
part (d)): the engine's status updates reach the strategy without a hop through this context, a fill is
booked and passed on in one call, fees are memoised per quantity, the value objects of every order are built
without a frozen dataclass's per-field cost, and a lone market order fills at the next open in one step (see
ibot.exchange.matching).
"""

from __future__ import annotations

import gc
import math
import threading
import time as _time
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from ibot.backtest.report import BacktestResult, Trade
from ibot.exchange.fees import IB_MICRO_FUTURES, FeeModel
from ibot.exchange.matching import DailySessions, FillRules, MatchingEngine
from ibot.model.clock import Clock
from ibot.model.errors import BarDataError
from ibot.model.instruments import Instrument
from ibot.model.market import Bar, ns_to_datetime
from ibot.model.orders import Fill, OrderRequest, OrderUpdate, Side
from ibot.strategy.base import Strategy

__all__ = ["BacktestContext", "Backtester", "RollHook"]

I = TypeVar("I")  # noqa: E741
_NAN = math.nan
_BUY = Side.BUY
_CHUNK = 65_536  # bars between progress updates (the inner loop has no progress check)
# Bars whose columns are Python lists at a time. Short lists matter: the cyclic collector's passes (due every
# few thousand kept objects, i.e. fills) traverse every item of every young list, and 10 lists of a whole
# chunk made those passes several percent of a run with many fills.
_LIST_BARS = 4_096
_SLOTS = 4  # batched indicators whose values the bar loop sets without an inner loop


class _GcBatches:
    """Raises CPython's generation-0 collection threshold while any bar loop runs; the last loop to end
    restores it. A loop allocates several short-lived objects per order (request, fill, status updates), and
    at the default threshold (700) the cyclic collector runs every few hundred orders: 5-10% of a run. With
    10,000 it runs less often over more objects; cycles are still collected, and no result changes."""

    def __init__(self, gen0: int) -> None:
        self._gen0 = gen0
        self._lock = threading.Lock()
        self._loops = 0
        self._saved: tuple[int, ...] = ()

    def enter(self) -> None:
        with self._lock:
            if self._loops == 0:
                self._saved = gc.get_threshold()
                if self._saved[0] < self._gen0:
                    gc.set_threshold(self._gen0, *self._saved[1:])
            self._loops += 1

    def leave(self) -> None:
        with self._lock:
            self._loops -= 1
            if self._loops == 0:
                gc.set_threshold(*self._saved)


_GC_BATCHES = _GcBatches(10_000)


class _Sink:
    """Takes the values of unused indicator slots in the bar loop."""

    __slots__ = ("value",)


class _Columns(NamedTuple):
    ts: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]


def _columns(bars: Any) -> _Columns:
    """(ts, open, high, low, close, volume) arrays from a BarFrame, a mapping or tuple of arrays, or Bars."""
    names = ("ts", "open", "high", "low", "close", "volume")
    if all(hasattr(bars, n) for n in names):
        cols = [getattr(bars, n) for n in names]
    elif isinstance(bars, dict):
        cols = [bars[n] for n in names]
    elif isinstance(bars, tuple) and len(bars) == 6 and hasattr(bars[0], "__len__"):
        cols = list(bars)
    else:
        rows = list(bars)
        cols = [[r[k] for r in rows] for k in range(6)] if rows else [[] for _ in range(6)]
    f = np.float64
    return _Columns(
        np.asarray(cols[0], dtype=np.int64),
        *(np.asarray(c, dtype=f) for c in cols[1:]),
    )


def _bad(what: str, ts: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> BarDataError:
    k = int(np.flatnonzero(mask)[0])
    when = ns_to_datetime(int(ts[k])).isoformat() if len(ts) > k else "?"
    return BarDataError(f"bars: {what} at row {k} ({when}); {int(mask.sum())} row(s) affected")


class BacktestContext:
    """The Context a strategy sees in a backtest, and the matching engine's listener (fills, statuses)."""

    def __init__(
        self, instrument: Instrument, strategy: Strategy, engine_factory: Callable[..., MatchingEngine]
    ):
        self.instrument = instrument
        self.clock = Clock()
        self.strategy = strategy
        # The engine's status updates go straight to the strategy (this context adds nothing to them).
        self.on_order_update: Callable[[OrderUpdate], None] = strategy.on_order_update
        self._tell: Callable[[Fill], Any] = strategy.on_fill  # on_fill's last step (book() swaps it out)
        self.engine = engine_factory(self)
        self._submit = self.engine.submit
        self.feeds: list[Callable[[Bar], Any]] = []
        self.indicators: list[tuple[Any, Callable[[Bar], Any]]] = []  # (indicator, its feed) in order
        self.logs: list[tuple[int, str]] = []
        self._last = _NAN
        self.position = 0  # signed contracts, filled orders only
        self._inv_tick = 1.0 / float(instrument.tick_size)
        self._cash = 0  # -sum(signed qty x price in ticks): equity in ticks = cash + position x price
        self._fees_f = 0.0  # cumulative fees as a float, for the equity curve (trades keep exact Decimals)
        # Memos: the engine hands out one Decimal per fill quantity, so few distinct fees recur.
        self._fee_float: dict[Decimal, float] = {}
        self._fee_split: dict[tuple[Decimal, int, int], tuple[Decimal, Decimal]] = {}
        self.fills = 0
        # Position/cash change points: (ts, position after, cash after, cumulative fees after)
        self.changes: list[tuple[int, int, int, float]] = []
        # Open round trip: [entry_ts, sign, entered qty, entered value (ticks x qty), exited qty,
        #                   exited value, fees, entry reason, max abs position]
        self._open: list[Any] | None = None
        # Raw round trips (the finished open-trip list, exit ts, exit reason), turned into Trades at the end
        self.closed: list[tuple[list[Any], int, str]] = []

    # Context protocol --------------------------------------------------------------------------------
    # `position` is a plain attribute here (set only by `book`), read once per bar by most strategies.

    @property
    def last_price(self) -> float:
        return self._last

    @property
    def bid(self) -> float:
        return _NAN

    @property
    def ask(self) -> float:
        return _NAN

    def indicator(self, ind: I) -> I:
        feed = getattr(ind, "update_bar", None)
        if feed is None:
            update = getattr(ind, "update", None)
            if update is None:
                raise TypeError(f"indicator {ind!r} has neither update_bar(bar) nor update(x)")
            feed = partial(_feed_close, update)
        self.feeds.append(feed)
        self.indicators.append((ind, feed))
        return ind

    def submit(self, request: OrderRequest) -> str:
        return self._submit(request, self.clock.ns)

    def cancel(self, client_order_id: str) -> None:
        """Cancel a working order; an order already filled or cancelled is left alone (as a late cancel)."""
        if self.engine.is_live(client_order_id):
            self.engine.cancel(client_order_id, self.clock.ns)

    def cancel_all(self) -> None:
        self.engine.cancel_all(self.clock.ns)

    def open_orders(self) -> list[OrderRequest]:
        return self.engine.open_orders()

    def log(self, message: str) -> None:
        self.logs.append((self.clock.ns, message))

    # Listener (on_order_update is the strategy's own, set in __init__) ----------------------------------
    def book(self, fill: Fill) -> None:
        """Position, cash and round-trip bookkeeping for one execution (a roll, the end of data); the
        strategy is not told. on_fill does the bookkeeping, telling nobody meanwhile."""
        tell = self._tell
        self._tell = _ignore
        try:
            self.on_fill(fill)
        finally:
            self._tell = tell

    def on_fill(self, fill: Fill) -> None:
        """An execution from the engine: booked (integer ticks, exact fees), then given to the strategy. One
        function rather than book + strategy call: this runs for every fill."""
        qty = fill.quantity
        sign = 1 if fill.side is _BUY else -1
        p = round(fill.price * self._inv_tick)
        ts = fill.ts
        pos = self.position
        new = pos + sign * qty
        self._cash = cash = self._cash - sign * qty * p
        fee = fill.commission
        fee_f = self._fee_float.get(fee)
        if fee_f is None:
            fee_f = self._fee_float[fee] = float(fee)
        self._fees_f = fees_f = self._fees_f + fee_f
        self.fills += 1
        tr = self._open
        if tr is None or pos == 0:
            self._open = [ts, sign, qty, qty * p, 0, 0, fee, fill.reason, qty]
        elif pos * sign > 0:  # adding to the position
            tr[2] += qty
            tr[3] += qty * p
            tr[6] += fee
            tr[8] = max(tr[8], abs(new))
        else:
            closing = qty if qty < -pos * sign else -pos * sign  # min(qty, abs(pos)): pos is against sign
            if closing == qty:
                part = rest_fee = fee
            else:  # the fee is split pro rata between the closed and the opened part
                key = (fee, closing, qty)
                split = self._fee_split.get(key)
                if split is None:
                    part = fee * closing / qty
                    split = self._fee_split[key] = (part, fee - part)
                part, rest_fee = split
            tr[4] += closing
            tr[5] += closing * p
            tr[6] += part
            if new == 0 or new * pos < 0:
                self.closed.append((tr, ts, fill.reason))
                self._open = None
                if new:  # reversal: the rest opens the next round trip
                    rest = qty - closing
                    self._open = [ts, sign, rest, rest * p, 0, 0, rest_fee, fill.reason, rest]
        self.position = new
        self.changes.append((ts, new, cash, fees_f))
        self._tell(fill)


class RollHook(Protocol):
    """Rolls a position across futures months (ibot.backtest.rolls): called with the context after the
    strategy has seen bar `row`, for each row in `rows` (the roll bars of a continuous series)."""

    @property
    def rows(self) -> Sequence[int]: ...

    def __call__(self, ctx: BacktestContext, row: int) -> None: ...


def _chunks(n: int, cuts: Sequence[int] = ()) -> list[tuple[int, int]]:
    """[start, stop) of the bar loop's chunks: every _CHUNK bars, and one ending at each row in `cuts`."""
    stops = sorted({*range(_CHUNK, n, _CHUNK), n, *(r + 1 for r in cuts if 0 <= r < n)})
    return list(zip([0, *stops[:-1]], stops, strict=True))


class Backtester:
    """Run one strategy over one instrument's bars. `run()` returns a BacktestResult (report, charts)."""

    def __init__(
        self,
        instrument: Instrument,
        strategy: Strategy,
        bars: Any,
        fees: FeeModel | None = None,
        slippage_ticks: int = 0,
        rules: FillRules | None = None,
        initial_capital: Decimal | int | str = Decimal(25_000),
        sessions: DailySessions | None = None,
        close_at_end: bool = True,
        roll_hook: RollHook | None = None,
    ) -> None:
        self.instrument = instrument
        self.roll_hook = roll_hook
        self.strategy = strategy
        self.fees = fees if fees is not None else IB_MICRO_FUTURES
        if rules is None:
            rules = FillRules(slippage_ticks=slippage_ticks)
        elif slippage_ticks and rules.slippage_ticks != slippage_ticks:
            raise ValueError("give slippage either as slippage_ticks or inside rules, not both")
        self.rules = rules
        self.initial_capital = Decimal(initial_capital)
        self.sessions = sessions or DailySessions()
        self.close_at_end = close_at_end
        self._cols = _columns(bars)
        self._ticks = self._validate()

    def _validate(self) -> tuple[npt.NDArray[np.int64], ...]:
        """Check bars once, vectorized: finite, sane OHLC, increasing time, prices on the tick grid."""
        ts, o, h, lo, c, v = self._cols
        n = len(ts)
        for name, col in zip(("open", "high", "low", "close", "volume"), (o, h, lo, c, v), strict=True):
            if len(col) != n:
                raise BarDataError(f"bars: column {name} has {len(col)} rows, ts has {n}")
            bad = ~np.isfinite(col)
            if bad.any():
                raise _bad(f"{name} is not a finite number", ts, bad)
        if n == 0:
            raise BarDataError(f"bars: no bars to backtest for {self.instrument.key} (the series is empty)")
        if n > 1:
            step = np.diff(ts)
            # Row k+1 is the offender when ts[k+1] <= ts[k]; report its own index and time.
            dup = np.concatenate(([False], step == 0))
            if dup.any():
                raise _bad("duplicate timestamp (same time as the row before)", ts, dup)
            back = np.concatenate(([False], step < 0))
            if back.any():
                raise _bad("time goes backwards (bars are not sorted)", ts, back)
        bad = (h < lo) | (o > h) | (o < lo) | (c > h) | (c < lo)
        if bad.any():
            raise _bad("open/close outside [low, high] or high < low", ts, bad)
        tick = float(self.instrument.tick_size)
        out = []
        for name, col in zip(("open", "high", "low", "close"), (o, h, lo, c), strict=True):
            scaled = col / tick
            t = np.rint(scaled)
            bad = np.abs(scaled - t) > 1e-6
            if bad.any():
                raise _bad(f"{name} is off the tick grid of {self.instrument.tick_size}", ts, bad)
            out.append(t.astype(np.int64))
        return tuple(out)

    def _engine(self, ctx: BacktestContext) -> MatchingEngine:
        return MatchingEngine(self.instrument, ctx, self.rules, self.fees, day_end=self.sessions.end_of)

    def run(
        self, progress: bool = False, on_progress: Callable[[int, int], None] | None = None
    ) -> BacktestResult:
        """Run the whole series once; `on_progress(done, total)` is called every 65,536 bars and at the end
        (the application layer turns it into its ProgressUpdate); `progress` draws a rich bar itself."""
        ctx = BacktestContext(self.instrument, self.strategy, self._engine)
        n = len(self._cols[0])
        started = _time.perf_counter()
        self.strategy.start(ctx)
        # Indicators that can compute the whole series at once, bit for bit as bar by bar (`batch`), are
        # computed here and their value set per bar; the others are fed each bar as on a live feed.
        batched, feeds = self._batch_indicators(ctx)
        ctx.feeds = feeds  # an indicator registered during the run is fed bar by bar from then on
        nans = [_NAN] * n
        slots = (batched + [(_Sink(), nans)] * _SLOTS)[:_SLOTS]
        extra = batched[_SLOTS:]
        lean = len(batched) <= 1  # the lean loop sets one indicator's value per bar

        bar_progress: Any = None
        task: Any = None
        if progress:
            from rich.progress import Progress

            bar_progress = Progress(transient=True)
            bar_progress.start()
            task = bar_progress.add_task(f"backtest {self.strategy.name}", total=n)
        hook = self.roll_hook
        hook_rows = frozenset(hook.rows) if hook is not None else frozenset()
        _GC_BATCHES.enter()
        try:
            for start, stop in _chunks(n, sorted(hook_rows)):
                for a in range(start, stop, _LIST_BARS):
                    b = min(a + _LIST_BARS, stop)
                    if lean:
                        self._lean_bars(ctx, a, b, slots[0])
                    else:
                        self._bars(ctx, a, b, slots, extra)
                if hook is not None and stop - 1 in hook_rows:
                    hook(ctx, stop - 1)  # a roll bar ends its chunk: roll the position at its close
                if bar_progress is not None:
                    bar_progress.update(task, completed=stop)
                if on_progress is not None:
                    on_progress(stop, n)
        finally:
            _GC_BATCHES.leave()
            if bar_progress is not None:
                bar_progress.stop()
        if self.close_at_end and ctx.position and n:
            last = self.instrument.from_ticks(int(self._ticks[3][-1]))
            q = ctx.position
            ctx.book(
                Fill(
                    "end-of-data",
                    self.instrument.symbol,
                    Side.SELL if q > 0 else Side.BUY,
                    abs(q),
                    last,
                    int(self._cols.ts[-1]),
                    self.fees.commission(abs(q)),
                    "end-of-data",
                    "end of data",
                )
            )
        elapsed = _time.perf_counter() - started
        return self._result(ctx, elapsed)

    def _bars(
        self,
        ctx: BacktestContext,
        start: int,
        stop: int,
        slots: list[tuple[Any, list[float]]],
        extra: list[tuple[Any, list[float]]],
    ) -> None:
        """The bar loop over rows [start, stop): see the module doc for what happens per bar."""
        # Python lists per chunk: floats/ints, not numpy scalars, and bounded memory.
        ts_l, o_l, h_l, l_l, c_l, v_l = (a[start:stop].tolist() for a in self._cols)
        ot, ht, lt, ct = (a[start:stop].tolist() for a in self._ticks)
        bar_it = map(partial(tuple.__new__, Bar), zip(ts_l, o_l, h_l, l_l, c_l, v_l, strict=True))
        working = ctx.engine.working  # the engine mutates this list in place; empty -> nothing to match
        match_bar = ctx.engine.on_bar_ticks
        on_bar = self.strategy.on_bar
        clock = ctx.clock
        feeds = ctx.feeds
        # The first _SLOTS batched indicators get their value from the zip (unused slots write to a sink), any
        # further ones from a per-bar loop.
        (s0, x0), (s1, x1), (s2, x2), (s3, x3) = ((ind, vals[start:stop]) for ind, vals in slots)
        more = [(ind, vals[start:stop]) for ind, vals in extra]
        rows = zip(enumerate(bar_it), x0, x1, x2, x3, strict=True)
        for (i, bar), v0, v1, v2, v3 in rows:
            clock.ns = bar[0]
            if working:
                match_bar(bar[0], ot[i], ht[i], lt[i], ct[i], bar[5])
            ctx._last = bar[4]
            s0.value = v0
            s1.value = v1
            s2.value = v2
            s3.value = v3
            if more:
                for ind, vals in more:
                    ind.value = vals[i]
            if feeds:
                for feed in feeds:
                    feed(bar)
            on_bar(bar)

    def _lean_bars(self, ctx: BacktestContext, start: int, stop: int, slot: tuple[Any, list[float]]) -> None:
        """_bars with at most one batched indicator (most strategies): the same steps per bar, without the
        three idle slots (a few percent of a bar's time)."""
        ts_l, o_l, h_l, l_l, c_l, v_l = (a[start:stop].tolist() for a in self._cols)
        ot, ht, lt, ct = (a[start:stop].tolist() for a in self._ticks)
        bar_it = map(partial(tuple.__new__, Bar), zip(ts_l, o_l, h_l, l_l, c_l, v_l, strict=True))
        working = ctx.engine.working
        match_bar = ctx.engine.on_bar_ticks
        on_bar = self.strategy.on_bar
        clock = ctx.clock
        feeds = ctx.feeds
        s0, x0 = slot[0], slot[1][start:stop]
        for (i, bar), v0 in zip(enumerate(bar_it), x0, strict=True):
            clock.ns = bar[0]
            if working:
                match_bar(bar[0], ot[i], ht[i], lt[i], ct[i], bar[5])
            ctx._last = bar[4]
            s0.value = v0
            if feeds:
                for feed in feeds:
                    feed(bar)
            on_bar(bar)

    def _batch_indicators(self, ctx: BacktestContext) -> tuple[list[tuple[Any, list[float]]], list[Any]]:
        """Split the registered indicators into (indicator, values for every bar) and per-bar feeds."""
        cols = self._cols
        columns = {"open": cols.open, "high": cols.high, "low": cols.low, "close": cols.close}
        batched: list[tuple[Any, list[float]]] = []
        feeds: list[Any] = []
        for ind, feed in ctx.indicators:
            batch = getattr(ind, "batch", None)
            values = batch(columns) if batch is not None else None
            if values is None:
                feeds.append(feed)
            else:
                batched.append((ind, values))
        return batched, feeds

    def _result(self, ctx: BacktestContext, elapsed: float) -> BacktestResult:
        ts = self._cols[0]
        close_t = self._ticks[3]
        n = len(ts)
        if ctx.changes:
            chg_ts, chg_pos, chg_cash, chg_fees = zip(*ctx.changes, strict=True)
            idx = np.searchsorted(np.asarray(chg_ts, dtype=np.int64), ts, side="right") - 1
            has = idx >= 0
            safe = np.where(has, idx, 0)
            pos = np.where(has, np.asarray(chg_pos, dtype=np.int64)[safe], 0)
            cash = np.where(has, np.asarray(chg_cash, dtype=np.int64)[safe], 0)
            fees = np.where(has, np.asarray(chg_fees, dtype=np.float64)[safe], 0.0)
        else:
            pos = np.zeros(n, dtype=np.int64)
            cash = np.zeros(n, dtype=np.int64)
            fees = np.zeros(n, dtype=np.float64)
        eq_ticks = cash + pos * close_t
        equity = np.asarray(
            float(self.initial_capital) + eq_ticks * float(self.instrument.tick_value) - fees,
            dtype=np.float64,
        )
        inst = self.instrument
        tick = float(inst.tick_size)
        trades = []
        for (
            entry_ts,
            sign,
            in_q,
            in_v,
            out_q,
            out_v,
            fee,
            in_reason,
            max_q,
        ), exit_ts, out_reason in ctx.closed:
            gross_tc = sign * (out_v - in_v)  # ticks x contracts, exact
            gross = inst.pnl(gross_tc, 1)
            trades.append(
                Trade(
                    entry_ts=entry_ts,
                    exit_ts=exit_ts,
                    side="LONG" if sign > 0 else "SHORT",
                    quantity=max_q,
                    entry_price=_avg_price(inst, in_v, in_q, tick),
                    exit_price=_avg_price(inst, out_v, out_q, tick),
                    ticks=gross_tc / in_q,
                    gross=gross,
                    fees=fee,
                    net=gross - fee,
                    entry_reason=in_reason,
                    exit_reason=out_reason,
                )
            )
        return BacktestResult(
            instrument=inst,
            strategy=self.strategy.name,
            params=dict(self.strategy.p),
            ts=ts,
            close=self._cols.close,
            position=pos,
            equity=equity,
            day_ids=self.sessions.day_ids(ts),
            trades=trades,
            initial_capital=self.initial_capital,
            fills=ctx.fills,
            elapsed_s=elapsed,
            logs=ctx.logs,
        )


def _ignore(fill: Fill) -> None:
    """Nobody to tell (BacktestContext.book)."""


def _feed_close(update: Callable[[float], Any], bar: Bar) -> None:
    update(bar[4])


def _avg_price(inst: Instrument, value: int, qty: int, tick: float) -> float:
    q, r = divmod(value, qty)
    return inst.from_ticks(q) if r == 0 else value / qty * tick

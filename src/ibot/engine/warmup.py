"""Warm-up: the bars a live strategy's indicators are filled with before the strategy may act (issue 15).

What it promises:
- the bars are the last `count` closed bars of the strategy's bar size, in time order, one per ts: first the
  stored backward-spread continuous series of the product (`ContinuousStore` under the data directory), when
  its prices are the traded month's own, then the traded month's completed bars from IB after the stored
  series' end up to now (`HistoricalBars.fetch`, complete_only, over the session's connection);
- a backward-spread series keeps its last month raw, so its prices are the traded month's when its current
  month (`ibot.data.continuous.current_month`: the last bar's month, or the month it rolled into at the
  close of its last bar, the rows then being already shifted by that roll's gap) is the traded month. A
  series whose current month is another month is not used: one WARNING says which month it ends in (and
  that `ibot continuous` extends it once the traded month's bars are stored);
- a stored series that cannot be read, or an IB request that fails, is a WARNING, never fatal: what could
  be had is used (nothing, at worst: the strategy then warms on live bars);
- nothing here calls the strategy or moves the market clock: the caller feeds the bars to the indicators.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ibot.brokers.ib.market_data import HistoricalBars
from ibot.data.bars import BarFrame, bar_size_name, format_time, parse_interval
from ibot.data.continuous import Adjust, ContinuousStore, current_month
from ibot.engine.session import TradingSession
from ibot.history.plan import bar_spec
from ibot.model import catalog
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import NS_PER_SECOND, Bar, ns_to_datetime

__all__ = ["Warmup", "stored_bars", "warm_up"]

log = logging.getLogger("ibot.engine")


@dataclass(frozen=True, slots=True)
class Warmup:
    """The warm-up of one strategy: its bars (time order) and where they came from."""

    month: str  # the traded instrument's key ("MESH5")
    bars: tuple[Bar, ...]
    from_store: int
    from_ib: int

    def describe(self) -> str:
        if not self.bars:
            return f"warm-up of {self.month}: no bars (the indicators fill from live bars)"
        first, last = format_time(self.bars[0].ts), format_time(self.bars[-1].ts)
        return (
            f"warm-up of {self.month}: {len(self.bars)} bars ({self.from_store} from the stored continuous "
            f"series, {self.from_ib} from IB), {first} .. {last}"
        )


def stored_bars(root: Path | None, inst: Instrument, bar: str, before_ns: int) -> BarFrame:
    """The stored backward-spread series of `inst`'s product at `bar`, bars opening before `before_ns`, when
    its prices are `inst`'s own; an empty frame otherwise (a WARNING says why, unless none is stored)."""
    if root is None or inst.sec_type is not SecType.FUT:
        return BarFrame.empty()
    product = inst.symbol.upper()
    try:
        stored = ContinuousStore(root).read(product, bar, Adjust.BACKWARD_SPREAD)
    except Exception as exc:  # a damaged file: the warm-up goes on without it
        log.warning("warm-up: the stored %s series is not used: %s", product, exc)
        return BarFrame.empty()
    if stored is None or not len(stored[0]):
        return BarFrame.empty()
    series = stored[0]
    month, _ = current_month(series, catalog.get_instrument(product))
    if month != inst.key:
        log.warning(
            "warm-up: the stored %s %s series ends in %s (last bar %s) and no roll to %s is recorded in it: "
            "its prices are not %s's, so it is not used (store %s's bars and run `ibot continuous` to extend "
            "it)",
            product,
            bar_size_name(bar),
            month,
            format_time(int(series.bars.ts[-1])),
            inst.key,
            inst.key,
            inst.key,
        )
        return BarFrame.empty()
    return series.bars.between(None, before_ns)


async def ib_bars(session: TradingSession, inst: Instrument, bar: str, after_ns: int) -> BarFrame:
    """`inst`'s completed bars from IB opening after `after_ns`: one request of IB's largest duration for
    the bar size, ending at the market's now (a WARNING and an empty frame when it fails)."""
    try:
        spec = bar_spec(bar)
        history = HistoricalBars(session.connection, session.contracts)
        # an explicit end (the market's second) keeps a quick restart's request from being identical to the
        # last one (IB's 15-second pacing rule: 162 "pacing violation")
        end = ns_to_datetime(session.market_clock() // NS_PER_SECOND * NS_PER_SECOND)
        frame = await history.fetch(inst, spec.duration, spec.ib_bar, end=end, complete_only=True)
    except Exception as exc:
        log.warning(
            "warm-up: no %s bars of %s from IB (%s: %s); the indicators fill from live bars from here",
            bar_size_name(bar),
            inst.key,
            type(exc).__name__,
            exc,
        )
        return BarFrame.empty()
    return frame.between(after_ns + 1, None)


def merge(stored: BarFrame, fetched: BarFrame, count: int) -> tuple[tuple[Bar, ...], int, int]:
    """The last `count` bars of `stored` then `fetched` (one per ts, the later source winning), with how many
    of them each gave."""
    by_ts: dict[int, tuple[Bar, bool]] = {b.ts: (b, True) for b in stored}
    by_ts.update((b.ts, (b, False)) for b in fetched)
    chosen = [by_ts[ts] for ts in sorted(by_ts)][-count:] if count > 0 else []
    from_store = sum(1 for _, s in chosen if s)
    return tuple(b for b, _ in chosen), from_store, len(chosen) - from_store


async def warm_up(
    session: TradingSession, inst: Instrument, bar: str, count: int, data_dir: Path | None
) -> Warmup:
    """The last `count` closed `bar` bars of `inst`: the stored continuous series, then IB's bars after it."""
    now = session.market_clock()
    stored = stored_bars(data_dir, inst, bar, now - parse_interval(bar) + 1)  # closed bars only
    after = int(stored.ts[-1]) if len(stored) else -(2**63)
    fetched = await ib_bars(session, inst, bar, after)
    bars, from_store, from_ib = merge(stored, fetched, count)
    warm = Warmup(inst.key, bars, from_store, from_ib)
    log.info("runner: %s", warm.describe())
    return warm

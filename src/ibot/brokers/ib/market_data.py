"""Live market data from IB into ibot's bar pipeline, and historical bars into the BarStore.

`MarketDataFeed` streams ticks (reqMktData) and 5-second real-time bars into `BarAggregator`s and
callbacks, tells the connection's watchdog about every arrival, and subscribes everything again after 1101
or a reconnect (IB drops subscriptions then; ib_async forgets them on disconnect). `HistoricalBars`
fetches bars (epoch timestamps, formatDate=2, so no time-zone guessing) and merges completed ones into a
`BarStore`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ib_async import RealTimeBarList, Ticker

from ibot.brokers.ib.connection import IBConnection
from ibot.brokers.ib.contracts import ContractResolver
from ibot.brokers.ib.parsing import bar_from_realtime, bars_from_bardata, ticks_from_ticker
from ibot.data.bars import NS_PER_DAY, BarAggregator, BarFrame, parse_interval, validate_bars
from ibot.data.store import BarStore
from ibot.exchange.hours import TradingHours, hours_for
from ibot.model.errors import BarDataError, IbotError
from ibot.model.instruments import Instrument
from ibot.model.market import NS_PER_SECOND, Bar, Tick, datetime_to_ns

__all__ = ["HistoricalBars", "HistoricalDataError", "MarketDataFeed", "Subscription"]

log = logging.getLogger("ibot.brokers.ib")

FeedKind = Literal["ticks", "bars5s"]
REAL_TIME_BAR_SECONDS = 5  # IB serves 5-second real-time bars only


class HistoricalDataError(IbotError, LookupError):
    """IB returned no usable historical bars for a request."""


@dataclass(slots=True, eq=False)
class Subscription:
    """One live stream of one instrument. `received` counts ticks or bars delivered since subscribing."""

    instrument: Instrument
    kind: FeedKind
    aggregator: BarAggregator | None = None
    on_tick: Callable[[Tick], None] | None = None
    on_bar: Callable[[Bar], None] | None = None
    what_to_show: str = "TRADES"
    use_rth: bool = False
    received: int = 0
    late_dropped: int = 0
    resubscribed: int = 0
    active: bool = True
    _handle: Any = field(default=None, repr=False)
    _handler: Any = field(default=None, repr=False)
    _last_bar_ts: int = field(default=-(2**63), repr=False)

    @property
    def key(self) -> str:
        """The watchdog's name for this feed (``MESH5:ticks``)."""
        return f"{self.instrument.key}:{self.kind}"


class MarketDataFeed:
    """Streams market data of qualified instruments over a (real-time data) connection."""

    def __init__(self, connection: IBConnection, contracts: ContractResolver) -> None:
        self.connection = connection
        self.contracts = contracts
        self._subs: list[Subscription] = []
        connection.on_resubscribe(self.resubscribe)

    @property
    def subscriptions(self) -> list[Subscription]:
        return [s for s in self._subs if s.active]

    def stream_ticks(
        self,
        instrument: Instrument,
        aggregator: BarAggregator | None = None,
        on_tick: Callable[[Tick], None] | None = None,
    ) -> Subscription:
        """Top of book and trades of `instrument` to `on_tick` and into `aggregator` (trades or mids)."""
        sub = Subscription(instrument, "ticks", aggregator=aggregator, on_tick=on_tick)
        self._start(sub)
        return sub

    def stream_bars(
        self,
        instrument: Instrument,
        aggregator: BarAggregator | None = None,
        on_bar: Callable[[Bar], None] | None = None,
        what_to_show: str = "TRADES",
        use_rth: bool = False,
    ) -> Subscription:
        """IB's 5-second real-time bars (UTC) of `instrument` to `on_bar` and into `aggregator`."""
        sub = Subscription(
            instrument,
            "bars5s",
            aggregator=aggregator,
            on_bar=on_bar,
            what_to_show=what_to_show,
            use_rth=use_rth,
        )
        self._start(sub)
        return sub

    def cancel(self, sub: Subscription) -> None:
        """Stop one stream (at IB too, when connected)."""
        sub.active = False
        self._stop(sub)
        self.connection.unwatch_feed(sub.key)
        if sub in self._subs:
            self._subs.remove(sub)

    def cancel_all(self) -> None:
        for sub in list(self._subs):
            self.cancel(sub)

    def resubscribe(self) -> None:
        """Request every active stream again (after 1101 or a reconnect)."""
        for sub in self.subscriptions:
            self._stop(sub)
            self._request(sub)
            sub.resubscribed += 1
            log.info("resubscribed %s", sub.key)

    # --- internals ------------------------------------------------------------------------------------------
    def _start(self, sub: Subscription) -> None:
        self.connection.require_connected(f"subscribe {sub.key}")
        self._subs.append(sub)
        self.connection.watch_feed(sub.key, hours_for(sub.instrument))
        self._request(sub)

    def _request(self, sub: Subscription) -> None:
        ib = self.connection.ib
        contract = self.contracts.contract(sub.instrument)
        if sub.kind == "ticks":
            ticker = ib.reqMktData(contract)
            on_tick = self._tick_handler(sub)
            ticker.updateEvent += on_tick
            sub._handle, sub._handler = ticker, on_tick
        else:
            bars = ib.reqRealTimeBars(contract, REAL_TIME_BAR_SECONDS, sub.what_to_show, sub.use_rth)
            on_bar = self._bar_handler(sub)
            bars.updateEvent += on_bar
            sub._handle, sub._handler = bars, on_bar

    def _stop(self, sub: Subscription) -> None:
        """Detach from ib_async's object and cancel at IB when the session is still up."""
        handle, handler = sub._handle, sub._handler
        sub._handle = sub._handler = None
        if handle is None:
            return
        handle.updateEvent -= handler
        ib = self.connection.ib
        if not ib.isConnected():
            return  # ib_async forgot the request with the session; nothing to cancel at IB
        try:  # after a reconnect ib_async has forgotten the old request: nothing to cancel then
            if isinstance(handle, Ticker) and handle.contract is not None:
                if ib.ticker(handle.contract) is handle:
                    ib.cancelMktData(handle.contract)
            elif isinstance(handle, RealTimeBarList) and any(b is handle for b in ib.realtimeBars()):
                ib.cancelRealTimeBars(handle)
        except ConnectionError:
            pass

    def _tick_handler(self, sub: Subscription) -> Callable[[Ticker], None]:
        def on_update(ticker: Ticker) -> None:
            if ticker.lastTimestamp is not None:  # IB's last-trade time: market time (whole seconds)
                self.connection.observe_market_time(datetime_to_ns(ticker.lastTimestamp))
            ticks = ticks_from_ticker(ticker, self.connection.clock())
            if not ticks:
                return
            for tick in ticks:
                sub.received += 1
                if sub.aggregator is not None:
                    self._feed(sub, tick)
                if sub.on_tick is not None:
                    sub.on_tick(tick)
            self.connection.feed_data(sub.key)

        return on_update

    def _bar_handler(self, sub: Subscription) -> Callable[[RealTimeBarList, bool], None]:
        def on_update(bars: RealTimeBarList, has_new_bar: bool) -> None:
            if not has_new_bar or not bars:
                return
            bar = bar_from_realtime(bars[-1])
            if bar.ts <= sub._last_bar_ts:  # repeated after a resubscribe
                return
            sub._last_bar_ts = bar.ts
            self.connection.observe_market_time(bar.ts + REAL_TIME_BAR_SECONDS * NS_PER_SECOND)  # its end
            sub.received += 1
            if sub.aggregator is not None:
                self._feed(sub, bar)
            if sub.on_bar is not None:
                sub.on_bar(bar)
            self.connection.feed_data(sub.key)

        return on_update

    def _feed(self, sub: Subscription, item: Tick | Bar) -> None:
        assert sub.aggregator is not None
        try:
            if isinstance(item, Tick):
                sub.aggregator.add_tick(item)
            else:
                sub.aggregator.add_bar(item)
        except BarDataError as exc:  # late data after a reconnect must not kill the stream
            sub.late_dropped += 1
            log.warning("%s: %s", sub.key, exc)


class HistoricalBars:
    """Historical bars over a (historical data) connection."""

    def __init__(self, connection: IBConnection, contracts: ContractResolver, timeout: float = 60.0) -> None:
        self.connection = connection
        self.contracts = contracts
        self.timeout = timeout

    async def fetch(
        self,
        instrument: Instrument,
        duration: str = "1 D",
        bar_size: str = "5 mins",
        what_to_show: str = "TRADES",
        use_rth: bool = False,
        end: datetime | None = None,
        complete_only: bool = True,
    ) -> BarFrame:
        """Bars of `instrument` (IB duration "1 D", bar size "5 mins"...), validated, sorted by ts.

        With `complete_only`, a bar still forming at the market clock's now is left out (IB sends it).
        """
        self.connection.require_connected(f"historical bars for {instrument.key}")
        ib = self.connection.ib
        contract = self.contracts.contract(instrument)
        raw = await asyncio.wait_for(
            ib.reqHistoricalDataAsync(
                contract, end or "", duration, bar_size, what_to_show, use_rth, formatDate=2, timeout=0
            ),
            self.timeout,
        )
        what = f"{bar_size} {what_to_show} bars for {instrument.key} over {duration}"
        if not raw:
            raise HistoricalDataError(f"IB returned no {what}")
        hours = hours_for(instrument)
        bars = bars_from_bardata(raw, hours)
        if complete_only:
            bars = [
                b for b in bars if _bar_end(b.ts, parse_interval(bar_size), hours) <= self.connection.clock()
            ]
        if not bars:
            raise HistoricalDataError(f"IB returned no completed {what}")
        return validate_bars(bars, what=what)

    async def backfill(
        self,
        store: BarStore,
        instrument: Instrument,
        duration: str = "1 D",
        bar_size: str = "5 mins",
        what_to_show: str = "TRADES",
        use_rth: bool = False,
    ) -> int:
        """Fetch completed bars and merge them into `store` under the instrument's key; rows stored after."""
        frame = await self.fetch(instrument, duration, bar_size, what_to_show, use_rth)
        rows = store.write(instrument.key, bar_size, frame)
        log.info("stored %d %s bars for %s (%d rows in store)", len(frame), bar_size, instrument.key, rows)
        return rows


def _bar_end(ts: int, interval_ns: int, hours: TradingHours) -> int:
    if interval_ns == NS_PER_DAY:
        return hours.nominal_open_close(hours.session_date(ts))[1]
    return ts + interval_ns

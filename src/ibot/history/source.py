"""The port the downloader talks to: where historical bars come from. The IB adapter
(`ibot.brokers.ib.historical.IBHistorySource`) implements it through ib_async; nothing here knows IB's
types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from ibot.history.classify import Failure
from ibot.model.instruments import Instrument
from ibot.model.market import Bar

__all__ = ["BarRequest", "BarsAnswer", "ContractInfo", "HistorySource"]


@dataclass(frozen=True, slots=True)
class ContractInfo:
    """A contract as the source knows it: the instrument (IB's con id, local symbol, exchange, multiplier) and
    the last trade date the source reports (IB's lastTradeDateOrContractMonth; None for a stock)."""

    instrument: Instrument
    last_trade_date: date | None
    handle: Any = None  # the adapter's own object for the contract (opaque here)

    def to_dict(self) -> dict[str, Any]:
        i = self.instrument
        return {
            "conId": i.con_id,
            "localSymbol": i.local_symbol or i.symbol,
            "symbol": i.symbol,
            "secType": i.sec_type.value,
            "lastTradeDate": self.last_trade_date.isoformat() if self.last_trade_date else None,
            "exchange": i.exchange,
            "multiplier": str(i.multiplier),
            "currency": i.currency,
        }


@dataclass(frozen=True, slots=True)
class BarRequest:
    """One historical request: bars of `bar_size` ("1 min") `what` ("TRADES") over `duration` ("1 D")
    ending at `end_ns` (UTC ns; None = now, for a range still open), regular and extended hours (useRTH=0)."""

    contract: ContractInfo
    end_ns: int | None
    duration: str
    bar_size: str
    what: str


@dataclass(frozen=True, slots=True)
class BarsAnswer:
    """What came back: bars (their open in UTC ns) or why not (`failure`); `seconds` the request took."""

    bars: list[Bar]
    failure: Failure | None = None
    seconds: float = 0.0


class HistorySource(Protocol):
    """Historical bars and contract facts from a venue."""

    async def server_time(self) -> int:
        """The venue's clock now, UTC ns (IB's server time, not this machine's)."""
        ...

    async def contract(self, instrument: Instrument) -> ContractInfo:
        """The venue's contract for a catalog month or stock, expired months included."""
        ...

    async def head_time(self, contract: ContractInfo, what: str) -> int | None:
        """The first time the venue has data for `contract` (UTC ns), None if it cannot say."""
        ...

    async def ready(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until the venue is connected again; False if it is not."""
        ...

    async def bars(self, request: BarRequest, timeout: float) -> BarsAnswer:
        """Send one historical request and wait at most `timeout` seconds for its answer."""
        ...

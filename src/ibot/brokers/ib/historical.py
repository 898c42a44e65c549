"""Historical bars from IB for the downloader (`ibot.history`): the `HistorySource` port over ib_async.

What it promises:
- futures months are asked for with includeExpired=True on exchange CME (not GLOBEX), so expired months are
  found; the contract details' lastTradeDateOrContractMonth is reported as the month's last trade date;
- one request is one reqHistoricalData with endDateTime in UTC ("yyyymmdd-hh:mm:ss"), formatDate=2 (bar times
  as UTC epoch seconds) and useRTH=0;
- an empty answer is never passed on as "no data" by itself: the error IB sent for the request (captured from
  errorEvent by the request's own contract object) and whether the wait ran out travel with the answer, and
  `ibot.history.classify` names the class. A 321 (which ib_async treats as a warning and leaves pending) ends
  the wait at once instead of at the timeout.
ib_async's Contract never leaves this module: the downloader holds it as an opaque handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from datetime import UTC, date, datetime
from typing import Any

from ib_async import Contract

from ibot.aio import cancel_and_wait
from ibot.brokers.ib.connection import IBConnection, IBConnectionError
from ibot.brokers.ib.contracts import unique_details
from ibot.brokers.ib.parsing import bars_from_bardata, contract_for, instrument_from_details
from ibot.exchange.hours import hours_for
from ibot.history.classify import Failure, FailureClass, classify
from ibot.history.source import BarRequest, BarsAnswer, ContractInfo
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import NS_PER_SECOND, datetime_to_ns

__all__ = ["IBHistorySource", "ib_end_time"]

log = logging.getLogger("ibot.history")

# Errors that end a historical request for good, even those ib_async keeps pending as warnings (321, 165 is
# informational and left to the timeout).
_ENDS_REQUEST = frozenset(
    {162, 200, 321, 322, 354, 366, 10089, 10090, 10167, 10168, 10187, 10299, 10314, 10339}
)


def ib_end_time(ts_ns: int) -> str:
    """IB's UTC form of endDateTime: ``20250305-15:00:00``."""
    return datetime.fromtimestamp(ts_ns // NS_PER_SECOND, UTC).strftime("%Y%m%d-%H:%M:%S")


class IBHistorySource:
    """`HistorySource` over one ib_async connection (the historical-data client id, 21 by default)."""

    def __init__(self, connection: IBConnection, *, details_timeout: float = 20.0) -> None:
        self.connection = connection
        self.details_timeout = details_timeout
        self._time_lock = asyncio.Lock()

    async def server_time(self) -> int:
        """IB's server time (reqCurrentTime). One at a time: ib_async keeps a single pending reqCurrentTime,
        so a second concurrent ask would orphan the first."""
        self.connection.require_connected("historical data")
        async with self._time_lock:
            when = await asyncio.wait_for(self.connection.ib.reqCurrentTimeAsync(), self.details_timeout)
        ns = datetime_to_ns(when)
        self.connection.observe_market_time(ns)
        return ns

    async def contract(self, instrument: Instrument) -> ContractInfo:
        """IB's contract for a catalog month (expired ones too) or stock; errors name what was asked."""
        self.connection.require_connected(f"contract details for {instrument.key}")
        query = contract_for(instrument)
        if instrument.sec_type is SecType.FUT:
            query.conId = 0  # the catalog's con id is ours; IB's comes with the details
            query.includeExpired = True
            if query.exchange.upper() == "GLOBEX":
                query.exchange = "CME"  # IB renamed GLOBEX to CME: current gateways answer 200 for GLOBEX
        what = f"{instrument.key} on {query.exchange}"
        ib = self.connection.ib
        found = await unique_details(ib, query, what, self.details_timeout)
        assert found.contract is not None
        qualified = instrument_from_details(found, instrument)
        last_trade = _ib_day(found.contract.lastTradeDateOrContractMonth) or _ib_day(found.realExpirationDate)
        handle = found.contract
        if qualified.sec_type is SecType.FUT:
            handle.includeExpired = True
        return ContractInfo(qualified, last_trade if qualified.sec_type is SecType.FUT else None, handle)

    async def ready(self, timeout: float) -> bool:
        """Wait for the adapter's reconnect (it reconnects by itself after a drop); False after `timeout`."""
        if self.connection.is_connected:
            return True
        try:
            await self.connection.wait_connected(timeout)
        except IBConnectionError:
            return False
        return True

    async def head_time(self, contract: ContractInfo, what: str) -> int | None:
        ib = self.connection.ib
        try:
            when = await asyncio.wait_for(
                ib.reqHeadTimeStampAsync(_handle(contract), what, False, 2), self.details_timeout
            )
        except (TimeoutError, ConnectionError):
            return None
        if isinstance(when, datetime):
            return datetime_to_ns(when if when.tzinfo else when.replace(tzinfo=UTC))
        return None

    async def bars(self, request: BarRequest, timeout: float) -> BarsAnswer:
        """One reqHistoricalData; the answer carries IB's error or the timeout, never a bare empty list."""
        ib = self.connection.ib
        loop = asyncio.get_running_loop()
        began = loop.time()
        if not ib.isConnected():
            return BarsAnswer([], classify(0, "not connected to TWS", disconnected=True), 0.0)
        contract = copy.copy(_handle(request.contract))  # its own object: errorEvent names it
        errors: list[tuple[int, str]] = []
        ended = loop.create_future()

        def on_error(req_id: int, code: int, message: str, c: Any) -> None:
            if c is not contract:
                return
            errors.append((code, message))
            if code in _ENDS_REQUEST and not ended.done():
                ended.set_result(None)

        end = ib_end_time(request.end_ns) if request.end_ns is not None else ""
        ib.errorEvent += on_error
        task = asyncio.ensure_future(
            ib.reqHistoricalDataAsync(
                contract, end, request.duration, request.bar_size, request.what, False, formatDate=2,
                timeout=timeout,
            )
        )  # fmt: skip
        try:
            await asyncio.wait({task, ended}, return_when=asyncio.FIRST_COMPLETED)
            raw: list[Any] = []
            disconnected = False
            if task.done():
                try:
                    raw = list(task.result())
                except ConnectionError:
                    disconnected = True
            else:
                await cancel_and_wait([task])
        finally:
            ib.errorEvent -= on_error
            if not ended.done():
                ended.cancel()
        seconds = loop.time() - began
        if errors and not raw:
            code, text = errors[-1]
            return BarsAnswer([], classify(code, text), seconds)
        if disconnected:
            return BarsAnswer([], classify(0, "connection to TWS lost", disconnected=True), seconds)
        if not raw and seconds >= timeout:
            return BarsAnswer([], Failure(FailureClass.TIMEOUT, 0, f"no answer in {timeout:g} s"), seconds)
        hours = hours_for(request.contract.instrument)
        return BarsAnswer(bars_from_bardata(raw, hours), None, seconds)


def _handle(contract: ContractInfo) -> Contract:
    handle = contract.handle
    if not isinstance(handle, Contract):
        raise TypeError(f"{contract.instrument.key}: not a contract from this source")
    return handle


def _ib_day(text: str | None) -> date | None:
    head = (text or "").strip().split(" ", 1)[0].replace("-", "")
    if len(head) != 8 or not head.isdigit():
        return None
    with contextlib.suppress(ValueError):
        return date(int(head[:4]), int(head[4:6]), int(head[6:]))
    return None

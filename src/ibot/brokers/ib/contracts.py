"""Qualifying contracts with IB: a catalog symbol becomes the exact month (or stock) IB will route.

``"MES"`` -> the front month from the catalog as of the exchange's trading day (IB's server time, not the
local clock) -> an ib_async Future with symbol, month, exchange, multiplier, trading class and local symbol
-> IB's contract details -> an Instrument carrying IB's con id. No match is an UnknownContractError,
several matches (a future without its month, a stock without primary exchange) an AmbiguousContractError
that lists them: IB's error 200 either way, told apart here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from ib_async import IB, Contract, ContractDetails, Stock

from ibot.brokers.ib.connection import IBConnection
from ibot.brokers.ib.parsing import contract_for, instrument_from_details
from ibot.exchange.hours import hours_for
from ibot.model import catalog
from ibot.model.errors import IbotError, UnknownSymbolError
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import datetime_to_ns

__all__ = [
    "AmbiguousContractError",
    "ContractError",
    "ContractResolver",
    "UnknownContractError",
]

log = logging.getLogger("ibot.brokers.ib")


class ContractError(IbotError, LookupError):
    """IB could not turn a request into exactly one contract."""


class UnknownContractError(ContractError):
    """IB has no contract matching the request (error 200, "No security definition")."""

    def __init__(self, what: str, detail: str = "") -> None:
        extra = f": {detail}" if detail else ""
        super().__init__(f"IB knows no contract for {what}{extra}")
        self.what = what


class AmbiguousContractError(ContractError):
    """Several IB contracts match; `candidates` names them (local symbol @ exchange, con id)."""

    def __init__(self, what: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:12]) + (
            f" and {len(candidates) - 12} more" if len(candidates) > 12 else ""
        )
        super().__init__(
            f"{what} is ambiguous at IB: {len(candidates)} contracts match ({shown}); "
            "give the month (e.g. MESZ5) or the primary exchange"
        )
        self.what = what
        self.candidates = candidates


@dataclass(frozen=True, slots=True)
class _Qualified:
    instrument: Instrument
    contract: Contract


class ContractResolver:
    """Qualifies instruments through one IB connection and remembers the results by con id."""

    def __init__(self, connection: IBConnection, timeout: float = 10.0) -> None:
        self.connection = connection
        self.timeout = timeout
        self._by_con_id: dict[int, _Qualified] = {}

    async def trading_day(self, instrument: Instrument) -> date:
        """The exchange trading day as of IB's server time (after the 17:00 CT close it is the next day)."""
        ib = self.connection.ib
        now = await asyncio.wait_for(ib.reqCurrentTimeAsync(), self.timeout)
        return hours_for(instrument).session_date(datetime_to_ns(now))

    async def qualify(self, symbol: str, asof: date | None = None) -> Instrument:
        """Catalog symbol or local symbol (``MES``, ``MESZ5``, ``SPY``) -> the IB-qualified instrument.

        A bare futures product means its front month as of `asof` (default: today's trading day at IB).
        """
        product = catalog.get_instrument(_product_of(symbol))
        day = asof if asof is not None else await self.trading_day(product)
        return await self.qualify_instrument(catalog.resolve(symbol, day))

    async def qualify_stock(
        self, symbol: str, primary_exchange: str = "", exchange: str = "SMART", currency: str = "USD"
    ) -> Instrument:
        """A stock that may not be in the catalog (its tick size then comes from IB)."""
        contract = Stock(symbol.strip().upper(), exchange, currency, primaryExchange=primary_exchange)
        what = f"stock {symbol.upper()} on {exchange}" + (
            f" ({primary_exchange})" if primary_exchange else ""
        )
        base: Instrument | None = None
        try:
            base = catalog.get_instrument(symbol)
        except UnknownSymbolError:
            base = None
        return await self._qualify(contract, what, base)

    async def qualify_instrument(self, instrument: Instrument) -> Instrument:
        """Ask IB for exactly `instrument`; a product-level future (no month) is ambiguous by design."""
        if instrument.con_id and instrument.con_id in self._by_con_id:
            cached = self._by_con_id[instrument.con_id]
            if cached.instrument.local_symbol == instrument.local_symbol:
                return cached.instrument
        what = _describe(instrument)
        contract = contract_for(instrument)
        if instrument.sec_type is SecType.FUT:
            contract.conId = 0  # the catalog's con id is ours; IB's is learned from the details
        return await self._qualify(contract, what, instrument)

    def contract(self, instrument: Instrument) -> Contract:
        """The qualified ib_async contract of `instrument` (adapter-internal); it must be qualified first."""
        found = self._by_con_id.get(instrument.con_id)
        if found is None:
            raise UnknownContractError(_describe(instrument), "not qualified yet: call qualify() first")
        return found.contract

    def instrument(self, con_id: int) -> Instrument | None:
        """The qualified instrument with IB con id `con_id`, if seen."""
        found = self._by_con_id.get(con_id)
        return found.instrument if found else None

    def remember(self, instrument: Instrument, contract: Contract) -> None:
        self._by_con_id[instrument.con_id] = _Qualified(instrument, contract)

    async def _qualify(self, contract: Contract, what: str, base: Instrument | None) -> Instrument:
        self.connection.require_connected(f"qualify {what}")
        ib = self.connection.ib
        found = await unique_details(ib, contract, what, self.timeout)
        assert found.contract is not None
        instrument = instrument_from_details(found, base)
        ib_contract = found.contract
        self.remember(instrument, ib_contract)
        log.info("qualified %s -> %s con_id=%d", what, instrument.key, instrument.con_id)
        return instrument


def _product_of(symbol: str) -> str:
    """The catalog product behind a symbol or local symbol (``MESZ5`` -> ``MES``)."""
    text = symbol.strip().upper()
    known = catalog.symbols()
    if text in known:
        return text
    for product in sorted(catalog.symbols(SecType.FUT), key=len, reverse=True):
        if text.startswith(product):
            return product
    return text  # get_instrument raises UnknownSymbolError naming it


def _describe(instrument: Instrument) -> str:
    if instrument.sec_type is SecType.FUT:
        month = instrument.local_symbol or "(no month)"
        return f"future {instrument.symbol} {month} on {instrument.exchange}"
    return f"stock {instrument.symbol} on {instrument.exchange}"


async def unique_details(ib: IB, contract: Contract, what: str, timeout: float) -> ContractDetails:
    """IB's one contract details for `contract` (reqContractDetails within `timeout` s): none is an
    UnknownContractError carrying IB's 200 text, several an AmbiguousContractError listing them."""
    errors: list[str] = []

    def on_error(req_id: int, code: int, message: str, c: Any) -> None:
        if code == 200:
            errors.append(message)

    ib.errorEvent += on_error
    try:
        details: list[ContractDetails] = await asyncio.wait_for(ib.reqContractDetailsAsync(contract), timeout)
    finally:
        ib.errorEvent -= on_error
    if not details:
        raise UnknownContractError(what, errors[-1] if errors else "")
    if len(details) > 1:
        raise AmbiguousContractError(what, [_candidate(d) for d in details])
    return details[0]


def _candidate(details: ContractDetails) -> str:
    c = details.contract
    if c is None:
        return "?"
    return f"{c.localSymbol or c.symbol}@{c.primaryExchange or c.exchange} (con id {c.conId})"

"""The contracts the simulator knows and how a client's contract fields find them (IB's matching rules):
every catalog product and stock, a product's months as IB lists them (`ibot.sim.listing`), CONTFUT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from ibot.model import catalog
from ibot.model.errors import UnknownSymbolError
from ibot.model.instruments import Instrument, SecType
from ibot.sim import listing


@dataclass(frozen=True, slots=True)
class ContractQuery:
    """What a client sent to identify a contract (IB's 12 contract fields, unset ones empty / 0)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade: str = ""  # lastTradeDateOrContractMonth: YYYYMM or YYYYMMDD
    strike: float | None = None
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    include_expired: bool = False

    def describe(self) -> str:
        parts = [
            self.local_symbol or self.symbol,
            self.sec_type,
            self.last_trade,
            self.exchange,
            self.currency,
        ]
        text = " ".join(p for p in parts if p)
        return f"conId={self.con_id}" if not text and self.con_id else text or "(empty contract)"


class ContractBook:
    """The contracts the simulator knows: the catalog's products and stocks, with their listed months.

    `symbols` are the products the server lists (its start-up line, symbol search, depth venues); contract
    details, market data and orders are served for every catalog product whatever the list says, as TWS
    serves any contract: a product's market starts on its first request."""

    def __init__(
        self,
        symbols: Sequence[str] | None = None,
        expired_retention_days: int = listing.EXPIRED_RETENTION_DAYS,
    ) -> None:
        self.expired_retention_days = expired_retention_days
        known = catalog.symbols()
        wanted = [s.upper() for s in symbols] if symbols else known
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise UnknownSymbolError(unknown[0], known)
        self.symbols = wanted
        self._all = [catalog.get_instrument(s) for s in known]

    def products(self) -> list[Instrument]:
        """The listed products."""
        return [catalog.get_instrument(s) for s in self.symbols]

    def months(self, symbol: str, asof: date, include_expired: bool) -> list[Instrument]:
        """The months IB lists on `asof` (`ibot.sim.listing`): the next `LISTED_MONTHS` live ones, and with
        `include_expired` those that expired within the retention period before them, oldest first."""
        live = catalog.contract_months(symbol, asof, listing.LISTED_MONTHS)
        if not include_expired:
            return live
        start = asof - timedelta(days=self.expired_retention_days)
        expired = [
            m for m in catalog.contract_months(symbol, start, 64) if m.expiry is not None and m.expiry < asof
        ]
        return expired + live

    def front(self, symbol: str, asof: date) -> Instrument:
        return catalog.front_month(symbol, asof)

    def continuous(self, symbol: str, asof: date) -> Instrument:
        """The CONTFUT of a product: the front month's fields (conId included, as IB), secType CONTFUT."""
        return replace(self.front(symbol, asof), sec_type=SecType.CONTFUT)

    def match(self, q: ContractQuery, asof: date) -> list[Instrument]:
        """Every known contract the query describes (IB's contract-details semantics: all matches)."""
        sec = q.sec_type.upper()
        candidates: list[Instrument] = []
        for product in self._all:
            if q.symbol and q.symbol.upper() not in (product.symbol, product.trading_class):
                continue
            if q.trading_class and q.trading_class.upper() != (product.trading_class or product.symbol):
                continue
            if product.sec_type is SecType.STK:
                if sec in ("", "STK"):
                    candidates.append(product)
            elif sec in ("", "FUT", "CONTFUT"):
                if sec == "CONTFUT":
                    candidates.append(self.continuous(product.symbol, asof))
                else:
                    candidates.extend(self.months(product.symbol, asof, q.include_expired))
        out = []
        for inst in candidates:
            # A CONTFUT is the product, whichever month is front: a conId or local symbol a client kept from
            # qualifying it when another month was front still names it.
            cont = inst.sec_type is SecType.CONTFUT
            if q.con_id and inst.con_id != q.con_id and not cont:
                continue
            wanted_local = q.local_symbol.upper().replace(" ", "")
            if (
                wanted_local
                and wanted_local not in (inst.local_symbol.replace(" ", ""), inst.symbol)
                and not cont
            ):
                continue
            if q.last_trade and inst.sec_type is SecType.FUT and not _expiry_matches(q.last_trade, inst):
                continue
            # IB renamed GLOBEX to CME: current gateways answer a GLOBEX contract with 200 (rust-ibapi #544).
            if q.exchange and q.exchange.upper() not in ("SMART", inst.exchange):
                continue
            if (
                q.primary_exchange
                and inst.primary_exchange
                and q.primary_exchange.upper() != inst.primary_exchange
            ):
                continue
            if q.currency and q.currency.upper() != inst.currency:
                continue
            if q.multiplier and _num(q.multiplier) not in (None, float(inst.multiplier)):
                continue
            out.append(inst)
        return out


def _expiry_matches(last_trade: str, inst: Instrument) -> bool:
    """A client's lastTradeDateOrContractMonth against a listed month: YYYYMM is the contract month, YYYYMMDD
    the last trading day. A date followed by a time (and zone) is matched by its date: that is the form
    CONTRACT_DATA carries ("20250620 08:30 US/Central"), and a client that does not split it (@stoqey/ib)
    sends it back whole. Anything else matches nothing (unknown contract, error 200), never every month."""
    token = next(iter(last_trade.replace("-", " ").split()), "")
    if not token.isdigit():
        return False
    if len(token) == 6:
        return token == inst.contract_month
    if len(token) == 8:
        return inst.expiry is not None and token == f"{inst.expiry:%Y%m%d}"
    return False


def _num(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


__all__ = ["ContractBook", "ContractQuery"]

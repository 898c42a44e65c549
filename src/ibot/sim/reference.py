"""Reference data the simulator serves beside contract details: symbol search, market rules (the price
increments behind contract details' marketRuleIds) and the exchanges that give market depth.

Everything comes from the catalog, so a client's lookup answers at once instead of waiting for a timeout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ibot.model import catalog
from ibot.model.instruments import Instrument, SecType

# IB's aggGroup when a venue belongs to no aggregation group (unset int, as CONTRACT_DATA's aggGroup).
UNSET_AGG_GROUP = 2147483647


class MarketRuleError(LookupError):
    """An instrument whose tick size has no market rule (it is not in the catalog)."""


@dataclass(frozen=True, slots=True)
class SymbolSample:
    """One match of a symbol search, as SYMBOL_SAMPLES describes a contract."""

    con_id: int
    symbol: str
    sec_type: str
    primary_exchange: str
    currency: str
    derivative_sec_types: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class PriceIncrement:
    """From `low_edge` upwards prices move in steps of `increment`."""

    low_edge: Decimal
    increment: Decimal


@dataclass(frozen=True, slots=True)
class DepthExchange:
    """A venue that serves market depth for a security type (MKT_DEPTH_EXCHANGES)."""

    exchange: str
    sec_type: str
    listing_exchange: str
    service_data_type: str  # "Deep": price levels per row (the simulator's book), not IB's "Deep2" per order
    agg_group: int = UNSET_AGG_GROUP


def matching_symbols(products: Iterable[Instrument], pattern: str) -> list[SymbolSample]:
    """The products whose symbol starts with `pattern` (case-insensitive, surrounding blanks ignored).

    A futures product is described by its own contract, its derivatives being its months (FUT); a stock
    lists no derivatives, since the catalog holds none on it (no options, no single-stock futures).
    """
    prefix = pattern.strip().upper()
    out = []
    for p in products:
        if not p.symbol.upper().startswith(prefix):
            continue
        fut = p.sec_type is SecType.FUT
        out.append(
            SymbolSample(
                con_id=p.con_id,
                symbol=p.symbol,
                sec_type=p.sec_type.value,
                primary_exchange=p.exchange if fut else p.primary_exchange,
                currency=p.currency,
                derivative_sec_types=(SecType.FUT.value,) if fut else (),
                description=p.description,
            )
        )
    return out


def depth_exchanges(products: Iterable[Instrument]) -> list[DepthExchange]:
    """One entry per (venue, security type) of the products: a future's exchange, a stock's primary listing
    (depth comes from a venue, never SMART), in first-seen order."""
    seen: dict[tuple[str, str], DepthExchange] = {}
    for p in products:
        fut = p.sec_type is SecType.FUT
        venue = p.exchange if fut else p.primary_exchange
        if not venue:
            continue
        key = (venue, p.sec_type.value)
        if key not in seen:
            seen[key] = DepthExchange(venue, p.sec_type.value, "" if fut else venue, "Deep")
    return list(seen.values())


class MarketRules:
    """One market rule per distinct tick size, numbered 1, 2, ... in ascending tick order; each has a single
    increment (lowEdge 0, increment = the tick): every catalog product has one tick size at all prices."""

    def __init__(self, products: Iterable[Instrument]) -> None:
        ticks = sorted({p.tick_size for p in products})
        self._ids = {tick: n for n, tick in enumerate(ticks, start=1)}
        self._ticks = {n: tick for tick, n in self._ids.items()}

    @classmethod
    def of_catalog(cls) -> MarketRules:
        """The rules of the whole catalog: the same ids whichever symbols a server is started with."""
        return cls(catalog.get_instrument(s) for s in catalog.symbols())

    def rule_id(self, inst: Instrument) -> int:
        try:
            return self._ids[inst.tick_size]
        except KeyError:
            raise MarketRuleError(
                f"{inst.key}: no market rule for tick size {inst.tick_size} "
                f"(rules cover {', '.join(str(t) for t in self._ids)})"
            ) from None

    def rule_ids(self, inst: Instrument, valid_exchanges: Sequence[str]) -> str:
        """CONTRACT_DATA's marketRuleIds: one id per entry of validExchanges, comma-separated, same order."""
        rule = str(self.rule_id(inst))
        return ",".join(rule for _ in valid_exchanges)

    def increments(self, rule_id: int) -> list[PriceIncrement] | None:
        """The rule's price increments, or None for an id this catalog does not define."""
        tick = self._ticks.get(rule_id)
        return None if tick is None else [PriceIncrement(Decimal(0), tick)]

    def ids(self) -> list[int]:
        return sorted(self._ticks)


__all__ = [
    "DepthExchange",
    "MarketRuleError",
    "MarketRules",
    "PriceIncrement",
    "SymbolSample",
    "depth_exchanges",
    "matching_symbols",
]

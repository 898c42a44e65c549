"""Combo (BAG) orders of the simulated account: futures calendar spreads, as IB takes them.

A combo is a BAG contract whose `comboLegs` name contracts by conId, each with a ratio and an action; the
order's action applies to the whole (a SELL combo reverses every leg). What the simulator accepts and does:

- legs: two or more futures of ONE product (a calendar spread), each conId known, ratio >= 1, action BUY or
  SELL; the BAG is exchange-directed (its exchange is the legs' exchange, CME for the micros): SMART or any
  other exchange, an unknown conId, a stock or a mix of products is error 200 (no security definition), as IB
  answers a combo it cannot define;
- types MKT and LMT; a LMT price is a spread price on the product's spread tick (`SPREAD_TICK`: 0.05 for MES,
  as CME lists its calendar spreads), off that grid is error 110;
- the combo fills as a whole or not at all (IB guarantees exchange-listed spreads: no leg fills alone): each
  leg is one execution with the leg's own contract (conId), price and execId, under the combo's order id and
  permId; then ORDER_STATUS Filled for the combo, whose average fill price is the spread price (sum over legs
  of ratio x price, BUY legs +, SELL legs -), and a commission report per leg execution;
- leg prices are the legs' quotes on their own tick grid (a BUY leg at its ask, a SELL leg at its bid), so the
  spread price lands on the spread grid; a MKT combo fills at once while every leg's market is open, a LMT one
  on the first second its marketable spread price is at or through the limit; the whole quantity at once
  (the simulator's combo book is deep; IB may fill a large spread in parts);
- a working combo is cancelled like any order (PendingCancel, Cancelled, 202); it cannot be modified (105);
  no pre-trade margin check (a calendar spread's margin is a fraction of an outright's); no what-if;
- `SimBroker.refuse_combos()` (a fault) refuses every combo with error 201, Inactive (so a test can force a
  roll's fallback to two outright orders); `reject_next_order` applies to a combo as to any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ibot.model.instruments import Instrument, SecType
from ibot.model.orders import Side

__all__ = ["SPREAD_TICK", "ComboError", "ComboLeg", "combo_price", "leg_sides", "spread_tick"]

# CME calendar-spread ticks (the spread's minimum price fluctuation), by product; others: the outright tick.
SPREAD_TICK: dict[str, Decimal] = {
    "MES": Decimal("0.05"),
    "ES": Decimal("0.05"),
    "MNQ": Decimal("0.05"),
    "NQ": Decimal("0.05"),
    "MYM": Decimal("1"),
    "M2K": Decimal("0.05"),
}

REFUSED_TEXT = "Order rejected - reason: Combo orders are not accepted for this account."


class ComboError(Exception):
    """A combo refused before it exists: an IB error code and text for its order id."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


@dataclass(frozen=True, slots=True)
class ComboLeg:
    """One leg of a combo as the simulator resolved it."""

    inst: Instrument
    action: Side  # the leg's action when the combo is BOUGHT
    ratio: int


def spread_tick(inst: Instrument) -> Decimal:
    return SPREAD_TICK.get(inst.symbol.upper(), inst.tick_size)


def check_legs(legs: list[ComboLeg], exchange: str) -> None:
    """A calendar spread of one futures product, exchange-directed: ComboError 200 otherwise."""
    if len(legs) < 2:
        raise ComboError(321, "Error validating request.-'comboLegs': a combo needs at least two legs")
    products = {(leg.inst.symbol, leg.inst.sec_type) for leg in legs}
    if len(products) != 1 or next(iter(products))[1] is not SecType.FUT:
        raise ComboError(
            200,
            "No security definition has been found for the request (combo legs must be "
            "months of one futures product)",
        )
    if len({leg.inst.con_id for leg in legs}) != len(legs):
        raise ComboError(200, "No security definition has been found for the request (a leg named twice)")
    venue = legs[0].inst.exchange.upper()
    if exchange.strip().upper() != venue:
        raise ComboError(
            200,
            f"No security definition has been found for the request (a futures spread is directed to "
            f"{venue}, not {exchange.strip() or 'no exchange'})",
        )


def leg_sides(legs: tuple[ComboLeg, ...], combo_side: Side) -> list[Side]:
    """Each leg's side when the combo is bought (its own action) or sold (every leg reversed)."""
    return [leg.action if combo_side is Side.BUY else leg.action.opposite for leg in legs]


def combo_price(legs: tuple[ComboLeg, ...], prices: list[Decimal]) -> Decimal:
    """The spread price of leg prices: sum of ratio x price, BUY legs +, SELL legs - (the combo bought)."""
    return sum(
        (leg.ratio * p * (1 if leg.action is Side.BUY else -1) for leg, p in zip(legs, prices, strict=True)),
        Decimal(0),
    )

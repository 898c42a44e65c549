"""Commissions: what one execution costs, exactly, in the instrument's currency."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# IBKR "Cost-Plus Tiered" pricing for CME Group micro equity futures (MES, MNQ, M2K), per contract per side,
# as published by IBKR (checked 2025):
#   broker commission, <= 1,000 contracts a month ... USD 0.25  (tier falls to 0.20 / 0.15 / 0.10 with volume)
#   CME Globex exchange fee recovery, non-member .... USD 0.35  (IBKR's CME fee page: MES/MNQ/M2K)
#   NFA regulatory fee recovery ..................... USD 0.02
#   all-in .......................................... USD 0.62
# Other micros differ (e.g. MGC exchange fee 0.75, MCL 0.50): pass their own FeeModel. IBKR's "Fixed" plan
# (USD 0.85 for most US futures, exchange fees included) is another FeeModel(broker=Decimal("0.85")).
IB_MICRO_BROKER = Decimal("0.25")
CME_MICRO_EQUITY_EXCHANGE = Decimal("0.35")
NFA_REGULATORY = Decimal("0.02")


@dataclass(frozen=True, slots=True)
class FeeModel:
    """Per-contract, per-side charges (Decimal, exact). `per_contract` is what one contract costs per fill."""

    broker: Decimal = IB_MICRO_BROKER
    exchange: Decimal = CME_MICRO_EQUITY_EXCHANGE
    regulatory: Decimal = NFA_REGULATORY

    def __post_init__(self) -> None:
        for name in ("broker", "exchange", "regulatory"):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                object.__setattr__(self, name, Decimal(str(value)))
                value = getattr(self, name)
            if not value.is_finite() or value < 0:
                raise ValueError(f"FeeModel: {name} fee {value} must be a finite amount >= 0")

    @property
    def per_contract(self) -> Decimal:
        """All-in cost of one contract on one side (buy or sell)."""
        return self.broker + self.exchange + self.regulatory

    def commission(self, quantity: int) -> Decimal:
        """Total fee for one execution of `quantity` contracts."""
        return self.per_contract * quantity

    @classmethod
    def zero(cls) -> FeeModel:
        """No fees at all (for tests and gross-only studies)."""
        return cls(Decimal(0), Decimal(0), Decimal(0))


IB_MICRO_FUTURES = FeeModel()
"""IBKR tiered, CME micro equity index futures: 0.25 + 0.35 + 0.02 = USD 0.62 per contract per side."""

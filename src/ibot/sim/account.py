"""The simulated account's numbers as IB names them: account values, account-summary tags, P&L.

What it promises: every figure comes from one `AccountSnapshot` of exact Decimals, so reqAccountUpdates,
reqAccountSummary, reqPnL and the commission reports agree to the cent, and the identities hold exactly:

    NetLiquidation   = TotalCashValue + UnrealizedPnL
    TotalCashValue   = starting cash + RealizedPnL
    RealizedPnL      = sum of the commission reports' realizedPNL
                     = gross P&L of the closed contracts - the commissions of both their legs

Convention (IB's own): a position's average cost includes the commission paid to open it, so the opening
commission is realized when the contract is closed; until then it sits in the cost basis and therefore in
UnrealizedPnL (which is net of it). Stocks are accounted like futures (marked to market; no notional cash
movement): ibot is futures-first and its catalog stocks are only used for data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from ibot.model.instruments import Instrument, SecType

__all__ = [
    "AccountSnapshot",
    "PositionSnapshot",
    "account_values",
    "initial_margin",
    "maintenance_margin",
    "money",
    "summary_values",
]

_CENT = Decimal("0.01")
# CME sets maintenance margin and initial margin = 110% of it for speculators (CME Group, "Margin: Know What's
# Needed"); the catalog stores the initial figure.
_INITIAL_OVER_MAINTENANCE = Decimal("1.1")
# Reg T: 50% initial, 25% maintenance on long stock (FINRA Rule 4210 for the maintenance part).
_STOCK_INITIAL = Decimal("0.5")
_STOCK_MAINTENANCE = Decimal("0.25")
# IB's buying power for a margin account: available funds x 4 (intraday leverage on securities).
_BUYING_POWER_FACTOR = 4


def money(value: Decimal) -> str:
    """An amount as the account messages write it: two decimals (exact for every catalog tick value)."""
    return str(value.quantize(_CENT, rounding=ROUND_HALF_EVEN))


def initial_margin(inst: Instrument, quantity: int, mark: Decimal) -> Decimal:
    """Initial margin of |quantity| contracts: the catalog's per-contract figure, Reg T 50% for stocks."""
    if inst.sec_type is SecType.STK or inst.initial_margin == 0:
        return abs(quantity) * mark * inst.multiplier * _STOCK_INITIAL
    return abs(quantity) * inst.initial_margin


def maintenance_margin(inst: Instrument, quantity: int, mark: Decimal) -> Decimal:
    if inst.sec_type is SecType.STK or inst.initial_margin == 0:
        return abs(quantity) * mark * inst.multiplier * _STOCK_MAINTENANCE
    per = (inst.initial_margin / _INITIAL_OVER_MAINTENANCE).quantize(_CENT, rounding=ROUND_HALF_EVEN)
    return abs(quantity) * per


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    """One position at a mark. `avg_cost` is IB's: per contract, price x multiplier + opening commission."""

    inst: Instrument
    quantity: int
    avg_cost: Decimal
    mark: Decimal  # price
    market_value: Decimal  # quantity x mark x multiplier
    unrealized: Decimal
    realized: Decimal  # realized on this instrument since the server started
    daily_realized: Decimal


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """The account at one moment; derived figures are properties so they cannot disagree."""

    account: str
    currency: str
    starting_cash: Decimal
    realized: Decimal
    daily_realized: Decimal
    unrealized: Decimal
    init_margin: Decimal
    maint_margin: Decimal
    positions: tuple[PositionSnapshot, ...]
    commissions: Decimal  # every commission charged so far (information only; already inside the P&L)

    @property
    def cash(self) -> Decimal:
        return self.starting_cash + self.realized

    @property
    def net_liquidation(self) -> Decimal:
        return self.cash + self.unrealized

    @property
    def available_funds(self) -> Decimal:
        return self.net_liquidation - self.init_margin

    @property
    def excess_liquidity(self) -> Decimal:
        return self.net_liquidation - self.maint_margin

    @property
    def buying_power(self) -> Decimal:
        return max(self.available_funds, Decimal(0)) * _BUYING_POWER_FACTOR

    @property
    def daily_pnl(self) -> Decimal:
        """Realized since the trading day began plus the open positions' unrealized P&L."""
        return self.daily_realized + self.unrealized

    @property
    def gross_position_value(self) -> Decimal:
        """IB counts stock (and option) positions only; futures carry no position value."""
        return sum(
            (abs(p.market_value) for p in self.positions if p.inst.sec_type is SecType.STK), Decimal(0)
        )

    def position(self, con_id: int) -> PositionSnapshot | None:
        for p in self.positions:
            if p.inst.con_id == con_id:
                return p
        return None


def _core(s: AccountSnapshot) -> list[tuple[str, Decimal]]:
    """The money tags in the account's currency, shared by account updates and the summary."""
    nl = s.net_liquidation
    return [
        ("NetLiquidation", nl),
        ("TotalCashValue", s.cash),
        ("SettledCash", s.cash),
        ("AccruedCash", Decimal(0)),
        ("BuyingPower", s.buying_power),
        ("EquityWithLoanValue", nl),
        ("PreviousDayEquityWithLoanValue", s.starting_cash),
        ("GrossPositionValue", s.gross_position_value),
        ("RegTEquity", nl),
        ("RegTMargin", Decimal(0)),
        ("SMA", Decimal(0)),
        ("InitMarginReq", s.init_margin),
        ("MaintMarginReq", s.maint_margin),
        ("AvailableFunds", s.available_funds),
        ("ExcessLiquidity", s.excess_liquidity),
        ("FullInitMarginReq", s.init_margin),
        ("FullMaintMarginReq", s.maint_margin),
        ("FullAvailableFunds", s.available_funds),
        ("FullExcessLiquidity", s.excess_liquidity),
        ("LookAheadInitMarginReq", s.init_margin),
        ("LookAheadMaintMarginReq", s.maint_margin),
        ("LookAheadAvailableFunds", s.available_funds),
        ("LookAheadExcessLiquidity", s.excess_liquidity),
    ]


def _ledger(s: AccountSnapshot) -> list[tuple[str, Decimal]]:
    """$LEDGER tags (per currency; the same amounts under BASE and the account currency)."""
    futures_pnl = sum((p.unrealized for p in s.positions if p.inst.sec_type is not SecType.STK), Decimal(0))
    stock_value = sum((p.market_value for p in s.positions if p.inst.sec_type is SecType.STK), Decimal(0))
    return [
        ("CashBalance", s.cash),
        ("TotalCashBalance", s.cash),
        ("AccruedCash", Decimal(0)),
        ("StockMarketValue", stock_value),
        ("FuturesPNL", futures_pnl),
        ("NetLiquidationByCurrency", s.net_liquidation),
        ("RealizedPnL", s.realized),
        ("UnrealizedPnL", s.unrealized),
    ]


def _cushion(s: AccountSnapshot) -> str:
    nl = s.net_liquidation
    if nl <= 0:
        return "0"
    return str((s.excess_liquidity / nl).quantize(Decimal("0.000001")))


def _leverage(s: AccountSnapshot) -> str:
    nl = s.net_liquidation
    if nl <= 0:
        return "0"
    return str((s.gross_position_value / nl).quantize(Decimal("0.01")))


def account_values(s: AccountSnapshot) -> list[tuple[str, str, str]]:
    """(key, value, currency) of every ACCT_VALUE of reqAccountUpdates, in a stable order."""
    cur = s.currency
    out: list[tuple[str, str, str]] = [
        ("AccountCode", s.account, ""),
        ("AccountType", "INDIVIDUAL", ""),
        ("AccountReady", "true", ""),
        ("Currency", cur, cur),
        ("Cushion", _cushion(s), ""),
        ("Leverage-S", _leverage(s), ""),
        ("DayTradesRemaining", "-1", ""),
    ]
    out += [(k, money(v), cur) for k, v in _core(s)]
    for currency in ("BASE", cur):
        out += [(k, money(v), currency) for k, v in _ledger(s)]
    return out


def summary_values(s: AccountSnapshot, tags: Iterable[str]) -> list[tuple[str, str, str]]:
    """(tag, value, currency) rows of ACCOUNT_SUMMARY for the requested tags ("All" = every plain tag).

    `$LEDGER` adds the ledger in the account currency, `$LEDGER:ALL` in BASE and every currency,
    `$LEDGER:USD` in that currency only (IB's account-summary tag rules).
    """
    wanted = {t.strip() for t in tags if t.strip()}
    every = not wanted or "All" in wanted
    cur = s.currency
    plain: list[tuple[str, str, str]] = [
        ("AccountType", "INDIVIDUAL", ""),
        ("Cushion", _cushion(s), ""),
        ("DayTradesRemaining", "-1", ""),
        ("Leverage", _leverage(s), ""),
        ("HighestSeverity", "0", ""),
        ("LookAheadNextChange", "0", ""),
    ]
    plain += [(k, money(v), cur) for k, v in _core(s)]
    out = [row for row in plain if every or row[0] in wanted]
    ledger_currencies: list[str] = []
    for tag in sorted(wanted):
        if tag == "$LEDGER":
            ledger_currencies.append(cur)
        elif tag == "$LEDGER:ALL":
            ledger_currencies += ["BASE", cur]
        elif tag.startswith("$LEDGER:") and tag.split(":", 1)[1] in (cur, "BASE"):
            ledger_currencies.append(tag.split(":", 1)[1])
    for currency in dict.fromkeys(ledger_currencies):
        out += [(k, money(v), currency) for k, v in _ledger(s)]
    return out

"""The built-in instrument catalog: seed 000's micro futures and a few stocks, with their real calendars.

What it promises: IB's contract fields (exchange, trading class, multiplier, local symbol), each product's
listed months and last-trade-day rule computed with the exchange's holiday calendar, a configurable roll
schedule, and stable ``con_id`` numbers (the same every run) that the TWS simulator serves.

Sources: CME Group contract specifications ("Termination of Trading") for each product; IB's exchange names
are the listing exchange (MYM on CBOT, MGC on COMEX, MCL on NYMEX, the rest on CME), as IB reports them in
contract details (e.g. MCLV3: NYMEX, trading class MCL, multiplier 100, last trade 20230919).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, time, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

from ibot.model.calendar import (
    add_business_days,
    business_day_on_or_before,
    is_business_day,
    nth_last_business_day,
    previous_business_day,
)
from ibot.model.errors import IbotError, ParameterError, UnknownSymbolError
from ibot.model.instruments import Instrument, SecType

__all__ = [
    "MONTH_CODES",
    "FutureSpec",
    "InvalidContractError",
    "RollAnchor",
    "RollRule",
    "contract",
    "contract_months",
    "contracts_table",
    "crude_oil_last_trade_date",
    "default_roll_rule",
    "first_notice_date",
    "front_month",
    "future_spec",
    "get_instrument",
    "last_trade_date",
    "last_trade_time",
    "local_symbol",
    "month_code",
    "next_roll_date",
    "resolve",
    "roll_date",
    "symbols",
]

MIN_YEAR = 2000  # IB's local symbols carry one year digit; the catalog covers this century only
MAX_YEAR = 2099

# CME month codes, January..December.
MONTH_CODES = "FGHJKMNQUVXZ"


class InvalidContractError(IbotError, ValueError):
    """A futures month that does not exist: not in the product's cycle, bad year or month, not a future."""


def month_code(month: int) -> str:
    """The exchange letter of a month: 1 -> F ... 12 -> Z."""
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
        raise InvalidContractError(f"contract month must be an integer 1..12, got {month!r}")
    return MONTH_CODES[month - 1]


# --- roll rules -----------------------------------------------------------------------------------


class RollAnchor(StrEnum):
    """The day a roll is counted back from."""

    LAST_TRADE = "last_trade"
    # The rule's scheduled day before any holiday adjustment (the third Friday for equity index futures), so
    # that "4 business days before" stays the Monday of expiry week even when the expiry moves to Thursday.
    SCHEDULED_LAST_TRADE = "scheduled_last_trade"
    # First notice day of a physically delivered future: IB liquidates longs it thinks may take delivery.
    FIRST_NOTICE = "first_notice"


@dataclass(frozen=True, slots=True)
class RollRule:
    """Roll `business_days_before_expiry` exchange business days before the anchor day."""

    business_days_before_expiry: int
    anchor: RollAnchor = RollAnchor.LAST_TRADE

    def __post_init__(self) -> None:
        if isinstance(self.business_days_before_expiry, bool) or self.business_days_before_expiry < 0:
            raise ParameterError(
                "roll rule: business_days_before_expiry must be 0 or more, "
                f"got {self.business_days_before_expiry!r}"
            )


# --- last trade day rules (CME Group contract specifications) -------------------------------------


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def _last_friday(year: int, month: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 4) % 7)


def _equity_index_last_trade(year: int, month: int) -> date:
    # CME (MES, MNQ, M2K) and CBOT (MYM): trading terminates at 9:30 a.m. ET on the third Friday of the
    # contract month; when that Friday is not a business day (Good Friday, Juneteenth 2026), on the business
    # day before it.
    return business_day_on_or_before(_third_friday(year, month), "CME")


def crude_oil_last_trade_date(year: int, month: int) -> date:
    """NYMEX WTI Crude Oil (CL): last trade date of the `year`/`month` contract.

    NYMEX: "Trading terminates 3 business day before the 25th calendar day of the month prior to the
    contract month. If the 25th calendar day is not a business day, trading terminates 4 business days before
    the 25th calendar day of the month prior to the contract month."
    """
    prior_year, prior_month = (year - 1, 12) if month == 1 else (year, month - 1)
    the_25th = date(prior_year, prior_month, 25)
    return add_business_days(the_25th, -3 if is_business_day(the_25th, "CME") else -4, "CME")


def _micro_crude_last_trade(year: int, month: int) -> date:
    # NYMEX Micro WTI (MCL, financially settled): trading terminates 1 business day before CL's last trade.
    return previous_business_day(crude_oil_last_trade_date(year, month), "CME")


def _gold_last_trade(year: int, month: int) -> date:
    # COMEX (GC, MGC): trading terminates on the third last business day of the contract month.
    return nth_last_business_day(year, month, 3, "CME")


def _gold_first_notice(year: int, month: int) -> date:
    # COMEX gold: first notice day is the last business day of the month before the contract month.
    prior_year, prior_month = (year - 1, 12) if month == 1 else (year, month - 1)
    return nth_last_business_day(prior_year, prior_month, 1, "CME")


def _bitcoin_last_trade(year: int, month: int) -> date:
    # CME (BTC, MBT): trading terminates at 4 p.m. London time on the last Friday of the contract month; if
    # that day is not a business day in both the UK and the US, on the preceding day that is one in both.
    return business_day_on_or_before(_last_friday(year, month), "CME+UK")


# --- the products ---------------------------------------------------------------------------------

_ALL_MONTHS = MONTH_CODES
_QUARTERLY = "HMUZ"
_GOLD_CYCLE = "GJMQVZ"  # MGC lists only Feb, Apr, Jun, Aug, Oct, Dec


@dataclass(frozen=True, slots=True)
class FutureSpec:
    """A futures product: its catalog entry plus the rules that make its months."""

    instrument: Instrument  # product level: no local symbol, no expiry
    cycle: str  # listed month codes
    last_trade: Callable[[int, int], date]
    roll_rule: RollRule
    settlement: str  # "cash" or "physical"
    scheduled_last_trade: Callable[[int, int], date] | None = None
    first_notice: Callable[[int, int], date] | None = None
    con_id_base: int = 0  # a month's con_id is con_id_base + year * 100 + month

    def lists(self, month: int) -> bool:
        return month_code(month) in self.cycle


def _future(
    symbol: str,
    description: str,
    exchange: str,
    multiplier: str,
    tick: str,
    margin: int,
    con_id_base: int,
    cycle: str,
    last_trade: Callable[[int, int], date],
    roll_rule: RollRule,
    settlement: str,
    **rules: Callable[[int, int], date],
) -> FutureSpec:
    instrument = Instrument(
        symbol=symbol,
        sec_type=SecType.FUT,
        exchange=exchange,
        currency="USD",
        multiplier=Decimal(multiplier),
        tick_size=Decimal(tick),
        description=description,
        trading_class=symbol,
        con_id=con_id_base,
        initial_margin=Decimal(margin),
    )
    return FutureSpec(instrument, cycle, last_trade, roll_rule, settlement, con_id_base=con_id_base, **rules)


# Roll defaults, and why:
# - equity index: CME's lead-month roll (since June 2022) is the Monday of expiry week, where volume moves to
#   the next quarter: 4 business days before the scheduled third Friday.
# - MCL is cash-settled (no delivery restriction at IB), but crude liquidity moves to the next month about a
#   week before expiry: 5 business days before the last trade date.
# - MGC is physically delivered: IB closes out positions before first notice day (end of the prior month), so
#   roll 3 business days before first notice, long before the last trade date late in the contract month.
# - MBT is cash-settled on the last Friday; roll the week before: 5 business days before the last trade date.
_EQUITY_ROLL = RollRule(4, RollAnchor.SCHEDULED_LAST_TRADE)

# Approximate initial margins in USD (upper end of seed 000's ranges); IB's live figures move with
# volatility and must not be used for risk checks.
_FUTURES: tuple[FutureSpec, ...] = (
    _future("MES", "Micro E-mini S&P 500", "CME", "5", "0.25", 1500, 710_000_000, _QUARTERLY,
            _equity_index_last_trade, _EQUITY_ROLL, "cash", scheduled_last_trade=_third_friday),
    _future("MNQ", "Micro E-mini Nasdaq-100", "CME", "2", "0.25", 2000, 720_000_000, _QUARTERLY,
            _equity_index_last_trade, _EQUITY_ROLL, "cash", scheduled_last_trade=_third_friday),
    _future("MGC", "Micro Gold", "COMEX", "10", "0.10", 1200, 730_000_000, _GOLD_CYCLE,
            _gold_last_trade, RollRule(3, RollAnchor.FIRST_NOTICE), "physical",
            first_notice=_gold_first_notice),
    _future("MCL", "Micro WTI Crude Oil", "NYMEX", "100", "0.01", 1200, 740_000_000, _ALL_MONTHS,
            _micro_crude_last_trade, RollRule(5), "cash"),
    _future("MBT", "Micro Bitcoin", "CME", "0.1", "5", 2500, 750_000_000, _ALL_MONTHS,
            _bitcoin_last_trade, RollRule(5), "cash"),
    _future("MYM", "Micro E-mini Dow", "CBOT", "0.5", "1", 1000, 760_000_000, _QUARTERLY,
            _equity_index_last_trade, _EQUITY_ROLL, "cash", scheduled_last_trade=_third_friday),
    _future("M2K", "Micro E-mini Russell 2000", "CME", "5", "0.10", 900, 770_000_000, _QUARTERLY,
            _equity_index_last_trade, _EQUITY_ROLL, "cash", scheduled_last_trade=_third_friday),
)  # fmt: skip


def _stock(symbol: str, description: str, primary_exchange: str, con_id: int) -> Instrument:
    return Instrument(
        symbol=symbol,
        sec_type=SecType.STK,
        exchange="SMART",
        currency="USD",
        multiplier=Decimal(1),
        tick_size=Decimal("0.01"),
        description=description,
        primary_exchange=primary_exchange,
        con_id=con_id,
    )


# con_ids: IB's own for these listings; the simulator only needs them stable and distinct from the futures'.
_STOCKS: tuple[Instrument, ...] = (
    _stock("SPY", "SPDR S&P 500 ETF Trust", "ARCA", 756733),
    _stock("QQQ", "Invesco QQQ Trust", "NASDAQ", 320227571),
    _stock("IWM", "iShares Russell 2000 ETF", "ARCA", 9579970),
    _stock("AAPL", "Apple Inc.", "NASDAQ", 265598),
    _stock("MSFT", "Microsoft Corp.", "NASDAQ", 272093),
)

_FUTURES_BY_SYMBOL: dict[str, FutureSpec] = {s.instrument.symbol: s for s in _FUTURES}
_STOCKS_BY_SYMBOL: dict[str, Instrument] = {s.symbol: s for s in _STOCKS}


# --- product lookups ------------------------------------------------------------------------------


def _known() -> list[str]:
    return [*_FUTURES_BY_SYMBOL, *_STOCKS_BY_SYMBOL]


def _norm(symbol: str) -> str:
    if not isinstance(symbol, str):
        raise UnknownSymbolError(repr(symbol), _known())
    return symbol.strip().upper()


# Time of the last trade on the last trade date, in the product's listing time zone (US/Central for every
# catalog future). CME: equity index micros terminate at 9:30 ET (08:30 CT); COMEX gold at 12:30 CT (the
# metals settlement); NYMEX micro crude at the 13:30 CT close; micro bitcoin at 4 p.m. London (10:00 CT).
_LAST_TRADE_TIME = {
    "MES": time(8, 30),
    "MNQ": time(8, 30),
    "MYM": time(8, 30),
    "M2K": time(8, 30),
    "MGC": time(12, 30),
    "MCL": time(13, 30),
    "MBT": time(10, 0),
}


def last_trade_time(inst: Instrument) -> time:
    """Clock time (listing time zone) of a futures month's last trade on its last trade date."""
    return _LAST_TRADE_TIME.get(inst.trading_class or inst.symbol, time(8, 30))


def get_instrument(symbol: str) -> Instrument:
    """The catalog entry of a product or stock (case-insensitive); a future's entry has no month."""
    key = _norm(symbol)
    if key in _FUTURES_BY_SYMBOL:
        return _FUTURES_BY_SYMBOL[key].instrument
    if key in _STOCKS_BY_SYMBOL:
        return _STOCKS_BY_SYMBOL[key]
    raise UnknownSymbolError(symbol, _known())


def future_spec(symbol: str) -> FutureSpec:
    """The futures product `symbol` with its cycle and rules; a stock or unknown symbol raises."""
    key = _norm(symbol)
    spec = _FUTURES_BY_SYMBOL.get(key)
    if spec is not None:
        return spec
    if key in _STOCKS_BY_SYMBOL:
        raise InvalidContractError(f"{key} is a stock, not a futures product")
    raise UnknownSymbolError(symbol, _known())


def symbols(sec_type: SecType | None = None) -> list[str]:
    """Catalog symbols in catalog order, optionally only those of one security type."""
    if sec_type is None:
        return _known()
    if sec_type is SecType.FUT:
        return list(_FUTURES_BY_SYMBOL)
    if sec_type is SecType.STK:
        return list(_STOCKS_BY_SYMBOL)
    return []


def default_roll_rule(symbol: str) -> RollRule:
    return future_spec(symbol).roll_rule


# --- futures months -------------------------------------------------------------------------------


def _check_month(spec: FutureSpec, year: int, month: int) -> None:
    symbol = spec.instrument.symbol
    if isinstance(year, bool) or not isinstance(year, int) or not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidContractError(
            f"{symbol}: contract year must be an integer {MIN_YEAR}..{MAX_YEAR}, got {year!r}"
        )
    code = month_code(month)
    if code not in spec.cycle:
        listed = ", ".join(f"{c} ({MONTH_CODES.index(c) + 1})" for c in spec.cycle)
        raise InvalidContractError(
            f"{symbol}: month {month} ({code}) of {year} is not listed; {symbol} lists {listed}"
        )


def _checked(symbol: str, year: int, month: int) -> FutureSpec:
    """The product of a futures month, after checking the month exists (before any cache sees the key)."""
    spec = future_spec(symbol)
    _check_month(spec, year, month)
    return spec


@lru_cache(maxsize=4096)
def _last_trade(symbol: str, year: int, month: int) -> date:
    return _FUTURES_BY_SYMBOL[symbol].last_trade(year, month)


def last_trade_date(symbol: str, year: int, month: int) -> date:
    """The exchange's last trading day of the `year`/`month` contract of `symbol`."""
    spec = _checked(symbol, year, month)
    return _last_trade(spec.instrument.symbol, year, month)


def first_notice_date(symbol: str, year: int, month: int) -> date | None:
    """First notice day of a physically delivered month; None for cash-settled products."""
    spec = _checked(symbol, year, month)
    return spec.first_notice(year, month) if spec.first_notice else None


def local_symbol(symbol: str, year: int, month: int) -> str:
    """IB's local symbol for a CME Group month: product + month code + last year digit (``MESZ6``)."""
    spec = _checked(symbol, year, month)
    return f"{spec.instrument.symbol}{month_code(month)}{year % 10}"


@lru_cache(maxsize=4096)
def _contract(symbol: str, year: int, month: int) -> Instrument:
    spec = _FUTURES_BY_SYMBOL[symbol]
    product = spec.instrument
    return replace(
        product,
        description=f"{product.description} {date(year, month, 1):%b %Y}",
        local_symbol=f"{product.symbol}{month_code(month)}{year % 10}",
        expiry=_last_trade(symbol, year, month),
        contract_month=f"{year:04d}{month:02d}",
        con_id=spec.con_id_base + year * 100 + month,
    )


def contract(symbol: str, year: int, month: int) -> Instrument:
    """One futures month: local symbol, expiry (= last trade date), contract month ``YYYYMM`` and con_id."""
    spec = _checked(symbol, year, month)
    return _contract(spec.instrument.symbol, year, month)


def _year_month(fut: Instrument) -> tuple[int, int]:
    cm = fut.contract_month
    if fut.sec_type is not SecType.FUT or len(cm) != 6 or not cm.isdigit():
        raise InvalidContractError(f"{fut.key}: not a futures month (contract_month {cm!r})")
    return int(cm[:4]), int(cm[4:])


def _listed_from(spec: FutureSpec, year: int, month: int) -> Iterator[tuple[int, int]]:
    """Listed (year, month) pairs of the product from `year`/`month` on, in order."""
    while year <= MAX_YEAR:
        if MONTH_CODES[month - 1] in spec.cycle:
            yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def contract_months(symbol: str, asof: date, n: int) -> list[Instrument]:
    """The next `n` listed months not yet expired on `asof` (one whose last trade date is `asof` counts)."""
    spec = future_spec(symbol)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ParameterError(
            f"{spec.instrument.symbol}: number of contract months must be 0 or more, got {n!r}"
        )
    out: list[Instrument] = []
    # No product's month can still trade once its calendar month is over, so start at asof's month.
    for year, month in _listed_from(spec, asof.year, asof.month):
        if len(out) == n:
            break
        if _last_trade(spec.instrument.symbol, year, month) >= asof:
            out.append(_contract(spec.instrument.symbol, year, month))
    return out


def roll_date(fut: Instrument, rule: RollRule | None = None) -> date:
    """The day to move from `fut` to the next month: per the product's roll rule unless `rule` is given."""
    future_spec(fut.symbol)  # a stock or unknown symbol fails here with its own message
    year, month = _year_month(fut)
    spec = _checked(fut.symbol, year, month)
    rule = rule or spec.roll_rule
    last_trade = _last_trade(spec.instrument.symbol, year, month)
    if rule.anchor is RollAnchor.FIRST_NOTICE:
        if spec.first_notice is None:
            raise ParameterError(
                f"{spec.instrument.symbol} is {spec.settlement}-settled and has no first notice day; "
                "use a roll rule anchored on the last trade date"
            )
        anchor = spec.first_notice(year, month)
    elif rule.anchor is RollAnchor.SCHEDULED_LAST_TRADE and spec.scheduled_last_trade is not None:
        anchor = spec.scheduled_last_trade(year, month)
    else:
        anchor = last_trade
    # Never later than the last trade date, and always a business day of the exchange.
    rolled = add_business_days(anchor, -rule.business_days_before_expiry, "CME")
    return business_day_on_or_before(min(rolled, last_trade), "CME")


def front_month(symbol: str, asof: date, rule: RollRule | None = None) -> Instrument:
    """The month to trade as of `asof`: the nearest one whose roll date is after `asof`.

    On its roll date a month is no longer the front month: from that day on the next one is traded.
    """
    spec = future_spec(symbol)
    for year, month in _listed_from(spec, asof.year, asof.month):
        fut = _contract(spec.instrument.symbol, year, month)
        if roll_date(fut, rule) > asof:
            return fut
    raise InvalidContractError(
        f"{spec.instrument.symbol}: no contract month after {asof} in the catalog range"
    )


def next_roll_date(symbol: str, asof: date, rule: RollRule | None = None) -> date:
    """The next roll day strictly after `asof` (the roll date of the current front month)."""
    return roll_date(front_month(symbol, asof, rule), rule)


def contracts_table(
    asof: date,
    months: int,
    symbols: list[str] | None = None,
    roll_rules: Mapping[str, RollRule] | None = None,
) -> list[dict[str, Any]]:
    """Rows for ``ibot contracts``: the next `months` live months of each futures symbol as of `asof`."""
    if not MIN_YEAR <= asof.year <= MAX_YEAR:
        raise ParameterError(
            f"as-of date {asof.isoformat()} is outside the years the catalog covers ({MIN_YEAR}..{MAX_YEAR})"
        )
    wanted = [_norm(s) for s in symbols] if symbols is not None else list(_FUTURES_BY_SYMBOL)
    rules = {_norm(k): v for k, v in (roll_rules or {}).items()}
    rows: list[dict[str, Any]] = []
    for sym in wanted:
        rule = rules.get(sym)
        front = front_month(sym, asof, rule)
        for fut in contract_months(sym, asof, months):
            expiry = last_trade_date(sym, *_year_month(fut))
            rows.append(
                {
                    "symbol": fut.symbol,
                    "local_symbol": fut.local_symbol,
                    "contract_month": fut.contract_month,
                    "last_trade_date": expiry.isoformat(),
                    "roll_date": roll_date(fut, rule).isoformat(),
                    "days_to_expiry": (expiry - asof).days,
                    "is_front": fut.con_id == front.con_id,
                    "con_id": fut.con_id,
                    "exchange": fut.exchange,
                }
            )
    return rows


# --- resolving user input -------------------------------------------------------------------------

_MONTH_SUFFIX = re.compile(r"([FGHJKMNQUVXZ])(\d{1,2})")


def resolve(symbol_or_local: str, asof: date) -> Instrument:
    """Turn user input into an instrument as of `asof`.

    ``"MES"`` -> the front month; ``"MESZ6"`` -> the first December contract ending in 6 whose last trade date
    is on or after `asof` (the one IB would list); ``"MESZ26"`` -> December 2026; ``"SPY"`` -> the stock.
    """
    text = _norm(symbol_or_local)
    if text in _STOCKS_BY_SYMBOL:
        return _STOCKS_BY_SYMBOL[text]
    if text in _FUTURES_BY_SYMBOL:
        return front_month(text, asof)
    for product in sorted(_FUTURES_BY_SYMBOL, key=len, reverse=True):
        if not text.startswith(product):
            continue
        match = _MONTH_SUFFIX.fullmatch(text[len(product) :])
        if match is None:
            continue
        month = MONTH_CODES.index(match.group(1)) + 1
        digits = match.group(2)
        if len(digits) == 2:
            return contract(product, 2000 + int(digits), month)
        year = asof.year + (int(digits) - asof.year) % 10
        if last_trade_date(product, year, month) < asof:
            year += 10
        return contract(product, year, month)
    raise UnknownSymbolError(symbol_or_local, _known())

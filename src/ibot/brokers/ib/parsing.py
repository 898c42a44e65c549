"""Pure translation between ib_async objects and ibot's model: no socket, no event loop, no state.

Everything IB-specific about values lives here: unset sentinels (``1.7976931348623157e+308``,
``2147483647``, infinities), ``BOT``/``SLD`` sides, status spellings, time zones of bars (historical bars
in exchange time or epoch, daily bars as dates, 5-second real-time bars in UTC), tick type numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from ib_async import Contract, ContractDetails, Future, Order, Stock, Ticker, Trade
from ib_async.objects import AccountValue, BarData, CommissionReport, Execution, RealTimeBar
from ib_async.objects import Fill as IBFill
from ib_async.objects import Position as IBPosition

from ibot.exchange.hours import TradingHours
from ibot.model.errors import BarDataError, IbotError, InvalidOrderError
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import Bar, Tick, datetime_to_ns
from ibot.model.orders import Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side

__all__ = [
    "UNSET_DOUBLE",
    "UNSET_INTEGER",
    "ContractDataError",
    "account_values",
    "bar_from_bardata",
    "bar_from_realtime",
    "bars_from_bardata",
    "commission_of",
    "contract_for",
    "fill_from_ib",
    "instrument_from_details",
    "is_unset",
    "marketable_limit_price",
    "order_for",
    "order_status",
    "position_from_ib",
    "side_of_execution",
    "ticks_from_ticker",
    "update_from_trade",
]

UNSET_DOUBLE = 1.7976931348623157e308  # IB's "no value" for doubles (Double.MAX_VALUE)
UNSET_INTEGER = 2_147_483_647  # IB's "no value" for ints (Integer.MAX_VALUE)

# IB tick types (TWS API "Available Tick Types"); the second number is the delayed twin.
_BID = (1, 66)
_ASK = (2, 67)
_LAST = (4, 68)


class ContractDataError(IbotError, ValueError):
    """Contract details from IB that cannot become an Instrument (no con id, bad tick size...)."""


def is_unset(value: float | int | None) -> bool:
    """True for each IB spelling of "no value": None, NaN, +-inf, Double.MAX_VALUE, Integer.MAX_VALUE."""
    if value is None:
        return True
    v = float(value)
    return not math.isfinite(v) or v >= UNSET_DOUBLE or v == UNSET_INTEGER


# --- contracts ----------------------------------------------------------------------------------------------


def contract_for(instrument: Instrument) -> Contract:
    """The ib_async contract that asks IB for exactly `instrument` (a product without month is ambiguous)."""
    if instrument.sec_type is SecType.STK:
        return Stock(
            symbol=instrument.symbol,
            exchange=instrument.exchange or "SMART",
            currency=instrument.currency,
            primaryExchange=instrument.primary_exchange,
            conId=instrument.con_id if instrument.local_symbol or instrument.con_id else 0,
        )
    if instrument.sec_type is SecType.FUT:
        month = bool(instrument.contract_month)
        return Future(
            symbol=instrument.symbol,
            lastTradeDateOrContractMonth=instrument.contract_month,
            exchange=instrument.exchange,
            currency=instrument.currency,
            multiplier=_plain(instrument.multiplier),
            localSymbol=instrument.local_symbol,
            tradingClass=instrument.trading_class,
            conId=instrument.con_id if month else 0,
        )
    raise ContractDataError(f"{instrument.key}: {instrument.sec_type} is not tradable through the IB adapter")


def instrument_from_details(details: ContractDetails, base: Instrument | None = None) -> Instrument:
    """An Instrument from IB's contract details; `base` (the catalog entry) supplies what IB leaves out.

    IB's values win for identity (con id, local symbol, exchange, multiplier, tick size, expiry): those are
    what orders will be routed with.
    """
    c = details.contract
    if c is None or not c.conId:
        raise ContractDataError(f"contract details without a con id: {details!r}")
    where = c.localSymbol or c.symbol
    try:
        sec_type = SecType(c.secType)
    except ValueError:
        raise ContractDataError(f"{where}: security type {c.secType!r} is not FUT or STK") from None
    tick = _decimal(details.minTick)
    if tick is None and base is not None:
        tick = base.tick_size
    if tick is None or tick <= 0:
        raise ContractDataError(f"{where}: IB reports no usable minimum tick ({details.minTick!r})")
    multiplier = _decimal(c.multiplier) if c.multiplier else None
    if multiplier is None or multiplier <= 0:
        multiplier = base.multiplier if base is not None else Decimal(1)
    expiry: date | None = None
    contract_month = ""
    if sec_type is SecType.FUT:
        expiry = _ib_date(details.realExpirationDate) or _ib_date(c.lastTradeDateOrContractMonth)
        contract_month = details.contractMonth or c.lastTradeDateOrContractMonth[:6]
    return Instrument(
        symbol=c.symbol,
        sec_type=sec_type,
        exchange=c.exchange or (base.exchange if base else ""),
        currency=c.currency or (base.currency if base else "USD"),
        multiplier=multiplier,
        tick_size=tick,
        description=details.longName or (base.description if base else ""),
        local_symbol=c.localSymbol if sec_type is SecType.FUT else "",
        expiry=expiry,
        contract_month=contract_month,
        trading_class=c.tradingClass if sec_type is SecType.FUT else "",
        primary_exchange=c.primaryExchange or (base.primary_exchange if base else ""),
        con_id=c.conId,
        initial_margin=base.initial_margin if base is not None else Decimal(0),
    )


def _ib_date(text: str) -> date | None:
    """``20250321`` or ``20250321 08:30 US/Central`` -> date; a month-only ``202503`` or "" -> None."""
    head = (text or "").split(" ", 1)[0]
    if len(head) != 8 or not head.isdigit():
        return None
    return date(int(head[:4]), int(head[4:6]), int(head[6:]))


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        if is_unset(value):
            return None
        return Decimal(repr(value))  # 0.25 -> Decimal("0.25"), not the binary expansion
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _plain(d: Decimal) -> str:
    text = format(d.normalize(), "f")
    return text


# --- market data --------------------------------------------------------------------------------------------


def bar_from_bardata(bar: BarData, hours: TradingHours) -> Bar:
    """A historical bar: intraday `date` is an aware datetime (exchange zone with formatDate=1, UTC with 2);
    a daily bar's `date` is the trading day, stamped with that session's open (as BarAggregator does)."""
    when = bar.date
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise BarDataError(f"historical bar at {when.isoformat()} has no time zone; request formatDate=2")
        ts = datetime_to_ns(when)
    elif isinstance(when, date):
        ts = hours.nominal_open_close(when)[0]
    else:
        raise BarDataError(f"historical bar date {when!r} is neither a date nor a datetime")
    return Bar(ts, float(bar.open), float(bar.high), float(bar.low), float(bar.close), _volume(bar.volume))


def bars_from_bardata(bars: Iterable[BarData], hours: TradingHours) -> list[Bar]:
    return [bar_from_bardata(b, hours) for b in bars]


def bar_from_realtime(bar: RealTimeBar) -> Bar:
    """A 5-second real-time bar; IB stamps it with its start time in UTC epoch seconds."""
    when = bar.time
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # ib_async's default zone is UTC; the epoch value is UTC
    return Bar(datetime_to_ns(when), float(bar.open_), float(bar.high), float(bar.low), float(bar.close),
               _volume(bar.volume))  # fmt: skip


def _volume(value: float) -> float:
    v = float(value)
    return 0.0 if is_unset(v) or v < 0 else v


def ticks_from_ticker(ticker: Ticker, ts_ns: int) -> list[Tick]:
    """The top-of-book changes and trades of one ib_async ticker update, in arrival order.

    ib_async stamps ticks with the wall time it read them; `ts_ns` is the market time the caller assigns
    instead. A trade takes IB's own last-trade time (tick 45, whole seconds) when the ticker has one.
    """
    trade_ts = ts_ns
    if ticker.lastTimestamp is not None:
        trade_ts = datetime_to_ns(ticker.lastTimestamp)
    out: list[Tick] = []
    for t in ticker.ticks:
        price, size = float(t.price), float(t.size)
        if is_unset(price) or (price <= 0 and t.tickType not in _LAST):
            continue
        size = 0.0 if is_unset(size) or size < 0 else size
        if t.tickType in _LAST:
            if price == -1 and size == 0:
                continue
            out.append(Tick(trade_ts, last=price, last_size=size))
        elif t.tickType in _BID:
            out.append(Tick(ts_ns, bid=price, bid_size=size))
        elif t.tickType in _ASK:
            out.append(Tick(ts_ns, ask=price, ask_size=size))
    return out


# --- orders -------------------------------------------------------------------------------------------------

_STATUS: dict[str, OrderStatus] = {
    "PendingSubmit": OrderStatus.PENDING_SUBMIT,
    "ApiPending": OrderStatus.PENDING_SUBMIT,
    "PreSubmitted": OrderStatus.PRE_SUBMITTED,
    "Submitted": OrderStatus.SUBMITTED,
    "PendingCancel": OrderStatus.PENDING_CANCEL,
    "Cancelled": OrderStatus.CANCELLED,
    "ApiCancelled": OrderStatus.API_CANCELLED,
    "Filled": OrderStatus.FILLED,
    "Inactive": OrderStatus.INACTIVE,
}


def order_status(ib_status: str, previous: OrderStatus | None = None) -> OrderStatus:
    """Our status for IB's spelling. ib_async's own "ValidationError" (a warning on a live order) keeps
    the order's previous status; an unknown spelling is treated as still pending."""
    found = _STATUS.get(ib_status)
    if found is not None:
        return found
    if ib_status == "ValidationError" and previous is not None:
        return previous
    return previous or OrderStatus.PENDING_SUBMIT


def order_for(
    request: OrderRequest,
    instrument: Instrument,
    *,
    limit_price: float | None = None,
    account: str = "",
    transmit: bool = True,
    parent_id: int = 0,
    oca_group: str = "",
) -> Order:
    """The ib_async order for `request` on `instrument`: prices snapped to the tick grid after checking it.

    `limit_price` overrides the request's (a marketable limit computed by the broker). The client order id
    travels in IB's `orderRef`, which TWS echoes in open orders and executions.
    """
    where = f"order {request.client_order_id or '(new)'} {request.side} {instrument.key}"
    kind = request.order_type
    lmt = request.limit_price if limit_price is None else limit_price
    if limit_price is not None and kind is OrderType.MKT:
        kind = OrderType.LMT  # a marketable limit: a market order with a price cap
    order = Order()
    order.action = request.side.value
    order.totalQuantity = request.quantity
    order.orderType = kind.value
    if kind in (OrderType.LMT, OrderType.STP_LMT):
        if lmt is None:
            raise InvalidOrderError(f"{where}: {kind} order needs a limit price")
        order.lmtPrice = instrument.check_price(lmt, "limit price")
    if kind in (OrderType.STP, OrderType.STP_LMT):
        if request.stop_price is None:
            raise InvalidOrderError(f"{where}: {kind} order needs a stop price")
        order.auxPrice = instrument.check_price(request.stop_price, "stop price")
    order.tif = request.tif.value
    order.orderRef = request.client_order_id
    order.account = account
    order.transmit = transmit
    order.parentId = parent_id
    if oca_group or request.oca_group:
        order.ocaGroup = oca_group or request.oca_group
        order.ocaType = 1  # cancel the other orders of the group when one fills (IB OCA type 1)
    return order


def update_from_trade(
    trade: Trade, client_order_id: str, ts_ns: int, previous: OrderStatus | None = None
) -> OrderUpdate:
    """The OrderUpdate an ib_async trade's current status means."""
    s = trade.orderStatus
    filled = _whole(s.filled)
    total = _whole(trade.order.totalQuantity)
    remaining = _whole(s.remaining) if not is_unset(s.remaining) else max(total - filled, 0)
    status = order_status(s.status, previous)
    if status is OrderStatus.PENDING_SUBMIT and filled == 0 and remaining == 0:
        remaining = total  # ib_async's fresh trade carries remaining 0 until TWS reports
    avg = float(s.avgFillPrice) if not is_unset(s.avgFillPrice) and s.avgFillPrice else 0.0
    message = ""
    if trade.log:
        last = trade.log[-1]
        if last.errorCode:
            message = f"{last.errorCode}: {last.message}"
    if trade.advancedError:
        message = f"{message} {trade.advancedError}".strip()
    return OrderUpdate(client_order_id, status, filled, remaining, avg, ts_ns, message)


def _whole(value: float | Decimal) -> int:
    v = float(value)
    return 0 if is_unset(v) else round(v)


def side_of_execution(execution: Execution) -> Side:
    """IB reports executions as BOT / SLD."""
    if execution.side in ("BOT", "BUY"):
        return Side.BUY
    if execution.side in ("SLD", "SELL"):
        return Side.SELL
    raise InvalidOrderError(f"execution {execution.execId}: unknown side {execution.side!r}")


def commission_of(report: CommissionReport | None) -> Decimal | None:
    """The fee of a commission report, or None while IB has not sent one (or sent the unset sentinel).

    An early report can be empty (no exec id): treating it as a zero fee would book a free trade.
    """
    if report is None or not report.execId or is_unset(report.commission):
        return None
    return Decimal(repr(float(report.commission)))


def fill_from_ib(
    fill: IBFill, client_order_id: str, symbol: str, instrument: Instrument | None = None
) -> Fill:
    """One execution as a Fill; the price snapped to the tick grid when the instrument is known."""
    e = fill.execution
    price = float(e.price)
    if instrument is not None:
        price = instrument.round_to_tick(price)
    when = e.time if e.time.tzinfo is not None else e.time.replace(tzinfo=UTC)
    return Fill(
        client_order_id=client_order_id,
        symbol=symbol,
        side=side_of_execution(e),
        quantity=_whole(e.shares),
        price=price,
        ts=datetime_to_ns(when),
        commission=commission_of(fill.commissionReport) or Decimal(0),
        exec_id=e.execId,
    )


# --- account ------------------------------------------------------------------------------------------------


def position_from_ib(position: IBPosition) -> tuple[str, int, int, float]:
    """(account, con id, signed quantity, average cost per unit) of an IB position.

    IB's avgCost for futures includes the multiplier; it is divided out when the contract carries one.
    """
    c = position.contract
    qty = _whole(position.position)
    avg = float(position.avgCost)
    mult = _decimal(c.multiplier) if c.multiplier else None
    if mult is not None and mult > 0 and c.secType == "FUT":
        avg = avg / float(mult)
    return position.account, c.conId, qty, avg


def account_values(values: Iterable[AccountValue], currency: str = "USD") -> dict[str, Decimal]:
    """Numeric account values in `currency` (or with no currency) by tag; text values are left out."""
    out: dict[str, Decimal] = {}
    for v in values:
        if v.currency not in (currency, ""):
            continue
        d = _decimal(v.value)
        if d is not None:
            out[v.tag] = d
    return out


def marketable_limit_price(
    instrument: Instrument, side: Side, bid: float, ask: float, offset_ticks: int = 2
) -> float:
    """A limit that crosses the spread by `offset_ticks` ticks (buy: ask + n ticks, sell: bid - n ticks):
    fills like a market order against the quote, but never trades through the cap."""
    if offset_ticks < 0:
        raise InvalidOrderError(
            f"{instrument.key}: marketable limit offset {offset_ticks} must be >= 0 ticks"
        )
    quote = ask if side is Side.BUY else bid
    if is_unset(quote) or quote <= 0:
        missing = "ask" if side is Side.BUY else "bid"
        raise InvalidOrderError(f"{instrument.key}: no {missing} to price a marketable {side} limit")
    ticks = instrument.to_ticks(quote) + side.sign * offset_ticks
    return instrument.from_ticks(ticks)

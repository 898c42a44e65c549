"""Pure translation of constructed ib_async objects into ibot's model, and back."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from ib_async import Contract, ContractDetails, Future, Order, Ticker, Trade
from ib_async import OrderStatus as IBOrderStatus
from ib_async.objects import (
    BarData,
    CommissionReport,
    Execution,
    Position,
    RealTimeBar,
    TickData,
)
from ib_async.objects import (
    Fill as IBFill,
)

from ibot.brokers.ib.parsing import (
    UNSET_DOUBLE,
    ContractDataError,
    bar_from_bardata,
    bar_from_realtime,
    commission_of,
    fill_from_ib,
    instrument_from_details,
    is_unset,
    marketable_limit_price,
    order_for,
    order_status,
    position_from_ib,
    ticks_from_ticker,
    update_from_trade,
)
from ibot.exchange.hours import CME_GLOBEX
from ibot.model import catalog
from ibot.model.errors import BarDataError, InvalidOrderError, InvalidPriceError
from ibot.model.market import datetime_to_ns
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side, TimeInForce

MES = catalog.contract("MES", 2025, 6)
T0 = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, UNSET_DOUBLE, 2_147_483_647])
def test_every_unset_spelling_is_unset(value: float | None) -> None:
    assert is_unset(value)


def test_contract_details_become_an_instrument_with_ibs_identity() -> None:
    c = Future(conId=555, symbol="MES", lastTradeDateOrContractMonth="20250620", exchange="CME",
               currency="USD", multiplier="5", localSymbol="MESM5", tradingClass="MES")  # fmt: skip
    d = ContractDetails(contract=c, minTick=0.25, contractMonth="202506", realExpirationDate="20250620")
    inst = instrument_from_details(d, catalog.get_instrument("MES"))
    assert (inst.con_id, inst.local_symbol, inst.contract_month) == (555, "MESM5", "202506")
    assert inst.expiry == date(2025, 6, 20)
    assert inst.tick_size == Decimal("0.25") and inst.multiplier == Decimal(5)
    with pytest.raises(ContractDataError, match="con id"):
        instrument_from_details(ContractDetails(contract=Contract(symbol="X")))


def test_historical_bars_intraday_any_zone_and_daily_at_the_session_open() -> None:
    central = datetime(2025, 3, 5, 9, 0, tzinfo=ZoneInfo("US/Central"))
    bar = bar_from_bardata(BarData(date=central, open=1, high=2, low=0.5, close=1.5, volume=7), CME_GLOBEX)
    assert bar.ts == datetime_to_ns(T0) and bar.volume == 7
    daily = bar_from_bardata(BarData(date=date(2025, 3, 5), open=1, high=1, low=1, close=1), CME_GLOBEX)
    assert daily.ts == datetime_to_ns(datetime(2025, 3, 4, 23, 0, tzinfo=UTC))  # 18:00 EST the day before
    with pytest.raises(BarDataError, match="no time zone"):
        bar_from_bardata(BarData(date=datetime(2025, 3, 5, 9, 0)), CME_GLOBEX)


def test_real_time_bar_is_utc_and_unset_volume_is_zero() -> None:
    rt = RealTimeBar(time=T0, open_=10, high=11, low=9, close=10.5, volume=-1)
    assert tuple(bar_from_realtime(rt)) == (datetime_to_ns(T0), 10, 11, 9, 10.5, 0.0)


def test_ticker_ticks_become_quotes_and_trades_with_ibs_trade_time() -> None:
    ticker = Ticker(contract=Future("MES"))
    ticker.lastTimestamp = datetime(2025, 3, 5, 14, 59, 58, tzinfo=UTC)
    ticker.ticks = [
        TickData(T0, 1, 5000.25, 3),
        TickData(T0, 2, 5000.5, 4),
        TickData(T0, 4, 5000.5, 2),
        TickData(T0, 5, 5000.5, 2),  # the size echo: no second trade
        TickData(T0, 1, UNSET_DOUBLE, 0),
    ]
    now = datetime_to_ns(T0)
    ticks = ticks_from_ticker(ticker, now)
    assert [(t.bid, t.bid_size) for t in ticks[:1]] == [(5000.25, 3)]
    assert ticks[1].ask == 5000.5 and math.isnan(ticks[1].bid) and ticks[1].ts == now
    assert (ticks[2].last, ticks[2].last_size, ticks[2].ts) == (5000.5, 2, now - 2_000_000_000)
    assert len(ticks) == 3


def test_orders_carry_type_prices_on_grid_and_the_client_order_id() -> None:
    stop = OrderRequest("MES", Side.SELL, 2, OrderType.STP_LMT, limit_price=4999.0, stop_price=5000.0,
                        tif=TimeInForce.GTC, client_order_id="c-1")  # fmt: skip
    o = order_for(stop, MES, account="DU1", parent_id=7, transmit=False)
    assert (o.action, o.totalQuantity, o.orderType, o.lmtPrice, o.auxPrice) == (
        "SELL",
        2,
        "STP LMT",
        4999.0,
        5000.0,
    )
    assert (o.tif, o.orderRef, o.account, o.parentId, o.transmit) == ("GTC", "c-1", "DU1", 7, False)
    capped = order_for(OrderRequest("MES", Side.BUY, 1), MES, limit_price=5001.5)
    assert (capped.orderType, capped.lmtPrice) == ("LMT", 5001.5)
    with pytest.raises(InvalidPriceError, match="tick grid"):
        order_for(OrderRequest("MES", Side.BUY, 1, OrderType.LMT, limit_price=5000.1), MES)


def test_marketable_limit_crosses_the_spread_by_whole_ticks() -> None:
    assert marketable_limit_price(MES, Side.BUY, 5000.0, 5000.25, 2) == 5000.75
    assert marketable_limit_price(MES, Side.SELL, 5000.0, 5000.25, 2) == 4999.5
    with pytest.raises(InvalidOrderError, match="no ask"):
        marketable_limit_price(MES, Side.BUY, 5000.0, math.nan)


def test_status_spellings_and_validation_warnings_keep_the_previous_state() -> None:
    assert order_status("PreSubmitted") is OrderStatus.PRE_SUBMITTED
    assert order_status("ApiPending") is OrderStatus.PENDING_SUBMIT
    assert order_status("ValidationError", OrderStatus.SUBMITTED) is OrderStatus.SUBMITTED


def test_trade_status_becomes_an_order_update() -> None:
    trade = Trade(contract=Future("MES"), order=Order(orderId=3, totalQuantity=5),
                  orderStatus=IBOrderStatus(orderId=3, status="Submitted", filled=2, remaining=3,
                                            avgFillPrice=5000.25))  # fmt: skip
    u = update_from_trade(trade, "c-3", 42)
    assert (u.status, u.filled, u.remaining, u.avg_fill_price, u.ts) == (
        OrderStatus.SUBMITTED,
        2,
        3,
        5000.25,
        42,
    )


def test_execution_and_commission_become_a_fill_and_an_early_empty_report_is_not_a_zero_fee() -> None:
    e = Execution(execId="e1", time=T0, side="SLD", shares=2, price=5000.2500001, orderId=3)
    report = CommissionReport(execId="e1", commission=1.24, currency="USD")
    fill = fill_from_ib(IBFill(Future("MES"), e, report, T0), "c-3", "MESM5", MES)
    assert (fill.side, fill.quantity, fill.price, fill.commission) == (Side.SELL, 2, 5000.25, Decimal("1.24"))
    assert fill.ts == datetime_to_ns(T0)
    assert commission_of(CommissionReport()) is None
    assert commission_of(CommissionReport(execId="e1", commission=UNSET_DOUBLE)) is None


def test_futures_position_average_cost_is_per_unit() -> None:
    p = Position("DU1", Future("MES", conId=9, multiplier="5"), -2, 25001.25)
    assert position_from_ib(p) == ("DU1", 9, -2, 5000.25)

"""Pre-trade risk guards that a mutation run showed unguarded (issue 13, finding 11): the shipped default
limits, the first trading day's counters, NaN and infinite ticks, stop prices, and the flatten rule.

Each test fails if a limit, a count, a quantity or a price in `ibot.oms.risk` is off by one or inverted.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from oms_helpers import MES, MINUTE, T0
from test_risk import buy, only, refused, risk, sell

from ibot.model.catalog import contract
from ibot.model.clock import Clock
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import datetime_to_ns
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.risk import KillSwitch, RiskLimitExceeded, RiskLimits, RiskManager

HOUR = 60 * MINUTE


# The shipped defaults ---------------------------------------------------------------------------------------
def test_the_shipped_default_limits_are_the_documented_small_ones() -> None:
    lim = RiskLimits()
    assert (lim.max_position, lim.max_order_size, lim.max_orders_per_day, lim.max_trades_per_day) == (
        5,
        5,
        200,
        200,
    )
    assert (lim.daily_loss_limit, lim.price_band_pct, lim.price_band_ticks) == (None, Decimal(5), None)
    assert lim.enforce_trading_hours is True
    assert lim.max_position_by_symbol == {}
    assert RiskManager().limits == lim


def test_the_default_limits_refuse_just_past_each_limit_and_pass_at_it() -> None:
    rm = RiskManager(clock=Clock(T0))  # the shipped limits, inside the session
    rm.check(buy(5), MES)
    err = refused(rm, buy(6))
    assert (err.limit, err.value, err.allowed) == ("max_order_size", 6, 5)
    rm.on_fill(MES, Side.BUY, 4, 5000.0)
    rm.check(buy(1), MES)
    err = refused(rm, buy(2))
    assert (err.limit, err.value, err.allowed) == ("max_position", 6, 5)
    rm.check(sell(5), MES)  # reducing (and 1 short) is fine
    for _ in range(199):
        rm.on_order_sent()
    rm.check(sell(1), MES)  # the 200th order of the day
    rm.on_order_sent()
    err = refused(rm, sell(1))
    assert (err.limit, err.value, err.allowed) == ("max_orders_per_day", 201, 200)
    # 5 % band around the last price (5000): 5250 passes, one tick more does not
    fresh = RiskManager(clock=Clock(T0))
    fresh.mark(MES, 5000.0)
    fresh.check(buy(order_type=OrderType.LMT, limit_price=5250.0), MES)
    assert refused(fresh, buy(order_type=OrderType.LMT, limit_price=5250.25)).limit == "price_band"
    # and no daily loss limit: a large loss never trips
    fresh.on_fill(MES, Side.BUY, 1, 5000.0)
    assert fresh.mark(MES, 1000.0) is False
    assert fresh.kill_switch is None


def test_the_default_limits_enforce_trading_hours() -> None:
    saturday = datetime_to_ns(datetime(2024, 11, 9, 15, 0, tzinfo=UTC))
    err = refused(RiskManager(clock=Clock(saturday)), buy(1))
    assert err.limit == "trading_hours"
    assert "next open 2024-11-10T23:00:00+00:00" in str(err)


# Day counters from the very first order ---------------------------------------------------------------------
def test_the_first_days_counters_start_at_zero() -> None:
    """A limit of 1 lets exactly one order and one trade through on the first day (count starts at 0)."""
    rm = risk(max_orders_per_day=1, max_trades_per_day=1)
    assert (rm.orders_today, rm.trades_today) == (0, 0)
    rm.check(buy(), MES)
    rm.on_order_sent()
    assert rm.orders_today == 1
    err = refused(rm, buy())
    assert (err.limit, err.value, err.allowed) == ("max_orders_per_day", 2, 1)
    assert "would be order 2 of trading day 2024-11-05 > allowed 1 (over by 1)" in str(err)
    rm2 = risk(max_trades_per_day=1)
    rm2.on_fill(MES, Side.BUY, 1, 5000.0)
    assert rm2.trades_today == 1
    err = refused(rm2, sell())
    assert (err.limit, err.value, err.allowed) == ("max_trades_per_day", 2, 1)
    assert "would make trade 2 of trading day 2024-11-05 > allowed 1 (over by 1)" in str(err)


def test_a_limit_of_zero_refuses_the_first_order_and_the_first_trade() -> None:
    err = refused(risk(max_orders_per_day=0), buy())
    assert (err.limit, err.value, err.allowed) == ("max_orders_per_day", 1, 0)
    err = refused(risk(max_trades_per_day=0), buy())
    assert (err.limit, err.value, err.allowed) == ("max_trades_per_day", 1, 0)


def test_a_modify_is_not_a_new_order_for_the_daily_count() -> None:
    rm = risk(max_orders_per_day=1)
    rm.on_order_sent()
    rm.check(buy(), MES, new_order=False)
    assert refused(rm, buy()).limit == "max_orders_per_day"


def test_the_day_rolls_once_at_the_globex_open_and_resets_every_counter_and_the_days_pnl() -> None:
    rm = risk(max_orders_per_day=1, max_trades_per_day=1)
    rm.on_order_sent()
    rm.on_fill(MES, Side.BUY, 1, 5000.0)
    rm.mark(MES, 4990.0)
    assert rm.day_pnl() == Decimal(-50)
    rm.clock.advance(T0 + 7 * HOUR)  # 17:00 New York: still the same trading day
    assert refused(rm, buy()).limit == "max_orders_per_day"
    rm.clock.advance(T0 + 8 * HOUR)  # 18:00 New York: the next trading day opens
    rm.check(buy(), MES)
    assert (rm.orders_today, rm.trades_today) == (0, 0)
    assert rm.day_pnl() == Decimal(0)  # the position carried at 4990 is today's start
    rm.mark(MES, 4991.0)
    assert rm.day_pnl() == Decimal(5)
    assert rm.position(MES) == 1


# Day P&L and the kill switch --------------------------------------------------------------------------------
def test_day_pnl_is_exact_for_shorts_and_across_instruments() -> None:
    mnq = contract("MNQ", 2024, 12)
    rm = risk()
    rm.on_fill(MES, Side.SELL, 2, 5000.25)
    rm.on_fill(mnq, Side.BUY, 1, 20000.0)
    rm.mark(MES, 5001.0)  # short 2 loses 0.75 x 2 x 5 = 7.50
    rm.mark(mnq, 20000.5)  # long 1 gains 0.5 x 2 = 1.00
    assert rm.day_pnl() == Decimal("-6.5")
    assert rm.positions() == {MES.key: -2, mnq.key: 1}
    assert rm.on_commission(MES, Decimal("1.24")) is False
    assert rm.day_pnl() == Decimal("-7.74")
    assert set(rm.instruments()) == {MES, mnq}


def test_the_loss_limit_trips_only_past_it_and_once() -> None:
    rm = risk(daily_loss_limit=Decimal(10))
    rm.on_fill(MES, Side.BUY, 1, 5000.0)
    assert rm.mark(MES, 4998.0) is False  # -10: at the limit
    assert rm.on_commission(MES, Decimal("0.01")) is True  # -10.01: past it, by the fee
    ks = rm.kill_switch
    assert ks is not None and ks.ts == T0
    assert ks.reason == "daily_loss: day P&L -10.01 < allowed -10 (over by 0.01)"
    assert rm.on_fill(MES, Side.BUY, 1, 4998.0) is False  # already tripped: not again
    rm.trip("another reason")
    assert rm.kill_switch is ks  # the first reason stays
    rm.reset_kill_switch()
    assert rm.kill_switch is None
    assert rm.check_loss() is True  # still past the limit: trips again


def test_a_manual_trip_records_its_time_from_the_data_clock() -> None:
    rm = risk()
    rm.trip("by hand")
    assert rm.kill_switch == KillSwitch("by hand", T0)
    rm.reset_kill_switch()
    rm.trip("later", T0 + 5)
    assert rm.kill_switch == KillSwitch("later", T0 + 5)


def test_adopting_a_position_keeps_the_days_pnl() -> None:
    rm = risk()
    rm.mark(MES, 5000.0)
    rm.set_position(MES, 3)  # adopted from the broker: no P&L from the adoption itself
    assert rm.day_pnl() == Decimal(0)
    assert rm.position(MES) == 3
    rm.mark(MES, 5001.0)
    assert rm.day_pnl() == Decimal(15)
    rm.set_position(MES, 3)  # the same: nothing changes
    assert rm.day_pnl() == Decimal(15)


# NaN, infinite and non-positive ticks -----------------------------------------------------------------------
@pytest.mark.parametrize("tick", [math.nan, math.inf, -math.inf, Decimal("NaN"), Decimal("Infinity")])
def test_a_nan_or_infinite_tick_is_ignored(tick: Any) -> None:
    rm = risk(daily_loss_limit=Decimal(1))
    rm.on_fill(MES, Side.BUY, 1, 5000.0)
    assert rm.mark(MES, tick) is False
    assert rm.last_price(MES) == Decimal(5000)
    assert rm.day_pnl() == Decimal(0)
    assert rm.kill_switch is None


def test_a_zero_or_negative_price_counts_for_a_future_but_not_for_a_stock() -> None:
    rm = risk()
    rm.mark(MES, 0.0)
    assert rm.last_price(MES) == Decimal(0)
    rm.mark(MES, -1.5)  # futures can trade below zero (crude oil, 2020)
    assert rm.last_price(MES) == Decimal("-1.5")
    stock = Instrument("AAPL", SecType.STK, "NASDAQ", "USD", Decimal(1), Decimal("0.01"))
    rm.mark(stock, 150.0)
    rm.mark(stock, 0.0)
    assert rm.last_price(stock) == Decimal(150)
    assert rm.last_price("nothing") is None
    assert rm.position("nothing") == 0


# Stop and limit prices --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stop", "why"),
    [
        (math.nan, "is not a finite number"),
        (math.inf, "is not a finite number"),
        (5000.1, "is not on the tick grid of 0.25"),
    ],
)
def test_a_stop_price_is_checked_for_sanity_like_a_limit_price(stop: float, why: str) -> None:
    request = sell(order_type=OrderType.STP, stop_price=4990.0)
    object.__setattr__(request, "stop_price", stop)
    err = refused(risk(), request)
    assert (err.limit, err.value) == ("price", stop)
    assert f"stop price {stop!r} {why}" in str(err)


def test_a_limit_price_of_zero_or_less_is_refused_for_a_stock_but_not_for_a_future() -> None:
    stock = Instrument("AAPL", SecType.STK, "NASDAQ", "USD", Decimal(1), Decimal("0.01"))
    request = OrderRequest("AAPL", Side.BUY, 1, OrderType.LMT, limit_price=1.0)
    object.__setattr__(request, "limit_price", 0.0)
    rm = risk()
    with pytest.raises(RiskLimitExceeded, match="must be positive") as info:
        rm.check(request, stock)
    assert info.value.limit == "price"
    rm.check(buy(order_type=OrderType.LMT, limit_price=-1.0), MES)  # a future may be bid below zero


@pytest.mark.parametrize(
    ("order_type", "missing"),
    [(OrderType.LMT, "limit"), (OrderType.STP, "stop"), (OrderType.STP_LMT, "stop")],
)
def test_an_order_without_the_price_its_type_needs_is_refused(order_type: OrderType, missing: str) -> None:
    request = buy(order_type=OrderType.STP_LMT, limit_price=5000.0, stop_price=5000.0)
    object.__setattr__(request, "order_type", order_type)
    object.__setattr__(request, f"{missing}_price", None)
    err = refused(risk(), request)
    assert (err.limit, err.value, err.allowed) == ("price", None, f"a {missing} price")
    assert f"{order_type} order has no {missing} price" in str(err)


def test_a_bool_or_fractional_quantity_is_refused() -> None:
    for bad in (True, 1.5):
        request = buy(1)
        object.__setattr__(request, "quantity", bad)
        err = refused(risk(), request)
        assert (err.limit, err.value, err.allowed) == ("quantity", bad, 1)


def test_a_stop_limits_stop_price_is_held_to_the_band_even_when_its_limit_passes() -> None:
    rm = risk(price_band_ticks=8)
    rm.mark(MES, 5000.0)
    rm.check(sell(order_type=OrderType.STP_LMT, limit_price=4998.0, stop_price=4998.0), MES)  # 8 ticks
    err = refused(rm, sell(order_type=OrderType.STP_LMT, limit_price=4998.0, stop_price=4997.75))
    assert (err.limit, err.value, err.allowed) == ("price_band", 9, 8)
    assert "stop 4997.75 is 9 ticks from last 5000.0 > allowed 8 ticks (over by 1)" in str(err)
    err = refused(rm, sell(order_type=OrderType.STP, stop_price=5002.25))  # above the market: same distance
    assert err.value == 9


def test_a_stop_with_no_last_price_is_refused_naming_the_stop() -> None:
    err = refused(risk(price_band_ticks=8), sell(order_type=OrderType.STP, stop_price=4990.0))
    assert (err.limit, err.value, err.allowed) == ("price_band", None, "a last price")
    assert "to check the stop price 4990.0 against" in str(err)


def test_the_percent_band_measures_from_the_last_price_in_both_directions() -> None:
    rm = risk(price_band_pct=Decimal(2))
    rm.mark(MES, 5000.0)
    rm.check(sell(order_type=OrderType.LMT, limit_price=4900.0), MES)  # exactly 2 %
    err = refused(rm, sell(order_type=OrderType.LMT, limit_price=4899.75))
    assert (err.limit, err.value, err.allowed) == ("price_band", Decimal("2.005"), Decimal(2))
    assert "limit 4899.75 is 2.005% from last 5000.0 > allowed 2% (over by 0.005%)" in str(err)


def test_both_bands_apply_together() -> None:
    rm = risk(price_band_pct=Decimal(5), price_band_ticks=4)
    rm.mark(MES, 5000.0)
    rm.check(buy(order_type=OrderType.LMT, limit_price=5001.0), MES)
    assert refused(rm, buy(order_type=OrderType.LMT, limit_price=5001.25)).value == 5


# Position limits --------------------------------------------------------------------------------------------
def test_the_per_symbol_limit_is_found_by_local_symbol_first() -> None:
    limits = only(max_position=5, max_position_by_symbol={"MESZ4": 1, "MES": 3})
    assert limits.position_limit(MES) == 1
    assert only(max_position=5, max_position_by_symbol={"MES": 3}).position_limit(MES) == 3
    assert only(max_position=None).position_limit(MES) is None


def test_an_order_at_exactly_the_position_limit_passes_and_one_more_is_refused_with_working_orders() -> None:
    rm = risk(max_position=3)
    rm.on_fill(MES, Side.SELL, 1, 5000.0)
    rm.check(sell(1), MES, working_same_side=1)  # -1 - 1 - 1 = -3
    err = refused(rm, sell(2), working_same_side=1)
    assert (err.limit, err.value, err.allowed) == ("max_position", 4, 3)
    assert "SELL 2 MESZ4 with 1 working would make position 4 > allowed 3 (over by 1)" in str(err)


def test_max_position_zero_allows_only_reducing() -> None:
    rm = risk(max_position=0)
    assert refused(rm, buy(1)).value == 1
    rm.set_position(MES, 2)
    rm.check(sell(2), MES)
    rm.check(sell(1), MES, working_same_side=1)


# The flatten rule -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("position", "side", "quantity", "ok"),
    [
        (2, Side.SELL, 2, True),
        (2, Side.SELL, 1, True),
        (-1, Side.BUY, 1, True),
        (2, Side.SELL, 3, False),  # would flip
        (2, Side.BUY, 1, False),  # adds
        (-1, Side.SELL, 1, False),
        (0, Side.SELL, 1, False),  # nothing to flatten
        (0, Side.BUY, 1, False),
    ],
)
def test_a_flatten_must_reduce_without_flipping(position: int, side: Side, quantity: int, ok: bool) -> None:
    rm = risk(max_order_size=1, max_position=0)
    rm.set_position(MES, position)
    request = OrderRequest("MES", side, quantity)
    if ok:
        rm.check(request, MES, flatten=True)
        return
    err = refused(rm, request, flatten=True)
    after = position + side.sign * quantity
    assert (err.limit, err.value, err.allowed) == ("flatten", after, 0)
    assert f"makes position {after} from {position}; a close-out must reduce it" in str(err)


# Event time, not the clock ---------------------------------------------------------------------------------
def test_every_feed_uses_its_events_time_for_the_trading_day() -> None:
    """The clock stays at T0 (Tuesday); events stamped in Wednesday's session roll the day by themselves."""
    wednesday = T0 + 9 * HOUR
    rm = risk(max_orders_per_day=1, max_trades_per_day=5)
    rm.on_order_sent()
    rm.on_order_sent(wednesday)
    assert rm.orders_today == 1
    rm2 = risk()
    rm2.on_fill(MES, Side.BUY, 1, 5000.0)
    rm2.on_fill(MES, Side.BUY, 1, 5000.0, wednesday)
    assert rm2.trades_today == 1
    rm3 = risk()
    rm3.on_commission(MES, Decimal(1))
    rm3.on_commission(MES, Decimal(2), wednesday)
    assert rm3.day_pnl() == Decimal(-2)
    rm4 = risk()
    rm4.on_fill(MES, Side.BUY, 1, 5000.0)
    rm4.mark(MES, 4990.0)
    assert rm4.day_pnl() == Decimal(-50)
    rm4.mark(MES, 4990.0, wednesday)  # the new day starts marked at 4990
    assert rm4.day_pnl() == Decimal(0)


def test_a_trip_is_stamped_with_the_time_of_the_event_that_caused_it() -> None:
    at = T0 + 5 * MINUTE
    for feed in ("mark", "fill", "commission"):
        rm = risk(daily_loss_limit=Decimal(1))
        rm.on_fill(MES, Side.BUY, 1, 5000.0)
        if feed == "mark":
            assert rm.mark(MES, 4999.0, at) is True
        elif feed == "fill":
            assert rm.on_fill(MES, Side.SELL, 1, 4999.0, at) is True
        else:
            assert rm.on_commission(MES, Decimal(2), at) is True
        assert rm.kill_switch is not None and rm.kill_switch.ts == at, feed


def test_adopting_twice_accumulates_the_days_opening_value() -> None:
    rm = risk()
    rm.mark(MES, 5000.0)
    rm.set_position(MES, 3)
    rm.set_position(MES, -1)
    assert rm.position(MES) == -1
    assert rm.day_pnl() == Decimal(0)
    rm.mark(MES, 4999.0)
    assert rm.day_pnl() == Decimal(5)  # short 1 gained 1 point x 5
    rm.on_fill(MES, Side.BUY, 1, 4999.0)
    assert rm.position(MES) == 0
    assert rm.day_pnl() == Decimal(5)


def test_adopting_before_any_price_is_valued_at_the_first_one() -> None:
    """Contracts adopted with no price known add no P&L when the first price comes; adoptions add up."""
    rm = risk()
    rm.set_position(MES, 2)
    rm.set_position(MES, 3)
    assert rm.day_pnl() == Decimal(0)
    rm.mark(MES, 5000.0)
    assert rm.day_pnl() == Decimal(0)
    rm.mark(MES, 5001.0)
    assert rm.day_pnl() == Decimal(15)  # 3 x 1 point x 5, counted from the first price only
    rm.set_position(MES, 1)
    assert rm.day_pnl() == Decimal(15)
    rm.mark(MES, 5002.0)
    assert rm.day_pnl() == Decimal(20)


def test_a_refusal_carries_its_message() -> None:
    err = refused(risk(max_order_size=1), buy(2))
    assert err.message == str(err)
    assert err.message.startswith("max_order_size: BUY 2 MESZ4 has quantity 2 > allowed 1")


def test_a_stock_price_below_one_is_a_price() -> None:
    stock = Instrument("PENNY", SecType.STK, "NASDAQ", "USD", Decimal(1), Decimal("0.0001"))
    rm = risk()
    rm.mark(stock, 0.5)
    assert rm.last_price(stock) == Decimal("0.5")


def test_the_percent_band_is_skipped_at_a_last_price_of_zero() -> None:
    rm = risk(price_band_pct=Decimal(1))
    rm.mark(MES, 0.0)  # a future at zero: no percent can be measured from it
    rm.check(buy(order_type=OrderType.LMT, limit_price=0.25), MES)


def test_no_books_give_an_exact_zero_pnl() -> None:
    pnl = risk().day_pnl()
    assert isinstance(pnl, Decimal) and pnl == 0


def test_the_trip_and_the_reset_are_logged_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    rm = risk()
    rm.reset_kill_switch()  # nothing tripped: nothing to say
    assert caplog.records == []
    with caplog.at_level("WARNING", logger="ibot.oms.risk"):
        rm.trip("daily_loss: test")
        rm.reset_kill_switch()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "risk: KILL SWITCH tripped: daily_loss: test"),
        ("WARNING", "risk: kill switch reset (was: daily_loss: test)"),
    ]
    assert rm.kill_switch is None


def test_an_order_may_not_flip_a_position_above_the_limit_into_one_past_it_on_the_other_side() -> None:
    """Adopted long 4 with a limit of 2: selling down is always allowed, but not past flat beyond -2."""
    rm = risk(max_position=2)
    rm.set_position(MES, 4)
    rm.check(sell(3), MES)  # 1
    rm.check(sell(6), MES)  # -2: at the limit on the other side
    for qty, short in ((7, 3), (8, 4)):
        err = refused(rm, sell(qty))
        assert (err.limit, err.value, err.allowed) == ("max_position", short, 2)
    err = refused(rm, sell(2), working_same_side=5)
    assert (err.value, err.allowed) == (3, 2)


def test_a_bogus_side_or_quantity_is_refused_with_one_sentence() -> None:
    request = buy(1)
    object.__setattr__(request, "side", "HOLD")
    err = refused(risk(), request)
    assert (err.limit, err.value, err.allowed) == ("side", "HOLD", "BUY/SELL")
    assert str(err) == "side: 'HOLD' is not BUY or SELL"
    request = buy(1)
    object.__setattr__(request, "quantity", 0)
    assert (
        str(refused(risk(), request))
        == "quantity: BUY 0 MESZ4 has quantity 0; it must be a whole number >= 1"
    )


def test_refusals_name_the_order_and_the_trading_hours_refusal_its_time_and_session() -> None:
    rm = risk(price_band_ticks=4)
    rm.mark(MES, 5000.0)
    err = refused(rm, sell(2, order_type=OrderType.STP, stop_price=4998.75))
    assert str(err).startswith("price_band: SELL 2 MESZ4 stop 4998.75 is 5 ticks from last 5000.0")
    saturday = datetime(2024, 11, 9, 15, 0, tzinfo=UTC)
    closed = RiskManager(only(enforce_trading_hours=True), Clock(datetime_to_ns(saturday)))
    err = refused(closed, buy(1))
    assert (err.limit, err.value, err.allowed) == ("trading_hours", saturday, "CME Globex")
    assert str(err).startswith(
        "trading_hours: BUY 1 MESZ4 at 2024-11-09T15:00:00+00:00 is outside the CME Globex"
    )


def test_a_new_trading_day_is_logged_once_with_both_days(caplog: pytest.LogCaptureFixture) -> None:
    rm = risk()
    with caplog.at_level("INFO", logger="ibot.oms.risk"):
        rm.on_order_sent()  # the first day: nothing to say
        rm.on_order_sent(T0 + 9 * HOUR)
        rm.on_order_sent(T0 + 10 * HOUR)
    assert [r.getMessage() for r in caplog.records] == [
        "risk: new trading day 2024-11-06 (was 2024-11-05); day counters and day P&L reset"
    ]


def test_a_price_refusal_names_which_price_and_what_is_wrong_exactly() -> None:
    request = buy(order_type=OrderType.LMT, limit_price=5000.0)
    object.__setattr__(request, "limit_price", math.nan)
    err = refused(risk(), request)
    assert (err.limit, err.allowed) == ("price", "finite, on the tick grid")
    assert str(err) == "price: BUY 1 MESZ4 limit price nan is not a finite number"
    for bogus in (True, "5000"):
        object.__setattr__(request, "limit_price", bogus)
        assert (
            str(refused(risk(), request))
            == f"price: BUY 1 MESZ4 limit price {bogus!r} is not a finite number"
        )
    stock = Instrument("PENNY", SecType.STK, "NASDAQ", "USD", Decimal(1), Decimal("0.0001"))
    below_zero = OrderRequest("PENNY", Side.BUY, 1, OrderType.LMT, limit_price=1.0)
    object.__setattr__(below_zero, "limit_price", -0.5)
    with pytest.raises(RiskLimitExceeded) as info:
        risk().check(below_zero, stock)
    assert str(info.value) == "price: BUY 1 PENNY limit price -0.5 must be positive"
    risk().check(
        OrderRequest("PENNY", Side.BUY, 1, OrderType.LMT, limit_price=0.5), stock
    )  # below 1 is a price

"""Pre-trade risk: each limit refuses with its name and the amount over, and accepts just under it."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from oms_helpers import MES, MINUTE, MNQ, T0
from pydantic import ValidationError

from ibot.model.clock import Clock
from ibot.model.errors import InvalidOrderError
from ibot.model.market import datetime_to_ns
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.risk import RiskLimitExceeded, RiskLimits, RiskManager

HOUR = 60 * MINUTE


def only(**kw: Any) -> RiskLimits:
    """Limits with everything off except what the test names."""
    base: dict[str, Any] = {
        "max_position": None,
        "max_order_size": None,
        "max_orders_per_day": None,
        "max_trades_per_day": None,
        "daily_loss_limit": None,
        "price_band_pct": None,
        "price_band_ticks": None,
        "enforce_trading_hours": False,
    }
    base.update(kw)
    return RiskLimits(**base)


def risk(**kw: Any) -> RiskManager:
    return RiskManager(only(**kw), Clock(T0))


def buy(qty: int = 1, **kw: Any) -> OrderRequest:
    return OrderRequest("MES", Side.BUY, qty, **kw)


def sell(qty: int = 1, **kw: Any) -> OrderRequest:
    return OrderRequest("MES", Side.SELL, qty, **kw)


def refused(rm: RiskManager, request: OrderRequest, **kw: Any) -> RiskLimitExceeded:
    with pytest.raises(RiskLimitExceeded) as info:
        rm.check(request, MES, **kw)
    return info.value


# max_position -----
def test_max_position_refuses_the_order_that_would_exceed_it_and_says_by_how_much() -> None:
    rm = risk(max_position=2)
    rm.on_fill(MES, Side.BUY, 1, 5000.0)
    err = refused(rm, buy(2))
    assert (err.limit, err.value, err.allowed) == ("max_position", 3, 2)
    assert "max_position: BUY 2 MESZ4 would make position 3 > allowed 2 (over by 1)" in str(err)
    rm.check(buy(1), MES)  # position 2: exactly at the limit


def test_max_position_counts_working_orders_in_the_same_direction() -> None:
    rm = risk(max_position=2)
    err = refused(rm, buy(1), working_same_side=2)
    assert (err.limit, err.value, err.allowed) == ("max_position", 3, 2)
    assert "with 2 working" in str(err)
    rm.check(buy(1), MES, working_same_side=1)


def test_max_position_applies_to_shorts_and_never_blocks_a_reducing_order() -> None:
    rm = risk(max_position=2)
    rm.on_fill(MES, Side.SELL, 2, 5000.0)
    err = refused(rm, sell(1))
    assert (err.limit, err.value) == ("max_position", 3)
    rm.set_position(MES, 4)  # above the limit (adopted from the broker): selling 1 reduces it
    rm.check(sell(1), MES)


def test_max_position_per_symbol_override() -> None:
    rm = RiskManager(only(max_position=5, max_position_by_symbol={"MES": 1}), Clock(T0))
    err = refused(rm, buy(2))
    assert (err.value, err.allowed) == (2, 1)
    rm.check(OrderRequest("MNQ", Side.BUY, 5), MNQ)


# max_order_size -----
def test_max_order_size() -> None:
    rm = risk(max_order_size=3)
    err = refused(rm, buy(4))
    assert (err.limit, err.value, err.allowed) == ("max_order_size", 4, 3)
    assert "quantity 4 > allowed 3 (over by 1)" in str(err)
    rm.check(buy(3), MES)


# orders and trades per day -----
def test_max_orders_per_day_counts_in_the_data_clocks_trading_day() -> None:
    rm = risk(max_orders_per_day=2)
    rm.on_order_sent()
    rm.check(buy(), MES)  # would be the 2nd: allowed
    rm.on_order_sent()
    err = refused(rm, buy())
    assert (err.limit, err.value, err.allowed) == ("max_orders_per_day", 3, 2)
    assert "over by 1" in str(err)
    # 15:00 UTC + 9 h = 19:00 New York: past the 18:00 Globex open, so the next trading day; counters reset.
    rm.clock.advance(T0 + 9 * HOUR)
    rm.check(buy(), MES)


def test_max_trades_per_day_counts_executions() -> None:
    rm = risk(max_trades_per_day=2)
    rm.on_fill(MES, Side.BUY, 1, 5000.0)
    rm.check(buy(), MES)
    rm.on_fill(MES, Side.SELL, 1, 5000.0)
    err = refused(rm, buy())
    assert (err.limit, err.value, err.allowed) == ("max_trades_per_day", 3, 2)


# daily loss and the kill switch -----
def test_daily_loss_limit_trips_the_kill_switch_on_unrealized_loss() -> None:
    rm = risk(daily_loss_limit=Decimal(100))
    rm.on_fill(MES, Side.BUY, 2, 5000.0)
    # 2 contracts x 10 points x USD 5 = -100: at the limit, not over it
    assert rm.mark(MES, 4990.0) is False
    assert rm.kill_switch is None
    # 2 x 10.25 x 5 = -102.50: over by 2.50
    assert rm.mark(MES, 4989.75) is True
    assert rm.kill_switch is not None
    assert "daily_loss" in rm.kill_switch.reason
    assert "over by 2.5" in rm.kill_switch.reason
    assert rm.mark(MES, 4980.0) is False  # already tripped: reported once
    err = refused(rm, buy(1))
    assert err.limit == "kill_switch"
    rm.check(sell(1), MES)  # reducing is allowed while halted
    rm.reset_kill_switch()
    rm.check(buy(1), MES)


def halted_at(position: int) -> RiskManager:
    """Every limit off, the kill switch tripped, holding `position`."""
    rm = risk()
    if position:
        rm.on_fill(MES, Side.BUY if position > 0 else Side.SELL, abs(position), 5000.0)
    rm.trip("test: daily loss")
    return rm


def test_kill_switch_refuses_an_order_that_would_reverse_the_position() -> None:
    """Issue 13, finding 12: long 2, halted, SELL 3 and SELL 4 were accepted and left a short."""
    rm = halted_at(2)
    for qty, short in ((3, -1), (4, -2)):
        err = refused(rm, sell(qty))
        assert (err.limit, err.value, err.allowed) == ("kill_switch", short, 0)
        assert str(err).startswith(
            f"kill_switch: SELL {qty} MESZ4 on position 2 would cross flat to {short} (over by {-short}) "
            "while trading is halted (test: daily loss); only orders that bring the position toward flat"
        )
    rm.check(sell(2), MES)  # exactly to flat
    rm.check(sell(1), MES)
    one = halted_at(1)
    err = refused(one, sell(2))
    assert (err.value, err.allowed) == (-1, 0)
    assert "on position 1 would cross flat to -1 (over by 1)" in str(err)
    one.check(sell(1), MES)


def test_kill_switch_counts_working_orders_on_the_same_side() -> None:
    """Two SELL 2 on a long 2 cannot cross between them: the second sees the first working."""
    rm = halted_at(2)
    rm.check(sell(2), MES)
    err = refused(rm, sell(2), working_same_side=2)
    assert (err.limit, err.value, err.allowed) == ("kill_switch", -2, 0)
    assert "with 2 working" in str(err)
    rm.check(sell(1), MES, working_same_side=1)
    short = halted_at(-3)
    short.check(buy(1), MES, working_same_side=2)
    assert refused(short, buy(2), working_same_side=2).value == 1


@pytest.mark.parametrize("position", [0, 2, -2])
def test_kill_switch_refuses_every_opening_order(position: int) -> None:
    rm = halted_at(position)
    side = buy if position >= 0 else sell
    err = refused(rm, side(1))
    projected = position + (1 if position >= 0 else -1)
    assert (err.limit, err.value, err.allowed) == ("kill_switch", projected, position)
    assert f"on position {position} would open or add to it ({projected}) (over by 1)" in str(err)
    if position == 0:
        assert refused(rm, sell(1)).limit == "kill_switch"


@given(
    position=st.integers(-6, 6),
    is_buy=st.booleans(),
    quantity=st.integers(1, 8),
    working=st.integers(0, 6),
)
def test_kill_switch_passes_exactly_the_orders_toward_flat_without_crossing(
    position: int, is_buy: bool, quantity: int, working: int
) -> None:
    rm = halted_at(position)
    side = Side.BUY if is_buy else Side.SELL
    request = OrderRequest("MES", side, quantity)
    toward_flat = side.sign * position < 0 and quantity + working <= abs(position)
    projected = position + side.sign * (quantity + working)
    if toward_flat:
        rm.check(request, MES, working_same_side=working)
        assert projected * position >= 0 and abs(projected) < abs(position)
    else:
        err = refused(rm, request, working_same_side=working)
        assert (err.limit, err.value) == ("kill_switch", projected)


@given(
    position=st.integers(-5, 5).filter(bool),
    steps=st.lists(
        st.tuples(st.sampled_from(["order", "fill"]), st.booleans(), st.integers(1, 4)), max_size=25
    ),
)
def test_kill_switch_never_lets_orders_and_fills_together_cross_flat(
    position: int, steps: list[tuple[str, bool, int]]
) -> None:
    """Whatever is sent and filled while halted, the position and everything still working stay on the
    position's side of flat (or at flat)."""
    rm = halted_at(position)
    working = {Side.BUY: 0, Side.SELL: 0}
    for action, is_buy, n in steps:
        side = Side.BUY if is_buy else Side.SELL
        if action == "order":
            try:
                rm.check(OrderRequest("MES", side, n), MES, working_same_side=working[side])
            except RiskLimitExceeded as exc:
                assert exc.limit == "kill_switch"
            else:
                working[side] += n
        elif (filled := min(n, working[side])) > 0:
            rm.on_fill(MES, side, filled, 5000.0)
            working[side] -= filled
        now = rm.position(MES)
        assert now * position >= 0
        assert (now + working[Side.BUY] - working[Side.SELL]) * position >= 0
        assert abs(now) <= abs(position)


def test_daily_loss_counts_realized_pnl_and_fees() -> None:
    rm = risk(daily_loss_limit=Decimal(50))
    rm.on_fill(MES, Side.BUY, 1, 5000.0)
    rm.on_fill(MES, Side.SELL, 1, 4990.0)  # realized: -10 points x 5 = -50
    assert rm.day_pnl() == Decimal(-50)
    assert rm.kill_switch is None
    assert rm.on_commission(MES, Decimal("1.24")) is True  # -51.24
    assert rm.day_pnl() == Decimal("-51.24")


def test_daily_loss_starts_from_the_days_first_mark() -> None:
    rm = risk(daily_loss_limit=Decimal(100))
    rm.on_fill(MES, Side.BUY, 2, 5000.0)
    rm.mark(MES, 4992.0)  # -80 today
    assert rm.day_pnl() == Decimal(-80)
    rm.clock.advance(T0 + 9 * HOUR)  # next trading day: yesterday's loss is not today's
    rm.mark(MES, 4992.0)
    assert rm.day_pnl() == Decimal(0)
    assert rm.mark(MES, 4981.75) is True  # -10.25 x 2 x 5 = -102.50 in the new day
    assert rm.kill_switch is not None


# price band -----
def test_price_band_percent_around_the_last_price() -> None:
    rm = risk(price_band_pct=Decimal(1))
    rm.mark(MES, 5000.0)
    rm.check(buy(order_type=OrderType.LMT, limit_price=5050.0), MES)  # exactly 1 %
    err = refused(rm, buy(order_type=OrderType.LMT, limit_price=5050.25))
    assert err.limit == "price_band"
    assert err.value == Decimal("1.005")
    assert "over by 0.005%" in str(err)
    err = refused(rm, sell(order_type=OrderType.STP, stop_price=4949.75))
    assert err.limit == "price_band"


def test_price_band_in_ticks() -> None:
    rm = risk(price_band_ticks=40)
    rm.mark(MES, 5000.0)
    rm.check(buy(order_type=OrderType.LMT, limit_price=5010.0), MES)  # 40 ticks of 0.25
    err = refused(rm, buy(order_type=OrderType.LMT, limit_price=5010.25))
    assert (err.limit, err.value, err.allowed) == ("price_band", 41, 40)
    assert "41 ticks from last 5000.0 > allowed 40 ticks (over by 1)" in str(err)


def test_price_band_refuses_a_limit_with_no_last_price_but_not_a_market_order() -> None:
    rm = risk(price_band_pct=Decimal(1))
    err = refused(rm, buy(order_type=OrderType.LMT, limit_price=5000.0))
    assert err.limit == "price_band"
    assert "no last price" in str(err)
    rm.check(buy(), MES)


# trading hours (event time, not the wall clock) -----
@pytest.mark.parametrize(
    ("when", "open_"),
    [
        (datetime(2024, 11, 5, 15, 0, tzinfo=UTC), True),  # Tuesday 10:00 New York
        (datetime(2024, 11, 5, 22, 30, tzinfo=UTC), False),  # Tuesday 17:30 New York: the daily halt
        (datetime(2024, 11, 5, 23, 0, tzinfo=UTC), True),  # 18:00 New York: Wednesday's session opened
        (datetime(2024, 11, 9, 15, 0, tzinfo=UTC), False),  # Saturday
        # the exchange's holiday schedule (MES: CME equity index hours)
        (datetime(2024, 12, 25, 15, 0, tzinfo=UTC), False),  # Christmas Day 10:00 New York: no session
        (datetime(2024, 12, 25, 23, 30, tzinfo=UTC), True),  # Christmas evening 18:30: Globex reopened
        (datetime(2026, 1, 19, 17, 0, tzinfo=UTC), True),  # MLK Day 12:00 New York: abbreviated session
        (datetime(2026, 1, 19, 18, 30, tzinfo=UTC), False),  # MLK Day 13:30: halted since 13:00 (12:00 CT)
        (datetime(2024, 11, 29, 18, 10, tzinfo=UTC), True),  # day after Thanksgiving 13:10, before 13:15
        (datetime(2024, 11, 29, 18, 20, tzinfo=UTC), False),  # 13:20: the 13:15 (12:15 CT) early close
    ],
)
def test_trading_hours_use_the_data_clock(when: datetime, open_: bool) -> None:
    rm = RiskManager(only(enforce_trading_hours=True), Clock(datetime_to_ns(when)))
    if open_:
        rm.check(buy(), MES)
    else:
        err = refused(rm, buy())
        assert err.limit == "trading_hours"
        assert "outside the CME Globex session" in str(err)


# orders that must never pass -----
@pytest.mark.parametrize("qty", [0, -1])
def test_no_order_of_quantity_zero_or_less_passes(qty: int) -> None:
    request = buy(1)
    object.__setattr__(request, "quantity", qty)  # bypass the request's own validation
    err = refused(risk(), request)
    assert err.limit == "quantity"


@pytest.mark.parametrize("price", [math.nan, math.inf, 5000.1])
def test_no_nan_infinite_or_off_grid_price_passes(price: float) -> None:
    request = buy(order_type=OrderType.LMT, limit_price=5000.0)
    object.__setattr__(request, "limit_price", price)
    err = refused(risk(), request)
    assert err.limit == "price"


def test_even_a_flatten_order_must_be_sane() -> None:
    rm = risk()
    rm.on_fill(MES, Side.BUY, 1, 5000.0)
    request = sell(1)
    object.__setattr__(request, "quantity", 0)
    assert refused(rm, request, flatten=True).limit == "quantity"


def test_flatten_passes_every_limit_but_must_reduce() -> None:
    rm = risk(max_order_size=1, max_orders_per_day=0, max_trades_per_day=0, enforce_trading_hours=True)
    rm.on_fill(MES, Side.BUY, 3, 5000.0)
    rm.trip("test")
    rm.clock.advance(datetime_to_ns(datetime(2024, 11, 9, 15, 0, tzinfo=UTC)))  # even on a Saturday
    rm.check(sell(3), MES, flatten=True)
    err = refused(rm, sell(4), flatten=True)
    assert err.limit == "flatten"


def test_risk_limit_exceeded_is_an_invalid_order_error() -> None:
    assert issubclass(RiskLimitExceeded, InvalidOrderError)


@pytest.mark.parametrize(
    "bad", [{"max_position": -1}, {"max_order_size": 0}, {"daily_loss_limit": -5}, {"max_positon": 3}]
)
def test_limits_config_is_validated_and_names_the_key(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        RiskLimits(**bad)
    assert next(iter(bad)) in str(info.value)

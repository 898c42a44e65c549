"""The matching engine's rules one by one: bars, quotes, trades, order types, brackets, statuses, rejects."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ibot.exchange import DailySessions, FeeModel, FillRules, MatchingEngine, OrderRejected
from ibot.model.errors import InvalidOrderError
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import Bar, datetime_to_ns
from ibot.model.orders import Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce

MES = Instrument("MES", SecType.FUT, "CME", "USD", Decimal(5), Decimal("0.25"))
MIN = 60_000_000_000


class Recorder:
    """A listener that keeps everything the engine reports, in order."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.updates: list[OrderUpdate] = []
        self.on_fill_hook = None

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        if self.on_fill_hook is not None:
            self.on_fill_hook(fill)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.updates.append(update)

    def statuses(self, oid: str) -> list[OrderStatus]:
        return [u.status for u in self.updates if u.client_order_id == oid]


def engine(**rules: object) -> tuple[MatchingEngine, Recorder]:
    rec = Recorder()
    return MatchingEngine(MES, rec, FillRules(**rules), FeeModel()), rec  # type: ignore[arg-type]


def bar(k: int, o: float, h: float, lo: float, c: float, v: float = 1000.0) -> Bar:
    return Bar(k * MIN, o, h, lo, c, v)


def req(side: Side, qty: int = 1, kind: OrderType = OrderType.MKT, **kw: object) -> OrderRequest:
    return OrderRequest("MES", side, qty, kind, **kw)  # type: ignore[arg-type]


# Market orders -------------------------------------------------------------------------------------------
def test_market_order_fills_at_next_bar_open_plus_slippage_against_the_taker() -> None:
    eng, rec = engine(slippage_ticks=2)
    buy = eng.submit(req(Side.BUY, 2), ts=0)
    sell = eng.submit(req(Side.SELL, 1), ts=0)
    eng.on_bar(bar(1, 100.0, 101.0, 99.0, 100.5))
    by_id = {f.client_order_id: f for f in rec.fills}
    assert by_id[buy].price == 100.5  # 100.00 + 2 ticks x 0.25
    assert by_id[buy].quantity == 2
    assert by_id[sell].price == 99.5  # 100.00 - 2 ticks
    assert by_id[buy].ts == 1 * MIN
    assert by_id[buy].commission == Decimal("1.24")  # 2 contracts x 0.62


def test_market_order_fills_at_the_ask_when_a_quote_is_known() -> None:
    eng, rec = engine(slippage_ticks=1)
    eng.on_quote(1, bid=100.0, ask=100.25)
    eng.submit(req(Side.BUY), ts=2)
    assert [f.price for f in rec.fills] == [100.5]  # ask + 1 tick, on arrival


def test_market_order_with_only_trades_fills_at_the_next_trade() -> None:
    eng, rec = engine()
    eng.submit(req(Side.SELL), ts=0)
    eng.on_trade(5, 101.75, size=3)
    assert [(f.price, f.ts) for f in rec.fills] == [(101.75, 5)]


# Limit orders --------------------------------------------------------------------------------------------
def test_buy_limit_is_not_filled_when_the_low_only_touches_it() -> None:
    eng, rec = engine()
    eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=99.0), ts=0)
    eng.on_bar(bar(1, 100.0, 100.5, 99.0, 99.5))
    assert rec.fills == []
    assert len(eng.working) == 1


def test_buy_limit_fills_at_its_price_when_the_market_trades_through() -> None:
    eng, rec = engine()
    eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=99.0), ts=0)
    eng.on_bar(bar(1, 100.0, 100.5, 98.75, 99.5))
    assert [f.price for f in rec.fills] == [99.0]


def test_buy_limit_fills_at_the_better_open_after_a_gap_down() -> None:
    eng, rec = engine()
    eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=99.0), ts=0)
    eng.on_bar(bar(1, 97.5, 98.0, 97.0, 97.75))
    assert [f.price for f in rec.fills] == [97.5]


def test_buy_limit_fills_when_the_bar_opens_exactly_at_the_limit() -> None:
    eng, rec = engine()
    eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=99.0), ts=0)
    eng.on_bar(bar(1, 99.0, 99.5, 99.0, 99.25))
    assert [f.price for f in rec.fills] == [99.0]


def test_sell_limit_needs_trade_through_unless_touch_is_allowed() -> None:
    strict, rec_strict = engine()
    touch, rec_touch = engine(limit_fills_on_touch=True)
    for eng in (strict, touch):
        eng.submit(req(Side.SELL, kind=OrderType.LMT, limit_price=101.0), ts=0)
        eng.on_bar(bar(1, 100.0, 101.0, 99.75, 100.25))
    assert rec_strict.fills == []
    assert [f.price for f in rec_touch.fills] == [101.0]


def test_limit_order_on_quotes_fills_at_the_ask_if_marketable_else_rests_until_traded_through() -> None:
    eng, rec = engine()
    eng.on_quote(1, bid=100.0, ask=100.25, bid_size=10, ask_size=10)
    eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=100.5, client_order_id="take"), ts=2)
    eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=99.75, client_order_id="rest"), ts=2)
    assert [(f.client_order_id, f.price) for f in rec.fills] == [("take", 100.25)]  # the ask, not 100.5
    eng.on_trade(3, 99.75, size=5)  # a touch at the limit: no fill
    assert len(rec.fills) == 1
    eng.on_trade(4, 99.5, size=5)  # traded through: filled at the limit
    assert [(f.client_order_id, f.price) for f in rec.fills][1] == ("rest", 99.75)


# Stops ---------------------------------------------------------------------------------------------------
def test_buy_stop_triggers_when_traded_at_the_stop_and_fills_there_plus_slippage() -> None:
    eng, rec = engine(slippage_ticks=1)
    oid = eng.submit(req(Side.BUY, kind=OrderType.STP, stop_price=101.0), ts=0)
    eng.on_bar(bar(1, 100.0, 100.75, 99.5, 100.5))
    assert rec.fills == []
    eng.on_bar(bar(2, 100.5, 101.0, 100.25, 100.75))  # high exactly at the stop: traded at S -> triggers
    assert [f.price for f in rec.fills] == [101.25]
    assert rec.statuses(oid) == [OrderStatus.PRE_SUBMITTED, OrderStatus.SUBMITTED, OrderStatus.FILLED]


def test_sell_stop_gapped_through_fills_at_the_open_minus_slippage() -> None:
    eng, rec = engine(slippage_ticks=1)
    eng.submit(req(Side.SELL, kind=OrderType.STP, stop_price=99.0), ts=0)
    eng.on_bar(bar(1, 98.0, 98.5, 97.5, 98.25))
    assert [f.price for f in rec.fills] == [97.75]


def test_stop_limit_triggered_by_a_gap_rests_as_a_limit_and_fills_when_traded_through() -> None:
    eng, rec = engine()
    eng.submit(req(Side.BUY, kind=OrderType.STP_LMT, stop_price=101.0, limit_price=101.5), ts=0)
    # Opens 102 (above the stop: triggered) but above the limit too: not marketable. Path 102 -> 101.25 (low,
    # nearer) -> 102.5 -> 102: the low 101.25 goes strictly below 101.5 -> fills at 101.5.
    eng.on_bar(bar(1, 102.0, 102.5, 101.25, 102.0))
    assert [f.price for f in rec.fills] == [101.5]


def test_stop_limit_that_triggers_inside_the_bar_fills_at_the_stop_when_marketable() -> None:
    eng, rec = engine()
    eng.submit(req(Side.BUY, kind=OrderType.STP_LMT, stop_price=101.0, limit_price=101.5), ts=0)
    eng.on_bar(bar(1, 100.0, 103.0, 99.75, 102.0))
    assert [f.price for f in rec.fills] == [101.0]


def test_stops_trigger_on_trades_not_on_quotes() -> None:
    eng, rec = engine()
    eng.submit(req(Side.BUY, kind=OrderType.STP, stop_price=101.0), ts=0)
    eng.on_quote(1, bid=101.0, ask=101.25)
    assert rec.fills == []
    eng.on_trade(2, 101.0, size=1)
    assert [f.price for f in rec.fills] == [101.25]  # triggered, then a market order against the ask


# Bar path and brackets -------------------------------------------------------------------------------------
def bracket(eng: MatchingEngine, entry: float, target: float, stop: float) -> tuple[str, str, str]:
    parent = eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=entry, client_order_id="p"), ts=0)
    tp = eng.submit(
        req(
            Side.SELL,
            kind=OrderType.LMT,
            limit_price=target,
            parent_id="p",
            oca_group="g",
            client_order_id="tp",
        ),
        ts=0,
    )
    sl = eng.submit(
        req(
            Side.SELL, kind=OrderType.STP, stop_price=stop, parent_id="p", oca_group="g", client_order_id="sl"
        ),
        ts=0,
    )
    return parent, tp, sl


def test_bracket_children_are_held_until_the_parent_fills_then_oca_cancels_the_other() -> None:
    eng, rec = engine()
    parent, tp, sl = bracket(eng, entry=100.0, target=102.0, stop=98.0)
    assert rec.statuses(tp) == [OrderStatus.PRE_SUBMITTED]
    assert len(eng.working) == 1  # only the parent works
    eng.on_bar(bar(1, 100.5, 100.75, 100.25, 100.5))  # parent not reached
    assert rec.fills == []
    eng.on_bar(bar(2, 100.5, 100.75, 99.75, 100.25))  # parent fills at 100.00; children go live
    assert [f.client_order_id for f in rec.fills] == [parent]
    assert rec.statuses(tp)[-1] is OrderStatus.SUBMITTED
    assert rec.statuses(sl)[-1] is OrderStatus.PRE_SUBMITTED  # an untriggered stop
    eng.on_bar(bar(3, 100.5, 102.25, 100.25, 102.0))  # through the target
    assert [(f.client_order_id, f.price) for f in rec.fills][1] == (tp, 102.0)
    assert rec.statuses(sl)[-1] is OrderStatus.CANCELLED
    assert eng.working == []


def test_bar_path_visits_the_extreme_nearer_the_open_first() -> None:
    # Both the target and the stop lie inside the bar; the one on the side of the nearer extreme wins.
    eng, rec = engine()
    bracket(eng, entry=100.5, target=101.0, stop=99.75)
    # Open 100.25 is nearer the low 99.5 (0.75 away) than the high 101.5 (1.25): O -> L -> H -> C. The parent
    # (buy limit 100.5) is marketable at the open -> 100.25; going down, the stop 99.75 fills, OCA cancels tp.
    eng.on_bar(bar(1, 100.25, 101.5, 99.5, 101.0))
    assert [(f.client_order_id, f.price) for f in rec.fills] == [("p", 100.25), ("sl", 99.75)]
    eng2, rec2 = engine()
    bracket(eng2, entry=100.5, target=101.0, stop=99.75)
    # Open 100.25 nearer the high 101.5 (1.25) than the low 98.0 (2.25): O -> H -> L -> C; the target wins.
    eng2.on_bar(bar(1, 100.25, 101.5, 98.0, 100.0))
    assert [(f.client_order_id, f.price) for f in rec2.fills] == [("p", 100.25), ("tp", 101.0)]


def test_cancelling_a_parent_cancels_its_held_children() -> None:
    eng, rec = engine()
    parent, tp, sl = bracket(eng, entry=100.0, target=102.0, stop=98.0)
    eng.cancel(parent, ts=1)
    for oid in (parent, tp, sl):
        assert rec.statuses(oid)[-1] is OrderStatus.CANCELLED
    assert eng.open_orders() == []


# Partial fills ---------------------------------------------------------------------------------------------
def test_thin_quotes_fill_part_of_an_order_and_the_rest_on_later_quotes() -> None:
    eng, rec = engine()
    eng.on_quote(1, bid=100.0, ask=100.25, bid_size=5, ask_size=2)
    oid = eng.submit(req(Side.BUY, 5), ts=2)
    assert [(f.quantity, f.price) for f in rec.fills] == [(2, 100.25)]
    last = rec.updates[-1]
    assert (last.status, last.filled, last.remaining) == (OrderStatus.SUBMITTED, 2, 3)
    eng.on_quote(3, bid=100.25, ask=100.5, bid_size=5, ask_size=10)
    assert [(f.quantity, f.price) for f in rec.fills][1] == (3, 100.5)
    final = rec.updates[-1]
    assert (final.client_order_id, final.status, final.filled, final.remaining) == (
        oid,
        OrderStatus.FILLED,
        5,
        0,
    )
    assert final.avg_fill_price == pytest.approx((2 * 100.25 + 3 * 100.5) / 5)


def test_trade_size_caps_a_limit_fill() -> None:
    eng, rec = engine()
    eng.submit(req(Side.SELL, 4, OrderType.LMT, limit_price=101.0), ts=0)
    eng.on_trade(1, 101.25, size=3)
    assert [f.quantity for f in rec.fills] == [3]
    eng.on_trade(2, 101.25, size=3)
    assert [f.quantity for f in rec.fills] == [3, 1]


def test_bar_volume_participation_caps_fills_per_bar() -> None:
    eng, rec = engine(bar_volume_participation=0.1)
    eng.submit(req(Side.BUY, 10), ts=0)
    eng.on_bar(bar(1, 100.0, 100.5, 99.5, 100.25, v=40))  # 10% of 40 = 4 contracts
    eng.on_bar(bar(2, 100.25, 100.5, 99.5, 100.0, v=100))  # 10 -> the remaining 6
    assert [(f.quantity, f.price) for f in rec.fills] == [(4, 100.0), (6, 100.25)]


# Order life cycle ------------------------------------------------------------------------------------------
def test_status_sequence_of_a_limit_that_fills_in_two_parts() -> None:
    eng, rec = engine()
    oid = eng.submit(req(Side.BUY, 3, OrderType.LMT, limit_price=99.0), ts=0)
    eng.on_trade(1, 98.75, size=1)
    eng.on_trade(2, 98.5, size=5)
    assert rec.statuses(oid) == [OrderStatus.SUBMITTED, OrderStatus.SUBMITTED, OrderStatus.FILLED]
    assert [u.filled for u in rec.updates] == [0, 1, 3]
    assert [f.client_order_id for f in rec.fills] == [oid, oid]
    assert len({f.exec_id for f in rec.fills}) == 2  # engine-assigned, unique


def test_cancel_reports_cancelled_and_the_order_no_longer_fills() -> None:
    eng, rec = engine()
    oid = eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=99.0), ts=0)
    eng.cancel(oid, ts=1)
    eng.on_bar(bar(2, 98.0, 98.5, 97.0, 98.0))
    assert rec.fills == []
    assert rec.statuses(oid) == [OrderStatus.SUBMITTED, OrderStatus.CANCELLED]
    with pytest.raises(InvalidOrderError, match="no live order"):
        eng.cancel(oid, ts=3)


def test_modify_changes_price_and_quantity_and_keeps_the_id() -> None:
    eng, rec = engine()
    oid = eng.submit(req(Side.BUY, 1, OrderType.LMT, limit_price=95.0), ts=0)
    eng.modify(oid, ts=1, quantity=2, limit_price=99.0)
    assert eng.open_orders()[0].limit_price == 99.0
    assert eng.open_orders()[0].client_order_id == oid
    eng.on_bar(bar(2, 100.0, 100.5, 98.5, 99.0))
    assert [(f.client_order_id, f.quantity, f.price) for f in rec.fills] == [(oid, 2, 99.0)]


def test_modify_cannot_cut_quantity_below_what_filled() -> None:
    eng, _ = engine()
    oid = eng.submit(req(Side.BUY, 4, OrderType.LMT, limit_price=99.0), ts=0)
    eng.on_trade(1, 98.0, size=2)
    with pytest.raises(InvalidOrderError, match="above the 2 already filled"):
        eng.modify(oid, ts=2, quantity=2)


def test_ioc_fills_what_it_can_at_the_first_event_and_cancels_the_rest() -> None:
    eng, rec = engine()
    eng.on_quote(1, bid=100.0, ask=100.25, bid_size=1, ask_size=1)
    oid = eng.submit(req(Side.BUY, 3, OrderType.LMT, limit_price=100.25, tif=TimeInForce.IOC), ts=2)
    assert [f.quantity for f in rec.fills] == [1]
    assert rec.statuses(oid)[-1] is OrderStatus.CANCELLED
    assert eng.working == []


def test_day_order_expires_at_the_cme_day_end_but_gtc_stays() -> None:
    rec = Recorder()
    eng = MatchingEngine(MES, rec, day_end=DailySessions().end_of)
    # 2024-03-05 15:00 CST = 21:00 UTC; the trading day ends at 17:00 CST = 23:00 UTC.
    t0 = datetime_to_ns(datetime(2024, 3, 5, 21, 0, tzinfo=UTC))
    day = eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=90.0, tif=TimeInForce.DAY), ts=t0)
    gtc = eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=90.0, tif=TimeInForce.GTC), ts=t0)
    eng.on_bar(Bar(t0 + MIN, 100.0, 100.5, 99.5, 100.0))
    assert eng.is_live(day)
    after = datetime_to_ns(datetime(2024, 3, 5, 23, 0, tzinfo=UTC))
    eng.on_bar(Bar(after, 100.0, 100.5, 99.5, 100.0))
    assert not eng.is_live(day)
    assert rec.statuses(day)[-1] is OrderStatus.CANCELLED
    assert eng.is_live(gtc)


def test_order_sent_inside_a_bar_waits_for_the_next_bar() -> None:
    eng, rec = engine()
    eng.submit(req(Side.BUY), ts=0)
    # React to the fill at the open by sending a sell market order: it must not fill inside the same bar.
    rec.on_fill_hook = lambda f: eng.submit(req(Side.SELL), ts=f.ts) if f.side is Side.BUY else None
    eng.on_bar(bar(1, 100.0, 101.0, 99.0, 100.5))
    assert [(f.side, f.price) for f in rec.fills] == [(Side.BUY, 100.0)]
    eng.on_bar(bar(2, 100.75, 101.0, 99.0, 100.5))
    assert [(f.side, f.price) for f in rec.fills][1] == (Side.SELL, 100.75)


# Rejects -------------------------------------------------------------------------------------------------
def test_off_grid_price_is_rejected_inactive_not_repriced() -> None:
    eng, rec = engine()
    with pytest.raises(OrderRejected, match=r"100\.1 is not on the tick grid of 0\.25"):
        eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=100.1, client_order_id="x"), ts=0)
    assert [(u.client_order_id, u.status) for u in rec.updates] == [("x", OrderStatus.INACTIVE)]
    assert "tick grid" in rec.updates[0].message
    assert eng.working == []


def test_nan_prices_never_reach_the_book() -> None:
    with pytest.raises(InvalidOrderError, match="not a finite number"):
        req(Side.BUY, kind=OrderType.LMT, limit_price=math.nan)
    eng, _ = engine()
    oid = eng.submit(req(Side.BUY, kind=OrderType.LMT, limit_price=99.0), ts=0)
    with pytest.raises(InvalidOrderError, match="not a finite number"):
        eng.modify(oid, ts=1, limit_price=math.nan)


def test_wrong_symbol_and_unknown_parent_are_rejected() -> None:
    eng, rec = engine()
    with pytest.raises(OrderRejected, match="trades MES, not 'MNQ'"):
        eng.submit(OrderRequest("MNQ", Side.BUY, 1), ts=0)
    with pytest.raises(OrderRejected, match="parent order 'nope'"):
        eng.submit(req(Side.SELL, parent_id="nope"), ts=0)
    assert [u.status for u in rec.updates] == [OrderStatus.INACTIVE, OrderStatus.INACTIVE]


def test_daily_sessions_roll_at_17_chicago_across_dst() -> None:
    s = DailySessions()
    winter = datetime_to_ns(datetime(2024, 1, 10, 22, 59, tzinfo=UTC))  # 16:59 CST
    summer = datetime_to_ns(datetime(2024, 7, 10, 21, 59, tzinfo=UTC))  # 16:59 CDT
    assert s.end_of(winter) == datetime_to_ns(datetime(2024, 1, 10, 23, 0, tzinfo=UTC))
    assert s.end_of(summer) == datetime_to_ns(datetime(2024, 7, 10, 22, 0, tzinfo=UTC))

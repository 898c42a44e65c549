"""Order state guards a mutation run showed unguarded (issue 13, finding 11): event times, messages, the exact
executions kept, which states an execution completes, exact prices, and the modify bound."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ibot.model.errors import InvalidOrderError
from ibot.model.orders import OrderStatus
from ibot.oms.states import FINAL, WORKING, Applied, ExecutionRecord, OrderState, is_legal, to_decimal

S = OrderStatus


def order_in(status: OrderStatus, quantity: int = 3) -> OrderState:
    o = OrderState("c1", quantity, status, ts=100)
    return o


def test_the_working_and_final_sets_are_exact() -> None:
    assert frozenset({S.PENDING_SUBMIT, S.PRE_SUBMITTED, S.SUBMITTED, S.PENDING_CANCEL}) == WORKING
    assert frozenset({S.FILLED, S.CANCELLED, S.API_CANCELLED, S.INACTIVE, S.REJECTED}) == FINAL
    for status in OrderStatus:
        o = order_in(status)
        assert (o.is_working, o.is_final) == (status in WORKING, status in FINAL)
    assert is_legal(S.SUBMITTED, S.FILLED) and not is_legal(S.FILLED, S.SUBMITTED)


def test_a_new_order_starts_created_empty_and_at_its_time() -> None:
    o = OrderState("c9", 4, ts=7)
    assert (o.client_order_id, o.quantity, o.status, o.ts, o.message) == ("c9", 4, S.CREATED, 7, "")
    assert (o.filled, o.remaining, o.avg_fill_price, o.executions, o.overfilled) == (0, 4, None, (), False)


def test_status_changes_keep_the_latest_time_and_the_last_message() -> None:
    o = order_in(S.PENDING_SUBMIT)
    assert o.apply_status(S.SUBMITTED, ts=200, message="acknowledged") is Applied.CHANGED
    assert (o.status, o.ts, o.message) == (S.SUBMITTED, 200, "acknowledged")
    assert o.apply_status(S.PENDING_CANCEL, ts=150) is Applied.CHANGED  # an older stamp never moves ts back
    assert (o.ts, o.message) == (200, "acknowledged")  # no message: the last one stays
    assert o.apply_status(S.PENDING_CANCEL, ts=300, message="x") is Applied.ECHO
    assert (o.ts, o.message) == (200, "acknowledged")
    assert o.apply_status(S.PRE_SUBMITTED, ts=400, message="cancel refused") is Applied.CHANGED
    assert o.apply_status(S.CREATED, ts=500, message="stale") is Applied.ILLEGAL
    assert (o.status, o.ts, o.message) == (S.PRE_SUBMITTED, 400, "cancel refused")
    assert o.apply_status("Cancelled", ts=600) is Applied.CHANGED  # type: ignore[arg-type]  # IB's text
    assert o.status is S.CANCELLED


def test_filled_reported_before_its_executions_moves_the_order_without_inventing_fills() -> None:
    o = order_in(S.SUBMITTED, quantity=2)
    assert o.apply_status(S.FILLED, ts=300) is Applied.CHANGED
    assert (o.status, o.filled, o.remaining) == (S.FILLED, 0, 2)
    o.apply_fill("e1", 2, 10.0, ts=310)
    assert (o.status, o.filled, o.remaining, o.ts) == (S.FILLED, 2, 0, 310)


def test_executions_are_kept_exactly_with_their_times() -> None:
    o = order_in(S.SUBMITTED, quantity=3)
    assert o.apply_fill("e1", 1, 5000.25, ts=150) is Applied.CHANGED
    assert o.apply_fill("e2", 2, Decimal("5000.75"), ts=120) is Applied.CHANGED
    assert o.executions == (
        ExecutionRecord("e1", 1, Decimal("5000.25"), 150),
        ExecutionRecord("e2", 2, Decimal("5000.75"), 120),
    )
    assert o.has_execution("e1") and o.has_execution("e2") and not o.has_execution("e3")
    assert o.ts == 150  # the latest event time
    assert (o.status, o.filled, o.remaining) == (S.FILLED, 3, 0)
    # (5000.25 + 2 x 5000.75) / 3 = 5000.58333...: exact to 1e-10
    assert o.avg_fill_price == Decimal("5000.5833333333")
    assert o.apply_fill("e1", 1, 1.0, ts=999) is Applied.DUPLICATE
    assert (o.filled, o.ts, o.avg_fill_price) == (3, 150, Decimal("5000.5833333333"))


def test_a_partial_execution_leaves_the_status_alone() -> None:
    for status in (S.PRE_SUBMITTED, S.SUBMITTED, S.PENDING_CANCEL, S.CANCELLED):
        o = order_in(status, quantity=3)
        o.apply_fill("e1", 2, 10.0)
        assert (o.status, o.filled, o.remaining) == (status, 2, 1)


TRADABLE = [S.CREATED, S.PENDING_SUBMIT, S.PRE_SUBMITTED, S.SUBMITTED, S.PENDING_CANCEL, S.CANCELLED]


@pytest.mark.parametrize("status", [*TRADABLE, S.API_CANCELLED, S.INACTIVE])
def test_executions_adding_up_to_the_order_complete_it_from_any_state_it_may_trade_in(
    status: OrderStatus,
) -> None:
    o = order_in(status, quantity=2)
    o.apply_fill("e1", 1, 10.0)
    o.apply_fill("e2", 1, 10.0)
    assert (o.status, o.filled, o.remaining) == (S.FILLED, 2, 0)


def test_an_execution_for_an_order_never_sent_is_counted_but_does_not_make_it_filled() -> None:
    o = order_in(S.REJECTED, quantity=1)
    assert o.apply_fill("e1", 1, 10.0) is Applied.CHANGED
    assert (o.status, o.filled) == (S.REJECTED, 1)


def test_an_overfill_beyond_a_filled_order_is_counted_and_flagged() -> None:
    o = order_in(S.SUBMITTED, quantity=1)
    o.apply_fill("e1", 1, 10.0)
    assert not o.overfilled
    o.apply_fill("e2", 2, 12.0)
    assert (o.status, o.filled, o.remaining, o.overfilled) == (S.FILLED, 3, 0, True)
    assert o.avg_fill_price == Decimal("11.3333333333")


@pytest.mark.parametrize("quantity", [True, 1.0, 0, -2])
def test_an_execution_quantity_must_be_a_whole_positive_number(quantity: object) -> None:
    o = order_in(S.SUBMITTED)
    with pytest.raises(
        InvalidOrderError, match=r"^order c1: execution e1 quantity .+ must be a whole number > 0$"
    ):
        o.apply_fill("e1", quantity, 10.0)  # type: ignore[arg-type]
    assert (o.filled, o.executions) == (0, ())


def test_an_execution_without_id_or_with_an_infinite_price_names_the_problem() -> None:
    o = order_in(S.SUBMITTED)
    with pytest.raises(InvalidOrderError, match="order c1: an execution needs an exec id"):
        o.apply_fill("", 1, 10.0)
    with pytest.raises(InvalidOrderError, match="order c1: execution e1 price -inf is not finite"):
        o.apply_fill("e1", 1, float("-inf"))
    with pytest.raises(InvalidOrderError, match="not finite"):
        o.apply_fill("e1", 1, Decimal("NaN"))
    assert o.filled == 0


def test_to_decimal_gives_the_price_a_float_stands_for() -> None:
    assert to_decimal(5000.1) == Decimal("5000.1")  # not 5000.1000000000003637978807091712951660156250
    assert to_decimal(0.25) == Decimal("0.25")
    assert to_decimal(-1.5) == Decimal("-1.5")
    exact = Decimal("5000.123456789012345")
    assert to_decimal(exact) is exact
    assert to_decimal(5000) == Decimal("5000.0")  # type: ignore[arg-type]


def test_a_modify_may_set_any_quantity_above_what_filled() -> None:
    o = order_in(S.SUBMITTED, quantity=3)
    o.apply_fill("e1", 2, 10.0)
    o.set_quantity(3)  # one above the 2 filled: allowed
    assert (o.quantity, o.remaining) == (3, 1)
    with pytest.raises(InvalidOrderError, match=r"new quantity 2 must be a whole number above the 2 already"):
        o.set_quantity(2)
    with pytest.raises(InvalidOrderError):
        o.set_quantity(True)  # type: ignore[arg-type]
    with pytest.raises(InvalidOrderError):
        o.set_quantity(3.5)  # type: ignore[arg-type]
    assert o.quantity == 3
    fresh = order_in(S.PRE_SUBMITTED, quantity=2)
    fresh.set_quantity(1)  # nothing filled: down to 1 is fine
    assert fresh.remaining == 1
    for final in FINAL:
        with pytest.raises(InvalidOrderError, match=f"cannot modify a {final} order"):
            order_in(final).set_quantity(5)


@pytest.mark.parametrize("quantity", [0, -1, True, 2.0, "3"])
def test_an_order_quantity_must_be_a_whole_positive_number(quantity: object) -> None:
    with pytest.raises(
        InvalidOrderError, match=f"order c7: quantity {quantity!r} must be a whole number > 0"
    ):
        OrderState("c7", quantity)  # type: ignore[arg-type]


def test_repr_shows_id_status_and_quantities() -> None:
    o = order_in(S.SUBMITTED, quantity=2)
    o.apply_fill("e1", 1, 10.5)
    assert repr(o) == "OrderState('c1', Submitted, filled=1/2, avg=10.5)"


def test_without_an_event_time_nothing_is_stamped() -> None:
    o = OrderState("c0", 1)
    assert o.ts == 0
    o.apply_status(S.SUBMITTED)
    assert o.ts == 0
    o.apply_fill("e1", 1, 10.0)
    assert (o.ts, o.executions[0].ts) == (0, 0)


def test_what_an_operator_must_hear_is_logged_with_the_order_and_the_numbers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("INFO", logger="ibot.oms.states"):
        o = order_in(S.SUBMITTED, quantity=2)
        o.apply_status(S.PENDING_CANCEL)  # a plain change: nothing said
        o.apply_status(S.CREATED, message="late echo")  # stale
        o.apply_status(S.FILLED)  # ahead of its executions
        o.apply_fill("e1", 2, 10.0)
        o.apply_fill("e2", 1, 10.0)  # one too many
        order_in(S.REJECTED).apply_fill("e9", 1, 10.0)
        done = order_in(S.PENDING_CANCEL, quantity=1)
        done.apply_fill("e5", 1, 10.0)
        done.apply_status(S.SUBMITTED)  # after Filled: stale, said
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "order c1: ignored status Created in state PendingCancel (out of order or stale) late echo",
        ),
        ("INFO", "order c1: Filled reported with 0 of 2 executions seen"),
        ("ERROR", "order c1: overfilled, 3 executed of 2 ordered (exec e2)"),
        ("ERROR", "order c1: execution e9 for an order never sent; counted anyway"),
        ("WARNING", "order c1: ignored status Submitted in state Filled (out of order or stale) "),
    ]

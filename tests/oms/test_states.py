"""The order state machine: every transition, IB's edge cases, and random IB-like event sequences."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ibot.model.errors import InvalidOrderError
from ibot.model.orders import OrderStatus
from ibot.oms.states import FINAL, TRANSITIONS, Applied, OrderState

S = OrderStatus
ALL = list(OrderStatus)

# The legal status changes, written out by hand from what IB sends (independent of the module's table).
EXPECTED_LEGAL: set[tuple[OrderStatus, OrderStatus]] = {
    # recorded, not yet sent: anything the broker may report first, or our own risk rejection
    (S.CREATED, S.PENDING_SUBMIT),
    (S.CREATED, S.PRE_SUBMITTED),
    (S.CREATED, S.SUBMITTED),
    (S.CREATED, S.PENDING_CANCEL),
    (S.CREATED, S.CANCELLED),
    (S.CREATED, S.API_CANCELLED),
    (S.CREATED, S.FILLED),
    (S.CREATED, S.INACTIVE),
    (S.CREATED, S.REJECTED),
    # sent, not acknowledged
    (S.PENDING_SUBMIT, S.PRE_SUBMITTED),
    (S.PENDING_SUBMIT, S.SUBMITTED),
    (S.PENDING_SUBMIT, S.PENDING_CANCEL),
    (S.PENDING_SUBMIT, S.CANCELLED),
    (S.PENDING_SUBMIT, S.API_CANCELLED),
    (S.PENDING_SUBMIT, S.FILLED),
    (S.PENDING_SUBMIT, S.INACTIVE),
    # accepted, held (stop not triggered, child of a bracket, outside RTH)
    (S.PRE_SUBMITTED, S.SUBMITTED),
    (S.PRE_SUBMITTED, S.PENDING_CANCEL),
    (S.PRE_SUBMITTED, S.CANCELLED),
    (S.PRE_SUBMITTED, S.API_CANCELLED),
    (S.PRE_SUBMITTED, S.FILLED),
    (S.PRE_SUBMITTED, S.INACTIVE),
    # working at the exchange
    (S.SUBMITTED, S.PENDING_CANCEL),
    (S.SUBMITTED, S.CANCELLED),
    (S.SUBMITTED, S.API_CANCELLED),
    (S.SUBMITTED, S.FILLED),
    (S.SUBMITTED, S.INACTIVE),
    # cancel requested: it ends cancelled, or filled (too late), or the cancel is refused and it works on
    (S.PENDING_CANCEL, S.CANCELLED),
    (S.PENDING_CANCEL, S.API_CANCELLED),
    (S.PENDING_CANCEL, S.FILLED),
    (S.PENDING_CANCEL, S.INACTIVE),
    (S.PENDING_CANCEL, S.SUBMITTED),
    (S.PENDING_CANCEL, S.PRE_SUBMITTED),
}


def order_in(status: OrderStatus, quantity: int = 3) -> OrderState:
    o = OrderState("c1", quantity)
    o.status = status
    return o


def test_transition_table_is_exactly_the_legal_ib_transitions() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == EXPECTED_LEGAL
    assert set(TRANSITIONS) == set(OrderStatus)


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("new", ALL)
def test_every_status_pair_is_applied_or_ignored_without_corrupting_the_order(
    current: OrderStatus, new: OrderStatus
) -> None:
    o = order_in(current)
    result = o.apply_status(new, ts=5, message="x")
    if new is current:
        assert result is Applied.ECHO
        assert o.status is current
    elif (current, new) in EXPECTED_LEGAL:
        assert result is Applied.CHANGED
        assert o.status is new
    else:
        assert result is Applied.ILLEGAL
        assert o.status is current
    assert (o.filled, o.remaining) == (0, 3)


@pytest.mark.parametrize("final", sorted(FINAL))
@pytest.mark.parametrize(
    "late", [S.SUBMITTED, S.PRE_SUBMITTED, S.PENDING_SUBMIT, S.PENDING_CANCEL, S.CREATED]
)
def test_a_final_order_never_moves_back_on_a_stale_status(final: OrderStatus, late: OrderStatus) -> None:
    o = order_in(final)
    assert o.apply_status(late) is Applied.ILLEGAL
    assert o.status is final


def test_final_states_are_the_models_done_states() -> None:
    assert {s for s in OrderStatus if s.is_done} == FINAL


def test_ib_lifecycle_with_partial_fills_keeps_filled_and_remaining_from_executions() -> None:
    o = OrderState("c1", 3)
    for status in (S.PENDING_SUBMIT, S.PRE_SUBMITTED, S.SUBMITTED):
        assert o.apply_status(status) is Applied.CHANGED
    assert o.apply_fill("e1", 1, 5000.25, ts=10) is Applied.CHANGED
    assert (o.status, o.filled, o.remaining) == (S.SUBMITTED, 1, 2)
    assert o.apply_status(S.SUBMITTED) is Applied.ECHO  # IB repeats Submitted with filled=1
    assert o.apply_fill("e2", 2, 5000.5, ts=11) is Applied.CHANGED
    assert (o.status, o.filled, o.remaining) == (S.FILLED, 3, 0)
    # exact average: (1 x 5000.25 + 2 x 5000.50) / 3 = 5000.41666..., to 1e-10
    exact = (Fraction("5000.25") * 1 + Fraction("5000.5") * 2) / 3
    assert o.avg_fill_price is not None
    assert abs(Fraction(o.avg_fill_price) - exact) <= Fraction(1, 10**10)
    assert o.avg_fill_price == Decimal("5000.4166666667")
    assert o.apply_status(S.FILLED) is Applied.ECHO  # IB's Filled after the executions completed it
    assert o.apply_status(S.SUBMITTED) is Applied.ILLEGAL
    assert o.status is S.FILLED


def test_same_exec_id_twice_is_counted_once() -> None:
    o = order_in(S.SUBMITTED)
    assert o.apply_fill("e1", 2, 100.25) is Applied.CHANGED
    assert o.apply_fill("e1", 2, 100.25) is Applied.DUPLICATE
    assert (o.filled, o.remaining, len(o.executions)) == (2, 1, 1)


def test_cancel_that_arrives_too_late_ends_filled() -> None:
    o = order_in(S.SUBMITTED, quantity=1)
    assert o.apply_status(S.PENDING_CANCEL) is Applied.CHANGED
    assert o.apply_fill("e1", 1, 10.0) is Applied.CHANGED
    assert o.status is S.FILLED
    assert o.apply_status(S.CANCELLED) is Applied.ILLEGAL
    assert o.status is S.FILLED


def test_refused_cancel_returns_the_order_to_working() -> None:
    o = order_in(S.PENDING_CANCEL)
    assert o.apply_status(S.SUBMITTED) is Applied.CHANGED
    assert o.is_working


def test_filled_status_may_overtake_the_last_execution() -> None:
    o = order_in(S.SUBMITTED, quantity=2)
    o.apply_fill("e1", 1, 10.0)
    assert o.apply_status(S.FILLED) is Applied.CHANGED
    assert (o.filled, o.remaining) == (1, 1)  # executions are the truth for quantities
    o.apply_fill("e2", 1, 10.25)
    assert (o.status, o.filled, o.remaining) == (S.FILLED, 2, 0)


def test_late_executions_that_complete_a_cancelled_order_make_it_filled() -> None:
    o = order_in(S.CANCELLED, quantity=2)
    o.apply_fill("e1", 1, 10.0)
    assert o.status is S.CANCELLED  # a partial fill before the cancel: still cancelled
    o.apply_fill("e2", 1, 10.0)
    assert o.status is S.FILLED


def test_overfill_is_flagged_and_remaining_never_negative() -> None:
    o = order_in(S.SUBMITTED, quantity=1)
    o.apply_fill("e1", 1, 10.0)
    o.apply_fill("e2", 1, 10.0)
    assert o.overfilled
    assert (o.filled, o.remaining) == (2, 0)


@pytest.mark.parametrize(
    ("exec_id", "qty", "price"),
    [("", 1, 1.0), ("e", 0, 1.0), ("e", -1, 1.0), ("e", 1, float("nan")), ("e", 1, float("inf"))],
)
def test_malformed_executions_are_refused(exec_id: str, qty: int, price: float) -> None:
    o = order_in(S.SUBMITTED)
    with pytest.raises(InvalidOrderError):
        o.apply_fill(exec_id, qty, price)
    assert o.filled == 0


def test_modify_quantity_must_stay_above_filled_and_not_on_a_final_order() -> None:
    o = order_in(S.SUBMITTED, quantity=3)
    o.apply_fill("e1", 2, 10.0)
    with pytest.raises(InvalidOrderError, match="above the 2 already filled"):
        o.set_quantity(2)
    o.set_quantity(5)
    assert o.remaining == 3
    with pytest.raises(InvalidOrderError, match="Cancelled"):
        order_in(S.CANCELLED).set_quantity(5)


@pytest.mark.parametrize("qty", [0, -1, True, 1.5])
def test_an_order_of_no_quantity_cannot_exist(qty: object) -> None:
    with pytest.raises(InvalidOrderError):
        OrderState("c1", qty)  # type: ignore[arg-type]


# --- random IB-like event sequences ------------------------------------------------------------------------

IB_STATUSES = [s for s in OrderStatus if s not in (S.CREATED, S.REJECTED)]
EXEC_IDS = [f"0000e0d5.{k:08x}.01.01" for k in range(8)]


class OrderEvents(RuleBasedStateMachine):
    """Statuses, executions (some repeated), echoes, in any order: the invariants below must always hold."""

    @initialize(qty=st.integers(1, 6))
    def start(self, qty: int) -> None:
        self.order = OrderState("c1", qty)
        self.qty = qty
        self.executed: dict[str, tuple[int, Fraction]] = {}
        self.last_status: OrderStatus | None = None
        self.was_filled = False

    @rule(status=st.sampled_from(IB_STATUSES))
    def status(self, status: OrderStatus) -> None:
        before = self.order.status
        self.order.apply_status(status)
        self._check_move(before)
        self.last_status = status

    @rule()
    def echo(self) -> None:
        if self.last_status is not None:
            before = self.order.status
            self.order.apply_status(self.last_status)
            self._check_move(before)

    @rule(exec_id=st.sampled_from(EXEC_IDS), qty=st.integers(1, 3), ticks=st.integers(19_000, 21_000))
    def execution(self, exec_id: str, qty: int, ticks: int) -> None:
        before = self.order.status
        price = ticks * 0.25
        result = self.order.apply_fill(exec_id, qty, price)
        if exec_id in self.executed:
            assert result is Applied.DUPLICATE
        else:
            assert result is Applied.CHANGED
            self.executed[exec_id] = (qty, Fraction(ticks, 4))
        self._check_move(before)

    def _check_move(self, before: OrderStatus) -> None:
        after = self.order.status
        if before is S.FILLED:
            assert after is S.FILLED
        elif before in FINAL and after is not before:
            # only executions adding up to the whole order may complete a cancelled/inactive order
            assert after is S.FILLED
            assert self.order.filled >= self.qty

    @invariant()
    def quantities_come_from_distinct_executions(self) -> None:
        if not hasattr(self, "order"):
            return
        filled = sum(q for q, _ in self.executed.values())
        assert self.order.filled == filled
        assert self.order.remaining == max(self.qty - filled, 0)
        assert self.order.remaining >= 0

    @invariant()
    def average_price_is_exact(self) -> None:
        if not hasattr(self, "order") or not self.executed:
            return
        total = sum(q * p for q, p in self.executed.values())
        exact = total / sum(q for q, _ in self.executed.values())
        avg = self.order.avg_fill_price
        assert avg is not None
        assert abs(Fraction(avg) - exact) <= Fraction(1, 10**10)


OrderEvents.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestOrderEvents = OrderEvents.TestCase

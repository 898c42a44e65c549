"""The order-side layouts against the real clients: what we encode, ib_async 2.1.0's and ibapi 10.46's own
decoders read back exactly (and consume completely); what the clients' own placeOrder sends, we decode."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ib_async
import ibapi.client
import ibapi.comm
import ibapi.contract
import ibapi.decoder
import ibapi.execution
import ibapi.message
import ibapi.order
import ibapi.order_cancel
import ibapi.order_condition
import ibapi.tag_value
import ibapi.wrapper
import pytest
from ib_async.client import Client as IbAsyncClient
from ib_async.decoder import Decoder as IbAsyncDecoder
from ib_async.wrapper import Wrapper as IbAsyncWrapper

from ibot.sim import layouts_orders as lo
from ibot.sim.layouts_orders import (
    CancelOrderFieldError,
    ComboLegView,
    CommissionReportView,
    ContractView,
    DeltaNeutralContractView,
    ExecutionView,
    LayoutVersionError,
    OpenOrderView,
    OrderConditionView,
    OrderStateView,
    OrderStatusView,
    OrderView,
    PlaceOrderFieldError,
    ReqExecutionsFieldError,
    decode_cancel_order,
    decode_place_order,
    decode_req_completed_orders,
    decode_req_executions,
    encode_commission_report,
    encode_completed_order,
    encode_completed_orders_end,
    encode_execution_data,
    encode_execution_data_end,
    encode_open_order,
    encode_open_order_end,
    encode_order_status,
    ib_execution_time,
)
from ibot.sim.wire import UNSET_DOUBLE, UNSET_INTEGER, FrameBuffer, frame, frame_raw

VERSIONS = [157, 163, 166, 170, 173, 176, 177, 178]
UNSET_DECIMAL = Decimal(2**127 - 1)  # ibapi's unset Decimal


# ==========================================================================================================
# The real clients' decoders, fed the bytes we frame
# ==========================================================================================================


def _wire_fields(fields: list[Any]) -> tuple[bytes, list[str]]:
    """Frame our fields with the shared wire code; return the raw payload and ib_async's str split of it."""
    data = frame(fields)
    payload = data[4:]
    text = payload.decode(errors="backslashreplace").split("\0")
    text.pop()  # ib_async drops the empty tail the same way
    return payload, text


class RecordingIbAsyncWrapper(IbAsyncWrapper):
    """ib_async's own Wrapper (its trade bookkeeping runs), recording each callback's arguments first."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.records: list[tuple[str, tuple[Any, ...]]] = []

    def _record(self, name: str, *args: Any) -> None:
        self.records.append((name, tuple(copy.deepcopy(a) for a in args)))

    def openOrder(self, order_id: Any, contract: Any, order: Any, order_state: Any) -> None:
        self._record("openOrder", order_id, contract, order, order_state)
        super().openOrder(order_id, contract, order, order_state)

    def completedOrder(self, contract: Any, order: Any, order_state: Any) -> None:
        self._record("completedOrder", contract, order, order_state)
        self._results.setdefault("completedOrders", [])
        super().completedOrder(contract, order, order_state)

    def orderStatus(self, *args: Any) -> None:
        self._record("orderStatus", *args)
        super().orderStatus(*args)

    def execDetails(self, req_id: Any, contract: Any, execution: Any) -> None:
        self._record("execDetails", req_id, contract, execution)
        super().execDetails(req_id, contract, execution)

    def commissionReport(self, report: Any) -> None:
        self._record("commissionReport", report)
        super().commissionReport(report)

    def openOrderEnd(self) -> None:
        self._record("openOrderEnd")

    def execDetailsEnd(self, req_id: Any) -> None:
        self._record("execDetailsEnd", req_id)

    def completedOrdersEnd(self) -> None:
        self._record("completedOrdersEnd")


def ib_async_decode(
    fields: list[Any], sv: int, wrapper: RecordingIbAsyncWrapper | None = None
) -> RecordingIbAsyncWrapper:
    """Run ib_async's Decoder handler on our framed message; its exceptions propagate (no log-and-drop).

    Pass the wrapper of an earlier call to keep ib_async's trade bookkeeping; its records start afresh.
    """
    if wrapper is None:
        ib = ib_async.IB()
        wrapper = RecordingIbAsyncWrapper(ib)
        ib.wrapper = wrapper
    wrapper.records.clear()
    _, text = _wire_fields(fields)
    decoder = IbAsyncDecoder(wrapper, sv)
    decoder.handlers[int(text[0])](text)
    return wrapper


def ib_async_consumes_exactly(fields: list[Any], sv: int) -> None:
    """ib_async reads fields in order, so: all fields decode, and without the last one decoding fails."""
    ib_async_decode(fields, sv)
    with pytest.raises((ValueError, IndexError)):
        ib_async_decode(fields[:-1], sv)


class RecordingEWrapper(ibapi.wrapper.EWrapper):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, tuple[Any, ...]]] = []

    def openOrder(self, order_id: Any, contract: Any, order: Any, order_state: Any) -> None:
        self.records.append(("openOrder", (order_id, contract, order, order_state)))

    def completedOrder(self, contract: Any, order: Any, order_state: Any) -> None:
        self.records.append(("completedOrder", (contract, order, order_state)))

    def orderStatus(self, *args: Any) -> None:
        self.records.append(("orderStatus", args))

    def execDetails(self, req_id: Any, contract: Any, execution: Any) -> None:
        self.records.append(("execDetails", (req_id, contract, execution)))

    def commissionAndFeesReport(self, report: Any) -> None:
        self.records.append(("commissionReport", (report,)))

    def openOrderEnd(self) -> None:
        self.records.append(("openOrderEnd", ()))

    def execDetailsEnd(self, req_id: Any) -> None:
        self.records.append(("execDetailsEnd", (req_id,)))

    def completedOrdersEnd(self) -> None:
        self.records.append(("completedOrdersEnd", ()))

    def error(self, *args: Any, **kwargs: Any) -> None:
        self.records.append(("error", args))


def ibapi_decode(fields: list[Any], sv: int) -> RecordingEWrapper:
    """Unframe as EClient.run does (msg id split off, bytes fields), decode, assert nothing is left."""
    _size, msg, _rest = ibapi.comm.read_msg(frame(fields))
    msg_id = int(msg[: msg.index(b"\0")])
    rest = ibapi.comm.read_fields(msg[msg.index(b"\0") + 1 :])
    wrapper = RecordingEWrapper()
    decoder = ibapi.decoder.Decoder(wrapper, sv)
    info = decoder.msgId2handleInfo[msg_id]
    if info.processMeth is not None:
        it = iter(rest)
        info.processMeth(decoder, it)
        assert next(it, None) is None, "ibapi left fields unread"
    else:  # simple messages: the client checks the exact field count and silently drops a mismatch
        decoder.interpret(rest, msg_id)
    return wrapper


def only(records: list[tuple[str, tuple[Any, ...]]], name: str) -> tuple[Any, ...]:
    found = [args for n, args in records if n == name]
    assert len(found) == 1, f"expected one {name}, got {records}"
    return found[0]


# ==========================================================================================================
# Views to encode
# ==========================================================================================================

MES = ContractView(
    con_id=654503314, symbol="MES", sec_type="FUT", last_trade_date_or_contract_month="20250620",
    multiplier="5", exchange="CME", currency="USD", local_symbol="MESM5", trading_class="MES",
)  # fmt: skip


def plain_lmt_view() -> OpenOrderView:
    """A live futures limit order, every optional block absent."""
    order = OrderView(
        order_id=7, client_id=12, perm_id=1_339_547_414, action="BUY", total_quantity=Decimal(2),
        order_type="LMT", lmt_price=5012.25, aux_price=0.0, tif="DAY", oca_group="", oca_type=3,
        account="DU123456", open_close="", order_ref="ibot:abc", parent_id=0, outside_rth=True,
        trail_stop_price=5013.25, clearing_intent="IB", dont_use_auto_price_for_hedge=True,
        use_price_mgmt_algo=True, filled_quantity=Decimal(0), shareholder="Not an insider",
    )  # fmt: skip
    return OpenOrderView(MES, order, OrderStateView(status="PreSubmitted"))


def rich_view() -> OpenOrderView:
    """Every conditional block present with distinctive values (a layout test, not a realistic order)."""
    contract = dataclasses.replace(
        MES,
        sec_type="BAG", con_id=28812380, symbol="MES", strike=None,
        combo_legs_descrip="654503314|1,654503315|-1",
        combo_legs=(ComboLegView(654503314, 1, "BUY", "CME"),
                    ComboLegView(654503315, 1, "SELL", "CME", 0, 0, "", -1)),
        delta_neutral_contract=DeltaNeutralContractView(111, 0.5, 12.25),
    )  # fmt: skip
    order = OrderView(
        order_id=8, client_id=3, perm_id=99887766, action="SELL", total_quantity=Decimal("3"),
        order_type="PEG BENCH", lmt_price=1.5, aux_price=0.25, tif="GTC", oca_group="oca-9", oca_type=1,
        account="DU1", open_close="C", origin=0, order_ref="ref-8", parent_id=5, outside_rth=True,
        hidden=False, discretionary_amt=0.5, good_after_time="20250102 09:30:00 US/Eastern",
        good_till_date="20250131 16:00:00 US/Eastern", fa_group="G", fa_method="M", fa_percentage="P",
        fa_profile="Prof", model_code="MC", rule80a="A", percent_offset=0.1, settling_firm="SF",
        short_sale_slot=1, designated_location="DL", exempt_code=2, auction_strategy=1, starting_price=1.1,
        stock_ref_price=1.2, delta=0.3, stock_range_lower=1.0, stock_range_upper=2.0, display_size=4,
        block_order=True, sweep_to_fill=True, all_or_none=True, min_qty=2, nbbo_price_cap=None,
        trigger_method=2, volatility=0.25, volatility_type=1, delta_neutral_order_type="LMT",
        delta_neutral_aux_price=0.75, delta_neutral_con_id=222, delta_neutral_settling_firm="DSF",
        delta_neutral_clearing_account="DCA", delta_neutral_clearing_intent="IB",
        delta_neutral_open_close="O", delta_neutral_short_sale=True, delta_neutral_short_sale_slot=1,
        delta_neutral_designated_location="DDL",
        continuous_update=True, reference_price_type=2, trail_stop_price=4.5, trailing_percent=1.5,
        basis_points=0.01, basis_points_type=1, order_combo_leg_prices=(1.25, None),
        smart_combo_routing_params=(("NonGuaranteed", "1"),), scale_init_level_size=10,
        scale_subs_level_size=5, scale_price_increment=0.25, scale_price_adjust_value=0.05,
        scale_price_adjust_interval=60, scale_profit_offset=0.5, scale_auto_reset=True, scale_init_position=1,
        scale_init_fill_qty=2, scale_random_percent=True, hedge_type="D", hedge_param="0.5",
        opt_out_smart_routing=True, clearing_account="CA", clearing_intent="Away", not_held=True,
        algo_strategy="Adaptive", algo_params=(("adaptivePriority", "Normal"), ("x", "y")), solicited=True,
        randomize_size=True, randomize_price=True, reference_contract_id=333,
        is_pegged_change_amount_decrease=True, pegged_change_amount=0.2, reference_change_amount=0.3,
        reference_exchange_id="CME",
        conditions=(
            OrderConditionView(1, (True, 5000.5, 654503314, "CME", 2), "a"),
            OrderConditionView(3, (False, "20250102 10:00:00 US/Eastern"), "o"),
            OrderConditionView(4, (True, 30), "a"),
            OrderConditionView(5, ("FUT", "CME", "MES"), "a"),
            OrderConditionView(6, (True, 1000, 654503314, "CME"), "a"),
            OrderConditionView(7, (False, 2.5, 654503314, "CME"), "a"),
        ),
        conditions_ignore_rth=True, conditions_cancel_order=True, adjusted_order_type="STP",
        trigger_price=4999.0, lmt_price_offset=0.5, adjusted_stop_price=4990.0,
        adjusted_stop_limit_price=4989.0,
        adjusted_trailing_amount=2.0, adjustable_trailing_unit=1, soft_dollar_tier_name="SDT",
        soft_dollar_tier_value="V", soft_dollar_tier_display_name="Tier", cash_qty=1000.0,
        dont_use_auto_price_for_hedge=True, is_oms_container=True, discretionary_up_to_limit_price=True,
        use_price_mgmt_algo=False, duration=30, post_to_ats=1, auto_cancel_parent=True, min_trade_qty=7,
        min_compete_size=8, compete_against_best_offset=math.inf, mid_offset_at_whole=0.5,
        mid_offset_at_half=0.75, auto_cancel_date="20250201", filled_quantity=Decimal("1"),
        ref_futures_con_id=444, shareholder="SH", imbalance_only=True, route_marketable_to_bbo=True,
        parent_perm_id=99887700,
    )  # fmt: skip
    state = OrderStateView(
        status="Submitted", commission=2.04, min_commission=1.0, max_commission=3.0,
        commission_currency="USD",
        warning_text="careful", completed_time="20250103 10:00:00 US/Eastern", completed_status="Filled",
    )  # fmt: skip
    return OpenOrderView(contract, order, state)


# IB attribute names on both clients' Order objects, where they are not the camelCase of ours.
_IB_NAME = {"rule80a": "rule80A"}


def ib_name(attr: str) -> str:
    if attr in _IB_NAME:
        return _IB_NAME[attr]
    head, *rest = attr.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def expected(value: Any, kind: type) -> Any:
    """What a decoder shows for a view value: None is IB's unset of the field's type."""
    if value is None:
        return {float: UNSET_DOUBLE, int: UNSET_INTEGER}[kind]
    return value


def same(decoded: Any, want: Any) -> bool:
    if isinstance(want, Decimal):
        return decoded not in ("", None) and Decimal(str(decoded)) == want
    if isinstance(want, bool):
        return bool(decoded) is want
    if isinstance(want, float):
        return float(decoded) == want
    return decoded == want


_KINDS: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool, "dec": Decimal}


def _attrs(spec: str) -> list[tuple[str, type]]:
    """Parse "name:kind name:kind ...": [(our attribute, the Python kind of its unset value)]."""
    return [(name, _KINDS[kind]) for name, kind in (item.split(":") for item in spec.split())]


# Order attributes both decoders store, per message.
_COMMON_ORDER_ATTRS = _attrs("""
    perm_id:int action:str total_quantity:dec order_type:str lmt_price:float aux_price:float tif:str
    oca_group:str account:str open_close:str origin:int order_ref:str outside_rth:bool hidden:bool
    discretionary_amt:float good_after_time:str fa_group:str fa_method:str fa_percentage:str model_code:str
    good_till_date:str rule80a:str percent_offset:float settling_firm:str short_sale_slot:int
    designated_location:str exempt_code:int starting_price:float stock_ref_price:float delta:float
    stock_range_lower:float stock_range_upper:float display_size:int sweep_to_fill:bool all_or_none:bool
    min_qty:int oca_type:int trigger_method:int volatility:float volatility_type:int
    delta_neutral_order_type:str delta_neutral_aux_price:float continuous_update:bool reference_price_type:int
    trail_stop_price:float trailing_percent:float scale_init_level_size:int scale_subs_level_size:int
    scale_price_increment:float hedge_type:str clearing_account:str clearing_intent:str not_held:bool
    algo_strategy:str solicited:bool randomize_size:bool randomize_price:bool lmt_price_offset:float
    cash_qty:float dont_use_auto_price_for_hedge:bool is_oms_container:bool auto_cancel_parent:bool
""")
_OPEN_ONLY_ATTRS = _attrs("""
    order_id:int client_id:int parent_id:int auction_strategy:int block_order:bool basis_points:float
    basis_points_type:int opt_out_smart_routing:bool what_if:bool adjusted_order_type:str trigger_price:float
    adjusted_stop_price:float adjusted_stop_limit_price:float adjusted_trailing_amount:float
    adjustable_trailing_unit:int discretionary_up_to_limit_price:bool use_price_mgmt_algo:bool duration:int
    post_to_ats:int
""")
_COMPLETED_ONLY_ATTRS = _attrs("""
    auto_cancel_date:str filled_quantity:dec ref_futures_con_id:int shareholder:str imbalance_only:bool
    route_marketable_to_bbo:bool parent_perm_id:int
""")
_PEG_ATTRS = _attrs("""
    min_trade_qty:int min_compete_size:int compete_against_best_offset:float mid_offset_at_whole:float
    mid_offset_at_half:float
""")
_CONTRACT_ATTRS = [
    "con_id", "symbol", "sec_type", "last_trade_date_or_contract_month", "right", "multiplier", "exchange",
    "currency", "local_symbol", "trading_class", "combo_legs_descrip",
]  # fmt: skip


def check_order_message(
    contract: Any, order: Any, state: Any, view: OpenOrderView, sv: int, completed: bool
) -> None:
    attrs = list(_COMMON_ORDER_ATTRS) + (_COMPLETED_ONLY_ATTRS if completed else _OPEN_ONLY_ATTRS)
    if sv >= 170:
        attrs += _PEG_ATTRS
    if not completed and sv < 160:
        attrs.remove(("post_to_ats", int))
    if not completed and sv < 162:
        attrs.remove(("auto_cancel_parent", bool))
    if not completed and sv < 159:  # ib_async reads duration from 159; ibapi from 158 (tested separately)
        attrs.remove(("duration", int))
    for attr, kind in attrs:
        want = getattr(view.order, attr)
        if kind is bool and want is None:
            want = False
        want = expected(want, kind)
        got = getattr(order, ib_name(attr))
        assert same(got, want), f"{attr} at {sv}: decoded {got!r}, encoded {want!r}"
    for attr in _CONTRACT_ATTRS:
        assert getattr(contract, ib_name(attr)) == getattr(view.contract, attr), attr
    assert float(contract.strike) == (view.contract.strike or 0.0)
    assert state.status == view.state.status
    legs = contract.comboLegs or []
    assert [(leg.conId, leg.ratio, leg.action, leg.exchange, leg.exemptCode) for leg in legs] == [
        (leg.con_id, leg.ratio, leg.action, leg.exchange, leg.exempt_code) for leg in view.contract.combo_legs
    ]
    assert [expected(p, float) for p in view.order.order_combo_leg_prices] == [
        float(leg.price) for leg in order.orderComboLegs or []
    ]
    assert [(t.tag, t.value) for t in order.smartComboRoutingParams or []] == list(
        view.order.smart_combo_routing_params
    )
    assert [(t.tag, t.value) for t in order.algoParams or []] == list(view.order.algo_params)
    assert len(order.conditions or []) == len(view.order.conditions)
    dnc = contract.deltaNeutralContract
    want_dnc = view.contract.delta_neutral_contract
    assert (dnc is None) == (want_dnc is None) or (not dnc and want_dnc is None)
    if want_dnc is not None:
        assert (dnc.conId, dnc.delta, dnc.price) == (want_dnc.con_id, want_dnc.delta, want_dnc.price)


# ==========================================================================================================
# Message ids
# ==========================================================================================================


def test_message_ids_are_ibapis() -> None:
    incoming, outgoing = ibapi.message.OUT, ibapi.message.IN
    assert lo._IN_PLACE_ORDER == incoming.PLACE_ORDER
    assert lo._IN_CANCEL_ORDER == incoming.CANCEL_ORDER
    assert lo._IN_REQ_OPEN_ORDERS == incoming.REQ_OPEN_ORDERS
    assert lo._IN_REQ_EXECUTIONS == incoming.REQ_EXECUTIONS
    assert lo._IN_REQ_AUTO_OPEN_ORDERS == incoming.REQ_AUTO_OPEN_ORDERS
    assert lo._IN_REQ_ALL_OPEN_ORDERS == incoming.REQ_ALL_OPEN_ORDERS
    assert lo._IN_REQ_GLOBAL_CANCEL == incoming.REQ_GLOBAL_CANCEL
    assert lo._IN_REQ_COMPLETED_ORDERS == incoming.REQ_COMPLETED_ORDERS
    assert lo._OUT_ORDER_STATUS == outgoing.ORDER_STATUS
    assert lo._OUT_OPEN_ORDER == outgoing.OPEN_ORDER
    assert lo._OUT_EXECUTION_DATA == outgoing.EXECUTION_DATA
    assert lo._OUT_OPEN_ORDER_END == outgoing.OPEN_ORDER_END
    assert lo._OUT_EXECUTION_DATA_END == outgoing.EXECUTION_DATA_END
    assert lo._OUT_COMMISSION_REPORT == outgoing.COMMISSION_AND_FEES_REPORT
    assert lo._OUT_COMPLETED_ORDER == outgoing.COMPLETED_ORDER
    assert lo._OUT_COMPLETED_ORDERS_END == outgoing.COMPLETED_ORDERS_END


def test_layouts_refuse_a_server_version_they_do_not_implement() -> None:
    with pytest.raises(LayoutVersionError, match="179"):
        encode_open_order(plain_lmt_view(), 179)
    with pytest.raises(LayoutVersionError, match="150"):
        decode_place_order(["3", "1"], 150)


# ==========================================================================================================
# OPEN_ORDER / COMPLETED_ORDER
# ==========================================================================================================

VIEWS: dict[str, Callable[[], OpenOrderView]] = {"plain_lmt": plain_lmt_view, "every_block": rich_view}


@pytest.mark.parametrize("sv", VERSIONS)
@pytest.mark.parametrize("view_name", VIEWS)
def test_open_order_reads_back_exactly_in_ib_async(sv: int, view_name: str) -> None:
    view = VIEWS[view_name]()
    fields = encode_open_order(view, sv)
    wrapper = ib_async_decode(fields, sv)
    order_id, contract, order, state = only(wrapper.records, "openOrder")
    assert order_id == view.order.order_id
    check_order_message(contract, order, state, view, sv, completed=False)
    # ib_async's own bookkeeping knows the order by (clientId, orderId) with our permId
    trade = wrapper.trades[(view.order.client_id, view.order.order_id)]
    assert trade.order.permId == view.order.perm_id
    assert trade.orderStatus.status == view.state.status
    if sv >= 159:
        ib_async_consumes_exactly(fields, sv)


@pytest.mark.parametrize("sv", VERSIONS)
@pytest.mark.parametrize("view_name", VIEWS)
def test_open_order_reads_back_exactly_in_ibapi(sv: int, view_name: str) -> None:
    view = VIEWS[view_name]()
    wrapper = ibapi_decode(encode_open_order(view, sv), sv)
    order_id, contract, order, state = only(wrapper.records, "openOrder")
    assert order_id == view.order.order_id
    check_order_message(contract, order, state, view, sv, completed=False)
    if sv >= 158:
        assert order.duration == expected(view.order.duration, int)
    assert state.commissionAndFees == expected(view.state.commission, float)
    assert state.warningText == view.state.warning_text


def test_fa_profile_is_sent_below_177_only() -> None:
    view = plain_lmt_view()
    assert len(encode_open_order(view, 176)) == len(encode_open_order(view, 177)) + 1
    assert len(encode_completed_order(view, 176)) == len(encode_completed_order(view, 177)) + 1


def test_duration_at_158_is_read_by_ibapi_and_ignored_by_ib_async() -> None:
    """At 158 ibapi reads duration, ib_async only from 159 and ignores trailing fields: both decode."""
    view = rich_view()
    fields = encode_open_order(view, 158)
    assert ibapi_decode(fields, 158).records[0][1][2].duration == 30
    _, _, order, _ = only(ib_async_decode(fields, 158).records, "openOrder")
    assert order.duration == UNSET_INTEGER


def test_conditions_read_back_with_their_values_in_both_clients() -> None:
    view = rich_view()
    _, _, ia_order, _ = only(ib_async_decode(encode_open_order(view, 178), 178).records, "openOrder")
    _, _, api_order, _ = only(ibapi_decode(encode_open_order(view, 178), 178).records, "openOrder")
    price_ia, time_ia, margin_ia, exec_ia, volume_ia, pct_ia = ia_order.conditions
    assert (price_ia.isMore, price_ia.price, price_ia.conId, price_ia.exch, price_ia.triggerMethod) == (
        True, 5000.5, 654503314, "CME", 2,
    )  # fmt: skip
    assert (time_ia.conjunction, time_ia.time) == ("o", "20250102 10:00:00 US/Eastern")
    assert margin_ia.percent == 30
    assert (exec_ia.secType, exec_ia.exch, exec_ia.symbol) == ("FUT", "CME", "MES")
    assert (volume_ia.volume, pct_ia.changePercent) == (1000, 2.5)
    price_api, time_api, margin_api, exec_api, volume_api, pct_api = api_order.conditions
    assert (price_api.isMore, price_api.price, price_api.conId, price_api.exchange) == (
        True, 5000.5, 654503314, "CME",
    )  # fmt: skip
    assert time_api.isConjunctionConnection is False and time_api.time == "20250102 10:00:00 US/Eastern"
    assert margin_api.percent == 30 and exec_api.symbol == "MES"
    assert volume_api.volume == 1000 and pct_api.changePercent == 2.5
    assert api_order.conditionsIgnoreRth and api_order.conditionsCancelOrder


def test_what_if_answer_carries_margins_the_clients_can_parse() -> None:
    base = plain_lmt_view()
    state = OrderStateView(
        status="PreSubmitted", init_margin_before=1000.0, maint_margin_before=900.0,
        equity_with_loan_before=50000.0, init_margin_change=1500.0, maint_margin_change=1200.0,
        equity_with_loan_change=-2.04, init_margin_after=2500.0, maint_margin_after=2100.0,
        equity_with_loan_after=49997.96, commission=2.04, commission_currency="USD",
    )  # fmt: skip
    view = OpenOrderView(base.contract, dataclasses.replace(base.order, what_if=True), state)
    fields = encode_open_order(view, 178)
    _, _, ia_order, ia_state = only(ib_async_decode(fields, 178).records, "openOrder")
    _, _, api_order, api_state = only(ibapi_decode(fields, 178).records, "openOrder")
    assert ia_order.whatIf and api_order.whatIf
    for st in (ia_state, api_state):
        assert float(st.initMarginChange) == 1500.0
        assert float(st.equityWithLoanAfter) == 49997.96
    assert ia_state.commission == api_state.commissionAndFees == 2.04


def test_compete_against_best_offset_up_to_mid_is_infinity_not_unset() -> None:
    view = rich_view()
    _, _, ia_order, _ = only(ib_async_decode(encode_open_order(view, 178), 178).records, "openOrder")
    _, _, api_order, _ = only(ibapi_decode(encode_open_order(view, 178), 178).records, "openOrder")
    assert ia_order.competeAgainstBestOffset == math.inf == api_order.competeAgainstBestOffset


@pytest.mark.parametrize("sv", VERSIONS)
@pytest.mark.parametrize("view_name", VIEWS)
def test_completed_order_reads_back_exactly_in_both_clients(sv: int, view_name: str) -> None:
    view = VIEWS[view_name]()
    fields = encode_completed_order(view, sv)
    ia = ib_async_decode(fields, sv)
    contract, order, state = only(ia.records, "completedOrder")
    check_order_message(contract, order, state, view, sv, completed=True)
    assert (state.completedTime, state.completedStatus) == (
        view.state.completed_time,
        view.state.completed_status,
    )
    assert ia.permId2Trade[view.order.perm_id].order.permId == view.order.perm_id
    ib_async_consumes_exactly(fields, sv)
    contract, order, state = only(ibapi_decode(fields, sv).records, "completedOrder")
    check_order_message(contract, order, state, view, sv, completed=True)
    assert (state.completedTime, state.completedStatus) == (
        view.state.completed_time,
        view.state.completed_status,
    )


def test_unset_filled_quantity_reads_as_each_clients_unset() -> None:
    view = plain_lmt_view()
    view = dataclasses.replace(view, order=dataclasses.replace(view.order, filled_quantity=None))
    fields = encode_completed_order(view, 178)
    _, ia_order, _ = only(ib_async_decode(fields, 178).records, "completedOrder")
    _, api_order, _ = only(ibapi_decode(fields, 178).records, "completedOrder")
    assert ia_order.filledQuantity == UNSET_DOUBLE
    assert api_order.filledQuantity == UNSET_DECIMAL


# ==========================================================================================================
# ORDER_STATUS, EXECUTION_DATA, COMMISSION_REPORT, end markers
# ==========================================================================================================


def status_view() -> OrderStatusView:
    return OrderStatusView(
        order_id=7, status="Submitted", filled=Decimal(1), remaining=Decimal(1), avg_fill_price=5012.25,
        perm_id=1_339_547_414, parent_id=6, last_fill_price=5012.25, client_id=12, why_held="locate",
        mkt_cap_price=12.5,
    )  # fmt: skip


@pytest.mark.parametrize("sv", VERSIONS)
def test_order_status_updates_the_ib_async_trade_and_reads_back_in_ibapi(sv: int) -> None:
    wrapper = ib_async_decode(encode_open_order(plain_lmt_view(), sv), sv)
    st = status_view()
    ib_async_decode(encode_order_status(st, sv), sv, wrapper)
    args = only(wrapper.records, "orderStatus")
    want = (st.order_id, st.status, 1.0, 1.0, st.avg_fill_price, st.perm_id, st.parent_id, st.last_fill_price,
            st.client_id, st.why_held, st.mkt_cap_price)  # fmt: skip
    assert args == want  # the last one read proves every field was consumed in order
    trade = wrapper.trades[(12, 7)]
    assert (trade.orderStatus.status, trade.orderStatus.filled, trade.orderStatus.remaining) == (
        "Submitted",
        1,
        1,
    )
    api_args = only(ibapi_decode(encode_order_status(st, sv), sv).records, "orderStatus")
    assert api_args == (st.order_id, st.status, Decimal(1), Decimal(1), *want[4:])


def execution_view(**changes: Any) -> ExecutionView:
    base = ExecutionView(
        contract=MES, order_id=7, exec_id="0000e0d5.6789abcd.01.01", time="20250106 14:30:05 US/Eastern",
        acct_number="DU123456", exchange="CME", side="BOT", shares=Decimal(1), price=5012.25,
        perm_id=1_339_547_414, client_id=12, cum_qty=Decimal(2), avg_price=5012.125, liquidation=0,
        order_ref="ibot:abc", ev_rule="", ev_multiplier=None, model_code="", last_liquidity=2,
        pending_price_revision=True,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("sv", VERSIONS)
def test_execution_data_becomes_an_ib_async_fill_and_reads_back_in_ibapi(sv: int) -> None:
    wrapper = ib_async_decode(encode_open_order(plain_lmt_view(), sv), sv)
    ex = execution_view()
    fields = encode_execution_data(-1, ex, sv)
    ib_async_decode(fields, sv, wrapper)
    req_id, contract, execution = only(wrapper.records, "execDetails")
    assert req_id == -1
    assert (contract.conId, contract.symbol, contract.localSymbol) == (MES.con_id, "MES", "MESM5")
    assert (execution.orderId, execution.execId, execution.acctNumber, execution.side) == (
        7, ex.exec_id, "DU123456", "BOT",
    )  # fmt: skip
    assert (execution.shares, execution.price, execution.permId, execution.clientId) == (
        1.0, 5012.25, ex.perm_id, 12,
    )  # fmt: skip
    assert (execution.cumQty, execution.avgPrice, execution.orderRef, execution.lastLiquidity) == (
        2.0, 5012.125, "ibot:abc", 2,
    )  # fmt: skip
    assert execution.evMultiplier == 0.0
    assert execution.pendingPriceRevision is (sv >= 178)
    assert execution.time == datetime(2025, 1, 6, 19, 30, 5, tzinfo=UTC)
    assert [f.execution.execId for f in wrapper.trades[(12, 7)].fills] == [ex.exec_id]
    ib_async_consumes_exactly(fields, sv)

    req_id, contract, execution = only(ibapi_decode(fields, sv).records, "execDetails")
    assert (req_id, contract.conId, contract.tradingClass) == (-1, MES.con_id, "MES")
    assert (execution.orderId, execution.execId, execution.time) == (7, ex.exec_id, ex.time)
    assert (execution.shares, execution.cumQty, execution.price, execution.avgPrice) == (
        Decimal(1), Decimal(2), 5012.25, 5012.125,
    )  # fmt: skip
    assert (execution.permId, execution.clientId, execution.lastLiquidity) == (ex.perm_id, 12, 2)
    assert execution.pendingPriceRevision is (sv >= 178)


def test_pending_price_revision_is_a_field_from_178_only() -> None:
    ex = execution_view()
    assert len(encode_execution_data(1, ex, 178)) == len(encode_execution_data(1, ex, 177)) + 1


def test_execution_time_is_written_in_the_named_zone() -> None:
    ts = int(datetime(2025, 1, 6, 19, 30, 5, tzinfo=UTC).timestamp()) * 1_000_000_000
    assert ib_execution_time(ts, "US/Eastern") == "20250106 14:30:05 US/Eastern"
    assert ib_execution_time(ts) == "20250106 19:30:05 UTC"


def test_commission_report_with_unset_realized_pnl_reads_back_in_both_clients() -> None:
    wrapper = ib_async_decode(encode_open_order(plain_lmt_view(), 178), 178)
    ib_async_decode(encode_execution_data(-1, execution_view(), 178), 178, wrapper)
    report = CommissionReportView(
        exec_id=execution_view().exec_id, commission=Decimal("0.62"), currency="USD"
    )
    fields = encode_commission_report(report)
    ib_async_decode(fields, 178, wrapper)
    (ia_report,) = only(wrapper.records, "commissionReport")
    assert (ia_report.execId, ia_report.commission, ia_report.currency) == (report.exec_id, 0.62, "USD")
    assert ia_report.realizedPNL == UNSET_DOUBLE  # as decoded; ib_async's wrapper then shows 0.0
    assert wrapper.fills[report.exec_id].commissionReport.commission == 0.62
    (api_report,) = only(ibapi_decode(fields, 178).records, "commissionReport")
    assert (api_report.execId, api_report.commissionAndFees, api_report.currency) == (
        report.exec_id,
        0.62,
        "USD",
    )
    assert api_report.realizedPNL == UNSET_DOUBLE
    assert api_report.yield_ == UNSET_DOUBLE
    assert api_report.yieldRedemptionDate == 0


def test_commission_report_with_realized_pnl() -> None:
    report = CommissionReportView(
        "e1", Decimal("1.24"), "USD", realized_pnl=Decimal("61.26"), yield_redemption_date=0
    )
    (api_report,) = only(ibapi_decode(encode_commission_report(report), 178).records, "commissionReport")
    assert (api_report.commissionAndFees, api_report.realizedPNL) == (1.24, 61.26)


def test_end_markers_are_accepted_by_both_clients() -> None:
    for fields, name, args in (
        (encode_open_order_end(), "openOrderEnd", ()),
        (encode_execution_data_end(9), "execDetailsEnd", (9,)),
        (encode_completed_orders_end(), "completedOrdersEnd", ()),
    ):
        assert ib_async_decode(fields, 178).records == [(name, args)]
        api = ibapi_decode(fields, 178).records
        assert [(n, tuple(int(a) for a in a_)) for n, a_ in api] == [(name, args)]


# ==========================================================================================================
# PLACE_ORDER: decode what the real clients send
# ==========================================================================================================


class CapturingIbAsyncClient(IbAsyncClient):
    """ib_async's own Client with its framing; only the socket write is replaced by a capture."""

    def __init__(self, sv: int) -> None:
        super().__init__(ib_async.IB().wrapper)
        self.sent: list[bytes] = []
        self._serverVersion = sv
        self.connState = IbAsyncClient.CONNECTED

    def sendMsg(self, msg: str) -> None:
        self.sent.append(self._prefix(msg.encode()))


class _CapturingConnection:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def isConnected(self) -> bool:
        return True

    def sendMsg(self, data: bytes) -> None:
        self.sent.append(data)


def capture_ibapi(sv: int, order_id: int, contract: Any, order: Any) -> list[str]:
    wrapper = RecordingEWrapper()
    client = ibapi.client.EClient(wrapper)
    client.serverVersion_ = sv
    client.connState = ibapi.client.EClient.CONNECTED
    client.conn = _CapturingConnection()
    client.placeOrder(order_id, contract, order)
    assert not [r for r in wrapper.records if r[0] == "error"], wrapper.records
    (data,) = client.conn.sent
    (fields,) = FrameBuffer().feed(data)
    return fields


def capture_ib_async(sv: int, order_id: int, contract: Any, order: Any) -> list[str]:
    client = CapturingIbAsyncClient(sv)
    client.placeOrder(order_id, contract, order)
    (data,) = client.sent
    (fields,) = FrameBuffer().feed(data)
    return fields


def _build(cls: type, **attrs: Any) -> Any:
    return _set(cls(), **attrs)


def _set(obj: Any, **attrs: Any) -> Any:
    for name, value in attrs.items():
        assert hasattr(obj, name), f"{type(obj).__name__} has no {name}"
        setattr(obj, name, value)
    return obj


class Lib:
    """One client library's classes, so one order spec builds the same order in both."""

    def __init__(self, name: str) -> None:
        self.name = name
        api = name == "ibapi"
        self.Contract = ibapi.contract.Contract if api else ib_async.Contract
        self.Order = ibapi.order.Order if api else ib_async.Order
        self.ComboLeg = ibapi.contract.ComboLeg if api else ib_async.ComboLeg
        self.DeltaNeutralContract = (
            ibapi.contract.DeltaNeutralContract if api else ib_async.DeltaNeutralContract
        )
        self.TagValue = ibapi.tag_value.TagValue if api else ib_async.TagValue
        self.capture = capture_ibapi if api else capture_ib_async

    def quantity(self, q: str) -> Any:
        return Decimal(q) if self.name == "ibapi" else float(q)  # ib_async users send floats: "2.0"

    def price_condition(self, price: float, con_id: int, exchange: str) -> Any:
        if self.name == "ibapi":
            return _set(ibapi.order_condition.Create(1), price=price, conId=con_id, exchange=exchange,
                          isMore=True, triggerMethod=2)  # fmt: skip
        return ib_async.PriceCondition(price=price, conId=con_id, exch=exchange, isMore=True, triggerMethod=2)

    def time_condition(self, time: str) -> Any:
        if self.name == "ibapi":
            return _set(ibapi.order_condition.Create(3), time=time, isMore=True).Or()
        return ib_async.TimeCondition(time=time, isMore=True).Or()


LIBS = [Lib("ib_async"), Lib("ibapi")]
FUT = {
    "conId": 654503314, "symbol": "MES", "secType": "FUT", "lastTradeDateOrContractMonth": "20250620",
    "multiplier": "5", "exchange": "CME", "currency": "USD", "localSymbol": "MESM5", "tradingClass": "MES",
}  # fmt: skip

# name -> (contract attrs, order attrs); prices and ids are distinctive so misalignment shows.
ORDER_SPECS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "lmt": (FUT, {"action": "BUY", "totalQuantity": "2", "orderType": "LMT", "lmtPrice": 5012.25,
                  "tif": "DAY", "account": "DU123456", "orderRef": "ibot:lmt", "outsideRth": True}),
    "mkt": (FUT, {"action": "SELL", "totalQuantity": "1", "orderType": "MKT", "tif": "IOC"}),
    "stp": (FUT, {"action": "SELL", "totalQuantity": "3", "orderType": "STP", "auxPrice": 4990.5,
                  "tif": "GTC"}),
    "stp_lmt": (FUT, {"action": "BUY", "totalQuantity": "1", "orderType": "STP LMT", "lmtPrice": 5020.75,
                      "auxPrice": 5020.25, "tif": "DAY", "goodTillDate": "20250131 16:00:00 US/Eastern"}),
    "bracket_child": (FUT, {"action": "SELL", "totalQuantity": "2", "orderType": "LMT", "lmtPrice": 5030.0,
                            "parentId": 41, "transmit": False, "ocaGroup": "", "orderRef": "tp"}),
    "oca": (FUT, {"action": "SELL", "totalQuantity": "2", "orderType": "STP", "auxPrice": 4980.25,
                  "ocaGroup": "oca-41", "ocaType": 1, "parentId": 41, "transmit": True}),
    "trail": (FUT, {"action": "SELL", "totalQuantity": "1", "orderType": "TRAIL", "trailStopPrice": 4995.0,
                    "trailingPercent": 0.5, "goodAfterTime": "20250102 09:30:00 US/Eastern"}),
    "what_if": (FUT, {"action": "BUY", "totalQuantity": "1", "orderType": "MKT", "whatIf": True}),
}  # fmt: skip


def build_order(lib: Lib, name: str) -> tuple[Any, Any]:
    contract_attrs, order_attrs = ORDER_SPECS[name]
    attrs = dict(order_attrs)
    attrs["totalQuantity"] = lib.quantity(attrs["totalQuantity"])
    return _build(lib.Contract, **contract_attrs), _build(lib.Order, **attrs)


def check_place_order(decoded: lo.PlaceOrder, order_id: int, name: str) -> None:
    contract_attrs, order_attrs = ORDER_SPECS[name]
    assert decoded.order_id == decoded.order.order_id == order_id
    for attr, value in contract_attrs.items():
        assert getattr(decoded.contract, _snake(attr)) == value, attr
    assert decoded.contract.strike is None  # "0.0" (ib_async) and "" (ibapi) both mean no strike
    for attr, value in order_attrs.items():
        want = Decimal(value) if attr == "totalQuantity" else value
        assert getattr(decoded.order, _snake(attr)) == want, attr
    unset_prices = {"lmtPrice", "auxPrice", "trailStopPrice", "trailingPercent"} - set(order_attrs)
    for attr in unset_prices:
        assert getattr(decoded.order, _snake(attr)) is None, attr
    assert decoded.order.transmit is order_attrs.get("transmit", True)


def _snake(ib: str) -> str:
    out = "".join("_" + ch.lower() if ch.isupper() else ch for ch in ib)
    return {"rule80_a": "rule80a"}.get(out, out)


@pytest.mark.parametrize("sv", [157, 166, 170, 176, 177, 178])
@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.name)
@pytest.mark.parametrize("name", ORDER_SPECS)
def test_place_order_from_the_real_clients_decodes_exactly(sv: int, lib: Lib, name: str) -> None:
    contract, order = build_order(lib, name)
    fields = lib.capture(sv, 41 if name == "lmt" else 42, contract, order)
    decoded = decode_place_order(fields, sv)  # also proves every field was consumed (no trailing ones)
    check_place_order(decoded, 41 if name == "lmt" else 42, name)


def test_both_clients_send_the_same_layout_with_different_unset_spellings() -> None:
    ia_fields = capture_ib_async(178, 5, *build_order(LIBS[0], "lmt"))
    api_fields = capture_ibapi(178, 5, *build_order(LIBS[1], "lmt"))
    assert len(ia_fields) == len(api_fields)
    assert ia_fields[6] == "0.0" and api_fields[6] == ""  # strike
    assert "1.7976931348623157e+308" in api_fields and "1.7976931348623157e+308" not in ia_fields
    assert decode_place_order(ia_fields, 178).order == dataclasses.replace(
        decode_place_order(api_fields, 178).order, open_close="O", use_price_mgmt_algo=False
    )


@pytest.mark.parametrize("sv", [176, 178])
@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.name)
def test_place_order_with_every_conditional_block_stays_aligned(sv: int, lib: Lib) -> None:
    """BAG legs, leg prices, smart routing params, delta-neutral, scale, hedge, algo, peg-bench, conditions"""
    contract = _build(
        lib.Contract, conId=0, symbol="MES", secType="BAG", exchange="CME", currency="USD",
        comboLegs=[_build(lib.ComboLeg, conId=654503314, ratio=1, action="BUY", exchange="CME"),
                   _build(lib.ComboLeg, conId=654503315, ratio=1, action="SELL", exchange="CME")],
        deltaNeutralContract=_build(lib.DeltaNeutralContract, conId=111, delta=0.5, price=12.25),
    )  # fmt: skip
    order = _build(
        lib.Order, action="BUY", totalQuantity=lib.quantity("1"), orderType="PEG BENCH", lmtPrice=1.25,
        orderComboLegs=[_build(ibapi.order.OrderComboLeg if lib.name == "ibapi" else ib_async.OrderComboLeg,
                               price=0.75)],
        smartComboRoutingParams=[lib.TagValue("NonGuaranteed", "1")],
        deltaNeutralOrderType="LMT", deltaNeutralAuxPrice=0.5, deltaNeutralConId=222,
        deltaNeutralShortSale=True, deltaNeutralDesignatedLocation="DDL",
        scaleInitLevelSize=10, scaleSubsLevelSize=5, scalePriceIncrement=0.25, scalePriceAdjustValue=0.05,
        scaleAutoReset=True, hedgeType="D", hedgeParam="0.5",
        algoStrategy="Adaptive", algoParams=[lib.TagValue("adaptivePriority", "Urgent")],
        referenceContractId=333, isPeggedChangeAmountDecrease=True, peggedChangeAmount=0.2,
        referenceChangeAmount=0.3, referenceExchangeId="CME",
        conditions=[lib.price_condition(5000.5, 654503314, "CME"), lib.time_condition("20250102 10:00:00")],
        conditionsIgnoreRth=True, conditionsCancelOrder=True, cashQty=1000.0, autoCancelParent=True,
    )  # fmt: skip
    p = decode_place_order(lib.capture(sv, 9, contract, order), sv)
    assert [(leg.con_id, leg.action) for leg in p.contract.combo_legs] == [
        (654503314, "BUY"),
        (654503315, "SELL"),
    ]
    assert p.contract.delta_neutral_contract == DeltaNeutralContractView(111, 0.5, 12.25)
    o = p.order
    assert o.order_combo_leg_prices == (0.75,)
    assert o.smart_combo_routing_params == (("NonGuaranteed", "1"),)
    assert (o.delta_neutral_order_type, o.delta_neutral_con_id, o.delta_neutral_short_sale) == (
        "LMT",
        222,
        True,
    )
    assert o.delta_neutral_designated_location == "DDL"
    assert (o.scale_init_level_size, o.scale_price_increment, o.scale_price_adjust_value) == (10, 0.25, 0.05)
    assert o.scale_auto_reset is True
    assert (o.hedge_type, o.hedge_param) == ("D", "0.5")
    assert (o.algo_strategy, o.algo_params) == ("Adaptive", (("adaptivePriority", "Urgent"),))
    assert (o.reference_contract_id, o.pegged_change_amount, o.reference_exchange_id) == (333, 0.2, "CME")
    price, time = o.conditions
    assert (price.cond_type, price.get("price"), price.get("con_id"), price.get("exchange")) == (
        1, 5000.5, 654503314, "CME",
    )  # fmt: skip
    assert price.get("trigger_method") == 2 and price.get("is_more") is True
    assert (time.cond_type, time.conjunction, time.get("time")) == (3, "o", "20250102 10:00:00")
    assert (o.conditions_ignore_rth, o.conditions_cancel_order) == (True, True)
    assert (o.cash_qty, o.auto_cancel_parent) == (1000.0, True)


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.name)
@pytest.mark.parametrize(
    ("order_type", "exchange", "compete", "want"),
    [
        ("PEG MID", "IBKRATS", None,
         {"min_trade_qty": 5, "mid_offset_at_whole": 0.01, "mid_offset_at_half": 0.005}),
        ("PEG BEST", "SMART", 0.02, {"min_compete_size": 3, "compete_against_best_offset": 0.02}),
        ("PEG BEST", "IBKRATS", math.inf,
         {"min_trade_qty": 5, "min_compete_size": 3, "compete_against_best_offset": math.inf,
          "mid_offset_at_whole": 0.01, "mid_offset_at_half": 0.005}),
    ],
)  # fmt: skip
def test_place_order_peg_best_and_mid_tail_follows_the_order_type(
    lib: Lib, order_type: str, exchange: str, compete: float | None, want: dict[str, Any]
) -> None:
    contract = _build(lib.Contract, symbol="AAPL", secType="STK", exchange=exchange, currency="USD")
    attrs: dict[str, Any] = {"action": "BUY", "totalQuantity": lib.quantity("10"), "orderType": order_type,
                             "minTradeQty": 5, "minCompeteSize": 3, "midOffsetAtWhole": 0.01,
                             "midOffsetAtHalf": 0.005}  # fmt: skip
    if compete is not None:
        attrs["competeAgainstBestOffset"] = compete
    p = decode_place_order(lib.capture(178, 3, contract, _build(lib.Order, **attrs)), 178)
    for attr, value in want.items():
        assert getattr(p.order, attr) == value, attr
    for attr in {"min_trade_qty", "min_compete_size", "compete_against_best_offset", "mid_offset_at_whole",
                 "mid_offset_at_half"} - set(want):  # fmt: skip
        assert getattr(p.order, attr) is None, attr


# --- unset spellings and malformed fields ------------------------------------------------------------------

LMT_PRICE, STRIKE, QTY, PARENT_ID, ORDER_TYPE = 19, 6, 17, 28, 18


def lmt_fields() -> list[str]:
    return capture_ib_async(178, 5, *build_order(LIBS[0], "lmt"))


@pytest.mark.parametrize(
    "spelling",
    ["", "1.7976931348623157E308", "1.7976931348623157e+308", "1.7976931348623157e308", "Infinity",
     "Infinite", "infinity", "inf"],
)  # fmt: skip
def test_every_unset_double_spelling_reads_as_unset(spelling: str) -> None:
    fields = lmt_fields()
    fields[LMT_PRICE] = spelling
    assert decode_place_order(fields, 178).order.lmt_price is None


@pytest.mark.parametrize("spelling", ["", "0", "0.0", "1.7976931348623157E308"])
def test_every_unset_strike_spelling_reads_as_no_strike(spelling: str) -> None:
    fields = lmt_fields()
    fields[STRIKE] = spelling
    assert decode_place_order(fields, 178).contract.strike is None


@pytest.mark.parametrize("spelling", ["", "2147483647"])
def test_unset_int_spellings_take_the_views_default(spelling: str) -> None:
    fields = lmt_fields()
    fields[PARENT_ID] = spelling
    assert decode_place_order(fields, 178).order.parent_id == 0


@pytest.mark.parametrize(("text", "want"), [("1", Decimal(1)), ("1.0", Decimal(1)), ("0.5", Decimal("0.5"))])
def test_quantity_is_an_exact_decimal(text: str, want: Decimal) -> None:
    fields = lmt_fields()
    fields[QTY] = text
    assert decode_place_order(fields, 178).order.total_quantity == want


@pytest.mark.parametrize(
    ("index", "text", "field_name"),
    [(LMT_PRICE, "abc", "lmt_price"), (QTY, "one", "total_quantity"), (QTY, "NaN", "total_quantity"),
     (PARENT_ID, "4.5", "parent_id"), (27, "2", "transmit"), (2, "x", "con_id")],
)  # fmt: skip
def test_a_malformed_field_is_a_typed_error_naming_it(index: int, text: str, field_name: str) -> None:
    fields = lmt_fields()
    fields[index] = text
    with pytest.raises(PlaceOrderFieldError) as caught:
        decode_place_order(fields, 178)
    err = caught.value
    assert (err.field_name, err.index, err.order_id) == (field_name, index, 5)
    assert field_name in str(err) and repr(text) in str(err)


def test_a_short_message_names_the_first_missing_field() -> None:
    fields = lmt_fields()[:LMT_PRICE]
    with pytest.raises(PlaceOrderFieldError, match="lmt_price") as caught:
        decode_place_order(fields, 178)
    assert caught.value.index == LMT_PRICE


def test_trailing_fields_are_an_error_not_silently_ignored() -> None:
    with pytest.raises(PlaceOrderFieldError, match="1 unexpected trailing field"):
        decode_place_order([*lmt_fields(), "0"], 178)


def test_a_message_of_the_wrong_version_is_misaligned_and_refused() -> None:
    """176's layout (with faProfile) read as 178 leaves a field over: the decoder must not guess."""
    fields = capture_ib_async(176, 5, *build_order(LIBS[0], "lmt"))
    with pytest.raises(PlaceOrderFieldError):
        decode_place_order(fields, 178)


def test_another_message_id_is_refused() -> None:
    fields = lmt_fields()
    fields[0] = "4"
    with pytest.raises(PlaceOrderFieldError, match="not PLACE_ORDER"):
        decode_place_order(fields, 178)


def test_an_unknown_condition_type_is_refused() -> None:
    contract, order = build_order(LIBS[0], "lmt")
    order.conditions = [ib_async.MarginCondition(percent=30)]
    fields = capture_ib_async(178, 5, contract, order)
    at = next(
        i for i in range(len(fields)) if fields[i : i + 3] == ["1", "4", "a"]
    )  # count 1, type 4 (margin)
    fields[at + 1] = "2"  # no such condition type
    with pytest.raises(PlaceOrderFieldError, match="unknown order condition type 2"):
        decode_place_order(fields, 178)


def test_decoded_order_reencodes_as_an_open_order_both_clients_read() -> None:
    """The session's path: PLACE_ORDER in, the same views (plus ids and state) out as OPEN_ORDER."""
    p = decode_place_order(capture_ibapi(178, 5, *build_order(LIBS[1], "stp_lmt")), 178)
    order = dataclasses.replace(p.order, client_id=4, perm_id=1001)
    view = OpenOrderView(p.contract, order, OrderStateView(status="PreSubmitted"))
    for wrapper in (
        ib_async_decode(encode_open_order(view, 178), 178),
        ibapi_decode(encode_open_order(view, 178), 178),
    ):
        order_id, _, decoded, _ = only(wrapper.records, "openOrder")
        assert (order_id, decoded.orderType, decoded.lmtPrice, decoded.auxPrice) == (
            5,
            "STP LMT",
            5020.75,
            5020.25,
        )
        assert decoded.goodTillDate == "20250131 16:00:00 US/Eastern"


# =========================================================================================================
# CANCEL_ORDER, REQ_EXECUTIONS, REQ_COMPLETED_ORDERS from the real clients
# =========================================================================================================


def capture_ibapi_call(sv: int, call: Callable[[ibapi.client.EClient], None]) -> list[str]:
    wrapper = RecordingEWrapper()
    client = ibapi.client.EClient(wrapper)
    client.serverVersion_ = sv
    client.connState = ibapi.client.EClient.CONNECTED
    client.conn = _CapturingConnection()
    call(client)
    assert not wrapper.records, wrapper.records
    (data,) = client.conn.sent
    (fields,) = FrameBuffer().feed(data)
    return fields


def capture_ib_async_call(sv: int, call: Callable[[IbAsyncClient], None]) -> list[str]:
    client = CapturingIbAsyncClient(sv)
    call(client)
    (data,) = client.sent
    (fields,) = FrameBuffer().feed(data)
    return fields


@pytest.mark.parametrize("sv", [166, 169, 178])
def test_cancel_order_from_both_clients(sv: int) -> None:
    cancel = _build(ibapi.order_cancel.OrderCancel, manualOrderCancelTime="")
    api = decode_cancel_order(capture_ibapi_call(sv, lambda c: c.cancelOrder(17, cancel)), sv)
    ia = decode_cancel_order(capture_ib_async_call(sv, lambda c: c.cancelOrder(17)), sv)
    assert api == ia == lo.CancelOrder(17)


def test_cancel_order_carries_the_manual_cancel_time_from_169() -> None:
    fields = capture_ib_async_call(178, lambda c: c.cancelOrder(17, "20250106 10:00:00"))
    assert decode_cancel_order(fields, 178).manual_order_cancel_time == "20250106 10:00:00"
    with pytest.raises(CancelOrderFieldError, match="trailing"):
        decode_cancel_order(fields, 168)


@pytest.mark.parametrize("sv", [157, 178])
def test_req_executions_filter_from_both_clients(sv: int) -> None:
    attrs: dict[str, Any] = {"clientId": 12, "acctCode": "DU1", "time": "20250106 09:00:00", "symbol": "MES",
                             "secType": "FUT", "exchange": "CME", "side": "BUY"}  # fmt: skip
    want = lo.ExecutionFilter(31, 12, "DU1", "20250106 09:00:00", "MES", "FUT", "CME", "BUY")
    api_filter = _build(ibapi.execution.ExecutionFilter, **attrs)
    ia_filter = ib_async.ExecutionFilter(**attrs)
    assert (
        decode_req_executions(capture_ibapi_call(sv, lambda c: c.reqExecutions(31, api_filter)), sv) == want
    )
    assert (
        decode_req_executions(capture_ib_async_call(sv, lambda c: c.reqExecutions(31, ia_filter)), sv) == want
    )


def test_req_executions_with_an_empty_filter_means_everything() -> None:
    fields = capture_ib_async_call(178, lambda c: c.reqExecutions(2, ib_async.ExecutionFilter()))
    assert decode_req_executions(fields, 178) == lo.ExecutionFilter(2)
    fields[3] = "x"
    with pytest.raises(ReqExecutionsFieldError, match="client_id"):
        decode_req_executions(fields, 178)


@pytest.mark.parametrize("api_only", [True, False])
def test_req_completed_orders_from_both_clients(api_only: bool) -> None:
    assert (
        decode_req_completed_orders(capture_ibapi_call(178, lambda c: c.reqCompletedOrders(api_only)))
        is api_only
    )
    ia = capture_ib_async_call(178, lambda c: c.reqCompletedOrders(api_only))
    assert decode_req_completed_orders(ia) is api_only


# ==========================================================================================================
# The session's fast paths write the same bytes as the declarative layouts
# ==========================================================================================================


@pytest.mark.parametrize("sv", VERSIONS)
@pytest.mark.parametrize("view_name", VIEWS)
def test_encoded_payloads_are_the_bytes_of_the_field_lists(sv: int, view_name: str) -> None:
    view = VIEWS[view_name]()
    assert frame_raw(lo.open_order_payload(view, sv)) == frame(encode_open_order(view, sv))
    assert frame_raw(lo.completed_order_payload(view, sv)) == frame(lo.encode_completed_order(view, sv))
    for ex in (execution_view(), execution_view(contract=view.contract, ev_multiplier=1.5, liquidation=1)):
        assert frame_raw(lo.execution_payload(-1, ex, sv)) == frame(encode_execution_data(-1, ex, sv))
        assert frame_raw(lo.execution_payload(9, ex, sv)) == frame(encode_execution_data(9, ex, sv))


@pytest.mark.parametrize("view_name", VIEWS)
def test_the_order_view_builder_equals_the_dataclass_constructor_and_replace(view_name: str) -> None:
    order = VIEWS[view_name]().order
    values = {f.name: getattr(order, f.name) for f in dataclasses.fields(OrderView)}
    built = lo.ORDER_VIEWS.new(values)
    assert built == order and type(built) is OrderView
    assert lo.ORDER_VIEWS.new({"order_id": 3}) == OrderView(order_id=3)
    changes = {"order_id": 99, "lmt_price": None, "filled_quantity": Decimal(2), "transmit": False}
    assert lo.ORDER_VIEWS.replace(order, changes) == dataclasses.replace(order, **changes)
    with pytest.raises(TypeError, match="no field"):
        lo.ORDER_VIEWS.new({"no_such_field": 1})
    with pytest.raises(TypeError, match="no field"):
        lo.ORDER_VIEWS.replace(order, {"no_such_field": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.order_id = 5  # type: ignore[misc]

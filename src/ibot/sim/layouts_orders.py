"""Order-side message layouts of the TWS protocol, server versions 157..178: PLACE_ORDER in; OPEN_ORDER,
ORDER_STATUS, EXECUTION_DATA, COMMISSION_REPORT, COMPLETED_ORDER and their end markers out.

Pure and declarative: no sockets, no session state. Field orders are the facts the real clients' decoders
(ib_async 2.1.0, IB's ibapi 10.46) expect; each block (delta-neutral, combo legs, scale, hedge, algo,
peg-bench, conditions...) is written once and shared by OPEN_ORDER and COMPLETED_ORDER where the clients
read it alike.
Every version gate is a named constant from `sim/versions.py`.

Conventions of the views: `None` means "unset". Out, an unset double is written 1.7976931348623157E308 and
an unset int 2147483647 (what TWS sends; both clients parse them with float()/int()); an unset Decimal "".
In, every unset spelling real clients send is accepted ("", 2147483647, 1.797...E308 in any case, Infinity).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from operator import attrgetter, call
from typing import Any, Final
from zoneinfo import ZoneInfo

from ibot.sim import versions as v
from ibot.sim.wire import (
    UNSET_DOUBLE,
    UNSET_INTEGER,
    WireError,
    encode_field,
    parse_bool,
    parse_float,
    parse_int,
)

__all__ = [
    "ORDER_VIEWS",
    "CancelOrder",
    "CancelOrderFieldError",
    "ComboLegView",
    "CommissionReportView",
    "ContractView",
    "DeltaNeutralContractView",
    "ExecutionFilter",
    "ExecutionView",
    "LayoutVersionError",
    "OpenOrderView",
    "OrderConditionView",
    "OrderRequestFieldError",
    "OrderStateView",
    "OrderStatusView",
    "OrderView",
    "PlaceOrder",
    "PlaceOrderFieldError",
    "ReqCompletedOrdersFieldError",
    "ReqExecutionsFieldError",
    "completed_order_payload",
    "decode_cancel_order",
    "decode_place_order",
    "decode_req_completed_orders",
    "decode_req_executions",
    "encode_commission_report",
    "encode_completed_order",
    "encode_completed_orders_end",
    "encode_execution_data",
    "encode_execution_data_end",
    "encode_open_order",
    "encode_open_order_end",
    "encode_order_status",
    "execution_payload",
    "ib_execution_time",
    "open_order_payload",
]

# --- message ids (checked against ibapi.message IN/OUT in the tests) ------------------------------------
# Incoming (client -> server).
_IN_PLACE_ORDER: Final = 3
_IN_CANCEL_ORDER: Final = 4
_IN_REQ_OPEN_ORDERS: Final = 5
_IN_REQ_EXECUTIONS: Final = 7
_IN_REQ_AUTO_OPEN_ORDERS: Final = 15
_IN_REQ_ALL_OPEN_ORDERS: Final = 16
_IN_REQ_GLOBAL_CANCEL: Final = 58
_IN_REQ_COMPLETED_ORDERS: Final = 99
# Outgoing (server -> client).
_OUT_ORDER_STATUS: Final = 3
_OUT_OPEN_ORDER: Final = 5
_OUT_EXECUTION_DATA: Final = 11
_OUT_OPEN_ORDER_END: Final = 53
_OUT_EXECUTION_DATA_END: Final = 55
_OUT_COMMISSION_REPORT: Final = 59
_OUT_COMPLETED_ORDER: Final = 101
_OUT_COMPLETED_ORDERS_END: Final = 102

# Fixed "message version" fields the clients skip (only the small messages still carry one below 201).
_OPEN_ORDER_END_VERSION: Final = 1
_EXECUTION_DATA_END_VERSION: Final = 1
_COMMISSION_REPORT_VERSION: Final = 1

_PEG_BENCH_TYPES: Final = frozenset({"PEG BENCH", "PEGBENCH"})
_PEG_BEST_TYPES: Final = frozenset({"PEG BEST", "PEGBEST"})
_PEG_MID_TYPES: Final = frozenset({"PEG MID", "PEGMID"})
_IBKRATS: Final = "IBKRATS"  # PLACE_ORDER carries minTradeQty only for this exchange
_INFINITY_TEXT: Final = "Infinity"  # both clients parse it to inf: "compete against best offset up to mid"
_INFINITY_SPELLINGS: Final = frozenset({"infinity", "infinite", "inf"})
_UNSET_DECIMAL_SPELLINGS: Final = frozenset(
    {"", "2147483647", "9223372036854775807", "-9223372036854775808", "1.7976931348623157e+308",
     "1.7976931348623157e308", "infinity", "infinite", "inf"}
)  # fmt: skip


class LayoutVersionError(ValueError):
    """A server version outside the range these layouts implement."""


class OrderRequestFieldError(WireError):
    """A field of an order-side request that is missing, malformed or unexpected; names it and its position.

    The session answers it with IB error 320 ("error reading request"), for the order id when known.
    """

    message = "request"

    def __init__(self, field_name: str, index: int, problem: str, order_id: int | None = None) -> None:
        where = f"{self.message} field #{index} {field_name!r}"
        if order_id is not None:
            where += f" (order {order_id})"
        super().__init__(f"{where}: {problem}")
        self.field_name = field_name
        self.index = index
        self.order_id = order_id


class PlaceOrderFieldError(OrderRequestFieldError):
    message = "PLACE_ORDER"


class CancelOrderFieldError(OrderRequestFieldError):
    message = "CANCEL_ORDER"


class ReqExecutionsFieldError(OrderRequestFieldError):
    message = "REQ_EXECUTIONS"


class ReqCompletedOrdersFieldError(OrderRequestFieldError):
    message = "REQ_COMPLETED_ORDERS"


def _check_version(server_version: int) -> None:
    if not v.MIN_CLIENT_VERSION <= server_version <= v.MAX_CLIENT_VERSION:
        raise LayoutVersionError(
            f"server version {server_version} is outside the order layouts' range "
            f"{v.MIN_CLIENT_VERSION}..{v.MAX_CLIENT_VERSION}"
        )


# ==========================================================================================================
# Views: what the session fills in (and what decode_place_order returns)
# ==========================================================================================================


@dataclass(frozen=True, slots=True)
class ComboLegView:
    con_id: int
    ratio: int
    action: str
    exchange: str
    open_close: int = 0
    short_sale_slot: int = 0
    designated_location: str = ""
    exempt_code: int = -1


@dataclass(frozen=True, slots=True)
class DeltaNeutralContractView:
    con_id: int
    delta: float
    price: float


@dataclass(frozen=True, slots=True)
class ContractView:
    """The contract as PLACE_ORDER carries it; OPEN_ORDER / EXECUTION_DATA echo it without primaryExchange."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date_or_contract_month: str = ""
    strike: float | None = None  # unset is written 0 (what TWS sends for futures)
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    sec_id_type: str = ""
    sec_id: str = ""
    combo_legs_descrip: str = ""
    combo_legs: tuple[ComboLegView, ...] = ()
    delta_neutral_contract: DeltaNeutralContractView | None = None


# Fields of each order-condition type after its type and conjunction, with their kinds (both clients agree).
_CONDITION_LAYOUTS: Final[dict[int, tuple[tuple[str, str], ...]]] = {
    1: (("is_more", "bool"), ("price", "float"), ("con_id", "int"), ("exchange", "str"),
        ("trigger_method", "int")),
    3: (("is_more", "bool"), ("time", "str")),
    4: (("is_more", "bool"), ("percent", "int")),
    5: (("sec_type", "str"), ("exchange", "str"), ("symbol", "str")),
    6: (("is_more", "bool"), ("volume", "int"), ("con_id", "int"), ("exchange", "str")),
    7: (("is_more", "bool"), ("change_percent", "float"), ("con_id", "int"), ("exchange", "str")),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class OrderConditionView:
    """One order condition: 1 price, 3 time, 4 margin, 5 execution, 6 volume, 7 percent change.

    `values` follow `_CONDITION_LAYOUTS[cond_type]`, e.g. price: is_more, price, con_id, exchange,
    trigger_method.
    """

    cond_type: int
    values: tuple[Any, ...]
    conjunction: str = "a"  # "a" and, "o" or

    def __post_init__(self) -> None:
        layout = _CONDITION_LAYOUTS.get(self.cond_type)
        if layout is None:
            raise ValueError(
                f"order condition type {self.cond_type} is not one of {sorted(_CONDITION_LAYOUTS)}"
            )
        if len(self.values) != len(layout):
            raise ValueError(
                f"order condition type {self.cond_type} takes {len(layout)} values "
                f"({', '.join(n for n, _ in layout)}), got {len(self.values)}"
            )

    def get(self, name: str) -> Any:
        for (n, _), value in zip(_CONDITION_LAYOUTS[self.cond_type], self.values, strict=True):
            if n == name:
                return value
        raise KeyError(f"order condition type {self.cond_type} has no value {name!r}")


@dataclass(frozen=True)
class OrderView:
    """An order's attributes, named after IB's Order; None = unset. Only a few matter to the simulator.

    No __slots__: with ~150 fields, the frozen __init__ (one object.__setattr__ each) is slow, so the hot
    paths build views through `ORDER_VIEWS`, which fills the instance dict in one go."""

    order_id: int = 0
    client_id: int = 0
    perm_id: int = 0
    action: str = ""
    total_quantity: Decimal | None = None
    order_type: str = ""
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = ""
    oca_group: str = ""
    oca_type: int = 0
    account: str = ""
    open_close: str = ""
    origin: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    block_order: bool = False
    sweep_to_fill: bool = False
    display_size: int | None = None
    trigger_method: int = 0
    outside_rth: bool = False
    hidden: bool = False
    discretionary_amt: float = 0.0
    good_after_time: str = ""
    good_till_date: str = ""
    fa_group: str = ""
    fa_method: str = ""
    fa_percentage: str = ""
    fa_profile: str = ""
    model_code: str = ""
    short_sale_slot: int = 0
    designated_location: str = ""
    exempt_code: int = -1
    rule80a: str = ""
    settling_firm: str = ""
    all_or_none: bool = False
    min_qty: int | None = None
    percent_offset: float | None = None
    e_trade_only: bool = False
    firm_quote_only: bool = False
    nbbo_price_cap: float | None = None
    auction_strategy: int = 0
    starting_price: float | None = None
    stock_ref_price: float | None = None
    delta: float | None = None
    stock_range_lower: float | None = None
    stock_range_upper: float | None = None
    override_percentage_constraints: bool = False
    volatility: float | None = None
    volatility_type: int | None = None
    delta_neutral_order_type: str = ""
    delta_neutral_aux_price: float | None = None
    delta_neutral_con_id: int = 0
    delta_neutral_settling_firm: str = ""
    delta_neutral_clearing_account: str = ""
    delta_neutral_clearing_intent: str = ""
    delta_neutral_open_close: str = ""
    delta_neutral_short_sale: bool = False
    delta_neutral_short_sale_slot: int = 0
    delta_neutral_designated_location: str = ""
    continuous_update: bool = False
    reference_price_type: int | None = None
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    basis_points: float | None = None
    basis_points_type: int | None = None
    order_combo_leg_prices: tuple[float | None, ...] = ()
    smart_combo_routing_params: tuple[tuple[str, str], ...] = ()
    scale_init_level_size: int | None = None
    scale_subs_level_size: int | None = None
    scale_price_increment: float | None = None
    scale_price_adjust_value: float | None = None
    scale_price_adjust_interval: int | None = None
    scale_profit_offset: float | None = None
    scale_auto_reset: bool = False
    scale_init_position: int | None = None
    scale_init_fill_qty: int | None = None
    scale_random_percent: bool = False
    scale_table: str = ""
    active_start_time: str = ""
    active_stop_time: str = ""
    hedge_type: str = ""
    hedge_param: str = ""
    opt_out_smart_routing: bool = False
    clearing_account: str = ""
    clearing_intent: str = ""
    not_held: bool = False
    algo_strategy: str = ""
    algo_params: tuple[tuple[str, str], ...] = ()
    algo_id: str = ""
    what_if: bool = False
    order_misc_options: str = ""
    solicited: bool = False
    randomize_size: bool = False
    randomize_price: bool = False
    reference_contract_id: int = 0
    is_pegged_change_amount_decrease: bool = False
    pegged_change_amount: float = 0.0
    reference_change_amount: float = 0.0
    reference_exchange_id: str = ""
    conditions: tuple[OrderConditionView, ...] = ()
    conditions_ignore_rth: bool = False
    conditions_cancel_order: bool = False
    adjusted_order_type: str = ""
    trigger_price: float | None = None
    lmt_price_offset: float | None = None
    adjusted_stop_price: float | None = None
    adjusted_stop_limit_price: float | None = None
    adjusted_trailing_amount: float | None = None
    adjustable_trailing_unit: int = 0
    ext_operator: str = ""
    soft_dollar_tier_name: str = ""
    soft_dollar_tier_value: str = ""
    soft_dollar_tier_display_name: str = ""
    cash_qty: float | None = None
    mifid2_decision_maker: str = ""
    mifid2_decision_algo: str = ""
    mifid2_execution_trader: str = ""
    mifid2_execution_algo: str = ""
    dont_use_auto_price_for_hedge: bool = False
    is_oms_container: bool = False
    discretionary_up_to_limit_price: bool = False
    use_price_mgmt_algo: bool | None = None
    duration: int | None = None
    post_to_ats: int | None = None
    auto_cancel_parent: bool = False
    advanced_error_override: str = ""
    manual_order_time: str = ""
    min_trade_qty: int | None = None
    min_compete_size: int | None = None
    compete_against_best_offset: float | None = None  # math.inf = "up to mid"
    mid_offset_at_whole: float | None = None
    mid_offset_at_half: float | None = None
    # COMPLETED_ORDER only
    auto_cancel_date: str = ""
    filled_quantity: Decimal | None = None
    ref_futures_con_id: int = 0
    shareholder: str = ""
    imbalance_only: bool = False
    route_marketable_to_bbo: bool = False
    parent_perm_id: int = 0


@dataclass(frozen=True, slots=True)
class OrderStateView:
    """OPEN_ORDER's order state (margins and commission matter for what-if answers) and COMPLETED_ORDER's."""

    status: str = ""
    init_margin_before: float | None = None
    maint_margin_before: float | None = None
    equity_with_loan_before: float | None = None
    init_margin_change: float | None = None
    maint_margin_change: float | None = None
    equity_with_loan_change: float | None = None
    init_margin_after: float | None = None
    maint_margin_after: float | None = None
    equity_with_loan_after: float | None = None
    commission: float | Decimal | None = None
    min_commission: float | Decimal | None = None
    max_commission: float | Decimal | None = None
    commission_currency: str = ""
    warning_text: str = ""
    completed_time: str = ""
    completed_status: str = ""


@dataclass(frozen=True, slots=True)
class OpenOrderView:
    """Everything OPEN_ORDER and COMPLETED_ORDER describe."""

    contract: ContractView
    order: OrderView
    state: OrderStateView


class _Builder:
    """Builds a big frozen view (OrderView: ~150 fields) the way `copy.copy` does, filling the instance dict
    at once instead of running the frozen __init__'s object.__setattr__ per field. Same result as
    `cls(**values)` / `dataclasses.replace` (checked in the tests); only for views with an instance dict,
    plain defaults and no __post_init__."""

    __slots__ = ("_cls", "_defaults")

    def __init__(self, cls: type) -> None:
        fs = fields(cls)
        if (
            any(f.default is MISSING for f in fs)
            or hasattr(cls, "__post_init__")
            or hasattr(cls, "__slots__")
        ):
            raise TypeError(f"{cls.__name__}: only views with a dict, plain defaults and no __post_init__")
        self._cls = cls
        self._defaults = {f.name: f.default for f in fs}

    def new(self, values: dict[str, Any]) -> Any:
        """`cls(**values)`."""
        return self._make(self._defaults, values)

    def replace(self, view: Any, changes: dict[str, Any]) -> Any:
        """`dataclasses.replace(view, **changes)`."""
        return self._make(view.__dict__, changes)

    def _make(self, base: dict[str, Any], values: dict[str, Any]) -> Any:
        """An instance whose fields are `base` updated with `values` (TypeError naming unknown fields)."""
        if not values.keys() <= self._defaults.keys():
            unknown = sorted(set(values) - self._defaults.keys())
            raise TypeError(f"{self._cls.__name__} has no field(s) {', '.join(unknown)}")
        obj: Any = object.__new__(self._cls)
        obj.__dict__.update(base)
        obj.__dict__.update(values)
        return obj


ORDER_VIEWS: Final = _Builder(OrderView)


@dataclass(frozen=True, slots=True)
class OrderStatusView:
    order_id: int
    status: str
    filled: Decimal
    remaining: Decimal
    avg_fill_price: float
    perm_id: int
    parent_id: int
    last_fill_price: float
    client_id: int
    why_held: str = ""
    mkt_cap_price: float = 0.0


@dataclass(frozen=True, slots=True)
class ExecutionView:
    """One fill as EXECUTION_DATA reports it; `time` as `ib_execution_time` writes it."""

    contract: ContractView
    order_id: int
    exec_id: str
    time: str
    acct_number: str
    exchange: str
    side: str  # BOT or SLD
    shares: Decimal
    price: float
    perm_id: int
    client_id: int
    cum_qty: Decimal
    avg_price: float
    liquidation: int = 0
    order_ref: str = ""
    ev_rule: str = ""
    ev_multiplier: float | None = None
    model_code: str = ""
    last_liquidity: int = 0  # 1 added, 2 removed, 3 routed out
    pending_price_revision: bool = False


@dataclass(frozen=True, slots=True)
class CommissionReportView:
    exec_id: str
    commission: Decimal | float
    currency: str
    realized_pnl: Decimal | float | None = None  # unset until a fill closes a position
    yield_: float | None = None
    yield_redemption_date: int | None = None  # YYYYMMDD


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """A decoded PLACE_ORDER: everything the client sent, in the same views OPEN_ORDER is encoded from."""

    order_id: int
    contract: ContractView
    order: OrderView


def ib_execution_time(ts_ns: int, tz: str = "UTC") -> str:
    """An execution time as TWS writes it, "YYYYMMDD HH:MM:SS <tz name>", from int nanoseconds UTC."""
    return _execution_time(ts_ns // 1_000_000_000, tz)


@functools.lru_cache(maxsize=64)  # the fills of one market second share it
def _execution_time(seconds: int, tz: str) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC).astimezone(ZoneInfo(tz))
    return f"{moment:%Y%m%d %H:%M:%S} {tz}"


# ==========================================================================================================
# Outgoing: declarative field lists
# ==========================================================================================================

# Field kinds: how a value (None = unset) is written.
_STR, _INT, _DBL, _BOOL, _DEC, _OPT_BOOL, _STRIKE, _OFFSET = (
    "str",
    "int",
    "dbl",
    "bool",
    "dec",
    "obool",
    "k",
    "off",
)


def _render_str(value: Any) -> Any:
    return "" if value is None else str(value)


def _render_int(value: Any) -> Any:
    return UNSET_INTEGER if value is None else int(value)


def _render_dbl(value: Any) -> Any:
    return UNSET_DOUBLE if value is None else value  # Decimal stays exact; encode_field writes it plainly


def _render_dec(value: Any) -> Any:
    if value is None or type(value) is Decimal:
        return value
    return Decimal(value)


def _render_opt_bool(value: Any) -> Any:
    return None if value is None else bool(value)


def _render_strike(value: Any) -> Any:
    return 0.0 if value is None else float(value)


def _render_offset(value: Any) -> Any:
    """competeAgainstBestOffset: inf is a value ("up to mid"), not unset."""
    if value is not None and math.isinf(value):
        return _INFINITY_TEXT
    return UNSET_DOUBLE if value is None else value


_RENDERERS: Final[dict[str, Callable[[Any], Any]]] = {
    _STR: _render_str, _INT: _render_int, _DBL: _render_dbl, _BOOL: bool, _DEC: _render_dec,
    _OPT_BOOL: _render_opt_bool, _STRIKE: _render_strike, _OFFSET: _render_offset,
}  # fmt: skip


def _render(kind: str, value: Any) -> Any:
    """A view value as its field writes it (None = unset: the unset int / double, "" for text)."""
    try:
        render = _RENDERERS[kind]
    except KeyError:
        raise AssertionError(f"unknown field kind {kind!r}") from None
    return render(value)


@dataclass(frozen=True, slots=True)
class _Field:
    """Attribute `attr` of `source` ("contract", "order" or "state"), present when since <= sv < until."""

    source: str
    attr: str
    kind: str = _STR
    since: int = 0
    until: int | None = None


@dataclass(frozen=True, slots=True)
class _Const:
    """A field with a fixed value (a deprecated one the clients skip)."""

    value: Any


@dataclass(frozen=True, slots=True)
class _Block:
    """A conditional or repeated group whose shape depends on values (legs, algo params, conditions...)."""

    emit: Callable[[OpenOrderView, int], list[Any]]


_Item = _Field | _Const | _Block


def _c(attr: str, kind: str = _STR, since: int = 0, until: int | None = None) -> _Field:
    return _Field("contract", attr, kind, since, until)


def _o(attr: str, kind: str = _STR, since: int = 0, until: int | None = None) -> _Field:
    return _Field("order", attr, kind, since, until)


def _s(attr: str, kind: str = _STR) -> _Field:
    return _Field("state", attr, kind)


_UNSET_INTEGER_FIELD: Final = encode_field(UNSET_INTEGER)
_UNSET_DOUBLE_FIELD: Final = encode_field(UNSET_DOUBLE)


def _encode_str(value: Any) -> bytes:
    if value is None or value == "":
        return b"\0"
    return encode_field(value if type(value) is str else str(value))


def _encode_int(value: Any) -> bytes:
    return _UNSET_INTEGER_FIELD if value is None else b"%d\0" % int(value)


def _encode_dbl(value: Any) -> bytes:
    return _UNSET_DOUBLE_FIELD if value is None else encode_field(value)


def _encode_bool(value: Any) -> bytes:
    return b"1\0" if value else b"0\0"


class _Memo(dict[Any, bytes]):
    """Encoded fields of one field kind by value, filled on first use: a lookup in C for the values seen
    before (most of an order's fields are "", unset or the same few words in every message). Only for
    kinds whose bytes depend on the value's equality class alone: str fields (str or None values), ints
    and booleans (1, 1.0 and True write alike); not doubles or decimals (1 vs 1.0, -0.0 vs 0.0)."""

    __slots__ = ("_encode",)

    def __init__(self, encode: Callable[[Any], bytes]) -> None:
        super().__init__()
        self._encode = encode

    def __missing__(self, value: Any) -> bytes:
        encoded = self._encode(value)
        if len(self) < 4096:
            self[value] = encoded
        return encoded


_MEMOS: Final = {
    _STR: _Memo(_encode_str), _INT: _Memo(_encode_int), _BOOL: _Memo(_encode_bool),
    _OPT_BOOL: _Memo(lambda value: encode_field(_render_opt_bool(value))),
}  # fmt: skip


def _encoder(kind: str) -> Callable[[Any], bytes]:
    """A field kind's value straight to its bytes: `encode_field(_render(kind, value))` without the detour."""
    memo = _MEMOS.get(kind)
    if memo is not None:
        return memo.__getitem__
    if kind == _DBL:
        return _encode_dbl
    render = _RENDERERS[kind]
    return lambda value: encode_field(render(value))


# A layout compiled for one server version, for one output (values, or encoded fields). Steps:
# (_RUN, getter, converters): consecutive fields, the getter reads their values as one tuple (C-level
# attrgetter), each converter (renderer or encoder, by field kind) writes one; (_CONST, value or bytes, None);
# (_BLOCK, its emit function, None). Version gates and field kinds are resolved once, not per message.
_RUN, _CONST, _BLOCK = 0, 1, 2
_Step = tuple[int, Any, Any]
_COMPILED: dict[tuple[int, int, bool], tuple[Sequence[_Item], tuple[_Step, ...]]] = {}


def _run_getter(paths: list[str]) -> Callable[[OpenOrderView], tuple[Any, ...]]:
    get = attrgetter(*paths)
    if len(paths) > 1:
        return get
    return lambda view: (get(view),)


def _compile(layout: Sequence[_Item], server_version: int, encoded: bool) -> tuple[_Step, ...]:
    key = (id(layout), server_version, encoded)
    hit = _COMPILED.get(key)
    if hit is not None and hit[0] is layout:
        return hit[1]
    steps: list[_Step] = []
    paths: list[str] = []
    converters: list[Callable[[Any], Any]] = []

    def close_run() -> None:
        if paths:
            steps.append((_RUN, _run_getter(paths[:]), tuple(converters)))
            paths.clear()
            converters.clear()

    for item in layout:
        if isinstance(item, _Field):
            if server_version < item.since or (item.until is not None and server_version >= item.until):
                continue
            paths.append(f"{item.source}.{item.attr}")
            converters.append(_encoder(item.kind) if encoded else _RENDERERS[item.kind])
            continue
        close_run()
        if isinstance(item, _Const):
            steps.append((_CONST, encode_field(item.value) if encoded else item.value, None))
        else:
            steps.append((_BLOCK, item.emit, None))
    close_run()
    compiled = tuple(steps)
    _COMPILED[key] = (layout, compiled)
    return compiled


def _emit(
    layout: Sequence[_Item], view: OpenOrderView, server_version: int, encoded: bool = False
) -> list[Any]:
    """The field values of `layout` for `view`; `encoded`: each as the bytes `wire.frame` would write."""
    out: list[Any] = []
    for kind, what, converters in _compile(layout, server_version, encoded):
        if kind == _RUN:
            out += map(call, converters, what(view))
        elif kind == _CONST:
            out.append(what)
        elif encoded:
            out += map(encode_field, what(view, server_version))
        else:
            out += what(view, server_version)
    return out


def _emit_bytes(layout: Sequence[_Item], view: OpenOrderView, server_version: int) -> bytes:
    """The encoded fields of `_emit(layout, view, server_version)`: the bytes `wire.frame` would write."""
    return b"".join(_emit(layout, view, server_version, encoded=True))


# --- blocks shared by OPEN_ORDER and COMPLETED_ORDER -----------------------------------------------------


def _combo_legs(view: OpenOrderView, _sv: int) -> list[Any]:
    """Contract legs (8 fields each), order leg prices, smart combo routing params: a count, then items."""
    legs = view.contract.combo_legs
    out: list[Any] = [len(legs)]
    for leg in legs:
        out += [
            leg.con_id,
            leg.ratio,
            leg.action,
            leg.exchange,
            leg.open_close,
            leg.short_sale_slot,
            leg.designated_location,
            leg.exempt_code,
        ]
    prices = view.order.order_combo_leg_prices
    out.append(len(prices))
    out += [_render(_DBL, p) for p in prices]
    out += _tag_values(view.order.smart_combo_routing_params)
    return out


def _tag_values(pairs: tuple[tuple[str, str], ...]) -> list[Any]:
    out: list[Any] = [len(pairs)]
    for tag, value in pairs:
        out += [tag, value]
    return out


def _scale_present(increment: float | None) -> bool:
    return increment is not None and 0 < increment < UNSET_DOUBLE


def _scale(view: OpenOrderView, _sv: int) -> list[Any]:
    """Scale order: 2 level sizes and the increment; 7 more only when the increment is set and positive."""
    o = view.order
    out: list[Any] = [
        _render(_INT, o.scale_init_level_size),
        _render(_INT, o.scale_subs_level_size),
        _render(_DBL, o.scale_price_increment),
    ]
    if _scale_present(o.scale_price_increment):
        out += [
            _render(_DBL, o.scale_price_adjust_value),
            _render(_INT, o.scale_price_adjust_interval),
            _render(_DBL, o.scale_profit_offset),
            o.scale_auto_reset,
            _render(_INT, o.scale_init_position),
            _render(_INT, o.scale_init_fill_qty),
            o.scale_random_percent,
        ]
    return out


def _hedge(view: OpenOrderView, _sv: int) -> list[Any]:
    o = view.order
    return [o.hedge_type, o.hedge_param] if o.hedge_type else [""]


def _delta_neutral_contract(view: OpenOrderView, _sv: int) -> list[Any]:
    dnc = view.contract.delta_neutral_contract
    return [True, dnc.con_id, dnc.delta, dnc.price] if dnc is not None else [False]


def _algo(view: OpenOrderView, _sv: int) -> list[Any]:
    """Algo strategy; its params (a count then tag/value pairs) only when a strategy is named."""
    o = view.order
    if not o.algo_strategy:
        return [""]
    return [o.algo_strategy, *_tag_values(o.algo_params)]


def _peg_bench(view: OpenOrderView, _sv: int) -> list[Any]:
    o = view.order
    if o.order_type not in _PEG_BENCH_TYPES:
        return []
    return [
        o.reference_contract_id,
        o.is_pegged_change_amount_decrease,
        o.pegged_change_amount,
        o.reference_change_amount,
        o.reference_exchange_id,
    ]


def _condition_fields(cond: OrderConditionView) -> list[Any]:
    out: list[Any] = [cond.cond_type, cond.conjunction]
    for (_, kind), value in zip(_CONDITION_LAYOUTS[cond.cond_type], cond.values, strict=True):
        out.append(_render({"bool": _BOOL, "float": _DBL, "int": _INT, "str": _STR}[kind], value))
    return out


def _conditions(view: OpenOrderView, _sv: int) -> list[Any]:
    """A count, each condition (type, conjunction, its fields), then ignoreRth/cancelOrder when any."""
    o = view.order
    out: list[Any] = [len(o.conditions)]
    if o.conditions:
        for cond in o.conditions:
            out += _condition_fields(cond)
        out += [o.conditions_ignore_rth, o.conditions_cancel_order]
    return out


def _delta_neutral_order(full: bool) -> Callable[[OpenOrderView, int], list[Any]]:
    """Delta-neutral order attributes, only with a delta-neutral order type (OPEN_ORDER 8, COMPLETED 4)."""

    def block(view: OpenOrderView, _sv: int) -> list[Any]:
        o = view.order
        if not o.delta_neutral_order_type:
            return []
        head: list[Any] = [o.delta_neutral_con_id]
        if full:
            head += [
                o.delta_neutral_settling_firm,
                o.delta_neutral_clearing_account,
                o.delta_neutral_clearing_intent,
                o.delta_neutral_open_close,
            ]
        return [
            *head,
            o.delta_neutral_short_sale,
            o.delta_neutral_short_sale_slot,
            o.delta_neutral_designated_location,
        ]

    return block


_CONTRACT: Final[tuple[_Item, ...]] = (
    _c("con_id", _INT), _c("symbol"), _c("sec_type"), _c("last_trade_date_or_contract_month"),
    _c("strike", _STRIKE), _c("right"), _c("multiplier"), _c("exchange"), _c("currency"), _c("local_symbol"),
    _c("trading_class"),
)  # fmt: skip
_ORDER_HEAD: Final[tuple[_Item, ...]] = (
    _o("action"), _o("total_quantity", _DEC), _o("order_type"), _o("lmt_price", _DBL), _o("aux_price", _DBL),
    _o("tif"), _o("oca_group"), _o("account"), _o("open_close"), _o("origin", _INT), _o("order_ref"),
)  # fmt: skip
_FA: Final[tuple[_Item, ...]] = (
    _o("fa_group"), _o("fa_method"), _o("fa_percentage"),
    _o("fa_profile", until=v.MIN_SERVER_VER_FA_PROFILE_DESUPPORT),
    _o("model_code"), _o("good_till_date"), _o("rule80a"), _o("percent_offset", _DBL), _o("settling_firm"),
    _o("short_sale_slot", _INT), _o("designated_location"), _o("exempt_code", _INT),
)  # fmt: skip
_BOX_AND_DISPLAY: Final[tuple[_Item, ...]] = (
    _o("starting_price", _DBL), _o("stock_ref_price", _DBL), _o("delta", _DBL), _o("stock_range_lower", _DBL),
    _o("stock_range_upper", _DBL), _o("display_size", _INT),
)  # fmt: skip
_VOLATILITY: Final[tuple[_Item, ...]] = (
    _o("trigger_method", _INT), _o("volatility", _DBL), _o("volatility_type", _INT),
    _o("delta_neutral_order_type"), _o("delta_neutral_aux_price", _DBL),
)  # fmt: skip
_PEG_BEST_MID: Final[tuple[_Item, ...]] = tuple(
    _o(name, kind, since=v.MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS)
    for name, kind in (("min_trade_qty", _INT), ("min_compete_size", _INT),
                       ("compete_against_best_offset", _OFFSET), ("mid_offset_at_whole", _DBL),
                       ("mid_offset_at_half", _DBL))
)  # fmt: skip

OPEN_ORDER_LAYOUT: Final[tuple[_Item, ...]] = (
    _Const(_OUT_OPEN_ORDER),
    _o("order_id", _INT),
    *_CONTRACT,
    *_ORDER_HEAD,
    _o("client_id", _INT), _o("perm_id", _INT), _o("outside_rth", _BOOL), _o("hidden", _BOOL),
    _o("discretionary_amt", _DBL), _o("good_after_time"),
    _Const(""),  # sharesAllocation, deprecated
    *_FA,
    _o("auction_strategy", _INT),
    *_BOX_AND_DISPLAY,
    _o("block_order", _BOOL), _o("sweep_to_fill", _BOOL), _o("all_or_none", _BOOL), _o("min_qty", _INT),
    _o("oca_type", _INT), _o("e_trade_only", _BOOL), _o("firm_quote_only", _BOOL), _o("nbbo_price_cap", _DBL),
    _o("parent_id", _INT),
    *_VOLATILITY,
    _Block(_delta_neutral_order(full=True)),
    _o("continuous_update", _BOOL), _o("reference_price_type", _INT), _o("trail_stop_price", _DBL),
    _o("trailing_percent", _DBL), _o("basis_points", _DBL), _o("basis_points_type", _INT),
    _c("combo_legs_descrip"),
    _Block(_combo_legs),
    _Block(_scale),
    _Block(_hedge),
    _o("opt_out_smart_routing", _BOOL),
    _o("clearing_account"), _o("clearing_intent"), _o("not_held", _BOOL),
    _Block(_delta_neutral_contract),
    _Block(_algo),
    _o("solicited", _BOOL), _o("what_if", _BOOL),
    _s("status"),
    _s("init_margin_before", _DBL), _s("maint_margin_before", _DBL), _s("equity_with_loan_before", _DBL),
    _s("init_margin_change", _DBL), _s("maint_margin_change", _DBL), _s("equity_with_loan_change", _DBL),
    _s("init_margin_after", _DBL), _s("maint_margin_after", _DBL), _s("equity_with_loan_after", _DBL),
    _s("commission", _DBL), _s("min_commission", _DBL), _s("max_commission", _DBL),
    _s("commission_currency"), _s("warning_text"),
    _o("randomize_size", _BOOL), _o("randomize_price", _BOOL),
    _Block(_peg_bench),
    _Block(_conditions),
    _o("adjusted_order_type"), _o("trigger_price", _DBL), _o("trail_stop_price", _DBL),
    _o("lmt_price_offset", _DBL), _o("adjusted_stop_price", _DBL), _o("adjusted_stop_limit_price", _DBL),
    _o("adjusted_trailing_amount", _DBL), _o("adjustable_trailing_unit", _INT),
    _o("soft_dollar_tier_name"), _o("soft_dollar_tier_value"), _o("soft_dollar_tier_display_name"),
    _o("cash_qty", _DBL), _o("dont_use_auto_price_for_hedge", _BOOL), _o("is_oms_container", _BOOL),
    _o("discretionary_up_to_limit_price", _BOOL), _o("use_price_mgmt_algo", _OPT_BOOL),
    _o("duration", _INT, since=v.MIN_SERVER_VER_DURATION),
    _o("post_to_ats", _INT, since=v.MIN_SERVER_VER_POST_TO_ATS),
    _o("auto_cancel_parent", _BOOL, since=v.MIN_SERVER_VER_AUTO_CANCEL_PARENT),
    *_PEG_BEST_MID,
)  # fmt: skip

COMPLETED_ORDER_LAYOUT: Final[tuple[_Item, ...]] = (
    _Const(_OUT_COMPLETED_ORDER),
    *_CONTRACT,
    *_ORDER_HEAD,
    _o("perm_id", _INT), _o("outside_rth", _BOOL), _o("hidden", _BOOL), _o("discretionary_amt", _DBL),
    _o("good_after_time"),
    *_FA,
    *_BOX_AND_DISPLAY,
    _o("sweep_to_fill", _BOOL), _o("all_or_none", _BOOL), _o("min_qty", _INT), _o("oca_type", _INT),
    *_VOLATILITY,
    _Block(_delta_neutral_order(full=False)),
    _o("continuous_update", _BOOL), _o("reference_price_type", _INT), _o("trail_stop_price", _DBL),
    _o("trailing_percent", _DBL),
    _c("combo_legs_descrip"),
    _Block(_combo_legs),
    _Block(_scale),
    _Block(_hedge),
    _o("clearing_account"), _o("clearing_intent"), _o("not_held", _BOOL),
    _Block(_delta_neutral_contract),
    _Block(_algo),
    _o("solicited", _BOOL),
    _s("status"),
    _o("randomize_size", _BOOL), _o("randomize_price", _BOOL),
    _Block(_peg_bench),
    _Block(_conditions),
    _o("trail_stop_price", _DBL), _o("lmt_price_offset", _DBL), _o("cash_qty", _DBL),
    _o("dont_use_auto_price_for_hedge", _BOOL), _o("is_oms_container", _BOOL), _o("auto_cancel_date"),
    _o("filled_quantity", _DEC), _o("ref_futures_con_id", _INT), _o("auto_cancel_parent", _BOOL),
    _o("shareholder"), _o("imbalance_only", _BOOL), _o("route_marketable_to_bbo", _BOOL),
    _o("parent_perm_id", _INT),
    _s("completed_time"), _s("completed_status"),
    *_PEG_BEST_MID,
)  # fmt: skip


def encode_open_order(view: OpenOrderView, server_version: int) -> list[Any]:
    """OPEN_ORDER's fields (message id first, no version field from 145 on) for `server_version`."""
    _check_version(server_version)
    return _emit(OPEN_ORDER_LAYOUT, view, server_version)


def open_order_payload(view: OpenOrderView, server_version: int) -> bytes:
    """`encode_open_order`'s fields already encoded (for `wire.frame_raw`): the session's fast path."""
    _check_version(server_version)
    return _emit_bytes(OPEN_ORDER_LAYOUT, view, server_version)


def completed_order_payload(view: OpenOrderView, server_version: int) -> bytes:
    """`encode_completed_order`'s fields already encoded (for `wire.frame_raw`)."""
    _check_version(server_version)
    return _emit_bytes(COMPLETED_ORDER_LAYOUT, view, server_version)


def encode_completed_order(view: OpenOrderView, server_version: int) -> list[Any]:
    """COMPLETED_ORDER's fields: no order id, no client id; ends with completedTime / completedStatus."""
    _check_version(server_version)
    return _emit(COMPLETED_ORDER_LAYOUT, view, server_version)


def encode_order_status(view: OrderStatusView, server_version: int) -> list[Any]:
    """ORDER_STATUS: no version field from 131 on; mktCapPrice last; ids written as ints, never "5.0"."""
    _check_version(server_version)
    return [
        _OUT_ORDER_STATUS,
        _render(_INT, view.order_id),
        view.status,
        _render(_DEC, view.filled),
        _render(_DEC, view.remaining),
        view.avg_fill_price,
        _render(_INT, view.perm_id),
        _render(_INT, view.parent_id),
        view.last_fill_price,
        _render(_INT, view.client_id),
        view.why_held,
        view.mkt_cap_price,
    ]


_NO_ORDER: Final = OrderView()
_NO_STATE: Final = OrderStateView()


def encode_execution_data(req_id: int, execution: ExecutionView, server_version: int) -> list[Any]:
    """EXECUTION_DATA: request id (-1 for a live fill), order id, contract, execution; no version field."""
    _check_version(server_version)
    e = execution
    view = OpenOrderView(e.contract, _NO_ORDER, _NO_STATE)
    out: list[Any] = [
        _OUT_EXECUTION_DATA,
        int(req_id),
        _render(_INT, e.order_id),
        *_emit(_CONTRACT, view, server_version),
    ]
    out += [
        e.exec_id,
        e.time,
        e.acct_number,
        e.exchange,
        e.side,
        _render(_DEC, e.shares),
        e.price,
        _render(_INT, e.perm_id),
        _render(_INT, e.client_id),
        _render(_INT, e.liquidation),
        _render(_DEC, e.cum_qty),
        e.avg_price,
        e.order_ref,
        e.ev_rule,
        e.ev_multiplier,
        e.model_code,
        _render(_INT, e.last_liquidity),
    ]
    if server_version >= v.MIN_SERVER_VER_PENDING_PRICE_REVISION:
        out.append(e.pending_price_revision)
    return out


_CONTRACT_FIELDS: dict[tuple[ContractView, int], bytes] = {}


def execution_payload(req_id: int, execution: ExecutionView, server_version: int) -> bytes:
    """`encode_execution_data`'s fields already encoded (for `wire.frame_raw`); the contract's fields are
    encoded once per contract."""
    _check_version(server_version)
    e = execution
    key = (e.contract, server_version)
    contract = _CONTRACT_FIELDS.get(key)
    if contract is None:
        if len(_CONTRACT_FIELDS) >= 1024:
            _CONTRACT_FIELDS.clear()
        contract = _emit_bytes(_CONTRACT, OpenOrderView(e.contract, _NO_ORDER, _NO_STATE), server_version)
        _CONTRACT_FIELDS[key] = contract
    rest = [
        e.exec_id,
        e.time,
        e.acct_number,
        e.exchange,
        e.side,
        _render_dec(e.shares),
        e.price,
        _render_int(e.perm_id),
        _render_int(e.client_id),
        _render_int(e.liquidation),
        _render_dec(e.cum_qty),
        e.avg_price,
        e.order_ref,
        e.ev_rule,
        e.ev_multiplier,
        e.model_code,
        _render_int(e.last_liquidity),
    ]
    if server_version >= v.MIN_SERVER_VER_PENDING_PRICE_REVISION:
        rest.append(e.pending_price_revision)
    head = b"%d\0%d\0%s" % (_OUT_EXECUTION_DATA, int(req_id), _encode_int(e.order_id))
    return head + contract + b"".join(map(encode_field, rest))


def encode_commission_report(view: CommissionReportView) -> list[Any]:
    """COMMISSION_REPORT (version 1): unset realized P&L and yield are written as the unset double."""
    return [
        _OUT_COMMISSION_REPORT,
        _COMMISSION_REPORT_VERSION,
        view.exec_id,
        view.commission,
        view.currency,
        _render(_DBL, view.realized_pnl),
        _render(_DBL, view.yield_),
        view.yield_redemption_date,
    ]


def encode_open_order_end() -> list[Any]:
    return [_OUT_OPEN_ORDER_END, _OPEN_ORDER_END_VERSION]


def encode_execution_data_end(req_id: int) -> list[Any]:
    return [_OUT_EXECUTION_DATA_END, _EXECUTION_DATA_END_VERSION, req_id]


def encode_completed_orders_end() -> list[Any]:
    """COMPLETED_ORDERS_END carries nothing but its id (both clients read no field after it)."""
    return [_OUT_COMPLETED_ORDERS_END]


# ==========================================================================================================
# Incoming: PLACE_ORDER
# ==========================================================================================================


class _Reader:
    """Reads a request's fields in order; every problem becomes `error` naming the field and position."""

    __slots__ = ("_error", "_fields", "_pos", "order_id")

    def __init__(self, fields: Sequence[str], error: type[OrderRequestFieldError], msg_id: int) -> None:
        self._fields = fields
        self._pos = 0
        self._error = error
        self.order_id: int | None = None
        got = self.integer("message id")
        if got != msg_id:
            raise error("message id", 0, f"{got} is not {error.message} ({msg_id})")

    def _next(self, name: str) -> str:
        if self._pos >= len(self._fields):
            raise self._error(name, self._pos, "missing (message too short)", self.order_id)
        text = self._fields[self._pos]
        self._pos += 1
        return text

    def _fail(self, name: str, problem: str) -> OrderRequestFieldError:
        return self._error(name, self._pos - 1, problem, self.order_id)

    def read(self, kind: str, name: str) -> Any:
        """One field of `kind` (a key of _READERS)."""
        reader: Callable[[_Reader, str], Any] = _READERS[kind]
        return reader(self, name)

    def text(self, name: str) -> str:
        return self._next(name)

    def integer(self, name: str) -> int | None:
        text = self._next(name)
        try:
            return parse_int(text, name)
        except WireError:
            raise self._fail(name, f"{text!r} is not an integer") from None

    def number(self, name: str) -> float | None:
        text = self._next(name)
        try:
            return parse_float(text, name)
        except WireError:
            raise self._fail(name, f"{text!r} is not a number") from None

    def flag(self, name: str) -> bool:
        text = self._next(name)
        try:
            return parse_bool(text, name)
        except WireError:
            raise self._fail(name, f"{text!r} is not a boolean (0/1)") from None

    def opt_flag(self, name: str) -> bool | None:
        text = self._next(name)
        if text.strip() in ("", str(UNSET_INTEGER)):
            return None
        try:
            return parse_bool(text, name)
        except WireError:
            raise self._fail(name, f"{text!r} is not a boolean (0/1)") from None

    def decimal(self, name: str) -> Decimal | None:
        text = self._next(name)
        try:
            return _parse_decimal(text)
        except WireError as e:
            raise self._fail(name, str(e)) from None

    def strike(self, name: str) -> float | None:
        value = self.number(name)
        return None if value == 0.0 else value  # 0.0 is how clients spell "no strike"

    def offset(self, name: str) -> float | None:
        """competeAgainstBestOffset: Infinity/Infinite means "up to mid" (a value), "" the unset double."""
        text = self._next(name)
        s = text.strip().lower()
        if s in _INFINITY_SPELLINGS:
            return math.inf
        try:
            return parse_float(text, name)
        except WireError:
            raise self._fail(name, f"{text!r} is not a number") from None

    def count(self, name: str) -> int:
        value = self.integer(name)
        if value is None or value < 0:
            raise self._fail(name, f"{self._fields[self._pos - 1]!r} is not a count")
        return value

    def end(self) -> None:
        if self._pos != len(self._fields):
            extra = len(self._fields) - self._pos
            raise self._error(
                "(end of message)", self._pos, f"{extra} unexpected trailing field(s)", self.order_id
            )


_READERS: Final[dict[str, Callable[[_Reader, str], Any]]] = {
    "str": _Reader.text, "int": _Reader.integer, "float": _Reader.number, "bool": _Reader.flag,
    "opt_bool": _Reader.opt_flag, "decimal": _Reader.decimal, "strike": _Reader.strike,
}  # fmt: skip

# Scalar PLACE_ORDER fields: (view attribute, reader kind). Blocks are read by the functions below.
_In = tuple[str, str]


def _parse_opt_bool(text: str) -> bool | None:
    if text.strip() in ("", _UNSET_INTEGER_TEXT):
        return None
    return parse_bool(text)


def _parse_decimal(text: str) -> Decimal | None:
    s = text.strip()
    if s.lower() in _UNSET_DECIMAL_SPELLINGS:
        return None
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise WireError(f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise WireError(f"{text!r} is not a finite quantity")
    return value


def _parse_strike(text: str) -> float | None:
    value = parse_float(text)
    return None if value == 0.0 else value


_UNSET_INTEGER_TEXT: Final = str(UNSET_INTEGER)
# Text -> value for the fast path of _read_scalars (None: the text itself); each raises WireError where the
# reader's own method would fail, and the reader then reads the field again to name the problem.
_PARSERS: Final[dict[str, Callable[[str], Any] | None]] = {
    "str": None, "int": parse_int, "float": parse_float, "bool": parse_bool, "opt_bool": _parse_opt_bool,
    "decimal": _parse_decimal, "strike": _parse_strike,
}  # fmt: skip
_Parse = Callable[[str], Any] | None
_RUNS_CACHED = 1024  # per run of specs: how many distinct field texts keep their parsed values


@dataclass(slots=True)
class _SpecRun:
    """A run of scalar fields compiled once: (name, kind, parser) per field, and the values parsed from the
    texts seen before (clients send the same contract and mostly the same order fields again and again: a
    run already seen costs one lookup; its values are immutable and shared)."""

    specs: Sequence[_In]
    steps: tuple[tuple[str, str, _Parse], ...]
    parsed: dict[tuple[str, ...], dict[str, Any]]


_SPEC_RUNS: dict[int, _SpecRun] = {}


def _read_scalars(r: _Reader, specs: Sequence[_In], into: dict[str, Any]) -> None:
    run = _SPEC_RUNS.get(id(specs))
    if run is None or run.specs is not specs:
        run = _SPEC_RUNS[id(specs)] = _SpecRun(specs, tuple((n, k, _PARSERS[k]) for n, k in specs), {})
    fields = r._fields
    pos = r._pos
    end = pos + len(specs)
    if end > len(fields):
        for name, kind in specs:  # the message ends inside this run: field by field, naming the missing one
            into[name] = r.read(kind, name)
        return
    texts = tuple(fields[pos:end])
    values = run.parsed.get(texts)
    if values is None:
        values = {}
        for name, kind, parse in run.steps:
            text = fields[pos]
            if parse is None:
                values[name] = text
            else:
                try:
                    values[name] = parse(text)
                except WireError:
                    r._pos = pos
                    r.read(kind, name)  # raises, naming the field and its position
                    raise AssertionError(f"{name}: {text!r} parsed on the second try") from None
            pos += 1
        if len(run.parsed) >= _RUNS_CACHED:
            run.parsed.clear()
        run.parsed[texts] = values
    into.update(values)
    r._pos = end


_P_CONTRACT: Final[tuple[_In, ...]] = (
    ("con_id", "int"), ("symbol", "str"), ("sec_type", "str"), ("last_trade_date_or_contract_month", "str"),
    ("strike", "strike"), ("right", "str"), ("multiplier", "str"), ("exchange", "str"),
    ("primary_exchange", "str"), ("currency", "str"), ("local_symbol", "str"), ("trading_class", "str"),
    ("sec_id_type", "str"), ("sec_id", "str"),
)  # fmt: skip
_P_ORDER_MAIN: Final[tuple[_In, ...]] = (
    ("action", "str"), ("total_quantity", "decimal"), ("order_type", "str"), ("lmt_price", "float"),
    ("aux_price", "float"), ("tif", "str"), ("oca_group", "str"), ("account", "str"), ("open_close", "str"),
    ("origin", "int"), ("order_ref", "str"), ("transmit", "bool"), ("parent_id", "int"),
    ("block_order", "bool"), ("sweep_to_fill", "bool"), ("display_size", "int"), ("trigger_method", "int"),
    ("outside_rth", "bool"), ("hidden", "bool"),
)  # fmt: skip
_P_FA: Final[tuple[_In, ...]] = (
    ("shares_allocation", "str"), ("discretionary_amt", "float"), ("good_after_time", "str"),
    ("good_till_date", "str"), ("fa_group", "str"), ("fa_method", "str"), ("fa_percentage", "str"),
)  # fmt: skip
_P_MIDDLE: Final[tuple[_In, ...]] = (
    ("model_code", "str"), ("short_sale_slot", "int"), ("designated_location", "str"), ("exempt_code", "int"),
    ("oca_type", "int"), ("rule80a", "str"), ("settling_firm", "str"), ("all_or_none", "bool"),
    ("min_qty", "int"), ("percent_offset", "float"), ("e_trade_only", "bool"), ("firm_quote_only", "bool"),
    ("nbbo_price_cap", "float"), ("auction_strategy", "int"), ("starting_price", "float"),
    ("stock_ref_price", "float"), ("delta", "float"), ("stock_range_lower", "float"),
    ("stock_range_upper", "float"), ("override_percentage_constraints", "bool"), ("volatility", "float"),
    ("volatility_type", "int"), ("delta_neutral_order_type", "str"), ("delta_neutral_aux_price", "float"),
)  # fmt: skip
_P_DELTA_NEUTRAL: Final[tuple[_In, ...]] = (
    ("delta_neutral_con_id", "int"), ("delta_neutral_settling_firm", "str"),
    ("delta_neutral_clearing_account", "str"), ("delta_neutral_clearing_intent", "str"),
    ("delta_neutral_open_close", "str"), ("delta_neutral_short_sale", "bool"),
    ("delta_neutral_short_sale_slot", "int"), ("delta_neutral_designated_location", "str"),
)  # fmt: skip
_P_TRAIL_SCALE: Final[tuple[_In, ...]] = (
    ("continuous_update", "bool"), ("reference_price_type", "int"), ("trail_stop_price", "float"),
    ("trailing_percent", "float"), ("scale_init_level_size", "int"), ("scale_subs_level_size", "int"),
    ("scale_price_increment", "float"),
)  # fmt: skip
_P_SCALE_MORE: Final[tuple[_In, ...]] = (
    ("scale_price_adjust_value", "float"), ("scale_price_adjust_interval", "int"),
    ("scale_profit_offset", "float"), ("scale_auto_reset", "bool"), ("scale_init_position", "int"),
    ("scale_init_fill_qty", "int"), ("scale_random_percent", "bool"),
)  # fmt: skip
_P_SCALE_TABLE_HEDGE: Final[tuple[_In, ...]] = (
    ("scale_table", "str"), ("active_start_time", "str"), ("active_stop_time", "str"), ("hedge_type", "str"),
)  # fmt: skip
_P_CLEARING: Final[tuple[_In, ...]] = (
    ("opt_out_smart_routing", "bool"), ("clearing_account", "str"), ("clearing_intent", "str"),
    ("not_held", "bool"),
)  # fmt: skip
_P_WHAT_IF: Final[tuple[_In, ...]] = (
    ("algo_id", "str"), ("what_if", "bool"), ("order_misc_options", "str"), ("solicited", "bool"),
    ("randomize_size", "bool"), ("randomize_price", "bool"),
)  # fmt: skip
_P_PEG_BENCH: Final[tuple[_In, ...]] = (
    ("reference_contract_id", "int"), ("is_pegged_change_amount_decrease", "bool"),
    ("pegged_change_amount", "float"), ("reference_change_amount", "float"), ("reference_exchange_id", "str"),
)  # fmt: skip
_P_ADJUSTED: Final[tuple[_In, ...]] = (
    ("adjusted_order_type", "str"), ("trigger_price", "float"), ("lmt_price_offset", "float"),
    ("adjusted_stop_price", "float"), ("adjusted_stop_limit_price", "float"),
    ("adjusted_trailing_amount", "float"), ("adjustable_trailing_unit", "int"), ("ext_operator", "str"),
    ("soft_dollar_tier_name", "str"), ("soft_dollar_tier_value", "str"), ("cash_qty", "float"),
    ("mifid2_decision_maker", "str"), ("mifid2_decision_algo", "str"), ("mifid2_execution_trader", "str"),
    ("mifid2_execution_algo", "str"), ("dont_use_auto_price_for_hedge", "bool"), ("is_oms_container", "bool"),
    ("discretionary_up_to_limit_price", "bool"), ("use_price_mgmt_algo", "opt_bool"),
)  # fmt: skip
# Tail fields by first server version carrying them.
_P_TAIL: Final[tuple[tuple[int, str, str], ...]] = (
    (v.MIN_SERVER_VER_DURATION, "duration", "int"),
    (v.MIN_SERVER_VER_POST_TO_ATS, "post_to_ats", "int"),
    (v.MIN_SERVER_VER_AUTO_CANCEL_PARENT, "auto_cancel_parent", "bool"),
    (v.MIN_SERVER_VER_ADVANCED_ORDER_REJECT, "advanced_error_override", "str"),
    (v.MIN_SERVER_VER_MANUAL_ORDER_TIME, "manual_order_time", "str"),
)


def _read_tag_values(r: _Reader, name: str) -> tuple[tuple[str, str], ...]:
    n = r.count(f"{name} count")
    return tuple((r.text(f"{name}[{i}].tag"), r.text(f"{name}[{i}].value")) for i in range(n))


def _read_bag(r: _Reader, c: dict[str, Any], o: dict[str, Any]) -> None:
    legs = []
    for i in range(r.count("combo legs count")):
        p = f"combo_legs[{i}]."
        con_id, ratio = r.integer(p + "con_id"), r.integer(p + "ratio")
        action, exchange = r.text(p + "action"), r.text(p + "exchange")
        open_close, slot = r.integer(p + "open_close"), r.integer(p + "short_sale_slot")
        location, exempt = r.text(p + "designated_location"), r.integer(p + "exempt_code")
        legs.append(
            ComboLegView(
                con_id or 0,
                ratio or 0,
                action,
                exchange,
                open_close or 0,
                slot or 0,
                location,
                -1 if exempt is None else exempt,
            )
        )
    c["combo_legs"] = tuple(legs)
    o["order_combo_leg_prices"] = tuple(
        r.number(f"order_combo_legs[{i}].price") for i in range(r.count("order combo legs count"))
    )
    o["smart_combo_routing_params"] = _read_tag_values(r, "smart_combo_routing_params")


def _read_condition(r: _Reader, i: int) -> OrderConditionView:
    cond_type = r.count(f"conditions[{i}].type")
    layout = _CONDITION_LAYOUTS.get(cond_type)
    if layout is None:
        raise r._fail(f"conditions[{i}].type", f"unknown order condition type {cond_type}")
    conjunction = r.text(f"conditions[{i}].conjunction")
    values = tuple(r.read(kind, f"conditions[{i}].{name}") for name, kind in layout)
    return OrderConditionView(cond_type, values, conjunction)


def _read_peg_best_mid(r: _Reader, c: dict[str, Any], o: dict[str, Any]) -> None:
    """From 170 clients send minTradeQty only for IBKRATS, and PEG BEST / PEG MID offsets only for those."""
    if c["exchange"] == _IBKRATS:
        o["min_trade_qty"] = r.integer("min_trade_qty")
    send_mid_offsets = o["order_type"] in _PEG_MID_TYPES
    if o["order_type"] in _PEG_BEST_TYPES:
        o["min_compete_size"] = r.integer("min_compete_size")
        o["compete_against_best_offset"] = r.offset("compete_against_best_offset")
        send_mid_offsets = o["compete_against_best_offset"] == math.inf
    if send_mid_offsets:
        o["mid_offset_at_whole"] = r.number("mid_offset_at_whole")
        o["mid_offset_at_half"] = r.number("mid_offset_at_half")


_NOT_NULLABLE: dict[type, dict[str, Any]] = {}


def _none_to_default(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Unset ints/floats arrive as None; fields whose view type has no None take the view's default."""
    defaults = _NOT_NULLABLE.get(cls)
    if defaults is None:  # per view class, once: the defaults of the fields that cannot be None
        defaults = {f.name: f.default for f in fields(cls) if "None" not in str(f.type)}
        _NOT_NULLABLE[cls] = defaults
    for name, val in values.items():
        if val is None and name in defaults:
            values[name] = defaults[name]
    return values


def decode_place_order(fields_: Sequence[str], server_version: int) -> PlaceOrder:
    """Decode PLACE_ORDER as ib_async 2.1.0 and ibapi 10.46 send it (one layout in 157..178, no version).

    `fields_` is the whole message as `FrameBuffer.feed` yields it: fields_[0] is the message id "3".
    Raises PlaceOrderFieldError (naming the field and position) on a missing, malformed or extra field.
    """
    _check_version(server_version)
    r = _Reader(fields_, PlaceOrderFieldError, _IN_PLACE_ORDER)
    order_id = r.integer("order_id")
    if order_id is None:
        raise PlaceOrderFieldError("order_id", 1, "order id is unset")
    r.order_id = order_id
    c: dict[str, Any] = {}
    o: dict[str, Any] = {"order_id": order_id}
    _read_scalars(r, _P_CONTRACT, c)
    _read_scalars(r, _P_ORDER_MAIN, o)
    if c["sec_type"] == "BAG":
        _read_bag(r, c, o)
    _read_scalars(r, _P_FA, o)
    del o["shares_allocation"]  # deprecated, always ""
    if server_version < v.MIN_SERVER_VER_FA_PROFILE_DESUPPORT:
        o["fa_profile"] = r.text("fa_profile")
    _read_scalars(r, _P_MIDDLE, o)
    if o["delta_neutral_order_type"]:
        _read_scalars(r, _P_DELTA_NEUTRAL, o)
    _read_scalars(r, _P_TRAIL_SCALE, o)
    if _scale_present(o["scale_price_increment"]):
        _read_scalars(r, _P_SCALE_MORE, o)
    _read_scalars(r, _P_SCALE_TABLE_HEDGE, o)
    if o["hedge_type"]:
        o["hedge_param"] = r.text("hedge_param")
    _read_scalars(r, _P_CLEARING, o)
    if r.flag("delta_neutral_contract present"):
        dn_con_id, dn_delta, dn_price = (
            r.integer("delta_neutral_contract.con_id"),
            r.number("delta_neutral_contract.delta"),
            r.number("delta_neutral_contract.price"),
        )
        c["delta_neutral_contract"] = DeltaNeutralContractView(
            dn_con_id or 0, dn_delta or 0.0, dn_price or 0.0
        )
    o["algo_strategy"] = r.text("algo_strategy")
    if o["algo_strategy"]:
        o["algo_params"] = _read_tag_values(r, "algo_params")
    _read_scalars(r, _P_WHAT_IF, o)
    if o["order_type"] in _PEG_BENCH_TYPES:
        _read_scalars(r, _P_PEG_BENCH, o)
    n_conditions = r.count("conditions count")
    if n_conditions:
        o["conditions"] = tuple(_read_condition(r, i) for i in range(n_conditions))
        o["conditions_ignore_rth"] = r.flag("conditions_ignore_rth")
        o["conditions_cancel_order"] = r.flag("conditions_cancel_order")
    _read_scalars(r, _P_ADJUSTED, o)
    for since, name, kind in _P_TAIL:
        if server_version >= since:
            o[name] = r.read(kind, name)
    if server_version >= v.MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS:
        _read_peg_best_mid(r, c, o)
    r.end()
    contract = ContractView(**_none_to_default(ContractView, c))
    order: OrderView = ORDER_VIEWS.new(_none_to_default(OrderView, o))
    return PlaceOrder(order_id, contract, order)


# =========================================================================================================
# Incoming: the other order-side requests
# =========================================================================================================


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: int
    manual_order_cancel_time: str = ""


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    """REQ_EXECUTIONS: which fills to report ("" / 0 = any); `time` "YYYYMMDD HH:MM:SS" = fills since then."""

    req_id: int
    client_id: int = 0
    acct_code: str = ""
    time: str = ""
    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    side: str = ""


def decode_cancel_order(fields_: Sequence[str], server_version: int) -> CancelOrder:
    """CANCEL_ORDER: version 1, order id, and from 169 manualOrderCancelTime (both clients alike)."""
    _check_version(server_version)
    r = _Reader(fields_, CancelOrderFieldError, _IN_CANCEL_ORDER)
    r.text("version")
    order_id = r.integer("order_id")
    if order_id is None:
        raise CancelOrderFieldError("order_id", 2, "order id is unset")
    r.order_id = order_id
    manual_time = (
        r.text("manual_order_cancel_time") if server_version >= v.MIN_SERVER_VER_MANUAL_ORDER_TIME else ""
    )
    r.end()
    return CancelOrder(order_id, manual_time)


def decode_req_executions(fields_: Sequence[str], server_version: int) -> ExecutionFilter:
    """REQ_EXECUTIONS: version 3, request id, then the filter (clientId, account, time, symbol, secType,
    exchange, side); the days-back fields only come from 200."""
    _check_version(server_version)
    r = _Reader(fields_, ReqExecutionsFieldError, _IN_REQ_EXECUTIONS)
    r.text("version")
    req_id = r.integer("req_id")
    client_id = r.integer("client_id")
    values = [r.text(name) for name in ("acct_code", "time", "symbol", "sec_type", "exchange", "side")]
    r.end()
    return ExecutionFilter(0 if req_id is None else req_id, client_id or 0, *values)


def decode_req_completed_orders(fields_: Sequence[str]) -> bool:
    """REQ_COMPLETED_ORDERS: apiOnly (only orders placed through the API)."""
    r = _Reader(fields_, ReqCompletedOrdersFieldError, _IN_REQ_COMPLETED_ORDERS)
    api_only = r.flag("api_only")
    r.end()
    return api_only

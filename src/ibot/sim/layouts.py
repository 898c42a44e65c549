"""Outgoing message layouts for the session, market-data, contract and account messages.

Each layout is a declarative field list; a field may be gated by a server-version range. The session builds
the values (by name), the layout puts them in wire order for the negotiated version. Order-side messages
(OPEN_ORDER, ORDER_STATUS, EXECUTION_DATA, ...) live in `sim/layouts_orders.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ibot.sim import versions as v
from ibot.sim.messages import Outgoing
from ibot.sim.wire import encode_field, frame


class LayoutError(ValueError):
    """A value missing for a field that the layout needs at this server version."""


_REQUIRED = object()


@dataclass(frozen=True, slots=True)
class F:
    """One field: present when `since <= server_version < until`; `value` fixes it (a message version)."""

    name: str
    since: int = 0
    until: int | None = None
    value: Any = _REQUIRED

    def present(self, server_version: int) -> bool:
        return server_version >= self.since and (self.until is None or server_version < self.until)


@dataclass(frozen=True, slots=True)
class Group:
    """A repeated group: a count field, then each item's fields (values[name] is a sequence of mappings);
    an item's field may itself be a group (SYMBOL_SAMPLES: each contract's derivative security types)."""

    name: str
    fields: tuple[F | Group, ...]
    since: int = 0

    def present(self, server_version: int) -> bool:
        return server_version >= self.since


@dataclass(frozen=True, slots=True)
class Layout:
    msg_id: Outgoing
    fields: tuple[F | Group, ...]

    def values(self, server_version: int, values: Mapping[str, Any]) -> list[Any]:
        """The message's fields in wire order (message id first) for `server_version`."""
        out: list[Any] = [int(self.msg_id)]
        self._put(self.fields, server_version, values, out)
        return out

    def _put(
        self, fields: Sequence[F | Group], server_version: int, values: Mapping[str, Any], out: list[Any]
    ) -> None:
        for field in fields:
            if not field.present(server_version):
                continue
            if isinstance(field, Group):
                items: Sequence[Mapping[str, Any]] = self._get(field.name, values)
                out.append(len(items))
                for item in items:
                    self._put(field.fields, server_version, item, out)
            else:
                out.append(self._scalar(field, values))

    def frame(self, server_version: int, **values: Any) -> bytes:
        return frame(self.values(server_version, values))

    def head(self, server_version: int, tail: Sequence[str], **values: Any) -> bytes:
        """The message's fields before `tail` (its last fields, named in wire order) encoded once: a stream
        that sends this message over and over appends only the tail's encoded fields and frames the whole
        (`wire.frame_raw`), with the same bytes as `frame` would write."""
        names = [f.name for f in self.fields if f.present(server_version)]
        if any(isinstance(f, Group) for f in self.fields if f.present(server_version)):
            raise LayoutError(f"{self.msg_id.name}: a message with a repeated group has no fixed head")
        if not tail or tuple(names[-len(tail) :]) != tuple(tail):
            raise LayoutError(
                f"{self.msg_id.name}: {', '.join(tail)} are not its last fields at server version "
                f"{server_version} (they are {', '.join(names[-len(tail) :])})"
            )
        fields = self.values(server_version, {**values, **dict.fromkeys(tail)})
        return b"".join(encode_field(f) for f in fields[: -len(tail)])

    def _scalar(self, field: F, values: Mapping[str, Any]) -> Any:
        if field.value is not _REQUIRED:
            return field.value
        return self._get(field.name, values)

    def _get(self, name: str, values: Mapping[str, Any]) -> Any:
        try:
            return values[name]
        except KeyError:
            raise LayoutError(f"{self.msg_id.name}: no value for field {name!r}") from None


def _version(n: int, until: int | None = None) -> F:
    return F("version", until=until, value=n)


def _layout(msg_id: Outgoing, *fields: F | Group | str) -> Layout:
    return Layout(msg_id, tuple(F(f) if isinstance(f, str) else f for f in fields))


# The contract as POSITION_DATA / PORTFOLIO_VALUE carry it (values from `contract_values`).
_CONTRACT = ("conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right", "multiplier")

# --- session ---------------------------------------------------------------------------------------
ERR_MSG = _layout(
    Outgoing.ERR_MSG,
    _version(2, until=v.MIN_SERVER_VER_ERROR_TIME),
    "reqId",
    "errorCode",
    "errorString",
    F("advancedOrderRejectJson", since=v.MIN_SERVER_VER_ADVANCED_ORDER_REJECT),
    F("errorTime", since=v.MIN_SERVER_VER_ERROR_TIME),
)
NEXT_VALID_ID = _layout(Outgoing.NEXT_VALID_ID, _version(1), "orderId")
MANAGED_ACCTS = _layout(Outgoing.MANAGED_ACCTS, _version(1), "accounts")
CURRENT_TIME = _layout(Outgoing.CURRENT_TIME, _version(1), "time")

# --- market data -----------------------------------------------------------------------------------
TICK_PRICE = _layout(Outgoing.TICK_PRICE, _version(6), "reqId", "tickType", "price", "size", "attrMask")
TICK_SIZE = _layout(Outgoing.TICK_SIZE, _version(6), "reqId", "tickType", "size")
TICK_STRING = _layout(Outgoing.TICK_STRING, _version(6), "reqId", "tickType", "value")
TICK_SNAPSHOT_END = _layout(Outgoing.TICK_SNAPSHOT_END, _version(1), "reqId")
MARKET_DATA_TYPE = _layout(Outgoing.MARKET_DATA_TYPE, _version(1), "reqId", "marketDataType")
TICK_REQ_PARAMS = _layout(Outgoing.TICK_REQ_PARAMS, "reqId", "minTick", "bboExchange", "snapshotPermissions")
TICK_BY_TICK_LAST = _layout(
    Outgoing.TICK_BY_TICK,
    "reqId",
    "tickType",
    "time",
    "price",
    "size",
    "mask",
    "exchange",
    "specialConditions",
)
TICK_BY_TICK_BID_ASK = _layout(
    Outgoing.TICK_BY_TICK, "reqId", "tickType", "time", "bidPrice", "askPrice", "bidSize", "askSize", "mask"
)
TICK_BY_TICK_MIDPOINT = _layout(Outgoing.TICK_BY_TICK, "reqId", "tickType", "time", "midPoint")
REAL_TIME_BARS = _layout(
    Outgoing.REAL_TIME_BARS,
    _version(3),
    "reqId",
    "time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "wap",
    "count",
)
_BAR = tuple(F(n) for n in ("date", "open", "high", "low", "close", "volume", "wap", "barCount"))
HISTORICAL_DATA = _layout(
    Outgoing.HISTORICAL_DATA,
    "reqId",
    F("startDate", until=v.MIN_SERVER_VER_HISTORICAL_DATA_END),
    F("endDate", until=v.MIN_SERVER_VER_HISTORICAL_DATA_END),
    Group("bars", _BAR),
)
HISTORICAL_DATA_UPDATE = _layout(
    Outgoing.HISTORICAL_DATA_UPDATE,
    "reqId",
    "barCount",
    "date",
    "open",
    "close",
    "high",
    "low",
    "wap",
    "volume",
)
HEAD_TIMESTAMP = _layout(Outgoing.HEAD_TIMESTAMP, "reqId", "headTimestamp")
# reqHistoricalTicks: one message per request, every tick in it, then `done`. MIDPOINT ticks carry an unused
# field where the others carry their attribute mask (written 0).
HISTORICAL_TICKS = _layout(
    Outgoing.HISTORICAL_TICKS,
    "reqId",
    Group("ticks", (F("time"), F("unused", value=0), F("price"), F("size"))),
    "done",
)
HISTORICAL_TICKS_BID_ASK = _layout(
    Outgoing.HISTORICAL_TICKS_BID_ASK,
    "reqId",
    Group("ticks", (F("time"), F("mask"), F("priceBid"), F("priceAsk"), F("sizeBid"), F("sizeAsk"))),
    "done",
)
HISTORICAL_TICKS_LAST = _layout(
    Outgoing.HISTORICAL_TICKS_LAST,
    "reqId",
    Group("ticks", (F("time"), F("mask"), F("price"), F("size"), F("exchange"), F("specialConditions"))),
    "done",
)
MARKET_DEPTH = _layout(
    Outgoing.MARKET_DEPTH, _version(1), "reqId", "position", "operation", "side", "price", "size"
)
MARKET_DEPTH_L2 = _layout(
    Outgoing.MARKET_DEPTH_L2,
    _version(1),
    "reqId",
    "position",
    "marketMaker",
    "operation",
    "side",
    "price",
    "size",
    "isSmartDepth",
)

# --- contracts -------------------------------------------------------------------------------------
CONTRACT_DATA = _layout(
    Outgoing.CONTRACT_DATA,
    _version(8, until=v.MIN_SERVER_VER_SIZE_RULES),
    "reqId",
    "symbol",
    "secType",
    "lastTradeDateOrContractMonth",
    "strike",
    "right",
    "exchange",
    "currency",
    "localSymbol",
    "marketName",
    "tradingClass",
    "conId",
    "minTick",
    F("mdSizeMultiplier", until=v.MIN_SERVER_VER_SIZE_RULES, value=1),
    "multiplier",
    "orderTypes",
    "validExchanges",
    "priceMagnifier",
    "underConId",
    "longName",
    "primaryExchange",
    "contractMonth",
    "industry",
    "category",
    "subcategory",
    "timeZoneId",
    "tradingHours",
    "liquidHours",
    "evRule",
    "evMultiplier",
    Group("secIdList", (F("tag"), F("value"))),
    "aggGroup",
    "underSymbol",
    "underSecType",
    "marketRuleIds",
    "realExpirationDate",
    "stockType",
    F("sizeMinTick", since=v.MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT, until=v.MIN_SERVER_VER_SIZE_RULES),
    F("minSize", since=v.MIN_SERVER_VER_SIZE_RULES),
    F("sizeIncrement", since=v.MIN_SERVER_VER_SIZE_RULES),
    F("suggestedSizeIncrement", since=v.MIN_SERVER_VER_SIZE_RULES),
)
CONTRACT_DATA_END = _layout(Outgoing.CONTRACT_DATA_END, _version(1), "reqId")
# Symbol search: each contract with its derivative security types (values: {"secType": ...}).
SYMBOL_SAMPLES = _layout(
    Outgoing.SYMBOL_SAMPLES,
    "reqId",
    Group(
        "contracts",
        (
            F("conId"),
            F("symbol"),
            F("secType"),
            F("primaryExchange"),
            F("currency"),
            Group("derivativeSecTypes", (F("secType"),)),
            F("description", since=v.MIN_SERVER_VER_BOND_ISSUERID),
            F("issuerId", since=v.MIN_SERVER_VER_BOND_ISSUERID),
        ),
    ),
)
MARKET_RULE = _layout(
    Outgoing.MARKET_RULE, "marketRuleId", Group("priceIncrements", (F("lowEdge"), F("increment")))
)
MKT_DEPTH_EXCHANGES = _layout(
    Outgoing.MKT_DEPTH_EXCHANGES,
    Group(
        "descriptions",
        (F("exchange"), F("secType"), F("listingExch"), F("serviceDataType"), F("aggGroup")),
    ),
)
SECURITY_DEFINITION_OPTION_PARAMETER_END = _layout(Outgoing.SECURITY_DEFINITION_OPTION_PARAMETER_END, "reqId")
SMART_COMPONENTS = _layout(
    Outgoing.SMART_COMPONENTS,
    "reqId",
    Group("components", (F("bitNumber"), F("exchange"), F("exchangeLetter"))),
)
NEWS_PROVIDERS = _layout(Outgoing.NEWS_PROVIDERS, Group("providers", (F("code"), F("name"))))
SCANNER_PARAMETERS = _layout(Outgoing.SCANNER_PARAMETERS, _version(1), "xml")

# --- account and positions -------------------------------------------------------------------------
# A position as POSITION_DATA and POSITION_MULTI both write it, after the account.
_POSITION = (*_CONTRACT, "exchange", "currency", "localSymbol", "tradingClass", "position", "avgCost")
POSITION_DATA = _layout(Outgoing.POSITION_DATA, _version(3), "account", *_POSITION)
POSITION_END = _layout(Outgoing.POSITION_END, _version(1))
POSITION_MULTI = _layout(Outgoing.POSITION_MULTI, _version(1), "reqId", "account", *_POSITION, "modelCode")
POSITION_MULTI_END = _layout(Outgoing.POSITION_MULTI_END, _version(1), "reqId")
SOFT_DOLLAR_TIERS = _layout(
    Outgoing.SOFT_DOLLAR_TIERS, "reqId", Group("tiers", (F("name"), F("value"), F("displayName")))
)
ACCT_VALUE = _layout(Outgoing.ACCT_VALUE, _version(2), "key", "value", "currency", "accountName")
PORTFOLIO_VALUE = _layout(
    Outgoing.PORTFOLIO_VALUE,
    _version(8),
    *_CONTRACT,
    "primaryExchange",
    "currency",
    "localSymbol",
    "tradingClass",
    "position",
    "marketPrice",
    "marketValue",
    "averageCost",
    "unrealizedPNL",
    "realizedPNL",
    "accountName",
)
ACCT_UPDATE_TIME = _layout(Outgoing.ACCT_UPDATE_TIME, _version(1), "time")
ACCT_DOWNLOAD_END = _layout(Outgoing.ACCT_DOWNLOAD_END, _version(1), "account")
ACCOUNT_SUMMARY = _layout(
    Outgoing.ACCOUNT_SUMMARY, _version(1), "reqId", "account", "tag", "value", "currency"
)
ACCOUNT_SUMMARY_END = _layout(Outgoing.ACCOUNT_SUMMARY_END, _version(1), "reqId")
ACCOUNT_UPDATE_MULTI = _layout(
    Outgoing.ACCOUNT_UPDATE_MULTI, _version(1), "reqId", "account", "modelCode", "key", "value", "currency"
)
ACCOUNT_UPDATE_MULTI_END = _layout(Outgoing.ACCOUNT_UPDATE_MULTI_END, _version(1), "reqId")
FAMILY_CODES = _layout(Outgoing.FAMILY_CODES, Group("familyCodes", (F("accountID"), F("familyCodeStr"))))
USER_INFO = _layout(Outgoing.USER_INFO, "reqId", "whiteBrandingId")
PNL = _layout(Outgoing.PNL, "reqId", "dailyPnL", "unrealizedPnL", "realizedPnL")
PNL_SINGLE = _layout(Outgoing.PNL_SINGLE, "reqId", "pos", "dailyPnL", "unrealizedPnL", "realizedPnL", "value")

# --- end markers of the order-side downloads (the orders themselves are in layouts_orders) -----------
OPEN_ORDER_END = _layout(Outgoing.OPEN_ORDER_END, _version(1))
EXECUTION_DATA_END = _layout(Outgoing.EXECUTION_DATA_END, _version(1), "reqId")
COMPLETED_ORDERS_END = _layout(Outgoing.COMPLETED_ORDERS_END)

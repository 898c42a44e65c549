"""Every request of the TWS protocol up to the server versions the simulator negotiates, and where it carries
its request id: so a request the simulator does not serve is still answered (an error on its id, or on -1),
never left to hang.

Positions are read from the clients' own encoders (IB's `EClient`, ib_async's `Client`) at server versions
157..178: the index counts the message id as field 0, so ``[52, version, reqId, ...]`` has its id at 2. An
order id (PLACE_ORDER, CANCEL_ORDER) counts as the request's id, as IB answers order errors on it. A message
that only exists from a later server version gives `since`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ibot.sim import versions as v
from ibot.sim.messages import Incoming


@dataclass(frozen=True, slots=True)
class RequestShape:
    """One request: the client call that sends it, the index of its request id (None: it has none), and the
    first server version that has it."""

    api: str
    req_id_at: int | None
    since: int = 0

    def exists(self, server_version: int) -> bool:
        return server_version >= self.since


def _r(api: str, req_id_at: int | None = None, since: int = 0) -> RequestShape:
    return RequestShape(api, req_id_at, since)


I = Incoming  # noqa: E741  (the table reads as the protocol's message list)

REQUESTS: dict[int, RequestShape] = {  # keyed by Incoming (an int)
    I.REQ_MKT_DATA: _r("reqMktData", 2),
    I.CANCEL_MKT_DATA: _r("cancelMktData", 2),
    I.PLACE_ORDER: _r("placeOrder", 1),
    I.CANCEL_ORDER: _r("cancelOrder", 2),
    I.REQ_OPEN_ORDERS: _r("reqOpenOrders"),
    I.REQ_ACCT_DATA: _r("reqAccountUpdates"),
    I.REQ_EXECUTIONS: _r("reqExecutions", 2),
    I.REQ_IDS: _r("reqIds"),
    I.REQ_CONTRACT_DATA: _r("reqContractDetails", 2),
    I.REQ_MKT_DEPTH: _r("reqMktDepth", 2),
    I.CANCEL_MKT_DEPTH: _r("cancelMktDepth", 2),
    I.REQ_NEWS_BULLETINS: _r("reqNewsBulletins"),
    I.CANCEL_NEWS_BULLETINS: _r("cancelNewsBulletins"),
    I.SET_SERVER_LOGLEVEL: _r("setServerLogLevel"),
    I.REQ_AUTO_OPEN_ORDERS: _r("reqAutoOpenOrders"),
    I.REQ_ALL_OPEN_ORDERS: _r("reqAllOpenOrders"),
    I.REQ_MANAGED_ACCTS: _r("reqManagedAccts"),
    I.REQ_FA: _r("requestFA"),
    I.REPLACE_FA: _r("replaceFA", 4),  # [19, version, faDataType, xml, reqId]: the id comes last (from 157)
    I.REQ_HISTORICAL_DATA: _r("reqHistoricalData", 1),
    I.EXERCISE_OPTIONS: _r("exerciseOptions", 2),
    I.REQ_SCANNER_SUBSCRIPTION: _r("reqScannerSubscription", 1),  # no version field from 143
    I.CANCEL_SCANNER_SUBSCRIPTION: _r("cancelScannerSubscription", 2),
    I.REQ_SCANNER_PARAMETERS: _r("reqScannerParameters"),
    I.CANCEL_HISTORICAL_DATA: _r("cancelHistoricalData", 2),
    I.REQ_CURRENT_TIME: _r("reqCurrentTime"),
    I.REQ_REAL_TIME_BARS: _r("reqRealTimeBars", 2),
    I.CANCEL_REAL_TIME_BARS: _r("cancelRealTimeBars", 2),
    I.REQ_FUNDAMENTAL_DATA: _r("reqFundamentalData", 2),
    I.CANCEL_FUNDAMENTAL_DATA: _r("cancelFundamentalData", 2),
    I.REQ_CALC_IMPLIED_VOLAT: _r("calculateImpliedVolatility", 2),
    I.REQ_CALC_OPTION_PRICE: _r("calculateOptionPrice", 2),
    I.CANCEL_CALC_IMPLIED_VOLAT: _r("cancelCalculateImpliedVolatility", 2),
    I.CANCEL_CALC_OPTION_PRICE: _r("cancelCalculateOptionPrice", 2),
    I.REQ_GLOBAL_CANCEL: _r("reqGlobalCancel"),
    I.REQ_MARKET_DATA_TYPE: _r("reqMarketDataType"),
    I.REQ_POSITIONS: _r("reqPositions"),
    I.REQ_ACCOUNT_SUMMARY: _r("reqAccountSummary", 2),
    I.CANCEL_ACCOUNT_SUMMARY: _r("cancelAccountSummary", 2),
    I.CANCEL_POSITIONS: _r("cancelPositions"),
    I.VERIFY_REQUEST: _r("verifyRequest"),
    I.VERIFY_MESSAGE: _r("verifyMessage"),
    I.QUERY_DISPLAY_GROUPS: _r("queryDisplayGroups", 2),
    I.SUBSCRIBE_TO_GROUP_EVENTS: _r("subscribeToGroupEvents", 2),
    I.UPDATE_DISPLAY_GROUP: _r("updateDisplayGroup", 2),
    I.UNSUBSCRIBE_FROM_GROUP_EVENTS: _r("unsubscribeFromGroupEvents", 2),
    I.START_API: _r("startApi"),
    I.VERIFY_AND_AUTH_REQUEST: _r("verifyAndAuthRequest"),
    I.VERIFY_AND_AUTH_MESSAGE: _r("verifyAndAuthMessage"),
    I.REQ_POSITIONS_MULTI: _r("reqPositionsMulti", 2),
    I.CANCEL_POSITIONS_MULTI: _r("cancelPositionsMulti", 2),
    I.REQ_ACCOUNT_UPDATES_MULTI: _r("reqAccountUpdatesMulti", 2),
    I.CANCEL_ACCOUNT_UPDATES_MULTI: _r("cancelAccountUpdatesMulti", 2),
    I.REQ_SEC_DEF_OPT_PARAMS: _r("reqSecDefOptParams", 1),
    I.REQ_SOFT_DOLLAR_TIERS: _r("reqSoftDollarTiers", 1),
    I.REQ_FAMILY_CODES: _r("reqFamilyCodes"),
    I.REQ_MATCHING_SYMBOLS: _r("reqMatchingSymbols", 1),
    I.REQ_MKT_DEPTH_EXCHANGES: _r("reqMktDepthExchanges"),
    I.REQ_SMART_COMPONENTS: _r("reqSmartComponents", 1),
    I.REQ_NEWS_ARTICLE: _r("reqNewsArticle", 1),
    I.REQ_NEWS_PROVIDERS: _r("reqNewsProviders"),
    I.REQ_HISTORICAL_NEWS: _r("reqHistoricalNews", 1),
    I.REQ_HEAD_TIMESTAMP: _r("reqHeadTimeStamp", 1),
    I.REQ_HISTOGRAM_DATA: _r("reqHistogramData", 1),
    I.CANCEL_HISTOGRAM_DATA: _r("cancelHistogramData", 1),
    I.CANCEL_HEAD_TIMESTAMP: _r("cancelHeadTimeStamp", 1),
    I.REQ_MARKET_RULE: _r("reqMarketRule"),  # its first field is a market rule id, not a request id
    I.REQ_PNL: _r("reqPnL", 1),
    I.CANCEL_PNL: _r("cancelPnL", 1),
    I.REQ_PNL_SINGLE: _r("reqPnLSingle", 1),
    I.CANCEL_PNL_SINGLE: _r("cancelPnLSingle", 1),
    I.REQ_HISTORICAL_TICKS: _r("reqHistoricalTicks", 1),
    I.REQ_TICK_BY_TICK_DATA: _r("reqTickByTickData", 1),
    I.CANCEL_TICK_BY_TICK_DATA: _r("cancelTickByTickData", 1),
    I.REQ_COMPLETED_ORDERS: _r("reqCompletedOrders"),
    I.REQ_WSH_META_DATA: _r("reqWshMetaData", 1, v.MIN_SERVER_VER_WSHE_CALENDAR),
    I.CANCEL_WSH_META_DATA: _r("cancelWshMetaData", 1, v.MIN_SERVER_VER_WSHE_CALENDAR),
    I.REQ_WSH_EVENT_DATA: _r("reqWshEventData", 1, v.MIN_SERVER_VER_WSHE_CALENDAR),
    I.CANCEL_WSH_EVENT_DATA: _r("cancelWshEventData", 1, v.MIN_SERVER_VER_WSHE_CALENDAR),
    I.REQ_USER_INFO: _r("reqUserInfo", 1, v.MIN_SERVER_VER_USER_INFO),
}
# Later messages (REQ_CURRENT_TIME_IN_MILLIS 105 from server version 197, CANCEL_CONTRACT_DATA 106 and
# CANCEL_HISTORICAL_TICKS 107 from 215, REQ_CONFIG 108 from 219, UPDATE_CONFIG 109 from 221) are above what
# the simulator negotiates: they are unknown here.
del I

NO_ID = -1


class RequestError(Exception):
    """A request answered with an IB error code (sent to the client, the connection carries on)."""

    def __init__(self, code: int, text: str, req_id: int = NO_ID) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text
        self.req_id = req_id


# IB's "Error processing request" (322): the request was read, but is not processed. Not 321 ("Error
# validating request"): ib_async counts 321 as a warning and leaves the request that caused it pending.
UNSERVED_CODE = 322
UNKNOWN_MESSAGE_CODE = 320


def unserved_text(msg_id: int, shape: RequestShape) -> str:
    """The error text of a request the simulator does not serve, in IB's ``-'field' : cause - ...`` form."""
    return f"Error processing request.-'msgId {msg_id}' : cause - the simulator does not serve {shape.api}"


def unknown_text(msg_id: int, server_version: int) -> str:
    return (
        f"Error reading request.-'msgId {msg_id}' : cause - message id {msg_id} is not part of the protocol "
        f"at server version {server_version}"
    )


def request_id(shape: RequestShape, fields: list[str]) -> int | None:
    """The request id a message carries (fields with the message id first), or None when it has none or it
    cannot be read."""
    if shape.req_id_at is None or shape.req_id_at >= len(fields):
        return None
    try:
        return int(fields[shape.req_id_at])
    except ValueError:
        return None


__all__ = [
    "NO_ID",
    "REQUESTS",
    "UNKNOWN_MESSAGE_CODE",
    "UNSERVED_CODE",
    "RequestError",
    "RequestShape",
    "request_id",
    "unknown_text",
    "unserved_text",
]

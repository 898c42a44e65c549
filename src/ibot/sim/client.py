"""One client connection: handshake, START_API, the dispatch table of requests, subscriptions and rate limit.

The client parses what the client sends (positionally, as IB's own clients write it), asks the market and
the contract book for values, and hands them to the layouts in `sim/layouts.py` to be written in the field
order of the negotiated server version. Streaming subscriptions are advanced by the server's clock pump.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ibot.exchange.hours import listed_hours_for
from ibot.model.instruments import Instrument, SecType
from ibot.sim import account as acct
from ibot.sim import layouts as L  # noqa: N812  (L.TICK_PRICE reads like the message it is)
from ibot.sim import layouts_orders as LO  # noqa: N812
from ibot.sim import listing
from ibot.sim import versions as v
from ibot.sim.closed import until_text
from ibot.sim.contracts import ContractQuery
from ibot.sim.history import HistoricalSub, HistoryDesk
from ibot.sim.market import QuoteTicks
from ibot.sim.messages import DELAYED_TWIN, Incoming, TickType
from ibot.sim.orders import commission_view, execution_view, open_order_view, status_view
from ibot.sim.pacing import MessageRate
from ibot.sim.reference import MarketRules, depth_exchanges, matching_symbols
from ibot.sim.requests import (
    NO_ID,
    REQUESTS,
    UNKNOWN_MESSAGE_CODE,
    UNSERVED_CODE,
    RequestError,
    request_id,
    unknown_text,
    unserved_text,
)
from ibot.sim.wire import (
    API_PREFIX,
    UNSET_DOUBLE,
    FrameBuffer,
    PriceFields,
    WireError,
    encode_field,
    frame,
    frame_raw,
    parse_bool,
    parse_float,
    parse_int,
)

if TYPE_CHECKING:
    from ibot.sim.account import AccountSnapshot
    from ibot.sim.orders import Execution, SimOrder
    from ibot.sim.server import SimServer

log = logging.getLogger("ibot.sim")

# Not an IB message: the simulator's lockstep acknowledgement (SimServer(lockstep=True)). A client that has
# processed every bar up to `bar_end_s` sends [LOCKSTEP_ACK, 1, bar_end_s, interval_s]; the market clock then
# stops at each multiple of interval_s (after the 5-s bar ending there) until the client acknowledges it.
LOCKSTEP_ACK = 9001
_LOCKSTEP_ACK_TEXT = str(LOCKSTEP_ACK)
_INCOMING_NAMES = {int(m): m.name for m in Incoming}
_VERSION_RE = re.compile(r"^v(\d+)(?:\.\.(\d+))?(?:\s+(.*))?$")


class HandshakeError(ValueError):
    """A client whose opening bytes or version range the simulator cannot accept."""


def negotiate(text: str) -> int:
    """The server version for a client's ``vMIN..MAX[ options]``: min(our max, its max), or HandshakeError."""
    m = _VERSION_RE.match(text.strip())
    if m is None:
        raise HandshakeError(f"handshake: cannot read the version range {text!r}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    chosen = min(v.MAX_CLIENT_VERSION, hi)
    if chosen < v.MIN_CLIENT_VERSION or chosen < lo:
        raise HandshakeError(
            f"handshake: client range v{lo}..{hi} does not meet ours "
            f"v{v.MIN_CLIENT_VERSION}..{v.MAX_CLIENT_VERSION}"
        )
    return chosen


class Fields:
    """Positional reader of one incoming message's fields (after the message id)."""

    __slots__ = ("_fields", "_i", "msg")

    def __init__(self, fields: list[str], msg: str) -> None:
        self._fields = fields
        self._i = 1
        self.msg = msg

    def text(self) -> str:
        if self._i >= len(self._fields):
            raise WireError(f"{self.msg}: message ended at field {self._i}")
        s = self._fields[self._i]
        self._i += 1
        return s

    def integer(self, name: str, default: int = 0) -> int:
        value = parse_int(self.text(), f"{self.msg}.{name}")
        return default if value is None else value

    def number(self, name: str) -> float | None:
        return parse_float(self.text(), f"{self.msg}.{name}")

    def flag(self, name: str) -> bool:
        return parse_bool(self.text(), f"{self.msg}.{name}")

    def skip(self, n: int = 1) -> None:
        for _ in range(n):
            self.text()

    def more(self) -> bool:
        return self._i < len(self._fields)

    def whole(self) -> list[str]:
        """Every field of the message, its id first (for the order layouts' own decoders)."""
        return self._fields

    def contract(self) -> ContractQuery:
        """IB's 12 contract fields: conId, symbol, secType, lastTradeDateOrContractMonth, strike, right,
        multiplier, exchange, primaryExchange, currency, localSymbol, tradingClass."""
        con_id = self.integer("conId")
        symbol, sec_type, last_trade = self.text(), self.text(), self.text()
        strike = self.number("strike")
        right, multiplier, exchange, primary, currency, local, tclass = (self.text() for _ in range(7))
        return ContractQuery(
            con_id=con_id,
            symbol=symbol.strip(),
            sec_type=sec_type.strip(),
            last_trade=last_trade.strip(),
            strike=strike or None,
            right=right,
            multiplier=multiplier.strip(),
            exchange=exchange.strip(),
            primary_exchange=primary.strip(),
            currency=currency.strip(),
            local_symbol=local.strip(),
            trading_class=tclass.strip(),
        )


# --- subscriptions ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class MarketDataSub:
    req_id: int
    inst: Instrument
    delayed: bool
    sent: dict[int, int] = field(default_factory=dict)  # tick type -> value last sent (prices in ticks)
    frames: TickFrames | None = None  # built on the first quote, for the session's server version
    closed: bool = False  # subscribed while the market was closed, and it has not opened since
    frozen: bool = False  # ... and answered as frozen data (market data type 2 / 4) until it opens


@dataclass(slots=True)
class TickByTickSub:
    req_id: int
    inst: Instrument
    kind: str  # Last, AllLast, BidAsk, MidPoint
    last_second: int
    last_sent: tuple[float, ...] = ()


@dataclass(slots=True)
class RealTimeBarSub:
    req_id: int
    inst: Instrument
    what: str
    rth: bool
    next_start: int


@dataclass(slots=True)
class DepthSub:
    req_id: int
    inst: Instrument
    rows: int
    smart: bool
    book: dict[tuple[int, int], tuple[float, int]] = field(default_factory=dict)


Subscription = MarketDataSub | TickByTickSub | RealTimeBarSub | DepthSub | HistoricalSub

_PRICE_TAIL = ("price", "size", "attrMask")
_POSITION_TAIL = ("position", "avgCost")
_SIZE_TAIL = ("size",)
_STRING_TAIL = ("value",)
_BID, _ASK, _LAST = TickType.BID, TickType.ASK, TickType.LAST
_BID_SIZE, _ASK_SIZE, _LAST_SIZE = TickType.BID_SIZE, TickType.ASK_SIZE, TickType.LAST_SIZE
_HIGH, _LOW, _CLOSE, _OPEN = TickType.HIGH, TickType.LOW, TickType.CLOSE, TickType.OPEN
_VOLUME, _LAST_TIMESTAMP = TickType.VOLUME, TickType.LAST_TIMESTAMP


class TickFrames:
    """TICK_PRICE / TICK_SIZE / TICK_STRING messages of one market-data subscription, appended to a buffer.

    The leading fields (message id, version, request id, tick type, its delayed twin for delayed data) are
    encoded once from the layouts; prices come from a per-grid cache: the bytes are those of `Layout.frame`.
    """

    __slots__ = ("_price", "_prices", "_size", "_string")

    def __init__(self, sub: MarketDataSub, server_version: int) -> None:
        def tick_type(t: TickType) -> int:
            return int(DELAYED_TWIN[t]) if sub.delayed else int(t)

        r = sub.req_id
        self._price = {
            t: L.TICK_PRICE.head(server_version, _PRICE_TAIL, reqId=r, tickType=tick_type(t))
            for t in (_BID, _ASK, _LAST, _HIGH, _LOW, _CLOSE, _OPEN)
        }
        self._size = {
            t: L.TICK_SIZE.head(server_version, _SIZE_TAIL, reqId=r, tickType=tick_type(t))
            for t in (_BID_SIZE, _ASK_SIZE, _LAST_SIZE, _VOLUME)
        }
        self._string = {
            _LAST_TIMESTAMP: L.TICK_STRING.head(
                server_version, _STRING_TAIL, reqId=r, tickType=tick_type(_LAST_TIMESTAMP)
            )
        }
        self._prices = PriceFields(sub.inst.from_ticks)

    def price(self, out: bytearray, tick: TickType, ticks: int, size: int, attr: int) -> None:
        out += frame_raw(self._price[tick] + self._prices(ticks) + b"%d\0%d\0" % (size, attr))

    def size(self, out: bytearray, tick: TickType, size: int) -> None:
        out += frame_raw(self._size[tick] + b"%d\0" % size)

    def string(self, out: bytearray, tick: TickType, value: str) -> None:
        out += frame_raw(self._string[tick] + encode_field(value))


# Live data on a CONTFUT (IB: "Continuous futures cannot be used with real time data or to place orders,
# but only for historical data"): refused as a request IB does not validate.
CONTFUT_LIVE = (321, "Error validating request.-'secType' : cause - CONTFUT is for historical data only")
_MARKET_RULES = MarketRules.of_catalog()  # CONTRACT_DATA's marketRuleIds and MARKET_RULE share these ids
_ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,DAY,GAT,GTC,GTD,IOC,LIMIT,LMT,MKT,OCA,STP,STPLMT,TRAIL"
# reqScannerParameters: the document of an installation without scanner: no instruments, locations or scans.
_EMPTY_SCANNER_PARAMETERS = '<?xml version="1.0" encoding="UTF-8"?>\n<ScanParameterResponse/>'
ACCOUNT_UPDATE_INTERVAL_S = 180  # account values and portfolio without a position change: every 3 minutes
_MAX_STREAMED_SECONDS = 10  # a fast clock streams at most the last 10 seconds of each step


class SimClient:
    """One client on the socket: from the handshake to the close."""

    def __init__(
        self, server: SimServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, no: int
    ):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.no = no
        self.client_id: int | None = None
        self.server_version = 0
        self.started = False
        self.closed = False
        self.read_ns = 0  # perf_counter_ns of the last read from the client
        self.market_data_type = 1
        self.subs: dict[int, Subscription] = {}
        self.positions_subscribed = False
        self.positions_multi: set[int] = set()  # reqPositionsMulti ids that stream position updates
        self.account_subscribed = False
        self.auto_open_orders = False
        self.pnl_subs: dict[int, int | None] = {}  # reqId -> conId (None: the whole account)
        self.lockstep_interval = 0  # seconds between the bars this client acknowledges (0: not in lockstep)
        self.acked_s = 0  # the latest bar end it acknowledged
        self.awaiting_s = 0  # the bar end the clock waits for it to acknowledge (0: none)
        self.last_bar_end = 0  # end of the last 5-s real-time bar sent to it
        self._sent_account: dict[tuple[str, str], str] = {}
        self._account_sent_s = 0  # market second of the last account update sent (reqAccountUpdates)
        self._position_heads: dict[int, bytes] = {}  # con_id -> POSITION_DATA's encoded leading fields
        self._sent_portfolio: dict[int, tuple[Any, ...]] = {}
        self._sent_pnl: dict[int, tuple[Any, ...]] = {}
        self.rate = MessageRate(server.limits.max_messages_per_second)
        # While a clock step streams or one read's requests are answered: the messages, written at once.
        self._batch: bytearray | None = None
        self.history = HistoryDesk(self)
        self.handlers: dict[int, Callable[[Fields], Awaitable[None] | None]] = {
            Incoming.START_API: self._start_api,
            Incoming.REQ_IDS: self._req_ids,
            Incoming.REQ_CURRENT_TIME: self._req_current_time,
            Incoming.REQ_MANAGED_ACCTS: self._req_managed_accts,
            Incoming.REQ_MARKET_DATA_TYPE: self._req_market_data_type,
            Incoming.PLACE_ORDER: self._place_order,
            Incoming.CANCEL_ORDER: self._cancel_order,
            Incoming.REQ_GLOBAL_CANCEL: self._req_global_cancel,
            Incoming.REQ_POSITIONS: self._req_positions,
            Incoming.CANCEL_POSITIONS: self._cancel_positions,
            Incoming.REQ_POSITIONS_MULTI: self._req_positions_multi,
            Incoming.CANCEL_POSITIONS_MULTI: self._cancel_positions_multi,
            Incoming.REQ_OPEN_ORDERS: self._req_open_orders,
            Incoming.REQ_ALL_OPEN_ORDERS: self._req_all_open_orders,
            Incoming.REQ_AUTO_OPEN_ORDERS: self._req_auto_open_orders,
            Incoming.REQ_COMPLETED_ORDERS: self._req_completed_orders,
            Incoming.REQ_EXECUTIONS: self._req_executions,
            Incoming.REQ_ACCT_DATA: self._req_account_updates,
            Incoming.REQ_ACCOUNT_UPDATES_MULTI: self._req_account_updates_multi,
            Incoming.CANCEL_ACCOUNT_UPDATES_MULTI: _ignore,
            Incoming.REQ_ACCOUNT_SUMMARY: self._req_account_summary,
            Incoming.CANCEL_ACCOUNT_SUMMARY: _ignore,
            Incoming.REQ_CONTRACT_DATA: self._req_contract_details,
            Incoming.REQ_MKT_DATA: self._req_mkt_data,
            Incoming.CANCEL_MKT_DATA: self._cancel_versioned,
            Incoming.REQ_MKT_DEPTH: self._req_mkt_depth,
            Incoming.CANCEL_MKT_DEPTH: self._cancel_versioned,
            Incoming.REQ_TICK_BY_TICK_DATA: self._req_tick_by_tick,
            Incoming.CANCEL_TICK_BY_TICK_DATA: self._cancel_plain,
            Incoming.REQ_REAL_TIME_BARS: self._req_real_time_bars,
            Incoming.CANCEL_REAL_TIME_BARS: self._cancel_versioned,
            Incoming.REQ_HISTORICAL_DATA: self.history.req_historical_data,
            Incoming.CANCEL_HISTORICAL_DATA: self.history.cancel_historical,
            Incoming.REQ_HEAD_TIMESTAMP: self.history.req_head_timestamp,
            Incoming.CANCEL_HEAD_TIMESTAMP: _ignore,
            Incoming.REQ_PNL: self._req_pnl,
            Incoming.CANCEL_PNL: self._cancel_pnl,
            Incoming.REQ_PNL_SINGLE: self._req_pnl_single,
            Incoming.CANCEL_PNL_SINGLE: self._cancel_pnl,
            Incoming.REQ_MATCHING_SYMBOLS: self._req_matching_symbols,
            Incoming.REQ_MARKET_RULE: self._req_market_rule,
            Incoming.REQ_MKT_DEPTH_EXCHANGES: self._req_mkt_depth_exchanges,
            Incoming.REQ_SEC_DEF_OPT_PARAMS: self._req_sec_def_opt_params,
            Incoming.REQ_FAMILY_CODES: self._req_family_codes,
            Incoming.REQ_USER_INFO: self._req_user_info,
            Incoming.REQ_HISTORICAL_TICKS: self.history.req_historical_ticks,
            Incoming.REQ_SOFT_DOLLAR_TIERS: self._req_soft_dollar_tiers,
            Incoming.REQ_SMART_COMPONENTS: self._req_smart_components,
            Incoming.REQ_NEWS_PROVIDERS: self._req_news_providers,
            Incoming.REQ_SCANNER_PARAMETERS: self._req_scanner_parameters,
            LOCKSTEP_ACK: self._lockstep_ack,
        }

    # --- I/O ---------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"client {self.client_id}" if self.client_id is not None else f"connection #{self.no}"

    def send(self, layout: L.Layout, **values: Any) -> None:
        if self.closed:
            return
        self._write(layout.frame(self.server_version, **values))

    def send_fields(self, fields: list[Any]) -> None:
        """A message already laid out by `sim/layouts_orders.py` (id first)."""
        if self.closed:
            return
        self._write(frame(fields))

    def _write(self, data: bytes | bytearray) -> None:
        """To the clock step's batch while one streams, else to the socket; nothing once the client is gone
        (the transport is closing): the client then stops, its read loop forgets it."""
        if self._batch is not None:
            self._batch += data
        elif self.closed:
            return
        elif self.writer.transport.is_closing():
            self._connection_gone()
        else:
            self.writer.write(data)

    def _flush(self) -> None:
        batch, self._batch = self._batch, None
        if batch:
            self._write(batch)

    def begin_batch(self) -> bool:
        """Collect what is sent from now on into one socket write (`end_batch`); False when a batch is
        already open (its owner flushes it)."""
        if self._batch is not None or self.closed:
            return False
        self._batch = bytearray()
        return True

    def end_batch(self) -> None:
        self._flush()

    def _connection_gone(self) -> None:
        if not self.closed:
            log.info("%s: connection closing; streaming stopped", self.name)
            self.close()

    def send_order(self, order: SimOrder, with_open_order: bool) -> None:
        """OPEN_ORDER (on acknowledgement, modify, PendingCancel, Filled, Inactive) then ORDER_STATUS."""
        if self.closed:
            return
        sv = self.server_version
        if with_open_order:
            self._write(frame_raw(LO.open_order_payload(open_order_view(order, self.server.account), sv)))
        self._write(frame(LO.encode_order_status(status_view(order), sv)))

    def send_what_if(self, view: LO.OpenOrderView) -> None:
        """The answer to a what-if order: one OPEN_ORDER (its state carries the margins), no ORDER_STATUS."""
        if not self.closed:
            self._write(frame_raw(LO.open_order_payload(view, self.server_version)))

    def send_execution(self, req_id: int, execution: Execution) -> None:
        if self.closed:
            return
        view = execution_view(execution, self.server.account)
        self._write(frame_raw(LO.execution_payload(req_id, view, self.server_version)))

    def send_commission(self, execution: Execution) -> None:
        self.send_fields(LO.encode_commission_report(commission_view(execution)))

    def send_position(self, inst: Instrument, qty: int, avg_cost: float) -> None:
        """POSITION_DATA: the fields before position / avgCost are encoded once per instrument."""
        if self.closed:
            return
        head = self._position_heads.get(inst.con_id)
        if head is None:
            head = self._position_heads[inst.con_id] = L.POSITION_DATA.head(
                self.server_version,
                _POSITION_TAIL,
                account=self.server.account,
                **_contract_values(inst),
                exchange=inst.exchange,
                currency=inst.currency,
                localSymbol=inst.local_symbol or inst.symbol,
                tradingClass=inst.trading_class,
            )
        self._write(frame_raw(head + encode_field(qty) + encode_field(avg_cost)))

    def error(self, req_id: int, code: int, text: str) -> None:
        if log.isEnabledFor(logging.INFO):  # a reject or cancel per order: no formatting unless logged
            log.info("%s <- error %s id=%s: %s", self.name, code, req_id, text.replace("\n", " "))
        self.send(
            L.ERR_MSG,
            reqId=req_id,
            errorCode=code,
            errorString=text,
            advancedOrderRejectJson="",
            errorTime=int(self.server.market.now_s * 1000),
        )

    def close(self, abort: bool = False) -> None:
        if self.closed:
            return
        batch, self._batch = self._batch, None
        self.closed = True
        self.subs.clear()
        if batch and not abort and not self.writer.transport.is_closing():
            self.writer.write(batch)  # what the client was told before the close (error 326) goes out first
        if abort:
            self.writer.transport.abort()
        else:
            self.writer.close()

    async def run(self) -> None:
        """Serve the connection until the client or the server closes it."""
        buf = FrameBuffer()
        try:
            if not await self._handshake(buf):
                return
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                self.read_ns = time.perf_counter_ns()  # when these bytes arrived (benchmarks read it)
                batch = self._batch is None  # the answers to one read go out in one write
                if batch:
                    self._batch = bytearray()
                try:
                    for fields in buf.feed(data):
                        await self._dispatch(fields)
                        if self.closed:
                            break
                finally:
                    if batch:
                        self._flush()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except WireError as e:
            log.warning("%s: unreadable stream, closing: %s", self.name, e)
        finally:
            self.server.forget(self)
            self.close()

    async def _handshake(self, buf: FrameBuffer) -> bool:
        opening = b""  # the first bytes: a client older than v100 (IbPy) sends its bare version ("62\0")
        while True:
            prefix = buf.take_raw(len(API_PREFIX))
            if prefix is not None:
                break
            data = await self.reader.read(4096)
            if not data:
                return False
            buf.feed_raw(data)
            opening += data
            if not API_PREFIX.startswith(opening[: len(API_PREFIX)]):  # refused now: it waits for an answer
                prefix = opening[: len(API_PREFIX)]
                break
        if prefix != API_PREFIX:
            log.warning("%s: not a TWS API client (opening bytes %r), closing", self.name, prefix)
            self.close()
            return False
        msgs = buf.feed(b"")
        while not msgs:
            data = await self.reader.read(4096)
            if not data:
                return False
            msgs = buf.feed(data)
        text = "\0".join(msgs[0])
        try:
            self.server_version = negotiate(text)
        except HandshakeError as e:
            log.warning("%s refused: %s", self.name, e)
            self.close()
            return False
        now = datetime.fromtimestamp(self.server.market.now_s, UTC)
        self.writer.write(frame([self.server_version, f"{now:%Y%m%d %H:%M:%S} UTC"]))
        log.info("%s: handshake %s -> server version %d", self.name, text.strip(), self.server_version)
        for extra in msgs[1:]:  # a client that sent START_API in the same packet
            await self._dispatch(extra)
        return True

    async def _dispatch(self, fields: list[str]) -> None:
        if not fields:
            return
        now = asyncio.get_running_loop().time()
        if fields[0] != _LOCKSTEP_ACK_TEXT and not self.rate.allow(now):  # acks are the clock's, not requests
            limit = self.server.limits.max_messages_per_second
            self.error(
                NO_ID, 100, f"Max rate of messages per second has been exceeded:max={limit} rec={limit + 1}"
            )
            return
        try:
            msg_id = int(fields[0])
        except ValueError:
            self.error(NO_ID, 320, f"Error reading request:Message id {fields[0]!r} is not a number")
            return
        handler = self.handlers.get(msg_id)
        name = _INCOMING_NAMES.get(msg_id) or f"message {msg_id}"
        if not self.started and msg_id != Incoming.START_API:
            log.info("%s: %s before START_API; ignored", self.name, name)
            return
        shape = REQUESTS.get(msg_id)
        if msg_id != LOCKSTEP_ACK and (shape is None or not shape.exists(self.server_version)):
            log.info("%s: message %s is not in server version %d", self.name, name, self.server_version)
            self.error(NO_ID, UNKNOWN_MESSAGE_CODE, unknown_text(msg_id, self.server_version))
            return
        if handler is None:
            assert shape is not None
            req_id = request_id(shape, fields)
            log.info("%s: %s is not simulated; answered with an error on id %s", self.name, name, req_id)
            self.error(NO_ID if req_id is None else req_id, UNSERVED_CODE, unserved_text(msg_id, shape))
            return
        reader = Fields(fields, name)
        try:
            result = handler(reader)
            if result is not None:
                await result
        except WireError as e:
            self.error(NO_ID, 320, f"Error reading request:{e}")
        except RequestError as e:
            self.error(e.req_id, e.code, e.text)

    # --- connection requests --------------------------------------------------------------------------------
    def _start_api(self, f: Fields) -> None:
        f.skip()  # version
        client_id = f.integer("clientId")
        if self.started:
            return
        if not self.server.claim(client_id, self):
            log.info("connection #%d: client id %d already in use; error 326 and close", self.no, client_id)
            self.error(
                NO_ID,
                326,
                "Unable connect as the client id is already in use. Retry with a unique client id.",
            )
            self.close()
            return
        self.client_id = client_id
        self.started = True
        log.info("%s: startApi (server version %d)", self.name, self.server_version)
        self.send(L.MANAGED_ACCTS, accounts=self.server.account)
        self.send(L.NEXT_VALID_ID, orderId=self.server.next_order_id)
        for code, text in self.server.farm_status():
            self.error(NO_ID, code, text)

    def _req_ids(self, f: Fields) -> None:
        self.send(L.NEXT_VALID_ID, orderId=self.server.next_order_id)

    def _req_current_time(self, f: Fields) -> None:
        log.info("%s reqCurrentTime", self.name)
        self.send(L.CURRENT_TIME, time=int(self.server.market.now_s))

    def _req_managed_accts(self, f: Fields) -> None:
        self.send(L.MANAGED_ACCTS, accounts=self.server.account)

    def _req_market_data_type(self, f: Fields) -> None:
        f.skip()
        kind = f.integer("marketDataType", 1)
        log.info("%s reqMarketDataType %d", self.name, kind)
        self.market_data_type = kind if kind in (1, 2, 3, 4) else 1

    def _lockstep_ack(self, f: Fields) -> None:
        f.skip()  # version
        end = f.integer("barEnd")
        interval = f.integer("interval")
        if interval <= 0:
            raise _req_error(NO_ID, 321, f"Error validating request.-'interval': {interval} must be > 0")
        self.lockstep_interval = interval
        self.acked_s = max(self.acked_s, end)
        if self.awaiting_s and self.acked_s >= self.awaiting_s:
            self.awaiting_s = 0
        self.server.lockstep_acknowledged()

    # --- orders ------------------------------------------------------------------------------------------
    def _place_order(self, f: Fields) -> None:
        try:
            msg = LO.decode_place_order(f.whole(), self.server_version)
        except LO.OrderRequestFieldError as e:
            self.error(e.order_id if e.order_id is not None else NO_ID, 320, f"Error reading request:{e}")
            return
        assert self.client_id is not None
        self.server.broker.place(self.client_id, msg)

    def _cancel_order(self, f: Fields) -> None:
        try:
            msg = LO.decode_cancel_order(f.whole(), self.server_version)
        except LO.OrderRequestFieldError as e:
            self.error(e.order_id if e.order_id is not None else NO_ID, 320, f"Error reading request:{e}")
            return
        assert self.client_id is not None
        log.info("%s cancelOrder %d", self.name, msg.order_id)
        self.server.broker.cancel(self.client_id, msg.order_id)

    def _req_global_cancel(self, f: Fields) -> None:
        log.info("%s reqGlobalCancel", self.name)
        self.server.broker.global_cancel()

    def _send_open_orders(self, orders: list[SimOrder]) -> None:
        for order in orders:
            self.send_order(order, True)
        self.send(L.OPEN_ORDER_END)

    def _req_open_orders(self, f: Fields) -> None:
        """This client's live orders (IB: client 0 also gets the orders it auto-bound)."""
        log.info("%s reqOpenOrders", self.name)
        self._send_open_orders(self.server.broker.open_orders(self.client_id))

    def _req_all_open_orders(self, f: Fields) -> None:
        """Every client's live orders (not bound to this client)."""
        log.info("%s reqAllOpenOrders", self.name)
        self._send_open_orders(self.server.broker.open_orders(None))

    def _req_auto_open_orders(self, f: Fields) -> None:
        f.skip()
        on = f.flag("bAutoBind")
        if self.client_id != 0:
            text = "Only API connections with clientId set to 0 can set the auto bind orders property."
            self.error(NO_ID, 327, text)
            return
        self.auto_open_orders = on

    def _req_completed_orders(self, f: Fields) -> None:
        LO.decode_req_completed_orders(f.whole())
        log.info("%s reqCompletedOrders", self.name)
        for order in self.server.broker.completed_orders():
            view = open_order_view(order, self.server.account, completed=True)
            if not self.closed:
                self._write(frame_raw(LO.completed_order_payload(view, self.server_version)))
        self.send(L.COMPLETED_ORDERS_END)

    def _req_executions(self, f: Fields) -> None:
        """Fills matching the filter, each followed by its commission report, then the end marker: fills
        that happened while this client was away included (the account lives on the server)."""
        flt = LO.decode_req_executions(f.whole(), self.server_version)
        log.info("%s reqExecutions reqId=%d", self.name, flt.req_id)
        for e in self.server.broker.select_executions(flt):
            self.send_execution(flt.req_id, e)
            self.send_commission(e)
        self.send(L.EXECUTION_DATA_END, reqId=flt.req_id)

    # --- account sync --------------------------------------------------------------------------------------
    def _req_positions(self, f: Fields) -> None:
        log.info("%s reqPositions", self.name)
        self.positions_subscribed = True
        for inst, qty, avg_cost in self.server.positions():
            self.send_position(inst, qty, avg_cost)
        self.send(L.POSITION_END)

    def _cancel_positions(self, f: Fields) -> None:
        self.positions_subscribed = False

    def _req_positions_multi(self, f: Fields) -> None:
        """POSITION_MULTI per position of the account (the one account, model "": a model code names none of
        them), then the end; the request then streams position changes until cancelPositionsMulti."""
        f.skip()
        req_id = f.integer("reqId")
        account, model = f.text().strip(), f.text().strip()
        mine = account in ("", self.server.account) and not model
        log.info("%s reqPositionsMulti reqId=%d account=%r model=%r", self.name, req_id, account, model)
        if mine:
            for inst, qty, avg_cost in self.server.positions():
                self.send_position_multi(req_id, inst, qty, avg_cost)
            self.positions_multi.add(req_id)
        self.send(L.POSITION_MULTI_END, reqId=req_id)

    def _cancel_positions_multi(self, f: Fields) -> None:
        f.skip()
        req_id = f.integer("reqId")
        log.info("%s cancelPositionsMulti reqId=%d", self.name, req_id)
        self.positions_multi.discard(req_id)

    def send_position_multi(self, req_id: int, inst: Instrument, qty: int, avg_cost: float) -> None:
        """POSITION_MULTI: the figures of POSITION_DATA, for one reqPositionsMulti."""
        self.send(
            L.POSITION_MULTI,
            reqId=req_id,
            account=self.server.account,
            **_contract_values(inst),
            exchange=inst.exchange,
            currency=inst.currency,
            localSymbol=inst.local_symbol or inst.symbol,
            tradingClass=inst.trading_class,
            position=qty,
            avgCost=avg_cost,
            modelCode="",
        )

    def _req_account_updates(self, f: Fields) -> None:
        f.skip()
        subscribe = f.flag("subscribe")
        log.info("%s reqAccountUpdates subscribe=%s", self.name, subscribe)
        self.account_subscribed = subscribe
        if not subscribe:
            return
        self._sent_account.clear()
        self._sent_portfolio.clear()
        snap = self.server.broker.snapshot()
        self._send_account(snap)
        self.send(L.ACCT_DOWNLOAD_END, account=self.server.account)

    def _send_account(self, snap: AccountSnapshot) -> None:
        """ACCT_VALUE of every value that changed since last sent, PORTFOLIO_VALUE per changed position."""
        name = self.server.account
        sent = self._sent_account
        for key, value, currency in acct.account_values(snap):
            if sent.get((key, currency)) != value:
                sent[(key, currency)] = value
                self.send(L.ACCT_VALUE, key=key, value=value, currency=currency, accountName=name)
        for p in snap.positions:
            row = (p.quantity, float(p.mark), float(p.market_value), float(p.avg_cost), float(p.unrealized))
            if self._sent_portfolio.get(p.inst.con_id) == row or (
                not p.quantity and p.inst.con_id not in (self._sent_portfolio)
            ):
                continue
            self._sent_portfolio[p.inst.con_id] = row
            self.send(
                L.PORTFOLIO_VALUE,
                **_contract_values(p.inst),
                primaryExchange=p.inst.primary_exchange or p.inst.exchange,
                currency=p.inst.currency,
                localSymbol=p.inst.local_symbol or p.inst.symbol,
                tradingClass=p.inst.trading_class,
                position=p.quantity,
                marketPrice=float(p.mark),
                marketValue=acct.money(p.market_value),
                averageCost=float(p.avg_cost),
                unrealizedPNL=acct.money(p.unrealized),
                realizedPNL=acct.money(p.realized),
                accountName=name,
            )
        self._account_sent_s = int(self.server.market.now_s)
        now = datetime.fromtimestamp(self._account_sent_s, UTC)
        self.send(L.ACCT_UPDATE_TIME, time=f"{now:%H:%M}")

    def wants_account(self) -> bool:
        return self.started and not self.closed and (self.account_subscribed or bool(self.pnl_subs))

    def account_due(self, now_s: int, positions_changed: bool) -> bool:
        """An account update is due to this reqAccountUpdates subscriber: a fill changed a position, or the
        update interval passed since the last one (TWS: "unless there is a position change this information
        is updated at a fixed interval of three minutes")."""
        if not (self.account_subscribed and self.started and not self.closed):
            return False
        return positions_changed or now_s - self._account_sent_s >= ACCOUNT_UPDATE_INTERVAL_S

    def on_account(self, snap: AccountSnapshot, positions_changed: bool, pnl_moves: bool) -> None:
        """The server's push: changed account values and portfolio when due; changed P&L of subscriptions.
        Written to the socket at once."""
        opened = self.begin_batch()
        try:
            if self.account_due(int(self.server.market.now_s), positions_changed):
                self._send_account(snap)
            if pnl_moves:
                for req_id, con_id in self.pnl_subs.items():
                    self._send_pnl(req_id, con_id, snap, force=False)
        finally:
            if opened:
                self.end_batch()

    def _req_account_updates_multi(self, f: Fields) -> None:
        f.skip()
        req_id = f.integer("reqId")
        account, model = f.text() or self.server.account, f.text()
        log.info("%s reqAccountUpdatesMulti reqId=%d %s", self.name, req_id, account)
        for key, value, currency in self.server.account_values():
            self.send(
                L.ACCOUNT_UPDATE_MULTI,
                reqId=req_id,
                account=self.server.account,
                modelCode=model,
                key=key,
                value=value,
                currency=currency,
            )
        self.send(L.ACCOUNT_UPDATE_MULTI_END, reqId=req_id)

    def _req_account_summary(self, f: Fields) -> None:
        f.skip()
        req_id = f.integer("reqId")
        f.skip()  # group: the simulator has one account, so "All" and any group name are the same
        tags = f.text().split(",")
        log.info("%s reqAccountSummary reqId=%d", self.name, req_id)
        for key, value, currency in acct.summary_values(self.server.broker.snapshot(), tags):
            self.send(
                L.ACCOUNT_SUMMARY,
                reqId=req_id,
                account=self.server.account,
                tag=key,
                value=value,
                currency=currency,
            )
        self.send(L.ACCOUNT_SUMMARY_END, reqId=req_id)

    def _req_pnl(self, f: Fields) -> None:
        req_id = f.integer("reqId")
        log.info("%s reqPnL reqId=%d", self.name, req_id)
        self.pnl_subs[req_id] = None
        self._send_pnl(req_id, None, self.server.broker.snapshot(), force=True)

    def _req_pnl_single(self, f: Fields) -> None:
        req_id = f.integer("reqId")
        f.skip(2)  # account, modelCode
        con_id = f.integer("conId")
        log.info("%s reqPnLSingle reqId=%d conId=%d", self.name, req_id, con_id)
        self.pnl_subs[req_id] = con_id
        self._send_pnl(req_id, con_id, self.server.broker.snapshot(), force=True)

    def _cancel_pnl(self, f: Fields) -> None:
        req_id = f.integer("reqId")
        self.pnl_subs.pop(req_id, None)
        self._sent_pnl.pop(req_id, None)

    def _send_pnl(self, req_id: int, con_id: int | None, snap: AccountSnapshot, force: bool) -> None:
        """PNL (account) or PNL_SINGLE (one contract): daily, unrealized, realized, from the same snapshot as
        the account values. A contract without a position has no unrealized P&L or value (unset, as IB)."""
        if con_id is None:
            row: tuple[Any, ...] = (snap.daily_pnl, snap.unrealized, snap.realized)
            if force or self._sent_pnl.get(req_id) != row:
                self._sent_pnl[req_id] = row
                self.send(L.PNL, reqId=req_id, dailyPnL=row[0], unrealizedPnL=row[1], realizedPnL=row[2])
            return
        p = snap.position(con_id)
        if p is None or not p.quantity:
            daily = p.daily_realized if p is not None else Decimal(0)
            realized = p.realized if p is not None else Decimal(0)
            row = (0, daily, UNSET_DOUBLE, realized, UNSET_DOUBLE)
        else:
            row = (p.quantity, p.daily_realized + p.unrealized, p.unrealized, p.realized, p.market_value)
        if force or self._sent_pnl.get(req_id) != row:
            self._sent_pnl[req_id] = row
            self.send(
                L.PNL_SINGLE,
                reqId=req_id,
                pos=row[0],
                dailyPnL=row[1],
                unrealizedPnL=row[2],
                realizedPnL=row[3],
                value=row[4],
            )

    # --- contracts ---------------------------------------------------------------------------------------
    def _req_contract_details(self, f: Fields) -> None:
        f.skip()
        req_id = f.integer("reqId")
        q = f.contract()
        include_expired = f.flag("includeExpired")
        q = replace(q, include_expired=include_expired)
        log.info("%s reqContractDetails %s reqId=%d", self.name, q.describe(), req_id)
        found = self.server.book.match(q, self.server.market.asof())
        if not found:
            self.error(req_id, 200, "No security definition has been found for the request")
            return
        for inst in found:
            self.send(L.CONTRACT_DATA, reqId=req_id, **self._details(inst))
        self.send(L.CONTRACT_DATA_END, reqId=req_id)

    def _details(self, inst: Instrument) -> dict[str, Any]:
        hours = listed_hours_for(inst)
        today = datetime.fromtimestamp(int(self.server.market.now_s), hours.listing_tz).date()  # its day
        fut = inst.sec_type in (SecType.FUT, SecType.CONTFUT)
        tz = hours.listing_tz_label
        last = f"{inst.expiry:%Y%m%d}" if fut and inst.expiry else ""
        last_time = f"{listing.last_trade_time(inst):%H:%M}"
        valid_exchanges = [inst.exchange] if fut else ["SMART", inst.primary_exchange]
        return {
            "symbol": inst.symbol,
            "secType": inst.sec_type.value,
            "lastTradeDateOrContractMonth": f"{last} {last_time} {tz}" if last else "",
            "strike": 0.0,
            "right": "",
            "exchange": inst.exchange,
            "currency": inst.currency,
            "localSymbol": inst.local_symbol or inst.symbol,
            "marketName": inst.trading_class or inst.symbol,
            "tradingClass": inst.trading_class or inst.symbol,
            "conId": inst.con_id,
            "minTick": float(inst.tick_size),
            "multiplier": _plain(inst.multiplier) if fut else "",
            "orderTypes": _ORDER_TYPES,
            "validExchanges": ",".join(valid_exchanges),
            "priceMagnifier": 1,
            "underConId": 0,
            "longName": inst.description,
            "primaryExchange": inst.primary_exchange,
            "contractMonth": inst.contract_month,
            "industry": "",
            "category": "",
            "subcategory": "",
            "timeZoneId": tz,
            "tradingHours": hours.describe(today, 5, False),
            "liquidHours": hours.describe(today, 5, True),
            "evRule": "",
            "evMultiplier": 0,
            "secIdList": [],
            "aggGroup": 2147483647,
            "underSymbol": inst.symbol if fut else "",
            "underSecType": "IND" if fut else "",
            "marketRuleIds": _MARKET_RULES.rule_ids(inst, valid_exchanges),
            "realExpirationDate": last,
            "stockType": "" if fut else "COMMON",
            "sizeMinTick": 1,
            "minSize": 1,
            "sizeIncrement": 1,
            "suggestedSizeIncrement": 1,
        }

    def _req_matching_symbols(self, f: Fields) -> None:
        """Catalog symbols starting with the pattern (IB's symbol search, a prefix match here)."""
        req_id = f.integer("reqId")
        pattern = f.text()
        found = matching_symbols(self.server.book.products(), pattern)
        log.info(
            "%s reqMatchingSymbols %r reqId=%d -> %s",
            self.name,
            pattern,
            req_id,
            ",".join(s.symbol for s in found) or "none",
        )
        contracts = [
            {
                "conId": s.con_id,
                "symbol": s.symbol,
                "secType": s.sec_type,
                "primaryExchange": s.primary_exchange,
                "currency": s.currency,
                "derivativeSecTypes": [{"secType": t} for t in s.derivative_sec_types],
                "description": s.description,
                "issuerId": "",
            }
            for s in found
        ]
        self.send(L.SYMBOL_SAMPLES, reqId=req_id, contracts=contracts)

    def _req_market_rule(self, f: Fields) -> None:
        """The price increments of a rule id from contract details; an unknown id gets no increments (an
        empty answer, so the client's call returns rather than waits)."""
        rule_id = f.integer("marketRuleId")
        increments = _MARKET_RULES.increments(rule_id)
        if increments is None:
            log.info(
                "%s reqMarketRule %d: no such rule (ids %s); empty", self.name, rule_id, _MARKET_RULES.ids()
            )
            increments = []
        else:
            log.info("%s reqMarketRule %d", self.name, rule_id)
        self.send(
            L.MARKET_RULE,
            marketRuleId=rule_id,
            priceIncrements=[{"lowEdge": i.low_edge, "increment": i.increment} for i in increments],
        )

    def _req_mkt_depth_exchanges(self, f: Fields) -> None:
        found = depth_exchanges(self.server.book.products())
        log.info("%s reqMktDepthExchanges -> %s", self.name, ",".join(d.exchange for d in found))
        self.send(
            L.MKT_DEPTH_EXCHANGES,
            descriptions=[
                {
                    "exchange": d.exchange,
                    "secType": d.sec_type,
                    "listingExch": d.listing_exchange,
                    "serviceDataType": d.service_data_type,
                    "aggGroup": d.agg_group,
                }
                for d in found
            ],
        )

    def _req_sec_def_opt_params(self, f: Fields) -> None:
        """The catalog has no options: no parameters, just the end marker."""
        req_id = f.integer("reqId")
        symbol, fop_exchange, sec_type = f.text(), f.text(), f.text()
        con_id = f.integer("underlyingConId")
        log.info(
            "%s reqSecDefOptParams %s %s %s conId=%d reqId=%d: no options",
            self.name,
            symbol,
            sec_type,
            fop_exchange or "(any exchange)",
            con_id,
            req_id,
        )
        self.send(L.SECURITY_DEFINITION_OPTION_PARAMETER_END, reqId=req_id)

    def _req_family_codes(self, f: Fields) -> None:
        log.info("%s reqFamilyCodes", self.name)
        self.send(L.FAMILY_CODES, familyCodes=[{"accountID": self.server.account, "familyCodeStr": ""}])

    def _req_user_info(self, f: Fields) -> None:
        req_id = f.integer("reqId")  # below MIN_SERVER_VER_USER_INFO the message does not exist (REQUESTS)
        log.info("%s reqUserInfo reqId=%d", self.name, req_id)
        self.send(L.USER_INFO, reqId=req_id, whiteBrandingId="")

    # The simulator has no soft-dollar tiers, news providers or scanner: each of these asks for a list, and
    # the honest answer is an empty one.
    def _req_soft_dollar_tiers(self, f: Fields) -> None:
        req_id = f.integer("reqId")
        log.info("%s reqSoftDollarTiers reqId=%d: none", self.name, req_id)
        self.send(L.SOFT_DOLLAR_TIERS, reqId=req_id, tiers=[])

    def _req_smart_components(self, f: Fields) -> None:
        req_id = f.integer("reqId")
        exchange = f.text()
        log.info("%s reqSmartComponents %r reqId=%d: none", self.name, exchange, req_id)
        self.send(L.SMART_COMPONENTS, reqId=req_id, components=[])

    def _req_news_providers(self, f: Fields) -> None:
        log.info("%s reqNewsProviders: none", self.name)
        self.send(L.NEWS_PROVIDERS, providers=[])

    def _req_scanner_parameters(self, f: Fields) -> None:
        log.info("%s reqScannerParameters: no scan types", self.name)
        self.send(L.SCANNER_PARAMETERS, xml=_EMPTY_SCANNER_PARAMETERS)

    def resolve_live(self, req_id: int, q: ContractQuery, what: str) -> Instrument:
        """`resolve` for live data (quotes, depth, tick-by-tick, 5-s bars): a CONTFUT has none at IB."""
        inst = self.resolve(req_id, q)
        if inst.sec_type is SecType.CONTFUT:
            log.info("%s %s %s reqId=%d: CONTFUT refused", self.name, what, inst.symbol, req_id)
            raise RequestError(CONTFUT_LIVE[0], CONTFUT_LIVE[1], req_id)
        return inst

    def resolve(self, req_id: int, q: ContractQuery) -> Instrument:
        """Exactly one contract for a data request: IB answers 200 when none or several match."""
        found = self.server.book.match(q, self.server.market.asof())
        if not found:
            raise _req_error(req_id, 200, "No security definition has been found for the request")
        if len(found) > 1:
            raise _req_error(
                req_id,
                200,
                f"The contract description specified for {q.symbol or q.describe()} is ambiguous.",
            )
        return found[0]

    # --- streaming market data -----------------------------------------------------------------------------
    def check_new_sub(self, req_id: int) -> None:
        if req_id in self.subs:
            raise _req_error(req_id, 322, f"Error processing request.-'Duplicate ticker id {req_id}'")

    def _req_mkt_data(self, f: Fields) -> None:
        f.skip()
        req_id = f.integer("reqId")
        q = f.contract()
        if q.sec_type.upper() == "BAG":
            for _ in range(f.integer("comboLegsCount")):
                f.skip(4)
        if f.flag("deltaNeutral"):
            f.skip(3)
        f.skip()  # genericTickList
        snapshot = f.flag("snapshot")
        inst = self.resolve_live(req_id, q, "reqMktData")
        log.info("%s reqMktData %s reqId=%d%s", self.name, inst.key, req_id, " snapshot" if snapshot else "")
        self.check_new_sub(req_id)
        delayed = self.market_data_type in (3, 4)
        now = int(self.server.market.now_s)
        sub = MarketDataSub(req_id, inst, delayed)
        sub.closed = self.log_if_closed(req_id, inst, "reqMktData", now)
        sub.frozen = sub.closed and self.market_data_type in (2, 4)
        kind = (4 if delayed else 2) if sub.frozen else (3 if delayed else 1)
        self.send(L.MARKET_DATA_TYPE, reqId=req_id, marketDataType=kind)
        self.send(
            L.TICK_REQ_PARAMS,
            reqId=req_id,
            minTick=float(inst.tick_size),
            bboExchange="",
            snapshotPermissions=3,
        )
        if sub.closed:
            self._send_closed_quote(sub, now)
        elif self.server.data_flowing(self):
            self._stream_quote(sub, now)
        if snapshot:
            self.send(L.TICK_SNAPSHOT_END, reqId=req_id)
        else:
            self.subs[req_id] = sub

    def _stream_quote(self, sub: MarketDataSub, second: int) -> None:
        self._stream_quotes(sub, second - 1, second)

    def _stream_quotes(self, sub: MarketDataSub, old_s: int, new_s: int) -> None:
        """Every second the clock passed (at most the last `_MAX_STREAMED_SECONDS`), as a real feed would."""
        first = max(old_s + 1, new_s - _MAX_STREAMED_SECONDS + 1)
        frames = sub.frames
        if frames is None:
            frames = sub.frames = TickFrames(sub, self.server_version)
        out = bytearray()
        for q in self.server.market.quote_ticks(sub.inst, first, new_s):
            if q is not None:
                if sub.closed:
                    self._market_opened(sub)
                self._send_quote(sub, frames, q, out)
        if out:
            self._write(out)

    def log_if_closed(self, req_id: int, inst: Instrument, what: str, now: int) -> bool:
        """Log, per subscription, that its market is closed and until when; True when it is."""
        opens = self.server.market.closed_until(inst, now)
        if opens is None:
            return False
        log.info(
            "%s %s %s reqId=%d: market closed until %s",
            self.name,
            what,
            inst.key,
            req_id,
            until_text(inst, opens),
        )
        return True

    def _send_closed_quote(self, sub: MarketDataSub, now: int) -> None:
        """A closed market as TWS shows it (see `ibot.sim.closed`): the last session's last price, close,
        high, low, open and volume; bid and ask -1 with size 0 (ib_async: nan), or, for frozen data (type
        2 / 4), the last bid and ask with their sizes. Live quotes follow when the market opens."""
        q = self.server.market.last_session_quote(sub.inst, now)
        if q is None:
            return
        frames = sub.frames
        if frames is None:
            frames = sub.frames = TickFrames(sub, self.server_version)
        out = bytearray()
        sent = sub.sent
        sent[_LAST] = q.bid
        frames.price(out, _LAST, q.bid, q.last_size, 0)
        frames.size(out, _LAST_SIZE, q.last_size)
        sent[_VOLUME] = q.volume
        frames.size(out, _VOLUME, q.volume)
        for tick, ticks in ((_HIGH, q.high), (_LOW, q.low), (_CLOSE, q.bid), (_OPEN, q.open)):
            sent[tick] = ticks
            frames.price(out, tick, ticks, 0, 0)
        if sub.frozen:
            for tick, size_tick, ticks, size in (
                (_BID, _BID_SIZE, q.bid, q.bid_size),
                (_ASK, _ASK_SIZE, q.bid + 1, q.ask_size),
            ):
                sent[tick], sent[size_tick] = ticks, size
                frames.price(out, tick, ticks, size, 0)
                frames.size(out, size_tick, size)
        self._write(out)
        if not sub.frozen:  # no quote on a closed market: -1 (the sent record forces a resend at the open)
            for tick in (_BID, _ASK):
                sent[tick] = -1
                self.send(
                    L.TICK_PRICE,
                    reqId=sub.req_id,
                    tickType=int(DELAYED_TWIN[tick]) if sub.delayed else int(tick),
                    price=-1.0,
                    size=0,
                    attrMask=0,
                )

    def _market_opened(self, sub: MarketDataSub) -> None:
        sub.closed = False
        log.info("%s reqMktData %s reqId=%d: market open; live quotes", self.name, sub.inst.key, sub.req_id)
        if sub.frozen:
            sub.frozen = False
            self.send(L.MARKET_DATA_TYPE, reqId=sub.req_id, marketDataType=3 if sub.delayed else 1)

    @staticmethod
    def _send_quote(sub: MarketDataSub, frames: TickFrames, q: QuoteTicks, out: bytearray) -> None:
        """The ticks of one second's quote that differ from what the client has (IB sends changes only): a
        new trade (time, price, size), volume, high, low, close, open, then bid and ask with their sizes."""
        sent = sub.sent
        if q.traded and sent.get(_LAST_TIMESTAMP) != q.second:
            frames.string(out, _LAST_TIMESTAMP, str(q.second))
            sent[_LAST_TIMESTAMP] = q.second
            sent[_LAST] = q.bid
            frames.price(out, _LAST, q.bid, q.last_size, 0)
            frames.size(out, _LAST_SIZE, q.last_size)
        elif _LAST not in sent:
            sent[_LAST] = q.bid
            frames.price(out, _LAST, q.bid, q.last_size, 0)
        if sent.get(_VOLUME) != q.volume:
            sent[_VOLUME] = q.volume
            frames.size(out, _VOLUME, q.volume)
        for tick, ticks in ((_HIGH, q.high), (_LOW, q.low), (_CLOSE, q.close), (_OPEN, q.open)):
            if sent.get(tick) != ticks:
                sent[tick] = ticks
                frames.price(out, tick, ticks, 0, 0)
        for tick, size_tick, ticks, size in (
            (_BID, _BID_SIZE, q.bid, q.bid_size),
            (_ASK, _ASK_SIZE, q.bid + 1, q.ask_size),
        ):
            if sent.get(tick) != ticks or sent.get(size_tick) != size:
                sent[tick], sent[size_tick] = ticks, size
                frames.price(out, tick, ticks, size, 1)
                frames.size(out, size_tick, size)

    def _req_tick_by_tick(self, f: Fields) -> None:
        req_id = f.integer("reqId")
        q = f.contract()
        kind = f.text()
        if kind not in ("Last", "AllLast", "BidAsk", "MidPoint"):
            raise _req_error(req_id, 321, f"Error validating request.-'tickType': {kind!r} is not valid")
        inst = self.resolve_live(req_id, q, "reqTickByTickData")
        log.info("%s reqTickByTickData %s %s reqId=%d", self.name, inst.key, kind, req_id)
        self.check_new_sub(req_id)
        self.log_if_closed(req_id, inst, "reqTickByTickData", int(self.server.market.now_s))
        self.subs[req_id] = TickByTickSub(req_id, inst, kind, int(self.server.market.now_s))

    def _req_real_time_bars(self, f: Fields) -> None:
        f.skip()
        req_id = f.integer("reqId")
        q = f.contract()
        f.skip()  # barSize: IB serves 5-second bars only
        what = f.text().upper() or "TRADES"
        rth = f.flag("useRTH")
        inst = self.resolve_live(req_id, q, "reqRealTimeBars")
        log.info("%s reqRealTimeBars %s %s reqId=%d", self.name, inst.key, what, req_id)
        self.check_new_sub(req_id)
        now = int(self.server.market.now_s)
        self.log_if_closed(req_id, inst, "reqRealTimeBars", now)
        self.subs[req_id] = RealTimeBarSub(req_id, inst, what, rth, now - now % 5)

    def _req_mkt_depth(self, f: Fields) -> None:
        f.skip()
        req_id = f.integer("reqId")
        q = f.contract()
        rows = max(1, min(f.integer("numRows", 5), 20))
        smart = f.flag("isSmartDepth")
        inst = self.resolve_live(req_id, q, "reqMktDepth")
        log.info("%s reqMktDepth %s rows=%d reqId=%d", self.name, inst.key, rows, req_id)
        self.check_new_sub(req_id)
        self.log_if_closed(req_id, inst, "reqMktDepth", int(self.server.market.now_s))
        sub = DepthSub(req_id, inst, rows, smart)
        self.subs[req_id] = sub
        if self.server.data_flowing(self):
            self._stream_depth(sub, int(self.server.market.now_s))

    def _cancel_versioned(self, f: Fields) -> None:
        f.skip()
        self._cancel(f.integer("reqId"), f.msg)

    def _cancel_plain(self, f: Fields) -> None:
        self._cancel(f.integer("reqId"), f.msg)

    def _cancel(self, req_id: int, what: str) -> None:
        log.info("%s %s reqId=%d", self.name, what, req_id)
        self.subs.pop(req_id, None)

    # --- the clock pump -------------------------------------------------------------------------------------
    def on_clock(self, old_s: int, new_s: int, wall: float) -> None:
        """Stream what happened on the market between whole seconds old_s and new_s (inclusive of new_s),
        written to the socket at once; nothing (and the client stops) once the client's socket is closing."""
        if not self.started or self.closed or not self.subs:
            return
        if self.writer.transport.is_closing():
            self._connection_gone()
            return
        if not self.server.data_flowing(self):
            return
        batch = self._batch is None  # else a request being answered holds one: stream into it
        if batch:
            self._batch = bytearray()
        try:
            for sub in list(self.subs.values()):
                if isinstance(sub, MarketDataSub):
                    if new_s != old_s:
                        self._stream_quotes(sub, old_s, new_s)
                elif isinstance(sub, TickByTickSub):
                    self._stream_tick_by_tick(sub, new_s)
                elif isinstance(sub, RealTimeBarSub):
                    self._stream_real_time_bars(sub, new_s)
                elif isinstance(sub, DepthSub):
                    if new_s != old_s:
                        self._stream_depth(sub, new_s)
                elif isinstance(sub, HistoricalSub):
                    self.history.stream(sub, new_s, wall)
        finally:
            if batch:
                self._flush()

    def streaming(self) -> bool:
        """A started, open client connection with at least one streaming subscription."""
        return self.started and not self.closed and bool(self.subs)

    def _stream_tick_by_tick(self, sub: TickByTickSub, now: int) -> None:
        market = self.server.market
        if now <= sub.last_second:
            return
        start = max(sub.last_second + 1, now - 60)
        sub.last_second = now
        if sub.kind in ("Last", "AllLast"):
            tick_type = 1 if sub.kind == "Last" else 2
            for second, price, size in market.trades(sub.inst, start, now + 1)[-50:]:
                self.send(
                    L.TICK_BY_TICK_LAST,
                    reqId=sub.req_id,
                    tickType=tick_type,
                    time=second,
                    price=price,
                    size=size,
                    mask=0,
                    exchange=sub.inst.exchange,
                    specialConditions="",
                )
            return
        q = market.quote(sub.inst, now)
        if q is None:
            return
        if sub.kind == "BidAsk":
            state: tuple[float, ...] = (q.bid, q.ask, q.bid_size, q.ask_size)
            if state != sub.last_sent:
                sub.last_sent = state
                self.send(
                    L.TICK_BY_TICK_BID_ASK,
                    reqId=sub.req_id,
                    tickType=3,
                    time=now,
                    bidPrice=q.bid,
                    askPrice=q.ask,
                    bidSize=q.bid_size,
                    askSize=q.ask_size,
                    mask=0,
                )
        else:
            mid = (q.bid + q.ask) / 2
            if (mid,) != sub.last_sent:
                sub.last_sent = (mid,)
                self.send(L.TICK_BY_TICK_MIDPOINT, reqId=sub.req_id, tickType=4, time=now, midPoint=mid)

    def _stream_real_time_bars(self, sub: RealTimeBarSub, now: int) -> None:
        market = self.server.market
        sent = 0
        while sub.next_start + 5 <= now and sent < 500:
            a = sub.next_start
            sub.next_start += 5
            rows = market.bars(sub.inst, a, a + 5, 5, sub.what, sub.rth)
            if not rows:
                opens = market.closed_until(sub.inst, a)
                if opens is not None:  # closed: no bars until the open (a weekend is 10,000 of them)
                    sub.next_start = max(sub.next_start, min(opens - opens % 5, now - now % 5))
                continue
            b = rows[0]
            self.send(
                L.REAL_TIME_BARS,
                reqId=sub.req_id,
                time=a,
                open=b.open,
                high=b.high,
                low=b.low,
                close=b.close,
                volume=b.volume,
                wap=b.wap,
                count=b.count,
            )
            self.last_bar_end = a + 5
            sent += 1
        if sub.next_start + 5 <= now:  # far behind (a very fast clock): skip ahead, as a slow reader would
            sub.next_start = now - now % 5

    def _stream_depth(self, sub: DepthSub, now: int) -> None:
        rows = self.server.market.depth(sub.inst, now, sub.rows)
        for side, pos, price, size in rows:
            key = (side, pos)
            old = sub.book.get(key)
            if old == (price, size):
                continue
            operation = 0 if old is None else 1  # 0 insert, 1 update
            sub.book[key] = (price, size)
            if sub.smart:
                self.send(
                    L.MARKET_DEPTH_L2,
                    reqId=sub.req_id,
                    position=pos,
                    marketMaker=sub.inst.exchange,
                    operation=operation,
                    side=side,
                    price=price,
                    size=size,
                    isSmartDepth=True,
                )
            else:
                self.send(
                    L.MARKET_DEPTH,
                    reqId=sub.req_id,
                    position=pos,
                    operation=operation,
                    side=side,
                    price=price,
                    size=size,
                )

    def market_data_ids(self) -> list[int]:
        return [r for r, s in self.subs.items() if isinstance(s, (MarketDataSub, TickByTickSub, DepthSub))]

    def drop_market_data(self) -> None:
        """Forget every streaming subscription (after 1101: the client must subscribe again)."""
        self.subs.clear()


def _ignore(f: Fields) -> None:
    return None


def _req_error(req_id: int, code: int, text: str) -> RequestError:
    return RequestError(code, text, req_id)


def _plain(d: Any) -> str:
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _contract_values(inst: Instrument) -> dict[str, Any]:
    return {
        "conId": inst.con_id,
        "symbol": inst.symbol,
        "secType": inst.sec_type.value,
        "lastTradeDateOrContractMonth": f"{inst.expiry:%Y%m%d}" if inst.expiry else "",
        "strike": 0.0,
        "right": "",
        "multiplier": _plain(inst.multiplier) if inst.sec_type is SecType.FUT else "",
    }


__all__ = ["Fields", "HandshakeError", "RequestError", "SimClient", "negotiate"]

"""Historical data as IB serves it: reqHistoricalData, reqHeadTimeStamp, reqHistoricalTicks and their cancels,
for one client connection (`HistoryDesk`), with IB's validation, pacing, errors and scripted faults.

What a request gets, in order of the checks (IB's texts, see the constants below):
- 200 for a contract IB does not list: an expired month without includeExpired, a month not listed yet, an
  exchange IB renamed (GLOBEX).
- 321 for a malformed bar size, duration or end date; 10339 for an end date on a CONTFUT; 162 "Time length
  exceed max." for a duration longer than IB's step-size table allows for the bar size.
- 162 "...pacing violation" (`ibot.sim.pacing`), 322 past the open-request limit.
- then the scripted faults (`Faults.history_*`): no permission (162), never answered, no data (162), 165.
- else the bars, or 162 "HMDS query returned no data" when the range has none (before the month's first bar,
  after its last trade, a weekend). Intraday bars are dated by their start (epoch seconds with formatDate=2,
  exchange time otherwise); daily bars `yyyyMMdd` of the session's trade date, whatever formatDate. The bar
  holding the market clock is served as it stands.
A CONTFUT's bars are each session's front month (the catalog's roll rule), spliced unadjusted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibot.exchange.hours import listed_hours_for
from ibot.model.instruments import Instrument, SecType
from ibot.sim import layouts as L  # noqa: N812
from ibot.sim.market import TICK_KINDS, BarRow, HistoricalTickRow, MarketError
from ibot.sim.pacing import BID_ASK_WEIGHT, PACING_TEXT
from ibot.sim.requests import RequestError

if TYPE_CHECKING:
    from ibot.sim.client import Fields, SimClient
    from ibot.sim.server import SimServer

log = logging.getLogger("ibot.sim")

HMDS_ERROR = "Historical Market Data Service error message:"
HMDS_QUERY = "Historical Market Data Service query message:"
PACING_VIOLATION = HMDS_ERROR + PACING_TEXT
TIME_LENGTH_EXCEEDED = HMDS_ERROR + "Time length exceed max."
CONTFUT_END_CODE = 10339
CONTFUT_END_TEXT = "Setting end date/time for continuous future security type is not allowed"
NOT_FOUND_CODE = 366
NO_SECURITY = "No security definition has been found for the request"


def no_data_text(inst: Instrument, what: str) -> str:
    """162's text for a range without bars: ``...HMDS query returned no data: MESM5@CME Trades``."""
    return f"{HMDS_ERROR}HMDS query returned no data: {inst.key}@{inst.exchange} {what.title()}"


def no_permission_text(inst: Instrument) -> str:
    """162's text without a market data subscription: ``...No market data permissions for CME FUT``."""
    venue = inst.exchange if inst.sec_type is not SecType.STK else inst.primary_exchange or inst.exchange
    sec = SecType.FUT.value if inst.sec_type is SecType.CONTFUT else inst.sec_type.value
    return f"{HMDS_ERROR}No market data permissions for {venue} {sec}"


def cancelled_text(req_id: int) -> str:
    return f"{HMDS_ERROR}API historical data query cancelled: {req_id}"


def not_found_text(req_id: int) -> str:
    return f"No historical data query found for ticker id:{req_id}"


# --- parameters -------------------------------------------------------------------------------------------

# IB's legal bar sizes (its 321 text lists them), in seconds; "1 day", "1 week", "1 month" are calendar bars.
_LEGAL_BARS = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30, "1 min": 60, "2 mins": 120,
    "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900, "20 mins": 1200, "30 mins": 1800,
    "1 hour": 3600, "2 hours": 7200, "3 hours": 10800, "4 hours": 14400, "8 hours": 28800,
}  # fmt: skip
_CALENDAR_BARS = {"day": (86_400, "D"), "week": (7 * 86_400, "W"), "w": (7 * 86_400, "W")}
_CALENDAR_BARS |= {"month": (30 * 86_400, "M"), "m": (30 * 86_400, "M"), "d": (86_400, "D")}
_LEGAL_TEXT = (
    "1 secs, 5 secs, 10 secs, 15 secs, 30 secs, 1 min, 2 mins, 3 mins, 5 mins, 10 mins, 15 mins, 20 mins, "
    "30 mins, 1 hour, 2 hours, 3 hours, 4 hours, 8 hours, 1 day, 1W, 1M"
)
_DAY = 86_400
# IB "Historical Data Limitations", step sizes: (duration, smallest bar, largest bar) in seconds. A bar size
# may be asked for at most the longest duration of a row that allows it (1 secs: 1800 S; 1 min: 1 D; 2 mins:
# 2 D; 3..20 mins: 1 W; 30 mins..8 hours: 1 M); daily and longer bars have no limit here.
STEP_SIZES = (
    (60, 1, 60),
    (120, 1, 120),
    (1800, 1, 1800),
    (3600, 5, 3600),
    (14_400, 10, 10_800),
    (28_800, 30, 28_800),
    (_DAY, 60, _DAY),
    (2 * _DAY, 120, _DAY),
    (7 * _DAY, 180, 7 * _DAY),
    (30 * _DAY, 1800, 30 * _DAY),
    (365 * _DAY, _DAY, 30 * _DAY),
)
_UNIT_SECONDS = {"S": 1, "D": _DAY, "W": 7 * _DAY, "M": 30 * _DAY, "Y": 365 * _DAY}
_MAX_BARS = 100_000
_MAX_HISTORICAL_TICKS = 1000  # IB: numberOfTicks, "max currently 1000 per request"


def max_duration_seconds(bar_s: int) -> int | None:
    """The longest duration IB's step-size table allows for bars of `bar_s` seconds (None: no limit)."""
    if bar_s >= _DAY:
        return None
    allowed = [d for d, lo, hi in STEP_SIZES if lo <= bar_s <= hi]
    return max(allowed) if allowed else None


def parse_bar_size(text: str) -> tuple[int, str]:
    """IB's barSizeSetting (``"5 secs"``, ``"1 min"``, ``"1 day"``, ``"1 week"``, ``"1 month"``) ->
    (seconds, calendar unit ""/"D"/"W"/"M"); anything else is IB's 321 with its list of legal sizes.
    Intraday sizes are IB's exact spellings ("1 secs", "1 min", "2 mins"; "1 sec" is refused, as IB does);
    calendar bars are read as "1 day", "1 week", "1 month" or "1W", "1M"."""
    parts = text.split()
    bad = RequestError(
        321,
        f"Error validating request.-'bS' : cause - Historical data bar size setting is invalid. Legal ones "
        f"are: {_LEGAL_TEXT} (got {text!r})",
    )
    if len(parts) == 1 and parts[0][:1].isdigit():  # "1W", "1M", "1D"
        parts = [parts[0][:-1], parts[0][-1]]
    if len(parts) != 2 or not parts[0].isdigit():
        raise bad
    n, unit = int(parts[0]), parts[1].lower()
    if n == 1 and unit.rstrip("s") in _CALENDAR_BARS:
        return _CALENDAR_BARS[unit.rstrip("s")]
    seconds = _LEGAL_BARS.get(f"{n} {unit}")
    if seconds is None:
        raise bad
    return seconds, ""


def parse_duration(text: str) -> tuple[int, str]:
    """durationStr ``"N S|D|W|M|Y"`` -> (N, unit); else 321."""
    parts = text.split()
    if (
        len(parts) != 2
        or not parts[0].isdigit()
        or int(parts[0]) <= 0
        or parts[1].upper() not in _UNIT_SECONDS
    ):
        raise RequestError(
            321,
            "Error validating request.-'bX' : cause - Historical data query duration must be an integer "
            f"above 0 then one of S, D, W, M, Y, e.g. '1 D' (got {text!r})",
        )
    return int(parts[0]), parts[1].upper()


def check_step(duration: str, bar_text: str, bar_s: int) -> None:
    """162 "Time length exceed max." for a duration longer than IB's step-size table allows for the bar."""
    n, unit = parse_duration(duration)
    limit = max_duration_seconds(bar_s)
    if limit is not None and n * _UNIT_SECONDS[unit] > limit:
        raise RequestError(162, TIME_LENGTH_EXCEEDED)


def parse_end(text: str, tz: ZoneInfo, now_s: int) -> int:
    """endDateTime: "" (now), ``yyyymmdd-hh:mm:ss`` (UTC), ``yyyymmdd hh:mm:ss [zone]`` (else exchange's)."""
    s = text.strip()
    if not s:
        return now_s
    try:
        if "-" in s and " " not in s:
            return int(datetime.strptime(s, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC).timestamp())
        parts = s.split()
        zone = tz
        if len(parts) >= 3:
            zone = ZoneInfo(parts[2])
        if len(parts) == 1:
            naive = datetime.strptime(parts[0], "%Y%m%d").replace(hour=23, minute=59, second=59)
        else:
            naive = datetime.strptime(parts[0] + parts[1], "%Y%m%d%H:%M:%S")
        return int(naive.replace(tzinfo=zone).timestamp())
    except (ValueError, ZoneInfoNotFoundError):
        raise RequestError(
            321, f"Error validating request.-'endDateTime': the date, time, or time-zone {text!r} is invalid"
        ) from None


def duration_start(text: str, end_s: int, inst: Instrument, rth: bool) -> int:
    """Start of the durationStr ``"N S|D|W|M|Y"`` ending at `end_s` (D counts trading sessions)."""
    n, unit = parse_duration(text)
    end = datetime.fromtimestamp(end_s, UTC)
    if unit == "S":
        return end_s - n
    if unit == "D":
        hours = listed_hours_for(inst)
        wins = hours.windows(end_s - (n + 10) * 86_400 * 2, end_s, rth)
        wins = [w for w in wins if w[1] < end_s]
        return wins[-n][1] if len(wins) >= n else end_s - n * 86_400
    if unit == "W":
        return int((end - timedelta(weeks=n)).timestamp())
    if unit == "M":
        return int((end - timedelta(days=30 * n)).timestamp())
    return int((end - timedelta(days=365 * n)).timestamp())


def format_date(ts: int, tz: ZoneInfo, fmt: int, daily: bool = False, d: date | None = None) -> str:
    """A bar's date as IB writes it: daily and longer bars ``yyyyMMdd`` of their trade date (any formatDate);
    intraday bars epoch seconds (formatDate 2) or ``yyyyMMdd HH:mm:ss zone`` in exchange time."""
    if daily:
        return f"{d or datetime.fromtimestamp(ts, tz).date():%Y%m%d}"
    if fmt == 2:
        return str(ts)
    return f"{datetime.fromtimestamp(ts, tz):%Y%m%d %H:%M:%S} {tz.key}"


def bar_values(b: BarRow, tz: ZoneInfo, fmt: int, daily: bool) -> dict[str, Any]:
    return {
        "date": format_date(b.ts, tz, fmt, daily, b.trade_date),
        "open": b.open,
        "high": b.high,
        "low": b.low,
        "close": b.close,
        "volume": b.volume,
        "wap": b.wap,
        "barCount": b.count,
    }


@dataclass(slots=True)
class HistoricalSub:
    """A keepUpToDate historical request: updates of the current bar as the clock moves."""

    req_id: int
    inst: Instrument
    bar_s: int
    unit: str
    what: str
    rth: bool
    format_date: int
    start_s: int
    last_wall: float = 0.0
    last_bar: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class BarRequest:
    """A reqHistoricalData as read from the wire."""

    req_id: int
    inst: Instrument
    end_text: str
    bar_text: str
    duration: str
    rth: bool
    what: str
    format_date: int
    keep: bool

    @property
    def key(self) -> tuple[Any, ...]:
        """What makes two requests identical (IB's 15-second rule)."""
        return (self.inst.con_id, self.inst.sec_type.value, self.end_text, self.duration, self.bar_text,
                self.what, self.rth, self.format_date, self.keep)  # fmt: skip


class HistoryDesk:
    """The historical-data requests of one client connection."""

    def __init__(self, client: SimClient) -> None:
        self.client = client
        self.unanswered: dict[int, BarRequest] = {}  # requests a fault keeps open (never answered)

    @property
    def _server(self) -> SimServer:
        return self.client.server

    def open_count(self) -> int:
        """Open historical requests of this client: keepUpToDate subscriptions and unanswered requests."""
        subs = sum(isinstance(s, HistoricalSub) for s in self.client.subs.values())
        return subs + len(self.unanswered)

    # --- reqHistoricalData -----------------------------------------------------------------------------
    def req_historical_data(self, f: Fields) -> None:
        req_id = f.integer("reqId")
        q = f.contract()
        include_expired = f.flag("includeExpired")
        end_text, bar_text, duration = f.text().strip(), f.text().strip(), f.text().strip()
        rth = f.flag("useRTH")
        what = f.text().upper() or "TRADES"
        fmt = f.integer("formatDate", 1)
        if q.sec_type.upper() == "BAG":
            for _ in range(f.integer("comboLegsCount")):
                f.skip(4)
        keep = f.flag("keepUpToDate") if f.more() else False
        try:
            inst = self.client.resolve(req_id, replace(q, include_expired=include_expired))
            req = BarRequest(req_id, inst, end_text, bar_text, duration, rth, what, fmt, keep)
            log.info(
                "%s reqHistoricalData %s%s end=%r %s %s %s reqId=%d%s",
                self.client.name,
                inst.key,
                " CONTFUT" if inst.sec_type is SecType.CONTFUT else "",
                end_text,
                duration,
                bar_text,
                what,
                req_id,
                " keepUpToDate" if keep else "",
            )
            self._serve(req)
        except RequestError as e:
            raise RequestError(e.code, e.text, req_id) from None

    def _serve(self, req: BarRequest) -> None:
        client, server = self.client, self._server
        market, inst = server.market, req.inst
        bar_s, unit = parse_bar_size(req.bar_text)
        if req.keep and req.end_text:
            raise RequestError(
                321, "Error validating request.-'endDateTime': must be empty with keepUpToDate"
            )
        if inst.sec_type is SecType.CONTFUT and req.end_text:
            raise RequestError(CONTFUT_END_CODE, CONTFUT_END_TEXT)
        tz = listed_hours_for(inst).listing_tz
        end_s = parse_end(req.end_text, tz, int(market.now_s))
        if server.limits.step_sizes:
            check_step(req.duration, req.bar_text, bar_s)
        else:
            parse_duration(req.duration)
        start_s = duration_start(req.duration, end_s, inst, req.rth)
        if not unit and (end_s - start_s) // bar_s > _MAX_BARS:
            raise RequestError(162, TIME_LENGTH_EXCEEDED)
        weight = BID_ASK_WEIGHT if req.what == "BID_ASK" else 1
        loop_now = asyncio.get_running_loop().time()
        if server.pacing.check(req.key, (inst.con_id, inst.exchange, req.what), loop_now, weight):
            raise RequestError(162, PACING_VIOLATION)
        limit = server.limits.max_open_historical
        if limit and self.open_count() >= limit:
            raise RequestError(
                322,
                f"Error processing request.-'Maximum number of open historical requests ({limit}) exceeded'",
            )
        if req.keep:
            client.check_new_sub(req.req_id)
        faults = server.faults.history
        if faults.permission_missing(inst.symbol):
            raise RequestError(162, no_permission_text(inst))
        if faults.take_unanswered():
            log.info("%s reqHistoricalData reqId=%d: fault, never answered", client.name, req.req_id)
            self.unanswered[req.req_id] = req
            return
        if faults.take_no_data():
            raise RequestError(162, no_data_text(inst, req.what))
        message = faults.take_query_message()
        if message is not None:
            client.error(req.req_id, 165, HMDS_QUERY + message)
        try:
            bars = self._bars(inst, start_s, end_s, bar_s, req.what, req.rth, unit)
        except MarketError as e:
            raise RequestError(162, f"{HMDS_ERROR}{e}") from None
        if not bars and not req.keep:
            raise RequestError(162, no_data_text(inst, req.what))
        client.send(
            L.HISTORICAL_DATA,
            reqId=req.req_id,
            startDate=format_date(start_s, tz, 1),
            endDate=format_date(end_s, tz, 1),
            bars=[bar_values(b, tz, req.format_date, bool(unit)) for b in bars],
        )
        if req.keep:
            sub = HistoricalSub(req.req_id, inst, bar_s, unit, req.what, req.rth, req.format_date, start_s)
            client.log_if_closed(req.req_id, inst, "reqHistoricalData keepUpToDate", int(market.now_s))
            if bars:
                sub.last_bar = tuple(bar_values(bars[-1], tz, req.format_date, bool(unit)).values())
            client.subs[req.req_id] = sub

    def _bars(
        self, inst: Instrument, start_s: int, end_s: int, bar_s: int, what: str, rth: bool, unit: str
    ) -> list[BarRow]:
        """The bars of a month or stock, or a CONTFUT's: each session from the month that was front on its
        trade date (the catalog's roll rule), unadjusted; a bar cut by a roll keeps the new month's part."""
        market = self._server.market
        if inst.sec_type is not SecType.CONTFUT:
            return list(market.bars(inst, start_s, end_s, bar_s, what, rth, unit))
        book = self._server.book
        segments: list[tuple[Instrument, int, int]] = []
        for d, a, b in listed_hours_for(inst).windows(start_s, end_s, False):
            month = book.front(inst.symbol, d)
            if segments and segments[-1][0] == month:
                segments[-1] = (month, segments[-1][1], b)
            else:
                segments.append((month, a, b))
        out: list[BarRow] = []
        for month, a, b in segments:
            rows = market.bars(month, max(a, start_s), min(b, end_s), bar_s, what, rth, unit)
            if out and rows and rows[0].ts <= out[-1].ts:
                del out[-1]
            out.extend(rows)
        return out

    def cancel_historical(self, f: Fields) -> None:
        """A keepUpToDate or unanswered request: 162 "...query cancelled"; any other id: 366, as IB (the
        request is unknown or already answered)."""
        f.skip()
        req_id = f.integer("reqId")
        log.info("%s cancelHistoricalData reqId=%d", self.client.name, req_id)
        sub = self.client.subs.get(req_id)
        if isinstance(sub, HistoricalSub):
            del self.client.subs[req_id]
        elif self.unanswered.pop(req_id, None) is None:
            self.client.error(req_id, NOT_FOUND_CODE, not_found_text(req_id))
            return
        self.client.error(req_id, 162, cancelled_text(req_id))

    # --- reqHeadTimeStamp ------------------------------------------------------------------------------
    def req_head_timestamp(self, f: Fields) -> None:
        req_id = f.integer("reqId")
        q = f.contract()
        include_expired = f.flag("includeExpired")
        f.skip(2)  # useRTH, whatToShow
        fmt = f.integer("formatDate", 1)
        inst = self.client.resolve(req_id, replace(q, include_expired=include_expired))
        log.info("%s reqHeadTimeStamp %s reqId=%d", self.client.name, inst.key, req_id)
        head = self._server.market.head_second(inst)
        self.client.send(
            L.HEAD_TIMESTAMP,
            reqId=req_id,
            headTimestamp=format_date(head, listed_hours_for(inst).listing_tz, fmt),
        )

    # --- reqHistoricalTicks ----------------------------------------------------------------------------
    def req_historical_ticks(self, f: Fields) -> None:
        """reqHistoricalTicks: one HISTORICAL_TICKS_LAST (TRADES), _BID_ASK or HISTORICAL_TICKS (MIDPOINT)
        with every tick and done = true; counted in the historical pacing like reqHistoricalData."""
        client = self.client
        req_id = f.integer("reqId")
        q = f.contract()
        include_expired = f.flag("includeExpired")
        start_text, end_text = f.text().strip(), f.text().strip()
        count = f.integer("numberOfTicks")
        what = f.text().strip().upper()
        rth = f.flag("useRth")
        ignore_size = f.flag("ignoreSize")
        if f.more():
            f.skip()  # miscOptions: IB defines none
        if bool(start_text) == bool(end_text):
            raise RequestError(
                321,
                "Error validating request.-'startDateTime' : cause - exactly one of startDateTime and "
                f"endDateTime must be set (got {start_text!r} and {end_text!r})",
                req_id,
            )
        if not 0 < count <= _MAX_HISTORICAL_TICKS:
            raise RequestError(
                321,
                f"Error validating request.-'numberOfTicks' : cause - {count} is not between 1 and "
                f"{_MAX_HISTORICAL_TICKS}",
                req_id,
            )
        if what not in TICK_KINDS:
            raise RequestError(
                321,
                f"Error validating request.-'whatToShow' : cause - {what!r} is not one of "
                f"{', '.join(TICK_KINDS)}",
                req_id,
            )
        inst = client.resolve(req_id, replace(q, include_expired=include_expired))
        market = self._server.market
        tz = listed_hours_for(inst).listing_tz
        try:
            anchor = parse_end(start_text or end_text, tz, int(market.now_s))
        except RequestError as e:
            raise RequestError(e.code, e.text, req_id) from None
        log.info(
            "%s reqHistoricalTicks %s %s %s=%s n=%d reqId=%d",
            client.name,
            inst.key,
            what,
            "start" if start_text else "end",
            start_text or end_text,
            count,
            req_id,
        )
        request_key = ("ticks", inst.con_id, start_text, end_text, count, what, rth, ignore_size)
        weight = BID_ASK_WEIGHT if what == "BID_ASK" else 1
        loop_now = asyncio.get_running_loop().time()
        if self._server.pacing.check(request_key, (inst.con_id, inst.exchange, what), loop_now, weight):
            raise RequestError(162, PACING_VIOLATION, req_id)
        try:
            rows = market.historical_ticks(inst, what, anchor, bool(start_text), count, rth, ignore_size)
        except MarketError as e:
            raise RequestError(162, f"{HMDS_ERROR}{e}", req_id) from None
        if what == "TRADES":
            client.send(
                L.HISTORICAL_TICKS_LAST, reqId=req_id, ticks=[_last_tick(t, inst) for t in rows], done=True
            )
        elif what == "BID_ASK":
            client.send(
                L.HISTORICAL_TICKS_BID_ASK, reqId=req_id, ticks=[_bid_ask_tick(t) for t in rows], done=True
            )
        else:
            ticks = [{"time": t.second, "price": t.mid, "size": 0} for t in rows]
            client.send(L.HISTORICAL_TICKS, reqId=req_id, ticks=ticks, done=True)

    # --- keepUpToDate streaming ------------------------------------------------------------------------
    def stream(self, sub: HistoricalSub, now: int, wall: float) -> None:
        """HISTORICAL_DATA_UPDATE of the bar holding `now` when it changed (at most once a wall second for
        the same bar; at once for a new bar)."""
        tz = listed_hours_for(sub.inst).listing_tz
        start = now - 40 * 86_400 if sub.unit else now - now % sub.bar_s
        bars = self._bars(sub.inst, max(start, sub.start_s), now + 1, sub.bar_s, sub.what, sub.rth, sub.unit)
        if not bars:
            return
        values = bar_values(bars[-1], tz, sub.format_date, bool(sub.unit))
        key = tuple(values.values())
        new_bar = not sub.last_bar or key[0] != sub.last_bar[0]
        if key == sub.last_bar or (not new_bar and wall - sub.last_wall < 1.0):
            return
        sub.last_bar, sub.last_wall = key, wall
        self.client.send(
            L.HISTORICAL_DATA_UPDATE,
            reqId=sub.req_id,
            barCount=values["barCount"],
            date=values["date"],
            open=values["open"],
            close=values["close"],
            high=values["high"],
            low=values["low"],
            wap=values["wap"],
            volume=values["volume"],
        )


def _last_tick(t: HistoricalTickRow, inst: Instrument) -> dict[str, Any]:
    """A trade as HISTORICAL_TICKS_LAST carries it: tickAttribLast mask 0 (not past limit, reported)."""
    return {
        "time": t.second,
        "mask": 0,
        "price": t.bid,
        "size": t.size,
        "exchange": inst.exchange,
        "specialConditions": "",
    }


def _bid_ask_tick(t: HistoricalTickRow) -> dict[str, Any]:
    """A quote as HISTORICAL_TICKS_BID_ASK carries it: tickAttribBidAsk mask bit 1 askPastHigh (bit 2,
    bidPastLow, never: the bid is the path's price, never below the session's low)."""
    return {
        "time": t.second,
        "mask": 1 if t.ask_past_high else 0,
        "priceBid": t.bid,
        "priceAsk": t.ask,
        "sizeBid": t.bid_size,
        "sizeAsk": t.ask_size,
    }


__all__ = [
    "CONTFUT_END_CODE",
    "CONTFUT_END_TEXT",
    "HMDS_ERROR",
    "HMDS_QUERY",
    "NOT_FOUND_CODE",
    "NO_SECURITY",
    "PACING_VIOLATION",
    "STEP_SIZES",
    "TIME_LENGTH_EXCEEDED",
    "BarRequest",
    "HistoricalSub",
    "HistoryDesk",
    "bar_values",
    "cancelled_text",
    "check_step",
    "duration_start",
    "format_date",
    "max_duration_seconds",
    "no_data_text",
    "no_permission_text",
    "not_found_text",
    "parse_bar_size",
    "parse_duration",
    "parse_end",
]

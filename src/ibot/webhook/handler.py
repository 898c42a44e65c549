"""One POST to the webhook, from bytes to a committed alert: the door's checks in the order they run.

source address (403) -> body size, by Content-Length and by the bytes actually read (413) -> UTF-8 and JSON
(400, naming line and column) -> the secret, in constant time (401) -> the fields (422, naming the field) ->
the ticker (422) -> the intake's own validation, without broker I/O (422) -> the idempotency key (200
"duplicate") -> commit -> 200 "accepted". Every refusal is committed too, with the secret redacted, and places
nothing; only an accepted alert is queued for the worker, which sends it through the order intake.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from ibot.model.instruments import Instrument
from ibot.model.market import ns_to_datetime
from ibot.oms.intake import IntakeRejected, OrderIntake, OrderTicket
from ibot.webhook.alerts import REDACTED, AlertStore, AlertVerdict, client_order_id, redact_secret
from ibot.webhook.schema import AlertError, ParsedAlert, TradingViewAlert, parse_alert, validation_error
from ibot.webhook.settings import WebhookSettings
from ibot.webhook.tickers import UnknownTickerError, instrument_for_ticker

__all__ = ["AlertHandler", "Answer", "alert_key"]

log = logging.getLogger("ibot.webhook")

SOURCE = "webhook"
# the intake's field names in the alert's words
_ALERT_FIELD = {
    "symbol": "ticker",
    "side": "action",
    "order_type": "order",
    "target_position": "position_size",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """What the door answers: an HTTP status and a small JSON body (never the secret)."""

    status: int
    body: dict[str, Any]


class _Refused(Exception):
    def __init__(self, status: int, verdict: AlertVerdict, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.verdict = verdict
        self.field = field
        self.reason = reason


def alert_key(payload: dict[str, Any], parsed: ParsedAlert) -> str:
    """The idempotency key: the alert's explicit `id`, else a digest of its values (secret left out) with its
    time field, so TradingView's retries and replays of one alert share a key and two alerts differ."""
    if parsed.explicit_id:
        material = "id:" + parsed.explicit_id
    else:
        values = {k: v for k, v in payload.items() if k.lower() != "secret"}
        material = "payload:" + json.dumps(values, sort_keys=True, ensure_ascii=True, default=str)
    return "tv-" + hashlib.sha256(material.encode()).hexdigest()[:40]


class AlertHandler:
    """Turns one request into an `Answer`, committing the alert first. Runs on the node's event loop."""

    def __init__(
        self,
        settings: WebhookSettings,
        store: AlertStore,
        intake: OrderIntake,
        market_date: Callable[[], date],
        on_admitted: Callable[[], None],
    ) -> None:
        self.settings = settings
        self._secret = settings.require_secret().encode()
        self._networks = settings.networks()
        self.store = store
        self.intake = intake
        self.market_date = market_date
        self.on_admitted = on_admitted
        self.window = timedelta(seconds=settings.window_seconds)

    async def handle(self, request: Request) -> Answer:
        source = request.client.host if request.client else ""
        body = ""
        try:
            self._check_source(source)
            raw = await self._read(request)
            body = raw.decode("utf-8", errors="replace")
            payload = self._json(raw)
            body = redact_secret(body, self._secret.decode())
            self._check_secret(payload)
            return self._admit(source, body, payload)
        except _Refused as refused:
            secret = self._secret.decode()
            stored = redact_secret(body, secret) if body else ""
            reason = refused.reason.replace(secret, REDACTED)
            alert_id = self.store.record(
                source=source,
                body=stored,
                http_status=refused.status,
                verdict=refused.verdict,
                reason=reason,
                field=refused.field,
            )
            log.info("alert %d from %s refused (%d): %s", alert_id, source, refused.status, reason)
            answer: dict[str, Any] = {"status": str(refused.verdict), "alert_id": alert_id, "error": reason}
            if refused.field:
                answer["field"] = refused.field
            return Answer(refused.status, answer)

    # --- the checks, in order -------------------------------------------------------------------------------
    def _check_source(self, source: str) -> None:
        if not self._networks:
            return
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            address = None
        if address is None or not any(address in net for net in self._networks):
            raise _Refused(403, AlertVerdict.FORBIDDEN, "source", f"source address {source!r} is not allowed")

    async def _read(self, request: Request) -> bytes:
        """The body, never read past the limit (a chunked body has no Content-Length to trust)."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        too_large = _Refused(413, AlertVerdict.REJECTED, "body", f"the body is larger than {limit} bytes")
        if declared is not None:
            if not declared.strip().isdigit():
                raise _Refused(400, AlertVerdict.REJECTED, "body", "Content-Length is not a number")
            if int(declared) > limit:
                raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _json(self, raw: bytes) -> dict[str, Any]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(
                400, AlertVerdict.REJECTED, "body", f"the body is not UTF-8 (byte {exc.start})"
            ) from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            reason = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            raise _Refused(400, AlertVerdict.REJECTED, "body", reason) from None
        except RecursionError:
            raise _Refused(400, AlertVerdict.REJECTED, "body", "invalid JSON: nested too deeply") from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise _Refused(400, AlertVerdict.REJECTED, "body", f"invalid JSON: {str(exc)[:120]}") from None
        if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(payload):
            raise _Refused(
                400, AlertVerdict.REJECTED, "body", "invalid JSON: a \\u escape names a lone surrogate"
            )
        if not isinstance(payload, dict):
            kind = "a list" if isinstance(payload, list) else type(payload).__name__
            raise _Refused(400, AlertVerdict.REJECTED, "body", f"the body must be a JSON object, not {kind}")
        return payload

    def _check_secret(self, payload: dict[str, Any]) -> None:
        given = payload.get("secret")
        if not isinstance(given, str) or not given:
            raise _Refused(401, AlertVerdict.UNAUTHORIZED, "secret", "the secret is missing")
        if not hmac.compare_digest(given.encode("utf-8", errors="replace"), self._secret):
            raise _Refused(401, AlertVerdict.UNAUTHORIZED, "secret", "the secret is wrong")

    def _validate(self, payload: dict[str, Any]) -> tuple[ParsedAlert, Instrument]:
        try:
            parsed = parse_alert(TradingViewAlert.model_validate(payload))
        except ValidationError as exc:
            error = validation_error(exc)
            raise _Refused(422, AlertVerdict.REJECTED, error.field, str(error)) from None
        except AlertError as exc:
            raise _Refused(422, AlertVerdict.REJECTED, exc.field, str(exc)) from None
        try:
            instrument = instrument_for_ticker(parsed.ticker, self.market_date())
        except UnknownTickerError as exc:
            raise _Refused(422, AlertVerdict.REJECTED, "ticker", str(exc)) from None
        if parsed.contract and parsed.contract != str(instrument.sec_type):
            reason = f"contract is {parsed.contract} but ticker {parsed.ticker!r} is a {instrument.sec_type}"
            raise _Refused(422, AlertVerdict.REJECTED, "contract", reason)
        if parsed.alert_time is not None:
            age = datetime.now(UTC) - parsed.alert_time
            if age > self.window:
                field = "time" if "time" in payload else "timenow"
                reason = (
                    f"{field} {parsed.alert_time:%Y-%m-%d %H:%M:%S} UTC is {age.total_seconds():.0f} s old, "
                    f"beyond the {self.window.total_seconds():g} s window: a replayed alert places nothing"
                )
                raise _Refused(422, AlertVerdict.REJECTED, field, reason)
            if -age > self.window:  # not a replay: a wrong template or clock, an order not meant now
                field = "time" if "time" in payload else "timenow"
                reason = (
                    f"{field} {parsed.alert_time:%Y-%m-%d %H:%M:%S} UTC is {-age.total_seconds():.0f} s "
                    "in the future: check the alert's template or this machine's clock; nothing was placed"
                )
                raise _Refused(422, AlertVerdict.REJECTED, field, reason)
        return parsed, instrument

    def _ticket(self, parsed: ParsedAlert, instrument: Instrument, key: str) -> OrderTicket:
        return OrderTicket(
            source=SOURCE,
            symbol=instrument.key,
            side=parsed.side,
            quantity=parsed.quantity,
            order_type=parsed.order_type,
            price=None if parsed.limit_price is None else str(parsed.limit_price),
            reason=parsed.reason,
            idempotency_key=key,
            target_position=parsed.target_position,
        )

    def _admit(self, source: str, body: str, payload: dict[str, Any]) -> Answer:
        parsed, instrument = self._validate(payload)
        key = alert_key(payload, parsed)
        ticket = self._ticket(parsed, instrument, key)
        try:
            self.intake.validate(ticket)
        except IntakeRejected as exc:
            field = _ALERT_FIELD.get(exc.field, exc.field)
            raise _Refused(422, AlertVerdict.REJECTED, field, str(exc)) from None
        alert_id, first = self.store.admit(
            source=source, body=body, key=key, ticket=ticket_fields(ticket), window=self.window
        )
        if first is not None:
            log.info("alert %d from %s: duplicate of alert %d, nothing placed", alert_id, source, first.id)
            return Answer(
                200,
                {
                    "status": "duplicate",
                    "alert_id": alert_id,
                    "duplicate_of": first.id,
                    "client_order_id": first.client_order_id,
                },
            )
        cid = client_order_id(alert_id, key)  # what admit() stored with the row (no second read)
        log.info(
            "alert %d from %s accepted: %s %s %s (%s)",
            alert_id,
            source,
            parsed.side,
            parsed.quantity if parsed.quantity is not None else f"to {parsed.target_position:+d}",
            instrument.key,
            cid,
        )
        self.on_admitted()
        return Answer(200, {"status": "accepted", "alert_id": alert_id, "client_order_id": cid})


def ticket_fields(ticket: OrderTicket) -> dict[str, Any]:
    """What the worker needs to submit the ticket again from the durable row (JSON-safe)."""
    return {
        "source": ticket.source,
        "symbol": ticket.symbol,
        "side": ticket.side,
        "quantity": ticket.quantity,
        "order_type": ticket.order_type,
        "price": ticket.price,
        "reason": ticket.reason,
        "idempotency_key": ticket.idempotency_key,
        "target_position": ticket.target_position,
    }


def market_date(clock: Callable[[], int]) -> Callable[[], date]:
    """The market's date (UTC) from a market clock in ns; today's wall date before the clock has a time."""

    def today() -> date:
        ns = clock()
        return ns_to_datetime(ns).date() if ns > 0 else datetime.now(UTC).date()

    return today


# A \uD800-\uDFFF escape: paired it is one character (json combines the pair), alone it is no character
# at all, and a string holding one cannot be written as UTF-8 (to the records, to a log, to an answer).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _holds_lone_surrogate(value: Any) -> bool:
    """True when a decoded JSON value (keys included) holds a lone surrogate; only called when the text had a
    surrogate escape, so an ordinary alert pays one regex search."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

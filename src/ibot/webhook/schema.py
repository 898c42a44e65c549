"""The TradingView alert as it arrives: seed 000's format, every value a string or a number.

TradingView sends whatever the alert's message says, with its placeholders filled in (``{{ticker}}``,
``{{strategy.order.action}}``, ``{{timenow}}``...), so the schema takes each value as a JSON string or number
and refuses anything else (an object, a list, true/false) naming the field. Fields this door does not know are
refused too: a typo such as ``"quantiy"`` must not become a default. What the values mean (a ticker, a side, a
whole quantity, a finite price) is checked by `parse_alert`, which names the field of the first problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

from ibot.model.errors import IbotError

__all__ = [
    "MAX_PRICE",
    "AlertError",
    "ParsedAlert",
    "TradingViewAlert",
    "parse_alert",
]

# A JSON string or number: TradingView fills placeholders as text, users often write numbers bare.
Scalar = StrictStr | StrictInt | StrictFloat

MAX_PRICE = (
    Decimal(10) ** 9
)  # no catalog instrument trades near this; a larger "price" is a typo or an attack
MAX_QUANTITY = 1_000_000  # the risk limits refuse far less; this only keeps absurd numbers out of the records
MAX_TEXT = 200  # the records' reason column


class AlertError(IbotError, ValueError):
    """An alert that cannot become an order: `field` names the body's field; the message, what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TradingViewAlert(BaseModel):
    """Seed 000's alert plus TradingView's strategy placeholders; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: Scalar | None = Field(
        default=None, description="the shared secret (TradingView cannot set headers)"
    )
    ticker: Scalar = Field(description="{{ticker}}: MES1!, MES2!, MESZ2026, MESZ6, CME_MINI:MES1!, AAPL")
    contract: Scalar | None = Field(default=None, description="FUT or STK")
    exchange: Scalar | None = Field(default=None, description="{{exchange}}, e.g. CME_MINI (informational)")
    order: Scalar = Field(description="LMT or MKT")
    action: Scalar = Field(description="BUY or SELL, any case ({{strategy.order.action}} is lower case)")
    price: Scalar | None = Field(default=None, description="limit price; required for LMT")
    quantity: Scalar | None = Field(default=None, description="contracts or shares to trade (whole, > 0)")
    contracts: Scalar | None = Field(default=None, description="{{strategy.order.contracts}}: as quantity")
    market_position: Scalar | None = Field(
        default=None, description="{{strategy.market_position}}: long, short or flat (a target position)"
    )
    position_size: Scalar | None = Field(
        default=None, description="{{strategy.position_size}}: the signed target position"
    )
    reason: Scalar | None = Field(default=None, description="free text kept with the order (Open-Long)")
    id: Scalar | None = Field(default=None, description="explicit idempotency key (one order per id)")
    time: Scalar | None = Field(default=None, description="{{time}} or {{timenow}}: part of the default key")
    timenow: Scalar | None = Field(default=None, description="{{timenow}}: part of the default key")


@dataclass(frozen=True, slots=True)
class ParsedAlert:
    """An alert's values, typed; `ticker` is still TradingView's (tickers.py maps it)."""

    ticker: str
    contract: str  # "FUT", "STK" or "" when not given
    order_type: str  # "MKT" | "LMT"
    side: str  # "BUY" | "SELL"
    quantity: int | None
    limit_price: Decimal | None
    target_position: int | None
    reason: str
    explicit_id: str
    alert_time: datetime | None


def validation_error(exc: ValidationError) -> AlertError:
    """Pydantic's first error as one sentence naming the field (unknown, missing, or of the wrong type)."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not isinstance(p, int))
    field = loc.split(".")[0] if loc else "body"
    kind = first["type"]
    if kind == "extra_forbidden":
        return AlertError(field, f"unknown field {field!r} (see docs/webhook.md for the alert's fields)")
    if kind == "missing":
        return AlertError(field, f"field {field!r} is missing")
    got = _json_type(first.get("input"))
    return AlertError(field, f"field {field!r} must be a string or a number, not {got}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _text(value: Scalar | None, field: str, *, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        raise AlertError(field, f"{field} must be finite, got {value!r}")
    text = str(value).strip()
    if len(text) > limit:
        raise AlertError(field, f"{field} is {len(text)} characters long; at most {limit} are kept")
    return text


def _choice(value: Scalar, field: str, allowed: tuple[str, ...]) -> str:
    text = _text(value, field).upper()
    if text not in allowed:
        shown = _text(value, field, limit=10_000)[:40]
        raise AlertError(field, f"{field} must be {' or '.join(allowed)}, got {shown!r}")
    return text


def _number(value: Scalar, field: str) -> Decimal:
    """A JSON number or a numeric string as an exact Decimal (never through a binary float's digits)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise AlertError(field, f"{field} must be a finite number, got {value!r}")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise AlertError(field, f"{field} must be a number, got {text[:40]!r}") from None
    if not number.is_finite():
        raise AlertError(field, f"{field} must be a finite number, got {text[:40]!r}")
    return number


def _whole(value: Scalar, field: str, *, positive: bool) -> int:
    number = _number(value, field)
    if number != number.to_integral_value():
        raise AlertError(field, f"{field} must be a whole number, got {value!r}")
    if positive and number <= 0:
        raise AlertError(field, f"{field} must be more than 0, got {value!r}")
    if abs(number) > MAX_QUANTITY:
        raise AlertError(field, f"{field} {value!r} is beyond {MAX_QUANTITY:,}")
    return int(number)


def _price(value: Scalar | None, order_type: str) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if order_type == "LMT":
            raise AlertError("price", "price is required for a LMT order")
        return None
    price = _number(value, "price")
    if price <= 0:
        raise AlertError("price", f"price must be more than 0, got {value!r}")
    if price >= MAX_PRICE:
        raise AlertError("price", f"price {value!r} is beyond any instrument's price")
    return price if order_type == "LMT" else None


def _target(alert: TradingViewAlert) -> int | None:
    """The signed target position from market_position / position_size, or None when neither is given."""
    if alert.market_position is None and alert.position_size is None:
        return None
    size = (
        None if alert.position_size is None else _whole(alert.position_size, "position_size", positive=False)
    )
    if alert.market_position is None:
        return size
    where = _choice(alert.market_position, "market_position", ("LONG", "SHORT", "FLAT"))
    if where == "FLAT":
        if size:
            raise AlertError("position_size", f"market_position is flat but position_size is {size}")
        return 0
    if size is None:
        raise AlertError("position_size", f"market_position {where.lower()} needs position_size (how many)")
    return abs(size) if where == "LONG" else -abs(size)


def _quantity(alert: TradingViewAlert) -> int | None:
    given = [
        (f, v) for f, v in (("quantity", alert.quantity), ("contracts", alert.contracts)) if v is not None
    ]
    if len(given) == 2:
        raise AlertError("contracts", "give quantity or contracts, not both")
    if not given:
        return None
    field, value = given[0]
    return _whole(value, field, positive=True)


def parse_time(value: Scalar | None, field: str) -> datetime | None:
    """{{time}} / {{timenow}}: ISO 8601 (``2025-01-15T14:30:05Z``) or epoch seconds / milliseconds, as UTC."""
    if value is None:
        return None
    text = _text(value, field)
    try:
        if isinstance(value, int | float) or text.replace(".", "", 1).isdigit():
            seconds = float(text)
            seconds = seconds / 1000 if seconds > 1e11 else seconds  # TradingView's {{time}} may be ms
            return datetime.fromtimestamp(seconds, UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise AlertError(
            field, f"{field} must be a time such as 2025-01-15T14:30:05Z, got {text[:40]!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_alert(alert: TradingViewAlert) -> ParsedAlert:
    """Type every value; AlertError names the first field that cannot be part of an order."""
    order_type = _choice(alert.order, "order", ("LMT", "MKT"))
    side = _choice(alert.action, "action", ("BUY", "SELL"))
    contract = "" if alert.contract is None else _choice(alert.contract, "contract", ("FUT", "STK"))
    quantity = _quantity(alert)
    target = _target(alert)
    if quantity is not None and target is not None:
        field = "market_position" if alert.market_position is not None else "position_size"
        raise AlertError(field, "give a quantity to trade or a target position, not both")
    if quantity is None and target is None:
        raise AlertError("quantity", "field 'quantity' is missing (or give a target position_size)")
    if alert.time is not None and alert.timenow is not None:
        raise AlertError("timenow", "give time or timenow, not both")
    time_field = "time" if alert.time is not None else "timenow"
    return ParsedAlert(
        ticker=_text(alert.ticker, "ticker", limit=64),
        contract=contract,
        order_type=order_type,
        side=side,
        quantity=quantity,
        limit_price=_price(alert.price, order_type),
        target_position=target,
        reason=_text(alert.reason, "reason"),
        explicit_id=_text(alert.id, "id"),
        alert_time=parse_time(alert.time if alert.time is not None else alert.timenow, time_field),
    )

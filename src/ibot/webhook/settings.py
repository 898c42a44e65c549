"""Settings of the TradingView webhook door: the `[webhook]` table of ibot.toml, then IBOT_WEBHOOK_SECRET.

The secret never comes from the repository's code and never leaves this object in clear: it is a SecretStr
(repr and str show ``**********``), compared in constant time by the door, and redacted from every record.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ibot.config import ConfigError

__all__ = [
    "SECRET_ENV",
    "TRADINGVIEW_ADDRESSES",
    "WebhookSettings",
    "load_webhook_settings",
    "parse_allow",
]

SECRET_ENV = "IBOT_WEBHOOK_SECRET"
MIN_SECRET_LENGTH = 12

# TradingView posts webhooks from these addresses only (TradingView support, "How to configure webhook
# alerts", solution 43000529348; IPv4 only, ports 80 and 443 only, 3 s to answer).
TRADINGVIEW_ADDRESSES: tuple[str, ...] = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(entries: object) -> tuple[str, ...]:
    """`tradingview` (the four published addresses), addresses and networks (``10.0.0.0/8``), comma separated
    or as a list; ValueError naming the first entry that is none of these."""
    items = entries.split(",") if isinstance(entries, str) else list(entries)  # type: ignore[call-overload]
    out: list[str] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if text.lower() == "tradingview":
            out.extend(TRADINGVIEW_ADDRESSES)
            continue
        try:
            out.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address, a network or 'tradingview'") from None
    return tuple(dict.fromkeys(out))


class WebhookSettings(BaseModel):
    """Where the door listens, who may post, the shared secret and the limits of an alert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: SecretStr = Field(default=SecretStr(""), description=f"shared secret ({SECRET_ENV})")
    host: str = Field(default="127.0.0.1", min_length=1, description="address to listen on (loopback)")
    port: int = Field(default=8000, ge=0, le=65535, description="port to listen on (0: any free port)")
    allow: tuple[str, ...] = Field(
        default=(), description="source addresses allowed to post ('tradingview', IPs, networks); empty = any"
    )
    window_seconds: float = Field(
        default=600.0, gt=0, description="idempotency window: the same alert within it places nothing twice"
    )
    max_body_bytes: int = Field(default=65536, ge=1024, le=1 << 20, description="larger bodies get 413")
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="addresses whose X-Forwarded-For names the source (a TLS proxy on this host)",
    )

    @field_validator("allow", mode="before")
    @classmethod
    def _allow(cls, value: Any) -> Any:
        return parse_allow(value) if value else ()

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if text and len(text) < MIN_SECRET_LENGTH:
            raise ValueError(f"the secret must be at least {MIN_SECRET_LENGTH} characters long")
        return value

    def networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(a, strict=False) for a in self.allow)

    def require_secret(self) -> str:
        """The secret, or ConfigError saying where to set it (the door never runs without one)."""
        text = self.secret.get_secret_value()
        if not text:
            raise ConfigError(
                f"the webhook has no secret: set {SECRET_ENV} or `secret` in the [webhook] table of ibot.toml"
            )
        return text


def load_webhook_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> WebhookSettings:
    """The `[webhook]` table of `path` (default ./ibot.toml when present), then IBOT_WEBHOOK_SECRET, then
    `overrides` (command-line options). ConfigError names the key, never the secret's value."""
    raw: dict[str, Any] = {}
    path = path or (Path("ibot.toml") if Path("ibot.toml").exists() else None)
    if path is not None:
        try:
            raw = dict(tomllib.loads(path.read_text()).get("webhook", {}))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    environ = os.environ if env is None else env
    if environ.get(SECRET_ENV):
        raw["secret"] = environ[SECRET_ENV]
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return WebhookSettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        source = SECRET_ENV if where == "secret" and environ.get(SECRET_ENV) else f"[webhook].{where}"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{source}: {message}") from None

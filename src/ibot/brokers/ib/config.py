"""Settings of the IB adapter: where TWS / IB Gateway listens, the client id of each role, how to reconnect.

Read from the ``[ib]`` table of ibot.toml, then from seed 004's environment variables (TWS_API_ADDR,
TWS_API_PORT, TWS_API_CLIENTID, TWS_GATEWAY_NAME), validated with errors that name the key. Client ids
follow seed 000's plan by default (account summary 10, order manager 1000-1999, real-time data 20,
historical data 21, strategies 50-70, TradingView 8000-8999, tests 9000-9999); every id is checked
against its role's range. The TWS API has no password: the only personal value, the account code, is
masked in repr and logs.
"""

from __future__ import annotations

import itertools
import os
import tomllib
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ibot.config import ConfigError
from ibot.model.errors import IbotError
from ibot.model.market import NS_PER_SECOND

__all__ = [
    "ENV_VARS",
    "ClientIdOutOfRangeError",
    "ClientIdPlan",
    "ClientIdRange",
    "ClientRole",
    "IBSettings",
    "RestartWindow",
    "load_ib_settings",
]


class ClientRole(StrEnum):
    """What a connection is for; each role has its own client-id range (seed 000's plan)."""

    ACCOUNT_SUMMARY = "account_summary"
    ORDER_MANAGER = "order_manager"
    DATA_REALTIME = "data_realtime"
    DATA_HISTORICAL = "data_historical"
    STRATEGY = "strategy"
    TRADINGVIEW = "tradingview"
    TESTS = "tests"


class ClientIdOutOfRangeError(IbotError, ValueError):
    """A client id outside the range its role is given in the client-id plan."""

    def __init__(self, role: ClientRole, client_id: int, allowed: ClientIdRange) -> None:
        super().__init__(
            f"client id {client_id} is outside the {role.value} range {allowed.first}..{allowed.last} "
            "of the client-id plan"
        )
        self.role = role
        self.client_id = client_id


class ClientIdRange(BaseModel):
    """Inclusive range of client ids; `first` is the one a role tries first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first: int = Field(ge=0, le=2_147_483_647)
    last: int = Field(ge=0, le=2_147_483_647)

    @model_validator(mode="after")
    def _ordered(self) -> ClientIdRange:
        if self.last < self.first:
            raise ValueError(f"client id range {self.first}..{self.last} ends before it starts")
        return self

    @classmethod
    def of(cls, first: int, last: int | None = None) -> ClientIdRange:
        return cls(first=first, last=first if last is None else last)

    def __contains__(self, client_id: object) -> bool:
        return isinstance(client_id, int) and self.first <= client_id <= self.last

    def __len__(self) -> int:
        return self.last - self.first + 1

    def after(self, client_id: int) -> int:
        """The id to try after `client_id`: the next one in the range, wrapping to `first`."""
        return self.first if client_id >= self.last or client_id < self.first else client_id + 1


def _range_field(first: int, last: int | None = None) -> Any:
    return Field(default_factory=lambda: ClientIdRange.of(first, last))


class ClientIdPlan(BaseModel):
    """Client-id ranges per role; they must not overlap, so two roles never fight over one id (error 326)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_summary: ClientIdRange = _range_field(10)
    order_manager: ClientIdRange = _range_field(1000, 1999)
    data_realtime: ClientIdRange = _range_field(20)
    data_historical: ClientIdRange = _range_field(21)
    strategy: ClientIdRange = _range_field(50, 70)
    tradingview: ClientIdRange = _range_field(8000, 8999)
    tests: ClientIdRange = _range_field(9000, 9999)

    @field_validator("*", mode="before")
    @classmethod
    def _from_pair(cls, value: Any) -> Any:
        """Accept ``10`` or ``[1000, 1999]`` in TOML as well as ``{first = .., last = ..}``."""
        if isinstance(value, int) and not isinstance(value, bool):
            return {"first": value, "last": value}
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return {"first": value[0], "last": value[1]}
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> ClientIdPlan:
        spans = sorted((r.first, r.last, role) for role, r in self.items())
        for (_, a_last, a_role), (b_first, _, b_role) in itertools.pairwise(spans):
            if b_first <= a_last:
                raise ValueError(f"client id ranges of {a_role.value} and {b_role.value} overlap")
        return self

    def items(self) -> list[tuple[ClientRole, ClientIdRange]]:
        return [(role, self.range_for(role)) for role in ClientRole]

    def range_for(self, role: ClientRole) -> ClientIdRange:
        value: ClientIdRange = getattr(self, ClientRole(role).value)
        return value

    def check(self, role: ClientRole, client_id: int) -> int:
        """`client_id` if it is inside `role`'s range; ClientIdOutOfRangeError otherwise."""
        allowed = self.range_for(role)
        if client_id not in allowed:
            raise ClientIdOutOfRangeError(ClientRole(role), client_id, allowed)
        return client_id


class RestartWindow(BaseModel):
    """IB's daily server restart (TWS / IB Gateway "auto restart" time, North America default 23:45 ET).

    Inside the window the adapter does not try to reconnect (no storm of refused connects); it waits for the
    window to end on the market clock, then reconnects with the usual backoff.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    start: time = time(23, 45)
    minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    tz: str = "America/New_York"

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def _opening_before(self, ts_ns: int) -> int:
        """Start (UTC ns) of the latest window starting at or before `ts_ns`."""
        zone = ZoneInfo(self.tz)
        local = datetime.fromtimestamp(ts_ns / NS_PER_SECOND, tz=zone)
        start = datetime.combine(local.date(), self.start, tzinfo=zone)
        if start > local:
            start = datetime.combine(local.date() - timedelta(days=1), self.start, tzinfo=zone)
        return int(start.timestamp()) * NS_PER_SECOND

    def end_if_inside(self, ts_ns: int) -> int | None:
        """The window's end (UTC ns) when `ts_ns` is inside a restart window, else None."""
        if not self.enabled:
            return None
        end = self._opening_before(ts_ns) + int(self.minutes * 60 * NS_PER_SECOND)
        return end if ts_ns < end else None

    def contains(self, ts_ns: int) -> bool:
        return self.end_if_inside(ts_ns) is not None


ClientIdInUsePolicy = Literal["retry", "next_id"]


class IBSettings(BaseModel):
    """How to reach TWS / IB Gateway and how to keep the connection alive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, description="TWS / IB Gateway host (TWS_API_ADDR)")
    port: int = Field(default=7497, ge=1, le=65535, description="API socket port (TWS_API_PORT)")
    role: ClientRole = Field(
        default=ClientRole.ORDER_MANAGER, description="role of this process's connection"
    )
    client_id: int | None = Field(
        default=None, ge=0, description="explicit id for `role` (TWS_API_CLIENTID); must be inside its range"
    )
    client_ids: ClientIdPlan = Field(default_factory=ClientIdPlan)
    account: str = Field(default="", repr=False, description="account code; empty = the only managed one")
    gateway_name: str = Field(default="", description="name of this gateway instance (TWS_GATEWAY_NAME)")
    readonly: bool = False
    connect_timeout: float = Field(default=10.0, gt=0, description="seconds for one connect attempt")
    reconnect_initial_delay: float = Field(default=1.0, gt=0, description="first backoff, seconds")
    reconnect_max_delay: float = Field(
        default=20.0, gt=0, description="backoff cap, seconds (seed 004: 20 s)"
    )
    reconnect_backoff: float = Field(default=2.0, ge=1.0, description="backoff growth factor")
    on_client_id_in_use: ClientIdInUsePolicy = Field(
        default="next_id", description="after error 326: retry the same id with backoff, or try the next one"
    )
    restart_window: RestartWindow = Field(default_factory=RestartWindow)
    stale_after_seconds: float = Field(default=30.0, gt=0, description="market seconds without data = stale")
    watchdog_poll_seconds: float = Field(default=1.0, gt=0, description="wall seconds between clock checks")

    @model_validator(mode="after")
    def _id_in_range(self) -> IBSettings:
        if self.client_id is not None:
            self.client_ids.check(self.role, self.client_id)
        if self.reconnect_max_delay < self.reconnect_initial_delay:
            raise ValueError("reconnect_max_delay must be at least reconnect_initial_delay")
        return self

    def client_id_for(self, role: ClientRole) -> int:
        """The id a connection of `role` tries first: the explicit `client_id` for this process's role,
        otherwise the first id of the role's range."""
        if self.client_id is not None and ClientRole(role) is self.role:
            return self.client_id
        return self.client_ids.range_for(role).first

    @property
    def masked_account(self) -> str:
        """The account code as logs show it (``DU****56``)."""
        a = self.account
        return a if len(a) <= 4 else f"{a[:2]}{'*' * (len(a) - 4)}{a[-2:]}"

    def describe(self, role: ClientRole | None = None) -> str:
        """One log line: endpoint, the role of the connection (this process's role by default) and its
        client id, account masked."""
        role = ClientRole(role or self.role)
        acct = f" account={self.masked_account}" if self.account else ""
        client_id = self.client_id_for(role)
        return f"IB {self.host}:{self.port} role={role.value} client_id={client_id}{acct}"


# Seed 004's environment variables and the settings they set.
ENV_VARS: dict[str, str] = {
    "TWS_API_ADDR": "host",
    "TWS_API_PORT": "port",
    "TWS_API_CLIENTID": "client_id",
    "TWS_GATEWAY_NAME": "gateway_name",
}


def load_ib_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> IBSettings:
    """The ``[ib]`` table of `path` (default ./ibot.toml when present), then `env` (default os.environ)
    for the seed-004 variables, then `overrides`. Raises ConfigError naming the key or variable."""
    raw: dict[str, Any] = {}
    origin: dict[str, str] = {}
    path = path or (Path("ibot.toml") if Path("ibot.toml").exists() else None)
    if path is not None:
        try:
            raw = dict(tomllib.loads(path.read_text()).get("ib", {}))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        origin = {key: f"{path} [ib].{key}" for key in raw}
    environ = os.environ if env is None else env
    for var, key in ENV_VARS.items():
        value = environ.get(var)
        if value:
            raw[key] = value.strip()
            origin[key] = f"environment variable {var}"
    for key, value in (overrides or {}).items():
        raw[key] = value
        origin[key] = f"setting {key}"
    try:
        return IBSettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]] or (["client_id"] if "client id" in first["msg"] else [])
        where = origin.get(loc[0], f"[ib].{'.'.join(loc)}") if loc else "[ib]"
        if loc and loc[0] in origin and len(loc) > 1:
            where += "." + ".".join(loc[1:])
        raise ConfigError(f"{where}: {first['msg']}") from None

"""The Interactive Brokers adapter (ib_async). ib_async's Contract, Trade and Order never leave this package:
callers see ibot's Instrument, OrderRequest, OrderUpdate, Fill and the health events of the connection."""

from ibot.brokers.ib.config import (
    ClientIdOutOfRangeError,
    ClientIdPlan,
    ClientIdRange,
    ClientRole,
    IBSettings,
    RestartWindow,
    load_ib_settings,
)
from ibot.brokers.ib.connection import (
    ClientIdInUseError,
    ConnectionHealth,
    FeedWatchdog,
    HealthEvent,
    HealthEventKind,
    IBConnection,
    IBConnectionError,
    LinkState,
    NotConnectedError,
)
from ibot.brokers.ib.contracts import (
    AmbiguousContractError,
    ContractError,
    ContractResolver,
    UnknownContractError,
)
from ibot.brokers.ib.market_data import HistoricalBars, HistoricalDataError, MarketDataFeed, Subscription

__all__ = [
    "AmbiguousContractError",
    "ClientIdInUseError",
    "ClientIdOutOfRangeError",
    "ClientIdPlan",
    "ClientIdRange",
    "ClientRole",
    "ConnectionHealth",
    "ContractError",
    "ContractResolver",
    "FeedWatchdog",
    "HealthEvent",
    "HealthEventKind",
    "HistoricalBars",
    "HistoricalDataError",
    "IBConnection",
    "IBConnectionError",
    "IBSettings",
    "LinkState",
    "MarketDataFeed",
    "NotConnectedError",
    "RestartWindow",
    "Subscription",
    "UnknownContractError",
    "load_ib_settings",
]

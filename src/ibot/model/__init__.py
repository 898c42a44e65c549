"""The domain model: pure values and rules. Imports nothing else of ibot's and does no I/O."""

from ibot.model.clock import Clock
from ibot.model.errors import (
    BarDataError,
    IbotError,
    InvalidOrderError,
    InvalidPriceError,
    ParameterError,
    UnknownSymbolError,
)
from ibot.model.instruments import Instrument, SecType
from ibot.model.market import Bar, Tick, datetime_to_ns, ns_to_datetime
from ibot.model.orders import Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce

__all__ = [
    "Bar",
    "BarDataError",
    "Clock",
    "Fill",
    "IbotError",
    "Instrument",
    "InvalidOrderError",
    "InvalidPriceError",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "ParameterError",
    "SecType",
    "Side",
    "Tick",
    "TimeInForce",
    "UnknownSymbolError",
    "datetime_to_ns",
    "ns_to_datetime",
]

"""ibot.engine: the runtime layer; `TradingSession` keeps the live broker side (IB, OMS, market data) sane."""

from ibot.engine.session import (
    SessionEvent,
    SessionEventKind,
    SessionNotReadyError,
    SessionState,
    SessionStatus,
    TradingSession,
)

__all__ = [
    "SessionEvent",
    "SessionEventKind",
    "SessionNotReadyError",
    "SessionState",
    "SessionStatus",
    "TradingSession",
]

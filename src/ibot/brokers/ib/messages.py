"""IB's message codes in ibot's words, and ib_async's log lines turned into them.

What it promises:
- `message_level(code)`: the log level an IB message deserves. Normal events (an order cancelled as asked,
  202; farm connections OK, 2104/2106/2107/2108/2158; 2100, 2119) are INFO; degraded states and IB's
  warnings (farm broken 2103/2105/2110/2157, 1100/1101, 10197, the 2100-2199 range, 399, 10147/10148/161 a
  cancel that met a fill) are WARNING; anything else is an ERROR;
- `install_log_filter()` (idempotent; the IB adapter's connection calls it) rewrites ib_async's own lines:
  "Error 202, reqId 7: Order Canceled" becomes one line "IB message 202 (id 7): Order Canceled" at the level
  above; lines that only repeat what was just said ("Canceled order: Trade(...)", the validation warning
  with the whole trade) or what the connection says itself (connect failed, peer closed) are dropped; any
  other warning or error of ib_async is said once as "ib_async: ...", its repeats go to DEBUG.
"""

from __future__ import annotations

import logging
import re

__all__ = ["INFO_CODES", "IbAsyncLogFilter", "install_log_filter", "message_level"]

INFO_CODES = frozenset({202, 2100, 2104, 2106, 2107, 2108, 2119, 2158})
"""IB messages that report a normal event (TWS API "Message Codes"), logged at INFO."""

_WARNING_CODES = frozenset(
    {105, 110, 161, 165, 321, 329, 399, 404, 434, 492, 1100, 1101, 1102, 10147, 10148, 10167, 10197}
)
_IB_LINE = re.compile(r"^(?:Error|Warning) (-?\d+), reqId (-?\d+): (.*)$", re.DOTALL)
_CONTRACT = re.compile(r", contract: .*$", re.DOTALL)
_LOCAL_SYMBOL = re.compile(r"localSymbol='([^']+)'")
# ib_async lines that repeat an IB message just rewritten, or a link change the connection reports itself
_REPEATS = (
    "Canceled order: ",
    "IBKR API validation warning: ",
    "API connection failed: ",
    "Make sure API port on TWS/IBG is open",
    "Peer closed connection",
)
_LOGGERS = ("ib_async", "ib_async.wrapper", "ib_async.client", "ib_async.ib", "ib_async.connection")
_SEEN_MAX = 512


def message_level(code: int) -> int:
    """The log level of IB message `code`: INFO for normal events, WARNING for warnings, else ERROR."""
    if code in INFO_CODES:
        return logging.INFO
    if code in _WARNING_CODES or 2100 <= code < 2200:
        return logging.WARNING
    return logging.ERROR


class IbAsyncLogFilter(logging.Filter):
    """Rewrites (or drops) ib_async's log records as the module doc says; one instance per process."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO or not record.name.startswith("ib_async"):
            return True
        text = record.getMessage()
        found = _IB_LINE.match(text)
        if found is not None:  # IB's own message, whatever level ib_async gave it ("Warning 2104" at INFO)
            return self._ib_message(record, int(found[1]), int(found[2]), found[3])
        if record.levelno < logging.WARNING:
            return True
        if text.startswith(_REPEATS):
            return False
        if text in self._seen:
            return _relevel(record, logging.DEBUG, text)
        if len(self._seen) < _SEEN_MAX:
            self._seen.add(text)
        return _relevel(record, record.levelno, f"ib_async: {text}")

    @staticmethod
    def _ib_message(record: logging.LogRecord, code: int, req_id: int, text: str) -> bool:
        symbol = _LOCAL_SYMBOL.search(text)
        text = _CONTRACT.sub("", text).strip()
        where = f" (id {req_id})" if req_id != -1 else ""
        if symbol is not None:
            where += f" [{symbol[1]}]"
        return _relevel(record, message_level(code), f"IB message {code}{where}: {text}")


def _relevel(record: logging.LogRecord, level: int, message: str) -> bool:
    """Give `record` a new level and text; False (dropped) when its logger does not log that level."""
    if not logging.getLogger(record.name).isEnabledFor(level):
        return False
    record.levelno = level
    record.levelname = logging.getLevelName(level)
    record.msg = message
    record.args = ()
    return True


_FILTER = IbAsyncLogFilter()


def install_log_filter() -> None:
    """Put the filter on ib_async's loggers (once; a second call changes nothing)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

"""Why a historical-data request failed, from what IB said (or did not say) about it.

ib_async answers a failed request with an empty list (RaiseRequestErrors=False, its default) and a timed-out
one too, so the downloader never reads an empty answer as "no data": it keeps the error IB sent for the
request (code and text) and whether the wait ran out, and this module turns that into one class. Only IB's
own "no data" (162 "HMDS query returned no data") marks a range as done without bars.

Codes (TWS API "Message Codes"): 162 is the historical service's catch-all (pacing violation, no data,
no permission, cancelled, invalid parameters: read the text); 165 a service query message; 200 no security
definition; 321 error validating a request; 322 error processing a request (e.g. too many open requests);
366 no historical data query found for the ticker id; 10339 an end date on a CONTFUT request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Failure", "FailureClass", "classify", "is_retried"]


class FailureClass(StrEnum):
    """What went wrong with one request; `RETRIED` classes are tried again with backoff."""

    PACING = "pacing"  # 162 pacing violation, 322 too many open requests: wait, then again
    NO_DATA = "no_data"  # 162 HMDS query returned no data: the range is done, without bars
    TIMEOUT = "timeout"  # no answer in time (or a 165/366 service hiccup): again
    DISCONNECTED = "disconnected"  # the link dropped while the request was open: again after reconnect
    PERMISSION = "permission"  # no market data permission: not retried; the user must subscribe
    INVALID = "invalid"  # bad parameters or contract (200, 321, 10339, ...): not retried
    EMPTY = "empty"  # an answer without bars and without IB's "no data": not done, asked again next run
    STOPPED = "stopped"  # a stop came before the request was sent: nothing failed, the range is left


_RETRIED = frozenset({FailureClass.PACING, FailureClass.TIMEOUT, FailureClass.DISCONNECTED})


def is_retried(kind: FailureClass) -> bool:
    return kind in _RETRIED


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed request: its class, IB's code and text (0 / "" for a timeout or a dropped link)."""

    kind: FailureClass
    code: int = 0
    text: str = ""

    def describe(self) -> str:
        said = f" (IB {self.code}: {self.text})" if self.code else (f" ({self.text})" if self.text else "")
        return f"{self.kind.value}{said}"


_PACING_WORDS = ("pacing violation", "maximum number of open", "max number of", "too many")
_NO_DATA_WORDS = ("returned no data", "no data", "no items retrieved")
_PERMISSION_WORDS = ("permission", "not subscribed", "subscription", "not allowed", "no market data")
_INVALID_CODES = frozenset({200, 321, 10339, 10314, 10187, 10299})
_TRANSIENT_CODES = frozenset({165, 366, 1100, 2105, 2107})


def classify(code: int, text: str = "", *, timed_out: bool = False, disconnected: bool = False) -> Failure:
    """The class of a failed request from IB's `code` and `text` (0 / "" when IB said nothing), whether the
    wait for it ran out (`timed_out`) and whether the connection dropped (`disconnected`)."""
    low = text.lower()
    if code == 0:
        if disconnected:
            return Failure(FailureClass.DISCONNECTED, 0, text or "connection to TWS lost")
        return Failure(FailureClass.TIMEOUT, 0, text or "no answer in time")
    if code in (162, 322):
        if any(w in low for w in _PACING_WORDS):
            return Failure(FailureClass.PACING, code, text)
        if any(w in low for w in _PERMISSION_WORDS):
            return Failure(FailureClass.PERMISSION, code, text)
        if "query cancelled" in low or "query canceled" in low:
            return Failure(FailureClass.TIMEOUT, code, text)  # cancelled (by a timeout): again
        if any(w in low for w in _NO_DATA_WORDS):
            return Failure(FailureClass.NO_DATA, code, text)
        if code == 322:
            return Failure(FailureClass.PACING, code, text)  # "Error processing request": back off
        return Failure(FailureClass.INVALID, code, text)
    if code in (354, 10089, 10090, 10167, 10168, 10197):
        return Failure(FailureClass.PERMISSION, code, text)
    if code in _TRANSIENT_CODES or timed_out:
        return Failure(FailureClass.TIMEOUT, code, text)
    if code in _INVALID_CODES:
        return Failure(FailureClass.INVALID, code, text)
    return Failure(FailureClass.INVALID, code, text)

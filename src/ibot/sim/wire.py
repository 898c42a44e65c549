"""TWS API wire format: 4-byte big-endian length prefix, then NUL-terminated text fields.

Pure functions and a byte buffer: no sockets here. Incoming unset values are accepted in every spelling
real clients send; outgoing numbers are written so the clients' int()/float() parse them.
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

API_PREFIX = b"API\0"
UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE = sys.float_info.max
UNSET_LONG = 2**63 - 1
MAX_MESSAGE_LENGTH = 0xFFFFFF

_LEN = struct.Struct(">I")
_UNSET_FLOAT_SPELLINGS = frozenset(
    {"", "1.7976931348623157e+308", "1.7976931348623157e308", "infinity", "infinite", "inf"}
)


class WireError(ValueError):
    """A frame or field that cannot be read; the message names the field."""


def _encode_text(text: str) -> bytes:
    if "\0" in text:
        raise WireError(f"field {text!r} contains a NUL byte")
    return text.encode() + b"\0"


def _encode_float(value: float) -> bytes:
    if math.isnan(value):
        return b"\0"
    if value == UNSET_DOUBLE or math.isinf(value):
        return _UNSET_DOUBLE_FIELD
    return repr(value).encode() + b"\0"  # "5.0" parses with float(); int fields are written from ints


_UNSET_DOUBLE_FIELD = b"1.7976931348623157E308\0"
_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    str: _encode_text,
    int: lambda v: b"%d\0" % v,
    float: _encode_float,
    bool: lambda v: b"1\0" if v else b"0\0",
    type(None): lambda v: b"\0",
    Decimal: lambda v: _encode_text(format(v, "f")),
}


def encode_field(value: Any) -> bytes:
    """One field as the clients' decoders expect it (always NUL-terminated)."""
    encoder = _ENCODERS.get(type(value))
    if encoder is None:  # a subclass (an IntEnum, a StrEnum...): its nearest base's encoding, else str()
        encoder = next((_ENCODERS[t] for t in type(value).__mro__ if t in _ENCODERS), _encode_str)
    return encoder(value)


def _encode_str(value: Any) -> bytes:
    return _encode_text(str(value))


def frame(fields: Iterable[Any]) -> bytes:
    """A whole message: length prefix plus the encoded fields."""
    payload = b"".join(map(encode_field, fields))
    return _LEN.pack(len(payload)) + payload


def frame_raw(payload: bytes) -> bytes:
    """A whole message from its already encoded fields."""
    return _LEN.pack(len(payload)) + payload


class PriceFields:
    """Encoded price fields of one tick grid, cached by tick count (`encode_field(from_ticks(n))`): a quote
    stream writes the same few prices again and again, and formatting a float dominates a tick message."""

    __slots__ = ("_cache", "_from_ticks", "_limit")

    def __init__(self, from_ticks: Callable[[int], float], limit: int = 4096) -> None:
        self._from_ticks = from_ticks
        self._cache: dict[int, bytes] = {}
        self._limit = limit

    def __call__(self, ticks: int) -> bytes:
        found = self._cache.get(ticks)
        if found is None:
            if len(self._cache) >= self._limit:  # a price path that wandered far: start over
                self._cache.clear()
            found = self._cache[ticks] = encode_field(self._from_ticks(ticks))
        return found


class FrameBuffer:
    """Accumulates bytes from a socket and yields complete messages as lists of text fields."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[list[str]]:
        self._buf += data
        out: list[list[str]] = []
        while len(self._buf) >= 4:
            (size,) = _LEN.unpack_from(self._buf)
            if size > MAX_MESSAGE_LENGTH:
                raise WireError(f"message length {size} exceeds the limit {MAX_MESSAGE_LENGTH}")
            if len(self._buf) < 4 + size:
                break
            payload = bytes(self._buf[4 : 4 + size])
            del self._buf[: 4 + size]
            out.append(split_fields(payload))
        return out

    def feed_raw(self, data: bytes) -> None:
        """Append bytes without reading frames (before the un-prefixed 'API\\0' has been taken)."""
        self._buf += data

    def take_raw(self, n: int) -> bytes | None:
        """Take exactly `n` raw bytes (the 'API\\0' prefix), or None if not all here yet."""
        if len(self._buf) < n:
            return None
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


def split_fields(payload: bytes) -> list[str]:
    # one decode for the whole message: a NUL byte is never part of a multi-byte UTF-8 sequence
    parts = payload.decode("utf-8", errors="replace").split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def parse_int(text: str, name: str = "field") -> int | None:
    """An int field; "" and 2147483647 (and the long max) mean unset (None)."""
    s = text.strip()
    if s == "":
        return None
    try:
        value = int(s)
    except ValueError:
        try:
            f = float(s)
        except ValueError:
            raise WireError(f"{name}: {text!r} is not an integer") from None
        if not f.is_integer():
            raise WireError(f"{name}: {text!r} is not an integer") from None
        value = int(f)
    if value in (UNSET_INTEGER, UNSET_LONG):
        return None
    return value


def parse_float(text: str, name: str = "field") -> float | None:
    """A float field; "", 1.7976931348623157E308 (any case), Infinity/Infinite mean unset (None)."""
    s = text.strip()
    if s.lower() in _UNSET_FLOAT_SPELLINGS:
        return None
    try:
        value = float(s)
    except ValueError:
        raise WireError(f"{name}: {text!r} is not a number") from None
    if math.isnan(value) or math.isinf(value) or value >= UNSET_DOUBLE:
        return None
    return value


def parse_bool(text: str, name: str = "field") -> bool:
    s = text.strip().lower()
    if s in ("", "0", "false"):
        return False
    if s in ("1", "true"):
        return True
    raise WireError(f"{name}: {text!r} is not a boolean")

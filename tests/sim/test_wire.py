"""The wire format: frames, fields, and the cached price fields of the quote stream."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from ibot.model import catalog
from ibot.sim.messages import TickType
from ibot.sim.wire import UNSET_DOUBLE, FrameBuffer, PriceFields, WireError, encode_field, frame


def test_a_cached_price_field_is_the_encoded_grid_price() -> None:
    mcl = catalog.contract("MCL", 2025, 5)  # tick 0.01: floats that print with rounding noise if computed
    fields = PriceFields(mcl.from_ticks)
    for ticks in (7012, 7013, 1, 7012, 123_456):
        assert fields(ticks) == encode_field(mcl.from_ticks(ticks))


def test_price_fields_start_over_past_their_limit_and_still_answer_right() -> None:
    mes = catalog.contract("MES", 2025, 6)
    fields = PriceFields(mes.from_ticks, limit=3)
    got = [fields(t) for t in (20_000, 20_001, 20_002, 20_003, 20_000)]
    assert got == [encode_field(mes.from_ticks(t)) for t in (20_000, 20_001, 20_002, 20_003, 20_000)]


def test_frames_split_back_into_their_fields_across_reads() -> None:
    data = frame([1, 6, 7, 1, 5012.25, 3, 1]) + frame([2, 6, 7, 8, 120])
    buf = FrameBuffer()
    assert buf.feed(data[:9]) == []
    assert buf.feed(data[9:]) == [["1", "6", "7", "1", "5012.25", "3", "1"], ["2", "6", "7", "8", "120"]]


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, b"\0"),
        ("", b"\0"),
        ("MES", b"MES\0"),
        (True, b"1\0"),
        (False, b"0\0"),
        (5, b"5\0"),
        (-3, b"-3\0"),
        (TickType.BID, b"1\0"),  # an IntEnum writes its number
        (5.0, b"5.0\0"),
        (5012.25, b"5012.25\0"),
        (math.nan, b"\0"),
        (math.inf, b"1.7976931348623157E308\0"),
        (UNSET_DOUBLE, b"1.7976931348623157E308\0"),
        (Decimal("1.50"), b"1.50\0"),
        (Decimal(2), b"2\0"),
    ],
)
def test_every_value_kind_encodes_as_the_clients_parse_it(value: object, want: bytes) -> None:
    assert encode_field(value) == want


def test_a_nul_byte_in_a_field_is_refused() -> None:
    with pytest.raises(WireError, match="NUL"):
        encode_field("a\0b")

"""The wire format: frames, fields, and the cached price fields of the quote stream."""

from __future__ import annotations

from ibot.model import catalog
from ibot.sim.wire import FrameBuffer, PriceFields, encode_field, frame


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

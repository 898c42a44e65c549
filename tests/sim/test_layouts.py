"""Outgoing layouts: fields gated by server version, in the order the clients' decoders read them."""

from __future__ import annotations

import pytest

from ibot.sim import layouts as L  # noqa: N812
from ibot.sim.layouts import LayoutError
from ibot.sim.wire import encode_field, frame_raw


def test_error_message_gains_advanced_reject_json_at_166() -> None:
    values = {
        "reqId": 7,
        "errorCode": 200,
        "errorString": "x",
        "advancedOrderRejectJson": "{}",
        "errorTime": 1,
    }
    assert L.ERR_MSG.values(165, values) == [4, 2, 7, 200, "x"]
    assert L.ERR_MSG.values(166, values) == [4, 2, 7, 200, "x", "{}"]


def test_contract_data_drops_version_and_md_size_multiplier_from_164() -> None:
    base = {f.name: f.name for f in L.CONTRACT_DATA.fields if isinstance(f, L.F)}
    base["secIdList"] = [{"tag": "ISIN", "value": "X"}]
    old, new = L.CONTRACT_DATA.values(163, base), L.CONTRACT_DATA.values(164, base)
    assert old[:3] == [10, 8, "reqId"] and new[:2] == [10, "reqId"]
    assert old[old.index("minTick") + 1] == 1  # mdSizeMultiplier
    assert new[new.index("minTick") + 1] == "multiplier"
    assert "sizeMinTick" in old and "sizeMinTick" not in new
    assert new[-3:] == ["minSize", "sizeIncrement", "suggestedSizeIncrement"]
    assert new[new.index("evMultiplier") + 1 : new.index("evMultiplier") + 4] == [1, "ISIN", "X"]


def test_historical_data_writes_the_bar_count_then_each_bar() -> None:
    bar = {"date": "d", "open": 1, "high": 2, "low": 0, "close": 1, "volume": 5, "wap": 1.0, "barCount": 3}
    fields = L.HISTORICAL_DATA.values(178, {"reqId": 1, "startDate": "s", "endDate": "e", "bars": [bar, bar]})
    assert fields[:5] == [17, 1, "s", "e", 2]
    assert len(fields) == 5 + 2 * 8


def test_a_missing_value_names_the_message_and_field() -> None:
    with pytest.raises(LayoutError, match=r"TICK_PRICE.*'price'"):
        L.TICK_PRICE.values(178, {"reqId": 1, "tickType": 1})


@pytest.mark.parametrize(
    ("layout", "tail", "lead", "rest"),
    [
        (L.TICK_PRICE, ("price", "size", "attrMask"), {"reqId": 7, "tickType": 66}, (5012.25, 3, 1)),
        (L.TICK_SIZE, ("size",), {"reqId": 12, "tickType": 8}, (120_345,)),
        (L.TICK_STRING, ("value",), {"reqId": 3, "tickType": 45}, ("1741186800",)),
    ],
)
def test_a_head_with_its_encoded_tail_frames_the_same_bytes_as_the_layout(
    layout: L.Layout, tail: tuple[str, ...], lead: dict[str, object], rest: tuple[object, ...]
) -> None:
    head = layout.head(176, tail, **lead)
    assert frame_raw(head + b"".join(encode_field(x) for x in rest)) == layout.frame(
        176, **lead, **dict(zip(tail, rest, strict=True))
    )


def test_a_head_needs_the_tail_to_be_the_last_fields_and_no_repeated_group() -> None:
    with pytest.raises(LayoutError, match="TICK_PRICE: size, price are not its last fields"):
        L.TICK_PRICE.head(176, ("size", "price"), reqId=1, tickType=1)
    with pytest.raises(LayoutError, match="HISTORICAL_DATA: a message with a repeated group"):
        L.HISTORICAL_DATA.head(178, ("bars",), reqId=1)

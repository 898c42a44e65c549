"""Bars from ticks and smaller bars: alignment, gaps, late data, clock-driven closing, batch validation."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ibot.data.bars import (
    BarAggregator,
    BarFrame,
    InvalidBarsError,
    bar_size_name,
    parse_interval,
    resample_bars,
    validate_bars,
)
from ibot.model import Bar, BarDataError, ParameterError, Tick, datetime_to_ns

ET = ZoneInfo("America/New_York")
S = 1_000_000_000
MIN = 60 * S


def et(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> int:
    return datetime_to_ns(datetime(y, mo, d, h, mi, s, tzinfo=ET))


def collect(interval: str, **kwargs: object) -> tuple[BarAggregator, list[Bar]]:
    out: list[Bar] = []
    return BarAggregator(interval, out.append, **kwargs), out  # type: ignore[arg-type]


def random_second_bars(seed: int, start_ns: int, seconds: int, keep: float = 0.7) -> list[Bar]:
    """1 s bars with random gaps (only `keep` of the seconds trade) and fractional volumes."""
    rng = np.random.default_rng(seed)
    bars = []
    price = 5000.0
    for i in range(seconds):
        if rng.random() > keep:
            continue
        o = price
        c = o + 0.25 * int(rng.integers(-3, 4))
        h = max(o, c) + 0.25 * int(rng.integers(0, 3))
        lo = min(o, c) - 0.25 * int(rng.integers(0, 3))
        bars.append(Bar(start_ns + i * S, o, h, lo, c, float(rng.random() * 10)))
        price = c
    return bars


def direct_aggregate(bars: list[Bar], step: int) -> list[Bar]:
    """The textbook definition, written independently of the code under test."""
    groups: dict[int, list[Bar]] = {}
    for b in bars:
        groups.setdefault(b.ts // step * step, []).append(b)
    result = []
    for start in sorted(groups):
        g = groups[start]
        volume = 0.0
        for b in g:
            volume += b.volume
        result.append(
            Bar(start, g[0].open, max(b.high for b in g), min(b.low for b in g), g[-1].close, volume)
        )
    return result


# Intervals --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5min", 300),
        ("1min", 60),
        ("15s", 15),
        ("1h", 3600),
        ("1d", 86_400),
        ("5 mins", 300),
        ("30 secs", 30),
    ],
)
def test_parse_interval_understands_common_spellings(text: str, seconds: int) -> None:
    assert parse_interval(text) == seconds * S


def test_parse_interval_takes_a_timedelta_and_names_are_canonical() -> None:
    assert parse_interval(timedelta(minutes=15)) == 900 * S
    assert [bar_size_name(x) for x in ("5 mins", "60s", "1 hour", "1 day", "5 secs")] == [
        "5min",
        "1min",
        "1h",
        "1d",
        "5s",
    ]


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("5x", "'5x' is not understood"),
        ("fast", "'fast' is not understood"),
        ("7min", "must divide 24 hours"),
        ("0s", "between 1 second and 1 day"),
        ("2d", "between 1 second and 1 day"),
        (timedelta(milliseconds=500), "not a whole number of seconds"),
    ],
)
def test_parse_interval_rejects_bad_values_naming_them(bad: str | timedelta, fragment: str) -> None:
    with pytest.raises(ParameterError, match=fragment):
        parse_interval(bad)


# Aggregation ------------------------------------------------------------------------------------------------
def test_one_second_bars_aggregate_to_five_minutes_like_a_direct_computation() -> None:
    seconds = random_second_bars(seed=7, start_ns=et(2024, 3, 5, 9, 28, 13), seconds=3 * 3600)
    agg, out = collect("5min")
    for b in seconds:
        agg.add_bar(b)
    agg.flush()
    expected = direct_aggregate(seconds, 5 * MIN)
    assert out == expected
    assert len(out) == 37  # 09:25 .. 12:25 inclusive


def test_resample_bars_equals_streaming_aggregation_bit_for_bit() -> None:
    # Two sessions with the daily halt between them, fractional volumes to catch summation-order differences.
    day1 = random_second_bars(seed=1, start_ns=et(2024, 3, 5, 15, 0), seconds=2 * 3600 + 1800)
    day2 = random_second_bars(seed=2, start_ns=et(2024, 3, 5, 18, 0), seconds=3600)
    inputs = day1 + day2
    frame = BarFrame.from_bars(inputs)
    for interval in ("15s", "1min", "5min", "1h", "4h", "1d"):
        agg, out = collect(interval)
        for b in inputs:
            agg.add_bar(b)
        agg.flush()
        vectorized = resample_bars(frame, interval)
        assert vectorized.bars() == out, interval
        assert resample_bars(inputs, interval).equals(vectorized)


def test_bars_are_aligned_to_the_clock_and_stamped_with_their_open_time() -> None:
    agg, out = collect("5min")
    agg.add_trade(et(2024, 3, 5, 9, 31, 17), 5000.25, 2)
    agg.add_trade(et(2024, 3, 5, 9, 33, 59), 5001.00, 1)
    agg.add_trade(et(2024, 3, 5, 9, 34, 59), 4999.75, 3)
    agg.add_trade(et(2024, 3, 5, 9, 36, 2), 5000.50, 1)
    assert out == [Bar(et(2024, 3, 5, 9, 30), 5000.25, 5001.0, 4999.75, 4999.75, 6.0)]
    assert agg.current == Bar(et(2024, 3, 5, 9, 35), 5000.5, 5000.5, 5000.5, 5000.5, 1.0)


def test_no_bars_are_invented_across_the_daily_halt() -> None:
    agg, out = collect("1min")
    agg.add_trade(et(2024, 3, 5, 16, 58, 30), 5000.0, 1)
    agg.add_trade(et(2024, 3, 5, 16, 59, 59), 5000.25, 1)
    agg.add_trade(et(2024, 3, 5, 18, 2, 30), 5003.0, 1)  # first trade after the 17:00-18:00 ET halt
    agg.flush()
    assert [b.ts for b in out] == [et(2024, 3, 5, 16, 58), et(2024, 3, 5, 16, 59), et(2024, 3, 5, 18, 2)]


def test_first_bar_after_a_weekend_starts_at_its_own_boundary() -> None:
    agg, out = collect("15min")
    agg.add_trade(et(2024, 3, 8, 16, 59, 58), 5000.0, 1)  # Friday, last minutes before the weekend close
    agg.add_trade(et(2024, 3, 10, 18, 7, 5), 5010.0, 4)  # Sunday evening open (after the DST change)
    agg.flush()
    assert out == [
        Bar(et(2024, 3, 8, 16, 45), 5000.0, 5000.0, 5000.0, 5000.0, 1.0),
        Bar(et(2024, 3, 10, 18, 0), 5010.0, 5010.0, 5010.0, 5010.0, 4.0),
    ]


def test_ticks_out_of_order_inside_the_open_bar_set_open_and_close_by_time() -> None:
    agg, out = collect("1min")
    base = et(2024, 3, 5, 10, 0)
    agg.add_trade(base + 20 * S, 100.0, 1)
    agg.add_trade(base + 5 * S, 99.0, 1)  # earlier, still inside the open bar: becomes the open
    agg.add_trade(base + 50 * S, 101.0, 1)
    agg.add_trade(base + 40 * S, 102.0, 1)  # earlier than the last: not the close
    agg.flush()
    assert out == [Bar(base, 99.0, 102.0, 99.0, 101.0, 4.0)]


def test_mid_quotes_build_bars_from_the_bid_ask_midpoint() -> None:
    agg, out = collect("1min", price_source="mid")
    base = et(2024, 3, 5, 10, 0)
    agg.add_tick(Tick(base + 1 * S, bid=100.0))  # no ask yet: no mid
    agg.add_tick(Tick(base + 2 * S, ask=100.5))
    agg.add_tick(Tick(base + 3 * S, bid=100.5, ask=101.0))
    agg.add_tick(Tick(base + 4 * S, last=250.0, last_size=5))  # a trade alone does not move the mid
    agg.add_tick(Tick(base + 5 * S, ask=100.75))
    agg.flush()
    assert out == [Bar(base, 100.25, 100.75, 100.25, 100.625, 0.0)]


def test_trade_bars_ignore_quote_only_ticks() -> None:
    agg, out = collect("1min")
    base = et(2024, 3, 5, 10, 0)
    agg.add_tick(Tick(base + S, bid=99.75, ask=100.0))
    agg.add_tick(Tick(base + 2 * S, last=100.0, last_size=3))
    agg.flush()
    assert out == [Bar(base, 100.0, 100.0, 100.0, 100.0, 3.0)]


# Time from the data -----------------------------------------------------------------------------------------
def test_on_time_closes_the_bar_at_its_end_even_without_a_tick() -> None:
    agg, out = collect("5min")
    agg.add_trade(et(2024, 3, 5, 9, 31), 5000.0, 1)
    agg.on_time(et(2024, 3, 5, 9, 35) - 1)
    assert out == []
    agg.on_time(et(2024, 3, 5, 9, 35))
    assert [b.ts for b in out] == [et(2024, 3, 5, 9, 30)]
    agg.on_time(et(2024, 3, 5, 9, 50))  # nothing open: nothing emitted
    assert len(out) == 1
    with pytest.raises(BarDataError, match="was already emitted"):
        agg.add_trade(et(2024, 3, 5, 9, 34, 59), 5000.0, 1)


def test_flush_with_a_time_waits_for_the_bar_end_and_without_emits_the_partial_bar() -> None:
    agg, out = collect("1h")
    agg.add_trade(et(2024, 3, 5, 10, 15), 5000.0, 1)
    agg.flush(et(2024, 3, 5, 10, 30))
    assert out == []
    agg.flush()
    assert out == [Bar(et(2024, 3, 5, 10, 0), 5000.0, 5000.0, 5000.0, 5000.0, 1.0)]


def test_five_second_bars_complete_the_output_bar_when_the_last_one_arrives() -> None:
    agg, out = collect("1min", input_bar_size="5s")
    base = et(2024, 3, 5, 9, 30)
    for i in range(11):
        agg.add_bar(Bar(base + i * 5 * S, 10.0 + i, 10.0 + i, 10.0 + i, 10.0 + i, 1.0))
    assert out == []
    agg.add_bar(Bar(base + 55 * S, 30.0, 30.0, 8.0, 9.0, 1.0))  # covers [09:30:55, 09:31:00): the last one
    assert out == [Bar(base, 10.0, 30.0, 8.0, 9.0, 12.0)]


def test_input_bar_size_must_divide_the_interval() -> None:
    with pytest.raises(ParameterError, match="input bar size 45s must divide the bar interval 1min"):
        BarAggregator("1min", input_bar_size="45s")


def test_daily_bars_follow_the_globex_session_not_utc_midnight() -> None:
    agg, out = collect("1d")
    agg.add_trade(et(2024, 3, 4, 19, 0), 5000.0, 1)  # Monday 19:00 ET = Tuesday's session (UTC: Tue 00:00)
    agg.add_trade(et(2024, 3, 5, 10, 0), 5020.0, 2)  # Tuesday morning, same session
    agg.add_trade(et(2024, 3, 5, 16, 59, 59), 5010.0, 3)
    agg.add_trade(et(2024, 3, 5, 17, 30), 1.0, 9)  # inside the daily halt: not part of any daily bar
    agg.add_trade(et(2024, 3, 5, 18, 0), 5011.0, 4)  # Wednesday's session opens
    agg.flush()
    assert out == [
        Bar(et(2024, 3, 4, 18, 0), 5000.0, 5020.0, 5000.0, 5010.0, 6.0),
        Bar(et(2024, 3, 5, 18, 0), 5011.0, 5011.0, 5011.0, 5011.0, 4.0),
    ]
    assert agg.outside_session == 1


def test_daily_bar_closes_on_the_clock_at_the_session_close() -> None:
    agg, out = collect("1d")
    agg.add_trade(et(2024, 3, 5, 12, 0), 5000.0, 1)
    agg.on_time(et(2024, 3, 5, 16, 59, 59))
    assert out == []
    agg.on_time(et(2024, 3, 5, 17, 0))
    assert [b.ts for b in out] == [et(2024, 3, 4, 18, 0)]


# Bad input --------------------------------------------------------------------------------------------------
def test_a_trade_older_than_the_open_bar_is_rejected_naming_its_time_and_the_bar() -> None:
    agg, _ = collect("5min", name="MES")
    agg.add_trade(et(2024, 3, 5, 9, 36), 5000.0, 1)
    late = et(2024, 3, 5, 9, 34, 10)
    with pytest.raises(BarDataError) as caught:
        agg.add_trade(late, 4999.0, 1)
    message = str(caught.value)
    assert message.startswith("MES: late event at 2024-03-05T14:34:10+00:00")
    assert f"ts={late}" in message
    assert "older than the open 5min bar [2024-03-05T14:35:00+00:00" in message


def test_late_trades_are_counted_and_dropped_under_the_drop_policy() -> None:
    agg, out = collect("5min", late_policy="drop")
    agg.add_trade(et(2024, 3, 5, 9, 36), 5000.0, 1)
    agg.add_trade(et(2024, 3, 5, 9, 34), 1.0, 100)
    agg.add_trade(et(2024, 3, 5, 9, 12), 1.0, 100)
    agg.flush()
    assert agg.late_dropped == 2
    assert out == [Bar(et(2024, 3, 5, 9, 35), 5000.0, 5000.0, 5000.0, 5000.0, 1.0)]


def test_a_duplicate_five_second_bar_is_rejected_or_counted() -> None:
    bar = Bar(et(2024, 3, 5, 9, 30, 5), 10.0, 11.0, 9.0, 10.5, 3.0)
    strict, _ = collect("1min")
    strict.add_bar(bar)
    with pytest.raises(BarDataError, match=r"duplicate event at 2024-03-05T14:30:05\+00:00.*same ts"):
        strict.add_bar(bar)
    lenient, out = collect("1min", late_policy="drop")
    lenient.add_bar(bar)
    lenient.add_bar(bar)
    lenient.add_bar(bar._replace(ts=bar.ts - 5 * S))  # older than the previous input bar
    lenient.flush()
    assert (lenient.duplicates_dropped, lenient.late_dropped) == (1, 1)
    assert out == [bar._replace(ts=et(2024, 3, 5, 9, 30))]


@pytest.mark.parametrize(
    ("price", "size", "fragment"),
    [
        (math.nan, 1.0, "price nan at 2024-03-05T15:00:00"),
        (-0.25, 1.0, "price -0.25 at 2024-03-05T15:00:00.*must be finite and >= 0"),
        (math.inf, 1.0, "price inf"),
        (100.0, -1.0, "size -1.0 at 2024-03-05T15:00:00"),
        (100.0, math.nan, "size nan"),
    ],
)
def test_nan_or_negative_input_is_rejected_naming_field_and_time(
    price: float, size: float, fragment: str
) -> None:
    agg, _ = collect("1min")
    with pytest.raises(BarDataError, match=fragment):
        agg.add_trade(et(2024, 3, 5, 10, 0), price, size)


def test_negative_prices_are_accepted_when_allowed() -> None:
    agg, out = collect("1min", allow_negative_prices=True)
    agg.add_trade(et(2020, 4, 20, 14, 0), -37.63, 1)  # WTI crude, April 2020
    agg.flush()
    assert out[0].close == -37.63
    with pytest.raises(BarDataError, match="price nan"):
        agg.add_trade(et(2020, 4, 20, 14, 1), math.nan, 1)


def test_a_malformed_input_bar_is_rejected_naming_the_problem() -> None:
    agg, _ = collect("1min")
    with pytest.raises(BarDataError, match=r"input bar at 2024-03-05T15:00:00\+00:00.*high 9.0 < low 10.0"):
        agg.add_bar(Bar(et(2024, 3, 5, 10, 0), 10.0, 9.0, 10.0, 10.0, 1.0))


def test_resample_rejects_unsorted_input() -> None:
    bars = [Bar(2 * MIN, 1, 1, 1, 1, 1), Bar(MIN, 1, 1, 1, 1, 1)]
    with pytest.raises(BarDataError, match=r"row 1 .* is not after row 0"):
        resample_bars(bars, "5min")


# Batch validation -------------------------------------------------------------------------------------------
def test_validate_bars_reports_every_violation_with_row_and_time() -> None:
    t0 = et(2024, 3, 5, 10, 0)
    rows = [
        Bar(t0, 10, 11, 9, 10, 1),
        Bar(t0 + MIN, 10, 11, 9, 10, 1),
        Bar(t0 + MIN, 10, 11, 9, 10, 1),  # 2: duplicate ts
        Bar(t0 + 3 * MIN, 10, 11, 9, math.nan, 1),  # 3: NaN close
        Bar(t0 + 4 * MIN, 12, 11, 9, 10, 1),  # 4: high below open
        Bar(t0 + 5 * MIN, 10, 11, 10.5, 10, 1),  # 5: low above close
        Bar(t0 + 6 * MIN, 10, 11, 9, 10, -5),  # 6: negative volume
        Bar(t0 + 2 * MIN, 10, 11, 9, 10, 1),  # 7: back in time
    ]
    with pytest.raises(InvalidBarsError) as caught:
        validate_bars(rows, what="MES 1min")
    problems = caught.value.problems
    assert problems == [
        f"row 2 (2024-03-05T15:01:00+00:00 (ts={t0 + MIN})): duplicate ts, same as row 1",
        f"row 3 (2024-03-05T15:03:00+00:00 (ts={t0 + 3 * MIN})): close is nan",
        f"row 4 (2024-03-05T15:04:00+00:00 (ts={t0 + 4 * MIN})): high 11.0 < max(open 12.0, close 10.0)",
        f"row 5 (2024-03-05T15:05:00+00:00 (ts={t0 + 5 * MIN})): low 10.5 > min(open 10.0, close 10.0)",
        f"row 6 (2024-03-05T15:06:00+00:00 (ts={t0 + 6 * MIN})): volume -5.0 is negative",
        f"row 7 (2024-03-05T15:02:00+00:00 (ts={t0 + 2 * MIN})): ts goes back in time from row 6 "
        f"(2024-03-05T15:06:00+00:00 (ts={t0 + 6 * MIN}))",
    ]
    assert str(caught.value).startswith("MES 1min: 6 problem(s): row 2")


def test_validate_bars_rejects_an_empty_batch_and_accepts_a_sound_one() -> None:
    with pytest.raises(InvalidBarsError, match="empty"):
        validate_bars([])
    good = [Bar(0, 1.0, 2.0, 0.5, 1.5, 0.0), Bar(MIN, 1.5, 1.5, 1.5, 1.5, 10.0)]
    assert validate_bars(good).bars() == good


def test_bar_frame_iterates_as_bars_and_slices_by_time() -> None:
    bars = [Bar(i * MIN, 1.0 + i, 2.0 + i, 0.5 + i, 1.5 + i, float(i)) for i in range(10)]
    frame = BarFrame.from_bars(bars)
    assert len(frame) == 10
    assert list(frame) == bars
    assert frame.between(3 * MIN, 6 * MIN).bars() == bars[3:6]
    assert isinstance(next(iter(frame)).ts, int)

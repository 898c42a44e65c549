"""What a range needs: contract windows from the catalog's roll and last-trade rules, IB's largest duration
per bar size, and chunks that skip what is done."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest

from ibot.exchange.hours import listed_hours_for
from ibot.history.download import cross_check
from ibot.history.plan import bar_spec, chunks, contract_windows, series_name, units
from ibot.history.source import ContractInfo
from ibot.model import catalog
from ibot.model.errors import ParameterError
from ibot.model.market import NS_PER_SECOND


def test_each_month_is_needed_from_the_previous_roll_minus_the_overlap_to_its_last_trade() -> None:
    windows = contract_windows("MES", date(2024, 11, 1), date(2025, 1, 31))
    assert [(w.key, w.first_day, w.last_day) for w in windows] == [
        ("MESZ4", date(2024, 11, 1), date(2024, 12, 20)),  # clipped to --from; ends on its last trade date
        ("MESH5", date(2024, 12, 2), date(2025, 1, 31)),  # Z4 rolls Mon 2024-12-16; 10 business days earlier
    ]  # MESM5's window starts 2025-03-03 (H5 rolls 2025-03-17): not needed
    assert windows[0].last_trade == catalog.last_trade_date("MES", 2024, 12)
    wider = contract_windows("MES", date(2024, 11, 1), date(2025, 1, 31), overlap_days=0)
    assert wider[1].first_day == date(2024, 12, 16)


def test_full_life_and_stocks_and_gold_months() -> None:
    full = contract_windows("MES", date(2024, 11, 1), date(2024, 11, 29), full=True)
    assert [w.key for w in full] == ["MESZ4", "MESH5", "MESM5", "MESU5", "MESZ5"]  # 400 days of life
    [spy] = contract_windows("SPY", date(2024, 1, 2), date(2024, 1, 31))
    assert (spy.key, spy.first_day, spy.last_day) == ("SPY", date(2024, 1, 2), date(2024, 1, 31))
    gold = contract_windows("MGC", date(2024, 3, 1), date(2024, 6, 30))
    assert [w.key for w in gold] == ["MGCJ4", "MGCM4", "MGCQ4"]  # only G J M Q V Z are listed


@pytest.mark.parametrize(
    ("bar", "ib_bar", "duration", "store"),
    [
        ("1 secs", "1 secs", "1800 S", "1s"),
        ("5s", "5 secs", "3600 S", "5s"),
        ("30 secs", "30 secs", "28800 S", "30s"),
        ("1 min", "1 min", "1 D", "1min"),
        ("1min", "1 min", "1 D", "1min"),
        ("2 mins", "2 mins", "2 D", "2min"),
        ("5 mins", "5 mins", "1 W", "5min"),
        ("1 hour", "1 hour", "1 M", "1h"),
        ("1 day", "1 day", "1 Y", "1d"),
    ],
)
def test_the_largest_duration_ib_serves_for_each_bar_size(
    bar: str, ib_bar: str, duration: str, store: str
) -> None:
    spec = bar_spec(bar)
    assert (spec.ib_bar, spec.duration, spec.store_name) == (ib_bar, duration, store)


def test_another_what_is_stored_under_its_own_name_and_bad_input_is_refused() -> None:
    assert bar_spec("1 min", "midpoint").store_key("MESH5") == "MESH5.MIDPOINT"
    assert bar_spec("1 min", "TRADES").store_key("MESH5") == "MESH5"
    assert series_name("MESH5", bar_spec("1 min", "BID_ASK")) == "MESH5.BID_ASK/1min"
    with pytest.raises(ParameterError, match="IB serves"):
        bar_spec("4 mins")
    with pytest.raises(ParameterError, match="--what"):
        bar_spec("1 min", "ADJUSTED")


def _ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * NS_PER_SECOND


def test_one_minute_bars_take_one_request_per_session_and_skip_what_is_done() -> None:
    [z4, _] = contract_windows("MES", date(2024, 12, 9), date(2024, 12, 20))
    spec = bar_spec("1 min")
    found = units(z4, spec)
    assert [u.day for u in found][:3] == [date(2024, 12, 9), date(2024, 12, 10), date(2024, 12, 11)]
    assert len(found) == 10
    hours = listed_hours_for(z4.instrument)
    assert (found[0].start_ns, found[0].end_ns) == hours.session_open_close(date(2024, 12, 9))
    todo = chunks(found, spec, lambda a, b: False)
    assert [c.duration for c in todo] == ["1 D"] * 10
    done = {(found[3].start_ns, found[3].end_ns)}
    assert len(chunks(found, spec, lambda a, b: (a, b) in done)) == 9
    assert chunks(found, spec, lambda a, b: True) == []
    # the server's now cuts the plan: a session opening after it is not asked for
    assert len(units(z4, spec, until_ns=_ns(2024, 12, 11, 12, 0))) == 3


def test_larger_bars_group_sessions_and_second_bars_split_them() -> None:
    [z4, _] = contract_windows("MES", date(2024, 12, 9), date(2024, 12, 20))
    weekly = chunks(units(z4, bar_spec("5 mins")), bar_spec("5 mins"), lambda a, b: False)
    assert [(c.duration, c.units) for c in weekly] == [("1 W", 5), ("1 W", 5)]
    assert all(c.end_ns - c.start_ns <= 7 * 86_400 * NS_PER_SECOND for c in weekly)
    two = chunks(units(z4, bar_spec("2 mins")), bar_spec("2 mins"), lambda a, b: False)
    assert [c.duration for c in two] == ["2 D", "2 D", "1 D", "2 D", "2 D", "1 D"]  # never over a weekend
    secs = chunks(units(z4, bar_spec("1 secs")), bar_spec("1 secs"), lambda a, b: False)
    assert {c.duration for c in secs} == {"1800 S"}  # a 23-hour session is 46 pieces of 30 minutes
    assert len(secs) == 10 * 46


def test_a_last_trade_date_ib_disagrees_on_is_logged_naming_both_and_ibs_wins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    [z4] = contract_windows("MES", date(2024, 12, 2), date(2024, 12, 31))[:1]
    info = ContractInfo(z4.instrument, date(2024, 12, 19))
    with caplog.at_level(logging.WARNING, logger="ibot.history"):
        said = cross_check(z4, info)
    assert said is not None and "2024-12-19" in said and "2024-12-20" in said
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "2024-12-20" in caplog.records[
        0
    ].getMessage()
    assert cross_check(z4, ContractInfo(z4.instrument, date(2024, 12, 20))) is None

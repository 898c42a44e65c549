"""Historical pacing and the message-rate limit, driven by explicit times."""

from __future__ import annotations

from ibot.sim.pacing import HistoricalPacing, MessageRate, SimLimits


def test_identical_request_within_15_seconds_violates_and_after_is_fine() -> None:
    p = HistoricalPacing(SimLimits())
    assert p.check("req", "MES", 0.0) is None
    assert p.check("req", "MES", 14.9) is not None
    assert p.check("req", "MES", 15.0) is None


def test_sixth_request_for_one_contract_within_two_seconds_violates() -> None:
    p = HistoricalPacing(SimLimits())
    results = [p.check(f"req{i}", "MES", i * 0.1) for i in range(6)]
    assert results[:5] == [None] * 5 and results[5] is not None
    assert p.check("other", "MNQ", 0.6) is None


def test_more_than_60_requests_in_ten_minutes_violate() -> None:
    p = HistoricalPacing(SimLimits())
    assert all(p.check(f"r{i}", f"c{i}", i * 5.0) is None for i in range(60))
    assert p.check("r60", "c60", 300.0) is not None
    assert p.check("r61", "c61", 601.0) is None


def test_pacing_switched_off_never_violates() -> None:
    p = HistoricalPacing(SimLimits.off())
    assert all(p.check("same", "MES", 0.0) is None for _ in range(100))


def test_message_rate_allows_50_per_second() -> None:
    rate = MessageRate(50)
    assert all(rate.allow(0.5) for _ in range(50))
    assert not rate.allow(0.9)
    assert rate.allow(1.5)
    assert all(MessageRate(0).allow(0.0) for _ in range(1000))

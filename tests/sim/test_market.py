"""The simulated market: deterministic, on the tick grid, bar sizes agree, replay follows its bars."""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, timedelta

import pytest

from ibot.exchange.hours import CME_GLOBEX
from ibot.model import catalog
from ibot.model.instruments import Instrument
from ibot.model.market import NS_PER_SECOND, Bar
from ibot.sim.market import (
    ContractBook,
    ContractQuery,
    Quote,
    ReplaySource,
    SimMarket,
    SyntheticSource,
)

START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
NOW_S = int(START.timestamp())
MES = catalog.contract("MES", 2025, 6)


def market(seed: int = 0) -> SimMarket:
    return SimMarket(SyntheticSource(seed), NOW_S * NS_PER_SECOND, speed=60.0)


def on_grid(price: float, tick: float = 0.25) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-9


def test_same_seed_same_prices_and_other_seed_differs() -> None:
    a = market(1).bars(MES, NOW_S - 3600, NOW_S, 60, "TRADES", False)
    b = market(1).bars(MES, NOW_S - 3600, NOW_S, 60, "TRADES", False)
    c = market(2).bars(MES, NOW_S - 3600, NOW_S, 60, "TRADES", False)
    assert a == b
    assert [x.close for x in a] != [x.close for x in c]


def test_every_price_is_on_the_tick_grid() -> None:
    m = market()
    bars = m.bars(MES, NOW_S - 86_400, NOW_S, 300, "TRADES", False)
    q = m.quote(MES, NOW_S)
    assert q is not None
    prices = [p for b in bars for p in (b.open, b.high, b.low, b.close)] + [
        q.bid,
        q.ask,
        q.last,
        q.high,
        q.low,
    ]
    assert all(on_grid(p) for p in prices)


def test_bar_sizes_agree_five_one_minute_bars_make_one_five_minute_bar() -> None:
    m = market()
    ones = m.bars(MES, NOW_S - 600, NOW_S - 300, 60, "TRADES", False)
    [five] = m.bars(MES, NOW_S - 600, NOW_S - 300, 300, "TRADES", False)
    assert five.open == ones[0].open and five.close == ones[-1].close
    assert five.high == max(b.high for b in ones) and five.low == min(b.low for b in ones)
    assert five.volume == sum(b.volume for b in ones)


def test_no_bars_outside_the_session_and_none_in_the_future() -> None:
    m = market()
    saturday = int(datetime(2025, 3, 8, 15, 0, tzinfo=UTC).timestamp())
    assert m.bars(MES, saturday, saturday + 3600, 60, "TRADES", False) == []
    assert m.quote(MES, saturday) is None
    assert m.bars(MES, NOW_S + 60, NOW_S + 3600, 60, "TRADES", False) == []


def test_daily_bars_are_one_per_trade_date() -> None:
    m = market()
    days = m.bars(MES, NOW_S - 10 * 86_400, NOW_S, 86_400, "TRADES", False, "D")
    dates = [b.trade_date for b in days]
    assert dates == sorted(set(dates))
    assert all(d is not None and CME_GLOBEX.is_trade_date(d) for d in dates)
    assert dates[-1] == date(2025, 3, 5)


def test_replay_follows_the_stored_bars() -> None:
    t0 = NOW_S - NOW_S % 60
    stored = [
        Bar((t0 + 60 * i) * NS_PER_SECOND, 5000 + i, 5002 + i, 4999 + i, 5001 + i, 120) for i in range(5)
    ]
    m = SimMarket(ReplaySource({"MES": stored}, 60), t0 * NS_PER_SECOND, speed=None)
    m.advance(5 * 60)
    served = m.bars(MES, t0, t0 + 300, 60, "TRADES", False)
    assert [(b.open, b.high, b.low, b.close, b.volume) for b in served] == [
        (b.open, b.high, b.low, b.close, 120) for b in stored
    ]
    assert m.bars(MES, t0 + 300, t0 + 400, 60, "TRADES", False) == []


def test_contract_book_matches_by_month_local_symbol_and_con_id() -> None:
    book = ContractBook(["MES", "SPY"])
    asof = START.date()
    by_month = book.match(ContractQuery(symbol="MES", sec_type="FUT", last_trade="202506"), asof)
    by_local = book.match(ContractQuery(local_symbol="MESM5", sec_type="FUT"), asof)
    by_con_id = book.match(ContractQuery(con_id=MES.con_id), asof)
    assert by_month == by_local == by_con_id == [MES]
    assert len(book.match(ContractQuery(symbol="MES", sec_type="FUT"), asof)) > 1
    assert book.match(ContractQuery(symbol="MES", sec_type="FUT", exchange="NYSE"), asof) == []
    assert book.match(ContractQuery(symbol="SPY", sec_type="STK", exchange="SMART"), asof) == [
        catalog.get_instrument("SPY")
    ]


@pytest.mark.parametrize(
    ("last_trade", "found"),
    [
        ("20250620", True),
        ("20250620 08:30 US/Central", True),  # CONTRACT_DATA's own form, sent back unsplit by @stoqey/ib
        ("20250620 08:30", True),
        ("202506 ", True),
        ("20250621", False),
        ("June 2025", False),  # an unreadable expiry matched every month before: now none (error 200)
        ("2025", False),
        ("2025062", False),
    ],
)
def test_contract_book_matches_an_expiry_by_its_leading_date(last_trade: str, found: bool) -> None:
    book = ContractBook(["MES"])
    got = book.match(ContractQuery(symbol="MES", sec_type="FUT", last_trade=last_trade), START.date())
    assert got == ([MES] if found else [])


# --- streamed quotes: the incremental session tape agrees with the session computed from its open ----------


def expected_quote(m: SimMarket, inst: Instrument, second: int) -> Quote | None:
    """The quote at `second` straight from the price source: high, low and volume over the session so far,
    bid and last at this second's price, ask one tick above, open the session's first price."""
    hours = CME_GLOBEX
    wins = hours.windows(second, second + 1, False)
    if not wins or not m.source.session_mask(inst, second, second + 1, False)[0]:
        return None
    d, open_s, _ = wins[0]
    prices, volume = m.source.seconds(inst, open_s, second + 1)
    prev = next(
        hours.window(d - timedelta(days=k), False)[1]
        for k in range(1, 10)
        if hours.is_trade_date(d - timedelta(days=k))
    )
    close = int(m.source.seconds(inst, prev - 1, prev)[0][-1])
    p = int(prices[-1])
    sizes = zlib.crc32(f"{inst.symbol}|{second}".encode())
    return Quote(
        second=second,
        bid=inst.from_ticks(p),
        ask=inst.from_ticks(p + 1),
        last=inst.from_ticks(p),
        bid_size=1 + sizes % 37,
        ask_size=1 + (sizes >> 8) % 37,
        last_size=max(int(volume[-1]), 1),
        volume=int(volume.sum()),
        high=inst.from_ticks(int(prices.max())),
        low=inst.from_ticks(int(prices.min())),
        open=inst.from_ticks(int(prices[0])),
        close=inst.from_ticks(close),
        traded=bool(volume[-1] > 0),
    )


def test_streamed_quotes_follow_the_clock_through_the_daily_break_and_the_weekend() -> None:
    # Friday 15:58:50 CT: the close at 16:00, the weekend, Sunday's 17:00 open; steps as the clock pump makes
    t = int(datetime(2025, 3, 7, 21, 58, 50, tzinfo=UTC).timestamp())
    m = SimMarket(SyntheticSource(3), t * NS_PER_SECOND, speed=None)
    sunday_open = int(datetime(2025, 3, 9, 22, 0, tzinfo=UTC).timestamp())  # 17:00 CT (CDT from Mar 9)
    steps = [(t, t + 5), (t + 5, t + 9), (t + 9, t + 9), (t + 9, t + 40), (t + 41, t + 75), (t + 76, t + 80)]
    steps.append((sunday_open - 3, sunday_open + 4))
    for first, last in steps:
        got = m.quote_ticks(MES, first, last)
        assert [None if q is None else q.prices(MES) for q in got] == [
            expected_quote(m, MES, s) for s in range(first, last + 1)
        ]
    assert (
        m.quote(MES, t + 69) is not None
        and m.quote(MES, t + 70) is None
        and m.quote(MES, sunday_open + 4) is not None
    )


def test_a_second_earlier_than_the_tape_keeps_is_computed_from_the_session_open() -> None:
    m = market()
    streamed = m.quotes(MES, NOW_S, NOW_S + 200)
    assert streamed == [expected_quote(m, MES, s) for s in range(NOW_S, NOW_S + 201)]
    for s in (
        NOW_S + 3,
        NOW_S - 3600,
        NOW_S - 86_400,
        NOW_S + 199,
    ):  # before the kept seconds, older sessions
        assert m.quote(MES, s) == expected_quote(m, MES, s)
    assert m.quotes(MES, NOW_S + 201, NOW_S + 205) == [
        expected_quote(m, MES, s) for s in range(NOW_S + 201, NOW_S + 206)
    ]


def test_every_subscriber_of_one_step_gets_the_same_quotes_and_months_of_a_product_move_alike() -> None:
    """Months of a product share its path and differ by their basis (carry to expiry): a later month is
    dearer (MES trades at a premium) by a nearly constant number of ticks over a few seconds."""
    m = market()
    sept = catalog.contract("MES", 2025, 9)
    first = m.quote_ticks(MES, NOW_S, NOW_S + 4)
    assert m.quote_ticks(MES, NOW_S, NOW_S + 4) == first
    assert m.quote_ticks(MES, NOW_S + 2, NOW_S + 4) == first[2:]
    later = m.quote_ticks(sept, NOW_S, NOW_S + 4)
    gaps = [b.bid - a.bid for a, b in zip(first, later, strict=True) if a is not None and b is not None]
    assert len(gaps) == 5 and min(gaps) > 0 and max(gaps) - min(gaps) <= 1
    assert [(a.bid_size, a.ask_size, a.volume) for a in first if a] == [
        (b.bid_size, b.ask_size, b.volume) for b in later if b
    ]


def test_replayed_quotes_are_absent_between_bars_and_follow_each_bar_inside() -> None:
    t0 = NOW_S - NOW_S % 60
    stored = [
        Bar((t0 + 60 * i) * NS_PER_SECOND, 5000 + i, 5003 + i, 4998 + i, 5001 + i, 120)
        for i in range(6)
        if i != 2  # a gap: no market in the third minute
    ]
    m = SimMarket(ReplaySource({"MES": stored}, 60), t0 * NS_PER_SECOND, speed=None)
    got = m.quotes(MES, t0, t0 + 359)
    assert got == [expected_quote(m, MES, s) for s in range(t0, t0 + 360)]
    assert all(q is None for q in got[120:180]) and all(q is not None for q in got[:120] + got[180:])
    assert [q.high for q in got[:60] if q is not None][-1] == 5003

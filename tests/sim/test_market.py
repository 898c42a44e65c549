"""The simulated market: deterministic, on the tick grid, bar sizes agree, replay follows its bars."""

from __future__ import annotations

from datetime import UTC, date, datetime

from ibot.model import catalog
from ibot.model.market import NS_PER_SECOND, Bar
from ibot.sim.market import (
    GLOBEX_HOURS,
    ContractBook,
    ContractQuery,
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
    assert all(d is not None and GLOBEX_HOURS.is_trade_date(d) for d in dates)
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

"""The seeded synthetic market: determinism, the tick grid, OHLC consistency, session hours, regimes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ibot.data.bars import BarAggregator, resample_bars, validate_bars
from ibot.data.synth import CHOPPY, TRENDING, synth_bars, synth_market, synth_ticks
from ibot.model import Bar, Instrument, ParameterError, SecType, datetime_to_ns

ET = ZoneInfo("America/New_York")
MES = Instrument("MES", SecType.FUT, "CME", "USD", Decimal(5), Decimal("0.25"))
MCL = Instrument("MCL", SecType.FUT, "NYMEX", "USD", Decimal(100), Decimal("0.01"))
MGC = Instrument("MGC", SecType.FUT, "COMEX", "USD", Decimal(10), Decimal("0.1"))
MBT = Instrument("MBT", SecType.FUT, "CME", "USD", Decimal("0.1"), Decimal(5))
SPY = Instrument("SPY", SecType.STK, "SMART", "USD", Decimal(1), Decimal("0.01"), primary_exchange="ARCA")


def local_times(ts: np.ndarray) -> list[datetime]:
    return [datetime.fromtimestamp(t // 1_000_000_000, tz=ET) for t in ts.tolist()]


def test_same_seed_gives_the_same_market_and_another_seed_does_not() -> None:
    a = synth_bars(MES, date(2024, 3, 4), 3, seed=11)
    b = synth_bars(MES, date(2024, 3, 4), 3, seed=11)
    c = synth_bars(MES, date(2024, 3, 4), 3, seed=12)
    assert a.equals(b)
    assert np.array_equal(a.ts, c.ts)
    assert not np.array_equal(a.close, c.close)


@pytest.mark.parametrize("instrument", [MES, MCL, MGC, MBT], ids=lambda i: i.symbol)
def test_every_price_is_on_the_tick_grid_exactly(instrument: Instrument) -> None:
    bars = synth_bars(instrument, date(2024, 3, 4), 5, seed=3)
    prices = np.concatenate([bars.open, bars.high, bars.low, bars.close]).tolist()
    assert all(instrument.from_ticks(instrument.to_ticks(p)) == p for p in prices)
    assert all(p > 0 for p in prices)


def test_ohlc_is_consistent_and_the_batch_passes_validation() -> None:
    bars = synth_bars(MCL, date(2024, 1, 2), 10, seed=5)
    assert np.all(bars.low <= np.minimum(bars.open, bars.close))
    assert np.all(bars.high >= np.maximum(bars.open, bars.close))
    assert np.all(bars.volume >= 1) and np.all(bars.volume == np.rint(bars.volume))
    validate_bars(bars)


def test_start_price_defaults_per_symbol_and_can_be_given() -> None:
    assert synth_bars(MES, date(2024, 3, 4), 1).open[0] == pytest.approx(5000, rel=0.01)
    assert synth_bars(MCL, date(2024, 3, 4), 1).open[0] == pytest.approx(70, rel=0.01)
    assert synth_bars(MGC, date(2024, 3, 4), 1).open[0] == pytest.approx(2000, rel=0.01)
    assert synth_bars(MES, date(2024, 3, 4), 1, start_price=4200).open[0] == pytest.approx(4200, rel=0.01)


def test_no_bars_in_the_daily_halt_or_over_the_weekend() -> None:
    bars = synth_bars(MES, date(2024, 3, 4), 10, bar_size="5min", seed=1)  # spans the 2024-03-10 DST change
    seen_days = set()
    for t in local_times(bars.ts):
        assert t.weekday() != 5, t  # never on Saturday
        assert not (t.weekday() == 6 and t.time() < time(18)), t  # Sunday only from the 18:00 ET open
        assert not (t.weekday() == 4 and t.time() >= time(17)), t  # Friday closes at 17:00 ET
        assert not (time(17) <= t.time() < time(18)), t  # daily maintenance halt
        seen_days.add(t.date())
    # 10 sessions from Monday 2024-03-04: the Sunday evenings of 03-03 and 03-10 open the Monday sessions.
    assert date(2024, 3, 3) in seen_days and date(2024, 3, 10) in seen_days
    assert bars.ts[-1] == datetime_to_ns(datetime(2024, 3, 15, 16, 55, tzinfo=ET))
    per_session = 23 * 12
    assert len(bars) == 10 * per_session


def test_stock_bars_lie_in_regular_trading_hours() -> None:
    bars = synth_bars(SPY, date(2024, 3, 4), 3, seed=2)
    times = local_times(bars.ts)
    assert all(time(9, 30) <= t.time() < time(16) for t in times)
    assert len(bars) == 3 * 390


def test_an_aware_start_time_drops_the_bars_before_it() -> None:
    start = datetime(2024, 3, 5, 14, 0, tzinfo=UTC)  # Tuesday 09:00 ET, inside Tuesday's session
    bars = synth_bars(MES, start, 2)
    assert bars.ts[0] == datetime_to_ns(start)
    assert local_times(bars.ts[-1:])[0].date() == date(2024, 3, 6)


def test_both_regimes_appear_and_trends_travel_further_than_chop() -> None:
    market = synth_market(MES, date(2024, 1, 2), 40, seed=8)
    regime, close = market.regime, market.bars.close
    assert set(np.unique(regime).tolist()) == {TRENDING, CHOPPY}
    assert 0.2 < float(np.mean(regime == TRENDING)) < 0.8
    edges = np.flatnonzero(np.diff(regime)) + 1
    efficiency: dict[int, list[float]] = {TRENDING: [], CHOPPY: []}
    for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(regime)], strict=True):
        if hi - lo < 120:
            continue
        path = np.abs(np.diff(close[lo:hi])).sum()
        efficiency[int(regime[lo])].append(abs(close[hi - 1] - close[lo]) / path)
    assert len(efficiency[TRENDING]) >= 10 and len(efficiency[CHOPPY]) >= 10
    assert np.median(efficiency[TRENDING]) > 2 * np.median(efficiency[CHOPPY])


def test_volume_is_u_shaped_over_the_cash_session() -> None:
    bars = synth_bars(MES, date(2024, 3, 4), 20, seed=4)
    minutes = np.array([t.hour * 60 + t.minute for t in local_times(bars.ts)])

    def mean_volume(first: int, last: int) -> float:
        return float(bars.volume[(minutes >= first) & (minutes < last)].mean())

    opening, midday, closing = mean_volume(570, 600), mean_volume(720, 780), mean_volume(930, 960)
    overnight = mean_volume(0, 240)
    assert opening > 1.5 * midday and closing > 1.5 * midday and midday > overnight


def test_volatility_clusters() -> None:
    bars = synth_bars(MES, date(2024, 1, 2), 60, bar_size="1h", seed=6)
    moves = np.abs(np.diff(np.log(bars.close)))
    # Compare days: the spread of daily mean absolute moves exceeds what independent draws would give.
    days = len(moves) // 23
    daily = moves[: days * 23].reshape(days, 23).mean(axis=1)
    shuffled = np.random.default_rng(0).permutation(moves[: days * 23]).reshape(days, 23).mean(axis=1)
    assert daily.std() > 1.3 * shuffled.std()


def test_ticks_aggregate_back_to_the_bars_exactly() -> None:
    bars = synth_bars(MES, date(2024, 3, 7), 2, seed=9)
    out: list[Bar] = []
    one_minute = BarAggregator("1min", out.append)
    out5: list[Bar] = []
    five_minutes = BarAggregator("5min", out5.append)
    for tick in synth_ticks(MES, date(2024, 3, 7), 2, seed=9):
        assert tick.bid < tick.ask and tick.bid <= tick.last <= tick.ask
        one_minute.add_tick(tick)
        five_minutes.add_tick(tick)
    one_minute.flush()
    five_minutes.flush()
    assert out == bars.bars()
    assert out5 == resample_bars(bars, "5min").bars()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"days": 0}, "days 0 must be at least 1"),
        ({"bar_size": "1d"}, "must be intraday"),
        ({"start_price": -5.0}, "start price -5.0 must be a positive number"),
        ({"annual_vol": 0.0}, "annual volatility 0.0"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs: dict[str, object], fragment: str) -> None:
    args: dict[str, object] = {"days": 1} | kwargs
    with pytest.raises(ParameterError, match=fragment):
        synth_bars(MES, date(2024, 3, 4), **args)  # type: ignore[arg-type]

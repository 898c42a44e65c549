"""Continuous futures series: splicing at the roll rule's roll bar, the four adjustments against a reference
written here with plain loops, roll records, errors for a missing month or no common price, and incremental
extension equal to a full rebuild."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from continuous_fixtures import write_months

from ibot.app.continuous import ContinuousRequest, build_continuous
from ibot.data.bars import BarFrame
from ibot.data.continuous import (
    Adjust,
    ContinuousSeries,
    ContinuousStore,
    build_series,
)
from ibot.data.contract_months import load_chain
from ibot.data.rolls import MissingContractError, NoCommonPriceError, trading_day_start
from ibot.data.store import BarStore
from ibot.model import catalog
from ibot.model.calendar import trading_day_end

BAR = "1h"
FIRST, LAST = date(2024, 1, 2), date(2025, 3, 31)


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, BarFrame]]:
    root = tmp_path_factory.mktemp("months")
    return root, write_months(root, "MES", FIRST, LAST, bar=BAR)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src / "bars", dst / "bars")
    return dst


def _reference(frames: dict[str, BarFrame], series: ContinuousSeries, adjust: Adjust) -> dict[str, list]:
    """The series computed from the raw months and the roll records alone, row by row."""
    rolls = series.rolls
    order = [rolls[0].from_contract] + [r.to_contract for r in rolls] if rolls else list(series.contracts)
    bounds = [r.ts for r in rolls]
    out: dict[str, list] = {"ts": [], "close": [], "open": [], "contract": [], "adjustment": []}
    first_ts = int(series.bars.ts[0])
    last_ts = int(series.bars.ts[-1])
    for k, key in enumerate(order):
        lo = bounds[k - 1] if k > 0 else first_ts - 1
        hi = bounds[k] if k < len(bounds) else last_ts
        later = rolls[k:]
        earlier = rolls[:k]
        if adjust is Adjust.BACKWARD_SPREAD:
            adj = sum(r.to_price - r.from_price for r in later)
        elif adjust is Adjust.FORWARD_SPREAD:
            adj = -sum(r.to_price - r.from_price for r in earlier)
        elif adjust is Adjust.BACKWARD_RATIO:
            adj = 1.0
            for r in later:
                adj *= r.to_price / r.from_price
        else:
            adj = 0.0
        frame = frames[key]
        for i in range(len(frame)):
            ts = int(frame.ts[i])
            if lo < ts <= hi:
                for name in ("open", "close"):
                    raw = float(getattr(frame, name)[i])
                    out[name].append(raw * adj if adjust is Adjust.BACKWARD_RATIO else raw + adj)
                out["ts"].append(ts)
                out["contract"].append(key)
                out["adjustment"].append(adj)
    return out


def _check_rolls_independently(frames: dict[str, BarFrame], series: ContinuousSeries) -> None:
    """Each roll: at or after the start of its roll day's trading day, both months have a bar there, none
    earlier in the window, and the recorded prices are both months' closes at that bar."""
    for r in series.rolls:
        old, new = frames[r.from_contract], frames[r.to_contract]
        start = trading_day_start(r.roll_day)
        assert r.ts >= start
        both = sorted(set(old.ts[old.ts >= start].tolist()) & set(new.ts[new.ts >= start].tolist()))
        assert both[0] == r.ts
        assert r.from_price == old.close[old.ts == r.ts][0]
        assert r.to_price == new.close[new.ts == r.ts][0]
        assert r.to_price != r.from_price  # the fixture's basis makes real gaps
        fut = next(f for f in _months_of("MES") if f.key == r.from_contract)
        assert r.roll_day == catalog.roll_date(fut)


def _months_of(symbol: str) -> list:
    return [catalog.contract(symbol, y, m) for y in (2024, 2025, 2026) for m in (3, 6, 9, 12)]


@pytest.mark.parametrize("adjust", list(Adjust))
def test_series_equals_an_independent_adjustment_of_the_raw_months(months, adjust: Adjust) -> None:
    root, frames = months
    chain = load_chain(BarStore(root), "MES", BAR)
    series = build_series("MES", BAR, adjust, chain)
    assert [r.from_contract for r in series.rolls] == ["MESH4", "MESM4", "MESU4", "MESZ4", "MESH5"]
    _check_rolls_independently(frames, series)
    ref = _reference(frames, series, adjust)
    assert series.bars.ts.tolist() == ref["ts"]
    assert series.contract.tolist() == ref["contract"]
    if adjust is Adjust.BACKWARD_RATIO:
        np.testing.assert_allclose(series.bars.close, ref["close"], rtol=1e-13)
        np.testing.assert_allclose(series.bars.open, ref["open"], rtol=1e-13)
        np.testing.assert_allclose(series.adjustment, ref["adjustment"], rtol=1e-13)
        return
    # spread and none: exact, and on the tick grid
    assert series.bars.close.tolist() == ref["close"]
    assert series.bars.open.tolist() == ref["open"]
    assert series.adjustment.tolist() == ref["adjustment"]
    ticks = series.bars.close / 0.25
    assert np.array_equal(ticks, np.rint(ticks))
    if adjust is Adjust.BACKWARD_SPREAD:
        assert series.adjustment[-1] == 0.0
    if adjust is Adjust.FORWARD_SPREAD:
        assert series.adjustment[0] == 0.0


def test_series_is_continuous_at_each_roll_under_spread_adjustment(months) -> None:
    root, _ = months
    chain = load_chain(BarStore(root), "MES", BAR)
    for adjust in (Adjust.BACKWARD_SPREAD, Adjust.FORWARD_SPREAD):
        s = build_series("MES", BAR, adjust, chain)
        for r in s.rolls:
            row = int(np.searchsorted(s.bars.ts, r.ts))
            # the roll bar is the old month's last bar; the next row is the new month's
            assert s.contract[row] == r.from_contract and s.contract[row + 1] == r.to_contract
            old_adj = s.adjustment[row]
            new_adj = s.adjustment[row + 1]
            assert r.from_price + old_adj == r.to_price + new_adj


def test_no_common_price_between_roll_day_and_last_trade_is_an_error_naming_both_months(
    months, tmp_path: Path
) -> None:
    root, frames = months
    root = _copy(root, tmp_path)
    store = BarStore(root)
    m4 = frames["MESM4"]
    lo = trading_day_start(date(2024, 3, 11))
    hi = trading_day_end(date(2024, 3, 15))
    keep = (m4.ts < lo) | (m4.ts >= hi)  # MESM4 trades nowhere in MESH4's roll window
    (root / "bars" / "MESM4" / f"{BAR}.parquet").unlink()
    store.write("MESM4", BAR, BarFrame(*(getattr(m4, n)[keep] for n in BarFrame.__dataclass_fields__)))
    chain = load_chain(store, "MES", BAR)
    with pytest.raises(NoCommonPriceError) as err:
        build_series("MES", BAR, Adjust.BACKWARD_SPREAD, chain)
    text = str(err.value)
    assert "MESH4 -> MESM4" in text and "2024-03-11" in text and "2024-03-15" in text


def test_roll_moves_to_the_first_common_bar_when_the_roll_day_opens_without_one(
    months, tmp_path: Path
) -> None:
    root, frames = months
    root = _copy(root, tmp_path)
    store = BarStore(root)
    h4 = frames["MESH4"]
    lo = trading_day_start(date(2024, 3, 11))
    keep = (h4.ts < lo) | (h4.ts >= lo + 5 * 3600 * 10**9)  # MESH4 has no bar in the roll day's first 5 h
    (root / "bars" / "MESH4" / f"{BAR}.parquet").unlink()
    store.write("MESH4", BAR, BarFrame(*(getattr(h4, n)[keep] for n in BarFrame.__dataclass_fields__)))
    series = build_series("MES", BAR, Adjust.NONE, load_chain(store, "MES", BAR))
    first = series.rolls[0]
    assert first.ts >= lo + 5 * 3600 * 10**9
    m4 = frames["MESM4"]
    assert first.ts in set(m4.ts.tolist())


def test_a_missing_month_between_stored_ones_is_an_error_naming_it(months, tmp_path: Path) -> None:
    root, _ = months
    root = _copy(root, tmp_path)
    shutil.rmtree(root / "bars" / "MESU4")
    with pytest.raises(MissingContractError, match=r"MESU4 \(202409\).*after MESM4 and before MESZ4"):
        load_chain(BarStore(root), "MES", BAR)
    # a range that needs it, too
    with pytest.raises(MissingContractError, match="MESU4"):
        load_chain(BarStore(root), "MES", BAR, first=date(2024, 5, 1), last=date(2024, 10, 1))


def test_no_stored_months_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MissingContractError, match="no per-contract 1h bars of MES"):
        load_chain(BarStore(tmp_path), "MES", BAR)


def test_months_found_without_sidecars_use_the_catalogs_last_trade_dates(months, tmp_path: Path) -> None:
    root, _ = months
    root = _copy(root, tmp_path)
    for side in (root / "bars").glob("*/contract.json"):
        side.unlink()
    chain = load_chain(BarStore(root), "MES", BAR)
    assert {c.source for c in chain} == {"catalog"}
    assert [c.instrument.contract_month for c in chain][:2] == ["202403", "202406"]


def test_a_sidecar_last_trade_date_moves_a_last_trade_anchored_roll(months, tmp_path: Path) -> None:
    from ibot.data.rolls import ContractBars, roll_day
    from ibot.model.catalog import RollAnchor, RollRule

    fut = catalog.contract("MES", 2024, 6)
    rule = RollRule(2, RollAnchor.LAST_TRADE)
    empty = BarFrame.empty()
    assert roll_day(ContractBars(fut, date(2024, 6, 21), "catalog", empty), rule) == date(2024, 6, 18)
    # IB says the 20th: two CME business days before it, skipping Juneteenth
    assert roll_day(ContractBars(fut, date(2024, 6, 20), "sidecar", empty), rule) == date(2024, 6, 17)


def _truncate_store(src: Path, dst: Path, cut: int) -> None:
    """`dst` holds the months of `src` with only the bars before `cut`."""
    store = BarStore(dst)
    for folder in sorted((src / "bars").iterdir()):
        frame = BarStore(src).read(folder.name, BAR)
        part = frame.between(None, cut)
        (dst / "bars" / folder.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / "contract.json", dst / "bars" / folder.name / "contract.json")
        if len(part):
            store.write(folder.name, BAR, part)


@pytest.mark.parametrize("adjust", list(Adjust))
def test_incremental_extension_equals_a_full_rebuild(months, tmp_path: Path, adjust: Adjust) -> None:
    root, _ = months
    full = build_series("MES", BAR, adjust, load_chain(BarStore(root), "MES", BAR))
    work = tmp_path / "grow"
    roll_ts = [r.ts for r in full.rolls]
    # cuts: mid-segment, inside a roll day before the roll bar, right after a roll bar, and the end
    cuts = [
        roll_ts[0] - 30 * 86400 * 10**9,
        roll_ts[1] - 2 * 3600 * 10**9,
        roll_ts[1] + 1,
        roll_ts[3] + 40 * 86400 * 10**9,
        int(full.bars.ts[-1]) + 1,
    ]
    request = ContinuousRequest(symbol="MES", bar=BAR, adjust=adjust.value, data_dir=work)
    actions = []
    for cut in cuts:
        if work.exists():
            shutil.rmtree(work / "bars")
        _truncate_store(root, work, cut)
        outcome = build_continuous(request)
        actions.append(outcome.action)
    assert actions[0] == "built" and set(actions[1:]) == {"extended"}
    stored = ContinuousStore(work).read("MES", BAR, adjust)
    assert stored is not None
    grown = stored[0]
    assert grown.bars.equals(full.bars)  # bit for bit, ratio mode included
    assert grown.contract.tolist() == full.contract.tolist()
    assert np.array_equal(grown.adjustment, full.adjustment)
    assert grown.rolls == full.rolls
    again = build_continuous(request)
    assert again.action == "unchanged" and again.added == 0


def test_stored_series_keeps_its_rolls_beside_it(months, tmp_path: Path) -> None:
    root, _ = months
    root = _copy(root, tmp_path)
    outcome = build_continuous(ContinuousRequest(symbol="MES", bar=BAR, data_dir=root))
    folder = root / "continuous" / "MES" / BAR / "backward-spread"
    assert outcome.path == folder / "series.parquet"
    rolls = json.loads((folder / "rolls.json").read_text())["rolls"]
    assert [(r["from_contract"], r["to_contract"]) for r in rolls][:2] == [
        ("MESH4", "MESM4"),
        ("MESM4", "MESU4"),
    ]
    assert [r["ts"] for r in rolls] == [r.ts for r in outcome.series.rolls]
    payload = outcome.to_dict()
    assert payload["rows"] == len(outcome.series) and payload["note"]  # MESM5 is the last month stored
    assert "MESM5" in payload["note"]


def test_a_backtest_range_needs_every_month_through_its_end(months) -> None:
    root, _ = months
    store = BarStore(root)
    chain = load_chain(store, "MES", BAR, first=date(2024, 2, 1), last=date(2024, 11, 30))
    assert [c.key for c in chain] == ["MESH4", "MESM4", "MESU4", "MESZ4"]
    start = int(np.datetime64("2024-02-01", "ns").astype(np.int64))
    end = int(np.datetime64("2024-12-01", "ns").astype(np.int64))
    s = build_series("MES", BAR, Adjust.BACKWARD_SPREAD, chain, start, end, need_through_end=True)
    assert s.bars.ts[0] >= start and s.bars.ts[-1] < end
    assert [r.to_contract for r in s.rolls] == ["MESM4", "MESU4", "MESZ4"]
    with pytest.raises(MissingContractError, match="month after MESZ4"):
        build_series(
            "MES", BAR, Adjust.BACKWARD_SPREAD, chain, start, end + 30 * 86400 * 10**9, need_through_end=True
        )


def test_mgc_rolls_through_its_six_listed_months_before_first_notice(tmp_path: Path) -> None:
    frames = write_months(tmp_path, "MGC", date(2024, 1, 2), date(2024, 12, 31), bar=BAR, seed=9)
    series = build_series("MGC", BAR, Adjust.BACKWARD_SPREAD, load_chain(BarStore(tmp_path), "MGC", BAR))
    assert [r.to_contract for r in series.rolls] == ["MGCJ4", "MGCM4", "MGCQ4", "MGCV4", "MGCZ4", "MGCG5"]
    for r in series.rolls:
        fut = next(
            c
            for c in (catalog.contract("MGC", 2024, m) for m in (2, 4, 6, 8, 10, 12))
            if c.key == r.from_contract
        )
        assert (
            r.roll_day
            == catalog.roll_date(fut)
            < date(int(fut.contract_month[:4]), int(fut.contract_month[4:]), 1)
        )
        assert r.from_price == frames[r.from_contract].close[frames[r.from_contract].ts == r.ts][0]
    ticks = series.bars.close / 0.1
    assert np.allclose(ticks, np.rint(ticks), atol=1e-6)  # MGC's 0.10 grid, shifted in whole ticks
    mgc = catalog.get_instrument("MGC")
    assert all(p == mgc.from_ticks(mgc.to_ticks(p)) for p in series.bars.close.tolist())  # exact grid floats

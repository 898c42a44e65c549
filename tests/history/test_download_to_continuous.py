"""From IB to a continuous series: months downloaded from the simulator through ib_async (their own prices,
their sidecars) are stitched by `ibot data continuous` at the roll the rule names, with real roll gaps."""

from __future__ import annotations

from datetime import date

import numpy as np

from ibot.app.continuous import ContinuousRequest, build_continuous
from ibot.model import catalog

from .conftest import Sim


def test_downloaded_months_make_a_continuous_series_rolled_at_the_rule(sim: Sim) -> None:
    assert sim.download().to_dict()["complete"]  # MESZ4 and MESH5 across the December 2024 roll
    out = build_continuous(ContinuousRequest(symbol="MES", bar="1min", data_dir=sim.data))
    series = out.series
    assert [(r.from_contract, r.to_contract) for r in series.rolls] == [("MESZ4", "MESH5")]
    roll = series.rolls[0]
    z4 = catalog.resolve("MESZ4", date(2024, 12, 1))
    assert roll.roll_day == catalog.roll_date(z4) == date(2024, 12, 16)
    store = sim.store()
    old, new = store.read("MESZ4", "1min"), store.read("MESH5", "1min")
    # the roll prices are both months' own closes at the roll bar, and the months differ there
    assert roll.from_price == float(old.close[old.ts == roll.ts][0])
    assert roll.to_price == float(new.close[new.ts == roll.ts][0])
    assert roll.to_price != roll.from_price
    # backward-spread: MESZ4's bars up to the roll are shifted by the gap, MESH5's bars after it are raw
    bars = series.bars
    before = bars.ts <= roll.ts
    first = int(np.searchsorted(old.ts, bars.ts[before][0]))
    raw_old = old.close[first : first + int(before.sum())]
    assert np.array_equal(bars.ts[before], old.ts[first : first + int(before.sum())])
    assert np.allclose(bars.close[before], raw_old + (roll.to_price - roll.from_price), rtol=0, atol=1e-9)
    after = ~before
    assert np.array_equal(bars.close[after], new.close[np.isin(new.ts, bars.ts[after])])
    assert set(series.contract[before]) == {"MESZ4"} and set(series.contract[after]) == {"MESH5"}

"""Per-contract bars for continuous-series tests: one synthetic market, each month a constant basis away from
it (so every roll has a real, non-zero gap), with bars missing at random per month (so months do not always
trade at the same times) and the exchange's holidays (the synthetic market keeps them)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np

from ibot.data.bars import BarFrame
from ibot.data.store import BarStore
from ibot.data.synth import synth_bars
from ibot.model import catalog
from ibot.model.instruments import Instrument


def months_between(symbol: str, first: date, last: date) -> list[Instrument]:
    """Front months of `first` .. `last` per the catalog's roll rule, and every listed month between."""
    out = [catalog.front_month(symbol, first)]
    final = catalog.front_month(symbol, last)
    while out[-1].contract_month < final.contract_month:
        year, month = int(out[-1].contract_month[:4]), int(out[-1].contract_month[4:])
        spec = catalog.future_spec(symbol)
        while True:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            if spec.lists(month):
                break
        out.append(catalog.contract(symbol, year, month))
    return out


def write_months(
    root: Path,
    symbol: str,
    first: date,
    last: date,
    bar: str = "1h",
    seed: int = 3,
    drop: float = 0.05,
    sidecar: bool = True,
) -> dict[str, BarFrame]:
    """Store every month the range needs under its key, each from 40 days before the previous month's last
    trade date (or `first`) to its own last trade date; returns the raw frames by key."""
    months = months_between(symbol, first, last)
    spot_start = first - timedelta(days=70)
    inst = catalog.get_instrument(symbol)
    spot = synth_bars(inst, spot_start, int((last - spot_start).days * 0.72) + 150, bar, seed)
    rng = np.random.default_rng(seed)
    store = BarStore(root)
    frames: dict[str, BarFrame] = {}
    tick = float(inst.tick_size)
    prev_expiry = spot_start
    for k, m in enumerate(months):
        assert m.expiry is not None
        lo = max(spot_start, prev_expiry - timedelta(days=40))
        part = spot.between(_ns(lo), _ns(m.expiry + timedelta(days=1)))
        keep = rng.random(len(part)) >= drop
        basis = int(rng.integers(-40, 80)) + 7 * k  # ticks; a roll's gap is the change of basis
        cols = [
            _price(np.rint(c[keep] / tick).astype(np.int64) + basis, inst)
            for c in (part.open, part.high, part.low, part.close)
        ]
        frame = BarFrame(part.ts[keep], *cols, part.volume[keep])
        store.write(m.key, bar, frame)
        if sidecar:
            (root / "bars" / m.key / "contract.json").write_text(
                json.dumps(
                    {
                        "conId": m.con_id,
                        "localSymbol": m.local_symbol,
                        "symbol": m.symbol,
                        "lastTradeDate": m.expiry.isoformat(),
                        "exchange": m.exchange,
                        "multiplier": str(m.multiplier),
                    }
                )
            )
        frames[m.key] = frame
        prev_expiry = m.expiry
    return frames


def _price(ticks: np.ndarray, inst: Instrument) -> np.ndarray:
    """Grid prices of integer ticks, as Instrument.from_ticks gives them (tick = p/q: ticks x p / q)."""
    tick = Fraction(inst.tick_size)
    return ticks.astype(np.float64) * float(tick.numerator) / float(tick.denominator)


def _ns(d: date) -> int:
    from datetime import UTC, datetime

    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1_000_000_000

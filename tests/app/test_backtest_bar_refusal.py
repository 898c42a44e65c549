"""A backtest never builds a bar from coarser ones, whether the store holds bars or is empty (then the
synthetic market's 1-min bars would be the coarser ones), and its refusal creates nothing: no output
directory, no data directory, no synthetic bars."""

from __future__ import annotations

from pathlib import Path

import pytest

from ibot.app.backtest import BacktestRequest, run_backtest
from ibot.app.data import synth_to_store
from ibot.model.errors import IbotError


@pytest.mark.parametrize("bar", ["30s", "90s"])
def test_a_bar_finer_than_the_synthetic_market_is_refused_on_an_empty_store(tmp_path: Path, bar: str) -> None:
    request = BacktestRequest(bar=bar, days=2, data_dir=tmp_path / "data", out_dir=tmp_path / "out")
    with pytest.raises(IbotError, match=f"--bar {bar}: MES has no bars stored.*multiple of 1min"):
        run_backtest(request)
    assert list(tmp_path.iterdir()) == []  # nothing synthesized, no output directory


def test_a_refused_bar_creates_no_output_directory(tmp_path: Path) -> None:
    synth_to_store("MES", 1, "1min", data_dir=tmp_path / "data")
    with pytest.raises(IbotError, match="--bar 30s: MES has only 1min bars stored"):
        run_backtest(BacktestRequest(bar="30s", data_dir=tmp_path / "data", out_dir=tmp_path / "out"))
    assert not (tmp_path / "out").exists()

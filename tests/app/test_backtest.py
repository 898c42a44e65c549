"""ibot.app.backtest called directly: a typed outcome (report numbers, trades, files written), progress
through the caller's callback, nothing printed; bad input refused before anything is created."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ibot.app.backtest import BacktestOutcome, BacktestRequest, run_backtest
from ibot.app.data import synth_to_store
from ibot.app.progress import ProgressUpdate
from ibot.model.errors import IbotError


def test_backtest_outcome_is_typed_with_trades_and_files_and_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[ProgressUpdate] = []
    request = BacktestRequest(
        params=("breakout_bars=5",), days=5, data_dir=tmp_path / "data", out_dir=tmp_path / "out"
    )
    outcome = run_backtest(request, on_progress=seen.append)
    assert isinstance(outcome, BacktestOutcome)
    assert capsys.readouterr() == ("", "")
    # nothing was stored: 5 sessions were synthesized first, and the callback was told why
    assert outcome.synthesized is not None and outcome.synthesized.sessions == 5
    assert seen[0].message == "no stored bars for MES: generating 5 sessions of synthetic 1-min bars"
    assert [(u.done, u.total) for u in seen if u.task == "backtest ma_breakout"] == [
        (0, outcome.result.bars), (outcome.result.bars, outcome.result.bars)
    ]  # fmt: skip
    assert outcome.result.params["breakout_bars"] == 5
    assert outcome.metrics.trades == len(outcome.trades) > 0
    with outcome.files.trades_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(outcome.trades)
    assert outcome.files.trades_parquet.stat().st_size > 0
    assert outcome.files.chart_png is not None and outcome.files.chart_png.read_bytes()[:4] == b"\x89PNG"
    assert outcome.start == "2025-01-06 00:00:00 UTC" and (outcome.end or "").endswith(" UTC")
    payload = outcome.to_dict()
    assert payload["start"] == outcome.start and payload["metrics"]["trades"] == outcome.metrics.trades
    assert list(payload["files"]) == ["trades_csv", "trades_parquet", "chart_html", "chart_png"]


def test_backtest_on_stored_bars_synthesizes_nothing_and_writes_no_chart_when_told(tmp_path: Path) -> None:
    synth_to_store("MES", 2, "5min", data_dir=tmp_path / "data")
    request = BacktestRequest(bar="15min", data_dir=tmp_path / "data", out_dir=tmp_path / "out", chart=False)
    outcome = run_backtest(request)
    assert outcome.synthesized is None
    assert outcome.files.chart_html is None and outcome.files.chart_png is None
    assert list(outcome.files.to_dict()) == ["trades_csv", "trades_parquet"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "MES_15min_ma_breakout_trades.csv", "MES_15min_ma_breakout_trades.parquet"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (BacktestRequest(strategy="moon"), "moon"),
        (BacktestRequest(params=("breakout_bars=0",)), "breakout_bars"),
        (BacktestRequest(commission="abc"), "--commission 'abc'"),
        (BacktestRequest(symbol="NOPE"), "NOPE"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_created(
    tmp_path: Path, request_: BacktestRequest, match: str
) -> None:
    from dataclasses import replace

    with pytest.raises(IbotError, match=match):
        run_backtest(replace(request_, data_dir=tmp_path / "data", out_dir=tmp_path / "out"))
    assert list(tmp_path.iterdir()) == []


def test_a_bar_finer_than_the_stored_bars_is_refused(tmp_path: Path) -> None:
    synth_to_store("MES", 1, "5min", data_dir=tmp_path / "data")
    with pytest.raises(IbotError, match="--bar 1min: MES has only 5min bars stored"):
        run_backtest(BacktestRequest(bar="1min", data_dir=tmp_path / "data", out_dir=tmp_path / "out"))

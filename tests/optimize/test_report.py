"""ibot.optimize.report: the HTML report of real Optuna studies (SMA-reversal backtests on synthetic MES bars,
searched in sample and re-run out of sample): every view, plotly.js once, the equity data, escaping, and
notes instead of failures for studies too small to draw."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna import visualization as vis

from ibot.backtest.chart import decimate
from ibot.backtest.compiled import run_backtest
from ibot.backtest.report import BacktestResult
from ibot.data.bars import BarFrame
from ibot.data.synth import synth_bars
from ibot.model.catalog import get_instrument
from ibot.model.errors import ParameterError
from ibot.optimize import report
from ibot.optimize.oos import TrialScore, describe_correlation, holdout_windows, side_by_side, spearman
from ibot.strategies.sma_reversal import SmaReversal

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),  # set_metric_names
    pytest.mark.filterwarnings(
        "ignore:PedAnovaImportanceEvaluator computes:UserWarning"
    ),  # negated on purpose
]

MES = get_instrument("MES")
SINGLE_VIEWS = ("history", "importances", "parallel", "slice", "equity")
TITLES = {
    "history": "Optimization history",
    "importances": "Parameter importances",
    "parallel": "Parallel coordinates",
    "slice": "Slices",
}


@pytest.fixture(scope="module")
def split() -> tuple[BarFrame, BarFrame]:
    bars = synth_bars(MES, date(2025, 3, 3), 5, "1min", seed=21)
    (w,) = holdout_windows(bars.ts, 0.4)
    return bars.between(w.train_start_ns, w.train_end_ns), bars.between(w.test_start_ns, w.test_end_ns)


def _backtest(params: dict[str, Any], bars: BarFrame) -> BacktestResult:
    return run_backtest(SmaReversal(**params), MES, bars, slippage_ticks=1)


def _suggest(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "sma_period": trial.suggest_int("sma_period", 3, 120),
        "quantity": trial.suggest_int("quantity", 1, 3),
    }


@pytest.fixture(scope="module")
def single(split: tuple[BarFrame, BarFrame]) -> optuna.Study:
    train, _ = split
    study = optuna.create_study(
        study_name="sma <reversal> & co", direction="maximize", sampler=optuna.samplers.TPESampler(seed=5)
    )
    study.set_metric_names(["net_pnl"])
    study.optimize(lambda t: float(_backtest(_suggest(t), train).metrics.net_pnl), n_trials=16)
    return study


def _oos(study: optuna.Study, test: BarFrame) -> tuple[list[dict[str, Any]], float | None]:
    rows = [
        TrialScore(t.number, t.params, float(t.values[0]), float(_backtest(t.params, test).metrics.net_pnl))
        for t in study.trials
    ]
    rho = spearman([r.in_sample for r in rows], [r.out_of_sample for r in rows])
    return side_by_side(rows, 5), rho


def _figure(page: str, div_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The data and layout of the plot in div `div_id`, decoded from its Plotly.newPlot call."""
    m = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*', page)
    assert m, f"no plot drawn into div {div_id}"
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(page, m.end())
    layout, _ = decoder.raw_decode(page, page.index("{", end))
    return data, layout


def _plotted(page: str, div_id: str) -> bool:
    return f'<div id="{div_id}" class="plotly-graph-div"' in page


def _noted(page: str, div_id: str) -> str | None:
    m = re.search(r'<p class="note" id="' + re.escape(div_id) + r'">([^<]*)</p>', page)
    return m.group(1) if m else None


def _assert_one_plotly_js(page: str) -> None:
    import plotly.offline

    banner = plotly.offline.get_plotlyjs()[:60]
    assert page.count(banner) == 1
    assert not re.search(r"<script[^>]*\bsrc=", page), "the report must not load scripts from a network"


def test_single_objective_report_holds_every_view_the_equity_and_the_tables(
    tmp_path: Path, single: optuna.Study, split: tuple[BarFrame, BarFrame]
) -> None:
    train, test = split
    best = _backtest(single.best_params, train)
    rows, rho = _oos(single, test)
    path = tmp_path / "out" / "report.html"
    assert report.write_report(path, single, best, rows, rho, "SMA <search> on MES") == path
    assert [p.name for p in path.parent.iterdir()] == ["report.html"], "no temporary file left behind"
    page = path.read_text(encoding="utf-8")
    _assert_one_plotly_js(page)
    for div_id in SINGLE_VIEWS:
        assert _plotted(page, div_id), div_id
    for div_id, title in TITLES.items():
        assert f'<h2 id="{div_id}-title">{title}</h2>' in page
        assert _figure(page, div_id)[1]["title"]["text"] == title
    assert ">Pareto front</h2>" not in page

    history, _ = _figure(page, "history")
    assert sorted(history[0]["y"]) == sorted(t.value for t in single.trials)
    importances, _ = _figure(page, "importances")
    assert set(importances[0]["y"]) == {"sma_period", "quantity"}

    equity, layout = _figure(page, "equity")
    keep = decimate(best.equity, 8_000)
    assert equity[0]["y"] == pytest.approx(best.equity[keep].tolist())
    assert len(equity[0]["y"]) == len(best.equity) > 1000  # few days: no decimation
    assert equity[0]["x"][0] == np.datetime_as_string(best.ts[0].astype("datetime64[ns]"), unit="s")
    assert "sma_reversal on MES" in layout["title"]["text"]

    best_html = page[page.index('<section id="best">') : page.index('<section id="oos">')]
    for name, value in single.best_params.items():
        assert f'<td class="text">{name}</td><td class="text">{value}</td>' in best_html
    assert f"<td>{best.metrics.trades}</td>" in best_html
    assert f"{float(best.metrics.net_pnl):,.2f}" in best_html

    oos_html = page[page.index('<section id="oos">') :]
    for r in rows:
        assert f'<tr><td class="text">{r["number"]}</td>' in oos_html
    assert rows[0]["in_sample_rank"] == 1
    assert f"{report._esc(describe_correlation(rho))}.</p>" in oos_html


def test_user_text_is_escaped(tmp_path: Path, single: optuna.Study, split: tuple[BarFrame, BarFrame]) -> None:
    best = _backtest(single.best_params, split[0])
    path = report.write_report(
        tmp_path / "r.html", single, best, [], None, "<script>alert(1)</script> & more"
    )
    page = path.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt; &amp; more</h1>" in page
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; &amp; more</title>" in page
    assert "Study sma &lt;reversal&gt; &amp; co:" in page
    assert "No out-of-sample test was run" in page


def test_a_path_that_cannot_be_written_is_one_sentence(
    tmp_path: Path, single: optuna.Study, split: tuple[BarFrame, BarFrame]
) -> None:
    best = _backtest(single.best_params, split[0])
    (tmp_path / "taken").mkdir()
    with pytest.raises(ParameterError, match=r"^cannot write the report to .*taken: Is a directory$"):
        report.write_report(tmp_path / "taken", single, best, [], None, "x")
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(
        ParameterError, match=r"^cannot write the report to .*file/r.html: (File exists|Not a dir)"
    ):
        report.write_report(tmp_path / "file" / "r.html", single, best, [], None, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "taken"], "no temporary file left behind"


def test_multi_objective_report_draws_each_objective_and_the_pareto_front(
    tmp_path: Path, split: tuple[BarFrame, BarFrame]
) -> None:
    train, test = split
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.NSGAIISampler(seed=2)
    )
    study.set_metric_names(["net_pnl", "max_drawdown"])

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        m = _backtest(_suggest(trial), train).metrics
        return float(m.net_pnl), float(m.max_drawdown)

    study.optimize(objective, n_trials=12)
    best = _backtest(study.best_trials[0].params, train)
    rows, rho = _oos(study, test)
    page = report.write_report(tmp_path / "multi.html", study, best, rows, rho, "two goals").read_text()
    _assert_one_plotly_js(page)
    for k, name in ((1, "net_pnl"), (2, "max_drawdown")):
        for view, title in (
            ("history", "Optimization history"),
            ("importances", "Parameter importances"),
            ("parallel", "Parallel coordinates"),
        ):
            assert _plotted(page, f"{view}-{k}"), f"{view}-{k}"
            assert f">{title}: {name}</h2>" in page
        history, _ = _figure(page, f"history-{k}")
        assert sorted(history[0]["y"]) == sorted(t.values[k - 1] for t in study.trials)
    # importances are about reaching GOOD values: a maximized objective is negated for Optuna's evaluator
    for k, sign in ((1, -1.0), (2, 1.0)):
        bars, _ = _figure(page, f"importances-{k}")
        want = optuna.importance.get_param_importances(
            study, target=lambda t, k=k, s=sign: s * t.values[k - 1]
        )
        assert dict(zip(bars[0]["y"], bars[0]["x"], strict=True)) == pytest.approx(want)
    assert "achieve low `target` values" not in page
    assert _plotted(page, "pareto") and _plotted(page, "equity")
    assert not _plotted(page, "slice") and ">Slices</h2>" not in page
    pareto, _ = _figure(page, "pareto")
    assert sum(len(trace["x"]) for trace in pareto if "x" in trace) == len(study.trials)
    assert "goal: net_pnl (maximize), max_drawdown (minimize)" in page


def test_one_trial_still_writes_a_report_with_notes(tmp_path: Path, split: tuple[BarFrame, BarFrame]) -> None:
    train, _ = split
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: float(_backtest(_suggest(t), train).metrics.net_pnl), n_trials=1)
    best = _backtest(study.best_params, train)
    page = report.write_report(tmp_path / "one.html", study, best, [], None, "one trial").read_text()
    _assert_one_plotly_js(page)
    note = _noted(page, "importances")
    assert note and "this study has 1 completed trial(s) and 2 parameter(s) (quantity, sma_period)" in note
    for div_id in SINGLE_VIEWS:
        assert _plotted(page, div_id) != (_noted(page, div_id) is not None), div_id
    assert _plotted(page, "history") and _plotted(page, "equity")


def test_a_single_parameter_and_no_completed_trial_give_notes(
    tmp_path: Path, split: tuple[BarFrame, BarFrame]
) -> None:
    train, _ = split
    study = optuna.create_study()
    study.optimize(
        lambda t: float(
            _backtest({"sma_period": t.suggest_int("sma_period", 3, 50)}, train).metrics.sharpe or 0
        ),
        n_trials=4,
    )
    best = _backtest({"sma_period": 9}, train)
    page = report.write_report(tmp_path / "p.html", study, best, [], None, "one param").read_text()
    assert "4 completed trial(s) and 1 parameter(s) (sma_period)" in (_noted(page, "importances") or "")
    assert _plotted(page, "slice") and _plotted(page, "parallel")

    def fails(trial: optuna.Trial) -> float:
        raise ValueError(f"no data for trial {trial.number}")

    failed = optuna.create_study()
    failed.optimize(fails, n_trials=2, catch=(ValueError,))
    page = report.write_report(tmp_path / "f.html", failed, best, [], None, "nothing done").read_text()
    for div_id in ("history", "importances", "parallel", "slice"):
        assert _noted(page, div_id) == "No trial has completed yet, so there is nothing to draw.", div_id
    assert _plotted(page, "equity")
    assert "2 trials, 0 completed" in page


def test_a_view_optuna_refuses_becomes_a_note(single: optuna.Study) -> None:
    section = report._draw(
        "Parameter importances", "importances", vis.plot_param_importances, single, params=["no_such_param"]
    )
    assert section.figure is None
    assert section.note.startswith("Optuna could not draw this view: ")
    assert "no_such_param" in section.note
    four = optuna.create_study(directions=["maximize"] * 4)
    four.optimize(lambda t: (t.suggest_float("a", 0, 1), 1.0, 2.0, 3.0), n_trials=3)
    assert report._pareto(four, ["a", "b", "c", "d"], four.trials).note == (
        "The Pareto front is drawn for 2 or 3 objectives; this study has 4."
    )


CHROMIUM = Path("/usr/bin/chromium")


def test_the_report_renders_in_headless_chromium(
    tmp_path: Path, single: optuna.Study, split: tuple[BarFrame, BarFrame]
) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing (/usr/bin/chromium): `make test` installs it as root")
    best = _backtest(single.best_params, split[0])
    path = report.write_report(tmp_path / "render.html", single, best, [], None, "render")
    dom = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            path.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for div_id in SINGLE_VIEWS:
        m = re.search(r'<div id="' + div_id + r'" class="([^"]*)"', dom)
        assert m and "js-plotly-plot" in m.group(1), f"{div_id} was not rendered by plotly.js"
    assert dom.count('class="main-svg"') >= len(SINGLE_VIEWS)

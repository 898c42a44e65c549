"""The optimize service end to end on a real (synthetic) bar store and a real SQLite study: table rows, the
best trial, the profile that reproduces it, Pareto fronts, constraints, pruning, resume and stop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from ibot.app.backtest import BacktestRequest, run_backtest
from ibot.app.optimize import OptimizeRequest, StudyProgress, run_optimize
from ibot.model.errors import ParameterError
from ibot.optimize.profile import read_profile

SPACE = ("sma_period=5:40", "breakout_bars=3:12", "limit_offset_ticks=0:3")


def request(market: Path, out: Path, **kw: object) -> OptimizeRequest:
    base = OptimizeRequest(params=SPACE, trials=8, data_dir=market, out_dir=out, seed=3, write_report=False)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_best_trial_leads_the_table_and_its_profile_reproduces_it_exactly(
    market: Path, tmp_path: Path
) -> None:
    outcome = run_optimize(request(market, tmp_path, objectives=("net",), write_report=True))
    assert outcome.counts.complete == 8 and not outcome.stopped_by
    values = [r["in_sample"]["net"] for r in outcome.rows]
    assert values == sorted(values, reverse=True) and len(outcome.rows) == 8
    assert all(r["out_of_sample"] is not None for r in outcome.rows)  # every completed trial tested
    assert outcome.best is not None and outcome.best["number"] == outcome.rows[0]["number"]
    assert outcome.report is not None and outcome.report.stat().st_size > 0
    assert outcome.profile == tmp_path / "profiles" / "ma_breakout-MES.json"
    profile = read_profile(outcome.profile)
    assert profile.params["breakout_bars"] == outcome.best["params"]["breakout_bars"]
    assert profile.params["quantity"] == 1 and profile.trial == outcome.best["number"]

    again = run_backtest(
        BacktestRequest(profile=outcome.profile, data_dir=market, out_dir=tmp_path / "bt", chart=False)
    )
    m = again.metrics
    assert str(m.net_pnl) == profile.figures["net_pnl"] == outcome.best["figures"]["net_pnl"]
    assert m.trades == profile.figures["trades"] and m.sharpe == profile.figures["sharpe"]
    assert (
        str(m.max_drawdown) == profile.figures["max_drawdown"]
        and again.result.bars == profile.figures["bars"]
    )

    override = run_backtest(
        BacktestRequest(
            profile=outcome.profile, params=("breakout_bars=2",), data_dir=market, out_dir=tmp_path / "bt2",
            chart=False,
        )
    )  # fmt: skip
    assert override.result.params["breakout_bars"] == 2  # an explicit --param wins over the profile's
    assert override.result.params["sma_period"] == profile.params["sma_period"]


def _dominates(a: list[float], b: list[float]) -> bool:  # maximize net, minimize drawdown
    better_or_equal = a[0] >= b[0] and a[1] <= b[1]
    return better_or_equal and (a[0] > b[0] or a[1] < b[1])


def test_several_objectives_give_the_pareto_front_and_no_pruning(market: Path, tmp_path: Path) -> None:
    outcome = run_optimize(request(market, tmp_path, objectives=("net", "max_drawdown"), trials=10))
    assert outcome.settings.multi and not outcome.pruning and outcome.counts.pruned == 0
    points = {
        t["number"]: [t["in_sample"]["net"], t["in_sample"]["max_drawdown"]]
        for t in outcome.trials
        if t["state"] == "COMPLETE"
    }
    front = {r["number"] for r in outcome.rows}
    assert front
    for n in front:  # nothing dominates a front trial; every other trial is dominated by one
        assert not any(_dominates(points[m], points[n]) for m in points)
    for n in set(points) - front:
        assert any(_dominates(points[m], points[n]) for m in front)
    nets = [r["in_sample"]["net"] for r in outcome.rows]
    assert nets == sorted(nets, reverse=True)
    assert outcome.best is not None and outcome.best["number"] == outcome.rows[0]["number"]


def test_a_constraint_is_honoured_and_the_best_trial_is_feasible(market: Path, tmp_path: Path) -> None:
    space = ("max_trades_per_day=1:12", "sma_period=5:30")
    outcome = run_optimize(
        request(market, tmp_path, params=space, objectives=("net",), trials=14, max_trades_per_day=3)
    )
    complete = [t for t in outcome.trials if t["state"] == "COMPLETE"]
    infeasible = [t for t in complete if not t["feasible"]]
    assert infeasible, "the space holds parameter sets that trade more than 3 times a day"
    assert all(t["busiest_day_trades"] > 3 for t in infeasible)
    assert all(t["busiest_day_trades"] <= 3 for t in complete if t["feasible"])
    assert outcome.rows and all(r["feasible"] for r in outcome.rows)
    assert outcome.best is not None and outcome.best["busiest_day_trades"] <= 3
    best_any = max(complete, key=lambda t: t["in_sample"]["net"])
    if not best_any["feasible"]:
        assert outcome.best["number"] != best_any["number"]  # a better but infeasible trial is not the best

    none = run_optimize(request(market, tmp_path / "none", trials=3, min_trades=10**6, study="none"))
    assert none.best is None and none.profile is None and none.rows == []


def test_walk_forward_folds_let_the_median_pruner_stop_hopeless_trials(market: Path, tmp_path: Path) -> None:
    outcome = run_optimize(
        request(
            market, tmp_path, params=("sma_period=2:200", "breakout_bars=2:50", "limit_offset_ticks=0:20"),
            objectives=("net",), trials=16, walk_forward=3,
        )
    )  # fmt: skip
    assert outcome.pruning and len(outcome.windows) == 3
    assert outcome.counts.pruned > 0 and outcome.counts.complete + outcome.counts.pruned == 16
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'ma_breakout-MES-5min.db'}")
    study = optuna.load_study(study_name=outcome.study, storage=storage)
    pruned = [t for t in study.trials if t.state is optuna.trial.TrialState.PRUNED]
    assert all(0 < len(t.intermediate_values) < 3 for t in pruned)  # stopped before its last fold


def test_the_same_command_resumes_a_study_and_other_settings_are_refused(
    market: Path, tmp_path: Path
) -> None:
    first = run_optimize(request(market, tmp_path, trials=3, study="resume"))
    assert first.counts.complete == 3
    second = run_optimize(request(market, tmp_path, trials=5, study="resume"))
    assert second.counts.complete == 5 and len(second.trials) == 5
    with pytest.raises(
        ParameterError, match=r"--study resume: a study of that name .* other settings \(objectives\)"
    ):
        run_optimize(request(market, tmp_path, trials=5, study="resume", objectives=("net",)))


def test_a_stop_ends_the_search_after_the_running_trial_and_keeps_the_study(
    market: Path, tmp_path: Path
) -> None:
    seen: list[StudyProgress] = []
    outcome = run_optimize(
        request(market, tmp_path, trials=50, study="stopped"),
        on_trial=seen.append,
        stop=lambda: "SIGINT" if seen and seen[-1].finished >= 2 else "",
    )
    assert outcome.stopped_by == "SIGINT" and outcome.counts.finished == 2 and outcome.profile is None
    assert seen[-1].target == 50 and seen[-1].best is not None
    resumed = run_optimize(request(market, tmp_path, trials=4, study="stopped"))
    assert resumed.counts.complete == 4 and resumed.profile is not None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"trials": 0}, "--trials 0 must be at least 1"),
        ({"jobs": 0}, "--jobs 0 must be at least 1"),
        ({"holdout": 0.2, "walk_forward": 3}, "--holdout and --walk-forward"),
        ({"anchored": True}, "--anchored is a kind of walk-forward"),
        ({"objectives": ("profit",)}, "--objective 'profit' is not one of net, sharpe"),
        ({"start": "2025-02-01", "end": "2025-01-01"}, "--from 2025-02-01 is after --to 2025-01-01"),
        ({"start": "2025-13-01"}, "--from '2025-13-01' is not a date"),
        ({"start": "2030-01-01"}, "--from/--to 2030-01-01..-: no MES bars in that range"),
        ({"strategy": "nope"}, "nope"),
        ({"params": ("nope=1:2",)}, "declares no parameter 'nope'"),
        ({"storage": "mysql://u@h/db"}, "'mysql' is not a supported database"),
        ({"walk_forward": 0}, "--walk-forward 0 must be at least 1 fold"),
    ],
)
def test_bad_input_is_one_sentence_and_creates_no_study(
    market: Path, tmp_path: Path, change: dict[str, object], words: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ParameterError) as err:
        run_optimize(request(market, out, **change))
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not list(out.glob("*.db"))


def test_a_repeated_parameter_set_reuses_its_figures_instead_of_running_again(
    market: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ibot.optimize.trials import TrialRunner

    runs: list[dict[str, object]] = []
    backtest = TrialRunner.backtest

    def counted(self: TrialRunner, params: dict[str, object], frame: object) -> object:
        runs.append(dict(params))
        return backtest(self, params, frame)  # type: ignore[arg-type]

    monkeypatch.setattr(TrialRunner, "backtest", counted)
    outcome = run_optimize(
        request(
            market, tmp_path, params=("breakout_bars=3:4", "sma_period=5:6"), trials=12, write_report=False
        )
    )
    complete = [t for t in outcome.trials if t["state"] == "COMPLETE"]
    assert len(complete) == 12
    distinct = {(t["params"]["breakout_bars"], t["params"]["sma_period"]) for t in complete}
    # one in-sample and one out-of-sample backtest per distinct set, and the best's whole-range run (12 trials
    # of at most 4 sets: without reuse there would be at least 12 + 1 + 1)
    assert len(distinct) <= 4 and len(runs) <= 2 * len(distinct) + 1
    by_params: dict[tuple[int, int], list[dict[str, object]]] = {}
    for t in complete:
        by_params.setdefault((t["params"]["breakout_bars"], t["params"]["sma_period"]), []).append(t)
    for same in by_params.values():
        assert all(t["in_sample"] == same[0]["in_sample"] and t["trades"] == same[0]["trades"] for t in same)

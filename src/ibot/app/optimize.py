"""The parameter-search service: an Optuna study over a strategy's declared parameters on stored bars (a
seeded synthetic market generated first when the store is empty), run in this process, in local worker
processes (`jobs`), or by workers on other machines sharing a PostgreSQL storage; then every completed
trial tested out of sample, the best trial's whole-range backtest, the HTML report and the profile file.

Synchronous; prints nothing. Progress goes to the surface's callbacks; `stop()` is polled between trials (a
running trial always finishes, the study keeps every finished trial, and running the same command again
resumes it). Every argument is checked before anything is created; every message shows a storage URL with its
password masked."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ibot.app.backtest import _commission, load_bars
from ibot.app.progress import ProgressCallback, ProgressUpdate, report
from ibot.config import check_directory_target, ensure_directory, load_settings
from ibot.data.bars import BarFrame, bar_size_name, format_time
from ibot.model import catalog
from ibot.model.errors import ParameterError
from ibot.optimize import oos
from ibot.optimize.objectives import Constraints, parse_objectives
from ibot.optimize.profile import Profile
from ibot.optimize.settings import ATTR, BarsIdentity, StudySettings
from ibot.optimize.space import build_space
from ibot.optimize.storage import DEFAULT_HEARTBEAT, StorageUrl, open_storage, sqlite_url, storage_errors
from ibot.optimize.trials import (
    TrialCounts,
    TrialRunner,
    count_trials,
    finite,
    make_pruner,
    make_sampler,
    run_trials,
)
from ibot.strategies import get_strategy

if TYPE_CHECKING:
    import optuna

    from ibot.backtest.report import BacktestResult

__all__ = [
    "STORAGE_ENV",
    "OptimizeOutcome",
    "OptimizeRequest",
    "StudyProgress",
    "WorkerOutcome",
    "WorkerRequest",
    "run_optimize",
    "run_worker",
]

STORAGE_ENV = "IBOT_OPTIMIZE_STORAGE"  # how local workers get the storage URL (never on a command line)
log = logging.getLogger("ibot.optimize")


@dataclass(frozen=True, slots=True)
class OptimizeRequest:
    """What to search and where. `params`: `--param` specs; `start`/`end`: dates (UTC, inclusive);
    `holdout` (default 0.25 when `walk_forward` is not given) or `walk_forward` folds (`anchored`);
    `storage`: a database URL (default: a SQLite file in the output directory); `jobs`: local worker
    processes; `seed`: the sampler's (in-process runs); `days`/`synth_seed`: the synthetic market."""

    strategy: str = "ma_breakout"
    symbol: str = "MES"
    bar: str = "5min"
    params: tuple[str, ...] = ()
    objectives: tuple[str, ...] = ("sharpe",)
    trials: int = 100
    start: str | None = None
    end: str | None = None
    holdout: float | None = None
    walk_forward: int | None = None
    anchored: bool = False
    max_trades_per_day: int | None = None
    min_trades: int | None = None
    study: str | None = None
    storage: str | None = None
    jobs: int = 1
    seed: int | None = None
    days: int = 60
    synth_seed: int = 7
    slippage_ticks: int = 1
    commission: str | None = None
    heartbeat: int = DEFAULT_HEARTBEAT
    data_dir: Path | None = None
    out_dir: Path | None = None
    profile_out: Path | None = None
    write_report: bool = True
    top: int = 10


@dataclass(frozen=True, slots=True)
class WorkerRequest:
    """Join study `study` in `storage` and run its trials until it has its target."""

    study: str
    storage: str
    data_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class StudyProgress:
    """How far a study is: finished trials of `target`, the best value so far (first objective), states."""

    study: str
    finished: int
    target: int
    best: float | None
    counts: TrialCounts


@dataclass
class OptimizeOutcome:
    """A finished (or stopped) search: the table rows, the best trial and the files written."""

    study: str
    storage: str  # masked
    settings: StudySettings
    counts: TrialCounts
    stopped_by: str = ""  # "" when the study reached its target
    rows: list[dict[str, Any]] = field(default_factory=list)
    trials: list[dict[str, Any]] = field(default_factory=list)
    rank_correlation: float | None = None
    best: dict[str, Any] | None = None
    best_result: BacktestResult | None = None
    windows: list[dict[str, Any]] = field(default_factory=list)
    report: Path | None = None
    profile: Path | None = None
    pruning: bool = False

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        return {
            "study": self.study,
            "storage": self.storage,
            "strategy": s.strategy,
            "symbol": s.symbol,
            "bar": s.bar,
            "objectives": list(s.objectives),
            "space": {d.name: d.describe() for d in s.space.dimensions},
            "target": s.trials,
            "complete": self.counts.complete,
            "pruned": self.counts.pruned,
            "failed": self.counts.failed,
            "pruning": self.pruning,
            "stopped_by": self.stopped_by or None,
            "windows": self.windows,
            "rank_correlation": self.rank_correlation,
            "best": self.best,
            "rows": self.rows,
            "trials": self.trials,
            "report": str(self.report) if self.report else None,
            "profile": str(self.profile) if self.profile else None,
        }


@dataclass(frozen=True, slots=True)
class WorkerOutcome:
    study: str
    ran: int  # trials this worker finished
    counts: TrialCounts
    stopped_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "ran": self.ran,
            "complete": self.counts.complete,
            "pruned": self.counts.pruned,
            "failed": self.counts.failed,
            "stopped_by": self.stopped_by or None,
        }


StopCheck = Callable[[], str]  # "" while running; the stop's reason ("SIGINT") once asked to stop
TrialCallback = Callable[[StudyProgress], None]


def _never() -> str:
    return ""


# --- the search ---------------------------------------------------------------------------------------------


def run_optimize(
    request: OptimizeRequest,
    on_progress: ProgressCallback | None = None,
    on_trial: TrialCallback | None = None,
    stop: StopCheck = _never,
) -> OptimizeOutcome:
    """Search `request`'s space; see the module doc. Bad input is a ParameterError before anything exists."""
    import optuna

    settings, name, out, url = _check(request)
    check_directory_target(out, "--out" if request.out_dir else "output directory")
    if request.profile_out is not None:
        check_directory_target(request.profile_out.parent, "--profile-out's folder")
    frame, _ = load_bars(
        settings.symbol, settings.bar, request.data_dir, request.days, request.synth_seed, on_progress,
        before_create=lambda: ensure_directory(out, "output directory"),
    )  # fmt: skip
    frame = _in_range(frame, request.start, request.end, settings.symbol)
    settings = _with_bars(settings, frame)
    runner = TrialRunner(settings, frame)  # refuses a split the bars cannot make
    storage = open_storage(url, settings.heartbeat)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # its failed-trial warning carries a traceback
    with storage_errors(url):
        study = _create_or_resume(storage, name, url, settings, runner, request.seed)
        stopped = _run(study, runner, settings.trials, request, url, on_trial, stop)
        outcome = _results(study, runner, str(url), request.top, on_progress, stopped, settings)
    if stopped or outcome.best is None:
        return outcome
    best_params = settings.space.complete(outcome.best["params"])
    outcome.best_result = result = runner.full_run(best_params)
    outcome.best["figures"] = _figures(result)
    if request.write_report:
        outcome.report = _report(out / f"{_file_name(name)}.html", study, result, outcome, name)
    profile_path = request.profile_out or out / "profiles" / f"{settings.strategy}-{settings.symbol}.json"
    outcome.profile = _profile(settings, name, url, outcome.best, best_params).write(profile_path)
    return outcome


def _check(request: OptimizeRequest) -> tuple[StudySettings, str, Path, StorageUrl]:
    """The study settings of `request` (bars not yet known), its output directory and storage URL."""
    from ibot.optimize.storage import _normalized

    if request.trials < 1:
        raise ParameterError(f"--trials {request.trials} must be at least 1")
    if request.jobs < 1:
        raise ParameterError(f"--jobs {request.jobs} must be at least 1")
    if request.top < 1:
        raise ParameterError(f"--top {request.top} must be at least 1")
    if request.holdout is not None and request.walk_forward is not None:
        raise ParameterError("--holdout and --walk-forward are two ways to test out of sample: give one")
    if request.anchored and request.walk_forward is None:
        raise ParameterError("--anchored is a kind of walk-forward: give --walk-forward N with it")
    if request.holdout is not None and not 0.0 <= request.holdout < 1.0:
        raise ParameterError(f"--holdout {request.holdout} must be a fraction from 0 (none) to below 1")
    if request.walk_forward is not None and request.walk_forward < 1:
        raise ParameterError(f"--walk-forward {request.walk_forward} must be at least 1 fold")
    cls = get_strategy(request.strategy)
    _commission(request.commission)
    settings = StudySettings(
        strategy=cls.name,
        symbol=catalog.get_instrument(request.symbol).symbol,
        bar=bar_size_name(request.bar),
        space=build_space(cls.name, cls.params, request.params),
        objectives=tuple(o.name for o in parse_objectives(request.objectives)),
        trials=request.trials,
        start=_date(request.start, "--from"),
        end=_date(request.end, "--to"),
        holdout=None if request.walk_forward else (0.25 if request.holdout is None else request.holdout),
        walk_forward=request.walk_forward,
        anchored=request.anchored,
        constraints=Constraints(request.max_trades_per_day, request.min_trades),
        slippage_ticks=request.slippage_ticks,
        commission=request.commission,
        days=request.days,
        seed=request.synth_seed,
        heartbeat=request.heartbeat,
    )
    if settings.start and settings.end and settings.start > settings.end:
        raise ParameterError(f"--from {settings.start} is after --to {settings.end}")
    if request.heartbeat < 1:
        raise ParameterError(f"--heartbeat {request.heartbeat} must be at least 1 second")
    out = request.out_dir or load_settings().out_dir / "optimize"
    name = request.study or f"{settings.strategy}-{settings.symbol}-{settings.bar}"
    if not name.strip():
        raise ParameterError("--study needs a name")
    url = StorageUrl(request.storage) if request.storage else sqlite_url(out / f"{_file_name(name)}.db")
    _normalized(url.secret)
    return settings, name, out, url


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "study"


def _date(text: str | None, option: str) -> str | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ParameterError(f"{option} {text!r} is not a date like 2026-01-31") from None


def _in_range(frame: BarFrame, start: str | None, end: str | None, symbol: str) -> BarFrame:
    """Bars from `start` 00:00 UTC to the end of `end` (dates, inclusive)."""

    def ns(day: str) -> int:
        d = date.fromisoformat(day)
        return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1_000_000_000

    lo = ns(start) if start else None
    hi = ns(end) + int(timedelta(days=1).total_seconds()) * 1_000_000_000 if end else None
    picked = frame.between(lo, hi)
    if not len(picked):
        have = (
            f"{format_time(int(frame.ts[0]))} .. {format_time(int(frame.ts[-1]))}" if len(frame) else "none"
        )
        raise ParameterError(
            f"--from/--to {start or '-'}..{end or '-'}: no {symbol} bars in that range (stored: {have})"
        )
    return picked


def _with_bars(settings: StudySettings, frame: BarFrame) -> StudySettings:
    from dataclasses import replace

    return replace(settings, bars=BarsIdentity.of(frame))


def _create_or_resume(
    storage: Any, name: str, url: StorageUrl, settings: StudySettings, runner: TrialRunner, seed: int | None
) -> optuna.Study:
    """The study `name`: created with `settings` in its user attrs, or the existing one when its settings
    are the same (its trial target updated); one with other settings is refused, naming what differs."""
    import optuna

    sampler, pruner = make_sampler(settings, seed), make_pruner(runner)
    directions: list[Any] = [o.direction for o in settings.objective_list]
    try:
        study = optuna.create_study(
            study_name=name, storage=storage, directions=directions, sampler=sampler, pruner=pruner
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        existing = StudySettings.from_attrs(study.user_attrs.get(ATTR, {}), name)
        differ = existing.differences(settings)
        if differ:
            raise ParameterError(
                f"--study {name}: a study of that name in {url} has other settings ({', '.join(differ)}); "
                "give another --study name, or the same settings to resume it"
            ) from None
    study.set_user_attr(ATTR, settings.to_attrs())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(settings.objectives))
    return study


def _run(
    study: optuna.Study,
    runner: TrialRunner,
    target: int,
    request: OptimizeRequest,
    url: StorageUrl,
    on_trial: TrialCallback | None,
    stop: StopCheck,
) -> str:
    """Run the study to `target` here or in `request.jobs` worker processes; the stop's reason or ""."""
    progress = _progress(study, runner.settings, on_trial)
    progress(count_trials(study))
    if request.jobs == 1:
        run_trials(study, runner, target, stop=lambda: bool(stop()), on_trial=progress)
        return stop()
    return _run_workers(study, request, url, progress, stop)


def _progress(
    study: optuna.Study, settings: StudySettings, on_trial: TrialCallback | None
) -> Callable[[TrialCounts], None]:
    def show(counts: TrialCounts) -> None:
        if on_trial is not None:
            best = _best_value(study, settings)
            on_trial(StudyProgress(study.study_name, counts.finished, settings.trials, best, counts))

    return show


def _best_value(study: optuna.Study, settings: StudySettings) -> float | None:
    from optuna.trial import TrialState

    objective = settings.objective_list[0]
    values = [
        t.values[0]
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if _feasible(t) and finite(t.values[0]) is not None
    ]
    if not values:
        return None
    return max(values) if objective.maximize else min(values)


def _feasible(trial: optuna.trial.FrozenTrial) -> bool:
    return all(v <= 0 for v in trial.constraints.values())


def _run_workers(
    study: optuna.Study,
    request: OptimizeRequest,
    url: StorageUrl,
    progress: Callable[[TrialCounts], None],
    stop: StopCheck,
) -> str:
    """`request.jobs` processes of `ibot optimize --worker` on this study (the storage URL passed in the
    environment, never on a command line); a stop is forwarded to them (SIGTERM), and they finish their
    running trial. A worker that fails is reported in one sentence with its last line."""
    import signal

    command = [sys.executable, "-c", "from ibot.cli.main import main; main()", "optimize", "--worker"]
    command += ["--study", study.study_name, "--json"]
    if request.data_dir is not None:
        command += ["--data-dir", str(request.data_dir)]
    env = {**os.environ, STORAGE_ENV: url.secret}
    logs = [_worker_log(request, study.study_name, k) for k in range(request.jobs)]
    procs = []
    for path in logs:
        with path.open("w") as fh:
            procs.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=fh))
    forwarded = False
    try:
        while any(p.poll() is None for p in procs):
            if stop() and not forwarded:
                forwarded = True
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            progress(count_trials(study))
    except BaseException:
        for p in procs:
            if p.poll() is None:
                p.kill()
        raise
    progress(count_trials(study))
    for p, path in zip(procs, logs, strict=True):
        if p.returncode not in (0, 130) and not stop():
            last = [line for line in path.read_text().splitlines() if line.strip()][-1:] or ["no output"]
            raise ParameterError(f"a worker process failed (exit {p.returncode}): {last[0]} (log: {path})")
    return stop()


def _worker_log(request: OptimizeRequest, study: str, k: int) -> Path:
    folder = (request.out_dir or load_settings().out_dir / "optimize") / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{_file_name(study)}-{k + 1}.log"


# --- workers ------------------------------------------------------------------------------------------------


def run_worker(
    request: WorkerRequest,
    on_progress: ProgressCallback | None = None,
    on_trial: TrialCallback | None = None,
    stop: StopCheck = _never,
) -> WorkerOutcome:
    """Join an existing study and run its trials until it has its target (or `stop()`): the settings come
    from the study; the bars are loaded here and must be the ones the study was made on."""
    import optuna

    url = StorageUrl(request.storage)
    storage = open_storage(url)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # its failed-trial warning carries a traceback
    try:
        attrs = optuna.load_study(study_name=request.study, storage=storage).user_attrs
    except KeyError:
        raise ParameterError(
            f"--study {request.study}: no such study in {url}; create it first with `ibot optimize "
            f"--strategy ... --study {request.study} --storage URL`"
        ) from None
    settings = StudySettings.from_attrs(attrs.get(ATTR, {}), request.study)
    frame, _ = load_bars(
        settings.symbol, settings.bar, request.data_dir, settings.days, settings.seed, on_progress
    )
    frame = _in_range(frame, settings.start, settings.end, settings.symbol)
    if settings.bars is not None and BarsIdentity.of(frame) != settings.bars:
        mine = BarsIdentity.of(frame)
        raise ParameterError(
            f"--study {request.study}: this machine's {settings.symbol} {settings.bar} bars differ from the "
            f"study's ({mine.count} bars, digest {mine.digest} here; {settings.bars.count} bars, digest "
            f"{settings.bars.digest} in the study); use the same bar store (--data-dir)"
        )
    runner = TrialRunner(settings, frame)
    storage = open_storage(url, settings.heartbeat)
    study = optuna.load_study(
        study_name=request.study,
        storage=storage,
        sampler=make_sampler(settings, None),
        pruner=make_pruner(runner),
    )
    progress = _progress(study, settings, on_trial)
    with storage_errors(url):
        before = _mine(study, runner.worker)
        counts = run_trials(study, runner, settings.trials, stop=lambda: bool(stop()), on_trial=progress)
        ran = _mine(study, runner.worker) - before
    return WorkerOutcome(request.study, ran, counts, stop())


def _mine(study: optuna.Study, worker: str) -> int:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED)
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=done) if t.user_attrs.get("worker") == worker
    )


# --- results ------------------------------------------------------------------------------------------------


def _results(
    study: optuna.Study,
    runner: TrialRunner,
    storage: str,
    top: int,
    on_progress: ProgressCallback | None,
    stopped: str,
    settings: StudySettings,
) -> OptimizeOutcome:
    """The table: the best feasible trials (one objective) or the Pareto front (several), each with its
    out-of-sample values; every trial's line for --json; the rank correlation across all completed trials."""
    from optuna.trial import TrialState

    objectives = settings.objective_list
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    outcome = OptimizeOutcome(
        study=study.study_name,
        storage=storage,
        settings=settings,
        counts=count_trials(study),
        stopped_by=stopped,
        windows=[_window_dict(w) for w in runner.windows],
        pruning=runner.prunes,
    )
    tested = not stopped and any(len(f) for f in runner.test)
    oos_values: dict[int, list[float | None]] = {}
    cache: dict[tuple[Any, ...], list[float | None]] = {}
    task = "out-of-sample tests"
    if tested:
        report(on_progress, ProgressUpdate(task, 0, len(complete)))
        for k, t in enumerate(complete):
            params = settings.space.complete(t.params)
            key = tuple(sorted((n, repr(v)) for n, v in params.items()))
            if key not in cache:
                cache[key] = runner.out_of_sample(params)
            oos_values[t.number] = cache[key]
            report(on_progress, ProgressUpdate(task, k + 1, len(complete)))
    outcome.trials = [
        _trial_dict(t, objectives, oos_values.get(t.number)) for t in study.get_trials(deepcopy=False)
    ]
    first = objectives[0]

    def score(t: optuna.trial.FrozenTrial, values: list[float | None] | None) -> oos.TrialScore:
        is_value = finite(t.values[0])
        oos_value = finite(values[0]) if values else None
        return oos.TrialScore(
            t.number, dict(t.params), float("nan") if is_value is None else is_value, oos_value
        )

    scores = [score(t, oos_values.get(t.number)) for t in complete]
    outcome.rank_correlation = oos.spearman(
        [s.in_sample for s in scores], [s.out_of_sample for s in scores]
    ) if tested else None  # fmt: skip
    by_number = {t.number: t for t in complete}
    if settings.multi:
        front = sorted(study.best_trials, key=lambda t: -t.values[0] if first.maximize else t.values[0])
        chosen = [by_number[t.number] for t in front][:top]
        side = {
            r["number"]: r for r in oos.side_by_side(scores, max(len(scores), 1), maximize=first.maximize)
        }
        ranked = [side[t.number] for t in chosen]
    else:
        feasible = [s for s in scores if _feasible(by_number[s.number])]
        ranked = oos.side_by_side(feasible, top, maximize=first.maximize) if feasible else []
    outcome.rows = [
        _row(k + 1, by_number[r["number"]], r, objectives, oos_values) for k, r in enumerate(ranked)
    ]
    if outcome.rows and outcome.rows[0]["in_sample"][first.name] is not None:
        outcome.best = dict(outcome.rows[0])
    return outcome


def _window_dict(w: Any) -> dict[str, Any]:
    return {
        "train_start": format_time(w.train_start_ns),
        "train_end": format_time(w.train_end_ns),
        "test_start": format_time(w.test_start_ns) if w.test_end_ns > w.test_start_ns else None,
        "test_end": format_time(w.test_end_ns) if w.test_end_ns > w.test_start_ns else None,
    }


def _trial_dict(
    t: optuna.trial.FrozenTrial, objectives: Sequence[Any], oos_values: list[float | None] | None
) -> dict[str, Any]:
    values = t.values or []
    return {
        "number": t.number,
        "state": t.state.name,
        "params": dict(t.params),
        "in_sample": {o.name: finite(v) for o, v in zip(objectives, values, strict=False)},
        "out_of_sample": (
            {o.name: finite(v) for o, v in zip(objectives, oos_values, strict=True)} if oos_values else None
        ),
        "trades": t.user_attrs.get("trades"),
        "busiest_day_trades": t.user_attrs.get("busiest_day_trades"),
        "feasible": _feasible(t) if t.constraints else True,
        "constraints": dict(t.constraints),
        "retry_of": t.system_attrs.get("failed_trial"),
        "worker": t.user_attrs.get("worker"),
    }


def _row(
    rank: int,
    t: optuna.trial.FrozenTrial,
    side: dict[str, Any],
    objectives: Sequence[Any],
    oos_values: dict[int, list[float | None]],
) -> dict[str, Any]:
    values = oos_values.get(t.number)
    return {
        "rank": rank,
        "number": t.number,
        "params": dict(t.params),
        "in_sample": {o.name: finite(v) for o, v in zip(objectives, t.values, strict=True)},
        "out_of_sample": (
            {o.name: finite(v) for o, v in zip(objectives, values, strict=True)} if values else None
        ),
        "out_of_sample_rank": side.get("out_of_sample_rank"),
        "trades": t.user_attrs.get("trades"),
        "busiest_day_trades": t.user_attrs.get("busiest_day_trades"),
        "feasible": _feasible(t),
    }


def _figures(result: BacktestResult) -> dict[str, Any]:
    data = result.to_dict()
    return {
        "bars": data["bars"],
        "start": data["start"],
        "end": data["end"],
        "final_equity": data["final_equity"],
        **data["metrics"],
    }


def _report(
    path: Path, study: optuna.Study, result: BacktestResult, outcome: OptimizeOutcome, name: str
) -> Path:
    from ibot.optimize.report import write_report

    first = outcome.settings.objectives[0]
    rows = [
        {
            "number": r["number"],
            "params": r["params"],
            "in_sample": r["in_sample"][first],
            "in_sample_rank": r["rank"],
            "out_of_sample": (r["out_of_sample"] or {}).get(first),
            "out_of_sample_rank": r["out_of_sample_rank"],
        }
        for r in outcome.rows
    ]
    s = outcome.settings
    title = f"ibot optimize {s.strategy} on {s.symbol} {s.bar}: study {name}"
    return write_report(path, study, result, rows, outcome.rank_correlation, title)


def _profile(
    settings: StudySettings, name: str, url: StorageUrl, best: dict[str, Any], params: dict[str, Any]
) -> Profile:
    bars = settings.bars
    return Profile(
        strategy=settings.strategy,
        symbol=settings.symbol,
        bar=settings.bar,
        params=params,
        study=name,
        storage=str(url),
        trial=best["number"],
        first_ts=bars.first_ts if bars else None,
        last_ts=bars.last_ts if bars else None,
        slippage_ticks=settings.slippage_ticks,
        commission=settings.commission,
        objectives=dict(best["in_sample"]),
        out_of_sample=dict(best["out_of_sample"] or {}),
        figures=dict(best.get("figures") or {}),
    )

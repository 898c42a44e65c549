"""Running a study's trials: each trial backtests one parameter set on the in-sample segments (each walk-
forward fold's train period, or the part before the holdout) through `ibot.backtest.compiled.run_backtest`
(the strategy's compiled twin when it declares one), and the study's samplers, pruner and stopping rule.

- One objective: TPE; with several segments the running value is reported after each one and a MedianPruner
  stops trials that are already worse than the median of earlier trials at the same segment.
- Several objectives: NSGA-II, a Pareto front, no pruning (Optuna's pruners compare one value).
- Constraints are set on each trial (`Trial.set_constraint`, Optuna 5's replacement for the samplers'
  deprecated `constraints_func`): both samplers prefer feasible trials and the best trial is a feasible one.
- A study runs until it has `trials` finished trials (COMPLETE or PRUNED; a failed one, e.g. of a killed
  worker, does not count). A worker takes a new trial only while finished + running trials are short of that;
  otherwise it waits for the others' last trials, failing stale ones (their retry is then run)."""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ibot.backtest.compiled import run_backtest
from ibot.data.bars import BarFrame
from ibot.exchange.fees import IB_MICRO_FUTURES, FeeModel
from ibot.model import catalog
from ibot.model.errors import IbotError, ParameterError
from ibot.optimize import oos
from ibot.optimize.objectives import SegmentFigures, combine
from ibot.optimize.settings import StudySettings
from ibot.optimize.storage import fail_silent_trials
from ibot.strategies import get_strategy

if TYPE_CHECKING:
    import optuna

    from ibot.backtest.report import BacktestResult

__all__ = ["TrialCounts", "TrialRunner", "count_trials", "make_pruner", "make_sampler", "run_trials"]

log = logging.getLogger("ibot.optimize")

MAX_FAILURES_IN_A_ROW = 10
PRUNER_STARTUP_TRIALS = 4  # finished trials before the pruner compares


def commission_fees(text: str | None) -> FeeModel:
    """The fee model for a `--commission` (USD per contract per side), or IB's micro-futures fees."""
    if text is None:
        return IB_MICRO_FUTURES
    return FeeModel(broker=Decimal(text), exchange=Decimal(0), regulatory=Decimal(0))


class TrialRunner:
    """Backtests parameter sets of one study on its bars: in sample (the trial's objective), out of sample
    (after the study) and over the whole range (the best trial's figures)."""

    def __init__(self, settings: StudySettings, bars: BarFrame) -> None:
        self.settings = settings
        self.bars = bars
        self.objectives = settings.objective_list
        self.strategy_cls = get_strategy(settings.strategy)
        self.instrument = catalog.get_instrument(settings.symbol)
        self.fees = commission_fees(settings.commission)
        self.windows = split_windows(settings, bars)
        self.train = [bars.between(w.train_start_ns, w.train_end_ns) for w in self.windows]
        self.test = [bars.between(w.test_start_ns, w.test_end_ns) for w in self.windows]
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        # parameter sets this process ran to the end: (scores, trades, busiest day, net, trial number)
        self._finished: dict[tuple[Any, ...], tuple[list[float], int, int, str, int]] = {}

    @property
    def prunes(self) -> bool:
        """Pruning needs one objective and more than one in-sample segment to report along the way."""
        return not self.settings.multi and len(self.train) > 1

    def backtest(self, params: dict[str, Any], frame: BarFrame) -> BacktestResult:
        strategy = self.strategy_cls(**params)
        return run_backtest(
            strategy, self.instrument, frame, fees=self.fees, slippage_ticks=self.settings.slippage_ticks
        )

    def full_run(self, params: dict[str, Any]) -> BacktestResult:
        """The parameter set over every bar of the study's range: the figures a profile promises."""
        return self.backtest(params, self.bars)

    def values(self, segments: Sequence[SegmentFigures]) -> list[float | None]:
        return [combine(o, segments) for o in self.objectives]

    def out_of_sample(self, params: dict[str, Any]) -> list[float | None]:
        """The objectives on the test periods (each fold's, combined as in sample)."""
        return self.values([SegmentFigures.of(self.backtest(params, f)) for f in self.test if len(f)])

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        """Optuna's objective: the in-sample values, reported per segment when pruning."""
        import optuna

        params = self.settings.space.suggest(trial)
        trial.set_user_attr("worker", self.worker)
        key = tuple(sorted((name, repr(value)) for name, value in params.items()))
        known = self._finished.get(key)
        if known is not None:  # the sampler repeated a parameter set this process ran: same figures
            return self._record(trial, *known)
        segments: list[SegmentFigures] = []
        for step, frame in enumerate(self.train):
            segments.append(SegmentFigures.of(self.backtest(params, frame)))
            if self.prunes and step < len(self.train) - 1:
                running = self.values(segments)[0]
                trial.report(self.objectives[0].worst if running is None else running, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"worse than the median after segment {step + 1}")
        values = self.values(segments)
        trades = sum(s.metrics.trades for s in segments)
        busiest = max((s.busiest_day for s in segments), default=0)
        net = str(sum((s.metrics.net_pnl for s in segments), Decimal(0)))
        scored = [o.worst if v is None else v for o, v in zip(self.objectives, values, strict=True)]
        self._finished[key] = (scored, trades, busiest, net, trial.number)
        return self._record(trial, scored, trades, busiest, net, None)

    def _record(
        self,
        trial: optuna.Trial,
        scored: list[float],
        trades: int,
        busiest: int,
        net: str,
        same_as: int | None,
    ) -> float | list[float]:
        """The trial's figures as user attrs and constraints; its objective value(s) for Optuna."""
        trial.set_user_attr("trades", trades)
        trial.set_user_attr("busiest_day_trades", busiest)
        trial.set_user_attr("net_pnl", net)
        if same_as is not None:
            trial.set_user_attr("same_as", same_as)
        for name, value in self.settings.constraints.values(trades, busiest).items():
            trial.set_constraint(name, value)
        return scored[0] if len(scored) == 1 else list(scored)


def split_windows(settings: StudySettings, bars: BarFrame) -> list[Any]:
    """The study's train/test windows over `bars` (`oos.Window`s)."""
    if not len(bars):
        raise ParameterError(f"{settings.symbol}: no bars in the range to optimize on")
    if settings.walk_forward:
        return list(oos.walk_forward_windows(bars.ts, settings.walk_forward, settings.anchored))
    if settings.holdout:
        return list(oos.holdout_windows(bars.ts, settings.holdout))
    end = int(bars.ts[-1]) + 1
    return [oos.Window(int(bars.ts[0]), end, end, end)]


def make_sampler(settings: StudySettings, seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    if settings.multi:
        return optuna.samplers.NSGAIISampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def make_pruner(runner: TrialRunner) -> optuna.pruners.BasePruner:
    import optuna

    if not runner.prunes:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=0)


@dataclass(frozen=True, slots=True)
class TrialCounts:
    """Trials of a study by state; `finished` counts toward the target (COMPLETE + PRUNED)."""

    complete: int
    pruned: int
    failed: int
    running: int
    waiting: int

    @property
    def finished(self) -> int:
        return self.complete + self.pruned


def count_trials(study: optuna.Study) -> TrialCounts:
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return TrialCounts(
        complete=states.count(TrialState.COMPLETE),
        pruned=states.count(TrialState.PRUNED),
        failed=states.count(TrialState.FAIL),
        running=states.count(TrialState.RUNNING),
        waiting=states.count(TrialState.WAITING),
    )


_RECOVERABLE = (IbotError, ValueError, ArithmeticError)  # a parameter set the strategy cannot run: FAIL


def run_trials(
    study: optuna.Study,
    runner: TrialRunner,
    target: int,
    *,
    stop: Callable[[], bool],
    on_trial: Callable[[TrialCounts], None] | None = None,
    poll: float = 0.5,
) -> TrialCounts:
    """Run trials of `study` until it has `target` finished trials or `stop()` is true (checked between
    trials; a running trial always finishes). Returns the final counts."""
    import optuna

    failures = 0
    counts = count_trials(study)
    while not stop():
        if counts.finished >= target and not counts.waiting:
            break
        if counts.finished + counts.running < target or counts.waiting:
            before = counts.failed
            study.optimize(runner, n_trials=1, catch=_RECOVERABLE)
            counts = count_trials(study)
            failures = failures + 1 if counts.failed > before else 0
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise ParameterError(
                    f"{failures} trials in a row failed: {_last_failure(study)}; narrow the search space"
                )
        else:  # the last trials run elsewhere: wait, and retry any whose worker died
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
                fail_silent_trials(study)
            time.sleep(poll)
            counts = count_trials(study)
        if on_trial is not None:
            on_trial(counts)
    return counts


def _last_failure(study: optuna.Study) -> str:
    from optuna.trial import TrialState

    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return str(failed[-1].system_attrs.get("fail_reason", "unknown reason")) if failed else "unknown reason"


def finite(value: float | None) -> float | None:
    """`value` when it is a real number; None for undefined (the worst score) or missing."""
    return value if value is not None and math.isfinite(value) else None

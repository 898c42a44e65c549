"""The HTML report of a parameter search: one self-contained file (plotly.js inline once; it opens offline).

It holds Optuna's views of the study (optimization history, parameter importances, parallel coordinates, and
slices for one objective or the Pareto front for several), the best trial's equity curve, its parameters and
metrics, and the out-of-sample side-by-side table with the rank correlation. A view Optuna cannot draw (too
few trials, a single parameter) is a short note in its place. User text is escaped; the file is written to a
temporary name and renamed, so a reader never sees half a report.
"""

from __future__ import annotations

import html
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ibot.backtest.chart import decimate
from ibot.backtest.report import BacktestResult
from ibot.data.bars import format_time
from ibot.model.errors import ParameterError
from ibot.optimize.oos import describe_correlation

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

__all__ = ["write_report"]

_MAX_POINTS = 8_000
_NOTHING_COMPLETED = "No trial has completed yet, so there is nothing to draw."


@dataclass(frozen=True, slots=True)
class _Section:
    """One heading with a plot (div id + figure, and a note of what Optuna warned while drawing it) or a note
    saying why there is none."""

    title: str
    div_id: str
    figure: go.Figure | None = None
    note: str = ""


def write_report(
    path: Path,
    study: optuna.Study,
    best_result: BacktestResult,
    oos_rows: list[dict[str, Any]],
    rank_correlation: float | None,
    title: str,
) -> Path:
    """Write the report of `study` to `path` (parents created, replaced atomically) and return `path`.

    `oos_rows` are `ibot.optimize.oos.side_by_side` rows (empty: no out-of-sample test was run);
    `rank_correlation` is `oos.spearman` of the trials' in-sample and out-of-sample values."""
    import plotly.offline

    path = Path(path)
    sections = [*_study_sections(study), _equity_section(best_result)]
    body = [f"<h1>{_esc(title)}</h1>", _summary(study, best_result)]
    for s in sections:
        body.append(f'<section><h2 id="{s.div_id}-title">{_esc(s.title)}</h2>')
        if s.figure is not None:
            body.append(s.figure.to_html(full_html=False, include_plotlyjs=False, div_id=s.div_id))
            if s.note:
                body.append(f'<p class="note">{_esc(s.note)}</p>')
        else:
            body.append(f'<p class="note" id="{s.div_id}">{_esc(s.note)}</p>')
        body.append("</section>")
    body.append(_best_tables(best_result))
    body.append(_oos_section(oos_rows, rank_correlation))
    page = (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n"
        f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script>\n"
        "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
    _write_atomic(path, page)
    return path


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
    "text-align:right}th{background:#f0f0f0}td.text,th.text{text-align:left}"
    ".note{color:#7a5b00;background:#fff8e0;padding:.5em;border-left:3px solid #e0b000}"
    "section{margin-top:1.5em}"
)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _write_atomic(path: Path, text: str) -> None:
    """Write beside `path` and rename over it; a path the OS refuses is one sentence naming `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ParameterError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    finally:
        with suppress(OSError):  # e.g. the parent is a file: nothing was written
            tmp.unlink(missing_ok=True)


# --- Optuna's views ----------------------------------------------------------------------------------------


@contextmanager
def _optuna_warnings() -> Iterator[list[str]]:
    """Collect what Optuna warns while drawing (shown under the view) instead of printing it on stderr;
    its log warnings (e.g. "no completed trials") are left out: the report's notes say so."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.ERROR)
    messages: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages.extend(dict.fromkeys(str(w.message).strip() for w in caught))
    finally:
        logger.setLevel(level)


def _objective_names(study: optuna.Study) -> list[str]:
    names = study.metric_names
    if names and len(names) == len(study.directions):
        return [str(n) for n in names]
    if len(study.directions) == 1:
        return ["objective"]
    return [f"objective {k + 1}" for k in range(len(study.directions))]


def _draw(
    title: str,
    div_id: str,
    plot: Callable[..., go.Figure],
    study: optuna.Study,
    handled: str = "",
    **kw: Any,
) -> _Section:
    """`plot(study, **kw)` from Optuna, or a note when it cannot (an error, or a figure with no data).
    A warning containing `handled` is one the caller has already taken care of: it is not shown."""
    try:
        with _optuna_warnings() as said:
            fig = plot(study, **kw)
    except Exception as exc:  # any failure of one view becomes a note, never a lost report
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        return _Section(title, div_id, note=f"Optuna could not draw this view: {reason}")
    if not _has_data(fig):
        return _Section(title, div_id, note="Optuna has nothing to draw here for this study.")
    fig.update_layout(title=title)
    shown = [m for m in said if not (handled and handled in m)]
    return _Section(title, div_id, figure=fig, note=" ".join(f"Optuna: {m}" for m in shown))


def _has_data(fig: go.Figure) -> bool:
    for trace in fig.data:
        for key in ("x", "y", "dimensions", "values"):
            value = getattr(trace, key, None) if key in trace else None
            if value is not None and len(value) > 0:
                return True
    return False


def _study_sections(study: optuna.Study) -> list[_Section]:
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    names = _objective_names(study)
    out: list[_Section] = []
    for k, name in enumerate(names):
        out += _objective_sections(study, complete, k, name, multi=len(names) > 1)
    if len(names) > 1:
        out.append(_pareto(study, names, complete))
    return out


def _objective_sections(
    study: optuna.Study, complete: Sequence[optuna.trial.FrozenTrial], k: int, name: str, multi: bool
) -> list[_Section]:
    """History, importances, parallel coordinates (and slices for a single objective) of objective `k`."""
    from optuna import visualization as vis

    suffix, ids = (f": {name}", f"-{k + 1}") if multi else ("", "")
    titles = {
        "history": f"Optimization history{suffix}",
        "importances": f"Parameter importances{suffix}",
        "parallel": f"Parallel coordinates{suffix}",
    }
    if not multi:
        titles["slice"] = "Slices"
    if not complete:
        return [_Section(title, key + ids, note=_NOTHING_COMPLETED) for key, title in titles.items()]
    # Optuna requires a target for a multi-objective study: objective k of each trial
    kw: dict[str, Any] = {"target_name": name}
    if multi:
        kw["target"] = lambda t: float(t.values[k])
    out = [_draw(titles["history"], f"history{ids}", vis.plot_optimization_history, study, **kw)]
    out.append(_importances(study, complete, k, name, titles["importances"], f"importances{ids}", multi))
    out.append(_draw(titles["parallel"], f"parallel{ids}", vis.plot_parallel_coordinate, study, **kw))
    if not multi:
        out.append(_draw(titles["slice"], "slice", vis.plot_slice, study, **kw))
    return out


def _importances(
    study: optuna.Study,
    complete: Sequence[optuna.trial.FrozenTrial],
    k: int,
    name: str,
    title: str,
    div_id: str,
    multi: bool,
) -> _Section:
    """Importances of the parameters for objective k (named `name`), or a note when there are too few trials
    or parameters to compare."""
    import optuna
    from optuna import visualization as vis

    params = sorted({p for t in complete for p in t.params})
    if len(complete) < 2 or len(params) < 2:
        has = f"{len(complete)} completed trial(s) and {len(params)} parameter(s) ({', '.join(params)})"
        note = (
            f"Importances compare 2 or more parameters over 2 or more completed trials; this study has {has}."
        )
        return _Section(title, div_id, note=note)
    if not multi:
        return _draw(title, div_id, vis.plot_param_importances, study)
    # with a target, Optuna's evaluator ranks parameters by how they lead to LOW values: negate an objective
    # that is maximized so the importances are about reaching good values
    sign = -1.0 if study.directions[k] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return _draw(
        title,
        div_id,
        vis.plot_param_importances,
        study,
        handled="importances of params to achieve low `target` values",
        target=lambda t: sign * float(t.values[k]),
        target_name=name,
    )


def _pareto(study: optuna.Study, names: list[str], complete: Sequence[Any]) -> _Section:
    from optuna import visualization as vis

    if len(names) > 3:
        return _Section(
            "Pareto front",
            "pareto",
            note=f"The Pareto front is drawn for 2 or 3 objectives; this study has {len(names)}.",
        )
    if not complete:
        return _Section("Pareto front", "pareto", note=_NOTHING_COMPLETED)
    return _draw("Pareto front", "pareto", vis.plot_pareto_front, study, target_names=names)


# --- the best trial ----------------------------------------------------------------------------------------


def _equity_section(result: BacktestResult) -> _Section:
    import plotly.graph_objects as go

    title = "Best trial: equity curve"
    if len(result.ts) == 0:
        return _Section(title, "equity", note="The best trial's backtest has no bars, so there is no curve.")
    keep = decimate(result.equity, _MAX_POINTS)
    times = np.datetime_as_string(result.ts[keep].astype("datetime64[ns]"), unit="s").tolist()
    fig = go.Figure(
        go.Scatter(x=times, y=[float(v) for v in result.equity[keep]], name="equity", mode="lines")
    )
    fig.add_hline(y=float(result.initial_capital), line_dash="dash", line_color="grey", line_width=1)
    fig.update_layout(
        title=f"{title} ({result.strategy} on {result.instrument.key}, times UTC)",
        yaxis_title=f"equity ({result.instrument.currency})",
        height=420,
    )
    return _Section(title, "equity", figure=fig)


def _summary(study: optuna.Study, result: BacktestResult) -> str:
    import optuna

    states = [t.state for t in study.get_trials(deepcopy=False)]
    done = sum(1 for s in states if s == optuna.trial.TrialState.COMPLETE)
    goals = ", ".join(
        f"{name} ({d.name.lower()})"
        for name, d in zip(_objective_names(study), study.directions, strict=True)
    )
    period = (
        f"{format_time(int(result.ts[0]))} to {format_time(int(result.ts[-1]))}"
        if len(result.ts)
        else "no bars"
    )
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"<p>Study {_esc(study.study_name)}: {len(states)} trials, {done} completed; goal: {_esc(goals)}. "
        f"Best trial's backtest: {_esc(result.strategy)} on {_esc(result.instrument.key)}, "
        f"{len(result.ts)} bars, {_esc(period)}. Written {made}.</p>"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], text_cols: int = 1) -> str:
    def cell(tag: str, k: int, v: object) -> str:
        cls = ' class="text"' if k < text_cols else ""
        return f"<{tag}{cls}>{_esc(v)}</{tag}>"

    head = "".join(cell("th", k, h) for k, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", k, v) for k, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _best_tables(result: BacktestResult) -> str:
    params = [(k, v) for k, v in result.params.items()]
    metrics = [(k, _fmt(v)) for k, v in result.metrics.to_dict().items()]
    return (
        '<section id="best"><h2>Best trial: parameters and metrics</h2>'
        f"<h3>Parameters</h3>{_table(['parameter', 'value'], params, text_cols=2)}"
        f"<h3>Metrics</h3>{_table(['metric', 'value'], metrics)}</section>"
    )


# --- out of sample -----------------------------------------------------------------------------------------


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, float):
        return str(v)
    if math.isnan(v):
        return "NaN"
    return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.4g}"


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _oos_section(rows: list[dict[str, Any]], rho: float | None) -> str:
    title = "<h2>Out of sample: the best in-sample trials side by side</h2>"
    if not rows:
        return (
            f'<section id="oos">{title}<p class="note">No out-of-sample test was run '
            "(see --holdout and --walk-forward).</p></section>"
        )
    table = _table(
        ["trial", "parameters", "in-sample", "in-sample rank", "out-of-sample", "out-of-sample rank"],
        [
            (
                r["number"],
                _params_text(r["params"]),
                _fmt(r["in_sample"]),
                _fmt(r["in_sample_rank"]),
                _fmt(r["out_of_sample"]),
                _fmt(r["out_of_sample_rank"]),
            )
            for r in rows
        ],
        text_cols=2,
    )
    return (
        f'<section id="oos">{title}{table}'
        f'<p id="rank-correlation">Rank correlation of in-sample and out-of-sample values over all trials: '
        f"{_esc(describe_correlation(rho))}.</p></section>"
    )

"""Charts of a backtest: price with entry/exit markers above the equity curve, as HTML (plotly) and PNG.

The HTML file is self-contained (plotly.js inline, about 4 MB), so it opens offline. Long runs are reduced
to at most `max_points` per series by min/max decimation (each bucket keeps its lowest and highest point, so
spikes and drawdowns stay visible); at most `max_markers` trades are marked, evenly spread over the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ibot.backtest.report import BacktestResult

__all__ = ["decimate", "write_html", "write_live_chart", "write_png"]

_MAX_POINTS = 8_000
_MAX_MARKERS = 2_000


def decimate(values: npt.NDArray[np.float64], max_points: int = _MAX_POINTS) -> npt.NDArray[np.int64]:
    """Indices (sorted) that keep the min and max of each of max_points/2 equal buckets, plus the last."""
    n = len(values)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    buckets = max(1, max_points // 2)
    size = -(-n // buckets)
    pad = buckets * size - n
    v = np.concatenate((values, np.full(pad, values[-1]))).reshape(buckets, size)
    base = np.arange(buckets, dtype=np.int64) * size
    lo = base + np.argmin(v, axis=1)
    hi = base + np.argmax(v, axis=1)
    idx = np.unique(np.concatenate((lo, hi, [0, n - 1])))
    return idx[idx < n]


def _markers(result: BacktestResult, max_markers: int) -> tuple[dict[str, Any], int]:
    trades = result.trades
    shown = trades
    if len(trades) > max_markers:
        pick = np.linspace(0, len(trades) - 1, max_markers).round().astype(np.int64)
        shown = [trades[int(k)] for k in np.unique(pick)]
    m: dict[str, Any] = {
        "long_t": [],
        "long_p": [],
        "short_t": [],
        "short_p": [],
        "exit_t": [],
        "exit_p": [],
    }
    for t in shown:
        key = "long" if t.side == "LONG" else "short"
        m[f"{key}_t"].append(np.datetime64(t.entry_ts, "ns"))
        m[f"{key}_p"].append(t.entry_price + t.adjustment)  # on the series the chart draws
        m["exit_t"].append(np.datetime64(t.exit_ts, "ns"))
        m["exit_p"].append(t.exit_price + t.adjustment)
    return m, len(shown)


def _title(result: BacktestResult, shown: int) -> str:
    m = result.metrics
    note = f" (markers: {shown} of {len(result.trades)} trades)" if shown < len(result.trades) else ""
    return (
        f"{result.strategy} on {result.instrument.key}: net {m.net_pnl:,.2f} {result.instrument.currency}, "
        f"{m.trades} trades{note}"
    )


def write_html(
    result: BacktestResult,
    path: str | Path,
    max_points: int = _MAX_POINTS,
    max_markers: int = _MAX_MARKERS,
) -> Path:
    """Interactive chart, self-contained HTML (no CDN needed to view)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = result.ts.astype("datetime64[ns]")
    pi = decimate(result.close, max_points)
    ei = decimate(result.equity, max_points)
    m, shown = _markers(result, max_markers)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.04)
    fig.add_trace(go.Scattergl(x=t[pi], y=result.close[pi], name="close", mode="lines"), row=1, col=1)
    for key, name, symbol, color in (
        ("long", "long entry", "triangle-up", "green"),
        ("short", "short entry", "triangle-down", "red"),
        ("exit", "exit", "x", "black"),
    ):
        fig.add_trace(
            go.Scattergl(
                x=m[f"{key}_t"],
                y=m[f"{key}_p"],
                name=name,
                mode="markers",
                marker={"symbol": symbol, "color": color, "size": 8},
            ),
            row=1,
            col=1,
        )
    fig.add_trace(go.Scattergl(x=t[ei], y=result.equity[ei], name="equity", mode="lines"), row=2, col=1)
    fig.update_layout(title=_title(result, shown), height=800, hovermode="x")
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text=f"equity ({result.instrument.currency})", row=2, col=1)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path


def write_png(
    result: BacktestResult,
    path: str | Path,
    max_points: int = _MAX_POINTS,
    max_markers: int = _MAX_MARKERS,
    dpi: int = 110,
) -> Path:
    """Static chart as PNG (matplotlib, Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = result.ts.astype("datetime64[ns]")
    pi = decimate(result.close, max_points)
    ei = decimate(result.equity, max_points)
    m, shown = _markers(result, max_markers)
    fig, (ax1, ax2) = plt.subplots(
        2, 1, sharex=True, figsize=(13, 7.5), gridspec_kw={"height_ratios": [2, 1]}, layout="constrained"
    )
    try:
        ax1.plot(t[pi], result.close[pi], lw=0.8, color="tab:blue", label="close")
        ax1.scatter(m["long_t"], m["long_p"], marker="^", color="green", s=28, label="long entry", zorder=3)
        ax1.scatter(m["short_t"], m["short_p"], marker="v", color="red", s=28, label="short entry", zorder=3)
        ax1.scatter(m["exit_t"], m["exit_p"], marker="x", color="black", s=22, label="exit", zorder=3)
        ax1.set_ylabel("price")
        ax1.legend(loc="upper left", fontsize=8)
        ax1.set_title(_title(result, shown), fontsize=10)
        ax2.plot(t[ei], result.equity[ei], lw=0.9, color="tab:purple")
        ax2.axhline(float(result.initial_capital), color="grey", lw=0.6, ls="--")
        ax2.set_ylabel(f"equity ({result.instrument.currency})")
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def write_live_chart(summary: Mapping[str, Any], path: Path) -> Path:
    """PNG of a live run: its bar closes with the fills marked, above its P&L (cash + position x close).

    `summary` is a live run's summary as plain data: `bars` (ts ns, open, high, low, close, volume), `fills`
    (rows with `time` in the CLI's UTC format, `side`, `qty`, `price`, `commission`), `symbol`, `bar`,
    `strategy` and `simulated`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ibot.model import catalog
    from ibot.model.market import ns_to_datetime

    bars = summary["bars"]
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_p, ax_e) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=[3, 1.4])
    times = [ns_to_datetime(b[0]) for b in bars]
    closes = [b[4] for b in bars]
    ax_p.plot(times, closes, lw=1.0, color="#333333", label=f"{summary['symbol']} {summary['bar']} close")
    fills = summary["fills"]
    mult = float(catalog.get_instrument(summary["symbol"]).multiplier) if bars else 1.0
    for side, color, marker in (("BUY", "#1a9850", "^"), ("SELL", "#d73027", "v")):
        pts = [(_fill_time(f["time"]), float(f["price"])) for f in fills if f["side"] == side]
        if pts:
            ax_p.scatter(*zip(*pts, strict=True), color=color, marker=marker, s=40, zorder=3, label=side)
    ax_p.legend(loc="upper left", fontsize=8)
    venue = "the built-in simulator" if summary["simulated"] else "IB"
    ax_p.set_title(f"live {summary['strategy']} against {venue}: fills from the records database")
    ax_e.plot(times, _live_equity(bars, fills, mult), lw=1.0, color="#4575b4")
    ax_e.axhline(0, color="#999999", lw=0.6)
    ax_e.set_ylabel("P&L (USD)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fill_time(text: str) -> datetime:
    """A fill time as the CLI shows it (`2025-03-05 14:30:05 UTC`), back to an aware datetime."""
    from ibot.data.bars import TIME_FORMAT

    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def _live_equity(bars: list[Any], fills: list[Mapping[str, Any]], mult: float) -> list[float]:
    """P&L per bar: the fills up to the bar's end (times are whole seconds), marked at its close."""
    from ibot.model.market import ns_to_datetime

    equity = []
    k = 0
    cash = 0.0
    pos = 0
    fees = 0.0
    ordered = sorted(fills, key=lambda f: f["time"])
    step = (bars[1][0] - bars[0][0]) if len(bars) > 1 else 0
    for b in bars:
        end = ns_to_datetime(b[0] + step)
        while k < len(ordered) and _fill_time(ordered[k]["time"]) < end:
            f = ordered[k]
            sign = 1 if f["side"] == "BUY" else -1
            cash -= sign * f["qty"] * float(f["price"]) * mult
            fees += float(f["commission"] or 0)
            pos += sign * f["qty"]
            k += 1
        equity.append(cash + pos * b[4] * mult - fees)
    return equity

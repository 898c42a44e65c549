"""The live status line: connection and feed state, position, P&L, the last signal, open orders, what is
degraded, as one plain line (logs) or a rich Text (terminal). Reads a snapshot; changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from ibot.engine.session import SessionState, SessionStatus, TradingSession
from ibot.model.market import ns_to_datetime

if TYPE_CHECKING:
    from ibot.engine.runner import LiveRunner

__all__ = ["render_status", "status_line"]

_STATE_STYLE = {
    SessionState.READY: "bold green",
    SessionState.STARTING: "yellow",
    SessionState.RECONCILING: "yellow",
    SessionState.PAUSED: "bold red",
    SessionState.STOPPED: "dim",
}


def _parts(status: SessionStatus, runner: LiveRunner | None) -> list[tuple[str, str]]:
    """(text, style) pieces of the line, in display order."""
    when = ns_to_datetime(status.ts).strftime("%Y-%m-%d %H:%M:%S") if status.ts else "-"
    pos = " ".join(f"{k} {v:+d}" for k, v in sorted(status.positions.items())) or "flat"
    feed_style = "green" if status.feed in ("ok", "off") else "bold red"
    out: list[tuple[str, str]] = [
        (when, "dim"),
        (status.state.value.upper(), _STATE_STYLE.get(status.state, "")),
        (f"link {status.connection.value} #{status.client_id}", ""),
        (f"feed {status.feed}", feed_style),
        (f"pos {pos}", "bold"),
        (f"realized {status.realized_pnl:+.2f}", "green" if status.realized_pnl >= 0 else "red"),
        (f"day {status.day_pnl:+.2f}", "green" if status.day_pnl >= 0 else "red"),
        (f"open {len(status.open_orders)}", ""),
    ]
    if runner is not None:
        stats = runner.stats
        ctx = runner.ctx
        bar = stats.last_bar
        out.append((f"{runner.strategy.name} {runner.bar}: {stats.bars} bars", "cyan"))
        if bar is not None:
            out.append((f"close {bar.close}", ""))
        signal = ctx.last_signal if ctx is not None else None
        if signal is not None:
            at = ns_to_datetime(signal.ts).strftime("%H:%M:%S") if signal.ts else "-"
            out.append((f"last signal {signal.describe()} @ {at}", "magenta"))
        if stats.paused_reasons:
            out.append(("STRATEGY PAUSED: " + ", ".join(sorted(stats.paused_reasons)), "bold red"))
        if stats.strategy_errors:
            out.append((f"strategy errors {stats.strategy_errors}", "bold red"))
    if status.degraded:
        out.append(("degraded: " + ", ".join(status.degraded), "bold yellow"))
    if status.kill_switch:
        out.append((f"KILLED: {status.kill_switch}", "bold white on red"))
    if status.last_error:
        out.append((f"last error: {status.last_error}", "red"))
    return out


def status_line(session: TradingSession, runner: LiveRunner | None = None) -> str:
    """The status as one plain line (for logs and tests)."""
    return " | ".join(text for text, _ in _parts(session.status(), runner))


def render_status(session: TradingSession, runner: LiveRunner | None = None) -> Text:
    """The status as a styled rich Text for the terminal."""
    line = Text()
    for i, (text, style) in enumerate(_parts(session.status(), runner)):
        if i:
            line.append(" | ", style="dim")
        line.append(text, style=style)
    return line

"""The live status line: connection and feed state, position, P&L, the last signal (or what the strategy says
of itself, such as a daily cap reached), open orders, what is degraded, missing data, as one plain line (logs)
or a rich Text (terminal). Every time it shows is market time and says its zone ("market 2025-03-05 14:40:58
UTC"). Reads a snapshot; changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from ibot.engine.session import SessionState, SessionStatus, TradingSession
from ibot.model.market import ns_to_datetime

if TYPE_CHECKING:
    from ibot.engine.runner import LiveRunner

__all__ = ["market_closed_note", "render_status", "status_line", "strategy_note"]

_STATE_STYLE = {
    SessionState.READY: "bold green",
    SessionState.STARTING: "yellow",
    SessionState.RECONCILING: "yellow",
    SessionState.PAUSED: "bold red",
    SessionState.STOPPED: "dim",
}


def _parts(status: SessionStatus, runner: LiveRunner | None) -> list[tuple[str, str]]:
    """(text, style) pieces of the line, in display order."""
    when = f"market {_utc(status.ts, '%Y-%m-%d %H:%M:%S')}" if status.ts else "market time not known yet"
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
        note = strategy_note(runner.strategy)
        signal = ctx.last_signal if ctx is not None else None
        if note:  # e.g. stopped for its daily trade cap: that, not a signal from hours ago
            out.append((note, "bold magenta"))
        elif signal is not None:
            at = _utc(signal.ts, "%H:%M:%S") if signal.ts else "-"
            out.append((f"last signal {signal.describe()} @ {at}", "magenta"))
        closed = market_closed_note(runner, status.ts)
        if closed:
            out.append((closed, "bold yellow"))
        if stats.no_data:
            out.append((stats.no_data, "bold yellow"))
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


def market_closed_note(runner: LiveRunner, ts: int) -> str:
    """ "market closed until <open> UTC" while the runner's instrument is out of session at market time `ts`
    (weekend, daily halt, holiday), so "0 bars" reads as what it is; "" when open or not known."""
    inst = runner.instrument
    if inst is None or not ts:
        return ""
    from ibot.exchange.hours import hours_for
    from ibot.model.errors import IbotError

    try:
        hours = hours_for(inst)
        if hours.is_open(ts):
            return ""
        return f"market closed until {_utc(hours.next_open(ts), '%Y-%m-%d %H:%M:%S')}"
    except (IbotError, ValueError):  # a date outside the calendars: say nothing rather than fail the line
        return ""


def _utc(ts: int, fmt: str) -> str:
    """A market time as the status line shows it: always labelled with its zone."""
    return ns_to_datetime(ts).strftime(fmt) + " UTC"


def strategy_note(strategy: object) -> str:
    """What the strategy says of itself (`status_note()`, e.g. "stopped for today: ..."), or ""."""
    note = getattr(strategy, "status_note", None)
    if not callable(note):
        return ""
    try:
        text = note()
    except Exception:  # the status line must never fail because of a strategy
        return ""
    return text if isinstance(text, str) else ""


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

"""The live-trading service: one strategy on one instrument through ib_async, against TWS / IB Gateway or the
built-in simulator, from start to a clean stop. It prints nothing: surfaces (the CLI today) pass callbacks
and render the typed result.

What it promises:
- SIGINT and SIGTERM stop a run gracefully: the strategy's market data stops, its working orders are
  cancelled, the position is flattened when `flatten` says so, the records are flushed and closed, and the
  result says which signal ended the run. A second signal forces the exit (`ForcedStop`); the records stay
  consistent because every order and fill was committed when it happened.
- "This run" is the orders this run created: the result lists their client order ids, whatever else the
  records file holds from earlier runs.
- `lockstep` (with `sim`) replays a seeded synthetic session bar by bar, the market waiting for the strategy,
  so the same seed gives the same orders, fills and P&L on any machine at any load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ibot.app.node import (
    SIM_START,
    NodeOptions,
    NodeResult,
    StrategySpec,
    TradingNode,
    check_node_options,
    replay_session,
)
from ibot.model.market import NS_PER_SECOND, Bar

if TYPE_CHECKING:
    from ibot.engine.runner import LiveRunner
    from ibot.engine.session import SessionStatus, TradingSession
    from ibot.strategy.base import Strategy

__all__ = [
    "SIM_START",
    "LiveRunOptions",
    "LiveRunResult",
    "check_options",
    "describe_final",
    "replay_session",
    "run_live",
]


@dataclass(frozen=True, slots=True)
class LiveRunOptions:
    """What to trade, where, and for how long (`duration`: market seconds; None until a signal)."""

    strategy: Strategy
    symbol: str
    bar: str
    records_url: str
    sim: bool = False
    sim_speed: float = 60.0
    duration: float | None = None
    seed: int = 7
    sim_start: datetime | None = None
    flatten: bool = True
    lockstep: bool = False
    records_sync: str | None = None

    def node_options(self) -> NodeOptions:
        """The node that runs this one strategy: the same venue, risk defaults and stop behaviour."""
        spec = StrategySpec(self.strategy.name, self.symbol, self.bar, instance=self.strategy)
        return NodeOptions(
            strategies=(spec,),
            records_url=self.records_url,
            sim=self.sim,
            sim_speed=self.sim_speed,
            sim_start=self.sim_start,
            seed=self.seed,
            lockstep=self.lockstep,
            duration=self.duration,
            flatten=self.flatten,
            records_sync=self.records_sync,
        )


@dataclass(slots=True)
class LiveRunResult:
    """How a run went: its orders (client ids), bars, market and wall time, what stopped it, the final
    state."""

    records_url: str
    simulated: bool
    start_ns: int = 0
    end_ns: int = 0
    wall_seconds: float = 0.0
    order_ids: set[str] = field(default_factory=set)
    bars: list[Bar] = field(default_factory=list)
    stopped_by: str = ""  # "" (duration reached), "SIGINT", "SIGTERM"
    final: SessionStatus | None = None
    flatten_failed: str = ""  # why the position is not flat after a flattening stop, if it is not

    @property
    def market_seconds(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_SECOND

    @classmethod
    def of(cls, node: NodeResult) -> LiveRunResult:
        return cls(
            records_url=node.records_url,
            simulated=node.simulated,
            start_ns=node.start_ns,
            end_ns=node.end_ns,
            wall_seconds=node.wall_seconds,
            order_ids=set(node.order_ids),
            bars=list(node.strategies[0].bars) if node.strategies else [],
            stopped_by=node.stopped_by,
            final=node.final,
            flatten_failed="; ".join(node.flatten_failed),
        )


StatusCallback = Callable[["TradingSession", "LiveRunner"], None]
NoticeCallback = Callable[[str], None]


async def run_live(
    options: LiveRunOptions,
    *,
    on_status: StatusCallback | None = None,
    status_every: float = 1.0,
    notice: NoticeCallback | None = None,
) -> LiveRunResult:
    """Run `options.strategy` live until `duration` market seconds have passed or a signal stops it: a
    `TradingNode` hosting this one strategy.

    `on_status(session, runner)` is called every `status_every` wall seconds while trading and once at the
    end; `notice(text)` receives the start-up line and what the stop did."""
    check_options(options)

    def status(node: TradingNode) -> None:
        if on_status is not None and node.runners:
            on_status(node.session, node.runners[0])

    node = TradingNode(options.node_options(), notice=notice, on_status=status, status_every=status_every)
    return LiveRunResult.of(await node.run())


def check_options(options: LiveRunOptions) -> None:
    """Refuse a run that cannot start (bar size, symbol, IB settings) before anything is created."""
    check_node_options(options.node_options())


def describe_final(result: LiveRunResult) -> dict[str, Any]:
    """The final state as plain data: positions, open orders, P&L, what stopped the run."""
    final = result.final
    return {
        "stopped_by": result.stopped_by or "duration",
        "traded": final is not None,  # False: stopped before the session was ready, nothing was sent
        "positions": dict(final.positions) if final is not None else {},
        "open_orders": list(final.open_orders) if final is not None else [],
        "realized_pnl": final.realized_pnl if final is not None else None,
        "day_pnl": final.day_pnl if final is not None else None,
        "flatten_failed": result.flatten_failed,
    }

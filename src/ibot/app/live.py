"""The live-trading service: one strategy on one instrument through ib_async, against TWS / IB Gateway or the
built-in simulator, from start to a clean stop. It is a `TradingNode` (ibot.app.node) hosting that one
strategy, and returns the node's `NodeResult`; `describe_final`, `SIM_START` and `replay_session` are the
node's. It prints nothing: surfaces pass callbacks and render the typed result.

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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ibot.app.node import (
    SIM_START,
    NodeOptions,
    NodeResult,
    StrategySpec,
    TradingNode,
    check_node_options,
    describe_final,
    replay_session,
)

if TYPE_CHECKING:
    from ibot.engine.runner import LiveRunner
    from ibot.engine.session import TradingSession
    from ibot.strategy.base import Strategy

__all__ = [
    "SIM_START",
    "LiveRunOptions",
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
    warmup_bars: int = 500  # closed bars filling the strategy's indicators before it may act (0: none)
    data_dir: Path | None = None  # the stored continuous series for the warm-up (see NodeOptions)

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
            warmup_bars=self.warmup_bars,
            data_dir=self.data_dir,
        )


StatusCallback = Callable[["TradingSession", "LiveRunner"], None]
NoticeCallback = Callable[[str], None]


async def run_live(
    options: LiveRunOptions,
    *,
    on_status: StatusCallback | None = None,
    status_every: float = 1.0,
    notice: NoticeCallback | None = None,
) -> NodeResult:
    """Run `options.strategy` live until `duration` market seconds have passed or a signal stops it: a
    `TradingNode` hosting this one strategy, and its result (the strategy's bars: `result.strategies[0]`).

    `on_status(session, runner)` is called every `status_every` wall seconds while trading and once at the
    end; `notice(text)` receives the start-up line and what the stop did."""
    check_options(options)

    def status(node: TradingNode) -> None:
        if on_status is not None and node.runners:
            on_status(node.session, node.runners[0])

    node = TradingNode(options.node_options(), notice=notice, on_status=status, status_every=status_every)
    return await node.run()


def check_options(options: LiveRunOptions) -> None:
    """Refuse a run that cannot start (bar size, symbol, IB settings) before anything is created."""
    check_node_options(options.node_options())

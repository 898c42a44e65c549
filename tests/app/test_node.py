"""The trading node (`ibot.app.node`) against the TWS simulator over loopback, through the unmodified ib_async
client, records on a real SQLite file:

- two strategies on two instruments in one node: one IB order connection (one client id at the simulator),
  both trade, every order at the simulator is one of this run's records, and the stop flattens both;
- shared risk: a strategy and the order intake (a door) on the same instrument share ONE position limit: the
  strategy holds 2 of max_position 2, a door's ticket for 1 more on the same side is REJECTED naming
  max_position and never reaches the simulator, while a ticket that reduces the position is placed;
- components: doors start after the strategies and stop before them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ibot.app.node import NodeOptions, StrategySpec, TradingNode, check_node_options
from ibot.brokers.ib.config import IBSettings
from ibot.model.errors import IbotError
from ibot.model.market import NS_PER_SECOND, Bar
from ibot.model.orders import OrderType, Side
from ibot.oms.intake import IntakeVerdict, OrderTicket
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.sim.orders import SimOrder
from ibot.sim.server import SimServer
from ibot.strategy.base import Strategy

START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)  # a Wednesday at 09:00 Chicago: CME Globex is open
WAIT = 10.0


def _settings(server: SimServer) -> IBSettings:
    return IBSettings.model_validate(
        {
            "port": server.port,
            "connect_timeout": 5.0,
            "reconnect_initial_delay": 0.05,
            "reconnect_max_delay": 0.2,
            "watchdog_poll_seconds": 0.05,
            "stale_after_seconds": 3600.0,
            "restart_window": {"enabled": False},
        }
    )


def _sim_orders(server: SimServer) -> list[SimOrder]:
    return server.broker.open_orders(None) + server.broker.completed_orders()


async def _until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


def _with_sim(body: Callable[[SimServer], Awaitable[None]], speed: float) -> None:
    async def main() -> None:
        server = SimServer(port=0, symbols=["MES", "MNQ"], speed=speed, start=START)
        await server.start()
        try:
            await asyncio.wait_for(body(server), 60)
        finally:
            await server.stop()

    asyncio.run(main())


def _node(server: SimServer, options: NodeOptions) -> TradingNode:
    market = server.market
    return TradingNode(
        options, settings=_settings(server), market_clock=lambda: int(market.now_s * NS_PER_SECOND)
    )


class HoldTwo(Strategy):
    """Buys `quantity` at market on its first bar, then holds: a position the test controls."""

    name: ClassVar[str] = "hold_two"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.sent = False

    def on_bar(self, bar: Bar) -> None:
        if not self.sent:
            self.sent = True
            self.order(Side.BUY, 2, OrderType.MKT, reason="hold two")


class Door:
    """A minimal component: says when it started and stopped, relative to the strategies."""

    name = "test-door"

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.node: TradingNode | None = None

    async def start(self, node: TradingNode) -> None:
        self.node = node
        self.log.append(f"door start, strategies started: {all(r.ctx is not None for r in node.runners)}")

    async def stop(self) -> None:
        assert self.node is not None
        self.log.append(f"door stop, strategies still subscribed: {all(r._subs for r in self.node.runners)}")

    def status(self) -> str:
        return "listening"


def test_two_strategies_on_two_instruments_share_one_connection_and_stop_flat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.sqlite'}"
    fast = ("sma_period=2",)
    options = NodeOptions(
        strategies=(
            StrategySpec("sma_reversal", "MES", "1min", fast),
            StrategySpec("sma_reversal", "MNQ", "1min", fast),
        ),
        records_url=url,
        duration=3600.0,
        risk=RiskLimits(max_position=5, max_order_size=5, price_band_pct=None),
    )
    log: list[str] = []

    async def body(server: SimServer) -> None:
        node = _node(server, options)
        node.add(Door(log))
        stop = asyncio.Event()
        result = await node.run(stop)
        assert result.traded and result.stopped_by == ""
        assert [s.instrument for s in result.strategies] == ["MESH5", "MNQH5"]
        for s in result.strategies:
            assert len(s.bars) >= 30, f"{s.instrument} saw {len(s.bars)} bars"
        orders = _sim_orders(server)
        client_ids = {o.client_id for o in orders}
        assert client_ids == {1000}, f"one order connection, one client id: {client_ids}"
        keys = {o.inst.key for o in orders}
        assert keys == {"MESH5", "MNQH5"}, f"both strategies traded: {keys}"
        assert {o.view.order_ref for o in orders} == result.order_ids  # every order is this run's record
        assert {inst.key: q for inst, q, _ in server.positions() if q} == {}, "the stop flattens both"
        assert result.final is not None and result.final.positions == {}
        assert result.components == {"test-door": "listening"}

    _with_sim(body, speed=1200.0)
    assert log == ["door start, strategies started: True", "door stop, strategies still subscribed: True"]
    records = OrderRecords(url)
    try:
        assert {r.local_symbol for r in records.orders()} == {"MESH5", "MNQH5"}
    finally:
        records.close()


def test_a_strategy_and_a_door_share_one_position_limit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.sqlite'}"
    options = NodeOptions(
        strategies=(StrategySpec("hold_two", "MES", "5s", instance=HoldTwo()),),
        records_url=url,
        risk=RiskLimits(max_position=2, max_order_size=5, price_band_pct=None),
    )

    async def body(server: SimServer) -> None:
        node = _node(server, options)
        assert await node.start()
        try:
            inst = node.session.instrument("MES")
            await _until(lambda: node.session.om.risk.position(inst) == 2, "the strategy to hold 2")
            before = {o.view.order_ref for o in _sim_orders(server)}
            assert len(before) == 1  # the strategy's one order
            more = OrderTicket(source="webhook", symbol="MES", side="BUY", quantity=1, idempotency_key="k-1")
            refused = await node.intake.submit(more)
            assert refused.verdict is IntakeVerdict.REJECTED, refused
            assert refused.field == "max_position" and "max_position" in refused.reason, refused
            await asyncio.sleep(0.3)  # anything sent would have reached the simulator by now
            assert {o.view.order_ref for o in _sim_orders(server)} == before, "the refused ticket was sent"
            assert node.session.om.risk.position(inst) == 2
            # the same door may reduce: the budget refuses only what crosses the limit
            less = OrderTicket(source="webhook", symbol="MES", side="SELL", quantity=1, idempotency_key="k-2")
            placed = await node.intake.submit(less)
            assert placed.verdict is IntakeVerdict.ACCEPTED, placed
            await _until(lambda: node.session.om.risk.position(inst) == 1, "the door's sell to fill")
            at_sim = {o.view.order_ref for o in _sim_orders(server)} - before
            assert at_sim == {placed.client_order_id}
        finally:
            await node.stop()
        assert node.result.final is not None and node.result.final.positions == {}  # flattened at stop

    _with_sim(body, speed=600.0)


def test_a_node_that_cannot_start_is_refused_in_one_sentence(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    cases = [
        (NodeOptions(strategies=(), records_url=url, sim=True), "trades nothing"),
        (NodeOptions((StrategySpec("sma_reversal", "MES", "8s"),), url, sim=True), "multiple of 5 s"),
        (NodeOptions((StrategySpec("sma_reversal", "NOPE"),), url, sim=True), "NOPE"),
        (NodeOptions((StrategySpec("sma_reversal", "MES"),), url, lockstep=True), "--lockstep needs --sim"),
        (
            NodeOptions(
                (StrategySpec("sma_reversal", "MES", "1min"), StrategySpec("ma_breakout", "MNQ", "5min")),
                url,
                sim=True,
                lockstep=True,
            ),
            "one bar size",
        ),
        (
            NodeOptions(
                (StrategySpec("sma_reversal", "MES"), StrategySpec("sma_reversal", "mes")), url, sim=True
            ),
            "twice",
        ),
    ]
    for options, words in cases:
        with pytest.raises(IbotError, match=words):
            check_node_options(options)
    assert not (tmp_path / "x.sqlite").exists()


# --- settings: the [node] table and the command line over it ---------------------------------------------


def test_the_node_table_is_read_and_a_bad_key_is_named(tmp_path: Path) -> None:
    from ibot.config import ConfigError, load_node_settings

    path = tmp_path / "ibot.toml"
    path.write_text(
        "[node]\n"
        'strategies = [{ strategy = "ma_breakout", symbol = "MES", params = { breakout_bars = 7 } },\n'
        '              { strategy = "sma_reversal", symbol = "MNQ", bar = "1min" }]\n'
        'symbols = ["MCL"]\n'
        "flatten = false\n"
        "[node.risk]\n"
        "max_position = 2\n"
    )
    node = load_node_settings(path)
    assert [(s.strategy, s.symbol, s.bar, s.params) for s in node.strategies] == [
        ("ma_breakout", "MES", "5min", ("breakout_bars=7",)),
        ("sma_reversal", "MNQ", "1min", ()),
    ]
    assert node.symbols == ("MCL",) and node.flatten is False and node.risk.max_position == 2
    for text, where in [
        ("[node.risk]\nmax_position = -1\n", "[node].risk.max_position"),
        ("[node]\nflaten = true\n", "[node].flaten"),
        ('[node]\nstrategies = [{ strategy = "x" }]\n', "[node].strategies.0.symbol"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(f"{path} {where}: ")):
            load_node_settings(path)


def test_strategy_and_symbol_flags_pair_in_order() -> None:
    from ibot.cli.node import pair_strategies

    assert pair_strategies([], []) == [("ma_breakout", "MES")]
    assert pair_strategies(["a", "b"], ["mes"]) == [("a", "MES"), ("b", "MES")]
    assert pair_strategies(["a"], ["MES", "MNQ"]) == [("a", "MES"), ("a", "MNQ")]
    assert pair_strategies(["a", "b"], ["MES", "MNQ"]) == [("a", "MES"), ("b", "MNQ")]
    with pytest.raises(IbotError, match="--strategy is given 2 times and --symbol 3 times"):
        pair_strategies(["a", "b"], ["MES", "MNQ", "MCL"])


def test_flags_override_the_node_table(tmp_path: Path) -> None:
    from ibot.cli.node import NodeFlags, node_options
    from ibot.config import NodeSettings, NodeStrategy

    table = NodeSettings(
        strategies=(
            NodeStrategy(strategy="sma_reversal", symbol="MNQ", bar="1min", params=("sma_period=3",)),
        ),
        flatten=False,
        risk=RiskLimits(max_position=2),
    )
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    from_table = node_options(NodeFlags(), table, url)
    assert [(s.strategy, s.symbol, s.bar, s.params) for s in from_table.strategies] == [
        ("sma_reversal", "MNQ", "1min", ("sma_period=3",))
    ]
    assert from_table.flatten is False and from_table.risk.max_position == 2
    flags = NodeFlags(
        strategies=("sma_reversal", "ma_breakout"),
        symbols=("MES", "MNQ"),
        params=("sma_period=4", "ma_breakout.breakout_bars=3"),
        flatten=True,
    )
    given = node_options(flags, table, url)
    assert [(s.strategy, s.symbol, s.params) for s in given.strategies] == [
        ("sma_reversal", "MES", ("sma_period=4",)),
        ("ma_breakout", "MNQ", ("sma_period=4", "breakout_bars=3")),  # both declare sma_period
    ]
    assert given.flatten is True and given.risk.max_position == 2  # the budget stays the node's
    with pytest.raises(IbotError, match="sma_period=1 is below its minimum 2"):
        node_options(NodeFlags(params=("sma_period=1",)), NodeSettings(), url)
    assert not (tmp_path / "x.sqlite").exists()


def test_the_stop_flattens_even_when_the_day_cap_is_used_up(tmp_path: Path) -> None:
    """A stopping run's flatten is a close-out: the day's trade cap (reached by the strategy's own entry)
    must not keep its position open (met by hand: "flatten +1 MESH5 failed: max_trades_per_day")."""
    options = NodeOptions(
        strategies=(StrategySpec("hold_two", "MES", "1min", instance=HoldTwo()),),
        records_url=f"sqlite:///{tmp_path / 'node.sqlite'}",
        duration=1800.0,
        risk=RiskLimits(max_position=5, max_order_size=5, max_trades_per_day=1, price_band_pct=None),
    )

    async def body(server: SimServer) -> None:
        result = await _node(server, options).run(asyncio.Event())
        assert not result.flatten_failed, result.flatten_failed
        assert {inst.key: q for inst, q, _ in server.positions() if q} == {}, "the stop left a position"
        refs = [o.view.order_ref for o in _sim_orders(server)]
        assert len(refs) == 2, refs  # the entry, then the flatten

    _with_sim(body, speed=1200.0)

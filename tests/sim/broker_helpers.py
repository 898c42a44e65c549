"""A SimBroker on its own (no sockets) with a recorder of what it reports, for the order-path unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sim_helpers import START

from ibot.model import catalog
from ibot.model.market import NS_PER_SECOND
from ibot.sim.faults import OrderFaults
from ibot.sim.layouts_orders import ContractView, OpenOrderView, OrderView, PlaceOrder
from ibot.sim.market import ContractBook, SimMarket, SyntheticSource
from ibot.sim.orders import Execution, SimBroker, SimOrder

MES = catalog.contract("MES", 2025, 6)


@dataclass
class Recorder:
    """Every BrokerEvents call, in order, as tuples."""

    events: list[tuple[Any, ...]] = field(default_factory=list)

    def order_status(self, order: SimOrder, with_open_order: bool) -> None:
        if with_open_order:
            self.events.append(("open", order.order_id, order.status))
        self.events.append(("status", order.order_id, order.status, order.filled, order.remaining))

    def order_error(self, client_id: int, order_id: int, code: int, text: str) -> None:
        self.events.append(("error", order_id, code, text))

    def execution(self, execution: Execution) -> None:
        self.events.append(("exec", execution.order.order_id, execution.quantity, execution.price))

    def commission(self, execution: Execution) -> None:
        self.events.append(("commission", execution.exec_id, execution.commission, execution.realized_pnl))

    def account_changed(self) -> None:
        pass

    def what_if(self, client_id: int, view: OpenOrderView) -> None:
        self.events.append(("what_if", view.order.order_id, view.state))

    def kinds(self, order_id: int | None = None) -> list[tuple[Any, ...]]:
        return [e[:3] for e in self.events if order_id is None or e[1] == order_id]

    def errors(self) -> list[int]:
        return [e[2] for e in self.events if e[0] == "error"]


def make_broker(
    cash: Decimal = Decimal(100_000), thin: bool = True, faults: OrderFaults | None = None
) -> tuple[SimBroker, Recorder]:
    market = SimMarket(SyntheticSource(0), int(START.timestamp()) * NS_PER_SECOND, speed=None)
    rec = Recorder()
    broker = SimBroker(
        market, ContractBook(["MES", "MNQ"]), rec, cash=cash, thin_liquidity=thin, faults=faults
    )
    return broker, rec


def mes_contract(**changes: Any) -> ContractView:
    base = {
        "symbol": "MES",
        "sec_type": "FUT",
        "last_trade_date_or_contract_month": "202506",
        "exchange": "CME",
    }
    base.update(changes)
    return ContractView(**base)


def place(
    broker: SimBroker,
    order_id: int,
    action: str,
    qty: int | str,
    order_type: str = "MKT",
    client_id: int = 1,
    contract: ContractView | None = None,
    **order: Any,
) -> None:
    view = OrderView(
        order_id=order_id, action=action, total_quantity=Decimal(qty), order_type=order_type, **order
    )
    broker.place(client_id, PlaceOrder(order_id, contract or mes_contract(), view))


def advance(broker: SimBroker, seconds: int) -> None:
    old, new = broker.market.advance(seconds)
    broker.on_clock(old, new)


def quote_now(broker: SimBroker) -> tuple[float, float]:
    q = broker.market.quote(MES, int(broker.market.now_s))
    assert q is not None
    return q.bid, q.ask

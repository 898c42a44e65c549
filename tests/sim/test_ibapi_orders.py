"""The order path against IB's official Python client (ibapi 10.46, EClient/EWrapper in its own thread)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from ibapi_helpers import connected, market_order, mes_june, threaded_server

from ibot.model import catalog
from ibot.sim.server import SimServer


@pytest.fixture
def server() -> Iterator[SimServer]:
    with threaded_server(["MES"]) as srv:
        yield srv


def test_ibapi_market_order_fills_with_execution_commission_and_position(server: SimServer) -> None:
    app = connected(server, 3)
    order_id = app.of("nextValidId")[0][1]
    app.placeOrder(order_id, mes_june(), market_order("BUY", 2))
    statuses = app.wait_until("orderStatus", lambda e: e[2] == "Filled")
    filled = next(e for e in statuses if e[2] == "Filled")
    assert filled[1] == order_id and filled[3] == Decimal(2) and filled[4] == Decimal(0)
    assert filled[6] > 0 and filled[7] == 3  # permId, clientId
    [execution] = app.wait_until("execDetails")
    assert execution[1] == -1 and execution[2] == order_id and execution[4] == Decimal(2)
    [report] = app.wait_until("commissionAndFeesReport")
    assert report[1] == execution[3] and report[2] == pytest.approx(1.24) and report[3] == "USD"
    assert next(e[3] for e in app.of("openOrder")) == "Submitted"
    app.reqPositions()
    app.wait_until("positionEnd")
    [pos] = app.of("position")
    assert pos[1] == catalog.contract("MES", 2025, 6).con_id and pos[2] == Decimal(2)
    # IB's avgCost for futures: price x multiplier plus the opening commission per contract
    assert pos[3] == pytest.approx(execution[5] * 5 + 0.62)
    app.disconnect()

"""After a restart the order manager loads the recorded open orders before the market's date is known. A
recorded local symbol such as MESZ4 must then name the month the order traded (resolved at the date it was
created), never the same letters of another decade resolved against the machine's date, and nothing resolved
that early may be kept for the orders that follow (found by the webhook's kill -9 restart test)."""

from __future__ import annotations

from datetime import date

from oms_helpers import T0

from ibot.model import catalog
from ibot.model.clock import Clock
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.manager import OrderManager
from ibot.oms.paper import PaperBroker
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits, RiskManager


def test_a_recorded_month_loads_as_the_month_it_traded_before_the_market_date_is_known(
    records: OrderRecords,
) -> None:
    mes = catalog.contract("MES", 2024, 12)  # MESZ4: created 2024-11-05, a working limit order
    request = OrderRequest(mes.key, Side.BUY, 1, OrderType.LMT, limit_price=5000.25, client_order_id="c1")
    records.record_new(request, ts=T0, instrument=mes)
    clock = Clock()  # a restart: no market time yet
    om = OrderManager(PaperBroker(clock), records, RiskManager(RiskLimits(), clock), clock)
    loaded = om.order("c1")
    assert loaded is not None
    assert loaded.instrument.contract_month == mes.contract_month == "202412"
    # the machine's date (2026 and later) would have read "MESZ4" as December 2034: not kept for later
    assert catalog.resolve("MESZ4", date(2026, 12, 5)).contract_month == "203412"
    assert "MESZ4" not in om._instruments
    clock.advance(T0)  # the market's date is known: now a lookup is resolved at it, and kept
    assert om.instrument("MESZ4").contract_month == "202412"
    assert "MESZ4" in om._instruments

"""Qualifying catalog symbols with IB (the TWS simulator) through the real ib_async client."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from ib_sim_helpers import connected, run

from ibot.brokers.ib.contracts import AmbiguousContractError, ContractResolver, UnknownContractError
from ibot.brokers.ib.parsing import contract_for
from ibot.model import catalog
from ibot.model.errors import UnknownSymbolError
from ibot.model.instruments import Instrument, SecType
from ibot.sim.server import SimServer


def test_bare_symbol_qualifies_the_front_month_of_ibs_trading_day() -> None:
    async def body(server: SimServer) -> None:
        connection, _ = await connected(server)
        resolver = ContractResolver(connection)
        mes = await resolver.qualify("MES")
        expected = catalog.front_month("MES", date(2025, 3, 5))  # the simulator's market day
        assert mes.local_symbol == expected.local_symbol == "MESH5"
        assert mes.con_id == expected.con_id and mes.expiry == expected.expiry
        assert (mes.multiplier, mes.tick_size, mes.exchange) == (Decimal(5), Decimal("0.25"), "CME")
        assert resolver.contract(mes).conId == mes.con_id
        await connection.stop()

    run(body)


def test_local_symbol_explicit_day_and_stock_qualify() -> None:
    async def body(server: SimServer) -> None:
        connection, _ = await connected(server)
        resolver = ContractResolver(connection)
        june = await resolver.qualify("MESM5")
        assert june.contract_month == "202506" and june.local_symbol == "MESM5"
        after_roll = await resolver.qualify("MNQ", asof=date(2025, 3, 17))  # MNQ rolls on the Monday
        assert after_roll.local_symbol == "MNQM5"
        spy = await resolver.qualify("SPY")
        assert spy.sec_type is SecType.STK and spy.con_id == catalog.get_instrument("SPY").con_id
        assert spy.primary_exchange == "ARCA"
        await connection.stop()

    run(body)


def test_a_future_without_month_is_ambiguous_and_names_the_candidates() -> None:
    async def body(server: SimServer) -> None:
        connection, _ = await connected(server)
        resolver = ContractResolver(connection)
        with pytest.raises(AmbiguousContractError) as caught:
            await resolver.qualify_instrument(catalog.get_instrument("MES"))
        assert len(caught.value.candidates) > 1
        assert any(c.startswith("MESM5@CME") for c in caught.value.candidates)
        assert "MES" in str(caught.value) and "ambiguous" in str(caught.value)
        await connection.stop()

    run(body)


def test_unknown_contracts_raise_typed_errors() -> None:
    async def body(server: SimServer) -> None:
        connection, _ = await connected(server)
        resolver = ContractResolver(connection)
        with pytest.raises(UnknownContractError, match="NOPE"):
            await resolver.qualify_stock("NOPE")
        with pytest.raises(UnknownSymbolError, match="XYZ"):
            await resolver.qualify("XYZ")  # not in the catalog: refused before asking IB
        m2k = catalog.contract("M2K", 2020, 6)  # expired years before the market's date: IB has no such month
        with pytest.raises(UnknownContractError, match="M2KM0"):
            await resolver.qualify_instrument(m2k)
        with pytest.raises(UnknownContractError, match="not qualified"):
            resolver.contract(m2k)
        await connection.stop()

    run(body)


def test_contract_for_asks_for_exactly_the_catalog_month() -> None:
    fut = catalog.contract("MGC", 2025, 6)
    c = contract_for(fut)
    assert (c.secType, c.symbol, c.lastTradeDateOrContractMonth, c.exchange) == (
        "FUT",
        "MGC",
        "202506",
        "COMEX",
    )
    assert (c.multiplier, c.localSymbol, c.tradingClass) == ("10", "MGCM5", "MGC")
    stock = contract_for(catalog.get_instrument("AAPL"))
    assert (stock.secType, stock.exchange, stock.primaryExchange) == ("STK", "SMART", "NASDAQ")
    product = contract_for(catalog.get_instrument("MES"))
    assert product.lastTradeDateOrContractMonth == "" and product.conId == 0


def test_contract_for_refuses_continuous_futures() -> None:
    cont = Instrument("MES", SecType.CONTFUT, "CME", "USD", Decimal(5), Decimal("0.25"))
    with pytest.raises(ValueError, match="CONTFUT"):
        contract_for(cont)

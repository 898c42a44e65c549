# ruff: noqa: N803  (EWrapper callbacks keep IB's names)
"""Reference requests a client awaits an answer to (symbol search, market rules, depth exchanges, option
parameters, family codes, user info): answered from the catalog by ib_async and IB's own client alike."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ibapi.comm
import ibapi.decoder
import ibapi.wrapper
import pytest
from ib_async import Stock
from ibapi.contract import Contract
from ibapi_helpers import RecordingApp, connected, threaded_server
from sim_helpers import WAIT, connect, qualified_mes, run

from ibot.model import catalog
from ibot.model.instruments import Instrument, SecType
from ibot.sim import layouts as L  # noqa: N812
from ibot.sim.reference import MarketRuleError, MarketRules, depth_exchanges, matching_symbols
from ibot.sim.server import SimServer
from ibot.sim.wire import frame

MES = catalog.get_instrument("MES")
SPY = catalog.get_instrument("SPY")


# --- the catalog's reference data ---------------------------------------------------------------------------


def test_matching_is_a_case_insensitive_symbol_prefix() -> None:
    products = [catalog.get_instrument(s) for s in ("MES", "MNQ", "MGC", "SPY")]
    assert [s.symbol for s in matching_symbols(products, " me")] == ["MES"]
    assert [s.symbol for s in matching_symbols(products, "M")] == ["MES", "MNQ", "MGC"]
    assert matching_symbols(products, "ES") == []


def test_a_future_matches_as_its_product_with_fut_derivatives_and_a_stock_by_its_listing() -> None:
    [mes] = matching_symbols([MES], "MES")
    assert (mes.con_id, mes.sec_type, mes.primary_exchange) == (MES.con_id, "FUT", MES.exchange)
    assert mes.derivative_sec_types == ("FUT",) and mes.description == MES.description
    [spy] = matching_symbols([SPY], "spy")
    assert (spy.sec_type, spy.primary_exchange, spy.currency) == ("STK", SPY.primary_exchange, "USD")


def test_one_market_rule_per_distinct_tick_size() -> None:
    ticks = {Decimal("0.25"), Decimal("0.10"), Decimal("0.01")}
    products = [catalog.get_instrument(s) for s in ("MES", "MNQ", "M2K", "MCL", "SPY")]
    rules = MarketRules(products)
    assert len(rules.ids()) == len(ticks)
    assert rules.rule_id(catalog.get_instrument("MES")) == rules.rule_id(catalog.get_instrument("MNQ"))
    served = [rules.increments(n) or [] for n in rules.ids()]
    assert all(len(incs) == 1 and incs[0].low_edge == 0 for incs in served)
    assert {incs[0].increment for incs in served} == ticks
    assert rules.increments(max(rules.ids()) + 1) is None


def test_market_rule_ids_follow_valid_exchanges_and_an_unknown_tick_is_named() -> None:
    rules = MarketRules([SPY])
    assert rules.rule_ids(SPY, ["SMART", "ARCA"]) == f"{rules.rule_id(SPY)},{rules.rule_id(SPY)}"
    odd = Instrument("XYZ", SecType.FUT, "CME", "USD", Decimal(1), Decimal("0.3"))
    with pytest.raises(MarketRuleError, match=r"XYZ.*0\.3"):
        rules.rule_id(odd)


def test_depth_exchanges_are_the_venues_never_smart() -> None:
    products = [catalog.get_instrument(s) for s in ("MES", "MNQ", "MGC", "SPY", "AAPL")]
    venues = [(d.exchange, d.sec_type) for d in depth_exchanges(products)]
    assert venues == [("CME", "FUT"), ("COMEX", "FUT"), ("ARCA", "STK"), ("NASDAQ", "STK")]


# --- layouts against IB's decoder ---------------------------------------------------------------------------


class _Samples(ibapi.wrapper.EWrapper):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []

    def symbolSamples(self, reqId: int, contractDescriptions: Any) -> None:
        self.got = contractDescriptions


@pytest.mark.parametrize("sv", [175, 176, 178])
def test_symbol_samples_decode_by_ibapi_with_description_from_176(sv: int) -> None:
    contracts = [
        {
            "conId": s.con_id,
            "symbol": s.symbol,
            "secType": s.sec_type,
            "primaryExchange": s.primary_exchange,
            "currency": s.currency,
            "derivativeSecTypes": [{"secType": t} for t in s.derivative_sec_types],
            "description": s.description,
            "issuerId": "",
        }
        for s in matching_symbols([MES, SPY], "")
    ]
    _size, msg, _rest = ibapi.comm.read_msg(
        frame(L.SYMBOL_SAMPLES.values(sv, {"reqId": 4, "contracts": contracts}))
    )
    fields = iter(ibapi.comm.read_fields(msg)[1:])
    wrapper = _Samples()
    ibapi.decoder.Decoder(wrapper, sv).processSymbolSamplesMsg(fields)
    assert next(fields, None) is None, "ibapi left fields unread"
    assert [(c.contract.symbol, c.derivativeSecTypes) for c in wrapper.got] == [("MES", ["FUT"]), ("SPY", [])]
    assert wrapper.got[1].contract.conId == SPY.con_id
    assert [c.contract.description for c in wrapper.got] == (
        [MES.description, SPY.description] if sv >= 176 else ["", ""]
    )


# --- ib_async over loopback ---------------------------------------------------------------------------------


def test_ib_async_symbol_search_finds_mes() -> None:
    async def scenario(server: SimServer) -> None:
        ib = await connect(server)
        found = await ib.reqMatchingSymbolsAsync("ME")
        assert found is not None
        [mes] = found
        assert (mes.contract.symbol, mes.contract.secType, mes.contract.conId) == ("MES", "FUT", MES.con_id)
        assert mes.contract.primaryExchange == "CME" and mes.derivativeSecTypes == ["FUT"]
        assert mes.contract.description == MES.description
        assert await ib.reqMatchingSymbolsAsync("QQQ") == []  # in the catalog, not on this server
        ib.disconnect()

    run(scenario)


def test_ib_async_market_rule_of_contract_details_gives_the_tick() -> None:
    async def scenario(server: SimServer) -> None:
        ib = await connect(server)
        [details] = await ib.reqContractDetailsAsync(await qualified_mes(ib))
        [rule_id] = details.marketRuleIds.split(",")
        [inc] = await ib.reqMarketRuleAsync(int(rule_id)) or []
        assert (inc.lowEdge, inc.increment) == (0.0, float(MES.tick_size))

        [spy] = await ib.reqContractDetailsAsync(Stock("SPY", "SMART", "USD"))
        spy_rules = spy.marketRuleIds.split(",")
        assert len(spy_rules) == len(spy.validExchanges.split(",")) and len(set(spy_rules)) == 1
        [spy_inc] = await ib.reqMarketRuleAsync(int(spy_rules[0])) or []
        assert spy_inc.increment == float(SPY.tick_size)
        assert spy_rules[0] != rule_id
        ib.disconnect()

    run(scenario)


def test_ib_async_unknown_market_rule_is_answered_empty() -> None:
    async def scenario(server: SimServer) -> None:
        ib = await connect(server)
        assert await ib.reqMarketRuleAsync(max(MarketRules.of_catalog().ids()) + 1) == []
        ib.disconnect()

    run(scenario)


def test_ib_async_depth_exchanges_option_params_and_user_info_answer() -> None:
    async def scenario(server: SimServer) -> None:
        ib = await connect(server)
        venues = await asyncio.wait_for(ib.reqMktDepthExchangesAsync(), WAIT)
        assert ("CME", "FUT") in [(d.exchange, d.secType) for d in venues]
        assert ("ARCA", "STK", "ARCA") in [(d.exchange, d.secType, d.listingExch) for d in venues]
        assert "SMART" not in [d.exchange for d in venues]
        chains = ib.reqSecDefOptParamsAsync("MES", "CME", "FUT", MES.con_id)
        assert await asyncio.wait_for(chains, WAIT) == []
        await asyncio.wait_for(ib.reqUserInfoAsync(), WAIT)
        ib.disconnect()

    run(scenario)


# --- IB's official client (ibapi), in its own thread --------------------------------------------------------


@pytest.fixture
def app() -> Iterator[RecordingApp]:
    with threaded_server(["MES", "SPY"]) as srv:
        client = connected(srv)
        yield client
        client.disconnect()


def test_ibapi_symbol_samples_and_market_rule(app: RecordingApp) -> None:
    app.reqMatchingSymbols(7, "mes")
    _, req_id, [mes] = app.wait_for("symbolSamples")[0]
    assert req_id == 7 and (mes.contract.symbol, mes.contract.conId) == ("MES", MES.con_id)
    assert mes.contract.secType == "FUT" and mes.derivativeSecTypes == ["FUT"]

    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency, c.lastTradeDateOrContractMonth = (
        "MES",
        "FUT",
        "CME",
        "USD",
        "202506",
    )
    app.reqContractDetails(8, c)
    _, _, details = app.wait_for("contractDetails")[0]
    app.reqMarketRule(int(details.marketRuleIds))
    _, rule_id, [inc] = app.wait_for("marketRule")[0]
    assert rule_id == int(details.marketRuleIds)
    assert (inc.lowEdge, inc.increment) == (0.0, float(MES.tick_size))


def test_ibapi_family_codes_and_user_info(app: RecordingApp) -> None:
    app.reqFamilyCodes()
    _, [code] = app.wait_for("familyCodes")[0]
    assert (code.accountID, code.familyCodeStr) == ("DU123456", "")
    app.reqUserInfo(9)
    assert app.wait_for("userInfo")[0][1:] == (9, "")

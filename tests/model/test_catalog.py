"""The built-in catalog: contract fields, listed months, last trade dates against published dates, rolls."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ibot.model.catalog import (
    InvalidContractError,
    RollAnchor,
    RollRule,
    contract,
    contract_months,
    contracts_table,
    crude_oil_last_trade_date,
    default_roll_rule,
    first_notice_date,
    front_month,
    get_instrument,
    last_trade_date,
    local_symbol,
    next_roll_date,
    resolve,
    roll_date,
    symbols,
)
from ibot.model.errors import ParameterError, UnknownSymbolError
from ibot.model.instruments import SecType

# --- published last trade dates -------------------------------------------------------------------

# Micro E-mini S&P 500 (MES) last trade dates, CME Group product calendar. June 2026: the third Friday,
# June 19, is Juneteenth, so trading ends Thursday June 18 (as for ES/NQ/YM/RTY and their micros).
MES_PUBLISHED = {
    (2024, 3): date(2024, 3, 15),
    (2024, 6): date(2024, 6, 21),
    (2024, 9): date(2024, 9, 20),
    (2024, 12): date(2024, 12, 20),
    (2025, 3): date(2025, 3, 21),
    (2025, 6): date(2025, 6, 20),
    (2025, 9): date(2025, 9, 19),
    (2025, 12): date(2025, 12, 19),
    (2026, 3): date(2026, 3, 20),
    (2026, 6): date(2026, 6, 18),
    (2026, 9): date(2026, 9, 18),
    (2026, 12): date(2026, 12, 18),
}

# Micro WTI Crude Oil (MCL) last trade dates, one CME business day before the NYMEX CL last trade date (CME
# Group MCL / CL product calendars). Written out by hand from NYMEX's published rule and CME's holiday list,
# not by this code; CL dates in the comment. Holiday cases: MCLH4 (Presidents' Day 2024-02-19), MCLN4,
# MCLN5, MCLN6 (Juneteenth), MCLG5/MCLG6 (MLK Day), CLM6 (the 25th is Memorial Day).
MCL_PUBLISHED = {
    (2024, 1): date(2023, 12, 18),  # CL 2023-12-19
    (2024, 2): date(2024, 1, 19),  # CL 2024-01-22
    (2024, 3): date(2024, 2, 16),  # CL 2024-02-20
    (2024, 4): date(2024, 3, 19),  # CL 2024-03-20
    (2024, 5): date(2024, 4, 19),  # CL 2024-04-22
    (2024, 6): date(2024, 5, 20),  # CL 2024-05-21
    (2024, 7): date(2024, 6, 18),  # CL 2024-06-20
    (2024, 8): date(2024, 7, 19),  # CL 2024-07-22
    (2024, 9): date(2024, 8, 19),  # CL 2024-08-20
    (2024, 10): date(2024, 9, 19),  # CL 2024-09-20
    (2024, 11): date(2024, 10, 21),  # CL 2024-10-22
    (2024, 12): date(2024, 11, 19),  # CL 2024-11-20
    (2025, 1): date(2024, 12, 18),  # CL 2024-12-19
    (2025, 2): date(2025, 1, 17),  # CL 2025-01-21
    (2025, 3): date(2025, 2, 19),  # CL 2025-02-20
    (2025, 4): date(2025, 3, 19),  # CL 2025-03-20
    (2025, 5): date(2025, 4, 21),  # CL 2025-04-22
    (2025, 6): date(2025, 5, 19),  # CL 2025-05-20
    (2025, 7): date(2025, 6, 18),  # CL 2025-06-20
    (2025, 8): date(2025, 7, 21),  # CL 2025-07-22
    (2025, 9): date(2025, 8, 19),  # CL 2025-08-20
    (2025, 10): date(2025, 9, 19),  # CL 2025-09-22
    (2025, 11): date(2025, 10, 20),  # CL 2025-10-21
    (2025, 12): date(2025, 11, 19),  # CL 2025-11-20
    (2026, 1): date(2025, 12, 18),  # CL 2025-12-19
    (2026, 2): date(2026, 1, 16),  # CL 2026-01-20
    (2026, 3): date(2026, 2, 19),  # CL 2026-02-20
    (2026, 4): date(2026, 3, 19),  # CL 2026-03-20
    (2026, 5): date(2026, 4, 20),  # CL 2026-04-21
    (2026, 6): date(2026, 5, 18),  # CL 2026-05-19
    (2026, 7): date(2026, 6, 18),  # CL 2026-06-22
    (2026, 8): date(2026, 7, 20),  # CL 2026-07-21
    (2026, 9): date(2026, 8, 19),  # CL 2026-08-20
    (2026, 10): date(2026, 9, 21),  # CL 2026-09-22
    (2026, 11): date(2026, 10, 19),  # CL 2026-10-20
    (2026, 12): date(2026, 11, 19),  # CL 2026-11-20
}

# NYMEX CL last trade dates for the 2009 and 2010 contracts as published in an exchange-derived expiration
# table (bohlish.com CEXP, 2008), plus CLK0 (the contract that settled negative on 2020-04-20 and expired
# the next day). These exercise the CME holiday rules on dates independent of the table above.
CL_PUBLISHED = {
    (2009, 1): date(2008, 12, 19),
    (2009, 2): date(2009, 1, 20),
    (2009, 3): date(2009, 2, 20),
    (2009, 4): date(2009, 3, 20),
    (2009, 5): date(2009, 4, 21),
    (2009, 6): date(2009, 5, 19),
    (2009, 7): date(2009, 6, 22),
    (2009, 8): date(2009, 7, 21),
    (2009, 9): date(2009, 8, 20),
    (2009, 10): date(2009, 9, 22),
    (2009, 11): date(2009, 10, 20),
    (2009, 12): date(2009, 11, 20),
    (2010, 1): date(2009, 12, 21),
    (2010, 2): date(2010, 1, 20),
    (2010, 3): date(2010, 2, 22),
    (2010, 4): date(2010, 3, 22),
    (2010, 5): date(2010, 4, 20),
    (2010, 6): date(2010, 5, 20),
    (2010, 7): date(2010, 6, 22),
    (2010, 8): date(2010, 7, 20),
    (2010, 9): date(2010, 8, 20),
    (2010, 10): date(2010, 9, 21),
    (2010, 11): date(2010, 10, 20),
    (2010, 12): date(2010, 11, 19),
    (2020, 5): date(2020, 4, 21),
}


@pytest.mark.parametrize(("year", "month"), sorted(MES_PUBLISHED))
def test_mes_last_trade_dates_match_cme(year: int, month: int) -> None:
    assert last_trade_date("MES", year, month) == MES_PUBLISHED[(year, month)]


@pytest.mark.parametrize(("year", "month"), sorted(MCL_PUBLISHED))
def test_mcl_last_trade_dates_match_cme(year: int, month: int) -> None:
    assert last_trade_date("MCL", year, month) == MCL_PUBLISHED[(year, month)]


@pytest.mark.parametrize(("year", "month"), sorted(CL_PUBLISHED))
def test_crude_oil_last_trade_dates_match_published_history(year: int, month: int) -> None:
    assert crude_oil_last_trade_date(year, month) == CL_PUBLISHED[(year, month)]


def test_brief_cl_examples() -> None:
    assert crude_oil_last_trade_date(2024, 12) == date(2024, 11, 20)  # CLZ4
    assert crude_oil_last_trade_date(2025, 1) == date(2024, 12, 19)  # CLF5: the 25th is Christmas -> 4 days
    assert crude_oil_last_trade_date(2025, 2) == date(2025, 1, 21)  # CLG5
    assert crude_oil_last_trade_date(2024, 5) == date(2024, 4, 22)  # CLK4
    assert crude_oil_last_trade_date(2024, 7) == date(2024, 6, 20)  # CLN4


def test_mcl_october_2023_matches_ib() -> None:
    # IB reported MCLV3's lastTradeDateOrContractMonth as 20230919 (ib_insync issue #641).
    assert last_trade_date("MCL", 2023, 10) == date(2023, 9, 19)


def test_all_equity_index_micros_share_the_holiday_adjusted_third_friday() -> None:
    for symbol in ("MNQ", "MYM", "M2K"):
        assert last_trade_date(symbol, 2026, 6) == date(2026, 6, 18)
        assert last_trade_date(symbol, 2025, 12) == date(2025, 12, 19)
    # June 2027: Juneteenth (Saturday) is observed Friday June 18, the third Friday -> Thursday June 17.
    assert last_trade_date("MES", 2027, 6) == date(2027, 6, 17)


def test_mgc_ends_on_the_third_last_business_day() -> None:
    assert last_trade_date("MGC", 2024, 12) == date(2024, 12, 27)
    assert last_trade_date("MGC", 2026, 2) == date(2026, 2, 25)
    assert last_trade_date("MGC", 2026, 6) == date(2026, 6, 26)
    assert last_trade_date("MGC", 2025, 12) == date(2025, 12, 29)


def test_mgc_lists_only_even_months() -> None:
    months = contract_months("MGC", date(2026, 1, 5), 6)
    assert [c.local_symbol for c in months] == ["MGCG6", "MGCJ6", "MGCM6", "MGCQ6", "MGCV6", "MGCZ6"]
    with pytest.raises(
        InvalidContractError, match=r"MGC: month 3 \(H\) of 2026 is not listed; MGC lists G \(2\)"
    ):
        contract("MGC", 2026, 3)


def test_mbt_ends_on_the_last_friday_unless_a_us_or_uk_holiday() -> None:
    assert last_trade_date("MBT", 2026, 6) == date(2026, 6, 26)
    assert last_trade_date("MBT", 2026, 1) == date(2026, 1, 30)
    assert last_trade_date("MBT", 2024, 3) == date(2024, 3, 28)  # Good Friday, both countries
    assert last_trade_date("MBT", 2027, 3) == date(2027, 3, 25)  # Good Friday again
    assert last_trade_date("MBT", 2026, 12) == date(2026, 12, 24)  # Christmas Day
    # Dec 26 2025 is a US business day but Boxing Day in the UK; Dec 25 is a holiday in both -> Dec 24.
    assert last_trade_date("MBT", 2025, 12) == date(2025, 12, 24)


def test_mcl_and_mbt_list_every_month() -> None:
    mbt = contract_months("MBT", date(2026, 1, 5), 3)
    assert [c.contract_month for c in mbt] == ["202601", "202602", "202603"]
    # On 2026-01-05 the Jan and Feb 2026 MCL months have already expired (Dec 18 and Jan 16).
    mcl = contract_months("MCL", date(2026, 1, 5), 3)
    assert [c.local_symbol for c in mcl] == ["MCLG6", "MCLH6", "MCLJ6"]


# --- contract fields ------------------------------------------------------------------------------

PRODUCTS = {
    # symbol: (IB exchange, multiplier, tick size, tick value)
    "MES": ("CME", "5", "0.25", "1.25"),
    "MNQ": ("CME", "2", "0.25", "0.50"),
    "MGC": ("COMEX", "10", "0.10", "1.00"),
    "MCL": ("NYMEX", "100", "0.01", "1.00"),
    "MBT": ("CME", "0.1", "5", "0.50"),
    "MYM": ("CBOT", "0.5", "1", "0.50"),
    "M2K": ("CME", "5", "0.10", "0.50"),
}


@pytest.mark.parametrize("symbol", sorted(PRODUCTS))
def test_micro_futures_carry_ib_contract_fields(symbol: str) -> None:
    exchange, multiplier, tick, tick_value = PRODUCTS[symbol]
    inst = get_instrument(symbol)
    assert inst.sec_type is SecType.FUT
    assert inst.exchange == exchange
    assert inst.currency == "USD"
    assert inst.multiplier == Decimal(multiplier)
    assert inst.tick_size == Decimal(tick)
    assert inst.tick_value == Decimal(tick_value)
    assert inst.trading_class == symbol
    assert inst.initial_margin > 0
    assert inst.local_symbol == "" and inst.expiry is None


@pytest.mark.parametrize(
    ("symbol", "primary"),
    [("SPY", "ARCA"), ("QQQ", "NASDAQ"), ("AAPL", "NASDAQ"), ("MSFT", "NASDAQ"), ("IWM", "ARCA")],
)
def test_stocks_route_smart_with_primary_exchange(symbol: str, primary: str) -> None:
    inst = get_instrument(symbol)
    assert inst.sec_type is SecType.STK
    assert (inst.exchange, inst.primary_exchange, inst.currency) == ("SMART", primary, "USD")
    assert inst.tick_size == Decimal("0.01") and inst.multiplier == 1
    assert inst.con_id > 0


def test_symbols_by_type() -> None:
    assert symbols(SecType.FUT) == ["MES", "MNQ", "MGC", "MCL", "MBT", "MYM", "M2K"]
    assert set(symbols(SecType.STK)) == {"SPY", "QQQ", "AAPL", "MSFT", "IWM"}
    assert symbols() == symbols(SecType.FUT) + symbols(SecType.STK)
    assert symbols(SecType.CONTFUT) == []


def test_get_instrument_is_case_insensitive() -> None:
    assert get_instrument("mes") is get_instrument("MES")
    assert get_instrument(" aapl ").symbol == "AAPL"


def test_unknown_symbol_lists_the_known_ones() -> None:
    with pytest.raises(UnknownSymbolError, match=r"unknown symbol 'ES'; known symbols: .*MES.*SPY"):
        get_instrument("ES")


def test_local_symbols_use_one_year_digit() -> None:
    assert local_symbol("MES", 2026, 12) == "MESZ6"
    assert local_symbol("mcl", 2027, 1) == "MCLF7"
    assert local_symbol("M2K", 2027, 3) == "M2KH7"


def test_contract_month_fields() -> None:
    c = contract("MES", 2026, 6)
    assert c.local_symbol == "MESM6"
    assert c.contract_month == "202606"
    assert c.expiry == date(2026, 6, 18)
    assert c.symbol == "MES" and c.exchange == "CME" and c.multiplier == 5
    assert c.key == "MESM6"


def test_con_ids_are_stable_and_distinct() -> None:
    ids: dict[int, str] = {get_instrument(s).con_id: s for s in symbols()}
    assert len(ids) == len(symbols())
    for sym in symbols(SecType.FUT):
        for fut in contract_months(sym, date(2024, 1, 2), 40):
            assert fut.con_id not in ids, (fut.local_symbol, ids.get(fut.con_id))
            ids[fut.con_id] = fut.local_symbol
    # The same month always gets the same id (the simulator serves it on every run).
    assert contract("MCL", 2026, 8).con_id == contract("mcl", 2026, 8).con_id == 740202608


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("year", [1999, 2100, 26, True])
def test_bad_year_is_a_clear_error(year: int) -> None:
    with pytest.raises(InvalidContractError, match=r"MES: contract year must be an integer 2000\.\.2099"):
        last_trade_date("MES", year, 3)


@pytest.mark.parametrize("month", [0, 13, True])
def test_bad_month_is_a_clear_error(month: int) -> None:
    with pytest.raises(InvalidContractError, match=r"contract month must be an integer 1\.\.12"):
        contract("MCL", 2026, month)


def test_a_stock_has_no_futures_months() -> None:
    with pytest.raises(InvalidContractError, match="SPY is a stock"):
        contract_months("SPY", date(2026, 1, 5), 2)


def test_unknown_symbol_in_month_functions() -> None:
    with pytest.raises(UnknownSymbolError, match="'XYZ'"):
        last_trade_date("XYZ", 2026, 3)


def test_negative_month_count_is_rejected() -> None:
    with pytest.raises(ParameterError, match="MES: number of contract months must be 0 or more"):
        contract_months("MES", date(2026, 1, 5), -1)


def test_negative_roll_offset_is_rejected() -> None:
    with pytest.raises(ParameterError, match="business_days_before_expiry must be 0 or more"):
        RollRule(-1)


# --- live months, rolls and the front month -------------------------------------------------------


def test_a_month_is_live_through_its_last_trade_date() -> None:
    assert [c.local_symbol for c in contract_months("MES", date(2026, 6, 18), 2)] == ["MESM6", "MESU6"]
    assert [c.local_symbol for c in contract_months("MES", date(2026, 6, 19), 2)] == ["MESU6", "MESZ6"]
    assert contract_months("MES", date(2026, 6, 19), 0) == []


def test_equity_roll_is_the_monday_of_expiry_week() -> None:
    assert roll_date(contract("MES", 2026, 3)) == date(2026, 3, 16)
    assert roll_date(contract("MES", 2026, 12)) == date(2026, 12, 14)
    # Expiry moved to Thursday June 18 by Juneteenth: the roll stays on Monday June 15.
    assert roll_date(contract("MES", 2026, 6)) == date(2026, 6, 15)


def test_front_month_switches_on_the_roll_date() -> None:
    assert front_month("MES", date(2026, 6, 12)).local_symbol == "MESM6"
    assert front_month("MES", date(2026, 6, 15)).local_symbol == "MESU6"
    assert next_roll_date("MES", date(2026, 6, 12)) == date(2026, 6, 15)
    assert next_roll_date("MES", date(2026, 6, 15)) == date(2026, 9, 14)


def test_mcl_rolls_five_business_days_before_last_trade_unless_overridden() -> None:
    july = contract("MCL", 2026, 7)  # last trade 2026-06-18
    assert roll_date(july) == date(2026, 6, 11)
    assert front_month("MCL", date(2026, 6, 10)).local_symbol == "MCLN6"
    assert front_month("MCL", date(2026, 6, 11)).local_symbol == "MCLQ6"
    late = RollRule(1)
    assert roll_date(july, late) == date(2026, 6, 17)
    assert front_month("MCL", date(2026, 6, 11), late).local_symbol == "MCLN6"


def test_mgc_rolls_before_first_notice_day() -> None:
    assert first_notice_date("MGC", 2026, 6) == date(2026, 5, 29)
    assert default_roll_rule("MGC") == RollRule(3, RollAnchor.FIRST_NOTICE)
    assert roll_date(contract("MGC", 2026, 6)) == date(2026, 5, 26)  # 3 business days back over Memorial Day
    assert front_month("MGC", date(2026, 5, 22)).local_symbol == "MGCM6"
    assert front_month("MGC", date(2026, 5, 26)).local_symbol == "MGCQ6"


def test_cash_settled_products_have_no_first_notice() -> None:
    assert first_notice_date("MCL", 2026, 7) is None
    with pytest.raises(ParameterError, match="MES is cash-settled and has no first notice day"):
        roll_date(contract("MES", 2026, 6), RollRule(2, RollAnchor.FIRST_NOTICE))


def test_roll_date_of_a_non_future_is_an_error() -> None:
    with pytest.raises(InvalidContractError, match="SPY is a stock"):
        roll_date(get_instrument("SPY"))
    with pytest.raises(InvalidContractError, match="MES: not a futures month"):
        roll_date(get_instrument("MES"))


def test_contracts_table_rows() -> None:
    rows = contracts_table(date(2026, 6, 12), 3, ["mes", "MCL"])
    assert [r["local_symbol"] for r in rows] == ["MESM6", "MESU6", "MESZ6", "MCLN6", "MCLQ6", "MCLU6"]
    first = rows[0]
    assert first == {
        "symbol": "MES",
        "local_symbol": "MESM6",
        "contract_month": "202606",
        "last_trade_date": "2026-06-18",
        "roll_date": "2026-06-15",
        "days_to_expiry": 6,
        "is_front": True,
        "con_id": contract("MES", 2026, 6).con_id,
        "exchange": "CME",
    }
    # MCLN6 is still live but past its roll date: the front month is MCLQ6.
    assert [r["local_symbol"] for r in rows if r["is_front"]] == ["MESM6", "MCLQ6"]


def test_contracts_table_defaults_to_every_future_and_accepts_roll_overrides() -> None:
    rows = contracts_table(date(2026, 6, 12), 2)
    assert {r["symbol"] for r in rows} == set(symbols(SecType.FUT))
    assert sum(r["is_front"] for r in rows) == len(symbols(SecType.FUT))
    late = contracts_table(date(2026, 6, 12), 1, ["MCL"], roll_rules={"mcl": RollRule(1)})
    assert late[0]["roll_date"] == "2026-06-17" and late[0]["is_front"] is True


# --- resolve --------------------------------------------------------------------------------------


def test_resolve_product_gives_the_front_month() -> None:
    assert resolve("MES", date(2026, 6, 12)).local_symbol == "MESM6"
    assert resolve("mes", date(2026, 6, 15)).local_symbol == "MESU6"


def test_resolve_local_symbol_picks_the_decade_from_asof() -> None:
    assert resolve("MESZ6", date(2026, 1, 5)).contract_month == "202612"
    assert resolve("mesh7", date(2026, 1, 5)).contract_month == "202703"
    assert resolve("MCLF7", date(2026, 12, 1)).expiry == date(2026, 12, 18)
    assert resolve("M2KU6", date(2026, 1, 5)).local_symbol == "M2KU6"
    # The last trade day itself still resolves to the expiring month; after it the code means the next decade.
    assert resolve("MESH6", date(2026, 3, 20)).contract_month == "202603"
    assert resolve("MESH6", date(2026, 3, 23)).contract_month == "203603"


def test_resolve_two_digit_year_is_explicit() -> None:
    assert resolve("MESZ26", date(2030, 1, 2)).contract_month == "202612"


def test_resolve_stock() -> None:
    assert resolve("spy", date(2026, 1, 5)) is get_instrument("SPY")


def test_resolve_bad_input() -> None:
    with pytest.raises(UnknownSymbolError, match=r"unknown symbol 'ESZ6'; known symbols:"):
        resolve("ESZ6", date(2026, 1, 5))
    with pytest.raises(UnknownSymbolError):
        resolve("MESX", date(2026, 1, 5))
    with pytest.raises(InvalidContractError, match=r"MGC: month 3 \(H\)"):
        resolve("MGCH6", date(2026, 1, 5))
    with pytest.raises(InvalidContractError, match=r"MES: month 1 \(F\)"):
        resolve("MESF7", date(2026, 1, 5))

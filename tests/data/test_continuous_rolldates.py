"""Roll days against CME's published last trade dates for 2024-2026 (MES quarterly, MGC's six months).

The published dates below follow CME's "Termination of Trading" rules and CME's holiday calendar:
- MES: trading terminates at 9:30 ET on the third Friday of the contract month; when that Friday is an
  exchange holiday, on the business day before (MESM6: Friday 2026-06-19 is Juneteenth -> Thursday 06-18).
- MGC: trading terminates on the third-last business day of the contract month.
Each date was checked by hand against the rule and the CME holiday list written here (New Year, MLK,
Presidents, Good Friday, Memorial, Juneteenth, Independence (observed 2026-07-03), Labor, Thanksgiving,
Christmas). The roll days are then the roll rule applied by a plain loop over that list, independently of
ibot.model.calendar, and must equal what the series uses.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ibot.data.bars import BarFrame
from ibot.data.rolls import ContractBars, roll_day
from ibot.model import catalog
from ibot.model.instruments import Instrument

CME_HOLIDAYS = {
    date(2023, 12, 25),
    *(date(2024, m, d) for m, d in ((1, 1), (1, 15), (2, 19), (3, 29), (5, 27), (6, 19), (7, 4), (9, 2))),
    date(2024, 11, 28), date(2024, 12, 25),
    *(date(2025, m, d) for m, d in ((1, 1), (1, 20), (2, 17), (4, 18), (5, 26), (6, 19), (7, 4), (9, 1))),
    date(2025, 11, 27), date(2025, 12, 25),
    *(date(2026, m, d) for m, d in ((1, 1), (1, 19), (2, 16), (4, 3), (5, 25), (6, 19), (7, 3), (9, 7))),
    date(2026, 11, 26), date(2026, 12, 25),
}  # fmt: skip

MES_LAST_TRADE = {
    "MESH4": date(2024, 3, 15), "MESM4": date(2024, 6, 21), "MESU4": date(2024, 9, 20),
    "MESZ4": date(2024, 12, 20), "MESH5": date(2025, 3, 21), "MESM5": date(2025, 6, 20),
    "MESU5": date(2025, 9, 19), "MESZ5": date(2025, 12, 19), "MESH6": date(2026, 3, 20),
    "MESM6": date(2026, 6, 18), "MESU6": date(2026, 9, 18), "MESZ6": date(2026, 12, 18),
}  # fmt: skip

MGC_LAST_TRADE = {
    "MGCG4": date(2024, 2, 27), "MGCJ4": date(2024, 4, 26), "MGCM4": date(2024, 6, 26),
    "MGCQ4": date(2024, 8, 28), "MGCV4": date(2024, 10, 29), "MGCZ4": date(2024, 12, 27),
    "MGCG5": date(2025, 2, 26), "MGCJ5": date(2025, 4, 28), "MGCM5": date(2025, 6, 26),
    "MGCQ5": date(2025, 8, 27), "MGCV5": date(2025, 10, 29), "MGCZ5": date(2025, 12, 29),
    "MGCG6": date(2026, 2, 25), "MGCJ6": date(2026, 4, 28), "MGCM6": date(2026, 6, 26),
    "MGCQ6": date(2026, 8, 27), "MGCV6": date(2026, 10, 28), "MGCZ6": date(2026, 12, 29),
}  # fmt: skip

# The equity roll (Monday of expiry week: 4 business days before the third Friday) as the rule gives it,
# written out: a Juneteenth inside the count moves it to the Friday before (2024, 2025).
MES_ROLL = {
    "MESH4": date(2024, 3, 11), "MESM4": date(2024, 6, 14), "MESU4": date(2024, 9, 16),
    "MESZ4": date(2024, 12, 16), "MESH5": date(2025, 3, 17), "MESM5": date(2025, 6, 13),
    "MESU5": date(2025, 9, 15), "MESZ5": date(2025, 12, 15), "MESH6": date(2026, 3, 16),
    "MESM6": date(2026, 6, 15), "MESU6": date(2026, 9, 14), "MESZ6": date(2026, 12, 14),
}  # fmt: skip


def _business(d: date) -> bool:
    return d.weekday() < 5 and d not in CME_HOLIDAYS


def _back(d: date, n: int) -> date:
    """n business days before d (plain loop)."""
    while n:
        d -= timedelta(days=1)
        if _business(d):
            n -= 1
    return d


def _on_or_before(d: date) -> date:
    while not _business(d):
        d -= timedelta(days=1)
    return d


def _third_friday(year: int, month: int) -> date:
    d = date(year, month, 15)
    while d.weekday() != 4:
        d += timedelta(days=1)
    return d


def _contract(key: str) -> Instrument:
    symbol, code, digit = key[:-2], key[-2], int(key[-1])
    return catalog.contract(symbol, 2020 + digit, catalog.MONTH_CODES.index(code) + 1)


@pytest.mark.parametrize("key", sorted(MES_LAST_TRADE))
def test_mes_last_trade_and_roll_day_follow_the_published_dates(key: str) -> None:
    fut = _contract(key)
    published = MES_LAST_TRADE[key]
    assert _on_or_before(_third_friday(published.year, published.month)) == published  # the table's rule
    assert fut.expiry == published
    year, month = int(fut.contract_month[:4]), int(fut.contract_month[4:])
    expected = _on_or_before(min(_back(_third_friday(year, month), 4), published))
    assert expected == MES_ROLL[key]
    assert roll_day(ContractBars(fut, published, "sidecar", BarFrame.empty())) == expected
    assert catalog.roll_date(fut) == expected


@pytest.mark.parametrize("key", sorted(MGC_LAST_TRADE))
def test_mgc_last_trade_and_roll_day_follow_the_published_dates(key: str) -> None:
    fut = _contract(key)
    published = MGC_LAST_TRADE[key]
    year, month = int(fut.contract_month[:4]), int(fut.contract_month[4:])
    month_end = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    assert _back(_on_or_before(month_end), 2) == published  # third-last business day
    assert fut.expiry == published
    # MGC rolls 3 business days before first notice (the last business day of the month before)
    first_notice = _on_or_before(date(year, month, 1) - timedelta(days=1))
    expected = _back(first_notice, 3)
    assert roll_day(ContractBars(fut, published, "sidecar", BarFrame.empty())) == expected
    assert catalog.roll_date(fut) == expected


def test_mesm6_ends_on_thursday_because_of_juneteenth() -> None:
    assert MES_LAST_TRADE["MESM6"].weekday() == 3
    assert catalog.last_trade_date("MES", 2026, 6) == date(2026, 6, 18)

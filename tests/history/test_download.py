"""`ibot history download` end to end: the real service, ib_async with the historical client id, the TWS
simulator with IB's pacing rules (scaled down). Per-contract series with their contract facts, expired months
included; checkpoints; a second run sends no request; the still-open bar is never stored; pacing violations
are classified, backed off and retried."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date, datetime

import numpy as np

from ibot.app.history import HistoryJob, HistoryResult, HistoryRun, download_history
from ibot.data.bars import format_time
from ibot.exchange.hours import listed_hours_for
from ibot.history.checkpoint import Checkpoint
from ibot.history.download import DownloadProgress
from ibot.model import catalog
from ibot.model.market import NS_PER_SECOND

from .conftest import FROM, SCALE, START, TO, Sim

MINUTE = 60 * NS_PER_SECOND


def _sessions(key: str, first: date, last: date) -> list[tuple[date, int, int]]:
    inst = catalog.resolve(key, date(2024, 12, 1))
    return list(listed_hours_for(inst).sessions(first, last))


def _last_trade_ns(key: str) -> int:
    """When a month stops trading: its last trade date at the product's last trade time."""
    inst = catalog.resolve(key, date(2024, 12, 1))
    assert inst.expiry is not None
    at = datetime.combine(inst.expiry, catalog.last_trade_time(inst), listed_hours_for(inst).listing_tz)
    return int(at.timestamp()) * NS_PER_SECOND


def test_a_download_stores_each_month_with_its_facts_and_a_second_run_sends_nothing(sim: Sim) -> None:
    result = sim.download()
    d = result.to_dict()
    assert d["complete"] and d["client_id"] == 21 and d["violations_seen"] == 0
    assert set(d["bars_stored"]) == {"MESZ4", "MESH5"}
    assert d["requests_sent"] == d["fewest_needed"] == sim.requests == 10 + 14
    store = sim.store()
    for key, last in (("MESZ4", date(2024, 12, 20)), ("MESH5", TO)):
        frame = store.read(key, "1min")
        sessions = _sessions(key, FROM, last)
        opened, closed = sessions[0][1], min(sessions[-1][2], _last_trade_ns(key))
        assert frame.ts[0] == opened and frame.ts[-1] == closed - MINUTE, key  # the whole window, no more
        in_session = np.zeros(len(frame), dtype=bool)
        for _, a, b in sessions:
            in_session |= (frame.ts >= a) & (frame.ts < b)
        assert in_session.all(), f"{key}: bars outside the window's sessions"
        assert len(frame) == d["bars_stored"][key]
        facts = json.loads((sim.data / "bars" / key / "contract.json").read_text())
        assert facts["localSymbol"] == key and facts["exchange"] == "CME" and facts["multiplier"] == "5"
        assert facts["conId"] == catalog.resolve(key, date(2024, 12, 1)).con_id
    assert (
        json.loads((sim.data / "bars" / "MESZ4" / "contract.json").read_text())["lastTradeDate"]
        == "2024-12-20"
    )
    with Checkpoint.in_data_dir(sim.data) as cp:
        assert len(cp.done("MESZ4/1min")) == 10 and len(cp.done("MESH5/1min")) == 14
        # full and early-close sessions, and the last trading day, which ends at 08:30 CT
        assert {r.bars for r in cp.done("MESZ4/1min")} <= {1380, 1320, 930}

    again = sim.download().to_dict()
    assert again["requests_sent"] == 0 and again["fewest_needed"] == 0 and again["complete"]
    assert sim.requests == 24  # the simulator saw no new historical request


def test_the_bar_still_forming_is_never_stored_and_its_range_stays_open(sim: Sim) -> None:
    today = date(2025, 3, 5)
    result = sim.download(start=today, end=today).to_dict()
    job = result["jobs"][0]
    assert set(result["bars_stored"]) == {"MESH5", "MESM5"}  # M5's window opens 2025-03-03
    assert job["chunks_open"] == 2 and job["chunks_done"] == 0 and result["complete"]
    start_ns = int(START.timestamp()) * NS_PER_SECOND
    for key in ("MESH5", "MESM5"):
        frame = sim.store().read(key, "1min")
        last_end = int(frame.ts[-1]) + MINUTE
        assert last_end <= start_ns + 30 * NS_PER_SECOND, format_time(int(frame.ts[-1]))
        assert last_end >= start_ns - 2 * MINUTE
    with Checkpoint.in_data_dir(sim.data) as cp:
        assert cp.done("MESH5/1min") == []  # asked again next time, never marked done
    assert sim.download(start=today, end=today).to_dict()["requests_sent"] == 2


def test_pacing_violations_are_classified_backed_off_and_retried_until_complete(strict_sim: Sim) -> None:
    """A client pacing itself 100x faster than the simulator's two-second rule allows meets 162 pacing
    violations: each is classified as pacing, counted, backed off and retried, and the download still
    completes with every bar."""
    sim = strict_sim
    first, last = date(2025, 1, 6), date(2025, 1, 17)
    result = sim.download(scale=SCALE, start=first, end=last, max_retries=15)
    d = result.to_dict()
    assert d["violations_seen"] > 0 and d["retries"].get("pacing", 0) == d["violations_seen"]
    assert d["complete"] and d["requests_sent"] == d["fewest_needed"] + d["violations_seen"]
    assert sim.requests == d["requests_sent"]
    hours = listed_hours_for(catalog.get_instrument("MES"))
    expected = sum((b - a) // MINUTE for _, a, b in hours.sessions(first, last))
    assert len(sim.store().read("MESH5", "1min")) == expected


def test_full_asks_ib_where_each_months_data_begins(sim: Sim) -> None:
    d = sim.download(start=date(2024, 12, 2), end=date(2024, 12, 5), full=True).to_dict()
    assert d["complete"]
    assert set(d["bars_stored"]) == {"MESZ4", "MESH5", "MESM5", "MESU5", "MESZ5"}  # every month alive
    z5 = sim.store().read("MESZ5", "1min")
    opened, _ = listed_hours_for(catalog.get_instrument("MES")).session_open_close(date(2024, 12, 4))
    assert int(z5.ts[0]) == opened  # the simulator's first data for MESZ5; the catalog guessed 2024-11-14
    assert d["bars_stored"]["MESZ5"] == 2 * 1380 and d["bars_stored"]["MESH5"] == 4 * 1380


def test_a_month_ib_no_longer_knows_is_reported_and_the_others_are_downloaded(sim: Sim) -> None:
    """The simulator, like IB, keeps expired months for a limited time (about two and a half years before
    its 2025-03-05 start): MESM2 (expired 2022-06-17) is unknown, MESU2 is still served."""
    d = sim.download(start=date(2022, 6, 6), end=date(2022, 6, 7)).to_dict()
    job = d["jobs"][0]
    assert job["failures"] == {"invalid": 1} and not d["complete"]
    assert any(p.startswith("MESM2: IB knows no contract") for p in job["problems"])
    assert d["bars_stored"] == {"MESU2": 2 * 1380}


def test_a_stock_and_another_tick_type_are_stored_under_their_own_keys(sim: Sim) -> None:
    d = sim.download(symbol="SPY", start=date(2025, 1, 6), end=date(2025, 1, 7)).to_dict()
    assert d["complete"] and set(d["bars_stored"]) == {"SPY"}
    spy = sim.store().read("SPY", "1min")
    assert len(spy) == 2 * 16 * 60  # useRTH=0: IB's extended hours 04:00-20:00 ET
    assert json.loads((sim.data / "bars" / "SPY" / "contract.json").read_text())["lastTradeDate"] is None
    mid = sim.download(start=date(2024, 12, 19), end=date(2024, 12, 19), what="MIDPOINT").to_dict()
    assert mid["complete"] and set(mid["bars_stored"]) == {"MESZ4", "MESH5"}
    frame = sim.store().read("MESH5.MIDPOINT", "1min")
    assert len(frame) == 1380 and (frame.close * 8 % 2 == 1).all()  # half a tick above the bid: x.125 / x.375
    with Checkpoint.in_data_dir(sim.data) as cp:
        assert len(cp.done("MESH5.MIDPOINT/1min")) == 1 and cp.done("MESH5/1min") == []


def test_a_stop_while_waiting_for_pacing_sends_nothing_more(sim: Sim) -> None:
    """At IB's own limits (scale 1) five requests for one contract go at once and the sixth waits ~2 s; a stop
    asked for during that wait ends the run without sending it (nor the others waiting), with the five sent
    ones answered and stored."""

    async def main() -> HistoryResult:
        stop = asyncio.Event()

        def progress(p: DownloadProgress) -> None:
            if p.pacing_wait > 0:
                stop.set()

        job = HistoryJob("MES", "1 min", date(2025, 1, 6), date(2025, 1, 17))  # MESH5 only: 10 sessions
        run = HistoryRun(sim.data, pacing_scale=1.0, connect_timeout=10.0, max_in_flight=10)
        return await download_history(
            [job], run, on_progress=progress, stop=stop, ib_overrides={"port": sim.port}
        )

    began = time.monotonic()
    d = asyncio.run(main()).to_dict()
    assert d["stopped"] and not d["complete"]
    assert d["requests_sent"] == sim.requests == 5 and d["jobs"][0]["chunks_done"] == 5
    hours = listed_hours_for(catalog.get_instrument("MES"))
    five = sum((b - a) // MINUTE for _, a, b in hours.sessions(date(2025, 1, 6), date(2025, 1, 10)))
    assert (
        len(sim.store().read("MESH5", "1min")) == five
    )  # 2025-01-09 closed early (a national day of mourning)
    assert time.monotonic() - began < 10.0


def test_a_dropped_connection_is_waited_out_and_the_download_completes(sim: Sim) -> None:
    """The simulator drops the historical client mid-download (as IB's nightly restart does): the requests in
    flight fail as "disconnected", wait for the adapter's reconnect, and are sent again; nothing is lost."""
    loop = sim.server._pump_task.get_loop()  # type: ignore[union-attr]  # the simulator's thread's loop
    dropped: list[int] = []

    async def main() -> HistoryResult:
        def progress(p: DownloadProgress) -> None:
            if p.requests_done >= 3 and not dropped:
                dropped.append(p.requests_done)
                loop.call_soon_threadsafe(sim.server.faults.drop, 21)

        job = HistoryJob("MES", "1 min", FROM, TO)
        run = HistoryRun(sim.data, pacing_scale=100.0, connect_timeout=10.0, max_retries=3)
        return await download_history([job], run, on_progress=progress, ib_overrides={"port": sim.port})

    d = asyncio.run(main()).to_dict()
    assert dropped and d["complete"] and d["retries"].get("disconnected", 0) >= 1
    hours = listed_hours_for(catalog.get_instrument("MES"))
    for key, last in (("MESZ4", date(2024, 12, 20)), ("MESH5", TO)):
        ends = _last_trade_ns(key)
        expected = sum((min(b, ends) - a) // MINUTE for _, a, b in hours.sessions(FROM, last))
        assert len(sim.store().read(key, "1min")) == expected == d["bars_stored"][key]

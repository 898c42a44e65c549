"""The one order intake (ibot.oms.intake): validation of every field, tick snapping, idempotency keys in the
records DB (windows, restarts, concurrent claims on SQLite and PostgreSQL), target positions, and end to end
through a real TradingSession, the unmodified ib_async client and the simulator, checked at the simulator."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from oms_helpers import SECOND

from ibot.brokers.ib.config import IBSettings
from ibot.engine.session import TradingSession
from ibot.model.market import NS_PER_SECOND, datetime_to_ns
from ibot.model.orders import OrderRequest, OrderStatus, OrderType, Side
from ibot.oms.intake import (
    IntakeRejected,
    IntakeVerdict,
    OrderIntake,
    OrderTicket,
    ValidTicket,
    derive_client_order_id,
)
from ibot.oms.records import OrderRecords
from ibot.oms.risk import RiskLimits
from ibot.sim.orders import SimOrder
from ibot.sim.server import SimServer

# A Wednesday at 09:00 Chicago: CME Globex is open; MES's front month by ibot's roll rule is March 2025.
START = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
T = datetime_to_ns(START)
WAIT = 5.0
MINUTE = 60 * SECOND


def ticket(**fields: Any) -> OrderTicket:
    values: dict[str, Any] = {"source": "cli", "symbol": "MES", "side": "BUY", "quantity": 1}
    values["idempotency_key"] = "k1"
    values.update(fields)
    return OrderTicket(**values)


@pytest.fixture
def intake(sqlite_records: OrderRecords) -> OrderIntake:
    """An intake on a session that was never started (validation needs no broker), market time T."""
    settings = IBSettings.model_validate({"port": 1, "connect_timeout": 1.0})
    session = TradingSession(settings, sqlite_records, RiskLimits(), symbols=("MES",), market_clock=lambda: T)
    return OrderIntake(session)


# --- validation: every field, good and bad --------------------------------------------------------------

GOOD: list[tuple[dict[str, Any], str, object]] = [
    ({"symbol": "MES"}, "instrument.key", "MESH5"),  # the roll calendar's month at the market's date
    ({"symbol": " mes "}, "instrument.key", "MESH5"),
    ({"symbol": "MESZ5"}, "instrument.key", "MESZ5"),
    ({"symbol": "MESZ26"}, "instrument.key", "MESZ6"),
    ({"symbol": "AAPL"}, "instrument.key", "AAPL"),
    ({"side": "buy"}, "side", Side.BUY),
    ({"side": "Sell"}, "side", Side.SELL),
    ({"quantity": 3}, "quantity", 3),
    ({"quantity": "2"}, "quantity", 2),
    ({"quantity": " 4 "}, "quantity", 4),
    ({"quantity": 2.0}, "quantity", 2),
    ({"quantity": "2.0"}, "quantity", 2),
    ({"quantity": Decimal(5)}, "quantity", 5),
    ({"order_type": "mkt"}, "order_type", OrderType.MKT),
    ({"order_type": "lmt", "price": 5000}, "order_type", OrderType.LMT),
    ({"order_type": "STP", "stop_price": "5000"}, "order_type", OrderType.STP),
    ({"order_type": "stp lmt", "price": 5000, "stop_price": 4999}, "order_type", OrderType.STP_LMT),
    ({"order_type": "MKT", "price": 5001.3}, "limit_price", None),  # a market order's price is ignored
    ({"order_type": "MKT", "price": ""}, "limit_price", None),
    ({"quantity": None, "target_position": 0}, "target_position", 0),
    ({"quantity": None, "target_position": "-2"}, "target_position", -2),
    ({"quantity": None, "target_position": 1.0}, "target_position", 1),
    ({"reason": "  cross up "}, "reason", "cross up"),
    ({"client_order_id": "mine-1"}, "client_order_id", "mine-1"),
    ({}, "client_order_id", derive_client_order_id("cli", "k1")),
    ({"source": "webhook"}, "source", "webhook"),
]


@pytest.mark.parametrize(("fields", "attr", "expected"), GOOD)
def test_a_good_field_is_typed_and_resolved(
    intake: OrderIntake, fields: dict[str, Any], attr: str, expected: object
) -> None:
    valid = intake.validate(ticket(**fields))
    value: Any = valid
    for part in attr.split("."):
        value = getattr(value, part)
    assert value == expected


BAD: list[tuple[dict[str, Any], str]] = [
    ({"source": ""}, "source"),
    ({"source": 7}, "source"),
    ({"idempotency_key": ""}, "idempotency_key"),
    ({"idempotency_key": "   "}, "idempotency_key"),
    ({"idempotency_key": "x" * 256}, "idempotency_key"),
    ({"client_order_id": "c" * 65}, "client_order_id"),
    ({"symbol": ""}, "symbol"),
    ({"symbol": "XYZ"}, "symbol"),
    ({"symbol": "MESF5"}, "symbol"),  # January is not a listed MES month
    ({"symbol": 5}, "symbol"),
    ({"symbol": None}, "symbol"),
    ({"side": ""}, "side"),
    ({"side": "hold"}, "side"),
    ({"side": "long"}, "side"),
    ({"side": 1}, "side"),
    ({"quantity": None}, "quantity"),
    ({"quantity": ""}, "quantity"),
    ({"quantity": 1.5}, "quantity"),
    ({"quantity": "1.5"}, "quantity"),
    ({"quantity": 0}, "quantity"),
    ({"quantity": "0"}, "quantity"),
    ({"quantity": -1}, "quantity"),
    ({"quantity": "-1"}, "quantity"),
    ({"quantity": True}, "quantity"),
    ({"quantity": False}, "quantity"),
    ({"quantity": "abc"}, "quantity"),
    ({"quantity": "1e3"}, "quantity"),
    ({"quantity": math.nan}, "quantity"),
    ({"quantity": "NaN"}, "quantity"),
    ({"quantity": math.inf}, "quantity"),
    ({"quantity": "Infinity"}, "quantity"),
    ({"quantity": [1]}, "quantity"),
    ({"quantity": 2_000_000}, "quantity"),
    ({"target_position": 1}, "target_position"),  # and a quantity: both refused
    ({"quantity": None, "target_position": 0.5}, "target_position"),
    ({"quantity": None, "target_position": True}, "target_position"),
    ({"quantity": None, "target_position": "flat"}, "target_position"),
    ({"order_type": ""}, "order_type"),
    ({"order_type": "MARKET"}, "order_type"),
    ({"order_type": "TRAIL"}, "order_type"),
    ({"order_type": 1}, "order_type"),
    ({"order_type": "LMT"}, "price"),  # LMT without a price
    ({"order_type": "LMT", "price": ""}, "price"),
    ({"order_type": "LMT", "price": math.nan}, "price"),
    ({"order_type": "LMT", "price": "nan"}, "price"),
    ({"order_type": "LMT", "price": math.inf}, "price"),
    ({"order_type": "LMT", "price": -1}, "price"),
    ({"order_type": "LMT", "price": "-5000"}, "price"),
    ({"order_type": "LMT", "price": 0}, "price"),
    ({"order_type": "LMT", "price": "0.1"}, "price"),  # below one tick (0.25) once rounded down
    ({"order_type": "LMT", "price": "abc"}, "price"),
    ({"order_type": "LMT", "price": True}, "price"),
    ({"order_type": "LMT", "price": {"p": 1}}, "price"),
    ({"order_type": "MKT", "price": "abc"}, "price"),  # present on a market order: still a number
    ({"order_type": "MKT", "price": math.nan}, "price"),
    ({"order_type": "STP"}, "stop_price"),
    ({"order_type": "STP", "stop_price": "x"}, "stop_price"),
    ({"order_type": "LMT", "price": 5000, "stop_price": 4999}, "stop_price"),
]


@pytest.mark.parametrize(("fields", "field"), BAD)
def test_a_bad_field_is_refused_in_one_sentence_naming_it(
    intake: OrderIntake, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(IntakeRejected) as caught:
        intake.validate(ticket(**fields))
    exc = caught.value
    assert exc.field == field
    assert str(exc).startswith(field), str(exc)
    assert "\n" not in str(exc) and "Traceback" not in str(exc)


def test_submit_turns_a_bad_ticket_into_a_rejected_verdict_and_claims_nothing(intake: OrderIntake) -> None:
    result = asyncio.run(intake.submit(ticket(quantity=1.5)))
    assert (result.verdict, result.field, result.client_order_id) == (
        IntakeVerdict.REJECTED,
        "quantity",
        None,
    )
    assert "quantity 1.5" in result.reason
    assert intake.session.records.intake_key("k1") is None


def test_an_unready_session_is_named_and_the_key_stays_free(intake: OrderIntake) -> None:
    result = asyncio.run(intake.submit(ticket()))
    assert (result.verdict, result.field) == (IntakeVerdict.REJECTED, "session")
    assert result.reason.startswith("session not ready: the trading session is stopped")
    assert intake.session.records.intake_key("k1") is None  # a retry may place it
    assert intake.session.records.orders() == []


# --- tick snapping, exact, both ways ----------------------------------------------------------------------

SNAP = [
    ("MES", "BUY", "5000.30", "5000.25"),
    ("MES", "SELL", "5000.30", "5000.5"),
    ("MES", "BUY", 5000.26, "5000.25"),
    ("MES", "SELL", 5000.01, "5000.25"),
    ("MES", "BUY", "5000.25", "5000.25"),  # on the grid: unchanged either way
    ("MES", "SELL", 5000.25, "5000.25"),
    ("MES", "BUY", "4999.999999999999", "4999.75"),
    ("MES", "SELL", "4999.999999999999", "5000"),
    ("MES", "SELL", 5000, "5000"),
    ("AAPL", "BUY", "123.456", "123.45"),
    ("AAPL", "SELL", "123.451", "123.46"),
    ("AAPL", "SELL", 0.001, "0.01"),
]


@pytest.mark.parametrize(("symbol", "side", "price", "snapped"), SNAP)
def test_a_limit_price_is_snapped_never_more_aggressive_than_asked(
    intake: OrderIntake, symbol: str, side: str, price: object, snapped: str
) -> None:
    valid = intake.validate(ticket(symbol=symbol, side=side, order_type="LMT", price=price))
    assert valid.limit_price == Decimal(snapped)
    assert str(valid.limit_price) == snapped  # exact, no float residue


def test_a_stop_price_is_snapped_never_to_trigger_earlier(intake: OrderIntake) -> None:
    buy = intake.validate(ticket(side="BUY", order_type="STP", stop_price="5000.3"))
    sell = intake.validate(ticket(side="SELL", order_type="STP", stop_price="5000.3"))
    assert (buy.stop_price, sell.stop_price) == (Decimal("5000.5"), Decimal("5000.25"))


def test_the_client_order_id_is_the_same_for_the_same_source_and_key_only() -> None:
    a = derive_client_order_id("webhook", "alert-1")
    assert a == derive_client_order_id("webhook", "alert-1")
    assert a != derive_client_order_id("webhook", "alert-2")
    assert a != derive_client_order_id("cli", "alert-1")
    assert a.startswith("webhook-") and len(a) <= 64


# --- idempotency keys in the records DB -----------------------------------------------------------------


def test_a_key_is_held_within_the_window_and_free_after_it(records: OrderRecords) -> None:
    window = 10 * MINUTE
    assert records.claim_intake_key("k", "cli", "c1", T, window) is None
    assert records.claim_intake_key("k", "cli", "c2", T + 1, window) == "c1"
    assert records.claim_intake_key("k", "webhook", "c3", T + window - 1, window) == "c1"
    assert records.claim_intake_key("k", "cli", "c4", T - MINUTE, window) == "c1"  # an older clock: held
    held = records.intake_key("k")
    assert held is not None and (held.client_order_id, held.claimed_ts, held.verdict) == ("c1", T, "")
    assert records.claim_intake_key("k", "cli", "c5", T + window, window) is None  # expired: taken over
    taken = records.intake_key("k")
    assert taken is not None and (taken.client_order_id, taken.claimed_ts) == ("c5", T + window)
    assert records.claim_intake_key("other", "cli", "c6", T, window) is None  # keys are independent


def test_finish_and_release(records: OrderRecords) -> None:
    records.claim_intake_key("k", "cli", "c1", T, MINUTE)
    records.finish_intake_key("k", "accepted")
    rec = records.intake_key("k")
    assert rec is not None and rec.verdict == "accepted" and rec.source == "cli"
    records.release_intake_key("k")
    assert records.intake_key("k") is None
    assert records.claim_intake_key("k", "cli", "c2", T, MINUTE) is None  # free again


def test_order_status_answers_whether_an_order_is_recorded(records: OrderRecords) -> None:
    """The intake's cheap "is this client order id recorded?" agrees with get_order, on both backends."""
    assert records.order_status("c-none") is None
    request = OrderRequest("MES", Side.BUY, 1, OrderType.MKT, client_order_id="c-rej")
    records.record_new(request, ts=T, status=OrderStatus.REJECTED, message="max_position")
    recorded = records.get_order("c-rej")
    assert recorded is not None and records.order_status("c-rej") == str(recorded.status) == "Rejected"
    assert records.order_status("c-re") is None  # exact ids only


def test_a_claim_on_the_driver_connection_matches_the_core_path(tmp_path: Path) -> None:
    """A SQLite file claims on its driver connection (prepared statements), in-memory SQLite on Core: the
    same answers and the same rows."""
    answers = []
    for url in (f"sqlite:///{tmp_path / 'driver.sqlite'}", "sqlite://"):
        rec = OrderRecords(url)
        rec.migrate()
        try:
            got = [
                rec.claim_intake_key("k", "webhook" * 10, "c1", T, MINUTE),
                rec.claim_intake_key("k", "cli", "c2", T + MINUTE - 1, MINUTE),
                rec.claim_intake_key("k", "cli", "c3", T + MINUTE, MINUTE),
            ]
            rec.finish_intake_key("k", "nothing_to_do_and_more")
            claim = rec.intake_key("k")
            assert claim is not None
            answers.append((got, claim.source, claim.client_order_id, claim.claimed_ts, claim.verdict))
        finally:
            rec.close()
    assert answers[0] == answers[1]
    assert answers[0] == ([None, "c1", None], "cli", "c3", T + MINUTE, "nothing_to_do_an")


def test_a_claim_survives_a_restart_of_the_records(db_url: str) -> None:
    first = OrderRecords(db_url)
    first.migrate()
    assert first.claim_intake_key("k", "webhook", "c1", T, 10 * MINUTE) is None
    first.close()
    again = OrderRecords(db_url)  # the next process
    try:
        again.migrate()
        assert again.claim_intake_key("k", "webhook", "c2", T + 9 * MINUTE, 10 * MINUTE) == "c1"
        assert again.claim_intake_key("k", "webhook", "c3", T + 10 * MINUTE, 10 * MINUTE) is None
    finally:
        again.close()


def _race(url: str, keys: list[str], claimants: int, ts: int) -> dict[str, list[tuple[str, str | None]]]:
    """Every claimant (its own OrderRecords: its own connection, as another process would) claims every key
    at once (a barrier per key); per key, (cid tried, answer)."""
    stores = [OrderRecords(url) for _ in range(claimants)]
    barrier = threading.Barrier(claimants)
    out: dict[str, list[tuple[str, str | None]]] = {k: [] for k in keys}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def claim(i: int) -> None:
        try:
            for key in keys:
                barrier.wait()
                cid = f"{key}-by-{i}"
                got = stores[i].claim_intake_key(key, "cli", cid, ts, 10 * MINUTE)
                with lock:
                    out[key].append((cid, got))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(claimants)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    assert not errors, errors
    return out


def test_concurrent_claims_of_one_key_exactly_one_wins(records: OrderRecords) -> None:
    keys = [f"key-{n}" for n in range(15)]
    records.claim_intake_key("old", "cli", "old-cid", T - 20 * MINUTE, 10 * MINUTE)
    keys.append("old")  # expired: exactly one may take it over
    results = _race(records.url, keys, claimants=6, ts=T)
    for key, answers in results.items():
        winners = [cid for cid, got in answers if got is None]
        assert len(winners) == 1, f"{key}: {answers}"
        assert all(got == winners[0] for _, got in answers if got is not None), f"{key}: {answers}"
        rec = records.intake_key(key)
        assert rec is not None and rec.client_order_id == winners[0]


# --- end to end: the simulator, ib_async and a real TradingSession ---------------------------------------

Body = Callable[["Rig"], Awaitable[None]]


class Rig:
    """A started simulator, migrated records and a started TradingSession with its intake."""

    def __init__(self, server: SimServer, records: OrderRecords, session: TradingSession) -> None:
        self.server = server
        self.records = records
        self.session = session
        self.intake = OrderIntake(session)

    def sim_orders(self) -> list[SimOrder]:
        """Every order the simulated account has seen (working and completed): what was placed."""
        return self.server.broker.open_orders(None) + self.server.broker.completed_orders()

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + WAIT
        while not condition():
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    async def filled(self, cid: str) -> None:
        def done() -> bool:
            m = self.session.om.order(cid)
            return m is not None and m.status is OrderStatus.FILLED and bool(self.records.fills(cid))

        await self.until(done, f"{cid} filled and its fill recorded")


def _session(server: SimServer, records: OrderRecords, limits: RiskLimits) -> TradingSession:
    settings = IBSettings.model_validate(
        {
            "port": server.port,
            "connect_timeout": WAIT,
            "reconnect_initial_delay": 0.05,
            "reconnect_max_delay": 0.2,
            "stale_after_seconds": 3600.0,
            "restart_window": {"enabled": False},
        }
    )
    clock = server.market
    return TradingSession(
        settings,
        records,
        limits,
        symbols=("MES",),
        market_clock=lambda: int(clock.now_s * NS_PER_SECOND),
        market_data=False,
        connect_timeout=WAIT,
    )


def _limits(**overrides: Any) -> RiskLimits:
    values: dict[str, Any] = {"max_position": 20, "max_order_size": 5, "price_band_pct": None}
    values.update(overrides)
    return RiskLimits(**values)


def run_rig(url: str, *bodies: Body, limits: RiskLimits | None = None, before: Body | None = None) -> None:
    """One simulator; each body runs on its own records + session over the same DB (a restart between)."""

    async def main() -> None:
        server = SimServer(port=0, symbols=["MES"], speed=600.0, start=START)
        await server.start()
        try:
            for i, body in enumerate(bodies):
                records = OrderRecords(url)
                records.migrate()
                session = _session(server, records, limits or _limits())
                rig = Rig(server, records, session)
                try:
                    if before is not None and i == 0:
                        await before(rig)
                    await session.start()
                    await asyncio.wait_for(body(rig), 30)
                finally:
                    await session.stop()
                    records.close()
        finally:
            await server.stop()

    asyncio.run(main())


def test_an_accepted_ticket_is_one_order_at_the_simulator_and_fills_a_replay_places_nothing(
    sqlite_url: str,
) -> None:
    async def body(rig: Rig) -> None:
        t = ticket(source="webhook", symbol="mes", side="buy", quantity="2", idempotency_key="alert-1")
        result = await rig.intake.submit(t)
        assert result.verdict is IntakeVerdict.ACCEPTED, result
        cid = derive_client_order_id("webhook", "alert-1")
        assert result.client_order_id == cid
        assert result.reason.startswith("sent BUY 2 MESH5 MKT")
        await rig.filled(cid)
        orders = rig.sim_orders()
        assert [(o.view.order_ref, o.side, o.quantity, o.status) for o in orders] == [
            (cid, Side.BUY, 2, "Filled")
        ]
        rec = rig.records.get_order(cid)
        assert rec is not None and rec.strategy == "webhook" and rec.local_symbol == "MESH5"
        assert sum(f.quantity for f in rig.records.fills(cid)) == 2
        assert rig.session.om.risk.position("MESH5") == 2
        claim = rig.records.intake_key("alert-1")
        assert claim is not None and claim.verdict == "accepted"
        # the same alert again (TradingView retries, replays): nothing placed
        again = await rig.intake.submit(t)
        assert (again.verdict, again.client_order_id) == (IntakeVerdict.DUPLICATE, cid)
        assert again.field == "idempotency_key" and "alert-1" in again.reason
        # even with another quantity: the key decides
        other = await rig.intake.submit(ticket(source="webhook", quantity=1, idempotency_key="alert-1"))
        assert other.verdict is IntakeVerdict.DUPLICATE
        # three copies at once in this process (a door's concurrent requests): one order
        burst = ticket(source="webhook", side="SELL", quantity=1, idempotency_key="alert-2")
        results = await asyncio.gather(*(rig.intake.submit(burst) for _ in range(3)))
        verdicts = sorted(r.verdict.value for r in results)
        assert verdicts == ["accepted", "duplicate", "duplicate"], results
        await rig.filled(derive_client_order_id("webhook", "alert-2"))
        await asyncio.sleep(0.2)
        assert len(rig.sim_orders()) == 2
        assert len(rig.records.orders()) == 2

    run_rig(sqlite_url, body)


def test_rejected_tickets_place_nothing_at_the_simulator_and_risk_names_its_limit(sqlite_url: str) -> None:
    async def body(rig: Rig) -> None:
        bad = await rig.intake.submit(ticket(quantity="1.5", idempotency_key="b1"))
        assert (bad.verdict, bad.field) == (IntakeVerdict.REJECTED, "quantity")
        unknown = await rig.intake.submit(ticket(symbol="NOPE", idempotency_key="b2"))
        assert (unknown.verdict, unknown.field) == (IntakeVerdict.REJECTED, "symbol")
        big = await rig.intake.submit(ticket(quantity=6, idempotency_key="b3"))
        assert (big.verdict, big.field) == (IntakeVerdict.REJECTED, "max_order_size")
        assert big.reason.startswith("max_order_size: BUY 6 MESH5 has quantity 6 > allowed 5 (over by 1)")
        # the refusal is recorded by the OMS (Rejected), and the key is spent: a retry is a duplicate
        rec = rig.records.get_order(big.client_order_id or "")
        assert rec is not None and rec.status is OrderStatus.REJECTED and rec.ib_order_id is None
        retry = await rig.intake.submit(ticket(quantity=6, idempotency_key="b3"))
        assert retry.verdict is IntakeVerdict.DUPLICATE
        await asyncio.sleep(0.2)
        assert rig.sim_orders() == []
        assert rig.records.sent_orders() == 0

    run_rig(sqlite_url, body)


def test_strategy_and_intake_share_one_position_limit(sqlite_url: str) -> None:
    async def body(rig: Rig) -> None:
        # what a strategy does: straight through the session's OMS
        m = await rig.session.submit(OrderRequest("MES", Side.BUY, 2), strategy="ma_breakout")
        await rig.filled(m.client_order_id)
        result = await rig.intake.submit(ticket(quantity=1, idempotency_key="s1"))
        assert (result.verdict, result.field) == (IntakeVerdict.REJECTED, "max_position")
        assert "would make position 3 > allowed 2 (over by 1)" in result.reason
        assert len(rig.sim_orders()) == 1

    run_rig(sqlite_url, body, limits=_limits(max_position=2))


def test_target_position_trades_to_it_from_the_oms_position(sqlite_url: str) -> None:
    async def body(rig: Rig) -> None:
        first = await rig.intake.submit(ticket(quantity=None, target_position=1, idempotency_key="t1"))
        assert first.verdict is IntakeVerdict.ACCEPTED, first
        assert first.client_order_id is not None
        await rig.filled(first.client_order_id)
        # flatten and go short: from +1 to -2 is SELL 3
        flip = await rig.intake.submit(
            ticket(side="sell", quantity=None, target_position="-2", idempotency_key="t2")
        )
        assert flip.verdict is IntakeVerdict.ACCEPTED, flip
        assert flip.client_order_id is not None and "SELL 3 MESH5" in flip.reason
        await rig.filled(flip.client_order_id)
        assert rig.session.om.risk.position("MESH5") == -2
        held = await rig.intake.submit(
            ticket(side="SELL", quantity=None, target_position=-2, idempotency_key="t3")
        )
        assert (held.verdict, held.client_order_id) == (IntakeVerdict.NOTHING_TO_DO, None)
        assert "already held" in held.reason
        wrong = await rig.intake.submit(
            ticket(side="SELL", quantity=None, target_position=1, idempotency_key="t4")
        )
        assert (wrong.verdict, wrong.field) == (IntakeVerdict.REJECTED, "target_position")
        assert "needs BUY 3" in wrong.reason
        sides = [(o.side, o.quantity) for o in rig.sim_orders()]
        assert sorted(sides) == sorted([(Side.BUY, 1), (Side.SELL, 3)])

    run_rig(sqlite_url, body)


def test_not_ready_then_ready_places_the_same_ticket_once(sqlite_url: str) -> None:
    t = ticket(idempotency_key="nr")

    async def before(rig: Rig) -> None:
        result = await rig.intake.submit(t)  # the session is not started yet
        assert (result.verdict, result.field) == (IntakeVerdict.REJECTED, "session")
        assert rig.records.intake_key("nr") is None

    async def body(rig: Rig) -> None:
        result = await rig.intake.submit(t)
        assert result.verdict is IntakeVerdict.ACCEPTED, result
        await rig.filled(derive_client_order_id("cli", "nr"))
        assert [o.view.order_ref for o in rig.sim_orders()] == [derive_client_order_id("cli", "nr")]

    run_rig(sqlite_url, body, before=before)


def test_after_a_restart_no_key_and_no_recorded_client_order_id_is_placed_twice(db_url: str) -> None:
    cid = derive_client_order_id("webhook", "r1")

    async def first(rig: Rig) -> None:
        result = await rig.intake.submit(ticket(source="webhook", idempotency_key="r1"))
        assert result.verdict is IntakeVerdict.ACCEPTED, result
        await rig.filled(cid)
        # a crash between the claim and the write-ahead leaves a claim with no order: "r2"
        assert (
            rig.records.claim_intake_key(
                "r2",
                "webhook",
                derive_client_order_id("webhook", "r2"),
                rig.session.market_clock(),
                10 * MINUTE,
            )
            is None
        )

    async def second(rig: Rig) -> None:
        # within the window, from the intake_keys table of the earlier process
        again = await rig.intake.submit(ticket(source="webhook", idempotency_key="r1"))
        assert (again.verdict, again.field) == (IntakeVerdict.DUPLICATE, "idempotency_key")
        # after the window the key is free, but its client order id is recorded: the OMS never resends it
        late = await OrderIntake(rig.session, window_seconds=0).submit(
            ticket(source="webhook", idempotency_key="r1")
        )
        assert (late.verdict, late.field, late.client_order_id) == (
            IntakeVerdict.DUPLICATE,
            "client_order_id",
            cid,
        )
        # the OMS itself, asked directly for an id an earlier process recorded (and filled): not sent
        m = await rig.session.submit(OrderRequest("MES", Side.BUY, 1, client_order_id=cid))
        assert m.client_order_id == cid and m.status is OrderStatus.FILLED
        # the claim a crash left unfinished is placed now, once, under its own id
        resumed = await rig.intake.submit(ticket(source="webhook", idempotency_key="r2"))
        assert resumed.verdict is IntakeVerdict.ACCEPTED, resumed
        assert resumed.client_order_id == derive_client_order_id("webhook", "r2")
        await rig.filled(resumed.client_order_id)
        replay = await rig.intake.submit(ticket(source="webhook", idempotency_key="r2"))
        assert replay.verdict is IntakeVerdict.DUPLICATE
        await asyncio.sleep(0.2)
        refs = sorted(o.view.order_ref for o in rig.sim_orders())
        assert refs == sorted([cid, derive_client_order_id("webhook", "r2")])

    run_rig(db_url, first, second)


def test_an_order_recorded_but_killed_before_its_send_is_placed_once_after_the_restart(db_url: str) -> None:
    """kill -9 after the write-ahead and before the send: the restart's reconciliation finds the order at no
    broker and closes it Inactive; the unfinished claim is then placed once, as `<cid>-r1`, never again."""
    cid = derive_client_order_id("webhook", "r3")

    async def crashed(rig: Rig) -> None:
        ts = rig.session.market_clock()
        assert rig.records.claim_intake_key("r3", "webhook", cid, ts, 10 * MINUTE) is None
        mes = rig.session.instrument("MES")
        rig.records.record_new(OrderRequest(mes.key, Side.BUY, 1, client_order_id=cid), ts=ts, instrument=mes)

    async def restarted(rig: Rig) -> None:
        closed = rig.records.get_order(cid)
        assert closed is not None and closed.status is OrderStatus.INACTIVE, closed
        placed = await rig.intake.submit(ticket(source="webhook", idempotency_key="r3"))
        assert (placed.verdict, placed.client_order_id) == (IntakeVerdict.ACCEPTED, f"{cid}-r1"), placed
        await rig.filled(f"{cid}-r1")
        replay = await rig.intake.submit(ticket(source="webhook", idempotency_key="r3"))
        assert replay.verdict is IntakeVerdict.DUPLICATE, replay

    async def once_more(rig: Rig) -> None:  # a later restart derives the same name and places nothing
        again = await OrderIntake(rig.session, window_seconds=0).submit(
            ticket(source="webhook", idempotency_key="r3")
        )
        assert again.verdict is IntakeVerdict.DUPLICATE, again
        await asyncio.sleep(0.2)
        assert [o.view.order_ref for o in rig.sim_orders()] == [f"{cid}-r1"]

    run_rig(db_url, crashed, restarted, once_more)


def test_an_accepted_order_whose_send_a_kill_lost_is_placed_once_after_the_restart(db_url: str) -> None:
    """kill -9 after the send and the verdict (the alert acknowledged), but the bytes never reached IB: the
    restart's reconciliation closes the order Inactive and `replace_unsent` places it once as `<cid>-r1`; a
    further restart places nothing. A strategy's lost order, and a claim older than the window, are not
    placed again."""
    cid = derive_client_order_id("webhook", "u1")
    old_cid = derive_client_order_id("webhook", "u-old")
    strategy_cid = "ma_breakout-lost-1"

    async def crashed(rig: Rig) -> None:
        ts = rig.session.market_clock()
        mes = rig.session.instrument("MES")
        records = rig.records
        assert records.claim_intake_key("u1", "webhook", cid, ts, 10 * MINUTE) is None
        lost = OrderRequest(mes.key, Side.SELL, 2, OrderType.LMT, 4000.25, client_order_id=cid, reason="tv")
        records.record_new(lost, ts=ts, instrument=mes, strategy="webhook")
        records.finish_intake_key("u1", IntakeVerdict.ACCEPTED)
        old_ts = ts - 11 * MINUTE  # beyond the intake's 600 s window: never placed late
        assert records.claim_intake_key("u-old", "webhook", old_cid, old_ts, 10 * MINUTE) is None
        records.record_new(
            OrderRequest(mes.key, Side.BUY, 1, client_order_id=old_cid), ts=old_ts, instrument=mes
        )
        records.finish_intake_key("u-old", IntakeVerdict.ACCEPTED)
        strategy = OrderRequest(mes.key, Side.BUY, 1, client_order_id=strategy_cid)
        records.record_new(strategy, ts=ts, instrument=mes, strategy="ma_breakout")

    async def restarted(rig: Rig) -> None:
        for closed_cid in (cid, old_cid, strategy_cid):
            closed = rig.records.get_order(closed_cid)
            assert closed is not None and closed.status is OrderStatus.INACTIVE, closed
        assert await rig.intake.replace_unsent() == [f"{cid}-r1"]
        assert await rig.intake.replace_unsent() == []  # called again: the name is recorded, nothing more
        rec = rig.records.get_order(f"{cid}-r1")
        assert rec is not None and (rec.side, rec.quantity, rec.order_type) == (Side.SELL, 2, "LMT")
        assert (rec.limit_price, rec.strategy) == (Decimal("4000.25"), "webhook")
        await rig.until(lambda: bool(rig.sim_orders()), "the order at the simulator")
        replay = await rig.intake.submit(ticket(source="webhook", idempotency_key="u1"))
        assert replay.verdict is IntakeVerdict.DUPLICATE, replay

    async def once_more(rig: Rig) -> None:
        assert await rig.intake.replace_unsent() == []
        await asyncio.sleep(0.2)
        assert [(o.view.order_ref, o.side, o.quantity) for o in rig.sim_orders()] == [
            (f"{cid}-r1", Side.SELL, 2)
        ]
        assert {o.client_order_id for o in rig.records.orders()} == {cid, f"{cid}-r1", old_cid, strategy_cid}

    run_rig(db_url, crashed, restarted, once_more)


def test_replace_unsent_places_a_lost_replacement_again_and_honours_risk(sqlite_url: str) -> None:
    """`-r1` lost as well (a second kill): `-r2`; a risk refusal is recorded and ends it (no `-r3` later)."""
    cid = derive_client_order_id("cli", "u2")
    big = derive_client_order_id("cli", "u3")

    async def crashed(rig: Rig) -> None:
        ts = rig.session.market_clock()
        mes = rig.session.instrument("MES")
        records = rig.records
        for key, c, qty in (("u2", cid, 1), ("u3", big, 3)):
            assert records.claim_intake_key(key, "cli", c, ts, 10 * MINUTE) is None
            records.record_new(OrderRequest(mes.key, Side.BUY, qty, client_order_id=c), ts=ts, instrument=mes)
            records.finish_intake_key(key, IntakeVerdict.ACCEPTED)
        closed = "reconcile: the broker no longer has this order"  # what an earlier restart left
        records.record_new(
            OrderRequest(mes.key, Side.BUY, 1, client_order_id=f"{cid}-r1"),
            ts=ts,
            instrument=mes,
            status=OrderStatus.INACTIVE,
            message=closed,
        )

    async def restarted(rig: Rig) -> None:
        assert await rig.intake.replace_unsent() == [f"{cid}-r2"]
        refused = rig.records.get_order(f"{big}-r1")
        assert refused is not None and refused.status is OrderStatus.REJECTED, refused
        await rig.filled(f"{cid}-r2")

    async def once_more(rig: Rig) -> None:
        assert await rig.intake.replace_unsent() == []
        await asyncio.sleep(0.2)
        assert [o.view.order_ref for o in rig.sim_orders()] == [f"{cid}-r2"]

    run_rig(sqlite_url, crashed, restarted, once_more, limits=_limits(max_order_size=2))


def test_a_valid_ticket_may_be_submitted_as_validated(intake: OrderIntake) -> None:
    valid = intake.validate(ticket(order_type="LMT", price="5000.3"))
    assert isinstance(valid, ValidTicket) and valid.limit_price == Decimal("5000.25")
    result = asyncio.run(intake.submit(valid))
    assert (result.verdict, result.field) == (IntakeVerdict.REJECTED, "session")


def test_window_must_be_a_finite_non_negative_number(tmp_path: Path, intake: OrderIntake) -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        OrderIntake(intake.session, window_seconds=-1)

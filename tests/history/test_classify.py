"""Every failed request gets a class from what IB said, never from an empty list alone: the pure table, and
the IB adapter against the simulator through ib_async (invalid parameters that ib_async leaves pending, an
unknown contract, timeouts). Faults the simulator does not script yet (no data, permission) are skipped until
it does."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from ib_async import Future

from ibot.brokers.ib.config import ClientRole, IBSettings
from ibot.brokers.ib.connection import IBConnection
from ibot.brokers.ib.historical import IBHistorySource, ib_end_time
from ibot.history.checkpoint import Checkpoint
from ibot.history.classify import FailureClass, classify, is_retried
from ibot.history.source import BarRequest, ContractInfo
from ibot.model import catalog

from .conftest import Sim


@pytest.mark.parametrize(
    ("code", "text", "kind"),
    [
        (
            162,
            "Historical Market Data Service error message:HMDS query returned no data: MESZ4@CME Trades",
            "no_data",
        ),
        (
            162,
            "Historical Market Data Service error message:No market data permissions for CME FUT",
            "permission",
        ),
        (162, "Historical data request pacing violation", "pacing"),
        (
            162,
            "Historical Market Data Service error message:API historical data query cancelled: 7",
            "timeout",
        ),
        (162, "Historical Market Data Service error message:Time length exceed max.", "invalid"),
        (
            322,
            "Error processing request.-'Maximum number of open historical requests (50) exceeded'",
            "pacing",
        ),
        (165, "Historical Market Data Service query message:HMDS server disconnect occurred", "timeout"),
        (366, "No historical data query found for ticker id:7", "timeout"),
        (200, "No security definition has been found for the request", "invalid"),
        (321, "Error validating request.-'durationStr': invalid duration", "invalid"),
        (10339, "Set endDateTime field to empty value for CONTFUT", "invalid"),
        (354, "Requested market data is not subscribed", "permission"),
    ],
)
def test_ib_errors_are_classified_by_code_and_text(code: int, text: str, kind: str) -> None:
    assert classify(code, text).kind.value == kind


def test_silence_is_a_timeout_or_a_dropped_link_never_no_data() -> None:
    assert classify(0).kind is FailureClass.TIMEOUT
    assert classify(0, disconnected=True).kind is FailureClass.DISCONNECTED
    retried = {k for k in FailureClass if is_retried(k)}
    assert retried == {FailureClass.PACING, FailureClass.TIMEOUT, FailureClass.DISCONNECTED}


def _with_source(sim: Sim, test) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        settings = IBSettings(port=sim.port)
        connection = IBConnection(settings, ClientRole.DATA_HISTORICAL)
        await connection.start(wait=True, timeout=10)
        try:
            await test(IBHistorySource(connection))
        finally:
            await connection.stop()

    asyncio.run(main())


def test_the_adapter_classifies_invalid_requests_and_unknown_contracts_from_ibs_error(sim: Sim) -> None:
    async def test(source: IBHistorySource) -> None:
        info = await source.contract(catalog.contract("MES", 2024, 12))  # expired at the simulator's time
        assert info.instrument.local_symbol == "MESZ4" and info.last_trade_date == date(2024, 12, 20)
        end = catalog.contract("MES", 2024, 12)
        too_long = BarRequest(info, None, "1 Y", "1 min", "TRADES")  # 162 "Time length exceed max."
        answer = await source.bars(too_long, timeout=20.0)
        assert answer.failure is not None and answer.failure.kind is FailureClass.INVALID
        assert answer.failure.code == 162 and answer.seconds < 5.0  # ended by the error, not the timeout
        unknown = ContractInfo(end, None, Future(conId=424242, exchange="CME"))
        answer = await source.bars(BarRequest(unknown, None, "1 D", "1 min", "TRADES"), timeout=20.0)
        assert answer.failure is not None and answer.failure.kind is FailureClass.INVALID
        assert answer.failure.code == 200
        good = BarRequest(info, 1734728400 * 10**9, "1 D", "1 min", "TRADES")  # 2024-12-20 21:00 UTC
        assert ib_end_time(good.end_ns or 0) == "20241220-21:00:00"
        answer = await source.bars(good, timeout=20.0)
        assert answer.failure is None and len(answer.bars) > 0

    _with_source(sim, test)


def test_a_request_without_an_answer_in_time_is_a_timeout_retried_and_never_marked_done(sim: Sim) -> None:
    sim.server.faults.history_unanswered(count=1_000)  # IB never answers: no answer can beat the timeout
    result = sim.download(
        start=date(2024, 12, 16), end=date(2024, 12, 17), request_timeout=0.05, max_retries=2
    )
    d = result.to_dict()
    job = d["jobs"][0]
    assert not d["complete"] and job["chunks_done"] == 0
    assert job["failures"] == {"timeout": job["fewest_needed"]}
    assert d["retries"] == {"timeout": 2 * job["fewest_needed"]}
    assert d["bars_stored"] == {}
    with Checkpoint.in_data_dir(sim.data) as cp:
        assert cp.done("MESH5/1min") == [] and cp.done("MESZ4/1min") == []


def _arm(sim: Sim, kind: str) -> None:
    """Arm the simulator's historical fault `kind`: IB's "no data" answer, or no permission for MES."""
    if kind == "no_data":
        sim.server.faults.history_no_data(count=1)
    else:
        sim.server.faults.history_permissions(symbol="MES", granted=False)


@pytest.mark.parametrize(("kind", "expected"), [("no_data", "no_data"), ("permission", "permission")])
def test_the_simulators_no_data_and_permission_faults_are_classified(
    sim: Sim, kind: str, expected: str
) -> None:
    _arm(sim, kind)
    d = sim.download(start=date(2024, 12, 16), end=date(2024, 12, 16)).to_dict()
    job = d["jobs"][0]
    if expected == "no_data":
        assert job["no_data"] >= 1 and job["chunks_done"] >= 1  # IB's "no data" marks the range done
    else:
        assert job["failures"].get("permission", 0) >= 1 and job["chunks_done"] < job["fewest_needed"]

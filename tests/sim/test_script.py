"""Fault scripts (`ibot sim --fault AT:KIND[:ARG]`): parsed with clear errors, fired on time."""

from __future__ import annotations

import asyncio

import pytest
from sim_helpers import WAIT, connect, error_waiter, run

from ibot.model.errors import ParameterError
from ibot.sim.script import ScheduledFault, parse_fault, schedule
from ibot.sim.server import SimServer


def test_a_spec_parses_into_time_kind_and_arguments() -> None:
    assert parse_fault("0.5:farm:2103") == ScheduledFault(0.5, "farm", ("2103",))
    assert parse_fault("10:restored:lost") == ScheduledFault(10.0, "restored", ("lost",))
    assert parse_fault("3:RESTART:300:1") == ScheduledFault(3.0, "restart", ("300", "1"))


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("drop", "must look like AT:KIND"),
        ("x:drop", "'x' is not a number"),
        ("-1:drop", "must be a number >= 0"),
        ("5:explode", "unknown kind 'explode'"),
        ("5:farm:abc", "'abc' is not a whole number"),
        ("5:restored:maybe", "must be 'kept' (1102) or 'lost' (1101)"),
        ("5:lost:now", "takes at most 0 argument"),
    ],
)
def test_bad_specs_are_refused_naming_the_spec(spec: str, says: str) -> None:
    with pytest.raises(ParameterError) as err:
        parse_fault(spec)
    assert says in str(err.value)


def test_scheduled_faults_reach_the_client_in_order() -> None:
    async def scenario(server: SimServer) -> None:
        ib = await connect(server, 4)
        lost, restored = error_waiter(ib, 1100), error_waiter(ib, 1101)
        schedule(server.faults, [parse_fault("0.05:lost"), parse_fault("0.15:restored:lost")])
        assert (await asyncio.wait_for(lost, WAIT))[1] == 1100
        assert (await asyncio.wait_for(restored, WAIT))[1] == 1101
        ib.disconnect()

    run(scenario)

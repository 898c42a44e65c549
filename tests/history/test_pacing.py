"""The pacing scheduler against IB's rules ("Historical Data Limitations"), with an injected fake clock: for
any sequence of requests no window is broken (checked independently, and by the simulator's own pacing check),
BID_ASK counts twice, identical requests are 15 s apart, one contract gets at most 5 requests in 2 s, and the
scheduler waits no longer than a rule requires."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibot.history.pacing import PacingRules, PacingScheduler, RequestKey
from ibot.model.errors import ParameterError
from ibot.sim.pacing import HistoricalPacing, SimLimits

# IB's limits as IB states them (no margin): the checker's, not the scheduler's.
WINDOW, PER_WINDOW = 600.0, 60
IDENTICAL = 15.0
CONTRACT_WINDOW, PER_CONTRACT = 2.0, 5


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


IB_RULES = PacingRules()


def schedule(keys: list[RequestKey], rules: PacingRules = IB_RULES, gaps: list[float] | None = None):
    """Send `keys` in order as soon as the scheduler allows (with optional idle time before each)."""
    clock = FakeClock()
    sched = PacingScheduler(rules, clock=clock)
    times = []
    for i, key in enumerate(keys):
        if gaps:
            clock.now += gaps[i % len(gaps)]
        t = sched.earliest(key, clock.now)
        clock.now = t
        sched.record(key, t)
        times.append(t)
    return times, sched


def broken_rules(keys: list[RequestKey], times: list[float], scale: float = 1.0) -> list[str]:
    """Every IB rule a timeline breaks (independent of the scheduler's code)."""
    problems = []
    window, identical, contract_window = WINDOW / scale, IDENTICAL / scale, CONTRACT_WINDOW / scale
    for i, (k, t) in enumerate(zip(keys, times, strict=True)):
        total = sum(
            kk.weight for kk, tt in zip(keys[: i + 1], times[: i + 1], strict=True) if tt > t - window
        )
        if total > PER_WINDOW:
            problems.append(f"request {i} at {t}: {total} in the ten-minute window")
        same = sum(
            kk.weight
            for kk, tt in zip(keys[: i + 1], times[: i + 1], strict=True)
            if kk.contract == k.contract and tt > t - contract_window
        )
        if same > PER_CONTRACT:
            problems.append(f"request {i} at {t}: {same} for one contract within 2 s")
        for kk, tt in zip(keys[:i], times[:i], strict=True):
            if kk.identity == k.identity and t - tt < identical:
                problems.append(f"request {i} at {t}: identical to one at {tt}")
    return problems


keys_strategy = st.lists(
    st.builds(
        lambda con, what, param: RequestKey.of(con, "CME", what, param),
        st.integers(1, 3),
        st.sampled_from(["TRADES", "MIDPOINT", "BID_ASK"]),
        st.integers(0, 4),
    ),
    min_size=1,
    max_size=150,
)


@settings(max_examples=150, deadline=None)
@given(keys=keys_strategy, gaps=st.lists(st.floats(0, 30), max_size=5))
def test_no_rule_is_broken_for_any_sequence_of_requests(keys: list[RequestKey], gaps: list[float]) -> None:
    times, _ = schedule(keys, gaps=gaps or None)
    assert times == sorted(times)
    assert broken_rules(keys, times) == []


@settings(max_examples=60, deadline=None)
@given(keys=keys_strategy, scale=st.sampled_from([1.0, 10.0, 200.0]))
def test_the_simulators_pacing_check_sees_no_violation(keys: list[RequestKey], scale: float) -> None:
    keys = [k for k in keys if k.weight == 1]  # the simulator counts every request once
    times, _ = schedule(keys, PacingRules(scale=scale, safety_seconds=0.0))
    ib = HistoricalPacing(
        SimLimits(
            identical_request_seconds=IDENTICAL / scale,
            same_contract_seconds=CONTRACT_WINDOW / scale,
            window_seconds=WINDOW / scale,
        )
    )
    for k, t in zip(keys, times, strict=True):
        assert ib.check(k.identity, k.contract, t) is None


@settings(max_examples=80, deadline=None)
@given(keys=keys_strategy)
def test_a_request_that_waited_could_not_have_gone_earlier(keys: list[RequestKey]) -> None:
    """Tight: every wait ends when a rule allows, not later (the scheduler's own windows, with margin)."""
    rules = PacingRules()
    times, _ = schedule(keys, rules)
    for i in range(1, len(keys)):
        if times[i] > times[i - 1] + 1e-9:
            replay = PacingScheduler(rules, clock=FakeClock())
            for k, t in zip(keys[:i], times[:i], strict=True):
                replay.record(k, t)
            assert replay.earliest(keys[i], times[i] - 0.01) > times[i] - 0.01


def test_bid_ask_counts_twice_in_the_ten_minute_window() -> None:
    keys = [RequestKey.of(c, "CME", "BID_ASK", c) for c in range(1, 32)]
    times, _ = schedule(keys)
    assert times[29] == times[0]  # 30 BID_ASK requests weigh 60
    assert times[30] >= times[0] + WINDOW  # the 31st waits for the window
    trades = [RequestKey.of(c, "CME", "TRADES", c) for c in range(1, 62)]
    times, _ = schedule(trades)
    assert times[59] == times[0] and times[60] >= times[0] + WINDOW


def test_identical_requests_are_at_least_15_seconds_apart() -> None:
    key = RequestKey.of(7, "CME", "TRADES", "20250305-15:00:00", "1 D")
    times, _ = schedule([key, key, key])
    assert times[1] - times[0] >= IDENTICAL and times[2] - times[1] >= IDENTICAL


def test_one_contract_gets_at_most_five_requests_in_two_seconds() -> None:
    keys = [RequestKey.of(7, "CME", "TRADES", i) for i in range(12)]
    times, _ = schedule(keys)
    assert times[4] == times[0] and times[5] >= times[0] + CONTRACT_WINDOW
    other = [RequestKey.of(7, "CME", "MIDPOINT", 0), RequestKey.of(8, "CME", "TRADES", 0)]
    later, _ = schedule(keys[:5] + other)
    assert later[5] == later[6] == later[0]  # another tick type or contract is not held back


def test_scale_divides_every_window() -> None:
    rules = PacingRules(scale=100.0, safety_fraction=0.0, safety_seconds=0.0)
    key = RequestKey.of(7, "CME", "TRADES", "same")
    times, _ = schedule([key, key], rules)
    assert times[1] - times[0] == pytest.approx(0.15)
    trades = [RequestKey.of(c, "CME", "TRADES", c) for c in range(1, 62)]
    times, _ = schedule(trades, rules)
    assert times[60] - times[0] == pytest.approx(6.0)
    assert rules.requests_per_second == pytest.approx(10.0)


def test_acquire_waits_on_the_injected_clock_and_keeps_few_requests_open() -> None:
    async def main() -> None:
        clock = FakeClock()
        sched = PacingScheduler(PacingRules(max_in_flight=3), clock=clock, sleep=clock.sleep)
        open_now = peak = 0

        async def one(i: int) -> float:
            nonlocal open_now, peak
            await sched.acquire(RequestKey.of(1, "CME", "TRADES", i))
            sent = clock.now
            open_now += 1
            peak = max(peak, open_now)
            await asyncio.sleep(0)
            open_now -= 1
            sched.release()
            return sent

        times = await asyncio.gather(*(one(i) for i in range(12)))
        assert peak <= 3
        assert sched.sent == 12
        assert broken_rules([RequestKey.of(1, "CME", "TRADES", i) for i in range(12)], sorted(times)) == []
        assert sched.waited > 0

    asyncio.run(main())


@pytest.mark.parametrize(
    "kwargs", [{"scale": 0.0}, {"scale": -1.0}, {"max_in_flight": 0}, {"max_in_flight": 51}]
)
def test_rules_that_cannot_work_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ParameterError):
        PacingRules(**kwargs)  # type: ignore[arg-type]


def _server_checks(answered_with_key: bool, delays: dict[int, float], n: int = 130) -> int:
    """n requests one after another at pacing scale 60; request i reaches the server's pacing check
    delays.get(i, 0) seconds after it was admitted (the client's own work and the server's queue) and is
    answered at once. Violations the simulator's check counts."""
    scale = 60.0
    server = HistoricalPacing(SimLimits(pacing_scale=scale))

    async def main() -> None:
        clock = FakeClock()
        sched = PacingScheduler(PacingRules(scale=scale, max_in_flight=1), clock=clock, sleep=clock.sleep)
        for i in range(n):
            key = RequestKey.of(1 + i % 7, "CME", "TRADES", i)
            await sched.acquire(key)
            clock.now += delays.get(i, 0.0)
            server.check(key.identity, key.contract, clock.now)
            sched.release(key if answered_with_key else None)

    asyncio.run(main())
    return server.violations


def test_a_request_counts_from_its_answer_so_a_late_server_check_breaks_no_window() -> None:
    # request 0 reaches the server 3 s after its admission (a 10 s window at scale 60), the others at once:
    # counted from its admission, request 60 goes 10.25 s later and the server sees 61 in 10 s
    delays = {0: 3.0, 61: 1.5}
    assert _server_checks(answered_with_key=False, delays=delays) > 0
    assert _server_checks(answered_with_key=True, delays=delays) == 0


@given(st.lists(st.floats(0.0, 5.0), min_size=130, max_size=130))
@settings(max_examples=30, deadline=None)
def test_no_window_is_broken_whatever_the_delay_before_the_servers_check(delays: list[float]) -> None:
    assert _server_checks(answered_with_key=True, delays=dict(enumerate(delays))) == 0


def test_the_next_run_counts_a_request_from_its_answer(tmp_path: Path) -> None:
    from ibot.app.history import _pace_across_runs
    from ibot.history.checkpoint import Checkpoint

    async def main() -> None:
        with Checkpoint.in_data_dir(tmp_path) as checkpoint:
            sched = PacingScheduler(PacingRules())
            _pace_across_runs(sched, checkpoint)
            key = RequestKey.of(1, "CME", "TRADES", "end")
            before = time.time()
            await sched.acquire(key)
            [(sent, *_)] = checkpoint.sent_since(0)
            await asyncio.sleep(0.3)  # the answer comes later
            sched.release(key)
            [(answered, identity, *_)] = checkpoint.sent_since(0)
            assert before <= sent < answered - 0.25 and identity == key.identity

    asyncio.run(main())

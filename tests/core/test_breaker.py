"""The circuit breaker (aex/core/breaker.py): 5 failures in a row trip it, it refuses calls
for 10 s, then lets one probe through whose outcome closes or reopens it. A Hypothesis state
machine drives it against a plain model of the spec's rule."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from aex.core import (
    BREAKER_TRANSITIONS,
    DEFAULT_BREAKER_POLICY,
    Breaker,
    BreakerPolicy,
    BreakerState,
    admit,
    record_failure,
    record_success,
)

POLICY = DEFAULT_BREAKER_POLICY


def fail_times(breaker: Breaker, times: int, *, now_ms: int) -> Breaker:
    for _ in range(times):
        breaker, allowed = admit(breaker, POLICY, now_ms=now_ms)
        assert allowed
        breaker = record_failure(breaker, POLICY, now_ms=now_ms)
    return breaker


def test_four_failures_in_a_row_keep_the_breaker_closed() -> None:
    breaker = fail_times(Breaker(), 4, now_ms=0)
    assert breaker.state is BreakerState.CLOSED
    assert admit(breaker, POLICY, now_ms=0)[1]


def test_the_fifth_failure_in_a_row_trips_it_open_for_ten_seconds() -> None:
    breaker = fail_times(Breaker(), 5, now_ms=1_000)
    assert breaker.state is BreakerState.OPEN
    assert admit(breaker, POLICY, now_ms=1_000)[1] is False
    assert admit(breaker, POLICY, now_ms=10_999)[1] is False
    probing, allowed = admit(breaker, POLICY, now_ms=11_000)
    assert allowed
    assert probing.state is BreakerState.HALF_OPEN


def test_a_success_between_failures_starts_the_count_again() -> None:
    breaker = fail_times(Breaker(), 4, now_ms=0)
    breaker = record_success(breaker)
    breaker = fail_times(breaker, 4, now_ms=0)
    assert breaker.state is BreakerState.CLOSED


def test_half_open_lets_one_probe_through_at_a_time() -> None:
    breaker, _ = admit(fail_times(Breaker(), 5, now_ms=0), POLICY, now_ms=10_000)
    assert admit(breaker, POLICY, now_ms=10_001)[1] is False


def test_a_successful_probe_closes_the_breaker() -> None:
    breaker, _ = admit(fail_times(Breaker(), 5, now_ms=0), POLICY, now_ms=10_000)
    assert record_success(breaker) == Breaker()


def test_a_failed_probe_opens_it_for_another_ten_seconds() -> None:
    breaker, _ = admit(fail_times(Breaker(), 5, now_ms=0), POLICY, now_ms=12_000)
    breaker = record_failure(breaker, POLICY, now_ms=12_000)
    assert breaker.state is BreakerState.OPEN
    assert admit(breaker, POLICY, now_ms=21_999)[1] is False
    assert admit(breaker, POLICY, now_ms=22_000)[1] is True


def test_the_transition_table_reaches_every_state() -> None:
    reached = {BreakerState.CLOSED} | set(BREAKER_TRANSITIONS.values())
    assert reached == set(BreakerState)


@pytest.mark.parametrize("policy", [(0, 1), (1, 0)])
def test_a_policy_needs_a_failure_and_an_open_time(policy: tuple[int, int]) -> None:
    with pytest.raises(AssertionError):
        BreakerPolicy(*policy)


@dataclass
class Model:
    """The spec's rule, written plainly: the reference for the state machine below."""

    failures: int = 0
    open_since_ms: int | None = None
    probing: bool = False

    def admit(self, now_ms: int) -> bool:
        if self.open_since_ms is None:
            return True
        if self.probing or now_ms - self.open_since_ms < POLICY.open_ms:
            return False
        self.probing = True
        return True

    def result(self, ok: bool, now_ms: int) -> None:
        if self.probing:
            self.probing = False
            self.open_since_ms = None if ok else now_ms
            self.failures = 0 if ok else self.failures + 1
            return
        if self.open_since_ms is not None:
            return
        self.failures = 0 if ok else self.failures + 1
        if self.failures >= POLICY.failures_to_trip:
            self.open_since_ms = now_ms


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.breaker = Breaker()
        self.model = Model()
        self.now_ms = 0
        self.in_flight = 0

    @rule(elapsed_ms=st.integers(0, 12_000))
    def wait(self, elapsed_ms: int) -> None:
        self.now_ms += elapsed_ms

    @rule()
    def call(self) -> None:
        self.breaker, allowed = admit(self.breaker, POLICY, now_ms=self.now_ms)
        assert allowed == self.model.admit(self.now_ms)
        self.in_flight += allowed

    @precondition(lambda self: self.in_flight > 0)
    @rule(ok=st.booleans())
    def finish(self, ok: bool) -> None:
        self.in_flight -= 1
        if ok:
            self.breaker = record_success(self.breaker)
        else:
            self.breaker = record_failure(self.breaker, POLICY, now_ms=self.now_ms)
        self.model.result(ok, self.now_ms)

    @invariant()
    def state_matches_the_model(self) -> None:
        if self.model.open_since_ms is None:
            assert self.breaker.state is BreakerState.CLOSED
            assert self.breaker.consecutive_failures == self.model.failures
        elif self.model.probing:
            assert self.breaker.state is BreakerState.HALF_OPEN
        else:
            assert self.breaker.state in {BreakerState.OPEN, BreakerState.HALF_OPEN}


TestBreakerMachine = BreakerMachine.TestCase

# Rule: when a call to an outbound dependency (a webhook host, Redis, NATS, the PostgreSQL pool)
# is made, refused at once, or let through as a probe is decided here and only here.
#
# Theory of operation: the spec's circuit breaker ("5-failure trip, 10s open, fast-fail cascade
# protection", after sony/gobreaker). A breaker is a frozen record; every function takes it and
# the time (`now_ms`, from the driver's clock) and returns the next record. CLOSED lets every
# call through and counts consecutive failures; the `failures_to_trip`-th trips it OPEN, which
# refuses every call for `open_ms`; the first call after that is a probe (HALF_OPEN): one call
# at a time goes through; its success closes the breaker, its failure opens it for another
# `open_ms`. The states and the events that move them are one transition table; the drivers
# (serve/breakers.py) hold one record per dependency behind a lock and report the state on
# /metrics and /ready.
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

__all__ = [
    "BREAKER_TRANSITIONS",
    "DEFAULT_BREAKER_POLICY",
    "Breaker",
    "BreakerEvent",
    "BreakerPolicy",
    "BreakerState",
    "admit",
    "record_failure",
    "record_success",
]


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class BreakerEvent(StrEnum):
    TRIP = "trip"  # the failures_to_trip-th consecutive failure while CLOSED
    OPEN_ELAPSED = "open_elapsed"  # a call arrives open_ms after the breaker opened
    PROBE_SUCCEEDED = "probe_succeeded"
    PROBE_FAILED = "probe_failed"


# The whole lifecycle; a missing key is a transition that cannot happen.
BREAKER_TRANSITIONS: Final[dict[tuple[BreakerState, BreakerEvent], BreakerState]] = {
    (BreakerState.CLOSED, BreakerEvent.TRIP): BreakerState.OPEN,
    (BreakerState.OPEN, BreakerEvent.OPEN_ELAPSED): BreakerState.HALF_OPEN,
    (BreakerState.HALF_OPEN, BreakerEvent.PROBE_SUCCEEDED): BreakerState.CLOSED,
    (BreakerState.HALF_OPEN, BreakerEvent.PROBE_FAILED): BreakerState.OPEN,
}


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker trips and for how long it stays open (the spec: 5 failures, 10 s)."""

    failures_to_trip: int = 5
    open_ms: int = 10_000

    def __post_init__(self) -> None:
        assert self.failures_to_trip >= 1, self.failures_to_trip
        assert self.open_ms >= 1, self.open_ms


DEFAULT_BREAKER_POLICY: Final = BreakerPolicy()
assert DEFAULT_BREAKER_POLICY.failures_to_trip == 5
assert DEFAULT_BREAKER_POLICY.open_ms == 10_000


@dataclass(frozen=True, slots=True)
class Breaker:
    """One dependency's breaker: its state, the failures in a row, when it last opened."""

    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    opened_at_ms: int = 0
    probe_in_flight: bool = False

    def __post_init__(self) -> None:
        assert self.consecutive_failures >= 0
        if self.probe_in_flight:
            assert self.state is BreakerState.HALF_OPEN


def _move(breaker: Breaker, event: BreakerEvent) -> BreakerState:
    return BREAKER_TRANSITIONS[(breaker.state, event)]


def admit(breaker: Breaker, policy: BreakerPolicy, *, now_ms: int) -> tuple[Breaker, bool]:
    """Whether a call may go out now, and the breaker after asking.

    Returns:
        (next breaker, True) to make the call, then report it with `record_success` or
        `record_failure`; (next breaker, False) to fail fast without calling.
    """
    if breaker.state is BreakerState.CLOSED:
        return breaker, True
    if breaker.state is BreakerState.OPEN:
        if now_ms - breaker.opened_at_ms < policy.open_ms:
            return breaker, False
        probing = replace(breaker, state=_move(breaker, BreakerEvent.OPEN_ELAPSED))
        return replace(probing, probe_in_flight=True), True
    assert breaker.state is BreakerState.HALF_OPEN
    if breaker.probe_in_flight:
        return breaker, False  # one probe at a time
    return replace(breaker, probe_in_flight=True), True


def record_success(breaker: Breaker) -> Breaker:
    """A call went through: the dependency works, the failure count starts again."""
    if breaker.state is BreakerState.HALF_OPEN:
        return Breaker(state=_move(breaker, BreakerEvent.PROBE_SUCCEEDED))
    if breaker.state is BreakerState.OPEN:
        return breaker  # a call admitted before the breaker opened came back late
    return Breaker()


def record_failure(breaker: Breaker, policy: BreakerPolicy, *, now_ms: int) -> Breaker:
    """A call failed: count it; the failures_to_trip-th in a row (or a failed probe) opens."""
    if breaker.state is BreakerState.HALF_OPEN:
        state = _move(breaker, BreakerEvent.PROBE_FAILED)
        return Breaker(state, breaker.consecutive_failures + 1, now_ms)
    if breaker.state is BreakerState.OPEN:
        return breaker  # late news of a call admitted before the breaker opened
    failures = breaker.consecutive_failures + 1
    if failures < policy.failures_to_trip:
        return replace(breaker, consecutive_failures=failures)
    return Breaker(_move(breaker, BreakerEvent.TRIP), failures, now_ms)

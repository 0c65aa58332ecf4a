"""Circuit breakers on the exchange's outbound dependencies, one per dependency per process.

The rule (5 failures in a row trip a breaker, it stays open 10 s, then one probe) is
`aex/core/breaker.py`; this driver holds each dependency's record behind a lock, feeds it the
monotonic clock, and reports it: `aex_circuit_breaker_state{dependency}` (0 closed, 1 half-open,
2 open) and `aex_circuit_breaker_trips_total{dependency}` on /metrics, and every breaker's state
on /ready. Dependencies are named by a bounded set of names (`redis`, `nats`, `postgres`,
`webhook:<host>:<port>`, one per endpoint origin); the number of breakers is capped by
`BREAKERS_MAX` so that webhook origins cannot grow the registry or the metric's series without
bound.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from aex.core import (
    DEFAULT_BREAKER_POLICY,
    Breaker,
    BreakerPolicy,
    BreakerState,
    admit,
    record_failure,
    record_success,
)

# Redis, NATS, PostgreSQL and one per webhook host: a provider's endpoints share a host in the
# common case; 1,000 hosts is far beyond a node's providers, and bounds the metric's series.
BREAKERS_MAX = 1_000

STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
BREAKER_STATE = Gauge(
    "aex_circuit_breaker_state",
    "Circuit breaker state per outbound dependency: 0 closed, 1 half-open, 2 open",
    ["dependency"],
    # Several workers: the worst state any live worker's breaker is in (a worker that stopped
    # leaves the scrape, serve/notifications/events.py metrics_process_exit).
    multiprocess_mode="livemax",
)
BREAKER_TRIPS = Counter(
    "aex_circuit_breaker_trips",
    "Times a dependency's circuit breaker opened (5 failures in a row, or a failed probe)",
    ["dependency"],
)


OUTAGE_LOG_INTERVAL_S = 10.0
_outage_logged_at: dict[str, float] = {}


def log_failure(log: logging.Logger, what: str) -> None:
    """From an `except` in a background loop: a dependency outage is one warning line per
    `what` every OUTAGE_LOG_INTERVAL_S (not a traceback per poll); anything else is logged
    with its traceback."""
    error = sys.exc_info()[1]
    if not isinstance(error, DependencyUnavailable):
        log.exception(what)
        return
    now_s = time.monotonic()
    if now_s - _outage_logged_at.get(what, -math.inf) >= OUTAGE_LOG_INTERVAL_S:
        _outage_logged_at[what] = now_s
        log.warning("%s: %s", what, error)


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class DependencyUnavailable(Exception):
    """A call to a dependency the exchange cannot do without (PostgreSQL) failed, or was refused
    by its open breaker: the request fails fast, rendered as a 503 `dependency-unavailable`
    problem with `Retry-After` (serve/gateway/problems.py); nothing was written."""

    def __init__(self, dependency: str, retry_after_s: int) -> None:
        super().__init__(f"{dependency} unavailable (retry after {retry_after_s} s)")
        assert retry_after_s >= 1
        self.dependency = dependency
        self.retry_after_s = retry_after_s


class CircuitBreaker:
    """One dependency's breaker: `allow()` before a call, then `success()` or `failure()`."""

    def __init__(
        self,
        dependency: str,
        *,
        policy: BreakerPolicy = DEFAULT_BREAKER_POLICY,
        clock_ms: Callable[[], int] = monotonic_ms,
    ) -> None:
        self.dependency = dependency
        self.policy = policy
        self._clock_ms = clock_ms
        self._breaker = Breaker()
        self._lock = threading.Lock()
        BREAKER_STATE.labels(dependency).set(0)

    @property
    def state(self) -> BreakerState:
        return self._breaker.state

    @property
    def suspect(self) -> bool:
        """Not closed, or closed with failures counted: the dependency may be down."""
        breaker = self._breaker
        return breaker.state is not BreakerState.CLOSED or breaker.consecutive_failures > 0

    def retry_after_s(self) -> int:
        """Whole seconds until the breaker lets a probe through (at least 1)."""
        breaker = self._breaker
        if breaker.state is not BreakerState.OPEN:
            return 1
        left_ms = breaker.opened_at_ms + self.policy.open_ms - self._clock_ms()
        return max(1, math.ceil(left_ms / 1000))

    def allow(self) -> bool:
        breaker = self._breaker
        if breaker.state is BreakerState.CLOSED:
            return True  # the hot path: no lock, no clock
        with self._lock:
            self._breaker, allowed = admit(self._breaker, self.policy, now_ms=self._clock_ms())
            self._publish()
        return allowed

    def success(self) -> None:
        breaker = self._breaker
        if breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 0:
            return
        with self._lock:
            self._breaker = record_success(self._breaker)
            self._publish()

    def failure(self) -> None:
        with self._lock:
            before = self._breaker.state
            self._breaker = record_failure(self._breaker, self.policy, now_ms=self._clock_ms())
            if self._breaker.state is BreakerState.OPEN and before is not BreakerState.OPEN:
                BREAKER_TRIPS.labels(self.dependency).inc()
            self._publish()

    def _publish(self) -> None:
        BREAKER_STATE.labels(self.dependency).set(STATE_VALUE[self._breaker.state])


class BreakerRegistry:
    """The process's breakers by dependency name, made on first use, at most BREAKERS_MAX."""

    def __init__(
        self,
        *,
        policy: BreakerPolicy = DEFAULT_BREAKER_POLICY,
        clock_ms: Callable[[], int] = monotonic_ms,
    ) -> None:
        self._policy = policy
        self._clock_ms = clock_ms
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, dependency: str) -> CircuitBreaker:
        found = self._breakers.get(dependency)
        if found is not None:
            return found
        with self._lock:
            found = self._breakers.get(dependency)
            if found is None:
                if len(self._breakers) >= BREAKERS_MAX:
                    dependency = "overflow"  # past the cap, unknown hosts share one breaker
                    found = self._breakers.get(dependency)
                if found is None:
                    found = CircuitBreaker(dependency, policy=self._policy, clock_ms=self._clock_ms)
                    self._breakers[dependency] = found
        return found

    def states(self) -> dict[str, str]:
        return {name: breaker.state.value for name, breaker in sorted(self._breakers.items())}

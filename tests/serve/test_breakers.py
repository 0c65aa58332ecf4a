"""Circuit breakers on outbound dependencies (serve/breakers.py over aex/core/breaker.py): the
spec's 5 failures trip, 10 s open, one half-open probe; state on /metrics and /ready. Redis is
the first dependency behind one: real Redis, and a real closed loopback port for a dead one."""

from __future__ import annotations

import socket
import threading
import uuid

import httpx
import redis
from prometheus_client import REGISTRY

from aex.core import BreakerState
from serve.breakers import BREAKERS_MAX, BreakerRegistry, CircuitBreaker
from serve.stores.redis_shared import FAIL_OPEN, RedisRateLimiter, redis_client

NOW_S = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now_ms = 0

    def __call__(self) -> int:
        return self.now_ms


def gauge(dependency: str) -> float | None:
    return REGISTRY.get_sample_value("aex_circuit_breaker_state", {"dependency": dependency})


def trips(dependency: str) -> float:
    value = REGISTRY.get_sample_value("aex_circuit_breaker_trips_total", {"dependency": dependency})
    return value or 0.0


def test_a_breaker_trips_after_five_failures_and_reports_it_on_metrics() -> None:
    clock, name = FakeClock(), f"test-{uuid.uuid4().hex[:8]}"
    breaker = CircuitBreaker(name, clock_ms=clock)
    for _ in range(5):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state is BreakerState.OPEN
    assert gauge(name) == 2
    assert trips(name) == 1
    assert not breaker.allow()
    clock.now_ms = 10_000
    assert breaker.allow()  # the probe
    assert gauge(name) == 1
    assert not breaker.allow()
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert gauge(name) == 0


class HangUpServer:
    """A real TCP listener on loopback that accepts each connection and closes it at once: a
    broken Redis whose connection attempts can be counted."""

    def __init__(self) -> None:
        self.accepted = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self._socket.close()


def test_a_broken_redis_is_asked_five_times_then_not_until_the_probe() -> None:
    clock, broken = FakeClock(), HangUpServer()
    circuit = CircuitBreaker("redis", clock_ms=clock)
    client = redis.Redis(host="127.0.0.1", port=broken.port, socket_timeout=0.25, retry=None)
    limiter = RedisRateLimiter(client, prefix="x:", circuit=circuit)
    before = FAIL_OPEN.labels("rate_limit")._value.get()
    try:
        for _ in range(20):
            assert limiter.acquire("t", per_minute=1, burst=1, now_s=NOW_S).allowed  # fail-open
        assert circuit.state is BreakerState.OPEN
        asked = broken.accepted
        assert 5 <= asked <= 10  # five failed calls (a client may reconnect once inside one)
        assert FAIL_OPEN.labels("rate_limit")._value.get() == before + 20
        clock.now_ms = 10_000
        assert limiter.acquire("t", per_minute=1, burst=1, now_s=NOW_S).allowed
        assert broken.accepted > asked  # one probe went out, and failed: open again
        assert circuit.state is BreakerState.OPEN
    finally:
        broken.close()


def test_a_successful_probe_against_a_live_redis_closes_the_breaker() -> None:
    clock = FakeClock()
    circuit = CircuitBreaker("redis", clock_ms=clock)
    for _ in range(5):
        circuit.failure()
    limiter = RedisRateLimiter(
        redis_client("redis://127.0.0.1:6379/0"), prefix=f"t{uuid.uuid4().hex}:", circuit=circuit
    )
    clock.now_ms = 10_000
    limiter.acquire("t", per_minute=60, burst=5, now_s=NOW_S)
    assert circuit.state is BreakerState.CLOSED


def test_webhook_hosts_past_the_cap_share_one_breaker() -> None:
    registry = BreakerRegistry()
    for n in range(BREAKERS_MAX + 10):
        registry.get(f"webhook:h{n}.example")
    assert len(registry.states()) == BREAKERS_MAX + 1
    assert registry.get("webhook:another.example") is registry.get("overflow")


def test_ready_reports_the_database_and_every_breaker(client: httpx.Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok"}
    assert set(body["breakers"].values()) <= {"CLOSED", "HALF_OPEN", "OPEN"}

"""The GCRA limiter with an injected clock: burst, steady rate, reset and Retry-After."""

from __future__ import annotations

from serve.stores.memory import GcraRateLimiter


def test_burst_is_allowed_then_one_request_per_interval() -> None:
    limiter = GcraRateLimiter()
    now_s = 1_000.0
    decisions = [limiter.acquire("t", per_minute=60, burst=5, now_s=now_s) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert decisions[-1].retry_after_s == 1
    assert limiter.acquire("t", per_minute=60, burst=5, now_s=now_s + 1.0).allowed
    assert not limiter.acquire("t", per_minute=60, burst=5, now_s=now_s + 1.0).allowed


def test_buckets_are_independent_and_refill_fully() -> None:
    limiter = GcraRateLimiter()
    for _ in range(5):
        limiter.acquire("a", per_minute=60, burst=5, now_s=0.0)
    assert limiter.acquire("b", per_minute=60, burst=5, now_s=0.0).allowed
    refilled = limiter.acquire("a", per_minute=60, burst=5, now_s=10.0)
    assert (refilled.allowed, refilled.remaining) == (True, 4)


def test_daily_counter_counts_per_day() -> None:
    limiter = GcraRateLimiter()
    assert [limiter.count_today("t", day=1) for _ in range(3)] == [1, 2, 3]
    assert limiter.count_today("t", day=2) == 1

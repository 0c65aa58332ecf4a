"""In-process implementations: the GCRA rate limiter and the TTL key cache.

GCRA (the generic cell rate algorithm, as in ATM networks and redis-cell): each bucket keeps
one number, its theoretical arrival time (TAT). The emission interval is T = 60 s / limit and
the tolerance is burst × T: a request at `now` is allowed when max(TAT, now) + T − now ≤
burst × T, and then TAT becomes max(TAT, now) + T. It needs no timers, no per-request
history, and one compare-and-set per request: the Redis limiter runs the same arithmetic in a
Lua script. `X-RateLimit-Remaining` is how many requests would be allowed right now,
`X-RateLimit-Reset` the epoch second at which the bucket is full again.
"""

from __future__ import annotations

import math
import threading

from serve.stores.base import CredentialMatch, RateDecision

# Buckets kept per process before idle ones are swept; a sweep drops full buckets only.
_BUCKETS_SWEEP_AT = 100_000


US_PER_S = 1_000_000


def gcra_interval_us(per_minute: int, burst: int) -> tuple[int, int]:
    """The emission interval T and the tolerance burst × T, in integer microseconds.

    Integers, not float seconds: at epoch magnitudes (1.8e9 s) a float loses ~1e-7 s, enough
    to refuse a first request with burst 1 or to misreport `remaining`.
    """
    interval_us = max(1, 60 * US_PER_S // per_minute)  # at most a million requests per second
    return interval_us, burst * interval_us


def gcra_decision(
    allowed: bool, tat_us: int, new_tat_us: int, now_us: int, *, per_minute: int, burst: int
) -> RateDecision:
    """The headers' numbers from one GCRA step (shared by the in-process and Redis limiters)."""
    interval_us, tolerance_us = gcra_interval_us(per_minute, burst)
    remaining = max(0, (tolerance_us - (tat_us - now_us)) // interval_us)
    retry_after_s = 0 if allowed else math.ceil((new_tat_us - tolerance_us - now_us) / US_PER_S)
    return RateDecision(
        allowed=allowed,
        limit=per_minute,
        remaining=remaining,
        reset_epoch_s=math.ceil(tat_us / US_PER_S),
        retry_after_s=max(retry_after_s, 0 if allowed else 1),
    )


class GcraRateLimiter:
    def __init__(self) -> None:
        self._tat_us: dict[str, int] = {}
        self._daily: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def acquire(self, bucket: str, *, per_minute: int, burst: int, now_s: float) -> RateDecision:
        assert per_minute > 0
        assert burst > 0
        interval_us, tolerance_us = gcra_interval_us(per_minute, burst)
        now_us = round(now_s * US_PER_S)
        with self._lock:
            tat_us = max(self._tat_us.get(bucket, now_us), now_us)
            new_tat_us = tat_us + interval_us
            allowed = new_tat_us - now_us <= tolerance_us
            if allowed:
                self._tat_us[bucket] = new_tat_us
                tat_us = new_tat_us
            if len(self._tat_us) > _BUCKETS_SWEEP_AT:
                self._sweep(now_us)
        return gcra_decision(
            allowed, tat_us, new_tat_us, now_us, per_minute=per_minute, burst=burst
        )

    def count_today(self, bucket: str, *, day: int) -> int:
        with self._lock:
            count = self._daily.get((bucket, day), 0) + 1
            self._daily[(bucket, day)] = count
            if len(self._daily) > _BUCKETS_SWEEP_AT:
                self._daily = {k: v for k, v in self._daily.items() if k[1] >= day}
            return count

    def _sweep(self, now_us: int) -> None:
        self._tat_us = {b: tat for b, tat in self._tat_us.items() if tat > now_us}


class TtlKeyCache:
    """Validated credentials for `ttl_s` (the spec's 5 minutes); `clear` on any revocation."""

    def __init__(self, ttl_s: float, *, entries_max: int = 100_000) -> None:
        assert ttl_s > 0
        self._ttl_s = ttl_s
        self._entries_max = entries_max
        self._entries: dict[str, tuple[float, CredentialMatch]] = {}

    def get(self, digest: str, *, now_s: float) -> CredentialMatch | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] <= now_s:
            return None
        return entry[1]

    def put(self, digest: str, match: CredentialMatch, *, now_s: float) -> None:
        if len(self._entries) >= self._entries_max:
            self._entries.clear()
        self._entries[digest] = (now_s + self._ttl_s, match)

    def clear(self) -> None:
        self._entries.clear()

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


class GcraRateLimiter:
    def __init__(self) -> None:
        self._tat_s: dict[str, float] = {}
        self._daily: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def acquire(self, bucket: str, *, per_minute: int, burst: int, now_s: float) -> RateDecision:
        assert per_minute > 0
        assert burst > 0
        interval_s = 60.0 / per_minute
        tolerance_s = burst * interval_s
        with self._lock:
            tat_s = max(self._tat_s.get(bucket, now_s), now_s)
            new_tat_s = tat_s + interval_s
            allowed = new_tat_s - now_s <= tolerance_s + 1e-9
            if allowed:
                self._tat_s[bucket] = new_tat_s
                tat_s = new_tat_s
            if len(self._tat_s) > _BUCKETS_SWEEP_AT:
                self._sweep(now_s)
        remaining = max(0, math.floor((tolerance_s - (tat_s - now_s)) / interval_s + 1e-9))
        retry_after_s = 0 if allowed else math.ceil(new_tat_s - tolerance_s - now_s)
        return RateDecision(
            allowed=allowed,
            limit=per_minute,
            remaining=remaining,
            reset_epoch_s=math.ceil(tat_s),
            retry_after_s=max(retry_after_s, 0 if allowed else 1),
        )

    def count_today(self, bucket: str, *, day: int) -> int:
        with self._lock:
            count = self._daily.get((bucket, day), 0) + 1
            self._daily[(bucket, day)] = count
            if len(self._daily) > _BUCKETS_SWEEP_AT:
                self._daily = {k: v for k, v in self._daily.items() if k[1] >= day}
            return count

    def _sweep(self, now_s: float) -> None:
        self._tat_s = {b: tat for b, tat in self._tat_s.items() if tat > now_s}


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

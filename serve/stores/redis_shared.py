"""Shared state in Redis for several server processes: the GCRA rate limiter and the key cache.

`RedisRateLimiter` implements RateLimitStore with the same arithmetic as the in-process
`GcraRateLimiter` (serve/stores/memory.py), run atomically inside Redis by one Lua script: the
bucket's theoretical arrival time (TAT, integer microseconds) is read, compared and written in
one step, so every process shares one limit exactly. The daily request counter is an INCR
with a two-day expiry.

`RedisKeyCache` implements KeyCache: validated credentials for 5 minutes, shared by every
process. Entries are keyed by the store's credentials epoch as well as the key digest; every
revocation, suspension or plan change bumps the epoch (in the database, in the same
transaction), each process notices on its next request (the Authenticator reads the epoch on
every request and calls `clear`), and from then on reads and writes entries of the new epoch
only: a revoked key is refused by every process at once, and an entry written from a read that
raced the revocation lives under the old epoch, where nobody reads any more.

Both fail open (the spec: with Redis down, requests are allowed): any Redis error allows the
request (or misses the cache), logs a warning (at most one per `FAIL_OPEN_LOG_INTERVAL_S`) and
counts `aex_redis_fail_open_total{operation}`. Calls go through the process's `redis` circuit
breaker (serve/breakers.py: 5 failures in a row open it for 10 s, then one probe), so a dead
Redis costs at most five timeouts, then none per request until the probe.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import redis
from prometheus_client import Counter

from serve.breakers import CircuitBreaker
from serve.stores.base import CredentialMatch, RateDecision
from serve.stores.memory import US_PER_S, gcra_decision, gcra_interval_us

REDIS_SOCKET_TIMEOUT_S = 0.25
FAIL_OPEN_LOG_INTERVAL_S = 10.0
DAILY_COUNTER_TTL_S = 2 * 86_400
LOCAL_ENTRIES_MAX = 100_000

FAIL_OPEN = Counter(
    "aex_redis_fail_open",
    "Requests served without Redis (rate limit allowed, key cache missed): Redis unreachable",
    ["operation"],
)
_log = logging.getLogger("aex.redis")

# GCRA, as GcraRateLimiter.acquire, in integer microseconds (exact in Lua's doubles).
# KEYS[1]: the bucket's TAT key, KEYS[2]: its daily counter. ARGV: now_us, interval_us,
# tolerance_us, the counter's TTL in seconds. An allowed request also counts for the day (the
# gateway asks `count_today` right after: one round trip for both).
# Returns {allowed (0|1), tat_us after the decision, new_tat_us asked for, today's count}.
_GCRA_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now <= tolerance then
  local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
  local count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4])) end
  return {1, new_tat, new_tat, count}
end
return {0, tat, new_tat, 0}
"""
_DAY_S = 86_400


class _Breaker:
    """Fail-open bookkeeping shared by the limiter and the cache of one process, over the
    process's `redis` circuit breaker."""

    def __init__(self, circuit: CircuitBreaker | None = None) -> None:
        self.circuit = circuit or CircuitBreaker("redis")
        self._logged_at_s = -math.inf
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        return not self.circuit.allow()

    def succeeded(self) -> None:
        self.circuit.success()

    def failed(self, operation: str, error: Exception | None) -> None:
        FAIL_OPEN.labels(operation).inc()
        if error is not None:
            self.circuit.failure()
        now_s = time.monotonic()
        with self._lock:
            if now_s - self._logged_at_s < FAIL_OPEN_LOG_INTERVAL_S:
                return
            self._logged_at_s = now_s
        _log.warning("redis unavailable, failing open (%s): %s", operation, error or "breaker")


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
    )


class RedisRateLimiter:
    """RateLimitStore shared by every process through Redis; fails open."""

    def __init__(
        self, client: redis.Redis, *, prefix: str = "aex:", circuit: CircuitBreaker | None = None
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._script: Any = client.register_script(_GCRA_LUA)
        self.breaker = _Breaker(circuit)
        # (bucket, day) -> count, from the last allowed `acquire` of this thread: the gateway
        # calls `count_today` right after `acquire`, with no await in between.
        self._counted = threading.local()

    def acquire(self, bucket: str, *, per_minute: int, burst: int, now_s: float) -> RateDecision:
        assert per_minute > 0
        assert burst > 0
        interval_us, tolerance_us = gcra_interval_us(per_minute, burst)
        now_us = round(now_s * US_PER_S)
        if self.breaker.is_open():
            self.breaker.failed("rate_limit", None)
            return _allowed(per_minute, burst, now_s)
        day = int(now_s // _DAY_S)
        keys = [f"{self._prefix}rl:{bucket}", self._day_key(bucket, day)]
        try:
            reply = self._script(
                keys=keys, args=[now_us, interval_us, tolerance_us, DAILY_COUNTER_TTL_S]
            )
        except redis.RedisError as error:
            self.breaker.failed("rate_limit", error)
            return _allowed(per_minute, burst, now_s)
        self.breaker.succeeded()
        allowed, tat_us, new_tat_us, count = (int(value) for value in reply)
        self._counted.last = (bucket, day, count) if allowed else None
        return gcra_decision(
            bool(allowed), tat_us, new_tat_us, now_us, per_minute=per_minute, burst=burst
        )

    def _day_key(self, bucket: str, day: int) -> str:
        return f"{self._prefix}day:{bucket}:{day}"

    def count_today(self, bucket: str, *, day: int) -> int:
        last = getattr(self._counted, "last", None)
        self._counted.last = None
        if last is not None and last[:2] == (bucket, day):
            return int(last[2])  # counted by the acquire just before
        if self.breaker.is_open():
            self.breaker.failed("daily_count", None)
            return 0
        key = self._day_key(bucket, day)
        try:
            pipeline = self._client.pipeline(transaction=True)
            pipeline.incr(key)
            pipeline.expire(key, DAILY_COUNTER_TTL_S)
            count, _ = pipeline.execute()
        except redis.RedisError as error:
            self.breaker.failed("daily_count", error)
            return 0
        self.breaker.succeeded()
        return int(count)


def _allowed(per_minute: int, burst: int, now_s: float) -> RateDecision:
    return RateDecision(True, per_minute, burst, math.ceil(now_s), 0)


class RedisKeyCache:
    """KeyCache shared by every process: entries per (credentials epoch, digest); fails open."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_s: float,
        epoch: Callable[[], int],
        prefix: str = "aex:",
        breaker: _Breaker | None = None,
    ) -> None:
        assert ttl_s > 0
        self._client = client
        self._ttl_ms = int(ttl_s * 1000)
        self._epoch_source = epoch
        self._epoch = epoch()
        self._prefix = prefix
        self._breaker = breaker or _Breaker()
        # An in-process copy, keyed by epoch as Redis is: exactly as valid as the shared entry.
        self._local: dict[tuple[int, str], tuple[float, CredentialMatch]] = {}

    def _key(self, digest: str) -> str:
        return f"{self._prefix}kc:{self._epoch}:{digest}"

    def get(self, digest: str, *, now_s: float) -> CredentialMatch | None:
        local = self._local.get((self._epoch, digest))
        if local is not None and local[0] > now_s:
            return local[1]
        if self._breaker.is_open():
            return None
        try:
            raw = self._client.get(self._key(digest))
        except redis.RedisError as error:
            self._breaker.failed("key_cache", error)
            return None
        self._breaker.succeeded()
        if raw is None:
            return None
        match = msgspec.json.decode(raw, type=CredentialMatch)
        self._remember(digest, match, now_s)
        return match

    def _remember(self, digest: str, match: CredentialMatch, now_s: float) -> None:
        if len(self._local) >= LOCAL_ENTRIES_MAX:
            self._local.clear()
        self._local[(self._epoch, digest)] = (now_s + self._ttl_ms / 1000, match)

    def put(self, digest: str, match: CredentialMatch, *, now_s: float) -> None:
        self._remember(digest, match, now_s)
        if self._breaker.is_open():
            return
        try:
            self._client.set(self._key(digest), msgspec.json.encode(match), px=self._ttl_ms)
        except redis.RedisError as error:
            self._breaker.failed("key_cache", error)
            return
        self._breaker.succeeded()

    def forget(self, digest: str) -> None:
        """Deletes one entry (of the current epoch) at once, e.g. right after a revocation."""
        self._local.pop((self._epoch, digest), None)
        try:
            self._client.delete(self._key(digest))
        except redis.RedisError as error:
            self._breaker.failed("key_cache", error)

    def clear(self) -> None:
        # The epoch moved: read it now (at least as new as the one the caller saw), and use
        # entries of that epoch only. Old entries expire on their own.
        self._epoch = self._epoch_source()
        self._local.clear()

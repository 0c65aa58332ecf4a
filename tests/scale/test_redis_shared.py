"""The Redis limiter and key cache in-process: the same decisions as the in-process GCRA,
one limit across two clients, fail-open with a counted metric when Redis is unreachable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from aex.core import Plan
from serve.stores.base import CredentialMatch, KeyRecord, TenantRecord
from serve.stores.memory import GcraRateLimiter
from serve.stores.redis_shared import FAIL_OPEN, RedisKeyCache, RedisRateLimiter, redis_client
from tests.serve.server import TEST_REDIS_URL, free_port

pytestmark = pytest.mark.services


@pytest.fixture
def prefix() -> Iterator[str]:
    chosen = f"aex_test_{uuid.uuid4().hex[:16]}:"
    yield chosen
    client = redis.Redis.from_url(TEST_REDIS_URL)
    keys = list(client.scan_iter(match=chosen + "*"))
    if keys:
        client.delete(*keys)


@settings(max_examples=15, deadline=None)
@given(
    per_minute=st.integers(1, 600),
    burst=st.integers(1, 20),
    gaps_ms=st.lists(st.integers(0, 5_000), min_size=1, max_size=30),
)
def test_redis_gcra_decides_as_the_in_process_gcra(
    per_minute: int, burst: int, gaps_ms: list[int]
) -> None:
    bucket = f"aex_test_{uuid.uuid4().hex}:"
    shared = RedisRateLimiter(redis_client(TEST_REDIS_URL), prefix=bucket)
    local = GcraRateLimiter()
    now_ms = 1_800_000_000_000
    burst = min(burst, per_minute)
    for gap_ms in gaps_ms:
        now_ms += gap_ms
        remote = shared.acquire("b", per_minute=per_minute, burst=burst, now_s=now_ms / 1000)
        here = local.acquire("b", per_minute=per_minute, burst=burst, now_s=now_ms / 1000)
        assert remote.allowed == here.allowed
        assert remote.remaining == here.remaining
        assert abs(remote.reset_epoch_s - here.reset_epoch_s) <= 1
        assert abs(remote.retry_after_s - here.retry_after_s) <= 1


def test_two_clients_share_one_bucket(prefix: str) -> None:
    first = RedisRateLimiter(redis_client(TEST_REDIS_URL), prefix=prefix)
    second = RedisRateLimiter(redis_client(TEST_REDIS_URL), prefix=prefix)
    now_s = 1_800_000_000.0
    decisions = [
        (first if n % 2 else second).acquire("t", per_minute=60, burst=5, now_s=now_s)
        for n in range(6)
    ]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert decisions[-1].retry_after_s == 1


def test_unreachable_redis_fails_open_and_counts() -> None:
    dead = RedisRateLimiter(redis_client(f"redis://127.0.0.1:{free_port()}/0"), prefix="x:")
    before = FAIL_OPEN.labels("rate_limit")._value.get()
    for _ in range(3):
        decision = dead.acquire("t", per_minute=1, burst=1, now_s=1_800_000_000.0)
        assert decision.allowed
    assert dead.count_today("t", day=1) == 0
    assert FAIL_OPEN.labels("rate_limit")._value.get() == before + 3


def test_key_cache_entries_follow_the_credentials_epoch(prefix: str) -> None:
    epoch = [7]
    client = redis_client(TEST_REDIS_URL)
    writer = RedisKeyCache(client, ttl_s=300, epoch=lambda: epoch[0], prefix=prefix)
    reader = RedisKeyCache(client, ttl_s=300, epoch=lambda: epoch[0], prefix=prefix)
    tenant = TenantRecord("ten_0000000000000001", "Acme", "BOTH", Plan.EXPLORER, "ACTIVE", 1)
    key = KeyRecord("key_0000000000000001", tenant.tenant_id, "TENANT", "d" * 64, "aexk_", 1)
    match = CredentialMatch(key, tenant)
    writer.put("d" * 64, match, now_s=0)
    assert reader.get("d" * 64, now_s=0) == match  # shared between processes
    epoch[0] = 8  # a revocation committed somewhere
    reader.clear()  # what the Authenticator does when it sees the epoch move
    assert reader.get("d" * 64, now_s=0) is None
    writer.forget("d" * 64)
    assert writer.get("d" * 64, now_s=0) is None

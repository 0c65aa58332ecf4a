"""Rate limiting with a test-only low limit: headers on every response and 429 + Retry-After."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.server import BACKENDS, Backend, Server

PER_MINUTE = 6
BURST = 3


@pytest.fixture(scope="module", params=BACKENDS)
def limited(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    backend = Backend(request.param)  # the in-process GCRA, or the Redis one (same arithmetic)
    env = {
        **backend.env,
        "AEX_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
        "AEX_RATE_LIMIT_BURST": str(BURST),
        "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "600",
    }
    server = Server(tmp_path_factory.mktemp("limited") / "data", env=env).start()
    yield server
    server.stop()
    backend.cleanup()


def test_burst_then_429_with_retry_after(limited: Server) -> None:
    with httpx.Client(base_url=limited.url) as client:
        key = client.post("/v1/tenants", json={"name": "A", "type": "CONSUMER"}).json()["api_key"]
        other = client.post("/v1/tenants", json={"name": "B", "type": "CONSUMER"}).json()
        headers = {"X-API-Key": key}
        answers = [client.get("/v1/tenants/me", headers=headers) for _ in range(BURST + 1)]
        assert [a.status_code for a in answers] == [200] * BURST + [429]
        for answer in answers:
            assert answer.headers["x-ratelimit-limit"] == str(PER_MINUTE)
            assert int(answer.headers["x-ratelimit-reset"]) > 0
        assert [int(a.headers["x-ratelimit-remaining"]) for a in answers] == [2, 1, 0, 0]
        refused = answers[-1]
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("/rate-limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 60 // PER_MINUTE
        # Limits are per tenant: tenant B is untouched by A's burst.
        assert (
            client.get("/v1/tenants/me", headers={"X-API-Key": other["api_key"]}).status_code == 200
        )


def test_unauthenticated_routes_carry_the_headers_too(limited: Server, tmp_path: Path) -> None:
    with httpx.Client(base_url=limited.url) as client:
        response = client.get("/v1/crl")  # /health and /ready are never limited
        assert response.headers["x-ratelimit-limit"] == "600"
        assert "x-ratelimit-remaining" in response.headers


@pytest.fixture(scope="module")
def daily_limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"AEX_REQUESTS_PER_DAY": "5", "AEX_REQUEST_TIMEOUT_S": "1.5"}
    server = Server(tmp_path_factory.mktemp("daily") / "data", env=env).start()
    yield server
    server.stop()


def test_daily_quota_answers_429_naming_the_quota(daily_limited: Server) -> None:
    with httpx.Client(base_url=daily_limited.url) as client:
        key = client.post("/v1/tenants", json={"name": "D", "type": "CONSUMER"}).json()["api_key"]
        answers = [client.get("/v1/keys", headers={"X-API-Key": key}) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        problem = answers[-1].json()
        assert problem["type"].endswith("/daily-quota-exceeded")
        assert problem["errors"] == [
            {"field": "requests_per_day", "reason": "daily_quota_exceeded"}
        ]
        assert 0 < int(answers[-1].headers["retry-after"]) <= 86_400


def test_a_request_over_the_timeout_answers_504(daily_limited: Server) -> None:
    with httpx.Client(base_url=daily_limited.url, timeout=30) as client:

        def trickle() -> Iterator[bytes]:  # a body that takes 4 s to arrive
            for part in (b'{"name": ', b'"slow", ', b'"type": "CONSUMER"}'):
                yield part
                time.sleep(2)

        response = client.post(
            "/v1/tenants", content=trickle(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 504
    assert response.json()["type"].endswith("/timeout")

"""Rate limiting with a test-only low limit: headers on every response and 429 + Retry-After."""

from __future__ import annotations

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
        response = client.get("/health")
        assert response.headers["x-ratelimit-limit"] == "600"
        assert "x-ratelimit-remaining" in response.headers

"""X-Forwarded-For is believed only from AEX_TRUSTED_PROXIES (default: none), over a real
`aex serve` (uvicorn): a client rotating the header cannot escape the per-address limit on
bad-key guesses, while a server told that 127.0.0.1 is its proxy does honour the header."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from aex.commands.serve import proxy_options
from tests.serve.server import Server

ANONYMOUS_PER_MINUTE = 5
GUESSES = 4 * ANONYMOUS_PER_MINUTE


def limited_env(**extra: str) -> dict[str, str]:
    # FORWARDED_ALLOW_IPS is uvicorn's own knob: the setting must win over it too.
    return {
        "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE": str(ANONYMOUS_PER_MINUTE),
        "FORWARDED_ALLOW_IPS": "*",
        **extra,
    }


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("xff-default") / "data", env=limited_env())
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = limited_env(AEX_TRUSTED_PROXIES="127.0.0.1")
    server = Server(tmp_path_factory.mktemp("xff-proxy") / "data", env=env)
    yield server.start()
    server.stop()


def guess_with_rotating_forwarded_for(server: Server) -> list[int]:
    statuses = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for n in range(GUESSES):
            guess = {"X-API-Key": "aexk_" + secrets.token_hex(32)}
            forwarded = {"X-Forwarded-For": f"203.0.113.{n + 1}"}  # TEST-NET-3: never dialled
            statuses.append(client.get("/v1/keys", headers=guess | forwarded).status_code)
    return statuses


def test_rotating_forwarded_for_does_not_escape_the_guess_limit_by_default(
    default_server: Server,
) -> None:
    statuses = guess_with_rotating_forwarded_for(default_server)
    assert set(statuses) == {401, 429}
    assert statuses.count(401) <= ANONYMOUS_PER_MINUTE + 1  # one may drip in while guessing
    assert statuses[-1] == 429


def test_a_trusted_proxy_s_forwarded_for_names_the_client(behind_proxy: Server) -> None:
    # Each guess comes "from" another client through the trusted proxy: each has its own bucket.
    assert guess_with_rotating_forwarded_for(behind_proxy) == [401] * GUESSES


def test_uvicorn_gets_no_proxy_headers_without_a_trusted_proxy() -> None:
    assert proxy_options(()) == {"proxy_headers": False, "forwarded_allow_ips": ""}
    assert proxy_options(("10.0.0.0/8", "::1")) == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.0/8,::1",
    }

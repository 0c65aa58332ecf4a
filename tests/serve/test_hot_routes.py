"""The gateway's hot routes (serve/gateway/pipeline.py `HotRoute`): `GET /v1/balance` in its
plain case is answered without Litestar, and every answer is the one the Litestar route gives.

One exchange in this process (create_app under uvicorn on a thread, real SQLite and HTTP over
loopback), so that the test can switch its gateway's hot routes off and on between two sends
of the same request, and count the requests that reach Litestar.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serve.app import create_app
from serve.gateway.pipeline import Gateway
from serve.settings import Settings
from tests.serve.conftest import Tenant, sign_up
from tests.serve.market_helpers import provider
from tests.serve.server import JWT_SECRET, OPERATOR_KEY, TEST_ENV, in_process

# Headers that differ between two sends of one request whatever answers them.
VARYING = {"date", "x-ratelimit-remaining", "x-ratelimit-reset"}


@dataclass
class Exchange:
    url: str
    gateway: Gateway
    litestar_calls: list[str]

    def answer(self, client: httpx.Client, hot: bool, query: str, headers: dict[str, str]) -> Any:
        routes = self.gateway.hot_routes
        self.gateway.hot_routes = routes if hot else {}
        try:
            response = client.get("/v1/balance" + query, headers=headers)
        finally:
            self.gateway.hot_routes = routes
        kept = {k: v for k, v in response.headers.items() if k not in VARYING}
        return response.status_code, kept, response.content


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    data_dir = tmp_path_factory.mktemp("hot") / "data"
    app = create_app(Settings.from_env(data_dir=data_dir, env=TEST_ENV))
    assert isinstance(app, Gateway)
    calls: list[str] = []
    litestar = app.app

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            calls.append(f"{scope['method']} {scope['path']}?{scope['query_string'].decode()}")
        await litestar(scope, receive, send)

    app.app = counted
    with in_process(app) as url:
        yield Exchange(url, app, calls)


@pytest.fixture(scope="module")
def client(exchange: Exchange) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=exchange.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def funded(client: httpx.Client) -> Tenant:
    tenant = sign_up(client, "Hot Reader")
    for currency, amount in (("USD", "12.34"), ("EUR", "0.05")):
        body = {"tenant_id": tenant.tenant_id, "amount": amount, "currency": currency}
        response = client.post("/v1/deposits", json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
    return tenant


def _token(tenant: Tenant, scopes: list[str]) -> str:
    now_s = int(time.time())
    claims = {
        "tenant_id": tenant.tenant_id,
        "key_id": tenant.key_id,
        "jti": f"hot-{'-'.join(scopes)}",
        "scopes": scopes,
        "iss": "aex-identity",
        "iat": now_s,
        "exp": now_s + 600,
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def callers(client: httpx.Client, funded: Tenant) -> dict[str, dict[str, str]]:
    agent = provider(client, subscribe=False)
    return {
        "tenant key": funded.headers,
        "read token": {"Authorization": f"Bearer {_token(funded, ['read'])}"},
        "token without read": {"Authorization": f"Bearer {_token(funded, ['market'])}"},
        "provider key": agent.headers,
        "operator": {"X-API-Key": OPERATOR_KEY},
        "no credential": {},
        "unknown key": {"X-API-Key": "aexk_" + "0" * 64},
    }


QUERIES = (
    "",
    "?currency=USD",
    "?currency=EUR",
    "?currency=GBP",  # no wallet yet: zeros
    "?currency=XYZ",  # unknown currency: the route's 422
    "?currency=usd",
    "?currency=USDX",
    "?currency=",
    "?currency=USD&currency=EUR",
    "?x=1",
    "?currency=USD&x=1",
    "?currency=%55SD",  # percent-encoded: Litestar decodes it
)


@pytest.mark.parametrize("query", QUERIES)
def test_every_caller_and_query_gets_the_answer_of_the_litestar_route(
    exchange: Exchange, client: httpx.Client, callers: dict[str, dict[str, str]], query: str
) -> None:
    for name, credential in callers.items():
        headers = {**credential, "X-Request-ID": f"hot-{name.replace(' ', '-')}"}
        hot = exchange.answer(client, True, query, headers)
        plain = exchange.answer(client, False, query, headers)
        assert hot == plain, (name, query)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(alphabet="currency=USDEURxy&%5+ ", max_size=24))
def test_any_query_string_gets_the_answer_of_the_litestar_route(
    exchange: Exchange, client: httpx.Client, funded: Tenant, query: str
) -> None:
    headers = {**funded.headers, "X-Request-ID": "hot-generated"}
    path = "?" + query if query else ""
    assert exchange.answer(client, True, path, headers) == exchange.answer(
        client, False, path, headers
    )


def test_the_plain_case_is_answered_without_litestar_and_the_rest_by_it(
    exchange: Exchange, client: httpx.Client, funded: Tenant, callers: dict[str, dict[str, str]]
) -> None:
    exchange.litestar_calls.clear()
    for query in ("", "?currency=EUR", "?currency=GBP"):
        response = client.get("/v1/balance" + query, headers=funded.headers)
        assert response.status_code == 200
    assert client.get("/v1/balance", headers=funded.headers).json()["available"] == "12.34"
    assert exchange.litestar_calls == []
    for query in ("?currency=XYZ", "?x=1"):
        assert client.get("/v1/balance" + query, headers=funded.headers).status_code == 422
    assert client.get("/v1/balance", headers=callers["provider key"]).status_code == 403
    assert client.get("/v1/balance", headers=callers["token without read"]).status_code == 403
    assert exchange.litestar_calls == [
        "GET /v1/balance?currency=XYZ",
        "GET /v1/balance?x=1",
        "GET /v1/balance?",
        "GET /v1/balance?",
    ]


def test_a_hot_answer_passes_through_the_whole_gateway(
    client: httpx.Client, funded: Tenant
) -> None:
    origin = TEST_ENV["AEX_CORS_ORIGINS"]
    response = client.get(
        "/v1/balance", headers={**funded.headers, "Origin": origin, "X-Request-ID": "hot-edge"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "hot-edge"
    assert response.headers["access-control-allow-origin"] == origin
    assert int(response.headers["x-ratelimit-limit"]) > 0
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)

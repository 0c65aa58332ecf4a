"""The cross-tenant matrix: tenant B's credentials (API key, JWT, provider key) against every
one of tenant A's resources always answer 403 or 404, and never contain A's data."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import jwt
import pytest

from tests.serve.conftest import Tenant, sign_up
from tests.serve.server import JWT_SECRET


@dataclass(frozen=True)
class World:
    a: Tenant
    a_provider_id: str
    a_subscription_id: str
    a_secrets: tuple[str, ...]
    b_credentials: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def world(client: httpx.Client, operator: dict[str, str]) -> World:
    a, b = sign_up(client, "Alpha"), sign_up(client, "Beta")
    for tenant in (a, b):
        client.put(
            f"/v1/admin/tenants/{tenant.tenant_id}/plan",
            json={"plan": "BUSINESS"},
            headers=operator,
        )
    agent = {"name": "A-bot", "type": "AI_AGENT", "capabilities": ["x"], "category": "T"}
    a_provider = client.post("/v1/providers/", json=agent, headers=a.headers).json()
    b_provider = client.post("/v1/providers/", json=agent, headers=b.headers).json()
    sub = client.post(
        "/v1/subscriptions/",
        json={"provider_id": a_provider["provider_id"], "categories": ["*"]},
        headers=a.headers,
    ).json()
    client.post(
        "/v1/deposits",
        json={"tenant_id": a.tenant_id, "amount": "123.45", "currency": "USD"},
        headers=a.headers,
    )
    now_s = int(time.time())
    b_jwt = jwt.encode(
        {
            "tenant_id": b.tenant_id,
            "key_id": b.key_id,
            "jti": "b-token",
            "scopes": ["read", "market", "providers", "wallets", "keys"],
            "iss": "aex-identity",
            "iat": now_s,
            "exp": now_s + 600,
        },
        JWT_SECRET,
        algorithm="HS256",
    )
    return World(
        a=a,
        a_provider_id=a_provider["provider_id"],
        a_subscription_id=sub["subscription_id"],
        a_secrets=(
            a.api_key,
            a_provider["api_key"],
            a_provider["api_secret"],
            a_provider["webhook_secret"],
        ),
        b_credentials={
            "b_api_key": b.headers,
            "b_jwt": {"Authorization": f"Bearer {b_jwt}"},
            "b_provider_key": {"X-API-Key": b_provider["api_key"]},
        },
    )


ATTACKS = [
    ("GET", "/v1/providers/{provider}", None),
    ("PATCH", "/v1/providers/{provider}", {"name": "pwned"}),
    ("POST", "/v1/providers/{provider}/webhook-secret", None),
    ("POST", "/v1/subscriptions/", {"provider_id": "{provider}", "categories": ["*"]}),
    ("DELETE", "/v1/subscriptions/{subscription}", None),
    ("DELETE", "/v1/keys/{key}", None),
    ("POST", "/v1/keys/{key}/rotate", None),
    ("POST", "/v1/deposits", {"tenant_id": "{tenant}", "amount": "1", "currency": "USD"}),
    ("POST", "/v1/withdrawals", {"tenant_id": "{tenant}", "amount": "1", "currency": "USD"}),
    ("POST", "/v1/admin/tenants/{tenant}/suspend", None),
    ("PUT", "/v1/admin/tenants/{tenant}/plan", {"plan": "EXPLORER"}),
]


def fill(template: object, world: World) -> object:
    values = {
        "provider": world.a_provider_id,
        "subscription": world.a_subscription_id,
        "key": world.a.key_id,
        "tenant": world.a.tenant_id,
    }
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {k: fill(v, world) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, world) for v in template]
    return template


@pytest.mark.parametrize("credential", ["b_api_key", "b_jwt", "b_provider_key"])
@pytest.mark.parametrize(("method", "path", "body"), ATTACKS)
def test_tenant_b_never_reaches_tenant_a(
    client: httpx.Client,
    world: World,
    credential: str,
    method: str,
    path: str,
    body: object,
) -> None:
    headers = {**world.b_credentials[credential], "X-Tenant-ID": world.a.tenant_id}
    response = client.request(
        method, str(fill(path, world)), json=fill(body, world), headers=headers
    )
    assert response.status_code in {403, 404}, (response.status_code, response.text)
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    # The problem echoes the path it was sent to (`instance`); nothing else may name A's data.
    rest = response.text.replace(problem["instance"], "")
    for marker in (world.a.tenant_id, world.a_provider_id, world.a_subscription_id, "123.45"):
        assert marker not in rest
    assert all(secret not in response.text for secret in world.a_secrets)


def test_tenant_a_is_untouched_after_the_matrix(
    client: httpx.Client, world: World, operator: dict[str, str]
) -> None:
    me = client.get("/v1/tenants/me", headers=world.a.headers).json()
    assert (me["status"], me["plan"]) == ("ACTIVE", "BUSINESS")
    provider = client.get(f"/v1/providers/{world.a_provider_id}", headers=world.a.headers).json()
    assert provider["name"] == "A-bot"
    balance = client.get("/v1/balance", headers=world.a.headers).json()
    assert balance["available"] == "123.45"
    assert len(client.get("/v1/subscriptions/", headers=world.a.headers).json()["data"]) == 1


@pytest.mark.parametrize("credential", ["b_api_key", "b_jwt", "b_provider_key"])
@pytest.mark.parametrize(
    "path", ["/v1/providers/", "/v1/subscriptions/", "/v1/keys", "/v1/transactions", "/v1/balance"]
)
def test_listings_show_b_nothing_of_a(
    client: httpx.Client, world: World, credential: str, path: str
) -> None:
    headers = {**world.b_credentials[credential], "X-Tenant-ID": world.a.tenant_id}
    response = client.get(path, headers=headers)
    assert response.status_code in {200, 403}
    for marker in (world.a.tenant_id, world.a_provider_id, world.a_subscription_id, "123.45"):
        assert marker not in response.text

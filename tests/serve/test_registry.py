"""Providers and subscriptions over real HTTP, with the max-agents quota."""

from __future__ import annotations

import re

import httpx

from tests.serve.conftest import Tenant, sign_up

AGENT = {
    "name": "CodeReviewBot",
    "type": "AI_AGENT",
    "capabilities": ["code_review", "security_audit"],
    "category": "TECHNOLOGY",
    "endpoint": "https://agent.example/hook",
}


def register(client: httpx.Client, tenant: Tenant) -> dict[str, str]:
    response = client.post("/v1/providers/", json=AGENT, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def business_tenant(client: httpx.Client, operator: dict[str, str]) -> Tenant:
    tenant = sign_up(client, "Agents Inc", "PROVIDER")
    path = f"/v1/admin/tenants/{tenant.tenant_id}/plan"
    assert client.put(path, json={"plan": "BUSINESS"}, headers=operator).status_code == 200
    return tenant


def test_registration_returns_key_and_secret_once(client: httpx.Client, tenant: Tenant) -> None:
    created = register(client, tenant)
    assert re.fullmatch(r"aex_pk_live_[0-9a-f]{64}", created["api_key"])
    assert re.fullmatch(r"aex_sk_live_[0-9a-f]{64}", created["api_secret"])
    assert re.fullmatch(r"aex_whsec_[0-9a-f]{64}", created["webhook_secret"])
    listed = client.get("/v1/providers/", headers=tenant.headers).json()["data"]
    assert [p["provider_id"] for p in listed] == [created["provider_id"]]
    assert created["api_secret"] not in str(listed)
    assert created["webhook_secret"] not in str(listed)
    assert created["api_key"] not in str(listed)


def test_only_the_owner_tenant_makes_a_new_webhook_secret(
    client: httpx.Client, tenant: Tenant
) -> None:
    created = register(client, tenant)
    path = f"/v1/providers/{created['provider_id']}/webhook-secret"
    by_provider = client.post(path, headers={"X-API-Key": created["api_key"]})
    assert by_provider.status_code == 403, by_provider.text
    renewed = client.post(path, headers=tenant.headers)
    assert renewed.status_code == 201, renewed.text
    assert renewed.json()["provider_id"] == created["provider_id"]
    assert re.fullmatch(r"aex_whsec_[0-9a-f]{64}", renewed.json()["webhook_secret"])
    assert renewed.json()["webhook_secret"] != created["webhook_secret"]
    assert renewed.headers["cache-control"] == "no-store"
    # A webhook secret is not a credential: the gateway refuses it like the api secret.
    for secret in (created["webhook_secret"], created["api_secret"]):
        refused = client.get("/v1/providers/", headers={"X-API-Key": secret})
        assert refused.status_code == 401
        assert refused.json()["type"].endswith("/credential-not-accepted")


def test_explorer_plan_allows_one_agent_then_403_naming_the_quota(
    client: httpx.Client, tenant: Tenant
) -> None:
    register(client, tenant)
    refused = client.post("/v1/providers/", json=AGENT, headers=tenant.headers)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/max-agents-exceeded")
    assert refused.json()["errors"] == [{"field": "max_agents", "reason": "max_agents_exceeded"}]


def test_owner_updates_a_provider_but_its_own_key_may_not(
    client: httpx.Client, operator: dict[str, str]
) -> None:
    tenant = business_tenant(client, operator)
    created = register(client, tenant)
    path = f"/v1/providers/{created['provider_id']}"
    updated = client.patch(path, json={"name": "Renamed"}, headers=tenant.headers)
    assert updated.status_code == 200
    assert updated.json()["name"] == "Renamed"
    assert updated.json()["capabilities"] == AGENT["capabilities"]
    by_key = client.patch(path, json={"name": "x"}, headers={"X-API-Key": created["api_key"]})
    assert by_key.status_code == 403
    assert client.get(path, headers=tenant.headers).json()["name"] == "Renamed"


def test_subscriptions_by_owner_or_provider_key(
    client: httpx.Client, operator: dict[str, str]
) -> None:
    tenant = business_tenant(client, operator)
    first, second = register(client, tenant), register(client, tenant)
    first_key = {"X-API-Key": first["api_key"]}
    body = {"provider_id": first["provider_id"], "categories": ["TECHNOLOGY"]}
    by_key = client.post(
        "/v1/subscriptions/", json={**body, "capabilities": ["code.*"]}, headers=first_key
    )
    assert by_key.status_code == 201
    by_owner = client.post(
        "/v1/subscriptions/",
        json={"provider_id": second["provider_id"], "categories": ["*"]},
        headers=tenant.headers,
    )
    assert by_owner.status_code == 201
    # The first provider's key sees and manages only its own provider's subscriptions.
    own = client.get("/v1/subscriptions/", headers=first_key).json()["data"]
    assert [s["subscription_id"] for s in own] == [by_key.json()["subscription_id"]]
    foreign = client.delete(
        f"/v1/subscriptions/{by_owner.json()['subscription_id']}", headers=first_key
    )
    assert foreign.status_code == 404
    cross = client.post(
        "/v1/subscriptions/", json={**body, "provider_id": second["provider_id"]}, headers=first_key
    )
    assert cross.status_code == 404
    assert len(client.get("/v1/subscriptions/", headers=tenant.headers).json()["data"]) == 2
    deleted = client.delete(
        f"/v1/subscriptions/{by_key.json()['subscription_id']}", headers=first_key
    )
    assert deleted.status_code == 204
    assert len(client.get("/v1/subscriptions/", headers=tenant.headers).json()["data"]) == 1


def test_bad_subscription_patterns_and_ids_are_refused(
    client: httpx.Client, tenant: Tenant
) -> None:
    created = register(client, tenant)
    bad = client.post(
        "/v1/subscriptions/",
        json={"provider_id": created["provider_id"], "categories": ["TECH*NOLOGY"]},
        headers=tenant.headers,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"].startswith("categories")
    assert client.get("/v1/providers/not-an-id", headers=tenant.headers).status_code == 404
    assert client.delete("/v1/subscriptions/sub_zz", headers=tenant.headers).status_code == 404

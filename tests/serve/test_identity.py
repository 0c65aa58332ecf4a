"""Tenants and keys over real HTTP: sign-up, list, create, rotate, revoke, operator actions."""

from __future__ import annotations

import re

import httpx

from tests.serve.conftest import Tenant, sign_up


def test_sign_up_answers_201_with_a_key_shown_once(client: httpx.Client) -> None:
    response = client.post("/v1/tenants", json={"name": "Acme Corp", "type": "CONSUMER"})
    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"aexk_[0-9a-f]{64}", body["api_key"])
    assert body["plan"] == "EXPLORER"
    assert body["status"] == "ACTIVE"
    keys = client.get("/v1/keys", headers={"X-API-Key": body["api_key"]}).json()["data"]
    assert [k["key_id"] for k in keys] == [body["key_id"]]
    assert all("api_key" not in k and body["api_key"] not in str(k) for k in keys)


def test_tenant_sees_itself(client: httpx.Client, tenant: Tenant) -> None:
    me = client.get("/v1/tenants/me", headers=tenant.headers).json()
    assert me["tenant_id"] == tenant.tenant_id


def test_a_new_key_works_and_a_revoked_key_is_refused_at_once(
    client: httpx.Client, tenant: Tenant
) -> None:
    created = client.post("/v1/keys", headers=tenant.headers)
    assert created.status_code == 201
    new_key = {"X-API-Key": created.json()["api_key"]}
    assert client.get("/v1/tenants/me", headers=new_key).status_code == 200  # now cached
    revoked = client.delete(f"/v1/keys/{created.json()['key_id']}", headers=tenant.headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at_ms"] is not None
    refused = client.get("/v1/tenants/me", headers=new_key)
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/credential-revoked")


def test_rotation_issues_a_new_key_and_revokes_the_old(client: httpx.Client) -> None:
    tenant = sign_up(client)
    rotated = client.post(f"/v1/keys/{tenant.key_id}/rotate", headers=tenant.headers)
    assert rotated.status_code == 201
    assert rotated.json()["replaces_key_id"] == tenant.key_id
    assert client.get("/v1/keys", headers=tenant.headers).status_code == 401
    fresh = {"X-API-Key": rotated.json()["api_key"]}
    keys = client.get("/v1/keys", headers=fresh).json()["data"]
    assert {k["key_id"]: k["revoked_at_ms"] is not None for k in keys} == {
        tenant.key_id: True,
        rotated.json()["key_id"]: False,
    }


def test_operator_suspends_and_reactivates_a_tenant(
    client: httpx.Client, operator: dict[str, str]
) -> None:
    tenant = sign_up(client)
    assert client.get("/v1/tenants/me", headers=tenant.headers).status_code == 200
    suspended = client.post(f"/v1/admin/tenants/{tenant.tenant_id}/suspend", headers=operator)
    assert suspended.json()["status"] == "SUSPENDED"
    blocked = client.get("/v1/tenants/me", headers=tenant.headers)
    assert blocked.status_code == 403
    assert blocked.json()["type"].endswith("/tenant-suspended")
    client.post(f"/v1/admin/tenants/{tenant.tenant_id}/reactivate", headers=operator)
    assert client.get("/v1/tenants/me", headers=tenant.headers).status_code == 200


def test_operator_sets_a_plan_and_lists_tenants(
    client: httpx.Client, operator: dict[str, str], tenant: Tenant
) -> None:
    changed = client.put(
        f"/v1/admin/tenants/{tenant.tenant_id}/plan", json={"plan": "BUSINESS"}, headers=operator
    )
    assert changed.status_code == 200
    assert changed.json()["plan"] == "BUSINESS"
    listed = client.get("/v1/admin/tenants/", headers=operator).json()["data"]
    assert tenant.tenant_id in {t["tenant_id"] for t in listed}


def test_operator_routes_refuse_tenant_keys(client: httpx.Client, tenant: Tenant) -> None:
    response = client.get("/v1/admin/tenants/", headers=tenant.headers)
    assert response.status_code == 403
    assert response.json()["type"].endswith("/operator-credential-required")
    suspend = client.post(f"/v1/admin/tenants/{tenant.tenant_id}/suspend", headers=tenant.headers)
    assert suspend.status_code == 403


def test_tenant_routes_refuse_the_operator_key(
    client: httpx.Client, operator: dict[str, str]
) -> None:
    response = client.get("/v1/keys", headers=operator)
    assert response.status_code == 403
    assert response.json()["type"].endswith("/tenant-credential-required")


def test_unknown_plan_and_unknown_tenant_are_refused(
    client: httpx.Client, operator: dict[str, str], tenant: Tenant
) -> None:
    bad_plan = client.put(
        f"/v1/admin/tenants/{tenant.tenant_id}/plan", json={"plan": "GOLD"}, headers=operator
    )
    assert bad_plan.status_code == 422
    assert bad_plan.json()["errors"][0]["field"] == "plan"
    missing = client.post("/v1/admin/tenants/ten_0000000000000000/suspend", headers=operator)
    assert missing.status_code == 404


def test_session_token_is_issued_and_accepted(client: httpx.Client, tenant: Tenant) -> None:
    issued = client.post("/v1/tokens", json={"ttl_s": 600}, headers=tenant.headers)
    assert issued.status_code == 200  # a token endpoint: nothing created, no Location
    assert "location" not in issued.headers
    bearer = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert client.get("/v1/tenants/me", headers=bearer).json()["tenant_id"] == tenant.tenant_id

"""Scopes over real HTTP (both backends): every route declares the scope it needs and the
docs' table is generated from those declarations; a JWT does only what its scopes allow,
mints nothing broader than itself, and dies with the API key it descends from."""

from __future__ import annotations

import httpx
import pytest

from tests.serve.conftest import Tenant
from tests.serve.server import OPERATOR_KEY
from tools.render_scopes import DOC, current_routes, rendered_doc

TENANT_SCOPES = ["read", "market", "providers", "wallets", "keys"]


def mint(client: httpx.Client, headers: dict[str, str], **body: object) -> httpx.Response:
    return client.post("/v1/tokens", json=body, headers=headers)


def bearer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json()["type"]).rsplit("/", 1)[-1]


def deposit(client: httpx.Client, tenant: Tenant, amount: str) -> None:
    body = {"tenant_id": tenant.tenant_id, "amount": amount, "currency": "USD"}
    assert client.post("/v1/deposits", json=body, headers=tenant.headers).status_code == 201


def available(client: httpx.Client, tenant: Tenant) -> str:
    return str(client.get("/v1/balance", headers=tenant.headers).json()["available"])


def test_every_route_declares_a_scope_and_the_docs_table_is_current() -> None:
    routes = current_routes()  # asserts that no route lacks a declaration
    assert {row.scope for row in routes} == {*TENANT_SCOPES, "operator", "public"}
    withdraw = [r for r in routes if (r.method, r.path) == ("POST", "/v1/withdrawals")]
    assert [r.scope for r in withdraw] == ["wallets"]
    assert all(r.scope == "operator" for r in routes if r.path.startswith("/v1/admin/"))
    # Regenerate with: .venv/bin/python -m tools.render_scopes
    assert DOC.read_text() == rendered_doc(DOC.read_text(), routes)


def test_a_read_token_reads_but_cannot_move_money_or_mint_credentials(
    client: httpx.Client, tenant: Tenant
) -> None:
    deposit(client, tenant, "50.00")
    issued = mint(client, tenant.headers, scopes=["read"], ttl_s=600)
    read = bearer(issued)
    assert client.get("/v1/balance", headers=read).status_code == 200
    assert client.get("/v1/keys", headers=read).status_code == 200
    attempts = [
        ("/v1/withdrawals", {"tenant_id": tenant.tenant_id, "amount": "50.00", "currency": "USD"}),
        ("/v1/deposits", {"tenant_id": tenant.tenant_id, "amount": "1.00", "currency": "USD"}),
        ("/v1/keys", None),
        ("/v1/tokens", {"scopes": ["*"]}),
        ("/v1/tokens", {"scopes": ["wallets"]}),
        ("/v1/work", {"title": "x"}),
        (
            "/v1/providers",
            {"name": "Bot", "type": "AI_AGENT", "capabilities": ["x"], "category": "T"},
        ),
    ]
    for path, body in attempts:
        refused = client.post(path, json=body, headers=read)
        assert refused.status_code == 403, (path, refused.text)
        assert problem_type(refused) == "insufficient-scope"
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert client.delete(f"/v1/keys/{tenant.key_id}", headers=read).status_code == 403
    assert available(client, tenant) == "50.00"
    assert len(client.get("/v1/keys", headers=tenant.headers).json()["data"]) == 1
    assert issued.json()["scopes"] == ["read"]


def test_a_token_mints_nothing_broader_than_itself(client: httpx.Client, tenant: Tenant) -> None:
    narrow = bearer(mint(client, tenant.headers, scopes=["keys", "read"], ttl_s=120))
    broader = mint(client, narrow, scopes=["wallets"])
    assert (broader.status_code, problem_type(broader)) == (403, "scope-not-held")
    assert broader.json()["errors"] == [{"field": "scopes", "reason": "scope_not_held"}]
    child = mint(client, narrow, scopes=["*"], ttl_s=3_600)
    assert child.status_code == 200, child.text
    assert child.json()["scopes"] == ["read", "keys"]  # "*": all the minter holds, no more
    assert child.json()["expires_in_s"] <= 120  # and it does not outlive its parent
    withdraw = {"tenant_id": tenant.tenant_id, "amount": "1.00", "currency": "USD"}
    assert client.post("/v1/withdrawals", json=withdraw, headers=bearer(child)).status_code == 403
    # A new API key holds every tenant scope: a token without all of them cannot mint one.
    key = client.post("/v1/keys", headers=narrow)
    assert (key.status_code, problem_type(key)) == (403, "scope-not-held")
    rotate = client.post(f"/v1/keys/{tenant.key_id}/rotate", headers=narrow)
    assert (rotate.status_code, problem_type(rotate)) == (403, "scope-not-held")
    assert len(client.get("/v1/keys", headers=tenant.headers).json()["data"]) == 1


@pytest.mark.parametrize(
    ("scopes", "status", "slug"),
    [
        (["admin"], 422, "scope-unknown"),
        (["operator"], 403, "scope-not-held"),
        (["read", "operator"], 403, "scope-not-held"),
        ([], 422, "scopes-empty"),
        (["READ"], 422, None),  # not a scope name at all: the wire schema refuses it
    ],
)
def test_tokens_are_refused_for_scopes_no_tenant_key_holds(
    client: httpx.Client, tenant: Tenant, scopes: list[str], status: int, slug: str | None
) -> None:
    refused = mint(client, tenant.headers, scopes=scopes)
    assert refused.status_code == status, refused.text
    if slug is not None:
        assert problem_type(refused) == slug
    assert all(e["field"].startswith("scopes") for e in refused.json()["errors"])


def test_the_docs_star_example_grants_every_scope_of_the_key(
    client: httpx.Client, tenant: Tenant
) -> None:
    issued = mint(client, tenant.headers, scopes=["*"], ttl_s=3600)  # docs/api.md, verbatim
    assert issued.status_code == 200, issued.text
    assert issued.json()["scopes"] == TENANT_SCOPES
    assert issued.json()["expires_in_s"] == 3600
    deposit(client, tenant, "5.00")
    withdraw = {"tenant_id": tenant.tenant_id, "amount": "5.00", "currency": "USD"}
    assert client.post("/v1/withdrawals", json=withdraw, headers=bearer(issued)).status_code == 201
    # A full token holds every tenant scope, so it may mint an API key.
    assert client.post("/v1/keys", headers=bearer(issued)).status_code == 201


def test_revoking_a_key_kills_every_token_it_minted(client: httpx.Client, tenant: Tenant) -> None:
    second = client.post("/v1/keys", headers=tenant.headers).json()
    second_headers = {"X-API-Key": second["api_key"]}
    token = bearer(mint(client, second_headers, scopes=["read", "keys"]))
    grandchild = bearer(mint(client, token, scopes=["read"]))  # minted by the token
    survivor = bearer(mint(client, tenant.headers, scopes=["read"]))
    for headers in (token, grandchild, survivor):
        assert client.get("/v1/tenants/me", headers=headers).status_code == 200
    revoked = client.delete(f"/v1/keys/{second['key_id']}", headers=tenant.headers)
    assert revoked.status_code == 200, revoked.text
    for headers in (token, grandchild):
        refused = client.get("/v1/tenants/me", headers=headers)
        assert (refused.status_code, problem_type(refused)) == (401, "credential-revoked")
    assert client.get("/v1/tenants/me", headers=survivor).status_code == 200
    # Rotation revokes the old key, and with it the tokens it minted.
    rotated = client.post(f"/v1/keys/{tenant.key_id}/rotate", headers=tenant.headers)
    assert rotated.status_code == 201, rotated.text
    assert client.get("/v1/tenants/me", headers=survivor).status_code == 401


def test_a_provider_key_holds_only_the_agents_scopes(client: httpx.Client, tenant: Tenant) -> None:
    provider = client.post(
        "/v1/providers",
        json={"name": "Bot", "type": "AI_AGENT", "capabilities": ["x"], "category": "T"},
        headers=tenant.headers,
    )
    assert provider.status_code == 201, provider.text
    agent = {"X-API-Key": provider.json()["api_key"]}
    assert client.get("/v1/subscriptions", headers=agent).status_code == 200  # read
    refused = {
        "/v1/tokens": {"scopes": ["read"]},  # keys: tenant keys only
        "/v1/keys": None,
        "/v1/withdrawals": {"tenant_id": tenant.tenant_id, "amount": "1.00", "currency": "USD"},
    }
    for path, body in refused.items():
        answer = client.post(path, json=body, headers=agent)
        assert answer.status_code == 403, (path, answer.text)
        assert problem_type(answer) == "insufficient-scope"


def test_the_operator_key_is_also_accepted_as_a_bearer(client: httpx.Client) -> None:
    as_bearer = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    assert client.get("/v1/admin/tenants", headers=as_bearer).status_code == 200
    refused = client.get("/v1/tenants/me", headers=as_bearer)  # still no tenant of its own
    assert refused.status_code == 403

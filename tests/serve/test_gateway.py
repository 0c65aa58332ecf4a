"""The gateway pipeline over real HTTP: request ids, problem+json, auth refusals, X-Tenant-ID
stripping, CORS, payload quota."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest

from tests.serve.conftest import Tenant
from tests.serve.server import JWT_SECRET, Server

PROBLEM = "application/problem+json"


def token(claims: dict[str, object], *, secret: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


TENANT_SCOPES = ["read", "market", "providers", "wallets", "keys"]


def good_claims(tenant: Tenant, **changes: object) -> dict[str, object]:
    now_s = int(time.time())
    claims: dict[str, object] = {
        "tenant_id": tenant.tenant_id,
        "key_id": tenant.key_id,
        "jti": "test-token",
        "scopes": TENANT_SCOPES,
        "iss": "aex-identity",
        "iat": now_s,
        "exp": now_s + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = response.json()
    assert body["type"] == f"https://aex.dev/problems/{slug}"
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["title"]
    assert body["instance"] == response.request.url.path
    return body


def test_request_id_is_echoed_or_generated(client: httpx.Client) -> None:
    echoed = client.get("/health", headers={"X-Request-ID": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    generated = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32


def test_unknown_route_is_a_problem(client: httpx.Client, tenant: Tenant) -> None:
    assert_problem(client.get("/v1/nothing", headers=tenant.headers), 404, "not-found")


def test_an_unknown_path_is_404_for_everyone_before_any_credential_is_read(
    client: httpx.Client, tenant: Tenant, operator: dict[str, str]
) -> None:
    credentials = (
        {},  # none
        {"X-API-Key": "aexk_" + "0" * 64},  # a wrong key
        {"Authorization": "Bearer not.a.jwt"},  # a malformed token
        tenant.headers,
        operator,
    )
    for path in ("/", "/v1/nothing", "/v1/work/w_1/nothing", "/admin", "/v1/keys/k/x/y"):
        for headers in credentials:
            for method in ("GET", "POST", "DELETE"):
                answer = client.request(method, path, headers=headers)
                assert_problem(answer, 404, "not-found")
    # Paths that exist still need their credential, and assets under a {file_path:path}
    # route are not "unknown" however deep.
    assert client.get("/v1/keys").status_code == 401
    assert client.get("/v1/work/w_1").status_code == 401
    assert client.get("/schema/assets/no/such/file.js").status_code == 404


def test_wrong_method_is_a_problem(client: httpx.Client, tenant: Tenant) -> None:
    assert_problem(client.put("/v1/keys", headers=tenant.headers), 405, "method-not-allowed")


def test_malformed_json_is_a_problem_and_writes_nothing(client: httpx.Client) -> None:
    response = client.post(
        "/v1/tenants", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "invalid-request")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "type": "CONSUMER", "admin": True}, "admin"),
        ({"name": "x", "type": "SELLER"}, "type"),
        ({"name": 5, "type": "CONSUMER"}, "name"),
        ({"type": "CONSUMER"}, "name"),
        ({"name": "", "type": "CONSUMER"}, "name"),
    ],
)
def test_bad_bodies_name_the_offending_field(
    client: httpx.Client, body: dict[str, object], field: str
) -> None:
    problem = assert_problem(client.post("/v1/tenants", json=body), 422, "invalid-request")
    assert problem["errors"][0]["field"] == field  # type: ignore[index]


@pytest.mark.parametrize(
    ("headers", "slug"),
    [
        ({}, "credential-missing"),
        ({"X-API-Key": "aexk_" + "0" * 64}, "credential-invalid"),
        ({"X-API-Key": "aexk_nothex"}, "credential-malformed"),
        ({"X-API-Key": "aex_sk_live_" + "0" * 64}, "credential-not-accepted"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "credential-malformed"),
        ({"Authorization": "Bearer not.a.jwt"}, "token-invalid"),
    ],
)
def test_bad_credentials_are_refused(
    client: httpx.Client, headers: dict[str, str], slug: str
) -> None:
    assert_problem(client.get("/v1/keys", headers=headers), 401, slug)


def test_a_tampered_key_is_refused(client: httpx.Client, tenant: Tenant) -> None:
    last = tenant.api_key[-1]
    tampered = tenant.api_key[:-1] + ("0" if last != "0" else "1")
    assert_problem(
        client.get("/v1/keys", headers={"X-API-Key": tampered}), 401, "credential-invalid"
    )


def test_a_valid_jwt_is_accepted(client: httpx.Client, tenant: Tenant) -> None:
    bearer = {"Authorization": f"Bearer {token(good_claims(tenant))}"}
    assert client.get("/v1/tenants/me", headers=bearer).json()["tenant_id"] == tenant.tenant_id


@pytest.mark.parametrize(
    ("case", "slug"),
    [
        ("expired", "token-expired"),
        ("wrong_issuer", "token-invalid"),
        ("alg_none", "token-invalid"),
        ("hs512", "token-invalid"),
        ("wrong_secret", "token-invalid"),
        ("tampered_payload", "token-invalid"),
        ("missing_exp", "token-invalid"),
        ("missing_tenant", "token-invalid"),
        ("unknown_tenant", "token-invalid"),
        ("missing_key_id", "token-invalid"),
        ("missing_jti", "token-invalid"),
        ("unknown_key_id", "token-invalid"),
        ("another_tenants_key_id", "token-invalid"),
        ("wildcard_scope", "token-invalid"),
        ("operator_scope", "token-invalid"),
        ("no_scopes", "token-invalid"),
    ],
)
def test_bad_jwts_are_refused(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, case: str, slug: str
) -> None:
    tid = tenant
    now_s = int(time.time())
    tokens = {
        "expired": lambda: token(good_claims(tid, iat=now_s - 700, exp=now_s - 100)),
        "wrong_issuer": lambda: token(good_claims(tid, iss="someone-else")),
        "alg_none": lambda: unsigned(good_claims(tid)),
        "hs512": lambda: token(good_claims(tid), algorithm="HS512"),
        "wrong_secret": lambda: token(good_claims(tid), secret="x" * 40),
        "tampered_payload": lambda: _tamper(token(good_claims(tid))),
        "missing_exp": lambda: token(good_claims(tid, exp=None)),
        "missing_tenant": lambda: token(good_claims(tid, tenant_id=None)),
        "unknown_tenant": lambda: token(good_claims(tid, tenant_id="ten_0000000000000000")),
        "missing_key_id": lambda: token(good_claims(tid, key_id=None)),
        "missing_jti": lambda: token(good_claims(tid, jti=None)),
        "unknown_key_id": lambda: token(good_claims(tid, key_id="key_0000000000000000")),
        "another_tenants_key_id": lambda: token(good_claims(tid, key_id=other_tenant.key_id)),
        # Minted tokens list their scopes: "*" is expanded at minting, "operator" never minted.
        "wildcard_scope": lambda: token(good_claims(tid, scopes=["*"])),
        "operator_scope": lambda: token(good_claims(tid, scopes=["read", "operator"])),
        "no_scopes": lambda: token(good_claims(tid, scopes=[])),
    }
    bearer = {"Authorization": f"Bearer {tokens[case]()}"}
    assert_problem(client.get("/v1/tenants/me", headers=bearer), 401, slug)


def _tamper(signed: str) -> str:
    header, payload, signature = signed.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["tenant_id"] = "ten_ffffffffffffffff"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_spoofed_tenant_header_has_no_effect(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    spoofed = {**tenant.headers, "X-Tenant-ID": other_tenant.tenant_id}
    assert client.get("/v1/tenants/me", headers=spoofed).json()["tenant_id"] == tenant.tenant_id
    keys = client.get("/v1/keys", headers=spoofed).json()["data"]
    assert {k["key_id"] for k in keys} == {tenant.key_id}
    alone = client.get("/v1/keys", headers={"X-Tenant-ID": tenant.tenant_id})
    assert_problem(alone, 401, "credential-missing")


def test_cors_answers_preflight_for_configured_origins_only(client: httpx.Client) -> None:
    preflight = client.options(
        "/v1/keys",
        headers={
            "Origin": "https://dashboard.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://dashboard.example"
    foreign = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers


def test_payload_over_the_plan_quota_is_413(client: httpx.Client, tenant: Tenant) -> None:
    body = {"name": "x" * 100, "type": "AI_AGENT", "capabilities": ["a"], "category": "T"}
    padded = json.dumps(body).encode() + b" " * (65 * 1024)
    response = client.post(
        "/v1/providers",
        content=padded,
        headers={**tenant.headers, "content-type": "application/json"},
    )
    problem = assert_problem(response, 413, "payload-too-large")
    assert problem["errors"] == [{"field": "max_payload_size", "reason": "payload_too_large"}]
    assert client.get("/v1/providers/", headers=tenant.headers).json()["data"] == []


def test_chunked_payload_over_the_quota_is_413(client: httpx.Client, tenant: Tenant) -> None:
    def chunks():  # no Content-Length: counted as it streams
        for _ in range(70):
            yield b" " * 1024

    response = client.post(
        "/v1/providers",
        content=chunks(),
        headers={**tenant.headers, "content-type": "application/json"},
    )
    assert_problem(response, 413, "payload-too-large")


def test_openapi_document_lists_every_route(client: httpx.Client) -> None:
    document = client.get("/schema/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    expected = {
        "/v1/tenants",
        "/v1/tenants/me",
        "/v1/keys",
        "/v1/keys/{key_id}",
        "/v1/keys/{key_id}/rotate",
        "/v1/tokens",
        "/v1/admin/tenants",
        "/v1/admin/tenants/{tenant_id}/suspend",
        "/v1/admin/tenants/{tenant_id}/reactivate",
        "/v1/admin/tenants/{tenant_id}/plan",
        "/v1/providers",
        "/v1/providers/{provider_id}",
        "/v1/subscriptions",
        "/v1/subscriptions/{subscription_id}",
        "/v1/deposits",
        "/v1/withdrawals",
        "/v1/balance",
        "/v1/transactions",
    }
    assert expected <= set(document["paths"])
    for path in expected:
        for method, operation in document["paths"][path].items():
            statuses = set(operation["responses"])
            assert {"404", "500", "503", "504"} <= statuses, (method, path)
            writes = method in {"post", "put", "patch", "delete"}
            assert ({"409", "413"} <= statuses) is writes, (method, path, statuses)
            assert ("429" in statuses) is True, (method, path)
            assert ({"401", "403"} <= statuses) is (path != "/v1/tenants" or method != "post")
    assert "ProblemDetails" in document["components"]["schemas"]


def test_each_operation_lists_only_the_problems_it_can_answer(client: httpx.Client) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    health, ready = paths["/health"]["get"]["responses"], paths["/ready"]["get"]["responses"]
    # Public, no parameters, never rate limited, reads only.
    for responses in (health, ready):
        assert not {"400", "401", "403", "409", "413", "422", "429"} & set(responses)
    sign_up = paths["/v1/tenants"]["post"]["responses"]  # public, with a body
    assert {"400", "409", "413", "422", "429"} <= set(sign_up)
    assert not {"401", "403"} & set(sign_up)
    me = paths["/v1/tenants/me"]["get"]["responses"]  # authenticated, no parameters
    assert {"401", "403", "429"} <= set(me)
    assert not {"400", "409", "413", "422"} & set(me)
    # A read that waits for a state declares its 409 (the window has not closed).
    assert "409" in paths["/v1/work/{work_id}/evaluation"]["get"]["responses"]
    # A list with query parameters can refuse one.
    assert "422" in paths["/v1/transactions"]["get"]["responses"]


def test_one_json_log_line_per_request_without_secrets(
    client: httpx.Client, server: Server, tenant: Tenant
) -> None:
    request_id = "log-check-" + tenant.tenant_id
    client.get("/v1/tenants/me", headers={**tenant.headers, "X-Request-ID": request_id})
    deadline = time.monotonic() + 5
    while True:  # lines are flushed in batches, at most 50 ms late
        text = server.log_path.read_text()
        lines = [json.loads(line) for line in text.splitlines() if request_id in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 1
    line = lines[0]
    assert (line["tenant"], line["route"], line["status"]) == (
        tenant.tenant_id,
        "/v1/tenants/me",
        200,
    )
    assert line["latency_ms"] >= 0
    assert tenant.api_key not in text

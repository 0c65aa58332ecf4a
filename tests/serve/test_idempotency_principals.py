"""Issue 11, item 1: an Idempotency-Key record is answered only to the exact credential that
made it (one API key, one JWT; never its tenant, never a client address), sign-up is never
replayed to another client, and an answer that carried a secret shown once is replayed as 409
`idempotency-replay-withheld`, without the secret. Against the real server, on both backends.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import Stores
from tests.serve.conftest import Tenant, sign_up

WITHHELD = "https://aex.dev/problems/idempotency-replay-withheld"
# Anything shaped like an AEX credential or a JWT.
SECRET_SHAPES = re.compile(
    r"(aexk_|aex_pk_live_|aex_sk_live_|aex_whsec_)[0-9a-f]{64}|eyJ[\w-]+\.eyJ[\w-]+\."
)


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"idem-{uuid.uuid4()}"}


def _post(
    client: httpx.Client, path: str, credential: dict[str, str], key: dict[str, str], body: Any
) -> httpx.Response:
    return client.post(path, json=body, headers={**credential, **key})


def _assert_withheld(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    assert response.json()["type"] == WITHHELD
    assert response.headers["idempotent-replayed"] == "true"
    assert SECRET_SHAPES.search(response.text) is None, response.text


def _provider(client: httpx.Client, owner: Tenant) -> dict[str, Any]:
    agent = {"name": "IdemBot", "type": "AI_AGENT", "capabilities": ["x"], "category": "T"}
    response = client.post("/v1/providers", json=agent, headers=owner.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_provider_key_never_receives_its_tenants_new_api_key(client: httpx.Client) -> None:
    tenant = sign_up(client, "Idem Owner", "BOTH")
    provider_key = {"X-API-Key": _provider(client, tenant)["api_key"]}
    key = _key()
    first = _post(client, "/v1/keys", tenant.headers, key, {})
    assert first.status_code == 201, first.text
    new_key = first.json()["api_key"]
    # The same Idempotency-Key from the tenant's provider key: its own request (a provider
    # key may not mint tenant keys: 403), never the tenant's stored answer.
    stolen = _post(client, "/v1/keys", provider_key, key, {})
    assert stolen.status_code == 403, stolen.text
    assert "idempotent-replayed" not in stolen.headers
    assert new_key not in stolen.text
    # Another key of the same tenant: a request of its own, not a replay of the first.
    second_key = {"X-API-Key": new_key}
    fresh = _post(client, "/v1/keys", second_key, key, {})
    assert fresh.status_code == 201, fresh.text
    assert "idempotent-replayed" not in fresh.headers
    assert fresh.json()["api_key"] != new_key
    # The credential that made it: told it was done, but the key is shown once only.
    _assert_withheld(_post(client, "/v1/keys", tenant.headers, key, {}))


def test_anonymous_sign_up_is_never_replayed_to_another_client(
    client: httpx.Client, server: Any
) -> None:
    key, body = _key(), {"name": "Early Bird", "type": "CONSUMER"}
    first = client.post("/v1/tenants", json=body, headers=key)
    assert first.status_code == 201, first.text
    created = first.json()
    # A second client from the same address with the same Idempotency-Key and body.
    with httpx.Client(base_url=server.url, timeout=30) as other:
        replayed = other.post("/v1/tenants", json=body, headers=key)
    _assert_withheld(replayed)
    assert created["api_key"] not in replayed.text
    assert created["tenant_id"] not in replayed.text
    assert created["key_id"] not in replayed.text
    # The first client retrying gets no copy of the key either (it is shown once).
    _assert_withheld(client.post("/v1/tenants", json=body, headers=key))
    # Without an Idempotency-Key every sign-up is its own tenant, as before.
    again = client.post("/v1/tenants", json=body)
    assert again.status_code == 201
    assert again.json()["tenant_id"] != created["tenant_id"]


def test_every_answer_with_a_secret_shown_once_is_withheld_on_replay(
    client: httpx.Client,
) -> None:
    tenant = sign_up(client, "Idem Secrets", "BOTH")
    provider = _provider(client, tenant)
    key_id = client.post("/v1/keys", headers=tenant.headers).json()["key_id"]
    routes = [
        ("/v1/keys", {}),
        (f"/v1/keys/{key_id}/rotate", {}),
        ("/v1/tokens", {"ttl_s": 600}),
        (f"/v1/providers/{provider['provider_id']}/webhook-secret", {}),
    ]
    for path, body in routes:
        key = _key()
        first = _post(client, path, tenant.headers, key, body)
        assert first.status_code == (200 if path == "/v1/tokens" else 201), (path, first.text)
        assert first.headers["cache-control"] == "no-store"
        assert SECRET_SHAPES.search(first.text) is not None, first.text
        _assert_withheld(_post(client, path, tenant.headers, key, body))
        # Another body under the same key is still refused as before.
        other = _post(client, path, tenant.headers, key, {"ttl_s": 900, "x": 1})
        assert other.status_code == 422, other.text


def test_a_replay_without_a_secret_replays_to_its_credential_only(
    client: httpx.Client,
) -> None:
    tenant = sign_up(client, "Idem Money", "CONSUMER")
    token = client.post("/v1/tokens", json={"ttl_s": 600}, headers=tenant.headers).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    other_token = client.post("/v1/tokens", json={"ttl_s": 900}, headers=tenant.headers).json()
    other_bearer = {"Authorization": f"Bearer {other_token['token']}"}
    key, body = _key(), {"tenant_id": tenant.tenant_id, "amount": "10", "currency": "USD"}
    first = _post(client, "/v1/deposits", bearer, key, body)
    assert first.status_code == 201, first.text
    replayed = _post(client, "/v1/deposits", bearer, key, body)
    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == {**first.json(), "replayed": True}
    # Another token and the API key of the same tenant: requests of their own.
    for credential in (other_bearer, tenant.headers):
        own = _post(client, "/v1/deposits", credential, key, body)
        assert own.status_code == 201, own.text
        assert "idempotent-replayed" not in own.headers
        assert own.json()["operation_id"] != first.json()["operation_id"]
    balance = client.get("/v1/balance?currency=USD", headers=tenant.headers).json()
    assert balance["available"] == "30.00"


def test_a_replay_says_replayed_in_its_body_as_in_its_header(client: httpx.Client) -> None:
    tenant = sign_up(client, "Idem Replay", "CONSUMER")
    key = _key()
    body = {"tenant_id": tenant.tenant_id, "amount": "12.34", "currency": "USD"}
    first = _post(client, "/v1/deposits", tenant.headers, key, body)
    assert first.status_code == 201, first.text
    assert first.json()["replayed"] is False
    assert "idempotent-replayed" not in first.headers
    again = _post(client, "/v1/deposits", tenant.headers, key, body)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == {**first.json(), "replayed": True}
    # The withheld replay of a secret-bearing answer says so too.
    key = _key()
    assert _post(client, "/v1/keys", tenant.headers, key, {}).status_code == 201
    withheld = _post(client, "/v1/keys", tenant.headers, key, {})
    _assert_withheld(withheld)
    assert withheld.json()["replayed"] is True


class _Pruned:
    """The store, recording every prune the middleware asks for and what it deleted."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.prunes: list[tuple[int, int, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def prune_idempotency(self, *, before_ms: int, limit: int) -> int:
        deleted: int = self._store.prune_idempotency(before_ms=before_ms, limit=limit)
        self.prunes.append((before_ms, limit, deleted))
        return deleted


def test_the_middleware_prunes_after_the_24_h_ttl_and_an_expired_key_starts_afresh(
    store: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/api.md "Times": an Idempotency-Key record lives 24 h; then the same key is a new
    request, and the middleware deletes the record (on both backends)."""
    from serve.gateway import middleware as gateway

    assert gateway.IDEMPOTENCY_TTL_MS == 24 * 3_600_000
    clock = [1_767_225_600_000]
    monkeypatch.setattr(gateway, "now_ms", lambda: clock[0])
    runs: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        runs.append(clock[0])
        body = json.dumps({"run": len(runs), "replayed": False}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    recorded = _Pruned(store.idempotency)
    middleware = gateway.IdempotencyMiddleware(app, store=recorded)

    def post() -> tuple[dict[str, str], dict[str, Any]]:
        messages: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/things",
            "headers": [(b"idempotency-key", b"ttl-key")],
        }
        anyio.run(middleware, scope, receive, send)
        headers = {bytes(k).decode(): bytes(v).decode() for k, v in messages[0]["headers"]}
        return headers, json.loads(b"".join(m.get("body", b"") for m in messages[1:]))

    first_headers, first = post()
    assert first == {"run": 1, "replayed": False}
    assert "idempotent-replayed" not in first_headers
    clock[0] += gateway.IDEMPOTENCY_TTL_MS - 1  # the last millisecond of the TTL: a replay
    headers, again = post()
    assert (headers["idempotent-replayed"], again) == ("true", {"run": 1, "replayed": True})
    clock[0] += 1 + gateway.IDEMPOTENCY_PRUNE_INTERVAL_MS  # past the TTL, and a prune is due
    headers, fresh = post()
    assert "idempotent-replayed" not in headers
    assert fresh == {"run": 2, "replayed": False}
    assert len(runs) == 2
    before_ms, limit, deleted = recorded.prunes[-1]
    assert before_ms == clock[0] - gateway.IDEMPOTENCY_TTL_MS
    assert (limit, deleted) == (gateway.IDEMPOTENCY_PRUNE_ROWS_MAX, 1)

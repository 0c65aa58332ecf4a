"""AP2 mandates over real HTTP, on both backends (issue 15 item 2, docs/payments.md).

A consumer's user registers a key and signs an intent mandate; work submitted under it beyond
its limits (per work, in total, category, currency, expiry, revocation) is refused with the
problem naming the limit and nothing written; a tampered mandate is refused; an award under a
mandate yields a checkout receipt and settlement a payment receipt, both verified with joserfc
against the CA's published keys; another tenant cannot see, use or revoke the mandate."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import KeySet

from aex.core.certs import LocalSigner, b64url_decode, b64url_encode, public_key_to_jwk
from aex.core.mandates import sign_mandate
from tests.serve.conftest import Tenant
from tests.serve.market_helpers import (
    balance,
    bid,
    close_now,
    complete,
    consumer,
    provider,
    work_body,
)


def _user_key() -> LocalSigner:
    return LocalSigner.from_private_key(ec.generate_private_key(ec.SECP256R1()))


def _mandate_token(tenant: Tenant, key: LocalSigner, **changes: Any) -> str:
    now_s = int(time.time())
    fields: dict[str, Any] = {
        "mandate_id": f"mdt_{uuid.uuid4().hex[:16]}",
        "tenant_id": tenant.tenant_id,
        "currency": "USD",
        "amount_per_work": "150.00",
        "amount_total": "300.00",
        "categories": ["TECHNOLOGY"],
        "issued_at_s": now_s,
        "expires_at_s": now_s + 3600,
        "description": "Code reviews, at most $150 each and $300 in all",
    }
    fields.update(changes)
    return sign_mandate(signer=key, **fields)


def _mandate(client: httpx.Client, tenant: Tenant, **changes: Any) -> dict[str, Any]:
    key = _user_key()
    body = {"public_key_jwk": public_key_to_jwk(key.public_key)}
    registered = client.post("/v1/mandates/keys", json=body, headers=tenant.headers)
    assert registered.status_code == 201, registered.text
    assert registered.json()["kid"] == key.kid
    token = _mandate_token(tenant, key, **changes)
    created = client.post("/v1/mandates", json={"mandate": token}, headers=tenant.headers)
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


def _submit(client: httpx.Client, tenant: Tenant, mandate_id: str, **changes: Any) -> Any:
    body = {**work_body(**changes), "mandate_id": mandate_id}
    return client.post("/v1/work", json=body, headers=tenant.headers)


def _work_count(client: httpx.Client, tenant: Tenant) -> int:
    return len(client.get("/v1/work", headers=tenant.headers).json()["data"])


def _refused(response: httpx.Response, slug: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["type"].endswith("/" + slug), response.text


def test_a_mandate_limited_agent_is_refused_beyond_per_work_and_total_limits(
    client: httpx.Client,
) -> None:
    tenant = consumer(client, plan="BUSINESS")
    mandate = _mandate(client, tenant)
    mandate_id = mandate["mandate_id"]
    assert mandate["state"] == "ACTIVE"
    assert mandate["limits"]["amount_total"] == "300.00"
    before = balance(client, tenant)
    over = _submit(
        client, tenant, mandate_id, budget={"min": 50, "max": "150.01", "currency": "USD"}
    )
    _refused(over, "mandate-amount-per-work-exceeded")
    assert over.json()["errors"][0]["field"] == "budget.max"
    assert (_work_count(client, tenant), balance(client, tenant)) == (0, before)
    budget = {"min": 50, "max": 150, "currency": "USD"}
    for _ in range(2):
        assert _submit(client, tenant, mandate_id, budget=budget).status_code == 201
    shown = client.get(f"/v1/mandates/{mandate_id}", headers=tenant.headers).json()
    assert (shown["spent"], shown["remaining"]) == ("300.00", "0.00")
    held = balance(client, tenant)
    beyond = _submit(client, tenant, mandate_id, budget={"min": 1, "max": 1, "currency": "USD"})
    _refused(beyond, "mandate-total-exceeded")
    assert (_work_count(client, tenant), balance(client, tenant)) == (2, held)


@pytest.mark.parametrize(
    ("changes", "slug"),
    [
        ({"category": "LEGAL"}, "mandate-category-not-allowed"),
        ({"budget": {"min": 1, "max": 10, "currency": "EUR"}}, "mandate-currency-mismatch"),
    ],
)
def test_work_outside_the_mandate_category_or_currency_is_refused(
    client: httpx.Client, changes: dict[str, Any], slug: str
) -> None:
    tenant = consumer(client)
    mandate = _mandate(client, tenant)
    _refused(_submit(client, tenant, mandate["mandate_id"], **changes), slug)
    assert _work_count(client, tenant) == 0


def test_an_expired_or_revoked_mandate_covers_no_work(client: httpx.Client) -> None:
    tenant = consumer(client)
    soon = _mandate(client, tenant, expires_at_s=int(time.time()) + 2)
    revoked = _mandate(client, tenant)
    response = client.post(f"/v1/mandates/{revoked['mandate_id']}/revoke", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "REVOKED"
    _refused(_submit(client, tenant, revoked["mandate_id"]), "mandate-revoked")
    time.sleep(max(0.0, soon["expires_at_ms"] / 1000 - time.time()) + 0.05)
    _refused(_submit(client, tenant, soon["mandate_id"]), "mandate-expired")
    assert _work_count(client, tenant) == 0


def test_a_tampered_or_foreign_mandate_is_refused(client: httpx.Client) -> None:
    tenant, other = consumer(client, funds=0), consumer(client, funds=0)
    key = _user_key()
    body = {"public_key_jwk": public_key_to_jwk(key.public_key)}
    assert client.post("/v1/mandates/keys", json=body, headers=tenant.headers).status_code == 201
    header, payload, signature = _mandate_token(tenant, key).split(".")
    raised = (b64url_decode(payload) or b"").replace(b'"300.00"', b'"30000.00"')
    tampered = f"{header}.{b64url_encode(raised)}.{signature}"
    refused = client.post("/v1/mandates", json={"mandate": tampered}, headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("/mandate-signature-invalid")
    # Signed by the tenant's key, but filed by another tenant: not its key, not its mandate.
    token = _mandate_token(tenant, key)
    foreign = client.post("/v1/mandates", json={"mandate": token}, headers=other.headers)
    assert foreign.status_code == 422, foreign.text
    assert foreign.json()["type"].endswith("/mandate-key-unknown")
    # The same key cannot be registered by another tenant.
    taken = client.post("/v1/mandates/keys", json=body, headers=other.headers)
    assert taken.status_code == 409, taken.text


def test_another_tenant_cannot_read_use_or_revoke_the_mandate(client: httpx.Client) -> None:
    tenant, other = consumer(client), consumer(client)
    mandate_id = _mandate(client, tenant)["mandate_id"]
    assert client.get(f"/v1/mandates/{mandate_id}", headers=other.headers).status_code == 404
    revoke = client.post(f"/v1/mandates/{mandate_id}/revoke", headers=other.headers)
    assert revoke.status_code == 404
    assert _submit(client, other, mandate_id).status_code == 404
    assert client.get(f"/v1/mandates/{mandate_id}", headers=tenant.headers).json()["state"] == (
        "ACTIVE"
    )


def _ca_keys(client: httpx.Client) -> KeySet:
    document = client.get("/.well-known/aex-ca.json").json()
    return KeySet.import_key_set(document["jwks"])


def test_an_award_under_a_mandate_is_receipted_and_the_receipts_verify_with_the_ca_keys(
    client: httpx.Client,
) -> None:
    tenant, agent = consumer(client), provider(client)
    mandate_id = _mandate(client, tenant)["mandate_id"]
    work = _submit(client, tenant, mandate_id, budget={"min": 50, "max": 150, "currency": "USD"})
    assert work.status_code == 201, work.text
    work_id = work.json()["work_id"]
    assert bid(client, agent, work_id, price="120.00").status_code == 201
    close_now(client, work_id)
    contract_id = client.get(f"/v1/work/{work_id}", headers=tenant.headers).json()["contract_id"]
    assert contract_id is not None
    shown = client.get(f"/v1/mandates/{mandate_id}", headers=tenant.headers).json()
    assert shown["spent"] == "120.00"  # the price now, not the budget max
    assert complete(client, agent, contract_id).status_code == 200
    found = client.get(f"/v1/contracts/{contract_id}/receipts", headers=tenant.headers)
    assert found.status_code == 200, found.text
    receipts = {r["kind"]: r for r in found.json()["receipts"]}
    assert set(receipts) == {"checkout", "payment"}
    keys = _ca_keys(client)
    for kind, receipt in receipts.items():
        decoded = jwt.decode(receipt["token"], keys, algorithms=["ES256"])
        assert decoded.header["typ"] == "aex-receipt+jwt"
        claims = decoded.claims
        assert claims["receipt_type"] == kind
        assert (claims["contract_id"], claims["mandate_id"]) == (contract_id, mandate_id)
        assert claims["payment_mandate_id"] == f"pm_{contract_id}"
        assert (claims["amount"], claims["currency"]) == ("120.00", "USD")
        assert (claims["payer"], claims["payee"]) == (tenant.tenant_id, agent.provider_id)
        assert claims["jti"] == receipt["receipt_id"]
    # The provider, a party, reads them too; another tenant learns nothing.
    by_agent = client.get(f"/v1/contracts/{contract_id}/receipts", headers=agent.headers)
    assert by_agent.status_code == 200
    other = consumer(client, funds=0)
    hidden = client.get(f"/v1/contracts/{contract_id}/receipts", headers=other.headers)
    assert hidden.status_code == 404
    # A receipt altered after signing fails the independent verifier.
    header, payload, signature = receipts["payment"]["token"].split(".")
    forged_claims = (b64url_decode(payload) or b"").replace(b'"120.00"', b'"12.00"')
    with pytest.raises(Exception):  # joserfc: BadSignatureError
        jwt.decode(f"{header}.{b64url_encode(forged_claims)}.{signature}", keys)
    # A dispute cites the receipt it is about: one of this contract's, or it is refused.
    dispute = f"/v1/contracts/{contract_id}/dispute"
    wrong = client.post(dispute, json={"receipt_id": "rcpt_0"}, headers=tenant.headers)
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["type"].endswith("/receipt-not-of-contract")
    cited = {"reason": "paid twice?", "receipt_id": receipts["payment"]["receipt_id"]}
    disputed = client.post(dispute, json=cited, headers=tenant.headers)
    assert disputed.status_code == 200, disputed.text
    assert disputed.json()["status"] == "DISPUTED"
    assert disputed.json()["dispute_receipt_id"] == receipts["payment"]["receipt_id"]


def test_a_mandate_revoked_before_the_award_leaves_the_work_unfilled(
    client: httpx.Client,
) -> None:
    tenant, agent = consumer(client), provider(client)
    before = balance(client, tenant)
    mandate_id = _mandate(client, tenant)["mandate_id"]
    work = _submit(client, tenant, mandate_id, budget={"min": 50, "max": 150, "currency": "USD"})
    work_id = work.json()["work_id"]
    assert bid(client, agent, work_id, price="100.00").status_code == 201
    client.post(f"/v1/mandates/{mandate_id}/revoke", headers=tenant.headers)
    close_now(client, work_id)
    found = client.get(f"/v1/work/{work_id}", headers=tenant.headers).json()
    assert (found["status"], found["contract_id"]) == ("UNFILLED", None)
    assert balance(client, tenant) == before  # the hold released, no escrow

"""Certificate types with meaning over real HTTP, on both backends (issue 15).

IDENTITY: an ACME-style endpoint challenge against a real agent server on loopback (success;
wrong content, unreachable and, on a server that admits no private address, a loopback URL
refused without connecting). CAPABILITY: a self-asserted certificate does not raise
reputation, an operator-reviewed one does. REPUTATION: stated by the exchange, never requested
with claims. Revocation: the VC-JWT's credentialStatus, checked with joserfc against the
published Bitstring Status List credential, refuses a revoked credential."""

from __future__ import annotations

import base64
import gzip
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import KeySet

from aex.core.certs import (
    Authorization,
    CertificateType,
    Claim,
    LocalSigner,
    public_key_to_jwk,
    sign_request,
)
from aex.core.delegation import sign_delegation
from tests.serve.market_helpers import OPERATOR, Provider, provider
from tests.serve.server import Backend, Server


class AgentServer:
    """The agent's own server on loopback: answers the challenge path from `responses`."""

    def __init__(self) -> None:
        self.responses: dict[str, bytes] = {}
        self.requests: list[str] = []
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                agent.requests.append(self.path)
                body = agent.responses.get(self.path.rsplit("/", 1)[-1])
                self.send_response(200 if body is not None else 404)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def card_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/a2a/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def agent_server() -> Iterator[AgentServer]:
    running = AgentServer()
    yield running
    running.stop()


def agent_card(url: str) -> dict[str, Any]:
    skill = f"review-{uuid.uuid4().hex[:10]}"
    return {
        "name": "CodeReviewBot",
        "url": url,
        "version": "1.0.0",
        "skills": [{"id": skill, "name": "Code review", "tags": ["code"]}],
    }


def with_card(client: httpx.Client, url: str, **changes: Any) -> Provider:
    agent = provider(client, subscribe=False, **changes)
    response = client.put(
        f"/v1/providers/{agent.provider_id}/agent-card", json=agent_card(url), headers=agent.headers
    )
    assert response.status_code in (200, 201), response.text
    return agent


def new_key() -> LocalSigner:
    return LocalSigner.from_private_key(ec.generate_private_key(ec.SECP256R1()))


def open_challenge(client: httpx.Client, agent: Provider, key: LocalSigner) -> dict[str, Any]:
    body = {"provider_id": agent.provider_id, "public_key_jwk": public_key_to_jwk(key.public_key)}
    response = client.post("/v1/certificates/challenges", json=body, headers=agent.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def validate(client: httpx.Client, agent: Provider, token: str) -> dict[str, Any]:
    response = client.post(f"/v1/certificates/challenges/{token}/validate", headers=agent.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def request_certificate(
    client: httpx.Client,
    agent: Provider,
    key: LocalSigner,
    kind: CertificateType,
    claims: tuple[Claim, ...] = (),
) -> httpx.Response:
    document = sign_request(
        provider_id=agent.provider_id, agent_name="Bot", type=kind, claims=claims, signer=key
    )
    return client.post("/v1/certificates/request", json=document, headers=agent.headers)


# --- IDENTITY -----------------------------------------------------------------------------


def test_a_served_key_authorisation_proves_control_and_issues_an_identity_certificate(
    client: httpx.Client, agent_server: AgentServer
) -> None:
    agent = with_card(client, agent_server.card_url, plan="PROFESSIONAL")
    key = new_key()
    refused = request_certificate(client, agent, key, CertificateType.IDENTITY)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("endpoint-control-not-proven")

    challenge = open_challenge(client, agent, key)
    origin = agent_server.card_url.removesuffix("/a2a/v1")
    assert challenge["url"] == f"{origin}/.well-known/aex-challenge/{challenge['token']}"
    assert challenge["state"] == "PENDING"
    assert challenge["expires_at_ms"] > time.time() * 1000  # docs/api.md "Times"
    agent_server.responses[challenge["token"]] = challenge["key_authorization"].encode() + b"\n"
    decided = validate(client, agent, challenge["token"])
    assert (decided["state"], decided["error"]) == ("VALID", "")
    assert agent_server.requests == [f"/.well-known/aex-challenge/{challenge['token']}"]

    issued = request_certificate(client, agent, key, CertificateType.IDENTITY)
    assert issued.status_code == 201, issued.text
    assert issued.json()["state"] == "ISSUED"
    claims = {c["capability"]: c for c in issued.json()["certificate"]["claims"]}
    assert claims["agent.endpoint"]["scope"] == origin
    assert claims["a2a.agent_card"]["scope"] == agent_server.card_url
    assert {c["authorization"] for c in claims.values()} == {"AEX_VERIFIED"}
    spent = request_certificate(client, agent, key, CertificateType.IDENTITY)
    assert spent.status_code == 422  # one challenge, one certificate
    again = client.post(
        f"/v1/certificates/challenges/{challenge['token']}/validate", headers=agent.headers
    )
    assert again.status_code == 409


def test_wrong_content_fails_the_challenge_for_good(
    client: httpx.Client, agent_server: AgentServer
) -> None:
    agent, key = with_card(client, agent_server.card_url), new_key()
    challenge = open_challenge(client, agent, key)
    agent_server.responses[challenge["token"]] = challenge["token"].encode()  # no thumbprint
    decided = validate(client, agent, challenge["token"])
    assert (decided["state"], decided["error"]) == ("INVALID", "challenge_response_mismatch")
    refused = request_certificate(client, agent, key, CertificateType.IDENTITY)
    assert refused.status_code == 422


def test_a_key_authorisation_for_another_key_does_not_admit_this_key(
    client: httpx.Client, agent_server: AgentServer
) -> None:
    agent, key = with_card(client, agent_server.card_url), new_key()
    challenge = open_challenge(client, agent, key)
    agent_server.responses[challenge["token"]] = challenge["key_authorization"].encode()
    assert validate(client, agent, challenge["token"])["state"] == "VALID"
    other = request_certificate(client, agent, new_key(), CertificateType.IDENTITY)
    assert other.status_code == 422


def test_an_unreachable_agent_fails_the_challenge(client: httpx.Client) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    agent, key = with_card(client, f"http://127.0.0.1:{port}/a2a"), new_key()
    challenge = open_challenge(client, agent, key)
    decided = validate(client, agent, challenge["token"])
    assert decided["state"] == "INVALID"
    assert decided["error"] == "challenge_fetch_failed: connect_failed"


def test_someone_else_cannot_see_or_validate_a_challenge(
    client: httpx.Client, agent_server: AgentServer
) -> None:
    agent, key = with_card(client, agent_server.card_url), new_key()
    stranger = provider(client, subscribe=False)
    challenge = open_challenge(client, agent, key)
    token = challenge["token"]
    seen = client.get(f"/v1/certificates/challenges/{token}", headers=stranger.headers)
    assert seen.status_code == 404
    tried = client.post(f"/v1/certificates/challenges/{token}/validate", headers=stranger.headers)
    assert tried.status_code == 404
    assert agent_server.requests == []
    body = {"provider_id": agent.provider_id, "public_key_jwk": public_key_to_jwk(key.public_key)}
    foreign = client.post("/v1/certificates/challenges", json=body, headers=stranger.headers)
    assert foreign.status_code == 403


@pytest.fixture
def strict_server(tmp_path: Any, own_backend: Backend) -> Iterator[Server]:
    """A server that admits no private address (the production default)."""
    env = {**own_backend.env, "AEX_WEBHOOK_ALLOW_PRIVATE": "0"}
    running = Server(tmp_path / "data", env=env).start()
    yield running
    running.stop()


def test_a_private_address_is_refused_without_connecting(
    strict_server: Server, agent_server: AgentServer
) -> None:
    with httpx.Client(base_url=strict_server.url, timeout=30) as client:
        agent, key = with_card(client, agent_server.card_url), new_key()
        challenge = open_challenge(client, agent, key)
        agent_server.responses[challenge["token"]] = challenge["key_authorization"].encode()
        decided = validate(client, agent, challenge["token"])
    assert decided["state"] == "INVALID"
    assert decided["error"] == "challenge_fetch_failed: address_refused"
    assert agent_server.requests == []  # never connected


# --- CAPABILITY: assurance and reputation ---------------------------------------------------


def certification_bonus(client: httpx.Client, agent: Provider) -> float:
    found = client.get(f"/v1/providers/{agent.provider_id}/reputation", headers=agent.headers)
    assert found.status_code == 200, found.text
    return float(found.json()["components"]["certification_bonus"])


def test_a_self_asserted_certificate_does_not_raise_reputation(client: httpx.Client) -> None:
    agent = provider(client, subscribe=False, plan="PROFESSIONAL")
    claim = Claim("TECHNOLOGY", "code.review", "Go", Authorization.SELF_ASSERTED)
    issued = request_certificate(client, agent, new_key(), CertificateType.CAPABILITY, (claim,))
    assert issued.status_code == 201, issued.text
    assert issued.json()["state"] == "ISSUED"
    assert issued.json()["claims"][0]["assurance"] == "self_asserted"
    assert certification_bonus(client, agent) == 0.0

    attested = Claim("TECHNOLOGY", "code.review", "Go", Authorization.THIRD_PARTY_ATTESTED)
    waiting = request_certificate(client, agent, new_key(), CertificateType.CAPABILITY, (attested,))
    assert waiting.json()["state"] == "REQUESTED"
    cert_id = waiting.json()["certificate_id"]
    approved = client.post(f"/v1/admin/certificates/{cert_id}/approve", headers=OPERATOR)
    assert approved.status_code == 200, approved.text
    assert approved.json()["claims"][0]["assurance"] == "operator_reviewed"
    assert certification_bonus(client, agent) == pytest.approx(0.05)


# --- REPUTATION -----------------------------------------------------------------------------


def test_a_reputation_certificate_states_only_what_transactions_proved(
    client: httpx.Client,
) -> None:
    agent, key = provider(client, subscribe=False), new_key()
    claim = Claim("REPUTATION", "tier", "PLATINUM", Authorization.TRANSACTION_EVIDENCE)
    asked = request_certificate(client, agent, key, CertificateType.REPUTATION, (claim,))
    assert asked.status_code == 422
    assert asked.json()["type"].endswith("claims-not-requestable")

    issued = request_certificate(client, agent, key, CertificateType.REPUTATION)
    assert issued.status_code == 201, issued.text
    certificate = issued.json()["certificate"]
    stated = {c["capability"]: c["scope"] for c in certificate["claims"]}
    assert (stated["tier"], stated["contracts"], stated["success_rate_bps"]) == ("BRONZE", "0", "0")
    assert certificate["reputation"]["contracts"] == 0
    assert certification_bonus(client, agent) == 0.0  # never counts toward the bonus
    renewed = client.post(
        f"/v1/certificates/{issued.json()['certificate_id']}/renew", headers=agent.headers
    )
    assert renewed.status_code == 200, renewed.text
    assert {c["capability"] for c in renewed.json()["certificate"]["claims"]} == set(stated)


# --- revocation through the Bitstring Status List -------------------------------------------


def _bit(encoded: str, index: int) -> bool:
    # An independent reading of the list: multibase "u" + base64url, GZIP, bit 0 left-most.
    assert encoded.startswith("u")
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert len(raw) * 8 >= 131_072
    return bool(raw[index // 8] & (0x80 >> (index % 8)))


def status_check(client: httpx.Client, token: str) -> bool:
    """What a relying party does with joserfc: verify the VC-JWT with the CA's JWKS, fetch its
    status list credential, verify that too, read the bit. True: not revoked."""
    jwks = KeySet.import_key_set(client.get("/.well-known/aex-ca.json").json()["jwks"])
    credential = jwt.decode(token, jwks, algorithms=["ES256"]).claims
    status = credential["credentialStatus"]
    assert status["type"] == "BitstringStatusListEntry"
    assert status["statusPurpose"] == "revocation"
    listed = httpx.get(status["statusListCredential"], timeout=30)
    assert listed.status_code == 200
    assert listed.headers["content-type"].startswith("application/vc+jwt")
    status_list = jwt.decode(listed.text, jwks, algorithms=["ES256"]).claims
    assert "BitstringStatusListCredential" in status_list["type"]
    assert status_list["credentialSubject"]["statusPurpose"] == "revocation"
    encoded = status_list["credentialSubject"]["encodedList"]
    return not _bit(encoded, int(status["statusListIndex"]))


def test_a_revoked_certificates_vc_fails_status_checking_in_joserfc(client: httpx.Client) -> None:
    agent = provider(client, subscribe=False, plan="PROFESSIONAL")
    claim = Claim("TECHNOLOGY", "code.review", "Go", Authorization.SELF_ASSERTED)
    ids = []
    for _ in range(2):
        issued = request_certificate(client, agent, new_key(), CertificateType.CAPABILITY, (claim,))
        assert issued.status_code == 201, issued.text
        ids.append(issued.json()["certificate_id"])
    revoked, live = ids
    tokens = {
        cert_id: client.get(f"/v1/certificates/{cert_id}", params={"format": "vc-jwt"}).text
        for cert_id in ids
    }
    assert status_check(client, tokens[revoked]) is True
    response = client.post(
        f"/v1/certificates/{revoked}/revoke", json={"reason": 1}, headers=agent.headers
    )
    assert response.status_code == 200, response.text
    assert status_check(client, tokens[revoked]) is False  # the VC issued before, refused now
    assert status_check(client, tokens[live]) is True


# --- RESELLER ------------------------------------------------------------------------------


def _delegate(
    client: httpx.Client, delegator: Provider, reseller: Provider, *, expires_in_s: int = 3600
) -> tuple[str, LocalSigner]:
    """The resold provider registers its key and signs a delegation; the reseller files it."""
    key = new_key()
    body = {
        "provider_id": delegator.provider_id,
        "public_key_jwk": public_key_to_jwk(key.public_key),
    }
    registered = client.post(
        "/v1/certificates/delegation-keys", json=body, headers=delegator.headers
    )
    assert registered.status_code in (200, 201), registered.text
    now_s = int(time.time())
    token = sign_delegation(
        delegation_id=f"dlg_{uuid.uuid4().hex[:16]}",
        delegator_provider_id=delegator.provider_id,
        reseller_provider_id=reseller.provider_id,
        scope=[("TECHNOLOGY", "code.review")],
        issued_at_s=now_s,
        expires_at_s=now_s + expires_in_s,
        signer=key,
    )
    filed = client.post(
        "/v1/certificates/delegations", json={"delegation": token}, headers=reseller.headers
    )
    assert filed.status_code in (200, 201), filed.text
    assert filed.json()["expires_at_ms"] == (now_s + expires_in_s) * 1000  # JWT `exp`, in ms
    return str(filed.json()["delegation_id"]), key


def test_a_reseller_certificate_needs_a_signed_delegation_and_dies_with_it(
    client: httpx.Client,
) -> None:
    delegator = provider(client, subscribe=False, plan="PROFESSIONAL")
    reseller = provider(client, subscribe=False, plan="PROFESSIONAL")
    in_scope = Claim("TECHNOLOGY", "code.review", "Go", Authorization.SELF_ASSERTED)
    # No delegation: refused, nothing issued.
    refused = request_certificate(
        client, reseller, new_key(), CertificateType.RESELLER, (in_scope,)
    )
    assert 400 <= refused.status_code < 500, refused.text
    delegation_id, _ = _delegate(client, delegator, reseller)
    # A claim beyond the delegation's scope: refused.
    beyond = Claim("TECHNOLOGY", "translation", "fr", Authorization.SELF_ASSERTED)
    outside = request_certificate(client, reseller, new_key(), CertificateType.RESELLER, (beyond,))
    assert 400 <= outside.status_code < 500, outside.text
    issued = request_certificate(client, reseller, new_key(), CertificateType.RESELLER, (in_scope,))
    assert issued.status_code == 201, issued.text
    certificate_id = issued.json()["certificate_id"]
    # Only the resold provider withdraws the resale; the reseller cannot.
    by_reseller = client.post(
        f"/v1/certificates/delegations/{delegation_id}/revoke", headers=reseller.headers
    )
    assert by_reseller.status_code == 403, by_reseller.text
    assert by_reseller.json()["type"].endswith("/not-the-delegator")
    revoked = client.post(
        f"/v1/certificates/delegations/{delegation_id}/revoke", headers=delegator.headers
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "REVOKED"
    assert revoked.json()["certificates_revoked"] == [certificate_id]
    shown = client.get(f"/v1/certificates/{certificate_id}/record", headers=reseller.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["state"] == "REVOKED", shown.text
    # The record's own times are `_ms` (docs/api.md "Times"); the signed certificate inside
    # keeps its RFC 3339 strings, and both say the same.
    record = shown.json()
    signed = record["certificate"]
    assert record["revoked_at_ms"] >= record["issued_at_ms"] >= record["not_before_ms"]
    assert record["expires_at_ms"] == _ms_of(signed["expires_at"])
    assert record["issued_at_ms"] == _ms_of(signed["issued_at"])
    # After revocation the reseller can no longer be certified under it.
    again = request_certificate(client, reseller, new_key(), CertificateType.RESELLER, (in_scope,))
    assert 400 <= again.status_code < 500, again.text


def test_a_delegation_signed_with_an_unregistered_key_is_refused(client: httpx.Client) -> None:
    delegator = provider(client, subscribe=False)
    reseller = provider(client, subscribe=False)
    now_s = int(time.time())
    token = sign_delegation(
        delegation_id=f"dlg_{uuid.uuid4().hex[:16]}",
        delegator_provider_id=delegator.provider_id,
        reseller_provider_id=reseller.provider_id,
        scope=[("TECHNOLOGY", "code.review")],
        issued_at_s=now_s,
        expires_at_s=now_s + 3600,
        signer=new_key(),
    )
    filed = client.post(
        "/v1/certificates/delegations", json={"delegation": token}, headers=reseller.headers
    )
    assert 400 <= filed.status_code < 500, filed.text


def _ms_of(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339).timestamp() * 1000)

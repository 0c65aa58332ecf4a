"""Certificates over real HTTP: request → issue → verify → revoke → CRL, checked by openssl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from aex.core.certs import Authorization, CertificateType, Claim, LocalSigner, sign_request
from tests.serve.market_helpers import OPERATOR, Provider, consumer, provider

OPENSSL = shutil.which("openssl")


def signed_request(agent: Provider, authorization: Authorization) -> dict[str, Any]:
    key = LocalSigner.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    claim = Claim("TECHNOLOGY", "code.review", "Go, Python", authorization)
    return sign_request(
        provider_id=agent.provider_id,
        agent_name="CodeReviewBot",
        type=CertificateType.CAPABILITY,
        claims=[claim],
        signer=key,
    )


def openssl_verify(*args: str) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, "verify", *args], capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_request_issue_verify_revoke_crl_round_trip(client: httpx.Client, tmp_path: Path) -> None:
    bot, verifier = provider(client), consumer(client, funds=None)
    requested = client.post(
        "/v1/certificates/request",
        json=signed_request(bot, Authorization.SELF_ASSERTED),
        headers=bot.headers,
    )
    assert requested.status_code == 201, requested.text
    assert requested.json()["state"] == "ISSUED"  # self-asserted: auto-approved
    cert_id = requested.json()["certificate_id"]
    certificate = client.get(f"/v1/certificates/{cert_id}")  # public, no credential
    assert certificate.status_code == 200
    assert certificate.json()["subject"]["provider_id"] == bot.provider_id

    verified = client.post(
        "/v1/certificates/verify", json={"certificate_id": cert_id}, headers=verifier.headers
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["valid"] is True
    reputation = verified.json()["reputation"]
    assert (reputation["tier"], reputation["contracts"]) == ("BRONZE", 0)
    assert 0 <= reputation["score"] <= 1
    by_document = client.post(
        "/v1/certificates/verify", json=certificate.json(), headers=verifier.headers
    )
    assert by_document.json()["valid"] is True
    usage = client.get("/v1/certificates/usage", headers=verifier.headers).json()
    assert usage["verification_calls"] == 2
    assert usage["amount_due_usd"] == "0.002000"

    ca = client.get("/.well-known/aex-ca.json").json()
    ca_pem, cert_pem, crl_pem = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "crl.pem"
    ca_pem.write_text(ca["keys"][0]["certificate_pem"])
    x509 = client.get(f"/v1/certificates/{cert_id}", params={"format": "x509"})
    assert x509.headers["content-type"].startswith("application/x-pem-file")
    cert_pem.write_text(x509.text)
    accepted = openssl_verify("-CAfile", str(ca_pem), str(cert_pem))
    assert accepted.returncode == 0, accepted.stderr
    vc = client.get(f"/v1/certificates/{cert_id}", params={"format": "vc-jwt"})
    assert vc.text.count(".") == 2

    revoked = client.post(
        f"/v1/certificates/{cert_id}/revoke", json={"reason": 1}, headers=bot.owner.headers
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "REVOKED"
    after = client.post(
        "/v1/certificates/verify", json={"certificate_id": cert_id}, headers=verifier.headers
    )
    assert after.json() | {"certificate": None} == after.json() | {
        "valid": False,
        "reason": "revoked",
        "certificate": None,
    }
    crl = client.get("/v1/crl").json()
    assert any(entry["serial"] == certificate.json()["serial"] for entry in crl["entries"])
    crl_pem.write_text(client.get("/v1/crl", params={"format": "x509"}).text)
    rejected = openssl_verify(
        "-crl_check", "-CRLfile", str(crl_pem), "-CAfile", str(ca_pem), str(cert_pem)
    )
    assert rejected.returncode != 0
    assert "certificate revoked" in rejected.stdout + rejected.stderr


def test_reviewed_claims_wait_for_the_operator_and_only_the_owner_requests(
    client: httpx.Client,
) -> None:
    bot, other = provider(client), provider(client)
    document = signed_request(bot, Authorization.TRANSACTION_EVIDENCE)
    foreign = client.post("/v1/certificates/request", json=document, headers=other.headers)
    assert foreign.status_code == 403
    requested = client.post("/v1/certificates/request", json=document, headers=bot.headers)
    assert requested.json()["state"] == "REQUESTED"
    cert_id = requested.json()["certificate_id"]
    assert client.get(f"/v1/certificates/{cert_id}").status_code == 404
    denied = client.post(f"/v1/admin/certificates/{cert_id}/approve", headers=bot.headers)
    assert denied.status_code == 403
    approved = client.post(
        f"/v1/admin/certificates/{cert_id}/approve", json={"note": "ok"}, headers=OPERATOR
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "ISSUED"
    renewed = client.post(f"/v1/certificates/{cert_id}/renew", headers=bot.headers)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["state"] == "RENEWED"
    reputation = client.get(f"/v1/providers/{bot.provider_id}/reputation", headers=bot.headers)
    assert reputation.json()["components"]["certification_bonus"] == 0.05

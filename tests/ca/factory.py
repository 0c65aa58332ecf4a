"""Builders shared by the certificate tests: fixed keys, a fixed clock, an issued certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from aex.core.certs import (
    Authorization,
    CaKey,
    CertEvent,
    CertificateRecord,
    CertificateType,
    Claim,
    LocalSigner,
    ReputationSnapshot,
    ca_document,
    issue_certificate,
    open_request,
    review_request,
    sign_request,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
VALIDITY = timedelta(days=90)
GOLD = ReputationSnapshot(tier="GOLD", score="0.82", contracts=67)
SELF_CLAIM = Claim(
    "TECHNOLOGY", "code.review", "Go, Python, TypeScript", Authorization.SELF_ASSERTED
)
EVIDENCE_CLAIM = Claim("TECHNOLOGY", "security.audit", "Go", Authorization.TRANSACTION_EVIDENCE)


def signer(seed: int) -> LocalSigner:
    """A fixed P-256 key per seed (deterministic tests; never use small scalars for real)."""
    return LocalSigner.from_private_key(ec.derive_private_key(10_000 + seed, ec.SECP256R1()))


CA = signer(1)
AGENT = signer(2)


def request_document(
    *, claims: tuple[Claim, ...] = (SELF_CLAIM,), agent: LocalSigner = AGENT
) -> dict[str, Any]:
    return sign_request(
        provider_id="prov_abc",
        agent_name="CodeReviewBot",
        type=CertificateType.CAPABILITY,
        claims=claims,
        signer=agent,
    )


def issued_record(
    *,
    serial: int = 1234567890123456789012345678901234567,
    ca: LocalSigner = CA,
    now: datetime = NOW,
) -> CertificateRecord:
    record = open_request(request_document(), record_id="cert_test")
    assert isinstance(record, CertificateRecord)
    approved = review_request(record, CertEvent.APPROVE)
    assert isinstance(approved, CertificateRecord)
    issued = issue_certificate(
        approved, serial=serial, reputation=GOLD, now=now, validity=VALIDITY, signer=ca
    )
    assert isinstance(issued, CertificateRecord)
    return issued


def ca_doc(*signers: LocalSigner) -> dict[str, Any]:
    keys = [CaKey(s.kid, s.public_key, "", active=i == 0) for i, s in enumerate(signers or (CA,))]
    return ca_document(keys, name="AEX test CA")

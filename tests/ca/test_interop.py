"""Tools we did not write accept our exports: `openssl verify` for the X.509 certificate and
CRL, joserfc for the VC-JWT with the JWK from the CA document."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc import jwt
from joserfc.jwk import KeySet

from aex.ca.authority import CertificateAuthority
from aex.ca.keystore import FileKeyProvider
from aex.ca.store import FileCertificateStore
from aex.core.certs import Certificate, CertificateRecord, RevocationReason, verify_crl
from aex.core.jcs import canonical_json
from aex.core.reasons import Rejected
from aex.core.x509_export import (
    AEX_CLAIMS_OID,
    certificate_to_vc_jwt,
    certificate_to_x509,
    crl_to_x509,
)
from tests.ca.factory import request_document

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    # The real clock: openssl verifies against the current time.
    return CertificateAuthority(FileKeyProvider(tmp_path), FileCertificateStore(tmp_path))


def issue(authority: CertificateAuthority) -> tuple[str, Certificate]:
    record = authority.request(request_document())
    assert isinstance(record, CertificateRecord)
    assert record.certificate is not None
    return record.id, record.certificate


def openssl_verify(*args: str) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, "verify", *args], capture_output=True, text=True, timeout=30, check=False
    )


@needs_openssl
def test_openssl_accepts_the_x509_export_and_rejects_it_after_revocation(
    authority: CertificateAuthority, tmp_path: Path
) -> None:
    cert_id, certificate = issue(authority)
    keys = authority.keys
    ca_pem, cert_pem, crl_pem = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "crl.pem"
    ca_pem.write_text(authority.ca_document()["keys"][0]["certificate_pem"])
    exported = certificate_to_x509(certificate, signer=keys.signer())
    cert_pem.write_bytes(exported.public_bytes(Encoding.PEM))
    accepted = openssl_verify("-CAfile", str(ca_pem), str(cert_pem))
    assert accepted.returncode == 0, accepted.stderr
    assert "OK" in accepted.stdout

    authority.revoke(cert_id, reason=RevocationReason.keyCompromise)
    crl = verify_crl(authority.crl(), ca_keys=keys.public_keys(), now=datetime.now(UTC))
    assert not isinstance(crl, Rejected)
    x509_crl = crl_to_x509(crl, signer=keys.signer())
    crl_pem.write_bytes(x509_crl.public_bytes(Encoding.PEM))
    rejected = openssl_verify(
        "-crl_check", "-CRLfile", str(crl_pem), "-CAfile", str(ca_pem), str(cert_pem)
    )
    assert rejected.returncode != 0
    assert "certificate revoked" in rejected.stdout + rejected.stderr


def test_x509_export_carries_claims_in_a_non_critical_extension(
    authority: CertificateAuthority,
) -> None:
    _, certificate = issue(authority)
    exported = certificate_to_x509(certificate, signer=authority.keys.signer())
    extension = exported.extensions.get_extension_for_oid(AEX_CLAIMS_OID)
    assert extension.critical is False
    value = extension.value.value  # type: ignore[attr-defined]
    assert value[0] == 0x0C  # DER UTF8String, long-form length
    length_octets = value[1] & 0x7F if value[1] & 0x80 else 0
    content = value[2 + length_octets :]
    summary = json.loads(content)
    assert summary["claims"] == certificate.to_json()["claims"]
    assert canonical_json(summary) == content
    assert exported.serial_number == int(certificate.serial)
    ca_cert = x509.load_pem_x509_certificate(
        authority.ca_document()["keys"][0]["certificate_pem"].encode()
    )
    exported.verify_directly_issued_by(ca_cert)


def test_x509_crl_has_number_and_authority_key_identifier(authority: CertificateAuthority) -> None:
    cert_id, certificate = issue(authority)
    authority.revoke(cert_id, reason=RevocationReason.superseded)
    document = authority.crl()
    crl = verify_crl(document, ca_keys=authority.keys.public_keys(), now=datetime.now(UTC))
    assert not isinstance(crl, Rejected)
    exported = crl_to_x509(crl, signer=authority.keys.signer())
    assert exported.is_signature_valid(authority.keys.signer().public_key)
    number = exported.extensions.get_extension_for_class(x509.CRLNumber).value
    assert number.crl_number == document["crl_number"]
    exported.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    revoked = exported.get_revoked_certificate_by_serial_number(int(certificate.serial))
    assert revoked is not None
    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.superseded


def test_joserfc_verifies_the_vc_jwt_with_the_ca_document_jwk(
    authority: CertificateAuthority,
) -> None:
    _, certificate = issue(authority)
    token = certificate_to_vc_jwt(certificate, signer=authority.keys.signer())
    jwks = KeySet.import_key_set(authority.ca_document()["jwks"])
    decoded = jwt.decode(token, jwks, algorithms=["ES256"])
    assert decoded.header == {"alg": "ES256", "typ": "vc+jwt", "kid": certificate.issuer_kid}
    claims = decoded.claims
    assert claims["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert "VerifiableCredential" in claims["type"]
    # Each claim as certified, plus its assurance level (aex/core/certs.py claim_assurance).
    assert claims["credentialSubject"]["claims"] == [
        {**claim, "assurance": "self_asserted"} for claim in certificate.to_json()["claims"]
    ]
    assert claims["validUntil"] == certificate.to_json()["expires_at"]
    assert claims["exp"] == int(certificate.expires_at.timestamp())


def test_joserfc_rejects_a_vc_jwt_signed_by_an_unpublished_key(
    authority: CertificateAuthority, tmp_path: Path
) -> None:
    _, certificate = issue(authority)
    token = certificate_to_vc_jwt(certificate, signer=authority.keys.signer())
    other = FileKeyProvider(tmp_path / "other")
    jwks = KeySet.import_key_set(other.ca_document()["jwks"])
    with pytest.raises(Exception):  # joserfc: no key with this kid
        jwt.decode(token, jwks, algorithms=["ES256"])
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}"
    ours = KeySet.import_key_set(authority.ca_document()["jwks"])
    with pytest.raises(Exception):
        jwt.decode(forged, ours, algorithms=["ES256"])


def test_exports_are_pure_functions_of_their_inputs(authority: CertificateAuthority) -> None:
    _, certificate = issue(authority)
    signer = authority.keys.signer()
    assert certificate_to_vc_jwt(certificate, signer=signer) == certificate_to_vc_jwt(
        certificate, signer=signer
    )
    first = certificate_to_x509(certificate, signer=signer).public_bytes(Encoding.DER)
    assert certificate_to_x509(certificate, signer=signer).public_bytes(Encoding.DER) == first
    assert timedelta(0) < certificate.expires_at - certificate.not_before

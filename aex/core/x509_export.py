# Rule: how an AEX certificate, CA key and CRL look to tools we did not write (X.509 v3, X.509 v2
# CRL, W3C Verifiable Credential 2.0 as a JWT) is decided here and only here.
#
# Theory of operation: every export is a pure function of the AEX document, a `Signer` and the
# names and times passed in. The CA key never leaves its `Signer`: X.509 structures are built by
# `cryptography`'s builders, signed with a fixed throwaway key only to obtain the DER of the
# to-be-signed part (TBSCertificate / TBSCertList, RFC 5280 §4.1 and §5.1), which the real
# signer then signs; the outer SEQUENCE {tbs, ecdsa-with-SHA256, BIT STRING signature} is
# reassembled here. So a KMS or HSM signer exports X.509 as easily as a local key.
#   - X.509 certificate: subject CN = agent name, UID = provider id, the agent's P-256 key; the
#     AEX claims, type, id and reputation sit in one non-critical extension AEX_CLAIMS_OID whose
#     value is a DER UTF8String holding the JCS JSON of {id, type, claims, reputation}.
#     X.509 notAfter is inclusive, AEX expires_at exclusive: notAfter = expires_at - 1 s.
#   - CA certificate: self-signed, CA:TRUE pathlen 0, keyCertSign + cRLSign; the subject names the
#     kid (OU "kid <kid>"), so that rotated keys have distinct issuer names.
#   - X.509 CRL: CRL number and authority key identifier extensions, one entry per serial with
#     its CRLReason (absent for "unspecified", RFC 5280 §5.3.1).
#   - VC-JWT: VC-JOSE-COSE §3.1: JOSE header {alg ES256, typ vc+jwt, kid}, the credential as the
#     payload, the raw r‖s signature (RFC 7518 §3.4).
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from aex.core.certs import (
    Certificate,
    RevocationList,
    RevocationReason,
    Signer,
    b64url_encode,
    claim_assurance,
    format_time,
)
from aex.core.jcs import canonical_json

__all__ = [
    "AEX_CLAIMS_OID",
    "CA_NAME_DEFAULT",
    "VC_ISSUER_DEFAULT",
    "ca_name",
    "certificate_to_vc_jwt",
    "certificate_to_x509",
    "crl_to_x509",
    "self_signed_ca_certificate",
    "sign_vc_jwt",
]

# A UUID-derived OID (ITU-T X.667, arc 2.25): unique without registration. Its value is a DER
# UTF8String of JCS JSON {"id", "type", "claims", "reputation"} (docs/certificates.md).
AEX_CLAIMS_OID: Final = x509.ObjectIdentifier("2.25.37434180051917319859119291584512223060")
CA_NAME_DEFAULT: Final = "AEX Agent Certification Authority"
VC_ISSUER_DEFAULT: Final = "https://aex.example/.well-known/aex-ca.json"

# DER of AlgorithmIdentifier { ecdsa-with-SHA256 (1.2.840.10045.4.3.2) }, RFC 5758 §3.2.
_ECDSA_WITH_SHA256: Final = bytes.fromhex("300a06082a8648ce3d040302")
# The throwaway key that signs a TBS structure only so that the builder emits it; its
# signature is discarded and never published. Deterministic, so exports stay pure.
_THROWAWAY_KEY: Final = ec.derive_private_key(1, ec.SECP256R1())
_UTF8_STRING_TAG: Final = 0x0C
_SEQUENCE_TAG: Final = 0x30
_BIT_STRING_TAG: Final = 0x03


def ca_name(kid: str, *, name: str = CA_NAME_DEFAULT) -> x509.Name:
    """The X.509 name of the CA key `kid` (issuer of its certificates and CRLs)."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "AEX"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"kid {kid}"),
        ]
    )


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    assert len(octets) < 0x7F
    return bytes([tag, 0x80 | len(octets)]) + octets + content


# The outer SEQUENCE of a certificate or CRL: tbs, algorithm, signature as a BIT STRING.
def _assemble(tbs: bytes, signer: Signer) -> bytes:
    raw = signer.sign(tbs)
    assert len(raw) == 64
    der_signature = encode_dss_signature(
        int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    )
    bit_string = _der(_BIT_STRING_TAG, b"\x00" + der_signature)
    return _der(_SEQUENCE_TAG, tbs + _ECDSA_WITH_SHA256 + bit_string)


def self_signed_ca_certificate(
    signer: Signer,
    *,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    name: str = CA_NAME_DEFAULT,
) -> x509.Certificate:
    """The self-signed X.509 CA certificate of one CA key, the trust anchor for `openssl verify`."""
    assert not_before < not_after
    assert 0 < serial < 2**159
    subject = ca_name(signer.kid, name=name)
    ski = x509.SubjectKeyIdentifier.from_public_key(signer.public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(signer.public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    tbs = builder.sign(_THROWAWAY_KEY, hashes.SHA256(), ecdsa_deterministic=True)
    return x509.load_der_x509_certificate(_assemble(tbs.tbs_certificate_bytes, signer))


def _claims_extension(certificate: Certificate) -> x509.UnrecognizedExtension:
    body = certificate.body()
    summary = {name: body[name] for name in ("id", "type", "claims", "reputation")}
    return x509.UnrecognizedExtension(
        AEX_CLAIMS_OID, _der(_UTF8_STRING_TAG, canonical_json(summary))
    )


def certificate_to_x509(
    certificate: Certificate, *, signer: Signer, name: str = CA_NAME_DEFAULT
) -> x509.Certificate:
    """The certificate as X.509 v3, signed by the CA key that signed the AEX certificate.

    `openssl verify -CAfile <that key's CA certificate>` accepts it (tests/ca/test_interop.py).
    """
    assert signer.kid == certificate.issuer_kid, "export with the key that issued it"
    subject = certificate.subject
    key_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, subject.agent_name),
                    x509.NameAttribute(NameOID.USER_ID, subject.provider_id),
                ]
            )
        )
        .issuer_name(ca_name(signer.kid, name=name))
        .public_key(subject.public_key)
        .serial_number(int(certificate.serial))
        .not_valid_before(certificate.not_before)
        .not_valid_after(certificate.expires_at - timedelta(seconds=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject.public_key), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key), False)
        .add_extension(_claims_extension(certificate), critical=False)
    )
    tbs = builder.sign(_THROWAWAY_KEY, hashes.SHA256(), ecdsa_deterministic=True)
    return x509.load_der_x509_certificate(_assemble(tbs.tbs_certificate_bytes, signer))


def crl_to_x509(
    crl: RevocationList, *, signer: Signer, name: str = CA_NAME_DEFAULT
) -> x509.CertificateRevocationList:
    """The revocation list as an X.509 v2 CRL (CRL number, authority key identifier), signed by
    `signer`: export it once per published CA key, since X.509 matches a CRL to the key that
    issued the certificate (docs/certificates.md)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_name(signer.kid, name=name))
        .last_update(crl.this_update)
        .next_update(crl.next_update)
        .add_extension(x509.CRLNumber(crl.crl_number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key), False)
    )
    for entry in crl.entries:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(entry.serial))
            .revocation_date(entry.revoked_at)
        )
        if entry.reason is not RevocationReason.unspecified:
            flag = x509.ReasonFlags(entry.reason.name)  # its values are the RFC 5280 names
            revoked = revoked.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    tbs = builder.sign(_THROWAWAY_KEY, hashes.SHA256(), ecdsa_deterministic=True)
    return x509.load_der_x509_crl(_assemble(tbs.tbs_certlist_bytes, signer))


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def sign_vc_jwt(payload: Mapping[str, Any], *, signer: Signer) -> str:
    """A compact JWS (ES256, typ vc+jwt, the CA kid) over the JCS form of `payload`."""
    header = {"alg": "ES256", "typ": "vc+jwt", "kid": signer.kid}
    signing_input = (
        f"{b64url_encode(canonical_json(header))}.{b64url_encode(canonical_json(payload))}"
    )
    return f"{signing_input}.{b64url_encode(signer.sign(signing_input.encode('ascii')))}"


def certificate_to_vc_jwt(
    certificate: Certificate,
    *,
    signer: Signer,
    issuer: str = VC_ISSUER_DEFAULT,
    status: Mapping[str, str] | None = None,
) -> str:
    """The certificate as a W3C Verifiable Credential 2.0 secured as a JWT (VC-JOSE-COSE).

    The payload is the credential itself; the registered claims iss, sub, jti, iat, nbf and
    exp repeat its issuer, subject, id and validity for plain JWT libraries. `status` is the
    record's BitstringStatusListEntry (aex/core/status_list.py `status_entry`), so a verifier
    learns of a revocation from the status list credential. Each claim carries its assurance
    level (aex/core/certs.py `claim_assurance`).
    """
    assert signer.kid == certificate.issuer_kid, "export with the key that issued it"
    body = certificate.body()
    credential_id = f"urn:aex:certificate:{certificate.id}:{certificate.serial}"
    subject_id = f"urn:aex:agent:{b64url_encode(certificate.subject.provider_id.encode())}"
    subject_id += f":{b64url_encode(certificate.subject.agent_name.encode())}"
    payload: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential", "AexAgentCertificate"],
        "id": credential_id,
        "issuer": issuer,
        "validFrom": format_time(certificate.not_before),
        "validUntil": format_time(certificate.expires_at),
        "credentialSubject": {
            "id": subject_id,
            "provider_id": certificate.subject.provider_id,
            "agent_name": certificate.subject.agent_name,
            "public_key_jwk": body["subject"]["public_key_jwk"],
            "certificate_type": body["type"],
            "serial": certificate.serial,
            "claims": [
                {**claim.to_json(), "assurance": claim_assurance(claim).value}
                for claim in certificate.claims
            ],
            "reputation": body["reputation"],
        },
        "iss": issuer,
        "sub": subject_id,
        "jti": credential_id,
        "iat": _seconds(certificate.issued_at),
        "nbf": _seconds(certificate.not_before),
        "exp": _seconds(certificate.expires_at),
    }
    if status is not None:
        payload["credentialStatus"] = dict(status)
    return sign_vc_jwt(payload, signer=signer)

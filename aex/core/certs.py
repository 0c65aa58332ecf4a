# Rule: what an AEX certificate, certificate request, revocation list and CA document are, how
# they are signed and verified, and which certificate lifecycle transitions are legal, is decided
# here and only here.
#
# Theory of operation (spec "Agent Certification Authority"):
#   - Signed documents are JSON objects with a top-level "signature" member. The signature is
#     ECDSA P-256 / SHA-256 (ES256) over the RFC 8785 canonical form (aex/core/jcs.py) of the
#     object without its "signature" member; "alg" and "issuer_kid" are inside the signed bytes,
#     so neither can be swapped. The signature is base64url (no padding) of the raw 64-byte r‖s
#     form, the JOSE (RFC 7518 §3.4) encoding: fixed length, one encoding shared with the VC-JWT
#     export, and strict decoding makes the encoding itself non-malleable (docs/certificates.md).
#   - Integers in signed documents stay below 2^53 (JCS); the X.509 serial (up to 159 bits) and
#     scores travel as decimal strings. Times are RFC 3339 UTC strings with second precision.
#   - Keys and time are arguments: a `Signer` (kid, public key, sign(bytes) -> r‖s) is passed in;
#     `LocalSigner` signs deterministically (RFC 6979), so signing is a pure function too. Ids
#     and serials are drawn by drivers and passed in.
#   - The lifecycle is the table TRANSITIONS; an event missing from it is ILLEGAL_TRANSITION.
#   - Verification returns `Verified | Rejected[CertVerifyReason]`, checks in enum order.
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from aex.core import limits
from aex.core.jcs import CanonicalizationError, canonical_json
from aex.core.lifecycle import Lifecycle, render_mermaid
from aex.core.reasons import (
    CertLifecycleRejectReason,
    CertRequestRejectReason,
    CertVerifyReason,
    Rejected,
)
from aex.core.text import check_display_text

__all__ = [
    "CERTIFICATE_VERSION",
    "CERT_LIFECYCLE",
    "CRL_NEXT_UPDATE_DEFAULT",
    "DELEGATION_CATEGORY",
    "EXCHANGE_STATED_TYPES",
    "REPUTATION_TIERS",
    "SIGNATURE_ALG",
    "TRANSITIONS",
    "Assurance",
    "Authorization",
    "CaKey",
    "CertEvent",
    "CertState",
    "Certificate",
    "CertificateRecord",
    "CertificateRequest",
    "CertificateType",
    "Claim",
    "CrlState",
    "LocalSigner",
    "ReputationSnapshot",
    "RevocationList",
    "RevocationReason",
    "RevokedEntry",
    "Signer",
    "Subject",
    "Verified",
    "b64url_decode",
    "b64url_encode",
    "ca_document",
    "ca_keys_from_document",
    "claim_assurance",
    "counts_toward_certification",
    "crl_state_reissue",
    "crl_state_revoke",
    "format_time",
    "issue_certificate",
    "jwk_thumbprint",
    "lifecycle_mermaid",
    "open_request",
    "parse_certificate",
    "parse_time",
    "public_key_from_jwk",
    "public_key_to_jwk",
    "record_from_json",
    "record_to_json",
    "renew_certificate",
    "reputation_claims",
    "review_policy",
    "review_request",
    "revoke_certificate",
    "sign_crl",
    "sign_document",
    "sign_request",
    "state_claims",
    "verify_certificate",
    "verify_crl",
    "verify_offline",
]

SIGNATURE_ALG: Final = "ES256"
CERTIFICATE_VERSION: Final = 1
# How long a CRL stays fresh: a day, as the CA/Browser Forum baseline for subscriber CRLs
# allows up to 10 days; relying parties must refetch after next_update.
CRL_NEXT_UPDATE_DEFAULT: Final = timedelta(days=1)
# Spec "Reputation Tiers", lowest first.
REPUTATION_TIERS: Final = ("BRONZE", "SILVER", "GOLD", "PLATINUM")

_ECDSA: Final = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_COORDINATE_BYTES: Final = 32
_SIGNATURE_BYTES: Final = 2 * _COORDINATE_BYTES
_TIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# A reputation score in [0, 1] with at most 4 decimals, as a string (never a float).
_SCORE: Final = re.compile(r"0(\.[0-9]{1,4})?|1(\.0{1,4})?")
# Two canonical base64url encodings of 32 bytes: 43 characters, the last one carrying 4 data
# bits and 2 zero padding bits (so it is one of 16 characters).
_COORDINATE: Final = re.compile(r"(?:[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]){2}")
_SERIAL: Final = re.compile(r"[1-9][0-9]{0,47}")
# base64url of 64 bytes: 85 free characters and a last one whose low 4 bits are zero.
_SIGNATURE_CHARS: Final = 86
_SIGNATURE_TEXT: Final = re.compile(r"[A-Za-z0-9_-]{85}[AQgw]")
# X.509 serials are at most 20 octets and positive (RFC 5280 §4.1.2.2).
_SERIAL_MAX: Final = 2**159 - 1


class CertificateType(StrEnum):
    """Spec "Certificate Types"."""

    CAPABILITY = "CAPABILITY"
    IDENTITY = "IDENTITY"
    REPUTATION = "REPUTATION"
    RESELLER = "RESELLER"


class Authorization(StrEnum):
    """How a claim is backed, weakest first: "start as self-asserted claims, grow into
    evidence-backed attestations" (spec "Why Cryptographic Certificates?")."""

    SELF_ASSERTED = "SELF_ASSERTED"
    TRANSACTION_EVIDENCE = "TRANSACTION_EVIDENCE"
    THIRD_PARTY_ATTESTED = "THIRD_PARTY_ATTESTED"
    AEX_VERIFIED = "AEX_VERIFIED"


class Assurance(StrEnum):
    """How far a claim has been checked, the level verifiers and the market read (issue 15)."""

    SELF_ASSERTED = "self_asserted"
    EVIDENCE_BACKED = "evidence_backed"
    OPERATOR_REVIEWED = "operator_reviewed"


# The one mapping from a claim's authorization to its assurance. TRANSACTION_EVIDENCE and
# AEX_VERIFIED are stated by the exchange from what it saw (settled contracts, a passed endpoint
# challenge) or reviewed by the operator before issue; THIRD_PARTY_ATTESTED is an attestation
# the operator reviewed (review_policy holds every non-self-asserted claim for review).
_ASSURANCE: Final[Mapping[Authorization, Assurance]] = {
    Authorization.SELF_ASSERTED: Assurance.SELF_ASSERTED,
    Authorization.TRANSACTION_EVIDENCE: Assurance.EVIDENCE_BACKED,
    Authorization.AEX_VERIFIED: Assurance.EVIDENCE_BACKED,
    Authorization.THIRD_PARTY_ATTESTED: Assurance.OPERATOR_REVIEWED,
}
assert set(_ASSURANCE) == set(Authorization)

# IDENTITY and REPUTATION certificates are requested without claims: the exchange states them
# from its own evidence (a passed endpoint challenge; the trust broker's record).
EXCHANGE_STATED_TYPES: Final = frozenset({CertificateType.IDENTITY, CertificateType.REPUTATION})
# A RESELLER certificate carries the requested claims plus one the exchange adds, of this
# category, naming the delegation that authorises the resale (aex/core/delegation.py).
DELEGATION_CATEGORY: Final = "RESELLER"


def claim_assurance(claim: Claim) -> Assurance:
    """The claim's assurance level (docs/certificates.md "Assurance")."""
    return _ASSURANCE[claim.authorization]


def counts_toward_certification(certificate_type: CertificateType, claim: Claim) -> bool:
    """Whether an active certificate's claim counts toward the reputation's certification
    bonus and the bid's certification score: the one rule (docs/certificates.md "Assurance").

    Self-asserted claims are allowed and published, marked as such, but count for nothing: a
    provider cannot raise its own reputation by saying things. A REPUTATION certificate restates
    the reputation it was derived from, so counting it would count the same contracts twice.
    """
    if certificate_type is CertificateType.REPUTATION:
        return False
    if certificate_type is CertificateType.RESELLER and claim.category == DELEGATION_CATEGORY:
        return False  # the authority to resell, not a capability
    return claim_assurance(claim) is not Assurance.SELF_ASSERTED


class RevocationReason(IntEnum):
    """RFC 5280 §5.3.1 CRLReason codes (7 is unused; 8, removeFromCRL, is for delta CRLs)."""

    unspecified = 0
    keyCompromise = 1
    cACompromise = 2
    affiliationChanged = 3
    superseded = 4
    cessationOfOperation = 5
    certificateHold = 6
    removeFromCRL = 8
    privilegeWithdrawn = 9
    aACompromise = 10


# certificateHold is reversible and removeFromCRL belongs to delta CRLs: AEX revocation is final.
_REVOCATION_REASONS_ALLOWED: Final = frozenset(RevocationReason) - {
    RevocationReason.certificateHold,
    RevocationReason.removeFromCRL,
}


class CertState(StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    ISSUED = "ISSUED"
    RENEWED = "RENEWED"
    REVOKED = "REVOKED"


class CertEvent(StrEnum):
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    ISSUE = "ISSUE"
    RENEW = "RENEW"
    REVOKE = "REVOKE"


# Spec "The Certificate Lifecycle": REQUEST -> REVIEW -> ISSUE -> RENEW or REVOKE.
TRANSITIONS: Final[Mapping[tuple[CertState, CertEvent], CertState]] = {
    (CertState.REQUESTED, CertEvent.APPROVE): CertState.APPROVED,
    (CertState.REQUESTED, CertEvent.REJECT): CertState.REJECTED,
    (CertState.APPROVED, CertEvent.ISSUE): CertState.ISSUED,
    (CertState.ISSUED, CertEvent.RENEW): CertState.RENEWED,
    (CertState.RENEWED, CertEvent.RENEW): CertState.RENEWED,
    (CertState.ISSUED, CertEvent.REVOKE): CertState.REVOKED,
    (CertState.RENEWED, CertEvent.REVOKE): CertState.REVOKED,
}


# The shared lifecycle record asserts that the table is closed: every state reachable from
# REQUESTED, and REJECTED and REVOKED the only ways out.
CERT_LIFECYCLE: Final[Lifecycle[CertState, CertEvent]] = Lifecycle(
    name="certificate",
    initial=CertState.REQUESTED,
    terminal=frozenset({CertState.REJECTED, CertState.REVOKED}),
    transitions=TRANSITIONS,
)


def lifecycle_mermaid() -> str:
    """The lifecycle as a Mermaid state diagram, generated from TRANSITIONS (docs embed it)."""
    return render_mermaid(CERT_LIFECYCLE).rstrip("\n")


# ---------------------------------------------------------------------------------------------
# Encodings: base64url, times, keys.


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes | None:
    """Strict base64url without padding: None unless `text` is the one encoding of its bytes."""
    if type(text) is not str:
        return None
    if len(text) == _SIGNATURE_CHARS and _SIGNATURE_TEXT.fullmatch(text):
        # A signature's 86 characters (64 bytes), its last one's unused bits zero: the only
        # spelling of its bytes, so the round trip below would hold (the hot path of verify).
        return base64.urlsafe_b64decode(text + "==")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # The decoder skips characters outside the alphabet and ignores the padding bits; the round
    # trip rejects both (and "=" padding): another spelling of the same bytes is malleability.
    return data if b64url_encode(data) == text else None


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with second precision ("2026-11-27T03:43:35Z"); sub-seconds are dropped."""
    assert moment.tzinfo is not None, "times are timezone-aware"
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    """The inverse of `format_time`; None for anything else (no offsets, no fractions)."""
    if type(text) is not str or not _TIME.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def public_key_to_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """RFC 7518 §6.2 public JWK of a P-256 key."""
    assert isinstance(public_key.curve, ec.SECP256R1)
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
        "y": b64url_encode(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
    }


def _jwk_shape_ok(jwk: Mapping[str, Any]) -> bool:
    # A P-256 public JWK by shape: EC, P-256, two canonical base64url 32-byte coordinates.
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        return False
    return _coordinates_ok(jwk.get("x"), jwk.get("y"))


def _jwk_pairs_ok(pairs: tuple[tuple[str, str], ...]) -> bool:
    # `_jwk_shape_ok` of the (name, value) pairs a Subject keeps, in their fixed order.
    if len(pairs) != 4 or pairs[0] != ("kty", "EC") or pairs[1] != ("crv", "P-256"):
        return False
    (x_name, x), (y_name, y) = pairs[2], pairs[3]
    return (x_name, y_name) == ("x", "y") and _coordinates_ok(x, y)


def _coordinates_ok(x: Any, y: Any) -> bool:
    # Two canonical base64url 32-byte coordinates.
    return type(x) is str and type(y) is str and bool(_COORDINATE.fullmatch(x + y))


def public_key_from_jwk(jwk: Any) -> ec.EllipticCurvePublicKey | None:
    """The P-256 key of a JWK, or None if it is not one (wrong type, curve, length, off-curve)."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        return None
    x, y = b64url_decode(jwk.get("x", "")), b64url_decode(jwk.get("y", ""))
    if x is None or y is None or len(x) != _COORDINATE_BYTES or len(y) != _COORDINATE_BYTES:
        return None
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
    )
    try:
        return numbers.public_key()
    except ValueError:
        return None


def jwk_thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url): the key id ("kid") of every AEX key."""
    jwk = public_key_to_jwk(public_key)
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    return b64url_encode(hashlib.sha256(canonical_json(required)).digest())


def _public_key_pem(public_key: ec.EllipticCurvePublicKey) -> str:
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


# ---------------------------------------------------------------------------------------------
# Signing.


class Signer(Protocol):
    """A CA (or agent) key that can sign: a local key, a KMS or an HSM behind the same shape."""

    @property
    def kid(self) -> str: ...

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 over `data`, as the raw 64-byte r‖s."""
        ...


@dataclass(frozen=True, slots=True)
class LocalSigner:
    """A P-256 private key held in memory; signs deterministically (RFC 6979)."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def from_private_key(cls, private_key: ec.EllipticCurvePrivateKey) -> LocalSigner:
        assert isinstance(private_key.curve, ec.SECP256R1), "AEX keys are P-256"
        return cls(kid=jwk_thumbprint(private_key.public_key()), private_key=private_key)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self.private_key.sign(data, _ECDSA))
        raw = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
        assert len(raw) == _SIGNATURE_BYTES
        return raw


def _verify_raw(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    if len(signature) != _SIGNATURE_BYTES:
        return False
    r = int.from_bytes(signature[:_COORDINATE_BYTES], "big")
    s = int.from_bytes(signature[_COORDINATE_BYTES:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), data, _ECDSA)
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_document(
    body: Mapping[str, Any], *, signer: Signer, shape_checked: bool = False
) -> dict[str, Any]:
    """`body` plus "signature": ES256 over JCS(body), base64url of r‖s.

    The body must already name the signing key (`issuer_kid`, or `public_key_pem` for a
    request) and carry "alg"; both are covered by the signature. `shape_checked` as in
    `canonical_json` (true for `Certificate.body()`, which the model has validated).
    """
    assert "signature" not in body
    assert body.get("alg") == SIGNATURE_ALG
    data = canonical_json(body, shape_checked=shape_checked)
    return {**body, "signature": b64url_encode(signer.sign(data))}


# The body (the document minus "signature") when its signature verifies under `public_key`;
# None for a bad or malformed signature; a CanonicalizationError for a body JCS cannot carry.
def _signed_body(
    document: Mapping[str, Any],
    public_key: ec.EllipticCurvePublicKey,
    *,
    shape_checked: bool = False,
) -> dict[str, Any] | None:
    signature = b64url_decode(document.get("signature", ""))
    if signature is None:
        return None
    body = {key: value for key, value in document.items() if key != "signature"}
    data = canonical_json(body, shape_checked=shape_checked)
    return body if _verify_raw(public_key, signature, data) else None


# ---------------------------------------------------------------------------------------------
# The certificate model.


@dataclass(frozen=True, slots=True)
class Claim:
    """One capability claim: spec `{category, capability, scope, authorization}`."""

    category: str
    capability: str
    scope: str
    authorization: Authorization

    def __post_init__(self) -> None:
        assert 0 < len(self.category) <= limits.cert_name_chars_max
        assert 0 < len(self.capability) <= limits.cert_name_chars_max
        assert len(self.scope) <= limits.cert_scope_chars_max

    def to_json(self) -> dict[str, str]:
        return {
            "category": self.category,
            "capability": self.capability,
            "scope": self.scope,
            "authorization": self.authorization.value,
        }


@dataclass(frozen=True, slots=True)
class ReputationSnapshot:
    """The reputation attached at issue or renewal: spec `{tier, score, contracts}`.

    The score is a decimal string ("0.82"), never a float, so that the signed bytes are the same
    in every language.
    """

    tier: str
    score: str
    contracts: int

    def __post_init__(self) -> None:
        assert self.tier in REPUTATION_TIERS, f"unknown tier {self.tier!r}"
        assert _SCORE.fullmatch(self.score), f"score {self.score!r} is not a decimal in [0, 1]"
        assert type(self.contracts) is int
        assert 0 <= self.contracts < 2**53

    def to_json(self) -> dict[str, Any]:
        return {"tier": self.tier, "score": self.score, "contracts": self.contracts}


@dataclass(frozen=True, slots=True)
class Subject:
    """Who the certificate is about: the provider, the agent's name, the agent's P-256 key."""

    provider_id: str
    agent_name: str
    public_key_jwk: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        assert 0 < len(self.provider_id) <= limits.cert_name_chars_max
        assert 0 < len(self.agent_name) <= limits.cert_name_chars_max
        # Shape only: the point itself was validated when the request was accepted (proof of
        # possession), and is validated again wherever the key is used (`public_key`). Parsing
        # a certificate for verification need not pay for a curve check (~50 µs).
        assert _jwk_pairs_ok(self.public_key_jwk)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = public_key_from_jwk(dict(self.public_key_jwk))
        assert key is not None
        return key

    def to_json(self) -> dict[str, Any]:
        return {
            "provider_id": self.provider_id,
            "agent_name": self.agent_name,
            "public_key_jwk": dict(self.public_key_jwk),
        }


@dataclass(frozen=True, slots=True)
class Certificate:
    """An AEX agent certificate, with the CA's signature over everything else."""

    id: str
    serial: str
    type: CertificateType
    subject: Subject
    claims: tuple[Claim, ...]
    reputation: ReputationSnapshot
    issued_at: datetime
    not_before: datetime
    expires_at: datetime
    issuer_kid: str
    signature: str

    def __post_init__(self) -> None:
        assert _SERIAL.fullmatch(self.serial)
        assert int(self.serial) <= _SERIAL_MAX
        assert 0 < len(self.claims) <= limits.claims_per_certificate_max
        assert self.not_before < self.expires_at
        assert self.expires_at - self.not_before <= timedelta(days=limits.cert_validity_days_max)

    def body(self) -> dict[str, Any]:
        """The signed members: the JSON document without "signature"."""
        return {
            "version": CERTIFICATE_VERSION,
            "alg": SIGNATURE_ALG,
            "id": self.id,
            "serial": self.serial,
            "type": self.type.value,
            "subject": self.subject.to_json(),
            "claims": [claim.to_json() for claim in self.claims],
            "reputation": self.reputation.to_json(),
            "issued_at": format_time(self.issued_at),
            "not_before": format_time(self.not_before),
            "expires_at": format_time(self.expires_at),
            "issuer_kid": self.issuer_kid,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}


_CERTIFICATE_KEYS: Final = frozenset(
    {
        "version",
        "alg",
        "id",
        "serial",
        "type",
        "subject",
        "claims",
        "reputation",
        "issued_at",
        "not_before",
        "expires_at",
        "issuer_kid",
        "signature",
    }
)


# ---------------------------------------------------------------------------------------------
# Parsing signed JSON into the model. Parsers return None on any deviation from the exact shape
# (extra members included); the public entry points turn None into their own reason.


def _text(value: Any, chars_max: int, *, empty_ok: bool = False) -> str | None:
    if type(value) is not str or len(value) > chars_max or (not value and not empty_ok):
        return None
    return value


def _named(value: Any, names: type[StrEnum]) -> bool:
    # `value in Enum.__members__` raises for unhashable JSON values (lists, objects).
    return type(value) is str and value in names.__members__


def _exact(value: Any, keys: frozenset[str]) -> bool:
    return type(value) is dict and value.keys() == keys


_CLAIM_KEYS: Final = frozenset({"category", "capability", "scope", "authorization"})
_SUBJECT_KEYS: Final = frozenset({"provider_id", "agent_name", "public_key_jwk"})
_JWK_KEYS: Final = frozenset({"kty", "crv", "x", "y"})
_REPUTATION_KEYS: Final = frozenset({"tier", "score", "contracts"})


def _parse_claim(value: Any) -> Claim | None:
    if not _exact(value, _CLAIM_KEYS) or not _named(value["authorization"], Authorization):
        return None
    category = _text(value["category"], limits.cert_name_chars_max)
    capability = _text(value["capability"], limits.cert_name_chars_max)
    scope = _text(value["scope"], limits.cert_scope_chars_max, empty_ok=True)
    if category is None or capability is None or scope is None:
        return None
    return Claim(category, capability, scope, Authorization(value["authorization"]))


def _parse_claims(value: Any, *, empty_ok: bool = False) -> tuple[Claim, ...] | None:
    if type(value) is not list or len(value) > limits.claims_per_certificate_max:
        return None
    if not value and not empty_ok:
        return None
    claims = tuple([_parse_claim(item) for item in value])
    return None if None in claims else claims  # type: ignore[return-value]


def _parse_subject(value: Any) -> Subject | None:
    if not _exact(value, _SUBJECT_KEYS) or not _exact(value["public_key_jwk"], _JWK_KEYS):
        return None
    provider_id = _text(value["provider_id"], limits.cert_name_chars_max)
    agent_name = _text(value["agent_name"], limits.cert_name_chars_max)
    jwk = value["public_key_jwk"]
    if provider_id is None or agent_name is None or not _jwk_shape_ok(jwk):
        return None
    pairs = (("kty", jwk["kty"]), ("crv", jwk["crv"]), ("x", jwk["x"]), ("y", jwk["y"]))
    return Subject(provider_id, agent_name, pairs)


def _parse_reputation(value: Any) -> ReputationSnapshot | None:
    if not _exact(value, _REPUTATION_KEYS) or value["tier"] not in REPUTATION_TIERS:
        return None
    score, contracts = value["score"], value["contracts"]
    if type(score) is not str or not _SCORE.fullmatch(score):
        return None
    if type(contracts) is not int or not 0 <= contracts < 2**53:
        return None
    return ReputationSnapshot(value["tier"], score, contracts)


def _parse_serial(value: Any) -> str | None:
    if type(value) is not str or not _SERIAL.fullmatch(value) or int(value) > _SERIAL_MAX:
        return None
    return value


def parse_certificate(document: Any) -> Certificate | Rejected[CertVerifyReason]:
    """The certificate in a JSON document, without checking its signature.

    Returns:
        The Certificate, or Rejected(CERTIFICATE_MALFORMED) when the document deviates from
        the exact shape of `Certificate.to_json()`.
    """
    # Every check is a plain test in sequence (no generator, no eager refusal value): this is
    # the part of a verification that is ours, beside the ECDSA verify (docs/performance.md).
    if not _exact(document, _CERTIFICATE_KEYS):
        return _MALFORMED
    if type(document["version"]) is not int or document["version"] != CERTIFICATE_VERSION:
        return _MALFORMED
    kind = document["type"]
    if document["alg"] != SIGNATURE_ALG or not _named(kind, CertificateType):
        return _MALFORMED
    issued_at = parse_time(document["issued_at"])
    not_before = parse_time(document["not_before"])
    expires_at = parse_time(document["expires_at"])
    if issued_at is None or not_before is None or expires_at is None:
        return _MALFORMED
    if not _NO_VALIDITY < expires_at - not_before <= _VALIDITY_MAX:
        return _MALFORMED
    id_ = _text(document["id"], limits.cert_name_chars_max)
    serial = _parse_serial(document["serial"])
    subject = _parse_subject(document["subject"])
    claims = _parse_claims(document["claims"])
    reputation = _parse_reputation(document["reputation"])
    issuer_kid = _text(document["issuer_kid"], limits.cert_name_chars_max)
    signature = _text(document["signature"], 2 * _SIGNATURE_BYTES)
    if (
        id_ is None
        or serial is None
        or subject is None
        or claims is None
        or reputation is None
        or issuer_kid is None
        or signature is None
    ):
        return _MALFORMED
    return Certificate(
        id_,
        serial,
        CertificateType(kind),
        subject,
        claims,
        reputation,
        issued_at,
        not_before,
        expires_at,
        issuer_kid,
        signature,
    )


_MALFORMED: Final = Rejected(CertVerifyReason.CERTIFICATE_MALFORMED, "certificate")
_NO_VALIDITY: Final = timedelta(0)
_VALIDITY_MAX: Final = timedelta(days=limits.cert_validity_days_max)


# ---------------------------------------------------------------------------------------------
# Requests (with proof of possession), records and the lifecycle.

_REQUEST_KEYS: Final = frozenset(
    {"alg", "provider_id", "agent_name", "type", "claims", "public_key_pem", "signature"}
)


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """A request the agent signed with its own key (the proof of possession), as accepted.

    `document` keeps the signed original, the CA's evidence that the key holder asked.
    """

    provider_id: str
    agent_name: str
    type: CertificateType
    claims: tuple[Claim, ...]
    subject: Subject
    document: Mapping[str, Any] = field(compare=False, repr=False)


def sign_request(
    *,
    provider_id: str,
    agent_name: str,
    type: CertificateType,
    claims: Sequence[Claim],
    signer: Signer,
) -> dict[str, Any]:
    """The agent's side: a certificate request signed with the agent's own key (spec "REQUEST
    Certificate Signing Request (CSR) submitted with public key")."""
    body = {
        "alg": SIGNATURE_ALG,
        "provider_id": provider_id,
        "agent_name": agent_name,
        "type": type.value,
        "claims": [claim.to_json() for claim in claims],
        "public_key_pem": _public_key_pem(signer.public_key),
    }
    return sign_document(body, signer=signer)


def _request_shape_ok(document: Any) -> bool:
    if not _exact(document, _REQUEST_KEYS) or document["alg"] != SIGNATURE_ALG:
        return False
    texts = ("provider_id", "agent_name", "type", "public_key_pem", "signature")
    if any(type(document[name]) is not str or not document[name] for name in texts):
        return False
    claims = document["claims"]
    return type(claims) is list and all(_exact(claim, _CLAIM_KEYS) for claim in claims)


def _load_pem_p256(text: str) -> ec.EllipticCurvePublicKey | None:
    try:
        key = serialization.load_pem_public_key(text.encode("utf-8"))
    except (ValueError, TypeError, UnicodeEncodeError):
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return None
    return key


# The first name in a request that holds a control or bidi character (aex/core/text.py): the
# agent's name is shown to consumers and becomes the X.509 common name.
def _unsafe_text_field(document: Any) -> str | None:
    for name in ("provider_id", "agent_name"):
        if check_display_text(document[name], field=name) is not None:
            return name
    return None


# IDENTITY and REPUTATION requests carry no claims; the others 1 to 32.
def _claims_count_refusal(count: int, *, stated: bool) -> Rejected[CertRequestRejectReason] | None:
    reason = CertRequestRejectReason
    if stated and count:
        return Rejected(reason.CLAIMS_NOT_REQUESTABLE, "claims")
    if not stated and not count:
        return Rejected(reason.CLAIMS_EMPTY, "claims")
    if count > limits.claims_per_certificate_max:
        return Rejected(reason.CLAIMS_TOO_MANY, "claims")
    return None


def _check_request(document: Any) -> CertificateRequest | Rejected[CertRequestRejectReason]:
    reason = CertRequestRejectReason
    if not _request_shape_ok(document):
        return Rejected(reason.REQUEST_MALFORMED, "request")
    if not _named(document["type"], CertificateType):
        return Rejected(reason.CERTIFICATE_TYPE_UNKNOWN, "type")
    stated = CertificateType(document["type"]) in EXCHANGE_STATED_TYPES
    counted = _claims_count_refusal(len(document["claims"]), stated=stated)
    if counted is not None:
        return counted
    for index, claim in enumerate(document["claims"]):
        if not _named(claim["authorization"], Authorization):
            return Rejected(reason.AUTHORIZATION_UNKNOWN, f"claims.{index}.authorization")
    claims = _parse_claims(document["claims"], empty_ok=stated)
    names = (_text(document[k], limits.cert_name_chars_max) for k in ("provider_id", "agent_name"))
    if claims is None or any(name is None for name in names):
        return Rejected(reason.TEXT_TOO_LONG, "request")
    unsafe = _unsafe_text_field(document)
    if unsafe is not None:
        return Rejected(reason.TEXT_UNSAFE, unsafe)
    public_key = _load_pem_p256(document["public_key_pem"])
    if public_key is None:
        return Rejected(reason.PUBLIC_KEY_INVALID, "public_key_pem")
    # Spec "REQUEST ... submitted with public key": the request is signed by the private half.
    try:
        proven = _signed_body(document, public_key) is not None
    except CanonicalizationError:
        proven = False
    if not proven:
        return Rejected(reason.PROOF_OF_POSSESSION_FAILED, "signature")
    subject = Subject(
        document["provider_id"],
        document["agent_name"],
        tuple(public_key_to_jwk(public_key).items()),
    )
    return CertificateRequest(
        provider_id=subject.provider_id,
        agent_name=subject.agent_name,
        type=CertificateType(document["type"]),
        claims=claims,
        subject=subject,
        document=dict(document),
    )


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """The CA's view of one certificate, from request to revocation.

    `serials` lists every serial issued under this id (renewals add one); revoking the record
    revokes them all, so an older copy cannot outlive a revocation.
    """

    id: str
    state: CertState
    request: CertificateRequest
    certificate: Certificate | None = None
    serials: tuple[str, ...] = ()
    revoked_at: datetime | None = None
    revocation_reason: RevocationReason | None = None
    note: str = ""

    def __post_init__(self) -> None:
        assert 0 < len(self.id) <= limits.cert_name_chars_max
        issued = self.state in (CertState.ISSUED, CertState.RENEWED, CertState.REVOKED)
        assert (self.certificate is not None) == issued
        if self.certificate is not None:
            assert self.certificate.serial == self.serials[-1]
            assert self.certificate.id == self.id
        if self.state is CertState.REVOKED:
            assert self.revoked_at is not None
            assert self.revocation_reason is not None


def open_request(
    document: Any, *, record_id: str
) -> CertificateRecord | Rejected[CertRequestRejectReason]:
    """Accepts a signed certificate request into state REQUESTED.

    Args:
        document: the JSON request, as made by `sign_request`.
        record_id: the certificate id the driver drew for it.

    Returns:
        The new record, or the first failing check in CertRequestRejectReason order;
        PROOF_OF_POSSESSION_FAILED when the request's signature does not verify under the public
        key it carries.
    """
    checked = _check_request(document)
    if isinstance(checked, Rejected):
        return checked
    return CertificateRecord(id=record_id, state=CertState.REQUESTED, request=checked)


def review_policy(request: CertificateRequest) -> CertEvent | None:
    """The auto-approve policy (spec "REVIEW ... auto-approve or manual").

    Returns:
        APPROVE when every claim is SELF_ASSERTED (the certificate then only states what the
        agent said, signed, marked self_asserted) or the claims are the exchange's own
        (`state_claims`: IDENTITY, REPUTATION); None when a person must review evidence-backed
        claims.
    """
    if request.type in EXCHANGE_STATED_TYPES:
        return CertEvent.APPROVE if request.claims else None
    claims = request.claims
    if request.type is CertificateType.RESELLER:  # the delegation claim is the exchange's own
        claims = tuple(claim for claim in claims if claim.category != DELEGATION_CATEGORY)
    if all(claim.authorization is Authorization.SELF_ASSERTED for claim in claims):
        return CertEvent.APPROVE
    return None


def state_claims(record: CertificateRecord, claims: Sequence[Claim]) -> CertificateRecord:
    """The record with the claims the exchange states for an IDENTITY or REPUTATION
    certificate (its request carried none; at renewal, the fresh ones replace the old), or a
    RESELLER one's requested claims plus the delegation claim."""
    assert record.request.type is not CertificateType.CAPABILITY
    assert 0 < len(claims) <= limits.claims_per_certificate_max
    return replace(record, request=replace(record.request, claims=tuple(claims)))


def reputation_claims(
    *,
    tier: str,
    contracts: int,
    success_rate_bps: int,
    window_start: datetime,
    window_end: datetime,
) -> tuple[Claim, ...]:
    """What a REPUTATION certificate states: only what settled transactions proved (the trust
    broker's tier, contracts, success rate and the window they were counted in).

    The success rate is in basis points (an int, so the signed text is the same everywhere).
    A provider with no contracts gets exactly that: tier BRONZE (or what the broker says),
    0 contracts, and nothing more.
    """
    assert tier in REPUTATION_TIERS
    assert 0 <= contracts < 2**53
    assert 0 <= success_rate_bps <= 10_000
    assert window_start <= window_end
    if contracts == 0:
        assert success_rate_bps == 0
    window = f"{format_time(window_start)}/{format_time(window_end)}"
    stated = (
        ("tier", tier),
        ("contracts", str(contracts)),
        ("success_rate_bps", str(success_rate_bps)),
        ("window", window),
    )
    return tuple(
        Claim("REPUTATION", name, value, Authorization.TRANSACTION_EVIDENCE)
        for name, value in stated
    )


def _step(
    record: CertificateRecord, event: CertEvent
) -> CertState | Rejected[CertLifecycleRejectReason]:
    state = TRANSITIONS.get((record.state, event))
    if state is None:
        detail = f"{event.value} is not allowed in state {record.state.value}"
        return Rejected(CertLifecycleRejectReason.ILLEGAL_TRANSITION, "state", detail)
    return state


def review_request(
    record: CertificateRecord, event: CertEvent, *, note: str = ""
) -> CertificateRecord | Rejected[CertLifecycleRejectReason]:
    """Approves or rejects a REQUESTED record (manually, or with `review_policy`'s event)."""
    assert event in (CertEvent.APPROVE, CertEvent.REJECT)
    assert len(note) <= limits.cert_scope_chars_max
    state = _step(record, event)
    return state if isinstance(state, Rejected) else replace(record, state=state, note=note)


def _signed_certificate(
    record: CertificateRecord,
    *,
    serial: int,
    reputation: ReputationSnapshot,
    now: datetime,
    validity: timedelta,
    signer: Signer,
) -> Certificate:
    assert 0 < serial <= _SERIAL_MAX
    assert timedelta(0) < validity <= timedelta(days=limits.cert_validity_days_max)
    issued_at = now.astimezone(UTC).replace(microsecond=0)
    request = record.request
    unsigned = Certificate(
        id=record.id,
        serial=str(serial),
        type=request.type,
        subject=request.subject,
        claims=request.claims,
        reputation=reputation,
        issued_at=issued_at,
        not_before=issued_at,
        expires_at=issued_at + validity,
        issuer_kid=signer.kid,
        signature="",
    )
    signed = sign_document(unsigned.body(), signer=signer, shape_checked=True)
    return replace(unsigned, signature=signed["signature"])


def issue_certificate(
    record: CertificateRecord,
    *,
    serial: int,
    reputation: ReputationSnapshot,
    now: datetime,
    validity: timedelta,
    signer: Signer,
) -> CertificateRecord | Rejected[CertLifecycleRejectReason]:
    """Signs the certificate of an APPROVED record (spec "ISSUE ECDSA P-256 certificate").

    Args:
        serial: a fresh positive serial below 2^159, drawn by the driver (RFC 5280 §4.1.2.2).
        reputation: the provider's reputation now (spec "EARN ... attached to certificate").
        now: the issue time; the certificate is valid from it for `validity`.
        signer: the CA's active key.
    """
    state = _step(record, CertEvent.ISSUE)
    if isinstance(state, Rejected):
        return state
    certificate = _signed_certificate(
        record, serial=serial, reputation=reputation, now=now, validity=validity, signer=signer
    )
    return replace(record, state=state, certificate=certificate, serials=(certificate.serial,))


def renew_certificate(
    record: CertificateRecord,
    *,
    serial: int,
    reputation: ReputationSnapshot,
    now: datetime,
    validity: timedelta,
    signer: Signer,
) -> CertificateRecord | Rejected[CertLifecycleRejectReason]:
    """A new certificate (new serial, new validity window) carrying the updated reputation
    (spec "RENEW Certificate renewed with updated reputation"). Same id, subject and claims."""
    state = _step(record, CertEvent.RENEW)
    if isinstance(state, Rejected):
        return state
    assert str(serial) not in record.serials
    certificate = _signed_certificate(
        record, serial=serial, reputation=reputation, now=now, validity=validity, signer=signer
    )
    serials = (*record.serials, certificate.serial)
    return replace(record, state=state, certificate=certificate, serials=serials)


def revoke_certificate(
    record: CertificateRecord, *, reason: int, now: datetime
) -> CertificateRecord | Rejected[CertLifecycleRejectReason]:
    """Revokes every serial of an issued record with an RFC 5280 reason code.

    Rejections: ILLEGAL_TRANSITION unless ISSUED or RENEWED; REVOCATION_REASON_INVALID for a
    code outside RFC 5280, or certificateHold / removeFromCRL (AEX revocation is final).
    """
    state = _step(record, CertEvent.REVOKE)
    if isinstance(state, Rejected):
        return state
    allowed = {code.value for code in _REVOCATION_REASONS_ALLOWED}
    if isinstance(reason, bool) or not isinstance(reason, int) or int(reason) not in allowed:
        return Rejected(CertLifecycleRejectReason.REVOCATION_REASON_INVALID, "reason")
    revoked_at = now.astimezone(UTC).replace(microsecond=0)
    return replace(
        record, state=state, revoked_at=revoked_at, revocation_reason=RevocationReason(reason)
    )


def record_to_json(record: CertificateRecord) -> dict[str, Any]:
    """The record as JSON for a store (the request as signed, the certificate as issued)."""
    return {
        "id": record.id,
        "state": record.state.value,
        "request": dict(record.request.document),
        "certificate": None if record.certificate is None else record.certificate.to_json(),
        "serials": list(record.serials),
        "revoked_at": None if record.revoked_at is None else format_time(record.revoked_at),
        "revocation_reason": None
        if record.revocation_reason is None
        else int(record.revocation_reason),
        "note": record.note,
        # What the exchange stated for an IDENTITY or REPUTATION certificate (the request, kept
        # as signed, carries no claims).
        "stated_claims": [claim.to_json() for claim in record.request.claims]
        if record.request.type is not CertificateType.CAPABILITY
        else None,
    }


def record_from_json(document: Mapping[str, Any]) -> CertificateRecord:
    """The inverse of `record_to_json`; the store is trusted, so a bad row is an assertion."""
    request = _check_request(document["request"])
    assert isinstance(request, CertificateRequest), f"stored request is invalid: {request}"
    certificate: Certificate | None = None
    if document["certificate"] is not None:
        parsed = parse_certificate(document["certificate"])
        assert isinstance(parsed, Certificate), f"stored certificate is invalid: {parsed}"
        certificate = parsed
    stated = document.get("stated_claims")
    if stated:
        claims = _parse_claims(stated)
        assert claims is not None, "stored stated claims are invalid"
        request = replace(request, claims=claims)
    reason = document["revocation_reason"]
    return CertificateRecord(
        id=document["id"],
        state=CertState(document["state"]),
        request=request,
        certificate=certificate,
        serials=tuple(document["serials"]),
        revoked_at=parse_time(document["revoked_at"]),
        revocation_reason=None if reason is None else RevocationReason(reason),
        note=document["note"],
    )


# ---------------------------------------------------------------------------------------------
# Revocation lists.


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: str
    revoked_at: datetime
    reason: RevocationReason

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "revoked_at": format_time(self.revoked_at),
            "reason_code": int(self.reason),
            "reason": self.reason.name,
        }


@dataclass(frozen=True, slots=True)
class CrlState:
    """What a driver persists between CRLs: the last CRL number and every revoked serial."""

    crl_number: int
    entries: tuple[RevokedEntry, ...] = ()

    def __post_init__(self) -> None:
        assert 0 <= self.crl_number < 2**53
        assert len(self.entries) <= limits.crl_entries_max


def crl_state_revoke(state: CrlState, entries: Sequence[RevokedEntry]) -> CrlState:
    """Adds the serials not yet revoked; any change takes the next CRL number (RFC 5280
    §5.2.3: "monotonically increasing")."""
    known = {entry.serial for entry in state.entries}
    fresh = tuple(entry for entry in entries if entry.serial not in known)
    if not fresh:
        return state
    return CrlState(crl_number=state.crl_number + 1, entries=state.entries + fresh)


def crl_state_reissue(state: CrlState) -> CrlState:
    """The state for re-signing an unchanged list (a new next_update): every CRL issued takes
    a new, larger number, so a relying party can tell the newest."""
    return CrlState(crl_number=state.crl_number + 1, entries=state.entries)


@dataclass(frozen=True, slots=True)
class RevocationList:
    """A CRL whose signature has been checked (or which this CA just signed)."""

    crl_number: int
    this_update: datetime
    next_update: datetime
    issuer_kid: str
    entries: tuple[RevokedEntry, ...]
    by_serial: Mapping[str, RevokedEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        assert self.this_update < self.next_update
        assert len(self.entries) <= limits.crl_entries_max
        object.__setattr__(self, "by_serial", {entry.serial: entry for entry in self.entries})
        assert len(self.by_serial) == len(self.entries), "a serial is revoked once"


_CRL_KEYS: Final = frozenset(
    {
        "version",
        "alg",
        "type",
        "crl_number",
        "this_update",
        "next_update",
        "issuer_kid",
        "entries",
        "signature",
    }
)
_ENTRY_KEYS: Final = frozenset({"serial", "revoked_at", "reason_code", "reason"})


def sign_crl(
    state: CrlState, *, this_update: datetime, next_update: datetime, signer: Signer
) -> dict[str, Any]:
    """The signed JSON CRL (spec "GET /v1/crl ... signed by AEX CA")."""
    assert this_update < next_update
    body = {
        "version": CERTIFICATE_VERSION,
        "alg": SIGNATURE_ALG,
        "type": "aex-crl",
        "crl_number": state.crl_number,
        "this_update": format_time(this_update),
        "next_update": format_time(next_update),
        "issuer_kid": signer.kid,
        "entries": [entry.to_json() for entry in state.entries],
    }
    return sign_document(body, signer=signer)


def _parse_entry(value: Any) -> RevokedEntry | None:
    if not _exact(value, _ENTRY_KEYS) or type(value["reason_code"]) is not int:
        return None
    serial, revoked_at = _parse_serial(value["serial"]), parse_time(value["revoked_at"])
    if serial is None or revoked_at is None:
        return None
    if value["reason_code"] not in {code.value for code in RevocationReason}:
        return None
    reason = RevocationReason(value["reason_code"])
    return RevokedEntry(serial, revoked_at, reason) if value["reason"] == reason.name else None


def _parse_crl_body(body: Mapping[str, Any]) -> RevocationList | None:
    if body["type"] != "aex-crl" or type(body["crl_number"]) is not int:
        return None
    this_update, next_update = parse_time(body["this_update"]), parse_time(body["next_update"])
    if this_update is None or next_update is None or not this_update < next_update:
        return None
    if type(body["entries"]) is not list or len(body["entries"]) > limits.crl_entries_max:
        return None
    entries = tuple(_parse_entry(item) for item in body["entries"])
    if any(entry is None for entry in entries):
        return None
    if len({entry.serial for entry in entries if entry is not None}) != len(entries):
        return None
    return RevocationList(
        crl_number=body["crl_number"],
        this_update=this_update,
        next_update=next_update,
        issuer_kid=body["issuer_kid"],
        entries=entries,  # type: ignore[arg-type]
    )


def verify_crl(
    document: Any, *, ca_keys: Mapping[str, ec.EllipticCurvePublicKey], now: datetime
) -> RevocationList | Rejected[CertVerifyReason]:
    """Checks a JSON CRL: shape, key, signature, then freshness (now < next_update)."""
    reason = CertVerifyReason
    if not _exact(document, _CRL_KEYS) or document["alg"] != SIGNATURE_ALG:
        return Rejected(reason.CRL_MALFORMED, "crl")
    public_key = (
        ca_keys.get(document["issuer_kid"]) if type(document["issuer_kid"]) is str else None
    )
    if public_key is None:
        return Rejected(reason.CRL_UNKNOWN_KEY, "crl.issuer_kid")
    try:
        body = _signed_body(document, public_key)
    except CanonicalizationError:
        return Rejected(reason.CRL_MALFORMED, "crl")
    if body is None:
        return Rejected(reason.CRL_BAD_SIGNATURE, "crl.signature")
    crl = _parse_crl_body(body)
    if crl is None:
        return Rejected(reason.CRL_MALFORMED, "crl")
    if now >= crl.next_update:
        return Rejected(reason.CRL_STALE, "crl.next_update", format_time(crl.next_update))
    return crl


# ---------------------------------------------------------------------------------------------
# Verification and the CA document.


@dataclass(frozen=True, slots=True)
class Verified:
    """A certificate whose signature, revocation status and validity period all check out."""

    certificate: Certificate
    crl_number: int | None


def verify_certificate(
    document: Any,
    *,
    ca_keys: Mapping[str, ec.EllipticCurvePublicKey],
    now: datetime,
    crl: RevocationList | Rejected[CertVerifyReason] | None = None,
) -> Verified | Rejected[CertVerifyReason]:
    """Verifies a JSON certificate offline (spec "VERIFY Anyone can verify the certificate").

    Args:
        document: the certificate JSON as received.
        ca_keys: the published CA keys by kid (`ca_keys_from_document`).
        now: the time to check validity at.
        crl: the result of `verify_crl` (a failed CRL check fails the verification), or None to
            skip the revocation check.

    Returns:
        Verified, or the first failing check in CertVerifyReason order: CERTIFICATE_MALFORMED
        (not exactly the shape of `Certificate.to_json()`), UNKNOWN_KEY (issuer_kid not
        published), BAD_SIGNATURE (any changed byte), the CRL's own rejection, REVOKED,
        NOT_YET_VALID, EXPIRED.
    """
    reason = CertVerifyReason
    # The exact shape first: it proves the document is in canonical_json's fast-path subset.
    certificate = parse_certificate(document)
    if isinstance(certificate, Rejected):
        return certificate
    public_key = ca_keys.get(certificate.issuer_kid)
    if public_key is None:
        return Rejected(reason.UNKNOWN_KEY, "issuer_kid", certificate.issuer_kid)
    # parse_certificate accepted only fixed ASCII member names, ints below 2^53 and strings.
    try:
        body = _signed_body(document, public_key, shape_checked=True)
    except CanonicalizationError:
        return Rejected(reason.CERTIFICATE_MALFORMED, "certificate")
    if body is None:
        return Rejected(reason.BAD_SIGNATURE, "signature")
    if isinstance(crl, Rejected):
        return crl
    if crl is not None and certificate.serial in crl.by_serial:
        entry = crl.by_serial[certificate.serial]
        return Rejected(reason.REVOKED, "serial", entry.reason.name)
    if now < certificate.not_before:
        return Rejected(reason.NOT_YET_VALID, "not_before", format_time(certificate.not_before))
    if now >= certificate.expires_at:
        return Rejected(reason.EXPIRED, "expires_at", format_time(certificate.expires_at))
    return Verified(certificate, None if crl is None else crl.crl_number)


@dataclass(frozen=True, slots=True)
class CaKey:
    """One published CA key: its kid, public key and self-signed X.509 CA certificate (PEM)."""

    kid: str
    public_key: ec.EllipticCurvePublicKey
    certificate_pem: str
    active: bool

    def __post_init__(self) -> None:
        assert self.kid == jwk_thumbprint(self.public_key)


def ca_document(keys: Sequence[CaKey], *, name: str) -> dict[str, Any]:
    """The CA document served at /.well-known/aex-ca.json (spec "GET CA PUBLIC KEY (for
    offline verification)"): every published key as a JWK (in a JWKS) and as PEM."""
    assert 0 < len(keys) <= limits.ca_keys_published_max
    active = [key.kid for key in keys if key.active]
    assert len(active) == 1, "exactly one active CA key"
    return {
        "type": "aex-ca",
        "version": CERTIFICATE_VERSION,
        "name": name,
        "active_kid": active[0],
        "jwks": {
            "keys": [
                {**public_key_to_jwk(key.public_key), "kid": key.kid, "alg": "ES256", "use": "sig"}
                for key in keys
            ]
        },
        "keys": [
            {
                "kid": key.kid,
                "status": "active" if key.active else "published",
                "public_key_pem": _public_key_pem(key.public_key),
                "certificate_pem": key.certificate_pem,
            }
            for key in keys
        ],
    }


def ca_keys_from_document(
    document: Any,
) -> dict[str, ec.EllipticCurvePublicKey] | Rejected[CertVerifyReason]:
    """The CA keys by kid from a CA document's JWKS; each kid must be its key's RFC 7638
    thumbprint, so that a document cannot rebind a kid to another key."""
    malformed = Rejected(CertVerifyReason.CA_DOCUMENT_MALFORMED, "ca")
    jwks = document.get("jwks") if isinstance(document, Mapping) else None
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if type(entries) is not list or not 0 < len(entries) <= limits.ca_keys_published_max:
        return malformed
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for entry in entries:
        public_key = public_key_from_jwk(entry)
        if public_key is None or entry.get("kid") != jwk_thumbprint(public_key):
            return malformed
        keys[entry["kid"]] = public_key
    return keys


def verify_offline(
    certificate_document: Any,
    ca_document: Any,
    *,
    now: datetime,
    crl_document: Any = None,
) -> Verified | Rejected[CertVerifyReason]:
    """Everything `aex verify` checks, from the three JSON files: the CA document, the CRL (if
    given) and the certificate. A malformed CA document comes first; then as
    `verify_certificate`."""
    ca_keys = ca_keys_from_document(ca_document)
    if isinstance(ca_keys, Rejected):
        return ca_keys
    crl = None if crl_document is None else verify_crl(crl_document, ca_keys=ca_keys, now=now)
    return verify_certificate(certificate_document, ca_keys=ca_keys, now=now, crl=crl)

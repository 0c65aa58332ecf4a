# Rule: what a resale delegation is (who signs it, what it authorises, until when), how it is
# verified, and which RESELLER claims it covers, is decided here and only here.
#
# Theory of operation (issue 15, spec "Certificate Types: RESELLER"):
#   - The resold provider (the delegator) registers a P-256 public key with the exchange and
#     signs a delegation with it: a compact JWS (RFC 7515), ES256, header
#     {"alg": "ES256", "typ": "aex-delegation+jwt", "kid": <RFC 7638 thumbprint>}, payload the
#     JCS form of {"iss": delegator provider id, "sub": reseller provider id, "scope": [{category,
#     capability}, ...], "iat", "exp" (seconds), "jti": the delegation id}. Any JOSE library
#     verifies it (the JCS payload is one valid JSON serialisation).
#   - A RESELLER certificate is issued only for claims inside an active delegation's scope; the
#     certificate states the delegation (a claim of category RESELLER naming the delegator, the
#     delegation id and its expiry), and revoking the delegation revokes the certificate.
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec

from aex.core import limits
from aex.core.certs import (
    DELEGATION_CATEGORY,
    Authorization,
    Claim,
    Signer,
    _verify_raw,
    b64url_decode,
    format_time,
)
from aex.core.jws import json_part, sign_compact
from aex.core.reasons import DelegationRejectReason, Rejected

__all__ = [
    "DELEGATION_TYP",
    "Delegation",
    "delegation_claim",
    "delegation_kid",
    "resale_refusal",
    "sign_delegation",
    "verify_delegation",
]

DELEGATION_TYP: Final = "aex-delegation+jwt"
_TOKEN_CHARS_MAX: Final = 16_384
_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PAYLOAD_KEYS: Final = frozenset({"iss", "sub", "scope", "iat", "exp", "jti"})


@dataclass(frozen=True, slots=True)
class Delegation:
    """A verified delegation: the delegator authorises the reseller for `scope` until exp."""

    delegation_id: str
    delegator_provider_id: str
    reseller_provider_id: str
    scope: tuple[tuple[str, str], ...]
    issued_at_s: int
    expires_at_s: int

    def __post_init__(self) -> None:
        assert 0 < len(self.scope) <= limits.claims_per_certificate_max
        assert self.issued_at_s < self.expires_at_s

    def covers(self, claim: Claim) -> bool:
        return (claim.category, claim.capability) in self.scope


def sign_delegation(
    *,
    delegation_id: str,
    delegator_provider_id: str,
    reseller_provider_id: str,
    scope: Sequence[tuple[str, str]],
    issued_at_s: int,
    expires_at_s: int,
    signer: Signer,
) -> str:
    """The delegator's side: the signed delegation (compact JWS)."""
    header = {"alg": "ES256", "typ": DELEGATION_TYP, "kid": signer.kid}
    payload = {
        "iss": delegator_provider_id,
        "sub": reseller_provider_id,
        "scope": [{"category": c, "capability": k} for c, k in scope],
        "iat": issued_at_s,
        "exp": expires_at_s,
        "jti": delegation_id,
    }
    return sign_compact(header, payload, signer)


def delegation_kid(token: Any) -> str | None:
    """The kid a delegation names (to look its key up), or None if it has no readable header."""
    if type(token) is not str or len(token) > _TOKEN_CHARS_MAX or token.count(".") != 2:
        return None
    header = json_part(token.split(".", 1)[0])
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if type(kid) is str else None


def _scope(value: Any) -> tuple[tuple[str, str], ...] | None:
    if type(value) is not list or not 0 < len(value) <= limits.claims_per_certificate_max:
        return None
    pairs = []
    for item in value:
        if type(item) is not dict or item.keys() != {"category", "capability"}:
            return None
        category, capability = item["category"], item["capability"]
        if type(category) is not str or type(capability) is not str:
            return None
        if not 0 < len(category) <= limits.cert_name_chars_max:
            return None
        if not 0 < len(capability) <= limits.cert_name_chars_max:
            return None
        pairs.append((category, capability))
    return tuple(pairs)


def _payload(payload: Any) -> Delegation | None:
    if type(payload) is not dict or payload.keys() != _PAYLOAD_KEYS:
        return None
    names = [payload[k] for k in ("iss", "sub", "jti")]
    if any(type(n) is not str or not _ID.fullmatch(n) for n in names):
        return None
    iat, exp = payload["iat"], payload["exp"]
    if type(iat) is not int or type(exp) is not int or not 0 <= iat < exp < 2**40:
        return None
    scope = _scope(payload["scope"])
    if scope is None:
        return None
    return Delegation(payload["jti"], payload["iss"], payload["sub"], scope, iat, exp)


def verify_delegation(
    token: Any, *, public_key: ec.EllipticCurvePublicKey | None, now_s: int
) -> Delegation | Rejected[DelegationRejectReason]:
    """Checks a delegation, in DelegationRejectReason order: its shape, the key (the
    delegator's registered key, found by kid; None if none is registered), the ES256
    signature, that the key belongs to the delegator (`iss`), and expiry."""
    reason = DelegationRejectReason
    kid = delegation_kid(token)
    if kid is None:
        return Rejected(reason.DELEGATION_MALFORMED, "delegation")
    header_part, payload_part, signature_part = token.split(".")
    header = json_part(header_part)
    if header != {"alg": "ES256", "typ": DELEGATION_TYP, "kid": kid}:
        return Rejected(reason.DELEGATION_MALFORMED, "delegation")
    delegation = _payload(json_part(payload_part))
    if delegation is None:
        return Rejected(reason.DELEGATION_MALFORMED, "delegation")
    if public_key is None:
        return Rejected(reason.DELEGATION_KEY_UNKNOWN, "delegation.kid")
    signature = b64url_decode(signature_part)
    signed = f"{header_part}.{payload_part}".encode("ascii")
    if signature is None or not _verify_raw(public_key, signature, signed):
        return Rejected(reason.DELEGATION_BAD_SIGNATURE, "delegation")
    if now_s >= delegation.expires_at_s:
        return Rejected(reason.DELEGATION_EXPIRED, "delegation.exp")
    return delegation


def resale_refusal(
    claims: Sequence[Claim], delegation: Delegation | None, *, now_s: int
) -> Rejected[DelegationRejectReason] | None:
    """Why a RESELLER request's claims are not authorised: no active delegation for the
    reseller, or a claim outside its scope (field claims.<i>)."""
    if delegation is None or now_s >= delegation.expires_at_s:
        return Rejected(DelegationRejectReason.DELEGATION_MISSING, "type")
    for index, claim in enumerate(claims):
        if not delegation.covers(claim):
            return Rejected(DelegationRejectReason.DELEGATION_SCOPE_EXCEEDED, f"claims.{index}")
    return None


def delegation_claim(delegation: Delegation) -> Claim:
    """The claim a RESELLER certificate carries to name its delegation (verified by the
    exchange; it never counts toward certification, aex/core/certs.py)."""
    expires = format_time(datetime.fromtimestamp(delegation.expires_at_s, tz=UTC))
    scope = f"{delegation.delegator_provider_id} {delegation.delegation_id} until {expires}"
    return Claim(DELEGATION_CATEGORY, "delegation", scope, Authorization.AEX_VERIFIED)

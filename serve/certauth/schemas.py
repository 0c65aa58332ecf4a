"""Wire shapes of the certificate trust routes (issue 15): IDENTITY challenges, RESELLER
delegations.

Kept apart from serve/gateway/schemas.py while the existing certificate routes are converted to
typed Structs on another branch; the same conventions (`Strict` request bodies, plain response
Structs)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from aex.core import limits
from serve.gateway.schemas import Strict, TimeMs

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.cert_name_chars_max)]
_Coordinate = Annotated[str, msgspec.Meta(min_length=43, max_length=43)]


class PublicJwk(Strict, frozen=True):
    """A P-256 public JWK (RFC 7518 §6.2): the agent key the IDENTITY certificate will name."""

    kty: str
    crv: str
    x: _Coordinate
    y: _Coordinate


class ChallengeCreate(Strict, frozen=True):
    """POST /v1/certificates/challenges: the provider and the key to bind the challenge to."""

    provider_id: _Name
    public_key_jwk: PublicJwk


class ChallengeView(msgspec.Struct, frozen=True):
    """An IDENTITY challenge: serve `key_authorization` (text/plain) at `url`, then validate.

    `state`: PENDING, VALID, INVALID (final: ask for a new one) or USED (spent by the IDENTITY
    request it admitted); `error` the reason an INVALID one failed; `expires_at_ms` when a
    PENDING one lapses."""

    token: str
    provider_id: str
    url: str
    key_authorization: str
    state: str
    error: str
    expires_at_ms: TimeMs


class DelegationKeyCreate(Strict, frozen=True):
    """POST /v1/certificates/delegation-keys: a provider's key for signing delegations."""

    provider_id: _Name
    public_key_jwk: PublicJwk


class DelegationKeyView(msgspec.Struct, frozen=True):
    provider_id: str
    kid: str


class DelegationCreate(Strict, frozen=True):
    """POST /v1/certificates/delegations: the delegation as signed (compact JWS, ES256)."""

    delegation: Annotated[str, msgspec.Meta(min_length=1, max_length=16_384)]


class DelegationScope(msgspec.Struct, frozen=True):
    category: str
    capability: str


class DelegationView(msgspec.Struct, frozen=True):
    """A registered delegation; `state` ACTIVE, EXPIRED or REVOKED; `certificates_revoked`
    the RESELLER certificates its revocation revoked; `expires_at_ms` the signed delegation's
    `exp` (JWT seconds) in milliseconds."""

    delegation_id: str
    delegator_provider_id: str
    reseller_provider_id: str
    scope: list[DelegationScope]
    expires_at_ms: TimeMs
    state: str
    certificates_revoked: list[str] = msgspec.field(default_factory=list)

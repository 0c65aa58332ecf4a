# Rule: the formats of every AEX credential (spec "Authentication in Production", "Credential
# Security"), how a credential is reduced to the hash that is stored, the access scopes and
# which scopes each kind of credential holds, and what a credential may mint.
#
# Theory of operation: a credential is a prefix plus 64 lowercase hex characters (32 random
# bytes, drawn by the driver: the core draws no randomness). Only SHA-256 digests are stored;
# a presented credential is hashed and the digest looked up, then compared in constant time by
# the driver. Format checks run first so that garbage never reaches a store. The one
# exception is the webhook signing secret: the exchange signs with it, so the driver stores it
# sealed (AES-GCM under a key outside the database, serve/secret_box.py), never a digest.
#
# Scopes: every route declares one `AccessScope` (serve/ checks it on every request). A tenant
# API key holds every tenant scope, a provider key the scopes of an agent's work, the operator
# key all of them; a session JWT holds the scopes it was minted with. No credential mints one
# broader than itself: `grant_scopes` refuses a scope the minting credential does not hold,
# and "*" means "every scope the minting credential holds" (the docs' own example).
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Final

from aex.core.reasons import CredentialRejectReason, Rejected, ScopeRejectReason

__all__ = [
    "ALL_SCOPES",
    "CREDENTIAL_RANDOM_BYTES",
    "PROVIDER_KEY_SCOPES",
    "SCOPES_PER_TOKEN_MAX",
    "SCOPE_WILDCARD",
    "TENANT_KEY_SCOPES",
    "AccessScope",
    "CredentialKind",
    "credential_digest",
    "credential_kind",
    "format_credential",
    "grant_scopes",
]

# Spec: 'Format: "aexk_" + 64 hex characters (32 random bytes)'.
CREDENTIAL_RANDOM_BYTES: Final = 32


class CredentialKind(StrEnum):
    TENANT_KEY = "aexk_"
    PROVIDER_KEY = "aex_pk_live_"
    PROVIDER_SECRET = "aex_sk_live_"  # noqa: S105 - a prefix, not a secret
    # The key a provider's webhook receiver checks signatures with (never a credential the
    # gateway accepts; stored sealed, not as a digest, since the exchange must sign with it).
    WEBHOOK_SECRET = "aex_whsec_"  # noqa: S105 - a prefix, not a secret


_HEX_CHARS: Final = 2 * CREDENTIAL_RANDOM_BYTES
_FORMAT: Final = re.compile(r"(aexk_|aex_pk_live_|aex_sk_live_|aex_whsec_)([0-9a-f]{64})")
assert _HEX_CHARS == 64


def format_credential(kind: CredentialKind, random_hex: str) -> str:
    """Builds a credential from its kind and the driver's 64 random hex characters."""
    assert len(random_hex) == _HEX_CHARS
    assert all(c in "0123456789abcdef" for c in random_hex)
    return kind.value + random_hex


def credential_kind(
    presented: str | None,
) -> CredentialKind | Rejected[CredentialRejectReason]:
    """Classifies a presented credential by its prefix, refusing anything malformed."""
    if not presented:
        return Rejected(CredentialRejectReason.CREDENTIAL_MISSING, "X-API-Key")
    match = _FORMAT.fullmatch(presented)
    if match is None:
        return Rejected(CredentialRejectReason.CREDENTIAL_MALFORMED, "X-API-Key")
    return CredentialKind(match.group(1))


def credential_digest(credential: str) -> str:
    """The stored form: SHA-256 hex digest. The plaintext is never stored."""
    digest = hashlib.sha256(credential.encode("ascii")).hexdigest()
    assert len(digest) == 64
    return digest


class AccessScope(StrEnum):
    """What a route needs of its caller's credential, in the order tables list them."""

    READ = "read"  # every GET of the caller's own resources
    MARKET = "market"  # work, bids, contracts, disputes, certificate verification
    PROVIDERS = "providers"  # providers, subscriptions, certificates
    WALLETS = "wallets"  # deposits and withdrawals (money leaves only with this)
    KEYS = "keys"  # API keys and session tokens
    OPERATOR = "operator"  # /v1/admin and /metrics: held by the operator key alone


ALL_SCOPES: Final = tuple(AccessScope)
TENANT_KEY_SCOPES: Final = (
    AccessScope.READ,
    AccessScope.MARKET,
    AccessScope.PROVIDERS,
    AccessScope.WALLETS,
    AccessScope.KEYS,
)
# An agent bids, reports on its contracts, manages its subscriptions and certificates; it never
# moves its owner's money or mints credentials.
PROVIDER_KEY_SCOPES: Final = (AccessScope.READ, AccessScope.MARKET, AccessScope.PROVIDERS)
SCOPE_WILDCARD: Final = "*"
# One of each scope, and "*": more is a client bug (the wire schema refuses past it).
SCOPES_PER_TOKEN_MAX: Final = 20
assert AccessScope.OPERATOR not in TENANT_KEY_SCOPES
assert set(PROVIDER_KEY_SCOPES) < set(TENANT_KEY_SCOPES)
assert len(ALL_SCOPES) + 1 <= SCOPES_PER_TOKEN_MAX


def grant_scopes(
    requested: Sequence[str], held: Iterable[AccessScope]
) -> tuple[AccessScope, ...] | Rejected[ScopeRejectReason]:
    """The scopes a new credential gets when one holding `held` asks for `requested`.

    Args:
        requested: scope names as the client sent them; "*" stands for every held scope.
        held: the minting credential's scopes.

    Returns:
        The granted scopes, deduplicated, in `AccessScope` order.

    Rejections:
        SCOPES_EMPTY (a credential for nothing), SCOPE_UNKNOWN (a name that is no scope),
        SCOPE_NOT_HELD (broader than the minting credential: no escalation by minting).
    """
    assert len(requested) <= SCOPES_PER_TOKEN_MAX
    held_set = frozenset(held)
    if not requested:
        return Rejected(ScopeRejectReason.SCOPES_EMPTY, "scopes", "ask for at least one scope")
    known = {scope.value: scope for scope in AccessScope}
    unknown = [name for name in requested if name != SCOPE_WILDCARD and name not in known]
    if unknown:
        detail = f"{unknown[0]!r} is not a scope; one of {', '.join(known)} or {SCOPE_WILDCARD}"
        return Rejected(ScopeRejectReason.SCOPE_UNKNOWN, "scopes", detail)
    wanted = {known[name] for name in requested if name != SCOPE_WILDCARD}
    if SCOPE_WILDCARD in requested:
        wanted |= held_set
    broader = [scope for scope in AccessScope if scope in wanted and scope not in held_set]
    if broader:
        detail = f"the minting credential does not hold {broader[0].value!r}"
        return Rejected(ScopeRejectReason.SCOPE_NOT_HELD, "scopes", detail)
    granted = tuple(scope for scope in AccessScope if scope in wanted)
    if not granted:  # "*" of a credential that holds nothing
        return Rejected(ScopeRejectReason.SCOPES_EMPTY, "scopes", "the minter holds no scope")
    assert granted
    assert set(granted) <= held_set
    return granted

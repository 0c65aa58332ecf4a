# Rule: the formats of every AEX credential (spec "Authentication in Production", "Credential
# Security"), and how a credential is reduced to the hash that is stored.
#
# Theory of operation: a credential is a prefix plus 64 lowercase hex characters (32 random
# bytes, drawn by the driver: the core draws no randomness). Only SHA-256 digests are stored;
# a presented credential is hashed and the digest looked up, then compared in constant time by
# the driver. Format checks run first so that garbage never reaches a store. The one
# exception is the webhook signing secret: the exchange signs with it, so the driver stores it
# sealed (AES-GCM under a key outside the database, serve/secret_box.py), never a digest.
from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Final

from aex.core.reasons import CredentialRejectReason, Rejected

__all__ = [
    "CREDENTIAL_RANDOM_BYTES",
    "CredentialKind",
    "credential_digest",
    "credential_kind",
    "format_credential",
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

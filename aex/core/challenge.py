# Rule: what an IDENTITY challenge is (its token, the key authorisation the agent must serve,
# where it is served, what response proves control, and the challenge's lifecycle) is decided
# here and only here.
#
# Theory of operation (RFC 8555 §8.3 http-01, in spirit):
#   - The exchange draws a token (32 random bytes, base64url: 43 characters) and binds it to
#     the provider and to the agent key that will be certified: the key authorisation is
#     "<token>.<RFC 7638 thumbprint of the agent's key>" (§8.1).
#   - The agent serves it at "<its registered URL's origin>/.well-known/aex-challenge/<token>"
#     (RFC 8555 uses /.well-known/acme-challenge/); the exchange fetches it through the same
#     SSRF guard as webhooks, reads at most `limits.challenge_response_bytes_max` bytes, and
#     compares. Trailing whitespace is ignored (§8.3: "MAY ... strip trailing whitespace").
#   - One attempt decides: PENDING → VALID or INVALID, both final (§7.1.6: an invalid
#     challenge is not retried; ask for a new one). A VALID challenge is spent by the IDENTITY
#     request it admits (USED), within `limits.challenge_lifetime_ms` of being issued.
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from aex.core import limits
from aex.core.endpoints import parse_endpoint
from aex.core.reasons import ChallengeRejectReason, Rejected

__all__ = [
    "CHALLENGE_PATH",
    "Challenge",
    "ChallengeState",
    "challenge_url",
    "check_response",
    "key_authorization",
    "open_challenge",
    "settle_challenge",
    "spend_challenge",
]

CHALLENGE_PATH: Final = "/.well-known/aex-challenge/"
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_TRAILING_WHITESPACE: Final = b" \t\r\n"


class ChallengeState(StrEnum):
    PENDING = "PENDING"
    VALID = "VALID"
    INVALID = "INVALID"
    USED = "USED"


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge: who it is for, the key it binds, where it is fetched, its state."""

    token: str
    provider_id: str
    key_thumbprint: str
    url: str
    state: ChallengeState
    created_at_ms: int
    expires_at_ms: int
    error: str = ""

    def __post_init__(self) -> None:
        assert _TOKEN.fullmatch(self.token)
        assert len(self.url) <= limits.cert_scope_chars_max
        assert 0 <= self.created_at_ms < self.expires_at_ms

    @property
    def key_authorization(self) -> str:
        return key_authorization(self.token, self.key_thumbprint)


def key_authorization(token: str, key_thumbprint: str) -> str:
    """RFC 8555 §8.1: token "." base64url(JWK thumbprint of the key being certified)."""
    return f"{token}.{key_thumbprint}"


def challenge_url(endpoint: str, token: str) -> str | None:
    """Where the agent serves the key authorisation: the origin of its registered URL plus
    /.well-known/aex-challenge/<token>; None if the URL is not a valid endpoint, or the result
    would not fit a certificate claim's scope (256 characters)."""
    assert _TOKEN.fullmatch(token)
    parsed = parse_endpoint(endpoint)
    if isinstance(parsed, Rejected):
        return None
    url = f"{parsed.scheme}://{parsed.host_header}{CHALLENGE_PATH}{token}"
    return url if len(url) <= limits.cert_scope_chars_max else None


def open_challenge(
    *,
    token: str,
    provider_id: str,
    key_thumbprint: str,
    endpoint: str | None,
    now_ms: int,
) -> Challenge | Rejected[ChallengeRejectReason]:
    """A PENDING challenge for the provider's registered URL (`endpoint`: its agent card's URL
    or its webhook endpoint), or CHALLENGE_ENDPOINT_MISSING when it has none usable."""
    url = None if endpoint is None else challenge_url(endpoint, token)
    if url is None:
        return Rejected(ChallengeRejectReason.CHALLENGE_ENDPOINT_MISSING, "endpoint")
    return Challenge(
        token=token,
        provider_id=provider_id,
        key_thumbprint=key_thumbprint,
        url=url,
        state=ChallengeState.PENDING,
        created_at_ms=now_ms,
        expires_at_ms=now_ms + limits.challenge_lifetime_ms,
    )


def check_response(
    challenge: Challenge, status: int, body: bytes
) -> Rejected[ChallengeRejectReason] | None:
    """None when the fetched response proves control: HTTP 200 and exactly the key
    authorisation (trailing whitespace aside)."""
    if status != 200:
        return Rejected(ChallengeRejectReason.CHALLENGE_FETCH_FAILED, "url", f"HTTP {status}")
    if len(body) > limits.challenge_response_bytes_max:
        return Rejected(ChallengeRejectReason.CHALLENGE_RESPONSE_MISMATCH, "url", "too long")
    if body.rstrip(_TRAILING_WHITESPACE) != challenge.key_authorization.encode("ascii"):
        return Rejected(ChallengeRejectReason.CHALLENGE_RESPONSE_MISMATCH, "url")
    return None


def settle_challenge(
    challenge: Challenge, outcome: Rejected[ChallengeRejectReason] | None, *, now_ms: int
) -> Challenge | Rejected[ChallengeRejectReason]:
    """PENDING → VALID (outcome None) or INVALID (the fetch's refusal, kept as the error)."""
    if challenge.state is not ChallengeState.PENDING:
        return Rejected(ChallengeRejectReason.CHALLENGE_NOT_PENDING, "state", challenge.state)
    if now_ms >= challenge.expires_at_ms:
        return Rejected(ChallengeRejectReason.CHALLENGE_EXPIRED, "expires_at_ms")
    if outcome is None:
        return replace(challenge, state=ChallengeState.VALID)
    return replace(challenge, state=ChallengeState.INVALID, error=outcome.reason.value)


def spend_challenge(
    challenge: Challenge, *, provider_id: str, key_thumbprint: str, now_ms: int
) -> Challenge | None:
    """The challenge marked USED when it admits an IDENTITY request for this provider and
    key; None when it does not (not VALID, expired, another provider or key)."""
    if challenge.state is not ChallengeState.VALID or now_ms >= challenge.expires_at_ms:
        return None
    if challenge.provider_id != provider_id or challenge.key_thumbprint != key_thumbprint:
        return None
    return replace(challenge, state=ChallengeState.USED)

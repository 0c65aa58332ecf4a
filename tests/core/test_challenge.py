"""IDENTITY challenges (aex/core/challenge.py): key authorisation, response check, lifecycle."""

from __future__ import annotations

import pytest

from aex.core import limits
from aex.core.challenge import (
    Challenge,
    ChallengeState,
    challenge_url,
    check_response,
    open_challenge,
    settle_challenge,
    spend_challenge,
)
from aex.core.reasons import ChallengeRejectReason, Rejected

TOKEN = "A" * 43
THUMB = "T" * 43


def opened(endpoint: str = "https://agent.example:8443/a2a/v1?x=1") -> Challenge:
    found = open_challenge(
        token=TOKEN, provider_id="prov_a", key_thumbprint=THUMB, endpoint=endpoint, now_ms=1_000
    )
    assert isinstance(found, Challenge)
    return found


def test_the_challenge_is_served_at_the_registered_origin() -> None:
    assert opened().url == f"https://agent.example:8443/.well-known/aex-challenge/{TOKEN}"
    assert challenge_url("http://127.0.0.1:80/hook", TOKEN) == (
        f"http://127.0.0.1/.well-known/aex-challenge/{TOKEN}"
    )


@pytest.mark.parametrize("endpoint", [None, "ftp://x/", "not a url"])
def test_a_provider_without_a_usable_url_gets_no_challenge(endpoint: str | None) -> None:
    refused = open_challenge(
        token=TOKEN, provider_id="p", key_thumbprint=THUMB, endpoint=endpoint, now_ms=0
    )
    assert isinstance(refused, Rejected)
    assert refused.reason is ChallengeRejectReason.CHALLENGE_ENDPOINT_MISSING


def test_only_the_exact_key_authorisation_proves_control() -> None:
    challenge = opened()
    expected = f"{TOKEN}.{THUMB}".encode()
    assert check_response(challenge, 200, expected) is None
    assert check_response(challenge, 200, expected + b"\r\n") is None  # RFC 8555 §8.3
    for status, body in [(200, TOKEN.encode()), (200, b" " + expected), (404, expected)]:
        refused = check_response(challenge, status, body)
        assert isinstance(refused, Rejected), (status, body)
    too_long = check_response(challenge, 200, expected + b" " * limits.challenge_response_bytes_max)
    assert isinstance(too_long, Rejected)


def test_one_attempt_decides_and_a_valid_challenge_is_spent_once() -> None:
    challenge = opened()
    failed = settle_challenge(
        challenge, Rejected(ChallengeRejectReason.CHALLENGE_RESPONSE_MISMATCH, "url"), now_ms=2
    )
    assert isinstance(failed, Challenge)
    assert failed.state is ChallengeState.INVALID
    again = settle_challenge(failed, None, now_ms=3)
    assert isinstance(again, Rejected)
    assert again.reason is ChallengeRejectReason.CHALLENGE_NOT_PENDING
    valid = settle_challenge(challenge, None, now_ms=2)
    assert isinstance(valid, Challenge)
    assert spend_challenge(valid, provider_id="prov_b", key_thumbprint=THUMB, now_ms=3) is None
    assert spend_challenge(valid, provider_id="prov_a", key_thumbprint="K" * 43, now_ms=3) is None
    used = spend_challenge(valid, provider_id="prov_a", key_thumbprint=THUMB, now_ms=3)
    assert used is not None
    assert used.state is ChallengeState.USED
    assert spend_challenge(used, provider_id="prov_a", key_thumbprint=THUMB, now_ms=4) is None


def test_an_expired_challenge_is_not_decided_nor_spent() -> None:
    challenge = opened()
    late = challenge.expires_at_ms
    expired = settle_challenge(challenge, None, now_ms=late)
    assert isinstance(expired, Rejected)
    assert expired.reason is ChallengeRejectReason.CHALLENGE_EXPIRED
    valid = settle_challenge(challenge, None, now_ms=2)
    assert isinstance(valid, Challenge)
    assert spend_challenge(valid, provider_id="prov_a", key_thumbprint=THUMB, now_ms=late) is None

"""Credential formats (spec: "aexk_" + 64 hex) and subscription pattern matching."""

from __future__ import annotations

import hashlib

import pytest

from aex.core import (
    CredentialKind,
    Rejected,
    credential_digest,
    credential_kind,
    format_credential,
    is_valid_pattern,
    subscription_matches,
)


@pytest.mark.parametrize("kind", list(CredentialKind))
def test_formatted_credentials_classify_back_to_their_kind(kind: CredentialKind) -> None:
    credential = format_credential(kind, "ab" * 32)
    assert credential_kind(credential) is kind
    assert credential_digest(credential) == hashlib.sha256(credential.encode()).hexdigest()


@pytest.mark.parametrize(
    "presented",
    ["", None, "aexk_", "aexk_" + "A" * 64, "aexk_" + "0" * 63, "aexk_" + "0" * 65, "key"],
)
def test_malformed_credentials_are_rejected(presented: str | None) -> None:
    assert isinstance(credential_kind(presented), Rejected)


def test_wildcards_match_documented_patterns() -> None:
    assert subscription_matches(["*"], [], category="ANY", work_capabilities=["x"])
    assert subscription_matches(
        ["TECHNOLOGY"], ["code.*"], category="TECHNOLOGY", work_capabilities=["code.review"]
    )
    assert not subscription_matches(
        ["TECHNOLOGY"], ["code.*"], category="TECHNOLOGY", work_capabilities=["design"]
    )
    assert not subscription_matches(["TECH"], [], category="TECHNOLOGY", work_capabilities=[])
    assert not is_valid_pattern("TE*CH")

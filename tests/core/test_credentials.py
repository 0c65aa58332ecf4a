"""Credential formats (spec: "aexk_" + 64 hex), scope minting rules and subscription pattern
matching."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aex.core import (
    PROVIDER_KEY_SCOPES,
    SCOPE_WILDCARD,
    SCOPES_PER_TOKEN_MAX,
    TENANT_KEY_SCOPES,
    AccessScope,
    CredentialKind,
    Rejected,
    ScopeRejectReason,
    credential_digest,
    credential_kind,
    format_credential,
    grant_scopes,
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


SCOPE_NAMES = [*(scope.value for scope in AccessScope), SCOPE_WILDCARD, "admin"]


@given(
    requested=st.lists(st.sampled_from(SCOPE_NAMES), max_size=SCOPES_PER_TOKEN_MAX),
    held=st.sets(st.sampled_from(list(AccessScope))),
)
def test_granted_scopes_never_exceed_the_minters(
    requested: list[str], held: set[AccessScope]
) -> None:
    granted = grant_scopes(requested, held)
    if isinstance(granted, Rejected):
        assert granted.field == "scopes"
        return
    assert set(granted) <= held  # no escalation by minting
    assert granted == tuple(s for s in AccessScope if s in set(granted))  # ordered, unique
    if SCOPE_WILDCARD in requested:
        assert set(granted) == held


def test_the_wildcard_means_every_scope_the_minter_holds() -> None:
    assert grant_scopes(["*"], TENANT_KEY_SCOPES) == TENANT_KEY_SCOPES
    assert grant_scopes(["*"], PROVIDER_KEY_SCOPES) == PROVIDER_KEY_SCOPES
    assert grant_scopes(["*", "read"], [AccessScope.READ]) == (AccessScope.READ,)


@pytest.mark.parametrize(
    ("requested", "reason"),
    [
        ([], ScopeRejectReason.SCOPES_EMPTY),
        (["admin"], ScopeRejectReason.SCOPE_UNKNOWN),
        (["*", "admin"], ScopeRejectReason.SCOPE_UNKNOWN),
        (["read", "operator"], ScopeRejectReason.SCOPE_NOT_HELD),
        (["wallets"], ScopeRejectReason.SCOPE_NOT_HELD),
    ],
)
def test_scopes_beyond_the_minters_are_rejected_by_reason(
    requested: list[str], reason: ScopeRejectReason
) -> None:
    held = [AccessScope.READ, AccessScope.KEYS]
    rejected = grant_scopes(requested, held)
    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.field) == (reason, "scopes")
    assert ScopeRejectReason.SCOPE_NOT_HELD.http_status == 403


def test_the_wildcard_of_a_credential_holding_nothing_grants_nothing() -> None:
    # Found by Hypothesis: "*" over no scopes once tripped the post-condition assert.
    rejected = grant_scopes(["*"], [])
    assert isinstance(rejected, Rejected)
    assert rejected.reason is ScopeRejectReason.SCOPES_EMPTY


def test_no_key_holds_the_operator_scope_and_agents_hold_less_than_tenants() -> None:
    assert AccessScope.OPERATOR not in TENANT_KEY_SCOPES
    assert set(PROVIDER_KEY_SCOPES) < set(TENANT_KEY_SCOPES)
    assert AccessScope.WALLETS not in PROVIDER_KEY_SCOPES
    assert AccessScope.KEYS not in PROVIDER_KEY_SCOPES

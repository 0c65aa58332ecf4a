"""Certificate types with meaning (issue 15): the assurance rule, exchange-stated claims."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aex.core.certs import (
    Assurance,
    Authorization,
    CertEvent,
    CertificateRecord,
    CertificateType,
    Claim,
    claim_assurance,
    counts_toward_certification,
    open_request,
    record_from_json,
    record_to_json,
    reputation_claims,
    review_policy,
    sign_request,
    state_claims,
)
from aex.core.reasons import CertRequestRejectReason, Rejected
from tests.ca.factory import AGENT, NOW, SELF_CLAIM


def _request(kind: CertificateType, claims: tuple[Claim, ...]) -> object:
    document = sign_request(
        provider_id="prov_abc", agent_name="Bot", type=kind, claims=claims, signer=AGENT
    )
    return open_request(document, record_id="cert_t")


@pytest.mark.parametrize(
    ("authorization", "assurance"),
    [
        (Authorization.SELF_ASSERTED, Assurance.SELF_ASSERTED),
        (Authorization.TRANSACTION_EVIDENCE, Assurance.EVIDENCE_BACKED),
        (Authorization.AEX_VERIFIED, Assurance.EVIDENCE_BACKED),
        (Authorization.THIRD_PARTY_ATTESTED, Assurance.OPERATOR_REVIEWED),
    ],
)
def test_every_authorization_has_one_assurance(
    authorization: Authorization, assurance: Assurance
) -> None:
    assert claim_assurance(Claim("T", "c", "", authorization)) is assurance


@pytest.mark.parametrize("kind", list(CertificateType))
def test_self_asserted_claims_never_count_toward_certification(kind: CertificateType) -> None:
    assert not counts_toward_certification(kind, SELF_CLAIM)


def test_evidence_backed_claims_count_except_on_reputation_certificates() -> None:
    claim = Claim("TECHNOLOGY", "code.review", "", Authorization.THIRD_PARTY_ATTESTED)
    assert counts_toward_certification(CertificateType.CAPABILITY, claim)
    assert counts_toward_certification(CertificateType.IDENTITY, claim)
    assert not counts_toward_certification(CertificateType.REPUTATION, claim)


@pytest.mark.parametrize("kind", [CertificateType.IDENTITY, CertificateType.REPUTATION])
def test_identity_and_reputation_requests_carry_no_claims(kind: CertificateType) -> None:
    refused = _request(kind, (SELF_CLAIM,))
    assert isinstance(refused, Rejected)
    assert refused.reason is CertRequestRejectReason.CLAIMS_NOT_REQUESTABLE
    opened = _request(kind, ())
    assert isinstance(opened, CertificateRecord)
    assert review_policy(opened.request) is None  # nothing stated yet: nothing to approve


def test_capability_requests_still_need_a_claim() -> None:
    refused = _request(CertificateType.CAPABILITY, ())
    assert isinstance(refused, Rejected)
    assert refused.reason is CertRequestRejectReason.CLAIMS_EMPTY


def test_stated_claims_survive_the_store_and_are_approved() -> None:
    opened = _request(CertificateType.REPUTATION, ())
    assert isinstance(opened, CertificateRecord)
    claims = reputation_claims(
        tier="BRONZE",
        contracts=0,
        success_rate_bps=0,
        window_start=NOW - timedelta(days=30),
        window_end=NOW,
    )
    stated = state_claims(opened, claims)
    assert review_policy(stated.request) is CertEvent.APPROVE
    assert record_from_json(record_to_json(stated)).request.claims == claims


def test_a_provider_with_no_contracts_is_stated_as_exactly_that() -> None:
    claims = reputation_claims(
        tier="BRONZE",
        contracts=0,
        success_rate_bps=0,
        window_start=NOW - timedelta(days=30),
        window_end=NOW,
    )
    stated = {claim.capability: claim.scope for claim in claims}
    assert stated["contracts"] == "0"
    assert stated["success_rate_bps"] == "0"
    assert stated["tier"] == "BRONZE"
    assert all(claim.authorization is Authorization.TRANSACTION_EVIDENCE for claim in claims)
    with pytest.raises(AssertionError):
        reputation_claims(
            tier="BRONZE", contracts=0, success_rate_bps=9_000, window_start=NOW, window_end=NOW
        )

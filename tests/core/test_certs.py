"""aex/core/certs.py: requests with proof of possession, the lifecycle table, signing,
verification reasons, CRLs and the CA document.

Invariant (hypothesis): a signed certificate with any byte of its signature flipped, or any
field changed, never verifies.
"""

from __future__ import annotations

import base64
import binascii
import copy
from datetime import timedelta
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from aex.core.certs import (
    TRANSITIONS,
    CertEvent,
    CertificateRecord,
    CertState,
    CrlState,
    ReputationSnapshot,
    RevocationReason,
    RevokedEntry,
    Verified,
    b64url_decode,
    b64url_encode,
    ca_keys_from_document,
    crl_state_reissue,
    crl_state_revoke,
    jwk_thumbprint,
    open_request,
    parse_certificate,
    record_from_json,
    record_to_json,
    renew_certificate,
    review_policy,
    review_request,
    revoke_certificate,
    sign_crl,
    verify_certificate,
    verify_crl,
    verify_offline,
)
from aex.core.jcs import canonical_json
from aex.core.reasons import (
    CertLifecycleRejectReason,
    CertRequestRejectReason,
    CertVerifyReason,
    Rejected,
)
from tests.ca.factory import (
    AGENT,
    CA,
    EVIDENCE_CLAIM,
    GOLD,
    NOW,
    SELF_CLAIM,
    VALIDITY,
    ca_doc,
    issued_record,
    request_document,
    signer,
)

KEYS = {CA.kid: CA.public_key}


def certificate_document() -> dict[str, Any]:
    certificate = issued_record().certificate
    assert certificate is not None
    return certificate.to_json()


# --- requests and proof of possession -----------------------------------------------------


def test_signed_request_opens_in_state_requested() -> None:
    record = open_request(request_document(), record_id="cert_1")
    assert isinstance(record, CertificateRecord)
    assert record.state is CertState.REQUESTED
    assert record.request.subject.public_key.public_numbers() == AGENT.public_key.public_numbers()


def test_request_signed_by_another_key_fails_proof_of_possession() -> None:
    document = request_document()
    forged = request_document(agent=signer(99))
    document["signature"] = forged["signature"]
    result = open_request(document, record_id="cert_1")
    assert result == Rejected(CertRequestRejectReason.PROOF_OF_POSSESSION_FAILED, "signature", "")


def test_request_changed_after_signing_fails_proof_of_possession() -> None:
    document = request_document()
    document["agent_name"] = "SomeoneElse"
    result = open_request(document, record_id="cert_1")
    assert isinstance(result, Rejected)
    assert result.reason is CertRequestRejectReason.PROOF_OF_POSSESSION_FAILED


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.pop("signature"), CertRequestRejectReason.REQUEST_MALFORMED),
        (lambda d: d.update(type="WIZARD"), CertRequestRejectReason.CERTIFICATE_TYPE_UNKNOWN),
        (lambda d: d.update(claims=[]), CertRequestRejectReason.CLAIMS_EMPTY),
        (lambda d: d.update(claims=d["claims"] * 33), CertRequestRejectReason.CLAIMS_TOO_MANY),
        (
            lambda d: d["claims"][0].update(authorization="TRUST_ME"),
            CertRequestRejectReason.AUTHORIZATION_UNKNOWN,
        ),
        (lambda d: d.update(agent_name="x" * 65), CertRequestRejectReason.TEXT_TOO_LONG),
        (lambda d: d.update(agent_name="Code\u202eBot"), CertRequestRejectReason.TEXT_UNSAFE),
        (lambda d: d.update(agent_name="Bot\u0000"), CertRequestRejectReason.TEXT_UNSAFE),
        (
            lambda d: d.update(public_key_pem="-----BEGIN"),
            CertRequestRejectReason.PUBLIC_KEY_INVALID,
        ),
    ],
)
def test_request_rejections_name_the_first_failing_check(change: Any, reason: Any) -> None:
    document = request_document()
    change(document)
    result = open_request(document, record_id="cert_1")
    assert isinstance(result, Rejected)
    assert result.reason is reason


# --- review, issue, renew, revoke ---------------------------------------------------------


def test_self_asserted_requests_are_auto_approved() -> None:
    record = open_request(request_document(), record_id="cert_1")
    assert isinstance(record, CertificateRecord)
    assert review_policy(record.request) is CertEvent.APPROVE


def test_evidence_backed_claims_wait_for_manual_review() -> None:
    record = open_request(request_document(claims=(SELF_CLAIM, EVIDENCE_CLAIM)), record_id="c")
    assert isinstance(record, CertificateRecord)
    assert review_policy(record.request) is None
    rejected = review_request(record, CertEvent.REJECT, note="no evidence on file")
    assert isinstance(rejected, CertificateRecord)
    assert rejected.state is CertState.REJECTED
    assert rejected.note == "no evidence on file"


def test_issued_certificate_verifies_and_carries_the_snapshot() -> None:
    result = verify_certificate(certificate_document(), ca_keys=KEYS, now=NOW)
    assert isinstance(result, Verified)
    assert result.certificate.reputation == GOLD
    assert result.certificate.expires_at == NOW + VALIDITY


def test_signing_is_deterministic() -> None:
    assert certificate_document() == certificate_document()


def test_renew_carries_the_new_reputation_snapshot_under_a_new_serial() -> None:
    record = issued_record()
    platinum = ReputationSnapshot(tier="PLATINUM", score="0.93", contracts=240)
    later = NOW + timedelta(days=60)
    renewed = renew_certificate(
        record, serial=42, reputation=platinum, now=later, validity=VALIDITY, signer=CA
    )
    assert isinstance(renewed, CertificateRecord)
    assert renewed.state is CertState.RENEWED
    assert renewed.certificate is not None
    assert renewed.certificate.reputation == platinum
    assert renewed.serials == (*record.serials, "42")
    result = verify_certificate(renewed.certificate.to_json(), ca_keys=KEYS, now=later)
    assert isinstance(result, Verified)
    assert result.certificate.reputation.tier == "PLATINUM"


def test_every_missing_transition_is_illegal() -> None:
    record = open_request(request_document(), record_id="cert_1")
    assert isinstance(record, CertificateRecord)
    assert (CertState.REQUESTED, CertEvent.RENEW) not in TRANSITIONS
    result = renew_certificate(
        record, serial=1, reputation=GOLD, now=NOW, validity=VALIDITY, signer=CA
    )
    assert isinstance(result, Rejected)
    assert result.reason is CertLifecycleRejectReason.ILLEGAL_TRANSITION
    revoked = revoke_certificate(issued_record(), reason=1, now=NOW)
    assert isinstance(revoked, CertificateRecord)
    again = revoke_certificate(revoked, reason=1, now=NOW)
    assert isinstance(again, Rejected)
    assert again.reason is CertLifecycleRejectReason.ILLEGAL_TRANSITION


@pytest.mark.parametrize("code", [6, 7, 8, 11, -1])
def test_revocation_needs_a_final_rfc5280_reason(code: int) -> None:
    result = revoke_certificate(issued_record(), reason=code, now=NOW)
    assert isinstance(result, Rejected)
    assert result.reason is CertLifecycleRejectReason.REVOCATION_REASON_INVALID


def test_record_round_trips_through_json() -> None:
    record = revoke_certificate(issued_record(), reason=1, now=NOW)
    assert isinstance(record, CertificateRecord)
    assert record_from_json(record_to_json(record)) == record


# --- verification reasons -----------------------------------------------------------------


def test_certificate_is_not_valid_before_not_before() -> None:
    result = verify_certificate(
        certificate_document(), ca_keys=KEYS, now=NOW - timedelta(seconds=1)
    )
    assert isinstance(result, Rejected)
    assert result.reason is CertVerifyReason.NOT_YET_VALID


def test_certificate_expires_at_expires_at() -> None:
    result = verify_certificate(certificate_document(), ca_keys=KEYS, now=NOW + VALIDITY)
    assert isinstance(result, Rejected)
    assert result.reason is CertVerifyReason.EXPIRED


def test_certificate_from_an_unpublished_key_is_unknown_key() -> None:
    result = verify_certificate(
        certificate_document(), ca_keys={signer(7).kid: signer(7).public_key}, now=NOW
    )
    assert isinstance(result, Rejected)
    assert result.reason is CertVerifyReason.UNKNOWN_KEY


def test_revoked_certificate_is_rejected_and_crl_numbers_grow() -> None:
    document = certificate_document()
    state0 = CrlState(crl_number=0)
    entry = RevokedEntry(document["serial"], NOW, RevocationReason.keyCompromise)
    state1 = crl_state_revoke(state0, [entry])
    assert state1.crl_number == 1
    assert crl_state_revoke(state1, [entry]) == state1  # nothing new, no new number
    assert crl_state_reissue(state1).crl_number == 2
    crl_doc = sign_crl(state1, this_update=NOW, next_update=NOW + timedelta(days=1), signer=CA)
    crl = verify_crl(crl_doc, ca_keys=KEYS, now=NOW)
    assert not isinstance(crl, Rejected)
    result = verify_certificate(document, ca_keys=KEYS, now=NOW, crl=crl)
    assert result == Rejected(CertVerifyReason.REVOKED, "serial", "keyCompromise")


def test_tampered_or_stale_crl_fails_verification() -> None:
    crl_doc = sign_crl(CrlState(3), this_update=NOW, next_update=NOW + timedelta(days=1), signer=CA)
    stale = verify_crl(crl_doc, ca_keys=KEYS, now=NOW + timedelta(days=1))
    assert isinstance(stale, Rejected)
    assert stale.reason is CertVerifyReason.CRL_STALE
    tampered = {**crl_doc, "crl_number": 4}
    bad = verify_crl(tampered, ca_keys=KEYS, now=NOW)
    assert isinstance(bad, Rejected)
    assert bad.reason is CertVerifyReason.CRL_BAD_SIGNATURE
    result = verify_offline(certificate_document(), ca_doc(), now=NOW, crl_document=tampered)
    assert isinstance(result, Rejected)
    assert result.reason is CertVerifyReason.CRL_BAD_SIGNATURE


def test_rotated_key_certificates_verify_while_the_old_key_is_published() -> None:
    old_cert = certificate_document()
    new_ca = signer(3)
    both = ca_doc(new_ca, CA)
    assert isinstance(verify_offline(old_cert, both, now=NOW), Verified)
    only_new = ca_doc(new_ca)
    result = verify_offline(old_cert, only_new, now=NOW)
    assert isinstance(result, Rejected)
    assert result.reason is CertVerifyReason.UNKNOWN_KEY


def test_ca_document_kids_are_rfc7638_thumbprints() -> None:
    document = ca_doc()
    assert document["jwks"]["keys"][0]["kid"] == jwk_thumbprint(CA.public_key)
    keys = ca_keys_from_document(document)
    assert not isinstance(keys, Rejected)
    assert list(keys) == [CA.kid]
    document["jwks"]["keys"][0]["kid"] = signer(5).kid
    assert isinstance(ca_keys_from_document(document), Rejected)


def test_rfc7638_thumbprint_matches_the_rfc_example_shape() -> None:
    # The thumbprint hashes exactly {"crv","kty","x","y"} in that order, no whitespace.
    assert len(b64url_decode(CA.kid) or b"") == 32


def test_base64url_decoding_is_strict() -> None:
    assert b64url_decode(b64url_encode(b"\xff\xfe")) == b"\xff\xfe"
    assert b64url_decode("__8") == b"\xff\xff"
    assert b64url_decode("__9") is None  # non-zero padding bits: another spelling of "__8"
    assert b64url_decode("ab==") is None
    assert b64url_decode("a") is None


# --- the tamper invariant -----------------------------------------------------------------

DOCUMENT = certificate_document()


def leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_paths(v, (*prefix, i))]
    return [prefix]


PATHS = [p for p in leaf_paths(DOCUMENT) if p != ("signature",)]
replacements = st.one_of(
    st.text(max_size=12),
    st.integers(-(2**60), 2**60),
    st.floats(),
    st.booleans(),
    st.none(),
    st.just([]),
    st.just({"x": 1}),
)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_flipping_any_signature_byte_never_verifies(data: st.DataObject) -> None:
    raw = bytearray(b64url_decode(DOCUMENT["signature"]) or b"")
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    document = {**DOCUMENT, "signature": b64url_encode(bytes(raw))}
    result = verify_certificate(document, ca_keys=KEYS, now=NOW)
    assert result == Rejected(CertVerifyReason.BAD_SIGNATURE, "signature", "")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PATHS), replacements)
def test_changing_any_field_never_verifies(path: tuple[Any, ...], replacement: Any) -> None:
    document = copy.deepcopy(DOCUMENT)
    target = document
    for step in path[:-1]:
        target = target[step]
    if target[path[-1]] == replacement and type(target[path[-1]]) is type(replacement):
        return  # not a change
    target[path[-1]] = replacement
    assert isinstance(verify_certificate(document, ca_keys=KEYS, now=NOW), Rejected)


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=8), st.integers(0, 2**52))
def test_adding_any_member_never_verifies(name: str, value: int) -> None:
    document = copy.deepcopy(DOCUMENT)
    if name in document:
        return
    document[name] = value
    assert isinstance(verify_certificate(document, ca_keys=KEYS, now=NOW), Rejected)


def test_parse_certificate_accepts_exactly_what_to_json_emits() -> None:
    parsed = parse_certificate(DOCUMENT)
    assert not isinstance(parsed, Rejected)
    assert parsed.to_json() == DOCUMENT


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=64), st.text(max_size=256))
def test_signed_bytes_are_rfc8785_for_any_names(agent_name: str, scope: str) -> None:
    document = copy.deepcopy(DOCUMENT)
    document["subject"]["agent_name"] = agent_name
    document["claims"][0]["scope"] = scope
    body = {k: v for k, v in document.items() if k != "signature"}
    try:
        expected = rfc8785.dumps(body)
    except rfc8785.CanonicalizationError:
        return  # a lone surrogate: no canonical form, and no certificate either
    assert canonical_json(body, shape_checked=True) == expected


def _round_trip_decode(text: str) -> bytes | None:
    """b64url_decode's definition: the bytes of `text` when it is their one spelling."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if b64url_encode(data) == text else None


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(min_size=64, max_size=64).map(b64url_encode),
        st.text(alphabet=_B64URL, min_size=86, max_size=86),
        st.text(alphabet=_B64URL + "=+/ \n", min_size=84, max_size=88),
    )
)
def test_a_signature_decodes_as_the_round_trip_defines_it(text: str) -> None:
    # The 86-character fast path (a signature's length) agrees with the round trip.
    assert b64url_decode(text) == _round_trip_decode(text)

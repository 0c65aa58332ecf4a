"""CertificateAuthority: the driver runs load → core → persist → respond on real files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aex.ca.authority import CertificateAuthority
from aex.ca.keystore import FileKeyProvider
from aex.ca.store import FileCertificateStore
from aex.core.certs import (
    CertificateRecord,
    CertState,
    ReputationSnapshot,
    RevocationReason,
    Verified,
    verify_crl,
    verify_offline,
)
from aex.core.reasons import CertLifecycleRejectReason, CertVerifyReason, Rejected
from tests.ca.factory import EVIDENCE_CLAIM, NOW, SELF_CLAIM, request_document


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def serials() -> Iterator[int]:
    yield from range(1000, 10**6)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def reputation() -> dict[str, ReputationSnapshot]:
    return {"prov_abc": ReputationSnapshot("SILVER", "0.55", 12)}


@pytest.fixture
def authority(tmp_path: Path, clock: Clock, reputation: dict) -> CertificateAuthority:
    numbers = serials()
    return CertificateAuthority(
        keys=FileKeyProvider(tmp_path, now=NOW),
        store=FileCertificateStore(tmp_path),
        clock=clock,
        reputation_of=reputation.__getitem__,
        new_serial=lambda: next(numbers),
    )


def test_self_asserted_request_is_issued_at_once(authority: CertificateAuthority) -> None:
    record = authority.request(request_document())
    assert isinstance(record, CertificateRecord)
    assert record.state is CertState.ISSUED
    assert record.certificate is not None
    assert record.certificate.reputation.tier == "SILVER"
    result = verify_offline(record.certificate.to_json(), authority.ca_document(), now=NOW)
    assert isinstance(result, Verified)


def test_evidence_backed_request_waits_for_approval(authority: CertificateAuthority) -> None:
    pending = authority.request(request_document(claims=(SELF_CLAIM, EVIDENCE_CLAIM)))
    assert isinstance(pending, CertificateRecord)
    assert pending.state is CertState.REQUESTED
    assert authority.certificate(pending.id) == Rejected(
        CertLifecycleRejectReason.CERTIFICATE_NOT_FOUND, "certificate_id"
    )
    issued = authority.approve(pending.id, note="evidence checked")
    assert isinstance(issued, CertificateRecord)
    assert issued.state is CertState.ISSUED
    again = authority.reject(pending.id)
    assert isinstance(again, Rejected)
    assert again.reason is CertLifecycleRejectReason.ILLEGAL_TRANSITION


def test_renew_uses_the_current_reputation(
    authority: CertificateAuthority, clock: Clock, reputation: dict
) -> None:
    record = authority.request(request_document())
    assert isinstance(record, CertificateRecord)
    reputation["prov_abc"] = ReputationSnapshot("GOLD", "0.8", 60)
    clock.now = NOW + timedelta(days=30)
    renewed = authority.renew(record.id)
    assert isinstance(renewed, CertificateRecord)
    assert renewed.certificate is not None
    assert renewed.certificate.reputation.tier == "GOLD"
    assert renewed.certificate.serial != record.serials[0]


def test_revocation_lists_every_serial_and_grows_the_crl_number(
    authority: CertificateAuthority, clock: Clock
) -> None:
    record = authority.request(request_document())
    assert isinstance(record, CertificateRecord)
    renewed = authority.renew(record.id)
    assert isinstance(renewed, CertificateRecord)
    first = authority.crl()["crl_number"]
    assert authority.crl()["crl_number"] == first  # unchanged and fresh: served as is
    revoked = authority.revoke(record.id, reason=RevocationReason.keyCompromise)
    assert isinstance(revoked, CertificateRecord)
    crl = authority.crl()
    assert crl["crl_number"] == first + 1
    assert {entry["serial"] for entry in crl["entries"]} == set(renewed.serials)
    assert {entry["reason_code"] for entry in crl["entries"]} == {1}
    for certificate in (record.certificate, renewed.certificate):
        assert certificate is not None
        result = authority.verify(certificate.to_json())
        assert isinstance(result, Rejected)
        assert result.reason is CertVerifyReason.REVOKED
    clock.now = NOW + timedelta(hours=13)  # past half of the CRL's one-day lifetime
    reissued = authority.crl()
    assert reissued["crl_number"] == first + 2
    keys = authority.keys.public_keys()
    assert not isinstance(verify_crl(reissued, ca_keys=keys, now=clock.now), Rejected)


def test_unknown_certificate_id_is_not_found(authority: CertificateAuthority) -> None:
    for result in (authority.renew("cert_nope"), authority.revoke("../etc", reason=0)):
        assert isinstance(result, Rejected)
        assert result.reason is CertLifecycleRejectReason.CERTIFICATE_NOT_FOUND


def test_rotation_old_certificates_verify_until_their_key_is_unpublished(
    authority: CertificateAuthority, tmp_path: Path
) -> None:
    old = authority.request(request_document())
    assert isinstance(old, CertificateRecord)
    assert old.certificate is not None
    keys = authority.keys
    assert isinstance(keys, FileKeyProvider)
    old_kid = keys.active_kid()
    keys.rotate(now=NOW)
    new = authority.request(request_document())
    assert isinstance(new, CertificateRecord)
    assert new.certificate is not None
    assert new.certificate.issuer_kid != old_kid
    for record in (old, new):
        assert record.certificate is not None
        assert isinstance(authority.verify(record.certificate.to_json()), Verified)
    keys.unpublish(old_kid)
    result = verify_offline(old.certificate.to_json(), authority.ca_document(), now=NOW)
    assert isinstance(result, Rejected)
    assert result.reason is CertVerifyReason.UNKNOWN_KEY
    assert isinstance(authority.verify(new.certificate.to_json()), Verified)

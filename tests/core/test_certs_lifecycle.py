"""The certificate lifecycle driven by a state machine (hypothesis.stateful).

Invariants: an event is accepted exactly when TRANSITIONS has it, and a refused event leaves
the record unchanged; serials never repeat; the current certificate always verifies at its
issue time; after revocation the CRL built from the record lists every serial it ever had.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from aex.core.certs import (
    TRANSITIONS,
    CertEvent,
    CertificateRecord,
    CertState,
    CrlState,
    RevokedEntry,
    Verified,
    crl_state_revoke,
    issue_certificate,
    open_request,
    renew_certificate,
    review_request,
    revoke_certificate,
    verify_certificate,
)
from aex.core.reasons import CertLifecycleRejectReason, Rejected
from tests.ca.factory import CA, GOLD, NOW, VALIDITY, request_document

KEYS = {CA.kid: CA.public_key}


class CertificateLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        record = open_request(request_document(), record_id="cert_machine")
        assert isinstance(record, CertificateRecord)
        self.record = record
        self.next_serial = 1
        self.now = NOW
        self.crl = CrlState(0)

    def apply(self, event: CertEvent, result: CertificateRecord | Rejected) -> None:
        legal = (self.record.state, event) in TRANSITIONS
        if legal:
            assert isinstance(result, CertificateRecord), result
            assert result.state is TRANSITIONS[(self.record.state, event)]
            self.record = result
        else:
            assert isinstance(result, Rejected)
            assert result.reason is CertLifecycleRejectReason.ILLEGAL_TRANSITION

    def serial(self) -> int:
        self.next_serial += 1
        return self.next_serial

    @rule(approve=st.booleans())
    def review(self, approve: bool) -> None:
        event = CertEvent.APPROVE if approve else CertEvent.REJECT
        self.apply(event, review_request(self.record, event))

    @rule()
    def issue(self) -> None:
        result = issue_certificate(
            self.record,
            serial=self.serial(),
            reputation=GOLD,
            now=self.now,
            validity=VALIDITY,
            signer=CA,
        )
        self.apply(CertEvent.ISSUE, result)

    @rule(days=st.integers(0, 120))
    def renew(self, days: int) -> None:
        self.now += timedelta(days=days)
        result = renew_certificate(
            self.record,
            serial=self.serial(),
            reputation=GOLD,
            now=self.now,
            validity=VALIDITY,
            signer=CA,
        )
        self.apply(CertEvent.RENEW, result)

    @rule(reason=st.sampled_from([0, 1, 3, 4, 5, 9, 10]))
    def revoke(self, reason: int) -> None:
        result = revoke_certificate(self.record, reason=reason, now=self.now)
        self.apply(CertEvent.REVOKE, result)
        if isinstance(result, CertificateRecord):
            assert result.revocation_reason is not None
            entries = [RevokedEntry(s, self.now, result.revocation_reason) for s in result.serials]
            before = self.crl.crl_number
            self.crl = crl_state_revoke(self.crl, entries)
            assert self.crl.crl_number == before + 1

    @invariant()
    def serials_never_repeat(self) -> None:
        assert len(set(self.record.serials)) == len(self.record.serials)

    @invariant()
    def current_certificate_verifies_at_issue_time(self) -> None:
        certificate = self.record.certificate
        if certificate is not None:
            result = verify_certificate(
                certificate.to_json(), ca_keys=KEYS, now=certificate.not_before
            )
            assert isinstance(result, Verified)

    @invariant()
    def revoked_record_has_all_serials_on_the_crl(self) -> None:
        if self.record.state is CertState.REVOKED:
            listed = {entry.serial for entry in self.crl.entries}
            assert set(self.record.serials) <= listed


TestCertificateLifecycle = CertificateLifecycle.TestCase
TestCertificateLifecycle.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)

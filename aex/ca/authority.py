"""The certificate authority driver: load → core → persist → respond, one method per operation.

Each public method is what an HTTP route (or a CLI command) calls and returns a value the route
serialises: a `CertificateRecord`, a signed JSON document, or a core `Rejected`. The clock, the
id and serial sources and the reputation lookup are injected, so tests run on a fixed clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aex.ca.keystore import KeyProvider, utc_now
from aex.ca.store import CertificateStore
from aex.core.certs import (
    CRL_NEXT_UPDATE_DEFAULT,
    EXCHANGE_STATED_TYPES,
    CertEvent,
    CertificateRecord,
    CertificateRequest,
    CertificateType,
    Claim,
    CrlState,
    ReputationSnapshot,
    RevokedEntry,
    Verified,
    ca_document,
    crl_state_reissue,
    crl_state_revoke,
    issue_certificate,
    open_request,
    record_from_json,
    record_to_json,
    renew_certificate,
    review_policy,
    review_request,
    revoke_certificate,
    sign_crl,
    state_claims,
    verify_certificate,
    verify_crl,
)
from aex.core.reasons import (
    CertLifecycleRejectReason,
    CertRequestRejectReason,
    CertVerifyReason,
    Rejected,
)
from aex.core.x509_export import CA_NAME_DEFAULT

# Let's Encrypt's 90 days: short enough that renewals carry fresh reputation.
CERT_VALIDITY_DEFAULT = timedelta(days=90)
NEW_PROVIDER_REPUTATION = ReputationSnapshot(tier="BRONZE", score="0", contracts=0)

LifecycleResult = CertificateRecord | Rejected[CertLifecycleRejectReason]
# What the exchange states for an IDENTITY or REPUTATION request, from its own evidence.
StatedClaims = Callable[[CertificateRequest], "tuple[Claim, ...] | Rejected[Any]"]


def new_certificate_id() -> str:
    return f"cert_{secrets.token_hex(10)}"


def new_serial() -> int:
    # 127 random bits, positive, under RFC 5280's 20 octets; CA/B Forum asks for >= 64.
    return 1 + secrets.randbelow(2**127 - 1)


def _no_reputation(provider_id: str) -> ReputationSnapshot:
    return NEW_PROVIDER_REPUTATION


@dataclass
class CertificateAuthority:
    keys: KeyProvider
    store: CertificateStore
    clock: Callable[[], datetime] = utc_now
    reputation_of: Callable[[str], ReputationSnapshot] = _no_reputation
    new_id: Callable[[], str] = new_certificate_id
    new_serial: Callable[[], int] = new_serial
    validity: timedelta = CERT_VALIDITY_DEFAULT
    crl_lifetime: timedelta = CRL_NEXT_UPDATE_DEFAULT
    name: str = CA_NAME_DEFAULT

    def _load(self, cert_id: str) -> CertificateRecord | Rejected[CertLifecycleRejectReason]:
        stored = self.store.load_record(cert_id)
        if stored is None:
            return Rejected(CertLifecycleRejectReason.CERTIFICATE_NOT_FOUND, "certificate_id")
        return record_from_json(stored)

    def _save(self, record: CertificateRecord) -> CertificateRecord:
        self.store.save_record(record_to_json(record))
        return record

    def _issue(self, record: CertificateRecord) -> LifecycleResult:
        issued = issue_certificate(
            record,
            serial=self.new_serial(),
            reputation=self.reputation_of(record.request.provider_id),
            now=self.clock(),
            validity=self.validity,
            signer=self.keys.signer(),
        )
        return issued if isinstance(issued, Rejected) else self._save(issued)

    def request(
        self, document: Any, *, stated_claims: StatedClaims | None = None
    ) -> (
        CertificateRecord | Rejected[CertRequestRejectReason] | Rejected[CertLifecycleRejectReason]
    ):
        """POST /v1/certificates/request: opens the request; SELF_ASSERTED-only requests are
        approved and issued at once, others wait for `approve` or `reject`. An IDENTITY or
        REPUTATION request (no claims) gets the claims `stated_claims` proves, or is refused
        with its reason; nothing is saved for a refused request."""
        record = open_request(document, record_id=self.new_id())
        if isinstance(record, Rejected):
            return record
        if record.request.type is CertificateType.RESELLER:
            resold = (
                Rejected(CertRequestRejectReason.CLAIMS_NOT_REQUESTABLE, "type")
                if stated_claims is None
                else stated_claims(record.request)
            )
            if isinstance(resold, Rejected):
                return resold
            record = state_claims(record, resold)
        if record.request.type in EXCHANGE_STATED_TYPES:
            stated = (
                Rejected(CertRequestRejectReason.CLAIMS_NOT_REQUESTABLE, "type")
                if stated_claims is None
                else stated_claims(record.request)
            )
            if isinstance(stated, Rejected):
                return stated
            record = state_claims(record, stated)
        self._save(record)
        if review_policy(record.request) is not CertEvent.APPROVE:
            return record
        approved = review_request(record, CertEvent.APPROVE, note="auto-approved: self-asserted")
        assert not isinstance(approved, Rejected)
        return self._issue(self._save(approved))

    def approve(self, cert_id: str, *, note: str = "") -> LifecycleResult:
        """Manual review: approve, then issue."""
        record = self._load(cert_id)
        if isinstance(record, Rejected):
            return record
        approved = review_request(record, CertEvent.APPROVE, note=note)
        return approved if isinstance(approved, Rejected) else self._issue(self._save(approved))

    def reject(self, cert_id: str, *, note: str = "") -> LifecycleResult:
        record = self._load(cert_id)
        if isinstance(record, Rejected):
            return record
        rejected = review_request(record, CertEvent.REJECT, note=note)
        return rejected if isinstance(rejected, Rejected) else self._save(rejected)

    def issue(self, cert_id: str) -> LifecycleResult:
        """Issues an APPROVED record (the second half of `approve`, if it was interrupted)."""
        record = self._load(cert_id)
        return record if isinstance(record, Rejected) else self._issue(record)

    def renew(
        self, cert_id: str, *, stated_claims: StatedClaims | None = None
    ) -> LifecycleResult | Rejected[CertRequestRejectReason]:
        """A fresh certificate with the provider's current reputation; a REPUTATION
        certificate's claims are stated again from the current evidence (`stated_claims`)."""
        record = self._load(cert_id)
        if isinstance(record, Rejected):
            return record
        if stated_claims is not None and record.request.type in EXCHANGE_STATED_TYPES:
            stated = stated_claims(record.request)
            if isinstance(stated, Rejected):
                return stated
            record = state_claims(record, stated)
        renewed = renew_certificate(
            record,
            serial=self.new_serial(),
            reputation=self.reputation_of(record.request.provider_id),
            now=self.clock(),
            validity=self.validity,
            signer=self.keys.signer(),
        )
        return renewed if isinstance(renewed, Rejected) else self._save(renewed)

    def revoke(self, cert_id: str, *, reason: int) -> LifecycleResult:
        """Revokes every serial of the record and publishes a CRL with the next number. The
        CRL is written before the record: a crash in between leaves the serial revoked."""
        record = self._load(cert_id)
        if isinstance(record, Rejected):
            return record
        revoked = revoke_certificate(record, reason=reason, now=self.clock())
        if isinstance(revoked, Rejected):
            return revoked
        assert revoked.revoked_at is not None
        assert revoked.revocation_reason is not None
        entries = [
            RevokedEntry(serial, revoked.revoked_at, revoked.revocation_reason)
            for serial in revoked.serials
        ]
        state, _ = self.store.load_crl()
        self._publish_crl(crl_state_revoke(state, entries))
        return self._save(revoked)

    def _publish_crl(self, state: CrlState) -> dict[str, Any]:
        now = self.clock()
        document = sign_crl(
            state, this_update=now, next_update=now + self.crl_lifetime, signer=self.keys.signer()
        )
        self.store.save_crl(state, document)
        return document

    def crl(self) -> dict[str, Any]:
        """GET /v1/crl: the signed JSON CRL, re-signed with the next number once half of its
        lifetime has passed (RFC 5280: every CRL issued gets a new, larger number)."""
        state, document = self.store.load_crl()
        if document is not None:
            verified = verify_crl(
                document, ca_keys=self.keys.public_keys(), now=self.clock() + self.crl_lifetime / 2
            )
            if not isinstance(verified, Rejected) and verified.issuer_kid == self.keys.active_kid():
                return document
        return self._publish_crl(crl_state_reissue(state))

    def ca_document(self) -> dict[str, Any]:
        """GET /.well-known/aex-ca.json."""
        return ca_document(self.keys.ca_keys(), name=self.name)

    def certificate(self, cert_id: str) -> dict[str, Any] | Rejected[CertLifecycleRejectReason]:
        """GET /v1/certificates/{id}: the current certificate as JSON."""
        record = self._load(cert_id)
        if isinstance(record, Rejected):
            return record
        if record.certificate is None:
            return Rejected(CertLifecycleRejectReason.CERTIFICATE_NOT_FOUND, "certificate_id")
        return record.certificate.to_json()

    def verify(self, document: Any) -> Verified | Rejected[CertVerifyReason]:
        """POST /v1/certificates/verify: the same pure check a third party runs offline."""
        keys = self.keys.public_keys()
        now = self.clock()
        crl = verify_crl(self.crl(), ca_keys=keys, now=now)
        return verify_certificate(document, ca_keys=keys, now=now, crl=crl)

    def record(self, cert_id: str) -> LifecycleResult:
        """GET of one record (state, certificate, review note)."""
        return self._load(cert_id)

"""Certificates over HTTP: the routes' use cases on aex/ca/authority.py.

The CA key lives in `<data_dir>/ca/keys/` (created on first start by FileKeyProvider; several
hosts share that directory like any other secret), the records and the CRL in the exchange's
database (serve/stores/ca_store.py, both backends). Calls into the authority are serialised
across threads and processes (a thread lock, then the database's "ca" mutex). After each change
the market's view of the certificate (`certificate_owners`: who owns it, which category and
capability it certifies, until when, active or not: what bid scoring and the reputation's
certification bonus read) and the outbox event are written in one market transaction.

Access: a request names a provider the caller may act for (its key or its owner tenant); the
operator approves or rejects what the auto-approve policy left for review (anything but
SELF_ASSERTED claims); renew and revoke by the owner or the operator; reading a certificate,
the CRL and the CA document is public (third parties verify offline); `verify` is the metered
Verification API (spec: "$0.001/call"), counted per calling tenant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from aex.ca.authority import CertificateAuthority
from aex.ca.keystore import FileKeyProvider
from aex.core import Rejected
from aex.core.certs import CertificateRecord, CertState, ReputationSnapshot, verify_crl
from aex.core.events import EventType
from aex.core.plans import Plan, check_certificates_quota
from aex.core.x509_export import certificate_to_vc_jwt, certificate_to_x509, crl_to_x509
from serve.market import Market, provider_reputation
from serve.problems import FieldError, ProblemError, problem_for_rejected
from serve.security import Principal, PrincipalKind, now_ms
from serve.stores.ca_store import CA_MUTEX, SqlCertificateStore

VERIFICATION_PRICE_MICROS = 1_000  # $0.001 per call, in millionths of a dollar


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Certificates:
    def __init__(self, market: Market, data_dir: Any) -> None:
        self.market = market
        self.keys = FileKeyProvider(data_dir)
        store = SqlCertificateStore(market.db)
        store.import_files(data_dir)
        self.authority = CertificateAuthority(self.keys, store, reputation_of=self._snapshot)

    def _exclusive(self) -> Any:
        """One caller into the authority at a time, across threads and processes."""
        return self.market.db.mutex(CA_MUTEX)

    def _snapshot(self, provider_id: str) -> ReputationSnapshot:
        # Reputation tiers flow into certificates at issue and renewal.
        with self.market.db.reader() as connection:
            found = provider_reputation(
                connection, provider_id, now_ms(), self.market.weights.reputation
            )
        return ReputationSnapshot(
            tier=found.tier.name, score=f"{found.score:.4f}", contracts=found.contracts
        )

    # -- lifecycle --------------------------------------------------------------------------

    def request(self, caller: Principal, document: object) -> dict[str, Any]:
        provider_id = document.get("provider_id") if isinstance(document, dict) else None
        self._may_act_for(caller, provider_id)
        # The market's view is written under the CA's mutex too: two processes changing one
        # certificate write `certificate_owners` in the order the CA changed it.
        with self._exclusive():
            self._check_quota(str(provider_id), pending_count=True)
            record = self.authority.request(document)
            if isinstance(record, Rejected):
                raise problem_for_rejected(record)
            self._changed(record, EventType.CERTIFICATE_REQUESTED)
            if record.state is CertState.ISSUED:
                self._changed(record, EventType.CERTIFICATE_ISSUED)
        return record_view(record)

    def approve(self, cert_id: str, note: str) -> dict[str, Any]:
        with self._exclusive():
            found = self.authority.record(cert_id)
            if not isinstance(found, Rejected):
                self._check_quota(found.request.provider_id, pending_count=False, but=cert_id)
            return self._after(
                self.authority.approve(cert_id, note=note), EventType.CERTIFICATE_ISSUED
            )

    def reject(self, cert_id: str, note: str) -> dict[str, Any]:
        with self._exclusive():
            return self._after(
                self.authority.reject(cert_id, note=note), EventType.CERTIFICATE_REJECTED
            )

    def renew(self, caller: Principal, cert_id: str) -> dict[str, Any]:
        self._owned(caller, cert_id)
        with self._exclusive():
            found = self.authority.record(cert_id)
            if not isinstance(found, Rejected):
                self._check_quota(found.request.provider_id, pending_count=False, but=cert_id)
            record = self.authority.renew(cert_id)
            return self._after(record, EventType.CERTIFICATE_RENEWED)

    def revoke(self, caller: Principal, cert_id: str, reason: int) -> dict[str, Any]:
        self._owned(caller, cert_id)
        with self._exclusive():
            return self._after(
                self.authority.revoke(cert_id, reason=reason), EventType.CERTIFICATE_REVOKED
            )

    def _check_quota(self, provider_id: str, *, pending_count: bool, but: str = "") -> None:
        # The plan's certificates per agent (aex/core/plans.py; docs/certificates.md "Plan
        # limits"), of the provider's owner tenant: at request, its ACTIVE (issued or renewed,
        # unexpired) certificates and those awaiting review count; at approval and renewal, the
        # ACTIVE ones other than the one approved or renewed. Run under the CA mutex, so two
        # requests count in turn.
        states = ("REQUESTED", "APPROVED") if pending_count else ()
        with self.market.db.reader() as connection:
            plan = connection.execute(
                "SELECT t.plan FROM providers p JOIN tenants t USING (tenant_id)"
                " WHERE p.provider_id = ?",
                (provider_id,),
            ).fetchone()
            if plan is None:
                return  # the authority refuses or records what names no provider
            held = connection.execute(
                "SELECT count(DISTINCT certificate_id) FROM certificate_owners"
                " WHERE provider_id = ? AND certificate_id != ? AND ((state = 'ACTIVE'"
                " AND expires_at_ms > ?) OR state IN (?, ?))",
                (provider_id, but, now_ms(), *(states or ("", ""))),
            ).fetchone()
        rejected = check_certificates_quota(Plan(plan[0]), int(held[0]))
        if rejected is not None:
            raise problem_for_rejected(rejected)

    def _after(self, record: CertificateRecord | Rejected[Any], event: EventType) -> dict[str, Any]:
        if isinstance(record, Rejected):
            raise problem_for_rejected(record)
        self._changed(record, event)
        return record_view(record)

    def _changed(self, record: CertificateRecord, event: EventType) -> None:
        def write(tx: Any) -> None:
            provider = tx.execute(
                "SELECT tenant_id FROM providers WHERE provider_id = ?",
                (record.request.provider_id,),
            ).fetchone()
            tx.execute("DELETE FROM certificate_owners WHERE certificate_id = ?", (record.id,))
            certificate = record.certificate
            active = record.state in (CertState.ISSUED, CertState.RENEWED)
            for claim in record.request.claims:
                tx.execute(
                    "INSERT INTO certificate_owners VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (
                        record.id,
                        record.request.provider_id,
                        "" if provider is None else provider[0],
                        claim.category,
                        claim.capability,
                        "ACTIVE" if active else record.state.value,
                        0 if certificate is None else _ms(certificate.expires_at),
                    ),
                )
            tx.emit(
                event,
                record.id,
                {
                    "certificate_id": record.id,
                    "provider_id": record.request.provider_id,
                    "state": record.state.value,
                },
            )

        self.market.write(write)

    # -- reads ------------------------------------------------------------------------------

    def certificate(self, cert_id: str, form: str) -> dict[str, Any] | str:
        with self._exclusive():
            record = self.authority.record(cert_id)
        if isinstance(record, Rejected) or record.certificate is None:
            raise ProblemError(404, "not-found", "no such certificate")
        certificate = record.certificate
        if form == "json":
            return certificate.to_json()
        signer = self.keys.signer(certificate.issuer_kid)
        if form == "x509":
            pem = certificate_to_x509(certificate, signer=signer).public_bytes(Encoding.PEM)
            return pem.decode("ascii")
        return certificate_to_vc_jwt(certificate, signer=signer)

    def record(self, caller: Principal, cert_id: str) -> dict[str, Any]:
        self._owned(caller, cert_id)
        with self._exclusive():
            record = self.authority.record(cert_id)
        if isinstance(record, Rejected):
            raise problem_for_rejected(record)
        return record_view(record)

    def crl(self, form: str) -> dict[str, Any] | str:
        with self._exclusive():
            document = self.authority.crl()
        if form == "json":
            return document
        crl = verify_crl(document, ca_keys=self.keys.public_keys(), now=self.authority.clock())
        assert not isinstance(crl, Rejected), "the CA's own fresh CRL verifies"
        signer = self.keys.signer(crl.issuer_kid)
        return crl_to_x509(crl, signer=signer).public_bytes(Encoding.PEM).decode("ascii")

    def ca_document(self) -> dict[str, Any]:
        with self._exclusive():
            return self.authority.ca_document()

    def ca_certificate_pem(self) -> str:
        return self.keys.ca_certificate_pem()

    def verify(self, caller: Principal, body: object) -> dict[str, Any]:
        """The Verification API: `{certificate_id}`, `{certificate: {...}}` or the certificate.

        Metered once the call has an answer (valid or not): a refused call (400 malformed body,
        404 unknown certificate_id) writes nothing and is not billed (issue 11, item 4)."""
        document = _document_of(body)
        if isinstance(document, str):
            with self._exclusive():
                found = self.authority.certificate(document)
            if isinstance(found, Rejected):
                raise problem_for_rejected(found)
            document = found
        with self._exclusive():
            verified = self.authority.verify(document)
        answer: dict[str, Any] = {"valid": not isinstance(verified, Rejected)}
        if isinstance(verified, Rejected):
            answer["reason"] = verified.reason.value
            answer["certificate"] = document
            provider_id = _provider_of(document)
        else:
            answer["certificate"] = verified.certificate.to_json()
            provider_id = verified.certificate.subject.provider_id
        if provider_id is not None:
            with self.market.db.reader() as connection:
                reputation = provider_reputation(
                    connection, provider_id, now_ms(), self.market.weights.reputation
                )
            answer["reputation"] = {
                "tier": reputation.tier.name,
                "score": round(reputation.score, 4),
                "contracts": reputation.contracts,
            }
        answer["metering"] = {"calls": self._meter(caller), "price_per_call_usd": "0.001"}
        return answer

    def usage(self, caller: Principal) -> dict[str, Any]:
        rows = self.market.db.read(
            "SELECT calls FROM verification_calls WHERE tenant_id = ?", (caller.tenant_id,)
        )
        calls = 0 if not rows else int(rows[0][0])
        micros = calls * VERIFICATION_PRICE_MICROS
        return {
            "tenant_id": caller.tenant_id,
            "verification_calls": calls,
            "amount_due_usd": f"{micros // 1_000_000}.{micros % 1_000_000:06d}",
        }

    def _meter(self, caller: Principal) -> int:
        if caller.tenant_id is None:
            return 0  # the operator is not billed

        def write(tx: Any) -> int:
            row = tx.execute(
                "INSERT INTO verification_calls VALUES (?, 1) ON CONFLICT (tenant_id)"
                " DO UPDATE SET calls = verification_calls.calls + 1 RETURNING calls",
                (caller.tenant_id,),
            ).fetchone()
            return int(row[0])

        return self.market.write(write)

    # -- access -----------------------------------------------------------------------------

    def _may_act_for(self, caller: Principal, provider_id: object) -> None:
        if caller.kind is PrincipalKind.OPERATOR:
            return
        if caller.kind is PrincipalKind.PROVIDER:
            if caller.provider_id == provider_id:
                return
        else:
            rows = self.market.db.read(
                "SELECT tenant_id FROM providers WHERE provider_id = ?", (str(provider_id),)
            )
            if rows and rows[0][0] == caller.tenant_id:
                return
        raise ProblemError(
            403,
            "provider-mismatch",
            "request certificates only for a provider you act for",
            errors=(FieldError("provider_id", "not_the_caller"),),
        )

    def _owned(self, caller: Principal, cert_id: str) -> None:
        with self._exclusive():
            record = self.authority.record(cert_id)
        if isinstance(record, Rejected):
            raise ProblemError(404, "not-found", "no such certificate")
        try:
            self._may_act_for(caller, record.request.provider_id)
        except ProblemError:
            raise ProblemError(404, "not-found", "no such certificate") from None


def record_view(record: CertificateRecord) -> dict[str, Any]:
    return {
        "certificate_id": record.id,
        "state": record.state.value,
        "provider_id": record.request.provider_id,
        "agent_name": record.request.agent_name,
        "claims": [claim.to_json() for claim in record.request.claims],
        "note": record.note,
        "certificate": None if record.certificate is None else record.certificate.to_json(),
    }


def _document_of(body: object) -> dict[str, Any] | str:
    if isinstance(body, dict) and set(body) == {"certificate_id"}:
        if not isinstance(body["certificate_id"], str):
            raise ProblemError(400, "invalid-request", "certificate_id: a string")
        return body["certificate_id"]
    if isinstance(body, dict) and set(body) == {"certificate"}:
        body = body["certificate"]
    if not isinstance(body, dict):
        raise ProblemError(
            400, "invalid-request", "{certificate_id}, {certificate} or the certificate"
        )
    return body


def _provider_of(document: dict[str, Any]) -> str | None:
    subject = document.get("subject")
    provider_id = subject.get("provider_id") if isinstance(subject, dict) else None
    return provider_id if isinstance(provider_id, str) else None

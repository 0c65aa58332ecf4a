"""Certificates over HTTP: the routes' use cases on aex/ca/authority.py.

The CA key lives in `<data_dir>/ca/keys/` (created on first start by FileKeyProvider; several
hosts share that directory like any other secret), the records and the CRL in the exchange's
database (serve/certauth/ca_store.py, both backends). Calls into the authority are serialised
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

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec
from cryptography.hazmat.primitives.serialization import Encoding

from aex.ca.authority import CertificateAuthority
from aex.ca.keystore import FileKeyProvider
from aex.core import Rejected, limits
from aex.core.billing import (
    BILLING_CURRENCY,
    verification_cents_due,
    verification_owed_micro_usd,
    verification_refused_for_arrears,
)
from aex.core.certs import (
    DELEGATION_CATEGORY,
    Authorization,
    CertificateRecord,
    CertificateRequest,
    CertificateType,
    CertState,
    Claim,
    ReputationSnapshot,
    claim_assurance,
    counts_toward_certification,
    jwk_thumbprint,
    public_key_from_jwk,
    reputation_claims,
    verify_crl,
)
from aex.core.challenge import (
    CHALLENGE_PATH,
    Challenge,
    ChallengeState,
    check_response,
    open_challenge,
    settle_challenge,
    spend_challenge,
)
from aex.core.delegation import (
    Delegation,
    delegation_claim,
    delegation_kid,
    resale_refusal,
    verify_delegation,
)
from aex.core.events import EventType
from aex.core.ledger import VERIFICATION_REVENUE_ACCOUNT, Charge
from aex.core.money import Money, format_amount
from aex.core.plans import Plan, check_certificates_quota
from aex.core.reasons import (
    CertRequestRejectReason,
    ChallengeRejectReason,
    DelegationRejectReason,
)
from aex.core.status_list import status_entry, status_list_credential, status_list_of
from aex.core.x509_export import certificate_to_vc_jwt, certificate_to_x509, crl_to_x509
from serve.certauth.ca_store import CA_MUTEX, SqlCertificateStore
from serve.certauth.challenges import fetch_challenge
from serve.certauth.schemas import (
    ChallengeCreate,
    ChallengeView,
    DelegationCreate,
    DelegationKeyCreate,
    DelegationKeyView,
    DelegationScope,
    DelegationView,
)
from serve.gateway.problems import FieldError, ProblemError, problem_for_rejected
from serve.identity.security import Principal, PrincipalKind, now_ms
from serve.market.usecases import Market, provider_reputation
from serve.notifications.endpoints import EndpointPolicy
from serve.settlement.wallets import wallet_id
from serve.stores.rows import many, one, scalar, scalars, select_list

# The status list credential is re-signed on every read and valid for a day, as the CRL.
STATUS_LIST_LIFETIME = timedelta(days=1)
Fetch = Callable[[EndpointPolicy, str], "tuple[int, bytes] | str"]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Certificates:
    def __init__(
        self,
        market: Market,
        data_dir: Any,
        endpoints: EndpointPolicy | None = None,
        fetch: Fetch = fetch_challenge,
    ) -> None:
        self.market = market
        self.endpoints = endpoints or EndpointPolicy()
        self.fetch = fetch
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
            record = self.authority.request(document, stated_claims=self._stated_claims)
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
            record = self.authority.renew(cert_id, stated_claims=self._renewal_claims)
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
            plan = scalar(
                connection.execute(
                    "SELECT t.plan FROM providers p JOIN tenants t USING (tenant_id)"
                    " WHERE p.provider_id = ?",
                    (provider_id,),
                )
            )
            if plan is None:
                return  # the authority refuses or records what names no provider
            held = scalar(
                connection.execute(
                    "SELECT count(DISTINCT certificate_id) FROM certificate_owners"
                    " WHERE provider_id = ? AND certificate_id != ? AND ((state = 'ACTIVE'"
                    " AND expires_at_ms > ?) OR state IN (?, ?))",
                    (provider_id, but, now_ms(), *(states or ("", ""))),
                )
            )
        rejected = check_certificates_quota(Plan(plan), int(held))
        if rejected is not None:
            raise problem_for_rejected(rejected)

    def _after(self, record: CertificateRecord | Rejected[Any], event: EventType) -> dict[str, Any]:
        if isinstance(record, Rejected):
            raise problem_for_rejected(record)
        self._changed(record, event)
        return record_view(record)

    def _changed(self, record: CertificateRecord, event: EventType) -> None:
        def write(tx: Any) -> None:
            tenant_id = scalar(
                tx.execute(
                    "SELECT tenant_id FROM providers WHERE provider_id = ?",
                    (record.request.provider_id,),
                )
            )
            tx.execute("DELETE FROM certificate_owners WHERE certificate_id = ?", (record.id,))
            certificate = record.certificate
            active = record.state in (CertState.ISSUED, CertState.RENEWED)
            for claim in record.request.claims:
                tx.execute(
                    "INSERT INTO certificate_owners (certificate_id, provider_id, tenant_id,"
                    " category, capability, state, expires_at_ms, counts)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        record.id,
                        record.request.provider_id,
                        "" if tenant_id is None else tenant_id,
                        claim.category,
                        claim.capability,
                        "ACTIVE" if active else record.state.value,
                        0 if certificate is None else _ms(certificate.expires_at),
                        int(counts_toward_certification(record.request.type, claim)),
                    ),
                )
            _status_entry_changed(tx, record)
            _reseller_link(tx, record)
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

    # -- what the exchange states (IDENTITY, REPUTATION) -------------------------------------

    def _stated_claims(self, request: CertificateRequest) -> tuple[Claim, ...] | Rejected[Any]:
        if request.type is CertificateType.REPUTATION:
            return self._reputation_claims(request.provider_id)
        if request.type is CertificateType.RESELLER:
            return self._resold_claims(request)
        return self._spend_challenge(request)

    def _resold_claims(self, request: CertificateRequest) -> tuple[Claim, ...] | Rejected[Any]:
        # The newest active delegation to this reseller whose scope covers every claim.
        now_s = now_ms() // 1000
        rows = many(
            _DelegationRow,
            self.market.db.read(
                f"SELECT {_DELEGATION_COLUMNS} FROM delegations WHERE reseller_provider_id = ?"  # noqa: S608
                " AND revoked_at_ms IS NULL AND expires_at_s > ?"
                " ORDER BY issued_at_s DESC LIMIT 32",
                (request.provider_id, now_s),
            ),
        )
        delegations = [_delegation(row) for row in rows]
        covering = [
            d for d in delegations if resale_refusal(request.claims, d, now_s=now_s) is None
        ]
        chosen = covering[0] if covering else (delegations[0] if delegations else None)
        refused = resale_refusal(request.claims, chosen, now_s=now_s)
        if refused is not None or chosen is None:
            return refused or Rejected(DelegationRejectReason.DELEGATION_MISSING, "type")
        return (*request.claims, delegation_claim(chosen))

    # -- RESELLER delegations ---------------------------------------------------------------

    def register_delegation_key(
        self, caller: Principal, body: DelegationKeyCreate
    ) -> DelegationKeyView:
        self._may_act_for(caller, body.provider_id)
        jwk = msgspec_to_dict(body.public_key_jwk)
        key = public_key_from_jwk(jwk)
        if key is None:
            raise _key_invalid()
        kid = jwk_thumbprint(key)

        def write(tx: Any) -> None:
            found = scalar(
                tx.execute("SELECT provider_id FROM delegation_keys WHERE kid = ?", (kid,))
            )
            if found is not None and found != body.provider_id:
                raise ProblemError(
                    409,
                    "key-taken",
                    "this key is registered to another provider",
                    errors=(FieldError("public_key_jwk", "key_taken"),),
                )
            if found is None:
                tx.execute(
                    "INSERT INTO delegation_keys VALUES (?, ?, ?, ?)",
                    (kid, body.provider_id, msgspec.json.encode(jwk).decode(), now_ms()),
                )

        self.market.write(write)
        return DelegationKeyView(provider_id=body.provider_id, kid=kid)

    def register_delegation(self, caller: Principal, body: DelegationCreate) -> DelegationView:
        kid = delegation_kid(body.delegation)
        keys = (
            []
            if kid is None
            else many(
                _DelegationKeyRow,
                self.market.db.read(
                    f"SELECT {select_list(_DelegationKeyRow)} FROM delegation_keys"  # noqa: S608
                    " WHERE kid = ?",
                    (kid,),
                ),
            )
        )
        public_key = None if not keys else public_key_from_jwk(msgspec.json.decode(keys[0].jwk))
        verified = verify_delegation(body.delegation, public_key=public_key, now_s=now_ms() // 1000)
        if isinstance(verified, Rejected):
            raise problem_for_rejected(verified)
        # Signed with someone else's key:
        if keys[0].provider_id != verified.delegator_provider_id:
            raise problem_for_rejected(
                Rejected(DelegationRejectReason.DELEGATION_KEY_UNKNOWN, "delegation.kid")
            )
        try:
            self._may_act_for(caller, verified.reseller_provider_id)
        except ProblemError:
            self._may_act_for(caller, verified.delegator_provider_id)

        def write(tx: Any) -> None:
            inserted = tx.execute(
                f"INSERT INTO delegations ({_DELEGATION_INSERTED})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delegation_id) DO NOTHING"
                " RETURNING delegation_id",
                (
                    verified.delegation_id,
                    verified.delegator_provider_id,
                    verified.reseller_provider_id,
                    msgspec.json.encode([list(pair) for pair in verified.scope]).decode(),
                    verified.issued_at_s,
                    verified.expires_at_s,
                    body.delegation,
                ),
            ).fetchone()
            if inserted is not None:
                tx.emit(
                    EventType.CERTIFICATE_DELEGATION_REGISTERED,
                    verified.delegation_id,
                    _delegation_event(verified),
                )

        self.market.write(write)
        return self.delegation(caller, verified.delegation_id)

    def delegation(self, caller: Principal, delegation_id: str) -> DelegationView:
        delegation, revoked = self._load_delegation(caller, delegation_id)
        return delegation_view(delegation, revoked=revoked, now_s=now_ms() // 1000)

    def revoke_delegation(self, caller: Principal, delegation_id: str) -> DelegationView:
        """The delegator withdraws the resale: the delegation and every RESELLER certificate
        it authorised are revoked (RFC 5280 privilegeWithdrawn)."""
        delegation, _ = self._load_delegation(caller, delegation_id)
        try:
            self._may_act_for(caller, delegation.delegator_provider_id)
        except ProblemError:
            raise ProblemError(
                403,
                "not-the-delegator",
                "only the resold provider revokes its delegation",
                errors=(FieldError("delegation_id", "not_the_delegator"),),
            ) from None
        with self._exclusive():

            def write(tx: Any) -> None:
                tx.execute(
                    "UPDATE delegations SET revoked_at_ms = ? WHERE delegation_id = ?"
                    " AND revoked_at_ms IS NULL",
                    (now_ms(), delegation_id),
                )
                tx.emit(
                    EventType.CERTIFICATE_DELEGATION_REVOKED,
                    delegation_id,
                    _delegation_event(delegation),
                )

            self.market.write(write)
            cert_ids = scalars(
                self.market.db.read(
                    "SELECT certificate_id FROM reseller_certificates WHERE delegation_id = ?"
                    " ORDER BY certificate_id",
                    (delegation_id,),
                )
            )
            revoked = []
            for cert_id in cert_ids:
                record = self.authority.revoke(cert_id, reason=9)  # privilegeWithdrawn
                if not isinstance(record, Rejected):  # already revoked: nothing to do
                    self._changed(record, EventType.CERTIFICATE_REVOKED)
                    revoked.append(cert_id)
        view = delegation_view(delegation, revoked=True, now_s=now_ms() // 1000)
        return replace_view(view, certificates_revoked=revoked)

    def _load_delegation(self, caller: Principal, delegation_id: str) -> tuple[Delegation, bool]:
        rows = many(
            _DelegationRow,
            self.market.db.read(
                f"SELECT {_DELEGATION_COLUMNS} FROM delegations WHERE delegation_id = ?",  # noqa: S608
                (delegation_id,),
            ),
        )
        missing = ProblemError(404, "not-found", "no such delegation")
        if not rows:
            raise missing
        delegation = _delegation(rows[0])
        for provider_id in (delegation.reseller_provider_id, delegation.delegator_provider_id):
            try:
                self._may_act_for(caller, provider_id)
                return delegation, rows[0].revoked_at_ms is not None
            except ProblemError:
                continue
        raise missing

    def _renewal_claims(self, request: CertificateRequest) -> tuple[Claim, ...] | Rejected[Any]:
        # Renewal re-states a REPUTATION certificate from today's evidence; an IDENTITY
        # certificate keeps the endpoint its challenge proved (prove again: a new certificate).
        if request.type is CertificateType.REPUTATION:
            return self._reputation_claims(request.provider_id)
        return request.claims

    def _reputation_claims(self, provider_id: str) -> tuple[Claim, ...]:
        now = now_ms()
        with self.market.db.reader() as connection:
            found = provider_reputation(
                connection, provider_id, now, self.market.weights.reputation
            )
        end = datetime.fromtimestamp(now // 1000, tz=UTC)
        return reputation_claims(
            tier=found.tier.name,
            contracts=found.contracts,
            success_rate_bps=round(found.success_rate * 10_000) if found.contracts else 0,
            window_start=end - timedelta(days=limits.reputation_window_days),
            window_end=end,
        )

    def _spend_challenge(
        self, request: CertificateRequest
    ) -> tuple[Claim, ...] | Rejected[CertRequestRejectReason]:
        # The newest VALID challenge of this provider for this key admits the request, once.
        thumbprint = jwk_thumbprint(request.subject.public_key)
        rows = many(
            _ChallengeRow,
            self.market.db.read(
                f"SELECT {_CHALLENGE_COLUMNS} FROM cert_challenges WHERE provider_id = ?"  # noqa: S608
                " AND key_thumbprint = ? AND state = 'VALID' ORDER BY created_at_ms DESC LIMIT 1",
                (request.provider_id, thumbprint),
            ),
        )
        now = now_ms()
        spent = (
            None
            if not rows
            else spend_challenge(
                _challenge(rows[0]),
                provider_id=request.provider_id,
                key_thumbprint=thumbprint,
                now_ms=now,
            )
        )
        if spent is None:
            return Rejected(CertRequestRejectReason.ENDPOINT_CONTROL_NOT_PROVEN, "type")
        self._save_challenge(spent, None)
        origin = spent.url[: spent.url.index(CHALLENGE_PATH)]
        claims = [Claim("IDENTITY", "agent.endpoint", origin, Authorization.AEX_VERIFIED)]
        card_url = self._agent_card_url(request.provider_id)
        # The A2A agent card is named when it lives on the origin the challenge proved.
        if card_url is not None and card_url.startswith(origin + "/") and len(card_url) <= 256:
            claims.append(Claim("IDENTITY", "a2a.agent_card", card_url, Authorization.AEX_VERIFIED))
        return tuple(claims)

    # -- IDENTITY challenges ----------------------------------------------------------------

    def open_challenge(self, caller: Principal, body: ChallengeCreate) -> ChallengeView:
        self._may_act_for(caller, body.provider_id)
        key = public_key_from_jwk(msgspec_to_dict(body.public_key_jwk))
        if key is None:
            raise ProblemError(
                422,
                "public-key-invalid",
                "a P-256 public JWK",
                errors=(FieldError("public_key_jwk", "public_key_invalid"),),
            )
        opened = open_challenge(
            token=secrets.token_urlsafe(32),
            provider_id=body.provider_id,
            key_thumbprint=jwk_thumbprint(key),
            endpoint=self._registered_url(body.provider_id),
            now_ms=now_ms(),
        )
        if isinstance(opened, Rejected):
            raise problem_for_rejected(opened)
        self._save_challenge(opened, EventType.CERTIFICATE_CHALLENGE_ISSUED, new=True)
        return challenge_view(opened)

    def validate_challenge(self, caller: Principal, token: str) -> ChallengeView:
        """Fetches the key authorisation from the agent (through the SSRF guard) and decides
        the challenge: VALID or INVALID, both final."""
        challenge = self._load_challenge(caller, token)
        fetched = self.fetch(self.endpoints, challenge.url)
        outcome = (
            Rejected(ChallengeRejectReason.CHALLENGE_FETCH_FAILED, "url", fetched)
            if isinstance(fetched, str)
            else check_response(challenge, *fetched)
        )
        settled = settle_challenge(challenge, outcome, now_ms=now_ms())
        if isinstance(settled, Rejected):
            raise problem_for_rejected(settled)
        if outcome is not None and isinstance(fetched, str):
            settled = _with_error(settled, f"{outcome.reason.value}: {fetched}")
        self._save_challenge(settled, EventType.CERTIFICATE_CHALLENGE_DECIDED)
        return challenge_view(settled)

    def challenge(self, caller: Principal, token: str) -> ChallengeView:
        return challenge_view(self._load_challenge(caller, token))

    def _load_challenge(self, caller: Principal, token: str) -> Challenge:
        rows = many(
            _ChallengeRow,
            self.market.db.read(
                f"SELECT {_CHALLENGE_COLUMNS} FROM cert_challenges WHERE token = ?",  # noqa: S608
                (token,),
            ),
        )
        missing = problem_for_rejected(Rejected(ChallengeRejectReason.CHALLENGE_NOT_FOUND, "token"))
        if not rows:
            raise missing
        challenge = _challenge(rows[0])
        try:
            self._may_act_for(caller, challenge.provider_id)
        except ProblemError:
            raise missing from None
        return challenge

    def _save_challenge(
        self, challenge: Challenge, event: EventType | None, *, new: bool = False
    ) -> None:
        def write(tx: Any) -> None:
            if new:
                tx.execute(
                    f"INSERT INTO cert_challenges ({_CHALLENGE_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        challenge.token,
                        challenge.provider_id,
                        challenge.key_thumbprint,
                        challenge.url,
                        challenge.state.value,
                        challenge.created_at_ms,
                        challenge.expires_at_ms,
                        challenge.error,
                    ),
                )
            else:
                tx.execute(
                    "UPDATE cert_challenges SET state = ?, error = ? WHERE token = ?",
                    (challenge.state.value, challenge.error, challenge.token),
                )
            if event is not None:
                payload = {
                    "provider_id": challenge.provider_id,
                    "state": challenge.state.value,
                    "url": challenge.url,
                }
                # The token is not in the event: it is the provider's to share.
                tx.emit(event, challenge.provider_id, payload)

        self.market.write(write)

    def _registered_url(self, provider_id: str) -> str | None:
        # The agent's registered URL: its A2A agent card's url, else its webhook endpoint.
        card_url = self._agent_card_url(provider_id)
        if card_url is not None:
            return card_url
        endpoints = scalars(
            self.market.db.read(
                "SELECT endpoint FROM providers WHERE provider_id = ?", (provider_id,)
            )
        )
        return None if not endpoints or endpoints[0] is None else str(endpoints[0])

    def _agent_card_url(self, provider_id: str) -> str | None:
        urls = scalars(
            self.market.db.read("SELECT url FROM agent_cards WHERE provider_id = ?", (provider_id,))
        )
        return None if not urls else str(urls[0])

    # -- the Bitstring Status List ----------------------------------------------------------

    def status_list(self, list_number: int, base_url: str) -> str:
        """GET /v1/status-lists/{n}: the revocation bits of list n, signed by the CA."""
        first = list_number * limits.status_list_entries
        indexes = scalars(
            self.market.db.read(
                "SELECT status_index FROM ca_status_entries WHERE revoked = 1"
                " AND status_index >= ? AND status_index < ?",
                (first, first + limits.status_list_entries),
            )
        )
        now = self.authority.clock()
        return status_list_credential(
            status_list_url(base_url, list_number),
            revoked_bits=[int(index) - first for index in indexes],
            issuer=VC_ISSUER,
            valid_from=now,
            valid_until=now + STATUS_LIST_LIFETIME,
            signer=self.keys.signer(),
        )

    def _status(self, cert_id: str, base_url: str) -> dict[str, str] | None:
        indexes = scalars(
            self.market.db.read(
                "SELECT status_index FROM ca_status_entries WHERE record_id = ?", (cert_id,)
            )
        )
        if not indexes:
            return None  # issued before status lists: the CRL still covers it
        index = int(indexes[0])
        return status_entry(status_list_url(base_url, status_list_of(index)[0]), index)

    # -- reads ------------------------------------------------------------------------------

    def certificate(self, cert_id: str, form: str, base_url: str = "") -> dict[str, Any] | str:
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
        status = self._status(cert_id, base_url)
        return certificate_to_vc_jwt(certificate, signer=signer, issuer=VC_ISSUER, status=status)

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

        Metered once the call has an answer (valid or not): a refused call (422 malformed body,
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
        rows = many(
            _CallsRow,
            self.market.db.read(
                f"SELECT {select_list(_CallsRow)} FROM verification_calls"  # noqa: S608
                " WHERE tenant_id = ?",
                (caller.tenant_id,),
            ),
        )
        calls, posted = (0, 0) if not rows else (int(rows[0].calls), int(rows[0].cents_posted))
        micros = verification_owed_micro_usd(calls)
        unposted = verification_cents_due(calls, posted)
        return {
            "tenant_id": caller.tenant_id,
            "verification_calls": calls,
            "amount_due_usd": f"{micros // 1_000_000}.{micros % 1_000_000:06d}",
            "charged_usd": format_amount(Money(posted, BILLING_CURRENCY)),
            "arrears_usd": format_amount(Money(unposted, BILLING_CURRENCY)),
        }

    def _meter(self, caller: Principal) -> int:
        """Counts the call and, in the same transaction, posts every whole cent now due as a
        ledger Charge from the caller's USD cash into `system:verification_revenue`
        (aex/core/billing.py: 1,000 calls are exactly $1.00). A wallet that cannot pay runs
        into arrears, up to VERIFICATION_ARREARS_CENTS_MAX; beyond that the call is refused
        (402) and nothing is written."""
        tenant_id = caller.tenant_id
        if tenant_id is None:
            return 0  # the operator is not billed

        def write(tx: Any) -> int:
            row = one(
                _CallsRow,
                tx.execute(
                    "INSERT INTO verification_calls (tenant_id, calls) VALUES (?, 1)"  # noqa: S608
                    " ON CONFLICT (tenant_id) DO UPDATE SET calls = verification_calls.calls + 1"
                    f" RETURNING {select_list(_CallsRow)}",
                    (tenant_id,),
                ),
            )
            assert row is not None  # an upsert answers its row
            calls, posted = int(row.calls), int(row.cents_posted)
            due = verification_cents_due(calls, posted)
            if due > 0:
                charge = Charge(
                    f"verification-{tenant_id}-{posted + due}",
                    wallet_id(tenant_id, BILLING_CURRENCY),
                    Money(due, BILLING_CURRENCY),
                    VERIFICATION_REVENUE_ACCOUNT,
                )
                if not isinstance(tx.session.apply_ledger(charge), Rejected):
                    posted += due
                    tx.execute(
                        "UPDATE verification_calls SET cents_posted = ? WHERE tenant_id = ?",
                        (posted, tenant_id),
                    )
            if verification_refused_for_arrears(calls, posted):
                raise ProblemError(
                    402,
                    "verification-payment-required",
                    f"{verification_cents_due(calls, posted)} cents of verification calls are"
                    " unpaid: deposit USD to your wallet",
                )
            return calls

        return int(self.market.write(write))

    # -- access -----------------------------------------------------------------------------

    def _may_act_for(self, caller: Principal, provider_id: object) -> None:
        if caller.kind is PrincipalKind.OPERATOR:
            return
        if caller.kind is PrincipalKind.PROVIDER:
            if caller.provider_id == provider_id:
                return
        else:
            tenants = scalars(
                self.market.db.read(
                    "SELECT tenant_id FROM providers WHERE provider_id = ?", (str(provider_id),)
                )
            )
            if tenants and tenants[0] == caller.tenant_id:
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


VC_ISSUER = "https://aex.example/.well-known/aex-ca.json"  # as aex.core.x509_export's default


class _ChallengeRow(NamedTuple):
    token: str
    provider_id: str
    key_thumbprint: str
    url: str
    state: str
    created_at_ms: int
    expires_at_ms: int
    error: str


class _DelegationRow(NamedTuple):
    delegation_id: str
    delegator_provider_id: str
    reseller_provider_id: str
    scope: str  # JSON: [[category, capability], ...]
    issued_at_s: int
    expires_at_s: int
    revoked_at_ms: int | None


class _DelegationKeyRow(NamedTuple):
    provider_id: str
    jwk: str  # JSON


class _CallsRow(NamedTuple):
    calls: int
    cents_posted: int


_CHALLENGE_COLUMNS = select_list(_ChallengeRow)


def status_list_url(base_url: str, list_number: int) -> str:
    return f"{base_url.rstrip('/')}/v1/status-lists/{list_number}"


def _status_entry_changed(tx: Any, record: CertificateRecord) -> None:
    # A record's status index is drawn when it is first issued (the next unused index: the
    # caller holds the CA mutex) and its bit is set when it is revoked; never reused.
    if record.state is CertState.ISSUED:
        tx.execute(
            "INSERT INTO ca_status_entries (record_id, status_index)"
            " SELECT ?, coalesce(max(status_index), -1) + 1 FROM ca_status_entries"
            " WHERE true ON CONFLICT (record_id) DO NOTHING",  # SQLite needs the WHERE
            (record.id,),
        )
    elif record.state is CertState.REVOKED:
        tx.execute("UPDATE ca_status_entries SET revoked = 1 WHERE record_id = ?", (record.id,))


_DELEGATION_COLUMNS = select_list(_DelegationRow)
# What a registration writes: the columns read, but the revocation, and the signed token.
_DELEGATION_INSERTED = (
    "delegation_id, delegator_provider_id, reseller_provider_id, scope, issued_at_s,"
    " expires_at_s, token"
)


def _delegation(row: _DelegationRow) -> Delegation:
    return Delegation(
        delegation_id=row.delegation_id,
        delegator_provider_id=row.delegator_provider_id,
        reseller_provider_id=row.reseller_provider_id,
        scope=tuple((pair[0], pair[1]) for pair in msgspec.json.decode(row.scope)),
        issued_at_s=int(row.issued_at_s),
        expires_at_s=int(row.expires_at_s),
    )


def _delegation_event(delegation: Delegation) -> dict[str, Any]:
    return {
        "delegation_id": delegation.delegation_id,
        "delegator_provider_id": delegation.delegator_provider_id,
        "reseller_provider_id": delegation.reseller_provider_id,
    }


def delegation_view(delegation: Delegation, *, revoked: bool, now_s: int) -> DelegationView:
    state = "REVOKED" if revoked else "EXPIRED" if now_s >= delegation.expires_at_s else "ACTIVE"
    return DelegationView(
        delegation_id=delegation.delegation_id,
        delegator_provider_id=delegation.delegator_provider_id,
        reseller_provider_id=delegation.reseller_provider_id,
        scope=[DelegationScope(category=c, capability=k) for c, k in delegation.scope],
        expires_at_ms=delegation.expires_at_s * 1000,
        state=state,
    )


def replace_view(view: DelegationView, *, certificates_revoked: list[str]) -> DelegationView:
    return msgspec.structs.replace(view, certificates_revoked=certificates_revoked)


def _key_invalid() -> ProblemError:
    return ProblemError(
        422,
        "public-key-invalid",
        "a P-256 public JWK",
        errors=(FieldError("public_key_jwk", "public_key_invalid"),),
    )


def _reseller_link(tx: Any, record: CertificateRecord) -> None:
    # Which delegation a RESELLER certificate rests on (its delegation claim names it), so that
    # revoking the delegation revokes the certificate.
    if record.request.type is not CertificateType.RESELLER or record.state is not CertState.ISSUED:
        return
    for claim in record.request.claims:
        if claim.category == DELEGATION_CATEGORY:
            tx.execute(
                "INSERT INTO reseller_certificates VALUES (?, ?)"
                " ON CONFLICT (certificate_id) DO NOTHING",
                (record.id, claim.scope.split(" ")[1]),
            )


def _challenge(row: _ChallengeRow) -> Challenge:
    return Challenge(
        token=row.token,
        provider_id=row.provider_id,
        key_thumbprint=row.key_thumbprint,
        url=row.url,
        state=ChallengeState(row.state),
        created_at_ms=int(row.created_at_ms),
        expires_at_ms=int(row.expires_at_ms),
        error=row.error,
    )


def _with_error(challenge: Challenge, error: str) -> Challenge:
    return replace(challenge, error=error)


def challenge_view(challenge: Challenge) -> ChallengeView:
    return ChallengeView(
        token=challenge.token,
        provider_id=challenge.provider_id,
        url=challenge.url,
        key_authorization=challenge.key_authorization,
        state=challenge.state.value,
        error=challenge.error,
        expires_at_ms=challenge.expires_at_ms,
    )


def msgspec_to_dict(value: Any) -> dict[str, Any]:
    return dict(msgspec.structs.asdict(value))


def record_view(record: CertificateRecord) -> dict[str, Any]:
    # The record's own times are `_ms` like every time in the API (docs/api.md "Times"); the
    # signed `certificate` inside keeps its RFC 3339 strings, as signed.
    certificate = record.certificate
    return {
        "certificate_id": record.id,
        "state": record.state.value,
        "provider_id": record.request.provider_id,
        "agent_name": record.request.agent_name,
        "type": record.request.type.value,
        "claims": [
            {**claim.to_json(), "assurance": claim_assurance(claim).value}
            for claim in record.request.claims
        ],
        "note": record.note,
        "issued_at_ms": None if certificate is None else _ms(certificate.issued_at),
        "not_before_ms": None if certificate is None else _ms(certificate.not_before),
        "expires_at_ms": None if certificate is None else _ms(certificate.expires_at),
        "revoked_at_ms": None if record.revoked_at is None else _ms(record.revoked_at),
        "certificate": None if certificate is None else certificate.to_json(),
    }


def _document_of(body: object) -> dict[str, Any] | str:
    if isinstance(body, dict) and set(body) == {"certificate_id"}:
        if not isinstance(body["certificate_id"], str):
            raise ProblemError(422, "invalid-request", "certificate_id: a string")
        return body["certificate_id"]
    if isinstance(body, dict) and set(body) == {"certificate"}:
        body = body["certificate"]
    if not isinstance(body, dict):
        raise ProblemError(
            422, "invalid-request", "{certificate_id}, {certificate} or the certificate"
        )
    return body


def _provider_of(document: dict[str, Any]) -> str | None:
    subject = document.get("subject")
    provider_id = subject.get("provider_id") if isinstance(subject, dict) else None
    return provider_id if isinstance(provider_id, str) else None

"""Every route of the exchange as one typed method, written once for both clients.

Sans-I/O: each method builds an `Op` (method, path, body, query, whether it writes) and hands
it to `_call`, which the sync `Client` runs with `httpx.Client` and the `AsyncClient` with
`httpx.AsyncClient`; `R` is `Json` for one and `Awaitable[Json]` for the other. Money goes out
as decimal strings, never floats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

Json = Any  # a decoded JSON document (object or list) as the exchange answered it
R = TypeVar("R")
Amount = Decimal | int | str


def _amount(value: Amount) -> str:
    if isinstance(value, float):  # pragma: no cover - guarded by the type; a runtime check too
        raise TypeError("amounts are Decimal, int or str, never float")
    return str(value)


def _clean(values: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Op:
    method: str
    path: str
    body: object = None
    query: Mapping[str, object] = field(default_factory=dict)
    write: bool = False  # POST/PUT/PATCH/DELETE: sent with an Idempotency-Key, retried safely


class Api(Generic[R]):
    """The exchange's routes; subclasses decide how an `Op` is sent."""

    def _call(self, op: Op) -> R:
        raise NotImplementedError

    def _get(self, path: str, **query: object) -> R:
        return self._call(Op("GET", path, query=_clean(query)))

    def _post(self, path: str, body: object = None) -> R:
        return self._call(Op("POST", path, body=body, write=True))

    # -- identity ---------------------------------------------------------------------------

    def sign_up(self, name: str, type: str = "CONSUMER") -> R:
        """POST /v1/tenants: a tenant and its first API key (shown once)."""
        return self._post("/v1/tenants", {"name": name, "type": type})

    def me(self) -> R:
        return self._get("/v1/tenants/me")

    def list_keys(self, limit: int | None = None, starting_after: str | None = None) -> R:
        """GET /v1/keys: the tenant's keys (revoked ones too), newest first,
        `{"data": [...], "has_more": bool, "next_cursor": str | None}`."""
        return self._get("/v1/keys", limit=limit, starting_after=starting_after)

    def create_key(self) -> R:
        return self._post("/v1/keys")

    def rotate_key(self, key_id: str) -> R:
        return self._post(f"/v1/keys/{key_id}/rotate")

    def revoke_key(self, key_id: str) -> R:
        return self._call(Op("DELETE", f"/v1/keys/{key_id}", write=True))

    def create_token(self, scopes: Sequence[str], ttl_s: int | None = None) -> R:
        """POST /v1/tokens: a session JWT (HS256) with these scopes."""
        return self._post("/v1/tokens", _clean({"scopes": list(scopes), "ttl_s": ttl_s}))

    # -- operator ---------------------------------------------------------------------------

    def list_tenants(self, limit: int | None = None, starting_after: str | None = None) -> R:
        """GET /v1/admin/tenants: every tenant, newest first (a page, as `list_keys`)."""
        return self._get("/v1/admin/tenants", limit=limit, starting_after=starting_after)

    def suspend_tenant(self, tenant_id: str) -> R:
        return self._post(f"/v1/admin/tenants/{tenant_id}/suspend")

    def reactivate_tenant(self, tenant_id: str) -> R:
        return self._post(f"/v1/admin/tenants/{tenant_id}/reactivate")

    def set_plan(self, tenant_id: str, plan: str) -> R:
        op = Op("PUT", f"/v1/admin/tenants/{tenant_id}/plan", body={"plan": plan}, write=True)
        return self._call(op)

    def revenue(self, currency: str = "USD", period: str | None = None) -> R:
        """GET /v1/admin/revenue: the platform's revenue by stream (fees, verification, plans,
        breakage), optionally for one UTC month "YYYY-MM"."""
        return self._get("/v1/admin/revenue", currency=currency, period=period)

    def close_window(self, work_id: str) -> R:
        return self._post(f"/v1/admin/work/{work_id}/close")

    def resolve_dispute(self, contract_id: str, resolution: str) -> R:
        """The operator's ruling: "refund" or "pay_out"."""
        body = {"resolution": resolution}
        return self._post(f"/v1/admin/contracts/{contract_id}/resolve", body)

    def platform_revenue(self, currency: str = "USD") -> R:
        return self._get("/v1/admin/platform-revenue", currency=currency)

    def approve_certificate(self, cert_id: str, note: str | None = None) -> R:
        return self._post(f"/v1/admin/certificates/{cert_id}/approve", _clean({"note": note}))

    def reject_certificate(self, cert_id: str, note: str | None = None) -> R:
        return self._post(f"/v1/admin/certificates/{cert_id}/reject", _clean({"note": note}))

    # -- providers and subscriptions --------------------------------------------------------

    def register_provider(
        self,
        name: str,
        *,
        capabilities: Sequence[str],
        category: str,
        type: str = "AI_AGENT",
        endpoint: str | None = None,
    ) -> R:
        """POST /v1/providers: a provider and its key and secret (shown once)."""
        body = {
            "name": name,
            "type": type,
            "capabilities": list(capabilities),
            "category": category,
        }
        return self._post("/v1/providers", _clean({**body, "endpoint": endpoint}))

    def list_providers(self, limit: int | None = None, starting_after: str | None = None) -> R:
        """GET /v1/providers: a tenant key's providers or a provider key's own, newest first
        (a page, as `list_keys`)."""
        return self._get("/v1/providers", limit=limit, starting_after=starting_after)

    def provider(self, provider_id: str) -> R:
        return self._get(f"/v1/providers/{provider_id}")

    def update_provider(self, provider_id: str, **changes: object) -> R:
        return self._call(Op("PATCH", f"/v1/providers/{provider_id}", body=changes, write=True))

    def subscribe(
        self,
        provider_id: str,
        categories: Sequence[str],
        capabilities: Sequence[str] | None = None,
    ) -> R:
        body = {"provider_id": provider_id, "categories": list(categories)}
        if capabilities is not None:
            body["capabilities"] = list(capabilities)
        return self._post("/v1/subscriptions", body)

    def list_subscriptions(self, limit: int | None = None, starting_after: str | None = None) -> R:
        """GET /v1/subscriptions: a tenant key's (all its providers') or a provider key's own,
        newest first (a page, as `list_keys`)."""
        return self._get("/v1/subscriptions", limit=limit, starting_after=starting_after)

    def unsubscribe(self, subscription_id: str) -> R:
        return self._call(Op("DELETE", f"/v1/subscriptions/{subscription_id}", write=True))

    def reputation(self, provider_id: str) -> R:
        return self._get(f"/v1/providers/{provider_id}/reputation")

    def register_agent_card(self, provider_id: str, card: Mapping[str, object]) -> R:
        """PUT /v1/providers/{id}/agent-card: the provider's A2A AgentCard."""
        op = Op("PUT", f"/v1/providers/{provider_id}/agent-card", body=dict(card), write=True)
        return self._call(op)

    def agent_card(self, provider_id: str) -> R:
        return self._get(f"/v1/providers/{provider_id}/agent-card")

    def search_providers(
        self,
        *,
        skill: str | None = None,
        tag: str | None = None,
        min_tier: str | None = None,
        limit: int | None = None,
    ) -> R:
        return self._get(
            "/v1/providers/search", skill=skill, tag=tag, min_tier=min_tier, limit=limit
        )

    def exchange_agent_card(self) -> R:
        return self._get("/.well-known/agent-card.json")

    # -- wallets ----------------------------------------------------------------------------

    def deposit(self, tenant_id: str, amount: Amount, currency: str = "USD") -> R:
        body = {"tenant_id": tenant_id, "amount": _amount(amount), "currency": currency}
        return self._post("/v1/deposits", body)

    def withdraw(self, tenant_id: str, amount: Amount, currency: str = "USD") -> R:
        body = {"tenant_id": tenant_id, "amount": _amount(amount), "currency": currency}
        return self._post("/v1/withdrawals", body)

    def balance(self, currency: str = "USD") -> R:
        return self._get("/v1/balance", currency=currency)

    def transactions(
        self, currency: str = "USD", limit: int | None = None, starting_after: int | None = None
    ) -> R:
        """GET /v1/transactions: the wallet's journal entries, newest first,
        `{"data": [...], "has_more": bool, "next_cursor": int | None}` (an entry id)."""
        return self._get(
            "/v1/transactions", currency=currency, limit=limit, starting_after=starting_after
        )

    # -- billing ----------------------------------------------------------------------------

    def plan(self) -> R:
        """GET /v1/plan: the caller's plan, its paid term and its quotas."""
        return self._get("/v1/plan")

    def change_plan(self, plan: str, agents: int = 1) -> R:
        """POST /v1/plan: buys, upgrades or downgrades the plan, prorated (the answer has
        `net`: charged when positive, rebated when negative, and the `invoice`)."""
        return self._post("/v1/plan", {"plan": plan, "agents": agents})

    def usage(self, period: str | None = None) -> R:
        """GET /v1/usage: verification calls, charged and arrears; plan, limits, consumption;
        what was charged in `period` (a UTC month "YYYY-MM", default the current one)."""
        return self._get("/v1/usage", period=period)

    def invoices(self, limit: int | None = None, starting_after: str | None = None) -> R:
        """GET /v1/invoices: newest first,
        `{"data": [...], "has_more": bool, "next_cursor": str | None}`."""
        return self._get("/v1/invoices", limit=limit, starting_after=starting_after)

    def invoice(self, invoice_id: str) -> R:
        return self._get(f"/v1/invoices/{invoice_id}")

    # -- the token bank (docs/payments.md "Token bank") ------------------------------------

    def redeem_voucher(self, code: str) -> R:
        """POST /v1/vouchers/redeem: the voucher's amount into the caller's credit bucket."""
        return self._post("/v1/vouchers/redeem", {"code": code})

    def issue_voucher(
        self,
        amount: Amount,
        *,
        expires_at_ms: int,
        currency: str = "USD",
        max_redemptions: int = 1,
        note: str = "",
    ) -> R:
        """POST /v1/admin/vouchers (operator): the answer's `code` is shown only this once;
        `expires_at_ms` in milliseconds since the Unix epoch (docs/api.md "Times")."""
        body = {
            "amount": _amount(amount),
            "currency": currency,
            "expires_at_ms": expires_at_ms,
            "max_redemptions": max_redemptions,
            "note": note,
        }
        return self._post("/v1/admin/vouchers", body)

    def voucher(self, voucher_id: str) -> R:
        """GET /v1/admin/vouchers/{id} (operator): the voucher and its redemptions so far."""
        return self._get(f"/v1/admin/vouchers/{voucher_id}")

    def expire_credit(self, now_ms: int | None = None) -> R:
        """POST /v1/admin/credit/expire (operator): expired credit becomes breakage."""
        return self._post("/v1/admin/credit/expire", _clean({"now_ms": now_ms}))

    # -- the market -------------------------------------------------------------------------

    def submit_work(
        self,
        *,
        title: str,
        category: str,
        budget_min: Amount,
        budget_max: Amount,
        currency: str = "USD",
        requirements: Mapping[str, object] | None = None,
        success_criteria: Sequence[Mapping[str, object]] | None = None,
        bid_window_seconds: int | None = None,
        mandate_id: str | None = None,
        **extra: object,
    ) -> R:
        """POST /v1/work: publishes work and holds its budget max in escrow; under an AP2
        intent mandate (`mandate_id`) it is refused beyond the mandate's limits."""
        budget = {"min": _amount(budget_min), "max": _amount(budget_max), "currency": currency}
        body = _clean(
            {
                "title": title,
                "category": category,
                "budget": budget,
                "requirements": None if requirements is None else dict(requirements),
                "success_criteria": None
                if success_criteria is None
                else [dict(item) for item in success_criteria],
                "bid_window_seconds": bid_window_seconds,
                "mandate_id": mandate_id,
                **extra,
            }
        )
        return self._post("/v1/work", body)

    def work(self, work_id: str) -> R:
        return self._get(f"/v1/work/{work_id}")

    def list_work(
        self,
        limit: int | None = None,
        starting_after: str | None = None,
        *,
        status: str | None = None,
        category: str | None = None,
        created_after_ms: int | None = None,
        created_before_ms: int | None = None,
    ) -> R:
        """GET /v1/work: the caller's work, newest first, narrowed by state, category and
        creation time (strictly after / before, Unix ms),
        `{"data": [...], "has_more": bool, "next_cursor": str | None}`."""
        return self._get(
            "/v1/work",
            limit=limit,
            starting_after=starting_after,
            status=status,
            category=category,
            created_after_ms=created_after_ms,
            created_before_ms=created_before_ms,
        )

    def open_work(
        self,
        limit: int | None = None,
        starting_after: str | None = None,
        *,
        provider_id: str | None = None,
    ) -> R:
        """GET /v1/work/open: open work the provider's subscriptions match, newest first, as
        the provider is told of it (a provider key: its own; a tenant key names its provider),
        `{"data": [...], "has_more": bool, "next_cursor": str | None}`."""
        return self._get(
            "/v1/work/open", limit=limit, starting_after=starting_after, provider_id=provider_id
        )

    def cancel_work(self, work_id: str) -> R:
        return self._post(f"/v1/work/{work_id}/cancel")

    def bids(self, work_id: str, limit: int | None = None, starting_after: str | None = None) -> R:
        """GET /v1/work/{id}/bids: the bids on the caller's work, newest first,
        `{"data": [...], "has_more": bool, "next_cursor": str | None}`."""
        return self._get(f"/v1/work/{work_id}/bids", limit=limit, starting_after=starting_after)

    def evaluation(self, work_id: str) -> R:
        return self._get(f"/v1/work/{work_id}/evaluation")

    def submit_bid(
        self,
        *,
        work_id: str,
        provider_id: str,
        price: Amount,
        confidence: float,
        estimated_duration: str,
        max_turnaround: str,
        **extra: object,
    ) -> R:
        """POST /v1/bids: a sealed bid during the bid window."""
        body = {
            "work_id": work_id,
            "provider_id": provider_id,
            "price": _amount(price),
            "confidence": confidence,
            "estimated_duration": estimated_duration,
            "sla": {"max_turnaround": max_turnaround},
            **extra,
        }
        return self._post("/v1/bids", body)

    def own_bids(self, limit: int | None = None, starting_after: str | None = None) -> R:
        """GET /v1/bids: the caller's own bids, newest first (sealed: nobody else's),
        `{"data": [...], "has_more": bool, "next_cursor": str | None}`."""
        return self._get("/v1/bids", limit=limit, starting_after=starting_after)

    def contracts(
        self,
        limit: int | None = None,
        starting_after: str | None = None,
        status: str | None = None,
        role: str | None = None,
    ) -> R:
        """GET /v1/contracts: the caller's contracts (either party), newest award first,
        `{"data": [...], "has_more": bool, "next_cursor": str | None}`."""
        return self._get(
            "/v1/contracts", limit=limit, starting_after=starting_after, status=status, role=role
        )

    def contract(self, contract_id: str) -> R:
        return self._get(f"/v1/contracts/{contract_id}")

    def report_progress(self, contract_id: str, progress: Mapping[str, object]) -> R:
        return self._post(f"/v1/contracts/{contract_id}/progress", dict(progress))

    def complete(
        self,
        contract_id: str,
        *,
        results: Mapping[str, object],
        metrics: Mapping[str, object] | None = None,
    ) -> R:
        body = _clean(
            {"results": dict(results), "metrics": None if metrics is None else dict(metrics)}
        )
        return self._post(f"/v1/contracts/{contract_id}/complete", body)

    def fail(self, contract_id: str) -> R:
        return self._post(f"/v1/contracts/{contract_id}/fail")

    def dispute(self, contract_id: str, reason: str, receipt_id: str | None = None) -> R:
        """Disputes a settled contract; `receipt_id` cites one of its AP2 receipts."""
        body = _clean({"reason": reason, "receipt_id": receipt_id})
        return self._post(f"/v1/contracts/{contract_id}/dispute", body)

    # -- AP2 mandates (docs/payments.md "AP2 mandates") ------------------------------------

    def register_mandate_key(self, public_key_jwk: Mapping[str, object]) -> R:
        """POST /v1/mandates/keys: the P-256 public JWK the user signs mandates with."""
        return self._post("/v1/mandates/keys", {"public_key_jwk": dict(public_key_jwk)})

    def create_mandate(self, mandate: str, public_key_jwk: Mapping[str, object] | None = None) -> R:
        """POST /v1/mandates: a signed intent mandate (aex.core.mandates.sign_mandate)."""
        key = None if public_key_jwk is None else dict(public_key_jwk)
        return self._post("/v1/mandates", _clean({"mandate": mandate, "public_key_jwk": key}))

    def mandate(self, mandate_id: str) -> R:
        return self._get(f"/v1/mandates/{mandate_id}")

    def revoke_mandate(self, mandate_id: str) -> R:
        return self._post(f"/v1/mandates/{mandate_id}/revoke")

    def receipts(self, contract_id: str) -> R:
        """GET /v1/contracts/{id}/receipts: the CA-signed checkout and payment receipts."""
        return self._get(f"/v1/contracts/{contract_id}/receipts")

    def webhook_deliveries(self, limit: int | None = None, starting_after: str | None = None) -> R:
        """GET /v1/notifications/deliveries: the provider's webhook deliveries, newest event
        first, `{"data": [...], "has_more": bool, "next_cursor": str | None}`."""
        return self._get("/v1/notifications/deliveries", limit=limit, starting_after=starting_after)

    # -- certificates -----------------------------------------------------------------------

    def request_certificate(self, request: Mapping[str, object]) -> R:
        """POST /v1/certificates/request: a signed request (see `aex cert request`)."""
        return self._post("/v1/certificates/request", dict(request))

    def certificate(self, cert_id: str, format: str | None = None) -> R:
        return self._get(f"/v1/certificates/{cert_id}", format=format)

    def certificate_record(self, cert_id: str) -> R:
        return self._get(f"/v1/certificates/{cert_id}/record")

    def verify_certificate_online(self, cert_id: str) -> R:
        """POST /v1/certificates/verify: the exchange checks it (a metered call)."""
        return self._post("/v1/certificates/verify", {"certificate_id": cert_id})

    def renew_certificate(self, cert_id: str) -> R:
        return self._post(f"/v1/certificates/{cert_id}/renew")

    def revoke_certificate(self, cert_id: str, reason: int = 0) -> R:
        """Revokes every serial; `reason` is an RFC 5280 reason code."""
        return self._post(f"/v1/certificates/{cert_id}/revoke", {"reason": reason})

    def verification_usage(self) -> R:
        return self._get("/v1/certificates/usage")

    def open_challenge(self, provider_id: str, public_key_jwk: Mapping[str, object]) -> R:
        """POST /v1/certificates/challenges: an IDENTITY challenge (serve its
        `key_authorization` at its `url`, then `validate_challenge`)."""
        body = {"provider_id": provider_id, "public_key_jwk": dict(public_key_jwk)}
        return self._post("/v1/certificates/challenges", body)

    def challenge(self, token: str) -> R:
        return self._get(f"/v1/certificates/challenges/{token}")

    def validate_challenge(self, token: str) -> R:
        """POST /v1/certificates/challenges/{token}/validate: the exchange fetches the token."""
        return self._post(f"/v1/certificates/challenges/{token}/validate")

    def register_delegation_key(self, provider_id: str, public_key_jwk: Mapping[str, object]) -> R:
        """POST /v1/certificates/delegation-keys: the resold provider's delegation key."""
        body = {"provider_id": provider_id, "public_key_jwk": dict(public_key_jwk)}
        return self._post("/v1/certificates/delegation-keys", body)

    def register_delegation(self, delegation: str) -> R:
        """POST /v1/certificates/delegations: a delegation (compact JWS) filed by the reseller."""
        return self._post("/v1/certificates/delegations", {"delegation": delegation})

    def delegation(self, delegation_id: str) -> R:
        return self._get(f"/v1/certificates/delegations/{delegation_id}")

    def revoke_delegation(self, delegation_id: str) -> R:
        """Only the delegator revokes; its RESELLER certificates are revoked with it."""
        return self._post(f"/v1/certificates/delegations/{delegation_id}/revoke")

    def status_list(self, list_number: int) -> R:
        """GET /v1/status-lists/{n}: the W3C Bitstring Status List credential (a VC-JWT)."""
        return self._get(f"/v1/status-lists/{list_number}")

    def crl(self) -> R:
        return self._get("/v1/crl")

    def ca_document(self) -> R:
        return self._get("/.well-known/aex-ca.json")

    # -- operations -------------------------------------------------------------------------

    def health(self) -> R:
        return self._get("/health")

    def ready(self) -> R:
        return self._get("/ready")

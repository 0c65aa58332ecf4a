"""Use cases behind the routes: load → decide (core or the access rules here) → persist.

The access rules of the live exchange live here and only here: who may act on a provider or a
subscription (its owner tenant, or that provider's own key), and that every "not yours" is
answered exactly like "not there" (404), so a tenant cannot probe for another's ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import msgspec

from aex.core import (
    DEFAULT_PLAN,
    PROVIDER_KEY_SCOPES,
    TENANT_KEY_SCOPES,
    CredentialKind,
    Plan,
    check_agents_quota,
    check_subscriptions_quota,
)
from aex.core.billing import PLAN_PRICED_PER_AGENT
from serve.gateway.paging import page_size
from serve.gateway.problems import FieldError, ProblemError, listed, problem_for_rejected
from serve.gateway.schemas import (
    KeyCreated,
    KeyPage,
    KeyView,
    ProviderCreate,
    ProviderCreated,
    ProviderPage,
    ProviderUpdate,
    ProviderView,
    SubscriptionCreate,
    SubscriptionPage,
    SubscriptionView,
    TenantCreate,
    TenantCreated,
    TenantPage,
    TenantView,
    WebhookSecretCreated,
)
from serve.identity.security import (
    Principal,
    PrincipalKind,
    new_credential,
    new_id,
    now_ms,
    require_scopes_to_mint,
)
from serve.notifications.endpoints import EndpointPolicy
from serve.secret_box import SecretBox, webhook_secret_context
from serve.stores.base import (
    KeyRecord,
    KeyStore,
    ProviderRecord,
    SubscriptionRecord,
    TenantRecord,
)

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)
_ID = re.compile(r"[a-z]+_[0-9a-f]{16}")
KEY_PREFIX_CHARS = 12


@dataclass(frozen=True, slots=True)
class Identity:
    store: KeyStore

    def sign_up(self, body: TenantCreate) -> TenantCreated:
        created_ms = now_ms()
        tenant = TenantRecord(
            new_id("ten"), body.name, body.type.value, DEFAULT_PLAN, "ACTIVE", created_ms
        )
        api_key, key = _tenant_key(tenant.tenant_id, created_ms)
        self.store.create_tenant(tenant, key)
        return TenantCreated(
            tenant.tenant_id,
            tenant.name,
            tenant.type,
            tenant.plan,
            tenant.status,
            key.key_id,
            api_key,
        )

    def tenant(self, tenant_id: str) -> TenantView:
        return _tenant_view(_found(self.store.get_tenant(_checked_id(tenant_id)), "tenant"))

    def keys(self, principal: Principal, *, limit: int, starting_after: str | None) -> KeyPage:
        """The tenant's keys (revoked ones too), newest first."""
        page = self.store.page_keys(
            _tenant_of(principal), limit=page_size(limit), starting_after=starting_after
        )
        records = listed(page, "unknown_key")
        data = [_key_view(k) for k in records.records]
        return KeyPage(data, records.has_more, data[-1].key_id if records.has_more else None)

    def create_key(self, principal: Principal) -> KeyCreated:
        require_scopes_to_mint(principal, TENANT_KEY_SCOPES)
        api_key, key = _tenant_key(_tenant_of(principal), now_ms())
        self.store.add_key(key)
        return KeyCreated(key.key_id, key.prefix, key.created_at_ms, api_key)

    def rotate_key(self, principal: Principal, key_id: str) -> KeyCreated:
        require_scopes_to_mint(principal, TENANT_KEY_SCOPES)
        api_key, key = _tenant_key(_tenant_of(principal), now_ms())
        rotated = self.store.rotate_key(
            _tenant_of(principal), _checked_id(key_id), key, now_ms=key.created_at_ms
        )
        _found(rotated, "key")
        return KeyCreated(key.key_id, key.prefix, key.created_at_ms, api_key, key_id)

    def revoke_key(self, principal: Principal, key_id: str) -> KeyView:
        revoked = self.store.revoke_key(_tenant_of(principal), _checked_id(key_id), now_ms=now_ms())
        return _key_view(_found(revoked, "key"))

    def tenants(self, *, limit: int, starting_after: str | None) -> TenantPage:
        """Every tenant, newest first (the operator's view)."""
        page = self.store.page_tenants(limit=page_size(limit), starting_after=starting_after)
        records = listed(page, "unknown_tenant")
        data = [_tenant_view(t) for t in records.records]
        return TenantPage(data, records.has_more, data[-1].tenant_id if records.has_more else None)

    def set_status(self, tenant_id: str, status: str) -> TenantView:
        updated = self.store.set_tenant_status(_checked_id(tenant_id), status)
        return _tenant_view(_found(updated, "tenant"))

    def checked_tenant_id(self, tenant_id: str) -> str:
        """A well-formed tenant id (404 otherwise)."""
        return _checked_id(tenant_id)

    def set_plan(self, tenant_id: str, plan: Plan) -> TenantView:
        updated = self.store.set_tenant_plan(_checked_id(tenant_id), plan)
        return _tenant_view(_found(updated, "tenant"))


@dataclass(frozen=True, slots=True)
class Registry:
    store: KeyStore
    box: SecretBox  # seals webhook signing secrets (serve/secret_box.py)
    endpoints: EndpointPolicy = field(default_factory=EndpointPolicy)

    def _agents_paid(self, tenant_id: str, plan: Plan, now: int) -> int | None:
        """The agents a per-agent plan's paid term covers (serve/billing/usecases.py): a cap while
        that term runs and is the tenant's plan; None otherwise (an operator's override, a flat or
        free plan)."""
        term = self.store.paid_term(tenant_id)
        if term is None or term[0] != plan.value or term[2] <= now:
            return None
        return term[1] if plan in PLAN_PRICED_PER_AGENT else None

    def register(self, principal: Principal, body: ProviderCreate) -> ProviderCreated:
        require_scopes_to_mint(principal, PROVIDER_KEY_SCOPES)  # it mints the provider's key
        self._check_endpoint(body.endpoint)
        created_ms = now_ms()
        tenant_id = _tenant_of(principal)
        provider = ProviderRecord(
            new_id("prov"),
            tenant_id,
            body.name,
            body.type,
            tuple(body.capabilities),
            body.category,
            body.endpoint,
            created_ms,
            created_ms,
        )
        api_key, key_digest = new_credential(CredentialKind.PROVIDER_KEY)
        api_secret, secret_digest = new_credential(CredentialKind.PROVIDER_SECRET)
        webhook_secret, _ = new_credential(CredentialKind.WEBHOOK_SECRET)
        key = KeyRecord(
            new_id("key"),
            tenant_id,
            "PROVIDER",
            key_digest,
            api_key[: KEY_PREFIX_CHARS + 4],
            created_ms,
            provider_id=provider.provider_id,
        )
        rejected = self.store.create_provider(
            provider,
            key,
            secret_digest,
            check_agents=partial(
                check_agents_quota,
                principal.plan,
                agents_paid=self._agents_paid(tenant_id, principal.plan, created_ms),
            ),
            webhook_secret_sealed=self._seal(provider.provider_id, webhook_secret),
        )
        if rejected is not None:
            raise problem_for_rejected(rejected)
        return ProviderCreated(
            provider.provider_id, provider.name, api_key, api_secret, webhook_secret
        )

    def new_webhook_secret(self, principal: Principal, provider_id: str) -> WebhookSecretCreated:
        """A fresh webhook signing secret (shown once); the old one stops signing at once."""
        provider = self._owned(principal, provider_id, owner_only=True)
        webhook_secret, _ = new_credential(CredentialKind.WEBHOOK_SECRET)
        sealed = self._seal(provider.provider_id, webhook_secret)
        _found(
            self.store.set_webhook_secret(provider.tenant_id, provider.provider_id, sealed) or None,
            "provider",
        )
        return WebhookSecretCreated(provider.provider_id, webhook_secret)

    def _seal(self, provider_id: str, webhook_secret: str) -> str:
        return self.box.seal(webhook_secret, context=webhook_secret_context(provider_id))

    def providers(
        self, principal: Principal, *, limit: int, starting_after: str | None
    ) -> ProviderPage:
        """A tenant key's providers, or a provider key's own provider, newest first."""
        page = self.store.page_providers(
            _tenant_of(principal),
            principal.provider_id,
            limit=page_size(limit),
            starting_after=starting_after,
        )
        records = listed(page, "unknown_provider")
        data = [_provider_view(p) for p in records.records]
        assert all(_may_act_on(principal, p) for p in records.records)
        more = records.has_more
        return ProviderPage(data, more, data[-1].provider_id if more else None)

    def provider(self, principal: Principal, provider_id: str) -> ProviderView:
        return _provider_view(self._owned(principal, provider_id))

    def update(self, principal: Principal, provider_id: str, body: ProviderUpdate) -> ProviderView:
        provider = self._owned(principal, provider_id, owner_only=True)
        self._check_endpoint(body.endpoint)
        updated = msgspec_replace(
            provider,
            name=body.name or provider.name,
            capabilities=tuple(body.capabilities or provider.capabilities),
            category=body.category or provider.category,
            endpoint=body.endpoint or provider.endpoint,
            updated_at_ms=now_ms(),
        )
        self.store.update_provider(updated)
        return _provider_view(updated)

    def subscribe(self, principal: Principal, body: SubscriptionCreate) -> SubscriptionView:
        provider = self._owned(principal, body.provider_id)
        subscription = SubscriptionRecord(
            new_id("sub"),
            provider.provider_id,
            provider.tenant_id,
            tuple(body.categories),
            tuple(body.capabilities),
            now_ms(),
        )
        rejected = self.store.create_subscription(
            subscription, check_subscriptions=partial(check_subscriptions_quota, principal.plan)
        )
        if rejected is not None:
            raise problem_for_rejected(rejected)
        return _subscription_view(subscription)

    def subscriptions(
        self, principal: Principal, *, limit: int, starting_after: str | None
    ) -> SubscriptionPage:
        """A tenant key's subscriptions (all its providers'), a provider key's own, newest
        first."""
        page = self.store.page_subscriptions(
            _tenant_of(principal),
            principal.provider_id,
            limit=page_size(limit),
            starting_after=starting_after,
        )
        records = listed(page, "unknown_subscription")
        data = [_subscription_view(s) for s in records.records]
        more = records.has_more
        return SubscriptionPage(data, more, data[-1].subscription_id if more else None)

    def unsubscribe(self, principal: Principal, subscription_id: str) -> None:
        subscription = self.store.get_subscription(_checked_id(subscription_id))
        subscription = _found(subscription, "subscription")
        self._owned(principal, subscription.provider_id)
        self.store.delete_subscription(subscription.subscription_id)

    def _check_endpoint(self, endpoint: str | None) -> None:
        # Before anything is written: a webhook endpoint the exchange would not connect to
        # (loopback, private, link-local, metadata, ...: aex/core/endpoints.py) is a 422.
        if endpoint is not None:
            refused = self.endpoints.registration_refusal(endpoint)
            if refused is not None:
                raise problem_for_rejected(refused)

    def _owned(
        self, principal: Principal, provider_id: str, *, owner_only: bool = False
    ) -> ProviderRecord:
        provider = self.store.get_provider(_checked_id(provider_id))
        if provider is None or not _may_act_on(principal, provider):
            raise _not_found("provider")
        if owner_only and principal.kind is not PrincipalKind.TENANT:
            raise ProblemError(403, "owner-credential-required", "only the owner tenant may")
        return provider


def _may_act_on(principal: Principal, provider: ProviderRecord) -> bool:
    # The owner tenant acts on all its providers; a provider key only on its own provider.
    if provider.tenant_id != principal.tenant_id:
        return False
    if principal.kind is PrincipalKind.PROVIDER:
        return principal.provider_id == provider.provider_id
    return principal.kind is PrincipalKind.TENANT


def _tenant_of(principal: Principal) -> str:
    assert principal.tenant_id is not None
    return principal.tenant_id


def _tenant_key(tenant_id: str, created_ms: int) -> tuple[str, KeyRecord]:
    api_key, digest = new_credential(CredentialKind.TENANT_KEY)
    key = KeyRecord(
        new_id("key"), tenant_id, "TENANT", digest, api_key[:KEY_PREFIX_CHARS], created_ms
    )
    return api_key, key


def _checked_id(value: str) -> str:
    # A malformed id cannot name anything: 404 without touching the store.
    if _ID.fullmatch(value) is None:
        raise _not_found("id")
    return value


def _found(value: T | None, what: str) -> T:
    if value is None:
        raise _not_found(what)
    return value


def _not_found(what: str) -> ProblemError:
    return ProblemError(
        404, "not-found", f"no such {what}", errors=(FieldError(what, "not_found"),)
    )


def msgspec_replace(record: S, **changes: object) -> S:
    return msgspec.structs.replace(record, **changes)


def _tenant_view(t: TenantRecord) -> TenantView:
    return TenantView(t.tenant_id, t.name, t.type, t.plan, t.status, t.created_at_ms)


def _key_view(k: KeyRecord) -> KeyView:
    return KeyView(k.key_id, k.kind, k.prefix, k.created_at_ms, k.revoked_at_ms, k.provider_id)


def _provider_view(p: ProviderRecord) -> ProviderView:
    return ProviderView(
        p.provider_id,
        p.tenant_id,
        p.name,
        p.type,
        p.capabilities,
        p.category,
        p.endpoint,
        p.created_at_ms,
        p.updated_at_ms,
    )


def _subscription_view(s: SubscriptionRecord) -> SubscriptionView:
    return SubscriptionView(
        s.subscription_id, s.provider_id, s.categories, s.capabilities, s.created_at_ms
    )

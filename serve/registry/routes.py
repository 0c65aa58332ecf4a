"""Providers (agents) and their work subscriptions."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import Provide
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from aex.core import AccessScope
from serve.gateway.callers import SHOWN_ONCE, needs, provider_or_tenant_caller, tenant_caller
from serve.gateway.paging import Cursor, Limit
from serve.gateway.problems import PROBLEM_RESPONSES
from serve.gateway.schemas import (
    ProviderCreate,
    ProviderCreated,
    ProviderPage,
    ProviderUpdate,
    ProviderView,
    SubscriptionCreate,
    SubscriptionPage,
    SubscriptionView,
    WebhookSecretCreated,
)
from serve.identity.security import Principal
from serve.services import Registry

# The page parameters of every list here, as on GET /v1/contracts.


class ProviderController(Controller):
    path = "/v1/providers"
    tags = ["providers"]  # noqa: RUF012
    dependencies = {"caller": Provide(provider_or_tenant_caller, sync_to_thread=False)}  # noqa: RUF012

    @post(
        "/",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        dependencies={"caller": Provide(tenant_caller, sync_to_thread=False)},
        cache_control=SHOWN_ONCE,
        opt=needs(AccessScope.PROVIDERS),
    )
    def register(
        self, caller: Principal, registry: Registry, data: ProviderCreate
    ) -> ProviderCreated:
        """A provider with its API key, API secret and webhook signing secret, each shown once
        (403 over "max agents")."""
        return registry.register(caller, data)

    @post(
        "/{provider_id:str}/webhook-secret",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        cache_control=SHOWN_ONCE,
        opt=needs(AccessScope.PROVIDERS),
    )
    def new_webhook_secret(
        self, caller: Principal, registry: Registry, provider_id: str
    ) -> WebhookSecretCreated:
        """A new webhook signing secret, shown once; deliveries are signed with it from now on
        (owner tenant only)."""
        return registry.new_webhook_secret(caller, provider_id)

    @get("/", responses=PROBLEM_RESPONSES, sync_to_thread=True, opt=needs(AccessScope.READ))
    def list_providers(
        self,
        caller: Principal,
        registry: Registry,
        limit: Limit,
        starting_after: Cursor = None,
    ) -> ProviderPage:
        """A tenant key's providers, or a provider key's own, newest first; a cursor naming
        none of them is 422 naming `starting_after`."""
        return registry.providers(caller, limit=limit, starting_after=starting_after)

    @get(
        "/{provider_id:str}",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ),
    )
    def get_provider(self, caller: Principal, registry: Registry, provider_id: str) -> ProviderView:
        return registry.provider(caller, provider_id)

    @patch(
        "/{provider_id:str}",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.PROVIDERS),
    )
    def update_provider(
        self, caller: Principal, registry: Registry, provider_id: str, data: ProviderUpdate
    ) -> ProviderView:
        """Only the owner tenant updates a provider."""
        return registry.update(caller, provider_id, data)


class SubscriptionController(Controller):
    path = "/v1/subscriptions"
    tags = ["providers"]  # noqa: RUF012
    dependencies = {"caller": Provide(provider_or_tenant_caller, sync_to_thread=False)}  # noqa: RUF012

    @post(
        "/",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        opt=needs(AccessScope.PROVIDERS),
    )
    def subscribe(
        self, caller: Principal, registry: Registry, data: SubscriptionCreate
    ) -> SubscriptionView:
        """Patterns: "*" matches all, a trailing "*" a prefix ("code.*"), else exact."""
        return registry.subscribe(caller, data)

    @get("/", responses=PROBLEM_RESPONSES, sync_to_thread=True, opt=needs(AccessScope.READ))
    def list_subscriptions(
        self,
        caller: Principal,
        registry: Registry,
        limit: Limit,
        starting_after: Cursor = None,
    ) -> SubscriptionPage:
        """A tenant key's subscriptions (all its providers'), or a provider key's own, newest
        first; a cursor naming none of them is 422 naming `starting_after`."""
        return registry.subscriptions(caller, limit=limit, starting_after=starting_after)

    @delete(
        "/{subscription_id:str}",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        opt=needs(AccessScope.PROVIDERS),
    )
    def unsubscribe(self, caller: Principal, registry: Registry, subscription_id: str) -> None:
        registry.unsubscribe(caller, subscription_id)

"""Tenants, API keys, session tokens, and the operator's tenant administration."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import State
from litestar.di import Provide
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from aex.core import AccessScope
from serve.billing.usecases import Billing
from serve.gateway.callers import PUBLIC, SHOWN_ONCE, needs, operator_caller, tenant_caller
from serve.gateway.paging import Cursor, Limit
from serve.gateway.problems import PROBLEM_RESPONSES
from serve.gateway.schemas import (
    KeyCreated,
    KeyPage,
    KeyView,
    PlanChange,
    TenantCreate,
    TenantCreated,
    TenantPage,
    TenantView,
    TokenCreate,
    TokenCreated,
)
from serve.identity.security import Principal, mint_token
from serve.services import Identity


@post(
    "/v1/tenants",
    responses=PROBLEM_RESPONSES,
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    tags=["identity"],
    cache_control=SHOWN_ONCE,
    opt=needs(PUBLIC),
)
def create_tenant(data: TenantCreate, identity: Identity) -> TenantCreated:
    """Sign up: a tenant and its first API key (shown once). No credential needed."""
    return identity.sign_up(data)


class TenantController(Controller):
    path = "/v1"
    tags = ["identity"]  # noqa: RUF012
    dependencies = {"caller": Provide(tenant_caller, sync_to_thread=False)}  # noqa: RUF012

    @get(
        "/tenants/me",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ),
    )
    def me(self, caller: Principal, identity: Identity) -> TenantView:
        assert caller.tenant_id is not None
        return identity.tenant(caller.tenant_id)

    @get("/keys", responses=PROBLEM_RESPONSES, sync_to_thread=True, opt=needs(AccessScope.READ))
    def list_keys(
        self,
        caller: Principal,
        identity: Identity,
        limit: Limit,
        starting_after: Cursor = None,
    ) -> KeyPage:
        """The tenant's keys, revoked ones too, newest first; a cursor naming none of them is
        422 naming `starting_after`."""
        return identity.keys(caller, limit=limit, starting_after=starting_after)

    @post(
        "/keys",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        cache_control=SHOWN_ONCE,
        opt=needs(AccessScope.KEYS),
    )
    def create_key(self, caller: Principal, identity: Identity) -> KeyCreated:
        return identity.create_key(caller)

    @post(
        "/keys/{key_id:str}/rotate",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        cache_control=SHOWN_ONCE,
        opt=needs(AccessScope.KEYS),
    )
    def rotate_key(self, caller: Principal, identity: Identity, key_id: str) -> KeyCreated:
        """A new key; the old one is revoked in the same transaction."""
        return identity.rotate_key(caller, key_id)

    @delete(
        "/keys/{key_id:str}",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        opt=needs(AccessScope.KEYS),
    )
    def revoke_key(self, caller: Principal, identity: Identity, key_id: str) -> KeyView:
        """Revoked at once, in every worker (the cache is invalidated through the store)."""
        return identity.revoke_key(caller, key_id)

    @post(
        "/tokens",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,  # a token endpoint (RFC 6749 5.1): nothing is created
        sync_to_thread=False,
        cache_control=SHOWN_ONCE,
        opt=needs(AccessScope.KEYS),
    )
    def create_token(self, caller: Principal, data: TokenCreate, jwt_secret: str) -> TokenCreated:
        """A session JWT (HS256, iss aex-identity) for the dashboard: scopes no broader than
        the caller's ("*" = all of them), bound to the caller's key, expiring no later than
        the caller's own token. 200, not 201: the JWT is not stored, there is nothing to
        point a Location at."""
        return mint_token(caller, data, jwt_secret, now_s=int(time.time()))


class OperatorController(Controller):
    path = "/v1/admin/tenants"
    tags = ["operator"]  # noqa: RUF012
    dependencies = {"caller": Provide(operator_caller, sync_to_thread=False)}  # noqa: RUF012

    @get("/", responses=PROBLEM_RESPONSES, sync_to_thread=True, opt=needs(AccessScope.OPERATOR))
    def list_tenants(
        self,
        caller: Principal,
        identity: Identity,
        limit: Limit,
        starting_after: Cursor = None,
    ) -> TenantPage:
        """Every tenant, newest first; a cursor naming no tenant is 422 naming
        `starting_after`."""
        return identity.tenants(limit=limit, starting_after=starting_after)

    @post(
        "/{tenant_id:str}/suspend",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        opt=needs(AccessScope.OPERATOR),
    )
    def suspend(self, caller: Principal, identity: Identity, tenant_id: str) -> TenantView:
        return identity.set_status(tenant_id, "SUSPENDED")

    @post(
        "/{tenant_id:str}/reactivate",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        opt=needs(AccessScope.OPERATOR),
    )
    def reactivate(self, caller: Principal, identity: Identity, tenant_id: str) -> TenantView:
        return identity.set_status(tenant_id, "ACTIVE")

    @put(
        "/{tenant_id:str}/plan",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.OPERATOR),
    )
    def set_plan(
        self,
        caller: Principal,
        identity: Identity,
        tenant_id: str,
        data: PlanChange,
        request: Request[Any, Any, State],
    ) -> TenantView:
        """The operator's complimentary override: the plan changes at once, nothing is charged
        and a paid term is kept (serve/billing/usecases.py; docs/payments.md "Billing")."""
        billing: Billing = request.app.state.billing
        billing.override_plan(identity.checked_tenant_id(tenant_id), data.plan)
        return identity.tenant(tenant_id)

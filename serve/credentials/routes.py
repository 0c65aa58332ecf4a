"""AP2 mandates over HTTP (docs/payments.md "AP2 mandates"): the tenant's user keys, its signed
intent mandates (register, read, revoke) and a contract's signed receipts. Thin handlers over
serve.credentials.mandates."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from aex.core import AccessScope
from serve.credentials.mandates import Mandates
from serve.credentials.schemas import (
    MandateCreate,
    MandateKeyCreate,
    MandateKeyView,
    MandateView,
    ReceiptList,
)
from serve.gateway.callers import needs, provider_or_tenant_caller, tenant_caller
from serve.gateway.problems import PROBLEM_RESPONSES


def _mandates(request: Request[Any, Any, State]) -> Mandates:
    found: Mandates = request.app.state.mandates
    return found


class MandateController(Controller):
    """The consumer's user pre-authorises its agent: a key, then signed intent mandates."""

    path = "/v1/mandates"
    tags = ["mandates"]  # noqa: RUF012

    @post(
        "/keys",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.KEYS),
    )
    async def register_key(
        self, request: Request[Any, Any, State], data: MandateKeyCreate
    ) -> MandateKeyView:
        """Registers the P-256 public key (JWK) the tenant's user signs mandates with."""
        caller = tenant_caller(request)
        return await asyncio.to_thread(_mandates(request).register_key, caller, data)

    @post(
        "/",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.MARKET),
    )
    async def create(self, request: Request[Any, Any, State], data: MandateCreate) -> MandateView:
        """An intent mandate signed by a registered user key (compact JWS, ES256); verified
        and stored. Work submitted with its `mandate_id` is held to its limits."""
        caller = tenant_caller(request)
        return await asyncio.to_thread(_mandates(request).create, caller, data)

    @get(
        "/{mandate_id:str}",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ),
    )
    def show(self, request: Request[Any, Any, State], mandate_id: str) -> MandateView:
        """The mandate, its state and what it has spent (its tenant only)."""
        return _mandates(request).mandate(tenant_caller(request), mandate_id)

    @post(
        "/{mandate_id:str}/revoke",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.MARKET),
    )
    async def revoke(self, request: Request[Any, Any, State], mandate_id: str) -> MandateView:
        """Revokes the mandate: no further work under it is submitted or awarded."""
        caller = tenant_caller(request)
        return await asyncio.to_thread(_mandates(request).revoke, caller, mandate_id)


@get(
    "/v1/contracts/{contract_id:str}/receipts",
    responses=PROBLEM_RESPONSES,
    sync_to_thread=True,
    tags=["mandates"],
    opt=needs(AccessScope.READ),
)
def contract_receipts(request: Request[Any, Any, State], contract_id: str) -> ReceiptList:
    """The contract's AP2 receipts signed by the CA (checkout at award, payment at settlement);
    verify them with the keys of /.well-known/aex-ca.json."""
    caller = provider_or_tenant_caller(request)
    return _mandates(request).receipts(caller, contract_id)


MANDATE_HANDLERS = [MandateController, contract_receipts]

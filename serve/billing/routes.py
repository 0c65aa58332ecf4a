"""Plans, usage, invoices and the platform's revenue over HTTP: thin handlers over
serve.billing.usecases (docs/payments.md "Billing")."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK

from aex.core import AccessScope
from serve.billing.schemas import (
    InvoicePage,
    InvoiceView,
    PlanChanged,
    PlanView,
    RevenueView,
    UsageView,
)
from serve.billing.usecases import Billing
from serve.gateway.callers import needs, operator_caller, tenant_caller
from serve.gateway.openapi import shapes
from serve.gateway.paging import Cursor, Limit
from serve.gateway.problems import PROBLEM_RESPONSES
from serve.gateway.schemas import PlanPurchase
from serve.identity.security import Principal

Json = dict[str, Any]


def _billing(request: Request[Any, Any, State]) -> Billing:
    found: Billing = request.app.state.billing
    return found


class BillingController(Controller):
    path = "/v1"
    tags = ["billing"]  # noqa: RUF012
    dependencies = {"caller": Provide(tenant_caller, sync_to_thread=False)}  # noqa: RUF012

    @get(
        "/plan",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=PlanView),
    )
    def plan(self, caller: Principal, request: Request[Any, Any, State]) -> Json:
        """The caller's plan, its paid term and its quotas."""
        return _billing(request).plan(caller)

    @post(
        "/plan",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.WALLETS) | shapes(ok=PlanChanged),
    )
    async def change_plan(
        self, caller: Principal, data: PlanPurchase, request: Request[Any, Any, State]
    ) -> Json:
        """Buys, upgrades or downgrades the plan, prorated; 402 when the wallet cannot pay."""
        billing = _billing(request)
        return await asyncio.to_thread(billing.change_plan, caller, data.plan, data.agents)

    @get(
        "/usage",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=UsageView),
    )
    def usage(
        self,
        caller: Principal,
        request: Request[Any, Any, State],
        period: Annotated[str | None, Parameter(max_length=7, default=None)],
    ) -> Json:
        """Verification calls, charged and arrears; the plan, its limits and consumption; what
        was charged in `period` (a UTC month YYYY-MM, default the current one)."""
        return _billing(request).usage(caller, period)

    @get(
        "/invoices",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=InvoicePage),
    )
    def invoices(
        self,
        caller: Principal,
        request: Request[Any, Any, State],
        limit: Limit,
        starting_after: Cursor = None,
    ) -> Json:
        """The caller's invoices, newest first: `data` and `has_more`."""
        return _billing(request).invoices(caller, limit=limit, starting_after=starting_after)

    @get(
        "/invoices/{invoice_id:str}",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=InvoiceView),
    )
    def invoice(
        self, caller: Principal, request: Request[Any, Any, State], invoice_id: str
    ) -> Json:
        return _billing(request).invoice(caller, invoice_id)


@get(
    "/v1/admin/revenue",
    responses=PROBLEM_RESPONSES,
    sync_to_thread=True,
    tags=["operator"],
    opt=needs(AccessScope.OPERATOR) | shapes(ok=RevenueView),
)
def revenue(
    request: Request[Any, Any, State],
    currency: Annotated[str, Parameter(pattern=r"^[A-Z]{3}$", default="USD")],
    period: Annotated[str | None, Parameter(max_length=7, default=None)],
) -> Json:
    """The platform's revenue by stream (fees, verification, plans, breakage), optionally for
    one UTC month (YYYY-MM)."""
    operator_caller(request)
    return _billing(request).revenue(currency, period)


BILLING_HANDLERS = (BillingController, revenue)

"""The token bank's routes: the operator issues vouchers and sweeps expired credit, tenants
redeem (serve/tokenbank/vouchers.py; docs/payments.md "Token bank")."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from aex.core import AccessScope
from serve.gateway.callers import SHOWN_ONCE, needs, operator_caller, tenant_caller
from serve.gateway.problems import PROBLEM_RESPONSES
from serve.identity.security import Principal
from serve.tokenbank.vouchers import (
    CreditExpirySweep,
    CreditSweepResult,
    VoucherCreate,
    VoucherIssued,
    VoucherRedeem,
    VoucherRedemption,
    Vouchers,
    VoucherView,
)


def _vouchers(request: Request[Any, Any, State]) -> Vouchers:
    vouchers: Vouchers = request.app.state.vouchers
    return vouchers


class VoucherAdminController(Controller):
    path = "/v1/admin"
    tags = ["operator", "token bank"]  # noqa: RUF012
    dependencies = {"caller": Provide(operator_caller, sync_to_thread=False)}  # noqa: RUF012

    @post(
        "/vouchers",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        cache_control=SHOWN_ONCE,
        opt=needs(AccessScope.OPERATOR),
    )
    def issue_voucher(
        self, caller: Principal, data: VoucherCreate, request: Request[Any, Any, State]
    ) -> VoucherIssued:
        """Issues a voucher of prepaid credit; its `code` is shown in this answer only."""
        return _vouchers(request).issue(data)

    @get(
        "/vouchers/{voucher_id:str}",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.OPERATOR),
    )
    def voucher(
        self, caller: Principal, voucher_id: str, request: Request[Any, Any, State]
    ) -> VoucherView:
        return _vouchers(request).voucher(voucher_id)

    @post(
        "/credit/expire",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        opt=needs(AccessScope.OPERATOR),
    )
    def expire_credit(
        self, caller: Principal, data: CreditExpirySweep, request: Request[Any, Any, State]
    ) -> CreditSweepResult:
        """Moves every wallet's credit expired at `now_ms` (default: now) to breakage."""
        return _vouchers(request).expire_due(data.now_ms)


class VoucherController(Controller):
    path = "/v1/vouchers"
    tags = ["token bank"]  # noqa: RUF012
    dependencies = {"caller": Provide(tenant_caller, sync_to_thread=False)}  # noqa: RUF012

    @post(
        "/redeem",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.WALLETS),
    )
    async def redeem(
        self, caller: Principal, data: VoucherRedeem, request: Request[Any, Any, State]
    ) -> VoucherRedemption:
        """Redeems a voucher's code into the caller's credit bucket (once per tenant)."""
        return await _vouchers(request).redeem(caller, data)


VOUCHER_HANDLERS = [VoucherAdminController, VoucherController]

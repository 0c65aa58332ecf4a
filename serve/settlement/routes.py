"""Deposits, withdrawals, balance and history: money moves only through the core ledger.

The services come from the application state and the caller from one dependency: Litestar
resolves several dependencies of one handler concurrently in a task group, which costs more
than these hot routes do themselves (bench/bench_api.py).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED

from aex.core import AccessScope
from serve.gateway.asgi import IDEMPOTENCY_KEY_SCOPE_KEY, PRINCIPAL_SCOPE_KEY, Scope
from serve.gateway.callers import needs, tenant_caller
from serve.gateway.paging import Limit
from serve.gateway.pipeline import HotRoute
from serve.gateway.problems import PROBLEM_RESPONSES, ProblemError
from serve.gateway.schemas import (
    BalanceView,
    DepositCreate,
    MoneyMovement,
    TransactionPage,
    WithdrawalCreate,
)
from serve.identity.security import Principal, PrincipalKind
from serve.settlement.wallets import Wallets

_CURRENCY = "[A-Z]{3}"
DEFAULT_CURRENCY = "USD"
Currency = Annotated[str, Parameter(pattern=f"^{_CURRENCY}$", default=DEFAULT_CURRENCY)]
BALANCE_PATH = "/v1/balance"


def _idempotency_key(request: Request[Any, Any, State]) -> str | None:
    key = request.scope.get(IDEMPOTENCY_KEY_SCOPE_KEY)
    return None if key is None else str(key)


def _wallets(request: Request[Any, Any, State]) -> Wallets:
    wallets: Wallets = request.app.state.wallets
    return wallets


class WalletController(Controller):
    path = "/v1"
    tags = ["wallets"]  # noqa: RUF012
    dependencies = {"caller": Provide(tenant_caller, sync_to_thread=False)}  # noqa: RUF012

    @post(
        "/deposits",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.WALLETS),
    )
    async def deposit(
        self, caller: Principal, data: DepositCreate, request: Request[Any, Any, State]
    ) -> MoneyMovement:
        """Funds the caller's wallet; exact decimal amounts (no floats); Idempotency-Key safe."""
        return await _wallets(request).deposit(caller, data, _idempotency_key(request))

    @post(
        "/withdrawals",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.WALLETS),
    )
    async def withdraw(
        self, caller: Principal, data: WithdrawalCreate, request: Request[Any, Any, State]
    ) -> MoneyMovement:
        """Moves available funds out; 422 ledger-insufficient-funds when they do not suffice."""
        return await _wallets(request).withdraw(caller, data, _idempotency_key(request))

    @get(
        "/balance",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=False,
        dependencies={},
        opt=needs(AccessScope.READ),
    )
    def balance(self, currency: Currency, request: Request[Any, Any, State]) -> BalanceView:
        return _wallets(request).balance(tenant_caller(request), currency)

    @get(
        "/transactions",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=False,
        opt=needs(AccessScope.READ),
    )
    def transactions(
        self,
        caller: Principal,
        currency: Currency,
        request: Request[Any, Any, State],
        limit: Limit,
        starting_after: Annotated[
            int | None,
            Parameter(
                ge=1, le=2**63 - 1, description="the previous page's `next_cursor` (an entry id)"
            ),
        ] = None,
    ) -> TransactionPage:
        """The caller's journal entries in one currency, newest first, a page at a time."""
        return _wallets(request).history(
            caller, currency, limit=limit, starting_after=starting_after
        )


_CURRENCY_QUERY = re.compile(f"currency=({_CURRENCY})".encode())
_encode = msgspec.json.Encoder().encode


def balance_hot_route(wallets: Wallets, needed: AccessScope | str | None) -> HotRoute:
    """`GET /v1/balance` in its plain case, answered by the gateway without Litestar's
    per-request objects (serve/gateway/pipeline.py `HotRoute`): a tenant credential holding
    the route's declared scope (`needed`, read from the Litestar route), no query or only a
    well-formed `currency`. The same `Wallets.balance` and the same JSON as the route above;
    every other request (each refusal included: another principal, a missing scope, an
    unknown parameter, an unknown currency) goes to that route, which is its contract and its
    OpenAPI declaration (tests/serve/test_hot_routes.py holds the two equal)."""

    def answer(scope: Scope) -> bytes | None:
        principal: Principal | None = scope.get(PRINCIPAL_SCOPE_KEY)
        if principal is None or principal.kind is not PrincipalKind.TENANT:
            return None
        if needed is None or needed not in principal.scopes:
            return None
        query: bytes = scope["query_string"]
        if not query:
            currency = DEFAULT_CURRENCY
        elif (given := _CURRENCY_QUERY.fullmatch(query)) is not None:
            currency = given[1].decode()
        else:
            return None
        try:
            return _encode(wallets.balance(principal, currency))
        except ProblemError:  # refused (an unknown currency): the route says so
            return None

    return answer

"""Deposits, withdrawals, balance and history: money moves only through the core ledger."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import Provide
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED

from serve.middleware._asgi import IDEMPOTENCY_KEY_SCOPE_KEY
from serve.routes.callers import tenant_caller
from serve.schemas import (
    BalanceView,
    DepositCreate,
    MoneyMovement,
    TransactionView,
    WithdrawalCreate,
)
from serve.security import Principal
from serve.wallets import Wallets

Currency = Annotated[str, Parameter(pattern=r"^[A-Z]{3}$", default="USD")]


def _idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.scope.get(IDEMPOTENCY_KEY_SCOPE_KEY)
    return None if key is None else str(key)


class WalletController(Controller):
    path = "/v1"
    tags = ["wallets"]  # noqa: RUF012
    dependencies = {  # noqa: RUF012
        "caller": Provide(tenant_caller, sync_to_thread=False),
        "idempotency_key": Provide(_idempotency_key, sync_to_thread=False),
    }

    @post("/deposits", status_code=HTTP_201_CREATED, sync_to_thread=True)
    def deposit(
        self, caller: Principal, wallets: Wallets, data: DepositCreate, idempotency_key: str | None
    ) -> MoneyMovement:
        """Funds the caller's wallet; exact decimal amounts (no floats); Idempotency-Key safe."""
        return wallets.deposit(caller, data, idempotency_key)

    @post("/withdrawals", status_code=HTTP_201_CREATED, sync_to_thread=True)
    def withdraw(
        self,
        caller: Principal,
        wallets: Wallets,
        data: WithdrawalCreate,
        idempotency_key: str | None,
    ) -> MoneyMovement:
        """Moves available funds out; 422 ledger-insufficient-funds when they do not suffice."""
        return wallets.withdraw(caller, data, idempotency_key)

    @get("/balance", sync_to_thread=True)
    def balance(self, caller: Principal, wallets: Wallets, currency: Currency) -> BalanceView:
        return wallets.balance(caller, currency)

    @get("/transactions", sync_to_thread=True)
    def transactions(
        self,
        caller: Principal,
        wallets: Wallets,
        currency: Currency,
        limit: Annotated[int, Parameter(ge=1, le=500, default=100)],
    ) -> list[TransactionView]:
        """The caller's journal, newest first."""
        return wallets.history(caller, currency, limit)

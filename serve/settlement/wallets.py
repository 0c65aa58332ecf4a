"""Wallet use cases: every money movement goes through aex/core/ledger.py's `apply`.

Rules decided here (the driver's, not the ledger's): a tenant moves money only in its own
wallets (the body's `tenant_id` must be the caller's: 403 otherwise); a tenant has one wallet
per currency, `tenant:<tenant_id>:<CUR>`; the ledger operation id comes from the
Idempotency-Key when there is one (so even a retry that outlives the stored response cannot
move money twice), else it is fresh.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aex.core import Money, Rejected, check_currency, format_amount, format_minor, parse_money
from aex.core.ledger import Applied, Deposit, Wallet, Withdraw
from aex.core.reasons import LedgerRejectReason
from serve.gateway.paging import page_size
from serve.gateway.problems import FieldError, ProblemError, problem_for_rejected
from serve.gateway.schemas import (
    BalanceView,
    DepositCreate,
    MoneyMovement,
    TransactionPage,
    TransactionView,
    WithdrawalCreate,
)
from serve.identity.security import Principal, next_id
from serve.stores.base import LedgerStore


def wallet_id(tenant_id: str, currency: str) -> str:
    return f"tenant:{tenant_id}:{currency}"


@dataclass(frozen=True, slots=True)
class Wallets:
    ledger: LedgerStore

    async def deposit(
        self, caller: Principal, body: DepositCreate, idempotency_key: str | None
    ) -> MoneyMovement:
        tenant_id, money = _own_money(caller, body.tenant_id, body)
        operation = Deposit(
            _operation_id("dep", idempotency_key), wallet_id(tenant_id, money.currency), money
        )
        return self._moved(tenant_id, money, await self.ledger.submit(operation))

    async def withdraw(
        self, caller: Principal, body: WithdrawalCreate, idempotency_key: str | None
    ) -> MoneyMovement:
        tenant_id, money = _own_money(caller, body.tenant_id, body)
        operation = Withdraw(
            _operation_id("wdr", idempotency_key), wallet_id(tenant_id, money.currency), money
        )
        return self._moved(tenant_id, money, await self.ledger.submit(operation))

    def balance(self, caller: Principal, currency: str) -> BalanceView:
        tenant_id = _tenant_of(caller)
        unknown = check_currency(currency)
        if unknown is not None:
            raise problem_for_rejected(unknown)
        wallet = self.ledger.wallet(wallet_id(tenant_id, currency))
        return _balance(tenant_id, currency, wallet)

    def history(
        self, caller: Principal, currency: str, *, limit: int, starting_after: int | None = None
    ) -> TransactionPage:
        """The wallet's journal entries, newest first, a keyset page on the entry id; a cursor
        that names none of this wallet's entries is 422 naming `starting_after`."""
        wallet = wallet_id(_tenant_of(caller), currency)
        if starting_after is not None and not self.ledger.has_entry(wallet, starting_after):
            raise ProblemError(
                422,
                "invalid-request",
                "starting_after names none of the rows listed",
                errors=(FieldError("starting_after", "unknown_entry"),),
            )
        limit = page_size(limit)
        rows = self.ledger.history(wallet, limit=limit + 1, before_entry_id=starting_after)
        page = [
            TransactionView(
                r.entry_id,
                r.operation_id,
                r.kind,
                format_minor(r.available_change_minor, r.currency),
                format_minor(r.held_change_minor, r.currency),
                r.currency,
                r.created_at_ms,
                format_minor(r.credit_change_minor, r.currency),
            )
            for r in rows[:limit]
        ]
        more = len(rows) > limit
        return TransactionPage(page, more, page[-1].entry_id if more else None)

    def _moved(
        self, tenant_id: str, money: Money, result: Applied | Rejected[LedgerRejectReason]
    ) -> MoneyMovement:
        if isinstance(result, Rejected):
            raise problem_for_rejected(result)
        own = wallet_id(tenant_id, money.currency)
        wallet = next(w for w in result.wallets if w.wallet_id == own)
        balance = _balance(tenant_id, money.currency, wallet)
        return MoneyMovement(
            result.operation_id,
            result.entry.kind.value,
            tenant_id,
            format_amount(money),
            money.currency,
            result.replayed,
            balance,
        )


def _balance(tenant_id: str, currency: str, wallet: Wallet | None) -> BalanceView:
    if wallet is None:
        wallet = Wallet(wallet_id(tenant_id, currency), currency, 0, 0)
    expires = wallet.credit_expires_at_ms if wallet.credit_minor > 0 else None
    return BalanceView(
        tenant_id,
        currency,
        format_minor(wallet.available_minor, currency),
        format_minor(wallet.held_minor, currency),
        format_minor(wallet.credit_minor, currency),
        expires,
    )


def _own_money(
    caller: Principal, tenant_id: str, body: DepositCreate | WithdrawalCreate
) -> tuple[str, Money]:
    if tenant_id != _tenant_of(caller):
        raise ProblemError(
            403,
            "tenant-mismatch",
            "money moves only in the caller's own wallets",
            errors=(FieldError("tenant_id", "not_the_caller"),),
        )
    money = parse_money(body.amount, body.currency)
    if isinstance(money, Rejected):
        raise problem_for_rejected(money)
    return tenant_id, money


def _operation_id(prefix: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return f"{prefix}:{next_id()}"
    return f"{prefix}:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}"


def _tenant_of(caller: Principal) -> str:
    assert caller.tenant_id is not None
    return caller.tenant_id

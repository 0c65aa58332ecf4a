# Rule: every way an operation can be refused is named here, and only here.
#
# Theory of operation (after TigerBeetle's result codes and h11's error_status_hint): one
# StrEnum per operation, members listed in precedence order. Checks run in enum order, so the
# first failing check is the answer, deterministically. Each reason carries an HTTP status hint;
# `serve/` turns a `Rejected` into RFC 9457 problem+json in exactly one place. The core never
# imports anything HTTP: the hint is a plain int.
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

__all__ = [
    "CredentialRejectReason",
    "LedgerRejectReason",
    "MoneyRejectReason",
    "QuotaRejectReason",
    "Reason",
    "Rejected",
]


class Reason(StrEnum):
    """Base of every rejection-reason enum; members are in precedence order."""

    @property
    def http_status(self) -> int:
        # A hint for drivers: 422 unless the reason is listed as something more specific.
        return HTTP_STATUS_HINT.get(self.value, 422)


R = TypeVar("R", bound=Reason)


@dataclass(frozen=True, slots=True)
class Rejected(Generic[R]):
    """A refusal as a value: the reason, the offending field (dotted path) and a human detail."""

    reason: R
    field: str
    detail: str = ""

    @property
    def http_status(self) -> int:
        return self.reason.http_status


class MoneyRejectReason(Reason):
    AMOUNT_TYPE_INVALID = "amount_type_invalid"
    AMOUNT_NOT_FINITE = "amount_not_finite"
    AMOUNT_SYNTAX_INVALID = "amount_syntax_invalid"
    CURRENCY_UNKNOWN = "currency_unknown"
    AMOUNT_PRECISION_EXCEEDED = "amount_precision_exceeded"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"


class LedgerRejectReason(Reason):
    """Why aex/core/ledger.py refused an operation; checks run in this order (docs/ledger.md)."""

    # The operation_id was applied before with different content (an idempotency-key reuse).
    IDEMPOTENCY_CONFLICT = "ledger_idempotency_conflict"
    # Deposit, withdraw and hold move a strictly positive amount.
    AMOUNT_NOT_POSITIVE = "ledger_amount_not_positive"
    # Withdraw or hold from a wallet that was never opened (a deposit or a capture opens one).
    ACCOUNT_UNKNOWN = "ledger_account_unknown"
    # Capture, release or refund of a hold_id that was never held.
    HOLD_UNKNOWN = "ledger_hold_unknown"
    # A hold under a hold_id that is already taken (by another operation_id).
    HOLD_ID_TAKEN = "ledger_hold_id_taken"
    # Capture or release of a closed hold, refund of a hold that is not captured.
    HOLD_TRANSITION_ILLEGAL = "ledger_hold_transition_illegal"
    # The money's currency is not the wallet's (a wallet holds one currency).
    CURRENCY_MISMATCH = "ledger_currency_mismatch"
    # The wallet's available balance is below the amount (for a refund: the payee's).
    INSUFFICIENT_FUNDS = "ledger_insufficient_funds"
    # A wallet bucket would exceed limits.balance_minor_max.
    BALANCE_LIMIT_EXCEEDED = "ledger_balance_limit_exceeded"


# Reason value -> HTTP status, where 422 (a well-formed request that breaks a rule) is wrong.
# Keys are the enum values, which are unique across all enums in this module (tested).
HTTP_STATUS_HINT: dict[str, int] = {
    LedgerRejectReason.IDEMPOTENCY_CONFLICT.value: 409,
    LedgerRejectReason.ACCOUNT_UNKNOWN.value: 404,
    LedgerRejectReason.HOLD_UNKNOWN.value: 404,
    LedgerRejectReason.HOLD_ID_TAKEN.value: 409,
}


class QuotaRejectReason(Reason):
    """Per-plan quotas (spec "Per-Tenant Quotas"), in the order a request meets them."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    DAILY_QUOTA_EXCEEDED = "daily_quota_exceeded"
    MAX_AGENTS_EXCEEDED = "max_agents_exceeded"
    CONCURRENT_TASKS_EXCEEDED = "concurrent_tasks_exceeded"


class CredentialRejectReason(Reason):
    """Why a presented credential is not a credential (format only; lookups are the driver's)."""

    CREDENTIAL_MISSING = "credential_missing"
    CREDENTIAL_MALFORMED = "credential_malformed"


HTTP_STATUS_HINT.update(
    {
        QuotaRejectReason.PAYLOAD_TOO_LARGE.value: 413,
        QuotaRejectReason.DAILY_QUOTA_EXCEEDED.value: 429,
        QuotaRejectReason.MAX_AGENTS_EXCEEDED.value: 403,
        QuotaRejectReason.CONCURRENT_TASKS_EXCEEDED.value: 403,
        CredentialRejectReason.CREDENTIAL_MISSING.value: 401,
        CredentialRejectReason.CREDENTIAL_MALFORMED.value: 401,
    }
)

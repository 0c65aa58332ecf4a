# Rule: every posting rule of the ledger (which accounts an operation debits and credits, by how
# much, and when it is refused) is decided here and only here.
#
# Theory of operation (docs/ledger.md has the tables). Double entry: every operation produces one
# JournalEntry whose postings sum to zero per currency, so the sum over all accounts stays zero
# forever. Accounts:
# - EXTERNAL_FUNDING_ACCOUNT: the world outside AEX (cards, banks). Deposits debit it, withdrawals
#   credit it; its balance is minus the money held inside AEX, so it is the one account that may
#   be negative. Multi-currency: one balance per currency.
# - PLATFORM_REVENUE_ACCOUNT: the 15% fees. Credited by a capture, debited only by the refund of
#   that same capture, so it never goes negative. Multi-currency.
# - Wallets (consumers and providers alike): ids chosen by drivers ("tenant:<id>"). A wallet is one
#   row in one currency with two buckets, `available_minor` and `held_minor`, both >= 0. A deposit
#   to an unknown wallet opens it in the deposit's currency; a capture opens the payee's wallet.
# Holds (escrow of a contract's price at award) move through HOLD_TRANSITIONS:
# OPEN -> CAPTURED | RELEASED, CAPTURED -> REFUNDED. A wallet's held bucket always equals the sum
# of its OPEN holds.
#
# Sans-I/O shape (after h11): a driver calls `touched(op)` to learn which rows to load (holds
# first, then `touched(op, holds)` for the wallets those holds name, plus the stored record of
# op.operation_id), builds a LedgerView, calls `apply`, and writes `Applied.wallets`,
# `Applied.holds`, `Applied.entry` and the Applied itself (the idempotency record) in one
# transaction. A Rejected or a replayed Applied writes nothing. System account balances are never
# loaded (no rule reads them, and loading them would make every capture contend on one hot row):
# drivers add the system postings as deltas, or sum the journal.
#
# Idempotency: an operation's fingerprint is the SHA-256 of its canonical JSON. The same
# operation_id with the same fingerprint returns the first Applied again (replayed=True); with a
# different fingerprint it is Rejected(IDEMPOTENCY_CONFLICT). Rejections are not recorded, so a
# refused operation_id may be retried (for instance after a deposit cures insufficient funds).
#
# Token bank (issue 15 item 3; docs/payments.md "Token bank"): prepaid marketplace credit is a
# third wallet bucket, CREDIT, never withdrawn (Withdraw and Charge take the AVAILABLE cash
# only). Vouchers post nothing when issued; a redemption posts CREDIT_OUTSTANDING_ACCOUNT ->
# the wallet's credit bucket. A Hold spends credit before cash and records the credit part on
# the hold; a Release (and a Refund) gives that part back as credit, never as cash. A Capture
# pays the provider in cash as before: the credit part is settled by the platform, which
# discharges the liability (credit_outstanding += c) and brings the same amount of cash in from
# outside (external_funding -= c). Expired credit goes to BREAKAGE_REVENUE_ACCOUNT through
# ExpireCredit, run by a sweep with an explicit now_ms. Two sub-ledgers each sum to zero:
#   cash:   external_funding + revenue accounts + sum(available) + sum(cash part of holds) = 0
#   credit: credit_outstanding + breakage_revenue + sum(credit) + sum(credit part of holds) = 0
# A wallet's credit has one expiry, credit_expires_at_ms: each redemption sets it to the later
# of the current expiry and the voucher's (the voucher's alone when the bucket was empty).
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeAlias, TypeVar

from aex.core import limits
from aex.core.fees import BPS_DENOMINATOR, split_fee
from aex.core.money import CURRENCY_EXPONENTS, Money
from aex.core.reasons import LedgerRejectReason, Rejected

__all__ = [
    "BILLING_REVENUE_ACCOUNTS",
    "BREAKAGE_REVENUE_ACCOUNT",
    "CREDIT_OUTSTANDING_ACCOUNT",
    "EXTERNAL_FUNDING_ACCOUNT",
    "HOLD_TRANSITIONS",
    "PLAN_REVENUE_ACCOUNT",
    "PLATFORM_REVENUE_ACCOUNT",
    "SYSTEM_ACCOUNTS",
    "VERIFICATION_REVENUE_ACCOUNT",
    "Applied",
    "Bucket",
    "Capture",
    "Charge",
    "Deposit",
    "ExpireCredit",
    "Hold",
    "HoldEvent",
    "HoldRecord",
    "HoldState",
    "JournalEntry",
    "LedgerState",
    "LedgerView",
    "Operation",
    "OperationKind",
    "Posting",
    "Rebate",
    "RedeemCredit",
    "Refund",
    "Release",
    "Touched",
    "Wallet",
    "Withdraw",
    "applied_from_json",
    "applied_to_json",
    "apply",
    "apply_to_state",
    "check_entry",
    "fingerprint",
    "operation_from_json",
    "operation_to_json",
    "total_by_currency",
    "touched",
]

EXTERNAL_FUNDING_ACCOUNT: Final = "system:external_funding"
PLATFORM_REVENUE_ACCOUNT: Final = "system:platform_revenue"
# --- Billing (issue 15 item 4): revenue accounts of the verification API and the plans -------
# Credited by a Charge (a tenant's available cash -> revenue), debited only by a Rebate of
# plan revenue that a Charge collected (a prorated downgrade), so neither goes negative.
VERIFICATION_REVENUE_ACCOUNT: Final = "system:verification_revenue"
PLAN_REVENUE_ACCOUNT: Final = "system:plan_revenue"
BILLING_REVENUE_ACCOUNTS: Final = frozenset({VERIFICATION_REVENUE_ACCOUNT, PLAN_REVENUE_ACCOUNT})
# --- end billing -----------------------------------------------------------------------------
# --- Token bank (issue 15 item 3) --------------------------------------------------------------
# credit_outstanding: debited by a redemption, credited back when credit is spent (a capture's
# credit part) and debited again by the refund of that capture: minus the credit redeemed and
# not yet spent (breakage included, docs/payments.md). breakage_revenue: expired credit.
CREDIT_OUTSTANDING_ACCOUNT: Final = "system:credit_outstanding"
BREAKAGE_REVENUE_ACCOUNT: Final = "system:breakage_revenue"
# --- end token bank ------------------------------------------------------------------------------
SYSTEM_ACCOUNTS: Final = frozenset(
    {
        EXTERNAL_FUNDING_ACCOUNT,
        PLATFORM_REVENUE_ACCOUNT,
        *BILLING_REVENUE_ACCOUNTS,
        CREDIT_OUTSTANDING_ACCOUNT,
        BREAKAGE_REVENUE_ACCOUNT,
    }
)
# Wallet ids may not take the system prefix, so no wallet can alias a system account.
_SYSTEM_PREFIX: Final = "system:"
assert all(account.startswith(_SYSTEM_PREFIX) for account in SYSTEM_ACCOUNTS)
# The largest entry is the refund of a credit-funded capture: six postings.
assert limits.postings_per_entry_max >= 6


class Bucket(StrEnum):
    """The balances of a wallet. System accounts post to AVAILABLE only.

    AVAILABLE is cash, HELD the escrow of open holds (cash and credit), CREDIT prepaid
    marketplace credit (the token bank): spendable on work, never withdrawn.
    """

    AVAILABLE = "available"
    HELD = "held"
    CREDIT = "credit"


class HoldState(StrEnum):
    OPEN = "open"
    CAPTURED = "captured"
    RELEASED = "released"
    REFUNDED = "refunded"


class HoldEvent(StrEnum):
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"


# The hold lifecycle (STYLE.md 4): a missing key is Rejected(HOLD_TRANSITION_ILLEGAL).
HOLD_TRANSITIONS: Final[Mapping[tuple[HoldState, HoldEvent], HoldState]] = MappingProxyType(
    {
        (HoldState.OPEN, HoldEvent.CAPTURE): HoldState.CAPTURED,
        (HoldState.OPEN, HoldEvent.RELEASE): HoldState.RELEASED,
        (HoldState.CAPTURED, HoldEvent.REFUND): HoldState.REFUNDED,
    }
)


class OperationKind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"
    # Billing (issue 15 item 4)
    CHARGE = "charge"
    REBATE = "rebate"
    # Token bank (issue 15 item 3)
    REDEEM = "redeem"
    EXPIRE = "expire"


def _check_id(value: str) -> None:
    assert type(value) is str
    assert 0 < len(value) <= limits.ledger_id_chars_max


def _check_wallet_id(wallet_id: str) -> None:
    _check_id(wallet_id)
    assert not wallet_id.startswith(_SYSTEM_PREFIX), f"{wallet_id!r} aliases a system account"


# --- Operations (shape is asserted; business rules are rejections from `apply`) ---------------


@dataclass(frozen=True, slots=True)
class Deposit:
    """External funding -> the wallet's available balance (opens the wallet if unknown)."""

    kind: ClassVar[OperationKind] = OperationKind.DEPOSIT
    operation_id: str
    wallet_id: str
    money: Money

    def __post_init__(self) -> None:
        _check_id(self.operation_id)
        _check_wallet_id(self.wallet_id)
        assert isinstance(self.money, Money)


@dataclass(frozen=True, slots=True)
class Withdraw:
    """The wallet's available balance -> external funding."""

    kind: ClassVar[OperationKind] = OperationKind.WITHDRAW
    operation_id: str
    wallet_id: str
    money: Money

    def __post_init__(self) -> None:
        _check_id(self.operation_id)
        _check_wallet_id(self.wallet_id)
        assert isinstance(self.money, Money)


@dataclass(frozen=True, slots=True)
class Hold:
    """Escrow at award: the payer wallet's available -> its held balance, under `hold_id`."""

    kind: ClassVar[OperationKind] = OperationKind.HOLD
    operation_id: str
    hold_id: str
    wallet_id: str
    money: Money

    def __post_init__(self) -> None:
        _check_id(self.operation_id)
        _check_id(self.hold_id)
        _check_wallet_id(self.wallet_id)
        assert isinstance(self.money, Money)


@dataclass(frozen=True, slots=True)
class Capture:
    """Completion: the held price leaves the payer; payee gets price − fee, platform the fee."""

    kind: ClassVar[OperationKind] = OperationKind.CAPTURE
    operation_id: str
    hold_id: str
    payee_wallet_id: str
    fee_bps: int

    def __post_init__(self) -> None:
        _check_id(self.operation_id)
        _check_id(self.hold_id)
        _check_wallet_id(self.payee_wallet_id)
        assert type(self.fee_bps) is int
        assert 0 <= self.fee_bps <= BPS_DENOMINATOR


@dataclass(frozen=True, slots=True)
class Release:
    """Failure or cancellation: the held price goes back to the payer's available balance."""

    kind: ClassVar[OperationKind] = OperationKind.RELEASE
    operation_id: str
    hold_id: str

    def __post_init__(self) -> None:
        _check_id(self.operation_id)
        _check_id(self.hold_id)


@dataclass(frozen=True, slots=True)
class Refund:
    """Reverses a captured hold: payee and platform give back their shares to the payer.

    The payee's available balance must cover its payout (else INSUFFICIENT_FUNDS: the money was
    already withdrawn and must be recovered outside the ledger); the platform returns its fee.
    """

    kind: ClassVar[OperationKind] = OperationKind.REFUND
    operation_id: str
    hold_id: str

    def __post_init__(self) -> None:
        _check_id(self.operation_id)
        _check_id(self.hold_id)


# --- Billing operations (issue 15 item 4; docs/payments.md "Billing") -----------------------


@dataclass(frozen=True, slots=True)
class Charge:
    """A bill paid from cash: the wallet's available balance -> a billing revenue account.

    Charges are paid from the available bucket only (never the held escrow). A wallet that
    does not cover the amount is refused with INSUFFICIENT_FUNDS and nothing is written.
    """

    kind: ClassVar[OperationKind] = OperationKind.CHARGE
    operation_id: str
    wallet_id: str
    money: Money
    revenue_account: str

    def __post_init__(self) -> None:
        _check_id(self.operation_id)
        _check_wallet_id(self.wallet_id)
        assert isinstance(self.money, Money)
        assert self.revenue_account in BILLING_REVENUE_ACCOUNTS


@dataclass(frozen=True, slots=True)
class Rebate:
    """A prorated credit back: a billing revenue account -> the wallet's available balance.

    The driver rebates only what a Charge to the same account collected for the same term
    (aex/core/billing.py `plan_change` bounds it), so the revenue account never goes negative.
    """

    kind: ClassVar[OperationKind] = OperationKind.REBATE
    operation_id: str
    wallet_id: str
    money: Money
    revenue_account: str

    def __post_init__(self) -> None:
        _check_id(self.operation_id)
        _check_wallet_id(self.wallet_id)
        assert isinstance(self.money, Money)
        assert self.revenue_account in BILLING_REVENUE_ACCOUNTS


# --- end billing operations ------------------------------------------------------------------

# --- Token bank operations (issue 15 item 3; docs/payments.md "Token bank") ----------------------


@dataclass(frozen=True, slots=True)
class RedeemCredit:
    """A voucher's value: credit_outstanding -> the wallet's credit bucket (opens the wallet).

    The wallet's credit then expires at the later of its current expiry and `expires_at_ms`
    (at `expires_at_ms` alone when its credit bucket was empty).
    """

    kind: ClassVar[OperationKind] = OperationKind.REDEEM
    operation_id: str
    wallet_id: str
    money: Money
    expires_at_ms: int

    def __post_init__(self) -> None:
        _check_id(self.operation_id)
        _check_wallet_id(self.wallet_id)
        assert isinstance(self.money, Money)
        assert type(self.expires_at_ms) is int
        assert self.expires_at_ms >= 0


@dataclass(frozen=True, slots=True)
class ExpireCredit:
    """Breakage: all of the wallet's credit -> breakage_revenue, once `now_ms` reached its expiry.

    Refused with CREDIT_NOT_EXPIRED when the wallet has no credit or it has not expired at
    `now_ms` (a sweep's race with a redemption that extended it). Credit inside open holds is
    committed to work and does not expire; released after its expiry, the next sweep takes it.
    """

    kind: ClassVar[OperationKind] = OperationKind.EXPIRE
    operation_id: str
    wallet_id: str
    currency: str
    now_ms: int

    def __post_init__(self) -> None:
        _check_id(self.operation_id)
        _check_wallet_id(self.wallet_id)
        assert self.currency in CURRENCY_EXPONENTS
        assert type(self.now_ms) is int
        assert self.now_ms >= 0


# --- end token bank operations -------------------------------------------------------------------

Operation: TypeAlias = (
    Deposit
    | Withdraw
    | Hold
    | Capture
    | Release
    | Refund
    | Charge
    | Rebate
    | RedeemCredit
    | ExpireCredit
)
_OPERATION_TYPES: Final[Mapping[OperationKind, type[Operation]]] = MappingProxyType(
    {
        t.kind: t
        for t in (
            Deposit,
            Withdraw,
            Hold,
            Capture,
            Release,
            Refund,
            Charge,
            Rebate,
            RedeemCredit,
            ExpireCredit,
        )
    }
)
assert set(_OPERATION_TYPES) == set(OperationKind)


# --- Records: postings, entries, wallets, holds ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Posting:
    """One signed movement on one account bucket: positive credits, negative debits."""

    account_id: str
    bucket: Bucket
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        _check_id(self.account_id)
        assert isinstance(self.bucket, Bucket)
        assert type(self.amount_minor) is int
        assert self.amount_minor != 0, "zero postings are never written"
        assert abs(self.amount_minor) <= limits.amount_minor_max
        assert self.currency in CURRENCY_EXPONENTS
        if self.account_id in SYSTEM_ACCOUNTS:
            assert self.bucket is Bucket.AVAILABLE


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """The postings of one applied operation; they sum to zero per currency (checked)."""

    operation_id: str
    kind: OperationKind
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        check_entry(self)


def check_entry(entry: JournalEntry) -> None:
    """Asserts the double-entry invariant: postings sum to zero in every currency.

    Called when an entry is built, and again by drivers on every entry they read back from
    storage (STYLE.md 7: paired asserts), so a corrupted row fails loudly instead of silently
    minting money.
    """
    _check_id(entry.operation_id)
    assert isinstance(entry.kind, OperationKind)
    assert 2 <= len(entry.postings) <= limits.postings_per_entry_max
    sums: dict[str, int] = {}
    for posting in entry.postings:
        assert isinstance(posting, Posting)
        assert posting.amount_minor != 0
        sums[posting.currency] = sums.get(posting.currency, 0) + posting.amount_minor
    assert all(total == 0 for total in sums.values()), f"entry does not balance: {sums}"


@dataclass(frozen=True, slots=True)
class Wallet:
    """A wallet's row: one currency, three buckets, none ever negative.

    `credit_expires_at_ms` is when the credit bucket expires (0: never had credit).
    """

    wallet_id: str
    currency: str
    available_minor: int
    held_minor: int
    credit_minor: int = 0
    credit_expires_at_ms: int = 0

    def __post_init__(self) -> None:
        _check_wallet_id(self.wallet_id)
        assert self.currency in CURRENCY_EXPONENTS
        assert type(self.available_minor) is int
        assert type(self.held_minor) is int
        assert type(self.credit_minor) is int
        assert type(self.credit_expires_at_ms) is int
        assert 0 <= self.available_minor <= limits.balance_minor_max
        assert 0 <= self.held_minor <= limits.balance_minor_max
        assert 0 <= self.credit_minor <= limits.balance_minor_max
        assert self.credit_expires_at_ms >= 0


@dataclass(frozen=True, slots=True)
class HoldRecord:
    """An escrow: `amount_minor` held from `wallet_id`; after capture, who was paid what.

    `credit_minor` is the part of the amount the payer's credit bucket funded (the rest was
    cash): a release or a refund returns that part as credit.
    """

    hold_id: str
    wallet_id: str
    amount_minor: int
    currency: str
    state: HoldState
    payee_wallet_id: str | None = None
    fee_minor: int = 0
    credit_minor: int = 0

    def __post_init__(self) -> None:
        _check_id(self.hold_id)
        _check_wallet_id(self.wallet_id)
        assert type(self.amount_minor) is int
        assert 0 < self.amount_minor <= limits.amount_minor_max
        assert self.currency in CURRENCY_EXPONENTS
        assert isinstance(self.state, HoldState)
        assert 0 <= self.fee_minor <= self.amount_minor
        assert type(self.credit_minor) is int
        assert 0 <= self.credit_minor <= self.amount_minor
        if self.state in (HoldState.CAPTURED, HoldState.REFUNDED):
            assert self.payee_wallet_id is not None
        else:
            assert self.payee_wallet_id is None
            assert self.fee_minor == 0

    @property
    def payout_minor(self) -> int:
        return self.amount_minor - self.fee_minor

    @property
    def cash_minor(self) -> int:
        return self.amount_minor - self.credit_minor


@dataclass(frozen=True, slots=True)
class Applied:
    """An operation's result, and the record a driver stores under its operation_id.

    `wallets` and `holds` are the rows to upsert (wallets sorted by id), `entry` the journal
    entry to append. When `replayed` is True this is the first application's result returned
    again: the driver writes nothing.
    """

    operation_id: str
    fingerprint: str
    entry: JournalEntry
    wallets: tuple[Wallet, ...]
    holds: tuple[HoldRecord, ...]
    replayed: bool = False

    def __post_init__(self) -> None:
        assert self.entry.operation_id == self.operation_id
        assert len(self.fingerprint) == _FINGERPRINT_HEX_CHARS
        assert [w.wallet_id for w in self.wallets] == sorted({w.wallet_id for w in self.wallets})


_FINGERPRINT_HEX_CHARS: Final = 64


@dataclass(frozen=True, slots=True)
class Touched:
    """What a driver loads (and locks, in sorted order) before calling `apply`."""

    operation_id: str
    hold_ids: tuple[str, ...]
    wallet_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LedgerView:
    """The rows one operation touches, as loaded by a driver (absent rows are simply missing).

    `prior` is the stored Applied of an earlier application of the same operation_id, if any.
    """

    wallets: Mapping[str, Wallet] = field(default_factory=dict)
    holds: Mapping[str, HoldRecord] = field(default_factory=dict)
    prior: Applied | None = None


# --- Fingerprints and JSON -------------------------------------------------------------------


def operation_to_json(operation: Operation) -> dict[str, object]:
    """The canonical JSON object of an operation (Money flattened to amount_minor, currency)."""
    body: dict[str, object] = {"kind": operation.kind.value}
    for item in fields(operation):
        value = getattr(operation, item.name)
        if isinstance(value, Money):
            body["amount_minor"] = value.amount_minor
            body["currency"] = value.currency
        else:
            body[item.name] = value
    return body


def operation_from_json(body: Mapping[str, object]) -> Operation:
    """The inverse of `operation_to_json`, for drivers reading their own stored rows (asserts)."""
    operation_type = _OPERATION_TYPES[OperationKind(str(body["kind"]))]
    arguments: dict[str, Any] = {}
    for item in fields(operation_type):
        if item.name == "money":
            amount_minor, currency = body["amount_minor"], body["currency"]
            assert type(amount_minor) is int
            assert type(currency) is str
            arguments["money"] = Money(amount_minor, currency)
        else:
            arguments[item.name] = body[item.name]
    return operation_type(**arguments)


def _canonical_json(body: object) -> bytes:
    # Only str and int values: sorted keys and fixed separators are canonical (RFC 8785 agrees).
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(operation: Operation) -> str:
    """The SHA-256 hex digest of the operation's canonical JSON: equal iff the content is equal."""
    digest = hashlib.sha256(_canonical_json(operation_to_json(operation))).hexdigest()
    assert len(digest) == _FINGERPRINT_HEX_CHARS
    return digest


def applied_to_json(applied: Applied) -> dict[str, object]:
    """The stored form of an Applied (its idempotency record). `replayed` is never stored."""
    return {
        "operation_id": applied.operation_id,
        "fingerprint": applied.fingerprint,
        "kind": applied.entry.kind.value,
        "postings": [
            [p.account_id, p.bucket.value, p.amount_minor, p.currency]
            for p in applied.entry.postings
        ],
        "wallets": [
            [
                w.wallet_id,
                w.currency,
                w.available_minor,
                w.held_minor,
                w.credit_minor,
                w.credit_expires_at_ms,
            ]
            for w in applied.wallets
        ],
        "holds": [
            [
                h.hold_id,
                h.wallet_id,
                h.amount_minor,
                h.currency,
                h.state.value,
                h.payee_wallet_id,
                h.fee_minor,
                h.credit_minor,
            ]
            for h in applied.holds
        ],
    }


def applied_from_json(body: Mapping[str, object]) -> Applied:
    """The inverse of `applied_to_json`; rebuilding re-runs `check_entry` (the paired assert)."""
    postings, wallets, holds = body["postings"], body["wallets"], body["holds"]
    assert isinstance(postings, list)
    assert isinstance(wallets, list)
    assert isinstance(holds, list)
    operation_id = str(body["operation_id"])
    entry = JournalEntry(
        operation_id,
        OperationKind(str(body["kind"])),
        tuple(Posting(a, Bucket(b), m, c) for a, b, m, c in postings),
    )
    return Applied(
        operation_id=operation_id,
        fingerprint=str(body["fingerprint"]),
        entry=entry,
        wallets=tuple(Wallet(*row) for row in wallets),
        # Records stored before the token bank have four wallet columns (defaults fill in).
        holds=tuple(_hold_from_row(h) for h in holds),
    )


def _hold_from_row(row: list[Any]) -> HoldRecord:
    # Records stored before the token bank have seven hold columns (no credit part).
    credit_minor = row[7] if len(row) > 7 else 0
    return HoldRecord(
        row[0], row[1], row[2], row[3], HoldState(row[4]), row[5], row[6], credit_minor
    )


# --- The driver protocol: touched, then apply ------------------------------------------------


def touched(operation: Operation, holds: Mapping[str, HoldRecord] | None = None) -> Touched:
    """Names the rows `apply` needs: the operation's holds and wallets, sorted for lock order.

    Capture, release and refund name their payer (and payee) only through the hold, so a driver
    calls this twice: first to learn `hold_ids`, then again with the loaded holds to learn every
    `wallet_ids` entry. Deposit, withdraw and hold need one call.

    Args:
        operation: the operation about to be applied.
        holds: the hold rows loaded so far (absent ones missing).

    Returns:
        The operation_id (whose stored record the driver also loads), hold ids and wallet ids.
    """
    walleted = Deposit | Withdraw | Charge | Rebate | RedeemCredit | ExpireCredit
    hold_ids = () if isinstance(operation, walleted) else (operation.hold_id,)
    wallet_ids: set[str] = set()
    if isinstance(operation, walleted | Hold):
        wallet_ids.add(operation.wallet_id)
    if isinstance(operation, Capture):
        wallet_ids.add(operation.payee_wallet_id)
    for hold_id in hold_ids:
        record = (holds or {}).get(hold_id)
        if record is not None:
            wallet_ids.add(record.wallet_id)
            if record.payee_wallet_id is not None:
                wallet_ids.add(record.payee_wallet_id)
    return Touched(operation.operation_id, hold_ids, tuple(sorted(wallet_ids)))


def apply(view: LedgerView, operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
    """Applies one operation to the rows it touches.

    Checks run in LedgerRejectReason order, so the first failure is the answer. A replay (same
    operation_id, same content) returns the stored result with replayed=True before any other
    check: the answer to a retried request does not depend on what happened since.

    Args:
        view: the touched wallets and holds, and the stored record of operation.operation_id.
        operation: any Operation (deposit ... refund, billing, token bank).

    Returns:
        Applied with the journal entry and the rows to write, or a replayed Applied.

    Rejections:
        IDEMPOTENCY_CONFLICT, AMOUNT_NOT_POSITIVE, ACCOUNT_UNKNOWN, HOLD_UNKNOWN, HOLD_ID_TAKEN,
        HOLD_TRANSITION_ILLEGAL, CURRENCY_MISMATCH, INSUFFICIENT_FUNDS, BALANCE_LIMIT_EXCEEDED,
        CREDIT_NOT_EXPIRED (see aex/core/reasons.py). A rejection changes nothing.
    """
    operation_fingerprint = fingerprint(operation)
    if view.prior is not None:
        assert view.prior.operation_id == operation.operation_id
        if view.prior.fingerprint != operation_fingerprint:
            return Rejected(
                LedgerRejectReason.IDEMPOTENCY_CONFLICT,
                "operation_id",
                f"{operation.operation_id!r} was applied before with different content",
            )
        return replace(view.prior, replayed=True)
    _check_view_covers(view, operation)
    plan = _plan(view, operation)
    if isinstance(plan, Rejected):
        return plan
    postings, holds = plan
    wallets = _wallets_after(view.wallets, postings, _credit_expiry(view, operation))
    if isinstance(wallets, Rejected):
        return wallets
    entry = JournalEntry(operation.operation_id, operation.kind, postings)
    return Applied(operation.operation_id, operation_fingerprint, entry, wallets, holds)


def _check_view_covers(view: LedgerView, operation: Operation) -> None:
    # A driver bug, not a business rule: every row the view holds is one the operation touches,
    # and every wallet a loaded hold names was loaded too.
    needed = touched(operation, view.holds)
    assert set(view.holds) <= set(needed.hold_ids)
    assert set(view.wallets) <= set(needed.wallet_ids)
    for record in view.holds.values():
        assert record.wallet_id in view.wallets, "a hold's payer wallet must be loaded"
    for wallet_id, wallet in view.wallets.items():
        assert wallet.wallet_id == wallet_id


_Plan: TypeAlias = tuple[tuple[Posting, ...], tuple[HoldRecord, ...]]


def _plan(view: LedgerView, operation: Operation) -> _Plan | Rejected[LedgerRejectReason]:
    # Dispatch on the operation type; each planner runs its checks in enum order.
    if isinstance(operation, Deposit):
        return _plan_deposit(view, operation)
    if isinstance(operation, Withdraw):
        return _plan_withdraw(view, operation)
    if isinstance(operation, Hold):
        return _plan_hold(view, operation)
    if isinstance(operation, Capture):
        return _plan_capture(view, operation)
    if isinstance(operation, Release):
        return _plan_release(view, operation)
    if isinstance(operation, Charge | Rebate):
        return _plan_billing(view, operation)
    if isinstance(operation, RedeemCredit):
        return _plan_redeem(view, operation)
    if isinstance(operation, ExpireCredit):
        return _plan_expire(view, operation)
    return _plan_refund(view, operation)


def _postings(*rows: tuple[str, Bucket, int], currency: str) -> tuple[Posting, ...]:
    # Zero amounts (a zero fee, a zero payout at fee_bps = 10,000) are not written.
    return tuple(Posting(a, b, amount, currency) for a, b, amount in rows if amount != 0)


def _check_amount(money: Money) -> Rejected[LedgerRejectReason] | None:
    if money.amount_minor <= 0:
        return Rejected(
            LedgerRejectReason.AMOUNT_NOT_POSITIVE, "amount", "the amount must be positive"
        )
    return None


def _check_wallet(
    view: LedgerView, wallet_id: str, currency: str, *, must_exist: bool, field_name: str
) -> Rejected[LedgerRejectReason] | None:
    # ACCOUNT_UNKNOWN then CURRENCY_MISMATCH, for the callers whose intermediate checks allow it.
    wallet = view.wallets.get(wallet_id)
    if wallet is None:
        if must_exist:
            return Rejected(LedgerRejectReason.ACCOUNT_UNKNOWN, field_name, f"{wallet_id!r}")
        return None
    if wallet.currency != currency:
        return Rejected(
            LedgerRejectReason.CURRENCY_MISMATCH,
            "currency",
            f"wallet {wallet_id!r} holds {wallet.currency}, not {currency}",
        )
    return None


def _check_funds(
    view: LedgerView,
    wallet_id: str,
    amount_minor: int,
    *,
    field_name: str = "amount",
    with_credit: bool = False,
) -> Rejected[LedgerRejectReason] | None:
    # Cash only, unless the money pays for work (a hold): then credit counts too.
    wallet = view.wallets[wallet_id]
    spendable = wallet.available_minor + (wallet.credit_minor if with_credit else 0)
    if spendable < amount_minor:
        credit = f" and {wallet.credit_minor} of credit" if with_credit else ""
        return Rejected(
            LedgerRejectReason.INSUFFICIENT_FUNDS,
            field_name,
            f"wallet {wallet_id!r} has {wallet.available_minor} minor units available{credit}",
        )
    return None


def _plan_deposit(view: LedgerView, op: Deposit) -> _Plan | Rejected[LedgerRejectReason]:
    rejected = _check_amount(op.money) or _check_wallet(
        view, op.wallet_id, op.money.currency, must_exist=False, field_name="wallet_id"
    )
    if rejected is not None:
        return rejected
    amount_minor = op.money.amount_minor
    postings = _postings(
        (EXTERNAL_FUNDING_ACCOUNT, Bucket.AVAILABLE, -amount_minor),
        (op.wallet_id, Bucket.AVAILABLE, amount_minor),
        currency=op.money.currency,
    )
    return postings, ()


def _plan_withdraw(view: LedgerView, op: Withdraw) -> _Plan | Rejected[LedgerRejectReason]:
    rejected = (
        _check_amount(op.money)
        or _check_wallet(
            view, op.wallet_id, op.money.currency, must_exist=True, field_name="wallet_id"
        )
        or _check_funds(view, op.wallet_id, op.money.amount_minor)
    )
    if rejected is not None:
        return rejected
    amount_minor = op.money.amount_minor
    postings = _postings(
        (op.wallet_id, Bucket.AVAILABLE, -amount_minor),
        (EXTERNAL_FUNDING_ACCOUNT, Bucket.AVAILABLE, amount_minor),
        currency=op.money.currency,
    )
    return postings, ()


def _plan_hold(view: LedgerView, op: Hold) -> _Plan | Rejected[LedgerRejectReason]:
    # AMOUNT_NOT_POSITIVE, ACCOUNT_UNKNOWN, HOLD_ID_TAKEN, CURRENCY_MISMATCH, INSUFFICIENT_FUNDS.
    rejected = _check_amount(op.money)
    if rejected is None and op.wallet_id not in view.wallets:
        rejected = Rejected(LedgerRejectReason.ACCOUNT_UNKNOWN, "wallet_id", f"{op.wallet_id!r}")
    if rejected is None and op.hold_id in view.holds:
        rejected = Rejected(LedgerRejectReason.HOLD_ID_TAKEN, "hold_id", f"{op.hold_id!r}")
    rejected = (
        rejected
        or _check_wallet(
            view, op.wallet_id, op.money.currency, must_exist=False, field_name="wallet_id"
        )
        or _check_funds(view, op.wallet_id, op.money.amount_minor, with_credit=True)
    )
    if rejected is not None:
        return rejected
    # Token bank: credit is spent before cash; the hold remembers the credit part.
    amount_minor = op.money.amount_minor
    credit_minor = min(view.wallets[op.wallet_id].credit_minor, amount_minor)
    postings = _postings(
        (op.wallet_id, Bucket.CREDIT, -credit_minor),
        (op.wallet_id, Bucket.AVAILABLE, -(amount_minor - credit_minor)),
        (op.wallet_id, Bucket.HELD, amount_minor),
        currency=op.money.currency,
    )
    record = HoldRecord(
        op.hold_id,
        op.wallet_id,
        amount_minor,
        op.money.currency,
        HoldState.OPEN,
        credit_minor=credit_minor,
    )
    return postings, (record,)


def _transition(
    view: LedgerView, hold_id: str, event: HoldEvent
) -> tuple[HoldRecord, HoldState] | Rejected[LedgerRejectReason]:
    # HOLD_UNKNOWN, then the transition table: a missing key is an illegal transition.
    record = view.holds.get(hold_id)
    if record is None:
        return Rejected(LedgerRejectReason.HOLD_UNKNOWN, "hold_id", f"{hold_id!r}")
    next_state = HOLD_TRANSITIONS.get((record.state, event))
    if next_state is None:
        return Rejected(
            LedgerRejectReason.HOLD_TRANSITION_ILLEGAL,
            "hold_id",
            f"cannot {event.value} hold {hold_id!r} in state {record.state.value}",
        )
    return record, next_state


def _plan_capture(view: LedgerView, op: Capture) -> _Plan | Rejected[LedgerRejectReason]:
    transition = _transition(view, op.hold_id, HoldEvent.CAPTURE)
    if isinstance(transition, Rejected):
        return transition
    record, next_state = transition
    rejected = _check_wallet(
        view, op.payee_wallet_id, record.currency, must_exist=False, field_name="payee_wallet_id"
    )
    if rejected is not None:
        return rejected
    # Spec: "provider credited (minus 15% platform fee)"; fees.split_fee owns the rounding.
    fee_minor, payout_minor = split_fee(record.amount_minor, fee_bps=op.fee_bps)
    assert fee_minor + payout_minor == record.amount_minor
    # Token bank: the credit part is settled by the platform in cash, so the payee is paid in
    # cash as before: the liability is discharged and the same amount of cash comes in.
    postings = _postings(
        (record.wallet_id, Bucket.HELD, -record.amount_minor),
        (op.payee_wallet_id, Bucket.AVAILABLE, payout_minor),
        (PLATFORM_REVENUE_ACCOUNT, Bucket.AVAILABLE, fee_minor),
        (CREDIT_OUTSTANDING_ACCOUNT, Bucket.AVAILABLE, record.credit_minor),
        (EXTERNAL_FUNDING_ACCOUNT, Bucket.AVAILABLE, -record.credit_minor),
        currency=record.currency,
    )
    captured = replace(
        record, state=next_state, payee_wallet_id=op.payee_wallet_id, fee_minor=fee_minor
    )
    return postings, (captured,)


def _plan_release(view: LedgerView, op: Release) -> _Plan | Rejected[LedgerRejectReason]:
    transition = _transition(view, op.hold_id, HoldEvent.RELEASE)
    if isinstance(transition, Rejected):
        return transition
    record, next_state = transition
    postings = _postings(
        (record.wallet_id, Bucket.HELD, -record.amount_minor),
        (record.wallet_id, Bucket.CREDIT, record.credit_minor),
        (record.wallet_id, Bucket.AVAILABLE, record.cash_minor),
        currency=record.currency,
    )
    return postings, (replace(record, state=next_state),)


def _plan_refund(view: LedgerView, op: Refund) -> _Plan | Rejected[LedgerRejectReason]:
    transition = _transition(view, op.hold_id, HoldEvent.REFUND)
    if isinstance(transition, Rejected):
        return transition
    record, next_state = transition
    assert record.payee_wallet_id is not None
    # The exact reverse of the capture's credits: the payee returns its payout, the platform its
    # fee, and the payer's available balance gets the whole price back (not its held bucket: the
    # contract is over, nothing is in escrow any more). A zero payout (fee_bps = 10,000) posted
    # nothing to the payee, whose wallet may then not even exist.
    if record.payout_minor > 0:
        assert record.payee_wallet_id in view.wallets, "a paid payee's wallet must be loaded"
        rejected = _check_funds(
            view, record.payee_wallet_id, record.payout_minor, field_name="hold_id"
        )
        if rejected is not None:
            return rejected
    # Token bank: the credit part goes back as credit (never as cash), and the capture's
    # settlement of it is reversed (the liability is outstanding again, the cash goes back out).
    postings = _postings(
        (record.payee_wallet_id, Bucket.AVAILABLE, -record.payout_minor),
        (PLATFORM_REVENUE_ACCOUNT, Bucket.AVAILABLE, -record.fee_minor),
        (record.wallet_id, Bucket.AVAILABLE, record.cash_minor),
        (record.wallet_id, Bucket.CREDIT, record.credit_minor),
        (CREDIT_OUTSTANDING_ACCOUNT, Bucket.AVAILABLE, -record.credit_minor),
        (EXTERNAL_FUNDING_ACCOUNT, Bucket.AVAILABLE, record.credit_minor),
        currency=record.currency,
    )
    return postings, (replace(record, state=next_state),)


# --- Billing planner (issue 15 item 4) ---------------------------------------------------------


def _plan_billing(view: LedgerView, op: Charge | Rebate) -> _Plan | Rejected[LedgerRejectReason]:
    # AMOUNT_NOT_POSITIVE, ACCOUNT_UNKNOWN, CURRENCY_MISMATCH, then (a charge) INSUFFICIENT_FUNDS.
    rejected = _check_amount(op.money) or _check_wallet(
        view, op.wallet_id, op.money.currency, must_exist=True, field_name="wallet_id"
    )
    if rejected is None and isinstance(op, Charge):
        rejected = _check_funds(view, op.wallet_id, op.money.amount_minor)
    if rejected is not None:
        return rejected
    amount_minor = op.money.amount_minor
    sign = -1 if isinstance(op, Charge) else 1
    postings = _postings(
        (op.wallet_id, Bucket.AVAILABLE, sign * amount_minor),
        (op.revenue_account, Bucket.AVAILABLE, -sign * amount_minor),
        currency=op.money.currency,
    )
    return postings, ()


# --- end billing planner -----------------------------------------------------------------------

# --- Token bank planners (issue 15 item 3) -------------------------------------------------------


def _plan_redeem(view: LedgerView, op: RedeemCredit) -> _Plan | Rejected[LedgerRejectReason]:
    # AMOUNT_NOT_POSITIVE, CURRENCY_MISMATCH (an unknown wallet is opened).
    rejected = _check_amount(op.money) or _check_wallet(
        view, op.wallet_id, op.money.currency, must_exist=False, field_name="wallet_id"
    )
    if rejected is not None:
        return rejected
    amount_minor = op.money.amount_minor
    postings = _postings(
        (CREDIT_OUTSTANDING_ACCOUNT, Bucket.AVAILABLE, -amount_minor),
        (op.wallet_id, Bucket.CREDIT, amount_minor),
        currency=op.money.currency,
    )
    return postings, ()


def _plan_expire(view: LedgerView, op: ExpireCredit) -> _Plan | Rejected[LedgerRejectReason]:
    # ACCOUNT_UNKNOWN, CURRENCY_MISMATCH, CREDIT_NOT_EXPIRED.
    rejected = _check_wallet(
        view, op.wallet_id, op.currency, must_exist=True, field_name="wallet_id"
    )
    if rejected is not None:
        return rejected
    wallet = view.wallets[op.wallet_id]
    if wallet.credit_minor == 0 or op.now_ms < wallet.credit_expires_at_ms:
        return Rejected(
            LedgerRejectReason.CREDIT_NOT_EXPIRED,
            "wallet_id",
            f"wallet {op.wallet_id!r} has {wallet.credit_minor} of credit expiring at"
            f" {wallet.credit_expires_at_ms} ms",
        )
    postings = _postings(
        (op.wallet_id, Bucket.CREDIT, -wallet.credit_minor),
        (BREAKAGE_REVENUE_ACCOUNT, Bucket.AVAILABLE, wallet.credit_minor),
        currency=op.currency,
    )
    return postings, ()


def _credit_expiry(view: LedgerView, operation: Operation) -> tuple[str, int] | None:
    # The wallet whose credit expiry a redemption moves, and to when.
    if not isinstance(operation, RedeemCredit):
        return None
    wallet = view.wallets.get(operation.wallet_id)
    if wallet is None or wallet.credit_minor == 0:
        return operation.wallet_id, operation.expires_at_ms
    return operation.wallet_id, max(wallet.credit_expires_at_ms, operation.expires_at_ms)


# --- end token bank planners ---------------------------------------------------------------------


_BUCKET_INDEX: Final[Mapping[Bucket, int]] = MappingProxyType(
    {Bucket.AVAILABLE: 0, Bucket.HELD: 1, Bucket.CREDIT: 2}
)


def _wallets_after(
    wallets: Mapping[str, Wallet],
    postings: Iterable[Posting],
    credit_expiry: tuple[str, int] | None = None,
) -> tuple[Wallet, ...] | Rejected[LedgerRejectReason]:
    # Sums the wallet postings per bucket, then builds each touched wallet's new row. A posting to
    # a wallet that is not loaded opens it (only a deposit, a redemption or a capture's payee
    # credit can). `credit_expiry` is a redemption's new expiry of its wallet's credit.
    balances: dict[str, list[int]] = {}
    opened: dict[str, Wallet] = {}
    for posting in postings:
        if posting.account_id in SYSTEM_ACCOUNTS:
            continue
        wallet = wallets.get(posting.account_id)
        if wallet is None:
            assert posting.amount_minor > 0, "only a credit may open a wallet"
            wallet = Wallet(posting.account_id, posting.currency, 0, 0)
        assert wallet.currency == posting.currency
        opened.setdefault(wallet.wallet_id, wallet)
        current = balances.setdefault(
            wallet.wallet_id, [wallet.available_minor, wallet.held_minor, wallet.credit_minor]
        )
        current[_BUCKET_INDEX[posting.bucket]] += posting.amount_minor
    for wallet_id, amounts in balances.items():
        # Checked before any earlier rule could have let a balance go negative: asserted.
        assert min(amounts) >= 0, f"a balance of {wallet_id!r} would go negative: {amounts}"
        if max(amounts) > limits.balance_minor_max:
            return Rejected(
                LedgerRejectReason.BALANCE_LIMIT_EXCEEDED, "amount", f"wallet {wallet_id!r}"
            )
    rows: list[Wallet] = []
    for wallet_id, (available_minor, held_minor, credit_minor) in sorted(balances.items()):
        expires_at_ms = opened[wallet_id].credit_expires_at_ms
        if credit_expiry is not None and credit_expiry[0] == wallet_id:
            expires_at_ms = credit_expiry[1]
        rows.append(
            replace(
                opened[wallet_id],
                available_minor=available_minor,
                held_minor=held_minor,
                credit_minor=credit_minor,
                credit_expires_at_ms=expires_at_ms,
            )
        )
    return tuple(rows)


# --- The whole ledger in memory (tests, simulator) -------------------------------------------

_K = TypeVar("_K")
_V = TypeVar("_V")


def _frozen_map() -> Mapping[_K, _V]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LedgerState:
    """The whole ledger as read-only maps: wallets, holds, system balances and the records.

    `system_balances` maps (system account id, currency) to its balance in minor units.
    """

    wallets: Mapping[str, Wallet] = field(default_factory=_frozen_map)
    holds: Mapping[str, HoldRecord] = field(default_factory=_frozen_map)
    system_balances: Mapping[tuple[str, str], int] = field(default_factory=_frozen_map)
    operations: Mapping[str, Applied] = field(default_factory=_frozen_map)


def apply_to_state(
    state: LedgerState, operation: Operation
) -> tuple[LedgerState, Applied | Rejected[LedgerRejectReason]]:
    """Applies one operation to a whole in-memory ledger: the driver loop of `touched`/`apply`.

    Returns:
        (new state, result). On a rejection or a replay the state returned is `state` itself.
    """
    first = touched(operation)
    holds = {h: state.holds[h] for h in first.hold_ids if h in state.holds}
    needed = touched(operation, holds)
    wallets = {w: state.wallets[w] for w in needed.wallet_ids if w in state.wallets}
    view = LedgerView(wallets, holds, state.operations.get(operation.operation_id))
    result = apply(view, operation)
    if isinstance(result, Rejected) or result.replayed:
        return state, result
    system_balances = dict(state.system_balances)
    for posting in result.entry.postings:
        if posting.account_id in SYSTEM_ACCOUNTS:
            key = (posting.account_id, posting.currency)
            system_balances[key] = system_balances.get(key, 0) + posting.amount_minor
    new_wallets = {**state.wallets, **{w.wallet_id: w for w in result.wallets}}
    assert len(new_wallets) <= limits.accounts_max
    new_state = LedgerState(
        wallets=MappingProxyType(new_wallets),
        holds=MappingProxyType({**state.holds, **{h.hold_id: h for h in result.holds}}),
        system_balances=MappingProxyType(system_balances),
        operations=MappingProxyType({**state.operations, operation.operation_id: result}),
    )
    return new_state, result


def total_by_currency(state: LedgerState) -> dict[str, int]:
    """The sum over every account and bucket, per currency: zero for all, always (double entry)."""
    totals: dict[str, int] = {}
    for wallet in state.wallets.values():
        totals[wallet.currency] = (
            totals.get(wallet.currency, 0)
            + wallet.available_minor
            + wallet.held_minor
            + wallet.credit_minor
        )
    for (_, currency), balance_minor in state.system_balances.items():
        totals[currency] = totals.get(currency, 0) + balance_minor
    return totals

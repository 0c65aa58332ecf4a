"""The token bank's postings, case by case (aex/core/ledger.py; docs/payments.md "Token bank"):
credit before cash, the provider paid in cash, credit back as credit, expiry into breakage."""

from __future__ import annotations

from aex.core.fees import PLATFORM_FEE_BPS
from aex.core.ledger import (
    BREAKAGE_REVENUE_ACCOUNT,
    CREDIT_OUTSTANDING_ACCOUNT,
    EXTERNAL_FUNDING_ACCOUNT,
    PLATFORM_REVENUE_ACCOUNT,
    Applied,
    Bucket,
    Capture,
    Deposit,
    ExpireCredit,
    Hold,
    LedgerState,
    Operation,
    RedeemCredit,
    Refund,
    Release,
    Withdraw,
    apply_to_state,
    total_by_currency,
)
from aex.core.money import Money
from aex.core.reasons import LedgerRejectReason, Rejected

USD = "USD"


def run(state: LedgerState, *operations: Operation) -> tuple[LedgerState, Applied]:
    result: Applied | Rejected[LedgerRejectReason] | None = None
    for operation in operations:
        state, result = apply_to_state(state, operation)
        assert isinstance(result, Applied), result
    assert isinstance(result, Applied)
    assert set(total_by_currency(state).values()) <= {0}
    return state, result


def funded() -> LedgerState:
    state, _ = run(
        LedgerState(),
        RedeemCredit("r1", "tenant:a", Money(10_000, USD), expires_at_ms=1_000),
        Deposit("d1", "tenant:a", Money(5_000, USD)),
    )
    return state


def postings(applied: Applied) -> set[tuple[str, Bucket, int]]:
    return {(p.account_id, p.bucket, p.amount_minor) for p in applied.entry.postings}


def test_a_redemption_moves_outstanding_credit_into_the_credit_bucket() -> None:
    state = funded()
    wallet = state.wallets["tenant:a"]
    assert (wallet.available_minor, wallet.credit_minor, wallet.credit_expires_at_ms) == (
        5_000,
        10_000,
        1_000,
    )
    assert state.system_balances[(CREDIT_OUTSTANDING_ACCOUNT, USD)] == -10_000


def test_a_hold_spends_credit_first_and_a_capture_pays_the_provider_in_cash() -> None:
    state, held = run(funded(), Hold("h1", "hold", "tenant:a", Money(12_000, USD)))
    assert postings(held) == {
        ("tenant:a", Bucket.CREDIT, -10_000),
        ("tenant:a", Bucket.AVAILABLE, -2_000),
        ("tenant:a", Bucket.HELD, 12_000),
    }
    state, captured = run(state, Capture("c1", "hold", "tenant:p", PLATFORM_FEE_BPS))
    assert postings(captured) == {
        ("tenant:a", Bucket.HELD, -12_000),
        ("tenant:p", Bucket.AVAILABLE, 10_200),
        (PLATFORM_REVENUE_ACCOUNT, Bucket.AVAILABLE, 1_800),
        (CREDIT_OUTSTANDING_ACCOUNT, Bucket.AVAILABLE, 10_000),
        (EXTERNAL_FUNDING_ACCOUNT, Bucket.AVAILABLE, -10_000),
    }
    # The provider's payout is cash: withdrawable.
    run(state, Withdraw("w1", "tenant:p", Money(10_200, USD)))
    # A refund gives the credit part back as credit, never as cash.
    state, _ = run(state, Refund("f1", "hold"))
    wallet = state.wallets["tenant:a"]
    assert (wallet.available_minor, wallet.credit_minor, wallet.held_minor) == (5_000, 10_000, 0)
    assert state.system_balances[(CREDIT_OUTSTANDING_ACCOUNT, USD)] == -10_000


def test_a_release_returns_credit_as_credit_and_credit_is_never_withdrawn() -> None:
    state, _ = run(funded(), Hold("h1", "hold", "tenant:a", Money(11_000, USD)))
    state, _ = run(state, Release("x1", "hold"))
    wallet = state.wallets["tenant:a"]
    assert (wallet.available_minor, wallet.credit_minor) == (5_000, 10_000)
    _, refused = apply_to_state(state, Withdraw("w1", "tenant:a", Money(5_001, USD)))
    assert isinstance(refused, Rejected)
    assert refused.reason is LedgerRejectReason.INSUFFICIENT_FUNDS


def test_expired_credit_becomes_breakage_only_once_its_expiry_has_passed() -> None:
    state = funded()
    _, early = apply_to_state(state, ExpireCredit("e0", "tenant:a", USD, now_ms=999))
    assert isinstance(early, Rejected)
    assert early.reason is LedgerRejectReason.CREDIT_NOT_EXPIRED
    state, expired = run(state, ExpireCredit("e1", "tenant:a", USD, now_ms=1_000))
    assert postings(expired) == {
        ("tenant:a", Bucket.CREDIT, -10_000),
        (BREAKAGE_REVENUE_ACCOUNT, Bucket.AVAILABLE, 10_000),
    }
    assert state.wallets["tenant:a"].available_minor == 5_000
    _, again = apply_to_state(state, ExpireCredit("e2", "tenant:a", USD, now_ms=2_000))
    assert isinstance(again, Rejected)


def test_a_redemption_extends_the_credit_to_the_later_expiry() -> None:
    state, _ = run(funded(), RedeemCredit("r2", "tenant:a", Money(1, USD), expires_at_ms=500))
    assert state.wallets["tenant:a"].credit_expires_at_ms == 1_000
    state, _ = run(state, RedeemCredit("r3", "tenant:a", Money(1, USD), expires_at_ms=3_000))
    assert state.wallets["tenant:a"].credit_expires_at_ms == 3_000

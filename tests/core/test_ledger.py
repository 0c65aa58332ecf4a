"""aex/core/ledger.py: worked examples, every rejection, replays, refunds and releases."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aex.core import limits
from aex.core.fees import PLATFORM_FEE_BPS
from aex.core.ledger import (
    EXTERNAL_FUNDING_ACCOUNT,
    HOLD_TRANSITIONS,
    PLATFORM_REVENUE_ACCOUNT,
    Applied,
    Bucket,
    Capture,
    Deposit,
    Hold,
    HoldEvent,
    HoldState,
    JournalEntry,
    LedgerState,
    LedgerView,
    Operation,
    OperationKind,
    Posting,
    Refund,
    Release,
    Wallet,
    Withdraw,
    applied_from_json,
    applied_to_json,
    apply,
    apply_to_state,
    check_entry,
    fingerprint,
    operation_from_json,
    operation_to_json,
    total_by_currency,
    touched,
)
from aex.core.money import Money
from aex.core.reasons import LedgerRejectReason, Rejected

CONSUMER = "tenant:consumer"
PROVIDER = "tenant:provider"
R = LedgerRejectReason


def usd(amount_minor: int) -> Money:
    return Money(amount_minor, "USD")


def run(operations: Sequence[Operation], state: LedgerState | None = None) -> LedgerState:
    """Applies operations that must all succeed."""
    state = state or LedgerState()
    for operation in operations:
        state, result = apply_to_state(state, operation)
        assert isinstance(result, Applied), result
    return state


def system_balance(state: LedgerState, account_id: str, currency: str = "USD") -> int:
    return state.system_balances.get((account_id, currency), 0)


def funded_and_held(price_minor: int = 10_000) -> LedgerState:
    return run(
        [
            Deposit("d1", CONSUMER, usd(price_minor)),
            Hold("h1", "contract:1", CONSUMER, usd(price_minor)),
        ]
    )


def captured(price_minor: int = 10_000) -> LedgerState:
    return run(
        [Capture("c1", "contract:1", PROVIDER, PLATFORM_FEE_BPS)], funded_and_held(price_minor)
    )


# --- The spec's worked example ---------------------------------------------------------------


def test_a_100_usd_contract_pays_85_to_the_provider_and_15_to_the_platform() -> None:
    state = funded_and_held(10_000)
    assert state.wallets[CONSUMER] == Wallet(CONSUMER, "USD", 0, 10_000)
    state, result = apply_to_state(state, Capture("c1", "contract:1", PROVIDER, PLATFORM_FEE_BPS))
    assert isinstance(result, Applied)
    assert set(result.entry.postings) == {
        Posting(CONSUMER, Bucket.HELD, -10_000, "USD"),
        Posting(PROVIDER, Bucket.AVAILABLE, 8_500, "USD"),
        Posting(PLATFORM_REVENUE_ACCOUNT, Bucket.AVAILABLE, 1_500, "USD"),
    }
    assert state.wallets[PROVIDER] == Wallet(PROVIDER, "USD", 8_500, 0)
    assert system_balance(state, PLATFORM_REVENUE_ACCOUNT) == 1_500
    # The consumer is down 100.00 from its deposit: nothing available, nothing held.
    assert state.wallets[CONSUMER] == Wallet(CONSUMER, "USD", 0, 0)
    assert state.holds["contract:1"].state is HoldState.CAPTURED
    assert total_by_currency(state) == {"USD": 0}


@pytest.mark.parametrize(
    ("price_minor", "fee_bps", "fee_minor"),
    [(99, PLATFORM_FEE_BPS, 14), (1, PLATFORM_FEE_BPS, 0), (7, PLATFORM_FEE_BPS, 1), (500, 0, 0)],
)
def test_capture_fee_rounds_down_and_the_payee_keeps_the_remainder(
    price_minor: int, fee_bps: int, fee_minor: int
) -> None:
    state = run([Capture("c1", "contract:1", PROVIDER, fee_bps)], funded_and_held(price_minor))
    assert state.wallets[PROVIDER].available_minor == price_minor - fee_minor
    assert system_balance(state, PLATFORM_REVENUE_ACCOUNT) == fee_minor
    assert state.holds["contract:1"].fee_minor == fee_minor


def test_zero_fee_and_zero_payout_legs_are_not_posted() -> None:
    state = funded_and_held(500)
    _, zero_fee = apply_to_state(state, Capture("c1", "contract:1", PROVIDER, 0))
    _, zero_payout = apply_to_state(state, Capture("c1", "contract:1", PROVIDER, 10_000))
    assert isinstance(zero_fee, Applied)
    assert isinstance(zero_payout, Applied)
    assert [p.account_id for p in zero_fee.entry.postings] == [CONSUMER, PROVIDER]
    assert [p.account_id for p in zero_payout.entry.postings] == [
        CONSUMER,
        PLATFORM_REVENUE_ACCOUNT,
    ]


def test_a_deposit_credits_the_wallet_from_external_funding_and_opens_it() -> None:
    state = run([Deposit("d1", CONSUMER, usd(2_500))])
    assert state.wallets[CONSUMER] == Wallet(CONSUMER, "USD", 2_500, 0)
    assert system_balance(state, EXTERNAL_FUNDING_ACCOUNT) == -2_500
    assert total_by_currency(state) == {"USD": 0}


def test_a_withdrawal_returns_money_to_external_funding() -> None:
    state = run([Deposit("d1", CONSUMER, usd(2_500)), Withdraw("w1", CONSUMER, usd(1_000))])
    assert state.wallets[CONSUMER].available_minor == 1_500
    assert system_balance(state, EXTERNAL_FUNDING_ACCOUNT) == -1_500


def test_release_returns_the_escrow_to_the_payers_available_balance() -> None:
    state = run([Release("r1", "contract:1")], funded_and_held(10_000))
    assert state.wallets[CONSUMER] == Wallet(CONSUMER, "USD", 10_000, 0)
    assert state.holds["contract:1"].state is HoldState.RELEASED
    assert PROVIDER not in state.wallets


def test_refund_reverses_a_capture_back_to_the_payers_available_balance() -> None:
    state = run([Refund("f1", "contract:1")], captured(10_000))
    assert state.wallets[CONSUMER] == Wallet(CONSUMER, "USD", 10_000, 0)
    assert state.wallets[PROVIDER] == Wallet(PROVIDER, "USD", 0, 0)
    assert system_balance(state, PLATFORM_REVENUE_ACCOUNT) == 0
    assert state.holds["contract:1"].state is HoldState.REFUNDED
    assert total_by_currency(state) == {"USD": 0}


def test_capture_to_the_payers_own_wallet_keeps_the_payout() -> None:
    state = run([Capture("c1", "contract:1", CONSUMER, PLATFORM_FEE_BPS)], funded_and_held())
    assert state.wallets[CONSUMER] == Wallet(CONSUMER, "USD", 8_500, 0)
    state = run([Refund("f1", "contract:1")], state)
    assert state.wallets[CONSUMER] == Wallet(CONSUMER, "USD", 10_000, 0)


def test_zero_exponent_currencies_settle_in_whole_units() -> None:
    state = run(
        [
            Deposit("d1", CONSUMER, Money(1_000, "JPY")),
            Hold("h1", "contract:1", CONSUMER, Money(999, "JPY")),
            Capture("c1", "contract:1", PROVIDER, PLATFORM_FEE_BPS),
        ]
    )
    assert state.wallets[PROVIDER] == Wallet(PROVIDER, "JPY", 850, 0)
    assert system_balance(state, PLATFORM_REVENUE_ACCOUNT, "JPY") == 149
    assert total_by_currency(state) == {"JPY": 0}


def test_hold_lifecycle_is_exactly_the_three_documented_transitions() -> None:
    assert dict(HOLD_TRANSITIONS) == {
        (HoldState.OPEN, HoldEvent.CAPTURE): HoldState.CAPTURED,
        (HoldState.OPEN, HoldEvent.RELEASE): HoldState.RELEASED,
        (HoldState.CAPTURED, HoldEvent.REFUND): HoldState.REFUNDED,
    }


# --- Rejections: each one is a value and leaves the state unchanged ---------------------------

REJECTIONS: list[tuple[str, list[Operation], Operation, LedgerRejectReason, str]] = [
    ("zero deposit", [], Deposit("x", CONSUMER, usd(0)), R.AMOUNT_NOT_POSITIVE, "amount"),
    ("negative withdraw", [], Withdraw("x", CONSUMER, usd(-5)), R.AMOUNT_NOT_POSITIVE, "amount"),
    ("withdraw unknown", [], Withdraw("x", "tenant:ghost", usd(1)), R.ACCOUNT_UNKNOWN, "wallet_id"),
    (
        "hold unknown wallet",
        [],
        Hold("x", "h", "tenant:ghost", usd(1)),
        R.ACCOUNT_UNKNOWN,
        "wallet_id",
    ),
    ("capture unknown hold", [], Capture("x", "nope", PROVIDER, 1_500), R.HOLD_UNKNOWN, "hold_id"),
    ("release unknown hold", [], Release("x", "nope"), R.HOLD_UNKNOWN, "hold_id"),
    ("refund unknown hold", [], Refund("x", "nope"), R.HOLD_UNKNOWN, "hold_id"),
    (
        "hold id taken",
        [Deposit("d2", CONSUMER, usd(5))],
        Hold("x", "contract:1", CONSUMER, usd(1)),
        R.HOLD_ID_TAKEN,
        "hold_id",
    ),
    (
        "capture twice",
        [Capture("c1", "contract:1", PROVIDER, 1_500)],
        Capture("x", "contract:1", PROVIDER, 1_500),
        R.HOLD_TRANSITION_ILLEGAL,
        "hold_id",
    ),
    (
        "capture released",
        [Release("r1", "contract:1")],
        Capture("x", "contract:1", PROVIDER, 1_500),
        R.HOLD_TRANSITION_ILLEGAL,
        "hold_id",
    ),
    (
        "release captured",
        [Capture("c1", "contract:1", PROVIDER, 1_500)],
        Release("x", "contract:1"),
        R.HOLD_TRANSITION_ILLEGAL,
        "hold_id",
    ),
    ("refund open hold", [], Refund("x", "contract:1"), R.HOLD_TRANSITION_ILLEGAL, "hold_id"),
    (
        "refund twice",
        [Capture("c1", "contract:1", PROVIDER, 1_500), Refund("f1", "contract:1")],
        Refund("x", "contract:1"),
        R.HOLD_TRANSITION_ILLEGAL,
        "hold_id",
    ),
    (
        "deposit other currency",
        [],
        Deposit("x", CONSUMER, Money(100, "EUR")),
        R.CURRENCY_MISMATCH,
        "currency",
    ),
    (
        "capture to a wallet in another currency",
        [Deposit("d2", PROVIDER, Money(100, "EUR"))],
        Capture("x", "contract:1", PROVIDER, 1_500),
        R.CURRENCY_MISMATCH,
        "currency",
    ),
    (
        "withdraw more than available",
        [Deposit("d2", CONSUMER, usd(50))],
        Withdraw("x", CONSUMER, usd(51)),
        R.INSUFFICIENT_FUNDS,
        "amount",
    ),
    (
        "held money is not available",
        [],
        Withdraw("x", CONSUMER, usd(1)),
        R.INSUFFICIENT_FUNDS,
        "amount",
    ),
    (
        "hold more than available",
        [Deposit("d2", CONSUMER, usd(50))],
        Hold("x", "contract:2", CONSUMER, usd(51)),
        R.INSUFFICIENT_FUNDS,
        "amount",
    ),
    (
        "refund after the payee withdrew",
        [Capture("c1", "contract:1", PROVIDER, 1_500), Withdraw("w1", PROVIDER, usd(1))],
        Refund("x", "contract:1"),
        R.INSUFFICIENT_FUNDS,
        "hold_id",
    ),
]


@pytest.mark.parametrize(
    ("setup", "operation", "reason", "field_name"),
    [row[1:] for row in REJECTIONS],
    ids=[row[0] for row in REJECTIONS],
)
def test_each_rejection_is_a_value_and_leaves_the_state_unchanged(
    setup: list[Operation], operation: Operation, reason: LedgerRejectReason, field_name: str
) -> None:
    state = run(setup, funded_and_held(10_000))
    new_state, result = apply_to_state(state, operation)
    assert isinstance(result, Rejected)
    assert result.reason is reason
    assert result.field == field_name
    assert new_state is state
    assert operation.operation_id not in state.operations


def test_rejection_through_a_driver_view_writes_nothing() -> None:
    view = LedgerView(wallets={CONSUMER: Wallet(CONSUMER, "USD", 10, 0)})
    result = apply(view, Withdraw("w1", CONSUMER, usd(11)))
    assert isinstance(result, Rejected)
    assert result.reason is R.INSUFFICIENT_FUNDS
    assert view == LedgerView(wallets={CONSUMER: Wallet(CONSUMER, "USD", 10, 0)})


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        # amount before account: a zero withdrawal from an unknown wallet
        (Withdraw("x", "tenant:ghost", usd(0)), R.AMOUNT_NOT_POSITIVE),
        # account before hold id: a taken hold id on an unknown wallet
        (Hold("x", "contract:1", "tenant:ghost", usd(1)), R.ACCOUNT_UNKNOWN),
        # hold id before currency and funds
        (Hold("x", "contract:1", CONSUMER, Money(10**6, "EUR")), R.HOLD_ID_TAKEN),
        # currency before funds
        (Withdraw("x", CONSUMER, Money(10**6, "EUR")), R.CURRENCY_MISMATCH),
    ],
)
def test_checks_run_in_enum_precedence_order(
    operation: Operation, reason: LedgerRejectReason
) -> None:
    _, result = apply_to_state(funded_and_held(), operation)
    assert isinstance(result, Rejected)
    assert result.reason is reason


def test_reasons_are_listed_in_precedence_order_with_http_hints() -> None:
    assert next(iter(R)) is R.IDEMPOTENCY_CONFLICT
    assert list(R).index(R.CURRENCY_MISMATCH) < list(R).index(R.INSUFFICIENT_FUNDS)
    assert R.IDEMPOTENCY_CONFLICT.http_status == 409
    assert R.HOLD_ID_TAKEN.http_status == 409
    assert R.ACCOUNT_UNKNOWN.http_status == 404
    assert R.HOLD_UNKNOWN.http_status == 404
    assert R.INSUFFICIENT_FUNDS.http_status == 422
    assert R.HOLD_TRANSITION_ILLEGAL.http_status == 422


def test_a_wallet_bucket_beyond_its_limit_is_rejected() -> None:
    top_up = limits.amount_minor_max
    steps = limits.balance_minor_max // top_up
    state = run([Deposit(f"d{i}", CONSUMER, usd(top_up)) for i in range(steps)])
    assert state.wallets[CONSUMER].available_minor == limits.balance_minor_max
    new_state, result = apply_to_state(state, Deposit("one-more", CONSUMER, usd(1)))
    assert isinstance(result, Rejected)
    assert result.reason is R.BALANCE_LIMIT_EXCEEDED
    assert new_state is state


# --- Idempotency ----------------------------------------------------------------------------


def test_the_same_operation_id_and_content_replays_the_first_result() -> None:
    state = run([Deposit("d1", CONSUMER, usd(5_000))])
    operation = Withdraw("w1", CONSUMER, usd(5_000))
    state, first = apply_to_state(state, operation)
    assert isinstance(first, Applied)
    # The wallet is now empty: a fresh withdrawal would be refused, the replay is not.
    again_state, again = apply_to_state(state, Withdraw("w1", CONSUMER, usd(5_000)))
    assert again_state is state
    assert isinstance(again, Applied)
    assert again.replayed
    assert not first.replayed
    assert again.entry == first.entry
    assert again == Applied(
        first.operation_id, first.fingerprint, first.entry, first.wallets, first.holds, True
    )


def test_the_same_operation_id_with_different_content_is_a_conflict() -> None:
    state = run([Deposit("d1", CONSUMER, usd(5_000))])
    for changed in (
        Deposit("d1", CONSUMER, usd(5_001)),
        Deposit("d1", PROVIDER, usd(5_000)),
        Withdraw("d1", CONSUMER, usd(5_000)),
        Release("d1", "contract:1"),
    ):
        new_state, result = apply_to_state(state, changed)
        assert isinstance(result, Rejected)
        assert result.reason is R.IDEMPOTENCY_CONFLICT
        assert result.field == "operation_id"
        assert new_state is state


def test_a_rejected_operation_id_may_be_retried_once_the_cause_is_cured() -> None:
    state = run([Deposit("d1", CONSUMER, usd(10))])
    retry = Withdraw("w1", CONSUMER, usd(20))
    state, result = apply_to_state(state, retry)
    assert isinstance(result, Rejected)
    state = run([Deposit("d2", CONSUMER, usd(10)), retry], state)
    assert state.wallets[CONSUMER].available_minor == 0


def test_fingerprint_is_equal_iff_the_content_is_equal() -> None:
    assert fingerprint(Deposit("d1", CONSUMER, usd(1))) == fingerprint(
        Deposit("d1", CONSUMER, usd(1))
    )
    variants = [
        Deposit("d1", CONSUMER, usd(1)),
        Deposit("d1", CONSUMER, usd(2)),
        Deposit("d1", CONSUMER, Money(1, "EUR")),
        Withdraw("d1", CONSUMER, usd(1)),
        Capture("d1", "h", PROVIDER, 1_500),
        Capture("d1", "h", PROVIDER, 1_501),
        Release("d1", "h"),
        Refund("d1", "h"),
    ]
    assert len({fingerprint(v) for v in variants}) == len(variants)


# --- The driver protocol -------------------------------------------------------------------


def test_touched_names_the_holds_first_then_the_wallets_they_name() -> None:
    state = captured()
    refund = Refund("f1", "contract:1")
    first = touched(refund)
    assert first.hold_ids == ("contract:1",)
    assert first.wallet_ids == ()
    second = touched(refund, {"contract:1": state.holds["contract:1"]})
    assert second.wallet_ids == tuple(sorted([CONSUMER, PROVIDER]))
    assert touched(Deposit("d1", CONSUMER, usd(1))).wallet_ids == (CONSUMER,)
    assert touched(Capture("c1", "h", PROVIDER, 0)).wallet_ids == (PROVIDER,)


def test_a_driver_view_of_the_touched_rows_yields_the_rows_to_write() -> None:
    view = LedgerView(
        wallets={CONSUMER: Wallet(CONSUMER, "USD", 0, 10_000)},
        holds={"contract:1": funded_and_held().holds["contract:1"]},
    )
    result = apply(view, Capture("c1", "contract:1", PROVIDER, PLATFORM_FEE_BPS))
    assert isinstance(result, Applied)
    # Sorted by wallet id, the order a driver locks and writes them in.
    assert result.wallets == (
        Wallet(CONSUMER, "USD", 0, 0),
        Wallet(PROVIDER, "USD", 8_500, 0),
    )
    assert result.holds[0].state is HoldState.CAPTURED
    assert result.holds[0].payout_minor == 8_500


def test_a_view_missing_the_holds_payer_is_a_driver_bug() -> None:
    view = LedgerView(holds={"contract:1": funded_and_held().holds["contract:1"]})
    with pytest.raises(AssertionError):
        apply(view, Release("r1", "contract:1"))


def test_an_unbalanced_entry_cannot_be_built() -> None:
    with pytest.raises(AssertionError):
        JournalEntry(
            "x",
            OperationKind.DEPOSIT,
            (
                Posting(EXTERNAL_FUNDING_ACCOUNT, Bucket.AVAILABLE, -100, "USD"),
                Posting(CONSUMER, Bucket.AVAILABLE, 99, "USD"),
            ),
        )
    with pytest.raises(AssertionError):
        JournalEntry(
            "x",
            OperationKind.DEPOSIT,
            (
                Posting(EXTERNAL_FUNDING_ACCOUNT, Bucket.AVAILABLE, -100, "USD"),
                Posting(CONSUMER, Bucket.AVAILABLE, 100, "EUR"),
            ),
        )


def test_check_entry_catches_an_entry_corrupted_after_it_was_built() -> None:
    state = captured()
    entry = state.operations["c1"].entry
    check_entry(entry)
    corrupted = object.__new__(JournalEntry)
    for name in ("operation_id", "kind"):
        object.__setattr__(corrupted, name, getattr(entry, name))
    object.__setattr__(corrupted, "postings", entry.postings[:-1])
    with pytest.raises(AssertionError):
        check_entry(corrupted)


def test_system_and_wallet_ids_cannot_alias() -> None:
    with pytest.raises(AssertionError):
        Deposit("d1", PLATFORM_REVENUE_ACCOUNT, usd(1))
    with pytest.raises(AssertionError):
        Wallet("system:anything", "USD", 0, 0)


def test_money_is_never_a_float() -> None:
    with pytest.raises(AssertionError):
        Money(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        Capture("c1", "h", PROVIDER, 15.0)  # type: ignore[arg-type]


def test_stored_records_round_trip_through_json() -> None:
    state = run([Refund("f1", "contract:1")], captured())
    for applied in state.operations.values():
        stored = json.loads(json.dumps(applied_to_json(applied)))
        assert applied_from_json(stored) == applied
    operations: list[Operation] = [
        Deposit("d1", CONSUMER, usd(1)),
        Withdraw("w1", CONSUMER, Money(3, "JPY")),
        Hold("h1", "contract:1", CONSUMER, usd(7)),
        Capture("c1", "contract:1", PROVIDER, 1_500),
        Release("r1", "contract:1"),
        Refund("f1", "contract:1"),
    ]
    for operation in operations:
        assert (
            operation_from_json(json.loads(json.dumps(operation_to_json(operation)))) == operation
        )


def hold_lifecycle_mermaid() -> str:
    lines = ["stateDiagram-v2", "    [*] --> open: hold"]
    lines += [
        f"    {state.value} --> {next_state.value}: {event.value}"
        for (state, event), next_state in HOLD_TRANSITIONS.items()
    ]
    return "\n".join(lines)


def test_the_documented_hold_diagram_is_generated_from_the_table() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "ledger.md").read_text()
    assert f"```mermaid\n{hold_lifecycle_mermaid()}\n```" in doc


@given(
    price_minor=st.integers(1, limits.amount_minor_max),
    fee_bps=st.sampled_from([0, 1, PLATFORM_FEE_BPS, 9_999, 10_000]) | st.integers(0, 10_000),
)
def test_capture_conserves_every_cent_and_refund_is_its_exact_inverse(
    price_minor: int, fee_bps: int
) -> None:
    held = funded_and_held(price_minor)
    paid = run([Capture("c1", "contract:1", PROVIDER, fee_bps)], held)
    # A zero payout (fee_bps = 10,000) posts nothing to the payee and so opens no wallet.
    provider = paid.wallets.get(PROVIDER, Wallet(PROVIDER, "USD", 0, 0))
    payout_minor = provider.available_minor
    fee_minor = system_balance(paid, PLATFORM_REVENUE_ACCOUNT)
    assert payout_minor + fee_minor == price_minor
    assert fee_minor * 10_000 <= price_minor * fee_bps
    refunded = run([Refund("f1", "contract:1")], paid)
    assert refunded.wallets[CONSUMER] == Wallet(CONSUMER, "USD", price_minor, 0)
    assert refunded.wallets.get(PROVIDER, provider).available_minor == 0
    assert system_balance(refunded, PLATFORM_REVENUE_ACCOUNT) == 0
    assert total_by_currency(refunded) == {"USD": 0}


OPERATIONS = st.one_of(
    st.builds(
        Deposit,
        st.text(min_size=1, max_size=8),
        st.just(CONSUMER),
        st.builds(usd, st.integers(-5, 5)),
    ),
    st.builds(
        Hold,
        st.just("h"),
        st.text(min_size=1, max_size=8),
        st.just(CONSUMER),
        st.builds(usd, st.integers(1, 9)),
    ),
    st.builds(
        Capture,
        st.just("c"),
        st.text(min_size=1, max_size=8),
        st.just(PROVIDER),
        st.integers(0, 10_000),
    ),
    st.builds(Refund, st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)),
)


@given(OPERATIONS, OPERATIONS)
def test_fingerprints_are_equal_exactly_when_operations_are(a: Operation, b: Operation) -> None:
    assert (fingerprint(a) == fingerprint(b)) == (a == b)
    assert operation_from_json(json.loads(json.dumps(operation_to_json(a)))) == a

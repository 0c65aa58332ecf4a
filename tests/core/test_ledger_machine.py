"""The ledger under random operation sequences (a VOPR-style Hypothesis state machine).

Two layers share one ledger: raw operations on any hold ("raw:" hold ids), and contracts that
follow the market's settlement protocol (aex/core/market.py: award holds the price, settlement
moves nothing, the window's end or a pay_out resolution captures, a refund resolution releases;
"contract:" hold ids), with disputes and payees that withdraw everything they can at any time.

Invariants, checked after every step:
- the sum over all accounts and buckets is zero in every currency (double entry);
- no available balance and no held balance is negative;
- each wallet's held balance equals the sum of its OPEN holds;
- platform revenue equals the fees of the CAPTURED (not refunded) holds, so it is never negative;
- billing (issue 15 item 4): a Charge moves a tenant's available cash to a billing revenue
  account or is refused for insufficient funds with nothing changed; a Rebate returns at most
  what was charged; each billing revenue account equals its charges minus its rebates, >= 0;
- token bank (issue 15 item 3): the cash and the credit sub-ledgers each sum to zero
  (external funding + revenue accounts + cash + the cash part of open holds; credit
  outstanding + breakage + credit + the credit part of open holds), so no credit ever leaves
  as cash; a hold spends credit before cash; a withdrawal never touches credit (refused when
  only credit would cover it); a release or refund gives credit back as credit; an expiry at
  now_ms moves exactly the expired credit to breakage, or is refused with nothing changed;
- replaying any recorded operation is a no-op that returns its first result;
- a rejection or a replay leaves the state unchanged (the very same object);
- every settled contract whose window is open, and every disputed one, can be resolved BOTH
  ways on the current state (refund and pay out each apply), whatever its payee withdrew: the
  disputable part of a payout is never in the payee's available balance.

`make soak` runs this machine for at least 100,000 steps (tests/core/test_ledger_soak.py);
AEX_LEDGER_MACHINE_EXAMPLES and AEX_LEDGER_MACHINE_STEPS size the default run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from enum import Enum
from typing import ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from aex.core import limits
from aex.core.fees import BPS_DENOMINATOR, PLATFORM_FEE_BPS
from aex.core.ledger import (
    BILLING_REVENUE_ACCOUNTS,
    BREAKAGE_REVENUE_ACCOUNT,
    CREDIT_OUTSTANDING_ACCOUNT,
    EXTERNAL_FUNDING_ACCOUNT,
    PLAN_REVENUE_ACCOUNT,
    PLATFORM_REVENUE_ACCOUNT,
    VERIFICATION_REVENUE_ACCOUNT,
    Applied,
    Capture,
    Charge,
    Deposit,
    ExpireCredit,
    Hold,
    HoldState,
    LedgerState,
    Operation,
    Rebate,
    RedeemCredit,
    Refund,
    Release,
    Withdraw,
    apply_to_state,
    check_entry,
    fingerprint,
    total_by_currency,
)
from aex.core.market import pay_out_operation, refund_operation
from aex.core.money import Money
from aex.core.reasons import LedgerRejectReason, Rejected

WALLETS = st.sampled_from(["tenant:a", "tenant:b", "tenant:c"])
HOLD_IDS = st.sampled_from([f"raw:{i}" for i in range(3)])
PAYERS = st.sampled_from(["tenant:a", "tenant:b"])
# Providers' wallets, one per currency as serve/settlement/wallets.py names them: only payouts
# credit them.
PAYEES = st.sampled_from(["provider:p:USD", "provider:q:USD"])
# Mostly USD, so that wallets meet; JPY (no minor unit) makes currency mismatches.
CURRENCIES = st.sampled_from(["USD", "USD", "USD", "JPY"])
# Boundary values first: non-positive, one minor unit, fee-rounding edges, the largest posting.
AMOUNTS = st.sampled_from([-1, 0, 1, 6, 7, 99, 10_000, limits.amount_minor_max]) | st.integers(
    1, 20_000
)
FEES_BPS = st.sampled_from([0, 1, PLATFORM_FEE_BPS, BPS_DENOMINATOR - 1, BPS_DENOMINATOR])


def changed_content(operation: Operation) -> Operation:
    """The same operation_id with different content."""
    if isinstance(operation, RedeemCredit):
        return replace(operation, expires_at_ms=operation.expires_at_ms + 1)
    if isinstance(operation, ExpireCredit):
        return replace(operation, now_ms=operation.now_ms + 1)
    if isinstance(operation, Deposit | Withdraw | Hold | Charge | Rebate):
        amount_minor = operation.money.amount_minor
        bumped = amount_minor - 1 if amount_minor == limits.amount_minor_max else amount_minor + 1
        return replace(operation, money=Money(bumped, operation.money.currency))
    if isinstance(operation, Capture):
        fee_bps = operation.fee_bps
        return replace(
            operation, fee_bps=fee_bps - 1 if fee_bps == BPS_DENOMINATOR else fee_bps + 1
        )
    if isinstance(operation, Release):
        return Refund(operation.operation_id, operation.hold_id)
    return Release(operation.operation_id, operation.hold_id)


class Phase(Enum):
    """A contract's escrow phase, as serve/market/usecases.py drives it."""

    AWARDED = "awarded"  # price held, work under way
    SETTLED = "settled"  # completed, dispute window open: the price is still held
    DISPUTED = "disputed"
    PAID_OUT = "paid_out"  # captured: the window ended, or a dispute was resolved pay_out
    RETURNED = "returned"  # released: failed, or a dispute was resolved refund


@dataclass
class Contract:
    hold_id: str
    payer: str
    payee: str
    price_minor: int
    phase: Phase


class LedgerMachine(RuleBasedStateMachine):
    steps_total: ClassVar[int] = 0  # across examples: the soak's figure

    def __init__(self) -> None:
        super().__init__()
        self.state = LedgerState()
        self.applied: list[Operation] = []
        self.next_operation = 0
        self.contracts: list[Contract] = []
        # Billing: (wallet, revenue account, currency) -> charged minus rebated, in minor units.
        self.billed: dict[tuple[str, str, str], int] = {}
        self.now_ms = 0  # the token bank's clock: expiries are relative to it

    def fresh_id(self) -> str:
        self.next_operation += 1
        return f"op:{self.next_operation}"

    def step(self, operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
        before = self.state
        after, result = apply_to_state(before, operation)
        if isinstance(result, Rejected) or result.replayed:
            assert after is before
        else:
            assert after.operations[operation.operation_id] == result
            self.applied.append(operation)
        self.state = after
        return result

    @initialize(amounts_minor=st.lists(st.integers(1, 50_000), min_size=2, max_size=2))
    def fund_two_wallets(self, amounts_minor: list[int]) -> None:
        # Start with money in the market, so holds, captures and refunds happen early.
        for wallet_id, amount_minor in zip(["tenant:a", "tenant:b"], amounts_minor, strict=True):
            self.step(Deposit(self.fresh_id(), wallet_id, Money(amount_minor, "USD")))

    def available(self, wallet_id: str) -> int | None:
        wallet = self.state.wallets.get(wallet_id)
        return None if wallet is None else wallet.available_minor

    def credit(self, wallet_id: str) -> int:
        wallet = self.state.wallets.get(wallet_id)
        return 0 if wallet is None else wallet.credit_minor

    @rule(wallet_id=WALLETS, currency=CURRENCIES, amount_minor=AMOUNTS)
    def deposit(self, wallet_id: str, currency: str, amount_minor: int) -> None:
        before = self.available(wallet_id) or 0
        result = self.step(Deposit(self.fresh_id(), wallet_id, Money(amount_minor, currency)))
        if isinstance(result, Applied):
            assert self.available(wallet_id) == before + amount_minor
        elif amount_minor > 0 and result.reason is not LedgerRejectReason.BALANCE_LIMIT_EXCEEDED:
            assert result.reason is LedgerRejectReason.CURRENCY_MISMATCH

    @rule(data=st.data(), wallet_id=WALLETS, currency=CURRENCIES)
    def withdraw(self, data: st.DataObject, wallet_id: str, currency: str) -> None:
        before = self.available(wallet_id)
        credit_before = self.credit(wallet_id)
        covered = st.integers(1, min(limits.amount_minor_max, max(1, before or 0)))
        # Token bank: amounts that only cash plus credit would cover are refused.
        with_credit = st.integers(
            1, min(limits.amount_minor_max, max(1, (before or 0) + credit_before))
        )
        amount_minor = data.draw(AMOUNTS | covered | with_credit, label="amount_minor")
        result = self.step(Withdraw(self.fresh_id(), wallet_id, Money(amount_minor, currency)))
        assert self.credit(wallet_id) == credit_before  # credit is never withdrawn
        if isinstance(result, Applied):
            assert before is not None
            assert self.available(wallet_id) == before - amount_minor
        elif result.reason is LedgerRejectReason.INSUFFICIENT_FUNDS:
            assert before is not None
            assert before < amount_minor

    def draw_hold_id(self, data: st.DataObject) -> str:
        # Mostly raw holds that exist (in any state), sometimes one that never did. Contract
        # holds move only by the settlement protocol's rules below.
        known = sorted(h for h in self.state.holds if h.startswith("raw:"))
        return data.draw(st.sampled_from([*known, *known, "raw:ghost"]), label="hold_id")

    @rule(data=st.data(), wallet_id=WALLETS, currency=CURRENCIES)
    def hold(self, data: st.DataObject, wallet_id: str, currency: str) -> None:
        # Half the time an amount the wallet can cover; a fresh hold id unless one is reused.
        available_before, credit_before = self.available(wallet_id) or 0, self.credit(wallet_id)
        covered = st.integers(
            1, min(limits.amount_minor_max, max(1, available_before + credit_before))
        )
        amount_minor = data.draw(AMOUNTS | covered, label="amount_minor")
        hold_id = data.draw(
            st.just(f"raw:{self.next_operation}")
            | HOLD_IDS
            | st.sampled_from(sorted(self.state.holds) or ["raw:0"]),
            label="hold_id",
        )
        result = self.step(Hold(self.fresh_id(), hold_id, wallet_id, Money(amount_minor, currency)))
        if isinstance(result, Applied) and not result.replayed:
            record = self.state.holds[hold_id]
            assert record.state is HoldState.OPEN
            # Credit is spent before cash.
            assert record.credit_minor == min(credit_before, amount_minor)
            assert self.credit(wallet_id) == credit_before - record.credit_minor
            assert self.available(wallet_id) == available_before - record.cash_minor
        elif (
            isinstance(result, Rejected) and result.reason is LedgerRejectReason.INSUFFICIENT_FUNDS
        ):
            assert available_before + credit_before < amount_minor

    @precondition(lambda self: self.state.holds)
    @rule(data=st.data(), payee_wallet_id=WALLETS, fee_bps=FEES_BPS)
    def capture(self, data: st.DataObject, payee_wallet_id: str, fee_bps: int) -> None:
        hold_id = self.draw_hold_id(data)
        result = self.step(Capture(self.fresh_id(), hold_id, payee_wallet_id, fee_bps))
        if isinstance(result, Applied):
            record = self.state.holds[hold_id]
            assert record.state is HoldState.CAPTURED
            assert record.fee_minor + record.payout_minor == record.amount_minor

    @precondition(lambda self: self.state.holds)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        hold_id = self.draw_hold_id(data)
        record = self.state.holds.get(hold_id)
        credit_before = 0 if record is None else self.credit(record.wallet_id)
        result = self.step(Release(self.fresh_id(), hold_id))
        if isinstance(result, Applied):
            assert record is not None
            assert self.state.holds[hold_id].state is HoldState.RELEASED
            # The credit part comes back as credit, not as cash.
            assert self.credit(record.wallet_id) == credit_before + record.credit_minor

    @precondition(lambda self: self.state.holds)
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        hold_id = self.draw_hold_id(data)
        result = self.step(Refund(self.fresh_id(), hold_id))
        if isinstance(result, Applied):
            assert self.state.holds[hold_id].state is HoldState.REFUNDED

    # -- contracts: the market's settlement protocol, with disputes and greedy payees ---------

    def contracts_in(self, *phases: Phase) -> list[Contract]:
        return [c for c in self.contracts if c.phase in phases]

    def draw_contract(self, data: st.DataObject, *phases: Phase) -> Contract:
        return data.draw(st.sampled_from(self.contracts_in(*phases)), label="contract")

    @rule(data=st.data(), payer=PAYERS, payee=PAYEES)
    def award_a_contract(self, data: st.DataObject, payer: str, payee: str) -> None:
        available = min((self.available(payer) or 0) + self.credit(payer), limits.amount_minor_max)
        price_minor = data.draw(
            st.integers(1, max(1, available)) | st.sampled_from([1, 6, 7, 100]), label="price"
        )
        hold_id = f"contract:{len(self.contracts)}"
        result = self.step(Hold(self.fresh_id(), hold_id, payer, Money(price_minor, "USD")))
        if isinstance(result, Applied):
            self.contracts.append(Contract(hold_id, payer, payee, price_minor, Phase.AWARDED))

    @precondition(lambda self: self.contracts_in(Phase.AWARDED))
    @rule(data=st.data())
    def complete_and_settle(self, data: st.DataObject) -> None:
        # Settlement moves no money: the price stays held through the dispute window.
        contract = self.draw_contract(data, Phase.AWARDED)
        contract.phase = Phase.SETTLED

    @precondition(lambda self: self.contracts_in(Phase.AWARDED))
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        contract = self.draw_contract(data, Phase.AWARDED)
        result = self.step(refund_operation(contract.hold_id, paid_out=False))
        if isinstance(result, Rejected):
            assert result.reason is LedgerRejectReason.BALANCE_LIMIT_EXCEEDED, result
            return
        contract.phase = Phase.RETURNED

    @precondition(lambda self: self.contracts_in(Phase.SETTLED))
    @rule(data=st.data())
    def dispute(self, data: st.DataObject) -> None:
        contract = self.draw_contract(data, Phase.SETTLED)
        contract.phase = Phase.DISPUTED

    @precondition(lambda self: self.contracts_in(Phase.SETTLED))
    @rule(data=st.data())
    def dispute_window_ends(self, data: st.DataObject) -> None:
        self.pay_out(self.draw_contract(data, Phase.SETTLED))

    @precondition(lambda self: self.contracts_in(Phase.DISPUTED))
    @rule(data=st.data())
    def resolve_pay_out(self, data: st.DataObject) -> None:
        self.pay_out(self.draw_contract(data, Phase.DISPUTED))

    def pay_out(self, contract: Contract) -> None:
        payee_before = self.available(contract.payee) or 0
        result = self.step(pay_out_operation(contract.hold_id, contract.payee))
        if isinstance(result, Rejected):
            assert result.reason is LedgerRejectReason.BALANCE_LIMIT_EXCEEDED, result
            return
        payout_minor = self.state.holds[contract.hold_id].payout_minor
        assert self.available(contract.payee) == payee_before + payout_minor
        contract.phase = Phase.PAID_OUT

    @precondition(lambda self: self.contracts_in(Phase.DISPUTED))
    @rule(data=st.data())
    def resolve_refund(self, data: st.DataObject) -> None:
        contract = self.draw_contract(data, Phase.DISPUTED)
        payer_before = (self.available(contract.payer) or 0) + self.credit(contract.payer)
        result = self.step(refund_operation(contract.hold_id, paid_out=False))
        if isinstance(result, Rejected):
            assert result.reason is LedgerRejectReason.BALANCE_LIMIT_EXCEEDED, result
            return
        payer_after = (self.available(contract.payer) or 0) + self.credit(contract.payer)
        assert payer_after == payer_before + contract.price_minor
        contract.phase = Phase.RETURNED

    @rule(payee=PAYEES)
    def payee_withdraws_everything(self, payee: str) -> None:
        # The attack of issue 11: the provider's owner empties its wallet mid-dispute.
        available = min(self.available(payee) or 0, limits.amount_minor_max)
        if available > 0:
            result = self.step(Withdraw(self.fresh_id(), payee, Money(available, "USD")))
            assert isinstance(result, Applied), result

    @invariant()
    def every_open_dispute_resolves_both_ways(self) -> None:
        for contract in self.contracts_in(Phase.SETTLED, Phase.DISPUTED):
            assert self.state.holds[contract.hold_id].state is HoldState.OPEN
            for operation in (
                refund_operation(contract.hold_id, paid_out=False),
                pay_out_operation(contract.hold_id, contract.payee),
            ):
                after, result = apply_to_state(self.state, operation)
                if isinstance(result, Rejected):
                    # The one exception, documented: the receiving wallet would pass the
                    # balance ceiling (10^15 minor units).
                    assert result.reason is LedgerRejectReason.BALANCE_LIMIT_EXCEEDED, result
                    assert self.would_pass_the_ceiling(contract, operation)
                else:
                    assert after is not self.state

    def would_pass_the_ceiling(self, contract: Contract, operation: Operation) -> bool:
        receiver = contract.payer if isinstance(operation, Release) else contract.payee
        return (self.available(receiver) or 0) + contract.price_minor > limits.balance_minor_max

    @invariant()
    def contract_holds_follow_their_phase(self) -> None:
        expected = {
            Phase.AWARDED: HoldState.OPEN,
            Phase.SETTLED: HoldState.OPEN,
            Phase.DISPUTED: HoldState.OPEN,
            Phase.PAID_OUT: HoldState.CAPTURED,
            Phase.RETURNED: HoldState.RELEASED,
        }
        for contract in self.contracts:
            assert self.state.holds[contract.hold_id].state is expected[contract.phase]

    # --- billing (issue 15 item 4) -----------------------------------------------------------

    @rule(
        data=st.data(),
        wallet_id=WALLETS,
        currency=CURRENCIES,
        account=st.sampled_from(sorted(BILLING_REVENUE_ACCOUNTS)),
    )
    def charge(self, data: st.DataObject, wallet_id: str, currency: str, account: str) -> None:
        before = self.available(wallet_id)
        covered = st.integers(1, min(limits.amount_minor_max, max(1, before or 0)))
        amount_minor = data.draw(AMOUNTS | covered, label="amount_minor")
        operation = Charge(self.fresh_id(), wallet_id, Money(amount_minor, currency), account)
        result = self.step(operation)
        if isinstance(result, Applied):
            assert before is not None
            assert self.available(wallet_id) == before - amount_minor
            key = (wallet_id, account, currency)
            self.billed[key] = self.billed.get(key, 0) + amount_minor
        elif result.reason is LedgerRejectReason.INSUFFICIENT_FUNDS:
            assert before is not None
            assert before < amount_minor

    @precondition(lambda self: any(v > 0 for v in self.billed.values()))
    @rule(data=st.data())
    def rebate_part_of_a_charge(self, data: st.DataObject) -> None:
        # The driver's rule (serve/billing/usecases.py): a rebate never exceeds what was charged.
        billed = sorted(key for key, value in self.billed.items() if value > 0)
        wallet_id, account, currency = data.draw(st.sampled_from(billed))
        amount_minor = data.draw(st.integers(1, self.billed[(wallet_id, account, currency)]))
        before = self.available(wallet_id) or 0
        operation = Rebate(self.fresh_id(), wallet_id, Money(amount_minor, currency), account)
        result = self.step(operation)
        if isinstance(result, Applied):
            assert self.available(wallet_id) == before + amount_minor
            self.billed[(wallet_id, account, currency)] -= amount_minor
        else:
            assert result.reason is LedgerRejectReason.BALANCE_LIMIT_EXCEEDED

    @invariant()
    def billing_revenue_is_charges_minus_rebates(self) -> None:
        for account in (VERIFICATION_REVENUE_ACCOUNT, PLAN_REVENUE_ACCOUNT):
            for currency in ("USD", "JPY"):
                expected = sum(
                    value
                    for (_, billed_account, billed_currency), value in self.billed.items()
                    if (billed_account, billed_currency) == (account, currency)
                )
                revenue = self.state.system_balances.get((account, currency), 0)
                assert revenue == expected
                assert revenue >= 0

    # --- end billing -------------------------------------------------------------------------

    # --- token bank (issue 15 item 3) ----------------------------------------------------------

    @rule(
        wallet_id=WALLETS,
        currency=CURRENCIES,
        amount_minor=AMOUNTS,
        lifetime_ms=st.sampled_from([0, 1, 1_000, 10_000]),
    )
    def redeem_a_voucher(
        self, wallet_id: str, currency: str, amount_minor: int, lifetime_ms: int
    ) -> None:
        credit_before = self.credit(wallet_id)
        wallet = self.state.wallets.get(wallet_id)
        expires_at_ms = self.now_ms + lifetime_ms
        result = self.step(
            RedeemCredit(self.fresh_id(), wallet_id, Money(amount_minor, currency), expires_at_ms)
        )
        if isinstance(result, Applied):
            after = self.state.wallets[wallet_id]
            assert after.credit_minor == credit_before + amount_minor
            # The bucket expires at the later expiry (the voucher's alone if it was empty).
            if wallet is None or wallet.credit_minor == 0:
                assert after.credit_expires_at_ms == expires_at_ms
            else:
                assert after.credit_expires_at_ms == max(wallet.credit_expires_at_ms, expires_at_ms)
        elif amount_minor > 0 and result.reason is not LedgerRejectReason.BALANCE_LIMIT_EXCEEDED:
            assert result.reason is LedgerRejectReason.CURRENCY_MISMATCH

    @rule(elapsed_ms=st.sampled_from([1, 500, 5_000]))
    def time_passes(self, elapsed_ms: int) -> None:
        self.now_ms += elapsed_ms

    @rule(wallet_id=WALLETS, currency=CURRENCIES)
    def sweep_expired_credit(self, wallet_id: str, currency: str) -> None:
        wallet = self.state.wallets.get(wallet_id)
        breakage_before = self.state.system_balances.get((BREAKAGE_REVENUE_ACCOUNT, currency), 0)
        result = self.step(ExpireCredit(self.fresh_id(), wallet_id, currency, self.now_ms))
        if isinstance(result, Applied):
            assert wallet is not None
            assert wallet.credit_minor > 0
            assert wallet.credit_expires_at_ms <= self.now_ms
            assert self.credit(wallet_id) == 0
            breakage = self.state.system_balances[(BREAKAGE_REVENUE_ACCOUNT, currency)]
            assert breakage == breakage_before + wallet.credit_minor
            assert self.available(wallet_id) == wallet.available_minor
        elif result.reason is LedgerRejectReason.CREDIT_NOT_EXPIRED:
            assert wallet is not None
            assert wallet.credit_minor == 0 or wallet.credit_expires_at_ms > self.now_ms

    def held_parts(self, currency: str) -> tuple[int, int]:
        cash_minor = credit_minor = 0
        for record in self.state.holds.values():
            if record.state is HoldState.OPEN and record.currency == currency:
                cash_minor += record.cash_minor
                credit_minor += record.credit_minor
        return cash_minor, credit_minor

    @invariant()
    def cash_and_credit_each_sum_to_zero(self) -> None:
        # Credit never becomes withdrawable cash: the two sub-ledgers balance on their own.
        for currency in ("USD", "JPY"):
            held_cash, held_credit = self.held_parts(currency)
            wallets = [w for w in self.state.wallets.values() if w.currency == currency]
            balances = self.state.system_balances
            cash = (
                balances.get((EXTERNAL_FUNDING_ACCOUNT, currency), 0)
                + balances.get((PLATFORM_REVENUE_ACCOUNT, currency), 0)
                + sum(balances.get((a, currency), 0) for a in BILLING_REVENUE_ACCOUNTS)
                + sum(w.available_minor for w in wallets)
                + held_cash
            )
            credit = (
                balances.get((CREDIT_OUTSTANDING_ACCOUNT, currency), 0)
                + balances.get((BREAKAGE_REVENUE_ACCOUNT, currency), 0)
                + sum(w.credit_minor for w in wallets)
                + held_credit
            )
            assert cash == 0
            assert credit == 0
            assert balances.get((BREAKAGE_REVENUE_ACCOUNT, currency), 0) >= 0
            assert balances.get((CREDIT_OUTSTANDING_ACCOUNT, currency), 0) <= 0

    # --- end token bank ------------------------------------------------------------------------

    @invariant()
    def count_the_step(self) -> None:
        LedgerMachine.steps_total += 1

    @precondition(lambda self: self.applied)
    @rule(data=st.data())
    def replay_an_earlier_operation(self, data: st.DataObject) -> None:
        operation = data.draw(st.sampled_from(self.applied))
        result = self.step(operation)
        assert isinstance(result, Applied)
        assert result.replayed
        assert result.entry == self.state.operations[operation.operation_id].entry

    @precondition(lambda self: self.applied)
    @rule(data=st.data())
    def reuse_an_operation_id_with_changed_content(self, data: st.DataObject) -> None:
        operation = changed_content(data.draw(st.sampled_from(self.applied)))
        assert fingerprint(operation) != self.state.operations[operation.operation_id].fingerprint
        result = self.step(operation)
        assert isinstance(result, Rejected)
        assert result.reason is LedgerRejectReason.IDEMPOTENCY_CONFLICT

    @invariant()
    def every_currency_sums_to_zero(self) -> None:
        assert all(total == 0 for total in total_by_currency(self.state).values())

    @invariant()
    def no_balance_is_negative(self) -> None:
        for wallet in self.state.wallets.values():
            assert wallet.available_minor >= 0
            assert wallet.held_minor >= 0
            assert wallet.credit_minor >= 0

    @invariant()
    def held_funds_equal_the_open_holds(self) -> None:
        open_minor: dict[str, int] = {}
        for record in self.state.holds.values():
            if record.state is HoldState.OPEN:
                open_minor[record.wallet_id] = open_minor.get(record.wallet_id, 0) + (
                    record.amount_minor
                )
        for wallet in self.state.wallets.values():
            assert wallet.held_minor == open_minor.get(wallet.wallet_id, 0)

    @invariant()
    def platform_revenue_is_the_fees_of_captured_holds(self) -> None:
        fees_minor: dict[str, int] = {}
        for record in self.state.holds.values():
            if record.state is HoldState.CAPTURED:
                fees_minor[record.currency] = fees_minor.get(record.currency, 0) + record.fee_minor
        for currency in ("USD", "JPY"):
            revenue = self.state.system_balances.get((PLATFORM_REVENUE_ACCOUNT, currency), 0)
            assert revenue == fees_minor.get(currency, 0)
            assert revenue >= 0

    @invariant()
    def replayed_ids_are_no_ops(self) -> None:
        assert len(self.state.operations) == len(self.applied)
        for operation in self.applied:
            after, result = apply_to_state(self.state, operation)
            assert after is self.state
            assert isinstance(result, Applied)
            assert result.replayed
            check_entry(result.entry)


LedgerMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("AEX_LEDGER_MACHINE_EXAMPLES", "100")),
    stateful_step_count=int(os.environ.get("AEX_LEDGER_MACHINE_STEPS", "30")),
    deadline=None,
)
TestLedgerMachine = LedgerMachine.TestCase

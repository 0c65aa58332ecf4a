"""Two OS processes on one PostgreSQL ledger: holds and withdrawals racing for the same funds
never overdraw; the same operation applied from both is stored once; a hold captured by both
(different operation ids) is settled exactly once; money is conserved."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator

import pytest

from aex.core import Money, split_fee
from aex.core.ledger import Capture, Deposit, Hold, Withdraw
from aex.core.reasons import LedgerRejectReason
from serve.settlement.postgres_ledger import PostgresLedger
from serve.stores.postgres import PostgresStore
from tests.conftest import TEST_DATABASE_URL, fresh_schema_name
from tests.scale import ledger_worker

pytestmark = pytest.mark.services

PAYERS = 10
HOLDS_PER_PAYER = 5
HOLD_MINOR = 150
DEPOSIT_MINOR = 1_000
FEE_BPS = 1_500


@pytest.fixture
def schema() -> Iterator[str]:
    name = fresh_schema_name()
    PostgresStore(TEST_DATABASE_URL, schema=name, pool_min=1, pool_max=2).close()
    yield name
    PostgresStore(TEST_DATABASE_URL, schema=name, pool_min=1, pool_max=2).drop_schema()


def test_two_processes_never_overdraw_and_settle_each_hold_once(schema: str) -> None:
    store = PostgresStore(TEST_DATABASE_URL, schema=schema, pool_min=1, pool_max=2)
    ledger = PostgresLedger(store)
    usd = Money(DEPOSIT_MINOR, "USD")
    payers = [f"tenant:payer{n}:USD" for n in range(PAYERS)]
    for wallet_id in payers:
        ledger.apply(Deposit(f"fund:{wallet_id}", wallet_id, usd))
    holds = [(f"h{p}x{n}", payers[p]) for p in range(PAYERS) for n in range(HOLDS_PER_PAYER)]

    def phases(process: int) -> list[list[object]]:
        # Phase 1: the same hold operations from both processes, plus withdrawals that compete
        # for the same funds (demand 750 + 2 × 2 × 200 > 1000 per payer). Phase 2: both try to
        # capture every hold, each under its own operation id.
        racing: list[object] = [
            Hold(f"hold:{hold_id}", hold_id, payer, Money(HOLD_MINOR, "USD"))
            for hold_id, payer in holds
        ]
        racing += [
            Withdraw(f"wdr:{payer}:{process}:{n}", payer, Money(200, "USD"))
            for payer in payers
            for n in range(2)
        ]
        captures: list[object] = [
            Capture(f"cap:{hold_id}:{process}", hold_id, f"tenant:payee{process}:USD", FEE_BPS)
            for hold_id, _ in holds
        ]
        return [racing[::-1] if process else racing, captures]

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(
            target=ledger_worker.run,
            args=(TEST_DATABASE_URL, schema, phases(n), barrier, results),
        )
        for n in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = [*results.get(timeout=120), *results.get(timeout=120)]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert len(outcomes) == 2 * (2 * len(holds) + 2 * PAYERS)

    by_operation: dict[str, Counter[str]] = {}
    for operation_id, outcome in outcomes:
        by_operation.setdefault(operation_id, Counter())[outcome] += 1
    for hold_id, _ in holds:
        assert by_operation[f"hold:{hold_id}"]["applied"] <= 1  # stored once, else replayed
    captured = [
        hold_id
        for hold_id, _ in holds
        if by_operation[f"cap:{hold_id}:0"]["applied"] + by_operation[f"cap:{hold_id}:1"]["applied"]
    ]
    for hold_id, _ in holds:
        settled = sum(by_operation[f"cap:{hold_id}:{p}"]["applied"] for p in range(2))
        held = by_operation[f"hold:{hold_id}"]["applied"] == 1
        assert settled == (1 if held else 0)  # exactly once per hold that exists
    refused = LedgerRejectReason.INSUFFICIENT_FUNDS.value
    assert any(outcome == refused for _, outcome in outcomes)  # the race was real

    fee_minor, payout_minor = split_fee(HOLD_MINOR, fee_bps=FEE_BPS)
    payees = [ledger.wallet(f"tenant:payee{p}:USD") for p in range(2)]
    paid = sum(w.available_minor for w in payees if w is not None)
    assert paid == payout_minor * len(captured)
    for wallet_id in payers:
        wallet = ledger.wallet(wallet_id)
        assert wallet is not None
        assert wallet.available_minor >= 0
        assert wallet.held_minor == 0  # every hold was captured
    assert set(ledger.totals_by_currency().values()) == {0}
    assert ledger.wallet_mismatches() == []
    assert fee_minor > 0
    store.close()

"""`make soak`: the ledger state machine (raw operations, contracts with disputes, greedy payees'
withdrawals and holds; tests/core/test_ledger_machine.py) for at least AEX_SOAK_STEPS steps
(default 100,000) with every invariant checked after every step. Skipped unless AEX_SOAK=1:
`make test` runs the same machine at its ordinary size."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.core.test_ledger_machine import LedgerMachine

SOAK_STEPS_MIN = 100_000
STEPS_PER_EXAMPLE = 200
EXAMPLES_PER_ROUND = 100


@pytest.mark.soak
def test_the_ledger_machine_runs_100000_steps_without_breaking_an_invariant() -> None:
    target = int(os.environ.get("AEX_SOAK_STEPS", str(SOAK_STEPS_MIN)))
    soak = settings(
        max_examples=EXAMPLES_PER_ROUND,
        stateful_step_count=STEPS_PER_EXAMPLE,
        deadline=None,
        database=None,  # fresh random examples every round, not the saved ones again
        suppress_health_check=list(HealthCheck),
    )
    LedgerMachine.steps_total = 0
    started = time.monotonic()
    rounds = 0
    while LedgerMachine.steps_total < target:
        run_state_machine_as_test(LedgerMachine, settings=soak)
        rounds += 1
    elapsed_s = time.monotonic() - started
    print(
        f"\nledger soak: {LedgerMachine.steps_total} steps in {rounds} rounds of"
        f" {EXAMPLES_PER_ROUND} examples, {elapsed_s:.1f} s,"
        f" {LedgerMachine.steps_total / elapsed_s:.0f} steps/s, no invariant broken"
    )
    assert LedgerMachine.steps_total >= target

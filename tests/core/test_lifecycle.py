"""aex/core/lifecycle.py: work and contract lifecycles are tables, and only the table moves them.

Invariants: every state reached by any event sequence is a state of the table; a terminal state
is never left; an illegal event is one Rejected(ILLEGAL_TRANSITION, field="status") and leaves
the state unchanged; docs/lifecycles.md is exactly what the tables render.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from aex.core.lifecycle import (
    CONTRACT_LIFECYCLE,
    CONTRACT_TRANSITIONS,
    WORK_LIFECYCLE,
    WORK_TRANSITIONS,
    ContractEventKind,
    ContractState,
    WorkEventKind,
    WorkState,
    render_lifecycles_markdown,
    render_mermaid,
    transition,
)
from aex.core.reasons import LifecycleRejectReason, Rejected

DOC = Path(__file__).resolve().parents[2] / "docs" / "lifecycles.md"


# The happy paths, word for word.
@pytest.mark.parametrize(
    ("path", "final"),
    [
        (
            [WorkEventKind.CLOSE_WINDOW, WorkEventKind.AWARD],
            WorkState.AWARDED,
        ),
        (
            [WorkEventKind.CLOSE_WINDOW, WorkEventKind.FIND_NO_VALID_BID],
            WorkState.UNFILLED,
        ),
        ([WorkEventKind.CANCEL], WorkState.CANCELLED),
    ],
)
def test_work_moves_from_bidding_to_award_unfilled_or_cancelled(
    path: list[WorkEventKind], final: WorkState
) -> None:
    state = WORK_LIFECYCLE.initial
    for event in path:
        next_state = transition(state, event)
        assert isinstance(next_state, WorkState)
        state = next_state
    assert state is final


def test_contract_runs_awarded_executing_completed_settled() -> None:
    state = ContractState.AWARDED
    for event, expected in [
        (ContractEventKind.REPORT_PROGRESS, ContractState.EXECUTING),
        (ContractEventKind.REPORT_PROGRESS, ContractState.EXECUTING),
        (ContractEventKind.COMPLETE, ContractState.COMPLETED),
        (ContractEventKind.SETTLE, ContractState.SETTLED),
    ]:
        next_state = transition(state, event)
        assert next_state is expected
        state = next_state


@pytest.mark.parametrize(
    ("state", "event"),
    [
        # "no completing a failed contract"
        (ContractState.FAILED, ContractEventKind.COMPLETE),
        # concurrent completion calls settle exactly once: the second COMPLETE is refused
        (ContractState.COMPLETED, ContractEventKind.COMPLETE),
        (ContractState.SETTLED, ContractEventKind.COMPLETE),
        (ContractState.SETTLED, ContractEventKind.SETTLE),
        # a failure or cancellation is final
        (ContractState.FAILED, ContractEventKind.SETTLE),
        (ContractState.CANCELLED, ContractEventKind.REPORT_PROGRESS),
        # the provider cannot be cancelled on once it has started
        (ContractState.EXECUTING, ContractEventKind.CANCEL),
        # a dispute needs a settled contract, and a resolution needs a dispute
        (ContractState.EXECUTING, ContractEventKind.DISPUTE),
        (ContractState.SETTLED, ContractEventKind.RESOLVE_REFUND),
        (ContractState.REFUNDED, ContractEventKind.DISPUTE),
    ],
)
def test_contract_guard_refuses_illegal_event(
    state: ContractState, event: ContractEventKind
) -> None:
    result = transition(state, event)
    assert isinstance(result, Rejected)
    assert result.reason is LifecycleRejectReason.ILLEGAL_TRANSITION
    assert result.field == "status"
    assert result.http_status == 409


@pytest.mark.parametrize(
    ("state", "event"),
    [
        # "no second award"
        (WorkState.AWARDED, WorkEventKind.AWARD),
        # a window closes exactly once
        (WorkState.EVALUATING, WorkEventKind.CLOSE_WINDOW),
        # cancel only "while bidding is open"
        (WorkState.EVALUATING, WorkEventKind.CANCEL),
        (WorkState.AWARDED, WorkEventKind.CANCEL),
        # no award before the window closes
        (WorkState.OPEN, WorkEventKind.AWARD),
        (WorkState.UNFILLED, WorkEventKind.AWARD),
    ],
)
def test_work_guard_refuses_illegal_event(state: WorkState, event: WorkEventKind) -> None:
    result = transition(state, event)
    assert isinstance(result, Rejected)
    assert result.reason is LifecycleRejectReason.ILLEGAL_TRANSITION


def test_dispute_resolves_to_refund_or_pay_out() -> None:
    assert transition(ContractState.SETTLED, ContractEventKind.DISPUTE) is ContractState.DISPUTED
    disputed = ContractState.DISPUTED
    assert transition(disputed, ContractEventKind.RESOLVE_REFUND) is ContractState.REFUNDED
    assert transition(disputed, ContractEventKind.RESOLVE_PAY_OUT) is ContractState.SETTLED


def test_mixing_work_and_contract_events_is_a_programming_error() -> None:
    with pytest.raises(AssertionError):
        transition(WorkState.OPEN, ContractEventKind.COMPLETE)  # type: ignore[call-overload]


def test_transition_is_exactly_a_table_lookup() -> None:
    for state in WorkState:
        for work_event in WorkEventKind:
            expected = WORK_TRANSITIONS.get((state, work_event))
            result = transition(state, work_event)
            assert result is expected if expected else isinstance(result, Rejected)
    for contract_state in ContractState:
        for contract_event in ContractEventKind:
            expected_c = CONTRACT_TRANSITIONS.get((contract_state, contract_event))
            result_c = transition(contract_state, contract_event)
            assert result_c is expected_c if expected_c else isinstance(result_c, Rejected)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(ContractEventKind)), max_size=30))
def test_random_contract_events_never_leave_the_table_or_a_terminal_state(
    events: list[ContractEventKind],
) -> None:
    state = CONTRACT_LIFECYCLE.initial
    for event in events:
        result = transition(state, event)
        if isinstance(result, Rejected):
            continue
        assert result in ContractState
        assert state not in CONTRACT_LIFECYCLE.terminal
        assert (state, event) in CONTRACT_TRANSITIONS
        state = result


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(WorkEventKind)), max_size=12))
def test_random_work_events_award_at_most_once(events: list[WorkEventKind]) -> None:
    state = WORK_LIFECYCLE.initial
    awards = 0
    for event in events:
        result = transition(state, event)
        if isinstance(result, Rejected):
            continue
        assert state not in WORK_LIFECYCLE.terminal
        awards += result is WorkState.AWARDED
        state = result
    assert awards <= 1


class ContractMachine(RuleBasedStateMachine):
    """Drives a contract with random events and counts the money moves each would make."""

    def __init__(self) -> None:
        super().__init__()
        self.state = CONTRACT_LIFECYCLE.initial
        self.settlements = 0
        self.refunds = 0
        self.completions = 0

    @rule(event=st.sampled_from(list(ContractEventKind)))
    def apply(self, event: ContractEventKind) -> None:
        result = transition(self.state, event)
        if isinstance(result, Rejected):
            return
        self.settlements += event is ContractEventKind.SETTLE
        self.refunds += event is ContractEventKind.RESOLVE_REFUND
        self.completions += event is ContractEventKind.COMPLETE
        self.state = result

    @precondition(lambda self: self.state in CONTRACT_LIFECYCLE.terminal)
    @rule(event=st.sampled_from(list(ContractEventKind)))
    def terminal_refuses_everything(self, event: ContractEventKind) -> None:
        assert isinstance(transition(self.state, event), Rejected)

    @invariant()
    def settles_and_completes_at_most_once(self) -> None:
        assert self.settlements <= 1
        assert self.completions <= 1
        assert self.refunds <= self.settlements

    @invariant()
    def a_refunded_contract_was_settled_first(self) -> None:
        if self.state is ContractState.REFUNDED:
            assert self.settlements == 1


ContractMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=20, deadline=None)
TestContractMachine = ContractMachine.TestCase


def test_mermaid_diagram_has_one_edge_per_table_entry() -> None:
    diagram = render_mermaid(CONTRACT_LIFECYCLE)
    assert diagram.startswith("stateDiagram-v2\n    [*] --> AWARDED\n")
    assert diagram.count(" --> ") == len(CONTRACT_TRANSITIONS) + 1 + 3
    assert "    FAILED --> [*]" in diagram
    assert "    AWARDED --> FAILED: fail" in diagram


def test_committed_lifecycle_doc_is_generated_from_the_tables() -> None:
    # Regenerate with: .venv/bin/python -m tools.render_lifecycles
    assert DOC.read_text() == render_lifecycles_markdown()

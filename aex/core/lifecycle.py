# Rule: which states work and contracts move through, and which event may move them, is decided
# here and only here: by the two TRANSITIONS tables below.
#
# Theory of operation (after h11's _state.py): each lifecycle is an Enum of states, an Enum of
# event kinds and one table `dict[tuple[State, EventKind], State]`. A transition is a lookup; a
# missing key is an illegal transition and yields one `Rejected(ILLEGAL_TRANSITION,
# field="status")`, which drivers answer with 409. The tables are the whole truth: the guards the
# issue asks for are missing keys (no COMPLETE out of FAILED; no AWARD out of AWARDED, so a work
# is awarded at most once; no second COMPLETE, so concurrent completion calls settle once when a
# driver applies the transition under a row lock or compare-and-set on the status). Facts that
# are not states (the dispute window's clock, whether a dispute was already raised) are checked
# in aex/core/market.py. docs/lifecycles.md is generated from these tables by
# `render_lifecycles_markdown()` (tests/core/test_lifecycle.py checks the committed copy).
#
# Work: OPEN (bid window open) -> EVALUATING (window closed, bids being scored) -> AWARDED (a
# contract exists) | UNFILLED (no valid bid; nothing charged); CANCELLED by its consumer while
# bidding is open. Contract: AWARDED -> EXECUTING (first progress report) -> COMPLETED (results in,
# success criteria met) -> SETTLED (escrow captured: provider paid price - fee, platform the fee);
# FAILED (criteria unmet or provider gave up: escrow released to the consumer); CANCELLED before
# the provider starts; a SETTLED contract may be DISPUTED once within the dispute window, and the
# operator resolves it to REFUNDED (the captured escrow goes back) or back to SETTLED (paid out).
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Generic, TypeVar, overload

from aex.core.reasons import LifecycleRejectReason, Rejected

__all__ = [
    "CONTRACT_LIFECYCLE",
    "CONTRACT_TRANSITIONS",
    "WORK_LIFECYCLE",
    "WORK_TRANSITIONS",
    "ContractEventKind",
    "ContractState",
    "Lifecycle",
    "WorkEventKind",
    "WorkState",
    "render_lifecycles_markdown",
    "render_mermaid",
    "transition",
]


class WorkState(StrEnum):
    OPEN = "OPEN"
    EVALUATING = "EVALUATING"
    AWARDED = "AWARDED"
    UNFILLED = "UNFILLED"
    CANCELLED = "CANCELLED"


class WorkEventKind(StrEnum):
    CLOSE_WINDOW = "close_window"
    AWARD = "award"
    FIND_NO_VALID_BID = "find_no_valid_bid"
    CANCEL = "cancel"


class ContractState(StrEnum):
    AWARDED = "AWARDED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    SETTLED = "SETTLED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    DISPUTED = "DISPUTED"
    REFUNDED = "REFUNDED"


class ContractEventKind(StrEnum):
    REPORT_PROGRESS = "report_progress"
    COMPLETE = "complete"
    SETTLE = "settle"
    FAIL = "fail"
    CANCEL = "cancel"
    DISPUTE = "dispute"
    RESOLVE_REFUND = "resolve_refund"
    RESOLVE_PAY_OUT = "resolve_pay_out"


# The spec: "Bid window opens ... Best agent wins the contract automatically"; the issue: "with no
# valid bid the work closes unfilled and nothing is charged", "cancels it while bidding is open".
WORK_TRANSITIONS: Final[Mapping[tuple[WorkState, WorkEventKind], WorkState]] = {
    (WorkState.OPEN, WorkEventKind.CLOSE_WINDOW): WorkState.EVALUATING,
    (WorkState.OPEN, WorkEventKind.CANCEL): WorkState.CANCELLED,
    (WorkState.EVALUATING, WorkEventKind.AWARD): WorkState.AWARDED,
    (WorkState.EVALUATING, WorkEventKind.FIND_NO_VALID_BID): WorkState.UNFILLED,
}

# The issue: "States AWARDED → EXECUTING → COMPLETED → SETTLED, or FAILED, CANCELLED, DISPUTED,
# with guards (no completing a failed contract, no second award)".
CONTRACT_TRANSITIONS: Final[Mapping[tuple[ContractState, ContractEventKind], ContractState]] = {
    (ContractState.AWARDED, ContractEventKind.REPORT_PROGRESS): ContractState.EXECUTING,
    (ContractState.EXECUTING, ContractEventKind.REPORT_PROGRESS): ContractState.EXECUTING,
    (ContractState.AWARDED, ContractEventKind.COMPLETE): ContractState.COMPLETED,
    (ContractState.EXECUTING, ContractEventKind.COMPLETE): ContractState.COMPLETED,
    (ContractState.AWARDED, ContractEventKind.FAIL): ContractState.FAILED,
    (ContractState.EXECUTING, ContractEventKind.FAIL): ContractState.FAILED,
    (ContractState.AWARDED, ContractEventKind.CANCEL): ContractState.CANCELLED,
    (ContractState.COMPLETED, ContractEventKind.SETTLE): ContractState.SETTLED,
    (ContractState.SETTLED, ContractEventKind.DISPUTE): ContractState.DISPUTED,
    (ContractState.DISPUTED, ContractEventKind.RESOLVE_REFUND): ContractState.REFUNDED,
    (ContractState.DISPUTED, ContractEventKind.RESOLVE_PAY_OUT): ContractState.SETTLED,
}

_ILLEGAL: Final = LifecycleRejectReason.ILLEGAL_TRANSITION

# Any lifecycle whose states and events are string enums (work, contract, certificate).
S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Lifecycle(Generic[S, E]):
    """One lifecycle: its name, initial state, terminal states and transition table."""

    name: str
    initial: S
    terminal: frozenset[S]
    transitions: Mapping[tuple[S, E], S]

    def __post_init__(self) -> None:
        sources = {state for state, _ in self.transitions}
        targets = set(self.transitions.values())
        # Terminal means: no way out. Every declared terminal state has no outgoing edge, and
        # every state without one is declared terminal.
        assert self.terminal.isdisjoint(sources)
        assert (targets | {self.initial}) - sources == set(self.terminal)
        # Every state is reachable from the initial one (a fixed-point bounded by the table).
        reachable = {self.initial}
        for _ in range(len(self.transitions)):
            reachable |= {t for (s, _), t in self.transitions.items() if s in reachable}
        assert reachable == sources | targets | {self.initial}


WORK_LIFECYCLE: Final[Lifecycle[WorkState, WorkEventKind]] = Lifecycle(
    name="work",
    initial=WorkState.OPEN,
    terminal=frozenset({WorkState.AWARDED, WorkState.UNFILLED, WorkState.CANCELLED}),
    transitions=WORK_TRANSITIONS,
)
CONTRACT_LIFECYCLE: Final[Lifecycle[ContractState, ContractEventKind]] = Lifecycle(
    name="contract",
    initial=ContractState.AWARDED,
    terminal=frozenset({ContractState.FAILED, ContractState.CANCELLED, ContractState.REFUNDED}),
    transitions=CONTRACT_TRANSITIONS,
)
assert set(WorkState) == {s for s, _ in WORK_TRANSITIONS} | set(WORK_LIFECYCLE.terminal)
assert set(ContractState) == {s for s, _ in CONTRACT_TRANSITIONS} | CONTRACT_LIFECYCLE.terminal


@overload
def transition(
    state: WorkState, event: WorkEventKind
) -> WorkState | Rejected[LifecycleRejectReason]: ...
@overload
def transition(
    state: ContractState, event: ContractEventKind
) -> ContractState | Rejected[LifecycleRejectReason]: ...
def transition(
    state: WorkState | ContractState, event: WorkEventKind | ContractEventKind
) -> WorkState | ContractState | Rejected[LifecycleRejectReason]:
    """The state after `event`, looked up in the lifecycle's TRANSITIONS table.

    Args:
        state: the current WorkState or ContractState.
        event: an event kind of the same lifecycle.

    Returns:
        The next state, or Rejected(ILLEGAL_TRANSITION, field="status") when the table has no
        entry for (state, event): for example COMPLETE on a FAILED contract, or AWARD on AWARDED
        work.
    """
    if isinstance(state, WorkState):
        assert isinstance(event, WorkEventKind), "a work state takes work events"
        work_next = WORK_TRANSITIONS.get((state, event))
        if work_next is not None:
            return work_next
    else:
        assert isinstance(event, ContractEventKind), "a contract state takes contract events"
        contract_next = CONTRACT_TRANSITIONS.get((state, event))
        if contract_next is not None:
            return contract_next
    return Rejected(
        LifecycleRejectReason.ILLEGAL_TRANSITION,
        "status",
        f"cannot {event.value} when status is {state.value}",
    )


def render_mermaid(lifecycle: Lifecycle[S, E]) -> str:
    """Renders a lifecycle's table as a Mermaid `stateDiagram-v2`, edges in table order."""
    lines = ["stateDiagram-v2", f"    [*] --> {lifecycle.initial.value}"]
    lines += [
        f"    {source.value} --> {target.value}: {event.value}"
        for (source, event), target in lifecycle.transitions.items()
    ]
    order = list(type(lifecycle.initial))
    lines += [f"    {state.value} --> [*]" for state in order if state in lifecycle.terminal]
    return "\n".join(lines) + "\n"


def render_lifecycles_markdown() -> str:
    """The full text of docs/lifecycles.md, generated from the two tables."""
    parts = [
        "# Lifecycles\n",
        "Generated from `aex/core/lifecycle.py` by `python -m tools.render_lifecycles`;",
        "do not edit by hand (tests/core/test_lifecycle.py checks this file against the tables).",
        "An event missing from a state's edges is refused with"
        f" `{_ILLEGAL.value}` (HTTP {_ILLEGAL.http_status}).",
    ]
    parts += _markdown_section(WORK_LIFECYCLE)
    parts += _markdown_section(CONTRACT_LIFECYCLE)
    return "\n".join(parts) + "\n"


# One lifecycle's heading, summary line and diagram.
def _markdown_section(lifecycle: Lifecycle[S, E]) -> list[str]:
    terminal = ", ".join(s.value for s in type(lifecycle.initial) if s in lifecycle.terminal)
    return [
        "",
        f"## {lifecycle.name.capitalize()}",
        "",
        f"Initial state {lifecycle.initial.value}; terminal states {terminal}.",
        "",
        "```mermaid",
        render_mermaid(lifecycle).rstrip("\n"),
        "```",
    ]

"""aex/core/market.py: work specs, bids, completions and disputes enter the market only valid.

The spec's Workflow 1 work body and Workflow 2 bid body are accepted as written; each way of
breaking them is refused with the reason and field the problem document will carry.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aex.core import limits
from aex.core.criteria import CriteriaResult, Criterion, evaluate_criteria
from aex.core.lifecycle import ContractEventKind, ContractState, WorkState
from aex.core.market import (
    BID_WINDOW_SECONDS_DEFAULT,
    DISPUTE_WINDOW_MS,
    ContractOutcomeFacts,
    bid_window_closes_at_ms,
    check_bid_admission,
    check_dispute,
    completion_event,
    counts_as_evidence,
    is_late,
    outcome_of,
    parse_bid,
    parse_completion,
    parse_dispute_reason,
    parse_progress,
    parse_resolution,
    parse_work_spec,
    payout_due,
    work_reserve,
)
from aex.core.money import Money
from aex.core.reasons import (
    BidAdmitRejectReason,
    BidSubmitRejectReason,
    CompletionRejectReason,
    CriteriaRejectReason,
    DisputeRejectReason,
    DisputeRequestRejectReason,
    DurationRejectReason,
    MetricsRejectReason,
    MoneyRejectReason,
    ProgressRejectReason,
    Reason,
    Rejected,
    ResolutionRejectReason,
    TextRejectReason,
    WorkRejectReason,
)
from aex.core.reputation import OutcomeKind

HOUR_MS = 3_600_000


def spec_work() -> dict[str, Any]:
    # Workflow 1, step 3, as a JSON decoder with a Decimal float hook hands it over.
    return {
        "title": "Review Go microservices codebase",
        "category": "TECHNOLOGY",
        "budget": {"min": 50, "max": 200, "currency": "USD"},
        "requirements": {"language": "Go", "scope": "security"},
        "success_criteria": [{"metric": "coverage", "threshold": Decimal("0.8")}],
    }


def spec_bid() -> dict[str, Any]:
    # Workflow 2, step 4.
    return {
        "work_id": "work_xyz",
        "provider_id": "prov_abc",
        "price": 100,
        "confidence": Decimal("0.95"),
        "estimated_duration": "2h",
        "sla": {"max_turnaround": "4h"},
    }


# ---------------------------------------------------------------------------------------------
# Work


def test_spec_work_is_accepted_with_the_default_window() -> None:
    spec = parse_work_spec(spec_work())
    assert not isinstance(spec, Rejected)
    assert spec.title == "Review Go microservices codebase"
    assert spec.budget_min == Money(5_000, "USD")
    assert spec.budget_max == Money(20_000, "USD")
    assert spec.success_criteria == (Criterion("coverage", 0.8),)
    assert spec.bid_window_ms == BID_WINDOW_SECONDS_DEFAULT * 1000
    assert (spec.required_turnaround_ms, spec.hard_limit_turnaround_ms) == (0, 0)
    assert spec.capability is None


def test_work_json_shows_money_as_strings_and_durations_as_literals() -> None:
    body = spec_work() | {
        "capability": "code.review",
        "bid_window_seconds": 60,
        "sla": {"max_turnaround": "4h", "hard_limit": "1d"},
    }
    spec = parse_work_spec(body)
    assert not isinstance(spec, Rejected)
    shown = spec.to_json()
    assert shown["budget"] == {"min": "50.00", "max": "200.00", "currency": "USD"}
    assert shown["sla"] == {"max_turnaround": "4h", "hard_limit": "1d"}
    assert shown["bid_window_seconds"] == 60
    assert parse_work_spec(shown) == spec  # what the API shows back is itself a valid body


@pytest.mark.parametrize("seconds", [5, 30, 300])
def test_bid_window_from_5_to_300_seconds_is_accepted(seconds: int) -> None:
    spec = parse_work_spec(spec_work() | {"bid_window_seconds": seconds})
    assert not isinstance(spec, Rejected)
    assert bid_window_closes_at_ms(1_000, spec) == 1_000 + seconds * 1000


def _set(body: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    # A copy of body with the dotted path set (or deleted when value is ...).
    copy = {k: (dict(v) if isinstance(v, dict) else v) for k, v in body.items()}
    *parents, leaf = path.split(".")
    target = copy
    for key in parents:
        target = target[key]
    if value is ...:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return copy


@pytest.mark.parametrize(
    ("path", "value", "reason", "field"),
    [
        ("title", ..., WorkRejectReason.WORK_FIELD_MISSING, "title"),
        ("budget", ..., WorkRejectReason.WORK_FIELD_MISSING, "budget"),
        ("deadline", "tomorrow", WorkRejectReason.WORK_FIELD_UNKNOWN, "deadline"),
        ("title", "   ", WorkRejectReason.WORK_TITLE_INVALID, "title"),
        ("title", 42, WorkRejectReason.WORK_TITLE_INVALID, "title"),
        ("title", "x" * 201, WorkRejectReason.WORK_TITLE_INVALID, "title"),
        ("title", "two\nlines", WorkRejectReason.WORK_TITLE_INVALID, "title"),
        ("category", "technology", WorkRejectReason.WORK_CATEGORY_INVALID, "category"),
        ("category", "", WorkRejectReason.WORK_CATEGORY_INVALID, "category"),
        ("capability", "Code Review", WorkRejectReason.WORK_CAPABILITY_INVALID, "capability"),
        ("budget", [50, 200], WorkRejectReason.WORK_BUDGET_TYPE_INVALID, "budget"),
        ("budget.currency", "XYZ", MoneyRejectReason.CURRENCY_UNKNOWN, "budget.currency"),
        ("budget.min", 50.0, MoneyRejectReason.AMOUNT_TYPE_INVALID, "budget.min"),
        (
            "budget.max",
            Decimal("200.001"),
            MoneyRejectReason.AMOUNT_PRECISION_EXCEEDED,
            "budget.max",
        ),
        ("budget.min", -1, WorkRejectReason.WORK_BUDGET_NEGATIVE, "budget"),
        ("budget.max", 0, WorkRejectReason.WORK_BUDGET_MAX_NOT_POSITIVE, "budget.max"),
        ("budget.min", 201, WorkRejectReason.WORK_BUDGET_MIN_EXCEEDS_MAX, "budget.min"),
        ("requirements", "Go", WorkRejectReason.WORK_REQUIREMENTS_INVALID, "requirements"),
        (
            "requirements",
            {"blob": "x" * limits.requirements_bytes_max},
            WorkRejectReason.WORK_REQUIREMENTS_TOO_LARGE,
            "requirements",
        ),
        (
            "success_criteria",
            [{"metric": "coverage"}],
            CriteriaRejectReason.CRITERION_THRESHOLD_INVALID,
            "success_criteria[0].threshold",
        ),
        ("bid_window_seconds", 4, WorkRejectReason.WORK_BID_WINDOW_OUT_OF_RANGE, None),
        ("bid_window_seconds", 301, WorkRejectReason.WORK_BID_WINDOW_OUT_OF_RANGE, None),
        ("bid_window_seconds", Decimal("30.5"), WorkRejectReason.WORK_BID_WINDOW_INVALID, None),
        ("bid_window_seconds", True, WorkRejectReason.WORK_BID_WINDOW_INVALID, None),
        ("sla", {"deadline": "4h"}, WorkRejectReason.WORK_SLA_TYPE_INVALID, "sla"),
        (
            "sla",
            {"max_turnaround": "4 h"},
            DurationRejectReason.DURATION_SYNTAX_INVALID,
            "sla.max_turnaround",
        ),
        (
            "sla",
            {"max_turnaround": "4h", "hard_limit": "2h"},
            WorkRejectReason.WORK_SLA_HARD_LIMIT_BELOW_WANTED,
            "sla.hard_limit",
        ),
    ],
)
def test_broken_work_spec_is_rejected_naming_the_field(
    path: str, value: object, reason: Reason, field: str | None
) -> None:
    result = parse_work_spec(_set(spec_work(), path, value))
    assert isinstance(result, Rejected)
    assert result.reason is reason
    assert result.field == (field or path)


def test_non_object_work_body_is_a_422() -> None:
    result = parse_work_spec(["title"])
    assert isinstance(result, Rejected)
    assert result.reason is WorkRejectReason.WORK_BODY_TYPE_INVALID
    assert result.http_status == 422


def test_work_reserves_its_budget_maximum() -> None:
    spec = parse_work_spec(spec_work())
    assert not isinstance(spec, Rejected)
    assert work_reserve(spec) == Money(20_000, "USD")


# ---------------------------------------------------------------------------------------------
# Bids


def test_spec_bid_is_accepted() -> None:
    bid = parse_bid(spec_bid(), currency="USD")
    assert not isinstance(bid, Rejected)
    assert bid.price == Money(10_000, "USD")
    assert bid.confidence == 0.95
    assert bid.estimated_duration_ms == 2 * HOUR_MS
    assert bid.max_turnaround_ms == 4 * HOUR_MS
    assert bid.sample_work is None


def test_bid_price_is_read_in_the_work_currency() -> None:
    bid = parse_bid(spec_bid() | {"price": "12500"}, currency="JPY")
    assert not isinstance(bid, Rejected)
    assert bid.price == Money(12_500, "JPY")
    refused = parse_bid(spec_bid() | {"price": Decimal("0.5")}, currency="JPY")
    assert isinstance(refused, Rejected)
    assert refused.reason is MoneyRejectReason.AMOUNT_PRECISION_EXCEEDED


@pytest.mark.parametrize(
    ("path", "value", "reason", "field"),
    [
        ("sla", ..., BidSubmitRejectReason.BID_FIELD_MISSING, "sla"),
        ("currency", "USD", BidSubmitRejectReason.BID_FIELD_UNKNOWN, "currency"),
        ("work_id", "work xyz", BidSubmitRejectReason.BID_ID_INVALID, "work_id"),
        ("provider_id", "", BidSubmitRejectReason.BID_ID_INVALID, "provider_id"),
        ("provider_id", 7, BidSubmitRejectReason.BID_ID_INVALID, "provider_id"),
        ("price", 100.0, MoneyRejectReason.AMOUNT_TYPE_INVALID, "price"),
        ("price", "1e2", MoneyRejectReason.AMOUNT_SYNTAX_INVALID, "price"),
        ("price", 0, BidSubmitRejectReason.BID_PRICE_NOT_POSITIVE, "price"),
        ("price", -5, BidSubmitRejectReason.BID_PRICE_NOT_POSITIVE, "price"),
        ("confidence", "high", BidSubmitRejectReason.BID_CONFIDENCE_INVALID, "confidence"),
        ("confidence", True, BidSubmitRejectReason.BID_CONFIDENCE_INVALID, "confidence"),
        ("confidence", 1.01, BidSubmitRejectReason.BID_CONFIDENCE_OUT_OF_RANGE, "confidence"),
        ("confidence", -0.0001, BidSubmitRejectReason.BID_CONFIDENCE_OUT_OF_RANGE, "confidence"),
        ("confidence", math.nan, BidSubmitRejectReason.BID_CONFIDENCE_OUT_OF_RANGE, "confidence"),
        (
            "confidence",
            Decimal("Infinity"),
            BidSubmitRejectReason.BID_CONFIDENCE_OUT_OF_RANGE,
            "confidence",
        ),
        (
            "estimated_duration",
            "2",
            DurationRejectReason.DURATION_SYNTAX_INVALID,
            "estimated_duration",
        ),
        ("sla", "4h", BidSubmitRejectReason.BID_SLA_TYPE_INVALID, "sla"),
        (
            "sla.max_turnaround",
            "0h",
            DurationRejectReason.DURATION_NOT_POSITIVE,
            "sla.max_turnaround",
        ),
        (
            "estimated_duration",
            "5h",
            BidSubmitRejectReason.BID_ESTIMATE_EXCEEDS_TURNAROUND,
            "estimated_duration",
        ),
        (
            "sample_work",
            {1, 2},
            BidSubmitRejectReason.BID_SAMPLE_WORK_INVALID,
            "sample_work",
        ),
        (
            "sample_work",
            "x" * (limits.sample_work_bytes_max + 1),
            BidSubmitRejectReason.BID_SAMPLE_WORK_TOO_LARGE,
            "sample_work",
        ),
    ],
)
def test_broken_bid_is_rejected_naming_the_field(
    path: str, value: object, reason: Reason, field: str
) -> None:
    result = parse_bid(_set(spec_bid(), path, value), currency="USD")
    assert isinstance(result, Rejected)
    assert (result.reason, result.field) == (reason, field)


def test_bid_confidence_bounds_are_inclusive() -> None:
    for confidence in (0, 1, Decimal("1.0"), 0.0):
        assert not isinstance(
            parse_bid(spec_bid() | {"confidence": confidence}, currency="USD"), Rejected
        )


def test_sample_work_is_kept_as_given() -> None:
    sample = {"url": "https://example.com/review.md", "excerpt": "..."}
    bid = parse_bid(spec_bid() | {"sample_work": sample}, currency="USD")
    assert not isinstance(bid, Rejected)
    assert bid.sample_work == sample


def admission(**overrides: Any) -> Rejected[BidAdmitRejectReason] | None:
    facts: dict[str, Any] = {
        "work_state": WorkState.OPEN,
        "now_ms": 10_000,
        "window_closes_at_ms": 40_000,
        "provider_active": True,
        "provider_subscribed": True,
        "provider_has_bid": False,
        "bids_on_work": 3,
        "provider_owned_by_consumer": False,
    }
    return check_bid_admission(**(facts | overrides))


@pytest.mark.parametrize(
    ("overrides", "reason", "status"),
    [
        ({"work_state": WorkState.EVALUATING}, BidAdmitRejectReason.BID_WORK_NOT_OPEN, 409),
        ({"work_state": WorkState.CANCELLED}, BidAdmitRejectReason.BID_WORK_NOT_OPEN, 409),
        # "a bid after close refused", even before the closer has run
        ({"now_ms": 40_000}, BidAdmitRejectReason.BID_WINDOW_CLOSED, 409),
        # "a provider that is unsubscribed or suspended cannot bid"
        ({"provider_active": False}, BidAdmitRejectReason.BID_PROVIDER_INACTIVE, 403),
        # issue 11: no self-dealing, a consumer's own provider may not bid on its work
        (
            {"provider_owned_by_consumer": True},
            BidAdmitRejectReason.BID_PROVIDER_OWNED_BY_CONSUMER,
            403,
        ),
        ({"provider_subscribed": False}, BidAdmitRejectReason.BID_PROVIDER_NOT_SUBSCRIBED, 403),
        ({"provider_has_bid": True}, BidAdmitRejectReason.BID_ALREADY_SUBMITTED, 409),
        ({"bids_on_work": limits.bids_per_work_max}, BidAdmitRejectReason.BID_LIMIT_REACHED, 409),
    ],
)
def test_bid_outside_the_open_window_or_from_ineligible_provider_is_refused(
    overrides: dict[str, Any], reason: BidAdmitRejectReason, status: int
) -> None:
    result = admission(**overrides)
    assert result is not None
    assert result.reason is reason
    assert result.http_status == status


def test_bid_in_the_last_millisecond_of_the_window_is_admitted() -> None:
    assert admission(now_ms=39_999) is None


def test_admission_checks_run_in_precedence_order() -> None:
    result = admission(now_ms=50_000, provider_active=False, provider_has_bid=True)
    assert result is not None
    assert result.reason is BidAdmitRejectReason.BID_WINDOW_CLOSED


# ---------------------------------------------------------------------------------------------
# Completion, disputes, outcomes


def test_completion_report_is_read_and_checked_against_the_criteria() -> None:
    completion = parse_completion(
        {"results": {"report": "3 findings"}, "metrics": {"coverage": Decimal("0.9")}}
    )
    assert not isinstance(completion, Rejected)
    result = evaluate_criteria((Criterion("coverage", 0.8),), completion.metrics)
    assert completion_event(result) is ContractEventKind.COMPLETE
    shortfall = evaluate_criteria((Criterion("coverage", 0.95),), completion.metrics)
    assert completion_event(shortfall) is ContractEventKind.FAIL
    assert completion_event(CriteriaResult((), True)) is ContractEventKind.COMPLETE


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("done", CompletionRejectReason.COMPLETION_BODY_TYPE_INVALID),
        ({"results": 1, "status": "ok"}, CompletionRejectReason.COMPLETION_FIELD_UNKNOWN),
        ({"results": {"x": math.inf}}, CompletionRejectReason.COMPLETION_RESULTS_INVALID),
        (
            {"results": "x" * (limits.results_bytes_max + 1)},
            CompletionRejectReason.COMPLETION_RESULTS_TOO_LARGE,
        ),
        ({"metrics": {"coverage": "high"}}, MetricsRejectReason.METRIC_VALUE_INVALID),
    ],
)
def test_broken_completion_report_is_rejected(body: object, reason: Reason) -> None:
    result = parse_completion(body)
    assert isinstance(result, Rejected)
    assert result.reason is reason


def test_deeply_nested_results_are_refused_without_recursion() -> None:
    deep: object = 1
    for _ in range(10_000):
        deep = [deep]
    result = parse_completion({"results": deep})
    assert isinstance(result, Rejected)
    assert result.reason is CompletionRejectReason.COMPLETION_RESULTS_INVALID


def test_dispute_window_is_72_hours_after_settlement_inclusive() -> None:
    assert DISPUTE_WINDOW_MS == 72 * HOUR_MS
    settled = 1_000_000
    assert check_dispute(settled_at_ms=settled, now_ms=settled, dispute_raised_at_ms=None) is None
    last = settled + DISPUTE_WINDOW_MS
    assert check_dispute(settled_at_ms=settled, now_ms=last, dispute_raised_at_ms=None) is None
    late = check_dispute(settled_at_ms=settled, now_ms=last + 1, dispute_raised_at_ms=None)
    assert late is not None
    assert late.reason is DisputeRejectReason.DISPUTE_WINDOW_CLOSED
    assert late.http_status == 409


def test_a_paid_out_contract_can_no_longer_be_disputed_even_inside_the_window() -> None:
    # A lagging worker's clock may still be inside the window after another paid it out.
    late = check_dispute(
        settled_at_ms=0, now_ms=10, dispute_raised_at_ms=None, paid_out_at_ms=DISPUTE_WINDOW_MS + 1
    )
    assert late is not None
    assert late.reason is DisputeRejectReason.DISPUTE_WINDOW_CLOSED


def test_the_payout_is_due_the_first_millisecond_a_dispute_is_refused() -> None:
    settled = 1_000_000
    last = settled + DISPUTE_WINDOW_MS
    for now in (settled, last, last + 1, last + HOUR_MS):
        can_dispute = (
            check_dispute(settled_at_ms=settled, now_ms=now, dispute_raised_at_ms=None) is None
        )
        due = payout_due(settled_at_ms=settled, now_ms=now, dispute_raised_at_ms=None)
        assert due is not can_dispute
    # a disputed contract is paid out (or refunded) by its resolution, never by the clock
    assert not payout_due(settled_at_ms=settled, now_ms=last + HOUR_MS, dispute_raised_at_ms=last)


@pytest.mark.parametrize(
    ("price", "counts"),
    [
        (Money(1, "USD"), False),  # fee 0.00
        (Money(6, "USD"), False),  # fee floor(0.9) = 0
        (Money(99, "USD"), False),  # fee 0.14, but below one dollar
        (Money(100, "USD"), True),  # 1.00: fee 0.15
        (Money(1, "JPY"), False),  # a whole yen, fee 0
        (Money(6, "JPY"), False),
        (Money(7, "JPY"), True),  # fee 1 yen
    ],
)
def test_contracts_below_one_unit_or_paying_no_fee_are_not_reputation_evidence(
    price: Money, counts: bool
) -> None:
    assert counts_as_evidence(price) is counts
    for state in (ContractState.SETTLED, ContractState.FAILED):
        completed = 3 * HOUR_MS if state is ContractState.SETTLED else None
        found = outcome_of(facts(state, price=price, completed_at_ms=completed))
        assert (found is not None) is counts


def test_a_contract_is_disputed_at_most_once() -> None:
    again = check_dispute(settled_at_ms=0, now_ms=10, dispute_raised_at_ms=5)
    assert again is not None
    assert again.reason is DisputeRejectReason.DISPUTE_ALREADY_RAISED


def facts(state: ContractState, **overrides: Any) -> ContractOutcomeFacts:
    values: dict[str, Any] = {
        "state": state,
        "awarded_at_ms": 0,
        "completed_at_ms": 3 * HOUR_MS,
        "promised_turnaround_ms": 4 * HOUR_MS,
        "dispute_raised_at_ms": None,
        "price": Money(10_000, "USD"),
    }
    return ContractOutcomeFacts(**(values | overrides))


@pytest.mark.parametrize(
    ("contract", "outcome"),
    [
        (facts(ContractState.SETTLED), OutcomeKind.SUCCESS),
        (facts(ContractState.SETTLED, completed_at_ms=4 * HOUR_MS), OutcomeKind.SUCCESS),
        (facts(ContractState.SETTLED, completed_at_ms=4 * HOUR_MS + 1), OutcomeKind.LATE),
        (facts(ContractState.FAILED, completed_at_ms=None), OutcomeKind.FAILURE),
        (facts(ContractState.REFUNDED, dispute_raised_at_ms=5 * HOUR_MS), OutcomeKind.DISPUTE_LOST),
        (facts(ContractState.SETTLED, dispute_raised_at_ms=5 * HOUR_MS), OutcomeKind.DISPUTE_WON),
        (facts(ContractState.DISPUTED, dispute_raised_at_ms=5 * HOUR_MS), None),
        (facts(ContractState.AWARDED, completed_at_ms=None), None),
        (facts(ContractState.EXECUTING, completed_at_ms=None), None),
        (facts(ContractState.CANCELLED, completed_at_ms=None), None),
    ],
)
def test_contract_facts_map_to_reputation_outcomes(
    contract: ContractOutcomeFacts, outcome: OutcomeKind | None
) -> None:
    assert outcome_of(contract) is outcome


def test_outcome_kinds_are_the_reputation_engines() -> None:
    assert [k.name for k in OutcomeKind] == [
        "SUCCESS",
        "FAILURE",
        "DISPUTE_LOST",
        "DISPUTE_WON",
        "LATE",
    ]


@given(
    st.integers(0, 10**12),
    st.integers(0, 10**9),
    st.integers(1, limits.duration_ms_max),
)
def test_late_exactly_when_delivered_after_the_promise(
    awarded_at_ms: int, elapsed_ms: int, promised_ms: int
) -> None:
    late = is_late(
        awarded_at_ms=awarded_at_ms,
        completed_at_ms=awarded_at_ms + elapsed_ms,
        promised_turnaround_ms=promised_ms,
    )
    assert late == (elapsed_ms > promised_ms)


# ---------------------------------------------------------------------------------------------
# Fuzz: any decoded body yields a record or a Rejected, never an exception (so never a 5xx).

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.decimals(allow_nan=True, allow_infinity=True, places=None)
    | st.floats()
    | st.text(max_size=12)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def mutated(body: dict[str, Any], paths: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    # The valid body with one (possibly nested) field replaced or removed, or a field added.
    return st.tuples(st.sampled_from([*paths, "extra"]), st.one_of(st.just(...), json_value)).map(
        lambda kv: _set(body, kv[0], kv[1])
    )


WORK_PATHS = [*spec_work(), "budget.min", "budget.max", "budget.currency", "sla"]
BID_PATHS = [*spec_bid(), "sla.max_turnaround", "sample_work"]


@given(st.one_of(json_value, mutated(spec_work(), WORK_PATHS)))
def test_any_work_body_yields_a_spec_or_a_rejection(body: object) -> None:
    result = parse_work_spec(body)
    if isinstance(result, Rejected):
        assert 400 <= result.http_status < 500
        assert result.field
    else:
        assert parse_work_spec(result.to_json()) == result


@given(st.one_of(json_value, mutated(spec_bid(), BID_PATHS)))
def test_any_bid_body_yields_a_bid_or_a_rejection(body: object) -> None:
    result = parse_bid(body, currency="USD")
    if isinstance(result, Rejected):
        assert 400 <= result.http_status < 500
        assert result.field
    else:
        assert result.price.amount_minor > 0


@given(json_value)
def test_any_completion_body_yields_a_report_or_a_rejection(body: object) -> None:
    result = parse_completion(body)
    if isinstance(result, Rejected):
        assert 400 <= result.http_status < 500


# -- progress and resolution (issue 11, item 13) -------------------------------------------------


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_progress_report_is_an_object_of_bounded_json() -> None:
    assert parse_progress({"percent": 50, "steps": ["lint", "test"]}) == {
        "percent": 50,
        "steps": ["lint", "test"],
    }
    assert parse_progress({}) == {}


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        ([50], ProgressRejectReason.PROGRESS_BODY_TYPE_INVALID, "body"),
        (None, ProgressRejectReason.PROGRESS_BODY_TYPE_INVALID, "body"),
        (
            {"ok": 1, "percent": Decimal("1e999")},
            ProgressRejectReason.PROGRESS_VALUE_INVALID,
            "percent",
        ),
        ({"percent": math.nan}, ProgressRejectReason.PROGRESS_VALUE_INVALID, "percent"),
        (
            {"tree": _nested(limits.json_depth_max + 1)},
            ProgressRejectReason.PROGRESS_VALUE_INVALID,
            "tree",
        ),
        (
            {"log": "x" * limits.progress_bytes_max},
            ProgressRejectReason.PROGRESS_TOO_LARGE,
            "body",
        ),
    ],
)
def test_a_broken_progress_report_is_rejected_naming_the_member(
    body: object, reason: Reason, field: str
) -> None:
    rejected = parse_progress(body)
    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.field) == (reason, field)


def test_a_resolution_is_refund_or_pay_out() -> None:
    assert parse_resolution({"resolution": "refund"}) is ContractEventKind.RESOLVE_REFUND
    assert parse_resolution({"resolution": "pay_out"}) is ContractEventKind.RESOLVE_PAY_OUT


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        ("refund", ResolutionRejectReason.RESOLUTION_BODY_TYPE_INVALID, "body"),
        (
            {"resolution": "refund", "amount": 5},
            ResolutionRejectReason.RESOLUTION_FIELD_UNKNOWN,
            "amount",
        ),
        ({}, ResolutionRejectReason.RESOLUTION_INVALID, "resolution"),
        ({"resolution": []}, ResolutionRejectReason.RESOLUTION_INVALID, "resolution"),
        ({"resolution": {"a": 1}}, ResolutionRejectReason.RESOLUTION_INVALID, "resolution"),
        ({"resolution": "REFUND"}, ResolutionRejectReason.RESOLUTION_INVALID, "resolution"),
    ],
)
def test_a_broken_resolution_is_rejected_naming_the_field(
    body: object, reason: Reason, field: str
) -> None:
    rejected = parse_resolution(body)
    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.field) == (reason, field)


@given(
    body=st.recursive(
        st.none() | st.text() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_any_resolution_body_yields_an_event_or_a_rejection(body: object) -> None:
    result = parse_resolution(body)
    assert isinstance(result, ContractEventKind | Rejected)


def test_a_dispute_reason_is_optional_prose() -> None:
    assert parse_dispute_reason(None) == ""
    assert parse_dispute_reason({}) == ""
    assert parse_dispute_reason({"reason": "wrong repository\nsee the diff"}) == (
        "wrong repository\nsee the diff"
    )


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (["late"], DisputeRequestRejectReason.DISPUTE_BODY_TYPE_INVALID, "body"),
        ({"reason": "x", "amount": 1}, DisputeRequestRejectReason.DISPUTE_FIELD_UNKNOWN, "amount"),
        ({"reason": 42}, DisputeRequestRejectReason.DISPUTE_REASON_INVALID, "reason"),
        (
            {"reason": "x" * (limits.dispute_reason_chars_max + 1)},
            DisputeRequestRejectReason.DISPUTE_REASON_INVALID,
            "reason",
        ),
        ({"reason": "a\u0000b"}, TextRejectReason.TEXT_CONTROL_CHARACTER, "reason"),
        ({"reason": "a\u202eb"}, TextRejectReason.TEXT_BIDI_CONTROL, "reason"),
    ],
)
def test_a_broken_dispute_body_is_rejected_naming_the_field(
    body: object, reason: Reason, field: str
) -> None:
    rejected = parse_dispute_reason(body)
    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.field) == (reason, field)


_FINISHED = st.sampled_from(
    [ContractState.FAILED, ContractState.SETTLED, ContractState.REFUNDED, "SETTLED_AFTER_DISPUTE"]
)


@given(
    st.lists(
        st.tuples(
            _FINISHED,
            st.integers(0, 10**12),
            st.integers(0, 10**9),
            st.integers(1, 10**9),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_outcome_kinds_equals_outcome_of_row_by_row(
    rows: list[tuple[object, int, int, int]],
) -> None:
    # The simulator's columnar call and the exchange's per-contract call decide alike.
    import numpy as np

    from aex.core.market import outcome_kinds

    expected = []
    for state, awarded, took, promised in rows:
        disputed = state in (ContractState.REFUNDED, "SETTLED_AFTER_DISPUTE")
        real = ContractState.SETTLED if state == "SETTLED_AFTER_DISPUTE" else state
        assert isinstance(real, ContractState)
        contract = ContractOutcomeFacts(
            real,
            awarded,
            None if real is ContractState.FAILED else awarded + took,
            promised,
            awarded + took + 1 if disputed else None,
            Money(10_000, "USD"),  # evidence-sized: the price rule is evidence_mask's test
        )
        expected.append(outcome_of(contract))
    kinds = outcome_kinds(
        delivered=np.array([r[0] is not ContractState.FAILED for r in rows]),
        awarded_at_ms=np.array([r[1] for r in rows], dtype=np.int64),
        completed_at_ms=np.array([r[1] + r[2] for r in rows], dtype=np.int64),
        promised_turnaround_ms=np.array([r[3] for r in rows], dtype=np.int64),
        disputed=np.array(
            [r[0] in (ContractState.REFUNDED, "SETTLED_AFTER_DISPUTE") for r in rows]
        ),
        refunded=np.array([r[0] is ContractState.REFUNDED for r in rows]),
    )
    assert [OutcomeKind(int(k)) for k in kinds] == expected


@given(st.lists(st.integers(0, 10**9), max_size=50), st.sampled_from(["USD", "JPY", "BHD"]))
def test_evidence_mask_equals_counts_as_evidence_row_by_row(
    prices_minor: list[int], currency: str
) -> None:
    import numpy as np

    from aex.core.market import counts_as_evidence, evidence_mask

    mask = evidence_mask(np.asarray(prices_minor, np.int64), currency=currency)
    assert mask.tolist() == [
        counts_as_evidence(Money(price_minor, currency)) for price_minor in prices_minor
    ]

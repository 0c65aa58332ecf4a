# Rule: what a work spec, a bid, a completion report and a dispute must satisfy before they enter
# the market, when a bid window and a dispute window are open, how much a work reserves, and
# which reputation outcome a contract yields, are decided here and only here.
#
# Theory of operation: every function takes already-decoded JSON values (drivers decode numbers
# with a Decimal hook, so money never passes through a float) plus the context it needs (now_ms,
# the work's currency, facts the driver loaded) and returns a frozen record or a `Rejected`
# naming the field. Checks run field by field in the order of the spec's request bodies; within
# a field, in the precedence order of its reason enum; the first failure is the answer. Money is
# read by aex.core.money.parse_money, durations by aex.core.durations, success criteria and
# metrics by aex.core.criteria, free-form JSON is bounded by aex.core.json_values, and state
# changes are the tables of aex.core.lifecycle. Scoring (aex.core.scoring), reputation
# (aex.core.reputation), the ledger (aex.core.ledger) and certificates (aex.core.certs) are
# other modules: this one only shapes their inputs.
#
# Funds policy (the issue asks to document it): a work reserves its budget maximum when it is
# submitted (a ledger Hold on the consumer's wallet in the same transaction as the insert); an
# underfunded consumer is refused at submission, with nothing written. At award, in one
# transaction, the work's hold is released and the winning price is held as the contract's
# escrow, which cannot fail because the price is at most the budget maximum. UNFILLED and
# CANCELLED work releases its hold. So an award never meets an empty wallet.
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

from aex.core import limits
from aex.core.criteria import CriteriaResult, Criterion, parse_criteria, parse_metrics
from aex.core.durations import format_duration, parse_duration
from aex.core.fees import PLATFORM_FEE_BPS, split_fee, split_fee_columns
from aex.core.json_values import JsonProblem, measure_json
from aex.core.ledger import Capture, Refund, Release
from aex.core.lifecycle import ContractEventKind, ContractState, WorkState
from aex.core.money import CURRENCY_EXPONENTS, Money, format_amount, parse_money
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
    Rejected,
    ResolutionRejectReason,
    TextRejectReason,
    WorkRejectReason,
)
from aex.core.reputation import OutcomeKind
from aex.core.text import check_display_text

__all__ = [
    "BID_WINDOW_SECONDS_DEFAULT",
    "DISPUTE_WINDOW_MS",
    "RESOLUTIONS",
    "BidSpec",
    "BidSubmitRejected",
    "Completion",
    "CompletionRejected",
    "ContractOutcomeFacts",
    "WorkSpec",
    "WorkSpecRejected",
    "bid_window_closes_at_ms",
    "check_bid_admission",
    "check_dispute",
    "completion_event",
    "counts_as_evidence",
    "evidence_mask",
    "is_late",
    "outcome_kinds",
    "outcome_of",
    "parse_bid",
    "parse_completion",
    "parse_dispute_reason",
    "parse_progress",
    "parse_resolution",
    "parse_work_spec",
    "pay_out_operation",
    "payout_due",
    "refund_operation",
    "work_reserve",
]

# The issue: bid_window_seconds "5 to 300; document the default". Thirty seconds gives a
# notified agent time for one model call and a bid, and keeps a consumer's wait short.
BID_WINDOW_SECONDS_DEFAULT: Final = 30
assert limits.bid_window_seconds_min <= BID_WINDOW_SECONDS_DEFAULT <= limits.bid_window_seconds_max
# The issue: "The consumer may dispute within a documented window". 72 hours after settlement:
# a weekend plus a working day to look at delivered results (card schemes allow far longer,
# but an agent's work is checkable at once and the provider's payout should not hang for weeks).
DISPUTE_WINDOW_MS: Final = 72 * 3600 * 1000

_CATEGORY: Final = re.compile(r"[A-Z][A-Z0-9_]*")
_CAPABILITY: Final = re.compile(r"[a-z][a-z0-9_.]*")
_ID: Final = re.compile(r"[A-Za-z0-9_-]+")
_WORK_REQUIRED: Final = ("title", "category", "budget")
_WORK_OPTIONAL: Final = (
    "capability",
    "requirements",
    "success_criteria",
    "bid_window_seconds",
    "sla",
)
_BID_REQUIRED: Final = (
    "work_id",
    "provider_id",
    "price",
    "confidence",
    "estimated_duration",
    "sla",
)
_BID_OPTIONAL: Final = ("sample_work",)

WorkSpecRejected: TypeAlias = (
    Rejected[WorkRejectReason]
    | Rejected[MoneyRejectReason]
    | Rejected[CriteriaRejectReason]
    | Rejected[DurationRejectReason]
)
BidSubmitRejected: TypeAlias = (
    Rejected[BidSubmitRejectReason] | Rejected[MoneyRejectReason] | Rejected[DurationRejectReason]
)
CompletionRejected: TypeAlias = Rejected[CompletionRejectReason] | Rejected[MetricsRejectReason]


@dataclass(frozen=True, slots=True)
class WorkSpec:
    """A validated work submission. Turnarounds are 0 when the consumer stated none."""

    title: str
    category: str
    capability: str | None
    budget_min: Money
    budget_max: Money
    requirements: Mapping[str, object]
    success_criteria: tuple[Criterion, ...]
    bid_window_ms: int
    required_turnaround_ms: int
    hard_limit_turnaround_ms: int

    def __post_init__(self) -> None:
        assert self.budget_min.currency == self.budget_max.currency
        assert 0 <= self.budget_min.amount_minor <= self.budget_max.amount_minor
        assert self.budget_max.amount_minor > 0
        assert self.bid_window_ms % 1000 == 0
        assert (
            limits.bid_window_seconds_min
            <= self.bid_window_ms // 1000
            <= limits.bid_window_seconds_max
        )
        assert self.required_turnaround_ms >= 0
        assert self.hard_limit_turnaround_ms >= 0
        if self.required_turnaround_ms and self.hard_limit_turnaround_ms:
            assert self.required_turnaround_ms <= self.hard_limit_turnaround_ms

    @property
    def currency(self) -> str:
        return self.budget_max.currency

    def to_json(self) -> dict[str, object]:
        """The spec as the API shows it back: money as decimal strings, durations as literals."""
        sla: dict[str, str] = {}
        if self.required_turnaround_ms:
            sla["max_turnaround"] = format_duration(self.required_turnaround_ms)
        if self.hard_limit_turnaround_ms:
            sla["hard_limit"] = format_duration(self.hard_limit_turnaround_ms)
        return {
            "title": self.title,
            "category": self.category,
            "capability": self.capability,
            "budget": {
                "min": format_amount(self.budget_min),
                "max": format_amount(self.budget_max),
                "currency": self.currency,
            },
            "requirements": dict(self.requirements),
            "success_criteria": [c.to_json() for c in self.success_criteria],
            "bid_window_seconds": self.bid_window_ms // 1000,
            "sla": sla,
        }


@dataclass(frozen=True, slots=True)
class BidSpec:
    """A bid whose shape is valid; scoring decides later whether it is competitive."""

    work_id: str
    provider_id: str
    price: Money
    confidence: float
    estimated_duration_ms: int
    max_turnaround_ms: int
    sample_work: object | None

    def __post_init__(self) -> None:
        assert self.price.amount_minor > 0
        assert 0.0 <= self.confidence <= 1.0
        assert 0 < self.estimated_duration_ms <= self.max_turnaround_ms


@dataclass(frozen=True, slots=True)
class Completion:
    """A provider's completion report: opaque results and the metrics the criteria check."""

    results: object
    metrics: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class ContractOutcomeFacts:
    """What outcome_of needs to know about one contract, as the driver stored it."""

    state: ContractState
    awarded_at_ms: int
    completed_at_ms: int | None
    promised_turnaround_ms: int
    dispute_raised_at_ms: int | None
    price: Money

    def __post_init__(self) -> None:
        assert self.promised_turnaround_ms > 0
        assert isinstance(self.price, Money)
        if self.completed_at_ms is not None:
            assert self.completed_at_ms >= self.awarded_at_ms
        if self.state in (ContractState.COMPLETED, ContractState.SETTLED):
            assert self.completed_at_ms is not None
        if self.state in (ContractState.DISPUTED, ContractState.REFUNDED):
            assert self.dispute_raised_at_ms is not None


# ---------------------------------------------------------------------------------------------
# Work


def parse_work_spec(body: object) -> WorkSpec | WorkSpecRejected:
    """Validates a decoded `POST /v1/work` body.

    The spec: `{ title, category, budget: { min, max, currency }, requirements,
    success_criteria: [{ metric, threshold }] }` plus the issue's `bid_window_seconds` (5 to
    300, default BID_WINDOW_SECONDS_DEFAULT), an optional `capability` (what certificates and
    subscriptions match on) and an optional `sla: { max_turnaround?, hard_limit? }` (the
    turnaround the consumer wants, which scoring rewards, and the one beyond which a bid is
    refused).

    Returns:
        The WorkSpec, or the first Rejected, field by field: WORK_BODY_TYPE_INVALID,
        WORK_FIELD_UNKNOWN, WORK_FIELD_MISSING; title (WORK_TITLE_INVALID: 1 to
        limits.work_title_chars_max printable characters after trimming); category
        (WORK_CATEGORY_INVALID: an upper-case token like TECHNOLOGY); capability; budget
        (WORK_BUDGET_TYPE_INVALID, then parse_money's reasons for budget.currency, budget.min,
        budget.max, then WORK_BUDGET_NEGATIVE, WORK_BUDGET_MAX_NOT_POSITIVE,
        WORK_BUDGET_MIN_EXCEEDS_MAX); requirements (WORK_REQUIREMENTS_INVALID,
        WORK_REQUIREMENTS_TOO_LARGE); success_criteria (parse_criteria's reasons);
        bid_window_seconds (WORK_BID_WINDOW_INVALID, WORK_BID_WINDOW_OUT_OF_RANGE); sla
        (WORK_SLA_TYPE_INVALID, parse_duration's reasons, WORK_SLA_HARD_LIMIT_BELOW_WANTED).
    """
    if not isinstance(body, Mapping):
        return Rejected(WorkRejectReason.WORK_BODY_TYPE_INVALID, "body", "expected an object")
    shape = _check_fields(body, _WORK_REQUIRED, _WORK_OPTIONAL)
    if shape is not None:
        field, missing = shape
        if missing:
            return Rejected(WorkRejectReason.WORK_FIELD_MISSING, field, "required")
        return Rejected(WorkRejectReason.WORK_FIELD_UNKNOWN, field, "unknown field")
    title = _parse_title(body["title"])
    if title is None:
        return Rejected(
            WorkRejectReason.WORK_TITLE_INVALID,
            "title",
            f"1 to {limits.work_title_chars_max} printable characters",
        )
    category = body["category"]
    if not _is_token(category, _CATEGORY, limits.category_chars_max):
        return Rejected(
            WorkRejectReason.WORK_CATEGORY_INVALID, "category", "an upper-case token (TECHNOLOGY)"
        )
    assert isinstance(category, str)
    capability = body.get("capability")
    if capability is not None and not _is_token(
        capability, _CAPABILITY, limits.capability_chars_max
    ):
        return Rejected(
            WorkRejectReason.WORK_CAPABILITY_INVALID, "capability", "a token like code.review"
        )
    assert capability is None or isinstance(capability, str)
    budget = _parse_budget(body["budget"])
    if isinstance(budget, Rejected):
        return budget
    return _parse_work_rest(body, title, category, capability, budget)


# The work fields after the budget: requirements, criteria, window, SLA; then the record.
def _parse_work_rest(
    body: Mapping[str, object],
    title: str,
    category: str,
    capability: str | None,
    budget: tuple[Money, Money],
) -> WorkSpec | WorkSpecRejected:
    requirements = body.get("requirements", {})
    if not isinstance(requirements, Mapping):
        return Rejected(
            WorkRejectReason.WORK_REQUIREMENTS_INVALID, "requirements", "expected an object"
        )
    size = measure_json(requirements)
    if isinstance(size, JsonProblem):
        return Rejected(WorkRejectReason.WORK_REQUIREMENTS_INVALID, "requirements", size.value)
    if size.encoded_bytes > limits.requirements_bytes_max:
        return Rejected(
            WorkRejectReason.WORK_REQUIREMENTS_TOO_LARGE,
            "requirements",
            f"at most {limits.requirements_bytes_max} bytes",
        )
    criteria = parse_criteria(body.get("success_criteria", []))
    if isinstance(criteria, Rejected):
        return criteria
    window_seconds = body.get("bid_window_seconds", BID_WINDOW_SECONDS_DEFAULT)
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, int):
        return Rejected(
            WorkRejectReason.WORK_BID_WINDOW_INVALID, "bid_window_seconds", "an integer"
        )
    if not limits.bid_window_seconds_min <= window_seconds <= limits.bid_window_seconds_max:
        return Rejected(
            WorkRejectReason.WORK_BID_WINDOW_OUT_OF_RANGE,
            "bid_window_seconds",
            f"{limits.bid_window_seconds_min} to {limits.bid_window_seconds_max}",
        )
    sla = _parse_work_sla(body.get("sla", {}))
    if isinstance(sla, Rejected):
        return sla
    return WorkSpec(
        title=title,
        category=category,
        capability=capability,
        budget_min=budget[0],
        budget_max=budget[1],
        requirements=dict(requirements),
        success_criteria=criteria,
        bid_window_ms=window_seconds * 1000,
        required_turnaround_ms=sla[0],
        hard_limit_turnaround_ms=sla[1],
    )


def _parse_title(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    title = value.strip()
    if not 1 <= len(title) <= limits.work_title_chars_max or not title.isprintable():
        return None
    return title


def _parse_budget(
    value: object,
) -> tuple[Money, Money] | Rejected[WorkRejectReason] | Rejected[MoneyRejectReason]:
    if not isinstance(value, Mapping) or set(value) != {"min", "max", "currency"}:
        return Rejected(
            WorkRejectReason.WORK_BUDGET_TYPE_INVALID, "budget", "expected {min, max, currency}"
        )
    currency = value["currency"]
    if not isinstance(currency, str) or currency not in CURRENCY_EXPONENTS:
        return Rejected(
            MoneyRejectReason.CURRENCY_UNKNOWN, "budget.currency", "an ISO 4217 code like USD"
        )
    money = []
    for end in ("min", "max"):
        parsed = parse_money(value[end], currency, field=f"budget.{end}")
        if isinstance(parsed, Rejected):
            return parsed
        money.append(parsed)
    budget_min, budget_max = money
    if budget_min.amount_minor < 0 or budget_max.amount_minor < 0:
        return Rejected(WorkRejectReason.WORK_BUDGET_NEGATIVE, "budget", "not negative")
    if budget_max.amount_minor == 0:
        return Rejected(WorkRejectReason.WORK_BUDGET_MAX_NOT_POSITIVE, "budget.max", "positive")
    if budget_min.amount_minor > budget_max.amount_minor:
        return Rejected(WorkRejectReason.WORK_BUDGET_MIN_EXCEEDS_MAX, "budget.min", "min <= max")
    return budget_min, budget_max


def _parse_work_sla(
    value: object,
) -> tuple[int, int] | Rejected[WorkRejectReason] | Rejected[DurationRejectReason]:
    if not isinstance(value, Mapping) or not set(value) <= {"max_turnaround", "hard_limit"}:
        return Rejected(
            WorkRejectReason.WORK_SLA_TYPE_INVALID, "sla", "expected {max_turnaround?, hard_limit?}"
        )
    turnarounds_ms = []
    for key in ("max_turnaround", "hard_limit"):
        if key not in value:
            turnarounds_ms.append(0)
            continue
        parsed = parse_duration(value[key], field=f"sla.{key}")
        if isinstance(parsed, Rejected):
            return parsed
        turnarounds_ms.append(parsed)
    required_ms, hard_limit_ms = turnarounds_ms
    if required_ms and hard_limit_ms and hard_limit_ms < required_ms:
        return Rejected(
            WorkRejectReason.WORK_SLA_HARD_LIMIT_BELOW_WANTED,
            "sla.hard_limit",
            "at least sla.max_turnaround",
        )
    return required_ms, hard_limit_ms


def work_reserve(spec: WorkSpec) -> Money:
    """What a work holds on its consumer's wallet from submission until award: its budget max.

    Funds are checked at submission (see the module comment): the driver places this hold in
    the submission's transaction, and a consumer whose available balance is short is refused
    there (the ledger's insufficient-funds rejection, HTTP 402 by its hint), with nothing
    written and no providers notified.
    """
    assert spec.budget_max.amount_minor > 0
    return spec.budget_max


def bid_window_closes_at_ms(opened_at_ms: int, spec: WorkSpec) -> int:
    """The instant the bid window closes; bids are accepted in [opened_at_ms, closes_at_ms)."""
    assert opened_at_ms >= 0
    return opened_at_ms + spec.bid_window_ms


# ---------------------------------------------------------------------------------------------
# Bids


def parse_bid(body: object, *, currency: str) -> BidSpec | BidSubmitRejected:
    """Validates a decoded `POST /v1/bids` body against the work's currency.

    The spec: `{ work_id, provider_id, price: 100, confidence: 0.95, estimated_duration: "2h",
    sla: { max_turnaround: "4h" } }`, plus the issue's optional `sample_work` (any JSON up to
    limits.sample_work_bytes_max). `price` is in the work's currency, in major units.

    Returns:
        The BidSpec, or the first Rejected, field by field: BID_BODY_TYPE_INVALID,
        BID_FIELD_UNKNOWN, BID_FIELD_MISSING; work_id, provider_id (BID_ID_INVALID); price
        (parse_money's reasons, BID_PRICE_NOT_POSITIVE); confidence (BID_CONFIDENCE_INVALID,
        BID_CONFIDENCE_OUT_OF_RANGE: a finite number in [0, 1]); estimated_duration
        (parse_duration's reasons); sla (BID_SLA_TYPE_INVALID, then sla.max_turnaround with
        parse_duration's reasons); BID_ESTIMATE_EXCEEDS_TURNAROUND (estimated_duration longer
        than sla.max_turnaround); sample_work (BID_SAMPLE_WORK_INVALID,
        BID_SAMPLE_WORK_TOO_LARGE).
    """
    assert currency in CURRENCY_EXPONENTS, "the work's currency was validated at submission"
    if not isinstance(body, Mapping):
        return Rejected(BidSubmitRejectReason.BID_BODY_TYPE_INVALID, "body", "expected an object")
    shape = _check_fields(body, _BID_REQUIRED, _BID_OPTIONAL)
    if shape is not None:
        field, missing = shape
        if missing:
            return Rejected(BidSubmitRejectReason.BID_FIELD_MISSING, field, "required")
        return Rejected(BidSubmitRejectReason.BID_FIELD_UNKNOWN, field, "unknown field")
    for id_field in ("work_id", "provider_id"):
        if not _is_token(body[id_field], _ID, limits.id_chars_max):
            return Rejected(BidSubmitRejectReason.BID_ID_INVALID, id_field, "an identifier")
    price = parse_money(body["price"], currency, field="price")
    if isinstance(price, Rejected):
        return price
    if price.amount_minor <= 0:
        return Rejected(BidSubmitRejectReason.BID_PRICE_NOT_POSITIVE, "price", "positive")
    confidence = _parse_confidence(body["confidence"])
    if isinstance(confidence, Rejected):
        return confidence
    return _parse_bid_rest(body, price, confidence)


# The bid fields after confidence: durations and sample work; then the record.
def _parse_bid_rest(
    body: Mapping[str, object], price: Money, confidence: float
) -> BidSpec | BidSubmitRejected:
    estimated_ms = parse_duration(body["estimated_duration"], field="estimated_duration")
    if isinstance(estimated_ms, Rejected):
        return estimated_ms
    sla = body["sla"]
    if not isinstance(sla, Mapping) or set(sla) != {"max_turnaround"}:
        return Rejected(
            BidSubmitRejectReason.BID_SLA_TYPE_INVALID, "sla", "expected {max_turnaround}"
        )
    turnaround_ms = parse_duration(sla["max_turnaround"], field="sla.max_turnaround")
    if isinstance(turnaround_ms, Rejected):
        return turnaround_ms
    if estimated_ms > turnaround_ms:
        return Rejected(
            BidSubmitRejectReason.BID_ESTIMATE_EXCEEDS_TURNAROUND,
            "estimated_duration",
            "at most sla.max_turnaround",
        )
    sample_work = body.get("sample_work")
    if sample_work is not None:
        size = measure_json(sample_work)
        if isinstance(size, JsonProblem):
            return Rejected(
                BidSubmitRejectReason.BID_SAMPLE_WORK_INVALID, "sample_work", size.value
            )
        if size.encoded_bytes > limits.sample_work_bytes_max:
            return Rejected(
                BidSubmitRejectReason.BID_SAMPLE_WORK_TOO_LARGE,
                "sample_work",
                f"at most {limits.sample_work_bytes_max} bytes",
            )
    work_id, provider_id = body["work_id"], body["provider_id"]
    assert isinstance(work_id, str)
    assert isinstance(provider_id, str)
    return BidSpec(
        work_id=work_id,
        provider_id=provider_id,
        price=price,
        confidence=confidence,
        estimated_duration_ms=estimated_ms,
        max_turnaround_ms=turnaround_ms,
        sample_work=sample_work,
    )


def _parse_confidence(value: object) -> float | Rejected[BidSubmitRejectReason]:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return Rejected(BidSubmitRejectReason.BID_CONFIDENCE_INVALID, "confidence", "a number")
    # Compare before converting: Decimal("1e999") and NaN are refused here, never as floats.
    if isinstance(value, Decimal) and not value.is_finite():
        return Rejected(BidSubmitRejectReason.BID_CONFIDENCE_OUT_OF_RANGE, "confidence", "0 to 1")
    if isinstance(value, float) and not math.isfinite(value):
        return Rejected(BidSubmitRejectReason.BID_CONFIDENCE_OUT_OF_RANGE, "confidence", "0 to 1")
    if not 0 <= value <= 1:
        return Rejected(BidSubmitRejectReason.BID_CONFIDENCE_OUT_OF_RANGE, "confidence", "0 to 1")
    confidence = float(value)
    assert 0.0 <= confidence <= 1.0
    return confidence


def check_bid_admission(
    *,
    work_state: WorkState,
    now_ms: int,
    window_closes_at_ms: int,
    provider_active: bool,
    provider_subscribed: bool,
    provider_has_bid: bool,
    bids_on_work: int,
    provider_owned_by_consumer: bool,
) -> Rejected[BidAdmitRejectReason] | None:
    """May a well-formed bid enter this work's evaluation pool now? None means yes.

    The issue: bids are "accepted only while the window is open, from eligible subscribed
    providers". A bid is sealed and final (a first-price sealed-bid auction): a provider bids
    once per work. Drivers check this under the work's row lock so that the window close and
    the bid insert serialise.

    Returns:
        None, or the first Rejected: BID_WORK_NOT_OPEN (the work is not OPEN), BID_WINDOW_CLOSED
        (now_ms >= window_closes_at_ms, even if the closer has not run yet),
        BID_PROVIDER_INACTIVE (suspended or deactivated), BID_PROVIDER_OWNED_BY_CONSUMER (the
        provider's owner tenant is the work's consumer tenant: no self-dealing),
        BID_PROVIDER_NOT_SUBSCRIBED (not subscribed to the work's category),
        BID_ALREADY_SUBMITTED, BID_LIMIT_REACHED (limits.bids_per_work_max bids already in).
    """
    assert 0 <= bids_on_work <= limits.bids_per_work_max
    if work_state is not WorkState.OPEN:
        return Rejected(BidAdmitRejectReason.BID_WORK_NOT_OPEN, "work_id", work_state.value)
    if now_ms >= window_closes_at_ms:
        return Rejected(BidAdmitRejectReason.BID_WINDOW_CLOSED, "work_id", "bid window closed")
    if not provider_active:
        return Rejected(BidAdmitRejectReason.BID_PROVIDER_INACTIVE, "provider_id", "not active")
    if provider_owned_by_consumer:
        return Rejected(
            BidAdmitRejectReason.BID_PROVIDER_OWNED_BY_CONSUMER,
            "provider_id",
            "a provider owned by the consumer's tenant may not bid on its work",
        )
    if not provider_subscribed:
        return Rejected(
            BidAdmitRejectReason.BID_PROVIDER_NOT_SUBSCRIBED, "provider_id", "not subscribed"
        )
    if provider_has_bid:
        return Rejected(BidAdmitRejectReason.BID_ALREADY_SUBMITTED, "provider_id", "bids once")
    if bids_on_work >= limits.bids_per_work_max:
        return Rejected(
            BidAdmitRejectReason.BID_LIMIT_REACHED,
            "work_id",
            f"at most {limits.bids_per_work_max} bids",
        )
    return None


# ---------------------------------------------------------------------------------------------
# Completion, disputes, outcomes


def parse_completion(body: object) -> Completion | CompletionRejected:
    """Validates a decoded `POST /v1/contracts/{id}/complete` body `{results, metrics}`.

    `results` is opaque JSON for the consumer (up to limits.results_bytes_max; null when
    omitted); `metrics` is what the work's success criteria are checked against ({} when
    omitted, so every criterion will be MISSING).

    Returns:
        The Completion, or the first Rejected: COMPLETION_BODY_TYPE_INVALID,
        COMPLETION_FIELD_UNKNOWN, COMPLETION_RESULTS_INVALID, COMPLETION_RESULTS_TOO_LARGE,
        then parse_metrics's reasons.
    """
    if not isinstance(body, Mapping):
        return Rejected(
            CompletionRejectReason.COMPLETION_BODY_TYPE_INVALID, "body", "expected an object"
        )
    shape = _check_fields(body, (), ("results", "metrics"))
    if shape is not None:
        return Rejected(CompletionRejectReason.COMPLETION_FIELD_UNKNOWN, shape[0], "unknown")
    results = body.get("results")
    size = measure_json(results)
    if isinstance(size, JsonProblem):
        return Rejected(CompletionRejectReason.COMPLETION_RESULTS_INVALID, "results", size.value)
    if size.encoded_bytes > limits.results_bytes_max:
        return Rejected(
            CompletionRejectReason.COMPLETION_RESULTS_TOO_LARGE,
            "results",
            f"at most {limits.results_bytes_max} bytes",
        )
    metrics = parse_metrics(body.get("metrics", {}))
    if isinstance(metrics, Rejected):
        return metrics
    return Completion(results=results, metrics=metrics)


def completion_event(result: CriteriaResult) -> ContractEventKind:
    """The contract event a checked completion report triggers: COMPLETE (then SETTLE) when
    every success criterion is met, otherwise FAIL (the escrow goes back to the consumer)."""
    return ContractEventKind.COMPLETE if result.success else ContractEventKind.FAIL


def parse_progress(body: object) -> Mapping[str, object] | Rejected[ProgressRejectReason]:
    """Validates a decoded `POST /v1/contracts/{id}/progress` body (docs: `{"percent": 50}`).

    A progress report is free-form for the consumer, but bounded like every free-form value
    (aex/core/json_values.py): an object whose members are plain, finite JSON, at most
    limits.progress_bytes_max bytes compactly encoded. It is stored and shown back as it came.

    Returns:
        The report, or the first Rejected: PROGRESS_BODY_TYPE_INVALID (not an object),
        PROGRESS_VALUE_INVALID naming the first member that is not bounded JSON (NaN, 1e999,
        too deep, too many nodes), PROGRESS_TOO_LARGE.
    """
    if not isinstance(body, Mapping):
        return Rejected(
            ProgressRejectReason.PROGRESS_BODY_TYPE_INVALID, "body", "expected an object"
        )
    size = measure_json(body)
    if isinstance(size, JsonProblem):
        # Name the member at fault: measured one by one, each within the nodes bound.
        field = next(
            (str(key)[:80] for key, value in body.items() if not _is_bounded_json(value)),
            "body",
        )
        return Rejected(ProgressRejectReason.PROGRESS_VALUE_INVALID, field, size.value)
    if size.encoded_bytes > limits.progress_bytes_max:
        return Rejected(
            ProgressRejectReason.PROGRESS_TOO_LARGE,
            "body",
            f"at most {limits.progress_bytes_max} bytes",
        )
    return {str(key): value for key, value in body.items()}


def _is_bounded_json(value: object) -> bool:
    return not isinstance(measure_json(value), JsonProblem)


def check_dispute(
    *,
    settled_at_ms: int,
    now_ms: int,
    dispute_raised_at_ms: int | None,
    paid_out_at_ms: int | None = None,
    dispute_window_ms: int = DISPUTE_WINDOW_MS,
) -> Rejected[DisputeRejectReason] | None:
    """May the consumer dispute this SETTLED contract now? None means yes.

    The lifecycle table decides the state (only SETTLED takes DISPUTE; drivers call
    `transition` first); this decides what the table cannot see: a contract is disputed at most
    once (a resolved dispute is final), and only until settled_at_ms + dispute_window_ms
    (inclusive) and before the escrow was paid out (`paid_out_at_ms`: the payout runs once the
    window is over; a dispute arriving after it, from a worker whose clock lags, is late).

    Returns:
        None, or DISPUTE_ALREADY_RAISED, or DISPUTE_WINDOW_CLOSED.
    """
    assert dispute_window_ms > 0
    assert now_ms >= 0
    if dispute_raised_at_ms is not None:
        return Rejected(DisputeRejectReason.DISPUTE_ALREADY_RAISED, "status", "disputed once")
    if paid_out_at_ms is not None or now_ms > settled_at_ms + dispute_window_ms:
        return Rejected(
            DisputeRejectReason.DISPUTE_WINDOW_CLOSED,
            "status",
            f"disputes close {format_duration(dispute_window_ms)} after settlement",
        )
    return None


def parse_dispute_reason(
    body: object,
) -> str | Rejected[DisputeRequestRejectReason] | Rejected[TextRejectReason]:
    """Validates a decoded `POST /v1/contracts/{id}/dispute` body `{"reason"?: text}`.

    The reason is the consumer's explanation, stored with the dispute and shown to the
    operator: text of at most limits.dispute_reason_chars_max characters, line breaks allowed,
    no other control (NUL included) and no bidi control. An empty or missing body is no reason.

    Returns:
        The reason ("" when none), or the first Rejected: DISPUTE_BODY_TYPE_INVALID,
        DISPUTE_FIELD_UNKNOWN, DISPUTE_REASON_INVALID (not a string, or too long), then
        check_display_text's reasons.
    """
    if body is None:
        return ""
    if not isinstance(body, Mapping):
        return Rejected(
            DisputeRequestRejectReason.DISPUTE_BODY_TYPE_INVALID, "body", "expected an object"
        )
    shape = _check_fields(body, (), ("reason",))
    if shape is not None:
        return Rejected(DisputeRequestRejectReason.DISPUTE_FIELD_UNKNOWN, shape[0], "unknown")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > limits.dispute_reason_chars_max:
        return Rejected(
            DisputeRequestRejectReason.DISPUTE_REASON_INVALID,
            "reason",
            f"text of at most {limits.dispute_reason_chars_max} characters",
        )
    unsafe = check_display_text(reason, field="reason", multiline=True)
    return reason if unsafe is None else unsafe


# The operator's two verdicts on a dispute and the contract event each one triggers.
RESOLUTIONS: Final = {
    "refund": ContractEventKind.RESOLVE_REFUND,
    "pay_out": ContractEventKind.RESOLVE_PAY_OUT,
}


def parse_resolution(body: object) -> ContractEventKind | Rejected[ResolutionRejectReason]:
    """Validates the operator's `POST /v1/admin/contracts/{id}/resolve` body.

    The body is exactly `{"resolution": "refund" | "pay_out"}`: refund returns the price to
    the consumer (REFUNDED), pay_out leaves the settlement as it was (SETTLED).

    Returns:
        The contract event, or the first Rejected: RESOLUTION_BODY_TYPE_INVALID (not an
        object), RESOLUTION_FIELD_UNKNOWN (any member but resolution), RESOLUTION_INVALID
        (missing, or not one of the two strings).
    """
    if not isinstance(body, Mapping):
        return Rejected(
            ResolutionRejectReason.RESOLUTION_BODY_TYPE_INVALID, "body", "expected an object"
        )
    shape = _check_fields(body, (), ("resolution",))
    if shape is not None:
        return Rejected(ResolutionRejectReason.RESOLUTION_FIELD_UNKNOWN, shape[0], "unknown")
    resolution = body.get("resolution")
    if not isinstance(resolution, str) or resolution not in RESOLUTIONS:
        return Rejected(
            ResolutionRejectReason.RESOLUTION_INVALID, "resolution", "refund or pay_out"
        )
    return RESOLUTIONS[resolution]


def payout_due(
    *,
    settled_at_ms: int,
    now_ms: int,
    dispute_raised_at_ms: int | None,
    dispute_window_ms: int = DISPUTE_WINDOW_MS,
) -> bool:
    """Is a SETTLED contract's escrow due to be captured (paid out to the provider) now?

    The escrow of a settled contract stays held (docs/ledger.md "Settlement and disputes") until
    the dispute window is over: strictly after settled_at_ms + dispute_window_ms, the first
    instant `check_dispute` refuses. A disputed contract is paid out (or released) by its
    resolution instead, never by the clock.
    """
    assert dispute_window_ms > 0
    return dispute_raised_at_ms is None and now_ms > settled_at_ms + dispute_window_ms


# The escrow of a contract through settlement and disputes (docs/ledger.md "Settlement and
# disputes"): awarded -> Hold; failed or cancelled -> Release; SETTLED -> nothing moves (the
# price stays held: not the consumer's, not yet the provider's); the window ends undisputed, or a
# dispute is resolved pay_out -> `pay_out_operation`; a dispute resolved refund ->
# `refund_operation`. While the escrow is held both resolutions apply whatever the provider's
# wallet holds: a payout is never withdrawable while it can still be refunded.
def pay_out_operation(hold_id: str, payee_wallet_id: str) -> Capture:
    """The capture that pays a settled contract out: price - fee to the payee, the fee to the
    platform (aex/core/fees.py rounding). Its operation id is the hold's, so it applies once."""
    return Capture(f"capture-{hold_id}", hold_id, payee_wallet_id, PLATFORM_FEE_BPS)


def refund_operation(hold_id: str, *, paid_out: bool) -> Release | Refund:
    """The operation that refunds a disputed contract: the held escrow goes back to the payer
    (Release). Only a contract already paid out (captured before the hold-through-the-window
    rule, docs/ledger.md) is refunded from the payee's wallet (Refund, which its funds limit)."""
    if paid_out:
        return Refund(f"refund-{hold_id}", hold_id)
    return Release(f"release-{hold_id}", hold_id)


# Reputation evidence (issue 11, self-dealing): a contract too small to pay the platform a fee
# proves nothing: ten 0.01 contracts cost 0.00 in fees and would otherwise buy a tier. A contract
# is evidence only when its price is at least one whole unit of its currency (10^exponent minor
# units: 1.00 USD) AND its fee at the standard rate (floor(price x 15%), aex/core/fees.py) is at
# least one minor unit (so 7 JPY, not 1 JPY). docs/reputation.md states it.
def counts_as_evidence(price: Money) -> bool:
    """May a contract at this price yield a reputation outcome at all?"""
    whole_unit_minor = 10 ** CURRENCY_EXPONENTS[price.currency]
    fee_minor, _ = split_fee(price.amount_minor, fee_bps=PLATFORM_FEE_BPS)
    return price.amount_minor >= whole_unit_minor and fee_minor > 0


def evidence_mask(price_minor: npt.NDArray[np.int64], *, currency: str) -> npt.NDArray[np.bool_]:
    """`counts_as_evidence` over a column of prices in one currency (the simulator's contracts):
    at least one whole unit, and a fee of at least one minor unit."""
    whole_unit_minor = 10 ** CURRENCY_EXPONENTS[currency]
    fee_minor, _ = split_fee_columns(np.asarray(price_minor, np.int64), fee_bps=PLATFORM_FEE_BPS)
    mask = (np.asarray(price_minor, np.int64) >= whole_unit_minor) & (fee_minor > 0)
    return np.asarray(mask, dtype=np.bool_)


def is_late(*, awarded_at_ms: int, completed_at_ms: int, promised_turnaround_ms: int) -> bool:
    """Delivered after awarded_at + the bid's promised sla.max_turnaround (equal is on time)."""
    assert completed_at_ms >= awarded_at_ms
    assert promised_turnaround_ms > 0
    return completed_at_ms > awarded_at_ms + promised_turnaround_ms


def outcome_of(facts: ContractOutcomeFacts) -> OutcomeKind | None:
    """The reputation evidence a contract yields now, or None while it yields none.

    One contract, one outcome: drivers upsert it keyed by contract id, so a dispute's result
    replaces the outcome recorded at settlement. FAILED -> FAILURE; REFUNDED (the provider lost
    the dispute) -> DISPUTE_LOST; SETTLED after a dispute (the provider won it) -> DISPUTE_WON;
    SETTLED otherwise -> LATE when delivered after the promised turnaround, else SUCCESS.
    AWARDED, EXECUTING, COMPLETED (settlement follows in the same transaction) and DISPUTED
    (pending) yield None: no new evidence. CANCELLED yields None: the provider never started.
    A contract below the evidence minimum (`counts_as_evidence`) yields None in every state.
    """
    if not counts_as_evidence(facts.price):
        return None
    state = facts.state
    if state is ContractState.FAILED:
        return OutcomeKind.FAILURE
    if state is ContractState.REFUNDED:
        return OutcomeKind.DISPUTE_LOST
    if state is not ContractState.SETTLED:
        return None
    if facts.dispute_raised_at_ms is not None:
        return OutcomeKind.DISPUTE_WON
    assert facts.completed_at_ms is not None
    late = is_late(
        awarded_at_ms=facts.awarded_at_ms,
        completed_at_ms=facts.completed_at_ms,
        promised_turnaround_ms=facts.promised_turnaround_ms,
    )
    return OutcomeKind.LATE if late else OutcomeKind.SUCCESS


def outcome_kinds(
    *,
    delivered: npt.NDArray[np.bool_],
    awarded_at_ms: npt.NDArray[np.int64],
    completed_at_ms: npt.NDArray[np.int64],
    promised_turnaround_ms: npt.NDArray[np.int64],
    disputed: npt.NDArray[np.bool_],
    refunded: npt.NDArray[np.bool_],
) -> npt.NDArray[np.uint8]:
    """`outcome_of` over columns of finished contracts (the simulator's millions).

    Row by row the same rule: not delivered (FAILED) -> FAILURE; delivered, disputed and
    refunded (REFUNDED) -> DISPUTE_LOST; delivered and disputed, paid out -> DISPUTE_WON;
    delivered after awarded_at + promised turnaround -> LATE; else SUCCESS. completed_at_ms
    is ignored where not delivered; refunded implies disputed (asserted).

    Returns:
        uint8 OutcomeKind values.
    """
    assert bool(np.all(promised_turnaround_ms > 0))
    assert not bool(np.any(refunded & ~disputed)), "a refund follows a dispute"
    assert not bool(np.any(disputed & ~delivered)), "only settled work is disputed"
    late = completed_at_ms > awarded_at_ms + promised_turnaround_ms
    kind = np.where(late, np.uint8(OutcomeKind.LATE), np.uint8(OutcomeKind.SUCCESS))
    kind = np.where(disputed, np.uint8(OutcomeKind.DISPUTE_WON), kind)
    kind = np.where(refunded, np.uint8(OutcomeKind.DISPUTE_LOST), kind)
    kind = np.where(delivered, kind, np.uint8(OutcomeKind.FAILURE))
    return np.asarray(kind, dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# Shared helpers


# The first missing required field, else the first unknown one (sorted), as (field, missing).
def _check_fields(
    body: Mapping[object, object], required: tuple[str, ...], optional: tuple[str, ...]
) -> tuple[str, bool] | None:
    for field in required:
        if field not in body:
            return field, True
    allowed = set(required) | set(optional)
    unknown = sorted(str(key)[:80] for key in body if key not in allowed)
    if unknown:
        return unknown[0], False
    return None


def _is_token(value: object, pattern: re.Pattern[str], chars_max: int) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= chars_max
        and pattern.fullmatch(value) is not None
    )

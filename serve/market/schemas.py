"""The market's wire shapes, for the OpenAPI document: work, bids, contracts, disputes,
reputation, platform revenue, webhook deliveries.

The market's bodies are decoded free-form (serve.market.usecases `decode_body`: every non-integer
number as Decimal) and checked by the core's parsers, which own the refusal reasons and their
precedence (aex/core/market.py); these Structs describe the same shapes so that the document,
generated clients and schemathesis know them. Money is a decimal string (a JSON integer is
accepted too, never a float); durations are literals like "2h" or "PT30M". Responses are the
dicts serve.market.usecases builds, described field by field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from aex.core import limits

# Money in: a decimal string ("200", "99.95") or a JSON integer; never a float.
AmountIn = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,15}(\.[0-9]{1,4})?$")] | int
# Money out: always a decimal string with the currency's minor digits ("85.00").
AmountOut = Annotated[str, msgspec.Meta(pattern=r"^-?[0-9]+(\.[0-9]+)?$", examples=["85.00"])]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", examples=["USD"])]
Duration = Annotated[str, msgspec.Meta(min_length=1, max_length=40, examples=["2h", "PT30M"])]
Category = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Z][A-Z0-9_]*$", max_length=64, examples=["TECHNOLOGY"])
]
Capability = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_.]*$", max_length=64, examples=["code_review"])
]
FreeForm = dict[str, Any]


class Budget(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    min: AmountIn
    max: AmountIn
    currency: Currency


class Criterion(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    metric: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*$", examples=["coverage"])]
    threshold: float | int
    comparison: Literal[">=", ">", "<=", "<"] = ">="


class WorkSla(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    max_turnaround: Duration | None = None
    hard_limit: Duration | None = None


class WorkCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """POST /v1/work. The budget max is held on the consumer's wallet at once."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.work_title_chars_max)]
    category: Category
    budget: Budget
    capability: Capability | None = None
    requirements: FreeForm = msgspec.field(default_factory=dict)
    success_criteria: list[Criterion] = msgspec.field(default_factory=list)
    bid_window_seconds: Annotated[
        int, msgspec.Meta(ge=limits.bid_window_seconds_min, le=limits.bid_window_seconds_max)
    ] = 30
    sla: WorkSla = msgspec.field(default_factory=WorkSla)
    # AP2 (docs/payments.md "AP2 mandates"): the intent mandate the work is submitted under;
    # refused (403, the problem naming the limit) when the work is beyond it.
    mandate_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class BudgetView(msgspec.Struct, frozen=True):
    min: AmountOut
    max: AmountOut
    currency: str


class MoneyView(msgspec.Struct, frozen=True):
    amount: AmountOut
    currency: str


class WorkView(msgspec.Struct, frozen=True):
    """A work as its consumer sees it: the spec as parsed, its status and its contract."""

    work_id: str
    consumer_tenant_id: str
    status: Literal["OPEN", "EVALUATING", "AWARDED", "UNFILLED", "CANCELLED"]
    contract_id: str | None
    bid_window_opened_at_ms: int
    bid_window_closes_at_ms: int
    closed_at_ms: int | None
    reserved: MoneyView
    title: str
    category: str
    capability: str | None
    budget: BudgetView
    requirements: FreeForm
    success_criteria: list[FreeForm]
    bid_window_seconds: int
    sla: dict[str, str]


class WorkPage(msgspec.Struct, frozen=True):
    """GET /v1/work: the consumer's work, newest first; pass `next_cursor` as
    `starting_after` for the next page while `has_more`."""

    data: list[WorkView]
    has_more: bool
    next_cursor: str | None


class WorkSpecView(msgspec.Struct, frozen=True):
    """A work's job as its consumer described it (the spec as parsed)."""

    title: str
    category: str
    capability: str | None
    budget: BudgetView
    requirements: FreeForm
    success_criteria: list[FreeForm]
    bid_window_seconds: int
    sla: dict[str, str]


class OpenWorkView(msgspec.Struct, frozen=True):
    """An open work as a matching provider is told of it when it is published
    (aex/core/notifications.py): the job and when bidding closes; no consumer, no bids."""

    work_id: str
    work: WorkSpecView
    bid_window_closes_at_ms: int


class OpenWorkPage(msgspec.Struct, frozen=True):
    """GET /v1/work/open: open work the provider's subscriptions match, newest first; pass
    `next_cursor` as `starting_after` while `has_more` (a page may hold fewer than `limit`)."""

    data: list[OpenWorkView]
    has_more: bool
    next_cursor: str | None


class BidSla(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    max_turnaround: Duration


class BidCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """POST /v1/bids, with the key of the provider named in provider_id; sealed and final."""

    work_id: Annotated[str, msgspec.Meta(examples=["work_3f9c2a"])]
    provider_id: Annotated[str, msgspec.Meta(examples=["prov_8d1e4b"])]
    price: AmountIn
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1)]
    estimated_duration: Duration
    sla: BidSla
    sample_work: Any = None


class BidReceipt(msgspec.Struct, frozen=True):
    bid_id: str
    work_id: str
    provider_id: str
    price: AmountOut
    currency: str
    status: Literal["SUBMITTED"]


class BidView(msgspec.Struct, frozen=True):
    """A bid on the caller's work: the body as the provider sent it."""

    bid_id: str
    provider_id: str
    bid: FreeForm
    submitted_at_ms: int


class WorkBidPage(msgspec.Struct, frozen=True):
    """GET /v1/work/{work_id}/bids: newest first; pass `next_cursor` as `starting_after`
    while `has_more`."""

    data: list[BidView]
    has_more: bool
    next_cursor: str | None


class OwnBidView(msgspec.Struct, frozen=True):
    """One of the caller's own bids (sealed: nothing of any other provider's), with the state
    of the work it is on."""

    bid_id: str
    work_id: str
    provider_id: str
    work_status: str
    bid: FreeForm
    submitted_at_ms: int


class BidPage(msgspec.Struct, frozen=True):
    """GET /v1/bids: newest first; pass `next_cursor` as `starting_after` while `has_more`."""

    data: list[OwnBidView]
    has_more: bool
    next_cursor: str | None


class Evaluation(msgspec.Struct, frozen=True):
    """Every bid's components, total, rank and rejection reason (aex/core/evaluation.py).
    Under the second-score payment rule (docs/scoring.md "Payment rule") it also names the
    rule and the awarded contract's price; under the spec's first score both are absent."""

    work_id: str
    payment_rule: Literal["second_score"] | UnsetType = UNSET
    contract_price: MoneyView | UnsetType = UNSET


class ContractView(msgspec.Struct, frozen=True):
    contract_id: str
    work_id: str
    bid_id: str
    consumer_tenant_id: str
    provider_id: str
    status: str
    price: AmountOut
    currency: str
    platform_fee: AmountOut | None
    provider_payout: AmountOut | None
    promised_turnaround_ms: int
    awarded_at_ms: int
    progress: FreeForm | None
    results: Any
    metrics: FreeForm | None
    criteria: Any
    completed_at_ms: int | None
    settled_at_ms: int | None
    dispute_raised_at_ms: int | None
    resolved_at_ms: int | None
    paid_out_at_ms: int | None
    dispute_receipt_id: str | None = None  # the AP2 receipt a dispute cites


class ContractPage(msgspec.Struct, frozen=True):
    """GET /v1/contracts: newest award first; pass `next_cursor` as `starting_after` for the
    next page while `has_more`."""

    data: list[ContractView]
    has_more: bool
    next_cursor: str | None


class Completion(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """POST /v1/contracts/{id}/complete: results for the consumer, metrics for the criteria."""

    results: Any = None
    metrics: dict[str, float | int] = msgspec.field(default_factory=dict)


class Dispute(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    reason: Annotated[str, msgspec.Meta(max_length=limits.dispute_reason_chars_max)] = ""
    # The AP2 receipt (GET /v1/contracts/{id}/receipts) the dispute is about, if any.
    receipt_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class Resolution(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    resolution: Literal["refund", "pay_out"]


class ReputationComponents(msgspec.Struct, frozen=True):
    transaction_score: float
    success_rate: float
    volume_score: float
    consistency_score: float
    certification_bonus: float


class ReputationView(msgspec.Struct, frozen=True):
    provider_id: str
    score: float
    tier: str
    contracts: int
    success_rate: float
    components: ReputationComponents


class PlatformRevenue(msgspec.Struct, frozen=True):
    currency: str
    amount: AmountOut


class WebhookDelivery(msgspec.Struct, frozen=True):
    """One webhook delivery to the calling provider's endpoint."""

    event_id: str | int
    event: str
    endpoint: str
    attempts: int
    status: str
    last_status_code: int | None
    last_error: str | None
    updated_at_ms: int


class DeliveryPage(msgspec.Struct, frozen=True):
    """GET /v1/notifications/deliveries: newest event first; pass `next_cursor` (an event
    id) as `starting_after` while `has_more`."""

    data: list[WebhookDelivery]
    has_more: bool
    next_cursor: str | None


# A2A agent cards (aex/core/agentcard.py parses them; other A2A members are kept as sent).


class AgentSkill(msgspec.Struct, frozen=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.agent_card_term_chars_max)]
    name: Annotated[str, msgspec.Meta(min_length=1)]
    description: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)


class AgentCardDocument(msgspec.Struct, frozen=True):
    """An A2A AgentCard: name, url, version and at least one skill."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]
    version: Annotated[str, msgspec.Meta(min_length=1)]
    skills: Annotated[list[AgentSkill], msgspec.Meta(min_length=1)]
    description: str | None = None


class AgentCardRegistered(msgspec.Struct, frozen=True):
    provider_id: str
    name: str
    url: str
    version: str
    skills: list[str]
    updated_at_ms: int


class ProviderMatch(msgspec.Struct, frozen=True):
    provider_id: str
    name: str
    url: str
    tier: str
    score: float
    contracts: int


class ProviderSearch(msgspec.Struct, frozen=True):
    results: list[ProviderMatch]
    truncated: bool


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok"]


class Readiness(msgspec.Struct, frozen=True):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]
    breakers: dict[str, str]
    # "numpy" until this process's compiled scoring kernel is warm (serve/market/evaluation.py)
    scoring_engine: Literal["compiled", "numpy"]

# Rule: every way an operation can be refused is named here, and only here.
#
# Theory of operation (after TigerBeetle's result codes and h11's error_status_hint): one
# StrEnum per operation, members listed in precedence order. Checks run in enum order, so the
# first failing check is the answer, deterministically. Each reason carries an HTTP status hint;
# `serve/` turns a `Rejected` into RFC 9457 problem+json in exactly one place. The core never
# imports anything HTTP: the hint is a plain int.
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

__all__ = [
    "AgentCardRejectReason",
    "BidAdmitRejectReason",
    "BidBatchRejectReason",
    "BidRejectReason",
    "BidSubmitRejectReason",
    "BillingRejectReason",
    "BodyRejectReason",
    "CertLifecycleRejectReason",
    "CertRequestRejectReason",
    "CertVerifyReason",
    "ChallengeRejectReason",
    "CompletionRejectReason",
    "CredentialRejectReason",
    "CriteriaRejectReason",
    "DelegationRejectReason",
    "DisputeRejectReason",
    "DisputeRequestRejectReason",
    "DurationRejectReason",
    "EndpointRejectReason",
    "LedgerRejectReason",
    "LifecycleRejectReason",
    "MandateRejectReason",
    "MetricsRejectReason",
    "MoneyRejectReason",
    "ProgressRejectReason",
    "QuotaRejectReason",
    "Reason",
    "Rejected",
    "ResolutionRejectReason",
    "ScopeRejectReason",
    "TextRejectReason",
    "VoucherRejectReason",
    "WeightsRejectReason",
    "WorkRejectReason",
]


class Reason(StrEnum):
    """Base of every rejection-reason enum; members are in precedence order."""

    @property
    def http_status(self) -> int:
        # A hint for drivers: 422 unless the reason is listed as something more specific.
        return HTTP_STATUS_HINT.get(self.value, 422)


R = TypeVar("R", bound=Reason)


@dataclass(frozen=True, slots=True)
class Rejected(Generic[R]):
    """A refusal as a value: the reason, the offending field (dotted path) and a human detail."""

    reason: R
    field: str
    detail: str = ""

    @property
    def http_status(self) -> int:
        return self.reason.http_status


class MoneyRejectReason(Reason):
    AMOUNT_TYPE_INVALID = "amount_type_invalid"
    AMOUNT_NOT_FINITE = "amount_not_finite"
    AMOUNT_SYNTAX_INVALID = "amount_syntax_invalid"
    CURRENCY_UNKNOWN = "currency_unknown"
    AMOUNT_PRECISION_EXCEEDED = "amount_precision_exceeded"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"


# Market: lifecycles, durations, success criteria, work specs, bids, completion, disputes
# (aex/core/lifecycle.py, durations.py, criteria.py, market.py).


class LifecycleRejectReason(Reason):
    # The event is not a key of the lifecycle's TRANSITIONS table from the current state.
    ILLEGAL_TRANSITION = "lifecycle_illegal_transition"


class DurationRejectReason(Reason):
    DURATION_TYPE_INVALID = "duration_type_invalid"
    DURATION_SYNTAX_INVALID = "duration_syntax_invalid"
    DURATION_NOT_POSITIVE = "duration_not_positive"
    DURATION_OUT_OF_RANGE = "duration_out_of_range"


class CriteriaRejectReason(Reason):
    CRITERIA_TYPE_INVALID = "criteria_type_invalid"
    CRITERIA_TOO_MANY = "criteria_too_many"
    CRITERION_TYPE_INVALID = "criterion_type_invalid"
    CRITERION_FIELD_UNKNOWN = "criterion_field_unknown"
    CRITERION_METRIC_INVALID = "criterion_metric_invalid"
    CRITERION_THRESHOLD_INVALID = "criterion_threshold_invalid"
    CRITERION_THRESHOLD_NOT_FINITE = "criterion_threshold_not_finite"
    CRITERION_COMPARISON_INVALID = "criterion_comparison_invalid"
    CRITERION_DUPLICATE = "criterion_duplicate"


class MetricsRejectReason(Reason):
    METRICS_TYPE_INVALID = "metrics_type_invalid"
    METRICS_TOO_MANY = "metrics_too_many"
    METRIC_NAME_INVALID = "metric_name_invalid"
    METRIC_VALUE_INVALID = "metric_value_invalid"
    METRIC_VALUE_NOT_FINITE = "metric_value_not_finite"


class WorkRejectReason(Reason):
    WORK_BODY_TYPE_INVALID = "work_body_type_invalid"
    WORK_FIELD_UNKNOWN = "work_field_unknown"
    WORK_FIELD_MISSING = "work_field_missing"
    WORK_TITLE_INVALID = "work_title_invalid"
    WORK_CATEGORY_INVALID = "work_category_invalid"
    WORK_CAPABILITY_INVALID = "work_capability_invalid"
    WORK_BUDGET_TYPE_INVALID = "work_budget_type_invalid"
    WORK_BUDGET_NEGATIVE = "work_budget_negative"
    WORK_BUDGET_MAX_NOT_POSITIVE = "work_budget_max_not_positive"
    WORK_BUDGET_MIN_EXCEEDS_MAX = "work_budget_min_exceeds_max"
    WORK_REQUIREMENTS_INVALID = "work_requirements_invalid"
    WORK_REQUIREMENTS_TOO_LARGE = "work_requirements_too_large"
    WORK_BID_WINDOW_INVALID = "work_bid_window_invalid"
    WORK_BID_WINDOW_OUT_OF_RANGE = "work_bid_window_out_of_range"
    WORK_SLA_TYPE_INVALID = "work_sla_type_invalid"
    WORK_SLA_HARD_LIMIT_BELOW_WANTED = "work_sla_hard_limit_below_wanted"


class BidSubmitRejectReason(Reason):
    # The bid body's shape, checked before the work is even loaded.
    BID_BODY_TYPE_INVALID = "bid_body_type_invalid"
    BID_FIELD_UNKNOWN = "bid_field_unknown"
    BID_FIELD_MISSING = "bid_field_missing"
    BID_ID_INVALID = "bid_id_invalid"
    BID_PRICE_NOT_POSITIVE = "bid_price_not_positive"
    BID_CONFIDENCE_INVALID = "bid_confidence_invalid"
    BID_CONFIDENCE_OUT_OF_RANGE = "bid_confidence_out_of_range"
    BID_SLA_TYPE_INVALID = "bid_sla_type_invalid"
    BID_ESTIMATE_EXCEEDS_TURNAROUND = "bid_estimate_exceeds_turnaround"
    BID_SAMPLE_WORK_INVALID = "bid_sample_work_invalid"
    BID_SAMPLE_WORK_TOO_LARGE = "bid_sample_work_too_large"


class BidAdmitRejectReason(Reason):
    # The bid against the loaded work and provider: may it enter the evaluation pool now?
    BID_WORK_NOT_OPEN = "bid_work_not_open"
    BID_WINDOW_CLOSED = "bid_window_closed"
    BID_PROVIDER_INACTIVE = "bid_provider_inactive"
    BID_PROVIDER_NOT_SUBSCRIBED = "bid_provider_not_subscribed"
    BID_ALREADY_SUBMITTED = "bid_already_submitted"
    BID_LIMIT_REACHED = "bid_limit_reached"
    # Self-dealing (issue 11): a provider owned by the work's own consumer tenant may not bid on
    # it (the consumer would award itself contracts, and reputation, at the fee alone).
    BID_PROVIDER_OWNED_BY_CONSUMER = "bid_provider_owned_by_consumer"


class CompletionRejectReason(Reason):
    COMPLETION_BODY_TYPE_INVALID = "completion_body_type_invalid"
    COMPLETION_FIELD_UNKNOWN = "completion_field_unknown"
    COMPLETION_RESULTS_INVALID = "completion_results_invalid"
    COMPLETION_RESULTS_TOO_LARGE = "completion_results_too_large"


class DisputeRejectReason(Reason):
    DISPUTE_ALREADY_RAISED = "dispute_already_raised"
    DISPUTE_WINDOW_CLOSED = "dispute_window_closed"


class DisputeRequestRejectReason(Reason):
    # The consumer's dispute body `{"reason"?: text}`, before the contract is loaded.
    DISPUTE_BODY_TYPE_INVALID = "dispute_body_type_invalid"
    DISPUTE_FIELD_UNKNOWN = "dispute_field_unknown"
    DISPUTE_REASON_INVALID = "dispute_reason_invalid"


class ProgressRejectReason(Reason):
    # A progress report: a JSON object of bounded, plain JSON values (aex/core/market.py).
    PROGRESS_BODY_TYPE_INVALID = "progress_body_type_invalid"
    PROGRESS_VALUE_INVALID = "progress_value_invalid"
    PROGRESS_TOO_LARGE = "progress_too_large"


class ResolutionRejectReason(Reason):
    # The operator's `{"resolution": "refund" | "pay_out"}` (aex/core/market.py).
    RESOLUTION_BODY_TYPE_INVALID = "resolution_body_type_invalid"
    RESOLUTION_FIELD_UNKNOWN = "resolution_field_unknown"
    RESOLUTION_INVALID = "resolution_invalid"


# Input in general (aex/core/json_values.py, aex/core/text.py).


class BodyRejectReason(Reason):
    """Why a request body is refused before any route reads it."""

    # More than limits.request_json_depth_max levels of nested arrays and objects.
    BODY_TOO_DEEP = "body_too_deep"


class TextRejectReason(Reason):
    """Why a name people read (tenant, provider, agent, title, note) is refused."""

    # C0 and C1 control characters, NUL included (PostgreSQL text cannot even hold it).
    TEXT_CONTROL_CHARACTER = "text_control_character"
    # Bidirectional embedding, override and isolate controls (Trojan Source, CVE-2021-42574).
    TEXT_BIDI_CONTROL = "text_bidi_control"


class LedgerRejectReason(Reason):
    """Why aex/core/ledger.py refused an operation; checks run in this order (docs/ledger.md)."""

    # The operation_id was applied before with different content (an idempotency-key reuse).
    IDEMPOTENCY_CONFLICT = "ledger_idempotency_conflict"
    # Deposit, withdraw and hold move a strictly positive amount.
    AMOUNT_NOT_POSITIVE = "ledger_amount_not_positive"
    # Withdraw or hold from a wallet that was never opened (a deposit or a capture opens one).
    ACCOUNT_UNKNOWN = "ledger_account_unknown"
    # Capture, release or refund of a hold_id that was never held.
    HOLD_UNKNOWN = "ledger_hold_unknown"
    # A hold under a hold_id that is already taken (by another operation_id).
    HOLD_ID_TAKEN = "ledger_hold_id_taken"
    # Capture or release of a closed hold, refund of a hold that is not captured.
    HOLD_TRANSITION_ILLEGAL = "ledger_hold_transition_illegal"
    # The money's currency is not the wallet's (a wallet holds one currency).
    CURRENCY_MISMATCH = "ledger_currency_mismatch"
    # The wallet's available balance is below the amount (for a refund: the payee's).
    INSUFFICIENT_FUNDS = "ledger_insufficient_funds"
    # A wallet bucket would exceed limits.balance_minor_max.
    BALANCE_LIMIT_EXCEEDED = "ledger_balance_limit_exceeded"
    # Token bank: an expiry of credit that is absent or not yet expired at the given time.
    CREDIT_NOT_EXPIRED = "ledger_credit_not_expired"


class BidRejectReason(Reason):
    """Why one bid is out of its auction (aex/core/scoring.py), in precedence order.

    A bid that fails several checks carries the first one listed here. Columnar code stores the
    reason as a uint8 `code`: 0 means accepted, k the k-th member below.
    """

    PROVIDER_NOT_ELIGIBLE = "provider_not_eligible"
    DUPLICATE_BID = "duplicate_bid"
    OUTSIDE_BID_WINDOW = "outside_bid_window"
    CURRENCY_MISMATCH = "currency_mismatch"
    PRICE_NOT_POSITIVE = "price_not_positive"
    PRICE_ABOVE_BUDGET_MAX = "price_above_budget_max"
    SLA_BEYOND_HARD_LIMIT = "sla_beyond_hard_limit"

    @property
    def code(self) -> int:
        # 1-based position in precedence order; 0 is reserved for "accepted".
        return _BID_REJECT_CODES[self]

    @classmethod
    def from_code(cls, code: int) -> BidRejectReason:
        assert 1 <= code <= len(_BID_REJECT_ORDER), f"no BidRejectReason with code {code}"
        return _BID_REJECT_ORDER[code - 1]


_BID_REJECT_ORDER: tuple[BidRejectReason, ...] = tuple(BidRejectReason)
_BID_REJECT_CODES: dict[BidRejectReason, int] = {
    reason: position + 1 for position, reason in enumerate(_BID_REJECT_ORDER)
}
assert len(_BID_REJECT_ORDER) < 2**8  # codes are stored in a uint8 column


class BidBatchRejectReason(Reason):
    """Why a whole batch of bids is refused before scoring (malformed input, not business)."""

    COLUMN_MISSING = "bid_batch_column_missing"
    COLUMN_UNKNOWN = "bid_batch_column_unknown"
    COLUMN_WRONG_DTYPE = "bid_batch_column_wrong_dtype"
    COLUMN_NOT_ONE_DIMENSIONAL = "bid_batch_column_not_one_dimensional"
    COLUMN_LENGTH_MISMATCH = "bid_batch_column_length_mismatch"
    BATCH_TOO_LARGE = "bid_batch_too_large"
    AUCTION_ID_NOT_SORTED = "bid_batch_auction_id_not_sorted"
    AUCTION_TOO_LARGE = "bid_batch_auction_too_large"
    VALUE_NOT_FINITE = "bid_batch_value_not_finite"
    VALUE_OUT_OF_RANGE = "bid_batch_value_out_of_range"


class AgentCardRejectReason(Reason):
    """Why an A2A agent card is refused at registration (aex/core/agentcard.py)."""

    CARD_NOT_AN_OBJECT = "agent_card_not_an_object"
    FIELD_REQUIRED = "agent_card_field_required"
    FIELD_TOO_LONG = "agent_card_field_too_long"
    FIELD_HAS_CONTROL_CHARACTERS = "agent_card_field_has_control_characters"
    URL_INVALID = "agent_card_url_invalid"
    SKILLS_REQUIRED = "agent_card_skills_required"
    TOO_MANY_SKILLS = "agent_card_too_many_skills"
    SKILL_INVALID = "agent_card_skill_invalid"
    SKILL_ID_DUPLICATE = "agent_card_skill_id_duplicate"
    TOO_MANY_TAGS = "agent_card_too_many_tags"
    TAG_INVALID = "agent_card_tag_invalid"


class WeightsRejectReason(Reason):
    """Why a set of scoring weights (or a weights file) is refused."""

    DOCUMENT_INVALID = "weights_document_invalid"
    WEIGHT_MISSING = "weight_missing"
    WEIGHT_UNKNOWN = "weight_unknown"
    WEIGHT_NOT_A_NUMBER = "weight_not_a_number"
    WEIGHT_NOT_FINITE = "weight_not_finite"
    WEIGHT_NEGATIVE = "weight_negative"
    WEIGHTS_DO_NOT_SUM_TO_ONE = "weights_do_not_sum_to_one"


# Billing (issue 15 item 4): a plan change (aex/core/billing.py `plan_change`), in check order.
class BillingRejectReason(Reason):
    AGENTS_OUT_OF_RANGE = "billing_agents_out_of_range"
    PLAN_UNCHANGED = "billing_plan_unchanged"
    PLAN_AGENTS_EXCEEDED = "billing_plan_agents_exceeded"


class VoucherRejectReason(Reason):
    """The token bank's vouchers (serve/tokenbank/vouchers.py; docs/payments.md "Token bank"), in
    order."""

    # Issue: the amount is not positive (the money itself is checked by MoneyRejectReason).
    VOUCHER_AMOUNT_NOT_POSITIVE = "voucher_amount_not_positive"
    # Issue: the expiry is not in the future.
    VOUCHER_EXPIRY_NOT_IN_FUTURE = "voucher_expiry_not_in_future"
    # Issue: max_redemptions outside 1..limits.voucher_redemptions_max.
    VOUCHER_REDEMPTIONS_OUT_OF_RANGE = "voucher_redemptions_out_of_range"
    # Redeem: no voucher has this code (the same answer for every wrong code).
    VOUCHER_NOT_FOUND = "voucher_not_found"
    # Redeem: the voucher's expiry has passed.
    VOUCHER_EXPIRED = "voucher_expired"
    # Redeem: this tenant redeemed this voucher before (each tenant once per voucher).
    VOUCHER_ALREADY_REDEEMED = "voucher_already_redeemed"
    # Redeem: every redemption the voucher allows was used.
    VOUCHER_EXHAUSTED = "voucher_exhausted"


# Reason value -> HTTP status, where 422 is wrong. 422 is every body or parameter the exchange
# will not take, malformed or breaking a rule: one validation status (docs/problems.md).
# Keys are the enum values, which are unique across all enums in this module (tested).
HTTP_STATUS_HINT: dict[str, int] = {
    # Market: a request that is well formed but arrives in the wrong state is a conflict; a
    # provider the market will not hear from is forbidden; an oversized blob is 413.
    LifecycleRejectReason.ILLEGAL_TRANSITION.value: 409,
    WorkRejectReason.WORK_REQUIREMENTS_TOO_LARGE.value: 413,
    BidSubmitRejectReason.BID_SAMPLE_WORK_TOO_LARGE.value: 413,
    BidAdmitRejectReason.BID_WORK_NOT_OPEN.value: 409,
    BidAdmitRejectReason.BID_WINDOW_CLOSED.value: 409,
    BidAdmitRejectReason.BID_PROVIDER_INACTIVE.value: 403,
    BidAdmitRejectReason.BID_PROVIDER_NOT_SUBSCRIBED.value: 403,
    BidAdmitRejectReason.BID_ALREADY_SUBMITTED.value: 409,
    BidAdmitRejectReason.BID_LIMIT_REACHED.value: 409,
    BidAdmitRejectReason.BID_PROVIDER_OWNED_BY_CONSUMER.value: 403,
    CompletionRejectReason.COMPLETION_RESULTS_TOO_LARGE.value: 413,
    DisputeRejectReason.DISPUTE_ALREADY_RAISED.value: 409,
    DisputeRejectReason.DISPUTE_WINDOW_CLOSED.value: 409,
    ProgressRejectReason.PROGRESS_TOO_LARGE.value: 413,
    LedgerRejectReason.IDEMPOTENCY_CONFLICT.value: 409,
    LedgerRejectReason.ACCOUNT_UNKNOWN.value: 404,
    LedgerRejectReason.HOLD_UNKNOWN.value: 404,
    LedgerRejectReason.HOLD_ID_TAKEN.value: 409,
    BillingRejectReason.PLAN_UNCHANGED.value: 409,
    LedgerRejectReason.CREDIT_NOT_EXPIRED.value: 409,
    VoucherRejectReason.VOUCHER_NOT_FOUND.value: 404,
    VoucherRejectReason.VOUCHER_EXPIRED.value: 410,
    VoucherRejectReason.VOUCHER_ALREADY_REDEEMED.value: 409,
    VoucherRejectReason.VOUCHER_EXHAUSTED.value: 409,
    BillingRejectReason.PLAN_AGENTS_EXCEEDED.value: 409,
}


class QuotaRejectReason(Reason):
    """Per-plan quotas (spec "Per-Tenant Quotas"), in the order a request meets them."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    DAILY_QUOTA_EXCEEDED = "daily_quota_exceeded"
    MAX_AGENTS_EXCEEDED = "max_agents_exceeded"
    CONCURRENT_TASKS_EXCEEDED = "concurrent_tasks_exceeded"
    MAX_SUBSCRIPTIONS_EXCEEDED = "max_subscriptions_exceeded"
    CERTIFICATES_EXCEEDED = "certificates_exceeded"


class CredentialRejectReason(Reason):
    """Why a presented credential is not a credential (format only; lookups are the driver's)."""

    CREDENTIAL_MISSING = "credential_missing"
    CREDENTIAL_MALFORMED = "credential_malformed"


class ScopeRejectReason(Reason):
    """Why a credential may not be minted with the scopes asked for (aex/core/credentials.py
    `grant_scopes`), in the order they are checked."""

    SCOPES_EMPTY = "scopes_empty"
    SCOPE_UNKNOWN = "scope_unknown"
    SCOPE_NOT_HELD = "scope_not_held"


class CertRequestRejectReason(Reason):
    """Why a certificate request is refused (aex/core/certs.py `open_request`)."""

    REQUEST_MALFORMED = "request_malformed"
    CERTIFICATE_TYPE_UNKNOWN = "certificate_type_unknown"
    CLAIMS_EMPTY = "claims_empty"
    CLAIMS_TOO_MANY = "claims_too_many"
    AUTHORIZATION_UNKNOWN = "authorization_unknown"
    TEXT_TOO_LONG = "text_too_long"
    # provider_id or agent_name holds a control or bidi character (aex/core/text.py).
    TEXT_UNSAFE = "text_unsafe"
    PUBLIC_KEY_INVALID = "public_key_invalid"
    PROOF_OF_POSSESSION_FAILED = "proof_of_possession_failed"
    # IDENTITY and REPUTATION certificates state what the exchange proved, never what was asked:
    # a request of either type carries no claims (docs/certificates.md "Certificate types").
    CLAIMS_NOT_REQUESTABLE = "claims_not_requestable"
    # An IDENTITY request without a valid, unused challenge for its provider and key.
    ENDPOINT_CONTROL_NOT_PROVEN = "endpoint_control_not_proven"


class CertLifecycleRejectReason(Reason):
    """Why a review, issue, renew or revoke step is refused (aex/core/certs.py)."""

    CERTIFICATE_NOT_FOUND = "certificate_not_found"
    ILLEGAL_TRANSITION = "illegal_transition"
    REVOCATION_REASON_INVALID = "revocation_reason_invalid"


class CertVerifyReason(Reason):
    """Why a certificate does not verify, in the order the checks run (aex/core/certs.py).

    The certificate's own signature is checked before anything it says is believed; the CRL is
    checked before revocation is looked up in it; validity times come last, so a revoked and
    expired certificate reports `revoked`.
    """

    CA_DOCUMENT_MALFORMED = "ca_document_malformed"
    CERTIFICATE_MALFORMED = "certificate_malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    CRL_MALFORMED = "crl_malformed"
    CRL_UNKNOWN_KEY = "crl_unknown_key"
    CRL_BAD_SIGNATURE = "crl_bad_signature"
    CRL_STALE = "crl_stale"
    REVOKED = "revoked"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"


HTTP_STATUS_HINT.update(
    {
        QuotaRejectReason.PAYLOAD_TOO_LARGE.value: 413,
        QuotaRejectReason.DAILY_QUOTA_EXCEEDED.value: 429,
        QuotaRejectReason.MAX_AGENTS_EXCEEDED.value: 403,
        QuotaRejectReason.CONCURRENT_TASKS_EXCEEDED.value: 403,
        QuotaRejectReason.MAX_SUBSCRIPTIONS_EXCEEDED.value: 403,
        QuotaRejectReason.CERTIFICATES_EXCEEDED.value: 403,
        CredentialRejectReason.CREDENTIAL_MISSING.value: 401,
        ScopeRejectReason.SCOPE_NOT_HELD.value: 403,
        CredentialRejectReason.CREDENTIAL_MALFORMED.value: 401,
        CertLifecycleRejectReason.CERTIFICATE_NOT_FOUND.value: 404,
        CertLifecycleRejectReason.ILLEGAL_TRANSITION.value: 409,
    }
)
HTTP_STATUS_HINT[BidBatchRejectReason.BATCH_TOO_LARGE.value] = 413


class ChallengeRejectReason(Reason):
    """Why an IDENTITY challenge fails (aex/core/challenge.py), in the order the checks run."""

    CHALLENGE_NOT_FOUND = "challenge_not_found"
    CHALLENGE_NOT_PENDING = "challenge_not_pending"
    CHALLENGE_EXPIRED = "challenge_expired"
    CHALLENGE_ENDPOINT_MISSING = "challenge_endpoint_missing"
    CHALLENGE_FETCH_FAILED = "challenge_fetch_failed"
    CHALLENGE_RESPONSE_MISMATCH = "challenge_response_mismatch"


HTTP_STATUS_HINT[ChallengeRejectReason.CHALLENGE_NOT_FOUND.value] = 404
HTTP_STATUS_HINT[ChallengeRejectReason.CHALLENGE_NOT_PENDING.value] = 409


class DelegationRejectReason(Reason):
    """Why a resale delegation or a RESELLER request is refused (aex/core/delegation.py)."""

    DELEGATION_MALFORMED = "delegation_malformed"
    DELEGATION_KEY_UNKNOWN = "delegation_key_unknown"
    DELEGATION_BAD_SIGNATURE = "delegation_bad_signature"
    DELEGATION_EXPIRED = "delegation_expired"
    # A RESELLER request with no active delegation for the reseller, or beyond its scope.
    DELEGATION_MISSING = "delegation_missing"
    DELEGATION_SCOPE_EXCEEDED = "delegation_scope_exceeded"


class EndpointRejectReason(Reason):
    """Why a webhook endpoint is refused (aex/core/endpoints.py), in precedence order: the
    URL, then the class of an address its host resolves to (the always-refused classes first)."""

    ENDPOINT_URL_INVALID = "endpoint_url_invalid"
    ENDPOINT_ADDRESS_METADATA = "endpoint_address_metadata"
    ENDPOINT_ADDRESS_UNSPECIFIED = "endpoint_address_unspecified"
    ENDPOINT_ADDRESS_MULTICAST = "endpoint_address_multicast"
    ENDPOINT_ADDRESS_RESERVED = "endpoint_address_reserved"
    ENDPOINT_ADDRESS_LOOPBACK = "endpoint_address_loopback"
    ENDPOINT_ADDRESS_LINK_LOCAL = "endpoint_address_link_local"
    ENDPOINT_ADDRESS_PRIVATE = "endpoint_address_private"


class MandateRejectReason(Reason):
    """Why an AP2 intent mandate is refused when it is registered (the signed document), or
    why work under it is refused at submission or award (aex/core/mandates.py), in the order
    the checks run: the document, its key and signature, then the mandate's state, then the
    work against its limits."""

    MANDATE_MALFORMED = "mandate_malformed"
    MANDATE_KEY_UNKNOWN = "mandate_key_unknown"
    MANDATE_SIGNATURE_INVALID = "mandate_signature_invalid"
    MANDATE_ISSUER_MISMATCH = "mandate_issuer_mismatch"
    MANDATE_REVOKED = "mandate_revoked"
    MANDATE_EXPIRED = "mandate_expired"
    MANDATE_AGENT_MISMATCH = "mandate_agent_mismatch"
    MANDATE_CURRENCY_MISMATCH = "mandate_currency_mismatch"
    MANDATE_CATEGORY_NOT_ALLOWED = "mandate_category_not_allowed"
    MANDATE_AMOUNT_PER_WORK_EXCEEDED = "mandate_amount_per_work_exceeded"
    MANDATE_TOTAL_EXCEEDED = "mandate_total_exceeded"


# A mandate that no longer authorises anything (revoked, expired) or a work beyond what it
# authorises is a refusal of authority, 403; a document that does not verify is 422.
HTTP_STATUS_HINT.update(
    {
        MandateRejectReason.MANDATE_REVOKED.value: 403,
        MandateRejectReason.MANDATE_EXPIRED.value: 403,
        MandateRejectReason.MANDATE_AGENT_MISMATCH.value: 403,
        MandateRejectReason.MANDATE_CURRENCY_MISMATCH.value: 403,
        MandateRejectReason.MANDATE_CATEGORY_NOT_ALLOWED.value: 403,
        MandateRejectReason.MANDATE_AMOUNT_PER_WORK_EXCEEDED.value: 403,
        MandateRejectReason.MANDATE_TOTAL_EXCEEDED.value: 403,
    }
)

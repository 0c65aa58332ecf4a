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
    "BidBatchRejectReason",
    "BidRejectReason",
    "MoneyRejectReason",
    "Reason",
    "Rejected",
    "WeightsRejectReason",
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


class WeightsRejectReason(Reason):
    """Why a set of scoring weights (or a weights file) is refused."""

    DOCUMENT_INVALID = "weights_document_invalid"
    WEIGHT_MISSING = "weight_missing"
    WEIGHT_UNKNOWN = "weight_unknown"
    WEIGHT_NOT_A_NUMBER = "weight_not_a_number"
    WEIGHT_NOT_FINITE = "weight_not_finite"
    WEIGHT_NEGATIVE = "weight_negative"
    WEIGHTS_DO_NOT_SUM_TO_ONE = "weights_do_not_sum_to_one"


# Reason value -> HTTP status, where 422 (a well-formed request that breaks a rule) is wrong.
# Keys are the enum values, which are unique across all enums in this module (tested).
HTTP_STATUS_HINT: dict[str, int] = {
    BidBatchRejectReason.BATCH_TOO_LARGE.value: 413,
}

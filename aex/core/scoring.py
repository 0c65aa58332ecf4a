# Rule: every bid-scoring formula, bid reject rule, weight preset and tie-break is decided here.
#
# Theory of operation. The spec (Workflow 1, Step 4 "Automatic evaluation"; The
# Work-to-Settlement Flow, step 3 "Evaluate") scores every bid as
#
#     Price (25%) + Trust Score (25%) + Confidence (15%) + Sample Work (10%) + SLA (10%)
#     + Certification (15%)
#
# and "Top bid wins the contract". Each component is a float64 in [0, 1], the weights are
# finite, non-negative and sum to 1, so the weighted total lies in [0, 1] too (a final
# min(1, ·) only absorbs float rounding of a weight sum within 1e-9 of 1).
#
# One columnar code path scores one auction or a hundred thousand: a `BidBatch` is a set of
# equal-length numpy columns, one row per bid, rows grouped by auction (auction_id
# non-decreasing). The server passes a batch of one auction; the simulator ten million bids.
# `component_scores` validates the batch (malformed input is a `Rejected` naming the column,
# never clamped) and computes the six components plus a per-bid reject code;
# `rank_auctions` weights them into totals, picks one winner per auction and, on request,
# ranks every accepted bid. The work is done in blocks of whole auctions
# (limits.scoring_block_rows) so that the dozen passes over a block stay in cache; no Python
# loop runs per bid or per auction. tests/core/test_scoring_reference.py holds a plain-Python
# scalar version of every formula here, and a Hypothesis test holds the two equal row by row.
#
# Invariants: components and totals in [0, 1]; a rejected bid has total 0 and rank 0 and never
# wins; exactly one winner per auction that has an accepted bid; ranks of the accepted bids of
# one auction are 1..k without gaps; the order is total descending, then price ascending, then
# submitted_at_ms ascending, then bid_id ascending (then row order, for equal bid ids).
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from aex.core import limits
from aex.core.reasons import (
    BidBatchRejectReason,
    BidRejectReason,
    Rejected,
    WeightsRejectReason,
)

__all__ = [
    "CERTIFICATION_BASE_SCORE",
    "CERTIFICATION_TIER_BOOST",
    "ENGINES",
    "NEUTRAL_SAMPLE_SCORE",
    "PRESETS",
    "WEIGHTS_SUM_TOLERANCE",
    "WEIGHT_NAMES",
    "BidBatch",
    "Components",
    "Engine",
    "ScoredBids",
    "Weights",
    "certification_score_column",
    "component_scores",
    "make_weights",
    "price_score_column",
    "rank_auctions",
    "sample_score_column",
    "score_bids",
    "sla_score_column",
    "warm_scoring_kernels",
    "weighted_totals",
    "weights_from_json",
    "weights_to_json",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
Bools = npt.NDArray[np.bool_]

# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------

WEIGHT_NAMES: Final = ("price", "trust", "confidence", "sample_work", "sla", "certification")
# Weights must sum to 1; decimal literals such as 0.15 are inexact in binary, hence a tolerance.
WEIGHTS_SUM_TOLERANCE: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Weights:
    """The six component weights: finite, non-negative floats summing to 1 (within 1e-9)."""

    price: float
    trust: float
    confidence: float
    sample_work: float
    sla: float
    certification: float

    def __post_init__(self) -> None:
        values = self.as_tuple()
        assert all(type(value) is float and math.isfinite(value) for value in values), values
        assert all(value >= 0.0 for value in values), values
        assert abs(math.fsum(values) - 1.0) <= WEIGHTS_SUM_TOLERANCE, values

    def as_tuple(self) -> tuple[float, float, float, float, float, float]:
        """The weights in WEIGHT_NAMES order."""
        return (
            self.price,
            self.trust,
            self.confidence,
            self.sample_work,
            self.sla,
            self.certification,
        )


assert tuple(field.name for field in fields(Weights)) == WEIGHT_NAMES

PRESETS: Final[Mapping[str, Weights]] = {
    # The spec's evaluation: Price 25%, Trust 25%, Confidence 15%, Sample 10%, SLA 10%, Cert 15%.
    "balanced": Weights(0.25, 0.25, 0.15, 0.10, 0.10, 0.15),
    # For consumers who buy on price: half the weight on price, quality terms kept as a floor.
    "lowest_price": Weights(0.50, 0.20, 0.10, 0.05, 0.10, 0.05),
    # For consumers who buy on evidence: trust, certification and sample work dominate.
    "best_quality": Weights(0.10, 0.30, 0.15, 0.15, 0.10, 0.20),
}


def make_weights(values: Mapping[str, object]) -> Weights | Rejected[WeightsRejectReason]:
    """Validates custom weights, e.g. from `aex tune` or a request.

    Args:
        values: one number per name in WEIGHT_NAMES (int or float; bool is not a number).

    Returns:
        The `Weights`, stored as given (never renormalised).

    Rejections (in precedence order, field "weights.<name>" or "weights"): DOCUMENT_INVALID
    (not a mapping), WEIGHT_MISSING, WEIGHT_UNKNOWN, WEIGHT_NOT_A_NUMBER, WEIGHT_NOT_FINITE,
    WEIGHT_NEGATIVE, WEIGHTS_DO_NOT_SUM_TO_ONE (|sum − 1| > 1e-9: the spec's weights are
    shares of one score, and a sum other than 1 would move totals out of [0, 1]).
    """
    if not isinstance(values, Mapping):
        return Rejected(WeightsRejectReason.DOCUMENT_INVALID, "weights", "expected an object")
    missing = [name for name in WEIGHT_NAMES if name not in values]
    if missing:
        return Rejected(WeightsRejectReason.WEIGHT_MISSING, f"weights.{missing[0]}")
    unknown = sorted(str(name) for name in values if name not in WEIGHT_NAMES)
    if unknown:
        return Rejected(WeightsRejectReason.WEIGHT_UNKNOWN, f"weights.{unknown[0]}")
    numbers: list[float] = []
    for name in WEIGHT_NAMES:  # bounded: six weights
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Rejected(WeightsRejectReason.WEIGHT_NOT_A_NUMBER, f"weights.{name}")
        numbers.append(float(value))
    checks = (
        (WeightsRejectReason.WEIGHT_NOT_FINITE, math.isfinite),
        (WeightsRejectReason.WEIGHT_NEGATIVE, lambda number: number >= 0.0),
    )
    for reason, holds in checks:
        for name, number in zip(WEIGHT_NAMES, numbers, strict=True):
            if not holds(number):
                return Rejected(reason, f"weights.{name}", f"{number!r}")
    total = math.fsum(numbers)
    if abs(total - 1.0) > WEIGHTS_SUM_TOLERANCE:
        return Rejected(WeightsRejectReason.WEIGHTS_DO_NOT_SUM_TO_ONE, "weights", f"sum {total!r}")
    return Weights(*numbers)


def weights_to_json(weights: Weights, *, name: str | None = None) -> dict[str, object]:
    """The weights file format: {"name": ..., "weights": {"price": 0.25, ...}}.

    The name defaults to the preset's name when the weights equal a preset, else "custom".
    """
    if name is None:
        name = next((key for key, preset in PRESETS.items() if preset == weights), "custom")
    values = dict(zip(WEIGHT_NAMES, weights.as_tuple(), strict=True))
    return {"name": name, "weights": values}


def weights_from_json(document: object) -> Weights | Rejected[WeightsRejectReason]:
    """Reads the file format written by `weights_to_json` (the name is informational)."""
    if not isinstance(document, Mapping) or "weights" not in document:
        return Rejected(WeightsRejectReason.DOCUMENT_INVALID, "weights", "missing 'weights'")
    extra = sorted(str(key) for key in document if key not in ("name", "weights"))
    if extra:
        return Rejected(WeightsRejectReason.DOCUMENT_INVALID, extra[0], "unknown key")
    if not isinstance(document.get("name", ""), str):
        return Rejected(WeightsRejectReason.DOCUMENT_INVALID, "name", "expected a string")
    values = document["weights"]
    if not isinstance(values, Mapping):
        return Rejected(WeightsRejectReason.DOCUMENT_INVALID, "weights", "expected an object")
    return make_weights(values)


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------

# The columns of a BidBatch, in precedence order for validation, with their exact dtypes.
_BATCH_COLUMNS: Final[tuple[tuple[str, np.dtype[np.generic]], ...]] = (
    ("auction_id", np.dtype(np.int64)),
    ("bid_id", np.dtype(np.int64)),
    ("provider_id", np.dtype(np.int64)),
    ("price_minor", np.dtype(np.int64)),
    ("currency_matches", np.dtype(np.bool_)),
    ("budget_min_minor", np.dtype(np.int64)),
    ("budget_max_minor", np.dtype(np.int64)),
    ("trust", np.dtype(np.float64)),
    ("confidence", np.dtype(np.float64)),
    ("has_sample", np.dtype(np.bool_)),
    ("sample_quality", np.dtype(np.float64)),
    ("turnaround_ms", np.dtype(np.int64)),
    ("required_turnaround_ms", np.dtype(np.int64)),
    ("hard_limit_turnaround_ms", np.dtype(np.int64)),
    ("certified_matches", np.dtype(np.int64)),
    ("tier", np.dtype(np.int8)),
    ("submitted_at_ms", np.dtype(np.int64)),
    ("window_opens_ms", np.dtype(np.int64)),
    ("window_closes_ms", np.dtype(np.int64)),
    ("eligible", np.dtype(np.bool_)),
)
# Columns that are the same for every bid of an auction (single_auction broadcasts them).
_AUCTION_COLUMNS: Final = (
    "budget_min_minor",
    "budget_max_minor",
    "required_turnaround_ms",
    "hard_limit_turnaround_ms",
    "window_opens_ms",
    "window_closes_ms",
)


@dataclass(frozen=True, slots=True)
class BidBatch:
    """Bids of one or more auctions as equal-length columns, grouped by auction_id.

    The constructor checks shape only (dtype, one dimension, equal lengths); values (NaN,
    ranges, auction_id order) are checked by `component_scores`, which returns a `Rejected`.
    Use `from_columns` for untrusted input: it converts safely or rejects, naming the column.

    Columns: auction_id, bid_id, provider_id (int64); price_minor (int64, the bid's price in
    the work's currency); currency_matches (bool); budget_min_minor, budget_max_minor (int64);
    trust (float64 in [0,1], the provider's reputation score); confidence (float64 in [0,1]);
    has_sample (bool); sample_quality (float64 in [0,1], ignored where has_sample is False);
    turnaround_ms (int64 > 0, the promised max turnaround); required_turnaround_ms (int64,
    0 = no requirement); hard_limit_turnaround_ms (int64, 0 = no hard limit);
    certified_matches (int64, active certificates matching the work's category and
    capability); tier (int8: 0 BRONZE, 1 SILVER, 2 GOLD, 3 PLATINUM); submitted_at_ms,
    window_opens_ms, window_closes_ms (int64); eligible (bool: provider active and subscribed).
    """

    auction_id: I64
    bid_id: I64
    provider_id: I64
    price_minor: I64
    currency_matches: Bools
    budget_min_minor: I64
    budget_max_minor: I64
    trust: F64
    confidence: F64
    has_sample: Bools
    sample_quality: F64
    turnaround_ms: I64
    required_turnaround_ms: I64
    hard_limit_turnaround_ms: I64
    certified_matches: I64
    tier: I8
    submitted_at_ms: I64
    window_opens_ms: I64
    window_closes_ms: I64
    eligible: Bools

    def __post_init__(self) -> None:
        problem = _shape_problem({name: getattr(self, name) for name, _ in _BATCH_COLUMNS})
        assert problem is None, problem

    def __len__(self) -> int:
        return int(self.auction_id.shape[0])

    @classmethod
    def from_columns(cls, **columns: object) -> BidBatch | Rejected[BidBatchRejectReason]:
        """Builds a batch from array-likes, converting only where no value can change.

        Rejections: COLUMN_MISSING, COLUMN_UNKNOWN, COLUMN_WRONG_DTYPE (e.g. floats for an
        integer column: never truncated), VALUE_OUT_OF_RANGE (an integer too wide for its
        column, e.g. tier 300), COLUMN_NOT_ONE_DIMENSIONAL, COLUMN_LENGTH_MISMATCH.
        """
        known = dict(_BATCH_COLUMNS)
        for name in known:
            if name not in columns:
                return Rejected(BidBatchRejectReason.COLUMN_MISSING, name)
        for name in columns:
            if name not in known:
                return Rejected(BidBatchRejectReason.COLUMN_UNKNOWN, name)
        arrays: dict[str, npt.NDArray[np.generic]] = {}
        for name, dtype in _BATCH_COLUMNS:  # bounded: twenty columns
            converted = _convert_column(name, columns[name], dtype)
            if isinstance(converted, Rejected):
                return converted
            arrays[name] = converted
        problem = _shape_problem(arrays)
        if problem is not None:
            return problem
        return cls(**arrays)  # type: ignore[arg-type]

    @classmethod
    def single_auction(
        cls,
        *,
        auction_id: int,
        budget_min_minor: int,
        budget_max_minor: int,
        required_turnaround_ms: int,
        hard_limit_turnaround_ms: int,
        window_opens_ms: int,
        window_closes_ms: int,
        **bid_columns: object,
    ) -> BidBatch | Rejected[BidBatchRejectReason]:
        """One auction (the server's case): work-level values given once, bid columns as lists.

        `bid_columns` are the per-bid columns (bid_id, provider_id, price_minor, ...).
        """
        if "bid_id" not in bid_columns:
            return Rejected(BidBatchRejectReason.COLUMN_MISSING, "bid_id")
        bid_ids = np.asarray(bid_columns["bid_id"])
        if bid_ids.ndim != 1:
            return Rejected(BidBatchRejectReason.COLUMN_NOT_ONE_DIMENSIONAL, "bid_id")
        count = bid_ids.shape[0]
        work = {
            "auction_id": auction_id,
            "budget_min_minor": budget_min_minor,
            "budget_max_minor": budget_max_minor,
            "required_turnaround_ms": required_turnaround_ms,
            "hard_limit_turnaround_ms": hard_limit_turnaround_ms,
            "window_opens_ms": window_opens_ms,
            "window_closes_ms": window_closes_ms,
        }
        assert set(work) == {"auction_id", *_AUCTION_COLUMNS}
        for name, value in work.items():
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
                return Rejected(BidBatchRejectReason.COLUMN_WRONG_DTYPE, name, "expected an int")
        broadcast = {name: np.full(count, value, dtype=np.int64) for name, value in work.items()}
        return cls.from_columns(**broadcast, **bid_columns)

    def rows(self, start: int, stop: int) -> BidBatch:
        """The bids in rows start..stop-1, as views (no copy)."""
        return BidBatch(*(getattr(self, name)[start:stop] for name, _ in _BATCH_COLUMNS))


assert tuple(field.name for field in fields(BidBatch)) == tuple(name for name, _ in _BATCH_COLUMNS)


def _convert_column(
    name: str, value: object, dtype: np.dtype[np.generic]
) -> npt.NDArray[np.generic] | Rejected[BidBatchRejectReason]:
    # Safe conversions only: int32 -> int64, int -> float64 for a score, small ints -> int8
    # when every value fits. Never float -> int, never bool <-> number.
    array = np.asarray(value)
    if array.dtype == dtype:
        return array
    if array.size == 0:
        return array.astype(dtype)
    source, target = array.dtype.kind, dtype.kind
    if source == "b" or target == "b" or source not in "iu" or target not in "iuf":
        return Rejected(BidBatchRejectReason.COLUMN_WRONG_DTYPE, name, f"got {array.dtype}")
    if target in "iu" and not np.can_cast(array.dtype, dtype, "safe"):
        bounds = np.iinfo(dtype)  # type: ignore[type-var]
        if array.min() < bounds.min or array.max() > bounds.max:
            return Rejected(BidBatchRejectReason.VALUE_OUT_OF_RANGE, name, f"beyond {dtype}")
    if target == "f" and (array.min() < -(2**53) or array.max() > 2**53):
        return Rejected(BidBatchRejectReason.VALUE_OUT_OF_RANGE, name, "not exact in float64")
    return array.astype(dtype)


def _shape_problem(
    columns: Mapping[str, npt.NDArray[np.generic]],
) -> Rejected[BidBatchRejectReason] | None:
    # Structure, in column order: exact dtype, one dimension, the length of auction_id.
    length = None
    for name, dtype in _BATCH_COLUMNS:  # bounded: twenty columns
        column = columns[name]
        if not isinstance(column, np.ndarray) or column.dtype != dtype:
            got = getattr(column, "dtype", type(column).__name__)
            return Rejected(BidBatchRejectReason.COLUMN_WRONG_DTYPE, name, f"{got}, not {dtype}")
        if column.ndim != 1:
            return Rejected(BidBatchRejectReason.COLUMN_NOT_ONE_DIMENSIONAL, name)
        length = column.shape[0] if length is None else length
        if column.shape[0] != length:
            return Rejected(BidBatchRejectReason.COLUMN_LENGTH_MISMATCH, name)
    return None


@dataclass(frozen=True, slots=True)
class Components:
    """The six component scores per bid (float64 in [0, 1]) and its reject code.

    reject_reason is 0 for an accepted bid, else `BidRejectReason.code` (1-based precedence).
    trust_score and confidence_score may share memory with the batch's columns (no copy).
    """

    price_score: F64
    trust_score: F64
    confidence_score: F64
    sample_score: F64
    sla_score: F64
    certification_score: F64
    reject_reason: U8

    def __post_init__(self) -> None:
        scores = self.scores()
        length = self.reject_reason.shape
        assert all(s.dtype == np.float64 and s.shape == length for s in scores)
        assert self.reject_reason.dtype == np.uint8
        assert self.reject_reason.ndim == 1

    def __len__(self) -> int:
        return int(self.reject_reason.shape[0])

    def scores(self) -> tuple[F64, F64, F64, F64, F64, F64]:
        """The six score columns in WEIGHT_NAMES order."""
        return (
            self.price_score,
            self.trust_score,
            self.confidence_score,
            self.sample_score,
            self.sla_score,
            self.certification_score,
        )


@dataclass(frozen=True, slots=True)
class ScoredBids:
    """Components plus the weighted total, the rank and the winner flag of every bid.

    total is 0.0 for a rejected bid; rank is 1 for the best accepted bid of its auction, 0 for
    rejected bids (and for every bid when ranks were not requested); is_winner marks exactly
    one bid per auction with at least one accepted bid.
    """

    price_score: F64
    trust_score: F64
    confidence_score: F64
    sample_score: F64
    sla_score: F64
    certification_score: F64
    reject_reason: U8
    total: F64
    rank: I32
    is_winner: Bools

    def __post_init__(self) -> None:
        length = self.reject_reason.shape
        assert self.total.dtype == np.float64
        assert self.total.shape == length
        assert self.rank.dtype == np.int32
        assert self.rank.shape == length
        assert self.is_winner.dtype == np.bool_
        assert self.is_winner.shape == length

    def __len__(self) -> int:
        return int(self.reject_reason.shape[0])

    def reason_of(self, row: int) -> BidRejectReason | None:
        """The reject reason of one bid, or None when it was accepted."""
        code = int(self.reject_reason[row])
        return None if code == 0 else BidRejectReason.from_code(code)


# ---------------------------------------------------------------------------------------------
# Component formulas (each one vectorised, each one in [0, 1])
# ---------------------------------------------------------------------------------------------

# Sample work: a bid without a sample is neither rewarded nor punished: the midpoint.
NEUTRAL_SAMPLE_SCORE: Final = 0.5
# Certification: one matching active certificate earns the base; the provider's reputation
# tier adds the spec's ranking boost ("BRONZE: no ranking boost", "SILVER: moderate",
# "GOLD: strong", "PLATINUM: highest"), reaching 1.0 at PLATINUM.
CERTIFICATION_BASE_SCORE: Final = 0.6
CERTIFICATION_TIER_BOOST: Final = (0.0, 0.1, 0.2, 0.4)  # BRONZE, SILVER, GOLD, PLATINUM
_CERTIFICATION_SCORE_BY_TIER: Final = np.array(
    [CERTIFICATION_BASE_SCORE + boost for boost in CERTIFICATION_TIER_BOOST], dtype=np.float64
)
assert _CERTIFICATION_SCORE_BY_TIER[-1] == 1.0
assert bool(np.all(np.diff(_CERTIFICATION_SCORE_BY_TIER) > 0))


def price_score_column(
    price_minor: I64, budget_min_minor: I64, budget_max_minor: I64, *, out: F64 | None = None
) -> F64:
    """Price component: cheaper scores higher within the work's budget.

    Spec, Workflow 1 Step 3/4: budget {min, max}; "Price (25%)". Linear in the budget range:

        price_score = clip((budget_max − price) / (budget_max − budget_min), 0, 1)

    so 1 at budget_min or below, 0 at budget_max. With budget_min == budget_max the score is 1
    at or below it. A price above budget_max is rejected (PRICE_ABOVE_BUDGET_MAX) and its
    score, 0, never counts. Integers below 2^53 convert to float64 exactly, so the quotient is
    the correctly rounded one. `out`, if given, receives the scores (no allocation).
    """
    headroom_minor = budget_max_minor - price_minor
    span_minor = budget_max_minor - budget_min_minor
    assert not np.any(span_minor < 0), "budget_min_minor must not exceed budget_max_minor"
    if out is None:
        out = np.empty(headroom_minor.shape, dtype=np.float64)
    return _price_score_into(headroom_minor, span_minor, out)


def _price_score_into(headroom_minor: I64, span_minor: I64, out: F64) -> F64:
    # clip(headroom / span, 0, 1); a budget of one price (span 0): 1 at or below it, else 0.
    if span_minor.size == 0 or int(span_minor.min()) > 0:
        np.divide(headroom_minor, span_minor, out=out)
        return np.clip(out, 0.0, 1.0, out=out)
    single_price = span_minor == 0  # a budget of one price
    np.divide(headroom_minor, span_minor | single_price, out=out)  # no 0/0
    np.clip(out, 0.0, 1.0, out=out)
    # Rare, so fixed row by index.
    single_price_rows = np.flatnonzero(single_price)
    out[single_price_rows] = headroom_minor[single_price_rows] >= 0
    return out


def sla_score_column(
    turnaround_ms: I64, required_turnaround_ms: I64, *, out: F64 | None = None
) -> F64:
    """SLA component: the promised turnaround against the work's required turnaround.

    Spec, Workflow 2 Step 4: sla {max_turnaround}; "SLA (10%)".

        sla_score = 1                                if no requirement (required == 0)
                  = min(1, required / turnaround)    otherwise

    so meeting the requirement scores 1 and a promise twice as slow scores 0.5. turnaround_ms
    must be positive (component_scores checks it). A promise beyond the work's hard limit is
    rejected (SLA_BEYOND_HARD_LIMIT).
    """
    sla_score: F64 = np.divide(required_turnaround_ms, turnaround_ms, out=out)
    np.minimum(sla_score, 1.0, out=sla_score)
    # No requirement stated: the quotient is 0 and the score is 1.
    np.maximum(sla_score, required_turnaround_ms == 0, out=sla_score)
    return sla_score


def certification_score_column(certified_matches: I64, tier: I8, *, out: F64 | None = None) -> F64:
    """Certification component: matching active certificates, boosted by reputation tier.

    Spec: "Agent now gets 15% certification boost in bid evaluations"; tiers give "Highest /
    Strong / Moderate / no ranking boost".

        certification_score = 0                                            if no match
                            = CERTIFICATION_BASE_SCORE + TIER_BOOST[tier]  otherwise
                            (0.6, 0.7, 0.8, 1.0 for BRONZE, SILVER, GOLD, PLATINUM)

    More than one matching certificate earns nothing extra: the work needs one capability.
    """
    assert _within(tier, 0, len(CERTIFICATION_TIER_BOOST) - 1)
    certified_score = _CERTIFICATION_SCORE_BY_TIER.take(tier.astype(np.intp), mode="clip")
    # score × 1 is the score and score × 0 is 0, exactly: a branch-free "if certified".
    certification_score: F64 = np.multiply(certified_score, certified_matches > 0, out=out)
    return certification_score


# Certification score by (certified, tier) as the index 4 × certified + tier.
_CERTIFICATION_SCORE_BY_INDEX: Final = np.concatenate(
    (np.zeros(len(CERTIFICATION_TIER_BOOST)), _CERTIFICATION_SCORE_BY_TIER)
)


def _certification_score_into(bids: BidBatch, out: F64, scratch: _Scratch) -> F64:
    # certification_score_column as one table lookup; tier is validated to 0..3 already.
    count = len(bids)
    certified = np.greater(bids.certified_matches, 0, out=scratch.get("mask", np.bool_, count))
    index_u8: U8 = np.multiply(
        certified.view(np.uint8),
        np.uint8(len(CERTIFICATION_TIER_BOOST)),
        out=scratch.get("index_u8", np.uint8, count),
    )
    index_u8 += bids.tier.view(np.uint8)
    index = scratch.get("index", np.intp, count)
    np.copyto(index, index_u8)
    certification_score: F64 = np.take(_CERTIFICATION_SCORE_BY_INDEX, index, out=out)
    return certification_score


def sample_score_column(
    has_sample: Bools,
    sample_quality: F64,
    neutral_sample_score: float = NEUTRAL_SAMPLE_SCORE,
    *,
    out: F64 | None = None,
) -> F64:
    """Sample-work component: the provided sample's quality, else a stated neutral value.

    Spec: "Sample Work (10%)" ("MVPSample").

        sample_score = sample_quality   if a sample was provided
                     = neutral          otherwise (NEUTRAL_SAMPLE_SCORE = 0.5 by default)
    """
    assert 0.0 <= neutral_sample_score <= 1.0
    # Branch-free and exact for finite qualities: q × 1 + neutral × 0 is q, q × 0 + neutral × 1
    # is the neutral value (a masked copy is a branchy loop, several times slower). An ignored
    # quality that is NaN or infinite would poison its row, so such rows (rare: a driver's
    # "no value") are redone with a select.
    with np.errstate(invalid="ignore"):  # inf × 0, redone below
        sample_score: F64 = np.multiply(sample_quality, has_sample, out=out)
    neutral_term = np.multiply(np.logical_not(has_sample), neutral_sample_score)
    sample_score += neutral_term
    if not _at_most_unsigned(sample_score, _ONE_BITS):
        np.copyto(sample_score, np.where(has_sample, sample_quality, neutral_sample_score))
    return sample_score


def _reject_codes_into(
    bids: BidBatch, headroom_minor: I64, window_span_ms: I64, code: U8, *, scratch: _Scratch
) -> U8:
    # One check per BidRejectReason; the first failing check (in precedence order) is the code.
    # DUPLICATE_BID is decided last, among the bids that pass every other check (below).
    # Inputs are validated (no overflow). Branch-free on bytes: urgency = REASONS + 1 − code
    # (higher precedence is more urgent), keep the most urgent failure per bid, and map it
    # back to its code; no failure is urgency 0, which maps to code 0 (accepted).
    count = len(bids)
    failed = scratch.get("mask", np.bool_, count)
    other = scratch.get("mask2", np.bool_, count)
    urgency: U8 = scratch.get("urgency", np.uint8, count)
    term: U8 = scratch.get("urgency_term", np.uint8, count)
    urgency.fill(0)
    checked: list[BidRejectReason] = []

    def fail(reason: BidRejectReason, where: Bools) -> None:
        checked.append(reason)
        np.multiply(where.view(np.uint8), np.uint8(_REASON_COUNT + 1 - reason.code), out=term)
        np.maximum(urgency, term, out=urgency)

    reason = BidRejectReason
    # "provider not eligible (suspended, not subscribed)"
    fail(reason.PROVIDER_NOT_ELIGIBLE, np.logical_not(bids.eligible, out=failed))
    # "expired or outside the bid window": the window is [opens, closes); read as unsigned,
    # submitted − opens is at least closes − opens exactly when submitted is before opens
    # (negative, so huge) or at or after closes.
    since_opens_ms = np.subtract(
        bids.submitted_at_ms, bids.window_opens_ms, out=scratch.get("since", np.int64, count)
    )
    outside = np.greater_equal(
        since_opens_ms.view(np.uint64), window_span_ms.view(np.uint64), out=failed
    )
    fail(reason.OUTSIDE_BID_WINDOW, outside)
    fail(reason.CURRENCY_MISMATCH, np.logical_not(bids.currency_matches, out=failed))
    fail(reason.PRICE_NOT_POSITIVE, np.less_equal(bids.price_minor, 0, out=failed))
    # "price above the budget max"
    fail(reason.PRICE_ABOVE_BUDGET_MAX, np.less(headroom_minor, 0, out=failed))
    # "SLA beyond the work's hard limit" (0 = the work states none)
    np.greater(bids.turnaround_ms, bids.hard_limit_turnaround_ms, out=failed)
    np.logical_and(failed, np.greater(bids.hard_limit_turnaround_ms, 0, out=other), out=failed)
    fail(reason.SLA_BEYOND_HARD_LIMIT, failed)
    assert checked == [other for other in BidRejectReason if other is not reason.DUPLICATE_BID]
    # (REASONS + 1 − urgency) mod (REASONS + 1): urgency 0 gives 0 (REASONS + 1 is 8).
    np.subtract(np.uint8(_REASON_COUNT + 1), urgency, out=code)
    np.bitwise_and(code, np.uint8(_REASON_COUNT), out=code)
    # "duplicate bid by one provider on one work": see _duplicate_bids for which one counts.
    otherwise_accepted = np.equal(code, 0, out=failed)
    code[_duplicate_bids(bids, otherwise_accepted, scratch)] = reason.DUPLICATE_BID.code
    return code


_REASON_COUNT: Final = len(BidRejectReason)
assert _REASON_COUNT + 1 == 8  # a power of two: the code is a mask away from the urgency


# Odd mixing constants (multiplication by an odd number is a bijection modulo 2^32) for the
# duplicate-bid fingerprint; 32-bit arithmetic keeps it in SIMD registers.
_MIX_PROVIDER: Final = np.uint32(0x9E3779B9)
_MIX_PAIR: Final = np.uint32(0x85EBCA6B)
_BUCKET_BITS: Final = 16
assert _BUCKET_BITS == 16  # the bucket is read as the high uint16 half of the fingerprint


# The high 16-bit half of a uint32, in a strided view.
_HIGH_HALF: Final = 1 if np.little_endian else 0


def _duplicate_bids(bids: BidBatch, otherwise_accepted: Bools, scratch: _Scratch) -> I64:
    # The rows that are duplicates. Among one provider's bids on one auction that pass every
    # other check, the first by (submitted_at_ms, bid_id, row) counts and every later one is a
    # DUPLICATE_BID: a provider cannot improve its bid by bidding again, and a bid rejected for
    # another reason never blocks a valid one (so adding a rejected bid never changes an
    # outcome). Rows hold whole auctions.
    #
    # A 32-bit fingerprint of (auction_id, provider_id) is sorted (a SIMD value sort, much
    # cheaper than an argsort) to find repeated fingerprints; only rows sharing one (true
    # duplicates plus rare fingerprint collisions) go through the exact lexicographic check.
    # It uses the low 32 bits of each id: ids equal there but not above cost an exact check.
    count = len(bids)
    # The low 32 bits of each id (an unsafe cast truncates, like astype).
    fingerprint: U32 = scratch.get("fingerprint", np.uint32, count)
    np.copyto(fingerprint, bids.provider_id, casting="unsafe")
    fingerprint *= _MIX_PROVIDER
    low_auction_id = scratch.get("low_auction_id", np.uint32, count)
    np.copyto(low_auction_id, bids.auction_id, casting="unsafe")
    fingerprint += low_auction_id
    fingerprint *= _MIX_PAIR  # within one auction, a bijection of the provider's low bits
    # Only the bids passing every other check can be duplicates: sort just theirs.
    candidates = np.flatnonzero(otherwise_accepted)
    candidate_count = candidates.shape[0]
    candidate_fingerprint: U32 = np.take(
        fingerprint,
        candidates,
        out=scratch.get("candidate_fingerprint", np.uint32, count)[:candidate_count],
    )
    ordered = scratch.get("ordered", np.uint32, count)[:candidate_count]
    np.copyto(ordered, candidate_fingerprint)
    ordered.sort()
    same = np.equal(
        ordered[1:], ordered[:-1], out=scratch.get("same", np.bool_, count)[1:candidate_count]
    )
    if not same.any():
        return np.zeros(0, dtype=np.int64)
    repeated = ordered[1:][same]
    # Candidates carrying a repeated fingerprint, via a bitmap of its top _BUCKET_BITS bits:
    # one gather per row instead of a search. A false hit only costs an exact check below.
    bucket_marked = np.zeros(1 << _BUCKET_BITS, dtype=np.bool_)
    bucket_marked[repeated >> np.uint32(32 - _BUCKET_BITS)] = True
    bucket = scratch.get("index", np.intp, count)[:candidate_count]
    np.copyto(bucket, candidate_fingerprint.view(np.uint16)[_HIGH_HALF::2])
    hit = np.take(bucket_marked, bucket, out=scratch.get("hit", np.bool_, count)[:candidate_count])
    suspects = candidates[hit]
    order = np.lexsort(
        (
            bids.bid_id[suspects],
            bids.submitted_at_ms[suspects],
            bids.provider_id[suspects],
            bids.auction_id[suspects],
        )
    )
    ranked = suspects[order]
    auction_id, provider_id = bids.auction_id[ranked], bids.provider_id[ranked]
    later_bid_of_same_pair = (auction_id[1:] == auction_id[:-1]) & (
        provider_id[1:] == provider_id[:-1]
    )
    duplicates: I64 = ranked[1:][later_bid_of_same_pair]
    return duplicates


# ---------------------------------------------------------------------------------------------
# Batch validation
# ---------------------------------------------------------------------------------------------


def _within(column: npt.NDArray[np.generic], low: float, high: float) -> bool:
    # min and max propagate NaN, and NaN compares false: a NaN is never "within".
    return column.size == 0 or bool(column.min() >= low and column.max() <= high)


def _finite(column: F64) -> bool:
    return column.size == 0 or bool(np.isfinite(column.min()) and np.isfinite(column.max()))


# (column, reason, holds(bids, sample_score)); the sample score is where the ignored
# sample_quality of a bid without a sample is already replaced by the neutral value.
_Check = tuple[str, BidBatchRejectReason, Callable[[BidBatch, F64], bool]]


def _value_checks(now_ms: int) -> tuple[_Check, ...]:
    # Every value rule of a BidBatch, in column order (the first failing one names the column).
    money_max = limits.amount_minor_max
    turnaround_max = limits.turnaround_ms_max
    not_finite = BidBatchRejectReason.VALUE_NOT_FINITE
    out_of_range = BidBatchRejectReason.VALUE_OUT_OF_RANGE

    return (
        ("price_minor", out_of_range, lambda b, _: _within(b.price_minor, -money_max, money_max)),
        ("budget_min_minor", out_of_range, lambda b, _: _within(b.budget_min_minor, 0, money_max)),
        ("budget_max_minor", out_of_range, lambda b, _: _within(b.budget_max_minor, 0, money_max)),
        (
            "budget_max_minor",
            out_of_range,
            lambda b, _: not np.any(b.budget_max_minor < b.budget_min_minor),
        ),
        ("trust", not_finite, lambda b, _: _finite(b.trust)),
        ("trust", out_of_range, lambda b, _: _within(b.trust, 0.0, 1.0)),
        ("confidence", not_finite, lambda b, _: _finite(b.confidence)),
        ("confidence", out_of_range, lambda b, _: _within(b.confidence, 0.0, 1.0)),
        ("sample_quality", not_finite, lambda _, sample_score: _finite(sample_score)),
        ("sample_quality", out_of_range, lambda _, sample_score: _within(sample_score, 0.0, 1.0)),
        ("turnaround_ms", out_of_range, lambda b, _: _within(b.turnaround_ms, 1, turnaround_max)),
        (
            "required_turnaround_ms",
            out_of_range,
            lambda b, _: _within(b.required_turnaround_ms, 0, turnaround_max),
        ),
        (
            "hard_limit_turnaround_ms",
            out_of_range,
            lambda b, _: _within(b.hard_limit_turnaround_ms, 0, turnaround_max),
        ),
        ("certified_matches", out_of_range, lambda b, _: _within(b.certified_matches, 0, 2**62)),
        ("tier", out_of_range, lambda b, _: _within(b.tier, 0, len(CERTIFICATION_TIER_BOOST) - 1)),
        # A bid cannot have been submitted after the moment it is scored.
        ("submitted_at_ms", out_of_range, lambda b, _: _within(b.submitted_at_ms, 0, now_ms)),
        ("window_opens_ms", out_of_range, lambda b, _: _within(b.window_opens_ms, 0, 2**62)),
        (
            "window_closes_ms",
            out_of_range,
            lambda b, _: not np.any(b.window_closes_ms <= b.window_opens_ms),
        ),
    )


def _first_failed_check(
    checks: tuple[_Check, ...], bids: BidBatch, sample_score: F64
) -> int | None:
    for position, (_, _, holds) in enumerate(checks):  # bounded: one per column rule
        if not holds(bids, sample_score):
            return position
    return None


_UNSIGNED: Final = {size: np.dtype(f"u{size}") for size in (1, 2, 4, 8)}


def _at_most_unsigned(column: npt.NDArray[np.generic], high: int) -> bool:
    # 0 <= column <= high in one reduction: negative integers (and negative or non-finite
    # floats) are huge when read as unsigned.
    return column.size == 0 or int(column.view(_UNSIGNED[column.dtype.itemsize]).max()) <= high


_ONE_BITS: Final = int(np.float64(1.0).view(np.uint64))  # for x in [0, 1]: bits <= these


def _plainly_valid(
    bids: BidBatch, sample_score: F64, budget_span_minor: I64, window_span_ms: I64, now_ms: int
) -> bool:
    # A fast screen, sufficient for every check in _value_checks (never true for a block that
    # fails one): one reduction per rule, no temporary arrays (the two spans are computed once
    # for the block and shared with the scores). When it says no, the exact checks run and
    # name the column (and accept what it was too strict on, such as a score of -0.0 or a
    # window closing after 2^62).
    money_max, turnaround_max = limits.amount_minor_max, limits.turnaround_ms_max
    if len(bids) == 0:
        return True
    return (
        int(bids.price_minor.min()) >= -money_max
        and int(bids.price_minor.max()) <= money_max
        and _at_most_unsigned(bids.budget_min_minor, money_max)
        and _at_most_unsigned(bids.budget_max_minor, money_max)
        and _at_most_unsigned(budget_span_minor, money_max)  # budget max >= min
        and _at_most_unsigned(bids.trust, _ONE_BITS)
        and _at_most_unsigned(bids.confidence, _ONE_BITS)
        and _at_most_unsigned(sample_score, _ONE_BITS)
        and int(bids.turnaround_ms.min()) >= 1
        and int(bids.turnaround_ms.max()) <= turnaround_max
        and _at_most_unsigned(bids.required_turnaround_ms, turnaround_max)
        and _at_most_unsigned(bids.hard_limit_turnaround_ms, turnaround_max)
        and _at_most_unsigned(bids.certified_matches, 2**62)
        and _at_most_unsigned(bids.tier, len(CERTIFICATION_TIER_BOOST) - 1)
        and _at_most_unsigned(bids.submitted_at_ms, now_ms)
        and _at_most_unsigned(bids.window_opens_ms, 2**62)
        and _at_most_unsigned(bids.window_closes_ms, 2**62)
        # both in 0..2^62, so the span does not wrap: closes > opens
        and int(window_span_ms.min()) >= 1
    )


def _auction_bounds(auction_id: I64) -> I64 | Rejected[BidBatchRejectReason]:
    # The first row of every auction, then len(auction_id). auction_id is non-decreasing iff
    # the ids at the auction starts strictly increase (rows between starts are equal).
    count = auction_id.shape[0]
    starts = np.flatnonzero(auction_id[1:] != auction_id[:-1]) + 1
    bounds = np.concatenate(([0], starts, [count])).astype(np.int64)
    if count == 0:
        return np.zeros(1, dtype=np.int64)
    if np.any(auction_id[starts] < auction_id[starts - 1]):
        return Rejected(BidBatchRejectReason.AUCTION_ID_NOT_SORTED, "auction_id")
    if int(np.diff(bounds).max()) > limits.bids_per_work_max:
        return Rejected(
            BidBatchRejectReason.AUCTION_TOO_LARGE,
            "auction_id",
            f"more than {limits.bids_per_work_max} bids in one auction",
        )
    return bounds


def _blocks(bounds: I64) -> Iterator[tuple[int, int, I64]]:
    # Blocks of about limits.scoring_block_rows rows, cut at auction starts. Yields (start,
    # stop, the block's auction bounds relative to start). Bounded: rows / block rows.
    count = int(bounds[-1])
    targets = np.arange(limits.scoring_block_rows, count, limits.scoring_block_rows)
    cuts = np.unique(np.concatenate(([0], bounds[np.searchsorted(bounds, targets)], [count])))
    cut_positions = np.searchsorted(bounds, cuts)
    for block in range(cuts.shape[0] - 1):
        first, last = int(cut_positions[block]), int(cut_positions[block + 1])
        start = int(bounds[first])
        yield start, int(bounds[last]), bounds[first : last + 1] - start


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def component_scores(
    batch: BidBatch,
    *,
    now_ms: int,
    neutral_sample_score: float = NEUTRAL_SAMPLE_SCORE,
    engine: Engine = "compiled",
) -> Components | Rejected[BidBatchRejectReason]:
    """Validates a batch and computes the six component scores and reject code of every bid.

    Args:
        batch: bids grouped by auction (auction_id non-decreasing).
        now_ms: the moment of evaluation; no bid may be submitted after it.
        neutral_sample_score: the sample score of a bid without a sample.

    Returns:
        `Components`; business failures (ineligible provider, duplicate, outside the window,
        currency, price, SLA hard limit) are per-bid reject codes, not a Rejected.

    Rejections: BATCH_TOO_LARGE, AUCTION_ID_NOT_SORTED, AUCTION_TOO_LARGE (over
    limits.bids_per_work_max bids), VALUE_NOT_FINITE and VALUE_OUT_OF_RANGE naming the first
    offending column in column order. Nothing is clamped.

    `engine`: "compiled" (the fused kernel, aex/core/_scoring_kernel.py) or "numpy" (the
    columnar reference path); both return identical columns and rejections.
    """
    if engine == "compiled":
        compiled = _compiled_score(batch, None, now_ms, neutral_sample_score, with_ranks=False)
        return compiled if isinstance(compiled, Rejected) else compiled[0]
    assert engine == "numpy", engine
    bounds = _batch_bounds(batch)
    if isinstance(bounds, Rejected):
        return bounds
    components = _empty_components(batch)
    rejected = _score_blocks(
        batch, bounds, components, now_ms=now_ms, neutral_sample_score=neutral_sample_score
    )
    return components if rejected is None else rejected


def _batch_bounds(batch: BidBatch) -> I64 | Rejected[BidBatchRejectReason]:
    count = len(batch)
    if count > limits.bids_per_batch_max:
        return Rejected(BidBatchRejectReason.BATCH_TOO_LARGE, "auction_id", f"{count} bids")
    return _auction_bounds(batch.auction_id)


def _empty_components(batch: BidBatch) -> Components:
    count = len(batch)
    return Components(
        price_score=np.empty(count, dtype=np.float64),
        trust_score=batch.trust,  # the provider's reputation score, already in [0, 1]
        confidence_score=batch.confidence,  # the bid's stated confidence, already in [0, 1]
        sample_score=np.empty(count, dtype=np.float64),
        sla_score=np.empty(count, dtype=np.float64),
        certification_score=np.empty(count, dtype=np.float64),
        reject_reason=np.empty(count, dtype=np.uint8),
    )


_BlockHook = Callable[[int, int, I64], None]


class _Scratch:
    # Work buffers reused by every block of one call: a block's temporaries are written into
    # memory that is already mapped and in cache, instead of being allocated (and page-faulted)
    # again for every block. Buffers grow to the largest block seen.
    __slots__ = ("_buffers",)

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, np.dtype[Any]], npt.NDArray[Any]] = {}

    def get(self, name: str, dtype: type[np.generic], count: int) -> npt.NDArray[Any]:
        key = (name, np.dtype(dtype))
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape[0] < count:
            buffer = np.empty(count, dtype=dtype)
            self._buffers[key] = buffer
        return buffer[:count]


def _score_blocks(
    batch: BidBatch,
    bounds: I64,
    out: Components,
    *,
    now_ms: int,
    neutral_sample_score: float,
    after_block: _BlockHook | None = None,
) -> Rejected[BidBatchRejectReason] | None:
    # Fills `out` block by block; `after_block(start, stop, block_bounds)` runs while the
    # block's components are still in cache (score_bids ranks there). Returns the first
    # failing value check in column order over the whole batch, if any.
    assert type(now_ms) is int
    assert now_ms >= 0
    checks = _value_checks(now_ms)
    failed = len(checks)  # index of the earliest failing check over all blocks so far
    scratch = _Scratch()
    for start, stop, block_bounds in _blocks(bounds):
        bids, rows, count = batch.rows(start, stop), slice(start, stop), stop - start
        sample_score = sample_score_column(
            bids.has_sample, bids.sample_quality, neutral_sample_score, out=out.sample_score[rows]
        )
        # Shared by validation, the price score and the reject codes; numpy integer arithmetic
        # wraps silently, and nothing below uses these before validation has passed.
        budget_span_minor: I64 = np.subtract(
            bids.budget_max_minor, bids.budget_min_minor, out=scratch.get("span", np.int64, count)
        )
        window_span_ms: I64 = np.subtract(
            bids.window_closes_ms, bids.window_opens_ms, out=scratch.get("window", np.int64, count)
        )
        if not _plainly_valid(bids, sample_score, budget_span_minor, window_span_ms, now_ms):
            failed_here = _first_failed_check(checks[:failed], bids, sample_score)
            failed = failed if failed_here is None else failed_here
        if failed < len(checks):
            continue  # the batch is rejected; keep looking only for earlier-column failures
        headroom_minor: I64 = np.subtract(
            bids.budget_max_minor, bids.price_minor, out=scratch.get("headroom", np.int64, count)
        )
        _price_score_into(headroom_minor, budget_span_minor, out.price_score[rows])
        sla_score_column(bids.turnaround_ms, bids.required_turnaround_ms, out=out.sla_score[rows])
        _certification_score_into(bids, out.certification_score[rows], scratch)
        _reject_codes_into(
            bids, headroom_minor, window_span_ms, out.reject_reason[rows], scratch=scratch
        )
        if after_block is not None:
            after_block(start, stop, block_bounds)
    if failed < len(checks):
        column, reason, _ = checks[failed]
        return Rejected(reason, column)
    return None


def _weighted_total(
    components: Components, rows: slice, weights: Weights, out: F64, term: F64
) -> F64:
    # Spec: Price (25%) + Trust (25%) + Confidence (15%) + Sample Work (10%) + SLA (10%)
    # + Certification (15%), with the chosen weights; summed left to right, in place.
    terms = zip(components.scores(), weights.as_tuple(), strict=True)
    price_score, price_weight = next(terms)
    weighted_total = np.multiply(price_score[rows], price_weight, out=out)
    for score, weight in terms:  # bounded: the five remaining components
        weighted_total += np.multiply(score[rows], weight, out=term)
    # The weights sum to 1 within 1e-9; min(1, ·) removes only that rounding overshoot.
    return np.minimum(weighted_total, 1.0, out=weighted_total)


def weighted_totals(components: Components, weights: Weights) -> F64:
    """min(1, Σ weight × component) of every row, rejected or not, summed left to right in
    WEIGHT_NAMES order: bit for bit the totals rank_auctions (either engine) gives accepted
    bids. The payment rule (aex/core/payment_rule.py) re-scores a winner at other prices."""
    count = len(components)
    out = np.empty(count, dtype=np.float64)
    term = np.empty(count, dtype=np.float64)
    return _weighted_total(components, slice(None), weights, out, term)


def _winners(
    total: F64, accepted: Bools, bounds: I64, tie_keys: tuple[I64, I64, I64], is_winner: Bools
) -> Bools:
    # Segmented argmax: the best total of each auction by reduceat, then the tie-breaks (lower
    # price, earlier submission, lower bid_id, then row order) among accepted bids reaching it.
    # A rejected bid's total is 0, so it can reach an auction's best only when that is 0, and
    # is then dropped as a contender. Usually one bid per auction reaches its best: no sort.
    best_total = np.maximum.reduceat(total, bounds[:-1])
    reaches_best = np.equal(total, np.repeat(best_total, np.diff(bounds)), out=is_winner)
    contenders = np.flatnonzero(reaches_best)
    contenders = contenders[accepted[contenders]]
    auction_of = np.searchsorted(bounds, contenders, side="right") - 1
    is_winner.fill(False)
    if np.all(auction_of[1:] != auction_of[:-1]):
        is_winner[contenders] = True
        return is_winner
    price_minor, submitted_at_ms, bid_id = (key[contenders] for key in tie_keys)
    order = np.lexsort((bid_id, submitted_at_ms, price_minor, auction_of))
    first_of_auction = np.ones(order.shape[0], dtype=np.bool_)
    first_of_auction[1:] = auction_of[order][1:] != auction_of[order][:-1]
    is_winner[contenders[order][first_of_auction]] = True
    return is_winner


# Rank keys pack (auction within block, quantised shortfall from a perfect total, row offset
# within the auction) into one int64, so one value sort (SIMD, no argsort) orders a block.
_OFFSET_BITS: Final = (limits.bids_per_work_max - 1).bit_length()
_OFFSET_MASK: Final = (1 << _OFFSET_BITS) - 1


def _ranks(total: F64, accepted: Bools, bounds: I64, tie_keys: tuple[I64, I64, I64]) -> I32:
    # rank = 1 + the number of accepted bids of the same auction ordered before this one.
    lengths = np.diff(bounds)
    auction_count = lengths.shape[0]
    auction_of = np.repeat(np.arange(auction_count, dtype=np.int64), lengths)
    first_row = np.repeat(bounds[:-1], lengths)
    offset = np.arange(total.shape[0], dtype=np.int64) - first_row
    auction_bits = max(1, (auction_count - 1).bit_length())
    level_bits = 63 - _OFFSET_BITS - auction_bits
    assert level_bits >= 24
    rejected_level = (1 << level_bits) - 1
    # Quantised shortfall: monotone in total (a higher total never gets a higher level).
    level = ((1.0 - total) * float(rejected_level - 1)).astype(np.int64)
    level += ~accepted  # a rejected bid (total 0, level rejected_level − 1) moves past all
    key = (auction_of << (level_bits + _OFFSET_BITS)) | (level << _OFFSET_BITS) | offset
    key.sort()
    # An auction's sorted keys occupy the auction's own rows, so its first row is known.
    row = first_row + (key & _OFFSET_MASK)
    group = key >> _OFFSET_BITS
    near_tie = (group[1:] == group[:-1]) & ((group[1:] & rejected_level) != rejected_level)
    if near_tie.any():
        _order_near_ties(row, near_tie, total, auction_of, tie_keys)
    rank = np.zeros(total.shape[0], dtype=np.int32)
    rank[row] = offset + 1  # sorted position within the auction, 1-based
    rank *= accepted
    return rank


def _order_near_ties(
    row: I64, near_tie: Bools, total: F64, auction_of: I64, tie_keys: tuple[I64, I64, I64]
) -> None:
    # Bids sharing an auction and a quantised level are ordered exactly, in place: by total
    # descending, price, submission time, bid_id, row. Runs keep their positions, and the
    # level is monotone in total, so sorting all tied rows together orders each run.
    tied = np.zeros(row.shape[0], dtype=np.bool_)
    tied[1:] |= near_tie
    tied[:-1] |= near_tie
    positions = np.flatnonzero(tied)
    rows = row[positions]
    price_minor, submitted_at_ms, bid_id = (key[rows] for key in tie_keys)
    order = np.lexsort((bid_id, submitted_at_ms, price_minor, -total[rows], auction_of[rows]))
    row[positions] = rows[order]


def rank_auctions(
    auction_id: I64,
    components: Components,
    weights: Weights,
    *,
    price_minor: I64,
    submitted_at_ms: I64,
    bid_id: I64,
    with_ranks: bool = True,
    engine: Engine = "compiled",
) -> ScoredBids:
    """Weights the components into totals and picks the winner (and ranks) of every auction.

    Spec: "Top bid wins the contract". Order within an auction (documented tie-breaks): higher
    total, then lower price, then earlier submitted_at_ms, then lower bid_id, then row order.

    Args:
        auction_id: non-decreasing (asserted); bids of one auction are contiguous.
        components: e.g. from `component_scores`, or drawn directly by the simulator.
        weights: the component weights.
        price_minor, submitted_at_ms, bid_id: the tie-break columns.
        with_ranks: False skips the per-auction sort (rank stays 0); winners are still exact.
        engine: "compiled" (the fused kernel) or "numpy" (the reference path): identical output.

    Returns:
        `ScoredBids`: total 0 and rank 0 for rejected bids; exactly one winner per auction with
        an accepted bid.
    """
    if engine == "compiled":
        return _compiled_rank(
            auction_id, components, weights, (price_minor, submitted_at_ms, bid_id), with_ranks
        )
    assert engine == "numpy", engine
    count = len(components)
    assert auction_id.shape == (count,)
    assert auction_id.dtype == np.int64
    bounds = _auction_bounds(auction_id)
    assert not isinstance(bounds, Rejected), bounds
    ranking = _Ranking(components, weights, (price_minor, submitted_at_ms, bid_id), with_ranks)
    for start, stop, block_bounds in _blocks(bounds):
        ranking.rank_block(start, stop, block_bounds)
    return ranking.scored()


class _Ranking:
    # The output columns of rank_auctions, filled block by block.
    __slots__ = (
        "components",
        "is_winner",
        "rank",
        "scratch",
        "tie_keys",
        "total",
        "weights",
        "with_ranks",
    )

    def __init__(
        self,
        components: Components,
        weights: Weights,
        tie_keys: tuple[I64, I64, I64],
        with_ranks: bool,
    ) -> None:
        count = len(components)
        assert all(key.shape == (count,) for key in tie_keys)
        assert all(key.dtype == np.int64 for key in tie_keys)
        self.components, self.weights, self.tie_keys = components, weights, tie_keys
        self.with_ranks = with_ranks
        self.total = np.empty(count, dtype=np.float64)
        self.rank = np.zeros(count, dtype=np.int32)
        self.is_winner = np.zeros(count, dtype=np.bool_)
        self.scratch = _Scratch()

    def rank_block(self, start: int, stop: int, block_bounds: I64) -> None:
        rows, count = slice(start, stop), stop - start
        reject_reason = self.components.reject_reason[rows]
        accepted = np.equal(reject_reason, 0, out=self.scratch.get("accepted", np.bool_, count))
        term = self.scratch.get("term", np.float64, count)
        total = _weighted_total(self.components, rows, self.weights, self.total[rows], term)
        assert _at_most_unsigned(total, _ONE_BITS) or _within(total, 0.0, 1.0), "components"
        # exactly 0 for a rejected bid, unchanged otherwise
        total *= accepted
        block_keys = (self.tie_keys[0][rows], self.tie_keys[1][rows], self.tie_keys[2][rows])
        if self.with_ranks:
            rank = _ranks(total, accepted, block_bounds, block_keys)
            self.rank[rows] = rank
            np.equal(rank, 1, out=self.is_winner[rows])
        else:
            _winners(total, accepted, block_bounds, block_keys, self.is_winner[rows])

    def scored(self) -> ScoredBids:
        return ScoredBids(
            *self.components.scores(),
            reject_reason=self.components.reject_reason,
            total=self.total,
            rank=self.rank,
            is_winner=self.is_winner,
        )


def score_bids(
    batch: BidBatch,
    weights: Weights,
    *,
    now_ms: int,
    with_ranks: bool = True,
    neutral_sample_score: float = NEUTRAL_SAMPLE_SCORE,
    engine: Engine = "compiled",
) -> ScoredBids | Rejected[BidBatchRejectReason]:
    """Scores a batch of auctions: `component_scores`, then `rank_auctions`.

    The server calls it with one auction, the simulator with millions of bids: same code. The
    result equals rank_auctions(component_scores(batch)) exactly. engine "compiled" (the
    default) runs the fused kernel of aex/core/_scoring_kernel.py, one pass per auction;
    "numpy" runs the columnar reference path, block by block, each block ranked while its
    components are in cache. Both give identical columns and rejections.
    """
    if engine == "compiled":
        compiled = _compiled_score(
            batch, weights, now_ms, neutral_sample_score, with_ranks=with_ranks
        )
        return compiled if isinstance(compiled, Rejected) else compiled[1]
    assert engine == "numpy", engine
    bounds = _batch_bounds(batch)
    if isinstance(bounds, Rejected):
        return bounds
    components = _empty_components(batch)
    tie_keys = (batch.price_minor, batch.submitted_at_ms, batch.bid_id)
    ranking = _Ranking(components, weights, tie_keys, with_ranks)
    rejected = _score_blocks(
        batch,
        bounds,
        components,
        now_ms=now_ms,
        neutral_sample_score=neutral_sample_score,
        after_block=ranking.rank_block,
    )
    return ranking.scored() if rejected is None else rejected


# ---------------------------------------------------------------------------------------------
# The compiled engine (aex/core/_scoring_kernel.py)
# ---------------------------------------------------------------------------------------------

Engine = Literal["compiled", "numpy"]
ENGINES: Final[tuple[Engine, ...]] = ("compiled", "numpy")


def _kernels() -> Any:
    # Imported on first use: numba takes most of a second to import, which a process that
    # never scores (the CLI's other commands) should not pay.
    from aex.core import _scoring_kernel as scoring_kernel

    return scoring_kernel


def _contiguous(column: npt.NDArray[Any]) -> npt.NDArray[Any]:
    # The kernels are compiled for C-contiguous columns; a strided view (rare) is copied
    # rather than compiled again, which would cost seconds inside a request.
    return column if column.flags.c_contiguous else np.ascontiguousarray(column)


def _compiled_score(
    batch: BidBatch,
    weights: Weights | None,
    now_ms: int,
    neutral_sample_score: float,
    *,
    with_ranks: bool,
) -> tuple[Components, ScoredBids] | Rejected[BidBatchRejectReason]:
    # weights None: components and codes only (component_scores).
    assert type(now_ms) is int
    assert now_ms >= 0
    assert 0.0 <= neutral_sample_score <= 1.0
    count = len(batch)
    if count > limits.bids_per_batch_max:
        return Rejected(BidBatchRejectReason.BATCH_TOO_LARGE, "auction_id", f"{count} bids")
    kernels = _kernels()
    if weights is None:
        mode, weight_values = kernels.MODE_COMPONENTS, np.zeros(len(WEIGHT_NAMES))
    else:
        mode = kernels.MODE_RANKS if with_ranks else kernels.MODE_WINNERS
        weight_values = np.array(weights.as_tuple(), dtype=np.float64)
    components = Components(
        price_score=np.empty(count, dtype=np.float64),
        trust_score=batch.trust,
        confidence_score=batch.confidence,
        sample_score=np.empty(count, dtype=np.float64),
        sla_score=np.empty(count, dtype=np.float64),
        certification_score=np.empty(count, dtype=np.float64),
        reject_reason=np.empty(count, dtype=np.uint8),
    )
    sized = 0 if weights is None else count  # component_scores needs no totals
    total = np.empty(sized, dtype=np.float64)
    rank = np.zeros(count, dtype=np.int32)
    is_winner = np.zeros(count, dtype=np.bool_)
    unsorted, too_large, failed = kernels.score_batch(
        *(_contiguous(getattr(batch, name)) for name, _ in _BATCH_COLUMNS),
        weight_values,
        _CERTIFICATION_SCORE_BY_INDEX,
        now_ms,
        float(neutral_sample_score),
        limits.amount_minor_max,
        limits.turnaround_ms_max,
        limits.bids_per_work_max,
        limits.scoring_kernel_block_rows,
        mode,
        components.price_score,
        components.sample_score,
        components.sla_score,
        components.certification_score,
        components.reject_reason,
        total,
        rank,
        is_winner,
    )
    if unsorted:
        return Rejected(BidBatchRejectReason.AUCTION_ID_NOT_SORTED, "auction_id")
    if too_large:
        return Rejected(
            BidBatchRejectReason.AUCTION_TOO_LARGE,
            "auction_id",
            f"more than {limits.bids_per_work_max} bids in one auction",
        )
    checks = _value_checks(now_ms)
    assert len(checks) == kernels.VALUE_CHECK_COUNT
    if failed < len(checks):
        column, reason, _ = checks[failed]
        return Rejected(reason, column)
    if weights is None:
        total = np.zeros(count, dtype=np.float64)
    scored = ScoredBids(
        *components.scores(),
        reject_reason=components.reject_reason,
        total=total,
        rank=rank,
        is_winner=is_winner,
    )
    return components, scored


def _compiled_rank(
    auction_id: I64,
    components: Components,
    weights: Weights,
    tie_keys: tuple[I64, I64, I64],
    with_ranks: bool,
) -> ScoredBids:
    count = len(components)
    assert auction_id.shape == (count,)
    assert auction_id.dtype == np.int64
    assert all(key.shape == (count,) and key.dtype == np.int64 for key in tie_keys)
    kernels = _kernels()
    total = np.empty(count, dtype=np.float64)
    rank = np.zeros(count, dtype=np.int32)
    is_winner = np.zeros(count, dtype=np.bool_)
    unsorted, too_large, out_of_range = kernels.rank_batch(
        _contiguous(auction_id),
        *(_contiguous(score) for score in components.scores()),
        _contiguous(components.reject_reason),
        *(_contiguous(key) for key in tie_keys),
        np.array(weights.as_tuple(), dtype=np.float64),
        limits.bids_per_work_max,
        kernels.MODE_RANKS if with_ranks else kernels.MODE_WINNERS,
        total,
        rank,
        is_winner,
    )
    assert not unsorted, "auction_id must be non-decreasing"
    assert not too_large, f"more than {limits.bids_per_work_max} bids in one auction"
    assert not out_of_range, "components"
    return ScoredBids(
        *components.scores(),
        reject_reason=components.reject_reason,
        total=total,
        rank=rank,
        is_winner=is_winner,
    )


def warm_scoring_kernels() -> None:
    """Compiles (or loads from numba's cache) every kernel, so that no caller pays it later.

    The server calls this at startup (serve/market/evaluation.py `warm_up`): the first compile takes
    seconds, a cache load milliseconds, and neither belongs in a request.
    """
    batch = BidBatch.single_auction(
        auction_id=1,
        budget_min_minor=100,
        budget_max_minor=200,
        required_turnaround_ms=10,
        hard_limit_turnaround_ms=20,
        window_opens_ms=0,
        window_closes_ms=10,
        bid_id=np.arange(2, dtype=np.int64),
        provider_id=np.arange(2, dtype=np.int64),
        price_minor=np.array([150, 120], dtype=np.int64),
        currency_matches=np.ones(2, dtype=np.bool_),
        trust=np.full(2, 0.5),
        confidence=np.full(2, 0.5),
        has_sample=np.zeros(2, dtype=np.bool_),
        sample_quality=np.zeros(2),
        turnaround_ms=np.full(2, 10, dtype=np.int64),
        certified_matches=np.zeros(2, dtype=np.int64),
        tier=np.zeros(2, dtype=np.int8),
        submitted_at_ms=np.zeros(2, dtype=np.int64),
        eligible=np.ones(2, dtype=np.bool_),
    )
    assert not isinstance(batch, Rejected), batch
    weights = PRESETS["balanced"]
    for with_ranks in (False, True):
        scored = score_bids(batch, weights, now_ms=10, with_ranks=with_ranks)
        assert not isinstance(scored, Rejected), scored
        rank_auctions(
            batch.auction_id,
            _components_of(scored),
            weights,
            price_minor=batch.price_minor,
            submitted_at_ms=batch.submitted_at_ms,
            bid_id=batch.bid_id,
            with_ranks=with_ranks,
        )


def _components_of(scored: ScoredBids) -> Components:
    # The components of a scored batch (views, no copy).
    scores = (
        scored.price_score,
        scored.trust_score,
        scored.confidence_score,
        scored.sample_score,
        scored.sla_score,
        scored.certification_score,
    )
    return Components(*scores, reject_reason=scored.reject_reason)

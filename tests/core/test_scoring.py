"""aex/core/scoring.py: worked examples, reject reasons, tie-breaks, validation and weights."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from aex.core import limits
from aex.core.reasons import (
    BidBatchRejectReason,
    BidRejectReason,
    Rejected,
    WeightsRejectReason,
)
from aex.core.scoring import (
    PRESETS,
    WEIGHT_NAMES,
    BidBatch,
    ScoredBids,
    Weights,
    certification_score_column,
    component_scores,
    make_weights,
    price_score_column,
    sample_score_column,
    score_bids,
    sla_score_column,
    weights_from_json,
    weights_to_json,
)

NOW_MS = 10_000
HOUR_MS = 3_600_000
BALANCED = PRESETS["balanced"]
WORK = {
    "auction_id": 7,
    "budget_min_minor": 5_000,  # the spec's example budget: min 50, max 200 USD
    "budget_max_minor": 20_000,
    "required_turnaround_ms": 4 * HOUR_MS,
    "hard_limit_turnaround_ms": 24 * HOUR_MS,
    "window_opens_ms": 1_000,
    "window_closes_ms": 5_000,
}
BID = {
    "bid_id": 1,
    "provider_id": 1,
    "price_minor": 10_000,  # the spec's example bid: price 100, confidence 0.95, 4h SLA
    "currency_matches": True,
    "trust": 0.82,
    "confidence": 0.95,
    "has_sample": False,
    "sample_quality": 0.0,
    "turnaround_ms": 4 * HOUR_MS,
    "certified_matches": 1,
    "tier": 2,
    "submitted_at_ms": 2_000,
    "eligible": True,
}


def auction(*bids: dict[str, Any], **work: Any) -> BidBatch:
    rows = [{**BID, "bid_id": position + 1, **bid} for position, bid in enumerate(bids)]
    columns = {name: [row[name] for row in rows] for name in BID}
    batch = BidBatch.single_auction(**{**WORK, **work}, **columns)
    assert not isinstance(batch, Rejected), batch
    return batch


def score(batch: BidBatch, weights: Weights = BALANCED) -> ScoredBids:
    result = score_bids(batch, weights, now_ms=NOW_MS)
    assert not isinstance(result, Rejected), result
    return result


def reasons(result: ScoredBids) -> list[BidRejectReason | None]:
    return [result.reason_of(row) for row in range(len(result))]


# --- components -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price_minor", "expected"),
    [
        (5_000, 1.0),  # at budget min
        (1_000, 1.0),  # below budget min
        (20_000, 0.0),  # at budget max
        (12_500, 0.5),  # midway
        (10_000, 2 / 3),  # the spec's 100 USD bid on a 50..200 budget
        (25_000, 0.0),  # above max (rejected anyway)
    ],
)
def test_price_score_is_linear_in_the_budget_and_cheaper_scores_higher(
    price_minor: int, expected: float
) -> None:
    score = price_score_column(np.array([price_minor]), np.array([5_000]), np.array([20_000]))
    assert score[0] == pytest.approx(expected, abs=1e-15)


def test_price_score_on_a_single_price_budget_is_one_at_or_below_it() -> None:
    score = price_score_column(np.array([99, 100, 101]), np.array([100] * 3), np.array([100] * 3))
    assert score.tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("turnaround_ms", "required_ms", "expected"),
    [
        (4 * HOUR_MS, 4 * HOUR_MS, 1.0),  # meets the requirement
        (2 * HOUR_MS, 4 * HOUR_MS, 1.0),  # faster than required: still 1
        (8 * HOUR_MS, 4 * HOUR_MS, 0.5),  # twice as slow
        (16 * HOUR_MS, 4 * HOUR_MS, 0.25),
        (99 * HOUR_MS, 0, 1.0),  # no requirement stated
    ],
)
def test_sla_score_is_required_over_promised_capped_at_one(
    turnaround_ms: int, required_ms: int, expected: float
) -> None:
    assert sla_score_column(np.array([turnaround_ms]), np.array([required_ms]))[0] == expected


@pytest.mark.parametrize(
    ("certified_matches", "tier", "expected"),
    [(0, 3, 0.0), (1, 0, 0.6), (1, 1, 0.7), (1, 2, 0.8), (1, 3, 1.0), (5, 0, 0.6)],
)
def test_certification_score_needs_a_matching_certificate_and_grows_with_tier(
    certified_matches: int, tier: int, expected: float
) -> None:
    got = certification_score_column(np.array([certified_matches]), np.array([tier], np.int8))
    assert got[0] == pytest.approx(expected)


def test_sample_score_is_the_quality_or_the_neutral_value_without_a_sample() -> None:
    got = sample_score_column(np.array([True, False]), np.array([0.9, math.nan]))
    assert got.tolist() == [0.9, 0.5]


def test_the_spec_example_bid_scores_its_weighted_components() -> None:
    result = score(auction({}))
    expected = 0.25 * (2 / 3) + 0.25 * 0.82 + 0.15 * 0.95 + 0.10 * 0.5 + 0.10 * 1.0 + 0.15 * 0.8
    assert result.total[0] == pytest.approx(expected, abs=1e-12)
    assert result.rank.tolist() == [1]
    assert result.is_winner.tolist() == [True]


def test_a_perfect_bid_totals_exactly_one_under_every_preset() -> None:
    perfect = {"price_minor": 5_000, "trust": 1.0, "confidence": 1.0, "has_sample": True}
    for weights in PRESETS.values():
        result = score(auction({**perfect, "sample_quality": 1.0, "tier": 3}), weights)
        assert result.total[0] == pytest.approx(1.0, abs=1e-12)
        assert result.total[0] <= 1.0


# --- reject reasons -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bid", "reason"),
    [
        ({"eligible": False}, BidRejectReason.PROVIDER_NOT_ELIGIBLE),
        ({"submitted_at_ms": 999}, BidRejectReason.OUTSIDE_BID_WINDOW),
        ({"submitted_at_ms": 5_000}, BidRejectReason.OUTSIDE_BID_WINDOW),  # closes is exclusive
        ({"currency_matches": False}, BidRejectReason.CURRENCY_MISMATCH),
        ({"price_minor": 0}, BidRejectReason.PRICE_NOT_POSITIVE),
        ({"price_minor": -5}, BidRejectReason.PRICE_NOT_POSITIVE),
        ({"price_minor": 20_001}, BidRejectReason.PRICE_ABOVE_BUDGET_MAX),
        ({"turnaround_ms": 24 * HOUR_MS + 1}, BidRejectReason.SLA_BEYOND_HARD_LIMIT),
    ],
)
def test_each_failing_bid_carries_its_reason_and_scores_zero(
    bid: dict[str, Any], reason: BidRejectReason
) -> None:
    result = score(auction(bid, {"provider_id": 2}))
    assert reasons(result) == [reason, None]
    assert result.total[0] == 0.0
    assert result.rank.tolist() == [0, 1]
    assert result.is_winner.tolist() == [False, True]


def test_bids_at_the_edges_are_accepted() -> None:
    edges = [
        {"submitted_at_ms": 1_000},  # window opens (inclusive)
        {"submitted_at_ms": 4_999},
        {"price_minor": 20_000},  # exactly the budget max
        {"price_minor": 1},
        {"turnaround_ms": 24 * HOUR_MS},  # exactly the hard limit
    ]
    result = score(auction(*({**bid, "provider_id": i} for i, bid in enumerate(edges))))
    assert reasons(result) == [None] * len(edges)


def test_no_hard_limit_means_any_turnaround_is_accepted() -> None:
    result = score(auction({"turnaround_ms": 300 * 24 * HOUR_MS}, hard_limit_turnaround_ms=0))
    assert reasons(result) == [None]


def test_the_first_failing_check_in_precedence_order_is_the_reason() -> None:
    everything_wrong = {
        "eligible": False,
        "submitted_at_ms": 0,
        "currency_matches": False,
        "price_minor": 30_000,
        "turnaround_ms": 48 * HOUR_MS,
    }
    result = score(auction(everything_wrong))
    assert reasons(result) == [BidRejectReason.PROVIDER_NOT_ELIGIBLE]
    second = score(auction({**everything_wrong, "eligible": True}))
    assert reasons(second) == [BidRejectReason.OUTSIDE_BID_WINDOW]


def test_a_providers_first_valid_bid_counts_and_later_ones_are_duplicates() -> None:
    result = score(
        auction(
            {"submitted_at_ms": 3_000, "price_minor": 6_000},  # later, even though cheaper
            {"submitted_at_ms": 2_000},  # the first: counts
            {"submitted_at_ms": 2_000, "bid_id": 0, "provider_id": 9},  # another provider
        )
    )
    assert reasons(result) == [BidRejectReason.DUPLICATE_BID, None, None]


def test_equal_submission_times_fall_back_to_the_lower_bid_id_for_duplicates() -> None:
    result = score(auction({"bid_id": 5}, {"bid_id": 4}))
    assert reasons(result) == [BidRejectReason.DUPLICATE_BID, None]


def test_a_rejected_earlier_bid_does_not_block_the_providers_valid_one() -> None:
    result = score(
        auction({"submitted_at_ms": 2_000, "price_minor": 99_000}, {"submitted_at_ms": 3_000})
    )
    assert reasons(result) == [BidRejectReason.PRICE_ABOVE_BUDGET_MAX, None]


def test_reason_codes_are_one_based_positions_in_precedence_order() -> None:
    for position, reason in enumerate(BidRejectReason, start=1):
        assert reason.code == position
        assert BidRejectReason.from_code(position) is reason


def test_an_auction_with_only_rejected_bids_has_no_winner() -> None:
    result = score(auction({"eligible": False}, {"price_minor": 0, "provider_id": 2}))
    assert not result.is_winner.any()
    assert not result.rank.any()


# --- tie-breaks ----------------------------------------------------------------------------------


def test_higher_total_wins() -> None:
    result = score(auction({"trust": 0.5}, {"trust": 0.9, "provider_id": 2}))
    assert result.is_winner.tolist() == [False, True]
    assert result.rank.tolist() == [2, 1]


def test_equal_totals_prefer_the_lower_price() -> None:
    # Price weight 0: the totals tie exactly, so the lower price breaks the tie.
    weights = Weights(0.0, 0.5, 0.5, 0.0, 0.0, 0.0)
    result = score(
        auction({"price_minor": 9_000}, {"price_minor": 8_000, "provider_id": 2}), weights
    )
    assert result.total[0] == result.total[1]
    assert result.rank.tolist() == [2, 1]


def test_equal_totals_and_prices_prefer_the_earlier_submission() -> None:
    result = score(
        auction({"submitted_at_ms": 3_000}, {"submitted_at_ms": 2_500, "provider_id": 2})
    )
    assert result.rank.tolist() == [2, 1]


def test_equal_everything_else_prefers_the_lower_bid_id() -> None:
    result = score(auction({"bid_id": 12}, {"bid_id": 11, "provider_id": 2}))
    assert result.rank.tolist() == [2, 1]
    assert result.is_winner.tolist() == [False, True]


def test_without_ranks_the_winner_is_the_same_and_ranks_stay_zero() -> None:
    batch = auction(
        {"bid_id": 12}, {"bid_id": 11, "provider_id": 2}, {"trust": 0.1, "provider_id": 3}
    )
    ranked = score(batch)
    unranked = score_bids(batch, BALANCED, now_ms=NOW_MS, with_ranks=False)
    assert not isinstance(unranked, Rejected)
    assert np.array_equal(unranked.is_winner, ranked.is_winner)
    assert not unranked.rank.any()


def test_many_auctions_in_one_batch_get_one_winner_each() -> None:
    rng = np.random.default_rng(5)
    bids_per_auction = 400
    auctions = 3 * limits.scoring_block_rows // bids_per_auction  # spans several blocks
    auction_id = np.repeat(np.arange(auctions), bids_per_auction)
    count = auction_id.shape[0]
    batch = BidBatch.from_columns(
        auction_id=auction_id,
        bid_id=np.arange(count),
        provider_id=np.arange(count),
        price_minor=rng.integers(1, 100, count),
        currency_matches=np.ones(count, bool),
        budget_min_minor=np.full(count, 10),
        budget_max_minor=np.full(count, 90),
        trust=rng.random(count),
        confidence=rng.random(count),
        has_sample=rng.random(count) < 0.5,
        sample_quality=rng.random(count),
        turnaround_ms=rng.integers(1, 100, count),
        required_turnaround_ms=np.full(count, 50),
        hard_limit_turnaround_ms=np.zeros(count, np.int64),
        certified_matches=rng.integers(0, 2, count),
        tier=rng.integers(0, 4, count).astype(np.int8),
        submitted_at_ms=np.full(count, 5),
        window_opens_ms=np.zeros(count, np.int64),
        window_closes_ms=np.full(count, 10),
        eligible=np.ones(count, bool),
    )
    assert not isinstance(batch, Rejected)
    result = score(batch)
    winners_per_auction = np.bincount(auction_id, weights=result.is_winner)
    assert np.all(winners_per_auction == 1)
    best = np.maximum.reduceat(result.total, np.arange(0, count, bids_per_auction))
    assert np.array_equal(result.total[result.is_winner], best)


# --- batch validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bid", "field", "reason"),
    [
        ({"trust": math.nan}, "trust", BidBatchRejectReason.VALUE_NOT_FINITE),
        ({"trust": math.inf}, "trust", BidBatchRejectReason.VALUE_NOT_FINITE),
        ({"trust": 1.5}, "trust", BidBatchRejectReason.VALUE_OUT_OF_RANGE),
        ({"trust": -0.1}, "trust", BidBatchRejectReason.VALUE_OUT_OF_RANGE),
        ({"confidence": math.nan}, "confidence", BidBatchRejectReason.VALUE_NOT_FINITE),
        ({"confidence": 1.0000001}, "confidence", BidBatchRejectReason.VALUE_OUT_OF_RANGE),
        (
            {"has_sample": True, "sample_quality": math.nan},
            "sample_quality",
            BidBatchRejectReason.VALUE_NOT_FINITE,
        ),
        (
            {"has_sample": True, "sample_quality": 2.0},
            "sample_quality",
            BidBatchRejectReason.VALUE_OUT_OF_RANGE,
        ),
        ({"turnaround_ms": 0}, "turnaround_ms", BidBatchRejectReason.VALUE_OUT_OF_RANGE),
        (
            {"turnaround_ms": limits.turnaround_ms_max + 1},
            "turnaround_ms",
            BidBatchRejectReason.VALUE_OUT_OF_RANGE,
        ),
        ({"certified_matches": -1}, "certified_matches", BidBatchRejectReason.VALUE_OUT_OF_RANGE),
        ({"tier": 4}, "tier", BidBatchRejectReason.VALUE_OUT_OF_RANGE),
        ({"tier": -1}, "tier", BidBatchRejectReason.VALUE_OUT_OF_RANGE),
        (
            {"submitted_at_ms": NOW_MS + 1},
            "submitted_at_ms",
            BidBatchRejectReason.VALUE_OUT_OF_RANGE,
        ),
        (
            {"price_minor": limits.amount_minor_max + 1},
            "price_minor",
            BidBatchRejectReason.VALUE_OUT_OF_RANGE,
        ),
    ],
)
def test_malformed_values_reject_the_batch_naming_the_column(
    bid: dict[str, Any], field: str, reason: BidBatchRejectReason
) -> None:
    result = score_bids(auction({}, bid), BALANCED, now_ms=NOW_MS)
    assert isinstance(result, Rejected)
    assert (result.reason, result.field) == (reason, field)


def test_an_ignored_sample_quality_may_be_nan() -> None:
    result = score(auction({"has_sample": False, "sample_quality": math.nan}))
    assert result.sample_score.tolist() == [0.5]


@pytest.mark.parametrize(
    ("work", "field"),
    [
        ({"budget_min_minor": -1}, "budget_min_minor"),
        ({"budget_max_minor": 4_999}, "budget_max_minor"),  # below the budget min
        ({"required_turnaround_ms": -1}, "required_turnaround_ms"),
        ({"hard_limit_turnaround_ms": -1}, "hard_limit_turnaround_ms"),
        ({"window_opens_ms": -1}, "window_opens_ms"),
        ({"window_closes_ms": 1_000}, "window_closes_ms"),  # an empty window
    ],
)
def test_malformed_work_values_reject_the_batch_naming_the_column(
    work: dict[str, Any], field: str
) -> None:
    result = score_bids(auction({}, **work), BALANCED, now_ms=NOW_MS)
    assert isinstance(result, Rejected)
    assert result.reason is BidBatchRejectReason.VALUE_OUT_OF_RANGE
    assert result.field == field


def test_the_first_bad_column_is_named_even_when_a_later_block_holds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "scoring_block_rows", 1)
    first = auction({"tier": 9})
    second = auction({"trust": 7.0}, auction_id=8)
    columns = {
        name: np.concatenate([getattr(first, name), getattr(second, name)]) for name in WORK | BID
    }
    batch = BidBatch(**columns)
    result = score_bids(batch, BALANCED, now_ms=NOW_MS)
    assert isinstance(result, Rejected)
    assert result.field == "trust"  # trust precedes tier in column order


def test_unsorted_auction_ids_reject_the_batch() -> None:
    first, second = auction({}, auction_id=9), auction({}, auction_id=3)
    columns = {
        name: np.concatenate([getattr(first, name), getattr(second, name)]) for name in WORK | BID
    }
    result = score_bids(BidBatch(**columns), BALANCED, now_ms=NOW_MS)
    assert isinstance(result, Rejected)
    assert (result.reason, result.field) == (
        BidBatchRejectReason.AUCTION_ID_NOT_SORTED,
        "auction_id",
    )


def test_an_auction_over_the_bid_limit_rejects_the_batch() -> None:
    many = [{"provider_id": i} for i in range(limits.bids_per_work_max + 1)]
    result = score_bids(auction(*many), BALANCED, now_ms=NOW_MS)
    assert isinstance(result, Rejected)
    assert result.reason is BidBatchRejectReason.AUCTION_TOO_LARGE


def full_columns(**overrides: Any) -> dict[str, Any]:
    batch = auction({}, {"provider_id": 2})
    columns: dict[str, Any] = {name: getattr(batch, name) for name in WORK | BID}
    return {**columns, **overrides}


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"trust": np.array(["a", "b"])}, "trust", BidBatchRejectReason.COLUMN_WRONG_DTYPE),
        (
            {"price_minor": np.array([1.0, 2.0])},
            "price_minor",
            BidBatchRejectReason.COLUMN_WRONG_DTYPE,
        ),
        ({"eligible": np.array([1, 0])}, "eligible", BidBatchRejectReason.COLUMN_WRONG_DTYPE),
        ({"tier": np.array([300, 1])}, "tier", BidBatchRejectReason.VALUE_OUT_OF_RANGE),
        ({"bid_id": np.array([1, 2, 3])}, "bid_id", BidBatchRejectReason.COLUMN_LENGTH_MISMATCH),
        (
            {"bid_id": np.ones((2, 1), np.int64)},
            "bid_id",
            BidBatchRejectReason.COLUMN_NOT_ONE_DIMENSIONAL,
        ),
        ({"surprise": np.array([1, 2])}, "surprise", BidBatchRejectReason.COLUMN_UNKNOWN),
    ],
)
def test_from_columns_rejects_malformed_columns_naming_them(
    overrides: dict[str, Any], field: str, reason: BidBatchRejectReason
) -> None:
    result = BidBatch.from_columns(**full_columns(**overrides))
    assert isinstance(result, Rejected)
    assert (result.reason, result.field) == (reason, field)


def test_from_columns_rejects_a_missing_column() -> None:
    columns = full_columns()
    del columns["confidence"]
    result = BidBatch.from_columns(**columns)
    assert isinstance(result, Rejected)
    assert (result.reason, result.field) == (BidBatchRejectReason.COLUMN_MISSING, "confidence")


def test_from_columns_converts_only_losslessly() -> None:
    batch = BidBatch.from_columns(
        **full_columns(trust=[0, 1], tier=[1, 3], price_minor=np.array([5, 6], np.int32))
    )
    assert not isinstance(batch, Rejected)
    assert batch.trust.dtype == np.float64
    assert batch.tier.tolist() == [1, 3]
    assert batch.price_minor.dtype == np.int64


def test_an_empty_batch_scores_to_empty_columns() -> None:
    empty = {name: [] for name in WORK | BID}
    batch = BidBatch.from_columns(**empty)
    assert not isinstance(batch, Rejected)
    result = score(batch)
    assert len(result) == 0
    components = component_scores(batch, now_ms=NOW_MS)
    assert not isinstance(components, Rejected)
    assert len(components) == 0


# --- weights --------------------------------------------------------------------------------------


def test_presets_sum_to_one_and_balanced_is_the_spec() -> None:
    assert Weights(0.25, 0.25, 0.15, 0.10, 0.10, 0.15) == BALANCED
    assert set(PRESETS) == {"balanced", "lowest_price", "best_quality"}
    for weights in PRESETS.values():
        assert math.fsum(weights.as_tuple()) == pytest.approx(1.0, abs=1e-12)


def test_lowest_price_weights_price_most_and_best_quality_weights_it_least() -> None:
    assert PRESETS["lowest_price"].price == max(w.price for w in PRESETS.values())
    assert PRESETS["best_quality"].price == min(w.price for w in PRESETS.values())


def test_make_weights_accepts_valid_custom_weights() -> None:
    values = dict(zip(WEIGHT_NAMES, (0.4, 0.2, 0.1, 0.1, 0.1, 0.1), strict=True))
    assert make_weights(values) == Weights(0.4, 0.2, 0.1, 0.1, 0.1, 0.1)
    assert make_weights(
        {
            **values,
            "price": 1,
            "trust": 0,
            "confidence": 0,
            "sample_work": 0,
            "sla": 0,
            "certification": 0,
        }
    ) == Weights(1.0, 0.0, 0.0, 0.0, 0.0, 0.0)


VALID = dict(zip(WEIGHT_NAMES, BALANCED.as_tuple(), strict=True))


@pytest.mark.parametrize(
    ("values", "reason", "field"),
    [
        ([0.25], WeightsRejectReason.DOCUMENT_INVALID, "weights"),
        (
            {k: v for k, v in VALID.items() if k != "sla"},
            WeightsRejectReason.WEIGHT_MISSING,
            "weights.sla",
        ),
        ({**VALID, "speed": 0.0}, WeightsRejectReason.WEIGHT_UNKNOWN, "weights.speed"),
        ({**VALID, "trust": "0.25"}, WeightsRejectReason.WEIGHT_NOT_A_NUMBER, "weights.trust"),
        ({**VALID, "trust": True}, WeightsRejectReason.WEIGHT_NOT_A_NUMBER, "weights.trust"),
        ({**VALID, "price": math.nan}, WeightsRejectReason.WEIGHT_NOT_FINITE, "weights.price"),
        ({**VALID, "price": math.inf}, WeightsRejectReason.WEIGHT_NOT_FINITE, "weights.price"),
        (
            {**VALID, "price": -0.25, "trust": 0.75},
            WeightsRejectReason.WEIGHT_NEGATIVE,
            "weights.price",
        ),
        ({**VALID, "price": 0.3}, WeightsRejectReason.WEIGHTS_DO_NOT_SUM_TO_ONE, "weights"),
        ({**VALID, "price": 0.25 + 2e-9}, WeightsRejectReason.WEIGHTS_DO_NOT_SUM_TO_ONE, "weights"),
    ],
)
def test_make_weights_rejects_invalid_weights_naming_the_field(
    values: Any, reason: WeightsRejectReason, field: str
) -> None:
    result = make_weights(values)
    assert isinstance(result, Rejected)
    assert (result.reason, result.field) == (reason, field)


def test_weights_round_trip_through_their_json_file_format() -> None:
    document = weights_to_json(PRESETS["best_quality"])
    assert document["name"] == "best_quality"
    assert weights_from_json(document) == PRESETS["best_quality"]
    custom = Weights(0.5, 0.5, 0.0, 0.0, 0.0, 0.0)
    assert weights_to_json(custom)["name"] == "custom"
    assert weights_from_json(weights_to_json(custom, name="mine")) == custom


@pytest.mark.parametrize(
    "document",
    [None, [], {}, {"name": 3, "weights": VALID}, {"weights": [1]}, {"weights": VALID, "x": 1}],
)
def test_weights_from_json_rejects_malformed_documents(document: Any) -> None:
    result = weights_from_json(document)
    assert isinstance(result, Rejected)
    assert result.reason is WeightsRejectReason.DOCUMENT_INVALID

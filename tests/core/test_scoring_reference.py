"""Both scoring engines equal a plain-Python reference of the same spec formula, row by row.

`reference_score` below is written for clarity, one bid at a time, straight from the rules in
aex/core/scoring.py (STYLE.md 11). Hypothesis draws random multi-auction batches, with small
value domains so that ties, duplicates and every reject reason occur, and asserts that the
compiled kernel (aex/core/_scoring_kernel.py, the default engine) and the numpy columnar path
(score_bids, and component_scores then rank_auctions) agree with it and with each other,
exactly, on every component, total, reject code, rank and winner, whatever the block size;
malformed batches get the same rejection from both engines. Further properties:
permuting auctions and bids never changes a winner, raising a price never raises a score,
adding a rejected bid changes nothing, totals stay in [0, 1], one winner per live auction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aex.core import limits
from aex.core.reasons import BidRejectReason, Rejected
from aex.core.scoring import (
    CERTIFICATION_BASE_SCORE,
    CERTIFICATION_TIER_BOOST,
    ENGINES,
    PRESETS,
    BidBatch,
    Engine,
    ScoredBids,
    Weights,
    component_scores,
    rank_auctions,
    score_bids,
)

NOW_MS = 1_000_000
COLUMNS = (
    "auction_id",
    "bid_id",
    "provider_id",
    "price_minor",
    "currency_matches",
    "budget_min_minor",
    "budget_max_minor",
    "trust",
    "confidence",
    "has_sample",
    "sample_quality",
    "turnaround_ms",
    "required_turnaround_ms",
    "hard_limit_turnaround_ms",
    "certified_matches",
    "tier",
    "submitted_at_ms",
    "window_opens_ms",
    "window_closes_ms",
    "eligible",
)
Bid = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# The reference: one bid at a time, in plain Python.
# ---------------------------------------------------------------------------------------------


def ref_price_score(price: int, budget_min: int, budget_max: int) -> float:
    if budget_max == budget_min:
        return 1.0 if price <= budget_min else 0.0
    return min(1.0, max(0.0, (budget_max - price) / (budget_max - budget_min)))


def ref_sla_score(turnaround_ms: int, required_ms: int) -> float:
    return 1.0 if required_ms == 0 else min(1.0, required_ms / turnaround_ms)


def ref_certification_score(certified_matches: int, tier: int) -> float:
    if certified_matches == 0:
        return 0.0
    return CERTIFICATION_BASE_SCORE + CERTIFICATION_TIER_BOOST[tier]


def ref_reason_before_duplicates(bid: Bid) -> BidRejectReason | None:
    checks = [
        (BidRejectReason.PROVIDER_NOT_ELIGIBLE, not bid["eligible"]),
        (
            BidRejectReason.OUTSIDE_BID_WINDOW,
            not bid["window_opens_ms"] <= bid["submitted_at_ms"] < bid["window_closes_ms"],
        ),
        (BidRejectReason.CURRENCY_MISMATCH, not bid["currency_matches"]),
        (BidRejectReason.PRICE_NOT_POSITIVE, bid["price_minor"] <= 0),
        (BidRejectReason.PRICE_ABOVE_BUDGET_MAX, bid["price_minor"] > bid["budget_max_minor"]),
        (
            BidRejectReason.SLA_BEYOND_HARD_LIMIT,
            bid["hard_limit_turnaround_ms"] > 0
            and bid["turnaround_ms"] > bid["hard_limit_turnaround_ms"],
        ),
    ]
    return next((reason for reason, failed in checks if failed), None)


def ref_reasons(bids: list[Bid]) -> list[int]:
    reasons = [ref_reason_before_duplicates(bid) for bid in bids]
    first: dict[tuple[int, int], tuple[int, int, int]] = {}
    for row, bid in enumerate(bids):
        if reasons[row] is None:
            key = (bid["auction_id"], bid["provider_id"])
            order = (bid["submitted_at_ms"], bid["bid_id"], row)
            first[key] = min(first.get(key, order), order)
    for row, bid in enumerate(bids):
        key = (bid["auction_id"], bid["provider_id"])
        if reasons[row] is None and first[key][2] != row:
            reasons[row] = BidRejectReason.DUPLICATE_BID
    return [0 if reason is None else reason.code for reason in reasons]


def reference_score(bids: list[Bid], weights: Weights, neutral: float = 0.5) -> list[Bid]:
    codes = ref_reasons(bids)
    out: list[Bid] = []
    for bid, code in zip(bids, codes, strict=True):
        scores = (
            ref_price_score(bid["price_minor"], bid["budget_min_minor"], bid["budget_max_minor"]),
            bid["trust"],
            bid["confidence"],
            bid["sample_quality"] if bid["has_sample"] else neutral,
            ref_sla_score(bid["turnaround_ms"], bid["required_turnaround_ms"]),
            ref_certification_score(bid["certified_matches"], bid["tier"]),
        )
        total = 0.0
        for position, (score, weight) in enumerate(zip(scores, weights.as_tuple(), strict=True)):
            total = score * weight if position == 0 else total + score * weight
        total = min(1.0, total) if code == 0 else 0.0
        out.append({"scores": scores, "reject_reason": code, "total": total, "rank": 0})
    for auction_id in {bid["auction_id"] for bid in bids}:
        rows = [r for r, bid in enumerate(bids) if bid["auction_id"] == auction_id and not codes[r]]
        rows.sort(
            key=lambda r: (
                -out[r]["total"],
                bids[r]["price_minor"],
                bids[r]["submitted_at_ms"],
                bids[r]["bid_id"],
                r,
            )
        )
        for position, row in enumerate(rows):
            out[row]["rank"] = position + 1
    return out


# ---------------------------------------------------------------------------------------------
# Strategies: small domains, so that ties, duplicates and every reason happen often.
# ---------------------------------------------------------------------------------------------

unit = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 1.0))


@st.composite
def auction_bids(draw: st.DrawFn, auction_id: int, unique_bid_ids: bool = False) -> list[Bid]:
    budget_min = draw(st.integers(0, 50))
    budget_max = budget_min + draw(st.sampled_from([0, 1, 10, 100]))
    required = draw(st.sampled_from([0, 10, 100]))
    hard = draw(st.sampled_from([0, 50, 200]))
    opens = draw(st.integers(0, 100))
    closes = opens + draw(st.integers(1, 100))
    bids = []
    for _ in range(draw(st.integers(1, 7))):
        bids.append(
            {
                "auction_id": auction_id,
                "bid_id": draw(st.integers(0, 5)),
                "provider_id": draw(st.integers(0, 4)),
                "price_minor": draw(st.integers(-2, budget_max + 3)),
                "currency_matches": draw(st.integers(0, 9)) > 0,
                "budget_min_minor": budget_min,
                "budget_max_minor": budget_max,
                "trust": draw(unit),
                "confidence": draw(unit),
                "has_sample": draw(st.booleans()),
                "sample_quality": draw(unit),
                "turnaround_ms": draw(st.sampled_from([1, 10, 50, 100, 300])),
                "required_turnaround_ms": required,
                "hard_limit_turnaround_ms": hard,
                "certified_matches": draw(st.integers(0, 2)),
                "tier": draw(st.integers(0, 3)),
                "submitted_at_ms": draw(st.integers(max(0, opens - 5), closes + 5)),
                "window_opens_ms": opens,
                "window_closes_ms": closes,
                "eligible": draw(st.integers(0, 9)) > 0,
            }
        )
    if unique_bid_ids:
        for position, bid in enumerate(bids):
            bid["bid_id"] = auction_id * 100 + position
    return bids


@st.composite
def batches(draw: st.DrawFn, unique_bid_ids: bool = False) -> list[list[Bid]]:
    count = draw(st.integers(1, 5))
    ids = sorted(draw(st.lists(st.integers(0, 10**6), min_size=count, max_size=count, unique=True)))
    return [draw(auction_bids(auction_id, unique_bid_ids)) for auction_id in ids]


def to_batch(bids: list[Bid]) -> BidBatch:
    columns = {name: [bid[name] for bid in bids] for name in COLUMNS}
    batch = BidBatch.from_columns(**columns)
    assert not isinstance(batch, Rejected), batch
    return batch


def scored(
    bids: list[Bid], weights: Weights, *, with_ranks: bool = True, engine: Engine = "compiled"
) -> ScoredBids:
    batch = to_batch(bids)
    result = score_bids(batch, weights, now_ms=NOW_MS, with_ranks=with_ranks, engine=engine)
    assert not isinstance(result, Rejected), result
    return result


@contextmanager
def block_rows(rows: int) -> Iterator[None]:
    # Small blocks exercise the block cutting (an auction never straddles a block).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits, "scoring_block_rows", rows)
        patch.setattr(limits, "scoring_kernel_block_rows", rows)
        yield


ONLY_CERTIFICATION = Weights(0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
weights_strategy = st.sampled_from([*PRESETS.values(), ONLY_CERTIFICATION])


def flatten(auctions: list[list[Bid]]) -> list[Bid]:
    return [bid for auction in auctions for bid in auction]


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


SCORED_COLUMNS = (
    "price_score",
    "trust_score",
    "confidence_score",
    "sample_score",
    "sla_score",
    "certification_score",
    "reject_reason",
    "total",
    "rank",
    "is_winner",
)


@settings(max_examples=100, deadline=None)
@given(batches(), weights_strategy, st.sampled_from([1, 4, 65_536]))
def test_both_engines_equal_the_reference_and_each_other_row_by_row(
    auctions: list[list[Bid]], weights: Weights, rows_per_block: int
) -> None:
    bids = flatten(auctions)
    expected = reference_score(bids, weights)
    with block_rows(rows_per_block):
        by_engine = {engine: scored(bids, weights, engine=engine) for engine in ENGINES}
        winners_only = {
            engine: scored(bids, weights, with_ranks=False, engine=engine) for engine in ENGINES
        }
    for engine, result in by_engine.items():
        for row, reference in enumerate(expected):
            got_scores = (
                result.price_score[row],
                result.trust_score[row],
                result.confidence_score[row],
                result.sample_score[row],
                result.sla_score[row],
                result.certification_score[row],
            )
            assert got_scores == reference["scores"], (engine, row)
            assert result.reject_reason[row] == reference["reject_reason"], (engine, row)
            assert result.total[row] == reference["total"], (engine, row)
            assert result.rank[row] == reference["rank"], (engine, row)
            assert result.is_winner[row] == (reference["rank"] == 1), (engine, row)
        assert np.array_equal(winners_only[engine].is_winner, result.is_winner), engine
        assert np.array_equal(winners_only[engine].total, result.total), engine
        assert not winners_only[engine].rank.any(), engine
    # Bit for bit, not only equal as numbers (0.0 and -0.0 compare equal).
    compiled, numpy_path = by_engine["compiled"], by_engine["numpy"]
    for name in SCORED_COLUMNS:
        got, want = getattr(compiled, name), getattr(numpy_path, name)
        assert got.dtype == want.dtype, name
        assert got.tobytes() == want.tobytes(), name


# One bad value per draw: (column, value), each breaking one rule of the batch validation.
BAD_VALUES = (
    ("price_minor", limits.amount_minor_max + 1),
    ("budget_min_minor", -1),
    ("budget_max_minor", limits.amount_minor_max + 1),
    ("trust", float("nan")),
    ("trust", 1.5),
    ("confidence", float("inf")),
    ("confidence", -0.25),
    ("sample_quality", float("nan")),
    ("sample_quality", 2.0),
    ("turnaround_ms", 0),
    ("required_turnaround_ms", -1),
    ("hard_limit_turnaround_ms", limits.turnaround_ms_max + 1),
    ("certified_matches", -1),
    ("tier", 4),
    ("submitted_at_ms", NOW_MS + 1),
    ("window_opens_ms", -1),
    ("window_closes_ms", -5),
)


@settings(max_examples=60, deadline=None)
@given(batches(), st.data())
def test_both_engines_reject_a_malformed_batch_alike(
    auctions: list[list[Bid]], data: st.DataObject
) -> None:
    bids = [dict(bid) for bid in flatten(auctions)]
    for _ in range(data.draw(st.integers(1, 3))):
        row = data.draw(st.integers(0, len(bids) - 1))
        column, value = data.draw(st.sampled_from(BAD_VALUES))
        bids[row][column] = value
        if column == "sample_quality":
            bids[row]["has_sample"] = data.draw(st.booleans())
        if column == "window_closes_ms":
            bids[row]["window_opens_ms"] = 0
    if data.draw(st.booleans()) and len(auctions) > 1:
        bids.reverse()  # auction ids now decrease: rejected before any value check
    batch = to_batch(bids)
    results = [
        score_bids(batch, PRESETS["balanced"], now_ms=NOW_MS, engine=engine) for engine in ENGINES
    ]
    components = [component_scores(batch, now_ms=NOW_MS, engine=engine) for engine in ENGINES]
    outcomes = [
        (result.reason, result.field) if isinstance(result, Rejected) else None
        for result in (*results, *components)
    ]
    assert len(set(outcomes)) == 1, outcomes


@settings(max_examples=30, deadline=None)
@given(batches(), weights_strategy, st.sampled_from(ENGINES), st.sampled_from(ENGINES))
def test_score_bids_equals_component_scores_then_rank_auctions(
    auctions: list[list[Bid]], weights: Weights, first: Engine, second: Engine
) -> None:
    batch = to_batch(flatten(auctions))
    components = component_scores(batch, now_ms=NOW_MS, engine=first)
    assert not isinstance(components, Rejected)
    stepwise = rank_auctions(
        batch.auction_id,
        components,
        weights,
        price_minor=batch.price_minor,
        submitted_at_ms=batch.submitted_at_ms,
        bid_id=batch.bid_id,
        engine=second,
    )
    fused = score_bids(batch, weights, now_ms=NOW_MS, engine=second)
    assert not isinstance(fused, Rejected)
    for name in ("total", "rank", "is_winner", "reject_reason", "price_score", "sla_score"):
        assert np.array_equal(getattr(stepwise, name), getattr(fused, name)), name


@settings(max_examples=40, deadline=None)
@given(batches(), weights_strategy)
def test_totals_stay_in_the_unit_interval_and_each_live_auction_has_one_winner(
    auctions: list[list[Bid]], weights: Weights
) -> None:
    result = scored(flatten(auctions), weights)
    assert bool(np.all((result.total >= 0.0) & (result.total <= 1.0)))
    start = 0
    for auction in auctions:
        rows = slice(start, start + len(auction))
        live = bool(np.any(result.reject_reason[rows] == 0))
        assert int(result.is_winner[rows].sum()) == (1 if live else 0)
        accepted_ranks = np.sort(result.rank[rows][result.reject_reason[rows] == 0])
        assert np.array_equal(accepted_ranks, np.arange(1, accepted_ranks.size + 1))
        start += len(auction)


def winners_by_bid_id(auctions: list[list[Bid]], result: ScoredBids) -> dict[int, int]:
    bids = flatten(auctions)
    return {
        bids[row]["auction_id"]: bids[row]["bid_id"] for row in np.flatnonzero(result.is_winner)
    }


@settings(max_examples=40, deadline=None)
@given(batches(unique_bid_ids=True), weights_strategy, st.randoms(use_true_random=False))
def test_permuting_auctions_and_bids_never_changes_a_winner(
    auctions: list[list[Bid]], weights: Weights, shuffler: Any
) -> None:
    before = winners_by_bid_id(auctions, scored(flatten(auctions), weights))
    # Auctions keep their ids, so to stay grouped by ascending auction_id they are relabelled
    # in their new order; winners are compared through a label each bid carries.
    labels = [auction[0]["auction_id"] for auction in auctions]
    shuffled = [list(auction) for auction in auctions]
    shuffler.shuffle(shuffled)
    for auction in shuffled:
        shuffler.shuffle(auction)
    relabelled = [
        [{**bid, "auction_id": new_id} for bid in auction]
        for new_id, auction in zip(sorted(labels), shuffled, strict=True)
    ]
    after_by_new_id = winners_by_bid_id(relabelled, scored(flatten(relabelled), weights))
    new_to_old = {
        new: auction[0]["auction_id"] for new, auction in zip(sorted(labels), shuffled, strict=True)
    }
    after = {new_to_old[new]: bid_id for new, bid_id in after_by_new_id.items()}
    assert after == before


@settings(max_examples=40, deadline=None)
@given(batches(), weights_strategy, st.data())
def test_raising_a_price_never_raises_that_bids_score(
    auctions: list[list[Bid]], weights: Weights, data: st.DataObject
) -> None:
    bids = flatten(auctions)
    # A non-positive price is an invalid bid, not a cheap one: start from a positive price.
    row = data.draw(st.integers(0, len(bids) - 1))
    bids[row] = {**bids[row], "price_minor": max(1, bids[row]["price_minor"])}
    raise_minor = data.draw(st.integers(1, 200))
    before = scored(bids, weights)
    raised = [dict(bid) for bid in bids]
    raised[row]["price_minor"] += raise_minor
    after = scored(raised, weights)
    assert after.price_score[row] <= before.price_score[row]
    assert after.total[row] <= before.total[row]


@settings(max_examples=40, deadline=None)
@given(batches(), weights_strategy, st.data())
def test_adding_a_rejected_bid_never_changes_the_outcome(
    auctions: list[list[Bid]], weights: Weights, data: st.DataObject
) -> None:
    target = data.draw(st.integers(0, len(auctions) - 1))
    extra = data.draw(auction_bids(auctions[target][0]["auction_id"]))[0]
    work = {name: auctions[target][0][name] for name in ("budget_min_minor", "budget_max_minor")}
    extra.update(work)
    failure = data.draw(st.sampled_from(["eligible", "currency", "window", "price", "zero"]))
    if failure == "eligible":
        extra["eligible"] = False
    elif failure == "currency":
        extra["currency_matches"] = False
    elif failure == "window":
        extra["submitted_at_ms"] = extra["window_closes_ms"]
    elif failure == "price":
        extra["price_minor"] = extra["budget_max_minor"] + 1
    else:
        extra["price_minor"] = 0
    position = data.draw(st.integers(0, len(auctions[target])))
    grown = [list(auction) for auction in auctions]
    grown[target].insert(position, extra)
    before = scored(flatten(auctions), weights)
    after = scored(flatten(grown), weights)
    inserted_row = sum(len(auction) for auction in auctions[:target]) + position
    assert after.reject_reason[inserted_row] != 0
    keep = np.ones(len(after), dtype=bool)
    keep[inserted_row] = False
    for name in ("total", "rank", "is_winner", "reject_reason"):
        assert np.array_equal(getattr(after, name)[keep], getattr(before, name)), name


def plain_bid(auction_id: int, bid_id: int, provider_id: int, **changes: Any) -> Bid:
    # An accepted bid (every check passes) unless `changes` say otherwise.
    bid = {
        "auction_id": auction_id,
        "bid_id": bid_id,
        "provider_id": provider_id,
        "price_minor": 50,
        "currency_matches": True,
        "budget_min_minor": 0,
        "budget_max_minor": 100,
        "trust": 0.5,
        "confidence": 0.5,
        "has_sample": False,
        "sample_quality": 0.0,
        "turnaround_ms": 10,
        "required_turnaround_ms": 0,
        "hard_limit_turnaround_ms": 0,
        "certified_matches": 0,
        "tier": 0,
        "submitted_at_ms": 10,
        "window_opens_ms": 0,
        "window_closes_ms": 100,
        "eligible": True,
    }
    return {**bid, **changes}


def assert_engines_equal_the_reference(bids: list[Bid], weights: Weights) -> ScoredBids:
    # Both engines, with and without ranks, equal the reference and each other bit for bit.
    expected = reference_score(bids, weights)
    results = [
        scored(bids, weights, with_ranks=with_ranks, engine=engine)
        for engine in ENGINES
        for with_ranks in (True, False)
    ]
    for result in results:
        assert [int(code) for code in result.reject_reason] == [
            e["reject_reason"] for e in expected
        ]
        assert [float(total) for total in result.total] == [e["total"] for e in expected]
        assert [bool(w) for w in result.is_winner] == [e["rank"] == 1 for e in expected]
    assert [int(rank) for rank in results[0].rank] == [e["rank"] for e in expected]
    for name in SCORED_COLUMNS:
        assert getattr(results[0], name).tobytes() == getattr(results[2], name).tobytes(), name
        assert getattr(results[1], name).tobytes() == getattr(results[3], name).tobytes(), name
    return results[0]


def test_a_later_row_submitted_earlier_turns_the_leading_bid_into_the_duplicate() -> None:
    # The compiled kernel finds duplicates and the winner in one pass over an auction's bids:
    # here the best total so far (row 0) is rejected afterwards, as a duplicate of row 2 (same
    # provider, submitted earlier), so the winner must be taken again: row 1.
    bids = [
        plain_bid(1, 0, provider_id=7, price_minor=10, submitted_at_ms=20),
        plain_bid(1, 1, provider_id=8, price_minor=40),
        plain_bid(1, 2, provider_id=7, price_minor=90, submitted_at_ms=5),
    ]
    result = assert_engines_equal_the_reference(bids, PRESETS["balanced"])
    assert [int(code) for code in result.reject_reason] == [
        BidRejectReason.DUPLICATE_BID.code,
        0,
        0,
    ]
    assert [bool(w) for w in result.is_winner] == [False, True, False]


def test_ties_duplicates_and_all_rejected_auctions_across_blocks_match_the_reference() -> None:
    # Many auctions in blocks of a few rows and of the default size: equal totals (tie-breaks
    # by price, submission, bid id, row), one provider bidding several times (its earliest
    # bid counts, even when a rejected earlier bid exists), an auction where every bid is
    # rejected, and the duplicates' table reused from one auction to the next.
    bids: list[Bid] = []
    for auction in range(40):
        bids += [
            plain_bid(auction, 5, provider_id=auction % 3),
            plain_bid(auction, 3, provider_id=auction % 3 + 1),
            plain_bid(auction, 4, provider_id=auction % 3 + 1, submitted_at_ms=9),
            plain_bid(auction, 1, provider_id=auction % 3 + 2, submitted_at_ms=9, eligible=False),
            plain_bid(auction, 2, provider_id=auction % 3 + 2, price_minor=49 + auction % 3),
        ]
    bids += [plain_bid(40, bid, provider_id=bid, eligible=False) for bid in range(3)]
    bids += [plain_bid(41, bid, provider_id=0, submitted_at_ms=10 + bid % 2) for bid in range(9)]
    for rows in (1, 7, limits.scoring_kernel_block_rows):
        with block_rows(rows):
            assert_engines_equal_the_reference(bids, PRESETS["balanced"])
            assert_engines_equal_the_reference(bids, ONLY_CERTIFICATION)  # all totals 0


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_large_batches_of_many_auctions_equal_the_numpy_path(seed: int) -> None:
    # Thousands of bids in a few hundred auctions of up to 100 bids, providers from a small
    # pool (many duplicates), with the default block sizes: several kernel blocks, and
    # auctions large enough for the duplicates' table to hold many providers at once.
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 101, 300)
    count = int(sizes.sum())
    auction_id = np.repeat(np.arange(sizes.shape[0], dtype=np.int64), sizes)
    opens = np.repeat(rng.integers(5, 1000, sizes.shape[0]), sizes)
    batch = BidBatch.from_columns(
        auction_id=auction_id,
        bid_id=rng.integers(0, 50, count),
        provider_id=rng.integers(0, 60, count),
        price_minor=rng.integers(-1, 120, count),
        currency_matches=rng.random(count) > 0.05,
        budget_min_minor=np.repeat(rng.integers(0, 50, sizes.shape[0]), sizes),
        budget_max_minor=np.full(count, 100),
        trust=rng.choice([0.0, 0.5, 1.0], count),
        confidence=rng.choice([0.25, 0.5], count),
        has_sample=rng.random(count) < 0.5,
        sample_quality=rng.random(count),
        turnaround_ms=rng.integers(1, 300, count),
        required_turnaround_ms=np.repeat(rng.choice([0, 100], sizes.shape[0]), sizes),
        hard_limit_turnaround_ms=np.repeat(rng.choice([0, 200], sizes.shape[0]), sizes),
        certified_matches=rng.integers(0, 2, count),
        tier=rng.integers(0, 4, count),
        submitted_at_ms=opens + rng.integers(-5, 60, count),
        window_opens_ms=opens,
        window_closes_ms=opens + 50,
        eligible=rng.random(count) > 0.05,
    )
    assert not isinstance(batch, Rejected), batch
    for with_ranks in (True, False):
        results = [
            score_bids(batch, PRESETS["balanced"], now_ms=NOW_MS, with_ranks=with_ranks, engine=e)
            for e in ENGINES
        ]
        assert not isinstance(results[0], Rejected)
        assert not isinstance(results[1], Rejected)
        for name in SCORED_COLUMNS:
            got, want = getattr(results[0], name), getattr(results[1], name)
            assert got.tobytes() == want.tobytes(), (name, with_ranks)
        assert int(results[0].is_winner.sum()) == len(
            set(auction_id[results[0].reject_reason == 0].tolist())
        )

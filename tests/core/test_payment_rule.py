"""aex/core/payment_rule.py: the contract price under the first-score and second-score rules.

`ref_contract_price` below is the rule written one auction at a time in plain Python, straight
from the definition (the largest whole price in [bid, budget_max] at which the winner's total
still reaches the best other total, by scanning the prices; the bid price when price cannot
move the score); Hypothesis holds `contract_prices` equal to it on random multi-auction
batches (the scoring reference's strategies, so ties, rejections and single-bid auctions occur
often). On wide budgets (up to the amount limit) the properties are checked directly: the price
is within [bid, budget_max], the winner's total at it reaches the runner-up's, at one minor unit
more it does not (unless the budget caps it), and the first-score rule pays the bid prices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aex.core import limits
from aex.core.payment_rule import FIRST_SCORE, SECOND_SCORE, PaymentRule, contract_prices
from aex.core.reasons import Rejected
from aex.core.scoring import PRESETS, BidBatch, ScoredBids, Weights, score_bids
from tests.core.test_scoring_reference import (
    NOW_MS,
    ONLY_CERTIFICATION,
    Bid,
    batches,
    flatten,
    ref_price_score,
    reference_score,
    scored,
    to_batch,
)

TINY_PRICE_WEIGHT = Weights(1e-6, 0.5, 0.2, 0.1, 0.1, 0.1 - 1e-6)
weights_strategy = st.sampled_from([*PRESETS.values(), ONLY_CERTIFICATION, TINY_PRICE_WEIGHT])

# ---------------------------------------------------------------------------------------------
# The reference: one auction at a time, in plain Python.
# ---------------------------------------------------------------------------------------------


def ref_total(scores: tuple[float, ...], weights: Weights) -> float:
    total = 0.0
    for position, (score, weight) in enumerate(zip(scores, weights.as_tuple(), strict=True)):
        total = score * weight if position == 0 else total + score * weight
    return min(1.0, total)


def ref_total_at(price: int, bid: Bid, scores: tuple[float, ...], weights: Weights) -> float:
    price_score = ref_price_score(price, bid["budget_min_minor"], bid["budget_max_minor"])
    return ref_total((price_score, *scores[1:]), weights)


def ref_contract_price(
    bids: list[Bid], reference: list[Bid], winner: int, weights: Weights, rule: PaymentRule
) -> int:
    bid = bids[winner]
    if rule is FIRST_SCORE:
        return int(bid["price_minor"])
    others = [
        reference[row]["total"]
        for row in range(len(bids))
        if row != winner and bids[row]["auction_id"] == bid["auction_id"]
    ]
    runner_up = max(others, default=0.0)
    low, high = bid["budget_min_minor"], bid["budget_max_minor"]
    if weights.price == 0.0 or low == high:
        return int(bid["price_minor"])
    scores = reference[winner]["scores"]
    for price in range(high, bid["price_minor"], -1):  # the largest price that still reaches
        if ref_total_at(price, bid, scores, weights) >= runner_up:
            return price
    return int(bid["price_minor"])


def priced(bids: list[Bid], result: ScoredBids, weights: Weights, rule: PaymentRule) -> Any:
    batch = to_batch(bids)
    return contract_prices(
        batch.auction_id,
        result,
        weights,
        rule,
        price_minor=batch.price_minor,
        budget_min_minor=batch.budget_min_minor,
        budget_max_minor=batch.budget_max_minor,
    )


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(batches(), weights_strategy, st.sampled_from(list(PaymentRule)))
def test_contract_prices_equal_the_reference_auction_by_auction(
    auctions: list[list[Bid]], weights: Weights, rule: PaymentRule
) -> None:
    bids = flatten(auctions)
    result = scored(bids, weights)
    reference = reference_score(bids, weights)
    winners = np.flatnonzero(result.is_winner)
    prices = priced(bids, result, weights, rule)
    assert prices.dtype == np.int64
    assert prices.shape == winners.shape
    expected = [ref_contract_price(bids, reference, int(w), weights, rule) for w in winners]
    assert prices.tolist() == expected
    for row, price in zip(winners.tolist(), prices.tolist(), strict=True):
        assert bids[row]["price_minor"] <= price <= bids[row]["budget_max_minor"]
        if rule is FIRST_SCORE:
            assert price == bids[row]["price_minor"]


@st.composite
def wide_auctions(draw: st.DrawFn) -> tuple[BidBatch, Weights]:
    # One auction on a budget anywhere up to the amount limit, every bid within it.
    high = draw(st.integers(1, limits.amount_minor_max))
    low = draw(st.one_of(st.just(high), st.just(0), st.integers(0, high)))
    count = draw(st.integers(1, 6))
    prices = draw(st.lists(st.integers(1, high), min_size=count, max_size=count))
    unit = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))  # ties, often
    columns = {
        name: draw(st.lists(unit, min_size=count, max_size=count))
        for name in ("trust", "confidence", "sample_quality")
    }
    weights = draw(st.one_of(weights_strategy, _random_weights()))
    batch = BidBatch.single_auction(
        auction_id=7,
        budget_min_minor=low,
        budget_max_minor=high,
        required_turnaround_ms=0,
        hard_limit_turnaround_ms=0,
        window_opens_ms=0,
        window_closes_ms=10,
        bid_id=np.arange(count, dtype=np.int64),
        provider_id=np.arange(count, dtype=np.int64),
        price_minor=np.array(prices, dtype=np.int64),
        currency_matches=np.ones(count, dtype=np.bool_),
        has_sample=np.array(draw(st.lists(st.booleans(), min_size=count, max_size=count))),
        turnaround_ms=np.full(count, 10, dtype=np.int64),
        certified_matches=np.array(
            draw(st.lists(st.integers(0, 1), min_size=count, max_size=count))
        ),
        tier=np.array(draw(st.lists(st.integers(0, 3), min_size=count, max_size=count)), np.int8),
        submitted_at_ms=np.zeros(count, dtype=np.int64),
        eligible=np.ones(count, dtype=np.bool_),
        **{name: np.array(values) for name, values in columns.items()},
    )
    assert not isinstance(batch, Rejected), batch
    return batch, weights


@st.composite
def _random_weights(draw: st.DrawFn) -> Weights:
    raw = draw(st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6).filter(lambda r: sum(r) > 0))
    total = sum(raw)
    shares = [value / total for value in raw]
    shares[-1] = 1.0 - sum(shares[:-1])
    return Weights(*(max(0.0, share) for share in shares))


@settings(max_examples=300, deadline=None)
@given(wide_auctions())
def test_second_score_pays_the_runner_ups_score_floored_within_bid_and_budget(
    auction: tuple[BidBatch, Weights],
) -> None:
    batch, weights = auction
    result = score_bids(batch, weights, now_ms=NOW_MS)
    assert not isinstance(result, Rejected), result
    (winner,) = np.flatnonzero(result.is_winner).tolist()
    first = contract_prices(
        batch.auction_id,
        result,
        weights,
        FIRST_SCORE,
        price_minor=batch.price_minor,
        budget_min_minor=batch.budget_min_minor,
        budget_max_minor=batch.budget_max_minor,
    )
    assert first.tolist() == [int(batch.price_minor[winner])]
    (price,) = contract_prices(
        batch.auction_id,
        result,
        weights,
        SECOND_SCORE,
        price_minor=batch.price_minor,
        budget_min_minor=batch.budget_min_minor,
        budget_max_minor=batch.budget_max_minor,
    ).tolist()
    bid_price, high = int(batch.price_minor[winner]), int(batch.budget_max_minor[winner])
    assert bid_price <= price <= high
    low = int(batch.budget_min_minor[winner])
    others = [float(t) for row, t in enumerate(result.total) if row != winner]
    runner_up = max(others, default=0.0)
    scores = tuple(
        float(column[winner])
        for column in (
            result.price_score,
            result.trust_score,
            result.confidence_score,
            result.sample_score,
            result.sla_score,
            result.certification_score,
        )
    )
    bid = {"budget_min_minor": low, "budget_max_minor": high}
    if weights.price == 0.0 or low == high:
        assert price == bid_price  # price does not move the score: the bid price
        return
    # at the price paid the winner still reaches the runner-up (exactly, in the exchange's
    # float arithmetic); one minor unit more and it would not, unless the budget caps it
    assert ref_total_at(price, bid, scores, weights) >= runner_up
    if price < high:
        assert ref_total_at(price + 1, bid, scores, weights) < runner_up
    if not others:
        assert price == high  # no runner-up: the price at which the price component is 0


def test_a_worked_example() -> None:
    # Budget 0..256, half the weight on price, half on trust (binary fractions: exact floats).
    # A: trust 1 at 128 (price score 0.5, total 0.75); B: trust 0.5 at 64 (0.75, total 0.625).
    # A wins and is paid where 0.5 × (256 − p) / 256 + 0.5 = 0.625: p = 192.
    weights = Weights(0.5, 0.5, 0.0, 0.0, 0.0, 0.0)
    batch = _two_bids(prices=(128, 64), trust=(1.0, 0.5))
    result = score_bids(batch, weights, now_ms=NOW_MS)
    assert not isinstance(result, Rejected)
    assert result.is_winner.tolist() == [True, False]
    assert result.total.tolist() == [0.75, 0.625]
    assert _second(batch, result, weights) == 192
    # B of trust 0.25 at 255 (total 0.125 + 1/512): the equal-score price is beyond the
    # budget, so A is paid the budget max.
    batch = _two_bids(prices=(128, 255), trust=(1.0, 0.25))
    result = score_bids(batch, weights, now_ms=NOW_MS)
    assert not isinstance(result, Rejected)
    assert _second(batch, result, weights) == 256


def test_the_price_is_floored_to_the_minor_unit() -> None:
    # B: trust 0.5 + 1/1024 at 64, total 0.625 + 1/2048; the equal-score price is 191.75:
    # floored to 191 (at 192 A would fall below B).
    weights = Weights(0.5, 0.5, 0.0, 0.0, 0.0, 0.0)
    batch = _two_bids(prices=(128, 64), trust=(1.0, 0.5 + 1 / 1024))
    result = score_bids(batch, weights, now_ms=NOW_MS)
    assert not isinstance(result, Rejected)
    assert result.is_winner.tolist() == [True, False]
    assert _second(batch, result, weights) == 191


def test_a_flat_total_is_settled_exactly_not_by_the_closed_form() -> None:
    # A price weight of 1e-6 over a budget of 10^14 moves the total by 1e-20 per minor unit,
    # far below float64's resolution near 1: the total is flat over ~10^4 prices, and the
    # closed form's guess is not the largest price that still reaches the runner-up. The
    # bisection finds it: reaching at the price, not at one unit more.
    weights = Weights(1e-6, 1 - 1e-6, 0.0, 0.0, 0.0, 0.0)
    high = limits.amount_minor_max
    batch = BidBatch.single_auction(
        auction_id=1,
        budget_min_minor=0,
        budget_max_minor=high,
        required_turnaround_ms=0,
        hard_limit_turnaround_ms=0,
        window_opens_ms=0,
        window_closes_ms=10,
        bid_id=np.arange(2, dtype=np.int64),
        provider_id=np.arange(2, dtype=np.int64),
        price_minor=np.array([1, high // 2], dtype=np.int64),
        currency_matches=np.ones(2, dtype=np.bool_),
        trust=np.full(2, 0.7),
        confidence=np.zeros(2),
        has_sample=np.zeros(2, dtype=np.bool_),
        sample_quality=np.zeros(2),
        turnaround_ms=np.full(2, 10, dtype=np.int64),
        certified_matches=np.zeros(2, dtype=np.int64),
        tier=np.zeros(2, dtype=np.int8),
        submitted_at_ms=np.zeros(2, dtype=np.int64),
        eligible=np.ones(2, dtype=np.bool_),
    )
    assert not isinstance(batch, Rejected), batch
    result = score_bids(batch, weights, now_ms=NOW_MS)
    assert not isinstance(result, Rejected)
    price = _second(batch, result, weights)
    runner_up = float(result.total[1])
    bid = {"budget_min_minor": 0, "budget_max_minor": high}
    scores = (0.0, 0.7, 0.0, 0.5, 1.0, 0.0)
    assert ref_total_at(price, bid, scores, weights) >= runner_up
    assert ref_total_at(price + 1, bid, scores, weights) < runner_up
    assert abs(price - high // 2) < 10**6  # within float resolution of the real answer


def test_a_lone_bid_is_paid_the_budget_max() -> None:
    weights = PRESETS["balanced"]
    batch = _two_bids(prices=(128, 64), trust=(1.0, 0.5), eligible=(True, False))
    result = score_bids(batch, weights, now_ms=NOW_MS)
    assert not isinstance(result, Rejected)
    assert result.is_winner.tolist() == [True, False]  # B is rejected (ineligible)
    assert _second(batch, result, weights) == 256


@pytest.mark.parametrize("weights", [ONLY_CERTIFICATION, PRESETS["balanced"]])
def test_a_budget_of_one_price_or_no_price_weight_pays_the_bid(weights: Weights) -> None:
    batch = _two_bids(prices=(150, 160), trust=(1.0, 0.5), low=256 if weights.price else 0)
    result = score_bids(batch, weights, now_ms=NOW_MS)
    assert not isinstance(result, Rejected)
    assert result.is_winner.tolist() == [True, False]
    assert _second(batch, result, weights) == 150


def _two_bids(
    prices: tuple[int, int],
    trust: tuple[float, float],
    low: int = 0,
    eligible: tuple[bool, bool] = (True, True),
) -> BidBatch:
    batch = BidBatch.single_auction(
        auction_id=1,
        budget_min_minor=low,
        budget_max_minor=256,
        required_turnaround_ms=0,
        hard_limit_turnaround_ms=0,
        window_opens_ms=0,
        window_closes_ms=10,
        bid_id=np.arange(2, dtype=np.int64),
        provider_id=np.arange(2, dtype=np.int64),
        price_minor=np.array(prices, dtype=np.int64),
        currency_matches=np.ones(2, dtype=np.bool_),
        trust=np.array(trust),
        confidence=np.zeros(2),
        has_sample=np.zeros(2, dtype=np.bool_),
        sample_quality=np.zeros(2),
        turnaround_ms=np.full(2, 10, dtype=np.int64),
        certified_matches=np.zeros(2, dtype=np.int64),
        tier=np.zeros(2, dtype=np.int8),
        submitted_at_ms=np.zeros(2, dtype=np.int64),
        eligible=np.array(eligible, dtype=np.bool_),
    )
    assert not isinstance(batch, Rejected), batch
    return batch


def _second(batch: BidBatch, result: ScoredBids, weights: Weights) -> int:
    (price,) = contract_prices(
        batch.auction_id,
        result,
        weights,
        SECOND_SCORE,
        price_minor=batch.price_minor,
        budget_min_minor=batch.budget_min_minor,
        budget_max_minor=batch.budget_max_minor,
    ).tolist()
    return int(price)

# Rule: what the winner of an auction is paid (the contract price) is decided here and only here.
#
# Theory of operation. Scoring (aex/core/scoring.py) decides who wins; the payment rule decides
# at what price. Two rules, an exchange setting (aex/core/rules.py `ExchangeRules.payment_rule`):
#
#   FIRST_SCORE (the spec, the default): the winner is paid its own bid price.
#   SECOND_SCORE (Che 1993, "Design competition through multidimensional auctions"): the winner
#     is paid the highest price at which its total score would still reach the runner-up's,
#     i.e. it keeps its quality but has its price raised until it just ties the best other bid.
#
# With the winner's total T(p) = min(1, w_price × price_score(p) + Σ w_k × component_k) as a
# function of its price p (the other components fixed) and R the reference total (the best total
# of the other bids of the auction; a rejected bid's total is 0, and with no other bid R is 0),
#
#     contract price = max{ p integer in [bid price, budget_max] : T(p) >= R }
#
# Since price_score(p) = clip((budget_max − p) / (budget_max − budget_min), 0, 1), the real
# solution of T(p) = R is p = budget_max − span × (R − Q) / w_price (Q the non-price part of
# the total); the contract price is that value floored to the minor unit, so that the winner's
# score at the price paid is still >= R, and clipped to [bid price, budget_max]. With no
# runner-up (R = 0) it is budget_max, where the price component is 0. When price cannot move
# the score (w_price == 0, or a budget of one price, span 0) there is no price that equalises
# the scores, and the winner is paid its bid price.
#
# Exact rounding: T(p) is evaluated with the very float64 formula the exchange scores with
# (scoring.weighted_totals over price_score_column), so "T(p) >= R" is decided exactly as the
# exchange would decide it, and the result is the largest such integer p, not an estimate: the
# closed form gives a candidate, which is checked (T(p) >= R and T(p + 1) < R); the rare rows
# where float rounding moves the answer (a tiny price weight over a wide budget makes T flat
# over many prices) are settled by bisection on [bid price, budget_max], where T is
# non-increasing in p. Integer minor units only; no clock, I/O or randomness.
from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Final

import numpy as np
import numpy.typing as npt

from aex.core.scoring import (
    Components,
    ScoredBids,
    Weights,
    price_score_column,
    weighted_totals,
)

__all__ = [
    "FIRST_SCORE",
    "SECOND_SCORE",
    "PaymentRule",
    "contract_prices",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


class PaymentRule(Enum):
    """What the winner is paid: its bid price (first score) or the runner-up's score's price."""

    FIRST_SCORE = "first_score"
    SECOND_SCORE = "second_score"


FIRST_SCORE: Final = PaymentRule.FIRST_SCORE
SECOND_SCORE: Final = PaymentRule.SECOND_SCORE


def contract_prices(
    auction_id: I64,
    scored: ScoredBids,
    weights: Weights,
    rule: PaymentRule,
    *,
    price_minor: I64,
    budget_min_minor: I64,
    budget_max_minor: I64,
) -> I64:
    """The contract price of every auction's winner, in the order of np.flatnonzero(is_winner).

    Args:
        auction_id: non-decreasing; the bids of one auction are contiguous (as scored).
        scored: the batch scored by score_bids or rank_auctions with these `weights`.
        weights: the weights the totals were computed with.
        rule: FIRST_SCORE returns the winners' bid prices; SECOND_SCORE the largest price in
            [bid price, budget_max] at which the winner's total is still >= the best other
            total of its auction (0 when there is none); see the module comment.
        price_minor, budget_min_minor, budget_max_minor: the batch's columns.

    Returns:
        int64, one price per winner, each in [its bid price, its budget_max_minor].
    """
    count = len(scored)
    assert auction_id.shape == (count,)
    assert price_minor.shape == budget_min_minor.shape == budget_max_minor.shape == (count,)
    winners = np.flatnonzero(scored.is_winner)
    bid_minor: I64 = price_minor[winners].astype(np.int64)
    if rule is PaymentRule.FIRST_SCORE:
        return bid_minor
    assert rule is PaymentRule.SECOND_SCORE, rule
    assert not np.any(scored.reject_reason[winners]), "a winner is an accepted bid"
    reference = _runner_up_totals(auction_id, scored.total, scored.is_winner, winners)
    low_minor = budget_min_minor[winners]
    high_minor = budget_max_minor[winners]
    assert not np.any(bid_minor > high_minor), "a winner's price is within its budget"
    components = _components(*(score[winners] for score in _scores(scored)))
    price_moves_score = (weights.price > 0.0) & (high_minor > low_minor)
    guess = _closed_form_guess(components, weights, reference, bid_minor, low_minor, high_minor)
    prices = np.where(price_moves_score, guess, bid_minor)

    def reaches(price: I64, rows: npt.NDArray[np.intp]) -> Bools:
        # T(price) >= R for the winners at `rows`, with the exchange's own total formula.
        at_price = _components(
            price_score_column(price, low_minor[rows], high_minor[rows]),
            *(score[rows] for score in components.scores()[1:]),
        )
        reached: Bools = weighted_totals(at_price, weights) >= reference[rows]
        return reached

    rows = np.flatnonzero(price_moves_score)
    candidate = prices[rows]
    good_here = reaches(candidate, rows) | (candidate == bid_minor[rows])
    above = np.minimum(candidate + 1, high_minor[rows])
    stops_here = (candidate == high_minor[rows]) | ~reaches(above, rows)
    wrong = ~(good_here & stops_here)
    if wrong.any():
        fix = rows[wrong]
        prices[fix] = _bisect(
            fix, bid_minor[fix], high_minor[fix], candidate[wrong], good_here[wrong], reaches
        )
    assert np.all((bid_minor <= prices) & (prices <= high_minor))
    return prices


def _components(*scores: F64) -> Components:
    # The six scores of accepted bids (the winners) as Components.
    price, trust, confidence, sample, sla, certification = scores
    return Components(
        price_score=price,
        trust_score=trust,
        confidence_score=confidence,
        sample_score=sample,
        sla_score=sla,
        certification_score=certification,
        reject_reason=np.zeros(price.shape[0], dtype=np.uint8),
    )


def _scores(scored: ScoredBids) -> tuple[F64, F64, F64, F64, F64, F64]:
    return (
        scored.price_score,
        scored.trust_score,
        scored.confidence_score,
        scored.sample_score,
        scored.sla_score,
        scored.certification_score,
    )


def _runner_up_totals(auction_id: I64, total: F64, is_winner: Bools, winners: I64) -> F64:
    # Per winner: the best total among the other bids of its auction; a rejected bid's total is
    # 0, and an auction with no other bid has reference 0 (the winner's own row is left out).
    if winners.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    starts = np.flatnonzero(np.concatenate(([True], auction_id[1:] != auction_id[:-1])))
    others = np.where(is_winner, 0.0, total)  # totals are >= 0, so 0 is "no other bid"
    best_other = np.maximum.reduceat(others, starts)
    auction_of_winner = np.searchsorted(starts, winners, side="right") - 1
    reference: F64 = best_other[auction_of_winner]
    return reference


def _closed_form_guess(
    components: Components,
    weights: Weights,
    reference: F64,
    bid_minor: I64,
    low_minor: I64,
    high_minor: I64,
) -> I64:
    # floor(budget_max − span × (R − Q) / w_price), clipped to [bid, budget_max], computed in
    # float64 (exact to well under a minor unit for ordinary weights; checked by the caller).
    # Rows where price cannot move the score get some value in range (the caller ignores it).
    others = zip(components.scores()[1:], weights.as_tuple()[1:], strict=True)
    non_price = np.zeros(bid_minor.shape[0], dtype=np.float64)
    for score, weight in others:  # bounded: the five non-price components
        non_price += score * weight
    span = (high_minor - low_minor).astype(np.float64)
    price_weight = weights.price if weights.price > 0.0 else 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        equal_score_price = high_minor - span * (reference - non_price) / price_weight
    clipped = np.clip(np.nan_to_num(equal_score_price), bid_minor, high_minor)
    guess: I64 = np.floor(clipped).astype(np.int64)
    return np.clip(guess, bid_minor, high_minor)


def _bisect(
    rows: npt.NDArray[np.intp],
    bid_minor: I64,
    high_minor: I64,
    candidate: I64,
    candidate_reaches: Bools,
    reaches: Callable[[I64, npt.NDArray[np.intp]], Bools],
) -> I64:
    # The largest p in [bid, high] with T(p) >= R, T non-increasing in p; p = bid by definition
    # when even the bid price does not reach (float rounding of a tie). The invariant: the
    # answer lies in [low, high_open − 1], T(low) >= R or low == bid.
    low = np.where(candidate_reaches, candidate, bid_minor)
    high_open = np.where(candidate_reaches, high_minor + 1, candidate)
    for _ in range(64):  # bounded: the range halves each pass (amounts < 2^53)
        open_rows = high_open - low > 1
        if not open_rows.any():
            break
        mid = low + (high_open - low) // 2
        reached = reaches(mid[open_rows], rows[open_rows])
        where = np.flatnonzero(open_rows)
        low[where[reached]] = mid[where[reached]]
        high_open[where[~reached]] = mid[where[~reached]]
    assert not np.any(high_open - low > 1)
    result: I64 = low
    return result

"""The pure market core: money, fees, bid scoring, reputation and tiers, the ledger, certificates.

Nothing here performs I/O, reads a clock, draws randomness or holds global state: time, seeds,
keys, weights and limits are arguments (tests/core/test_purity.py enforces it).
"""

from aex.core.fees import PLATFORM_FEE_BPS, split_fee, split_fee_columns
from aex.core.money import Money, div_floor, div_round_half_even, format_amount, parse_money
from aex.core.reasons import (
    BidBatchRejectReason,
    BidRejectReason,
    Reason,
    Rejected,
    WeightsRejectReason,
)
from aex.core.scoring import (
    PRESETS,
    BidBatch,
    Components,
    ScoredBids,
    Weights,
    certification_score_column,
    component_scores,
    make_weights,
    price_score_column,
    rank_auctions,
    sample_score_column,
    score_bids,
    sla_score_column,
    weights_from_json,
    weights_to_json,
)

__all__ = [
    "PLATFORM_FEE_BPS",
    "PRESETS",
    "BidBatch",
    "BidBatchRejectReason",
    "BidRejectReason",
    "Components",
    "Money",
    "Reason",
    "Rejected",
    "ScoredBids",
    "Weights",
    "WeightsRejectReason",
    "certification_score_column",
    "component_scores",
    "div_floor",
    "div_round_half_even",
    "format_amount",
    "make_weights",
    "parse_money",
    "price_score_column",
    "rank_auctions",
    "sample_score_column",
    "score_bids",
    "sla_score_column",
    "split_fee",
    "split_fee_columns",
    "weights_from_json",
    "weights_to_json",
]

"""The pure market core: money, fees, bid scoring, reputation and tiers, the ledger, certificates.

Nothing here performs I/O, reads a clock, draws randomness or holds global state: time, seeds,
keys, weights and limits are arguments (tests/core/test_purity.py enforces it).
"""

from aex.core.fees import PLATFORM_FEE_BPS, split_fee, split_fee_columns
from aex.core.money import Money, div_floor, div_round_half_even, format_amount, parse_money
from aex.core.reasons import Reason, Rejected
from aex.core.reputation import (
    DEFAULT_REPUTATION_PARAMS,
    TIER_THRESHOLDS,
    OutcomeKind,
    Outcomes,
    Reputation,
    ReputationParams,
    ReputationScores,
    Tier,
    TierThreshold,
    beta_posterior_mean,
    reputation_of,
    reputation_scores,
    tier_for,
    tiers_for,
)

__all__ = [
    "DEFAULT_REPUTATION_PARAMS",
    "PLATFORM_FEE_BPS",
    "TIER_THRESHOLDS",
    "Money",
    "OutcomeKind",
    "Outcomes",
    "Reason",
    "Rejected",
    "Reputation",
    "ReputationParams",
    "ReputationScores",
    "Tier",
    "TierThreshold",
    "beta_posterior_mean",
    "div_floor",
    "div_round_half_even",
    "format_amount",
    "parse_money",
    "reputation_of",
    "reputation_scores",
    "split_fee",
    "split_fee_columns",
    "tier_for",
    "tiers_for",
]

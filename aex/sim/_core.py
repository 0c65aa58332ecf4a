"""The one place where the simulator binds to the pure core (aex/core).

Every scoring, payment, reputation, tier, calibration, outcome and fee formula the simulator
uses comes through here, from aex/core, and they are the functions the live exchange calls
(serve/market/usecases.py, serve/market/evaluation.py): the engine never re-implements one.
"""

from __future__ import annotations

from aex.core.calibration import ConfidenceCalibration, calibrated_confidence
from aex.core.certs import Authorization, CertificateType, Claim, counts_toward_certification
from aex.core.fees import split_fee_columns
from aex.core.lifecycle import WorkState
from aex.core.market import check_bid_admission, evidence_mask, outcome_kinds
from aex.core.payment_rule import PaymentRule, contract_prices
from aex.core.reputation import (
    OutcomeKind,
    Outcomes,
    ReputationScores,
    ReputationTally,
    beta_posterior_mean,
    reputation_from_tally,
    reputation_scores,
    tally_outcomes,
    tiers_for,
)
from aex.core.rules import SAMPLE_PROVIDED_QUALITY, ExchangeRules, rules_from_json, rules_to_json
from aex.core.scoring import (
    PRESETS,
    BidBatch,
    Components,
    ScoredBids,
    Weights,
    make_weights,
    price_score_column,
    rank_auctions,
    score_bids,
    weights_from_json,
    weights_to_json,
)

__all__ = [
    "PRESETS",
    "SAMPLE_PROVIDED_QUALITY",
    "SELF_ASSERTED_COUNTS",
    "BidBatch",
    "Components",
    "ConfidenceCalibration",
    "ExchangeRules",
    "OutcomeKind",
    "Outcomes",
    "PaymentRule",
    "ReputationScores",
    "ReputationTally",
    "ScoredBids",
    "Weights",
    "beta_posterior_mean",
    "calibrated_confidence",
    "contract_prices",
    "evidence_mask",
    "make_weights",
    "outcome_kinds",
    "price_score_column",
    "rank_auctions",
    "reputation_from_tally",
    "reputation_scores",
    "rules_from_json",
    "rules_to_json",
    "score_bids",
    "self_dealing_admitted",
    "split_fee_columns",
    "tally_outcomes",
    "tiers_for",
    "weights_from_json",
    "weights_to_json",
]

# Whether a self-asserted capability certificate (a certificate farmer's) counts toward the
# certification bonus and score: the exchange's one rule, asked once.
SELF_ASSERTED_COUNTS: bool = counts_toward_certification(
    CertificateType.CAPABILITY,
    Claim("sim", "farmed", "", Authorization.SELF_ASSERTED),
)


def self_dealing_admitted(*, same_tenant: bool) -> bool:
    """Whether the exchange admits a wash-trading provider's bid on its owner's work: the core's
    bid admission with the provider owned (or not) by the work's consumer tenant."""
    refused = check_bid_admission(
        work_state=WorkState.OPEN,
        now_ms=0,
        window_closes_at_ms=1,
        provider_active=True,
        provider_subscribed=True,
        provider_has_bid=False,
        bids_on_work=0,
        provider_owned_by_consumer=same_tenant,
    )
    return refused is None

"""The one place where the simulator binds to the pure core (aex/core).

Every scoring, reputation, tier and fee formula the simulator uses comes through here, from
aex/core: the engine never re-implements one.
"""

from __future__ import annotations

from aex.core.fees import split_fee_columns
from aex.core.reputation import beta_posterior_mean, tiers_for
from aex.core.scoring import (
    PRESETS,
    Components,
    ScoredBids,
    Weights,
    make_weights,
    price_score_column,
    rank_auctions,
    weights_from_json,
    weights_to_json,
)

__all__ = [
    "PRESETS",
    "Components",
    "ScoredBids",
    "Weights",
    "beta_posterior_mean",
    "make_weights",
    "price_score_column",
    "rank_auctions",
    "split_fee_columns",
    "tiers_for",
    "weights_from_json",
    "weights_to_json",
]

# mypy: ignore-errors
"""STAND-IN, to be deleted: a minimal copy of the CONTRACTS.md core API used until
aex/core/scoring.py and aex/core/reputation.py land on main. Nothing outside aex/sim/_core.py
imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Weights:
    price: float
    trust: float
    confidence: float
    sample_work: float
    sla: float
    certification: float


PRESETS: Mapping[str, Weights] = {
    "balanced": Weights(0.25, 0.25, 0.15, 0.10, 0.10, 0.15),
    "lowest_price": Weights(0.70, 0.10, 0.05, 0.05, 0.05, 0.05),
    "best_quality": Weights(0.10, 0.35, 0.15, 0.15, 0.10, 0.15),
}
_FIELDS = ("price", "trust", "confidence", "sample_work", "sla", "certification")


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    field: str
    detail: str = ""


def make_weights(values: Mapping[str, object]) -> Weights | Rejected:
    out = []
    for name in _FIELDS:
        value = values.get(name, 0.0)
        if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
            return Rejected("weight_invalid", name)
        out.append(float(value))
    if abs(sum(out) - 1.0) > 1e-9:
        return Rejected("weights_sum_not_one", "weights")
    return Weights(*out)


def weights_to_json(w: Weights, *, name: str | None = None) -> dict[str, Any]:
    return {"name": name or "custom", "weights": {f: getattr(w, f) for f in _FIELDS}}


def weights_from_json(obj: Mapping[str, Any]) -> Weights | Rejected:
    return make_weights(obj["weights"])


@dataclass(frozen=True, slots=True)
class Components:
    price_score: np.ndarray
    trust_score: np.ndarray
    confidence_score: np.ndarray
    sample_score: np.ndarray
    sla_score: np.ndarray
    certification_score: np.ndarray
    reject_reason: np.ndarray


@dataclass(frozen=True, slots=True)
class ScoredBids:
    price_score: np.ndarray
    trust_score: np.ndarray
    confidence_score: np.ndarray
    sample_score: np.ndarray
    sla_score: np.ndarray
    certification_score: np.ndarray
    reject_reason: np.ndarray
    total: np.ndarray
    rank: np.ndarray
    is_winner: np.ndarray


def price_score_column(price_minor, budget_min_minor, budget_max_minor):  # type: ignore[no-untyped-def]
    span = np.maximum(budget_max_minor - budget_min_minor, 1).astype(np.float64)
    return np.clip((budget_max_minor - price_minor) / span, 0.0, 1.0)


def rank_auctions(  # type: ignore[no-untyped-def]
    auction_id, components, weights, *, price_minor, submitted_at_ms, bid_id, with_ranks=True
):
    c = components
    total = (
        weights.price * c.price_score
        + weights.trust * c.trust_score
        + weights.confidence * c.confidence_score
        + weights.sample_work * c.sample_score
        + weights.sla * c.sla_score
        + weights.certification * c.certification_score
    )
    accepted = c.reject_reason == 0
    total = np.where(accepted, total, 0.0)
    n = auction_id.size
    rank = np.zeros(n, np.int32)
    is_winner = np.zeros(n, bool)
    if n and not with_ranks:
        is_winner = _winners_by_segments(  # type: ignore[no-untyped-call]
            auction_id, total, accepted, price_minor, submitted_at_ms, bid_id
        )
    elif n:
        order = np.lexsort((bid_id, submitted_at_ms, price_minor, -total, ~accepted, auction_id))
        sorted_auction = auction_id[order]
        first = np.ones(n, bool)
        first[1:] = sorted_auction[1:] != sorted_auction[:-1]
        is_winner[order[first & accepted[order]]] = True
        if with_ranks:
            starts = np.flatnonzero(first)
            position = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
            rank[order] = np.where(accepted[order], position + 1, 0)
    return ScoredBids(
        c.price_score,
        c.trust_score,
        c.confidence_score,
        c.sample_score,
        c.sla_score,
        c.certification_score,
        c.reject_reason,
        total,
        rank,
        is_winner,
    )


def _winners_by_segments(auction_id, total, accepted, price, submitted, bid_id):  # type: ignore[no-untyped-def]
    n = auction_id.size
    first = np.ones(n, bool)
    first[1:] = auction_id[1:] != auction_id[:-1]
    starts = np.flatnonzero(first)
    segment = np.cumsum(first) - 1
    masked = np.where(accepted, total, -np.inf)
    candidate = accepted & (masked == np.maximum.reduceat(masked, starts)[segment])
    for key in (price, submitted, bid_id):
        keyed = np.where(candidate, key, np.iinfo(np.int64).max)
        candidate &= keyed == np.minimum.reduceat(keyed, starts)[segment]
    return candidate

"""The one call from the window closer into bid scoring: `evaluate(terms, rows, now_ms=...)`.

The scoring formulas belong to aex/core/scoring.py (CONTRACTS.md, section scoring). Until that
module lands on main, `_interim_scores` below stands in for `score_bids` with the spec's
balanced weights (price 0.25, trust 0.25, confidence 0.15, sample work 0.10, SLA 0.10,
certification 0.15) and the documented tie-break (higher total, lower price, earlier bid,
lower bid id). Everything else (the stored evaluation's shape, the award) depends only on the
`ScoredRow` records this module returns, so the switch is local to this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BALANCED_WEIGHTS: dict[str, float] = {
    "price": 0.25,
    "trust": 0.25,
    "confidence": 0.15,
    "sample_work": 0.10,
    "sla": 0.10,
    "certification": 0.15,
}
assert abs(sum(BALANCED_WEIGHTS.values()) - 1.0) < 1e-9
NEUTRAL_SAMPLE_SCORE = 0.5


@dataclass(frozen=True, slots=True)
class WorkTerms:
    budget_min_minor: int
    budget_max_minor: int
    required_turnaround_ms: int
    hard_limit_turnaround_ms: int
    window_opens_ms: int
    window_closes_ms: int


@dataclass(frozen=True, slots=True)
class BidRow:
    bid_id: str
    provider_id: str
    price_minor: int
    confidence: float
    has_sample: bool
    turnaround_ms: int
    submitted_at_ms: int
    trust: float
    tier: int
    certified_matches: int
    eligible: bool


@dataclass(frozen=True, slots=True)
class ScoredRow:
    bid_id: str
    provider_id: str
    components: dict[str, float]
    total: float
    rank: int
    reject_reason: str | None
    is_winner: bool

    def to_json(self) -> dict[str, object]:
        return {
            "bid_id": self.bid_id,
            "provider_id": self.provider_id,
            "components": self.components,
            "total": round(self.total, 6),
            "rank": self.rank,
            "reject_reason": self.reject_reason,
            "is_winner": self.is_winner,
        }


def evaluate(terms: WorkTerms, rows: Sequence[BidRow], *, now_ms: int) -> list[ScoredRow]:
    """Every bid scored and ranked; at most one winner (none when no bid is valid)."""
    scored = [_interim_score(terms, row) for row in rows]
    accepted = sorted(
        (s for s in scored if s[2] is None),
        key=lambda s: (-s[1], s[0].price_minor, s[0].submitted_at_ms, s[0].bid_id),
    )
    ranks = {s[0].bid_id: position for position, s in enumerate(accepted, start=1)}
    result = [
        ScoredRow(
            row.bid_id,
            row.provider_id,
            components,
            total if reason is None else 0.0,
            ranks.get(row.bid_id, 0),
            reason,
            ranks.get(row.bid_id) == 1,
        )
        for row, total, reason, components in scored
    ]
    assert sum(r.is_winner for r in result) == (1 if accepted else 0)
    return sorted(result, key=lambda r: (r.rank == 0, r.rank, r.bid_id))


# The interim formula, per bid (replaced by aex.core.scoring.score_bids when it lands).
def _interim_score(
    terms: WorkTerms, row: BidRow
) -> tuple[BidRow, float, str | None, dict[str, float]]:
    span = terms.budget_max_minor - terms.budget_min_minor
    if row.price_minor <= terms.budget_min_minor:
        price_score = 1.0
    else:
        price_score = max(0.0, (terms.budget_max_minor - row.price_minor) / max(span, 1))
    required = terms.required_turnaround_ms
    sla_score = 1.0 if required == 0 else min(1.0, required / row.turnaround_ms)
    components = {
        "price": price_score,
        "trust": row.trust,
        "confidence": row.confidence,
        "sample_work": 1.0 if row.has_sample else NEUTRAL_SAMPLE_SCORE,
        "sla": sla_score,
        "certification": 1.0 if row.certified_matches > 0 else 0.0,
    }
    total = sum(BALANCED_WEIGHTS[name] * value for name, value in components.items())
    reason: str | None = None
    if not row.eligible:
        reason = "provider_ineligible"
    elif row.price_minor > terms.budget_max_minor:
        reason = "price_over_budget"
    elif terms.hard_limit_turnaround_ms and row.turnaround_ms > terms.hard_limit_turnaround_ms:
        reason = "turnaround_over_hard_limit"
    elif not terms.window_opens_ms <= row.submitted_at_ms < terms.window_closes_ms:
        reason = "outside_bid_window"
    return row, total, reason, {k: round(v, 6) for k, v in components.items()}

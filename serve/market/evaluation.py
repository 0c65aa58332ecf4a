"""The one call from the window closer into bid scoring: `evaluate(terms, rows, now_ms=...)`.

It builds a one-auction `aex.core.scoring.BidBatch` from the stored bids (docs/market.md, "From
a bid to a scoring row"), calls `score_bids` with the exchange's weights (the spec's balanced
preset unless `aex serve --weights FILE` loaded others), and returns one `ScoredRow` per bid:
components, total, rank (1 = best, 0 = rejected) and the reject reason; the winner's row also
carries its contract price under the exchange's payment rule (aex/core/payment_rule.py
`contract_prices`: the bid price under first score, the spec; the runner-up's score's price
under second score), the price the award holds and the contract is made at.
Bids are numbered by their position (bid_id column) and providers by first appearance
(provider_id column); the strings come back through the same positions. A provided sample
scores SAMPLE_PROVIDED_QUALITY (the exchange does not grade samples yet); no sample scores the
core's neutral value.

The scoring runs in the core's compiled kernel (aex/core/_scoring_kernel.py), the same one the
simulator uses. At server startup (serve/app.py) `warm_up_in_background()` imports numba and
compiles the kernel, or loads it from numba's cache, on a thread: seconds of CPU cold (a fresh
checkout), under a second from the cache, neither in a request, and /health answers meanwhile.
A window closed during those first seconds does not wait for it: until the warm-up has
finished, `evaluate` runs the core's numpy reference engine (`score_bids(engine="numpy")`,
equal to the kernel column for column, tests/core/test_scoring_kernel.py), so a window that
falls due at startup (a restart during an open window) closes at once, however slow the
compile. `kernel_ready()` tells which engine runs; /ready reports it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aex.core import Rejected
from aex.core.calibration import ConfidenceCalibration, calibrated_confidence
from aex.core.payment_rule import FIRST_SCORE, PaymentRule, contract_prices
from aex.core.reasons import BidRejectReason
from aex.core.reputation import DEFAULT_REPUTATION_PARAMS, ReputationParams
from aex.core.rules import SAMPLE_PROVIDED_QUALITY
from aex.core.scoring import PRESETS, BidBatch, Engine, Weights, score_bids

__all__ = [
    "DEFAULT_WEIGHTS",
    "SAMPLE_PROVIDED_QUALITY",
    "BidRow",
    "NamedWeights",
    "ScoredRow",
    "WorkTerms",
    "evaluate",
    "kernel_ready",
    "warm_up",
    "warm_up_in_background",
]

_log = logging.getLogger("aex.serve.evaluation")

# Set once the compiled kernel has scored the warm-up auction in this process; until then
# `evaluate` uses the numpy engine rather than block on the compile.
_KERNEL_READY = threading.Event()


def kernel_ready() -> bool:
    """Whether this process's scoring kernel is compiled (or loaded from numba's cache)."""
    return _KERNEL_READY.is_set()


@dataclass(frozen=True, slots=True)
class NamedWeights:
    """The rules the exchange runs with (aex/core/rules.py), and their name (a preset or a
    file): the scoring weights, the confidence calibration (None: the spec's plain stated
    confidence), the reputation parameters (the spec's formula unless the file says) and the
    payment rule (first score, the winner paid its bid, unless the file says)."""

    name: str
    weights: Weights
    calibration: ConfidenceCalibration | None = None
    reputation: ReputationParams = DEFAULT_REPUTATION_PARAMS
    payment_rule: PaymentRule = FIRST_SCORE


# The spec's default: Price 25% + Trust 25% + Confidence 15% + Sample 10% + SLA 10% + Cert 15%.
DEFAULT_WEIGHTS = NamedWeights("balanced", PRESETS["balanced"])


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
    successes: int = 0  # the provider's successful contracts (confidence calibration)
    contracts: int = 0


@dataclass(frozen=True, slots=True)
class ScoredRow:
    bid_id: str
    provider_id: str
    components: dict[str, float]
    total: float
    rank: int
    reject_reason: str | None
    is_winner: bool
    contract_price_minor: int | None = None  # the winner's only: what the award pays

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


def evaluate(
    terms: WorkTerms,
    rows: Sequence[BidRow],
    *,
    now_ms: int,
    weights: Weights,
    calibration: ConfidenceCalibration | None = None,
    payment_rule: PaymentRule = FIRST_SCORE,
    engine: Engine | None = None,
) -> list[ScoredRow]:
    """Every bid scored and ranked by the core; at most one winner (none when none is valid).

    With a `calibration`, the confidence component is the core's calibrated confidence (the
    stated value shrunk toward the provider's record); without, the stated value (the spec).
    The winner's row carries its contract price under `payment_rule` (the core's
    `contract_prices`); every other row None.
    `engine` None: the compiled kernel once warm, the numpy reference engine until then.
    """
    if engine is None:
        engine = "compiled" if _KERNEL_READY.is_set() else "numpy"
    if not rows:
        return []
    confidence = calibrated_confidence(
        np.array([r.confidence for r in rows], dtype=np.float64),
        np.array([r.successes for r in rows], dtype=np.float64),
        np.array([r.contracts for r in rows], dtype=np.float64),
        calibration,
    )
    providers = {
        provider: n for n, provider in enumerate(dict.fromkeys(r.provider_id for r in rows))
    }
    batch = BidBatch.single_auction(
        auction_id=0,
        budget_min_minor=terms.budget_min_minor,
        budget_max_minor=terms.budget_max_minor,
        required_turnaround_ms=terms.required_turnaround_ms,
        hard_limit_turnaround_ms=terms.hard_limit_turnaround_ms,
        window_opens_ms=terms.window_opens_ms,
        window_closes_ms=terms.window_closes_ms,
        bid_id=np.arange(len(rows), dtype=np.int64),
        provider_id=np.array([providers[r.provider_id] for r in rows], dtype=np.int64),
        price_minor=np.array([r.price_minor for r in rows], dtype=np.int64),
        currency_matches=np.ones(len(rows), dtype=np.bool_),
        trust=np.array([r.trust for r in rows], dtype=np.float64),
        confidence=confidence,
        has_sample=np.array([r.has_sample for r in rows], dtype=np.bool_),
        sample_quality=np.full(len(rows), SAMPLE_PROVIDED_QUALITY, dtype=np.float64),
        turnaround_ms=np.array([r.turnaround_ms for r in rows], dtype=np.int64),
        certified_matches=np.array([r.certified_matches for r in rows], dtype=np.int64),
        tier=np.array([r.tier for r in rows], dtype=np.int8),
        submitted_at_ms=np.array([r.submitted_at_ms for r in rows], dtype=np.int64),
        eligible=np.array([r.eligible for r in rows], dtype=np.bool_),
    )
    assert not isinstance(batch, Rejected), batch
    scored = score_bids(batch, weights, now_ms=now_ms, engine=engine)
    assert not isinstance(scored, Rejected), scored
    prices = contract_prices(
        batch.auction_id,
        scored,
        weights,
        payment_rule,
        price_minor=batch.price_minor,
        budget_min_minor=batch.budget_min_minor,
        budget_max_minor=batch.budget_max_minor,
    )
    price_of = dict(zip(np.flatnonzero(scored.is_winner).tolist(), prices.tolist(), strict=True))
    result = [
        ScoredRow(
            row.bid_id,
            row.provider_id,
            {
                "price": round(float(scored.price_score[i]), 6),
                "trust": round(float(scored.trust_score[i]), 6),
                "confidence": round(float(scored.confidence_score[i]), 6),
                "sample_work": round(float(scored.sample_score[i]), 6),
                "sla": round(float(scored.sla_score[i]), 6),
                "certification": round(float(scored.certification_score[i]), 6),
            },
            float(scored.total[i]),
            int(scored.rank[i]),
            None
            if int(scored.reject_reason[i]) == 0
            else BidRejectReason.from_code(int(scored.reject_reason[i])).value,
            bool(scored.is_winner[i]),
            price_of.get(i),
        )
        for i, row in enumerate(rows)
    ]
    assert sum(r.is_winner for r in result) <= 1
    return sorted(result, key=lambda r: (r.rank == 0, r.rank, r.bid_id))


def warm_up() -> float:
    """Scores one synthetic auction through `evaluate` (compiling or loading the kernel).

    Returns the seconds it took; logged once at startup.
    """
    started = time.perf_counter()
    terms = WorkTerms(100, 200, 10, 20, 0, 10)
    rows = [
        BidRow(
            f"warm-{n}", f"provider-{n % 2}", 150 - n, 0.5, n % 2 == 0, 10, n, 0.5, n % 4, 1, True
        )
        for n in range(3)
    ]
    scored = evaluate(terms, rows, now_ms=10, weights=DEFAULT_WEIGHTS.weights, engine="compiled")
    assert sum(row.is_winner for row in scored) == 1, scored
    _KERNEL_READY.set()
    elapsed_s = time.perf_counter() - started
    _log.info("scoring kernel warm in %.3f s", elapsed_s)
    return elapsed_s


def warm_up_in_background() -> threading.Thread:
    """Starts `warm_up` on a daemon thread (the server's startup hook); returns the thread."""
    thread = threading.Thread(target=warm_up, name="aex-scoring-warm-up", daemon=True)
    thread.start()
    return thread

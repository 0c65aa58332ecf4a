# Rule: every reputation formula (the transaction score, the spec's weighted reputation score)
# and the tier table are decided here and only here.
#
# Theory of operation. The spec ("Why Evidence-Based Reputation", Reputation Calculation):
#
#     35% Transaction Score (from trust-broker)
#     25% Success Rate (successful / total)
#     15% Volume Score (min(1.0, total/500))
#     15% Consistency Score (1.0 - stddev(30-day rates))
#     10% Certification Bonus (active_certs * 0.05, cap 0.10)
#
# Every component is a number in [0, 1] and the five weights sum to 1, so the score is in
# [0, 1]. The certification bonus is itself at most 0.10 = its weight: its component is the
# bonus scaled to [0, 1] (bonus / 0.10), weighted 10%, which is the same as adding the bonus at
# face value. The transaction score is a Bayesian beta posterior mean over value-weighted,
# time-decayed outcomes (docs/reputation.md), so one lucky success does not outrank a long
# record. The tiers are one table, TIER_THRESHOLDS.
#
# One columnar function, `reputation_scores`, computes every provider at once from an
# `Outcomes` record (numpy bincount grouping, no Python loop per outcome or per provider);
# `reputation_of`, the server's one-provider call, is that same function with one provider.
# `ReputationTally` is its running form for a driver that asks again and again as outcomes
# arrive (the simulator, every tick): per-provider counts and evidence masses carried forward
# (exponential decay composes: a mass decayed to t1 and then to t2 is the mass decayed to t2)
# plus the outcomes still inside the 30-day window, so each call costs the new outcomes and
# the window, not the whole history; it equals `reputation_scores` up to float rounding
# (tests/core/test_reputation.py holds the two together).
# Time is the `now_ms` argument; nothing here reads a clock.
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum, IntEnum
from itertools import pairwise
from typing import Any, Final, overload

import numpy as np
import numpy.typing as npt

from aex.core import limits

__all__ = [
    "CERTIFICATION_BONUS_MAX",
    "CERTIFICATION_BONUS_PER_CERTIFICATE",
    "DAY_MS",
    "DEFAULT_REPUTATION_PARAMS",
    "REPUTATION_WEIGHTS",
    "TIER_THRESHOLDS",
    "VOLUME_SATURATION_CONTRACTS",
    "OutcomeKind",
    "Outcomes",
    "Reputation",
    "ReputationParams",
    "ReputationRule",
    "ReputationScores",
    "ReputationTally",
    "Tier",
    "TierThreshold",
    "beta_posterior_mean",
    "reputation_from_tally",
    "reputation_of",
    "reputation_scores",
    "tally_outcomes",
    "tier_for",
    "tiers_for",
]

DAY_MS: Final = 86_400_000

# Spec: "35% Transaction Score, 25% Success Rate, 15% Volume Score, 15% Consistency Score,
# 10% Certification Bonus". Keys are the component names of ReputationScores, in spec order.
REPUTATION_WEIGHTS: Final[dict[str, float]] = {
    "transaction_score": 0.35,
    "success_rate": 0.25,
    "volume_score": 0.15,
    "consistency_score": 0.15,
    "certification_bonus": 0.10,
}
# Summed in this order the float64 weights give exactly 1.0, so a score never exceeds 1.
assert math.fsum(REPUTATION_WEIGHTS.values()) == 1.0
assert sum(REPUTATION_WEIGHTS.values()) == 1.0

# Spec: "Volume Score (min(1.0, total/500))".
VOLUME_SATURATION_CONTRACTS: Final = 500
# Spec: "Certification Bonus (active_certs * 0.05, cap 0.10)".
CERTIFICATION_BONUS_PER_CERTIFICATE: Final = 0.05
CERTIFICATION_BONUS_MAX: Final = 0.10
# The bonus's cap equals its weight: bonus / cap is the [0, 1] component, weighted 10%.
assert REPUTATION_WEIGHTS["certification_bonus"] == CERTIFICATION_BONUS_MAX


class Tier(IntEnum):
    """Provider tiers, ordered: a higher value is a better tier (the bid's `tier` int8 column)."""

    BRONZE = 0
    SILVER = 1
    GOLD = 2
    PLATINUM = 3


@dataclass(frozen=True, slots=True)
class TierThreshold:
    """A tier and the least score and contract count that earn it (both inclusive)."""

    tier: Tier
    score_min: float
    contracts_min: int


# Spec: "PLATINUM: score >= 0.9, contracts >= 200 / GOLD: score >= 0.75, contracts >= 50 /
# SILVER: score >= 0.5, contracts >= 10 / BRONZE: everything else". Best tier first.
TIER_THRESHOLDS: Final[tuple[TierThreshold, ...]] = (
    TierThreshold(Tier.PLATINUM, score_min=0.90, contracts_min=200),
    TierThreshold(Tier.GOLD, score_min=0.75, contracts_min=50),
    TierThreshold(Tier.SILVER, score_min=0.50, contracts_min=10),
)
# The thresholds nest (a better tier asks more of both), so "the best tier whose two thresholds
# are met" is well defined and equals "the last met, walking up from SILVER".
assert all(
    better.tier > worse.tier
    and better.score_min > worse.score_min
    and better.contracts_min > worse.contracts_min
    for better, worse in pairwise(TIER_THRESHOLDS)
)
assert {t.tier for t in TIER_THRESHOLDS} == set(Tier) - {Tier.BRONZE}


class OutcomeKind(IntEnum):
    """How a contract ended, as the provider's evidence (the `kind` uint8 column).

    SUCCESS: delivered on time. FAILURE: not delivered or rejected. DISPUTE_LOST: the consumer
    disputed and won. DISPUTE_WON: the consumer disputed and the provider won (it delivered).
    LATE: delivered and accepted, but after the promised turnaround.
    """

    SUCCESS = 0
    FAILURE = 1
    DISPUTE_LOST = 2
    DISPUTE_WON = 3
    LATE = 4


# Spec: "Success Rate (successful / total)". A delivered contract is successful: on time, late,
# or upheld in a dispute. Indexed by OutcomeKind value.
_SUCCESSFUL_BY_KIND: Final = np.array([True, False, False, True, True], dtype=np.bool_)
assert len(_SUCCESSFUL_BY_KIND) == len(OutcomeKind)


class ReputationRule(Enum):
    """Which formula makes the reputation score (an exchange setting, aex/core/rules.py).

    SPEC: the spec's five-component score (the exchange's default). SUCCESS_RATIO: the Beta
    posterior mean of the plain success and failure counts, (s + prior_alpha) / (n +
    prior_alpha + prior_beta), i.e. (s + 1) / (n + 2) with the uniform prior: the rule of the
    benchmark market (scenarios/reference_reverse_auction.toml) and its Mesa baseline. Both
    report the same components and the same tier table; only `score` differs.
    """

    SPEC = "spec"
    SUCCESS_RATIO = "success_ratio"


@dataclass(frozen=True, slots=True)
class ReputationParams:
    """The transaction score's tunables and the consistency term's thin-record rule.

    Attributes:
        prior_alpha, prior_beta: the Beta prior on a provider's success probability. The default
            Beta(2, 2) has mean 0.5 and is worth four reference contracts of evidence: a
            newcomer starts in the middle and one success moves it to 0.6, not to 1.
        half_life_days: an outcome this old counts half as much as one from now_ms
            (math.inf: no decay). 90 days: a quarter's record dominates.
        value_weighting: weight each outcome by log2(1 + value / value_reference_minor) (a
            contract of the reference value weighs 1, four times the value weighs log2(5) =
            2.3, a tiny one almost 0, so tiny contracts cannot farm trust); False: weight 1.
        value_reference_minor: the contract value that weighs 1 (10,000 minor = 100.00 USD,
            the spec's worked contract).
        dispute_lost_weight: a lost dispute is a failure counted this many times (>= 1).
        late_success_credit: a late delivery counts this fraction as a success and the rest as
            a failure (0.5: half a success).
        consistency_days_min: days with at least one outcome in the 30-day window below which
            the consistency term has too few daily rates for a standard deviation.
        consistency_neutral: the consistency score of such a thin record. The population
            standard deviation of rates in [0, 1] is at most 0.5, so consistency lies in
            [0.5, 1]; 0.75 is the middle of that range: neither rewarded nor punished.
        rule: the score's formula (ReputationRule.SPEC unless the exchange's rules say
            otherwise); SUCCESS_RATIO uses prior_alpha and prior_beta on plain counts.
    """

    prior_alpha: float = 2.0
    prior_beta: float = 2.0
    half_life_days: float = 90.0
    value_weighting: bool = True
    value_reference_minor: int = 10_000
    dispute_lost_weight: float = 2.0
    late_success_credit: float = 0.5
    consistency_days_min: int = 2
    consistency_neutral: float = 0.75
    rule: ReputationRule = ReputationRule.SPEC

    def __post_init__(self) -> None:
        assert math.isfinite(self.prior_alpha)
        assert self.prior_alpha > 0
        assert math.isfinite(self.prior_beta)
        assert self.prior_beta > 0
        assert self.half_life_days > 0  # math.inf allowed: no decay
        assert type(self.value_weighting) is bool
        assert type(self.value_reference_minor) is int
        assert 0 < self.value_reference_minor <= limits.amount_minor_max
        assert math.isfinite(self.dispute_lost_weight)
        assert self.dispute_lost_weight >= 1.0, "the spec counts a lost dispute as a failure"
        assert 0.0 <= self.late_success_credit <= 1.0
        assert 1 <= self.consistency_days_min <= limits.reputation_window_days
        assert 0.0 <= self.consistency_neutral <= 1.0
        assert isinstance(self.rule, ReputationRule)

    @property
    def half_life_ms(self) -> float:
        return self.half_life_days * DAY_MS


DEFAULT_REPUTATION_PARAMS: Final = ReputationParams()


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Contract outcomes as equal-length columns, one row per finished contract.

    Columns: provider_index int64 (0..n_providers-1, the caller's dense provider numbering),
    at_ms int64 (when the outcome was recorded), kind uint8 (an OutcomeKind value), value_minor
    int64 (the contract price; drivers with several currencies convert to one reference
    currency first). Rows may come in any order. The arrays are treated as read-only.
    """

    provider_index: npt.NDArray[np.int64]
    at_ms: npt.NDArray[np.int64]
    kind: npt.NDArray[np.uint8]
    value_minor: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        columns = (self.provider_index, self.at_ms, self.kind, self.value_minor)
        dtypes = (np.int64, np.int64, np.uint8, np.int64)
        for column, dtype in zip(columns, dtypes, strict=True):
            assert isinstance(column, np.ndarray)
            assert column.dtype == dtype, f"{column.dtype} is not {np.dtype(dtype)}"
            assert column.ndim == 1
        assert len({len(column) for column in columns}) == 1, "columns differ in length"
        if len(self.kind) > 0:
            assert int(self.provider_index.min()) >= 0
            assert int(self.at_ms.min()) >= 0
            assert int(self.kind.max()) < len(OutcomeKind)
            assert int(self.value_minor.min()) >= 0
            assert int(self.value_minor.max()) <= limits.amount_minor_max

    def __len__(self) -> int:
        return len(self.kind)

    @classmethod
    def from_columns(
        cls,
        *,
        provider_index: npt.ArrayLike,
        at_ms: npt.ArrayLike,
        kind: npt.ArrayLike,
        value_minor: npt.ArrayLike,
    ) -> Outcomes:
        """Builds the record from lists or integer arrays of any width (floats are refused)."""
        return cls(
            provider_index=_integer_column(provider_index, np.int64),
            at_ms=_integer_column(at_ms, np.int64),
            kind=_integer_column(kind, np.uint8),
            value_minor=_integer_column(value_minor, np.int64),
        )

    @classmethod
    def empty(cls) -> Outcomes:
        """No outcomes: every provider has the prior's reputation."""
        return cls.from_columns(provider_index=[], at_ms=[], kind=[], value_minor=[])


def _integer_column(values: npt.ArrayLike, dtype: type[np.integer[Any]]) -> npt.NDArray[Any]:
    # An empty list comes in as float64; any other float or object column is a caller's bug.
    array = np.asarray(values)
    assert array.size == 0 or array.dtype.kind in "iu", f"integer column expected: {array.dtype}"
    if array.size > 0:
        info = np.iinfo(dtype)
        assert int(array.min()) >= info.min
        assert int(array.max()) <= info.max
    return array.astype(dtype)


@dataclass(frozen=True, slots=True)
class ReputationScores:
    """Per-provider reputation, one row per provider index (all arrays of length n_providers).

    score, transaction_score, success_rate, volume_score, consistency_score: float64 in [0, 1];
    certification_bonus: float64 in [0, 0.10] (the spec's bonus, added at face value);
    tier: int8 Tier values; contracts: int64 outcome counts.
    """

    score: npt.NDArray[np.float64]
    tier: npt.NDArray[np.int8]
    contracts: npt.NDArray[np.int64]
    transaction_score: npt.NDArray[np.float64]
    success_rate: npt.NDArray[np.float64]
    volume_score: npt.NDArray[np.float64]
    consistency_score: npt.NDArray[np.float64]
    certification_bonus: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Reputation:
    """One provider's reputation: the scalar row of ReputationScores."""

    score: float
    tier: Tier
    contracts: int
    transaction_score: float
    success_rate: float
    volume_score: float
    consistency_score: float
    certification_bonus: float


@overload
def beta_posterior_mean(
    successes: float, failures: float, *, prior_alpha: float = 1.0, prior_beta: float = 1.0
) -> float: ...
@overload
def beta_posterior_mean(
    successes: npt.NDArray[Any],
    failures: npt.NDArray[Any] | float,
    *,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> npt.NDArray[np.float64]: ...
def beta_posterior_mean(
    successes: float | npt.NDArray[Any],
    failures: float | npt.NDArray[Any],
    *,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> float | npt.NDArray[np.float64]:
    """The posterior mean of a success probability under a Beta(prior_alpha, prior_beta) prior.

    (prior_alpha + s) / (prior_alpha + prior_beta + s + f): with the uniform prior Beta(1, 1)
    this is Laplace's rule of succession, (s + 1) / (s + f + 2). Works on floats and on arrays
    (successes and failures may be weighted, hence fractional, counts).

    Args:
        successes: success mass, >= 0.
        failures: failure mass, >= 0.
        prior_alpha: the prior's pseudo-successes, > 0.
        prior_beta: the prior's pseudo-failures, > 0.

    Returns:
        A float in (0, 1) for float inputs, else a float64 array.
    """
    assert math.isfinite(prior_alpha)
    assert prior_alpha > 0
    assert math.isfinite(prior_beta)
    assert prior_beta > 0
    if isinstance(successes, np.ndarray) or isinstance(failures, np.ndarray):
        success_mass = np.asarray(successes, dtype=np.float64)
        failure_mass = np.asarray(failures, dtype=np.float64)
        assert bool(np.all(np.isfinite(success_mass)))
        assert bool(np.all(success_mass >= 0))
        assert bool(np.all(np.isfinite(failure_mass)))
        assert bool(np.all(failure_mass >= 0))
        posterior_mean: npt.NDArray[np.float64] = (prior_alpha + success_mass) / (
            prior_alpha + prior_beta + success_mass + failure_mass
        )
        return posterior_mean
    assert math.isfinite(successes)
    assert successes >= 0
    assert math.isfinite(failures)
    assert failures >= 0
    return (prior_alpha + successes) / (prior_alpha + prior_beta + successes + failures)


def tiers_for(scores: npt.NDArray[np.float64], contracts: npt.NDArray[Any]) -> npt.NDArray[np.int8]:
    """The spec's tier table over arrays: the best tier whose score and contract minimums are met.

    Spec: "PLATINUM: score >= 0.9, contracts >= 200; GOLD: score >= 0.75, contracts >= 50;
    SILVER: score >= 0.5, contracts >= 10; BRONZE: everything else". Both bounds inclusive.

    Returns:
        int8 Tier values, shaped like `scores`.
    """
    score_column = np.asarray(scores, dtype=np.float64)
    contract_column = np.asarray(contracts)
    assert score_column.shape == contract_column.shape
    assert contract_column.size == 0 or contract_column.dtype.kind in "iu"
    assert bool(np.all(np.isfinite(score_column)))
    tier = np.full(score_column.shape, Tier.BRONZE, dtype=np.int8)
    # Walk up from SILVER; the thresholds nest, so the last tier met is the best (asserted at
    # import). Bounded by the table's three rows.
    for threshold in reversed(TIER_THRESHOLDS):
        qualifies = (score_column >= threshold.score_min) & (
            contract_column >= threshold.contracts_min
        )
        tier = np.where(qualifies, np.int8(threshold.tier), tier)
    return tier


def tier_for(score: float, contracts: int) -> Tier:
    """One provider's tier: `tiers_for` on a row of one (the same rule by construction)."""
    tier = tiers_for(np.array([score], dtype=np.float64), np.array([contracts], dtype=np.int64))
    return Tier(int(tier[0]))


def reputation_scores(
    outcomes: Outcomes,
    *,
    n_providers: int,
    active_certificates: npt.NDArray[Any],
    now_ms: int,
    params: ReputationParams = DEFAULT_REPUTATION_PARAMS,
) -> ReputationScores:
    """Every provider's reputation and tier at `now_ms`, from all their outcomes at once.

    Spec (Reputation Calculation):
        35% Transaction Score, 25% Success Rate (successful / total),
        15% Volume Score (min(1.0, total/500)), 15% Consistency Score (1.0 - stddev(30-day
        rates)), 10% Certification Bonus (active_certs * 0.05, cap 0.10).

    Definitions (docs/reputation.md): contracts = total = outcomes of the provider; successful
    = SUCCESS, LATE or DISPUTE_WON; success rate 0 when there are no outcomes. The transaction
    score is the Beta posterior mean of value-weighted, time-decayed success and failure mass
    (`params`). Consistency is 1 − the population standard deviation of the daily success
    rates over the days with at least one outcome among the 30 days before now_ms (day k holds
    the outcomes with k·24h <= now_ms − at_ms < (k+1)·24h), or `params.consistency_neutral`
    with fewer than `params.consistency_days_min` such days. The certification bonus is
    min(0.10, 0.05 × active certificates), its [0, 1] component bonus / 0.10 weighted 10%.

    Args:
        outcomes: every outcome to count, for providers 0..n_providers-1, none after now_ms.
        n_providers: the number of providers (rows of the result).
        active_certificates: int array (n_providers,): each provider's active certificates.
        now_ms: the time the reputation is computed at (no clock is read).
        params: the transaction score's prior, decay and weights.

    Returns:
        ReputationScores with one row per provider index.
    """
    certificates = np.asarray(active_certificates)
    _assert_call_shape(outcomes, n_providers, certificates, now_ms)
    provider = outcomes.provider_index
    successful = _SUCCESSFUL_BY_KIND[outcomes.kind]
    # total and successful per provider: exact integer counts.
    contracts = np.bincount(provider, minlength=n_providers).astype(np.int64)
    successes = np.bincount(provider[successful], minlength=n_providers).astype(np.int64)
    success_mass, failure_mass = _evidence_masses(outcomes, n_providers, now_ms, params)
    consistency_score = _consistency_score(outcomes, successful, n_providers, now_ms, params)
    return _assemble(
        contracts, successes, success_mass, failure_mass, consistency_score, certificates, params
    )


def _assemble(
    contracts: npt.NDArray[np.int64],
    successes: npt.NDArray[np.int64],
    success_mass: npt.NDArray[np.float64],
    failure_mass: npt.NDArray[np.float64],
    consistency_score: npt.NDArray[np.float64],
    certificates: npt.NDArray[Any],
    params: ReputationParams,
) -> ReputationScores:
    # The spec's weighted sum (or the SUCCESS_RATIO rule) from the per-provider parts.
    n_providers = contracts.size
    assert contracts.size == 0 or int(contracts.max()) <= limits.outcomes_per_provider_max
    # Spec: "Success Rate (successful / total)"; no outcomes, no success.
    success_rate = np.divide(
        successes, contracts, out=np.zeros(n_providers, dtype=np.float64), where=contracts > 0
    )
    # Spec: "Volume Score (min(1.0, total/500))".
    volume_score = np.minimum(1.0, contracts / VOLUME_SATURATION_CONTRACTS)
    transaction_score = beta_posterior_mean(
        success_mass, failure_mass, prior_alpha=params.prior_alpha, prior_beta=params.prior_beta
    )
    # Spec: "Certification Bonus (active_certs * 0.05, cap 0.10)".
    certification_bonus = np.minimum(
        CERTIFICATION_BONUS_MAX, CERTIFICATION_BONUS_PER_CERTIFICATE * certificates
    ).astype(np.float64)
    score = (
        REPUTATION_WEIGHTS["transaction_score"] * transaction_score
        + REPUTATION_WEIGHTS["success_rate"] * success_rate
        + REPUTATION_WEIGHTS["volume_score"] * volume_score
        + REPUTATION_WEIGHTS["consistency_score"] * consistency_score
        + REPUTATION_WEIGHTS["certification_bonus"]
        * (certification_bonus / CERTIFICATION_BONUS_MAX)
    )
    if params.rule is ReputationRule.SUCCESS_RATIO:
        score = beta_posterior_mean(
            successes.astype(np.float64),
            (contracts - successes).astype(np.float64),
            prior_alpha=params.prior_alpha,
            prior_beta=params.prior_beta,
        )
    for component in (transaction_score, success_rate, volume_score, consistency_score, score):
        assert bool(np.all((component >= 0.0) & (component <= 1.0)))
    assert bool(np.all(certification_bonus <= CERTIFICATION_BONUS_MAX))
    return ReputationScores(
        score=score,
        tier=tiers_for(score, contracts),
        contracts=contracts,
        transaction_score=transaction_score,
        success_rate=success_rate,
        volume_score=volume_score,
        consistency_score=consistency_score,
        certification_bonus=certification_bonus,
    )


def _assert_call_shape(
    outcomes: Outcomes, n_providers: int, certificates: npt.NDArray[Any], now_ms: int
) -> None:
    # Programmer errors at the driver: the driver numbers its providers and checks the limits.
    assert type(n_providers) is int
    assert 0 <= n_providers <= limits.reputation_providers_per_call_max
    assert len(outcomes) <= limits.reputation_outcomes_per_call_max
    assert certificates.shape == (n_providers,)
    assert certificates.size == 0 or certificates.dtype.kind in "iu"
    assert certificates.size == 0 or int(certificates.min()) >= 0
    assert isinstance(now_ms, int | np.integer)
    if len(outcomes) > 0:
        assert int(outcomes.provider_index.max()) < n_providers
        assert int(outcomes.at_ms.max()) <= now_ms, "an outcome after now_ms"


def _evidence_weights(
    outcomes: Outcomes, now_ms: int, params: ReputationParams
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    # Each outcome's success and failure evidence at now_ms: value weight × 2^(−age / half-life)
    # × how much of the outcome is a success (failure), indexed by OutcomeKind.
    age_ms = (now_ms - outcomes.at_ms).astype(np.float64)
    decay = np.exp2(-age_ms / params.half_life_ms)
    if params.value_weighting:
        value_weight = np.log2(1.0 + outcomes.value_minor / params.value_reference_minor)
    else:
        value_weight = np.ones(len(outcomes), dtype=np.float64)
    evidence_weight = value_weight * decay
    late = params.late_success_credit
    success_credit = np.array([1.0, 0.0, 0.0, 1.0, late])
    failure_debit = np.array([0.0, 1.0, params.dispute_lost_weight, 0.0, 1.0 - late])
    return (
        evidence_weight * success_credit[outcomes.kind],
        evidence_weight * failure_debit[outcomes.kind],
    )


def _evidence_masses(
    outcomes: Outcomes, n_providers: int, now_ms: int, params: ReputationParams
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    # The transaction score's success and failure mass per provider at now_ms.
    success_weight, failure_weight = _evidence_weights(outcomes, now_ms, params)
    success_mass = np.bincount(
        outcomes.provider_index, weights=success_weight, minlength=n_providers
    )
    failure_mass = np.bincount(
        outcomes.provider_index, weights=failure_weight, minlength=n_providers
    )
    return success_mass.astype(np.float64), failure_mass.astype(np.float64)


def _consistency_score(
    outcomes: Outcomes,
    successful: npt.NDArray[np.bool_],
    n_providers: int,
    now_ms: int,
    params: ReputationParams,
) -> npt.NDArray[np.float64]:
    # A (providers × window days) table of outcome and success counts; day 0 is the 24 h ending
    # at now_ms. Outcomes older than the window do not enter.
    window_days = limits.reputation_window_days
    age_days = (now_ms - outcomes.at_ms) // DAY_MS
    in_window = age_days < window_days
    # Rows only for the providers with an outcome in the window (the others have no active
    # day: the neutral value, consistency_days_min >= 1), so that the table is O(outcomes)
    # and not (all providers × 30) per call: the simulator calls this every tick
    # (docs/performance.md "Cost curves", finding 2). The rows are the same as before.
    provider = outcomes.provider_index[in_window]
    present_mask = np.bincount(provider, minlength=n_providers) > 0
    present = np.flatnonzero(present_mask)
    rows = present.size
    cell = (np.cumsum(present_mask) - 1)[provider] * window_days + age_days[in_window]
    cells = rows * window_days
    day_totals = np.bincount(cell, minlength=cells).reshape(rows, window_days)
    day_successes = np.bincount(cell[successful[in_window]], minlength=cells).reshape(
        rows, window_days
    )
    active_day = day_totals > 0
    daily_rate = np.divide(
        day_successes, day_totals, out=np.zeros(day_totals.shape), where=active_day
    )
    active_days = active_day.sum(axis=1)
    days_or_one = np.maximum(active_days, 1)
    # Population standard deviation over active days, in two passes (no cancellation).
    mean_rate = daily_rate.sum(axis=1) / days_or_one
    deviation = np.where(active_day, daily_rate - mean_rate[:, None], 0.0)
    stddev = np.sqrt((deviation * deviation).sum(axis=1) / days_or_one)
    # Spec: "Consistency Score (1.0 - stddev(30-day rates))"; thin records get the neutral value.
    consistency: npt.NDArray[np.float64] = np.full(
        n_providers, params.consistency_neutral, dtype=np.float64
    )
    consistency[present] = np.where(
        active_days >= params.consistency_days_min, 1.0 - stddev, params.consistency_neutral
    )
    return consistency


def reputation_of(
    outcomes_for_one_provider: Outcomes,
    *,
    active_certificates: int,
    now_ms: int,
    params: ReputationParams = DEFAULT_REPUTATION_PARAMS,
) -> Reputation:
    """One provider's reputation: `reputation_scores` with a single provider (the server's call).

    Args:
        outcomes_for_one_provider: that provider's outcomes (provider_index all equal; its
            value is ignored).
        active_certificates: the provider's active certificates, >= 0.
        now_ms: the time the reputation is computed at.
        params: as for `reputation_scores`.
    """
    provider_index = outcomes_for_one_provider.provider_index
    assert provider_index.size == 0 or bool(np.all(provider_index == provider_index[0]))
    assert type(active_certificates) is int
    one_provider = Outcomes(
        provider_index=np.zeros(len(outcomes_for_one_provider), dtype=np.int64),
        at_ms=outcomes_for_one_provider.at_ms,
        kind=outcomes_for_one_provider.kind,
        value_minor=outcomes_for_one_provider.value_minor,
    )
    scores = reputation_scores(
        one_provider,
        n_providers=1,
        active_certificates=np.array([active_certificates], dtype=np.int64),
        now_ms=now_ms,
        params=params,
    )
    return Reputation(
        score=float(scores.score[0]),
        tier=Tier(int(scores.tier[0])),
        contracts=int(scores.contracts[0]),
        transaction_score=float(scores.transaction_score[0]),
        success_rate=float(scores.success_rate[0]),
        volume_score=float(scores.volume_score[0]),
        consistency_score=float(scores.consistency_score[0]),
        certification_bonus=float(scores.certification_bonus[0]),
    )


@dataclass(frozen=True, slots=True)
class ReputationTally:
    """Running per-provider reputation evidence (see `tally_outcomes`).

    contracts, successes: int64 counts; success_mass, failure_mass: the transaction score's
    evidence decayed to anchor_ms; recent: the outcomes younger than the consistency window at
    anchor_ms (provider_index as given).
    """

    contracts: npt.NDArray[np.int64]
    successes: npt.NDArray[np.int64]
    success_mass: npt.NDArray[np.float64]
    failure_mass: npt.NDArray[np.float64]
    anchor_ms: int
    recent: Outcomes

    @classmethod
    def empty(cls, n_providers: int) -> ReputationTally:
        zeros = np.zeros(n_providers, dtype=np.int64)
        return cls(
            zeros,
            zeros.copy(),
            np.zeros(n_providers),
            np.zeros(n_providers),
            0,
            Outcomes.empty(),
        )

    def without_providers(self, providers: npt.NDArray[np.int64]) -> ReputationTally:
        """The tally with these providers' records wiped (a fresh identity on that index)."""
        keep = ~np.isin(self.recent.provider_index, providers)
        recent = self.recent
        contracts, successes = self.contracts.copy(), self.successes.copy()
        success_mass, failure_mass = self.success_mass.copy(), self.failure_mass.copy()
        for column in (contracts, successes, success_mass, failure_mass):
            column[providers] = 0
        return ReputationTally(
            contracts,
            successes,
            success_mass,
            failure_mass,
            self.anchor_ms,
            Outcomes(
                recent.provider_index[keep],
                recent.at_ms[keep],
                recent.kind[keep],
                recent.value_minor[keep],
            ),
        )


def _decay_factor(from_ms: int, to_ms: int, params: ReputationParams) -> float:
    assert to_ms >= from_ms
    return float(np.exp2(-float(to_ms - from_ms) / params.half_life_ms))


def tally_outcomes(
    tally: ReputationTally,
    outcomes: Outcomes,
    *,
    now_ms: int,
    params: ReputationParams = DEFAULT_REPUTATION_PARAMS,
) -> ReputationTally:
    """The tally with `outcomes` (none after now_ms) added, carried forward to now_ms.

    Args:
        tally: the evidence so far (anchor_ms <= now_ms); `ReputationTally.empty(n)` to start.
        outcomes: the new outcomes, provider_index < the tally's provider count.
        now_ms: the new anchor.
        params: the reputation parameters (the same for every call on one tally).
    """
    n_providers = tally.contracts.size
    assert isinstance(now_ms, int | np.integer)
    if len(outcomes) > 0:
        assert int(outcomes.provider_index.max()) < n_providers
        assert int(outcomes.at_ms.max()) <= now_ms, "an outcome after now_ms"
    provider = outcomes.provider_index
    successful = _SUCCESSFUL_BY_KIND[outcomes.kind]
    contracts = tally.contracts + np.bincount(provider, minlength=n_providers)
    successes = tally.successes + np.bincount(provider[successful], minlength=n_providers)
    carried = _decay_factor(tally.anchor_ms, int(now_ms), params)
    new_success, new_failure = _evidence_masses(outcomes, n_providers, int(now_ms), params)
    recent = Outcomes(
        np.concatenate([tally.recent.provider_index, outcomes.provider_index]),
        np.concatenate([tally.recent.at_ms, outcomes.at_ms]),
        np.concatenate([tally.recent.kind, outcomes.kind]),
        np.concatenate([tally.recent.value_minor, outcomes.value_minor]),
    )
    # outcomes a full window old at now_ms are outside every later window too
    young = (now_ms - recent.at_ms) // DAY_MS < limits.reputation_window_days
    recent = Outcomes(
        recent.provider_index[young],
        recent.at_ms[young],
        recent.kind[young],
        recent.value_minor[young],
    )
    return ReputationTally(
        contracts.astype(np.int64),
        successes.astype(np.int64),
        tally.success_mass * carried + new_success,
        tally.failure_mass * carried + new_failure,
        int(now_ms),
        recent,
    )


def reputation_from_tally(
    tally: ReputationTally,
    *,
    active_certificates: npt.NDArray[Any],
    now_ms: int,
    params: ReputationParams = DEFAULT_REPUTATION_PARAMS,
) -> ReputationScores:
    """`reputation_scores` of every outcome tallied, at now_ms >= the tally's anchor."""
    n_providers = tally.contracts.size
    certificates = np.asarray(active_certificates)
    _assert_call_shape(tally.recent, n_providers, certificates, now_ms)
    carried = _decay_factor(tally.anchor_ms, int(now_ms), params)
    successful = _SUCCESSFUL_BY_KIND[tally.recent.kind]
    consistency = _consistency_score(tally.recent, successful, n_providers, int(now_ms), params)
    return _assemble(
        tally.contracts,
        tally.successes,
        tally.success_mass * carried,
        tally.failure_mass * carried,
        consistency,
        certificates,
        params,
    )

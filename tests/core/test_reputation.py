"""aex/core/reputation.py: the spec's reputation formula, its tiers and the transaction score.

Invariants held by the property tests: the score and every component lie in [0, 1]; the
columnar call equals the one-provider call row by row; adding a success never lowers the
transaction score; the order of outcomes changes nothing; a plain-Python reference of the
formula (below) equals the vectorised one.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aex.core import limits
from aex.core.reputation import (
    DAY_MS,
    DEFAULT_REPUTATION_PARAMS,
    TIER_THRESHOLDS,
    OutcomeKind,
    Outcomes,
    Reputation,
    ReputationParams,
    ReputationRule,
    ReputationScores,
    ReputationTally,
    Tier,
    beta_posterior_mean,
    reputation_from_tally,
    reputation_of,
    reputation_scores,
    tally_outcomes,
    tier_for,
    tiers_for,
)

NOW_MS = 1_000 * DAY_MS
# Counting without decay or value weighting, so hand-worked examples are plain fractions.
PLAIN = ReputationParams(value_weighting=False, half_life_days=math.inf)
S, F, DL, DW, LATE = (
    OutcomeKind.SUCCESS,
    OutcomeKind.FAILURE,
    OutcomeKind.DISPUTE_LOST,
    OutcomeKind.DISPUTE_WON,
    OutcomeKind.LATE,
)

Row = tuple[int, int, int, int]  # provider_index, at_ms, kind, value_minor


def outcomes_of(rows: list[Row]) -> Outcomes:
    return Outcomes.from_columns(
        provider_index=[r[0] for r in rows],
        at_ms=[r[1] for r in rows],
        kind=[int(r[2]) for r in rows],
        value_minor=[r[3] for r in rows],
    )


def one_provider(
    kinds_by_day: dict[int, list[OutcomeKind]], *, value_minor: int = 10_000
) -> Outcomes:
    # Outcomes at noon of day k before NOW_MS (day 0 is the last 24 h).
    return outcomes_of(
        [
            (0, NOW_MS - day * DAY_MS - DAY_MS // 2, kind, value_minor)
            for day, kinds in kinds_by_day.items()
            for kind in kinds
        ]
    )


def rep(outcomes: Outcomes, certificates: int = 0, params: ReputationParams = PLAIN) -> Reputation:
    return reputation_of(outcomes, active_certificates=certificates, now_ms=NOW_MS, params=params)


# ---- tiers ---------------------------------------------------------------------------------


def _tier_cases() -> list[tuple[float, int, Tier]]:
    # Spec: "PLATINUM: score >= 0.9, contracts >= 200 / GOLD: score >= 0.75, contracts >= 50 /
    # SILVER: score >= 0.5, contracts >= 10 / BRONZE: everything else". At each threshold, and
    # one step below it in score (the next float down) and in contracts.
    spec = [(Tier.PLATINUM, 0.9, 200), (Tier.GOLD, 0.75, 50), (Tier.SILVER, 0.5, 10)]
    cases = []
    for tier, score_min, contracts_min in spec:
        below = Tier(tier - 1)
        cases += [
            (score_min, contracts_min, tier),
            (math.nextafter(score_min, 0.0), contracts_min, below),
            (score_min, contracts_min - 1, below),
        ]
    return cases


@pytest.mark.parametrize(("score", "contracts", "tier"), _tier_cases())
def test_tier_is_earned_exactly_at_its_thresholds_and_lost_one_step_below(
    score: float, contracts: int, tier: Tier
) -> None:
    assert tier_for(score, contracts) == tier
    assert tiers_for(np.array([score]), np.array([contracts])).tolist() == [tier]


def test_tier_table_is_the_spec_table() -> None:
    assert [(t.tier, t.score_min, t.contracts_min) for t in TIER_THRESHOLDS] == [
        (Tier.PLATINUM, 0.9, 200),
        (Tier.GOLD, 0.75, 50),
        (Tier.SILVER, 0.5, 10),
    ]


@pytest.mark.parametrize(
    ("score", "contracts", "tier"),
    [
        (0.82, 67, Tier.GOLD),  # the spec's verify example: { tier: "GOLD", score: 0.82, ... }
        (1.0, 10_000, Tier.PLATINUM),
        (0.95, 199, Tier.GOLD),  # a high score cannot skip the contract count
        (0.95, 49, Tier.SILVER),
        (0.95, 9, Tier.BRONZE),
        (0.6, 10_000, Tier.SILVER),  # a long record cannot skip the score
        (0.0, 0, Tier.BRONZE),
    ],
)
def test_a_tier_needs_both_its_score_and_its_contract_count(
    score: float, contracts: int, tier: Tier
) -> None:
    assert tier_for(score, contracts) == tier


@given(st.floats(0.0, 1.0), st.integers(0, 1_000))
def test_tier_is_the_best_one_whose_two_thresholds_are_met(score: float, contracts: int) -> None:
    expected = next(
        (t.tier for t in TIER_THRESHOLDS if score >= t.score_min and contracts >= t.contracts_min),
        Tier.BRONZE,
    )
    assert tier_for(score, contracts) == expected


# ---- the spec formula by hand ---------------------------------------------------------------


def test_ten_clean_days_and_one_certificate_score_0_753_silver() -> None:
    reputation = rep(one_provider({day: [S] for day in range(10)}), certificates=1)
    # Transaction: Beta(2, 2) prior + 10 successes = 12/14. Success rate 10/10. Volume 10/500.
    # Consistency: ten daily rates of 1, stddev 0. Bonus: 1 × 0.05.
    assert reputation.transaction_score == pytest.approx(12 / 14)
    assert reputation.success_rate == 1.0
    assert reputation.volume_score == pytest.approx(0.02)
    assert reputation.consistency_score == 1.0
    assert reputation.certification_bonus == pytest.approx(0.05)
    # 0.35 × 6/7 + 0.25 × 1 + 0.15 × 0.02 + 0.15 × 1 + 0.10 × (0.05 / 0.10) = 0.753
    assert reputation.score == pytest.approx(0.753)
    assert reputation.contracts == 10
    assert reputation.tier == Tier.SILVER


def test_mixed_record_works_out_by_hand() -> None:
    reputation = rep(one_provider({0: [S, F], 1: [S, S]}))
    # Transaction (2 + 3) / (4 + 4) = 0.625; success 3/4; volume 4/500; daily rates 0.5 and 1:
    # mean 0.75, population stddev 0.25, consistency 0.75; no certificates.
    assert reputation.transaction_score == pytest.approx(0.625)
    assert reputation.success_rate == 0.75
    assert reputation.volume_score == pytest.approx(0.008)
    assert reputation.consistency_score == pytest.approx(0.75)
    expected = 0.35 * 0.625 + 0.25 * 0.75 + 0.15 * 0.008 + 0.15 * 0.75
    assert reputation.score == pytest.approx(expected)
    assert reputation.score == pytest.approx(0.51995)
    assert reputation.tier == Tier.BRONZE


def test_a_perfect_record_of_500_contracts_and_two_certificates_scores_near_one() -> None:
    reputation = rep(one_provider({day: [S] * 50 for day in range(10)}), certificates=2)
    assert reputation.volume_score == 1.0
    assert reputation.certification_bonus == pytest.approx(0.10)
    # Everything is 1 except the transaction score, 502/504 under the Beta(2, 2) prior.
    assert reputation.score == pytest.approx(0.65 + 0.35 * 502 / 504)
    assert reputation.tier == Tier.PLATINUM


def test_a_new_provider_has_the_prior_and_the_neutral_consistency() -> None:
    reputation = rep(Outcomes.empty(), params=DEFAULT_REPUTATION_PARAMS)
    assert reputation == Reputation(
        score=0.35 * 0.5 + 0.15 * 0.75,
        tier=Tier.BRONZE,
        contracts=0,
        transaction_score=0.5,
        success_rate=0.0,
        volume_score=0.0,
        consistency_score=0.75,
        certification_bonus=0.0,
    )


@pytest.mark.parametrize(
    ("contracts", "volume_score"), [(0, 0.0), (250, 0.5), (500, 1.0), (501, 1.0)]
)
def test_volume_saturates_at_500_contracts(contracts: int, volume_score: float) -> None:
    outcomes = one_provider({40: [S] * contracts})
    assert rep(outcomes).volume_score == volume_score


# ---- consistency ----------------------------------------------------------------------------


def test_consistency_is_one_minus_the_population_stddev_of_daily_rates() -> None:
    # Daily rates 1, 0.5, 0, 0.5: mean 0.5, population variance (0.25 + 0 + 0.25 + 0) / 4.
    outcomes = one_provider({0: [S], 3: [S, F], 7: [F], 29: [LATE, DL]})
    assert rep(outcomes).consistency_score == pytest.approx(1 - math.sqrt(0.125))


def test_alternating_perfect_and_failed_days_give_the_least_consistency() -> None:
    outcomes = one_provider({day: [S] if day % 2 else [F, F] for day in range(30)})
    assert rep(outcomes).consistency_score == pytest.approx(0.5)


@pytest.mark.parametrize("kinds_by_day", [{}, {0: [S, F, S]}, {5: [F]}, {30: [S], 2: [F]}])
def test_fewer_than_two_active_days_give_the_neutral_consistency(
    kinds_by_day: dict[int, list[OutcomeKind]],
) -> None:
    params = ReputationParams(consistency_neutral=0.6)
    assert rep(one_provider(kinds_by_day), params=params).consistency_score == 0.6


def test_consistency_window_is_the_30_days_before_now() -> None:
    # Day k holds ages [k, k + 1) days: an age of exactly 30 days falls out of the window.
    def consistency(oldest_age_ms: int) -> float:
        rows: list[Row] = [(0, NOW_MS, S, 1), (0, NOW_MS - oldest_age_ms, F, 1)]
        return rep(outcomes_of(rows)).consistency_score

    assert consistency(limits.reputation_window_days * DAY_MS - 1) == pytest.approx(0.5)
    assert consistency(limits.reputation_window_days * DAY_MS) == PLAIN.consistency_neutral


# ---- certification --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("certificates", "bonus"), [(0, 0.0), (1, 0.05), (2, 0.10), (3, 0.10), (1_000, 0.10)]
)
def test_certification_bonus_is_five_points_a_certificate_capped_at_ten(
    certificates: int, bonus: float
) -> None:
    outcomes = one_provider({0: [S]})
    with_certificates = rep(outcomes, certificates=certificates)
    assert with_certificates.certification_bonus == pytest.approx(bonus)
    # The bonus enters the score at face value (its 10% weight times bonus / 0.10).
    assert with_certificates.score - rep(outcomes).score == pytest.approx(bonus)


# ---- the transaction score ------------------------------------------------------------------


def test_one_lucky_success_scores_below_a_long_strong_record() -> None:
    lucky = one_provider({0: [S]})
    strong = one_provider({day: [S] * 19 + [F] for day in range(10)})
    for params in (DEFAULT_REPUTATION_PARAMS, PLAIN, ReputationParams(prior_alpha=1, prior_beta=1)):
        lucky_reputation, strong_reputation = rep(lucky, params=params), rep(strong, params=params)
        assert lucky_reputation.transaction_score < strong_reputation.transaction_score
        assert lucky_reputation.score < strong_reputation.score


def test_old_failures_matter_less_than_recent_ones() -> None:
    old_failures = one_provider({0: [S] * 10, 300: [F] * 10})
    recent_failures = one_provider({0: [F] * 10, 300: [S] * 10})
    decayed, recent = (
        rep(old_failures, params=DEFAULT_REPUTATION_PARAMS),
        rep(recent_failures, params=DEFAULT_REPUTATION_PARAMS),
    )
    assert decayed.transaction_score > 0.5 > recent.transaction_score
    # Without decay the two records are the same evidence.
    assert rep(old_failures).transaction_score == rep(recent_failures).transaction_score


def test_an_outcome_one_half_life_old_counts_half() -> None:
    params = ReputationParams(value_weighting=False, half_life_days=10.0)
    reputation = rep(outcomes_of([(0, NOW_MS - 10 * DAY_MS, F, 1)]), params=params)
    # Half a failure on the Beta(2, 2) prior: 2 / 4.5.
    assert reputation.transaction_score == pytest.approx(2 / 4.5)


def test_a_lost_dispute_weighs_more_than_a_failure() -> None:
    failure, dispute_lost = rep(one_provider({0: [F]})), rep(one_provider({0: [DL]}))
    assert dispute_lost.transaction_score == pytest.approx(2 / 6)  # two failures' worth
    assert failure.transaction_score == pytest.approx(2 / 5)
    assert dispute_lost.success_rate == failure.success_rate == 0.0


def test_a_late_delivery_is_half_a_success_and_a_won_dispute_a_success() -> None:
    late, won, success = (rep(one_provider({0: [kind]})) for kind in (LATE, DW, S))
    assert late.transaction_score == pytest.approx(2.5 / 5)
    assert won.transaction_score == success.transaction_score == pytest.approx(3 / 5)
    assert late.success_rate == won.success_rate == 1.0  # all three delivered


def test_tiny_contracts_barely_move_the_transaction_score() -> None:
    params = ReputationParams(half_life_days=math.inf)
    one_cent = rep(one_provider({0: [S] * 100}, value_minor=1), params=params)
    reference = rep(one_provider({0: [S] * 100}, value_minor=10_000), params=params)
    assert one_cent.transaction_score < 0.51
    assert reference.transaction_score == pytest.approx(102 / 104)
    # Success rate and volume count contracts, not value.
    assert one_cent.success_rate == reference.success_rate
    assert one_cent.volume_score == reference.volume_score


def test_beta_posterior_mean_with_the_uniform_prior_is_the_rule_of_succession() -> None:
    assert beta_posterior_mean(0.0, 0.0, prior_alpha=1, prior_beta=1) == 0.5
    assert beta_posterior_mean(3.0, 1.0, prior_alpha=1, prior_beta=1) == pytest.approx(4 / 6)
    assert isinstance(beta_posterior_mean(3.0, 1.0), float)
    columns = beta_posterior_mean(np.array([0, 1, 9]), np.array([0, 1, 0]))
    assert columns.tolist() == pytest.approx([1 / 2, 2 / 4, 10 / 11])


# ---- shape checks ---------------------------------------------------------------------------


def test_outcome_columns_of_different_lengths_cannot_be_built() -> None:
    with pytest.raises(AssertionError):
        Outcomes.from_columns(provider_index=[0, 0], at_ms=[1], kind=[0], value_minor=[1])


def test_outcome_columns_refuse_floats_and_unknown_kinds() -> None:
    with pytest.raises(AssertionError):
        Outcomes.from_columns(provider_index=[0], at_ms=[1.5], kind=[0], value_minor=[1])
    with pytest.raises(AssertionError):
        Outcomes.from_columns(
            provider_index=[0], at_ms=[1], kind=[len(OutcomeKind)], value_minor=[1]
        )


def test_an_outcome_after_now_is_a_driver_bug() -> None:
    with pytest.raises(AssertionError, match="after now_ms"):
        rep(outcomes_of([(0, NOW_MS + 1, S, 1)]))


# ---- a plain-Python reference of the formula ------------------------------------------------


def reference_reputation(
    rows: list[Row], n_providers: int, certificates: list[int], params: ReputationParams
) -> list[tuple[float, int, int, float, float, float, float, float]]:
    successful = {S: True, F: False, DL: False, DW: True, LATE: True}
    credit = {S: (1.0, 0.0), F: (0.0, 1.0), DL: (0.0, params.dispute_lost_weight), DW: (1.0, 0.0)}
    credit[LATE] = (params.late_success_credit, 1.0 - params.late_success_credit)
    result = []
    for provider in range(n_providers):
        mine = [r for r in rows if r[0] == provider]
        success_mass = failure_mass = 0.0
        days: dict[int, list[bool]] = defaultdict(list)
        for _, at_ms, kind, value_minor in mine:
            age_ms = NOW_MS - at_ms
            weight = 0.5 ** (age_ms / (params.half_life_days * DAY_MS))
            if params.value_weighting:
                weight *= math.log2(1 + value_minor / params.value_reference_minor)
            success_mass += weight * credit[OutcomeKind(kind)][0]
            failure_mass += weight * credit[OutcomeKind(kind)][1]
            if age_ms < 30 * DAY_MS:
                days[age_ms // DAY_MS].append(successful[OutcomeKind(kind)])
        transaction = (params.prior_alpha + success_mass) / (
            params.prior_alpha + params.prior_beta + success_mass + failure_mass
        )
        total = len(mine)
        success_rate = sum(successful[OutcomeKind(r[2])] for r in mine) / total if total else 0.0
        volume = min(1.0, total / 500)
        rates = [sum(day) / len(day) for day in days.values()]
        if len(rates) >= params.consistency_days_min:
            mean = sum(rates) / len(rates)
            consistency = 1 - math.sqrt(sum((r - mean) ** 2 for r in rates) / len(rates))
        else:
            consistency = params.consistency_neutral
        bonus = min(0.10, 0.05 * certificates[provider])
        score = (
            0.35 * transaction + 0.25 * success_rate + 0.15 * volume + 0.15 * consistency + bonus
        )
        tier = next(
            (t.tier for t in TIER_THRESHOLDS if score >= t.score_min and total >= t.contracts_min),
            Tier.BRONZE,
        )
        result.append((score, tier, total, transaction, success_rate, volume, consistency, bonus))
    return result


def rows_of(
    scores: ReputationScores,
) -> list[tuple[float, int, int, float, float, float, float, float]]:
    return list(
        zip(
            scores.score.tolist(),
            scores.tier.tolist(),
            scores.contracts.tolist(),
            scores.transaction_score.tolist(),
            scores.success_rate.tolist(),
            scores.volume_score.tolist(),
            scores.consistency_score.tolist(),
            scores.certification_bonus.tolist(),
            strict=True,
        )
    )


def near_a_tier_threshold(score: float) -> bool:
    return any(abs(score - t.score_min) < 1e-9 for t in TIER_THRESHOLDS)


N_PROVIDERS = 4
row_strategy = st.tuples(
    st.integers(0, N_PROVIDERS - 1),
    st.one_of(
        st.integers(NOW_MS - 400 * DAY_MS, NOW_MS),
        st.integers(NOW_MS - 30 * DAY_MS, NOW_MS),
        st.integers(NOW_MS - 3 * DAY_MS, NOW_MS),  # crowd a few days: rates other than 0 and 1
        st.sampled_from([NOW_MS, NOW_MS - 30 * DAY_MS, NOW_MS - 30 * DAY_MS + 1]),
    ),
    st.sampled_from(list(OutcomeKind)),
    st.one_of(st.integers(0, 10**9), st.sampled_from([0, 1, 10_000, limits.amount_minor_max])),
)
rows_strategy = st.lists(row_strategy, max_size=60)
certificates_strategy = st.lists(st.integers(0, 5), min_size=N_PROVIDERS, max_size=N_PROVIDERS)
params_strategy = st.builds(
    ReputationParams,
    prior_alpha=st.floats(0.1, 20),
    prior_beta=st.floats(0.1, 20),
    half_life_days=st.one_of(st.floats(0.5, 1_000), st.just(math.inf)),
    value_weighting=st.booleans(),
    value_reference_minor=st.integers(1, 10**7),
    dispute_lost_weight=st.floats(1, 5),
    late_success_credit=st.floats(0, 1),
    consistency_days_min=st.one_of(st.just(2), st.integers(1, 4), st.integers(1, 30)),
    consistency_neutral=st.floats(0, 1),
)


def scores_of(
    rows: list[Row], certificates: list[int], params: ReputationParams = DEFAULT_REPUTATION_PARAMS
) -> ReputationScores:
    return reputation_scores(
        outcomes_of(rows),
        n_providers=N_PROVIDERS,
        active_certificates=np.array(certificates),
        now_ms=NOW_MS,
        params=params,
    )


@given(rows_strategy, certificates_strategy, params_strategy)
def test_score_and_every_component_lie_in_zero_one(
    rows: list[Row], certificates: list[int], params: ReputationParams
) -> None:
    scores = scores_of(rows, certificates, params)
    for column in (
        scores.score,
        scores.transaction_score,
        scores.success_rate,
        scores.volume_score,
        scores.consistency_score,
    ):
        assert np.all((column >= 0) & (column <= 1))
    assert np.all((scores.certification_bonus >= 0) & (scores.certification_bonus <= 0.10))
    assert scores.tier.tolist() == tiers_for(scores.score, scores.contracts).tolist()


@given(rows_strategy, certificates_strategy, params_strategy)
def test_vectorised_reputation_equals_the_plain_python_reference(
    rows: list[Row], certificates: list[int], params: ReputationParams
) -> None:
    actual = rows_of(scores_of(rows, certificates, params))
    expected = reference_reputation(rows, N_PROVIDERS, certificates, params)
    for got, want in zip(actual, expected, strict=True):
        assert got[0] == pytest.approx(want[0], abs=1e-9)
        if not near_a_tier_threshold(want[0]):
            assert got[1] == want[1]
        assert got[2] == want[2]
        assert got[3:] == pytest.approx(want[3:], abs=1e-9)


@given(rows_strategy, certificates_strategy, params_strategy)
def test_columnar_reputation_equals_the_one_provider_call(
    rows: list[Row], certificates: list[int], params: ReputationParams
) -> None:
    columnar = rows_of(scores_of(rows, certificates, params))
    for provider in range(N_PROVIDERS):
        mine = outcomes_of([r for r in rows if r[0] == provider])
        single = reputation_of(
            mine, active_certificates=certificates[provider], now_ms=NOW_MS, params=params
        )
        assert columnar[provider] == (
            single.score,
            single.tier,
            single.contracts,
            single.transaction_score,
            single.success_rate,
            single.volume_score,
            single.consistency_score,
            single.certification_bonus,
        )


@given(rows_strategy, certificates_strategy, st.data())
def test_permuting_outcomes_changes_nothing(
    rows: list[Row], certificates: list[int], data: st.DataObject
) -> None:
    permuted = data.draw(st.permutations(rows))
    original, shuffled = (
        rows_of(scores_of(rows, certificates)),
        rows_of(scores_of(permuted, certificates)),
    )
    for before, after in zip(original, shuffled, strict=True):
        assert after[0] == pytest.approx(before[0], abs=1e-12)
        if not near_a_tier_threshold(before[0]):
            assert after[1] == before[1]
        assert after[2:] == pytest.approx(before[2:], abs=1e-12)


@given(rows_strategy, certificates_strategy, row_strategy, params_strategy)
def test_adding_a_success_never_lowers_the_transaction_score(
    rows: list[Row], certificates: list[int], new_row: Row, params: ReputationParams
) -> None:
    success: Row = (new_row[0], new_row[1], S, new_row[3])
    before = scores_of(rows, certificates, params).transaction_score
    after = scores_of([*rows, success], certificates, params).transaction_score
    # Float rounding of the bincount sums is the only slack.
    assert np.all(after >= before - 1e-12)


@settings(max_examples=25)
@given(st.integers(1, 300), st.integers(0, 300))
def test_more_successes_on_the_same_failures_raise_the_transaction_score(
    successes: int, failures: int
) -> None:
    fewer = rep(one_provider({0: [S] * successes + [F] * failures}))
    more = rep(one_provider({0: [S] * (successes + 1) + [F] * failures}))
    assert more.transaction_score > fewer.transaction_score


@given(
    st.lists(
        st.tuples(
            st.integers(0, 4), st.integers(0, 60 * DAY_MS), st.sampled_from(list(OutcomeKind))
        ),
        max_size=60,
    )
)
def test_the_success_ratio_rule_is_the_laplace_rule_on_plain_counts(
    rows: list[tuple[int, int, OutcomeKind]],
) -> None:
    # The benchmark market's rule, an exchange setting: (s + 1) / (n + 2), with the spec's
    # components and tier table unchanged.
    outcomes = Outcomes.from_columns(
        provider_index=[r[0] for r in rows],
        at_ms=[NOW_MS - r[1] for r in rows],
        kind=[int(r[2]) for r in rows],
        value_minor=[10_000] * len(rows),
    )
    params = ReputationParams(rule=ReputationRule.SUCCESS_RATIO, prior_alpha=1.0, prior_beta=1.0)
    certificates = np.zeros(5, dtype=np.int64)
    ratio = reputation_scores(
        outcomes, n_providers=5, active_certificates=certificates, now_ms=NOW_MS, params=params
    )
    spec = reputation_scores(
        outcomes, n_providers=5, active_certificates=certificates, now_ms=NOW_MS
    )
    for p in range(5):
        mine = [r for r in rows if r[0] == p]
        ok = sum(
            r[2] in (OutcomeKind.SUCCESS, OutcomeKind.LATE, OutcomeKind.DISPUTE_WON) for r in mine
        )
        assert ratio.score[p] == pytest.approx((ok + 1) / (len(mine) + 2), abs=1e-15)
    assert np.array_equal(ratio.success_rate, spec.success_rate)
    assert np.array_equal(ratio.tier, tiers_for(ratio.score, ratio.contracts))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.integers(0, 3),
                st.integers(0, 3 * DAY_MS),
                st.sampled_from(list(OutcomeKind)),
                st.integers(0, 10**6),
            ),
            max_size=12,
        ),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.integers(0, 5 * DAY_MS), min_size=12, max_size=12),
    params_strategy,
    st.lists(st.integers(0, 3), max_size=2),
)
def test_the_running_tally_equals_the_full_recomputation(
    batches: list[list[tuple[int, int, OutcomeKind, int]]],
    gaps_ms: list[int],
    params: ReputationParams,
    wiped: list[int],
) -> None:
    # The simulator's per-tick call: outcomes arrive in batches, each batch no later than the
    # time it is tallied at; the tally answers what reputation_scores of all of them answers.
    certificates = np.array([0, 1, 2, 3], dtype=np.int64)
    tally = ReputationTally.empty(4)
    seen: list[tuple[int, int, int, int]] = []
    now = 0
    for batch, gap in zip(batches, gaps_ms, strict=False):
        now += gap
        rows = [(p, max(0, now - age), int(kind), value) for p, age, kind, value in batch]
        columns = Outcomes.from_columns(
            provider_index=[r[0] for r in rows],
            at_ms=[r[1] for r in rows],
            kind=[r[2] for r in rows],
            value_minor=[r[3] for r in rows],
        )
        tally = tally_outcomes(tally, columns, now_ms=now, params=params)
        seen += rows
        if wiped and len(seen) % 3 == 0:
            tally = tally.without_providers(np.array(wiped, dtype=np.int64))
            seen = [r for r in seen if r[0] not in wiped]
        later = now + gap // 2
        everything = Outcomes.from_columns(
            provider_index=[r[0] for r in seen],
            at_ms=[r[1] for r in seen],
            kind=[r[2] for r in seen],
            value_minor=[r[3] for r in seen],
        )
        full = reputation_scores(
            everything, n_providers=4, active_certificates=certificates, now_ms=later, params=params
        )
        running = reputation_from_tally(
            tally, active_certificates=certificates, now_ms=later, params=params
        )
        assert np.array_equal(running.contracts, full.contracts)
        assert np.array_equal(running.success_rate, full.success_rate)
        assert np.array_equal(running.consistency_score, full.consistency_score)
        np.testing.assert_allclose(running.transaction_score, full.transaction_score, rtol=1e-12)
        np.testing.assert_allclose(running.score, full.score, rtol=1e-12)
        near = np.zeros(4, dtype=bool)
        for threshold in TIER_THRESHOLDS:
            near |= np.abs(full.score - threshold.score_min) < 1e-9
        assert np.array_equal(running.tier[~near], full.tier[~near])

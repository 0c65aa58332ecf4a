"""Incentive tests: bidders that learn profit, and the deviation gain of every strategy.

Small seeded markets (seconds each): the EXP3 bandit learns the profitable markup, honest
against honest gains exactly 0 under common random numbers, every adversary runs and gets an
interval, and certificate farming gains nothing under the core's certification rule.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aex.cli import main
from aex.sim import _core, engine, incentives, strategies
from aex.sim.scenario import ScenarioParams, parse_scenario

ZERO = {"trust": 0.0, "sample_work": 0.0, "sla": 0.0, "certification": 0.0}
NEW_ADVERSARIES = ("sybil", "collusion", "on_off", "self_dealing", "cert_farmer")


def small_market(**changes: Any) -> ScenarioParams:
    table: dict[str, Any] = {
        "name": "small",
        "ticks": 30,
        "seed": 5,
        "block_ticks": 3,
        "market": {"work_per_tick": 12, "consumers": 20, "exit_min_contracts": 0},
        "providers": [
            {"strategy": "honest", "count": 12, "bid_probability": 0.4},
            {"strategy": "overconfident", "count": 3, "bid_probability": 0.4},
        ],
    }
    table.update(changes)
    return parse_scenario(table)


def bandit_monopoly() -> ScenarioParams:
    # One bandit, alone in the market, bids on every item; budgets are far above its prices, so
    # every arm wins every auction and the highest markup is the most profitable arm.
    return parse_scenario(
        {
            "name": "monopoly",
            "ticks": 150,
            "seed": 3,
            "block_ticks": 1,
            "market": {
                "work_per_tick": 4,
                "consumers": 5,
                "budget_min_major": 20.0,
                "budget_max_major": 30.0,
                "exit_min_contracts": 0,
                "dispute_probability": 0.0,
            },
            "providers": [
                {
                    "strategy": "bandit",
                    "count": 1,
                    "bid_probability": 1.0,
                    "quality_alpha": 50.0,
                    "quality_beta": 1.0,
                    "cost_min_major": 1.0,
                    "cost_max_major": 1.0,
                    "params": {
                        "bandit_gamma": 0.1,
                        "bandit_eta": 0.05,
                        "arm_markup_max": 3.0,
                        "reward_scale": 4.0,
                    },
                }
            ],
        }
    )


def test_the_bandit_learns_to_play_the_most_profitable_markup() -> None:
    params = bandit_monopoly()
    streams = engine.Streams.spawn(params.seed or 0, 0)
    population, state = engine.init(streams.population, params)
    while state.tick < params.ticks:
        state, _ = engine.step(streams, state, params, population, params.weights)
    assert state.bandit_log_weight is not None
    p = strategies.bandit_probabilities(state.bandit_log_weight, population.params)[0]
    by_markup = p.reshape(strategies.BANDIT_MARKUP_ARMS, strategies.BANDIT_CONFIDENCE_ARMS).sum(1)
    assert int(np.argmax(by_markup)) == strategies.BANDIT_MARKUP_ARMS - 1
    assert by_markup[-1] > 2.0 / strategies.BANDIT_MARKUP_ARMS  # well above uniform (0.2)


def test_the_bandit_adapts_its_claim_to_the_weights_it_is_scored_under() -> None:
    # Under confidence-heavy weights the bandits learn to claim the top confidence arm more
    # than under weights that ignore confidence: they re-adapt to the scoring rule.
    def claims(weights: dict[str, float]) -> float:
        params = small_market(
            ticks=120,
            block_ticks=1,
            providers=[
                {"strategy": "honest", "count": 6, "bid_probability": 0.5},
                {
                    "strategy": "bandit",
                    "count": 6,
                    "bid_probability": 0.5,
                    "params": {"bandit_eta": 0.05, "arm_confidence_min": 0.0},
                },
            ],
            scoring={"weights": weights},
        )
        streams = engine.Streams.spawn(params.seed or 0, 0)
        population, state = engine.init(streams.population, params)
        while state.tick < params.ticks:
            state, _ = engine.step(streams, state, params, population, params.weights)
        assert state.bandit_log_weight is not None
        bandit = population.strategy_code == strategies.CODE["bandit"]
        p = strategies.bandit_probabilities(state.bandit_log_weight, population.params)[bandit]
        _, confidence = strategies.bandit_arms(population.params)
        return float((p * confidence[bandit]).sum(axis=1).mean())

    heavy = claims({"price": 0.3, "confidence": 0.7, **ZERO})
    blind = claims({"price": 0.7, "confidence": 0.0, **{**ZERO, "trust": 0.3}})
    assert heavy > blind


def test_honest_against_honest_gains_exactly_zero_under_common_random_numbers() -> None:
    gains = incentives.deviation_gains(small_market(), ["honest"], [1, 2, 3])
    row = gains.row(0, named=True)
    assert (row["mean"], row["ci_low"], row["ci_high"], row["n_seeds"]) == (0.0, 0.0, 0.0, 3)


def test_a_deviation_changes_only_the_switched_providers_strategy() -> None:
    params = dataclasses.replace(small_market(), seed=2)
    base_pop, _, slots = incentives.play(params)
    pop, _, same = incentives.play(params, strategy="collusion")
    assert np.array_equal(slots, same)
    changed = np.flatnonzero(pop.strategy_code != base_pop.strategy_code)
    assert np.array_equal(changed, slots)
    assert np.array_equal(pop.quality, base_pop.quality)
    assert np.array_equal(pop.cost_minor, base_pop.cost_minor)


def test_every_adversary_runs_and_its_gain_has_an_interval() -> None:
    names = (*NEW_ADVERSARIES, "bandit")
    gains = incentives.deviation_gains(small_market(), names, [1, 2])
    assert gains["strategy"].to_list() == list(names)
    for row in gains.iter_rows(named=True):
        assert row["n_seeds"] == 2
        assert np.isfinite([row["mean"], row["ci_low"], row["ci_high"]]).all()
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    assert incentives.worst_upper_bound(gains) == float(gains["ci_high"].max())


def test_the_binding_constraint_is_the_largest_upper_bound_of_the_strategies_asked_for() -> None:
    rows = [
        {"scenario": "a", "strategy": "learning", "ci_high": 9.0},
        {"scenario": "a", "strategy": "sybil", "ci_high": -1.0},
        {"scenario": "b", "strategy": "sybil", "ci_high": 0.5},
        {"scenario": "b", "strategy": "whitewasher", "ci_high": 0.2},
    ]
    assert incentives.binding_constraint(rows) == rows[0]
    assert incentives.binding_constraint(rows, strategies.ATTACKER_STRATEGIES) == rows[2]
    assert incentives.binding_constraint(rows, ["whitewasher"]) == rows[3]
    assert incentives.binding_constraint(rows, ["collusion"]) is None
    assert incentives.binding_constraint([]) is None


def test_certificate_farming_gains_nothing_under_the_core_rule() -> None:
    assert _core.SELF_ASSERTED_COUNTS is False
    gains = incentives.deviation_gains(small_market(), ["cert_farmer"], [1, 2, 3])
    row = gains.row(0, named=True)
    assert row["ci_low"] <= 0.0
    assert row["ci_high"] <= 0.0


def test_wash_trades_cost_the_fee_and_under_the_providers_own_tenant_do_not_happen() -> None:
    params = small_market()
    washing = incentives.deviation_gains(params, ["self_dealing"], [1, 2])
    refused_params = small_market(
        providers=[
            {"strategy": "honest", "count": 12, "bid_probability": 0.4},
            {
                "strategy": "self_dealing",
                "count": 1,
                "bid_probability": 0.4,
                "params": {"wash_same_tenant": 1.0},
            },
        ]
    )
    refused = incentives.deviation_gains(refused_params, ["self_dealing"], [1, 2])
    assert _core.self_dealing_admitted(same_tenant=True) is False
    assert refused.row(0, named=True)["mean"] == 0.0  # no trade, no fee, nothing changes
    assert washing.row(0, named=True)["mean"] != 0.0


def test_every_block_exposes_its_wash_trades_with_their_fees_and_evidence() -> None:
    params = small_market(
        providers=[
            {"strategy": "honest", "count": 12, "bid_probability": 0.4},
            {"strategy": "self_dealing", "count": 2, "bid_probability": 0.4},
            {
                "strategy": "self_dealing",
                "count": 1,
                "bid_probability": 0.4,
                "params": {"wash_same_tenant": 1.0},
            },
        ]
    )
    streams = engine.Streams.spawn(params.seed or 0, 0)
    population, state = engine.init(streams.population, params)
    dealers = np.flatnonzero(population.strategy_code == strategies.CODE["self_dealing"])
    own_tenant = dealers[population.params["wash_same_tenant"][dealers] >= 0.5]
    seen = 0
    while state.tick < params.ticks:
        identity_of = state.identity_id.copy()
        state, log = engine.step(streams, state, params, population, params.weights)
        wash = log.wash_trades
        settled = int(log.tables["settlements"]["fee_minor"].sum())
        assert log.fee_minor == settled + int(wash["fee_minor"].sum())  # the block's fees
        assert set(wash["slot"].tolist()) <= set(dealers.tolist())
        assert (wash["provider_id"] == identity_of[wash["slot"]]).all()
        refused = np.isin(wash["slot"], own_tenant)
        assert (wash["admitted"] == ~refused).all()  # the core's bid admission
        assert (wash["fee_minor"][refused] == 0).all()
        assert not wash["evidence"][refused].any()
        fee, _ = _core.split_fee_columns(wash["price_minor"], fee_bps=params.scoring.fee_bps)
        assert (wash["fee_minor"][~refused] == fee[~refused]).all()
        evidence = _core.evidence_mask(wash["price_minor"], currency=engine.SIM_CURRENCY)
        assert (wash["evidence"] == (evidence & ~refused)).all()
        # a wash trade's outcome moves the dealer's reputation, so the tick's snapshot has it
        shown = set(
            zip(
                log.tables["reputation"]["tick"].tolist(),
                log.tables["reputation"]["provider_id"].tolist(),
                strict=True,
            )
        )
        moved = wash["evidence"]
        assert (
            set(zip(wash["tick"][moved].tolist(), wash["provider_id"][moved].tolist(), strict=True))
            <= shown
        )
        seen += int(wash["tick"].size)
    assert seen > 0


def test_aex_incentives_prints_the_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(
        'name = "small"\nticks = 12\nseed = 4\nblock_ticks = 3\n'
        "[market]\nwork_per_tick = 8\nconsumers = 10\n"
        '[[providers]]\nstrategy = "honest"\ncount = 10\nbid_probability = 0.4\n'
    )
    code = main(
        [
            "incentives",
            str(scenario),
            "--seeds",
            "2",
            "--strategies",
            "honest,sybil",
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    for phrase in ("deviation gain", "sybil", "ci_high"):
        assert phrase in out

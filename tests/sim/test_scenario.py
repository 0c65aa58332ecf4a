"""Scenario files parse into frozen params; errors name the field and list known names."""

from __future__ import annotations

import dataclasses

import pytest

from aex.sim.scenario import SCENARIOS, ScenarioError, parse_scenario, scenario_named
from aex.sim.strategies import strategy_named


def test_reference_scenario_states_the_issue_numbers() -> None:
    params = scenario_named("reference_reverse_auction")
    group = params.providers[0]
    assert (group.count, group.quality_alpha, group.quality_beta) == (1000, 4.0, 2.0)
    assert (group.cost_min_major, group.cost_max_major) == (0.5, 1.5)
    assert (group.markup_min, group.markup_max, group.bid_probability) == (0.05, 0.30, 0.05)
    assert params.market.work_per_tick == 100
    w = params.weights
    assert (w.price, w.trust, w.confidence, w.sla, w.certification) == (
        0.35,
        0.30,
        0.10,
        0.15,
        0.10,
    )
    assert params.scoring.fee_bps == 1500


def test_params_are_frozen() -> None:
    params = parse_scenario({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.ticks = 5  # type: ignore[misc]


def test_scenarios_run_the_exchange_rules_and_the_benchmark_its_named_rule() -> None:
    from aex.core.reputation import DEFAULT_REPUTATION_PARAMS, ReputationRule

    default = scenario_named("default").rules
    assert default.calibration is None
    assert default.reputation == DEFAULT_REPUTATION_PARAMS
    reference = scenario_named("reference_reverse_auction").rules
    assert reference.reputation.rule is ReputationRule.SUCCESS_RATIO
    assert (reference.reputation.prior_alpha, reference.reputation.prior_beta) == (1.0, 1.0)


def test_the_payment_rule_is_read_from_the_scoring_table_first_score_by_default() -> None:
    from aex.core.payment_rule import FIRST_SCORE, SECOND_SCORE

    assert parse_scenario({}).rules.payment_rule is FIRST_SCORE
    assert scenario_named("default").rules.payment_rule is FIRST_SCORE
    params = parse_scenario({"scoring": {"payment_rule": "second_score", "preset": "lowest_price"}})
    assert params.scoring.payment_rule == "second_score"
    assert params.rules.payment_rule is SECOND_SCORE
    assert params.rules.weights == params.weights


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"ticks": "ten"}, "ticks"),
        ({"ticks": 0}, "ticks"),
        ({"market": {"work_per_tick": 1.5}}, "market.work_per_tick"),
        ({"market": {"budget_min_major": 3.0, "budget_max_major": 1.0}}, "market.budget_min_major"),
        ({"providers": [{}, {"count": -3}]}, "providers[1].count"),
        ({"providers": [{"colour": "red"}]}, "providers[0].colour"),
        ({"scoring": {"weights": {"price": 0.5}}}, "scoring.weights"),
        ({"log": {"bids": "some"}}, "log.bids"),
        ({"market": []}, "market"),
        ({"market": {"bid_window_ms": 400_000}}, "market.bid_window_ms"),
        ({"market": {"pricing": "gouging"}}, "market.pricing"),
        ({"providers": [{"enters_on_profit": 1}]}, "providers[0].enters_on_profit"),
        ({"reputation": {"rule": "beta"}}, "reputation.rule"),
        ({"scoring": {"calibration": {"evidence_contracts": 0}}}, "scoring.calibration"),
        ({"scoring": {"payment_rule": "vickrey"}}, "scoring.payment_rule"),
        ({"scoring": {"payment_rule": 2}}, "scoring.payment_rule"),
    ],
)
def test_scenario_parse_errors_name_the_field(table: dict[str, object], field: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(table)
    assert str(caught.value).startswith(field)


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"providers": [{"strategy": "sneaky"}]})
    message = str(caught.value)
    assert message.startswith("providers[0].strategy")
    for name in (
        "honest",
        "overconfident",
        "low_baller",
        "reputation_farmer",
        "whitewasher",
        "learning",
    ):
        assert name in message
    with pytest.raises(KeyError, match="known strategies"):
        strategy_named("sneaky")


def test_unknown_strategy_parameter_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"providers\[0\].params"):
        parse_scenario({"providers": [{"strategy": "honest", "params": {"underbid": 0.1}}]})


def test_unknown_scenario_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="reference_reverse_auction"):
        scenario_named("nope")
    assert {"default", "reference_reverse_auction"} <= set(SCENARIOS)


def test_every_shipped_scenario_parses() -> None:
    for name in SCENARIOS:
        assert scenario_named(name).name == name

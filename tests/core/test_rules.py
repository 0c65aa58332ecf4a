"""aex/core/rules.py: the exchange's rules file (weights, calibration, reputation and payment
rules)."""

from __future__ import annotations

import pytest

from aex.core.calibration import ConfidenceCalibration
from aex.core.payment_rule import FIRST_SCORE, SECOND_SCORE
from aex.core.reasons import Rejected
from aex.core.reputation import DEFAULT_REPUTATION_PARAMS, ReputationRule
from aex.core.rules import SPEC_RULES, ExchangeRules, rules_from_json, rules_to_json
from aex.core.scoring import PRESETS, weights_to_json


def test_a_plain_weights_file_is_the_spec_rules() -> None:
    rules = rules_from_json(weights_to_json(PRESETS["balanced"]))
    assert rules == SPEC_RULES
    assert rules.calibration is None
    assert rules.reputation == DEFAULT_REPUTATION_PARAMS
    assert rules.payment_rule is FIRST_SCORE


def test_the_payment_rule_round_trips_and_first_score_is_written_as_absent() -> None:
    document = {**weights_to_json(PRESETS["balanced"]), "payment_rule": "second_score"}
    rules = rules_from_json(document)
    assert isinstance(rules, ExchangeRules)
    assert rules.payment_rule is SECOND_SCORE
    assert rules_to_json(rules) == document
    assert rules_from_json(rules_to_json(rules)) == rules
    explicit = rules_from_json(
        {**weights_to_json(PRESETS["balanced"]), "payment_rule": "first_score"}
    )
    assert explicit == SPEC_RULES
    assert rules_to_json(SPEC_RULES) == weights_to_json(PRESETS["balanced"])  # unchanged bytes


def test_calibration_and_reputation_rule_round_trip() -> None:
    document = {
        **weights_to_json(PRESETS["lowest_price"]),
        "confidence_calibration": {"evidence_contracts": 5},
        "reputation": {"rule": "success_ratio", "prior_alpha": 1, "prior_beta": 1},
    }
    rules = rules_from_json(document)
    assert isinstance(rules, ExchangeRules)
    assert rules.calibration == ConfidenceCalibration(evidence_contracts=5.0)
    assert rules.reputation.rule is ReputationRule.SUCCESS_RATIO
    assert (rules.reputation.prior_alpha, rules.reputation.prior_beta) == (1.0, 1.0)
    assert rules_from_json(rules_to_json(rules)) == rules


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (
            {"confidence_calibration": {"evidence_contracts": 0}},
            "confidence_calibration.evidence_contracts",
        ),
        ({"confidence_calibration": {"k": 1}}, "confidence_calibration.k"),
        ({"confidence_calibration": 3}, "confidence_calibration"),
        ({"reputation": {"rule": "beta"}}, "reputation.rule"),
        ({"reputation": {"prior_alpha": "1"}}, "reputation.prior_alpha"),
        ({"surprise": 1}, "surprise"),
        ({"payment_rule": "vickrey"}, "payment_rule"),
        ({"payment_rule": 2}, "payment_rule"),
        ({"payment_rule": None}, "payment_rule"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_the_field(extra: dict[str, object], field: str) -> None:
    rejected = rules_from_json({**weights_to_json(PRESETS["balanced"]), **extra})
    assert isinstance(rejected, Rejected)
    assert rejected.field == field

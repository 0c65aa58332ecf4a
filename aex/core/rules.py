# Rule: the exchange's configurable market rules as one record (scoring weights, confidence
# calibration, reputation rule, payment rule) and their file format are decided here and only
# here.
#
# Theory of operation. Both drivers run the market under an `ExchangeRules`: the live exchange
# loads it from `aex serve --weights FILE` (serve/settings.py), the simulator from its
# scenario (aex/sim/scenario.py). The file is the weights document of aex/core/scoring.py
# (`{"name": ..., "weights": {...}}`) with three optional keys:
#
#     "confidence_calibration": {"evidence_contracts": 10, "prior_alpha": 1, "prior_beta": 1}
#     "reputation": {"rule": "spec" | "success_ratio", "prior_alpha": 2, "prior_beta": 2}
#     "payment_rule": "first_score" | "second_score"
#
# Absent keys mean the spec: plain stated confidence, the five-component reputation with
# DEFAULT_REPUTATION_PARAMS, and the winner paid its bid price (first score; the second-score
# rule is aex/core/payment_rule.py). A setting exists only here; a scenario cannot select a rule the
# exchange could not run.
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aex.core.calibration import ConfidenceCalibration
from aex.core.payment_rule import FIRST_SCORE, PaymentRule
from aex.core.reasons import Rejected, WeightsRejectReason
from aex.core.reputation import DEFAULT_REPUTATION_PARAMS, ReputationParams, ReputationRule
from aex.core.scoring import PRESETS, Weights, weights_from_json, weights_to_json

__all__ = [
    "SAMPLE_PROVIDED_QUALITY",
    "SPEC_RULES",
    "ExchangeRules",
    "rules_from_json",
    "rules_to_json",
]

# The exchange does not grade samples yet: a provided sample scores this quality (the core's
# neutral sample score applies when none is provided). Both drivers use it.
SAMPLE_PROVIDED_QUALITY: Final = 1.0


@dataclass(frozen=True, slots=True)
class ExchangeRules:
    """The rules an exchange runs: weights, optional confidence calibration, reputation, and
    what the winner is paid (its bid under FIRST_SCORE, the spec)."""

    weights: Weights
    calibration: ConfidenceCalibration | None = None
    reputation: ReputationParams = DEFAULT_REPUTATION_PARAMS
    payment_rule: PaymentRule = FIRST_SCORE


SPEC_RULES: Final = ExchangeRules(PRESETS["balanced"])

_CALIBRATION_KEYS: Final = ("evidence_contracts", "prior_alpha", "prior_beta")
_REPUTATION_KEYS: Final = ("rule", "prior_alpha", "prior_beta")


def _invalid(field: str, detail: str) -> Rejected[WeightsRejectReason]:
    return Rejected(WeightsRejectReason.DOCUMENT_INVALID, field, detail)


def _positive_numbers(
    table: object, keys: tuple[str, ...], where: str
) -> dict[str, float] | Rejected[WeightsRejectReason]:
    if not isinstance(table, Mapping):
        return _invalid(where, "expected an object")
    unknown = sorted(str(key) for key in table if key not in keys)
    if unknown:
        return _invalid(f"{where}.{unknown[0]}", "unknown key")
    numbers: dict[str, float] = {}
    for key, value in table.items():
        if key == "rule":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _invalid(f"{where}.{key}", "expected a number")
        if not math.isfinite(value) or value <= 0:
            return _invalid(f"{where}.{key}", "expected a positive finite number")
        numbers[str(key)] = float(value)
    return numbers


def rules_from_json(document: object) -> ExchangeRules | Rejected[WeightsRejectReason]:
    """Reads a rules file: the weights document plus the optional calibration, reputation and
    payment rule (an unknown payment rule is refused naming the field "payment_rule")."""
    if not isinstance(document, Mapping):
        return _invalid("weights", "expected an object")
    extras = ("confidence_calibration", "reputation", "payment_rule")
    weights = weights_from_json({k: v for k, v in document.items() if k not in extras})
    if isinstance(weights, Rejected):
        return weights
    calibration = None
    if "confidence_calibration" in document:
        numbers = _positive_numbers(
            document["confidence_calibration"], _CALIBRATION_KEYS, "confidence_calibration"
        )
        if isinstance(numbers, Rejected):
            return numbers
        calibration = ConfidenceCalibration(**numbers)
    reputation = DEFAULT_REPUTATION_PARAMS
    if "reputation" in document:
        table = document["reputation"]
        numbers = _positive_numbers(table, _REPUTATION_KEYS, "reputation")
        if isinstance(numbers, Rejected):
            return numbers
        assert isinstance(table, Mapping)
        rule_name = table.get("rule", ReputationRule.SPEC.value)
        known = [rule.value for rule in ReputationRule]
        if rule_name not in known:
            return _invalid("reputation.rule", f"one of {known}")
        reputation = dataclasses.replace(
            DEFAULT_REPUTATION_PARAMS,
            rule=ReputationRule(rule_name),
            prior_alpha=numbers.get("prior_alpha", DEFAULT_REPUTATION_PARAMS.prior_alpha),
            prior_beta=numbers.get("prior_beta", DEFAULT_REPUTATION_PARAMS.prior_beta),
        )
    payment_rule = FIRST_SCORE
    if "payment_rule" in document:
        known_rules = [rule.value for rule in PaymentRule]
        if document["payment_rule"] not in known_rules:
            return _invalid("payment_rule", f"one of {known_rules}")
        payment_rule = PaymentRule(document["payment_rule"])
    return ExchangeRules(weights, calibration, reputation, payment_rule)


def rules_to_json(rules: ExchangeRules, *, name: str | None = None) -> dict[str, object]:
    """The rules file format (the weights document when the rules are otherwise the spec's)."""
    document = weights_to_json(rules.weights, name=name)
    if rules.calibration is not None:
        document["confidence_calibration"] = dataclasses.asdict(rules.calibration)
    if rules.reputation != DEFAULT_REPUTATION_PARAMS:
        document["reputation"] = {
            "rule": rules.reputation.rule.value,
            "prior_alpha": rules.reputation.prior_alpha,
            "prior_beta": rules.reputation.prior_beta,
        }
    if rules.payment_rule is not FIRST_SCORE:
        document["payment_rule"] = rules.payment_rule.value
    return document

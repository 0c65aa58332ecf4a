"""aex/core/criteria.py: success criteria are validated strictly and checked monotonically."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aex.core import limits
from aex.core.criteria import (
    Comparison,
    Criterion,
    CriterionStatus,
    evaluate_criteria,
    parse_criteria,
    parse_metrics,
)
from aex.core.reasons import CriteriaRejectReason, MetricsRejectReason, Rejected

SPEC_CRITERIA = [{"metric": "coverage", "threshold": Decimal("0.8")}]


def test_spec_example_criterion_defaults_to_at_least() -> None:
    assert parse_criteria(SPEC_CRITERIA) == (Criterion("coverage", 0.8, Comparison.AT_LEAST),)


def test_every_comparison_is_read() -> None:
    criteria = parse_criteria(
        [
            {"metric": "coverage", "threshold": 0.8, "comparison": ">="},
            {"metric": "coverage", "threshold": 1, "comparison": "<="},
            {"metric": "tests.failed", "threshold": 1, "comparison": "<"},
            {"metric": "score", "threshold": -2, "comparison": ">"},
        ]
    )
    assert not isinstance(criteria, Rejected)
    assert {c.comparison for c in criteria} == set(Comparison)


def test_no_criteria_is_allowed_and_always_met() -> None:
    assert parse_criteria([]) == ()
    assert evaluate_criteria((), {}).success


@pytest.mark.parametrize(
    ("value", "reason", "field"),
    [
        ({"metric": "x"}, CriteriaRejectReason.CRITERIA_TYPE_INVALID, "success_criteria"),
        (
            [{"metric": "x", "threshold": 1}] * (limits.criteria_per_work_max + 1),
            CriteriaRejectReason.CRITERIA_TOO_MANY,
            "success_criteria",
        ),
        (["coverage"], CriteriaRejectReason.CRITERION_TYPE_INVALID, "success_criteria[0]"),
        (
            [{"metric": "x", "threshold": 1, "weight": 2}],
            CriteriaRejectReason.CRITERION_FIELD_UNKNOWN,
            "success_criteria[0].weight",
        ),
        (
            [{"threshold": 1}],
            CriteriaRejectReason.CRITERION_METRIC_INVALID,
            "success_criteria[0].metric",
        ),
        (
            [{"metric": "Coverage", "threshold": 1}],
            CriteriaRejectReason.CRITERION_METRIC_INVALID,
            "success_criteria[0].metric",
        ),
        (
            [{"metric": "x" * (limits.metric_name_chars_max + 1), "threshold": 1}],
            CriteriaRejectReason.CRITERION_METRIC_INVALID,
            "success_criteria[0].metric",
        ),
        (
            [{"metric": "x"}],
            CriteriaRejectReason.CRITERION_THRESHOLD_INVALID,
            "success_criteria[0].threshold",
        ),
        (
            [{"metric": "x", "threshold": "0.8"}],
            CriteriaRejectReason.CRITERION_THRESHOLD_INVALID,
            "success_criteria[0].threshold",
        ),
        (
            [{"metric": "x", "threshold": True}],
            CriteriaRejectReason.CRITERION_THRESHOLD_INVALID,
            "success_criteria[0].threshold",
        ),
        (
            [{"metric": "x", "threshold": math.nan}],
            CriteriaRejectReason.CRITERION_THRESHOLD_NOT_FINITE,
            "success_criteria[0].threshold",
        ),
        (
            [{"metric": "x", "threshold": Decimal("1e999")}],
            CriteriaRejectReason.CRITERION_THRESHOLD_NOT_FINITE,
            "success_criteria[0].threshold",
        ),
        (
            [{"metric": "x", "threshold": 10**400}],
            CriteriaRejectReason.CRITERION_THRESHOLD_NOT_FINITE,
            "success_criteria[0].threshold",
        ),
        (
            [{"metric": "x", "threshold": 1, "comparison": "=="}],
            CriteriaRejectReason.CRITERION_COMPARISON_INVALID,
            "success_criteria[0].comparison",
        ),
        (
            [{"metric": "x", "threshold": 1}, {"metric": "x", "threshold": 2}],
            CriteriaRejectReason.CRITERION_DUPLICATE,
            "success_criteria[1]",
        ),
    ],
)
def test_malformed_criteria_are_rejected_naming_the_item(
    value: object, reason: CriteriaRejectReason, field: str
) -> None:
    result = parse_criteria(value)
    assert isinstance(result, Rejected)
    assert (result.reason, result.field) == (reason, field)


def test_spec_coverage_criterion_is_met_unmet_or_missing() -> None:
    criteria = parse_criteria(SPEC_CRITERIA)
    assert not isinstance(criteria, Rejected)
    met = evaluate_criteria(criteria, {"coverage": 0.85})
    unmet = evaluate_criteria(criteria, {"coverage": 0.79})
    missing = evaluate_criteria(criteria, {"lines": 1000.0})
    assert [v.status for v in met.verdicts] == [CriterionStatus.MET]
    assert met.success
    assert [v.status for v in unmet.verdicts] == [CriterionStatus.UNMET]
    assert not unmet.success
    assert [v.status for v in missing.verdicts] == [CriterionStatus.MISSING]
    assert not missing.success
    assert evaluate_criteria(criteria, {"coverage": 0.8}).success  # the threshold itself meets


def test_result_json_lists_each_verdict() -> None:
    criteria = (Criterion("coverage", 0.8), Criterion("tests.failed", 0.0, Comparison.AT_MOST))
    result = evaluate_criteria(criteria, {"coverage": 0.9})
    assert result.to_json() == {
        "success": False,
        "criteria": [
            {
                "metric": "coverage",
                "threshold": 0.8,
                "comparison": ">=",
                "status": "met",
                "observed": 0.9,
            },
            {
                "metric": "tests.failed",
                "threshold": 0.0,
                "comparison": "<=",
                "status": "missing",
                "observed": None,
            },
        ],
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([1.0], MetricsRejectReason.METRICS_TYPE_INVALID),
        (
            {f"m{i}": 1 for i in range(limits.metrics_per_report_max + 1)},
            MetricsRejectReason.METRICS_TOO_MANY,
        ),
        ({"Bad Name": 1}, MetricsRejectReason.METRIC_NAME_INVALID),
        ({"coverage": "0.9"}, MetricsRejectReason.METRIC_VALUE_INVALID),
        ({"coverage": None}, MetricsRejectReason.METRIC_VALUE_INVALID),
        ({"coverage": math.inf}, MetricsRejectReason.METRIC_VALUE_NOT_FINITE),
        ({"coverage": Decimal("NaN")}, MetricsRejectReason.METRIC_VALUE_NOT_FINITE),
    ],
)
def test_malformed_metrics_are_rejected(value: object, reason: MetricsRejectReason) -> None:
    result = parse_metrics(value)
    assert isinstance(result, Rejected)
    assert result.reason is reason


def test_metrics_read_as_floats() -> None:
    assert parse_metrics({"coverage": Decimal("0.85"), "lines": 10}) == {
        "coverage": 0.85,
        "lines": 10.0,
    }


finite = st.floats(-1e12, 1e12, allow_nan=False)


@given(
    threshold=finite,
    comparison=st.sampled_from(list(Comparison)),
    low=finite,
    high=finite,
)
def test_evaluation_is_monotone_in_the_metric(
    threshold: float, comparison: Comparison, low: float, high: float
) -> None:
    low, high = min(low, high), max(low, high)
    criteria = (Criterion("m", threshold, comparison),)
    met_low = evaluate_criteria(criteria, {"m": low}).success
    met_high = evaluate_criteria(criteria, {"m": high}).success
    if comparison in (Comparison.AT_LEAST, Comparison.MORE_THAN):
        assert met_high or not met_low  # raising the metric never loses a >= / > criterion
    else:
        assert met_low or not met_high  # lowering it never loses a <= / < criterion


@given(st.lists(st.tuples(st.sampled_from("abc"), finite), max_size=6), st.data())
def test_success_means_every_criterion_met(
    pairs: list[tuple[str, float]], data: st.DataObject
) -> None:
    criteria = tuple(
        {(m, Comparison.AT_LEAST): Criterion(m, t) for m, t in pairs}.values()
    )  # one per metric
    metrics = data.draw(st.dictionaries(st.sampled_from("abcd"), finite))
    result = evaluate_criteria(criteria, metrics)
    assert len(result.verdicts) == len(criteria)
    assert result.success == all(
        c.metric in metrics and metrics[c.metric] >= c.threshold for c in criteria
    )

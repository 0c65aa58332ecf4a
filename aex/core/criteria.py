# Rule: what a work's success criteria may say, what a provider's reported metrics may be, and
# whether the metrics meet the criteria, is decided here and only here.
#
# Theory of operation: the spec's work carries `success_criteria: [{ metric: "coverage",
# threshold: 0.8 }]`. A criterion is (metric, threshold, comparison), comparison one of >=, >,
# <=, < and ">=" when omitted ("at least the threshold" is what the spec's example means). The
# completion route receives `{results, metrics}`; `evaluate_criteria` checks each criterion
# against the metric of the same name: MET, UNMET, or MISSING when the provider did not report
# it. The contract succeeds when every criterion is MET (so no criteria means success), and a
# missing metric counts against the provider: the consumer asked for it. Equality is not a
# comparison on offer: metrics are measured floats, and "exactly 0 failures" is "<= 0".
# Evaluation is monotone: raising a metric never turns a >=/> criterion from MET to UNMET, and
# lowering one never does so for <=/< (tested).
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from aex.core import limits
from aex.core.reasons import CriteriaRejectReason, MetricsRejectReason, Rejected

__all__ = [
    "Comparison",
    "CriteriaResult",
    "Criterion",
    "CriterionStatus",
    "CriterionVerdict",
    "evaluate_criteria",
    "parse_criteria",
    "parse_metrics",
]

# A metric name is a lower-case identifier, dots allowed for namespacing ("tests.passed_ratio").
_METRIC_NAME: Final = re.compile(r"[a-z][a-z0-9_.]*")
_CRITERION_FIELDS: Final = frozenset({"metric", "threshold", "comparison"})


class Comparison(StrEnum):
    AT_LEAST = ">="
    MORE_THAN = ">"
    AT_MOST = "<="
    LESS_THAN = "<"


class CriterionStatus(StrEnum):
    MET = "met"
    UNMET = "unmet"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Criterion:
    """One success criterion: `metric comparison threshold`, e.g. coverage >= 0.8."""

    metric: str
    threshold: float
    comparison: Comparison = Comparison.AT_LEAST

    def __post_init__(self) -> None:
        assert _is_metric_name(self.metric)
        assert type(self.threshold) is float
        assert math.isfinite(self.threshold)

    def to_json(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "threshold": self.threshold,
            "comparison": self.comparison.value,
        }


@dataclass(frozen=True, slots=True)
class CriterionVerdict:
    """One criterion checked: its status and the observed value (None when missing)."""

    criterion: Criterion
    status: CriterionStatus
    observed: float | None

    def __post_init__(self) -> None:
        assert (self.observed is None) == (self.status is CriterionStatus.MISSING)


@dataclass(frozen=True, slots=True)
class CriteriaResult:
    """Every criterion's verdict, in the work's order, and whether all were met."""

    verdicts: tuple[CriterionVerdict, ...]
    success: bool

    def __post_init__(self) -> None:
        assert self.success == all(v.status is CriterionStatus.MET for v in self.verdicts)

    def to_json(self) -> dict[str, object]:
        return {
            "success": self.success,
            "criteria": [
                {**v.criterion.to_json(), "status": v.status.value, "observed": v.observed}
                for v in self.verdicts
            ],
        }


def parse_criteria(
    value: object, *, field: str = "success_criteria"
) -> tuple[Criterion, ...] | Rejected[CriteriaRejectReason]:
    """Validates a decoded `success_criteria` list into Criterion records.

    Args:
        value: the decoded JSON value: a list of {metric, threshold, comparison?} objects.
        field: the dotted name of the list in rejections; items are named `field[i].key`.

    Returns:
        The criteria in order, or the first Rejected (items in order; within an item, in
        CriteriaRejectReason order): CRITERIA_TYPE_INVALID (not a list), CRITERIA_TOO_MANY
        (more than limits.criteria_per_work_max), CRITERION_TYPE_INVALID (an item is not an
        object), CRITERION_FIELD_UNKNOWN, CRITERION_METRIC_INVALID (missing, not a lower-case
        identifier, longer than limits.metric_name_chars_max), CRITERION_THRESHOLD_INVALID
        (missing or not a number), CRITERION_THRESHOLD_NOT_FINITE, CRITERION_COMPARISON_INVALID,
        CRITERION_DUPLICATE (the same metric and comparison twice).
    """
    if not isinstance(value, list | tuple):
        return Rejected(CriteriaRejectReason.CRITERIA_TYPE_INVALID, field, "expected a list")
    if len(value) > limits.criteria_per_work_max:
        return Rejected(
            CriteriaRejectReason.CRITERIA_TOO_MANY,
            field,
            f"at most {limits.criteria_per_work_max} criteria",
        )
    criteria: list[Criterion] = []
    for index, item in enumerate(value):
        parsed = _parse_criterion(item, field=f"{field}[{index}]")
        if isinstance(parsed, Rejected):
            return parsed
        if any((c.metric, c.comparison) == (parsed.metric, parsed.comparison) for c in criteria):
            return Rejected(
                CriteriaRejectReason.CRITERION_DUPLICATE,
                f"{field}[{index}]",
                f"{parsed.metric} {parsed.comparison.value} is stated twice",
            )
        criteria.append(parsed)
    assert len(criteria) <= limits.criteria_per_work_max
    return tuple(criteria)


def _parse_criterion(item: object, *, field: str) -> Criterion | Rejected[CriteriaRejectReason]:
    if not isinstance(item, Mapping):
        return Rejected(CriteriaRejectReason.CRITERION_TYPE_INVALID, field, "expected an object")
    unknown = sorted(str(key) for key in item if key not in _CRITERION_FIELDS)
    if unknown:
        return Rejected(
            CriteriaRejectReason.CRITERION_FIELD_UNKNOWN, f"{field}.{unknown[0]}", "unknown field"
        )
    metric = item.get("metric")
    if not _is_metric_name(metric):
        return Rejected(
            CriteriaRejectReason.CRITERION_METRIC_INVALID,
            f"{field}.metric",
            "a lower-case identifier like 'coverage'",
        )
    assert isinstance(metric, str)
    threshold = _number(item.get("threshold"))
    if threshold is None:
        return Rejected(
            CriteriaRejectReason.CRITERION_THRESHOLD_INVALID, f"{field}.threshold", "a number"
        )
    if not math.isfinite(threshold):
        return Rejected(
            CriteriaRejectReason.CRITERION_THRESHOLD_NOT_FINITE, f"{field}.threshold", "finite"
        )
    comparison = item.get("comparison", Comparison.AT_LEAST.value)
    if comparison not in {c.value for c in Comparison}:
        return Rejected(
            CriteriaRejectReason.CRITERION_COMPARISON_INVALID,
            f"{field}.comparison",
            "one of >=, >, <=, <",
        )
    return Criterion(metric, threshold, Comparison(comparison))


def parse_metrics(
    value: object, *, field: str = "metrics"
) -> dict[str, float] | Rejected[MetricsRejectReason]:
    """Validates a provider's reported metrics: an object of metric name -> finite number.

    Returns:
        The metrics as floats, or the first Rejected: METRICS_TYPE_INVALID (not an object),
        METRICS_TOO_MANY (more than limits.metrics_per_report_max), then per entry in order
        METRIC_NAME_INVALID, METRIC_VALUE_INVALID (not a number), METRIC_VALUE_NOT_FINITE.
    """
    if not isinstance(value, Mapping):
        return Rejected(MetricsRejectReason.METRICS_TYPE_INVALID, field, "expected an object")
    if len(value) > limits.metrics_per_report_max:
        return Rejected(
            MetricsRejectReason.METRICS_TOO_MANY,
            field,
            f"at most {limits.metrics_per_report_max} metrics",
        )
    metrics: dict[str, float] = {}
    for name, raw in value.items():
        if not _is_metric_name(name):
            return Rejected(
                MetricsRejectReason.METRIC_NAME_INVALID, field, f"{str(name)[:80]!r} is not a name"
            )
        number = _number(raw)
        if number is None:
            return Rejected(MetricsRejectReason.METRIC_VALUE_INVALID, f"{field}.{name}", "number")
        if not math.isfinite(number):
            return Rejected(
                MetricsRejectReason.METRIC_VALUE_NOT_FINITE, f"{field}.{name}", "finite"
            )
        metrics[name] = number
    assert len(metrics) <= limits.metrics_per_report_max
    return metrics


def evaluate_criteria(
    criteria: tuple[Criterion, ...], metrics: Mapping[str, float]
) -> CriteriaResult:
    """Checks reported metrics against a work's success criteria.

    Args:
        criteria: the work's criteria (from parse_criteria).
        metrics: the provider's reported metrics (from parse_metrics).

    Returns:
        A CriteriaResult with one verdict per criterion, in order: MET when `observed
        comparison threshold` holds, UNMET when it does not, MISSING when the metric was not
        reported; success when every criterion is MET.
    """
    assert len(criteria) <= limits.criteria_per_work_max
    verdicts = tuple(_verdict(criterion, metrics.get(criterion.metric)) for criterion in criteria)
    success = all(v.status is CriterionStatus.MET for v in verdicts)
    if not criteria:
        assert success
    return CriteriaResult(verdicts=verdicts, success=success)


def _verdict(criterion: Criterion, observed: float | None) -> CriterionVerdict:
    if observed is None:
        return CriterionVerdict(criterion, CriterionStatus.MISSING, None)
    assert math.isfinite(observed)
    threshold = criterion.threshold
    holds = {
        Comparison.AT_LEAST: observed >= threshold,
        Comparison.MORE_THAN: observed > threshold,
        Comparison.AT_MOST: observed <= threshold,
        Comparison.LESS_THAN: observed < threshold,
    }[criterion.comparison]
    status = CriterionStatus.MET if holds else CriterionStatus.UNMET
    return CriterionVerdict(criterion, status, float(observed))


def _is_metric_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= limits.metric_name_chars_max
        and _METRIC_NAME.fullmatch(value) is not None
    )


# A JSON number as a float (ints, floats and the Decimals drivers decode); None for anything
# else, bools included. A Decimal too large for a float becomes inf, which callers refuse.
def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, int) and abs(value) > 2**53:
        return math.inf
    return float(value)

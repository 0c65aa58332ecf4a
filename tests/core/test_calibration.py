"""aex/core/calibration.py: the stated confidence shrunk toward the provider's record.

Properties: in [0, 1]; the claim itself with no record or no calibration; non-decreasing in
the claim and in the successes; the record wins as evidence grows, so a persistent overclaim
is scored near the realised rate; the columnar call equals the scalar one row by row.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aex.core.calibration import (
    DEFAULT_CONFIDENCE_CALIBRATION,
    ConfidenceCalibration,
    calibrated_confidence,
)

unit = st.floats(0.0, 1.0)
calibrations = st.builds(
    ConfidenceCalibration,
    evidence_contracts=st.floats(0.01, 1e4),
    prior_alpha=st.floats(0.01, 100.0),
    prior_beta=st.floats(0.01, 100.0),
)


@st.composite
def records(draw: st.DrawFn) -> tuple[int, int]:
    contracts = draw(st.integers(0, 10_000))
    return draw(st.integers(0, contracts)), contracts


@given(unit, records(), calibrations)
def test_calibrated_confidence_lies_in_the_unit_interval(
    stated: float, record: tuple[int, int], calibration: ConfidenceCalibration
) -> None:
    successes, contracts = record
    assert 0.0 <= calibrated_confidence(stated, successes, contracts, calibration) <= 1.0


@given(unit, calibrations)
def test_without_a_record_the_claim_is_scored_as_stated(
    stated: float, calibration: ConfidenceCalibration
) -> None:
    assert calibrated_confidence(stated, 0, 0, calibration) == stated


@given(unit, records())
def test_without_calibration_the_claim_is_scored_as_stated(
    stated: float, record: tuple[int, int]
) -> None:
    assert calibrated_confidence(stated, *record, None) == stated


@given(unit, unit, records(), calibrations)
def test_a_higher_claim_never_scores_lower(
    a: float, b: float, record: tuple[int, int], calibration: ConfidenceCalibration
) -> None:
    low, high = sorted((a, b))
    assert calibrated_confidence(low, *record, calibration) <= calibrated_confidence(
        high, *record, calibration
    )


@given(unit, records(), calibrations)
def test_one_more_success_in_place_of_a_failure_never_scores_lower(
    stated: float, record: tuple[int, int], calibration: ConfidenceCalibration
) -> None:
    successes, contracts = record
    if successes == contracts:
        return
    worse = calibrated_confidence(stated, successes, contracts, calibration)
    better = calibrated_confidence(stated, successes + 1, contracts, calibration)
    assert worse <= better


def test_a_long_record_replaces_an_overclaim_by_the_realised_rate() -> None:
    # claims 0.95, delivers 60 of 100: scored near 0.6, where the spec would score 0.95
    scored = calibrated_confidence(0.95, 60, 100, DEFAULT_CONFIDENCE_CALIBRATION)
    assert scored == pytest.approx(10 / 110 * 0.95 + 100 / 110 * 61 / 102)
    assert scored < 0.65
    honest = calibrated_confidence(0.6, 60, 100, DEFAULT_CONFIDENCE_CALIBRATION)
    assert abs(honest - 0.6) < abs(scored - 0.95)


@given(st.lists(st.tuples(unit, records()), min_size=1, max_size=30), calibrations)
def test_the_columnar_call_equals_the_scalar_call_row_by_row(
    rows: list[tuple[float, tuple[int, int]]], calibration: ConfidenceCalibration
) -> None:
    stated = np.array([r[0] for r in rows])
    successes = np.array([r[1][0] for r in rows])
    contracts = np.array([r[1][1] for r in rows])
    column = calibrated_confidence(stated, successes, contracts, calibration)
    for i, (claim, (s, n)) in enumerate(rows):
        assert column[i] == calibrated_confidence(claim, s, n, calibration)

# Rule: how a bid's stated confidence is checked against the provider's realised record (the
# confidence calibration) is decided here and only here.
#
# Theory of operation. The spec scores "Confidence (15%)" as the bid's stated number, so a
# provider that claims 0.99 on every bid collects the confidence weight whatever it delivers.
# Calibration shrinks the claim toward what the record shows:
#
#     calibrated = w × stated + (1 − w) × posterior,   w = k / (k + n)
#     posterior  = (prior_alpha + successes) / (prior_alpha + prior_beta + n)
#
# with n the provider's contracts, successes its successful ones (reputation.py's definition:
# delivered on time, late, or upheld in a dispute) and k = `evidence_contracts`, the record
# length at which claim and record weigh the same. A newcomer (n = 0) is scored on its claim
# alone; a long record replaces the claim by the record, so overclaiming stops paying exactly
# as fast as evidence accrues. The value is a convex combination of two numbers in [0, 1], so
# it lies in [0, 1]; it rises with the claim (w > 0) and with the successes (n fixed).
#
# Off by default: the exchange scores the plain stated confidence (the spec) unless its rules
# file names a calibration (`aex serve --weights FILE`, aex/core/rules.py); the simulator runs
# whatever its scenario's rules say, through this same function.
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, overload

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_CONFIDENCE_CALIBRATION", "ConfidenceCalibration", "calibrated_confidence"]


@dataclass(frozen=True, slots=True)
class ConfidenceCalibration:
    """The calibration's tunables.

    Attributes:
        evidence_contracts: k, the number of contracts at which the record weighs as much as
            the claim (w = k / (k + n)); > 0.
        prior_alpha, prior_beta: the Beta prior of the record's posterior success rate
            (Beta(1, 1): Laplace's rule of succession).
    """

    evidence_contracts: float = 10.0
    prior_alpha: float = 1.0
    prior_beta: float = 1.0

    def __post_init__(self) -> None:
        for value in (self.evidence_contracts, self.prior_alpha, self.prior_beta):
            assert type(value) is float, value
            assert math.isfinite(value)
            assert value > 0.0


DEFAULT_CONFIDENCE_CALIBRATION: Final = ConfidenceCalibration()


@overload
def calibrated_confidence(
    stated: float, successes: float, contracts: float, calibration: ConfidenceCalibration | None
) -> float: ...
@overload
def calibrated_confidence(
    stated: npt.NDArray[Any],
    successes: npt.NDArray[Any],
    contracts: npt.NDArray[Any],
    calibration: ConfidenceCalibration | None,
) -> npt.NDArray[np.float64]: ...
def calibrated_confidence(
    stated: float | npt.NDArray[Any],
    successes: float | npt.NDArray[Any],
    contracts: float | npt.NDArray[Any],
    calibration: ConfidenceCalibration | None,
) -> float | npt.NDArray[np.float64]:
    """The confidence component of a bid: the claim, shrunk toward the provider's record.

    Args:
        stated: the bid's stated confidence, in [0, 1].
        successes: the provider's successful contracts, 0 <= successes <= contracts.
        contracts: the provider's contracts, >= 0.
        calibration: the tunables, or None for the spec's plain stated confidence.

    Returns:
        A float (float inputs) or float64 array in [0, 1]; `stated` itself when calibration is
        None or the provider has no contracts.
    """
    array = any(isinstance(x, np.ndarray) for x in (stated, successes, contracts))
    claim = np.asarray(stated, dtype=np.float64)
    ok = np.asarray(successes, dtype=np.float64)
    n = np.asarray(contracts, dtype=np.float64)
    assert bool(np.all((claim >= 0.0) & (claim <= 1.0))), "stated confidence outside [0, 1]"
    assert bool(np.all((ok >= 0.0) & (ok <= n))), "successes outside 0..contracts"
    if calibration is None:
        result = claim.copy()
    else:
        k = calibration.evidence_contracts
        claim_weight = k / (k + n)
        posterior = (calibration.prior_alpha + ok) / (
            calibration.prior_alpha + calibration.prior_beta + n
        )
        result = claim_weight * claim + (1.0 - claim_weight) * posterior
        # a convex combination of [0, 1] values; clip absorbs a last-bit rounding overshoot only
        result = np.clip(result, 0.0, 1.0)
        # no record: exactly the claim (w = 1 up to rounding)
        result = np.where(n == 0.0, claim, result)
    if array:
        return np.asarray(result, dtype=np.float64)
    return float(result)

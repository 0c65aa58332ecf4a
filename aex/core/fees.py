# Rule: the platform fee, and how a price splits into fee and payout, is decided here only.
#
# Spec: "Consumer debited, provider credited (minus 15% platform fee)". The fee is
# floor(price × fee_bps / 10,000): the platform never takes more than its rate, and the
# provider receives every rounding remainder. The payout is derived as price − fee, so
# fee + payout == price holds by construction, and is asserted anyway. One function serves a
# single contract (ints) and the simulator's millions (int64 arrays).
from __future__ import annotations

from typing import Final, overload

import numpy as np
import numpy.typing as npt

from aex.core import limits
from aex.core.money import div_floor

__all__ = ["BPS_DENOMINATOR", "PLATFORM_FEE_BPS", "split_fee", "split_fee_columns"]

BPS_DENOMINATOR: Final = 10_000
# The spec's take rate: 15% of GMV.
PLATFORM_FEE_BPS: Final = 1_500
assert 0 < PLATFORM_FEE_BPS < BPS_DENOMINATOR
# price × fee_bps must not overflow int64 in the columnar path.
assert limits.amount_minor_max * BPS_DENOMINATOR < 2**63


def split_fee(price_minor: int, *, fee_bps: int) -> tuple[int, int]:
    """Splits a settled price into (fee_minor, payout_minor).

    Args:
        price_minor: the contract price, non-negative integer minor units.
        fee_bps: the platform fee in basis points (1,500 = 15%).

    Returns:
        (fee_minor, payout_minor) with fee_minor = floor(price × fee_bps / 10,000) and
        payout_minor = price − fee, so that they always sum to the price.
    """
    assert type(price_minor) is int
    assert 0 <= price_minor <= limits.amount_minor_max
    assert 0 <= fee_bps <= BPS_DENOMINATOR
    fee_minor = div_floor(price_minor * fee_bps, BPS_DENOMINATOR)
    payout_minor = price_minor - fee_minor
    assert fee_minor + payout_minor == price_minor
    assert 0 <= fee_minor <= price_minor
    return fee_minor, payout_minor


@overload
def split_fee_columns(
    price_minor: npt.NDArray[np.int64], *, fee_bps: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
@overload
def split_fee_columns(
    price_minor: npt.NDArray[np.int64], *, fee_bps: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def split_fee_columns(
    price_minor: npt.NDArray[np.int64], *, fee_bps: int | npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The columnar form of `split_fee`: the same floor rounding over int64 arrays."""
    prices = np.asarray(price_minor, dtype=np.int64)
    assert prices.size == 0 or int(prices.min()) >= 0
    assert prices.size == 0 or int(prices.max()) <= limits.amount_minor_max
    fee_minor = (prices * np.asarray(fee_bps, dtype=np.int64)) // BPS_DENOMINATOR
    payout_minor = prices - fee_minor
    assert bool(np.all(fee_minor + payout_minor == prices))
    return fee_minor, payout_minor

"""aex/core/fees.py: the 15% platform fee conserves every cent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aex.core import limits
from aex.core.fees import PLATFORM_FEE_BPS, split_fee, split_fee_columns


def test_spec_worked_example_100_usd_pays_85_and_15() -> None:
    assert split_fee(10_000, fee_bps=PLATFORM_FEE_BPS) == (1_500, 8_500)


@pytest.mark.parametrize(
    ("price_minor", "fee_minor"), [(0, 0), (1, 0), (6, 0), (7, 1), (13, 1), (14, 2), (99, 14)]
)
def test_fee_rounds_down_and_the_provider_keeps_the_remainder(
    price_minor: int, fee_minor: int
) -> None:
    assert split_fee(price_minor, fee_bps=PLATFORM_FEE_BPS) == (fee_minor, price_minor - fee_minor)


@given(st.integers(0, limits.amount_minor_max), st.integers(0, 10_000))
def test_fee_plus_payout_equals_price(price_minor: int, fee_bps: int) -> None:
    fee_minor, payout_minor = split_fee(price_minor, fee_bps=fee_bps)
    assert fee_minor + payout_minor == price_minor
    assert fee_minor * 10_000 <= price_minor * fee_bps


@given(hnp.arrays(np.int64, st.integers(0, 50), elements=st.integers(0, limits.amount_minor_max)))
def test_columnar_split_equals_the_scalar_split(prices: np.ndarray) -> None:
    fees, payouts = split_fee_columns(prices, fee_bps=PLATFORM_FEE_BPS)
    expected = [split_fee(int(p), fee_bps=PLATFORM_FEE_BPS) for p in prices]
    assert [(int(f), int(p)) for f, p in zip(fees, payouts, strict=True)] == expected

"""The pure market core: money, fees, bid scoring, reputation and tiers, the ledger, certificates.

Nothing here performs I/O, reads a clock, draws randomness or holds global state: time, seeds,
keys, weights and limits are arguments (tests/core/test_purity.py enforces it).
"""

from aex.core.fees import PLATFORM_FEE_BPS, split_fee, split_fee_columns
from aex.core.money import Money, div_floor, div_round_half_even, format_amount, parse_money
from aex.core.reasons import Reason, Rejected

__all__ = [
    "PLATFORM_FEE_BPS",
    "Money",
    "Reason",
    "Rejected",
    "div_floor",
    "div_round_half_even",
    "format_amount",
    "parse_money",
    "split_fee",
    "split_fee_columns",
]

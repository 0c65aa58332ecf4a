"""The pure market core: money, fees, bid scoring, reputation and tiers, the ledger, certificates.

Nothing here performs I/O, reads a clock, draws randomness or holds global state: time, seeds,
keys, weights and limits are arguments (tests/core/test_purity.py enforces it).
"""

from aex.core.credentials import (
    CREDENTIAL_RANDOM_BYTES,
    CredentialKind,
    credential_digest,
    credential_kind,
    format_credential,
)
from aex.core.fees import PLATFORM_FEE_BPS, split_fee, split_fee_columns
from aex.core.matching import (
    PATTERN_CHARS_MAX,
    is_valid_pattern,
    pattern_matches,
    subscription_matches,
)
from aex.core.money import Money, div_floor, div_round_half_even, format_amount, parse_money
from aex.core.plans import (
    DEFAULT_BURST_REQUESTS,
    DEFAULT_PLAN,
    PLAN_QUOTAS,
    Plan,
    PlanQuotas,
    check_agents_quota,
    check_concurrent_tasks_quota,
    check_daily_requests_quota,
    check_payload_quota,
)
from aex.core.reasons import (
    CredentialRejectReason,
    MoneyRejectReason,
    QuotaRejectReason,
    Reason,
    Rejected,
)

__all__ = [
    "CREDENTIAL_RANDOM_BYTES",
    "DEFAULT_BURST_REQUESTS",
    "DEFAULT_PLAN",
    "PATTERN_CHARS_MAX",
    "PLAN_QUOTAS",
    "PLATFORM_FEE_BPS",
    "CredentialKind",
    "CredentialRejectReason",
    "Money",
    "MoneyRejectReason",
    "Plan",
    "PlanQuotas",
    "QuotaRejectReason",
    "Reason",
    "Rejected",
    "check_agents_quota",
    "check_concurrent_tasks_quota",
    "check_daily_requests_quota",
    "check_payload_quota",
    "credential_digest",
    "credential_kind",
    "div_floor",
    "div_round_half_even",
    "format_amount",
    "format_credential",
    "is_valid_pattern",
    "parse_money",
    "pattern_matches",
    "split_fee",
    "split_fee_columns",
    "subscription_matches",
]

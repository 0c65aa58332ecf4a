# Rule: the pricing plans and their quotas (spec "Per-Tenant Quotas"), and every quota check.
#
# Theory of operation: a plan is a row of the spec's table. `None` in a quota means
# "Unlimited" in the spec. The checks are pure: the driver counts (agents registered, tasks
# running, requests today, bytes in the body) and passes the counts in; a check answers None
# (within quota) or a Rejected naming the quota, whose reason carries the HTTP status the spec
# implies (413 payload, 429 daily requests, 403 agents and concurrent tasks).
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from aex.core import limits
from aex.core.reasons import QuotaRejectReason, Rejected

__all__ = [
    "DEFAULT_BURST_REQUESTS",
    "DEFAULT_PLAN",
    "PLAN_QUOTAS",
    "SUBSCRIPTIONS_PER_PROVIDER_MAX",
    "Plan",
    "PlanQuotas",
    "check_agents_quota",
    "check_certificates_quota",
    "check_concurrent_tasks_quota",
    "check_daily_requests_quota",
    "check_payload_quota",
    "check_subscriptions_quota",
]

_KIB: Final = 1024


class Plan(StrEnum):
    EXPLORER = "EXPLORER"
    PROFESSIONAL = "PROFESSIONAL"
    BUSINESS = "BUSINESS"
    ENTERPRISE = "ENTERPRISE"


@dataclass(frozen=True, slots=True)
class PlanQuotas:
    """One column of the spec's quota table; None means "Unlimited"."""

    requests_per_minute: int
    requests_per_day: int | None
    agents_max: int | None
    concurrent_tasks_max: int
    payload_bytes_max: int
    certificates_max: int | None

    def __post_init__(self) -> None:
        assert self.requests_per_minute > 0
        assert self.concurrent_tasks_max > 0
        assert 0 < self.payload_bytes_max <= limits.request_body_bytes_max
        if self.requests_per_day is not None:
            assert self.requests_per_day >= self.requests_per_minute
        if self.agents_max is not None:
            assert self.agents_max > 0
        if self.certificates_max is not None:
            assert self.certificates_max > 0


# Spec: "| Requests/minute | 60 | 500 | 2,000 | 10,000 |", "| Requests/day | 1,000 | 50,000 |
# 500,000 | Unlimited |", "| Max agents | 1 | 5 | Unlimited | Unlimited |", "| Concurrent tasks |
# 1 | 5 | 25 | 100 |", "| Max payload size | 64KB | 256KB | 1MB | 10MB |". Certificates, from the
# spec's revenue model: "Explorer (Free) | 1 agent, basic identity cert", "Professional | 5
# capability certs", Business and Enterprise name no limit: 1, 5, Unlimited, Unlimited per agent.
PLAN_QUOTAS: Final[Mapping[Plan, PlanQuotas]] = {
    Plan.EXPLORER: PlanQuotas(60, 1_000, 1, 1, 64 * _KIB, 1),
    Plan.PROFESSIONAL: PlanQuotas(500, 50_000, 5, 5, 256 * _KIB, 5),
    Plan.BUSINESS: PlanQuotas(2_000, 500_000, None, 25, 1024 * _KIB, None),
    Plan.ENTERPRISE: PlanQuotas(10_000, None, None, 100, 10 * 1024 * _KIB, None),
}
assert set(PLAN_QUOTAS) == set(Plan)
assert max(q.payload_bytes_max for q in PLAN_QUOTAS.values()) == limits.request_body_bytes_max

# Beyond the spec's table: subscriptions per provider. Every work submission matches the work
# against the subscriptions (through an index, category -> subscriptions), and every match is
# a notification; an unbounded count let one provider key create 4,000 and slow every
# POST /v1/work forty-fold (issue 11). One subscription holds up to 50 category and 100
# capability patterns, so 10 already covers a free agent's niche; the paid plans scale with the
# agents they allow.
SUBSCRIPTIONS_PER_PROVIDER_MAX: Final[Mapping[Plan, int]] = {
    Plan.EXPLORER: 10,
    Plan.PROFESSIONAL: 50,
    Plan.BUSINESS: 200,
    Plan.ENTERPRISE: 1_000,
}
assert set(SUBSCRIPTIONS_PER_PROVIDER_MAX) == set(Plan)
assert all(0 < n <= 1_000 for n in SUBSCRIPTIONS_PER_PROVIDER_MAX.values())

# A new tenant starts on the free plan; the operator moves it.
DEFAULT_PLAN: Final = Plan.EXPLORER
# Spec "Production Rate Limiting": "50 burst allowance".
DEFAULT_BURST_REQUESTS: Final = 50


def check_payload_quota(plan: Plan, body_bytes: int) -> Rejected[QuotaRejectReason] | None:
    """Spec: "Max payload size". Answers 413 (PAYLOAD_TOO_LARGE) over the plan's size."""
    assert body_bytes >= 0
    quota = PLAN_QUOTAS[plan].payload_bytes_max
    if body_bytes > quota:
        return Rejected(
            QuotaRejectReason.PAYLOAD_TOO_LARGE, "max_payload_size", f"{plan} allows {quota} bytes"
        )
    return None


def check_daily_requests_quota(
    plan: Plan, requests_today: int, *, requests_per_day_override: int | None = None
) -> Rejected[QuotaRejectReason] | None:
    """Spec: "Requests/day". `requests_today` counts this request too; an operator override
    (settings) replaces every plan's daily quota."""
    assert requests_today >= 0
    quota = requests_per_day_override or PLAN_QUOTAS[plan].requests_per_day
    if quota is not None and requests_today > quota:
        return Rejected(
            QuotaRejectReason.DAILY_QUOTA_EXCEEDED,
            "requests_per_day",
            f"{plan} allows {quota} requests per day",
        )
    return None


def check_agents_quota(
    plan: Plan, agents_registered: int, *, agents_paid: int | None = None
) -> Rejected[QuotaRejectReason] | None:
    """Spec: "Max agents". `agents_registered` counts the tenant's providers before this one;
    `agents_paid`, for a per-agent plan bought through the API (aex/core/billing.py), the
    agents its paid term covers: a cap below the plan's own (docs/payments.md "Billing")."""
    assert agents_registered >= 0
    quota = PLAN_QUOTAS[plan].agents_max
    if agents_paid is not None:
        assert agents_paid >= 1
        quota = agents_paid if quota is None else min(quota, agents_paid)
    if quota is not None and agents_registered >= quota:
        return Rejected(
            QuotaRejectReason.MAX_AGENTS_EXCEEDED, "max_agents", f"{plan} allows {quota} agents"
        )
    return None


def check_concurrent_tasks_quota(
    plan: Plan, tasks_running: int
) -> Rejected[QuotaRejectReason] | None:
    """Spec: "Concurrent tasks". `tasks_running` excludes the task about to start.

    The driver (serve/market/usecases.py `submit_work`, docs/market.md "Plan limits") counts a
    consumer tenant's tasks as its work still OPEN or EVALUATING plus its contracts AWARDED,
    EXECUTING or COMPLETED (awarded, not yet settled, failed or cancelled), at work submission.
    """
    assert tasks_running >= 0
    quota = PLAN_QUOTAS[plan].concurrent_tasks_max
    if tasks_running >= quota:
        return Rejected(
            QuotaRejectReason.CONCURRENT_TASKS_EXCEEDED,
            "concurrent_tasks",
            f"{plan} allows {quota} concurrent tasks",
        )
    return None


def check_subscriptions_quota(
    plan: Plan, subscriptions_registered: int
) -> Rejected[QuotaRejectReason] | None:
    """Subscriptions per provider (SUBSCRIPTIONS_PER_PROVIDER_MAX): `subscriptions_registered`
    counts the provider's subscriptions before this one. Answers 403 over the plan's count."""
    assert subscriptions_registered >= 0
    quota = SUBSCRIPTIONS_PER_PROVIDER_MAX[plan]
    if subscriptions_registered >= quota:
        return Rejected(
            QuotaRejectReason.MAX_SUBSCRIPTIONS_EXCEEDED,
            "max_subscriptions",
            f"{plan} allows {quota} subscriptions per provider",
        )
    return None


def check_certificates_quota(
    plan: Plan, certificates_held: int
) -> Rejected[QuotaRejectReason] | None:
    """Spec (revenue model): certificates per agent. `certificates_held` counts the provider's
    certificates that are ACTIVE (issued or renewed, unexpired) or awaiting review, excluding
    the one about to be requested or issued (serve/certauth/certificates.py counts, at request and
    at approval; docs/certificates.md)."""
    assert certificates_held >= 0
    quota = PLAN_QUOTAS[plan].certificates_max
    if quota is not None and certificates_held >= quota:
        return Rejected(
            QuotaRejectReason.CERTIFICATES_EXCEEDED,
            "certificates",
            f"{plan} allows {quota} certificates per agent",
        )
    return None

"""The spec's quota table, cell by cell, and the quota checks at their boundaries."""

from __future__ import annotations

import pytest

from aex.core import (
    PLAN_QUOTAS,
    Plan,
    QuotaRejectReason,
    check_agents_quota,
    check_certificates_quota,
    check_concurrent_tasks_quota,
    check_daily_requests_quota,
    check_payload_quota,
)

KB = 1024


@pytest.mark.parametrize(
    ("plan", "per_minute", "per_day", "agents", "tasks", "payload"),
    [
        (Plan.EXPLORER, 60, 1_000, 1, 1, 64 * KB),
        (Plan.PROFESSIONAL, 500, 50_000, 5, 5, 256 * KB),
        (Plan.BUSINESS, 2_000, 500_000, None, 25, 1024 * KB),
        (Plan.ENTERPRISE, 10_000, None, None, 100, 10 * 1024 * KB),
    ],
)
def test_plan_quotas_match_the_spec_table(
    plan: Plan, per_minute: int, per_day: int | None, agents: int | None, tasks: int, payload: int
) -> None:
    quotas = PLAN_QUOTAS[plan]
    assert quotas.requests_per_minute == per_minute
    assert quotas.requests_per_day == per_day
    assert quotas.agents_max == agents
    assert quotas.concurrent_tasks_max == tasks
    assert quotas.payload_bytes_max == payload


def test_payload_at_the_limit_passes_and_one_byte_more_is_413() -> None:
    assert check_payload_quota(Plan.EXPLORER, 64 * KB) is None
    rejected = check_payload_quota(Plan.EXPLORER, 64 * KB + 1)
    assert rejected is not None
    assert rejected.reason is QuotaRejectReason.PAYLOAD_TOO_LARGE
    assert rejected.http_status == 413


def test_daily_quota_counts_this_request_and_enterprise_is_unlimited() -> None:
    assert check_daily_requests_quota(Plan.EXPLORER, 1_000) is None
    rejected = check_daily_requests_quota(Plan.EXPLORER, 1_001)
    assert rejected is not None
    assert rejected.http_status == 429
    assert check_daily_requests_quota(Plan.ENTERPRISE, 10**9) is None


def test_agents_and_concurrent_tasks_answer_403_naming_the_quota() -> None:
    assert check_agents_quota(Plan.PROFESSIONAL, 4) is None
    agents = check_agents_quota(Plan.PROFESSIONAL, 5)
    assert agents is not None
    assert (agents.http_status, agents.field) == (403, "max_agents")
    assert check_agents_quota(Plan.BUSINESS, 10**6) is None
    assert check_concurrent_tasks_quota(Plan.BUSINESS, 24) is None
    tasks = check_concurrent_tasks_quota(Plan.BUSINESS, 25)
    assert tasks is not None
    assert (tasks.http_status, tasks.field) == (403, "concurrent_tasks")


def test_the_agents_paid_for_cap_a_per_agent_plan_below_its_own_quota() -> None:
    assert check_agents_quota(Plan.PROFESSIONAL, 1, agents_paid=2) is None
    assert check_agents_quota(Plan.PROFESSIONAL, 2, agents_paid=2) is not None
    assert check_agents_quota(Plan.PROFESSIONAL, 5, agents_paid=9) is not None  # the plan's 5
    assert check_agents_quota(Plan.BUSINESS, 2, agents_paid=3) is None
    assert check_agents_quota(Plan.BUSINESS, 3, agents_paid=3) is not None


def test_certificates_per_agent_follow_the_revenue_model_and_answer_403() -> None:
    # "Explorer (Free) | 1 agent, basic identity cert", "Professional | 5 capability certs"
    assert [PLAN_QUOTAS[p].certificates_max for p in Plan] == [1, 5, None, None]
    assert check_certificates_quota(Plan.EXPLORER, 0) is None
    explorer = check_certificates_quota(Plan.EXPLORER, 1)
    assert explorer is not None
    assert explorer.reason is QuotaRejectReason.CERTIFICATES_EXCEEDED
    assert (explorer.http_status, explorer.field) == (403, "certificates")
    assert check_certificates_quota(Plan.PROFESSIONAL, 4) is None
    assert check_certificates_quota(Plan.PROFESSIONAL, 5) is not None
    assert check_certificates_quota(Plan.ENTERPRISE, 10**6) is None

# Rule: what the exchange bills a tenant (issue 15 item 4): the Verification API's per-call
# price and when its sub-cent accrual is posted, the plans' prices, and the proration of a plan
# change. Decided here and only here; the ledger postings are aex/core/ledger.py's Charge and
# Rebate, the driver is serve/billing/usecases.py. docs/payments.md "## Billing" has the tables.
#
# Theory of operation.
# - Verification: spec "Verification API | $0.001/call". A tenth of a cent cannot be posted, so
#   calls accrue exactly in micro-dollars (10^-6 USD, an integer): after n calls a tenant owes
#   n * 1,000 micro-dollars. Posting rule: the ledger always holds floor(owed / 10,000) cents,
#   posted as each whole cent is reached (`verification_cents_due`: the cents still to post for
#   a call count and the cents already posted). So every 10th call posts one cent, 1,000 calls
#   post exactly 100 cents = $1.00, and at most 9,000 micro-dollars (0.9 cent) are owed unposted.
# - Plans: spec "Professional | $99/agent/year", "Business | $499/agent/year", "Enterprise |
#   $2,999/year", "Explorer (Free) | $0". A term is one year (TERM_MS, 365 days) from purchase.
# - Proration (`price_plan_change`): a change at time t inside the current paid term starts a new
#   one-year term of the new plan at t, and the unused part of the old term is credited:
#       credit = floor(old_term_price * (old_term_end - t) / TERM_MS)     (integer ms)
#       net    = new_term_price - credit
#   net > 0 is charged to the tenant's cash, net < 0 rebated to it (never more than the old term
#   was priced at, so plan revenue never goes negative). Floor: the tenant is never credited more
#   than the unused time is worth; the sub-cent remainder stays with the platform.
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aex.core.money import div_floor
from aex.core.plans import PLAN_QUOTAS, Plan
from aex.core.reasons import BillingRejectReason, Rejected

__all__ = [
    "AGENTS_PER_SUBSCRIPTION_MAX",
    "BILLING_CURRENCY",
    "MICRO_USD_PER_CENT",
    "PLAN_PRICED_PER_AGENT",
    "PLAN_PRICES_MINOR",
    "TERM_MS",
    "VERIFICATION_PRICE_MICRO_USD",
    "PricedPlanChange",
    "price_plan_change",
    "term_price_minor",
    "verification_cents_due",
    "verification_owed_micro_usd",
]

BILLING_CURRENCY: Final = "USD"
MICRO_USD_PER_CENT: Final = 10_000
# Spec: "Verification API | $0.001/call" = 1,000 micro-dollars.
VERIFICATION_PRICE_MICRO_USD: Final = 1_000
assert 0 < VERIFICATION_PRICE_MICRO_USD <= MICRO_USD_PER_CENT
assert MICRO_USD_PER_CENT % VERIFICATION_PRICE_MICRO_USD == 0  # a cent is a whole call count

# One term: 365 days in milliseconds (a leap year's extra day is not billed).
TERM_MS: Final = 365 * 86_400_000
# Spec "Revenue Model", in cents per term: per agent for Professional and Business, flat for
# Enterprise ("$2,999/year"), free for Explorer.
PLAN_PRICES_MINOR: Final[Mapping[Plan, int]] = {
    Plan.EXPLORER: 0,
    Plan.PROFESSIONAL: 9_900,
    Plan.BUSINESS: 49_900,
    Plan.ENTERPRISE: 299_900,
}
PLAN_PRICED_PER_AGENT: Final = frozenset({Plan.PROFESSIONAL, Plan.BUSINESS})
assert set(PLAN_PRICES_MINOR) == set(Plan)
assert all(price >= 0 for price in PLAN_PRICES_MINOR.values())
# Agents one subscription may pay for: bounds a term's price (10,000 * $499 < 10^15 minor).
AGENTS_PER_SUBSCRIPTION_MAX: Final = 10_000


def verification_owed_micro_usd(calls: int) -> int:
    """What `calls` Verification API calls cost, exactly, in micro-dollars."""
    assert type(calls) is int
    assert calls >= 0
    return calls * VERIFICATION_PRICE_MICRO_USD


def verification_cents_due(calls: int, cents_posted: int) -> int:
    """The whole cents still to post after `calls` calls, `cents_posted` posted so far.

    Rule: the ledger holds floor(owed micro-dollars / 10,000) cents at all times.
    """
    owed_cents = div_floor(verification_owed_micro_usd(calls), MICRO_USD_PER_CENT)
    assert 0 <= cents_posted <= owed_cents
    return owed_cents - cents_posted


# Verification charges post from cash a cent at a time. A tenant whose wallet cannot pay a cent
# when due keeps verifying on arrears up to this many unposted cents ($1.00, 1,000 calls);
# beyond it a verification call is refused until the wallet can pay (docs/payments.md).
VERIFICATION_ARREARS_CENTS_MAX: Final = 100


def verification_refused_for_arrears(calls: int, cents_posted: int) -> bool:
    """After a charge attempt: is the tenant more than the allowed arrears behind?"""
    return verification_cents_due(calls, cents_posted) > VERIFICATION_ARREARS_CENTS_MAX


def term_price_minor(plan: Plan, agents: int) -> int:
    """A one-year term's price in cents: per agent for Professional and Business."""
    assert 1 <= agents <= AGENTS_PER_SUBSCRIPTION_MAX
    price = PLAN_PRICES_MINOR[plan]
    return price * agents if plan in PLAN_PRICED_PER_AGENT else price


@dataclass(frozen=True, slots=True)
class PricedPlanChange:
    """A plan purchase, upgrade or downgrade, priced.

    `net_minor` > 0 is charged, < 0 rebated; `credit_minor` is the unused old term's value.
    The new term runs [starts_at_ms, ends_at_ms) and is priced at `term_price_minor`.
    """

    plan: Plan
    agents: int
    term_price_minor: int
    credit_minor: int
    net_minor: int
    starts_at_ms: int
    ends_at_ms: int

    def __post_init__(self) -> None:
        assert self.credit_minor >= 0
        assert self.net_minor == self.term_price_minor - self.credit_minor
        assert self.ends_at_ms == self.starts_at_ms + TERM_MS


def price_plan_change(
    *,
    plan: Plan,
    agents: int,
    agents_registered: int,
    current_plan: Plan,
    current_agents: int,
    current_term_price_minor: int,
    current_term_ends_at_ms: int,
    now_ms: int,
) -> PricedPlanChange | Rejected[BillingRejectReason]:
    """Prices a change to `plan` for `agents` agents at `now_ms` (docs/payments.md "Billing").

    Args:
        plan, agents: what the tenant asks for (agents counts for per-agent plans only).
        agents_registered: the tenant's providers now (a plan must hold them all).
        current_plan, current_agents: the tenant's plan now.
        current_term_price_minor, current_term_ends_at_ms: the paid term's price and end
            (0 and 0 when nothing was paid: a free plan or an operator's complimentary one).
        now_ms: the change's time.

    Returns:
        The priced change.

    Rejections:
        AGENTS_OUT_OF_RANGE, PLAN_UNCHANGED, PLAN_AGENTS_EXCEEDED (reasons.BillingRejectReason).
    """
    assert current_term_price_minor >= 0
    if not 1 <= agents <= AGENTS_PER_SUBSCRIPTION_MAX:
        return Rejected(
            BillingRejectReason.AGENTS_OUT_OF_RANGE,
            "agents",
            f"1 to {AGENTS_PER_SUBSCRIPTION_MAX} agents",
        )
    billed_agents = agents if plan in PLAN_PRICED_PER_AGENT else 1
    remaining_ms = max(0, current_term_ends_at_ms - now_ms)
    # Unchanged: the same plan and agents inside a paid term, or the same free plan.
    if (
        plan is current_plan
        and billed_agents == current_agents
        and (remaining_ms > 0 or PLAN_PRICES_MINOR[plan] == 0)
    ):
        return Rejected(
            BillingRejectReason.PLAN_UNCHANGED, "plan", f"already {plan} until the term ends"
        )
    # The plan's agents: its quota (Professional 5, Explorer 1), and for per-agent plans the
    # agents paid for.

    allowed = PLAN_QUOTAS[plan].agents_max
    if plan in PLAN_PRICED_PER_AGENT:
        allowed = billed_agents if allowed is None else min(allowed, billed_agents)
    if allowed is not None and agents_registered > allowed:
        return Rejected(
            BillingRejectReason.PLAN_AGENTS_EXCEEDED,
            "agents",
            f"{plan} for {billed_agents} agents holds {allowed}; {agents_registered} registered",
        )
    # credit = floor(old_term_price * (old_term_end - t) / TERM_MS), never above the price.
    credit_minor = div_floor(current_term_price_minor * min(remaining_ms, TERM_MS), TERM_MS)
    assert 0 <= credit_minor <= current_term_price_minor
    price_minor = term_price_minor(plan, billed_agents)
    return PricedPlanChange(
        plan,
        billed_agents,
        price_minor,
        credit_minor,
        price_minor - credit_minor,
        now_ms,
        now_ms + TERM_MS,
    )

"""aex/core/billing.py: the Verification API's exact accrual and the plans' proration."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aex.core.billing import (
    TERM_MS,
    PricedPlanChange,
    price_plan_change,
    term_price_minor,
    verification_cents_due,
    verification_owed_micro_usd,
)
from aex.core.plans import Plan
from aex.core.reasons import BillingRejectReason, Rejected

DAY_MS = 86_400_000


def test_one_thousand_verification_calls_cost_exactly_one_dollar() -> None:
    assert verification_owed_micro_usd(1_000) == 1_000_000
    assert verification_cents_due(1_000, 0) == 100


def test_a_cent_is_posted_on_every_tenth_call_and_not_before() -> None:
    posted = 0
    for call in range(1, 31):
        due = verification_cents_due(call, posted)
        assert due == (1 if call % 10 == 0 else 0)
        posted += due
    assert posted == 3


@given(st.lists(st.integers(1, 50), max_size=40))
def test_accrual_posts_floor_of_owed_cents_whatever_the_batching(batches: list[int]) -> None:
    calls = posted = 0
    for batch in batches:
        calls += batch
        posted += verification_cents_due(calls, posted)
        unposted_micro_usd = verification_owed_micro_usd(calls) - posted * 10_000
        assert 0 <= unposted_micro_usd < 10_000  # less than a cent ever owed unposted
    assert posted == calls // 10


def test_plan_prices_follow_the_spec() -> None:
    assert term_price_minor(Plan.EXPLORER, 1) == 0
    assert term_price_minor(Plan.PROFESSIONAL, 3) == 3 * 9_900
    assert term_price_minor(Plan.BUSINESS, 2) == 2 * 49_900
    assert term_price_minor(Plan.ENTERPRISE, 7) == 299_900  # flat: "$2,999/year"


def _change(**given: object) -> PricedPlanChange | Rejected[BillingRejectReason]:
    arguments: dict[str, object] = {
        "plan": Plan.BUSINESS,
        "agents": 1,
        "agents_registered": 1,
        "current_plan": Plan.EXPLORER,
        "current_agents": 1,
        "current_term_price_minor": 0,
        "current_term_ends_at_ms": 0,
        "now_ms": 10 * TERM_MS,
    }
    return price_plan_change(**(arguments | given))  # type: ignore[arg-type]


def test_a_purchase_from_the_free_plan_charges_the_whole_term() -> None:
    change = _change(plan=Plan.PROFESSIONAL, agents=2)
    assert isinstance(change, PricedPlanChange)
    assert (change.credit_minor, change.net_minor) == (0, 19_800)
    assert change.ends_at_ms - change.starts_at_ms == TERM_MS


def test_a_mid_year_upgrade_credits_the_unused_days_rounded_down() -> None:
    # Professional bought at t0 for $99; upgraded to Business on day 182 of 365: 183 unused
    # days are credited, floor(9,900 * 183 / 365) = floor(4,963.56) = 4,963 cents.
    t0 = 10 * TERM_MS
    change = _change(
        current_plan=Plan.PROFESSIONAL,
        current_term_price_minor=9_900,
        current_term_ends_at_ms=t0 + TERM_MS,
        now_ms=t0 + 182 * DAY_MS,
    )
    assert isinstance(change, PricedPlanChange)
    assert change.credit_minor == 4_963
    assert change.net_minor == 49_900 - 4_963 == 44_937


def test_a_downgrade_to_free_rebates_the_unused_part() -> None:
    t0 = 10 * TERM_MS
    change = _change(
        plan=Plan.EXPLORER,
        current_plan=Plan.BUSINESS,
        current_term_price_minor=49_900,
        current_term_ends_at_ms=t0 + TERM_MS,
        now_ms=t0 + TERM_MS // 2,
    )
    assert isinstance(change, PricedPlanChange)
    assert change.net_minor == -24_950


@given(
    price=st.integers(0, 10**9),
    elapsed_ms=st.integers(-TERM_MS, 2 * TERM_MS),
)
def test_the_credit_never_exceeds_the_old_terms_price(price: int, elapsed_ms: int) -> None:
    t0 = 10 * TERM_MS
    change = _change(
        plan=Plan.ENTERPRISE,
        current_plan=Plan.BUSINESS,
        current_term_price_minor=price,
        current_term_ends_at_ms=t0 + TERM_MS,
        now_ms=t0 + elapsed_ms,
    )
    assert isinstance(change, PricedPlanChange)
    assert 0 <= change.credit_minor <= price


def test_the_same_plan_inside_its_term_is_refused() -> None:
    rejected = _change(
        plan=Plan.BUSINESS,
        current_plan=Plan.BUSINESS,
        current_term_price_minor=49_900,
        current_term_ends_at_ms=20 * TERM_MS,
    )
    assert isinstance(rejected, Rejected)
    assert rejected.reason is BillingRejectReason.PLAN_UNCHANGED
    renewal = _change(
        plan=Plan.BUSINESS,
        current_plan=Plan.BUSINESS,
        current_term_price_minor=49_900,
        current_term_ends_at_ms=10 * TERM_MS,  # the term ended: a renewal
    )
    assert isinstance(renewal, PricedPlanChange)
    assert renewal.net_minor == 49_900


def test_a_plan_must_hold_the_agents_registered() -> None:
    too_few = _change(plan=Plan.PROFESSIONAL, agents=2, agents_registered=3)
    assert isinstance(too_few, Rejected)
    assert too_few.reason is BillingRejectReason.PLAN_AGENTS_EXCEEDED
    free = _change(plan=Plan.EXPLORER, agents_registered=2, current_plan=Plan.BUSINESS)
    assert isinstance(free, Rejected)
    out_of_range = _change(agents=0)
    assert isinstance(out_of_range, Rejected)
    assert out_of_range.reason is BillingRejectReason.AGENTS_OUT_OF_RANGE

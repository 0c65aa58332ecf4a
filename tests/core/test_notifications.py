"""aex/core/notifications.py: each provider's view of a market event (sealed bids)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aex.core.notifications import (
    BID_LOST,
    provider_notification,
    provider_notifications,
    recipient_parts,
)

AWARD = {
    "contract_id": "contract_1",
    "work_id": "work_1",
    "bid_id": "bid_w",
    "provider_id": "prov_w",
    "consumer_tenant_id": "ten_c",
    "price": {"amount": "80.00", "currency": "USD"},
    "losers": ["prov_a", "prov_b"],
}


def test_a_loser_learns_its_own_outcome_and_nothing_of_the_award() -> None:
    note = provider_notification("prov_a", "contract.awarded", "contract_1", AWARD)
    assert note is not None
    assert (note.name, note.subject_id) == (BID_LOST, "work_1")
    assert note.payload == {
        "work_id": "work_1",
        "provider_id": "prov_a",
        "outcome": "lost",
        "reason": "another_bid_won",
    }


def test_the_winner_sees_its_contract_without_the_losers() -> None:
    note = provider_notification("prov_w", "contract.awarded", "contract_1", AWARD)
    assert note is not None
    assert note.name == "contract.awarded"
    assert "losers" not in note.payload
    assert note.payload["price"] == {"amount": "80.00", "currency": "USD"}


def test_published_work_reaches_recipients_without_the_recipient_list() -> None:
    payload = {"work_id": "work_1", "work": {"title": "t"}, "recipients": ["prov_a", "prov_b"]}
    note = provider_notification("prov_a", "work.submitted", "work_1", payload)
    assert note is not None
    assert note.payload == {"work_id": "work_1", "work": {"title": "t"}}
    assert provider_notification("prov_z", "work.submitted", "work_1", payload) is None


def test_an_unfilled_work_tells_each_bidder_its_bid_lost() -> None:
    payload = {"work_id": "work_1", "losers": ["prov_a"]}
    note = provider_notification("prov_a", "work.unfilled", "work_1", payload)
    assert note is not None
    assert note.payload["reason"] == "no_valid_bid"


def test_other_providers_hear_nothing_of_someone_elses_contract() -> None:
    assert provider_notification("prov_z", "contract.awarded", "contract_1", AWARD) is None
    assert provider_notification("prov_a", "settlement.completed", "c", AWARD) is None
    assert provider_notification("prov_a", "bids.evaluated", "work_1", {"bids": 3}) is None


def test_every_providers_notifications_at_once_are_each_ones_own() -> None:
    # provider_notifications (the webhook fan-out's one pass, the routing lists read once) is
    # provider_notification of each provider, in order, the untold left out.
    events = [
        ("contract.awarded", "contract_1", AWARD),
        ("work.submitted", "work_1", {"work_id": "work_1", "recipients": ["prov_a", "prov_b"]}),
        ("work.unfilled", "work_1", {"work_id": "work_1", "losers": ["prov_b", 7, None]}),
        ("work.submitted", "work_1", {"work_id": "work_1", "recipients": "prov_a"}),
        ("contract.completed", "contract_1", {"provider_id": "prov_w", "recipients": ["x"]}),
    ]
    providers = ["prov_a", "prov_b", "prov_w", "prov_z", "7"]
    for event_type, subject_id, payload in events:
        one_by_one = [
            (provider_id, note)
            for provider_id in providers
            if (note := provider_notification(provider_id, event_type, subject_id, payload))
            is not None
        ]
        at_once = list(provider_notifications(providers, event_type, subject_id, payload))
        assert at_once == one_by_one, event_type


@given(
    st.lists(st.text(min_size=1, max_size=4), max_size=60, unique=True),
    st.integers(min_value=1, max_value=25),
)
def test_recipient_parts_name_every_recipient_once_in_order_within_the_bound(
    recipients: list[str], per_event_max: int
) -> None:
    parts = recipient_parts(recipients, per_event_max)
    assert [r for part in parts for r in part] == recipients
    assert all(len(part) <= per_event_max for part in parts)
    assert all(parts[:-1])
    assert len(parts) == max(1, -(-len(recipients) // per_event_max))


def test_a_work_with_no_recipients_is_still_announced_once() -> None:
    assert recipient_parts([]) == [[]]
    assert recipient_parts(["a"] * 3, 3) == [["a", "a", "a"]]

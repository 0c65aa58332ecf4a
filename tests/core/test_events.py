"""aex/core/events.py: every event the spec names has one stream and one subject."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aex.core.events import (
    CONTRACT_TRANSITION_EVENTS,
    EVENT_STREAMS,
    SPEC_EVENT_TYPES,
    WORK_TRANSITION_EVENTS,
    Event,
    EventType,
    Stream,
    encode_event,
    event_from_json,
    event_subject,
    event_to_json,
    money_json,
    stream_subjects,
)
from aex.core.lifecycle import ContractEventKind, WorkEventKind
from aex.core.money import Money

# The spec: "work.submitted → work.bid_window_closed → bid.submitted → bids.evaluated →
# contract.awarded → contract.completed → settlement.completed; certificate.requested →
# certificate.issued → certificate.renewed → certificate.revoked → reputation.updated".
SPEC_EVENTS = {
    "work.submitted": Stream.WORK,
    "work.bid_window_closed": Stream.WORK,
    "bid.submitted": Stream.BIDS,
    "bids.evaluated": Stream.BIDS,
    "contract.awarded": Stream.CONTRACTS,
    "contract.completed": Stream.CONTRACTS,
    "settlement.completed": Stream.SETTLEMENT,
    "certificate.requested": Stream.CERTIFICATES,
    "certificate.issued": Stream.CERTIFICATES,
    "certificate.renewed": Stream.CERTIFICATES,
    "certificate.revoked": Stream.CERTIFICATES,
    "reputation.updated": Stream.REPUTATION,
}


def awarded_event() -> Event:
    return Event(
        event_id="evt_0001",
        type=EventType.CONTRACT_AWARDED,
        subject_id="contract_42",
        occurred_at_ms=1_700_000_000_000,
        payload={"work_id": "work_xyz", "price": money_json(Money(10_000, "USD"))},
    )


@pytest.mark.parametrize(("name", "stream"), SPEC_EVENTS.items())
def test_every_spec_event_is_catalogued_in_its_stream(name: str, stream: Stream) -> None:
    assert EVENT_STREAMS[EventType(name)] is stream


def test_spec_event_set_is_exactly_the_spec_list() -> None:
    assert {e.value for e in SPEC_EVENT_TYPES} == set(SPEC_EVENTS)


def test_there_are_the_spec_seven_streams_and_the_dead_letter_stream_each_used() -> None:
    spec = {"WORK", "BIDS", "CONTRACTS", "SETTLEMENT", "CERTIFICATES", "REPUTATION", "IDENTITY"}
    assert {s.value for s in Stream} == spec | {"NOTIFICATIONS"}
    assert set(EVENT_STREAMS.values()) == set(Stream)
    dead = Event("e1", EventType.NOTIFICATION_DEAD_LETTERED, "prov_1", 0, {})
    assert event_subject(dead) == "aex.notification.dead_lettered.prov_1"
    assert stream_subjects(Stream.NOTIFICATIONS) == ("aex.notification.>",)


def test_stream_subjects_do_not_overlap_and_capture_their_events() -> None:
    all_filters = [f for s in Stream for f in stream_subjects(s)]
    assert len(all_filters) == len(set(all_filters))
    assert stream_subjects(Stream.BIDS) == ("aex.bid.>", "aex.bids.>")
    for event_type, stream in EVENT_STREAMS.items():
        event = Event("e1", event_type, "s1", 0, {})
        prefix = ".".join(event_subject(event).split(".")[:2]) + ".>"
        assert prefix in stream_subjects(stream)


def test_subject_names_the_type_and_the_thing() -> None:
    assert event_subject(awarded_event()) == "aex.contract.awarded.contract_42"


def test_money_travels_as_a_decimal_string() -> None:
    assert money_json(Money(10_010, "USD")) == {"amount": "100.10", "currency": "USD"}
    assert money_json(Money(500, "JPY")) == {"amount": "500", "currency": "JPY"}


def test_event_json_round_trips_and_encodes_deterministically() -> None:
    event = awarded_event()
    assert event_from_json(event_to_json(event)) == event
    encoded = encode_event(event)
    assert json.loads(encoded) == event_to_json(event)
    assert encoded == encode_event(awarded_event())
    assert json.loads(encoded)["stream"] == "CONTRACTS"


@pytest.mark.parametrize(
    "payload",
    [
        {"price": Decimal("100.00")},  # money must be a string, not a Decimal
        {"price": Money(10_000, "USD")},
        {"score": float("nan")},
        {1: "non-string key"},
    ],
)
def test_payload_that_is_not_plain_json_is_a_programming_error(payload: object) -> None:
    with pytest.raises(AssertionError):
        Event("e1", EventType.SETTLEMENT_COMPLETED, "c1", 0, payload)  # type: ignore[arg-type]


@pytest.mark.parametrize(("event_id", "subject_id"), [("", "c1"), ("e1", "c.1"), ("e 1", "c1")])
def test_ids_must_be_single_subject_tokens(event_id: str, subject_id: str) -> None:
    with pytest.raises(AssertionError):
        Event(event_id, EventType.WORK_SUBMITTED, subject_id, 0, {})


def test_every_lifecycle_transition_announces_an_event() -> None:
    assert WORK_TRANSITION_EVENTS[WorkEventKind.CLOSE_WINDOW] is EventType.WORK_BID_WINDOW_CLOSED
    assert WORK_TRANSITION_EVENTS[WorkEventKind.AWARD] is EventType.CONTRACT_AWARDED
    assert CONTRACT_TRANSITION_EVENTS[ContractEventKind.COMPLETE] is EventType.CONTRACT_COMPLETED
    assert CONTRACT_TRANSITION_EVENTS[ContractEventKind.SETTLE] is EventType.SETTLEMENT_COMPLETED


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=8)
) | st.floats(allow_nan=False, allow_infinity=False)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=6), json_value, max_size=5))
def test_any_plain_json_payload_round_trips_through_the_encoding(payload: dict) -> None:
    event = Event("e1", EventType.BIDS_EVALUATED, "work_1", 5, payload)
    assert event_from_json(json.loads(encode_event(event))) == event

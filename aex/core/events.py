# Rule: which events the exchange publishes, which stream each belongs to, how an event is
# shaped and encoded, and which subject it is published on, is decided here and only here.
#
# Theory of operation: the spec: "Every significant action publishes an event through NATS
# JetStream: work.submitted → work.bid_window_closed → bid.submitted → bids.evaluated →
# contract.awarded → contract.completed → settlement.completed; certificate.requested →
# certificate.issued → certificate.renewed → certificate.revoked → reputation.updated", over
# "7 persistent streams ... server-side deduplication". EVENT_STREAMS maps every event type to
# one of the seven streams. An `Event` is a frozen record with an id the driver passes in (the
# deduplication key: the outbox row's unique key and JetStream's Nats-Msg-Id header), a type, the
# id of the thing it is about, the instant it happened and a plain-JSON payload in which money is
# a decimal string (money_json). Drivers write events to an outbox in the same transaction as
# the change, then deliver them; `encode_event` gives the exact bytes (sorted keys, compact), so
# a re-delivery is byte-identical. Subjects are "aex.<event type>.<subject id>", and each
# stream captures the subjects of its event families ("aex.work.>"): no two streams overlap
# (asserted below), as JetStream requires. Beyond the spec's list the catalogue carries the
# other transitions of aex/core/lifecycle.py (cancellations, failures, disputes, escrow
# releases and refunds) and identity events, so that every state change is observable.
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from aex.core import limits
from aex.core.json_values import JsonProblem, measure_json
from aex.core.lifecycle import ContractEventKind, WorkEventKind
from aex.core.money import Money, format_amount

__all__ = [
    "CONTRACT_TRANSITION_EVENTS",
    "EVENT_STREAMS",
    "SPEC_EVENT_TYPES",
    "SUBJECT_PREFIX",
    "WORK_TRANSITION_EVENTS",
    "Event",
    "EventType",
    "Stream",
    "encode_event",
    "event_from_json",
    "event_subject",
    "event_to_json",
    "money_json",
    "stream_subjects",
]

SUBJECT_PREFIX: Final = "aex"
# Subject ids and event ids are single NATS subject tokens: no dots, spaces or wildcards.
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]+")


class Stream(StrEnum):
    """The spec's seven JetStream streams, and the notifications' dead-letter stream."""

    WORK = "WORK"
    BIDS = "BIDS"
    CONTRACTS = "CONTRACTS"
    SETTLEMENT = "SETTLEMENT"
    CERTIFICATES = "CERTIFICATES"
    REPUTATION = "REPUTATION"
    IDENTITY = "IDENTITY"
    # Beyond the spec's seven: the dead-letter subject for notifications that could not be
    # delivered (a webhook that failed every attempt), kept for an operator to replay.
    NOTIFICATIONS = "NOTIFICATIONS"


class EventType(StrEnum):
    WORK_SUBMITTED = "work.submitted"
    WORK_BID_WINDOW_CLOSED = "work.bid_window_closed"
    WORK_UNFILLED = "work.unfilled"
    WORK_CANCELLED = "work.cancelled"
    BID_SUBMITTED = "bid.submitted"
    BIDS_EVALUATED = "bids.evaluated"
    CONTRACT_AWARDED = "contract.awarded"
    CONTRACT_PROGRESS_REPORTED = "contract.progress_reported"
    CONTRACT_COMPLETED = "contract.completed"
    CONTRACT_FAILED = "contract.failed"
    CONTRACT_CANCELLED = "contract.cancelled"
    CONTRACT_DISPUTED = "contract.disputed"
    CONTRACT_DISPUTE_RESOLVED = "contract.dispute_resolved"
    SETTLEMENT_COMPLETED = "settlement.completed"
    SETTLEMENT_RELEASED = "settlement.released"
    SETTLEMENT_REFUNDED = "settlement.refunded"
    CERTIFICATE_REQUESTED = "certificate.requested"
    CERTIFICATE_ISSUED = "certificate.issued"
    CERTIFICATE_REJECTED = "certificate.rejected"
    CERTIFICATE_RENEWED = "certificate.renewed"
    CERTIFICATE_REVOKED = "certificate.revoked"
    # An IDENTITY endpoint challenge issued, then decided (VALID or INVALID) (issue 15).
    CERTIFICATE_CHALLENGE_ISSUED = "certificate.challenge_issued"
    CERTIFICATE_CHALLENGE_DECIDED = "certificate.challenge_decided"
    # A resale delegation registered or revoked by its delegator (issue 15).
    CERTIFICATE_DELEGATION_REGISTERED = "certificate.delegation_registered"
    CERTIFICATE_DELEGATION_REVOKED = "certificate.delegation_revoked"
    REPUTATION_UPDATED = "reputation.updated"
    TENANT_CREATED = "tenant.created"
    PROVIDER_REGISTERED = "provider.registered"
    PROVIDER_AGENT_CARD_REGISTERED = "provider.agent_card_registered"
    NOTIFICATION_DEAD_LETTERED = "notification.dead_lettered"
    # Billing (issue 15 item 4): a tenant's plan changed (bought, upgraded, downgraded by the
    # tenant, or overridden by the operator); a plan change's invoice was issued; an invoice grew
    # (reserved for a period's running verification invoice; not emitted yet).
    BILLING_PLAN_CHANGED = "billing.plan_changed"
    BILLING_INVOICE_ISSUED = "billing.invoice_issued"
    BILLING_INVOICE_UPDATED = "billing.invoice_updated"
    # AP2 mandates (issue 15 item 2): a tenant's intent mandate registered or revoked; a
    # signed receipt (checkout at award, payment at settlement) issued for a contract.
    MANDATE_CREATED = "mandate.created"
    MANDATE_REVOKED = "mandate.revoked"
    RECEIPT_ISSUED = "receipt.issued"
    # Token bank (issue 15 item 3): the operator issued a voucher, a tenant redeemed one into
    # its credit bucket, a sweep moved a wallet's expired credit to breakage.
    VOUCHER_ISSUED = "voucher.issued"
    VOUCHER_REDEEMED = "voucher.redeemed"
    CREDIT_EXPIRED = "credit.expired"


# The spec's own list, word for word (the rest of EventType extends it).
SPEC_EVENT_TYPES: Final = frozenset(
    {
        EventType.WORK_SUBMITTED,
        EventType.WORK_BID_WINDOW_CLOSED,
        EventType.BID_SUBMITTED,
        EventType.BIDS_EVALUATED,
        EventType.CONTRACT_AWARDED,
        EventType.CONTRACT_COMPLETED,
        EventType.SETTLEMENT_COMPLETED,
        EventType.CERTIFICATE_REQUESTED,
        EventType.CERTIFICATE_ISSUED,
        EventType.CERTIFICATE_RENEWED,
        EventType.CERTIFICATE_REVOKED,
        EventType.REPUTATION_UPDATED,
    }
)

# Each event family (the part before the first dot) lives in exactly one stream.
_FAMILY_STREAMS: Final[Mapping[str, Stream]] = {
    "work": Stream.WORK,
    "bid": Stream.BIDS,
    "bids": Stream.BIDS,
    "contract": Stream.CONTRACTS,
    "settlement": Stream.SETTLEMENT,
    "certificate": Stream.CERTIFICATES,
    "reputation": Stream.REPUTATION,
    "tenant": Stream.IDENTITY,
    "provider": Stream.IDENTITY,
    "notification": Stream.NOTIFICATIONS,
    "billing": Stream.SETTLEMENT,  # issue 15 item 4: money owed to the platform
    "mandate": Stream.SETTLEMENT,  # issue 15 item 2: what a consumer's agent may spend
    "receipt": Stream.SETTLEMENT,  # issue 15 item 2: signed checkout and payment receipts
    "voucher": Stream.SETTLEMENT,  # issue 15 item 3: the token bank
    "credit": Stream.SETTLEMENT,
}
EVENT_STREAMS: Final[Mapping[EventType, Stream]] = {
    event_type: _FAMILY_STREAMS[event_type.value.split(".")[0]] for event_type in EventType
}
assert set(EVENT_STREAMS.values()) == set(Stream)

# The event each lifecycle transition publishes (None: the transition is not announced on its
# own; a progress report is, as contract.progress_reported, but it is not a state change).
WORK_TRANSITION_EVENTS: Final[Mapping[WorkEventKind, EventType]] = {
    WorkEventKind.CLOSE_WINDOW: EventType.WORK_BID_WINDOW_CLOSED,
    WorkEventKind.AWARD: EventType.CONTRACT_AWARDED,
    WorkEventKind.FIND_NO_VALID_BID: EventType.WORK_UNFILLED,
    WorkEventKind.CANCEL: EventType.WORK_CANCELLED,
}
CONTRACT_TRANSITION_EVENTS: Final[Mapping[ContractEventKind, EventType]] = {
    ContractEventKind.REPORT_PROGRESS: EventType.CONTRACT_PROGRESS_REPORTED,
    ContractEventKind.COMPLETE: EventType.CONTRACT_COMPLETED,
    ContractEventKind.SETTLE: EventType.SETTLEMENT_COMPLETED,
    ContractEventKind.FAIL: EventType.CONTRACT_FAILED,
    ContractEventKind.CANCEL: EventType.CONTRACT_CANCELLED,
    ContractEventKind.DISPUTE: EventType.CONTRACT_DISPUTED,
    ContractEventKind.RESOLVE_REFUND: EventType.CONTRACT_DISPUTE_RESOLVED,
    ContractEventKind.RESOLVE_PAY_OUT: EventType.CONTRACT_DISPUTE_RESOLVED,
}
assert set(WORK_TRANSITION_EVENTS) == set(WorkEventKind)
assert set(CONTRACT_TRANSITION_EVENTS) == set(ContractEventKind)


@dataclass(frozen=True, slots=True)
class Event:
    """One published fact. `event_id` is chosen by the driver and deduplicates deliveries."""

    event_id: str
    type: EventType
    subject_id: str
    occurred_at_ms: int
    payload: Mapping[str, object]

    def __post_init__(self) -> None:
        assert _is_token(self.event_id), "event_id must be one subject token"
        assert _is_token(self.subject_id), "subject_id must be one subject token"
        assert isinstance(self.type, EventType)
        assert type(self.occurred_at_ms) is int
        assert self.occurred_at_ms >= 0
        assert isinstance(self.payload, Mapping)
        size = measure_json(self.payload, allow_decimal=False)
        assert not isinstance(size, JsonProblem), f"payload is not plain JSON: {size}"
        assert size.encoded_bytes <= limits.event_payload_bytes_max


def money_json(money: Money) -> dict[str, str]:
    """Money as an event payload carries it: {"amount": "100.00", "currency": "USD"}."""
    return {"amount": format_amount(money), "currency": money.currency}


def event_subject(event: Event) -> str:
    """The NATS subject an event is published on: "aex.contract.awarded.<subject_id>"."""
    subject = f"{SUBJECT_PREFIX}.{event.type.value}.{event.subject_id}"
    assert " " not in subject
    assert subject.split(".")[1] in _FAMILY_STREAMS
    return subject


def stream_subjects(stream: Stream) -> tuple[str, ...]:
    """The subject filters a stream is created with, e.g. BIDS -> ("aex.bid.>", "aex.bids.>")."""
    families = [family for family, owner in _FAMILY_STREAMS.items() if owner is stream]
    assert families, f"{stream} has no event family"
    return tuple(f"{SUBJECT_PREFIX}.{family}.>" for family in families)


def event_to_json(event: Event) -> dict[str, object]:
    """The event as a JSON object (the outbox row's body and the published message)."""
    return {
        "event_id": event.event_id,
        "type": event.type.value,
        "subject_id": event.subject_id,
        "occurred_at_ms": event.occurred_at_ms,
        "stream": EVENT_STREAMS[event.type].value,
        "payload": dict(event.payload),
    }


def encode_event(event: Event) -> bytes:
    """The exact bytes of an event: compact JSON with sorted keys, UTF-8."""
    text = json.dumps(
        event_to_json(event), separators=(",", ":"), sort_keys=True, ensure_ascii=False
    )
    return text.encode()


def event_from_json(obj: Mapping[str, object]) -> Event:
    """Reads back an event written by event_to_json (an outbox row: a mismatch is a bug)."""
    type_name = obj["type"]
    assert isinstance(type_name, str)
    event_type = EventType(type_name)
    assert obj["stream"] == EVENT_STREAMS[event_type].value
    event_id, subject_id = obj["event_id"], obj["subject_id"]
    occurred_at_ms, payload = obj["occurred_at_ms"], obj["payload"]
    assert isinstance(event_id, str)
    assert isinstance(subject_id, str)
    assert isinstance(occurred_at_ms, int)
    assert isinstance(payload, Mapping)
    return Event(event_id, event_type, subject_id, occurred_at_ms, dict(payload))


def _is_token(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= limits.id_chars_max
        and _TOKEN.fullmatch(value) is not None
    )


# No stream's subjects may overlap another's: families are distinct first tokens.
assert len({f for s in Stream for f in stream_subjects(s)}) == len(_FAMILY_STREAMS)

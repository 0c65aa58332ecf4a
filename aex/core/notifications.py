# Rule: what one provider is told about a market event (its notification), decided here and
# only here; the server-sent events stream, the webhooks and the dead letters on JetStream's
# provider subjects (aex.notification.dead_lettered.<provider_id>) all carry exactly this.
#
# Theory of operation: the outbox event is the exchange's own record of a change and carries
# routing facts no provider may see (`recipients`: every provider notified of a work; `losers`:
# every provider whose bid lost). Auctions are sealed (docs/market.md, "Disclosure policy"): a
# provider learns that work it matches was published, the outcome of its own bid, and the
# changes of its own contracts, and nothing about any other bid: no competitor's identity,
# price, score or rank, not how many bids there were, not the consumer's tenant id unless it
# won (the consumer is then its counterparty, as GET /v1/contracts/{id} shows). A loser's
# notification is built from scratch (an allow-list), never by deleting fields from the
# award, so a field added to `contract.awarded` later cannot reach the losers by default.
from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aex.core import limits

__all__ = [
    "BID_LOST",
    "ROUTING_KEYS",
    "Notification",
    "provider_notification",
    "provider_notifications",
    "recipient_parts",
]

BID_LOST: Final = "bid.lost"
# Payload keys that route an event and are never shown to a provider.
ROUTING_KEYS: Final = frozenset({"recipients", "losers"})
# What a provider is shown of a published work: the job, as the consumer described it.
_WORK_KEYS: Final = ("work_id", "work", "bid_window_closes_at_ms")


@dataclass(frozen=True, slots=True)
class Notification:
    """One provider's view of one event: its name (the SSE event / X-AEX-Event), the id of
    what it is about, and the payload it may see."""

    name: str
    subject_id: str
    payload: Mapping[str, object]


def recipient_parts(recipients: Sequence[str], per_event_max: int | None = None) -> list[list[str]]:
    """The recipients of one work in the slices its `work.submitted` events name: consecutive,
    each at most `per_event_max`, together every recipient once in order; one (empty) slice
    when there is none, since a work is announced even to nobody. `per_event_max` None:
    limits.work_recipients_per_event_max."""
    if per_event_max is None:
        per_event_max = limits.work_recipients_per_event_max
    assert per_event_max >= 1
    return [
        list(recipients[low : low + per_event_max])
        for low in range(0, max(len(recipients), 1), per_event_max)
    ]


def provider_notification(
    provider_id: str, event_type: str, subject_id: str, payload: Mapping[str, object]
) -> Notification | None:
    """What `provider_id` is told of an event, or None (nothing: it does not concern it).

    - `work.submitted` to each provider in `recipients` (its subscriptions matched): the work.
    - `contract.awarded` to the winner (its contract, price and counterparty); as `bid.lost`
      to each provider in `losers`, and `work.unfilled` as `bid.lost` to each bidder: the work
      id, its own provider id and the outcome of its own bid, nothing else.
    - other `contract.*` and `settlement.*` events to the contract's provider.
    """
    return _notification(
        provider_id, event_type, subject_id, payload, lambda key: _listed(payload, key)
    )


def provider_notifications(
    provider_ids: Iterable[str], event_type: str, subject_id: str, payload: Mapping[str, object]
) -> Iterator[tuple[str, Notification]]:
    """(provider, its notification) for each of `provider_ids` told of the event, in order:
    exactly `provider_notification` of each, with the event's routing lists read once (a
    set each) instead of scanned once per provider: a work's fan-out to n recipients is O(n),
    not O(n^2) (docs/performance.md "Cost curves", finding 1)."""
    sets = {
        key: frozenset(x for x in _listed(payload, key) if isinstance(x, str))
        for key in ROUTING_KEYS
    }
    for provider_id in provider_ids:
        note = _notification(provider_id, event_type, subject_id, payload, sets.__getitem__)
        if note is not None:
            yield provider_id, note


def _notification(
    provider_id: str,
    event_type: str,
    subject_id: str,
    payload: Mapping[str, object],
    listed: Callable[[str], Collection[object]],
) -> Notification | None:
    if event_type == "work.submitted":
        if provider_id not in listed("recipients"):
            return None
        return Notification(
            event_type, subject_id, {k: payload[k] for k in _WORK_KEYS if k in payload}
        )
    if event_type in ("contract.awarded", "work.unfilled") and provider_id in listed("losers"):
        reason = "another_bid_won" if event_type == "contract.awarded" else "no_valid_bid"
        work_id = str(payload["work_id"])
        lost = {"work_id": work_id, "provider_id": provider_id, "outcome": "lost", "reason": reason}
        return Notification(BID_LOST, work_id, lost)
    if event_type.startswith(("contract.", "settlement.")) and payload.get("provider_id") == (
        provider_id
    ):
        own = {k: v for k, v in payload.items() if k not in ROUTING_KEYS}
        return Notification(event_type, subject_id, own)
    return None


def _listed(payload: Mapping[str, object], key: str) -> tuple[object, ...]:
    found = payload.get(key, ())
    return tuple(found) if isinstance(found, list | tuple) else ()

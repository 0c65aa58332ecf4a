"""Taking over the webhook deliveries of a process that died (serve/notifications/webhooks.py), on
both backends: a record untouched for the lease is stale, one process takes it (compare-and-set),
a process that read it before another took it gets nothing, and it resumes at the next
attempt with the original event."""

from __future__ import annotations

from aex.core import CredentialKind, Plan, credential_digest, format_credential
from serve.market.usecases import Market
from serve.notifications.webhooks import WEBHOOK_ATTEMPTS_MAX, Webhooks
from serve.secret_box import SecretBox, webhook_secret_context
from serve.stores.base import KeyRecord, ProviderRecord, TenantRecord
from serve.stores.market_db import OutboxRow, Session
from tests.conftest import Stores

LEASE_MS = 1_000
EVENT_ID = "evt_0000000000000001"
PROVIDER_ID = "prov_00000000000000a1"
BOX = SecretBox(b"k" * 32)
WEBHOOK_SECRET = format_credential(CredentialKind.WEBHOOK_SECRET, "3" * 64)


def _setup(store: Stores, *, attempts: int, updated_at_ms: int) -> None:
    tenant_key = format_credential(CredentialKind.TENANT_KEY, "1" * 64)
    provider_key = format_credential(CredentialKind.TENANT_KEY, "2" * 64)
    tenant_id = "ten_00000000000000a1"
    store.keys.create_tenant(
        TenantRecord(tenant_id, "Hooked", "PROVIDER", Plan.EXPLORER, "ACTIVE", 1),
        KeyRecord("key_01", tenant_id, "TENANT", credential_digest(tenant_key), "aex_", 1),
    )
    provider = ProviderRecord(
        PROVIDER_ID, tenant_id, "bot", "AI_AGENT", ("x",), "T", "http://127.0.0.1:9/hook", 1, 1
    )
    key = KeyRecord(
        "key_02", tenant_id, "PROVIDER", credential_digest(provider_key), "aex_", 1, PROVIDER_ID
    )
    sealed = BOX.seal(WEBHOOK_SECRET, context=webhook_secret_context(PROVIDER_ID))
    created = store.keys.create_provider(
        provider, key, "d" * 64, check_agents=lambda _: None, webhook_secret_sealed=sealed
    )
    assert created is None

    def write(session: Session) -> None:
        session.outbox.append(
            OutboxRow(EVENT_ID, "work.submitted", "work_1", 5, '{"work_id": "work_1"}')
        )
        session.connection.execute(
            "INSERT INTO webhook_deliveries VALUES (?, ?, 'work.submitted', ?, ?, 'RETRYING',"
            " 500, NULL, ?)",
            (EVENT_ID, PROVIDER_ID, provider.endpoint, attempts, updated_at_ms),
        )

    store.market.run(write)


def test_a_stale_delivery_is_taken_once_and_resumed_at_its_next_attempt(store: Stores) -> None:
    _setup(store, attempts=2, updated_at_ms=10_000)
    first = Webhooks(Market(store.market), box=BOX, lease_ms=LEASE_MS)
    second = Webhooks(Market(store.market), box=BOX, lease_ms=LEASE_MS)
    assert first.stale(10_000 + LEASE_MS) == []  # not stale yet: the lease has not run out
    seen_by_second = second.stale(10_001 + LEASE_MS)
    assert len(seen_by_second) == 1
    taken = first._take_stale(10_001 + LEASE_MS)
    assert len(taken) == 1
    assert taken[0].first == 3
    assert taken[0].event.event_id == EVENT_ID
    assert taken[0].event.payload == {"work_id": "work_1"}
    # Signed with the webhook secret opened from its sealed form, never a stored digest.
    assert taken[0].target == ("http://127.0.0.1:9/hook", WEBHOOK_SECRET)
    # The second process read the record before the first took it: its take finds it moved.
    assert second.take(seen_by_second[0]) is None
    assert second.stale(10_001 + LEASE_MS) == []  # and it is fresh again for everyone


def test_a_delivery_taken_at_its_last_attempt_is_resumed_there(store: Stores) -> None:
    _setup(store, attempts=WEBHOOK_ATTEMPTS_MAX, updated_at_ms=0)
    taken = Webhooks(Market(store.market), box=BOX, lease_ms=LEASE_MS)._take_stale(LEASE_MS + 1)
    assert [t.first for t in taken] == [WEBHOOK_ATTEMPTS_MAX]


def _dead_letters(store: Stores) -> int:
    rows = store.market.read(
        "SELECT count(*) FROM outbox WHERE type = ?", ("notification.dead_lettered",)
    )
    return int(rows[0][0])


def test_a_process_taken_over_records_nothing_and_dead_letters_nothing(store: Stores) -> None:
    # The original process holds the lease it last wrote (updated_at_ms 0), was slow past the
    # lease, and another took the delivery over: the record moved under it.
    _setup(store, attempts=WEBHOOK_ATTEMPTS_MAX - 1, updated_at_ms=0)
    slow = Webhooks(Market(store.market), box=BOX, lease_ms=LEASE_MS)
    taker = Webhooks(Market(store.market), box=BOX, lease_ms=LEASE_MS)
    (taken,) = taker._take_stale(LEASE_MS + 1)
    assert taken.first == WEBHOOK_ATTEMPTS_MAX
    shown = {"event_id": EVENT_ID}
    last = (EVENT_ID, PROVIDER_ID, "work.submitted", "x", WEBHOOK_ATTEMPTS_MAX, "FAILED", 500, None)
    # Its renewal before a retry and its record of the attempt in flight both find it moved.
    assert slow._renew(EVENT_ID, PROVIDER_ID, 0) is None
    assert slow._record(last, shown, lease=0) is None
    assert _dead_letters(store) == 0
    # The taker holds it: its last attempt fails the delivery and dead-letters it, once.
    assert taker._record(last, shown, lease=taken.lease) is not None
    assert _dead_letters(store) == 1
    rows = store.market.read(
        "SELECT status, attempts FROM webhook_deliveries WHERE event_id = ?", (EVENT_ID,)
    )
    assert [tuple(r) for r in rows] == [("FAILED", WEBHOOK_ATTEMPTS_MAX)]
    # A FAILED record is final: no later write (from either) moves it or dead-letters again.
    assert taker._record(last, shown, lease=taken.lease) is None
    assert _dead_letters(store) == 1

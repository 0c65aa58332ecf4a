"""Webhooks: signed (HMAC-SHA256 over timestamp.body), retried with backoff, visible."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aex.core import verify_webhook_signature as verify_webhook
from serve.stores.market_db import DATABASE_FILE
from tests.serve.market_helpers import consumer, hooked_provider, submit_work
from tests.serve.server import Server
from tests.serve.webhook_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(failures=1)
    yield running
    running.stop()


def test_work_is_pushed_signed_and_retried_after_a_failure(
    client: httpx.Client, receiver: Receiver
) -> None:
    created = hooked_provider(client, receiver.url)
    key = {"X-API-Key": created["api_key"]}
    work = submit_work(client, consumer(client), bid_window_seconds=300)
    deadline = time.monotonic() + 15
    while len(receiver.received) < 2:
        assert time.monotonic() < deadline, receiver.received
        time.sleep(0.1)
    for headers, raw in receiver.received:
        assert headers["x-aex-event"] == "work.submitted"
        assert verify_webhook(created["webhook_secret"], headers, raw, now_s=int(time.time()))
        assert not verify_webhook(
            created["webhook_secret"], headers, raw + b" ", now_s=int(time.time())
        )
        assert not verify_webhook(
            created["webhook_secret"], headers, raw, now_s=int(time.time()) + 301
        )
        # Keyed with the webhook secret only: not the api secret, nor its SHA-256 (the digest
        # the database holds), so reading the database does not let anyone sign.
        api_secret_digest = hashlib.sha256(created["api_secret"].encode()).hexdigest()
        for not_the_key in (created["api_secret"], api_secret_digest):
            assert not verify_webhook(not_the_key, headers, raw, now_s=int(time.time()))
    assert b'"work_id":"' + work["work_id"].encode() in receiver.received[0][1]
    assert receiver.received[0][0]["x-aex-event-id"] == receiver.received[1][0]["x-aex-event-id"]
    deliveries = client.get("/v1/notifications/deliveries", headers=key).json()["data"]
    deadline = time.monotonic() + 5
    while deliveries[0]["status"] != "DELIVERED":
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.1)
        deliveries = client.get("/v1/notifications/deliveries", headers=key).json()["data"]
    assert deliveries[0]["attempts"] == 2
    assert deliveries[0]["event"] == "work.submitted"


def test_a_delivery_whose_claim_fails_for_a_moment_is_tried_again_and_delivered(
    tmp_path: Path,
) -> None:
    # Before a delivery has its record, a failed claim lost it for good: no record, so no
    # take-over either. Here the deliveries' table is missing for a moment (a database blip);
    # the claim is tried again and the provider is told once.
    data_dir = tmp_path / "data"
    hook = Receiver()
    server = Server(data_dir).start()
    database = sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            hooked_provider(client, hook.url)
            database.execute("ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_away")
            work = submit_work(client, consumer(client), bid_window_seconds=300)
            time.sleep(1.0)  # the claim has failed at least once
            assert hook.received == []
            database.execute("ALTER TABLE webhook_deliveries_away RENAME TO webhook_deliveries")
            deadline = time.monotonic() + 15
            while not hook.received:
                assert time.monotonic() < deadline, "the delivery was lost"
                time.sleep(0.1)
            time.sleep(0.5)
        assert len(hook.received) == 1
        headers, raw = hook.received[0]
        assert headers["x-aex-event"] == "work.submitted"
        assert work["work_id"].encode() in raw
    finally:
        database.close()
        server.stop()
        hook.stop()


def _wait_for(hook: Receiver, count: int, why: str) -> None:
    deadline = time.monotonic() + 15
    while len(hook.received) < count:
        assert time.monotonic() < deadline, why
        time.sleep(0.1)


def test_an_event_committed_but_not_fanned_out_when_the_process_stopped_is_sent_after_it(
    tmp_path: Path,
) -> None:
    # With one process, the webhooks followed the outbox from its head at start: an event
    # committed but not yet fanned out when the process died got its NATS message (the
    # relay's cursor is saved) but never its webhook. Here the exchange is stopped and such an
    # event committed meanwhile (a copy of the work's, under a new id, as the crash leaves
    # it); the next start sends it, and sends nothing twice.
    data_dir = tmp_path / "data"
    hook = Receiver()
    try:
        server = Server(data_dir).start()
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                hooked_provider(client, hook.url)
                submit_work(client, consumer(client), bid_window_seconds=300)
                _wait_for(hook, 1, "the work was not pushed")
        finally:
            server.stop()
        first_event = hook.received[0][0]["x-aex-event-id"]
        database = sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)
        try:
            database.execute(
                "INSERT INTO outbox (event_id, type, subject_id, occurred_at_ms, payload)"
                " SELECT 'evt_00000000000000000000000000000001', type, subject_id,"
                " occurred_at_ms, payload FROM outbox WHERE event_id = ?",
                (first_event,),
            )
        finally:
            database.close()
        server = Server(data_dir).start()
        try:
            _wait_for(hook, 2, "the event committed while no process ran was never sent")
            time.sleep(1.5)  # quiet: nothing else arrives
        finally:
            server.stop()
        sent = [headers["x-aex-event-id"] for headers, _ in hook.received]
        assert sent == [first_event, "evt_00000000000000000000000000000001"]
    finally:
        hook.stop()

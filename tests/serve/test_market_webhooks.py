"""Webhooks: signed (HMAC-SHA256 over timestamp.body), retried with backoff, visible."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest

from aex.core import verify_webhook_signature as verify_webhook
from tests.serve.conftest import sign_up
from tests.serve.market_helpers import consumer, submit_work
from tests.serve.webhook_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(failures=1)
    yield running
    running.stop()


def test_work_is_pushed_signed_and_retried_after_a_failure(
    client: httpx.Client, receiver: Receiver
) -> None:
    owner = sign_up(client, "Hooked", "PROVIDER")
    body = {
        "name": "HookBot",
        "type": "AI_AGENT",
        "capabilities": ["code_review"],
        "category": "TECHNOLOGY",
        "endpoint": receiver.url,
    }
    created = client.post("/v1/providers", json=body, headers=owner.headers).json()
    key = {"X-API-Key": created["api_key"]}
    subscription = {"provider_id": created["provider_id"], "categories": ["TECHNOLOGY"]}
    assert client.post("/v1/subscriptions", json=subscription, headers=key).status_code == 201
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

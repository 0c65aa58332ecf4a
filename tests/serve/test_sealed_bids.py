"""Sealed bids (issue 11, item 10): an auction among three providers over a real server, on
both backends, with the outbox relayed to NATS JetStream. Every notification each provider
receives (its server-sent events, every webhook attempt, and the dead letters published on its
JetStream subject "aex.notification.dead_lettered.<provider_id>") is inspected: each provider
sees only what concerns it (docs/market.md, "Disclosure policy"), and no competitor's identity,
bid or price, and no loser sees the consumer's tenant id.

The receivers listen on 127.0.0.1 and answer 500 to every attempt, so that each notification
is retried to the last attempt and dead-lettered: one run shows the webhook bodies and the
JetStream provider-subject payloads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from serve.notifications.webhooks import WEBHOOK_ATTEMPTS_MAX
from tests.scale.test_outbox_relay import delete_streams
from tests.serve.conftest import sign_up
from tests.serve.market_helpers import Provider, bid, close_now, consumer, submit_work
from tests.serve.server import Backend, Server
from tests.serve.webhook_receiver import Receiver

pytestmark = pytest.mark.services

NATS_URL = "nats://127.0.0.1:4222"
PRICES = {"winner": "80.00", "second": "120.00", "third": "190.00"}


@pytest.fixture
def relayed(tmp_path: Path, own_backend: Backend) -> Iterator[tuple[Server, str]]:
    prefix = f"s{uuid.uuid4().hex[:10]}"
    env = {
        **own_backend.env,
        "AEX_NATS_URL": NATS_URL,
        "AEX_NATS_PREFIX": prefix,
        "AEX_WEBHOOK_BACKOFF_MS": "5",
    }
    running = Server(tmp_path / "data", env=env).start()
    try:
        yield running, prefix
    finally:
        running.stop()
        asyncio.run(delete_streams(prefix))


def _listen(server: Server, api_key: str) -> queue.Queue[tuple[str, str]]:
    heard: queue.Queue[tuple[str, str]] = queue.Queue()
    ready = threading.Event()

    def run() -> None:
        headers = {"X-API-Key": api_key}
        with httpx.Client(base_url=server.url, timeout=None) as http:
            try:
                with http.stream("GET", "/v1/notifications/stream", headers=headers) as stream:
                    name = ""
                    for line in stream.iter_lines():
                        if line.startswith("event:"):
                            name = line.split(":", 1)[1].strip()
                        elif line.startswith("data:"):
                            if name == "ready":
                                ready.set()
                            else:
                                heard.put((name, line.split(":", 1)[1].strip()))
            except httpx.HTTPError:
                return

    threading.Thread(target=run, daemon=True).start()
    assert ready.wait(10)
    return heard


def _drain(heard: queue.Queue[tuple[str, str]], wanted: int) -> list[tuple[str, str]]:
    found = []
    while len(found) < wanted:
        found.append(heard.get(timeout=15))
    with contextlib.suppress(queue.Empty):
        while True:
            found.append(heard.get(timeout=0.5))
    return found


async def _dead_letters(prefix: str, subjects: set[str], wanted: int) -> dict[str, list[Any]]:
    connection = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        js = connection.jetstream()
        stream = f"{prefix}_NOTIFICATIONS"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                if (await js.stream_info(stream)).state.messages >= wanted:
                    break
            assert time.monotonic() < deadline, "the dead letters did not reach JetStream"
            await asyncio.sleep(0.2)
        info = await js.stream_info(stream)
        found: dict[str, list[Any]] = {s: [] for s in subjects}
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, seq)
            assert message.subject in subjects, message.subject
            found[message.subject].append(message.data.decode())
        return found
    finally:
        await connection.close()


def test_each_provider_hears_only_its_own_bid_outcome_in_sse_webhooks_and_jetstream(
    relayed: tuple[Server, str],
) -> None:
    server, prefix = relayed
    receivers = {role: Receiver(status=500) for role in PRICES}
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            agents, heard = {}, {}
            for role, receiver in receivers.items():
                owner = sign_up(client, f"Owner {role}", "PROVIDER")
                body = {
                    "name": f"Bot {role}",
                    "type": "AI_AGENT",
                    "capabilities": ["code_review"],
                    "category": "TECHNOLOGY",
                    "endpoint": receiver.url,
                }
                created = client.post("/v1/providers", json=body, headers=owner.headers).json()
                key = {"X-API-Key": created["api_key"]}
                subscription = {"provider_id": created["provider_id"], "categories": ["TECHNOLOGY"]}
                assert client.post("/v1/subscriptions", json=subscription, headers=key).is_success
                agents[role] = (created, owner)
                heard[role] = _listen(server, created["api_key"])
            acme = consumer(client)
            work = submit_work(client, acme, bid_window_seconds=300)
            bid_ids = {}
            for role, (created, owner) in agents.items():
                agent = Provider(created["provider_id"], created["api_key"], owner)
                placed = bid(client, agent, work["work_id"], PRICES[role])
                assert placed.status_code == 201, placed.text
                bid_ids[role] = placed.json()["bid_id"]
            awarded = close_now(client, work["work_id"])
            assert awarded["status"] == "AWARDED"
            sse = {role: _drain(heard[role], 2) for role in PRICES}
            ids = {role: created["provider_id"] for role, (created, _) in agents.items()}
            subjects = {f"{prefix}.aex.notification.dead_lettered.{p}" for p in ids.values()}
            letters = asyncio.run(_dead_letters(prefix, subjects, wanted=6))
    finally:
        for receiver in receivers.values():
            receiver.server.shutdown()

    for role in PRICES:
        others = [r for r in PRICES if r != role]
        secrets_of_others = [ids[r] for r in others] + [bid_ids[r] for r in others]
        secrets_of_others += [PRICES[r] for r in others]
        if role != "winner":
            secrets_of_others.append(acme.tenant_id)  # a loser never learns who the buyer was
        webhooks = [json.dumps(b) for b in receivers[role].bodies]
        subject = f"{prefix}.aex.notification.dead_lettered.{ids[role]}"
        seen = [data for _, data in sse[role]] + webhooks + letters[subject]
        for text in seen:
            for secret in secrets_of_others:
                assert secret not in text, (role, secret, text)
            assert '"recipients"' not in text, text
            assert '"losers"' not in text, text
        names = [name for name, _ in sse[role]]
        outcome = "contract.awarded" if role == "winner" else "bid.lost"
        assert names == ["work.submitted", outcome], (role, names)
        # Every attempt failed: five in a row open the endpoint's breaker, so the second
        # event's attempts may be skipped (circuit_open, no connection) before its dead letter.
        assert WEBHOOK_ATTEMPTS_MAX <= len(receivers[role].bodies) <= 2 * WEBHOOK_ATTEMPTS_MAX
        assert len(letters[subject]) == 2
        lost_or_won = json.loads(sse[role][1][1])
        if role == "winner":
            assert lost_or_won["payload"]["price"] == {"amount": "80.00", "currency": "USD"}
            assert lost_or_won["payload"]["contract_id"] == awarded["contract_id"]
        else:
            assert lost_or_won["payload"] == {
                "work_id": work["work_id"],
                "provider_id": ids[role],
                "outcome": "lost",
                "reason": "another_bid_won",
            }
            assert lost_or_won["subject_id"] == work["work_id"]  # not the winner's contract id
            assert awarded["contract_id"] not in json.dumps(
                [sse[role], receivers[role].bodies, letters[subject]]
            )

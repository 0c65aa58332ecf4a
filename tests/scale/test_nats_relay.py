"""The outbox relay on the local NATS JetStream: an event id is stored once, however often
the relay publishes it (Nats-Msg-Id deduplication), on a private stream per test."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from aex.core.events import Stream
from serve.notifications.nats_relay import JetStreamRelay, OutboxRow, spec_streams

pytestmark = pytest.mark.services

NATS_URL = os.environ.get("AEX_TEST_NATS_URL", "nats://127.0.0.1:4222")


def test_publishing_the_same_event_id_twice_stores_it_once() -> None:
    async def scenario() -> None:
        tag = uuid.uuid4().hex[:12]
        stream, subjects = f"AEX_TEST_{tag}", (f"aextest{tag}.>",)
        relay = await JetStreamRelay(NATS_URL, streams={stream: subjects}, max_age_s=300).connect()
        try:
            await relay.ensure_streams()
            await relay.ensure_streams()  # idempotent: updates in place
            first = OutboxRow("evt_1", f"aextest{tag}.contract.awarded.c1", b'{"n":1}')
            second = OutboxRow("evt_2", f"aextest{tag}.contract.awarded.c1", b'{"n":2}')
            sent = await relay.publish([first, second])
            retried = await relay.publish([first, second])  # a relay retry after a crash
            assert [p.duplicate for p in sent] == [False, False]
            assert [p.duplicate for p in retried] == [True, True]
            assert [p.sequence for p in retried] == [p.sequence for p in sent]
            assert await relay.stored_messages(stream) == 2
        finally:
            await relay.delete_stream(stream)
            await relay.close()

    asyncio.run(scenario())


def test_the_relay_defaults_to_the_spec_streams_and_the_dead_letter_stream() -> None:
    streams = spec_streams()
    assert sorted(streams) == sorted(stream.value for stream in Stream)
    filters = [subject for subjects in streams.values() for subject in subjects]
    assert len(filters) == len(set(filters))
    assert all(subject.startswith("aex.") and subject.endswith(".>") for subject in filters)

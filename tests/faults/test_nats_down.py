"""NATS killed (SIGKILL) while the exchange keeps writing events: requests still succeed, the
events wait in the outbox, the relay's `nats` breaker opens, and once NATS is back the relay
resumes from its cursor: every outbox event is stored in JetStream exactly once. A private
nats-server (its own port and JetStream directory), never the shared one."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from serve.notifications.nats_relay import spec_streams
from tests.faults.engines import PrivateProcess, private_nats
from tests.serve.market_helpers import bid, consumer, provider, submit_work
from tests.serve.server import Server

WAIT_S = 30.0


@pytest.fixture
def nats_server() -> Iterator[PrivateProcess]:
    engine = private_nats()
    engine.start()
    yield engine
    engine.destroy()


def outbox_ids(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "aex.sqlite3") as connection:
        return [row[0] for row in connection.execute("SELECT event_id FROM outbox")]


async def _stored_ids(url: str, prefix: str) -> Counter[str]:
    """Every message of the private streams, read through a JetStream consumer per stream,
    counted by Nats-Msg-Id."""
    connection = await nats.connect(url, connect_timeout=2)
    try:
        js = connection.jetstream()
        counts: Counter[str] = Counter()
        for stream in spec_streams(prefix):
            try:
                info = await js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                continue
            if info.state.messages == 0:
                continue
            consumer = f"check{uuid.uuid4().hex[:8]}"
            await js.add_consumer(
                stream, ConsumerConfig(durable_name=consumer, ack_policy=AckPolicy.NONE)
            )
            subscription = await js.pull_subscribe_bind(consumer, stream)
            remaining = info.state.messages
            while remaining > 0:
                for message in await subscription.fetch(min(remaining, 256), timeout=5):
                    assert message.headers is not None
                    counts[message.headers["Nats-Msg-Id"]] += 1
                    remaining -= 1
            await subscription.unsubscribe()
            await js.delete_consumer(stream, consumer)
        return counts
    finally:
        await connection.close()


def stored_ids(url: str, prefix: str) -> Counter[str]:
    try:
        return asyncio.run(_stored_ids(url, prefix))
    except (TimeoutError, OSError, nats.errors.Error):
        return Counter()


def wait_for(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_nats_down_keeps_events_in_the_outbox_and_delivers_each_once_after(
    tmp_path: Path, nats_server: PrivateProcess
) -> None:
    url, prefix = f"nats://127.0.0.1:{nats_server.port}", f"F{uuid.uuid4().hex[:8]}"
    # The relay's breaker probes NATS again after 2 s (the spec's 10 s by default).
    env = {"AEX_NATS_URL": url, "AEX_NATS_PREFIX": prefix, "AEX_BREAKER_OPEN_MS": "2000"}
    server = Server(tmp_path / "data", env=env)
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as client:

            def all_relayed_once() -> bool:
                expected = outbox_ids(server.data_dir)
                stored = stored_ids(url, prefix)
                assert all(count == 1 for count in stored.values()), stored.most_common(3)
                return bool(expected) and set(stored) == set(expected)

            buyer = consumer(client, plan="ENTERPRISE")
            agent = provider(client, plan="ENTERPRISE")

            def market_events() -> None:  # a work submitted and a bid on it: outbox events
                work_id = submit_work(client, buyer, bid_window_seconds=300)["work_id"]
                assert bid(client, agent, work_id).status_code == 201

            market_events()
            wait_for(all_relayed_once)
            before_outage = len(outbox_ids(server.data_dir))

            nats_server.stop()  # SIGKILL
            for _ in range(5):  # the exchange goes on: every write succeeds
                market_events()
            wait_for(lambda: client.get("/ready").json()["breakers"].get("nats") == "OPEN")
            assert client.get("/ready").status_code == 200  # NATS down is not unready
            assert len(outbox_ids(server.data_dir)) > before_outage  # kept in the outbox

            nats_server.start()  # same port, same JetStream directory
            wait_for(all_relayed_once)
            wait_for(lambda: client.get("/ready").json()["breakers"].get("nats") == "CLOSED")
            assert server.process is not None
            assert server.process.poll() is None
    finally:
        server.stop()

"""A real `aex serve` with AEX_NATS_URL relays its outbox to JetStream: after a full market
cycle, and again after a kill -9 and a restart, every outbox event id is stored exactly once
(private stream names and subjects per test, deleted afterwards)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import nats
import pytest

from serve.background import RELAY_NAME
from serve.notifications.nats_relay import spec_streams
from serve.settings import ImproperlyConfiguredError, Settings
from serve.stores.market_db import DATABASE_FILE
from tests.serve.market_helpers import bid, close_now, complete, consumer, provider, submit_work
from tests.serve.server import Server

pytestmark = pytest.mark.services

NATS_URL = "nats://127.0.0.1:4222"
RELAY_WAIT_S = 10.0


def outbox_ids(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "aex.sqlite3") as connection:
        return [row[0] for row in connection.execute("SELECT event_id FROM outbox")]


async def stored_ids(prefix: str) -> Counter[str]:
    """Every message of the private streams, counted by Nats-Msg-Id (and by body event id)."""
    connection = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        js = connection.jetstream()
        counts: Counter[str] = Counter()
        for stream in spec_streams(prefix):
            try:
                info = await js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                continue
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                if info.state.messages == 0:
                    break
                message = await js.get_msg(stream, seq)
                assert message.headers is not None
                counts[message.headers["Nats-Msg-Id"]] += 1
                assert message.data is not None
                assert message.headers["Nats-Msg-Id"].encode() in message.data
        return counts
    finally:
        await connection.close()


async def retention(stream: str) -> tuple[float, float]:
    connection = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        config = (await connection.jetstream().stream_info(stream)).config
        return float(config.max_age or 0), float(config.duplicate_window or 0)
    finally:
        await connection.close()


async def delete_streams(prefix: str) -> None:
    connection = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        js = connection.jetstream()
        for stream in spec_streams(prefix):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(stream)
    finally:
        await connection.close()


def wait_until_relayed(data_dir: Path, prefix: str) -> tuple[list[str], Counter[str]]:
    deadline = time.monotonic() + RELAY_WAIT_S
    while True:
        expected = outbox_ids(data_dir)
        counts = asyncio.run(stored_ids(prefix))
        if set(counts) >= set(expected) or time.monotonic() > deadline:
            return expected, counts
        time.sleep(0.2)


def market_cycle(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        acme, bot = consumer(client), provider(client)
        work = submit_work(client, acme)
        assert bid(client, bot, work["work_id"], 100).status_code == 201
        closed = close_now(client, work["work_id"])
        assert complete(client, bot, closed["contract_id"]).status_code == 200


def test_nats_receives_each_event_exactly_once_per_event_id(tmp_path: Path) -> None:
    prefix = "aextest" + uuid.uuid4().hex[:12]
    env = {
        "AEX_NATS_URL": NATS_URL,
        "AEX_NATS_PREFIX": prefix,
        "AEX_NATS_MAX_AGE_S": "3600",
        "AEX_NATS_DUPLICATE_WINDOW_S": "90",
    }
    server = Server(tmp_path / "data", env=env)
    try:
        server.start()
        market_cycle(server.url)
        expected, counts = wait_until_relayed(server.data_dir, prefix)
        assert asyncio.run(retention(f"{prefix}_WORK")) == (3600.0, 90.0)  # as configured
        assert len(expected) >= 6  # submitted, bid, closed, evaluated, awarded, ... settled
        assert set(counts) == set(expected)
        assert set(counts.values()) == {1}

        server.kill()  # kill -9: no graceful drain; the cursor may lag the acknowledgements
        with sqlite3.connect(server.data_dir / "aex.sqlite3") as connection:
            connection.execute("UPDATE outbox_relay SET last_seq = 0")  # the worst crash
        server.start()
        market_cycle(server.url)
        expected_after, counts = wait_until_relayed(server.data_dir, prefix)
        assert len(expected_after) == 2 * len(expected)
        assert set(counts) == set(expected_after)
        assert set(counts.values()) == {1}
    finally:
        server.stop()
        asyncio.run(delete_streams(prefix))


def test_a_relay_that_cannot_ask_for_the_lead_tries_again_and_relays_everything(
    tmp_path: Path,
) -> None:
    # Asking for the lead failed once (here: the relay's lock file cannot be opened, as on a
    # full or read-only disk; on PostgreSQL: the database down): the relay loop ended, and
    # no event reached NATS again until a restart. Now it retries every second.
    prefix = "aextest" + uuid.uuid4().hex[:12]
    data_dir = tmp_path / "data"
    blocked = data_dir / f"{DATABASE_FILE}.{RELAY_NAME}.lock"
    blocked.mkdir(parents=True)  # a directory where the lock file goes: open() fails
    server = Server(data_dir, env={"AEX_NATS_URL": NATS_URL, "AEX_NATS_PREFIX": prefix})
    try:
        server.start()
        market_cycle(server.url)
        time.sleep(1.5)  # the relay has tried, and failed, at least once
        assert asyncio.run(stored_ids(prefix)) == Counter()
        blocked.rmdir()
        expected, counts = wait_until_relayed(server.data_dir, prefix)
        assert len(expected) >= 6
        assert set(counts) == set(expected)
        assert set(counts.values()) == {1}
    finally:
        server.stop()
        asyncio.run(delete_streams(prefix))


@pytest.mark.parametrize(
    "env",
    [
        {"AEX_NATS_URL": "http://127.0.0.1:4222"},
        {"AEX_NATS_PREFIX": "has.dot"},
        {"AEX_NATS_MAX_AGE_S": "0"},
        {"AEX_NATS_MAX_AGE_S": "soon"},
        {"AEX_NATS_MAX_AGE_S": "nan"},
        {"AEX_NATS_MAX_AGE_S": "60", "AEX_NATS_DUPLICATE_WINDOW_S": "120"},
    ],
)
def test_a_bad_nats_setting_is_refused_at_startup(tmp_path: Path, env: dict[str, str]) -> None:
    base = {"AEX_OPERATOR_KEY": "k" * 40, "AEX_JWT_SECRET": "s" * 40}
    with pytest.raises(ImproperlyConfiguredError, match="AEX_NATS"):
        Settings.from_env(data_dir=tmp_path, env={**base, **env})
